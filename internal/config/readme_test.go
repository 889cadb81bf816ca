package config

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestREADMEDocumentsEverySetting keeps the configuration reference in
// step with the code: each setting's key, env variable, flag and default.
func TestREADMEDocumentsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	for _, s := range cfg.settings() {
		row := "| `" + s.key + "` | `" + s.env() + "` | `--" + s.flag + "` |"
		i := strings.Index(string(readme), row)
		if i < 0 {
			t.Errorf("README has no row %q", row)
			continue
		}
		line, _, _ := strings.Cut(string(readme[i+len(row):]), "\n")
		def := s.String()
		if _, ok := s.ptr.(*time.Duration); ok {
			def = shortDuration(def)
		}
		if def != "" && !strings.Contains(line, "`"+def+"`") {
			t.Errorf("README row for %s does not give the default %q: %s", s.key, def, line)
		}
	}
}

// shortDuration writes a duration as the README does: 12h, not 12h0m0s.
func shortDuration(d string) string {
	if strings.HasSuffix(d, "m0s") {
		d = strings.TrimSuffix(d, "0s")
	}
	if strings.HasSuffix(d, "h0m") {
		d = strings.TrimSuffix(d, "0m")
	}
	return d
}

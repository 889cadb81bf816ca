package config

import (
	"os"
	"strings"
	"testing"
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
		if d, ok := map[string]string{"1m0s": "1m", "5m0s": "5m", "1h0m0s": "1h", "24h0m0s": "24h", "false": "false"}[def]; ok {
			def = d
		}
		if def != "" && !strings.Contains(line, "`"+def+"`") {
			t.Errorf("README row for %s does not give the default %q: %s", s.key, def, line)
		}
	}
}

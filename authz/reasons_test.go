package authz_test

import (
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
)

// TestReasonsDocumented keeps the README's reason table and the code in
// step: every reason is documented once, with the status it really gets.
func TestReasonsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| (\\d{3}) \\| `([a-z_]+)` \\|")
	documented := map[authz.Reason]int{}
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		status, _ := strconv.Atoi(m[1])
		if _, dup := documented[authz.Reason(m[2])]; dup {
			t.Errorf("reason %s documented twice", m[2])
		}
		documented[authz.Reason(m[2])] = status
	}
	want := map[authz.Reason]int{}
	for _, r := range authz.Reasons {
		want[r] = authz.StatusFor(r)
	}
	if diff := cmp.Diff(want, documented); diff != "" {
		t.Errorf("README reason table (-code +README):\n%s", diff)
	}
}

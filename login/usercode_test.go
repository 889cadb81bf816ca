package login_test

import (
	"strings"
	"testing"

	"github.com/usher-dev/usher/login"
)

// FuzzUserCode: whatever a person types, the normaliser answers a
// canonical code of 8 letters of the alphabet or nothing; it ignores
// only case, dashes and spaces (catalogue row 80), and the canonical
// form shown as XXXX-XXXX reads back to itself.
// Catalogue row 73 (8 letters of the 20-letter alphabet).
func FuzzUserCode(f *testing.F) {
	for _, s := range []string{"BCDF-GHJK", "bcdf-ghjk", "BCDF GHJK", " bcdfghjk ", "BCDF\u2013GHJK", "ＢＣＤＦＧＨＪＫ", "AEIO-UBCD", "1234-5678", "", "----", "bcdf-ghjk-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, typed string) {
		c, ok := login.NormalizeUserCode(typed)
		stripped := strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(typed))
		if !ok {
			if c != "" {
				t.Fatalf("%q refused but answered %q", typed, c)
			}
			if len(stripped) == 8 && strings.Trim(stripped, "BCDFGHJKLMNPQRSTVWXZ") == "" && len(typed) <= 32 {
				t.Fatalf("%q refused, but it is a code", typed)
			}
			return
		}
		if len(c) != 8 || strings.Trim(c, "BCDFGHJKLMNPQRSTVWXZ") != "" {
			t.Fatalf("%q → %q: not 8 letters of the alphabet", typed, c)
		}
		if c != stripped {
			t.Fatalf("%q → %q, want %q: something besides case, dashes and spaces was dropped", typed, c, stripped)
		}
		if back, ok := login.NormalizeUserCode(login.FormatUserCode(c)); !ok || back != c {
			t.Fatalf("%q shown as %q reads back as %q %v", c, login.FormatUserCode(c), back, ok)
		}
	})
}

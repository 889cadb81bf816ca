package credentials

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSaveModes(t *testing.T) {
	path := Path(t.TempDir())
	f := &File{}
	f.Put(Entry{Server: "https://a.test", AccessToken: "at", RefreshToken: "rt"})
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", p, st.Mode().Perm(), want)
		}
	}
}

// A usher directory that exists wider than 0700 is narrowed on save.
func TestSaveNarrowsDir(t *testing.T) {
	path := Path(t.TempDir())
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := (&File{}).Save(path); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Dir(path))
	if st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %04o, want 0700", st.Mode().Perm())
	}
}

func TestLoadRefusesReadableByOthers(t *testing.T) {
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o602} {
		t.Run(mode.String(), func(t *testing.T) {
			path := Path(t.TempDir())
			f := &File{}
			f.Put(Entry{Server: "https://a.test", AccessToken: "at"})
			if err := f.Save(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			var pe *PermissionError
			if !errors.As(err, &pe) {
				t.Fatalf("Load of a %04o file: %v, want a PermissionError", mode, err)
			}
			want := "chmod 600 " + path
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "others can read it") {
				t.Errorf("error %q does not say how to fix it (%q)", err, want)
			}
		})
	}
}

func TestLoadMissingIsEmpty(t *testing.T) {
	f, err := Load(Path(t.TempDir()))
	if err != nil || len(f.Servers) != 0 || f.Last != "" {
		t.Fatalf("Load of no file: %+v, %v", f, err)
	}
}

// Several servers live side by side, keyed by URL; the last one put is
// the default, and deleting it falls back to another.
func TestServersKeyedByURL(t *testing.T) {
	path := Path(t.TempDir())
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	a := Entry{Server: "https://a.test", AccessToken: "at-a", RefreshToken: "rt-a", Expiry: exp}
	b := Entry{Server: "https://b.test", AccessToken: "at-b", RefreshToken: "rt-b", Tenant: "acme", Expiry: exp}
	f := &File{}
	f.Put(a)
	f.Put(b)
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &File{Last: "https://b.test", Servers: map[string]Entry{a.Server: a, b.Server: b}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	got.Delete(b.Server)
	if got.Last != a.Server || len(got.Servers) != 1 {
		t.Errorf("after deleting the default: last %q, servers %v", got.Last, got.Servers)
	}
	got.Delete(a.Server)
	if got.Last != "" || len(got.Servers) != 0 {
		t.Errorf("after deleting all: %+v", got)
	}
}

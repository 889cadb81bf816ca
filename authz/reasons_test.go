package authz_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
)

// declaredReasons reads authz's source and returns the value of every
// constant declared with type Reason, so that a reason added to the code
// is checked even if nobody remembers to list it.
func declaredReasons(t *testing.T) map[authz.Reason]bool {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	found := map[authz.Reason]bool{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Reason" {
					continue
				}
				for _, v := range vs.Values {
					lit, ok := v.(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s: a Reason constant that is not a string literal: %s", fset.Position(v.Pos()), name)
					}
					s, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					found[authz.Reason(s)] = true
				}
			}
		}
	}
	if len(found) == 0 {
		t.Fatal("no Reason constants found in authz's source")
	}
	return found
}

// TestReasonsListed: authz.Reasons (what metrics and docs use) names every
// reason the code declares, once.
func TestReasonsListed(t *testing.T) {
	listed := map[authz.Reason]bool{}
	for _, r := range authz.Reasons {
		if listed[r] {
			t.Errorf("reason %s listed twice in authz.Reasons", r)
		}
		listed[r] = true
	}
	if diff := cmp.Diff(declaredReasons(t), listed); diff != "" {
		t.Errorf("authz.Reasons (-declared +listed):\n%s", diff)
	}
}

// TestReasonsDocumented keeps the README's reason table and the code in
// step: every reason the code declares is documented once, with the status
// it really gets.
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
	for r := range declaredReasons(t) {
		want[r] = authz.StatusFor(r)
	}
	if diff := cmp.Diff(want, documented); diff != "" {
		t.Errorf("README reason table (-code +README):\n%s", diff)
	}
}

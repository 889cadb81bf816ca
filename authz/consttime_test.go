package authz_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"
)

// TestSecretComparisonsAreConstantTime pins the defence against a timing
// oracle on API key secrets (docs/security-catalogue.md row 1): keys are
// looked up by id and their digests compared with
// subtle.ConstantTimeCompare, never with == or bytes.Equal, whose time
// depends on the first differing byte. A timing measurement would be noise
// on a shared machine; the source is what can be asserted.
func TestSecretComparisonsAreConstantTime(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "apikey.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var equal *ast.FuncDecl
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == "Equal" && fd.Recv != nil {
			equal = fd
		}
	}
	if equal == nil {
		t.Fatal("KeyHash.Equal not found in apikey.go")
	}
	var constantTime, other bool
	ast.Inspect(equal.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
				if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "subtle" && sel.Sel.Name == "ConstantTimeCompare" {
					constantTime = true
				}
				if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "bytes" {
					other = true
				}
			}
		case *ast.BinaryExpr:
			if n.Op == token.EQL {
				if _, lit := n.Y.(*ast.BasicLit); !lit {
					other = true // h == o on arrays stops at the first difference
				}
			}
		}
		return true
	})
	if !constantTime || other {
		t.Errorf("KeyHash.Equal must compare with subtle.ConstantTimeCompare only (constant time: %v, other comparison: %v)", constantTime, other)
	}
}

package main

import (
	"strings"
	"testing"
)

// TestRulesTestSample runs the sample rules' shipped cases: operators copy
// this pair, so it must pass as shipped.
func TestRulesTestSample(t *testing.T) {
	r := usher(t, nil, "rules", "test", "../../envoy/examples/rules.yaml", "../../envoy/examples/rules_cases.yaml")
	if r.code != exitOK || !strings.Contains(r.stdout, "cases passed") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestRulesTestFailureShowsDiff(t *testing.T) {
	cases := writeFile(t, t.TempDir(), "cases.yaml", []byte(`cases:
  - name: admin is public
    path: /admin/users
    expect: {access: public, space: ops}
  - name: me
    path: /me
    expect: {rule: me}
`))
	r := usher(t, nil, "rules", "test", "../../envoy/examples/rules.yaml", cases)
	if r.code != exitFailed {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitFailed, r.stdout)
	}
	for _, want := range []string{"FAIL admin is public (GET /admin/users)", `access: want "public", got "permission"`, "ok   me", "1 of 2 cases failed"} {
		if !strings.Contains(r.stdout+r.stderr, want) {
			t.Errorf("output lacks %q:\n%s%s", want, r.stdout, r.stderr)
		}
	}
	if strings.Contains(r.stdout, "space: want") {
		t.Errorf("a met expectation is reported:\n%s", r.stdout)
	}
}

func TestRulesTestRejectsBadFiles(t *testing.T) {
	tests := []struct{ name, cases, want string }{
		{"unknown key", "cases:\n  - path: /me\n    expect: {rule: me}\n    verb: GET\n", "field verb not found"},
		{"no expectation", "cases:\n  - path: /me\n", "expect at least one"},
		{"no path", "cases:\n  - expect: {rule: me}\n", "path is required"},
		{"empty", "cases: []\n", "no cases"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := usher(t, nil, "rules", "test", "../../envoy/examples/rules.yaml", writeFile(t, t.TempDir(), "c.yaml", []byte(tt.cases)))
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, exitUsage, tt.want)
			}
		})
	}
}

package authz

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const sampleRules = `
default: deny            # or: authenticated
rules:
  - path: /public/**
    public: true
  - host: api.example.test
    path: /spaces/{space}/datasets/**
    methods: [GET, HEAD]
    permission: datasets.read
  - path: /spaces/{space}/datasets/**
    methods: [POST, PUT, DELETE]
    permission: datasets.write
  - path: /me
    authenticated: true
  - path: /admin/**
    permission: admin
    space: ops              # fixed space; or space_header: x-space-id
`

var cmpRules = cmp.AllowUnexported(Rules{}, rule{}, segment{}, spaceSource{}, tenantSource{}, policy{}, errExtension{})

func mustParseRules(t testing.TB, data string) *Rules {
	t.Helper()
	rs, err := ParseRules("rules.yaml", []byte(data))
	if err != nil {
		t.Fatalf("ParseRules: %v", err)
	}
	return rs
}

func TestParseRulesSample(t *testing.T) {
	datasets := []segment{{segLiteral, "spaces"}, {segParam, "space"}, {segLiteral, "datasets"}, {kind: segTail}}
	want := &Rules{defaultAccess: AccessDeny, rules: []rule{
		{name: "rules[0]", segs: []segment{{segLiteral, "public"}, {kind: segTail}}, access: AccessPublic},
		{name: "rules[1]", host: "api.example.test", methods: []string{"GET", "HEAD"}, segs: datasets,
			access: AccessPermission, permission: "datasets.read", space: spaceSource{kind: spacePath}},
		{name: "rules[2]", methods: []string{"POST", "PUT", "DELETE"}, segs: datasets,
			access: AccessPermission, permission: "datasets.write", space: spaceSource{kind: spacePath}},
		{name: "rules[3]", segs: []segment{{segLiteral, "me"}}, access: AccessAuthenticated},
		{name: "rules[4]", segs: []segment{{segLiteral, "admin"}, {kind: segTail}},
			access: AccessPermission, permission: "admin", space: spaceSource{spaceFixed, "ops"}},
	}}
	if diff := cmp.Diff(want, mustParseRules(t, sampleRules), cmpRules); diff != "" {
		t.Errorf("ParseRules mismatch (-want +got):\n%s", diff)
	}

	// Names, host case, wildcards and method case are normalised at parse.
	got := mustParseRules(t, `{default: authenticated, rules: [{name: login, host: "*.Example.TEST", path: /, methods: [get, Post], authenticated: true}, {path: "/a/*/{x}/", space_header: X-Space, permission: "*"}]}`)
	want = &Rules{defaultAccess: AccessAuthenticated, rules: []rule{
		{name: "login", host: ".example.test", wildcard: true, methods: []string{"GET", "POST", "HEAD"}, access: AccessAuthenticated},
		{name: "rules[1]", segs: []segment{{segLiteral, "a"}, {kind: segStar}, {segParam, "x"}},
			access: AccessPermission, permission: "*", space: spaceSource{spaceHeader, "x-space"}},
	}}
	if diff := cmp.Diff(want, got, cmpRules); diff != "" {
		t.Errorf("ParseRules mismatch (-want +got):\n%s", diff)
	}
	if got.Len() != 2 {
		t.Errorf("Len() = %d, want 2", got.Len())
	}
}

// ruleErrorTests are rules files with mistakes, and the field and a phrase
// of each problem, in order. They also seed FuzzParseRules.
var ruleErrorTests = []struct {
	name, yaml string
	want       [][2]string // field path, phrase
}{
	{"default allow", `default: allow`, [][2]string{{"default", `must be deny or authenticated, not "allow"`}}},
	{"path missing", `rules: [{public: true}]`, [][2]string{{"rules[0].path", "is required"}}},
	{"path relative", `rules: [{path: "public/**", public: true}]`, [][2]string{{"rules[0].path", "must start with '/'"}}},
	{"tail not last", `rules: [{path: "/a/**/b", public: true}]`, [][2]string{{"rules[0].path", "** may only be the last segment"}}},
	{"empty segment", `rules: [{path: "/a//b", public: true}]`, [][2]string{{"rules[0].path", "empty, '.' and '..' segments"}}},
	{"dot segment", `rules: [{path: "/a/./b", public: true}]`, [][2]string{{"rules[0].path", "empty, '.' and '..' segments"}}},
	{"dot dot segment", `rules: [{path: "/public/../admin", public: true}]`, [][2]string{{"rules[0].path", "empty, '.' and '..' segments"}}},
	{"escape in literal", `rules: [{path: "/a/%2e", public: true}]`, [][2]string{{"rules[0].path", `segment "%2e" may hold only`}}},
	{"semicolon", `rules: [{path: "/a;b/c", public: true}]`, [][2]string{{"rules[0].path", `segment "a;b" may hold only`}}},
	{"backslash", `rules: [{path: "/a\\b", public: true}]`, [][2]string{{"rules[0].path", `segment "a\\b" may hold only`}}},
	{"partial star", `rules: [{path: "/a*", public: true}]`, [][2]string{{"rules[0].path", `segment "a*" may hold only`}}},
	{"unclosed brace", `rules: [{path: "/{space", public: true}]`, [][2]string{{"rules[0].path", `segment "{space" may hold only`}}},
	{"empty parameter", `rules: [{path: "/{}", public: true}]`, [][2]string{{"rules[0].path", `parameter "{}" needs a name`}}},
	{"bad parameter name", `rules: [{path: "/{a.b}", public: true}]`, [][2]string{{"rules[0].path", `parameter "{a.b}" needs a name`}}},
	{"parameter twice", `rules: [{path: "/{id}/{id}", public: true}]`, [][2]string{{"rules[0].path", "parameter {id} appears twice"}}},
	{"host with port", `rules: [{host: "api.example.test:8080", path: /, public: true}]`, [][2]string{{"rules[0].host", "is not a host name"}}},
	{"host star", `rules: [{host: "*", path: /, public: true}]`, [][2]string{{"rules[0].host", `"*" is not a host name`}}},
	{"host star dot", `rules: [{host: "*.", path: /, public: true}]`, [][2]string{{"rules[0].host", `"*." is not a host name`}}},
	{"host leading dot", `rules: [{host: ".example.test", path: /, public: true}]`, [][2]string{{"rules[0].host", `".example.test" is not a host name`}}},
	{"host double star", `rules: [{host: "*.*.example.test", path: /, public: true}]`, [][2]string{{"rules[0].host", "is not a host name"}}},
	{"host empty label", `rules: [{host: "a..test", path: /, public: true}]`, [][2]string{{"rules[0].host", "is not a host name"}}},
	{"host trailing dot", `rules: [{host: "a.test.", path: /, public: true}]`, [][2]string{{"rules[0].host", "is not a host name"}}},
	{"host IPv6", `rules: [{host: "[::1]", path: /, public: true}]`, [][2]string{{"rules[0].host", "is not a host name"}}},
	{"host long label", `rules: [{host: "` + strings.Repeat("a", 64) + `.test", path: /, public: true}]`, [][2]string{{"rules[0].host", "is not a host name"}}},
	{"bad methods", `rules: [{path: /, methods: [GET, "G ET", ""], public: true}]`, [][2]string{
		{"rules[0].methods", `"G ET" is not an HTTP method`}, {"rules[0].methods", `"" is not an HTTP method`}}},
	{"no access", `rules: [{path: /}]`, [][2]string{{"rules[0].permission", "a rule needs exactly one of"}}},
	{"public and authenticated", `rules: [{path: /, public: true, authenticated: true}]`, [][2]string{{"rules[0].permission", "a rule needs exactly one of"}}},
	{"public and permission", `rules: [{path: /, public: true, permission: admin, space: ops}]`, [][2]string{{"rules[0].permission", "a rule needs exactly one of"}}},
	{"bad permission", `rules: [{path: /, permission: Datasets.read, space: ops}]`, [][2]string{{"rules[0].permission", `permission "Datasets.read": each dot-separated word`}}},
	{"permission without space", `rules: [{path: /, permission: admin}]`, [][2]string{{"rules[0].space", "a permission rule needs a space"}}},
	{"path space and fixed space", `rules: [{path: "/s/{space}", permission: admin, space: ops}]`, [][2]string{{"rules[0].space", "name the space once"}}},
	{"space and space header", `rules: [{path: /, permission: admin, space: ops, space_header: x-space-id}]`, [][2]string{{"rules[0].space", "name the space once"}}},
	{"bad space", `rules: [{path: /, permission: admin, space: "-ops"}]`, [][2]string{{"rules[0].space", `space name "-ops"`}}},
	{"bad space header", `rules: [{path: /, permission: admin, space_header: "x space"}]`, [][2]string{{"rules[0].space_header", `"x space" is not a header name`}}},
	{"public with space", `rules: [{path: /, public: true, space: ops}]`, [][2]string{{"rules[0].space", "only permission rules take a space"}}},
	{"authenticated with space header", `rules: [{path: /, authenticated: true, space_header: x-space-id}]`, [][2]string{{"rules[0].space", "only permission rules take a space"}}},
	{"tenant twice", `rules: [{path: "/t/{tenant}", authenticated: true, tenant_header: x-tenant}]`, [][2]string{{"rules[0].tenant_header", "name the tenant once"}}},
	{"bad tenant header", `rules: [{path: /, authenticated: true, tenant_header: "x tenant"}]`, [][2]string{{"rules[0].tenant_header", `"x tenant" is not a header name`}}},
	{"public with tenant parameter", `rules: [{path: "/t/{tenant}/**", public: true}]`, [][2]string{{"rules[0].tenant_header", "a public rule has no caller"}}},
	{"public with tenant header", `rules: [{path: /, public: true, tenant_header: x-tenant}]`, [][2]string{{"rules[0].tenant_header", "a public rule has no caller"}}},
	{"every problem at once", "default: open\nrules:\n  - {path: /ok, public: true}\n  - {path: /a/../b, public: true}\n  - {host: 'h:1', path: /c}\n",
		[][2]string{{"default", "must be deny or authenticated"}, {"rules[1].path", "empty, '.' and '..' segments"},
			{"rules[2].host", "is not a host name"}, {"rules[2].permission", "a rule needs exactly one of"}}},
}

func TestParseRulesErrors(t *testing.T) {
	for _, tt := range ruleErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := ParseRules("rules.yaml", []byte(tt.yaml))
			if err == nil || rs != nil {
				t.Fatalf("ParseRules = %v, %v; want an error", rs, err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("ParseRules reported %d problems, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if prefix := "rules.yaml: " + w[0] + ": "; !strings.HasPrefix(lines[i], prefix) || !strings.Contains(lines[i], w[1]) {
					t.Errorf("problem %d = %q, want %q ... %q", i, lines[i], prefix, w[1])
				}
			}
		})
	}
}

// ruleYAMLTests are files that are not a rules document at all.
var ruleYAMLTests = []struct{ name, yaml, want string }{
	{"unknown top-level key", "bogus: 1\n", "field bogus not found in type authz.rulesFile"},
	{"misspelt rule key", "rules: [{paths: /a, public: true}]\n", "field paths not found in type authz.ruleFile"},
	{"camel-case key", "rules: [{path: /a, permission: admin, spaceHeader: x-space}]\n", "field spaceHeader not found"},
	{"quoted bool", "rules: [{path: /a, public: 'true'}]\n", "cannot unmarshal !!str `true` into bool"},
	{"duplicate key", "rules:\n  - path: /admin/**\n    permission: admin\n    space: ops\n    path: /public/**\n", `mapping key "path" already defined`},
	{"syntax error", "rules: [\n", "did not find expected node content"},
	{"top-level list", "- path: /a\n", "cannot unmarshal !!seq into authz.rulesFile"},
	{"rules as a map", "rules: {path: /a}\n", "cannot unmarshal !!map into []authz.ruleFile"},
	{"second document", "rules: [{path: /admin/**, permission: admin, space: ops}]\n---\nrules: [{path: /**, public: true}]\n", "holds more than one YAML document"},
	{"bad second document", "default: deny\n---\n[\n", "did not find expected node content"},
}

func TestParseRulesTenant(t *testing.T) {
	got := mustParseRules(t, `rules: [{path: "/t/{tenant}/s/{space}", permission: a}, {path: /me, authenticated: true, tenant_header: X-Tenant}]`)
	want := &Rules{rules: []rule{
		{name: "rules[0]", segs: []segment{{segLiteral, "t"}, {segParam, "tenant"}, {segLiteral, "s"}, {segParam, "space"}},
			access: AccessPermission, permission: "a", space: spaceSource{kind: spacePath}, tenant: tenantSource{kind: spacePath}},
		{name: "rules[1]", segs: []segment{{segLiteral, "me"}}, access: AccessAuthenticated, tenant: tenantSource{spaceHeader, "x-tenant"}},
	}}
	if diff := cmp.Diff(want, got, cmpRules); diff != "" {
		t.Errorf("ParseRules mismatch (-want +got):\n%s", diff)
	}
	r, ps := got.match("x.test", "GET", "/t/acme/s/proj1")
	if r == nil || ps != (pathParams{space: "proj1", tenant: "acme"}) {
		t.Errorf("match = %v, %+v; want rules[0] with space proj1, tenant acme", r, ps)
	}
	// An extension that makes the route authenticated keeps its tenant.
	pol, err := got.policyFor("x.test", "GET", "/t/acme/s/proj1", map[string]string{ExtAuthenticated: "true"})
	if err != nil || pol.tenant.kind != spacePath || pol.pathTenant != "acme" {
		t.Errorf("policyFor = %+v, %v; want the {tenant} check kept", pol, err)
	}
}

func TestParseRulesYAMLErrors(t *testing.T) {
	for _, tt := range ruleYAMLTests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := ParseRules("rules.yaml", []byte(tt.yaml))
			if err == nil || rs != nil || !strings.HasPrefix(err.Error(), "rules.yaml: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseRules = %v, %v; want an error with %q", rs, err, tt.want)
			}
		})
	}
}

func TestParseRulesEmpty(t *testing.T) {
	for _, data := range []string{"", "# nothing\n", "null\n", "---\n", "rules: []\n"} {
		if diff := cmp.Diff(&Rules{}, mustParseRules(t, data), cmpRules); diff != "" {
			t.Errorf("ParseRules(%q) mismatch (-want +got):\n%s", data, diff)
		}
	}
	if diff := cmp.Diff(&Rules{}, DenyAllRules(), cmpRules); diff != "" {
		t.Errorf("DenyAllRules mismatch (-want +got):\n%s", diff)
	}
}

func TestRulesMatch(t *testing.T) {
	sample := mustParseRules(t, sampleRules)
	hosts := mustParseRules(t, `rules: [{host: "*.Example.TEST", path: /w, public: true}, {host: API.example.test, path: /e, public: true}, {path: "/**", methods: [get], authenticated: true}]`)
	order := mustParseRules(t, `rules: [{path: "/a/**", public: true}, {path: /a/b, permission: admin, space: ops}]`)
	for _, tt := range []struct {
		name                string
		rs                  *Rules
		host, method, path  string
		wantRule, wantSpace string // wantRule "": no match
	}{
		{"public root", sample, "x.test", "GET", "/public", "rules[0]", ""},
		{"public trailing slash", sample, "x.test", "GET", "/public/", "rules[0]", ""},
		{"public deep", sample, "x.test", "DELETE", "/public/a/b", "rules[0]", ""},
		{"public prefix is no segment", sample, "x.test", "GET", "/publicx", "", ""},
		{"public case", sample, "x.test", "GET", "/Public", "", ""},
		{"root", sample, "x.test", "GET", "/", "", ""},
		{"read on api host", sample, "api.example.test", "GET", "/spaces/s1/datasets/x", "rules[1]", "s1"},
		{"head on api host", sample, "api.example.test", "HEAD", "/spaces/s1/datasets", "rules[1]", "s1"},
		{"a GET rule covers HEAD", hosts, "x.test", "HEAD", "/e", "rules[2]", ""},
		{"read on other host", sample, "web.example.test", "GET", "/spaces/s1/datasets/x", "", ""},
		{"write on api host", sample, "api.example.test", "POST", "/spaces/s2/datasets", "rules[2]", "s2"},
		{"write anywhere", sample, "x.test", "DELETE", "/spaces/s2/datasets/a/b/", "rules[2]", "s2"},
		{"other method", sample, "api.example.test", "PATCH", "/spaces/s1/datasets/x", "", ""},
		{"lower-case method", sample, "api.example.test", "post", "/spaces/s1/datasets/x", "", ""},
		{"no datasets segment", sample, "api.example.test", "GET", "/spaces/s1", "", ""},
		{"other collection", sample, "api.example.test", "GET", "/spaces/s1/models", "", ""},
		{"me", sample, "x.test", "GET", "/me", "rules[3]", ""},
		{"me trailing slash", sample, "x.test", "GET", "/me/", "rules[3]", ""},
		{"me child", sample, "x.test", "GET", "/me/x", "", ""},
		{"me prefix", sample, "x.test", "GET", "/mex", "", ""},
		{"admin", sample, "x.test", "GET", "/admin", "rules[4]", ""},
		{"admin deep", sample, "x.test", "PUT", "/admin/users/1", "rules[4]", ""},
		{"wildcard host", hosts, "a.example.test", "PUT", "/w", "rules[0]", ""},
		{"wildcard host two labels", hosts, "a.b.example.test", "PUT", "/w", "rules[0]", ""},
		{"wildcard host apex", hosts, "example.test", "PUT", "/w", "", ""},
		{"wildcard host bare dot", hosts, ".example.test", "PUT", "/w", "", ""},
		{"wildcard host lookalike", hosts, "badexample.test", "PUT", "/w", "", ""},
		{"wildcard host suffix", hosts, "a.example.test.evil", "PUT", "/w", "", ""},
		{"exact host", hosts, "api.example.test", "PUT", "/e", "rules[1]", ""},
		{"exact host subdomain", hosts, "x.api.example.test", "PUT", "/e", "", ""},
		{"method upper-cased at parse", hosts, "x.test", "GET", "/e", "rules[2]", ""},
		{"first match wins", order, "x.test", "GET", "/a/b", "rules[0]", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, ps := tt.rs.match(tt.host, tt.method, tt.path)
			space := ps.space
			gotRule := ""
			if r != nil {
				gotRule = r.name
			}
			if diff := cmp.Diff([2]string{tt.wantRule, tt.wantSpace}, [2]string{gotRule, space}); diff != "" {
				t.Errorf("match(%q, %q, %q) mismatch (-want +got):\n%s", tt.host, tt.method, tt.path, diff)
			}
		})
	}
}

func TestRuleMatchPath(t *testing.T) {
	for _, tt := range []struct {
		pattern, path string
		ok            bool
		space         string
	}{
		{"/**", "/", true, ""},
		{"/**", "/a/b/c/", true, ""},
		{"/", "/", true, ""},
		{"/", "/a", false, ""},
		{"/me/", "/me", true, ""},
		{"/me/", "/me/", true, ""},
		{"/a/*/c", "/a/b/c", true, ""},
		{"/a/*/c", "/a/b/c/", true, ""},
		{"/a/*/c", "/a/c", false, ""},
		{"/a/*/c", "/a/b/x/c", false, ""},
		{"/a/*/c", "/a/b/c/d", false, ""},
		{"/a/*", "/a", false, ""},
		{"/a/*", "/a/b", true, ""},
		{"/files/{id}", "/files/1", true, ""},
		{"/files/{id}", "/files", false, ""},
		{"/spaces/{space}", "/spaces/s1", true, "s1"},
		{"/spaces/{space}", "/spaces/s1/", true, "s1"},
		{"/spaces/{space}", "/spaces/s1/x", false, ""},
		{"/spaces/{space}/**", "/spaces/%C3%A9/x", true, "%C3%A9"},
		{"/a/{x}/{space}/b", "/a/1/s9/b", true, "s9"},
	} {
		t.Run(tt.pattern+" "+tt.path, func(t *testing.T) {
			rs := mustParseRules(t, `rules: [{path: "`+tt.pattern+`", public: true}]`)
			ps, ok := rs.rules[0].matchPath(tt.path, false)
			space := ps.space
			if ok != tt.ok || (ok && space != tt.space) {
				t.Errorf("matchPath(%q) = %q, %v; want %q, %v", tt.path, space, ok, tt.space, tt.ok)
			}
		})
	}
}

func TestPolicyFor(t *testing.T) {
	sample := mustParseRules(t, sampleRules)
	authDefault := mustParseRules(t, "default: authenticated\n")
	pubSpace := mustParseRules(t, `rules: [{path: "/pub/{space}/**", public: true}]`)
	read := policy{access: AccessPermission, permission: "datasets.read", space: spaceSource{kind: spacePath}, pathSpace: "s1", name: "rules[1]"}
	const dsPath = "/spaces/s1/datasets/x"
	type ext = map[string]string
	for _, tt := range []struct {
		name       string
		rs         *Rules
		host, path string
		ext        ext
		want       policy
		err        *errExtension
	}{
		{"rule", sample, "api.example.test", dsPath, nil, read, nil},
		{"default deny", sample, "x.test", "/nothing", nil, policy{access: AccessDeny, name: "default"}, nil},
		{"default authenticated", authDefault, "x.test", "/nothing", nil, policy{access: AccessAuthenticated, name: "default"}, nil},
		{"deny all", DenyAllRules(), "x.test", "/public", nil, policy{access: AccessDeny, name: "default"}, nil},
		{"public false changes nothing", sample, "api.example.test", dsPath, ext{ExtPublic: "false", ExtAuthenticated: "false"}, read, nil},
		{"public overrides permission", sample, "x.test", "/admin/x", ext{ExtPublic: "true"}, policy{access: AccessPublic, name: "rules[4]+ext"}, nil},
		{"authenticated overrides default", sample, "x.test", "/nothing", ext{ExtAuthenticated: "true"}, policy{access: AccessAuthenticated, name: "default+ext"}, nil},
		{"permission keeps path space", sample, "api.example.test", dsPath, ext{ExtPermission: "reports.read"},
			policy{access: AccessPermission, permission: "reports.read", space: spaceSource{kind: spacePath}, pathSpace: "s1", name: "rules[1]+ext"}, nil},
		{"permission with fixed space", sample, "x.test", "/me", ext{ExtPermission: "profile.read", ExtSpace: "s2"},
			policy{access: AccessPermission, permission: "profile.read", space: spaceSource{spaceFixed, "s2"}, name: "rules[3]+ext"}, nil},
		{"permission with space header", sample, "x.test", "/nothing", ext{ExtPermission: "*", ExtSpaceHeader: "X-Space-ID"},
			policy{access: AccessPermission, permission: "*", space: spaceSource{spaceHeader, "x-space-id"}, name: "default+ext"}, nil},
		{"permission ignores a public rule's path space", pubSpace, "x.test", "/pub/s1/x", ext{ExtPermission: "reports.read"}, policy{},
			&errExtension{ExtPermission, "reports.read", "a permission needs a space: usher.space, usher.space_header or a rule with one"}},
		{"space overrides rule space", sample, "x.test", "/admin", ext{ExtSpace: "ops2"},
			policy{access: AccessPermission, permission: "admin", space: spaceSource{spaceFixed, "ops2"}, name: "rules[4]"}, nil},
		{"space header overrides path space", sample, "api.example.test", dsPath, ext{ExtSpaceHeader: "x-space"},
			policy{access: AccessPermission, permission: "datasets.read", space: spaceSource{spaceHeader, "x-space"}, pathSpace: "s1", name: "rules[1]"}, nil},

		{"public yes", sample, "x.test", "/admin", ext{ExtPublic: "yes"}, policy{}, &errExtension{ExtPublic, "yes", `must be "true" or "false"`}},
		{"public upper-case", sample, "x.test", "/admin", ext{ExtPublic: "TRUE"}, policy{}, &errExtension{ExtPublic, "TRUE", `must be "true" or "false"`}},
		{"authenticated one", sample, "x.test", "/admin", ext{ExtAuthenticated: "1"}, policy{}, &errExtension{ExtAuthenticated, "1", `must be "true" or "false"`}},
		{"public and authenticated", sample, "x.test", "/admin", ext{ExtPublic: "true", ExtAuthenticated: "true"}, policy{},
			&errExtension{ExtPermission, "", "set only one of usher.public, usher.authenticated and usher.permission"}},
		{"public and permission", sample, "x.test", "/admin", ext{ExtPublic: "true", ExtPermission: "admin"}, policy{},
			&errExtension{ExtPermission, "admin", "set only one of usher.public, usher.authenticated and usher.permission"}},
		{"bad permission", sample, "x.test", "/admin", ext{ExtPermission: "Admin"}, policy{},
			&errExtension{ExtPermission, "Admin", `permission "Admin": each dot-separated word must start with a lower-case letter`}},
		{"empty permission", sample, "x.test", "/admin", ext{ExtPermission: ""}, policy{}, &errExtension{ExtPermission, "", "permission must be 1–128 characters"}},
		{"permission without space on default", sample, "x.test", "/nothing", ext{ExtPermission: "reports.read"}, policy{},
			&errExtension{ExtPermission, "reports.read", "a permission needs a space: usher.space, usher.space_header or a rule with one"}},
		{"permission without space on public rule", sample, "x.test", "/public/x", ext{ExtPermission: "reports.read"}, policy{},
			&errExtension{ExtPermission, "reports.read", "a permission needs a space: usher.space, usher.space_header or a rule with one"}},
		{"bad space", sample, "x.test", "/admin", ext{ExtSpace: "../ops"}, policy{}, &errExtension{ExtSpace, "../ops", "not a space name"}},
		{"bad space header", sample, "x.test", "/admin", ext{ExtSpaceHeader: "x space"}, policy{}, &errExtension{ExtSpaceHeader, "x space", "not a header name"}},
		{"space and space header", sample, "x.test", "/admin", ext{ExtSpace: "ops", ExtSpaceHeader: "x-space"}, policy{},
			&errExtension{ExtSpaceHeader, "x-space", "set only one of usher.space and usher.space_header"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.rs.policyFor(tt.host, "GET", tt.path, tt.ext)
			var gotErr *errExtension
			if err != nil && !errors.As(err, &gotErr) {
				t.Fatalf("policyFor error %v is no *errExtension", err)
			}
			if diff := cmp.Diff(tt.err, gotErr, cmpRules); diff != "" {
				t.Fatalf("policyFor error mismatch (-want +got):\n%s", diff)
			}
			if err == nil {
				if diff := cmp.Diff(tt.want, got, cmpRules); diff != "" {
					t.Errorf("policyFor mismatch (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestAccessString(t *testing.T) {
	got := []string{AccessDeny.String(), AccessPublic.String(), AccessAuthenticated.String(), AccessPermission.String(), Access(99).String()}
	if diff := cmp.Diff([]string{"deny", "public", "authenticated", "permission", "deny"}, got); diff != "" {
		t.Errorf("Access.String mismatch (-want +got):\n%s", diff)
	}
}

func FuzzParseRules(f *testing.F) {
	f.Add([]byte(sampleRules))
	for _, tt := range ruleErrorTests {
		f.Add([]byte(tt.yaml))
	}
	for _, tt := range ruleYAMLTests {
		f.Add([]byte(tt.yaml))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := ParseRules("rules.yaml", data)
		if (rs == nil) == (err == nil) {
			t.Fatalf("ParseRules = %v, %v; want exactly one", rs, err)
		}
		if err != nil {
			return
		}
		for _, r := range rs.rules {
			switch {
			case r.access == AccessDeny || r.access > AccessPermission:
				t.Errorf("rule %s has access %v", r.name, r.access)
			case r.access == AccessPermission && (ValidatePermission(r.permission) != nil || r.space.kind == spaceNone):
				t.Errorf("permission rule %s has permission %q, space %+v", r.name, r.permission, r.space)
			case r.access == AccessPublic && r.tenant.kind != spaceNone:
				t.Errorf("public rule %s checks a tenant: %+v", r.name, r.tenant)
			case r.access != AccessPermission && (r.permission != "" || r.space.kind == spaceFixed || r.space.kind == spaceHeader):
				t.Errorf("%v rule %s has permission %q, space %+v", r.access, r.name, r.permission, r.space)
			}
			for i, sg := range r.segs {
				if sg.kind == segTail && i != len(r.segs)-1 {
					t.Errorf("rule %s has ** before its end", r.name)
				}
			}
		}
		for _, p := range []string{"/", "/a", "/a/b/", "/spaces/s1/datasets/x"} {
			rs.match("api.example.test", "GET", p)
		}
	})
}

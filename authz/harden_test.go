package authz_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
)

// hardenRules protect routes that the attacks of issue 8 aim at: a literal
// with a sub-delimiter in front of a weaker catch-all, tenant-scoped routes,
// and a method whose rule is stricter than GET's on the same path.
const hardenRules = `
default: deny
rules:
  - name: batch-delete
    path: /v1/items:batchDelete
    permission: admin
    space: ops
  - name: v1
    path: /v1/**
    authenticated: true
  - name: tenant-read
    path: /t/{tenant}/spaces/{space}/**
    permission: datasets.read
  - name: tenant-me
    path: /t/{tenant}/me
    authenticated: true
  - name: header-tenant-read
    path: /h/spaces/{space}/**
    tenant_header: X-Tenant-ID
    permission: datasets.read
  - name: read
    path: /spaces/{space}/datasets/**
    methods: [GET]
    permission: datasets.read
  - name: write
    path: /spaces/{space}/datasets/**
    methods: [POST, PUT, DELETE]
    permission: datasets.write
  - name: forms-read
    path: /forms/**
    methods: [GET]
    public: true
  - name: forms-delete
    path: /forms/**
    methods: [DELETE]
    permission: admin
    space: ops
`

// hardenOutcome is what the hardening tests assert of a decision: the rule
// and space too, which the identity headers describe.
type hardenOutcome struct {
	Status int
	Reason authz.Reason
	Rule   string
	Tenant string
	Space  string
	Seats  string
	Remove []string
}

type hardenCase struct {
	name string
	req  *authz.Request
	want hardenOutcome
}

func runHardenCases(t *testing.T, rules string, tests []hardenCase) {
	t.Helper()
	rs, err := authz.ParseRules("harden", []byte(rules))
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, func(c *authz.Config) { c.Rules = rs })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := w.check(t, tt.req)
			got := hardenOutcome{d.Status, d.Reason, d.Rule, d.Identity.Tenant, d.Space, d.Seats, d.Remove}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCheckPathParity: a route whose literal holds a sub-delimiter meets its
// rule however the request spells it, as upstreams that decode the path
// before routing serve it; escapes that change the path's structure once
// decoded are refused.
// Catalogue row 88 (docs/catalogue-map.md).
func TestCheckPathParity(t *testing.T) {
	w := newWorld(t) // for the fixture keys only
	ci, multi := w.keys["acme/ci"], w.keys["acme/multi"]
	const api = "api.example.test"
	denied := hardenOutcome{403, authz.ReasonPermissionDenied, "batch-delete", "acme", "ops", "", nil}
	invalid := hardenOutcome{Status: 400, Reason: authz.ReasonPathInvalid}
	allowed := hardenOutcome{200, authz.ReasonAllowed, "batch-delete", "acme", "ops", "admins", []string{"x-api-key"}}
	tests := []hardenCase{
		{"literal", req("POST", api, "/v1/items:batchDelete", "x-api-key", ci), denied},
		{"encoded colon", req("POST", api, "/v1/items%3AbatchDelete", "x-api-key", ci), denied},
		{"encoded colon, lower-case hex", req("POST", api, "/v1/items%3abatchDelete", "x-api-key", ci), denied},
		{"every character encoded", req("POST", api, "/%76%31/%69%74%65%6d%73%3A%62%61%74%63%68%44%65%6C%65%74%65", "x-api-key", ci), denied},
		{"encoded colon, slash run, query", req("POST", api, "//v1//items%3AbatchDelete?x=%3A", "x-api-key", ci), denied},
		{"encoded colon, trailing slash", req("POST", api, "/v1/items%3AbatchDelete/", "x-api-key", ci), denied},
		{"encoded colon, allowed caller", req("POST", api, "/v1/items%3AbatchDelete", "x-api-key", multi), allowed},
		{"double-encoded colon", req("POST", api, "/v1/items%253AbatchDelete", "x-api-key", ci), invalid},
		{"encoded question mark", req("POST", api, "/v1/items%3FbatchDelete", "x-api-key", ci), invalid},
		{"encoded hash", req("POST", api, "/v1/items%23batchDelete", "x-api-key", ci), invalid},
		{"overlong UTF-8", req("POST", api, "/v1/items%C0%BAbatchDelete", "x-api-key", ci), invalid},
		{"another item", req("POST", api, "/v1/items%3Aget", "x-api-key", ci),
			hardenOutcome{200, authz.ReasonAllowed, "v1", "acme", "", "editors", []string{"x-api-key"}}},
	}
	runHardenCases(t, hardenRules, tests)

	t.Run("case-insensitive", func(t *testing.T) {
		runHardenCases(t, "case_insensitive: true\n"+hardenRules, []hardenCase{
			{"encoded colon, other case", req("POST", api, "/V1/ITEMS%3abatchdelete", "x-api-key", ci), denied},
			{"encoded letters, other case", req("POST", api, "/%56%31/items%3A%42ATCHDELETE", "x-api-key", ci), denied},
		})
	})
}

// TestCheckTenant: a route that names a tenant, by {tenant} or
// tenant_header, serves only that tenant's callers, even when another
// tenant's seat grants the permission in a space of the same name.
// Catalogue rows 4, 101 (docs/catalogue-map.md).
func TestCheckTenant(t *testing.T) {
	w := newWorld(t)
	ci, globex := w.keys["acme/ci"], w.keys["globex/ci"]
	const api = "api.example.test"
	allowAcme := func(rule, space string) hardenOutcome {
		return hardenOutcome{200, authz.ReasonAllowed, rule, "acme", space, "editors", []string{"x-api-key"}}
	}
	mismatch := func(rule, tenant string) hardenOutcome {
		return hardenOutcome{403, authz.ReasonTenantMismatch, rule, tenant, "", "", nil}
	}
	runHardenCases(t, hardenRules, []hardenCase{
		{"own tenant", get(api, "/t/acme/spaces/proj1/x", "x-api-key", ci), allowAcme("tenant-read", "proj1")},
		{"own tenant, encoded", get(api, "/t/%61cme/spaces/proj1/x", "x-api-key", ci), allowAcme("tenant-read", "proj1")},
		{"other tenant's same-named space", get(api, "/t/acme/spaces/proj1/x", "x-api-key", globex), mismatch("tenant-read", "globex")},
		{"other tenant, own space", get(api, "/t/globex/spaces/proj1/x", "x-api-key", globex),
			hardenOutcome{200, authz.ReasonAllowed, "tenant-read", "globex", "proj1", "editors", []string{"x-api-key"}}},
		{"tenant in another case", get(api, "/t/ACME/spaces/proj1/x", "x-api-key", ci), mismatch("tenant-read", "acme")},
		{"authenticated route", get(api, "/t/acme/me", "x-api-key", globex), mismatch("tenant-me", "globex")},
		{"authenticated route, own tenant", get(api, "/t/acme/me", "x-api-key", ci), allowAcme("tenant-me", "")},
		{"no credential", get(api, "/t/acme/me"), hardenOutcome{Status: 401, Reason: authz.ReasonCredentialMissing, Rule: "tenant-me"}},
		{"header", get(api, "/h/spaces/proj1/x", "x-api-key", ci, "x-tenant-id", "acme"), allowAcme("header-tenant-read", "proj1")},
		{"header of another tenant", get(api, "/h/spaces/proj1/x", "x-api-key", globex, "x-tenant-id", "acme"), mismatch("header-tenant-read", "globex")},
		{"header missing", get(api, "/h/spaces/proj1/x", "x-api-key", ci), mismatch("header-tenant-read", "acme")},
		{"header repeated", get(api, "/h/spaces/proj1/x", "x-api-key", ci, "x-tenant-id", "acme,globex"), mismatch("header-tenant-read", "acme")},
	})
}

// TestCheckMethodParam: a _method query parameter gets what the override
// headers get: the request must be allowed as that method too, and the
// answer describes the rule that method matched.
// Catalogue row 102 (docs/catalogue-map.md).
func TestCheckMethodParam(t *testing.T) {
	w := newWorld(t)
	ci, reader, multi := w.keys["acme/ci"], w.keys["acme/reader"], w.keys["acme/multi"]
	const api = "api.example.test"
	const ds = "/spaces/proj1/datasets/a"
	readerDenied := hardenOutcome{403, authz.ReasonPermissionDenied, "write", "acme", "proj1", "viewers", nil}
	readerAllowed := hardenOutcome{200, authz.ReasonAllowed, "read", "acme", "proj1", "viewers", []string{"x-api-key"}}
	invalid := hardenOutcome{Status: 400, Reason: authz.ReasonRequestInvalid}
	tests := []hardenCase{
		{"no override", get(api, ds, "x-api-key", reader), readerAllowed},
		{"_method", get(api, ds+"?_method=DELETE", "x-api-key", reader), readerDenied},
		{"_method lower-case value", get(api, ds+"?_method=delete", "x-api-key", reader), readerDenied},
		{"_method name in upper case", get(api, ds+"?_METHOD=PUT", "x-api-key", reader), readerDenied},
		{"_method after other parameters", get(api, ds+"?a=1&b&_method=POST", "x-api-key", reader), readerDenied},
		{"_method after ';'", get(api, ds+"?a=1;_method=POST", "x-api-key", reader), readerDenied},
		{"_method name encoded", get(api, ds+"?%5Fmethod=DELETE", "x-api-key", reader), readerDenied},
		{"_method value encoded", get(api, ds+"?_method=%44ELETE", "x-api-key", reader), readerDenied},
		{"PHP folds '.' to '_'", get(api, ds+"?.method=DELETE", "x-api-key", reader), readerDenied},
		{"PHP drops leading spaces", get(api, ds+"?+_method=DELETE", "x-api-key", reader), readerDenied},
		{"array form", get(api, ds+"?_method[]=DELETE", "x-api-key", reader), readerDenied},
		{"same as the request's method", get(api, ds+"?_method=GET", "x-api-key", reader), readerAllowed},
		{"other parameter names", get(api, ds+"?x_method=DELETE&_methods=DELETE&method=DELETE", "x-api-key", reader), readerAllowed},
		{"not a method", get(api, ds+"?_method=DE+LETE", "x-api-key", reader), invalid},
		{"empty", get(api, ds+"?_method=", "x-api-key", reader), invalid},
		{"repeated, disagreeing", get(api, ds+"?_method=GET&_method=DELETE", "x-api-key", ci), invalid},
		{"repeated, agreeing", get(api, ds+"?_method=DELETE&_method=delete", "x-api-key", reader), readerDenied},
		{"header and parameter disagree", get(api, ds+"?_method=PUT", "x-api-key", ci, "x-http-method-override", "DELETE"), invalid},
		{"headers disagree", get(api, ds, "x-api-key", ci, "x-http-method-override", "DELETE", "x-http-method", "PUT"), invalid},
		{"header and parameter agree", get(api, ds+"?_method=put", "x-api-key", reader, "x-http-method-override", "PUT"), readerDenied},
		{"answer is the effective method's", get(api, ds+"?_method=DELETE", "x-api-key", ci),
			hardenOutcome{200, authz.ReasonAllowed, "write", "acme", "proj1", "editors", []string{"x-api-key"}}},
		{"public GET, DELETE needs a credential", get(api, "/forms/x?_method=DELETE"),
			hardenOutcome{Status: 401, Reason: authz.ReasonCredentialMissing, Rule: "forms-delete"}},
		{"public GET, DELETE needs admin", get(api, "/forms/x?_method=DELETE", "x-api-key", ci),
			hardenOutcome{403, authz.ReasonPermissionDenied, "forms-delete", "acme", "ops", "", nil}},
		{"identity headers describe the DELETE rule", get(api, "/forms/x?_method=DELETE", "x-api-key", multi),
			hardenOutcome{200, authz.ReasonAllowed, "forms-delete", "acme", "ops", "admins", []string{"x-api-key"}}},
	}
	runHardenCases(t, hardenRules, tests)
}

package authz_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
)

// Security catalogue row 4 (docs/security-catalogue.md): seats and spaces
// are per tenant. The fixture gives acme and globex a seat "editors" and
// spaces "proj1" and "proj2" of the same names but different grants:
//
//	acme   editors: proj1=datasets.read,datasets.write
//	globex editors: proj1=datasets.read  proj2=datasets.read,datasets.write
//
// A seat lookup or seat cache key that lost the tenant would answer one
// tenant's editors with the other's grants: whichever tenant filled the
// cache first would decide for both.

// tenantCase is one request of a tenant-scoping sequence and its answer.
type tenantCase struct {
	name   string
	method string
	space  string
	cred   string // header name
	value  string // credential
	want   outcome
}

func runTenantCases(t *testing.T, w *world, cases []tenantCase) {
	t.Helper()
	for _, tc := range cases {
		r := req(tc.method, "api.example.test", "/spaces/"+tc.space+"/datasets/a", tc.cred, tc.value)
		if diff := cmp.Diff(tc.want, outcomeOf(w.check(t, r))); diff != "" {
			t.Errorf("%s: decision (-want +got):\n%s", tc.name, diff)
		}
	}
}

// tenantScopeCases are the requests of TestCheckSameNamedSeatsPerTenant
// for the credentials given, in an order where each tenant reads its
// editors seat first.
func tenantScopeCases(acmeCred, acmeValue, globexCred, globexValue string, acmeID, globexID outcome) (acmeFirst, globexFirst []tenantCase) {
	with := func(o outcome, status int, reason authz.Reason, seats string, remove ...string) outcome {
		o.Status, o.Reason, o.Seats, o.Remove = status, reason, seats, remove
		if len(remove) == 0 {
			o.Remove = nil
		}
		return o
	}
	acmeWriteProj1 := tenantCase{"acme writes its proj1", "POST", "proj1", acmeCred, acmeValue,
		with(acmeID, 200, authz.ReasonAllowed, "editors", acmeCred)}
	acmeReadProj2 := tenantCase{"acme reads its proj2 (globex's editors could)", "GET", "proj2", acmeCred, acmeValue,
		with(acmeID, 403, authz.ReasonPermissionDenied, "")}
	globexWriteProj1 := tenantCase{"globex writes its proj1 (acme's editors could)", "POST", "proj1", globexCred, globexValue,
		with(globexID, 403, authz.ReasonPermissionDenied, "editors")}
	globexWriteProj2 := tenantCase{"globex writes its proj2", "POST", "proj2", globexCred, globexValue,
		with(globexID, 200, authz.ReasonAllowed, "editors", globexCred)}
	globexReadProj1 := tenantCase{"globex reads its proj1", "GET", "proj1", globexCred, globexValue,
		with(globexID, 200, authz.ReasonAllowed, "editors", globexCred)}
	acmeFirst = []tenantCase{acmeWriteProj1, globexWriteProj1, globexWriteProj2, acmeReadProj2, globexReadProj1}
	globexFirst = []tenantCase{globexWriteProj2, acmeReadProj2, acmeWriteProj1, globexWriteProj1, globexReadProj1}
	return acmeFirst, globexFirst
}

// TestCheckSameNamedSeatsPerTenant (catalogue row 4): each tenant's API key
// gets exactly its own tenant's editors grants in spaces whose names both
// tenants use, whichever tenant's seat was read (and cached) first.
// Catalogue rows 107, 109 (docs/catalogue-map.md).
func TestCheckSameNamedSeatsPerTenant(t *testing.T) {
	acmeID := outcome{Subject: "apikey:ciacmekeyaaaaaaa", Tenant: "acme", Auth: authz.AuthAPIKey}
	globexID := outcome{Subject: "apikey:ciglobexkeyaaaaa", Tenant: "globex", Auth: authz.AuthAPIKey}
	for _, order := range []string{"acme first", "globex first"} {
		t.Run(order, func(t *testing.T) {
			w := newWorld(t)
			acmeFirst, globexFirst := tenantScopeCases("x-api-key", w.keys["acme/ci"], "x-api-key", w.keys["globex/ci"], acmeID, globexID)
			cases := acmeFirst
			if order == "globex first" {
				cases = globexFirst
			}
			runTenantCases(t, w, cases)
		})
	}
}

// TestCheckSameNamedSeatsPerTenantUsherToken (catalogue row 4): usher's own
// tokens name their seat per space (hash_perm); the seat read is the
// token's tenant's, whichever tenant's was cached first.
func TestCheckSameNamedSeatsPerTenantUsherToken(t *testing.T) {
	acmeID := outcome{Subject: "alice", Tenant: "acme", Auth: authz.AuthJWT}
	globexID := outcome{Subject: "alice", Tenant: "globex", Auth: authz.AuthJWT}
	for _, order := range []string{"acme first", "globex first"} {
		t.Run(order, func(t *testing.T) {
			w := newWorld(t)
			ring := w.keyring(t)
			perms := map[string]string{"proj1": "editors", "proj2": "editors"}
			acme := "Bearer " + mint(t, ring["acme"], w.clock.Now(), time.Hour, perms)
			globex := "Bearer " + mint(t, ring["globex"], w.clock.Now(), time.Hour, perms)
			acmeFirst, globexFirst := tenantScopeCases("authorization", acme, "authorization", globex, acmeID, globexID)
			cases := acmeFirst
			if order == "globex first" {
				cases = globexFirst
			}
			runTenantCases(t, w, cases)
		})
	}
}

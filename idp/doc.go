// Package idp verifies bearer tokens issued by the identity providers that
// tenants trust (Entra ID, Okta, Auth0, Keycloak, Google, any OpenID
// provider): discovery and the provider's keys through coreos/go-oidc, with
// a key set of its own that keeps the last good keys while the provider is
// down (for Config.KeysStaleMax, a day by default) and fetches on an
// unknown kid at most once per 30 seconds.
//
// It implements authz.ExternalVerifier; the trust records come from the
// store through a Lookup that cmd wires.
package idp

// Package authz decides whether a request may reach its upstream.
//
// It is transport-free: a [Request] goes in, a [Decision] comes out. The
// package owns the route rules, the credential priority (API key, bearer
// token, session cookie), the API key format, seats and their permissions per
// space, and the in-process caches in front of the store. It defines the
// small interfaces it needs from a store ([KeyLookup], [SeatLookup],
// [ChangeFeed]); the store package implements them.
//
// [Authorizer.Check] (authorizer.go) takes every request through the steps
// the README describes, one group of files each:
//
//  1. Normalise: request.go (host, method, method overrides by header or
//     _method) and path.go (the path as the upstream will route it).
//  2. Route: rules.go (the rules file and the first matching rule) and
//     policy.go (what the rule asks for, Envoy's context extensions, the
//     tenant a route names).
//  3. Authenticate: credential.go finds the one credential that decides,
//     in priority order, and dispatches by its kind: apikey_auth.go checks
//     an API key against its record (apikey.go is the key format);
//     bearer.go caches tokens and dispatches by issuer to usher_token.go
//     (usher's own HS256 tokens: mint and verify) or idp_token.go (the
//     tenants' IdP tokens and their groups).
//  4. Authorise: seats.go (the request's space, and whether the caller's
//     seats grant the permission there).
//  5. Answer: decision.go (decisions, reasons, statuses) and headers.go
//     (identity headers set; spoofed headers and credentials removed).
//
// Not steps: cache.go (the read-through cache), key_index.go (the API key
// ids that exist, consulted before the key cache), changes.go (the change
// feed that purges the caches and grows the index), model.go (the records
// and store interfaces) and names.go (name rules).
//
// authz must not import protobuf, net/http, the MongoDB driver or the login
// app; a test in this package enforces that.
package authz

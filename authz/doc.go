// Package authz decides whether a request may reach its upstream.
//
// It is transport-free: a [Request] goes in, a [Decision] comes out. The
// package owns the route rules, the credential priority (API key, bearer
// token, session cookie), the API key format, seats and their permissions per
// space, and the in-process caches in front of the store. It defines the
// small interfaces it needs from a store ([KeyLookup], [SeatLookup],
// [ChangeFeed]); the store package implements them.
//
// authz must not import protobuf, net/http, the MongoDB driver or the login
// app; a test in this package enforces that.
package authz

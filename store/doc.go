// Package store keeps usher's data in MongoDB through the official driver,
// or in the embedded FerretDB server, which speaks the same wire protocol:
// one code path for both.
//
// It is the only package that imports the MongoDB driver. It implements the
// lookups authz needs ([authz.KeyLookup], [authz.SeatLookup],
// [authz.ChangeFeed], [authz.SessionLookup]), the storage the login app
// owns the interfaces of (login.Sessions, RefreshTokens, Users,
// Providers, OnceMarks) and the admin operations of the CLI. Every write
// appends a record to the changes collection so that running servers purge
// their caches.
//
// No operation needs a transaction, and nothing relies on concurrent updates
// of one document being atomic, which FerretDB does not guarantee: anything
// claimed once is claimed by an insert under a unique index.
package store

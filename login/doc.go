// Package login is usher's companion HTTP app: browser login with OIDC,
// Google and GitHub (authorization code + PKCE), server-side sessions
// behind an opaque cookie, refresh-token rotation, logout, and the device
// authorization grant for the CLI. It owns the small storage interfaces
// it needs (store.go); store/ implements them.
package login

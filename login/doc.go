// Package login is usher's companion HTTP app: browser login with OIDC,
// Google and GitHub (authorization code + PKCE), server-side sessions
// behind an opaque cookie, refresh-token rotation, logout, and the device
// authorization grant for the CLI. It owns the small storage interfaces
// it needs (store.go); store/ implements them.
//
// Routes (App.Mount):
//
//	GET  /                    who is signed in, or the login page
//	GET  /login               the tenant's providers as buttons (?next=, ?tenant=)
//	POST /auth/oidc/login     form provider, next, tenant → flow cookie, 302 to the IdP
//	GET  /auth/oidc/callback  → session cookie, 302 to next
//	GET  /logout, POST /logout → cookie cleared, session revoked, RP-initiated logout
//	GET  /signed-out          where the IdP returns after logout
//	GET  /whoami              the session as JSON (never a token)
//	POST /auth/oidc/validate  an IdP ID token → usher access and refresh tokens
//	POST /auth/oidc/refresh   refresh-token rotation
//	GET  /.well-known/oauth-authorization-server   RFC 8414 metadata
//	POST /oauth/device/code   client_id, scope, tenant → RFC 8628 device authorization
//	GET  /device, POST /device   enter, confirm, approve or deny a user code
//	POST /oauth/token         device_code and refresh_token grants (public clients)
//	POST /oauth/revoke        RFC 7009: a refresh token's family revoked
//	GET  /static/style.css
//
// Every refusal carries a stable reason code: in the HTML error page
// (with the status and the request id), or in JSON as
// {"error", "error_description", "reason", "request_id"}, where "error"
// is the OAuth error code on the token endpoints (invalid_grant,
// invalid_request, access_denied, temporarily_unavailable) and the reason
// code elsewhere. The codes:
//
//	400 flow_missing flow_invalid flow_expired flow_replayed state_missing
//	    state_mismatch issuer_mismatch issuer_missing provider_mismatch
//	    provider_unknown idp_error code_missing code_replayed
//	    code_exchange_failed request_invalid tenant_invalid
//	    refresh_token_invalid refresh_token_expired refresh_token_reused
//	    session_revoked session_expired idp_refresh_refused access_revoked
//	    issuer_unknown id_token_invalid id_token_replayed (token endpoints)
//	    device_code_invalid device_code_redeemed authorization_pending
//	    slow_down access_denied expired_token grant_type_unsupported
//	    scope_invalid token_type_unsupported (OAuth endpoints)
//	    user_code_invalid user_code_unknown user_code_expired client_unknown
//	    (/device)
//	401 client_invalid (OAuth's invalid_client) id_token_invalid nonce_mismatch groups_invalid session_missing
//	    session_invalid session_expired session_revoked cookie_duplicate
//	403 email_unverified email_domain_not_allowed not_invited
//	    provider_denied csrf tenant_mismatch
//	409 user_code_used
//	429 rate_limited
//	503 idp_unavailable store_unavailable
package login

// Package envoy adapts the wire to authz: the Envoy ext_authz v3 gRPC
// server (CheckRequest in, CheckResponse out) and example Envoy and Istio
// configurations under examples/. It holds no policy: authz decides.
package envoy

// Package envoy adapts the wire to authz: the Envoy ext_authz v3 gRPC
// server (CheckRequest in, CheckResponse out), HTTP check mode for Envoy's
// http_service, nginx auth_request, Traefik forwardAuth and Caddy
// forward_auth ([HTTPServer]), and example Envoy, Istio, nginx, Caddy and
// Traefik configurations under examples/. It holds no policy: authz
// decides, and both transports send the same answer.
package envoy

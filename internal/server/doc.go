// Package server runs `usher serve`: the ext_authz gRPC server, its
// health, readiness and metrics endpoints, and the background work that
// keeps the authorizer's caches current. [Run] starts its parts in a
// visible order and stops them in reverse.
package server

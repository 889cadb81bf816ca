package main

import srv "github.com/usher-dev/usher/internal/server"

// statusLabel writes an HTTP status as /metrics labels it, so that bench
// and the metrics agree.
func statusLabel(s int) string { return srv.StatusLabel(s) }

//go:build !unix

package credentials

// Lock is a no-op where flock is missing: concurrent refreshes may race.
func Lock(string) (func(), error) { return func() {}, nil }

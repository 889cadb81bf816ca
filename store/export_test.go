package store

// SetSeatReadHook makes fn run between every seat writer's read of the
// current version and its insert of the next one.
func SetSeatReadHook(s *Store, fn func()) { s.seatRead = fn }

package store_test

import (
	"github.com/usher-dev/usher/login"
	"github.com/usher-dev/usher/store"
)

// The interfaces the login app owns and the store implements.
var (
	_ login.Sessions      = (*store.Store)(nil)
	_ login.RefreshTokens = (*store.Store)(nil)
	_ login.Users         = (*store.Store)(nil)
	_ login.Providers     = (*store.Store)(nil)
	_ login.OnceMarks     = (*store.Store)(nil)
	_ login.SeatLister    = (*store.Store)(nil)
)

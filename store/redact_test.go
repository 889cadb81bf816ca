package store_test

import (
	"testing"

	"github.com/usher-dev/usher/store"
)

// TestRedactURI: the store's description in logs never shows a password
// or the options, and names a Unix socket (another process's embedded
// store) by its path.
func TestRedactURI(t *testing.T) {
	tests := []struct{ name, uri, want string }{
		{"plain", "mongodb://db.internal:27017/usher", "mongodb://db.internal:27017/usher"},
		{"password", "mongodb://u:hunter2@db.internal/usher?authSource=admin", "mongodb://u:REDACTED@db.internal/usher"},
		{"socket", "mongodb://%2Ftmp%2Fusher%2Fmongo.sock/usher?tls=false", "mongodb://%2Ftmp%2Fusher%2Fmongo.sock/usher"},
		{"socket with a password", "mongodb://u:hunter2@%2Ftmp%2Fmongo.sock/usher", "mongodb (unparseable uri)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := store.RedactURI(tt.uri); got != tt.want {
				t.Errorf("RedactURI(%q) = %q, want %q", tt.uri, got, tt.want)
			}
		})
	}
}

package envoy_test

import (
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
)

// TestCheckNonUTF8HeaderValues: header bytes that are not UTF-8 (which only
// the raw header map can carry; proto3 strings cannot) never panic and never
// allow: in a credential they are malformed, elsewhere they are carried as
// they are and the credential decides (docs/security-catalogue.md row 86).
func TestCheckNonUTF8HeaderValues(t *testing.T) {
	w := newWorld(t, nil)
	raw := func(extra ...*corev3.HeaderValue) []*corev3.HeaderValue {
		return append([]*corev3.HeaderValue{
			{Key: ":path", RawValue: []byte("/spaces/proj1/datasets/7")},
		}, extra...)
	}
	tests := []struct {
		name    string
		headers []*corev3.HeaderValue
		want    answer
	}{
		{"api key", raw(&corev3.HeaderValue{Key: "x-api-key", RawValue: []byte("sk_\xff\xfe")}),
			denied(codes.Unauthenticated, 401, "apikey_malformed")},
		{"bearer", raw(&corev3.HeaderValue{Key: "authorization", RawValue: []byte("Bearer \xff\xfe")}),
			denied(codes.Unauthenticated, 401, "bearer_malformed")},
		{"no credential, a bad user agent", raw(&corev3.HeaderValue{Key: "user-agent", RawValue: []byte("\xff\xfe")}),
			denied(codes.Unauthenticated, 401, "credential_missing")},
		{"good key, a bad user agent", raw(
			&corev3.HeaderValue{Key: "x-api-key", RawValue: []byte(w.keys["acme/ci"])},
			&corev3.HeaderValue{Key: "user-agent", RawValue: []byte("\xff\xfe")}),
			allowed("apikey:ciacmekeyaaaaaaa", "acme", "editors", "x-api-key")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := envoyRequest("GET", api, "/spaces/proj1/datasets/7")
			h := req.Attributes.Request.Http
			h.Headers = nil
			h.HeaderMap = &corev3.HeaderMap{Headers: tt.headers}
			if diff := cmp.Diff(tt.want, w.check(t, req)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

package envoy_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/envoy"
)

// recordingDecider decides with the authorizer and keeps the request it
// was handed.
type recordingDecider struct {
	envoy.Decider
	got *authz.Request
}

func (d *recordingDecider) Check(ctx context.Context, r *authz.Request) authz.Decision {
	c := *r
	d.got = &c
	return d.Decider.Check(ctx, r)
}

// FuzzHTTPCheck feeds arbitrary check requests (raw HTTP/1.1, seeded from
// the parity table in every dialect) through HTTP check mode with a real
// authorizer, from a trusted and an untrusted peer, and checks what must
// hold for any input:
//   - it never panics, and answers 404 or one of the documented statuses;
//   - a denial's body is {"error":"<reason>"} with that reason in
//     x-usher-reason; an allow sets only identity headers and the removal
//     list, with no body;
//   - Envoy's dialect decides exactly the method, Host and raw path after
//     /ext_authz that the check request carries (the reference);
//   - /auth from an untrusted peer is 400 forwarded_untrusted and never
//     reaches the decision.
func FuzzHTTPCheck(f *testing.F) {
	w := newHTTPWorld(f)
	for _, d := range httpDialects {
		for _, c := range []parityCase{
			{method: "GET", host: api, path: "/spaces/proj1/datasets/7", headers: []string{"X-Api-Key", w.keys["acme/ci"]}},
			{method: "POST", host: api, path: "/public/%2e%2e/admin?_method=PUT", headers: []string{"X_Usher_Subject", "root"}},
			{method: "get", host: "API.example.test:443", path: "//me", headers: []string{"Authorization", "Bearer " + w.tokens["good"]}},
		} {
			f.Add([]byte(d.request(c)), false)
			f.Add([]byte(d.request(c)), true)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte, untrusted bool) {
		hr, err := http.ReadRequest(bufio.NewReader(strings.NewReader(string(raw))))
		if err != nil {
			return
		}
		rec := &recordingDecider{Decider: w.a}
		srv := &envoy.HTTPServer{Decider: rec, Realm: "usher"}
		hr.RemoteAddr = "127.0.0.1:40000"
		if untrusted {
			hr.RemoteAddr = "192.0.2.1:40000"
		}
		rr := httptest.NewRecorder()
		srv.ServeHTTP(rr, hr)
		status, body := rr.Code, rr.Body.String()
		switch status {
		case 404:
			if rec.got != nil {
				t.Fatalf("404 after a decision on %+v", rec.got)
			}
			return
		case 200:
			if body != "" {
				t.Fatalf("an allow with a body %q", body)
			}
			for name := range rr.Header() {
				if l := strings.ToLower(name); !strings.HasPrefix(l, "x-usher-") && l != "x-envoy-auth-headers-to-remove" &&
					l != "cache-control" && l != "content-length" {
					t.Fatalf("an allow sets %s", name)
				}
			}
		case 400, 401, 403, 500, 503:
			if reason := rr.Header().Get("X-Usher-Reason"); body != `{"error":"`+reason+`"}` {
				t.Fatalf("denial %d: body %q, reason %q", status, body, reason)
			}
		default:
			t.Fatalf("status %d", status)
		}
		target := hr.RequestURI
		switch {
		case strings.HasPrefix(target, envoy.PathExtAuthz+"/"):
			if rec.got == nil {
				t.Fatalf("Envoy's dialect answered %d without deciding", status)
			}
			want := authz.Request{Method: hr.Method, Host: hr.Host, Path: strings.TrimPrefix(target, envoy.PathExtAuthz)}
			if g := rec.got; g.Method != want.Method || g.Host != want.Host || g.Path != want.Path {
				t.Fatalf("decided %q %q %q, the check request names %q %q %q", g.Method, g.Host, g.Path, want.Method, want.Host, want.Path)
			}
		case untrusted:
			if rec.got != nil || status != 400 || rr.Header().Get("X-Usher-Reason") != string(authz.ReasonForwardedUntrusted) {
				t.Fatalf("/auth from an untrusted peer: %d %q, decided %+v", status, body, rec.got)
			}
		}
	})
}

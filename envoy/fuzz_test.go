package envoy_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/envoy"
)

// FuzzCheckRequest feeds arbitrary CheckRequests (proto wire bytes, seeded
// from the golden inputs) through the ext_authz server with a real
// authorizer and store, and checks what must hold for any input:
//   - Check never fails and never panics;
//   - the response is a well-formed allow or deny, never both, and a deny
//     carries one of the documented statuses and {"error": reason};
//   - an allow only ever sets x-usher-* headers, with overwrite;
//   - the same request sent as Envoy's raw header_map gets the same answer
//     as with the headers map (the reference).
//
// Catalogue rows 86, 93 (docs/catalogue-map.md).
func FuzzCheckRequest(f *testing.F) {
	w := newWorld(f, nil)
	srv := &envoy.Server{Decider: w.a, Realm: "usher"}
	inputs, err := filepath.Glob("testdata/*.input.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, in := range inputs {
		data, err := proto.Marshal(readInput(f, in, w.keys))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req := &authv3.CheckRequest{}
		if proto.Unmarshal(data, req) != nil {
			return
		}
		resp, err := srv.Check(context.Background(), req)
		if err != nil {
			t.Fatalf("Check returned an error: %v", err)
		}
		checkWellFormed(t, resp)

		h := req.GetAttributes().GetRequest().GetHttp()
		if h == nil || len(h.GetHeaders()) == 0 || h.GetHeaderMap() != nil {
			return
		}
		raw := proto.Clone(req).(*authv3.CheckRequest)
		rh := raw.Attributes.Request.Http
		for k, v := range rh.Headers {
			if k != strings.ToLower(k) {
				return // Envoy never sends upper-case names in the map
			}
			rh.HeaderMap = &corev3.HeaderMap{Headers: append(rh.GetHeaderMap().GetHeaders(), &corev3.HeaderValue{Key: k, RawValue: []byte(v)})}
		}
		rh.Headers = nil
		rresp, err := srv.Check(context.Background(), raw)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(sortRemove(resp), sortRemove(rresp)) {
			t.Errorf("header map and raw header map disagree:\n%v\n%v", resp, rresp)
		}
	})
}

func sortRemove(r *authv3.CheckResponse) *authv3.CheckResponse {
	r = proto.Clone(r).(*authv3.CheckResponse)
	if ok := r.GetOkResponse(); ok != nil {
		slices.Sort(ok.HeadersToRemove)
	}
	return r
}

func checkWellFormed(t *testing.T, resp *authv3.CheckResponse) {
	t.Helper()
	code := codes.Code(resp.GetStatus().GetCode())
	reason := resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue()
	if ok := resp.GetOkResponse(); ok != nil {
		if code != codes.OK || resp.GetDeniedResponse() != nil {
			t.Fatalf("allow with status %v", code)
		}
		if reason != string(authz.ReasonAllowed) && reason != string(authz.ReasonPublic) {
			t.Fatalf("allow with reason %q", reason)
		}
		for _, h := range ok.GetHeaders() {
			if !strings.HasPrefix(h.GetHeader().GetKey(), "x-usher-") || h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
				t.Fatalf("allow sets %v", h)
			}
		}
		return
	}
	d := resp.GetDeniedResponse()
	if d == nil || code == codes.OK {
		t.Fatalf("neither allowed nor denied: %v", resp)
	}
	switch status := int(d.GetStatus().GetCode()); status {
	case 400, 401, 403, 500, 503:
		if authz.StatusFor(authz.Reason(reason)) != status {
			t.Fatalf("reason %q with status %d", reason, status)
		}
	default:
		t.Fatalf("deny with status %d", status)
	}
	var body map[string]string
	if err := json.Unmarshal([]byte(d.GetBody()), &body); err != nil || len(body) != 1 || body["error"] != reason {
		t.Fatalf("deny body %q for reason %q", d.GetBody(), reason)
	}
}

package envoy

import (
	"errors"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/usher-dev/usher/authz"
)

// errNoHTTP is returned for a CheckRequest without HTTP attributes, such as
// one from Envoy's network (L4) ext_authz filter.
var errNoHTTP = errors.New("check request has no HTTP request attributes")

// RequestFrom converts an Envoy CheckRequest into an authz.Request. It
// copies nothing it does not have to: the header map is used as Envoy sent
// it (lower-case names, repeated headers joined with ",").
//
// When Envoy encodes raw headers (header_map instead of headers), names are
// lower-cased and repeated headers joined with "," here, the same way.
func RequestFrom(req *authv3.CheckRequest) (authz.Request, error) {
	attrs := req.GetAttributes()
	h := attrs.GetRequest().GetHttp()
	if h == nil {
		return authz.Request{}, errNoHTTP
	}
	headers := h.GetHeaders()
	if len(headers) == 0 {
		headers = headerMap(h.GetHeaderMap().GetHeaders())
	}
	r := authz.Request{
		Method:            h.GetMethod(),
		Scheme:            h.GetScheme(),
		Host:              h.GetHost(),
		Path:              h.GetPath(),
		Headers:           headers,
		ContextExtensions: attrs.GetContextExtensions(),
	}
	if r.Method == "" {
		r.Method = headers[":method"]
	}
	if r.Host == "" {
		r.Host = headers[":authority"]
		if r.Host == "" {
			r.Host = headers["host"]
		}
	}
	if r.Path == "" {
		r.Path = headers[":path"]
	}
	return r, nil
}

func headerMap(hs []*corev3.HeaderValue) map[string]string {
	if len(hs) == 0 {
		return nil
	}
	m := make(map[string]string, len(hs))
	for _, hv := range hs {
		k := strings.ToLower(hv.GetKey())
		v := hv.GetValue()
		if v == "" && len(hv.GetRawValue()) > 0 {
			v = string(hv.GetRawValue())
		}
		if prev, ok := m[k]; ok {
			sep := ","
			if k == "cookie" { // RFC 9113 §8.2.3
				sep = "; "
			}
			v = prev + sep + v
		}
		m[k] = v
	}
	return m
}

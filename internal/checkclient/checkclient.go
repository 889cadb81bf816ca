// Package checkclient builds CheckRequests shaped as Envoy's ext_authz HTTP
// filter sends them, for `usher check`, `usher bench` and the tests.
package checkclient

import (
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// Header is one request header as a client sent it.
type Header struct{ Name, Value string }

// ParseHeader reads "Name: value", trimming spaces around both; ok is false
// without a colon or with an empty name.
func ParseHeader(s string) (h Header, ok bool) {
	name, value, found := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	if !found || name == "" {
		return Header{}, false
	}
	return Header{Name: name, Value: strings.TrimSpace(value)}, true
}

// Request describes one HTTP request reaching Envoy. Zero fields take the
// defaults of `usher check`: scheme http, id "usher-cli", source
// 127.0.0.1:50000.
type Request struct {
	Method, Host, Path string
	Scheme             string
	ID                 string
	SourceAddr         string
	SourcePort         uint32
	// Headers in the order the client sent them; names are lower-cased and
	// a repeated name is joined with "," as Envoy joins it.
	Headers []Header
	// Extensions are the route's context extensions.
	Extensions map[string]string
}

// CheckRequest builds the CheckRequest: lower-case header names, the
// pseudo-headers :method, :path, :authority and :scheme (set last, so they
// win over a client's copy), and the peer address as the source.
func (r *Request) CheckRequest() *authv3.CheckRequest {
	scheme := or(r.Scheme, "http")
	method := strings.ToUpper(r.Method)
	headers := make(map[string]string, len(r.Headers)+4)
	for _, h := range r.Headers {
		name := strings.ToLower(h.Name)
		value := h.Value
		if prev, dup := headers[name]; dup {
			value = prev + "," + value
		}
		headers[name] = value
	}
	headers[":method"] = method
	headers[":path"] = r.Path
	headers[":authority"] = r.Host
	headers[":scheme"] = scheme
	port := r.SourcePort
	if port == 0 {
		port = 50000
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: or(r.SourceAddr, "127.0.0.1"), PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}},
		}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: or(r.ID, "usher-cli"), Method: method, Host: r.Host, Path: r.Path, Scheme: scheme, Protocol: "HTTP/1.1",
			Headers: headers,
		}},
		ContextExtensions: r.Extensions,
	}}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Status is the HTTP status a CheckResponse gives the client, as text:
// "200" for an allow, else the denied response's status.
func Status(resp *authv3.CheckResponse) string {
	if resp.GetOkResponse() != nil && resp.GetStatus().GetCode() == 0 {
		return "200"
	}
	return strconv.Itoa(int(resp.GetDeniedResponse().GetStatus().GetCode()))
}

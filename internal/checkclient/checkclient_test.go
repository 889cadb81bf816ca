package checkclient_test

import (
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/usher-dev/usher/internal/checkclient"
)

func TestCheckRequest(t *testing.T) {
	r := checkclient.Request{Method: "get", Host: "api.example.test", Path: "/a?b=1",
		Headers:    []checkclient.Header{{"X-Api-Key", "k1"}, {"x-api-key", "k2"}, {":method", "POST"}, {"Accept", "*/*"}},
		Extensions: map[string]string{"usher.permission": "datasets.read"}}
	want := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 50000}},
		}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "usher-cli", Method: "GET", Host: "api.example.test", Path: "/a?b=1", Scheme: "http", Protocol: "HTTP/1.1",
			Headers: map[string]string{
				"x-api-key": "k1,k2", "accept": "*/*",
				":method": "GET", ":path": "/a?b=1", ":authority": "api.example.test", ":scheme": "http",
			},
		}},
		ContextExtensions: map[string]string{"usher.permission": "datasets.read"},
	}}
	if diff := cmp.Diff(want, r.CheckRequest(), protocmp.Transform()); diff != "" {
		t.Errorf("CheckRequest (-want +got):\n%s", diff)
	}
}

func TestParseHeader(t *testing.T) {
	tests := []struct {
		in   string
		want checkclient.Header
		ok   bool
	}{
		{"X-Api-Key: sk_1", checkclient.Header{"X-Api-Key", "sk_1"}, true},
		{"  a :  b:c ", checkclient.Header{"a", "b:c"}, true},
		{"empty:", checkclient.Header{"empty", ""}, true},
		{"no colon", checkclient.Header{}, false},
		{" : value", checkclient.Header{}, false},
	}
	for _, tt := range tests {
		got, ok := checkclient.ParseHeader(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseHeader(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestStatus(t *testing.T) {
	tests := []struct {
		name string
		resp *authv3.CheckResponse
		want string
	}{
		{"ok", &authv3.CheckResponse{HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}}}, "200"},
		{"denied", &authv3.CheckResponse{HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden}}}}, "403"},
		{"empty", &authv3.CheckResponse{}, "0"},
	}
	for _, tt := range tests {
		if got := checkclient.Status(tt.resp); got != tt.want {
			t.Errorf("%s: Status = %q, want %q", tt.name, got, tt.want)
		}
	}
}

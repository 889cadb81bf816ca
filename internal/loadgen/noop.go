package loadgen

import (
	"context"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// Noop is an ext_authz server that answers every Check with OK and does no
// work: the floor against which usher's throughput and latency are read.
type Noop struct {
	authv3.UnimplementedAuthorizationServer
}

// Check allows.
func (Noop) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}}}, nil
}

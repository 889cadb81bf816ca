package envoy

import (
	"runtime"

	"google.golang.org/grpc"
)

// ServerOptions are the gRPC server options the Check path is tuned for.
//
// grpc.NumStreamWorkers serves streams on a fixed set of goroutines, one
// per P, instead of a new goroutine per RPC: a new goroutine starts on a
// small stack and grows it (runtime.newstack, copystack) through gRPC's and
// the handler's call chain on every Check, which a profile of `usher serve`
// under load showed at a fifth of the server's CPU. A stream that finds
// every worker busy still gets a goroutine of its own.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
	}
}

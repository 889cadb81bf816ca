package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/usher-dev/usher/internal/checkclient"
)

// clientFlags describe one Check request and where to send it, for
// `usher check` and `usher bench`.
type clientFlags struct {
	addr       string
	method     string
	host       string
	path       string
	headers    []string
	extensions []string
	caFile     string
	certFile   string
	keyFile    string
	serverName string
}

func (f *clientFlags) register(fs *pflag.FlagSet, e *env) {
	addr := e.getenv("USHER_GRPC_ADDR")
	if addr == "" {
		addr = "127.0.0.1:9001"
	}
	fs.StringVar(&f.addr, "addr", addr, "usher's gRPC address (env USHER_GRPC_ADDR)")
	fs.StringVar(&f.method, "method", "GET", "the request's HTTP method")
	fs.StringVar(&f.host, "host", "localhost", "the request's host (:authority)")
	fs.StringVar(&f.path, "path", "/", "the request's path and query, as the client sent it")
	fs.StringArrayVarP(&f.headers, "header", "H", nil, `a request header "Name: value"; repeat for more (a repeated name is joined with "," as Envoy does)`)
	fs.StringArrayVar(&f.extensions, "ext", nil, "a per-route context extension KEY=VALUE, e.g. usher.permission=datasets.read")
	fs.StringVar(&f.caFile, "tls-ca", "", "PEM CA that signed usher's certificate (enables TLS)")
	fs.StringVar(&f.certFile, "tls-cert", "", "PEM client certificate for mTLS")
	fs.StringVar(&f.keyFile, "tls-key", "", "PEM client key for mTLS")
	fs.StringVar(&f.serverName, "tls-server-name", "", "server name to verify in usher's certificate")
}

// request builds a CheckRequest shaped as Envoy sends one.
func (f *clientFlags) request() (*authv3.CheckRequest, error) {
	r := checkclient.Request{Method: f.method, Host: f.host, Path: f.path}
	for _, h := range f.headers {
		hv, ok := checkclient.ParseHeader(h)
		if !ok {
			return nil, usagef("--header %q: want \"Name: value\"", h)
		}
		r.Headers = append(r.Headers, hv)
	}
	r.Extensions = map[string]string{}
	for _, x := range f.extensions {
		k, v, ok := strings.Cut(x, "=")
		if !ok || k == "" {
			return nil, usagef("--ext %q: want KEY=VALUE", x)
		}
		r.Extensions[k] = v
	}
	return r.CheckRequest(), nil
}

// dial connects to usher.
func (f *clientFlags) dial() (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if f.caFile != "" || f.certFile != "" {
		conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.serverName}
		if f.caFile != "" {
			pem, err := os.ReadFile(f.caFile)
			if err != nil {
				return nil, usagef("--tls-ca: %v", err)
			}
			conf.RootCAs = x509.NewCertPool()
			if !conf.RootCAs.AppendCertsFromPEM(pem) {
				return nil, usagef("--tls-ca: %s holds no PEM certificate", f.caFile)
			}
		}
		if f.certFile != "" {
			cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
			if err != nil {
				return nil, usagef("--tls-cert, --tls-key: %v", err)
			}
			conf.Certificates = []tls.Certificate{cert}
		}
		creds = credentials.NewTLS(conf)
	}
	conn, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", f.addr, err)
	}
	return conn, nil
}

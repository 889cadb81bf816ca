package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	channelzpb "google.golang.org/grpc/channelz/grpc_channelz_v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionalphapb "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"

	"github.com/usher-dev/usher/internal/checkclient"
	"github.com/usher-dev/usher/store/storetest"
)

// testCA is a throwaway certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serial int64

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key := newKey(t)
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a leaf certificate for loopback, for server or client use,
// and returns it with its key as PEM.
func (ca *testCA) issue(t *testing.T, name string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key := newKey(t)
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func keyPair(t *testing.T, certPEM, keyPEM []byte) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestServeMTLS runs `usher serve` with tls.* and a client CA: a plaintext
// client, a client without a certificate and one whose certificate
// another CA signed are refused; Envoy's (a certificate the client CA
// signed) is served, through the gRPC client and `usher check`. No debug
// endpoint (pprof, expvar, gRPC reflection, channelz) is reachable on
// either listener. docs/security-catalogue.md row 105.
// Catalogue row 99 (docs/catalogue-map.md).
func TestServeMTLS(t *testing.T) {
	tmp := t.TempDir()
	serverCA, clientCA, otherCA := newCA(t, "usher server CA"), newCA(t, "envoy client CA"), newCA(t, "another CA")
	srvCert, srvKey := serverCA.issue(t, "usher", x509.ExtKeyUsageServerAuth)
	envoyCert, envoyKey := clientCA.issue(t, "envoy", x509.ExtKeyUsageClientAuth)
	strangerCert, strangerKey := otherCA.issue(t, "envoy", x509.ExtKeyUsageClientAuth)
	files := map[string]string{}
	for name, data := range map[string][]byte{
		"server.crt": srvCert, "server.key": srvKey, "client-ca.crt": clientCA.pem,
		"server-ca.crt": serverCA.pem, "envoy.crt": envoyCert, "envoy.key": envoyKey,
	} {
		files[name] = writeFile(t, tmp, name, data)
	}

	s := &server{grpcAddr: freePort(t), httpAddr: freePort(t), rules: sampleRules}
	ctx, cancel := context.WithCancel(t.Context())
	var logs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, s.args(storetest.ShortTempDir(t), "--tls-cert-file", files["server.crt"], "--tls-key-file", files["server.key"],
			"--tls-client-ca-file", files["client-ca.crt"]), strings.NewReader(""), io.Discard, &logs, func(string) string { return "" })
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d:\n%s", code, logs.String())
		}
	}()
	s.waitReady(t)

	roots := x509.NewCertPool()
	roots.AddCert(serverCA.cert)
	envoy := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, Certificates: []tls.Certificate{keyPair(t, envoyCert, envoyKey)}}
	dial := func(creds credentials.TransportCredentials) *grpc.ClientConn {
		conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return conn
	}
	stranger := keyPair(t, strangerCert, strangerKey)
	req := (&checkclient.Request{Method: "GET", Host: "api.example.test", Path: "/me"}).CheckRequest()

	for _, tt := range []struct {
		name  string
		creds credentials.TransportCredentials
	}{
		{"plaintext", insecure.NewCredentials()},
		{"TLS without a client certificate", credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots})},
		// Sent whatever CAs the server names (crypto/tls would send none).
		{"a client certificate another CA signed", credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &stranger, nil }})},
	} {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			cctx, ccancel := context.WithTimeout(t.Context(), 30*time.Second) // a hang guard
			defer ccancel()
			resp, err := authv3.NewAuthorizationClient(dial(tt.creds)).Check(cctx, req)
			if status.Code(err) != codes.Unavailable {
				t.Errorf("Check: %v, %v; want the connection refused (Unavailable)", resp, err)
			}
		})
	}

	t.Run("served/Envoy's certificate", func(t *testing.T) {
		conn := dial(credentials.NewTLS(envoy))
		h, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{Service: authv3.Authorization_ServiceDesc.ServiceName})
		if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("gRPC health over mTLS: %v %v", h, err)
		}
		resp, err := authv3.NewAuthorizationClient(conn).Check(t.Context(), req)
		if err != nil {
			t.Fatalf("Check over mTLS: %v", err)
		}
		if code := resp.GetDeniedResponse().GetStatus().GetCode(); code != 401 {
			t.Errorf("Check without a credential over mTLS: %v, want decided 401", resp)
		}
		r := usher(t, nil, "check", "--addr", s.grpcAddr, "--path", "/me", "--tls-ca", files["server-ca.crt"],
			"--tls-cert", files["envoy.crt"], "--tls-key", files["envoy.key"])
		if r.code != exitFailed || !strings.Contains(r.stdout, "denied 401 (credential_missing)") {
			t.Errorf("usher check over mTLS: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("no debug endpoint", func(t *testing.T) {
		gctx, gcancel := context.WithTimeout(t.Context(), 30*time.Second) // a hang guard
		defer gcancel()
		conn := dial(credentials.NewTLS(envoy))
		ref, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(gctx)
		if err == nil {
			_ = ref.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
			_, err = ref.Recv()
		}
		if status.Code(err) != codes.Unimplemented {
			t.Errorf("gRPC reflection v1: %v, want Unimplemented", err)
		}
		refAlpha, err := reflectionalphapb.NewServerReflectionClient(conn).ServerReflectionInfo(gctx)
		if err == nil {
			_ = refAlpha.Send(&reflectionalphapb.ServerReflectionRequest{MessageRequest: &reflectionalphapb.ServerReflectionRequest_ListServices{}}) //nolint:staticcheck // deprecated, but reflection.Register still serves it
			_, err = refAlpha.Recv()
		}
		if status.Code(err) != codes.Unimplemented {
			t.Errorf("gRPC reflection v1alpha: %v, want Unimplemented", err)
		}
		if _, err := channelzpb.NewChannelzClient(conn).GetTopChannels(gctx, &channelzpb.GetTopChannelsRequest{}); status.Code(err) != codes.Unimplemented {
			t.Errorf("channelz: %v, want Unimplemented", err)
		}

		paths := []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=2", "/debug/vars", "/debug/requests"}
		// The HTTP listener serves only /healthz, /readyz and /metrics.
		for _, p := range paths {
			resp, err := http.Get("http://" + s.httpAddr + p)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("http_addr %s: HTTP %d, want 404", p, resp.StatusCode)
			}
		}
		// The gRPC listener, reached over HTTP/2 with Envoy's certificate,
		// answers nothing but gRPC.
		h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: envoy.Clone(), ForceAttemptHTTP2: true}}
		defer h2.CloseIdleConnections()
		for _, p := range paths {
			resp, err := h2.Get("https://" + s.grpcAddr + p)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.ProtoMajor != 2 || resp.StatusCode == http.StatusOK || bytes.Contains(body, []byte("goroutine")) {
				t.Errorf("grpc_addr %s: %s %d %q, want no page", p, resp.Proto, resp.StatusCode, body)
			}
		}
	})
}

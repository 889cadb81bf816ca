package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/internal/config"
)

// hangGuard bounds every wait in these tests; none asserts a duration.
const hangGuard = 30 * time.Second

// startListeners starts s's listeners on loopback ports, stopped at the
// end of the test. Checks deny with store_unavailable: they are decided
// without a store.
func startListeners(t *testing.T, limits httpLimits) *server {
	t.Helper()
	cfg := config.Default()
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.ShutdownTimeout = time.Second
	s := newServer(cfg, Deps{Rules: authz.DenyAllRules(), Logger: testLogger(t)})
	s.httpLimits = limits
	if err := s.listen(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.closeListeners(context.Background()) })
	return s
}

// checkClient is a plaintext Check client of s.
func checkClient(t *testing.T, s *server) authv3.AuthorizationClient {
	t.Helper()
	conn, err := grpc.NewClient(s.grpcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

// checkWithBody is a CheckRequest carrying a body of n bytes, as Envoy
// sends one with with_request_body.
func checkWithBody(n int) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{
			Method: "POST", Host: "api.example.test", Path: "/upload",
			Headers: map[string]string{":method": "POST", ":path": "/upload", "content-type": "application/octet-stream"},
			Body:    strings.Repeat("b", n),
		},
	}}}
}

// checkOfSize is a CheckRequest whose encoding is exactly size bytes.
func checkOfSize(t *testing.T, size int) *authv3.CheckRequest {
	t.Helper()
	n := size - proto.Size(checkWithBody(0))
	for range 8 { // length prefixes grow with the body: converge on size
		r := checkWithBody(n)
		d := proto.Size(r) - size
		if d == 0 {
			return r
		}
		n -= d
	}
	t.Fatalf("no CheckRequest encodes to %d bytes", size)
	return nil
}

// TestCheckMessageSizeLimit: a CheckRequest of up to 4 MiB is decided, one
// byte more is refused with ResourceExhausted before it is decoded.
// docs/security-catalogue.md rows 106 and 127 (message size limit).
func TestCheckMessageSizeLimit(t *testing.T) {
	s := startListeners(t, defaultHTTPLimits)
	c := checkClient(t, s)
	const limit = 4 << 20 // the README's figure
	// Envoy's largest realistic request: a 1 MiB body and 60 KiB of headers.
	envoyMax := checkWithBody(1 << 20)
	envoyMax.Attributes.Request.Http.Headers["x-padding"] = strings.Repeat("h", 60<<10)
	for _, tt := range []struct {
		name string
		req  *authv3.CheckRequest
		want codes.Code
	}{
		{"1 MiB body and 60 KiB of headers", envoyMax, codes.OK},
		{"exactly the limit", checkOfSize(t, limit), codes.OK},
		{"one byte over", checkOfSize(t, limit+1), codes.ResourceExhausted},
		{"16 MiB", checkWithBody(16 << 20), codes.ResourceExhausted},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.Check(t.Context(), tt.req)
			if got := status.Code(err); got != tt.want {
				t.Fatalf("Check of %d bytes: %v, want %v", proto.Size(tt.req), err, tt.want)
			}
			if err == nil && resp.GetDeniedResponse().GetStatus().GetCode() != 503 {
				t.Errorf("Check of %d bytes was not decided as expected: %v", proto.Size(tt.req), resp)
			}
		})
	}
}

// TestCheckMetadataSizeLimit: gRPC metadata past 64 KiB is refused before
// the Check runs; Envoy's few headers pass. docs/security-catalogue.md
// row 129.
func TestCheckMetadataSizeLimit(t *testing.T) {
	s := startListeners(t, defaultHTTPLimits)
	c := checkClient(t, s)
	for _, tt := range []struct {
		name string
		size int
		ok   bool
	}{
		{"Envoy-sized metadata", 1 << 10, true},
		{"100 KiB of metadata", 100 << 10, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := metadata.AppendToOutgoingContext(t.Context(), "x-envoy-padding", strings.Repeat("m", tt.size))
			_, err := c.Check(ctx, checkWithBody(0))
			if (err == nil) != tt.ok {
				t.Errorf("Check with %d bytes of metadata: %v, want ok=%v", tt.size, err, tt.ok)
			}
		})
	}
}

// TestMaxConcurrentStreams: the gRPC server announces 1024 concurrent
// streams in its HTTP/2 SETTINGS, and a client that ignores them has its
// 1025th open stream refused (REFUSED_STREAM) while the first 1024 stay
// open. docs/security-catalogue.md row 127.
func TestMaxConcurrentStreams(t *testing.T) {
	s := startListeners(t, defaultHTTPLimits)
	conn, err := net.Dial("tcp", s.grpcAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if err := conn.SetDeadline(time.Now().Add(hangGuard)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	settings, ok := f.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("first frame %v, want SETTINGS", f)
	}
	if v, ok := settings.Value(http2.SettingMaxConcurrentStreams); !ok || v != 1024 {
		t.Fatalf("SETTINGS_MAX_CONCURRENT_STREAMS = %d (sent: %v), want 1024", v, ok)
	}
	if err := fr.WriteSettingsAck(); err != nil {
		t.Fatal(err)
	}

	// Open 1025 Check streams: HEADERS only, so that each handler waits
	// for its request message and its stream stays open.
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, h := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":path", "/envoy.service.auth.v3.Authorization/Check"},
		{":authority", "usher"}, {"content-type", "application/grpc"}, {"te", "trailers"},
	} {
		if err := enc.WriteField(hpack.HeaderField{Name: h[0], Value: h[1]}); err != nil {
			t.Fatal(err)
		}
	}
	const streams = maxConcurrentStreams + 1
	last := uint32(2*streams - 1) // client streams are odd
	for id := uint32(1); id <= last; id += 2 {
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no stream refused: %v", err)
		}
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			if f.StreamID != last || f.ErrCode != http2.ErrCodeRefusedStream {
				t.Fatalf("RST_STREAM %v on stream %d, want REFUSED_STREAM on stream %d only", f.ErrCode, f.StreamID, last)
			}
			return
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v, want the stream past the limit refused", f.ErrCode)
		case *http2.HeadersFrame:
			t.Fatalf("stream %d answered, want it open until its message comes", f.StreamID)
		}
	}
}

// TestHTTPServerLimits: the HTTP listener's server has every timeout and
// the header size limit set. docs/security-catalogue.md row 129.
// Catalogue row 128 (docs/catalogue-map.md).
func TestHTTPServerLimits(t *testing.T) {
	s := startListeners(t, defaultHTTPLimits)
	h := s.http
	for name, d := range map[string]time.Duration{
		"ReadHeaderTimeout": h.ReadHeaderTimeout, "ReadTimeout": h.ReadTimeout,
		"WriteTimeout": h.WriteTimeout, "IdleTimeout": h.IdleTimeout,
	} {
		if d <= 0 || d > 2*time.Minute {
			t.Errorf("%s = %v, want set, at most 2m", name, d)
		}
	}
	if h.ReadHeaderTimeout > h.ReadTimeout {
		t.Errorf("ReadHeaderTimeout %v exceeds ReadTimeout %v", h.ReadHeaderTimeout, h.ReadTimeout)
	}
	if h.MaxHeaderBytes != 64<<10 {
		t.Errorf("MaxHeaderBytes = %d, want 64 KiB", h.MaxHeaderBytes)
	}
}

// TestHTTPSlowHeadersCutOff: a client that sends its headers a byte at a
// time (slowloris) is disconnected once ReadHeaderTimeout has passed,
// although it never stops sending and the whole-request ReadTimeout is an
// hour away. docs/security-catalogue.md row 129.
func TestHTTPSlowHeadersCutOff(t *testing.T) {
	limits := defaultHTTPLimits
	limits.readHeader, limits.read, limits.idle = 100*time.Millisecond, time.Hour, time.Hour
	s := startListeners(t, limits)
	conn := dialHTTP(t, s)
	closed := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, conn) // returns once the server hangs up
		closed <- err
	}()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: usher\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for range int(hangGuard / (10 * time.Millisecond)) {
		select {
		case err := <-closed:
			if err != nil && !isReset(err) {
				t.Fatalf("reading from the server: %v", err)
			}
			return // cut off
		case <-tick.C:
			if _, err := conn.Write([]byte("a")); err != nil {
				if !isReset(err) {
					t.Fatalf("writing to the server: %v", err)
				}
				return // cut off
			}
		}
	}
	t.Fatal("a client sending its headers a byte at a time was never cut off")
}

// TestHTTPIdleConnectionClosed: a kept-alive connection that sends no
// further request is closed after IdleTimeout. docs/security-catalogue.md
// row 129.
func TestHTTPIdleConnectionClosed(t *testing.T) {
	limits := defaultHTTPLimits
	limits.read, limits.idle = time.Hour, 100*time.Millisecond
	s := startListeners(t, limits)
	conn := dialHTTP(t, s)
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: usher\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("first request: %d, close %v; want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
	}
	if n, err := br.Read(make([]byte, 1)); n != 0 || (!errors.Is(err, io.EOF) && !isReset(err)) {
		t.Fatalf("idle connection: read %d bytes, %v; want it closed by the server", n, err)
	}
}

// TestHTTPHeadersOverMaxHeaderBytes: a request whose headers pass
// MaxHeaderBytes (64 KiB, plus the 4 KiB net/http allows over it) gets 431;
// one with 32 KiB of headers is served. docs/security-catalogue.md rows
// 128 and 129.
func TestHTTPHeadersOverMaxHeaderBytes(t *testing.T) {
	s := startListeners(t, defaultHTTPLimits)
	for _, tt := range []struct {
		size int
		want int
	}{
		{32 << 10, http.StatusOK},
		{(64 + 8) << 10, http.StatusRequestHeaderFieldsTooLarge},
		{1 << 20, http.StatusRequestHeaderFieldsTooLarge},
	} {
		t.Run(fmt.Sprint(tt.size), func(t *testing.T) {
			conn := dialHTTP(t, s)
			go func() {
				// The server may answer and close before reading it all.
				_, _ = fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: usher\r\nX-Big: %s\r\n\r\n", strings.Repeat("h", tt.size))
			}()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("%d bytes of headers: HTTP %d, want %d", tt.size, resp.StatusCode, tt.want)
			}
		})
	}
}

// dialHTTP connects to s's HTTP listener, with a deadline as a hang guard.
func dialHTTP(t *testing.T, s *server) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", s.httpAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(hangGuard)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// isReset reports a connection the server reset (it closed with unread
// data) rather than closed cleanly: both cut the client off.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// TestConnectionCaps: each listener serves at most its number of
// connections at once. With the caps at 2, two clients that hold their
// connections open (a slowloris sending headers, an HTTP/2 client that
// sends nothing) keep a third from being served; once one of them closes,
// the third is. docs/security-catalogue.md row 129 (connection limits;
// row 127 for the gRPC port).
func TestConnectionCaps(t *testing.T) {
	limits := defaultHTTPLimits
	limits.readHeader, limits.read, limits.idle = time.Hour, time.Hour, time.Hour
	limits.conns, limits.grpcConns = 2, 2
	s := startListeners(t, limits)

	t.Run("http", func(t *testing.T) {
		held := []net.Conn{dialHTTP(t, s), dialHTTP(t, s)}
		for _, c := range held {
			if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: usher\r\nX-Slow: "); err != nil {
				t.Fatal(err)
			}
		}
		third := dialHTTP(t, s) // the kernel completes the handshake; usher does not accept it
		if _, err := io.WriteString(third, "GET /healthz HTTP/1.1\r\nHost: usher\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(third)
		if err := third.SetReadDeadline(time.Now().Add(300 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if _, err := br.ReadByte(); !isTimeout(err) {
			t.Fatalf("a connection past the cap was answered (%v); want it held until another closes", err)
		}
		_ = held[0].Close()
		if err := third.SetReadDeadline(time.Now().Add(hangGuard)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("once a connection closed, the held one: %v", err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("once a connection closed, the held one got HTTP %d; want 200", resp.StatusCode)
		}
	})

	t.Run("grpc", func(t *testing.T) {
		var held []net.Conn
		for range 2 {
			c, err := net.Dial("tcp", s.grpcAddr.String())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			// The server speaks first once it accepts: its SETTINGS.
			if err := c.SetReadDeadline(time.Now().Add(hangGuard)); err != nil {
				t.Fatal(err)
			}
			if _, err := http2.NewFramer(io.Discard, c).ReadFrame(); err != nil {
				t.Fatalf("a connection within the cap: %v", err)
			}
			held = append(held, c)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		c := checkClient(t, s)
		if _, err := c.Check(ctx, checkWithBody(0)); status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("a Check on a connection past the cap: %v; want it held (DeadlineExceeded)", err)
		}
		_ = held[0].Close()
		ctx, cancel = context.WithTimeout(t.Context(), hangGuard)
		defer cancel()
		resp, err := c.Check(ctx, checkWithBody(0), grpc.WaitForReady(true))
		if err != nil || resp.GetDeniedResponse().GetStatus().GetCode() != 503 {
			t.Fatalf("once a connection closed, a Check: %v, %v; want it decided", resp, err)
		}
	})
}

// isTimeout reports a read that ran into its deadline.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

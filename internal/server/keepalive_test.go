package server

import (
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestKeepaliveEnforced: a client that pings the gRPC port more often than
// every 5s is sent GOAWAY ENHANCE_YOUR_CALM ("too_many_pings") and cut
// off, so that a flood of PING frames (or of any control frame an attacker
// can make the server answer) cannot keep it busy. The enforcement policy
// of docs/security-catalogue.md row 127.
func TestKeepaliveEnforced(t *testing.T) {
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
	for i := range 8 {
		if err := fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			break // already cut off
		}
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("connection ended without GOAWAY: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.GoAwayFrame:
			if f.ErrCode != http2.ErrCodeEnhanceYourCalm || string(f.DebugData()) != "too_many_pings" {
				t.Fatalf("GOAWAY %v %q, want ENHANCE_YOUR_CALM too_many_pings", f.ErrCode, f.DebugData())
			}
			return
		}
	}
}

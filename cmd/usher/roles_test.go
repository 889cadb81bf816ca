package main

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/usher-dev/usher/store/storetest"
)

// TestServeRoles: --roles splits one binary into the Check servers and
// the login app; a role that is off opens no listener, and health stays
// on http_addr either way.
func TestServeRoles(t *testing.T) {
	bin, err := buildUsher()
	if err != nil {
		t.Fatal(err)
	}
	listening := func(addr string) bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}
	for _, tt := range []struct {
		roles             string
		wantGRPC, wantApp bool
	}{
		{"authz", true, false},
		{"login", false, true},
		{"authz,login", true, true},
	} {
		t.Run(tt.roles, func(t *testing.T) {
			s := newServer(t)
			loginAddr := freePort(t)
			env := loginEnv("http://"+loginAddr, "http://127.0.0.1:9") // the IdP is not asked at start
			p := startProcEnv(t, bin, env, s.args(storetest.ShortTempDir(t), "--roles", tt.roles)...)
			s.waitReady(t)
			if got := listening(s.grpcAddr); got != tt.wantGRPC {
				t.Errorf("gRPC Check listening: %t, want %t\n%s", got, tt.wantGRPC, p.logs.String())
			}
			if got := listening(loginAddr); got != tt.wantApp {
				t.Errorf("login app listening: %t, want %t\n%s", got, tt.wantApp, p.logs.String())
			}
			if tt.wantApp {
				resp, err := http.Get("http://" + loginAddr + "/login")
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Errorf("login page: %v %v", resp, err)
				}
				if resp != nil {
					_ = resp.Body.Close()
				}
			}
		})
	}
}

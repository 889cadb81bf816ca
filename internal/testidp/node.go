package testidp

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Real is a real OpenID provider (oidc-provider on Node.js, from
// testdata/idp) running on loopback for one test.
type Real struct {
	Issuer string
}

// Its client for the client credentials grant.
const (
	RealClientID     = "usher-test"
	RealClientSecret = "usher-test-secret"
)

// StartReal runs testdata/idp/server.mjs with node until the test ends.
// groups are the groups its access tokens carry. It never skips: without
// node or the npm packages (`make test` installs them) the test fails.
func StartReal(t testing.TB, groups ...string) *Real {
	t.Helper()
	return startReal(t, "GROUPS="+strings.Join(groups, ";"))
}

// startReal runs the provider with env added to the environment.
func startReal(t testing.TB, env ...string) *Real {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed (apt-get install nodejs): the IdP tests run a real OpenID provider")
	}
	dir := idpDir(t)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider")); err != nil {
		t.Fatalf("oidc-provider is not installed: run `npm ci` in %s (make test does)", dir)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	cmd := exec.Command(node, "server.mjs") //nolint:gosec // node from PATH, our own script
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "PORT="+strconv.Itoa(port)), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the OpenID provider: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	go func() { // drain its output so that it never blocks
		sc := bufio.NewScanner(out)
		for sc.Scan() {
		}
	}()
	r := &Real{Issuer: "http://127.0.0.1:" + strconv.Itoa(port)}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(r.Issuer + "/.well-known/openid-configuration")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the OpenID provider did not answer discovery within 15s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// AccessToken gets a JWT access token for resource (its aud) with the
// client credentials grant.
func (r *Real) AccessToken(t testing.TB, resource string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}, "resource": {resource}}
	req, err := http.NewRequest(http.MethodPost, r.Issuer+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(RealClientID, RealClientSecret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		t.Fatalf("token response %s: %v %s %s", resp.Status, err, body.Error, body.Description)
	}
	return body.AccessToken
}

// idpDir finds testdata/idp from this file's place in the module.
func idpDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate testdata/idp")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "idp")
}

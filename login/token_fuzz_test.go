package login

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzTokenForm: the token endpoint's parser never panics on any body or
// Authorization header, refuses a parameter given twice, reads each
// parameter as url.ParseQuery does, and says a secret was sent exactly
// when a non-empty client_secret or Basic password was.
func FuzzTokenForm(f *testing.F) {
	f.Add("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=abc&client_id=usher-cli", "")
	f.Add("grant_type=refresh_token&refresh_token=ur_x&client_id=usher-cli&client_secret=s", "")
	f.Add("device_code=a&device_code=b", "")
	f.Add("client_id=usher-cli", "Basic dXNoZXItY2xpOg==")
	f.Add("client_id=other", "Basic dXNoZXItY2xpOnNlY3JldA==")
	f.Add("%zz=1", "Basic %%%")
	f.Fuzz(func(t *testing.T, body, auth string) {
		r := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		req, err := parseTokenRequest(r)
		vals, perr := url.ParseQuery(body)
		if perr != nil {
			if err == nil {
				t.Fatalf("%q parsed, url.ParseQuery refuses it: %v", body, perr)
			}
			return
		}
		for k, v := range vals {
			if len(v) > 1 && err == nil {
				t.Fatalf("%q: %s given twice was accepted", body, k)
			}
		}
		if err != nil {
			return
		}
		for k, got := range map[string]string{"grant_type": req.GrantType, "device_code": req.DeviceCode,
			"refresh_token": req.RefreshToken, "token": req.Token, "client_secret": req.ClientSecret, "tenant": req.Tenant} {
			if got != vals.Get(k) {
				t.Fatalf("%q: %s = %q, want %q", body, k, got, vals.Get(k))
			}
		}
		_, pw, basic := r.BasicAuth()
		upw, _ := url.QueryUnescape(pw)
		if want := vals.Get("client_secret") != "" || basic && upw != ""; req.SecretSent != want {
			t.Fatalf("%q %q: SecretSent %v, want %v", body, auth, req.SecretSent, want)
		}
		if !basic && req.ClientID != vals.Get("client_id") {
			t.Fatalf("%q: client_id %q, want %q", body, req.ClientID, vals.Get("client_id"))
		}
	})
}

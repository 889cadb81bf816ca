package envoy_test

// The HTTP check mode examples that no test can run here (Envoy, Istio and
// Traefik are not installable): each is decoded strictly (Envoy's into
// go-control-plane's protos and validated, Istio's and Traefik's into the
// shape of their documented fields) and its security properties asserted,
// each assertion shown to fail on a config that breaks it.

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/usher-dev/usher/envoy"
)

// checkedHeaders are request headers usher reads, or removes, and must see
// in HTTP check mode: credentials, the method overrides, the space and
// tenant headers of the sample rules, Connection, and identity look-alikes.
var checkedHeaders = []string{"x-api-key", "authorization", "cookie", "x-http-method-override", "x-http-method",
	"x-method-override", "x-space-id", "x-tenant-id", "connection", "x-usher-admin", "x-usher-subject"}

// matches evaluates an Envoy ListStringMatcher on a lower-case header name.
func matches(l *matcherv3.ListStringMatcher, name string) bool {
	for _, m := range l.GetPatterns() {
		v := name
		if m.GetIgnoreCase() {
			v = strings.ToLower(v)
		}
		switch {
		case m.GetExact() != "" && v == m.GetExact(),
			m.GetPrefix() != "" && strings.HasPrefix(v, m.GetPrefix()),
			m.GetSuffix() != "" && strings.HasSuffix(v, m.GetSuffix()),
			m.GetContains() != "" && strings.Contains(v, m.GetContains()):
			return true
		case m.GetSafeRegex() != nil:
			// Envoy's RE2 matches the whole name.
			if re, err := regexp.Compile("^(?:" + m.GetSafeRegex().GetRegex() + ")$"); err == nil && re.MatchString(v) {
				return true
			}
		}
	}
	return false
}

// envoyHTTPProblems reports each way envoy-http.yaml fails to check every
// request with usher's HTTP check mode, fail closed, or keep spoofed
// identities and credentials from the app.
func envoyHTTPProblems(t *testing.T, data []byte) []string {
	t.Helper()
	bs, _, err := loadBootstrap(data)
	if err != nil {
		t.Fatal(err)
	}
	var p problems
	clusters := map[string]*clusterv3.Cluster{}
	for _, c := range bs.GetStaticResources().GetClusters() {
		clusters[c.GetName()] = c
	}
	for _, l := range bs.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				var hcm hcmv3.HttpConnectionManager
				if f.GetTypedConfig().UnmarshalTo(&hcm) != nil {
					continue
				}
				checkHTTPHCM(&p, &hcm, clusters)
			}
		}
	}
	return p
}

func checkHTTPHCM(p *problems, hcm *hcmv3.HttpConnectionManager, clusters map[string]*clusterv3.Cluster) {
	if !hcm.GetNormalizePath().GetValue() || !hcm.GetMergeSlashes() ||
		hcm.GetPathWithEscapedSlashesAction() != hcmv3.HttpConnectionManager_REJECT_REQUEST {
		p.addf("hcm: paths not normalised as usher judges them")
	}
	if hcm.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction() != corev3.HttpProtocolOptions_REJECT_REQUEST {
		p.addf("hcm: headers with underscores not rejected")
	}
	var names []string
	for _, f := range hcm.GetHttpFilters() {
		names = append(names, f.GetName())
		switch f.GetName() {
		case headerMutationFilter:
			checkHeaderMutation(p, f.GetTypedConfig())
		case extAuthzFilter:
			checkHTTPExtAuthz(p, f.GetTypedConfig(), clusters)
		}
	}
	if want := []string{headerMutationFilter, extAuthzFilter, routerFilter}; !cmp.Equal(want, names) {
		p.addf("http_filters %v, want %v", names, want)
	}
}

func checkHTTPExtAuthz(p *problems, a *anypb.Any, clusters map[string]*clusterv3.Cluster) {
	var ea extauthzv3.ExtAuthz
	if a == nil || a.UnmarshalTo(&ea) != nil {
		p.addf("ext_authz: missing or not an ExtAuthz")
		return
	}
	if ea.GetFailureModeAllow() {
		p.addf("ext_authz: failure_mode_allow is true")
	}
	if c := ea.GetStatusOnError().GetCode(); c != 503 {
		p.addf("ext_authz: status_on_error %d, want 503", c)
	}
	if ea.GetWithRequestBody() != nil {
		p.addf("ext_authz: buffers request bodies (with_request_body)")
	}
	hs := ea.GetHttpService()
	if hs == nil {
		p.addf("ext_authz: no http_service")
		return
	}
	if hs.GetPathPrefix() != envoy.PathExtAuthz {
		p.addf("ext_authz: path_prefix %q, want %q", hs.GetPathPrefix(), envoy.PathExtAuthz)
	}
	if d := hs.GetServerUri().GetTimeout().AsDuration(); d <= 0 || d > maxCheckTimeout {
		p.addf("ext_authz: server_uri timeout %v, want (0, %v]", d, maxCheckTimeout)
	}
	c := clusters[hs.GetServerUri().GetCluster()]
	if c == nil {
		p.addf("ext_authz: cluster %q is not defined", hs.GetServerUri().GetCluster())
	} else if port := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress().GetPortValue(); port != 9002 {
		p.addf("ext_authz: cluster %s on port %d, not usher's http_check_addr 9002", c.GetName(), port)
	}
	for _, h := range checkedHeaders {
		if !matches(ea.GetAllowedHeaders(), h) {
			p.addf("ext_authz: %s is not sent to usher (allowed_headers)", h)
		}
	}
	up := hs.GetAuthorizationResponse().GetAllowedUpstreamHeaders()
	for _, h := range identityHeaders {
		if !matches(up, h) {
			p.addf("ext_authz: usher's %s does not reach the app (allowed_upstream_headers)", h)
		}
	}
	for _, h := range []string{"authorization", "x-api-key", "x-envoy-auth-headers-to-remove", "host", ":path"} {
		if matches(up, h) {
			p.addf("ext_authz: usher's answer may set %s upstream", h)
		}
	}
	for _, h := range []string{"content-type", "x-usher-login-url"} {
		if !matches(hs.GetAuthorizationResponse().GetAllowedClientHeaders(), h) {
			p.addf("ext_authz: a denial's %s does not reach the client", h)
		}
	}
}

func TestExampleEnvoyHTTP(t *testing.T) {
	shipped := readExample(t, "envoy-http.yaml")
	tests := []struct {
		name     string
		from, to string
		want     []string
	}{
		{name: "shipped"},
		{name: "fails open", from: "failure_mode_allow: false", to: "failure_mode_allow: true",
			want: []string{"ext_authz: failure_mode_allow is true"}},
		{name: "errors look like denials", from: "status_on_error: { code: 503 }", to: "status_on_error: { code: 403 }",
			want: []string{"ext_authz: status_on_error 403, want 503"}},
		{name: "wrong prefix", from: "path_prefix: /ext_authz", to: "path_prefix: /check",
			want: []string{`ext_authz: path_prefix "/check", want "/ext_authz"`}},
		{name: "slow", from: "timeout: 0.2s ", to: "timeout: 2s ",
			want: []string{"ext_authz: server_uri timeout 2s, want (0, 200ms]"}},
		{name: "Envoy's default headers only", from: `                - safe_regex: { regex: ".*" }`, to: `                - exact: authorization`,
			want: []string{"ext_authz: x-api-key is not sent to usher (allowed_headers)", "ext_authz: cookie is not sent to usher (allowed_headers)",
				"ext_authz: x-http-method-override is not sent to usher (allowed_headers)", "ext_authz: x-http-method is not sent to usher (allowed_headers)",
				"ext_authz: x-method-override is not sent to usher (allowed_headers)", "ext_authz: x-space-id is not sent to usher (allowed_headers)",
				"ext_authz: x-tenant-id is not sent to usher (allowed_headers)", "ext_authz: connection is not sent to usher (allowed_headers)",
				"ext_authz: x-usher-admin is not sent to usher (allowed_headers)", "ext_authz: x-usher-subject is not sent to usher (allowed_headers)"}},
		{name: "identity header not copied", from: "                    - exact: x-usher-seats\n", to: "",
			want: []string{"ext_authz: usher's x-usher-seats does not reach the app (allowed_upstream_headers)"}},
		{name: "anything copied", from: "                    - exact: x-usher-subject\n", to: "                    - prefix: x\n",
			want: []string{"ext_authz: usher's answer may set x-api-key upstream", "ext_authz: usher's answer may set x-envoy-auth-headers-to-remove upstream"}},
		{name: "no login header for the client", from: "                    - exact: x-usher-login-url\n", to: "",
			want: []string{"ext_authz: a denial's x-usher-login-url does not reach the client"}},
		{name: "underscores accepted", from: "headers_with_underscores_action: REJECT_REQUEST", to: "headers_with_underscores_action: ALLOW",
			want: []string{"hcm: headers with underscores not rejected"}},
		{name: "spoofs not stripped", from: "                - remove: x-usher-tenant\n", to: "",
			want: []string{"header_mutation: does not remove x-usher-tenant"}},
		{name: "the gRPC port", from: "port_value: 9002 }", to: "port_value: 9001 }",
			want: []string{"ext_authz: cluster usher_http on port 9001, not usher's http_check_addr 9002"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := envoyHTTPProblems(t, edit(t, shipped, tt.from, tt.to))
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("problems (-want +got):\n%s", d)
			}
		})
	}
}

// meshHTTPValues is the part of meshconfig-http.yaml's shape that usher's
// example sets.
type meshHTTPValues struct {
	MeshConfig struct {
		PathNormalization struct {
			Normalization string `yaml:"normalization"`
		} `yaml:"pathNormalization"`
		ExtensionProviders []struct {
			Name              string `yaml:"name"`
			EnvoyExtAuthzHTTP *struct {
				Service                      string   `yaml:"service"`
				Port                         int      `yaml:"port"`
				PathPrefix                   string   `yaml:"pathPrefix"`
				Timeout                      string   `yaml:"timeout"`
				FailOpen                     *bool    `yaml:"failOpen"`
				StatusOnError                string   `yaml:"statusOnError"`
				IncludeRequestHeadersInCheck []string `yaml:"includeRequestHeadersInCheck"`
				HeadersToUpstreamOnAllow     []string `yaml:"headersToUpstreamOnAllow"`
				HeadersToDownstreamOnDeny    []string `yaml:"headersToDownstreamOnDeny"`
			} `yaml:"envoyExtAuthzHttp"`
		} `yaml:"extensionProviders"`
	} `yaml:"meshConfig"`
}

// istioMatch reports whether one of Istio's header patterns (exact,
// "prefix*" or "*suffix", case-insensitive) matches name.
func istioMatch(patterns []string, name string) bool {
	for _, p := range patterns {
		p = strings.ToLower(p)
		switch {
		case strings.HasSuffix(p, "*") && strings.HasPrefix(name, strings.TrimSuffix(p, "*")),
			strings.HasPrefix(p, "*") && strings.HasSuffix(name, strings.TrimPrefix(p, "*")),
			p == name:
			return true
		}
	}
	return false
}

func istioHTTPProblems(m *meshHTTPValues) []string {
	var p problems
	if n := m.MeshConfig.PathNormalization.Normalization; n != "MERGE_SLASHES" {
		p.addf("pathNormalization %q, want MERGE_SLASHES", n)
	}
	found := false
	for _, ep := range m.MeshConfig.ExtensionProviders {
		h := ep.EnvoyExtAuthzHTTP
		if h == nil {
			continue
		}
		found = true
		if h.Port != 9002 {
			p.addf("%s: port %d, want usher's http_check_addr 9002", ep.Name, h.Port)
		}
		if h.PathPrefix != envoy.PathExtAuthz {
			p.addf("%s: pathPrefix %q, want %q", ep.Name, h.PathPrefix, envoy.PathExtAuthz)
		}
		if d, err := time.ParseDuration(h.Timeout); err != nil || d <= 0 || d > maxCheckTimeout {
			p.addf("%s: timeout %q, want (0, %v]", ep.Name, h.Timeout, maxCheckTimeout)
		}
		if h.FailOpen == nil || *h.FailOpen {
			p.addf("%s: failOpen not false", ep.Name)
		}
		if h.StatusOnError != "503" {
			p.addf("%s: statusOnError %q, want \"503\"", ep.Name, h.StatusOnError)
		}
		for _, name := range checkedHeaders {
			if name != "connection" && !istioMatch(h.IncludeRequestHeadersInCheck, name) {
				p.addf("%s: %s is not sent to usher", ep.Name, name)
			}
		}
		for _, name := range identityHeaders {
			if !istioMatch(h.HeadersToUpstreamOnAllow, name) {
				p.addf("%s: usher's %s does not reach the app", ep.Name, name)
			}
		}
		for _, name := range []string{"authorization", "x-api-key", "x-envoy-auth-headers-to-remove"} {
			if istioMatch(h.HeadersToUpstreamOnAllow, name) {
				p.addf("%s: usher's answer may set %s upstream", ep.Name, name)
			}
		}
		for _, name := range []string{"www-authenticate", "content-type", "location", "x-usher-login-url"} {
			if !istioMatch(h.HeadersToDownstreamOnDeny, name) {
				p.addf("%s: a denial's %s does not reach the client", ep.Name, name)
			}
		}
	}
	if !found {
		p.addf("no envoyExtAuthzHttp provider")
	}
	return p
}

func TestExampleIstioHTTP(t *testing.T) {
	const file = "istio/meshconfig-http.yaml"
	shipped := readExample(t, file)
	tests := []struct {
		name, from, to, wantErr string
		want                    []string
	}{
		{name: "shipped"},
		{name: "misspelt key", from: "pathPrefix:", to: "path_prefix:", wantErr: "field path_prefix not found"},
		{name: "fails open", from: "failOpen: false", to: "failOpen: true", want: []string{"usher-http: failOpen not false"}},
		{name: "no prefix", from: "      pathPrefix: /ext_authz\n", to: "",
			want: []string{`usher-http: pathPrefix "", want "/ext_authz"`}},
		{name: "Istio's default timeout", from: "      timeout: 0.2s\n", to: "",
			want: []string{`usher-http: timeout "", want (0, 200ms]`}},
		{name: "errors look like denials", from: `statusOnError: "503"`, to: `statusOnError: "403"`,
			want: []string{`usher-http: statusOnError "403", want "503"`}},
		{name: "look-alikes not sent", from: "      - x-usher-*\n", to: "",
			want: []string{"usher-http: x-usher-admin is not sent to usher", "usher-http: x-usher-subject is not sent to usher"}},
		{name: "key not sent", from: "      - x-api-key\n", to: "", want: []string{"usher-http: x-api-key is not sent to usher"}},
		{name: "credential copied upstream", from: "      - x-usher-seats\n", to: "      - x-usher-seats\n      - x-api-*\n",
			want: []string{"usher-http: usher's answer may set x-api-key upstream"}},
		{name: "no login URL for the client", from: "      - x-usher-login-url\n", to: "",
			want: []string{"usher-http: a denial's x-usher-login-url does not reach the client"}},
		{name: "the gRPC port", from: "port: 9002", to: "port: 9001", want: []string{"usher-http: port 9001, want usher's http_check_addr 9002"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m meshHTTPValues
			err := decodeStrict(file, edit(t, shipped, tt.from, tt.to), &m)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("decode error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, istioHTTPProblems(&m)); d != "" {
				t.Errorf("problems (-want +got):\n%s", d)
			}
		})
	}
}

// traefikDynamic is the part of Traefik's dynamic configuration the
// example uses.
type traefikDynamic struct {
	HTTP struct {
		Routers map[string]struct {
			EntryPoints []string `yaml:"entryPoints"`
			Rule        string   `yaml:"rule"`
			Middlewares []string `yaml:"middlewares"`
			Service     string   `yaml:"service"`
		} `yaml:"routers"`
		Middlewares map[string]struct {
			ForwardAuth *struct {
				Address                  string   `yaml:"address"`
				TrustForwardHeader       *bool    `yaml:"trustForwardHeader"`
				AuthResponseHeaders      []string `yaml:"authResponseHeaders"`
				AuthResponseHeadersRegex string   `yaml:"authResponseHeadersRegex"`
			} `yaml:"forwardAuth"`
			Headers *struct {
				CustomRequestHeaders map[string]string `yaml:"customRequestHeaders"`
			} `yaml:"headers"`
		} `yaml:"middlewares"`
		Services map[string]struct {
			LoadBalancer struct {
				Servers []struct {
					URL string `yaml:"url"`
				} `yaml:"servers"`
			} `yaml:"loadBalancer"`
		} `yaml:"services"`
	} `yaml:"http"`
}

func traefikProblems(d *traefikDynamic) []string {
	var p problems
	for name, r := range d.HTTP.Routers {
		auth, creds, original := -1, -1, -1
		for i, m := range r.Middlewares {
			mw := d.HTTP.Middlewares[m]
			if fa := mw.ForwardAuth; fa != nil {
				auth = i
				if !strings.HasSuffix(fa.Address, ":9002"+envoy.PathAuth) {
					p.addf("forwardAuth address %q, want usher's http_check_addr and %s", fa.Address, envoy.PathAuth)
				}
				if fa.TrustForwardHeader == nil || *fa.TrustForwardHeader {
					p.addf("forwardAuth trustForwardHeader not false: a client's X-Forwarded-Uri would be believed")
				}
				re, err := regexp.Compile(fa.AuthResponseHeadersRegex)
				if err != nil || fa.AuthResponseHeadersRegex == "" {
					p.addf("forwardAuth authResponseHeadersRegex %q: spoofed identity headers are not stripped", fa.AuthResponseHeadersRegex)
					continue
				}
				for _, h := range []string{"X-Usher-Subject", "X_usher_tenant", "X.usher.seats", "X-Usher-Admin", "X-Usher_email"} {
					if !re.MatchString(h) {
						p.addf("forwardAuth: %s is neither stripped nor set from usher's answer", h)
					}
				}
				for _, h := range []string{"X-Api-Key", "Authorization", "X-Envoy-Auth-Headers-To-Remove"} {
					if re.MatchString(h) {
						p.addf("forwardAuth: usher's answer may set %s", h)
					}
				}
			}
			if mw.Headers == nil {
				continue
			}
			removes := func(h string) bool { v, ok := mw.Headers.CustomRequestHeaders[h]; return ok && v == "" }
			if removes("X-Original-Uri") && removes("X-Original-Method") {
				original = i
			}
			if removes("X-Api-Key") && removes("Authorization") {
				creds = i
			}
		}
		switch {
		case auth < 0:
			p.addf("router %s: no forwardAuth middleware", name)
		case creds < 0:
			p.addf("router %s: credentials are not removed", name)
		case creds < auth:
			p.addf("router %s: credentials removed before the check", name)
		}
		if original < 0 || original > auth {
			p.addf("router %s: a client's X-Original-Uri reaches usher (it answers 400)", name)
		}
	}
	if len(d.HTTP.Routers) == 0 {
		p.addf("no router")
	}
	return p
}

func TestExampleTraefik(t *testing.T) {
	const file = "traefik.yml"
	shipped := readExample(t, file)
	tests := []struct {
		name, from, to, wantErr string
		want                    []string
	}{
		{name: "shipped"},
		{name: "misspelt key", from: "trustForwardHeader:", to: "trustForwardHeaders:", wantErr: "field trustForwardHeaders not found"},
		{name: "client's forwarded headers trusted", from: "trustForwardHeader: false", to: "trustForwardHeader: true",
			want: []string{"forwardAuth trustForwardHeader not false: a client's X-Forwarded-Uri would be believed"}},
		{name: "only the exact names copied", from: "authResponseHeadersRegex: (?i)^x[-_.]usher[-_.]", to: "authResponseHeaders: [X-Usher-Subject]",
			want: []string{`forwardAuth authResponseHeadersRegex "": spoofed identity headers are not stripped`}},
		{name: "dash only", from: "(?i)^x[-_.]usher[-_.]", to: "(?i)^x-usher-",
			want: []string{"forwardAuth: X_usher_tenant is neither stripped nor set from usher's answer",
				"forwardAuth: X.usher.seats is neither stripped nor set from usher's answer",
				"forwardAuth: X-Usher_email is neither stripped nor set from usher's answer"}},
		{name: "anything copied", from: "(?i)^x[-_.]usher[-_.]", to: "(?i)^x",
			want: []string{"forwardAuth: usher's answer may set X-Api-Key", "forwardAuth: usher's answer may set X-Envoy-Auth-Headers-To-Remove"}},
		{name: "credentials kept", from: "middlewares: [usher-original, usher, usher-credentials]", to: "middlewares: [usher-original, usher]",
			want: []string{"router app: credentials are not removed"}},
		{name: "credentials removed first", from: "middlewares: [usher-original, usher, usher-credentials]",
			to: "middlewares: [usher-original, usher-credentials, usher]", want: []string{"router app: credentials removed before the check"}},
		{name: "client's original URI kept", from: "middlewares: [usher-original, usher, usher-credentials]",
			to: "middlewares: [usher, usher-credentials]", want: []string{"router app: a client's X-Original-Uri reaches usher (it answers 400)"}},
		{name: "wrong path", from: "127.0.0.1:9002/auth", to: "127.0.0.1:9002/ext_authz",
			want: []string{`forwardAuth address "http://127.0.0.1:9002/ext_authz", want usher's http_check_addr and /auth`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d traefikDynamic
			err := decodeStrict(file, edit(t, shipped, tt.from, tt.to), &d)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("decode error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, traefikProblems(&d)); d != "" {
				t.Errorf("problems (-want +got):\n%s", d)
			}
		})
	}
}

// TestREADMEShowsShippedProxyConfigs: every nginx, Caddy and Traefik
// snippet the README's HTTP wiring section shows is a verbatim piece of
// the shipped file the proxy tests run.
func TestREADMEShowsShippedProxyConfigs(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Wiring nginx, Caddy, Traefik and Envoy over HTTP\n")
	if !ok {
		t.Fatal("README has no HTTP wiring section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	files := map[string]string{"nginx": "nginx.conf", "caddyfile": "Caddyfile", "yaml": "traefik.yml"}
	block := regexp.MustCompile("(?s)```(nginx|caddyfile|yaml)\n(.*?)```")
	shown := map[string]int{}
	for _, m := range block.FindAllStringSubmatch(section, -1) {
		shown[m[1]]++
		if !strings.Contains(string(readExample(t, files[m[1]])), m[2]) {
			t.Errorf("README shows a %s snippet that is not in examples/%s:\n%s", m[1], files[m[1]], m[2])
		}
	}
	for lang := range files {
		if shown[lang] == 0 {
			t.Errorf("README shows no %s snippet", lang)
		}
	}
}

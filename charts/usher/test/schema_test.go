package charttest

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/lint/support"
	"sigs.k8s.io/yaml"
)

// TestSchemaRefusesBadValues: values.schema.json refuses unknown keys,
// wrong types and values that would weaken the pods or leak a secret,
// each with a message naming the value.
func TestSchemaRefusesBadValues(t *testing.T) {
	prod := productionValues()
	cases := []struct {
		name string
		vals map[string]any
		want string
	}{
		{"unknown top-level key", set(prod, "replicas", 3), "replicas"},
		{"misspelt mode", set(prod, "mode", "prod"), "mode"},
		{"replica count zero", set(prod, "replicaCount", 0), "replicaCount"},
		{"replica count a string", set(prod, "replicaCount", "two"), "replicaCount"},
		{"pull policy", set(prod, "image.pullPolicy", "Sometimes"), "pullPolicy"},
		{"digest", set(prod, "image.digest", "latest"), "digest"},
		{"unknown setting", set(prod, "config.cache_ttl", "1m"), "cache_ttl"},
		{"duration", set(prod, "config.check_timeout", "fast"), "check_timeout"},
		{"log level", set(prod, "config.log_level", "verbose"), "log_level"},
		{"MongoDB URI as a setting", set(prod, "config.mongo_uri", "mongodb://u:"+sentinel+"@db/usher"), "mongo_uri"},
		{"grpc address as a setting", set(prod, "config.grpc_addr", "0.0.0.0:1"), "grpc_addr"},
		{"master key in extraEnv", set(prod, "extraEnv", []any{map[string]any{"name": "USHER_MASTER_KEY", "value": sentinel}}), "extraEnv"},
		{"client secret in extraEnv", set(prod, "extraEnv", []any{map[string]any{"name": "USHER_AUTH_CLIENT_SECRET", "value": sentinel}}), "extraEnv"},
		{"valueFrom in extraEnv", set(prod, "extraEnv", []any{map[string]any{"name": "X", "valueFrom": map[string]any{}}}), "extraEnv"},
		{"root", set(prod, "securityContext.runAsNonRoot", false), "runAsNonRoot"},
		{"writable root", set(prod, "securityContext.readOnlyRootFilesystem", false), "readOnlyRootFilesystem"},
		{"privilege escalation", set(prod, "securityContext.allowPrivilegeEscalation", true), "allowPrivilegeEscalation"},
		{"capability added", set(prod, "securityContext.capabilities", map[string]any{"drop": []any{"ALL"}, "add": []any{"NET_ADMIN"}}), "add"},
		{"capabilities kept", set(prod, "securityContext.capabilities", map[string]any{"drop": []any{"NET_RAW"}}), "drop"},
		{"pod as root", set(prod, "podSecurityContext.runAsNonRoot", false), "runAsNonRoot"},
		{"port out of range", set(prod, "service.grpcPort", 70000), "grpcPort"},
		{"trusted proxy not a CIDR", set(prod, "httpCheck.trustedProxies", []any{"everyone"}), "trustedProxies"},
		{"login provider type", set(prod, "login.provider.type", "saml"), "type"},
		{"login URL with a path", set(prod, "login.url", "https://auth.acme.test/login?x"), "url"},
		{"secret name", set(prod, "mongodb.existingSecret", "Not A Name"), "existingSecret"},
		{"HPA target", set(prod, "autoscaling.targetCPUUtilizationPercentage", 150), "targetCPUUtilizationPercentage"},
		{"spread constraint", set(prod, "topologySpreadConstraints", []any{map[string]any{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "Maybe"}}), "whenUnsatisfiable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := renderChart(t, tc.vals)
			if err == nil {
				t.Fatal("rendered")
			}
			if !strings.Contains(err.Error(), "values don't meet the specifications of the schema") {
				t.Errorf("refused, but not by the schema: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("the error does not name %s: %v", tc.want, err)
			}
			if strings.Contains(err.Error(), sentinel) {
				t.Errorf("the error repeats the secret value: %v", err)
			}
		})
	}
	// The values that pass are not refused by accident: each good set
	// differs from a bad one by one value.
	if _, _, err := renderChart(t, prod); err != nil {
		t.Fatalf("the good values: %v", err)
	}
}

// TestLint: helm lint (its Go action, strict: warnings count, not the
// INFO that no icon is set) passes for
// the default values and for each realistic set.
func TestLint(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			l := action.NewLint()
			l.Strict = true
			l.Namespace = namespace
			res := l.Run([]string{chartDir}, copyValues(vs.vals()))
			for _, m := range res.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("lint: %s", m)
				}
			}
			for _, err := range res.Errors {
				t.Errorf("lint: %v", err)
			}
		})
	}
}

// TestNotes: NOTES print an Envoy cluster and an Istio extensionProviders
// entry for this release that parse as YAML and name its Service and port.
func TestNotes(t *testing.T) {
	r := mustRender(t, productionValues())
	cluster := snippet(t, r.notes, "  clusters:")
	var envoy struct {
		Clusters []struct {
			Name           string `json:"name"`
			Type           string `json:"type"`
			LoadAssignment struct {
				Endpoints []struct {
					LBEndpoints []struct {
						Endpoint struct {
							Address struct {
								SocketAddress struct {
									Address   string `json:"address"`
									PortValue int    `json:"port_value"`
								} `json:"socket_address"`
							} `json:"address"`
						} `json:"endpoint"`
					} `json:"lb_endpoints"`
				} `json:"endpoints"`
			} `json:"load_assignment"`
			Protocol map[string]any `json:"typed_extension_protocol_options"`
		} `json:"clusters"`
	}
	if err := yaml.Unmarshal([]byte(cluster), &envoy); err != nil {
		t.Fatalf("the Envoy cluster in NOTES is not YAML: %v\n%s", err, cluster)
	}
	c := envoy.Clusters[0]
	sa := c.LoadAssignment.Endpoints[0].LBEndpoints[0].Endpoint.Address.SocketAddress
	if c.Name != "usher" || c.Type != "STRICT_DNS" || sa.Address != "usher-headless.usher-system.svc.cluster.local" || sa.PortValue != 9001 || c.Protocol == nil {
		t.Errorf("Envoy cluster %+v", c)
	}
	mesh := snippet(t, r.notes, "  meshConfig:")
	var istio struct {
		MeshConfig struct {
			ExtensionProviders []struct {
				Name string `json:"name"`
				Grpc struct {
					Service  string `json:"service"`
					Port     int    `json:"port"`
					Timeout  string `json:"timeout"`
					FailOpen *bool  `json:"failOpen"`
				} `json:"envoyExtAuthzGrpc"`
			} `json:"extensionProviders"`
		} `json:"meshConfig"`
	}
	if err := yaml.Unmarshal([]byte(mesh), &istio); err != nil {
		t.Fatalf("the Istio snippet in NOTES is not YAML: %v\n%s", err, mesh)
	}
	p := istio.MeshConfig.ExtensionProviders[0]
	if p.Name != "usher" || p.Grpc.Service != "usher.usher-system.svc.cluster.local" || p.Grpc.Port != 9001 || p.Grpc.FailOpen == nil || *p.Grpc.FailOpen {
		t.Errorf("Istio provider %+v", p)
	}
	if strings.Contains(r.notes, "TRIAL") {
		t.Error("production NOTES speak of a trial")
	}
}

// snippet returns the indented block of notes that starts at the line
// first, up to the next blank line, unindented by two spaces.
func snippet(t *testing.T, notes, first string) string {
	t.Helper()
	var b strings.Builder
	in := false
	sc := bufio.NewScanner(strings.NewReader(notes))
	for sc.Scan() {
		line := sc.Text()
		if line == first {
			in = true
		}
		if !in {
			continue
		}
		if strings.TrimSpace(line) == "" {
			break
		}
		b.WriteString(strings.TrimPrefix(line, "  ") + "\n")
	}
	if b.Len() == 0 {
		t.Fatalf("NOTES have no %q block:\n%s", first, notes)
	}
	return b.String()
}

// readmeEnv reads the environment variables of usher serve's
// configuration reference in the README: the names usher reads.
func readmeEnv(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	// Rows of the table: | `key` | `USHER_…` | `--flag` | default | meaning |
	row := regexp.MustCompile("(?m)^\\| `[a-z_.]+` \\| `(USHER_[A-Z0-9_]+)` \\|")
	var names []string
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		names = append(names, m[1])
	}
	return slices.Compact(slices.Sorted(slices.Values(names)))
}

// TestEnvNamesAreUshers: every variable the chart sets is one usher reads
// (the README's configuration reference, or the login and HTTP check
// variables of issues 9 and 11), so a typo is not silently ignored.
func TestEnvNamesAreUshers(t *testing.T) {
	known := map[string]bool{}
	for _, n := range readmeEnv(t) {
		known[n] = true
	}
	if !known["USHER_GRPC_ADDR"] || !known["USHER_MONGO_URI"] {
		t.Fatalf("the README's table was not read: %v", known)
	}
	for _, n := range []string{
		"USHER_AUTH_ENABLED", "USHER_LOGIN_ADDR", "USHER_LOGIN_URL", "USHER_ROOT_DOMAIN", "USHER_SESSION_KEY",
		"USHER_ALLOWED_DOMAINS", "USHER_ALLOW_ALL_USERS", "USHER_AUTH_TENANT", "USHER_AUTH_PROVIDER_TYPE",
		"USHER_AUTH_CLIENT_ID", "USHER_AUTH_CLIENT_SECRET", "USHER_AUTH_ISSUER_URL", "USHER_AUTH_REDIRECT_URL",
		"USHER_AUTH_GROUPS_CLAIM", "USHER_HTTP_CHECK_ADDR", "USHER_TRUSTED_PROXIES",
	} {
		known[n] = true
	}
	for _, vs := range valueSets {
		r := mustRender(t, vs.vals())
		for name, d := range r.deployments {
			for _, e := range d.Spec.Template.Spec.Containers[0].Env {
				if strings.HasPrefix(e.Name, "USHER_") && !known[e.Name] {
					t.Errorf("%s: %s sets %s, which usher does not read", vs.name, name, e.Name)
				}
			}
		}
		// The settings file holds only keys of the configuration reference.
		var cfg map[string]any
		if err := yaml.Unmarshal([]byte(r.configMaps["usher"].Data["config.yaml"]), &cfg); err != nil {
			t.Fatalf("%s: config.yaml: %v", vs.name, err)
		}
		for _, k := range flatten("", cfg) {
			env := "USHER_" + strings.ToUpper(strings.ReplaceAll(k, ".", "_"))
			if !known[env] {
				t.Errorf("%s: config.yaml key %s is not in the README's configuration reference", vs.name, k)
			}
		}
	}
}

func flatten(prefix string, m map[string]any) []string {
	var out []string
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			out = append(out, flatten(prefix+k+".", sub)...)
			continue
		}
		out = append(out, prefix+k)
	}
	return out
}

package charttest

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func container(t *testing.T, r *rendered, name string) corev1.Container {
	t.Helper()
	d, ok := r.deployments[name]
	if !ok {
		t.Fatalf("no Deployment %s (have %v)", name, keys(r.deployments))
	}
	return d.Spec.Template.Spec.Containers[0]
}

func keys[T any](m map[string]T) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func hasArg(c corev1.Container, arg string) bool {
	for _, a := range c.Args {
		if a == arg {
			return true
		}
	}
	return false
}

// TestTrialMode: the default values run one replica on the embedded store
// in a PersistentVolumeClaim mounted at the data directory; no MongoDB, no
// autoscaler or disruption budget (one pod owns the store), and the old
// pod stops before the new one opens the store.
func TestTrialMode(t *testing.T) {
	r := mustRender(t, nil)
	d := r.deployments["usher"]
	if d == nil {
		t.Fatalf("no Deployment usher: %v", keys(r.deployments))
	}
	if len(r.deployments) != 1 || d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("trial: %d Deployments, replicas %v, strategy %s; want one, 1, Recreate", len(r.deployments), d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	c := container(t, r, "usher")
	if envValue(c, "USHER_DATA_DIR") != "/data" || envVar(c, "USHER_MONGO_URI") != nil {
		t.Errorf("trial: data dir %q, mongo %v", envValue(c, "USHER_DATA_DIR"), envVar(c, "USHER_MONGO_URI"))
	}
	pvc := r.pvcs["usher-data"]
	if pvc == nil {
		t.Fatalf("no PersistentVolumeClaim usher-data: %v", keys(r.pvcs))
	}
	if pvc.Annotations["helm.sh/resource-policy"] != "keep" {
		t.Error("the trial's data claim is deleted with the release")
	}
	mounted := false
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == "usher-data" {
			for _, m := range c.VolumeMounts {
				mounted = mounted || (m.Name == v.Name && m.MountPath == "/data")
			}
		}
	}
	if !mounted {
		t.Error("the claim is not mounted at /data")
	}
	if len(r.hpas)+len(r.pdbs) != 0 {
		t.Errorf("trial renders %d HPAs and %d PDBs", len(r.hpas), len(r.pdbs))
	}
	if !hasArg(c, "--roles=authz") {
		t.Errorf("args %q", c.Args)
	}
	if !strings.Contains(r.notes, "TRIAL MODE") {
		t.Error("NOTES do not say the release is a trial")
	}
}

// TestTrialModeRefusesScaling: the embedded store is one pod's; asking for
// autoscaling or for MongoDB while in trial mode fails with a message.
func TestTrialModeRefusesScaling(t *testing.T) {
	_, _, err := renderChart(t, map[string]any{"autoscaling": map[string]any{"enabled": true}})
	if err == nil || !strings.Contains(err.Error(), "autoscaling.enabled needs mode=production") {
		t.Errorf("trial with autoscaling: %v", err)
	}
	_, _, err = renderChart(t, map[string]any{"mongodb": map[string]any{"existingSecret": "m"}})
	if err == nil || !strings.Contains(err.Error(), "set mode=production") {
		t.Errorf("trial with MongoDB: %v", err)
	}
}

// TestProductionNeedsMongo: production without a MongoDB Secret fails and
// says what to set.
func TestProductionNeedsMongo(t *testing.T) {
	_, _, err := renderChart(t, map[string]any{"mode": "production"})
	if err == nil {
		t.Fatal("production without MongoDB rendered")
	}
	for _, want := range []string{"mode=production needs MongoDB", "mongodb.existingSecret", "mode=trial"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestProduction: MongoDB from its Secret, the replicas asked for, a
// rolling update that never drops below them, a disruption budget.
func TestProduction(t *testing.T) {
	r := mustRender(t, productionValues())
	c := container(t, r, "usher")
	ref := envVar(c, "USHER_MONGO_URI")
	if ref == nil || ref.ValueFrom == nil || ref.ValueFrom.SecretKeyRef == nil ||
		ref.ValueFrom.SecretKeyRef.Name != "usher-mongo" || ref.ValueFrom.SecretKeyRef.Key != "uri" {
		t.Errorf("USHER_MONGO_URI = %+v, want secretKeyRef usher-mongo/uri", ref)
	}
	if envVar(c, "USHER_DATA_DIR") != nil || len(r.pvcs) != 0 {
		t.Error("production uses a data directory")
	}
	d := r.deployments["usher"]
	if *d.Spec.Replicas != 2 || d.Spec.Strategy.RollingUpdate == nil || d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("replicas %d, strategy %+v", *d.Spec.Replicas, d.Spec.Strategy)
	}
	pdb := r.pdbs["usher"]
	if pdb == nil || pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
		t.Errorf("PDB %+v", pdb)
	}
	if envValue(c, "USHER_MASTER_KEY_FILE") != "/etc/usher/master-key/master-key" {
		t.Errorf("USHER_MASTER_KEY_FILE = %q", envValue(c, "USHER_MASTER_KEY_FILE"))
	}
	cm := r.configMaps["usher"]
	var cfg map[string]any
	if err := unmarshalYAML(cm.Data["config.yaml"], &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["check_timeout"] != "150ms" || cfg["cache"].(map[string]any)["ttl"] != "30s" {
		t.Errorf("config.yaml = %v", cfg)
	}
}

// TestRolesSplit: in production the login app is its own Deployment
// (usher serve --roles=login) with the login secrets; the authz pods run
// --roles=authz and get neither the session key nor the IdP client
// secret. Each has its Service and disruption budget.
func TestRolesSplit(t *testing.T) {
	r := mustRender(t, productionLoginValues())
	authz, login := container(t, r, "usher"), container(t, r, "usher-login")
	if !hasArg(authz, "--roles=authz") || !hasArg(login, "--roles=login") {
		t.Errorf("authz args %q, login args %q", authz.Args, login.Args)
	}
	for _, name := range []string{"USHER_SESSION_KEY", "USHER_AUTH_CLIENT_SECRET", "USHER_LOGIN_ADDR"} {
		if envVar(authz, name) != nil {
			t.Errorf("the authz pods get %s", name)
		}
		if envVar(login, name) == nil {
			t.Errorf("the login pods lack %s", name)
		}
	}
	for _, c := range []corev1.Container{authz, login} {
		if envValue(c, "USHER_AUTH_ENABLED") != "true" || envValue(c, "USHER_ROOT_DOMAIN") != "acme.test" ||
			envValue(c, "USHER_ALLOWED_DOMAINS") != "acme.test,acme-eu.test" || envValue(c, "USHER_LOGIN_URL") != "https://auth.acme.test" {
			t.Errorf("%s: login settings %v", c.Args, c.Env)
		}
	}
	if envValue(login, "USHER_LOGIN_ADDR") != ":8081" {
		t.Errorf("USHER_LOGIN_ADDR = %q", envValue(login, "USHER_LOGIN_ADDR"))
	}
	for _, c := range []corev1.Container{authz, login} {
		var ports []string
		for _, p := range c.Ports {
			ports = append(ports, p.Name)
		}
		want := "grpc,http-admin"
		if hasArg(c, "--roles=login") {
			want = "http-login,http-admin"
		}
		if strings.Join(ports, ",") != want {
			t.Errorf("%q opens ports %v, want %s", c.Args, ports, want)
		}
	}
	if r.services["usher-login"] == nil || r.pdbs["usher-login"] == nil || r.ingresses["usher-login"] == nil {
		t.Errorf("login Service %v, PDB %v, Ingress %v", r.services["usher-login"] != nil, r.pdbs["usher-login"] != nil, r.ingresses["usher-login"] != nil)
	}
	if got := r.ingresses["usher-login"].Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name; got != "usher-login" {
		t.Errorf("the Ingress sends to %s", got)
	}

	// Trial with login: one pod runs both roles, and the login Service
	// selects it.
	r = mustRender(t, trialLoginValues())
	c := container(t, r, "usher")
	if !hasArg(c, "--roles=authz,login") || envVar(c, "USHER_SESSION_KEY") == nil {
		t.Errorf("trial login: args %q", c.Args)
	}
	if len(r.deployments) != 1 || r.services["usher-login"] == nil {
		t.Errorf("trial login: Deployments %v, Services %v", keys(r.deployments), keys(r.services))
	}
}

// TestLoginNeedsItsSettings: login.enabled without its settings lists
// every missing one at once.
func TestLoginNeedsItsSettings(t *testing.T) {
	_, _, err := renderChart(t, map[string]any{"login": map[string]any{"enabled": true}})
	if err == nil {
		t.Fatal("login without settings rendered")
	}
	for _, want := range []string{"masterKey.existingSecret", "login.sessionKey.existingSecret", "login.provider.existingSecret",
		"login.provider.clientId", "login.provider.issuerURL", "login.rootDomain", "login.allowedDomains", "login.tenant"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %s: %v", want, err)
		}
	}
}

// TestFullProduction: autoscaling replaces the fixed replica count, TLS
// switches readiness to /readyz and mounts the certificates, the
// NetworkPolicy opens Check only to the ingress and mesh namespaces and
// /metrics only to monitoring, the ServiceMonitor scrapes http-admin.
func TestFullProduction(t *testing.T) {
	r := mustRender(t, productionFullValues())
	d := r.deployments["usher"]
	if d.Spec.Replicas != nil {
		t.Errorf("replicas %d set while the HPA scales", *d.Spec.Replicas)
	}
	hpa := r.hpas["usher"]
	if hpa == nil || hpa.Spec.ScaleTargetRef.Name != "usher" || *hpa.Spec.MinReplicas != 3 || hpa.Spec.MaxReplicas != 12 || len(hpa.Spec.Metrics) != 2 {
		t.Errorf("HPA %+v", hpa)
	}
	if pdb := r.pdbs["usher"]; pdb == nil || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.String() != "25%" || pdb.Spec.MinAvailable != nil {
		t.Errorf("PDB %+v", pdb)
	}
	c := container(t, r, "usher")
	if c.Image != "registry.acme.test/usher@sha256:"+repeat("ab", 32) {
		t.Errorf("image %s", c.Image)
	}
	if envValue(c, "USHER_TLS_CERT_FILE") != "/etc/usher/tls/tls.crt" || envValue(c, "USHER_TLS_CLIENT_CA_FILE") != "/etc/usher/client-ca/ca.crt" {
		t.Errorf("TLS env %v", c.Env)
	}
	if envValue(c, "USHER_HTTP_CHECK_ADDR") != ":9002" || envValue(c, "USHER_TRUSTED_PROXIES") != "10.0.0.0/8" {
		t.Errorf("HTTP check env %v", c.Env)
	}
	np := r.netpols["usher"]
	if np == nil {
		t.Fatal("no NetworkPolicy usher")
	}
	if len(np.Spec.Ingress) != 2 {
		t.Fatalf("NetworkPolicy has %d rules", len(np.Spec.Ingress))
	}
	check, metrics := np.Spec.Ingress[0], np.Spec.Ingress[1]
	var nsNames []string
	for _, p := range check.From {
		if p.NamespaceSelector == nil || p.PodSelector != nil || p.IPBlock != nil {
			t.Errorf("a Check peer that is not a namespace: %+v", p)
			continue
		}
		nsNames = append(nsNames, p.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"])
	}
	if strings.Join(nsNames, ",") != "istio-system,ingress-nginx" {
		t.Errorf("Check is open to %v", nsNames)
	}
	var ports []string
	for _, p := range check.Ports {
		ports = append(ports, p.Port.String())
	}
	if strings.Join(ports, ",") != "grpc,http-check" {
		t.Errorf("Check rule ports %v", ports)
	}
	if len(metrics.Ports) != 1 || metrics.Ports[0].Port.String() != "http-admin" ||
		metrics.From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" {
		t.Errorf("metrics rule %+v", metrics)
	}
	if r.netpols["usher-login"] == nil {
		t.Error("no NetworkPolicy for the login pods")
	}
	sm := r.serviceMonitors["usher"]
	if sm == nil || len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "http-admin" || sm.Labels["release"] != "kube-prometheus-stack" {
		t.Errorf("ServiceMonitor %+v", sm)
	}
	if dash := r.configMaps["usher-dashboard"]; dash == nil || dash.Labels["grafana_dashboard"] != "1" || !strings.Contains(dash.Data["usher.json"], "usher_check_decisions_total") {
		t.Error("no dashboard ConfigMap for Grafana's sidecar")
	}
}

// TestChecksumRollsPods: the pods carry a checksum of the ConfigMap, so a
// change of the route rules or settings rolls them, and nothing else does.
func TestChecksumRollsPods(t *testing.T) {
	sum := func(vals map[string]any) string {
		r := mustRender(t, vals)
		return r.deployments["usher"].Spec.Template.Annotations["checksum/config"]
	}
	base := productionValues()
	a := sum(base)
	if len(a) != 64 {
		t.Fatalf("checksum/config = %q", a)
	}
	if b := sum(set(base, "rules", "default: deny\nrules: []\n")); b == a {
		t.Error("a rules change keeps the checksum: pods would not roll")
	}
	if b := sum(set(base, "config.cache.ttl", "45s")); b == a {
		t.Error("a settings change keeps the checksum")
	}
	if b := sum(set(base, "replicaCount", 5)); b != a {
		t.Error("a replica count change rolls the pods")
	}
}

func unmarshalYAML(s string, v any) error {
	return yaml.Unmarshal([]byte(s), v)
}

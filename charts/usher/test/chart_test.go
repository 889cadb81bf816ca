package charttest

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// secretEnv are the variables that carry secrets: only ever from a
// Secret (secretKeyRef), never a literal value.
var secretEnv = []string{"USHER_MONGO_URI", "USHER_SESSION_KEY", "USHER_AUTH_CLIENT_SECRET", "USHER_MASTER_KEY"}

// TestRenderEveryValueSet renders each realistic value set; every object
// decodes strictly into its Kubernetes type, and every pod runs usher
// locked down: non-root, read-only root, no capabilities, RuntimeDefault
// seccomp, no service account token, resources set, spread over nodes
// and zones, probes on the right ports, secrets only by reference.
func TestRenderEveryValueSet(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			r := mustRender(t, vs.vals())
			if len(r.deployments) == 0 {
				t.Fatal("no Deployment")
			}
			for name, d := range r.deployments {
				checkPod(t, name, d)
			}
			checkSecretsByReference(t, r)
			checkServiceSelectors(t, r)
		})
	}
}

func checkPod(t *testing.T, name string, d *appsv1.Deployment) {
	t.Helper()
	spec := d.Spec.Template.Spec
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("%s: selector %s=%s does not match the pod's labels", name, k, v)
		}
	}
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod securityContext %+v: want runAsNonRoot and RuntimeDefault seccomp", name, psc)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: the service account token is mounted; usher never calls the Kubernetes API", name)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%s: %d containers", name, len(spec.Containers))
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatalf("%s: no container securityContext", name)
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
		t.Errorf("%s: runAsNonRoot is not true", name)
	case sc.RunAsUser == nil || *sc.RunAsUser == 0:
		t.Errorf("%s: runAsUser is not a non-root uid", name)
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Errorf("%s: the root filesystem is writable", name)
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Errorf("%s: privilege escalation is allowed", name)
	case sc.Privileged != nil && *sc.Privileged:
		t.Errorf("%s: privileged", name)
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0:
		t.Errorf("%s: capabilities %+v, want drop [ALL] and none added", name, sc.Capabilities)
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("%s: container seccomp is not RuntimeDefault", name)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("%s: resources %+v: want CPU and memory requests and a memory limit", name, c.Resources)
	}
	if len(spec.TopologySpreadConstraints) == 0 {
		t.Errorf("%s: no topologySpreadConstraints", name)
	}
	for _, tsc := range spec.TopologySpreadConstraints {
		if tsc.LabelSelector == nil || len(tsc.LabelSelector.MatchLabels) == 0 {
			t.Errorf("%s: spread on %s selects no pods", name, tsc.TopologyKey)
			continue
		}
		for k, v := range tsc.LabelSelector.MatchLabels {
			if d.Spec.Template.Labels[k] != v {
				t.Errorf("%s: spread on %s selects %s=%s, not this Deployment's pods", name, tsc.TopologyKey, k, v)
			}
		}
	}
	checkProbes(t, name, c)
	// The writable places are volumes: /tmp, and /data in trial mode.
	for _, m := range c.VolumeMounts {
		writable := m.MountPath == "/tmp" || m.MountPath == "/data"
		if !writable && !m.ReadOnly {
			t.Errorf("%s: %s is mounted writable", name, m.MountPath)
		}
	}
}

// checkProbes: liveness is the process (/healthz); readiness of a pod that
// answers Check is the gRPC health service on the authz port (or /readyz
// with TLS, which the kubelet's gRPC probe cannot speak), and of a login
// pod /readyz on the HTTP port.
func checkProbes(t *testing.T, name string, c corev1.Container) {
	t.Helper()
	roles := ""
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--roles="); ok {
			roles = v
		}
	}
	if roles == "" {
		t.Errorf("%s: args %q name no --roles", name, c.Args)
	}
	port := map[string]int32{}
	for _, p := range c.Ports {
		port[p.Name] = p.ContainerPort
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" ||
		c.LivenessProbe.HTTPGet.Port != intstr.FromString("http-admin") {
		t.Errorf("%s: liveness probe %+v, want /healthz on http-admin", name, c.LivenessProbe)
	}
	if c.StartupProbe == nil || c.StartupProbe.HTTPGet == nil || c.StartupProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("%s: startup probe %+v, want /healthz", name, c.StartupProbe)
	}
	rp := c.ReadinessProbe
	if rp == nil {
		t.Fatalf("%s: no readiness probe", name)
	}
	tls := envValue(c, "USHER_TLS_CERT_FILE") != ""
	switch {
	case strings.Contains(roles, "authz") && !tls:
		if rp.GRPC == nil || rp.GRPC.Port != port["grpc"] || rp.GRPC.Service == nil || *rp.GRPC.Service != "envoy.service.auth.v3.Authorization" {
			t.Errorf("%s: readiness %+v, want the gRPC health of envoy.service.auth.v3.Authorization on port %d", name, rp, port["grpc"])
		}
	default:
		if rp.HTTPGet == nil || rp.HTTPGet.Path != "/readyz" || rp.HTTPGet.Port != intstr.FromString("http-admin") {
			t.Errorf("%s: readiness %+v, want /readyz on http-admin", name, rp)
		}
	}
	if port["http-admin"] == 0 || envValue(c, "USHER_HTTP_ADDR") != ":"+itoa(port["http-admin"]) {
		t.Errorf("%s: USHER_HTTP_ADDR %q does not listen on the http-admin port %d", name, envValue(c, "USHER_HTTP_ADDR"), port["http-admin"])
	}
	if strings.Contains(roles, "authz") && envValue(c, "USHER_GRPC_ADDR") != ":"+itoa(port["grpc"]) {
		t.Errorf("%s: USHER_GRPC_ADDR %q does not listen on the grpc port %d", name, envValue(c, "USHER_GRPC_ADDR"), port["grpc"])
	}
	if strings.Contains(roles, "login") && envValue(c, "USHER_LOGIN_ADDR") != ":"+itoa(port["http-login"]) {
		t.Errorf("%s: USHER_LOGIN_ADDR %q does not listen on the http-login port", name, envValue(c, "USHER_LOGIN_ADDR"))
	}
}

func itoa(n int32) string {
	b, _ := yaml.Marshal(n)
	return strings.TrimSpace(string(b))
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func envVar(c corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

// checkSecretsByReference: the chart makes no Secret, variables that carry
// secrets come from secretKeyRef, the master key from a mounted Secret,
// and no ConfigMap or literal value holds anything shaped like a secret.
func checkSecretsByReference(t *testing.T, r *rendered) {
	t.Helper()
	for name, d := range r.deployments {
		c := d.Spec.Template.Spec.Containers[0]
		for _, e := range c.Env {
			if slices.Contains(secretEnv, e.Name) {
				if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					t.Errorf("%s: %s is not taken from a Secret: %+v", name, e.Name, e)
				}
				continue
			}
			if e.ValueFrom != nil {
				t.Errorf("%s: %s comes from %+v; only secret variables do", name, e.Name, e.ValueFrom)
			}
			if looksSecret(e.Value) {
				t.Errorf("%s: %s=%q looks like a secret in a literal value", name, e.Name, e.Value)
			}
		}
		if f := envValue(c, "USHER_MASTER_KEY_FILE"); f != "" {
			found := false
			for _, m := range c.VolumeMounts {
				if strings.HasPrefix(f, m.MountPath+"/") {
					for _, v := range d.Spec.Template.Spec.Volumes {
						found = found || (v.Name == m.Name && v.Secret != nil)
					}
				}
			}
			if !found {
				t.Errorf("%s: USHER_MASTER_KEY_FILE %s is not in a mounted Secret", name, f)
			}
		}
	}
	for name, cm := range r.configMaps {
		for k, v := range cm.Data {
			if looksSecret(v) {
				t.Errorf("ConfigMap %s key %s holds something shaped like a secret", name, k)
			}
		}
	}
}

// looksSecret: a MongoDB URI (credentials live in it), a PEM key, or one
// of the sentinel values the tests put where a secret could leak from.
func looksSecret(s string) bool {
	for _, marker := range []string{"mongodb://", "mongodb+srv://", "PRIVATE KEY", sentinel} {
		if strings.Contains(s, marker) {
			return true
		}
	}
	return false
}

const sentinel = "s3cr3t-sentinel"

func checkServiceSelectors(t *testing.T, r *rendered) {
	t.Helper()
	for name, svc := range r.services {
		matched := false
		for _, d := range r.deployments {
			ok := true
			for k, v := range svc.Spec.Selector {
				ok = ok && d.Spec.Template.Labels[k] == v
			}
			if !ok {
				continue
			}
			matched = true
			for _, p := range svc.Spec.Ports {
				if !slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].Ports, func(cp corev1.ContainerPort) bool { return cp.Name == p.TargetPort.StrVal }) {
					t.Errorf("Service %s port %s targets %s, which pods of %s do not have", name, p.Name, p.TargetPort.StrVal, d.Name)
				}
			}
		}
		if !matched {
			t.Errorf("Service %s selects no Deployment's pods", name)
		}
	}
}

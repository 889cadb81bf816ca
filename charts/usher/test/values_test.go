package charttest

// Realistic value sets, as operators would write them.

// trialValues: try usher out, with the login app.
func trialLoginValues() map[string]any {
	return map[string]any{
		"mode":      "trial",
		"masterKey": map[string]any{"existingSecret": "usher-master-key"},
		"login":     loginValues(),
	}
}

func loginValues() map[string]any {
	return map[string]any{
		"enabled":        true,
		"url":            "https://auth.acme.test",
		"rootDomain":     "acme.test",
		"allowedDomains": []any{"acme.test", "acme-eu.test"},
		"tenant":         "acme",
		"provider": map[string]any{
			"type": "oidc", "clientId": "usher-web", "issuerURL": "https://idp.acme.test/realms/acme",
			"existingSecret": "usher-idp", "groupsClaim": "groups",
		},
		"sessionKey": map[string]any{"existingSecret": "usher-session-key"},
		"ingress":    map[string]any{"enabled": true, "className": "nginx", "host": "auth.acme.test", "tlsSecretName": "auth-acme-tls"},
	}
}

// productionValues: MongoDB, several replicas, the defaults otherwise.
func productionValues() map[string]any {
	return map[string]any{
		"mode":      "production",
		"mongodb":   map[string]any{"existingSecret": "usher-mongo", "uriKey": "uri"},
		"masterKey": map[string]any{"existingSecret": "usher-master-key", "key": "key"},
		"config": map[string]any{
			"log_format": "json", "check_timeout": "150ms",
			"cache": map[string]any{"ttl": "30s", "max_cost": 134217728},
			"jwt":   map[string]any{"issuer": "https://auth.acme.test", "audience": "acme-apis"},
		},
	}
}

// productionLoginValues: production with the login app as its own
// Deployment.
func productionLoginValues() map[string]any {
	v := productionValues()
	v["login"] = loginValues()
	return v
}

// productionFullValues: every optional part on: autoscaling, PDB,
// NetworkPolicy, ServiceMonitor, the dashboard, TLS with client
// certificates, HTTP check mode, the login app.
func productionFullValues() map[string]any {
	v := productionLoginValues()
	v["image"] = map[string]any{"repository": "registry.acme.test/usher", "digest": "sha256:" + repeat("ab", 32), "pullPolicy": "IfNotPresent"}
	v["autoscaling"] = map[string]any{"enabled": true, "minReplicas": 3, "maxReplicas": 12, "targetCPUUtilizationPercentage": 60, "targetMemoryUtilizationPercentage": 80}
	v["podDisruptionBudget"] = map[string]any{"enabled": true, "minAvailable": "", "maxUnavailable": "25%"}
	v["networkPolicy"] = map[string]any{
		"enabled": true,
		"ingressNamespaces": []any{
			map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "istio-system"}},
			map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "ingress-nginx"}},
		},
	}
	v["serviceMonitor"] = map[string]any{"enabled": true, "labels": map[string]any{"release": "kube-prometheus-stack"}}
	v["dashboard"] = map[string]any{"enabled": true}
	v["tls"] = map[string]any{"enabled": true, "existingSecret": "usher-tls", "clientCA": map[string]any{"existingSecret": "envoy-ca"}}
	v["httpCheck"] = map[string]any{"enabled": true, "trustedProxies": []any{"10.0.0.0/8"}}
	v["extraEnv"] = []any{map[string]any{"name": "GOMAXPROCS", "value": "2"}}
	return v
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}

// valueSets are rendered by every test that checks what any rendering
// must hold.
var valueSets = []struct {
	name string
	vals func() map[string]any
}{
	{"default", func() map[string]any { return nil }},
	{"trial-login", trialLoginValues},
	{"production", productionValues},
	{"production-login", productionLoginValues},
	{"production-full", productionFullValues},
}

// set returns a copy of v with the value at the dotted path replaced.
func set(v map[string]any, path string, value any) map[string]any {
	out := copyValues(v)
	m := out
	keys := splitPath(path)
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = value
	return out
}

func splitPath(p string) []string {
	var keys []string
	start := 0
	for i := range len(p) {
		if p[i] == '.' {
			keys = append(keys, p[start:i])
			start = i + 1
		}
	}
	return append(keys, p[start:])
}

package charttest

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

const (
	releaseName = "usher"
	namespace   = "usher-system"
)

// chartDir is the chart under test: this module lives in its test/ folder.
var chartDir = filepath.Join("..")

// rendered is one rendering of the chart, every object decoded.
type rendered struct {
	notes string
	// objects by kind, then by name.
	deployments     map[string]*appsv1.Deployment
	services        map[string]*corev1.Service
	configMaps      map[string]*corev1.ConfigMap
	serviceAccounts map[string]*corev1.ServiceAccount
	pvcs            map[string]*corev1.PersistentVolumeClaim
	hpas            map[string]*autoscalingv2.HorizontalPodAutoscaler
	pdbs            map[string]*policyv1.PodDisruptionBudget
	netpols         map[string]*networkingv1.NetworkPolicy
	ingresses       map[string]*networkingv1.Ingress
	serviceMonitors map[string]*monitoringv1.ServiceMonitor
	count           int
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load the chart: %v", err)
	}
	return c
}

// renderChart renders the chart as `helm template` would, with vals over
// the chart's values.yaml. Schema violations and the templates' fail
// calls come back as the error.
func renderChart(t *testing.T, vals map[string]any) (string, string, error) {
	t.Helper()
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun = true
	install.ClientOnly = true
	install.Replace = true
	install.ReleaseName = releaseName
	install.Namespace = namespace
	install.KubeVersion = &chartutil.KubeVersion{Version: "v1.31.0", Major: "1", Minor: "31"}
	install.APIVersions = chartutil.VersionSet{"monitoring.coreos.com/v1"}
	rel, err := install.Run(loadChart(t), copyValues(vals))
	if err != nil {
		return "", "", err
	}
	return rel.Manifest, rel.Info.Notes, nil
}

// copyValues deep-copies vals, since Helm coalesces into what it is given.
func copyValues(vals map[string]any) map[string]any {
	b, err := yaml.Marshal(vals)
	if err != nil {
		panic(err)
	}
	var out map[string]any
	if err := yaml.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	if out == nil {
		out = map[string]any{}
	}
	return out
}

// mustRender renders vals and decodes every object strictly.
func mustRender(t *testing.T, vals map[string]any) *rendered {
	t.Helper()
	manifest, notes, err := renderChart(t, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	r, err := decodeManifest(manifest)
	if err != nil {
		t.Fatal(err)
	}
	r.notes = notes
	return r
}

// typeMeta is what a document says it is.
type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
}

// decodeManifest splits a rendered manifest into its documents and
// decodes each strictly (unknown or repeated fields are errors) into the
// Kubernetes type its apiVersion and kind name; a kind the chart is not
// expected to produce (a Secret above all) is an error.
func decodeManifest(manifest string) (*rendered, error) {
	r := &rendered{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, serviceAccounts: map[string]*corev1.ServiceAccount{},
		pvcs: map[string]*corev1.PersistentVolumeClaim{}, hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, netpols: map[string]*networkingv1.NetworkPolicy{},
		ingresses: map[string]*networkingv1.Ingress{}, serviceMonitors: map[string]*monitoringv1.ServiceMonitor{},
	}
	var errs []error
	for i, doc := range splitDocuments(manifest) {
		var tm typeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", i, err))
			continue
		}
		where := fmt.Sprintf("%s %s/%s", tm.APIVersion, tm.Kind, tm.Metadata.Name)
		for _, msg := range validation.IsDNS1123Subdomain(tm.Metadata.Name) {
			errs = append(errs, fmt.Errorf("%s: name: %s", where, msg))
		}
		for k, v := range tm.Metadata.Labels {
			for _, msg := range append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...) {
				errs = append(errs, fmt.Errorf("%s: label %s=%q: %s", where, k, v, msg))
			}
		}
		obj, err := r.slot(tm)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			errs = append(errs, fmt.Errorf("%s: strict decode: %w", where, err))
			continue
		}
		r.count++
	}
	return r, errors.Join(errs...)
}

// slot returns a new object of tm's type, registered under its name.
func (r *rendered) slot(tm typeMeta) (any, error) {
	name := tm.Metadata.Name
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		return put(r.deployments, name)
	case "v1 Service":
		return put(r.services, name)
	case "v1 ConfigMap":
		return put(r.configMaps, name)
	case "v1 ServiceAccount":
		return put(r.serviceAccounts, name)
	case "v1 PersistentVolumeClaim":
		return put(r.pvcs, name)
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return put(r.hpas, name)
	case "policy/v1 PodDisruptionBudget":
		return put(r.pdbs, name)
	case "networking.k8s.io/v1 NetworkPolicy":
		return put(r.netpols, name)
	case "networking.k8s.io/v1 Ingress":
		return put(r.ingresses, name)
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return put(r.serviceMonitors, name)
	}
	return nil, errors.New("a kind the chart must not produce")
}

func put[T any](m map[string]*T, name string) (*T, error) {
	if _, dup := m[name]; dup {
		return nil, errors.New("rendered twice")
	}
	v := new(T)
	m[name] = v
	return v, nil
}

// splitDocuments returns the non-empty YAML documents of a manifest.
func splitDocuments(manifest string) []string {
	var docs []string
	for _, d := range strings.Split("\n"+manifest, "\n---") {
		var content bytes.Buffer
		for _, line := range strings.Split(d, "\n") {
			if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
				continue
			}
			content.WriteString(line)
		}
		if content.Len() > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

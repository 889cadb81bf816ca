package envoy_test

// Envoy cannot be installed on our machines, so the shipped Envoy example is
// checked the way Envoy would load it: decoded into go-control-plane's
// bootstrap protos (unknown fields are errors) and validated with the
// generated ValidateAll, on the bootstrap and on every typed_config packed
// in an Any below it. On top of that the security properties the example
// exists to show are asserted, and each assertion is shown to fail on a
// config that breaks it.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"gopkg.in/yaml.v3"

	// Types that appear only inside an Any: protojson resolves "@type"
	// through the global registry, so each must be linked in.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/formatter/req_without_query/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/downstream_connections/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/fixed_heap/v3"

	"github.com/usher-dev/usher/authz"
)

const (
	extAuthzFilter       = "envoy.filters.http.ext_authz"
	headerMutationFilter = "envoy.filters.http.header_mutation"
	routerFilter         = "envoy.filters.http.router"
	httpProtocolOptions  = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	maxCheckTimeout      = 200 * time.Millisecond
)

// identityHeaders are the headers usher sets on an allowed request; a client
// must never get its own copy of one to the app.
var identityHeaders = authz.IdentityHeaders

func readExample(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// edit replaces from with to in data, and fails the test unless from occurs
// exactly once: a case whose edit no longer applies must not pass silently.
func edit(t *testing.T, data []byte, from, to string) []byte {
	t.Helper()
	if from == "" {
		return data
	}
	if n := bytes.Count(data, []byte(from)); n != 1 {
		t.Fatalf("edit: %q occurs %d times, want 1", from, n)
	}
	return bytes.Replace(data, []byte(from), []byte(to), 1)
}

// yamlToJSON re-encodes a YAML document as JSON for protojson.
func yamlToJSON(data []byte) ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	v, err := jsonValue(doc)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// jsonValue turns what yaml.v3 decodes into any (map[string]any, or
// map[any]any when a key is not a plain string) into values encoding/json
// can encode. A non-string mapping key is an error: JSON has none.
func jsonValue(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			c, err := jsonValue(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = c
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("mapping key %v is a %T, not a string", k, k)
			}
			c, err := jsonValue(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", ks, err)
			}
			out[ks] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			c, err := jsonValue(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = c
		}
		return out, nil
	default:
		return v, nil
	}
}

// loadBootstrap decodes an Envoy bootstrap YAML and validates it all. It
// returns the type URLs of the Any payloads it validated, sorted.
func loadBootstrap(data []byte) (*bootstrapv3.Bootstrap, []string, error) {
	js, err := yamlToJSON(data)
	if err != nil {
		return nil, nil, err
	}
	bs := new(bootstrapv3.Bootstrap)
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(js, bs); err != nil {
		return nil, nil, fmt.Errorf("decode bootstrap: %w", err)
	}
	var v anyValidator
	v.validate("Bootstrap", bs)
	if len(v.errs) > 0 {
		return nil, nil, fmt.Errorf("validate: %s", strings.Join(v.errs, "; "))
	}
	slices.Sort(v.types)
	return bs, slices.Compact(v.types), nil
}

// anyValidator runs ValidateAll on a message and, because the generated
// ValidateAll checks an Any's type URL but never looks inside, on every
// message packed in an Any below it, at any depth.
type anyValidator struct {
	types []string
	errs  []string
}

func (v *anyValidator) validate(path string, m proto.Message) {
	val, ok := m.(interface{ ValidateAll() error })
	if !ok {
		v.errs = append(v.errs, fmt.Sprintf("%s: %s has no ValidateAll", path, m.ProtoReflect().Descriptor().FullName()))
		return
	}
	if err := val.ValidateAll(); err != nil {
		v.errs = append(v.errs, fmt.Sprintf("%s: %v", path, err))
	}
	v.walk(path, m.ProtoReflect())
}

func (v *anyValidator) walk(path string, m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, val protoreflect.Value) bool {
		p := path + "." + string(fd.Name())
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				val.Map().Range(func(k protoreflect.MapKey, e protoreflect.Value) bool {
					v.message(p+"["+k.String()+"]", e.Message())
					return true
				})
			}
		case fd.IsList():
			if fd.Message() != nil {
				l := val.List()
				for i := range l.Len() {
					v.message(fmt.Sprintf("%s[%d]", p, i), l.Get(i).Message())
				}
			}
		case fd.Message() != nil:
			v.message(p, val.Message())
		}
		return true
	})
}

func (v *anyValidator) message(path string, m protoreflect.Message) {
	a, ok := m.Interface().(*anypb.Any)
	if !ok {
		v.walk(path, m)
		return
	}
	inner, err := a.UnmarshalNew()
	if err != nil {
		v.errs = append(v.errs, fmt.Sprintf("%s: unpack %s: %v", path, a.GetTypeUrl(), err))
		return
	}
	v.types = append(v.types, a.GetTypeUrl())
	v.validate(path+"<"+string(inner.ProtoReflect().Descriptor().Name())+">", inner)
}

// problems collects broken properties as lines a reader can act on.
type problems []string

func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// envoyProblems reports each security property of the example that bs
// breaks. The shipped example must report none.
func envoyProblems(bs *bootstrapv3.Bootstrap) []string {
	var p problems
	if a := bs.GetAdmin().GetAddress().GetSocketAddress().GetAddress(); a != "127.0.0.1" && a != "::1" {
		p.addf("admin listens on %q, not loopback", a)
	}
	clusters := make(map[string]*clusterv3.Cluster)
	for _, c := range bs.GetStaticResources().GetClusters() {
		clusters[c.GetName()] = c
	}
	hcms := 0
	for _, l := range bs.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			checkTLS(&p, l.GetName(), fc.GetTransportSocket())
			for _, f := range fc.GetFilters() {
				var hcm hcmv3.HttpConnectionManager
				if f.GetTypedConfig().MessageIs(&hcm) {
					if err := f.GetTypedConfig().UnmarshalTo(&hcm); err != nil {
						p.addf("listener %s: %v", l.GetName(), err)
						continue
					}
					hcms++
					checkHCM(&p, &hcm, clusters)
				}
			}
		}
	}
	if hcms == 0 {
		p.addf("no http_connection_manager")
	}
	return p
}

func checkTLS(p *problems, listener string, ts *corev3.TransportSocket) {
	var tls tlsv3.DownstreamTlsContext
	if ts == nil || ts.GetTypedConfig().UnmarshalTo(&tls) != nil {
		p.addf("listener %s: no DownstreamTlsContext: credentials would cross in plain text", listener)
		return
	}
	if v := tls.GetCommonTlsContext().GetTlsParams().GetTlsMinimumProtocolVersion(); v < tlsv3.TlsParameters_TLSv1_2 {
		p.addf("listener %s: tls_minimum_protocol_version %v, want TLSv1_2 or later", listener, v)
	}
}

func checkHCM(p *problems, hcm *hcmv3.HttpConnectionManager, clusters map[string]*clusterv3.Cluster) {
	if !hcm.GetNormalizePath().GetValue() {
		p.addf("normalize_path is not true")
	}
	if !hcm.GetMergeSlashes() {
		p.addf("merge_slashes is not true")
	}
	if a := hcm.GetPathWithEscapedSlashesAction(); a != hcmv3.HttpConnectionManager_REJECT_REQUEST {
		p.addf("path_with_escaped_slashes_action is %v, want REJECT_REQUEST", a)
	}
	if a := hcm.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction(); a != corev3.HttpProtocolOptions_REJECT_REQUEST {
		p.addf("headers_with_underscores_action is %v, want REJECT_REQUEST", a)
	}
	if !hcm.GetUseRemoteAddress().GetValue() {
		p.addf("use_remote_address is not true")
	}
	// docs/security-catalogue.md row 97: no private range counts as internal.
	if iac := hcm.GetInternalAddressConfig(); iac == nil || len(iac.GetCidrRanges()) == 0 {
		p.addf("internal_address_config names no ranges: older Envoys treat every private address as internal")
	} else {
		for _, r := range iac.GetCidrRanges() {
			if !strings.HasPrefix(r.GetAddressPrefix(), "127.") && r.GetAddressPrefix() != "::1" {
				p.addf("internal_address_config treats %s/%d as internal", r.GetAddressPrefix(), r.GetPrefixLen().GetValue())
			}
		}
	}
	// Unset or zero disables these timeouts altogether.
	if d := hcm.GetRequestHeadersTimeout(); d == nil || d.AsDuration() <= 0 || d.AsDuration() > time.Minute {
		p.addf("request_headers_timeout is %v, want (0, 1m]", d.AsDuration())
	}
	if d := hcm.GetStreamIdleTimeout(); d == nil || d.AsDuration() <= 0 || d.AsDuration() > time.Hour {
		p.addf("stream_idle_timeout is %v, want (0, 1h]", d.AsDuration())
	}
	checkAccessLog(p, hcm)

	// Strip spoofed identity headers first, then check, then route: nothing
	// between ext_authz and the router may re-pick the route.
	var names []string
	filters := make(map[string]*anypb.Any)
	for _, f := range hcm.GetHttpFilters() {
		names = append(names, f.GetName())
		filters[f.GetName()] = f.GetTypedConfig()
	}
	if want := []string{headerMutationFilter, perClientLimit, extAuthzFilter, perCallerLimit, routerFilter}; !slices.Equal(names, want) {
		p.addf("http_filters %v, want %v", names, want)
	}
	checkRateLimits(p, filters[perClientLimit], filters[perCallerLimit])
	checkHeaderMutation(p, filters[headerMutationFilter])
	timeout := checkExtAuthz(p, filters[extAuthzFilter], clusters)
	checkUsherCluster(p, clusters["usher"], timeout)
	checkRoutes(p, hcm.GetRouteConfig(), clusters)
}

// logsSecret matches access log operators that would write a query string
// (tokens travel there) or a credential header.
var logsSecret = regexp.MustCompile(`(?i)%REQ\([^)]*(:path|authorization|cookie|x-api-key)[^)]*\)|%PATH(\(WQ[^)]*\))?%`)

func checkAccessLog(p *problems, hcm *hcmv3.HttpConnectionManager) {
	want := []string{
		"%DYNAMIC_METADATA(envoy.filters.http.ext_authz:auth)%",
		"%DYNAMIC_METADATA(envoy.filters.http.ext_authz:reason)%",
		"%DYNAMIC_METADATA(envoy.filters.http.ext_authz:subject)%",
		"%DYNAMIC_METADATA(envoy.filters.http.ext_authz:tenant)%",
		"%RESPONSE_CODE%",
	}
	found := false
	for _, al := range hcm.GetAccessLog() {
		var file filev3.FileAccessLog
		if al.GetTypedConfig().UnmarshalTo(&file) != nil {
			continue
		}
		fields := file.GetLogFormat().GetJsonFormat().GetFields()
		if file.GetPath() != "/dev/stdout" || len(fields) == 0 {
			continue
		}
		found = true
		var values []string
		for k, v := range fields {
			s := v.GetStringValue()
			values = append(values, s)
			if logsSecret.MatchString(s) {
				p.addf("access log field %s logs a query string or credential: %s", k, s)
			}
		}
		for _, w := range want {
			if !slices.Contains(values, w) {
				p.addf("access log does not log %s", w)
			}
		}
	}
	if !found {
		p.addf("no JSON file access log on /dev/stdout")
	}
}

func checkHeaderMutation(p *problems, a *anypb.Any) {
	var hm headermutationv3.HeaderMutation
	if a == nil || a.UnmarshalTo(&hm) != nil {
		p.addf("header_mutation: missing or not a HeaderMutation")
		return
	}
	var removed []string
	for _, m := range hm.GetMutations().GetRequestMutations() {
		if r := m.GetRemove(); r != "" {
			removed = append(removed, strings.ToLower(r))
		}
	}
	for _, h := range identityHeaders {
		if !slices.Contains(removed, h) {
			p.addf("header_mutation: does not remove %s", h)
		}
	}
}

// checkExtAuthz returns the Check timeout (0 when unusable).
func checkExtAuthz(p *problems, a *anypb.Any, clusters map[string]*clusterv3.Cluster) time.Duration {
	var ea extauthzv3.ExtAuthz
	if a == nil || a.UnmarshalTo(&ea) != nil {
		p.addf("ext_authz: missing or not an ExtAuthz")
		return 0
	}
	if ea.GetTransportApiVersion() != corev3.ApiVersion_V3 {
		p.addf("ext_authz: transport_api_version %v, want V3", ea.GetTransportApiVersion())
	}
	if ea.GetFailureModeAllow() {
		p.addf("ext_authz: failure_mode_allow is true")
	}
	if c := ea.GetStatusOnError().GetCode(); c != 503 {
		p.addf("ext_authz: status_on_error %d, want 503", c)
	}
	if !ea.GetIncludePeerCertificate() {
		p.addf("ext_authz: include_peer_certificate is not true")
	}
	if ea.GetWithRequestBody() != nil {
		p.addf("ext_authz: buffers request bodies (with_request_body)")
	}
	if ea.GetClearRouteCache() {
		p.addf("ext_authz: clear_route_cache is true")
	}
	if !ea.GetDecoderHeaderMutationRules().GetDisallowSystem().GetValue() {
		p.addf("ext_authz: usher may rewrite :path or host (decoder_header_mutation_rules.disallow_system not true)")
	}
	gs := ea.GetGrpcService()
	name := gs.GetEnvoyGrpc().GetClusterName()
	if name != "usher" {
		p.addf("ext_authz: envoy_grpc cluster %q, want usher", name)
	} else if clusters[name] == nil {
		p.addf("ext_authz: cluster %q is not defined", name)
	}
	timeout := gs.GetTimeout().AsDuration()
	if gs.GetTimeout() == nil || timeout <= 0 || timeout > maxCheckTimeout {
		p.addf("ext_authz: grpc timeout %v, want (0, %v]", timeout, maxCheckTimeout)
		return 0
	}
	return timeout
}

func checkUsherCluster(p *problems, c *clusterv3.Cluster, checkTimeout time.Duration) {
	if c == nil {
		p.addf("cluster usher: not defined")
		return
	}
	if ct := c.GetConnectTimeout().AsDuration(); checkTimeout > 0 && (ct <= 0 || ct >= checkTimeout) {
		p.addf("cluster usher: connect_timeout %v, want shorter than the %v Check timeout", ct, checkTimeout)
	}
	var opts upstreamhttpv3.HttpProtocolOptions
	a := c.GetTypedExtensionProtocolOptions()[httpProtocolOptions]
	if a == nil || a.UnmarshalTo(&opts) != nil || opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		p.addf("cluster usher: not explicitly HTTP/2 (gRPC needs it)")
	}
}

func checkRoutes(p *problems, rc *routev3.RouteConfiguration, clusters map[string]*clusterv3.Cluster) {
	if rc == nil {
		p.addf("no inline route_config")
		return
	}
	var disabled []string
	extensions := make(map[string]map[string]string)
	for _, vh := range rc.GetVirtualHosts() {
		if pr, ok := perRoute(p, "virtual host "+vh.GetName(), vh.GetTypedPerFilterConfig()); ok && pr.GetDisabled() {
			p.addf("virtual host %s disables ext_authz for all its routes", vh.GetName())
		}
		routes := vh.GetRoutes()
		for i, r := range routes {
			if c := r.GetRoute().GetCluster(); c != "" && clusters[c] == nil {
				p.addf("route %s: cluster %q is not defined", r.GetName(), c)
			}
			pr, ok := perRoute(p, "route "+r.GetName(), r.GetTypedPerFilterConfig())
			if i == len(routes)-1 && (r.GetMatch().GetPrefix() != "/" || pr.GetDisabled()) {
				p.addf("virtual host %s: last route %s is not a checked catch-all prefix /", vh.GetName(), r.GetName())
			}
			if !ok {
				continue
			}
			if pr.GetDisabled() {
				if r.GetMatch().GetPath() == "" {
					p.addf("route %s disables ext_authz on a match that is not an exact path", r.GetName())
					continue
				}
				disabled = append(disabled, r.GetMatch().GetPath())
			}
			if ext := pr.GetCheckSettings().GetContextExtensions(); ext != nil {
				checkExtensions(p, r.GetName(), ext)
				extensions[r.GetName()] = ext
			}
		}
	}
	if !slices.Contains(disabled, "/healthz") {
		p.addf("no route disables ext_authz on exactly /healthz")
	}
	want := map[string]map[string]string{"datasets-read": {authz.ExtPermission: "datasets.read", authz.ExtSpace: "proj1"}}
	for _, route := range slices.Sorted(maps.Keys(want)) {
		if got := extensions[route]; !maps.Equal(got, want[route]) {
			p.addf("route %s: context_extensions %v, want %v", route, got, want[route])
		}
	}
}

func perRoute(p *problems, where string, cfg map[string]*anypb.Any) (*extauthzv3.ExtAuthzPerRoute, bool) {
	a := cfg[extAuthzFilter]
	if a == nil {
		return nil, false
	}
	var pr extauthzv3.ExtAuthzPerRoute
	if err := a.UnmarshalTo(&pr); err != nil {
		p.addf("%s: ext_authz per-route config: %v", where, err)
		return nil, false
	}
	return &pr, true
}

// checkExtensions holds context_extensions to the keys usher reads.
func checkExtensions(p *problems, route string, ext map[string]string) {
	known := []string{authz.ExtPublic, authz.ExtAuthenticated, authz.ExtPermission, authz.ExtSpace, authz.ExtSpaceHeader}
	for k, v := range ext {
		switch {
		case !slices.Contains(known, k):
			p.addf("route %s: context extension %s is not one usher reads", route, k)
		case k == authz.ExtPermission:
			if err := authz.ValidatePermission(v); err != nil {
				p.addf("route %s: %s: %v", route, k, err)
			}
		}
	}
}

func TestExampleEnvoyTypedConfigs(t *testing.T) {
	_, types, err := loadBootstrap(readExample(t, "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Every typed_config in the file was unpacked and validated.
	const pre = "type.googleapis.com/envoy.extensions."
	want := []string{
		pre + "access_loggers.file.v3.FileAccessLog",
		pre + "filters.http.ext_authz.v3.ExtAuthz",
		pre + "filters.http.ext_authz.v3.ExtAuthzPerRoute",
		pre + "filters.http.header_mutation.v3.HeaderMutation",
		pre + "filters.http.local_ratelimit.v3.LocalRateLimit",
		pre + "filters.http.router.v3.Router",
		pre + "filters.network.http_connection_manager.v3.HttpConnectionManager",
		pre + "formatter.req_without_query.v3.ReqWithoutQuery",
		pre + "resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
		pre + "resource_monitors.fixed_heap.v3.FixedHeapConfig",
		pre + "transport_sockets.tls.v3.DownstreamTlsContext",
		pre + "upstreams.http.v3.HttpProtocolOptions",
	}
	if d := cmp.Diff(want, types); d != "" {
		t.Errorf("validated typed configs (-want +got):\n%s", d)
	}
}

// TestExampleEnvoy covers catalogue rows 6, 11, 85, 88, 93, 94, 97, 104, 105,
// 106, 126 (docs/catalogue-map.md).
func TestExampleEnvoy(t *testing.T) {
	shipped := readExample(t, "envoy.yaml")
	tests := []struct {
		name     string
		from, to string // an edit to the shipped file; none for the file itself
		wantErr  string // in the load error
		want     []string
	}{
		{name: "shipped"},
		{
			name: "unknown field", wantErr: `unknown field "failure_mode_alow"`,
			from: "failure_mode_allow: false", to: "failure_mode_alow: false",
		},
		{
			name: "non-string mapping key", wantErr: "mapping key 100 is a int, not a string",
			from: "max_concurrent_streams: 100", to: "100: max_concurrent_streams",
		},
		{
			name: "invalid value inside an Any", wantErr: "HttpConnectionManager>.http_filters[2].typed_config<ExtAuthz>: invalid ExtAuthz.GrpcService",
			from: "envoy_grpc: { cluster_name: usher }", to: `envoy_grpc: { cluster_name: "" }`,
		},
		{
			name: "fails open",
			from: "failure_mode_allow: false", to: "failure_mode_allow: true",
			want: []string{"ext_authz: failure_mode_allow is true"},
		},
		{
			name: "slow check",
			from: "timeout: 0.2s", to: "timeout: 2s",
			want: []string{"ext_authz: grpc timeout 2s, want (0, 200ms]"},
		},
		{
			name: "errors look like denials",
			from: "status_on_error: { code: 503 }", to: "status_on_error: { code: 403 }",
			want: []string{"ext_authz: status_on_error 403, want 503"},
		},
		{
			name: "buffers bodies",
			from: "validate_mutations: true", to: "validate_mutations: true\n              with_request_body: { max_request_bytes: 8192 }",
			want: []string{"ext_authz: buffers request bodies (with_request_body)"},
		},
		{
			name: "check may re-route",
			from: "validate_mutations: true", to: "validate_mutations: true\n              clear_route_cache: true",
			want: []string{"ext_authz: clear_route_cache is true"},
		},
		{
			name: "paths not normalised",
			from: "normalize_path: true", to: "normalize_path: false",
			want: []string{"normalize_path is not true"},
		},
		{
			name: "slashes not merged",
			from: "merge_slashes: true", to: "merge_slashes: false",
			want: []string{"merge_slashes is not true"},
		},
		{
			name: "escaped slashes kept",
			from: "path_with_escaped_slashes_action: REJECT_REQUEST", to: "path_with_escaped_slashes_action: KEEP_UNCHANGED",
			want: []string{"path_with_escaped_slashes_action is KEEP_UNCHANGED, want REJECT_REQUEST"},
		},
		{
			name: "underscore headers allowed",
			from: "headers_with_underscores_action: REJECT_REQUEST", to: "headers_with_underscores_action: ALLOW",
			want: []string{"headers_with_underscores_action is ALLOW, want REJECT_REQUEST"},
		},
		{
			name: "client address from X-Forwarded-For",
			from: "use_remote_address: true", to: "use_remote_address: false",
			want: []string{"use_remote_address is not true"},
		},
		{
			name: "usher over HTTP/1",
			from: "explicit_http_config:", to: "use_downstream_protocol_config:",
			want: []string{"cluster usher: not explicitly HTTP/2 (gRPC needs it)"},
		},
		{
			name: "public route by prefix",
			from: "path: /healthz", to: "prefix: /healthz",
			want: []string{
				"route healthz disables ext_authz on a match that is not an exact path",
				"no route disables ext_authz on exactly /healthz",
			},
		},
		{
			name: "extension usher does not read",
			from: "usher.space: proj1", to: "usher.spaces: proj1",
			want: []string{
				"route datasets-read: context extension usher.spaces is not one usher reads",
				"route datasets-read: context_extensions map[usher.permission:datasets.read usher.spaces:proj1], want map[usher.permission:datasets.read usher.space:proj1]",
			},
		},
		{
			name: "invalid permission",
			from: "usher.permission: datasets.read", to: "usher.permission: Datasets.read",
			want: []string{
				`route datasets-read: usher.permission: permission "Datasets.read": each dot-separated word must start with a lower-case letter`,
				"route datasets-read: context_extensions map[usher.permission:Datasets.read usher.space:proj1], want map[usher.permission:datasets.read usher.space:proj1]",
			},
		},
		{
			name: "spoofed identity header passes the public route",
			from: "                - remove: x-usher-email\n", to: "",
			want: []string{"header_mutation: does not remove x-usher-email"},
		},
		{
			name: "query string logged",
			from: `"%REQ_WITHOUT_QUERY(:PATH)%"`, to: `"%REQ(:PATH)%"`,
			want: []string{"access log field path logs a query string or credential: %REQ(:PATH)%"},
		},
		{
			name: "decision not logged",
			from: `usher_reason: "%DYNAMIC_METADATA(envoy.filters.http.ext_authz:reason)%"`, to: `usher_reason: "-"`,
			want: []string{"access log does not log %DYNAMIC_METADATA(envoy.filters.http.ext_authz:reason)%"},
		},
		{
			name: "private network internal",
			from: "cidr_ranges: [{ address_prefix: 127.0.0.1, prefix_len: 32 }]", to: "cidr_ranges: [{ address_prefix: 10.0.0.0, prefix_len: 8 }]",
			want: []string{"internal_address_config treats 10.0.0.0/8 as internal"},
		},
		// docs/security-catalogue.md rows 6, 11 and 126: rate limits.
		{
			name: "per-client limit keyed on nothing",
			from: "- remote_address: {}", to: "- generic_key: { descriptor_value: all }",
			want: []string{"usher.ratelimit.per_client: no rate_limits action keyed as remote_address"},
		},
		{
			name: "per-client limit on one address only",
			from: "entries: [{ key: remote_address }]", to: "entries: [{ key: remote_address, value: 10.0.0.1 }]",
			want: []string{"usher.ratelimit.per_client: no dynamic descriptor (key remote_address, no value) with a token bucket"},
		},
		{
			name: "per-caller limit keyed on the tenant",
			from: "path: [{ key: subject }]", to: "path: [{ key: tenant }]",
			want: []string{"usher.ratelimit.per_caller: no rate_limits action keyed as usher_subject"},
		},
		{
			name: "admin exposed",
			from: "address: 127.0.0.1, port_value: 9901", to: "address: 0.0.0.0, port_value: 9901",
			want: []string{`admin listens on "0.0.0.0", not loopback`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs, _, err := loadBootstrap(edit(t, shipped, tt.from, tt.to))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("load error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, envoyProblems(bs)); d != "" {
				t.Errorf("problems (-want +got):\n%s", d)
			}
		})
	}
}

// The Istio examples, decoded into just the fields they use. Decoding with
// KnownFields rejects a misspelt key instead of reading it as unset.

type objectMeta struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
}

type selector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type meshValues struct {
	MeshConfig struct {
		PathNormalization struct {
			Normalization string `yaml:"normalization"`
		} `yaml:"pathNormalization"`
		ExtensionProviders []struct {
			Name              string `yaml:"name"`
			EnvoyExtAuthzGrpc *struct {
				Service       string `yaml:"service"`
				Port          int    `yaml:"port"`
				Timeout       string `yaml:"timeout"`
				FailOpen      *bool  `yaml:"failOpen"`
				StatusOnError string `yaml:"statusOnError"`
			} `yaml:"envoyExtAuthzGrpc"`
		} `yaml:"extensionProviders"`
	} `yaml:"meshConfig"`
}

type authorizationPolicy struct {
	objectMeta `yaml:",inline"`
	Spec       struct {
		Selector selector `yaml:"selector"`
		Action   string   `yaml:"action"`
		Provider struct {
			Name string `yaml:"name"`
		} `yaml:"provider"`
		Rules []struct {
			To []struct {
				Operation struct {
					Paths      []string `yaml:"paths"`
					NotPaths   []string `yaml:"notPaths"`
					Methods    []string `yaml:"methods"`
					NotMethods []string `yaml:"notMethods"`
				} `yaml:"operation"`
			} `yaml:"to"`
		} `yaml:"rules"`
	} `yaml:"spec"`
}

type peerAuthentication struct {
	objectMeta `yaml:",inline"`
	Spec       struct {
		Selector selector `yaml:"selector"`
		MTLS     struct {
			Mode string `yaml:"mode"`
		} `yaml:"mtls"`
	} `yaml:"spec"`
}

func decodeStrict(name string, data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// istioProblems reports each way the three Istio examples fail to protect
// the workload with usher, fail closed, or agree with each other.
func istioProblems(mesh *meshValues, ap *authorizationPolicy, pa *peerAuthentication) []string {
	var p problems
	if n := mesh.MeshConfig.PathNormalization.Normalization; n != "MERGE_SLASHES" {
		p.addf("meshConfig.pathNormalization %q, want MERGE_SLASHES", n)
	}

	if ap.APIVersion != "security.istio.io/v1" || ap.Kind != "AuthorizationPolicy" {
		p.addf("authorizationpolicy.yaml is %s %s", ap.APIVersion, ap.Kind)
	}
	if ap.Spec.Action != "CUSTOM" {
		p.addf("AuthorizationPolicy action %q, want CUSTOM", ap.Spec.Action)
	}
	if len(ap.Spec.Selector.MatchLabels) == 0 {
		p.addf("AuthorizationPolicy selects no workload")
	}
	if len(ap.Spec.Rules) == 0 {
		p.addf("AuthorizationPolicy has no rules: CUSTOM would send nothing to usher")
	}

	service := ""
	found := false
	for _, ep := range mesh.MeshConfig.ExtensionProviders {
		g := ep.EnvoyExtAuthzGrpc
		if ep.Name != ap.Spec.Provider.Name || g == nil {
			continue
		}
		found = true
		service = g.Service
		if g.Port != 9001 {
			p.addf("provider %s: port %d, want 9001", ep.Name, g.Port)
		}
		if d, err := time.ParseDuration(g.Timeout); err != nil || d <= 0 || d > maxCheckTimeout {
			p.addf("provider %s: timeout %q, want (0, %v] (Istio's default is 600s)", ep.Name, g.Timeout, maxCheckTimeout)
		}
		switch {
		case g.FailOpen == nil:
			p.addf("provider %s: failOpen unset, say false", ep.Name)
		case *g.FailOpen:
			p.addf("provider %s: failOpen is true", ep.Name)
		}
		if g.StatusOnError != "503" {
			p.addf("provider %s: statusOnError %q, want \"503\"", ep.Name, g.StatusOnError)
		}
	}
	if !found {
		p.addf("AuthorizationPolicy provider %q is no envoyExtAuthzGrpc provider in meshconfig.yaml", ap.Spec.Provider.Name)
	}

	if pa.Kind != "PeerAuthentication" {
		p.addf("peerauthentication.yaml is a %s", pa.Kind)
	}
	if pa.Spec.MTLS.Mode != "STRICT" {
		p.addf("PeerAuthentication mode %q, want STRICT", pa.Spec.MTLS.Mode)
	}
	// service is <name>.<namespace>.svc.<domain>: the policy must be where
	// usher runs.
	if parts := strings.Split(service, "."); found && (len(parts) < 3 || parts[1] != pa.Metadata.Namespace) {
		p.addf("PeerAuthentication is in namespace %q, but usher is %s", pa.Metadata.Namespace, service)
	}
	return p
}

func TestExampleIstio(t *testing.T) {
	const (
		meshFile   = "istio/meshconfig.yaml"
		policyFile = "istio/authorizationpolicy.yaml"
		peerFile   = "istio/peerauthentication.yaml"
	)
	shipped := map[string][]byte{
		meshFile:   readExample(t, meshFile),
		policyFile: readExample(t, policyFile),
		peerFile:   readExample(t, peerFile),
	}
	tests := []struct {
		name           string
		file, from, to string // an edit to one shipped file; none for the files themselves
		wantErr        string
		want           []string
	}{
		{name: "shipped"},
		{
			name: "misspelt key", wantErr: "field failopen not found",
			file: meshFile, from: "failOpen: false", to: "failopen: false",
		},
		{
			name: "fails open",
			file: meshFile, from: "failOpen: false", to: "failOpen: true",
			want: []string{"provider usher: failOpen is true"},
		},
		{
			name: "Istio's default timeout",
			file: meshFile, from: "      timeout: 0.2s\n", to: "",
			want: []string{`provider usher: timeout "", want (0, 200ms] (Istio's default is 600s)`},
		},
		{
			name: "wrong port",
			file: meshFile, from: "port: 9001", to: "port: 9000",
			want: []string{"provider usher: port 9000, want 9001"},
		},
		{
			name: "errors look like denials",
			file: meshFile, from: `statusOnError: "503"`, to: `statusOnError: "403"`,
			want: []string{`provider usher: statusOnError "403", want "503"`},
		},
		{
			name: "slashes not merged",
			file: meshFile, from: "normalization: MERGE_SLASHES", to: "normalization: NONE",
			want: []string{`meshConfig.pathNormalization "NONE", want MERGE_SLASHES`},
		},
		{
			name: "provider names differ",
			file: policyFile, from: "name: usher # an", to: "name: ext-authz # an",
			want: []string{`AuthorizationPolicy provider "ext-authz" is no envoyExtAuthzGrpc provider in meshconfig.yaml`},
		},
		{
			name: "not delegated",
			file: policyFile, from: "action: CUSTOM", to: "action: ALLOW",
			want: []string{`AuthorizationPolicy action "ALLOW", want CUSTOM`},
		},
		{
			name: "plain text allowed to usher",
			file: peerFile, from: "mode: STRICT", to: "mode: PERMISSIVE",
			want: []string{`PeerAuthentication mode "PERMISSIVE", want STRICT`},
		},
		{
			name: "mTLS policy in the wrong namespace",
			file: peerFile, from: "namespace: usher-system", to: "namespace: usher",
			want: []string{`PeerAuthentication is in namespace "usher", but usher is usher.usher-system.svc.cluster.local`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := make(map[string][]byte, len(shipped))
			for name, data := range shipped {
				files[name] = data
				if name == tt.file {
					files[name] = edit(t, data, tt.from, tt.to)
				}
			}
			var (
				mesh meshValues
				ap   authorizationPolicy
				pa   peerAuthentication
			)
			err := decodeStrict(meshFile, files[meshFile], &mesh)
			if err == nil {
				err = decodeStrict(policyFile, files[policyFile], &ap)
			}
			if err == nil {
				err = decodeStrict(peerFile, files[peerFile], &pa)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("decode error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, istioProblems(&mesh, &ap, &pa)); d != "" {
				t.Errorf("problems (-want +got):\n%s", d)
			}
		})
	}
}

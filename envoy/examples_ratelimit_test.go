package envoy_test

import (
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// The example's two rate limits (docs/security-catalogue.md rows 6, 11 and
// 126): usher does not limit by itself, so the shipped Envoy config does.
const (
	perClientLimit = "usher.ratelimit.per_client" // before ext_authz: per source address
	perCallerLimit = "usher.ratelimit.per_caller" // after ext_authz: per usher subject
)

// checkRateLimits asserts that each limit is on, keyed as it says, one
// bucket per key (a dynamic descriptor), and bounded in how many keys it
// tracks, so that a flood of distinct addresses or credentials cannot grow
// Envoy's memory (row 126).
func checkRateLimits(p *problems, perClient, perCaller *anypb.Any) {
	check := func(name string, cfg *anypb.Any, descriptorKey string, action func(*routev3.RateLimit_Action) bool) {
		var l localratelimitv3.LocalRateLimit
		if cfg == nil || cfg.UnmarshalTo(&l) != nil {
			p.addf("%s: not a LocalRateLimit", name)
			return
		}
		for what, f := range map[string]interface {
			GetDefaultValue() *typev3.FractionalPercent
		}{"filter_enabled": l.GetFilterEnabled(), "filter_enforced": l.GetFilterEnforced()} {
			v := f.GetDefaultValue()
			if v.GetNumerator() != 100 || v.GetDenominator() != typev3.FractionalPercent_HUNDRED {
				p.addf("%s: %s is %v, want 100%%: without it the filter limits nothing", name, what, v)
			}
		}
		if l.GetAlwaysConsumeDefaultTokenBucket() == nil || l.GetAlwaysConsumeDefaultTokenBucket().GetValue() {
			p.addf("%s: always_consume_default_token_bucket must be false, or every key also drains the shared bucket", name)
		}
		if m := l.GetMaxDynamicDescriptors(); m == nil || m.GetValue() == 0 || m.GetValue() > 100000 {
			p.addf("%s: max_dynamic_descriptors is %v, want a bound in (0, 100000]", name, m)
		}
		acted := false
		for _, rl := range l.GetRateLimits() {
			for _, a := range rl.GetActions() {
				acted = acted || action(a)
			}
		}
		if !acted {
			p.addf("%s: no rate_limits action keyed as %s", name, descriptorKey)
		}
		dynamic := false
		for _, d := range l.GetDescriptors() {
			es := d.GetEntries()
			if len(es) == 1 && es[0].GetKey() == descriptorKey && es[0].GetValue() == "" &&
				d.GetTokenBucket().GetMaxTokens() > 0 && d.GetTokenBucket().GetTokensPerFill().GetValue() > 0 {
				dynamic = true
			}
		}
		if !dynamic {
			p.addf("%s: no dynamic descriptor (key %s, no value) with a token bucket", name, descriptorKey)
		}
	}
	check(perClientLimit, perClient, "remote_address", func(a *routev3.RateLimit_Action) bool {
		return a.GetRemoteAddress() != nil
	})
	check(perCallerLimit, perCaller, "usher_subject", func(a *routev3.RateLimit_Action) bool {
		m := a.GetMetadata()
		path := m.GetMetadataKey().GetPath()
		return m.GetDescriptorKey() == "usher_subject" && m.GetSource() == routev3.RateLimit_Action_MetaData_DYNAMIC &&
			m.GetMetadataKey().GetKey() == extAuthzFilter && len(path) == 1 && path[0].GetKey() == "subject"
	})
}

package authz

// Route is what the rules require of a request before any credential is
// read: `usher rules test` and `usher explain` show it. It runs the same
// steps as a Check (normalisation, the first matching rule, context
// extensions, the space's source) and decides nothing.
type Route struct {
	// Path is the normalised path the rules were matched against.
	Path string
	// Tried lists the rules before the one that matched (every rule when
	// none did), each as "name: host|method|path", the part that did not
	// match.
	Tried []string
	// Rule names the rule that matched ("default" when none did, with
	// "+ext" when context extensions set the access).
	Rule       string
	Access     Access
	Permission string
	// Space is the space the permission is checked in.
	Space string
	// Reason is set when the route alone decides: public, no_route, a
	// denial before any credential is read (path_invalid,
	// request_invalid, config_invalid), or one a Check gives once the
	// credential is verified (space_missing, space_invalid,
	// space_mismatch).
	Reason Reason
}

// Route resolves what r needs under rs.
func (rs *Rules) Route(r *Request) Route {
	if nominatesReserved(r.Headers["connection"]) {
		return Route{Reason: ReasonRequestInvalid}
	}
	path, err := NormalizePath(r.Path)
	if err != nil {
		return Route{Reason: ReasonPathInvalid}
	}
	host, ok := normalizeHost(r.Host)
	if !ok {
		return Route{Path: path, Reason: ReasonRequestInvalid}
	}
	pol, err := rs.policyFor(host, upperMethod(r.Method), path, r.ContextExtensions)
	if err != nil {
		return Route{Path: path, Reason: ReasonConfigInvalid}
	}
	rt := Route{Path: path, Rule: pol.name, Access: pol.access, Tried: rs.tried(host, upperMethod(r.Method), path)}
	switch pol.access {
	case AccessPublic:
		rt.Reason = ReasonPublic
	case AccessPermission:
		rt.Permission = pol.permission
		rt.Space, rt.Reason = spaceFor(pol, r.Headers)
	case AccessAuthenticated:
	default:
		rt.Reason = ReasonNoRoute
	}
	return rt
}

// tried lists the rules a request passed over before the first that
// matched, with the part of each that did not match.
func (rs *Rules) tried(host, method, path string) []string {
	var out []string
	for i := range rs.rules {
		r := &rs.rules[i]
		_, miss := r.miss(host, method, path, rs.caseInsensitive)
		if miss == "" {
			break
		}
		out = append(out, r.name+": "+miss)
	}
	return out
}

package authz

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Access is what a route requires of a request.
type Access uint8

// The kinds of access a route can require.
const (
	AccessDeny          Access = iota // nobody
	AccessPublic                      // no credential
	AccessAuthenticated               // any valid identity
	AccessPermission                  // a permission in a space
)

func (a Access) String() string {
	switch a {
	case AccessPublic:
		return "public"
	case AccessAuthenticated:
		return "authenticated"
	case AccessPermission:
		return "permission"
	default:
		return "deny"
	}
}

// Rules are the route rules: the first rule matching host, method and path
// decides what a request needs; with none matching, the default does.
type Rules struct {
	defaultAccess Access
	// caseInsensitive compares path literals ignoring case, for upstreams
	// that route "/Admin" to "/admin" (ASP.NET, Express by default).
	caseInsensitive bool
	rules           []rule
}

type rule struct {
	name       string
	host       string // "" any; "*.x.test" stored as ".x.test" with wildcard
	wildcard   bool
	methods    []string // nil: any
	segs       []segment
	access     Access
	permission string
	space      spaceSource
	tenant     tenantSource
}

type segKind uint8

const (
	segLiteral segKind = iota
	segParam           // {name}: one segment
	segStar            // *: one segment
	segTail            // **: zero or more segments, last only
)

type segment struct {
	kind segKind
	lit  string // literal text, or the parameter name
}

type spaceKind uint8

const (
	spaceNone   spaceKind = iota
	spacePath             // the {space} path parameter
	spaceFixed            // a fixed value
	spaceHeader           // a request header
)

type spaceSource struct {
	kind  spaceKind
	value string // the fixed space or the header name
}

// tenantSource says where a route names a tenant, which must then be the
// caller's: an upstream that forgets x-usher-tenant would otherwise serve a
// same-named space of another tenant.
type tenantSource struct {
	kind   spaceKind // spaceNone, spacePath ({tenant}) or spaceHeader
	header string
}

// pathParams are the values of the path parameters that mean something.
type pathParams struct {
	space, tenant string
}

// DenyAllRules returns rules with no rule and a deny default: only routes
// whose context extensions say otherwise are reachable.
func DenyAllRules() *Rules { return &Rules{defaultAccess: AccessDeny} }

// Len returns the number of rules.
func (rs *Rules) Len() int { return len(rs.rules) }

type rulesFile struct {
	Default         string     `yaml:"default"`
	CaseInsensitive bool       `yaml:"case_insensitive"`
	Rules           []ruleFile `yaml:"rules"`
}

type ruleFile struct {
	Name          string   `yaml:"name"`
	Host          string   `yaml:"host"`
	Path          string   `yaml:"path"`
	Methods       []string `yaml:"methods"`
	Public        bool     `yaml:"public"`
	Authenticated bool     `yaml:"authenticated"`
	Permission    string   `yaml:"permission"`
	Space         string   `yaml:"space"`
	SpaceHeader   string   `yaml:"space_header"`
	TenantHeader  string   `yaml:"tenant_header"`
}

// ParseRules parses a rules file. Unknown keys are errors, and every problem
// is reported at once, each prefixed with where it is (name: rules[2].path).
func ParseRules(name string, data []byte) (*Rules, error) {
	var f rulesFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// A second document would otherwise be ignored without a word.
	switch err := dec.Decode(new(yaml.Node)); {
	case err == nil:
		return nil, fmt.Errorf("%s: holds more than one YAML document", name)
	case !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", name, field, fmt.Sprintf(format, args...)))
	}
	rs := &Rules{caseInsensitive: f.CaseInsensitive}
	switch f.Default {
	case "", "deny":
		rs.defaultAccess = AccessDeny
	case "authenticated":
		rs.defaultAccess = AccessAuthenticated
	default:
		bad("default", "must be deny or authenticated, not %q", f.Default)
	}
	for i, rf := range f.Rules {
		at := fmt.Sprintf("rules[%d]", i)
		r, problems := compileRule(rf)
		for _, p := range problems {
			bad(at+"."+p.field, "%s", p.msg)
		}
		if r.name == "" {
			r.name = at
		}
		rs.rules = append(rs.rules, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return rs, nil
}

type problem struct{ field, msg string }

func compileRule(rf ruleFile) (rule, []problem) {
	var ps []problem
	bad := func(field, format string, args ...any) {
		ps = append(ps, problem{field, fmt.Sprintf(format, args...)})
	}
	r := rule{name: rf.Name}

	if rf.Host != "" {
		h := strings.ToLower(rf.Host)
		pattern := h // ".x.test" without "*" is no host name
		if strings.HasPrefix(h, "*.") {
			r.wildcard = true
			h, pattern = h[1:], h[2:]
		}
		if !validHostPattern(pattern) {
			bad("host", "%q is not a host name (use api.example.test or *.example.test, no port)", rf.Host)
		}
		r.host = h
	}

	for _, m := range rf.Methods {
		if !validToken(m) {
			bad("methods", "%q is not an HTTP method", m)
			continue
		}
		r.methods = append(r.methods, strings.ToUpper(m))
	}
	// Upstreams answer HEAD with their GET handler (Go's net/http, most
	// frameworks), so a GET rule covers HEAD: otherwise HEAD would fall
	// through to a later, perhaps weaker, rule.
	if slices.Contains(r.methods, "GET") && !slices.Contains(r.methods, "HEAD") {
		r.methods = append(r.methods, "HEAD")
	}

	params := map[string]bool{}
	if rf.Path == "" {
		bad("path", "is required")
	} else if !strings.HasPrefix(rf.Path, "/") {
		bad("path", "%q must start with '/'", rf.Path)
	} else {
		parts := strings.Split(strings.TrimSuffix(rf.Path[1:], "/"), "/")
		if rf.Path == "/" {
			parts = nil
		}
		for j, s := range parts {
			switch {
			case s == "**":
				if j != len(parts)-1 {
					bad("path", "%q: ** may only be the last segment", rf.Path)
				}
				r.segs = append(r.segs, segment{kind: segTail})
			case s == "*":
				r.segs = append(r.segs, segment{kind: segStar})
			case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
				p := s[1 : len(s)-1]
				if !validName(p) {
					bad("path", "%q: parameter %q needs a name of letters, digits, '-' and '_'", rf.Path, s)
				}
				if params[p] {
					bad("path", "%q: parameter {%s} appears twice", rf.Path, p)
				}
				params[p] = true
				r.segs = append(r.segs, segment{kind: segParam, lit: p})
			case s == "" || s == "." || s == "..":
				bad("path", "%q: empty, '.' and '..' segments never match a normalised path", rf.Path)
			case !validLiteral(s):
				bad("path", "%q: segment %q may hold only letters, digits and -._~!$&'()+,=:@ (no %%, ;, * or braces)", rf.Path, s)
			default:
				r.segs = append(r.segs, segment{kind: segLiteral, lit: s})
			}
		}
	}

	n := 0
	if rf.Public {
		n++
		r.access = AccessPublic
	}
	if rf.Authenticated {
		n++
		r.access = AccessAuthenticated
	}
	if rf.Permission != "" {
		n++
		r.access = AccessPermission
		r.permission = rf.Permission
		if err := ValidatePermission(rf.Permission); err != nil {
			bad("permission", "%v", err)
		}
	}
	if n != 1 {
		bad("permission", "a rule needs exactly one of public: true, authenticated: true or permission")
	}

	sources := 0
	if params["space"] {
		sources++
		r.space = spaceSource{kind: spacePath}
	}
	if rf.Space != "" {
		sources++
		r.space = spaceSource{kind: spaceFixed, value: rf.Space}
		if err := ValidateName("space", rf.Space); err != nil {
			bad("space", "%v", err)
		}
	}
	if rf.SpaceHeader != "" {
		sources++
		r.space = spaceSource{kind: spaceHeader, value: strings.ToLower(rf.SpaceHeader)}
		if !validToken(rf.SpaceHeader) {
			bad("space_header", "%q is not a header name", rf.SpaceHeader)
		}
	}
	switch {
	case sources > 1:
		bad("space", "name the space once: a {space} path parameter, space or space_header")
	case r.access == AccessPermission && sources == 0:
		bad("space", "a permission rule needs a space: a {space} path parameter, space or space_header")
	case r.access != AccessPermission && (rf.Space != "" || rf.SpaceHeader != ""):
		bad("space", "only permission rules take a space")
	}

	if params["tenant"] {
		r.tenant = tenantSource{kind: spacePath}
	}
	if rf.TenantHeader != "" {
		if params["tenant"] {
			bad("tenant_header", "name the tenant once: a {tenant} path parameter or tenant_header")
		}
		r.tenant = tenantSource{kind: spaceHeader, header: strings.ToLower(rf.TenantHeader)}
		if !validToken(rf.TenantHeader) {
			bad("tenant_header", "%q is not a header name", rf.TenantHeader)
		}
	}
	if r.tenant.kind != spaceNone && r.access == AccessPublic {
		bad("tenant_header", "a public rule has no caller whose tenant to check: drop {tenant} or tenant_header")
	}
	return r, ps
}

// validLiteral accepts the RFC 3986 pchar characters, minus the ones with a
// meaning here. NormalizePath decodes every escape of them, so each one
// matches however the request spells it.
func validLiteral(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) {
			continue
		}
		switch c {
		case '!', '$', '&', '\'', '(', ')', '+', ',', '=', ':', '@':
			continue
		}
		return false
	}
	return true
}

func validHostPattern(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// validToken reports whether s is an RFC 9110 token (methods, header names).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// match returns the first rule for host, method and path (all normalised),
// and the values of its {space} and {tenant} parameters.
func (rs *Rules) match(host, method, path string) (*rule, pathParams) {
	for i := range rs.rules {
		r := &rs.rules[i]
		if ps, miss := r.miss(host, method, path, rs.caseInsensitive); miss == "" {
			return r, ps
		}
	}
	return nil, pathParams{}
}

// miss says why r does not match ("host", "method" or "path"), or "" and
// the path's parameters when it does.
func (r *rule) miss(host, method, path string, foldCase bool) (pathParams, string) {
	if r.host != "" {
		if r.wildcard {
			if len(host) <= len(r.host) || !strings.HasSuffix(host, r.host) {
				return pathParams{}, "host"
			}
		} else if host != r.host {
			return pathParams{}, "host"
		}
	}
	if r.methods != nil && !slices.Contains(r.methods, method) {
		return pathParams{}, "method"
	}
	ps, ok := r.matchPath(path, foldCase)
	if !ok {
		return pathParams{}, "path"
	}
	return ps, ""
}

// matchPath matches a normalised path. A trailing slash is not significant:
// "/me/" matches the pattern "/me", so a rule cannot be sidestepped by
// adding one.
func (r *rule) matchPath(path string, foldCase bool) (ps pathParams, ok bool) {
	rest := path[1:]
	if rest != "" && rest[len(rest)-1] == '/' {
		rest = rest[:len(rest)-1]
	}
	for _, sg := range r.segs {
		if sg.kind == segTail {
			return ps, true
		}
		if rest == "" {
			return pathParams{}, false
		}
		var s string
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			s, rest = rest[:j], rest[j+1:]
		} else {
			s, rest = rest, ""
		}
		switch sg.kind {
		case segLiteral:
			if s != sg.lit && !(foldCase && strings.EqualFold(s, sg.lit)) {
				return pathParams{}, false
			}
		case segParam:
			switch sg.lit {
			case "space":
				ps.space = s
			case "tenant":
				ps.tenant = s
			}
		}
	}
	if rest != "" {
		return pathParams{}, false
	}
	return ps, true
}

package authz

import (
	"fmt"
	"strings"
)

// policy is what one request needs, after rules and context extensions.
type policy struct {
	access     Access
	permission string
	space      spaceSource
	pathSpace  string // the {space} parameter's value, when the rule's path has one; see spaceFor
	tenant     tenantSource
	pathTenant string // the {tenant} parameter's value, when tenant.kind is spacePath
	name       string
}

// errExtension says the proxy's context extensions for a route are invalid.
type errExtension struct{ key, value, why string }

func (e *errExtension) Error() string {
	return fmt.Sprintf("context extension %s=%q: %s", e.key, e.value, e.why)
}

// policyFor resolves what a request needs: the first matching rule, then
// the route's context extensions on top, else the default.
func (rs *Rules) policyFor(host, method, path string, ext map[string]string) (policy, error) {
	var p policy
	r, ps := rs.match(host, method, path)
	if r != nil {
		p = policy{access: r.access, permission: r.permission, space: r.space, pathSpace: ps.space,
			tenant: r.tenant, pathTenant: ps.tenant, name: r.name}
	} else {
		p = policy{access: rs.defaultAccess, name: "default"}
	}
	if len(ext) == 0 {
		return p, nil
	}
	return applyExtensions(p, ext)
}

func applyExtensions(p policy, ext map[string]string) (policy, error) {
	flag := func(key string) (bool, error) {
		switch v, ok := ext[key]; {
		case !ok, v == "false":
			return false, nil
		case v == "true":
			return true, nil
		default:
			return false, &errExtension{key, v, `must be "true" or "false"`}
		}
	}
	public, err := flag(ExtPublic)
	if err != nil {
		return p, err
	}
	authenticated, err := flag(ExtAuthenticated)
	if err != nil {
		return p, err
	}
	perm, hasPerm := ext[ExtPermission]
	n := 0
	for _, b := range []bool{public, authenticated, hasPerm} {
		if b {
			n++
		}
	}
	if n > 1 {
		return p, &errExtension{ExtPermission, perm, "set only one of usher.public, usher.authenticated and usher.permission"}
	}
	if n == 1 {
		p.name += "+ext"
	}
	switch {
	case public:
		return policy{access: AccessPublic, name: p.name}, nil
	case authenticated:
		// The rule's tenant check stays: the path still names the tenant.
		return policy{access: AccessAuthenticated, tenant: p.tenant, pathTenant: p.pathTenant, name: p.name}, nil
	case hasPerm:
		if err := ValidatePermission(perm); err != nil {
			return p, &errExtension{ExtPermission, perm, err.Error()}
		}
		if p.access != AccessPermission {
			p.space = spaceSource{} // a space only counts for permission routes
		}
		p.access, p.permission = AccessPermission, perm
	}
	if s, ok := ext[ExtSpace]; ok {
		if !validName(s) {
			return p, &errExtension{ExtSpace, s, "not a space name"}
		}
		p.space = spaceSource{kind: spaceFixed, value: s}
	}
	if h, ok := ext[ExtSpaceHeader]; ok {
		if !validToken(h) {
			return p, &errExtension{ExtSpaceHeader, h, "not a header name"}
		}
		if _, both := ext[ExtSpace]; both {
			return p, &errExtension{ExtSpaceHeader, h, "set only one of usher.space and usher.space_header"}
		}
		p.space = spaceSource{kind: spaceHeader, value: strings.ToLower(h)}
	}
	if p.access == AccessPermission && p.space.kind == spaceNone {
		return p, &errExtension{ExtPermission, p.permission, "a permission needs a space: usher.space, usher.space_header or a rule with one"}
	}
	return p, nil
}

// tenantMismatch reports whether the route names a tenant other than the
// caller's. A route that names none matches any tenant.
func tenantMismatch(pol policy, h map[string]string, caller string) bool {
	switch pol.tenant.kind {
	case spacePath:
		return pol.pathTenant != caller
	case spaceHeader:
		return h[pol.tenant.header] != caller
	}
	return false
}

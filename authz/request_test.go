package authz

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzMethodOverride checks the query side of methodOverride: it never
// panics, an override it returns is an upper-case method, and its decoding
// of query components agrees with url.QueryUnescape wherever that accepts
// the input.
// Catalogue row 102 (docs/catalogue-map.md).
func FuzzMethodOverride(f *testing.F) {
	for _, q := range []string{"_method=DELETE", "a=1;_METHOD=put", "%5Fmethod=%44ELETE", ".method=x&_method[]=y",
		"+_method=GET", "_method=", "_method", "_method=DE+LETE", "x_method=DELETE&_methods=1", "%zz=%", "_method=%"} {
		f.Add(q, "")
		f.Add(q, "PATCH")
	}
	f.Fuzz(func(t *testing.T, query, header string) {
		r := &Request{Method: "GET", Path: "/a?" + query, Headers: map[string]string{}}
		if header != "" {
			r.Headers["x-http-method-override"] = header
		}
		m, ok := methodOverride(r)
		if !ok && m != "" {
			t.Fatalf("methodOverride(%q) = %q, false", query, m)
		}
		if ok && m != "" && (!validToken(m) || m != strings.ToUpper(m)) {
			t.Errorf("methodOverride(%q) = %q: not an upper-case method", query, m)
		}
		for _, part := range strings.FieldsFunc(query, func(r rune) bool { return r == '&' || r == ';' || r == '=' }) {
			if want, err := url.QueryUnescape(part); err == nil && queryUnescape(part) != want {
				t.Errorf("queryUnescape(%q) = %q, url.QueryUnescape gives %q", part, queryUnescape(part), want)
			}
		}
	})
}

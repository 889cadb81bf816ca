package envoy_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/usher-dev/usher/store/storetest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current behaviour")

// TestGolden sends each testdata/<case>.input.json (a CheckRequest as
// Envoy sends it) to a real usher over gRPC and compares the CheckResponse
// with testdata/<case>.golden.json. Inputs name fixture keys with
// placeholders: {{key:acme/ci}}, or {{key:globex/ci:as-tenant:acme}} for a
// key re-encoded with another tenant. Run with -update to regenerate, and
// review the diff.
// Catalogue rows 1, 3, 9, 10, 12, 88, 89, 91, 93, 100, 102 (docs/catalogue-map.md).
func TestGolden(t *testing.T) {
	w := newWorld(t, nil)
	inputs, err := filepath.Glob("testdata/*.input.json")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".input.json")
		t.Run(name, func(t *testing.T) {
			req := readInput(t, in, w.keys)
			resp, err := w.client.Check(t.Context(), req)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			got := canonicalJSON(t, resp)
			for _, k := range w.keys {
				if bytes.Contains(got, []byte(k)) {
					t.Fatalf("the response holds an API key")
				}
			}
			golden := strings.TrimSuffix(in, ".input.json") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, got, 0o600); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./envoy -run TestGolden -update)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

var placeholder = regexp.MustCompile(`\{\{key:([a-z0-9-]+/[a-z0-9-]+)(?::as-tenant:([a-z0-9-]+))?\}\}`)

// readInput reads a CheckRequest, strictly, and replaces key placeholders
// in its header values.
func readInput(t testing.TB, path string, keys storetest.Keys) *authv3.CheckRequest {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	req := &authv3.CheckRequest{}
	if err := protojson.Unmarshal(data, req); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	subst := func(v string) string {
		return placeholder.ReplaceAllStringFunc(v, func(m string) string {
			sub := placeholder.FindStringSubmatch(m)
			if sub[2] == "" {
				k, ok := keys[sub[1]]
				if !ok {
					t.Fatalf("%s: no fixture key %s", path, sub[1])
				}
				return k
			}
			for _, fk := range storetest.FixtureKeys {
				if fk.Tenant+"/"+fk.Name == sub[1] {
					fk.Tenant = sub[2]
					return storetest.FixtureKeyString(fk)
				}
			}
			t.Fatalf("%s: no fixture key %s", path, sub[1])
			return ""
		})
	}
	h := req.GetAttributes().GetRequest().GetHttp()
	for k, v := range h.GetHeaders() {
		h.Headers[k] = subst(v)
	}
	for _, hv := range h.GetHeaderMap().GetHeaders() {
		hv.Value = subst(hv.Value)
		if len(hv.RawValue) > 0 {
			hv.RawValue = []byte(subst(string(hv.RawValue)))
		}
	}
	return req
}

// canonicalJSON renders a message as indented JSON with sorted keys:
// protojson's own output is deliberately unstable.
func canonicalJSON(t testing.TB, m proto.Message) []byte {
	t.Helper()
	raw, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

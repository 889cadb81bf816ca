package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/internal/config"
)

// ruleCase is one case of `usher rules test`: a request and what the rules
// must make of it. Empty expectations are not checked.
type ruleCase struct {
	Name              string            `yaml:"name"`
	Method            string            `yaml:"method"`
	Host              string            `yaml:"host"`
	Path              string            `yaml:"path"`
	Headers           map[string]string `yaml:"headers"`
	ContextExtensions map[string]string `yaml:"context_extensions"`
	Expect            ruleExpect        `yaml:"expect"`
}

type ruleExpect struct {
	Rule       string `yaml:"rule"`
	Access     string `yaml:"access"`
	Permission string `yaml:"permission"`
	Space      string `yaml:"space"`
	// Reason is the route-level reason; "none" asserts there is none (a
	// credential decides).
	Reason string `yaml:"reason"`
}

type ruleCases struct {
	Cases []ruleCase `yaml:"cases"`
}

func newRulesCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "rules", Short: "unit-test route rules against a file of request cases"}
	test := &cobra.Command{
		Use:   "test RULES.yaml CASES.yaml",
		Short: "run a file of request cases against a rules file: exit 1 with a diff when a case fails",
		Long: `test resolves each case's request (method, host, path, headers,
context_extensions) with the rules exactly as a Check does, reads no
credential and decides nothing, and compares what it finds with the case's
expect: rule, access (public, authenticated, permission, deny), permission,
space, reason (public, no_route, path_invalid, request_invalid,
config_invalid, space_missing, space_invalid, space_mismatch, or none).
Unset expectations are not checked. Run it in CI beside the rules.`,
		Args: args("RULES.yaml", "CASES.yaml"),
		RunE: func(_ *cobra.Command, a []string) error {
			rules, err := config.LoadRules(a[0])
			if err != nil {
				return usageError{err}
			}
			cases, err := loadRuleCases(a[1])
			if err != nil {
				return usageError{err}
			}
			failed := 0
			for i, c := range cases {
				name := c.Name
				if name == "" {
					name = fmt.Sprintf("cases[%d]", i)
				}
				if diffs := c.check(rules); len(diffs) > 0 {
					failed++
					fmt.Fprintf(e.stdout, "FAIL %s (%s %s%s)\n", name, c.method(), c.Host, c.Path)
					for _, d := range diffs {
						fmt.Fprintln(e.stdout, "    "+d)
					}
					continue
				}
				fmt.Fprintf(e.stdout, "ok   %s\n", name)
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d cases failed", failed, len(cases))
			}
			fmt.Fprintf(e.stdout, "%d cases passed\n", len(cases))
			return nil
		},
	}
	cmd.AddCommand(test)
	return cmd
}

func (c ruleCase) method() string {
	if c.Method == "" {
		return "GET"
	}
	return c.Method
}

// check returns one line per expectation the rules do not meet, as
// "field: want X, got Y".
func (c ruleCase) check(rules *authz.Rules) []string {
	h := map[string]string{}
	for k, v := range c.Headers {
		h[strings.ToLower(k)] = v
	}
	host := c.Host
	if host == "" {
		host = "example.test"
	}
	got := rules.Route(&authz.Request{Method: c.method(), Host: host, Path: c.Path, Headers: h, ContextExtensions: c.ContextExtensions})
	reason := string(got.Reason)
	if reason == "" {
		reason = "none"
	}
	var diffs []string
	for _, f := range []struct{ field, want, got string }{
		{"rule", c.Expect.Rule, got.Rule},
		{"access", c.Expect.Access, got.Access.String()},
		{"permission", c.Expect.Permission, got.Permission},
		{"space", c.Expect.Space, got.Space},
		{"reason", c.Expect.Reason, reason},
	} {
		if f.want != "" && f.want != f.got {
			diffs = append(diffs, fmt.Sprintf("%s: want %q, got %q", f.field, f.want, f.got))
		}
	}
	return diffs
}

// loadRuleCases reads a cases file strictly: unknown keys are errors, and
// every case needs a path and at least one expectation.
func loadRuleCases(path string) ([]ruleCase, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cases: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f ruleCases
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("cases %s: %w", path, err)
	}
	var errs []error
	for i, c := range f.Cases {
		if c.Path == "" {
			errs = append(errs, fmt.Errorf("cases %s: cases[%d] (%s): path is required", path, i, c.Name))
		}
		if c.Expect == (ruleExpect{}) {
			errs = append(errs, fmt.Errorf("cases %s: cases[%d] (%s): expect at least one of rule, access, permission, space, reason", path, i, c.Name))
		}
	}
	if len(f.Cases) == 0 {
		errs = append(errs, fmt.Errorf("cases %s: no cases", path))
	}
	return f.Cases, errors.Join(errs...)
}

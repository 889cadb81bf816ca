package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // the command ran and failed (or a Check was denied)
	exitUsage  = 2 // bad flags, arguments or configuration: nothing ran
)

// usageError marks an error as the caller's to fix before anything runs.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// env is how commands read the environment; tests pass their own.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// run runs the usher command line and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := newRoot(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	msg := err.Error()
	fmt.Fprintln(stderr, "usher: "+strings.ReplaceAll(msg, "\n", "\n  "))
	var ue usageError
	var de deniedError
	var xe exitError
	switch {
	case errors.As(err, &xe):
		return xe.code
	case errors.As(err, &de):
		return exitFailed
	case errors.As(err, &ue), strings.HasPrefix(msg, "unknown command"):
		return exitUsage
	}
	return exitFailed
}

// args checks the number of positional arguments, naming them in the
// error.
func args(names ...string) cobra.PositionalArgs {
	return func(c *cobra.Command, got []string) error {
		if len(got) != len(names) {
			if len(names) == 0 {
				return usagef("usher %s takes no arguments, got %q", c.Name(), got)
			}
			return usagef("usher %s needs %d argument(s): %s; got %d", c.Name(), len(names), strings.Join(names, " "), len(got))
		}
		return nil
	}
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "usher",
		Short:         "usher answers Envoy's ext_authz Check for every request and manages who may do what",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see usher %s --help)", err, c.Name())}
	})
	root.AddCommand(
		newServeCmd(e),
		newTenantCmd(e),
		newSpaceCmd(e),
		newSeatCmd(e),
		newAPIKeyCmd(e),
		newKeyCmd(e),
		newTokenCmd(e),
		newIssuerCmd(e),
		newCheckCmd(e),
		newRulesCmd(e),
		newExplainCmd(e),
		newUserCmd(e),
		newSessionCmd(e),
		newClientCmd(e),
		newIdPCmd(e),
		newBenchCmd(e),
		newLoginCmd(e),
		newWhoamiCmd(e),
		newLogoutCmd(e),
		newVersionCmd(e),
	)
	return root
}

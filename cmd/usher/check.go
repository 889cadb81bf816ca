package main

import (
	"context"
	"fmt"
	"os"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
)

// deniedError is returned when a Check was denied: exit code 1, no usage
// hint.
type deniedError struct{ status int32 }

func (e deniedError) Error() string { return fmt.Sprintf("denied with HTTP %d", e.status) }

func newCheckCmd(e *env) *cobra.Command {
	var f clientFlags
	var timeout time.Duration
	var dump string
	c := &cobra.Command{
		Use:   "check [--path /p] [-H 'x-api-key: sk_...']",
		Short: "send one Check to a running usher, as Envoy would, and print the answer; exits 1 when denied",
		Args:  args(),
		RunE: func(c *cobra.Command, _ []string) error {
			req, err := f.request()
			if err != nil {
				return err
			}
			if dump != "" {
				return dumpRequest(e, req, dump)
			}
			conn, err := f.dial()
			if err != nil {
				return err
			}
			defer func() { _ = conn.Close() }()
			ctx, cancel := context.WithTimeout(c.Context(), timeout)
			defer cancel()
			resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, req)
			if err != nil {
				return fmt.Errorf("check at %s: %w", f.addr, err)
			}
			return printCheck(e, resp)
		},
	}
	f.register(c.Flags(), e)
	c.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	c.Flags().StringVar(&dump, "dump", "", "write the CheckRequest as Envoy's JSON to this file (- for stdout) for usher explain, instead of sending it; it holds the headers given, credentials included")
	return c
}

func printCheck(e *env, resp *authv3.CheckResponse) error {
	reason := resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue()
	if ok := resp.GetOkResponse(); ok != nil && resp.GetStatus().GetCode() == 0 {
		fmt.Fprintf(e.stdout, "allowed (%s)\n", reason)
		for _, h := range ok.GetHeaders() {
			fmt.Fprintf(e.stdout, "  set    %s: %s\n", h.GetHeader().GetKey(), h.GetHeader().GetValue())
		}
		for _, h := range ok.GetHeadersToRemove() {
			fmt.Fprintf(e.stdout, "  remove %s\n", h)
		}
		return nil
	}
	d := resp.GetDeniedResponse()
	status := int32(d.GetStatus().GetCode())
	fmt.Fprintf(e.stdout, "denied %d (%s)\n", status, reason)
	for _, h := range d.GetHeaders() {
		fmt.Fprintf(e.stdout, "  %s: %s\n", h.GetHeader().GetKey(), h.GetHeader().GetValue())
	}
	fmt.Fprintf(e.stdout, "  body: %s\n", d.GetBody())
	return deniedError{status}
}

// dumpRequest writes req as Envoy's protojson, readable by usher explain.
// The file is private: it holds the credentials given with -H.
func dumpRequest(e *env, req *authv3.CheckRequest, name string) error {
	data, err := protojson.MarshalOptions{Multiline: true}.Marshal(req)
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if name == "-" {
		_, err = e.stdout.Write(data)
		return err
	}
	return os.WriteFile(name, data, 0o600)
}

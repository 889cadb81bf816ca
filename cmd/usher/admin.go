package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/usher-dev/usher/internal/seal"
	"github.com/usher-dev/usher/store"
)

// adminTimeout bounds one admin command's work against the store.
const adminTimeout = 30 * time.Second

// storeFlags say which store an admin command uses: the embedded store in
// --data-dir (through the socket of a running `usher serve`, or opened
// directly when none runs), or MongoDB at --mongo-uri.
type storeFlags struct {
	dataDir  string
	mongoURI string
	// master is the master key, for the commands that seal or open signing
	// keys; set before withStore.
	master seal.Key
}

func (f *storeFlags) register(fs *pflag.FlagSet, e *env) {
	dataDir := e.getenv("USHER_DATA_DIR")
	if dataDir == "" {
		dataDir = "./usher-data"
	}
	fs.StringVar(&f.dataDir, "data-dir", dataDir, "directory of the embedded store (env USHER_DATA_DIR)")
	fs.StringVar(&f.mongoURI, "mongo-uri", e.getenv("USHER_MONGO_URI"), "MongoDB connection string; overrides --data-dir (env USHER_MONGO_URI)")
}

// withStore opens the store, runs fn, and closes the store.
func (f *storeFlags) withStore(ctx context.Context, e *env, fn func(context.Context, *store.Store) error) error {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	s, err := store.Open(ctx, store.Options{
		URI:       f.mongoURI,
		DataDir:   f.dataDir,
		MasterKey: f.master,
		Logger:    slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		if f.mongoURI != "" {
			return fmt.Errorf("%w\ncheck --mongo-uri (env USHER_MONGO_URI) and that MongoDB runs and is reachable from here; nothing was changed", err)
		}
		return err
	}
	err = fn(ctx, s)
	if cerr := s.Close(context.WithoutCancel(ctx)); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// outputFlag is --output: table (default) or json.
type outputFlag struct{ format string }

func (o *outputFlag) register(fs *pflag.FlagSet) {
	fs.StringVarP(&o.format, "output", "o", "table", "output format: table or json")
}

func (o *outputFlag) check() error {
	if o.format != "table" && o.format != "json" {
		return usagef("--output must be table or json, not %q", o.format)
	}
	return nil
}

func (o *outputFlag) json() bool { return o.format == "json" }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes rows under a header, aligned.
func table(w io.Writer, header string, rows [][]any) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		for i, c := range r {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, c)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func tsFormat(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// requireTenant checks the --tenant flag.
func requireTenant(t string) error {
	if t == "" {
		return usagef("--tenant is required")
	}
	return nil
}

// listCmd builds a "list --tenant T" command: it checks the flags and that
// the tenant exists, reads the items, and prints them as a table (header,
// row) or, with --output json, as toJSON gives them (the items themselves
// when nil).
func listCmd[T any](e *env, sf *storeFlags, tenant *string, short, header string,
	read func(*store.Store, context.Context, string) ([]T, error),
	row func(T) []any, toJSON func([]T) any) *cobra.Command {
	var out outputFlag
	c := &cobra.Command{
		Use:   "list --tenant T",
		Short: short,
		Args:  args(),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := firstError(requireTenant(*tenant), out.check()); err != nil {
				return err
			}
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				if _, err := s.Tenant(ctx, *tenant); err != nil {
					return err
				}
				items, err := read(s, ctx, *tenant)
				if err != nil {
					return err
				}
				if out.json() {
					if toJSON != nil {
						return writeJSON(e.stdout, toJSON(items))
					}
					return writeJSON(e.stdout, items)
				}
				rows := make([][]any, len(items))
				for i, it := range items {
					rows[i] = row(it)
				}
				return table(e.stdout, header, rows)
			})
		},
	}
	out.register(c.Flags())
	return c
}

package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/internal/seal"
)

// ErrNotFound is returned when a record does not exist. It is authz's
// sentinel, so the caches can tell absence from failure.
var ErrNotFound = authz.ErrNotFound

// ErrExists is returned when creating a record whose name is taken.
var ErrExists = errors.New("already exists")

// Collection names.
const (
	colTenants     = "tenants"
	colSpaces      = "spaces"
	colSeats       = "seats"
	colAPIKeys     = "api_keys"
	colChanges     = "changes"
	colUsage       = "api_key_usage"
	colKeyNames    = "api_key_names"
	colSigningKeys = "signing_keys"
	colIssuers     = "issuers"

	colSessions           = "sessions"
	colSessionRevocations = "session_revocations"
	colSessionUsage       = "session_usage"
	colRefreshTokens      = "refresh_tokens"
	colRefreshConsumed    = "refresh_consumed"
	colUsers              = "users"
	colInvitations        = "invitations"
	colProviders          = "identity_providers"
	colOnceMarks          = "once_marks"
	colDeviceCodes        = "device_codes"
	colDeviceDecisions    = "device_decisions"
	colDeviceRedemptions  = "device_redemptions"
	colClients            = "oauth_clients"
)

// DefaultDatabase is used when the MongoDB URI names no database.
const DefaultDatabase = "usher"

// Options say which store to open.
type Options struct {
	// URI is a MongoDB connection string. Empty means the embedded store
	// in DataDir.
	URI string
	// DataDir holds the embedded store's files, lock and socket.
	DataDir string
	// Serve asks to own the embedded store and serve it on its socket for
	// the CLI, failing if another process already does. Without it, Open
	// uses a running server's socket if one answers, else opens the files
	// itself for as long as the Store is open.
	Serve bool
	// Logger receives the embedded server's errors and the store's own
	// (a stored login provider whose secret no longer opens). Nil
	// discards them.
	Logger *slog.Logger
	// Now is the clock for timestamps; nil means time.Now.
	Now func() time.Time
	// MasterKey seals and opens signing key secrets. The zero key can do
	// everything else.
	MasterKey seal.Key
	// Timeout bounds every store operation whose context has no earlier
	// deadline, so that a hung connection fails a call instead of
	// blocking it forever. Zero means DefaultTimeout.
	Timeout time.Duration
}

// DefaultTimeout is the driver-level bound on one store operation: far
// above what any of usher's operations takes on a working store, so that
// it only ends calls on a connection that stopped answering.
const DefaultTimeout = 15 * time.Second

// Store is usher's data in MongoDB (or the embedded FerretDB). It is safe
// for concurrent use.
type Store struct {
	client   *mongo.Client
	db       *mongo.Database
	embedded *Embedded
	now      func() time.Time
	master   seal.Key
	log      *slog.Logger
	// seatRead, when set by a test, runs between a seat writer's read and
	// its conditional insert, so a test can make two writers overlap.
	seatRead func()
	// Where describes the store for messages: a data dir or a redacted URI.
	Where string
}

// Open connects to the store that opts names and makes sure its indexes
// exist.
func Open(ctx context.Context, opts Options) (*Store, error) {
	s := &Store{now: opts.Now, master: opts.MasterKey, log: opts.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	uri := opts.URI
	if uri == "" {
		e, sockURI, err := openEmbedded(ctx, opts)
		if err != nil {
			return nil, err
		}
		s.embedded = e
		uri = sockURI
		s.Where = "embedded store in " + opts.DataDir
	} else {
		s.Where = redactURI(uri)
	}
	dbName, err := databaseName(uri)
	if err != nil {
		_ = s.closeEmbedded()
		return nil, err
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	co := options.Client().ApplyURI(uri).SetTimeout(timeout).SetAppName("usher")
	// serverSelectionTimeoutMS and connectTimeoutMS in the URI win over
	// these defaults.
	if co.ServerSelectionTimeout == nil {
		co.SetServerSelectionTimeout(5 * time.Second)
	}
	if co.ConnectTimeout == nil {
		co.SetConnectTimeout(5 * time.Second)
	}
	client, err := mongo.Connect(co)
	if err != nil {
		_ = s.closeEmbedded()
		return nil, fmt.Errorf("connect to %s: %w", s.Where, err)
	}
	s.client = client
	s.db = client.Database(dbName)
	if err := s.Ping(ctx); err != nil {
		_ = s.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	if err := s.ensureIndexes(ctx); err != nil {
		_ = s.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return s, nil
}

// Embedded returns the embedded server this Store runs, or nil.
func (s *Store) Embedded() *Embedded { return s.embedded }

// Ping checks that the store answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		return fmt.Errorf("ping %s: %w", s.Where, err)
	}
	return nil
}

// Close disconnects and, for an embedded store this Store started, stops
// the server cleanly.
func (s *Store) Close(ctx context.Context) error {
	var errs []error
	if s.client != nil {
		if err := s.client.Disconnect(ctx); err != nil {
			errs = append(errs, fmt.Errorf("disconnect: %w", err))
		}
	}
	if err := s.closeEmbedded(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (s *Store) closeEmbedded() error {
	if s.embedded == nil {
		return nil
	}
	err := s.embedded.Close()
	s.embedded = nil
	return err
}

// ensureIndexes creates the indexes usher needs. They are created one at a
// time: FerretDB v1.24 drops the connection when one createIndexes command
// names several indexes of which some already exist.
func (s *Store) ensureIndexes(ctx context.Context) error {
	idx := []struct {
		col    string
		keys   bson.D
		unique bool
	}{
		{colSpaces, bson.D{{Key: "tenant", Value: 1}, {Key: "name", Value: 1}}, false},
		{colSeats, bson.D{{Key: "tenant", Value: 1}, {Key: "name", Value: 1}, {Key: "version", Value: 1}}, false},
		{colSeats, bson.D{{Key: "tenant", Value: 1}, {Key: "groups", Value: 1}}, false},
		{colAPIKeys, bson.D{{Key: "tenant", Value: 1}, {Key: "name", Value: 1}}, false},
		// One successor per key: the claim that makes rotation happen once.
		{colAPIKeys, bson.D{{Key: "rotated_from", Value: 1}}, true},
		{colChanges, bson.D{{Key: "at", Value: 1}}, false},
		{colSigningKeys, bson.D{{Key: "tenant", Value: 1}, {Key: "created_at", Value: 1}}, false},
		{colIssuers, bson.D{{Key: "tenant", Value: 1}}, false},
		{colSessions, bson.D{{Key: "tenant", Value: 1}, {Key: "email_key", Value: 1}}, false},
		{colSessions, bson.D{{Key: "tenant", Value: 1}, {Key: "created_at", Value: 1}}, false},
		{colUsers, bson.D{{Key: "tenant", Value: 1}, {Key: "email_key", Value: 1}}, false},
		// One provider of each type per tenant; the _id (tenant/type)
		// already says so, this says it to whoever reads the indexes.
		{colProviders, bson.D{{Key: "tenant", Value: 1}, {Key: "type", Value: 1}}, true},
		{colOnceMarks, bson.D{{Key: "expires_at", Value: 1}}, false},
		// A user code names one pending request.
		{colDeviceCodes, bson.D{{Key: "user_code", Value: 1}}, true},
		{colDeviceCodes, bson.D{{Key: "expires_at", Value: 1}}, false},
		{colClients, bson.D{{Key: "tenant", Value: 1}}, false},
	}
	for _, i := range idx {
		m := mongo.IndexModel{Keys: i.keys}
		if i.unique {
			m.Options = options.Index().SetUnique(true).SetSparse(true)
		}
		if _, err := s.db.Collection(i.col).Indexes().CreateOne(ctx, m); err != nil {
			return fmt.Errorf("create index on %s: %w", i.col, err)
		}
	}
	return nil
}

// databaseName reads the database from uri's path, or DefaultDatabase. It
// reads the URI by hand: url.Parse refuses the escaped socket paths that
// MongoDB URIs use as hosts.
func databaseName(uri string) (string, error) {
	rest, ok := strings.CutPrefix(uri, "mongodb://")
	if !ok {
		rest, ok = strings.CutPrefix(uri, "mongodb+srv://")
	}
	if !ok {
		return "", errors.New("mongo uri: must start with mongodb:// or mongodb+srv://")
	}
	rest, _, _ = strings.Cut(rest, "?")
	_, db, _ := strings.Cut(rest, "/")
	if db == "" {
		return DefaultDatabase, nil
	}
	if strings.ContainsAny(db, `/\. "$`) {
		return "", fmt.Errorf("mongo uri: database name %q holds a character MongoDB refuses", db)
	}
	return db, nil
}

// redactURI drops the password from a MongoDB URI for messages.
func redactURI(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		// A Unix socket's escaped path as the host (the embedded store's
		// socket, as another usher process reaches it) is no URL host:
		// without userinfo there is nothing to hide but the options.
		rest, _, _ := strings.Cut(uri, "?")
		scheme, after, _ := strings.Cut(rest, "://")
		authority, _, _ := strings.Cut(after, "/")
		if (scheme == "mongodb" || scheme == "mongodb+srv") && !strings.Contains(authority, "@") {
			return rest
		}
		return "mongodb (unparseable uri)"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
		}
	}
	u.RawQuery = ""
	return u.String()
}

// notFound maps the driver's "no documents" to ErrNotFound.
func notFound(err error, what string) error {
	if errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// ms truncates t to the millisecond precision BSON dates keep, so that a
// value written and read back compares equal.
func ms(t time.Time) time.Time { return t.Truncate(time.Millisecond).UTC() }

func timeVal(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// Now returns the store's clock reading, the time its writes record.
func (s *Store) Now() time.Time { return s.now() }

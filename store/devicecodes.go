package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/login"
)

// Device authorization requests (RFC 8628) live in three collections, all
// keyed by the device code's hash: the request itself (device_codes,
// with a unique index on the user code), its decision
// (device_decisions) and its redemption (device_redemptions). A decision
// and a redemption are each one insert under the _id: exactly one wins on
// MongoDB and on FerretDB, where a "set if unset" update can have several
// winners. Only the poll time is an update, and a lost one only weakens
// slow_down.

type deviceCodeDoc struct {
	ID         string    `bson:"_id"` // hex SHA-256 of the device code
	UserCode   string    `bson:"user_code"`
	ClientID   string    `bson:"client_id"`
	Tenant     string    `bson:"tenant,omitempty"`
	Scope      string    `bson:"scope,omitempty"`
	RemoteAddr string    `bson:"remote_addr,omitempty"`
	UserAgent  string    `bson:"user_agent,omitempty"`
	CreatedAt  time.Time `bson:"created_at"`
	ExpiresAt  time.Time `bson:"expires_at"`
	IntervalS  int64     `bson:"interval_s"`
	LastPollAt time.Time `bson:"last_poll_at,omitempty"`
}

type deviceDecisionDoc struct {
	ID        string    `bson:"_id"`
	Approved  bool      `bson:"approved"`
	SessionID string    `bson:"session_id"`
	Tenant    string    `bson:"tenant"`
	Subject   string    `bson:"subject"`
	Email     string    `bson:"email"`
	At        time.Time `bson:"at"`
}

type deviceRedemptionDoc struct {
	ID string    `bson:"_id"`
	At time.Time `bson:"at"`
}

// maxUserAgent caps the user agent kept with a request.
const maxUserAgent = 256

// CreateDeviceCode stores a device authorization request. A user code in
// use is an error wrapping login.ErrUserCodeTaken (the caller draws
// another); a hash in use is ErrExists.
func (s *Store) CreateDeviceCode(ctx context.Context, d login.DeviceCode) error {
	var errs []error
	if d.Hash == (authz.KeyHash{}) || d.UserCode == "" || d.ClientID == "" {
		errs = append(errs, errors.New("device code: hash, user code and client id are required"))
	}
	if d.Tenant != "" {
		if err := authz.ValidateTenant(d.Tenant); err != nil {
			errs = append(errs, err)
		}
	}
	if d.ExpiresAt.IsZero() || d.Interval <= 0 {
		errs = append(errs, errors.New("device code: expiry and interval are required"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	created := d.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	ua := d.UserAgent
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
	}
	doc := deviceCodeDoc{
		ID: d.Hash.String(), UserCode: d.UserCode, ClientID: d.ClientID, Tenant: d.Tenant, Scope: d.Scope,
		RemoteAddr: d.RemoteAddr, UserAgent: ua, CreatedAt: ms(created), ExpiresAt: ms(d.ExpiresAt),
		IntervalS: int64(d.Interval / time.Second),
	}
	_, err := s.db.Collection(colDeviceCodes).InsertOne(ctx, doc)
	switch {
	case err == nil:
		return nil
	case mongo.IsDuplicateKeyError(err):
		// Which key clashed: the hash (never in practice) or the user code.
		if n, cerr := s.db.Collection(colDeviceCodes).CountDocuments(ctx, bson.D{{Key: "_id", Value: doc.ID}}); cerr == nil && n > 0 {
			return fmt.Errorf("device code: %w", ErrExists)
		}
		return fmt.Errorf("device code: %w", login.ErrUserCodeTaken)
	}
	return fmt.Errorf("create device code: %w", err)
}

// DeviceCode finds a request by its device code's hash.
func (s *Store) DeviceCode(ctx context.Context, hash authz.KeyHash) (login.DeviceCode, error) {
	return s.deviceCode(ctx, bson.D{{Key: "_id", Value: hash.String()}})
}

// DeviceCodeByUserCode finds a request by its canonical user code.
func (s *Store) DeviceCodeByUserCode(ctx context.Context, userCode string) (login.DeviceCode, error) {
	if userCode == "" {
		return login.DeviceCode{}, fmt.Errorf("device code: %w", ErrNotFound)
	}
	return s.deviceCode(ctx, bson.D{{Key: "user_code", Value: userCode}})
}

func (s *Store) deviceCode(ctx context.Context, filter bson.D) (login.DeviceCode, error) {
	var d deviceCodeDoc
	if err := s.db.Collection(colDeviceCodes).FindOne(ctx, filter).Decode(&d); err != nil {
		return login.DeviceCode{}, notFound(err, "device code")
	}
	h, err := authz.ParseKeyHash(d.ID)
	if err != nil {
		return login.DeviceCode{}, fmt.Errorf("device code: stored %w", err)
	}
	out := login.DeviceCode{
		Hash: h, UserCode: d.UserCode, ClientID: d.ClientID, Tenant: d.Tenant, Scope: d.Scope,
		RemoteAddr: d.RemoteAddr, UserAgent: d.UserAgent, CreatedAt: d.CreatedAt.UTC(), ExpiresAt: d.ExpiresAt.UTC(),
		Interval: time.Duration(d.IntervalS) * time.Second,
	}
	if !d.LastPollAt.IsZero() {
		out.LastPollAt = d.LastPollAt.UTC()
	}
	var dec deviceDecisionDoc
	err = s.db.Collection(colDeviceDecisions).FindOne(ctx, bson.D{{Key: "_id", Value: d.ID}}).Decode(&dec)
	switch {
	case err == nil:
		out.Decision = &login.DeviceDecision{Approved: dec.Approved, SessionID: dec.SessionID, Tenant: dec.Tenant,
			Subject: dec.Subject, Email: dec.Email, At: dec.At.UTC()}
	case !errors.Is(err, mongo.ErrNoDocuments):
		return login.DeviceCode{}, fmt.Errorf("device code decision: %w", err)
	}
	var red deviceRedemptionDoc
	err = s.db.Collection(colDeviceRedemptions).FindOne(ctx, bson.D{{Key: "_id", Value: d.ID}}).Decode(&red)
	switch {
	case err == nil:
		out.RedeemedAt = red.At.UTC()
	case !errors.Is(err, mongo.ErrNoDocuments):
		return login.DeviceCode{}, fmt.Errorf("device code redemption: %w", err)
	}
	return out, nil
}

// DecideDeviceCode records the first decision of a code (won true);
// every later decision answers won false and changes nothing. The code
// must exist.
func (s *Store) DecideDeviceCode(ctx context.Context, hash authz.KeyHash, d login.DeviceDecision) (bool, error) {
	if d.SessionID == "" || d.Tenant == "" {
		return false, errors.New("device decision: session and tenant are required")
	}
	id := hash.String()
	if err := s.db.Collection(colDeviceCodes).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Err(); err != nil {
		return false, notFound(err, "device code")
	}
	_, err := s.db.Collection(colDeviceDecisions).InsertOne(ctx, deviceDecisionDoc{
		ID: id, Approved: d.Approved, SessionID: d.SessionID, Tenant: d.Tenant, Subject: d.Subject, Email: d.Email, At: ms(d.At),
	})
	switch {
	case err == nil:
		return true, nil
	case mongo.IsDuplicateKeyError(err):
		return false, nil
	}
	return false, fmt.Errorf("decide device code: %w", err)
}

// PollDeviceCode records a poll and the interval the device must keep.
func (s *Store) PollDeviceCode(ctx context.Context, hash authz.KeyHash, at time.Time, interval time.Duration) error {
	res, err := s.db.Collection(colDeviceCodes).UpdateOne(ctx, bson.D{{Key: "_id", Value: hash.String()}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "last_poll_at", Value: ms(at)}, {Key: "interval_s", Value: int64(interval / time.Second)}}}})
	if err != nil {
		return fmt.Errorf("record device code poll: %w", err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("device code: %w", ErrNotFound)
	}
	return nil
}

// RedeemDeviceCode consumes a code at at: of any number of concurrent
// redemptions exactly one answers true.
func (s *Store) RedeemDeviceCode(ctx context.Context, hash authz.KeyHash, at time.Time) (bool, error) {
	_, err := s.db.Collection(colDeviceRedemptions).InsertOne(ctx, deviceRedemptionDoc{ID: hash.String(), At: ms(at)})
	switch {
	case err == nil:
		return true, nil
	case mongo.IsDuplicateKeyError(err):
		return false, nil
	}
	return false, fmt.Errorf("redeem device code: %w", err)
}

// PruneDeviceCodes deletes the requests that expired before before, with
// their decisions and redemptions, freeing their user codes, and returns
// how many requests it deleted.
func (s *Store) PruneDeviceCodes(ctx context.Context, before time.Time) (int64, error) {
	if before.IsZero() {
		return 0, errors.New("prune device codes: a time is required")
	}
	var old []deviceCodeDoc
	if err := s.findAll(ctx, colDeviceCodes, bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lt", Value: ms(before)}}}}, &old); err != nil {
		return 0, fmt.Errorf("prune device codes: %w", err)
	}
	if len(old) == 0 {
		return 0, nil
	}
	ids := make(bson.A, len(old))
	for i, d := range old {
		ids[i] = d.ID
	}
	in := bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}
	for _, col := range []string{colDeviceDecisions, colDeviceRedemptions} {
		if _, err := s.db.Collection(col).DeleteMany(ctx, in); err != nil {
			return 0, fmt.Errorf("prune device codes: %w", err)
		}
	}
	res, err := s.db.Collection(colDeviceCodes).DeleteMany(ctx, in)
	if err != nil {
		return 0, fmt.Errorf("prune device codes: %w", err)
	}
	return res.DeletedCount, nil
}

package login_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/login"
)

// memDevice is the in-memory stand-in of device codes and clients, with
// the store's contract (one decision, one redemption per code).
type memDevice struct {
	mu      sync.Mutex
	codes   map[authz.KeyHash]login.DeviceCode
	clients map[string]login.Client
	// lookups, when set, holds each DeviceCode lookup until that many
	// are waiting, so that racing polls all read the code before any
	// redeems it: only the redemption's one winner can then stop them.
	lookups *sync.WaitGroup
}

func newMemDevice() *memDevice {
	return &memDevice{codes: map[authz.KeyHash]login.DeviceCode{}, clients: map[string]login.Client{}}
}

func (m *memDevice) CreateDeviceCode(_ context.Context, d login.DeviceCode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.codes {
		if o.UserCode == d.UserCode {
			return fmt.Errorf("device code: %w", login.ErrUserCodeTaken)
		}
	}
	m.codes[d.Hash] = d
	return nil
}

func (m *memDevice) DeviceCode(_ context.Context, hash authz.KeyHash) (login.DeviceCode, error) {
	m.mu.Lock()
	d, ok := m.codes[hash]
	m.mu.Unlock()
	if m.lookups != nil {
		m.lookups.Done()
		m.lookups.Wait()
	}
	if !ok {
		return login.DeviceCode{}, notFound("device code")
	}
	return d, nil
}

func (m *memDevice) DeviceCodeByUserCode(_ context.Context, uc string) (login.DeviceCode, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range m.codes {
		if d.UserCode == uc {
			return d, nil
		}
	}
	return login.DeviceCode{}, notFound("device code")
}

func (m *memDevice) DecideDeviceCode(_ context.Context, hash authz.KeyHash, dec login.DeviceDecision) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.codes[hash]
	if !ok {
		return false, notFound("device code")
	}
	if d.Decision != nil {
		return false, nil
	}
	d.Decision = &dec
	m.codes[hash] = d
	return true, nil
}

func (m *memDevice) PollDeviceCode(_ context.Context, hash authz.KeyHash, at time.Time, interval time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.codes[hash]
	if !ok {
		return notFound("device code")
	}
	d.LastPollAt, d.Interval = at, interval
	m.codes[hash] = d
	return nil
}

func (m *memDevice) RedeemDeviceCode(_ context.Context, hash authz.KeyHash, at time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.codes[hash]
	if !ok || !d.RedeemedAt.IsZero() {
		return false, nil
	}
	d.RedeemedAt = at
	m.codes[hash] = d
	return true, nil
}

func (m *memDevice) Client(_ context.Context, id string) (login.Client, error) {
	if id == login.BuiltinClientID {
		return login.BuiltinClient, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.clients[id]
	if !ok {
		return login.Client{}, notFound("client")
	}
	return c, nil
}

func (m *memDevice) AddClient(_ context.Context, c login.Client) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clients[c.ID] = c
	return nil
}

func (m *memDevice) ListClients(context.Context, string) ([]login.Client, error) {
	return nil, nil
}

func (m *memDevice) RemoveClient(_ context.Context, _, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.clients, id)
	return nil
}

var (
	_ login.DeviceCodes = (*memDevice)(nil)
	_ login.Clients     = (*memDevice)(nil)
)

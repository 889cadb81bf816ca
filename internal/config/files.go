package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/internal/seal"
)

// Files is what the files a configuration names hold, read before
// anything listens.
type Files struct {
	// Rules are the route rules; without a rules file they deny every
	// route.
	Rules *authz.Rules
	// TLS is the gRPC server's TLS configuration, nil for plaintext.
	TLS *tls.Config
	// MasterKey seals signing keys; the zero key when none is set.
	MasterKey seal.Key
}

// Open reads the rules, the TLS files and the master key (from the
// environment's USHER_MASTER_KEY or master_key_file), reporting every
// problem at once.
func (c *Config) Open(getenv func(string) string) (Files, error) {
	var errs []error
	f := Files{Rules: authz.DenyAllRules()}
	if c.Rules != "" {
		r, err := LoadRules(c.Rules)
		if err != nil {
			errs = append(errs, err)
		} else {
			f.Rules = r
		}
	}
	var err error
	if f.TLS, err = c.TLS.load(); err != nil {
		errs = append(errs, err)
	}
	if f.MasterKey, err = MasterKey(getenv, c.MasterKeyFile); err != nil {
		errs = append(errs, err)
	}
	return f, errors.Join(errs...)
}

// LoadRules reads and parses a rules file.
func LoadRules(path string) (*authz.Rules, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	return authz.ParseRules(path, data)
}

func (t TLS) load() (*tls.Config, error) {
	if t.CertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file, tls.key_file: %w", err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.client_ca_file: %s holds no PEM certificate", t.ClientCAFile)
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return conf, nil
}

// MasterKey reads the master key from USHER_MASTER_KEY or from file (the
// master_key_file setting). No key is not an error here: the commands that
// need one say so.
func MasterKey(getenv func(string) string, file string) (seal.Key, error) {
	inline := getenv("USHER_MASTER_KEY")
	switch {
	case inline != "" && file != "":
		return seal.Key{}, errors.New("set USHER_MASTER_KEY or --master-key-file (USHER_MASTER_KEY_FILE), not both")
	case inline != "":
		k, err := seal.ParseKey(inline)
		if err != nil {
			return seal.Key{}, fmt.Errorf("USHER_MASTER_KEY: %w", err)
		}
		return k, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return seal.Key{}, fmt.Errorf("master_key_file: %w", err)
		}
		k, err := seal.ParseKey(string(b))
		if err != nil {
			return seal.Key{}, fmt.Errorf("master_key_file %s: %w", file, err)
		}
		return k, nil
	}
	return seal.Key{}, nil
}

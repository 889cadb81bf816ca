package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/usher-dev/usher/internal/config"
	"github.com/usher-dev/usher/internal/seal"
)

// loadMasterKey reads the master key from USHER_MASTER_KEY or from the file
// named by --master-key-file (USHER_MASTER_KEY_FILE). No key is not an
// error here: the commands that need one say so.
func loadMasterKey(getenv func(string) string, file string) (seal.Key, error) {
	k, err := config.MasterKey(getenv, file)
	if err != nil {
		return k, usageError{err}
	}
	return k, nil
}

// masterKeyFlag is --master-key-file for admin commands that touch signing
// keys.
type masterKeyFlag struct{ file string }

func (m *masterKeyFlag) register(fs *pflag.FlagSet, e *env) {
	fs.StringVar(&m.file, "master-key-file", e.getenv("USHER_MASTER_KEY_FILE"),
		"file holding the master key (32 bytes, base64); or set USHER_MASTER_KEY (env USHER_MASTER_KEY_FILE)")
}

// require loads the master key and fails, saying what to set, without one.
func (m *masterKeyFlag) require(e *env) (seal.Key, error) {
	k, err := loadMasterKey(e.getenv, m.file)
	if err != nil {
		return k, err
	}
	if k.IsZero() {
		return k, usageError{fmt.Errorf("%w", seal.ErrNoKey)}
	}
	return k, nil
}

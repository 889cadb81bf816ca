package credentials

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"
)

// FileName is the credentials file's name inside usher's config directory.
const FileName = "credentials.json"

// Path is where the credentials live: configDir/usher/credentials.json,
// with configDir $XDG_CONFIG_HOME or the OS's user config directory.
func Path(configDir string) string {
	return filepath.Join(configDir, "usher", FileName)
}

// Entry is one server's login.
type Entry struct {
	// Server is the server's issuer URL, the key of the entry.
	Server             string `json:"server"`
	ClientID           string `json:"client_id"`
	TokenEndpoint      string `json:"token_endpoint"`
	RevocationEndpoint string `json:"revocation_endpoint,omitempty"`
	// Tenant is the tenant asked for at login, if any.
	Tenant       string    `json:"tenant,omitempty"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	// Obtained is when the access token was obtained (local clock).
	Obtained time.Time `json:"obtained,omitzero"`
}

// LogValue keeps the tokens out of logs.
func (e Entry) LogValue() slog.Value {
	return slog.GroupValue(slog.String("server", e.Server), slog.Time("expiry", e.Expiry))
}

// File is the whole credentials file.
type File struct {
	// Last is the server used last: the default for --server.
	Last    string           `json:"last,omitempty"`
	Servers map[string]Entry `json:"servers"`
}

// Get returns the entry for server.
func (f *File) Get(server string) (Entry, bool) {
	e, ok := f.Servers[server]
	return e, ok
}

// Put stores e under e.Server and makes it the last used.
func (f *File) Put(e Entry) {
	if f.Servers == nil {
		f.Servers = map[string]Entry{}
	}
	f.Servers[e.Server] = e
	f.Last = e.Server
}

// Delete removes server's entry; when it was the last used, another
// remaining server (the first by name) becomes the default.
func (f *File) Delete(server string) {
	delete(f.Servers, server)
	if f.Last != server {
		return
	}
	f.Last = ""
	names := make([]string, 0, len(f.Servers))
	for s := range f.Servers {
		names = append(names, s)
	}
	sort.Strings(names)
	if len(names) > 0 {
		f.Last = names[0]
	}
}

// PermissionError is a credentials file that others than its owner can
// read or write.
type PermissionError struct {
	Path string
	Mode fs.FileMode
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("credentials file %s has mode %04o: others can read it, so usher will not use it; "+
		"fix it with `chmod 600 %s` (and run usher logout and usher login again if someone may have copied it)",
		e.Path, e.Mode.Perm(), e.Path)
}

// Load reads the credentials file at path. A missing file is an empty
// File. A file that group or others may read or write is refused with a
// *PermissionError, before its content is read.
func Load(path string) (*File, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &File{Servers: map[string]Entry{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open credentials: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat credentials: %w", err)
	}
	// Windows has no Unix modes; its user profile ACLs protect the file.
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, &PermissionError{Path: path, Mode: st.Mode()}
	}
	var c File
	dec := json.NewDecoder(f)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("read credentials %s: %w (delete the file and run usher login again)", path, err)
	}
	if c.Servers == nil {
		c.Servers = map[string]Entry{}
	}
	return &c, nil
}

// Save writes the file atomically at path: a 0600 file in a 0700
// directory, which it creates (or narrows to 0700) as needed.
func (f *File) Save(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if st, err := os.Stat(dir); err == nil && runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil { //nolint:gosec // a directory: 0700 is owner-only
			return fmt.Errorf("restrict %s to its owner: %w", dir, err)
		}
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode credentials: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".credentials-*.json") // mode 0600
	if err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // a no-op once renamed
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write credentials: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write credentials: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	return nil
}

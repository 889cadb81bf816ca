package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Files in the data directory.
const (
	lockFile   = "usher.lock"
	socketFile = "mongo.sock"
	// maxSocketPath stays below the 108-byte sun_path limit of Linux.
	maxSocketPath = 100
	// lockWait is how long Open waits for another process that holds the
	// data directory but does not (yet) serve its socket.
	lockWait = 10 * time.Second
)

// Embedded is FerretDB running in this process on SQLite files in a data
// directory, listening on a Unix socket there so that other usher processes
// (the admin CLI) can reach it. A lock file keeps a second process from
// opening the same files.
type Embedded struct {
	dir    string
	socket string
	lock   *os.File
	cancel context.CancelFunc
	done   chan struct{}
}

// ferretNew serialises ferretdb.New, which writes a package-level variable.
var ferretNew sync.Mutex

// SocketPath returns where the embedded store in dir listens: dir/mongo.sock,
// or, when that path is too long for a Unix socket, a private directory
// under the system temporary directory named after dir's absolute path.
func SocketPath(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("data dir %s: %w", dir, err)
	}
	p := filepath.Join(abs, socketFile)
	if len(p) <= maxSocketPath {
		return p, nil
	}
	sum := sha256.Sum256([]byte(abs))
	// The CLI and the server must see the same TMPDIR to meet here.
	return filepath.Join(os.TempDir(), "usher-"+hex.EncodeToString(sum[:6]), socketFile), nil
}

// socketURI is the MongoDB URI of a Unix socket: its path, escaped, as the
// host.
func socketURI(path string) string {
	return "mongodb://" + strings.ReplaceAll(url.PathEscape(path), "/", "%2F") + "/" + DefaultDatabase
}

// openEmbedded returns the URI of the embedded store in opts.DataDir: the
// socket of a process already serving it, or a server started here.
func openEmbedded(ctx context.Context, opts Options) (*Embedded, string, error) {
	if opts.DataDir == "" {
		return nil, "", errors.New("data dir: empty; pass --data-dir or --mongo-uri")
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, "", fmt.Errorf("data dir: %w", err)
	}
	sock, err := SocketPath(opts.DataDir)
	if err != nil {
		return nil, "", err
	}
	deadline := time.Now().Add(lockWait)
	for {
		if socketAnswers(sock) {
			if opts.Serve {
				return nil, "", fmt.Errorf("data dir %s is already served by another usher process (socket %s); stop it or use another --data-dir", opts.DataDir, sock)
			}
			return nil, socketURI(sock), nil
		}
		lock, holder, err := tryLock(opts.DataDir)
		if err != nil {
			return nil, "", err
		}
		if lock != nil {
			e, err := startEmbedded(ctx, opts.DataDir, sock, lock, opts.Logger)
			if err != nil {
				return nil, "", err
			}
			return e, socketURI(sock), nil
		}
		if time.Now().After(deadline) {
			return nil, "", fmt.Errorf("data dir %s is in use by process %s (it holds %s but does not serve %s): stop that process, or use another --data-dir",
				opts.DataDir, holder, filepath.Join(opts.DataDir, lockFile), sock)
		}
		select {
		case <-ctx.Done():
			return nil, "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func socketAnswers(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// tryLock takes the data directory's lock without waiting. It returns a nil
// file and the holder's pid (as written in the file) when another process
// holds it. The kernel drops the lock when the holder exits, however it
// exits.
func tryLock(dir string) (*os.File, string, error) {
	p := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("lock data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, strings.TrimSpace(string(b[:n])), nil
		}
		return nil, "", fmt.Errorf("lock data dir: %w", err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, "", nil
}

func startEmbedded(ctx context.Context, dir, sock string, lock *os.File, logger *slog.Logger) (e *Embedded, err error) {
	defer func() {
		if err != nil {
			_ = lock.Close()
		}
	}()
	if err := prepareSocketDir(filepath.Dir(sock), dir); err != nil {
		return nil, err
	}
	// We hold the lock, so a socket file left here is from a process that
	// died; remove it or listening fails.
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// FerretDB logs every connection at Info; keep its errors only.
	logger = slog.New(errorsOnly{logger.Handler()})
	ferretNew.Lock()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{Unix: sock},
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
		Logger:    logger.With("component", "ferretdb"),
	})
	ferretNew.Unlock()
	if err != nil {
		return nil, fmt.Errorf("start embedded store in %s: %w", dir, err)
	}
	// The server runs until Close; its life is the Store's, not the
	// opening call's.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e = &Embedded{dir: dir, socket: sock, lock: lock, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		_ = f.Run(runCtx)
	}()
	for i := 0; !socketAnswers(sock); i++ {
		if i == 100 {
			_ = e.Close()
			return nil, fmt.Errorf("embedded store in %s did not start listening on %s", dir, sock)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return e, nil
}

// prepareSocketDir makes sure the directory of the socket is ours and
// private when it is not the data directory itself.
func prepareSocketDir(sockDir, dataDir string) error {
	if abs, _ := filepath.Abs(dataDir); abs == sockDir {
		return nil
	}
	if err := os.Mkdir(sockDir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("socket dir: %w", err)
	}
	fi, err := os.Lstat(sockDir)
	if err != nil {
		return fmt.Errorf("socket dir: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || fi.Mode().Perm() != 0o700 || !ok || int(st.Uid) != os.Getuid() {
		return fmt.Errorf("socket dir %s is not a private directory of this user; remove it", sockDir)
	}
	return nil
}

// Socket returns the path the embedded store listens on.
func (e *Embedded) Socket() string { return e.socket }

// Close stops the server, waits for it to close its files, and releases the
// data directory.
func (e *Embedded) Close() error {
	e.cancel()
	select {
	case <-e.done:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("embedded store in %s did not stop within 30s", e.dir)
	}
	_ = os.Remove(e.socket)
	return e.lock.Close()
}

// errorsOnly passes on records at Error level and above.
type errorsOnly struct{ slog.Handler }

func (h errorsOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError && h.Handler.Enabled(ctx, l)
}

func (h errorsOnly) WithAttrs(as []slog.Attr) slog.Handler {
	return errorsOnly{h.Handler.WithAttrs(as)}
}
func (h errorsOnly) WithGroup(n string) slog.Handler { return errorsOnly{h.Handler.WithGroup(n)} }

// Package filestore is an oauth2refresh.Store in files, for the processes of one machine: the
// default store, with no server to run (see Store).
//
//	s := &filestore.Store{Dir: filepath.Join(cacheDir, "tokens")} // cacheDir from os.UserCacheDir
//	ts := endpoint.TokenSource(ctx, nil, oauth2refresh.WithStore(s, "tenant-42"))
package filestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store"
	"golang.org/x/oauth2"
)

// Store is an oauth2refresh.Store that keeps each grant's token in a JSON file of its own, for the
// processes of one machine. It is the default store: no server to run.
//
// The token of key lives in Dir/KEY.json, where KEY is key with every byte other than
// lower-case ASCII letters, digits, '-', '_' and '.' (and a leading '.') written as %XX in
// upper-case hex: "tenant-42" is in tenant-42.json, "Tenant-42" in %54enant-42.json. Keys that
// differ only in case thus get files whose names differ even to a file system that ignores
// case (macOS's and Windows' defaults). A KEY longer than 180 bytes is cut to 100 and followed
// by '~' and a hash of key.
//
// A file, in the format of store.Encode followed by a newline, is written whole to a
// temporary file in Dir, flushed to disk (fsync), then renamed over the old one and the
// directory flushed: a reader or a crash sees the old token or the new one, never a mix. Token
// and lock files have mode 0600. A file that cannot be decoded (truncated, edited by hand) is
// a *store.CorruptTokenError and is never overwritten.
//
// The lease is an advisory lock (flock(2)) on Dir/KEY.json.lock, which the kernel releases
// when its holder exits or dies: a crashed process frees the grant at once, and the ttl given
// to Lock is not needed. A process that hangs while holding it blocks the grant until it
// exits; the waiting Lock calls give up when their context ends. The version of each file
// counts its saves and is checked before the next, so that a token is only ever replaced by
// one refreshed from it. flock does not work across NFS on every system, and not at all on
// Windows (Lock returns an error there): share a Store between processes of one machine.
//
// A grant that holds no token leaves no file: Lease.Release removes the lock file when no
// token file is there (a Lock and Release of a key never saved leaves Dir as it was). A Lock
// that was waiting on a lock file removed meanwhile takes the flock of the one at the path
// then (it checks, once it holds the flock, that its file is still the one at the path), so
// the lease stays exclusive. A process that dies holding the lease of a grant never saved
// leaves its empty lock file, which the next Lock and Release of the key, or Delete, removes.
//
// Delete removes the token file and the lock file, without waiting for the lease (the lock
// file of a lease held meanwhile is removed by its Release).
// Lease.Save, Delete and Release each hold a flock on Dir itself for the moment of their
// check and rename or remove, so that a lease held while the grant is deleted cannot save it
// back, and no lock file is left behind.
//
// Store refuses, with an *UnsafeDirError, a Dir that another user could write to (and so
// plant or replace a token file): one writable by its group or by others, or, on unix, owned
// by another user than the process's effective user. Only Dir itself is checked, not its
// parents: choose a Dir whose parents only trusted users can change, such as one under
// os.UserCacheDir or os.UserConfigDir, not a fixed name in a shared temporary directory.
type Store struct {
	// Dir is the directory of the token files. It is created, mode 0700, when missing. It
	// must not be empty.
	Dir string
}

// UnsafeDirError reports a Store Dir that other users could write to (see Store):
// Store reads and writes no token there. Make it the process's user's own, mode 0700.
type UnsafeDirError struct {
	// Dir is the Store's Dir.
	Dir string
	// Mode is Dir's mode.
	Mode fs.FileMode
	// Owner is the user id that owns Dir and User the process's effective user id, on unix;
	// both are -1 on other systems.
	Owner, User int
}

func (e *UnsafeDirError) Error() string {
	s := "oauth2refresh: file store: unsafe directory " + e.Dir + ": "
	if e.Mode.Perm()&0o022 != 0 && modeBitsMeaningful {
		return s + fmt.Sprintf("writable by group or others (mode %#o)", e.Mode.Perm())
	}
	return s + fmt.Sprintf("owned by user id %d, not by the current user (%d)", e.Owner, e.User)
}

// modeBitsMeaningful says whether fs.FileMode's permission bits say who may write a
// directory: not on Windows, where Go reports every directory as writable by all.
const modeBitsMeaningful = runtime.GOOS != "windows"

// open checks ctx, key and s.Dir (see UnsafeDirError), after creating it if create is set,
// and returns key's token file; op names the operation in errors. A missing Dir is no error.
func (s *Store) open(ctx context.Context, key, op string, create bool) (string, error) {
	switch {
	case ctx.Err() != nil:
		return "", fmt.Errorf("oauth2refresh: file store: %s: %w", op, ctx.Err())
	case s.Dir == "":
		return "", errors.New("oauth2refresh: file store: Dir is empty")
	case key == "":
		return "", errors.New("oauth2refresh: file store: empty key")
	}
	path := filepath.Join(s.Dir, fileName(key)+".json")
	if create {
		if err := os.MkdirAll(s.Dir, 0o700); err != nil {
			return "", fmt.Errorf("oauth2refresh: file store: %w", err)
		}
	}
	fi, err := os.Stat(s.Dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !create:
		return path, nil
	case err != nil:
		return "", fmt.Errorf("oauth2refresh: file store: %w", err)
	case !fi.IsDir():
		return "", fmt.Errorf("oauth2refresh: file store: %s is not a directory", s.Dir)
	}
	owner, user, known := dirOwner(fi)
	if fi.Mode().Perm()&0o022 != 0 && modeBitsMeaningful || known && owner != user {
		return "", &UnsafeDirError{Dir: s.Dir, Mode: fi.Mode(), Owner: owner, User: user}
	}
	return path, nil
}

var _ oauth2refresh.Store = (*Store)(nil)

// fileName maps key to a file name as Store says: every letter left as it is is lower
// case, and every escape is upper case and starts with '%', which is itself escaped, so folding
// the case of a name cannot turn it into another key's name; '~' is escaped in short names.
func fileName(key string) string {
	const hexDigits = "0123456789ABCDEF"
	b := make([]byte, 0, len(key))
	for i := 0; i < len(key); i++ {
		c := key[i]
		if 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' && i > 0 {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hexDigits[c>>4], hexDigits[c&0xF])
	}
	if len(b) > 180 {
		// Keep names well under the usual 255-byte limit, with the suffixes added.
		sum := sha256.Sum256([]byte(key))
		b = append(b[:100], '~')
		b = hex.AppendEncode(b, sum[:16]) // lower-case hex: no two hashes fold together
	}
	return string(b)
}

// Load implements oauth2refresh.Store.Load.
func (s *Store) Load(ctx context.Context, key string) (*oauth2.Token, error) {
	path, err := s.open(ctx, key, "loading token", false)
	if err != nil {
		return nil, err
	}
	tok, _, err := readTokenFile(key, path)
	return tok, err
}

// Lock implements oauth2refresh.Store.Lock with the flock of key's grant (see Store); ttl is not
// used.
func (s *Store) Lock(ctx context.Context, key string, ttl time.Duration) (oauth2refresh.Lease, error) {
	path, err := s.open(ctx, key, "locking", true)
	if err != nil {
		return nil, err
	}
	lockPath := path + ".lock"
	var f *os.File
	for {
		if f, err = os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
			return nil, fmt.Errorf("oauth2refresh: file store: opening lock file: %w", err)
		}
		if err := waitLock(ctx, f); err != nil {
			f.Close()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("oauth2refresh: file store: waiting for lock %s: %w", lockPath, err)
			}
			return nil, fmt.Errorf("oauth2refresh: file store: locking %s: %w", lockPath, err)
		}
		// A Release or Delete may have removed the lock file while this Lock waited on it:
		// the flock of a file no longer at lockPath excludes nobody, so take the one there.
		same, err := isAt(f, lockPath)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("oauth2refresh: file store: locking %s: %w", lockPath, err)
		}
		if same {
			break
		}
		f.Close()
	}
	tok, version, err := readTokenFile(key, path)
	if err != nil {
		f.Close() // releases the lock
		return nil, err
	}
	return &fileLease{key: key, path: path, lock: f, version: version, tok: tok}, nil
}

// isAt reports whether f, an open file, is the file at path (which may be missing).
func isAt(f *os.File, path string) (bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	at, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	}
	return os.SameFile(fi, at), nil
}

// fileLease is a held flock on a grant's lock file.
type fileLease struct {
	key, path string
	lock      *os.File      // the locked lock file; nil once released
	version   uint64        // version of the token file when locked or last saved; 0 if none
	tok       *oauth2.Token // stored token when locked
}

func (l *fileLease) Token() *oauth2.Token { return l.tok }

func (l *fileLease) Save(ctx context.Context, t *oauth2.Token) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("oauth2refresh: file store: saving token: %w", err)
	}
	if l.lock == nil {
		return fmt.Errorf("oauth2refresh: file store: save after release: %w", oauth2refresh.ErrLeaseLost)
	}
	if l.version == math.MaxUint64 {
		return fmt.Errorf("oauth2refresh: file store: %s: version %d cannot grow", l.path, l.version)
	}
	b, err := store.Encode(t, l.version+1)
	if err != nil {
		return err
	}
	dir, name := filepath.Split(l.path)
	tmp, err := writeTemp(dir, name, append(b, '\n'))
	if err != nil {
		return fmt.Errorf("oauth2refresh: file store: writing %s: %w", l.path, err)
	}
	// Under the lease no other process can have saved, but Delete may have removed the file:
	// check, under the directory's lock that Delete takes too, so that a deleted grant is not
	// saved back, and a file replaced or corrupted by hand is neither lost nor overwritten.
	unlock, err := lockDir(ctx, dir)
	if err != nil {
		os.Remove(tmp)
		return err
	}
	_, v, err := readTokenFile(l.key, l.path)
	switch {
	case err != nil:
	case v != l.version && v == 0:
		err = fmt.Errorf("oauth2refresh: file store: %s was deleted under the lease: %w", l.path, oauth2refresh.ErrLeaseLost)
	case v != l.version:
		err = fmt.Errorf("oauth2refresh: file store: %s changed under the lock (version %d, expected %d): %w",
			l.path, v, l.version, oauth2refresh.ErrLeaseLost)
	default:
		if err = os.Rename(tmp, l.path); err != nil {
			err = fmt.Errorf("oauth2refresh: file store: writing %s: %w", l.path, err)
		}
	}
	unlock()
	if err != nil {
		os.Remove(tmp)
		return err
	}
	l.version++
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("oauth2refresh: file store: writing %s: %w", l.path, err)
	}
	return nil
}

// Delete implements oauth2refresh.Store: it removes key's token file and lock file, under the
// directory's lock that Lease.Save takes to check the file's version: a lease held meanwhile on a
// stored token can no longer save (oauth2refresh.ErrLeaseLost), and its Release removes the lock
// file. It does not wait for the lease.
func (s *Store) Delete(ctx context.Context, key string) error {
	path, err := s.open(ctx, key, "deleting", false)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	unlock, err := lockDir(ctx, dir)
	if err != nil {
		return err
	}
	err = os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if lerr := removeLockFile(path + ".lock"); err == nil {
		err = lerr
	}
	unlock()
	if err != nil {
		return fmt.Errorf("oauth2refresh: file store: deleting %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("oauth2refresh: file store: deleting %s: %w", path, err)
	}
	return nil
}

var _ oauth2refresh.Store = (*Store)(nil)

// removeLockFile removes the lock file at lockPath unless a lease holds it (its Release then
// removes it), taking its flock without waiting, so that no Lock waiting on it can hold it
// once it is removed (see Lock). A missing lock file is no error. Delete calls it under the
// directory's lock.
func removeLockFile(lockPath string) error {
	f, err := os.OpenFile(lockPath, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close() // releases the flock, after the removal
	if ok, err := tryLock(f); err != nil || !ok {
		return err
	}
	if same, err := isAt(f, lockPath); err != nil || !same {
		return err // another Lock made a new one: its Release removes it
	}
	if err := os.Remove(lockPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// lockDir takes an exclusive flock(2) on the directory dir, waiting until ctx is done, and
// returns the function that releases it. Lease.Save and Delete hold it for a read and a
// rename or remove.
func lockDir(ctx context.Context, dir string) (unlock func(), err error) {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return nil, fmt.Errorf("oauth2refresh: file store: %w", err)
	}
	if err := waitLock(ctx, d); err != nil {
		d.Close()
		return nil, fmt.Errorf("oauth2refresh: file store: locking directory %s: %w", dir, err)
	}
	return func() { d.Close() }, nil // closing the descriptor releases the flock
}

// waitLock takes an exclusive flock(2) on f, waiting until ctx is done.
func waitLock(ctx context.Context, f *os.File) error {
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		ok, err := tryLock(f)
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait): // since Go 1.23, an unfired timer needs no Stop
		}
	}
}

// Release closes the lock file, which releases its flock. When no token is stored (none ever
// was, or Delete removed it) it first removes the lock file, so that the grant leaves nothing
// in Dir. It does both under the directory's lock, as Delete removes the files, so that one of
// them sees the other's change: neither leaves a lock file behind.
func (l *fileLease) Release(ctx context.Context) error {
	if l.lock == nil {
		return nil
	}
	unlock, derr := lockDir(ctx, filepath.Dir(l.path))
	if derr == nil {
		if _, err := os.Lstat(l.path); errors.Is(err, fs.ErrNotExist) {
			os.Remove(l.lock.Name()) // under the flock: see Lock; a failure leaves an empty file
		}
	}
	err := l.lock.Close() // closing the last descriptor releases the flock
	l.lock = nil
	if derr == nil {
		unlock()
	}
	if err != nil {
		return fmt.Errorf("oauth2refresh: file store: releasing lock: %w", err)
	}
	return nil
}

// readTokenFile reads and decodes path; it returns nil, 0, nil if the file does not exist.
func readTokenFile(key, path string) (*oauth2.Token, uint64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("oauth2refresh: file store: reading %s: %w", path, err)
	}
	return store.Decode(key, path, b)
}

// writeTemp writes b to a new temporary file, mode 0600, in dir, named after name, syncs it and
// returns its path.
func writeTemp(dir, name string, b []byte) (path string, err error) {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*") // mode 0600
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(b); err != nil {
		return "", err
	}
	if err := tmp.Chmod(0o600); err != nil {
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return tmp.Name(), nil
}

// syncDir flushes dir, after a rename or remove in it, to disk. A directory that cannot be
// opened is no error: the change is done, only its durability is in doubt.
func syncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return nil
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory: %w", err)
	}
	return nil
}

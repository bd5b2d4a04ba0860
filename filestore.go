package oauth2refresh

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// FileStore is a Store that keeps each grant's token in a JSON file of its own, for the
// processes of one machine. It is the default store: no server to run.
//
// The token of key lives in Dir/KEY.json, where KEY is key with every byte other than ASCII
// letters, digits, '-', '_' and '.' (and a leading '.') written as %XX. A file is written
// whole to a temporary file in Dir, flushed to disk (fsync), then renamed over the old one and
// the directory flushed, so that a reader or a crash sees the old token or the new one, never
// a mix. Token files and lock files have mode 0600 and Dir 0700 when FileStore creates it:
// they hold refresh tokens.
//
// The lease is an advisory lock (flock(2)) on Dir/KEY.json.lock, which the kernel releases
// when its holder exits or dies: a crashed process frees the grant at once, and the ttl given
// to Lock is not needed. A process that hangs while holding it blocks the grant until it
// exits; the waiting Lock calls give up when their context ends. Every file also carries a
// version, incremented by each Save and checked before the next, so that a token is only ever
// replaced by one refreshed from it. flock does not work across NFS on every system: share a
// FileStore only between processes of one machine.
//
// A file that cannot be decoded (truncated, edited by hand) is reported as a
// *CorruptTokenError and never overwritten.
//
// FileStore needs flock(2): on systems without it (Windows), Lock returns an error.
type FileStore struct {
	// Dir is the directory of the token files. It is created, mode 0700, when missing. It
	// must not be empty.
	Dir string
}

var _ Store = (*FileStore)(nil)

// fileToken is the content of a token file.
type fileToken struct {
	// Version counts the saves of the grant: 1 after the first.
	Version      uint64    `json:"version"`
	AccessToken  string    `json:"access_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	ExpiresIn    int64     `json:"expires_in,omitempty"`
}

// paths returns the token file and the lock file of key.
func (s *FileStore) paths(key string) (tokenPath, lockPath string, err error) {
	if s.Dir == "" {
		return "", "", errors.New("oauth2refresh: file store: Dir is empty")
	}
	if key == "" {
		return "", "", errors.New("oauth2refresh: file store: empty key")
	}
	p := filepath.Join(s.Dir, fileName(key)+".json")
	return p, p + ".lock", nil
}

// fileName maps key to a file name: readable for plain keys, and never a path.
func fileName(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' && i > 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	name := b.String()
	if len(name) > 180 {
		// Keep names well under the usual 255-byte limit, with the suffixes added.
		sum := sha256.Sum256([]byte(key))
		name = name[:100] + "~" + hex.EncodeToString(sum[:16])
	}
	return name
}

// Load returns the token stored under key, or nil if there is none. A file that cannot be
// decoded is a *CorruptTokenError.
func (s *FileStore) Load(ctx context.Context, key string) (*oauth2.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path, _, err := s.paths(key)
	if err != nil {
		return nil, err
	}
	ft, err := readTokenFile(key, path)
	if err != nil || ft == nil {
		return nil, err
	}
	return ft.token(), nil
}

// Lock waits until it holds the flock of key's grant or ctx is done. ttl is not used: the
// kernel releases the lock of a process that exits.
func (s *FileStore) Lock(ctx context.Context, key string, ttl time.Duration) (Lease, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path, lockPath, err := s.paths(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("oauth2refresh: file store: %w", err)
	}
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("oauth2refresh: file store: opening lock file: %w", err)
	}
	wait := time.Millisecond
	for {
		ok, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("oauth2refresh: file store: locking %s: %w", lockPath, err)
		}
		if ok {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("oauth2refresh: file store: waiting for lock %s: %w", lockPath, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
	ft, err := readTokenFile(key, path)
	if err != nil {
		f.Close() // releases the lock
		return nil, err
	}
	l := &fileLease{key: key, path: path, lock: f}
	if ft != nil {
		l.version = ft.Version
		l.tok = ft.token()
	}
	return l, nil
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
		return err
	}
	if l.lock == nil {
		return fmt.Errorf("oauth2refresh: file store: save after release: %w", ErrLeaseLost)
	}
	if t == nil {
		return errors.New("oauth2refresh: file store: nil token")
	}
	// Under the lock no other process can have written; check anyway, so that a file
	// replaced or corrupted by hand is neither lost nor overwritten.
	cur, err := readTokenFile(l.key, l.path)
	if err != nil {
		return err
	}
	var v uint64
	if cur != nil {
		v = cur.Version
	}
	if v != l.version {
		return fmt.Errorf("oauth2refresh: file store: %s changed under the lock (version %d, expected %d): %w",
			l.path, v, l.version, ErrLeaseLost)
	}
	ft := fileToken{
		Version:      v + 1,
		AccessToken:  t.AccessToken,
		TokenType:    t.TokenType,
		RefreshToken: t.RefreshToken,
		Expiry:       t.Expiry,
		ExpiresIn:    t.ExpiresIn,
	}
	b, err := json.MarshalIndent(ft, "", "\t")
	if err != nil {
		return fmt.Errorf("oauth2refresh: file store: encoding token: %w", err)
	}
	if err := writeFileAtomic(l.path, append(b, '\n')); err != nil {
		return fmt.Errorf("oauth2refresh: file store: writing %s: %w", l.path, err)
	}
	l.version = ft.Version
	return nil
}

func (l *fileLease) Release(context.Context) error {
	if l.lock == nil {
		return nil
	}
	err := l.lock.Close() // closing the last descriptor releases the flock
	l.lock = nil
	if err != nil {
		return fmt.Errorf("oauth2refresh: file store: releasing lock: %w", err)
	}
	return nil
}

func (ft *fileToken) token() *oauth2.Token {
	return &oauth2.Token{
		AccessToken:  ft.AccessToken,
		TokenType:    ft.TokenType,
		RefreshToken: ft.RefreshToken,
		Expiry:       ft.Expiry,
		ExpiresIn:    ft.ExpiresIn,
	}
}

// readTokenFile reads and decodes path; it returns nil, nil if the file does not exist.
func readTokenFile(key, path string) (*fileToken, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("oauth2refresh: file store: reading %s: %w", path, err)
	}
	ft, err := decodeFileToken(b)
	if err != nil {
		return nil, &CorruptTokenError{Key: key, Location: path, Err: err}
	}
	return ft, nil
}

// decodeFileToken decodes and checks the content of a token file. Its errors never quote the
// content.
func decodeFileToken(b []byte) (*fileToken, error) {
	var ft fileToken
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&ft); err != nil {
		var syn *json.SyntaxError
		switch {
		case errors.Is(err, io.EOF):
			return nil, errors.New("empty file")
		case errors.Is(err, io.ErrUnexpectedEOF):
			// The input ended inside the object: a write that was cut short.
			return nil, fmt.Errorf("truncated JSON (%d bytes)", len(b))
		case errors.As(err, &syn):
			return nil, fmt.Errorf("invalid JSON at byte %d of %d", syn.Offset, len(b))
		default:
			return nil, errors.New("JSON of the wrong shape")
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("invalid JSON at byte %d of %d: data after the object", dec.InputOffset(), len(b))
	}
	switch {
	case ft.Version == 0:
		return nil, errors.New("no version")
	case ft.AccessToken == "" && ft.RefreshToken == "":
		return nil, errors.New("neither access token nor refresh token")
	}
	return &ft, nil
}

// writeFileAtomic replaces path with a file holding b, mode 0600: written to a temporary file
// in the same directory, synced, renamed over path, and the directory synced.
func writeFileAtomic(path string, b []byte) (err error) {
	dir, name := filepath.Split(path)
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*") // mode 0600
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(b); err != nil {
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return nil // the rename is done; only its durability is in doubt
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory: %w", err)
	}
	return nil
}

//go:build unix

package filestore_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store/filestore"
	"golang.org/x/oauth2"
)

func TestFileStoreUnsafeDir(t *testing.T) {
	ctx := context.Background()
	const otherUID = 54321 // a user id no one here runs as
	tests := []struct {
		name   string
		mode   fs.FileMode
		owner  int // -1: the current user
		unsafe bool
		why    string // what the error says
	}{
		{name: "private", mode: 0o700, owner: -1},
		{name: "readable by all", mode: 0o755, owner: -1},
		{name: "sticky, writable by all", mode: 0o777 | fs.ModeSticky, owner: -1, unsafe: true, why: "writable by group or others (mode 0777)"},
		{name: "writable by group", mode: 0o770, owner: -1, unsafe: true, why: "writable by group or others (mode 0770)"},
		{name: "writable by others", mode: 0o702, owner: -1, unsafe: true, why: "writable by group or others (mode 0702)"},
		{name: "another owner", mode: 0o700, owner: otherUID, unsafe: true, why: "owned by user id 54321, not by the current user"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tokens")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tc.mode); err != nil {
				t.Fatal(err)
			}
			if tc.owner >= 0 {
				if os.Geteuid() != 0 {
					t.Skip("changing a directory's owner needs root")
				}
				if err := os.Chown(dir, tc.owner, -1); err != nil {
					t.Fatal(err)
				}
			}
			// A token file planted there.
			planted := []byte(`{"version":1,"refresh_token":"planted"}` + "\n")
			if err := os.WriteFile(filepath.Join(dir, "g.json"), planted, 0o600); err != nil {
				t.Fatal(err)
			}
			s := &filestore.Store{Dir: dir}
			tok, lerr := s.Load(ctx, "g")
			l, kerr := s.Lock(ctx, "g", time.Minute)
			if kerr == nil {
				l.Release(ctx)
			}
			serr := oauth2refresh.SaveToken(ctx, s, "g", &oauth2.Token{AccessToken: "at"})
			if !tc.unsafe {
				if lerr != nil || tok == nil || tok.RefreshToken != "planted" {
					t.Errorf("Load = %v, %v; want the token", tok, lerr)
				}
				if kerr != nil {
					t.Errorf("Lock: %v", kerr)
				}
				if serr != nil {
					t.Errorf("SaveToken: %v", serr)
				}
				return
			}
			if tok != nil || l != nil {
				t.Errorf("Load or Lock returned a token or a lease from an unsafe directory")
			}
			for what, err := range map[string]error{"Load": lerr, "Lock": kerr, "SaveToken": serr} {
				var ue *filestore.UnsafeDirError
				if !errors.As(err, &ue) {
					t.Errorf("%s = %v, want an *UnsafeDirError", what, err)
					continue
				}
				if ue.Dir != dir || ue.Mode.Perm() != tc.mode.Perm() {
					t.Errorf("%s: UnsafeDirError{Dir: %q, Mode: %v}, want %q, %v", what, ue.Dir, ue.Mode, dir, tc.mode)
				}
				if tc.owner >= 0 && (ue.Owner != tc.owner || ue.User != os.Geteuid()) {
					t.Errorf("%s: UnsafeDirError{Owner: %d, User: %d}, want %d, %d", what, ue.Owner, ue.User, tc.owner, os.Geteuid())
				}
				if !strings.HasPrefix(err.Error(), "oauth2refresh: ") || !strings.Contains(err.Error(), tc.why) {
					t.Errorf("%s: error %q does not say %q", what, err, tc.why)
				}
			}
			if b, err := os.ReadFile(filepath.Join(dir, "g.json")); err != nil || string(b) != string(planted) {
				t.Errorf("token file changed to %q (%v)", b, err)
			}
			if _, err := os.Stat(filepath.Join(dir, "g.json.lock")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("lock file created in an unsafe directory: %v", err)
			}
		})
	}
}

func TestFileStoreMissingDir(t *testing.T) {
	// A missing Dir holds no token, and the first Lock creates it, mode 0700.
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "a", "tokens")
	s := &filestore.Store{Dir: dir}
	if tok, err := s.Load(ctx, "g"); tok != nil || err != nil {
		t.Fatalf("Load = %v, %v; want nil, nil", tok, err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load created Dir: %v", err)
	}
	l, err := s.Lock(ctx, "g", time.Minute)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	l.Release(ctx)
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("Dir after Lock: %v, %v; want mode 0700", fi, err)
	}
}

func TestFileStoreCanceled(t *testing.T) {
	// A done context is reported as the store's error, wrapping the context's.
	s := &filestore.Store{Dir: t.TempDir()}
	l, err := s.Lock(context.Background(), "g", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(context.Background())
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	_, lerr := s.Load(canceled, "g")
	_, kerr := s.Lock(canceled, "g", time.Minute)
	serr := l.Save(canceled, &oauth2.Token{AccessToken: "at"})
	for what, err := range map[string]error{"Load": lerr, "Lock": kerr, "Save": serr} {
		if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "oauth2refresh: file store: ") {
			t.Errorf("%s = %v, want an oauth2refresh: file store: error wrapping context.Canceled", what, err)
		}
	}
}

package filestore_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store"
	"github.com/tokenkit/oauth2refresh/store/filestore"
	"github.com/tokenkit/oauth2refresh/store/storetest"
	"golang.org/x/oauth2"
)

func TestFileStore(t *testing.T) {
	// The stored format and damaged files: TestFileStoreFiles, TestFileStoreCorrupt.
	dir := t.TempDir()
	storetest.TestStore(t, &filestore.Store{Dir: dir}, storetest.Options{Contents: dirContents(dir)})
}

// dirContents lists the names of the files in dir, for storetest.Options.Contents.
func dirContents(dir string) func(context.Context) ([]string, error) {
	return func(context.Context) ([]string, error) {
		entries, err := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names, err
	}
}

func TestFileStoreFiles(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "tokens")
	s := &filestore.Store{Dir: dir}
	tests := []struct {
		key, file string
	}{
		{"tenant-42", "tenant-42.json"},
		{"xero/tenant 7", "xero%2Ftenant%207.json"},
		{"../../etc/passwd", "%2E.%2F..%2Fetc%2Fpasswd.json"},
		{".hidden", "%2Ehidden.json"},
		{"a.b_c", "a.b_c.json"},
		{"Tenant-42", "%54enant-42.json"},
		{"%41", "%2541.json"},
		{"é", "%C3%A9.json"},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			tok := &oauth2.Token{AccessToken: "at", RefreshToken: "rt", TokenType: "Bearer",
				Expiry: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), ExpiresIn: 60}
			if err := oauth2refresh.SaveToken(ctx, s, tc.key, tok); err != nil {
				t.Fatalf("SaveToken: %v", err)
			}
			path := filepath.Join(dir, tc.file)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatalf("token file: %v", err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("token file mode = %v, want 0600", fi.Mode().Perm())
			}
			if fi, err := os.Stat(path + ".lock"); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("lock file: %v, %v; want mode 0600", fi, err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("token file is not JSON: %v", err)
			}
			want := map[string]any{
				"version":       1.0,
				"access_token":  "at",
				"token_type":    "Bearer",
				"refresh_token": "rt",
				"expiry":        "2030-01-01T00:00:00Z",
				"expires_in":    60.0,
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("token file mismatch (-want +got):\n%s", diff)
			}
		})
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("Dir mode = %v, want 0700", fi.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
	if len(entries) != 2*len(tests) {
		t.Errorf("Dir holds %d files, want %d", len(entries), 2*len(tests))
	}
}

func TestFileStoreKeysDifferingInCase(t *testing.T) {
	// On a file system that ignores case (macOS's and Windows' defaults) two names that are
	// equal under strings.EqualFold are one file: every key must get a name of its own.
	ctx := context.Background()
	long := strings.Repeat("x", 200)
	keys := []string{
		"tenant", "Tenant", "TENANT",
		"a", "A", "%41", "%61", "%2541", "%2561",
		"kn", "kN", "k%4e", "k%4E",
		"é", "É",
		long + "tenant", long + "Tenant", // names cut short and hashed
		"Tenant" + long, "tenant" + long,
	}
	dir := t.TempDir()
	s := &filestore.Store{Dir: dir}
	for i, key := range keys {
		tok := &oauth2.Token{AccessToken: fmt.Sprintf("at-%d", i), RefreshToken: fmt.Sprintf("rt-%d", i)}
		if err := oauth2refresh.SaveToken(ctx, s, key, tok); err != nil {
			t.Fatalf("SaveToken(%q): %v", key, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			names = append(names, e.Name())
		}
	}
	if len(names) != len(keys) {
		t.Fatalf("%d token files for %d keys: %q", len(names), len(keys), names)
	}
	for i, a := range names {
		for _, b := range names[i+1:] {
			if strings.EqualFold(a, b) {
				t.Errorf("token files %q and %q are one file where case is ignored", a, b)
			}
		}
	}
	for i, key := range keys {
		got, err := s.Load(ctx, key)
		if err != nil {
			t.Fatalf("Load(%q): %v", key, err)
		}
		want := &oauth2.Token{AccessToken: fmt.Sprintf("at-%d", i), RefreshToken: fmt.Sprintf("rt-%d", i)}
		if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(oauth2.Token{})); diff != "" {
			t.Errorf("Load(%q) mismatch (-want +got):\n%s", key, diff)
		}
	}
}

func TestFileStoreCorrupt(t *testing.T) {
	ctx := context.Background()
	const secret = "SECRET-refresh-token"
	full := `{"version": 3, "access_token": "at", "refresh_token": "` + secret + `"}`
	tests := []struct {
		name, content string
		why           string // what the error says is wrong
	}{
		{"empty", "", "empty"},
		{"truncated", full[:len(full)-10], "truncated JSON"},
		{"garbage", "\x00\x01" + secret, "invalid JSON at byte 1 of"},
		{"not an object", `["` + secret + `"]`, "JSON of the wrong shape"},
		{"no version", `{"access_token": "at", "refresh_token": "` + secret + `"}`, "no version"},
		{"no token", `{"version": 2}`, "neither access token nor refresh token"},
		{"wrong type", `{"version": "` + secret + `"}`, "JSON of the wrong shape"},
		{"trailing garbage", full + "x", "data after the object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := &filestore.Store{Dir: dir}
			path := filepath.Join(dir, "grant.json")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			checkErr := func(what string, err error) {
				t.Helper()
				var ce *store.CorruptTokenError
				if !errors.As(err, &ce) {
					t.Fatalf("%s = %v, want a *store.CorruptTokenError", what, err)
				}
				if ce.Key != "grant" || ce.Location != path {
					t.Errorf("%s: store.CorruptTokenError{Key: %q, Location: %q}, want %q, %q", what, ce.Key, ce.Location, "grant", path)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("%s: error message quotes the file: %v", what, err)
				}
				if !strings.Contains(err.Error(), tc.why) {
					t.Errorf("%s: error %q does not say %q", what, err, tc.why)
				}
			}
			tok, err := s.Load(ctx, "grant")
			if tok != nil {
				t.Errorf("Load returned a token: %v", tok)
			}
			checkErr("Load", err)
			l, err := s.Lock(ctx, "grant", time.Minute)
			if l != nil {
				t.Errorf("Lock returned a lease")
			}
			checkErr("Lock", err)
			err = oauth2refresh.SaveToken(ctx, s, "grant", &oauth2.Token{AccessToken: "new"})
			checkErr("SaveToken", err)
			// The lock was not kept by the failed Lock calls.
			short, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if _, err := s.Lock(short, "grant", time.Minute); errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("the failed Lock kept the lock")
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.content {
				t.Errorf("the corrupt file was changed to %q", b)
			}
		})
	}
}

func TestFileStoreChangedUnderLock(t *testing.T) {
	// A file replaced behind the lock's back (by hand, or by a process not using the lock)
	// is neither lost nor overwritten.
	ctx := context.Background()
	dir := t.TempDir()
	s := &filestore.Store{Dir: dir}
	if err := oauth2refresh.SaveToken(ctx, s, "g", &oauth2.Token{AccessToken: "one"}); err != nil {
		t.Fatal(err)
	}
	l, err := s.Lock(ctx, "g", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	other := []byte(`{"version": 7, "access_token": "other"}`)
	path := filepath.Join(dir, "g.json")
	if err := os.WriteFile(path, other, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.Save(ctx, &oauth2.Token{AccessToken: "two"}); !errors.Is(err, oauth2refresh.ErrLeaseLost) {
		t.Errorf("Save = %v, want ErrLeaseLost", err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, other) {
		t.Errorf("file overwritten: %s", b)
	}
}

func TestFileStoreErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := (&filestore.Store{}).Load(ctx, "k"); err == nil {
		t.Errorf("Load with empty Dir succeeded")
	}
	if _, err := (&filestore.Store{Dir: t.TempDir()}).Lock(ctx, "", time.Minute); err == nil {
		t.Errorf("Lock with empty key succeeded")
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := (&filestore.Store{Dir: t.TempDir()}).Lock(canceled, "k", time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("Lock with canceled ctx = %v, want context.Canceled", err)
	}
}

// The child process of TestFileStoreLockReleasedWhenHolderDies: it takes the lock, says so,
// and waits to be killed.
func init() {
	dir := os.Getenv("OAUTH2REFRESH_TEST_FILESTORE_HOLDER")
	if dir == "" {
		return
	}
	l, err := (&filestore.Store{Dir: dir}).Lock(context.Background(), "grant", time.Minute)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	if err := l.Save(context.Background(), &oauth2.Token{AccessToken: "from-child"}); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	time.Sleep(time.Minute)
	os.Exit(2)
}

func TestFileStoreLockReleasedWhenHolderDies(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "OAUTH2REFRESH_TEST_FILESTORE_HOLDER="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "locked\n" {
		t.Fatalf("child said %q, want %q", line, "locked\n")
	}
	s := &filestore.Store{Dir: dir}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := s.Lock(short, "grant", time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock while another process holds it = %v, want DeadlineExceeded", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	l, err := s.Lock(ctx, "grant", time.Minute)
	if err != nil {
		t.Fatalf("Lock after the holder died: %v", err)
	}
	defer l.Release(ctx)
	if got := l.Token(); got == nil || got.AccessToken != "from-child" {
		t.Errorf("Lease.Token = %v, want the child's token", got)
	}
}

// FuzzFileStoreLoad: whatever a token file holds, Load either returns a token that survives a
// save and a load unchanged, or a *store.CorruptTokenError; it never panics.
func FuzzFileStoreLoad(f *testing.F) {
	f.Add([]byte(`{"version": 1, "access_token": "at", "token_type": "Bearer", "refresh_token": "rt", "expiry": "2030-01-01T00:00:00Z", "expires_in": 60}`))
	f.Add([]byte(`{"version": 2, "refresh_token": "rt"}`))
	f.Add([]byte(`{"version": 1, "access_token": "at", "expiry": "not a time"}`))
	f.Add([]byte(`{"version": -1, "access_token": "at"}`))
	f.Add([]byte(`{"version": 1, "access_token": "at"`))
	f.Add([]byte(``))
	dir := f.TempDir()
	s := &filestore.Store{Dir: dir}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, content []byte) {
		if err := os.WriteFile(filepath.Join(dir, "k.json"), content, 0o600); err != nil {
			t.Fatal(err)
		}
		tok, err := s.Load(ctx, "k")
		if err != nil {
			var ce *store.CorruptTokenError
			if !errors.As(err, &ce) {
				t.Fatalf("Load = %v, want a *store.CorruptTokenError", err)
			}
			return
		}
		if tok == nil {
			t.Fatal("Load returned neither a token nor an error")
		}
		if err := oauth2refresh.SaveToken(ctx, s, "k", tok); err != nil {
			t.Fatalf("SaveToken of a loaded token: %v", err)
		}
		again, err := s.Load(ctx, "k")
		if err != nil {
			t.Fatalf("Load after SaveToken: %v", err)
		}
		if diff := cmp.Diff(tok, again, cmpopts.IgnoreUnexported(oauth2.Token{})); diff != "" {
			t.Errorf("token changed by a save and a load (-first +second):\n%s", diff)
		}
	})
}

func TestFileStoreDelete(t *testing.T) {
	// Delete removes the token file and the lock file; its errors are those of the other
	// methods. (storetest's Delete and Leftovers check the rest.)
	ctx := context.Background()
	dir := t.TempDir()
	s := &filestore.Store{Dir: dir}
	if err := oauth2refresh.SaveToken(ctx, s, "g", &oauth2.Token{AccessToken: "at"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "g"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	var names []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string(nil), names); diff != "" {
		t.Errorf("files after Delete (-want +got):\n%s", diff)
	}

	missing := filepath.Join(dir, "missing")
	if err := (&filestore.Store{Dir: missing}).Delete(ctx, "g"); err != nil {
		t.Errorf("Delete in a Dir that does not exist: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Delete created Dir: %v", err)
	}
	if err := (&filestore.Store{}).Delete(ctx, "g"); err == nil {
		t.Errorf("Delete with empty Dir succeeded")
	}
	if err := s.Delete(ctx, ""); err == nil {
		t.Errorf("Delete with empty key succeeded")
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Delete(canceled, "g"); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete with canceled ctx = %v, want context.Canceled", err)
	}
	if runtime.GOOS != "windows" {
		unsafe := t.TempDir()
		if err := os.Chmod(unsafe, 0o777); err != nil {
			t.Fatal(err)
		}
		var ue *filestore.UnsafeDirError
		if err := (&filestore.Store{Dir: unsafe}).Delete(ctx, "g"); !errors.As(err, &ue) {
			t.Errorf("Delete in a world-writable Dir = %v, want an *UnsafeDirError", err)
		}
	}
}

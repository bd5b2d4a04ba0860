//go:build unix

package oauth2refresh_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh"
)

// TestAssertionFileNotRegular: an AssertionFile naming a FIFO that no process writes to, or a
// device, is refused at once with a clear error, well within the request's deadline, and no
// request is sent; a regular file behind symlinks, as Kubernetes projects a service account
// token (token -> ..data/token, ..data -> ..2026_12_08), is read.
func TestAssertionFileNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// A safety net for a reader blocked in open(2): a writer comes, and goes, after 3 s.
	unblock := time.AfterFunc(3*time.Second, func() {
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
	})
	defer unblock.Stop()
	for _, tc := range []struct{ name, file string }{
		{"FIFO without a writer", fifo},
		{"character device", os.DevNull},
		{"directory", dir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example.com/token", ClientID: epClientID, HTTPClient: epNoRequest(t),
				AuthMethod: oauth2refresh.AuthPrivateKeyJWT, Assertion: oauth2refresh.AssertionFile(tc.file)}
			const deadline = 500 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			_, err := e.Refresh(ctx, epRefresh)
			took := time.Since(start)
			var pe *os.PathError
			if !errors.As(err, &pe) || pe.Path != tc.file || !strings.Contains(err.Error(), "making the client assertion: ") ||
				!strings.Contains(err.Error(), "not a regular file") {
				t.Fatalf("Refresh: %v, want an *fs.PathError of %s saying it is not a regular file", err, tc.file)
			}
			if took >= deadline/2 {
				t.Errorf("Refresh took %v, want an answer at once, not at the %v deadline", took, deadline)
			}
			epCheckMessage(t, err)
		})
	}
	t.Run("request already out of time", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(file, []byte("token"), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), -time.Second)
		defer cancel()
		_, err := oauth2refresh.AssertionFile(file).Assertion(ctx, oauth2refresh.AssertionRequest{})
		var pe *os.PathError
		if !errors.As(err, &pe) || pe.Path != file || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Assertion: %v, want an *fs.PathError of %s wrapping context.DeadlineExceeded", err, file)
		}
	})
	t.Run("regular file behind symlinks", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "..2026_12_08"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "..2026_12_08", "token"), []byte("projected-token\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("..2026_12_08", filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..data", "token"), filepath.Join(dir, "token")); err != nil {
			t.Fatal(err)
		}
		got, err := oauth2refresh.AssertionFile(filepath.Join(dir, "token")).Assertion(context.Background(), oauth2refresh.AssertionRequest{})
		if err != nil || got != "projected-token" {
			t.Errorf("Assertion = %q, %v, want %q", got, err, "projected-token")
		}
	})
}

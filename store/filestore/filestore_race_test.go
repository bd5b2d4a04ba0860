package filestore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store/filestore"
	"golang.org/x/oauth2"
)

// lockRounds takes the lease of one grant of the Store in dir n times, as one of several
// goroutines or processes doing the same. Under each lease it creates the file held in marks
// with O_EXCL, which fails if another holds a lease at the same moment, and removes it before
// Release. The rounds save the grant, delete it under the lease, and delete it between leases,
// so that lock files are removed while others wait on them.
func lockRounds(dir, marks string, n int) error {
	ctx := context.Background()
	s := &filestore.Store{Dir: dir}
	held := filepath.Join(marks, "held")
	for i := range n {
		l, err := s.Lock(ctx, "grant", time.Minute)
		if err != nil {
			return fmt.Errorf("round %d: Lock: %w", i, err)
		}
		f, err := os.OpenFile(held, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			l.Release(ctx)
			return fmt.Errorf("round %d: two leases held at once: %w", i, err)
		}
		f.Close()
		switch i % 4 {
		case 1:
			// ErrLeaseLost: another deleted the grant under this lease.
			if err := l.Save(ctx, &oauth2.Token{AccessToken: "at-" + strconv.Itoa(i)}); err != nil && !errors.Is(err, oauth2refresh.ErrLeaseLost) {
				l.Release(ctx)
				return fmt.Errorf("round %d: Save: %w", i, err)
			}
		case 2:
			if err := s.Delete(ctx, "grant"); err != nil {
				return fmt.Errorf("round %d: Delete under the lease: %w", i, err)
			}
		}
		if err := os.Remove(held); err != nil {
			return fmt.Errorf("round %d: %w", i, err)
		}
		if err := l.Release(ctx); err != nil {
			return fmt.Errorf("round %d: Release: %w", i, err)
		}
		if i%4 == 3 {
			if err := s.Delete(ctx, "grant"); err != nil {
				return fmt.Errorf("round %d: Delete: %w", i, err)
			}
		}
	}
	return nil
}

// The child process of TestFileStoreLockExclusiveWhileDeleted: it runs lockRounds and says
// "ok" or what went wrong.
func init() {
	dir := os.Getenv("OAUTH2REFRESH_TEST_FILESTORE_ROUNDS")
	if dir == "" {
		return
	}
	if err := lockRounds(dir, os.Getenv("OAUTH2REFRESH_TEST_FILESTORE_MARKS"), fileStoreRounds); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("ok")
	os.Exit(0)
}

const fileStoreRounds = 100

// TestFileStoreLockExclusiveWhileDeleted runs lockRounds in three processes and three
// goroutines at once on one grant: Release removes the lock file of a grant without token, and
// Delete removes it too, while others wait on it; a Lock must then take the file at the path,
// never hold a flock on a removed one while another holds the new one. At the end, the grant
// deleted, the directory is empty.
func TestFileStoreLockExclusiveWhileDeleted(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Store needs flock(2)")
	}
	dir, marks := t.TempDir(), t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "OAUTH2REFRESH_TEST_FILESTORE_ROUNDS="+dir, "OAUTH2REFRESH_TEST_FILESTORE_MARKS="+marks)
		wg.Go(func() {
			out, err := cmd.CombinedOutput()
			if err != nil || string(out) != "ok\n" {
				errs <- fmt.Errorf("child process: %v: %s", err, out)
			}
		})
	}
	for range 3 {
		wg.Go(func() {
			if err := lockRounds(dir, marks, fileStoreRounds); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := (&filestore.Store{Dir: dir}).Delete(context.Background(), "grant"); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("%s left in the directory", e.Name())
	}
}

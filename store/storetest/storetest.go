package storetest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh"
	"golang.org/x/oauth2"
)

// Options say what TestStore may expect of a store. The zero value suits a store whose leases
// last as long as their holder and whose values are not reachable past the Store interface.
type Options struct {
	// LeasesExpire says that a lease lapses once the ttl given to Lock has passed, even while
	// its holder lives, as in stores kept on a server (the Redis and PostgreSQL stores). TestStore
	// then also checks that a lapsed lease which another holder took over cannot save, and that
	// one nobody took over still can. Leave it false for a store whose lease lasts as long as
	// its holder, as filestore.Store's flock(2) does.
	LeasesExpire bool

	// Raw, if not nil, reaches the values the store keeps, for a store that keeps them in the
	// format of store.Encode and decodes them with store.Decode.
	// TestStore then also checks that format and how a damaged value is reported.
	Raw *Raw

	// Contents, if not nil, lists everything the store keeps, past the Store interface: the
	// names of its files, its keys on the server, the keys of its rows. TestStore compares
	// lists taken before and after operations on keys of its own, so nothing else may change
	// the store meanwhile (give it a directory, a key prefix or a table of its own). It then
	// also checks that a key which never held a token leaves nothing (a Lock and Release of
	// it, unknown keys asked for through a TokenSource and a Manager), and that Delete leaves
	// nothing of a grant.
	Contents func(ctx context.Context) ([]string, error)
}

// TestStore checks that s keeps the promises of oauth2refresh.Store and Lease, each in a
// subtest of t. It takes keys of its own, unique to the run (they start with "storetest-"),
// and leaves their tokens behind: give it a store, or a key prefix, kept for tests. It takes
// a few seconds at most; with LeasesExpire it waits for leases of less than a second to lapse.
func TestStore(t *testing.T, s oauth2refresh.Store, o Options) {
	ctx := context.Background()
	tok := func(n int) *oauth2.Token {
		return (&oauth2.Token{
			AccessToken:  "at-" + strconv.Itoa(n),
			TokenType:    "Bearer",
			RefreshToken: "rt-" + strconv.Itoa(n),
			Expiry:       time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC),
			ExpiresIn:    3600,
		}).WithExtra(map[string]any{"id_token": "id-" + strconv.Itoa(n)})
	}
	want := func(n int) *oauth2.Token { // tok(n) as it comes back, Extra aside (see checkToken)
		t := tok(n)
		return &oauth2.Token{AccessToken: t.AccessToken, TokenType: t.TokenType,
			RefreshToken: t.RefreshToken, Expiry: t.Expiry, ExpiresIn: t.ExpiresIn}
	}
	check := func(t *testing.T, what string, want, got *oauth2.Token) {
		t.Helper()
		checkToken(t, what, want, got)
	}

	t.Run("RoundTrip", func(t *testing.T) {
		key := newKey(t)
		got, err := s.Load(ctx, key)
		if err != nil || got != nil {
			t.Fatalf("Load of a new key = %v, %v; want nil, nil", got, err)
		}
		l, err := s.Lock(ctx, key, time.Minute)
		if err != nil {
			t.Fatalf("Lock: %v", err)
		}
		if l.Token() != nil {
			t.Errorf("Lease.Token of a new key = %v, want nil", l.Token())
		}
		if err := l.Save(ctx, tok(1)); err != nil {
			t.Fatalf("Save: %v", err)
		}
		got, err = s.Load(ctx, key)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		check(t, "Load after Save", want(1), got)
		if err := l.Save(ctx, tok(2)); err != nil {
			t.Fatalf("second Save under one lease: %v", err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatalf("Release: %v", err)
		}
		if err := l.Release(ctx); err != nil {
			t.Errorf("second Release: %v", err)
		}
		if err := l.Save(ctx, tok(3)); !errors.Is(err, oauth2refresh.ErrLeaseLost) {
			t.Errorf("Save after Release = %v, want ErrLeaseLost", err)
		}
		l, err = s.Lock(ctx, key, time.Minute)
		if err != nil {
			t.Fatalf("Lock: %v", err)
		}
		defer l.Release(ctx)
		check(t, "Lease.Token", want(2), l.Token())
	})

	t.Run("NoExpiry", func(t *testing.T) {
		key := newKey(t)
		in := &oauth2.Token{AccessToken: "a", RefreshToken: "r"}
		if err := oauth2refresh.SaveToken(ctx, s, key, in); err != nil {
			t.Fatalf("SaveToken: %v", err)
		}
		got, err := s.Load(ctx, key)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		check(t, "Load", in, got)
	})

	t.Run("Exclusion", func(t *testing.T) {
		key, other := newKey(t), newKey(t)
		l, err := s.Lock(ctx, key, time.Minute)
		if err != nil {
			t.Fatalf("Lock: %v", err)
		}
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if l2, err := s.Lock(short, key, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
			if err == nil {
				l2.Release(ctx)
			}
			t.Fatalf("Lock while held = %v, want an error wrapping context.DeadlineExceeded", err)
		}
		l3, err := s.Lock(ctx, other, time.Minute)
		if err != nil {
			t.Fatalf("Lock of another key while the first is held: %v", err)
		}
		l3.Release(ctx)
		l.Release(ctx)
		l, err = s.Lock(ctx, key, time.Minute)
		if err != nil {
			t.Fatalf("Lock after Release: %v", err)
		}
		l.Release(ctx)
	})

	t.Run("Counter", func(t *testing.T) {
		// Each goroutine reads the count under the lease and saves count+1: with mutual
		// exclusion no increment is lost.
		key := newKey(t)
		const n = 10
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- func() error {
					l, err := s.Lock(ctx, key, time.Minute)
					if err != nil {
						return err
					}
					defer l.Release(ctx)
					c := 0
					if cur := l.Token(); cur != nil {
						if c, err = strconv.Atoi(cur.AccessToken); err != nil {
							return err
						}
					}
					return l.Save(ctx, &oauth2.Token{AccessToken: strconv.Itoa(c + 1)})
				}()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		got, err := s.Load(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if got == nil || got.AccessToken != strconv.Itoa(n) {
			t.Errorf("count = %v, want %d", got, n)
		}
	})

	t.Run("ExclusionNeverSaved", func(t *testing.T) {
		// Leases on a key that holds no token, taken and released by goroutines in turn: a
		// store that removes what it kept of the key on Release (a lock file, a fence, a row)
		// must still grant one lease at a time.
		key := newKey(t)
		var holders atomic.Int32
		var wg sync.WaitGroup
		const goroutines, rounds = 4, 25
		errs := make(chan error, goroutines*(rounds+1)) // never full: at most one a round, and one more
		for range goroutines {
			wg.Go(func() {
				for range rounds {
					l, err := s.Lock(ctx, key, time.Minute)
					if err != nil {
						errs <- err
						return
					}
					if n := holders.Add(1); n != 1 {
						errs <- fmt.Errorf("%d leases held at once on a key never saved", n)
					}
					runtime.Gosched()
					holders.Add(-1)
					if err := l.Release(ctx); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	t.Run("DeadMark", func(t *testing.T) { deadMarkRoundTrip(t, s, o.Raw) })
	t.Run("Delete", func(t *testing.T) { deleteGrant(t, s) })

	if o.Contents != nil {
		t.Run("Leftovers", func(t *testing.T) { leftovers(t, s, o.Contents) })
	}
	if o.Raw != nil {
		t.Run("StoredFormat", func(t *testing.T) { storedFormat(t, s, *o.Raw) })
		t.Run("CorruptValue", func(t *testing.T) { corruptValue(t, s, *o.Raw) })
	}

	if !o.LeasesExpire {
		return
	}

	// takeOver stores tok(1) under a new key, and returns it with a lease of 200 ms whose
	// holder "hangs", and the lease the next Lock gets once that one lapsed.
	takeOver := func(t *testing.T) (key string, slow, next oauth2refresh.Lease) {
		t.Helper()
		key = newKey(t)
		if err := oauth2refresh.SaveToken(ctx, s, key, tok(1)); err != nil {
			t.Fatal(err)
		}
		slow, err := s.Lock(ctx, key, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		next, err = s.Lock(ctx, key, time.Minute)
		if err != nil {
			t.Fatalf("Lock after the lease lapsed: %v", err)
		}
		return key, slow, next
	}

	t.Run("LapsedLeaseIsFenced", func(t *testing.T) {
		key, slow, next := takeOver(t)
		check(t, "next.Token", want(1), next.Token())
		if err := next.Save(ctx, tok(2)); err != nil {
			t.Fatal(err)
		}
		if err := slow.Save(ctx, tok(3)); !errors.Is(err, oauth2refresh.ErrLeaseLost) {
			t.Errorf("Save by the lapsed holder = %v, want ErrLeaseLost", err)
		}
		if err := slow.Release(ctx); err != nil {
			t.Errorf("Release of a lapsed lease: %v", err)
		}
		// The lapsed holder's Release must not free the new holder's lease.
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if l, err := s.Lock(short, key, time.Minute); err == nil {
			l.Release(ctx)
			t.Errorf("Lock succeeded while the new lease is held")
		}
		next.Release(ctx)
		got, err := s.Load(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "stored", want(2), got)
	})

	t.Run("LapsedLeaseIsFencedByDeadMark", func(t *testing.T) {
		// A dead mark saved by the holder that took over is not overwritten by the lapsed one.
		key, slow, next := takeOver(t)
		if err := next.Save(ctx, deadMark(t)); err != nil {
			t.Fatalf("Save of a dead mark: %v", err)
		}
		next.Release(ctx)
		if err := slow.Save(ctx, tok(2)); !errors.Is(err, oauth2refresh.ErrLeaseLost) {
			t.Errorf("Save by the lapsed holder = %v, want ErrLeaseLost", err)
		}
		slow.Release(ctx)
		got, err := s.Load(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		checkDeadMark(t, "Load", got)
	})

	t.Run("LapsedLeaseNotRetaken", func(t *testing.T) {
		// A lease that lapsed without anyone taking the grant over may still save: the token
		// it holds is the newest, and dropping it would lose a rotated refresh token.
		key := newKey(t)
		l, err := s.Lock(ctx, key, 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(150 * time.Millisecond)
		if err := l.Save(ctx, tok(1)); err != nil {
			t.Errorf("Save after the lease lapsed, not retaken: %v", err)
		}
		l.Release(ctx)
		got, err := s.Load(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "stored", want(1), got)
	})
}

// run makes keys unique to one run of the test binary, so that runs sharing a server do not
// meet.
var run = strconv.FormatInt(time.Now().UnixNano(), 36)

// keys counts the keys given out in this run.
var keys atomic.Int64

// newKey returns a key used by nothing else: it names the run and the (sub)test.
func newKey(t testing.TB) string {
	return fmt.Sprintf("storetest-%s/%s/%d", run, t.Name(), keys.Add(1))
}

// checkToken reports an error unless got holds what every Store keeps of want: every field but
// Extra, the expiry compared as an instant. (A store in the stored-token format also keeps
// Extra: see storedFormat.)
func checkToken(t *testing.T, what string, want, got *oauth2.Token) {
	t.Helper()
	if w, g := kept(want), kept(got); w != g {
		t.Errorf("%s = %+v, want %+v", what, g, w)
	}
}

// stored is what a Store keeps of a token, in a form that == compares.
type stored struct {
	AccessToken, TokenType, RefreshToken string
	Expiry                               string // RFC 3339, UTC; empty for none
	ExpiresIn                            int64
	Nil                                  bool // no token at all
}

func kept(t *oauth2.Token) stored {
	if t == nil {
		return stored{Nil: true}
	}
	k := stored{AccessToken: t.AccessToken, TokenType: t.TokenType, RefreshToken: t.RefreshToken,
		ExpiresIn: t.ExpiresIn}
	if !t.Expiry.IsZero() {
		k.Expiry = t.Expiry.UTC().Format(time.RFC3339Nano)
	}
	return k
}

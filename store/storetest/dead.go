package storetest

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store"
	"golang.org/x/oauth2"
)

// deadJSON is the dead mark of the tests in the stored-token format: a WithStore TokenSource
// saves one when the server refuses the grant (see oauth2refresh.DeadGrantError).
const deadJSON = `{"version":1,"dead":{"reason":"invalid_grant","at":"2030-01-02T03:04:05Z"}}`

// deadMark returns the dead mark of deadJSON, as a Lease.Save is given one.
func deadMark(t *testing.T) *oauth2.Token {
	t.Helper()
	m, _, err := store.Decode("storetest", "", []byte(deadJSON))
	if err != nil {
		t.Fatalf("store.Decode of a dead mark: %v", err)
	}
	return m
}

// checkDeadMark reports an error unless got is the dead mark of deadJSON: a token without
// tokens, which the stored-token format writes as that mark.
func checkDeadMark(t *testing.T, what string, got *oauth2.Token) {
	t.Helper()
	if got == nil {
		t.Errorf("%s = nil, want the dead mark", what)
		return
	}
	b, err := store.Encode(got, 1)
	if err != nil || string(b) != deadJSON {
		t.Errorf("%s = %s (%v), want the dead mark %s: the store must keep the token's Extra values", what, b, err, deadJSON)
	}
}

// deadMarkRoundTrip checks that a dead mark saved over a token comes back from Load and
// Lease.Token, that a token saved over it revives the grant, and, for a store in the
// stored-token format (raw not nil), that the mark is stored in it.
func deadMarkRoundTrip(t *testing.T, s oauth2refresh.Store, raw *Raw) {
	ctx := context.Background()
	key := newKey(t)
	live := &oauth2.Token{AccessToken: "at", RefreshToken: "rt"}
	if err := oauth2refresh.SaveToken(ctx, s, key, live); err != nil {
		t.Fatal(err)
	}
	if err := oauth2refresh.SaveToken(ctx, s, key, deadMark(t)); err != nil {
		t.Fatalf("SaveToken of a dead mark: %v", err)
	}
	got, err := s.Load(ctx, key)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	checkDeadMark(t, "Load", got)
	l, err := s.Lock(ctx, key, time.Minute)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	checkDeadMark(t, "Lease.Token", l.Token())
	if raw != nil {
		v, err := raw.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		m, _, err := store.Decode(key, "", []byte(v))
		if err != nil {
			t.Fatalf("store.Decode of the stored value: %v", err)
		}
		checkDeadMark(t, "stored value", m)
	}
	// Seeding a new token revives the grant.
	if err := l.Save(ctx, live); err != nil {
		t.Fatalf("Save over a dead mark: %v", err)
	}
	l.Release(ctx)
	got, err = s.Load(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	checkToken(t, "Load after a token was saved over the mark", live, got)
}

// deleteGrant checks Delete: the token is gone, a missing key is no error, a lease held
// meanwhile cannot save the grant back (and Delete does not wait for it), and the grant can
// be started again.
func deleteGrant(t *testing.T, s oauth2refresh.Store) {
	ctx := context.Background()
	tok := func(n string) *oauth2.Token { return &oauth2.Token{AccessToken: "at-" + n, RefreshToken: "rt-" + n} }
	load := func(t *testing.T, key string) *oauth2.Token {
		t.Helper()
		got, err := s.Load(ctx, key)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		return got
	}

	t.Run("Missing", func(t *testing.T) {
		if err := s.Delete(ctx, newKey(t)); err != nil {
			t.Errorf("Delete of a key never stored: %v", err)
		}
	})

	t.Run("Stored", func(t *testing.T) {
		key, other := newKey(t), newKey(t)
		for _, k := range []string{key, other} {
			if err := oauth2refresh.SaveToken(ctx, s, k, tok("1")); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if got := load(t, key); got != nil {
			t.Errorf("Load after Delete = %v, want nil", got)
		}
		checkToken(t, "Load of another key", tok("1"), load(t, other))
		if err := s.Delete(ctx, key); err != nil {
			t.Errorf("second Delete: %v", err)
		}
		l, err := s.Lock(ctx, key, time.Minute)
		if err != nil {
			t.Fatalf("Lock after Delete: %v", err)
		}
		defer l.Release(ctx)
		if l.Token() != nil {
			t.Errorf("Lease.Token after Delete = %v, want nil", l.Token())
		}
		if err := l.Save(ctx, tok("2")); err != nil {
			t.Fatalf("Save after Delete (the grant started again): %v", err)
		}
		checkToken(t, "Load", tok("2"), load(t, key))
	})

	t.Run("DeadMark", func(t *testing.T) {
		key := newKey(t)
		if err := oauth2refresh.SaveToken(ctx, s, key, deadMark(t)); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if got := load(t, key); got != nil {
			t.Errorf("Load after Delete = %v, want nil", got)
		}
	})

	t.Run("LeaseHeld", func(t *testing.T) {
		key := newKey(t)
		if err := oauth2refresh.SaveToken(ctx, s, key, tok("1")); err != nil {
			t.Fatal(err)
		}
		l, err := s.Lock(ctx, key, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := s.Delete(dctx, key); err != nil {
			l.Release(ctx)
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Delete while a lease is held waited for it: %v", err)
			}
			t.Fatalf("Delete while a lease is held: %v", err)
		}
		if err := l.Save(ctx, tok("2")); !errors.Is(err, oauth2refresh.ErrLeaseLost) {
			t.Errorf("Save under a lease held while the grant was deleted = %v, want ErrLeaseLost", err)
		}
		if err := l.Release(ctx); err != nil {
			t.Errorf("Release: %v", err)
		}
		if got := load(t, key); got != nil {
			t.Errorf("Load = %v, want nil: the lease held saved the deleted grant back", got)
		}
		l, err = s.Lock(ctx, key, time.Minute)
		if err != nil {
			t.Fatalf("Lock after Delete and Release: %v", err)
		}
		l.Release(ctx)
	})

	t.Run("FencingNotReused", func(t *testing.T) {
		// A store that deletes what it kept of a grant, its fencing number too, must not give
		// the leases granted after the Delete numbers that a lease held across it had: that
		// lease would then save over the grant started again.
		key := newKey(t)
		if err := oauth2refresh.SaveToken(ctx, s, key, tok("1")); err != nil {
			t.Fatal(err)
		}
		held, err := s.Lock(ctx, key, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		defer held.Release(ctx)
		if err := s.Delete(ctx, key); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		for i := range 6 {
			short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			l, err := s.Lock(short, key, time.Minute)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				break // the store keeps the lease held across Delete exclusive until released
			}
			if err != nil {
				t.Fatalf("Lock after Delete: %v", err)
			}
			err = l.Save(ctx, tok(strconv.Itoa(i+2)))
			l.Release(ctx)
			if err != nil {
				t.Fatalf("Save after Delete (the grant started again): %v", err)
			}
			if err := held.Save(ctx, tok("x")); !errors.Is(err, oauth2refresh.ErrLeaseLost) {
				t.Fatalf("Save under a lease held across Delete, after %d new leases = %v, want ErrLeaseLost", i+1, err)
			}
		}
		want, err := s.Load(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if err := held.Save(ctx, tok("x")); !errors.Is(err, oauth2refresh.ErrLeaseLost) {
			t.Errorf("Save under a lease held across Delete = %v, want ErrLeaseLost", err)
		}
		got, err := s.Load(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		checkToken(t, "Load", want, got)
	})
}

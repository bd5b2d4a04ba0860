package storetest

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh"
	"golang.org/x/oauth2"
)

// contents returns what c lists, sorted.
func contents(t *testing.T, c func(context.Context) ([]string, error)) []string {
	t.Helper()
	got, err := c(context.Background())
	if err != nil {
		t.Fatalf("Options.Contents: %v", err)
	}
	slices.Sort(got)
	return got
}

// checkUnchanged reports an error unless c lists what it listed as before.
func checkUnchanged(t *testing.T, c func(context.Context) ([]string, error), before []string, after string) {
	t.Helper()
	got := contents(t, c)
	var added, removed []string
	for _, v := range got {
		if !slices.Contains(before, v) {
			added = append(added, v)
		}
	}
	for _, v := range before {
		if !slices.Contains(got, v) {
			removed = append(removed, v)
		}
	}
	if len(added)+len(removed) > 0 {
		t.Errorf("after %s, the store keeps %d more (%q) and %d less (%q): a key that holds no token must leave nothing",
			after, len(added), added[:min(len(added), 3)], len(removed), removed[:min(len(removed), 3)])
	}
}

// leftovers checks, with Options.Contents, that keys which never held a token leave nothing in
// the store: a Lock and Release of one, and unknown keys asked for through a TokenSource and a
// Manager; and that Delete leaves nothing of a grant.
func leftovers(t *testing.T, s oauth2refresh.Store, c func(context.Context) ([]string, error)) {
	ctx := context.Background()

	t.Run("LockRelease", func(t *testing.T) {
		before := contents(t, c)
		key := newKey(t)
		l, err := s.Lock(ctx, key, time.Minute)
		if err != nil {
			t.Fatalf("Lock: %v", err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatalf("Release: %v", err)
		}
		checkUnchanged(t, c, before, "a Lock and Release of a key never saved")
	})

	t.Run("UnknownKeys", func(t *testing.T) {
		// Keys an attacker chooses, asked for through a TokenSource made with no token, and
		// through a Manager's Grant (Token and Client): each fails with ErrNoRefreshToken,
		// sends nothing, and keeps nothing.
		before := contents(t, c)
		m := &memEndpoint{}
		mgr := oauth2refresh.NewManager(m.endpoint(), s, nil)
		const n = 50
		for i := range n {
			key := newKey(t) + "/" + strconv.Itoa(i)
			ts := m.endpoint().TokenSource(ctx, nil, oauth2refresh.WithStore(s, key))
			if _, err := ts.Token(); !errors.Is(err, oauth2refresh.ErrNoRefreshToken) {
				t.Fatalf("TokenSource.Token of an unknown key = %v, want ErrNoRefreshToken", err)
			}
			g := mgr.Grant(newKey(t))
			if _, err := g.Token(); !errors.Is(err, oauth2refresh.ErrNoRefreshToken) {
				t.Fatalf("Grant.Token of an unknown key = %v, want ErrNoRefreshToken", err)
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example/", nil)
			if resp, err := mgr.Grant(newKey(t)).Client(ctx).Do(req); !errors.Is(err, oauth2refresh.ErrNoRefreshToken) {
				if err == nil {
					resp.Body.Close()
				}
				t.Fatalf("Grant.Client of an unknown key: Do = %v, want ErrNoRefreshToken", err)
			}
		}
		if got := m.requests.Load(); got != 0 {
			t.Errorf("%d token requests for unknown keys, want none", got)
		}
		checkUnchanged(t, c, before, strconv.Itoa(3*n)+" unknown keys through a TokenSource and a Manager")
	})

	tok := &oauth2.Token{AccessToken: "at", RefreshToken: "rt"}

	t.Run("Delete", func(t *testing.T) {
		before := contents(t, c)
		key := newKey(t)
		if err := oauth2refresh.SaveToken(ctx, s, key, tok); err != nil {
			t.Fatal(err)
		}
		l, err := s.Lock(ctx, key, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		l.Release(ctx)
		if err := s.Delete(ctx, key); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		checkUnchanged(t, c, before, "Delete of a grant saved, locked and released")
	})

	t.Run("DeleteLeaseHeld", func(t *testing.T) {
		before := contents(t, c)
		key := newKey(t)
		if err := oauth2refresh.SaveToken(ctx, s, key, tok); err != nil {
			t.Fatal(err)
		}
		l, err := s.Lock(ctx, key, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, key); err != nil {
			l.Release(ctx)
			t.Fatalf("Delete: %v", err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatalf("Release: %v", err)
		}
		checkUnchanged(t, c, before, "Delete of a grant whose lease was held, then Release")
	})

	t.Run("DeleteDeadMark", func(t *testing.T) {
		before := contents(t, c)
		key := newKey(t)
		if err := oauth2refresh.SaveToken(ctx, s, key, deadMark(t)); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		checkUnchanged(t, c, before, "Delete of a dead mark")
	})
}

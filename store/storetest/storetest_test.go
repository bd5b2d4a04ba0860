package storetest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store/storetest"
	"golang.org/x/oauth2"
)

// TestMemStore runs the suite against the memStore of the example; with STORETEST_FLAW set,
// against a flawed variant of it (see TestSuiteCatchesFlaws).
func TestMemStore(t *testing.T) {
	s := newMemStore()
	var store oauth2refresh.Store = s
	switch flaw := os.Getenv("STORETEST_FLAW"); flaw {
	case "":
	case "no exclusion":
		store = noExclusion{s}
	case "no fencing":
		store = noFencing{s}
	case "unfenced delete":
		store = unfencedDelete{s}
	case "drops extra":
		store = dropsExtra{s}
	case "keeps leases":
		store = keepsLeases{s}
	case "reuses fencing":
		store = reusesFencing{s, map[string]uint64{}}
	default:
		t.Fatalf("unknown flaw %q", flaw)
	}
	storetest.TestStore(t, store, storetest.Options{LeasesExpire: true, Raw: s.raw(), Contents: s.contents})
}

// TestSuiteCatchesFlaws runs the suite against flawed stores, each in a child process, and
// checks that it fails, in the subtest that looks for the flaw.
func TestSuiteCatchesFlaws(t *testing.T) {
	tests := []struct{ flaw, failure string }{
		{"no exclusion", "--- FAIL: TestMemStore/Exclusion"},
		{"no fencing", "--- FAIL: TestMemStore/LapsedLeaseIsFenced"},
		{"unfenced delete", "--- FAIL: TestMemStore/Delete/LeaseHeld"},
		{"drops extra", "--- FAIL: TestMemStore/DeadMark"},
		{"keeps leases", "--- FAIL: TestMemStore/Leftovers/LockRelease"},
		{"reuses fencing", "--- FAIL: TestMemStore/Delete/FencingNotReused"},
	}
	for _, tc := range tests {
		t.Run(tc.flaw, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMemStore$", "-test.v")
			cmd.Env = append(os.Environ(), "STORETEST_FLAW="+tc.flaw)
			out, err := cmd.CombinedOutput()
			if _, ok := err.(*exec.ExitError); !ok {
				t.Fatalf("suite against a store with %s: %v, want a failure\n%s", tc.flaw, err, out)
			}
			if !strings.Contains(string(out), tc.failure) {
				t.Errorf("suite output does not hold %q:\n%s", tc.failure, out)
			}
		})
	}
}

// noExclusion grants a lease on a grant even while another is held.
type noExclusion struct{ *memStore }

func (s noExclusion) Lock(ctx context.Context, key string, ttl time.Duration) (oauth2refresh.Lease, error) {
	s.mu.Lock()
	s.grant(key).held = false
	s.mu.Unlock()
	return s.memStore.Lock(ctx, key, ttl)
}

// noFencing lets a lease save after a later one was granted.
type noFencing struct{ *memStore }

func (s noFencing) Lock(ctx context.Context, key string, ttl time.Duration) (oauth2refresh.Lease, error) {
	l, err := s.memStore.Lock(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	return unfencedLease{l.(*memLease)}, nil
}

type unfencedLease struct{ *memLease }

func (l unfencedLease) Save(ctx context.Context, t *oauth2.Token) error {
	l.s.mu.Lock()
	l.fence = l.s.grant(l.key).fence // as if no one had taken the grant over
	l.s.mu.Unlock()
	return l.memLease.Save(ctx, t)
}

// unfencedDelete deletes a grant without fencing out the lease held meanwhile.
type unfencedDelete struct{ *memStore }

func (s unfencedDelete) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grant(key).value = nil
	return nil
}

// dropsExtra keeps only the fields of oauth2.Token, as a store written before the stored-token
// format kept Extra might: a dead mark becomes a token without tokens.
type dropsExtra struct{ *memStore }

func (s dropsExtra) Lock(ctx context.Context, key string, ttl time.Duration) (oauth2refresh.Lease, error) {
	l, err := s.memStore.Lock(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	return extraDroppingLease{l.(*memLease)}, nil
}

type extraDroppingLease struct{ *memLease }

func (l extraDroppingLease) Save(ctx context.Context, t *oauth2.Token) error {
	return l.memLease.Save(ctx, &oauth2.Token{AccessToken: t.AccessToken, TokenType: t.TokenType,
		RefreshToken: t.RefreshToken, Expiry: t.Expiry, ExpiresIn: t.ExpiresIn})
}

// keepsLeases keeps a grant without a token once its lease is released, as a store that
// leaves a lock file or a fence counter for every key ever locked would.
type keepsLeases struct{ *memStore }

func (s keepsLeases) Lock(ctx context.Context, key string, ttl time.Duration) (oauth2refresh.Lease, error) {
	l, err := s.memStore.Lock(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	return keptLease{l.(*memLease)}, nil
}

type keptLease struct{ *memLease }

func (l keptLease) Release(ctx context.Context) error {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if g := l.s.grants[l.key]; !l.released && g != nil && g.fence == l.fence {
		g.held = false
	}
	l.released = true
	return nil
}

// reusesFencing counts the fencing numbers of each grant from 1, again after a Delete, so that
// a lease held across the Delete may see its number given out again.
type reusesFencing struct {
	*memStore
	counts map[string]uint64 // leases granted since the grant was started; guarded by mu
}

func (s reusesFencing) Lock(ctx context.Context, key string, ttl time.Duration) (oauth2refresh.Lease, error) {
	l, err := s.memStore.Lock(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[key]++
	ml := l.(*memLease)
	ml.fence = s.counts[key]
	s.grants[key].fence = ml.fence
	return ml, nil
}

func (s reusesFencing) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	delete(s.counts, key)
	s.mu.Unlock()
	return s.memStore.Delete(ctx, key)
}

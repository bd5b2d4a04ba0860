package storetest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store"
	"github.com/tokenkit/oauth2refresh/store/storetest"
	"golang.org/x/oauth2"
)

// memStore is an oauth2refresh.Store kept in memory, written as a store on a server would be:
// each lease has a fencing number, lapses after its ttl, and can save only while no later
// lease was granted. Values are in the format of store.Encode. A grant
// without a token is kept only while a lease on it is held: a key that never held a token,
// and a deleted one, leave nothing. Fencing numbers are counted over the whole store, so that
// a grant deleted and started again never gives out the number of a lease held across the
// Delete.
type memStore struct {
	mu     sync.Mutex           // guards grants and fences
	grants map[string]*memGrant // by key
	fences uint64               // number of leases granted on any grant
}

type memGrant struct {
	value   []byte    // the stored token; nil if none
	fence   uint64    // number of the last lease granted
	held    bool      // a lease is held, until expires
	expires time.Time // when the held lease lapses
}

func newMemStore() *memStore { return &memStore{grants: map[string]*memGrant{}} }

// grant returns key's grant, adding it when missing.
func (s *memStore) grant(key string) *memGrant {
	g := s.grants[key]
	if g == nil {
		g = &memGrant{}
		s.grants[key] = g
	}
	return g
}

// value returns key's stored value, nil if none.
func (s *memStore) value(key string) []byte {
	if g := s.grants[key]; g != nil {
		return g.value
	}
	return nil
}

func (s *memStore) decode(key string, value []byte) (*oauth2.Token, uint64, error) {
	if value == nil {
		return nil, 0, nil
	}
	return store.Decode(key, "memory:"+key, value)
}

func (s *memStore) Load(ctx context.Context, key string) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok, _, err := s.decode(key, s.value(key))
	return tok, err
}

func (s *memStore) Lock(ctx context.Context, key string, ttl time.Duration) (oauth2refresh.Lease, error) {
	for {
		s.mu.Lock()
		g := s.grant(key)
		if !g.held || time.Now().After(g.expires) {
			tok, _, err := s.decode(key, g.value)
			if err != nil {
				s.mu.Unlock()
				return nil, err
			}
			s.fences++
			g.fence = s.fences
			g.held, g.expires = true, time.Now().Add(ttl)
			s.mu.Unlock()
			return &memLease{s: s, key: key, fence: g.fence, tok: tok}, nil
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("memstore: waiting for lease: %w", ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

type memLease struct {
	s        *memStore
	key      string
	fence    uint64
	tok      *oauth2.Token
	released bool
}

func (l *memLease) Token() *oauth2.Token { return l.tok }

func (l *memLease) Save(ctx context.Context, t *oauth2.Token) error {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	g := l.s.grants[l.key]
	if l.released || g == nil || g.fence != l.fence {
		return fmt.Errorf("memstore: saving: %w", oauth2refresh.ErrLeaseLost)
	}
	b, err := store.Encode(t, l.fence)
	if err != nil {
		return err
	}
	g.value = b
	return nil
}

func (l *memLease) Release(ctx context.Context) error {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if g := l.s.grants[l.key]; !l.released && g != nil && g.fence == l.fence {
		g.held = false
		if g.value == nil {
			delete(l.s.grants, l.key) // no token: nothing is kept
		}
	}
	l.released = true
	return nil
}

// Delete implements oauth2refresh.Store: the grant goes, its fence with it, so that
// a lease held meanwhile cannot save it back.
func (s *memStore) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.grants, key)
	return nil
}

// contents lists the keys of memStore's grants.
func (s *memStore) contents(ctx context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k := range s.grants {
		keys = append(keys, k)
	}
	return keys, nil
}

// raw reaches memStore's values past the Store interface.
func (s *memStore) raw() *storetest.Raw {
	return &storetest.Raw{
		Get: func(ctx context.Context, key string) (string, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			return string(s.value(key)), nil
		},
		Put: func(ctx context.Context, key, value string) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.grant(key).value = []byte(value)
			return nil
		},
		Location: func(key string) string { return "memory:" + key },
	}
}

// The test that the package of a Store adds to prove it with the suite, here for memStore
// whose leases lapse on their ttl and whose values are in the stored-token format. (This
// package's TestMemStore runs it.)
func ExampleTestStore() {
	testStore := func(t *testing.T) {
		s := newMemStore()
		storetest.TestStore(t, s, storetest.Options{LeasesExpire: true, Raw: s.raw(), Contents: s.contents})
	}
	_ = testStore // func TestStore(t *testing.T) { ... }
}

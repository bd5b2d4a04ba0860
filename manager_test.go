package oauth2refresh_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh/events"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store/filestore"
	"golang.org/x/oauth2"
)

// memStore is a Store in memory, for the Manager's tests and benchmarks: one lease per grant
// at a time (a lease lapses only when the test says so: lapse), each Save fenced by the lease
// it was made under, and Delete. Load returns the token saved, not a copy. Its calls are
// counted.
type memStore struct {
	mu     sync.Mutex // guards grants and the fields of every memGrant
	grants map[string]*memGrant

	loads, locks, saves, releases, deletes atomic.Int64
}

type memGrant struct {
	tok   *oauth2.Token
	lease int64         // the number of the newest lease granted; Save under an older one fails
	held  int64         // the number of the lease held, 0 if none
	sem   chan struct{} // holds a value while a lease is held
}

func newMemStore() *memStore { return &memStore{grants: map[string]*memGrant{}} }

func (s *memStore) grant(key string) *memGrant {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.grants[key]
	if g == nil {
		g = &memGrant{sem: make(chan struct{}, 1)}
		s.grants[key] = g
	}
	return g
}

func (s *memStore) Load(ctx context.Context, key string) (*oauth2.Token, error) {
	s.loads.Add(1)
	g := s.grant(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	return g.tok, nil
}

func (s *memStore) Lock(ctx context.Context, key string, ttl time.Duration) (oauth2refresh.Lease, error) {
	s.locks.Add(1)
	g := s.grant(key)
	select {
	case g.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g.lease++
	g.held = g.lease
	return &memLease{s: s, g: g, n: g.lease, tok: g.tok}, nil
}

// lapse ends the lease held on key, as its ttl would: another Lock succeeds, and the holder's
// Save fails with ErrLeaseLost once another lease was granted.
func (s *memStore) lapse(key string) {
	g := s.grant(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if g.held != 0 {
		g.held = 0
		<-g.sem
	}
}

func (s *memStore) Delete(ctx context.Context, key string) error {
	s.deletes.Add(1)
	g := s.grant(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	g.tok = nil
	g.lease++
	return nil
}

// stored returns key's token.
func (s *memStore) stored(key string) *oauth2.Token {
	g := s.grant(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	return g.tok
}

// trips returns the Store calls made so far.
func (s *memStore) trips() int64 {
	return s.loads.Load() + s.locks.Load() + s.saves.Load() + s.releases.Load() + s.deletes.Load()
}

type memLease struct {
	s   *memStore
	g   *memGrant
	n   int64
	tok *oauth2.Token
}

func (l *memLease) Token() *oauth2.Token { return l.tok }

func (l *memLease) Save(ctx context.Context, t *oauth2.Token) error {
	l.s.saves.Add(1)
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if l.g.lease != l.n {
		return fmt.Errorf("mem store: %w", oauth2refresh.ErrLeaseLost)
	}
	l.g.tok = t
	return nil
}

func (l *memLease) Release(context.Context) error {
	l.s.releases.Add(1)
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if l.g.held == l.n {
		l.g.held = 0
		<-l.g.sem
	}
	return nil
}

// deadStore is a Store whose Load reports the grants in dead as dead (an error wrapping a
// *DeadGrantError), as a Store's dead mark is reported; a Save revives the grant.
type deadStore struct {
	*memStore
	dead sync.Map // key -> *oauth2refresh.DeadGrantError
}

func (s *deadStore) Load(ctx context.Context, key string) (*oauth2.Token, error) {
	if d, ok := s.dead.Load(key); ok {
		return nil, d.(*oauth2refresh.DeadGrantError)
	}
	return s.memStore.Load(ctx, key)
}

func (s *deadStore) Lock(ctx context.Context, key string, ttl time.Duration) (oauth2refresh.Lease, error) {
	l, err := s.memStore.Lock(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	return &deadLease{l, s, key}, nil
}

type deadLease struct {
	oauth2refresh.Lease
	s   *deadStore
	key string
}

func (l *deadLease) Save(ctx context.Context, t *oauth2.Token) error {
	l.s.dead.Delete(l.key)
	return l.Lease.Save(ctx, t)
}

// startAll seeds each grant of keys with its first refresh token at srv ("k/rt-0").
func startAll(t *testing.T, m *oauth2refresh.Manager, keys []string) {
	t.Helper()
	for _, k := range keys {
		if err := m.Grant(k).SaveToken(context.Background(), &oauth2.Token{RefreshToken: k + "/rt-0"}); err != nil {
			t.Fatalf("SaveToken(%q): %v", k, err)
		}
	}
}

func grantKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("tenant-%02d", i)
	}
	return keys
}

// hammer calls TokenContext of every grant of keys from goroutines goroutines at once, each
// in its own order, and checks that each gets its grant's access token want(key).
func hammer(t *testing.T, m *oauth2refresh.Manager, keys []string, goroutines int, want func(key string) string) {
	t.Helper()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range keys {
				k := keys[(i*(g+1)+g)%len(keys)]
				if g%2 == 1 {
					k = keys[len(keys)-1-(i+g)%len(keys)]
				}
				tok, err := m.Grant(k).TokenContext(context.Background())
				if err != nil {
					t.Errorf("grant %q: %v", k, err)
					continue
				}
				if tok.AccessToken != want(k) {
					t.Errorf("grant %q: access token %q, want %q", k, tok.AccessToken, want(k))
				}
			}
		})
	}
	wg.Wait()
}

// TestManagerRefreshesOncePerLifetime: many goroutines on many grants of a filestore.Store, over
// several token lifetimes, with MaxGrants holding all of them and with MaxGrants 2 (grants
// dropped and made again all the time): each grant is refreshed exactly once per lifetime, no
// refresh token is sent twice, and the store ends with the newest refresh token of each.
func TestManagerRefreshesOncePerLifetime(t *testing.T) {
	const rounds, goroutines = 3, 8
	for _, max := range []int{0, 2} {
		t.Run(fmt.Sprintf("MaxGrants=%d", max), func(t *testing.T) {
			keys := grantKeys(12)
			srv := newTokenServers(t, keys, 3600)
			clk := newFakeClock()
			fs := &filestore.Store{Dir: t.TempDir()}
			m := oauth2refresh.NewManager(srv.endpoint(), fs, &oauth2refresh.ManagerOptions{
				SourceOptions: []oauth2refresh.Option{oauth2refresh.WithClock(clk.now)},
				MaxGrants:     max,
			})
			startAll(t, m, keys)
			for round := 1; round <= rounds; round++ {
				hammer(t, m, keys, goroutines, func(k string) string { return fmt.Sprintf("%s/at-%d", k, round) })
				clk.advance(time.Hour)
			}
			for _, k := range keys {
				if n := srv.grants[k].requests.Load(); n != rounds {
					t.Errorf("grant %q: %d token requests, want %d (one per lifetime)", k, n, rounds)
				}
				if got, want := mustLoad(t, fs, k).RefreshToken, srv.grants[k].currentRT(); got != want {
					t.Errorf("grant %q: stored refresh token %q, want the newest, %q", k, got, want)
				}
			}
			if n := srv.reused(); n != 0 {
				t.Errorf("%d refresh tokens sent again after rotation", n)
			}
			if max > 0 {
				for _, k := range keys {
					m.Grant(k).Token()
				}
				if held := oauth2refresh.HeldGrants(m); len(held) > max {
					t.Errorf("held grants %q, want at most %d", held, max)
				}
			}
		})
	}
}

// TestManagerKeepsBusyGrants: with MaxGrants 1, a grant whose refresh is in flight, or whose
// rotated token could not be saved, is not dropped when other grants are used: its token is
// saved later, and no refresh token is sent twice.
func TestManagerKeepsBusyGrants(t *testing.T) {
	t.Run("flight running", func(t *testing.T) {
		keys := []string{"a", "b", "c"}
		srv := newTokenServers(t, keys, 3600)
		arrived, release := make(chan struct{}), make(chan struct{})
		srv.grants["a"].hold = func() { arrived <- struct{}{}; <-release }
		fs := &filestore.Store{Dir: t.TempDir()}
		m := oauth2refresh.NewManager(srv.endpoint(), fs, &oauth2refresh.ManagerOptions{MaxGrants: 1})
		startAll(t, m, keys)
		// The caller gives up; its flight goes on, on a goroutine of the TokenSource.
		ctx, cancel := context.WithCancel(context.Background())
		gaveUp := make(chan error, 1)
		go func() { _, err := m.Grant("a").TokenContext(ctx); gaveUp <- err }()
		<-arrived
		cancel()
		if err := <-gaveUp; !errors.Is(err, context.Canceled) {
			t.Fatalf("grant a, canceled: %v", err)
		}
		for _, k := range []string{"b", "c"} {
			if _, err := m.Grant(k).Token(); err != nil {
				t.Fatalf("grant %q: %v", k, err)
			}
		}
		if diff := cmp.Diff([]string{"a", "c"}, oauth2refresh.HeldGrants(m)); diff != "" {
			t.Errorf("held grants while a refreshes (-want +got):\n%s", diff)
		}
		close(release)
		if tok, err := m.Grant("a").Token(); err != nil || tok.AccessToken != "a/at-1" {
			t.Errorf("grant a: %v, %v; want a/at-1", tok, err)
		}
		m.Grant("b").Token() // a is idle now: dropped
		if diff := cmp.Diff([]string{"b"}, oauth2refresh.HeldGrants(m)); diff != "" {
			t.Errorf("held grants (-want +got):\n%s", diff)
		}
		tok, err := m.Grant("a").Token()
		if err != nil || tok.AccessToken != "a/at-1" {
			t.Errorf("grant a made again: %v, %v; want a/at-1 from the store", tok, err)
		}
		if n := srv.grants["a"].requests.Load(); n != 1 {
			t.Errorf("grant a: %d token requests, want 1", n)
		}
	})
	t.Run("token unsaved", func(t *testing.T) {
		keys := []string{"a", "b", "c"}
		srv := newTokenServers(t, keys, 3600)
		clk := newFakeClock()
		fs := &faultStore{Store: &filestore.Store{Dir: t.TempDir()}}
		m := oauth2refresh.NewManager(srv.endpoint(), fs, &oauth2refresh.ManagerOptions{
			SourceOptions: []oauth2refresh.Option{oauth2refresh.WithClock(clk.now)},
			MaxGrants:     1,
		})
		startAll(t, m, keys)
		fs.failSave.Store(2) // the save and its retry
		if _, err := m.Grant("a").Token(); !errors.Is(err, errStoreDown) {
			t.Fatalf("grant a with the store failing: %v, want %v", err, errStoreDown)
		}
		for _, k := range []string{"b", "c"} {
			if _, err := m.Grant(k).Token(); err != nil {
				t.Fatalf("grant %q: %v", k, err)
			}
		}
		if diff := cmp.Diff([]string{"a", "c"}, oauth2refresh.HeldGrants(m)); diff != "" {
			t.Errorf("held grants while a's token is unsaved (-want +got):\n%s", diff)
		}
		clk.advance(time.Minute) // past the backoff
		tok, err := m.Grant("a").Token()
		if err != nil || tok.AccessToken != "a/at-1" {
			t.Fatalf("grant a after the store came back: %v, %v; want a/at-1", tok, err)
		}
		if got := mustLoad(t, fs, "a").RefreshToken; got != "a/rt-1" {
			t.Errorf("stored refresh token of a: %q, want a/rt-1", got)
		}
		if n, r := srv.grants["a"].requests.Load(), srv.reused(); n != 1 || r != 0 {
			t.Errorf("grant a: %d token requests, %d reused refresh tokens; want 1, 0", n, r)
		}
	})
}

// TestManagerOnDead: OnDead is called once for a grant found dead, however many goroutines
// find it and however often the grant is dropped and made again; SaveToken revives it, and OnDead
// is called again when it dies again.
func TestManagerOnDead(t *testing.T) {
	srv := newTokenServers(t, []string{"x", "y"}, 3600)
	clk := newFakeClock()
	ds := &deadStore{memStore: newMemStore()}
	var mu sync.Mutex
	var calls []string
	m := oauth2refresh.NewManager(srv.endpoint(), ds, &oauth2refresh.ManagerOptions{
		SourceOptions: []oauth2refresh.Option{oauth2refresh.WithClock(clk.now)},
		MaxGrants:     1,
		OnDead: func(key string, err *oauth2refresh.DeadGrantError) {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, key+" "+oauth2refresh.DeadReason(err))
		},
	})
	startAll(t, m, []string{"x", "y"})
	ds.dead.Store("x", oauth2refresh.NewDeadGrantError("x", oauth2refresh.ReasonInvalidGrant))
	kill := func() {
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				if _, err := m.Grant("x").Token(); !errors.Is(err, oauth2refresh.ErrInvalidGrant) {
					t.Errorf("dead grant x: %v, want an error matching ErrInvalidGrant", err)
				}
			})
		}
		wg.Wait()
	}
	kill()
	for range 3 { // x dropped and made again
		clk.advance(10 * time.Minute)
		if _, err := m.Grant("y").Token(); err != nil {
			t.Fatal(err)
		}
		kill()
	}
	if diff := cmp.Diff([]string{"x invalid_grant"}, calls); diff != "" {
		t.Errorf("OnDead calls (-want +got):\n%s", diff)
	}
	if err := m.Grant("x").SaveToken(context.Background(), &oauth2.Token{RefreshToken: "x/rt-0"}); err != nil {
		t.Fatal(err)
	}
	if tok, err := m.Grant("x").Token(); err != nil || tok.AccessToken != "x/at-1" {
		t.Errorf("grant x after SaveToken: %v, %v; want x/at-1", tok, err)
	}
	ds.dead.Store("x", oauth2refresh.NewDeadGrantError("x", oauth2refresh.ReasonRefreshTokenExpired))
	clk.advance(2 * time.Hour)
	kill()
	if diff := cmp.Diff([]string{"x invalid_grant", "x refresh_token_expired"}, calls); diff != "" {
		t.Errorf("OnDead calls after SaveToken and a second death (-want +got):\n%s", diff)
	}
}

// TestGrantHotPathAllocs: a held grant's cached token costs no allocation.
func TestGrantHotPathAllocs(t *testing.T) {
	srv := newTokenServers(t, []string{"a"}, 3600)
	m := oauth2refresh.NewManager(srv.endpoint(), newMemStore(), nil)
	startAll(t, m, []string{"a"})
	g := m.Grant("a")
	if _, err := g.Token(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() { m.Grant("a").TokenContext(ctx) }); n != 0 {
		t.Errorf("%v allocations per cached token, want 0", n)
	}
}

// TestGrantClient: Grant.Client's requests carry the grant's token, and the client does not
// keep the grant in memory: it is dropped and made again between requests.
func TestGrantClient(t *testing.T) {
	srv := newTokenServers(t, []string{"a", "b"}, 3600)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Bearer a/at-1" {
			t.Errorf("API request: Authorization %q, want Bearer a/at-1", got)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer api.Close()
	m := oauth2refresh.NewManager(srv.endpoint(), newMemStore(), &oauth2refresh.ManagerOptions{MaxGrants: 1})
	startAll(t, m, []string{"a", "b"})
	c := m.Grant("a").Client(context.Background())
	for i := range 2 {
		resp, err := c.Get(api.URL)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("request %d: status %d", i, resp.StatusCode)
		}
		if diff := cmp.Diff([]string{"a"}, oauth2refresh.HeldGrants(m)); diff != "" {
			t.Errorf("held grants after request %d (-want +got):\n%s", i, diff)
		}
		if _, err := m.Grant("b").Token(); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"b"}, oauth2refresh.HeldGrants(m)); diff != "" {
			t.Errorf("held grants after b (-want +got):\n%s", diff)
		}
	}
	if n := srv.grants["a"].requests.Load(); n != 1 {
		t.Errorf("grant a: %d token requests, want 1", n)
	}
}

// TestGrantForget: Grant.Delete deletes the grant from the Store and from memory.
func TestGrantForget(t *testing.T) {
	srv := newTokenServers(t, []string{"a"}, 3600)
	t.Run("deletes", func(t *testing.T) {
		ms := newMemStore()
		m := oauth2refresh.NewManager(srv.endpoint(), ms, nil)
		startAll(t, m, []string{"a"})
		if _, err := m.Grant("a").Token(); err != nil {
			t.Fatal(err)
		}
		if err := m.Grant("a").Delete(context.Background()); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if tok := ms.stored("a"); tok != nil {
			t.Errorf("stored token after Delete: %v, want none", tok)
		}
		if held := oauth2refresh.HeldGrants(m); len(held) != 0 {
			t.Errorf("held grants after Delete: %q, want none", held)
		}
		if _, err := m.Grant("a").Token(); !errors.Is(err, oauth2refresh.ErrNoRefreshToken) {
			t.Errorf("Token after Delete: %v, want an error matching ErrNoRefreshToken", err)
		}
	})
}

// TestGrantSaveToken refuses a token with neither access nor refresh token, and saves nothing.
func TestGrantSaveToken(t *testing.T) {
	ms := newMemStore()
	m := oauth2refresh.NewManager(&oauth2refresh.Endpoint{TokenURL: "https://auth.example/token"}, ms, nil)
	for _, tok := range []*oauth2.Token{nil, {TokenType: "Bearer"}} {
		if err := m.Grant("a").SaveToken(context.Background(), tok); err == nil {
			t.Errorf("SaveToken(%v): no error", tok)
		}
	}
	if n := ms.trips(); n != 0 {
		t.Errorf("%d store calls, want 0", n)
	}
}

// revocationServer is a revocation endpoint (RFC 7009) that records what it receives and
// answers with status and body.
func revocationServer(t *testing.T, status int, body string) *recordingServer {
	return newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		respond(w, status, "application/json", body)
	})
}

// revocationRequest is the request a revocation of token sends with tokenServer's client
// credentials (HTTP Basic).
func revocationRequest(token string) recordedRequest {
	return recordedRequest{
		Method: http.MethodPost,
		Path:   "/revoke",
		Header: epHeader("Content-Type", epFormType, "Accept", "application/json", "User-Agent", epUA,
			"Authorization", "Basic YXBwOnMzY3JldA=="), // app:s3cret
		Form: map[string][]string{"token": {token}, "token_type_hint": {"refresh_token"}},
	}
}

// TestGrantRevoke: Revoke revokes the grant's newest refresh token at the server with the
// client's authentication, under the grant's lease, and leaves the revoked mark in the Store;
// a refused revocation leaves the grant as it was; without a RevocationURL nothing happens.
func TestGrantRevoke(t *testing.T) {
	ctx := context.Background()
	// hold, when set, is called at the start of each token request.
	var hold atomic.Pointer[func()]
	setup := func(t *testing.T, rev *recordingServer) (*tokenServers, *memStore, *oauth2refresh.Manager, *fakeClock) {
		hold.Store(nil)
		srv := newTokenServers(t, []string{"a"}, 3600)
		srv.grants["a"].hold = func() {
			if h := hold.Load(); h != nil {
				(*h)()
			}
		}
		e := srv.endpoint()
		if rev != nil {
			e.RevocationURL = rev.URL + "/revoke"
		}
		ms := newMemStore()
		clk := newFakeClock()
		m := oauth2refresh.NewManager(e, ms, &oauth2refresh.ManagerOptions{
			SourceOptions: []oauth2refresh.Option{oauth2refresh.WithClock(clk.now)}})
		startAll(t, m, []string{"a"})
		if _, err := m.Grant("a").Token(); err != nil {
			t.Fatal(err)
		}
		return srv, ms, m, clk
	}
	t.Run("revoked", func(t *testing.T) {
		// Two Managers on one filestore.Store, as two processes: b revokes; a, which holds the
		// grant, and b report it revoked without a token request, and call OnDead once.
		rev := revocationServer(t, http.StatusOK, "")
		srv := newTokenServers(t, []string{"a"}, 3600)
		e := srv.endpoint()
		e.RevocationURL = rev.URL + "/revoke"
		dir := t.TempDir()
		clk := newFakeClock()
		var mu sync.Mutex
		var dead []string
		manager := func(name string) *oauth2refresh.Manager {
			return oauth2refresh.NewManager(e, &filestore.Store{Dir: dir}, &oauth2refresh.ManagerOptions{
				SourceOptions: []oauth2refresh.Option{oauth2refresh.WithClock(clk.now)},
				OnDead: func(key string, err *oauth2refresh.DeadGrantError) {
					mu.Lock()
					defer mu.Unlock()
					dead = append(dead, fmt.Sprintf("%s: %s %s %v", name, key, oauth2refresh.DeadReason(err), err.Err))
				},
			})
		}
		a, b := manager("a"), manager("b")
		startAll(t, a, []string{"a"})
		if _, err := a.Grant("a").Token(); err != nil {
			t.Fatal(err)
		}
		if err := b.Grant("a").Revoke(ctx); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if diff := cmp.Diff([]recordedRequest{revocationRequest("a/rt-1")}, rev.requests()); diff != "" {
			t.Errorf("revocation requests (-want +got):\n%s", diff)
		}
		want := oauth2refresh.NewDeadGrantError("a", oauth2refresh.ReasonRevoked)
		want.At = clk.now()
		if diff := cmp.Diff(want, oauth2refresh.DeadMark("a", mustLoad(t, &filestore.Store{Dir: dir}, "a")),
			cmp.AllowUnexported(oauth2refresh.DeadGrantError{})); diff != "" {
			t.Errorf("stored dead mark (-want +got):\n%s", diff)
		}
		if held := oauth2refresh.HeldGrants(b); len(held) != 0 {
			t.Errorf("held grants after Revoke: %q, want none", held)
		}
		clk.advance(time.Hour) // a's token expires
		for _, m := range []*oauth2refresh.Manager{a, b, a, b} {
			_, err := m.Grant("a").Token()
			if !errors.Is(err, oauth2refresh.ErrGrantRevoked) || !errors.Is(err, oauth2refresh.ErrInvalidGrant) {
				t.Errorf("Token after Revoke: %v, want an error matching ErrGrantRevoked and ErrInvalidGrant", err)
			}
		}
		if diff := cmp.Diff([]string{"a: a revoked <nil>", "b: a revoked <nil>"}, dead); diff != "" {
			t.Errorf("OnDead calls (-want +got):\n%s", diff)
		}
		if n := srv.grants["a"].requests.Load(); n != 1 {
			t.Errorf("%d token requests, want 1", n)
		}
		// b's SaveToken revives the grant for both, once a's backoff ended; revoked again, it is
		// reported again by both.
		if err := b.Grant("a").SaveToken(ctx, &oauth2.Token{RefreshToken: "a/rt-1"}); err != nil {
			t.Fatal(err)
		}
		if tok, err := b.Grant("a").Token(); err != nil || tok.AccessToken != "a/at-2" {
			t.Errorf("b: Token after SaveToken: %v, %v; want a/at-2", tok, err)
		}
		clk.advance(oauth2refresh.MaxRefusedBackoff)
		if tok, err := a.Grant("a").Token(); err != nil || tok.AccessToken != "a/at-2" {
			t.Errorf("a: Token after b's SaveToken: %v, %v; want a/at-2", tok, err)
		}
		if err := b.Grant("a").Revoke(ctx); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		clk.advance(time.Hour)
		for _, m := range []*oauth2refresh.Manager{a, b, a, b} {
			if _, err := m.Grant("a").Token(); !errors.Is(err, oauth2refresh.ErrGrantRevoked) {
				t.Errorf("Token after the second Revoke: %v, want an error matching ErrGrantRevoked", err)
			}
		}
		if diff := cmp.Diff([]string{"a: a revoked <nil>", "b: a revoked <nil>", "a: a revoked <nil>", "b: a revoked <nil>"}, dead); diff != "" {
			t.Errorf("OnDead calls (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]recordedRequest{revocationRequest("a/rt-1"), revocationRequest("a/rt-2")}, rev.requests()); diff != "" {
			t.Errorf("revocation requests (-want +got):\n%s", diff)
		}
	})
	t.Run("refused", func(t *testing.T) {
		rev := revocationServer(t, http.StatusBadRequest, `{"error":"invalid_client"}`)
		srv, ms, m, _ := setup(t, rev)
		err := m.Grant("a").Revoke(ctx)
		if !errors.Is(err, oauth2refresh.ErrInvalidClient) {
			t.Fatalf("Revoke: %v, want an error matching ErrInvalidClient", err)
		}
		if strings.Contains(err.Error(), "a/rt-1") || strings.Contains(err.Error(), "a/at-1") {
			t.Errorf("Revoke's error quotes a token: %v", err)
		}
		if got := ms.stored("a"); got == nil || got.RefreshToken != "a/rt-1" {
			t.Errorf("stored token after a refused revocation: %v, want a/rt-1", got)
		}
		if tok, err := m.Grant("a").Token(); err != nil || tok.AccessToken != "a/at-1" {
			t.Errorf("Token after a refused revocation: %v, %v; want a/at-1", tok, err)
		}
		if n := srv.grants["a"].requests.Load(); n != 1 {
			t.Errorf("%d token requests, want 1", n)
		}
	})
	t.Run("refused, FileStore", func(t *testing.T) {
		// The token is put back through a Store that encodes it; a grant started anew while
		// the server answered keeps its new token.
		for _, startMeanwhile := range []bool{false, true} {
			srv := newTokenServers(t, []string{"a"}, 3600)
			var m *oauth2refresh.Manager
			rev := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if startMeanwhile {
					if err := m.Grant("a").SaveToken(ctx, &oauth2.Token{RefreshToken: "a/rt-new"}); err != nil {
						t.Errorf("SaveToken during the revocation: %v", err)
					}
				}
				respond(w, http.StatusServiceUnavailable, "application/json", `{"error":"temporarily_unavailable"}`)
			})
			e := srv.endpoint()
			e.RevocationURL = rev.URL + "/revoke"
			fs := &filestore.Store{Dir: t.TempDir()}
			m = oauth2refresh.NewManager(e, fs, nil)
			startAll(t, m, []string{"a"})
			if err := m.Grant("a").Revoke(ctx); !oauth2refresh.IsTemporary(err) {
				t.Errorf("Revoke: %v, want a temporary error", err)
			}
			want := "a/rt-0"
			if startMeanwhile {
				want = "a/rt-new"
			}
			if got := mustLoad(t, fs, "a"); got.RefreshToken != want {
				t.Errorf("start meanwhile %v: stored token after a refused revocation: %v, want %s", startMeanwhile, got, want)
			}
		}
	})
	t.Run("no RevocationURL", func(t *testing.T) {
		_, ms, m, _ := setup(t, nil)
		before := ms.trips()
		if err := m.Grant("a").Revoke(ctx); !errors.Is(err, oauth2refresh.ErrInvalidEndpoint) {
			t.Errorf("Revoke: %v, want an error matching ErrInvalidEndpoint", err)
		}
		if n := ms.trips() - before; n != 0 {
			t.Errorf("%d store calls, want 0", n)
		}
		if tok, err := m.Grant("a").Token(); err != nil || tok.AccessToken != "a/at-1" {
			t.Errorf("Token after Revoke without RevocationURL: %v, %v; want a/at-1", tok, err)
		}
	})
	t.Run("not saved back", func(t *testing.T) {
		// A refresh whose lease lapsed while the grant was revoked by another process (a
		// second Manager on the Store) does not save its token over the revoked mark: its
		// caller gets the grant revoked.
		rev := revocationServer(t, http.StatusOK, "")
		srv, ms, m, clk := setup(t, rev)
		arrived, release := make(chan struct{}), make(chan struct{})
		h := func() { arrived <- struct{}{}; <-release }
		hold.Store(&h)
		clk.advance(time.Hour)
		done := make(chan error, 1)
		go func() { _, err := m.Grant("a").Token(); done <- err }()
		<-arrived // the refresh holds the lease, and has sent a/rt-1
		ms.lapse("a")
		e := srv.endpoint()
		e.RevocationURL = rev.URL + "/revoke"
		other := oauth2refresh.NewManager(e, ms, nil)
		if err := other.Grant("a").Revoke(ctx); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		close(release)
		if err := <-done; !errors.Is(err, oauth2refresh.ErrGrantRevoked) {
			t.Errorf("the refresh whose lease lapsed: %v, want an error matching ErrGrantRevoked", err)
		}
		if d := oauth2refresh.DeadMark("a", ms.stored("a")); d == nil || oauth2refresh.DeadReason(d) != oauth2refresh.ReasonRevoked {
			t.Errorf("stored token after the late refresh: %v, want the revoked mark", ms.stored("a"))
		}
		if diff := cmp.Diff([]recordedRequest{revocationRequest("a/rt-1")}, rev.requests()); diff != "" {
			t.Errorf("revocation requests (-want +got):\n%s", diff)
		}
	})
	t.Run("unknown keys", func(t *testing.T) {
		// Revoking keys that never held a token sends nothing and writes nothing: the
		// Store holds no mark for them, and is not even asked for a lease.
		rev := revocationServer(t, http.StatusOK, "")
		e := &oauth2refresh.Endpoint{TokenURL: rev.URL + "/token", RevocationURL: rev.URL + "/revoke"}
		ms := newMemStore()
		m := oauth2refresh.NewManager(e, ms, nil)
		for i := range 100 {
			key := fmt.Sprintf("unknown-%d", i)
			if err := m.Grant(key).Revoke(ctx); !errors.Is(err, oauth2refresh.ErrNoRefreshToken) {
				t.Errorf("Revoke(%q): %v, want an error matching ErrNoRefreshToken", key, err)
			}
			if got := ms.stored(key); got != nil {
				t.Errorf("stored for %q after Revoke: %v, want nothing", key, got)
			}
		}
		if n := ms.locks.Load() + ms.saves.Load(); n != 0 {
			t.Errorf("%d Lock and Save calls, want 0", n)
		}
		if got := rev.requests(); len(got) != 0 {
			t.Errorf("%d revocation requests, want 0", len(got))
		}
	})
	t.Run("slow server", func(t *testing.T) {
		// A revocation that takes longer than the lease: replica b, whose token expired,
		// asks for one meanwhile (the lease a took lapsed). The revoked mark wins: b sends
		// no refresh and gets ErrGrantRevoked, and the Store ends with the mark.
		arrived, release := make(chan struct{}), make(chan struct{})
		rev := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
			arrived <- struct{}{}
			<-release
			respond(w, http.StatusOK, "", "")
		})
		srv, ms, a, clk := setup(t, rev)
		b := oauth2refresh.NewManager(srv.endpoint(), ms, &oauth2refresh.ManagerOptions{
			SourceOptions: []oauth2refresh.Option{oauth2refresh.WithClock(clk.now)}})
		if _, err := b.Grant("a").Token(); err != nil {
			t.Fatal(err)
		}
		revoked := make(chan error, 1)
		go func() { revoked <- a.Grant("a").Revoke(ctx) }()
		<-arrived
		ms.lapse("a") // the lease's ttl ends while the server takes its time
		clk.advance(time.Hour)
		if _, err := b.Grant("a").Token(); !errors.Is(err, oauth2refresh.ErrGrantRevoked) {
			t.Errorf("b's Token during the revocation: %v, want an error matching ErrGrantRevoked", err)
		}
		close(release)
		if err := <-revoked; err != nil {
			t.Errorf("Revoke: %v", err)
		}
		if d := oauth2refresh.DeadMark("a", ms.stored("a")); d == nil || oauth2refresh.DeadReason(d) != oauth2refresh.ReasonRevoked {
			t.Errorf("stored after Revoke: %v, want the revoked mark", ms.stored("a"))
		}
		if n := srv.grants["a"].requests.Load(); n != 1 {
			t.Errorf("%d token requests, want 1 (none during the revocation)", n)
		}
		for _, m := range []*oauth2refresh.Manager{a, b} {
			if _, err := m.Grant("a").Token(); !errors.Is(err, oauth2refresh.ErrGrantRevoked) {
				t.Errorf("Token after Revoke: %v, want an error matching ErrGrantRevoked", err)
			}
		}
		if diff := cmp.Diff([]recordedRequest{revocationRequest("a/rt-1")}, rev.requests()); diff != "" {
			t.Errorf("revocation requests (-want +got):\n%s", diff)
		}
	})
	t.Run("refresh in flight", func(t *testing.T) {
		// Revoke waits for the lease of a refresh in flight and revokes the refresh token it
		// rotated to, not the one it spent.
		rev := revocationServer(t, http.StatusOK, "")
		_, ms, m, clk := setup(t, rev)
		arrived, release := make(chan struct{}), make(chan struct{})
		h := func() { arrived <- struct{}{}; <-release }
		hold.Store(&h)
		clk.advance(time.Hour)
		done := make(chan error, 1)
		go func() { _, err := m.Grant("a").Token(); done <- err }()
		<-arrived // the refresh holds the lease
		locks := ms.locks.Load()
		revoked := make(chan error, 1)
		go func() { revoked <- m.Grant("a").Revoke(ctx) }()
		for ms.locks.Load() == locks {
			runtime.Gosched() // until Revoke waits for the lease
		}
		close(release)
		if err := <-done; err != nil {
			t.Errorf("refresh: %v", err)
		}
		if err := <-revoked; err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if diff := cmp.Diff([]recordedRequest{revocationRequest("a/rt-2")}, rev.requests()); diff != "" {
			t.Errorf("revocation requests (-want +got):\n%s", diff)
		}
	})
}

// TestManagerOnDeadRefused: a grant the server refuses is reported to OnDead once, however
// many goroutines ask; a second Manager on the same filestore.Store (another process) reports it
// from the Store's dead mark, without a token request.
func TestManagerOnDeadRefused(t *testing.T) {
	srv := newTokenServers(t, []string{"x"}, 3600)
	dir := t.TempDir()
	var mu sync.Mutex
	var calls []string
	manager := func(name string) *oauth2refresh.Manager {
		return oauth2refresh.NewManager(srv.endpoint(), &filestore.Store{Dir: dir}, &oauth2refresh.ManagerOptions{
			OnDead: func(key string, err *oauth2refresh.DeadGrantError) {
				var re *oauth2refresh.RequestError
				refused := errors.As(err, &re) && re.Code == "invalid_grant"
				mu.Lock()
				defer mu.Unlock()
				calls = append(calls, fmt.Sprintf("%s: %s %s refused here: %v", name, key, oauth2refresh.DeadReason(err), refused))
			},
		})
	}
	a, b := manager("a"), manager("b")
	if err := a.Grant("x").SaveToken(context.Background(), &oauth2.Token{RefreshToken: "x/rt-unknown"}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*oauth2refresh.Manager{a, b} {
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				var d *oauth2refresh.DeadGrantError
				if _, err := m.Grant("x").Token(); !errors.As(err, &d) || oauth2refresh.DeadReason(d) != oauth2refresh.ReasonInvalidGrant {
					t.Errorf("Token: %v, want a *DeadGrantError dead for invalid_grant", err)
				}
			})
		}
		wg.Wait()
	}
	want := []string{"a: x invalid_grant refused here: true", "b: x invalid_grant refused here: false"}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("OnDead calls (-want +got):\n%s", diff)
	}
	if n := srv.grants["x"].requests.Load(); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}

// TestManagerGrantsTable: goroutines using 1,000 grants at random with MaxGrants 50 (grants
// added and dropped all the time) always get each grant's own token, and the map ends holding
// exactly the held grants.
func TestManagerGrantsTable(t *testing.T) {
	keys := grantKeys(1000)
	ms := newMemStore()
	exp := time.Now().Add(time.Hour)
	for _, k := range keys {
		ms.grants[k] = &memGrant{tok: &oauth2.Token{AccessToken: "at-" + k, Expiry: exp}, sem: make(chan struct{}, 1)}
	}
	m := oauth2refresh.NewManager(&oauth2refresh.Endpoint{TokenURL: "https://auth.example/token"}, ms,
		&oauth2refresh.ManagerOptions{MaxGrants: 50})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(g), 1))
			for range 5000 {
				k := keys[rnd.IntN(len(keys))]
				if rnd.IntN(4) == 0 {
					k = keys[rnd.IntN(10)] // a few hot grants
				}
				tok, err := m.Grant(k).Token()
				if err != nil || tok.AccessToken != "at-"+k {
					t.Errorf("grant %q: %v, %v", k, tok, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := oauth2refresh.CheckGrants(m); err != nil {
		t.Error(err)
	}
	if held := oauth2refresh.HeldGrants(m); len(held) > 50 {
		t.Errorf("%d grants held, want at most 50", len(held))
	}
}

// TestManagerOptions: the SourceOptions apply to every grant's TokenSource, whose events carry the
// grant's key; a WithStore among them is ignored for the Manager's own Store.
func TestManagerOptions(t *testing.T) {
	ms, other := newMemStore(), newMemStore()
	exp := time.Now().Add(time.Hour)
	for _, k := range []string{"a", "b"} {
		ms.grants[k] = &memGrant{tok: &oauth2.Token{AccessToken: "at-" + k, Expiry: exp}, sem: make(chan struct{}, 1)}
	}
	var mu sync.Mutex
	var pickups []string
	m := oauth2refresh.NewManager(&oauth2refresh.Endpoint{TokenURL: "https://auth.example/token"}, ms,
		&oauth2refresh.ManagerOptions{SourceOptions: []oauth2refresh.Option{
			oauth2refresh.WithStore(other, "elsewhere"),
			oauth2refresh.WithEvents(func(ev events.Event) {
				if ev.Kind == events.StorePickup {
					mu.Lock()
					defer mu.Unlock()
					pickups = append(pickups, ev.Key)
				}
			}),
		}})
	for _, k := range []string{"a", "b"} {
		if tok, err := m.Grant(k).Token(); err != nil || tok.AccessToken != "at-"+k {
			t.Errorf("grant %q: %v, %v; want at-%s from the Manager's Store", k, tok, err, k)
		}
	}
	if diff := cmp.Diff([]string{"a", "b"}, pickups); diff != "" {
		t.Errorf("store pickup events by key (-want +got):\n%s", diff)
	}
	if n := other.trips(); n != 0 {
		t.Errorf("%d calls to the Store of the WithStore option, want 0", n)
	}
}

// TestManagerOnDeadPanics: an OnDead that panics does not unwind into the caller of
// Grant.Token nor of Grant.Client's requests, which get the *DeadGrantError; the report
// counts as made, and is not made again for the grant until it is revived.
func TestManagerOnDeadPanics(t *testing.T) {
	for _, via := range []string{"Token", "Client"} {
		t.Run(via, func(t *testing.T) {
			srv := newTokenServers(t, []string{"x"}, 3600)
			var calls atomic.Int64
			m := oauth2refresh.NewManager(srv.endpoint(), newMemStore(), &oauth2refresh.ManagerOptions{
				OnDead: func(key string, err *oauth2refresh.DeadGrantError) {
					calls.Add(1)
					panic("OnDead of " + key)
				},
			})
			if err := m.Grant("x").SaveToken(context.Background(), &oauth2.Token{RefreshToken: "x/rt-unknown"}); err != nil {
				t.Fatal(err)
			}
			use := func() error {
				if via == "Token" {
					_, err := m.Grant("x").Token()
					return err
				}
				resp, err := m.Grant("x").Client(context.Background()).Get("http://api.invalid/")
				if err == nil {
					resp.Body.Close()
				}
				return err
			}
			for i := range 3 {
				var err error
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Fatalf("call %d: OnDead's panic reached the caller: %v", i, r)
						}
					}()
					err = use()
				}()
				if !errors.Is(err, oauth2refresh.ErrInvalidGrant) {
					t.Errorf("call %d: %v, want an error matching ErrInvalidGrant", i, err)
				}
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("OnDead called %d times, want 1", n)
			}
		})
	}
}

// TestGrantKeyLength: a key longer than the Manager's limit (1024 bytes) is refused by every
// call of its Grant with an error that says so, before it costs a held entry or a Store call;
// a key of the limit is a grant like any other.
func TestGrantKeyLength(t *testing.T) {
	ctx := context.Background()
	rev := revocationServer(t, http.StatusOK, "")
	e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example/token", RevocationURL: rev.URL + "/revoke"}
	ms := newMemStore()
	m := oauth2refresh.NewManager(e, ms, nil)
	ok := strings.Repeat("k", 1024)
	if err := m.Grant(ok).SaveToken(ctx, &oauth2.Token{AccessToken: "at", Expiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatalf("SaveToken with a key of 1024 bytes: %v", err)
	}
	if tok, err := m.Grant(ok).Token(); err != nil || tok.AccessToken != "at" {
		t.Fatalf("Token with a key of 1024 bytes: %v, %v", tok, err)
	}
	before := ms.trips()
	for _, n := range []int{1025, 1 << 20} {
		g := m.Grant(strings.Repeat("k", n))
		calls := map[string]func() error{
			"SaveToken": func() error { return g.SaveToken(ctx, &oauth2.Token{RefreshToken: "rt"}) },
			"Token":     func() error { _, err := g.Token(); return err },
			"Revoke":    func() error { return g.Revoke(ctx) },
			"Delete":    func() error { return g.Delete(ctx) },
			"Client": func() error {
				resp, err := g.Client(ctx).Get(rev.URL + "/api")
				if err == nil {
					resp.Body.Close()
				}
				return err
			},
		}
		for name, call := range calls {
			err := call()
			want := fmt.Sprintf("oauth2refresh: grant key of %d bytes is longer than 1024 bytes", n)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s with a key of %d bytes: %v, want an error containing %q", name, n, err, want)
			}
			if err != nil && len(err.Error()) > 400 {
				t.Errorf("%s with a key of %d bytes: an error of %d bytes", name, n, len(err.Error()))
			}
		}
	}
	if n := ms.trips() - before; n != 0 {
		t.Errorf("%d Store calls for the long keys, want 0", n)
	}
	if diff := cmp.Diff([]string{ok}, oauth2refresh.HeldGrants(m)); diff != "" {
		t.Errorf("held grants (-want +got):\n%s", diff)
	}
	if got := rev.requests(); len(got) != 0 {
		t.Errorf("%d requests to the server, want 0", len(got))
	}
}

// TestManagerFlood: calls for keys that never held a token (an attacker's), from several
// goroutines amid the tenants' calls, each get an error matching ErrNoRefreshToken, leave no
// held entry, and never push the grants held past MaxGrants; the tenants keep their tokens.
func TestManagerFlood(t *testing.T) {
	const maxGrants = 50
	tenants := grantKeys(60)
	ms := seededStore(tenants)
	m := oauth2refresh.NewManager(benchEndpoint(&memTransport{}), ms, &oauth2refresh.ManagerOptions{MaxGrants: maxGrants})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				key := fmt.Sprintf("flood-%d-%d", g, i)
				if _, err := m.Grant(key).Token(); !errors.Is(err, oauth2refresh.ErrNoRefreshToken) {
					t.Errorf("flood key %q: %v, want an error matching ErrNoRefreshToken", key, err)
				}
				if i%5 == 0 { // the same key again: answered alike
					if _, err := m.Grant(key).Token(); !errors.Is(err, oauth2refresh.ErrNoRefreshToken) {
						t.Errorf("flood key %q again: %v, want an error matching ErrNoRefreshToken", key, err)
					}
				}
				k := tenants[(i*7+g)%len(tenants)]
				if tok, err := m.Grant(k).Token(); err != nil || tok.AccessToken != "at-"+k {
					t.Errorf("tenant %q: %v, %v", k, tok, err)
				}
			}
		})
	}
	wg.Wait()
	held := oauth2refresh.HeldGrants(m)
	if len(held) > maxGrants {
		t.Errorf("%d grants held, want at most %d", len(held), maxGrants)
	}
	for _, k := range held {
		if !contains(tenants, k) {
			t.Errorf("flood key %q is held", k)
		}
	}
	if err := oauth2refresh.CheckGrants(m); err != nil {
		t.Error(err)
	}
}

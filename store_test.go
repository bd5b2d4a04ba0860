package oauth2refresh_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store"
	"github.com/tokenkit/oauth2refresh/store/filestore"
	"golang.org/x/oauth2"
)

// faultStore wraps a Store with switchable failures.
type faultStore struct {
	oauth2refresh.Store
	down     atomic.Bool  // Load and Lock fail
	failSave atomic.Int32 // number of Saves still to fail
	lostSave atomic.Int32 // number of Saves still to fail with ErrLeaseLost
	// quoteSave is the number of Saves still to fail with an error that quotes the token and
	// the client secret, as a database's "duplicate entry" would.
	quoteSave atomic.Int32
	// stolen, when set, is saved by the first Save that fails with ErrLeaseLost, as if the
	// process that took the lease had saved it.
	stolen *oauth2.Token
	// deleteOnLost makes the first Save that fails with ErrLeaseLost delete the grant first
	// as another process's Grant.Delete would.
	deleteOnLost bool
	locks        atomic.Int64 // number of Lock calls
}

var errStoreDown = errors.New("store down")

func (f *faultStore) Load(ctx context.Context, key string) (*oauth2.Token, error) {
	if f.down.Load() {
		return nil, errStoreDown
	}
	return f.Store.Load(ctx, key)
}

func (f *faultStore) Lock(ctx context.Context, key string, ttl time.Duration) (oauth2refresh.Lease, error) {
	f.locks.Add(1)
	if f.down.Load() {
		return nil, errStoreDown
	}
	l, err := f.Store.Lock(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	return &faultLease{Lease: l, f: f, key: key}, nil
}

type faultLease struct {
	oauth2refresh.Lease
	f   *faultStore
	key string
}

func (l *faultLease) Save(ctx context.Context, t *oauth2.Token) error {
	if l.f.lostSave.Add(-1) >= 0 {
		if l.f.deleteOnLost {
			if err := l.f.Store.Delete(ctx, l.key); err != nil {
				return err
			}
		}
		if l.f.stolen != nil {
			if err := l.Lease.Save(ctx, l.f.stolen); err != nil {
				return err
			}
		}
		return fmt.Errorf("test: %w", oauth2refresh.ErrLeaseLost)
	}
	l.f.lostSave.Store(0)
	if l.f.quoteSave.Add(-1) >= 0 {
		return fmt.Errorf("duplicate entry '%s' ('%s', %q) secret %s", t.RefreshToken, t.AccessToken, t.RefreshToken, testSecret)
	}
	if l.f.failSave.Add(-1) >= 0 {
		return errStoreDown
	}
	return l.Lease.Save(ctx, t)
}

func mustLoad(t *testing.T, s oauth2refresh.Store, key string) *oauth2.Token {
	t.Helper()
	tok, err := s.Load(context.Background(), key)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return tok
}

func TestWithStoreOneRefreshForAllSources(t *testing.T) {
	// Several TokenSources, each with a filestore.Store of its own on one directory as separate
	// processes would have, share one grant: one refresh per token lifetime, whatever the
	// number of sources and goroutines.
	// Every time here is the test's clock, which moves only between the rounds: the
	// TokenSources stamp the Expiry of the tokens they receive with it (the first lives 60 s,
	// the second an hour), and decide with it which token is still valid. So how long a round
	// takes on a slow machine changes nothing: within a round no token expires.
	ctx := context.Background()
	rs := newTokenServer(t, "rt-0", 60)
	dir := t.TempDir()
	clock := newFakeClock()
	if err := oauth2refresh.SaveToken(ctx, &filestore.Store{Dir: dir}, "g",
		&oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: clock.now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	const sources, goroutines = 4, 8
	var tss []*oauth2refresh.TokenSource
	for range sources {
		tss = append(tss, rs.endpoint().TokenSource(ctx, nil,
			oauth2refresh.WithStore(&filestore.Store{Dir: dir}, "g"), oauth2refresh.WithClock(clock.now)))
	}
	round := func(want string) {
		t.Helper()
		var wg sync.WaitGroup
		for _, ts := range tss {
			for range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tok, err := ts.Token()
					if err != nil {
						t.Errorf("Token: %v", err)
						return
					}
					if tok.AccessToken != want {
						t.Errorf("AccessToken = %q, want %q", tok.AccessToken, want)
					}
				}()
			}
		}
		wg.Wait()
	}
	round("at-1")
	if n := rs.requests.Load(); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
	if got := mustLoad(t, &filestore.Store{Dir: dir}, "g"); got.RefreshToken != "rt-1" || got.AccessToken != "at-1" {
		t.Errorf("stored token = %q/%q, want at-1/rt-1", got.AccessToken, got.RefreshToken)
	}
	rs.expiresIn.Store(3600)
	clock.advance(2 * time.Minute)
	round("at-2")
	if n := rs.requests.Load(); n != 2 {
		t.Errorf("token requests = %d, want 2", n)
	}
	if rs.isRevoked() {
		t.Errorf("the grant was revoked")
	}
}

func TestWithStoreUsesTokenRefreshedElsewhere(t *testing.T) {
	// A source holding an old token picks up the one another process saved, without a
	// request, both when it finds it expired and when it is forced (a 401).
	ctx := context.Background()
	rs := newTokenServer(t, "rt-9", 3600)
	s := &filestore.Store{Dir: t.TempDir()}
	clock := newFakeClock()
	old := &oauth2.Token{AccessToken: "at-old", RefreshToken: "rt-old", Expiry: clock.now().Add(time.Minute)}
	ts := rs.endpoint().TokenSource(ctx, old, oauth2refresh.WithStore(s, "g"),
		oauth2refresh.WithClock(clock.now), oauth2refresh.EarlyRefresh(0))
	if tok, err := ts.Token(); err != nil || tok.AccessToken != "at-old" {
		t.Fatalf("Token = %v, %v; want the token it was given", tok, err)
	}
	newer := &oauth2.Token{AccessToken: "at-new", RefreshToken: "rt-new", Expiry: clock.now().Add(time.Hour), ExpiresIn: 3600}
	if err := oauth2refresh.SaveToken(ctx, s, "g", newer); err != nil {
		t.Fatal(err)
	}
	clock.advance(55 * time.Second)
	if tok, err := ts.Token(); err != nil || tok.AccessToken != "at-new" {
		t.Fatalf("Token after expiry = %v, %v; want the stored one", tok, err)
	}
	newest := &oauth2.Token{AccessToken: "at-newest", RefreshToken: "rt-newest", Expiry: clock.now().Add(2 * time.Hour)}
	if err := oauth2refresh.SaveToken(ctx, s, "g", newest); err != nil {
		t.Fatal(err)
	}
	ts.Invalidate(nil)
	if tok, err := ts.Token(); err != nil || tok.AccessToken != "at-newest" {
		t.Fatalf("Token after Invalidate = %v, %v; want the stored one", tok, err)
	}
	if n := rs.requests.Load(); n != 0 {
		t.Errorf("token requests = %d, want 0", n)
	}
	// Forced again, the stored token is the one held: now it refreshes, with the stored
	// refresh token.
	ts.Invalidate(nil)
	if _, err := ts.Token(); !errors.Is(err, oauth2refresh.ErrInvalidGrant) {
		t.Errorf("Token = %v, want ErrInvalidGrant (rt-newest is not the server's)", err)
	}
	if n := rs.requests.Load(); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
}

func TestWithStoreStart(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	valid := &oauth2.Token{AccessToken: "at-stored", RefreshToken: "rt-0", Expiry: clock.now().Add(time.Hour)}
	expired := &oauth2.Token{AccessToken: "at-stored", RefreshToken: "rt-0", Expiry: clock.now().Add(-time.Hour)}
	tests := []struct {
		name     string
		stored   *oauth2.Token // in the store before
		given    *oauth2.Token // to TokenSource
		wantAT   string        // from Token, "" for an error
		wantErr  error
		requests int64
		wantRT   string // stored after, "" for nothing stored
	}{
		{"nil token, valid stored token", valid, nil, "at-stored", nil, 0, "rt-0"},
		{"nil token, expired stored token", expired, nil, "at-1", nil, 1, "rt-1"},
		{"nil token, empty store", nil, nil, "", oauth2refresh.ErrNoRefreshToken, 0, ""},
		{"refresh token only, empty store", nil, &oauth2.Token{RefreshToken: "rt-0"}, "at-1", nil, 1, "rt-1"},
		{"stale refresh token given, newer stored", expired, &oauth2.Token{RefreshToken: "rt-spent"}, "at-1", nil, 1, "rt-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := newTokenServer(t, "rt-0", 3600)
			s := &filestore.Store{Dir: t.TempDir()}
			if tc.stored != nil {
				if err := oauth2refresh.SaveToken(ctx, s, "g", tc.stored); err != nil {
					t.Fatal(err)
				}
			}
			ts := rs.endpoint().TokenSource(ctx, tc.given, oauth2refresh.WithStore(s, "g"), oauth2refresh.WithClock(clock.now))
			tok, err := ts.Token()
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("Token error = %v, want %v", err, tc.wantErr)
				}
			case err != nil:
				t.Errorf("Token: %v", err)
			case tok.AccessToken != tc.wantAT:
				t.Errorf("AccessToken = %q, want %q", tok.AccessToken, tc.wantAT)
			}
			if n := rs.requests.Load(); n != tc.requests {
				t.Errorf("token requests = %d, want %d", n, tc.requests)
			}
			got := mustLoad(t, s, "g")
			switch {
			case tc.wantRT == "" && got != nil:
				t.Errorf("stored %v, want nothing", got)
			case tc.wantRT != "" && (got == nil || got.RefreshToken != tc.wantRT):
				t.Errorf("stored %v, want refresh token %q", got, tc.wantRT)
			}
		})
	}
}

func TestWithStoreUnreachable(t *testing.T) {
	// The store goes down: the token held is still served until it expires (background
	// refreshes fail quietly), then callers get an error wrapping the store's; once the
	// store is back, the grant recovers.
	ctx := context.Background()
	rs := newTokenServer(t, "rt-0", 3600)
	clock := newFakeClock()
	fs := &faultStore{Store: &filestore.Store{Dir: t.TempDir()}}
	tok0 := &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: clock.now().Add(60 * time.Second), ExpiresIn: 60}
	if err := oauth2refresh.SaveToken(ctx, fs, "g", tok0); err != nil {
		t.Fatal(err)
	}
	ts := rs.endpoint().TokenSource(ctx, nil, oauth2refresh.WithStore(fs, "g"), oauth2refresh.WithClock(clock.now))
	if tok, err := ts.Token(); err != nil || tok.AccessToken != "at-0" {
		t.Fatalf("Token = %v, %v", tok, err)
	}
	fs.down.Store(true)
	clock.advance(40 * time.Second) // in the early-refresh window, still valid
	for range 3 {
		if tok, err := ts.Token(); err != nil || tok.AccessToken != "at-0" {
			t.Fatalf("Token with the store down, token valid = %v, %v; want at-0", tok, err)
		}
	}
	clock.advance(15 * time.Second) // past Expiry minus the margin
	tok, err := ts.Token()
	if !errors.Is(err, errStoreDown) {
		t.Fatalf("Token with the store down, token expired = %v, %v; want an error wrapping the store's", tok, err)
	}
	if n := rs.requests.Load(); n != 0 {
		t.Errorf("token requests = %d, want 0", n)
	}
	fs.down.Store(false)
	clock.advance(time.Minute) // past any backoff
	if tok, err := ts.Token(); err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("Token once the store is back = %v, %v; want at-1", tok, err)
	}
}

func TestWithStoreSaveFailureKeepsToken(t *testing.T) {
	// A refreshed token that cannot be saved holds the only valid refresh token: the next
	// refresh saves it rather than sending a request with the stored, spent one.
	ctx := context.Background()
	rs := newTokenServer(t, "rt-0", 3600)
	clock := newFakeClock()
	fs := &faultStore{Store: &filestore.Store{Dir: t.TempDir()}}
	if err := oauth2refresh.SaveToken(ctx, fs, "g", &oauth2.Token{RefreshToken: "rt-0"}); err != nil {
		t.Fatal(err)
	}
	ts := rs.endpoint().TokenSource(ctx, nil, oauth2refresh.WithStore(fs, "g"), oauth2refresh.WithClock(clock.now))
	fs.failSave.Store(2) // the save and its prompt retry
	if _, err := ts.Token(); !errors.Is(err, errStoreDown) {
		t.Fatalf("Token = %v, want an error wrapping the Save error", err)
	}
	clock.advance(time.Minute) // past the backoff
	tok, err := ts.Token()
	if err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("Token = %v, %v; want at-1", tok, err)
	}
	if n := rs.requests.Load(); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
	if got := mustLoad(t, fs, "g"); got.RefreshToken != "rt-1" {
		t.Errorf("stored refresh token = %q, want rt-1", got.RefreshToken)
	}
	if rs.isRevoked() {
		t.Errorf("the grant was revoked")
	}
}

func TestWithStoreLeaseLost(t *testing.T) {
	// The save reports that another lease was granted since (the lease lapsed). The source
	// takes a new lease: if nobody moved the grant on from the refresh token it spent, it
	// saves its token (the newest); if another process saved a token since, that one is the
	// truth and is used, and nothing is sent again.
	tests := []struct {
		name     string
		stolen   *oauth2.Token
		wantAT   string
		wantRT   string
		requests int64
	}{
		{name: "nobody moved on", wantAT: "at-1", wantRT: "rt-1", requests: 1},
		{name: "another process saved a newer token", stolen: &oauth2.Token{AccessToken: "at-9", RefreshToken: "rt-9", Expiry: time.Now().Add(100 * 365 * 24 * time.Hour)},
			wantAT: "at-9", wantRT: "rt-9", requests: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			rs := newTokenServer(t, "rt-0", 3600)
			fs := &faultStore{Store: &filestore.Store{Dir: t.TempDir()}, stolen: tc.stolen}
			fs.lostSave.Store(1)
			ts := rs.endpoint().TokenSource(ctx, &oauth2.Token{RefreshToken: "rt-0"}, oauth2refresh.WithStore(fs, "g"))
			if tok, err := ts.Token(); err != nil || tok.AccessToken != tc.wantAT {
				t.Fatalf("Token = %v, %v; want %s", tok, err, tc.wantAT)
			}
			if got := mustLoad(t, fs, "g"); got == nil || got.RefreshToken != tc.wantRT {
				t.Errorf("stored %v, want refresh token %s", got, tc.wantRT)
			}
			if n := rs.requests.Load(); n != tc.requests {
				t.Errorf("token requests = %d, want %d", n, tc.requests)
			}
			if rs.isRevoked() {
				t.Error("the grant was revoked")
			}
		})
	}
}

func TestWithStoreSaveFailsOnce(t *testing.T) {
	// A save that fails once (a connection reset) is retried at once on the same lease: the
	// caller gets the token, the store holds it.
	ctx := context.Background()
	rs := newTokenServer(t, "rt-0", 3600)
	fs := &faultStore{Store: &filestore.Store{Dir: t.TempDir()}}
	if err := oauth2refresh.SaveToken(ctx, fs, "g", &oauth2.Token{RefreshToken: "rt-0"}); err != nil {
		t.Fatal(err)
	}
	fs.failSave.Store(1)
	ts := rs.endpoint().TokenSource(ctx, nil, oauth2refresh.WithStore(fs, "g"))
	if tok, err := ts.Token(); err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("Token = %v, %v; want at-1", tok, err)
	}
	if got := mustLoad(t, fs, "g"); got.RefreshToken != "rt-1" {
		t.Errorf("stored refresh token = %q, want rt-1", got.RefreshToken)
	}
}

func TestWithStoreCorruptFile(t *testing.T) {
	ctx := context.Background()
	rs := newTokenServer(t, "rt-0", 3600)
	dir := t.TempDir()
	path := filepath.Join(dir, "g.json")
	content := []byte(`{"version": 4, "refresh_token": "rt-`)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	ts := rs.endpoint().TokenSource(ctx, &oauth2.Token{RefreshToken: "rt-0"},
		oauth2refresh.WithStore(&filestore.Store{Dir: dir}, "g"))
	_, err := ts.Token()
	var ce *store.CorruptTokenError
	if !errors.As(err, &ce) {
		t.Fatalf("Token = %v, want a *CorruptTokenError", err)
	}
	if n := rs.requests.Load(); n != 0 {
		t.Errorf("token requests = %d, want 0", n)
	}
	if b, _ := os.ReadFile(path); string(b) != string(content) {
		t.Errorf("corrupt file changed to %q", b)
	}
}

func TestWithStoreOptionOrder(t *testing.T) {
	// Options compose in any order; a second WithStore replaces the first.
	ctx := context.Background()
	tests := []struct {
		name string
		opts func(s1, s2 oauth2refresh.Store, hook oauth2refresh.Option, clock *fakeClock) []oauth2refresh.Option
	}{
		{"store first", func(s1, s2 oauth2refresh.Store, hook oauth2refresh.Option, clock *fakeClock) []oauth2refresh.Option {
			return []oauth2refresh.Option{oauth2refresh.WithStore(s1, "g"), hook, oauth2refresh.WithClock(clock.now), oauth2refresh.ExpiryMargin(time.Minute)}
		}},
		{"store last", func(s1, s2 oauth2refresh.Store, hook oauth2refresh.Option, clock *fakeClock) []oauth2refresh.Option {
			return []oauth2refresh.Option{oauth2refresh.ExpiryMargin(time.Minute), oauth2refresh.WithClock(clock.now), hook, oauth2refresh.WithStore(s1, "g")}
		}},
		{"another store replaced", func(s1, s2 oauth2refresh.Store, hook oauth2refresh.Option, clock *fakeClock) []oauth2refresh.Option {
			return []oauth2refresh.Option{oauth2refresh.WithStore(s2, "g"), oauth2refresh.WithClock(clock.now), hook, oauth2refresh.WithStore(s1, "g"), oauth2refresh.ExpiryMargin(time.Minute)}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := newTokenServer(t, "rt-0", 3600)
			clock := newFakeClock()
			s1, s2 := &filestore.Store{Dir: t.TempDir()}, &filestore.Store{Dir: t.TempDir()}
			// Stored: a token with 50 s left, not servable under a 1 min margin.
			if err := oauth2refresh.SaveToken(ctx, s1, "g", &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: clock.now().Add(50 * time.Second)}); err != nil {
				t.Fatal(err)
			}
			var hooked []string
			hook := oauth2refresh.OnNewToken(func(ctx context.Context, tok *oauth2.Token) error {
				hooked = append(hooked, tok.RefreshToken)
				return nil
			})
			ts := rs.endpoint().TokenSource(ctx, nil, tc.opts(s1, s2, hook, clock)...)
			tok, err := ts.Token()
			if err != nil || tok.AccessToken != "at-1" {
				t.Fatalf("Token = %v, %v; want at-1", tok, err)
			}
			if got := mustLoad(t, s1, "g"); got.RefreshToken != "rt-1" {
				t.Errorf("stored refresh token %q, want rt-1", got.RefreshToken)
			}
			if got := mustLoad(t, s2, "g"); got != nil {
				t.Errorf("the replaced store holds %v, want nothing", got)
			}
			if diff := cmp.Diff([]string{"rt-1"}, hooked); diff != "" {
				t.Errorf("OnNewToken saw (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFileStoreKeepsRefreshTokenExpiry: the refresh token's expiry and the response's Extra
// survive a restart through a filestore.Store: a new TokenSource on the same key loads them, and past
// the expiry it sends nothing and says that the grant must be authorized again.
func TestFileStoreKeepsRefreshTokenExpiry(t *testing.T) {
	ctx := context.Background()
	ts := newTokenServer(t, "rt-0", 3600)
	ts.onIssue = func(r *http.Request, tok map[string]any) { tok["refresh_token_expires_in"] = "7200" }
	clock := newFakeClock()
	dir := t.TempDir()
	if err := oauth2refresh.SaveToken(ctx, &filestore.Store{Dir: dir}, "g", &oauth2.Token{RefreshToken: "rt-0"}); err != nil {
		t.Fatal(err)
	}
	src := func() *oauth2refresh.TokenSource { // a process starting
		return ts.endpoint().TokenSource(ctx, nil, oauth2refresh.WithStore(&filestore.Store{Dir: dir}, "g"),
			oauth2refresh.WithClock(clock.now))
	}
	if _, err := src().Token(); err != nil {
		t.Fatal(err)
	}
	tok, err := src().Token()
	if err != nil {
		t.Fatal(err)
	}
	want := clock.now().Add(2 * time.Hour)
	if got := oauth2refresh.RefreshTokenExpiry(tok); !got.Equal(want) || tok.Extra("id_token") != "id-1" {
		t.Errorf("after a restart: RefreshTokenExpiry = %v, id_token %v; want %v, id-1", got, tok.Extra("id_token"), want)
	}
	clock.set(want)
	_, err = src().Token()
	if !errors.Is(err, oauth2refresh.ErrRefreshTokenExpired) || !errors.Is(err, oauth2refresh.ErrInvalidGrant) {
		t.Errorf("past the expiry = %v, want ErrRefreshTokenExpired matching ErrInvalidGrant", err)
	}
	if n := ts.requests.Load(); n != 1 {
		t.Errorf("token server got %d requests, want 1", n)
	}
}

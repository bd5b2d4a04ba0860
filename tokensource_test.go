package oauth2refresh_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh/events"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store/filestore"
)

func expiredToken(clock *fakeClock, rt string) *oauth2.Token {
	return &oauth2.Token{AccessToken: "old", RefreshToken: rt, Expiry: clock.now().Add(-time.Second)}
}

func TestTokenSourceCachedTokenNoIO(t *testing.T) {
	ts := newTokenServer(t, "rt-0", 3600)
	clock := newFakeClock()
	tok := &oauth2.Token{AccessToken: "cached", RefreshToken: "rt-0", Expiry: clock.now().Add(time.Hour)}
	src := ts.endpoint().TokenSource(context.Background(), tok, oauth2refresh.WithClock(clock.now))
	for range 100 {
		got, err := src.Token()
		if err != nil || got != tok {
			t.Fatalf("Token() = %v, %v; want the cached token", got, err)
		}
	}
	if n := ts.requests.Load(); n != 0 {
		t.Errorf("token server saw %d requests, want 0", n)
	}
}

func TestTokenSourceNoExpiryValidUntilInvalidate(t *testing.T) {
	ts := newTokenServer(t, "rt-0", 0)
	clock := newFakeClock()
	tok := &oauth2.Token{AccessToken: "forever", RefreshToken: "rt-0"}
	src := ts.endpoint().TokenSource(context.Background(), tok, oauth2refresh.WithClock(clock.now))
	clock.advance(100 * 365 * 24 * time.Hour)
	if got, err := src.Token(); err != nil || got != tok {
		t.Fatalf("Token() = %v, %v; want the token without expiry", got, err)
	}
	src.Invalidate(tok)
	got, err := src.Token()
	if err != nil || got.AccessToken != "at-1" || !got.Expiry.IsZero() {
		t.Fatalf("Token() after Invalidate = %v, %v; want at-1 without expiry", got, err)
	}
	if n := ts.requests.Load(); n != 1 {
		t.Errorf("token server saw %d requests, want 1", n)
	}
}

func TestTokenSourceStartTokens(t *testing.T) {
	tests := []struct {
		name     string
		tok      *oauth2.Token
		wantErr  error
		wantReqs int64
	}{
		{name: "nil token", tok: nil, wantErr: oauth2refresh.ErrNoRefreshToken},
		{name: "expired without refresh token", tok: &oauth2.Token{AccessToken: "a", Expiry: time.Now().Add(-time.Hour)}, wantErr: oauth2refresh.ErrNoRefreshToken},
		{name: "refresh token only", tok: &oauth2.Token{RefreshToken: "rt-0"}, wantReqs: 1},
		{name: "expired", tok: &oauth2.Token{AccessToken: "a", RefreshToken: "rt-0", Expiry: time.Now().Add(-time.Hour)}, wantReqs: 1},
		{name: "within the margin", tok: &oauth2.Token{AccessToken: "a", RefreshToken: "rt-0", Expiry: time.Now().Add(5 * time.Second)}, wantReqs: 1},
		{name: "outside the margin", tok: &oauth2.Token{AccessToken: "a", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour)}, wantReqs: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTokenServer(t, "rt-0", 3600)
			src := ts.endpoint().TokenSource(context.Background(), tc.tok)
			got, err := src.Token()
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Token() error = %v, want %v", err, tc.wantErr)
			}
			if n := ts.requests.Load(); n != tc.wantReqs {
				t.Errorf("token server saw %d requests, want %d", n, tc.wantReqs)
			}
			if err == nil && tc.wantReqs == 1 {
				if got.AccessToken != "at-1" || got.RefreshToken != "rt-1" || got.Extra("id_token") != "id-1" {
					t.Errorf("Token() = %+v (id_token %v), want at-1/rt-1/id-1", got, got.Extra("id_token"))
				}
			}
		})
	}
}

func TestTokenSourceServableRule(t *testing.T) {
	// No token is handed out with less than the margin left, whenever the source got it;
	// only a token the server issued with a lifetime (ExpiresIn) shorter than twice the
	// margin is served for the first half of that lifetime, counted from issue.
	tests := []struct {
		name      string
		left      time.Duration // left on arrival
		expiresIn int64         // issued lifetime in seconds; 0 unknown
		margin    time.Duration // 0: the default
		at        time.Duration // when Token is called, from arrival
		served    bool
	}{
		{name: "5 s left, default margin", left: 5 * time.Second, served: false},
		{name: "11 s left, default margin", left: 11 * time.Second, served: true},
		{name: "11 s left, a second later", left: 11 * time.Second, at: 1500 * time.Millisecond, served: false},
		{name: "4 min left, 5 min margin", left: 4 * time.Minute, margin: 5 * time.Minute, served: false},
		{name: "6 min left, 5 min margin", left: 6 * time.Minute, margin: 5 * time.Minute, served: true},
		{name: "issued for 5 s, fresh: half its life", left: 5 * time.Second, expiresIn: 5, at: 2 * time.Second, served: true},
		{name: "issued for 5 s, past half its life", left: 5 * time.Second, expiresIn: 5, at: 3 * time.Second, served: false},
		{name: "issued for 15 s, 5 s left: past half its issued life", left: 5 * time.Second, expiresIn: 15, served: false},
		{name: "issued for 15 s, 8 s left", left: 8 * time.Second, expiresIn: 15, served: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTokenServer(t, "rt-0", 3600)
			clock := newFakeClock()
			tok := &oauth2.Token{AccessToken: "handed-in", RefreshToken: "rt-0", Expiry: clock.now().Add(tc.left), ExpiresIn: tc.expiresIn}
			opts := []oauth2refresh.Option{oauth2refresh.WithClock(clock.now), oauth2refresh.EarlyRefresh(0)}
			if tc.margin > 0 {
				opts = append(opts, oauth2refresh.ExpiryMargin(tc.margin))
			}
			src := ts.endpoint().TokenSource(context.Background(), tok, opts...)
			clock.advance(tc.at)
			got, err := src.Token()
			if err != nil {
				t.Fatal(err)
			}
			if served := got == tok; served != tc.served {
				t.Errorf("Token() = %s, served the handed-in token: %v, want %v", got.AccessToken, served, tc.served)
			}
			if left := got.Expiry.Sub(clock.now()); got != tok && left < time.Hour-time.Second {
				t.Errorf("Token() = %s with %v left, want a fresh one", got.AccessToken, left)
			}
		})
	}
}

func TestTokenSourceEarlyRefreshFromIssue(t *testing.T) {
	// A handed-in token with 15 s left under EarlyRefresh(30s) starts its background refresh
	// on the first call; "not before half the servable life" counts from issue.
	tests := []struct {
		name      string
		left      time.Duration
		expiresIn int64
		wantBg    bool
	}{
		{name: "unknown issue, 15 s left", left: 15 * time.Second, wantBg: true},
		{name: "issued 3600 s ago, 15 s left", left: 15 * time.Second, expiresIn: 3600, wantBg: true},
		{name: "issued for 60 s, 45 s left: before half its servable life", left: 45 * time.Second, expiresIn: 60, wantBg: false},
		{name: "issued for 60 s, 30 s left: past half", left: 30 * time.Second, expiresIn: 60, wantBg: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTokenServer(t, "rt-0", 3600)
			clock := newFakeClock()
			tok := &oauth2.Token{AccessToken: "handed-in", RefreshToken: "rt-0", Expiry: clock.now().Add(tc.left), ExpiresIn: tc.expiresIn}
			src := ts.endpoint().TokenSource(context.Background(), tok, oauth2refresh.WithClock(clock.now), oauth2refresh.EarlyRefresh(30*time.Second))
			if got, err := src.Token(); err != nil || got != tok {
				t.Fatalf("first Token() = %v, %v; want the still-servable handed-in token", got, err)
			}
			oauth2refresh.WaitFlight(src)
			if n := ts.requests.Load(); (n == 1) != tc.wantBg {
				t.Errorf("token server saw %d requests after the first call, want background refresh %v", n, tc.wantBg)
			}
		})
	}
}

func TestTokenSourceOneRefreshForConcurrentCallers(t *testing.T) {
	ts := newTokenServer(t, "rt-0", 3600)
	release := make(chan struct{})
	ts.hold = func() { <-release }
	clock := newFakeClock()
	src := ts.endpoint().TokenSource(context.Background(), expiredToken(clock, "rt-0"), oauth2refresh.WithClock(clock.now))

	const callers = 50
	var wg sync.WaitGroup
	results := make([]*oauth2.Token, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() { results[i], errs[i] = src.Token() })
	}
	for ts.requests.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || results[i].AccessToken != "at-1" {
			t.Errorf("caller %d: Token() = %v, %v; want at-1", i, results[i], errs[i])
		}
	}
	if n := ts.requests.Load(); n != 1 {
		t.Errorf("token server saw %d requests, want 1", n)
	}
}

func TestTokenSourceFailureStorm(t *testing.T) {
	ts := newTokenServer(t, "rt-0", 3600)
	ts.fail = func(int64) bool { return true }
	clock := newFakeClock()
	src := ts.endpoint().TokenSource(context.Background(), expiredToken(clock, "rt-0"), oauth2refresh.WithClock(clock.now))

	// Half the callers can give up waiting, half cannot: both kinds share the one attempt.
	const callers = 20
	var wg sync.WaitGroup
	errs := make([]error, callers)
	start := make(chan struct{})
	for i := range callers {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			<-start
			if i%2 == 0 {
				_, errs[i] = src.TokenContext(ctx)
			} else {
				_, errs[i] = src.Token()
			}
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		var ue *oauth2refresh.UnexpectedResponseError
		var re *oauth2refresh.RequestError
		if !errors.As(err, &ue) && !errors.As(err, &re) {
			t.Errorf("caller %d: error = %v, want the 503 from the token endpoint", i, err)
		}
		if !oauth2refresh.IsTemporary(err) {
			t.Errorf("caller %d: oauth2refresh.IsTemporary(%v) = false, want true", i, err)
		}
	}
	if n := ts.requests.Load(); n != 1 {
		t.Errorf("token server saw %d requests, want 1", n)
	}

	// Inside the backoff window (at least half a second after the first failure), calls
	// return the last error without I/O.
	clock.advance(400 * time.Millisecond)
	if _, err := src.Token(); err == nil {
		t.Fatal("Token() inside the backoff window succeeded, want the last error")
	}
	if n := ts.requests.Load(); n != 1 {
		t.Errorf("token server saw %d requests inside the backoff window, want 1", n)
	}
	// After it, the next call tries again, and each further failure backs off longer.
	for attempt := int64(2); attempt <= 7; attempt++ {
		clock.advance(oauth2refresh.MaxBackoff)
		if _, err := src.Token(); err == nil {
			t.Fatalf("attempt %d succeeded against a failing endpoint", attempt)
		}
		if n := ts.requests.Load(); n != attempt {
			t.Fatalf("token server saw %d requests, want %d", n, attempt)
		}
	}
	// After 7 failures the backoff is at least 15 s.
	clock.advance(14 * time.Second)
	src.Token()
	if n := ts.requests.Load(); n != 7 {
		t.Errorf("token server saw %d requests 14 s after the 7th failure, want 7", n)
	}
	// Recovery resets the backoff.
	ts.fail = nil
	clock.advance(oauth2refresh.MaxBackoff)
	if got, err := src.Token(); err != nil || got.AccessToken != "at-1" {
		t.Fatalf("Token() after recovery = %v, %v; want at-1", got, err)
	}
}

func TestBackoff(t *testing.T) {
	for _, limit := range []time.Duration{oauth2refresh.MaxBackoff, oauth2refresh.MaxRefusedBackoff} {
		for n := 1; n < 70; n++ {
			want := min(oauth2refresh.MinBackoff<<min(n-1, 20), limit)
			for range 20 {
				if d := oauth2refresh.BackoffDelay(n, oauth2refresh.MinBackoff, limit); d < want/2 || d >= want {
					t.Fatalf("oauth2refresh.BackoffDelay(%d, %v) = %v, want in [%v, %v)", n, limit, d, want/2, want)
				}
			}
		}
	}
}

func TestTokenSourceRotationManyGoroutines(t *testing.T) {
	// Tokens live 60 s (served 50 s, refreshed early from 25 s on); the clock jumps ahead
	// while 8 goroutines keep asking. The server rejects any refresh token it rotated out.
	ts := newTokenServer(t, "rt-0", 60)
	clock := newFakeClock()
	src := ts.endpoint().TokenSource(context.Background(), expiredToken(clock, "rt-0"), oauth2refresh.WithClock(clock.now))

	var calls, bad atomic.Int64
	var firstBad atomic.Value
	for range 300 {
		clock.advance(7 * time.Second)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				// Half the callers can give up (the refresh then runs on its own
				// goroutine), half cannot (the first of them runs it).
				ctx := context.Background()
				if g%2 == 0 {
					c, cancel := context.WithCancel(ctx)
					defer cancel()
					ctx = c
				}
				for range 10 {
					t0 := clock.now()
					tok, err := src.TokenContext(ctx)
					calls.Add(1)
					if err == nil && !tok.Expiry.After(t0) {
						err = fmt.Errorf("%s expires at %v, before the call began at %v", tok.AccessToken, tok.Expiry, t0)
					}
					if err != nil && bad.Add(1) == 1 {
						firstBad.Store(err)
					}
				}
			})
		}
		wg.Wait()
	}
	oauth2refresh.WaitFlight(src)
	if n := bad.Load(); n != 0 {
		t.Errorf("%d bad Token() calls, the first: %v", n, firstBad.Load())
	}
	if n := ts.reused.Load(); n != 0 {
		t.Errorf("server saw %d rotated-out refresh tokens", n)
	}
	// 300 × 7 s = 2100 s; a token is served for at most 50 s, so it is replaced by the
	// first round at most 56 s after it arrived: at least 37 refreshes.
	if n := ts.requests.Load(); n < 37 {
		t.Errorf("server saw %d refreshes over 2100 s of 60 s tokens, want at least 37", n)
	}
	t.Logf("%d calls, %d refreshes", calls.Load(), ts.requests.Load())
}

func TestTokenSourceOnRefreshFailureKeepsToken(t *testing.T) {
	// A failing hook is retried once at once, then after each backoff, always with the same
	// token and without a new refresh; the token is handed out once the hook took it.
	ts := newTokenServer(t, "rt-0", 3600)
	clock := newFakeClock()
	errDisk := errors.New("disk full")
	var hookCalls []string
	failHook := true
	src := ts.endpoint().TokenSource(context.Background(), expiredToken(clock, "rt-0"), oauth2refresh.WithClock(clock.now),
		oauth2refresh.OnNewToken(func(ctx context.Context, t *oauth2.Token) error {
			hookCalls = append(hookCalls, t.AccessToken+"/"+t.RefreshToken)
			if failHook {
				return errDisk
			}
			return nil
		}))

	if _, err := src.Token(); !errors.Is(err, errDisk) {
		t.Fatalf("Token() error = %v, want one wrapping %v", err, errDisk)
	}
	if len(hookCalls) != 2 {
		t.Fatalf("hook called %d times by the first flight, want 2 (one prompt retry)", len(hookCalls))
	}
	// Inside the backoff: the same error, no hook call.
	for range 1000 {
		if _, err := src.Token(); !errors.Is(err, errDisk) {
			t.Fatalf("Token() inside the backoff: error = %v, want one wrapping %v", err, errDisk)
		}
	}
	if len(hookCalls) != 2 {
		t.Fatalf("hook called %d times inside the backoff, want 2", len(hookCalls))
	}
	// After it: one more call of the hook, with the same token.
	clock.advance(oauth2refresh.MaxBackoff)
	if _, err := src.Token(); !errors.Is(err, errDisk) {
		t.Fatalf("Token() after the backoff: error = %v, want one wrapping %v", err, errDisk)
	}
	failHook = false
	clock.advance(oauth2refresh.MaxBackoff)
	got, err := src.Token()
	if err != nil || got.AccessToken != "at-1" || got.RefreshToken != "rt-1" {
		t.Fatalf("Token() once the hook works = %v, %v; want at-1", got, err)
	}
	if n := ts.requests.Load(); n != 1 {
		t.Errorf("token server saw %d requests, want 1", n)
	}
	want := []string{"at-1/rt-1", "at-1/rt-1", "at-1/rt-1", "at-1/rt-1"}
	if diff := cmp.Diff(want, hookCalls); diff != "" {
		t.Errorf("OnNewToken calls mismatch (-want +got):\n%s", diff)
	}
	// The token is handed out from the cache now; the hook is not called again.
	if got2, err := src.Token(); err != nil || got2 != got {
		t.Errorf("Token() = %v, %v; want the cached at-1", got2, err)
	}
	if len(hookCalls) != 4 {
		t.Errorf("hook called %d times, want 4", len(hookCalls))
	}
}

func TestTokenSourceFailingHookNotInHotLoop(t *testing.T) {
	// A hook that fails at once (a database down), 16 goroutines asking as fast as they can,
	// with callers that can and cannot give up: the hook is called twice per backoff, all
	// callers sharing each attempt, and the token server once.
	ts := newTokenServer(t, "rt-0", 3600)
	clock := newFakeClock()
	var calls atomic.Int64
	src := ts.endpoint().TokenSource(context.Background(), expiredToken(clock, "rt-0"), oauth2refresh.WithClock(clock.now),
		oauth2refresh.OnNewToken(func(ctx context.Context, t *oauth2.Token) error {
			calls.Add(1)
			return errors.New("database down")
		}))
	for round := range 3 {
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				for range 500 {
					if g%2 == 0 {
						src.TokenContext(ctx)
					} else {
						src.Token()
					}
				}
			})
		}
		wg.Wait()
		oauth2refresh.WaitFlight(src)
		if n, want := calls.Load(), int64(round+2); n != want {
			t.Fatalf("round %d: hook called %d times, want %d (two, then one per backoff)", round, n, want)
		}
		clock.advance(oauth2refresh.MaxBackoff)
	}
	if n := ts.requests.Load(); n != 1 {
		t.Errorf("token server saw %d requests, want 1: the unsaved token is never refreshed again", n)
	}
}

func TestTokenSourceHookErrorRedacted(t *testing.T) {
	// A hook error that quotes the new refresh token (MySQL's "Duplicate entry") reaches
	// callers without it.
	ts := newTokenServer(t, "rt-0", 3600)
	clock := newFakeClock()
	src := ts.endpoint().TokenSource(context.Background(), expiredToken(clock, "rt-0"), oauth2refresh.WithClock(clock.now),
		oauth2refresh.OnNewToken(func(ctx context.Context, t *oauth2.Token) error {
			return fmt.Errorf("Error 1062: Duplicate entry '%s' for key 'PRIMARY' (access %s)", t.RefreshToken, t.AccessToken)
		}))
	_, err := src.Token()
	if err == nil {
		t.Fatal("Token() succeeded with a failing hook")
	}
	for _, secret := range []string{"rt-1", "at-1", "rt-0"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q quotes %s", err, secret)
		}
	}
}

func TestTokenSourceOnRefreshFailureThenExpiry(t *testing.T) {
	// If the unsaved token itself expires while the hook keeps failing, it is still saved
	// first (it is never refreshed before), then its refresh token, the newest, is the one
	// sent next.
	ts := newTokenServer(t, "rt-0", 60)
	clock := newFakeClock()
	var fail atomic.Bool
	fail.Store(true)
	var saved []string
	src := ts.endpoint().TokenSource(context.Background(), expiredToken(clock, "rt-0"), oauth2refresh.WithClock(clock.now),
		oauth2refresh.OnNewToken(func(ctx context.Context, t *oauth2.Token) error {
			if fail.Load() {
				return errors.New("store down")
			}
			saved = append(saved, t.RefreshToken)
			return nil
		}))
	if _, err := src.Token(); err == nil {
		t.Fatal("Token() with a failing hook succeeded")
	}
	clock.advance(2 * time.Minute)
	fail.Store(false)
	got, err := src.Token()
	if err != nil || got.AccessToken != "at-2" {
		t.Fatalf("Token() = %v, %v; want at-2", got, err)
	}
	if n := ts.reused.Load(); n != 0 {
		t.Errorf("server saw %d rotated-out refresh tokens", n)
	}
	if diff := cmp.Diff([]string{"rt-1", "rt-2"}, saved); diff != "" {
		t.Errorf("saved refresh tokens mismatch (-want +got):\n%s", diff)
	}
}

func TestTokenSourceOnRefreshOrder(t *testing.T) {
	// Many goroutines force refreshes; the hook must see the tokens one at a time in the
	// order the server issued them, and every token handed out must have been saved first.
	ts := newTokenServer(t, "rt-0", 3600)
	clock := newFakeClock()
	var mu sync.Mutex // guards saved and inHook
	saved := map[string]int{}
	var order []int
	inHook := 0
	src := ts.endpoint().TokenSource(context.Background(), expiredToken(clock, "rt-0"), oauth2refresh.WithClock(clock.now),
		oauth2refresh.OnNewToken(func(ctx context.Context, tok *oauth2.Token) error {
			mu.Lock()
			inHook++
			if inHook != 1 {
				t.Errorf("%d concurrent oauth2refresh.OnNewToken calls", inHook)
			}
			n, _ := strconv.Atoi(tok.AccessToken[len("at-"):])
			order = append(order, n)
			saved[tok.AccessToken] = n
			inHook--
			mu.Unlock()
			return nil
		}))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				tok, err := src.Token()
				if err != nil {
					t.Errorf("Token() = %v", err)
					return
				}
				mu.Lock()
				_, ok := saved[tok.AccessToken]
				mu.Unlock()
				if !ok {
					t.Errorf("%s handed out before oauth2refresh.OnNewToken saw it", tok.AccessToken)
				}
				src.Invalidate(tok)
			}
		})
	}
	wg.Wait()
	for i, n := range order {
		if n != i+1 {
			t.Fatalf("oauth2refresh.OnNewToken saw tokens in order %v, want 1, 2, 3, ...", order)
		}
	}
	if len(order) < 2 {
		t.Errorf("only %d refreshes", len(order))
	}
	if n := ts.reused.Load(); n != 0 {
		t.Errorf("server saw %d rotated-out refresh tokens", n)
	}
}

func TestTokenSourceWaiterCancellation(t *testing.T) {
	ts := newTokenServer(t, "rt-0", 3600)
	release := make(chan struct{})
	received := make(chan struct{}, 1)
	ts.hold = func() { received <- struct{}{}; <-release }
	clock := newFakeClock()
	src := ts.endpoint().TokenSource(context.Background(), expiredToken(clock, "rt-0"), oauth2refresh.WithClock(clock.now))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := src.TokenContext(ctx)
		done <- err
	}()
	<-received
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("TokenContext() with a canceled ctx = %v, want context.Canceled", err)
	}
	close(release)
	got, err := src.Token()
	if err != nil || got.AccessToken != "at-1" {
		t.Fatalf("Token() = %v, %v; want at-1 from the refresh the canceled caller started", got, err)
	}
	if n := ts.requests.Load(); n != 1 {
		t.Errorf("token server saw %d requests, want 1", n)
	}
}

func TestTokenSourceCanceledSourceContext(t *testing.T) {
	// The ctx given to oauth2refresh.TokenSource supplies the HTTP client; its cancellation does not stop
	// later refreshes (golang/oauth2#388).
	ts := newTokenServer(t, "rt-0", 3600)
	var used atomic.Int64
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}
	type key struct{}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), oauth2.HTTPClient, client))
	ctx = context.WithValue(ctx, key{}, "app value")
	clock := newFakeClock()
	src := ts.endpoint().TokenSource(ctx, expiredToken(clock, "rt-0"), oauth2refresh.WithClock(clock.now),
		oauth2refresh.OnNewToken(func(ctx context.Context, tok *oauth2.Token) error {
			if ctx.Err() != nil || ctx.Value(key{}) != "app value" {
				t.Errorf("oauth2refresh.OnNewToken ctx: Err() = %v, value = %v; want nil and the value of the oauth2refresh.TokenSource ctx", ctx.Err(), ctx.Value(key{}))
			}
			return nil
		}))
	cancel()
	for i := 1; i <= 2; i++ {
		got, err := src.Token()
		if err != nil || got.AccessToken != "at-"+strconv.Itoa(i) {
			t.Fatalf("refresh %d: Token() = %v, %v", i, got, err)
		}
		clock.advance(2 * time.Hour)
	}
	if n := used.Load(); n != 2 {
		t.Errorf("the client from the context sent %d requests, want 2", n)
	}
}

func TestTokenSourceEarlyRefreshDoesNotBlock(t *testing.T) {
	ts := newTokenServer(t, "rt-0", 3600)
	release := make(chan struct{})
	received := make(chan struct{}, 1)
	ts.hold = func() { received <- struct{}{}; <-release }
	clock := newFakeClock()
	tok := &oauth2.Token{AccessToken: "old", RefreshToken: "rt-0", Expiry: clock.now().Add(time.Hour)}
	src := ts.endpoint().TokenSource(context.Background(), tok, oauth2refresh.WithClock(clock.now), oauth2refresh.EarlyRefresh(5*time.Minute))

	// Before the window: no refresh.
	clock.advance(time.Hour - 10*time.Second - 5*time.Minute - time.Second)
	if got, err := src.Token(); err != nil || got != tok {
		t.Fatalf("Token() before the window = %v, %v", got, err)
	}
	if n := ts.requests.Load(); n != 0 {
		t.Fatalf("token server saw %d requests before the window, want 0", n)
	}
	// In the window: the still-valid token comes back at once, even to a caller whose ctx
	// is already done (a caller that waited would get ctx's error), and one refresh starts.
	clock.advance(2 * time.Second)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for range 10 {
		if got, err := src.TokenContext(done); err != nil || got != tok {
			t.Fatalf("Token() in the window = %v, %v; want the still-valid token", got, err)
		}
	}
	<-received
	close(release)
	oauth2refresh.WaitFlight(src)
	got, err := src.TokenContext(done)
	if err != nil || got.AccessToken != "at-1" {
		t.Fatalf("Token() after the background refresh = %v, %v; want at-1", got, err)
	}
	if n := ts.requests.Load(); n != 1 {
		t.Errorf("token server saw %d requests, want 1", n)
	}
}

func TestTokenSourceBackgroundFailure(t *testing.T) {
	// The start token is served until 90 s (100 s minus the margin); the early window opens
	// at 45 s (half its servable life).
	setup := func(t *testing.T) (*tokenServer, *fakeClock, *oauth2refresh.TokenSource, *oauth2.Token) {
		ts := newTokenServer(t, "rt-0", 3600)
		clock := newFakeClock()
		tok := &oauth2.Token{AccessToken: "old", RefreshToken: "rt-0", Expiry: clock.now().Add(100 * time.Second)}
		src := ts.endpoint().TokenSource(context.Background(), tok, oauth2refresh.WithClock(clock.now))
		return ts, clock, src, tok
	}
	t.Run("recovery", func(t *testing.T) {
		ts, clock, src, tok := setup(t)
		var failing atomic.Bool
		failing.Store(true)
		ts.fail = func(int64) bool { return failing.Load() }
		clock.advance(50 * time.Second)
		for want := int64(1); want <= 3; want++ {
			if got, err := src.Token(); err != nil || got != tok {
				t.Fatalf("Token() = %v, %v; want the still-valid token", got, err)
			}
			oauth2refresh.WaitFlight(src)
			if n := ts.requests.Load(); n != want {
				t.Fatalf("token server saw %d requests, want %d", n, want)
			}
			// Inside the backoff: no new attempt.
			src.Token()
			oauth2refresh.WaitFlight(src)
			if n := ts.requests.Load(); n != want {
				t.Fatalf("token server saw %d requests inside the backoff, want %d", n, want)
			}
			clock.advance(5 * time.Second)
		}
		failing.Store(false)
		src.Token()
		oauth2refresh.WaitFlight(src)
		if got, err := src.Token(); err != nil || got.AccessToken != "at-1" {
			t.Fatalf("Token() after recovery = %v, %v; want at-1", got, err)
		}
	})
	t.Run("error reaches callers at expiry", func(t *testing.T) {
		ts, clock, src, tok := setup(t)
		ts.fail = func(int64) bool { return true }
		clock.advance(85 * time.Second)
		if got, err := src.Token(); err != nil || got != tok {
			t.Fatalf("Token() = %v, %v; want the still-valid token", got, err)
		}
		oauth2refresh.WaitFlight(src)
		clock.advance(6 * time.Second) // past 90 s, maybe inside the backoff
		_, err := src.Token()
		var ue *oauth2refresh.UnexpectedResponseError
		var re *oauth2refresh.RequestError
		if !errors.As(err, &ue) && !errors.As(err, &re) {
			t.Fatalf("Token() after expiry = %v, want the token endpoint's error", err)
		}
	})
}

func TestTokenSourceInvalidate(t *testing.T) {
	ts := newTokenServer(t, "rt-0", 3600)
	clock := newFakeClock()
	tok := &oauth2.Token{AccessToken: "old", RefreshToken: "rt-0", Expiry: clock.now().Add(time.Hour)}
	src := ts.endpoint().TokenSource(context.Background(), tok, oauth2refresh.WithClock(clock.now))

	src.Invalidate(tok)
	got, err := src.Token()
	if err != nil || got.AccessToken != "at-1" {
		t.Fatalf("Token() after Invalidate = %v, %v; want at-1", got, err)
	}
	// A late Invalidate of the replaced token changes nothing.
	src.Invalidate(tok)
	if got2, err := src.Token(); err != nil || got2 != got {
		t.Fatalf("Token() after a stale Invalidate = %v, %v; want at-1 again", got2, err)
	}
	if n := ts.requests.Load(); n != 1 {
		t.Errorf("token server saw %d requests, want 1", n)
	}
	// Invalidate(nil) refreshes whatever is current.
	src.Invalidate(nil)
	if got, err := src.Token(); err != nil || got.AccessToken != "at-2" {
		t.Fatalf("Token() after Invalidate(nil) = %v, %v; want at-2", got, err)
	}
	if n := ts.requests.Load(); n != 2 {
		t.Errorf("token server saw %d requests, want 2", n)
	}
}

func TestTokenSourceUnderReuseTokenSource(t *testing.T) {
	ts := newTokenServer(t, "rt-0", 3600)
	src := oauth2.ReuseTokenSource(nil, ts.endpoint().TokenSource(context.Background(), &oauth2.Token{RefreshToken: "rt-0"}))
	for range 5 {
		if got, err := src.Token(); err != nil || got.AccessToken != "at-1" {
			t.Fatalf("Token() = %v, %v; want at-1", got, err)
		}
	}
	if n := ts.requests.Load(); n != 1 {
		t.Errorf("token server saw %d requests, want 1", n)
	}
}

func TestTokenSourceUnderNewClient(t *testing.T) {
	ts := newTokenServer(t, "rt-0", 3600)
	var resourceHits atomic.Int64
	resource := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resourceHits.Add(1)
		if got := r.Header.Get("Authorization"); got != "Bearer at-1" {
			t.Errorf("resource server: Authorization = %q, want Bearer at-1", got)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer resource.Close()

	client := oauth2.NewClient(context.Background(), ts.endpoint().TokenSource(context.Background(), &oauth2.Token{RefreshToken: "rt-0"}))
	for range 5 {
		resp, err := client.Get(resource.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if n := resourceHits.Load(); n != 5 {
		t.Errorf("resource server saw %d requests, want 5", n)
	}
	if n := ts.requests.Load(); n != 1 {
		t.Errorf("token server saw %d requests, want 1", n)
	}
}

func TestTokenSourceOnRefreshPanicKeepsToken(t *testing.T) {
	// A panicking hook is recovered: the caller gets an error that says so, the refreshed
	// token is kept for the hook's next call.
	ts := newTokenServer(t, "rt-0", 3600)
	clock := newFakeClock()
	calls := 0
	src := ts.endpoint().TokenSource(context.Background(), expiredToken(clock, "rt-0"), oauth2refresh.WithClock(clock.now),
		oauth2refresh.OnNewToken(func(ctx context.Context, tok *oauth2.Token) error {
			calls++
			if calls == 1 {
				panic("hook bug")
			}
			if tok.AccessToken != "at-1" {
				t.Errorf("hook retried with %s, want at-1", tok.AccessToken)
			}
			return nil
		}))
	if _, err := src.Token(); err == nil || !strings.Contains(err.Error(), "oauth2refresh: OnNewToken panicked: hook bug") {
		t.Fatalf("Token() with a panicking hook: error = %v, want one saying it panicked", err)
	}
	clock.advance(oauth2refresh.MaxBackoff)
	got, err := src.Token()
	if err != nil || got.AccessToken != "at-1" {
		t.Fatalf("Token() after the panic = %v, %v; want at-1", got, err)
	}
	if n := ts.requests.Load(); n != 1 {
		t.Errorf("token server saw %d requests, want 1", n)
	}
}

// panicStore is a Store whose leases' Save panics.
type panicStore struct{ oauth2refresh.Store }

type panicLease struct{ oauth2refresh.Lease }

func (s panicStore) Lock(ctx context.Context, key string, ttl time.Duration) (oauth2refresh.Lease, error) {
	l, err := s.Store.Lock(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	return panicLease{l}, nil
}

func (panicLease) Save(context.Context, *oauth2.Token) error { panic("store bug") }

func TestTokenSourcePanicOnOwnGoroutine(t *testing.T) {
	// Where the flight runs on a goroutine the library started (a caller that can give up,
	// an early refresh), a panic in OnNewToken or in the Store must not crash the process:
	// every waiter gets an error that says so.
	hookPanics := oauth2refresh.OnNewToken(func(context.Context, *oauth2.Token) error { panic("hook bug") })
	tests := []struct {
		name    string
		opts    func(t *testing.T) []oauth2refresh.Option
		early   bool // the token is still valid: the flight is an early refresh
		wantErr string
	}{
		{name: "OnNewToken, waiting callers", opts: func(*testing.T) []oauth2refresh.Option { return []oauth2refresh.Option{hookPanics} },
			wantErr: "oauth2refresh: OnNewToken panicked: hook bug"},
		{name: "OnNewToken, early refresh", early: true, opts: func(*testing.T) []oauth2refresh.Option { return []oauth2refresh.Option{hookPanics} }},
		{name: "Store, waiting callers", wantErr: "oauth2refresh: Store panicked: store bug", opts: func(t *testing.T) []oauth2refresh.Option {
			return []oauth2refresh.Option{oauth2refresh.WithStore(panicStore{&filestore.Store{Dir: t.TempDir()}}, "g")}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTokenServer(t, "rt-0", 3600)
			clock := newFakeClock()
			tok := expiredToken(clock, "rt-0")
			if tc.early {
				tok = &oauth2.Token{AccessToken: "old", RefreshToken: "rt-0", Expiry: clock.now().Add(30 * time.Second)}
			}
			src := ts.endpoint().TokenSource(context.Background(), tok, append(tc.opts(t), oauth2refresh.WithClock(clock.now))...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Go(func() { _, errs[i] = src.TokenContext(ctx) })
			}
			wg.Wait()
			oauth2refresh.WaitFlight(src)
			for i, err := range errs {
				if tc.early && err != nil {
					t.Errorf("caller %d: %v, want the still-valid token", i, err)
				}
				if !tc.early && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
					t.Errorf("caller %d: error = %v, want one containing %q", i, err, tc.wantErr)
				}
			}
			if n := ts.requests.Load(); n != 1 {
				t.Errorf("token server saw %d requests, want 1", n)
			}
		})
	}
}

func TestTokenSourcePendingTokenExpiredBacksOff(t *testing.T) {
	// The hook failed, then the unsaved token expired while the hook kept failing: it is not
	// refreshed before it is saved, and the hook backs off instead of being called on every
	// call. Once saved, it is refreshed; a failing endpoint backs off too; the refresh token
	// sent is always the newest.
	ts := newTokenServer(t, "rt-0", 60)
	clock := newFakeClock()
	var hookFails atomic.Bool
	hookFails.Store(true)
	var saved []string
	src := ts.endpoint().TokenSource(context.Background(), expiredToken(clock, "rt-0"), oauth2refresh.WithClock(clock.now),
		oauth2refresh.OnNewToken(func(ctx context.Context, tok *oauth2.Token) error {
			if hookFails.Load() {
				return errors.New("store down")
			}
			saved = append(saved, tok.RefreshToken)
			return nil
		}))
	calls := func(n int) {
		t.Helper()
		for range n {
			if _, err := src.Token(); err == nil {
				t.Fatal("Token() succeeded")
			}
		}
	}
	calls(1)
	clock.advance(2 * time.Minute)
	calls(5)
	if n := ts.requests.Load(); n != 1 {
		t.Errorf("token server saw %d requests while the hook failed, want 1", n)
	}
	hookFails.Store(false)
	ts.fail = func(int64) bool { return true }
	clock.advance(oauth2refresh.MaxBackoff)
	calls(5)
	if n := ts.requests.Load(); n != 2 {
		t.Errorf("token server saw %d requests, want 2", n)
	}
	ts.fail = nil
	clock.advance(oauth2refresh.MaxBackoff)
	if got, err := src.Token(); err != nil || got.AccessToken != "at-2" {
		t.Fatalf("Token() once all works = %v, %v; want at-2", got, err)
	}
	if diff := cmp.Diff([]string{"rt-1", "rt-2"}, saved); diff != "" {
		t.Errorf("saved refresh tokens (-want +got):\n%s", diff)
	}
	if n := ts.reused.Load(); n != 0 {
		t.Errorf("server saw %d rotated-out refresh tokens", n)
	}
}

func TestTokenSourceSleepDetected(t *testing.T) {
	// The hot path reads the monotonic clock, which stops while a machine sleeps; the wall
	// clock then jumps ahead. Simulate it: a wall clock of our own, a real monotonic one.
	ts := newTokenServer(t, "rt-0", 3600)
	wall := newFakeClock()
	tok := &oauth2.Token{AccessToken: "old", RefreshToken: "rt-0", Expiry: wall.now().Add(time.Hour)}
	src := ts.endpoint().TokenSource(context.Background(), tok, oauth2refresh.WithClock(wall.now))
	oauth2refresh.UseMonotonic(src) // elapsed: real time
	if got, err := src.Token(); err != nil || got != tok {
		t.Fatalf("Token() = %v, %v; want the start token", got, err)
	}
	wall.advance(2 * time.Hour) // the machine slept
	// Within wallCheckInterval the hot path would still serve the old token; make that
	// interval end now.
	oauth2refresh.DueWallCheck(src)
	got, err := src.Token()
	if err != nil || got.AccessToken != "at-1" {
		t.Fatalf("Token() after the sleep = %v, %v; want at-1", got, err)
	}
	if n := ts.requests.Load(); n != 1 {
		t.Errorf("token server saw %d requests, want 1", n)
	}
	// A sleep that leaves the token valid only re-bases the deadlines: quietAt becomes soft
	// as an elapsed value read during the call. The wall clock stands still meanwhile, so
	// that value lies between the ones read just before and just after the call, however
	// long the call took.
	wall.advance(10 * time.Minute)
	oauth2refresh.DueWallCheck(src)
	soft, _, _ := oauth2refresh.Deadlines(src)
	before := oauth2refresh.Elapsed(src, soft, wall.now())
	if got2, err := src.Token(); err != nil || got2 != got {
		t.Fatalf("Token() after a short sleep = %v, %v; want at-1 again", got2, err)
	}
	after := oauth2refresh.Elapsed(src, soft, wall.now())
	soft2, _, quietAt := oauth2refresh.Deadlines(src)
	if !soft2.Equal(soft) || quietAt < before || quietAt > after {
		t.Errorf("soft, quietAt = %v, %d; want %v, in [%d, %d]", soft2, quietAt, soft, before, after)
	}
	// The early window of at-1 opens 1 min before its expiry minus the margin: 58:50 after
	// it arrived, 48:50 from now.
	wall.advance(49 * time.Minute)
	oauth2refresh.DueWallCheck(src)
	src.Token()
	oauth2refresh.WaitFlight(src)
	if got3, err := src.Token(); err != nil || got3.AccessToken != "at-2" {
		t.Fatalf("Token() in the early window = %v, %v; want at-2 after the background refresh", got3, err)
	}
}

func TestTokenSourceDeadlines(t *testing.T) {
	// How oauth2refresh.ExpiryMargin and oauth2refresh.EarlyRefresh compose: from arrival, the token is served without
	// further ado until soft, served while a background refresh runs until hard, and then
	// callers wait. Each deadline is the first instant past its phase: a nanosecond (ns) after
	// Expiry - margin (- early), for a token is served at Expiry - margin exactly, as
	// golang.org/x/oauth2 serves it (TestExpiryBoundaryLikeXOAuth2).
	const ns = time.Nanosecond
	tests := []struct {
		name       string
		life       time.Duration // remaining lifetime on arrival; 0 means no expiry
		issued     bool          // the token carries ExpiresIn: it was issued on arrival
		opts       []oauth2refresh.Option
		soft, hard time.Duration // from arrival; -1 means never
	}{
		{name: "defaults, 1 h token", life: time.Hour, soft: time.Hour - 70*time.Second + ns, hard: time.Hour - 10*time.Second + ns},
		// soft: half of hard (50 s and 1 ns), in whole nanoseconds.
		{name: "defaults, issued for 60 s: early window from half its servable life", life: time.Minute, issued: true, soft: 25 * time.Second, hard: 50*time.Second + ns},
		{name: "defaults, issued for 15 s: served for half its life", life: 15 * time.Second, issued: true, soft: 3750 * time.Millisecond, hard: 7500*time.Millisecond + ns},
		{name: "defaults, handed in with 60 s left", life: time.Minute, soft: -10*time.Second + ns, hard: 50*time.Second + ns},
		{name: "defaults, handed in with 15 s left", life: 15 * time.Second, soft: -55*time.Second + ns, hard: 5*time.Second + ns},
		{name: "early refresh off", life: time.Hour, opts: []oauth2refresh.Option{oauth2refresh.EarlyRefresh(0)}, soft: time.Hour - 10*time.Second + ns, hard: time.Hour - 10*time.Second + ns},
		{name: "5 min window, 30 s margin", life: time.Hour, opts: []oauth2refresh.Option{oauth2refresh.EarlyRefresh(5 * time.Minute), oauth2refresh.ExpiryMargin(30 * time.Second)}, soft: time.Hour - 330*time.Second + ns, hard: time.Hour - 30*time.Second + ns},
		{name: "no margin", life: time.Hour, opts: []oauth2refresh.Option{oauth2refresh.ExpiryMargin(0), oauth2refresh.EarlyRefresh(0)}, soft: time.Hour + ns, hard: time.Hour + ns},
		{name: "no expiry", life: 0, soft: -1, hard: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			start := clock.now()
			tok := &oauth2.Token{AccessToken: "a", RefreshToken: "r"}
			if tc.life > 0 {
				tok.Expiry = start.Add(tc.life)
			}
			if tc.issued {
				tok.ExpiresIn = int64(tc.life / time.Second)
			}
			src := (&oauth2refresh.Endpoint{}).TokenSource(context.Background(), tok, append(tc.opts, oauth2refresh.WithClock(clock.now))...)
			soft, hard, _ := oauth2refresh.Deadlines(src)
			got := [2]time.Duration{soft.Sub(start), hard.Sub(start)}
			if soft.Equal(oauth2refresh.Forever) {
				got[0] = -1
			}
			if hard.Equal(oauth2refresh.Forever) {
				got[1] = -1
			}
			if want := [2]time.Duration{tc.soft, tc.hard}; got != want {
				t.Errorf("soft, hard = %v, want %v", got, want)
			}
		})
	}
}

func TestTokenSourceHotPathAllocs(t *testing.T) {
	tok := &oauth2.Token{AccessToken: "a", RefreshToken: "r", Expiry: time.Now().Add(time.Hour)}
	src := (&oauth2refresh.Endpoint{}).TokenSource(context.Background(), tok)
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() { src.TokenContext(ctx) }); n != 0 {
		t.Errorf("TokenContext on a cached token allocates %v times, want 0", n)
	}
}

func TestTokenSourceRetryAfter(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte(`{"error":"slow_down"}`))
	}))
	defer srv.Close()
	clock := newFakeClock()
	ep := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: "c"}
	src := ep.TokenSource(context.Background(), expiredToken(clock, "rt-0"), oauth2refresh.WithClock(clock.now))
	_, err := src.Token()
	var re *oauth2refresh.RequestError
	if !errors.As(err, &re) || re.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("Token() error = %v, want the 429", err)
	}
	clock.advance(119 * time.Second)
	src.Token()
	if n := requests.Load(); n != 1 {
		t.Errorf("token server saw %d requests within Retry-After, want 1", n)
	}
	clock.advance(2 * time.Second)
	src.Token()
	if n := requests.Load(); n != 2 {
		t.Errorf("token server saw %d requests after Retry-After, want 2", n)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h := func(v string) http.Header { return http.Header{"Retry-After": {v}} }
	tests := []struct {
		name string
		err  error
		want time.Duration
	}{
		{"seconds", &oauth2refresh.RequestError{Code: "slow_down", Header: h("30")}, 30 * time.Second},
		{"capped", &oauth2refresh.UnexpectedResponseError{StatusCode: 503, Header: h("86400")}, oauth2refresh.MaxRetryAfter},
		{"date", &oauth2refresh.UnexpectedResponseError{StatusCode: 503, Header: h(now.Add(time.Minute).Format(http.TimeFormat))}, time.Minute},
		{"wrapped", fmt.Errorf("x: %w", &oauth2refresh.RequestError{Header: h("7")}), 7 * time.Second},
		{"garbage", &oauth2refresh.RequestError{Header: h("soon")}, 0},
		{"negative", &oauth2refresh.RequestError{Header: h("-5")}, 0},
		{"none", &oauth2refresh.RequestError{}, 0},
		{"other error", errors.New("boom"), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := oauth2refresh.RetryAfter(tc.err, now); got != tc.want {
				t.Errorf("oauth2refresh.RetryAfter() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTokenSourceWindowTakesNoLock(t *testing.T) {
	// Between soft and hard, only the calls that may start a refresh take the slow path
	// (and s.mu): the first one after soft, the first one after a backoff, and one call a
	// second for the wall-clock check. While the background refresh runs, and during the
	// backoff after it failed, the others get the still-valid token lock-free.
	var requests atomic.Int64
	var failing atomic.Bool
	failing.Store(true)
	release := make(chan struct{})
	received := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := requests.Add(1)
		if r.Method != http.MethodPost || r.URL.Path != "/token" {
			t.Errorf("token server: got %s %s, want POST /token", r.Method, r.URL.Path)
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("token server: %v", err)
		}
		if got := r.PostForm.Get("refresh_token"); got != "rt-0" {
			t.Errorf("token server: refresh_token = %q, want rt-0", got)
		}
		if n == 1 {
			received <- struct{}{}
			<-release
		}
		w.Header().Set("Content-Type", "application/json")
		if failing.Load() {
			w.Header().Set("Retry-After", "20")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":"temporarily_unavailable"}`))
			return
		}
		w.Write([]byte(`{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-1"}`))
	}))
	defer srv.Close()
	clock := newFakeClock()
	tok := &oauth2.Token{AccessToken: "old", RefreshToken: "rt-0", Expiry: clock.now().Add(time.Hour)}
	src := (&oauth2refresh.Endpoint{TokenURL: srv.URL + "/token", ClientID: "c"}).TokenSource(context.Background(), tok, oauth2refresh.WithClock(clock.now))
	var slow atomic.Int64
	oauth2refresh.SetSlowHook(src, func() { slow.Add(1) })
	ctx := context.Background()
	get := func(when string) {
		t.Helper()
		if got, err := src.TokenContext(ctx); err != nil || got != tok {
			t.Fatalf("TokenContext() %s = %v, %v; want the still-valid token", when, got, err)
		}
	}

	// The window opens at 58:50 (hard, 59:50, minus the default minute). The first call in
	// it takes the slow path and starts the refresh.
	clock.advance(58*time.Minute + 51*time.Second)
	get("at the start of the window")
	<-received
	if n := slow.Load(); n != 1 {
		t.Fatalf("%d slow-path calls for the call that starts the refresh, want 1", n)
	}
	// While it runs: 100 calls over half a second, none on the slow path, no allocation.
	for range 100 {
		clock.advance(5 * time.Millisecond)
		get("while the background refresh runs")
	}
	if n := testing.AllocsPerRun(100, func() { src.TokenContext(ctx) }); n != 0 {
		t.Errorf("TokenContext while the background refresh runs allocates %v times, want 0", n)
	}
	if n := slow.Load(); n != 1 {
		t.Errorf("%d slow-path calls while the background refresh runs, want 1 (the call that started it)", n)
	}

	// It fails, asking for 20 s of quiet: for 19.9 s, calls take the slow path only for the
	// wall-clock check, once a second.
	close(release)
	oauth2refresh.WaitFlight(src)
	slow.Store(0)
	for range 1990 {
		clock.advance(10 * time.Millisecond)
		get("during the backoff")
	}
	if n := testing.AllocsPerRun(100, func() { src.TokenContext(ctx) }); n != 0 {
		t.Errorf("TokenContext during the backoff allocates %v times, want 0", n)
	}
	if n, max := slow.Load(), int64(20); n > max {
		t.Errorf("%d slow-path calls in 19.9 s of backoff, want at most %d (the wall-clock checks)", n, max)
	}
	if n := requests.Load(); n != 1 {
		t.Fatalf("token server saw %d requests during the backoff, want 1", n)
	}

	// After the backoff the next call starts a new refresh, which succeeds.
	failing.Store(false)
	clock.advance(200 * time.Millisecond)
	slow.Store(0)
	get("after the backoff")
	if n := slow.Load(); n != 1 {
		t.Errorf("%d slow-path calls for the call after the backoff, want 1", n)
	}
	oauth2refresh.WaitFlight(src)
	if got, err := src.TokenContext(ctx); err != nil || got.AccessToken != "at-1" {
		t.Fatalf("TokenContext() after the refresh = %v, %v; want at-1", got, err)
	}
	if n := requests.Load(); n != 2 {
		t.Errorf("token server saw %d requests, want 2", n)
	}
}

// tickingClock is a fake clock that moves on by tick after each reading: time passes between
// any two readings, as it does while a caller waits for a lock.
type tickingClock struct {
	fakeClock
	tick atomic.Int64
}

func (c *tickingClock) now() time.Time {
	t := c.fakeClock.now()
	c.advance(time.Duration(c.tick.Load()))
	return t
}

func TestTokenSourceLockWaitIsNotDrift(t *testing.T) {
	// With oauth2refresh.WithClock the wall clock and the hot path's clock are one: they cannot drift
	// apart, and time that passes while a call waits for s.mu must not shift the deadlines.
	// Without early refresh, a shift would let the hot path serve the token past hard.
	ts := newTokenServer(t, "rt-0", 3600)
	clock := &tickingClock{}
	clock.set(time.Now())
	tok := &oauth2.Token{AccessToken: "old", RefreshToken: "rt-0", Expiry: clock.now().Add(time.Hour)}
	src := ts.endpoint().TokenSource(context.Background(), tok, oauth2refresh.WithClock(clock.now), oauth2refresh.EarlyRefresh(0))
	_, hard, _ := oauth2refresh.Deadlines(src)

	// Half a second before hard, a call takes the slow path (the wall-clock check is due)
	// while time passes between its clock readings.
	clock.set(hard.Add(-500 * time.Millisecond))
	_, _, quietAt := oauth2refresh.Deadlines(src)
	clock.tick.Store(int64(50 * time.Millisecond))
	if got, err := src.Token(); err != nil || got != tok {
		t.Fatalf("Token() before hard = %v, %v; want the start token", got, err)
	}
	clock.tick.Store(0)
	if _, _, quietAt2 := oauth2refresh.Deadlines(src); quietAt2 != quietAt {
		t.Errorf("quietAt %d -> %d, want it unchanged", quietAt, quietAt2)
	}
	// 20 ms past hard, within a second of that call: the token must not be served.
	clock.set(hard.Add(20 * time.Millisecond))
	if got, err := src.Token(); err != nil || got.AccessToken != "at-1" {
		t.Fatalf("Token() 20 ms past hard = %v, %v; want at-1", got, err)
	}
	if n := ts.requests.Load(); n != 1 {
		t.Errorf("token server saw %d requests, want 1", n)
	}
}

func TestTokenSourceRefusedGrantBacksOffLonger(t *testing.T) {
	// The server refuses rt-0 (invalid_grant): a permanent error, retried ever more rarely,
	// up to every 5 min (not every 30 s), until Invalidate(nil) ends the backoff.
	ts := newTokenServer(t, "rt-elsewhere", 3600)
	clock := newFakeClock()
	tok := expiredToken(clock, "rt-0")
	src := ts.endpoint().TokenSource(context.Background(), tok, oauth2refresh.WithClock(clock.now))
	for attempt := int64(1); attempt <= 10; attempt++ {
		if attempt > 1 {
			clock.advance(oauth2refresh.MaxRefusedBackoff)
		}
		if _, err := src.Token(); !errors.Is(err, oauth2refresh.ErrInvalidGrant) {
			t.Fatalf("attempt %d: Token() error = %v, want oauth2refresh.ErrInvalidGrant", attempt, err)
		}
		if n := ts.requests.Load(); n != attempt {
			t.Fatalf("token server saw %d requests, want %d", n, attempt)
		}
	}
	// After 10 failures the backoff is at least 150 s: 149 s on, still no new attempt, nor
	// after an Invalidate of the rejected token.
	clock.advance(149 * time.Second)
	src.Invalidate(tok)
	if _, err := src.Token(); !errors.Is(err, oauth2refresh.ErrInvalidGrant) {
		t.Fatalf("Token() during the backoff: error = %v, want oauth2refresh.ErrInvalidGrant", err)
	}
	if n := ts.requests.Load(); n != 10 {
		t.Fatalf("token server saw %d requests 149 s after the 10th failure, want 10", n)
	}
	// The grant is fixed on the server's side; Invalidate(nil) ends the backoff.
	ts.mu.Lock()
	ts.current = "rt-0"
	ts.mu.Unlock()
	src.Invalidate(nil)
	if got, err := src.Token(); err != nil || got.AccessToken != "at-1" {
		t.Fatalf("Token() after Invalidate(nil) = %v, %v; want at-1", got, err)
	}
	if n := ts.requests.Load(); n != 11 {
		t.Errorf("token server saw %d requests, want 11", n)
	}
}

func TestTokenSourceInvalidateNilEndsRejectBound(t *testing.T) {
	// After two rejected tokens in a row, a third Invalidate within 15 s is ignored;
	// Invalidate(nil) drops the token anyway and ends that bound, as it ends the backoff: two
	// more rejections in a row are then both honoured.
	ts := newTokenServer(t, "rt-0", 3600)
	clock := newFakeClock()
	src := ts.endpoint().TokenSource(context.Background(), &oauth2.Token{RefreshToken: "rt-0"}, oauth2refresh.WithClock(clock.now))
	get := func() *oauth2.Token {
		t.Helper()
		tok, err := src.Token()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for i := 1; i <= 2; i++ {
		src.Invalidate(get())
	}
	tok := get()
	src.Invalidate(tok)
	if got := get(); got != tok {
		t.Fatalf("Token() after a third rejection within 15 s = %s, want %s still", got.AccessToken, tok.AccessToken)
	}
	src.Invalidate(nil)
	if got := get(); got.AccessToken != "at-4" {
		t.Fatalf("Token() after Invalidate(nil) = %s, want at-4", got.AccessToken)
	}
	for i := 1; i <= 2; i++ {
		src.Invalidate(get())
	}
	if got := get(); got.AccessToken != "at-6" {
		t.Fatalf("Token() after two more rejections = %s, want at-6", got.AccessToken)
	}
	if n := ts.requests.Load(); n != 6 {
		t.Errorf("token server saw %d requests, want 6", n)
	}
}

// TestTokenSourceRefreshTokenExpiry: the refresh_token_expires_in of a token response (a
// number, or a numeric string) is recorded on receipt with the source's clock. Once it has
// passed, the refresh token is not sent: the error matches ErrRefreshTokenExpired and
// ErrInvalidGrant, the flight counts as events.OutcomeInvalidGrant, and the source backs off as after
// a refused grant (past MaxBackoff after 7 failures). An unreadable value says nothing.
func TestTokenSourceRefreshTokenExpiry(t *testing.T) {
	start := newFakeClock().now()
	for _, tc := range []struct {
		name  string
		value any           // refresh_token_expires_in
		life  time.Duration // the refresh token's lifetime it says; 0 for unknown
		form  bool          // the response is form-encoded, as GitHub's without an Accept header
	}{
		{"number", 7200, 2 * time.Hour, false},
		{"numeric string", "7200", 2 * time.Hour, false},
		{"form-encoded", 7200, 2 * time.Hour, true},
		{"unreadable", "two hours", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTokenServer(t, "rt-0", 3600)
			ts.onIssue = func(r *http.Request, tok map[string]any) { tok["refresh_token_expires_in"] = tc.value }
			if tc.form {
				ts.answer = func(w http.ResponseWriter, tok map[string]any) {
					form := url.Values{}
					for k, v := range tok {
						form.Set(k, fmt.Sprint(v))
					}
					respond(w, http.StatusOK, "application/x-www-form-urlencoded", form.Encode())
				}
			}
			clock := newFakeClock()
			var l eventLog
			src := flightSource(ts.endpoint(), &oauth2.Token{RefreshToken: "rt-0"}, clock, &l)
			// Refreshes at start and an hour later: each records its own expiry.
			for i, at := range []time.Time{start, start.Add(time.Hour)} {
				clock.set(at)
				tok, err := src.Token()
				if err != nil {
					t.Fatalf("refresh %d: %v", i+1, err)
				}
				var want time.Time
				var wantExtra any
				if tc.life != 0 {
					want = at.Add(tc.life)
					wantExtra = want.Format(time.RFC3339)
				}
				if got := oauth2refresh.RefreshTokenExpiry(tok); !got.Equal(want) {
					t.Errorf("refresh %d: RefreshTokenExpiry = %v, want %v", i+1, got, want)
				}
				if got := tok.Extra("refresh_expiry"); got != wantExtra {
					t.Errorf("refresh %d: Extra(\"refresh_expiry\") = %v, want %v", i+1, got, wantExtra)
				}
			}
			l.take()
			clock.set(start.Add(3 * time.Hour)) // the second refresh token's expiry, if known
			_, err := src.Token()
			if tc.life == 0 {
				if err != nil || ts.requests.Load() != 3 {
					t.Errorf("past an unknown expiry: %v after %d requests, want a third refresh", err, ts.requests.Load())
				}
				return
			}
			var until time.Time
			for i := range 7 {
				if i > 0 {
					clock.set(until) // the backoff ends
					_, err = src.Token()
				}
				if !errors.Is(err, oauth2refresh.ErrRefreshTokenExpired) || !errors.Is(err, oauth2refresh.ErrInvalidGrant) {
					t.Fatalf("call %d = %v, want ErrRefreshTokenExpired matching ErrInvalidGrant", i+1, err)
				}
				for _, ev := range l.take() {
					if ev.Kind == events.RefreshFinished && ev.Outcome != events.OutcomeInvalidGrant {
						t.Errorf("call %d: flight outcome %v, want events.OutcomeInvalidGrant", i+1, ev.Outcome)
					}
					if ev.Kind == events.BackoffStarted {
						until = ev.Until
					}
				}
			}
			if want := "oauth2refresh: refresh token expired at 2030-01-02T06:04:05Z: the grant must be authorized again"; err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
			if d := until.Sub(clock.now()); d <= oauth2refresh.MaxBackoff {
				t.Errorf("backoff after 7 failures = %v, want more than %v, as after a refused grant", d, oauth2refresh.MaxBackoff)
			}
			if n := ts.requests.Load(); n != 2 {
				t.Errorf("token server got %d requests, want 2: the expired refresh token was sent", n)
			}
		})
	}
}

// TestTokenSourceBackoffOption: Backoff sets the bounds of the backoff after failed flights,
// or turns it off; a program retrying on its own (5 tries, 1 s apart, as rclone does) then
// needs no Invalidate(nil) call. The token server fails every request; the counts are the requests it
// saw for 5 calls 1 s apart.
func TestTokenSourceBackoffOption(t *testing.T) {
	tests := []struct {
		name string
		opts []oauth2refresh.Option
		// retryAfter is the Retry-After header of the failures, "" for none.
		retryAfter string
		want       int64
	}{
		// 1 s: backoff ends in [0.5, 1) s; then [1, 2) s after the second failure at 1 s,
		// and [2, 4) s after the third at 3 s.
		{name: "default", want: 3},
		{name: "off", opts: []oauth2refresh.Option{oauth2refresh.Backoff(0, 0)}, want: 5},
		{name: "off, Retry-After ignored", opts: []oauth2refresh.Option{oauth2refresh.Backoff(0, 0)}, retryAfter: "60", want: 5},
		{name: "1 s, fixed", opts: []oauth2refresh.Option{oauth2refresh.Backoff(time.Second, time.Second)}, want: 5},
		{name: "1 s, fixed, Retry-After honoured", opts: []oauth2refresh.Option{oauth2refresh.Backoff(time.Second, time.Second)}, retryAfter: "3", want: 2},
		{name: "10 s to 1 min", opts: []oauth2refresh.Option{oauth2refresh.Backoff(10*time.Second, time.Minute)}, want: 1},
		{name: "max below min is min", opts: []oauth2refresh.Option{oauth2refresh.Backoff(10*time.Second, time.Millisecond)}, want: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTokenServer(t, "rt-0", 3600)
			ts.fail = func(int64) bool { return true }
			e := ts.endpoint()
			if tc.retryAfter != "" {
				e.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
					resp, err := http.DefaultTransport.RoundTrip(r)
					if err == nil {
						resp.Header.Set("Retry-After", tc.retryAfter)
					}
					return resp, err
				})}
			}
			clock := newFakeClock()
			src := e.TokenSource(context.Background(), &oauth2.Token{RefreshToken: "rt-0"},
				append(tc.opts, oauth2refresh.WithClock(clock.now))...)
			for i := range 5 {
				if _, err := src.Token(); !oauth2refresh.IsTemporary(err) {
					t.Fatalf("call %d: %v, want the temporary failure", i, err)
				}
				clock.advance(time.Second)
			}
			if n := ts.requests.Load(); n != tc.want {
				t.Errorf("token server saw %d requests for 5 calls 1 s apart, want %d", n, tc.want)
			}
		})
	}
	t.Run("off, concurrent callers share one flight", func(t *testing.T) {
		const callers = 16
		ts := newTokenServer(t, "rt-0", 3600)
		ts.fail = func(int64) bool { return true }
		var joined sync.WaitGroup
		joined.Add(callers - 1)
		ts.hold = joined.Wait // answer once every other caller waits for this flight
		clock := newFakeClock()
		src := ts.endpoint().TokenSource(context.Background(), &oauth2.Token{RefreshToken: "rt-0"},
			oauth2refresh.Backoff(0, 0), oauth2refresh.WithClock(clock.now),
			oauth2refresh.WithTracer(funcTracer{wait: func(context.Context) { joined.Done() }}))
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				if _, err := src.Token(); !oauth2refresh.IsTemporary(err) {
					t.Errorf("Token: %v, want the temporary failure", err)
				}
			})
		}
		wg.Wait()
		if n := ts.requests.Load(); n != 1 {
			t.Errorf("token server saw %d requests for %d concurrent callers, want 1", n, callers)
		}
		src.Token() // off: the next call tries again at once
		if n := ts.requests.Load(); n != 2 {
			t.Errorf("token server saw %d requests after one more call, want 2", n)
		}
	})
}

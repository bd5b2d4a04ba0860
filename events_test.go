package oauth2refresh_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh/events"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store/filestore"
	"golang.org/x/oauth2"
)

type event = events.Event

// eventLog records the events of WithEvents; events.Waited only when waits is set.
type eventLog struct {
	waits bool       // read-only
	mu    sync.Mutex // guards evs
	evs   []event
}

func (l *eventLog) add(ev event) {
	if ev.Kind == events.Waited && !l.waits {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, ev)
}

// take returns the events recorded so far and forgets them.
func (l *eventLog) take() []event {
	l.mu.Lock()
	defer l.mu.Unlock()
	evs := l.evs
	l.evs = nil
	return evs
}

// errAny in a wanted events.Event stands for any non-nil Err.
var errAny = errors.New("any error")

// diffEvents compares events, Err by being set or not. A wanted BackoffStarted without Until
// matches the random backoff after a first failure at now: between MinBackoff/2 and MinBackoff.
func diffEvents(t *testing.T, now time.Time, want, got []event) {
	t.Helper()
	got = append([]event(nil), got...)
	for i := range got {
		if got[i].Kind == events.BackoffStarted && i < len(want) && want[i].Until.IsZero() {
			if d := got[i].Until.Sub(now); d >= oauth2refresh.MinBackoff/2 && d <= oauth2refresh.MinBackoff {
				got[i].Until = time.Time{}
			}
		}
	}
	setOrNot := cmp.Comparer(func(a, b error) bool { return (a == nil) == (b == nil) })
	if diff := cmp.Diff(want, got, setOrNot); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// memEndpoint is an Endpoint whose token requests go to rt.
func memEndpoint(rt http.RoundTripper) *oauth2refresh.Endpoint {
	return &oauth2refresh.Endpoint{TokenURL: "https://token.example/token", ClientID: testClientID,
		ClientSecret: testSecret, HTTPClient: &http.Client{Transport: rt}}
}

// flightSource returns a TokenSource of ep holding tok, on clock, firing events to l.
func flightSource(ep *oauth2refresh.Endpoint, tok *oauth2.Token, clock *fakeClock, l *eventLog, opts ...oauth2refresh.Option) *oauth2refresh.TokenSource {
	opts = append(opts, oauth2refresh.WithClock(clock.now), oauth2refresh.WithEvents(l.add))
	return ep.TokenSource(context.Background(), tok, opts...)
}

func TestEventsOfFlights(t *testing.T) {
	const (
		started  = events.RefreshStarted
		finished = events.RefreshFinished
		backoff  = events.BackoffStarted
		persist  = events.PersistFailed
		expired  = events.TriggerExpired
	)
	ok := events.OutcomeOK
	// failHook returns an OnNewToken option that fails (or panics) n times, then succeeds.
	failHook := func(n int, panics bool) oauth2refresh.Option {
		return oauth2refresh.OnNewToken(func(ctx context.Context, tok *oauth2.Token) error {
			if n--; n < 0 {
				return nil
			}
			if panics {
				panic("hook")
			}
			return errors.New("database down")
		})
	}
	mem := func(status int, contentType, body string) *oauth2refresh.Endpoint {
		return memEndpoint(&memTransport{status: status, contentType: contentType, body: []byte(body)})
	}
	tests := []struct {
		name string
		// src makes the source; nil means the tokenServer's endpoint, holding an expired
		// token with its refresh token, and opts.
		src  func(t *testing.T, clock *fakeClock, l *eventLog) *oauth2refresh.TokenSource
		opts []oauth2refresh.Option
		run  func(clock *fakeClock, src *oauth2refresh.TokenSource) // nil: one Token()
		want []event
	}{{
		name: "first token",
		src: func(t *testing.T, clock *fakeClock, l *eventLog) *oauth2refresh.TokenSource {
			return flightSource(newTokenServer(t, "rt-0", 3600).endpoint(), &oauth2.Token{RefreshToken: "rt-0"}, clock, l)
		},
		want: []event{{Kind: started, Trigger: events.TriggerFirst},
			{Kind: finished, Trigger: events.TriggerFirst, Outcome: ok, Waiters: 1}},
	}, {
		name: "expired, the refresh takes 2 s",
		src: func(t *testing.T, clock *fakeClock, l *eventLog) *oauth2refresh.TokenSource {
			rs := newTokenServer(t, "rt-0", 3600)
			rs.hold = func() { clock.advance(2 * time.Second) }
			return flightSource(rs.endpoint(), expiredToken(clock, "rt-0"), clock, l)
		},
		want: []event{{Kind: started, Trigger: expired},
			{Kind: finished, Trigger: expired, Outcome: ok, Duration: 2 * time.Second, Waiters: 1}},
	}, {
		name: "early, in the background",
		src: func(t *testing.T, clock *fakeClock, l *eventLog) *oauth2refresh.TokenSource {
			tok := &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: clock.now().Add(30 * time.Second)}
			return flightSource(newTokenServer(t, "rt-0", 3600).endpoint(), tok, clock, l)
		},
		run: func(clock *fakeClock, src *oauth2refresh.TokenSource) {
			src.Token()
			oauth2refresh.WaitFlight(src)
		},
		want: []event{{Kind: started, Trigger: events.TriggerEarly},
			{Kind: finished, Trigger: events.TriggerEarly, Outcome: ok}},
	}, {
		name: "refused grant",
		src: func(t *testing.T, clock *fakeClock, l *eventLog) *oauth2refresh.TokenSource {
			return flightSource(newTokenServer(t, "rt-0", 3600).endpoint(), expiredToken(clock, "rt-spent"), clock, l)
		},
		want: []event{{Kind: started, Trigger: expired},
			{Kind: finished, Trigger: expired, Outcome: events.OutcomeInvalidGrant, Status: 400, Waiters: 1, Failures: 1, Err: errAny},
			{Kind: backoff, Outcome: events.OutcomeInvalidGrant, Status: 400, Failures: 1}},
	}, {
		name: "temporary failure, then recovered",
		src: func(t *testing.T, clock *fakeClock, l *eventLog) *oauth2refresh.TokenSource {
			rs := newTokenServer(t, "rt-0", 3600)
			rs.fail = func(n int64) bool { return n == 1 }
			return flightSource(rs.endpoint(), expiredToken(clock, "rt-0"), clock, l)
		},
		run: func(clock *fakeClock, src *oauth2refresh.TokenSource) {
			src.Token()
			clock.advance(oauth2refresh.MinBackoff)
			src.Token()
		},
		want: []event{{Kind: started, Trigger: expired},
			{Kind: finished, Trigger: expired, Outcome: events.OutcomeTemporary, Status: 503, Waiters: 1, Failures: 1, Err: errAny},
			{Kind: backoff, Outcome: events.OutcomeTemporary, Status: 503, Failures: 1},
			{Kind: started, Trigger: expired, Failures: 1},
			{Kind: finished, Trigger: expired, Outcome: ok, Waiters: 1},
			{Kind: events.BackoffEnded, Failures: 1}},
	}, {
		name: "Retry-After",
		src: func(t *testing.T, clock *fakeClock, l *eventLog) *oauth2refresh.TokenSource {
			ep := memEndpoint(roundTripFunc(func(r *http.Request) (*http.Response, error) {
				resp := memResponse(r, 429, "application/json", `{"error":"slow_down"}`)
				resp.Header.Set("Retry-After", "120")
				return resp, nil
			}))
			return flightSource(ep, expiredToken(clock, "rt-0"), clock, l)
		},
		want: []event{{Kind: started, Trigger: expired},
			{Kind: finished, Trigger: expired, Outcome: events.OutcomeTemporary, Status: 429, Waiters: 1, Failures: 1, Err: errAny},
			{Kind: backoff, Outcome: events.OutcomeTemporary, Status: 429, Failures: 1,
				Until: newFakeClock().now().Add(120 * time.Second)}},
	}, {
		name: "no answer",
		src: func(t *testing.T, clock *fakeClock, l *eventLog) *oauth2refresh.TokenSource {
			ep := memEndpoint(roundTripFunc(func(r *http.Request) (*http.Response, error) {
				return nil, errors.New("connection refused")
			}))
			return flightSource(ep, expiredToken(clock, "rt-0"), clock, l)
		},
		want: []event{{Kind: started, Trigger: expired},
			{Kind: finished, Trigger: expired, Outcome: events.OutcomeTransport, Waiters: 1, Failures: 1, Err: errAny},
			{Kind: backoff, Outcome: events.OutcomeTransport, Failures: 1}},
	}, {
		name: "refused client",
		src: func(t *testing.T, clock *fakeClock, l *eventLog) *oauth2refresh.TokenSource {
			return flightSource(mem(401, "", `{"error":"invalid_client"}`), expiredToken(clock, "rt-0"), clock, l)
		},
		want: []event{{Kind: started, Trigger: expired},
			{Kind: finished, Trigger: expired, Outcome: events.OutcomeInvalidClient, Status: 401, Waiters: 1, Failures: 1, Err: errAny},
			{Kind: backoff, Outcome: events.OutcomeInvalidClient, Status: 401, Failures: 1}},
	}, {
		name: "HTML 502 from a proxy",
		src: func(t *testing.T, clock *fakeClock, l *eventLog) *oauth2refresh.TokenSource {
			return flightSource(mem(502, "text/html", "<html>bad gateway</html>"), expiredToken(clock, "rt-0"), clock, l)
		},
		want: []event{{Kind: started, Trigger: expired},
			{Kind: finished, Trigger: expired, Outcome: events.OutcomeTemporary, Status: 502, Waiters: 1, Failures: 1, Err: errAny},
			{Kind: backoff, Outcome: events.OutcomeTemporary, Status: 502, Failures: 1}},
	}, {
		name: "HTML 400",
		src: func(t *testing.T, clock *fakeClock, l *eventLog) *oauth2refresh.TokenSource {
			return flightSource(mem(400, "text/html", "<html>bad request</html>"), expiredToken(clock, "rt-0"), clock, l)
		},
		want: []event{{Kind: started, Trigger: expired},
			{Kind: finished, Trigger: expired, Outcome: events.OutcomeOther, Status: 400, Waiters: 1, Failures: 1, Err: errAny},
			{Kind: backoff, Outcome: events.OutcomeOther, Status: 400, Failures: 1}},
	}, {
		name: "no refresh token",
		src: func(t *testing.T, clock *fakeClock, l *eventLog) *oauth2refresh.TokenSource {
			return flightSource(mem(500, "", ""), expiredToken(clock, ""), clock, l)
		},
		want: []event{{Kind: started, Trigger: expired},
			{Kind: finished, Trigger: expired, Outcome: events.OutcomeOther, Waiters: 1, Failures: 1, Err: errAny},
			{Kind: backoff, Outcome: events.OutcomeOther, Failures: 1}},
	}, {
		name: "OnNewToken fails once",
		opts: []oauth2refresh.Option{failHook(1, false)},
		want: []event{{Kind: started, Trigger: expired},
			{Kind: persist, Outcome: events.OutcomeHook, Attempt: 1, Err: errAny},
			{Kind: finished, Trigger: expired, Outcome: ok, Waiters: 1}},
	}, {
		name: "OnNewToken fails twice, then its retry succeeds",
		opts: []oauth2refresh.Option{failHook(2, false)},
		run: func(clock *fakeClock, src *oauth2refresh.TokenSource) {
			src.Token()
			clock.advance(oauth2refresh.MinBackoff)
			src.Token()
		},
		want: []event{{Kind: started, Trigger: expired},
			{Kind: persist, Outcome: events.OutcomeHook, Attempt: 1, Err: errAny},
			{Kind: persist, Outcome: events.OutcomeHook, Attempt: 2, Err: errAny},
			{Kind: finished, Trigger: expired, Outcome: events.OutcomeHook, Waiters: 1, Failures: 1, Err: errAny},
			{Kind: backoff, Outcome: events.OutcomeHook, Failures: 1},
			{Kind: started, Trigger: expired, Failures: 1},
			{Kind: finished, Trigger: expired, Outcome: ok, Waiters: 1},
			{Kind: events.BackoffEnded, Failures: 1}},
	}, {
		name: "OnNewToken panics",
		opts: []oauth2refresh.Option{failHook(1, true)},
		want: []event{{Kind: started, Trigger: expired},
			{Kind: finished, Trigger: expired, Outcome: events.OutcomePanic, Waiters: 1, Failures: 1, Err: errAny},
			{Kind: backoff, Outcome: events.OutcomePanic, Failures: 1}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			l := &eventLog{}
			var src *oauth2refresh.TokenSource
			if tc.src != nil {
				src = tc.src(t, clock, l)
			} else {
				src = flightSource(newTokenServer(t, "rt-0", 3600).endpoint(), expiredToken(clock, "rt-0"), clock, l, tc.opts...)
			}
			if tc.run != nil {
				tc.run(clock, src)
			} else {
				src.Token()
			}
			diffEvents(t, newFakeClock().now(), tc.want, l.take())
		})
	}
}

func TestEventsWaiters(t *testing.T) {
	// Five callers wait for one refresh; a sixth, that gave up, counted as a waiter too.
	rs := newTokenServer(t, "rt-0", 3600)
	release, received := make(chan struct{}), make(chan struct{}, 1)
	rs.hold = func() { received <- struct{}{}; <-release }
	clock := newFakeClock()
	l := &eventLog{waits: true}
	src := flightSource(rs.endpoint(), expiredToken(clock, "rt-0"), clock, l)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if tok, err := src.TokenContext(ctx); err != nil || tok.AccessToken != "at-1" {
				t.Errorf("TokenContext = %v, %v; want at-1", tok, err)
			}
		})
	}
	gaveUp, giveUp := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for oauth2refresh.FlightWaiters(src) < 5 {
			time.Sleep(time.Millisecond) // polling for a state, not timing an assertion
		}
		src.TokenContext(gaveUp)
	}()
	for oauth2refresh.FlightWaiters(src) < 6 {
		time.Sleep(time.Millisecond)
	}
	<-received                 // the refresh started: its event came first
	clock.advance(time.Second) // the one that gives up waited 1 s
	giveUp()
	<-done
	clock.advance(time.Second) // the others 2 s
	close(release)
	wg.Wait()
	waited := func(d time.Duration) event { return event{Kind: events.Waited, Duration: d} }
	want := []event{{Kind: events.RefreshStarted, Trigger: events.TriggerExpired},
		waited(time.Second),
		{Kind: events.RefreshFinished, Trigger: events.TriggerExpired, Outcome: events.OutcomeOK, Duration: 2 * time.Second, Waiters: 6},
		waited(2 * time.Second), waited(2 * time.Second), waited(2 * time.Second), waited(2 * time.Second), waited(2 * time.Second)}
	diffEvents(t, clock.now(), want, l.take())
	if n := rs.requests.Load(); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
}

func TestEventsInvalidate(t *testing.T) {
	// A token handed in and rejected is dropped; so is the first token a rejection forced;
	// the second one is kept for 15 s (Invalidate's bound), and that is reported.
	rs := newTokenServer(t, "rt-0", 3600)
	clock := newFakeClock()
	l := &eventLog{}
	tok := &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: clock.now().Add(time.Hour)}
	src := flightSource(rs.endpoint(), tok, clock, l)
	rejected := events.TriggerRejected
	for range 3 {
		src.Invalidate(mustToken(t, src))
	}
	src.Invalidate(nil)
	mustToken(t, src)
	want := []event{
		{Kind: events.TokenDropped, Trigger: rejected},
		{Kind: events.RefreshStarted, Trigger: rejected},
		{Kind: events.RefreshFinished, Trigger: rejected, Outcome: events.OutcomeOK, Waiters: 1},
		{Kind: events.TokenDropped, Trigger: rejected},
		{Kind: events.RefreshStarted, Trigger: rejected},
		{Kind: events.RefreshFinished, Trigger: rejected, Outcome: events.OutcomeOK, Waiters: 1},
		{Kind: events.DropIgnored, Until: clock.now().Add(15 * time.Second)},
		{Kind: events.TokenDropped, Trigger: events.TriggerInvalidated},
		{Kind: events.RefreshStarted, Trigger: events.TriggerInvalidated},
		{Kind: events.RefreshFinished, Trigger: events.TriggerInvalidated, Outcome: events.OutcomeOK, Waiters: 1},
	}
	diffEvents(t, clock.now(), want, l.take())
	// A token already replaced: nothing happens, nothing is reported.
	src.Invalidate(tok)
	if got := l.take(); len(got) != 0 {
		t.Errorf("Invalidate of a replaced token reported %+v, want nothing", got)
	}
}

func mustToken(t *testing.T, src *oauth2refresh.TokenSource) *oauth2.Token {
	t.Helper()
	tok, err := src.Token()
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	return tok
}

func TestEventsTransportRetry(t *testing.T) {
	// The resource server rejects at-0: the Transport drops it, refreshes, and retries.
	rs := newTokenServer(t, "rt-0", 3600)
	clock := newFakeClock()
	l := &eventLog{}
	tok := &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: clock.now().Add(time.Hour)}
	src := flightSource(rs.endpoint(), tok, clock, l)
	api := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Header.Get("Authorization") == "Bearer at-0" {
			return memResponse(r, http.StatusUnauthorized, "", ""), nil
		}
		return memResponse(r, http.StatusOK, "text/plain", "ok"), nil
	})
	client := &http.Client{Transport: &oauth2refresh.Transport{Source: src, Base: api}}
	resp, err := client.Get("https://api.example/")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("Get = %v, %v; want 200", resp, err)
	}
	resp.Body.Close()
	rejected := events.TriggerRejected
	want := []event{
		{Kind: events.TokenDropped, Trigger: rejected},
		{Kind: events.RefreshStarted, Trigger: rejected},
		{Kind: events.RefreshFinished, Trigger: rejected, Outcome: events.OutcomeOK, Waiters: 1},
		{Kind: events.UnauthorizedRetry, Status: http.StatusUnauthorized},
	}
	diffEvents(t, clock.now(), want, l.take())
}

func TestEventsStore(t *testing.T) {
	const key = "grant-key"
	started := event{Kind: events.RefreshStarted, Key: key, Trigger: events.TriggerFirst}
	finished := event{Kind: events.RefreshFinished, Key: key, Trigger: events.TriggerFirst, Outcome: events.OutcomeOK, Waiters: 1}
	lease := event{Kind: events.LeaseTaken, Key: key}
	tests := []struct {
		name   string
		stored *oauth2.Token
		setup  func(fs *faultStore)
		want   []event
	}{{
		name:   "a token another process saved",
		stored: &oauth2.Token{AccessToken: "at-9", RefreshToken: "rt-9", Expiry: time.Now().Add(100 * 365 * 24 * time.Hour)},
		want: []event{started, {Kind: events.StorePickup, Key: key},
			{Kind: events.RefreshFinished, Key: key, Trigger: events.TriggerFirst, Outcome: events.OutcomePickedUp, Waiters: 1}},
	}, {
		name:   "refreshed under the lease",
		stored: &oauth2.Token{RefreshToken: "rt-0"},
		want:   []event{started, lease, finished},
	}, {
		name:   "lease lost",
		stored: &oauth2.Token{RefreshToken: "rt-0"},
		setup:  func(fs *faultStore) { fs.lostSave.Store(1) },
		want:   []event{started, lease, {Kind: events.LeaseLost, Key: key, Err: errAny}, lease, finished},
	}, {
		name:   "save fails once",
		stored: &oauth2.Token{RefreshToken: "rt-0"},
		setup:  func(fs *faultStore) { fs.failSave.Store(1) },
		want: []event{started, lease,
			{Kind: events.PersistFailed, Key: key, Outcome: events.OutcomeStore, Attempt: 1, Err: errAny},
			finished},
	}, {
		name:   "store down",
		stored: &oauth2.Token{RefreshToken: "rt-0"},
		setup:  func(fs *faultStore) { fs.down.Store(true) },
		want: []event{started,
			{Kind: events.RefreshFinished, Key: key, Trigger: events.TriggerFirst, Outcome: events.OutcomeStore, Waiters: 1, Failures: 1, Err: errAny},
			{Kind: events.BackoffStarted, Key: key, Outcome: events.OutcomeStore, Failures: 1}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := newTokenServer(t, "rt-0", 3600)
			fs := &faultStore{Store: &filestore.Store{Dir: t.TempDir()}}
			if err := oauth2refresh.SaveToken(context.Background(), fs, key, tc.stored); err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				tc.setup(fs)
			}
			clock := newFakeClock()
			clock.set(time.Now())
			l := &eventLog{}
			src := flightSource(rs.endpoint(), nil, clock, l, oauth2refresh.WithStore(fs, key))
			src.Token()
			got := l.take()
			for i := range got {
				if got[i].Kind == events.LeaseTaken && got[i].Duration >= 0 {
					got[i].Duration = 0 // real time, not the test's clock
				}
			}
			diffEvents(t, clock.now(), tc.want, got)
		})
	}
}

func TestEventsPanickingHook(t *testing.T) {
	// A hook that panics on every event breaks neither the flight nor the process.
	rs := newTokenServer(t, "rt-0", 3600)
	clock := newFakeClock()
	var calls int
	src := rs.endpoint().TokenSource(context.Background(), expiredToken(clock, "rt-0"), oauth2refresh.WithClock(clock.now),
		oauth2refresh.WithEvents(func(event) { calls++; panic("hook") }))
	if tok, err := src.Token(); err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("Token = %v, %v; want at-1", tok, err)
	}
	if calls != 3 {
		t.Errorf("hook called %d times, want 3 (started, finished, waited)", calls)
	}
}

func TestEventsHotPathAllocs(t *testing.T) {
	// With a hook and a tracer set, a cached token is still served without allocation, and
	// fires nothing.
	var calls int
	tok := &oauth2.Token{AccessToken: "a", RefreshToken: "r", Expiry: time.Now().Add(time.Hour)}
	src := (&oauth2refresh.Endpoint{}).TokenSource(context.Background(), tok, oauth2refresh.WithEvents(func(event) { calls++ }),
		oauth2refresh.WithTracer(funcTracer{wait: func(context.Context) { calls++ }}))
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() { src.TokenContext(ctx) }); n != 0 {
		t.Errorf("TokenContext on a cached token with a hook allocates %v times, want 0", n)
	}
	if calls != 0 {
		t.Errorf("hook called %d times for cached tokens, want 0", calls)
	}
}

// funcTracer is a events.Tracer made of functions; nil ones do nothing.
type funcTracer struct {
	start func(ctx context.Context, t events.Trigger) (context.Context, func(event))
	wait  func(ctx context.Context)
}

func (f funcTracer) Start(ctx context.Context, t events.Trigger) (context.Context, func(event)) {
	if f.start == nil {
		return ctx, nil
	}
	return f.start(ctx, t)
}

func (f funcTracer) Wait(ctx context.Context) {
	if f.wait != nil {
		f.wait(ctx)
	}
}

func TestFlightContext(t *testing.T) {
	// The flight runs with the values of the call that started it over the source's, without
	// the caller's cancellation; a events.Tracer wraps it and sees its end.
	type key string
	type seen struct{ Caller, Source, Shared, Span any }
	look := func(ctx context.Context) seen {
		return seen{ctx.Value(key("caller")), ctx.Value(key("source")), ctx.Value(key("shared")), ctx.Value(key("span"))}
	}
	var mu sync.Mutex
	var inRequest, inHook seen
	var requestErr error
	rs := newTokenServer(t, "rt-0", 3600)
	ep := rs.endpoint()
	ep.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		inRequest, requestErr = look(r.Context()), r.Context().Err()
		mu.Unlock()
		return http.DefaultTransport.RoundTrip(r)
	})}
	clock := newFakeClock()
	var ended []event
	var trigger events.Trigger
	srcCtx := context.WithValue(context.WithValue(context.Background(), key("source"), "source"), key("shared"), "source")
	src := ep.TokenSource(srcCtx, expiredToken(clock, "rt-0"), oauth2refresh.WithClock(clock.now),
		oauth2refresh.OnNewToken(func(ctx context.Context, _ *oauth2.Token) error {
			mu.Lock()
			inHook = look(ctx)
			mu.Unlock()
			return nil
		}),
		oauth2refresh.WithTracer(funcTracer{start: func(ctx context.Context, tr events.Trigger) (context.Context, func(event)) {
			trigger = tr
			return context.WithValue(ctx, key("span"), "span"), func(ev event) { ended = append(ended, ev) }
		}}))
	caller, cancel := context.WithCancel(context.WithValue(context.WithValue(context.Background(), key("caller"), "caller"), key("shared"), "caller"))
	cancel() // the caller gives up at once: the flight goes on
	src.TokenContext(caller)
	oauth2refresh.WaitFlight(src)

	want := seen{Caller: "caller", Source: "source", Shared: "caller", Span: "span"}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(want, inRequest); diff != "" {
		t.Errorf("token request's ctx values (-want +got):\n%s", diff)
	}
	if requestErr != nil {
		t.Errorf("token request's ctx Err() = %v, want nil", requestErr)
	}
	if diff := cmp.Diff(want, inHook); diff != "" {
		t.Errorf("OnNewToken's ctx values (-want +got):\n%s", diff)
	}
	if trigger != events.TriggerExpired {
		t.Errorf("start got trigger %v, want expired", trigger)
	}
	wantEnd := []event{{Kind: events.RefreshFinished, Trigger: events.TriggerExpired, Outcome: events.OutcomeOK, Waiters: 1}}
	diffEvents(t, clock.now(), wantEnd, ended)
}

func TestFlightContextPanics(t *testing.T) {
	// A start or an end that panics, or a start that returns a canceled context, leaves the
	// flight as it was.
	for _, where := range []string{"start", "end", "canceled"} {
		t.Run(where, func(t *testing.T) {
			rs := newTokenServer(t, "rt-0", 3600)
			clock := newFakeClock()
			src := rs.endpoint().TokenSource(context.Background(), expiredToken(clock, "rt-0"), oauth2refresh.WithClock(clock.now),
				oauth2refresh.WithTracer(funcTracer{
					start: func(ctx context.Context, _ events.Trigger) (context.Context, func(event)) {
						switch where {
						case "start":
							panic(where)
						case "canceled":
							ctx, cancel := context.WithCancel(ctx)
							cancel()
							return ctx, nil
						}
						return ctx, func(event) { panic(where) }
					},
					wait: func(context.Context) { panic("wait") },
				}))
			if tok, err := src.Token(); err != nil || tok.AccessToken != "at-1" {
				t.Fatalf("Token = %v, %v; want at-1", tok, err)
			}
		})
	}
}

func TestTracerWait(t *testing.T) {
	// A starts a flight; B and C wait for it: Wait is called with their contexts, not A's.
	type key struct{}
	rs := newTokenServer(t, "rt-0", 3600)
	release := make(chan struct{})
	rs.hold = func() { <-release }
	clock := newFakeClock()
	var mu sync.Mutex
	var waited []string
	src := rs.endpoint().TokenSource(context.Background(), expiredToken(clock, "rt-0"), oauth2refresh.WithClock(clock.now),
		oauth2refresh.WithTracer(funcTracer{wait: func(ctx context.Context) {
			mu.Lock()
			defer mu.Unlock()
			waited = append(waited, ctx.Value(key{}).(string))
		}}))
	var wg sync.WaitGroup
	call := func(name string) {
		ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, name))
		defer cancel()
		if _, err := src.TokenContext(ctx); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	wg.Go(func() { call("A") })
	for oauth2refresh.FlightWaiters(src) < 1 {
		time.Sleep(time.Millisecond) // polling for a state, not timing an assertion
	}
	wg.Go(func() { call("B") })
	wg.Go(func() { call("C") })
	for oauth2refresh.FlightWaiters(src) < 3 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(waited)
	if diff := cmp.Diff([]string{"B", "C"}, waited); diff != "" {
		t.Errorf("Wait called for (-want +got):\n%s", diff)
	}
}

// TestEventsAuthSwitched: a TokenSource with AuthAutoDetect reports the switch to the other
// client authentication when the token endpoint turns the first one down (401
// invalid_client), and nothing when the remembered method works.
func TestEventsAuthSwitched(t *testing.T) {
	var methods []string // how each token request authenticated
	var mu sync.Mutex
	srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		_, _, basic := r.BasicAuth()
		mu.Lock()
		methods = append(methods, map[bool]string{true: "basic", false: "body"}[basic])
		mu.Unlock()
		if basic || r.PostForm.Get("client_secret") != testSecret {
			respond(w, http.StatusUnauthorized, "application/json", `{"error":"invalid_client"}`)
			return
		}
		respond(w, http.StatusOK, "application/json",
			fmt.Sprintf(`{"access_token":"at-%d","token_type":"Bearer","expires_in":3600}`, n))
	})
	// A client id of its own: AuthAutoDetect remembers methods per token URL and client.
	ep := &oauth2refresh.Endpoint{TokenURL: srv.URL + "/token", ClientID: t.Name(), ClientSecret: testSecret,
		AuthMethod: oauth2refresh.AuthAutoDetect}
	clock := newFakeClock()
	var log eventLog
	src := ep.TokenSource(context.Background(), &oauth2.Token{RefreshToken: "rt-0"},
		oauth2refresh.WithClock(clock.now), oauth2refresh.WithEvents(log.add))
	if _, err := src.Token(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range log.take() {
		if ev.Kind == events.AuthSwitched {
			got = append(got, ev.Method)
		}
	}
	if diff := cmp.Diff([]string{oauth2refresh.AuthRequestBody.String()}, got); diff != "" {
		t.Errorf("switches (-want +got):\n%s", diff)
	}
	// The next refresh uses the remembered method at once: no switch to report.
	clock.advance(2 * time.Hour)
	if _, err := src.Token(); err != nil {
		t.Fatal(err)
	}
	for _, ev := range log.take() {
		if ev.Kind == events.AuthSwitched {
			t.Errorf("second refresh reported a switch to %v", ev.Method)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"basic", "body", "body"}, methods); diff != "" {
		t.Errorf("token requests authenticated (-want +got):\n%s", diff)
	}
}

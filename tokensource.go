package oauth2refresh

// tokensource.go owns when to ask: the cached token, the one flight (obtain, persist,
// install), the backoff, and the bound on refreshes forced by 401s. See clock.go and store.go.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenkit/oauth2refresh/events"

	"golang.org/x/oauth2"
)

// DefaultExpiryMargin is the ExpiryMargin unless set.
const defaultExpiryMargin = 10 * time.Second

// DefaultEarlyRefresh is the EarlyRefresh window unless set.
const defaultEarlyRefresh = time.Minute

// The backoff after failed flights (see TokenContext), and the bound on refreshes forced by
// rejected tokens (see Invalidate).
const (
	minBackoff        = time.Second
	maxBackoff        = 30 * time.Second
	maxRefusedBackoff = 5 * time.Minute
	maxRetryAfter     = 5 * time.Minute
	rejectWindow      = 15 * time.Second
	rejectReset       = 2 * maxRefusedBackoff
)

// Option configures a TokenSource.
type Option func(*config)

// config is what the Options set. It is written only while Endpoint.TokenSource builds the
// TokenSource, and read without a lock afterwards.
type config struct {
	tokenHook func(ctx context.Context, t *oauth2.Token) error // OnNewToken's hook, or nil
	store     Store                                            // WithStore's, or nil
	key       string                                           // WithStore's
	events    func(events.Event)                               // WithEvents', or nil
	tracer    events.Tracer                                    // WithTracer's, or nil
	early     time.Duration                                    // EarlyRefresh window; 0 disables it
	margin    time.Duration                                    // ExpiryMargin
	now       func() time.Time
	custom    bool // WithClock replaced now

	// backoffMin and backoffMax are Backoff's bounds (min <= max), both 0 when it is off.
	backoffMin, backoffMax time.Duration
}

// OnNewToken makes fn be called with every new token, refreshed or from the Store, before any
// caller gets it, one at a time, in order: the place to save rotated refresh tokens. If fn
// fails twice (it is retried at once), callers get its error and, after the backoff, fn is
// called again with the same token before any refresh. A panic in fn counts as a failure. fn
// must not call the TokenSource.
func OnNewToken(fn func(ctx context.Context, t *oauth2.Token) error) Option {
	return func(c *config) { c.tokenHook = fn }
}

// EarlyRefresh sets how long before a token stops being served a call starts a background
// refresh (default 1 min), not before half the token's lifetime. d <= 0 disables it.
func EarlyRefresh(d time.Duration) Option {
	return func(c *config) { c.early = max(d, 0) }
}

// ExpiryMargin sets how long before its Expiry a token stops being served (default 10 s, as
// in golang.org/x/oauth2), or half its lifetime before if that is less.
func ExpiryMargin(d time.Duration) Option {
	return func(c *config) { c.margin = max(d, 0) }
}

// Backoff sets the bounds of the backoff after a failed refresh (default 1 s, 30 s): waits of
// half to all of min, 2·min, ... up to max; up to 5 min after a refusal or as Retry-After
// asks. min <= 0 turns it off, for a program with its own retry loop.
func Backoff(min, max time.Duration) Option {
	return func(c *config) {
		if min <= 0 {
			c.backoffMin, c.backoffMax = 0, 0
			return
		}
		if max < min {
			max = min
		}
		c.backoffMin, c.backoffMax = min, max
	}
}

// WithClock replaces time.Now for the TokenSource's expiry and backoff decisions; for tests.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now, c.custom = now, true
		}
	}
}

// hard returns when t, which has an Expiry, stops being servable (see ExpiryMargin): the
// first instant it is not, a nanosecond after Expiry - margin on the wall clock, so that every
// comparison with it reads now.Before(hard) (the hot path's e < at too) and still serves t at
// Expiry - margin exactly, as golang.org/x/oauth2 does: its token is expired when
// Expiry.Round(0).Add(-margin).Before(now).
func (c *config) hard(t *oauth2.Token) time.Time {
	m := c.margin
	if life := time.Duration(t.ExpiresIn) * time.Second; life > 0 && life/2 < m {
		m = life / 2
	}
	return t.Expiry.Round(0).Add(-m + time.Nanosecond)
}

// servable reports whether t may be handed out at now: the one rule of the TokenSource and
// WithStore.
func (c *config) servable(t *oauth2.Token, now time.Time) bool {
	return t != nil && t.AccessToken != "" && (t.Expiry.IsZero() || now.Before(c.hard(t)))
}

// TokenSource hands out access tokens from an Endpoint: the cached token while valid, without
// I/O, lock or allocation, else the result of one refresh shared by all callers. It is safe
// for concurrent use and holds no goroutine or timer while idle. Its tokens must not be
// modified. See docs/SHARING.md.
type TokenSource struct {
	e   *Endpoint
	g   grant           // how a token is obtained (see grant.go); read-only
	cfg config          // read-only after construction
	ctx context.Context // values for flights, without cancellation
	clk clock

	state atomic.Pointer[state] // replaced (never modified) under mu; read without a lock

	mu       sync.Mutex // guards the fields below and the replacement of state
	flight   *flight    // the flight in progress, or nil
	pending  *pending   // the newest token, whose persist failed: the next flight's
	failures int        // consecutive failed flights
	retryAt  time.Time  // when the backoff after the last one ends
	lastErr  error      // its error
	// forceNext: Invalidate dropped the token while no flight ran, so the next flight is
	// forced; forced is the access token a forced flight installed. rejects counts forced
	// tokens rejected in turn, the last at lastReject.
	forceNext  bool
	forced     string
	rejects    int
	lastReject time.Time
	dropped    events.Trigger // why Invalidate last dropped the token: the next trigger

	// seen: with WithStore, a flight saw the grant in the Store (missing later: deleted).
	seen atomic.Bool

	testHookSlow func() // for tests: called at each entry to slow
}

// state is immutable once stored in TokenSource.state.
type state struct {
	tok *oauth2.Token // the current token; nil if none. It may hold only a refresh token.
	// soft, hard: see TokenSource. Wall-clock times without a monotonic reading; zero when
	// tok cannot be served, forever when it has no expiry.
	soft, hard time.Time
	// quiet is when the hot path leaves calls to the slow path, which may start a refresh:
	// soft, or later (up to hard) while a background refresh runs or backs off. quietAt is
	// quiet as an elapsed value: already when tok cannot be served, never without expiry.
	quiet   time.Time
	quietAt int64
}

// flight is one flight in progress, which owns cur (the token held when it started) and p
// (the pending token it took over). tok and err are written by the goroutine running it
// before done is closed, and read only after done is closed.
type flight struct {
	done   chan struct{}
	cur    *oauth2.Token
	p      *pending
	forced bool // started after Invalidate dropped the token
	tok    *oauth2.Token
	err    error

	// For its events: trigger, start and failures (s.failures when it started) are set
	// before it runs; waiters, the callers waiting for it, is guarded by TokenSource.mu.
	trigger  events.Trigger
	start    time.Time
	failures int
	waiters  int

	caller context.Context    // the ctx of the call that started it, for its values
	end    func(events.Event) // from the events.Tracer, or nil: set and called by the flight
}

// pending is a token obtained by a flight and not yet persisted. It is owned by one flight at
// a time: the one running, or, between flights, TokenSource.pending.
type pending struct {
	tok    *oauth2.Token
	from   string // the refresh token tok replaced (spent), "" if none
	picked bool   // tok was picked up from the store
	// save says tok must still be saved to the store; lease is the store's lease it was
	// obtained under, held until tok is saved (nil once lost), and end when it lapses.
	save  bool
	lease Lease
	end   time.Time
	// stored says the store held a token of the grant when tok was obtained: should the
	// lease be lost, finding none then means the grant was deleted (see Store.Delete).
	stored bool
}

// forever is the deadline of a token without expiry.
var forever = time.Unix(1<<62, 0)

// TokenSource returns a TokenSource that starts with t (maybe nil, or only a refresh token)
// and refreshes it through e. Refreshes get ctx's values (the *http.Client under
// oauth2.HTTPClient), not its cancellation. A nil ctx means Background.
func (e *Endpoint) TokenSource(ctx context.Context, t *oauth2.Token, opts ...Option) *TokenSource {
	return e.newSource(ctx, refreshGrant{}, t, opts)
}

// newSource returns a TokenSource of grant g, as TokenSource says.
func (e *Endpoint) newSource(ctx context.Context, g grant, t *oauth2.Token, opts []Option) *TokenSource {
	if ctx == nil {
		ctx = context.Background()
	}
	if _, ok := ctx.Deadline(); ok || ctx.Done() != nil {
		ctx = context.WithoutCancel(ctx) // a ctx that can end is kept for its values only
	}
	s := &TokenSource{
		e: e,
		g: g,
		cfg: config{early: defaultEarlyRefresh, margin: defaultExpiryMargin, now: time.Now,
			backoffMin: minBackoff, backoffMax: maxBackoff},
		ctx: ctx,
	}
	for _, o := range opts {
		o(&s.cfg)
	}
	s.clk.init(s.cfg.now, s.cfg.custom)
	now, el := s.clk.read()
	s.state.Store(s.newState(t, now, el))
	return s
}

// newState computes the deadlines of tok at wall-clock time now (elapsed value e).
func (s *TokenSource) newState(tok *oauth2.Token, now time.Time, e int64) *state {
	st := &state{tok: tok, quietAt: already}
	switch {
	case tok == nil || tok.AccessToken == "":
		// Nothing to serve: soft, hard and quiet stay zero.
	case tok.Expiry.IsZero():
		st.soft, st.hard, st.quiet, st.quietAt = forever, forever, forever, never
	default:
		st.hard = s.cfg.hard(tok).Round(0)
		st.soft = st.hard.Add(-s.cfg.early)
		if tok.ExpiresIn > 0 {
			issued := tok.Expiry.Add(-time.Duration(tok.ExpiresIn) * time.Second)
			if half := issued.Add(st.hard.Sub(issued) / 2).Round(0); st.soft.Before(half) {
				st.soft = half
			}
		}
		st.quiet = st.soft
		st.quietAt = at(st.quiet, now, e)
	}
	return st
}

// withQuiet returns st with its quiet deadline moved to q, clamped between soft and hard, at
// wall-clock time now (elapsed value e); st itself when nothing changes or tok cannot be served
// or has no expiry.
func withQuiet(st *state, q, now time.Time, e int64) *state {
	if st.quietAt == already || st.quietAt == never {
		return st
	}
	if q.Before(st.soft) {
		q = st.soft
	}
	if q.After(st.hard) {
		q = st.hard
	}
	q = q.Round(0)
	if q.Equal(st.quiet) {
		return st
	}
	return &state{tok: st.tok, soft: st.soft, hard: st.hard, quiet: q, quietAt: at(q, now, e)}
}

// Token returns a valid token, refreshing it if needed. It implements oauth2.TokenSource.
func (s *TokenSource) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}

// TokenContext returns a valid token, refreshing it if needed. Callers wait for the one
// refresh, or until ctx is done; the refresh goes on. It has the values, not the
// cancellation, of the ctx of the call that started it. After a failure, calls that need a
// new token get its error without I/O until the backoff ends (see Backoff).
func (s *TokenSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	if t := s.cached(); t != nil {
		return t, nil
	}
	return s.slow(ctx)
}

// cached returns the token s serves without I/O, lock or allocation, or nil when a call must
// take the slow path: the hot path of TokenContext and of the Manager's grants.
func (s *TokenSource) cached() *oauth2.Token {
	if st := s.state.Load(); s.clk.before(st.quietAt) {
		return st.tok
	}
	return nil
}

func (s *TokenSource) slow(ctx context.Context) (*oauth2.Token, error) {
	if s.testHookSlow != nil {
		s.testHookSlow()
	}
	s.mu.Lock()
	now, e := s.clk.read()
	st := s.state.Load()
	if q := redo(st.quiet, st.quietAt, now, e); q != st.quietAt {
		st = &state{tok: st.tok, soft: st.soft, hard: st.hard, quiet: st.quiet, quietAt: q}
		s.state.Store(st)
	}
	if now.Before(st.soft) {
		s.mu.Unlock()
		return st.tok, nil
	}
	if now.Before(st.hard) {
		if s.flight == nil && !now.Before(s.retryAt) {
			go s.run(s.newFlight(ctx, now, e))
		}
		s.mu.Unlock()
		return st.tok, nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	f := s.flight
	joined := f != nil
	if f == nil {
		if now.Before(s.retryAt) {
			err := s.lastErr
			s.mu.Unlock()
			return nil, err
		}
		f = s.newFlight(ctx, now, e)
		if ctx.Done() == nil {
			// This caller cannot give up waiting: run the flight on its goroutine.
			f.waiters++
			s.mu.Unlock()
			s.run(f)
			s.waited(now)
			return f.tok, f.err
		}
		go s.run(f)
	}
	f.waiters++
	s.mu.Unlock()
	if joined && s.cfg.tracer != nil {
		s.call(func() { s.cfg.tracer.Wait(ctx) })
	}
	select {
	case <-f.done:
		s.waited(now)
		return f.tok, f.err
	case <-ctx.Done():
		s.waited(now)
		return nil, fmt.Errorf("oauth2refresh: waiting for token refresh: %w", ctx.Err())
	}
}

// waited reports a caller's wait for a flight, begun at wall-clock time since.
func (s *TokenSource) waited(since time.Time) {
	if s.cfg.events != nil {
		s.emit(events.Event{Kind: events.Waited, Duration: s.cfg.now().Sub(since)})
	}
}

// newFlight records a new flight, started by a call with ctx (nil for none) at wall-clock time
// now (elapsed value e). s.mu must be held.
func (s *TokenSource) newFlight(ctx context.Context, now time.Time, e int64) *flight {
	st := s.state.Load()
	f := &flight{done: make(chan struct{}), cur: st.tok, p: s.pending, forced: s.forceNext,
		trigger: events.TriggerExpired, start: now, failures: s.failures, caller: ctx}
	switch {
	case now.Before(st.hard): // a background refresh: see state.quiet
		f.trigger = events.TriggerEarly
		s.state.Store(withQuiet(st, st.hard, now, e))
	case st.tok == nil || st.tok.AccessToken == "":
		f.trigger = events.TriggerFirst
	case st.hard.IsZero() && s.dropped != 0:
		f.trigger = s.dropped
	}
	s.flight, s.pending, s.forceNext, s.dropped = f, nil, false, 0
	return f
}

// run performs flight f: it obtains a token newer than f.cur, unless f.p holds one whose
// persist failed, persists it and installs it.
func (s *TokenSource) run(f *flight) {
	obtaining := "refresh"
	if s.cfg.store != nil {
		obtaining = "Store"
	}
	cur, p, what := f.cur, f.p, obtaining
	defer func() {
		if r := recover(); r != nil {
			err := s.redact(fmt.Errorf("oauth2refresh: %s panicked: %v", what, r), p, cur)
			s.finish(f, p, nil, err, events.OutcomePanic, 0)
		}
	}()
	s.emit(events.Event{Kind: events.RefreshStarted, Trigger: f.trigger, Failures: f.failures})
	ctx := s.flightContext(f)
	var err error
	var class events.Outcome
	var status int
	var done *oauth2.Token // the last token persisted
	for round := 0; round < 2 && err == nil; round++ {
		fresh := p == nil
		if p == nil {
			if p, err = s.obtain(ctx, cur); err != nil {
				class, status = outcome(err)
				break
			}
		}
		// persist calls fn, and once more at once if it fails and p is fresh.
		persist := func(c events.Outcome, fn func() error) error {
			err := fn()
			for try := 1; err != nil; try++ {
				if s.cfg.events != nil {
					s.emit(events.Event{Kind: events.PersistFailed, Outcome: c, Attempt: try, Err: s.redact(err, p, cur)})
				}
				if !fresh || try == 2 {
					class = c
					return err
				}
				err = fn()
			}
			return nil
		}
		if p.save {
			err = persist(events.OutcomeStore, func() error { return s.save(ctx, p) })
		}
		if err == nil && s.cfg.tokenHook != nil {
			what = "OnNewToken"
			err = persist(events.OutcomeHook, func() error {
				if err := s.cfg.tokenHook(ctx, p.tok); err != nil {
					return fmt.Errorf("oauth2refresh: OnNewToken: %w", err)
				}
				return nil
			})
			what = obtaining
		}
		if err != nil {
			if errors.As(err, new(*DeadGrantError)) {
				class = events.OutcomeInvalidGrant // marked dead while p was being saved
			}
			break
		}
		if done = p.tok; s.cfg.servable(done, s.cfg.now()) {
			break
		}
		// Persisted, but no longer servable (its persist kept failing, or a stale stored
		// token): obtain a newer one from it.
		cur, p = p.tok, nil
	}
	s.finish(f, p, done, s.redact(err, p, cur), class, status)
}

// obtain returns a token newer than cur: from the store, or from the grant (refreshed from
// cur, for the refresh grant).
func (s *TokenSource) obtain(ctx context.Context, cur *oauth2.Token) (*pending, error) {
	switch {
	case s.cfg.store != nil && s.g.standalone():
		return s.obtainStandalone(ctx, cur)
	case s.cfg.store != nil:
		return s.obtainShared(ctx, cur)
	}
	t, spent, err := s.g.fetch(ctx, s, cur)
	if err != nil {
		return nil, err
	}
	return &pending{tok: t, from: spent}, nil
}

// refreshable returns an error wrapping ErrRefreshTokenExpired when t's refresh token is known
// to have expired (see RefreshTokenExpiry): it is not sent.
func (s *TokenSource) refreshable(t *oauth2.Token) error {
	if exp := RefreshTokenExpiry(t); !exp.IsZero() && !s.cfg.now().Before(exp) {
		return &refreshExpiredError{at: exp}
	}
	return nil
}

// redact cuts out of err, an error of a flight, which may quote them (a hook's or a Store's
// "Duplicate entry 'RT-...'"), the client secret, the tokens of p (the access token, refresh
// token and id_token obtained, and the refresh token spent) and those of cur, the token held.
func (s *TokenSource) redact(err error, p *pending, cur *oauth2.Token) error {
	if err == nil {
		return nil
	}
	secrets := tokenSecrets(cur)
	if s.e != nil {
		secrets = append(secrets, s.e.ClientSecret)
	}
	if p != nil {
		secrets = append(append(secrets, p.from), tokenSecrets(p.tok)...)
	}
	return redactError(err, secrets...)
}

// finish ends flight f: without err, it installs done, the token persisted; with err, it keeps
// p as the pending token (if any), and installs done if set, whose refresh token is the newest.
// class and status are err's events.Outcome and HTTP status, for the events fired after.
func (s *TokenSource) finish(f *flight, p *pending, done *oauth2.Token, err error, class events.Outcome, status int) {
	s.mu.Lock()
	now, e := s.clk.read()
	failures := s.failures
	if err != nil {
		if done != nil {
			s.state.Store(s.newState(done, now, e))
		}
		s.pending = p
		s.failures++
		var d time.Duration // 0 with Backoff off: the next call tries again
		if s.cfg.backoffMin > 0 {
			limit := s.cfg.backoffMax
			if re := (*RequestError)(nil); errors.As(err, &re) && !re.temporary() || errors.Is(err, ErrRefreshTokenExpired) ||
				errors.As(err, new(*DeadGrantError)) {
				limit = max(limit, maxRefusedBackoff) // the server refused the grant or the client, or would
			}
			d = max(backoff(s.failures, s.cfg.backoffMin, limit), retryAfter(err, now))
		}
		s.retryAt = now.Add(d)
		s.lastErr = err
		f.err = err
		if st := s.state.Load(); now.Before(st.hard) { // see state.quiet
			s.state.Store(withQuiet(st, s.retryAt, now, e))
		}
	} else {
		s.failures, s.retryAt, s.lastErr, s.forced = 0, time.Time{}, nil, ""
		if f.forced {
			s.forced = done.AccessToken
		}
		s.state.Store(s.newState(done, now, e))
		f.tok = done
	}
	result := events.OutcomeOK
	if err == nil && p != nil && p.picked {
		result = events.OutcomePickedUp // not a refresh: see events.OutcomePickedUp
	}
	s.flight = nil
	ev := events.Event{Kind: events.RefreshFinished, Key: s.cfg.key, Trigger: f.trigger, Outcome: result, Duration: now.Sub(f.start),
		Waiters: f.waiters, Failures: s.failures}
	until := s.retryAt
	s.mu.Unlock()
	// The events are delivered before the callers waiting get the result.
	switch {
	case s.cfg.events == nil:
	case err != nil:
		ev.Outcome, ev.Status, ev.Err = class, status, err
		s.emit(ev)
		s.emit(events.Event{Kind: events.BackoffStarted, Outcome: class, Status: status, Failures: ev.Failures, Until: until})
	default:
		s.emit(ev)
		if failures > 0 {
			s.emit(events.Event{Kind: events.BackoffEnded, Failures: failures})
		}
	}
	if f.end != nil {
		if err != nil {
			ev.Outcome, ev.Status, ev.Err = class, status, err
		}
		s.call(func() { f.end(ev) })
	}
	close(f.done)
}

// retryAfter returns how long the Retry-After header of the token endpoint's answer in err
// asks to wait (RFC 9110 §10.2.3), at most maxRetryAfter, or 0.
func retryAfter(err error, now time.Time) time.Duration {
	var re *RequestError
	var ue *UnexpectedResponseError
	var v string
	if errors.As(err, &re) {
		v = re.Header.Get("Retry-After")
	} else if errors.As(err, &ue) {
		v = ue.Header.Get("Retry-After")
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(min(max(n, 0), int64(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}

// backoff returns how long to wait after n consecutive failures: between half and all of
// first<<(n-1), at most limit.
func backoff(n int, first, limit time.Duration) time.Duration {
	d := limit
	if n < 63 && first <= limit>>(n-1) {
		d = first << (n - 1) // at most limit: no overflow
	}
	if d < 2 {
		return d
	}
	return d/2 + rand.N(d/2)
}

// Invalidate tells s that a resource server rejected t (an HTTP 401): the next call refreshes,
// unless t was replaced already. The refreshes this forces are bounded: 4 in the first
// minute, then fewer. Invalidate(nil) drops the current token without bound and ends a
// backoff: "try again now".
func (s *TokenSource) Invalidate(t *oauth2.Token) {
	if ev := s.invalidate(t); ev.Kind != 0 {
		s.emit(ev)
	}
}

// invalidate is Invalidate, returning the event to fire once s.mu is released.
//
// The bound on forced refreshes: a token handed in or from an ordinary refresh is always
// dropped at once, so that a revoked token is replaced by the next request; so is, the first
// time, a token from a refresh a rejection forced (s.forced). After that one forced token in
// rejectWindow (15 s) is dropped, then one in 30 s, 1 min, ... up to maxRefusedBackoff, and the
// others are ignored (DropIgnored): at most 4 refreshes in the first minute. The count starts
// again after rejectReset without a forced token dropped. A rejection does not end a backoff.
func (s *TokenSource) invalidate(t *oauth2.Token) events.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t == nil {
		s.retryAt, s.rejects = time.Time{}, 0
	}
	st := s.state.Load()
	if st.tok == nil || st.quietAt == already {
		return events.Event{}
	}
	drop := events.TriggerInvalidated
	if t != nil {
		if t.AccessToken != st.tok.AccessToken {
			return events.Event{}
		}
		if now := s.cfg.now(); t.AccessToken == s.forced {
			if now.Sub(s.lastReject) > rejectReset {
				s.rejects = 0
			}
			if n := s.rejects; n > 0 {
				if next := s.lastReject.Add(min(rejectWindow<<min(n-1, 20), maxRefusedBackoff)); now.Before(next) {
					return events.Event{Kind: events.DropIgnored, Until: next}
				}
			}
			s.rejects++
			s.lastReject = now
		}
		s.forceNext = s.flight == nil
		drop = events.TriggerRejected
	}
	s.dropped = drop
	s.state.Store(&state{tok: st.tok, quietAt: already})
	return events.Event{Kind: events.TokenDropped, Trigger: drop}
}

package oauth2refresh

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// DefaultExpiryMargin is how long before its Expiry a token stops being handed out unless
// ExpiryMargin says otherwise. It matches golang.org/x/oauth2's expiry delta.
const DefaultExpiryMargin = 10 * time.Second

// DefaultEarlyRefresh is the EarlyRefresh window used unless EarlyRefresh says otherwise:
// with the default margin, a one-hour token is refreshed in the background 70 s before it
// expires; short-lived tokens are refreshed after half their servable life (see EarlyRefresh).
const DefaultEarlyRefresh = time.Minute

// Backoff after failed refreshes: after n consecutive failures, no new attempt is made for a
// random duration between half and all of min(minBackoff·2^(n-1), limit). limit is
// maxRefusedBackoff when the token endpoint refused the grant or the client for good (see
// refused), maxBackoff otherwise: a dead grant is then asked about every few minutes per
// process rather than every 30 s, while a flaky endpoint or store is retried sooner.
const (
	minBackoff        = time.Second
	maxBackoff        = 30 * time.Second
	maxRefusedBackoff = 5 * time.Minute
)

// Option configures a TokenSource.
type Option func(*config)

// config is what the Options set. It is written only while Endpoint.TokenSource builds the
// TokenSource, and read without a lock afterwards.
type config struct {
	// endpoint is the Endpoint the TokenSource was made from.
	endpoint *Endpoint

	// refresh performs every refresh of the TokenSource, one at a time: it is never called
	// again before the previous call has returned. cur is the token the source holds (the
	// newest one, whose refresh token must be sent next), or nil when it holds none. The
	// token returned replaces cur; if its RefreshToken is empty, cur's is kept.
	//
	// The default is e.Refresh(ctx, cur.RefreshToken), with Expiry set from ExpiresIn by the
	// config's clock, or ErrNoRefreshToken when cur is nil or has no refresh token. ctx is
	// the TokenSource's (values only, never canceled). It is set before any Option runs, so an Option may replace it
	// or wrap it (read c.refresh, then set c.refresh to a function calling the old one): this
	// is the seam for shared stores, which lock, re-read a token another process may have
	// refreshed, call the old function only when needed, and save.
	refresh func(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error)

	// onRefresh is OnRefresh's hook, or nil.
	onRefresh func(ctx context.Context, t *oauth2.Token) error

	early  time.Duration // EarlyRefresh window; 0 disables early refresh
	margin time.Duration // ExpiryMargin
	now    func() time.Time
	// customClock says WithClock replaced now: the hot path then reads now too, instead
	// of the monotonic clock.
	customClock bool
}

// OnRefresh registers fn to be called after every successful refresh with the new token,
// before that token is handed to any caller: the place to persist rotated refresh tokens.
//
// Calls are made one at a time, in the order the server issued the tokens. ctx carries the
// values of the context given to TokenSource, without its cancellation. If fn returns an
// error, the Token or TokenContext call waiting for that refresh returns an error wrapping it,
// the new token stays in memory without being handed out, and the next call that needs a
// token calls fn again with the same token instead of refreshing again: a rotated refresh
// token is never lost and never silently left unsaved. Should that token expire while fn keeps
// failing, its refresh token (the newest) is used for the next refresh.
//
// fn runs inside the refresh that callers are waiting for: it must not call the TokenSource
// it is registered on (Token, TokenContext), which would wait for fn itself.
func OnRefresh(fn func(ctx context.Context, t *oauth2.Token) error) Option {
	return func(c *config) { c.onRefresh = fn }
}

// EarlyRefresh sets how long before a token stops being served (its Expiry minus the
// ExpiryMargin) a call starts one refresh in the background. Callers keep getting the
// still-valid token while it runs, still without a lock; only callers that hold no valid token
// wait. A failed background refresh is retried, with backoff (see TokenContext), by the first
// call after the backoff ends, until the token stops being served; from then on callers get the
// error. During the backoff, too, calls get the still-valid token without a lock.
//
// The default is DefaultEarlyRefresh (one minute). To avoid refreshing all the time, the
// window never starts before half of the token's servable lifetime (counted from when the
// TokenSource received it) has passed: a 60 s token with the default 10 s margin is served
// for 50 s and refreshed in the background from 25 s on. d <= 0 disables early refresh: the
// first call after the token stops being served refreshes, and waits.
func EarlyRefresh(d time.Duration) Option {
	return func(c *config) { c.early = max(d, 0) }
}

// ExpiryMargin sets how long before its Expiry a token stops being handed out, so that it
// does not expire on its way to the resource server. The default is DefaultExpiryMargin (10 s,
// as in golang.org/x/oauth2). A token whose remaining lifetime on arrival is shorter than
// twice the margin is served for the first half of it rather than not at all. The EarlyRefresh
// window is counted back from Expiry minus the margin.
func ExpiryMargin(d time.Duration) Option {
	return func(c *config) { c.margin = max(d, 0) }
}

// WithClock replaces time.Now for every expiry, early refresh and backoff decision of the
// TokenSource, and for the Expiry of the tokens its Endpoint returns; for tests.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now, c.customClock = now, true
		}
	}
}

// TokenSource hands out access tokens from an Endpoint: a cached token while it is valid,
// without I/O, locks or allocations (the cost of a call is one read of the monotonic clock and
// two atomic loads), and otherwise the result of one refresh shared by every caller. It
// implements oauth2.TokenSource and may be used by any number of goroutines. It holds no
// goroutine or timer while idle: an abandoned TokenSource is garbage-collected.
//
// The life of a token with an Expiry, from when the TokenSource receives it:
//
//	received ......... soft ............... hard ........ Expiry
//	   served, no I/O  |  served; one call  |  callers wait for a refresh
//	                   |  starts a refresh  |
//	                   |  in the background |
//
// hard is Expiry minus the ExpiryMargin (10 s by default), or half-way from receipt to
// Expiry if that is later; soft is hard minus the EarlyRefresh window (1 min by default), or
// half-way from receipt to hard if that is later. A token without Expiry is served until
// Invalidate is called.
//
// No call takes a lock while a valid token is held, except one call a second, which checks
// the deadlines against the wall clock, and, between soft and hard, the call that starts the
// background refresh (the first after soft, then the first after each backoff).
//
// Tokens it returns are shared between callers and must not be modified.
type TokenSource struct {
	cfg  config          // read-only after construction
	ctx  context.Context // values for refreshes: context.WithoutCancel of the ctx given to TokenSource
	base time.Time       // read-only; the origin of elapsed

	// state is the token being served, its precomputed deadlines, and until when the hot path
	// returns it on its own. It is replaced (never modified) under mu, and read without a lock
	// on the hot path.
	state atomic.Pointer[state]
	// wallCheck is the elapsed time at which the hot path next leaves the token to the slow
	// path, which compares its deadlines with the wall clock. Stored under mu, read without.
	wallCheck atomic.Int64

	mu sync.Mutex // guards the fields below and the replacement of state
	// flight is the refresh in progress, or nil.
	flight *flight
	// pending is a refreshed token whose OnRefresh call failed: it is the newest token, not
	// yet handed out. The next flight calls the hook with it again instead of refreshing.
	pending *oauth2.Token
	// failures counts consecutive failed flights; retryAt is when the backoff after the last
	// one ends and lastErr its error. hookFailed says the last flight failed in OnRefresh:
	// callers that need a token then retry the hook at once, without waiting for retryAt.
	failures   int
	retryAt    time.Time
	lastErr    error
	hookFailed bool

	// testHookSlow, when set by a test before the first call, is called at every entry to
	// the slow path, before it takes mu.
	testHookSlow func()
}

// state is immutable once stored in TokenSource.state.
type state struct {
	tok *oauth2.Token // the current token; nil if none. It may hold only a refresh token.
	// soft: until then tok is served without further ado. From soft to hard tok is still
	// served, and a background refresh is started. From hard on, callers wait for a refresh.
	// Both are wall-clock times without a monotonic reading; zero when tok cannot be served,
	// forever when it has no expiry.
	soft, hard time.Time
	// quiet is when the hot path stops returning tok without the lock and leaves calls to
	// the slow path, which may start a refresh: soft, or, between soft and hard, the end of
	// the backoff after a failed background refresh, or hard while one is running. It is
	// never before soft nor after hard. Wall clock, without a monotonic reading.
	quiet time.Time
	// quietAt is quiet as a TokenSource.elapsed value, for the hot path: math.MinInt64 when
	// tok cannot be served, math.MaxInt64 when it has no expiry.
	quietAt int64
}

// The hot path reads the monotonic clock only (time.Since costs half of time.Now), against
// deadlines converted to it. The monotonic clock stops while a machine sleeps, though, and
// the wall clock may be stepped, so at least every wallCheckInterval of monotonic time a call
// takes the slow path, which decides with the wall clock, as golang.org/x/oauth2 does, and
// converts the deadlines again when the two clocks have drifted apart by more than
// maxClockDrift. After a sleep, an expired token is thus served for at most a second.
const (
	wallCheckInterval = time.Second
	maxClockDrift     = 10 * time.Millisecond
)

// elapsed returns the time since s.base: monotonic, unless WithClock replaced the clock.
func (s *TokenSource) elapsed() int64 {
	if s.cfg.customClock {
		return int64(s.cfg.now().Sub(s.base))
	}
	return int64(time.Since(s.base))
}

// clocks reads the wall clock and the elapsed time together: from one reading with WithClock,
// else from two consecutive ones. Callers read them after taking s.mu, so that a wait for the
// lock does not look like drift between the two clocks.
func (s *TokenSource) clocks() (now time.Time, e int64) {
	now = s.cfg.now()
	if s.cfg.customClock {
		return now, int64(now.Sub(s.base))
	}
	return now, int64(time.Since(s.base))
}

// flight is one refresh and OnRefresh call in progress. tok and err are written by the
// goroutine running it before done is closed, and read only after done is closed.
type flight struct {
	done chan struct{}
	tok  *oauth2.Token
	err  error
}

// forever is the deadline of a token without expiry.
var forever = time.Unix(1<<62, 0)

// TokenSource returns a TokenSource that starts with t and refreshes it through e. t may be
// nil, or hold only a refresh token, or an access token without Expiry (which is then served
// until Invalidate is called).
//
// ctx supplies values to every refresh, such as the *http.Client under oauth2.HTTPClient, but
// its cancellation and deadline are ignored: refreshes outlive the call that starts them.
// Callers bound their own waiting with TokenContext. A nil ctx means context.Background().
func (e *Endpoint) TokenSource(ctx context.Context, t *oauth2.Token, opts ...Option) *TokenSource {
	if ctx == nil {
		ctx = context.Background()
	}
	s := &TokenSource{
		cfg: config{
			endpoint: e,
			early:    DefaultEarlyRefresh,
			margin:   DefaultExpiryMargin,
			now:      time.Now,
		},
		ctx: context.WithoutCancel(ctx),
	}
	s.cfg.refresh = func(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
		if cur == nil || cur.RefreshToken == "" {
			return nil, ErrNoRefreshToken
		}
		t, err := e.Refresh(ctx, cur.RefreshToken)
		if err == nil && t.ExpiresIn > 0 {
			// Stamp the expiry with the TokenSource's clock, which WithClock may have replaced.
			t.Expiry = s.cfg.now().Add(time.Duration(t.ExpiresIn) * time.Second)
		}
		return t, err
	}
	for _, o := range opts {
		o(&s.cfg)
	}
	s.base = time.Now()
	if s.cfg.customClock {
		s.base = s.cfg.now()
	}
	now, el := s.clocks()
	s.state.Store(s.newState(t, now, el))
	s.wallCheck.Store(el + int64(wallCheckInterval))
	return s
}

// newState computes the deadlines of tok, received at now (elapsed value e).
func (s *TokenSource) newState(tok *oauth2.Token, now time.Time, e int64) *state {
	st := &state{tok: tok, quietAt: math.MinInt64}
	switch {
	case tok == nil || tok.AccessToken == "":
		// Nothing to serve: soft, hard and quiet stay zero.
	case tok.Expiry.IsZero():
		st.soft, st.hard, st.quiet, st.quietAt = forever, forever, forever, math.MaxInt64
	default:
		st.hard = tok.Expiry.Add(-s.cfg.margin)
		if half := now.Add(tok.Expiry.Sub(now) / 2); st.hard.Before(half) {
			st.hard = half
		}
		st.soft = st.hard
		if s.cfg.early > 0 {
			st.soft = st.hard.Add(-s.cfg.early)
			if half := now.Add(st.hard.Sub(now) / 2); st.soft.Before(half) {
				st.soft = half
			}
		}
		// Compare with the wall clock, as x/oauth2 does: the monotonic clock stops while
		// a laptop sleeps, and a token must not outlive its expiry by that long.
		st.soft, st.hard = st.soft.Round(0), st.hard.Round(0)
		st.quiet = st.soft
		st.quietAt = toElapsedAt(st.quiet, now, e)
	}
	return st
}

// withQuiet returns st with its quiet deadline moved to q, clamped between soft and hard, at
// wall-clock time now (elapsed value e); st itself when nothing changes or tok cannot be served
// or has no expiry.
func withQuiet(st *state, q, now time.Time, e int64) *state {
	if st.quietAt == math.MinInt64 || st.quietAt == math.MaxInt64 {
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
	return &state{tok: st.tok, soft: st.soft, hard: st.hard, quiet: q, quietAt: toElapsedAt(q, now, e)}
}

// toElapsed converts the wall-clock time t to an elapsed value, now being the wall-clock time.
func (s *TokenSource) toElapsed(t, now time.Time) int64 {
	return toElapsedAt(t, now, s.elapsed())
}

// toElapsedAt converts the wall-clock time t to an elapsed value, e being the elapsed value
// at wall-clock time now.
func toElapsedAt(t, now time.Time, e int64) int64 {
	d := int64(t.Sub(now.Round(0)))
	if d > 0 && e > math.MaxInt64-d {
		return math.MaxInt64
	}
	return e + d
}

// Token returns a valid token, refreshing it if needed. It implements oauth2.TokenSource.
func (s *TokenSource) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}

// TokenContext returns a valid token, refreshing it if needed. A valid token is returned
// without I/O or allocation, and without a lock but for one call a second, which checks the
// deadlines against the wall clock, and the call that starts a background refresh (see
// EarlyRefresh). Otherwise the caller waits for the one refresh in flight, shared by all
// callers, or until ctx is done: it then returns an error wrapping ctx.Err(), while the
// refresh goes on and its result is kept for later calls. A caller whose ctx can never be done
// (Token, context.Background()) performs the refresh itself, on its goroutine.
//
// After a failed refresh, no new attempt is made during a backoff that grows with each
// consecutive failure: calls that hold no valid token get the same error without I/O. The
// backoff lasts between half and all of 1 s, 2 s, 4 s, ... up to 30 s, or up to 5 min when
// the token endpoint refused the grant or the client (a *RequestError that is not Temporary:
// invalid_grant, invalid_client, ...), or as long as a Retry-After header of the token
// endpoint asks, up to 5 min. A successful refresh, Invalidate(nil) and a new TokenSource end
// it (see Invalidate).
func (s *TokenSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	st := s.state.Load()
	if e := s.elapsed(); e < st.quietAt && e < s.wallCheck.Load() {
		return st.tok, nil
	}
	return s.slow(ctx)
}

func (s *TokenSource) slow(ctx context.Context) (*oauth2.Token, error) {
	if s.testHookSlow != nil {
		s.testHookSlow()
	}
	s.mu.Lock()
	now, e := s.clocks()
	st := s.state.Load()
	if st.quietAt != math.MinInt64 && st.quietAt != math.MaxInt64 {
		if d := toElapsedAt(st.quiet, now, e) - st.quietAt; d > int64(maxClockDrift) || d < -int64(maxClockDrift) {
			// The clocks drifted apart (a sleep, a step of the wall clock): convert again.
			st = &state{tok: st.tok, soft: st.soft, hard: st.hard, quiet: st.quiet, quietAt: st.quietAt + d}
			s.state.Store(st)
		}
	}
	s.wallCheck.Store(e + int64(wallCheckInterval))
	if now.Before(st.soft) {
		s.mu.Unlock()
		return st.tok, nil
	}
	if now.Before(st.hard) {
		// Still servable: maybe start a background refresh, and return tok either way.
		if s.flight == nil && !now.Before(s.retryAt) {
			s.start(now, e)
		}
		s.mu.Unlock()
		return st.tok, nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	f := s.flight
	if f == nil {
		if !s.hookFailed && now.Before(s.retryAt) {
			err := s.lastErr
			s.mu.Unlock()
			return nil, err
		}
		if ctx.Done() == nil {
			// This caller cannot give up waiting: run the flight on its goroutine.
			f, cur, pending := s.newFlight(now, e)
			s.mu.Unlock()
			s.run(f, cur, pending)
			return f.tok, f.err
		}
		f = s.start(now, e)
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("oauth2refresh: waiting for token refresh: %w", ctx.Err())
	}
}

// start starts a flight on a new goroutine, at wall-clock time now (elapsed value e). s.mu
// must be held.
func (s *TokenSource) start(now time.Time, e int64) *flight {
	f, cur, pending := s.newFlight(now, e)
	go s.run(f, cur, pending)
	return f
}

// newFlight records a new flight, started at wall-clock time now (elapsed value e), and
// returns it with the arguments for run. s.mu must be held.
func (s *TokenSource) newFlight(now time.Time, e int64) (f *flight, cur, pending *oauth2.Token) {
	f = &flight{done: make(chan struct{})}
	s.flight = f
	pending = s.pending
	cur = pending
	st := s.state.Load()
	if cur == nil {
		cur = st.tok
	}
	if now.Before(st.hard) {
		// A background refresh: until it ends, or until hard, calls have nothing to start
		// and get st.tok without the lock.
		s.state.Store(withQuiet(st, st.hard, now, e))
	}
	return f, cur, pending
}

// run performs flight f: a refresh from cur, unless pending holds a token still waiting for
// its OnRefresh call, then the OnRefresh call, then the installation of the new token.
func (s *TokenSource) run(f *flight, cur, pending *oauth2.Token) {
	tok := pending
	finished := false
	defer func() {
		if !finished {
			// The refresh function or the hook panicked: let the waiters and later calls go
			// on before the panic goes up, and keep a refreshed token for its hook.
			s.finish(f, tok, errors.New("oauth2refresh: refresh panicked"), tok != nil)
		}
	}()
	if tok != nil && !tok.Expiry.IsZero() && !s.cfg.now().Before(tok.Expiry.Add(-s.cfg.margin)) {
		tok = nil // expired while its hook kept failing: refresh from its refresh token
	}
	var err error
	if tok == nil {
		tok, err = s.cfg.refresh(s.ctx, cur)
		if err == nil && tok == nil {
			err = errors.New("oauth2refresh: refresh returned no token")
		}
		if err == nil && tok.RefreshToken == "" && cur != nil && cur.RefreshToken != "" {
			t := *tok
			t.RefreshToken = cur.RefreshToken
			tok = &t
		}
	}
	hookFailed := false
	if err == nil && s.cfg.onRefresh != nil {
		if herr := s.cfg.onRefresh(s.ctx, tok); herr != nil {
			err = fmt.Errorf("oauth2refresh: OnRefresh: %w", herr)
			hookFailed = true
		}
	}
	finished = true
	if err != nil && !hookFailed {
		tok = nil
	}
	s.finish(f, tok, err, hookFailed)
}

// finish ends flight f with its result. tok is the new token, or with hookFailed the token
// whose OnRefresh call failed.
func (s *TokenSource) finish(f *flight, tok *oauth2.Token, err error, hookFailed bool) {
	s.mu.Lock()
	now, e := s.clocks()
	s.hookFailed = hookFailed
	if err != nil {
		if hookFailed {
			s.pending = tok
		}
		s.failures++
		limit := maxBackoff
		if !hookFailed && refused(err) {
			limit = maxRefusedBackoff
		}
		d := backoff(s.failures, limit)
		if ra := retryAfter(err, now); ra > d {
			d = min(ra, maxRetryAfter)
		}
		s.retryAt = now.Add(d)
		s.lastErr = err
		f.err = err
		if st := s.state.Load(); now.Before(st.hard) {
			// A failed background refresh: until the backoff ends, calls holding the
			// still-valid token have nothing to start and get it without the lock.
			s.state.Store(withQuiet(st, s.retryAt, now, e))
		}
	} else {
		s.pending = nil
		s.failures = 0
		s.retryAt = time.Time{}
		s.lastErr = nil
		s.state.Store(s.newState(tok, now, e))
		f.tok = tok
	}
	s.flight = nil
	s.mu.Unlock()
	close(f.done)
}

// maxRetryAfter bounds how long a Retry-After header can hold refreshes back.
const maxRetryAfter = 5 * time.Minute

// retryAfter returns how long the Retry-After header of the token endpoint's answer in err
// asks to wait (RFC 9110 §10.2.3), or 0.
func retryAfter(err error, now time.Time) time.Duration {
	var h http.Header
	var re *RequestError
	var ue *UnexpectedResponseError
	switch {
	case errors.As(err, &re):
		h = re.Header
	case errors.As(err, &ue):
		h = ue.Header
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.Sub(now)
	}
	return 0
}

// backoff returns how long to wait after n consecutive failures, at most limit.
func backoff(n int, limit time.Duration) time.Duration {
	d := limit
	if n < 32 {
		d = min(minBackoff<<(n-1), limit)
	}
	return d/2 + rand.N(d/2)
}

// refused reports whether err says that the token endpoint refused the grant or the client
// for good: an RFC 6749 §5.2 error that is not Temporary (invalid_grant, invalid_client, ...).
// Only the authorization server is trusted with that verdict: any other error (a transport
// failure, a store that is down) backs off no longer than maxBackoff.
func refused(err error) bool {
	var re *RequestError
	return errors.As(err, &re) && !re.Temporary()
}

// Invalidate tells s that t was rejected by a resource server (an HTTP 401): the next call
// that needs a token refreshes, unless a newer token has already replaced t. Invalidate(t)
// does not end the backoff after failed refreshes, so that a resource server answering 401
// to every request cannot make s hammer the token endpoint.
//
// Invalidate(nil) makes the next call refresh whatever token is current, and also ends the
// backoff: that call tries at once. Call it once what made refreshes fail has been fixed, for
// instance after the user signed in again and the new token was saved to the Store a
// WithStore source reads. A source holding a refresh token the server refused
// (ErrInvalidGrant) cannot be given a new one: make a new TokenSource with the new token.
func (s *TokenSource) Invalidate(t *oauth2.Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t == nil {
		s.retryAt = time.Time{}
	}
	st := s.state.Load()
	if st.tok == nil {
		return
	}
	if t != nil && t.AccessToken != st.tok.AccessToken {
		return
	}
	s.state.Store(&state{tok: st.tok, quietAt: math.MinInt64})
}

package oauth2refresh

// events.go owns what the TokenSource, its Transport and WithStore report of what they do,
// for operators: the Event type, the WithEvents option, and the outcome class of a flight's
// error. No event carries token material. slog.go logs events.

import (
	"context"
	"errors"
	"time"
)

// EventKind says what an Event reports.
type EventKind uint8

// The kinds of Event, and the fields each sets besides Kind and Key.
const (
	// EventRefreshStarted: a flight started (see TokenSource: a refresh, a pickup from the
	// Store, or the persist of a token whose persist failed). Trigger; Failures, the
	// consecutive failed flights before it.
	EventRefreshStarted EventKind = iota + 1
	// EventRefreshFinished: the flight ended. Trigger; Outcome; Status, the HTTP status of
	// the token endpoint's answer when the flight failed on one; Duration, the flight's;
	// Waiters, the callers that waited for it (those that gave up too); Failures, consecutive failed flights counting
	// this one (0 when it succeeded); Err when it failed.
	EventRefreshFinished
	// EventBackoffStarted: after a failed flight, no new attempt is made until Until (see
	// TokenSource.TokenContext). Outcome and Status of the failure; Failures; Until.
	EventBackoffStarted
	// EventBackoffEnded: a flight succeeded after Failures failed ones.
	EventBackoffEnded
	// EventPersistFailed: a save to the Store (Outcome OutcomeStore) or OnRefresh (Outcome
	// OutcomeHook) failed; Attempt is 1, or 2 for the retry a new token gets at once (see
	// OnRefresh); Err.
	EventPersistFailed
	// EventStorePickup: a flight took the token another process saved to the Store instead
	// of refreshing (see WithStore).
	EventStorePickup
	// EventLeaseTaken: a flight took the grant's lease (Store.Lock); Duration, the wait.
	EventLeaseTaken
	// EventLeaseLost: a save under the lease failed with ErrLeaseLost (see WithStore for what
	// follows). Err.
	EventLeaseLost
	// EventUnauthorizedRetry: a Transport got a 401 (Status) and retries the request with a
	// new token.
	EventUnauthorizedRetry
	// EventTokenDropped: Invalidate dropped the token served; Trigger is TriggerRejected
	// (Invalidate with the token, a 401) or TriggerInvalidated (Invalidate(nil)).
	EventTokenDropped
	// EventDropIgnored: Invalidate kept a rejected token, by its bound on refreshes forced
	// by 401s; Until, when a rejected token is next dropped.
	EventDropIgnored
	// EventWaited: a call waited for a flight (the one it ran itself included), which it
	// reports after the flight's events; Duration, until it got the result or gave up.
	EventWaited
	// EventAuthSwitched: AuthAutoDetect found that the token endpoint now accepts the client's
	// credentials only the other way, and switched to Method for this and later requests.
	EventAuthSwitched
	// EventNonceRetry: a DPoP nonce challenge (RFC 9449 §8, §9) from the token endpoint
	// (Status 400) or a resource server (Status 401): the request is sent once more with the
	// server's new nonce.
	EventNonceRetry
	// EventGrantDead: a flight found the grant dead (see DeadGrantError), and sent nothing
	// more: the server refused its refresh token, which is known expired (the flight then
	// marked the grant dead in the Store), or the Store holds the mark. Outcome is
	// OutcomeInvalidGrant; Status, that of the server's refusal, if any; Err, the
	// *DeadGrantError, whose Err is nil when the Store said so.
	EventGrantDead
)

// Trigger says why a flight started, or why Invalidate dropped a token.
type Trigger uint8

// The triggers of a flight.
const (
	TriggerFirst       Trigger = iota + 1 // no access token was held
	TriggerExpired                        // the token stopped being servable (see ExpiryMargin)
	TriggerEarly                          // a background refresh (see EarlyRefresh)
	TriggerRejected                       // Invalidate with the token: a resource server's 401
	TriggerInvalidated                    // Invalidate(nil): the program dropped the token
)

// Outcome is the class of a flight's result, a label for counting failures by cause.
type Outcome uint8

// The outcomes of a flight. A *RequestError counts by its Code: OutcomeInvalidGrant for the
// codes that judge the grant (invalid_grant, invalid_scope, GitHub's bad_refresh_token),
// OutcomeInvalidClient for those that reject the client (invalid_client, unauthorized_client,
// GitHub's incorrect_client_credentials), OutcomeTemporary when it is Temporary, OutcomeOther
// otherwise. ErrRefreshTokenExpired counts as OutcomeInvalidGrant.
const (
	OutcomeOK            Outcome = iota + 1
	OutcomeInvalidGrant          // the server refused the grant, or its refresh token expired
	OutcomeInvalidClient         // the server refused the client's authentication
	OutcomeTemporary             // an answer that may change later: HTTP 429, 5xx, temporarily_unavailable
	OutcomeTransport             // no answer: a *TransportError
	OutcomeStore                 // the Store of WithStore failed
	OutcomeHook                  // OnRefresh failed
	OutcomePanic                 // OnRefresh or the Store panicked
	OutcomeOther                 // anything else: an unexpected answer, ErrNoRefreshToken, ...
)

var (
	kindNames = [...]string{"", "refresh_started", "refresh_finished", "backoff_started", "backoff_ended",
		"persist_failed", "store_pickup", "lease_taken", "lease_lost", "unauthorized_retry", "token_dropped",
		"drop_ignored", "waited", "auth_switched", "nonce_retry", "grant_dead"}
	triggerNames = [...]string{"", "first", "expired", "early", "rejected", "invalidated"}
	outcomeNames = [...]string{"", "ok", "invalid_grant", "invalid_client", "temporary", "transport", "store", "hook", "panic", "other"}
)

func enumName(names []string, i uint8) string {
	if int(i) < len(names) {
		return names[i]
	}
	return "unknown"
}

// String returns the kind in snake case, such as "refresh_finished"; "" for the zero value.
func (k EventKind) String() string { return enumName(kindNames[:], uint8(k)) }

// String returns the trigger in lower case, such as "expired"; "" for the zero value.
func (t Trigger) String() string { return enumName(triggerNames[:], uint8(t)) }

// String returns the outcome in snake case, such as "invalid_grant"; "" for the zero value.
func (o Outcome) String() string { return enumName(outcomeNames[:], uint8(o)) }

// Event reports something a TokenSource, its Transport or its Store did. Which fields are set
// depends on Kind (see the EventKind constants); the others are zero. An Event holds no token
// material: Err is redacted as the errors the TokenSource returns are (the tokens it held,
// sent or obtained, and the client secret, are cut out; see the package documentation under
// Errors).
type Event struct {
	Kind     EventKind
	Key      string        // the grant's key given to WithStore; "" without a Store
	Trigger  Trigger       // why the flight started, or the token was dropped
	Outcome  Outcome       // the class of the flight's result, or of the failed persist
	Status   int           // an HTTP status: of the token endpoint's failure, or 401
	Duration time.Duration // of the flight, or of the wait for a lease
	Waiters  int           // callers that waited for the flight
	Failures int           // consecutive failed flights
	Attempt  int           // the try of a persist: 1, or 2 for its retry at once
	Until    time.Time     // the end of a backoff or of the bound on rejected tokens
	Method   AuthMethod    // the client authentication AuthAutoDetect switched to
	Err      error         // what failed, redacted
}

// WithEvents makes the TokenSource call fn with each Event of its flights, of Invalidate, of
// its Store and of a Transport using it. fn is called synchronously on the goroutine where
// the event happened (a flight's, Invalidate's, a Transport's), never while the TokenSource
// holds a lock, possibly from several goroutines at once; the events of a flight are
// delivered, in order, before the callers waiting for it get its result. fn must return
// quickly, be safe for concurrent use, and not call the TokenSource: a call made during a
// flight waits for the flight, which waits for fn. A panic in fn is recovered and ignored.
// Cached tokens are served as without fn: no event is fired on that path.
func WithEvents(fn func(Event)) Option {
	return func(c *config) { c.events = fn }
}

// FlightTracer traces the flights of a TokenSource: see WithTracer. The module
// github.com/tokenkit/oauth2refresh/otel has one for OpenTelemetry.
type FlightTracer interface {
	// Start is called first by each flight, on its goroutine, with the flight's context (see
	// TokenSource.TokenContext) and Trigger. The flight then runs with the values of the
	// context Start returns, not its cancellation (its token request, Store calls and
	// OnRefresh), and calls end, if not nil, with its EventRefreshFinished before its callers
	// get the result.
	Start(ctx context.Context, t Trigger) (_ context.Context, end func(Event))
	// Wait is called, on the caller's goroutine, when a call with ctx starts waiting for a
	// flight that another call started.
	Wait(ctx context.Context)
}

// WithTracer makes the TokenSource report its flights to t. A panic in t's methods or in end
// is recovered and ignored; if Start panics or returns a nil context, the flight runs with its
// own.
func WithTracer(t FlightTracer) Option {
	return func(c *config) { c.tracer = t }
}

// flightCtx carries the values of the call that started a flight over those of the
// TokenSource's ctx, and the latter's lack of cancellation.
type flightCtx struct {
	context.Context // the TokenSource's ctx
	caller          context.Context
}

func (c *flightCtx) Value(key any) any {
	if v := c.caller.Value(key); v != nil {
		return v
	}
	return c.Context.Value(key)
}

// flightContext returns the context flight f runs with, and sets f.end.
func (s *TokenSource) flightContext(f *flight) context.Context {
	var ctx context.Context = s.ctx
	switch f.caller {
	case nil, context.Background(), context.TODO(): // no values to add (Token)
	default:
		ctx = &flightCtx{Context: s.ctx, caller: f.caller}
	}
	if s.cfg.events != nil {
		ctx = context.WithValue(ctx, eventsKey{}, s.emit) // for what endpoint.go sees
	}
	if s.cfg.tracer != nil {
		s.call(func() {
			if c, end := s.cfg.tracer.Start(ctx, f.trigger); c != nil {
				ctx, f.end = context.WithoutCancel(c), end // a save must not be cut short
			}
		})
	}
	return ctx
}

// call calls fn, which runs a hook of the user's, recovering a panic.
func (s *TokenSource) call(fn func()) {
	defer func() { recover() }()
	fn()
}

// emit hands ev to the events hook, if any, with the grant's key.
func (s *TokenSource) emit(ev Event) {
	if s.cfg.events == nil {
		return
	}
	defer func() { recover() }()
	ev.Key = s.cfg.key
	s.cfg.events(ev)
}

// outcome returns the class of err, an unredacted error of a flight's obtain (a refresh, or a
// Store's), and the HTTP status of the answer it reports, if any.
func outcome(err error) (Outcome, int) {
	var re *RequestError
	var ue *UnexpectedResponseError
	var te *TransportError
	var se *storeError
	var de *DeadGrantError
	switch {
	case err == nil:
		return OutcomeOK, 0
	case errors.As(err, &de):
		if errors.As(de.Err, &re) {
			return OutcomeInvalidGrant, re.StatusCode
		}
		return OutcomeInvalidGrant, 0
	case errors.Is(err, ErrNoRefreshToken):
		return OutcomeOther, 0
	case errors.Is(err, ErrRefreshTokenExpired):
		return OutcomeInvalidGrant, 0
	case errors.As(err, &se):
		return OutcomeStore, 0
	case errors.As(err, &re):
		switch {
		case codeKinds[re.Code] == codeGrant:
			return OutcomeInvalidGrant, re.StatusCode
		case codeKinds[re.Code] == codeClient:
			return OutcomeInvalidClient, re.StatusCode
		case re.Temporary():
			return OutcomeTemporary, re.StatusCode
		}
		return OutcomeOther, re.StatusCode
	case errors.As(err, &ue):
		if ue.Temporary() {
			return OutcomeTemporary, ue.StatusCode
		}
		return OutcomeOther, ue.StatusCode
	case errors.As(err, &te):
		return OutcomeTransport, 0
	}
	return OutcomeOther, 0
}

// eventsKey is the context key under which a flight gives its token requests the function
// that reports their events (EventAuthSwitched, EventNonceRetry), when WithEvents is set.
type eventsKey struct{}

// report hands ev to the events function in ctx, if any.
func report(ctx context.Context, ev Event) {
	if emit, ok := ctx.Value(eventsKey{}).(func(Event)); ok {
		emit(ev)
	}
}

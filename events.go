package oauth2refresh

// events.go owns what the TokenSource, its Transport and WithStore report of what they do,
// for operators: the events.Event type, the WithEvents option, and the outcome class of a flight's
// error. No event carries token material. The events package defines the events and logs them.

import (
	"context"
	"errors"

	"github.com/tokenkit/oauth2refresh/events"
)

// WithEvents makes the TokenSource call fn with each events.Event of its refreshes, its Store,
// Invalidate and a Transport using it; none for a cached token. fn runs synchronously, without
// the TokenSource's locks, maybe on several goroutines at once; a refresh's events come in
// order before its callers get its result. fn must return quickly and not call the
// TokenSource. A panic in fn is ignored.
func WithEvents(fn func(events.Event)) Option {
	return func(c *config) { c.events = fn }
}

// WithTracer makes the TokenSource report its refreshes to t. A panic in t is ignored.
func WithTracer(t events.Tracer) Option {
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

// flightContext returns the context flight f runs with, and sets f.end. If the tracer's Start
// panics or returns a nil context, the flight runs with its own; a panic in end is recovered.
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

// emit hands ev to the events hook, if any, with the grant's key. It is never called while
// s.mu is held: a hook calling the TokenSource during a flight would wait for the flight,
// which waits for the hook.
func (s *TokenSource) emit(ev events.Event) {
	if s.cfg.events == nil {
		return
	}
	defer func() { recover() }()
	ev.Key = s.cfg.key
	s.cfg.events(ev)
}

// outcome returns the class of err, an unredacted error of a flight's obtain (a refresh, or a
// Store's), and the HTTP status of the answer it reports, if any.
func outcome(err error) (events.Outcome, int) {
	var re *RequestError
	var ue *UnexpectedResponseError
	var te *TransportError
	var se *storeError
	var de *DeadGrantError
	switch {
	case err == nil:
		return events.OutcomeOK, 0
	case errors.As(err, &de):
		if errors.As(de.Err, &re) {
			return events.OutcomeInvalidGrant, re.StatusCode
		}
		return events.OutcomeInvalidGrant, 0
	case errors.Is(err, ErrNoRefreshToken):
		return events.OutcomeOther, 0
	case errors.Is(err, ErrRefreshTokenExpired):
		return events.OutcomeInvalidGrant, 0
	case errors.As(err, &se):
		return events.OutcomeStore, 0
	case errors.As(err, &re):
		switch {
		case codeKinds[re.Code] == codeGrant:
			return events.OutcomeInvalidGrant, re.StatusCode
		case codeKinds[re.Code] == codeClient:
			return events.OutcomeInvalidClient, re.StatusCode
		case re.temporary():
			return events.OutcomeTemporary, re.StatusCode
		}
		return events.OutcomeOther, re.StatusCode
	case errors.As(err, &ue):
		if ue.temporary() {
			return events.OutcomeTemporary, ue.StatusCode
		}
		return events.OutcomeOther, ue.StatusCode
	case errors.As(err, &te):
		return events.OutcomeTransport, 0
	}
	return events.OutcomeOther, 0
}

// eventsKey is the context key under which a flight gives its token requests the function
// that reports their events (events.AuthSwitched, events.NonceRetry), when WithEvents is set.
type eventsKey struct{}

// report hands ev to the events function in ctx, if any.
func report(ctx context.Context, ev events.Event) {
	if emit, ok := ctx.Value(eventsKey{}).(func(events.Event)); ok {
		emit(ev)
	}
}

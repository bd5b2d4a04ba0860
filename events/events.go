// Package events describes what an oauth2refresh TokenSource, its Transport and its Store
// do, for operators: the Event that oauth2refresh.WithEvents hands to a function, Log, which
// writes events to log/slog, and Tracer, which oauth2refresh.WithTracer reports flights to.
// The module github.com/tokenkit/oauth2refresh/otel turns both into OpenTelemetry metrics
// and spans.
//
// A flight is the one piece of work a TokenSource runs for all its callers when its token
// must be replaced: a refresh at the token endpoint, or taking the token another process saved
// to the Store (a pickup), or saving a token whose save failed before.
//
// No Event holds token material: Err is redacted as the errors of oauth2refresh are.
package events

import (
	"context"
	"time"
)

// Kind says what an Event reports.
type Kind uint8

// The kinds of Event, and the fields each sets besides Kind and Key.
const (
	// RefreshStarted: a flight started (see TokenSource: a refresh, a pickup from the
	// Store, or the persist of a token whose persist failed). Trigger; Failures, the
	// consecutive failed flights before it.
	RefreshStarted Kind = iota + 1
	// RefreshFinished: the flight ended. Trigger; Outcome (OutcomePickedUp, not OutcomeOK,
	// when it took the token another process saved: no refresh was made); Status, the HTTP status of
	// the token endpoint's answer when the flight failed on one; Duration, the flight's;
	// Waiters, the callers that waited for it (those that gave up too); Failures, consecutive failed flights counting
	// this one (0 when it succeeded); Err when it failed.
	RefreshFinished
	// BackoffStarted: after a failed flight, no new attempt is made until Until (see
	// TokenSource.TokenContext). Outcome and Status of the failure; Failures; Until.
	BackoffStarted
	// BackoffEnded: a flight succeeded after Failures failed ones.
	BackoffEnded
	// PersistFailed: a save to the Store (Outcome OutcomeStore) or OnNewToken (Outcome
	// OutcomeHook) failed; Attempt is 1, or 2 for the retry a new token gets at once (see
	// OnNewToken); Err.
	PersistFailed
	// StorePickup: a flight took the token another process saved to the Store instead
	// of refreshing (see WithStore).
	StorePickup
	// LeaseTaken: a flight took the grant's lease (Store.Lock); Duration, the wait.
	LeaseTaken
	// LeaseLost: a save under the lease failed with ErrLeaseLost (see WithStore for what
	// follows). Err.
	LeaseLost
	// UnauthorizedRetry: a Transport got a 401 (Status) and retries the request with a
	// new token.
	UnauthorizedRetry
	// TokenDropped: Invalidate dropped the token served; Trigger is TriggerRejected
	// (Invalidate with the token, a 401) or TriggerInvalidated (Invalidate(nil)).
	TokenDropped
	// DropIgnored: Invalidate kept a rejected token, by its bound on refreshes forced
	// by 401s; Until, when a rejected token is next dropped.
	DropIgnored
	// Waited: a call waited for a flight (the one it ran itself included), which it
	// reports after the flight's events; Duration, until it got the result or gave up.
	Waited
	// AuthSwitched: AuthAutoDetect found that the token endpoint now accepts the client's
	// credentials only the other way, and switched to Method for this and later requests.
	AuthSwitched
	// NonceRetry: a DPoP nonce challenge (RFC 9449 §8, §9) from the token endpoint
	// (Status 400) or a resource server (Status 401): the request is sent once more with the
	// server's new nonce.
	NonceRetry
	// GrantDead: a flight found the grant dead (see DeadGrantError), and sent nothing
	// more: the server refused its refresh token, which is known expired (the flight then
	// marked the grant dead in the Store), or the Store holds the mark. Outcome is
	// OutcomeInvalidGrant; Status, that of the server's refusal, if any; Err, the
	// *DeadGrantError, whose Err is nil when the Store said so.
	GrantDead
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
// GitHub's incorrect_client_credentials), OutcomeTemporary when oauth2refresh.IsTemporary
// says so, OutcomeOther otherwise. ErrRefreshTokenExpired counts as OutcomeInvalidGrant.
const (
	OutcomeOK            Outcome = iota + 1
	OutcomeInvalidGrant          // the server refused the grant, or its refresh token expired
	OutcomeInvalidClient         // the server refused the client's authentication
	OutcomeTemporary             // an answer that may change later: HTTP 429, 5xx, temporarily_unavailable
	OutcomeTransport             // no answer: a *TransportError
	OutcomeStore                 // the Store of WithStore failed
	OutcomeHook                  // OnNewToken failed
	OutcomePanic                 // OnNewToken or the Store panicked
	OutcomeOther                 // anything else: an unexpected answer, ErrNoRefreshToken, ...
	OutcomePickedUp              // no refresh: the flight took the token another process saved to the Store
)

var (
	kindNames = [...]string{"", "refresh_started", "refresh_finished", "backoff_started", "backoff_ended",
		"persist_failed", "store_pickup", "lease_taken", "lease_lost", "unauthorized_retry", "token_dropped",
		"drop_ignored", "waited", "auth_switched", "nonce_retry", "grant_dead"}
	triggerNames = [...]string{"", "first", "expired", "early", "rejected", "invalidated"}
	outcomeNames = [...]string{"", "ok", "invalid_grant", "invalid_client", "temporary", "transport", "store", "hook", "panic", "other", "picked_up"}
)

func enumName(names []string, i uint8) string {
	if int(i) < len(names) {
		return names[i]
	}
	return "unknown"
}

// String returns the kind in snake case, such as "refresh_finished"; "" for the zero value.
func (k Kind) String() string { return enumName(kindNames[:], uint8(k)) }

// String returns the trigger in lower case, such as "expired"; "" for the zero value.
func (t Trigger) String() string { return enumName(triggerNames[:], uint8(t)) }

// String returns the outcome in snake case, such as "invalid_grant"; "" for the zero value.
func (o Outcome) String() string { return enumName(outcomeNames[:], uint8(o)) }

// Event reports something a TokenSource, its Transport or its Store did. Which fields are set
// depends on Kind (see the Kind constants); the others are zero. An Event holds no token
// material: Err is redacted as the errors the TokenSource returns are (the tokens it held,
// sent or obtained, and the client secret, are cut out; see the package documentation under
// Errors).
type Event struct {
	Kind     Kind
	Key      string        // the grant's key given to WithStore; "" without a Store
	Trigger  Trigger       // why the flight started, or the token was dropped
	Outcome  Outcome       // the class of the flight's result, or of the failed persist
	Status   int           // an HTTP status: of the token endpoint's failure, or 401
	Duration time.Duration // of the flight, or of the wait for a lease
	Waiters  int           // callers that waited for the flight
	Failures int           // consecutive failed flights
	Attempt  int           // the try of a persist: 1, or 2 for its retry at once
	Until    time.Time     // the end of a backoff or of the bound on rejected tokens
	Method   string        // the client authentication AuthAutoDetect switched to, as AuthMethod.String names it
	Err      error         // what failed, redacted
}

// Tracer traces the flights of a TokenSource: see oauth2refresh.WithTracer. The module
// github.com/tokenkit/oauth2refresh/otel has one for OpenTelemetry.
type Tracer interface {
	// Start is called first by each flight, on its goroutine, with the flight's context (see
	// TokenSource.TokenContext) and Trigger. The flight then runs with the values of the
	// context Start returns, not its cancellation (its token request, Store calls and
	// OnNewToken), and calls end, if not nil, with its RefreshFinished before its callers
	// get the result.
	Start(ctx context.Context, t Trigger) (_ context.Context, end func(Event))
	// Wait is called, on the caller's goroutine, when a call with ctx starts waiting for a
	// flight that another call started.
	Wait(ctx context.Context)
}

package oauth2refresh

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokenkit/oauth2refresh/events"
	"github.com/tokenkit/oauth2refresh/internal/marks"
	"github.com/tokenkit/oauth2refresh/internal/quote"

	"golang.org/x/oauth2"
)

// Store keeps the current token of each grant, by key, and a lease per grant so that the
// processes sharing it take turns refreshing it (see WithStore). It must be safe for use by
// any number of goroutines and processes. Implementations: filestore.Store, and the modules
// store/redisstore and store/pgstore; store.Seal encrypts any Store; store/storetest checks
// one, including that a key that never held a token leaves nothing behind (keys may be an
// attacker's). A Store also keeps dead marks (see DeadGrantError) as tokens whose Extra
// values say why the grant died.
type Store interface {
	// Load returns the token stored under key, or nil and no error when there is none. It
	// takes no lease.
	Load(ctx context.Context, key string) (*oauth2.Token, error)

	// Lock waits until it holds key's lease, or until ctx is done. While it is held no other
	// Lock on key succeeds; it lapses after ttl (or when its holder dies, for a store that can
	// tell). A stored value that cannot be decoded is a *store.CorruptTokenError, and no lease
	// is held then.
	Lock(ctx context.Context, key string, ttl time.Duration) (Lease, error)

	// Delete removes key's stored token (or dead mark), as Manager's Grant.Delete needs, and
	// returns no error when there is none: Load then returns nil, and Lock a lease whose
	// Token is nil. It does not wait for a lease on the grant: one held meanwhile loses it,
	// its Save failing with ErrLeaseLost and storing nothing, so that its holder does not
	// save the grant back (a WithStore TokenSource reports the grant deleted instead). It
	// removes all the store keeps for key (lock file, fencing number, row), at once or, for
	// what a lease held meanwhile still uses, when that lease is released; a store that
	// removes its fencing number must not hand out the numbers of earlier leases again.
	Delete(ctx context.Context, key string) error
}

// Lease is a held lease on one grant of a Store, from Store.Lock. It is used by one goroutine.
type Lease interface {
	// Token returns the token stored when the lease was granted, or nil.
	Token() *oauth2.Token

	// Save stores t, Extra values included, as the grant's token. If another lease on the
	// grant was granted since this one, it stores nothing and returns an error wrapping
	// ErrLeaseLost. It may be called again after it failed or the lease lapsed.
	Save(ctx context.Context, t *oauth2.Token) error

	// Release gives the lease up. It may be called more than once, and after it lapsed.
	Release(ctx context.Context) error
}

// ErrLeaseLost is wrapped by Lease.Save's error when another lease was granted since: nothing
// was stored.
var ErrLeaseLost = errors.New("oauth2refresh: store lease lost")

// quoteKey quotes a grant key for an error message, shortened if long.
func quoteKey(key string) string { return quote.Key(key) }

// storeErr is the error of a store operation on key's grant: what is "loading", "saving", ...
func storeErr(what, key string, err error) error {
	return &storeError{fmt.Errorf("oauth2refresh: token store: %s grant %s: %w", what, quoteKey(key), err)}
}

// storeError marks an error of the Store, for its events.Outcome (see events.go).
type storeError struct{ err error }

func (e *storeError) Error() string { return e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// SaveToken stores t as the current token of key's grant in s, under the grant's lease: to
// seed a store after the authorization code exchange, or to revive a dead grant authorized
// again. Its errors never contain t's tokens nor those stored.
func SaveToken(ctx context.Context, s Store, key string, t *oauth2.Token) error {
	_, ttl := (&TokenSource{}).leaseTimes()
	l, err := s.Lock(ctx, key, ttl)
	if err != nil {
		return redactError(storeErr("locking", key, err), tokenSecrets(t)...)
	}
	defer l.Release(context.WithoutCancel(ctx))
	if err := l.Save(ctx, t); err != nil {
		return redactError(storeErr("saving", key, err), tokenSecrets(t, l.Token())...)
	}
	return nil
}

// WithStore makes the TokenSource share key's grant with every TokenSource, in this process or
// another, that uses the same Store and key: one refresh for all of them, so that a rotating
// server never sees a refresh token twice. Tokens are still served from memory; a refresh
// loads the stored token, uses it if another process refreshed, and otherwise refreshes under
// the grant's lease from the stored refresh token (the given token's only while none is
// stored; seed a grant with SaveToken) and saves the result. A key with no refresh token takes
// no lease: the error wraps ErrNoRefreshToken.
//
// A failed save is retried as a failed OnNewToken is, under the lease, held until the token is
// saved; the token is not handed out meanwhile. A refresh token refused (invalid_grant) or
// expired is marked dead in the store: the error is a *DeadGrantError, for every process. The
// last WithStore applied wins. See docs/SHARING.md for the steps and failure cases.
func WithStore(s Store, key string) Option {
	return func(c *config) { c.store, c.key = s, key }
}

// leaseTimes returns how long one token request may take, and the ttl of a lease: 1.5 times
// the Endpoint's Timeout (30 s when not positive), so that the token request ends by
// the Timeout and the first save by the lease's end. lock waits at most twice the ttl.
func (s *TokenSource) leaseTimes() (timeout, ttl time.Duration) {
	timeout = defaultTimeout
	if s.e != nil && s.e.Timeout > 0 {
		timeout = s.e.Timeout
	}
	return timeout, timeout + timeout/2
}

// obtainShared is obtain with a store: the steps of docs/SHARING.md ("A refresh with
// WithStore") but the save. Load first: a newer servable stored token is picked up without a
// lease. With no refresh token stored nor held, fail without a lease, so that a key that
// never held a token (one an attacker chose) leaves nothing in the store. Otherwise take the
// lease, look again, and refresh from the stored refresh token (the held one when none is
// stored); a grant the source saw in the store and now missing was deleted: it stays so.
func (s *TokenSource) obtainShared(ctx context.Context, cur *oauth2.Token) (*pending, error) {
	timeout, ttl := s.leaseTimes()
	lctx, cancel := context.WithTimeout(ctx, timeout)
	stored, err := s.cfg.store.Load(lctx, s.cfg.key)
	cancel()
	if err != nil {
		return nil, storeErr("loading", s.cfg.key, err)
	}
	if stored != nil {
		s.seen.Store(true)
	}
	if d := deadOf(s.cfg.key, stored); d != nil {
		return nil, s.foundDead(d)
	}
	if err := s.e.checkBinding(s.cfg.key, stored); err != nil {
		return nil, err
	}
	if s.fresher(stored, cur) {
		s.emit(events.Event{Kind: events.StorePickup})
		return &pending{tok: stored, picked: true}, nil
	}
	if (stored == nil || stored.RefreshToken == "") && (cur == nil || cur.RefreshToken == "") {
		// Nothing to refresh: no lease is taken, so that a key that never held a token (one
		// an attacker chose) leaves nothing in the store. A token saved meanwhile is picked
		// up by the next flight's Load.
		if stored == nil && s.seen.Load() {
			return nil, storeErr("refreshing", s.cfg.key, errGrantDeleted)
		}
		return nil, storeErr("no refresh token stored for", s.cfg.key, ErrNoRefreshToken)
	}
	lease, end, err := s.lock(ctx, ttl)
	if err != nil {
		return nil, err
	}
	stored = lease.Token()
	switch {
	case stored != nil:
		s.seen.Store(true)
	case s.seen.Load():
		// Deleted since this source saw it: it stays deleted.
		s.release(ctx, lease)
		return nil, storeErr("refreshing", s.cfg.key, errGrantDeleted)
	}
	if d := deadOf(s.cfg.key, stored); d != nil {
		s.release(ctx, lease)
		return nil, s.foundDead(d)
	}
	if err := s.e.checkBinding(s.cfg.key, stored); err != nil {
		s.release(ctx, lease)
		return nil, err
	}
	from := cur
	if stored != nil && stored.RefreshToken != "" {
		from = stored
	}
	switch {
	case s.fresher(stored, cur):
		s.release(ctx, lease)
		s.emit(events.Event{Kind: events.StorePickup})
		return &pending{tok: stored, picked: true}, nil
	case from == nil || from.RefreshToken == "":
		s.release(ctx, lease)
		return nil, storeErr("no refresh token stored for", s.cfg.key, ErrNoRefreshToken)
	}
	if err := s.refreshable(from); err != nil {
		return nil, s.markDead(ctx, lease, end, reasonRefreshTokenExpired, err)
	}
	rctx, cancel := context.WithDeadline(ctx, end.Add(-timeout/2))
	t, _, err := s.g.fetch(rctx, s, from)
	cancel()
	if err != nil {
		if reason := deadReason(err); reason != "" {
			return nil, s.markDead(ctx, lease, end, reason, err)
		}
		s.release(ctx, lease)
		return nil, err
	}
	return &pending{tok: t, from: from.RefreshToken, save: true, lease: lease, end: end, stored: stored != nil}, nil
}

// deadReason returns the reason of a dead grant when err, the error of a refresh, shows the
// grant dead, else "": the refresh token known to be expired, or refused by the server with
// invalid_grant (or GitHub's bad_refresh_token). Not invalid_scope, which the Endpoint's
// Scopes may have caused, nor any other refusal; nor, with AuthAutoDetect, an answer after
// both client authentications failed: which one the server would take is then unknown.
func deadReason(err error) string {
	var ad *autoDetectError
	var re *RequestError
	switch {
	case errors.Is(err, ErrRefreshTokenExpired):
		return reasonRefreshTokenExpired
	case errors.As(err, &ad):
		return ""
	case errors.As(err, &re) && re.Is(ErrInvalidGrant): // GitHub's bad_refresh_token too
		return reasonInvalidGrant
	}
	return ""
}

// markDead saves the dead mark of reason under lease, which lapses at end, releases it, and
// returns the *DeadGrantError of the grant, found dead by this process with err. Should the
// save fail, the grant is still reported dead here (the server said so); the failure is an
// events.PersistFailed, and the next flight, finding no mark, asks the server again.
func (s *TokenSource) markDead(ctx context.Context, lease Lease, end time.Time, reason string, err error) error {
	d := &DeadGrantError{Key: s.cfg.key, reason: reason, At: s.cfg.now().Round(0), Err: err}
	timeout, _ := s.leaseTimes()
	deadline := time.Now().Add(timeout)
	if end.Before(deadline) {
		deadline = end
	}
	sctx, cancel := context.WithDeadline(ctx, deadline)
	serr := lease.Save(sctx, deadToken(d.reason, d.At))
	cancel()
	s.release(ctx, lease)
	if serr != nil && s.cfg.events != nil {
		s.emit(events.Event{Kind: events.PersistFailed, Outcome: events.OutcomeStore, Attempt: 1,
			Err: s.redact(storeErr("marking dead", s.cfg.key, serr), nil, lease.Token())})
	}
	return s.foundDead(d)
}

// foundDead reports d, the grant found dead, as an events.GrantDead, and returns it.
func (s *TokenSource) foundDead(d *DeadGrantError) error {
	if s.cfg.events != nil {
		_, status := outcome(d)
		s.emit(events.Event{Kind: events.GrantDead, Outcome: events.OutcomeInvalidGrant, Status: status, Err: s.redact(d, nil, nil)})
	}
	return d
}

// errGrantDeleted says that the grant was deleted from the store (see Store.Delete) after the
// TokenSource saw it there, or while a flight held a token to save.
var errGrantDeleted = errors.New("deleted from the store: not refreshed nor saved back")

// save saves p's token to the store under p's lease, or, when it was lost, under a new one if
// nobody moved the grant on from p.from, and releases the lease. It is not canceled with any
// caller's ctx: a caller giving up must not drop a rotated refresh token. The lease is kept
// across failed saves (see pending.lease), so that no other process takes the grant and sends
// the refresh token p.from, already spent. A token is never saved over a dead mark, nor after
// the grant was deleted; it is then not served either. One risk no Store removes: a lease
// with a ttl lapses if the store stays unreachable (or the process paused) for longer, and
// another process may then send the spent refresh token.
func (s *TokenSource) save(ctx context.Context, p *pending) error {
	timeout, ttl := s.leaseTimes()
	for relocked := false; ; relocked = true {
		if p.lease == nil {
			l, end, err := s.lock(ctx, ttl)
			if err != nil {
				return err
			}
			p.lease, p.end = l, end
			switch st := l.Token(); {
			case deadOf(s.cfg.key, st) != nil:
				// Marked dead meanwhile (by another process's refused refresh, or revoked):
				// the mark stays. p stays pending, and is dropped if the grant is seeded anew.
				s.release(ctx, l)
				p.lease = nil
				return s.foundDead(deadOf(s.cfg.key, st))
			case st == nil && p.stored:
				// Deleted meanwhile: it stays deleted.
				s.release(ctx, l)
				p.lease = nil
				return storeErr("saving", s.cfg.key, errGrantDeleted)
			case st != nil && st.AccessToken == p.tok.AccessToken && st.RefreshToken == p.tok.RefreshToken:
				// A save that reported failure was applied after all.
				p.save = false
			case st != nil && st.RefreshToken != p.from:
				// Another process refreshed from p.tok, or the grant was seeded anew: the
				// store is the truth, and p.tok is stale.
				p.tok, p.from, p.save, p.picked = st, "", false, true
				s.emit(events.Event{Kind: events.StorePickup})
			}
			if !p.save {
				s.release(ctx, p.lease)
				p.lease = nil
				return nil
			}
		}
		// The first save ends with the lease; a retry after it relies on ErrLeaseLost.
		deadline := time.Now().Add(timeout)
		if p.end.After(time.Now()) && p.end.Before(deadline) {
			deadline = p.end
		}
		sctx, cancel := context.WithDeadline(ctx, deadline)
		err := p.lease.Save(sctx, p.tok)
		cancel()
		if err == nil || errors.Is(err, ErrLeaseLost) {
			s.release(ctx, p.lease)
			p.lease = nil
		}
		if errors.Is(err, ErrLeaseLost) && s.cfg.events != nil {
			s.emit(events.Event{Kind: events.LeaseLost, Err: s.redact(storeErr("saving", s.cfg.key, err), p, nil)})
		}
		if err == nil {
			p.save = false
			s.seen.Store(true)
			return nil
		}
		if !errors.Is(err, ErrLeaseLost) || relocked {
			return storeErr("saving", s.cfg.key, err)
		}
	}
}

// lock takes the grant's lease, returning it with the time it lapses.
func (s *TokenSource) lock(ctx context.Context, ttl time.Duration) (Lease, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*ttl)
	defer cancel()
	start := time.Now()
	l, err := s.cfg.store.Lock(ctx, s.cfg.key, ttl)
	if err != nil {
		return nil, time.Time{}, storeErr("locking", s.cfg.key, err)
	}
	now := time.Now()
	s.emit(events.Event{Kind: events.LeaseTaken, Duration: now.Sub(start)})
	return l, now.Add(ttl), nil
}

// release gives l up, within the Timeout.
func (s *TokenSource) release(ctx context.Context, l Lease) {
	timeout, _ := s.leaseTimes()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	l.Release(ctx)
}

// fresher reports whether stored is a token that another process obtained after cur, and
// servable: then it is used instead of refreshing.
func (s *TokenSource) fresher(stored, cur *oauth2.Token) bool {
	switch {
	case !s.cfg.servable(stored, s.cfg.now()):
		return false
	case cur == nil || cur.AccessToken == "":
		return true
	case stored.AccessToken == cur.AccessToken:
		return false
	}
	// A token without expiry is newer when it is different; otherwise it must expire later.
	return stored.Expiry.IsZero() || cur.Expiry.IsZero() || stored.Expiry.After(cur.Expiry)
}

// ErrGrantRevoked is matched by the *DeadGrantError of a grant revoked by Grant.Revoke.
var ErrGrantRevoked = errors.New("oauth2refresh: grant revoked")

// The reasons of a DeadGrantError, as its Error text and the stored dead mark name them.
const (
	reasonInvalidGrant        = "invalid_grant"         // the server refused the refresh token
	reasonRefreshTokenExpired = "refresh_token_expired" // it expired (see RefreshTokenExpiry)
	reasonRevoked             = "revoked"               // Grant.Revoke revoked the grant
)

// DeadGrantError reports a dead grant: its refresh token was refused or expired, or it was
// revoked. The Store keeps the mark, so every process sharing the grant gets this error
// without a request, until SaveToken or Grant.SaveToken revives it. errors.Is(err,
// ErrInvalidGrant) holds; ErrRefreshTokenExpired and ErrGrantRevoked say why.
type DeadGrantError struct {
	Key string // the grant's key
	// reason is reasonInvalidGrant, reasonRefreshTokenExpired or reasonRevoked (or, from a
	// Store written by a later version, another reason; "" in one made by a caller).
	reason string
	At     time.Time // when it was found dead (see WithClock); zero if unknown
	// Err is the server's refusal or the ErrRefreshTokenExpired error that this process got;
	// nil when the Store held the mark.
	Err error
}

func (e *DeadGrantError) Error() string {
	s := "oauth2refresh: grant " + quoteKey(e.Key) + " is dead"
	why := e.reason
	if !e.At.IsZero() {
		if why != "" {
			why += " "
		}
		why += "at " + formatTime(e.At)
	}
	if why != "" {
		s += " (" + why + ")"
	}
	s += ": it must be authorized again"
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns e.Err.
func (e *DeadGrantError) Unwrap() error { return e.Err }

// Is reports whether target is ErrInvalidGrant, or the sentinel of why the grant died.
func (e *DeadGrantError) Is(target error) bool {
	switch target {
	case ErrInvalidGrant:
		return true
	case ErrRefreshTokenExpired:
		return e.reason == reasonRefreshTokenExpired
	case ErrGrantRevoked:
		return e.reason == reasonRevoked
	}
	return false
}

// deadToken returns the token that marks a grant dead for reason since at (see
// marks.DeadToken).
var deadToken = marks.DeadToken

// deadOf returns the DeadGrantError of key's grant if t marks it dead, else nil.
func deadOf(key string, t *oauth2.Token) *DeadGrantError {
	if m := marks.DeadOf(t); m != nil {
		return &DeadGrantError{Key: key, reason: m.Reason, At: m.At}
	}
	return nil
}

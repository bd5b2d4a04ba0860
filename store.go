package oauth2refresh

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// Store keeps the current token of OAuth grants, one token under each key, and lets processes
// that share a grant take turns refreshing it. It is what WithStore needs for "refresh once,
// everyone picks up the result" to hold across processes: with a rotating authorization
// server, two processes that each refresh on their own send one refresh token twice, and the
// server revokes the grant.
//
// Implementations in this repository: FileStore (processes on one machine), and the modules
// github.com/tokenkit/oauth2refresh/store/redis and .../store/postgres.
//
// A Store must be safe for use by any number of goroutines and processes.
type Store interface {
	// Load returns the token stored under key, or nil and no error when there is none. It
	// takes no lease: it is how a process picks up a token another one refreshed.
	Load(ctx context.Context, key string) (*oauth2.Token, error)

	// Lock waits until it holds the lease on key's grant, or until ctx is done. While the
	// lease is held no other Lock on key succeeds. The lease lapses on its own ttl after it
	// was granted (or when its holder dies, for a store that can tell), so a crashed holder
	// never blocks the grant for longer than that.
	//
	// The Lease returned carries the token stored when it was granted. A stored value that
	// cannot be decoded is a *CorruptTokenError, and no lease is held then.
	Lock(ctx context.Context, key string, ttl time.Duration) (Lease, error)
}

// Lease is a held lease on one grant of a Store, from Store.Lock. It is used by one goroutine.
type Lease interface {
	// Token returns the token that was stored when the lease was granted, or nil if none.
	Token() *oauth2.Token

	// Save stores t as the grant's current token (its Extra values are not kept). It fails
	// with an error wrapping ErrLeaseLost, and changes nothing, when another lease on the
	// grant has been granted since this one: a slow holder whose lease lapsed never
	// overwrites a newer token. Save may be called more than once under one lease.
	Save(ctx context.Context, t *oauth2.Token) error

	// Release gives the lease up. It is safe to call more than once, and after the lease
	// lapsed.
	Release(ctx context.Context) error
}

// ErrLeaseLost is returned (wrapped) by Lease.Save when the lease lapsed and another was
// granted since: what the holder would have saved is not stored.
var ErrLeaseLost = errors.New("oauth2refresh: store lease lost")

// CorruptTokenError reports a stored token that cannot be decoded: a truncated file, a value
// written by something else. The store leaves it as it is, for a person to look at; it is not
// overwritten, and the grant cannot be refreshed through the store until it is repaired or
// removed (then a TokenSource given a token of its own saves that one).
type CorruptTokenError struct {
	// Key is the grant's key.
	Key string
	// Location says where the value is, such as the file's path.
	Location string
	// Err says what is wrong with it. It never quotes the value, which may hold secrets.
	Err error
}

func (e *CorruptTokenError) Error() string {
	s := "oauth2refresh: stored token for key " + quoteKey(e.Key) + " is corrupt"
	if e.Location != "" {
		s += " (" + e.Location + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns e.Err.
func (e *CorruptTokenError) Unwrap() error { return e.Err }

// quoteKey quotes a grant key for an error message, shortened if long.
func quoteKey(key string) string { return fmt.Sprintf("%q", truncate(key, 100)) }

// SaveToken stores t as the current token of key's grant in s, under a lease: the way to seed
// a store with the token of a new grant, after the authorization code exchange. ttl bounds the
// lease, as for Store.Lock.
func SaveToken(ctx context.Context, s Store, key string, t *oauth2.Token, ttl time.Duration) error {
	l, err := s.Lock(ctx, key, ttl)
	if err != nil {
		return fmt.Errorf("oauth2refresh: token store: locking grant %s: %w", quoteKey(key), err)
	}
	defer l.Release(context.WithoutCancel(ctx))
	if err := l.Save(ctx, t); err != nil {
		return fmt.Errorf("oauth2refresh: token store: saving grant %s: %w", quoteKey(key), err)
	}
	return nil
}

// WithStore makes the TokenSource share key's grant with every other TokenSource, in this
// process or another one, that uses the same Store and key. Tokens it holds are still served
// from memory, without I/O or locks. A refresh instead goes:
//
//  1. Load the stored token. If it is newer than the one held (another process refreshed) and
//     still valid, use it: no token request is sent.
//  2. Otherwise take the grant's lease with Store.Lock and look at the stored token again; use
//     it if another process refreshed meanwhile.
//  3. Otherwise refresh with the stored refresh token (the newest one; the token the
//     TokenSource was given when nothing is stored yet), save the result, release the lease.
//
// The lease lasts for the Endpoint's Timeout (DefaultTimeout when zero or negative) and half as
// long again. The token request is bounded by the Timeout and the save of its result by the
// lease's end, so neither outlives the lease that covers it; a process that dies holding the
// lease delays the others by at most that long. Waiting for a lease is bounded by twice the
// lease's length.
//
// If the lease lapses before the refreshed token is saved (the store took longer than half
// the Timeout to save it, or the process was paused), another process may take the grant and
// send the refresh token this one already spent: a rotating server then sees it twice and may
// revoke the grant. No Store can prevent that, as the new holder cannot know of a token that
// was never saved; the bound on the request, which leaves half the Timeout for the save, makes
// it unlikely. This process keeps the token it got: it serves it when the store says another
// lease was granted (ErrLeaseLost), and otherwise treats it as any token it could not save.
//
// Once the store holds a token for key, it is the truth: its refresh token is the one sent,
// whatever token the TokenSource was given (seed a new grant with SaveToken). OnRefresh, if
// set, is also called with tokens picked up from the store.
//
// A TokenSource made with a nil token loads its first token from the store. If a refreshed
// token cannot be saved, the refresh fails with an error saying so, and the next one tries to
// save that same token again instead of refreshing: a rotated refresh token is never lost.
// If the store is unreachable, callers keep getting the token held in memory until it
// expires, and then errors wrapping the store's.
func WithStore(s Store, key string) Option {
	return func(c *config) {
		sh := &shared{store: s, key: key, endpoint: c.endpoint, cfg: c, next: c.refresh}
		c.refresh = sh.refresh
	}
}

// shared is the refresh function installed by WithStore.
type shared struct {
	store    Store
	key      string
	endpoint *Endpoint
	cfg      *config // for margin and now; read-only once the TokenSource is built
	// next is the refresh function WithStore replaced: it sends the token request.
	next func(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error)

	// mu guards unsaved. The TokenSource never runs two refreshes at once; mu makes that
	// visible to the race detector and keeps shared correct without it.
	mu sync.Mutex
	// unsaved is a token this process refreshed but could not save: it holds the newest
	// refresh token of the grant, which must be saved (or used) before anything else.
	unsaved *oauth2.Token
	// unsavedFrom is the refresh token unsaved was refreshed from (spent). Guarded by mu.
	unsavedFrom string
}

// requestTimeout is how long one token request may take.
func (sh *shared) requestTimeout() time.Duration {
	d := DefaultTimeout
	if sh.endpoint != nil && sh.endpoint.Timeout > 0 {
		d = sh.endpoint.Timeout
	}
	return d
}

func (sh *shared) refresh(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	timeout := sh.requestTimeout()
	ttl := timeout + timeout/2

	if sh.unsaved == nil {
		// Lock-free first look: another process may have refreshed already.
		lctx, cancel := context.WithTimeout(ctx, timeout)
		stored, err := sh.store.Load(lctx, sh.key)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("oauth2refresh: token store: loading grant %s: %w", quoteKey(sh.key), err)
		}
		if sh.fresher(stored, cur) {
			return stored, nil
		}
	}

	lctx, cancel := context.WithTimeout(ctx, 2*ttl)
	lease, err := sh.store.Lock(lctx, sh.key, ttl)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("oauth2refresh: token store: locking grant %s: %w", quoteKey(sh.key), err)
	}
	leaseEnd := time.Now().Add(ttl)
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		lease.Release(rctx)
		cancel()
	}()
	stored := lease.Token()

	if sh.unsaved != nil {
		tok := sh.unsaved
		switch {
		case stored != nil && stored.AccessToken == tok.AccessToken && stored.RefreshToken == tok.RefreshToken:
			// The save that reported failure was applied after all.
			sh.unsaved = nil
		case stored == nil || stored.RefreshToken == sh.unsavedFrom:
			// Nobody moved the grant on from the refresh token we spent: ours is the newest.
			if err := sh.save(ctx, lease, tok, timeout, leaseEnd); err != nil {
				return nil, err
			}
			sh.unsaved = nil
			stored = tok
		default:
			// Another process refreshed from our token, or the grant was seeded anew: the
			// store is the truth, ours is stale.
			sh.unsaved = nil
		}
		if stored != nil && sh.valid(stored) && (cur == nil || stored.AccessToken != cur.AccessToken) {
			return stored, nil
		}
		if stored != nil {
			cur = stored
		}
	} else if sh.fresher(stored, cur) {
		return stored, nil
	}

	from := cur
	if stored != nil && stored.RefreshToken != "" {
		from = stored
	}
	if from == nil || from.RefreshToken == "" {
		return nil, fmt.Errorf("oauth2refresh: token store: no refresh token stored for grant %s: %w", quoteKey(sh.key), ErrNoRefreshToken)
	}
	// The request ends before the lease does: the lease lasts half as long again.
	rctx, cancel := context.WithDeadline(ctx, leaseEnd.Add(-timeout/2))
	tok, err := sh.next(rctx, &oauth2.Token{RefreshToken: from.RefreshToken})
	cancel()
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, errors.New("oauth2refresh: token store: refresh returned no token")
	}
	if tok.RefreshToken == "" {
		t := *tok
		t.RefreshToken = from.RefreshToken
		tok = &t
	}
	if err := sh.save(ctx, lease, tok, timeout, leaseEnd); err != nil {
		if errors.Is(err, ErrLeaseLost) {
			// Our lease lapsed before the save and another process took the grant. It
			// read the stored refresh token, the one we just spent, and is about to send
			// it: a rotating server will see it twice and may revoke the grant, this
			// token included. No store can prevent that (nothing stored tells the new
			// holder of a token that was never saved); ending the request with half the
			// Timeout of the lease left for the save makes it unlikely. Our token is not
			// saved over the new holder's, whose result wins; it is still served here
			// until it expires, or until the server revokes it.
			sh.unsaved, sh.unsavedFrom = tok, from.RefreshToken
			return tok, nil
		}
		sh.unsaved, sh.unsavedFrom = tok, from.RefreshToken
		return nil, err
	}
	return tok, nil
}

// save saves tok under lease. It is bounded by timeout and by leaseEnd, so that nothing done
// under the lease outlives it: a save that cannot finish by then fails, and refresh keeps the
// token to save it under the next lease. It is not canceled with ctx: a caller giving up must
// not drop a rotated refresh token.
func (sh *shared) save(ctx context.Context, lease Lease, tok *oauth2.Token, timeout time.Duration, leaseEnd time.Time) error {
	deadline := time.Now().Add(timeout)
	if leaseEnd.Before(deadline) {
		deadline = leaseEnd
	}
	sctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	if err := lease.Save(sctx, tok); err != nil {
		return fmt.Errorf("oauth2refresh: token store: saving grant %s: %w", quoteKey(sh.key), err)
	}
	return nil
}

// fresher reports whether stored is a token that another process refreshed after cur, and
// still valid: then it is used instead of refreshing.
func (sh *shared) fresher(stored, cur *oauth2.Token) bool {
	if stored == nil || stored.AccessToken == "" || !sh.valid(stored) {
		return false
	}
	if cur == nil || cur.AccessToken == "" {
		return true
	}
	if stored.AccessToken == cur.AccessToken {
		return false
	}
	// A token without expiry is newer when it is different; otherwise it must expire later.
	return stored.Expiry.IsZero() || cur.Expiry.IsZero() || stored.Expiry.After(cur.Expiry)
}

// valid reports whether t may still be served: it expires after the expiry margin from now,
// or, for a token whose whole lifetime (ExpiresIn) is shorter than twice the margin, before
// half of its lifetime has passed.
func (sh *shared) valid(t *oauth2.Token) bool {
	if t.Expiry.IsZero() {
		return true
	}
	margin := sh.cfg.margin
	if life := time.Duration(t.ExpiresIn) * time.Second; life > 0 && life/2 < margin {
		margin = life / 2
	}
	return sh.cfg.now().Before(t.Expiry.Add(-margin))
}

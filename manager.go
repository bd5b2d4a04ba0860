package oauth2refresh

// manager.go owns many grants of one Endpoint: key -> TokenSource, made lazily from the Store,
// dropped when idle, and what happens when a grant dies or is revoked.
//
// SKELETON (lead, 2026-12-01): the API is fixed; the implementation below is the simple one
// (a mutex-guarded map, nothing dropped) for other work to build on. The manager helper
// replaces it.

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// ManagerOptions configures a Manager. The zero value is usable.
type ManagerOptions struct {
	// Options apply to the TokenSource of every grant (EarlyRefresh, WithEvents, ...); each
	// grant's WithStore is the Manager's own, and one given here is ignored. Events carry
	// the grant's key.
	Options []Option

	// OnDead is called once per process for each grant found dead (see DeadGrantError):
	// refused by the server here, or marked dead in the Store by another process. It is
	// called again for a grant only after Grant.Start revived it. It must return quickly;
	// nil means no call.
	OnDead func(key string, err *DeadGrantError)

	// MaxGrants bounds the TokenSources held in memory; beyond it, idle ones are dropped and
	// made again from the Store when next used. Zero means DefaultMaxGrants.
	MaxGrants int
}

// DefaultMaxGrants is the MaxGrants of a Manager whose options leave it zero.
const DefaultMaxGrants = 10000

// Manager hands out the grants of one Endpoint kept in one Store, one per key (a user, a
// tenant): for each a TokenSource, an *http.Client and, with the compat/google module, a
// Google client option, made lazily from the Store. It may be used by any number of
// goroutines.
type Manager struct {
	e    *Endpoint
	s    Store
	opts ManagerOptions

	mu      sync.Mutex              // guards the fields below
	sources map[string]*TokenSource // the grants held in memory
	dead    map[string]bool         // grants OnDead was called for
}

// NewManager returns a Manager of e's grants kept in s. o may be nil.
func NewManager(e *Endpoint, s Store, o *ManagerOptions) *Manager {
	m := &Manager{e: e, s: s, sources: map[string]*TokenSource{}, dead: map[string]bool{}}
	if o != nil {
		m.opts = *o
	}
	if m.opts.MaxGrants <= 0 {
		m.opts.MaxGrants = DefaultMaxGrants
	}
	return m
}

// Grant returns key's grant. It does not touch the Store.
func (m *Manager) Grant(key string) Grant { return Grant{m, key} }

// source returns key's TokenSource, making it if not held.
func (m *Manager) source(key string) *TokenSource {
	m.mu.Lock()
	defer m.mu.Unlock()
	ts := m.sources[key]
	if ts == nil {
		opts := append(append([]Option(nil), m.opts.Options...), WithStore(m.s, key))
		ts = m.e.TokenSource(context.Background(), nil, opts...)
		m.sources[key] = ts
	}
	return ts
}

// Grant is one grant of a Manager, by its key. It is an oauth2.TokenSource that asks the
// Manager for each token, so it stays valid while the Manager drops the grant's TokenSource
// from memory and makes it again. A Grant is a small value: pass it by value.
type Grant struct {
	m   *Manager
	key string
}

// Key returns the grant's key.
func (g Grant) Key() string { return g.key }

// Token returns a valid access token of the grant; see TokenContext.
func (g Grant) Token() (*oauth2.Token, error) { return g.TokenContext(context.Background()) }

// TokenContext returns a valid access token of the grant, as TokenSource.TokenContext does.
// A grant that is dead returns a *DeadGrantError.
func (g Grant) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	t, err := g.m.source(g.key).TokenContext(ctx)
	if d := (*DeadGrantError)(nil); errors.As(err, &d) {
		g.m.reportDead(g.key, d)
	}
	return t, err
}

// reportDead calls OnDead for key's grant, once.
func (m *Manager) reportDead(key string, d *DeadGrantError) {
	m.mu.Lock()
	first := !m.dead[key]
	m.dead[key] = true
	m.mu.Unlock()
	if first && m.opts.OnDead != nil {
		m.opts.OnDead(key, d)
	}
}

// Client returns an *http.Client that authorizes its requests with the grant's tokens, as
// NewClient does; ctx is used as NewClient uses it.
func (g Grant) Client(ctx context.Context) *http.Client {
	return NewClient(ctx, g.m.source(g.key))
}

// Start seeds the grant with t, the token of the authorization code exchange (or of a new
// authorization of a dead grant, which it revives): it saves t in the Store, as SaveToken
// does, and drops what this process held of the grant.
func (g Grant) Start(ctx context.Context, t *oauth2.Token) error {
	_, ttl := (&TokenSource{e: g.m.e}).leaseTimes()
	if err := SaveToken(ctx, g.m.s, g.key, t, ttl); err != nil {
		return err
	}
	g.m.mu.Lock()
	delete(g.m.sources, g.key)
	delete(g.m.dead, g.key)
	g.m.mu.Unlock()
	return nil
}

// Revoke revokes the grant's refresh token at the server (RFC 7009, Endpoint.RevocationURL)
// and marks the grant revoked in the Store, under the grant's lease, so that no process
// saves it back afterwards.
func (g Grant) Revoke(ctx context.Context) error {
	_, ttl := (&TokenSource{e: g.m.e}).leaseTimes()
	l, err := g.m.s.Lock(ctx, g.key, ttl)
	if err != nil {
		return storeErr("locking", g.key, err)
	}
	defer l.Release(context.WithoutCancel(ctx))
	if t := l.Token(); t != nil && t.RefreshToken != "" {
		if err := g.m.e.Revoke(ctx, t.RefreshToken, HintRefreshToken); err != nil {
			return err
		}
	}
	if err := l.Save(ctx, deadToken(ReasonRevoked, time.Now())); err != nil {
		return storeErr("saving", g.key, err)
	}
	g.m.mu.Lock()
	delete(g.m.sources, g.key)
	g.m.mu.Unlock()
	return nil
}

// Forget deletes the grant from the Store (which must be a Deleter) and from memory, without
// revoking it.
func (g Grant) Forget(ctx context.Context) error {
	d, ok := g.m.s.(Deleter)
	if !ok {
		return errors.New("oauth2refresh: Forget: the Store cannot delete (not a Deleter)")
	}
	if err := d.Delete(ctx, g.key); err != nil {
		return storeErr("deleting", g.key, err)
	}
	g.m.mu.Lock()
	delete(g.m.sources, g.key)
	delete(g.m.dead, g.key)
	g.m.mu.Unlock()
	return nil
}

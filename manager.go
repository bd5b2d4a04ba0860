package oauth2refresh

// manager.go owns many grants of one Endpoint: key -> TokenSource, made lazily from the Store,
// dropped when idle (a CLOCK approximation of least recently used), and what happens when a
// grant dies or is revoked.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// ManagerOptions configures a Manager. The zero value is usable.
type ManagerOptions struct {
	// SourceOptions apply to every grant's TokenSource, but WithStore (the Manager's own).
	// A WithClock also dates Revoke's marks.
	SourceOptions []Option

	// OnDead, if not nil, is called once per process for each grant found dead, and again
	// only after the grant was revived or deleted. It runs on the goroutine of the call that
	// found it dead, without the Manager's locks; it must return quickly. A panic in it is
	// recovered.
	OnDead func(key string, err *DeadGrantError)

	// MaxGrants bounds the grants held in memory. Zero means 10,000.
	MaxGrants int
}

// DefaultMaxGrants is the MaxGrants used when it is zero.
const defaultMaxGrants = 10000

// Manager hands out the grants of one Endpoint kept in one Store, by key (a user, a tenant).
// It is safe for concurrent use. Memory is bounded: MaxGrants grants with a token; a key that
// never held one (maybe an attacker's) costs nothing once its call returns; grants not used
// recently are dropped while idle and made again from the Store when next used. See
// docs/SHARING.md.
type Manager struct {
	e    *Endpoint
	s    Store
	opts ManagerOptions // read-only after NewManager; MaxGrants is positive
	now  func() time.Time
	ttl  time.Duration // the ttl of the leases SaveToken and Revoke take, as a TokenSource's

	// grants maps a key to its *entry: read without a lock, changed only under mu.
	grants sync.Map

	mu   sync.Mutex      // guards the fields below, and every change to grants
	ring []*entry        // the held entries, in the order the CLOCK hand sweeps them
	hand int             // the index in ring the hand looks at next
	dead map[string]bool // keys OnDead was called for, until revived or deleted
	// short: how many more makeRoom calls look at only a few entries (see makeRoom).
	short int
	// failed answers the keys whose source got no token until their backoff ends (see fail).
	failed     map[string]failedKey
	failedKeys [maxFailed]string // the keys of failed, by slot
	failedNext int               // the slot of failedKeys a new key takes
	// limbo: unheld entries settle left in the map with no call inside (a flight outliving
	// its caller, a token unsaved); add settles them again.
	limbo []*entry
}

// maxFailed bounds Manager.failed (see Manager).
const maxFailed = 256

// failedKey is what Manager.failed keeps of a key whose TokenSource got no token.
type failedKey struct {
	err   error     // the error of its last call
	until time.Time // when its backoff ends
	slot  int       // its index in Manager.failedKeys
}

// entry is one grant held in memory.
type entry struct {
	key string       // read-only
	ts  *TokenSource // read-only

	// used is set by every use of the entry (by the hot path only when it is not set
	// already) and cleared by the CLOCK hand: a second chance.
	used atomic.Bool
	// busy counts the calls inside ts that may start a flight (see Manager.pin), and gone
	// says the entry is being or has been removed. A caller increments busy, then reads gone;
	// a remover sets gone, then reads busy: with sequentially consistent atomics, at least one
	// of them sees the other's write, so no call starts a flight on a removed entry's source.
	busy atomic.Int32
	gone atomic.Bool
	// reported says OnDead was called for the grant while this entry was held: a fast check
	// for the calls that keep finding the grant dead.
	reported atomic.Bool
	// held says the entry is in Manager.ring: its source got a token (see Manager.settle).
	// It is set under Manager.mu, and never cleared.
	held atomic.Bool

	slot  int  // the entry's index in Manager.ring, once held; guarded by Manager.mu
	limbo bool // in Manager.limbo; guarded by Manager.mu
	stale bool // removed by SaveToken, Revoke or Delete: its errors are not reported; guarded by Manager.mu
	// heldTok is the token ts held when OnDead was called for the grant (see
	// Manager.reported); guarded by Manager.mu.
	heldTok *oauth2.Token
}

// NewManager returns a Manager of e's grants kept in s, which must not be nil. o may be nil.
func NewManager(e *Endpoint, s Store, o *ManagerOptions) *Manager {
	m := &Manager{e: e, s: s, dead: map[string]bool{}, failed: map[string]failedKey{}}
	if o != nil {
		m.opts = *o
	}
	if m.opts.MaxGrants <= 0 {
		m.opts.MaxGrants = defaultMaxGrants
	}
	c := config{now: time.Now}
	for _, o := range m.opts.SourceOptions {
		o(&c)
	}
	m.now = c.now
	_, m.ttl = (&TokenSource{e: e}).leaseTimes()
	return m
}

// Grant returns key's grant. It does not touch the Store. Every call of the Grant of a key
// longer than 1024 bytes fails.
func (m *Manager) Grant(key string) Grant { return Grant{m, key} }

// maxKeyLen is the length of the longest key of a Manager's grant (see Manager.Grant): what a
// held entry, a Store's key and an event's Key cost is bounded by it.
const maxKeyLen = 1024

// checkKey returns the error of a key longer than maxKeyLen, else nil.
func checkKey(key string) error {
	if len(key) > maxKeyLen {
		return fmt.Errorf("oauth2refresh: grant key of %d bytes is longer than %d bytes", len(key), maxKeyLen)
	}
	return nil
}

// lookup returns key's entry, or nil if it is not held.
func (m *Manager) lookup(key string) *entry {
	if v, ok := m.grants.Load(key); ok {
		return v.(*entry)
	}
	return nil
}

// pin returns key's entry, made if not held, with its busy count incremented: it cannot be
// dropped until the caller calls unpin. Or it returns the error Manager.failed keeps for key.
func (m *Manager) pin(key string) (*entry, error) {
	for {
		if e := m.lookup(key); e != nil {
			e.busy.Add(1)
			if !e.gone.Load() {
				e.use()
				return e, nil
			}
			e.busy.Add(-1)
			// A remover holds m.mu until it has decided: wait for it, then look again.
			m.mu.Lock()
			//lint:ignore SA2001 an empty critical section: it waits for the remover
			m.mu.Unlock()
			continue
		}
		if e, err := m.add(key); e != nil || err != nil {
			return e, err
		}
	}
}

// unpin ends a call inside e's source that pin began, then settles e.
func (m *Manager) unpin(e *entry) {
	e.busy.Add(-1)
	if !e.held.Load() {
		m.settle(e)
	}
}

// settle decides what becomes of e, an entry not held in the ring, after a call inside its
// source: once the source holds a token, or failed otherwise than for want of a refresh
// token, e joins the held entries (dropping an idle one if MaxGrants are held); when the
// Store holds no refresh token for it, e is removed as soon as no call is inside it, and the
// error is kept in m.failed until the backoff ends. So a key that never held a token (an
// attacker's) costs no held entry: only, for the most recent maxFailed of them, a place in
// m.failed.
func (m *Manager) settle(e *entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.settled(e) || e.busy.Load() != 0 || e.limbo {
		return
	}
	e.limbo = true
	m.limbo = append(m.limbo, e)
}

// settled is settle's decision: it reports whether e was settled (held, or removed), or is
// left as it is, because a call is inside its source, or a flight is running. Only a source
// whose Store holds no refresh token (ErrNoRefreshToken: nothing was sent to the server) is
// removed; one that failed otherwise (a refused refresh, a server or Store down) is held, so
// that its backoff protects the server and the Store. m.mu must be held.
func (m *Manager) settled(e *entry) bool {
	if e.held.Load() || e.gone.Load() {
		return true
	}
	until, err, quiet := e.ts.failed()
	if !quiet && e.ts.state.Load().tok == nil {
		return false // a flight running, or a token unsaved: what comes of it decides
	}
	if e.ts.state.Load().tok != nil || !errors.Is(err, ErrNoRefreshToken) {
		m.makeRoom()
		e.slot = len(m.ring)
		m.ring = append(m.ring, e)
		e.held.Store(true)
		return true
	}
	e.gone.Store(true) // see entry.busy
	if e.busy.Load() != 0 {
		e.gone.Store(false)
		return false
	}
	m.remove(e)
	if m.now().Before(until) {
		m.fail(e.key, err, until)
	}
	return true
}

// settleLimbo settles the entries in m.limbo again. m.mu must be held.
func (m *Manager) settleLimbo() {
	kept := m.limbo[:0]
	for _, e := range m.limbo {
		if m.settled(e) {
			e.limbo = false
		} else {
			kept = append(kept, e)
		}
	}
	clear(m.limbo[len(kept):])
	m.limbo = kept
}

// fail keeps err as the answer to key's calls until until, replacing the oldest key kept if
// maxFailed are. m.mu must be held.
func (m *Manager) fail(key string, err error, until time.Time) {
	if f, ok := m.failed[key]; ok {
		m.failed[key] = failedKey{err, until, f.slot}
		return
	}
	slot := m.failedNext
	m.failedNext = (slot + 1) % maxFailed
	if old := m.failedKeys[slot]; old != "" {
		delete(m.failed, old)
	}
	m.failedKeys[slot] = key
	m.failed[key] = failedKey{err, until, slot}
}

// unfail forgets what m.failed keeps for key. m.mu must be held.
func (m *Manager) unfail(key string) {
	if f, ok := m.failed[key]; ok {
		m.failedKeys[f.slot] = ""
		delete(m.failed, key)
	}
}

// failed returns when s's backoff ends and the error that began it, and whether s is quiet:
// no flight, no unsaved token.
func (s *TokenSource) failed() (until time.Time, err error, quiet bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.retryAt, s.lastErr, s.flight == nil && s.pending == nil
}

// use sets e.used, writing it only when it is not set.
func (e *entry) use() {
	if !e.used.Load() {
		e.used.Store(true)
	}
}

// add makes key's entry, pinned; it joins the held entries once its source gets a token (see
// settle). It returns nil if another goroutine added key meanwhile, and the error m.failed
// keeps for key, if any.
func (m *Manager) add(key string) (*entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lookup(key) != nil {
		return nil, nil
	}
	if len(m.limbo) > 0 {
		m.settleLimbo()
	}
	if f, ok := m.failed[key]; ok {
		if m.now().Before(f.until) {
			return nil, f.err
		}
		m.unfail(key)
	}
	opts := append(m.opts.SourceOptions[:len(m.opts.SourceOptions):len(m.opts.SourceOptions)], WithStore(m.s, key))
	e := &entry{key: key, ts: m.e.TokenSource(context.Background(), nil, opts...), slot: -1}
	e.busy.Store(1)
	e.used.Store(true)
	// OnDead was called for the grant while an entry dropped since held it: the first token
	// this one gets revives the grant (see reported).
	e.reported.Store(m.dead[key])
	m.grants.Store(key, e)
	return e, nil
}

// makeRoom drops idle entries, in CLOCK order, until fewer than MaxGrants are held, or every
// held entry was looked at twice (once to clear its used bit, once more) without success.
// After such a failure, which happens only while the held entries are all busy, the next
// len(m.ring) calls look at no more than 4 entries each: the cost of adding an entry stays
// O(1) amortized, and the surplus is dropped a few at a time once idle. m.mu must be held.
func (m *Manager) makeRoom() {
	n := 2 * len(m.ring)
	full := m.short == 0
	if !full {
		m.short--
		n = min(n, 4)
	}
	defer func() {
		if full && len(m.ring) >= m.opts.MaxGrants {
			m.short = len(m.ring)
		}
	}()
	for ; len(m.ring) >= m.opts.MaxGrants && n > 0; n-- {
		if m.hand >= len(m.ring) {
			m.hand = 0
		}
		e := m.ring[m.hand]
		if e.used.Load() {
			e.used.Store(false)
			m.hand++
			continue
		}
		e.gone.Store(true) // see entry.busy
		if e.busy.Load() != 0 || !e.ts.idle() {
			e.gone.Store(false)
			m.hand++
			continue
		}
		m.remove(e) // the hand now looks at the entry moved into e's slot
	}
}

// idle reports whether s may be dropped without losing anything: no flight, no unsaved
// token, no backoff running. So dropping never loses a rotated refresh token, never lets two
// sources of this process refresh one grant at once (the dropped one has no flight), and
// never shortens a backoff that keeps a request from the server.
func (s *TokenSource) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flight == nil && s.pending == nil && !s.cfg.now().Before(s.retryAt)
}

// remove removes e from the map, and from the held entries. m.mu must be held.
func (m *Manager) remove(e *entry) {
	e.gone.Store(true)
	m.grants.CompareAndDelete(e.key, e)
	if !e.held.Load() {
		return
	}
	last := len(m.ring) - 1
	m.ring[e.slot] = m.ring[last]
	m.ring[e.slot].slot = e.slot
	m.ring[last] = nil
	m.ring = m.ring[:last]
}

// drop removes key's entry whatever it is doing, for SaveToken, Revoke and Delete, which changed
// the grant in the Store, and with revived forgets that OnDead was called for key. A call
// inside the dropped source goes on with it; the next call makes a new one from the Store.
func (m *Manager) drop(key string, revived bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.lookup(key); e != nil {
		e.stale = true
		m.remove(e)
	}
	m.unfail(key)
	if revived {
		delete(m.dead, key)
	}
}

// reported takes note of what a call inside e's source returned, t or err: it calls OnDead if
// err is a *DeadGrantError and OnDead was not called for e's grant since it was last revived
// (see ManagerOptions.OnDead). The grant is revived here when a call gets a token other than
// the one the source held when OnDead was called: a dead grant's source may still serve the
// access token it held (see WithStore), which says nothing of the grant. t is nil when the
// call did not say which token it used (Grant.Client).
func (m *Manager) reported(e *entry, t *oauth2.Token, err error) {
	if m.opts.OnDead == nil {
		return
	}
	if err == nil {
		if t != nil && e.reported.Load() {
			m.mu.Lock()
			if !e.stale && t != e.heldTok {
				delete(m.dead, e.key)
				e.reported.Store(false)
				e.heldTok = nil
			}
			m.mu.Unlock()
		}
		return
	}
	var d *DeadGrantError
	if e.reported.Load() || !errors.As(err, &d) {
		return
	}
	m.mu.Lock()
	first := !e.stale && !m.dead[e.key]
	if !e.stale {
		m.dead[e.key] = true
		e.reported.Store(true)
		e.heldTok = e.ts.state.Load().tok
	}
	m.mu.Unlock()
	if first {
		m.onDead(e.key, d)
	}
}

// onDead calls OnDead, recovering a panic: the report counts as made (see
// ManagerOptions.OnDead).
func (m *Manager) onDead(key string, d *DeadGrantError) {
	defer func() { recover() }()
	m.opts.OnDead(key, d)
}

// Grant is one grant of a Manager, by key: an oauth2.TokenSource that stays valid while the
// Manager drops and remakes its TokenSource. The zero Grant is not usable.
type Grant struct {
	m   *Manager
	key string
}

// Token returns a valid access token of the grant; see TokenContext.
func (g Grant) Token() (*oauth2.Token, error) { return g.TokenContext(context.Background()) }

// TokenContext returns a valid access token of the grant, as TokenSource.TokenContext does.
// The error of a dead grant wraps a *DeadGrantError.
func (g Grant) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	if e := g.m.lookup(g.key); e != nil {
		e.use()
		if t := e.ts.cached(); t != nil {
			return t, nil
		}
	}
	if err := checkKey(g.key); err != nil {
		return nil, err
	}
	e, err := g.m.pin(g.key)
	if err != nil {
		return nil, err
	}
	t, err := e.ts.TokenContext(ctx)
	g.m.unpin(e)
	g.m.reported(e, t, err)
	return t, err
}

// Client returns NewClient(ctx, g). Holding it does not keep the grant in memory.
func (g Grant) Client(ctx context.Context) *http.Client { return NewClient(ctx, g) }

// Invalidate is TokenSource.Invalidate for the grant, for a Transport's 401 retry. It does
// nothing when the grant is not in memory.
func (g Grant) Invalidate(t *oauth2.Token) {
	if e := g.m.lookup(g.key); e != nil {
		e.ts.Invalidate(t)
	}
}

// hold returns the grant's current TokenSource, not dropped until release is called: a
// Transport holds it while it sends a request (see backedSource).
func (g Grant) hold() (*TokenSource, func(), error) {
	if err := checkKey(g.key); err != nil {
		return nil, nil, err
	}
	e, err := g.m.pin(g.key)
	if err != nil {
		return nil, nil, err
	}
	return e.ts, func() { g.m.unpin(e) }, nil
}

// SaveToken saves t as the grant's token, as SaveToken does, reviving a dead grant; the next
// call loads it, and OnDead may be called for the grant again.
func (g Grant) SaveToken(ctx context.Context, t *oauth2.Token) error {
	if err := checkKey(g.key); err != nil {
		return err
	}
	if t == nil || t.AccessToken == "" && t.RefreshToken == "" {
		return fmt.Errorf("oauth2refresh: saving grant %s: no token", quoteKey(g.key))
	}
	l, err := g.m.lock(ctx, g.key)
	if err != nil {
		return redactError(err, tokenSecrets(t)...)
	}
	defer l.Release(context.WithoutCancel(ctx))
	if err := l.Save(ctx, t); err != nil {
		return redactError(storeErr("saving", g.key, err), tokenSecrets(t, l.Token())...)
	}
	g.m.drop(g.key, true)
	return nil
}

// release gives l up, within the Timeout and whatever ctx says, as a TokenSource does.
func (m *Manager) release(ctx context.Context, l Lease) {
	(&TokenSource{e: m.e}).release(context.WithoutCancel(ctx), l)
}

// lock takes key's lease, waiting for it at most twice its ttl, as a TokenSource does.
func (m *Manager) lock(ctx context.Context, key string) (Lease, error) {
	lctx, cancel := context.WithTimeout(ctx, 2*m.ttl)
	defer cancel()
	l, err := m.s.Lock(lctx, key, m.ttl)
	if err != nil {
		return nil, storeErr("locking", key, err)
	}
	return l, nil
}

// Revoke saves a revoked mark in the Store, then revokes the stored refresh token (or access
// token) at the server (RFC 7009): the mark comes first, so that no process refreshes with the
// token being revoked. Every process then gets a *DeadGrantError matching ErrGrantRevoked
// when it next needs a new token. If the server fails, the token is put back and its error
// returned. With nothing stored (ErrNoRefreshToken) or no RevocationURL
// (ErrInvalidEndpoint), nothing changes.
func (g Grant) Revoke(ctx context.Context) error {
	m := g.m
	if err := checkKey(g.key); err != nil {
		return err
	}
	if m.e.RevocationURL == "" {
		return fmt.Errorf("oauth2refresh: revoking grant %s: %w: no RevocationURL", quoteKey(g.key), ErrInvalidEndpoint)
	}
	// The mark is written first, under the lease, so that it wins however long the server
	// takes: no process refreshes with the token being revoked, and every process sharing the
	// Store gets the error without sending anything once it needs a token other than the one
	// it holds (the mark does not take back an access token handed out; a 401 through
	// Grant.Client makes the need). A process that refreshed under an older lease cannot save
	// over the mark (ErrLeaseLost). A grant already dead is marked revoked without a request.
	//
	// A key that holds nothing takes no lease: Lock may leave something behind.
	timeout, _ := (&TokenSource{e: m.e}).leaseTimes()
	lctx, cancel := context.WithTimeout(ctx, timeout)
	t, err := m.s.Load(lctx, g.key)
	cancel()
	if err != nil {
		return storeErr("loading", g.key, err)
	}
	if t == nil {
		return g.noToken()
	}
	loaded := t
	l, err := m.lock(ctx, g.key)
	if err != nil {
		return redactError(err, tokenSecrets(loaded)...) // a store's error may quote a token
	}
	end := time.Now().Add(m.ttl)
	t = l.Token()
	if t == nil {
		m.release(ctx, l)
		return g.noToken()
	}
	at := m.now()
	sctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), end)
	err = l.Save(sctx, deadToken(reasonRevoked, at))
	cancel()
	m.release(ctx, l)
	if err != nil {
		return redactError(storeErr("saving", g.key, err), tokenSecrets(loaded, t)...)
	}
	// A grant reported dead already, maybe by a call that saw the mark just now, is not
	// reported again.
	m.drop(g.key, false)
	if deadOf(g.key, t) != nil {
		return nil
	}
	if err := m.e.Revoke(ctx, t); err != nil {
		if rerr := g.restore(ctx, t, at); rerr != nil {
			return fmt.Errorf("%w (and %w)", err, rerr)
		}
		return err
	}
	return nil
}

// noToken is the error of Revoke for a key whose Store holds nothing.
func (g Grant) noToken() error {
	return fmt.Errorf("oauth2refresh: revoking grant %s: %w: none stored", quoteKey(g.key), ErrNoRefreshToken)
}

// restore puts t back in the Store in place of the revoked mark Revoke saved at at, if it is
// still there, after the server did not revoke t, and drops what this process held of the
// grant, which is alive again.
func (g Grant) restore(ctx context.Context, t *oauth2.Token, at time.Time) error {
	ctx = context.WithoutCancel(ctx)
	l, err := g.m.lock(ctx, g.key)
	if err != nil {
		return redactError(err, tokenSecrets(t)...)
	}
	defer g.m.release(ctx, l)
	if d := deadOf(g.key, l.Token()); d == nil || d.reason != reasonRevoked || !d.At.Equal(at) {
		return nil // the grant changed since: that stays
	}
	sctx, cancel := context.WithTimeout(ctx, g.m.ttl)
	defer cancel()
	if err := l.Save(sctx, t); err != nil {
		return redactError(storeErr("restoring", g.key, err), tokenSecrets(t)...)
	}
	g.m.drop(g.key, true)
	return nil
}

// Delete deletes the grant from the Store and from memory, without revoking it. OnDead may be
// called for it again once it is saved again.
func (g Grant) Delete(ctx context.Context) error {
	if err := checkKey(g.key); err != nil {
		return err
	}
	if err := g.m.s.Delete(ctx, g.key); err != nil {
		return storeErr("deleting", g.key, err)
	}
	g.m.drop(g.key, true)
	return nil
}

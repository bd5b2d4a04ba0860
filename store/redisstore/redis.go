// Package redisstore is an oauth2refresh.Store on Redis, for replicas of a service on several
// machines that share OAuth grants: with it, a grant is refreshed once per token lifetime
// whatever the number of replicas, and a rotated refresh token is never sent twice.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	store := &redisstore.Store{Client: rdb}
//	ts := endpoint.TokenSource(ctx, nil, oauth2refresh.WithStore(store, "tenant-42"))
//
// It uses three Redis keys per grant, all with the hash tag {k:KEY} so that they live on one
// Cluster slot:
//
//	PREFIX{k:KEY}:token  the token, in the format of store.Encode, whose
//	                     version is the fencing number of the lease that saved it (no
//	                     expiry: it lives until deleted)
//	PREFIX{k:KEY}:lease  the fencing number of the lease holder, set with PX ttl
//	PREFIX{k:KEY}:fence  the fencing number of the last lease granted
//
// Lock, Save, Release and Delete are Lua scripts, so each is atomic. A lease is granted only when
// no other is live, and receives the next fencing number: the fence key's plus one, or, when
// there is no fence key, the Redis server's clock in microseconds since 1970. Save stores the
// token only if no lease was granted since the caller's (the fence key still holds its number):
// a holder whose lease lapsed may still save while nobody took over (its token holds the newest
// refresh token), but never overwrites the token of a later holder. Release deletes the lease
// only if it is still the caller's, and the fence key too when no token is stored and no lease
// was granted since: a key that never held a token leaves nothing. Delete deletes all three
// keys, so that a lease held meanwhile cannot save
// (the fence key is gone); the grant started again numbers its leases from the clock, past
// every number given out before (unless the server's clock went back by more than the time the
// grant lived). A process that dies holding the lease of a grant never saved leaves the fence
// key, which the next Lock and Release of the key, or Delete, removes.
//
// The lease's expiry is measured by the Redis server's clock; waiting for a lease polls.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store"
	"golang.org/x/oauth2"
)

// DefaultPrefix is the key prefix used when Store.Prefix is empty.
const DefaultPrefix = "oauth2refresh:"

// Store is an oauth2refresh.Store that keeps tokens and leases in Redis. Its methods may be
// called by any number of goroutines.
type Store struct {
	// Client talks to Redis: a *redis.Client, a failover client or a *redis.ClusterClient.
	// It must not be nil.
	Client redis.UniversalClient

	// Prefix is prepended to every key. Empty means DefaultPrefix.
	Prefix string
}

var _ oauth2refresh.Store = (*Store)(nil)

// keys returns the token, lease and fence keys of key.
func (s *Store) keys(key string) (token, lease, fence string) {
	p := s.Prefix
	if p == "" {
		p = DefaultPrefix
	}
	// The three keys share a Redis Cluster hash tag, so that the scripts that touch them all
	// run on one slot. "k:" keeps the tag non-empty for an empty key or one starting with '}'.
	base := p + "{k:" + key + "}:"
	return base + "token", base + "lease", base + "fence"
}

// decode decodes a stored value (see store.Decode).
func decode(key, location, v string) (*oauth2.Token, error) {
	t, _, err := store.Decode(key, "redis key "+location, []byte(v))
	return t, err
}

// Load returns the token stored under key, or nil if there is none.
func (s *Store) Load(ctx context.Context, key string) (*oauth2.Token, error) {
	tk, _, _ := s.keys(key)
	v, err := s.Client.Get(ctx, tk).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("oauth2refresh: redis store: %w", err)
	}
	return decode(key, tk, v)
}

// lockScript grants the lease if none is live: it returns {fence, token} (fence a decimal
// string, token absent when none is stored), or {0, pttl} while another lease is live. Fences
// are kept as strings: a Lua number loses digits when Redis formats it.
var lockScript = redis.NewScript(`
local pttl = redis.call('PTTL', KEYS[1])
if pttl ~= -2 then
	return {0, pttl}
end
local f
if redis.call('EXISTS', KEYS[2]) == 1 then
	redis.call('INCR', KEYS[2])
	f = redis.call('GET', KEYS[2])
else
	local now = redis.call('TIME')
	f = now[1] .. string.format('%06d', tonumber(now[2]))
	redis.call('SET', KEYS[2], f)
end
redis.call('SET', KEYS[1], f, 'PX', ARGV[1])
local tok = redis.call('GET', KEYS[3])
if tok then
	return {f, tok}
end
return {f}
`)

// saveScript stores ARGV[2] if no lease was granted since ARGV[1]'s: 1 if stored, 0 if not.
var saveScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
	return 0
end
redis.call('SET', KEYS[2], ARGV[2])
return 1
`)

// releaseScript deletes the lease (KEYS[1]) if it is still ARGV[1]'s, and the fence (KEYS[2])
// if no lease was granted since ARGV[1]'s and no token (KEYS[3]) is stored.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	redis.call('DEL', KEYS[1])
end
if redis.call('GET', KEYS[2]) == ARGV[1] and redis.call('EXISTS', KEYS[3]) == 0 then
	redis.call('DEL', KEYS[2])
end
return 1
`)

// Delete deletes key's token, lease and fence; a lease held meanwhile can no longer save (see
// the package documentation). Deleting a key without a token is no error.
func (s *Store) Delete(ctx context.Context, key string) error {
	tk, lk, fk := s.keys(key)
	if err := s.Client.Del(ctx, tk, lk, fk).Err(); err != nil {
		return fmt.Errorf("oauth2refresh: redis store: deleting token: %w", err)
	}
	return nil
}

// Lock waits until it holds key's lease, polling while another is live, or until ctx is done.
// ttl is rounded up to a whole millisecond.
func (s *Store) Lock(ctx context.Context, key string, ttl time.Duration) (oauth2refresh.Lease, error) {
	tk, lk, fk := s.keys(key)
	ms := max(ttl.Milliseconds(), 1)
	if time.Duration(ms)*time.Millisecond < ttl {
		ms++
	}
	wait := 2 * time.Millisecond
	for {
		res, err := lockScript.Run(ctx, s.Client, []string{lk, fk, tk}, ms).Slice()
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("oauth2refresh: redis store: waiting for lease: %w", ctx.Err())
			}
			return nil, fmt.Errorf("oauth2refresh: redis store: taking lease: %w", err)
		}
		if f, ok := res[0].(string); ok {
			fence, err := strconv.ParseUint(f, 10, 64)
			if err != nil || fence == 0 {
				return nil, fmt.Errorf("oauth2refresh: redis store: taking lease: fencing number %q is not a positive integer", truncate(f))
			}
			l := &lease{s: s, key: key, lk: lk, fk: fk, tk: tk, fence: fence}
			if len(res) > 1 {
				v, _ := res[1].(string)
				tok, err := decode(key, tk, v)
				if err != nil {
					l.Release(context.WithoutCancel(ctx))
					return nil, err
				}
				l.tok = tok
			}
			return l, nil
		}
		// Held: wait a little, but not past the end of the lease.
		d := wait
		if pttl, _ := res[1].(int64); pttl > 0 && time.Duration(pttl)*time.Millisecond < d {
			d = time.Duration(pttl) * time.Millisecond
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("oauth2refresh: redis store: waiting for lease: %w", ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// lease is a lease on one grant.
type lease struct {
	s          *Store
	key        string
	lk, fk, tk string
	fence      uint64        // this lease's fencing number
	tok        *oauth2.Token // stored token when granted
	released   bool
}

func (l *lease) Token() *oauth2.Token { return l.tok }

func (l *lease) Save(ctx context.Context, t *oauth2.Token) error {
	if l.released {
		return fmt.Errorf("oauth2refresh: redis store: save after release: %w", oauth2refresh.ErrLeaseLost)
	}
	b, err := store.Encode(t, l.fence)
	if err != nil {
		return err
	}
	n, err := saveScript.Run(ctx, l.s.Client, []string{l.fk, l.tk}, strconv.FormatUint(l.fence, 10), b).Int()
	if err != nil {
		return fmt.Errorf("oauth2refresh: redis store: saving token: %w", err)
	}
	if n != 1 {
		return fmt.Errorf("oauth2refresh: redis store: a newer lease was granted: %w", oauth2refresh.ErrLeaseLost)
	}
	return nil
}

func (l *lease) Release(ctx context.Context) error {
	if l.released {
		return nil
	}
	if err := releaseScript.Run(ctx, l.s.Client, []string{l.lk, l.fk, l.tk}, strconv.FormatUint(l.fence, 10)).Err(); err != nil {
		return fmt.Errorf("oauth2refresh: redis store: releasing lease: %w", err)
	}
	l.released = true
	return nil
}

// truncate shortens s, a value read from Redis, for an error message.
func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

package oauth2refresh

// sealer.go owns encryption at rest: a Sealer, and SealStore, which applies it to any Store.

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Sealer encrypts the secrets of stored tokens with AES-256-GCM (NIST SP 800-38D, an AEAD),
// under keys named by key ids so that keys can rotate: it seals with its current key and opens
// with any key it holds. Make one with NewSealer, apply it with SealStore. It is safe for use
// by any number of goroutines once AcceptPlaintext is set.
type Sealer struct {
	// AcceptPlaintext lets SealStore return stored values that are not sealed, as a store kept
	// before it was sealed holds them; each is sealed at the grant's next save. Leave it false
	// once every grant was saved again: an unsealed value is then a *SealError, so that whoever
	// can write to the store cannot put a token of their own in place of a grant's.
	AcceptPlaintext bool

	current string
	aeads   map[string]cipher.AEAD // by key id; not changed after NewSealer
}

// NewSealer returns a Sealer holding keys, 32 bytes each, by key id, and sealing with the one
// named current. A key id is 1 to 64 ASCII letters, digits, '-' or '_', and is stored in clear
// beside each sealed value. To rotate, add a new key and make it current, and keep the old ones
// for opening until every grant was saved again. Each key seals at most 2^32 values (random
// 96-bit nonces): rotate well before.
func NewSealer(keys map[string][]byte, current string) (*Sealer, error) {
	if _, ok := keys[current]; !ok {
		return nil, fmt.Errorf("oauth2refresh: making sealer: no key with the current id %q", truncate(current, 64))
	}
	k := &Sealer{current: current, aeads: make(map[string]cipher.AEAD, len(keys))}
	for id, key := range keys {
		if id == "" || len(id) > 64 || strings.TrimLeft(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
			return nil, fmt.Errorf("oauth2refresh: making sealer: invalid key id %q", truncate(id, 64))
		}
		if len(key) != 32 {
			return nil, fmt.Errorf("oauth2refresh: making sealer: key %q has %d bytes, want 32", id, len(key))
		}
		b, _ := aes.NewCipher(key) // cannot fail with 32 bytes
		a, err := cipher.NewGCMWithRandomNonce(b)
		if err != nil {
			return nil, fmt.Errorf("oauth2refresh: making sealer: %w", err)
		}
		k.aeads[id] = a
	}
	return k, nil
}

// ErrUnknownSealKey is the Err of a *SealError for a value sealed with a key id the Sealer
// does not hold: add that key to the Sealer.
var ErrUnknownSealKey = errors.New("sealed with a key id the sealer does not hold")

// SealError reports a stored token that SealStore cannot open: sealed with a key id the Sealer
// does not hold (Err is ErrUnknownSealKey), sealed for another grant key (a value copied from
// another grant), altered, or not sealed while Sealer.AcceptPlaintext is false. The store's
// Load and Lock return it, Lock then holding no lease: the TokenSource reports it and sends
// nothing. Its text never quotes the value.
type SealError struct {
	Key   string // the grant's key
	KeyID string // the key id the value was sealed with; empty if it is not sealed
	Err   error  // what is wrong
}

func (e *SealError) Error() string {
	s := "oauth2refresh: stored token for key " + quoteKey(e.Key) + " cannot be opened"
	if e.KeyID != "" {
		s += fmt.Sprintf(" (key id %q)", e.KeyID)
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns e.Err.
func (e *SealError) Unwrap() error { return e.Err }

// sealedPrefix begins every sealed value: "sealed.v1.<key id>.<base64url(nonce, ciphertext, tag)>".
const sealedPrefix = "sealed.v1."

// sealedExtra is the Extra member, in the token given to the store, holding the others sealed.
const sealedExtra = "oauth2refresh_sealed"

// SealStore returns a Store that keeps its tokens in s sealed by k, whatever s is. Each saved
// token's access token, refresh token and Extra values (as EncodeStoredToken keeps them, up to
// 40 KiB, sealed together in one Extra member) are stored sealed, the grant key and the field
// bound as associated data, so that a value copied to another grant or field does not open.
// The token type, expiry, expires_in, refresh-token expiry, DPoP key thumbprint and the store's
// version stay in clear. Load, Lock and Lease.Token return the tokens opened; a value that does
// not open is a *SealError. An older value of the same grant, put back, still opens: sealing
// keeps a token secret and to its grant, not fresh.
//
// A dead mark (see DeadGrantError) holds no secret and is stored as it is, not sealed: whoever
// can write to the store can mark a grant dead, as they could delete it, but cannot put a token
// in place of the grant's. The Store returned is a Deleter when s is one, and passes Delete on
// to s.
func SealStore(s Store, k *Sealer) Store {
	if d, ok := s.(Deleter); ok {
		return sealedDeleter{sealedStore{s, k}, d}
	}
	return sealedStore{s, k}
}

type sealedStore struct {
	s Store
	k *Sealer
}

// sealedDeleter is a sealedStore of a Store that is a Deleter.
type sealedDeleter struct {
	sealedStore
	d Deleter // sealedStore.s
}

func (ss sealedDeleter) Delete(ctx context.Context, key string) error { return ss.d.Delete(ctx, key) }

func (ss sealedStore) Load(ctx context.Context, key string) (*oauth2.Token, error) {
	t, err := ss.s.Load(ctx, key)
	if err != nil || t == nil {
		return t, err
	}
	return ss.k.open(key, t)
}

func (ss sealedStore) Lock(ctx context.Context, key string, ttl time.Duration) (Lease, error) {
	l, err := ss.s.Lock(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	t := l.Token()
	if t != nil {
		if t, err = ss.k.open(key, t); err != nil {
			l.Release(context.WithoutCancel(ctx))
			return nil, err
		}
	}
	return &sealedLease{Lease: l, k: ss.k, key: key, t: t}, nil
}

// sealedLease is a Lease of a sealedStore; Release is the inner Lease's.
type sealedLease struct {
	Lease
	k   *Sealer
	key string
	t   *oauth2.Token // the stored token, opened
}

func (l *sealedLease) Token() *oauth2.Token { return l.t }

func (l *sealedLease) Save(ctx context.Context, t *oauth2.Token) error {
	if t == nil || deadOf(l.key, t) != nil {
		return l.Lease.Save(ctx, t) // a dead mark holds no secret
	}
	s := &oauth2.Token{AccessToken: l.k.seal(l.key, "access_token", t.AccessToken), TokenType: t.TokenType,
		RefreshToken: l.k.seal(l.key, "refresh_token", t.RefreshToken), Expiry: t.Expiry, ExpiresIn: t.ExpiresIn}
	extra := map[string]any{}
	for _, name := range []string{"dpop_jkt", refreshExpiryKey} {
		if v := t.Extra(name); v != nil {
			extra[name] = v
		}
	}
	if m := keptExtra(t, 40<<10); m != nil {
		b, _ := json.Marshal(m) // json.RawMessage values: cannot fail
		extra[sealedExtra] = l.k.seal(l.key, "extra", string(b))
	}
	return l.Lease.Save(ctx, s.WithExtra(extra))
}

// seal returns v sealed for key's field; "" stays "".
func (k *Sealer) seal(key, field, v string) string {
	if v == "" {
		return ""
	}
	b := k.aeads[k.current].Seal(nil, nil, []byte(v), sealAD(key, field))
	return sealedPrefix + k.current + "." + base64.RawURLEncoding.EncodeToString(b)
}

// sealAD is the associated data binding a sealed value to its grant key and field.
func sealAD(key, field string) []byte {
	return []byte("oauth2refresh sealed v1\x00" + field + "\x00" + key)
}

// openValue returns the value that v seals for key's field, or v if it is not sealed.
func (k *Sealer) openValue(key, field, v string) (string, error) {
	rest, ok := strings.CutPrefix(v, sealedPrefix)
	if !ok {
		if v == "" || k.AcceptPlaintext {
			return v, nil
		}
		return "", &SealError{Key: key, Err: fmt.Errorf("%s not sealed", field)}
	}
	id, data, _ := strings.Cut(rest, ".")
	a := k.aeads[id]
	if a == nil {
		return "", &SealError{Key: key, KeyID: truncate(id, 64), Err: ErrUnknownSealKey}
	}
	b, err := base64.RawURLEncoding.DecodeString(data)
	if err == nil {
		b, err = a.Open(nil, nil, b, sealAD(key, field))
	}
	if err != nil {
		return "", &SealError{Key: key, KeyID: id, Err: fmt.Errorf("%s does not open: altered, or sealed for another grant key", field)}
	}
	return string(b), nil
}

// open returns the token that t, as stored for key, seals; a dead mark as it is.
func (k *Sealer) open(key string, t *oauth2.Token) (*oauth2.Token, error) {
	if deadOf(key, t) != nil {
		return t, nil
	}
	at, err := k.openValue(key, "access_token", t.AccessToken)
	if err != nil {
		return nil, err
	}
	rt, err := k.openValue(key, "refresh_token", t.RefreshToken)
	if err != nil {
		return nil, err
	}
	o := &oauth2.Token{AccessToken: at, TokenType: t.TokenType, RefreshToken: rt, Expiry: t.Expiry, ExpiresIn: t.ExpiresIn}
	extra := map[string]any{}
	for _, name := range extraKeys(t) {
		extra[name] = t.Extra(name)
	}
	if s, ok := extra[sealedExtra].(string); ok {
		delete(extra, sealedExtra)
		v, err := k.openValue(key, "extra", s)
		if err == nil && json.Unmarshal([]byte(v), &extra) != nil {
			err = &SealError{Key: key, Err: errors.New("extra is not a JSON object")}
		}
		if err != nil {
			return nil, err
		}
	} else if !k.AcceptPlaintext {
		for name := range extra {
			if name != "dpop_jkt" && name != refreshExpiryKey {
				return nil, &SealError{Key: key, Err: errors.New("extra not sealed")}
			}
		}
	}
	if len(extra) > 0 {
		o = o.WithExtra(extra)
	}
	return o, nil
}

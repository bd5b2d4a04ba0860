package store

// sealer.go owns encryption at rest: a Sealer, and Seal, which applies it to any Store.

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

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/internal/marks"
	"github.com/tokenkit/oauth2refresh/internal/quote"
	"golang.org/x/oauth2"
)

// Sealer encrypts the secrets of stored tokens with AES-256-GCM (NIST SP 800-38D, an AEAD),
// under keys named by key ids so that keys can rotate: it seals with its current key and opens
// with any key it holds. Make one with NewSealer, apply it with Seal. It is safe for use
// by any number of goroutines once AcceptPlaintext is set.
type Sealer struct {
	// AcceptPlaintext lets Seal return stored values that have nothing sealed in them, as
	// a store kept before it was sealed holds them; each is sealed at the grant's next save.
	// Leave it false once every grant was saved again: an unsealed value is then a *SealError,
	// so that whoever can write to the store cannot put a token or a dead mark of their own in
	// place of a grant's. (A grant found dead before the store was sealed is never saved
	// again: its clear dead mark is then a *SealError too, until the grant is seeded anew.) A
	// value with something sealed in it is read by Seal's rules alone, whatever
	// AcceptPlaintext says.
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
		return nil, fmt.Errorf("oauth2refresh: making sealer: no key with the current id %q", quote.Truncate(current, 64))
	}
	k := &Sealer{current: current, aeads: make(map[string]cipher.AEAD, len(keys))}
	for id, key := range keys {
		if id == "" || len(id) > 64 || strings.TrimLeft(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
			return nil, fmt.Errorf("oauth2refresh: making sealer: invalid key id %q", quote.Truncate(id, 64))
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

// SealError reports a stored token that Seal cannot open: sealed with a key id the Sealer
// does not hold (Err is ErrUnknownSealKey), sealed for another grant key (a value copied from
// another grant), altered, with a member beside the sealed value, or not sealed while
// Sealer.AcceptPlaintext is false (see Seal). The store's
// Load and Lock return it, Lock then holding no lease: the TokenSource reports it and sends
// nothing. Its text never quotes the value.
type SealError struct {
	Key   string // the grant's key
	KeyID string // the key id the value was sealed with; empty if it is not sealed
	Err   error  // what is wrong
}

func (e *SealError) Error() string {
	s := "oauth2refresh: stored token for key " + quote.Key(e.Key) + " cannot be opened"
	if e.KeyID != "" {
		s += fmt.Sprintf(" (key id %q)", e.KeyID)
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns e.Err.
func (e *SealError) Unwrap() error { return e.Err }

// sealedPrefix begins every sealed value: "sealed.v1.<key id>.<base64url(nonce, ciphertext, tag)>".
// Both layouts (see Seal) share it; their associated data tells them apart.
const sealedPrefix = "sealed.v1."

// sealedExtra is the Extra member in which the previous layout kept the other Extra values
// sealed.
const sealedExtra = "oauth2refresh_sealed"

// Seal returns an oauth2refresh.Store that keeps its tokens in s sealed by k, whatever s is.
//
// Each token saved, a dead mark (see oauth2refresh.DeadGrantError) included, is sealed whole: its
// stored-token format (see Encode) is encrypted and authenticated as one value,
// with the key id and the grant key bound as associated data, and s is given a token holding
// that value alone, as its refresh token, "sealed.v1.<key id>.<base64url>". So everything the
// library reads of a grant comes out of the sealed value: the access and refresh tokens, the
// token type, expiry and expires_in, the refresh-token expiry, the DPoP key thumbprint, every
// Extra member, a dead mark with its reason and time. Load, Lock and Lease.Token return the
// tokens opened. A value that does not open is a *SealError, and so is a value with any member
// beside the sealed one, a value copied from another grant key, or a sealed value moved to
// another member: the TokenSource then reports it and sends nothing.
//
// What whoever can write to s can still do: see the grant keys, the store's version numbers
// and the size of each value; delete a grant, or put a value in its place that is refused;
// and put back an older value of the same grant, which still opens: sealing keeps a token
// secret, unaltered and to its grant, not fresh.
//
// Values not written so. With k.AcceptPlaintext, a value with nothing sealed in it, token or
// dead mark, as a store kept before it was sealed, is returned as it is; without, it is a
// *SealError. A value sealed by an earlier release (the access token, refresh token and Extra
// values sealed one by one, each bound to its member and the grant key, the token type,
// expiry, expires_in, refresh_expiry and dpop_jkt in clear) is read once, with or without
// AcceptPlaintext, for what it authenticates: its refresh token and Extra values. It is a
// *SealError if a token in it is not sealed, or if it has a clear Extra value beside the
// sealed ones (any member of "extra" but the sealed one). Its
// access token, token type, expiry, expires_in and refresh_expiry are left out, so that
// editing them changes nothing and the grant is refreshed at its first use, then saved sealed
// whole; its dpop_jkt is kept, which a store writer can still change or remove until then (a
// changed one makes the TokenSource refuse the grant; a removed one lets an oauth2refresh.Endpoint
// without the grant's DPoP key send the refresh token to its own token server, as before the grant
// was bound). Earlier releases refuse a value sealed whole as a *SealError and send nothing:
// going back to one loses no grant, but leaves those saved since refused until the upgrade
// comes back.
//
// The Store returned passes Delete on to s.
func Seal(s oauth2refresh.Store, k *Sealer) oauth2refresh.Store {
	return sealedStore{s, k}
}

type sealedStore struct {
	s oauth2refresh.Store
	k *Sealer
}

func (ss sealedStore) Delete(ctx context.Context, key string) error { return ss.s.Delete(ctx, key) }

func (ss sealedStore) Load(ctx context.Context, key string) (*oauth2.Token, error) {
	t, err := ss.s.Load(ctx, key)
	if err != nil || t == nil {
		return t, err
	}
	return ss.k.open(key, t)
}

func (ss sealedStore) Lock(ctx context.Context, key string, ttl time.Duration) (oauth2refresh.Lease, error) {
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
	oauth2refresh.Lease
	k   *Sealer
	key string
	t   *oauth2.Token // the stored token, opened
}

func (l *sealedLease) Token() *oauth2.Token { return l.t }

func (l *sealedLease) Save(ctx context.Context, t *oauth2.Token) error {
	if t == nil {
		return l.Lease.Save(ctx, t)
	}
	b, err := Encode(t, 1) // the version is the store's: this one is not read
	if err != nil {
		return err
	}
	v := l.k.aeads[l.k.current].Seal(nil, nil, b, sealAD(l.k.current, l.key))
	return l.Lease.Save(ctx, &oauth2.Token{RefreshToken: sealedPrefix + l.k.current + "." + base64.RawURLEncoding.EncodeToString(v)})
}

// sealAD is the associated data of a token sealed whole: the layout, the key id and the grant
// key.
func sealAD(id, key string) []byte {
	return []byte("oauth2refresh sealed v2\x00" + id + "\x00" + key)
}

// sealADv1 is the associated data of a member of key's token sealed by an earlier release.
func sealADv1(key, field string) []byte {
	return []byte("oauth2refresh sealed v1\x00" + field + "\x00" + key)
}

// openValue returns what v, a sealed value of key's grant called what, holds; ad returns its
// associated data for the key id it was sealed with.
func (k *Sealer) openValue(key, what, v string, ad func(id string) []byte) ([]byte, error) {
	rest, ok := strings.CutPrefix(v, sealedPrefix)
	if !ok {
		return nil, &SealError{Key: key, Err: fmt.Errorf("%s not sealed", what)}
	}
	id, data, _ := strings.Cut(rest, ".")
	a := k.aeads[id]
	if a == nil {
		return nil, &SealError{Key: key, KeyID: quote.Truncate(id, 64), Err: ErrUnknownSealKey}
	}
	b, err := base64.RawURLEncoding.DecodeString(data)
	if err == nil {
		b, err = a.Open(nil, nil, b, ad(id))
	}
	if err != nil {
		return nil, &SealError{Key: key, KeyID: id, Err: fmt.Errorf("%s does not open: altered, or sealed for another grant key", what)}
	}
	return b, nil
}

// open returns the token that t, as stored for key, seals (see Seal).
func (k *Sealer) open(key string, t *oauth2.Token) (*oauth2.Token, error) {
	if !strings.HasPrefix(t.AccessToken, sealedPrefix) && !strings.HasPrefix(t.RefreshToken, sealedPrefix) && t.Extra(sealedExtra) == nil {
		if k.AcceptPlaintext {
			return t, nil
		}
		what := "token"
		if marks.DeadOf(t) != nil {
			what = "dead mark"
		}
		return nil, &SealError{Key: key, Err: fmt.Errorf("%s not sealed", what)}
	}
	b, err := k.openValue(key, "token", t.RefreshToken, func(id string) []byte { return sealAD(id, key) })
	switch {
	case err == nil:
		id, _, _ := strings.Cut(strings.TrimPrefix(t.RefreshToken, sealedPrefix), ".")
		if t.AccessToken != "" || t.TokenType != "" || !t.Expiry.IsZero() || t.ExpiresIn != 0 || len(extraKeys(t)) > 0 {
			return nil, &SealError{Key: key, KeyID: id, Err: errors.New("clear members beside the sealed token")}
		}
		o, _, err := Decode(key, "", b)
		if err != nil {
			return nil, &SealError{Key: key, KeyID: id, Err: errors.New("sealed token not in the stored-token format")}
		}
		return o, nil
	case errors.Is(err, ErrUnknownSealKey):
		return nil, err
	}
	return k.openV1(key, t)
}

// openV1 returns the token that t, as stored for key by an earlier release, seals: only its
// refresh token, Extra values and dpop_jkt (see Seal).
func (k *Sealer) openV1(key string, t *oauth2.Token) (*oauth2.Token, error) {
	field := func(name, v string) (string, error) {
		if v == "" {
			return "", nil
		}
		b, err := k.openValue(key, name, v, func(string) []byte { return sealADv1(key, name) })
		return string(b), err
	}
	for _, name := range extraKeys(t) {
		if name != sealedExtra && name != "dpop_jkt" && name != marks.RefreshExpiryKey {
			return nil, &SealError{Key: key, Err: errors.New("clear Extra member beside sealed ones")}
		}
	}
	if _, err := field("access_token", t.AccessToken); err != nil {
		return nil, err
	}
	rt, err := field("refresh_token", t.RefreshToken)
	if err != nil {
		return nil, err
	}
	extra := map[string]any{}
	if v := t.Extra(sealedExtra); v != nil {
		s, _ := v.(string)
		if s == "" {
			return nil, &SealError{Key: key, Err: errors.New("extra not sealed")}
		}
		b, err := field("extra", s)
		if err == nil && json.Unmarshal([]byte(b), &extra) != nil {
			err = &SealError{Key: key, Err: errors.New("extra is not a JSON object")}
		}
		if err != nil {
			return nil, err
		}
	}
	if jkt, _ := t.Extra("dpop_jkt").(string); jkt != "" {
		extra["dpop_jkt"] = jkt
	}
	o := &oauth2.Token{RefreshToken: rt}
	if len(extra) > 0 {
		o = o.WithExtra(extra)
	}
	return o, nil
}

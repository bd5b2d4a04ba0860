package oauth2refresh

// dpop.go binds tokens to a key of the client (DPoP, RFC 9449): the proofs sent with token
// requests (endpoint.go) and with API requests (transport.go), the nonces servers hand out,
// and the check that a stored token is bound to the key at hand (store.go).

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tokenkit/oauth2refresh/events"

	"golang.org/x/oauth2"
)

// DPoPKey binds tokens to the client holding it (DPoP, RFC 9449). Set as Endpoint.DPoP, it
// signs a proof for every request of the Endpoint and of its Transport, and answers the
// servers' nonce challenges. A bound token works only with its key: keep the key as long as
// the grant, and give the same one to every process that shares the grant. It is safe for
// concurrent use.
type DPoPKey struct {
	key crypto.Signer
	alg string
	jwk []byte // the public key as a JWK (RFC 7517) with the members of RFC 7638 §3.2 alone
	jkt string // its RFC 7638 thumbprint

	mu     sync.Mutex            // guards nonces and uses
	nonces map[string]nonceEntry // origin -> the last DPoP-Nonce it sent; at most maxNonceOrigins
	uses   uint64                // nonces looked up or learnt so far: the clock of nonceEntry.used
}

// nonceEntry is the nonce of an origin, and when it was last used (DPoPKey.uses).
//
// Nonces (RFC 9449 §8, §9) are kept per origin (scheme, host and port) and learnt from the
// DPoP-Nonce header of every response of the Endpoint and the Transport, so that requests
// carry the latest one. A token request refused with use_dpop_nonce is sent again once with
// the new nonce: the server refused it before it judged the grant, so the refresh token is
// not spent. An API response 401 with a DPoP-Nonce header and a DPoP challenge whose error is
// use_dpop_nonce (nonceChallenge) makes the Transport send the request again once, if it can
// be replayed, and does not invalidate the token. A nonce is kept only if it has the syntax
// of RFC 9449 §8.1 and at most maxNonceLen bytes (validNonce): another one is ignored, the
// origin's last good nonce stays in use, and a challenge that hands out no nonce to keep is
// not answered with a retry. The nonces of the maxNonceOrigins origins used last are kept.
//
// A proof's iat is the system clock's (time.Now), also for a TokenSource made with
// WithClock: the server judges iat by its own clock (RFC 9449 §4.3, §11.1), so a TokenSource
// whose clock a test has moved still sends proofs that a real server accepts.
type nonceEntry struct {
	nonce string
	used  uint64
}

// The bounds of the nonces a DPoPKey keeps (see DPoPKey).
const (
	maxNonceLen     = 1 << 10
	maxNonceOrigins = 64
)

// NewDPoPKey returns a DPoPKey that signs with key: ECDSA P-256 (ES256), Ed25519 (EdDSA),
// RSA (RS256), or a crypto.Signer of one (a KMS or HSM key).
func NewDPoPKey(key crypto.Signer) (*DPoPKey, error) {
	if key == nil {
		return nil, errors.New("oauth2refresh: DPoP key: nil key")
	}
	alg, err := keyAlg(key, "")
	if err != nil {
		return nil, fmt.Errorf("oauth2refresh: DPoP key: %w", err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	var jwk string // RFC 7638 §3.2: the required members only, in lexicographic order
	switch k := key.Public().(type) {
	case *ecdsa.PublicKey:
		p, err := k.Bytes() // 0x04 || x || y (SEC 1 §2.3.3), 32 bytes each on P-256
		if err != nil {
			return nil, fmt.Errorf("oauth2refresh: DPoP key: %w", err)
		}
		jwk = `{"crv":"P-256","kty":"EC","x":"` + b64(p[1:33]) + `","y":"` + b64(p[33:]) + `"}`
	case ed25519.PublicKey:
		jwk = `{"crv":"Ed25519","kty":"OKP","x":"` + b64(k) + `"}`
	case *rsa.PublicKey:
		jwk = `{"e":"` + b64(big.NewInt(int64(k.E)).Bytes()) + `","kty":"RSA","n":"` + b64(k.N.Bytes()) + `"}`
	}
	sum := sha256.Sum256([]byte(jwk))
	return &DPoPKey{key: key, alg: alg, jwk: []byte(jwk), jkt: b64(sum[:]), nonces: map[string]nonceEntry{}}, nil
}

// Thumbprint returns the key's RFC 7638 SHA-256 thumbprint, base64url: the jkt of a bound
// token, and its "dpop_jkt" Extra member.
func (k *DPoPKey) Thumbprint() string { return k.jkt }

// Proof returns a new proof for a request this package does not send (such as the code
// exchange), with the origin's last nonce, and ath when accessToken is set.
func (k *DPoPKey) Proof(method, rawURL, accessToken string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", errors.New("oauth2refresh: DPoP proof: URL does not parse")
	}
	return k.proof(method, u, accessToken)
}

// dpopHeader and dpopClaims are the JOSE header and the claims of a proof (RFC 9449 §4.2).
type dpopHeader struct {
	Typ string          `json:"typ"`
	Alg string          `json:"alg"`
	JWK json.RawMessage `json:"jwk"`
}

type dpopClaims struct {
	Jti   string `json:"jti"`
	Htm   string `json:"htm"`
	Htu   string `json:"htu"`
	Iat   int64  `json:"iat"`
	Nonce string `json:"nonce,omitempty"`
	Ath   string `json:"ath,omitempty"`
}

// proof makes a proof for method and u, with ath when accessToken is not empty. Its iat is
// the system clock's: see DPoPKey.
func (k *DPoPKey) proof(method string, u *url.URL, accessToken string) (string, error) {
	if k.key == nil {
		return "", errors.New("oauth2refresh: DPoP proof: DPoPKey not made by NewDPoPKey")
	}
	if method == "" {
		method = http.MethodGet // as net/http reads an empty Request.Method
	}
	// htu is the request's URI without query, fragment or user (RFC 9449 §4.2), the path as
	// it goes on the wire: an empty one is "/" (RFC 3986 §6.2.3), as net/http sends it.
	htu := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	if htu.Path == "" {
		htu.Path, htu.RawPath = "/", ""
	}
	c := dpopClaims{Jti: rand.Text(), Htm: method, Htu: htu.String(), Iat: time.Now().Unix(), Nonce: k.nonce(u)}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		c.Ath = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	p, err := signJWT(dpopHeader{Typ: "dpop+jwt", Alg: k.alg, JWK: k.jwk}, c, signer(k.key, k.alg))
	if err != nil {
		return "", fmt.Errorf("oauth2refresh: DPoP proof: %w", err)
	}
	return p, nil
}

// origin returns u's scheme://host:port, the port filled in.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "443"
		if strings.EqualFold(u.Scheme, "http") {
			port = "80"
		}
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Hostname()) + ":" + port
}

// nonce returns the nonce last learnt from u's origin, or "".
func (k *DPoPKey) nonce(u *url.URL) string {
	o := origin(u)
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.nonces[o]
	if ok {
		k.uses++
		e.used = k.uses
		k.nonces[o] = e
	}
	return e.nonce
}

// learn keeps the DPoP-Nonce of a response from u's origin, if it has one that validNonce
// accepts, and reports whether it did. At maxNonceOrigins origins, a new one takes the place
// of the one used longest ago.
func (k *DPoPKey) learn(u *url.URL, h http.Header) bool {
	n := h.Get("DPoP-Nonce")
	if !validNonce(n) {
		return false
	}
	o := origin(u)
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.nonces[o]
	if !ok && len(k.nonces) >= maxNonceOrigins {
		var oldest string
		least := ^uint64(0)
		for o, e := range k.nonces {
			if e.used < least {
				oldest, least = o, e.used
			}
		}
		delete(k.nonces, oldest)
	}
	if e.nonce != n {
		e.nonce = strings.Clone(n) // not a piece of a larger buffer
	}
	k.uses++
	e.used = k.uses
	k.nonces[o] = e
	return true
}

// validNonce reports whether n is a nonce to keep: 1*NQCHAR (RFC 9449 §8.1; NQCHAR = %x21 /
// %x23-5B / %x5D-7E), at most maxNonceLen bytes.
func validNonce(n string) bool {
	if n == "" || len(n) > maxNonceLen {
		return false
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// isDPoP reports whether t is a DPoP-bound token (token_type DPoP, RFC 9449 §5).
func isDPoP(t *oauth2.Token) bool { return strings.EqualFold(t.TokenType, "DPoP") }

// roundTrip sends r, a request the Transport owns, with t as a DPoP-bound token (RFC 9449
// §7.1) and a proof, and once more with the new nonce when the resource server asks for one
// and r can be replayed. k may be nil: then t cannot be used, which is an error.
func (k *DPoPKey) roundTrip(base http.RoundTripper, r *http.Request, t *oauth2.Token, emit func(events.Event)) (*http.Response, error) {
	if k == nil {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, errors.New("oauth2refresh: token is DPoP-bound (token_type DPoP) and the Endpoint has no DPoP key")
	}
	for try := 0; ; try++ {
		p, err := k.proof(r.Method, r.URL, t.AccessToken)
		if err != nil {
			if r.Body != nil {
				r.Body.Close()
			}
			return nil, err
		}
		r.Header.Set("Authorization", "DPoP "+t.AccessToken)
		r.Header.Set("DPoP", p)
		resp, err := base.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		learnt := k.learn(r.URL, resp.Header)
		body := r.Body
		if try > 0 || !learnt || !nonceChallenge(resp) {
			return resp, nil
		}
		if body != nil && body != http.NoBody {
			if r.GetBody == nil {
				return resp, nil
			}
			if body, err = r.GetBody(); err != nil {
				return resp, nil
			}
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // let the connection be reused
		resp.Body.Close()
		emit(events.Event{Kind: events.NonceRetry, Status: resp.StatusCode})
		r = r.Clone(r.Context())
		r.Body = body
	}
}

// nonceChallenge reports whether resp is a resource server's request to use the nonce it
// sends (RFC 9449 §9): a 401 with a DPoP-Nonce header and, among the challenges of its
// WWW-Authenticate fields, a DPoP challenge whose error is use_dpop_nonce, beside others in
// the same field or not (RFC 9110 §11.6.1). The token was not judged: it must not be
// invalidated.
func nonceChallenge(resp *http.Response) bool {
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("DPoP-Nonce") == "" {
		return false
	}
	for _, c := range parseChallenges(resp.Header.Values("WWW-Authenticate")) {
		if strings.EqualFold(c.Scheme, "DPoP") && c.Params["error"] == "use_dpop_nonce" {
			return true
		}
	}
	return false
}

// useDPoPNonce reports whether err is a token endpoint's request to use the nonce it sent
// (RFC 9449 §8), one that validNonce accepts: the grant was not judged, and the request may
// be sent again.
func useDPoPNonce(err error) bool {
	var re *RequestError
	return errors.As(err, &re) && re.Code == "use_dpop_nonce" && validNonce(re.Header.Get("DPoP-Nonce"))
}

// nonceRefusal reports whether err is a token endpoint's use_dpop_nonce (RFC 9449 §8), with or
// without a nonce: a refusal of the proof, not of the client's credentials (AuthAutoDetect).
func nonceRefusal(err error) bool {
	var re *RequestError
	return errors.As(err, &re) && re.Code == "use_dpop_nonce"
}

// DPoPKeyError is a stored token bound to another DPoP key than the Endpoint's, or to one
// while it has none: it cannot be used, and nothing is sent.
type DPoPKeyError struct {
	// Key is the grant's key in the Store.
	Key string
	// Stored and Have are the thumbprints of the token's key and the Endpoint's ("" if none).
	Stored string
	Have   string
}

func (e *DPoPKeyError) Error() string {
	have := "no DPoP key"
	if e.Have != "" {
		have = "DPoP key " + e.Have
	}
	return "oauth2refresh: stored token for key " + quoteKey(e.Key) + " is bound to DPoP key " +
		e.Stored + ", and the Endpoint has " + have
}

// checkBinding returns a *DPoPKeyError if t, stored under key, is bound to a DPoP key other
// than e's.
func (e *Endpoint) checkBinding(key string, t *oauth2.Token) error {
	if t == nil {
		return nil
	}
	stored, _ := t.Extra("dpop_jkt").(string)
	var have string
	if e.DPoP != nil {
		have = e.DPoP.jkt
	}
	if stored == "" || stored == have {
		return nil
	}
	return &DPoPKeyError{Key: key, Stored: stored, Have: have}
}

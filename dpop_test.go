package oauth2refresh_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh/events"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store"
	"github.com/tokenkit/oauth2refresh/store/filestore"
	"golang.org/x/oauth2"
)

// dpopVerifier checks DPoP proofs (RFC 9449 §4.3) the way a server does, independently of
// the package: it parses the compact JWS by hand, verifies the signature with the jwk of its
// header, checks typ, htm, htu, iat, ath and the nonce of the server it stands for, and
// refuses any jti it saw before, on any server of the run. Failures are test errors.
type dpopVerifier struct {
	t *testing.T

	mu     sync.Mutex        // guards the fields below
	jtis   map[string]bool   // every jti seen in the run
	nonces map[string]string // server name -> the nonce it requires now ("" for none)
	n      int               // nonces handed out
	bound  map[string]string // refresh and access tokens -> the jkt they are bound to (cnf.jkt)
	sent   map[string]string // server name -> the nonce of the last proof it checked
}

func newDPoPVerifier(t *testing.T) *dpopVerifier {
	return &dpopVerifier{t: t, jtis: map[string]bool{}, nonces: map[string]string{}, bound: map[string]string{}, sent: map[string]string{}}
}

// rotate makes server require a new nonce, and returns it.
func (v *dpopVerifier) rotate(server string) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.n++
	v.nonces[server] = fmt.Sprintf("nonce-%d", v.n)
	return v.nonces[server]
}

func (v *dpopVerifier) nonce(server string) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.nonces[server]
}

// sentNonce returns the nonce of the last proof server checked.
func (v *dpopVerifier) sentNonce(server string) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.sent[server]
}

func (v *dpopVerifier) bind(token, jkt string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.bound[token] = jkt
}

func (v *dpopVerifier) boundTo(token string) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.bound[token]
}

// testThumbprint is the RFC 7638 thumbprint of a public key, made by the test.
func testThumbprint(pub crypto.PublicKey) string {
	b64 := base64.RawURLEncoding.EncodeToString
	var s string
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		p, _ := k.Bytes()
		s = fmt.Sprintf(`{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}`, b64(p[1:33]), b64(p[33:]))
	case ed25519.PublicKey:
		s = fmt.Sprintf(`{"crv":"Ed25519","kty":"OKP","x":"%s"}`, b64(k))
	case *rsa.PublicKey:
		s = fmt.Sprintf(`{"e":"%s","kty":"RSA","n":"%s"}`, b64(big.NewInt(int64(k.E)).Bytes()), b64(k.N.Bytes()))
	}
	sum := sha256.Sum256([]byte(s))
	return b64(sum[:])
}

// check verifies the proof of r for server, which requires ath for accessToken when it is not
// empty. It returns the jkt of the proof's key, and whether the nonce was the one required.
func (v *dpopVerifier) check(r *http.Request, server, accessToken string) (jkt string, nonceOK bool) {
	t := v.t
	t.Helper()
	proofs := r.Header.Values("DPoP")
	if len(proofs) != 1 {
		t.Errorf("%s: %d DPoP headers, want 1", server, len(proofs))
		return "", false
	}
	parts := strings.Split(proofs[0], ".")
	if len(parts) != 3 {
		t.Errorf("%s: proof has %d parts", server, len(parts))
		return "", false
	}
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Errorf("%s: proof part is not base64url: %v", server, err)
		}
		return b
	}
	var h struct {
		Typ, Alg string
		JWK      map[string]string
	}
	var c struct {
		Jti, Htm, Htu, Nonce, Ath string
		Iat                       int64
	}
	if err := json.Unmarshal(dec(parts[0]), &h); err != nil {
		t.Errorf("%s: proof header: %v", server, err)
	}
	if err := json.Unmarshal(dec(parts[1]), &c); err != nil {
		t.Errorf("%s: proof claims: %v", server, err)
	}
	in, sig := []byte(parts[0]+"."+parts[1]), dec(parts[2])
	digest := sha256.Sum256(in)
	n := func(m string) *big.Int { return new(big.Int).SetBytes(dec(h.JWK[m])) }
	var ok bool
	var pub crypto.PublicKey
	switch {
	case h.Alg == "ES256" && h.JWK["kty"] == "EC" && h.JWK["crv"] == "P-256" && len(sig) == 64:
		k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, dec(h.JWK["x"])...), dec(h.JWK["y"])...))
		if err == nil {
			ok, pub = ecdsa.Verify(k, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])), k
		}
	case h.Alg == "EdDSA" && h.JWK["kty"] == "OKP" && h.JWK["crv"] == "Ed25519":
		k := ed25519.PublicKey(dec(h.JWK["x"]))
		ok, pub = len(k) == ed25519.PublicKeySize && ed25519.Verify(k, in, sig), k
	case h.Alg == "RS256" && h.JWK["kty"] == "RSA":
		k := &rsa.PublicKey{N: n("n"), E: int(n("e").Int64())}
		ok, pub = rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) == nil, k
	}
	if !ok {
		t.Errorf("%s: proof signature does not verify (alg %q, jwk %v)", server, h.Alg, h.JWK)
		return "", false
	}
	if _, private := h.JWK["d"]; private || h.Typ != "dpop+jwt" {
		t.Errorf("%s: proof header typ %q, jwk with d: %v", server, h.Typ, private)
	}
	// htu is the URI of the request without query and fragment (RFC 9449 §4.2), its path as
	// it was sent: "/" for an empty one (RFC 3986 §6.2.3), escapes kept.
	if want := "http://" + r.Host + r.URL.EscapedPath(); c.Htm != r.Method || c.Htu != want {
		t.Errorf("%s: htm %q htu %q, want %q %q", server, c.Htm, c.Htu, r.Method, want)
	}
	// The server's clock is the system's: the TokenSources under test run on a fake clock
	// (WithClock) set years away, which proofs must not follow.
	if d := time.Now().Unix() - c.Iat; d < -60 || d > 60 {
		t.Errorf("%s: iat %d is %d s from now", server, c.Iat, d)
	}
	wantAth := ""
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		wantAth = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if c.Ath != wantAth {
		t.Errorf("%s: ath %q, want %q", server, c.Ath, wantAth)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(c.Jti) < 16 || v.jtis[c.Jti] {
		t.Errorf("%s: jti %q reused or short", server, c.Jti)
	}
	v.jtis[c.Jti] = true
	v.sent[server] = c.Nonce
	return testThumbprint(pub), c.Nonce == v.nonces[server]
}

// dpopGate makes ts a DPoP token endpoint checked by v: proofs verified, nonce challenges
// (400 use_dpop_nonce, RFC 9449 §8), the refresh token sent bound to the proof's key, and
// tokens of type DPoP bound to it. It counts the challenges.
func dpopGate(ts *tokenServer, v *dpopVerifier, challenges *atomic.Int64) {
	ts.gate = func(w http.ResponseWriter, r *http.Request) bool {
		jkt, nonceOK := v.check(r, "token", "")
		if !nonceOK {
			challenges.Add(1)
			w.Header().Set("DPoP-Nonce", v.nonce("token"))
			respond(w, http.StatusBadRequest, "application/json", `{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof"}`)
			return false
		}
		if rt := r.PostForm.Get("refresh_token"); v.boundTo(rt) != jkt {
			v.t.Errorf("token: refresh token bound to %q, proof by key %q", v.boundTo(rt), jkt)
		}
		r.Header.Set("X-Test-Jkt", jkt) // for onIssue
		return true
	}
	ts.onIssue = func(r *http.Request, tok map[string]any) {
		tok["token_type"] = "DPoP"
		jkt := r.Header.Get("X-Test-Jkt")
		v.bind(tok["access_token"].(string), jkt)
		v.bind(tok["refresh_token"].(string), jkt)
	}
}

// dpopAPI is a resource server that accepts DPoP-bound access tokens (RFC 9449 §7) checked by
// v, and asks for nonces with 401 and WWW-Authenticate (§9). announce makes the next success
// rotate the nonce and announce the new one in its DPoP-Nonce header.
type dpopAPI struct {
	*httptest.Server
	rotateAt   map[int64]bool // request numbers (1-based) that rotate the nonce first; set before use
	challenge  []string       // the WWW-Authenticate fields of a nonce challenge, if not the usual one; set before use
	seen       atomic.Int64
	announce   atomic.Bool
	challenges atomic.Int64
	served     atomic.Int64
}

func newDPoPAPI(t *testing.T, v *dpopVerifier) *dpopAPI {
	a := &dpopAPI{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at, ok := strings.CutPrefix(r.Header.Get("Authorization"), "DPoP ")
		if !ok {
			t.Errorf("api: Authorization %q is not DPoP", r.Header.Get("Authorization"))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if a.rotateAt[a.seen.Add(1)] {
			v.rotate("api")
		}
		jkt, nonceOK := v.check(r, "api", at)
		if !nonceOK {
			a.challenges.Add(1)
			w.Header().Set("DPoP-Nonce", v.nonce("api"))
			w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`)
			if a.challenge != nil {
				w.Header()["Www-Authenticate"] = a.challenge
			}
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if b := v.boundTo(at); b == "" || b != jkt {
			t.Errorf("api: access token bound to %q, proof by key %q", b, jkt)
		}
		if r.Body != nil {
			body, _ := io.ReadAll(r.Body)
			if r.Method == http.MethodPost && string(body) != "payload" {
				t.Errorf("api: body %q", body)
			}
		}
		if a.announce.CompareAndSwap(true, false) {
			w.Header().Set("DPoP-Nonce", v.rotate("api"))
		}
		a.served.Add(1)
		io.WriteString(w, "ok "+at)
	}))
	t.Cleanup(a.Close)
	return a
}

func dpopKeys(t *testing.T) map[string]crypto.Signer {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rs, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]crypto.Signer{"ES256": ec, "EdDSA": ed, "RS256": rs}
}

// dpopCounts are what the servers saw.
type dpopCounts struct {
	TokenRequests, TokenChallenges, APIServed, APIChallenges int64
}

func TestDPoP(t *testing.T) {
	for alg, key := range dpopKeys(t) {
		t.Run(alg, func(t *testing.T) {
			clk := newFakeClock()
			v := newDPoPVerifier(t)
			dk, err := oauth2refresh.NewDPoPKey(key)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := dk.Thumbprint(), testThumbprint(key.Public()); got != want {
				t.Fatalf("Thumbprint() = %q, want %q", got, want)
			}
			ts := newTokenServer(t, "rt-0", 3600)
			v.bind("rt-0", testThumbprint(key.Public())) // the grant was made with this key
			var tokChallenges atomic.Int64
			dpopGate(ts, v, &tokChallenges)
			api := newDPoPAPI(t, v)
			v.rotate("token")
			v.rotate("api")

			ep := ts.endpoint()
			ep.DPoP = dk
			src := ep.TokenSource(context.Background(), &oauth2.Token{RefreshToken: "rt-0"}, oauth2refresh.WithClock(clk.now))
			client := oauth2refresh.NewClient(context.Background(), src)
			counts := func() dpopCounts {
				return dpopCounts{ts.requests.Load(), tokChallenges.Load(), api.served.Load(), api.challenges.Load()}
			}
			do := func(method string, body io.Reader, want int) {
				t.Helper()
				req, _ := http.NewRequest(method, api.URL+"/v1/items?page=2#frag", body)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Fatalf("API: %d %s, want %d", resp.StatusCode, b, want)
				}
			}
			get := func(method string) {
				t.Helper()
				var body io.Reader
				if method == http.MethodPost {
					body = strings.NewReader("payload") // replayable: GetBody is set
				}
				do(method, body, http.StatusOK)
			}
			steps := []struct {
				name string
				do   func()
				want dpopCounts
			}{
				{"first request: both servers ask for a nonce, once", func() { get(http.MethodGet) }, dpopCounts{2, 1, 1, 1}},
				{"nonces are kept per origin", func() { get(http.MethodPost) }, dpopCounts{2, 1, 2, 1}},
				{"API nonce rotated: one challenge, token kept", func() { v.rotate("api"); get(http.MethodGet) }, dpopCounts{2, 1, 3, 2}},
				{"API nonce announced in a 200 is used", func() { api.announce.Store(true); get(http.MethodGet); get(http.MethodPost) }, dpopCounts{2, 1, 5, 2}},
				{"body that cannot be replayed: the challenge is returned, token kept", func() {
					v.rotate("api")
					do(http.MethodPost, io.NopCloser(strings.NewReader("payload")), http.StatusUnauthorized)
					get(http.MethodGet)
				}, dpopCounts{2, 1, 6, 3}},
				{"token nonce rotated, token expired: refresh sent again once", func() { v.rotate("token"); clk.advance(time.Hour); get(http.MethodGet) }, dpopCounts{4, 2, 7, 3}},
				{"refresh with the kept nonce", func() { clk.advance(time.Hour); get(http.MethodPost) }, dpopCounts{5, 2, 8, 3}},
			}
			for _, s := range steps {
				s.do()
				if diff := cmp.Diff(s.want, counts()); diff != "" {
					t.Fatalf("%s: counts (-want +got):\n%s", s.name, diff)
				}
			}
			tok, err := src.Token()
			if err != nil {
				t.Fatal(err)
			}
			if got := []any{tok.Type(), tok.Extra("dpop_jkt"), ts.reused.Load(), ts.isRevoked()}; !cmp.Equal(got, []any{"DPoP", dk.Thumbprint(), int64(0), false}) {
				t.Errorf("token type, dpop_jkt, refresh tokens reused, revoked = %v", got)
			}
		})
	}
}

// TestDPoPConcurrent: 64 goroutines call the API through one client while both servers rotate
// their nonces and the token is dropped, forcing refreshes: every proof verifies, no jti
// repeats, no refresh token is sent twice.
func TestDPoPConcurrent(t *testing.T) {
	clk := newFakeClock()
	v := newDPoPVerifier(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dk, _ := oauth2refresh.NewDPoPKey(key)
	ts := newTokenServer(t, "rt-0", 3600)
	v.bind("rt-0", testThumbprint(key.Public()))
	var tokChallenges atomic.Int64
	dpopGate(ts, v, &tokChallenges)
	api := newDPoPAPI(t, v)
	// A challenged request is sent again at once: for its retry to meet the next rotation, 300
	// other requests would have to be served in between.
	api.rotateAt = map[int64]bool{1: true, 301: true, 601: true, 901: true}
	ep := ts.endpoint()
	ep.DPoP = dk
	var retries sync.Map // HTTP status of the challenge -> *atomic.Int64 of events.NonceRetry
	onEvent := func(ev events.Event) {
		if ev.Kind == events.NonceRetry {
			n, _ := retries.LoadOrStore(ev.Status, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
		}
	}
	src := ep.TokenSource(context.Background(), &oauth2.Token{RefreshToken: "rt-0"}, oauth2refresh.WithClock(clk.now),
		oauth2refresh.WithEvents(onEvent))
	client := oauth2refresh.NewClient(context.Background(), src)

	if _, err := src.Token(); err != nil {
		t.Fatal(err)
	}
	const workers, each = 64, 20
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				resp, err := client.Get(api.URL + "/v1/items")
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		}()
	}
	for range 6 {
		v.rotate("token")
		src.Invalidate(nil)
		if _, err := src.Token(); err != nil { // a refresh while the workers run
			t.Error(err)
		}
	}
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d API requests failed", n)
	}
	// One refresh, then six after a token nonce rotation: a challenge and the refresh each.
	got := []int64{api.served.Load(), ts.requests.Load(), tokChallenges.Load(), ts.reused.Load()}
	if want := []int64{workers * each, 13, 6, 0}; !cmp.Equal(got, want) {
		t.Errorf("API served, token requests, token nonce challenges, refresh tokens reused = %v, want %v", got, want)
	}
	// Every challenge answered was reported, by where it came from.
	count := func(status int) int64 {
		if n, ok := retries.Load(status); ok {
			return n.(*atomic.Int64).Load()
		}
		return 0
	}
	if got, want := []int64{count(400), count(401)}, []int64{tokChallenges.Load(), api.challenges.Load()}; !cmp.Equal(got, want) {
		t.Errorf("events.NonceRetry at the token endpoint, at the API = %v, want %v (the challenges the servers sent)", got, want)
	}
	if ts.isRevoked() {
		t.Error("grant revoked")
	}
}

// TestDPoPStoreRestart: a bound grant saved in a filestore.Store records its key's thumbprint; a
// restarted process resumes it with the same key, and another key (or none) is a
// *DPoPKeyError before any request.
func TestDPoPStoreRestart(t *testing.T) {
	clk := newFakeClock()
	v := newDPoPVerifier(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jkt := testThumbprint(key.Public())
	ts := newTokenServer(t, "rt-0", 3600)
	v.bind("rt-0", jkt)
	var tokChallenges atomic.Int64
	dpopGate(ts, v, &tokChallenges)
	api := newDPoPAPI(t, v)
	v.rotate("token")
	v.rotate("api")
	dir := t.TempDir()
	const grant = "user-42"

	// run is one process: its own DPoPKey (no nonce learnt yet) and TokenSource on the store.
	run := func(k crypto.Signer) (*oauth2refresh.TokenSource, error) {
		ep := ts.endpoint()
		if k != nil {
			dk, err := oauth2refresh.NewDPoPKey(k)
			if err != nil {
				t.Fatal(err)
			}
			ep.DPoP = dk
		}
		src := ep.TokenSource(context.Background(), &oauth2.Token{RefreshToken: "rt-0"},
			oauth2refresh.WithClock(clk.now), oauth2refresh.WithStore(&filestore.Store{Dir: dir}, grant))
		resp, err := oauth2refresh.NewClient(context.Background(), src).Get(api.URL + "/v1/me")
		if err != nil {
			return src, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("API: %d", resp.StatusCode)
		}
		return src, nil
	}
	if _, err := run(key); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 1 {
		t.Fatalf("store files: %v", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var stored map[string]any
	json.Unmarshal(b, &stored)
	if got := []any{stored["dpop_jkt"], stored["token_type"], stored["refresh_token"]}; !cmp.Equal(got, []any{jkt, "DPoP", "rt-1"}) {
		t.Errorf("stored dpop_jkt, token_type, refresh_token = %v, want %v", got, []any{jkt, "DPoP", "rt-1"})
	}

	// Restart with the same key: the stored token is used, then refreshed with its key.
	src, err := run(key)
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Hour)
	if _, err := src.Token(); err != nil {
		t.Fatal(err)
	}
	before := ts.requests.Load()
	if before != 4 { // two refreshes, each after a nonce challenge: the new process knew no nonce
		t.Errorf("token requests = %d, want 4", before)
	}

	// Restart with another key, or none: a clear error, nothing sent.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		have string
	}{{"other key", other, testThumbprint(other.Public())}, {"no key", nil, ""}} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(tc.key)
			var ke *oauth2refresh.DPoPKeyError
			if !errors.As(err, &ke) {
				t.Fatalf("err = %v, want a *DPoPKeyError", err)
			}
			if diff := cmp.Diff(oauth2refresh.DPoPKeyError{Key: grant, Stored: jkt, Have: tc.have}, *ke); diff != "" {
				t.Errorf("DPoPKeyError (-want +got):\n%s", diff)
			}
			if n := ts.requests.Load(); n != before {
				t.Errorf("%d token requests sent", n-before)
			}
		})
	}
	if ts.reused.Load() != 0 || ts.isRevoked() {
		t.Error("a refresh token was sent twice")
	}
}

// TestDPoPTokenWithoutProof: a DPoP-bound token cannot be sent without a proof. Through this
// package without a DPoPKey it is an error and nothing is sent; golang.org/x/oauth2's
// Transport sends "DPoP <token>" with no DPoP header, which a resource server refuses
// (RFC 9449 §7.1), as Endpoint.DPoP's godoc says.
func TestDPoPTokenWithoutProof(t *testing.T) {
	type seen struct{ Auth, DPoP string }
	var mu sync.Mutex
	var got []seen
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, seen{r.Header.Get("Authorization"), r.Header.Get("DPoP")})
		mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer api.Close()
	tok := &oauth2.Token{AccessToken: "at-1", TokenType: "DPoP", Expiry: time.Now().Add(time.Hour)}
	ep := &oauth2refresh.Endpoint{TokenURL: "https://token.example/token"}
	src := ep.TokenSource(context.Background(), tok)

	_, err := oauth2refresh.NewClient(context.Background(), src).Get(api.URL)
	if err == nil || !strings.Contains(err.Error(), "oauth2refresh: token is DPoP-bound (token_type DPoP) and the Endpoint has no DPoP key") {
		t.Errorf("oauth2refresh.NewClient: err = %v", err)
	}
	resp, err := oauth2.NewClient(context.Background(), src).Get(api.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if diff := cmp.Diff([]seen{{"DPoP at-1", ""}}, got); diff != "" {
		t.Errorf("requests the API saw (-want +got):\n%s", diff)
	}
}

// TestDPoPRedirect: on a redirect to another host, neither the token nor a proof goes along
// (the rule of Transport), and the nonce of the other origin is not sent to the first.
func TestDPoPRedirect(t *testing.T) {
	type seen struct{ Path, Auth, DPoP string }
	var mu sync.Mutex
	var got []seen
	record := func(r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		p := "none"
		if r.Header.Get("DPoP") != "" {
			p = "proof"
		}
		got = append(got, seen{r.URL.Path, r.Header.Get("Authorization"), p})
	}
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record(r)
		w.Header().Set("DPoP-Nonce", "other-origin")
	}))
	defer other.Close()
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1) // another host
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record(r)
		http.Redirect(w, r, otherURL+"/elsewhere", http.StatusFound)
	}))
	defer api.Close()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dk, _ := oauth2refresh.NewDPoPKey(key)
	ep := &oauth2refresh.Endpoint{TokenURL: "https://token.example/token", DPoP: dk}
	tok := &oauth2.Token{AccessToken: "at-1", TokenType: "DPoP", Expiry: time.Now().Add(time.Hour)}
	client := oauth2refresh.NewClient(context.Background(), ep.TokenSource(context.Background(), tok))
	resp, err := client.Get(api.URL + "/start")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := []seen{{"/start", "DPoP at-1", "proof"}, {"/elsewhere", "", "none"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests seen (-want +got):\n%s", diff)
	}
	p, err := dk.Proof(http.MethodGet, api.URL+"/start", "")
	if err != nil {
		t.Fatal(err)
	}
	if n := proofNonce(t, p); n != "" {
		t.Errorf("proof for the first origin carries the nonce %q", n)
	}
}

// proofNonce returns the nonce claim of the proof p.
func proofNonce(t *testing.T, p string) string {
	t.Helper()
	var c struct{ Nonce *string }
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(p+"..", ".")[1])
	if err != nil || json.Unmarshal(b, &c) != nil {
		t.Fatalf("proof claims %q do not decode", b)
	}
	if c.Nonce != nil && *c.Nonce == "" {
		t.Errorf("empty nonce claim")
	}
	if c.Nonce == nil {
		return ""
	}
	return *c.Nonce
}

// nqchars are the characters of a nonce (RFC 9449 §8.1): %x21 / %x23-5B / %x5D-7E.
func nqchars() string {
	var b []byte
	for c := byte(0x21); c <= 0x7e; c++ {
		if c != '"' && c != '\\' {
			b = append(b, c)
		}
	}
	return string(b)
}

// TestDPoPNonceSize: a nonce is kept only if it has the syntax of RFC 9449 §8.1 (1*NQCHAR)
// and at most 1 KiB, from a resource server (through a Transport) as from a token endpoint;
// another one is ignored, the last good one of the origin stays in use, and a challenge that
// hands out only such a nonce is not answered with a request that would be refused again.
func TestDPoPNonceSize(t *testing.T) {
	ctx := context.Background()
	v := newDPoPVerifier(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v.bind("at-1", testThumbprint(key.Public()))
	var hand atomic.Pointer[string] // the nonce the API hands out next
	var challenge atomic.Bool       // answer 401 with a nonce challenge
	var dpopLen atomic.Int64        // the size of the last DPoP header
	var requests atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		dpopLen.Store(int64(len(r.Header.Get("DPoP"))))
		v.check(r, "api", "at-1")
		n := hand.Load() // a challenge hands out its nonce every time, an answer once
		if !challenge.Load() {
			n = hand.Swap(nil)
		}
		if n != nil {
			w.Header().Set("DPoP-Nonce", *n)
		}
		if challenge.Load() {
			w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer api.Close()
	get := func(t *testing.T, client *http.Client, nonce *string) int {
		t.Helper()
		hand.Store(nonce)
		resp, err := client.Get(api.URL + "/v1/items")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	ptr := func(s string) *string { return &s }
	for _, tc := range []struct {
		name  string
		nonce string
		kept  bool
	}{
		{"short", "n-1", true},
		{"RFC 9449 example", "eyJ7S_zG.eyJH0-Z.HX4w-7v", true},
		{"every NQCHAR", nqchars(), true},
		{"1 KiB", strings.Repeat("a", 1<<10), true},
		{"1 KiB and a byte", strings.Repeat("a", 1<<10+1), false},
		{"1 MiB", strings.Repeat("a", 1<<20), false},
		{"8 MiB", strings.Repeat("a", 8<<20), false},
		{"space", "a b", false},
		{"quote", `a"b`, false},
		{"backslash", `a\b`, false},
		{"not ASCII", "nönce", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dk, _ := oauth2refresh.NewDPoPKey(key)
			tok := &oauth2.Token{AccessToken: "at-1", TokenType: "DPoP", Expiry: time.Now().Add(time.Hour)}
			ep := &oauth2refresh.Endpoint{TokenURL: "https://token.example/token", DPoP: dk}
			client := oauth2refresh.NewClient(ctx, ep.TokenSource(ctx, tok))
			get(t, client, ptr("first"))
			get(t, client, &tc.nonce)
			get(t, client, nil)
			want := "first"
			if tc.kept {
				want = tc.nonce
			}
			if got := v.sentNonce("api"); got != want {
				t.Errorf("nonce sent: %.40q (%d bytes), want %.40q (%d bytes)", got, len(got), want, len(want))
			}
			if max := int64(len(want))*4/3 + 1<<10; dpopLen.Load() > max {
				t.Errorf("DPoP header of %d bytes, want at most %d", dpopLen.Load(), max)
			}

			// A nonce challenge with such a nonce: answered with a retry only if it is kept.
			challenge.Store(true)
			requests.Store(0)
			if status := get(t, client, ptr("2"+tc.nonce[1:])); status != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", status)
			}
			if want := map[bool]int64{true: 2, false: 1}[tc.kept]; requests.Load() != want {
				t.Errorf("%d requests for a nonce challenge, want %d", requests.Load(), want)
			}
			// The challenge did not judge the token: it is still in use (the source has no
			// refresh token to get another).
			challenge.Store(false)
			if status := get(t, client, nil); status != http.StatusOK {
				t.Errorf("after the challenge: status %d, want 200", status)
			}
		})
	}

	// The token endpoint: a use_dpop_nonce with a nonce too big is not answered.
	srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		v.check(r, "token", "")
		w.Header().Set("DPoP-Nonce", strings.Repeat("a", 1<<10+1))
		epJSON(w, http.StatusBadRequest, `{"error":"use_dpop_nonce"}`)
	})
	dk, _ := oauth2refresh.NewDPoPKey(key)
	ep := &oauth2refresh.Endpoint{TokenURL: srv.URL + "/token", ClientID: "app", AuthMethod: oauth2refresh.AuthNone, DPoP: dk}
	_, err := ep.Refresh(ctx, "rt-0")
	var re *oauth2refresh.RequestError
	if !errors.As(err, &re) || re.Code != "use_dpop_nonce" {
		t.Errorf("Refresh: %v, want use_dpop_nonce", err)
	}
	if n := len(srv.requests()); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}

// TestDPoPNonceOrigins: a DPoPKey keeps the nonces of the 64 origins it used last, however
// many origins hand out nonces (here 300, with 1 KiB nonces each, through a Transport to one
// httptest server under many host names); an origin forgotten is one that has to challenge
// again.
func TestDPoPNonceOrigins(t *testing.T) {
	const origins, kept = 300, 64
	v := newDPoPVerifier(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v.bind("at-1", testThumbprint(key.Public()))
	nonceOf := func(host string) string { return (host + "-" + strings.Repeat("n", 1<<10))[:1<<10] }
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, nonceOK := v.check(r, r.Host, "at-1"); !nonceOK { // no nonce is asked: none may be sent
			t.Errorf("%s: a nonce sent on the first visit", r.Host)
		}
		w.Header().Set("DPoP-Nonce", nonceOf(r.Host))
	}))
	defer api.Close()
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, api.Listener.Addr().String())
	}}
	defer tr.CloseIdleConnections()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: tr})
	dk, _ := oauth2refresh.NewDPoPKey(key)
	tok := &oauth2.Token{AccessToken: "at-1", TokenType: "DPoP", Expiry: time.Now().Add(time.Hour)}
	ep := &oauth2refresh.Endpoint{TokenURL: "https://token.example/token", DPoP: dk}
	client := oauth2refresh.NewClient(ctx, ep.TokenSource(ctx, tok))
	host := func(i int) string { return fmt.Sprintf("o%03d.test", i) }
	for i := range origins {
		resp, err := client.Get("http://" + host(i) + "/v1/items")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	var got, want []string
	for i := range origins {
		p, err := dk.Proof(http.MethodGet, "http://"+host(i)+"/v1/items", "")
		if err != nil {
			t.Fatal(err)
		}
		if n := proofNonce(t, p); n != "" {
			if n != nonceOf(host(i)) {
				t.Errorf("%s: nonce %.20q…", host(i), n)
			}
			got = append(got, host(i))
		}
		if i >= origins-kept {
			want = append(want, host(i))
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("origins whose nonce is kept (-want +got):\n%s", diff)
	}
}

// TestDPoPNonceChallengeFields: a resource server's nonce challenge is found among the
// challenges of its WWW-Authenticate fields however they are joined (RFC 9110 §5.3, §11.6.1):
// the request is sent again with the nonce, and the token is kept (no refresh, no refresh
// token spent). A DPoP challenge with another error, whatever its other parameters hold, is a
// refusal of the token: it is dropped and refreshed.
func TestDPoPNonceChallengeFields(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fields []string
		nonce  bool // a nonce challenge
	}{
		{"DPoP alone", []string{`DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`}, true},
		{"two fields", []string{`Bearer realm="api"`, `DPoP error="use_dpop_nonce"`}, true},
		{"Bearer and DPoP in one field", []string{`Bearer realm="api", DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`}, true},
		{"DPoP with algs first", []string{`DPoP algs="ES256 EdDSA", error="use_dpop_nonce", Bearer realm="api"`}, true},
		{"token value, other case", []string{`bearer, dpop Error=use_dpop_nonce`}, true},
		{"invalid_token with a look-alike parameter", []string{`DPoP error="invalid_token", foo_error="use_dpop_nonce"`}, false},
		{"use_dpop_nonce of Bearer", []string{`Bearer error="use_dpop_nonce"`}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			v := newDPoPVerifier(t)
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			ts := newTokenServer(t, "rt-0", 3600)
			v.bind("rt-0", testThumbprint(key.Public()))
			var tokChallenges atomic.Int64
			dpopGate(ts, v, &tokChallenges)
			api := newDPoPAPI(t, v)
			api.challenge = tc.fields
			ep := ts.endpoint()
			ep.DPoP, _ = oauth2refresh.NewDPoPKey(key)
			src := ep.TokenSource(context.Background(), &oauth2.Token{RefreshToken: "rt-0"}, oauth2refresh.WithClock(clk.now))
			if _, err := src.Token(); err != nil {
				t.Fatal(err)
			}
			v.rotate("api")
			resp, err := oauth2refresh.NewClient(context.Background(), src).Get(api.URL + "/v1/items")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// A nonce challenge: sent again with the nonce and the same token. A refusal: the
			// token is refreshed, and the new one goes with the nonce learnt from the 401.
			want := []any{200, "ok at-2", int64(2)}
			if tc.nonce {
				want = []any{200, "ok at-1", int64(1)}
			}
			if got := []any{resp.StatusCode, string(b), ts.requests.Load()}; !cmp.Equal(want, got) {
				t.Errorf("API status, body, token requests = %v, want %v", got, want)
			}
			if api.challenges.Load() != 1 || ts.reused.Load() != 0 {
				t.Errorf("API challenges %d, refresh tokens reused %d; want 1, 0", api.challenges.Load(), ts.reused.Load())
			}
		})
	}
}

// TestDPoPHtu: a proof's htu is what the server reconstructs from r.Host and r.URL (RFC 9449
// §4.3), for API requests through a Transport and for a token request: a URL without a path
// has the path "/" the server sees (RFC 3986 §6.2.3), query and fragment are left out, and an
// escaped path stays as it was sent.
func TestDPoPHtu(t *testing.T) {
	ctx := context.Background()
	v := newDPoPVerifier(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dk, _ := oauth2refresh.NewDPoPKey(key)
	v.bind("at-1", testThumbprint(key.Public()))
	api := newDPoPAPI(t, v)
	tok := &oauth2.Token{AccessToken: "at-1", TokenType: "DPoP", Expiry: time.Now().Add(time.Hour)}
	ep := &oauth2refresh.Endpoint{TokenURL: "https://token.example/token", DPoP: dk}
	client := oauth2refresh.NewClient(ctx, ep.TokenSource(ctx, tok))
	suffixes := []string{"", "?page=2", "#top", "/", "/v1/items?page=2#top", "/a%2Fb", "/%7Euser/x"}
	for _, suffix := range suffixes {
		resp, err := client.Get(api.URL + suffix)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %q: %d", suffix, resp.StatusCode)
		}
	}
	if got := api.served.Load(); got != int64(len(suffixes)) {
		t.Errorf("API served %d requests, want %d", got, len(suffixes))
	}

	srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		v.check(r, "token", "")
		epJSON(w, http.StatusOK, epOKBody)
	})
	for _, suffix := range []string{"", "?tenant=a"} {
		ep := &oauth2refresh.Endpoint{TokenURL: srv.URL + suffix, ClientID: "app", AuthMethod: oauth2refresh.AuthNone, DPoP: dk}
		if _, err := ep.Refresh(ctx, "rt-0"); err != nil {
			t.Errorf("Refresh at %q: %v", suffix, err)
		}
	}
}

// TestStoredTokenDPoPJKT: the stored-token format keeps the thumbprint of a bound token's key
// as "dpop_jkt" (not in "extra"), and nothing for an unbound token.
func TestStoredTokenDPoPJKT(t *testing.T) {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	bound := (&oauth2.Token{AccessToken: "at", TokenType: "DPoP", RefreshToken: "rt", Expiry: exp}).
		WithExtra(map[string]any{"dpop_jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", "scope": "x"})
	for _, tc := range []struct {
		name string
		tok  *oauth2.Token
		want string
	}{
		{"bound", bound, `{"version":2,"access_token":"at","token_type":"DPoP","refresh_token":"rt","expiry":"2030-01-02T03:04:05Z","dpop_jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I","extra":{"scope":"x"}}`},
		{"unbound", &oauth2.Token{AccessToken: "at", RefreshToken: "rt"}, `{"version":2,"access_token":"at","refresh_token":"rt"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := store.Encode(tc.tok, 2)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(b)); diff != "" {
				t.Errorf("encoded (-want +got):\n%s", diff)
			}
			got, _, err := store.Decode("k", "here", b)
			if err != nil {
				t.Fatal(err)
			}
			if got.Extra("dpop_jkt") != tc.tok.Extra("dpop_jkt") || got.Extra("scope") != tc.tok.Extra("scope") {
				t.Errorf("decoded Extra dpop_jkt %v, scope %v", got.Extra("dpop_jkt"), got.Extra("scope"))
			}
		})
	}
}

// BenchmarkDPoP measures what a DPoP proof adds to a token request (one refresh) and to an
// API request (through a Transport with a cached token), both through an in-memory
// RoundTripper: "bearer" is the same request without DPoP.
func BenchmarkDPoP(b *testing.B) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	keys := []struct {
		name string
		key  crypto.Signer
	}{{"bearer", nil}, {"ES256", ec}, {"EdDSA", ed}}
	dpopBody := []byte(strings.Replace(string(tokenBody), `"Bearer"`, `"DPoP"`, 1))
	for _, k := range keys {
		var dk *oauth2refresh.DPoPKey
		body := tokenBody
		if k.key != nil {
			dk, _ = oauth2refresh.NewDPoPKey(k.key)
			body = dpopBody
		}
		b.Run("token-request/"+k.name, func(b *testing.B) {
			ep := benchEndpoint(&memTransport{status: http.StatusOK, body: body})
			ep.DPoP = dk
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ep.Refresh(ctx, "refresh-token-1"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("api-request/"+k.name, func(b *testing.B) {
			ep := benchEndpoint(nil)
			ep.DPoP = dk
			tok := &oauth2.Token{AccessToken: "eyJhbGciOiJSUzI1NiJ9.access", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}
			if dk != nil {
				tok.TokenType = "DPoP"
			}
			tr := &oauth2refresh.Transport{Source: ep.TokenSource(context.Background(), tok), Base: &memTransport{status: http.StatusOK}}
			req, _ := http.NewRequest(http.MethodGet, "https://api.example/v1/items?page=2", nil)
			b.ReportAllocs()
			for b.Loop() {
				resp, err := tr.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}

// TestDPoPRevoke: a revocation request carries a proof for the revocation URL too, and is
// sent again once when the server asks for a nonce.
func TestDPoPRevoke(t *testing.T) {
	v := newDPoPVerifier(t)
	v.rotate("revoke")
	srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if _, nonceOK := v.check(r, "revoke", ""); !nonceOK {
			w.Header().Set("DPoP-Nonce", v.nonce("revoke"))
			respond(w, http.StatusBadRequest, "application/json", `{"error":"use_dpop_nonce"}`)
		}
	})
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dk, _ := oauth2refresh.NewDPoPKey(key)
	ep := &oauth2refresh.Endpoint{TokenURL: srv.URL + "/token", RevocationURL: srv.URL + "/revoke", ClientID: "app",
		AuthMethod: oauth2refresh.AuthNone, DPoP: dk}
	if err := ep.Revoke(context.Background(), &oauth2.Token{RefreshToken: "rt-1"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range srv.requests() {
		got = append(got, r.Path+" "+r.Form.Get("token"))
	}
	if diff := cmp.Diff([]string{"/revoke rt-1", "/revoke rt-1"}, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestNewDPoPKeyErrors(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		want string
	}{
		{"nil", nil, "oauth2refresh: DPoP key: nil key"},
		{"P-384", p384, `oauth2refresh: DPoP key: algorithm "ES256" does not fit an ECDSA P-384 key`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := oauth2refresh.NewDPoPKey(tc.key)
			if k != nil || err == nil || err.Error() != tc.want {
				t.Errorf("NewDPoPKey = %v, %v; want nil, %q", k, err, tc.want)
			}
		})
	}
	if _, err := new(oauth2refresh.DPoPKey).Proof(http.MethodGet, "https://api.example/", ""); err == nil {
		t.Error("Proof with a zero DPoPKey: no error")
	}
}

// TestDPoPAutoDetect: with AuthAutoDetect, every try carries a proof of its own (verified, jti
// never repeated), the nonce retry happens within each try, and a nonce challenge does not
// make the Endpoint switch methods: the server accepts client_secret_post only, and checks
// the nonce before or after the client's authentication. The TokenSource runs on a fake clock
// years away (WithClock); the proofs still carry the system clock's iat.
func TestDPoPAutoDetect(t *testing.T) {
	for _, tc := range []struct {
		name        string
		nonceFirst  bool
		first, next []string // what the server saw for the first refresh, and after a nonce rotation
	}{
		{"nonce checked first", true,
			[]string{"basic: use_dpop_nonce", "basic: invalid_client", "body: issued rt-1"},
			[]string{"body: use_dpop_nonce", "body: issued rt-2"}},
		{"client checked first", false,
			[]string{"basic: invalid_client", "body: use_dpop_nonce", "body: issued rt-1"},
			[]string{"body: use_dpop_nonce", "body: issued rt-2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			jkt := testThumbprint(key.Public())
			v := newDPoPVerifier(t)
			v.rotate("token")
			v.bind("rt-0", jkt)
			var mu sync.Mutex // guards seen, current, issued
			var seen []string
			current, issued := "rt-0", 0
			note := func(s string) { mu.Lock(); seen = append(seen, s); mu.Unlock() }
			srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				proofJKT, nonceOK := v.check(r, "token", "")
				how := "body"
				if r.Header.Get("Authorization") != "" {
					how = "basic"
				}
				nonce := func() bool {
					if !nonceOK {
						note(how + ": use_dpop_nonce")
						w.Header().Set("DPoP-Nonce", v.nonce("token"))
						respond(w, http.StatusBadRequest, "application/json", `{"error":"use_dpop_nonce"}`)
					}
					return nonceOK
				}
				client := func() bool {
					ok := how == "body" && r.Form.Get("client_id") == testClientID && r.Form.Get("client_secret") == testSecret
					if !ok {
						note(how + ": invalid_client")
						respond(w, http.StatusUnauthorized, "application/json", `{"error":"invalid_client"}`)
					}
					return ok
				}
				if tc.nonceFirst && (!nonce() || !client()) || !tc.nonceFirst && (!client() || !nonce()) {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if rt := r.Form.Get("refresh_token"); rt != current || v.boundTo(rt) != proofJKT {
					t.Errorf("refresh token %q (current %q) bound to %q, proof by %q", rt, current, v.boundTo(rt), proofJKT)
				}
				issued++
				current = fmt.Sprintf("rt-%d", issued)
				at := fmt.Sprintf("at-%d", issued)
				v.bind(current, proofJKT)
				v.bind(at, proofJKT)
				seen = append(seen, how+": issued "+current)
				respond(w, http.StatusOK, "application/json",
					fmt.Sprintf(`{"access_token":%q,"token_type":"DPoP","expires_in":3600,"refresh_token":%q}`, at, current))
			})
			dk, err := oauth2refresh.NewDPoPKey(key)
			if err != nil {
				t.Fatal(err)
			}
			ep := &oauth2refresh.Endpoint{TokenURL: srv.URL + "/token", ClientID: testClientID, ClientSecret: testSecret,
				AuthMethod: oauth2refresh.AuthAutoDetect, DPoP: dk}
			clk := newFakeClock()
			src := ep.TokenSource(context.Background(), &oauth2.Token{RefreshToken: "rt-0"}, oauth2refresh.WithClock(clk.now))
			step := func(name string, want []string) {
				t.Helper()
				mu.Lock()
				seen = nil
				mu.Unlock()
				tok, err := src.Token()
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if tok.Type() != "DPoP" || tok.Extra("dpop_jkt") != jkt {
					t.Errorf("%s: token type %q, dpop_jkt %v, want DPoP, %s", name, tok.Type(), tok.Extra("dpop_jkt"), jkt)
				}
				mu.Lock()
				defer mu.Unlock()
				if diff := cmp.Diff(want, seen); diff != "" {
					t.Errorf("%s: what the server saw (-want +got):\n%s", name, diff)
				}
			}
			step("first refresh", tc.first)
			v.rotate("token")
			clk.advance(2 * time.Hour)
			step("after a nonce rotation", tc.next)
			clk.advance(2 * time.Hour)
			step("nonce kept", []string{"body: issued rt-3"})
			if got := len(srv.requests()); got != len(tc.first)+len(tc.next)+1 {
				t.Errorf("%d token requests", got)
			}
		})
	}
}

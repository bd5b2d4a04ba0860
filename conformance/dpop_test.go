package conformance_test

// DPoP (RFC 9449) proofs checked by go-jose v4, a JOSE implementation independent of the
// package: it parses each proof as a compact JWS of the one algorithm the key's type calls for,
// verifies it with the jwk of its header, and computes the key's RFC 7638 thumbprint, which the
// token endpoint binds the tokens to (cnf.jkt) and the API checks.

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
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
)

// joseDPoP verifies proofs with go-jose and remembers jtis, nonces and bindings.
type joseDPoP struct {
	t      *testing.T
	alg    jose.SignatureAlgorithm // the only algorithm accepted
	mu     sync.Mutex              // guards the maps
	jtis   map[string]bool
	bound  map[string]string // token -> jkt
	nonces map[string]string // server -> nonce required
}

// verify checks r's proof for server and returns the jkt of its key and whether its nonce is
// the one required.
func (d *joseDPoP) verify(r *http.Request, server, accessToken string) (string, bool) {
	d.t.Helper()
	sig, err := jose.ParseSignedCompact(r.Header.Get("DPoP"), []jose.SignatureAlgorithm{d.alg})
	if err != nil || len(sig.Signatures) != 1 {
		d.t.Errorf("%s: proof does not parse: %v", server, err)
		return "", false
	}
	h := sig.Signatures[0].Protected
	jwk := h.JSONWebKey
	if jwk == nil || !jwk.IsPublic() || !jwk.Valid() || h.ExtraHeaders["typ"] != "dpop+jwt" {
		d.t.Errorf("%s: proof header: typ %v, jwk %v", server, h.ExtraHeaders["typ"], jwk)
		return "", false
	}
	payload, err := sig.Verify(jwk)
	if err != nil {
		d.t.Errorf("%s: proof does not verify with its jwk (%s): %v", server, h.Algorithm, err)
		return "", false
	}
	var c struct {
		Jti, Htm, Htu, Nonce, Ath string
		Iat                       int64
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		d.t.Errorf("%s: claims: %v", server, err)
	}
	if want := "http://" + r.Host + r.URL.Path; c.Htm != r.Method || c.Htu != want {
		d.t.Errorf("%s: htm %q htu %q, want %q %q", server, c.Htm, c.Htu, r.Method, want)
	}
	if s := time.Since(time.Unix(c.Iat, 0)); s < -time.Minute || s > time.Minute {
		d.t.Errorf("%s: iat %d is %v away", server, c.Iat, s)
	}
	wantAth := ""
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		wantAth = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if c.Ath != wantAth {
		d.t.Errorf("%s: ath %q, want %q", server, c.Ath, wantAth)
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		d.t.Fatal(err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if c.Jti == "" || d.jtis[c.Jti] {
		d.t.Errorf("%s: jti %q reused", server, c.Jti)
	}
	d.jtis[c.Jti] = true
	return base64.RawURLEncoding.EncodeToString(tp), c.Nonce == d.nonces[server]
}

func (d *joseDPoP) boundTo(tok string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.bound[tok]
}

func TestGoJoseDPoP(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rs, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, tc := range []struct {
		alg jose.SignatureAlgorithm
		key crypto.Signer
	}{{jose.ES256, ec}, {jose.EdDSA, ed}, {jose.RS256, rs}} {
		t.Run(string(tc.alg), func(t *testing.T) {
			dk, err := oauth2refresh.NewDPoPKey(tc.key)
			if err != nil {
				t.Fatal(err)
			}
			d := &joseDPoP{t: t, alg: tc.alg, jtis: map[string]bool{}, bound: map[string]string{"rt-0": dk.Thumbprint()},
				nonces: map[string]string{"token": "tn-1", "api": "an-1"}}
			var mu sync.Mutex
			var seen []string
			note := func(s string) { mu.Lock(); seen = append(seen, s); mu.Unlock() }
			issued := 0
			as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.ParseForm()
				jkt, nonceOK := d.verify(r, "token", "")
				w.Header().Set("Content-Type", "application/json")
				if !nonceOK {
					note("token: use_dpop_nonce")
					w.Header().Set("DPoP-Nonce", d.nonces["token"])
					w.WriteHeader(http.StatusBadRequest)
					io.WriteString(w, `{"error":"use_dpop_nonce"}`)
					return
				}
				rt := r.PostForm.Get("refresh_token")
				if d.boundTo(rt) != jkt {
					t.Errorf("refresh token %q bound to %q, proof by %q", rt, d.boundTo(rt), jkt)
				}
				d.mu.Lock()
				issued++
				at, nrt := fmt.Sprintf("at-%d", issued), fmt.Sprintf("rt-%d", issued)
				d.bound[at], d.bound[nrt] = jkt, jkt
				d.mu.Unlock()
				note("token: issued " + at)
				fmt.Fprintf(w, `{"access_token":%q,"token_type":"DPoP","expires_in":3600,"refresh_token":%q}`, at, nrt)
			}))
			defer as.Close()
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				at := strings.TrimPrefix(r.Header.Get("Authorization"), "DPoP ")
				jkt, nonceOK := d.verify(r, "api", at)
				if !nonceOK {
					note("api: use_dpop_nonce")
					w.Header().Set("DPoP-Nonce", d.nonces["api"])
					w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce"`)
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				if d.boundTo(at) != jkt {
					t.Errorf("access token %q bound to %q, proof by %q", at, d.boundTo(at), jkt)
				}
				note("api: ok " + at)
			}))
			defer api.Close()

			ep := &oauth2refresh.Endpoint{TokenURL: as.URL + "/token", ClientID: "public-app", AuthMethod: oauth2refresh.AuthNone, DPoP: dk}
			src := ep.TokenSource(context.Background(), &oauth2.Token{RefreshToken: "rt-0"})
			client := oauth2refresh.NewClient(context.Background(), src)
			for range 2 {
				resp, err := client.Get(api.URL + "/v1/me?x=1")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			src.Invalidate(nil)
			resp, err := client.Post(api.URL+"/v1/items", "text/plain", strings.NewReader("x"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := []string{"token: use_dpop_nonce", "token: issued at-1", "api: use_dpop_nonce", "api: ok at-1",
				"api: ok at-1", "token: issued at-2", "api: ok at-2"}
			if diff := cmp.Diff(want, seen); diff != "" {
				t.Errorf("what the servers saw (-want +got):\n%s", diff)
			}
		})
	}
}

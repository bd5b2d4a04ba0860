package oauth2refresh_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"io/fs"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
)

// Test keys, made once: RSA key generation is slow under -race.
var (
	caRSAKey = sync.OnceValue(func() *rsa.PrivateKey { k, _ := rsa.GenerateKey(rand.Reader, 2048); return k })
	caECKey  = sync.OnceValue(func() *ecdsa.PrivateKey { k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return k })
	caEdKey  = sync.OnceValue(func() ed25519.PrivateKey { _, k, _ := ed25519.GenerateKey(rand.Reader); return k })
)

// caCert returns a certificate for key, signed by parent (self-signed when parent is nil).
func caCert(t testing.TB, cn string, key crypto.Signer, parent *x509.Certificate, parentKey crypto.Signer, usage ...x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: usage,
		BasicConstraintsValid: true, IsCA: parent == nil, DNSNames: []string{cn},
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// caVerify is the test's own JWS verifier (RFC 7515 compact form), written with the standard
// library alone: it checks the signature with key (a public key, or the []byte of an HMAC
// secret) by the header's alg, and returns the header and the claims.
func caVerify(t testing.TB, jws string, key any) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		t.Fatalf("assertion %q is not a compact JWS", jws)
	}
	dec := func(s string, into any) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("assertion part %q: %v", s, err)
		}
		if into != nil {
			if err := json.Unmarshal(b, into); err != nil {
				t.Fatalf("assertion part %s: %v", b, err)
			}
		}
		return b
	}
	dec(parts[0], &header)
	dec(parts[1], &claims)
	in, sig := []byte(parts[0]+"."+parts[1]), dec(parts[2], nil)
	digest := sha256.Sum256(in)
	ok := false
	switch k := key.(type) {
	case *rsa.PublicKey:
		switch header["alg"] {
		case "RS256":
			ok = rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) == nil
		case "PS256":
			ok = rsa.VerifyPSS(k, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
	case *ecdsa.PublicKey:
		ok = header["alg"] == "ES256" && len(sig) == 64 &&
			ecdsa.Verify(k, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	case ed25519.PublicKey:
		ok = header["alg"] == "EdDSA" && ed25519.Verify(k, in, sig)
	case []byte:
		mac := hmac.New(sha256.New, k)
		mac.Write(in)
		ok = header["alg"] == "HS256" && hmac.Equal(mac.Sum(nil), sig)
	}
	if !ok {
		t.Errorf("assertion signature does not verify with %T (header %v)", key, header)
	}
	return header, claims
}

// caJWTSecret is a client secret that client_secret_jwt signs with: 32 bytes at least.
const caJWTSecret = "a client secret of 256 bits or more"

// TestClientAuthWire: each new AuthMethod sends exactly the headers and form fields RFC 7523
// §2.2 or RFC 8705 §2 ask for, never the client secret, and a JWT assertion whose header,
// claims and signature the test's own verifier accepts, dated by the system clock at the
// time of the request; for the refresh grant and the client_credentials grant alike.
func TestClientAuthWire(t *testing.T) {
	var funcNow time.Time // the AssertionRequest.Now the AssertionFunc was given
	cert := caCert(t, "client", caRSAKey(), nil, nil)
	thumb := sha256.Sum256(cert.Raw)
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("\n  workload-identity-token \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hdrNoAuth := epHeader("Content-Type", epFormType, "Accept", "application/json", "User-Agent", epUA)
	tests := []struct {
		name     string
		endpoint oauth2refresh.Endpoint // TokenURL and ClientID are filled in
		key      any                    // verifies the assertion; nil: client_assertion is in wantForm
		wantJOSE map[string]any
		wantAud  string // "" means the token URL
		lifetime time.Duration
		wantForm url.Values // without client_assertion when key is set
	}{
		{
			name: "private_key_jwt RS256 with kid and x5t#S256",
			endpoint: oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthPrivateKeyJWT, ClientSecret: epSecret,
				Assertion: oauth2refresh.JWTAssertion{Key: caRSAKey(), KeyID: "key-1", Certificate: cert}},
			key:      &caRSAKey().PublicKey,
			wantJOSE: map[string]any{"alg": "RS256", "typ": "JWT", "kid": "key-1", "x5t#S256": base64.RawURLEncoding.EncodeToString(thumb[:])},
			lifetime: 2 * time.Minute,
		},
		{
			name: "private_key_jwt PS256",
			endpoint: oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthPrivateKeyJWT,
				Assertion: &oauth2refresh.JWTAssertion{Key: caRSAKey(), Algorithm: "PS256"}},
			key: &caRSAKey().PublicKey, wantJOSE: map[string]any{"alg": "PS256", "typ": "JWT"}, lifetime: 2 * time.Minute,
		},
		{
			name: "private_key_jwt ES256 with the issuer as audience",
			endpoint: oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthPrivateKeyJWT,
				Assertion: oauth2refresh.JWTAssertion{Key: caECKey(), KeyID: "ec", Audience: "https://issuer.example", Lifetime: 5 * time.Minute}},
			key: &caECKey().PublicKey, wantJOSE: map[string]any{"alg": "ES256", "typ": "JWT", "kid": "ec"},
			wantAud: "https://issuer.example", lifetime: 5 * time.Minute,
		},
		{
			name: "private_key_jwt EdDSA",
			endpoint: oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthPrivateKeyJWT,
				Assertion: oauth2refresh.JWTAssertion{Key: caEdKey(), Lifetime: 30 * time.Second}},
			key: caEdKey().Public(), wantJOSE: map[string]any{"alg": "EdDSA", "typ": "JWT"}, lifetime: 30 * time.Second,
		},
		{
			name:     "client_secret_jwt",
			endpoint: oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthClientSecretJWT, ClientSecret: caJWTSecret},
			key:      []byte(caJWTSecret), wantJOSE: map[string]any{"alg": "HS256", "typ": "JWT"}, lifetime: 2 * time.Minute,
		},
		{
			name: "private_key_jwt from a function, reserved params ignored",
			endpoint: oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthPrivateKeyJWT, ClientSecret: epSecret,
				Params: url.Values{"client_assertion": {"x"}, "client_assertion_type": {"y"}, "client_secret": {"z"}, "resource": {"r"}},
				Assertion: oauth2refresh.AssertionFunc(func(ctx context.Context, r oauth2refresh.AssertionRequest) (string, error) {
					funcNow = r.Now
					return fmt.Sprintf("a|%s|%s", r.ClientID, r.TokenURL), nil
				})},
			wantForm: url.Values{"client_assertion": {"a|" + epClientID + "|TOKENURL"}, "resource": {"r"}},
		},
		{
			name:     "private_key_jwt from a workload identity file",
			endpoint: oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthPrivateKeyJWT, Assertion: oauth2refresh.AssertionFile(file)},
			wantForm: url.Values{"client_assertion": {"workload-identity-token"}},
		},
		{
			name:     "tls_client_auth",
			endpoint: oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthTLSClient, ClientSecret: epSecret},
			wantForm: url.Values{},
		},
	}
	grants := []struct {
		name  string
		get   func(e *oauth2refresh.Endpoint) error
		grant url.Values
	}{
		{"refresh", func(e *oauth2refresh.Endpoint) error {
			_, err := e.Refresh(context.Background(), epRefresh)
			return err
		}, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {epRefresh}}},
		{"client credentials", func(e *oauth2refresh.Endpoint) error {
			_, err := e.ClientCredentials(context.Background()).Token()
			return err
		}, url.Values{"grant_type": {"client_credentials"}}},
	}
	for _, tc := range tests {
		for _, g := range grants {
			t.Run(tc.name+"/"+g.name, func(t *testing.T) {
				srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) { epJSON(w, 200, epOKBody) })
				e := tc.endpoint
				e.TokenURL, e.ClientID = srv.URL+"/token", epClientID
				funcNow = time.Time{}
				before := time.Now()
				if err := g.get(&e); err != nil {
					t.Fatal(err)
				}
				after := time.Now()
				if tc.wantForm["client_assertion"] != nil && strings.HasPrefix(tc.wantForm["client_assertion"][0], "a|") &&
					(funcNow.Before(before) || funcNow.After(after)) {
					t.Errorf("AssertionRequest.Now = %v, want the time of the request, between %v and %v", funcNow, before, after)
				}
				reqs := srv.requests()
				if len(reqs) != 1 {
					t.Fatalf("%d requests, want 1", len(reqs))
				}
				got := reqs[0]
				if diff := cmp.Diff(hdrNoAuth, got.Header); diff != "" {
					t.Errorf("header (-want +got):\n%s", diff)
				}
				want := url.Values{"client_id": {epClientID}}
				for k, v := range g.grant {
					want[k] = v
				}
				if e.AuthMethod != oauth2refresh.AuthTLSClient {
					want.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
				}
				for k, v := range tc.wantForm {
					want[k] = []string{strings.ReplaceAll(v[0], "TOKENURL", e.TokenURL)}
				}
				if tc.key != nil {
					jose, claims := caVerify(t, got.Form.Get("client_assertion"), tc.key)
					if diff := cmp.Diff(tc.wantJOSE, jose); diff != "" {
						t.Errorf("JOSE header (-want +got):\n%s", diff)
					}
					if jti, _ := claims["jti"].(string); len(jti) < 22 {
						t.Errorf("jti %q is too short to hold 128 random bits", jti)
					}
					delete(claims, "jti")
					aud := tc.wantAud
					if aud == "" {
						aud = e.TokenURL
					}
					// iat is a whole second of the request: pin the claims to it once it is
					// checked to be one.
					iat, _ := claims["iat"].(float64)
					if int64(iat) < before.Unix() || int64(iat) > after.Unix() {
						t.Errorf("iat %v, want the time of the request, between %d and %d", claims["iat"], before.Unix(), after.Unix())
					}
					wantClaims := map[string]any{"iss": epClientID, "sub": epClientID, "aud": aud,
						"iat": iat, "nbf": iat, "exp": iat + tc.lifetime.Seconds()}
					if diff := cmp.Diff(wantClaims, claims); diff != "" {
						t.Errorf("claims (-want +got):\n%s", diff)
					}
					want["client_assertion"] = got.Form["client_assertion"]
				}
				if diff := cmp.Diff(want, got.Form); diff != "" {
					t.Errorf("form (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestClientAssertionSystemClock: a TokenSource whose clock WithClock moved hours away still
// sends assertions dated by the system clock, which the server judges them by (RFC 7523 §3:
// an expired one MUST be refused, a future iat may be), while its own clock keeps stamping
// the Expiry of the tokens it gets.
func TestClientAssertionSystemClock(t *testing.T) {
	var mu sync.Mutex // guards funcNow
	var funcNow time.Time
	assertions := []struct {
		name     string
		endpoint oauth2refresh.Endpoint
		key      any // verifies the JWT; nil for the AssertionFunc
	}{
		{"private_key_jwt ES256", oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthPrivateKeyJWT,
			Assertion: oauth2refresh.JWTAssertion{Key: caECKey()}}, &caECKey().PublicKey},
		{"client_secret_jwt", oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthClientSecretJWT, ClientSecret: caJWTSecret}, []byte(caJWTSecret)},
		{"AssertionFunc", oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthPrivateKeyJWT,
			Assertion: oauth2refresh.AssertionFunc(func(_ context.Context, r oauth2refresh.AssertionRequest) (string, error) {
				mu.Lock()
				defer mu.Unlock()
				funcNow = r.Now
				return "assertion", nil
			})}, nil},
	}
	for _, a := range assertions {
		for _, skew := range []time.Duration{3 * time.Hour, -3 * time.Hour} {
			t.Run(fmt.Sprintf("%s/clock %v", a.name, skew), func(t *testing.T) {
				srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) { epJSON(w, 200, epOKBody) })
				clk := newFakeClock()
				clk.set(time.Now().Add(skew))
				e := a.endpoint
				e.TokenURL, e.ClientID = srv.URL+"/token", epClientID
				ts := e.TokenSource(context.Background(), &oauth2.Token{RefreshToken: epRefresh}, oauth2refresh.WithClock(clk.now))
				before := time.Now()
				tok, err := ts.Token()
				after := time.Now()
				if err != nil {
					t.Fatal(err)
				}
				if want := clk.now().Add(3600 * time.Second); !tok.Expiry.Equal(want) {
					t.Errorf("Expiry %v, want %v: the TokenSource's clock stamps it", tok.Expiry, want)
				}
				reqs := srv.requests()
				if len(reqs) != 1 {
					t.Fatalf("%d requests, want 1", len(reqs))
				}
				if a.key == nil {
					mu.Lock()
					defer mu.Unlock()
					if funcNow.Before(before) || funcNow.After(after) {
						t.Errorf("AssertionRequest.Now = %v, want the system clock, between %v and %v", funcNow, before, after)
					}
					return
				}
				_, claims := caVerify(t, reqs[0].Form.Get("client_assertion"), a.key)
				got := map[string]any{"iat": claims["iat"], "nbf": claims["nbf"], "exp": claims["exp"]}
				iat, _ := claims["iat"].(float64)
				if int64(iat) < before.Unix() || int64(iat) > after.Unix() {
					t.Errorf("iat %v (%v), want the system clock, between %v and %v", claims["iat"], time.Unix(int64(iat), 0), before, after)
				}
				want := map[string]any{"iat": iat, "nbf": iat, "exp": iat + 120}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("dates (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestClientAssertionFresh: every token request carries an assertion made for it: a
// JWTAssertion signs a new one with a new jti, and an AssertionFile is read again.
func TestClientAssertionFresh(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	var assertions []string
	srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) { epJSON(w, 200, epOKBody) })
	for _, a := range []oauth2refresh.ClientAssertion{oauth2refresh.JWTAssertion{Key: caEdKey()}, oauth2refresh.AssertionFile(file)} {
		e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: epClientID, AuthMethod: oauth2refresh.AuthPrivateKeyJWT, Assertion: a}
		for i := range 3 {
			os.WriteFile(file, []byte(fmt.Sprintf("token-%d\n", i)), 0o600)
			if _, err := e.Refresh(context.Background(), epRefresh); err != nil {
				t.Fatal(err)
			}
		}
	}
	var jtis []string
	for i, r := range srv.requests() {
		a := r.Form.Get("client_assertion")
		assertions = append(assertions, a)
		if i < 3 {
			_, claims := caVerify(t, a, caEdKey().Public())
			jtis = append(jtis, claims["jti"].(string))
		}
	}
	if jtis[0] == jtis[1] || jtis[1] == jtis[2] || jtis[0] == jtis[2] {
		t.Errorf("jti repeated: %q", jtis)
	}
	if diff := cmp.Diff([]string{"token-0", "token-1", "token-2"}, assertions[3:]); diff != "" {
		t.Errorf("assertions read from the file (-want +got):\n%s", diff)
	}
}

// TestClientAssertionJTIUnique: thousands of refreshes from 64 goroutines never send the same
// jti twice (RFC 7523 §3: a jti is one-time).
func TestClientAssertionJTIUnique(t *testing.T) {
	const goroutines, each = 64, 50
	var mu sync.Mutex // guards seen
	seen := map[string]bool{}
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		a := readForm(t, r).Get("client_assertion")
		var claims struct{ Jti string }
		parts := strings.Split(a, ".")
		b, _ := base64.RawURLEncoding.DecodeString(parts[1])
		if err := json.Unmarshal(b, &claims); err != nil || claims.Jti == "" {
			t.Errorf("assertion %q: claims %s: %v", a, b, err)
		}
		mu.Lock()
		if seen[claims.Jti] {
			t.Errorf("jti %q sent twice", claims.Jti)
		}
		seen[claims.Jti] = true
		mu.Unlock()
		return memResponse(r, 200, "application/json", epOKBody), nil
	})
	e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example.com/token", ClientID: epClientID, AuthMethod: oauth2refresh.AuthPrivateKeyJWT,
		Assertion: oauth2refresh.JWTAssertion{Key: caECKey()}, HTTPClient: &http.Client{Transport: rt}}
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				if _, err := e.Refresh(context.Background(), epRefresh); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != goroutines*each {
		t.Errorf("%d distinct jti, want %d", len(seen), goroutines*each)
	}
}

// TestClientAuthConfigErrors: an assertion that cannot be made, or an Endpoint whose client
// authentication cannot work, is a clear error, and no request is sent.
func TestClientAuthConfigErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte(" \n\t"), 0o600)
	cause := errors.New("identity provider unreachable")
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	pkjwt := oauth2refresh.AuthPrivateKeyJWT
	tests := []struct {
		name     string
		endpoint oauth2refresh.Endpoint
		is       error  // errors.Is target, if any
		want     string // in the message
	}{
		{"function fails", oauth2refresh.Endpoint{AuthMethod: pkjwt, Assertion: oauth2refresh.AssertionFunc(func(context.Context, oauth2refresh.AssertionRequest) (string, error) {
			return "", cause
		})}, cause, "making the client assertion: identity provider unreachable"},
		{"function returns nothing", oauth2refresh.Endpoint{AuthMethod: pkjwt, Assertion: oauth2refresh.AssertionFunc(func(context.Context, oauth2refresh.AssertionRequest) (string, error) {
			return "", nil
		})}, nil, "empty assertion"},
		{"file missing", oauth2refresh.Endpoint{AuthMethod: pkjwt, Assertion: oauth2refresh.AssertionFile(filepath.Join(dir, "missing"))}, fs.ErrNotExist, "missing"},
		{"file empty", oauth2refresh.Endpoint{AuthMethod: pkjwt, Assertion: oauth2refresh.AssertionFile(empty)}, nil, "file is empty"},
		{"no key", oauth2refresh.Endpoint{AuthMethod: pkjwt, Assertion: oauth2refresh.JWTAssertion{}}, nil, "no Key"},
		{"algorithm of another key type", oauth2refresh.Endpoint{AuthMethod: pkjwt, Assertion: oauth2refresh.JWTAssertion{Key: caECKey(), Algorithm: "RS256"}}, nil, `"RS256" does not fit`},
		{"curve other than P-256", oauth2refresh.Endpoint{AuthMethod: pkjwt, Assertion: oauth2refresh.JWTAssertion{Key: p384}}, nil, "P-384"},
		{"private_key_jwt without an assertion", oauth2refresh.Endpoint{AuthMethod: pkjwt}, oauth2refresh.ErrInvalidEndpoint, "needs an Assertion"},
		{"client_secret_jwt without a secret", oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthClientSecretJWT}, oauth2refresh.ErrInvalidEndpoint, "needs a ClientSecret"},
		{"client_secret_jwt with a 3-byte secret", oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthClientSecretJWT, ClientSecret: "abc"},
			oauth2refresh.ErrInvalidEndpoint, "needs a ClientSecret of at least 32 bytes, the 256 bits of an HS256 key (RFC 7518 §3.2)"},
		{"client_secret_jwt with a 31-byte secret", oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthClientSecretJWT, ClientSecret: caJWTSecret[:31]},
			oauth2refresh.ErrInvalidEndpoint, "at least 32 bytes"},
		{"an assertion for client_secret_basic", oauth2refresh.Endpoint{Assertion: oauth2refresh.AssertionFile(empty)}, oauth2refresh.ErrInvalidEndpoint, "Assertion is set"},
		{"an assertion for auto-detection", oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthAutoDetect, Assertion: oauth2refresh.AssertionFile(empty)}, oauth2refresh.ErrInvalidEndpoint, "Assertion is set"},
		{"unknown method", oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthTLSClient + 1}, oauth2refresh.ErrInvalidEndpoint, "unknown AuthMethod(7)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.endpoint
			e.TokenURL, e.ClientID, e.HTTPClient = "https://auth.example.com/token", epClientID, epNoRequest(t)
			_, err := e.Refresh(context.Background(), epRefresh)
			if err == nil || tc.is != nil && !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Refresh: %v, want an error matching %v with %q", err, tc.is, tc.want)
			}
			epCheckMessage(t, err)
		})
	}
}

// TestAssertionFileSize: an AssertionFile holds at most 64 KiB, as a workload identity token
// (a few KiB) does: a larger one is refused with a clear error before any request, without
// reading it (a 100 MiB file allocates far less than 1 MiB), and one of exactly 64 KiB is sent.
func TestAssertionFileSize(t *testing.T) {
	const limit = 64 << 10
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		size int64
		ok   bool
	}{
		{"64 KiB", limit, true},
		{"64 KiB and one byte", limit + 1, false},
		{"100 MiB", 100 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, fmt.Sprint(tc.size))
			f, err := os.Create(file)
			if err != nil {
				t.Fatal(err)
			}
			content := strings.Repeat("a", limit) // the first 64 KiB; the rest is a hole of zeros
			if _, err := f.WriteString(content); err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(tc.size); err != nil {
				t.Fatal(err)
			}
			f.Close()
			var sent string // the assertion the token endpoint received
			client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				sent = readForm(t, r).Get("client_assertion")
				return memResponse(r, 200, "application/json", epOKBody), nil
			})}
			e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example.com/token", ClientID: epClientID, HTTPClient: client,
				AuthMethod: oauth2refresh.AuthPrivateKeyJWT, Assertion: oauth2refresh.AssertionFile(file)}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err = e.Refresh(context.Background(), epRefresh)
			runtime.ReadMemStats(&after)
			if tc.ok {
				if err != nil || sent != content {
					t.Fatalf("Refresh: %v; sent %d bytes, want the file's %d", err, len(sent), len(content))
				}
				return
			}
			var pe *fs.PathError
			if !errors.As(err, &pe) || pe.Path != file || !strings.Contains(err.Error(), "larger than 64 KiB") {
				t.Fatalf("Refresh: %v, want an *fs.PathError of %s saying it is larger than 64 KiB", err, file)
			}
			if sent != "" {
				t.Errorf("a request was sent, with a %d-byte assertion", len(sent))
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Errorf("Refresh allocated %d bytes for a file it refuses", n)
			}
			epCheckMessage(t, err)
		})
	}
}

// TestClientAssertionNotInErrors: a server or a RoundTripper that echoes the request, in any
// usual encoding, never gets the client assertion (nor the secret, nor the refresh token)
// into an error's text, fields or chain.
func TestClientAssertionNotInErrors(t *testing.T) {
	const fixed = `eyJ+hdr/x=.pay&load"\é✓.sig` // characters that every encoding changes
	jsonStr := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	echoes := []struct {
		name  string
		reply func(w http.ResponseWriter, raw, assertion string)
	}{
		{"raw body in error_description", func(w http.ResponseWriter, raw, a string) {
			epJSON(w, 400, `{"error":"invalid_client","error_description":`+jsonStr("cannot parse "+raw)+`}`)
		}},
		{"assertion quoted in error_description", func(w http.ResponseWriter, raw, a string) {
			epJSON(w, 401, `{"error":"invalid_client","error_description":`+jsonStr(fmt.Sprintf("bad assertion %q", a))+`}`)
		}},
		{"assertion in error_uri and a header", func(w http.ResponseWriter, raw, a string) {
			w.Header().Set("X-Echo", a)
			epJSON(w, 400, `{"error":"invalid_client","error_uri":`+jsonStr("https://errors.example/?a="+url.QueryEscape(a))+`}`)
		}},
		{"everything in an HTML page", func(w http.ResponseWriter, raw, a string) {
			respond(w, 502, "text/html", "<pre>"+html.EscapeString(raw+" "+a)+"</pre>")
		}},
	}
	methods := []struct {
		name     string
		endpoint oauth2refresh.Endpoint
	}{
		{"private_key_jwt from a function", oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthPrivateKeyJWT,
			Assertion: oauth2refresh.AssertionFunc(func(context.Context, oauth2refresh.AssertionRequest) (string, error) { return fixed, nil })}},
		{"private_key_jwt ES256", oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthPrivateKeyJWT, Assertion: oauth2refresh.JWTAssertion{Key: caECKey()}}},
		{"client_secret_jwt", oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthClientSecretJWT, ClientSecret: leakSecret + leakSecret}},
	}
	for _, m := range methods {
		for _, echo := range echoes {
			t.Run(m.name+"/"+echo.name, func(t *testing.T) {
				var mu sync.Mutex // guards sent
				var sent string   // the assertion the server received
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					body, _ := io.ReadAll(r.Body)
					form, _ := url.ParseQuery(string(body))
					mu.Lock()
					sent = form.Get("client_assertion")
					mu.Unlock()
					if form.Has("client_secret") || r.Header.Get("Authorization") != "" {
						t.Errorf("client secret sent: %q", body)
					}
					echo.reply(w, string(body), form.Get("client_assertion"))
				}))
				defer srv.Close()
				e := m.endpoint
				e.TokenURL, e.ClientID = srv.URL, leakClientID
				if e.ClientSecret == "" {
					e.ClientSecret = leakSecret
				}
				_, err := e.Refresh(context.Background(), leakRefresh)
				if err == nil {
					t.Fatal("no error")
				}
				texts := leakTexts(t, err)
				mu.Lock()
				defer mu.Unlock()
				leakCheck(t, texts, listedForms(leakClientID, leakSecret, sent, leakSecret, leakRefresh))
				if !strings.Contains(fmt.Sprint(texts), "[redacted]") {
					t.Errorf("no redacted echo in %q", texts)
				}
			})
		}
	}
	t.Run("transport error", func(t *testing.T) {
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return nil, fmt.Errorf("proxy refused %q", readForm(t, r).Get("client_assertion"))
		})
		e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example.com/token", ClientID: leakClientID, AuthMethod: oauth2refresh.AuthPrivateKeyJWT,
			Assertion:  oauth2refresh.AssertionFunc(func(context.Context, oauth2refresh.AssertionRequest) (string, error) { return fixed, nil }),
			HTTPClient: &http.Client{Transport: rt}}
		_, err := e.Refresh(context.Background(), leakRefresh)
		var te *oauth2refresh.TransportError
		if !errors.As(err, &te) {
			t.Fatalf("Refresh: %v, want a *TransportError", err)
		}
		texts := leakTexts(t, err)
		leakCheck(t, texts, listedForms(leakClientID, "", fixed))
		if !strings.Contains(texts["text"], `proxy refused "[redacted]"`) {
			t.Errorf("error %q is not the RoundTripper's, redacted", texts["text"])
		}
	})
}

// mtlsServer is a TLS server that requires a client certificate signed by its CA
// (RFC 8705 §2.1) on every connection, with a token endpoint at /token and a revocation
// endpoint at /revoke that check tls_client_auth's form, and an API at /api that accepts only
// the access token it issued, over a connection with the same certificate (RFC 8705 §3).
type mtlsServer struct {
	*httptest.Server
	clientCert tls.Certificate // a certificate the server accepts
}

func newMTLSServer(t *testing.T) *mtlsServer {
	t.Helper()
	ca := caCert(t, "test-ca", caECKey(), nil, nil)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := caCert(t, "my-client", leafKey, ca, caECKey(), x509.ExtKeyUsageClientAuth)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	thumb := sha256.Sum256(leaf.Raw)
	const at = "at-bound-to-cert"
	s := &mtlsServer{clientCert: tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: leafKey}}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 || sha256.Sum256(r.TLS.PeerCertificates[0].Raw) != thumb {
			t.Errorf("%s without the client certificate", r.URL.Path)
		}
		switch r.URL.Path {
		case "/token":
			body, _ := io.ReadAll(r.Body)
			form, _ := url.ParseQuery(string(body))
			want := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {epRefresh}, "client_id": {"my-client"}}
			if form.Get("grant_type") == "client_credentials" {
				want = url.Values{"grant_type": {"client_credentials"}, "client_id": {"my-client"}}
			}
			if diff := cmp.Diff(want, form); diff != "" || r.Header.Get("Authorization") != "" {
				t.Errorf("token request form (-want +got):\n%s", diff)
			}
			epJSON(w, 200, `{"access_token":"`+at+`","token_type":"Bearer","expires_in":3600}`)
		case "/revoke": // RFC 7009 §2.1
			body, _ := io.ReadAll(r.Body)
			form, _ := url.ParseQuery(string(body))
			want := url.Values{"token": {epRefresh}, "token_type_hint": {"refresh_token"}, "client_id": {"my-client"}}
			if diff := cmp.Diff(want, form); diff != "" || r.Header.Get("Authorization") != "" {
				t.Errorf("revocation request form (-want +got):\n%s", diff)
			}
		case "/api":
			if r.Header.Get("Authorization") != "Bearer "+at {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			io.WriteString(w, "hello, my-client")
		}
	}))
	s.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes refused on purpose
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// client returns an HTTP client that trusts the server, with cert as its client certificate
// when given.
func (s *mtlsServer) client(cert ...tls.Certificate) *http.Client {
	tr := s.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = cert
	return &http.Client{Transport: tr}
}

// TestMutualTLS: tls_client_auth against a TLS server that requires and checks the client
// certificate on the token endpoint and the API. With the certificate, the refresh (or the
// client_credentials grant) and the API
// request through NewClient both succeed; without it, the handshake fails and Refresh returns
// a *TransportError.
func TestMutualTLS(t *testing.T) {
	srv := newMTLSServer(t)
	e := &oauth2refresh.Endpoint{TokenURL: srv.URL + "/token", ClientID: "my-client", AuthMethod: oauth2refresh.AuthTLSClient}

	t.Run("with the certificate", func(t *testing.T) {
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, srv.client(srv.clientCert))
		ts := e.TokenSource(ctx, &oauth2.Token{RefreshToken: epRefresh})
		resp, err := oauth2refresh.NewClient(ctx, ts).Get(srv.URL + "/api")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "hello, my-client" {
			t.Errorf("API: %s %q", resp.Status, body)
		}
	})
	t.Run("client credentials with the certificate", func(t *testing.T) {
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, srv.client(srv.clientCert))
		resp, err := oauth2refresh.NewClient(ctx, e.ClientCredentials(ctx)).Get(srv.URL + "/api")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "hello, my-client" {
			t.Errorf("API: %s %q", resp.Status, body)
		}
	})
	t.Run("without a certificate", func(t *testing.T) {
		e := *e
		e.HTTPClient = srv.client()
		_, err := e.Refresh(context.Background(), epRefresh)
		var te *oauth2refresh.TransportError
		if !errors.As(err, &te) {
			t.Fatalf("Refresh: %v, want a *TransportError", err)
		}
		epCheckMessage(t, err)
		if _, err := srv.client().Get(srv.URL + "/api"); err == nil {
			t.Error("API request without a certificate succeeded")
		}
	})
}

// certSeen is a TLS server that asks for a client certificate (tls.RequestClientCert) without
// requiring one, and records whether each request came with one; handler answers.
type certSeen struct {
	*httptest.Server
	mu   sync.Mutex // guards seen
	seen []bool     // per request: a client certificate was presented
}

func newCertSeen(t *testing.T, handler http.HandlerFunc) *certSeen {
	t.Helper()
	s := &certSeen{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.seen = append(s.seen, len(r.TLS.PeerCertificates) > 0)
		s.mu.Unlock()
		handler(w, r)
	}))
	s.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *certSeen) requests() []bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]bool(nil), s.seen...)
}

// TestMutualTLSCertificateScope: where tls_client_auth's certificate goes. A client with the
// certificate put in the context under oauth2.HTTPClient presents it to the token endpoint,
// the API and any host an API redirect leads to, for NewClient sends API requests through
// it. With the certificate in Endpoint.HTTPClient alone, only the token endpoint sees it; with
// a transport that picks the certificate's transport by host, the token endpoint and the API
// host (that checks a certificate-bound token, RFC 8705 §3) see it, and a redirect target
// does not. Three TLS servers that ask for a certificate, each recording whether it came.
func TestMutualTLSCertificateScope(t *testing.T) {
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := caCert(t, "my-client", leafKey, nil, nil, x509.ExtKeyUsageClientAuth)
	cert := tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: leafKey}
	target := newCertSeen(t, func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); a != "" {
			t.Errorf("redirect target got Authorization %q", a)
		}
		io.WriteString(w, "elsewhere")
	})
	api := newCertSeen(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+epAccess {
			t.Errorf("API got Authorization %q", r.Header.Get("Authorization"))
		}
		// To another host: example.com, which the clients below dial at 127.0.0.1.
		http.Redirect(w, r, fmt.Sprintf("https://example.com:%d/landing", target.Listener.Addr().(*net.TCPAddr).Port), http.StatusFound)
	})
	token := newCertSeen(t, func(w http.ResponseWriter, r *http.Request) { epJSON(w, 200, epOKBody) })
	// The servers share httptest's certificate (for 127.0.0.1 and example.com): a client of
	// one trusts them all.
	transport := func(certs ...tls.Certificate) *http.Transport {
		tr := token.Client().Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.Certificates = certs
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, port, _ := net.SplitHostPort(addr); host == "example.com" {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}
		return tr
	}
	apiHost := strings.TrimPrefix(api.URL, "https://")
	tests := []struct {
		name     string
		endpoint *http.Client // Endpoint.HTTPClient
		ctx      *http.Client // under oauth2.HTTPClient
		want     map[string][]bool
	}{
		{"certificate in the context's client", nil, &http.Client{Transport: transport(cert)},
			map[string][]bool{"token": {true}, "API": {true}, "redirect target": {true}}},
		{"certificate in Endpoint.HTTPClient alone", &http.Client{Transport: transport(cert)}, &http.Client{Transport: transport()},
			map[string][]bool{"token": {true}, "API": {false}, "redirect target": {false}}},
		{"certificate for the API host alone", &http.Client{Transport: transport(cert)}, &http.Client{Transport: roundTripFunc(func() func(*http.Request) (*http.Response, error) {
			withCert, without := transport(cert), transport()
			return func(r *http.Request) (*http.Response, error) {
				if r.URL.Host == apiHost {
					return withCert.RoundTrip(r)
				}
				return without.RoundTrip(r)
			}
		}())}, map[string][]bool{"token": {true}, "API": {true}, "redirect target": {false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := map[string]int{"token": len(token.requests()), "API": len(api.requests()), "redirect target": len(target.requests())}
			e := &oauth2refresh.Endpoint{TokenURL: token.URL + "/token", ClientID: "my-client", AuthMethod: oauth2refresh.AuthTLSClient, HTTPClient: tc.endpoint}
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, tc.ctx)
			resp, err := oauth2refresh.NewClient(ctx, e.TokenSource(ctx, &oauth2.Token{RefreshToken: epRefresh})).Get(api.URL + "/api")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != "elsewhere" {
				t.Fatalf("API request ended with %s %q, want the redirect target's answer", resp.Status, body)
			}
			got := map[string][]bool{"token": token.requests()[n["token"]:], "API": api.requests()[n["API"]:],
				"redirect target": target.requests()[n["redirect target"]:]}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("certificate presented, per request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAuthMethodStringRFC7591(t *testing.T) {
	got := []string{oauth2refresh.AuthPrivateKeyJWT.String(), oauth2refresh.AuthClientSecretJWT.String(), oauth2refresh.AuthTLSClient.String()}
	want := []string{"private_key_jwt", "client_secret_jwt", "tls_client_auth"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("String (-want +got):\n%s", diff)
	}
}

// BenchmarkRefreshClientAuth measures what client authentication adds to one token request
// through an in-memory RoundTripper: a signed assertion against the Basic header of a secret.
func BenchmarkRefreshClientAuth(b *testing.B) {
	client := &http.Client{Transport: &memTransport{status: 200, body: []byte(epOKBody)}}
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		e    oauth2refresh.Endpoint
	}{
		{"secret_basic", oauth2refresh.Endpoint{ClientSecret: "client-secret"}},
		{"client_secret_jwt_HS256", oauth2refresh.Endpoint{ClientSecret: caJWTSecret, AuthMethod: oauth2refresh.AuthClientSecretJWT}},
		{"private_key_jwt_RS256", oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthPrivateKeyJWT, Assertion: oauth2refresh.JWTAssertion{Key: caRSAKey()}}},
		{"private_key_jwt_ES256", oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthPrivateKeyJWT, Assertion: oauth2refresh.JWTAssertion{Key: caECKey()}}},
		{"private_key_jwt_EdDSA", oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthPrivateKeyJWT, Assertion: oauth2refresh.JWTAssertion{Key: caEdKey()}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := bc.e
			e.TokenURL, e.ClientID, e.HTTPClient = "https://auth.example.com/token", "client-id", client
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Refresh(ctx, "RT-old"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

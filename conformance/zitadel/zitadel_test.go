package zitadel_test

// private_key_jwt (RFC 7523 §2.2) on refresh against zitadel/oidc's OpenID Provider, which
// verifies each assertion itself (go-jose v4): signature with the key the storage registered
// for the client and the kid, alg (RS256, ES256, PS256), iss = sub, aud = the issuer, exp, and
// an iat at most an hour old. Both of zitadel's HTTP front ends are run: the Provider's own
// router (op.NewProvider) and the Server interface (op.RegisterLegacyServer).

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
)

var (
	rsaKey = sync.OnceValue(func() *rsa.PrivateKey { k, _ := rsa.GenerateKey(rand.Reader, 2048); return k })
	ecKey  = sync.OnceValue(func() *ecdsa.PrivateKey { k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return k })
)

// opServer is zitadel's OpenID Provider on an httptest.Server, with a protected API at /api
// that accepts the provider's access tokens.
type opServer struct {
	issuer   string
	tokenURL string // from the discovery document
	apiURL   string
	storage  *memStorage
	apiOK    atomic.Int64 // API requests answered 200
}

// frontEnds are zitadel's two ways to serve a Provider.
// invalidClient is the HTTP status each answers invalid_client with: the Provider's router
// says 401 (RFC 6749 §5.2), the Server interface 400, as for every other error code.
var frontEnds = []struct {
	name          string
	handler       func(*op.Provider) http.Handler
	invalidClient int
}{
	{"Provider", func(p *op.Provider) http.Handler { return p }, http.StatusUnauthorized},
	{"LegacyServer", func(p *op.Provider) http.Handler {
		return op.RegisterLegacyServer(op.NewLegacyServer(p, *op.DefaultEndpoints), http.NotFound)
	}, http.StatusBadRequest},
}

// TestMain silences zitadel's log lines (it logs through log/slog's default logger).
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

func startOP(t *testing.T, frontEnd func(*op.Provider) http.Handler) *opServer {
	t.Helper()
	st, err := newMemStorage()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	s := &opServer{issuer: "http://" + srv.Listener.Addr().String(), storage: st}
	s.apiURL = s.issuer + "/api"
	cfg := &op.Config{AuthMethodPrivateKeyJWT: true, GrantTypeRefreshToken: true}
	if _, err := rand.Read(cfg.CryptoKey[:]); err != nil {
		t.Fatal(err)
	}
	p, err := op.NewProvider(cfg, st, op.StaticIssuer(s.issuer), op.WithAllowInsecure())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", frontEnd(p))
	mux.HandleFunc("GET /api", func(w http.ResponseWriter, r *http.Request) {
		// zitadel's opaque access token is "token id:subject", encrypted with the config key.
		at, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		plain, err := p.Crypto().Decrypt(at)
		id, sub, _ := strings.Cut(plain, ":")
		if !ok || err != nil || !st.accessTokenValid(id, sub) {
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		s.apiOK.Add(1)
		w.Write([]byte("ok"))
	})
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)

	// The discovery document says where the token endpoint is and that it takes private_key_jwt.
	resp, err := http.Get(s.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d struct {
		Issuer                string   `json:"issuer"`
		TokenEndpoint         string   `json:"token_endpoint"`
		TokenEndpointAuth     []string `json:"token_endpoint_auth_methods_supported"`
		TokenEndpointAuthAlgs []string `json:"token_endpoint_auth_signing_alg_values_supported"`
		GrantTypes            []string `json:"grant_types_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.Issuer != s.issuer || d.TokenEndpoint != s.issuer+"/oauth/token" ||
		!slices.Contains(d.TokenEndpointAuth, "private_key_jwt") || !slices.Contains(d.GrantTypes, "refresh_token") {
		t.Fatalf("discovery document: %+v", d)
	}
	s.tokenURL = d.TokenEndpoint
	return s
}

// apiStatus calls the API through c.
func (s *opServer) apiStatus(t *testing.T, c *http.Client) int {
	t.Helper()
	resp, err := c.Get(s.apiURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// endpoint registers a private_key_jwt client with key's public part under kid "k1", and
// returns an Endpoint authenticating as it with the assertion a (zitadel wants aud = issuer).
func (s *opServer) endpoint(id string, key crypto.Signer, a oauth2refresh.ClientAssertion) *oauth2refresh.Endpoint {
	s.storage.addClient(&client{id: id, keyID: "k1", key: key.Public()})
	return &oauth2refresh.Endpoint{TokenURL: s.tokenURL, ClientID: id, AuthMethod: oauth2refresh.AuthPrivateKeyJWT, Assertion: a}
}

// TestZitadelPrivateKeyJWT: zitadel accepts refreshes authenticated with RS256, PS256 and
// ES256 assertions; the refresh token rotates (the test storage rotates), the old one is then
// invalid_grant, and the access tokens work at the API, also through NewClient.
func TestZitadelPrivateKeyJWT(t *testing.T) {
	for _, fe := range frontEnds {
		for _, tc := range []struct {
			alg string
			key crypto.Signer
		}{{"RS256", rsaKey()}, {"PS256", rsaKey()}, {"ES256", ecKey()}} {
			t.Run(fe.name+"/"+tc.alg, func(t *testing.T) {
				s := startOP(t, fe.handler)
				e := s.endpoint("app", tc.key, oauth2refresh.JWTAssertion{Key: tc.key, Algorithm: tc.alg, KeyID: "k1", Audience: s.issuer})
				rt := s.storage.issue("app", "user-1", "openid", "offline_access")
				var used []string
				for range 2 {
					tok, err := e.Refresh(context.Background(), rt)
					if err != nil {
						t.Fatal(err)
					}
					if tok.RefreshToken == "" || tok.RefreshToken == rt || tok.Type() != "Bearer" || tok.Expiry.IsZero() {
						t.Fatalf("token: type %q, expiry %v, refresh token rotated: %t", tok.Type(), tok.Expiry, tok.RefreshToken != rt)
					}
					if status := s.apiStatus(t, oauth2.NewClient(context.Background(), oauth2.StaticTokenSource(tok))); status != http.StatusOK {
						t.Errorf("API status %d", status)
					}
					used, rt = append(used, rt), tok.RefreshToken
				}
				// A rotated refresh token is refused, after a successful client authentication.
				_, err := e.Refresh(context.Background(), used[0])
				var re *oauth2refresh.RequestError
				if !errors.As(err, &re) || re.Code != "invalid_grant" || re.StatusCode != http.StatusBadRequest || !errors.Is(err, oauth2refresh.ErrInvalidGrant) {
					t.Fatalf("refresh with a rotated refresh token: %v, want invalid_grant (HTTP 400)", err)
				}
				ts := e.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt})
				if status := s.apiStatus(t, oauth2refresh.NewClient(context.Background(), ts)); status != http.StatusOK {
					t.Errorf("API status through NewClient %d", status)
				}
				// Four assertions verified, three refreshes, three API requests.
				if diff := cmp.Diff(storageStats{KeyLookups: 4, Refreshes: 3}, s.storage.statsNow()); diff != "" {
					t.Errorf("storage stats (-want +got):\n%s", diff)
				}
				if got := s.apiOK.Load(); got != 3 {
					t.Errorf("API requests answered 200: %d, want 3", got)
				}
			})
		}
	}
}

// TestZitadelPrivateKeyJWTRefused: what zitadel answers to assertions it refuses, pinned.
// zitadel turns every assertion failure (signature, kid, alg, aud, exp, iat) into
// invalid_grant (HTTP 400), where RFC 6749 §5.2 says invalid_client: a TokenSource sees a
// wrong client key as a dead grant. A secret sent for a private_key_jwt client is
// invalid_client (HTTP 401 from the Provider's router, 400 from the Server interface).
// None of them spends the refresh token.
func TestZitadelPrivateKeyJWTRefused(t *testing.T) {
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	for _, fe := range frontEnds {
		t.Run(fe.name, func(t *testing.T) {
			s := startOP(t, fe.handler)
			good := oauth2refresh.JWTAssertion{Key: ecKey(), KeyID: "k1", Audience: s.issuer}
			e := s.endpoint("app", ecKey(), good)
			s.endpoint("app-eddsa", edKey, nil)
			rt := s.storage.issue("app", "user-1", "openid", "offline_access")
			rtEd := s.storage.issue("app-eddsa", "user-1", "openid", "offline_access")
			shifted := func(by, lifetime time.Duration) oauth2refresh.ClientAssertion {
				a := good
				a.Lifetime = lifetime
				return oauth2refresh.AssertionFunc(func(ctx context.Context, r oauth2refresh.AssertionRequest) (string, error) {
					r.Now = r.Now.Add(by)
					return a.Assertion(ctx, r)
				})
			}
			assert := func(a oauth2refresh.ClientAssertion) func(*oauth2refresh.Endpoint) {
				return func(e *oauth2refresh.Endpoint) { e.Assertion = a }
			}
			for _, tc := range []struct {
				name string
				edit func(*oauth2refresh.Endpoint)
				rt   string // the refresh token sent, if not rt
				code string
				// description is a part of zitadel's error_description: which check failed.
				description string
				status      int
				is          error
			}{
				{name: "another key",
					edit: assert(oauth2refresh.JWTAssertion{Key: other, KeyID: "k1", Audience: s.issuer}),
					code: "invalid_grant", description: "invalid signature", status: 400, is: oauth2refresh.ErrInvalidGrant},
				{name: "unknown kid",
					edit: assert(oauth2refresh.JWTAssertion{Key: ecKey(), KeyID: "k2", Audience: s.issuer}),
					code: "invalid_grant", description: "key not found", status: 400, is: oauth2refresh.ErrInvalidGrant},
				{name: "expired",
					edit: assert(shifted(-10*time.Minute, 0)),
					code: "invalid_grant", description: "token has expired", status: 400, is: oauth2refresh.ErrInvalidGrant},
				{name: "issued more than an hour ago, not expired",
					edit: assert(shifted(-61*time.Minute, 2*time.Hour)),
					code: "invalid_grant", description: "must not be older than", status: 400, is: oauth2refresh.ErrInvalidGrant},
				{name: "token URL as audience (the JWTAssertion default)",
					edit: assert(oauth2refresh.JWTAssertion{Key: ecKey(), KeyID: "k1"}),
					code: "invalid_grant", description: "audience is not valid", status: 400, is: oauth2refresh.ErrInvalidGrant},
				{name: "EdDSA, which zitadel does not take",
					edit: func(e *oauth2refresh.Endpoint) {
						e.ClientID, e.Assertion = "app-eddsa", oauth2refresh.JWTAssertion{Key: edKey, KeyID: "k1", Audience: s.issuer}
					},
					rt: rtEd, code: "invalid_grant", description: "signature algorithm not supported", status: 400, is: oauth2refresh.ErrInvalidGrant},
				{name: "client secret instead of an assertion",
					edit: func(e *oauth2refresh.Endpoint) {
						e.AuthMethod, e.ClientSecret, e.Assertion = oauth2refresh.AuthRequestBody, "secret", nil
					},
					code: "invalid_client", description: "", status: fe.invalidClient, is: oauth2refresh.ErrInvalidClient},
			} {
				t.Run(tc.name, func(t *testing.T) {
					e := *e
					tc.edit(&e)
					refresh := rt
					if tc.rt != "" {
						refresh = tc.rt
					}
					_, err := e.Refresh(context.Background(), refresh)
					var re *oauth2refresh.RequestError
					if !errors.As(err, &re) || re.Code != tc.code || re.StatusCode != tc.status || !errors.Is(err, tc.is) ||
						!strings.Contains(re.Description, tc.description) {
						t.Fatalf("Refresh: %v, want a *RequestError %s (HTTP %d) saying %q", err, tc.code, tc.status, tc.description)
					}
				})
			}
			// The refused requests did not spend the refresh token.
			if _, err := e.Refresh(context.Background(), rt); err != nil {
				t.Fatalf("refresh after the refused assertions: %v", err)
			}
			if got := s.storage.statsNow().Refreshes; got != 1 {
				t.Errorf("refreshes: %d, want 1", got)
			}
		})
	}
}

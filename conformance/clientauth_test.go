package conformance_test

// private_key_jwt (RFC 7523 §2.2) against fosite, which verifies each assertion with the
// client's registered JWKS: signature, algorithm, iss, sub, aud, exp, and a one-time jti.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/conformance/authserver"
)

var (
	jwtRSAKey = sync.OnceValue(func() *rsa.PrivateKey { k, _ := rsa.GenerateKey(rand.Reader, 2048); return k })
	jwtECKey  = sync.OnceValue(func() *ecdsa.PrivateKey { k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return k })
)

// keyedClient registers a private_key_jwt client whose key is key, and returns the Endpoint
// that authenticates as it with a JWTAssertion for alg.
func keyedClient(t *testing.T, srv *authserver.Server, id string, key crypto.Signer, alg string, assertion oauth2refresh.ClientAssertion) *oauth2refresh.Endpoint {
	t.Helper()
	if err := srv.AddClient(authserver.Client{ID: id, AuthMethod: authserver.PrivateKeyJWT,
		PublicKey: key.Public(), KeyID: "k1", SigningAlg: alg, Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	if assertion == nil {
		assertion = oauth2refresh.JWTAssertion{Key: key, KeyID: "k1", Algorithm: alg}
	}
	return &oauth2refresh.Endpoint{TokenURL: srv.TokenURL, ClientID: id, AuthMethod: oauth2refresh.AuthPrivateKeyJWT, Assertion: assertion}
}

// TestFositePrivateKeyJWT: refreshes authenticated with RS256, PS256 and ES256 assertions are
// accepted by fosite, and the access tokens work at its API.
func TestFositePrivateKeyJWT(t *testing.T) {
	for _, tc := range []struct {
		alg string
		key crypto.Signer
	}{{"RS256", jwtRSAKey()}, {"PS256", jwtRSAKey()}, {"ES256", jwtECKey()}} {
		t.Run(tc.alg, func(t *testing.T) {
			srv := startFosite(t, authserver.Options{})
			e := keyedClient(t, srv, "app-"+tc.alg, tc.key, tc.alg, nil)
			g, err := srv.IssueRefreshToken(e.ClientID, "read")
			if err != nil {
				t.Fatal(err)
			}
			rt := g.RefreshToken
			for range 3 {
				tok, err := e.Refresh(context.Background(), rt)
				if err != nil {
					t.Fatal(err)
				}
				if status := apiStatus(t, bearerClient(tok.AccessToken), srv); status != http.StatusOK {
					t.Errorf("API status %d", status)
				}
				rt = tok.RefreshToken
			}
			ts := e.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt})
			if status := apiStatus(t, oauth2refresh.NewClient(context.Background(), ts), srv); status != http.StatusOK {
				t.Errorf("API status through NewClient %d", status)
			}
			if diff := cmp.Diff(authserver.Stats{TokenRequests: 4, TokensIssued: 4, APIRequests: 4}, srv.Stats()); diff != "" {
				t.Errorf("server stats (-want +got):\n%s", diff)
			}
			wantFamily(t, srv, g, false)
		})
	}
}

// TestFositePrivateKeyJWTRefused: fosite refuses an assertion signed with another key, an
// expired one, and one whose jti it has seen (sent by hand: the library never repeats one),
// each with its typed error; none of them spends the refresh token. fosite v0.49 answers the
// expired assertion with HTTP 500 {"error":"error"}: it hands the JWT library's claim error
// on as is, where a signature failure becomes invalid_client.
func TestFositePrivateKeyJWTRefused(t *testing.T) {
	srv := startFosite(t, authserver.Options{})
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var mu sync.Mutex // guards last
	var last string   // the last assertion made by recording
	good := oauth2refresh.JWTAssertion{Key: jwtECKey(), KeyID: "k1"}
	recording := oauth2refresh.AssertionFunc(func(ctx context.Context, r oauth2refresh.AssertionRequest) (string, error) {
		a, err := good.Assertion(ctx, r)
		mu.Lock()
		defer mu.Unlock()
		last = a
		return a, err
	})
	replay := oauth2refresh.AssertionFunc(func(context.Context, oauth2refresh.AssertionRequest) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		return last, nil
	})
	expired := oauth2refresh.AssertionFunc(func(ctx context.Context, r oauth2refresh.AssertionRequest) (string, error) {
		r.Now = r.Now.Add(-10 * time.Minute)
		return good.Assertion(ctx, r)
	})
	e := keyedClient(t, srv, "app", jwtECKey(), "ES256", recording)
	g, err := srv.IssueRefreshToken("app", "read")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := e.Refresh(context.Background(), g.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		assertion oauth2refresh.ClientAssertion
		code      string
		status    int
		is        error
	}{
		{"another key", oauth2refresh.JWTAssertion{Key: other, KeyID: "k1"}, "invalid_client", 401, oauth2refresh.ErrInvalidClient},
		{"expired", expired, "error", 500, nil},
		{"replayed jti", replay, "jti_known", 400, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := *e
			e.Assertion = tc.assertion
			_, err := e.Refresh(context.Background(), tok.RefreshToken)
			var re *oauth2refresh.RequestError
			if !errors.As(err, &re) || re.Code != tc.code || re.StatusCode != tc.status || tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("Refresh: %v, want a *RequestError %s (HTTP %d)", err, tc.code, tc.status)
			}
		})
	}
	// The refresh token was not spent by the refused requests.
	if _, err := e.Refresh(context.Background(), tok.RefreshToken); err != nil {
		t.Fatalf("refresh after the refused assertions: %v", err)
	}
	wantFamily(t, srv, g, false)
}

// TestFositeJTINeverRepeated: 64 goroutines, each refreshing its own grant 40 times in a row,
// all with the same key: fosite, which remembers every jti, accepts all 2,560 assertions.
func TestFositeJTINeverRepeated(t *testing.T) {
	const goroutines, each = 64, 40
	srv := startFosite(t, authserver.Options{})
	e := keyedClient(t, srv, "app", jwtECKey(), "ES256", nil)
	var wg sync.WaitGroup
	for i := range goroutines {
		g, err := srv.IssueRefreshToken("app", "read")
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			rt := g.RefreshToken
			for n := range each {
				tok, err := e.Refresh(context.Background(), rt)
				if err != nil {
					t.Error(fmt.Errorf("goroutine %d, refresh %d: %w", i, n, err))
					return
				}
				rt = tok.RefreshToken
			}
		})
	}
	wg.Wait()
	want := authserver.Stats{TokenRequests: goroutines * each, TokensIssued: goroutines * each}
	if diff := cmp.Diff(want, srv.Stats()); diff != "" {
		t.Errorf("server stats (-want +got):\n%s", diff)
	}
}

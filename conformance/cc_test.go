package conformance_test

// The client_credentials grant (RFC 6749 §4.4) against fosite, with each client
// authentication fosite has: client_secret_basic, client_secret_post and private_key_jwt.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/conformance/authserver"
)

// TestFositeClientCredentials: fosite issues a token for the scopes asked to a client that
// authenticated with a secret (Basic or in the body) or a private_key_jwt assertion (RS256,
// ES256); the token works at its API through NewClient, and 20 concurrent callers share one
// token request. A wrong secret is ErrInvalidClient, a scope the client may not hold
// ErrInvalidScope, neither a dead grant.
func TestFositeClientCredentials(t *testing.T) {
	srv := startFosite(t, authserver.Options{})
	secretClient := func(id, method string, am oauth2refresh.AuthMethod) *oauth2refresh.Endpoint {
		if err := srv.AddClient(authserver.Client{ID: id, Secret: "cc-secret-" + id, AuthMethod: method, Scopes: []string{"read", "write"}}); err != nil {
			t.Fatal(err)
		}
		return &oauth2refresh.Endpoint{TokenURL: srv.TokenURL, ClientID: id, ClientSecret: "cc-secret-" + id, AuthMethod: am}
	}
	for _, tc := range []struct {
		name string
		e    *oauth2refresh.Endpoint
	}{
		{"client_secret_basic", secretClient("cc-basic", authserver.ClientSecretBasic, oauth2refresh.AuthBasic)},
		{"client_secret_post", secretClient("cc-post", authserver.ClientSecretPost, oauth2refresh.AuthRequestBody)},
		{"private_key_jwt RS256", keyedClient(t, srv, "cc-rs256", jwtRSAKey(), "RS256", nil)},
		{"private_key_jwt ES256", keyedClient(t, srv, "cc-es256", jwtECKey(), "ES256", nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := *tc.e
			e.Scopes = []string{"read"}
			before := srv.Stats()
			ts := e.ClientCredentials(context.Background())
			errs := make(chan error, 20)
			for range 20 {
				go func() { _, err := ts.Token(); errs <- err }()
			}
			for range 20 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			if tok, _ := ts.Token(); tok.RefreshToken != "" || tok.Expiry.IsZero() {
				t.Errorf("token: refresh token %q, expiry %v", tok.RefreshToken, tok.Expiry)
			}
			resp, err := oauth2refresh.NewClient(context.Background(), ts).Get(srv.APIURL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var info authserver.TokenInfo
			if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("API: %s, %v", resp.Status, err)
			}
			if info.ClientID != e.ClientID || !slices.Equal(info.Scopes, []string{"read"}) {
				t.Errorf("API sees client %q scopes %q, want %q [read]", info.ClientID, info.Scopes, e.ClientID)
			}
			got := srv.Stats()
			got.TokenRequests -= before.TokenRequests
			got.TokensIssued -= before.TokensIssued
			got.APIRequests -= before.APIRequests
			got.TokenErrors -= before.TokenErrors
			if diff := cmp.Diff(authserver.Stats{TokenRequests: 1, TokensIssued: 1, APIRequests: 1}, got); diff != "" {
				t.Errorf("server stats (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		good := secretClient("cc-refused", authserver.AnyAuthMethod, oauth2refresh.AuthBasic)
		for _, tc := range []struct {
			name   string
			secret string
			scopes []string
			want   error
		}{
			{"wrong secret", "not-the-secret", nil, oauth2refresh.ErrInvalidClient},
			{"scope not allowed", good.ClientSecret, []string{"admin"}, oauth2refresh.ErrInvalidScope},
		} {
			e := *good
			e.ClientSecret, e.Scopes = tc.secret, tc.scopes
			_, err := e.ClientCredentials(context.Background()).Token()
			var re *oauth2refresh.RequestError
			if !errors.Is(err, tc.want) || !errors.As(err, &re) || errors.As(err, new(*oauth2refresh.DeadGrantError)) {
				t.Errorf("%s: %v, want a *RequestError matching %v", tc.name, err, tc.want)
			}
		}
	})
}

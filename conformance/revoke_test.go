package conformance_test

// Token revocation (RFC 7009) against fosite's revocation endpoint, which authenticates the
// client as its token endpoint does and revokes the whole grant of the token it is given.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/conformance/authserver"
)

// TestFositeRevokeRefreshToken: for each client authentication fosite accepts, Revoke of a
// refresh token succeeds, the next refresh with it gets invalid_grant, the grant's access
// token is rejected by the resource server, and revoking again (and revoking a token fosite
// never issued) succeeds too.
func TestFositeRevokeRefreshToken(t *testing.T) {
	tests := []struct {
		name   string
		client authserver.Client
		method oauth2refresh.AuthMethod
	}{
		{"client_secret_basic", authserver.Client{Secret: "s3cret&+/ü", AuthMethod: authserver.ClientSecretBasic}, oauth2refresh.AuthBasic},
		{"client_secret_post", authserver.Client{Secret: "s3cret&+/ü", AuthMethod: authserver.ClientSecretPost}, oauth2refresh.AuthRequestBody},
		{"none", authserver.Client{AuthMethod: authserver.None}, oauth2refresh.AuthNone},
		{"auto-detect, post-only client", authserver.Client{Secret: "s3cret&+/ü", AuthMethod: authserver.ClientSecretPost}, oauth2refresh.AuthAutoDetect},
		{"private_key_jwt", authserver.Client{}, oauth2refresh.AuthPrivateKeyJWT},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			srv := startFosite(t, authserver.Options{})
			// A client id no earlier run used: AuthAutoDetect remembers per token URL and client id.
			id := fmt.Sprintf("revoke-app-%d", autoDetectRuns.Add(1))
			var e *oauth2refresh.Endpoint
			if tc.method == oauth2refresh.AuthPrivateKeyJWT {
				e = keyedClient(t, srv, id, jwtECKey(), "ES256", nil)
			} else {
				tc.client.ID, tc.client.Scopes = id, []string{"read"}
				if err := srv.AddClient(tc.client); err != nil {
					t.Fatal(err)
				}
				e = &oauth2refresh.Endpoint{TokenURL: srv.TokenURL, ClientID: id, ClientSecret: tc.client.Secret, AuthMethod: tc.method}
			}
			e.RevocationURL = srv.RevocationURL
			g, err := srv.IssueRefreshToken(id, "read")
			if err != nil {
				t.Fatal(err)
			}
			tok, err := e.Refresh(ctx, g.RefreshToken)
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if got := apiStatus(t, bearerClient(tok.AccessToken), srv); got != http.StatusOK {
				t.Fatalf("API before revocation: HTTP %d", got)
			}

			if err := e.Revoke(ctx, tok); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			wantFamily(t, srv, g, true)
			_, err = e.Refresh(ctx, tok.RefreshToken)
			if !errors.Is(err, oauth2refresh.ErrInvalidGrant) {
				t.Errorf("Refresh after Revoke: %v, want ErrInvalidGrant", err)
			}
			if got := apiStatus(t, bearerClient(tok.AccessToken), srv); got != http.StatusUnauthorized {
				t.Errorf("API with the grant's access token after revocation: HTTP %d, want 401", got)
			}

			// RFC 7009 §2.2: an invalid token is answered 200 as well.
			if err := e.Revoke(ctx, tok); err != nil {
				t.Errorf("second Revoke: %v", err)
			}
			if err := e.Revoke(ctx, &oauth2.Token{RefreshToken: "never-issued." + strings.Repeat("x", 43)}); err != nil {
				t.Errorf("Revoke of an unknown token: %v", err)
			}
		})
	}
}

// TestFositeRevokeAccessToken: Revoke of an access token makes the resource server reject
// it. fosite revokes the whole grant with it, as RFC 7009 §2.1 allows: the refresh token dies
// too.
func TestFositeRevokeAccessToken(t *testing.T) {
	ctx := context.Background()
	srv := startFosite(t, authserver.Options{})
	g := seedGrant(t, srv, authserver.Client{ID: "app", Secret: "s", Scopes: []string{"read"}}, "read")
	e := &oauth2refresh.Endpoint{TokenURL: srv.TokenURL, RevocationURL: srv.RevocationURL, ClientID: "app", ClientSecret: "s"}
	tok, err := e.Refresh(ctx, g.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if got := apiStatus(t, bearerClient(tok.AccessToken), srv); got != http.StatusOK {
		t.Fatalf("API before revocation: HTTP %d", got)
	}
	if err := e.Revoke(ctx, &oauth2.Token{AccessToken: tok.AccessToken}); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if got := apiStatus(t, bearerClient(tok.AccessToken), srv); got != http.StatusUnauthorized {
		t.Errorf("API after revocation: HTTP %d, want 401", got)
	}
	if _, err := e.Refresh(ctx, tok.RefreshToken); !errors.Is(err, oauth2refresh.ErrInvalidGrant) {
		t.Errorf("Refresh after the access token was revoked: %v, want ErrInvalidGrant (fosite revokes the grant)", err)
	}
	if err := e.Revoke(ctx, &oauth2.Token{AccessToken: tok.AccessToken}); err != nil {
		t.Errorf("second Revoke: %v", err)
	}
}

// TestFositeRevokeWrongClient: a revocation with the wrong client secret gets invalid_client,
// revokes nothing, and the token sent is not in the error.
func TestFositeRevokeWrongClient(t *testing.T) {
	for _, m := range []oauth2refresh.AuthMethod{oauth2refresh.AuthBasic, oauth2refresh.AuthRequestBody} {
		t.Run(m.String(), func(t *testing.T) {
			ctx := context.Background()
			srv := startFosite(t, authserver.Options{})
			g := seedGrant(t, srv, authserver.Client{ID: "app", Secret: "right"})
			e := &oauth2refresh.Endpoint{TokenURL: srv.TokenURL, RevocationURL: srv.RevocationURL, ClientID: "app",
				ClientSecret: "wrong", AuthMethod: m}
			err := e.Revoke(ctx, &oauth2.Token{RefreshToken: g.RefreshToken})
			var re *oauth2refresh.RequestError
			if !errors.Is(err, oauth2refresh.ErrInvalidClient) || !errors.As(err, &re) || re.StatusCode != http.StatusUnauthorized {
				t.Fatalf("Revoke: %v, want invalid_client with HTTP 401", err)
			}
			if oauth2refresh.IsTemporary(err) {
				t.Error("IsTemporary(invalid_client) = true")
			}
			if strings.Contains(err.Error(), g.RefreshToken) || strings.Contains(err.Error(), "wrong") {
				t.Errorf("error %q holds a secret", err)
			}
			wantFamily(t, srv, g, false)
			right := *e
			right.ClientSecret = "right"
			if _, err := right.Refresh(ctx, g.RefreshToken); err != nil {
				t.Errorf("Refresh after the refused revocation: %v", err)
			}
		})
	}
}

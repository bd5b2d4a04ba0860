package zitadel_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenkit/oauth2refresh"
)

// TestZitadelClientCredentials: zitadel's two front ends issue a client_credentials token to
// a client that authenticates with its secret, in an HTTP Basic header or in the body; 20
// concurrent callers share one token request, and the token works at the API through
// NewClient. A wrong secret is ErrInvalidClient (at the front end's status), not a dead
// grant. zitadel/oidc v3 authenticates client_credentials requests with a secret alone
// (VerifyClient hands ClientCredentialsStorage the id and secret, never an assertion): it
// has no private_key_jwt for this grant to prove against.
func TestZitadelClientCredentials(t *testing.T) {
	for _, fe := range frontEnds {
		for _, am := range []oauth2refresh.AuthMethod{oauth2refresh.AuthBasic, oauth2refresh.AuthRequestBody} {
			t.Run(fe.name+"/"+am.String(), func(t *testing.T) {
				s := startOP(t, fe.handler)
				s.storage.addClient(&client{id: "svc", secret: "svc-secret:/+ x"})
				e := &oauth2refresh.Endpoint{TokenURL: s.tokenURL, ClientID: "svc", ClientSecret: "svc-secret:/+ x", AuthMethod: am,
					Scopes: []string{"api"}}
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
				if tok, _ := ts.Token(); tok.RefreshToken != "" || tok.Expiry.IsZero() || tok.Type() != "Bearer" {
					t.Errorf("token: type %q, expiry %v, refresh token %q", tok.Type(), tok.Expiry, tok.RefreshToken)
				}
				if status := s.apiStatus(t, oauth2refresh.NewClient(context.Background(), ts)); status != http.StatusOK {
					t.Errorf("API status through NewClient %d", status)
				}
				if diff := cmp.Diff(storageStats{Issued: 1}, s.storage.statsNow()); diff != "" {
					t.Errorf("storage stats (-want +got):\n%s", diff)
				}

				bad := *e
				bad.ClientSecret = "wrong"
				_, err := bad.ClientCredentials(context.Background()).Token()
				var re *oauth2refresh.RequestError
				if !errors.As(err, &re) || re.StatusCode != fe.invalidClient || !errors.Is(err, oauth2refresh.ErrInvalidClient) ||
					errors.As(err, new(*oauth2refresh.DeadGrantError)) {
					t.Errorf("wrong secret: %v, want invalid_client (HTTP %d)", err, fe.invalidClient)
				}
			})
		}
	}
}

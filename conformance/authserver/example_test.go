package authserver_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/conformance/authserver"
)

// A grant is seeded, refreshed by an oauth2refresh.TokenSource behind an oauth2.NewClient that
// calls the protected API, and then killed by sending its rotated-out refresh token again.
func Example() {
	srv, err := authserver.Start(authserver.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	if err := srv.AddClient(authserver.Client{ID: "app", Secret: "s3cret",
		AuthMethod: authserver.ClientSecretBasic, Scopes: []string{"read"}}); err != nil {
		log.Fatal(err)
	}
	grant, err := srv.IssueRefreshToken("app", "read")
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	e := &oauth2refresh.Endpoint{TokenURL: srv.TokenURL, ClientID: "app", ClientSecret: "s3cret"}
	var saved string
	ts := e.TokenSource(ctx, &oauth2.Token{RefreshToken: grant.RefreshToken},
		oauth2refresh.OnNewToken(func(_ context.Context, t *oauth2.Token) error {
			saved = t.RefreshToken // persist it here
			return nil
		}))
	resp, err := oauth2.NewClient(ctx, ts).Get(srv.APIURL)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("API:", resp.Status)
	fmt.Println("refresh token rotated and saved:", saved != "" && saved != grant.RefreshToken)

	_, err = e.Refresh(ctx, grant.RefreshToken) // the rotated-out token, sent again
	fmt.Println("reuse gives invalid_grant:", errors.Is(err, oauth2refresh.ErrInvalidGrant))
	revoked, err := srv.Revoked(grant.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("family revoked:", revoked)
	fmt.Printf("%+v\n", srv.Stats())
	// Output:
	// API: 200 OK
	// refresh token rotated and saved: true
	// reuse gives invalid_grant: true
	// family revoked: true
	// {TokenRequests:2 TokensIssued:1 TokenErrors:1 ReuseDetected:1 APIRequests:1 APIRejected:0}
}

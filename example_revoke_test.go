package oauth2refresh_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
)

func ExampleEndpoint_Revoke() {
	// A revocation endpoint standing in for a real provider's (RFC 7009): it shows what it
	// receives and answers 200, as it does for a token that was already invalid.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		id, _, _ := r.BasicAuth()
		fmt.Printf("server got: %s %s token=%s token_type_hint=%s client=%s\n",
			r.Method, r.URL.Path, r.PostForm.Get("token"), r.PostForm.Get("token_type_hint"), id)
	}))
	defer srv.Close()

	e := &oauth2refresh.Endpoint{
		TokenURL:      srv.URL + "/oauth2/token", // https:// in real life
		RevocationURL: srv.URL + "/oauth2/revoke",
		ClientID:      "my-client",
		ClientSecret:  "my-secret",
	}
	saved := &oauth2.Token{AccessToken: "at-1", RefreshToken: "rt-1"} // the user's stored token

	// On sign-out: revoking the refresh token ends the grant, and the server revokes its
	// access tokens with it if it can. Then forget the token, whatever the outcome.
	err := e.Revoke(context.Background(), saved)
	if oauth2refresh.IsTemporary(err) {
		log.Printf("revoking later: %v", err) // e.g. HTTP 503: queue a retry
	} else if err != nil {
		log.Fatal(err) // e.g. invalid_client: the Endpoint's credentials are wrong
	}
	fmt.Println("signed out")
	// Output:
	// server got: POST /oauth2/revoke token=rt-1 token_type_hint=refresh_token client=my-client
	// signed out
}

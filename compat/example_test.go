package compat_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/compat"
)

// exampleServer is a provider on loopback: a token endpoint at /token that rotates refresh
// tokens (rt-1 -> rt-2 -> ...) and rejects any other, and an API at /me that greets the
// bearer of a token it issued.
func exampleServer() *httptest.Server {
	var mu sync.Mutex // guards next and issued
	next := 1
	issued := map[string]bool{}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch r.URL.Path {
		case "/token":
			w.Header().Set("Content-Type", "application/json")
			if r.PostFormValue("refresh_token") != "rt-"+strconv.Itoa(next) {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"error":"invalid_grant","error_description":"unknown refresh token"}`)
				return
			}
			next++
			at := "at-" + strconv.Itoa(next)
			issued[at] = true
			fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600,"refresh_token":"rt-%d"}`, at, next)
		case "/me":
			at, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || !issued[at] {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			fmt.Fprintf(w, "hello, holder of %s", at)
		}
	}))
}

// An app written for golang.org/x/oauth2 switches by replacing cfg.TokenSource(ctx, tok) with
// compat.TokenSource(ctx, cfg, tok), and gains a hook to persist rotated refresh tokens.
func ExampleTokenSource() {
	srv := exampleServer()
	defer srv.Close()
	ctx := context.Background()

	cfg := &oauth2.Config{ // the app's existing configuration, unchanged
		ClientID:     "my-app",
		ClientSecret: "my-secret",
		Endpoint:     oauth2.Endpoint{TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInParams},
		Scopes:       []string{"profile"},
	}
	saved := &oauth2.Token{RefreshToken: "rt-1"} // as loaded from the app's storage

	// Before: ts := cfg.TokenSource(ctx, saved)
	ts := compat.TokenSource(ctx, cfg, saved,
		oauth2refresh.OnNewToken(func(ctx context.Context, t *oauth2.Token) error {
			fmt.Println("saving rotated refresh token", t.RefreshToken)
			return nil // an error here is returned by Token, and the save is retried
		}))

	tok, err := ts.Token()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("access token:", tok.AccessToken)
	// Output:
	// saving rotated refresh token rt-2
	// access token: at-2
}

// The source is an oauth2.TokenSource, so it can be passed to oauth2.NewClient as before. Note
// that oauth2.NewClient caches the token in front of the source; oauth2refresh.NewClient does
// not, and retries once after a 401 (see the Client example).
func ExampleTokenSource_newClient() {
	srv := exampleServer()
	defer srv.Close()
	ctx := context.Background()
	cfg := &oauth2.Config{
		ClientID:     "my-app",
		ClientSecret: "my-secret",
		Endpoint:     oauth2.Endpoint{TokenURL: srv.URL + "/token"},
	}

	ts := compat.TokenSource(ctx, cfg, &oauth2.Token{RefreshToken: "rt-1"})
	client := oauth2.NewClient(ctx, ts)

	resp, err := client.Get(srv.URL + "/me")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, string(body))
	// Output:
	// 200 OK hello, holder of at-2
}

// compat.Client replaces cfg.Client(ctx, tok). When the API rejects a token (here, one the app
// had cached but the provider no longer knows), it refreshes once and retries.
func ExampleClient() {
	srv := exampleServer()
	defer srv.Close()
	ctx := context.Background()
	cfg := &oauth2.Config{
		ClientID:     "my-app",
		ClientSecret: "my-secret",
		Endpoint:     oauth2.Endpoint{TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader},
	}
	cached := &oauth2.Token{AccessToken: "at-stale", RefreshToken: "rt-1"} // no expiry: used until rejected

	// Before: client := cfg.Client(ctx, cached)
	client := compat.Client(ctx, cfg, cached)

	resp, err := client.Get(srv.URL + "/me")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, string(body))
	// Output:
	// 200 OK hello, holder of at-2
}

// FromConfig gives the Endpoint behind compat.TokenSource, for what x/oauth2 cannot do: ask for
// narrower scopes on refresh, or send a provider's extra parameters. Errors keep working for
// code written against x/oauth2, and gain sentinels.
func ExampleFromConfig() {
	srv := exampleServer()
	defer srv.Close()
	ctx := context.Background()
	cfg := &oauth2.Config{
		ClientID:     "my-app",
		ClientSecret: "my-secret",
		Endpoint:     oauth2.Endpoint{TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader},
		Scopes:       []string{"profile", "email"},
	}

	e := compat.FromConfig(cfg)
	e.Scopes = []string{"profile"} // never taken from cfg.Scopes: an explicit choice
	fmt.Println("auth method:", e.AuthMethod)

	_, err := e.TokenSource(ctx, &oauth2.Token{RefreshToken: "rt-revoked"}).Token()
	var re *oauth2.RetrieveError
	if errors.As(err, &re) { // as with x/oauth2
		fmt.Println("x/oauth2-style:", re.Response.StatusCode, re.ErrorCode)
	}
	if errors.Is(err, oauth2refresh.ErrInvalidGrant) {
		fmt.Println("the grant is gone: ask the user to sign in again")
	}
	// Output:
	// auth method: client_secret_basic
	// x/oauth2-style: 400 invalid_grant
	// the grant is gone: ask the user to sign in again
}

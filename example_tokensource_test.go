package oauth2refresh_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tokenkit/oauth2refresh"
	"golang.org/x/oauth2"
)

// newRotatingServer starts a token endpoint that rotates refresh tokens: each refresh
// issues "access-N" and "refresh-N". It stands in for a real provider in the examples.
func newRotatingServer() *httptest.Server {
	var n atomic.Int64
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := strconv.FormatInt(n.Add(1), 10)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"access_token":  "access-" + i,
			"token_type":    "Bearer",
			"refresh_token": "refresh-" + i,
			"expires_in":    3600,
		})
	}))
}

// A TokenSource is a drop-in for oauth2.Config.TokenSource: oauth2.NewClient turns it into
// an *http.Client that authorizes every request, refreshing the token when needed.
func ExampleEndpoint_TokenSource() {
	tokenServer := newRotatingServer()
	defer tokenServer.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello, holder of %q", r.Header.Get("Authorization"))
	}))
	defer api.Close()

	ep := &oauth2refresh.Endpoint{
		TokenURL:     tokenServer.URL,
		ClientID:     "my-client",
		ClientSecret: "my-secret",
	}
	ctx := context.Background()
	// A refresh token saved from an earlier authorization; no access token yet.
	src := ep.TokenSource(ctx, &oauth2.Token{RefreshToken: "refresh-0"})

	client := oauth2.NewClient(ctx, src)
	for range 2 {
		resp, err := client.Get(api.URL)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(string(body))
	}
	// Output:
	// hello, holder of "Bearer access-1"
	// hello, holder of "Bearer access-1"
}

// OnNewToken is where an application persists the rotated refresh token, before the new
// access token is used. A failing save is retried at once; if it fails again, the call fails,
// and the next attempt (after the backoff, or at once after Invalidate(nil)) saves the same token
// instead of refreshing again.
func ExampleOnNewToken() {
	tokenServer := newRotatingServer()
	defer tokenServer.Close()
	ep := &oauth2refresh.Endpoint{TokenURL: tokenServer.URL, ClientID: "my-client", ClientSecret: "my-secret"}

	// The application's storage; a database row or a file in real life.
	var saved []byte
	failures := 2
	save := func(ctx context.Context, t *oauth2.Token) error {
		if failures > 0 {
			failures--
			return fmt.Errorf("database is down")
		}
		b, err := json.Marshal(t)
		saved = b
		return err
	}

	src := ep.TokenSource(context.Background(), &oauth2.Token{RefreshToken: "refresh-0"}, oauth2refresh.OnNewToken(save))
	if _, err := src.Token(); err != nil {
		fmt.Println("first call:", err)
	}
	src.Invalidate(nil) // the database is back: no need to wait for the backoff
	tok, err := src.Token()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("second call:", tok.AccessToken)

	var stored oauth2.Token
	if err := json.Unmarshal(saved, &stored); err != nil {
		log.Fatal(err)
	}
	fmt.Println("saved refresh token:", stored.RefreshToken)
	// Output:
	// first call: oauth2refresh: OnNewToken: database is down
	// second call: access-1
	// saved refresh token: refresh-1
}

// Transport retries a request once with a fresh token when the resource server answers
// 401 Unauthorized, here because the token was revoked before it expired.
func ExampleTransport() {
	tokenServer := newRotatingServer()
	defer tokenServer.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer revoked" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s accepted with %s", body, r.Header.Get("Authorization"))
	}))
	defer api.Close()

	ep := &oauth2refresh.Endpoint{TokenURL: tokenServer.URL, ClientID: "my-client", ClientSecret: "my-secret"}
	tok := &oauth2.Token{AccessToken: "revoked", RefreshToken: "refresh-0", Expiry: time.Now().Add(time.Hour)}
	client := &http.Client{Transport: &oauth2refresh.Transport{Source: ep.TokenSource(context.Background(), tok)}}

	resp, err := client.Post(api.URL, "text/plain", strings.NewReader("order #42"))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output:
	// 200 order #42 accepted with Bearer access-1
}

// NewClient is the counterpart of oauth2.NewClient that lets EarlyRefresh work and retries
// a request once after a 401.
func ExampleNewClient() {
	tokenServer := newRotatingServer()
	defer tokenServer.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Header.Get("Authorization"))
	}))
	defer api.Close()

	ep := &oauth2refresh.Endpoint{TokenURL: tokenServer.URL, ClientID: "my-client", ClientSecret: "my-secret"}
	ctx := context.Background()
	src := ep.TokenSource(ctx, &oauth2.Token{RefreshToken: "refresh-0"}, oauth2refresh.EarlyRefresh(5*time.Minute))
	client := oauth2refresh.NewClient(ctx, src)

	resp, err := client.Get(api.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	// Output:
	// Bearer access-1
}

package conformance_test

// Refreshes through a real, independently written authorization server: ory/fosite, run
// in-process by the authserver package, with rotating refresh tokens and reuse detection.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/conformance/authserver"
)

// startFosite starts an authorization server for one test.
func startFosite(t *testing.T, opts authserver.Options) *authserver.Server {
	t.Helper()
	srv, err := authserver.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("closing the authorization server: %v", err)
		}
	})
	return srv
}

// seedGrant registers c and issues a grant of scopes to it.
func seedGrant(t *testing.T, srv *authserver.Server, c authserver.Client, scopes ...string) authserver.Grant {
	t.Helper()
	if err := srv.AddClient(c); err != nil {
		t.Fatal(err)
	}
	g, err := srv.IssueRefreshToken(c.ID, scopes...)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// wantFamily fails the test unless the grant's revocation state is revoked.
func wantFamily(t *testing.T, srv *authserver.Server, g authserver.Grant, revoked bool) {
	t.Helper()
	got, err := srv.Revoked(g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got != revoked {
		t.Errorf("grant revoked = %v; want %v", got, revoked)
	}
}

// apiStatus calls srv.APIURL through client and returns the HTTP status, or fails the test
// when no response came.
func apiStatus(t testing.TB, client *http.Client, srv *authserver.Server) int {
	resp, err := client.Get(srv.APIURL)
	if err != nil {
		t.Errorf("calling the API: %v", err)
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// bearerClient returns an HTTP client that sends a fixed access token.
func bearerClient(accessToken string) *http.Client {
	return oauth2.NewClient(context.Background(), oauth2.StaticTokenSource(&oauth2.Token{AccessToken: accessToken}))
}

func TestFositeAuthMethods(t *testing.T) {
	const oddSecret = "s/3+c&r=e%t é" // '/', '+', '&', '=', '%', a space and a non-ASCII letter
	tests := []struct {
		name   string
		client authserver.Client
		method oauth2refresh.AuthMethod
	}{
		{"client_secret_basic", authserver.Client{ID: "basic-app", Secret: "s3cret", AuthMethod: authserver.ClientSecretBasic}, oauth2refresh.AuthBasic},
		{"client_secret_post", authserver.Client{ID: "post-app", Secret: "s3cret", AuthMethod: authserver.ClientSecretPost}, oauth2refresh.AuthRequestBody},
		{"public client", authserver.Client{ID: "public-app", AuthMethod: authserver.None}, oauth2refresh.AuthNone},
		{"odd secret basic", authserver.Client{ID: "odd/basic+app", Secret: oddSecret, AuthMethod: authserver.ClientSecretBasic}, oauth2refresh.AuthBasic},
		{"odd secret post", authserver.Client{ID: "odd/post+app", Secret: oddSecret, AuthMethod: authserver.ClientSecretPost}, oauth2refresh.AuthRequestBody},
		{"unpinned client basic", authserver.Client{ID: "any-basic", Secret: oddSecret}, oauth2refresh.AuthBasic},
		{"unpinned client post", authserver.Client{ID: "any-post", Secret: oddSecret}, oauth2refresh.AuthRequestBody},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := startFosite(t, authserver.Options{})
			tc.client.Scopes = []string{"read"}
			g := seedGrant(t, srv, tc.client, "read")
			e := &oauth2refresh.Endpoint{TokenURL: srv.TokenURL, ClientID: tc.client.ID, ClientSecret: tc.client.Secret, AuthMethod: tc.method}

			before := time.Now()
			tok, err := e.Refresh(context.Background(), g.RefreshToken)
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if tok.AccessToken == "" || tok.RefreshToken == "" || tok.RefreshToken == g.RefreshToken {
				t.Errorf("token not rotated: access token set %v, refresh token set %v, same as before %v",
					tok.AccessToken != "", tok.RefreshToken != "", tok.RefreshToken == g.RefreshToken)
			}
			if tok.Type() != "Bearer" || tok.Extra("scope") != "read" {
				t.Errorf("token type %q, scope %v; want Bearer, read", tok.Type(), tok.Extra("scope"))
			}
			if d := tok.Expiry.Sub(before); d < 59*time.Minute || d > 61*time.Minute {
				t.Errorf("expiry in %v; want about an hour", d)
			}
			if got := apiStatus(t, bearerClient(tok.AccessToken), srv); got != http.StatusOK {
				t.Errorf("API with the new access token: HTTP %d", got)
			}
			// The rotated token works in turn.
			tok2, err := e.Refresh(context.Background(), tok.RefreshToken)
			if err != nil {
				t.Fatalf("second Refresh: %v", err)
			}
			if tok2.RefreshToken == tok.RefreshToken {
				t.Error("second refresh did not rotate")
			}
			if diff := cmp.Diff(authserver.Stats{TokenRequests: 2, TokensIssued: 2, APIRequests: 1}, srv.Stats()); diff != "" {
				t.Errorf("server stats (-want +got):\n%s", diff)
			}
			wantFamily(t, srv, g, false)
		})
	}
}

// autoDetectRuns numbers the runs of the tests that use AuthAutoDetect, for client ids that
// no earlier test (or earlier -count round) used.
var autoDetectRuns atomic.Int64

func TestFositeAuthAutoDetect(t *testing.T) {
	tests := []struct {
		name         string
		method       string
		wantRequests int64 // for the first refresh; the method found is then remembered
	}{
		{"basic-only client", authserver.ClientSecretBasic, 1},
		{"post-only client", authserver.ClientSecretPost, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := startFosite(t, authserver.Options{})
			// What auto-detection found is remembered per token URL and client id for the
			// life of the process, and a server may get the port of an earlier one: a client
			// id unique to this run makes the detection start from nothing.
			id := fmt.Sprintf("app-%d", autoDetectRuns.Add(1))
			g := seedGrant(t, srv, authserver.Client{ID: id, Secret: "s3cret&+/ü", AuthMethod: tc.method})
			e := &oauth2refresh.Endpoint{TokenURL: srv.TokenURL, ClientID: id, ClientSecret: "s3cret&+/ü", AuthMethod: oauth2refresh.AuthAutoDetect}
			tok, err := e.Refresh(context.Background(), g.RefreshToken)
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if got := srv.TokenRequests(); got != tc.wantRequests {
				t.Errorf("token requests for the first refresh = %d; want %d", got, tc.wantRequests)
			}
			if _, err := e.Refresh(context.Background(), tok.RefreshToken); err != nil {
				t.Fatalf("second Refresh: %v", err)
			}
			if got := srv.TokenRequests(); got != tc.wantRequests+1 {
				t.Errorf("token requests after the second refresh = %d; want %d (method remembered)", got, tc.wantRequests+1)
			}
			st := srv.Stats()
			if st.TokensIssued != 2 || st.ReuseDetected != 0 {
				t.Errorf("tokens issued %d, reuse detected %d; want 2, 0", st.TokensIssued, st.ReuseDetected)
			}
			wantFamily(t, srv, g, false)
		})
	}
}

func TestFositeScopesOnRefresh(t *testing.T) {
	srv := startFosite(t, authserver.Options{})
	g := seedGrant(t, srv, authserver.Client{ID: "app", Secret: "s", Scopes: []string{"read", "write"}}, "read", "write")
	e := &oauth2refresh.Endpoint{TokenURL: srv.TokenURL, ClientID: "app", ClientSecret: "s", Scopes: []string{"read"}}
	tok, err := e.Refresh(context.Background(), g.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh with scope: %v", err)
	}
	// fosite accepts the scope parameter but ignores narrowing: it grants the grant's scopes.
	if got := tok.Extra("scope"); got != "read write" {
		t.Errorf("scope = %v; want \"read write\"", got)
	}
}

func TestFositeWrongSecret(t *testing.T) {
	for _, m := range []oauth2refresh.AuthMethod{oauth2refresh.AuthBasic, oauth2refresh.AuthRequestBody} {
		t.Run(m.String(), func(t *testing.T) {
			srv := startFosite(t, authserver.Options{})
			g := seedGrant(t, srv, authserver.Client{ID: "app", Secret: "right"})
			e := &oauth2refresh.Endpoint{TokenURL: srv.TokenURL, ClientID: "app", ClientSecret: "wrong", AuthMethod: m}
			_, err := e.Refresh(context.Background(), g.RefreshToken)
			if !errors.Is(err, oauth2refresh.ErrInvalidClient) {
				t.Fatalf("err = %v; want ErrInvalidClient", err)
			}
			var re *oauth2refresh.RequestError
			if !errors.As(err, &re) || re.StatusCode != http.StatusUnauthorized {
				t.Errorf("err = %#v; want a *RequestError with HTTP 401", err)
			}
			if oauth2refresh.IsTemporary(err) {
				t.Error("IsTemporary(invalid_client) = true")
			}
			// The grant survives a failed client authentication.
			wantFamily(t, srv, g, false)
		})
	}
}

func TestFositeReuseRevokesFamily(t *testing.T) {
	srv := startFosite(t, authserver.Options{})
	g := seedGrant(t, srv, authserver.Client{ID: "app", Secret: "s"})
	e := &oauth2refresh.Endpoint{TokenURL: srv.TokenURL, ClientID: "app", ClientSecret: "s"}
	ctx := context.Background()
	tok, err := e.Refresh(ctx, g.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}

	_, err = e.Refresh(ctx, g.RefreshToken) // the rotated-out token, sent again
	if !errors.Is(err, oauth2refresh.ErrInvalidGrant) {
		t.Fatalf("reused refresh token: err = %v; want ErrInvalidGrant", err)
	}
	if oauth2refresh.IsTemporary(err) {
		t.Error("IsTemporary(invalid_grant) = true")
	}
	wantFamily(t, srv, g, true)

	// The newest refresh token and access token died with the family.
	if _, err := e.Refresh(ctx, tok.RefreshToken); !errors.Is(err, oauth2refresh.ErrInvalidGrant) {
		t.Errorf("newest refresh token after reuse: err = %v; want ErrInvalidGrant", err)
	}
	if got := apiStatus(t, bearerClient(tok.AccessToken), srv); got != http.StatusUnauthorized {
		t.Errorf("API with the newest access token after reuse: HTTP %d; want 401", got)
	}

	// A TokenSource on the dead grant returns the typed error too.
	ts := e.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken})
	if _, err := ts.Token(); !errors.Is(err, oauth2refresh.ErrInvalidGrant) {
		t.Errorf("TokenSource.Token on a revoked grant: err = %v; want ErrInvalidGrant", err)
	}
	var rerr *oauth2.RetrieveError
	if _, err := ts.Token(); !errors.As(err, &rerr) || rerr.ErrorCode != "invalid_grant" {
		t.Errorf("errors.As(err, *oauth2.RetrieveError): %v; want ErrorCode invalid_grant", err)
	}
}

// TestFositeConcurrentFirstRefresh starts 64 callers at once on a TokenSource that holds only
// a refresh token: one request reaches the server, and all callers get its token.
func TestFositeConcurrentFirstRefresh(t *testing.T) {
	srv := startFosite(t, authserver.Options{TokenDelay: 20 * time.Millisecond})
	g := seedGrant(t, srv, authserver.Client{ID: "app", Secret: "s"})
	e := &oauth2refresh.Endpoint{TokenURL: srv.TokenURL, ClientID: "app", ClientSecret: "s"}
	ts := e.TokenSource(context.Background(), &oauth2.Token{RefreshToken: g.RefreshToken})

	const callers = 64
	start := make(chan struct{})
	toks := make([]*oauth2.Token, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			tok, err := ts.Token()
			if err != nil {
				t.Errorf("caller %d: %v", i, err)
			}
			toks[i] = tok
		})
	}
	close(start)
	wg.Wait()
	if got := srv.TokenRequests(); got != 1 {
		t.Errorf("token requests = %d; want 1", got)
	}
	for i, tok := range toks {
		if tok != toks[0] {
			t.Errorf("caller %d got another token than caller 0", i)
		}
	}
	wantFamily(t, srv, g, false)
}

// TestFositeLoad puts 64 goroutines on one TokenSource, each calling the protected API through
// an oauth2refresh.Transport, over several seconds of 2-second access tokens. fosite rotates
// the refresh token on every refresh, revokes the previous access token, and would revoke the
// whole family if any refresh token were sent twice.
func TestFositeLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	const (
		goroutines = 64
		duration   = 5 * time.Second
	)
	srv := startFosite(t, authserver.Options{
		AccessTokenLifespan: 2 * time.Second,
		// A slow token endpoint: callers keep using the old access token, which fosite has
		// already revoked, while the response is on its way.
		TokenDelay: 50 * time.Millisecond,
	})
	g := seedGrant(t, srv, authserver.Client{ID: "app", Secret: "s3cret", AuthMethod: authserver.ClientSecretBasic, Scopes: []string{"read"}}, "read")
	// The gate lets the test stop the TokenSource's refreshes once the load is over.
	gate := &gateTransport{base: http.DefaultTransport}
	e := &oauth2refresh.Endpoint{TokenURL: srv.TokenURL, ClientID: "app", ClientSecret: "s3cret",
		HTTPClient: &http.Client{Transport: gate}}

	var (
		mu    sync.Mutex // guards saved
		saved []*oauth2.Token
	)
	save := func(_ context.Context, t *oauth2.Token) error {
		mu.Lock()
		defer mu.Unlock()
		saved = append(saved, t)
		return nil
	}
	ts := e.TokenSource(context.Background(), &oauth2.Token{RefreshToken: g.RefreshToken},
		oauth2refresh.OnNewToken(save), oauth2refresh.ExpiryMargin(300*time.Millisecond), oauth2refresh.EarlyRefresh(time.Second))
	client := &http.Client{Transport: &oauth2refresh.Transport{Source: ts}}

	var calls, failures atomic.Int64
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				calls.Add(1)
				if got := apiStatus(t, client, srv); got != http.StatusOK {
					failures.Add(1)
				}
				time.Sleep(5 * time.Millisecond) // leave CPU for the other goroutines and tests
			}
		})
	}
	wg.Wait()

	// Stop: a background refresh may still be running. Once the gate is closed and drained, the
	// server has issued its last token; wait for OnNewToken to have saved it.
	gate.close()
	issued := srv.Stats().TokensIssued
	for wait := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := int64(len(saved))
		mu.Unlock()
		if n >= issued || time.Now().After(wait) {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()

	st := srv.Stats()
	t.Logf("%d API calls, %d refreshes, %d API 401s (retried by Transport); server stats %+v",
		calls.Load(), len(saved), st.APIRejected, st)
	if n := failures.Load(); n != 0 {
		t.Errorf("%d of %d API calls failed", n, calls.Load())
	}
	if st.ReuseDetected != 0 || st.TokenErrors != 0 {
		t.Errorf("server saw %d reused refresh tokens and %d failed token requests; want none", st.ReuseDetected, st.TokenErrors)
	}
	wantFamily(t, srv, g, false)
	if int64(len(saved)) != st.TokensIssued {
		t.Fatalf("OnNewToken saved %d tokens; the server issued %d", len(saved), st.TokensIssued)
	}
	// Several access-token lifetimes passed, each with at least one refresh.
	if len(saved) < 3 {
		t.Errorf("only %d refreshes in %v of 2-second tokens", len(saved), duration)
	}
	seen := map[string]bool{g.RefreshToken: true}
	for i, tok := range saved {
		if seen[tok.RefreshToken] {
			t.Errorf("OnNewToken call %d saved a refresh token already seen", i)
		}
		seen[tok.RefreshToken] = true
	}

	// A restart: a fresh TokenSource from the last saved refresh token works.
	last := saved[len(saved)-1]
	e2 := &oauth2refresh.Endpoint{TokenURL: srv.TokenURL, ClientID: "app", ClientSecret: "s3cret"}
	fresh := e2.TokenSource(context.Background(), &oauth2.Token{RefreshToken: last.RefreshToken})
	if got := apiStatus(t, oauth2.NewClient(context.Background(), fresh), srv); got != http.StatusOK {
		t.Errorf("API through a fresh TokenSource from the last saved token: HTTP %d", got)
	}
	wantFamily(t, srv, g, false)
	if got := srv.Stats().ReuseDetected; got != 0 {
		t.Errorf("server saw %d reused refresh tokens after the restart", got)
	}
}

// gateTransport sends requests through base until close is called; after that it fails them
// without sending anything.
type gateTransport struct {
	base     http.RoundTripper
	mu       sync.Mutex     // guards closed and the Add calls on inflight
	closed   bool           // set by close
	inflight sync.WaitGroup // requests being sent
}

var errGateClosed = errors.New("gate closed")

func (g *gateTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, errGateClosed
	}
	g.inflight.Add(1)
	g.mu.Unlock()
	defer g.inflight.Done()
	return g.base.RoundTrip(r)
}

// close stops new requests and waits for those being sent.
func (g *gateTransport) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.inflight.Wait()
}

// TestFositeOAuth2Wrappers checks that the TokenSource works inside golang.org/x/oauth2's
// ReuseTokenSource and NewClient against the real server, across a rotation.
func TestFositeOAuth2Wrappers(t *testing.T) {
	srv := startFosite(t, authserver.Options{})
	g := seedGrant(t, srv, authserver.Client{ID: "app", Secret: "s"})
	e := &oauth2refresh.Endpoint{TokenURL: srv.TokenURL, ClientID: "app", ClientSecret: "s"}
	ts := e.TokenSource(context.Background(), &oauth2.Token{RefreshToken: g.RefreshToken})
	client := oauth2.NewClient(context.Background(), oauth2.ReuseTokenSource(nil, ts))
	for i := range 3 {
		if got := apiStatus(t, client, srv); got != http.StatusOK {
			t.Fatalf("call %d: HTTP %d", i, got)
		}
	}
	// A 401 from the resource server forces one refresh.
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	ts.Invalidate(tok)
	tok2, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok2.AccessToken == tok.AccessToken || tok2.RefreshToken == tok.RefreshToken {
		t.Error("Invalidate did not force a refresh")
	}
	if diff := cmp.Diff(authserver.Stats{TokenRequests: 2, TokensIssued: 2, APIRequests: 3}, srv.Stats()); diff != "" {
		t.Errorf("server stats (-want +got):\n%s", diff)
	}
	if tok2.Type() != "Bearer" {
		t.Errorf("token type %q; want Bearer", tok2.Type())
	}
	wantFamily(t, srv, g, false)
}

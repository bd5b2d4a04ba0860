package compat_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenkit/oauth2refresh/compat"
)

// ccConfig is a clientcredentials.Config for s with scopes and endpoint parameters.
func (s *tokenServer) ccConfig(style oauth2.AuthStyle, id, secret string) *clientcredentials.Config {
	return &clientcredentials.Config{
		ClientID: id, ClientSecret: secret, TokenURL: s.URL + "/token", AuthStyle: style,
		Scopes:         []string{"api://app/.default", "read"},
		EndpointParams: url.Values{"audience": {"aud-1"}, "resource": {"https://a.example/", "https://b.example/"}},
	}
}

// ccSideBySide runs one Token call on c.TokenSource of x/oauth2's clientcredentials and then
// on compat.ClientCredentials, against s, and returns their results and requests.
func ccSideBySide(ctx context.Context, s *tokenServer, c *clientcredentials.Config) (x, ours result) {
	s.take()
	x.tok, x.err = c.TokenSource(ctx).Token()
	x.reqs = s.take()
	ours.tok, ours.err = compat.ClientCredentials(ctx, c).Token()
	ours.reqs = s.take()
	return x, ours
}

// TestClientCredentialsWireAgrees: for every AuthStyle, compat.ClientCredentials sends the
// form fields and Authorization header that x/oauth2's clientcredentials sends (scope, every
// EndpointParams value, the client's credentials), request by request, and returns a token
// with the same facts but the refresh token, which it drops (RFC 6749 §4.4.3), and ExpiresIn,
// which it sets.
func TestClientCredentialsWireAgrees(t *testing.T) {
	invalidClient := reply{status: http.StatusUnauthorized, body: `{"error":"invalid_client"}`}
	run := autoDetectRuns.Add(1)
	auto1, auto2 := fmt.Sprintf("cc-auto-1-%d", run), fmt.Sprintf("cc-auto-2-%d", run)
	grant := func(kv ...string) url.Values {
		return form(append([]string{"grant_type", "client_credentials", "scope", "api://app/.default read",
			"audience", "aud-1", "resource", "https://a.example/", "resource", "https://b.example/"}, kv...)...)
	}
	tests := []struct {
		name   string
		style  oauth2.AuthStyle
		id     string
		secret string
		answer func(n int, r received) reply
		want   []received
	}{{
		name: "AuthStyleInHeader", style: oauth2.AuthStyleInHeader, id: weirdID, secret: weirdSecret,
		answer: func(int, received) reply { return ok(okBody) },
		want:   []received{{Header: basic(weirdID, weirdSecret), Form: grant()}},
	}, {
		name: "AuthStyleInParams", style: oauth2.AuthStyleInParams, id: weirdID, secret: weirdSecret,
		answer: func(int, received) reply { return ok(okBody) },
		want:   []received{{Header: http.Header{}, Form: grant("client_id", weirdID, "client_secret", weirdSecret)}},
	}, {
		name: "AuthStyleInParams without secret", style: oauth2.AuthStyleInParams, id: "public-app",
		answer: func(int, received) reply { return ok(okBody) },
		want:   []received{{Header: http.Header{}, Form: grant("client_id", "public-app")}},
	}, {
		name: "AuthStyleAutoDetect, Basic accepted", style: oauth2.AuthStyleAutoDetect, id: auto1, secret: weirdSecret,
		answer: func(int, received) reply { return ok(okBody) },
		want:   []received{{Header: basic(auto1, weirdSecret), Form: grant()}},
	}, {
		name: "AuthStyleAutoDetect, Basic rejected with 401", style: oauth2.AuthStyleAutoDetect, id: auto2, secret: weirdSecret,
		answer: func(n int, r received) reply {
			if r.Header.Get("Authorization") != "" {
				return invalidClient
			}
			return ok(okBody)
		},
		want: []received{
			{Header: basic(auto2, weirdSecret), Form: grant()},
			{Header: http.Header{}, Form: grant("client_id", auto2, "client_secret", weirdSecret)},
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTokenServer(t, tc.answer)
			x, ours := ccSideBySide(t.Context(), s, s.ccConfig(tc.style, tc.id, tc.secret))
			if x.err != nil || ours.err != nil {
				t.Fatalf("Token: x/oauth2: %v; ours: %v", x.err, ours.err)
			}
			var wantX, wantOurs []received
			for _, r := range tc.want {
				wantX = append(wantX, received{Header: xHeader(r.Header), Form: r.Form})
				wantOurs = append(wantOurs, received{Header: ourHeader(r.Header), Form: r.Form})
			}
			if diff := cmp.Diff(wantX, x.reqs); diff != "" {
				t.Errorf("x/oauth2 sent (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantOurs, ours.reqs); diff != "" {
				t.Errorf("compat.ClientCredentials sent (-want +got):\n%s", diff)
			}
			wantFacts := facts(x.tok)
			// x/oauth2's clientcredentials leaves ExpiresIn zero; ours keeps expires_in.
			wantFacts.RefreshToken, wantFacts.ExpiresIn = "", 3600
			if diff := cmp.Diff(wantFacts, facts(ours.tok)); diff != "" {
				t.Errorf("token, x/oauth2's without its refresh token (-want +got):\n%s", diff)
			}
			if d := ours.tok.Expiry.Sub(x.tok.Expiry); d < 0 || d > 5*time.Second {
				t.Errorf("Expiry %v, x/oauth2's %v", ours.tok.Expiry, x.tok.Expiry)
			}
		})
	}
}

// TestClientCredentialsRetrieveErrorAgrees: a refusal reads, through *oauth2.RetrieveError,
// as x/oauth2's clientcredentials reports it.
func TestClientCredentialsRetrieveErrorAgrees(t *testing.T) {
	for _, rep := range []reply{
		{status: http.StatusUnauthorized, body: `{"error":"invalid_client","error_description":"unknown client"}`},
		{status: http.StatusBadRequest, body: `{"error":"invalid_scope","error_uri":"https://as.example/e"}`},
		{status: http.StatusBadGateway, contentType: "text/html", body: "<html>Bad Gateway</html>"},
	} {
		t.Run(fmt.Sprint(rep.status), func(t *testing.T) {
			s := newTokenServer(t, func(int, received) reply { return rep })
			x, ours := ccSideBySide(t.Context(), s, s.ccConfig(oauth2.AuthStyleInHeader, "id", "secret"))
			if x.tok != nil || ours.tok != nil {
				t.Fatalf("a token: x/oauth2 %v, ours %v", x.tok, ours.tok)
			}
			if diff := cmp.Diff(retrieveErrorOf(t, "x/oauth2", x.err), retrieveErrorOf(t, "ours", ours.err)); diff != "" {
				t.Errorf("RetrieveError (-x/oauth2 +ours):\n%s", diff)
			}
		})
	}
}

// The tests of golang.org/x/oauth2/clientcredentials (clientcredentials_test.go, v0.38.0),
// ported: each runs x/oauth2's code as the original does and then compat's on the same
// server, with the original's checks on both.

// newXConf is the original's newConf.
func newXConf(serverURL string) *clientcredentials.Config {
	return &clientcredentials.Config{
		ClientID:       "CLIENT_ID",
		ClientSecret:   "CLIENT_SECRET",
		Scopes:         []string{"scope1", "scope2"},
		TokenURL:       serverURL + "/token",
		EndpointParams: url.Values{"audience": {"audience1"}},
	}
}

// TestPortedTokenRequest is x/oauth2's TestTokenRequest: the exact body and Basic header, and
// a form-encoded answer read into a valid token.
func TestPortedTokenRequest(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.String() != "/token" {
			t.Errorf("authenticate client request URL = %q; want %q", r.URL, "/token")
		}
		if got := r.Header.Get("Authorization"); got != "Basic Q0xJRU5UX0lEOkNMSUVOVF9TRUNSRVQ=" {
			t.Errorf("Unexpected authorization header, %v is found.", got)
		}
		if got, want := r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"; got != want {
			t.Errorf("Content-Type header = %q; want %q", got, want)
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("failed reading request body: %s.", err)
		}
		if string(body) != "audience=audience1&grant_type=client_credentials&scope=scope1+scope2" {
			t.Errorf("payload = %q; want %q", string(body), "audience=audience1&grant_type=client_credentials&scope=scope1+scope2")
		}
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
		w.Write([]byte("access_token=90d64460d14870c08c81352a05dedd3465940a7c&token_type=bearer"))
	}))
	defer ts.Close()
	conf := newXConf(ts.URL)
	for name, get := range map[string]func() (*oauth2.Token, error){
		"x/oauth2": func() (*oauth2.Token, error) { return conf.Token(context.Background()) },
		"compat":   compat.ClientCredentials(context.Background(), conf).Token,
	} {
		tok, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !tok.Valid() {
			t.Fatalf("%s: token invalid. got: %#v", name, tok)
		}
		if tok.AccessToken != "90d64460d14870c08c81352a05dedd3465940a7c" {
			t.Errorf("%s: Access token = %q; want %q", name, tok.AccessToken, "90d64460d14870c08c81352a05dedd3465940a7c")
		}
		if tok.TokenType != "bearer" {
			t.Errorf("%s: token type = %q; want %q", name, tok.TokenType, "bearer")
		}
	}
}

// TestPortedTokenRefreshRequest is x/oauth2's TestTokenRefreshRequest: a client's first API
// request obtains a token with the client_credentials body, through conf.Client and through
// compat.ClientCredentialsClient: both send one token request, and the API request carries
// the token.
func TestPortedTokenRefreshRequest(t *testing.T) {
	var mu sync.Mutex // guards got
	var got []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.String()+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		if r.URL.String() == "/somethingelse" {
			return
		}
		if r.URL.String() != "/token" {
			t.Errorf("Unexpected token refresh request URL: %q", r.URL)
		}
		if got, want := r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"; got != want {
			t.Errorf("Content-Type = %q; want %q", got, want)
		}
		body, _ := io.ReadAll(r.Body)
		const want = "audience=audience1&grant_type=client_credentials&scope=scope1+scope2"
		if string(body) != want {
			t.Errorf("Unexpected refresh token payload.\n got: %s\nwant: %s\n", body, want)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token": "foo", "refresh_token": "bar"}`)
	}))
	defer ts.Close()
	conf := newXConf(ts.URL)
	for name, c := range map[string]*http.Client{
		"x/oauth2": conf.Client(context.Background()),
		"compat":   compat.ClientCredentialsClient(context.Background(), conf),
	} {
		mu.Lock()
		got = nil
		mu.Unlock()
		resp, err := c.Get(ts.URL + "/somethingelse")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp.Body.Close()
		mu.Lock()
		if diff := cmp.Diff([]string{"/token Basic Q0xJRU5UX0lEOkNMSUVOVF9TRUNSRVQ=", "/somethingelse Bearer foo"}, got); diff != "" {
			t.Errorf("%s: requests (-want +got):\n%s", name, diff)
		}
		mu.Unlock()
	}
}

// TestPortedTokenSourceGrantTypeOverride is x/oauth2's TestTokenSourceGrantTypeOverride,
// where ours differs on purpose: x/oauth2 sends an EndpointParams grant_type in place of
// client_credentials (here "password"); compat.ClientCredentials, a client_credentials grant,
// ignores it (see its doc).
func TestPortedTokenSourceGrantTypeOverride(t *testing.T) {
	var mu sync.Mutex // guards gotGrantType
	var gotGrantType string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("io.ReadAll(r.Body) == %v, %v, want _, <nil>", body, err)
		}
		values, err := url.ParseQuery(string(body))
		if err != nil {
			t.Errorf("url.ParseQuery(%q) == %v, %v, want _, <nil>", body, values, err)
		}
		mu.Lock()
		gotGrantType = values.Get("grant_type")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
		w.Write([]byte("access_token=90d64460d14870c08c81352a05dedd3465940a7c&token_type=bearer"))
	}))
	defer ts.Close()
	config := &clientcredentials.Config{
		ClientID: "CLIENT_ID", ClientSecret: "CLIENT_SECRET", Scopes: []string{"scope"}, TokenURL: ts.URL + "/token",
		EndpointParams: url.Values{"grant_type": {"password"}},
	}
	for name, want := range map[string]string{"x/oauth2": "password", "compat": "client_credentials"} {
		src := config.TokenSource(context.Background())
		if name == "compat" {
			src = compat.ClientCredentials(context.Background(), config)
		}
		if token, err := src.Token(); err != nil {
			t.Errorf("%s: Token() == %v, %v, want !<nil>, <nil>", name, token, err)
		}
		mu.Lock()
		if gotGrantType != want {
			t.Errorf("%s: grant_type == %q, want %q", name, gotGrantType, want)
		}
		mu.Unlock()
	}
}

// TestClientCredentialsBetterFailureStorm: 20 callers at once against a failing token
// endpoint: x/oauth2's clientcredentials sends one request per caller, one after the other
// under its mutex; compat.ClientCredentials sends one for all of them.
func TestClientCredentialsBetterFailureStorm(t *testing.T) {
	s := newTokenServer(t, func(int, received) reply {
		return reply{status: http.StatusServiceUnavailable, body: `{"error":"temporarily_unavailable"}`}
	})
	c := s.ccConfig(oauth2.AuthStyleInHeader, "id", "secret")
	const callers = 20
	for name, want := range map[string]int{"x/oauth2": callers, "compat": 1} {
		var src oauth2.TokenSource = c.TokenSource(t.Context())
		if name == "compat" {
			src = compat.ClientCredentials(t.Context(), c)
		}
		s.take()
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				if _, err := src.Token(); err == nil {
					t.Errorf("%s: a token from a failing endpoint", name)
				}
			})
		}
		wg.Wait()
		if n := len(s.take()); n != want {
			t.Errorf("%s: %d requests for %d callers, want %d", name, n, callers, want)
		}
	}
}

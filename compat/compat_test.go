package compat_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/compat"
)

// received is what the token server saw in one request: every header that the client chose
// (transport-level ones such as Content-Length and Accept-Encoding are left out) and every
// form field.
type received struct {
	Header http.Header
	Form   url.Values
}

// reply is one answer of the token server.
type reply struct {
	status      int
	contentType string
	body        string
}

// tokenServer is a token endpoint on loopback that asserts the method, path, content type and
// form encoding of every request, records everything else it receives, and answers with
// answer(n, r) for the n-th request (counting from 1).
type tokenServer struct {
	*httptest.Server
	answer func(n int, r received) reply

	count atomic.Int64 // requests received

	mu   sync.Mutex // guards reqs
	reqs []received
}

func newTokenServer(t *testing.T, answer func(n int, r received) reply) *tokenServer {
	t.Helper()
	s := &tokenServer{answer: answer}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(s.count.Add(1))
		if r.Method != http.MethodPost || r.URL.Path != "/token" || r.URL.RawQuery != "" {
			t.Errorf("request %d: %s %s, want POST /token", n, r.Method, r.URL)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("request %d: Content-Type %q, want application/x-www-form-urlencoded", n, ct)
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("request %d: parsing form: %v", n, err)
		}
		h := r.Header.Clone()
		for _, k := range []string{"Accept-Encoding", "Content-Length"} {
			h.Del(k)
		}
		rec := received{Header: h, Form: r.PostForm}
		s.mu.Lock()
		s.reqs = append(s.reqs, rec)
		s.mu.Unlock()
		a := answer(n, rec)
		if a.contentType == "" {
			a.contentType = "application/json"
		}
		w.Header().Set("Content-Type", a.contentType)
		w.WriteHeader(a.status)
		w.Write([]byte(a.body))
	}))
	t.Cleanup(s.Close)
	return s
}

// take returns the requests recorded so far and forgets them.
func (s *tokenServer) take() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.reqs
	s.reqs = nil
	s.count.Store(0)
	return r
}

func (s *tokenServer) config(style oauth2.AuthStyle, id, secret string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     id,
		ClientSecret: secret,
		Endpoint:     oauth2.Endpoint{TokenURL: s.URL + "/token", AuthStyle: style},
		Scopes:       []string{"openid", "email"}, // never sent on refresh, by either library
		RedirectURL:  "https://app.example/callback",
	}
}

func ok(body string) reply { return reply{status: http.StatusOK, body: body} }

const okBody = `{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-1"}`

// result is the outcome of one Token call and the requests it sent.
type result struct {
	tok  *oauth2.Token
	err  error
	reqs []received
}

// sideBySide runs one Token call on a fresh source from x/oauth2 (c.TokenSource) and then from
// compat.TokenSource, both from a token holding only refresh token "rt-0", against s, and
// returns their results and the requests each sent.
func sideBySide(ctx context.Context, s *tokenServer, c *oauth2.Config) (x, ours result) {
	s.take()
	x.tok, x.err = c.TokenSource(ctx, &oauth2.Token{RefreshToken: "rt-0"}).Token()
	x.reqs = s.take()
	ours.tok, ours.err = compat.TokenSource(ctx, c, &oauth2.Token{RefreshToken: "rt-0"}).Token()
	ours.reqs = s.take()
	return x, ours
}

// The headers each library adds on its own: x/oauth2 leaves Go's default User-Agent and sends
// no Accept; ours names itself (GitHub rejects requests without a User-Agent) and asks for
// JSON (GitHub answers form-encoded otherwise).
func xHeader(h http.Header) http.Header {
	h = h.Clone()
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	h.Set("User-Agent", "Go-http-client/1.1")
	return h
}

func ourHeader(h http.Header) http.Header {
	h = h.Clone()
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	h.Set("User-Agent", "oauth2refresh (+https://github.com/tokenkit/oauth2refresh)")
	h.Set("Accept", "application/json")
	return h
}

func basic(id, secret string) http.Header {
	cred := url.QueryEscape(id) + ":" + url.QueryEscape(secret)
	return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(cred))}}
}

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

// A secret with every character RFC 6749 §2.3.1's form-encoding step changes.
const (
	weirdID     = "client id/+:%"
	weirdSecret = "s3:cr+t/% &="
)

// autoDetectRuns numbers the runs of the tests that use AuthAutoDetect. What auto-detection
// found is remembered per token URL and client id for the life of the process, and a test
// server often gets a port that an earlier one had: client ids unique to a run make each
// auto-detect case start from nothing, whatever ran before it (-count included).
var autoDetectRuns atomic.Int64

func TestWireFormatAgrees(t *testing.T) {
	invalidClient := reply{status: http.StatusUnauthorized, body: `{"error":"invalid_client"}`}
	run := autoDetectRuns.Add(1)
	auto1, auto2, auto3 := fmt.Sprintf("auto-1-%d", run), fmt.Sprintf("auto-2-%d", run), fmt.Sprintf("auto-3-%d", run)
	tests := []struct {
		name   string
		style  oauth2.AuthStyle
		id     string
		secret string
		answer func(n int, r received) reply
		// what both libraries send, request by request, before their own headers are added
		want []received
	}{{
		name: "AuthStyleInHeader", style: oauth2.AuthStyleInHeader, id: weirdID, secret: weirdSecret,
		answer: func(int, received) reply { return ok(okBody) },
		want:   []received{{Header: basic(weirdID, weirdSecret), Form: form("grant_type", "refresh_token", "refresh_token", "rt-0")}},
	}, {
		name: "AuthStyleInParams", style: oauth2.AuthStyleInParams, id: weirdID, secret: weirdSecret,
		answer: func(int, received) reply { return ok(okBody) },
		want: []received{{Header: http.Header{}, Form: form("grant_type", "refresh_token", "refresh_token", "rt-0",
			"client_id", weirdID, "client_secret", weirdSecret)}},
	}, {
		name: "AuthStyleInParams without secret", style: oauth2.AuthStyleInParams, id: "public-app",
		answer: func(int, received) reply { return ok(okBody) },
		want: []received{{Header: http.Header{}, Form: form("grant_type", "refresh_token", "refresh_token", "rt-0",
			"client_id", "public-app")}},
	}, {
		name: "AuthStyleAutoDetect, Basic accepted", style: oauth2.AuthStyleAutoDetect, id: auto1, secret: weirdSecret,
		answer: func(int, received) reply { return ok(okBody) },
		want:   []received{{Header: basic(auto1, weirdSecret), Form: form("grant_type", "refresh_token", "refresh_token", "rt-0")}},
	}, {
		name: "AuthStyleAutoDetect, Basic rejected with 401", style: oauth2.AuthStyleAutoDetect, id: auto2, secret: weirdSecret,
		answer: func(n int, r received) reply {
			if r.Header.Get("Authorization") != "" {
				return invalidClient
			}
			return ok(okBody)
		},
		want: []received{
			{Header: basic(auto2, weirdSecret), Form: form("grant_type", "refresh_token", "refresh_token", "rt-0")},
			{Header: http.Header{}, Form: form("grant_type", "refresh_token", "refresh_token", "rt-0",
				"client_id", auto2, "client_secret", weirdSecret)},
		},
	}, {
		name: "AuthStyleAutoDetect without secret, Basic rejected with 401", style: oauth2.AuthStyleAutoDetect, id: auto3,
		answer: func(n int, r received) reply {
			if r.Header.Get("Authorization") != "" {
				return invalidClient
			}
			return ok(okBody)
		},
		want: []received{
			{Header: basic(auto3, ""), Form: form("grant_type", "refresh_token", "refresh_token", "rt-0")},
			{Header: http.Header{}, Form: form("grant_type", "refresh_token", "refresh_token", "rt-0", "client_id", auto3)},
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTokenServer(t, tc.answer)
			x, ours := sideBySide(t.Context(), s, s.config(tc.style, tc.id, tc.secret))
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
				t.Errorf("compat.TokenSource sent (-want +got):\n%s", diff)
			}
		})
	}
}

// tokenFacts is what a caller can observe of a token.
type tokenFacts struct {
	AccessToken, TokenType, Type, RefreshToken string
	ExpiresIn                                  int64
	HasExpiry                                  bool
	IDToken, Scope                             any
}

func facts(t *oauth2.Token) tokenFacts {
	return tokenFacts{
		AccessToken: t.AccessToken, TokenType: t.TokenType, Type: t.Type(), RefreshToken: t.RefreshToken,
		ExpiresIn: t.ExpiresIn, HasExpiry: !t.Expiry.IsZero(),
		IDToken: t.Extra("id_token"), Scope: t.Extra("scope"),
	}
}

func TestReturnedTokenAgrees(t *testing.T) {
	tests := []struct {
		name  string
		reply reply
		want  tokenFacts
		// ours sets Token.ExpiresIn for form-encoded responses too; x/oauth2 only for JSON
		xExpiresIn int64
	}{{
		name:  "JSON, rotated refresh token and extra fields",
		reply: ok(`{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-1","id_token":"idt","scope":"openid email"}`),
		want: tokenFacts{AccessToken: "at-1", TokenType: "Bearer", Type: "Bearer", RefreshToken: "rt-1",
			ExpiresIn: 3600, HasExpiry: true, IDToken: "idt", Scope: "openid email"},
		xExpiresIn: 3600,
	}, {
		name:  "JSON without refresh_token keeps the one sent",
		reply: ok(`{"access_token":"at-1","token_type":"bearer","expires_in":"3600"}`),
		want: tokenFacts{AccessToken: "at-1", TokenType: "bearer", Type: "Bearer", RefreshToken: "rt-0",
			ExpiresIn: 3600, HasExpiry: true},
		xExpiresIn: 3600,
	}, {
		name:  "JSON without expires_in",
		reply: ok(`{"access_token":"at-1","token_type":"Bearer"}`),
		want:  tokenFacts{AccessToken: "at-1", TokenType: "Bearer", Type: "Bearer", RefreshToken: "rt-0"},
	}, {
		name: "form-encoded, as GitHub answers without Accept",
		reply: reply{status: http.StatusOK, contentType: "application/x-www-form-urlencoded",
			body: "access_token=at-1&token_type=bearer&expires_in=28800&refresh_token=rt-1&scope=repo"},
		want: tokenFacts{AccessToken: "at-1", TokenType: "bearer", Type: "Bearer", RefreshToken: "rt-1",
			ExpiresIn: 28800, HasExpiry: true, Scope: "repo", IDToken: ""}, // Extra of a missing form key is ""
		xExpiresIn: 0,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTokenServer(t, func(int, received) reply { return tc.reply })
			before := time.Now()
			x, ours := sideBySide(t.Context(), s, s.config(oauth2.AuthStyleInHeader, "id", "secret"))
			after := time.Now()
			if x.err != nil || ours.err != nil {
				t.Fatalf("Token: x/oauth2: %v; ours: %v", x.err, ours.err)
			}
			wantX := tc.want
			wantX.ExpiresIn = tc.xExpiresIn
			if diff := cmp.Diff(wantX, facts(x.tok)); diff != "" {
				t.Errorf("x/oauth2 token (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, facts(ours.tok)); diff != "" {
				t.Errorf("compat.TokenSource token (-want +got):\n%s", diff)
			}
			if tc.want.HasExpiry {
				lo := before.Add(time.Duration(tc.want.ExpiresIn) * time.Second)
				hi := after.Add(time.Duration(tc.want.ExpiresIn) * time.Second)
				for name, tok := range map[string]*oauth2.Token{"x/oauth2": x.tok, "ours": ours.tok} {
					if tok.Expiry.Before(lo) || tok.Expiry.After(hi) {
						t.Errorf("%s: Expiry %v, want between %v and %v", name, tok.Expiry, lo, hi)
					}
				}
			}
		})
	}
}

// retrieveFacts is what code written for x/oauth2 reads from a *oauth2.RetrieveError.
type retrieveFacts struct {
	StatusCode                            int
	Status, ContentType                   string
	ErrorCode, ErrorDescription, ErrorURI string
	Body                                  string
}

// retrieveErrorOf returns the facts of err, which must be a *oauth2.RetrieveError itself: code
// written for x/oauth2 asserts err.(*oauth2.RetrieveError) as often as it calls errors.As.
func retrieveErrorOf(t *testing.T, who string, err error) retrieveFacts {
	t.Helper()
	re, ok := err.(*oauth2.RetrieveError)
	if !ok {
		t.Fatalf("%s: err.(*oauth2.RetrieveError) failed for %T %v", who, err, err)
	}
	return retrieveFacts{
		StatusCode: re.Response.StatusCode, Status: re.Response.Status, ContentType: re.Response.Header.Get("Content-Type"),
		ErrorCode: re.ErrorCode, ErrorDescription: re.ErrorDescription, ErrorURI: re.ErrorURI, Body: string(re.Body),
	}
}

func TestRetrieveErrorAgrees(t *testing.T) {
	tests := []struct {
		name  string
		reply reply
		want  retrieveFacts
	}{{
		name:  "invalid_grant",
		reply: reply{status: http.StatusBadRequest, body: `{"error":"invalid_grant","error_description":"Token has been expired or revoked.","error_uri":"https://as.example/e"}`},
		want: retrieveFacts{StatusCode: 400, Status: "400 Bad Request", ContentType: "application/json",
			ErrorCode: "invalid_grant", ErrorDescription: "Token has been expired or revoked.", ErrorURI: "https://as.example/e",
			Body: `{"error":"invalid_grant","error_description":"Token has been expired or revoked.","error_uri":"https://as.example/e"}`},
	}, {
		name:  "invalid_client with 401",
		reply: reply{status: http.StatusUnauthorized, body: `{"error":"invalid_client"}`},
		want: retrieveFacts{StatusCode: 401, Status: "401 Unauthorized", ContentType: "application/json",
			ErrorCode: "invalid_client", Body: `{"error":"invalid_client"}`},
	}, {
		name:  "error with HTTP 200, as GitHub and Slack answer",
		reply: ok(`{"error":"bad_refresh_token","error_description":"The refresh token passed is incorrect or expired."}`),
		want: retrieveFacts{StatusCode: 200, Status: "200 OK", ContentType: "application/json",
			ErrorCode: "bad_refresh_token", ErrorDescription: "The refresh token passed is incorrect or expired.",
			Body: `{"error":"bad_refresh_token","error_description":"The refresh token passed is incorrect or expired."}`},
	}, {
		name:  "form-encoded error",
		reply: reply{status: http.StatusBadRequest, contentType: "application/x-www-form-urlencoded", body: "error=invalid_grant&error_description=revoked"},
		want: retrieveFacts{StatusCode: 400, Status: "400 Bad Request", ContentType: "application/x-www-form-urlencoded",
			ErrorCode: "invalid_grant", ErrorDescription: "revoked", Body: "error=invalid_grant&error_description=revoked"},
	}, {
		name:  "HTML 502 from a proxy",
		reply: reply{status: http.StatusBadGateway, contentType: "text/html", body: "<html><body>Bad Gateway</body></html>"},
		want: retrieveFacts{StatusCode: 502, Status: "502 Bad Gateway", ContentType: "text/html",
			Body: "<html><body>Bad Gateway</body></html>"},
	}, {
		name:  "non-standard error object",
		reply: reply{status: http.StatusInternalServerError, body: `{"error":{"message":"boom"}}`},
		want: retrieveFacts{StatusCode: 500, Status: "500 Internal Server Error", ContentType: "application/json",
			Body: `{"error":{"message":"boom"}}`},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTokenServer(t, func(int, received) reply { return tc.reply })
			x, ours := sideBySide(t.Context(), s, s.config(oauth2.AuthStyleInHeader, "id", "secret"))
			if x.tok != nil || ours.tok != nil {
				t.Fatalf("Token returned a token: x/oauth2 %v, ours %v", x.tok, ours.tok)
			}
			if diff := cmp.Diff(tc.want, retrieveErrorOf(t, "x/oauth2", x.err)); diff != "" {
				t.Errorf("x/oauth2 RetrieveError (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, retrieveErrorOf(t, "ours", ours.err)); diff != "" {
				t.Errorf("compat.TokenSource RetrieveError (-want +got):\n%s", diff)
			}
			if len(x.reqs) != 1 || len(ours.reqs) != 1 {
				t.Errorf("requests sent: x/oauth2 %d, ours %d; want 1 each", len(x.reqs), len(ours.reqs))
			}
		})
	}
}

// TestNotRetrieveErrorAgrees: where x/oauth2 returns an error that is not a
// *oauth2.RetrieveError (a success without an access token, no answer), compat's is not one
// either; and compat's RetrieveError text holds no secret the server echoed, while the core
// API (the embedded *oauth2refresh.TokenSource) still returns the typed errors.
func TestNotRetrieveErrorAgrees(t *testing.T) {
	tests := []struct {
		name  string
		reply reply
		down  bool
	}{
		{name: "200 without access_token", reply: ok(`{"token_type":"Bearer"}`)},
		{name: "no answer", down: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTokenServer(t, func(int, received) reply { return tc.reply })
			c := s.config(oauth2.AuthStyleInHeader, "id", "secret")
			if tc.down {
				s.Close()
			}
			x, ours := sideBySide(t.Context(), s, c)
			for name, err := range map[string]error{"x/oauth2": x.err, "ours": ours.err} {
				if err == nil {
					t.Fatalf("%s: no error", name)
				}
				if _, ok := err.(*oauth2.RetrieveError); ok {
					t.Errorf("%s: %v is a *oauth2.RetrieveError", name, err)
				}
			}
		})
	}
	t.Run("RetrieveError redacted; typed errors from the core API", func(t *testing.T) {
		s := newTokenServer(t, func(int, received) reply {
			return reply{status: http.StatusBadRequest, body: `{"error":"invalid_grant","error_description":"rt-0-s3cret was revoked"}`}
		})
		ts := compat.TokenSource(t.Context(), s.config(oauth2.AuthStyleInHeader, "id", "secret"), &oauth2.Token{RefreshToken: "rt-0-s3cret"})
		_, err := ts.Token()
		re, ok := err.(*oauth2.RetrieveError)
		if !ok || re.ErrorCode != "invalid_grant" {
			t.Fatalf("Token: %T %v, want a *oauth2.RetrieveError with invalid_grant", err, err)
		}
		if strings.Contains(err.Error(), "rt-0-s3cret") || strings.Contains(string(re.Body), "rt-0-s3cret") || strings.Contains(re.ErrorDescription, "rt-0-s3cret") {
			t.Errorf("RetrieveError holds the refresh token: %q, body %q", err, re.Body)
		}
		ts.Invalidate(nil)
		if _, err := ts.TokenSource.Token(); !errors.Is(err, oauth2refresh.ErrInvalidGrant) {
			t.Errorf("core Token: %v, want an error matching ErrInvalidGrant", err)
		}
	})
}

// ctxClient is an *http.Client for oauth2.HTTPClient that marks every request it sends.
func ctxClient() *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("X-Via", "ctx-client")
		return http.DefaultTransport.RoundTrip(r)
	})}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestHTTPClientFromContextAgrees(t *testing.T) {
	s := newTokenServer(t, func(int, received) reply { return ok(okBody) })
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, ctxClient())
	x, ours := sideBySide(ctx, s, s.config(oauth2.AuthStyleInHeader, "id", "secret"))
	if x.err != nil || ours.err != nil {
		t.Fatalf("Token: x/oauth2: %v; ours: %v", x.err, ours.err)
	}
	for name, reqs := range map[string][]received{"x/oauth2": x.reqs, "ours": ours.reqs} {
		if len(reqs) != 1 || reqs[0].Header.Get("X-Via") != "ctx-client" {
			t.Errorf("%s: requests %+v, want one sent through the oauth2.HTTPClient of ctx", name, reqs)
		}
	}
}

// Where ours is deliberately better.

func TestBetterRotationHook(t *testing.T) {
	s := newTokenServer(t, func(n int, r received) reply {
		if want := fmt.Sprintf("rt-%d", n-1); r.Form.Get("refresh_token") != want {
			return reply{status: http.StatusBadRequest, body: `{"error":"invalid_grant","error_description":"refresh token reused"}`}
		}
		return ok(fmt.Sprintf(`{"access_token":"at-%d","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-%d"}`, n, n))
	})
	c := s.config(oauth2.AuthStyleInHeader, "id", "secret")
	var saved []string // rotated refresh tokens, in order; written by the hook only, one call at a time
	now := time.Now()
	ts := compat.TokenSource(t.Context(), c, &oauth2.Token{RefreshToken: "rt-0"},
		oauth2refresh.WithClock(func() time.Time { return now }),
		oauth2refresh.OnNewToken(func(ctx context.Context, tok *oauth2.Token) error {
			saved = append(saved, tok.RefreshToken)
			return nil
		}))
	for i := 1; i <= 3; i++ {
		tok, err := ts.Token()
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		if want := fmt.Sprintf("at-%d", i); tok.AccessToken != want {
			t.Errorf("refresh %d: access token %q, want %q", i, tok.AccessToken, want)
		}
		ts.Invalidate(tok) // force the next refresh
	}
	if diff := cmp.Diff([]string{"rt-1", "rt-2", "rt-3"}, saved); diff != "" {
		t.Errorf("OnNewToken saw refresh tokens (-want +got):\n%s", diff)
	}
	// x/oauth2 has no hook: the rotated refresh token is only reachable from the token each
	// Token call returns, and a program that saves it must compare after every call.
}

func TestBetterScopesWhenAsked(t *testing.T) {
	s := newTokenServer(t, func(int, received) reply { return ok(okBody) })
	c := s.config(oauth2.AuthStyleInHeader, "id", "secret") // c.Scopes = openid email
	// x/oauth2 cannot ask for narrower scopes on refresh: it never sends scope.
	if _, err := c.TokenSource(t.Context(), &oauth2.Token{RefreshToken: "rt-0"}).Token(); err != nil {
		t.Fatal(err)
	}
	e := compat.FromConfig(c)
	e.Scopes = []string{"email"} // explicit: a token for less than the grant
	if _, err := e.TokenSource(t.Context(), &oauth2.Token{RefreshToken: "rt-0"}).Token(); err != nil {
		t.Fatal(err)
	}
	reqs := s.take()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	if got := reqs[0].Form["scope"]; got != nil {
		t.Errorf("x/oauth2 sent scope %q", got)
	}
	if got := reqs[1].Form["scope"]; !cmp.Equal(got, []string{"email"}) {
		t.Errorf("ours sent scope %q, want [email]", got)
	}
}

func TestBetterFailureStorm(t *testing.T) {
	const callers = 20
	s := newTokenServer(t, func(int, received) reply {
		return reply{status: http.StatusServiceUnavailable, contentType: "text/plain", body: "overloaded"}
	})
	c := s.config(oauth2.AuthStyleInHeader, "id", "secret")
	now := time.Now()
	sources := map[string]oauth2.TokenSource{
		"x/oauth2": c.TokenSource(t.Context(), &oauth2.Token{RefreshToken: "rt-0"}),
		// A fixed clock keeps every caller inside the backoff that follows the failure.
		"ours": compat.TokenSource(t.Context(), c, &oauth2.Token{RefreshToken: "rt-0"},
			oauth2refresh.WithClock(func() time.Time { return now })),
	}
	want := map[string]int64{"x/oauth2": callers, "ours": 1}
	for _, name := range []string{"x/oauth2", "ours"} {
		s.take()
		var wg sync.WaitGroup
		var failed atomic.Int64
		for range callers {
			wg.Go(func() {
				var re *oauth2.RetrieveError
				if _, err := sources[name].Token(); errors.As(err, &re) && re.Response.StatusCode == 503 {
					failed.Add(1)
				} else {
					t.Errorf("%s: Token error %v, want a RetrieveError with 503", name, err)
				}
			})
		}
		wg.Wait()
		if got := s.count.Load(); got != want[name] {
			t.Errorf("%s: %d callers on a failing endpoint sent %d requests, want %d", name, callers, got, want[name])
		}
		if failed.Load() != callers {
			t.Errorf("%s: %d of %d callers got the error", name, failed.Load(), callers)
		}
	}
}

func TestBetterNoDoubleSendUnderAutoDetect(t *testing.T) {
	// x/oauth2 tries again with the credentials in the body after any error, sending the
	// refresh token a second time: a rotating server takes that as reuse and may revoke the
	// whole grant. Ours falls back only when the client's authentication was rejected.
	tests := []struct {
		name   string
		reply  reply
		status int
		code   string
	}{
		{"invalid_grant", reply{status: http.StatusBadRequest, body: `{"error":"invalid_grant"}`}, 400, "invalid_grant"},
		{"503", reply{status: http.StatusServiceUnavailable, contentType: "text/html", body: "<h1>try later</h1>"}, 503, ""},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTokenServer(t, func(int, received) reply { return tc.reply })
			x, ours := sideBySide(t.Context(), s, s.config(oauth2.AuthStyleAutoDetect, fmt.Sprintf("auto-fail-%d-%d", i, autoDetectRuns.Add(1)), "secret"))
			for name, r := range map[string]result{"x/oauth2": x, "ours": ours} {
				var re *oauth2.RetrieveError
				if !errors.As(r.err, &re) || re.Response.StatusCode != tc.status || re.ErrorCode != tc.code {
					t.Errorf("%s: error %v, want a RetrieveError with %d %q", name, r.err, tc.status, tc.code)
				}
			}
			var xSent []string
			for _, r := range x.reqs {
				scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
				xSent = append(xSent, scheme+" "+r.Form.Get("refresh_token"))
			}
			if diff := cmp.Diff([]string{"Basic rt-0", " rt-0"}, xSent); diff != "" {
				t.Errorf("x/oauth2 sent (Authorization scheme, refresh token) (-want +got):\n%s", diff)
			}
			if len(ours.reqs) != 1 {
				t.Errorf("ours sent %d requests, want 1", len(ours.reqs))
			}
		})
	}
}

func TestBetterSurvivesCanceledContext(t *testing.T) {
	// golang/oauth2#388: a source made with a request's context stops refreshing once that
	// request is done.
	s := newTokenServer(t, func(int, received) reply { return ok(okBody) })
	c := s.config(oauth2.AuthStyleInHeader, "id", "secret")
	ctx, cancel := context.WithCancel(t.Context())
	xs := c.TokenSource(ctx, &oauth2.Token{RefreshToken: "rt-0"})
	ours := compat.TokenSource(ctx, c, &oauth2.Token{RefreshToken: "rt-0"})
	cancel()
	if _, err := xs.Token(); !errors.Is(err, context.Canceled) {
		t.Errorf("x/oauth2 after cancel: %v, want context.Canceled", err)
	}
	if tok, err := ours.Token(); err != nil || tok.AccessToken != "at-1" {
		t.Errorf("ours after cancel: %v, %v; want at-1", tok, err)
	}
}

func TestBetterErrorTextHoldsNoSecret(t *testing.T) {
	s := newTokenServer(t, func(int, received) reply {
		return reply{status: http.StatusBadRequest, body: `{"error":"invalid_grant","error_description":"refresh token rt-0-s3cret was revoked"}`}
	})
	c := s.config(oauth2.AuthStyleInHeader, "id", "secret")
	xErr := func() error {
		_, err := c.TokenSource(t.Context(), &oauth2.Token{RefreshToken: "rt-0-s3cret"}).Token()
		return err
	}()
	_, ourErr := compat.TokenSource(t.Context(), c, &oauth2.Token{RefreshToken: "rt-0-s3cret"}).Token()
	if xErr == nil || !strings.Contains(xErr.Error(), "rt-0-s3cret") {
		t.Errorf("x/oauth2 error %q: expected it to quote the body, refresh token included", xErr)
	}
	if ourErr == nil || strings.Contains(ourErr.Error(), "rt-0-s3cret") {
		t.Errorf("ours: error %q holds the refresh token", ourErr)
	}
}

// apiServer is a resource server that records the Authorization header of every request and
// answers 401 to the access tokens in revoked.
type apiServer struct {
	*httptest.Server
	mu      sync.Mutex // guards seen and revoked
	seen    []string
	revoked map[string]bool
}

func newAPIServer(t *testing.T) *apiServer {
	a := &apiServer{revoked: map[string]bool{}}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/me" {
			t.Errorf("API request %s %s, want GET /me", r.Method, r.URL)
		}
		auth := r.Header.Get("Authorization")
		a.mu.Lock()
		a.seen = append(a.seen, auth)
		revoked := a.revoked[strings.TrimPrefix(auth, "Bearer ")]
		a.mu.Unlock()
		if revoked || !strings.HasPrefix(auth, "Bearer ") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Write([]byte("hello"))
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *apiServer) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.seen
	a.seen = nil
	return s
}

func get(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestClientVersusNewClient(t *testing.T) {
	s := newTokenServer(t, func(n int, _ received) reply {
		// n restarts at 1 after s.take
		return ok(fmt.Sprintf(`{"access_token":"at-%d","token_type":"Bearer","expires_in":3600}`, n))
	})
	api := newAPIServer(t)
	c := s.config(oauth2.AuthStyleInHeader, "id", "secret")
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, ctxClient())

	// oauth2.NewClient puts a ReuseTokenSource in front of ours, which keeps its own copy of
	// the token: neither a 401 nor Invalidate reaches past it.
	ts := compat.TokenSource(ctx, c, &oauth2.Token{RefreshToken: "rt-0"})
	wrapped := oauth2.NewClient(ctx, ts)
	if got := get(t, wrapped, api.URL+"/me"); got != http.StatusOK {
		t.Fatalf("oauth2.NewClient: status %d", got)
	}
	api.mu.Lock()
	api.revoked["at-1"] = true
	api.mu.Unlock()
	if got := get(t, wrapped, api.URL+"/me"); got != http.StatusUnauthorized {
		t.Errorf("oauth2.NewClient after revocation: status %d, want 401", got)
	}
	ts.Invalidate(nil)
	if got := get(t, wrapped, api.URL+"/me"); got != http.StatusUnauthorized {
		t.Errorf("oauth2.NewClient after Invalidate: status %d, want 401 (its cached copy)", got)
	}
	if diff := cmp.Diff([]string{"Bearer at-1", "Bearer at-1", "Bearer at-1"}, api.take()); diff != "" {
		t.Errorf("oauth2.NewClient sent (-want +got):\n%s", diff)
	}
	if got := len(s.take()); got != 1 {
		t.Errorf("oauth2.NewClient: %d token requests, want 1", got)
	}

	// compat.Client refreshes once on the 401 and retries.
	client := compat.Client(ctx, c, &oauth2.Token{RefreshToken: "rt-0"})
	if got := get(t, client, api.URL+"/me"); got != http.StatusOK {
		t.Errorf("compat.Client: status %d, want 200 after one refresh", got)
	}
	if diff := cmp.Diff([]string{"Bearer at-1", "Bearer at-2"}, api.take()); diff != "" {
		t.Errorf("compat.Client sent (-want +got):\n%s", diff)
	}
	reqs := s.take()
	if len(reqs) != 2 {
		t.Fatalf("compat.Client: %d token requests, want 2", len(reqs))
	}
	for _, r := range reqs {
		if r.Header.Get("X-Via") != "ctx-client" {
			t.Errorf("compat.Client: token request not sent through the oauth2.HTTPClient of ctx")
		}
	}
}

func TestFromConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  oauth2.Config
		want oauth2refresh.Endpoint
	}{{
		name: "AuthStyleInHeader",
		cfg: oauth2.Config{ClientID: "id", ClientSecret: "sec", Scopes: []string{"a"}, RedirectURL: "https://app/cb",
			Endpoint: oauth2.Endpoint{AuthURL: "https://as/auth", TokenURL: "https://as/token", AuthStyle: oauth2.AuthStyleInHeader}},
		want: oauth2refresh.Endpoint{TokenURL: "https://as/token", ClientID: "id", ClientSecret: "sec", AuthMethod: oauth2refresh.AuthBasic},
	}, {
		name: "AuthStyleInParams",
		cfg:  oauth2.Config{ClientID: "id", ClientSecret: "sec", Endpoint: oauth2.Endpoint{TokenURL: "https://as/token", AuthStyle: oauth2.AuthStyleInParams}},
		want: oauth2refresh.Endpoint{TokenURL: "https://as/token", ClientID: "id", ClientSecret: "sec", AuthMethod: oauth2refresh.AuthRequestBody},
	}, {
		name: "AuthStyleInParams without secret",
		cfg:  oauth2.Config{ClientID: "id", Endpoint: oauth2.Endpoint{TokenURL: "https://as/token", AuthStyle: oauth2.AuthStyleInParams}},
		want: oauth2refresh.Endpoint{TokenURL: "https://as/token", ClientID: "id", AuthMethod: oauth2refresh.AuthNone},
	}, {
		name: "AuthStyleAutoDetect",
		cfg:  oauth2.Config{ClientID: "id", ClientSecret: "sec", Scopes: []string{"a", "b"}, Endpoint: oauth2.Endpoint{TokenURL: "https://as/token"}},
		want: oauth2refresh.Endpoint{TokenURL: "https://as/token", ClientID: "id", ClientSecret: "sec", AuthMethod: oauth2refresh.AuthAutoDetect},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := compat.FromConfig(&tc.cfg)
			if diff := cmp.Diff(&tc.want, got); diff != "" {
				t.Errorf("FromConfig (-want +got):\n%s", diff)
			}
		})
	}
}

// countingSource counts the calls that reach the source behind it.
type countingSource struct {
	oauth2.TokenSource
	calls atomic.Int64
}

func (c *countingSource) Token() (*oauth2.Token, error) {
	c.calls.Add(1)
	return c.TokenSource.Token()
}

func TestEarlyRefreshThroughClients(t *testing.T) {
	arrived, gate := make(chan struct{}, 1), make(chan struct{})
	var release sync.Once // cleanups run last first: the gate opens before the servers close
	s := newTokenServer(t, func(int, received) reply {
		arrived <- struct{}{}
		<-gate
		return ok(`{"access_token":"at-1","token_type":"Bearer","expires_in":3600}`)
	})
	t.Cleanup(func() { release.Do(func() { close(gate) }) })
	api := newAPIServer(t)
	c := s.config(oauth2.AuthStyleInHeader, "id", "secret")
	wall := time.Now()
	expiry := wall.Add(time.Hour)
	var now atomic.Int64 // the sources' clock, in Unix nanoseconds
	now.Store(wall.UnixNano())
	clock := oauth2refresh.WithClock(func() time.Time { return time.Unix(0, now.Load()) })
	newSource := func() *compat.Source {
		now.Store(wall.UnixNano())
		tok := &oauth2.Token{AccessToken: "at-0", TokenType: "Bearer", RefreshToken: "rt-0", Expiry: expiry}
		return compat.TokenSource(t.Context(), c, tok, clock, oauth2refresh.EarlyRefresh(5*time.Minute))
	}
	const margin = 10 * time.Second               // the default ExpiryMargin
	inWindow := expiry.Add(-margin - time.Minute) // 1 min into the 5 min window

	// oauth2.NewClient: its ReuseTokenSource asks the source once, then serves its own copy
	// until 10 s before expiry by the wall clock, so the source never sees a call in its
	// early-refresh window.
	counted := &countingSource{TokenSource: newSource()}
	wrapped := oauth2.NewClient(t.Context(), counted)
	get(t, wrapped, api.URL+"/me")
	now.Store(inWindow.UnixNano())
	get(t, wrapped, api.URL+"/me")
	get(t, wrapped, api.URL+"/me")
	if got := counted.calls.Load(); got != 1 {
		t.Errorf("oauth2.NewClient called the source %d times for 3 requests, want 1", got)
	}
	if got := s.count.Load(); got != 0 {
		t.Errorf("oauth2.NewClient: %d token requests, want 0", got)
	}

	// oauth2refresh.NewClient asks the source on every request: in the window, the request
	// starts a background refresh and goes out with the still-valid token while the token endpoint is
	// still holding that refresh.
	client := oauth2refresh.NewClient(t.Context(), newSource())
	get(t, client, api.URL+"/me")
	now.Store(inWindow.UnixNano())
	get(t, client, api.URL+"/me")
	<-arrived
	if diff := cmp.Diff([]string{"Bearer at-0", "Bearer at-0", "Bearer at-0", "Bearer at-0", "Bearer at-0"}, api.take()); diff != "" {
		t.Errorf("API saw (-want +got):\n%s", diff)
	}
	release.Do(func() { close(gate) })
}

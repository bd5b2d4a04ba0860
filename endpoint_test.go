package oauth2refresh_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
)

const (
	epClientID = "client:id+1"
	// epSecret has every character that breaks a naive Basic header or form encoding.
	epSecret   = "s3cr:t+/%20 x&y=z é✓"
	epRefresh  = "RT-old-refresh-token/+=="
	epAccess   = "AT-new-access-token"
	epUA       = "oauth2refresh (+https://github.com/tokenkit/oauth2refresh)"
	epFormType = "application/x-www-form-urlencoded"
	epOKBody   = `{"access_token":"` + epAccess + `","token_type":"Bearer","expires_in":3600,"refresh_token":"RT-new"}`
)

// epJSON answers with status and a JSON body.
func epJSON(w http.ResponseWriter, status int, body string) {
	respond(w, status, "application/json", body)
}

// epOK is an in-memory token endpoint answering epOKBody to every request; calls counts them.
func epOK(calls *atomic.Int64) roundTripFunc {
	return func(r *http.Request) (*http.Response, error) {
		calls.Add(1)
		return memResponse(r, 200, "application/json", epOKBody), nil
	}
}

// epNoRequest is an http.Client whose transport fails the test if a request is sent.
func epNoRequest(t *testing.T) *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		t.Errorf("request sent to %s", r.URL)
		return nil, errors.New("must not be called")
	})}
}

// epBasic is the Authorization header RFC 6749 §2.3.1 asks for.
func epBasic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

func epHeader(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestRefreshWire(t *testing.T) {
	tests := []struct {
		name     string
		endpoint oauth2refresh.Endpoint // TokenURL is filled in
		wantHdr  http.Header
		wantForm url.Values
	}{
		{
			name:     "basic is the zero value",
			endpoint: oauth2refresh.Endpoint{ClientID: epClientID, ClientSecret: epSecret},
			wantHdr: epHeader("Content-Type", epFormType, "Accept", "application/json", "User-Agent", epUA,
				"Authorization", epBasic(epClientID, epSecret)),
			wantForm: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {epRefresh}},
		},
		{
			name:     "basic with scopes",
			endpoint: oauth2refresh.Endpoint{ClientID: epClientID, ClientSecret: epSecret, AuthMethod: oauth2refresh.AuthBasic, Scopes: []string{"openid", "offline_access", "https://x/y"}},
			wantHdr: epHeader("Content-Type", epFormType, "Accept", "application/json", "User-Agent", epUA,
				"Authorization", epBasic(epClientID, epSecret)),
			wantForm: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {epRefresh}, "scope": {"openid offline_access https://x/y"}},
		},
		{
			name:     "request body",
			endpoint: oauth2refresh.Endpoint{ClientID: epClientID, ClientSecret: epSecret, AuthMethod: oauth2refresh.AuthRequestBody},
			wantHdr:  epHeader("Content-Type", epFormType, "Accept", "application/json", "User-Agent", epUA),
			wantForm: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {epRefresh}, "client_id": {epClientID}, "client_secret": {epSecret}},
		},
		{
			name:     "request body without a secret",
			endpoint: oauth2refresh.Endpoint{ClientID: epClientID, AuthMethod: oauth2refresh.AuthRequestBody},
			wantHdr:  epHeader("Content-Type", epFormType, "Accept", "application/json", "User-Agent", epUA),
			wantForm: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {epRefresh}, "client_id": {epClientID}},
		},
		{
			name:     "none",
			endpoint: oauth2refresh.Endpoint{ClientID: epClientID, ClientSecret: epSecret, AuthMethod: oauth2refresh.AuthNone},
			wantHdr:  epHeader("Content-Type", epFormType, "Accept", "application/json", "User-Agent", epUA),
			wantForm: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {epRefresh}, "client_id": {epClientID}},
		},
		{
			name:     "empty scopes send no scope",
			endpoint: oauth2refresh.Endpoint{ClientID: epClientID, AuthMethod: oauth2refresh.AuthNone, Scopes: []string{}},
			wantHdr:  epHeader("Content-Type", epFormType, "Accept", "application/json", "User-Agent", epUA),
			wantForm: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {epRefresh}, "client_id": {epClientID}},
		},
		{
			name:     "a blank scope sends no scope",
			endpoint: oauth2refresh.Endpoint{ClientID: epClientID, AuthMethod: oauth2refresh.AuthNone, Scopes: []string{""}},
			wantHdr:  epHeader("Content-Type", epFormType, "Accept", "application/json", "User-Agent", epUA),
			wantForm: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {epRefresh}, "client_id": {epClientID}},
		},
		{
			name: "params and headers, reserved ones ignored",
			endpoint: oauth2refresh.Endpoint{
				ClientID: epClientID, ClientSecret: epSecret, AuthMethod: oauth2refresh.AuthRequestBody,
				Scopes: []string{"read"},
				Params: url.Values{
					"redirect_uri":  {"https://app.example/cb?a=1&b=2"},
					"resource":      {"https://graph.example/"},
					"multi":         {"1", "2"},
					"grant_type":    {"password"},
					"client_id":     {"evil"},
					"client_secret": {"evil"},
					"refresh_token": {"evil"},
					"scope":         {"evil"},
				},
				Header: http.Header{
					"User-Agent":    {"myapp/1.0"},
					"accept":        {"application/json, text/plain"},
					"X-Tenant":      {"t1", "t2"},
					"Authorization": {"Bearer evil"},
					"Content-Type":  {"text/plain"},
				},
			},
			wantHdr: epHeader("Content-Type", epFormType, "Accept", "application/json, text/plain", "User-Agent", "myapp/1.0",
				"X-Tenant", "t1", "X-Tenant", "t2"),
			wantForm: url.Values{
				"grant_type": {"refresh_token"}, "refresh_token": {epRefresh}, "scope": {"read"},
				"client_id": {epClientID}, "client_secret": {epSecret},
				"redirect_uri": {"https://app.example/cb?a=1&b=2"}, "resource": {"https://graph.example/"}, "multi": {"1", "2"},
			},
		},
		{
			name: "basic ignores an Authorization in Header",
			endpoint: oauth2refresh.Endpoint{ClientID: epClientID, ClientSecret: epSecret,
				Header: http.Header{"Authorization": {"Bearer evil"}}, Params: url.Values{"client_id": {"evil"}}},
			wantHdr: epHeader("Content-Type", epFormType, "Accept", "application/json", "User-Agent", epUA,
				"Authorization", epBasic(epClientID, epSecret)),
			wantForm: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {epRefresh}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if tc.endpoint.AuthMethod == oauth2refresh.AuthBasic {
					// Decode the way RFC 6749 §2.3.1 says a server does.
					id, secret, ok := r.BasicAuth()
					if !ok {
						t.Errorf("no Basic credentials")
					}
					id, err1 := url.QueryUnescape(id)
					secret, err2 := url.QueryUnescape(secret)
					if err1 != nil || err2 != nil || id != epClientID || secret != epSecret {
						t.Errorf("server decoded client id %q and secret %q (errors %v, %v)", id, secret, err1, err2)
					}
				}
				epJSON(w, 200, epOKBody)
			})
			e := tc.endpoint
			e.TokenURL = srv.URL + "/oauth/token"
			before := time.Now()
			tok, err := e.Refresh(context.Background(), epRefresh)
			after := time.Now()
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			want := []recordedRequest{{Method: "POST", Path: "/oauth/token", Header: tc.wantHdr, Form: tc.wantForm}}
			if diff := cmp.Diff(want, srv.requests()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			epCheckToken(t, tok, epTok{Access: epAccess, Type: "Bearer", Refresh: "RT-new", ExpiresIn: 3600}, before, after)
		})
	}
}

// epTok is what a test expects of an *oauth2.Token; Expiry is checked against ExpiresIn.
type epTok struct {
	Access, Type, Refresh string
	ExpiresIn             int64
}

func epCheckToken(t *testing.T, tok *oauth2.Token, want epTok, before, after time.Time) {
	t.Helper()
	got := epTok{tok.AccessToken, tok.TokenType, tok.RefreshToken, tok.ExpiresIn}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("token (-want +got):\n%s", diff)
	}
	if want.ExpiresIn == 0 {
		if !tok.Expiry.IsZero() {
			t.Errorf("Expiry = %v, want zero", tok.Expiry)
		}
		return
	}
	d := time.Duration(want.ExpiresIn) * time.Second
	if tok.Expiry.Before(before.Add(d)) || tok.Expiry.After(after.Add(d)) {
		t.Errorf("Expiry = %v, want between %v and %v", tok.Expiry, before.Add(d), after.Add(d))
	}
}

func TestRefreshTokenURLChecks(t *testing.T) {
	tests := []struct {
		url     string
		allow   bool
		wantErr error // nil: the request goes out
	}{
		{url: "http://auth.example.com/token", wantErr: oauth2refresh.ErrInvalidEndpoint},
		{url: "http://10.0.0.1/token", wantErr: oauth2refresh.ErrInvalidEndpoint},
		{url: "http://localhost.evil.com/token", wantErr: oauth2refresh.ErrInvalidEndpoint},
		{url: "HTTP://auth.example.com/token", wantErr: oauth2refresh.ErrInvalidEndpoint},
		// Names that look like loopback but that Go's resolver sends to DNS.
		{url: "http://LocalHost./token", wantErr: oauth2refresh.ErrInvalidEndpoint},
		{url: "http://localhost./token", wantErr: oauth2refresh.ErrInvalidEndpoint},
		{url: "http://app.localhost/token", wantErr: oauth2refresh.ErrInvalidEndpoint},
		{url: "http://foo.localhost:8080/token", wantErr: oauth2refresh.ErrInvalidEndpoint},
		{url: "http://127.0.0.1.nip.io/token", wantErr: oauth2refresh.ErrInvalidEndpoint},
		{url: "http://[::2]/token", wantErr: oauth2refresh.ErrInvalidEndpoint},
		{url: "http://auth.example.com/token", allow: true},
		{url: "http://foo.localhost/token", allow: true},
		{url: "https://auth.example.com/token"},
		{url: "http://localhost:8080/token"},
		{url: "http://LOCALHOST/token"},
		{url: "http://127.0.0.1:9/token"},
		{url: "http://127.1.2.3/token"},
		{url: "http://[::1]:9/token"},
		{url: "ftp://auth.example.com/token", wantErr: oauth2refresh.ErrInvalidEndpoint},
		{url: "auth.example.com/token", wantErr: oauth2refresh.ErrInvalidEndpoint},
		{url: "https:///token", wantErr: oauth2refresh.ErrInvalidEndpoint},
		{url: "https://auth.example.com/%zz", wantErr: oauth2refresh.ErrInvalidEndpoint},
		{url: "", wantErr: oauth2refresh.ErrInvalidEndpoint},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			var calls atomic.Int64
			client := epNoRequest(t)
			if tc.wantErr == nil {
				client = &http.Client{Transport: epOK(&calls)}
			}
			e := &oauth2refresh.Endpoint{TokenURL: tc.url, ClientID: "id", ClientSecret: epSecret,
				AllowInsecureHTTP: tc.allow, HTTPClient: client}
			_, err := e.Refresh(context.Background(), epRefresh)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Refresh: %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && calls.Load() != 1 {
				t.Errorf("%d requests, want 1", calls.Load())
			}
			if err != nil {
				epCheckMessage(t, err)
			}
		})
	}
	t.Run("no refresh token", func(t *testing.T) {
		e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example.com/token", HTTPClient: epNoRequest(t)}
		if _, err := e.Refresh(context.Background(), ""); !errors.Is(err, oauth2refresh.ErrNoRefreshToken) {
			t.Errorf("Refresh: %v, want ErrNoRefreshToken", err)
		}
	})
	t.Run("unknown auth method", func(t *testing.T) {
		e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example.com/token", AuthMethod: 42, HTTPClient: epNoRequest(t)}
		if _, err := e.Refresh(context.Background(), epRefresh); !errors.Is(err, oauth2refresh.ErrInvalidEndpoint) {
			t.Errorf("Refresh: %v, want ErrInvalidEndpoint", err)
		}
	})
}

// epSecrets are the strings that no error message may hold, whatever the response.
var epSecrets = []string{epSecret, epRefresh}

// epCheckMessage checks the rules every Error() text follows.
func epCheckMessage(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	if !strings.HasPrefix(msg, "oauth2refresh: ") {
		t.Errorf("error %q does not start with \"oauth2refresh: \"", msg)
	}
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error %q is not one line", msg)
	}
	if len(msg) > 600 {
		t.Errorf("error is %d bytes long: %q", len(msg), msg)
	}
	for _, s := range epSecrets {
		if strings.Contains(msg, s) {
			t.Errorf("error %q holds secret %q", msg, s)
		}
	}
}

func TestRefreshDefaultTimeout(t *testing.T) {
	longCtx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	ctxDeadline, _ := longCtx.Deadline()
	tests := []struct {
		name          string
		ctx           context.Context
		timeout       time.Duration // Endpoint.Timeout
		clientTimeout time.Duration
		want          time.Duration // 0: no deadline; -1: ctxDeadline
	}{
		{name: "default", ctx: context.Background(), want: oauth2refresh.DefaultTimeout},
		{name: "endpoint timeout", ctx: context.Background(), timeout: 5 * time.Second, want: 5 * time.Second},
		{name: "no bound", ctx: context.Background(), timeout: -1},
		{name: "client timeout wins", ctx: context.Background(), clientTimeout: 2 * time.Hour, want: 2 * time.Hour},
		{name: "context deadline wins", ctx: longCtx, timeout: 5 * time.Second, want: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got time.Time // the request context's deadline
			rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				got, _ = r.Context().Deadline()
				return memResponse(r, 200, "application/json", epOKBody), nil
			})
			e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example.com/token", Timeout: tc.timeout,
				HTTPClient: &http.Client{Transport: rt, Timeout: tc.clientTimeout}}
			before := time.Now()
			if _, err := e.Refresh(tc.ctx, epRefresh); err != nil {
				t.Fatal(err)
			}
			after := time.Now()
			switch {
			case tc.want == 0:
				if !got.IsZero() {
					t.Errorf("deadline %v, want none", got)
				}
			case tc.want < 0:
				if !got.Equal(ctxDeadline) {
					t.Errorf("deadline %v, want the context's %v", got, ctxDeadline)
				}
			default:
				if got.Before(before.Add(tc.want)) || got.After(after.Add(tc.want)) {
					t.Errorf("deadline %v, want %v from now", got, tc.want)
				}
			}
		})
	}
}

func TestRefreshHTTPClientFromContext(t *testing.T) {
	var fromCtx, own atomic.Int64
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: epOK(&fromCtx)})
	e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example.com/token"}
	if _, err := e.Refresh(ctx, epRefresh); err != nil {
		t.Fatal(err)
	}
	if fromCtx.Load() != 1 {
		t.Errorf("%d requests through the context's client, want 1", fromCtx.Load())
	}
	// The Endpoint's own client comes first.
	e.HTTPClient = &http.Client{Transport: epOK(&own)}
	if _, err := e.Refresh(ctx, epRefresh); err != nil {
		t.Fatal(err)
	}
	if fromCtx.Load() != 1 || own.Load() != 1 {
		t.Errorf("requests: context's client %d, Endpoint's client %d; want 1 and 1", fromCtx.Load(), own.Load())
	}
}

func TestRefreshNoRedirect(t *testing.T) {
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			other := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) { epJSON(w, 200, epOKBody) })
			srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				http.Redirect(w, r, other.URL+"/token", status)
			})
			// A client that would follow redirects, and must be left as it is.
			followed := 0
			check := func(*http.Request, []*http.Request) error { followed++; return nil }
			client := &http.Client{CheckRedirect: check}
			e := &oauth2refresh.Endpoint{TokenURL: srv.URL + "/token", ClientID: "id", ClientSecret: epSecret, HTTPClient: client}
			_, err := e.Refresh(context.Background(), epRefresh)
			var ue *oauth2refresh.UnexpectedResponseError
			if !errors.As(err, &ue) || ue.StatusCode != status {
				t.Fatalf("Refresh: %v, want an *UnexpectedResponseError with status %d", err, status)
			}
			if got := len(other.requests()); got != 0 || followed != 0 {
				t.Errorf("redirect followed: %d requests to the target, CheckRedirect called %d times", got, followed)
			}
			if client.CheckRedirect == nil || client.Transport != nil || client.Timeout != 0 {
				t.Errorf("the caller's http.Client was changed")
			}
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.Response.StatusCode != status {
				t.Errorf("errors.As(*oauth2.RetrieveError) = %v", re)
			}
			epCheckMessage(t, err)
		})
	}
}

// TestWireLikeXOAuth2 checks that each AuthMethod sends what the matching x/oauth2 AuthStyle
// sends, apart from the headers x/oauth2 does not set.
func TestWireLikeXOAuth2(t *testing.T) {
	tests := []struct {
		method oauth2refresh.AuthMethod
		style  oauth2.AuthStyle
	}{
		{oauth2refresh.AuthBasic, oauth2.AuthStyleInHeader},
		{oauth2refresh.AuthRequestBody, oauth2.AuthStyleInParams},
	}
	for _, tc := range tests {
		t.Run(tc.method.String(), func(t *testing.T) {
			srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) { epJSON(w, 200, epOKBody) })
			conf := &oauth2.Config{ClientID: epClientID, ClientSecret: epSecret,
				Endpoint: oauth2.Endpoint{TokenURL: srv.URL, AuthStyle: tc.style}}
			if _, err := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: epRefresh}).Token(); err != nil {
				t.Fatal(err)
			}
			e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: epClientID, ClientSecret: epSecret, AuthMethod: tc.method}
			if _, err := e.Refresh(context.Background(), epRefresh); err != nil {
				t.Fatal(err)
			}
			reqs := srv.requests()
			for _, r := range reqs {
				r.Header.Del("User-Agent")
				r.Header.Del("Accept")
			}
			if diff := cmp.Diff(reqs[0], reqs[1]); diff != "" {
				t.Errorf("request (-x/oauth2 +ours):\n%s", diff)
			}
		})
	}
}

func TestAuthMethodString(t *testing.T) {
	got := []string{oauth2refresh.AuthBasic.String(), oauth2refresh.AuthRequestBody.String(), oauth2refresh.AuthNone.String(),
		oauth2refresh.AuthAutoDetect.String(), oauth2refresh.AuthMethod(7).String()}
	want := []string{"client_secret_basic", "client_secret_post", "none", "auto", "AuthMethod(7)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("String (-want +got):\n%s", diff)
	}
}

// BenchmarkRefreshAllocs measures one refresh through an in-memory RoundTripper, against
// golang.org/x/oauth2 doing the same.
func BenchmarkRefreshAllocs(b *testing.B) {
	const body = `{"access_token":"AT-new-access-token","token_type":"Bearer","expires_in":3600,"refresh_token":"RT-new","scope":"openid email","id_token":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"}`
	client := &http.Client{Transport: &memTransport{status: 200, body: []byte(body)}}
	ctx := context.Background()
	b.Run("oauth2refresh", func(b *testing.B) {
		e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example.com/token", ClientID: "client-id", ClientSecret: "client-secret", HTTPClient: client}
		b.ReportAllocs()
		for b.Loop() {
			tok, err := e.Refresh(ctx, "RT-old")
			if err != nil || tok.Extra("id_token") == nil {
				b.Fatal(tok, err)
			}
		}
	})
	b.Run("x-oauth2", func(b *testing.B) {
		conf := &oauth2.Config{ClientID: "client-id", ClientSecret: "client-secret",
			Endpoint: oauth2.Endpoint{TokenURL: "https://auth.example.com/token", AuthStyle: oauth2.AuthStyleInHeader}}
		ctx := context.WithValue(ctx, oauth2.HTTPClient, client)
		old := &oauth2.Token{RefreshToken: "RT-old"}
		b.ReportAllocs()
		for b.Loop() {
			tok, err := conf.TokenSource(ctx, old).Token()
			if err != nil || tok.Extra("id_token") == nil {
				b.Fatal(tok, err)
			}
		}
	})
}

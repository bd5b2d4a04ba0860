package oauth2refresh_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
)

func TestRequestErrorText(t *testing.T) {
	tests := []struct {
		name string
		err  *oauth2refresh.RequestError
		want string
	}{
		{"code", &oauth2refresh.RequestError{Code: "invalid_grant"}, `oauth2refresh: token endpoint returned "invalid_grant"`},
		{"status", &oauth2refresh.RequestError{Code: "invalid_grant", StatusCode: 400}, `oauth2refresh: token endpoint returned "invalid_grant" (HTTP 400)`},
		{"description", &oauth2refresh.RequestError{Code: "invalid_grant", StatusCode: 400, Description: "Token has been expired or revoked.", URI: "https://e"},
			`oauth2refresh: token endpoint returned "invalid_grant" (HTTP 400): Token has been expired or revoked.`},
		{"multi-line description", &oauth2refresh.RequestError{Code: "x", Description: "a\r\nb\tc\u2028d\x1be"},
			`oauth2refresh: token endpoint returned "x": a  b c d e`},
		{"control characters in the code", &oauth2refresh.RequestError{Code: "a\nb"}, `oauth2refresh: token endpoint returned "a\nb"`},
		{"long description", &oauth2refresh.RequestError{Code: "x", Description: strings.Repeat("é", 150)},
			`oauth2refresh: token endpoint returned "x": ` + strings.Repeat("é", 100) + "…"},
		{"long description cut inside a rune", &oauth2refresh.RequestError{Code: "x", Description: "a" + strings.Repeat("é", 150)},
			`oauth2refresh: token endpoint returned "x": a` + strings.Repeat("é", 99) + "…"},
		{"long code", &oauth2refresh.RequestError{Code: strings.Repeat("c", 100)},
			`oauth2refresh: token endpoint returned "` + strings.Repeat("c", 64) + `…"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() =\n%q, want\n%q", got, tc.want)
			}
		})
	}
}

func TestOtherErrorTexts(t *testing.T) {
	cause := errors.New("no access_token in response")
	tests := []struct {
		err  error
		want string
	}{
		{&oauth2refresh.UnexpectedResponseError{StatusCode: 502, Body: []byte("<html>secret page</html>")}, "oauth2refresh: unexpected token endpoint response (HTTP 502)"},
		{&oauth2refresh.UnexpectedResponseError{StatusCode: 200, Err: cause}, "oauth2refresh: unexpected token endpoint response (HTTP 200): no access_token in response"},
		{&oauth2refresh.TransportError{Err: context.DeadlineExceeded}, "oauth2refresh: token request failed: context deadline exceeded"},
		{oauth2refresh.ErrInvalidGrant, "oauth2refresh: invalid_grant"},
		{oauth2refresh.ErrInvalidScope, "oauth2refresh: invalid_scope"},
		{oauth2refresh.ErrRefreshTokenExpired, "oauth2refresh: refresh token expired: the grant must be authorized again"},
		// A DeadGrantError made by a caller (a Store's, a test's) has no reason.
		{&oauth2refresh.DeadGrantError{Key: "k"}, `oauth2refresh: grant "k" is dead: it must be authorized again`},
		{&oauth2refresh.DeadGrantError{Key: "k", At: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
			`oauth2refresh: grant "k" is dead (at 2030-01-02T03:04:05Z): it must be authorized again`},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	if u := (&oauth2refresh.UnexpectedResponseError{Err: cause}); !errors.Is(u, cause) {
		t.Errorf("UnexpectedResponseError does not unwrap to its Err")
	}
	if te := (&oauth2refresh.TransportError{Err: context.Canceled}); !errors.Is(fmt.Errorf("x: %w", te), context.Canceled) {
		t.Errorf("TransportError does not unwrap to its Err")
	}
}

func TestSentinels(t *testing.T) {
	// The codes callers branch on have a sentinel; the others (invalid_request,
	// unauthorized_client, unsupported_grant_type, ...) match none: callers read Code.
	sentinels := map[string]error{
		"invalid_grant":  oauth2refresh.ErrInvalidGrant,
		"invalid_client": oauth2refresh.ErrInvalidClient,
		"invalid_scope":  oauth2refresh.ErrInvalidScope,
	}
	for _, code := range []string{"invalid_grant", "invalid_client", "invalid_request", "invalid_scope",
		"unauthorized_client", "unsupported_grant_type", "access_denied", "Invalid_Grant", ""} {
		err := fmt.Errorf("wrapped: %w", &oauth2refresh.RequestError{Code: code, StatusCode: 400})
		for c, s := range sentinels {
			if got := errors.Is(err, s); got != (c == code) {
				t.Errorf("code %q: errors.Is(err, %v) = %v", code, s, got)
			}
		}
	}
	// ErrRefreshTokenExpired matches ErrInvalidGrant, and no other; no *RequestError matches it.
	expired := fmt.Errorf("wrapped: %w", oauth2refresh.ErrRefreshTokenExpired)
	for c, s := range sentinels {
		if got := errors.Is(expired, s); got != (c == "invalid_grant") {
			t.Errorf("errors.Is(ErrRefreshTokenExpired, %v) = %v", s, got)
		}
	}
	if errors.Is(&oauth2refresh.RequestError{Code: "invalid_grant"}, oauth2refresh.ErrRefreshTokenExpired) {
		t.Errorf("an invalid_grant RequestError matches ErrRefreshTokenExpired")
	}
	// An UnexpectedResponseError matches no code, whatever its status.
	for _, s := range sentinels {
		if errors.Is(&oauth2refresh.UnexpectedResponseError{StatusCode: 401}, s) {
			t.Errorf("UnexpectedResponseError matches %v", s)
		}
	}
}

func TestTemporary(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain error", errors.New("x"), false},
		{"invalid_grant", &oauth2refresh.RequestError{Code: "invalid_grant", StatusCode: 400}, false},
		{"invalid_grant at 503", &oauth2refresh.RequestError{Code: "invalid_grant", StatusCode: 503}, false},
		{"invalid_client at 401", &oauth2refresh.RequestError{Code: "invalid_client", StatusCode: 401}, false},
		{"unknown code at 400", &oauth2refresh.RequestError{Code: "access_denied", StatusCode: 400}, false},
		{"unknown code at 200", &oauth2refresh.RequestError{Code: "bad_refresh_token", StatusCode: 200}, false},
		{"unknown code at 429", &oauth2refresh.RequestError{Code: "rate_limit_exceeded", StatusCode: 429}, true},
		{"unknown code at 500", &oauth2refresh.RequestError{Code: "oops", StatusCode: 500}, true},
		{"temporarily_unavailable at 400", &oauth2refresh.RequestError{Code: "temporarily_unavailable", StatusCode: 400}, true},
		{"server_error at 200", &oauth2refresh.RequestError{Code: "server_error", StatusCode: 200}, true},
		{"unexpected 502", &oauth2refresh.UnexpectedResponseError{StatusCode: 502}, true},
		{"unexpected 429", &oauth2refresh.UnexpectedResponseError{StatusCode: 429}, true},
		{"unexpected 200", &oauth2refresh.UnexpectedResponseError{StatusCode: 200}, false},
		{"unexpected 401", &oauth2refresh.UnexpectedResponseError{StatusCode: 401}, false},
		{"unexpected 302", &oauth2refresh.UnexpectedResponseError{StatusCode: 302}, false},
		{"transport", &oauth2refresh.TransportError{Err: errors.New("connection reset")}, true},
		{"deadline", &oauth2refresh.TransportError{Err: context.DeadlineExceeded}, true},
		{"canceled", &oauth2refresh.TransportError{Err: fmt.Errorf("x: %w", context.Canceled)}, false},
		{"wrapped", fmt.Errorf("refreshing: %w", &oauth2refresh.UnexpectedResponseError{StatusCode: 503}), true},
		{"wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", &oauth2refresh.RequestError{Code: "server_error", StatusCode: 500})), true},
		{"joined", errors.Join(errors.New("x"), &oauth2refresh.TransportError{Err: errors.New("connection reset")}), true},
		// The answer is the token endpoint's, not that of a wrapper with its own Temporary
		// method (cloud.google.com/go/auth's *auth.Error says false for 502), nor that of a
		// foreign error alone.
		{"503 under a wrapper saying false", &temporaryWrapper{false, &oauth2refresh.UnexpectedResponseError{StatusCode: 503}}, true},
		{"invalid_grant under a wrapper saying true", &temporaryWrapper{true, &oauth2refresh.RequestError{Code: "invalid_grant", StatusCode: 400}}, false},
		{"foreign Temporary alone", &temporaryWrapper{true, nil}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := oauth2refresh.IsTemporary(tc.err); got != tc.want {
				t.Errorf("IsTemporary = %v, want %v", got, tc.want)
			}
		})
	}
}

// temporaryWrapper is an error of another package with its own Temporary method.
type temporaryWrapper struct {
	temporary bool
	err       error
}

func (e *temporaryWrapper) Error() string   { return "wrapper" }
func (e *temporaryWrapper) Unwrap() error   { return e.err }
func (e *temporaryWrapper) Temporary() bool { return e.temporary }

// TestAsRetrieveErrorByHand covers errors built by callers (in their own tests, say), with no
// status line from a response.
func TestAsRetrieveErrorByHand(t *testing.T) {
	h := http.Header{"Retry-After": {"5"}}
	type view struct {
		StatusCode                  int
		Status                      string
		Header                      http.Header
		Body                        string
		Code, Description, ErrorURI string
	}
	v := func(r *oauth2.RetrieveError) view {
		return view{r.Response.StatusCode, r.Response.Status, r.Response.Header, string(r.Body), r.ErrorCode, r.ErrorDescription, r.ErrorURI}
	}
	var re *oauth2.RetrieveError
	err := fmt.Errorf("w: %w", &oauth2refresh.RequestError{Code: "invalid_grant", Description: "d", URI: "u", StatusCode: 400, Header: h, Body: []byte("b")})
	if !errors.As(err, &re) {
		t.Fatal("errors.As failed for a RequestError")
	}
	if diff := cmp.Diff(view{400, "400 Bad Request", h, "b", "invalid_grant", "d", "u"}, v(re)); diff != "" {
		t.Errorf("RetrieveError (-want +got):\n%s", diff)
	}
	re = nil
	if !errors.As(&oauth2refresh.UnexpectedResponseError{StatusCode: 502, Header: h, Body: []byte("<html>")}, &re) {
		t.Fatal("errors.As failed for a 502 UnexpectedResponseError")
	}
	if diff := cmp.Diff(view{502, "502 Bad Gateway", h, "<html>", "", "", ""}, v(re)); diff != "" {
		t.Errorf("RetrieveError (-want +got):\n%s", diff)
	}
	re = nil
	if errors.As(&oauth2refresh.UnexpectedResponseError{StatusCode: 200}, &re) || re != nil {
		t.Errorf("errors.As succeeded for a 2xx UnexpectedResponseError, which x/oauth2 never makes a RetrieveError")
	}
	if errors.As(&oauth2refresh.TransportError{Err: errors.New("x")}, &re) || re != nil {
		t.Errorf("errors.As succeeded for a TransportError")
	}
}

// GitHub answers a refresh with its own codes, at HTTP 200: bad_refresh_token where RFC 6749
// says invalid_grant, incorrect_client_credentials for invalid_client. The sentinels match
// them, so that "sign in again" works against GitHub as against any other server.
func TestGitHubCodesMatchSentinels(t *testing.T) {
	for _, tc := range []struct {
		code string
		want error
	}{
		{"bad_refresh_token", oauth2refresh.ErrInvalidGrant},
		{"incorrect_client_credentials", oauth2refresh.ErrInvalidClient},
	} {
		t.Run(tc.code, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if err := r.ParseForm(); err != nil || r.Method != http.MethodPost ||
					r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("refresh_token") != "rt-0" {
					t.Errorf("request %s %v (%v)", r.Method, r.PostForm, err)
				}
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"error":%q,"error_description":"as GitHub says it"}`, tc.code)
			}))
			defer srv.Close()
			ep := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: "id", ClientSecret: "secret"}
			_, err := ep.Refresh(context.Background(), "rt-0")
			var re *oauth2refresh.RequestError
			if !errors.As(err, &re) || re.Code != tc.code || re.StatusCode != http.StatusOK {
				t.Fatalf("Refresh = %v, want a *RequestError %q at HTTP 200", err, tc.code)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.want)
			}
			for _, other := range []error{oauth2refresh.ErrInvalidGrant, oauth2refresh.ErrInvalidClient, oauth2refresh.ErrInvalidScope} {
				if other != tc.want && errors.Is(err, other) {
					t.Errorf("errors.Is(%v, %v) = true", err, other)
				}
			}
		})
	}
}

package oauth2refresh_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
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

func TestRefreshTransportErrors(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		e := &oauth2refresh.Endpoint{TokenURL: "http://user:pa55word@" + addr + "/token", ClientSecret: epSecret}
		_, err = e.Refresh(context.Background(), epRefresh)
		var te *oauth2refresh.TransportError
		if !errors.As(err, &te) {
			t.Fatalf("Refresh: %v, want a *TransportError", err)
		}
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" {
			t.Errorf("errors.As(*net.OpError) = %v, want a dial error", op)
		}
		if !oauth2refresh.IsTemporary(err) {
			t.Errorf("IsTemporary = false, want true")
		}
		if strings.Contains(err.Error(), "pa55word") {
			t.Errorf("error %q holds the URL's password", err)
		}
		epCheckMessage(t, err)
	})
	t.Run("deadline", func(t *testing.T) {
		release := make(chan struct{})
		srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		})
		defer close(release)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		e := &oauth2refresh.Endpoint{TokenURL: srv.URL}
		_, err := e.Refresh(ctx, epRefresh)
		var te *oauth2refresh.TransportError
		if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Refresh: %v, want a *TransportError wrapping context.DeadlineExceeded", err)
		}
		if !oauth2refresh.IsTemporary(err) {
			t.Errorf("IsTemporary = false, want true")
		}
		epCheckMessage(t, err)
	})
	t.Run("canceled", func(t *testing.T) {
		srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) { t.Error("request sent") })
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		e := &oauth2refresh.Endpoint{TokenURL: srv.URL}
		_, err := e.Refresh(ctx, epRefresh)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Refresh: %v, want context.Canceled", err)
		}
		if oauth2refresh.IsTemporary(err) {
			t.Errorf("IsTemporary = true for a canceled context")
		}
	})
	t.Run("transport echoing secrets", func(t *testing.T) {
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			body, _ := io.ReadAll(r.Body)
			form, _ := url.ParseQuery(string(body))
			return nil, fmt.Errorf("proxy: refusing refresh token %s of client with secret %s\nsecond line: %w",
				form.Get("refresh_token"), epSecret, context.DeadlineExceeded)
		})
		e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example.com/token", ClientSecret: epSecret, HTTPClient: &http.Client{Transport: rt}}
		_, err := e.Refresh(context.Background(), epRefresh)
		var te *oauth2refresh.TransportError
		if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Refresh: %v, want a *TransportError wrapping context.DeadlineExceeded", err)
		}
		epCheckMessage(t, err)
	})
	t.Run("body cut short", func(t *testing.T) {
		srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Content-Length", "500")
			epJSON(w, 200, `{"access_token":"`)
		})
		e := &oauth2refresh.Endpoint{TokenURL: srv.URL}
		_, err := e.Refresh(context.Background(), epRefresh)
		var te *oauth2refresh.TransportError
		if !errors.As(err, &te) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("Refresh: %v, want a *TransportError wrapping io.ErrUnexpectedEOF", err)
		}
		epCheckMessage(t, err)
	})
}

// epWant is the expected outcome of a response.
type epWant struct {
	tok   *epTok         // success
	extra map[string]any // Token.Extra values on success

	errType   string // "request", "unexpected"
	status    int
	code      string
	desc      string
	temporary bool
	retrieve  bool // errors.As(*oauth2.RetrieveError) holds
}

func TestRefreshResponses(t *testing.T) {
	big := strings.Repeat(" ", 1<<20-len(epOKBody))
	tests := []struct {
		name     string
		status   int
		ctype    string
		body     string
		chunked  bool
		want     epWant
		wantSent string // the refresh token sent; epRefresh unless set
	}{
		{name: "json", status: 200, ctype: "application/json; charset=utf-8",
			body: `{"access_token":"AT-new-access-token","token_type":"Bearer","expires_in":3600,"refresh_token":"RT-new","scope":"a b",` +
				`"id_token":"eyJ.x.y","instance_url":"https://na1.example","refresh_token_expires_in":7776000}`,
			want: epWant{tok: &epTok{epAccess, "Bearer", "RT-new", 3600}, extra: map[string]any{
				"id_token": "eyJ.x.y", "instance_url": "https://na1.example", "refresh_token_expires_in": 7776000.0,
				"scope": "a b", "unknown": nil}}},
		{name: "expires_in numeric string", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","token_type":"Bearer","expires_in":"3600","ext_expires_in":"3600"}`,
			want: epWant{tok: &epTok{epAccess, "Bearer", epRefresh, 3600}, extra: map[string]any{"ext_expires_in": "3600"}}},
		{name: "expires_in missing", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","token_type":"bearer"}`,
			want: epWant{tok: &epTok{epAccess, "bearer", epRefresh, 0}}},
		{name: "expires_in null", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","expires_in":null,"refresh_token":null}`,
			want: epWant{tok: &epTok{epAccess, "", epRefresh, 0}}},
		{name: "expires_in empty string", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","expires_in":""}`,
			want: epWant{tok: &epTok{epAccess, "", epRefresh, 0}}},
		{name: "expires_in fraction", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","expires_in":3599.9}`,
			want: epWant{tok: &epTok{epAccess, "", epRefresh, 3599}}},
		// Capped at 2^31-1 s, as x/oauth2 caps it (see TestTokenLikeXOAuth2).
		{name: "expires_in huge", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","expires_in":1e300}`,
			want: epWant{tok: &epTok{epAccess, "", epRefresh, math.MaxInt32}}},
		{name: "expires_in just above 2^31-1", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","expires_in":2147483648}`,
			want: epWant{tok: &epTok{epAccess, "", epRefresh, math.MaxInt32}}},
		{name: "expires_in beyond float64", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","expires_in":1e309}`,
			want: epWant{tok: &epTok{epAccess, "", epRefresh, 0}, extra: map[string]any{"expires_in": nil}}},
		// An unreadable expires_in is treated as absent, and kept in Extra as sent.
		{name: "expires_in invalid", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","expires_in":"soon"}`,
			want: epWant{tok: &epTok{epAccess, "", epRefresh, 0}, extra: map[string]any{"expires_in": "soon"}}},
		{name: "expires_in hex string", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","expires_in":"0x10p0"}`,
			want: epWant{tok: &epTok{epAccess, "", epRefresh, 0}, extra: map[string]any{"expires_in": "0x10p0"}}},
		{name: "expires_in negative", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","expires_in":-5}`,
			want: epWant{tok: &epTok{epAccess, "", epRefresh, 0}, extra: map[string]any{"expires_in": -5.0}}},
		{name: "expires_in bool", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","expires_in":true}`,
			want: epWant{tok: &epTok{epAccess, "", epRefresh, 0}, extra: map[string]any{"expires_in": true}}},
		{name: "refresh token empty keeps the sent one", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","refresh_token":""}`,
			want: epWant{tok: &epTok{epAccess, "", epRefresh, 0}}},
		{name: "form encoded", status: 200, ctype: "application/x-www-form-urlencoded",
			body: "access_token=AT-new-access-token&token_type=bearer&expires_in=28800&refresh_token=RT-new&scope=repo%2Cgist&refresh_token_expires_in=15811200",
			want: epWant{tok: &epTok{epAccess, "bearer", "RT-new", 28800}, extra: map[string]any{
				"scope": "repo,gist", "refresh_token_expires_in": int64(15811200)}}}, // as x/oauth2 gives form values
		{name: "form encoded without refresh token", status: 200, ctype: "application/x-www-form-urlencoded; charset=utf-8",
			body: "access_token=AT-new-access-token&token_type=bearer",
			want: epWant{tok: &epTok{epAccess, "bearer", epRefresh, 0}}},
		{name: "text/plain query string", status: 200, ctype: "text/plain",
			body: "access_token=AT-new-access-token&expires_in=60",
			want: epWant{tok: &epTok{epAccess, "", epRefresh, 60}}},
		{name: "text/plain holding JSON", status: 200, ctype: "text/plain; charset=utf-8",
			body: ` {"access_token":"AT-new-access-token","expires_in":60}`,
			want: epWant{tok: &epTok{epAccess, "", epRefresh, 60}}},
		{name: "no content type", status: 200, ctype: "",
			body: `{"access_token":"AT-new-access-token","expires_in":60}`,
			want: epWant{tok: &epTok{epAccess, "", epRefresh, 60}}},
		{name: "body of exactly 1 MiB", status: 200, ctype: "application/json", body: epOKBody + big,
			want: epWant{tok: &epTok{epAccess, "Bearer", "RT-new", 3600}}},
		{name: "chunked body of exactly 1 MiB", status: 200, ctype: "application/json", body: epOKBody + big, chunked: true,
			want: epWant{tok: &epTok{epAccess, "Bearer", "RT-new", 3600}}},
		{name: "body over 1 MiB", status: 200, ctype: "application/json", body: epOKBody + big + " ",
			want: epWant{errType: "unexpected", status: 200}},
		{name: "chunked body over 1 MiB", status: 200, ctype: "application/json", body: epOKBody + big + " ", chunked: true,
			want: epWant{errType: "unexpected", status: 200}},

		{name: "invalid_grant", status: 400, ctype: "application/json",
			body: `{"error":"invalid_grant","error_description":"Token has been expired or revoked.","error_uri":"https://x/e"}`,
			want: epWant{errType: "request", status: 400, code: "invalid_grant", desc: "Token has been expired or revoked.", retrieve: true}},
		{name: "error at 200", status: 200, ctype: "application/json",
			body: `{"error":"bad_refresh_token","error_description":"The refresh token passed is incorrect or expired."}`,
			want: epWant{errType: "request", status: 200, code: "bad_refresh_token", desc: "The refresh token passed is incorrect or expired.", retrieve: true}},
		{name: "error with an access token at 200", status: 200, ctype: "application/json",
			body: `{"error":"invalid_scope","access_token":"AT-new-access-token"}`,
			want: epWant{errType: "request", status: 200, code: "invalid_scope", retrieve: true}},
		{name: "form error at 200", status: 200, ctype: "application/x-www-form-urlencoded",
			body: "error=bad_refresh_token&error_description=The+refresh+token+passed+is+incorrect&error_uri=https%3A%2F%2Fdocs",
			want: epWant{errType: "request", status: 200, code: "bad_refresh_token", desc: "The refresh token passed is incorrect", retrieve: true}},
		{name: "error at 503", status: 503, ctype: "application/json", body: `{"error":"temporarily_unavailable"}`,
			want: epWant{errType: "request", status: 503, code: "temporarily_unavailable", temporary: true, retrieve: true}},
		{name: "error at 429", status: 429, ctype: "application/json", body: `{"error":"rate_limited"}`,
			want: epWant{errType: "request", status: 429, code: "rate_limited", temporary: true, retrieve: true}},
		{name: "invalid_grant at 500 is permanent", status: 500, ctype: "application/json", body: `{"error":"invalid_grant"}`,
			want: epWant{errType: "request", status: 500, code: "invalid_grant", retrieve: true}},
		{name: "non-standard error object", status: 400, ctype: "application/json",
			body: `{"error":{"message":"Error validating access token","type":"OAuthException","code":190}}`,
			want: epWant{errType: "unexpected", status: 400, retrieve: true}},
		{name: "non-standard error object at 200", status: 200, ctype: "application/json",
			body: `{"error":{"message":"Error validating access token"}}`,
			want: epWant{errType: "unexpected", status: 200}},
		{name: "html 502", status: 502, ctype: "text/html",
			body: "<html><head><title>502 Bad Gateway</title></head>\n<body>nginx</body></html>",
			want: epWant{errType: "unexpected", status: 502, temporary: true, retrieve: true}},
		{name: "html 200", status: 200, ctype: "text/html", body: "<html>login</html>",
			want: epWant{errType: "unexpected", status: 200}},
		{name: "truncated json", status: 200, ctype: "application/json", body: `{"access_token":"AT-new-acc`,
			want: epWant{errType: "unexpected", status: 200}},
		{name: "json array", status: 200, ctype: "application/json", body: `["access_token"]`,
			want: epWant{errType: "unexpected", status: 200}},
		{name: "json null", status: 200, ctype: "application/json", body: `null`,
			want: epWant{errType: "unexpected", status: 200}},
		{name: "empty 200", status: 200, ctype: "application/json", body: ``,
			want: epWant{errType: "unexpected", status: 200}},
		{name: "200 without access_token", status: 200, ctype: "application/json",
			body: `{"token_type":"Bearer","expires_in":3600,"refresh_token":"RT-new"}`,
			want: epWant{errType: "unexpected", status: 200}},
		{name: "200 with empty access_token", status: 200, ctype: "application/json", body: `{"access_token":""}`,
			want: epWant{errType: "unexpected", status: 200}},
		{name: "200 with a number as access_token", status: 200, ctype: "application/json", body: `{"access_token":12}`,
			want: epWant{errType: "unexpected", status: 200}},
		{name: "200 with a number as refresh_token", status: 200, ctype: "application/json", body: `{"access_token":"AT-new-access-token","refresh_token":12}`,
			want: epWant{errType: "unexpected", status: 200}},
		{name: "200 with an object as refresh_token and a bad expiry", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","refresh_token":{"value":"RT-new"},"expires_in":"soon"}`,
			want: epWant{errType: "unexpected", status: 200}},
		{name: "200 with a number as token_type", status: 200, ctype: "application/json", body: `{"access_token":"AT-new-access-token","token_type":1}`,
			want: epWant{tok: &epTok{epAccess, "", epRefresh, 0}, extra: map[string]any{"token_type": 1.0}}},
		{name: "form without access_token", status: 200, ctype: "application/x-www-form-urlencoded", body: "token_type=bearer",
			want: epWant{errType: "unexpected", status: 200}},
		{name: "malformed form", status: 200, ctype: "application/x-www-form-urlencoded", body: "access_token=%zz",
			want: epWant{errType: "unexpected", status: 200}},
		{name: "redirect with an error body", status: 302, ctype: "application/json", body: `{"error":"invalid_grant"}`,
			want: epWant{errType: "unexpected", status: 302, retrieve: true}},
		{name: "redirect with a token", status: 307, ctype: "application/json", body: epOKBody,
			want: epWant{errType: "unexpected", status: 307, retrieve: true}},
		{name: "expires_in beyond int64 as a string", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","expires_in":"9223372036854775807"}`,
			want: epWant{tok: &epTok{epAccess, "", epRefresh, math.MaxInt32}}},
		{name: "expires_in negative string", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","expires_in":"-60"}`,
			want: epWant{tok: &epTok{epAccess, "", epRefresh, 0}, extra: map[string]any{"expires_in": "-60"}}},
		{name: "token at 401", status: 401, ctype: "application/json", body: epOKBody,
			want: epWant{errType: "unexpected", status: 401, retrieve: true}},
		{name: "empty error code is no error", status: 200, ctype: "application/json", body: `{"error":"","access_token":"AT-new-access-token"}`,
			want: epWant{tok: &epTok{epAccess, "", epRefresh, 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if tc.chunked {
					if tc.ctype != "" {
						w.Header().Set("Content-Type", tc.ctype)
					}
					w.WriteHeader(tc.status)
					w.(http.Flusher).Flush()
					io.WriteString(w, tc.body)
					return
				}
				w.Header().Set("Content-Length", fmt.Sprint(len(tc.body)))
				if tc.ctype == "" {
					w.Header()["Content-Type"] = nil // no sniffing
				}
				respond(w, tc.status, tc.ctype, tc.body)
			})
			e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: epClientID, ClientSecret: epSecret}
			before := time.Now()
			tok, err := e.Refresh(context.Background(), epRefresh)
			after := time.Now()
			epCheckOutcome(t, tok, err, tc.want, before, after)
		})
	}
}

// rotatingOnce is a tokenServer, whose grant starts with refresh token "rt-0", that sends body
// (Content-Type ctype, %[1]s standing for the new refresh token) as its first successful
// answer, and its usual JSON afterwards.
func rotatingOnce(t *testing.T, ctype, body string) *tokenServer {
	ts := newTokenServer(t, "rt-0", 0)
	var answered atomic.Bool
	ts.answer = func(w http.ResponseWriter, tok map[string]any) {
		if answered.Swap(true) {
			b, _ := json.Marshal(tok)
			respond(w, 200, "application/json", string(b))
			return
		}
		respond(w, 200, ctype, fmt.Sprintf(body, tok["refresh_token"]))
	}
	return ts
}

// TestRefreshKeepsTokenDespiteBadMembers: a success whose expires_in or token_type is
// unreadable still returns the new access token and the rotated refresh token, with the bad
// member treated as absent and kept in Extra as sent; the grant goes on with the next refresh.
func TestRefreshKeepsTokenDespiteBadMembers(t *testing.T) {
	const j = "application/json"
	tests := []struct {
		name, ctype, body string
		wantType          string // what Type() says
		wantTokenType     string // the TokenType field
		wantExpiresIn     int64
		extra             map[string]any
	}{
		{name: "negative expires_in", ctype: j, body: `{"access_token":"AT-1","token_type":"Bearer","expires_in":-3600,"refresh_token":"%[1]s"}`,
			wantType: "Bearer", wantTokenType: "Bearer", extra: map[string]any{"expires_in": -3600.0}},
		{name: "negative fraction", ctype: j, body: `{"access_token":"AT-1","expires_in":-0.5,"refresh_token":"%[1]s"}`,
			wantType: "Bearer", extra: map[string]any{"expires_in": -0.5}},
		{name: "negative string", ctype: j, body: `{"access_token":"AT-1","expires_in":"-60","refresh_token":"%[1]s"}`,
			wantType: "Bearer", extra: map[string]any{"expires_in": "-60"}},
		{name: "non-numeric string", ctype: j, body: `{"access_token":"AT-1","expires_in":"one hour","refresh_token":"%[1]s"}`,
			wantType: "Bearer", extra: map[string]any{"expires_in": "one hour"}},
		{name: "NaN string", ctype: j, body: `{"access_token":"AT-1","expires_in":"NaN","refresh_token":"%[1]s"}`,
			wantType: "Bearer", extra: map[string]any{"expires_in": "NaN"}},
		{name: "Infinity string", ctype: j, body: `{"access_token":"AT-1","expires_in":"Infinity","refresh_token":"%[1]s"}`,
			wantType: "Bearer", extra: map[string]any{"expires_in": "Infinity"}},
		{name: "plus sign", ctype: j, body: `{"access_token":"AT-1","expires_in":"+60","refresh_token":"%[1]s"}`,
			wantType: "Bearer", extra: map[string]any{"expires_in": "+60"}},
		{name: "object", ctype: j, body: `{"access_token":"AT-1","expires_in":{"seconds":3600},"refresh_token":"%[1]s"}`,
			wantType: "Bearer", extra: map[string]any{"expires_in": map[string]any{"seconds": 3600.0}}},
		{name: "array", ctype: j, body: `{"access_token":"AT-1","expires_in":[3600],"refresh_token":"%[1]s"}`,
			wantType: "Bearer", extra: map[string]any{"expires_in": []any{3600.0}}},
		{name: "bool", ctype: j, body: `{"access_token":"AT-1","expires_in":false,"refresh_token":"%[1]s"}`,
			wantType: "Bearer", extra: map[string]any{"expires_in": false}},
		{name: "token_type number", ctype: j, body: `{"access_token":"AT-1","token_type":1,"expires_in":3600,"refresh_token":"%[1]s"}`,
			wantType: "Bearer", wantExpiresIn: 3600, extra: map[string]any{"token_type": 1.0}},
		{name: "token_type object", ctype: j, body: `{"access_token":"AT-1","token_type":{"name":"mac"},"refresh_token":"%[1]s"}`,
			wantType: "Bearer", extra: map[string]any{"token_type": map[string]any{"name": "mac"}}},
		{name: "token_type array and bad expiry", ctype: j, body: `{"access_token":"AT-1","token_type":["Bearer"],"expires_in":"soon","refresh_token":"%[1]s"}`,
			wantType: "Bearer", extra: map[string]any{"token_type": []any{"Bearer"}, "expires_in": "soon"}},
		{name: "form with a bad expiry", ctype: epFormType, body: `access_token=AT-1&token_type=bearer&expires_in=-1&refresh_token=%[1]s`,
			wantType: "Bearer", wantTokenType: "bearer", extra: map[string]any{"expires_in": int64(-1)}},
		{name: "form with a word as expiry", ctype: epFormType, body: `access_token=AT-1&expires_in=never&refresh_token=%[1]s`,
			wantType: "Bearer", extra: map[string]any{"expires_in": "never"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := rotatingOnce(t, tc.ctype, tc.body)
			e := srv.endpoint()
			tok, err := e.Refresh(context.Background(), "rt-0")
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			got := epTok{tok.AccessToken, tok.TokenType, tok.RefreshToken, tok.ExpiresIn}
			if diff := cmp.Diff(epTok{"AT-1", tc.wantTokenType, "rt-1", tc.wantExpiresIn}, got); diff != "" {
				t.Errorf("token (-want +got):\n%s", diff)
			}
			if (tc.wantExpiresIn == 0) != tok.Expiry.IsZero() {
				t.Errorf("Expiry = %v with expires_in %d", tok.Expiry, tc.wantExpiresIn)
			}
			if got := tok.Type(); got != tc.wantType {
				t.Errorf("Type() = %q, want %q", got, tc.wantType)
			}
			for k, v := range tc.extra {
				if diff := cmp.Diff(v, tok.Extra(k)); diff != "" {
					t.Errorf("Extra(%q) (-want +got):\n%s", k, diff)
				}
			}
			// The rotated refresh token was kept: the grant goes on.
			tok2, err := e.Refresh(context.Background(), tok.RefreshToken)
			if err != nil || tok2.AccessToken != "at-2" || tok2.RefreshToken != "rt-2" {
				t.Fatalf("second Refresh: %+v, %v", tok2, err)
			}
			// And the server does rotate: the first refresh token is spent.
			if _, err := e.Refresh(context.Background(), "rt-0"); !errors.Is(err, oauth2refresh.ErrInvalidGrant) {
				t.Errorf("reused refresh token: %v, want invalid_grant", err)
			}
		})
	}
}

func epCheckOutcome(t *testing.T, tok *oauth2.Token, err error, want epWant, before, after time.Time) {
	t.Helper()
	if want.tok != nil {
		if err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		epCheckToken(t, tok, *want.tok, before, after)
		for k, v := range want.extra {
			if got := tok.Extra(k); !cmp.Equal(v, got) {
				t.Errorf("Extra(%q) = %#v, want %#v", k, got, v)
			}
		}
		return
	}
	if err == nil {
		t.Fatalf("Refresh returned %+v, want an error", tok)
	}
	if tok != nil {
		t.Errorf("Refresh returned a token with its error")
	}
	epCheckMessage(t, err)
	var reqErr *oauth2refresh.RequestError
	var unexp *oauth2refresh.UnexpectedResponseError
	switch want.errType {
	case "request":
		if !errors.As(err, &reqErr) {
			t.Fatalf("Refresh: %T %v, want a *RequestError", err, err)
		}
		got := epWant{errType: "request", status: reqErr.StatusCode, code: reqErr.Code, desc: reqErr.Description}
		w := want
		w.temporary, w.retrieve = false, false
		if diff := cmp.Diff(w, got, cmp.AllowUnexported(epWant{})); diff != "" {
			t.Errorf("RequestError (-want +got):\n%s", diff)
		}
		if len(reqErr.Body) == 0 || len(reqErr.Body) > oauth2refresh.MaxErrorBody {
			t.Errorf("Body has %d bytes", len(reqErr.Body))
		}
	case "unexpected":
		if !errors.As(err, &unexp) {
			t.Fatalf("Refresh: %T %v, want an *UnexpectedResponseError", err, err)
		}
		if unexp.StatusCode != want.status {
			t.Errorf("StatusCode = %d, want %d", unexp.StatusCode, want.status)
		}
		if len(unexp.Body) > oauth2refresh.MaxErrorBody {
			t.Errorf("Body has %d bytes", len(unexp.Body))
		}
	default:
		t.Fatalf("bad errType %q", want.errType)
	}
	if got := oauth2refresh.IsTemporary(err); got != want.temporary {
		t.Errorf("IsTemporary = %v, want %v", got, want.temporary)
	}
	var re *oauth2.RetrieveError
	if got := errors.As(err, &re); got != want.retrieve {
		t.Errorf("errors.As(*oauth2.RetrieveError) = %v, want %v", got, want.retrieve)
	} else if got && (re.Response == nil || re.Response.StatusCode != want.status || re.ErrorCode != want.code) {
		t.Errorf("RetrieveError = %+v, want status %d and code %q", re, want.status, want.code)
	}
	if want.code != "" {
		sentinels := map[string]error{
			"invalid_grant": oauth2refresh.ErrInvalidGrant, "invalid_client": oauth2refresh.ErrInvalidClient,
			"invalid_scope": oauth2refresh.ErrInvalidScope,
		}
		std := want.code
		switch want.code { // GitHub's names for two of RFC 6749's codes
		case "bad_refresh_token":
			std = "invalid_grant"
		case "incorrect_client_credentials":
			std = "invalid_client"
		}
		for code, s := range sentinels {
			if got := errors.Is(err, s); got != (code == std) {
				t.Errorf("errors.Is(err, %v) = %v", s, got)
			}
		}
	}
}

// TestRetrieveErrorLikeXOAuth2 sends the same responses to golang.org/x/oauth2 and to this
// package, and compares the *oauth2.RetrieveError each gives.
func TestRetrieveErrorLikeXOAuth2(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		ctype, body  string
		extraHeaders http.Header
		redacted     []string // secrets that this package cuts out of the body and x/oauth2 does not
	}{
		{name: "invalid_grant", status: 400, ctype: "application/json",
			body: `{"error":"invalid_grant","error_description":"Token has been expired or revoked.","error_uri":"https://e/x"}`},
		{name: "form error", status: 400, ctype: "application/x-www-form-urlencoded", body: "error=invalid_client&error_description=no+such+client"},
		{name: "text/plain error", status: 401, ctype: "text/plain", body: "error=invalid_client"},
		{name: "error at 200", status: 200, ctype: "application/json", body: `{"error":"bad_refresh_token","error_description":"gone"}`},
		{name: "html 502", status: 502, ctype: "text/html", body: "<html><body>Bad Gateway</body></html>"},
		{name: "non-standard error object", status: 400, ctype: "application/json", body: `{"error":{"message":"bad","code":190}}`},
		{name: "429 with Retry-After", status: 429, ctype: "application/json", body: `{"error":"slow_down"}`,
			extraHeaders: http.Header{"Retry-After": {"30"}}},
		{name: "503 empty", status: 503, ctype: "", body: ""},
		{name: "unusual status", status: 599, ctype: "application/json", body: `{"error":"server_error"}`},
		{name: "token at 403", status: 403, ctype: "application/json", body: epOKBody, redacted: []string{epAccess, "RT-new"}},
		{name: "200 without access_token", status: 200, ctype: "application/json", body: `{"token_type":"Bearer"}`},
		{name: "200 html", status: 200, ctype: "text/html", body: `<html></html>`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				for k, v := range tc.extraHeaders {
					w.Header()[k] = v
				}
				w.Header().Set("Date", "Mon, 02 Jan 2006 15:04:05 GMT")
				if tc.ctype == "" {
					w.Header()["Content-Type"] = nil
				}
				respond(w, tc.status, tc.ctype, tc.body)
			})
			conf := &oauth2.Config{ClientID: epClientID, ClientSecret: epSecret,
				Endpoint: oauth2.Endpoint{TokenURL: srv.URL, AuthStyle: oauth2.AuthStyleInHeader}}
			_, xerr := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: epRefresh}).Token()
			e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: epClientID, ClientSecret: epSecret}
			_, err := e.Refresh(context.Background(), epRefresh)
			if err == nil || xerr == nil {
				t.Fatalf("errors: ours %v, x/oauth2 %v; want both", err, xerr)
			}
			var xre, re *oauth2.RetrieveError
			xok, ok := errors.As(xerr, &xre), errors.As(err, &re)
			if xok != ok {
				t.Fatalf("errors.As(*oauth2.RetrieveError): ours %v, x/oauth2 %v (%v)", ok, xok, xerr)
			}
			if !ok {
				return
			}
			type view struct {
				StatusCode       int
				Status           string
				Header           http.Header
				Body             string
				ErrorCode        string
				ErrorDescription string
				ErrorURI         string
				Error            string
			}
			v := func(r *oauth2.RetrieveError) view {
				return view{r.Response.StatusCode, r.Response.Status, r.Response.Header, string(r.Body),
					r.ErrorCode, r.ErrorDescription, r.ErrorURI, r.Error()}
			}
			want := v(xre)
			for _, s := range tc.redacted {
				want.Body = strings.ReplaceAll(want.Body, s, "[redacted]")
				want.Error = strings.ReplaceAll(want.Error, s, "[redacted]")
			}
			if diff := cmp.Diff(want, v(re)); diff != "" {
				t.Errorf("RetrieveError (-x/oauth2 +ours):\n%s", diff)
			}
			if _, err := io.ReadAll(re.Response.Body); err != nil {
				t.Errorf("reading the RetrieveError's Response.Body: %v", err)
			}
			// Both sent the same request.
			reqs := srv.requests()
			if diff := cmp.Diff(reqs[0].Form, reqs[1].Form); diff != "" {
				t.Errorf("form (-x/oauth2 +ours):\n%s", diff)
			}
			if x, o := reqs[0].Header.Get("Authorization"), reqs[1].Header.Get("Authorization"); x != o {
				t.Errorf("Authorization: x/oauth2 %q, ours %q", x, o)
			}
		})
	}
}

// TestTokenLikeXOAuth2 compares the tokens both packages make of the same responses.
func TestTokenLikeXOAuth2(t *testing.T) {
	tests := []struct{ name, ctype, body string }{
		{"json", "application/json", `{"access_token":"AT-new-access-token","token_type":"Bearer","expires_in":3600,"refresh_token":"RT-new","id_token":"x.y.z","n":[1,{"a":null}]}`},
		{"json string expiry", "application/json", `{"access_token":"AT-new-access-token","token_type":"Bearer","expires_in":"3600"}`},
		{"json no refresh token", "application/json", `{"access_token":"AT-new-access-token"}`},
		{"form", "application/x-www-form-urlencoded", "access_token=AT-new-access-token&token_type=bearer&expires_in=60&scope=a+b&x=1&x=2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) { respond(w, 200, tc.ctype, tc.body) })
			conf := &oauth2.Config{ClientID: epClientID, ClientSecret: epSecret,
				Endpoint: oauth2.Endpoint{TokenURL: srv.URL, AuthStyle: oauth2.AuthStyleInHeader}}
			xtok, err := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: epRefresh}).Token()
			if err != nil {
				t.Fatal(err)
			}
			e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: epClientID, ClientSecret: epSecret}
			tok, err := e.Refresh(context.Background(), epRefresh)
			if err != nil {
				t.Fatal(err)
			}
			type view struct {
				AccessToken, TokenType, RefreshToken string
				Expiry                               time.Time
				Extra                                map[string]any
			}
			keys := []string{"access_token", "token_type", "expires_in", "refresh_token", "id_token", "n", "scope", "x", "missing"}
			v := func(t *oauth2.Token) view {
				out := view{AccessToken: t.AccessToken, TokenType: t.TokenType, RefreshToken: t.RefreshToken,
					Expiry: t.Expiry.Round(time.Hour), Extra: map[string]any{}}
				for _, k := range keys {
					out.Extra[k] = t.Extra(k)
				}
				return out
			}
			if diff := cmp.Diff(v(xtok), v(tok)); diff != "" {
				t.Errorf("token (-x/oauth2 +ours):\n%s", diff)
			}
		})
	}
}

// epToken is a caller's own token type for RefreshAccessToken.
type epToken struct {
	oauth2refresh.TokenResponse
	IDToken               string                `json:"id_token"`
	InstanceURL           string                `json:"instance_url"`
	RefreshTokenExpiresIn oauth2refresh.Seconds `json:"refresh_token_expires_in"`
	IssuedAt              *time.Time            `json:"issued_at"`
}

func TestRefreshAccessToken(t *testing.T) {
	tests := []struct {
		name, ctype, body string
		status            int
		want              epToken
		wantErr           func(error) bool
	}{
		{name: "json", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","token_type":"Bearer","expires_in":3600,"refresh_token":"RT-new","scope":"api",` +
				`"id_token":"x.y.z","instance_url":"https://na1.example","refresh_token_expires_in":7776000}`,
			want: epToken{TokenResponse: oauth2refresh.TokenResponse{AccessToken: epAccess, TokenType: "Bearer", ExpiresIn: 3600, RefreshToken: "RT-new", Scope: "api"},
				IDToken: "x.y.z", InstanceURL: "https://na1.example", RefreshTokenExpiresIn: 7776000}},
		{name: "string expiry, refresh token kept", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","token_type":"Bearer","expires_in":"3599","refresh_token_expires_in":"86400","id_token":null}`,
			want: epToken{TokenResponse: oauth2refresh.TokenResponse{AccessToken: epAccess, TokenType: "Bearer", ExpiresIn: 3599, RefreshToken: epRefresh},
				RefreshTokenExpiresIn: 86400}},
		{name: "form encoded", status: 200, ctype: "application/x-www-form-urlencoded",
			body: "access_token=AT-new-access-token&token_type=bearer&expires_in=28800&refresh_token_expires_in=15811200&scope=repo&instance_url=https%3A%2F%2Fx",
			want: epToken{TokenResponse: oauth2refresh.TokenResponse{AccessToken: epAccess, TokenType: "bearer", ExpiresIn: 28800, RefreshToken: epRefresh, Scope: "repo"},
				InstanceURL: "https://x", RefreshTokenExpiresIn: 15811200}},
		// Unreadable expires_in and token_type are treated as absent: the token is kept.
		{name: "bad expires_in and refresh_token_expires_in", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","token_type":"Bearer","expires_in":-1,"refresh_token":"RT-new","refresh_token_expires_in":"soon"}`,
			want: epToken{TokenResponse: oauth2refresh.TokenResponse{AccessToken: epAccess, TokenType: "Bearer", RefreshToken: "RT-new"}}},
		{name: "expires_in object", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","expires_in":{"s":1},"refresh_token":"RT-new","id_token":"x.y.z"}`,
			want: epToken{TokenResponse: oauth2refresh.TokenResponse{AccessToken: epAccess, RefreshToken: "RT-new"}, IDToken: "x.y.z"}},
		{name: "token_type not a string", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","token_type":1,"expires_in":3600,"refresh_token":"RT-new","id_token":"x.y.z","instance_url":"https://na1.example"}`,
			want: epToken{TokenResponse: oauth2refresh.TokenResponse{AccessToken: epAccess, ExpiresIn: 3600, RefreshToken: "RT-new"},
				IDToken: "x.y.z", InstanceURL: "https://na1.example"}},
		{name: "token_type not a string, no refresh token", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","token_type":{"t":"Bearer"},"expires_in":"NaN"}`,
			want: epToken{TokenResponse: oauth2refresh.TokenResponse{AccessToken: epAccess, RefreshToken: epRefresh}}},
		{name: "form with a bad expiry", status: 200, ctype: "application/x-www-form-urlencoded",
			body: "access_token=AT-new-access-token&token_type=bearer&expires_in=-5&refresh_token=RT-new",
			want: epToken{TokenResponse: oauth2refresh.TokenResponse{AccessToken: epAccess, TokenType: "bearer", RefreshToken: "RT-new"}}},
		{name: "bad token_type and another field that does not decode", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","token_type":1,"refresh_token":"RT-new","instance_url":7}`,
			wantErr: func(err error) bool {
				var ue *oauth2refresh.UnexpectedResponseError
				var te *json.UnmarshalTypeError
				return errors.As(err, &ue) && errors.As(err, &te) && te.Field == "instance_url"
			}},
		{name: "refresh_token not a string", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","refresh_token":7,"expires_in":3600}`,
			wantErr: func(err error) bool {
				var ue *oauth2refresh.UnexpectedResponseError
				return errors.As(err, &ue) && ue.StatusCode == 200
			}},
		{name: "invalid_grant", status: 400, ctype: "application/json", body: `{"error":"invalid_grant"}`,
			wantErr: func(err error) bool { return errors.Is(err, oauth2refresh.ErrInvalidGrant) }},
		{name: "no access token", status: 200, ctype: "application/json", body: `{"id_token":"x.y.z"}`,
			wantErr: func(err error) bool {
				var ue *oauth2refresh.UnexpectedResponseError
				return errors.As(err, &ue)
			}},
		{name: "does not decode into T", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","id_token":42,"refresh_token":"RT-new"}`,
			wantErr: func(err error) bool {
				var ue *oauth2refresh.UnexpectedResponseError
				var te *json.UnmarshalTypeError
				return errors.As(err, &ue) && ue.StatusCode == 200 && errors.As(err, &te)
			}},
		{name: "decoding error quoting the tokens", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","refresh_token":"RT-new","issued_at":"AT-new-access-token RT-new RT-old-refresh-token/+=="}`,
			wantErr: func(err error) bool {
				var ue *oauth2refresh.UnexpectedResponseError
				var pe *time.ParseError // it quotes the tokens: not reachable
				return errors.As(err, &ue) && ue.Token != nil && !errors.As(err, &pe) && strings.Contains(err.Error(), "[redacted]")
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) { respond(w, tc.status, tc.ctype, tc.body) })
			e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: epClientID, ClientSecret: epSecret, AuthMethod: oauth2refresh.AuthRequestBody}
			got, err := oauth2refresh.RefreshAccessToken[epToken](context.Background(), e, epRefresh)
			if s := fmt.Sprint(err); strings.Contains(s, epAccess) || strings.Contains(s, "RT-new") {
				t.Errorf("error %q holds a token of the response", s)
			}
			if tc.wantErr != nil {
				if err == nil || !tc.wantErr(err) {
					t.Fatalf("RefreshAccessToken: %v, not the error wanted", err)
				}
				if diff := cmp.Diff(epToken{}, got); diff != "" {
					t.Errorf("value returned with an error (-want +got):\n%s", diff)
				}
				epCheckMessage(t, err)
				return
			}
			if err != nil {
				t.Fatalf("RefreshAccessToken: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("RefreshAccessToken (-want +got):\n%s", diff)
			}
			if got := len(srv.requests()); got != 1 {
				t.Errorf("%d requests, want 1", got)
			}
		})
	}
}

func TestRefreshAccessTokenOtherTypes(t *testing.T) {
	srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		epJSON(w, 200, `{"access_token":"AT-new-access-token","expires_in":60,"extra":"e"}`)
	})
	e := &oauth2refresh.Endpoint{TokenURL: srv.URL}
	ctx := context.Background()

	tr, err := oauth2refresh.RefreshAccessToken[oauth2refresh.TokenResponse](ctx, e, epRefresh)
	if diff := cmp.Diff(oauth2refresh.TokenResponse{AccessToken: epAccess, ExpiresIn: 60, RefreshToken: epRefresh}, tr); err != nil || diff != "" {
		t.Errorf("TokenResponse: %v (-want +got):\n%s", err, diff)
	}
	p, err := oauth2refresh.RefreshAccessToken[*epToken](ctx, e, epRefresh)
	if err != nil || p == nil {
		t.Fatalf("*epToken: %v, %v", p, err)
	}
	if diff := cmp.Diff(&epToken{TokenResponse: oauth2refresh.TokenResponse{AccessToken: epAccess, ExpiresIn: 60, RefreshToken: epRefresh}}, p); diff != "" {
		t.Errorf("*epToken (-want +got):\n%s", diff)
	}
	m, err := oauth2refresh.RefreshAccessToken[map[string]any](ctx, e, epRefresh)
	if diff := cmp.Diff(map[string]any{"access_token": epAccess, "expires_in": 60.0, "extra": "e"}, m); err != nil || diff != "" {
		t.Errorf("map: %v (-want +got):\n%s", err, diff)
	}
}

func TestSecondsUnmarshal(t *testing.T) {
	const capped = oauth2refresh.Seconds(math.MaxInt32)
	tests := []struct {
		in      string
		want    oauth2refresh.Seconds
		wantErr bool
	}{
		{`3600`, 3600, false}, {`"3600"`, 3600, false}, {`" 3600 "`, 3600, false}, {`null`, 77, false}, {`""`, 0, false},
		{`3600.9`, 3600, false}, {`"1e3"`, 1000, false}, {`0`, 0, false}, {`1e300`, capped, false},
		{`"9223372036854775807"`, capped, false}, {`"\u0036\u0030"`, 60, false},
		// Unreadable values decode to zero (absent), without an error.
		{`-1`, 0, false}, {`"-1"`, 0, false}, {`-0.5`, 0, false}, {`"soon"`, 0, false}, {`"0x10"`, 0, false}, {`"Inf"`, 0, false},
		{`"NaN"`, 0, false}, {`"1_000"`, 0, false}, {`"+5"`, 0, false}, {`true`, 0, false}, {`{}`, 0, false}, {`{"s":5}`, 0, false},
		{`[60]`, 0, false}, {`1e400`, 0, false}, {`-1e400`, 0, false}, {`"1e400"`, 0, false}, {`"007"`, 0, false},
		// Not JSON at all: encoding/json says so before Seconds is asked.
		{`"3600`, 77, true},
	}
	for _, tc := range tests {
		s := oauth2refresh.Seconds(77) // null leaves the value unchanged, anything else sets it
		err := json.Unmarshal([]byte(tc.in), &s)
		if (err != nil) != tc.wantErr || s != tc.want {
			t.Errorf("Unmarshal(%s) = %d, %v; want %d, error %v", tc.in, s, err, tc.want, tc.wantErr)
		}
	}
	// Called directly with bytes that are not JSON, it does not fail either.
	s := oauth2refresh.Seconds(77)
	if err := s.UnmarshalJSON([]byte(`"unterminated`)); err != nil || s != 0 {
		t.Errorf("UnmarshalJSON(garbage) = %d, %v; want 0, nil", s, err)
	}
}

// TestRefreshAccessTokenLenientTypes: a T without TokenResponse, whose own fields for
// token_type and expires_in cannot hold what the server sent, still gets the token; a T that
// can hold the raw values gets them.
func TestRefreshAccessTokenLenientTypes(t *testing.T) {
	const body = `{"access_token":"AT-new-access-token","token_type":["Bearer"],"expires_in":"soon","refresh_token":"RT-new","n":12345678901234567890}`
	srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) { epJSON(w, 200, body) })
	e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: epClientID, ClientSecret: epSecret}
	ctx := context.Background()

	type own struct {
		AccessToken  string `json:"access_token"`
		TokenType    string `json:"token_type"`
		ExpiresIn    int    `json:"expires_in"`
		RefreshToken string `json:"refresh_token"`
		N            uint64 `json:"n"` // decoded from the body as sent, not through a float64
	}
	o, err := oauth2refresh.RefreshAccessToken[own](ctx, e, epRefresh)
	if diff := cmp.Diff(own{AccessToken: epAccess, RefreshToken: "RT-new", N: 12345678901234567890}, o); err != nil || diff != "" {
		t.Errorf("own: %v (-want +got):\n%s", err, diff)
	}
	m, err := oauth2refresh.RefreshAccessToken[map[string]any](ctx, e, epRefresh)
	want := map[string]any{"access_token": epAccess, "token_type": []any{"Bearer"}, "expires_in": "soon", "refresh_token": "RT-new", "n": 12345678901234567890.0}
	if diff := cmp.Diff(want, m); err != nil || diff != "" {
		t.Errorf("map: %v (-want +got):\n%s", err, diff)
	}
	raw, err := oauth2refresh.RefreshAccessToken[map[string]json.RawMessage](ctx, e, epRefresh)
	if err != nil || string(raw["token_type"]) != `["Bearer"]` || string(raw["expires_in"]) != `"soon"` {
		t.Errorf("raw: %q, %v", raw, err)
	}
}

// TestRefreshAccessTokenKeepsRotatedToken: when the token response does not decode into T,
// the grant has succeeded all the same and a rotating server has spent the refresh token that
// was sent. The error holds the token issued, whose refresh token is the only one that works
// now, without showing it in its text.
func TestRefreshAccessTokenKeepsRotatedToken(t *testing.T) {
	type strict struct {
		oauth2refresh.TokenResponse
		RefreshTokenExpiresIn int `json:"refresh_token_expires_in"` // the server sends a string
	}
	srv := rotatingOnce(t, "application/json",
		`{"access_token":"AT-1","token_type":"Bearer","expires_in":3600,"refresh_token":"%[1]s","refresh_token_expires_in":"7776000"}`)
	e := srv.endpoint()
	ctx := context.Background()

	before := time.Now()
	got, err := oauth2refresh.RefreshAccessToken[strict](ctx, e, "rt-0")
	after := time.Now()
	var ue *oauth2refresh.UnexpectedResponseError
	var te *json.UnmarshalTypeError
	if !errors.As(err, &ue) || !errors.As(err, &te) || te.Field != "refresh_token_expires_in" || ue.StatusCode != 200 {
		t.Fatalf("RefreshAccessToken: %v, want an *UnexpectedResponseError with a *json.UnmarshalTypeError", err)
	}
	if diff := cmp.Diff(strict{}, got); diff != "" {
		t.Errorf("value returned with the error (-want +got):\n%s", diff)
	}
	if ue.Token == nil {
		t.Fatal("the error holds no Token: the rotated refresh token is lost")
	}
	epCheckToken(t, ue.Token, epTok{"AT-1", "Bearer", "rt-1", 3600}, before, after)
	if v := ue.Token.Extra("refresh_token_expires_in"); v != "7776000" {
		t.Errorf("Extra(refresh_token_expires_in) = %#v, want the string sent", v)
	}
	epCheckMessage(t, err)
	for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", ue), string(ue.Body)} {
		if strings.Contains(text, "rt-1") || strings.Contains(text, "AT-1") {
			t.Errorf("%q shows a token of the response", text)
		}
	}

	// The refresh token from the error goes on with the grant; the one sent is spent.
	next, err := e.Refresh(ctx, ue.Token.RefreshToken)
	if err != nil || next.AccessToken != "at-2" || next.RefreshToken != "rt-2" {
		t.Errorf("Refresh with the token from the error: %v, %v", next, err)
	}
	if srv.reused.Load() != 0 {
		t.Errorf("a spent refresh token was sent")
	}
	if _, err := e.Refresh(ctx, "rt-0"); !errors.Is(err, oauth2refresh.ErrInvalidGrant) || srv.reused.Load() != 1 {
		t.Errorf("Refresh with the spent token: %v, want invalid_grant", err)
	}

	// Other unexpected responses carry no Token: no token was issued.
	noToken := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) { epJSON(w, 200, `{"refresh_token":"RT-x"}`) })
	e.TokenURL = noToken.URL
	_, err = oauth2refresh.RefreshAccessToken[strict](ctx, e, epRefresh)
	if ue = nil; !errors.As(err, &ue) || ue.Token != nil {
		t.Errorf("a 200 without access_token: %v (%+v), want an *UnexpectedResponseError without Token", err, ue)
	}
}

// TestNumberBeyondFloat64KeepsToken: a member holding a number beyond the range of a float64
// (1e309, -1e309, 1e500, anywhere in the body) is unreadable and treated as absent; it never
// costs the rotated refresh token, from Refresh or from RefreshAccessToken[T] for any T.
func TestNumberBeyondFloat64KeepsToken(t *testing.T) {
	type withFloat struct {
		oauth2refresh.TokenResponse
		N float64 `json:"n"`
	}
	bodies := map[string]string{
		"expires_in 1e309":  `{"access_token":"AT-1","refresh_token":"%[1]s","expires_in":1e309}`,
		"expires_in -1e309": `{"access_token":"AT-1","refresh_token":"%[1]s","expires_in":-1e309,"token_type":"Bearer"}`,
		"another member":    `{"access_token":"AT-1","refresh_token":"%[1]s","expires_in":60,"n":1e500}`,
		"nested":            `{"access_token":"AT-1","refresh_token":"%[1]s","x":{"y":[1e500]},"n":-1e500}`,
	}
	calls := map[string]func(e *oauth2refresh.Endpoint, rt string) (string, error){
		"Refresh": func(e *oauth2refresh.Endpoint, rt string) (string, error) {
			tok, err := e.Refresh(context.Background(), rt)
			if err != nil {
				return "", err
			}
			return tok.RefreshToken, nil
		},
		"RefreshAccessToken[TokenResponse]": func(e *oauth2refresh.Endpoint, rt string) (string, error) {
			tr, err := oauth2refresh.RefreshAccessToken[oauth2refresh.TokenResponse](context.Background(), e, rt)
			return tr.RefreshToken, err
		},
		"RefreshAccessToken[struct with a float64]": func(e *oauth2refresh.Endpoint, rt string) (string, error) {
			tr, err := oauth2refresh.RefreshAccessToken[*withFloat](context.Background(), e, rt)
			if err != nil {
				return "", err
			}
			return tr.RefreshToken, nil
		},
		"RefreshAccessToken[map]": func(e *oauth2refresh.Endpoint, rt string) (string, error) {
			m, err := oauth2refresh.RefreshAccessToken[map[string]any](context.Background(), e, rt)
			s, _ := m["refresh_token"].(string)
			return s, err
		},
	}
	for bname, body := range bodies {
		for cname, call := range calls {
			t.Run(bname+"/"+cname, func(t *testing.T) {
				srv := rotatingOnce(t, "application/json", body)
				e := srv.endpoint()
				got, err := call(e, "rt-0")
				if err != nil || got != "rt-1" {
					t.Fatalf("first refresh: refresh token %q, %v; want rt-1", got, err)
				}
				if got, err := call(e, got); err != nil || got != "rt-2" {
					t.Fatalf("second refresh: refresh token %q, %v; want rt-2", got, err)
				}
				if srv.reused.Load() != 0 || srv.isRevoked() {
					t.Errorf("a spent refresh token was sent")
				}
			})
		}
	}
	// What Refresh makes of the members.
	srv := rotatingOnce(t, "application/json", bodies["another member"])
	tok, err := srv.endpoint().Refresh(context.Background(), "rt-0")
	if err != nil || tok.ExpiresIn != 60 || tok.Extra("n") != nil || tok.Extra("expires_in") != 60.0 {
		t.Errorf("Refresh: %+v (n: %v), %v; want expires_in 60 and n absent", tok, tok.Extra("n"), err)
	}
}

// TestExpiresInCappedLikeXOAuth2: an expires_in above 2^31-1 is capped there, in ExpiresIn and
// Expiry, as golang.org/x/oauth2 caps it; below, both packages agree too.
func TestExpiresInCappedLikeXOAuth2(t *testing.T) {
	for _, exp := range []string{`3600`, `2147483647`, `2147483648`, `"2147483648"`, `99999999999`} {
		t.Run(exp, func(t *testing.T) {
			body := `{"access_token":"AT-1","token_type":"Bearer","expires_in":` + exp + `}`
			srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) { epJSON(w, 200, body) })
			conf := &oauth2.Config{ClientID: epClientID, ClientSecret: epSecret,
				Endpoint: oauth2.Endpoint{TokenURL: srv.URL, AuthStyle: oauth2.AuthStyleInHeader}}
			xtok, xerr := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: epRefresh}).Token()
			e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: epClientID, ClientSecret: epSecret}
			tok, err := e.Refresh(context.Background(), epRefresh)
			if err != nil || xerr != nil {
				t.Fatalf("ours: %v; x/oauth2: %v", err, xerr)
			}
			type view struct {
				ExpiresIn int64
				Expiry    time.Time
			}
			v := func(t *oauth2.Token) view { return view{t.ExpiresIn, t.Expiry.Round(time.Hour)} }
			if diff := cmp.Diff(v(xtok), v(tok)); diff != "" {
				t.Errorf("token (-x/oauth2 +ours):\n%s", diff)
			}
			if tok.ExpiresIn > math.MaxInt32 {
				t.Errorf("ExpiresIn = %d", tok.ExpiresIn)
			}
		})
	}
}

// TestRetrieveErrorResponseRequest: the *oauth2.RetrieveError an error converts to has its
// response's request, as golang.org/x/oauth2 leaves it, without the secrets: no Authorization
// header, no body, no password in the URL.
func TestRetrieveErrorResponseRequest(t *testing.T) {
	srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n%2 == 1 {
			epJSON(w, 400, `{"error":"invalid_grant"}`)
		} else {
			respond(w, 502, "text/html", "<html>bad gateway</html>")
		}
	})
	u, _ := url.Parse(srv.URL + "/oauth/token?tenant=1")
	conf := &oauth2.Config{ClientID: epClientID, ClientSecret: epSecret,
		Endpoint: oauth2.Endpoint{TokenURL: u.String(), AuthStyle: oauth2.AuthStyleInHeader}}
	u.User = url.UserPassword("user", "pa55word")
	e := &oauth2refresh.Endpoint{TokenURL: u.String(), ClientID: epClientID, ClientSecret: epSecret,
		Header: http.Header{"X-Tenant": {"t1"}}}
	for _, status := range []int{400, 502} {
		_, xerr := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: epRefresh}).Token()
		_, err := e.Refresh(context.Background(), epRefresh)
		var xre, re *oauth2.RetrieveError
		if !errors.As(xerr, &xre) || !errors.As(err, &re) {
			t.Fatalf("HTTP %d: x/oauth2 %v, ours %v; want two *oauth2.RetrieveError", status, xerr, err)
		}
		req := re.Response.Request
		if req == nil {
			t.Fatalf("HTTP %d: Response.Request is nil", status)
		}
		type view struct{ Method, URL string }
		if diff := cmp.Diff(view{xre.Response.Request.Method, xre.Response.Request.URL.String()},
			view{req.Method, req.URL.String()}); diff != "" {
			t.Errorf("HTTP %d: request (-x/oauth2 +ours):\n%s", status, diff)
		}
		if req.Header.Get("Authorization") != "" || req.Header.Get("X-Tenant") != "t1" || req.Header.Get("Content-Type") == "" {
			t.Errorf("HTTP %d: request header %v", status, req.Header)
		}
		if req.Body != nil {
			if b, err := io.ReadAll(req.Body); err != nil || len(b) != 0 {
				t.Errorf("HTTP %d: request body %q, %v; want none", status, b, err)
			}
		}
		if req.GetBody != nil {
			t.Errorf("HTTP %d: request has GetBody", status)
		}
		if s := fmt.Sprint(req.URL, req.Header, req.Form, req.PostForm); strings.Contains(s, "pa55word") ||
			strings.Contains(s, epRefresh) || strings.Contains(s, url.QueryEscape(epRefresh)) {
			t.Errorf("HTTP %d: request holds a secret: %s", status, s)
		}
	}
}

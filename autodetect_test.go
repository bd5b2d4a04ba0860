package oauth2refresh_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenkit/oauth2refresh"
)

// epAuthServer accepts the client's credentials only the way accept says, answering
// rejections with reject, and counts requests by method.
type epAuthServer struct {
	*recordingServer
}

func newEPAuthServer(t *testing.T, accept oauth2refresh.AuthMethod, reject func(w http.ResponseWriter)) *epAuthServer {
	s := &epAuthServer{}
	s.recordingServer = newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		_, _, basic := r.BasicAuth()
		body := r.Header.Get("Authorization") == "" // the form was checked by the recording server
		if (accept == oauth2refresh.AuthBasic && basic) || (accept == oauth2refresh.AuthRequestBody && body) {
			epJSON(w, 200, epOKBody)
			return
		}
		reject(w)
	})
	return s
}

// methods returns how each request authenticated: "basic" or "body", checking the form.
func (s *epAuthServer) methods(t *testing.T, e *oauth2refresh.Endpoint) []string {
	t.Helper()
	var out []string
	for _, r := range s.requests() {
		if r.Header.Get("Authorization") != "" {
			if r.Header.Get("Authorization") != epBasic(e.ClientID, e.ClientSecret) || r.Form.Has("client_id") || r.Form.Has("client_secret") {
				t.Errorf("bad basic request: %+v", r)
			}
			out = append(out, "basic")
			continue
		}
		if r.Form.Get("client_id") != e.ClientID || r.Form.Get("client_secret") != e.ClientSecret {
			t.Errorf("bad request-body request: %+v", r)
		}
		out = append(out, "body")
	}
	return out
}

func TestAutoDetect(t *testing.T) {
	status := func(code int, ctype, body string) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) { respond(w, code, ctype, body) }
	}
	tests := []struct {
		name    string
		accept  oauth2refresh.AuthMethod
		reject  func(w http.ResponseWriter)
		wantErr func(error) bool // nil: success
		want    []string         // methods of the requests of two Refresh calls
	}{
		{name: "basic accepted", accept: oauth2refresh.AuthBasic, reject: status(401, "", ""),
			want: []string{"basic", "basic"}},
		{name: "401 without body", accept: oauth2refresh.AuthRequestBody, reject: status(401, "text/html", "<h1>401</h1>"),
			want: []string{"basic", "body", "body"}},
		{name: "invalid_client", accept: oauth2refresh.AuthRequestBody, reject: status(400, "application/json", `{"error":"invalid_client"}`),
			want: []string{"basic", "body", "body"}},
		{name: "unauthorized_client", accept: oauth2refresh.AuthRequestBody, reject: status(400, "application/json", `{"error":"unauthorized_client"}`),
			want: []string{"basic", "body", "body"}},
		{name: "github incorrect_client_credentials at 200", accept: oauth2refresh.AuthRequestBody,
			reject: status(200, "application/json", `{"error":"incorrect_client_credentials","error_description":"The client_id and/or client_secret passed are incorrect.",`+
				`"error_uri":"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#incorrect-client-credentials"}`),
			want: []string{"basic", "body", "body"}},
		{name: "incorrect_client_credentials both ways", accept: 99, reject: status(200, "application/json", `{"error":"incorrect_client_credentials"}`),
			wantErr: func(err error) bool {
				var re *oauth2refresh.RequestError
				return errors.As(err, &re) && re.Code == "incorrect_client_credentials" && re.StatusCode == 200 && !oauth2refresh.IsTemporary(err)
			},
			want: []string{"basic", "body", "basic", "body"}},
		{name: "other error at 200: no fallback", accept: oauth2refresh.AuthRequestBody, reject: status(200, "application/json", `{"error":"bad_refresh_token"}`),
			wantErr: func(err error) bool {
				var re *oauth2refresh.RequestError
				return errors.As(err, &re) && re.Code == "bad_refresh_token"
			},
			want: []string{"basic", "basic"}},
		{name: "401 invalid_request", accept: oauth2refresh.AuthRequestBody, reject: status(401, "application/json", `{"error":"invalid_request"}`),
			want: []string{"basic", "body", "body"}},
		{name: "invalid_grant: no fallback", accept: oauth2refresh.AuthRequestBody, reject: status(400, "application/json", `{"error":"invalid_grant"}`),
			wantErr: func(err error) bool { return errors.Is(err, oauth2refresh.ErrInvalidGrant) },
			want:    []string{"basic", "basic"}},
		{name: "invalid_grant at 401: no fallback", accept: oauth2refresh.AuthRequestBody, reject: status(401, "application/json", `{"error":"invalid_grant"}`),
			wantErr: func(err error) bool { return errors.Is(err, oauth2refresh.ErrInvalidGrant) },
			want:    []string{"basic", "basic"}},
		// LinkedIn answers a missing client_id (Basic not looked at) with 400 invalid_request,
		// Twitch with a non-standard 400 body: the grant was not judged.
		{name: "linkedin: invalid_request at 400", accept: oauth2refresh.AuthRequestBody, reject: status(400, "application/json",
			`{"error":"invalid_request","error_description":"A required parameter \"client_id\" is missing"}`),
			want: []string{"basic", "body", "body"}},
		{name: "twitch: non-standard 400", accept: oauth2refresh.AuthRequestBody, reject: status(400, "application/json",
			`{"status":400,"message":"missing client id"}`),
			want: []string{"basic", "body", "body"}},
		{name: "400 with an unknown code", accept: oauth2refresh.AuthRequestBody, reject: status(400, "application/json", `{"error":"invalid_credentials"}`),
			want: []string{"basic", "body", "body"}},
		{name: "invalid_request at 400 both ways", accept: 99, reject: status(400, "application/json", `{"error":"invalid_request"}`),
			wantErr: func(err error) bool {
				var re *oauth2refresh.RequestError
				return errors.As(err, &re) && re.Code == "invalid_request"
			},
			want: []string{"basic", "body", "basic", "body"}},
		{name: "invalid_scope at 400: no fallback", accept: oauth2refresh.AuthRequestBody, reject: status(400, "application/json", `{"error":"invalid_scope"}`),
			wantErr: func(err error) bool { return errors.Is(err, oauth2refresh.ErrInvalidScope) },
			want:    []string{"basic", "basic"}},
		{name: "github bad_refresh_token at 400: no fallback", accept: oauth2refresh.AuthRequestBody, reject: status(400, "application/json", `{"error":"bad_refresh_token"}`),
			wantErr: func(err error) bool {
				var re *oauth2refresh.RequestError
				return errors.As(err, &re) && re.Code == "bad_refresh_token"
			},
			want: []string{"basic", "basic"}},
		{name: "403: no fallback", accept: oauth2refresh.AuthRequestBody, reject: status(403, "application/json", `{"error":"access_denied"}`),
			wantErr: func(err error) bool { return !oauth2refresh.IsTemporary(err) },
			want:    []string{"basic", "basic"}},
		{name: "429: no fallback", accept: oauth2refresh.AuthRequestBody, reject: status(429, "text/plain", "slow down"),
			wantErr: func(err error) bool { return oauth2refresh.IsTemporary(err) },
			want:    []string{"basic", "basic"}},
		{name: "500: no fallback", accept: oauth2refresh.AuthRequestBody, reject: status(500, "text/html", "oops"),
			wantErr: func(err error) bool {
				var ue *oauth2refresh.UnexpectedResponseError
				return errors.As(err, &ue) && ue.StatusCode == 500
			},
			want: []string{"basic", "basic"}},
		{name: "503: no fallback", accept: oauth2refresh.AuthRequestBody, reject: status(503, "application/json", `{"error":"temporarily_unavailable"}`),
			wantErr: func(err error) bool { return oauth2refresh.IsTemporary(err) },
			want:    []string{"basic", "basic"}},
		// A nonce challenge (RFC 9449 §8) says nothing of the credentials, with or without a key.
		{name: "use_dpop_nonce without a DPoP key: no fallback", accept: oauth2refresh.AuthRequestBody,
			reject: status(400, "application/json", `{"error":"use_dpop_nonce"}`),
			wantErr: func(err error) bool {
				var re *oauth2refresh.RequestError
				return errors.As(err, &re) && re.Code == "use_dpop_nonce"
			},
			want: []string{"basic", "basic"}},
		{name: "both fail", accept: 99, reject: status(401, "application/json", `{"error":"invalid_client","error_description":"bad secret"}`),
			wantErr: func(err error) bool {
				var re *oauth2refresh.RequestError
				if u, ok := err.(interface{ Unwrap() []error }); !ok || len(u.Unwrap()) != 2 {
					return false
				}
				return errors.Is(err, oauth2refresh.ErrInvalidClient) && errors.As(err, &re) &&
					strings.Contains(err.Error(), "basic: ") && strings.Contains(err.Error(), "request body: ")
			},
			want: []string{"basic", "body", "basic", "body"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newEPAuthServer(t, tc.accept, tc.reject)
			// The client id is unique so the process-wide cache starts empty.
			e := &oauth2refresh.Endpoint{TokenURL: srv.URL + "/token", ClientID: "client " + t.Name(), ClientSecret: epSecret,
				AuthMethod: oauth2refresh.AuthAutoDetect}
			for i := range 2 {
				tok, err := e.Refresh(context.Background(), epRefresh)
				if tc.wantErr == nil {
					if err != nil {
						t.Fatalf("Refresh %d: %v", i, err)
					}
					if tok.AccessToken != epAccess {
						t.Errorf("AccessToken = %q", tok.AccessToken)
					}
					continue
				}
				if err == nil || !tc.wantErr(err) {
					t.Fatalf("Refresh %d: %v, not the error wanted", i, err)
				}
				epCheckMessage(t, err)
			}
			if diff := cmp.Diff(tc.want, srv.methods(t, e)); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAutoDetectBothErrorsReachable(t *testing.T) {
	srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Header.Get("Authorization") != "" {
			respond(w, 401, "text/html", "<h1>Unauthorized</h1>")
			return
		}
		epJSON(w, 400, `{"error":"unauthorized_client","error_description":"client may not refresh"}`)
	})
	e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: "client " + t.Name(), ClientSecret: epSecret, AuthMethod: oauth2refresh.AuthAutoDetect}
	_, err := e.Refresh(context.Background(), epRefresh)
	var ue *oauth2refresh.UnexpectedResponseError
	var re *oauth2refresh.RequestError
	if !errors.As(err, &ue) || ue.StatusCode != 401 {
		t.Errorf("basic failure not reachable: %v", err)
	}
	if !errors.As(err, &re) || re.Code != "unauthorized_client" {
		t.Errorf("request-body failure not reachable: %v", err)
	}
	if oauth2refresh.IsTemporary(err) {
		t.Errorf("IsTemporary = true")
	}
	epCheckMessage(t, err)
}

func TestAutoDetectNoFallbackAfterNetworkFailure(t *testing.T) {
	var calls int
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		calls++
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	})
	e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example.com/token", ClientID: "client " + t.Name(), ClientSecret: epSecret,
		AuthMethod: oauth2refresh.AuthAutoDetect, HTTPClient: &http.Client{Transport: rt}}
	_, err := e.Refresh(context.Background(), epRefresh)
	var op *net.OpError
	if !errors.As(err, &op) || !oauth2refresh.IsTemporary(err) {
		t.Errorf("Refresh: %v, want a temporary *net.OpError", err)
	}
	if calls != 1 {
		t.Errorf("%d requests, want 1", calls)
	}
}

// TestAutoDetectCacheKey checks that the method is remembered per token URL and client id.
func TestAutoDetectCacheKey(t *testing.T) {
	// The server takes client A only in the body, client B only with Basic.
	srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		id, _, basic := r.BasicAuth()
		id, _ = url.QueryUnescape(id)
		if !basic {
			id = r.Form.Get("client_id")
		}
		switch {
		case strings.HasSuffix(id, "A") && !basic, strings.HasSuffix(id, "B") && basic:
			epJSON(w, 200, epOKBody)
		default:
			epJSON(w, 401, `{"error":"invalid_client"}`)
		}
	})
	a := &oauth2refresh.Endpoint{TokenURL: srv.URL + "/t", ClientID: t.Name() + "A", ClientSecret: epSecret, AuthMethod: oauth2refresh.AuthAutoDetect}
	b := &oauth2refresh.Endpoint{TokenURL: srv.URL + "/t", ClientID: t.Name() + "B", ClientSecret: epSecret, AuthMethod: oauth2refresh.AuthAutoDetect}
	a2 := &oauth2refresh.Endpoint{TokenURL: srv.URL + "/other", ClientID: t.Name() + "A", ClientSecret: epSecret, AuthMethod: oauth2refresh.AuthAutoDetect}
	steps := []struct {
		e    *oauth2refresh.Endpoint
		want int // requests this call makes
	}{{a, 2}, {b, 1}, {a, 1}, {b, 1}, {a2, 2}, {a2, 1}, {a, 1}}
	total := 0
	for i, s := range steps {
		if _, err := s.e.Refresh(context.Background(), epRefresh); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		total += s.want
		if got := len(srv.requests()); got != total {
			t.Fatalf("step %d: %d requests in all, want %d", i, got, total)
		}
	}
}

// TestAutoDetectRemembersBasic: once Basic worked, a later rejection is returned as it is,
// without trying the request body.
// TestAutoDetectRedetects: Basic worked and is remembered; when the server later rejects
// Basic as client authentication, the body is tried once and remembered instead; when both
// fail, nothing is remembered.
func TestAutoDetectRedetects(t *testing.T) {
	var acceptBody atomic.Bool
	srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		basic := r.Header.Get("Authorization") != ""
		switch {
		case n == 1 && basic: // at first the server takes Basic
			epJSON(w, 200, epOKBody)
		case n > 1 && !basic && acceptBody.Load(): // then only the body
			epJSON(w, 200, epOKBody)
		default:
			epJSON(w, 401, `{"error":"invalid_client"}`)
		}
	})
	e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: fmt.Sprintf("client %s %d", t.Name(), autoDetectRun.Add(1)),
		ClientSecret: epSecret, AuthMethod: oauth2refresh.AuthAutoDetect}
	ctx := context.Background()
	if _, err := e.Refresh(ctx, epRefresh); err != nil { // 1: Basic, remembered
		t.Fatal(err)
	}
	acceptBody.Store(true)
	if _, err := e.Refresh(ctx, epRefresh); err != nil { // 2: Basic refused, 3: body, remembered
		t.Fatal(err)
	}
	if _, err := e.Refresh(ctx, epRefresh); err != nil { // 4: body first
		t.Fatal(err)
	}
	acceptBody.Store(false)
	_, err := e.Refresh(ctx, epRefresh) // 5: body refused, 6: Basic refused, forgotten
	if !errors.Is(err, oauth2refresh.ErrInvalidClient) {
		t.Fatalf("Refresh: %v, want invalid_client", err)
	}
	if _, err := e.Refresh(ctx, epRefresh); err == nil { // 7: Basic again (nothing remembered), 8: body
		t.Fatal("Refresh succeeded, want invalid_client")
	}
	var got []bool
	for i, r := range srv.requests() {
		basic := r.Header.Get("Authorization") != ""
		got = append(got, basic)
		// Each attempt is authenticated one way only: a Basic retry after a body attempt
		// (request 6) carries no client_id or client_secret of the first.
		if inBody := r.Form.Has("client_id") || r.Form.Has("client_secret"); basic == inBody {
			t.Errorf("request %d: Basic %v, client_id or client_secret in the body %v", i+1, basic, inBody)
		}
	}
	want := []bool{true, true, false, false, false, true, true, false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Basic used per request (-want +got):\n%s", diff)
	}
}

// autoDetectRun makes AutoDetect client ids unique across -count runs: the cache of what
// worked is process-wide, keyed by token URL and client id, and test servers reuse ports.
var autoDetectRun atomic.Int64

// TestAutoDetectNonceChallenges: DPoP nonce challenges (400 use_dpop_nonce with a new nonce,
// RFC 9449 §8), however many in a row, never make AuthAutoDetect send the credentials the
// other way: the request goes again with the newest nonce under the same method, and only a
// refusal of the credentials (invalid_client) moves to the request body. The server checks the
// proof, the nonce, the Authorization header and every form field of each request; it
// challenges the first `challenges` requests with a nonce of its own each time.
func TestAutoDetectNonceChallenges(t *testing.T) {
	isNonce := func(err error) bool {
		var re *oauth2refresh.RequestError
		return errors.As(err, &re) && re.Code == "use_dpop_nonce" && re.StatusCode == 400
	}
	tests := []struct {
		name       string
		bodyOnly   bool // the server refuses Basic with invalid_client
		challenges int
		want       [2][]string         // methods of the requests of each of two Refresh calls
		wantErr    [2]func(error) bool // nil: success
	}{
		{name: "one challenge", challenges: 1, want: [2][]string{{"basic", "basic"}, {"basic"}}},
		{name: "two in a row", challenges: 2, want: [2][]string{{"basic", "basic", "basic"}, {"basic"}}},
		{name: "three in a row", challenges: 3, want: [2][]string{{"basic", "basic", "basic", "basic"}, {"basic"}}},
		{name: "always", challenges: 99, want: [2][]string{{"basic", "basic", "basic", "basic"}, {"basic", "basic", "basic", "basic"}},
			wantErr: [2]func(error) bool{isNonce, isNonce}},
		{name: "body only, two in a row", bodyOnly: true, challenges: 2,
			want: [2][]string{{"basic", "basic", "basic", "body"}, {"body"}}},
		{name: "body only, four in a row", bodyOnly: true, challenges: 4,
			want:    [2][]string{{"basic", "basic", "basic", "basic"}, {"basic", "body"}},
			wantErr: [2]func(error) bool{isNonce, nil}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newDPoPVerifier(t)
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			dk, _ := oauth2refresh.NewDPoPKey(key)
			e := &oauth2refresh.Endpoint{ClientID: fmt.Sprintf("client %s %d", t.Name(), autoDetectRun.Add(1)), ClientSecret: epSecret,
				AuthMethod: oauth2refresh.AuthAutoDetect, DPoP: dk}
			srv := &epAuthServer{recordingServer: newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if got := []string{r.Form.Get("grant_type"), r.Form.Get("refresh_token")}; !cmp.Equal(got, []string{"refresh_token", epRefresh}) {
					t.Errorf("request %d: grant_type, refresh_token = %q", n, got)
				}
				_, nonceOK := v.check(r, "token", "")
				if n <= tc.challenges || !nonceOK {
					w.Header().Set("DPoP-Nonce", v.rotate("token"))
					epJSON(w, 400, `{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof"}`)
					return
				}
				basic := r.Header.Get("Authorization") == epBasic(e.ClientID, e.ClientSecret) && !r.Form.Has("client_id") && !r.Form.Has("client_secret")
				body := r.Header.Get("Authorization") == "" && r.Form.Get("client_id") == e.ClientID && r.Form.Get("client_secret") == e.ClientSecret
				if body || basic && !tc.bodyOnly {
					epJSON(w, 200, epOKBody)
					return
				}
				epJSON(w, 401, `{"error":"invalid_client"}`)
			})}
			e.TokenURL = srv.URL + "/token"
			var got [2][]string
			seen := 0
			for i := range 2 {
				_, err := e.Refresh(context.Background(), epRefresh)
				if want := tc.wantErr[i]; want == nil && err != nil || want != nil && (err == nil || !want(err)) {
					t.Errorf("Refresh %d: %v", i, err)
				}
				all := srv.methods(t, e)
				got[i], seen = all[seen:], len(all)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

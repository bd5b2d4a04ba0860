package compat_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh/compat"
)

// providerRuns makes client ids unique across -count runs: both libraries remember what
// worked per token URL and client id, ours for the life of the process.
var providerRuns atomic.Int64

// TestAutoDetectLikeXOAuth2 runs golang.org/x/oauth2's AuthStyleAutoDetect and ours side by
// side against providers that take the client's credentials only in the body. Where the
// server shows it did not judge the grant (Twitch's and LinkedIn's 400 for a missing
// client_id), both fall back to the body and succeed. Where it judged the grant
// (invalid_grant) or failed (503), x/oauth2 sends the refresh token a second time and ours
// does not.
func TestAutoDetectLikeXOAuth2(t *testing.T) {
	tests := []struct {
		name     string
		reject   func(w http.ResponseWriter) // the answer to a request without client_id in the body
		bodyOK   bool                        // whether credentials in the body are accepted
		wantX    []string                    // how x/oauth2's requests authenticated
		wantOurs []string
		wantErr  bool
	}{
		{name: "twitch", bodyOK: true, reject: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			io.WriteString(w, `{"status":400,"message":"missing client id"}`)
		}, wantX: []string{"basic", "body"}, wantOurs: []string{"basic", "body"}},
		{name: "linkedin", bodyOK: true, reject: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			io.WriteString(w, `{"error":"invalid_request","error_description":"A required parameter \"client_id\" is missing"}`)
		}, wantX: []string{"basic", "body"}, wantOurs: []string{"basic", "body"}},
		{name: "revoked grant", reject: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			io.WriteString(w, `{"error":"invalid_grant","error_description":"refresh token revoked"}`)
		}, wantX: []string{"basic", "body"}, wantOurs: []string{"basic"}, wantErr: true},
		{name: "server down", reject: func(w http.ResponseWriter) {
			w.WriteHeader(503)
		}, wantX: []string{"basic", "body"}, wantOurs: []string{"basic"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex // guards seen
			var seen []string
			clientID := fmt.Sprintf("client-%d", providerRuns.Add(1))
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("refresh_token") != "rt-0" {
					t.Errorf("bad request %v (%v)", r.PostForm, err)
				}
				id, secret, basic := r.BasicAuth()
				how := "body"
				switch {
				case basic && id == clientID && secret == "s3cret" && !r.PostForm.Has("client_id"):
					how = "basic"
				case !basic && r.PostForm.Get("client_id") == clientID && r.PostForm.Get("client_secret") == "s3cret":
				default:
					t.Errorf("bad client authentication: Basic %v, form %v", basic, r.PostForm)
				}
				mu.Lock()
				seen = append(seen, how)
				mu.Unlock()
				if how == "body" && tc.bodyOK {
					w.Header().Set("Content-Type", "application/json")
					io.WriteString(w, `{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-1"}`)
					return
				}
				tc.reject(w)
			}))
			defer srv.Close()
			take := func() []string {
				mu.Lock()
				defer mu.Unlock()
				s := seen
				seen = nil
				return s
			}
			conf := &oauth2.Config{ClientID: clientID, ClientSecret: "s3cret", Endpoint: oauth2.Endpoint{TokenURL: srv.URL}}
			xtok, xerr := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: "rt-0"}).Token()
			x := take()
			tok, err := compat.FromConfig(conf).Refresh(context.Background(), "rt-0")
			ours := take()
			if (xerr != nil) != tc.wantErr || (err != nil) != tc.wantErr {
				t.Fatalf("errors: x/oauth2 %v, ours %v; want errors: %v", xerr, err, tc.wantErr)
			}
			if !tc.wantErr && (xtok.RefreshToken != "rt-1" || tok.RefreshToken != "rt-1") {
				t.Errorf("refresh tokens: x/oauth2 %q, ours %q; want rt-1", xtok.RefreshToken, tok.RefreshToken)
			}
			if diff := cmp.Diff(tc.wantX, x); diff != "" {
				t.Errorf("x/oauth2's requests (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantOurs, ours); diff != "" {
				t.Errorf("our requests (-want +got):\n%s", diff)
			}
		})
	}
}

package oauth2refresh_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
)

// closeRecorder is a request body that records whether it was closed.
type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error { c.closed.Store(true); return nil }

func TestTransport(t *testing.T) {
	type seen struct{ Auth, Body string }
	tests := []struct {
		name string
		// accept lists the access tokens the resource server takes; others get a 401.
		accept []string
		// makeReq builds the request to send to url.
		makeReq       func(t *testing.T, url string) *http.Request
		wantStatus    int
		wantSeen      []seen
		wantRefreshes int64
		// wantNext, if set, is the Authorization header that a following GET without a
		// body must be sent with: after a 401, a fresh token, even when no retry was made.
		wantNext string
	}{
		{
			name:   "valid token, no body",
			accept: []string{"old"},
			makeReq: func(t *testing.T, url string) *http.Request {
				r, _ := http.NewRequest(http.MethodGet, url, nil)
				return r
			},
			wantStatus: http.StatusOK,
			wantSeen:   []seen{{"Bearer old", ""}},
			wantNext:   "Bearer old",
		},
		{
			name:   "401 then retry with a fresh token, body replayed",
			accept: []string{"at-1"},
			makeReq: func(t *testing.T, url string) *http.Request {
				r, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("payload"))
				return r
			},
			wantStatus:    http.StatusOK,
			wantSeen:      []seen{{"Bearer old", "payload"}, {"Bearer at-1", "payload"}},
			wantRefreshes: 1,
		},
		{
			name:   "401 twice: retried once only",
			accept: nil,
			makeReq: func(t *testing.T, url string) *http.Request {
				r, _ := http.NewRequest(http.MethodGet, url, nil)
				return r
			},
			wantStatus:    http.StatusUnauthorized,
			wantSeen:      []seen{{"Bearer old", ""}, {"Bearer at-1", ""}},
			wantRefreshes: 1,
			// The retry's token was rejected too: the next request gets another.
			wantNext: "Bearer at-2",
		},
		{
			name:   "401 with a body that cannot be replayed: no retry, the next request refreshes",
			accept: []string{"at-1"},
			makeReq: func(t *testing.T, url string) *http.Request {
				r, _ := http.NewRequest(http.MethodPost, url, io.NopCloser(strings.NewReader("once")))
				if r.GetBody != nil {
					t.Fatal("request has GetBody")
				}
				return r
			},
			wantStatus: http.StatusUnauthorized,
			wantSeen:   []seen{{"Bearer old", "once"}},
			wantNext:   "Bearer at-1",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTokenServer(t, "rt-0", 3600)
			var mu sync.Mutex // guards got
			var got []seen
			resource := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, err := io.ReadAll(r.Body)
				if err != nil {
					t.Errorf("resource server: %v", err)
				}
				auth := r.Header.Get("Authorization")
				mu.Lock()
				got = append(got, seen{auth, string(b)})
				mu.Unlock()
				for _, a := range tc.accept {
					if auth == "Bearer "+a {
						w.Write([]byte("ok"))
						return
					}
				}
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				w.WriteHeader(http.StatusUnauthorized)
			}))
			defer resource.Close()

			tok := &oauth2.Token{AccessToken: "old", TokenType: "bearer", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour)}
			client := &http.Client{Transport: &oauth2refresh.Transport{Source: ts.endpoint().TokenSource(context.Background(), tok)}}
			req := tc.makeReq(t, resource.URL)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if h := req.Header.Get("Authorization"); h != "" {
				t.Errorf("the caller's request was modified: Authorization = %q", h)
			}
			mu.Lock()
			if diff := cmp.Diff(tc.wantSeen, got); diff != "" {
				t.Errorf("resource server requests mismatch (-want +got):\n%s", diff)
			}
			first := len(got)
			mu.Unlock()
			if n := ts.requests.Load(); n != tc.wantRefreshes {
				t.Errorf("token server saw %d requests, want %d", n, tc.wantRefreshes)
			}
			if tc.wantNext == "" {
				return
			}
			resp, err = client.Get(resource.URL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			if len(got) <= first || got[first].Auth != tc.wantNext {
				t.Errorf("resource server requests after the first %d: %+v; want the next one sent with %q", first, got[first:], tc.wantNext)
			}
		})
	}
}

func TestTransportTokenError(t *testing.T) {
	var hits atomic.Int64
	resource := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer resource.Close()
	ts := newTokenServer(t, "rt-0", 3600)
	src := ts.endpoint().TokenSource(context.Background(), nil)
	body := &closeRecorder{Reader: strings.NewReader("x")}
	req, _ := http.NewRequest(http.MethodPost, resource.URL, body)
	_, err := (&oauth2refresh.Transport{Source: src}).RoundTrip(req)
	if !errors.Is(err, oauth2refresh.ErrNoRefreshToken) {
		t.Errorf("RoundTrip() error = %v, want oauth2refresh.ErrNoRefreshToken", err)
	}
	if !body.closed.Load() {
		t.Error("request body not closed")
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("resource server saw %d requests, want 0", n)
	}
}

func TestTransportConcurrent401sRefreshOnce(t *testing.T) {
	// Many requests fail with the same old token at once: one refresh serves them all.
	ts := newTokenServer(t, "rt-0", 3600)
	resource := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer at-1" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer resource.Close()
	tok := &oauth2.Token{AccessToken: "old", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour)}
	client := &http.Client{Transport: &oauth2refresh.Transport{Source: ts.endpoint().TokenSource(context.Background(), tok)}}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			resp, err := client.Get(resource.URL)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status = %d, want 200", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if n := ts.requests.Load(); n != 1 {
		t.Errorf("token server saw %d requests, want 1", n)
	}
}

func TestNewClient(t *testing.T) {
	ts := newTokenServer(t, "rt-0", 3600)
	var mu sync.Mutex // guards seen
	var seen []string
	resource := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
	}))
	defer resource.Close()
	var viaCtxClient atomic.Int64
	ctxClient := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		viaCtxClient.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, ctxClient)

	clock := newFakeClock()
	tok := &oauth2.Token{AccessToken: "old", RefreshToken: "rt-0", Expiry: clock.now().Add(time.Hour)}
	src := ts.endpoint().TokenSource(context.Background(), tok, oauth2refresh.WithClock(clock.now))
	client := oauth2refresh.NewClient(ctx, src)
	get := func() {
		t.Helper()
		resp, err := client.Get(resource.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get()
	// In the early window (the last 70 s before expiry), the request goes out with the
	// still-valid token, and a refresh starts in the background: unlike oauth2.NewClient,
	// whose ReuseTokenSource would not ask before the last 10 s.
	clock.advance(time.Hour - 65*time.Second)
	get()
	oauth2refresh.WaitFlight(src)
	get()
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"Bearer old", "Bearer old", "Bearer at-1"}, seen); diff != "" {
		t.Errorf("Authorization headers mismatch (-want +got):\n%s", diff)
	}
	if n := ts.requests.Load(); n != 1 {
		t.Errorf("token server saw %d requests, want 1", n)
	}
	if n := viaCtxClient.Load(); n != 3 {
		t.Errorf("the client from ctx sent %d requests, want 3", n)
	}
}

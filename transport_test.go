package oauth2refresh_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
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

// rejectingAPI is a resource server that answers 401, with a WWW-Authenticate header and a
// body of its own, to every token in reject (to every token when reject is nil), and counts
// the requests.
func rejectingAPI(t *testing.T, reject func(auth string) bool) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if reject == nil || reject(r.Header.Get("Authorization")) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="wrong audience"`)
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, "no entry")
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// check401 checks that resp is the API's 401 as it came.
func check401(t *testing.T, resp *http.Response) {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	got := []string{resp.Status, resp.Header.Get("WWW-Authenticate"), string(b)}
	want := []string{"401 Unauthorized", `Bearer error="invalid_token", error_description="wrong audience"`, "no entry"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("response mismatch (-want +got):\n%s", diff)
	}
}

func TestTransport401StormBounded(t *testing.T) {
	// An API that rejects every token (a wrong audience): whatever the request rate, the
	// token endpoint sees a bounded number of refreshes, a few per minute at most, and each
	// caller gets the API's 401 as it came.
	for _, goroutines := range []int{1, 16} {
		t.Run(fmt.Sprintf("%d goroutines", goroutines), func(t *testing.T) {
			ts := newTokenServer(t, "rt-0", 3600)
			api, _ := rejectingAPI(t, nil)
			clock := newFakeClock()
			tok := &oauth2.Token{AccessToken: "old", RefreshToken: "rt-0", Expiry: clock.now().Add(2 * time.Hour)}
			client := oauth2refresh.NewClient(context.Background(), ts.endpoint().TokenSource(context.Background(), tok, oauth2refresh.WithClock(clock.now)))
			burst := func() {
				var wg sync.WaitGroup
				for range goroutines {
					wg.Go(func() {
						for range 5 {
							resp, err := client.Get(api.URL)
							if err != nil {
								t.Error(err)
								return
							}
							check401(t, resp)
						}
					})
				}
				wg.Wait()
			}
			// Each minute of requests (a burst every 5 s) costs at most 4 refreshes, the
			// first minute included; over 20 minutes, at most 12 in all.
			var perMinute []int64
			last := int64(0)
			for minute := 0; minute < 20; minute++ {
				for range 12 {
					burst()
					clock.advance(5 * time.Second)
				}
				n := ts.requests.Load()
				perMinute = append(perMinute, n-last)
				last = n
			}
			for i, n := range perMinute {
				if n > 4 {
					t.Errorf("minute %d: %d refreshes, want at most 4 (all: %v)", i, n, perMinute)
				}
			}
			if last > 12 {
				t.Errorf("%d refreshes in 20 minutes of 401s, want at most 12 (per minute: %v)", last, perMinute)
			}
			if ts.isRevoked() {
				t.Error("the grant was revoked")
			}
			t.Logf("refreshes per minute: %v", perMinute)
		})
	}
}

func TestTransportOneOffRevocationRecovered(t *testing.T) {
	// A token revoked once (a password change) is replaced by the request that got the 401,
	// at once, however long ago the last revocation was; the other requests go through.
	ts := newTokenServer(t, "rt-0", 3600)
	var mu sync.Mutex // guards revoked
	revoked := map[string]bool{"Bearer old": true}
	api, hits := rejectingAPI(t, func(auth string) bool {
		mu.Lock()
		defer mu.Unlock()
		return revoked[auth]
	})
	clock := newFakeClock()
	tok := &oauth2.Token{AccessToken: "old", RefreshToken: "rt-0", Expiry: clock.now().Add(24 * time.Hour)}
	client := oauth2refresh.NewClient(context.Background(), ts.endpoint().TokenSource(context.Background(), tok, oauth2refresh.WithClock(clock.now)))
	get := func() int {
		resp, err := client.Get(api.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i, gap := range []time.Duration{0, 20 * time.Minute, 11 * time.Minute} {
		clock.advance(gap)
		if got := get(); got != http.StatusOK {
			t.Fatalf("revocation %d: status %d, want 200 after one refresh and retry", i, got)
		}
		if n := ts.requests.Load(); n != int64(i+1) {
			t.Fatalf("revocation %d: %d refreshes, want %d", i, n, i+1)
		}
		for range 5 {
			if got := get(); got != http.StatusOK {
				t.Fatalf("status %d, want 200", got)
			}
		}
		mu.Lock()
		revoked[fmt.Sprintf("Bearer at-%d", i+1)] = true
		mu.Unlock()
	}
	if n := hits.Load(); n != 3*7 {
		t.Errorf("API saw %d requests, want %d", n, 3*7)
	}
}

func TestTransportRedirectKeepsTokenOnSite(t *testing.T) {
	// An API redirects to another host (localhost vs 127.0.0.1; ports do not count for
	// net/http): the bearer token must go only where net/http forwards an Authorization
	// header, and once left out it stays out. x/oauth2's Transport sets it on every hop.
	var mu sync.Mutex // guards seen
	var seen []string
	record := func(name string, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, name+" "+r.Header.Get("Authorization"))
		mu.Unlock()
	}
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record("other", w, r)
		if to := r.URL.Query().Get("back"); to != "" {
			http.Redirect(w, r, to, http.StatusFound)
		}
	}))
	defer other.Close()
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	var api *httptest.Server
	api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record("api"+r.URL.Path, w, r)
		switch r.URL.Path {
		case "/same":
			http.Redirect(w, r, "/final", http.StatusFound)
		case "/away":
			http.Redirect(w, r, otherURL+"/", http.StatusFound)
		case "/away-and-back":
			http.Redirect(w, r, otherURL+"/?back="+api.URL+"/final", http.StatusFound)
		}
	}))
	defer api.Close()

	tok := &oauth2.Token{AccessToken: "secret-at", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour)}
	clients := map[string]*http.Client{
		"oauth2refresh": {Transport: &oauth2refresh.Transport{Source: (&oauth2refresh.Endpoint{}).TokenSource(context.Background(), tok)}},
		"x-oauth2":      {Transport: &oauth2.Transport{Source: oauth2.StaticTokenSource(tok)}},
	}
	tests := []struct {
		path string
		want map[string][]string
	}{
		{"/same", map[string][]string{
			"oauth2refresh": {"api/same Bearer secret-at", "api/final Bearer secret-at"},
			"x-oauth2":      {"api/same Bearer secret-at", "api/final Bearer secret-at"},
		}},
		{"/away", map[string][]string{
			"oauth2refresh": {"api/away Bearer secret-at", "other "},
			"x-oauth2":      {"api/away Bearer secret-at", "other Bearer secret-at"}, // the leak
		}},
		{"/away-and-back", map[string][]string{
			"oauth2refresh": {"api/away-and-back Bearer secret-at", "other ", "api/final "},
			"x-oauth2":      {"api/away-and-back Bearer secret-at", "other Bearer secret-at", "api/final Bearer secret-at"},
		}},
	}
	for _, tc := range tests {
		for name, client := range clients {
			t.Run(strings.TrimPrefix(tc.path, "/")+"/"+name, func(t *testing.T) {
				mu.Lock()
				seen = nil
				mu.Unlock()
				resp, err := client.Get(api.URL + tc.path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				mu.Lock()
				defer mu.Unlock()
				if diff := cmp.Diff(tc.want[name], seen); diff != "" {
					t.Errorf("Authorization per hop (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestTransportRevokedOnRefreshNotBounded(t *testing.T) {
	// A server that revokes tokens as it issues new ones (as fosite revokes the old access
	// token on refresh) rejects tokens that came from ordinary refreshes: each such rejection
	// is acted upon at once, however often, and every request succeeds. Here the API rejects
	// every odd token (the ones ordinary refreshes get) and accepts the even ones (the ones
	// the refreshes forced by those rejections get).
	ts := newTokenServer(t, "rt-0", 60)
	api, _ := rejectingAPI(t, func(auth string) bool {
		n, _ := strconv.Atoi(strings.TrimPrefix(auth, "Bearer at-"))
		return n%2 == 1
	})
	clock := newFakeClock()
	client := oauth2refresh.NewClient(context.Background(), ts.endpoint().TokenSource(context.Background(), &oauth2.Token{RefreshToken: "rt-0"}, oauth2refresh.WithClock(clock.now)))
	for cycle := 1; cycle <= 6; cycle++ {
		resp, err := client.Get(api.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("cycle %d: status %d, want 200 after a refresh and retry", cycle, resp.StatusCode)
		}
		if n := ts.requests.Load(); n != int64(2*cycle) {
			t.Fatalf("cycle %d: %d refreshes, want %d", cycle, n, 2*cycle)
		}
		clock.advance(70 * time.Second) // the token expired: the next refresh is an ordinary one
	}
}

// TestNewClientNilSourceLikeXOAuth2: without a source, NewClient returns what
// oauth2.NewClient returns: the client stored in the context, else http.DefaultClient.
func TestNewClientNilSourceLikeXOAuth2(t *testing.T) {
	hc := &http.Client{Timeout: time.Minute}
	withClient := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
	for name, ctx := range map[string]context.Context{
		"with oauth2.HTTPClient": withClient,
		"without":                context.Background(),
	} {
		t.Run(name, func(t *testing.T) {
			want := oauth2.NewClient(ctx, nil)
			if got := oauth2refresh.NewClient(ctx, nil); got != want {
				t.Errorf("NewClient(ctx, nil) = %p, want %p, as oauth2.NewClient returns", got, want)
			}
		})
	}
}

// closeRecordingBase sends requests with http.DefaultTransport and records, for each
// response, whether its body was closed.
func closeRecordingBase(closed *[]*closeRecorder, mu *sync.Mutex) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		c := &closeRecorder{Reader: resp.Body}
		resp.Body = c
		mu.Lock()
		*closed = append(*closed, c)
		mu.Unlock()
		return resp, nil
	})
}

// TestTransportDeadGrantIsError: after a 401, when the token cannot be replaced because the
// grant is dead (refused, or its refresh token expired), RoundTrip returns that error, and
// closes the 401's body; a temporary failure (5xx, the backoff after it, no answer) returns
// the 401 as it came.
func TestTransportDeadGrantIsError(t *testing.T) {
	clock := newFakeClock()
	past := clock.now().Add(-time.Minute).UTC().Format(time.RFC3339)
	tests := []struct {
		name string
		// rt is the refresh token of the token handed in; extra its Extra members.
		rt    string
		extra map[string]any
		// fail makes the token server answer 503; down points the Endpoint at a closed port.
		fail, down bool
		// early hands in a token in its early-refresh window: the background refresh it
		// starts fails first, and the 401 comes during the backoff after it.
		early       bool
		wantIs      []error // the error matches these; nil: the 401 as it came
		wantRefresh int64
	}{
		{name: "refused: invalid_grant", rt: "rt-spent",
			wantIs: []error{oauth2refresh.ErrInvalidGrant}, wantRefresh: 1},
		{name: "refresh token expired", rt: "rt-0", extra: map[string]any{"refresh_expiry": past},
			wantIs: []error{oauth2refresh.ErrRefreshTokenExpired, oauth2refresh.ErrInvalidGrant}, wantRefresh: 0},
		{name: "refused, in the backoff after it", rt: "rt-spent", early: true,
			wantIs: []error{oauth2refresh.ErrInvalidGrant}, wantRefresh: 1},
		{name: "temporary: 503", rt: "rt-0", fail: true, wantRefresh: 1},
		{name: "temporary: in the backoff after a 503", rt: "rt-0", fail: true, early: true, wantRefresh: 1},
		{name: "no answer from the token endpoint", rt: "rt-0", down: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTokenServer(t, "rt-0", 3600)
			if tc.fail {
				ts.fail = func(int64) bool { return true }
			}
			e := ts.endpoint()
			if tc.down {
				dead := httptest.NewServer(http.NotFoundHandler())
				e.TokenURL = dead.URL + "/token"
				dead.Close()
			}
			api, hits := rejectingAPI(t, nil)
			var mu sync.Mutex // guards bodies
			var bodies []*closeRecorder
			life := time.Hour
			if tc.early {
				life = 30 * time.Second
			}
			tok := (&oauth2.Token{AccessToken: "old", RefreshToken: tc.rt, Expiry: clock.now().Add(life)}).WithExtra(tc.extra)
			src := e.TokenSource(context.Background(), tok, oauth2refresh.WithClock(clock.now))
			if tc.early {
				if _, err := src.Token(); err != nil {
					t.Fatal(err)
				}
				oauth2refresh.WaitFlight(src)
			}
			client := &http.Client{Transport: &oauth2refresh.Transport{Source: src, Base: closeRecordingBase(&bodies, &mu)}}
			resp, err := client.Get(api.URL)
			if tc.wantIs == nil {
				if err != nil {
					t.Fatalf("%v, want the 401 as it came", err)
				}
				check401(t, resp)
			} else {
				if resp != nil {
					resp.Body.Close()
					t.Errorf("a response (%s) with the error", resp.Status)
				}
				for _, want := range tc.wantIs {
					if !errors.Is(err, want) {
						t.Errorf("error %v, want one matching %v", err, want)
					}
				}
				if err != nil && strings.Contains(err.Error(), tc.rt) {
					t.Errorf("error %q holds the refresh token", err)
				}
			}
			mu.Lock()
			for i, b := range bodies {
				if !b.closed.Load() {
					t.Errorf("response %d: body not closed", i)
				}
			}
			mu.Unlock()
			if n := ts.requests.Load(); n != tc.wantRefresh {
				t.Errorf("token server saw %d requests, want %d", n, tc.wantRefresh)
			}
			if n := hits.Load(); n != 1 {
				t.Errorf("API saw %d requests, want 1", n)
			}
		})
	}
}

// TestGrantClientDeadGrantIsError: through a Manager's Grant.Client, a 401 whose token cannot
// be replaced because the grant is dead (refused here, or revoked by another process) returns
// the *DeadGrantError; OnDead is called once.
func TestGrantClientDeadGrantIsError(t *testing.T) {
	tests := []struct {
		name   string
		rt     string
		revoke bool // another process marks the grant revoked after its token was loaded
		wantIs error
		reason string
	}{
		{name: "refused", rt: "a/rt-spent", wantIs: oauth2refresh.ErrInvalidGrant, reason: oauth2refresh.ReasonInvalidGrant},
		{name: "revoked", rt: "a/rt-0", revoke: true, wantIs: oauth2refresh.ErrGrantRevoked, reason: oauth2refresh.ReasonRevoked},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newTokenServers(t, []string{"a"}, 3600)
			api, hits := rejectingAPI(t, nil)
			ms := newMemStore()
			var dead atomic.Int64
			m := oauth2refresh.NewManager(srv.endpoint(), ms, &oauth2refresh.ManagerOptions{
				OnDead: func(key string, err *oauth2refresh.DeadGrantError) { dead.Add(1) }})
			g := m.Grant("a")
			ctx := context.Background()
			if err := g.SaveToken(ctx, &oauth2.Token{AccessToken: "a/old", RefreshToken: tc.rt, Expiry: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if _, err := g.Token(); err != nil {
				t.Fatal(err)
			}
			if tc.revoke {
				l, err := ms.Lock(ctx, "a", time.Minute)
				if err != nil {
					t.Fatal(err)
				}
				if err := l.Save(ctx, oauth2refresh.DeadToken(oauth2refresh.ReasonRevoked, time.Now())); err != nil {
					t.Fatal(err)
				}
				l.Release(ctx)
			}
			for i := range 2 { // the second call gets the error at once
				resp, err := g.Client(ctx).Get(api.URL)
				if resp != nil {
					resp.Body.Close()
					t.Errorf("call %d: a response (%s) with the error", i, resp.Status)
				}
				var d *oauth2refresh.DeadGrantError
				if !errors.Is(err, tc.wantIs) || !errors.As(err, &d) || oauth2refresh.DeadReason(d) != tc.reason {
					t.Errorf("call %d: error %v, want a *DeadGrantError (%s) matching %v", i, err, tc.reason, tc.wantIs)
				}
			}
			if n := hits.Load(); n != 1 {
				t.Errorf("API saw %d requests, want 1", n)
			}
			if n := dead.Load(); n != 1 {
				t.Errorf("OnDead called %d times, want 1", n)
			}
		})
	}
}

// hinted decorates an oauth2.TokenSource as rclone does: Token adds a hint to errors. It does
// not forward Invalidate.
type hinted struct{ oauth2.TokenSource }

func (h hinted) Token() (*oauth2.Token, error) {
	t, err := h.TokenSource.Token()
	if err != nil {
		return nil, fmt.Errorf("couldn't fetch token, maybe reconnect: %w", err)
	}
	return t, nil
}

// hintedInvalidating is hinted forwarding Invalidate to the source it decorates.
type hintedInvalidating struct {
	hinted
	inv interface{ Invalidate(*oauth2.Token) }
}

func (h hintedInvalidating) Invalidate(t *oauth2.Token) { h.inv.Invalidate(t) }

// embedded embeds the *TokenSource itself: its methods are promoted.
type embedded struct{ *oauth2refresh.TokenSource }

// ctxKey marks the request's context, to see that the Transport hands it to TokenContext.
type ctxKey struct{}

// ctxSource is a TokenContext-only view of a *TokenSource that records the ctx value it is
// called with.
type ctxSource struct {
	*oauth2refresh.TokenSource
	seen *atomic.Value
}

func (c ctxSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	c.seen.Store(ctx.Value(ctxKey{}))
	return c.TokenSource.TokenContext(ctx)
}

// TestTransportAnySource: NewClient and Transport take any oauth2.TokenSource. One with
// Invalidate gets the 401 retry (a Grant, a decorated source that forwards it, a type
// embedding the *TokenSource); one without sends its token and returns the 401 as it came.
// TokenContext gets the request's context.
func TestTransportAnySource(t *testing.T) {
	tests := []struct {
		name string
		// source builds the source from ts, a TokenSource holding the rejected token "old".
		source       func(ts *oauth2refresh.TokenSource) oauth2.TokenSource
		wantStatus   int
		wantRefresh  int64
		wantCtxValue bool
	}{
		{name: "*TokenSource", source: func(ts *oauth2refresh.TokenSource) oauth2.TokenSource { return ts },
			wantStatus: http.StatusOK, wantRefresh: 1},
		{name: "decorated, Invalidate not forwarded: no retry",
			source:     func(ts *oauth2refresh.TokenSource) oauth2.TokenSource { return hinted{ts} },
			wantStatus: http.StatusUnauthorized},
		{name: "decorated, Invalidate forwarded",
			source:     func(ts *oauth2refresh.TokenSource) oauth2.TokenSource { return hintedInvalidating{hinted{ts}, ts} },
			wantStatus: http.StatusOK, wantRefresh: 1},
		{name: "embedding the *TokenSource",
			source:     func(ts *oauth2refresh.TokenSource) oauth2.TokenSource { return embedded{ts} },
			wantStatus: http.StatusOK, wantRefresh: 1, wantCtxValue: true},
		{name: "oauth2.ReuseTokenSource: no retry",
			source:     func(ts *oauth2refresh.TokenSource) oauth2.TokenSource { return oauth2.ReuseTokenSource(nil, ts) },
			wantStatus: http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTokenServer(t, "rt-0", 3600)
			api, hits := rejectingAPI(t, func(auth string) bool { return auth != "Bearer at-1" })
			tok := &oauth2.Token{AccessToken: "old", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour)}
			src := ts.endpoint().TokenSource(context.Background(), tok)
			var seen atomic.Value
			source := tc.source(src)
			if e, ok := source.(embedded); ok {
				source = ctxSource{e.TokenSource, &seen}
			}
			client := oauth2refresh.NewClient(context.Background(), source)
			req, _ := http.NewRequestWithContext(context.WithValue(t.Context(), ctxKey{}, "the request's"), http.MethodGet, api.URL, nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode == http.StatusUnauthorized {
				check401(t, resp)
			} else {
				resp.Body.Close()
			}
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if n := ts.requests.Load(); n != tc.wantRefresh {
				t.Errorf("token server saw %d requests, want %d", n, tc.wantRefresh)
			}
			if want := 1 + tc.wantRefresh; hits.Load() != want {
				t.Errorf("API saw %d requests, want %d", hits.Load(), want)
			}
			if got := seen.Load(); tc.wantCtxValue && got != "the request's" {
				t.Errorf("TokenContext got ctx value %v, want the request's", got)
			}
		})
	}
	t.Run("Grant", func(t *testing.T) {
		srv := newTokenServers(t, []string{"a"}, 3600)
		api, hits := rejectingAPI(t, func(auth string) bool { return auth != "Bearer a/at-1" })
		m := oauth2refresh.NewManager(srv.endpoint(), newMemStore(), nil)
		g := m.Grant("a")
		if err := g.SaveToken(context.Background(), &oauth2.Token{AccessToken: "a/old", RefreshToken: "a/rt-0", Expiry: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		resp, err := oauth2refresh.NewClient(context.Background(), g).Get(api.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || hits.Load() != 2 || srv.grants["a"].requests.Load() != 1 {
			t.Errorf("status %d after %d API and %d token requests, want 200 after 2 and 1", resp.StatusCode, hits.Load(), srv.grants["a"].requests.Load())
		}
	})
}

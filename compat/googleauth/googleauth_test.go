package googleauth_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/auth"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"
	tasks "google.golang.org/api/tasks/v1"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/compat/googleauth"
)

// tokenServer is a token endpoint on loopback. The n-th successful refresh (from 1) must send
// refresh token rt-(n-1) and gets access token at-n and refresh token rt-n, valid one hour.
// fail, when set, answers instead; gate, when set, is waited on before answering; arrived,
// when set, receives a value as each request arrives. All three are set before use.
type tokenServer struct {
	*httptest.Server
	fail    func() (status int, body string)
	gate    chan struct{}
	arrived chan struct{}

	count atomic.Int64 // requests received
	mu    sync.Mutex   // guards next
	next  int
}

func newTokenServer(t *testing.T) *tokenServer {
	t.Helper()
	s := &tokenServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.count.Add(1)
		if s.arrived != nil {
			s.arrived <- struct{}{}
		}
		if s.gate != nil {
			<-s.gate
		}
		if r.Method != http.MethodPost || r.URL.Path != "/token" {
			t.Errorf("token request %s %s, want POST /token", r.Method, r.URL)
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("token request: %v", err)
		}
		if id, secret, ok := r.BasicAuth(); !ok || id != "client" || secret != "secret" {
			t.Errorf("token request: client credentials %q, %q, %v", id, secret, ok)
		}
		w.Header().Set("Content-Type", "application/json")
		if s.fail != nil {
			status, body := s.fail()
			w.WriteHeader(status)
			w.Write([]byte(body))
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		want := fmt.Sprintf("rt-%d", s.next)
		if got := r.PostForm.Get("refresh_token"); got != want || r.PostForm.Get("grant_type") != "refresh_token" {
			t.Errorf("token request: grant_type %q, refresh token %q, want refresh_token, %q", r.PostForm.Get("grant_type"), got, want)
		}
		s.next++
		fmt.Fprintf(w, `{"access_token":"at-%d","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-%d"}`, s.next, s.next)
	}))
	t.Cleanup(s.Close)
	return s
}

// apiServer is a fake Tasks API that checks each tasklists.list call and records the
// Authorization header it came with.
type apiServer struct {
	*httptest.Server
	mu   sync.Mutex // guards seen
	seen []string
}

func newAPIServer(t *testing.T) *apiServer {
	t.Helper()
	a := &apiServer{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/tasks/v1/users/@me/lists" {
			t.Errorf("API request %s %s, want GET /tasks/v1/users/@me/lists", r.Method, r.URL.Path)
		}
		if q := r.URL.Query(); q.Get("alt") != "json" || q.Get("prettyPrint") != "false" {
			t.Errorf("API request query %q", r.URL.RawQuery)
		}
		a.mu.Lock()
		a.seen = append(a.seen, r.Header.Get("Authorization"))
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"kind":"tasks#taskLists","items":[{"id":"l1","title":"Inbox"}]}`))
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

// clock is a settable clock for the TokenSource.
type clock struct{ ns atomic.Int64 }

func (c *clock) set(t time.Time) { c.ns.Store(t.UnixNano()) }
func (c *clock) now() time.Time  { return time.Unix(0, c.ns.Load()) }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.set(t)
	return c
}

// endpoint is the Endpoint for s, with the credentials s expects.
func endpoint(s *tokenServer) *oauth2refresh.Endpoint {
	return &oauth2refresh.Endpoint{TokenURL: s.URL + "/token", ClientID: "client", ClientSecret: "secret"}
}

// The three ways to hand the source to a generated client.
var ways = []struct {
	name string
	opt  func(*oauth2refresh.TokenSource) option.ClientOption
	// whether the client sees TokenSource.Invalidate at once (no token cache in between)
	seesInvalidate bool
	// whether errors keep oauth2refresh's types and sentinels
	typedErrors bool
}{
	{"option.WithTokenSource", func(ts *oauth2refresh.TokenSource) option.ClientOption { return option.WithTokenSource(ts) }, false, false},
	{"TokenProvider in option.WithAuthCredentials", func(ts *oauth2refresh.TokenSource) option.ClientOption {
		return option.WithAuthCredentials(auth.NewCredentials(&auth.CredentialsOptions{TokenProvider: googleauth.TokenProvider(ts)}))
	}, false, true},
	{"ClientOption", func(ts *oauth2refresh.TokenSource) option.ClientOption { return googleauth.ClientOption(ts) }, true, true},
}

func newService(t *testing.T, api *apiServer, opt option.ClientOption) *tasks.Service {
	t.Helper()
	svc, err := tasks.NewService(t.Context(), opt, option.WithEndpoint(api.URL+"/"))
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func list(ctx context.Context, svc *tasks.Service) error {
	l, err := svc.Tasklists.List().Context(ctx).Do()
	if err == nil && (len(l.Items) != 1 || l.Items[0].Title != "Inbox") {
		err = fmt.Errorf("unexpected task lists %+v", l)
	}
	return err
}

func TestBearerAcrossRefresh(t *testing.T) {
	for _, w := range ways {
		t.Run(w.name, func(t *testing.T) {
			s, api := newTokenServer(t), newAPIServer(t)
			wall := time.Now()
			// at-0 has expired by the wall clock that Google's token cache uses, but not by
			// the source's clock: the cache asks the source, which serves at-0 without I/O.
			clk := newClock(wall.Add(-time.Hour))
			ts := endpoint(s).TokenSource(t.Context(),
				&oauth2.Token{AccessToken: "at-0", TokenType: "Bearer", RefreshToken: "rt-0", Expiry: wall.Add(-time.Minute)},
				oauth2refresh.WithClock(clk.now))
			svc := newService(t, api, w.opt(ts))

			if err := list(t.Context(), svc); err != nil {
				t.Fatal(err)
			}
			clk.set(wall) // at-0 has expired for the source too: the next call refreshes
			for range 2 {
				if err := list(t.Context(), svc); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff([]string{"Bearer at-0", "Bearer at-1", "Bearer at-1"}, api.take()); diff != "" {
				t.Errorf("API saw (-want +got):\n%s", diff)
			}
			if got := s.count.Load(); got != 1 {
				t.Errorf("%d token requests, want 1", got)
			}

			ts.Invalidate(nil) // as after a 401 from the API
			if err := list(t.Context(), svc); err != nil {
				t.Fatal(err)
			}
			want := "Bearer at-1" // still in the cache that cloud.google.com/go/auth keeps
			if w.seesInvalidate {
				want = "Bearer at-2"
			}
			if diff := cmp.Diff([]string{want}, api.take()); diff != "" {
				t.Errorf("API saw after Invalidate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrorsMapped(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		code      string
		temporary bool
	}{
		{"invalid_grant", http.StatusBadRequest, `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`, "invalid_grant", false},
		{"HTML 502", http.StatusBadGateway, `<html>bad gateway</html>`, "", true},
	}
	for _, w := range ways {
		for _, tc := range tests {
			t.Run(w.name+"/"+tc.name, func(t *testing.T) {
				s, api := newTokenServer(t), newAPIServer(t)
				s.fail = func() (int, string) { return tc.status, tc.body }
				ts := endpoint(s).TokenSource(t.Context(), &oauth2.Token{RefreshToken: "rt-0"})
				err := list(t.Context(), newService(t, api, w.opt(ts)))
				if err == nil {
					t.Fatal("no error")
				}
				if got := api.take(); len(got) != 0 {
					t.Errorf("API called with %q", got)
				}
				var ae *auth.Error
				if !errors.As(err, &ae) || ae.Response == nil || ae.Response.StatusCode != tc.status || string(ae.Body) != tc.body {
					t.Errorf("errors.As(%v, *auth.Error): %+v, want status %d and the body", err, ae, tc.status)
				}
				var re *oauth2.RetrieveError
				if !errors.As(err, &re) || re.ErrorCode != tc.code || re.Response.StatusCode != tc.status {
					t.Errorf("errors.As(%v, *oauth2.RetrieveError): %+v, want code %q", err, re, tc.code)
				}
				var ue *oauth2refresh.UnexpectedResponseError
				var rq *oauth2refresh.RequestError
				typed := errors.As(err, &ue) || errors.As(err, &rq)
				if typed != w.typedErrors {
					t.Errorf("error %v: oauth2refresh type in chain = %v, want %v", err, typed, w.typedErrors)
				}
				if w.typedErrors {
					if got := errors.Is(err, oauth2refresh.ErrInvalidGrant); got != (tc.code == "invalid_grant") {
						t.Errorf("errors.Is(%v, ErrInvalidGrant) = %v", err, got)
					}
					if got := oauth2refresh.IsTemporary(err); got != tc.temporary {
						t.Errorf("IsTemporary(%v) = %v, want %v", err, got, tc.temporary)
					}
					// A caller asking the chain for a Temporary method gets the same answer.
					var tm interface{ Temporary() bool }
					if !errors.As(err, &tm) || tm.Temporary() != tc.temporary {
						t.Errorf("errors.As(%v, Temporary()): %T, want one saying %v", err, tm, tc.temporary)
					}
					if strings.Contains(err.Error(), "{") || strings.Contains(err.Error(), "<html>") {
						t.Errorf("error text %q quotes the body", err)
					}
				}
			})
		}
	}
}

func TestTokenProviderHonoursContext(t *testing.T) {
	for _, w := range ways[1:] { // option.WithTokenSource drops the context
		t.Run(w.name, func(t *testing.T) {
			s, api := newTokenServer(t), newAPIServer(t)
			s.arrived, s.gate = make(chan struct{}, 2), make(chan struct{})
			var release sync.Once // cleanups run last first: the gate opens before the server closes
			t.Cleanup(func() { release.Do(func() { close(s.gate) }) })
			ts := endpoint(s).TokenSource(t.Context(), &oauth2.Token{RefreshToken: "rt-0"})
			svc := newService(t, api, w.opt(ts))

			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- list(ctx, svc) }()
			<-s.arrived // the refresh is in flight, stuck at the token endpoint
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("canceled call: %v, want context.Canceled", err)
				}
			case <-time.After(10 * time.Second): // a guard against a hang, not a timing claim
				t.Fatal("canceled call still waiting for the refresh")
			}
			release.Do(func() { close(s.gate) }) // the refresh goes on; its result serves the next call
			if err := list(t.Context(), svc); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"Bearer at-1"}, api.take()); diff != "" {
				t.Errorf("API saw (-want +got):\n%s", diff)
			}
			if got := s.count.Load(); got != 1 {
				t.Errorf("%d token requests, want 1", got)
			}
		})
	}
}

func TestTokenProviderToken(t *testing.T) {
	s := newTokenServer(t)
	ts := endpoint(s).TokenSource(t.Context(), &oauth2.Token{RefreshToken: "rt-0"})
	before := time.Now()
	for name, tp := range map[string]auth.TokenProvider{
		"TokenProvider": googleauth.TokenProvider(ts),
		"Credentials":   googleauth.Credentials(ts),
	} {
		got, err := tp.Token(t.Context())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Expiry.Before(before.Add(time.Hour)) || got.Expiry.After(time.Now().Add(time.Hour)) {
			t.Errorf("%s: Expiry %v, want an hour from now", name, got.Expiry)
		}
		got.Expiry = time.Time{}
		// Value, Type and Expiry only: no refresh token, no response body in Metadata.
		if diff := cmp.Diff(&auth.Token{Value: "at-1", Type: "Bearer"}, got); diff != "" {
			t.Errorf("%s: token (-want +got):\n%s", name, diff)
		}
	}
	if got := s.count.Load(); got != 1 {
		t.Errorf("%d token requests, want 1", got)
	}
}

func TestCredentialsTokenWithoutExpiry(t *testing.T) {
	// A token without expiry is served until Invalidate: Credentials must keep asking.
	s := newTokenServer(t)
	ts := endpoint(s).TokenSource(t.Context(), &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0"})
	creds := googleauth.Credentials(ts)
	var got []string
	for i := range 2 {
		if i == 1 {
			ts.Invalidate(nil)
		}
		tok, err := creds.Token(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, tok.Value)
	}
	if diff := cmp.Diff([]string{"at-0", "at-1"}, got); diff != "" {
		t.Errorf("tokens (-want +got):\n%s", diff)
	}
}

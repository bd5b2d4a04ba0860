package oauth2refresh_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/events"
	"github.com/tokenkit/oauth2refresh/store/filestore"
)

// ccServer is a client_credentials token endpoint: it asserts that every request is exactly
// POST /token with the headers of an AuthBasic request for (testClientID, testSecret) and the
// form want, and answers the n-th request (from 1) with answer(n), or by default with the
// access token "cc-n" valid for an hour (and a refresh token, which the client must drop).
// hold, when set, is called before answering.
type ccServer struct {
	*httptest.Server
	want     url.Values
	answer   func(n int64) (status int, body string)
	hold     func()
	requests atomic.Int64
}

func newCCServer(t *testing.T, want url.Values) *ccServer {
	t.Helper()
	s := &ccServer{want: want}
	wantHeader := epHeader("Content-Type", epFormType, "Accept", "application/json", "User-Agent", epUA,
		"Authorization", epBasic(testClientID, testSecret))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.requests.Add(1)
		if r.Method != http.MethodPost || r.URL.Path != "/token" || r.URL.RawQuery != "" {
			t.Errorf("request %d: %s %s, want POST /token", n, r.Method, r.URL)
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("request %d: %v", n, err)
		}
		h := r.Header.Clone()
		h.Del("Accept-Encoding")
		h.Del("Content-Length")
		if diff := cmp.Diff(wantHeader, h); diff != "" {
			t.Errorf("request %d: header (-want +got):\n%s", n, diff)
		}
		if diff := cmp.Diff(s.want, r.PostForm); diff != "" {
			t.Errorf("request %d: form (-want +got):\n%s", n, diff)
		}
		if s.hold != nil {
			s.hold()
		}
		status, body := http.StatusOK, fmt.Sprintf(`{"access_token":"cc-%d","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-%d"}`, n, n)
		if s.answer != nil {
			status, body = s.answer(n)
		}
		epJSON(w, status, body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *ccServer) endpoint() *oauth2refresh.Endpoint {
	return &oauth2refresh.Endpoint{TokenURL: s.URL + "/token", ClientID: testClientID, ClientSecret: testSecret}
}

// ccForm is the form of a client_credentials request with Endpoint.Scopes "read write".
var ccForm = url.Values{"grant_type": {"client_credentials"}, "scope": {"read write"}}

func ccEndpoint(s *ccServer) *oauth2refresh.Endpoint {
	e := s.endpoint()
	e.Scopes = []string{"read", "write"}
	return e
}

// TestClientCredentialsWire: the grant sends grant_type=client_credentials, the Endpoint's
// scopes space-separated and its Params (several resource values of RFC 8707, Entra's
// ".default" scope), never a reserved key of Params, and keeps the response's members; a
// refresh_token in the response is dropped (RFC 6749 §4.4.3).
func TestClientCredentialsWire(t *testing.T) {
	tests := []struct {
		name   string
		scopes []string
		params url.Values
		want   url.Values
	}{
		{"no scope", nil, nil, url.Values{"grant_type": {"client_credentials"}}},
		{"scopes", []string{"read", "write"}, nil, ccForm},
		{"entra default scope", []string{"api://11111111-2222/.default"}, nil,
			url.Values{"grant_type": {"client_credentials"}, "scope": {"api://11111111-2222/.default"}}},
		{"resource indicators, reserved params ignored", []string{"read"},
			url.Values{"resource": {"https://a.example/", "https://b.example/"}, "grant_type": {"password"},
				"scope": {"admin"}, "client_secret": {"x"}, "refresh_token": {"y"}},
			url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}, "resource": {"https://a.example/", "https://b.example/"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newCCServer(t, tc.want)
			srv.answer = func(n int64) (int, string) {
				return 200, `{"access_token":"cc-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-1","scope":"read","ext":"x"}`
			}
			e := srv.endpoint()
			e.Scopes, e.Params = tc.scopes, tc.params
			clock := newFakeClock()
			tok, err := e.ClientCredentials(context.Background(), oauth2refresh.WithClock(clock.now)).Token()
			if err != nil {
				t.Fatal(err)
			}
			type facts struct {
				Access, Refresh, Type string
				Expiry                time.Time
				Scope, Ext            any
			}
			want := facts{"cc-1", "", "Bearer", clock.now().Add(time.Hour), "read", "x"}
			got := facts{tok.AccessToken, tok.RefreshToken, tok.Type(), tok.Expiry, tok.Extra("scope"), tok.Extra("ext")}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("token (-want +got):\n%s", diff)
			}
			if n := srv.requests.Load(); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

// TestClientCredentialsDPoP: with Endpoint.DPoP, every token request carries a proof that an
// independent verifier accepts, and the DPoP token records the key's thumbprint; the API
// request through NewClient carries a proof with the token's ath.
func TestClientCredentialsDPoP(t *testing.T) {
	v := newDPoPVerifier(t)
	key, err := oauth2refresh.NewDPoPKey(dpopKeys(t)["ES256"])
	if err != nil {
		t.Fatal(err)
	}
	var tokenRequests, apiRequests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			tokenRequests.Add(1)
			r.ParseForm()
			if diff := cmp.Diff(url.Values{"grant_type": {"client_credentials"}}, r.PostForm); diff != "" {
				t.Errorf("form (-want +got):\n%s", diff)
			}
			if got := r.Header.Get("Authorization"); got != epBasic(testClientID, testSecret) {
				t.Errorf("Authorization %q", got)
			}
			jkt, _ := v.check(r, "token", "")
			v.bind("cc-dpop", jkt)
			epJSON(w, 200, `{"access_token":"cc-dpop","token_type":"DPoP","expires_in":3600}`)
		case "/api":
			apiRequests.Add(1)
			jkt, _ := v.check(r, "api", "cc-dpop")
			if r.Header.Get("Authorization") != "DPoP cc-dpop" || jkt != v.boundTo("cc-dpop") {
				w.WriteHeader(http.StatusUnauthorized)
			}
		}
	}))
	defer srv.Close()
	e := &oauth2refresh.Endpoint{TokenURL: srv.URL + "/token", ClientID: testClientID, ClientSecret: testSecret, DPoP: key}
	ts := e.ClientCredentials(context.Background())
	resp, err := oauth2refresh.NewClient(context.Background(), ts).Get(srv.URL + "/api")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("API: %s", resp.Status)
	}
	tok, _ := ts.Token()
	if got := tok.Extra("dpop_jkt"); got != key.Thumbprint() {
		t.Errorf("dpop_jkt %v, want %s", got, key.Thumbprint())
	}
	if a, b := tokenRequests.Load(), apiRequests.Load(); a != 1 || b != 1 {
		t.Errorf("%d token and %d API requests, want 1 and 1", a, b)
	}
}

// TestClientCredentialsOneFlight: 20 concurrent callers share one token request, whether it
// succeeds or fails; after a failure the calls during the backoff send nothing, and after it
// one call tries again.
func TestClientCredentialsOneFlight(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("fail=%v", fail), func(t *testing.T) {
			srv := newCCServer(t, ccForm)
			release := make(chan struct{})
			srv.hold = func() { <-release }
			if fail {
				srv.answer = func(int64) (int, string) { return 503, `{"error":"temporarily_unavailable"}` }
			}
			clock := newFakeClock()
			ts := ccEndpoint(srv).ClientCredentials(context.Background(), oauth2refresh.WithClock(clock.now))
			const callers = 20
			var wg sync.WaitGroup
			toks := make([]*oauth2.Token, callers)
			errs := make([]error, callers)
			for i := range callers {
				wg.Go(func() {
					if i%2 == 0 {
						ctx, cancel := context.WithCancel(context.Background())
						defer cancel()
						toks[i], errs[i] = ts.TokenContext(ctx)
					} else {
						toks[i], errs[i] = ts.Token()
					}
				})
			}
			for srv.requests.Load() == 0 {
				time.Sleep(time.Millisecond)
			}
			close(release)
			wg.Wait()
			for i := range callers {
				var re *oauth2refresh.RequestError
				switch {
				case fail && (!errors.As(errs[i], &re) || re.Code != "temporarily_unavailable"):
					t.Errorf("caller %d: %v, want the 503's *RequestError", i, errs[i])
				case !fail && (errs[i] != nil || toks[i].AccessToken != "cc-1"):
					t.Errorf("caller %d: %v, %v, want cc-1", i, toks[i], errs[i])
				}
			}
			if n := srv.requests.Load(); n != 1 {
				t.Errorf("%d token requests, want 1", n)
			}
			if !fail {
				return
			}
			clock.advance(400 * time.Millisecond) // inside the backoff (at least 500 ms)
			if _, err := ts.Token(); err == nil || srv.requests.Load() != 1 {
				t.Errorf("inside the backoff: %v after %d requests, want the error and 1", err, srv.requests.Load())
			}
			srv.answer = nil
			clock.advance(oauth2refresh.MaxBackoff)
			if tok, err := ts.Token(); err != nil || tok.AccessToken != "cc-2" {
				t.Errorf("after the backoff: %v, %v, want cc-2", tok, err)
			}
		})
	}
}

// TestClientCredentialsEarlyRefresh: in the early-refresh window a call gets the cached token
// at once and one background request replaces it; past the hard deadline callers wait for a
// new one. An invalid_client answer is ErrInvalidClient, never a dead grant, and backs off.
func TestClientCredentialsEarlyRefresh(t *testing.T) {
	srv := newCCServer(t, ccForm)
	clock := newFakeClock()
	ts := ccEndpoint(srv).ClientCredentials(context.Background(), oauth2refresh.WithClock(clock.now),
		oauth2refresh.ExpiryMargin(10*time.Second), oauth2refresh.EarlyRefresh(time.Minute))
	if tok, err := ts.Token(); err != nil || tok.AccessToken != "cc-1" {
		t.Fatalf("first: %v, %v", tok, err)
	}
	clock.advance(time.Hour - 10*time.Second - time.Minute + time.Second)
	if tok, err := ts.Token(); err != nil || tok.AccessToken != "cc-1" {
		t.Fatalf("in the early window: %v, %v, want cc-1 at once", tok, err)
	}
	oauth2refresh.WaitFlight(ts)
	if tok, err := ts.Token(); err != nil || tok.AccessToken != "cc-2" || srv.requests.Load() != 2 {
		t.Fatalf("after the background request: %v, %v (%d requests), want cc-2 after 2", tok, err, srv.requests.Load())
	}

	srv.answer = func(int64) (int, string) { return 401, `{"error":"invalid_client"}` }
	clock.advance(2 * time.Hour)
	_, err := ts.Token()
	if !errors.Is(err, oauth2refresh.ErrInvalidClient) || errors.As(err, new(*oauth2refresh.DeadGrantError)) {
		t.Errorf("invalid_client: %v, want ErrInvalidClient, not a dead grant", err)
	}
	epCheckMessage(t, err)
	clock.advance(400 * time.Millisecond)
	if again, _ := ts.Token(); again != nil || srv.requests.Load() != 3 {
		t.Errorf("within the backoff: %v after %d requests, want the error and 3", again, srv.requests.Load())
	}
	srv.answer = nil
	clock.advance(oauth2refresh.MaxBackoff)
	if tok, err := ts.Token(); err != nil || tok.AccessToken != "cc-4" {
		t.Errorf("after the backoff: %v, %v, want cc-4", tok, err)
	}
}

// TestClientCredentials401Retry: an API that rejects the first token with 401 gets, through
// NewClient, one retry with a new token obtained by the grant, and the events say so.
func TestClientCredentials401Retry(t *testing.T) {
	srv := newCCServer(t, ccForm)
	var seen []string // the Authorization headers of the API
	var mu sync.Mutex // guards seen
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer cc-2" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer api.Close()
	var kinds []string
	var emu sync.Mutex // guards kinds
	ts := ccEndpoint(srv).ClientCredentials(context.Background(), oauth2refresh.WithEvents(func(e events.Event) {
		emu.Lock()
		defer emu.Unlock()
		if e.Kind != events.Waited {
			kinds = append(kinds, e.Kind.String()+"/"+e.Trigger.String()+"/"+e.Outcome.String())
		}
	}))
	resp, err := oauth2refresh.NewClient(context.Background(), ts).Get(api.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("API: %s", resp.Status)
	}
	if diff := cmp.Diff([]string{"Bearer cc-1", "Bearer cc-2"}, seen); diff != "" {
		t.Errorf("API requests (-want +got):\n%s", diff)
	}
	emu.Lock()
	defer emu.Unlock()
	first := (events.Event{Kind: events.RefreshStarted, Trigger: events.TriggerFirst})
	want := []string{
		first.Kind.String() + "/" + first.Trigger.String() + "/" + events.Outcome(0).String(),
		events.RefreshFinished.String() + "/" + events.TriggerFirst.String() + "/" + events.OutcomeOK.String(),
		events.TokenDropped.String() + "/" + events.TriggerRejected.String() + "/" + events.Outcome(0).String(),
		events.RefreshStarted.String() + "/" + events.TriggerRejected.String() + "/" + events.Outcome(0).String(),
		events.RefreshFinished.String() + "/" + events.TriggerRejected.String() + "/" + events.OutcomeOK.String(),
		events.UnauthorizedRetry.String() + "/" + events.Trigger(0).String() + "/" + events.Outcome(0).String(),
	}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// failingStore is a Store whose Load, Lock or Save fails while its flags say so, and which
// counts the saves that got through; a Store outage.
type failingStore struct {
	oauth2refresh.Store
	load, lock, save atomic.Bool
	saved            atomic.Int64
}

func (s *failingStore) Load(ctx context.Context, key string) (*oauth2.Token, error) {
	if s.load.Load() {
		return nil, errors.New("store down")
	}
	return s.Store.Load(ctx, key)
}

func (s *failingStore) Lock(ctx context.Context, key string, ttl time.Duration) (oauth2refresh.Lease, error) {
	if s.lock.Load() {
		return nil, errors.New("store down")
	}
	l, err := s.Store.Lock(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	return &failingLease{l, s}, nil
}

type failingLease struct {
	oauth2refresh.Lease
	s *failingStore
}

func (l *failingLease) Save(ctx context.Context, t *oauth2.Token) error {
	if l.s.save.Load() {
		return errors.New("store down: " + t.AccessToken)
	}
	l.s.saved.Add(1)
	return l.Lease.Save(ctx, t)
}

// TestClientCredentialsFleet: processes (here TokenSources, each with its own filestore.Store
// handle on one directory) that share a key send one token request per token lifetime
// between them, not one each, also when they all need a new token at once; a store that
// fails to load, lock or save makes a process fetch its own token, which it serves, and
// reports the failure, without the access token, as an events.PersistFailed.
func TestClientCredentialsFleet(t *testing.T) {
	srv := newCCServer(t, ccForm)
	dir := t.TempDir()
	clock := newFakeClock()
	const procs = 10
	var persistFailed atomic.Int64
	var failMsgs sync.Map
	stores := make([]*failingStore, procs)
	srcs := make([]*oauth2refresh.TokenSource, procs)
	for i := range procs {
		stores[i] = &failingStore{Store: &filestore.Store{Dir: dir}}
		srcs[i] = ccEndpoint(srv).ClientCredentials(context.Background(), oauth2refresh.WithClock(clock.now),
			oauth2refresh.WithStore(stores[i], "fleet-key"), oauth2refresh.EarlyRefresh(0),
			oauth2refresh.WithEvents(func(e events.Event) {
				if e.Kind == events.PersistFailed {
					persistFailed.Add(1)
					failMsgs.Store(e.Err.Error(), true)
				}
			}))
	}
	all := func(round string, want string) {
		t.Helper()
		var wg sync.WaitGroup
		for i, ts := range srcs {
			wg.Go(func() {
				if tok, err := ts.Token(); err != nil || tok.AccessToken != want {
					t.Errorf("%s: process %d: %v, %v, want %s", round, i, tok, err, want)
				}
			})
		}
		wg.Wait()
	}
	all("first", "cc-1")
	if n := srv.requests.Load(); n != 1 {
		t.Errorf("first: %d token requests for %d processes, want 1", n, procs)
	}
	clock.advance(time.Hour)
	all("second lifetime", "cc-2")
	if n := srv.requests.Load(); n != 2 {
		t.Errorf("second lifetime: %d token requests, want 2", n)
	}
	if n := persistFailed.Load(); n != 0 {
		t.Errorf("%d PersistFailed events with a working store", n)
	}

	for _, f := range []struct {
		name string
		flag func(*failingStore) *atomic.Bool
	}{
		{"load", func(s *failingStore) *atomic.Bool { return &s.load }},
		{"lock", func(s *failingStore) *atomic.Bool { return &s.lock }},
		{"save", func(s *failingStore) *atomic.Bool { return &s.save }},
	} {
		t.Run("store fails to "+f.name, func(t *testing.T) {
			f.flag(stores[0]).Store(true)
			defer f.flag(stores[0]).Store(false)
			before, failed := srv.requests.Load(), persistFailed.Load()
			clock.advance(time.Hour)
			tok, err := srcs[0].Token()
			if err != nil || tok.AccessToken != fmt.Sprintf("cc-%d", before+1) {
				t.Errorf("Token: %v, %v, want a token fetched past the store", tok, err)
			}
			if n := persistFailed.Load() - failed; n != 1 {
				t.Errorf("%d PersistFailed events, want 1", n)
			}
		})
	}
	failMsgs.Range(func(k, _ any) bool {
		if msg := k.(string); strings.Contains(msg, "cc-") || !strings.HasPrefix(msg, "oauth2refresh: token store: ") {
			t.Errorf("PersistFailed error %q holds a token or is not the store's", msg)
		}
		return true
	})
}

// TestTokenExchange: RFC 8693 §2.1 on the wire: the subject token (a file read again for
// every request, or another TokenSource), its type, every audience and resource, the
// requested token type and the scope; the issued_token_type is kept, the refresh token
// dropped.
func TestTokenExchange(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const jwtType = "urn:ietf:params:oauth:token-type:jwt"
	const gt = "urn:ietf:params:oauth:grant-type:token-exchange"
	srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		epJSON(w, 200, fmt.Sprintf(`{"access_token":"x-%d","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":600,"refresh_token":"rt"}`, n))
	})
	e := &oauth2refresh.Endpoint{TokenURL: srv.URL + "/token", ClientID: testClientID, AuthMethod: oauth2refresh.AuthNone,
		Scopes: []string{"s1"}, Params: url.Values{"audience": {"overridden"}, "extra": {"e"}}}
	clock := newFakeClock()
	ts := e.TokenExchange(context.Background(), &oauth2refresh.TokenExchange{SubjectTokenFile: file, SubjectTokenType: jwtType,
		Audience: []string{"aud1", "aud2"}, Resource: []string{"https://r.example/"},
		RequestedTokenType: "urn:ietf:params:oauth:token-type:access_token"}, oauth2refresh.WithClock(clock.now))
	write("k8s-1")
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "x-1" || tok.RefreshToken != "" || tok.Extra("issued_token_type") != "urn:ietf:params:oauth:token-type:access_token" {
		t.Errorf("token %q refresh %q issued_token_type %v", tok.AccessToken, tok.RefreshToken, tok.Extra("issued_token_type"))
	}
	write("k8s-2")
	clock.advance(time.Hour)
	if tok, err := ts.Token(); err != nil || tok.AccessToken != "x-2" {
		t.Fatalf("second: %v, %v", tok, err)
	}
	upstream := (&oauth2refresh.Endpoint{}).TokenSource(context.Background(), &oauth2.Token{AccessToken: "upstream-at"})
	if _, err := e.TokenExchange(context.Background(), &oauth2refresh.TokenExchange{SubjectTokenSource: upstream}).Token(); err != nil {
		t.Fatal(err)
	}
	want := func(subject, typ string, more url.Values) url.Values {
		v := url.Values{"grant_type": {gt}, "client_id": {testClientID}, "scope": {"s1"}, "extra": {"e"},
			"subject_token": {subject}, "subject_token_type": {typ}}
		for k, vs := range more {
			v[k] = vs
		}
		return v
	}
	full := url.Values{"audience": {"aud1", "aud2"}, "resource": {"https://r.example/"},
		"requested_token_type": {"urn:ietf:params:oauth:token-type:access_token"}}
	wantForms := []url.Values{want("k8s-1", jwtType, full), want("k8s-2", jwtType, full),
		want("upstream-at", "urn:ietf:params:oauth:token-type:access_token", url.Values{"audience": {"overridden"}})}
	var gotForms []url.Values
	for _, r := range srv.requests() {
		gotForms = append(gotForms, r.Form)
		if r.Method != "POST" || r.Path != "/token" || r.Header.Get("Authorization") != "" || r.Header.Get("Content-Type") != epFormType {
			t.Errorf("request %s %s, Authorization %q, Content-Type %q", r.Method, r.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"))
		}
	}
	if diff := cmp.Diff(wantForms, gotForms); diff != "" {
		t.Errorf("forms (-want +got):\n%s", diff)
	}
}

// TestTokenExchangeErrors: a TokenExchange that cannot work, or whose subject token cannot be
// read, sends nothing and says why, typed; the server's refusal is a *RequestError; the
// subject token is in no error, even when the server echoes it.
func TestTokenExchangeErrors(t *testing.T) {
	const subject = "SUBJECT-secret-token"
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte(subject), 0o600); err != nil {
		t.Fatal(err)
	}
	failing := oauth2.TokenSource(errSource{})
	tests := []struct {
		name    string
		x       *oauth2refresh.TokenExchange
		wantIs  error
		wantReq bool // a request is sent, refused with invalid_target
	}{
		{"no subject", &oauth2refresh.TokenExchange{SubjectTokenType: "t"}, oauth2refresh.ErrInvalidEndpoint, false},
		{"nil", nil, oauth2refresh.ErrInvalidEndpoint, false},
		{"two subjects", &oauth2refresh.TokenExchange{SubjectTokenFile: file, SubjectTokenSource: failing, SubjectTokenType: "t"}, oauth2refresh.ErrInvalidEndpoint, false},
		{"file without type", &oauth2refresh.TokenExchange{SubjectTokenFile: file}, oauth2refresh.ErrInvalidEndpoint, false},
		{"missing file", &oauth2refresh.TokenExchange{SubjectTokenFile: filepath.Join(dir, "missing"), SubjectTokenType: "t"}, fs.ErrNotExist, false},
		{"failing source", &oauth2refresh.TokenExchange{SubjectTokenSource: failing}, errUpstream, false},
		{"refused", &oauth2refresh.TokenExchange{SubjectTokenFile: file, SubjectTokenType: "t"}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				epJSON(w, 400, `{"error":"invalid_target","error_description":"no audience for `+r.PostForm.Get("subject_token")+`"}`)
			})
			e := &oauth2refresh.Endpoint{TokenURL: srv.URL + "/token", ClientID: testClientID, ClientSecret: testSecret}
			_, err := e.TokenExchange(context.Background(), tc.x).Token()
			if err == nil {
				t.Fatal("no error")
			}
			var re *oauth2refresh.RequestError
			switch {
			case tc.wantReq && (!errors.As(err, &re) || re.Code != "invalid_target"):
				t.Errorf("error %v, want invalid_target", err)
			case !tc.wantReq && !errors.Is(err, tc.wantIs):
				t.Errorf("error %v, want one matching %v", err, tc.wantIs)
			}
			if n := len(srv.requests()); n != map[bool]int{false: 0, true: 1}[tc.wantReq] {
				t.Errorf("%d requests sent", n)
			}
			epCheckMessage(t, err)
			if strings.Contains(err.Error(), subject) || strings.Contains(err.Error(), testSecret) {
				t.Errorf("error %q shows the subject token or the secret", err)
			}
		})
	}
}

var errUpstream = errors.New("upstream down")

// errSource is an oauth2.TokenSource that fails.
type errSource struct{}

func (errSource) Token() (*oauth2.Token, error) { return nil, errUpstream }

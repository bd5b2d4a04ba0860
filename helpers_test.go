package oauth2refresh_test

// The shared test counterparts of the core package: one rotating token server, one fake clock,
// one in-memory transport. Every test file of the package uses these rather than its own.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh"
)

// Credentials of the client that tokenServer expects.
const (
	testClientID = "app"
	testSecret   = "s3cret"
)

// tokenServer is a token endpoint that rotates refresh tokens like a strict provider: every
// successful refresh issues access token "at-N" and refresh token "rt-N" (and id token
// "id-N"), only the newest refresh token is accepted, and a rotated-out one that comes back
// revokes the grant (every later request gets invalid_grant). It asserts every request it
// receives: POST /token, form-encoded, HTTP Basic with testClientID and testSecret, grant_type
// refresh_token, and no form fields beyond grant_type and refresh_token unless extraFields
// allows them.
type tokenServer struct {
	t   *testing.T
	srv *httptest.Server

	requests atomic.Int64 // token requests received
	reused   atomic.Int64 // requests that sent a rotated-out refresh token

	// expiresIn is the expires_in of the tokens issued from now on; 0 leaves it out.
	expiresIn atomic.Int64

	// The knobs below are set before the first request and read-only afterwards.

	// hold, when set, is called at the start of each request, before the answer is decided:
	// a test blocks the server there.
	hold func()
	// fail, when set, decides whether request n (1-based) is answered with 503
	// temporarily_unavailable, without looking at the refresh token.
	fail func(n int64) bool
	// extraFields lists form fields a test expects beyond grant_type and refresh_token.
	extraFields []string
	// answer, when set, writes each successful answer in place of the JSON encoding of tok
	// (status 200 and Content-Type are left to it): tests of odd token responses use it
	// to send members of other types, numbers as written, or a form-encoded body.
	answer func(w http.ResponseWriter, tok map[string]any)
	// gate, when set, is called with each request once its form is parsed, before the refresh
	// token is judged; when it returns false it has answered, and the grant is untouched (a
	// DPoP nonce challenge).
	gate func(w http.ResponseWriter, r *http.Request) bool
	// prefix starts every token issued ("at-N" is prefix+"at-N"): each grant of a
	// tokenServers has its key followed by "/".
	prefix string
	// onIssue, when set, is called under the server's lock with the request and each answer
	// before it is sent: it may change the answer (token_type) or note what was issued.
	onIssue func(r *http.Request, tok map[string]any)

	mu      sync.Mutex      // guards the fields below
	issued  int             // tokens issued
	current string          // the only refresh token accepted
	spent   map[string]bool // refresh tokens rotated out
	revoked bool            // a spent refresh token came back: the grant is dead
}

// newTokenServer starts a tokenServer whose grant's refresh token is firstRT and whose tokens
// last expiresIn seconds.
func newTokenServer(t *testing.T, firstRT string, expiresIn int) *tokenServer {
	t.Helper()
	ts := &tokenServer{t: t, current: firstRT, spent: map[string]bool{}}
	ts.expiresIn.Store(int64(expiresIn))
	ts.srv = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.srv.Close)
	return ts
}

// endpoint returns an Endpoint for the server, with the credentials it expects.
func (ts *tokenServer) endpoint() *oauth2refresh.Endpoint {
	return &oauth2refresh.Endpoint{TokenURL: ts.srv.URL + "/token", ClientID: testClientID, ClientSecret: testSecret}
}

// isRevoked reports whether a rotated-out refresh token came back.
func (ts *tokenServer) isRevoked() bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.revoked
}

// currentRT returns the refresh token the server accepts now.
func (ts *tokenServer) currentRT() string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.current
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	n := ts.requests.Add(1)
	if ts.hold != nil {
		ts.hold()
	}
	if r.Method != http.MethodPost || r.URL.Path != "/token" {
		ts.t.Errorf("token server: got %s %s, want POST /token", r.Method, r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		ts.t.Errorf("token server: Content-Type %q", ct)
	}
	if id, secret, ok := r.BasicAuth(); !ok || id != testClientID || secret != testSecret {
		ts.t.Errorf("token server: bad client authentication")
	}
	if err := r.ParseForm(); err != nil {
		ts.t.Errorf("token server: %v", err)
	}
	if got := r.PostForm.Get("grant_type"); got != "refresh_token" {
		ts.t.Errorf("token server: grant_type = %q, want refresh_token", got)
	}
	for k := range r.PostForm {
		if k != "grant_type" && k != "refresh_token" && !contains(ts.extraFields, k) {
			ts.t.Errorf("token server: unexpected form field %q", k)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if ts.fail != nil && ts.fail(n) {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":"temporarily_unavailable"}`)
		return
	}
	if ts.gate != nil && !ts.gate(w, r) {
		return
	}
	rt := r.PostForm.Get("refresh_token")
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if rt != ts.current || ts.revoked {
		if ts.spent[rt] {
			ts.reused.Add(1)
			ts.revoked = true
		}
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_grant","error_description":"refresh token invalid or reused"}`)
		return
	}
	ts.spent[rt] = true
	ts.issued++
	ts.current = fmt.Sprintf("%srt-%d", ts.prefix, ts.issued)
	body := map[string]any{
		"access_token":  fmt.Sprintf("%sat-%d", ts.prefix, ts.issued),
		"token_type":    "Bearer",
		"refresh_token": ts.current,
		"id_token":      fmt.Sprintf("%sid-%d", ts.prefix, ts.issued),
	}
	if e := ts.expiresIn.Load(); e != 0 {
		body["expires_in"] = e
	}
	if ts.onIssue != nil {
		ts.onIssue(r, body)
	}
	if ts.answer != nil {
		w.Header().Del("Content-Type")
		ts.answer(w, body)
		return
	}
	json.NewEncoder(w).Encode(body)
}

// tokenServers is one token endpoint for many grants, each a tokenServer of its own (same
// checks, same rotation, same reuse detection) whose tokens start with its key and "/": grant
// "k" starts with refresh token "k/rt-0" and issues "k/at-1" and "k/rt-1". A request is sent
// to the grant its refresh token names; one naming no grant gets invalid_grant.
type tokenServers struct {
	srv    *httptest.Server
	grants map[string]*tokenServer // read-only after newTokenServers
}

// newTokenServers starts the token endpoint of the grants keys, whose tokens last expiresIn
// seconds.
func newTokenServers(t *testing.T, keys []string, expiresIn int) *tokenServers {
	t.Helper()
	s := &tokenServers{grants: map[string]*tokenServer{}}
	for _, k := range keys {
		g := &tokenServer{t: t, prefix: k + "/", current: k + "/rt-0", spent: map[string]bool{}}
		g.expiresIn.Store(int64(expiresIn))
		s.grants[k] = g
	}
	nobody := &tokenServer{t: t, spent: map[string]bool{}, revoked: true}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		k, _, _ := strings.Cut(r.PostForm.Get("refresh_token"), "/")
		if g := s.grants[k]; g != nil {
			g.serve(w, r)
			return
		}
		nobody.serve(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// endpoint returns an Endpoint for the server, with the credentials it expects.
func (s *tokenServers) endpoint() *oauth2refresh.Endpoint {
	return &oauth2refresh.Endpoint{TokenURL: s.srv.URL + "/token", ClientID: testClientID, ClientSecret: testSecret}
}

// reused returns how many requests of all grants sent a rotated-out refresh token.
func (s *tokenServers) reused() int64 {
	var n int64
	for _, g := range s.grants {
		n += g.reused.Load()
	}
	return n
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// fakeClock is a clock that moves only when told to, for WithClock.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func (c *fakeClock) set(t time.Time)         { c.ns.Store(t.UnixNano()) }

// roundTripFunc is an http.RoundTripper made of a function: the in-memory transport.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// memTransport is the in-memory token endpoint: no network, the same answer to every request
// (status, then body as application/json unless contentType says otherwise) after an
// optional delay. It reads and closes each request body, and counts the requests.
type memTransport struct {
	status      int
	contentType string
	body        []byte
	delay       time.Duration
	requests    atomic.Int64
}

func (m *memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	m.requests.Add(1)
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	if m.delay > 0 {
		time.Sleep(m.delay)
	}
	ct := m.contentType
	if ct == "" {
		ct = "application/json"
	}
	return memResponse(r, m.status, ct, string(m.body)), nil
}

// memResponse is a response to r, as a server would send it.
func memResponse(r *http.Request, status int, contentType, body string) *http.Response {
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return &http.Response{
		StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
		Request: r,
	}
}

// readForm reads the form body of a request sent through a roundTripFunc.
func readForm(t *testing.T, r *http.Request) url.Values {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatalf("reading request body: %v", err)
	}
	v, err := url.ParseQuery(string(b))
	if err != nil {
		t.Fatalf("request body %q is not a form: %v", b, err)
	}
	return v
}

// recordingServer is a token endpoint for tests of the wire: it records every request it
// receives (method, path, query, headers, form body) and answers with reply, n being the
// 1-based number of the request. A body that is not a form fails the test.
type recordingServer struct {
	*httptest.Server
	mu   sync.Mutex // guards reqs
	reqs []recordedRequest
}

// recordedRequest is what a recordingServer received.
type recordedRequest struct {
	Method string
	Path   string
	Query  string
	Header http.Header // without the headers the transport adds (Accept-Encoding, Content-Length)
	Form   url.Values  // the form body
}

func newRecordingServer(t *testing.T, reply func(w http.ResponseWriter, r *http.Request, n int)) *recordingServer {
	t.Helper()
	s := &recordingServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("recording server: reading body: %v", err)
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			t.Errorf("recording server: body %q is not a form: %v", body, err)
		}
		h := r.Header.Clone()
		h.Del("Accept-Encoding")
		h.Del("Content-Length")
		r.Form, r.PostForm = form, form
		s.mu.Lock()
		s.reqs = append(s.reqs, recordedRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: h, Form: form})
		n := len(s.reqs)
		s.mu.Unlock()
		reply(w, r, n)
	}))
	t.Cleanup(s.Close)
	return s
}

// requests returns the requests received so far.
func (s *recordingServer) requests() []recordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recordedRequest(nil), s.reqs...)
}

// respond answers with status, Content-Type contentType (none when empty) and body.
func respond(w http.ResponseWriter, status int, contentType, body string) {
	if contentType != "" {
		w.Header().Set("Content-Type", contentType)
	}
	w.WriteHeader(status)
	io.WriteString(w, body)
}

package oauth2refresh_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
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

// epRequest is what an epServer received.
type epRequest struct {
	Method string
	Path   string
	Query  string
	Header http.Header // without the headers the transport adds (Accept-Encoding, Content-Length)
	Form   url.Values  // the form body
}

// epServer is a token endpoint that records every request and answers with reply.
type epServer struct {
	*httptest.Server
	mu   sync.Mutex // guards reqs
	reqs []epRequest
}

func newEPServer(t *testing.T, reply func(w http.ResponseWriter, r *http.Request, n int)) *epServer {
	t.Helper()
	s := &epServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("server: reading body: %v", err)
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			t.Errorf("server: body %q is not a form: %v", body, err)
		}
		h := r.Header.Clone()
		h.Del("Accept-Encoding")
		h.Del("Content-Length")
		r.Form, r.PostForm = form, form
		s.mu.Lock()
		s.reqs = append(s.reqs, epRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: h, Form: form})
		n := len(s.reqs)
		s.mu.Unlock()
		reply(w, r, n)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *epServer) requests() []epRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]epRequest(nil), s.reqs...)
}

func epWrite(w http.ResponseWriter, status int, contentType, body string) {
	if contentType != "" {
		w.Header().Set("Content-Type", contentType)
	}
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func epJSON(w http.ResponseWriter, status int, body string) {
	epWrite(w, status, "application/json", body)
}

const (
	epClientID = "client:id+1"
	// epSecret has every character that breaks a naive Basic header or form encoding.
	epSecret   = "s3cr:t+/%20 x&y=z é✓"
	epRefresh  = "RT-old-refresh-token/+=="
	epAccess   = "AT-new-access-token"
	epUA       = oauth2refresh.DefaultUserAgent
	epFormType = "application/x-www-form-urlencoded"
	epOKBody   = `{"access_token":"` + epAccess + `","token_type":"Bearer","expires_in":3600,"refresh_token":"RT-new"}`
)

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
			srv := newEPServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
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
			want := []epRequest{{Method: "POST", Path: "/oauth/token", Header: tc.wantHdr, Form: tc.wantForm}}
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

// epFailTransport fails the test if a request is ever sent through it.
type epFailTransport struct{ t *testing.T }

func (f epFailTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("request sent to %s", r.URL)
	return nil, errors.New("must not be called")
}

// epCannedTransport answers every request with a token, without any network, and records the
// request contexts' deadlines.
type epCannedTransport struct {
	mu        sync.Mutex // guards the fields below
	calls     int
	hosts     []string
	deadlines []time.Time
}

func (c *epCannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.calls++
	c.hosts = append(c.hosts, r.URL.Host)
	d, _ := r.Context().Deadline()
	c.deadlines = append(c.deadlines, d)
	c.mu.Unlock()
	if r.Body != nil {
		r.Body.Close()
	}
	return &http.Response{
		StatusCode: 200, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": {"application/json"}},
		Body:    io.NopCloser(strings.NewReader(epOKBody)),
		Request: r,
	}, nil
}

func TestRefreshTokenURLChecks(t *testing.T) {
	tests := []struct {
		url     string
		allow   bool
		wantErr error // nil: the request goes out
	}{
		{url: "http://auth.example.com/token", wantErr: oauth2refresh.ErrInsecureTokenURL},
		{url: "http://10.0.0.1/token", wantErr: oauth2refresh.ErrInsecureTokenURL},
		{url: "http://localhost.evil.com/token", wantErr: oauth2refresh.ErrInsecureTokenURL},
		{url: "HTTP://auth.example.com/token", wantErr: oauth2refresh.ErrInsecureTokenURL},
		{url: "http://auth.example.com/token", allow: true},
		{url: "https://auth.example.com/token"},
		{url: "http://localhost:8080/token"},
		{url: "http://LocalHost./token"},
		{url: "http://app.localhost/token"},
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
			var rt http.RoundTripper = epFailTransport{t}
			canned := &epCannedTransport{}
			if tc.wantErr == nil {
				rt = canned
			}
			e := &oauth2refresh.Endpoint{TokenURL: tc.url, ClientID: "id", ClientSecret: epSecret,
				AllowInsecureHTTP: tc.allow, HTTPClient: &http.Client{Transport: rt}}
			_, err := e.Refresh(context.Background(), epRefresh)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Refresh: %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && canned.calls != 1 {
				t.Errorf("%d requests, want 1", canned.calls)
			}
			if err != nil {
				epCheckMessage(t, err)
			}
		})
	}
	t.Run("no refresh token", func(t *testing.T) {
		e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example.com/token", HTTPClient: &http.Client{Transport: epFailTransport{t}}}
		if _, err := e.Refresh(context.Background(), ""); !errors.Is(err, oauth2refresh.ErrNoRefreshToken) {
			t.Errorf("Refresh: %v, want ErrNoRefreshToken", err)
		}
	})
	t.Run("unknown auth method", func(t *testing.T) {
		e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example.com/token", AuthMethod: 42, HTTPClient: &http.Client{Transport: epFailTransport{t}}}
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
			rt := &epCannedTransport{}
			e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example.com/token", Timeout: tc.timeout,
				HTTPClient: &http.Client{Transport: rt, Timeout: tc.clientTimeout}}
			before := time.Now()
			if _, err := e.Refresh(tc.ctx, epRefresh); err != nil {
				t.Fatal(err)
			}
			after := time.Now()
			got := rt.deadlines[0]
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
	rt := &epCannedTransport{}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: rt})
	e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example.com/token"}
	if _, err := e.Refresh(ctx, epRefresh); err != nil {
		t.Fatal(err)
	}
	if rt.calls != 1 {
		t.Errorf("%d requests through the context's client, want 1", rt.calls)
	}
	// The Endpoint's own client comes first.
	own := &epCannedTransport{}
	e.HTTPClient = &http.Client{Transport: own}
	if _, err := e.Refresh(ctx, epRefresh); err != nil {
		t.Fatal(err)
	}
	if rt.calls != 1 || own.calls != 1 {
		t.Errorf("requests: context's client %d, Endpoint's client %d; want 1 and 1", rt.calls, own.calls)
	}
}

func TestRefreshNoRedirect(t *testing.T) {
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			other := newEPServer(t, func(w http.ResponseWriter, r *http.Request, n int) { epJSON(w, 200, epOKBody) })
			srv := newEPServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
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
		srv := newEPServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
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
		srv := newEPServer(t, func(w http.ResponseWriter, r *http.Request, n int) { t.Error("request sent") })
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
		rt := epRoundTripFunc(func(r *http.Request) (*http.Response, error) {
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
		srv := newEPServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
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
	big := strings.Repeat(" ", oauth2refresh.MaxResponseBody-len(epOKBody))
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
		{name: "expires_in huge", status: 200, ctype: "application/json",
			body: `{"access_token":"AT-new-access-token","expires_in":1e300}`,
			want: epWant{tok: &epTok{epAccess, "", epRefresh, int64(time.Duration(1<<63-1) / time.Second)}}},
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
			want: epWant{tok: &epTok{epAccess, "", epRefresh, int64(time.Duration(1<<63-1) / time.Second)}}},
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
			srv := newEPServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
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
				epWrite(w, tc.status, tc.ctype, tc.body)
			})
			e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: epClientID, ClientSecret: epSecret}
			before := time.Now()
			tok, err := e.Refresh(context.Background(), epRefresh)
			after := time.Now()
			epCheckOutcome(t, tok, err, tc.want, before, after)
		})
	}
}

// epRotatingServer is a token endpoint that rotates refresh tokens: each refresh token is good
// once, and a reused one gets invalid_grant. The first answer is built from first (with %[1]s
// standing for the new refresh token); later answers are clean.
func epRotatingServer(t *testing.T, ctype, first string) *epServer {
	var mu sync.Mutex
	valid := epRefresh // the one refresh token the server accepts now; guarded by mu
	return newEPServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		mu.Lock()
		defer mu.Unlock()
		if got := r.Form.Get("refresh_token"); got != valid {
			epJSON(w, 400, `{"error":"invalid_grant","error_description":"refresh token reused"}`)
			return
		}
		valid = fmt.Sprintf("RT-rotated-%d", n)
		if n == 1 {
			epWrite(w, 200, ctype, fmt.Sprintf(first, valid))
			return
		}
		epJSON(w, 200, fmt.Sprintf(`{"access_token":"AT-%d","token_type":"Bearer","expires_in":60,"refresh_token":%q}`, n, valid))
	})
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
			srv := epRotatingServer(t, tc.ctype, tc.body)
			e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: epClientID, ClientSecret: epSecret}
			tok, err := e.Refresh(context.Background(), epRefresh)
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			got := epTok{tok.AccessToken, tok.TokenType, tok.RefreshToken, tok.ExpiresIn}
			if diff := cmp.Diff(epTok{"AT-1", tc.wantTokenType, "RT-rotated-1", tc.wantExpiresIn}, got); diff != "" {
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
			if err != nil || tok2.AccessToken != "AT-2" || tok2.RefreshToken != "RT-rotated-2" {
				t.Fatalf("second Refresh: %+v, %v", tok2, err)
			}
			// And the server does rotate: the first refresh token is spent.
			if _, err := e.Refresh(context.Background(), epRefresh); !errors.Is(err, oauth2refresh.ErrInvalidGrant) {
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
			"invalid_request": oauth2refresh.ErrInvalidRequest, "invalid_scope": oauth2refresh.ErrInvalidScope,
			"unauthorized_client": oauth2refresh.ErrUnauthorizedClient, "unsupported_grant_type": oauth2refresh.ErrUnsupportedGrantType,
		}
		for code, s := range sentinels {
			if got := errors.Is(err, s); got != (code == want.code) {
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
			srv := newEPServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				for k, v := range tc.extraHeaders {
					w.Header()[k] = v
				}
				w.Header().Set("Date", "Mon, 02 Jan 2006 15:04:05 GMT")
				if tc.ctype == "" {
					w.Header()["Content-Type"] = nil
				}
				epWrite(w, tc.status, tc.ctype, tc.body)
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
			srv := newEPServer(t, func(w http.ResponseWriter, r *http.Request, n int) { epJSON(w, 200, epOKBody) })
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
			srv := newEPServer(t, func(w http.ResponseWriter, r *http.Request, n int) { epWrite(w, 200, tc.ctype, tc.body) })
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

// TestErrorsHoldNoSecrets has the server echo every secret it can in every error shape. The
// client secret and the refresh token sent must never show; the access and refresh tokens of
// the response must not either, when the response holds them as such.
func TestErrorsHoldNoSecrets(t *testing.T) {
	echo := epSecret + " " + epRefresh + " " + epAccess + " RT-new"
	jsonEcho, _ := json.Marshal(echo)
	formEcho := url.QueryEscape(echo)
	sent := []string{epSecret, epRefresh}
	all := []string{epSecret, epRefresh, epAccess, "RT-new"}
	tests := []struct {
		name, ctype, body string
		status            int
		secrets           []string
	}{
		{"json description", "application/json", `{"error":"invalid_grant","error_description":` + string(jsonEcho) +
			`,"error_uri":` + string(jsonEcho) + `,"access_token":"AT-new-access-token","refresh_token":"RT-new"}`, 400, all},
		{"json code", "application/json", `{"error":` + string(jsonEcho) + `}`, 400, sent},
		{"multi-line description", "application/json", `{"error":"invalid_grant","error_description":"line1\n` + epRefresh[:10] + `\n` + epRefresh[10:] + `"}`, 400, sent},
		{"json at 200", "application/json", `{"error":"bad","error_description":` + string(jsonEcho) + `}`, 200, sent},
		{"form", "application/x-www-form-urlencoded", "error=invalid_grant&error_description=" + formEcho + "&access_token=AT-new-access-token", 400,
			[]string{epSecret, epRefresh, epAccess}},
		{"html", "text/html", "<html>" + echo + "</html>", 502, sent},
		{"no access token", "application/json", `{"refresh_token":"RT-new","token_type":` + string(jsonEcho) + `}`, 200,
			[]string{epSecret, epRefresh, "RT-new"}},
		// RT-new is no refresh token here (not a string), so it is not known to be one.
		{"refresh token not a string", "application/json", `{"access_token":"AT-new-access-token","refresh_token":["RT-new"],"expires_in":` +
			string(jsonEcho) + `}`, 200, []string{epSecret, epRefresh, epAccess}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newEPServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				epWrite(w, tc.status, tc.ctype, tc.body)
			})
			e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: epClientID, ClientSecret: epSecret}
			_, err := e.Refresh(context.Background(), epRefresh)
			if err == nil {
				t.Fatal("no error")
			}
			epCheckMessage(t, err)
			var texts []string // where no secret may show, in any usual encoding
			texts = append(texts, err.Error(), fmt.Sprintf("%+v", err))
			var reqErr *oauth2refresh.RequestError
			var unexp *oauth2refresh.UnexpectedResponseError
			switch {
			case errors.As(err, &reqErr):
				texts = append(texts, string(reqErr.Body), reqErr.Code, reqErr.Description, reqErr.URI)
			case errors.As(err, &unexp):
				texts = append(texts, string(unexp.Body))
			default:
				t.Fatalf("error %T", err)
			}
			var re *oauth2.RetrieveError
			if errors.As(err, &re) {
				texts = append(texts, re.Error())
			}
			for _, s := range tc.secrets {
				j, _ := json.Marshal(s)
				for _, v := range []string{s, url.QueryEscape(s), string(j[1 : len(j)-1])} {
					for _, text := range texts {
						if strings.Contains(text, v) {
							t.Errorf("%q holds %q", text, v)
						}
					}
				}
			}
		})
	}
}

// epAuthServer accepts the client's credentials only the way accept says, answering
// rejections with reject, and counts requests by method.
type epAuthServer struct {
	*epServer
}

func newEPAuthServer(t *testing.T, accept oauth2refresh.AuthMethod, reject func(w http.ResponseWriter)) *epAuthServer {
	s := &epAuthServer{}
	s.epServer = newEPServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		_, _, basic := r.BasicAuth()
		body := r.Header.Get("Authorization") == "" // the form was checked by newEPServer
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
		return func(w http.ResponseWriter) { epWrite(w, code, ctype, body) }
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
		{name: "invalid_request at 400: no fallback", accept: oauth2refresh.AuthRequestBody, reject: status(400, "application/json", `{"error":"invalid_request"}`),
			wantErr: func(err error) bool { return errors.Is(err, oauth2refresh.ErrInvalidRequest) },
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
	srv := newEPServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Header.Get("Authorization") != "" {
			epWrite(w, 401, "text/html", "<h1>Unauthorized</h1>")
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
	if !errors.As(err, &re) || re.Code != "unauthorized_client" || !errors.Is(err, oauth2refresh.ErrUnauthorizedClient) {
		t.Errorf("request-body failure not reachable: %v", err)
	}
	if oauth2refresh.IsTemporary(err) {
		t.Errorf("IsTemporary = true")
	}
	epCheckMessage(t, err)
}

func TestAutoDetectNoFallbackAfterNetworkFailure(t *testing.T) {
	var calls int
	rt := epRoundTripFunc(func(r *http.Request) (*http.Response, error) {
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
	srv := newEPServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
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
	srv := newEPServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
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
	for _, r := range srv.requests() {
		got = append(got, r.Header.Get("Authorization") != "")
	}
	want := []bool{true, true, false, false, false, true, true, false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Basic used per request (-want +got):\n%s", diff)
	}
}

// autoDetectRun makes AutoDetect client ids unique across -count runs: the cache of what
// worked is process-wide, keyed by token URL and client id, and test servers reuse ports.
var autoDetectRun atomic.Int64

type epRoundTripFunc func(*http.Request) (*http.Response, error)

func (f epRoundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

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
				var pe *time.ParseError
				return errors.As(err, &ue) && errors.As(err, &pe) && strings.Contains(err.Error(), "[redacted]")
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newEPServer(t, func(w http.ResponseWriter, r *http.Request, n int) { epWrite(w, tc.status, tc.ctype, tc.body) })
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
	srv := newEPServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
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
	const capped = oauth2refresh.Seconds(time.Duration(1<<63-1) / time.Second)
	tests := []struct {
		in      string
		want    oauth2refresh.Seconds
		wantErr bool
	}{
		{`3600`, 3600, false}, {`"3600"`, 3600, false}, {`" 3600 "`, 3600, false}, {`null`, 77, false}, {`""`, 0, false},
		{`3600.9`, 3600, false}, {`"1e3"`, 1000, false}, {`0`, 0, false}, {`1e400`, capped, false},
		{`"9223372036854775807"`, capped, false}, {`"\u0036\u0030"`, 60, false},
		// Unreadable values decode to zero (absent), without an error.
		{`-1`, 0, false}, {`"-1"`, 0, false}, {`-0.5`, 0, false}, {`"soon"`, 0, false}, {`"0x10"`, 0, false}, {`"Inf"`, 0, false},
		{`"NaN"`, 0, false}, {`"1_000"`, 0, false}, {`"+5"`, 0, false}, {`true`, 0, false}, {`{}`, 0, false}, {`{"s":5}`, 0, false},
		{`[60]`, 0, false},
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
	srv := newEPServer(t, func(w http.ResponseWriter, r *http.Request, n int) { epJSON(w, 200, body) })
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

func TestAuthMethodString(t *testing.T) {
	got := []string{oauth2refresh.AuthBasic.String(), oauth2refresh.AuthRequestBody.String(), oauth2refresh.AuthNone.String(),
		oauth2refresh.AuthAutoDetect.String(), oauth2refresh.AuthMethod(7).String()}
	want := []string{"client_secret_basic", "client_secret_post", "none", "auto", "AuthMethod(7)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("String (-want +got):\n%s", diff)
	}
}

// epMemTransport answers every request with the same token response, in memory.
type epMemTransport struct{ body string }

func (m epMemTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{
		StatusCode: 200, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(strings.NewReader(m.body)),
		ContentLength: int64(len(m.body)),
		Request:       r,
	}, nil
}

// BenchmarkRefreshAllocs measures one refresh through an in-memory RoundTripper, against
// golang.org/x/oauth2 doing the same.
func BenchmarkRefreshAllocs(b *testing.B) {
	const body = `{"access_token":"AT-new-access-token","token_type":"Bearer","expires_in":3600,"refresh_token":"RT-new","scope":"openid email","id_token":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"}`
	client := &http.Client{Transport: epMemTransport{body}}
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

// Secrets with every character that an encoding changes: what a server, a proxy or a
// RoundTripper echoing them writes is not the string itself.
const (
	leakClientID = "client:id+1"
	leakSecret   = `s3cr+t/x= &"q\é✓`
	leakRefresh  = `abc+def/ghi==&"\ü 7`
)

// leakForms returns the forms of the secrets that no error may show: as they are,
// form-encoded (url.QueryEscape), url.PathEscape, JSON-escaped (by encoding/json, and without
// HTML escaping), Go-quoted, and the base64 Basic credential (without padding, so that it is
// found with or without).
func leakForms() []string {
	var forms []string
	for _, s := range []string{leakSecret, leakRefresh} {
		j, _ := json.Marshal(s)
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		plain := strings.TrimSpace(b.String())
		q := strconv.Quote(s)
		forms = append(forms, s, url.QueryEscape(s), url.PathEscape(s), string(j[1:len(j)-1]), plain[1:len(plain)-1], q[1:len(q)-1])
	}
	cred := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(leakClientID) + ":" + url.QueryEscape(leakSecret)))
	return append(forms, strings.TrimRight(cred, "="))
}

// leakRequest is what a leak test server received.
type leakRequest struct {
	raw     string // the request body as sent
	auth    string // the Authorization header
	refresh string // the form-decoded refresh token
	secret  string // the client secret, form-decoded from the body or the Basic header
}

// leakCheckRequest asserts that a refresh request carries the leak secrets intact, for
// AuthBasic or AuthRequestBody, and returns what it holds.
func leakCheckRequest(t *testing.T, r *http.Request, m oauth2refresh.AuthMethod) leakRequest {
	t.Helper()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Errorf("reading body: %v", err)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		t.Errorf("body %q: %v", body, err)
	}
	got := leakRequest{raw: string(body), auth: r.Header.Get("Authorization"), refresh: form.Get("refresh_token")}
	if r.Method != http.MethodPost || form.Get("grant_type") != "refresh_token" || got.refresh != leakRefresh {
		t.Errorf("request %s %q", r.Method, body)
	}
	switch m {
	case oauth2refresh.AuthBasic:
		id, secret, ok := r.BasicAuth()
		if ok {
			id, _ = url.QueryUnescape(id)
			secret, _ = url.QueryUnescape(secret)
		}
		if !ok || id != leakClientID || secret != leakSecret || form.Has("client_id") || form.Has("client_secret") {
			t.Errorf("Basic auth %q (%q, %q) with body %q", got.auth, id, secret, body)
		}
		got.secret = secret
	case oauth2refresh.AuthRequestBody:
		if got.auth != "" || form.Get("client_id") != leakClientID || form.Get("client_secret") != leakSecret {
			t.Errorf("Authorization %q with body %q", got.auth, body)
		}
		got.secret = form.Get("client_secret")
	}
	return got
}

// TestErrorsHoldNoEncodedSecrets: a server, a proxy or a RoundTripper that echoes the request
// (its raw body, the form-decoded values, the Authorization header), in any usual encoding,
// never gets the refresh token or the client secret into an error's text or fields.
func TestErrorsHoldNoEncodedSecrets(t *testing.T) {
	type echo func(got leakRequest) string // what an echoing server says about the request
	rawBody := func(got leakRequest) string { return "cannot parse " + got.raw }
	values := func(got leakRequest) string {
		return "refresh_token " + got.refresh + " with client secret " + got.secret
	}
	header := func(got leakRequest) string { return "bad Authorization: " + got.auth + " for " + got.raw }
	quoted := func(got leakRequest) string {
		return fmt.Sprintf("unknown token %q (secret %q)", got.refresh, got.secret)
	}
	everything := func(got leakRequest) string { return rawBody(got) + "; " + values(got) + "; " + header(got) }
	jsonStr := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	jsonNoHTML := func(s string) string {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		return strings.TrimSpace(b.String())
	}

	tests := []struct {
		name string
		echo echo
		// reply writes the response, with what echo says in it.
		reply func(w http.ResponseWriter, said string)
		// where is where the echo must show, redacted: "text" for Error(), "uri", "body".
		where string
	}{
		{"raw body in error_description", rawBody, func(w http.ResponseWriter, said string) {
			epJSON(w, 400, `{"error":"invalid_request","error_description":`+jsonStr(said)+`}`)
		}, "text"},
		{"raw body in error_description, JSON without HTML escaping", rawBody, func(w http.ResponseWriter, said string) {
			epJSON(w, 400, `{"error":"invalid_request","error_description":`+jsonNoHTML(said)+`}`)
		}, "text"},
		{"raw body in error_description, slashes escaped", rawBody, func(w http.ResponseWriter, said string) {
			epJSON(w, 400, `{"error":"invalid_request","error_description":`+strings.ReplaceAll(jsonStr(said), "/", `\/`)+`}`)
		}, "text"},
		{"decoded values in error_description", values, func(w http.ResponseWriter, said string) {
			epJSON(w, 400, `{"error":"invalid_grant","error_description":`+jsonStr(said)+`}`)
		}, "text"},
		{"decoded values Go-quoted in error_description", quoted, func(w http.ResponseWriter, said string) {
			epJSON(w, 400, `{"error":"invalid_grant","error_description":`+jsonStr(said)+`}`)
		}, "text"},
		{"decoded values URL-encoded in error_description", values, func(w http.ResponseWriter, said string) {
			epJSON(w, 400, `{"error":"invalid_grant","error_description":`+jsonStr(url.PathEscape(said))+`}`)
		}, "text"},
		{"Authorization header in error_description", header, func(w http.ResponseWriter, said string) {
			epJSON(w, 401, `{"error":"invalid_client","error_description":`+jsonStr(said)+`}`)
		}, "text"},
		{"everything in error_uri", everything, func(w http.ResponseWriter, said string) {
			epJSON(w, 400, `{"error":"invalid_request","error_uri":`+jsonStr("https://errors.example/?q="+url.QueryEscape(said))+`}`)
		}, "uri"},
		{"raw body as the error code", rawBody, func(w http.ResponseWriter, said string) {
			epJSON(w, 400, `{"error":`+jsonStr(said)+`}`)
		}, "text"},
		{"decoded values as the error code", values, func(w http.ResponseWriter, said string) {
			epJSON(w, 400, `{"error":`+jsonStr(said)+`}`)
		}, "text"},
		{"everything in a form-encoded error", everything, func(w http.ResponseWriter, said string) {
			epWrite(w, 400, epFormType, "error=invalid_request&error_description="+url.QueryEscape(said)+"&error_uri="+url.QueryEscape(said))
		}, "text"},
		{"everything in an HTML page", everything, func(w http.ResponseWriter, said string) {
			epWrite(w, 502, "text/html", "<html><body><pre>"+html.EscapeString(said)+"</pre></body></html>")
		}, "body"},
		{"everything in a JSON error of another shape", everything, func(w http.ResponseWriter, said string) {
			epJSON(w, 500, `{"error":{"message":`+jsonStr(said)+`}}`)
		}, "body"},
	}
	forms := leakForms()
	for _, m := range []oauth2refresh.AuthMethod{oauth2refresh.AuthBasic, oauth2refresh.AuthRequestBody} {
		for _, tc := range tests {
			t.Run(m.String()+"/"+tc.name, func(t *testing.T) {
				var mu sync.Mutex // guards said
				var said string   // what the server echoed
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					s := tc.echo(leakCheckRequest(t, r, m))
					mu.Lock()
					said = s
					mu.Unlock()
					tc.reply(w, s)
				}))
				defer srv.Close()
				e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: leakClientID, ClientSecret: leakSecret, AuthMethod: m}
				_, err := e.Refresh(context.Background(), leakRefresh)
				if err == nil {
					t.Fatal("no error")
				}
				texts := leakTexts(t, err)
				leakCheck(t, texts, forms)
				mu.Lock()
				defer mu.Unlock()
				if said == "" || !strings.Contains(texts[tc.where], "[redacted]") {
					t.Errorf("%s %q shows no redacted echo of %q", tc.where, texts[tc.where], said)
				}
			})
		}
	}
}

// TestTransportErrorsHoldNoEncodedSecrets: a RoundTripper whose error quotes the request (its
// body, its Authorization header, the decoded form) has none of it reach the error's text.
func TestTransportErrorsHoldNoEncodedSecrets(t *testing.T) {
	forms := leakForms()
	for _, m := range []oauth2refresh.AuthMethod{oauth2refresh.AuthBasic, oauth2refresh.AuthRequestBody} {
		t.Run(m.String(), func(t *testing.T) {
			cause := errors.New("proxy said no")
			rt := epRoundTripFunc(func(r *http.Request) (*http.Response, error) {
				got := leakCheckRequest(t, r, m)
				return nil, fmt.Errorf("proxy refused body %q (%s)\nheader %s, values %v / %s: %w",
					got.raw, got.raw, got.auth, []string{got.refresh, got.secret}, url.PathEscape(got.secret), cause)
			})
			e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example.com/token", ClientID: leakClientID, ClientSecret: leakSecret,
				AuthMethod: m, HTTPClient: &http.Client{Transport: rt}}
			_, err := e.Refresh(context.Background(), leakRefresh)
			var te *oauth2refresh.TransportError
			if !errors.As(err, &te) || !errors.Is(err, cause) {
				t.Fatalf("Refresh: %v, want a *TransportError wrapping %v", err, cause)
			}
			texts := leakTexts(t, err)
			leakCheck(t, texts, forms)
			if !strings.Contains(texts["text"], "[redacted]") || !strings.Contains(texts["text"], "proxy refused body") {
				t.Errorf("error %q is not the RoundTripper's, redacted", texts["text"])
			}
		})
	}
}

// TestDecodeErrorsHoldNoEncodedSecrets: an error decoding a token response into the caller's
// type, which quotes a member echoing the request, has none of the secrets in its text.
func TestDecodeErrorsHoldNoEncodedSecrets(t *testing.T) {
	forms := leakForms()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := leakCheckRequest(t, r, oauth2refresh.AuthBasic)
		b, _ := json.Marshal(map[string]string{"access_token": "AT-1", "refresh_token": "RT-2",
			"issued_at": got.raw + " " + got.auth + " " + got.refresh + " " + got.secret})
		epJSON(w, 200, string(b))
	}))
	defer srv.Close()
	e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: leakClientID, ClientSecret: leakSecret}
	_, err := oauth2refresh.RefreshAccessToken[epToken](context.Background(), e, leakRefresh)
	var pe *time.ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("RefreshAccessToken: %v, want a *time.ParseError", err)
	}
	texts := leakTexts(t, err)
	leakCheck(t, texts, forms)
	if !strings.Contains(texts["text"], "[redacted]") {
		t.Errorf("error %q shows no redacted echo", texts["text"])
	}
}

// leakTexts returns the texts of err that may be shown: its Error text ("text"), and the
// fields of the *RequestError or *UnexpectedResponseError in it ("code", "description", "uri",
// "body"), and the text of the *oauth2.RetrieveError it converts to ("retrieve").
func leakTexts(t *testing.T, err error) map[string]string {
	t.Helper()
	texts := map[string]string{"text": err.Error(), "%+v": fmt.Sprintf("%+v", err)}
	epCheckMessage(t, err)
	var reqErr *oauth2refresh.RequestError
	var unexp *oauth2refresh.UnexpectedResponseError
	if errors.As(err, &reqErr) {
		texts["code"], texts["description"], texts["uri"], texts["body"] = reqErr.Code, reqErr.Description, reqErr.URI, string(reqErr.Body)
	}
	if errors.As(err, &unexp) {
		texts["body"] = string(unexp.Body)
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		texts["retrieve"] = re.Error()
	}
	return texts
}

// leakCheck reports every form of a secret found in texts.
func leakCheck(t *testing.T, texts map[string]string, forms []string) {
	t.Helper()
	for where, text := range texts {
		for _, f := range forms {
			if strings.Contains(text, f) {
				t.Errorf("%s %q holds %q", where, text, f)
			}
		}
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
	srv := epRotatingServer(t, "application/json",
		`{"access_token":"AT-1","token_type":"Bearer","expires_in":3600,"refresh_token":"%[1]s","refresh_token_expires_in":"7776000"}`)
	e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: epClientID, ClientSecret: epSecret}
	ctx := context.Background()

	before := time.Now()
	got, err := oauth2refresh.RefreshAccessToken[strict](ctx, e, epRefresh)
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
	epCheckToken(t, ue.Token, epTok{"AT-1", "Bearer", "RT-rotated-1", 3600}, before, after)
	if v := ue.Token.Extra("refresh_token_expires_in"); v != "7776000" {
		t.Errorf("Extra(refresh_token_expires_in) = %#v, want the string sent", v)
	}
	epCheckMessage(t, err)
	for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", ue), string(ue.Body)} {
		if strings.Contains(text, "RT-rotated-1") || strings.Contains(text, "AT-1") {
			t.Errorf("%q shows a token of the response", text)
		}
	}

	// The refresh token from the error goes on with the grant; the one sent is spent.
	next, err := e.Refresh(ctx, ue.Token.RefreshToken)
	if err != nil || next.AccessToken != "AT-2" || next.RefreshToken != "RT-rotated-2" {
		t.Errorf("Refresh with the token from the error: %v, %v", next, err)
	}
	if _, err := e.Refresh(ctx, epRefresh); !errors.Is(err, oauth2refresh.ErrInvalidGrant) {
		t.Errorf("Refresh with the spent token: %v, want invalid_grant", err)
	}
	var sent []string
	for _, r := range srv.requests() {
		sent = append(sent, r.Form.Get("refresh_token"))
	}
	if diff := cmp.Diff([]string{epRefresh, "RT-rotated-1", epRefresh}, sent); diff != "" {
		t.Errorf("refresh tokens sent (-want +got):\n%s", diff)
	}

	// Other unexpected responses carry no Token: no token was issued.
	noToken := newEPServer(t, func(w http.ResponseWriter, r *http.Request, n int) { epJSON(w, 200, `{"refresh_token":"RT-x"}`) })
	e.TokenURL = noToken.URL
	_, err = oauth2refresh.RefreshAccessToken[strict](ctx, e, epRefresh)
	if ue = nil; !errors.As(err, &ue) || ue.Token != nil {
		t.Errorf("a 200 without access_token: %v (%+v), want an *UnexpectedResponseError without Token", err, ue)
	}
}

package oauth2refresh_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
)

// rvToken is the token revoked in these tests: characters that every encoding changes.
const rvToken = `rv+tok/en=&"\é 9`

// TestRevokeWire: for each AuthMethod, a revocation request is a POST to RevocationURL with
// exactly the headers and form fields of a refresh's client authentication (a new, valid
// assertion for each request for the JWT methods, aud the token URL), token and
// token_type_hint, and neither Scopes nor Params.
func TestRevokeWire(t *testing.T) {
	hdr := epHeader("Content-Type", epFormType, "Accept", "application/json", "User-Agent", epUA)
	basic := epHeader("Content-Type", epFormType, "Accept", "application/json", "User-Agent", epUA,
		"Authorization", epBasic(epClientID, epSecret))
	custom := epHeader("Content-Type", epFormType, "Accept", "application/json", "User-Agent", "my-app/1.0",
		"X-Tenant", "t1", "Authorization", epBasic(epClientID, epSecret))
	tests := []struct {
		name     string
		endpoint oauth2refresh.Endpoint // RevocationURL, TokenURL, ClientID and ClientSecret are filled in
		tok      *oauth2.Token          // revoked
		key      any                    // verifies client_assertion, a JWT; nil when there is none
		header   http.Header
		form     url.Values // without client_assertion
	}{
		{"client_secret_basic, refresh token", oauth2refresh.Endpoint{}, &oauth2.Token{RefreshToken: rvToken}, nil, basic,
			url.Values{"token": {rvToken}, "token_type_hint": {"refresh_token"}}},
		{"client_secret_basic, access token", oauth2refresh.Endpoint{}, &oauth2.Token{AccessToken: rvToken, TokenType: "Bearer"}, nil, basic,
			url.Values{"token": {rvToken}, "token_type_hint": {"access_token"}}},
		{"both tokens: the refresh token", oauth2refresh.Endpoint{}, &oauth2.Token{AccessToken: "at-not-sent", RefreshToken: rvToken}, nil, basic,
			url.Values{"token": {rvToken}, "token_type_hint": {"refresh_token"}}},
		{"Scopes and Params not sent, Header sent", oauth2refresh.Endpoint{Scopes: []string{"a", "b"},
			Params: url.Values{"resource": {"r"}, "token": {"x"}},
			Header: epHeader("User-Agent", "my-app/1.0", "X-Tenant", "t1", "Authorization", "Bearer x", "Content-Type", "text/plain")},
			&oauth2.Token{RefreshToken: rvToken}, nil, custom, url.Values{"token": {rvToken}, "token_type_hint": {"refresh_token"}}},
		{"client_secret_post", oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthRequestBody}, &oauth2.Token{RefreshToken: rvToken}, nil, hdr,
			url.Values{"token": {rvToken}, "token_type_hint": {"refresh_token"}, "client_id": {epClientID}, "client_secret": {epSecret}}},
		{"none", oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthNone}, &oauth2.Token{AccessToken: rvToken}, nil, hdr,
			url.Values{"token": {rvToken}, "token_type_hint": {"access_token"}, "client_id": {epClientID}}},
		{"auto, nothing remembered: basic", oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthAutoDetect}, &oauth2.Token{RefreshToken: rvToken}, nil, basic,
			url.Values{"token": {rvToken}, "token_type_hint": {"refresh_token"}}},
		{"tls_client_auth", oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthTLSClient}, &oauth2.Token{RefreshToken: rvToken}, nil, hdr,
			url.Values{"token": {rvToken}, "token_type_hint": {"refresh_token"}, "client_id": {epClientID}}},
		{"private_key_jwt ES256", oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthPrivateKeyJWT,
			Assertion: oauth2refresh.JWTAssertion{Key: caECKey(), KeyID: "k1"}}, &oauth2.Token{RefreshToken: rvToken}, &caECKey().PublicKey, hdr,
			url.Values{"token": {rvToken}, "token_type_hint": {"refresh_token"}, "client_id": {epClientID},
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}}},
		{"client_secret_jwt", oauth2refresh.Endpoint{AuthMethod: oauth2refresh.AuthClientSecretJWT, ClientSecret: caJWTSecret}, &oauth2.Token{AccessToken: rvToken}, []byte(caJWTSecret), hdr,
			url.Values{"token": {rvToken}, "token_type_hint": {"access_token"}, "client_id": {epClientID},
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {}) // 200, no body
			e := tc.endpoint
			// Unique per run: AuthAutoDetect remembers per token URL and client id.
			e.TokenURL, e.RevocationURL = srv.URL+"/token/"+unique(), srv.URL+"/revoke"
			e.ClientID = epClientID
			if e.ClientSecret == "" {
				e.ClientSecret = epSecret
			}
			for range 2 { // a new assertion each time
				if err := e.Revoke(context.Background(), tc.tok); err != nil {
					t.Fatalf("Revoke: %v", err)
				}
			}
			reqs := srv.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d requests, want 2", len(reqs))
			}
			var jtis []any
			for _, got := range reqs {
				if got.Method != http.MethodPost || got.Path != "/revoke" || got.Query != "" {
					t.Errorf("request %s %s?%s, want POST /revoke", got.Method, got.Path, got.Query)
				}
				if diff := cmp.Diff(tc.header, got.Header); diff != "" {
					t.Errorf("header (-want +got):\n%s", diff)
				}
				want := url.Values{}
				for k, v := range tc.form {
					want[k] = v
				}
				if tc.key != nil {
					jose, claims := caVerify(t, got.Form.Get("client_assertion"), tc.key)
					if claims["aud"] != e.TokenURL || claims["iss"] != epClientID || claims["sub"] != epClientID {
						t.Errorf("claims %v, want aud %q, iss and sub %q (header %v)", claims, e.TokenURL, epClientID, jose)
					}
					jtis = append(jtis, claims["jti"])
					want["client_assertion"] = got.Form["client_assertion"]
				}
				if diff := cmp.Diff(want, got.Form); diff != "" {
					t.Errorf("form (-want +got):\n%s", diff)
				}
			}
			if tc.key != nil && (jtis[0] == nil || jtis[0] == jtis[1]) {
				t.Errorf("jti %v then %v: want a new assertion for each request", jtis[0], jtis[1])
			}
		})
	}
}

// rvRuns numbers the uses of unique.
var rvRuns atomic.Int64

// unique returns a string that no earlier call in this process returned: a token URL made
// with it starts from nothing in AuthAutoDetect's memory.
func unique() string { return fmt.Sprint(rvRuns.Add(1)) }

// TestRevokeAutoDetect: with AuthAutoDetect, Revoke starts with the method remembered for
// the token URL and client id (else Basic), falls back once after invalid_client, and
// remembers nothing itself.
func TestRevokeAutoDetect(t *testing.T) {
	invalidClient := func(w http.ResponseWriter) { epJSON(w, 401, `{"error":"invalid_client"}`) }
	tests := []struct {
		name       string
		accept     oauth2refresh.AuthMethod
		refreshWas oauth2refresh.AuthMethod // what a refresh found first; -1 for no refresh
		want       []string                 // the methods of two revocations in a row
	}{
		{"body only, nothing remembered", oauth2refresh.AuthRequestBody, -1, []string{"basic", "body", "basic", "body"}},
		{"basic only, nothing remembered", oauth2refresh.AuthBasic, -1, []string{"basic", "basic"}},
		{"body only, body remembered from a refresh", oauth2refresh.AuthRequestBody, oauth2refresh.AuthRequestBody, []string{"body", "body"}},
		{"basic only, body remembered from a refresh", oauth2refresh.AuthBasic, oauth2refresh.AuthRequestBody, []string{"body", "basic", "body", "basic"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tokenURL := "https://auth.example.com/token/" + unique()
			if tc.refreshWas >= 0 { // teach the cache: body accepted by the token endpoint
				tokens := newEPAuthServer(t, tc.refreshWas, invalidClient)
				e := &oauth2refresh.Endpoint{TokenURL: tokenURL, ClientID: epClientID, ClientSecret: epSecret,
					AuthMethod: oauth2refresh.AuthAutoDetect, HTTPClient: redirectTo(tokens.URL)}
				if _, err := e.Refresh(context.Background(), epRefresh); err != nil {
					t.Fatal(err)
				}
			}
			srv := newEPAuthServer(t, tc.accept, invalidClient)
			e := &oauth2refresh.Endpoint{TokenURL: tokenURL, RevocationURL: srv.URL + "/revoke", ClientID: epClientID, ClientSecret: epSecret,
				AuthMethod: oauth2refresh.AuthAutoDetect}
			for range 2 {
				if err := e.Revoke(context.Background(), &oauth2.Token{RefreshToken: rvToken}); err != nil {
					t.Fatalf("Revoke: %v", err)
				}
			}
			if diff := cmp.Diff(tc.want, srv.methods(t, e)); diff != "" {
				t.Errorf("methods (-want +got):\n%s", diff)
			}
			for _, r := range srv.requests() {
				if r.Form.Get("token") != rvToken || r.Form.Get("token_type_hint") != "refresh_token" || r.Form.Has("grant_type") {
					t.Errorf("form %v", r.Form)
				}
			}
		})
	}
	t.Run("both refused", func(t *testing.T) {
		srv := newEPAuthServer(t, -1, invalidClient)
		e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example.com/token/" + unique(), RevocationURL: srv.URL, ClientID: epClientID,
			ClientSecret: epSecret, AuthMethod: oauth2refresh.AuthAutoDetect}
		err := e.Revoke(context.Background(), &oauth2.Token{RefreshToken: rvToken})
		var re *oauth2refresh.RequestError
		if !errors.Is(err, oauth2refresh.ErrInvalidClient) || !errors.As(err, &re) || re.StatusCode != 401 {
			t.Errorf("Revoke: %v, want invalid_client", err)
		}
		if diff := cmp.Diff([]string{"basic", "body"}, srv.methods(t, e)); diff != "" {
			t.Errorf("methods (-want +got):\n%s", diff)
		}
		epCheckMessage(t, err)
	})
}

// redirectTo is an HTTP client that sends every request to the server at base, whatever its
// URL's host, so that an Endpoint may name an https token URL of its own.
func redirectTo(base string) *http.Client {
	u, _ := url.Parse(base)
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.URL.Scheme, r.URL.Host = u.Scheme, u.Host
		return http.DefaultTransport.RoundTrip(r)
	})}
}

// TestRevokeResponses: any 2xx is a success whatever the body (RFC 7009 §2.2); an error
// object is a *RequestError (§2.2.1), anything else an *UnexpectedResponseError; a redirect is
// not followed.
func TestRevokeResponses(t *testing.T) {
	big := strings.Repeat("x", 1<<20+1)
	type want struct {
		Code      string // the RequestError's Code; "" for an UnexpectedResponseError
		Status    int
		Temporary bool
		Sentinel  error  // matched by errors.Is
		Why       string // the UnexpectedResponseError's Err, if any
	}
	tests := []struct {
		name   string
		reply  func(w http.ResponseWriter, r *http.Request)
		want   *want // nil: success
		header string
	}{
		{"200 empty", func(w http.ResponseWriter, r *http.Request) {}, nil, ""},
		{"200 garbage", func(w http.ResponseWriter, r *http.Request) { respond(w, 200, "application/json", "{garbage") }, nil, ""},
		{"200 with an error object", func(w http.ResponseWriter, r *http.Request) {
			epJSON(w, 200, `{"error":"invalid_request"}`)
		}, nil, ""},
		{"200 over 1 MiB", func(w http.ResponseWriter, r *http.Request) { respond(w, 200, "text/plain", big+big) }, nil, ""},
		{"204", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }, nil, ""},
		{"400 unsupported_token_type", func(w http.ResponseWriter, r *http.Request) {
			epJSON(w, 400, `{"error":"unsupported_token_type","error_description":"no such type"}`)
		}, &want{Code: "unsupported_token_type", Status: 400}, ""},
		{"401 invalid_client", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
			epJSON(w, 401, `{"error":"invalid_client"}`)
		}, &want{Code: "invalid_client", Status: 401, Sentinel: oauth2refresh.ErrInvalidClient}, "WWW-Authenticate"},
		{"400 form-encoded invalid_request", func(w http.ResponseWriter, r *http.Request) {
			respond(w, 400, epFormType, "error=invalid_request")
		}, &want{Code: "invalid_request", Status: 400}, ""},
		{"503 Retry-After, no body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(503)
		}, &want{Status: 503, Temporary: true}, "Retry-After"},
		{"503 temporarily_unavailable", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "120")
			epJSON(w, 503, `{"error":"temporarily_unavailable"}`)
		}, &want{Code: "temporarily_unavailable", Status: 503, Temporary: true}, "Retry-After"},
		{"502 HTML", func(w http.ResponseWriter, r *http.Request) { respond(w, 502, "text/html", "<h1>Bad Gateway</h1>") },
			&want{Status: 502, Temporary: true}, ""},
		{"400 over 1 MiB", func(w http.ResponseWriter, r *http.Request) {
			epJSON(w, 400, `{"error":"invalid_request","error_description":"`+big+`"}`)
		}, &want{Status: 400, Why: "body exceeds 1 MiB"}, ""},
		{"302 to a server that would accept", nil, &want{Status: 302, Why: "redirect not followed"}, "Location"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			other := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {})
			reply := tc.reply
			if reply == nil {
				reply = func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, other.URL+"/revoke", http.StatusFound)
				}
			}
			srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) { reply(w, r) })
			followed := 0
			e := &oauth2refresh.Endpoint{TokenURL: srv.URL + "/token", RevocationURL: srv.URL + "/revoke", ClientID: epClientID,
				ClientSecret: epSecret, HTTPClient: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { followed++; return nil }}}
			err := e.Revoke(context.Background(), &oauth2.Token{RefreshToken: rvToken})
			if n := len(srv.requests()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
			if n := len(other.requests()); n != 0 || followed != 0 {
				t.Errorf("redirect followed: %d requests, CheckRedirect called %d times", n, followed)
			}
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Revoke: %v, want success", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Revoke succeeded")
			}
			epCheckMessage(t, err)
			if !strings.HasPrefix(err.Error(), "oauth2refresh: revoking a token: ") {
				t.Errorf("error %q does not say it is about revocation", err)
			}
			var re *oauth2refresh.RequestError
			var ue *oauth2refresh.UnexpectedResponseError
			var got want
			var header http.Header
			switch {
			case errors.As(err, &re):
				got.Code, got.Status, header = re.Code, re.StatusCode, re.Header
			case errors.As(err, &ue):
				got.Status, header = ue.StatusCode, ue.Header
				if ue.Err != nil {
					got.Why = ue.Err.Error()
				}
			default:
				t.Fatalf("Revoke: %T %v, want a *RequestError or an *UnexpectedResponseError", err, err)
			}
			got.Temporary = oauth2refresh.IsTemporary(err)
			if tc.want.Sentinel != nil && errors.Is(err, tc.want.Sentinel) {
				got.Sentinel = tc.want.Sentinel
			}
			if diff := cmp.Diff(*tc.want, got, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
				t.Errorf("error %v (-want +got):\n%s", err, diff)
			}
			if tc.header != "" && header.Get(tc.header) == "" {
				t.Errorf("header %s not kept: %v", tc.header, header)
			}
			var rerr *oauth2.RetrieveError
			if !errors.As(err, &rerr) || rerr.Response.StatusCode != tc.want.Status {
				t.Errorf("errors.As(*oauth2.RetrieveError) = %v", rerr)
			}
		})
	}
}

// TestRevokeNothingSent: a call that cannot work sends nothing and says why.
func TestRevokeNothingSent(t *testing.T) {
	failing := errors.New("key store down")
	tests := []struct {
		name  string
		e     oauth2refresh.Endpoint
		token *oauth2.Token
		want  error
		msg   string
	}{
		{"nil token", oauth2refresh.Endpoint{RevocationURL: "https://auth.example.com/revoke"}, nil, oauth2refresh.ErrNoRefreshToken, "no refresh token nor access token to revoke"},
		{"neither token", oauth2refresh.Endpoint{RevocationURL: "https://auth.example.com/revoke"}, &oauth2.Token{TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)},
			oauth2refresh.ErrNoRefreshToken, "no refresh token nor access token to revoke"},
		{"no RevocationURL", oauth2refresh.Endpoint{TokenURL: "https://auth.example.com/token"}, &oauth2.Token{RefreshToken: rvToken}, oauth2refresh.ErrInvalidEndpoint, "no RevocationURL"},
		{"plain http to a remote host", oauth2refresh.Endpoint{RevocationURL: "http://auth.example.com/revoke"}, &oauth2.Token{RefreshToken: rvToken},
			oauth2refresh.ErrInvalidEndpoint, "revocation URL is not https"},
		{"not http", oauth2refresh.Endpoint{RevocationURL: "ftp://auth.example.com/revoke"}, &oauth2.Token{RefreshToken: rvToken},
			oauth2refresh.ErrInvalidEndpoint, "revocation URL is not an http(s) URL"},
		{"no host", oauth2refresh.Endpoint{RevocationURL: "https:///revoke"}, &oauth2.Token{RefreshToken: rvToken}, oauth2refresh.ErrInvalidEndpoint, "revocation URL has no host"},
		{"bad URL", oauth2refresh.Endpoint{RevocationURL: "https://auth.example.com/%zz"}, &oauth2.Token{RefreshToken: rvToken}, oauth2refresh.ErrInvalidEndpoint, "revocation URL: "},
		{"private_key_jwt without an Assertion", oauth2refresh.Endpoint{RevocationURL: "https://auth.example.com/revoke",
			AuthMethod: oauth2refresh.AuthPrivateKeyJWT}, &oauth2.Token{RefreshToken: rvToken}, oauth2refresh.ErrInvalidEndpoint, "private_key_jwt needs an Assertion"},
		{"assertion fails", oauth2refresh.Endpoint{RevocationURL: "https://auth.example.com/revoke", AuthMethod: oauth2refresh.AuthPrivateKeyJWT,
			Assertion: oauth2refresh.AssertionFunc(func(context.Context, oauth2refresh.AssertionRequest) (string, error) { return "", failing })},
			&oauth2.Token{RefreshToken: rvToken}, failing, "making the client assertion"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.e
			e.ClientID, e.ClientSecret, e.HTTPClient = epClientID, epSecret, epNoRequest(t)
			err := e.Revoke(context.Background(), tc.token)
			if !errors.Is(err, tc.want) || !strings.Contains(fmt.Sprint(err), tc.msg) {
				t.Fatalf("Revoke: %v, want %v saying %q", err, tc.want, tc.msg)
			}
			if strings.Contains(fmt.Sprint(err), "token URL") {
				t.Errorf("Revoke: %v is about the token URL", err)
			}
			epCheckMessage(t, err)
		})
	}
	t.Run("AllowInsecureHTTP", func(t *testing.T) {
		var got string
		e := &oauth2refresh.Endpoint{RevocationURL: "http://auth.example.com/revoke", AllowInsecureHTTP: true,
			HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				got = r.URL.String()
				return memResponse(r, 200, "", ""), nil
			})}}
		if err := e.Revoke(context.Background(), &oauth2.Token{RefreshToken: rvToken}); err != nil || got != e.RevocationURL {
			t.Errorf("Revoke: %v, request to %q", err, got)
		}
	})
}

// TestRevokeTransportError: no answer is a *TransportError, temporary unless the caller
// canceled.
func TestRevokeTransportError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Close() // nothing listens there any more
	e := &oauth2refresh.Endpoint{RevocationURL: srv.URL + "/revoke", ClientID: epClientID, ClientSecret: epSecret}
	err := e.Revoke(context.Background(), &oauth2.Token{AccessToken: rvToken})
	var te *oauth2refresh.TransportError
	if !errors.As(err, &te) || !oauth2refresh.IsTemporary(err) {
		t.Errorf("Revoke: %v, want a temporary *TransportError", err)
	}
	epCheckMessage(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = e.Revoke(ctx, &oauth2.Token{AccessToken: rvToken})
	if !errors.As(err, &te) || !errors.Is(err, context.Canceled) || oauth2refresh.IsTemporary(err) {
		t.Errorf("Revoke with a canceled context: %v, want a *TransportError wrapping context.Canceled", err)
	}
}

// TestRevokeErrorsHoldNoSecrets: a server or a RoundTripper that echoes the revocation request
// (its raw body, the decoded token, the Authorization header, the client assertion), in any
// usual encoding, never gets the token revoked, the client secret or the assertion into an
// error's text, fields or chain.
func TestRevokeErrorsHoldNoSecrets(t *testing.T) {
	jsonStr := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	echoes := []struct {
		name  string
		reply func(w http.ResponseWriter, said string)
	}{
		{"in error_description", func(w http.ResponseWriter, said string) {
			epJSON(w, 400, `{"error":"unsupported_token_type","error_description":`+jsonStr(said)+`}`)
		}},
		{"as the error code, form-encoded", func(w http.ResponseWriter, said string) {
			respond(w, 401, epFormType, "error="+url.QueryEscape(said))
		}},
		{"in error_uri and a header", func(w http.ResponseWriter, said string) {
			w.Header().Set("X-Echo", said)
			epJSON(w, 400, `{"error":"invalid_request","error_uri":`+jsonStr("https://errors.example/?q="+url.QueryEscape(said))+`}`)
		}},
		{"in an HTML page", func(w http.ResponseWriter, said string) {
			respond(w, 503, "text/html", "<pre>"+html.EscapeString(said)+"</pre>")
		}},
	}
	methods := []oauth2refresh.Endpoint{
		{AuthMethod: oauth2refresh.AuthBasic},
		{AuthMethod: oauth2refresh.AuthRequestBody},
		{AuthMethod: oauth2refresh.AuthClientSecretJWT, ClientSecret: leakSecret + leakSecret}, // 32 bytes or more
	}
	for _, m := range methods {
		for _, echo := range echoes {
			t.Run(m.AuthMethod.String()+"/"+echo.name, func(t *testing.T) {
				var mu sync.Mutex // guards assertion
				var assertion string
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					body, _ := io.ReadAll(r.Body)
					form, _ := url.ParseQuery(string(body))
					if form.Get("token") != rvToken {
						t.Errorf("token %q, want %q", form.Get("token"), rvToken)
					}
					mu.Lock()
					assertion = form.Get("client_assertion")
					mu.Unlock()
					said := fmt.Sprintf("cannot parse %s; token %s %q; secret %s; header %s",
						body, form.Get("token"), form.Get("token"), form.Get("client_secret"), r.Header.Get("Authorization"))
					echo.reply(w, said)
				}))
				defer srv.Close()
				e := m
				e.RevocationURL, e.TokenURL, e.ClientID = srv.URL, srv.URL+"/token", leakClientID
				if e.ClientSecret == "" {
					e.ClientSecret = leakSecret
				}
				err := e.Revoke(context.Background(), &oauth2.Token{RefreshToken: rvToken})
				if err == nil {
					t.Fatal("no error")
				}
				texts := leakTexts(t, err)
				mu.Lock()
				defer mu.Unlock()
				secrets := []string{rvToken, leakSecret}
				if assertion != "" {
					secrets = append(secrets, assertion)
				} else if e.AuthMethod == oauth2refresh.AuthClientSecretJWT {
					t.Error("no client assertion sent")
				}
				leakCheck(t, texts, listedForms(leakClientID, leakSecret, secrets...))
				if !strings.Contains(fmt.Sprint(texts), "[redacted]") {
					t.Errorf("no redacted echo in %q", texts)
				}
			})
		}
	}
	t.Run("transport error", func(t *testing.T) {
		cause := errors.New("proxy said no")
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			form := readForm(t, r)
			return nil, fmt.Errorf("proxy refused %q (%s) with %s: %w", form.Get("token"), url.QueryEscape(form.Get("token")),
				r.Header.Get("Authorization"), cause)
		})
		e := &oauth2refresh.Endpoint{RevocationURL: "https://auth.example.com/revoke", ClientID: leakClientID, ClientSecret: leakSecret,
			HTTPClient: &http.Client{Transport: rt}}
		err := e.Revoke(context.Background(), &oauth2.Token{RefreshToken: rvToken})
		var te *oauth2refresh.TransportError
		if !errors.As(err, &te) || !errors.Is(err, cause) {
			t.Fatalf("Revoke: %v, want a *TransportError wrapping %v", err, cause)
		}
		texts := leakTexts(t, err)
		leakCheck(t, texts, listedForms(leakClientID, leakSecret, rvToken, leakSecret))
		if !strings.Contains(texts["text"], `proxy refused "[redacted]"`) {
			t.Errorf("error %q is not the RoundTripper's, redacted", texts["text"])
		}
	})
}

// TestRevokeMutualTLS: tls_client_auth revocation goes out over a connection made with the
// client certificate of Endpoint.HTTPClient; without one, the handshake fails.
func TestRevokeMutualTLS(t *testing.T) {
	srv := newMTLSServer(t)
	e := &oauth2refresh.Endpoint{TokenURL: srv.URL + "/token", RevocationURL: srv.URL + "/revoke", ClientID: "my-client",
		AuthMethod: oauth2refresh.AuthTLSClient, HTTPClient: srv.client(srv.clientCert)}
	if err := e.Revoke(context.Background(), &oauth2.Token{RefreshToken: epRefresh}); err != nil {
		t.Errorf("Revoke with the certificate: %v", err)
	}
	e.HTTPClient = srv.client()
	var te *oauth2refresh.TransportError
	if err := e.Revoke(context.Background(), &oauth2.Token{RefreshToken: epRefresh}); !errors.As(err, &te) {
		t.Errorf("Revoke without a certificate: %v, want a *TransportError", err)
	}
}

// TestRevokeTimeoutAndClient: a revocation request is bounded like a token request
// (Endpoint.Timeout, else DefaultTimeout) and sent through the same HTTP client: the
// Endpoint's, else the one in the context under oauth2.HTTPClient.
func TestRevokeTimeoutAndClient(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		want    time.Duration
	}{{"default", 0, oauth2refresh.DefaultTimeout}, {"endpoint timeout", 5 * time.Second, 5 * time.Second}} {
		t.Run(tc.name, func(t *testing.T) {
			var got time.Time // the request context's deadline
			var calls atomic.Int64
			rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				calls.Add(1)
				got, _ = r.Context().Deadline()
				return memResponse(r, 200, "", ""), nil
			})
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: rt})
			e := &oauth2refresh.Endpoint{RevocationURL: "https://auth.example.com/revoke", Timeout: tc.timeout}
			before := time.Now()
			if err := e.Revoke(ctx, &oauth2.Token{RefreshToken: rvToken}); err != nil {
				t.Fatal(err)
			}
			after := time.Now()
			if calls.Load() != 1 || got.Before(before.Add(tc.want)) || got.After(after.Add(tc.want)) {
				t.Errorf("%d requests through the context's client, deadline %v; want 1, %v from now", calls.Load(), got, tc.want)
			}
		})
	}
}

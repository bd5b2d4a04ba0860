package oauth2refresh

// endpoint.go is the request side of a refresh: who the client is, where it asks, how it
// authenticates, and the building and sending of the token request, and of the revocation
// request of revoke.go with the same client authentication. What comes back is response.go's
// business.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokenkit/oauth2refresh/events"

	"golang.org/x/oauth2"
)

// AuthMethod says how the client authenticates to the token endpoint (RFC 6749 §2.3.1).
type AuthMethod int

const (
	// AuthBasic, the zero value, sends the id and secret form-encoded in a Basic header
	// (client_secret_basic).
	AuthBasic AuthMethod = iota
	// AuthRequestBody sends client_id and client_secret as form fields (client_secret_post);
	// an empty secret is left out.
	AuthRequestBody
	// AuthNone sends client_id alone (public clients).
	AuthNone
	// AuthAutoDetect tries AuthBasic, then AuthRequestBody only if the server refused the
	// client without judging the grant (never after invalid_grant, a 5xx or a network
	// failure), and remembers what worked per token URL and client id.
	AuthAutoDetect
	// AuthPrivateKeyJWT sends a client assertion made by Endpoint.Assertion for each request
	// (private_key_jwt), never the client secret.
	AuthPrivateKeyJWT
	// AuthClientSecretJWT sends an assertion signed HS256 with ClientSecret, or made by
	// Endpoint.Assertion if set (client_secret_jwt). A ClientSecret shorter than 32 bytes is
	// refused with ErrInvalidEndpoint.
	AuthClientSecretJWT
	// AuthTLSClient is mutual TLS (RFC 8705) with the certificate of the HTTP client. Set
	// that client as Endpoint.HTTPClient: one in the context also shows it to API hosts.
	AuthTLSClient
)

// authNames are the names String returns.
var authNames = [...]string{"client_secret_basic", "client_secret_post", "none", "auto",
	"private_key_jwt", "client_secret_jwt", "tls_client_auth"}

// String returns the RFC 7591 token_endpoint_auth_method name of m, or "auto".
func (m AuthMethod) String() string {
	if m >= 0 && int(m) < len(authNames) {
		return authNames[m]
	}
	return "AuthMethod(" + strconv.Itoa(int(m)) + ")"
}

// defaultTimeout bounds a request when Endpoint.Timeout is zero.
const defaultTimeout = 30 * time.Second

// userAgent is sent unless Endpoint.Header sets one: some providers (GitHub) reject requests
// without one.
const userAgent = "oauth2refresh (+https://github.com/tokenkit/oauth2refresh)"

// Errors of a call that cannot work; nothing was sent.
var (
	// ErrNoRefreshToken: there is no refresh token to send, or no token to revoke.
	ErrNoRefreshToken = errors.New("oauth2refresh: no refresh token")
	// ErrInvalidEndpoint comes wrapped with the reason: a URL that breaks the rules of
	// TokenURL (such as http:// to a host that is not loopback), an AuthMethod without what
	// it needs, a TokenExchange that cannot work.
	ErrInvalidEndpoint = errors.New("oauth2refresh: invalid endpoint")
)

// Endpoint is a token endpoint and the client's credentials there. Set its fields before
// first use and do not change them after; it may be copied and used concurrently.
type Endpoint struct {
	// TokenURL must be https://, or http:// to a loopback IP address or "localhost", unless
	// AllowInsecureHTTP is set.
	TokenURL string

	// RevocationURL is the RFC 7009 endpoint of Revoke; empty means none. The rules of
	// TokenURL apply.
	RevocationURL string

	// ClientID and ClientSecret are the client's credentials.
	ClientID     string
	ClientSecret string

	// AuthMethod says where the credentials go; the zero value is AuthBasic.
	AuthMethod AuthMethod

	// Assertion makes the client assertion of each request for AuthPrivateKeyJWT, which
	// needs it, and AuthClientSecretJWT; with any other AuthMethod it must be nil.
	Assertion ClientAssertion

	// Scopes, when not empty, are sent as the scope parameter.
	Scopes []string

	// Params are extra form parameters of every token request (GitLab's redirect_uri,
	// RFC 8707's resource); keys this package sets, such as grant_type, are ignored.
	Params url.Values

	// Header holds extra request headers. It may set User-Agent and Accept; its
	// Authorization, Content-Type and DPoP are ignored.
	Header http.Header

	// HTTPClient sends the requests; nil means the context's oauth2.HTTPClient, else
	// http.DefaultClient. Only its Transport and Timeout are used: no redirect is followed.
	HTTPClient *http.Client

	// Timeout bounds each request when neither the context nor HTTPClient has one. Zero
	// means 30 seconds; negative means no bound.
	Timeout time.Duration

	// DPoP, when set, binds the tokens to the key (RFC 9449): they then work only through
	// this package's Transport, not oauth2.NewClient's.
	DPoP *DPoPKey

	// AllowInsecureHTTP permits http:// URLs to any host: secrets in clear text.
	AllowInsecureHTTP bool
}

// Refresh performs one refresh_token grant and returns the new token, uncached. It keeps
// refreshToken if the server sends no new one; the response's members are in its Extra. A member that cannot be read (an odd expires_in or token_type) counts as absent,
// never as a failure that would lose a rotated refresh token.
//
// Errors: *RequestError for an error response, *UnexpectedResponseError for any other
// answer that is not a token, *TransportError when none came; ErrNoRefreshToken,
// ErrInvalidEndpoint or the error of Assertion, wrapped, when nothing was sent.
func (e *Endpoint) Refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	return e.refresh(ctx, refreshToken, time.Now)
}

// refresh is Refresh with the clock that stamps the token's Expiry: the TokenSource passes its
// own (see WithClock), so that Expiry is set once, in response.go, and never overwritten.
func (e *Endpoint) refresh(ctx context.Context, refreshToken string, now func() time.Time) (*oauth2.Token, error) {
	return e.exchange(ctx, refreshToken, now, nil)
}

// RefreshAccessToken is Refresh that decodes the response into a T, typically a struct
// embedding TokenResponse, whose RefreshToken is set to refreshToken if the server sent none.
// A token that does not decode into T is an *UnexpectedResponseError whose Token field holds
// it: save Token.RefreshToken, which may be the only copy of the new one.
func RefreshAccessToken[T any](ctx context.Context, e *Endpoint, refreshToken string) (T, error) {
	var out T
	if _, err := e.exchange(ctx, refreshToken, time.Now, &out); err != nil {
		var zero T
		return zero, err
	}
	return out, nil
}

// authCache remembers, for AuthAutoDetect, which method a (token URL, client id) accepted.
var authCache sync.Map // authKey -> AuthMethod

type authKey struct{ tokenURL, clientID string }

// exchange performs the refresh_token grant with the Endpoint's client authentication (see
// authenticated). into is nil, or a *T that RefreshAccessToken wants the response decoded
// into.
func (e *Endpoint) exchange(ctx context.Context, refreshToken string, now func() time.Time, into any) (*oauth2.Token, error) {
	if refreshToken == "" {
		return nil, ErrNoRefreshToken
	}
	form := e.grantForm("refresh_token")
	form.Set("refresh_token", refreshToken)
	return e.authenticated(ctx, form, request{url: e.TokenURL, name: "token URL", secret: refreshToken, learn: true,
		read: readResponse, into: into}, now)
}

// request is where and how one POST to the authorization server goes, and what it carries
// that errors must not show: a token request (exchange) or a revocation request (Revoke).
// Its form goes beside it, not in it, so that the form does not escape to the heap.
type request struct {
	url, name string // TokenURL or RevocationURL, and its name in errors ("token URL")
	secret    string // the refresh token, or the token revoked: cut out of errors
	learn     bool   // AuthAutoDetect remembers the method that worked (token requests)
	// read makes a token or an error of what came back (resp, or the error of
	// http.Client.Do), before the request's timeout ends: readResponse, or readRevocation.
	read func(s sent, resp *http.Response, err error, now func() time.Time, into any) (*oauth2.Token, error)
	into any // passed to read
	// spent, with a DPoP key, collects the DPoP proofs and client assertions of the requests
	// sent so far: a server may echo them in its answer to a later one (a nonce retry,
	// AuthAutoDetect's second way), whose errors must not show them either.
	spent *[]string
}

// authenticated sends form as r says, with the Endpoint's AuthMethod, or, for AuthAutoDetect,
// with the method remembered for the token URL and client id, else AuthBasic, and once more
// with the other one when the server turned the client's authentication down without judging
// the grant (grantNotJudged). Only a request with learn set changes what is remembered.
func (e *Endpoint) authenticated(ctx context.Context, form url.Values, r request, now func() time.Time) (*oauth2.Token, error) {
	if e.DPoP != nil {
		r.spent = new([]string)
	}
	if e.AuthMethod != AuthAutoDetect {
		return e.send(ctx, form, r, e.AuthMethod, now)
	}
	key := authKey{e.TokenURL, e.ClientID}
	first := AuthBasic
	if m, ok := authCache.Load(key); ok {
		first = m.(AuthMethod)
	}
	// send adds to the form: the first attempt gets a copy. (maps.Clone would make form
	// escape to the heap on every path.)
	cp := make(url.Values, len(form)+4)
	for k, v := range form {
		cp[k] = v
	}
	tok, err := e.send(ctx, cp, r, first, now)
	if e.DPoP != nil && useDPoPNonce(err) {
		// Two nonce challenges in a row: the nonce changed under the retry, and the server
		// said nothing of the credentials. Once more the same way, with the newest nonce.
		tok, err = e.send(ctx, cp, r, first, now)
	}
	if err == nil {
		if r.learn {
			authCache.Store(key, first)
		}
		return tok, nil
	}
	if !grantNotJudged(err) || nonceRefusal(err) {
		return nil, err
	}
	// The server did not look at the grant, so the refresh token may be sent again, the
	// other way. This also re-detects after a provider changed what it accepts.
	other := AuthRequestBody
	if first == AuthRequestBody {
		other = AuthBasic
	}
	tok, err2 := e.send(ctx, form, r, other, now)
	if err2 != nil {
		if r.learn {
			authCache.Delete(key)
		}
		if first == AuthBasic {
			return nil, &autoDetectError{basic: err, body: err2}
		}
		return nil, &autoDetectError{basic: err2, body: err}
	}
	if r.learn {
		authCache.Store(key, other)
		report(ctx, events.Event{Kind: events.AuthSwitched, Method: other.String()})
	}
	return tok, nil
}

// autoDetectError is returned when AuthAutoDetect failed with both methods. errors.Is and
// errors.As reach both failures, the request-body one first.
type autoDetectError struct{ basic, body error }

func (e *autoDetectError) Error() string {
	return "oauth2refresh: client authentication failed both ways: basic: " +
		strings.TrimPrefix(e.basic.Error(), "oauth2refresh: ") + "; request body: " +
		strings.TrimPrefix(e.body.Error(), "oauth2refresh: ")
}

func (e *autoDetectError) Unwrap() []error { return []error{e.body, e.basic} }

// grantNotJudged reports whether err shows that the server turned down the request without
// judging the grant, so that the refresh token may be sent again (see AuthAutoDetect): HTTP
// 400 or 401 without invalid_grant or invalid_scope (nor GitHub's bad_refresh_token), or
// invalid_client, unauthorized_client or GitHub's incorrect_client_credentials at any status.
// Never after invalid_grant, a 5xx or a network failure: the first attempt may have spent the
// refresh token. What worked is remembered for the life of the process (authCache) and tried
// first; should it be rejected later, the other method is tried once and remembered instead.
// When both fail, the error wraps both (autoDetectError). A DPoP nonce challenge
// (use_dpop_nonce) says nothing of the credentials and never makes it switch (nonceRefusal):
// the request is sent again the same way, at most four requests before the other method.
func grantNotJudged(err error) bool {
	var re *RequestError
	if errors.As(err, &re) {
		switch codeKinds[re.Code] {
		case codeClient:
			return true
		case codeGrant:
			return false
		}
		return re.StatusCode == http.StatusBadRequest || re.StatusCode == http.StatusUnauthorized
	}
	var ue *UnexpectedResponseError
	return errors.As(err, &ue) && (ue.StatusCode == http.StatusBadRequest || ue.StatusCode == http.StatusUnauthorized)
}

// checkURL says whether a request may be sent to u, the URL named name: an error wrapping
// ErrInvalidEndpoint when it may not.
func (e *Endpoint) checkURL(u *url.URL, name string) error {
	switch u.Scheme {
	case "https":
	case "http":
		if !e.AllowInsecureHTTP && !isLoopback(u.Hostname()) {
			return fmt.Errorf("%w: %s is not https", ErrInvalidEndpoint, name)
		}
	default:
		return fmt.Errorf("%w: %s is not an http(s) URL", ErrInvalidEndpoint, name)
	}
	if u.Host == "" {
		return fmt.Errorf("%w: %s has no host", ErrInvalidEndpoint, name)
	}
	return nil
}

// isLoopback reports whether host is an IP loopback literal or the name localhost. Other
// names under .localhost, and "localhost." with its dot, are not: Go's resolver asks DNS for
// them.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// reserved are the form keys this package sets itself.
var reserved = map[string]bool{"grant_type": true, "refresh_token": true, "scope": true, "client_id": true,
	"client_secret": true, "client_assertion": true, "client_assertion_type": true}

// send posts form as post does, and once more with the server's new DPoP nonce when it asks
// for one (RFC 9449 §8): it refused the request without judging the grant.
func (e *Endpoint) send(ctx context.Context, form url.Values, r request, m AuthMethod, now func() time.Time) (*oauth2.Token, error) {
	tok, err := e.post(ctx, form, r, m, now)
	if e.DPoP != nil && useDPoPNonce(err) {
		report(ctx, events.Event{Kind: events.NonceRetry, Status: http.StatusBadRequest})
		tok, err = e.post(ctx, form, r, m, now)
	}
	return tok, err
}

// post posts form, with the client authentication of m added to it (and a DPoP proof), as r
// says, and hands what comes back to r.read. It is one exchange through the client's
// Transport (roundTrip), bounded by its Timeout, else the Endpoint's (30 s when
// zero) when ctx has no deadline. The Endpoint's Header may not set Authorization,
// Content-Type or DPoP; the userAgent is sent unless it sets one.
func (e *Endpoint) post(ctx context.Context, form url.Values, r request, m AuthMethod, now func() time.Time) (*oauth2.Token, error) {
	jwt := m == AuthPrivateKeyJWT || m == AuthClientSecretJWT
	switch {
	case m < AuthBasic || m == AuthAutoDetect || m > AuthTLSClient:
		return nil, fmt.Errorf("%w: unknown %v", ErrInvalidEndpoint, m)
	case e.Assertion != nil && !jwt:
		return nil, fmt.Errorf("%w: Assertion is set, for AuthMethod %v", ErrInvalidEndpoint, e.AuthMethod)
	}
	client := e.client(ctx)
	d := client.Timeout // as http.Client bounds a request, the earlier deadline winning
	if _, ok := ctx.Deadline(); d == 0 && !ok && e.Timeout >= 0 {
		d = cmp.Or(e.Timeout, defaultTimeout)
	}
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	if m != AuthBasic && e.ClientID != "" {
		form.Set("client_id", e.ClientID)
	}
	if m == AuthRequestBody && e.ClientSecret != "" {
		form.Set("client_secret", e.ClientSecret)
	}
	var assertion string
	if jwt {
		var err error
		if assertion, err = e.assertion(ctx, m); err != nil {
			return nil, err
		}
		form.Set("client_assertion_type", jwtBearer)
		form.Set("client_assertion", assertion)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, strings.NewReader(form.Encode()))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold anything
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidEndpoint, r.name, err)
	}
	if err := e.checkURL(req.URL, r.name); err != nil {
		return nil, err
	}
	for k, vs := range e.Header {
		if k = http.CanonicalHeaderKey(k); k != "Authorization" && k != "Content-Type" && k != "Dpop" {
			req.Header[k] = slices.Clone(vs)
		}
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", userAgent)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if m == AuthBasic {
		// RFC 6749 §2.3.1: the id and secret are form-encoded before they are joined.
		req.SetBasicAuth(url.QueryEscape(e.ClientID), url.QueryEscape(e.ClientSecret))
	}
	if e.DPoP != nil {
		p, err := e.DPoP.proof(http.MethodPost, req.URL, "")
		if err != nil {
			return nil, err
		}
		req.Header.Set("DPoP", p)
		*r.spent = append(*r.spent, p, assertion)
	}
	resp, err := roundTrip(client, req)
	if err == nil && e.DPoP != nil {
		e.DPoP.learn(req.URL, resp.Header)
	}
	s := sent{req: req, refreshToken: r.secret, clientID: e.ClientID, clientSecret: e.ClientSecret, assertion: assertion, dpop: e.DPoP}
	if r.spent != nil {
		s.spent = *r.spent
	}
	return r.read(s, resp, err, now, r.into)
}

// client returns the HTTP client whose Transport and Timeout a request uses.
func (e *Endpoint) client(ctx context.Context) *http.Client {
	if e.HTTPClient != nil {
		return e.HTTPClient
	}
	if c, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && c != nil {
		return c
	}
	return http.DefaultClient
}

// roundTrip sends req once through c's Transport, without the redirect and cookie machinery
// of http.Client.Do (the token endpoint's 3xx is an answer, not a detour), and fails the way
// Do fails: with a *url.Error.
func roundTrip(c *http.Client, req *http.Request) (*http.Response, error) {
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	resp, err := rt.RoundTrip(req)
	if err == nil && resp == nil {
		err = errors.New("http: RoundTripper returned a nil *Response with a nil error")
	}
	if err != nil {
		return nil, &url.Error{Op: "Post", URL: req.URL.String(), Err: err}
	}
	if resp.Body == nil {
		resp.Body = http.NoBody
	}
	return resp, nil
}

package oauth2refresh

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// AuthMethod says how the client authenticates to the token endpoint (RFC 6749 §2.3.1).
type AuthMethod int

const (
	// AuthBasic sends the client id and secret in an HTTP Basic Authorization header, each
	// form-encoded first (RFC 6749 §2.3.1), and no client_id in the body
	// (client_secret_basic). It is the zero value and the default, as in oslo
	// ("http_basic_auth").
	AuthBasic AuthMethod = iota
	// AuthRequestBody sends client_id and client_secret as form fields (client_secret_post;
	// oslo's "request_body"). An empty secret is left out, as RFC 6749 §2.3.1 allows.
	AuthRequestBody
	// AuthNone is for public clients: client_id in the body, no secret anywhere.
	AuthNone
	// AuthAutoDetect tries AuthBasic and falls back to AuthRequestBody only when the server
	// rejected the client's authentication (HTTP 401 without invalid_grant, or the codes
	// invalid_client, unauthorized_client and GitHub's incorrect_client_credentials at any
	// status), never after invalid_grant, a 5xx or a network failure, so that a refresh token
	// is not sent twice when the first attempt may have spent it. What worked is remembered
	// per token URL and client id for the life of the process, and tried first next time;
	// should the server later reject it, the other method is tried once and remembered
	// instead. When both methods fail, the error returned wraps both failures. It stands for
	// the zero oauth2.AuthStyleAutoDetect of golang.org/x/oauth2, without its re-send after
	// every error.
	AuthAutoDetect
)

// String returns the RFC 7591 token_endpoint_auth_method name of m ("client_secret_basic",
// "client_secret_post", "none") or "auto".
func (m AuthMethod) String() string {
	switch m {
	case AuthBasic:
		return "client_secret_basic"
	case AuthRequestBody:
		return "client_secret_post"
	case AuthNone:
		return "none"
	case AuthAutoDetect:
		return "auto"
	}
	return "AuthMethod(" + strconv.Itoa(int(m)) + ")"
}

// DefaultTimeout bounds a token request when the caller's context has no deadline, the
// Endpoint's Timeout is zero and its HTTP client has no Timeout of its own.
const DefaultTimeout = 30 * time.Second

// MaxResponseBody is the most a token response body may hold; a larger one is an
// *UnexpectedResponseError.
const MaxResponseBody = 1 << 20

// DefaultUserAgent is the User-Agent sent unless Endpoint.Header sets one. Some providers
// (GitHub) reject requests without one.
const DefaultUserAgent = "oauth2refresh (+https://github.com/tokenkit/oauth2refresh)"

// Errors for an Endpoint or a call that cannot work; no request is sent.
var (
	// ErrNoRefreshToken: there is no refresh token to send.
	ErrNoRefreshToken = errors.New("oauth2refresh: no refresh token")
	// ErrInsecureTokenURL: the token URL is plain http:// to a host that is not a loopback
	// address, and Endpoint.AllowInsecureHTTP is false.
	ErrInsecureTokenURL = errors.New("oauth2refresh: token URL is not https")
	// ErrInvalidEndpoint: the Endpoint's TokenURL or AuthMethod is unusable. It comes
	// wrapped, with the reason.
	ErrInvalidEndpoint = errors.New("oauth2refresh: invalid endpoint")
)

// Endpoint is an OAuth 2.0 token endpoint and the client credentials to use there: everything
// needed to perform the refresh_token grant (RFC 6749 §6). Its zero fields are documented and
// useful; set the fields before the first use and do not change them afterwards. An Endpoint
// may be used by any number of goroutines, and copied.
type Endpoint struct {
	// TokenURL is the token endpoint. It must be https://, or http:// to a loopback host
	// (localhost, 127.0.0.0/8, ::1), unless AllowInsecureHTTP is set.
	TokenURL string

	// ClientID and ClientSecret are the client's credentials (oslo's "credentials"). The
	// secret is empty for public clients.
	ClientID     string
	ClientSecret string

	// AuthMethod says where the credentials go. The zero value is AuthBasic.
	AuthMethod AuthMethod

	// Scopes, when not empty, are sent space-separated as the "scope" parameter to ask for a
	// token with these scopes (RFC 6749 §6). Empty means no scope parameter: the server then
	// grants the scopes of the original grant.
	Scopes []string

	// Params are extra form parameters sent with every refresh, for providers that want them
	// (GitLab's redirect_uri, Entra v1's resource). Keys set by this package (grant_type,
	// refresh_token, scope, client_id, client_secret) are ignored here: they cannot be
	// overridden.
	Params url.Values

	// Header holds extra request headers. It may override User-Agent and Accept; the
	// Content-Type and Authorization headers are always those of this package, and are
	// ignored here.
	Header http.Header

	// HTTPClient sends the request. Nil means the client stored in the context under
	// oauth2.HTTPClient, as golang.org/x/oauth2 does, else http.DefaultClient. Whatever the
	// client's CheckRedirect says, the token request never follows a redirect: a 3xx answer
	// is an *UnexpectedResponseError.
	HTTPClient *http.Client

	// Timeout bounds each token request when the context has no deadline and the HTTP client
	// no Timeout. Zero means DefaultTimeout; negative means no bound.
	Timeout time.Duration

	// AllowInsecureHTTP permits an http:// TokenURL to a host that is not a loopback address.
	// Leave it false: the secret and the refresh token would cross the network in clear text.
	AllowInsecureHTTP bool
}

// TokenResponse is a successful token response (RFC 6749 §5.1), meant to be embedded in a
// caller's own struct to reach provider-specific fields with RefreshAccessToken:
//
//	type googleToken struct {
//		oauth2refresh.TokenResponse
//		IDToken string `json:"id_token"`
//	}
type TokenResponse struct {
	AccessToken  string  `json:"access_token"`
	TokenType    string  `json:"token_type"`
	ExpiresIn    Seconds `json:"expires_in,omitempty"`
	RefreshToken string  `json:"refresh_token,omitempty"`
	Scope        string  `json:"scope,omitempty"`
}

func (r *TokenResponse) tokenResponse() *TokenResponse { return r }

// Refresh performs one refresh_token grant (RFC 6749 §6) and returns the new token. It does no
// caching: see TokenSource for that. If the server sends no new refresh token, the token
// returned carries refreshToken. Expiry is set from expires_in when the server sent one.
// Every member of the response is available through the token's Extra method (id_token,
// instance_url, refresh_token_expires_in, ...).
//
// A success is never turned into an error by a member that only describes the access token:
// an expires_in that is not a non-negative number of seconds (a JSON number or a numeric
// string) is treated as absent, so the token has no Expiry, and a token_type that is not a
// string is treated as absent, so the token's Type method says "Bearer". Both stay in Extra as
// the server sent them. Otherwise the error would throw away the new access token and the
// rotated refresh token, and on a server that rotates refresh tokens the grant would be lost:
// the refresh token that was sent is spent. A refresh_token that is not a string is an
// *UnexpectedResponseError, as there is no refresh token in it to keep.
//
// Errors: *RequestError for an RFC 6749 §5.2 error response, *UnexpectedResponseError for any
// other response that is not a token, *TransportError when no response came; ErrNoRefreshToken,
// ErrInsecureTokenURL or ErrInvalidEndpoint (wrapped) when nothing was sent.
func (e *Endpoint) Refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	return e.refresh(ctx, refreshToken, time.Now)
}

// refresh is Refresh with the clock that stamps the token's Expiry: the TokenSource passes its
// own (see WithClock), so that Expiry is set once, here, and never overwritten.
func (e *Endpoint) refresh(ctx context.Context, refreshToken string, now func() time.Time) (*oauth2.Token, error) {
	r, err := e.exchange(ctx, refreshToken)
	if err != nil {
		return nil, err
	}
	return r.token(now()), nil
}

// RefreshAccessToken performs one refresh_token grant like Endpoint.Refresh and decodes the
// response into a T, typically a struct that embeds TokenResponse (oslo's type parameter). The
// body is first checked to be a token response, with an access_token, so a T is only ever
// decoded from a success. A form-encoded response is decoded as if its values were JSON
// strings (TokenResponse.ExpiresIn accepts that). When T embeds TokenResponse (or is one) and
// the server sent no refresh token, RefreshToken is set to the one that was sent.
//
// A token response that does not decode into T (a field of T whose type does not fit what
// the server sent, say an int for "refresh_token_expires_in":"7776000") is an
// *UnexpectedResponseError whose Token field holds the token the server issued, as Refresh
// would have returned it. The grant succeeded: save Token.RefreshToken, for on a server that
// rotates refresh tokens the one that was sent is spent and Token may hold the only copy of
// the new one.
//
// The leniency of Refresh holds here too, so that a defect in expires_in or token_type does
// not lose the token: TokenResponse.ExpiresIn (a Seconds) decodes an unreadable expires_in as
// zero, and when the body does not decode into T while it holds a token_type or an expires_in
// that Refresh treats as absent, it is decoded again without those members (a TokenType that
// is not a string is then left empty).
func RefreshAccessToken[T any](ctx context.Context, e *Endpoint, refreshToken string) (T, error) {
	var out T
	r, err := e.exchange(ctx, refreshToken)
	if err != nil {
		return out, err
	}
	body, err := r.jsonBody()
	if err == nil {
		err = json.Unmarshal(body, &out)
	}
	if err != nil && len(r.ignored) > 0 {
		if body, err = r.jsonBody(r.ignored...); err == nil {
			out = *new(T)
			err = json.Unmarshal(body, &out)
		}
	}
	if err != nil {
		var zero T
		return zero, &UnexpectedResponseError{StatusCode: r.status, status: r.statusLine, Header: r.header,
			Body: r.red.keep(r.body), Token: r.token(time.Now()), Err: &redactedError{
				msg: fmt.Sprintf("decoding token response into %T: %s", out, r.red.message(err)), err: err}}
	}
	var tr interface{ tokenResponse() *TokenResponse }
	var ok bool
	if tr, ok = any(&out).(interface{ tokenResponse() *TokenResponse }); !ok {
		tr, ok = any(out).(interface{ tokenResponse() *TokenResponse })
	}
	if ok {
		if p := tr.tokenResponse(); p != nil && p.RefreshToken == "" {
			p.RefreshToken = refreshToken
		}
	}
	return out, nil
}

// authCache remembers, for AuthAutoDetect, which method a (token URL, client id) accepted.
var authCache sync.Map // authKey -> AuthMethod

type authKey struct{ tokenURL, clientID string }

func (e *Endpoint) exchange(ctx context.Context, refreshToken string) (response, error) {
	if refreshToken == "" {
		return response{}, ErrNoRefreshToken
	}
	if e.AuthMethod != AuthAutoDetect {
		return e.send(ctx, refreshToken, e.AuthMethod)
	}
	key := authKey{e.TokenURL, e.ClientID}
	first := AuthBasic
	if m, ok := authCache.Load(key); ok {
		first = m.(AuthMethod)
	}
	r, err := e.send(ctx, refreshToken, first)
	if err == nil {
		authCache.Store(key, first)
		return r, nil
	}
	if !clientAuthRejected(err) {
		return response{}, err
	}
	// The server refused the client's credentials, so it did not look at the grant: the
	// refresh token may be sent again, the other way. This also re-detects after a provider
	// changed what it accepts.
	other := AuthRequestBody
	if first == AuthRequestBody {
		other = AuthBasic
	}
	r, err2 := e.send(ctx, refreshToken, other)
	if err2 != nil {
		authCache.Delete(key)
		if first == AuthBasic {
			return response{}, &autoDetectError{basic: err, body: err2}
		}
		return response{}, &autoDetectError{basic: err2, body: err}
	}
	authCache.Store(key, other)
	return r, nil
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

// clientAuthRejected reports whether err says the server rejected the client's credentials
// rather than the grant: only then may the refresh token be sent again. GitHub names
// invalid_client "incorrect_client_credentials" and answers it with HTTP 200, for wrong
// credentials and for credentials in the Authorization header, where it does not look.
func clientAuthRejected(err error) bool {
	var re *RequestError
	if errors.As(err, &re) {
		switch re.Code {
		case "invalid_client", "unauthorized_client", "incorrect_client_credentials":
			return true
		case "invalid_grant":
			return false
		}
		return re.StatusCode == http.StatusUnauthorized
	}
	var ue *UnexpectedResponseError
	return errors.As(err, &ue) && ue.StatusCode == http.StatusUnauthorized
}

// checkURL says whether a request may be sent to u.
func (e *Endpoint) checkURL(u *url.URL) error {
	switch u.Scheme {
	case "https":
	case "http":
		if !e.AllowInsecureHTTP && !isLoopback(u.Hostname()) {
			return ErrInsecureTokenURL
		}
	default:
		return fmt.Errorf("%w: token URL is not an http(s) URL", ErrInvalidEndpoint)
	}
	if u.Host == "" {
		return fmt.Errorf("%w: token URL has no host", ErrInvalidEndpoint)
	}
	return nil
}

func isLoopback(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// reserved are the form keys this package sets itself.
var reserved = map[string]bool{"grant_type": true, "refresh_token": true, "scope": true, "client_id": true, "client_secret": true}

// form builds the request body.
func (e *Endpoint) form(refreshToken string, m AuthMethod) string {
	var b strings.Builder
	b.Grow(64 + 3*(len(refreshToken)+len(e.ClientID)+len(e.ClientSecret)))
	b.WriteString("grant_type=refresh_token&refresh_token=")
	b.WriteString(url.QueryEscape(refreshToken))
	if len(e.Scopes) > 0 {
		if s := strings.Join(e.Scopes, " "); s != "" {
			b.WriteString("&scope=")
			b.WriteString(url.QueryEscape(s))
		}
	}
	if (m == AuthRequestBody || m == AuthNone) && e.ClientID != "" {
		b.WriteString("&client_id=")
		b.WriteString(url.QueryEscape(e.ClientID))
	}
	if m == AuthRequestBody && e.ClientSecret != "" {
		b.WriteString("&client_secret=")
		b.WriteString(url.QueryEscape(e.ClientSecret))
	}
	if len(e.Params) > 0 {
		keys := make([]string, 0, len(e.Params))
		for k := range e.Params {
			if !reserved[k] {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			for _, v := range e.Params[k] {
				b.WriteByte('&')
				b.WriteString(url.QueryEscape(k))
				b.WriteByte('=')
				b.WriteString(url.QueryEscape(v))
			}
		}
	}
	return b.String()
}

// noRedirect makes a client return a 3xx as the response instead of following it.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// client returns the HTTP client to use, with redirects turned off.
func (e *Endpoint) client(ctx context.Context) *http.Client {
	c := e.HTTPClient
	if c == nil {
		if cc, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && cc != nil {
			c = cc
		} else {
			c = http.DefaultClient
		}
	}
	cc := *c
	cc.CheckRedirect = noRedirect
	return &cc
}

func (e *Endpoint) send(ctx context.Context, refreshToken string, m AuthMethod) (response, error) {
	if m < AuthBasic || m >= AuthAutoDetect {
		return response{}, fmt.Errorf("%w: unknown %v", ErrInvalidEndpoint, m)
	}
	client := e.client(ctx)
	if _, ok := ctx.Deadline(); !ok && client.Timeout == 0 && e.Timeout >= 0 {
		d := e.Timeout
		if d == 0 {
			d = DefaultTimeout
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.TokenURL, strings.NewReader(e.form(refreshToken, m)))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold anything
		}
		return response{}, fmt.Errorf("%w: token URL: %w", ErrInvalidEndpoint, err)
	}
	if err := e.checkURL(req.URL); err != nil {
		return response{}, err
	}
	for k, vs := range e.Header {
		k = http.CanonicalHeaderKey(k)
		if k != "Authorization" && k != "Content-Type" {
			req.Header[k] = vs
		}
	}
	// One backing array for the header values this package sets, so that none is shared
	// between requests.
	vals := [...]string{"application/json", DefaultUserAgent, "application/x-www-form-urlencoded", ""}
	hv := vals[:]
	if req.Header.Get("Accept") == "" {
		req.Header["Accept"] = hv[0:1:1]
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header["User-Agent"] = hv[1:2:2]
	}
	req.Header["Content-Type"] = hv[2:3:3]
	if m == AuthBasic {
		hv[3] = basicAuth(e.ClientID, e.ClientSecret)
		req.Header["Authorization"] = hv[3:4:4]
	}
	red := redactor{refreshToken: refreshToken, clientID: e.ClientID, clientSecret: e.ClientSecret}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, &TransportError{Err: red.wrap(redactURLError(err))}
	}
	defer resp.Body.Close()
	body, err := readBody(resp.Body, resp.ContentLength)
	if err != nil {
		if err == errTooLarge {
			return response{}, &UnexpectedResponseError{StatusCode: resp.StatusCode, status: resp.Status, Header: resp.Header,
				Body: red.keep(body), Err: err}
		}
		return response{}, &TransportError{Err: red.wrap(fmt.Errorf("reading token response: %w", err))}
	}
	return parseResponse(resp.StatusCode, resp.Status, resp.Header, body, red)
}

// basicAuth returns the Authorization header value for client_secret_basic: the client id and
// secret are form-encoded before they are joined with ':' (RFC 6749 §2.3.1).
func basicAuth(id, secret string) string {
	cred := url.QueryEscape(id) + ":" + url.QueryEscape(secret)
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(cred))
}

var errTooLarge = errors.New("body exceeds 1 MiB")

// readBody reads at most MaxResponseBody bytes of body; beyond that it returns what it read
// and errTooLarge. n is the Content-Length, or -1.
func readBody(body io.Reader, n int64) ([]byte, error) {
	size := 512
	if n >= 0 && n <= MaxResponseBody {
		size = int(n) + 1 // +1 so that EOF is seen without growing
	}
	b := make([]byte, 0, size)
	for {
		if len(b) == cap(b) {
			if len(b) > MaxResponseBody {
				return b, errTooLarge
			}
			b = slices.Grow(b, min(cap(b), MaxResponseBody+1-len(b)))
		}
		k, err := body.Read(b[len(b):min(cap(b), MaxResponseBody+1)])
		b = b[:len(b)+k]
		if len(b) > MaxResponseBody {
			return b, errTooLarge
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

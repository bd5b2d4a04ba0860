package oauth2refresh

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sort"
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
	// form-encoded first, and no client_id in the body (client_secret_basic). It is the zero
	// value and the default, as in oslo ("http_basic_auth").
	AuthBasic AuthMethod = iota
	// AuthRequestBody sends client_id and client_secret as form fields (client_secret_post;
	// oslo's "request_body").
	AuthRequestBody
	// AuthNone is for public clients: client_id in the body, no secret anywhere.
	AuthNone
	// AuthAutoDetect tries AuthBasic and falls back to AuthRequestBody only when the server
	// rejected the client's authentication (HTTP 401, invalid_client or unauthorized_client),
	// never after invalid_grant, a 5xx or a network failure, so that a refresh token is not
	// sent twice when the first attempt may have spent it. What worked is remembered per token
	// URL and client id for the life of the process. It matches the zero
	// oauth2.AuthStyleAutoDetect of golang.org/x/oauth2, without its re-send on every error.
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
	// ErrInvalidEndpoint: the Endpoint's TokenURL, ClientID or AuthMethod is unusable.
	ErrInvalidEndpoint = errors.New("oauth2refresh: invalid endpoint")
)

// Endpoint is an OAuth 2.0 token endpoint and the client credentials to use there: everything
// needed to perform the refresh_token grant (RFC 6749 §6). Its zero fields are documented and
// useful; set the fields before the first use and do not change them afterwards. An Endpoint
// may be used by any number of goroutines.
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
	// refresh_token, scope, client_id, client_secret) cannot be overridden.
	Params url.Values

	// Header holds extra request headers. It may override User-Agent and Accept but not
	// Content-Type or the Authorization header of AuthBasic.
	Header http.Header

	// HTTPClient sends the request. Nil means the client stored in the context under
	// oauth2.HTTPClient, as golang.org/x/oauth2 does, else http.DefaultClient. Whatever the
	// client's CheckRedirect says, the token request never follows a redirect.
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

// Seconds is a count of seconds that decodes from a JSON number or a numeric string ("3600",
// as Entra v1 sends); null decodes to zero.
type Seconds int64

// UnmarshalJSON implements json.Unmarshaler.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		b = []byte(str)
	}
	n, err := parseSeconds(string(b))
	if err != nil {
		return err
	}
	*s = Seconds(n)
	return nil
}

// parseSeconds parses a non-negative count of seconds; a fraction is dropped.
func parseSeconds(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, errors.New("negative expires_in")
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > math.MaxInt64 {
		return 0, errors.New("expires_in is not a number of seconds")
	}
	return int64(f), nil
}

// maxExpiresIn keeps time.Duration arithmetic from overflowing (about 290 years).
const maxExpiresIn = math.MaxInt64 / int64(time.Second)

// Refresh performs one refresh_token grant (RFC 6749 §6) and returns the new token. It does no
// caching: see TokenSource for that. If the server sends no new refresh token, the token
// returned carries refreshToken. Every other member of the response is available through the
// token's Extra method.
//
// Errors: *RequestError for an RFC 6749 §5.2 error response, *UnexpectedResponseError for any
// other response that is not a token, *TransportError when no response came; ErrNoRefreshToken,
// ErrInsecureTokenURL or ErrInvalidEndpoint (wrapped) when nothing was sent.
func (e *Endpoint) Refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	r, err := e.exchange(ctx, refreshToken)
	if err != nil {
		return nil, err
	}
	return r.token(time.Now()), nil
}

// RefreshAccessToken performs one refresh_token grant like Endpoint.Refresh and decodes the
// response into a T, typically a struct that embeds TokenResponse (oslo's type parameter). The
// body is first checked to be a token response, with an access_token, so a T is only ever
// decoded from a success. A form-encoded response is decoded as if its values were JSON
// strings. When T embeds TokenResponse and the server sent no refresh token, RefreshToken is
// set to the one that was sent.
func RefreshAccessToken[T any](ctx context.Context, e *Endpoint, refreshToken string) (T, error) {
	var out T
	r, err := e.exchange(ctx, refreshToken)
	if err != nil {
		return out, err
	}
	body := r.body
	if r.form != nil {
		flat := make(map[string]string, len(r.form))
		for k, v := range r.form {
			flat[k] = v[0]
		}
		if body, err = json.Marshal(flat); err != nil {
			return out, fmt.Errorf("oauth2refresh: decoding token response: %w", err)
		}
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return out, &UnexpectedResponseError{StatusCode: r.status, Header: r.header, Body: keep(r.body),
			Err: fmt.Errorf("decoding token response into %T: %w", out, err)}
	}
	if tr, ok := any(&out).(interface{ tokenResponse() *TokenResponse }); ok {
		if p := tr.tokenResponse(); p.RefreshToken == "" {
			p.RefreshToken = refreshToken
		}
	}
	return out, nil
}

// response is a validated token response.
type response struct {
	status int
	header http.Header
	body   []byte

	json map[string]any // the decoded JSON object, or nil
	form url.Values     // the decoded form body, or nil

	accessToken, tokenType, refreshToken string
	expiresIn                            int64 // seconds; 0 means none given
}

func (r *response) token(now time.Time) *oauth2.Token {
	t := &oauth2.Token{
		AccessToken:  r.accessToken,
		TokenType:    r.tokenType,
		RefreshToken: r.refreshToken,
		ExpiresIn:    r.expiresIn,
	}
	if r.expiresIn > 0 {
		t.Expiry = now.Add(time.Duration(r.expiresIn) * time.Second)
	}
	if r.json != nil {
		return t.WithExtra(r.json)
	}
	return t.WithExtra(r.form)
}

// authCache remembers, for AuthAutoDetect, which method a (token URL, client id) accepted.
var authCache sync.Map // authKey -> AuthMethod

type authKey struct{ tokenURL, clientID string }

func (e *Endpoint) exchange(ctx context.Context, refreshToken string) (*response, error) {
	if refreshToken == "" {
		return nil, ErrNoRefreshToken
	}
	if err := e.check(); err != nil {
		return nil, err
	}
	if e.AuthMethod != AuthAutoDetect {
		return e.send(ctx, refreshToken, e.AuthMethod)
	}
	key := authKey{e.TokenURL, e.ClientID}
	if m, ok := authCache.Load(key); ok {
		return e.send(ctx, refreshToken, m.(AuthMethod))
	}
	r, err := e.send(ctx, refreshToken, AuthBasic)
	if err == nil {
		authCache.Store(key, AuthBasic)
		return r, nil
	}
	if !clientAuthRejected(err) {
		return nil, err
	}
	r, err2 := e.send(ctx, refreshToken, AuthRequestBody)
	if err2 != nil {
		return nil, &autoDetectError{basic: err, body: err2}
	}
	authCache.Store(key, AuthRequestBody)
	return r, nil
}

// autoDetectError is returned when AuthAutoDetect failed with both methods.
type autoDetectError struct{ basic, body error }

func (e *autoDetectError) Error() string {
	return "oauth2refresh: client authentication failed both ways: basic: " +
		strings.TrimPrefix(e.basic.Error(), "oauth2refresh: ") + "; request body: " +
		strings.TrimPrefix(e.body.Error(), "oauth2refresh: ")
}

func (e *autoDetectError) Unwrap() []error { return []error{e.body, e.basic} }

// clientAuthRejected reports whether err says the server rejected the client's credentials
// rather than the grant: only then may the refresh token be sent again.
func clientAuthRejected(err error) bool {
	var re *RequestError
	if errors.As(err, &re) {
		return re.StatusCode == http.StatusUnauthorized || re.Code == "invalid_client" || re.Code == "unauthorized_client"
	}
	var ue *UnexpectedResponseError
	return errors.As(err, &ue) && ue.StatusCode == http.StatusUnauthorized
}

func (e *Endpoint) check() error {
	u, err := url.Parse(e.TokenURL)
	if err != nil {
		return fmt.Errorf("%w: token URL: %w", ErrInvalidEndpoint, err)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !e.AllowInsecureHTTP && !isLoopback(u.Hostname()) {
			return ErrInsecureTokenURL
		}
	default:
		return fmt.Errorf("%w: token URL %q is not an http(s) URL", ErrInvalidEndpoint, u.Redacted())
	}
	if u.Host == "" {
		return fmt.Errorf("%w: token URL has no host", ErrInvalidEndpoint)
	}
	if e.AuthMethod < AuthBasic || e.AuthMethod > AuthAutoDetect {
		return fmt.Errorf("%w: unknown %v", ErrInvalidEndpoint, e.AuthMethod)
	}
	return nil
}

func isLoopback(host string) bool {
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
	b.Grow(64 + len(refreshToken) + len(e.ClientID) + len(e.ClientSecret))
	b.WriteString("grant_type=refresh_token&refresh_token=")
	b.WriteString(url.QueryEscape(refreshToken))
	if len(e.Scopes) > 0 {
		b.WriteString("&scope=")
		b.WriteString(url.QueryEscape(strings.Join(e.Scopes, " ")))
	}
	if m == AuthRequestBody || m == AuthNone {
		b.WriteString("&client_id=")
		b.WriteString(url.QueryEscape(e.ClientID))
	}
	if m == AuthRequestBody {
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
		sort.Strings(keys)
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

func (e *Endpoint) client(ctx context.Context) http.Client {
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
	return cc
}

func (e *Endpoint) send(ctx context.Context, refreshToken string, m AuthMethod) (*response, error) {
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
		return nil, fmt.Errorf("%w: %w", ErrInvalidEndpoint, err)
	}
	for k, vs := range e.Header {
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	if req.Header.Get("Accept") == "" {
		req.Header["Accept"] = acceptJSON
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header["User-Agent"] = userAgent
	}
	req.Header["Content-Type"] = formContentType
	if m == AuthBasic {
		req.Header["Authorization"] = []string{basicAuth(e.ClientID, e.ClientSecret)}
	} else {
		delete(req.Header, "Authorization")
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, &TransportError{Err: redactURLError(err)}
	}
	defer resp.Body.Close()
	body, err := readBody(resp)
	if err != nil {
		return nil, err
	}
	return parseResponse(resp.StatusCode, resp.Header, body, e.secrets(refreshToken))
}

var (
	acceptJSON      = []string{"application/json"}
	userAgent       = []string{DefaultUserAgent}
	formContentType = []string{"application/x-www-form-urlencoded"}
)

func basicAuth(id, secret string) string {
	cred := url.QueryEscape(id) + ":" + url.QueryEscape(secret)
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(cred))
}

// secrets lists the strings that must never appear in an error message.
func (e *Endpoint) secrets(refreshToken string) [2]string {
	return [2]string{refreshToken, e.ClientSecret}
}

// redactURLError keeps the error chain but drops nothing secret: the request URL is the token
// URL, which carries no credentials unless the caller put them there, so only userinfo is cut.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.User != nil {
			ue.URL = u.Redacted()
		}
	}
	return err
}

func readBody(resp *http.Response) ([]byte, error) {
	var buf bytes.Buffer
	if n := resp.ContentLength; n > 0 && n <= MaxResponseBody {
		buf.Grow(int(n))
	}
	_, err := buf.ReadFrom(io.LimitReader(resp.Body, MaxResponseBody+1))
	if err != nil {
		return nil, &TransportError{Err: fmt.Errorf("reading token response: %w", err)}
	}
	if buf.Len() > MaxResponseBody {
		return nil, &UnexpectedResponseError{StatusCode: resp.StatusCode, Header: resp.Header, Body: keep(buf.Bytes()),
			Err: errors.New("body exceeds 1 MiB")}
	}
	return buf.Bytes(), nil
}

// keep returns a copy of at most MaxErrorBody bytes of b, so an error does not pin a large
// buffer.
func keep(b []byte) []byte {
	if len(b) > MaxErrorBody {
		b = b[:MaxErrorBody]
	}
	return bytes.Clone(b)
}

// parseResponse turns a token endpoint response into a validated token response or the typed
// error it stands for. It never panics, whatever the body. secrets are cut out of anything
// that reaches an error message.
func parseResponse(status int, header http.Header, body []byte, secrets [2]string) (*response, error) {
	r := &response{status: status, header: header, body: body}
	unexpected := func(err error) error {
		return &UnexpectedResponseError{StatusCode: status, Header: header, Body: keep(body), Err: err}
	}
	if status >= 300 && status < 400 {
		return nil, unexpected(errors.New("redirect not followed"))
	}
	var code, desc, uri string
	var access, refresh, typ, expires any
	if isForm(header.Get("Content-Type"), body) {
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, unexpected(errors.New("malformed form-encoded body"))
		}
		r.form = vals
		if v, ok := vals["error"]; ok {
			code = v[0]
			desc, uri = vals.Get("error_description"), vals.Get("error_uri")
		}
		access, refresh, typ = formValue(vals, "access_token"), formValue(vals, "refresh_token"), formValue(vals, "token_type")
		expires = formValue(vals, "expires_in")
	} else {
		if err := json.Unmarshal(body, &r.json); err != nil || r.json == nil {
			if status < 200 || status > 299 {
				return nil, unexpected(nil)
			}
			if err == nil {
				err = errors.New("body is not a JSON object")
			}
			return nil, unexpected(fmt.Errorf("decoding JSON: %w", err))
		}
		if c, ok := r.json["error"].(string); ok {
			code = c
			desc, _ = r.json["error_description"].(string)
			uri, _ = r.json["error_uri"].(string)
		}
		access, refresh, typ, expires = r.json["access_token"], r.json["refresh_token"], r.json["token_type"], r.json["expires_in"]
	}
	if code != "" {
		return nil, &RequestError{Code: code, Description: redact(desc, secrets), URI: uri,
			StatusCode: status, Header: header, Body: keep(body)}
	}
	if status < 200 || status > 299 {
		return nil, unexpected(nil)
	}
	var ok bool
	if r.accessToken, ok = access.(string); !ok || r.accessToken == "" {
		return nil, unexpected(errors.New("no access_token in response"))
	}
	if typ != nil {
		if r.tokenType, ok = typ.(string); !ok {
			return nil, unexpected(errors.New("token_type is not a string"))
		}
	}
	if refresh != nil {
		if r.refreshToken, ok = refresh.(string); !ok {
			return nil, unexpected(errors.New("refresh_token is not a string"))
		}
	}
	if r.refreshToken == "" {
		r.refreshToken = secrets[0]
	}
	switch v := expires.(type) {
	case nil:
	case float64:
		if v < 0 || math.IsNaN(v) {
			return nil, unexpected(errors.New("negative expires_in"))
		}
		r.expiresIn = int64(math.Min(v, float64(maxExpiresIn)))
	case string:
		n, err := parseSeconds(v)
		if err != nil {
			return nil, unexpected(err)
		}
		r.expiresIn = min(n, maxExpiresIn)
	default:
		return nil, unexpected(errors.New("expires_in is not a number of seconds"))
	}
	return r, nil
}

// formValue returns the first value of key as an any, or nil when the key is absent.
func formValue(v url.Values, key string) any {
	if s, ok := v[key]; ok && len(s) > 0 {
		return s[0]
	}
	return nil
}

// isForm reports whether a body is form-encoded: its Content-Type says so (GitHub without
// an Accept header) or is text/plain, and it does not look like JSON.
func isForm(contentType string, body []byte) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt != "application/x-www-form-urlencoded" && mt != "text/plain" {
		return false
	}
	b := bytes.TrimSpace(body)
	return len(b) == 0 || b[0] != '{'
}

// redact replaces every occurrence of a non-empty secret in s.
func redact(s string, secrets [2]string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}

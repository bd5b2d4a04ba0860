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
	// AuthBasic sends the client id and secret in an HTTP Basic Authorization header, each
	// form-encoded first (RFC 6749 §2.3.1), and no client_id in the body
	// (client_secret_basic). It is the zero value and the default.
	AuthBasic AuthMethod = iota
	// AuthRequestBody sends client_id and client_secret as form fields (client_secret_post).
	// An empty secret is left out, as RFC 6749 §2.3.1 allows.
	AuthRequestBody
	// AuthNone is for public clients: client_id in the body, no secret anywhere.
	AuthNone
	// AuthAutoDetect tries AuthBasic, and AuthRequestBody only when the answer shows that the
	// server did not judge the grant: HTTP 400 or 401 without invalid_grant or invalid_scope
	// (nor GitHub's bad_refresh_token), or invalid_client, unauthorized_client or GitHub's
	// incorrect_client_credentials at any status. Never after invalid_grant, a 5xx or a network
	// failure: the first attempt may have spent the refresh token. What worked is remembered per
	// token URL and client id for the life of the process and tried first; should it be
	// rejected later, the other method is tried once and remembered instead. When both fail,
	// the error wraps both. It stands for x/oauth2's AuthStyleAutoDetect, without its re-send
	// after every error.
	//
	// A DPoP nonce challenge (use_dpop_nonce, RFC 9449 §8) says nothing of the client's
	// credentials, and never makes it try the other method: the request is sent again with the
	// server's nonce the same way (see Endpoint.DPoP), and after two challenges in a row once
	// more, at most four requests before the other method is tried, if the credentials are
	// refused then.
	AuthAutoDetect
	// AuthPrivateKeyJWT authenticates each request with a JWT signed with the client's private
	// key (private_key_jwt, RFC 7523 §2.2, OpenID Connect Core §9): client_id,
	// client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer and a
	// client_assertion made by Endpoint.Assertion (a JWTAssertion, an AssertionFile, an
	// AssertionFunc) for that request alone, in the body; never the client secret.
	AuthPrivateKeyJWT
	// AuthClientSecretJWT is AuthPrivateKeyJWT with an assertion signed HS256 with the client
	// secret (client_secret_jwt, OpenID Connect Core §9), made for each request with the
	// claims of a JWTAssertion (aud the token URL, a two-minute lifetime) unless
	// Endpoint.Assertion is set. The secret itself is never sent. RFC 7518 §3.2 wants an HS256
	// key of at least 256 bits: a ClientSecret shorter than 32 bytes is refused with
	// ErrInvalidEndpoint, and nothing is sent.
	AuthClientSecretJWT
	// AuthTLSClient is mutual TLS client authentication (RFC 8705 §2): client_id in the body,
	// no secret, and the client's certificate in the TLS handshake. It stands for both
	// tls_client_auth (a certificate from a CA, RFC 8705 §2.1) and self_signed_tls_client_auth
	// (§2.2), which look the same on the wire. The certificate comes from the HTTP client of
	// the Endpoint (see HTTPClient), for instance an *http.Transport whose
	// TLSClientConfig.Certificates holds it.
	//
	// The certificate goes to every server its client connects to. A client put in the
	// context under oauth2.HTTPClient serves the token endpoint and, through NewClient, the
	// API requests too: the API's host and any host an API redirect leads to are then shown
	// the certificate (never the token of another host: see Transport). To keep it to the
	// token endpoint, set its client as Endpoint.HTTPClient and put a client without it in
	// the context. A server that binds access tokens to the certificate (RFC 8705 §3) accepts
	// them only over a connection made with the same certificate: give NewClient, in the
	// context, a client whose RoundTripper uses the certificate's transport for the API's
	// host alone.
	AuthTLSClient
)

// authNames are the names String returns.
var authNames = [...]string{"client_secret_basic", "client_secret_post", "none", "auto",
	"private_key_jwt", "client_secret_jwt", "tls_client_auth"}

// String returns the RFC 7591 token_endpoint_auth_method name of m ("client_secret_basic",
// "client_secret_post", "none", "private_key_jwt", "client_secret_jwt", "tls_client_auth")
// or "auto".
func (m AuthMethod) String() string {
	if m >= 0 && int(m) < len(authNames) {
		return authNames[m]
	}
	return "AuthMethod(" + strconv.Itoa(int(m)) + ")"
}

// defaultTimeout bounds a token or revocation request when the caller's context has no
// deadline, the Endpoint's Timeout is zero and its HTTP client has no Timeout of its own.
const defaultTimeout = 30 * time.Second

// userAgent is sent unless Endpoint.Header sets one: some providers (GitHub) reject requests
// without one.
const userAgent = "oauth2refresh (+https://github.com/tokenkit/oauth2refresh)"

// Errors for an Endpoint or a call that cannot work; no request is sent.
var (
	// ErrNoRefreshToken: there is no refresh token to send.
	ErrNoRefreshToken = errors.New("oauth2refresh: no refresh token")
	// ErrInvalidEndpoint: the Endpoint's TokenURL, RevocationURL or AuthMethod is unusable,
	// such as a plain http:// URL to a host that is not a loopback address while
	// Endpoint.AllowInsecureHTTP is false. It comes wrapped, with the reason.
	ErrInvalidEndpoint = errors.New("oauth2refresh: invalid endpoint")
)

// Endpoint is an OAuth 2.0 token endpoint and the client credentials to use there: everything
// needed to perform the refresh_token grant (RFC 6749 §6), the client_credentials grant
// (ClientCredentials) and token exchange (TokenExchange), and with RevocationURL to revoke
// tokens (RFC 7009). Its zero fields are documented and useful; set the fields before the
// first use and do not change them afterwards. An Endpoint may be used by any number of
// goroutines, and copied.
type Endpoint struct {
	// TokenURL is the token endpoint. It must be https://, or http:// to a loopback host
	// (an IP address in 127.0.0.0/8, ::1, or the name localhost itself), unless
	// AllowInsecureHTTP is set.
	TokenURL string

	// RevocationURL is the token revocation endpoint (RFC 7009 §2), for Revoke; empty means
	// none. The rules of TokenURL apply to it.
	RevocationURL string

	// ClientID and ClientSecret are the client's credentials. The secret is empty for
	// public clients.
	ClientID     string
	ClientSecret string

	// AuthMethod says where the credentials go. The zero value is AuthBasic.
	AuthMethod AuthMethod

	// Assertion makes the client assertion of each token request (RFC 7523 §2.2) for
	// AuthPrivateKeyJWT, which needs it, and AuthClientSecretJWT, for which nil means an HS256
	// JWT signed with ClientSecret. It is called for every request, never cached. With any
	// other AuthMethod it must be nil.
	Assertion ClientAssertion

	// Scopes, when not empty, are sent space-separated as the "scope" parameter to ask for a
	// token with these scopes (RFC 6749 §6, §4.4.2). Empty means no scope parameter: the
	// server then grants the scopes of the original grant (or, for ClientCredentials, those
	// it registered for the client).
	Scopes []string

	// Params are extra form parameters sent with every token request, for providers that
	// want them (GitLab's redirect_uri, Entra v1's resource, RFC 8707's resource). Keys set by this package (grant_type,
	// refresh_token, scope, client_id, client_secret, client_assertion,
	// client_assertion_type) are ignored here: they cannot be overridden.
	Params url.Values

	// Header holds extra request headers. It may override User-Agent and Accept; the
	// Content-Type, Authorization and DPoP headers are always those of this package, and are
	// ignored here.
	Header http.Header

	// HTTPClient sends the request. Nil means the client stored in the context under
	// oauth2.HTTPClient, as golang.org/x/oauth2 does, else http.DefaultClient. A request of
	// the Endpoint is one exchange through the client's Transport, bounded by its Timeout:
	// its CheckRedirect and Jar play no part, no redirect is followed, and a 3xx answer is an
	// *UnexpectedResponseError. For AuthTLSClient it is where to put the client certificate
	// to keep it to the token endpoint (see AuthTLSClient).
	HTTPClient *http.Client

	// Timeout bounds each token or revocation request when the context has no deadline and
	// the HTTP client no Timeout. Zero means 30 s; negative means no bound.
	Timeout time.Duration

	// DPoP, when set, binds the tokens to a key of the client (RFC 9449; see DPoPKey): every
	// request of the Endpoint carries a DPoP proof, a token request refused with
	// use_dpop_nonce is sent once more with the server's nonce, and a token of type DPoP
	// records the key's thumbprint as its "dpop_jkt" Extra member, which the stored-token
	// format keeps. Such a token works only through a Transport (or NewClient) of a
	// TokenSource of this Endpoint, which sends the proofs: golang.org/x/oauth2's Transport
	// (oauth2.NewClient) sends "Authorization: DPoP <token>" without a proof, which the
	// resource server refuses. Nil means no DPoP: tokens are bearer tokens.
	DPoP *DPoPKey

	// AllowInsecureHTTP permits an http:// TokenURL or RevocationURL to a host that is not a
	// loopback address. Leave it false: the secret and the tokens would cross the network in
	// clear text.
	AllowInsecureHTTP bool
}

// Refresh performs one refresh_token grant (RFC 6749 §6) and returns the new token, without
// caching (see TokenSource). If the server sends no new refresh token, the token carries
// refreshToken. Expiry is set from expires_in, capped at 2^31-1 seconds as golang.org/x/oauth2
// caps it. Every member of the response is available through the token's Extra method, and
// "refresh_expiry" when it has a refresh_token_expires_in (see RefreshTokenExpiry).
//
// A success is never turned into an error by a member that cannot be read: that would throw
// away the new access token and the rotated refresh token, and lose the grant on a server that
// rotates refresh tokens (the one sent is spent). An expires_in that is not a non-negative
// number of seconds (a JSON number or a numeric string), a token_type that is not a string
// (Type then says "Bearer"), and a number beyond the range of a float64 anywhere in the body
// (nil in Extra) are treated as absent. A refresh_token that is not a string is an
// *UnexpectedResponseError: there is no refresh token in it to keep.
//
// Errors: *RequestError for an RFC 6749 §5.2 error response, *UnexpectedResponseError for any
// other response that is not a token, *TransportError when no response came; ErrNoRefreshToken,
// ErrInvalidEndpoint (wrapped) or the error of the Endpoint's ClientAssertion (wrapped) when
// nothing was sent.
func (e *Endpoint) Refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	return e.refresh(ctx, refreshToken, time.Now)
}

// refresh is Refresh with the clock that stamps the token's Expiry: the TokenSource passes its
// own (see WithClock), so that Expiry is set once, in response.go, and never overwritten.
func (e *Endpoint) refresh(ctx context.Context, refreshToken string, now func() time.Time) (*oauth2.Token, error) {
	return e.exchange(ctx, refreshToken, now, nil)
}

// RefreshAccessToken performs one refresh_token grant like Endpoint.Refresh and decodes the
// response into a T, typically a struct that embeds TokenResponse; a form-encoded response as
// if its values were JSON strings. A T is only ever decoded from a success, with an
// access_token. When T embeds TokenResponse (or is one, or a pointer to either) and the server
// sent no refresh token, RefreshToken is set to the one that was sent.
//
// A token response that does not decode into T (say an int field for
// "refresh_token_expires_in":"7776000") is an *UnexpectedResponseError whose Token field holds
// the token, as Refresh would have returned it. The grant succeeded: save Token.RefreshToken,
// for on a server that rotates refresh tokens it may be the only copy of the new one.
//
// The leniency of Refresh holds here too: TokenResponse.ExpiresIn (a Seconds) decodes an
// unreadable expires_in as zero, and a body that does not decode into T while it holds members
// that Refresh treats as absent is decoded again without them.
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
// judging the grant, so that the refresh token may be sent again (see AuthAutoDetect).
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
// says, and hands what comes back to r.read.
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

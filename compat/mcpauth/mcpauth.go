package mcpauth

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/compat"
)

// Config says how the token sources of an MCP client's auth.AuthorizationCodeHandler refresh
// and keep their grant. Its methods NewTokenSource and InitialTokenSource are the handler
// config's fields of the same names. A Config is not modified by its methods and may be
// shared; it must not be changed while they run.
type Config struct {
	// Resource is the canonical URI of the MCP server (RFC 8707 §2, and the MCP authorization
	// spec's "canonical server URI"), the one the SDK sends as "resource" when it authorizes:
	// the URL of the MCP endpoint, as its protected resource metadata names it. Every refresh
	// sends it as the only "resource" parameter, whatever Endpoint.Params holds. It must be an
	// absolute URI without a fragment; its scheme and host are sent in lower case. Required.
	// The SDK does not tell NewTokenSource which resource it authorized for: a Resource that
	// is not that one gets every refresh refused (invalid_target, an *oauth2refresh.RequestError).
	Resource string

	// Endpoint holds what the SDK's oauth2.Config cannot say: HTTPClient, Timeout, Header, DPoP
	// and other Params. NewTokenSource takes the token URL and client credentials from the
	// oauth2.Config the SDK exchanged the code with; when Endpoint.TokenURL or ClientID are set
	// they must agree with it (an error otherwise: the grant would be refreshed elsewhere after
	// a restart). InitialTokenSource, which has no oauth2.Config, needs them set: the client's
	// registration (pre-registered, or a client ID metadata document URL; with dynamic client
	// registration, the one the program persisted).
	//
	// A client without a ClientSecret is a public client (token_endpoint_auth_method "none"):
	// unless AuthMethod names an assertion or TLS method, it sends its client_id in the body
	// and no Authorization header, where golang.org/x/oauth2 would try HTTP Basic first.
	//
	// A nil HTTPClient means, for NewTokenSource, the SDK's (the handler config's Client),
	// and for InitialTokenSource the one in its ctx under oauth2.HTTPClient, else
	// http.DefaultClient: set it to the handler's Client when that is not the default.
	Endpoint oauth2refresh.Endpoint

	// Store keeps the grant, under Key, for restarts and for other processes: the token of
	// each new authorization is saved to it (reviving a grant that died), every rotated
	// refresh token is saved before its access token is used, and the TokenSources of every
	// process sharing it refresh one at a time (see oauth2refresh.WithStore). Nil keeps the
	// grant in memory only, as the SDK does: each start then authorizes again.
	Store oauth2refresh.Store

	// Key names the grant in Store. Empty means the canonical Resource: one grant per MCP
	// server, so that several users or clients of one server need a Key each.
	Key string

	// Options are more options of the TokenSources (ExpiryMargin, EarlyRefresh, OnNewToken,
	// WithEvents, ...). WithStore is set from Store and Key: do not pass it here. OnNewToken
	// is called with every token refreshed or picked up from the Store, not with the token of
	// the code exchange, which NewTokenSource saves to the Store.
	Options []oauth2refresh.Option
}

// NewTokenSource is the SDK's AuthorizationCodeHandlerConfig.NewTokenSource: the SDK calls it
// with the oauth2.Config and token of each authorization code exchange. It saves t to the
// Store, if any (trying twice; if both fail, the error fails the SDK's authorization, which the
// next request starts again), and returns a source that starts with t and refreshes through the Endpoint
// (see Config). ctx carries the SDK's HTTP client under oauth2.HTTPClient, which the refreshes
// use when Endpoint.HTTPClient is nil.
func (c *Config) NewTokenSource(ctx context.Context, cfg *oauth2.Config, t *oauth2.Token) (oauth2.TokenSource, error) {
	if cfg == nil || t == nil {
		return nil, errors.New("oauth2refresh: mcp token source: no oauth2.Config or token")
	}
	from := compat.FromConfig(cfg)
	e := c.Endpoint
	if e.TokenURL != "" && e.TokenURL != from.TokenURL {
		return nil, fmt.Errorf("oauth2refresh: mcp token source: the authorization server's token endpoint %q is not Endpoint.TokenURL %q", from.TokenURL, e.TokenURL)
	}
	if e.ClientID != "" && e.ClientID != from.ClientID {
		return nil, fmt.Errorf("oauth2refresh: mcp token source: the client ID the code was exchanged for, %q, is not Endpoint.ClientID %q", from.ClientID, e.ClientID)
	}
	if e.ClientID == "" {
		// The SDK registered the client: its credentials and how it sent them.
		e.ClientSecret, e.AuthMethod = from.ClientSecret, from.AuthMethod
	}
	e.TokenURL, e.ClientID = from.TokenURL, from.ClientID
	ep, key, err := c.endpoint(e)
	if err != nil {
		return nil, err
	}
	if c.Store != nil {
		// Once more if the store fails once: the grant is lost if it is not saved, since the
		// Store's token, not t, is the one the source would go on with.
		err := oauth2refresh.SaveToken(ctx, c.Store, key, t)
		if err != nil && ctx.Err() == nil {
			err = oauth2refresh.SaveToken(ctx, c.Store, key, t)
		}
		if err != nil {
			return nil, fmt.Errorf("oauth2refresh: mcp token source: saving the new grant: %w", err)
		}
	}
	return c.source(ctx, ep, key, t), nil
}

// InitialTokenSource returns the handler config's InitialTokenSource: a source of the grant
// stored in Store under Key, which refreshes through the Endpoint (see Config), or nil when
// there is none to resume (no Store, nothing stored, or a grant that died), so that the SDK
// authorizes at the first request. Its error is the Store's, or a Config that cannot work.
func (c *Config) InitialTokenSource(ctx context.Context) (oauth2.TokenSource, error) {
	if c.Endpoint.TokenURL == "" || c.Endpoint.ClientID == "" {
		return nil, errors.New("oauth2refresh: mcp token source: InitialTokenSource needs Endpoint.TokenURL and Endpoint.ClientID")
	}
	ep, key, err := c.endpoint(c.Endpoint)
	if err != nil || c.Store == nil {
		return nil, err
	}
	t, err := c.Store.Load(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("oauth2refresh: mcp token source: loading the grant: %w", err)
	}
	if t == nil || t.RefreshToken == "" {
		// Nothing stored, or a dead mark: the handler must authorize.
		return nil, nil
	}
	// A nil token: the source loads the grant's newest token from the Store itself.
	return c.source(ctx, ep, key, nil), nil
}

// endpoint returns e completed for an MCP server (one canonical resource, a public client's
// method) and the grant's key.
func (c *Config) endpoint(e oauth2refresh.Endpoint) (*oauth2refresh.Endpoint, string, error) {
	res, err := canonicalResource(c.Resource)
	if err != nil {
		return nil, "", err
	}
	params := url.Values{}
	for k, v := range e.Params {
		params[k] = append([]string(nil), v...)
	}
	params["resource"] = []string{res}
	e.Params = params
	if e.ClientSecret == "" && e.Assertion == nil &&
		(e.AuthMethod == oauth2refresh.AuthBasic || e.AuthMethod == oauth2refresh.AuthAutoDetect ||
			e.AuthMethod == oauth2refresh.AuthRequestBody) {
		e.AuthMethod = oauth2refresh.AuthNone
	}
	key := c.Key
	if key == "" {
		key = res
	}
	return &e, key, nil
}

// source returns the TokenSource of the grant, wrapped for the SDK.
func (c *Config) source(ctx context.Context, ep *oauth2refresh.Endpoint, key string, t *oauth2.Token) oauth2.TokenSource {
	var opts []oauth2refresh.Option
	if c.Store != nil {
		opts = append(opts, oauth2refresh.WithStore(c.Store, key))
	}
	opts = append(opts, c.Options...)
	return &source{ts: ep.TokenSource(ctx, t, opts...)}
}

// canonicalResource returns the canonical form of the MCP server URI s: an absolute URI
// without a fragment, its scheme and host in lower case (RFC 8707 §2; RFC 3986 §6.2.2.1).
func canonicalResource(s string) (string, error) {
	u, err := url.Parse(s)
	switch {
	case s == "":
		return "", errors.New("oauth2refresh: mcp token source: Resource (the MCP server's URI) is empty")
	case err != nil:
		return "", fmt.Errorf("oauth2refresh: mcp token source: Resource is not a URI: %w", err)
	case u.Scheme == "" || u.Host == "":
		return "", fmt.Errorf("oauth2refresh: mcp token source: Resource %q is not an absolute URI", s)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return "", fmt.Errorf("oauth2refresh: mcp token source: Resource %q has a fragment (RFC 8707 §2)", s)
	}
	u.Scheme, u.Host = strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	return u.String(), nil
}

// source is the oauth2.TokenSource given to the SDK. A grant that died reaches the SDK as an
// invalid_grant *oauth2.RetrieveError, the one error on which its transport sends the request
// without a token, gets the 401, and authorizes again: oauth2refresh's errors say invalid_grant
// that way only when the server's refusal is their cause, not when the grant was found dead in
// the Store (another process got the refusal) or its refresh token known to have expired.
type source struct{ ts *oauth2refresh.TokenSource }

func (s *source) Token() (*oauth2.Token, error) {
	t, err := s.ts.Token()
	if err != nil && errors.Is(err, oauth2refresh.ErrInvalidGrant) {
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			err = &deadError{err}
		}
	}
	return t, err
}

// deadError is an error of a dead grant that also reads as an invalid_grant
// *oauth2.RetrieveError.
type deadError struct{ err error }

func (e *deadError) Error() string { return e.err.Error() }
func (e *deadError) Unwrap() error { return e.err }

// As fills a **oauth2.RetrieveError target with the code invalid_grant.
func (e *deadError) As(target any) bool {
	p, ok := target.(**oauth2.RetrieveError)
	if ok {
		*p = &oauth2.RetrieveError{ErrorCode: "invalid_grant", ErrorDescription: "the grant is dead: it must be authorized again"}
	}
	return ok
}

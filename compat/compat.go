package compat

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenkit/oauth2refresh"
)

// FromConfig returns an Endpoint for the token URL, client credentials and AuthStyle of c, so
// that refreshes go over the wire as golang.org/x/oauth2 sends them for c.
//
// AuthStyle maps as follows:
//
//	oauth2.AuthStyleInHeader   -> oauth2refresh.AuthBasic
//	oauth2.AuthStyleInParams   -> oauth2refresh.AuthRequestBody, or oauth2refresh.AuthNone when
//	                              c.ClientSecret is empty (x/oauth2 then sends client_id alone)
//	oauth2.AuthStyleAutoDetect -> oauth2refresh.AuthAutoDetect
//
// The Endpoint's Scopes are left empty even when c.Scopes is not: x/oauth2 sends no scope
// parameter on a refresh, and the server then grants the scopes of the original grant. Sending
// c.Scopes instead could narrow a grant made with incremental authorization, or be refused
// with invalid_scope. Set Scopes on the returned Endpoint to ask for a token with particular
// scopes (RFC 6749 §6).
//
// c.RedirectURL is not copied: it plays no part in a refresh for x/oauth2. A provider that
// wants it on refresh (GitLab) gets it through the Endpoint's Params.
//
// The returned Endpoint has a nil HTTPClient, so it uses the client stored in the context
// under oauth2.HTTPClient, as x/oauth2 does, and it keeps the Endpoint's defaults where they
// differ from x/oauth2 (see the package doc): a plain http:// token URL to a host that is not
// a loopback address is refused unless AllowInsecureHTTP is set, and a token request without
// a deadline is bounded by 30 s (the default of Endpoint.Timeout).
func FromConfig(c *oauth2.Config) *oauth2refresh.Endpoint {
	e := &oauth2refresh.Endpoint{
		TokenURL:     c.Endpoint.TokenURL,
		ClientID:     c.ClientID,
		ClientSecret: c.ClientSecret,
	}
	switch c.Endpoint.AuthStyle {
	case oauth2.AuthStyleInHeader:
		e.AuthMethod = oauth2refresh.AuthBasic
	case oauth2.AuthStyleInParams:
		e.AuthMethod = oauth2refresh.AuthRequestBody
		if c.ClientSecret == "" {
			e.AuthMethod = oauth2refresh.AuthNone
		}
	default: // oauth2.AuthStyleAutoDetect; an unknown value, for which x/oauth2 sends no credentials, too
		e.AuthMethod = oauth2refresh.AuthAutoDetect
	}
	return e
}

// TokenSource is the drop-in for c.TokenSource(ctx, t): it returns a source that starts with t
// and refreshes it through FromConfig(c). It is an oauth2.TokenSource whose errors are those
// of x/oauth2 (see Source), and also has TokenContext and Invalidate; opts are its
// Options (OnNewToken to persist rotated tokens, EarlyRefresh, ExpiryMargin, Backoff).
//
// As with x/oauth2, refreshes use the *http.Client stored in ctx under oauth2.HTTPClient, or
// http.DefaultClient. Unlike x/oauth2, ctx's cancellation and deadline are ignored: a source
// made with a request's context keeps working after that request ends (golang/oauth2#388).
// c is read once: later changes to it do not affect the source.
func TokenSource(ctx context.Context, c *oauth2.Config, t *oauth2.Token, opts ...oauth2refresh.Option) *Source {
	return &Source{FromConfig(c).TokenSource(ctx, t, opts...)}
}

// Source is the source TokenSource returns: the *oauth2refresh.TokenSource it embeds (whose
// Invalidate and the rest it has), whose Token and TokenContext return the errors
// golang.org/x/oauth2 returns. Where x/oauth2 returns a *oauth2.RetrieveError (the token
// endpoint answered with an error status, or with an RFC 6749 §5.2 error object at any
// status), so does Source: the error itself, not one wrapping it, so that code asserting
// err.(*oauth2.RetrieveError) keeps working. Its fields are filled as x/oauth2 fills them,
// with the secrets cut out (the client secret, the refresh token sent, tokens the server
// echoed), and its text, as x/oauth2's, quotes the body so redacted. Other errors (no answer,
// a canceled context, OnNewToken) are those of oauth2refresh.
//
// A *oauth2.RetrieveError wraps nothing: errors.Is(err, oauth2refresh.ErrInvalidGrant) and
// errors.As with *oauth2refresh.RequestError need the core API, the embedded TokenSource
// (s.TokenSource.TokenContext), or compare RetrieveError.ErrorCode as code written for
// x/oauth2 does.
type Source struct {
	*oauth2refresh.TokenSource
}

// Token returns a valid token, refreshing it if needed; see Source for its errors.
func (s *Source) Token() (*oauth2.Token, error) { return s.TokenContext(context.Background()) }

// TokenContext is the embedded TokenSource's TokenContext; see Source for its errors.
func (s *Source) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	t, err := s.TokenSource.TokenContext(ctx)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return nil, re
		}
		return nil, err
	}
	return t, nil
}

// Client is the drop-in for c.Client(ctx, t): oauth2refresh.NewClient(ctx,
// TokenSource(ctx, c, t, opts...)), an *http.Client that authorizes every request with a token
// from the source through an oauth2refresh.Transport, which also refreshes once and retries a
// replayable request when the resource server answers 401.
//
// Like oauth2.NewClient, it builds on the client stored in ctx under oauth2.HTTPClient, if
// any: its Transport, CheckRedirect, Jar and Timeout are kept. Unlike oauth2.NewClient, it
// does not put an oauth2.ReuseTokenSource in front of the source, whose own cache would only
// ask the source for a new token 10 s before expiry (defeating EarlyRefresh) and would keep
// serving a token after Invalidate. For a source you already have, call
// oauth2refresh.NewClient(ctx, ts).
func Client(ctx context.Context, c *oauth2.Config, t *oauth2.Token, opts ...oauth2refresh.Option) *http.Client {
	return oauth2refresh.NewClient(ctx, TokenSource(ctx, c, t, opts...))
}

// ClientCredentials is the drop-in for c.TokenSource(ctx) of golang.org/x/oauth2's
// clientcredentials package: a source of the client_credentials grant (see
// oauth2refresh.Endpoint.ClientCredentials) that sends what x/oauth2 sends for c. c.TokenURL,
// c.ClientID and c.ClientSecret are the Endpoint's, c.AuthStyle maps as for FromConfig,
// c.Scopes are sent space-separated as scope, and c.EndpointParams as extra parameters
// (RFC 8707's resource, audience). opts are its Options: WithStore to share one token between
// the processes of a fleet, EarlyRefresh, WithEvents, ...
//
// Where it differs from x/oauth2: concurrent callers share one request, not wait in turn for
// theirs; failures back off; a refresh_token in the response is dropped (RFC 6749 §4.4.3; the
// grant never uses one); and in c.EndpointParams a key that x/oauth2 would refuse to
// overwrite (scope, client_id, client_secret, ...) or grant_type, which x/oauth2 sends in place
// of client_credentials, is ignored. As with x/oauth2, token requests use the *http.Client
// stored in ctx under oauth2.HTTPClient; unlike it, ctx's cancellation is ignored. c is read
// once. Its errors are x/oauth2's, as Source says. For an *http.Client, as c.Client(ctx)
// gives, call ClientCredentialsClient.
func ClientCredentials(ctx context.Context, c *clientcredentials.Config, opts ...oauth2refresh.Option) *Source {
	e := FromConfig(&oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret,
		Endpoint: oauth2.Endpoint{TokenURL: c.TokenURL, AuthStyle: c.AuthStyle}})
	e.Scopes = slices.Clone(c.Scopes)
	if len(c.EndpointParams) > 0 {
		e.Params = make(url.Values, len(c.EndpointParams))
		for k, v := range c.EndpointParams {
			e.Params[k] = slices.Clone(v)
		}
	}
	return &Source{e.ClientCredentials(ctx, opts...)}
}

// ClientCredentialsClient is the drop-in for c.Client(ctx) of golang.org/x/oauth2's
// clientcredentials package: oauth2refresh.NewClient(ctx, ClientCredentials(ctx, c, opts...)),
// an *http.Client that authorizes every request with the client's token and, when the
// resource server answers 401, obtains a new one once and retries a replayable request. Like
// c.Client, it builds on the client stored in ctx under oauth2.HTTPClient, if any.
func ClientCredentialsClient(ctx context.Context, c *clientcredentials.Config, opts ...oauth2refresh.Option) *http.Client {
	return oauth2refresh.NewClient(ctx, ClientCredentials(ctx, c, opts...))
}

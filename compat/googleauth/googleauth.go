// Package googleauth plugs an oauth2refresh.TokenSource, or a grant of an oauth2refresh.Manager,
// into Google's client libraries: the generated clients of google.golang.org/api and the
// Cloud clients built on cloud.google.com/go/auth. It lives in its own module so that the
// core module depends on golang.org/x/oauth2 alone.
//
// There are three ways in, from the most to the least faithful to the TokenSource:
//
//	svc, err := tasks.NewService(ctx, googleauth.ClientOption(ts))
//	svc, err := tasks.NewService(ctx, option.WithAuthCredentials(auth.NewCredentials(
//		&auth.CredentialsOptions{TokenProvider: googleauth.TokenProvider(ts)})))
//	svc, err := tasks.NewService(ctx, option.WithTokenSource(ts))
//
// All three authorize every request with the source's current access token and pick up its
// refreshes. They differ in what reaches the source:
//
//   - option.WithTokenSource goes through oauth2adapt.TokenProviderFromTokenSource, which calls
//     Token() and so drops the request's context: a caller whose request is canceled still
//     waits for a refresh in progress. A failed refresh reaches the caller as an *auth.Error
//     wrapping a *oauth2.RetrieveError only: errors.Is(err, oauth2refresh.ErrInvalidGrant) and
//     errors.As with *oauth2refresh.RequestError no longer hold.
//   - TokenProvider calls TokenContext with the request's context, and its errors satisfy
//     errors.As with *auth.Error and *oauth2.RetrieveError as well as the typed errors and
//     sentinels of oauth2refresh. Like the first, it sits behind the cache that
//     cloud.google.com/go/auth puts in front of every TokenProvider, which keeps its own copy
//     of the token and asks the source again only in the last 3m45s of the copy's life (in
//     the background, with context.Background(), and not again after one such call failed)
//     or once it has expired: an EarlyRefresh window longer than that is not used, and a token
//     dropped with TokenSource.Invalidate keeps being sent until then.
//   - Credentials and ClientOption give that cache nothing to keep: every request asks the
//     source, whose hot path is lock-free and allocation-free, so EarlyRefresh and Invalidate
//     work as documented. The cache still takes a mutex around each call; while the source
//     waits for a refresh (it holds no valid token), other requests queue on that mutex and
//     cannot give up before the waiting call returns.
//
// ClientOption, Credentials and TokenProvider take a Source: an *oauth2refresh.TokenSource, or
// an oauth2refresh.Grant, which asks its Manager for the grant's TokenSource at each call and
// so does not keep the grant in memory:
//
//	svc, err := tasks.NewService(ctx, googleauth.ClientOption(manager.Grant(tenantID)))
package googleauth

import (
	"context"
	"errors"
	"time"

	"cloud.google.com/go/auth"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"

	"github.com/tokenkit/oauth2refresh"
)

// Source is what the functions of this package take tokens from: an
// *oauth2refresh.TokenSource or an oauth2refresh.Grant. Tokens it returns are not modified.
type Source interface {
	TokenContext(ctx context.Context) (*oauth2.Token, error)
}

// TokenProvider returns an auth.TokenProvider that takes its tokens from ts through
// TokenContext, passing on the caller's context, unlike oauth2adapt.TokenProviderFromTokenSource.
//
// The auth.Token it returns holds the access token, its type ("Bearer" unless the server
// said otherwise) and its expiry. Its Metadata is left empty: the refresh token, and whatever
// else the token response held, stay with ts.
//
// When a refresh failed with a response from the token endpoint (an
// *oauth2refresh.RequestError, or an *oauth2refresh.UnexpectedResponseError with an error
// status), the error returned satisfies errors.As with an *auth.Error target, whose Response
// holds the status and headers and Body the start of the body, as
// oauth2adapt.AuthErrorFromRetrieveError fills it; and its Err is the oauth2refresh error, so
// errors.Is with oauth2refresh.ErrInvalidGrant and errors.As with *oauth2.RetrieveError also
// hold. Its text is the oauth2refresh error's, which never quotes the body (an *auth.Error's
// text would). Other errors (no response, a canceled context, a failing OnNewToken hook) are
// returned as they are.
func TokenProvider(ts Source) auth.TokenProvider {
	return &provider{ts: ts}
}

// Credentials returns credentials for option.WithAuthCredentials, or for any Cloud client that
// takes *auth.Credentials, whose TokenProvider is TokenProvider(ts) behind a cache that always
// asks ts: see the package doc for why.
func Credentials(ts Source) *auth.Credentials {
	tp := auth.NewCachedTokenProvider(&provider{ts: ts, alwaysAsk: true}, &auth.CachedTokenProviderOptions{
		// cloud.google.com/go/auth's transports wrap every TokenProvider in this cache unless
		// it already is one. With these options its copy of the token is never fresh enough
		// to be used, so every call goes to ts.
		ExpireEarly:         alwaysStale,
		DisableAsyncRefresh: true,
	})
	return auth.NewCredentials(&auth.CredentialsOptions{TokenProvider: tp})
}

// ClientOption returns option.WithAuthCredentials(Credentials(ts)), for the generated clients
// of google.golang.org/api:
//
//	svc, err := tasks.NewService(ctx, googleauth.ClientOption(ts))
func ClientOption(ts Source) option.ClientOption {
	return option.WithAuthCredentials(Credentials(ts))
}

// alwaysStale is an ExpireEarly longer than any token's life (about 146 years).
const alwaysStale = time.Duration(1 << 62)

// noExpiry stands for "no expiry" in the tokens that Credentials' cache sees: within
// alwaysStale of now, so that the cache also asks ts about a token without expiry (which
// Invalidate may have replaced), yet later than any real expiry.
var noExpiry = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)

type provider struct {
	ts        Source
	alwaysAsk bool // set by Credentials: report noExpiry for a token without expiry
}

// Token implements auth.TokenProvider.
func (p *provider) Token(ctx context.Context) (*auth.Token, error) {
	tok, err := p.ts.TokenContext(ctx)
	if err != nil {
		return nil, authError(err)
	}
	exp := tok.Expiry
	if exp.IsZero() && p.alwaysAsk {
		exp = noExpiry
	}
	return &auth.Token{Value: tok.AccessToken, Type: tok.Type(), Expiry: exp}, nil
}

// authError puts an *auth.Error in the chain of err when err is a response from the token
// endpoint, as oauth2adapt does for an *oauth2.RetrieveError.
func authError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return err
	}
	return &tokenError{err: err, auth: &auth.Error{Response: re.Response, Body: re.Body, Err: err}}
}

// tokenError is a failed refresh seen through cloud.google.com/go/auth's eyes. It unwraps to
// an *auth.Error, which unwraps to err. It exists so that the message stays err's: an
// *auth.Error made outside its package can only describe itself with the whole response body.
type tokenError struct {
	err  error
	auth *auth.Error
}

func (e *tokenError) Error() string { return e.err.Error() }

// Unwrap returns the *auth.Error, whose Err is the oauth2refresh error.
func (e *tokenError) Unwrap() error { return e.auth }

// Temporary reports what oauth2refresh.IsTemporary says of the error, so that a caller asking
// the chain for a Temporary method, as users of cloud.google.com/go/auth do, gets that answer
// rather than *auth.Error's (whose Temporary ignores 502 and 504).
func (e *tokenError) Temporary() bool { return oauth2refresh.IsTemporary(e.err) }

package oauth2refresh

// revoke.go is token revocation (RFC 7009): the request goes out through endpoint.go's
// request builder, with the client authentication of a refresh, and a refused one comes back
// as the typed errors that response.go builds.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Revoke asks the server to revoke t (RFC 7009): t.RefreshToken, hinted refresh_token, which
// ends the grant, or t.AccessToken, hinted access_token, when t has no refresh token. It posts
// to RevocationURL with the client authentication of Refresh, without Scopes or Params. Any
// 2xx is a success, also for a token already invalid: revoking twice succeeds.
//
// Errors are those of Refresh, wrapped: reach them with errors.As or IsTemporary.
// ErrNoRefreshToken when t holds no token, ErrInvalidEndpoint when RevocationURL is empty.
func (e *Endpoint) Revoke(ctx context.Context, t *oauth2.Token) error {
	var token, hint string
	switch {
	case t != nil && t.RefreshToken != "":
		token, hint = t.RefreshToken, "refresh_token"
	case t != nil && t.AccessToken != "":
		token, hint = t.AccessToken, "access_token"
	default:
		return fmt.Errorf("%w nor access token to revoke", ErrNoRefreshToken)
	}
	if e.RevocationURL == "" {
		return fmt.Errorf("%w: no RevocationURL", ErrInvalidEndpoint)
	}
	form := url.Values{"token": {token}, "token_type_hint": {hint}}
	_, err := e.authenticated(ctx, form, request{url: e.RevocationURL, name: "revocation URL", secret: token,
		read: readRevocation}, time.Now)
	return err
}

// readRevocation makes nothing of a 2xx answer to a revocation request, and of anything else
// the error readResponse makes of it, which always fails when the status is not 2xx.
//
// The server answers 200 alike when it revoked the token and when the token was invalid,
// expired or unknown already (RFC 7009 §2.2), so any 2xx is a success, whatever its body. An
// error response (RFC 7009 §2.2.1, RFC 6749 §5.2, such as unsupported_token_type or
// invalid_client) is a *RequestError; any other answer, a redirect included, an
// *UnexpectedResponseError; no answer a *TransportError. The token revoked is cut out of them,
// as a refresh token is.
//
// The request (Endpoint.Revoke) has the client authentication of a refresh: the same
// AuthMethod, Header, HTTPClient, Timeout and URL rules, and for the JWT methods a new client
// assertion whose aud is TokenURL (or JWTAssertion.Audience), which names the authorization
// server at all its endpoints (RFC 7523 §3). With AuthAutoDetect it authenticates the way
// refreshes were last accepted (authCache), else AuthBasic, and falls back once as a refresh
// does: sending a token twice for revocation is harmless. What worked is not remembered
// (request.learn is false): a revocation endpoint may accept other methods than the token
// endpoint.
func readRevocation(s sent, resp *http.Response, err error, now func() time.Time, _ any) (*oauth2.Token, error) {
	if err == nil && resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody)) // lets the connection be reused
		resp.Body.Close()
		return nil, nil
	}
	_, err = readResponse(s, resp, err, now, nil)
	return nil, &revokeError{err}
}

// revokeError is a revocation request that was refused or got no answer. It unwraps to the
// *RequestError, *UnexpectedResponseError or *TransportError that says why.
type revokeError struct{ err error }

func (e *revokeError) Error() string {
	return "oauth2refresh: revoking a token: " + strings.TrimPrefix(e.err.Error(), "oauth2refresh: ")
}

func (e *revokeError) Unwrap() error { return e.err }

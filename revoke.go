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

// Revoke asks the authorization server to revoke t (RFC 7009 §2.1), as an app does when the
// user signs out: t's RefreshToken, with token_type_hint refresh_token, which ends the grant
// (no refresh will work with it again, and a server that supports it also revokes the access
// tokens of the same grant); or, when t has no refresh token, its AccessToken, with
// token_type_hint access_token (the server may revoke the refresh token of the same grant
// with it; fosite does). A server that does not find the token under the hint looks for it
// under the other kinds. Revoke POSTs them to RevocationURL, with the client authentication
// of Refresh: the same AuthMethod, Header, HTTPClient, Timeout and URL rules, and for
// AuthPrivateKeyJWT and AuthClientSecretJWT a new client assertion made as for a token
// request: its aud is TokenURL (or JWTAssertion.Audience), which names the authorization
// server at all its endpoints (RFC 7523 §3). Scopes and Params are not sent.
//
// With AuthAutoDetect, Revoke authenticates the way refreshes at TokenURL were last accepted
// for ClientID, else with AuthBasic, and tries the other way once after the answers that make
// a refresh fall back (see AuthAutoDetect): sending a token twice for revocation is harmless.
// What worked is not remembered, since a revocation endpoint may accept other methods than the
// token endpoint.
//
// Any 2xx answer is a success, whatever its body. The server answers 200 alike when it revoked
// the token and when the token was invalid, expired or unknown already (RFC 7009 §2.2), so
// revoking a token twice succeeds both times.
//
// Errors are those of Refresh, wrapped (reach them with errors.As): a *RequestError for an
// error response (RFC 7009 §2.2.1, RFC 6749 §5.2), such as unsupported_token_type or
// invalid_client (errors.Is(err, ErrInvalidClient)); an *UnexpectedResponseError for any other
// answer, including a redirect, which is never followed; a *TransportError when no answer
// came. IsTemporary reports those worth retrying later, such as HTTP 503. The token sent is cut
// out of them, as a refresh token is. When nothing was sent: an error wrapping
// ErrNoRefreshToken for a nil t or one with neither token; ErrInvalidEndpoint (wrapped) for a
// RevocationURL that is empty or breaks the rules of TokenURL, or an AuthMethod that cannot
// work; or the error of the ClientAssertion (wrapped).
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

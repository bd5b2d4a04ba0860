// Package oauth2refresh is an OAuth 2.0 refresh client that drops into the golang.org/x/oauth2
// ecosystem: it keeps a service's access token fresh from a refresh token, persists rotated
// refresh tokens, sends scopes and provider-specific parameters when asked, never makes a caller
// wait for the network while a valid token exists, and reports every failure as a typed error.
//
// # What it implements
//
//   - RFC 6749 §6, the refresh_token grant: Endpoint.Refresh performs one grant;
//     RefreshAccessToken decodes the response into a caller's type.
//   - RFC 6749 §4.4, the client_credentials grant (Endpoint.ClientCredentials), and RFC 8693,
//     token exchange (Endpoint.TokenExchange): a service's own tokens, from the same
//     TokenSource engine, options, errors and events as its users' refreshed ones.
//   - RFC 6749 §2.3.1, client authentication: HTTP Basic with the id and secret form-encoded
//     first (AuthBasic, the default), credentials in the body (AuthRequestBody), public clients
//     (AuthNone), and AuthAutoDetect, which falls back only after the server rejected the
//     client's credentials, so a refresh token is never sent twice after it may have been spent.
//   - RFC 7523 §2.2 and OpenID Connect Core §9, client assertions: private_key_jwt
//     (AuthPrivateKeyJWT with a JWTAssertion signing RS256, PS256, ES256 or EdDSA, or a token
//     read from a workload identity file by AssertionFile) and client_secret_jwt
//     (AuthClientSecretJWT), a fresh assertion for every token request.
//   - RFC 8705 §2, mutual TLS client authentication (AuthTLSClient), with the certificate
//     configured on the HTTP client.
//   - RFC 9449, DPoP: with Endpoint.DPoP set to a DPoPKey, every token request carries a proof,
//     Transport sends DPoP-bound tokens with a proof per request, nonces are learnt per origin,
//     and WithStore records which key a stored token is bound to.
//   - RFC 6749 §5.1 and §5.2, token and error responses: JSON, or form-encoded as GitHub sends
//     without an Accept header; expires_in as a number or a numeric string; errors returned with
//     HTTP 200 (GitHub, Slack). An error object is a *RequestError, matched with errors.Is
//     against ErrInvalidGrant and the other sentinels; anything else that is not a token is an
//     *UnexpectedResponseError; no response at all is a *TransportError. Both response errors
//     also satisfy errors.As with *oauth2.RetrieveError, as golang.org/x/oauth2 fills it.
//   - RFC 6749 §10.4, refresh token rotation: TokenSource always sends the newest refresh token,
//     never one the server rotated out, and hands every new token to OnNewToken before anyone
//     uses it. A refresh token's expiry, where the server says it (refresh_token_expires_in:
//     GitHub Apps, Microsoft Entra, Auth0), is recorded on receipt (RefreshTokenExpiry) and
//     kept by the stores; past it a TokenSource does not send the refresh token but returns
//     ErrRefreshTokenExpired, which also matches ErrInvalidGrant.
//   - RFC 7009, token revocation: Endpoint.Revoke, with the client authentication of a
//     refresh.
//   - RFC 6750 §3.1: Transport retries a request once with a new token after the resource
//     server answered 401.
//
// # Usage
//
// An Endpoint says where and how to ask; its TokenSource caches the token, refreshes it once for
// all goroutines, and is an oauth2.TokenSource for oauth2.NewClient, oauth2.Transport and
// Google's option.WithTokenSource. NewClient puts it in front of an *http.Client:
//
//	ep := &oauth2refresh.Endpoint{
//		TokenURL:     "https://oauth2.example.com/token",
//		ClientID:     "my-client",
//		ClientSecret: os.Getenv("CLIENT_SECRET"),
//	}
//	ts := ep.TokenSource(ctx, &oauth2.Token{RefreshToken: saved},
//		oauth2refresh.OnNewToken(func(ctx context.Context, t *oauth2.Token) error {
//			return db.SaveRefreshToken(ctx, t.RefreshToken) // rotated tokens are never lost
//		}))
//	client := oauth2refresh.NewClient(ctx, ts) // retries once with a new token after a 401
//	resp, err := client.Get("https://api.example.com/v1/me")
//	if errors.Is(err, oauth2refresh.ErrInvalidGrant) {
//		// the grant is gone: ask the user to sign in again
//	}
//
// Apps written for golang.org/x/oauth2 switch with the compat package:
// compat.TokenSource(ctx, cfg, tok) in place of cfg.TokenSource(ctx, tok).
//
// Processes that share a grant use WithStore (filestore.Store here; Redis and PostgreSQL in their own
// modules). A service holding one grant per user or tenant uses a Manager: a TokenSource, an
// *http.Client and a Google client option per key, made from the Store when used, dropped when
// idle, a dead grant marked in the Store and reported once (ManagerOptions.OnDead), revoked with
// Grant.Revoke. Operators see every refresh through WithEvents (events.Log writes them to log/slog)
// and WithTracer; the module github.com/tokenkit/oauth2refresh/otel turns them into
// OpenTelemetry metrics and spans.
//
// # Errors
//
// The text of Error() is for people and may change in any release: branch on the types,
// fields and sentinels.
//
// Secrets are cut out of the errors of a refresh literally, in linear time. The secrets are
// the client secret, the refresh token, the client assertion and the DPoP proof that were
// sent, with the assertions and proofs of the requests sent before for the same refresh (the
// first request of a DPoP nonce retry, AuthAutoDetect's first way), and the access_token,
// refresh_token and id_token of the response, each when it is at least 4 bytes long. A DPoP
// proof is short-lived and bound to one request, but it is a credential presented to the
// server, which a server that keeps no record of the jti it saw accepts again until it
// expires: it is treated as an assertion is. An assertion and a proof are looked for whole,
// and each of their three JWS parts on its own. Each secret is looked for as it is, escaped by
// url.QueryEscape, by url.PathEscape and by encoding/json with and without HTML escaping, and
// quoted by strconv.Quote (Go's %q) as it is or JSON-escaped; so is the base64 credential of
// the Basic header, with the client id and secret form-encoded as sent or raw, padded or not.
// Every occurrence is replaced by "[redacted]" in the Code, Description, URI, Body and Header
// values of a *RequestError, in the Body, Header values and Err of an
// *UnexpectedResponseError, in the Err of a *TransportError, and in the status line and
// header values, as an *oauth2.RetrieveError shows them; the request it shows
// (Response.Request) has no Authorization header, body or URL user, and its DPoP header is
// "[redacted]". A field in which a secret is still found afterwards, or in the one-line form
// that Error shows (a token that holds "[redacted]"), becomes "[redacted]" as a whole. Other
// encodings (HTML entities, percent-encoding applied twice) are not looked for.
//
// The errors of a Store and of an OnNewToken hook, which may quote a token (a database's
// "Duplicate entry '...'"), are redacted alike: in what a TokenSource returns and puts in its
// Events, for the client secret and the access token, refresh token and id_token of the
// tokens it held, sent and obtained; in what SaveToken and Grant.SaveToken return, for those of
// the token saved and of the token the lease found stored.
//
// When an error in the chain of such an Err (for a *TransportError: the *url.Error, the
// RoundTripper's own error, what they wrap), or of a Store's or a hook's error, has a secret
// in its text, the error is replaced by one whose text is redacted and which unwraps only to
// the parts of the original chain whose texts hold no secret: errors.Is and errors.As, and
// error reporters walking Unwrap, reach those (such as context.Canceled,
// context.DeadlineExceeded or a *net.OpError) and nothing else.
package oauth2refresh

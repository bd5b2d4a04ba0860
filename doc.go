// Package oauth2refresh keeps OAuth 2.0 access tokens fresh from refresh tokens, as an
// oauth2.TokenSource that drops into golang.org/x/oauth2. A TokenSource refreshes once for
// all goroutines, hands every new token to OnNewToken before anyone uses it, so that a
// rotated refresh token is never lost, can share a grant between processes through a Store,
// and reports every failure as a typed error. A Manager holds one grant per user or tenant.
//
//	ep := &oauth2refresh.Endpoint{
//		TokenURL:     "https://oauth2.example.com/token",
//		ClientID:     "my-client",
//		ClientSecret: os.Getenv("CLIENT_SECRET"),
//	}
//	ts := ep.TokenSource(ctx, &oauth2.Token{RefreshToken: saved},
//		oauth2refresh.OnNewToken(func(ctx context.Context, t *oauth2.Token) error {
//			return db.SaveRefreshToken(ctx, t.RefreshToken)
//		}))
//	client := oauth2refresh.NewClient(ctx, ts) // retries once with a new token after a 401
//	resp, err := client.Get("https://api.example.com/v1/me")
//	if errors.Is(err, oauth2refresh.ErrInvalidGrant) {
//		// the grant is gone: ask the user to sign in again
//	}
//
// # Standards
//
//   - RFC 6749: the refresh_token (§6) and client_credentials (§4.4) grants, client
//     authentication (§2.3.1), token and error responses (§5), refresh token rotation
//   - RFC 8693 token exchange, RFC 7009 revocation, RFC 6750 §3.1 (a new token after a 401)
//   - RFC 7523 and OpenID Connect Core §9: private_key_jwt and client_secret_jwt
//   - RFC 8705 mutual TLS client authentication, RFC 9449 DPoP
//
// # Other packages
//
// compat runs code written for oauth2.Config (compat.TokenSource in place of
// cfg.TokenSource); events is what WithEvents and WithTracer report; store holds the
// stored-token format and store.Seal; store/filestore is a Store on disk; store/storetest
// tests a Store. In modules of their own: compat/googleauth (Google client options),
// compat/mcpauth (MCP clients), store/redisstore and store/pgstore (Redis, PostgreSQL), and
// otel (OpenTelemetry metrics and spans).
//
// # Errors
//
// Errors hold no secrets: the client secret, client assertions, DPoP proofs and the tokens
// sent or received are cut out of every error returned and every event reported; see
// [DETAILS.md] for the forms looked for. The text of Error() is for people and may change in
// any release: branch on the types, fields and sentinels.
//
// [DETAILS.md]: https://github.com/tokenkit/oauth2refresh/blob/main/docs/DETAILS.md#redaction
package oauth2refresh

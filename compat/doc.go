// Package compat switches an app written for golang.org/x/oauth2 to oauth2refresh with a
// one-line change, keeping its *oauth2.Config:
//
//	ts := cfg.TokenSource(ctx, tok)         // before
//	ts := compat.TokenSource(ctx, cfg, tok) // after
//
//	client := cfg.Client(ctx, tok)         // before
//	client := compat.Client(ctx, cfg, tok) // after
//
// TokenSource returns a *Source: the *oauth2refresh.TokenSource embedded, with TokenContext and
// Invalidate, whose errors are x/oauth2's (*oauth2.RetrieveError where x/oauth2
// returns one); oauth2refresh.NewClient builds a client on a source you already have. FromConfig returns the
// oauth2refresh.Endpoint behind both, for what a Config cannot say: scopes on refresh,
// provider-specific parameters and headers, an explicit AuthMethod.
//
// # What stays the same
//
// The package's tests run the same scenarios through cfg.TokenSource and compat.TokenSource
// against one recording test server, and check that:
//
//   - the refresh request carries the same form fields and the same Authorization header
//     for every AuthStyle: HTTP Basic with the id and secret form-encoded first for
//     AuthStyleInHeader; client_id and client_secret in the body for AuthStyleInParams, or
//     client_id alone when the secret is empty; for AuthStyleAutoDetect, Basic first and then
//     the body (without an empty secret) after the server rejected the client's credentials
//     (HTTP 401);
//   - no scope parameter is sent on refresh, whatever Config.Scopes holds (see FromConfig);
//   - the *http.Client stored in the context under oauth2.HTTPClient sends the request;
//   - the returned token has the same AccessToken, TokenType, RefreshToken (the old one is
//     kept when the server sends none), Expiry, and Extra values, for JSON and form-encoded
//     responses;
//   - on failure, the error is a *oauth2.RetrieveError itself (err.(*oauth2.RetrieveError)
//     holds, and errors.As) with the same Response status and header, Body, ErrorCode,
//     ErrorDescription and ErrorURI, for error objects at any HTTP status (including GitHub's
//     and Slack's 200), form-encoded errors, and non-JSON or non-standard bodies with an
//     error status; where x/oauth2 returns another error (a success without access_token, no
//     answer), so does Source.
//
// # What is deliberately different
//
//   - Rotated refresh tokens can be persisted: the oauth2refresh.OnNewToken option is called
//     with every new token, in order, before it is used, and a failed save is retried rather
//     than lost (golang/oauth2#84).
//   - Scopes can be asked for on refresh by setting the Endpoint's Scopes; x/oauth2 never
//     sends them.
//   - Concurrent callers share one refresh, failures included: 20 callers on a failing
//     endpoint cause one request (x/oauth2 sends 20, one after the other), and further calls
//     back off instead of hammering the endpoint (up to 30 s after a temporary failure, up to
//     5 min after the server refused the grant or the client; Invalidate(nil) ends it).
//   - AuthStyleAutoDetect falls back to credentials in the body only after the server rejected
//     the client's authentication (401, invalid_client, unauthorized_client). x/oauth2 also
//     falls back after invalid_grant, a 5xx or a network error, sending the refresh token a
//     second time, which a rotating server treats as reuse.
//   - The context given to TokenSource supplies values only: its cancellation does not break
//     later refreshes (golang/oauth2#388). Callers bound their own wait with TokenContext.
//   - A RetrieveError's Body, ErrorDescription and text have the secret and the tokens cut
//     out; x/oauth2's quote the whole body, which may echo the refresh token. A RetrieveError
//     wraps nothing: the typed errors (*oauth2refresh.RequestError, *UnexpectedResponseError,
//     *TransportError) and the sentinels such as oauth2refresh.ErrInvalidGrant, whose text
//     never holds the body, come from the core API: Source's embedded TokenSource, or
//     FromConfig's Endpoint.
//   - Requests carry "Accept: application/json" and a User-Agent naming this library (GitHub
//     answers form-encoded without the first and rejects requests without the second); they
//     never follow a redirect; without a deadline they are bounded by 30 s (the default of
//     oauth2refresh.Endpoint.Timeout); and a plain http:// token URL to a host that is not a
//     loopback address is refused unless Endpoint.AllowInsecureHTTP is set.
//   - compat.Client (and oauth2refresh.NewClient) retries a request once with a new token
//     when the API answers 401, and keeps no second token cache in front of the source
//     (oauth2.NewClient wraps the source in an oauth2.ReuseTokenSource, which asks it for a
//     token only 10 s before expiry, so the source's background EarlyRefresh never starts and
//     Invalidate is not seen).
//   - Response bodies are read up to 1 MiB like x/oauth2, but errors keep at most 4 KiB of
//     them in Body.
//   - Token.ExpiresIn is also set for form-encoded responses.
//
// # Client credentials
//
// For golang.org/x/oauth2/clientcredentials, keeping its *clientcredentials.Config:
//
//	ts := cfg.TokenSource(ctx)                // before
//	ts := compat.ClientCredentials(ctx, cfg)  // after
//
//	client := cfg.Client(ctx)                         // before
//	client := compat.ClientCredentialsClient(ctx, cfg) // after
//
// The tests check side by side with x/oauth2 that the same form fields (grant_type, scope,
// every EndpointParams value) and Authorization header are sent for every AuthStyle, and that
// the token and the *oauth2.RetrieveError of a refusal read the same; x/oauth2's own tests of
// the package are ported and run on both. The differences of the refresh grant above hold
// (one request for concurrent callers, backoff, typed errors, options such as WithStore to
// share one token between the processes of a fleet), and: the refresh_token of a response is
// dropped, Token.ExpiresIn is set, and an EndpointParams grant_type is ignored (see
// ClientCredentials).
//
// An existing oauth2.TokenSource, such as the one cfg.TokenSource returned, cannot be wrapped:
// its refresh token is private to it. Build the source from the Config and the saved token
// instead. The README's migration section shows each common pattern.
package compat

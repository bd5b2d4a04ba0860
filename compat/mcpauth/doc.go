// Package mcpauth gives the Model Context Protocol clients of the official Go SDK
// (github.com/modelcontextprotocol/go-sdk) their tokens from oauth2refresh.
//
// The SDK's auth.AuthorizationCodeHandler exchanges the authorization code itself, then
// refreshes through golang.org/x/oauth2's Config.TokenSource, which sends no RFC 8707
// "resource" parameter on refresh (the MCP authorization spec requires it on every token
// request; servers refuse with invalid_target), tries HTTP Basic first for a public client,
// and keeps rotated refresh tokens in memory only. A Config plugs oauth2refresh into the two
// seams the SDK has for it, AuthorizationCodeHandlerConfig.NewTokenSource and
// InitialTokenSource:
//
//	grant := &mcpauth.Config{
//		Resource: "https://mcp.example.com/mcp", // the MCP server's canonical URI
//		Endpoint: oauth2refresh.Endpoint{TokenURL: tokenURL, ClientID: clientID}, // for restarts
//		Store:    &filestore.Store{Dir: dir},
//	}
//	initial, err := grant.InitialTokenSource(ctx) // nil: no grant stored yet, or a dead one
//	if err != nil { ... }
//	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
//		PreregisteredClient:      &oauthex.ClientCredentials{ClientID: clientID},
//		RedirectURL:              redirectURL,
//		AuthorizationCodeFetcher: fetch,
//		NewTokenSource:           grant.NewTokenSource,
//		InitialTokenSource:       initial,
//	})
//	transport := &mcp.StreamableClientTransport{Endpoint: grant.Resource, OAuthHandler: h}
//
// Every refresh then carries exactly one "resource" value, the canonical Resource; a client
// without a secret authenticates as a public client (client_id in the body, no Authorization
// header); each rotated refresh token is saved to the Store before the access token is used,
// so that a restarted client, or any number of client processes sharing the Store, go on
// with the same grant and never send a spent refresh token. When the authorization server
// refuses the grant (invalid_grant, a reused refresh token, an expired grant), the source's
// error matches oauth2refresh.ErrInvalidGrant and, as a *oauth2.RetrieveError, the code
// "invalid_grant" that makes the SDK authorize again: the next MCP request runs the
// AuthorizationCodeFetcher, and the new grant replaces the dead one in the Store.
//
// The package's tests prove this end to end with the SDK's own client and server (its
// bearer-token middleware), against an authorization server that rotates refresh tokens,
// revokes a grant whose refresh token comes back, and refuses a refresh without the right
// resource; and they show the SDK's default path failing against the same server.
package mcpauth

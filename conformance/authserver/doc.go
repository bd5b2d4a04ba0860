// Package authserver runs a real OAuth 2.0 authorization server in-process, for tests and
// demos of refresh clients: github.com/ory/fosite (v0.49) composed with its refresh_token grant
// (RFC 6749 §6), token introspection and RFC 7009 revocation over fosite's in-memory store,
// served over HTTP on a loopback port.
//
// fosite was written independently of oauth2refresh, and it is strict where strictness
// matters to a refresh client:
//
//   - It rotates refresh tokens: every successful refresh returns a new refresh token and
//     deactivates the one that was sent, and revokes the access token issued before.
//   - It detects reuse: when a rotated-out refresh token comes back, it answers invalid_grant
//     and revokes the whole family (the grant): the newest refresh token and access token stop
//     working too (RFC 6819 §5.2.2.3). A client that sends one refresh token twice is punished
//     the way a real provider punishes it.
//   - It authenticates clients by the method they registered: a client registered with
//     ClientSecretBasic is refused when it sends its secret in the body, and the other way
//     round, with invalid_client and HTTP 401 (a client registered with AnyAuthMethod may use
//     either). Client secrets are stored as bcrypt hashes of minimum cost.
//   - It verifies private_key_jwt client assertions (RFC 7523 §2.2) against the client's
//     registered key: signature, algorithm, iss, sub, aud (the token URL), exp, and jti, which
//     it refuses to see twice (jti_known).
//
// No browser, user or password grant is needed: IssueRefreshToken seeds a grant straight into
// the store, as if a user had just consented, and returns its first refresh token.
//
// # Usage
//
//	srv, err := authserver.Start(authserver.Options{AccessTokenLifespan: 2 * time.Second})
//	if err != nil { ... }
//	defer srv.Close()
//	if err := srv.AddClient(authserver.Client{ID: "app", Secret: "s3cret",
//		AuthMethod: authserver.ClientSecretBasic, Scopes: []string{"read"}}); err != nil { ... }
//	grant, err := srv.IssueRefreshToken("app", "read")
//	// Refresh at srv.TokenURL with grant.RefreshToken; call srv.APIURL with the access token.
//	revoked, err := srv.Revoked(grant.ID) // true once a refresh token was reused
//
// The server also serves a small protected API (APIURL, or Protect around any handler) that
// validates bearer access tokens through fosite's introspection, and answers 401 with
// WWW-Authenticate: Bearer error="invalid_token" for an expired, revoked or unknown one.
//
// A Server is safe for use by any number of goroutines, and by other processes through its
// URLs. fosite's MemoryStore is not safe when requests overlap, so every request that touches
// the store is handled under one mutex: the server handles one token or API request at a time,
// which also makes its reuse detection exact. Stats counts what it saw; Options.TokenDelay
// slows token responses down to widen the windows in which a careless client would send a
// refresh token twice.
//
// It should only ever listen on loopback (the default): client secrets cross it in clear
// text, and its global HMAC secret is random per Server.
package authserver

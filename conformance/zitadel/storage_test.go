package zitadel_test

// memStorage: the smallest op.Storage that lets zitadel's OpenID Provider run the
// refresh_token grant for private_key_jwt clients, and the client_credentials grant for
// clients with a secret. Grants are seeded by issue (there is no
// login or authorization code flow); refresh tokens are opaque and rotate on every refresh
// (the old one is forgotten, so a reused one is invalid_grant); access tokens are zitadel's
// own encrypted bearer tokens, looked up by id.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// accessTokenLifetime is how long the access tokens the storage makes are valid.
const accessTokenLifetime = 5 * time.Minute

// client is a confidential client that authenticates with private_key_jwt, with one public
// key registered under keyID, allowed the refresh_token grant; and, when it has a secret, the
// client_credentials grant authenticated with the secret.
type client struct {
	id     string
	keyID  string
	key    crypto.PublicKey
	secret string
}

func (c *client) GetID() string                       { return c.id }
func (c *client) RedirectURIs() []string              { return nil }
func (c *client) PostLogoutRedirectURIs() []string    { return nil }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodPrivateKeyJWT }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType {
	if c.secret != "" {
		return []oidc.GrantType{oidc.GrantTypeRefreshToken, oidc.GrantTypeClientCredentials}
	}
	return []oidc.GrantType{oidc.GrantTypeRefreshToken}
}
func (c *client) LoginURL(string) string              { return "" }
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration      { return accessTokenLifetime }
func (c *client) DevMode() bool                       { return false }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) IsScopeAllowed(string) bool           { return false }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }

// grant is what a refresh token stands for; it implements op.RefreshTokenRequest.
type grant struct {
	clientID string
	subject  string
	scopes   []string
	authTime time.Time
}

func (g *grant) GetAMR() []string            { return []string{"pwd"} }
func (g *grant) GetAudience() []string       { return []string{g.clientID} }
func (g *grant) GetAuthTime() time.Time      { return g.authTime }
func (g *grant) GetClientID() string         { return g.clientID }
func (g *grant) GetScopes() []string         { return g.scopes }
func (g *grant) GetSubject() string          { return g.subject }
func (g *grant) SetCurrentScopes(s []string) { g.scopes = s }

// accessToken is an issued access token.
type accessToken struct {
	clientID, subject string
	expires           time.Time
}

// storageStats counts what the storage was asked, for exact assertions.
type storageStats struct {
	KeyLookups int // GetKeyByIDAndClientID calls: one per assertion whose claims passed
	Refreshes  int // refresh tokens rotated
	Issued     int // client_credentials access tokens issued
}

type memStorage struct {
	signing *ecdsa.PrivateKey // the server's own ID token key (ES256); immutable

	mu            sync.Mutex              // guards the fields below
	clients       map[string]*client      // by client id
	refreshTokens map[string]*grant       // by refresh token value
	accessTokens  map[string]*accessToken // by token id
	stats         storageStats
}

var _ op.Storage = (*memStorage)(nil)

func newMemStorage() (*memStorage, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &memStorage{
		signing:       k,
		clients:       map[string]*client{},
		refreshTokens: map[string]*grant{},
		accessTokens:  map[string]*accessToken{},
	}, nil
}

func (s *memStorage) addClient(c *client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[c.id] = c
}

// issue seeds a grant, as the authorization code flow would have, and returns its refresh token.
func (s *memStorage) issue(clientID, subject string, scopes ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := rand.Text()
	s.refreshTokens[rt] = &grant{clientID: clientID, subject: subject, scopes: scopes, authTime: time.Now()}
	return rt
}

func (s *memStorage) statsNow() storageStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// accessTokenValid reports whether id is a live access token.
func (s *memStorage) accessTokenValid(id, subject string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.accessTokens[id]
	return ok && at.subject == subject && time.Now().Before(at.expires)
}

var errNotSupported = errors.New("not supported by the test storage")

func (s *memStorage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, errors.New("client not found")
	}
	return c, nil
}

func (s *memStorage) GetKeyByIDAndClientID(_ context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.KeyLookups++
	c, ok := s.clients[clientID]
	if !ok || c.keyID != keyID {
		return nil, errors.New("key not found")
	}
	return &jose.JSONWebKey{Key: c.key, KeyID: c.keyID, Use: "sig"}, nil
}

func (s *memStorage) TokenRequestByRefreshToken(_ context.Context, rt string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.refreshTokens[rt]
	if !ok {
		return nil, errors.New("refresh token not found")
	}
	c := *g // SetCurrentScopes must not change the stored grant
	return &c, nil
}

func (s *memStorage) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	g, ok := req.(*grant)
	if !ok {
		return "", "", time.Time{}, errNotSupported
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.refreshTokens[current]; !ok {
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token already used")
	}
	delete(s.refreshTokens, current)
	rt := rand.Text()
	s.refreshTokens[rt] = &grant{clientID: g.clientID, subject: g.subject, scopes: g.scopes, authTime: g.authTime}
	id := rand.Text()
	exp := time.Now().Add(accessTokenLifetime)
	s.accessTokens[id] = &accessToken{clientID: g.clientID, subject: g.subject, expires: exp}
	s.stats.Refreshes++
	return id, rt, exp, nil
}

// signingKey is the server's ID token key.
type signingKey struct{ k *ecdsa.PrivateKey }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k signingKey) Key() any                                    { return k.k }
func (k signingKey) ID() string                                  { return "op-1" }

type publicKey struct{ k *ecdsa.PrivateKey }

func (k publicKey) ID() string                         { return "op-1" }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.k.PublicKey }

func (s *memStorage) SigningKey(context.Context) (op.SigningKey, error) {
	return signingKey{s.signing}, nil
}

func (s *memStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.ES256}, nil
}

func (s *memStorage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.signing}}, nil
}

// The rest of op.Storage is not reached by the refresh_token grant.

func (s *memStorage) CreateAuthRequest(context.Context, *oidc.AuthRequest, string) (op.AuthRequest, error) {
	return nil, errNotSupported
}
func (s *memStorage) AuthRequestByID(context.Context, string) (op.AuthRequest, error) {
	return nil, errNotSupported
}
func (s *memStorage) AuthRequestByCode(context.Context, string) (op.AuthRequest, error) {
	return nil, errNotSupported
}
func (s *memStorage) SaveAuthCode(context.Context, string, string) error { return errNotSupported }
func (s *memStorage) DeleteAuthRequest(context.Context, string) error    { return errNotSupported }
func (s *memStorage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	g, ok := req.(*ccRequest)
	if !ok {
		return "", time.Time{}, errNotSupported
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := rand.Text()
	exp := time.Now().Add(accessTokenLifetime)
	s.accessTokens[id] = &accessToken{clientID: g.clientID, subject: g.clientID, expires: exp}
	s.stats.Issued++
	return id, exp, nil
}

var _ op.ClientCredentialsStorage = (*memStorage)(nil)

// ClientCredentials authenticates a client_credentials request: the client must have a
// secret, and this one.
func (s *memStorage) ClientCredentials(_ context.Context, id, secret string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok || c.secret == "" || subtle.ConstantTimeCompare([]byte(c.secret), []byte(secret)) != 1 {
		// An *oidc.Error: the LegacyServer answers any other error with server_error.
		return nil, oidc.ErrInvalidClient().WithDescription("client authentication failed")
	}
	return c, nil
}

// ClientCredentialsTokenRequest grants the scopes asked: the client is its own subject.
func (s *memStorage) ClientCredentialsTokenRequest(_ context.Context, id string, scopes []string) (op.TokenRequest, error) {
	return &ccRequest{clientID: id, scopes: scopes}, nil
}

// ccRequest is the op.TokenRequest of a client_credentials grant.
type ccRequest struct {
	clientID string
	scopes   []string
}

func (r *ccRequest) GetSubject() string                                      { return r.clientID }
func (r *ccRequest) GetAudience() []string                                   { return []string{r.clientID} }
func (r *ccRequest) GetScopes() []string                                     { return r.scopes }
func (s *memStorage) TerminateSession(context.Context, string, string) error { return errNotSupported }
func (s *memStorage) RevokeToken(context.Context, string, string, string) *oidc.Error {
	return oidc.ErrRequestNotSupported()
}
func (s *memStorage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}
func (s *memStorage) AuthorizeClientIDSecret(context.Context, string, string) error {
	return errors.New("no client has a secret")
}
func (s *memStorage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}
func (s *memStorage) SetUserinfoFromToken(context.Context, *oidc.UserInfo, string, string, string) error {
	return errNotSupported
}
func (s *memStorage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errNotSupported
}
func (s *memStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}
func (s *memStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errNotSupported
}
func (s *memStorage) Health(context.Context) error { return nil }

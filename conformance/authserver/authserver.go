package authserver

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/storage"
	"golang.org/x/crypto/bcrypt"
)

// Client authentication methods (RFC 7591 token_endpoint_auth_method) for Client.AuthMethod.
const (
	// AnyAuthMethod registers a confidential client that may authenticate with HTTP Basic or
	// with body parameters (a plain fosite.DefaultClient).
	AnyAuthMethod = ""
	// ClientSecretBasic accepts the secret only in an HTTP Basic Authorization header.
	ClientSecretBasic = "client_secret_basic"
	// ClientSecretPost accepts the secret only as the client_secret body parameter.
	ClientSecretPost = "client_secret_post"
	// None registers a public client: client_id in the body, no secret.
	None = "none"
	// PrivateKeyJWT accepts only a JWT client assertion (RFC 7523 §2.2) signed with the
	// client's key (Client.PublicKey), whose aud is the token URL and whose jti was never
	// seen before (fosite remembers each jti until its exp).
	PrivateKeyJWT = "private_key_jwt"
)

// Paths served by a Server, relative to its URL.
const (
	TokenPath      = "/oauth2/token"
	RevocationPath = "/oauth2/revoke"
	APIPath        = "/api/resource"
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// Addr is the TCP address to listen on. Empty means "127.0.0.1:0", a free loopback port.
	Addr string

	// AccessTokenLifespan is how long an access token lives. Zero means one hour. fosite rounds
	// the expiry to the second and truncates expires_in, so a 2 s lifespan gives tokens that
	// live between 1.5 and 2.5 s and an expires_in of 1 or 2.
	AccessTokenLifespan time.Duration

	// RefreshTokenLifespan is how long a refresh token lives. Zero means forever.
	RefreshTokenLifespan time.Duration

	// TokenDelay holds every token endpoint response back this long after fosite handled the
	// request (and after the lock is released), like a slow provider: the refresh token sent
	// has already been rotated out when the client is still waiting. Zero means none.
	TokenDelay time.Duration
}

// Client is a client registration for AddClient.
type Client struct {
	// ID is the client_id. It must not be empty.
	ID string
	// Secret is the client secret, stored as a bcrypt hash of minimum cost. It must be empty
	// for a public client (AuthMethod None) and for PrivateKeyJWT, and non-empty otherwise.
	Secret string
	// AuthMethod is how the client authenticates at the token endpoint: AnyAuthMethod (the
	// zero value), ClientSecretBasic, ClientSecretPost, None or PrivateKeyJWT.
	AuthMethod string
	// PublicKey verifies the client's assertions, for PrivateKeyJWT: an *rsa.PublicKey or an
	// *ecdsa.PublicKey, registered as the client's JWKS with KeyID as its kid (may be empty)
	// and SigningAlg ("RS256", the default, "PS256", "ES256", ...) as the only algorithm
	// accepted. fosite v0.49 has no EdDSA or client_secret_jwt.
	PublicKey  crypto.PublicKey
	KeyID      string
	SigningAlg string
	// Scopes are the scopes the client may hold. A grant may only carry these.
	Scopes []string
}

// Grant is a grant seeded by IssueRefreshToken: one refresh-token family.
type Grant struct {
	// ID identifies the family: every refresh token rotated from this grant shares it.
	ID string
	// ClientID is the client the grant was issued to.
	ClientID string
	// Subject is the resource owner the grant stands for.
	Subject string
	// RefreshToken is the grant's first refresh token.
	RefreshToken string
}

// Stats counts what a Server saw since Start.
type Stats struct {
	// TokenRequests counts requests to the token endpoint, whatever their outcome.
	TokenRequests int64
	// TokensIssued counts token requests that succeeded (refreshes that rotated a token).
	TokensIssued int64
	// TokenErrors counts token requests that were answered with an error.
	TokenErrors int64
	// ReuseDetected counts refresh tokens presented after they had been rotated out or
	// revoked. Each one revoked its family.
	ReuseDetected int64
	// APIRequests counts requests to protected handlers (APIURL and Protect).
	APIRequests int64
	// APIRejected counts protected requests answered 401.
	APIRejected int64
}

// Server is a running fosite authorization server. Create it with Start and stop it with
// Close. Its methods may be called from any number of goroutines.
type Server struct {
	// URL is the base URL, "http://127.0.0.1:port".
	URL string
	// TokenURL is the token endpoint (URL + TokenPath): the refresh_token grant, and the
	// client_credentials grant (RFC 6749 §4.4) for confidential clients, with the scopes
	// they are registered with.
	TokenURL string
	// RevocationURL is the RFC 7009 revocation endpoint (URL + RevocationPath).
	RevocationURL string
	// APIURL is a protected resource (URL + APIPath) that answers GET with the JSON of the
	// TokenInfo of a valid bearer access token, and 401 otherwise.
	APIURL string

	opts     Options
	http     *http.Server
	serveErr chan error // receives Serve's result once

	// mu guards everything below it: fosite's MemoryStore and the provider that uses it are
	// only ever called with mu held.
	mu       sync.Mutex
	store    *storage.MemoryStore
	provider fosite.OAuth2Provider
	strategy *oauth2.HMACSHAStrategy
	config   *fosite.Config
	subjects int // grants issued so far, for subject names

	// Counters, atomic, read by Stats.
	tokenRequests, tokensIssued, tokenErrors, reuseDetected atomic.Int64
	apiRequests, apiRejected                                atomic.Int64
}

// Start starts a Server on opts.Addr (a free loopback port by default). Close it when done.
func Start(opts Options) (*Server, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("authserver: generating the global secret: %w", err)
	}
	rtLifespan := opts.RefreshTokenLifespan
	if rtLifespan <= 0 {
		rtLifespan = -1 // fosite: no expiry
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("authserver: listening: %w", err)
	}
	config := &fosite.Config{
		AccessTokenLifespan:  opts.AccessTokenLifespan,
		RefreshTokenLifespan: rtLifespan,
		GlobalSecret:         secret,
		// No "offline" scope needed to refresh: every seeded grant has a refresh token.
		RefreshTokenScopes: []string{},
	}
	s := &Server{
		URL:      "http://" + ln.Addr().String(),
		opts:     opts,
		store:    storage.NewMemoryStore(),
		strategy: compose.NewOAuth2HMACStrategy(config),
		config:   config,
		serveErr: make(chan error, 1),
	}
	config.TokenURL = s.URL + TokenPath
	s.TokenURL = s.URL + TokenPath
	s.RevocationURL = s.URL + RevocationPath
	s.APIURL = s.URL + APIPath
	s.provider = compose.Compose(config, s.store, s.strategy,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
	)

	mux := http.NewServeMux()
	mux.HandleFunc("POST "+TokenPath, s.handleToken)
	mux.HandleFunc("POST "+RevocationPath, s.handleRevocation)
	mux.Handle(APIPath, s.Protect(http.HandlerFunc(serveTokenInfo)))
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { s.serveErr <- s.http.Serve(ln) }()
	return s, nil
}

// Close stops the server and closes its connections.
func (s *Server) Close() error {
	err := s.http.Close()
	if serr := <-s.serveErr; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	s.serveErr <- http.ErrServerClosed // a second Close returns at once
	return err
}

// AddClient registers (or replaces) a client.
func (s *Server) AddClient(c Client) error {
	if c.ID == "" {
		return errors.New("authserver: client has no ID")
	}
	public, keyed := c.AuthMethod == None, c.AuthMethod == PrivateKeyJWT
	switch {
	case c.AuthMethod != AnyAuthMethod && c.AuthMethod != ClientSecretBasic && c.AuthMethod != ClientSecretPost && !public && !keyed:
		return fmt.Errorf("authserver: unknown AuthMethod %q", c.AuthMethod)
	case (public || keyed) && c.Secret != "":
		return fmt.Errorf("authserver: a %s client has no secret", c.AuthMethod)
	case !public && !keyed && c.Secret == "":
		return errors.New("authserver: a confidential client needs a secret")
	case keyed != (c.PublicKey != nil):
		return errors.New("authserver: a PublicKey is for, and needed by, a private_key_jwt client")
	}
	dc := &fosite.DefaultClient{
		ID:         c.ID,
		Public:     public,
		Scopes:     slices.Clone(c.Scopes),
		GrantTypes: []string{"refresh_token", "client_credentials"},
	}
	if !public && !keyed {
		hash, err := bcrypt.GenerateFromPassword([]byte(c.Secret), bcrypt.MinCost)
		if err != nil {
			return fmt.Errorf("authserver: hashing the client secret: %w", err)
		}
		dc.Secret = hash
	}
	var client fosite.Client = dc
	if c.AuthMethod != AnyAuthMethod {
		oc := &fosite.DefaultOpenIDConnectClient{DefaultClient: dc, TokenEndpointAuthMethod: c.AuthMethod}
		if keyed {
			oc.TokenEndpointAuthSigningAlgorithm = c.SigningAlg
			oc.JSONWebKeys = &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: c.PublicKey, KeyID: c.KeyID, Use: "sig", Algorithm: c.SigningAlg}}}
		}
		client = oc
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.store.Clients[c.ID] = client
	return nil
}

// IssueRefreshToken seeds a new grant for a registered client, as if its user had just
// consented to scopes, and returns it with its first refresh token. scopes must be among the
// client's Scopes.
func (s *Server) IssueRefreshToken(clientID string, scopes ...string) (Grant, error) {
	ctx := context.Background()
	s.mu.Lock()
	defer s.mu.Unlock()
	client, err := s.store.GetClient(ctx, clientID)
	if err != nil {
		return Grant{}, fmt.Errorf("authserver: unknown client %q", clientID)
	}
	for _, sc := range scopes {
		if !s.config.GetScopeStrategy(ctx)(client.GetScopes(), sc) {
			return Grant{}, fmt.Errorf("authserver: client %q may not hold scope %q", clientID, sc)
		}
	}
	s.subjects++
	now := time.Now().UTC()
	session := &fosite.DefaultSession{Subject: "user-" + strconv.Itoa(s.subjects)}
	if s.opts.RefreshTokenLifespan > 0 {
		session.SetExpiresAt(fosite.RefreshToken, now.Add(s.opts.RefreshTokenLifespan).Round(time.Second))
	}
	req := fosite.NewRequest()
	req.ID = randomID()
	req.RequestedAt = now
	req.Client = client
	req.Session = session
	req.SetRequestedScopes(scopes)
	for _, sc := range scopes {
		req.GrantScope(sc)
	}
	token, sig, err := s.strategy.GenerateRefreshToken(ctx, req)
	if err != nil {
		return Grant{}, fmt.Errorf("authserver: generating a refresh token: %w", err)
	}
	if err := s.store.CreateRefreshTokenSession(ctx, sig, "", req); err != nil {
		return Grant{}, fmt.Errorf("authserver: storing the refresh token: %w", err)
	}
	return Grant{ID: req.ID, ClientID: clientID, Subject: session.Subject, RefreshToken: token}, nil
}

// Revoked reports whether a grant's family is dead: its newest refresh token was revoked,
// either because a rotated-out refresh token was presented (reuse detection), or through the
// revocation endpoint, or RevokeGrant. It returns an error for an unknown grant ID.
func (s *Server) Revoked(grantID string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sig, ok := s.store.RefreshTokenRequestIDs[grantID]
	if !ok {
		return false, fmt.Errorf("authserver: unknown grant %q", grantID)
	}
	_, err := s.store.GetRefreshTokenSession(context.Background(), sig, nil)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, fosite.ErrInactiveToken), errors.Is(err, fosite.ErrNotFound):
		return true, nil
	}
	return false, fmt.Errorf("authserver: reading grant %q: %w", grantID, err)
}

// RevokeGrant revokes a grant's newest refresh token and access token, as a user who
// disconnects the app would. Later refreshes of the grant get invalid_grant.
func (s *Server) RevokeGrant(grantID string) error {
	ctx := context.Background()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.store.RefreshTokenRequestIDs[grantID]; !ok {
		return fmt.Errorf("authserver: unknown grant %q", grantID)
	}
	if err := s.store.RevokeRefreshToken(ctx, grantID); err != nil {
		return fmt.Errorf("authserver: revoking grant %q: %w", grantID, err)
	}
	if err := s.store.RevokeAccessToken(ctx, grantID); err != nil {
		return fmt.Errorf("authserver: revoking grant %q: %w", grantID, err)
	}
	return nil
}

// Stats returns the counters of what the server saw so far.
func (s *Server) Stats() Stats {
	return Stats{
		TokenRequests: s.tokenRequests.Load(),
		TokensIssued:  s.tokensIssued.Load(),
		TokenErrors:   s.tokenErrors.Load(),
		ReuseDetected: s.reuseDetected.Load(),
		APIRequests:   s.apiRequests.Load(),
		APIRejected:   s.apiRejected.Load(),
	}
}

// TokenRequests returns how many requests the token endpoint received so far.
func (s *Server) TokenRequests() int64 { return s.tokenRequests.Load() }

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	s.tokenRequests.Add(1)
	var buf bufferedResponse
	s.token(&buf, r)
	if s.opts.TokenDelay > 0 {
		select {
		case <-time.After(s.opts.TokenDelay):
		case <-r.Context().Done():
			return
		}
	}
	buf.writeTo(w)
}

// token runs fosite's token endpoint, under s.mu.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, err := s.provider.NewAccessRequest(ctx, r, new(fosite.DefaultSession))
	if err == nil && ar.GetGrantTypes().ExactOne("client_credentials") {
		// fosite checked the scopes against the client's; a client_credentials grant has no
		// user to consent, so the server grants what was asked.
		for _, scope := range ar.GetRequestedScopes() {
			ar.GrantScope(scope)
		}
	}
	if err == nil {
		var resp fosite.AccessResponder
		if resp, err = s.provider.NewAccessResponse(ctx, ar); err == nil {
			s.tokensIssued.Add(1)
			s.provider.WriteAccessResponse(ctx, w, ar, resp)
			return
		}
	}
	s.tokenErrors.Add(1)
	if isReuse(err) {
		s.reuseDetected.Add(1)
	}
	s.provider.WriteAccessError(ctx, w, ar, err)
}

// isReuse reports whether a token endpoint error is fosite's refresh token reuse detection:
// invalid_grant caused by an inactive refresh token.
func isReuse(err error) bool {
	var re *fosite.RFC6749Error
	return errors.As(err, &re) && re.ErrorField == fosite.ErrInvalidGrant.ErrorField &&
		re.Cause() != nil && errors.Is(re.Cause(), fosite.ErrInactiveToken)
}

func (s *Server) handleRevocation(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.provider.NewRevocationRequest(ctx, r)
	s.provider.WriteRevocationResponse(ctx, w, err)
}

// bufferedResponse holds a response so it can be written after the lock is released.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header {
	if b.header == nil {
		b.header = make(http.Header)
	}
	return b.header
}

func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}

func (b *bufferedResponse) writeTo(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

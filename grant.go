package oauth2refresh

// grant.go owns how a token is obtained: the grants a TokenSource can run (refresh_token,
// client_credentials, token exchange), each one token request of endpoint.go. Everything else
// a TokenSource does (the cache, the one flight, early refresh, backoff, the 401 bound,
// events, the Store) is tokensource.go's and store.go's, the same for every grant.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/tokenkit/oauth2refresh/events"

	"golang.org/x/oauth2"
)

// grant is how a TokenSource obtains a new token: the one thing that differs between grants.
type grant interface {
	// fetch sends one token request of the grant (with the Endpoint's client authentication,
	// DPoP and AuthAutoDetect, see Endpoint.authenticated) and returns the token issued, and
	// the credential the request spent, "" if none. from is the newest token known (held, or
	// stored), or nil: only the refresh grant reads it, for its refresh token.
	fetch(ctx context.Context, s *TokenSource, from *oauth2.Token) (tok *oauth2.Token, spent string, err error)

	// standalone reports whether the grant needs nothing but the Endpoint and its own
	// configuration: no refresh token that a process could spend, so that a Store only shares
	// tokens (see obtainStandalone), and never holds a grant that dies.
	standalone() bool
}

// refreshGrant is the refresh_token grant (RFC 6749 §6): the grant of Endpoint.TokenSource.
type refreshGrant struct{}

func (refreshGrant) standalone() bool { return false }

func (refreshGrant) fetch(ctx context.Context, s *TokenSource, from *oauth2.Token) (*oauth2.Token, string, error) {
	if from == nil || from.RefreshToken == "" {
		return nil, "", ErrNoRefreshToken
	}
	if err := s.refreshable(from); err != nil {
		return nil, "", err
	}
	t, err := s.e.refresh(ctx, from.RefreshToken, s.cfg.now)
	return t, from.RefreshToken, err
}

// ClientCredentials returns a TokenSource of the client_credentials grant (RFC 6749 §4.4),
// with the Endpoint's client authentication, DPoP key, Scopes and Params; ctx and opts are as
// for TokenSource. A refresh_token in a response is dropped. A refused client or scope backs
// off as a refused grant, and never makes a dead grant. With WithStore, the processes under
// one key share one token, and a failing Store is passed by (events.PersistFailed). Keep
// that key apart from those of refresh grants, and the Endpoint the same in every process.
func (e *Endpoint) ClientCredentials(ctx context.Context, opts ...Option) *TokenSource {
	return e.newSource(ctx, clientCredentials{}, nil, opts)
}

// clientCredentials is the client_credentials grant.
type clientCredentials struct{}

func (clientCredentials) standalone() bool { return true }

func (clientCredentials) fetch(ctx context.Context, s *TokenSource, _ *oauth2.Token) (*oauth2.Token, string, error) {
	t, err := s.e.grantRequest(ctx, s.e.grantForm("client_credentials"), "", s.cfg.now)
	return t, "", err
}

// The token types of RFC 8693 §3, for TokenExchange.SubjectTokenType and RequestedTokenType.
const (
	tokenTypeAccess = "urn:ietf:params:oauth:token-type:access_token"
	tokenExchangeGT = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// TokenExchange configures the token exchange grant (RFC 8693): a subject token of another
// issuer, such as a Kubernetes service account token, swapped for an access token.
type TokenExchange struct {
	// SubjectTokenFile names a file holding the subject token, read for each request as
	// AssertionFile reads. Exactly one of it and SubjectTokenSource is set.
	SubjectTokenFile string

	// SubjectTokenSource gives the subject token: its AccessToken, asked for each request.
	SubjectTokenSource oauth2.TokenSource

	// SubjectTokenType is the subject_token_type. It must be set for a SubjectTokenFile;
	// empty means urn:ietf:params:oauth:token-type:access_token.
	SubjectTokenType string

	// Audience and Resource, if set, are sent as audience and resource, in place of those
	// of Endpoint.Params.
	Audience []string
	Resource []string

	// RequestedTokenType, if set, is sent as requested_token_type.
	RequestedTokenType string
}

// TokenExchange returns a TokenSource of the token exchange grant (RFC 8693) that works as
// ClientCredentials' does, sending the subject token x names; x is copied. The issued type is
// the token's Extra("issued_token_type"). A subject token that cannot be read is a wrapped
// error, and an x that cannot work wraps ErrInvalidEndpoint: nothing is sent then.
func (e *Endpoint) TokenExchange(ctx context.Context, x *TokenExchange, opts ...Option) *TokenSource {
	g := tokenExchange{}
	if x != nil {
		g.x = *x
		g.x.Audience, g.x.Resource = append([]string(nil), x.Audience...), append([]string(nil), x.Resource...)
	}
	return e.newSource(ctx, g, nil, opts)
}

// tokenExchange is the token exchange grant, with its own copy of the configuration.
// The subject token is read for each request: a file as AssertionFile reads it (at most
// 64 KiB, a regular file, bounded by the request's deadline), a SubjectTokenSource through
// TokenContext with the request's context when it has that method. Audience and Resource go
// one parameter per value (RFC 8693 §2.1); the Endpoint's Scopes are the scope. The type the
// server issued is the token's Extra("issued_token_type"). The subject token is a secret of
// the request: it is cut out of its errors.
type tokenExchange struct{ x TokenExchange }

func (tokenExchange) standalone() bool { return true }

func (g tokenExchange) fetch(ctx context.Context, s *TokenSource, _ *oauth2.Token) (*oauth2.Token, string, error) {
	typ, err := g.subjectType()
	if err != nil {
		return nil, "", err
	}
	subject, err := g.subject(ctx)
	if err != nil {
		return nil, "", err
	}
	form := s.e.grantForm(tokenExchangeGT)
	form.Set("subject_token", subject)
	form.Set("subject_token_type", typ)
	if len(g.x.Audience) > 0 {
		form["audience"] = g.x.Audience
	}
	if len(g.x.Resource) > 0 {
		form["resource"] = g.x.Resource
	}
	if g.x.RequestedTokenType != "" {
		form.Set("requested_token_type", g.x.RequestedTokenType)
	}
	t, err := s.e.grantRequest(ctx, form, subject, s.cfg.now)
	return t, "", err
}

// subjectType returns the subject_token_type to send, or why there is none.
func (g tokenExchange) subjectType() (string, error) {
	switch file, src := g.x.SubjectTokenFile != "", g.x.SubjectTokenSource != nil; {
	case file == src:
		return "", fmt.Errorf("%w: TokenExchange needs one of SubjectTokenFile and SubjectTokenSource", ErrInvalidEndpoint)
	case g.x.SubjectTokenType != "":
		return g.x.SubjectTokenType, nil
	case src:
		return tokenTypeAccess, nil
	}
	return "", fmt.Errorf("%w: TokenExchange.SubjectTokenType is empty", ErrInvalidEndpoint)
}

// subject returns the subject token, read for this request.
func (g tokenExchange) subject(ctx context.Context) (string, error) {
	if g.x.SubjectTokenFile != "" {
		s, err := AssertionFile(g.x.SubjectTokenFile).Assertion(ctx, AssertionRequest{})
		if err != nil {
			return "", fmt.Errorf("oauth2refresh: token exchange: reading subject token: %w", err)
		}
		return s, nil
	}
	var t *oauth2.Token
	var err error
	if c, ok := g.x.SubjectTokenSource.(interface {
		TokenContext(context.Context) (*oauth2.Token, error)
	}); ok {
		t, err = c.TokenContext(ctx)
	} else {
		t, err = g.x.SubjectTokenSource.Token()
	}
	switch {
	case err != nil:
		return "", fmt.Errorf("oauth2refresh: token exchange: getting subject token: %w", err)
	case t == nil || t.AccessToken == "":
		return "", errors.New("oauth2refresh: token exchange: getting subject token: no access token")
	}
	return t.AccessToken, nil
}

// grantForm returns the form of a token request of grantType, with the Endpoint's Scopes and
// Params (but for the keys this package sets, see reserved).
func (e *Endpoint) grantForm(grantType string) url.Values {
	form := url.Values{"grant_type": {grantType}}
	if scope := strings.Join(e.Scopes, " "); scope != "" {
		form.Set("scope", scope)
	}
	for k, vs := range e.Params {
		if !reserved[k] {
			form[k] = vs
		}
	}
	return form
}

// grantRequest sends form to the token URL as a token request of a standalone grant, secret
// (the subject token, or "") cut out of its errors, and returns the token issued without a
// refresh token: the grant runs again instead, and a refresh token it carried would only be one
// more secret kept.
func (e *Endpoint) grantRequest(ctx context.Context, form url.Values, secret string, now func() time.Time) (*oauth2.Token, error) {
	t, err := e.authenticated(ctx, form, request{url: e.TokenURL, name: "token URL", secret: secret, learn: true,
		read: readResponse}, now)
	if err != nil {
		return nil, err
	}
	t.RefreshToken = ""
	return t, nil
}

// obtainStandalone is obtain for a standalone grant with a Store, which only shares the
// grant's tokens (see ClientCredentials): the stored token if newer than cur and servable,
// else, under the key's lease, the stored token again, else a token from the server, saved
// before the lease is released. A Store that fails is passed by: the token is fetched here.
// So a fleet sends one token request per token lifetime, not one per process. The Store is a
// cache here, never a condition: should Load, Lock or Save fail, the token endpoint is asked
// and its token served, and the failure is an events.PersistFailed with OutcomeStore. The
// key must be kept apart from those of refresh grants, and the Endpoint's client, scopes and
// parameters the same for every process under one key. An invalid_client,
// unauthorized_client or invalid_scope answer says the Endpoint is misconfigured: it backs
// off as a refused grant (up to maxRefusedBackoff), never a dead grant.
func (s *TokenSource) obtainStandalone(ctx context.Context, cur *oauth2.Token) (*pending, error) {
	timeout, ttl := s.leaseTimes()
	lctx, cancel := context.WithTimeout(ctx, timeout)
	stored, err := s.cfg.store.Load(lctx, s.cfg.key)
	cancel()
	if err != nil {
		return s.fetchPast(ctx, cur, storeErr("loading", s.cfg.key, err))
	}
	if p, err := s.pickUp(stored, cur); p != nil || err != nil {
		return p, err
	}
	lease, end, err := s.lock(ctx, ttl)
	if err != nil {
		return s.fetchPast(ctx, cur, err)
	}
	defer s.release(ctx, lease)
	if p, err := s.pickUp(lease.Token(), cur); p != nil || err != nil {
		return p, err
	}
	rctx, cancel := context.WithDeadline(ctx, end.Add(-timeout/2))
	t, _, err := s.g.fetch(rctx, s, cur)
	cancel()
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithDeadline(ctx, end)
	err = lease.Save(sctx, t)
	cancel()
	if err != nil {
		s.storeFailed(storeErr("saving", s.cfg.key, err), t, cur)
	}
	return &pending{tok: t}, nil
}

// pickUp returns the pending token of stored when it is a token to use instead of asking the
// server (see fresher), nil when it is not, or the *DPoPKeyError of a token bound to another
// key.
func (s *TokenSource) pickUp(stored, cur *oauth2.Token) (*pending, error) {
	if err := s.e.checkBinding(s.cfg.key, stored); err != nil {
		return nil, err
	}
	if !s.fresher(stored, cur) {
		return nil, nil
	}
	s.emit(events.Event{Kind: events.StorePickup})
	return &pending{tok: stored, picked: true}, nil
}

// fetchPast is obtainStandalone past a Store that failed with err: a token from the server,
// not saved.
func (s *TokenSource) fetchPast(ctx context.Context, cur *oauth2.Token, err error) (*pending, error) {
	s.storeFailed(err, nil, cur)
	t, _, err := s.g.fetch(ctx, s, cur)
	if err != nil {
		return nil, err
	}
	return &pending{tok: t}, nil
}

// storeFailed reports err, a failure of the Store that a standalone grant passed by, as an
// events.PersistFailed, the tokens t and cur cut out of it.
func (s *TokenSource) storeFailed(err error, t, cur *oauth2.Token) {
	if s.cfg.events != nil {
		s.emit(events.Event{Kind: events.PersistFailed, Outcome: events.OutcomeStore, Attempt: 1,
			Err: redactError(s.redact(err, nil, cur), tokenSecrets(t)...)})
	}
}

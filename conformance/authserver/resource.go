package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"
)

// TokenInfo describes a valid access token, as the resource server sees it after
// introspection. It holds no token.
type TokenInfo struct {
	// GrantID is the Grant.ID of the token's family.
	GrantID string `json:"grant_id"`
	// ClientID is the client the token was issued to.
	ClientID string `json:"client_id"`
	// Subject is the resource owner.
	Subject string `json:"sub"`
	// Scopes are the granted scopes.
	Scopes []string `json:"scopes"`
	// ExpiresAt is when the access token expires.
	ExpiresAt time.Time `json:"expires_at"`
}

type tokenInfoKey struct{}

// TokenInfoFromContext returns the TokenInfo that Protect stored in a request's context.
func TokenInfoFromContext(ctx context.Context) (TokenInfo, bool) {
	ti, ok := ctx.Value(tokenInfoKey{}).(TokenInfo)
	return ti, ok
}

// Protect returns a handler that lets a request through to h only with a valid bearer access
// token issued by s (RFC 6750 §2.1), checked with fosite's introspection, and puts its
// TokenInfo in the request's context (TokenInfoFromContext). Otherwise it answers 401 with a
// WWW-Authenticate header (RFC 6750 §3): error="invalid_token" and a description saying
// "expired" or "not active" (revoked, rotated out, unknown), or no error for a request without
// a token.
func (s *Server) Protect(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.apiRequests.Add(1)
		token, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			s.apiRejected.Add(1)
			w.Header().Set("WWW-Authenticate", `Bearer realm="authserver"`)
			http.Error(w, "missing bearer token", http.StatusUnauthorized)
			return
		}
		ti, err := s.introspect(r.Context(), token)
		if err != nil {
			s.apiRejected.Add(1)
			desc := "the access token is not active"
			if errors.Is(err, fosite.ErrTokenExpired) {
				desc = "the access token expired"
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="authserver", error="invalid_token", error_description="`+desc+`"`)
			http.Error(w, desc, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenInfoKey{}, ti)))
	})
}

// introspect validates an access token under s.mu.
func (s *Server) introspect(ctx context.Context, token string) (TokenInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ar, err := s.provider.IntrospectToken(ctx, token, fosite.AccessToken, new(fosite.DefaultSession))
	if err != nil {
		return TokenInfo{}, err
	}
	return TokenInfo{
		GrantID:   ar.GetID(),
		ClientID:  ar.GetClient().GetID(),
		Subject:   ar.GetSession().GetSubject(),
		Scopes:    slices.Clone([]string(ar.GetGrantedScopes())),
		ExpiresAt: ar.GetSession().GetExpiresAt(fosite.AccessToken),
	}, nil
}

// bearer extracts the token of an "Authorization: Bearer" header.
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	return token, ok && strings.EqualFold(scheme, "Bearer") && token != ""
}

// serveTokenInfo answers with the JSON of the request's TokenInfo.
func serveTokenInfo(w http.ResponseWriter, r *http.Request) {
	ti, _ := TokenInfoFromContext(r.Context())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ti)
}

package oauth2refresh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/tokenkit/oauth2refresh/events"

	"golang.org/x/oauth2"
)

// Transport is an http.RoundTripper that authorizes each request with a token from Source
// (an "Authorization: Bearer" header). On a 401 Unauthorized it invalidates the token it sent
// (see TokenSource.Invalidate) and retries the request once with a fresh token, if the request
// can be replayed: it has no body, or GetBody is set (as http.NewRequest does for
// *bytes.Buffer, *bytes.Reader and *strings.Reader bodies). Otherwise, or when no other token
// can be had, the 401 response is returned as it came, with one exception: when the token
// cannot be replaced because the grant is dead, RoundTrip closes the 401's body and returns
// the Source's error, wrapped, so that errors.Is(err, ErrInvalidGrant) holds after
// client.Get. The grant is dead when that error matches ErrInvalidGrant: the server refused
// the refresh token (also GitHub's bad_refresh_token, and an *oauth2.RetrieveError of either
// code), the refresh token expired (ErrRefreshTokenExpired), or a *DeadGrantError (a Manager's
// grant refused, expired or revoked: ErrGrantRevoked). A temporary failure (no answer, a 5xx,
// the backoff after one) still returns the 401 as it came. An error from the Source before any
// request is sent is returned as it is.
//
// The token goes only where net/http's Client would forward an Authorization header set on
// the request: on a redirect (a request whose Response field is set), only when every hop
// since the first request went to its host or a subdomain of it (ports aside); once left out,
// it stays out for the rest of the chain, as the Client's rule has it. Other hops are sent as
// they are, through Base. The refreshes that 401s force are bounded: see Invalidate.
//
// A token of type DPoP (RFC 9449) goes as "Authorization: DPoP <token>" with a new proof by
// the Endpoint's DPoPKey for each request; see DPoPKey for nonces. Without a DPoPKey such a
// token cannot be sent, and RoundTrip fails.
//
// The request given to RoundTrip is not modified.
type Transport struct {
	// Source provides the tokens. It must not be nil. It may be any oauth2.TokenSource: a
	// *TokenSource, a Manager's Grant, or a source of the program's that decorates one.
	// RoundTrip calls its TokenContext method with the request's context, if it has one (so
	// that the request's context bounds the wait for a refresh), else Token: a type that
	// embeds a *TokenSource and decorates Token must decorate TokenContext too. The 401
	// retry needs an Invalidate(*oauth2.Token) method, as TokenSource and Grant have: a
	// source without one (an oauth2.ReuseTokenSource, a decorator that does not forward it)
	// gets no retry, and its 401s are returned as they came. DPoP-bound tokens and the
	// EventUnauthorizedRetry event need a *TokenSource or a Grant, or a type embedding one.
	Source oauth2.TokenSource

	// Base sends the requests. Nil means http.DefaultTransport.
	Base http.RoundTripper
}

// invalidator is a token source that can be told a token was rejected: TokenSource, Grant.
type invalidator interface{ Invalidate(t *oauth2.Token) }

// contextSource is a token source whose wait the caller's context bounds.
type contextSource interface {
	TokenContext(ctx context.Context) (*oauth2.Token, error)
}

// backedSource is implemented by *TokenSource and Grant, and by the types that embed either:
// hold returns the TokenSource behind the source now (its Endpoint's DPoP key, its events),
// kept in memory until release is called.
type backedSource interface {
	hold() (ts *TokenSource, release func(), err error)
}

func (s *TokenSource) hold() (*TokenSource, func(), error) { return s, func() {}, nil }

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	closeBody := func() {
		if req.Body != nil {
			req.Body.Close()
		}
	}
	if t.Source == nil {
		closeBody()
		return nil, errors.New("oauth2refresh: Transport has no Source")
	}
	if !sameSite(req) {
		return t.base().RoundTrip(req)
	}
	var ts *TokenSource // behind Source, if known
	var err error
	if b, ok := t.Source.(backedSource); ok {
		var release func()
		if ts, release, err = b.hold(); err != nil {
			closeBody()
			return nil, err
		}
		defer release()
	}
	ctx := req.Context()
	tok, err := t.token(ctx)
	if err != nil {
		closeBody()
		return nil, err
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	resp, err := t.send(ts, req, tok, req.Body)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || nonceChallenge(resp) {
		return resp, err // a DPoP nonce challenge does not judge the token
	}
	inv, ok := t.Source.(invalidator)
	if !ok {
		return resp, nil
	}
	// The token was rejected: drop it, whether or not this request can be retried.
	inv.Invalidate(tok)
	if !replayable {
		return resp, nil
	}
	tok2, err := t.token(ctx)
	if err != nil {
		if !deadGrant(err) {
			return resp, nil
		}
		discard(resp)
		return nil, fmt.Errorf("oauth2refresh: replacing the token the resource server rejected (HTTP 401): %w", err)
	}
	if tok2.AccessToken == tok.AccessToken {
		return resp, nil
	}
	body := req.Body
	if req.GetBody != nil {
		if body, err = req.GetBody(); err != nil {
			return resp, nil
		}
	}
	discard(resp)
	if ts != nil {
		ts.emit(events.Event{Kind: events.UnauthorizedRetry, Status: http.StatusUnauthorized})
	}
	resp, err = t.send(ts, req, tok2, body)
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		inv.Invalidate(tok2)
	}
	return resp, err
}

// token returns a token from t.Source, through TokenContext if it has one.
func (t *Transport) token(ctx context.Context) (*oauth2.Token, error) {
	if c, ok := t.Source.(contextSource); ok {
		return c.TokenContext(ctx)
	}
	return t.Source.Token()
}

// discard closes resp's body after reading a little of it, so the connection can be reused.
func discard(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
}

// deadGrant reports whether err, from a token source, says that its token cannot be replaced
// until the grant is authorized again: see Transport.
func deadGrant(err error) bool {
	if errors.Is(err, ErrInvalidGrant) || deadReason(err) != "" {
		return true
	}
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && (re.ErrorCode == "invalid_grant" || re.ErrorCode == "bad_refresh_token")
}

// send sends req with tok and body; ts, the TokenSource behind t.Source (nil if unknown),
// has the DPoP key.
func (t *Transport) send(ts *TokenSource, req *http.Request, tok *oauth2.Token, body io.ReadCloser) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Body = body
	if isDPoP(tok) {
		if ts == nil || ts.e == nil {
			return (*DPoPKey)(nil).roundTrip(t.base(), r, tok, nil)
		}
		return ts.e.DPoP.roundTrip(t.base(), r, tok, ts.emit)
	}
	tok.SetAuthHeader(r)
	return t.base().RoundTrip(r)
}

func (t *Transport) base() http.RoundTripper {
	if t.Base == nil {
		return http.DefaultTransport
	}
	return t.Base
}

// sameSite reports whether req, if it follows redirects, went only to the first request's host
// or its subdomains: net/http's shouldCopyHeaderOnRedirect, applied to every hop, because the
// Client strips an Authorization header for good once a hop leaves the first host.
func sameSite(req *http.Request) bool {
	var hops []*url.URL
	for r := req; r != nil; r = r.Response.Request {
		hops = append(hops, r.URL)
		if r.Response == nil {
			break
		}
	}
	first := hops[len(hops)-1]
	parent := strings.ToLower(first.Hostname())
	for _, u := range hops[:len(hops)-1] {
		sub := strings.ToLower(u.Hostname())
		// As net/http's isDomainOrSubdomain; ':' or '%' is an IPv6 address or a zone.
		if u.Host != first.Host && sub != parent &&
			(strings.ContainsAny(sub, ":%") || !strings.HasSuffix(sub, "."+parent)) {
			return false
		}
	}
	return true
}

// NewClient returns an *http.Client that authorizes its requests with tokens from s through a
// Transport, on top of the client found in ctx under oauth2.HTTPClient (its Transport,
// CheckRedirect, Jar and Timeout), else http.DefaultClient: the counterpart of
// oauth2.NewClient. s may be any oauth2.TokenSource (see Transport.Source): a *TokenSource, a
// Manager's Grant, or a source decorating one; the 401 retry needs its Invalidate method.
//
// Prefer it to oauth2.NewClient(ctx, s), which works but wraps s in an oauth2.ReuseTokenSource
// that asks s for a token only when the one it caches is 10 s from expiry: EarlyRefresh then
// never gets a chance (the request waits for the refresh), and a 401 is not retried.
// With Endpoint.DPoP it is required: oauth2.NewClient sends a DPoP-bound token (its Type is
// "DPoP") as "Authorization: DPoP <token>" without the proof RFC 9449 §7.1 requires, and the
// resource server refuses it.
//
// After a 401 whose token cannot be replaced because the grant is dead, the client's requests
// fail with the Source's error: errors.Is(err, ErrInvalidGrant) holds (see Transport).
//
// As with oauth2.NewClient, a nil s (or a nil *TokenSource) returns the client found in ctx,
// or http.DefaultClient.
func NewClient(ctx context.Context, s oauth2.TokenSource) *http.Client {
	c := http.DefaultClient
	if ctx != nil {
		if cc, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && cc != nil {
			c = cc
		}
	}
	if ts, ok := s.(*TokenSource); s == nil || ok && ts == nil {
		return c
	}
	return &http.Client{
		Transport:     &Transport{Source: s, Base: c.Transport},
		CheckRedirect: c.CheckRedirect,
		Jar:           c.Jar,
		Timeout:       c.Timeout,
	}
}

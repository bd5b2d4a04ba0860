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

// Transport is an http.RoundTripper that authorizes each request with a token from Source.
// On a 401 it invalidates the token (see TokenSource.Invalidate) and retries once with a new
// one if the request can be replayed (no body, or GetBody set); otherwise, or when no new
// token can be had, the 401 is returned as it came (the refreshes 401s force are bounded:
// see Invalidate). But when the grant is dead (its refresh token refused or expired, or
// revoked), RoundTrip closes the 401's body and returns the Source's error: errors.Is(err,
// ErrInvalidGrant). On a redirect the token is sent only while every hop stayed on the first
// host or its subdomains, as net/http's Client forwards Authorization. A DPoP token gets a
// new proof per request (see DPoPKey). The request is not modified.
type Transport struct {
	// Source provides the tokens; it must not be nil. RoundTrip calls its TokenContext, if it
	// has one, with the request's context: a type embedding a *TokenSource that decorates
	// Token must decorate TokenContext too. The 401 retry needs an Invalidate(*oauth2.Token)
	// method; DPoP and events need a *TokenSource or Grant, or a type embedding one.
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
// until the grant is authorized again (see Transport): it matches ErrInvalidGrant (a
// *DeadGrantError, a refusal with invalid_grant or GitHub's bad_refresh_token), the refresh
// token expired, or an *oauth2.RetrieveError of either code. A temporary failure (no answer, a
// 5xx, the backoff after one) is not: the 401 is then returned as it came.
func deadGrant(err error) bool {
	if errors.Is(err, ErrInvalidGrant) {
		return true
	}
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && (&RequestError{Code: re.ErrorCode}).Is(ErrInvalidGrant)
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
// Transport, on top of the client in ctx under oauth2.HTTPClient, else http.DefaultClient; a
// nil s returns that client. Prefer it to oauth2.NewClient(ctx, s), whose ReuseTokenSource
// keeps EarlyRefresh from running and the 401 retry from happening, and which sends DPoP
// tokens without a proof.
func NewClient(ctx context.Context, s oauth2.TokenSource) *http.Client {
	// Why not oauth2.NewClient: its ReuseTokenSource asks s for a token only when the one it
	// caches is 10 s from expiry, so the request waits for the refresh EarlyRefresh would
	// have done, and its Transport neither retries a 401 nor reports a dead grant. It sends a
	// DPoP-bound token (Type "DPoP") as "Authorization: DPoP <token>" without the proof RFC
	// 9449 §7.1 requires, which the resource server refuses. The client's CheckRedirect, Jar
	// and Timeout are kept.
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

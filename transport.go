package oauth2refresh

import (
	"context"
	"errors"
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
// can be had, the 401 response is returned as it came.
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
	// Source provides the tokens. It must not be nil.
	Source *TokenSource

	// Base sends the requests. Nil means http.DefaultTransport.
	Base http.RoundTripper
}

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
	ctx := req.Context()
	tok, err := t.Source.TokenContext(ctx)
	if err != nil {
		closeBody()
		return nil, err
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	resp, err := t.send(req, tok, req.Body)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || nonceChallenge(resp) {
		return resp, err // a DPoP nonce challenge does not judge the token
	}
	// The token was rejected: drop it, whether or not this request can be retried.
	t.Source.Invalidate(tok)
	if !replayable {
		return resp, nil
	}
	tok2, err := t.Source.TokenContext(ctx)
	if err != nil || tok2.AccessToken == tok.AccessToken {
		return resp, nil
	}
	body := req.Body
	if req.GetBody != nil {
		if body, err = req.GetBody(); err != nil {
			return resp, nil
		}
	}
	// Let the connection be reused.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	t.Source.emit(events.Event{Kind: events.UnauthorizedRetry, Status: http.StatusUnauthorized})
	resp, err = t.send(req, tok2, body)
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		t.Source.Invalidate(tok2)
	}
	return resp, err
}

func (t *Transport) send(req *http.Request, tok *oauth2.Token, body io.ReadCloser) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Body = body
	if isDPoP(tok) {
		return t.Source.e.DPoP.roundTrip(t.base(), r, tok, t.Source.emit)
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
// oauth2.NewClient.
//
// Prefer it to oauth2.NewClient(ctx, s), which works but wraps s in an oauth2.ReuseTokenSource
// that asks s for a token only when the one it caches is 10 s from expiry: EarlyRefresh then
// never gets a chance (the request waits for the refresh), and a 401 is not retried.
// With Endpoint.DPoP it is required: oauth2.NewClient sends a DPoP-bound token (its Type is
// "DPoP") as "Authorization: DPoP <token>" without the proof RFC 9449 §7.1 requires, and the
// resource server refuses it.
//
// As with oauth2.NewClient, a nil s returns the client found in ctx, or http.DefaultClient.
func NewClient(ctx context.Context, s *TokenSource) *http.Client {
	c := http.DefaultClient
	if ctx != nil {
		if cc, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && cc != nil {
			c = cc
		}
	}
	if s == nil {
		return c
	}
	return &http.Client{
		Transport:     &Transport{Source: s, Base: c.Transport},
		CheckRedirect: c.CheckRedirect,
		Jar:           c.Jar,
		Timeout:       c.Timeout,
	}
}

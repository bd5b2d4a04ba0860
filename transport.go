package oauth2refresh

import (
	"context"
	"errors"
	"io"
	"net/http"

	"golang.org/x/oauth2"
)

// Transport is an http.RoundTripper that authorizes each request with a token from Source
// (an "Authorization: Bearer" header). Whenever the resource server answers 401 Unauthorized,
// it invalidates the token it sent (see TokenSource.Invalidate), so that later requests carry
// a fresh one, and retries the request once with a fresh token. The retry is only made when
// the request can be replayed: it has no body, or GetBody is set (as http.NewRequest does for
// *bytes.Buffer, *bytes.Reader and *strings.Reader bodies). Otherwise, or when no other token
// can be had, the 401 response is returned as it came.
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
	ctx := req.Context()
	tok, err := t.Source.TokenContext(ctx)
	if err != nil {
		closeBody()
		return nil, err
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	resp, err := t.send(req, tok.Type()+" "+tok.AccessToken, req.Body)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
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
	resp, err = t.send(req, tok2.Type()+" "+tok2.AccessToken, body)
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		t.Source.Invalidate(tok2)
	}
	return resp, err
}

func (t *Transport) send(req *http.Request, auth string, body io.ReadCloser) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Body = body
	r.Header.Set("Authorization", auth)
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}

// NewClient returns an *http.Client that authorizes its requests with tokens from s through a
// Transport, on top of the client found in ctx under oauth2.HTTPClient (its Transport,
// CheckRedirect, Jar and Timeout), else http.DefaultClient: the counterpart of
// oauth2.NewClient.
//
// Prefer it to oauth2.NewClient(ctx, s), which works but wraps s in an oauth2.ReuseTokenSource
// that asks s for a token only when the one it caches is 10 s from expiry: EarlyRefresh then
// never gets a chance (the request waits for the refresh), and a 401 is not retried.
func NewClient(ctx context.Context, s *TokenSource) *http.Client {
	c := http.DefaultClient
	if ctx != nil {
		if cc, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && cc != nil {
			c = cc
		}
	}
	return &http.Client{
		Transport:     &Transport{Source: s, Base: c.Transport},
		CheckRedirect: c.CheckRedirect,
		Jar:           c.Jar,
		Timeout:       c.Timeout,
	}
}

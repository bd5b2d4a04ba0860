package oauth2refresh

// errors.go holds the error types and sentinels, and what the package knows of RFC 6749 §5.2
// error codes. response.go builds the errors.

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/tokenkit/oauth2refresh/internal/quote"
	"golang.org/x/oauth2"
)

// Sentinels for the error codes callers branch on: a *RequestError matches the one of its
// Code under errors.Is. For other codes, branch on RequestError.Code.
var (
	// ErrInvalidGrant: the refresh token is invalid, expired, revoked or another client's.
	ErrInvalidGrant error = &codeError{"invalid_grant"}
	// ErrInvalidClient: the server refused the client's authentication.
	ErrInvalidClient error = &codeError{"invalid_client"}
	// ErrInvalidScope: the scope asked for is invalid or exceeds the grant.
	ErrInvalidScope error = &codeError{"invalid_scope"}
)

// ErrRefreshTokenExpired: the refresh token expired (see RefreshTokenExpiry), so it was not
// sent. It also matches ErrInvalidGrant.
var ErrRefreshTokenExpired error = &refreshExpiredError{}

// refreshExpiredError is the type of ErrRefreshTokenExpired, and of the errors that say when.
// A TokenSource backs off after it as after a refused grant, and reports it with
// events.OutcomeInvalidGrant, so that a program that asks the user to sign in again on a
// refused grant does so here too.
type refreshExpiredError struct{ at time.Time }

func (e *refreshExpiredError) Error() string {
	s := "oauth2refresh: refresh token expired"
	if !e.at.IsZero() {
		s += " at " + formatTime(e.at)
	}
	return s + ": the grant must be authorized again"
}

// Is reports whether target is ErrRefreshTokenExpired or ErrInvalidGrant.
func (e *refreshExpiredError) Is(target error) bool {
	return target == ErrRefreshTokenExpired || target == ErrInvalidGrant
}

// codeError is the type of the code sentinels.
type codeError struct{ code string }

func (e *codeError) Error() string { return "oauth2refresh: " + e.code }

// codeKind is what an error code says about the request that got it.
type codeKind uint8

const (
	codeOther     codeKind = iota // unknown: temporary at HTTP 429 and 5xx only
	codePermanent                 // the same request will fail again
	codeGrant                     // permanent, and the server judged the grant itself
	codeClient                    // permanent: the server rejected the client's authentication
	codeTemporary                 // the same request may succeed later
)

// codeKinds is the one list of the error codes this package knows: those of RFC 6749 §5.2,
// and GitHub's names for invalid_client and invalid_grant, which it answers with HTTP 200.
var codeKinds = map[string]codeKind{
	"invalid_request":              codePermanent,
	"invalid_client":               codeClient,
	"invalid_grant":                codeGrant,
	"unauthorized_client":          codeClient,
	"unsupported_grant_type":       codePermanent,
	"invalid_scope":                codeGrant,
	"server_error":                 codeTemporary,
	"temporarily_unavailable":      codeTemporary,
	"incorrect_client_credentials": codeClient,
	"bad_refresh_token":            codeGrant,
}

// RequestError is an error response (RFC 6749 §5.2), at any HTTP status (GitHub sends 200).
// errors.As with a **oauth2.RetrieveError target succeeds too, as with x/oauth2.
type RequestError struct {
	// Code, Description and URI are the error, error_description and error_uri members.
	Code        string
	Description string
	URI         string
	// StatusCode, Header, Body: the status, headers and first 4 KiB of the body.
	StatusCode int
	Header     http.Header
	Body       []byte // the start of the body, at most 4 KiB

	resp *http.Response // the response for oauth2.RetrieveError, if known
}

// maxErrorBody is how many bytes of a response body an error keeps in its Body field.
const maxErrorBody = 4 << 10

func (e *RequestError) Error() string {
	s := "oauth2refresh: token endpoint returned " + strconv.Quote(truncate(e.Code, 64))
	if e.StatusCode != 0 {
		s += " (HTTP " + strconv.Itoa(e.StatusCode) + ")"
	}
	if e.Description != "" {
		s += ": " + truncate(oneLine(e.Description), 200)
	}
	return s
}

// Is reports whether target is the sentinel of e.Code.
func (e *RequestError) Is(target error) bool {
	c, ok := target.(*codeError)
	if !ok {
		return false
	}
	code := e.Code
	if std, ok := codeAliases[code]; ok {
		code = std
	}
	return c.code == code
}

// codeAliases maps the codes a provider sends in place of RFC 6749's to the standard one,
// whose sentinel they match: GitHub's, at HTTP 200.
var codeAliases = map[string]string{
	"bad_refresh_token":            "invalid_grant",
	"incorrect_client_credentials": "invalid_client",
}

// As fills a **oauth2.RetrieveError target.
func (e *RequestError) As(target any) bool {
	p, ok := target.(**oauth2.RetrieveError)
	if ok {
		*p = &oauth2.RetrieveError{Response: response(e.resp, e.StatusCode, e.Header), Body: e.Body,
			ErrorCode: e.Code, ErrorDescription: e.Description, ErrorURI: e.URI}
	}
	return ok
}

// temporary reports whether the same request may succeed later: see IsTemporary.
func (e *RequestError) temporary() bool {
	switch codeKinds[e.Code] {
	case codeTemporary:
		return true
	case codeOther:
		return temporaryStatus(e.StatusCode)
	}
	return false
}

// UnexpectedResponseError is an answer that is neither a token nor an error response (an
// HTML page, a redirect). Non-2xx, it is also an *oauth2.RetrieveError under errors.As.
type UnexpectedResponseError struct {
	// StatusCode, Header, Body: the status, headers and first 4 KiB of the body.
	StatusCode int
	Header     http.Header
	Body       []byte // the start of the body, at most 4 KiB
	// Err says what was wrong, if more than the status.
	Err error
	// Token is the token issued, if it did not decode into RefreshAccessToken's T.
	Token *oauth2.Token

	resp *http.Response // the response for oauth2.RetrieveError, if known
}

func (e *UnexpectedResponseError) Error() string {
	s := "oauth2refresh: unexpected token endpoint response (HTTP " + strconv.Itoa(e.StatusCode) + ")"
	if e.Err != nil {
		s += ": " + oneLine(e.Err.Error())
	}
	return s
}

// Unwrap returns e.Err.
func (e *UnexpectedResponseError) Unwrap() error { return e.Err }

// temporary reports whether the same request may succeed later: see IsTemporary.
func (e *UnexpectedResponseError) temporary() bool { return temporaryStatus(e.StatusCode) }

// As fills a **oauth2.RetrieveError target, for a non-2xx status.
func (e *UnexpectedResponseError) As(target any) bool {
	p, ok := target.(**oauth2.RetrieveError)
	if !ok || (e.StatusCode >= 200 && e.StatusCode < 300) {
		return false
	}
	*p = &oauth2.RetrieveError{Response: response(e.resp, e.StatusCode, e.Header), Body: e.Body}
	return true
}

// TransportError is a request that got no response (DNS, TLS, a timeout, ctx ending).
type TransportError struct {
	// Err is the cause; a redacted stand-in if its text held a secret.
	Err error
}

func (e *TransportError) Error() string {
	return "oauth2refresh: token request failed: " + oneLine(e.Err.Error())
}

// Unwrap returns e.Err.
func (e *TransportError) Unwrap() error { return e.Err }

// temporary reports whether the same request may succeed later: see IsTemporary.
func (e *TransportError) temporary() bool { return !errors.Is(e.Err, context.Canceled) }

// IsTemporary reports whether err says the same request may succeed later: a *RequestError
// of server_error, temporarily_unavailable or an unknown code at HTTP 429 or 5xx, an
// *UnexpectedResponseError at 429 or 5xx, or a *TransportError not from a canceled context.
// The first of these in err's chain decides; a wrapper's own Temporary method plays no part.
func IsTemporary(err error) bool {
	var t interface{ temporary() bool }
	return errors.As(err, &t) && t.temporary()
}

func temporaryStatus(code int) bool {
	return code == http.StatusTooManyRequests || code >= 500
}

// response is the response x/oauth2 puts in a RetrieveError: r, with the status and header of
// the error and its body read, or one made of them for an error built by hand.
func response(r *http.Response, code int, h http.Header) *http.Response {
	c := http.Response{Status: strconv.Itoa(code) + " " + http.StatusText(code)}
	if r != nil {
		c = *r
	}
	c.StatusCode, c.Header, c.Body = code, h, http.NoBody
	return &c
}

// oneLine replaces the control characters of s (newlines, tabs, escapes) with spaces, so an
// error message stays on one line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
}

// truncate shortens s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string { return quote.Truncate(s, n) }

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

// Sentinels for the RFC 6749 §5.2 error codes that callers branch on. A *RequestError matches
// the sentinel of its Code under errors.Is:
//
//	if errors.Is(err, oauth2refresh.ErrInvalidGrant) { /* ask the user to sign in again */ }
//
// Other codes (invalid_request, unauthorized_client, unsupported_grant_type, a provider's own)
// have no sentinel: read RequestError.Code.
var (
	// ErrInvalidGrant: the refresh token is invalid, expired, revoked, or was issued to
	// another client. Retrying the same refresh token will not help.
	ErrInvalidGrant error = &codeError{"invalid_grant"}
	// ErrInvalidClient: client authentication failed (unknown client, wrong secret, or an
	// authentication method the server does not accept for this client).
	ErrInvalidClient error = &codeError{"invalid_client"}
	// ErrInvalidScope: the requested scope is invalid, unknown, or exceeds the grant.
	ErrInvalidScope error = &codeError{"invalid_scope"}
)

// ErrRefreshTokenExpired: the refresh token of the grant expired, as the server said when it
// issued it (see RefreshTokenExpiry), so a TokenSource did not send it: the grant must be
// authorized again. errors.Is(err, ErrInvalidGrant) also holds for it, so that a program that
// asks the user to sign in again on a refused grant does so here too. The TokenSource backs
// off as after a refused grant, and its events.Event events.Outcome is events.OutcomeInvalidGrant.
var ErrRefreshTokenExpired error = &refreshExpiredError{}

// refreshExpiredError is the type of ErrRefreshTokenExpired, and of the errors that say when.
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

// RequestError is an OAuth 2.0 error response (RFC 6749 §5.2) from the token endpoint: the
// server understood the request and refused it. It is returned whatever the HTTP status, since
// some providers (GitHub, Slack) answer errors with 200 OK.
//
// errors.Is(err, ErrInvalidGrant), ErrInvalidClient and ErrInvalidScope match on Code. errors.As with a
// **oauth2.RetrieveError target also succeeds, filled as golang.org/x/oauth2 fills it (its
// Response has the status, Header, and the token request without its body and Authorization
// header), so code written for x/oauth2 keeps working.
//
// Its fields have the secrets cut out: see the package documentation under Errors.
type RequestError struct {
	// Code is the "error" member, e.g. "invalid_grant".
	Code string
	// Description is the "error_description" member, if any.
	Description string
	// URI is the "error_uri" member, if any.
	URI string
	// StatusCode is the HTTP status of the response.
	StatusCode int
	// Header holds the response headers (Retry-After, WWW-Authenticate, ...).
	Header http.Header
	// Body is the start of the response body, at most 4 KiB.
	Body []byte

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

// Is reports whether target is the sentinel for e.Code.
func (e *RequestError) Is(target error) bool {
	c, ok := target.(*codeError)
	return ok && c.code == e.Code
}

// As fills a **oauth2.RetrieveError target the way golang.org/x/oauth2 would have.
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

// UnexpectedResponseError is a response from the token endpoint that is neither a token
// response nor an RFC 6749 §5.2 error object: an HTML page from a proxy, truncated JSON, a
// success without an access_token, a redirect, a non-standard error body.
//
// For a non-2xx status, errors.As with a **oauth2.RetrieveError target succeeds, filled as
// golang.org/x/oauth2 would have filled it.
//
// Its fields have the secrets cut out: see the package documentation under Errors.
type UnexpectedResponseError struct {
	// StatusCode is the HTTP status of the response.
	StatusCode int
	// Header holds the response headers.
	Header http.Header
	// Body is the start of the response body, at most 4 KiB.
	Body []byte
	// Err says what was wrong with the response, when more can be said than its status.
	Err error
	// Token is the token the server issued, when it could not be decoded into the T of
	// RefreshAccessToken (which says why to save its RefreshToken); nil otherwise. Error never
	// shows it, and its tokens are redacted from Body.
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

// As fills a **oauth2.RetrieveError target for a non-2xx response.
func (e *UnexpectedResponseError) As(target any) bool {
	p, ok := target.(**oauth2.RetrieveError)
	if !ok || (e.StatusCode >= 200 && e.StatusCode < 300) {
		return false
	}
	*p = &oauth2.RetrieveError{Response: response(e.resp, e.StatusCode, e.Header), Body: e.Body}
	return true
}

// TransportError is a failure to get any response from the token endpoint: DNS, connection,
// TLS, a timeout, or the caller's context ending.
type TransportError struct {
	// Err is the cause, as returned by the http.Client, so that errors.Is(err,
	// context.DeadlineExceeded) and errors.As(err, &netOpErr) work; but a redacted stand-in
	// when an error of its chain quotes a secret (see the package documentation under Errors).
	Err error
}

func (e *TransportError) Error() string {
	return "oauth2refresh: token request failed: " + oneLine(e.Err.Error())
}

// Unwrap returns e.Err.
func (e *TransportError) Unwrap() error { return e.Err }

// temporary reports whether the same request may succeed later: see IsTemporary.
func (e *TransportError) temporary() bool { return !errors.Is(e.Err, context.Canceled) }

// IsTemporary reports whether the first *RequestError, *UnexpectedResponseError or
// *TransportError in err's chain (errors.As) says that the same request may succeed later;
// false when there is none. A wrapper's own Temporary method, if any, plays no part.
//
//   - A *RequestError: the error codes of RFC 6749 §5.2 (invalid_grant, invalid_client, ...)
//     are permanent whatever the status; temporarily_unavailable and server_error are
//     temporary; any other code is temporary at HTTP 429 and 5xx only.
//   - An *UnexpectedResponseError: temporary at HTTP 429 and 5xx.
//   - A *TransportError: temporary, except when the request ended because its context was
//     canceled. A deadline that passed is temporary: the endpoint may answer faster next time.
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

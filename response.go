package oauth2refresh

// response.go turns what came back from the token endpoint into a token or a typed error. It
// is the one place that builds *TransportError, *RequestError and *UnexpectedResponseError,
// and it cuts the secrets out of them (redact.go) as it builds them.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/tokenkit/oauth2refresh/internal/marks"
	"golang.org/x/oauth2"
)

// maxResponseBody is the most a token response body may hold; a larger one is an
// *UnexpectedResponseError.
const maxResponseBody = 1 << 20

// sent is what the token request carried that the response side needs: the secrets to cut out
// of errors (assertion is the client assertion, if any; spent, with a DPoP key, the request's
// proof and the proofs and assertions of the earlier requests of the exchange, see
// request.spent), the request to show in oauth2.RetrieveError.Response.Request, and the DPoP
// key of its proof, if any.
type sent struct {
	req                                             *http.Request
	refreshToken, clientID, clientSecret, assertion string
	spent                                           []string
	dpop                                            *DPoPKey
}

// reply is a response being read.
type reply struct {
	sent
	resp            *http.Response
	body            []byte
	obj             map[string]any // the JSON object, or the first value of each form field
	extra           any            // what the token's Extra reads: obj, or the form's url.Values
	code, desc, uri string         // the RFC 6749 §5.2 error, when code is not ""
	tok             *oauth2.Token  // the token issued, when the error is decoding it into a T
}

// readResponse turns the outcome of a token request (resp, or the error of http.Client.Do)
// into a token, with its Expiry stamped by now, or into the typed error it stands for. It
// never panics, whatever the body. A success is also decoded into into, if not nil.
func readResponse(s sent, resp *http.Response, err error, now func() time.Time, into any) (*oauth2.Token, error) {
	r := &reply{sent: s, resp: resp}
	if err != nil {
		var ue *url.Error // it quotes the token URL: drop a password the caller put there
		if errors.As(err, &ue) {
			if u, perr := url.Parse(ue.URL); perr == nil && u.User != nil {
				ue.URL = u.Redacted()
			}
		}
		return nil, &TransportError{Err: r.redactor().error(err)}
	}
	defer resp.Body.Close()
	r.body, err = io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	switch {
	case err != nil:
		return nil, &TransportError{Err: r.redactor().error(fmt.Errorf("reading token response: %w", err))}
	case len(r.body) > maxResponseBody:
		return nil, r.fail(errors.New("body exceeds 1 MiB"))
	case resp.StatusCode >= 300 && resp.StatusCode <= 399:
		return nil, r.fail(errors.New("redirect not followed"))
	}
	if err := r.decode(); err != nil {
		if !ok {
			err = nil // the status says enough
		}
		return nil, r.fail(err)
	}
	if r.code != "" || !ok {
		return nil, r.fail(nil)
	}
	tok, err := r.token(now)
	if err != nil {
		return nil, r.fail(err)
	}
	if into != nil {
		if err := r.decodeInto(into); err != nil {
			r.tok = tok
			return nil, r.fail(fmt.Errorf("decoding token response into %v: %w", reflect.TypeOf(into).Elem(), err))
		}
	}
	return tok, nil
}

// decode reads the body as a form, when the Content-Type says so (GitHub without an Accept
// header) or is text/plain and the body does not start with '{', and as a JSON object
// otherwise; it notes the error code, if any.
func (r *reply) decode() error {
	ct, mt := r.resp.Header.Get("Content-Type"), "application/json"
	if !strings.HasPrefix(ct, mt) { // the usual answer needs no parsing
		mt, _, _ = mime.ParseMediaType(ct)
	}
	if (mt == "application/x-www-form-urlencoded" || mt == "text/plain") && !bytes.HasPrefix(bytes.TrimLeft(r.body, " \t\r\n"), []byte("{")) {
		vals, err := url.ParseQuery(string(r.body))
		if err != nil {
			return errors.New("malformed form-encoded body")
		}
		r.obj, r.extra = make(map[string]any, len(vals)), vals
		for k, v := range vals {
			r.obj[k] = v[0]
		}
	} else {
		// A number beyond float64 makes an *json.UnmarshalTypeError, with the object decoded
		// all the same and the member holding the number nil: unreadable, treated as absent.
		if err := json.Unmarshal(r.body, &r.obj); err != nil {
			if te := (*json.UnmarshalTypeError)(nil); !errors.As(err, &te) || r.obj == nil {
				return fmt.Errorf("decoding JSON: %w", err)
			}
		}
		if r.obj == nil {
			return errors.New("body is not a JSON object")
		}
		r.extra = r.obj
	}
	if code, ok := r.obj["error"].(string); ok && code != "" {
		r.code = code
		r.desc, _ = r.obj["error_description"].(string)
		r.uri, _ = r.obj["error_uri"].(string)
	}
	return nil
}

// token returns the token of a success (RFC 6749 §5.1), as Endpoint.Refresh says. Expiry
// is set from expires_in, capped at 2^31-1 seconds as golang.org/x/oauth2 caps it. An
// expires_in that is not a non-negative number of seconds, a token_type that is not a string
// (Type then says "Bearer"), and a number beyond the range of a float64 anywhere in the body
// (nil in Extra) are treated as absent; a refresh_token that is not a string is an error
// (there is no refresh token in it to keep). A token of type DPoP gets the "dpop_jkt" Extra
// member of the key of the proof, and refresh_token_expires_in becomes refresh_expiry.
func (r *reply) token(now func() time.Time) (*oauth2.Token, error) {
	t := oauth2.Token{RefreshToken: r.refreshToken}
	if t.AccessToken, _ = r.obj["access_token"].(string); t.AccessToken == "" {
		return nil, errors.New("no access_token in response")
	}
	switch rt := r.obj["refresh_token"].(type) {
	case nil:
	case string:
		if rt != "" {
			t.RefreshToken = rt
		}
	default:
		return nil, errors.New("refresh_token is not a string")
	}
	t.TokenType, _ = r.obj["token_type"].(string)
	set := func(k, v string) { // a member of Extra that the response did not have
		if vals, ok := r.extra.(url.Values); ok {
			vals.Set(k, v)
		} else {
			r.obj[k] = v
		}
	}
	if r.dpop != nil && isDPoP(&t) { // bound to the key of the proof: see Endpoint.DPoP
		set("dpop_jkt", r.dpop.jkt)
	}
	if n, _ := seconds(r.obj["refresh_token_expires_in"]); n > 0 {
		set(refreshExpiryKey, formatTime(now().Add(time.Duration(n)*time.Second)))
	}
	if t.ExpiresIn, _ = seconds(r.obj["expires_in"]); t.ExpiresIn > 0 {
		t.Expiry = now().Add(time.Duration(t.ExpiresIn) * time.Second)
	}
	return t.WithExtra(r.extra), nil
}

// refreshExpiryKey is the Extra member that records when a token's refresh token expires
// (refresh_token_expires_in: GitHub Apps, Microsoft Entra, Auth0), computed once, on receipt;
// a TokenSource does not send a refresh token past it.
const refreshExpiryKey = marks.RefreshExpiryKey

// RefreshTokenExpiry returns when t's refresh token expires, from the
// refresh_token_expires_in of the response that issued it, or the zero time if unknown. It is
// recorded on receipt as t.Extra("refresh_expiry"), an RFC 3339 string, which the stores keep.
func RefreshTokenExpiry(t *oauth2.Token) time.Time {
	if t == nil {
		return time.Time{}
	}
	s, _ := t.Extra(refreshExpiryKey).(string)
	exp, _ := time.Parse(time.RFC3339, s)
	return exp
}

// formatTime returns t in RFC 3339, in UTC, to the second; "" for the zero time.
func formatTime(t time.Time) string { return marks.FormatTime(t) }

// decodeInto decodes a success into into, a *T, as RefreshAccessToken says.
func (r *reply) decodeInto(into any) error {
	body := r.body
	if _, isForm := r.extra.(url.Values); isForm {
		body, _ = json.Marshal(r.obj)
	}
	err := json.Unmarshal(body, into)
	if err != nil {
		var raw map[string]json.RawMessage // members as sent: a float64 would round numbers
		json.Unmarshal(body, &raw)         // an object, as decode found
		n := len(raw)
		for k, v := range raw {
			_, readable := seconds(r.obj[k])
			_, isString := r.obj[k].(string)
			if k == "token_type" && !isString || k == "expires_in" && !readable || json.Unmarshal(v, new(any)) != nil {
				delete(raw, k)
			}
		}
		if len(raw) < n {
			body, _ = json.Marshal(raw)
			reflect.ValueOf(into).Elem().SetZero()
			err = json.Unmarshal(body, into)
		}
	}
	if err != nil {
		return err
	}
	for _, v := range [...]any{into, reflect.ValueOf(into).Elem().Interface()} {
		if tr, ok := v.(interface{ tokenResponse() *TokenResponse }); ok {
			if p := tr.tokenResponse(); p != nil && p.RefreshToken == "" {
				p.RefreshToken = r.refreshToken
			}
			break
		}
	}
	return nil
}

// redactor returns the redactor for the secrets known so far: those sent (an assertion or a
// DPoP proof whole and each of its JWS parts), and the tokens of the response (access_token,
// refresh_token, id_token).
func (r *reply) redactor() *redactor {
	secrets := append([]string{r.refreshToken}, jwsParts(r.assertion)...)
	for _, s := range r.spent {
		secrets = append(secrets, jwsParts(s)...)
	}
	for _, k := range [...]string{"access_token", "refresh_token", "id_token"} {
		if s, ok := r.obj[k].(string); ok {
			secrets = append(secrets, s)
		}
	}
	return newRedactor(r.clientID, r.clientSecret, secrets...)
}

// fail returns the error for a response that is not a token: a *RequestError when the body
// holds an error code, else an *UnexpectedResponseError whose Err is why (nil when the status
// says enough). It is the one constructor of both, and cuts the secrets out of every field.
func (r *reply) fail(why error) error {
	red := r.redactor()
	// The request as oauth2.RetrieveError.Response.Request shows it, without its secrets.
	req := r.req.Clone(context.Background())
	req.Header.Del("Authorization")
	req.Header = red.header(req.Header) // the DPoP proof
	req.Body, req.GetBody, req.ContentLength = http.NoBody, nil, 0
	req.URL.User = nil
	resp := &http.Response{StatusCode: r.resp.StatusCode, Status: red.text(r.resp.Status),
		Header: red.header(r.resp.Header), Body: http.NoBody, Request: req}
	body := red.text(string(r.body)) // whole, then cut short: no start of a secret is left
	keep := []byte(body[:min(len(body), maxErrorBody)])
	if r.code != "" {
		return &RequestError{Code: red.text(r.code), Description: red.text(r.desc), URI: red.text(r.uri),
			StatusCode: resp.StatusCode, Header: resp.Header, Body: keep, resp: resp}
	}
	return &UnexpectedResponseError{StatusCode: resp.StatusCode, Header: resp.Header, Body: keep,
		Err: red.error(why), Token: r.tok, resp: resp}
}

// TokenResponse is a successful token response (RFC 6749 §5.1), to embed in a struct of
// provider-specific fields for RefreshAccessToken:
//
//	type googleToken struct {
//		oauth2refresh.TokenResponse
//		IDToken string `json:"id_token"`
//	}
type TokenResponse struct {
	AccessToken  string  `json:"access_token"`
	TokenType    string  `json:"token_type"`
	ExpiresIn    Seconds `json:"expires_in,omitempty"`
	RefreshToken string  `json:"refresh_token,omitempty"`
	Scope        string  `json:"scope,omitempty"`
}

func (r *TokenResponse) tokenResponse() *TokenResponse { return r }

// Seconds is the type of TokenResponse.ExpiresIn: a JSON number or numeric string, capped at
// 2^31-1. Anything else (negative, NaN, an object) decodes to zero, meaning absent.
type Seconds int64

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	if string(b) != "null" {
		var v any
		json.Unmarshal(b, &v) // v stays nil when b is not JSON or a number beyond float64
		n, _ := seconds(v)
		*s = Seconds(n)
	}
	return nil
}

// seconds reads an expires_in as JSON or a form decodes it, as Seconds says; a string may have
// spaces around the number. ok is false, and n zero, for a value Seconds reads as absent. A
// fraction is dropped, and values above 2^31-1 (about 68 years) are capped, as
// golang.org/x/oauth2 caps expires_in. null leaves a Seconds unchanged, and "" decodes to
// zero. A value that cannot be read is absent, never an error: a success must not be turned
// into a failure that would lose the rotated refresh token (see Endpoint.Refresh).
func seconds(v any) (n int64, ok bool) {
	f := -1.0
	switch v := v.(type) {
	case nil:
		return 0, true
	case float64:
		f = v
	case string:
		s := strings.TrimSpace(v)
		if s == "" {
			return 0, true
		}
		if c := s[0]; (c == '-' || '0' <= c && c <= '9') && json.Valid([]byte(s)) {
			if g, err := strconv.ParseFloat(s, 64); err == nil {
				f = g
			}
		}
	}
	if !(f >= 0) { // negative, NaN, or not a number
		return 0, false
	}
	return int64(min(f, math.MaxInt32)), true
}

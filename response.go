package oauth2refresh

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/oauth2"
)

// response is a validated token response.
type response struct {
	status     int
	statusLine string
	header     http.Header
	body       []byte
	red        redactor

	json map[string]any // the decoded JSON object, or nil
	form url.Values     // the decoded form body, or nil

	accessToken, tokenType, refreshToken string
	expiresIn                            int64 // seconds; 0 means none given

	// ignored lists the members that were present but unreadable, and so treated as absent
	// (token_type, expires_in); nil on a clean response.
	ignored []string
}

func (r *response) token(now time.Time) *oauth2.Token {
	t := oauth2.Token{
		AccessToken:  r.accessToken,
		TokenType:    r.tokenType,
		RefreshToken: r.refreshToken,
		ExpiresIn:    r.expiresIn,
	}
	if r.expiresIn > 0 {
		t.Expiry = now.Add(time.Duration(r.expiresIn) * time.Second)
	}
	if r.json != nil {
		return t.WithExtra(r.json)
	}
	return t.WithExtra(r.form)
}

// parseResponse turns a token endpoint response into a validated token response or the typed
// error it stands for: a *RequestError or an *UnexpectedResponseError, nothing else. It never
// panics, whatever the body. The secrets in red, and the tokens of the response, are cut out
// of anything that reaches an error. red.refreshToken is the refresh token that was sent.
//
// A success stays a success whatever token_type and expires_in hold: they only describe the
// access token, and turning the response into an error would throw away the new access token
// and the rotated refresh token, which loses the grant on a server that rotates refresh tokens
// (the one that was sent is spent). So a token_type that is not a string is treated as absent
// (oauth2.Token.Type then says Bearer), and an expires_in that is not a non-negative number of
// seconds, as a JSON number or a numeric string, is treated as absent (no Expiry). Both are
// listed in response.ignored and stay in Extra as sent. A refresh_token that is not a string
// is still an *UnexpectedResponseError: there is no refresh token in it to keep.
func parseResponse(status int, statusLine string, header http.Header, body []byte, red redactor) (response, error) {
	r := response{status: status, statusLine: statusLine, header: header, body: body}
	sent := red.refreshToken
	unexpected := func(err error) error {
		return &UnexpectedResponseError{StatusCode: status, status: statusLine, Header: header, Body: red.keep(body), Err: err}
	}
	if status >= 300 && status < 400 {
		return response{}, unexpected(errors.New("redirect not followed"))
	}
	var code, desc, uri string
	var hasCode bool
	var access, refresh, typ, expires any
	if isForm(header.Get("Content-Type"), body) {
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return response{}, unexpected(errors.New("malformed form-encoded body"))
		}
		r.form = vals
		if v, ok := vals["error"]; ok {
			code, hasCode = v[0], true
			desc, uri = vals.Get("error_description"), vals.Get("error_uri")
		}
		access, refresh, typ = formValue(vals, "access_token"), formValue(vals, "refresh_token"), formValue(vals, "token_type")
		expires = formValue(vals, "expires_in")
		red.add(vals.Get("access_token"))
		red.add(vals.Get("refresh_token"))
		red.add(vals.Get("id_token"))
	} else {
		var err error
		if r.json, err = decodeJSONObject(body); err != nil || r.json == nil {
			if status < 200 || status > 299 {
				return response{}, unexpected(nil)
			}
			if err == nil {
				err = errors.New("body is not a JSON object")
			} else {
				// A JSON error may quote a number from the body.
				err = &redactedError{msg: "decoding JSON: " + red.message(err), err: err}
			}
			return response{}, unexpected(err)
		}
		code, hasCode = r.json["error"].(string)
		if hasCode {
			desc, _ = r.json["error_description"].(string)
			uri, _ = r.json["error_uri"].(string)
		}
		access, refresh, typ, expires = r.json["access_token"], r.json["refresh_token"], r.json["token_type"], r.json["expires_in"]
		for _, k := range [...]string{"access_token", "refresh_token", "id_token"} {
			if s, ok := r.json[k].(string); ok {
				red.add(s)
			}
		}
	}
	r.red = red
	if hasCode && code != "" {
		return response{}, &RequestError{Code: red.redact(code), Description: red.redactText(desc), URI: red.redactText(uri),
			StatusCode: status, status: statusLine, Header: header, Body: red.keep(body)}
	}
	if status < 200 || status > 299 {
		return response{}, unexpected(nil)
	}
	var ok bool
	if r.accessToken, ok = access.(string); !ok || r.accessToken == "" {
		return response{}, unexpected(errors.New("no access_token in response"))
	}
	if refresh != nil {
		if r.refreshToken, ok = refresh.(string); !ok {
			return response{}, unexpected(errors.New("refresh_token is not a string"))
		}
	}
	if r.refreshToken == "" {
		r.refreshToken = sent
	}
	if typ != nil {
		if r.tokenType, ok = typ.(string); !ok {
			r.ignored = append(r.ignored, "token_type")
		}
	}
	switch v := expires.(type) {
	case nil:
		ok = true
	case float64:
		r.expiresIn, ok = secondsFromFloat(v)
	case string:
		r.expiresIn, ok = parseSeconds(v)
	default:
		ok = false
	}
	if !ok {
		r.ignored = append(r.ignored, "expires_in")
	}
	return r, nil
}

// jsonBody returns the body of a success as JSON, to decode into a caller's type: the JSON
// body itself, or the form-encoded values as JSON strings (the first of each), in both cases
// without the members named in drop.
func (r *response) jsonBody(drop ...string) ([]byte, error) {
	if r.form != nil {
		flat := make(map[string]string, len(r.form))
		for k, v := range r.form {
			flat[k] = v[0]
		}
		for _, k := range drop {
			delete(flat, k)
		}
		return json.Marshal(flat)
	}
	if len(drop) == 0 {
		return r.body, nil
	}
	// The members are kept as they were sent: a map[string]any would round numbers.
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &m); err != nil {
		return nil, err
	}
	for _, k := range drop {
		delete(m, k)
	}
	return json.Marshal(m)
}

// formValue returns the first value of key as an any, or nil when the key is absent.
func formValue(v url.Values, key string) any {
	if s, ok := v[key]; ok && len(s) > 0 {
		return s[0]
	}
	return nil
}

// isForm reports whether a body is form-encoded: its Content-Type says so (GitHub without
// an Accept header) or is text/plain, and it does not look like JSON.
func isForm(contentType string, body []byte) bool {
	if contentType == "" || strings.HasPrefix(contentType, "application/json") {
		return false
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt != "application/x-www-form-urlencoded" && mt != "text/plain" {
		return false
	}
	b := bytes.TrimSpace(body)
	return len(b) == 0 || b[0] != '{'
}

// maxFlatJSON is the largest body decodeFlatJSON takes on: its map keeps the body alive.
const maxFlatJSON = 16 << 10

// decodeJSONObject decodes body as json.Unmarshal does into a map[string]any.
func decodeJSONObject(body []byte) (map[string]any, error) {
	if m, ok := decodeFlatJSON(body); ok {
		return m, nil
	}
	var m map[string]any
	err := json.Unmarshal(body, &m)
	return m, err
}

// decodeFlatJSON decodes a JSON object whose members are all strings without escapes,
// numbers, booleans or null (the shape of nearly every token response) into the map
// json.Unmarshal would make, with fewer allocations: the keys and string values are
// substrings of one copy of the body. ok is false for anything else, and then encoding/json
// must decide. FuzzDecodeFlatJSON checks that both agree.
func decodeFlatJSON(body []byte) (m map[string]any, ok bool) {
	if len(body) > maxFlatJSON {
		return nil, false
	}
	type member struct {
		key string
		val any
	}
	var members [16]member
	n := 0
	s := string(body)
	i := skipSpace(s, 0)
	if i == len(s) || s[i] != '{' {
		return nil, false
	}
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		i++
	} else {
		for {
			if n == len(members) {
				return nil, false
			}
			key, j, ok := flatString(s, i)
			if !ok {
				return nil, false
			}
			i = skipSpace(s, j)
			if i == len(s) || s[i] != ':' {
				return nil, false
			}
			i = skipSpace(s, i+1)
			val, j, ok := flatValue(s, i)
			if !ok {
				return nil, false
			}
			members[n] = member{key, val}
			n++
			i = skipSpace(s, j)
			if i < len(s) && s[i] == ',' {
				i = skipSpace(s, i+1)
				continue
			}
			if i < len(s) && s[i] == '}' {
				i++
				break
			}
			return nil, false
		}
	}
	if skipSpace(s, i) != len(s) {
		return nil, false
	}
	m = make(map[string]any, n)
	for _, mb := range members[:n] {
		m[mb.key] = mb.val // the last of duplicate keys wins, as in encoding/json
	}
	return m, true
}

// skipSpace returns the index of the first byte at or after i in s that is not JSON white space.
func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// flatString reads a JSON string at s[i] that has no escapes, no control characters and only
// valid UTF-8, and returns it and the index after it.
func flatString(s string, i int) (string, int, bool) {
	if i == len(s) || s[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			str := s[i+1 : j]
			return str, j + 1, utf8.ValidString(str)
		case c == '\\' || c < 0x20:
			return "", 0, false
		}
	}
	return "", 0, false
}

// flatValue reads a flat string, a number, true, false or null at s[i].
func flatValue(s string, i int) (any, int, bool) {
	if i == len(s) {
		return nil, 0, false
	}
	switch c := s[i]; {
	case c == '"':
		str, j, ok := flatString(s, i)
		return str, j, ok
	case c == '-' || c >= '0' && c <= '9':
		j := i
		for j < len(s) && (s[j] == '-' || s[j] == '+' || s[j] == '.' || s[j] == 'e' || s[j] == 'E' || s[j] >= '0' && s[j] <= '9') {
			j++
		}
		num := s[i:j]
		if !isJSONNumber(num) || (len(num) > 1 && num[0] == '0' && num[1] >= '0' && num[1] <= '9') ||
			(len(num) > 2 && num[0] == '-' && num[1] == '0' && num[2] >= '0' && num[2] <= '9') {
			return nil, 0, false // not JSON (leading zero): let encoding/json say so
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return nil, 0, false
		}
		return f, j, true
	case strings.HasPrefix(s[i:], "true"):
		return true, i + 4, true
	case strings.HasPrefix(s[i:], "false"):
		return false, i + 5, true
	case strings.HasPrefix(s[i:], "null"):
		return nil, i + 4, true
	}
	return nil, 0, false
}

// Seconds is a count of seconds that decodes from a JSON number or a numeric string ("3600",
// as Entra v1 sends). A fraction is dropped, and values beyond what a time.Duration can hold
// are capped. null leaves it unchanged, and "" decodes to zero.
//
// Anything else (a negative number, a string that is not a number, "NaN", an object, a
// boolean) also decodes to zero, meaning absent, and is not an error: a defect in expires_in
// must not make a whole token response undecodable, which would lose the new access token and
// the rotated refresh token (see Endpoint.Refresh).
type Seconds int64

// UnmarshalJSON implements json.Unmarshaler. It never fails: an unreadable value is zero.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var n int64
	if len(b) > 0 && b[0] == '"' {
		var str string
		if json.Unmarshal(b, &str) == nil {
			n, _ = parseSeconds(str)
		}
	} else {
		n, _ = parseSeconds(string(b))
	}
	*s = Seconds(n)
	return nil
}

// maxExpiresIn keeps time.Duration arithmetic from overflowing (about 290 years).
const maxExpiresIn = math.MaxInt64 / int64(time.Second)

// parseSeconds parses a non-negative JSON number of seconds, possibly surrounded by spaces;
// a fraction is dropped and values above maxExpiresIn are capped. "" is zero. ok is false,
// and n zero, for anything else: a negative number, or a string that is not a JSON number
// (hex, underscores, Inf, NaN, a leading '+').
func parseSeconds(s string) (n int64, ok bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, true
	}
	if !isJSONNumber(s) {
		return 0, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return min(n, maxExpiresIn), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return secondsFromFloat(f)
}

// secondsFromFloat is parseSeconds for a JSON number already decoded: ok is false, and n
// zero, for NaN and negative numbers.
func secondsFromFloat(f float64) (n int64, ok bool) {
	switch {
	case math.IsNaN(f) || f < 0:
		return 0, false
	case f >= float64(maxExpiresIn):
		return maxExpiresIn, true
	}
	return int64(f), true
}

// isJSONNumber reports whether s is a number as JSON writes it (RFC 8259 §6), except that
// leading zeros are let through: no hex, no underscores, no Inf or NaN, no leading '+'.
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if digits() == 0 {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

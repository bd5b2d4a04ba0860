package oauth2refresh

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"
)

// Secrets planted in the fuzzed responses: the refresh token sent and the client secret.
// The seed corpus (testdata/fuzz/FuzzParseResponse) has bodies that echo them.
const (
	fuzzRefresh = "RT-planted-refresh-Zq8xw"
	fuzzSecret  = "CS-planted-secret-Jk3vp"
)

// FuzzParseResponse checks the invariants of the response parser on any status, Content-Type
// and body: it never panics; it succeeds exactly when the response is a 2xx without an error
// code, with a non-empty string access_token and a refresh_token that is a string or absent,
// whatever token_type and expires_in hold (an unreadable one is treated as absent, so that the
// rotated refresh token is never lost to it); a success has the response's access token, its
// refresh token or else the one sent, its token_type when that is a string, and an expires_in
// between 0 and maxExpiresIn; a failure is a *RequestError or an *UnexpectedResponseError and
// nothing else, whose Error text is one line starting with "oauth2refresh: " and holds neither
// planted secret, nor does its Body.
func FuzzParseResponse(f *testing.F) {
	f.Add(200, "application/json", []byte(`{"access_token":"at","token_type":"Bearer","expires_in":3600,"refresh_token":"rt2"}`))
	f.Add(400, "application/json", []byte(`{"error":"invalid_grant","error_description":"RT-planted-refresh-Zq8xw is revoked"}`))
	f.Add(200, "application/x-www-form-urlencoded", []byte(`access_token=at&expires_in=60`))
	f.Add(200, "application/json", []byte(`{"access_token":"at","token_type":7,"expires_in":-60,"refresh_token":"rt2"}`))
	f.Add(200, "application/json", []byte(`{"access_token":"at","token_type":{},"expires_in":{"s":1},"refresh_token":"rt2"}`))
	f.Fuzz(func(t *testing.T, status int, contentType string, body []byte) {
		if status < 100 || status > 999 {
			status = 100 + (status%900+900)%900
		}
		header := http.Header{"Content-Type": {contentType}}
		r, err := parseResponse(status, "", header, body, redactor{fuzzRefresh, fuzzSecret})
		want, isToken := fuzzExpect(status, contentType, body)
		if isToken != (err == nil) {
			t.Fatalf("parseResponse: %v; want a token: %v", err, isToken)
		}
		if err == nil {
			got := fuzzToken{r.accessToken, r.tokenType, r.refreshToken}
			if want.refresh == "" {
				want.refresh = fuzzRefresh
			}
			if got != want {
				t.Fatalf("token %+v, want %+v", got, want)
			}
			if r.expiresIn < 0 || r.expiresIn > maxExpiresIn {
				t.Fatalf("expires_in %d", r.expiresIn)
			}
			tok := r.token(time.Now())
			if tok.AccessToken != r.accessToken || tok.RefreshToken != r.refreshToken || (r.expiresIn > 0) == tok.Expiry.IsZero() {
				t.Fatalf("token %+v from %+v", tok, r)
			}
			return
		}
		var errBody []byte
		switch e := err.(type) {
		case *RequestError:
			if e.Code == "" || e.StatusCode != status {
				t.Fatalf("RequestError %+v", e)
			}
			errBody = e.Body
		case *UnexpectedResponseError:
			if e.StatusCode != status {
				t.Fatalf("UnexpectedResponseError %+v", e)
			}
			errBody = e.Body
		default:
			t.Fatalf("error of type %T: %v", err, err)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "oauth2refresh: ") || strings.ContainsAny(msg, "\r\n") || len(msg) > 1024 {
			t.Fatalf("error text %q", msg)
		}
		for _, s := range []string{fuzzRefresh, fuzzSecret} {
			if strings.Contains(msg, s) || strings.Contains(string(errBody), s) {
				t.Fatalf("error %q or its body %q holds %q", msg, errBody, s)
			}
		}
		// The tokens of the response, as the parser saw them, do not show either.
		for _, tok := range fuzzTokens(contentType, body) {
			if len(tok) >= 8 && !strings.Contains(fuzzTemplates, tok) && strings.Contains(msg, tok) {
				t.Fatalf("error %q holds the response's token %q", msg, tok)
			}
		}
		if len(errBody) > MaxErrorBody {
			t.Fatalf("error body of %d bytes", len(errBody))
		}
		IsTemporary(err)
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			if msg := re.Error(); strings.Contains(msg, fuzzRefresh) || strings.Contains(msg, fuzzSecret) {
				t.Fatalf("RetrieveError text %q holds a secret", msg)
			}
		}
	})
}

// FuzzDecodeFlatJSON checks that the fast JSON decoder agrees with encoding/json whenever it
// accepts a body.
func FuzzDecodeFlatJSON(f *testing.F) {
	f.Add([]byte(`{"access_token":"at","expires_in":3600,"ok":true,"no":false,"n":null,"f":-1.5e3}`))
	f.Add([]byte(` { "a" : "b" , "a" : "c" } `))
	f.Add([]byte(`{"a":"\u00e9"}`))
	f.Add([]byte(`{"a":01}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, ok := decodeFlatJSON(body)
		if !ok {
			return
		}
		var want map[string]any
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatalf("decodeFlatJSON accepted %q, which encoding/json rejects: %v", body, err)
		}
		if diff := cmp.Diff(want, m); diff != "" {
			t.Fatalf("decodeFlatJSON(%q) (-encoding/json +fast):\n%s", body, diff)
		}
	})
}

// fuzzTemplates holds the fixed texts of the error messages, which a token may happen to be
// part of.
const fuzzTemplates = "oauth2refresh: token endpoint returned (HTTP ): unexpected token endpoint response " +
	"redirect not followed malformed form-encoded body body is not a JSON object decoding JSON: " +
	"no access_token in response refresh_token is not a string [redacted] …"

// fuzzToken is what a success must hold.
type fuzzToken struct{ access, typ, refresh string }

// fuzzExpect says, without the parser's code, whether a response must parse as a token, and
// what that token holds (refresh is "" when the one sent is to be kept). Only the status, an
// error code, access_token and refresh_token decide; token_type and expires_in never do.
func fuzzExpect(status int, contentType string, body []byte) (fuzzToken, bool) {
	if status < 200 || status > 299 {
		return fuzzToken{}, false
	}
	if isForm(contentType, body) {
		vals, err := url.ParseQuery(string(body))
		if err != nil || vals.Get("error") != "" || vals.Get("access_token") == "" {
			return fuzzToken{}, false
		}
		return fuzzToken{vals.Get("access_token"), vals.Get("token_type"), vals.Get("refresh_token")}, true
	}
	var m map[string]any
	if json.Unmarshal(body, &m) != nil || m == nil {
		return fuzzToken{}, false
	}
	if code, _ := m["error"].(string); code != "" {
		return fuzzToken{}, false
	}
	access, _ := m["access_token"].(string)
	refresh, isString := m["refresh_token"].(string)
	if access == "" || (!isString && m["refresh_token"] != nil) {
		return fuzzToken{}, false
	}
	typ, _ := m["token_type"].(string)
	return fuzzToken{access, typ, refresh}, true
}

// fuzzTokens returns the access, refresh and id tokens of a response body, read the way
// parseResponse reads it.
func fuzzTokens(contentType string, body []byte) []string {
	var out []string
	keys := []string{"access_token", "refresh_token", "id_token"}
	if isForm(contentType, body) {
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil
		}
		for _, k := range keys {
			out = append(out, vals.Get(k))
		}
		return out
	}
	m, err := decodeJSONObject(body)
	if err != nil {
		return nil
	}
	for _, k := range keys {
		if s, ok := m[k].(string); ok {
			out = append(out, s)
		}
	}
	return out
}

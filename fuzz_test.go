package oauth2refresh

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"
)

// Secrets planted in the fuzzed responses: the refresh token sent and the client secret, with
// the characters that encodings change. The seed corpus (testdata/fuzz/FuzzParseResponse)
// has bodies that echo them, as they are and encoded.
const (
	fuzzRefresh  = `RT+planted/refresh==&"\ é✓ Zq8xw`
	fuzzSecret   = `CS+planted/secret=& "\ ü Jk3vp`
	fuzzClientID = "fuzz:client+id"
)

// fuzzRedactor returns the redactor for the planted secrets.
func fuzzRedactor() redactor {
	return redactor{refreshToken: fuzzRefresh, clientID: fuzzClientID, clientSecret: fuzzSecret}
}

// fuzzForms are the planted secrets in the forms an echo may take: as they are,
// url.QueryEscape, url.PathEscape, JSON-escaped with and without HTML escaping, Go-quoted,
// and the base64 Basic credential (without its padding, so that it is found with or without).
var fuzzForms = func() []string {
	var forms []string
	for _, s := range []string{fuzzRefresh, fuzzSecret} {
		j, _ := json.Marshal(s)
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		noHTML := strings.TrimSpace(b.String())
		q := strconv.Quote(s)
		forms = append(forms, s, url.QueryEscape(s), url.PathEscape(s), string(j[1:len(j)-1]),
			noHTML[1:len(noHTML)-1], q[1:len(q)-1])
	}
	cred := url.QueryEscape(fuzzClientID) + ":" + url.QueryEscape(fuzzSecret)
	return append(forms, base64.RawStdEncoding.EncodeToString([]byte(cred)))
}()

// FuzzParseResponse checks the invariants of the response parser on any status, Content-Type
// and body: it never panics; it succeeds exactly when the response is a 2xx without an error
// code, with a non-empty string access_token and a refresh_token that is a string or absent,
// whatever token_type and expires_in hold (an unreadable one is treated as absent, so that the
// rotated refresh token is never lost to it); a success has the response's access token, its
// refresh token or else the one sent, its token_type when that is a string, and an expires_in
// between 0 and maxExpiresIn; a failure is a *RequestError or an *UnexpectedResponseError and
// nothing else, whose Error text is one line starting with "oauth2refresh: " and holds neither
// planted secret in any of fuzzForms, nor does its Body.
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
		r, err := parseResponse(status, "", header, body, fuzzRedactor())
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
		for _, s := range fuzzForms {
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
			msg := re.Error()
			for _, s := range fuzzForms {
				if strings.Contains(msg, s) {
					t.Fatalf("RetrieveError text %q holds %q", msg, s)
				}
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

// TestRedactDecodings: redact finds a secret in forms that no list of encodings holds: any
// case of hex digit, HTML character references, every JSON and Go escape, two encodings in a
// row, and an encoding overlapping the text before it.
func TestRedactDecodings(t *testing.T) {
	const sec = `k€y😀+/ "&\:`
	r := redactor{refreshToken: sec}
	tests := []struct{ name, text string }{
		{"raw", "a " + sec + " b"},
		{"query, lower-case hex", "a " + strings.ToLower(url.QueryEscape(sec)) + " b"},
		{"every byte percent-encoded", "a " + pctAll(sec) + " b"},
		{"percent-encoded twice", "a " + url.QueryEscape(url.QueryEscape(sec)) + " b"},
		{"JSON, all escaped", "a " + `k\u20ACy\ud83d\ude00\u002b\/\u0020\"\u0026\\\u003a` + " b"},
		{"Go escapes", "a " + `k\xe2\x82\xacy\U0001F600+/ \"&\\:` + " b"},
		{"HTML", "a " + "k&#8364;y&#x1F600;&#43;/ &quot;&amp;\\&#x3a;" + " b"},
		{"HTML of a form-encoded body", "a " + html.EscapeString("x="+url.QueryEscape(sec)+"&y=1") + " b"},
		{"form-encoded JSON", "a=" + url.QueryEscape(`{"v":"`+strings.ReplaceAll(strings.ReplaceAll(sec, `\`, `\\`), `"`, `\"`)+`"}`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := r.redact(tc.text)
			if !strings.Contains(got, "[redacted]") {
				t.Errorf("redact(%q) = %q, cuts nothing", tc.text, got)
			}
			for _, f := range append(secretForms(sec), "y😀", `y\ud83d\ude00`, "y&#x1F600;", "y%F0%9F%98%80") {
				if strings.Contains(got, f) {
					t.Errorf("redact(%q) = %q, holds %q", tc.text, got, f)
				}
			}
		})
	}
	// A form whose first byte ends a sequence of the decoding is found all the same.
	hexStart := redactor{refreshToken: "C0ffee+tok/en"}
	if got := hexStart.redact("%0" + url.QueryEscape("C0ffee+tok/en")); got != "%0[redacted]" {
		t.Errorf("redact = %q", got)
	}
	// Text around an occurrence stays.
	if got := r.redact("a%20" + url.QueryEscape(sec) + "%20b"); got != "a%20[redacted]%20b" {
		t.Errorf("redact = %q", got)
	}
	if got := r.redact("no secret here: %zz \\q &bogus; %2"); got != "no secret here: %zz \\q &bogus; %2" {
		t.Errorf("redact changed a text without a secret: %q", got)
	}
}

// pctAll percent-encodes every byte of s.
func pctAll(s string) string {
	var b strings.Builder
	for i := range len(s) {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

// TestKeepLargeBody: a body far larger than MaxErrorBody keeps only its start, with the
// secrets cut out before it is cut short, also when redactions shorten it.
func TestKeepLargeBody(t *testing.T) {
	r := fuzzRedactor()
	enc := url.QueryEscape(fuzzRefresh)
	tests := []struct {
		name string
		body string
	}{
		{"secret across the cut", strings.Repeat("x", MaxErrorBody-10) + enc + strings.Repeat("y", 256<<10)},
		{"secret at the end of a large body", strings.Repeat("x", 256<<10) + enc},
		// Each occurrence shrinks to "[redacted]": the window would come short, and the start
		// of the occurrence cut by its end would move below MaxErrorBody.
		{"many secrets", strings.Repeat(" "+enc, 256<<10/(len(enc)+1))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(r.keep([]byte(tc.body)))
			if len(got) != MaxErrorBody {
				t.Errorf("kept %d bytes, want %d", len(got), MaxErrorBody)
			}
			for _, f := range fuzzForms {
				if strings.Contains(got, f) {
					t.Errorf("kept body holds %q", f)
				}
			}
			// No start of the secret is left at the end either.
			for n := len(enc) - 1; n >= 4; n-- {
				if strings.HasSuffix(got, enc[:n]) {
					t.Errorf("kept body ends with %q", enc[:n])
				}
			}
			if want := r.redact(tc.body); !strings.HasPrefix(want, got) {
				t.Errorf("kept body is not the start of the redacted body")
			}
		})
	}
}

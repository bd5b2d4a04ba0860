package oauth2refresh_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
)

// Secrets planted in the fuzzed responses: the refresh token sent and the client secret, with
// the characters that encodings change. The seed corpus (testdata/fuzz/FuzzParseResponse)
// has bodies that echo them, as they are and encoded.
const (
	fuzzRefresh  = `RT+planted/refresh==&"\ é✓ Zq8xw`
	fuzzSecret   = `CS+planted/secret=& "\ ü Jk3vp`
	fuzzClientID = "fuzz:client+id"
)

// fuzzForms are the planted secrets in the forms the package documentation promises to cut
// out (see listedForms).
var fuzzForms = listedForms(fuzzClientID, fuzzSecret, fuzzSecret, fuzzRefresh)

// FuzzParseResponse checks Refresh on any status, Content-Type and body, answered by an
// in-memory transport: it never panics; it succeeds exactly when the oracle fuzzExpect, written
// from RFC 6749 §5.1 and §5.2 and the rules of Endpoint.Refresh without the package's code,
// says the response is a token, and then returns the token the oracle expects; a failure is a
// *RequestError exactly when the oracle finds an error code, an *UnexpectedResponseError
// otherwise, whose Error text is one line starting with "oauth2refresh: " and whose text and
// fields hold neither planted secret in any of fuzzForms, nor a token of the response.
func FuzzParseResponse(f *testing.F) {
	f.Add(200, "application/json", []byte(`{"access_token":"at","token_type":"Bearer","expires_in":3600,"refresh_token":"rt2"}`))
	f.Add(400, "application/json", []byte(`{"error":"invalid_grant","error_description":"RT-planted-refresh-Zq8xw is revoked"}`))
	f.Add(200, "application/x-www-form-urlencoded", []byte(`access_token=at&expires_in=60`))
	f.Add(200, "application/json", []byte(`{"access_token":"at","token_type":7,"expires_in":-60,"refresh_token":"rt2"}`))
	f.Add(200, "application/json", []byte(`{"access_token":"at","token_type":{},"expires_in":{"s":1},"refresh_token":"rt2"}`))
	f.Add(200, "application/json", []byte(`{"access_token":"AT","refresh_token":"RT-new","expires_in":1e309}`))
	f.Add(200, "application/json", []byte(`{"access_token":"AT","refresh_token":"RT-new","expires_in":"1e309","x":[-1e500]}`))
	f.Add(200, "application/json", []byte(`{"access_token":"AT","expires_in":"2147483648"}`))
	f.Add(400, "application/json", []byte(`{"error":"x","access_token":"aaaa","error_description":"aaaaaaaaa[redacted]aaaa"}`))
	f.Fuzz(func(t *testing.T, status int, contentType string, body []byte) {
		if status < 100 || status > 999 {
			status = 100 + (status%900+900)%900
		}
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return memResponse(r, status, contentType, string(body)), nil
		})
		e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example/token", ClientID: fuzzClientID, ClientSecret: fuzzSecret,
			HTTPClient: &http.Client{Transport: rt}}
		tok, err := e.Refresh(context.Background(), fuzzRefresh)
		want, isToken, isCode := fuzzExpect(status, contentType, body)
		if isToken != (err == nil) {
			t.Fatalf("Refresh: %v; want a token: %v", err, isToken)
		}
		if err == nil {
			got := fuzzToken{tok.AccessToken, tok.TokenType, tok.RefreshToken, tok.ExpiresIn}
			if got != want {
				t.Fatalf("token %+v, want %+v", got, want)
			}
			if (tok.ExpiresIn > 0) == tok.Expiry.IsZero() {
				t.Fatalf("Expiry %v with ExpiresIn %d", tok.Expiry, tok.ExpiresIn)
			}
			return
		}
		texts := []string{err.Error()}
		var re *oauth2refresh.RequestError
		var ue *oauth2refresh.UnexpectedResponseError
		var header http.Header
		switch {
		case errors.As(err, &re):
			if !isCode || re.Code == "" || re.StatusCode != status || len(re.Body) > oauth2refresh.MaxErrorBody {
				t.Fatalf("RequestError %+v; want an error code: %v", re, isCode)
			}
			texts = append(texts, re.Code, re.Description, re.URI, string(re.Body))
			header = re.Header
		case errors.As(err, &ue):
			if isCode || ue.StatusCode != status || len(ue.Body) > oauth2refresh.MaxErrorBody {
				t.Fatalf("UnexpectedResponseError %+v; want an error code: %v", ue, isCode)
			}
			texts = append(texts, string(ue.Body))
			header = ue.Header
		default:
			t.Fatalf("error of type %T: %v", err, err)
		}
		for _, vs := range header {
			texts = append(texts, vs...)
		}
		var retrieve *oauth2.RetrieveError
		if errors.As(err, &retrieve) {
			texts = append(texts, retrieve.Error(), retrieve.Response.Status)
		}
		msg := texts[0]
		if !strings.HasPrefix(msg, "oauth2refresh: ") || strings.ContainsAny(msg, "\r\n") || len(msg) > 1024 {
			t.Fatalf("error text %q", msg)
		}
		for _, text := range texts {
			for _, s := range fuzzForms {
				if strings.Contains(text, s) {
					t.Fatalf("%q holds %q", text, s)
				}
			}
		}
		// The tokens of the response do not show either.
		for _, tok := range fuzzTokens(contentType, body) {
			if len(tok) >= 8 && !strings.Contains(fuzzTemplates, tok) && strings.Contains(msg, tok) {
				t.Fatalf("error %q holds the response's token %q", msg, tok)
			}
		}
		oauth2refresh.IsTemporary(err)
	})
}

// fuzzTemplates holds the fixed texts of the error messages, which a token may happen to be
// part of.
const fuzzTemplates = "oauth2refresh: token endpoint returned (HTTP ): unexpected token endpoint response " +
	"redirect not followed malformed form-encoded body body is not a JSON object decoding JSON: " +
	"no access_token in response refresh_token is not a string [redacted] …"

// fuzzToken is what a success must hold.
type fuzzToken struct {
	access, typ, refresh string
	expiresIn            int64
}

// fuzzValue is a member of a response as the oracle reads it.
type fuzzValue struct {
	kind string // "string", "number", "null" (also for a number beyond float64) or "other"
	text string // the string, or the number as written
}

// fuzzMembers decodes a body the way RFC 6749 §5.1 describes it, and Endpoint.Refresh's
// documentation extends it: a form (when the Content-Type is
// application/x-www-form-urlencoded or text/plain and the body does not start with '{' after
// JSON white space), whose members are the first value of each field; a JSON object
// otherwise. ok is false when the body is neither.
func fuzzMembers(contentType string, body []byte) (members map[string]fuzzValue, ok bool) {
	mt, _, _ := mime.ParseMediaType(contentType)
	if (mt == "application/x-www-form-urlencoded" || mt == "text/plain") && !bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")) {
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, false
		}
		members = map[string]fuzzValue{}
		for k, v := range vals {
			members[k] = fuzzValue{"string", v[0]}
		}
		return members, true
	}
	var raw map[string]json.RawMessage
	if json.Unmarshal(body, &raw) != nil || raw == nil {
		return nil, false
	}
	members = map[string]fuzzValue{}
	for k, v := range raw {
		switch c := v[0]; {
		case c == '"':
			var s string
			json.Unmarshal(v, &s)
			members[k] = fuzzValue{"string", s}
		case c == 'n':
			members[k] = fuzzValue{kind: "null"}
		case c == '-' || '0' <= c && c <= '9':
			if _, err := strconv.ParseFloat(string(v), 64); err != nil {
				members[k] = fuzzValue{kind: "null"} // beyond float64: unreadable, absent
			} else {
				members[k] = fuzzValue{"number", string(v)}
			}
		default:
			members[k] = fuzzValue{kind: "other"}
		}
	}
	return members, true
}

// jsonNumber is the grammar of a JSON number (RFC 8259 §6).
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// fuzzExpect says, without the package's code, whether a response must give a token and which,
// and whether an error response holds an RFC 6749 §5.2 error code. Only the status, the body's
// size and shape, the error code, access_token and refresh_token decide; token_type and
// expires_in never do.
func fuzzExpect(status int, contentType string, body []byte) (want fuzzToken, isToken, isCode bool) {
	if len(body) > 1<<20 || status >= 300 && status <= 399 {
		return want, false, false
	}
	m, ok := fuzzMembers(contentType, body)
	if !ok {
		return want, false, false
	}
	if code := m["error"]; code.kind == "string" && code.text != "" {
		return want, false, true
	}
	access, refresh := m["access_token"], m["refresh_token"]
	if status < 200 || status > 299 || access.kind != "string" || access.text == "" ||
		refresh.kind != "" && refresh.kind != "string" && refresh.kind != "null" {
		return want, false, false
	}
	want = fuzzToken{access: access.text, refresh: refresh.text}
	if want.refresh == "" {
		want.refresh = fuzzRefresh
	}
	if typ := m["token_type"]; typ.kind == "string" {
		want.typ = typ.text
	}
	// expires_in: a non-negative number, or a string holding one, in seconds; a fraction is
	// dropped, and it is capped at 2^31-1 as golang.org/x/oauth2 caps it.
	if exp := m["expires_in"]; exp.kind == "number" || exp.kind == "string" {
		if s := strings.TrimSpace(exp.text); jsonNumber.MatchString(s) {
			if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 {
				want.expiresIn = int64(math.Min(math.Floor(f), math.MaxInt32))
			}
		}
	}
	return want, true, false
}

// fuzzTokens returns the access, refresh and id tokens of a response body, as fuzzMembers
// reads it.
func fuzzTokens(contentType string, body []byte) []string {
	m, _ := fuzzMembers(contentType, body)
	var out []string
	for _, k := range []string{"access_token", "refresh_token", "id_token"} {
		if v := m[k]; v.kind == "string" {
			out = append(out, v.text)
		}
	}
	return out
}

// FuzzParseChallenges checks the WWW-Authenticate parser on any field value: it never panics;
// what it returns is well formed (an auth-scheme and auth-param names that are tokens, names
// in lower case, a token68 of its grammar, values a quoted-string can hold, RFC 9110 §11.2);
// written back as one field it reads the same; and the field never hides a challenge of
// another field after it.
func FuzzParseChallenges(f *testing.F) {
	f.Add(`Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple"`)
	f.Add(`Bearer realm="api", DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`)
	f.Add(`Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==, Negotiate, , dpop ERROR = use_dpop_nonce ,algs="ES256 RS256"`)
	f.Add(`DPoP error="use_dpop_nonce", algs=ES256 RS256, Bearer`)
	f.Add(`DPoP error_description="a, b=\"c\" \\ d", error="use_dpop_nonce`)
	f.Fuzz(func(t *testing.T, field string) {
		got := oauth2refresh.ParseChallenges([]string{field})
		for _, c := range got {
			if !fuzzIsToken(c.Scheme) {
				t.Fatalf("scheme %q is not a token", c.Scheme)
			}
			if c.Token68 != "" && (!regexp.MustCompile(`^[A-Za-z0-9._~+/-]+=*$`).MatchString(c.Token68) || c.Params != nil) {
				t.Fatalf("token68 %q, params %v", c.Token68, c.Params)
			}
			if c.Params != nil && len(c.Params) == 0 {
				t.Fatalf("empty, non-nil params")
			}
			for k, v := range c.Params {
				if !fuzzIsToken(k) || k != strings.ToLower(k) || strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
					t.Fatalf("param %q=%q", k, v)
				}
			}
		}
		again := oauth2refresh.ParseChallenges([]string{fuzzFormatChallenges(got)})
		if diff := cmp.Diff(got, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("%q read back from %q (-first +again):\n%s", fuzzFormatChallenges(got), field, diff)
		}
		nonce := oauth2refresh.Challenge{Scheme: "DPoP", Params: map[string]string{"error": "use_dpop_nonce"}}
		both := oauth2refresh.ParseChallenges([]string{field, `DPoP error="use_dpop_nonce"`})
		if diff := cmp.Diff(append(got, nonce), both, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("with a second field (-want +got):\n%s", diff)
		}
	})
}

// fuzzIsToken reports whether s is a token (RFC 9110 §5.6.2).
func fuzzIsToken(s string) bool {
	return regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$").MatchString(s)
}

// fuzzFormatChallenges writes cs as one WWW-Authenticate field, every auth-param value a
// quoted-string, in name order.
func fuzzFormatChallenges(cs []oauth2refresh.Challenge) string {
	var b strings.Builder
	for i, c := range cs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.Scheme)
		if c.Token68 != "" {
			b.WriteString(" " + c.Token68)
		}
		for j, k := range slices.Sorted(maps.Keys(c.Params)) {
			if j == 0 {
				b.WriteString(" ")
			} else {
				b.WriteString(", ")
			}
			b.WriteString(k + `="` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(c.Params[k]) + `"`)
		}
	}
	return b.String()
}

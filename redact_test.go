package oauth2refresh_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store/filestore"
)

// TestErrorsHoldNoSecrets has the server echo every secret it can in every error shape. The
// client secret and the refresh token sent must never show; the access and refresh tokens of
// the response must not either, when the response holds them as such.
func TestErrorsHoldNoSecrets(t *testing.T) {
	echo := epSecret + " " + epRefresh + " " + epAccess + " RT-new"
	jsonEcho, _ := json.Marshal(echo)
	formEcho := url.QueryEscape(echo)
	sent := []string{epSecret, epRefresh}
	all := []string{epSecret, epRefresh, epAccess, "RT-new"}
	tests := []struct {
		name, ctype, body string
		status            int
		secrets           []string
	}{
		{"json description", "application/json", `{"error":"invalid_grant","error_description":` + string(jsonEcho) +
			`,"error_uri":` + string(jsonEcho) + `,"access_token":"AT-new-access-token","refresh_token":"RT-new"}`, 400, all},
		{"json code", "application/json", `{"error":` + string(jsonEcho) + `}`, 400, sent},
		{"multi-line description", "application/json", `{"error":"invalid_grant","error_description":"line1\n` + epRefresh[:10] + `\n` + epRefresh[10:] + `"}`, 400, sent},
		{"json at 200", "application/json", `{"error":"bad","error_description":` + string(jsonEcho) + `}`, 200, sent},
		{"form", "application/x-www-form-urlencoded", "error=invalid_grant&error_description=" + formEcho + "&access_token=AT-new-access-token", 400,
			[]string{epSecret, epRefresh, epAccess}},
		{"html", "text/html", "<html>" + echo + "</html>", 502, sent},
		{"no access token", "application/json", `{"refresh_token":"RT-new","token_type":` + string(jsonEcho) + `}`, 200,
			[]string{epSecret, epRefresh, "RT-new"}},
		// RT-new is no refresh token here (not a string), so it is not known to be one.
		{"refresh token not a string", "application/json", `{"access_token":"AT-new-access-token","refresh_token":["RT-new"],"expires_in":` +
			string(jsonEcho) + `}`, 200, []string{epSecret, epRefresh, epAccess}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				respond(w, tc.status, tc.ctype, tc.body)
			})
			e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: epClientID, ClientSecret: epSecret}
			_, err := e.Refresh(context.Background(), epRefresh)
			if err == nil {
				t.Fatal("no error")
			}
			epCheckMessage(t, err)
			var texts []string // where no secret may show, in any usual encoding
			texts = append(texts, err.Error(), fmt.Sprintf("%+v", err))
			var reqErr *oauth2refresh.RequestError
			var unexp *oauth2refresh.UnexpectedResponseError
			switch {
			case errors.As(err, &reqErr):
				texts = append(texts, string(reqErr.Body), reqErr.Code, reqErr.Description, reqErr.URI)
			case errors.As(err, &unexp):
				texts = append(texts, string(unexp.Body))
			default:
				t.Fatalf("error %T", err)
			}
			var re *oauth2.RetrieveError
			if errors.As(err, &re) {
				texts = append(texts, re.Error())
			}
			for _, s := range tc.secrets {
				j, _ := json.Marshal(s)
				for _, v := range []string{s, url.QueryEscape(s), string(j[1 : len(j)-1])} {
					for _, text := range texts {
						if strings.Contains(text, v) {
							t.Errorf("%q holds %q", text, v)
						}
					}
				}
			}
		})
	}
}

// Secrets with every character that an encoding changes: what a server, a proxy or a
// RoundTripper echoing them writes is not the string itself.
const (
	leakClientID = "client:id+1"
	leakSecret   = `s3cr+t/x= &"q\é✓`
	leakRefresh  = `abc+def/ghi==&"\ü 7`
)

// listedForms returns the forms of the secrets that the package documentation promises to cut
// out: each of secrets as it is, url.QueryEscape'd, url.PathEscape'd, JSON-escaped with and
// without HTML escaping, and Go-quoted as it is or JSON-escaped; and the base64 Basic
// credential of clientID and clientSecret, form-encoded and raw, without its padding (so that
// it is found with or without).
func listedForms(clientID, clientSecret string, secrets ...string) []string {
	forms := secretForms(secrets...)
	for _, cred := range []string{url.QueryEscape(clientID) + ":" + url.QueryEscape(clientSecret), clientID + ":" + clientSecret} {
		forms = append(forms, base64.RawStdEncoding.EncodeToString([]byte(cred)))
	}
	return forms
}

// secretForms returns the listed forms of each of secrets (see listedForms), without those of
// a Basic credential.
func secretForms(secrets ...string) []string {
	goQuote := func(s string) string { q := strconv.Quote(s); return q[1 : len(q)-1] }
	var forms []string
	for _, s := range secrets {
		j, _ := json.Marshal(s)
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		noHTML := strings.TrimSpace(b.String())
		for _, f := range []string{s, string(j[1 : len(j)-1]), noHTML[1 : len(noHTML)-1]} {
			forms = append(forms, f, goQuote(f))
		}
		forms = append(forms, url.QueryEscape(s), url.PathEscape(s))
	}
	return forms
}

// leakForms are the listed forms of the leak secrets.
func leakForms() []string { return listedForms(leakClientID, leakSecret, leakSecret, leakRefresh) }

// leakRequest is what a leak test server received.
type leakRequest struct {
	raw     string // the request body as sent
	auth    string // the Authorization header
	refresh string // the form-decoded refresh token
	secret  string // the client secret, form-decoded from the body or the Basic header
}

// leakCheckRequest asserts that a refresh request carries the leak secrets intact, for
// AuthBasic or AuthRequestBody, and returns what it holds.
func leakCheckRequest(t *testing.T, r *http.Request, m oauth2refresh.AuthMethod) leakRequest {
	t.Helper()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Errorf("reading body: %v", err)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		t.Errorf("body %q: %v", body, err)
	}
	got := leakRequest{raw: string(body), auth: r.Header.Get("Authorization"), refresh: form.Get("refresh_token")}
	if r.Method != http.MethodPost || form.Get("grant_type") != "refresh_token" || got.refresh != leakRefresh {
		t.Errorf("request %s %q", r.Method, body)
	}
	switch m {
	case oauth2refresh.AuthBasic:
		id, secret, ok := r.BasicAuth()
		if ok {
			id, _ = url.QueryUnescape(id)
			secret, _ = url.QueryUnescape(secret)
		}
		if !ok || id != leakClientID || secret != leakSecret || form.Has("client_id") || form.Has("client_secret") {
			t.Errorf("Basic auth %q (%q, %q) with body %q", got.auth, id, secret, body)
		}
		got.secret = secret
	case oauth2refresh.AuthRequestBody:
		if got.auth != "" || form.Get("client_id") != leakClientID || form.Get("client_secret") != leakSecret {
			t.Errorf("Authorization %q with body %q", got.auth, body)
		}
		got.secret = form.Get("client_secret")
	}
	return got
}

// TestErrorsHoldNoEncodedSecrets: a server, a proxy or a RoundTripper that echoes the request
// (its raw body, the form-decoded values, the Authorization header), in any usual encoding,
// never gets the refresh token or the client secret into an error's text or fields.
func TestErrorsHoldNoEncodedSecrets(t *testing.T) {
	type echo func(got leakRequest) string // what an echoing server says about the request
	rawBody := func(got leakRequest) string { return "cannot parse " + got.raw }
	values := func(got leakRequest) string {
		return "refresh_token " + got.refresh + " with client secret " + got.secret
	}
	header := func(got leakRequest) string { return "bad Authorization: " + got.auth + " for " + got.raw }
	quoted := func(got leakRequest) string {
		return fmt.Sprintf("unknown token %q (secret %q)", got.refresh, got.secret)
	}
	everything := func(got leakRequest) string { return rawBody(got) + "; " + values(got) + "; " + header(got) }
	jsonStr := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	jsonNoHTML := func(s string) string {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		return strings.TrimSpace(b.String())
	}

	tests := []struct {
		name string
		echo echo
		// reply writes the response, with what echo says in it.
		reply func(w http.ResponseWriter, said string)
		// where is where the echo must show, redacted: "text" for Error(), "uri", "body".
		where string
	}{
		{"raw body in error_description", rawBody, func(w http.ResponseWriter, said string) {
			epJSON(w, 400, `{"error":"invalid_request","error_description":`+jsonStr(said)+`}`)
		}, "text"},
		{"raw body in error_description, JSON without HTML escaping", rawBody, func(w http.ResponseWriter, said string) {
			epJSON(w, 400, `{"error":"invalid_request","error_description":`+jsonNoHTML(said)+`}`)
		}, "text"},
		{"raw body in error_description, slashes escaped", rawBody, func(w http.ResponseWriter, said string) {
			epJSON(w, 400, `{"error":"invalid_request","error_description":`+strings.ReplaceAll(jsonStr(said), "/", `\/`)+`}`)
		}, "text"},
		{"decoded values in error_description", values, func(w http.ResponseWriter, said string) {
			epJSON(w, 400, `{"error":"invalid_grant","error_description":`+jsonStr(said)+`}`)
		}, "text"},
		{"decoded values Go-quoted in error_description", quoted, func(w http.ResponseWriter, said string) {
			epJSON(w, 400, `{"error":"invalid_grant","error_description":`+jsonStr(said)+`}`)
		}, "text"},
		{"decoded values URL-encoded in error_description", values, func(w http.ResponseWriter, said string) {
			epJSON(w, 400, `{"error":"invalid_grant","error_description":`+jsonStr(url.PathEscape(said))+`}`)
		}, "text"},
		{"Authorization header in error_description", header, func(w http.ResponseWriter, said string) {
			epJSON(w, 401, `{"error":"invalid_client","error_description":`+jsonStr(said)+`}`)
		}, "text"},
		{"everything in error_uri", everything, func(w http.ResponseWriter, said string) {
			epJSON(w, 400, `{"error":"invalid_request","error_uri":`+jsonStr("https://errors.example/?q="+url.QueryEscape(said))+`}`)
		}, "uri"},
		{"raw body as the error code", rawBody, func(w http.ResponseWriter, said string) {
			epJSON(w, 400, `{"error":`+jsonStr(said)+`}`)
		}, "text"},
		{"decoded values as the error code", values, func(w http.ResponseWriter, said string) {
			epJSON(w, 400, `{"error":`+jsonStr(said)+`}`)
		}, "text"},
		{"everything in a form-encoded error", everything, func(w http.ResponseWriter, said string) {
			respond(w, 400, epFormType, "error=invalid_request&error_description="+url.QueryEscape(said)+"&error_uri="+url.QueryEscape(said))
		}, "text"},
		{"everything in an HTML page", everything, func(w http.ResponseWriter, said string) {
			respond(w, 502, "text/html", "<html><body><pre>"+html.EscapeString(said)+"</pre></body></html>")
		}, "body"},
		{"everything in a JSON error of another shape", everything, func(w http.ResponseWriter, said string) {
			epJSON(w, 500, `{"error":{"message":`+jsonStr(said)+`}}`)
		}, "body"},
	}
	forms := leakForms()
	for _, m := range []oauth2refresh.AuthMethod{oauth2refresh.AuthBasic, oauth2refresh.AuthRequestBody} {
		for _, tc := range tests {
			t.Run(m.String()+"/"+tc.name, func(t *testing.T) {
				var mu sync.Mutex // guards said
				var said string   // what the server echoed
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					s := tc.echo(leakCheckRequest(t, r, m))
					mu.Lock()
					said = s
					mu.Unlock()
					tc.reply(w, s)
				}))
				defer srv.Close()
				e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: leakClientID, ClientSecret: leakSecret, AuthMethod: m}
				_, err := e.Refresh(context.Background(), leakRefresh)
				if err == nil {
					t.Fatal("no error")
				}
				texts := leakTexts(t, err)
				leakCheck(t, texts, forms)
				mu.Lock()
				defer mu.Unlock()
				if said == "" || !strings.Contains(texts[tc.where], "[redacted]") {
					t.Errorf("%s %q shows no redacted echo of %q", tc.where, texts[tc.where], said)
				}
			})
		}
	}
}

// TestTransportErrorsHoldNoEncodedSecrets: a RoundTripper whose error quotes the request (its
// body, its Authorization header, the decoded form) has none of it reach the error's text.
func TestTransportErrorsHoldNoEncodedSecrets(t *testing.T) {
	forms := leakForms()
	for _, m := range []oauth2refresh.AuthMethod{oauth2refresh.AuthBasic, oauth2refresh.AuthRequestBody} {
		t.Run(m.String(), func(t *testing.T) {
			cause := errors.New("proxy said no")
			rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				got := leakCheckRequest(t, r, m)
				return nil, fmt.Errorf("proxy refused body %q (%s)\nheader %s, values %v / %s: %w",
					got.raw, got.raw, got.auth, []string{got.refresh, got.secret}, url.PathEscape(got.secret), cause)
			})
			e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example.com/token", ClientID: leakClientID, ClientSecret: leakSecret,
				AuthMethod: m, HTTPClient: &http.Client{Transport: rt}}
			_, err := e.Refresh(context.Background(), leakRefresh)
			var te *oauth2refresh.TransportError
			if !errors.As(err, &te) || !errors.Is(err, cause) {
				t.Fatalf("Refresh: %v, want a *TransportError wrapping %v", err, cause)
			}
			texts := leakTexts(t, err)
			leakCheck(t, texts, forms)
			if !strings.Contains(texts["text"], "[redacted]") || !strings.Contains(texts["text"], "proxy refused body") {
				t.Errorf("error %q is not the RoundTripper's, redacted", texts["text"])
			}
		})
	}
}

// TestDecodeErrorsHoldNoEncodedSecrets: an error decoding a token response into the caller's
// type, which quotes a member echoing the request, has none of the secrets in its text.
func TestDecodeErrorsHoldNoEncodedSecrets(t *testing.T) {
	forms := leakForms()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := leakCheckRequest(t, r, oauth2refresh.AuthBasic)
		b, _ := json.Marshal(map[string]string{"access_token": "AT-1", "refresh_token": "RT-2",
			"issued_at": got.raw + " " + got.auth + " " + got.refresh + " " + got.secret})
		epJSON(w, 200, string(b))
	}))
	defer srv.Close()
	e := &oauth2refresh.Endpoint{TokenURL: srv.URL, ClientID: leakClientID, ClientSecret: leakSecret}
	_, err := oauth2refresh.RefreshAccessToken[epToken](context.Background(), e, leakRefresh)
	// The *time.ParseError quotes the secrets: it is not reachable, and the grant's token is.
	var ue *oauth2refresh.UnexpectedResponseError
	var pe *time.ParseError
	if !errors.As(err, &ue) || ue.Token == nil || ue.Token.RefreshToken != "RT-2" || errors.As(err, &pe) {
		t.Fatalf("RefreshAccessToken: %v, want an *UnexpectedResponseError with the Token, without a *time.ParseError", err)
	}
	texts := leakTexts(t, err)
	leakCheck(t, texts, forms)
	if !strings.Contains(texts["text"], "[redacted]") {
		t.Errorf("error %q shows no redacted echo", texts["text"])
	}
}

// leakTexts returns the texts of err that may be shown: its Error text ("text"), and the
// fields of the *RequestError or *UnexpectedResponseError in it ("code", "description", "uri",
// "body"), and the text of the *oauth2.RetrieveError it converts to ("retrieve").
func leakTexts(t *testing.T, err error) map[string]string {
	t.Helper()
	texts := map[string]string{"text": err.Error(), "%+v": fmt.Sprintf("%+v", err)}
	epCheckMessage(t, err)
	var reqErr *oauth2refresh.RequestError
	var unexp *oauth2refresh.UnexpectedResponseError
	if errors.As(err, &reqErr) {
		texts["code"], texts["description"], texts["uri"], texts["body"] = reqErr.Code, reqErr.Description, reqErr.URI, string(reqErr.Body)
	}
	if errors.As(err, &unexp) {
		texts["body"] = string(unexp.Body)
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		texts["retrieve"], texts["status"] = re.Error(), re.Response.Status
		for k, vs := range re.Response.Header {
			texts["header "+k] = strings.Join(vs, "\n")
		}
	}
	for i, e := range chain(err) { // what an error reporter walking Unwrap shows
		texts[fmt.Sprintf("chain %d (%T)", i, e)] = e.Error()
	}
	return texts
}

// chain returns err and every error it unwraps to, depth first, through both Unwrap forms.
func chain(err error) []error {
	if err == nil {
		return nil
	}
	out := []error{err}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		out = append(out, chain(u.Unwrap())...)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			out = append(out, chain(e)...)
		}
	}
	return out
}

// leakCheck reports each of texts that holds a form of a secret: the forms it holds, and the
// start of the text.
func leakCheck(t *testing.T, texts map[string]string, forms []string) {
	t.Helper()
	for where, text := range texts {
		var found []string
		for _, f := range forms {
			if strings.Contains(text, f) {
				found = append(found, f)
			}
		}
		if len(found) > 0 {
			t.Errorf("%s %q... holds %q", where, text[:min(len(text), 200)], found)
		}
	}
}

// TestRedactForms: each secret, in each form the package documentation lists, echoed in every
// field of an error response that can hold it, is cut out, and the text around it stays.
func TestRedactForms(t *testing.T) {
	const (
		id     = "client:id+1"
		secret = `s3cr+t/x= &"q\é✓<>`
		sent   = `abc+def/ghi==&"\ü 7<`
		access = `at+x/y&"z\<é>`
	)
	jsonEsc := func(s string, escapeHTML bool) string {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(escapeHTML)
		enc.Encode(s)
		q := strings.TrimSpace(b.String())
		return q[1 : len(q)-1]
	}
	goQuote := func(s string) string { q := strconv.Quote(s); return q[1 : len(q)-1] }
	forms := map[string]func(string) string{
		"as sent":                    func(s string) string { return s },
		"url.QueryEscape":            url.QueryEscape,
		"url.PathEscape":             url.PathEscape,
		"json":                       func(s string) string { return jsonEsc(s, true) },
		"json without HTML escaping": func(s string) string { return jsonEsc(s, false) },
		"go-quoted":                  goQuote,
		"go-quoted json":             func(s string) string { return goQuote(jsonEsc(s, true)) },
	}
	type echo struct{ name, text string }
	var echoes []echo
	for fname, f := range forms {
		for sname, s := range map[string]string{"client secret": secret, "refresh token sent": sent, "access token": access} {
			echoes = append(echoes, echo{sname + "/" + fname, f(s)})
		}
	}
	for _, cred := range []string{url.QueryEscape(id) + ":" + url.QueryEscape(secret), id + ":" + secret} {
		echoes = append(echoes, echo{"basic " + cred, base64.StdEncoding.EncodeToString([]byte(cred))},
			echo{"basic unpadded " + cred, base64.RawStdEncoding.EncodeToString([]byte(cred))})
	}
	for _, m := range []oauth2refresh.AuthMethod{oauth2refresh.AuthBasic, oauth2refresh.AuthRequestBody} {
		for _, ec := range echoes {
			t.Run(m.String()+"/"+ec.name, func(t *testing.T) {
				said := "<<" + ec.text + ">>"
				rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					b, _ := json.Marshal(map[string]string{"error": "invalid_request", "error_description": said, "error_uri": said,
						"access_token": access})
					resp := memResponse(r, 400, "application/json", string(b))
					resp.Header.Set("X-Echo", said)
					resp.Status = "400 " + said
					return resp, nil
				})
				e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example/token", ClientID: id, ClientSecret: secret, AuthMethod: m,
					HTTPClient: &http.Client{Transport: rt}}
				_, err := e.Refresh(context.Background(), sent)
				var re *oauth2refresh.RequestError
				if !errors.As(err, &re) {
					t.Fatalf("Refresh: %v, want a *RequestError", err)
				}
				var retrieve *oauth2.RetrieveError
				errors.As(err, &retrieve)
				got := []string{re.Description, re.URI, re.Header.Get("X-Echo"), retrieve.Response.Header.Get("X-Echo"),
					retrieve.ErrorDescription, strings.TrimPrefix(retrieve.Response.Status, "400 ")}
				want := "<<[redacted]>>"
				if diff := cmp.Diff([]string{want, want, want, want, want, want}, got); diff != "" {
					t.Errorf("description, uri, header, RetrieveError's header, description, status (-want +got):\n%s", diff)
				}
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Error() = %q, want the redacted echo", err)
				}
			})
		}
	}
}

// TestRedactReformedSecret: when a secret is still found once its occurrences are cut out (a
// token chosen to hold "[redacted]", or a secret with a space that a newline became in
// Error's one-line text), the whole field becomes "[redacted]".
func TestRedactReformedSecret(t *testing.T) {
	tests := []struct {
		name, sent, access, desc string
	}{
		{name: "token is the marker", sent: "rt-0123456789", access: "[redacted]", desc: "see [redacted] here"},
		{name: "token around the marker", sent: "rt-0123456789", access: "ab[redacted]", desc: "abab[redacted] x"},
		{name: "newline inside the secret", sent: "rt with spaces", access: "at-0123456789", desc: "bad rt\nwith spaces"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]string{"error": "invalid_grant", "error_description": tc.desc, "access_token": tc.access})
			rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				resp := memResponse(r, 400, "application/json", string(body))
				resp.Header.Set("X-Echo", tc.desc)
				return resp, nil
			})
			e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example/token", HTTPClient: &http.Client{Transport: rt}}
			_, err := e.Refresh(context.Background(), tc.sent)
			var re *oauth2refresh.RequestError
			if !errors.As(err, &re) {
				t.Fatalf("Refresh: %v, want a *RequestError", err)
			}
			if re.Description != "[redacted]" {
				t.Errorf("Description = %q, want [redacted]", re.Description)
			}
			for _, s := range []string{tc.sent, tc.access} {
				for _, text := range []string{err.Error(), re.Description, string(re.Body), re.Header.Get("X-Echo")} {
					if s != "[redacted]" && strings.Contains(text, s) {
						t.Errorf("%q holds %q", text, s)
					}
				}
			}
		})
	}
}

// TestErrorBodyKeepsStart: an error keeps the start of a large body, MaxErrorBody bytes, with
// the secrets cut out before it is cut short: no secret, nor its start, is left at the end.
func TestErrorBodyKeepsStart(t *testing.T) {
	const limit = oauth2refresh.MaxErrorBody
	enc := url.QueryEscape(leakRefresh)
	many := strings.Repeat(" "+enc, 256<<10/(len(enc)+1))
	tests := []struct {
		name, body, want string
	}{
		{"secret across the cut", strings.Repeat("x", limit-10) + enc + strings.Repeat("y", 256<<10),
			strings.Repeat("x", limit-10) + "[redacted]"},
		{"secret just beyond the cut", strings.Repeat("x", limit-3) + enc + "y", strings.Repeat("x", limit-3) + "[re"},
		{"secret at the end of a large body", strings.Repeat("x", 256<<10) + enc, strings.Repeat("x", limit)},
		// Each occurrence shrinks to "[redacted]": text from beyond the first MaxErrorBody
		// bytes of the body comes into the kept start, redacted all the same.
		{"many secrets", many, strings.Repeat(" [redacted]", limit/11+1)[:limit]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				return memResponse(r, 502, "text/html", tc.body), nil
			})
			e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example/token", ClientID: leakClientID, ClientSecret: leakSecret,
				HTTPClient: &http.Client{Transport: rt}}
			_, err := e.Refresh(context.Background(), leakRefresh)
			var ue *oauth2refresh.UnexpectedResponseError
			if !errors.As(err, &ue) {
				t.Fatalf("Refresh: %v, want an *UnexpectedResponseError", err)
			}
			if got := string(ue.Body); got != tc.want {
				t.Errorf("Body: %d bytes ending in %q, want %d bytes ending in %q", len(got), got[max(0, len(got)-40):],
					len(tc.want), tc.want[max(0, len(tc.want)-40):])
			}
		})
	}
}

// TestTransportErrorChainRedacted: when a RoundTripper's error quotes a secret, neither the
// TransportError's text nor any error an error reporter reaches by walking Unwrap holds it;
// errors.Is still finds the context's cause, and errors.As finds the errors whose own text
// holds no secret, and only those. An error without a secret is returned as it is.
func TestTransportErrorChainRedacted(t *testing.T) {
	const secret, sent = "client-secret-42", "refresh-token-42"
	clean := &net.OpError{Op: "dial", Net: "tcp", Err: context.DeadlineExceeded}
	dirty := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("reset while sending " + sent)}
	tests := []struct {
		name      string
		err       error // what the RoundTripper returns
		wantAsOp  *net.OpError
		wantIs    error
		redacted  bool
		wantInMsg string
	}{
		{name: "no secret", err: clean, wantAsOp: clean, wantIs: context.DeadlineExceeded, wantInMsg: "dial tcp"},
		{name: "secret around a clean cause", err: fmt.Errorf("proxy refused %s: %w", sent, clean),
			wantAsOp: clean, wantIs: context.DeadlineExceeded, redacted: true, wantInMsg: "proxy refused [redacted]"},
		{name: "secret in the cause", err: fmt.Errorf("proxy: %w", dirty), redacted: true, wantInMsg: "reset while sending [redacted]"},
		{name: "secret beside the cause", err: errors.Join(errors.New("Basic "+base64.StdEncoding.EncodeToString([]byte("id:"+secret))), clean),
			wantAsOp: clean, wantIs: context.DeadlineExceeded, redacted: true, wantInMsg: "Basic [redacted]"},
		{name: "canceled", err: fmt.Errorf("%s: %w", secret, context.Canceled), wantIs: context.Canceled, redacted: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := roundTripFunc(func(r *http.Request) (*http.Response, error) { return nil, tc.err })
			e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example/token", ClientID: "id", ClientSecret: secret,
				HTTPClient: &http.Client{Transport: rt}}
			_, err := e.Refresh(context.Background(), sent)
			var te *oauth2refresh.TransportError
			if !errors.As(err, &te) {
				t.Fatalf("Refresh: %v, want a *TransportError", err)
			}
			for _, e := range chain(err) {
				if msg := e.Error(); strings.Contains(msg, secret) || strings.Contains(msg, sent) || strings.Contains(msg, "aWQ6Y2xpZW50") {
					t.Errorf("%T in the chain says %q", e, msg)
				}
			}
			var op *net.OpError
			if errors.As(err, &op) != (tc.wantAsOp != nil) || op != tc.wantAsOp {
				t.Errorf("errors.As(*net.OpError) = %v, want %v", op, tc.wantAsOp)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("errors.Is(err, %v) = false", tc.wantIs)
			}
			var ue *url.Error // it quotes the RoundTripper's error
			if errors.As(err, &ue) == tc.redacted {
				t.Errorf("errors.As(*url.Error) = %v, want %v", !tc.redacted, !tc.redacted)
			}
			if !strings.Contains(err.Error(), tc.wantInMsg) {
				t.Errorf("Error() = %q, want it to hold %q", err, tc.wantInMsg)
			}
			if got := oauth2refresh.IsTemporary(err); got == errors.Is(tc.err, context.Canceled) {
				t.Errorf("IsTemporary = %v", got)
			}
		})
	}
}

// hostileBodies are error responses whose server chose the "secrets" (the tokens of the
// response) to make redaction costly: a short token repeated over 1 MiB, a 500 KiB token, a
// 500 KiB token that almost matches everywhere.
var hostileBodies = map[string]string{
	"short token over 1 MiB": `{"error":"x","access_token":"aaaa","error_description":"` + strings.Repeat("a", 1<<20-80) + `"}`,
	"long token": `{"error":"x","access_token":"` + strings.Repeat("a", 500<<10) + `","error_description":"` +
		strings.Repeat("a", 500<<10) + `"}`,
	"long token that almost matches": `{"error":"x","access_token":"` + strings.Repeat("a", 500<<10-1) + `b","error_description":"` +
		strings.Repeat("a", 500<<10) + `"}`,
	"short token, partial matches": `{"error":"x","refresh_token":"abcd","id_token":"%25%25","error_description":"` +
		strings.Repeat("abcabc%25%", 100<<10) + `"}`,
}

// TestHostileErrorBodyCostIsLinear: redacting a hostile 1 MiB error body costs a bounded
// amount of memory, a few times the body's size (the 38 s and 15 GB of issue 9 were
// quadratic). It measures the bytes and allocations of one Refresh, response reading and
// JSON decoding included; BenchmarkHostileErrorBody reports the time.
func TestHostileErrorBodyCostIsLinear(t *testing.T) {
	for name, body := range hostileBodies {
		t.Run(name, func(t *testing.T) {
			if len(body) > 1<<20 {
				t.Fatalf("body of %d bytes", len(body))
			}
			e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example/token", ClientID: "id", ClientSecret: "client-secret",
				HTTPClient: &http.Client{Transport: &memTransport{status: 400, body: []byte(body)}}}
			refresh := func() {
				_, err := e.Refresh(context.Background(), "refresh-token")
				var re *oauth2refresh.RequestError
				if !errors.As(err, &re) || len(err.Error()) > 300 {
					t.Fatalf("Refresh: %v, want a *RequestError", err)
				}
			}
			refresh()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			allocs := testing.AllocsPerRun(3, refresh)
			runtime.ReadMemStats(&after)
			bytes := (after.TotalAlloc - before.TotalAlloc) / 4 // AllocsPerRun runs once more to warm up
			t.Logf("%d allocations, %.1f MB per Refresh", int(allocs), float64(bytes)/1e6)
			if allocs > 1000 || bytes > 16<<20 {
				t.Errorf("%d allocations, %d bytes per Refresh of a 1 MiB body: not linear", int(allocs), bytes)
			}
		})
	}
}

// BenchmarkHostileErrorBody: the time, bytes and allocations of one Refresh answered by each
// of hostileBodies (all of it: reading, decoding and redacting the body).
func BenchmarkHostileErrorBody(b *testing.B) {
	for name, body := range hostileBodies {
		b.Run(strings.ReplaceAll(name, " ", "-"), func(b *testing.B) {
			e := &oauth2refresh.Endpoint{TokenURL: "https://auth.example/token", ClientID: "id", ClientSecret: "client-secret",
				HTTPClient: &http.Client{Transport: &memTransport{status: 400, body: []byte(body)}}}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Refresh(context.Background(), "refresh-token"); err == nil {
					b.Fatal("no error")
				}
			}
		})
	}
}

// mysqlError is an error type of a database driver, quoting the value that broke a constraint.
type mysqlError struct{ msg string }

func (e *mysqlError) Error() string { return e.msg }

// TestRedactErrorContract: an error without a secret comes back as it is; one whose text, or
// the text of any error in its chain, holds a secret in a form the package documentation
// lists comes back as an error whose text and whole chain hold none, which still answers
// errors.Is for its context causes and errors.As for the errors of the chain that quote no
// secret.
func TestRedactErrorContract(t *testing.T) {
	const rt = "RT-new+rotated/token==&<x>"
	dup := &mysqlError{"Error 1062: Duplicate entry '" + rt + "' for key 'refresh_token'"}
	clean := &mysqlError{"Error 2006: server has gone away"}
	tests := []struct {
		name      string
		err       error
		same      bool   // returned as it is
		wantAs    error  // what errors.As(*mysqlError) finds, or nil
		wantIs    error  // a cause errors.Is still finds, or nil
		wantInMsg string // part of the redacted text
	}{
		{name: "nil"},
		{name: "no secret", err: fmt.Errorf("saving: %w", clean), same: true, wantAs: clean},
		{name: "secret too short to look for", err: errors.New("saving RT: x"), same: true},
		{name: "secret in the driver's error", err: fmt.Errorf("saving: %w", dup), wantInMsg: "Duplicate entry '[redacted]'"},
		{name: "secret JSON-escaped", err: errors.New(`{"rt":"RT-new+rotated/token==\u0026\u003cx\u003e"}`), wantInMsg: `{"rt":"[redacted]"}`},
		{name: "secret form-encoded beside a clean cause", err: errors.Join(errors.New("body refresh_token="+url.QueryEscape(rt)), clean),
			wantAs: clean, wantInMsg: "refresh_token=[redacted]"},
		{name: "secret around the context's cause", err: fmt.Errorf("hook for %s: %w", rt, context.DeadlineExceeded),
			wantIs: context.DeadlineExceeded, wantInMsg: "hook for [redacted]: context deadline exceeded"},
		{name: "secret only deep in the chain", err: fmt.Errorf("saving: %w", &wrapQuiet{dup}), wantInMsg: "saving: quiet"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := oauth2refresh.RedactError(tc.err, "", rt, "RT")
			if tc.err == nil {
				if got != nil {
					t.Fatalf("RedactError(nil) = %v", got)
				}
				return
			}
			if (got == tc.err) != tc.same {
				t.Errorf("RedactError returned the error as it is: %v, want %v", got == tc.err, tc.same)
			}
			for _, e := range chain(got) {
				if strings.Contains(e.Error(), rt) || strings.Contains(e.Error(), url.QueryEscape(rt)) {
					t.Errorf("%T in the chain says %q", e, e.Error())
				}
			}
			var me *mysqlError
			if errors.As(got, &me) != (tc.wantAs != nil) || tc.wantAs != nil && me != tc.wantAs {
				t.Errorf("errors.As(*mysqlError) = %v, want %v", me, tc.wantAs)
			}
			if tc.wantIs != nil && !errors.Is(got, tc.wantIs) {
				t.Errorf("errors.Is(%v) = false", tc.wantIs)
			}
			if !strings.Contains(got.Error(), tc.wantInMsg) {
				t.Errorf("Error() = %q, want it to hold %q", got, tc.wantInMsg)
			}
		})
	}
}

// wrapQuiet wraps an error without quoting it.
type wrapQuiet struct{ err error }

func (e *wrapQuiet) Error() string { return "quiet" }
func (e *wrapQuiet) Unwrap() error { return e.err }

// quotingStore wraps a Store whose Load, Lock and Save fail, as many times as their counts
// say, with a driver's error that quotes, in every form the package documentation lists, the
// tokens (access, refresh, id_token) it knows: those of quote, of the token stored, and for
// Save of the token being saved, as MySQL's "Duplicate entry '...'" quotes a value. The error
// also wraps errStoreDown, whose text quotes nothing.
type quotingStore struct {
	oauth2refresh.Store
	quote               []*oauth2.Token // read-only after the first call
	loads, locks, saves atomic.Int32    // failures still to come
}

// tokenSecrets returns the access token, refresh token and id_token of each of toks.
func tokenSecrets(toks ...*oauth2.Token) []string {
	var out []string
	for _, t := range toks {
		if t != nil {
			id, _ := t.Extra("id_token").(string)
			out = append(out, t.AccessToken, t.RefreshToken, id)
		}
	}
	return slices.DeleteFunc(out, func(s string) bool { return s == "" })
}

// fail returns the error quoting the tokens of toks and q.quote.
func (q *quotingStore) fail(op string, toks ...*oauth2.Token) error {
	forms := secretForms(tokenSecrets(append(toks, q.quote...)...)...)
	return fmt.Errorf("%w (%w)", &mysqlError{fmt.Sprintf("Error 1062 on %s: Duplicate entry '%s' for key 'tokens'", op, strings.Join(forms, "' '"))}, errStoreDown)
}

func (q *quotingStore) stored(ctx context.Context, key string) *oauth2.Token {
	t, _ := q.Store.Load(ctx, key)
	return t
}

func (q *quotingStore) Load(ctx context.Context, key string) (*oauth2.Token, error) {
	if q.loads.Add(-1) >= 0 {
		return nil, q.fail("load", q.stored(ctx, key))
	}
	q.loads.Store(0)
	return q.Store.Load(ctx, key)
}

func (q *quotingStore) Lock(ctx context.Context, key string, ttl time.Duration) (oauth2refresh.Lease, error) {
	if q.locks.Add(-1) >= 0 {
		return nil, q.fail("lock", q.stored(ctx, key))
	}
	q.locks.Store(0)
	l, err := q.Store.Lock(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	return &quotingLease{Lease: l, q: q}, nil
}

type quotingLease struct {
	oauth2refresh.Lease
	q *quotingStore
}

func (l *quotingLease) Save(ctx context.Context, t *oauth2.Token) error {
	if l.q.saves.Add(-1) >= 0 {
		return l.q.fail("save", t, l.Token())
	}
	l.q.saves.Store(0)
	return l.Lease.Save(ctx, t)
}

// TestStoreErrorsHoldNoTokens: SaveToken and Grant.SaveToken, given a Store whose Lock or Save
// fails quoting the token being saved (and the one stored) in every listed form, return an
// error holding none of its access, refresh or id token, whose text is the store's redacted,
// and which still unwraps to the parts of the store's error that quote nothing.
func TestStoreErrorsHoldNoTokens(t *testing.T) {
	old := (&oauth2.Token{AccessToken: `AT-old+x/y=&"\é<>`, RefreshToken: `RT-old+x/y=&"\ü<>`}).
		WithExtra(map[string]any{"id_token": `ID-old+x/y=&"\✓<>`})
	tok := (&oauth2.Token{AccessToken: `AT-new+access/token=&"\é<x>`, RefreshToken: `RT-new+rotated/token==&"\ü<x>`, TokenType: "Bearer"}).
		WithExtra(map[string]any{"id_token": `eyJ.ID-new+token/x==&"\✓<x>`})
	forms := secretForms(tokenSecrets(old, tok)...)
	seeds := map[string]func(ctx context.Context, s oauth2refresh.Store, key string) error{
		"SaveToken": func(ctx context.Context, s oauth2refresh.Store, key string) error {
			return oauth2refresh.SaveToken(ctx, s, key, tok)
		},
		"Grant.SaveToken": func(ctx context.Context, s oauth2refresh.Store, key string) error {
			return oauth2refresh.NewManager(&oauth2refresh.Endpoint{TokenURL: "https://auth.example/token"}, s, nil).Grant(key).SaveToken(ctx, tok)
		},
	}
	for name, seed := range seeds {
		for _, op := range []string{"lock", "save"} {
			t.Run(name+"/"+op, func(t *testing.T) {
				ctx := context.Background()
				fs := &filestore.Store{Dir: t.TempDir()}
				qs := &quotingStore{Store: fs}
				var want *oauth2.Token // what stays stored
				if op == "lock" {
					// A store that failed to lock knows no stored token, but may know tok.
					qs.quote = []*oauth2.Token{tok}
					qs.locks.Store(1)
				} else {
					if err := oauth2refresh.SaveToken(ctx, fs, "g", old); err != nil {
						t.Fatal(err)
					}
					want = old
					qs.saves.Store(1)
				}
				err := seed(ctx, qs, "g")
				if err == nil {
					t.Fatal("no error")
				}
				texts := map[string]string{}
				for i, s := range errTexts(err) {
					texts[fmt.Sprint(i)] = s
				}
				leakCheck(t, texts, forms)
				if want := "Error 1062 on " + op + ": Duplicate entry '[redacted]'"; !strings.Contains(err.Error(), want) {
					t.Errorf("Error() = %q, want it to hold %q", err, want)
				}
				if !errors.Is(err, errStoreDown) {
					t.Errorf("errors.Is(%v, errStoreDown) = false", err)
				}
				if diff := cmp.Diff(tokenSecrets(want), tokenSecrets(mustLoad(t, fs, "g"))); diff != "" {
					t.Errorf("stored tokens (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestDPoPProofsRedacted: a DPoP token endpoint (proofs verified, a nonce required, so that
// each refresh sends two proofs) that echoes every proof it received, whole and each of its
// JWS parts in every listed form, in an error's body and headers, or a RoundTripper whose
// error quotes them, never gets a proof into a returned error (its text, fields, headers, the
// *oauth2.RetrieveError's Response.Request.Header), an event or a log line.
func TestDPoPProofsRedacted(t *testing.T) {
	errProxy := errors.New("proxy refused")
	tests := []struct {
		name  string
		reply func(w http.ResponseWriter, echo string) // the answer to the proof with the nonce
		proxy bool                                     // a RoundTripper fails it instead, quoting the proofs
		want  any                                      // the type of error
	}{
		{name: "error response", want: new(*oauth2refresh.RequestError), reply: func(w http.ResponseWriter, echo string) {
			w.Header().Set("WWW-Authenticate", `DPoP error="invalid_dpop_proof", error_description="`+echo+`"`)
			b, _ := json.Marshal(map[string]string{"error": "invalid_dpop_proof", "error_description": "bad proof " + echo,
				"error_uri": "https://errors.example/?proof=" + url.QueryEscape(echo)})
			respond(w, http.StatusBadRequest, "application/json", string(b))
		}},
		{name: "HTML page", want: new(*oauth2refresh.UnexpectedResponseError), reply: func(w http.ResponseWriter, echo string) {
			respond(w, http.StatusBadGateway, "text/html", "<pre>bad proof "+echo+"</pre>")
		}},
		{name: "transport error", want: new(*oauth2refresh.TransportError), proxy: true},
	}
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, err := oauth2refresh.NewDPoPKey(priv)
			if err != nil {
				t.Fatal(err)
			}
			v := newDPoPVerifier(t)
			v.rotate("token") // the first proof, without the nonce, is challenged
			v.bind("rt-0", key.Thumbprint())
			rs := newTokenServer(t, "rt-0", 3600)
			var challenges atomic.Int64
			dpopGate(rs, v, &challenges)
			var mu sync.Mutex // guards proofs
			var proofs []string
			echo := func(r *http.Request) string { // every proof received so far, in every form
				mu.Lock()
				defer mu.Unlock()
				proofs = append(proofs, r.Header.Get("DPoP"))
				var all []string
				for _, p := range proofs {
					all = append(append(all, p), strings.Split(p, ".")...)
				}
				return strings.Join(secretForms(all...), " ")
			}
			checked := rs.gate
			rs.gate = func(w http.ResponseWriter, r *http.Request) bool {
				said := echo(r)
				w.Header().Set("X-Echo", said)
				if !checked(w, r) {
					return false // the nonce challenge, with the echo in a header
				}
				tc.reply(w, said)
				return false
			}
			ep := rs.endpoint()
			ep.DPoP = key
			if tc.proxy {
				var n atomic.Int32
				ep.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
					if n.Add(1) == 1 {
						return http.DefaultTransport.RoundTrip(r)
					}
					return nil, fmt.Errorf("%w: DPoP %s", errProxy, echo(r))
				})}
			}
			withEvents, l, logs := recordEvents()
			_, err = ep.TokenSource(context.Background(), &oauth2.Token{RefreshToken: "rt-0"}, withEvents).Token()
			if err == nil || !errors.As(err, tc.want) {
				t.Fatalf("Token: %v, want a %T", err, tc.want)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(proofs) != 2 || challenges.Load() != 1 {
				t.Fatalf("%d proofs sent, %d nonce challenges, want 2 and 1", len(proofs), challenges.Load())
			}
			var forms []string
			for _, p := range proofs {
				forms = append(forms, secretForms(append([]string{p}, strings.Split(p, ".")...)...)...)
			}
			leakCheck(t, runTexts([]error{err}, l.take(), logs.String()), forms)
			if !slices.ContainsFunc(errTexts(err), func(s string) bool { return strings.Contains(s, "[redacted]") }) {
				t.Errorf("error %q shows no redacted echo", err)
			}
			if tc.proxy {
				if !errors.Is(err, errProxy) {
					t.Errorf("errors.Is(%v, errProxy) = false", err)
				}
				return
			}
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) {
				t.Fatalf("errors.As(%v, *oauth2.RetrieveError) = false", err)
			}
			req := re.Response.Request
			if diff := cmp.Diff([]string{"[redacted]", ""}, []string{req.Header.Get("DPoP"), req.Header.Get("Authorization")}); diff != "" {
				t.Errorf("Response.Request's DPoP and Authorization headers (-want +got):\n%s", diff)
			}
			if got := re.Response.Header.Get("X-Echo"); !strings.HasPrefix(got, "[redacted]") {
				t.Errorf("Response's X-Echo header %q, want it redacted", got)
			}
		})
	}
}

// TestRevokeStoreErrorsHoldNoTokens: Grant.Revoke's Store errors (the lease, the save of the
// revoked mark) hold none of the stored token's tokens, in any listed form; nothing is sent
// to the revocation endpoint, and the stored token stays.
func TestRevokeStoreErrorsHoldNoTokens(t *testing.T) {
	old := (&oauth2.Token{AccessToken: `AT-old+x/y=&"\é<>`, RefreshToken: `RT-old+x/y=&"\ü<>`}).
		WithExtra(map[string]any{"id_token": `ID-old+x/y=&"\✓<>`})
	forms := secretForms(tokenSecrets(old)...)
	for _, op := range []string{"lock", "save"} {
		t.Run(op, func(t *testing.T) {
			ctx := context.Background()
			var revocations atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				revocations.Add(1)
			}))
			defer srv.Close()
			fs := &filestore.Store{Dir: t.TempDir()}
			if err := oauth2refresh.SaveToken(ctx, fs, "g", old); err != nil {
				t.Fatal(err)
			}
			qs := &quotingStore{Store: fs, quote: []*oauth2.Token{old}}
			if op == "lock" {
				qs.locks.Store(1)
			} else {
				qs.saves.Store(1)
			}
			ep := &oauth2refresh.Endpoint{TokenURL: srv.URL + "/token", RevocationURL: srv.URL + "/revoke", ClientID: "id", ClientSecret: "secret"}
			err := oauth2refresh.NewManager(ep, qs, nil).Grant("g").Revoke(ctx)
			if err == nil {
				t.Fatal("no error")
			}
			texts := map[string]string{}
			for i, s := range errTexts(err) {
				texts[fmt.Sprint(i)] = s
			}
			leakCheck(t, texts, forms)
			if !errors.Is(err, errStoreDown) {
				t.Errorf("errors.Is(%v, errStoreDown) = false", err)
			}
			if n := revocations.Load(); n != 0 {
				t.Errorf("revocation requests = %d, want 0", n)
			}
			if diff := cmp.Diff(tokenSecrets(old), tokenSecrets(mustLoad(t, fs, "g"))); diff != "" {
				t.Errorf("stored tokens (-want +got):\n%s", diff)
			}
		})
	}
}

package oauth2refresh

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
)

// redactedError keeps err for errors.Is and errors.As but shows a message with the secrets
// cut out.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactor holds the strings that must never appear in an error message or error body: the
// refresh token sent, the client secret, and the tokens found in the response.
type redactor [5]string

// minSecret is the length under which a string is too short to be cut out of messages
// without mangling them; real secrets and tokens are much longer.
const minSecret = 4

func (r *redactor) add(s string) {
	if len(s) < minSecret {
		return
	}
	for i, v := range r {
		if v == s {
			return
		}
		if v == "" {
			r[i] = s
			return
		}
	}
}

// wrap returns err, or err behind a redactedError when its text holds a secret (a
// RoundTripper may say anything).
func (r *redactor) wrap(err error) error {
	msg := err.Error()
	if red := r.redact(oneLine(msg)); red != msg {
		return &redactedError{msg: red, err: err}
	}
	return err
}

// redact replaces every occurrence of a secret in s.
// A replacement can make a new occurrence (a server may choose a token that contains
// "[redacted]"), so it goes on until none is left; every round shortens s or uses up text
// after an occurrence, and the rounds are bounded anyway.
func (r *redactor) redact(s string) string {
	for range 16 {
		changed := false
		for _, sec := range r {
			if len(sec) >= minSecret && strings.Contains(s, sec) {
				s = strings.ReplaceAll(s, sec, "[redacted]")
				changed = true
			}
		}
		if !changed {
			return s
		}
	}
	return "[redacted]"
}

// keep returns a copy of at most MaxErrorBody bytes of b with the secrets cut out, so an error
// neither pins a large buffer nor holds a secret. The secrets are also cut out in the forms a
// server echoing them is likely to use: form-encoded and JSON-escaped.
func (r *redactor) keep(b []byte) []byte {
	for _, sec := range r {
		if len(sec) < minSecret {
			continue
		}
		b = replaceAll(b, sec)
		if q := url.QueryEscape(sec); q != sec {
			b = replaceAll(b, q)
		}
		if q := url.PathEscape(sec); q != sec {
			b = replaceAll(b, q)
		}
		if j, err := json.Marshal(sec); err == nil && string(j[1:len(j)-1]) != sec {
			b = replaceAll(b, string(j[1:len(j)-1]))
		}
	}
	if len(b) > MaxErrorBody {
		b = b[:MaxErrorBody]
	}
	return bytes.Clone(b)
}

// replaceAll replaces sec with "[redacted]" in b, in a new slice if it has to.
func replaceAll(b []byte, sec string) []byte {
	for range 16 {
		if !bytes.Contains(b, []byte(sec)) {
			return b
		}
		b = bytes.ReplaceAll(b, []byte(sec), []byte("[redacted]"))
	}
	return []byte("[redacted]")
}

// redactText redacts s for a field that Error prints on one line, so that the secrets are also
// cut out of the form Error shows.
func (r *redactor) redactText(s string) string {
	s = r.redact(s)
	if l := oneLine(s); l != s && r.redact(l) != l {
		return r.redact(l)
	}
	return s
}

// redactURLError drops userinfo from the URL in a *url.Error: the request URL is the token
// URL, which carries no credentials unless the caller put them there.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.User != nil {
			ue.URL = u.Redacted()
		}
	}
	return err
}

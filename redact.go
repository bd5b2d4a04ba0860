package oauth2refresh

// redact.go cuts known secrets out of the texts and errors that response.go puts in the errors
// it builds: literally, in the few forms an echo takes, in linear time.

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/oauth2"
)

// minSecret is the length under which a secret is not looked for: cutting out every "abc"
// would mangle messages, and real secrets and tokens are much longer.
const minSecret = 4

// redactor knows the patterns to cut out: each secret as it is, url.QueryEscape'd,
// url.PathEscape'd, and JSON-escaped by encoding/json with and without HTML escaping, and the
// raw and JSON-escaped forms also quoted by strconv.Quote (Go's %q, as error messages quote
// values); and the base64 credential of the Basic header, without padding so that it is found
// with or without.
type redactor struct{ pats []string }

// newRedactor returns the redactor for secrets and, when clientSecret is not empty, for the
// Basic credential of clientID and clientSecret, form-encoded as sent or not.
func newRedactor(clientID, clientSecret string, secrets ...string) *redactor {
	r := &redactor{}
	for _, s := range append(secrets, clientSecret) {
		if len(s) < minSecret {
			continue
		}
		forms := []string{s}
		if strings.ContainsFunc(s, func(c rune) bool { return c < 0x20 || strings.ContainsRune("\"\\<>&\u2028\u2029\uFFFD", c) }) {
			j, _ := json.Marshal(s)
			var b strings.Builder
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			enc.Encode(s)
			noHTML := strings.TrimSuffix(b.String(), "\n")
			forms = append(forms, string(j[1:len(j)-1]), noHTML[1:len(noHTML)-1])
		}
		for _, f := range forms {
			if strings.ContainsFunc(f, func(c rune) bool { return c == '"' || c == '\\' || c == utf8.RuneError || !strconv.IsPrint(c) }) {
				q := strconv.Quote(f)
				f = q[1 : len(q)-1]
			}
			r.add(f)
		}
		r.add(forms...)
		r.add(url.QueryEscape(s), url.PathEscape(s))
	}
	if clientSecret != "" {
		for _, cred := range [...]string{url.QueryEscape(clientID) + ":" + url.QueryEscape(clientSecret), clientID + ":" + clientSecret} {
			if b := base64.RawStdEncoding.EncodeToString([]byte(cred)); len(b) >= minSecret {
				r.add(b)
			}
		}
	}
	return r
}

func (r *redactor) add(pats ...string) {
	for _, p := range pats {
		if !slices.Contains(r.pats, p) {
			r.pats = append(r.pats, p)
		}
	}
}

// text returns s with every occurrence of a pattern replaced by "[redacted]", occurrences that
// overlap or touch replaced as one. Each pattern is looked for once, left to right, so the
// cost is linear in len(s) for each pattern. If a pattern is still found in the result, or in
// its one-line form (see oneLine), as when a server chose a token that holds "[redacted]", the
// whole text becomes "[redacted]".
func (r *redactor) text(s string) string {
	var cut []uint64 // bit i is set when byte i of s is part of an occurrence
	isCut := func(i int) bool { return cut[i/64]>>(i%64)&1 == 1 }
	for _, p := range r.pats {
		for i := 0; ; {
			j := strings.Index(s[i:], p)
			if j < 0 {
				break
			}
			if cut == nil {
				cut = make([]uint64, len(s)/64+1)
			}
			for i, end := i+j, i+j+len(p); i < end; i++ {
				cut[i/64] |= 1 << (i % 64)
			}
			i += j + len(p)
		}
	}
	if cut != nil {
		var b strings.Builder
		for i := 0; i < len(s); {
			j := i
			for j < len(s) && isCut(j) == isCut(i) {
				j++
			}
			if isCut(i) {
				b.WriteString("[redacted]")
			} else {
				b.WriteString(s[i:j])
			}
			i = j
		}
		s = b.String()
	}
	if r.holds(s) {
		return "[redacted]"
	}
	return s
}

// holds reports whether s, or its one-line form, holds a pattern.
func (r *redactor) holds(s string) bool {
	l := oneLine(s)
	for _, p := range r.pats {
		if strings.Contains(s, p) || strings.Contains(l, p) {
			return true
		}
	}
	return false
}

// header returns h, or a copy of it with its values redacted by text when any holds a pattern.
func (r *redactor) header(h http.Header) http.Header {
	out, copied := h, false
	for k, vs := range h {
		for i, v := range vs {
			if red := r.text(v); red != v {
				if !copied {
					out, copied = h.Clone(), true
				}
				out[k][i] = red
			}
		}
	}
	return out
}

// error returns err when neither its text nor that of any error in its chain (Unwrap, both
// forms) holds a pattern. Otherwise it returns a *redactedError with err's text redacted,
// which unwraps to the largest parts of err's chain that hold none.
func (r *redactor) error(err error) error {
	var parts []error
	if err == nil || r.clean(err, &parts) {
		return err
	}
	return &redactedError{msg: r.text(err.Error()), parts: parts}
}

// clean reports whether no text in the tree of err (err and what it unwraps to) holds a
// pattern. When some does, it appends to parts the subtrees of err that are clean.
func (r *redactor) clean(err error, parts *[]error) bool {
	var kids []error
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		if k := u.Unwrap(); k != nil {
			kids = []error{k}
		}
	case interface{ Unwrap() []error }:
		kids = slices.DeleteFunc(slices.Clone(u.Unwrap()), func(e error) bool { return e == nil })
	}
	ok := make([]bool, len(kids))
	all := !r.holds(err.Error())
	for i, k := range kids {
		ok[i] = r.clean(k, parts)
		all = all && ok[i]
	}
	if !all {
		for i, k := range kids {
			if ok[i] {
				*parts = append(*parts, k)
			}
		}
	}
	return all
}

// redactedError stands for an error whose chain held a secret. Its text is the original's
// with the secrets cut out, and it unwraps only to the parts of the original chain whose texts
// hold none, so that errors.Is and errors.As reach those (context.Canceled,
// context.DeadlineExceeded, a *net.OpError that quotes no secret) and nothing else.
type redactedError struct {
	msg   string
	parts []error
}

func (e *redactedError) Error() string   { return e.msg }
func (e *redactedError) Unwrap() []error { return e.parts }

// redactError returns err when neither its text nor the text of any error in its chain
// (Unwrap, both forms) holds one of secrets in a form redactor looks for; otherwise an error
// whose text and chain hold none (see redactor.error). Secrets shorter than 4 bytes are
// ignored. It is how errors that come from outside the response pipeline (a hook's, a
// store's) are made safe to log.
func redactError(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	return newRedactor("", "", secrets...).error(err)
}

// tokenSecrets returns what of toks an error must not show: the access token, the refresh
// token and the id_token of each that is not nil.
func tokenSecrets(toks ...*oauth2.Token) []string {
	var out []string
	for _, t := range toks {
		if t != nil {
			id, _ := t.Extra("id_token").(string)
			out = append(out, t.AccessToken, t.RefreshToken, id)
		}
	}
	return out
}

// jwsParts returns s, a JWS in compact serialization (a client assertion, a DPoP proof), and
// each of its dot-separated parts: an echo of the header, the claims or the signature alone is
// cut out too.
func jwsParts(s string) []string {
	if !strings.Contains(s, ".") {
		return []string{s}
	}
	return append(strings.Split(s, "."), s)
}

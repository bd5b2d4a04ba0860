package oauth2refresh

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// redactedError keeps err for errors.Is and errors.As but shows a message with the secrets
// cut out.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactor knows the strings that must never appear in an error message or an error's Body:
// the refresh token sent, the client secret, and the tokens found in the response. It is the
// one place that knows in which forms a server, a proxy or a RoundTripper may echo them: see
// redact. Building one costs nothing; the work is done only when an error is made.
type redactor struct {
	refreshToken string    // the refresh token that was sent
	clientID     string    // with clientSecret, makes the credential of the Basic header
	clientSecret string    // the client secret
	found        [3]string // tokens found in the response (access, refresh and id token)
}

// minSecret is the length under which a string is too short to be cut out of messages
// without mangling them; real secrets and tokens are much longer. The Basic credential is
// cut out whenever there is a client secret, however short.
const minSecret = 4

// add adds a token found in the response.
func (r *redactor) add(s string) {
	if len(s) < minSecret || s == r.refreshToken || s == r.clientSecret {
		return
	}
	for i, v := range r.found {
		if v == s {
			return
		}
		if v == "" {
			r.found[i] = s
			return
		}
	}
}

// patterns returns the strings to cut out: each secret in each of its forms (see
// secretForms), and the Basic credential ("id:secret" in base64, with the id and secret
// form-encoded as sent, or not) without its padding, so that it is found with or without.
func (r *redactor) patterns() []string {
	var p []string
	for _, s := range [...]string{r.refreshToken, r.clientSecret, r.found[0], r.found[1], r.found[2]} {
		if len(s) >= minSecret {
			p = appendNew(p, secretForms(s)...)
		}
	}
	if r.clientSecret != "" {
		for _, cred := range [...]string{url.QueryEscape(r.clientID) + ":" + url.QueryEscape(r.clientSecret), r.clientID + ":" + r.clientSecret} {
			if b := base64.RawStdEncoding.EncodeToString([]byte(cred)); len(b) >= minSecret {
				p = appendNew(p, b)
			}
		}
	}
	return p
}

// secretForms returns s and the forms an echo of it is likely to take: url.QueryEscape and
// url.PathEscape, also with lower-case hex digits; JSON-escaped by encoding/json, by an encoder
// that does not escape HTML, and by one that escapes all but ASCII; Go-quoted. Redact finds
// these as they are, as well as by decoding, because a decoding may start a sequence at a
// byte that begins a form of the secret ("%0CS%2B..." holds "CS%2B...").
func secretForms(s string) []string {
	j, _ := json.Marshal(s)
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	plain := strings.TrimSpace(b.String())
	q := strconv.Quote(s)
	qe, pe := url.QueryEscape(s), url.PathEscape(s)
	return appendNew([]string{s}, qe, pe, lowerHex(qe), lowerHex(pe), string(j[1:len(j)-1]),
		plain[1:len(plain)-1], asciiJSON(plain[1:len(plain)-1]), q[1:len(q)-1])
}

// appendNew appends to p those of ss it does not hold yet.
func appendNew(p []string, ss ...string) []string {
	for _, s := range ss {
		if !slices.Contains(p, s) {
			p = append(p, s)
		}
	}
	return p
}

// lowerHex returns percent-encoded s with lower-case hex digits.
func lowerHex(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = lower(b[i+1]), lower(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// asciiJSON returns JSON-escaped s with every rune beyond ASCII escaped as well, as Python's
// json module writes it.
func asciiJSON(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf:
			b.WriteRune(r)
		case r > 0xFFFF:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

// redact replaces with "[redacted]" every occurrence of a secret in s, as it is or in any of
// the forms an echo is likely to use. s is looked at as it is, and decoded by each decoding
// (percent-encoding as url.QueryEscape and url.PathEscape write it, in either case of hex
// digit; JSON and Go string escapes; HTML character references) and by any two of them in a
// row: a secret found in a decoded text has the text it was decoded from cut out. The base64
// Basic credential is a pattern of its own (see patterns), found in the same ways.
//
// A replacement can make a new occurrence (a server may choose a token that contains
// "[redacted]"), so it goes on until none is left; every round shortens s or uses up text
// after an occurrence, and the rounds are bounded anyway.
func (r *redactor) redact(s string) string {
	pats := r.patterns()
	if len(pats) == 0 {
		return s
	}
	for range 16 {
		spans := findSecrets(s, pats)
		if len(spans) == 0 {
			return s
		}
		s = cutSpans(s, spans)
	}
	return "[redacted]"
}

// message returns the text of err for an error message: on one line, secrets cut out.
func (r *redactor) message(err error) string {
	return r.redact(oneLine(err.Error()))
}

// wrap returns err, or err behind a redactedError when its text holds a secret or is not one
// line (a RoundTripper may say anything, quoting the request body or its headers).
func (r *redactor) wrap(err error) error {
	msg := err.Error()
	if red := r.redact(oneLine(msg)); red != msg {
		return &redactedError{msg: red, err: err}
	}
	return err
}

// redactText redacts s for a field that Error prints on one line, so that the secrets are
// also cut out of the form Error shows.
func (r *redactor) redactText(s string) string {
	s = r.redact(s)
	if l := oneLine(s); l != s && r.redact(l) != l {
		return r.redact(l)
	}
	return s
}

// keep returns a copy of at most MaxErrorBody bytes of b with the secrets cut out as redact
// does, so an error neither pins a large buffer nor holds a secret. The secrets are cut out
// before the body is cut short, so that no start of one is left at the end.
func (r *redactor) keep(b []byte) []byte {
	// Only the start of a large body is redacted: enough that an occurrence cut by the end of
	// that window, in any form, lies beyond MaxErrorBody once redacted.
	slack := 0
	for _, p := range r.patterns() {
		slack = max(slack, maxEncodedLen*len(p))
	}
	w := min(len(b), MaxErrorBody+slack)
	s := r.redact(string(b[:w]))
	if w < len(b) && len(s) < MaxErrorBody+slack {
		s = r.redact(string(b)) // redactions shortened the window too much
	}
	return []byte(s[:min(len(s), MaxErrorBody)])
}

// maxEncodedLen bounds how many bytes of text one byte of a secret takes in any form redact
// finds: a sequence that one decoding decodes is at most 12 bytes long ("&#x00000041;"), and
// two decodings are applied at most.
const maxEncodedLen = 12 * 12

// decoding is a way a secret may be encoded in a text.
type decoding uint8

const (
	decQuery decoding = iota // percent-encoding, '+' for a space (url.QueryEscape, form bodies)
	decPath                  // percent-encoding only (url.PathEscape, encodeURIComponent)
	decEsc                   // JSON and Go string escapes (\" \\ \/ \n \u00e9 \U0001F600 \x41 ...)
	decHTML                  // HTML character references (&amp; &quot; &#39; &#x2B; ...)

	numDecodings
)

// findSecrets returns where s holds one of pats: as it is, or in the text decoded by one or
// two decodings in a row (a JSON error_description quoting a form-encoded request body, a
// form-encoded error_description quoting it, an HTML page showing a JSON body).
func findSecrets(s string, pats []string) []span {
	spans := search(nil, s, pats)
	for d1 := range numDecodings {
		t1, ok := decode(s, d1, nil)
		if !ok {
			continue
		}
		if found := search(nil, t1, pats); len(found) > 0 {
			spans = appendMapped(spans, found, s, d1)
		}
		for d2 := range numDecodings {
			t2, ok := decode(t1, d2, nil)
			if !ok {
				continue
			}
			if found := search(nil, t2, pats); len(found) > 0 {
				spans = appendMapped(spans, found, s, d1, d2)
			}
		}
	}
	return spans
}

// span is the byte range [start, end) of a text to cut out.
type span struct{ start, end int }

// search appends the spans of every occurrence of pats in s.
func search(spans []span, s string, pats []string) []span {
	for _, p := range pats {
		spans = appendIndexes(spans, s, p)
	}
	return spans
}

// appendMapped appends to spans the spans found in s decoded by ds, mapped back to s.
func appendMapped(spans, found []span, s string, ds ...decoding) []span {
	maps := make([][]int, len(ds))
	for i, d := range ds {
		s, _ = decode(s, d, &maps[i])
	}
	for _, sp := range found {
		for i := len(maps) - 1; i >= 0; i-- {
			sp = span{maps[i][sp.start], endOf(maps[i], sp.end)}
		}
		spans = append(spans, sp)
	}
	return spans
}

// appendIndexes appends the spans of every occurrence of p in s.
func appendIndexes(spans []span, s, p string) []span {
	for off := 0; ; {
		i := strings.Index(s[off:], p)
		if i < 0 {
			return spans
		}
		spans = append(spans, span{off + i, off + i + len(p)})
		off += i + 1
	}
}

// endOf returns where in the source the decoded bytes [:end] end, pos being the map made by
// decode: when end falls inside the decoding of one sequence, the whole sequence is taken.
func endOf(pos []int, end int) int {
	for end > 0 && end < len(pos)-1 && pos[end] == pos[end-1] {
		end++
	}
	return pos[end]
}

// cutSpans replaces each span of s, merged where they overlap, with "[redacted]".
func cutSpans(s string, spans []span) string {
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	var b strings.Builder
	b.Grow(len(s))
	at := 0
	for i := 0; i < len(spans); {
		start, end := spans[i].start, spans[i].end
		for i++; i < len(spans) && spans[i].start < end; i++ {
			end = max(end, spans[i].end)
		}
		b.WriteString(s[at:start])
		b.WriteString("[redacted]")
		at = end
	}
	b.WriteString(s[at:])
	return b.String()
}

// decode decodes s by d; ok is false when there is nothing to decode in s. A sequence that
// is not well-formed is left as it is. When pos is not nil, it is set to the offset in s of
// the sequence each byte of the result comes from, followed by len(s).
func decode(s string, d decoding, pos *[]int) (string, bool) {
	intro := "%"
	switch d {
	case decQuery:
		intro = "%+"
	case decEsc:
		intro = `\`
	case decHTML:
		intro = "&"
	}
	if !strings.ContainsAny(s, intro) {
		return s, false
	}
	out := make([]byte, 0, len(s))
	var p []int
	if pos != nil {
		p = make([]int, 0, len(s)+1)
	}
	var buf [utf8.UTFMax]byte
	for i := 0; i < len(s); {
		if k := strings.IndexAny(s[i:], intro); k != 0 { // copy the run up to the next sequence
			if k < 0 {
				k = len(s) - i
			}
			out = append(out, s[i:i+k]...)
			if pos != nil {
				for j := range k {
					p = append(p, i+j)
				}
			}
			i += k
			continue
		}
		dec, n := buf[:1], 1
		buf[0] = s[i]
		switch {
		case s[i] == '%' && d != decEsc && d != decHTML:
			if c, ok := unhex(s, i+1, 2); ok {
				buf[0], n = byte(c), 3
			}
		case s[i] == '+' && d == decQuery:
			buf[0] = ' '
		case s[i] == '\\' && d == decEsc:
			dec, n = unescape(s, i, buf[:0])
		case s[i] == '&' && d == decHTML:
			dec, n = unentity(s, i, buf[:0])
		}
		out = append(out, dec...)
		if pos != nil {
			for range dec {
				p = append(p, i)
			}
		}
		i += n
	}
	if pos != nil {
		*pos = append(p, len(s))
	}
	return string(out), true
}

// unescape decodes the JSON or Go string escape at s[i] ('\\') into buf, and says how long it
// is. It returns the backslash alone, as one byte, when it starts no escape.
func unescape(s string, i int, buf []byte) ([]byte, int) {
	if i+1 < len(s) {
		switch c := s[i+1]; c {
		case '"', '\\', '/', '\'':
			return append(buf, c), 2
		case 'b':
			return append(buf, '\b'), 2
		case 'f':
			return append(buf, '\f'), 2
		case 'n':
			return append(buf, '\n'), 2
		case 'r':
			return append(buf, '\r'), 2
		case 't':
			return append(buf, '\t'), 2
		case 'a':
			return append(buf, '\a'), 2
		case 'v':
			return append(buf, '\v'), 2
		case 'x':
			if v, ok := unhex(s, i+2, 2); ok {
				return append(buf, byte(v)), 4
			}
		case 'U':
			if v, ok := unhex(s, i+2, 8); ok && utf8.ValidRune(rune(v)) {
				return utf8.AppendRune(buf, rune(v)), 10
			}
		case 'u':
			v, ok := unhex(s, i+2, 4)
			if !ok {
				break
			}
			r := rune(v)
			if r >= 0xD800 && r < 0xDC00 { // a surrogate pair, as JSON writes runes beyond U+FFFF
				if i+7 < len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
					if lo, ok := unhex(s, i+8, 4); ok && lo >= 0xDC00 && lo < 0xE000 {
						return utf8.AppendRune(buf, (r-0xD800)<<10|(rune(lo)-0xDC00)+0x10000), 12
					}
				}
			}
			return utf8.AppendRune(buf, r), 6 // a lone surrogate is U+FFFD, as in encoding/json
		}
	}
	return append(buf, '\\'), 1
}

// htmlNamed are the named character references that HTML escapers write.
var htmlNamed = [...]struct{ name, char string }{
	{"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", `"`}, {"&apos;", "'"}, {"&nbsp;", "\u00a0"},
}

// unentity decodes the HTML character reference at s[i] ('&') into buf, and says how long it
// is. It returns the ampersand alone, as one byte, when it starts no reference.
func unentity(s string, i int, buf []byte) ([]byte, int) {
	for _, e := range htmlNamed {
		if strings.HasPrefix(s[i:], e.name) {
			return append(buf, e.char...), len(e.name)
		}
	}
	if i+2 < len(s) && s[i+1] == '#' {
		j, base := i+2, 10
		if s[j] == 'x' || s[j] == 'X' {
			j, base = j+1, 16
		}
		v, k := 0, j
		for ; k < len(s) && k-j < 8 && digitValue(s[k], base) >= 0; k++ {
			v = v*base + digitValue(s[k], base)
		}
		if k > j && k < len(s) && s[k] == ';' && utf8.ValidRune(rune(v)) {
			return utf8.AppendRune(buf, rune(v)), k + 1 - i
		}
	}
	return append(buf, '&'), 1
}

// unhex reads n hex digits of either case at s[i:].
func unhex(s string, i, n int) (int, bool) {
	if i+n > len(s) {
		return 0, false
	}
	v := 0
	for _, c := range []byte(s[i : i+n]) {
		d := digitValue(c, 16)
		if d < 0 {
			return 0, false
		}
		v = v<<4 | d
	}
	return v, true
}

// digitValue returns the value of c as a digit in base 10 or 16, or -1.
func digitValue(c byte, base int) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case base == 16 && c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case base == 16 && c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
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

// redactError returns err when neither its text nor the text of any error in its chain
// (Unwrap, both forms) holds one of secrets in a form an echo takes; otherwise an error whose
// text and chain hold none. It is how errors that come from outside the response pipeline
// (a hook's, a store's, a RoundTripper's) are made safe to log. Empty secrets are ignored.
//
// Placeholder of the pipeline redesign: the redesign replaces its body, not its contract.
func redactError(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	var r redactor
	for _, s := range secrets {
		switch {
		case s == "":
		case r.refreshToken == "":
			r.refreshToken = s
		default:
			r.add(s)
		}
	}
	msg := err.Error()
	if red := r.redact(oneLine(msg)); red != msg {
		return &redactedError{msg: red}
	}
	return err
}

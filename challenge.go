package oauth2refresh

// challenge.go reads the challenges of WWW-Authenticate fields (RFC 9110 §11.6.1), for the
// DPoP nonce challenges of resource servers (dpop.go, transport.go).

import "strings"

// challenge is one challenge of a WWW-Authenticate field (RFC 9110 §11.3):
//
//	challenge   = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//	auth-param  = token BWS "=" BWS ( token / quoted-string )
type challenge struct {
	Scheme  string            // the auth-scheme as sent: compare it with strings.EqualFold
	Token68 string            // the token68, if the challenge has one
	Params  map[string]string // the auth-params, names in lower case, values unquoted; nil if none
}

// parseChallenges returns the challenges of the WWW-Authenticate field values vs, in order.
// Fields are lists (RFC 9110 §5.6.1, §11.6.1): one value may hold several challenges, as a
// server or an intermediary joins fields with commas (§5.3), and empty list elements are
// skipped. A value is read up to its first syntax error: what precedes it is kept (a challenge
// cut short keeps the auth-params read before the error), the rest of that value is not.
// A repeated auth-param name keeps its first value. It runs in time linear in the input.
func parseChallenges(vs []string) []challenge {
	var out []challenge
	for _, v := range vs {
		out = appendChallenges(out, v)
	}
	return out
}

// appendChallenges appends the challenges of the field value s to out.
func appendChallenges(out []challenge, s string) []challenge {
	for {
		s = skipListSep(s)
		scheme, rest := cutToken(s)
		if scheme == "" {
			return out // the end, or not a challenge
		}
		c := challenge{Scheme: scheme}
		s = rest
		if t := trimOWS(s); len(t) < len(s) && t != "" && t[0] != ',' {
			s = t
			if tok, rest, ok := cutToken68(s); ok {
				c.Token68, s = tok, rest
			} else {
				var ok bool
				s, ok = c.parseParams(s)
				if !ok {
					return append(out, c)
				}
			}
		}
		out = append(out, c)
		if s = trimOWS(s); s != "" && s[0] != ',' {
			return out
		}
	}
}

// parseParams reads the #auth-param list at the start of s into c, up to the end of s or the
// comma before the next challenge, and returns the rest; ok is false at a syntax error.
func (c *challenge) parseParams(s string) (rest string, ok bool) {
	for {
		name, r := cutToken(s)
		r = trimOWS(r)
		if name == "" || r == "" || r[0] != '=' {
			return s, false
		}
		r = trimOWS(r[1:])
		var value string
		if r != "" && r[0] == '"' {
			if value, r, ok = cutQuoted(r); !ok {
				return s, false
			}
		} else if value, r = cutToken(r); value == "" {
			return s, false
		}
		name = strings.ToLower(name)
		if _, dup := c.Params[name]; !dup {
			if c.Params == nil {
				c.Params = map[string]string{}
			}
			c.Params[name] = value
		}
		s = trimOWS(r)
		if s == "" || s[0] != ',' {
			return s, s == ""
		}
		// After the comma: another auth-param (token BWS "="), or the next challenge.
		next := skipListSep(s)
		name, r = cutToken(next)
		if r = trimOWS(r); name == "" || r == "" || r[0] != '=' {
			return s, true
		}
		s = next
	}
}

// isTchar reports whether b is a tchar of a token (RFC 9110 §5.6.2).
func isTchar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}

// cutToken returns the token at the start of s, possibly empty, and the rest.
func cutToken(s string) (token, rest string) {
	i := 0
	for i < len(s) && isTchar(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

// cutToken68 returns the token68 at the start of s (RFC 9110 §11.2) and the rest, if a token68
// is the whole of the challenge's data: it is followed by the end or a comma.
func cutToken68(s string) (token68, rest string, ok bool) {
	i := 0
	for i < len(s) && (isAlnum(s[i]) || strings.IndexByte("-._~+/", s[i]) >= 0) {
		i++
	}
	if i == 0 {
		return "", s, false
	}
	for i < len(s) && s[i] == '=' {
		i++
	}
	if r := trimOWS(s[i:]); r != "" && r[0] != ',' {
		return "", s, false
	}
	return s[:i], s[i:], true
}

func isAlnum(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
}

// cutQuoted returns the unquoted value of the quoted-string at the start of s (RFC 9110
// §5.6.4) and the rest; ok is false if it is not one.
func cutQuoted(s string) (value, rest string, ok bool) {
	var b []byte // the value, once a quoted-pair is met
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			if b == nil {
				return s[1:i], s[i+1:], true
			}
			return string(b), s[i+1:], true
		case c == '\\':
			if i+1 == len(s) || !isQuotedText(s[i+1]) && s[i+1] != '"' && s[i+1] != '\\' {
				return "", s, false
			}
			if b == nil {
				b = append([]byte(nil), s[1:i]...)
			}
			i++
			b = append(b, s[i])
		case !isQuotedText(c):
			return "", s, false
		default:
			if b != nil {
				b = append(b, c)
			}
		}
	}
	return "", s, false
}

// isQuotedText reports whether b is a qdtext: HTAB, SP, a visible character other than '"'
// and '\', or obs-text.
func isQuotedText(b byte) bool {
	return b == '\t' || b == ' ' || b == 0x21 || 0x23 <= b && b <= 0x5B || 0x5D <= b && b <= 0x7E || b >= 0x80
}

// trimOWS trims the optional white space (SP, HTAB) at the start of s.
func trimOWS(s string) string {
	return strings.TrimLeft(s, " \t")
}

// skipListSep skips white space and the commas of empty list elements at the start of s.
func skipListSep(s string) string {
	return strings.TrimLeft(s, " \t,")
}

// Package quote bounds what error messages of the root package and the store packages quote:
// grant keys, which may be chosen by an attacker, and other strings of unbounded length.
package quote

import "fmt"

// Truncate shortens s to at most n bytes without splitting a UTF-8 sequence.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// Key quotes a grant key for an error message, shortened if long.
func Key(key string) string { return fmt.Sprintf("%q", Truncate(key, 100)) }

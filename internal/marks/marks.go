// Package marks holds what the root package and the store packages both read and write in a
// token's Extra values: the dead mark of a grant and the refresh-token expiry. It is not
// exported: a Store keeps these as any Extra value, without knowing of them.
package marks

import (
	"time"

	"golang.org/x/oauth2"
)

// DeadKey is the Extra member of a token that marks its grant dead (see DeadToken); its value
// is a *Dead, a type no token response can produce: a response member of that name is an
// ordinary Extra value, stored in "extra" (see store.Encode).
const DeadKey = "oauth2refresh.dead"

// Dead is the value of a dead mark.
type Dead struct {
	Reason string
	At     time.Time
}

// DeadToken returns the token that marks a grant dead for reason since at: it has no access
// or refresh token, and the stored-token format keeps the mark as its "dead" member.
func DeadToken(reason string, at time.Time) *oauth2.Token {
	return (&oauth2.Token{}).WithExtra(map[string]any{DeadKey: &Dead{reason, at}})
}

// DeadOf returns the dead mark of t, or nil if t is not one.
func DeadOf(t *oauth2.Token) *Dead {
	if t == nil {
		return nil
	}
	m, _ := t.Extra(DeadKey).(*Dead)
	return m
}

// RefreshExpiryKey is the Extra member that records when a token's refresh token expires
// (see oauth2refresh.RefreshTokenExpiry), a time in the form of FormatTime.
const RefreshExpiryKey = "refresh_expiry"

// FormatTime returns t in RFC 3339, in UTC, to the second; "" for the zero time.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

package oauth2refresh

// Seams of the Manager for the external tests.

import (
	"slices"

	"golang.org/x/oauth2"
)

// HeldGrants returns the keys of the grants m holds in memory, sorted.
func HeldGrants(m *Manager) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]string, 0, len(m.ring))
	for _, e := range m.ring {
		keys = append(keys, e.key)
	}
	slices.Sort(keys)
	return keys
}

// DeadMark returns the DeadGrantError of key's grant if t, a stored token, marks it dead.
func DeadMark(key string, t *oauth2.Token) *DeadGrantError { return deadOf(key, t) }

// DeadToken returns the token that marks a grant dead, as a Store keeps it.
var DeadToken = deadToken

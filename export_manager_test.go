package oauth2refresh

// Seams of the Manager for the external tests.

import (
	"fmt"
	"slices"

	"golang.org/x/oauth2"
)

// HeldGrants returns the keys of the grants m holds in memory, sorted: those of its CLOCK
// ring, and those not yet in it.
func HeldGrants(m *Manager) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var keys []string
	m.grants.Range(func(k, _ any) bool {
		keys = append(keys, k.(string))
		return true
	})
	slices.Sort(keys)
	return keys
}

// DeadMark returns the DeadGrantError of key's grant if t, a stored token, marks it dead.
func DeadMark(key string, t *oauth2.Token) *DeadGrantError { return deadOf(key, t) }

// DeadToken returns the token that marks a grant dead, as a Store keeps it.
var DeadToken = deadToken

// CheckGrants reports whether the map of m holds exactly the entries of its CLOCK ring, each
// under its key (with no call running, every entry of the map is held), and whether m keeps
// at most maxFailed failed keys.
func CheckGrants(m *Manager) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	var err error
	m.grants.Range(func(k, v any) bool {
		n++
		if e := v.(*entry); e.key != k || !e.held.Load() || m.ring[e.slot] != e {
			err = fmt.Errorf("entry %q in the map is not in the ring", e.key)
		}
		return err == nil
	})
	if err == nil && len(m.failed) > maxFailed {
		err = fmt.Errorf("%d failed keys kept, want at most %d", len(m.failed), maxFailed)
	}
	if err == nil && n != len(m.ring) {
		err = fmt.Errorf("%d entries in the map, %d in the ring", n, len(m.ring))
	}
	return err
}

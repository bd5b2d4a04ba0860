package oauth2refresh

// Seams of the Manager for the external tests.

import (
	"fmt"
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

// CheckGrants reports whether the hash table of m holds exactly the entries of its CLOCK ring,
// each found by its key, and its counts are right.
func CheckGrants(m *Manager) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.grants.Load()
	live, used := 0, 0
	for i := range t.slots {
		switch e := t.slots[i].Load(); e {
		case nil:
		case tombstone:
			used++
		default:
			live++
			used++
			if m.ring[e.slot] != e {
				return fmt.Errorf("entry %q in the table is not in the ring", e.key)
			}
		}
	}
	if live != m.live || used != m.used || live != len(m.ring) {
		return fmt.Errorf("table: %d entries, %d slots used; counted %d, %d; ring %d", live, used, m.live, m.used, len(m.ring))
	}
	for _, e := range m.ring {
		if m.lookup(e.key) != e {
			return fmt.Errorf("entry %q not found by its key", e.key)
		}
	}
	return nil
}

package oauth2refresh

// Seams of events.go for the external tests.

// FlightWaiters returns how many callers wait for the flight of s in progress, or -1 if none.
func FlightWaiters(s *TokenSource) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flight == nil {
		return -1
	}
	return s.flight.waiters
}

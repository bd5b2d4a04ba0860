package oauth2refresh

// Seams of the TokenSource for the external tests (package oauth2refresh_test).

import "time"

const (
	MinBackoff        = minBackoff
	MaxBackoff        = maxBackoff
	MaxRefusedBackoff = maxRefusedBackoff
	MaxRetryAfter     = maxRetryAfter
	WallCheckInterval = wallCheckInterval
	MaxClockDrift     = maxClockDrift
)

var (
	BackoffDelay = backoff
	RetryAfter   = retryAfter
	Forever      = forever
)

// WaitFlight waits for the flight of s in progress, if any, to finish.
func WaitFlight(s *TokenSource) {
	s.mu.Lock()
	f := s.flight
	s.mu.Unlock()
	if f != nil {
		<-f.done
	}
}

// SetSlowHook makes s call f at every entry to its slow path. Call it before the first call.
func SetSlowHook(s *TokenSource, f func()) { s.testHookSlow = f }

// Deadlines returns the soft and hard deadlines of the token s serves, and quietAt.
func Deadlines(s *TokenSource) (soft, hard time.Time, quietAt int64) {
	st := s.state.Load()
	return st.soft, st.hard, st.quietAt
}

// UseMonotonic makes the hot path of s read the real monotonic clock, while its decisions keep
// the clock of WithClock: a machine that sleeps, with a test's wall clock.
func UseMonotonic(s *TokenSource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clk.custom, s.clk.base = false, time.Now()
	now, e := s.clk.read()
	s.state.Store(s.newState(s.state.Load().tok, now, e))
}

// DueWallCheck makes the next call of s take the slow path, as after a second.
func DueWallCheck(s *TokenSource) { s.clk.check.Store(0) }

// Elapsed converts the wall-clock time t to an elapsed value of s's clock, now being the
// wall-clock time.
func Elapsed(s *TokenSource, t, now time.Time) int64 { return at(t, now, s.clk.elapsed()) }

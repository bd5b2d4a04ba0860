package oauth2refresh

// clock.go owns the two clocks of the hot path, which reads the monotonic clock only
// (time.Since costs half of time.Now) against wall-clock deadlines converted to it.
// tokensource.go decides what the deadlines are; this file only says whether one passed.
//
// The monotonic clock stops while a machine sleeps, and the wall clock may be stepped, so at
// least every wallCheckInterval a call takes the slow path, which decides with the wall clock
// (as golang.org/x/oauth2 does) and converts the deadlines again when the clocks drifted apart
// by more than maxClockDrift. After a sleep, an expired token is served for at most a second.

import (
	"math"
	"sync/atomic"
	"time"
)

const (
	wallCheckInterval = time.Second
	maxClockDrift     = 10 * time.Millisecond
)

// Elapsed values: never, for a deadline that cannot pass, and already, for one that passed.
const (
	never   = math.MaxInt64
	already = math.MinInt64
)

// clock reads the two clocks. Elapsed values are nanoseconds since base on the monotonic
// clock, or on now when WithClock replaced it (custom): the two clocks are then one.
type clock struct {
	now    func() time.Time // the wall clock; read-only
	custom bool             // read-only
	base   time.Time        // read-only
	// check is the elapsed value at which the hot path next leaves the decision to the slow
	// path and its wall clock. Stored by the slow path, read without a lock.
	check atomic.Int64
}

// init sets c up with the wall clock now; custom says it is also the elapsed clock.
func (c *clock) init(now func() time.Time, custom bool) {
	c.now, c.custom, c.base = now, custom, time.Now()
	if custom {
		c.base = now()
	}
	c.check.Store(int64(wallCheckInterval))
}

func (c *clock) elapsed() int64 {
	if c.custom {
		return int64(c.now().Sub(c.base))
	}
	return int64(time.Since(c.base))
}

// before reports whether the elapsed deadline at has not passed and no wall-clock check is
// due: the hot path may then act without the wall clock. No lock, no allocation.
func (c *clock) before(at int64) bool {
	e := c.elapsed()
	return e < at && e < c.check.Load()
}

// read reads the wall clock and the elapsed time together, and schedules the next wall-clock
// check. Callers read it after taking their lock: a wait for it must not look like drift.
func (c *clock) read() (now time.Time, e int64) {
	now = c.now()
	if c.custom {
		e = int64(now.Sub(c.base))
	} else {
		e = int64(time.Since(c.base))
	}
	c.check.Store(e + int64(wallCheckInterval))
	return now, e
}

// at converts the wall-clock time t to an elapsed value, e being the elapsed value at
// wall-clock time now.
func at(t, now time.Time, e int64) int64 {
	d := int64(t.Sub(now.Round(0)))
	if d > 0 && e > never-d {
		return never
	}
	return e + d
}

// redo converts the wall-clock deadline t, converted earlier to old, again if the clocks
// drifted apart by more than maxClockDrift since; it returns old otherwise.
func redo(t time.Time, old int64, now time.Time, e int64) int64 {
	if old == never || old == already {
		return old
	}
	if d := at(t, now, e) - old; d > int64(maxClockDrift) || d < -int64(maxClockDrift) {
		return old + d
	}
	return old
}

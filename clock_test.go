package oauth2refresh

import (
	"testing"
	"time"
)

func TestClockBefore(t *testing.T) {
	// With a custom clock, elapsed values are that clock's time since the clock was made; the
	// hot path trusts a deadline only until the next wall-clock check, a second after read.
	wall := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var c clock
	c.init(func() time.Time { return wall }, true)
	deadline := int64(10 * time.Second)
	tests := []struct {
		name    string
		advance time.Duration
		read    bool // the slow path reads the clocks first
		want    bool
	}{
		{name: "at once", want: true},
		{name: "just before the first wall-clock check", advance: 999 * time.Millisecond, want: true},
		{name: "wall-clock check due", advance: time.Millisecond, want: false},
		{name: "after the slow path read the clocks", read: true, want: true},
		{name: "past the deadline", advance: 9 * time.Second, read: true, want: false},
	}
	for _, tc := range tests {
		wall = wall.Add(tc.advance)
		if tc.read {
			c.read()
		}
		if got := c.before(deadline); got != tc.want {
			t.Errorf("%s: before(%v) = %v, want %v", tc.name, time.Duration(deadline), got, tc.want)
		}
	}
	wall = wall.Add(2 * wallCheckInterval)
	if c.before(never) {
		t.Error("before(never) with a wall-clock check due = true, want false")
	}
	c.read()
	if !c.before(never) || c.before(already) {
		t.Errorf("before(never), before(already) = %v, %v; want true, false", c.before(never), c.before(already))
	}
}

func TestClockMonotonic(t *testing.T) {
	// Without a custom clock, elapsed values come from the monotonic clock, whatever now says.
	var c clock
	c.init(func() time.Time { return time.Unix(0, 0) }, false)
	now, e := c.read()
	if !now.Equal(time.Unix(0, 0)) || e < 0 || e > int64(time.Minute) {
		t.Errorf("read() = %v, %v; want the wall clock given and a small elapsed value", now, time.Duration(e))
	}
	if !c.before(e + int64(time.Hour)) {
		t.Error("before(an hour on) = false, want true")
	}
}

func TestAt(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		t    time.Time
		e    int64
		want int64
	}{
		{"now", now, 500, 500},
		{"a minute on", now.Add(time.Minute), 500, 500 + int64(time.Minute)},
		{"a minute ago", now.Add(-time.Minute), 500, 500 - int64(time.Minute)},
		{"far future saturates", time.Unix(1<<62, 0), int64(time.Hour), never},
		{"monotonic reading of now ignored", time.Now().Add(time.Second), 0, int64(time.Second)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := now
			if tc.name == "monotonic reading of now ignored" {
				n = tc.t.Add(-time.Second) // carries a monotonic reading
			}
			if got := at(tc.t, n, tc.e); got != tc.want {
				t.Errorf("at() = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestRedo(t *testing.T) {
	// A deadline converted at one reading is converted again only when the two clocks
	// drifted apart by more than maxClockDrift since.
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	q := now.Add(time.Hour)
	old := at(q, now, 0)
	tests := []struct {
		name string
		wall time.Duration // the wall clock moved by
		mono time.Duration // the elapsed clock moved by
		want int64
	}{
		{name: "together", wall: time.Minute, mono: time.Minute, want: old},
		{name: "within the drift", wall: time.Minute, mono: time.Minute - maxClockDrift, want: old},
		{name: "a sleep: the wall clock jumped", wall: 10 * time.Minute, mono: time.Minute, want: old - int64(9*time.Minute)},
		{name: "the wall clock stepped back", wall: -time.Minute, mono: time.Second, want: old + int64(time.Minute+time.Second)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := redo(q, old, now.Add(tc.wall), int64(tc.mono)); got != tc.want {
				t.Errorf("redo() = %v, want %v", time.Duration(got), time.Duration(tc.want))
			}
		})
	}
	for _, v := range []int64{never, already} {
		if got := redo(q, v, now.Add(time.Hour), 0); got != v {
			t.Errorf("redo(%d) = %d, want it unchanged", v, got)
		}
	}
}

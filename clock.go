package apitoken

import "time"

// Clock is where the library reads the time (WithClock). Read returns two
// readings taken together.
//
// The wall-clock time is used only for what is shown or stored: event
// times, last_used_at, X-RateLimit-Reset, and the comparison with a token's
// expires_at, which is itself a wall-clock time.
//
// The monotonic reading is used for everything that decides how long
// something lasts: verification cache entries, rate-limit windows, response
// times. It is the time elapsed since a fixed point of the Clock's choosing
// on a clock that a step of the wall clock (NTP, a resumed VM) does not
// move, and it never goes backwards. Readings of different Clocks are not
// comparable.
//
// Implementations must be safe for concurrent use.
type Clock interface {
	Read() (wall time.Time, mono time.Duration)
}

// systemClock is the default Clock: one time.Now, whose monotonic part Go
// keeps apart from the wall clock, gives both readings.
type systemClock struct{ start time.Time }

func newSystemClock() systemClock { return systemClock{start: time.Now()} }

func (c systemClock) Read() (time.Time, time.Duration) {
	t := time.Now()
	return t, t.Sub(c.start)
}

// SystemClock returns the system's clock: its wall-clock time is time.Now's,
// its monotonic reading the time since SystemClock was called, measured on
// the monotonic clock.
func SystemClock() Clock { return newSystemClock() }

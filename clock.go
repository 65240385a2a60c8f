package apitoken

import "time"

// Clock is where the library reads the time (WithClock).
//
// Now is the wall clock. It is used only for what is shown or stored: event
// times, last_used_at, X-RateLimit-Reset, and the comparison with a token's
// expires_at, which is itself a wall-clock time.
//
// Monotonic is used for everything that decides how long something lasts:
// verification cache entries, rate-limit windows, response times. It returns
// the time elapsed since a fixed point of the Clock's choosing on a clock
// that a step of the wall clock (NTP, a resumed VM) does not move, and it
// never goes backwards. Readings of different Clocks are not comparable.
//
// Implementations must be safe for concurrent use.
type Clock interface {
	Now() time.Time
	Monotonic() time.Duration
}

// systemClock is the default Clock. Its Monotonic is time.Since(start),
// which Go measures on the monotonic clock.
type systemClock struct{ start time.Time }

func newSystemClock() systemClock { return systemClock{start: time.Now()} }

func (c systemClock) Now() time.Time { return time.Now() }

func (c systemClock) Monotonic() time.Duration { return time.Since(c.start) }

// SystemClock returns the system's clock: Now is time.Now, and Monotonic
// the time since SystemClock was called, measured on the monotonic clock.
func SystemClock() Clock { return newSystemClock() }

// Package fakeclock is an apitoken.Clock for tests: it moves only when told
// to, and its wall clock can step without moving its monotonic clock, as
// NTP or a resumed VM steps a real one.
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a controlled clock. It is safe for concurrent use.
type Clock struct {
	mu   sync.Mutex
	wall time.Time
	mono time.Duration
}

// New returns a Clock whose wall clock reads wall and whose monotonic clock
// reads one hour (so that a zero reading never occurs).
func New(wall time.Time) *Clock { return &Clock{wall: wall, mono: time.Hour} }

// Read returns the wall-clock time and the monotonic reading.
func (c *Clock) Read() (time.Time, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wall, c.mono
}

// Now returns the wall-clock time.
func (c *Clock) Now() time.Time {
	wall, _ := c.Read()
	return wall
}

// Advance lets d pass: both clocks move by d. It panics on a negative d,
// which no real clock's time does.
func (c *Clock) Advance(d time.Duration) {
	if d < 0 {
		panic("fakeclock: Advance with a negative duration; use StepWall")
	}
	c.mu.Lock()
	c.wall, c.mono = c.wall.Add(d), c.mono+d
	c.mu.Unlock()
}

// StepWall moves the wall clock alone by d, backwards when d is negative.
func (c *Clock) StepWall(d time.Duration) {
	c.mu.Lock()
	c.wall = c.wall.Add(d)
	c.mu.Unlock()
}

package apitoken

import (
	"context"
	"sync"
	"time"
)

// Decision is a Limiter's answer for one request.
type Decision struct {
	// Allowed reports whether the request may proceed.
	Allowed bool
	// Limit is the number of requests allowed per window.
	Limit int
	// Remaining is how many more requests the window allows now.
	Remaining int
	// Current is the number of requests in the window counting this one:
	// for a refused request Limit+1 (the spec's "current": 501 for a limit
	// of 500).
	Current int
	// Reset is when the window next frees a slot: the oldest counted
	// request's time plus the window. For a refused request it is when a
	// request will next be allowed: the same time, unless the limit was
	// lowered below the number of requests already counted, when more than
	// one of them must leave the window first. It is a wall-clock time, for
	// the X-RateLimit-Reset header.
	Reset time.Time
	// RetryAfter is how long a refused request should wait (0 if allowed).
	RetryAfter time.Duration
}

// Limiter decides whether a request under key may proceed when key is
// allowed limit requests per window. Implementations must be safe for
// concurrent use. A limit of 0 or less means unlimited: the Middleware never
// calls a Limiter for it.
type Limiter interface {
	// Allow decides on a request and counts it when it is allowed (only
	// allowed requests count against the limit). An error means no
	// decision could be made (the middleware then answers 503, or whatever
	// the Limiter's own failure policy decides before returning).
	Allow(ctx context.Context, key string, limit int) (Decision, error)
	// Peek reports the decision Allow would make, without counting. The
	// middleware uses it for the X-RateLimit-* headers of requests refused
	// before the limit is asked (403, expired token); on an error it sends
	// none.
	Peek(ctx context.Context, key string, limit int) (Decision, error)
}

// defaultWindow is the rate-limit window: the spec's limits are per minute.
const defaultWindow = time.Minute

// MemoryLimiter is the in-process Limiter: an exact sliding-window log.
//
// It keeps the times of the allowed requests of the last window per key and
// allows a request when fewer than limit of them are younger than the
// window. So no window of that length, wherever it starts, ever holds more
// than limit allowed requests: there is no double burst at a window
// boundary (a fixed window allows 2×limit across one) and no 2×limit burst
// after an idle period (a token bucket refilled at limit/window allows
// that). The times are monotonic Clock readings, so a step of the wall clock
// neither locks a key out nor gives it quota. Memory per key is 8 bytes per
// request allowed in the last window (at most limit); keys idle for a whole
// window are evicted as the limiter is used, so memory stays bounded by
// recent traffic, not by the number of tokens.
//
// The zero value is not usable; call NewMemoryLimiter.
type MemoryLimiter struct {
	window time.Duration
	clock  Clock
	shards [limiterShards]limiterShard
}

// limiterShards splits the keys so that the sweep of idle keys, which holds
// a shard's lock, stops a sixteenth of the requests at a time.
const limiterShards = 16

type limiterShard struct {
	mu        sync.Mutex
	logs      map[string]*slidingLog
	lastSweep time.Duration
}

// NewMemoryLimiter returns an in-process sliding-window limiter. A window of
// 0 means one minute, the spec's; a nil clock means the system clock. It
// panics on a negative window.
func NewMemoryLimiter(window time.Duration, clock Clock) *MemoryLimiter {
	switch {
	case window < 0:
		panic("apitoken: NewMemoryLimiter: negative window")
	case window == 0:
		window = defaultWindow
	}
	if clock == nil {
		clock = newSystemClock()
	}
	l := &MemoryLimiter{window: window, clock: clock}
	for i := range l.shards {
		l.shards[i].logs = make(map[string]*slidingLog)
	}
	return l
}

var _ Limiter = (*MemoryLimiter)(nil)

// Allow implements Limiter. It never returns an error.
func (l *MemoryLimiter) Allow(_ context.Context, key string, limit int) (Decision, error) {
	return l.decide(key, limit, true), nil
}

// Peek implements Limiter: the decision Allow would make, without counting.
func (l *MemoryLimiter) Peek(_ context.Context, key string, limit int) (Decision, error) {
	return l.decide(key, limit, false), nil
}

// Reset forgets key's requests.
func (l *MemoryLimiter) Reset(key string) {
	sh := l.shard(key)
	sh.mu.Lock()
	delete(sh.logs, key)
	sh.mu.Unlock()
}

// decide judges a request under key now, counting it when count is set and
// it is allowed.
func (l *MemoryLimiter) decide(key string, limit int, count bool) Decision {
	if limit <= 0 {
		return Decision{Allowed: true, Limit: limit, Remaining: -1}
	}
	sh := l.shard(key)
	sh.mu.Lock()
	// Read under the lock, the readings of one key are in order.
	wall, now := l.clock.Read()
	l.sweepIfDue(sh, now)
	w := sh.logs[key]
	if w == nil {
		w = &slidingLog{}
		if count {
			sh.logs[key] = w
		}
	}
	w.expire(now - l.window)
	d := Decision{Limit: limit}
	var reset time.Duration
	if w.n < limit {
		if count {
			w.push(now, limit)
		}
		d.Allowed, d.Current, d.Remaining = true, w.n, limit-w.n
		reset = w.oldest(now) + l.window
	} else {
		// Allowed again once w.n-limit+1 requests have left the window
		// (one unless the limit was lowered): when the newest of those
		// leaves.
		d.Current = limit + 1
		reset = w.at(w.n-limit) + l.window
		d.RetryAfter = reset - now
	}
	sh.mu.Unlock()
	d.Reset = wall.Add(reset - now)
	return d
}

func (l *MemoryLimiter) shard(key string) *limiterShard {
	// FNV-1a
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return &l.shards[h%limiterShards]
}

// sweepIfDue deletes, once a window, the logs of keys idle for a whole
// window; the caller holds sh.mu.
func (l *MemoryLimiter) sweepIfDue(sh *limiterShard, now time.Duration) {
	if now-sh.lastSweep <= l.window {
		return
	}
	sh.lastSweep = now
	for k, w := range sh.logs {
		if w.n == 0 || w.newest() <= now-l.window {
			delete(sh.logs, k)
		}
	}
}

// slidingLog is a ring of the allowed requests' monotonic readings, oldest
// first.
type slidingLog struct {
	ts   []time.Duration
	head int
	n    int
}

// expire forgets the requests at or before cutoff.
func (w *slidingLog) expire(cutoff time.Duration) {
	for w.n > 0 && w.ts[w.head] <= cutoff {
		w.head = (w.head + 1) % len(w.ts)
		w.n--
	}
}

// oldest returns the oldest logged time, or now when the log is empty.
func (w *slidingLog) oldest(now time.Duration) time.Duration {
	if w.n == 0 {
		return now
	}
	return w.at(0)
}

// at returns the i-th oldest logged time, 0 <= i < w.n.
func (w *slidingLog) at(i int) time.Duration { return w.ts[(w.head+i)%len(w.ts)] }

func (w *slidingLog) newest() time.Duration { return w.at(w.n - 1) }

// push logs t, growing the ring (to at most limit entries) when it is full.
func (w *slidingLog) push(t time.Duration, limit int) {
	if w.n == len(w.ts) {
		size := min(max(2*len(w.ts), 8), limit)
		ts := make([]time.Duration, max(size, w.n+1))
		for i := range w.n {
			ts[i] = w.at(i)
		}
		w.ts, w.head = ts, 0
	}
	w.ts[(w.head+w.n)%len(w.ts)] = t
	w.n++
}

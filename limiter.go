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
	// one of them must leave the window first.
	Reset time.Time
	// RetryAfter is how long a refused request should wait: Reset minus the
	// time of the request (0 if allowed).
	RetryAfter time.Duration
}

// Limiter decides whether a request under key may proceed when key is
// allowed limit requests per window. Implementations must be safe for
// concurrent use. A limit of 0 or less means unlimited: the Manager and the
// Middleware never call a Limiter for it. Only allowed requests count
// against the limit. An error means no decision could be made (the
// middleware then answers 503, or whatever the Limiter's own failure policy
// decides before returning).
type Limiter interface {
	Allow(ctx context.Context, key string, limit int) (Decision, error)
}

// Peeker is implemented by limiters that can report a key's state without
// counting a request. The middleware uses it to send X-RateLimit-* headers on
// refused requests (403, expired token) without consuming quota.
type Peeker interface {
	Peek(ctx context.Context, key string, limit int) (Decision, error)
}

// DefaultWindow is the rate-limit window: the spec's limits are per minute.
const DefaultWindow = time.Minute

// MemoryLimiter is the in-process Limiter: an exact sliding-window log.
//
// It keeps the times of the allowed requests of the last window per key and
// allows a request when fewer than limit of them are younger than the
// window. So no window of that length, wherever it starts, ever holds more
// than limit allowed requests: there is no double burst at a window
// boundary (a fixed window allows 2×limit across one) and no 2×limit burst
// after an idle period (a token bucket refilled at limit/window allows
// that). Memory per key is 8 bytes per request allowed in the last window
// (at most limit); keys idle for a whole window are evicted as the limiter
// is used, so memory stays bounded by recent traffic, not by the number of
// tokens.
//
// The zero value is not usable; call NewMemoryLimiter.
type MemoryLimiter struct {
	window      time.Duration
	now         func() time.Time
	customClock bool // WithLimiterClock was given
	shards      [limiterShards]limiterShard
}

const limiterShards = 64

type limiterShard struct {
	mu        sync.Mutex
	keys      map[string]*slidingLog
	lastSweep int64
	_         [40]byte // pad to 64 bytes: keep shards on separate cache lines
}

// slidingLog is a ring of the allowed requests' times (Unix nanoseconds).
type slidingLog struct {
	ts   []int64
	head int
	n    int

	// For the middleware, which keeps the log of a token's key in the
	// token's cache entry and passes it back (decideHinted): the limiter
	// and shard it belongs to, set once, and whether it has left the
	// shard's map (sweep, Reset), after which it must not be used.
	owner *MemoryLimiter
	shard uint32
	gone  bool
}

// LimiterOption configures a MemoryLimiter.
type LimiterOption func(*MemoryLimiter)

// WithWindow sets the window the limit applies to (default DefaultWindow, one
// minute).
func WithWindow(d time.Duration) LimiterOption {
	return func(l *MemoryLimiter) {
		if d > 0 {
			l.window = d
		}
	}
}

// WithLimiterClock sets the clock (default time.Now).
func WithLimiterClock(now func() time.Time) LimiterOption {
	return func(l *MemoryLimiter) {
		if now != nil {
			l.now, l.customClock = now, true
		}
	}
}

// NewMemoryLimiter returns an in-process sliding-window limiter.
func NewMemoryLimiter(opts ...LimiterOption) *MemoryLimiter {
	l := &MemoryLimiter{window: DefaultWindow, now: time.Now}
	for _, o := range opts {
		o(l)
	}
	for i := range l.shards {
		l.shards[i].keys = make(map[string]*slidingLog)
	}
	return l
}

var _ Limiter = (*MemoryLimiter)(nil)
var _ Peeker = (*MemoryLimiter)(nil)

// Allow implements Limiter. It never returns an error.
func (l *MemoryLimiter) Allow(_ context.Context, key string, limit int) (Decision, error) {
	return l.AllowAt(l.now(), key, limit), nil
}

// Peek implements Peeker: the decision Allow would make, without counting.
func (l *MemoryLimiter) Peek(_ context.Context, key string, limit int) (Decision, error) {
	return l.decide(l.now(), key, limit, false), nil
}

// AllowAt is Allow at the given time. Times should not go backwards for a
// key; if one does (callers read the clock before taking the limiter's lock,
// so under contention it happens by a few nanoseconds), the request is
// judged and counted as if it came at the key's latest counted request.
func (l *MemoryLimiter) AllowAt(now time.Time, key string, limit int) Decision {
	return l.decide(now, key, limit, true)
}

func (l *MemoryLimiter) decide(t time.Time, key string, limit int, count bool) Decision {
	if limit <= 0 {
		return Decision{Allowed: true, Limit: limit, Remaining: -1}
	}
	now := t.UnixNano()
	current, reset, allowed := l.decideAt(now, key, limit, count)
	d := Decision{Allowed: allowed, Limit: limit, Current: current, Reset: time.Unix(0, reset)}
	if allowed {
		d.Remaining = limit - current
	} else {
		d.RetryAfter = time.Duration(reset - now)
	}
	return d
}

// refusal is the Decision for a request at now (Unix nanoseconds) that
// decideAt refused.
func refusal(limit int, now int64, current int, reset int64) Decision {
	return Decision{Limit: limit, Current: current, Reset: time.Unix(0, reset), RetryAfter: time.Duration(reset - now)}
}

// decideAt is decide for a limit above 0 at now (Unix nanoseconds), with
// its results in registers rather than a Decision: the number of requests
// in the window counting this one (limit+1 if refused), when the window
// next frees a slot (or, if refused, when a request will next be allowed)
// and whether the request is allowed.
func (l *MemoryLimiter) decideAt(now int64, key string, limit int, count bool) (current int, reset int64, allowed bool) {
	if count {
		current, reset, allowed, _ = l.decideHinted(now, key, limit, nil)
		return current, reset, allowed
	}
	sh := &l.shards[shardOf(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	l.sweepIfDue(sh, now)
	w := sh.keys[key]
	if w == nil {
		return 0, now + int64(l.window), true
	}
	return l.decideLog(w, now, limit, false)
}

// decideHinted is decideAt counting the request, for a caller that keeps
// the key's log between requests: hint is the log this call returned last
// time for key (nil the first time, or for a caller that keeps none). A valid hint saves hashing the key and
// the map lookup, which with many keys are trips to memory; a hint of
// another limiter, or of a log swept or Reset since, is ignored.
func (l *MemoryLimiter) decideHinted(now int64, key string, limit int, hint *slidingLog) (current int, reset int64, allowed bool, w *slidingLog) {
	var i uint32
	if hint != nil && hint.owner == l { // owner and shard never change
		i = hint.shard
	} else {
		hint, i = nil, shardOf(key)
	}
	sh := &l.shards[i]
	sh.mu.Lock()
	l.sweepIfDue(sh, now)
	if w = hint; w == nil || w.gone {
		if w = sh.keys[key]; w == nil {
			w = l.newLog(sh, i, key)
		}
	}
	current, reset, allowed = l.decideLog(w, now, limit, true)
	sh.mu.Unlock()
	return current, reset, allowed, w
}

// sweepIfDue sweeps sh once a window; the caller holds sh.mu.
func (l *MemoryLimiter) sweepIfDue(sh *limiterShard, now int64) {
	if win := int64(l.window); now-sh.lastSweep > win {
		sh.sweep(now - win)
		sh.lastSweep = now
	}
}

// newLog adds key's log to shard i; the caller holds its lock.
func (l *MemoryLimiter) newLog(sh *limiterShard, i uint32, key string) *slidingLog {
	w := &slidingLog{owner: l, shard: i}
	sh.keys[key] = w
	return w
}

// decideLog decides on w at now; the caller holds the lock of w's shard.
func (l *MemoryLimiter) decideLog(w *slidingLog, now int64, limit int, count bool) (current int, reset int64, allowed bool) {
	win := int64(l.window)
	// Keep the log in time order (expire and sweep rely on it): a time
	// earlier than the newest logged one is taken as that time.
	if w.n > 0 {
		now = max(now, w.newest())
	}
	w.expire(now - win)
	if w.n < limit {
		if count {
			w.push(now, limit)
		}
		return w.n, w.oldest(now) + win, true
	}
	// Allowed again once w.n-limit+1 requests have left the window (one
	// unless the limit was lowered): when the newest of those leaves.
	return limit + 1, w.at(w.n-limit) + win, false
}

// Len returns the number of keys currently tracked.
func (l *MemoryLimiter) Len() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.keys)
		sh.mu.Unlock()
	}
	return n
}

// Reset forgets key's requests.
func (l *MemoryLimiter) Reset(key string) {
	sh := &l.shards[shardOf(key)]
	sh.mu.Lock()
	if w := sh.keys[key]; w != nil {
		w.gone = true
		delete(sh.keys, key)
	}
	sh.mu.Unlock()
}

// sweep deletes keys whose newest request is at or before cutoff.
func (sh *limiterShard) sweep(cutoff int64) {
	for k, w := range sh.keys {
		if w.n == 0 || w.newest() <= cutoff {
			w.gone = true
			delete(sh.keys, k)
		}
	}
}

func (w *slidingLog) expire(cutoff int64) {
	for w.n > 0 && w.ts[w.head] <= cutoff {
		w.head++
		if w.head == len(w.ts) {
			w.head = 0
		}
		w.n--
	}
}

func (w *slidingLog) oldest(now int64) int64 {
	if w.n == 0 {
		return now
	}
	return w.ts[w.head]
}

// at returns the i-th oldest logged time, 0 <= i < w.n.
func (w *slidingLog) at(i int) int64 {
	i += w.head
	if i >= len(w.ts) {
		i -= len(w.ts)
	}
	return w.ts[i]
}

func (w *slidingLog) newest() int64 {
	i := w.head + w.n - 1
	if i >= len(w.ts) {
		i -= len(w.ts)
	}
	return w.ts[i]
}

func (w *slidingLog) push(t int64, limit int) {
	if w.n == len(w.ts) {
		size := 2 * len(w.ts)
		if size < 8 {
			size = 8
		}
		if size > limit {
			size = limit
		}
		if size < w.n+1 {
			size = w.n + 1
		}
		ts := make([]int64, size)
		for i := 0; i < w.n; i++ {
			j := w.head + i
			if j >= len(w.ts) {
				j -= len(w.ts)
			}
			ts[i] = w.ts[j]
		}
		w.ts, w.head = ts, 0
	}
	i := w.head + w.n
	if i >= len(w.ts) {
		i -= len(w.ts)
	}
	w.ts[i] = t
	w.n++
}

// shardOf hashes key with FNV-1a.
func shardOf(key string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return h % limiterShards
}

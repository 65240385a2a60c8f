package apitokenredis

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/apitoken/apitoken"
)

// Defaults of the options.
const (
	// DefaultPrefix is the prefix of the limiter's Redis keys.
	DefaultPrefix = "apitoken:rl:"
	// DefaultTimeout is how long a decision may wait for Redis before the
	// failure policy decides instead.
	DefaultTimeout = 50 * time.Millisecond
	// DefaultProbeInterval is how often a degraded limiter checks whether
	// Redis is back.
	DefaultProbeInterval = 250 * time.Millisecond
)

// FailurePolicy is what a Limiter does when Redis fails or is slower than
// the timeout.
type FailurePolicy int

const (
	// FailOpen, the default, decides with an in-process
	// apitoken.MemoryLimiter that allows each key limit÷replicas requests
	// per window (at least 1; see WithReplicas), so the replicas together
	// stay near the limit while each counts only its own requests.
	FailOpen FailurePolicy = iota
	// FailClosed returns an error wrapping apitoken.ErrLimiterUnavailable:
	// apitoken.Middleware answers 503 with Retry-After: 1.
	FailClosed
)

// String returns "fail-open" or "fail-closed".
func (p FailurePolicy) String() string {
	if p == FailClosed {
		return "fail-closed"
	}
	return "fail-open"
}

// Option configures a Limiter.
type Option func(*config)

type config struct {
	prefix   string
	window   time.Duration
	timeout  time.Duration
	probe    time.Duration
	policy   FailurePolicy
	replicas int
	log      *slog.Logger
	clock    apitoken.Clock
	errs     []error // invalid option values; New panics with them
}

// invalid records that option was given an invalid value.
func (c *config) invalid(option, why string) {
	c.errs = append(c.errs, fmt.Errorf("apitoken: redis: %s: %s", option, why))
}

// WithPrefix sets the prefix of the Redis keys (default DefaultPrefix,
// "apitoken:rl:"). A key is the prefix followed by the limiter key in
// braces, "apitoken:rl:{42.1764806400123456}" (apitoken.Token.LimiterKey),
// so that in Redis Cluster the braces, not the prefix, choose the slot: the
// prefix must not contain '{'. Limiters that share a prefix share their
// counts, so give each window, and each environment sharing a Redis
// (staging, production), its own prefix.
func WithPrefix(prefix string) Option {
	return func(c *config) {
		if prefix == "" {
			c.invalid("WithPrefix", "empty prefix")
		}
		c.prefix = prefix
	}
}

// WithWindow sets the window the limit applies to (default
// one minute, the spec's). Redis measures time in microseconds,
// so the window is truncated to whole microseconds; windows under a
// millisecond are raised to one; d must be positive.
func WithWindow(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.invalid("WithWindow", "the window must be positive")
		}
		c.window = max(d.Truncate(time.Microsecond), time.Millisecond)
	}
}

// WithTimeout sets how long a decision may wait for Redis, including its
// time in the queue of the pipeline and go-redis's retries (default
// DefaultTimeout, 50 ms). A slower answer counts as a failure: the failure
// policy decides and the limiter turns degraded. The request's context
// bounds the wait too; d must be positive.
func WithTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.invalid("WithTimeout", "the timeout must be positive")
		}
		c.timeout = d
	}
}

// WithProbeInterval sets how often a degraded limiter checks whether Redis
// is back (default DefaultProbeInterval, 250 ms). A probe is sent, from its
// own goroutine, by the first request after the interval: while degraded no
// request waits for Redis; d must be positive.
func WithProbeInterval(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.invalid("WithProbeInterval", "the interval must be positive")
		}
		c.probe = d
	}
}

// WithFailurePolicy sets what happens when Redis fails or times out
// (default FailOpen).
func WithFailurePolicy(p FailurePolicy) Option {
	return func(c *config) {
		if p != FailOpen && p != FailClosed {
			c.invalid("WithFailurePolicy", "unknown policy")
		}
		c.policy = p
	}
}

// WithFailOpen is WithFailurePolicy(FailOpen), the default: decide with an
// in-process limiter at limit÷replicas while Redis is unavailable.
func WithFailOpen() Option { return WithFailurePolicy(FailOpen) }

// WithFailClosed is WithFailurePolicy(FailClosed): return an error wrapping
// apitoken.ErrLimiterUnavailable (503) while Redis is unavailable.
func WithFailClosed() Option { return WithFailurePolicy(FailClosed) }

// WithReplicas sets how many processes share the limit (default 1). While
// failing open each process allows limit÷n requests per key and window,
// rounded down but at least 1; n must be at least 1.
func WithReplicas(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.invalid("WithReplicas", "at least 1 replica")
		}
		c.replicas = n
	}
}

// WithLogger sets the logger of the switches to and from degraded mode, one
// line each (default slog.Default()). No line holds a key or a token.
func WithLogger(log *slog.Logger) Option {
	return func(c *config) {
		if log == nil {
			c.invalid("WithLogger", "nil logger")
		}
		c.log = log
	}
}

// WithClock sets the local clock (default apitoken.SystemClock()). Redis
// decisions never read it: they use Redis's clock. It drives the fail-open
// limiter, the local refusal cache and the probes, which measure durations
// on its monotonic reading, so a local wall clock that is hours off, or
// steps, changes no decision.
func WithClock(clock apitoken.Clock) Option {
	return func(c *config) {
		if clock == nil {
			c.invalid("WithClock", "nil clock")
		}
		c.clock = clock
	}
}

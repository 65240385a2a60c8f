package apitokenredis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apitoken/apitoken"
)

// Limiter is an apitoken.Limiter kept in Redis, so that
// several replicas of a service share each token's limit.
//
// It makes the same decisions as apitoken.MemoryLimiter, an exact sliding
// window: at most limit requests are allowed in any window of the
// configured length, wherever it starts, and a refused request is not
// counted. (Only should Redis's clock step back do they differ: a request
// is then judged at its own time, with the requests stamped later still
// counted, where MemoryLimiter takes it as coming with the key's newest
// request; so a step back can delay allowed requests, never add any.) Each
// decision is one round trip: a Lua script (EVALSHA, EVAL when
// Redis does not have it yet) that runs atomically in Redis and reads
// Redis's clock, so the replicas' clocks never take part and concurrent
// requests are counted exactly. Decisions made at the same time are sent
// together in one pipeline. A key is a sorted set of the times of the
// requests allowed in the last window: Redis memory per key is about 40
// bytes per such request up to 128 of them (a listpack), about 110 bytes
// per request beyond, and a key expires by itself one window after its last
// allowed request.
//
// A refusal is remembered locally until its Reset: further requests for the
// key with the same limit are refused without a round trip (every replica
// would be refused until then, since refused requests do not count).
//
// When Redis fails or does not answer within the timeout, the limiter
// becomes degraded: it logs one warning, and until Redis answers again the
// failure policy decides without waiting for Redis: FailOpen (the default)
// with an in-process apitoken.MemoryLimiter at limit÷replicas, FailClosed
// with an error wrapping apitoken.ErrLimiterUnavailable. While degraded, a
// probe is sent at most every probe interval (250 ms) from its own
// goroutine, by the first request after the interval; when a probe
// succeeds the limiter logs one line and Redis decides again. Stats reports
// the state and counters. The state is one for the whole limiter, also
// with Redis Cluster.
//
// A Limiter is safe for concurrent use. The zero value is not usable; call
// New.
type Limiter struct {
	client   redis.UniversalClient
	cfg      config
	batch    *batcher
	fallback *apitoken.MemoryLimiter
	refused  refusals

	degraded   atomic.Bool
	probing    atomic.Bool
	nextProbe  atomic.Int64 // monotonic Clock readings
	degradedAt atomic.Int64

	decisions     atomic.Uint64
	localRefusals atomic.Uint64
	failures      atomic.Uint64
	degradations  atomic.Uint64
	recoveries    atomic.Uint64
	fallbacks     atomic.Uint64
	unavailable   atomic.Uint64
}

var (
	_ apitoken.Limiter = (*Limiter)(nil)
)

// errDegraded is the cause of errors returned, with FailClosed, while
// degraded.
var errDegraded = errors.New("degraded after a failure; waiting for a probe to succeed")

// New returns a Limiter that keeps its counts in Redis through client: a
// *redis.Client, a *redis.ClusterClient, a Sentinel failover client or a
// *redis.Ring. The limiter does not close client. It starts goroutines as
// it is used (to send decisions in pipelines, and to probe Redis while
// degraded) that end by themselves when it is idle.
//
// Build the client with ContextTimeoutEnabled: true. Then go-redis itself
// stops at the limiter's timeout, so a decision made while no other is in
// flight is sent by the calling goroutine, saving a goroutine switch each
// way, and a connection to a Redis that stopped answering is freed at the
// timeout rather than at the client's ReadTimeout. Without it a worker
// goroutine sends every decision, and the caller stops waiting at the
// timeout. Either way no decision waits longer than the timeout.
//
// New panics when client is nil or an option's value is invalid, naming
// the option.
func New(client redis.UniversalClient, opts ...Option) *Limiter {
	cfg := config{
		prefix:   DefaultPrefix,
		window:   time.Minute, // the spec's
		timeout:  DefaultTimeout,
		probe:    DefaultProbeInterval,
		replicas: 1,
		log:      slog.Default(),
		clock:    apitoken.SystemClock(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		panic(err.Error())
	}
	if client == nil {
		panic("apitoken: redis: New needs a client")
	}
	l := &Limiter{
		client:   client,
		cfg:      cfg,
		batch:    newBatcher(client, cfg.window.Microseconds(), cfg.timeout),
		fallback: apitoken.NewMemoryLimiter(cfg.window, cfg.clock),
	}
	l.refused.init()
	return l
}

// Allow implements apitoken.Limiter: it decides whether a request under key
// may proceed when key is allowed limit requests per window, and counts it
// if so. A limit of 0 or less allows without a round trip (Remaining -1).
//
// When Redis decides, Reset and RetryAfter are on Redis's clock. While the
// limiter is degraded, FailOpen decides with the in-process limiter (the
// Decision's Limit is then limit÷replicas) and FailClosed returns an error
// wrapping apitoken.ErrLimiterUnavailable. An error wrapping
// apitoken.ErrLimiterUnavailable and ctx's error is also returned when ctx
// ends before Redis answers; that does not make the limiter degraded.
func (l *Limiter) Allow(ctx context.Context, key string, limit int) (apitoken.Decision, error) {
	return l.decide(ctx, key, limit, true)
}

// Peek implements apitoken.Limiter: the decision Allow would make now,
// without counting a request. It never creates a key; errors and the
// failure policy are as for Allow.
func (l *Limiter) Peek(ctx context.Context, key string, limit int) (apitoken.Decision, error) {
	return l.decide(ctx, key, limit, false)
}

// Reset forgets key's requests: in Redis, in the local refusal cache and in
// the fail-open limiter. Other replicas may go on refusing key from their
// refusal caches until the Reset they were told.
func (l *Limiter) Reset(ctx context.Context, key string) error {
	l.refused.forget(key)
	l.fallback.Reset(key)
	ctx, cancel := context.WithTimeout(ctx, l.cfg.timeout)
	defer cancel()
	if err := l.client.Del(ctx, l.redisKey(key)).Err(); err != nil {
		return fmt.Errorf("%w: redis: %w", apitoken.ErrLimiterUnavailable, err)
	}
	return nil
}

// Stats is a snapshot of a Limiter's state and counters (since New).
type Stats struct {
	// Degraded reports whether Redis is considered unavailable: the failure
	// policy decides until a probe succeeds.
	Degraded bool
	// Decisions counts decisions made by Redis.
	Decisions uint64
	// LocalRefusals counts requests refused from the local refusal cache,
	// without a round trip.
	LocalRefusals uint64
	// Failures counts calls to Redis, probes included, that failed or took
	// longer than the timeout.
	Failures uint64
	// Degradations counts switches to degraded.
	Degradations uint64
	// Recoveries counts switches back from degraded.
	Recoveries uint64
	// FallbackDecisions counts decisions made by the in-process limiter
	// (FailOpen).
	FallbackDecisions uint64
	// Unavailable counts errors returned: by FailClosed, or because the
	// request's context ended before Redis answered.
	Unavailable uint64
}

// Stats returns the limiter's state and counters.
func (l *Limiter) Stats() Stats {
	return Stats{
		Degraded:          l.degraded.Load(),
		Decisions:         l.decisions.Load(),
		LocalRefusals:     l.localRefusals.Load(),
		Failures:          l.failures.Load(),
		Degradations:      l.degradations.Load(),
		Recoveries:        l.recoveries.Load(),
		FallbackDecisions: l.fallbacks.Load(),
		Unavailable:       l.unavailable.Load(),
	}
}

func (l *Limiter) redisKey(key string) string {
	return l.cfg.prefix + "{" + key + "}"
}

func (l *Limiter) mono() int64 {
	_, mono := l.cfg.clock.Read()
	return int64(mono)
}

func (l *Limiter) decide(ctx context.Context, key string, limit int, count bool) (apitoken.Decision, error) {
	if limit <= 0 {
		return apitoken.Decision{Allowed: true, Limit: limit, Remaining: -1}, nil
	}
	_, sent := l.cfg.clock.Read()
	if d, ok := l.refused.lookup(key, limit, sent); ok {
		l.localRefusals.Add(1)
		return d, nil
	}
	if l.degraded.Load() {
		l.maybeProbe(key, limit)
		return l.degradedDecision(key, limit, count, errDegraded)
	}
	d, err := l.eval(ctx, key, limit, count)
	if err != nil {
		if ctx.Err() != nil {
			// The caller gave up (or its deadline was shorter than ours):
			// no sign that Redis is unavailable.
			l.unavailable.Add(1)
			return apitoken.Decision{}, fmt.Errorf("%w: %w", apitoken.ErrLimiterUnavailable, context.Cause(ctx))
		}
		l.fail(err)
		return l.degradedDecision(key, limit, count, err)
	}
	l.decisions.Add(1)
	if d.Allowed {
		l.refused.forget(key)
	} else {
		l.refused.store(key, d, sent)
	}
	return d, nil
}

// degradedDecision applies the failure policy.
func (l *Limiter) degradedDecision(key string, limit int, count bool, cause error) (apitoken.Decision, error) {
	if l.cfg.policy == FailClosed {
		l.unavailable.Add(1)
		return apitoken.Decision{}, fmt.Errorf("%w: redis: %w", apitoken.ErrLimiterUnavailable, cause)
	}
	l.fallbacks.Add(1)
	local := max(1, limit/l.cfg.replicas)
	if count {
		return l.fallback.Allow(context.Background(), key, local)
	}
	return l.fallback.Peek(context.Background(), key, local)
}

// fail records a failed call and turns the limiter degraded, logging the
// switch once.
func (l *Limiter) fail(err error) {
	l.failures.Add(1)
	if !l.degraded.CompareAndSwap(false, true) {
		return
	}
	l.degradations.Add(1)
	now := l.mono()
	l.degradedAt.Store(now)
	l.nextProbe.Store(now + int64(l.cfg.probe))
	msg := "apitoken: redis rate limiter degraded: deciding in-process at limit÷replicas until Redis answers again"
	if l.cfg.policy == FailClosed {
		msg = "apitoken: redis rate limiter degraded: answering 503 until Redis answers again"
	}
	l.cfg.log.Warn(msg,
		"error", err.Error(),
		"policy", l.cfg.policy.String(),
		"timeout", l.cfg.timeout,
		"probe_interval", l.cfg.probe)
}

// maybeProbe starts a probe of Redis unless one is running or the last one
// was less than the probe interval ago.
func (l *Limiter) maybeProbe(key string, limit int) {
	if l.mono() < l.nextProbe.Load() || !l.probing.CompareAndSwap(false, true) {
		return
	}
	go l.probe(key, limit)
}

// probe peeks at key in Redis; success ends the degraded state.
func (l *Limiter) probe(key string, limit int) {
	defer l.probing.Store(false)
	if _, err := l.eval(context.Background(), key, limit, false); err != nil {
		l.failures.Add(1)
		l.nextProbe.Store(l.mono() + int64(l.cfg.probe))
		return
	}
	if !l.degraded.CompareAndSwap(true, false) {
		return
	}
	l.recoveries.Add(1)
	l.cfg.log.Info("apitoken: redis rate limiter recovered: Redis decides again",
		"degraded_for", time.Duration(l.mono()-l.degradedAt.Load()).Round(time.Millisecond),
		"fallback_decisions", l.fallbacks.Load(),
		"unavailable", l.unavailable.Load())
}

// eval asks Redis for key's decision, waiting at most the timeout.
func (l *Limiter) eval(ctx context.Context, key string, limit int, count bool) (apitoken.Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.timeout)
	defer cancel()
	c := &call{key: l.redisKey(key), limit: limit, mode: modePeek, done: make(chan struct{})}
	if count {
		c.mode = modeAllow
	}
	if l.batch.direct(ctx, c) {
		// Sent and answered: the client stopped at ctx's deadline.
	} else if !l.batch.submit(ctx, c) {
		return apitoken.Decision{}, l.timeoutError(ctx)
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		// Unless a worker has sent it already, the call is dropped. If it
		// has, an Allow may still be counted in Redis: the failure policy
		// decides this request all the same.
		if c.state.CompareAndSwap(callQueued, callAbandoned) {
			return apitoken.Decision{}, l.timeoutError(ctx)
		}
		select {
		case <-c.done:
		default:
			return apitoken.Decision{}, l.timeoutError(ctx)
		}
	}
	if c.err != nil {
		var ne net.Error
		if errors.Is(c.err, context.DeadlineExceeded) || errors.As(c.err, &ne) && ne.Timeout() {
			return apitoken.Decision{}, fmt.Errorf("no answer within %v: %w", l.cfg.timeout, c.err)
		}
		return apitoken.Decision{}, c.err
	}
	v := c.v
	if len(v) != 5 {
		return apitoken.Decision{}, fmt.Errorf("apitoken: redis limiter script returned %d values, want 5", len(v))
	}
	d := apitoken.Decision{
		Allowed:   v[0] == 1,
		Limit:     limit,
		Current:   int(v[1]),
		Remaining: int(v[2]),
		Reset:     time.UnixMicro(v[3]),
	}
	if !d.Allowed {
		d.RetryAfter = time.Duration(v[3]-v[4]) * time.Microsecond
	}
	return d, nil
}

func (l *Limiter) timeoutError(ctx context.Context) error {
	return fmt.Errorf("no answer within %v: %w", l.cfg.timeout, context.Cause(ctx))
}

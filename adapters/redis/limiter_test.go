package apitokenredis_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apitoken/apitoken"
	apitokenredis "github.com/apitoken/apitoken/adapters/redis"
	"github.com/apitoken/apitoken/store/memory"
)

// generous is the timeout of limiters that must not fail over while Redis
// is up, on a busy machine under -race.
const generous = 10 * time.Second

// within checks that got is in [lo, hi].
func within(t *testing.T, what string, got, lo, hi time.Time) {
	t.Helper()
	if got.Before(lo) || got.After(hi) {
		t.Errorf("%s = %v, want within [%v, %v]", what, got.UTC(), lo.UTC(), hi.UTC())
	}
}

func TestAllowDecisions(t *testing.T) {
	t.Parallel()
	c, prefix := testRedis(t)
	ctx := context.Background()
	const w = time.Minute
	l := apitokenredis.New(c, apitokenredis.WithPrefix(prefix), apitokenredis.WithTimeout(generous), apitokenredis.WithFailClosed())
	// times[i] bounds the Redis time of the i-th request.
	var lo, hi []time.Time
	allow := func(limit int) apitoken.Decision {
		t.Helper()
		lo = append(lo, redisTime(t, c))
		d, err := l.Allow(ctx, "k", limit)
		if err != nil {
			t.Fatal(err)
		}
		hi = append(hi, redisTime(t, c))
		return d
	}
	for i := 1; i <= 3; i++ {
		d := allow(3)
		if !d.Allowed || d.Limit != 3 || d.Current != i || d.Remaining != 3-i || d.RetryAfter != 0 {
			t.Fatalf("request %d: %+v, want allowed, current %d, remaining %d", i, d, i, 3-i)
		}
		within(t, fmt.Sprintf("request %d: Reset", i), d.Reset, lo[0].Add(w), hi[0].Add(w))
	}
	first := allow(3)
	t.Run("refused", func(t *testing.T) {
		d := first
		if d.Allowed || d.Limit != 3 || d.Current != 4 || d.Remaining != 0 {
			t.Fatalf("4th request: %+v, want refused, current 4, remaining 0", d)
		}
		within(t, "Reset", d.Reset, lo[0].Add(w), hi[0].Add(w))
		// RetryAfter is Reset minus the time of the request.
		within(t, "Reset-RetryAfter", d.Reset.Add(-d.RetryAfter), lo[3], hi[3])
		if d.RetryAfter <= 0 || d.RetryAfter > w {
			t.Errorf("RetryAfter = %v, want in (0, %v]", d.RetryAfter, w)
		}
	})
	t.Run("peek from another replica", func(t *testing.T) {
		l2 := apitokenredis.New(c, apitokenredis.WithPrefix(prefix), apitokenredis.WithTimeout(generous))
		d, err := l2.Peek(ctx, "k", 3)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed || d.Current != 4 || !d.Reset.Equal(first.Reset) {
			t.Errorf("Peek = %+v, want refused, current 4, reset %v", d, first.Reset)
		}
	})
	t.Run("limit lowered", func(t *testing.T) {
		// Three requests are counted; with a limit of 2 two of them must
		// leave the window: the second one's time plus the window.
		d := allow(2)
		if d.Allowed || d.Limit != 2 || d.Current != 3 {
			t.Fatalf("%+v, want refused, limit 2, current 3", d)
		}
		within(t, "Reset", d.Reset, lo[1].Add(w), hi[1].Add(w))
		if !d.Reset.After(first.Reset) {
			t.Errorf("Reset %v is not after the first request's %v", d.Reset, first.Reset)
		}
	})
	t.Run("limit raised", func(t *testing.T) {
		d := allow(5)
		if !d.Allowed || d.Limit != 5 || d.Current != 4 || d.Remaining != 1 {
			t.Fatalf("%+v, want allowed, current 4, remaining 1", d)
		}
		within(t, "Reset", d.Reset, lo[0].Add(w), hi[0].Add(w))
	})
}

// TestMatchesMemoryLimiter runs one random sequence of limits through both
// limiters (within one window, so times play no part) and compares the
// decisions.
func TestMatchesMemoryLimiter(t *testing.T) {
	t.Parallel()
	c, prefix := testRedis(t)
	ctx := context.Background()
	l := apitokenredis.New(c, apitokenredis.WithPrefix(prefix), apitokenredis.WithTimeout(generous), apitokenredis.WithFailClosed())
	mem := apitoken.NewMemoryLimiter(0, nil)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		key := fmt.Sprintf("k%d", r.IntN(3))
		limit := 1 + r.IntN(12)
		peek := r.IntN(5) == 0
		var got, want apitoken.Decision
		var err error
		if peek {
			got, err = l.Peek(ctx, key, limit)
			want, _ = mem.Peek(ctx, key, limit)
		} else {
			got, err = l.Allow(ctx, key, limit)
			want, _ = mem.Allow(ctx, key, limit)
		}
		if err != nil {
			t.Fatal(err)
		}
		if got.Allowed != want.Allowed || got.Limit != want.Limit || got.Current != want.Current || got.Remaining != want.Remaining || (got.RetryAfter > 0) != (want.RetryAfter > 0) {
			t.Fatalf("step %d (%s, limit %d, peek %v): redis %+v, memory %+v", i, key, limit, peek, got, want)
		}
	}
}

func TestPeek(t *testing.T) {
	t.Parallel()
	c, prefix := testRedis(t)
	ctx := context.Background()
	l := apitokenredis.New(c, apitokenredis.WithPrefix(prefix), apitokenredis.WithTimeout(generous), apitokenredis.WithFailClosed())
	for range 2 {
		if _, err := l.Allow(ctx, "used", 3); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name               string
		key                string
		limit              int
		allowed            bool
		current, remaining int
	}{
		{name: "unknown key", key: "new", limit: 3, allowed: true, current: 0, remaining: 3},
		{name: "two counted", key: "used", limit: 3, allowed: true, current: 2, remaining: 1},
		{name: "full for a lower limit", key: "used", limit: 2, allowed: false, current: 3, remaining: 0},
		{name: "unlimited", key: "used", limit: 0, allowed: true, current: 0, remaining: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 3 { // Peek counts nothing
				before := redisTime(t, c)
				d, err := l.Peek(ctx, tt.key, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				if d.Allowed != tt.allowed || d.Current != tt.current || d.Remaining != tt.remaining {
					t.Fatalf("Peek = %+v, want allowed %v, current %d, remaining %d", d, tt.allowed, tt.current, tt.remaining)
				}
				if tt.name == "unknown key" {
					within(t, "Reset", d.Reset, before.Add(time.Minute), redisTime(t, c).Add(time.Minute))
				}
			}
		})
	}
	if n, _ := c.Exists(ctx, prefix+"{new}").Result(); n != 0 {
		t.Error("Peek created a key")
	}
}

func TestUnlimitedMakesNoRoundTrip(t *testing.T) {
	t.Parallel()
	c, prefix := testRedis(t)
	hook := &commandCounter{}
	c.AddHook(hook)
	l := apitokenredis.New(c, apitokenredis.WithPrefix(prefix))
	for _, limit := range []int{0, -1} {
		d, err := l.Allow(context.Background(), "k", limit)
		if err != nil || !d.Allowed || d.Remaining != -1 {
			t.Errorf("Allow(limit %d) = %+v, %v; want allowed, remaining -1", limit, d, err)
		}
	}
	if n := hook.n.Load(); n != 0 {
		t.Errorf("%d commands sent, want 0", n)
	}
}

// TestConcurrentExact: 32 goroutines × 100 requests against a limit of
// 1000 allow exactly 1000, numbered 1 to 1000, also when two limiters
// (replicas) share the key.
func TestConcurrentExact(t *testing.T) {
	t.Parallel()
	for _, replicas := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d replicas", replicas), func(t *testing.T) {
			t.Parallel()
			c, prefix := testRedis(t)
			var ls []*apitokenredis.Limiter
			for range replicas {
				ls = append(ls, apitokenredis.New(c, apitokenredis.WithPrefix(prefix), apitokenredis.WithTimeout(generous), apitokenredis.WithFailClosed()))
			}
			const limit, goroutines, each = 1000, 32, 100
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				seen    = make(map[int]bool)
				refused atomic.Int64
				failed  atomic.Int64
			)
			for g := range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					l := ls[g%replicas]
					for range each {
						d, err := l.Allow(context.Background(), "hot", limit)
						switch {
						case err != nil:
							failed.Add(1)
						case d.Allowed:
							mu.Lock()
							if seen[d.Current] {
								t.Errorf("Current %d given twice", d.Current)
							}
							seen[d.Current] = true
							mu.Unlock()
						default:
							if d.Current != limit+1 || d.Remaining != 0 || d.RetryAfter <= 0 {
								t.Errorf("refusal %+v", d)
							}
							refused.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			if failed.Load() != 0 {
				t.Fatalf("%d errors", failed.Load())
			}
			if len(seen) != limit || refused.Load() != goroutines*each-limit {
				t.Fatalf("allowed %d, refused %d; want %d and %d", len(seen), refused.Load(), limit, goroutines*each-limit)
			}
			for i := 1; i <= limit; i++ {
				if !seen[i] {
					t.Fatalf("no request was number %d", i)
				}
			}
			if n, _ := c.ZCard(context.Background(), prefix+"{hot}").Result(); n != limit {
				t.Errorf("ZCARD = %d, want %d", n, limit)
			}
			var st apitokenredis.Stats
			for _, l := range ls {
				s := l.Stats()
				st.Decisions += s.Decisions
				st.LocalRefusals += s.LocalRefusals
				st.FallbackDecisions += s.FallbackDecisions
			}
			if st.Decisions+st.LocalRefusals != goroutines*each || st.FallbackDecisions != 0 {
				t.Errorf("stats %+v: want decisions+local refusals = %d", st, goroutines*each)
			}
			t.Logf("%d decided by Redis, %d refused locally", st.Decisions, st.LocalRefusals)
		})
	}
}

// TestSlidingWindow: a slot frees when the oldest request leaves the
// window, not at a fixed boundary.
func TestSlidingWindow(t *testing.T) {
	t.Parallel()
	c, prefix := testRedis(t)
	ctx := context.Background()
	const w = 300 * time.Millisecond
	l := apitokenredis.New(c, apitokenredis.WithPrefix(prefix), apitokenredis.WithWindow(w), apitokenredis.WithTimeout(generous), apitokenredis.WithFailClosed())
	for i := 1; i <= 2; i++ {
		if d, err := l.Allow(ctx, "k", 2); err != nil || !d.Allowed {
			t.Fatalf("request %d: %+v, %v", i, d, err)
		}
	}
	d, err := l.Allow(ctx, "k", 2)
	if err != nil || d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > w {
		t.Fatalf("3rd request: %+v, %v; want refused with RetryAfter in (0, %v]", d, err, w)
	}
	time.Sleep(d.RetryAfter + 10*time.Millisecond)
	d, err = l.Allow(ctx, "k", 2)
	if err != nil || !d.Allowed {
		t.Fatalf("after RetryAfter: %+v, %v; want allowed", d, err)
	}
}

func TestKeyExpiry(t *testing.T) {
	t.Parallel()
	c, prefix := testRedis(t)
	ctx := context.Background()
	const w = 200 * time.Millisecond
	l := apitokenredis.New(c, apitokenredis.WithPrefix(prefix), apitokenredis.WithWindow(w), apitokenredis.WithTimeout(generous), apitokenredis.WithFailClosed())
	if _, err := l.Allow(ctx, "k", 5); err != nil {
		t.Fatal(err)
	}
	key := prefix + "{k}"
	ttl, err := c.PTTL(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > w {
		t.Fatalf("PTTL = %v, want in (0, %v]", ttl, w)
	}
	if !eventually(5*time.Second, func() bool { return c.Exists(ctx, key).Val() == 0 }) {
		t.Fatalf("%s still exists long after the window", key)
	}
	d, err := l.Allow(ctx, "k", 5)
	if err != nil || !d.Allowed || d.Current != 1 {
		t.Fatalf("after expiry: %+v, %v; want allowed, current 1", d, err)
	}
}

// TestExpiryFollowsNewest: each allowed request moves the expiry to when it
// leaves the window.
func TestExpiryFollowsNewest(t *testing.T) {
	t.Parallel()
	c, prefix := testRedis(t)
	ctx := context.Background()
	const w = 2 * time.Second
	l := apitokenredis.New(c, apitokenredis.WithPrefix(prefix), apitokenredis.WithWindow(w), apitokenredis.WithTimeout(generous), apitokenredis.WithFailClosed())
	for i := range 2 {
		if i > 0 {
			time.Sleep(w / 2)
		}
		if _, err := l.Allow(ctx, "k", 5); err != nil {
			t.Fatal(err)
		}
	}
	// Unmoved, the expiry would be at most w/2 away.
	if ttl := c.PTTL(ctx, prefix+"{k}").Val(); ttl <= w/2 || ttl > w {
		t.Errorf("PTTL = %v after the second request, want in (%v, %v]", ttl, w/2, w)
	}
}

// TestSkewedLocalClock: replicas whose clocks are hours apart share one
// count and get the same Reset: Redis's clock decides.
func TestSkewedLocalClock(t *testing.T) {
	t.Parallel()
	c, prefix := testRedis(t)
	ctx := context.Background()
	const w = time.Minute
	var ls []*apitokenredis.Limiter
	for _, skew := range []time.Duration{-5 * time.Hour, 0, 7 * time.Hour} {
		ls = append(ls, apitokenredis.New(c,
			apitokenredis.WithPrefix(prefix), apitokenredis.WithTimeout(generous),
			apitokenredis.WithClock(skewedClock(func() time.Duration { return skew }))))
	}
	before := redisTime(t, c)
	allowed := 0
	var resets []time.Time
	for i := range 9 {
		d, err := ls[i%len(ls)].Allow(ctx, "k", 5)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			allowed++
		}
		resets = append(resets, d.Reset)
	}
	after := redisTime(t, c)
	if allowed != 5 {
		t.Errorf("allowed %d, want 5", allowed)
	}
	for i, r := range resets {
		within(t, fmt.Sprintf("request %d: Reset", i), r, before.Add(w), after.Add(w))
	}
	// The local refusals are right too: measured with the skewed clocks,
	// but only as durations.
	for i, l := range ls {
		d, err := l.Allow(ctx, "k", 5)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed || d.Current != 6 || d.RetryAfter <= 0 || d.RetryAfter > w {
			t.Errorf("limiter %d: %+v, want refused with RetryAfter in (0, %v]", i, d, w)
		}
		within(t, fmt.Sprintf("limiter %d: Reset", i), d.Reset, before.Add(w), after.Add(w))
	}
}

// TestLocalRefusal: a refused key is refused again without a round trip
// until its Reset, with the same decision.
func TestLocalRefusal(t *testing.T) {
	t.Parallel()
	c, prefix := testRedis(t)
	hook := &commandCounter{}
	c.AddHook(hook)
	ctx := context.Background()
	var skew atomic.Int64
	clock := skewedClock(func() time.Duration { return time.Duration(skew.Load()) })
	l := apitokenredis.New(c, apitokenredis.WithPrefix(prefix), apitokenredis.WithTimeout(generous),
		apitokenredis.WithFailClosed(), apitokenredis.WithClock(clock))
	for range 2 {
		if _, err := l.Allow(ctx, "k", 2); err != nil {
			t.Fatal(err)
		}
	}
	first, err := l.Allow(ctx, "k", 2)
	if err != nil || first.Allowed {
		t.Fatalf("3rd request: %+v, %v; want refused", first, err)
	}
	sent := hook.n.Load()
	prev := first.RetryAfter
	for i := range 10 {
		var d apitoken.Decision
		if i%2 == 0 {
			d, err = l.Allow(ctx, "k", 2)
		} else {
			d, err = l.Peek(ctx, "k", 2)
		}
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed || d.Limit != 2 || d.Current != 3 || d.Remaining != 0 || !d.Reset.Equal(first.Reset) {
			t.Fatalf("local refusal %d: %+v, want %+v", i, d, first)
		}
		if d.RetryAfter <= 0 || d.RetryAfter > prev {
			t.Fatalf("local refusal %d: RetryAfter %v, want in (0, %v]", i, d.RetryAfter, prev)
		}
		prev = d.RetryAfter
	}
	if n := hook.n.Load() - sent; n != 0 {
		t.Errorf("%d commands sent for refusals known locally, want 0", n)
	}
	if st := l.Stats(); st.LocalRefusals != 10 || st.Decisions != 3 {
		t.Errorf("stats %+v, want 10 local refusals, 3 decisions", st)
	}

	t.Run("another limit asks Redis", func(t *testing.T) {
		sent := hook.n.Load()
		d, err := l.Allow(ctx, "k", 3)
		if err != nil || !d.Allowed || d.Current != 3 {
			t.Fatalf("%+v, %v; want allowed, current 3", d, err)
		}
		if n := hook.n.Load() - sent; n != 1 {
			t.Errorf("%d commands, want 1", n)
		}
		if d, _ = l.Allow(ctx, "k", 3); d.Allowed {
			t.Fatal("4th request for limit 3 allowed")
		}
	})
	t.Run("until Reset only", func(t *testing.T) {
		skew.Store(int64(2 * time.Minute)) // the local deadline has passed
		sent := hook.n.Load()
		d, err := l.Allow(ctx, "k", 3)
		if err != nil || d.Allowed { // Redis's clock has not moved: still refused
			t.Fatalf("%+v, %v; want refused by Redis", d, err)
		}
		if n := hook.n.Load() - sent; n != 1 {
			t.Errorf("%d commands, want 1", n)
		}
	})
	t.Run("Reset forgets", func(t *testing.T) {
		if err := l.Reset(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		d, err := l.Allow(ctx, "k", 3)
		if err != nil || !d.Allowed || d.Current != 1 {
			t.Fatalf("%+v, %v; want allowed, current 1", d, err)
		}
	})
}

// TestScriptFlushed: after SCRIPT FLUSH (a restart or failover) EVALSHA
// answers NOSCRIPT and the script is sent again.
func TestScriptFlushed(t *testing.T) {
	t.Parallel()
	c, prefix := testRedis(t)
	ctx := context.Background()
	l := apitokenredis.New(c, apitokenredis.WithPrefix(prefix), apitokenredis.WithTimeout(generous), apitokenredis.WithFailClosed())
	if _, err := l.Allow(ctx, "k", 5); err != nil {
		t.Fatal(err)
	}
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	d, err := l.Allow(ctx, "k", 5)
	if err != nil || d.Current != 2 {
		t.Fatalf("after SCRIPT FLUSH: %+v, %v; want allowed, current 2", d, err)
	}
	// The same in a pipeline: concurrent decisions are sent together.
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if d, err := l.Allow(ctx, "p", 1000); err != nil || !d.Allowed {
					t.Errorf("after SCRIPT FLUSH, concurrently: %+v, %v", d, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := c.ZCard(ctx, prefix+"{p}").Val(); n != 160 {
		t.Errorf("ZCARD = %d, want 160", n)
	}
}

func TestFailOpenUnreachable(t *testing.T) {
	t.Parallel()
	log, logs := newLogger()
	c := newClient(t, "127.0.0.1:1")
	l := apitokenredis.New(c, apitokenredis.WithReplicas(4), apitokenredis.WithLogger(log))
	ctx := context.Background()
	tests := []struct {
		name     string
		key      string
		limit    int
		local    int // limit÷replicas, at least 1
		requests int
	}{
		{name: "limit 10 over 4 replicas", key: "secret-key-a", limit: 10, local: 2, requests: 5},
		{name: "at least 1", key: "secret-key-b", limit: 3, local: 1, requests: 3},
	}
	decisions := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			allowed := 0
			for range tt.requests {
				d, err := l.Allow(ctx, tt.key, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				if d.Limit != tt.local {
					t.Errorf("Limit %d, want %d", d.Limit, tt.local)
				}
				if d.Allowed {
					allowed++
				} else if d.Current != tt.local+1 || d.RetryAfter <= 0 {
					t.Errorf("refusal %+v", d)
				}
			}
			decisions += tt.requests
			if allowed != tt.local {
				t.Errorf("allowed %d, want %d", allowed, tt.local)
			}
		})
	}
	d, err := l.Peek(ctx, "secret-key-a", 10)
	if err != nil || d.Allowed {
		t.Errorf("Peek = %+v, %v; want the fallback's refusal", d, err)
	}
	decisions++
	st := l.Stats()
	if !st.Degraded || st.Degradations != 1 || st.Failures < 1 || st.FallbackDecisions != uint64(decisions) || st.Decisions != 0 {
		t.Errorf("stats %+v", st)
	}
	if n := logs.count("rate limiter degraded"); n != 1 {
		t.Errorf("%d lines about the switch, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "fail-open") || strings.Contains(logs.String(), "secret-key") {
		t.Errorf("log should name the policy and no key:\n%s", logs)
	}
}

func TestFailClosedUnreachable(t *testing.T) {
	t.Parallel()
	log, logs := newLogger()
	c := newClient(t, "127.0.0.1:1")
	l := apitokenredis.New(c, apitokenredis.WithFailClosed(), apitokenredis.WithLogger(log))
	ctx := context.Background()
	for i := range 20 {
		var err error
		if i%2 == 0 {
			_, err = l.Allow(ctx, "k", 10)
		} else {
			_, err = l.Peek(ctx, "k", 10)
		}
		if !errors.Is(err, apitoken.ErrLimiterUnavailable) {
			t.Fatalf("request %d: error %v, want ErrLimiterUnavailable", i, err)
		}
		if !strings.HasPrefix(err.Error(), "apitoken: ") {
			t.Errorf("error %q lacks the apitoken: prefix", err)
		}
	}
	st := l.Stats()
	if !st.Degraded || st.Degradations != 1 || st.Unavailable != 20 || st.FallbackDecisions != 0 {
		t.Errorf("stats %+v", st)
	}
	if n := logs.count("rate limiter degraded"); n != 1 || !strings.Contains(logs.String(), "503") {
		t.Errorf("%d lines about the switch, want 1 saying 503:\n%s", n, logs)
	}
}

// TestSlowRedis: a Redis that never answers costs one timeout, not one per
// request: the limiter turns degraded and sends nothing more until a probe
// is due.
func TestSlowRedis(t *testing.T) {
	t.Parallel()
	for _, ctxTimeouts := range []bool{false, true} {
		for _, policy := range []apitokenredis.FailurePolicy{apitokenredis.FailOpen, apitokenredis.FailClosed} {
			t.Run(fmt.Sprintf("ContextTimeoutEnabled=%v/%v", ctxTimeouts, policy), func(t *testing.T) {
				t.Parallel()
				hook := &commandCounter{}
				c := newClient(t, blackhole(t), func(o *redis.Options) { o.ContextTimeoutEnabled = ctxTimeouts })
				c.AddHook(hook)
				log, logs := newLogger()
				l := apitokenredis.New(c, apitokenredis.WithTimeout(100*time.Millisecond),
					apitokenredis.WithProbeInterval(time.Hour), apitokenredis.WithFailurePolicy(policy),
					apitokenredis.WithLogger(log))
				ctx := context.Background()
				start := time.Now()
				d, err := l.Allow(ctx, "k", 5)
				// Far below go-redis's 3 s ReadTimeout; generous for a busy machine.
				if el := time.Since(start); el > 2*time.Second {
					t.Errorf("first decision took %v with a 100 ms timeout", el)
				}
				if policy == apitokenredis.FailOpen && (err != nil || !d.Allowed) {
					t.Fatalf("fail-open: %+v, %v; want allowed", d, err)
				}
				if policy == apitokenredis.FailClosed && !errors.Is(err, apitoken.ErrLimiterUnavailable) {
					t.Fatalf("fail-closed: %v, want ErrLimiterUnavailable", err)
				}
				if err != nil && !strings.Contains(err.Error(), "no answer within 100ms") {
					t.Errorf("error %q does not tell the timeout", err)
				}
				sent := hook.n.Load()
				for range 50 {
					_, _ = l.Allow(ctx, "k", 5)
				}
				if n := hook.n.Load() - sent; n != 0 {
					t.Errorf("%d commands sent while degraded and no probe due, want 0", n)
				}
				if st := l.Stats(); !st.Degraded || st.Failures != 1 {
					t.Errorf("stats %+v, want degraded after 1 failure", st)
				}
				if n := logs.count("rate limiter degraded"); n != 1 || !strings.Contains(logs.String(), "no answer within") {
					t.Errorf("%d lines about the switch, want 1 with the timeout:\n%s", n, logs)
				}
			})
		}
	}
}

// TestRecovery breaks Redis (connections refused, then a Redis that never
// answers), and restores it: each switch is logged once and counted, and
// Redis decides again within a second of its return.
func TestRecovery(t *testing.T) {
	t.Parallel()
	c0, prefix := testRedis(t)
	p := newProxy(t, c0.Options().Addr)
	c := newClient(t, p.addr())
	log, logs := newLogger()
	l := apitokenredis.New(c, apitokenredis.WithPrefix(prefix), apitokenredis.WithLogger(log),
		apitokenredis.WithTimeout(500*time.Millisecond))
	ctx := context.Background()
	if d, err := l.Allow(ctx, "k", 1000); err != nil || d.Current != 1 || l.Stats().Decisions != 1 {
		t.Fatalf("healthy: %+v, %v, %+v", d, err, l.Stats())
	}
	counted := 1
	for cycle, mode := range []int32{proxyRefuse, proxyBlackhole} {
		p.set(mode)
		for range 100 {
			d, err := l.Allow(ctx, "k", 1000)
			if err != nil || !d.Allowed {
				t.Fatalf("cycle %d: %+v, %v; want allowed by the fallback", cycle, d, err)
			}
		}
		st := l.Stats()
		if !st.Degraded || st.Degradations != uint64(cycle+1) || st.FallbackDecisions < 100 {
			t.Fatalf("cycle %d: broken: stats %+v", cycle, st)
		}
		if n := logs.count("rate limiter degraded"); n != cycle+1 {
			t.Errorf("cycle %d: %d lines about degrading, want %d:\n%s", cycle, n, cycle+1, logs)
		}
		p.set(proxyUp)
		restored := time.Now()
		for l.Stats().Degraded {
			if time.Since(restored) > 5*time.Second {
				t.Fatalf("cycle %d: not recovered 5 s after Redis returned: %+v", cycle, l.Stats())
			}
			_, _ = l.Allow(ctx, "k", 1000)
			time.Sleep(5 * time.Millisecond)
		}
		took := time.Since(restored)
		t.Logf("cycle %d: recovered %v after Redis returned", cycle, took)
		if took > time.Second {
			t.Errorf("cycle %d: recovery took %v, want within 1 s", cycle, took)
		}
		st = l.Stats()
		if st.Recoveries != uint64(cycle+1) {
			t.Errorf("cycle %d: stats %+v", cycle, st)
		}
		if n := logs.count("rate limiter recovered"); n != cycle+1 {
			t.Errorf("cycle %d: %d lines about recovering, want %d:\n%s", cycle, n, cycle+1, logs)
		}
		d, err := l.Allow(ctx, "k", 1000)
		counted++
		if err != nil || d.Current != counted {
			// Only the requests Redis decided are counted in Redis.
			t.Fatalf("cycle %d: after recovery %+v, %v; want current %d", cycle, d, err, counted)
		}
	}
}

func TestCallerContextEnded(t *testing.T) {
	t.Parallel()
	c, prefix := testRedis(t, func(o *redis.Options) { o.ContextTimeoutEnabled = true })
	l := apitokenredis.New(c, apitokenredis.WithPrefix(prefix), apitokenredis.WithFailClosed())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := l.Allow(ctx, "k", 5)
	if !errors.Is(err, apitoken.ErrLimiterUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want ErrLimiterUnavailable and context.Canceled", err)
	}
	if st := l.Stats(); st.Degraded || st.Failures != 0 {
		t.Errorf("stats %+v: a caller giving up is no Redis failure", st)
	}
}

// TestMiddleware runs the limiter in apitoken.Middleware: X-RateLimit-*
// headers, 429 over the limit, 503 when Redis is down and the policy is
// FailClosed.
func TestMiddleware(t *testing.T) {
	t.Parallel()
	c, prefix := testRedis(t)
	ctx := context.Background()
	m, err := apitoken.NewManager(memory.New())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	limit := 2
	_, plaintext, err := m.Create(ctx, apitoken.CreateParams{Name: "redis test", RateLimit: &limit})
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	get := func(h http.Handler) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/x", nil)
		r.Header.Set("Authorization", "Bearer "+plaintext)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	l := apitokenredis.New(c, apitokenredis.WithPrefix(prefix), apitokenredis.WithTimeout(generous))
	h := apitoken.Middleware(m, apitoken.WithLimiter(l))(ok)
	tests := []struct {
		name       string
		code       int
		remaining  string
		retryAfter bool
	}{
		{name: "first", code: 200, remaining: "1"},
		{name: "second", code: 200, remaining: "0"},
		{name: "over the limit", code: 429, remaining: "0", retryAfter: true},
	}
	for _, tt := range tests {
		w := get(h)
		if w.Code != tt.code || w.Header().Get("X-RateLimit-Remaining") != tt.remaining ||
			w.Header().Get("X-RateLimit-Limit") != "2" || (w.Header().Get("Retry-After") != "") != tt.retryAfter {
			t.Errorf("%s: %d %v, want %d, remaining %s", tt.name, w.Code, w.Header(), tt.code, tt.remaining)
		}
	}
	down := apitokenredis.New(newClient(t, "127.0.0.1:1"), apitokenredis.WithFailClosed(),
		apitokenredis.WithLogger(discardLogger()))
	if w := get(apitoken.Middleware(m, apitoken.WithLimiter(down))(ok)); w.Code != http.StatusServiceUnavailable {
		t.Errorf("fail-closed with Redis down: %d, want 503", w.Code)
	}
}

// An invalid option value makes New panic, naming the option.
func TestNewPanicsNamingTheOption(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	tests := []struct {
		want string
		opt  apitokenredis.Option
	}{
		{"WithPrefix", apitokenredis.WithPrefix("")},
		{"WithWindow", apitokenredis.WithWindow(0)},
		{"WithTimeout", apitokenredis.WithTimeout(-time.Second)},
		{"WithProbeInterval", apitokenredis.WithProbeInterval(0)},
		{"WithFailurePolicy", apitokenredis.WithFailurePolicy(apitokenredis.FailurePolicy(7))},
		{"WithReplicas", apitokenredis.WithReplicas(0)},
		{"WithLogger", apitokenredis.WithLogger(nil)},
		{"WithClock", apitokenredis.WithClock(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			defer func() {
				if s, _ := recover().(string); !strings.Contains(s, tt.want) {
					t.Fatalf("panic %q, want one naming %s", s, tt.want)
				}
			}()
			apitokenredis.New(c, tt.opt)
		})
	}
}

package apitoken_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/internal/fakeclock"
)

var (
	_ apitoken.Limiter = (*apitoken.MemoryLimiter)(nil)
)

// limT0 is the limiter tests' epoch: the spec's example reset time minus a
// minute.
var limT0 = time.Date(2025, 1, 15, 10, 30, 0, 0, time.UTC)

// limiterAt drives a MemoryLimiter on a controlled clock that starts at
// limT0: AllowAt moves the clock forward to t, then asks Allow.
type limiterAt struct {
	*apitoken.MemoryLimiter
	clk *fakeclock.Clock
}

func newLimiterAt(window time.Duration) *limiterAt {
	clk := fakeclock.New(limT0)
	return &limiterAt{apitoken.NewMemoryLimiter(window, clk), clk}
}

func (l *limiterAt) AllowAt(t time.Time, key string, limit int) apitoken.Decision {
	setClock(l.clk, t)
	d, err := l.Allow(context.Background(), key, limit)
	if err != nil {
		panic(err)
	}
	return d
}

// setClock moves clk forward to t.
func setClock(clk *fakeclock.Clock, t time.Time) { clk.Advance(t.Sub(clk.Now())) }

// at is limT0 plus d.
func at(d time.Duration) time.Time { return limT0.Add(d) }

// wantDecision compares every field of a Decision.
func wantDecision(t *testing.T, got, want apitoken.Decision) {
	t.Helper()
	if !sameDecision(got, want) {
		t.Errorf("decision\n got  %+v\n want %+v", got, want)
	}
}

func sameDecision(a, b apitoken.Decision) bool {
	return a.Allowed == b.Allowed && a.Limit == b.Limit && a.Remaining == b.Remaining &&
		a.Current == b.Current && a.Reset.Equal(b.Reset) && a.RetryAfter == b.RetryAfter
}

func TestMemoryLimiterDecisionFields(t *testing.T) {
	// One key, limit 3 per minute, requests at the offsets below, in order.
	l := newLimiterAt(0)
	const key, limit = "tok-1", 3
	steps := []struct {
		name string
		at   time.Duration
		want apitoken.Decision
	}{
		{"first", 0, apitoken.Decision{Allowed: true, Limit: 3, Remaining: 2, Current: 1, Reset: at(time.Minute)}},
		{"second", 10 * time.Second, apitoken.Decision{Allowed: true, Limit: 3, Remaining: 1, Current: 2, Reset: at(time.Minute)}},
		{"third uses the last slot", 20 * time.Second, apitoken.Decision{Allowed: true, Limit: 3, Remaining: 0, Current: 3, Reset: at(time.Minute)}},
		{"fourth refused", 30 * time.Second, apitoken.Decision{Limit: 3, Remaining: 0, Current: 4, Reset: at(time.Minute), RetryAfter: 30 * time.Second}},
		{"refused 1ns before the oldest leaves", time.Minute - time.Nanosecond, apitoken.Decision{Limit: 3, Current: 4, Reset: at(time.Minute), RetryAfter: time.Nanosecond}},
		{"allowed the instant the oldest leaves", time.Minute, apitoken.Decision{Allowed: true, Limit: 3, Remaining: 0, Current: 3, Reset: at(70 * time.Second)}},
		{"refused until the next leaves", 65 * time.Second, apitoken.Decision{Limit: 3, Current: 4, Reset: at(70 * time.Second), RetryAfter: 5 * time.Second}},
		{"idle a whole window", 3 * time.Minute, apitoken.Decision{Allowed: true, Limit: 3, Remaining: 2, Current: 1, Reset: at(4 * time.Minute)}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			wantDecision(t, l.AllowAt(at(s.at), key, limit), s.want)
		})
	}
}

// TestMemoryLimiterSpec429 is the spec's example: limit 500, the 501st request
// in a minute gets {"limit":500,"current":501} and X-RateLimit-Remaining counts
// down (487 after 13 requests).
func TestMemoryLimiterSpec429(t *testing.T) {
	tests := []struct {
		name  string
		limit int
	}{
		{"limit 500", 500},
		{"limit 1", 1},
		{"limit 2", 2},
		{"limit 1000", 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := fakeclock.New(limT0)
			l := apitoken.NewMemoryLimiter(0, clk)
			ctx := context.Background()
			for i := 1; i <= tt.limit; i++ {
				d, err := l.Allow(ctx, "k", tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				if !d.Allowed || d.Current != i || d.Remaining != tt.limit-i || d.Limit != tt.limit || d.RetryAfter != 0 {
					t.Fatalf("request %d: %+v", i, d)
				}
				if i == 13 && tt.limit == 500 && d.Remaining != 487 {
					t.Fatalf("after 13 requests Remaining = %d, want 487", d.Remaining)
				}
				clk.Advance(10 * time.Millisecond)
			}
			d, err := l.Allow(ctx, "k", tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			wantDecision(t, d, apitoken.Decision{
				Limit:      tt.limit,
				Current:    tt.limit + 1,
				Reset:      limT0.Add(time.Minute),
				RetryAfter: limT0.Add(time.Minute).Sub(clk.Now()),
			})
		})
	}
}

// TestMemoryLimiterRetryAfterIsExact checks, for refusals in several states,
// that Reset = now+RetryAfter, that a request 1ns before then is still
// refused and that one at then is allowed.
func TestMemoryLimiterRetryAfterIsExact(t *testing.T) {
	tests := []struct {
		name         string
		historyLimit int
		history      []time.Duration // allowed requests made with historyLimit
		limit        int
		now          time.Duration
		wantRetry    time.Duration
	}{
		{"full at the limit", 3, []time.Duration{0, 10 * time.Second, 20 * time.Second}, 3, 30 * time.Second, 30 * time.Second},
		{"burst at one instant", 5, []time.Duration{0, 0, 0, 0, 0}, 5, 59900 * time.Millisecond, 100 * time.Millisecond},
		{"limit lowered from 10 to 5", 10, seconds(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), 5, 10 * time.Second, 55 * time.Second},
		{"limit lowered from 10 to 1", 10, seconds(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), 1, 10 * time.Second, 59 * time.Second},
		{"limit lowered, oldest already gone", 10, seconds(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), 5, 62 * time.Second, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimiterAt(0)
			clk := l.clk
			for i, h := range tt.history {
				if d := l.AllowAt(at(h), "k", tt.historyLimit); !d.Allowed {
					t.Fatalf("history request %d refused: %+v", i, d)
				}
			}
			now := at(tt.now)
			d := l.AllowAt(now, "k", tt.limit)
			if d.Allowed || d.Current != tt.limit+1 || d.Remaining != 0 || d.Limit != tt.limit {
				t.Fatalf("want refusal with Current=%d, got %+v", tt.limit+1, d)
			}
			if d.RetryAfter != tt.wantRetry {
				t.Errorf("RetryAfter = %v, want %v", d.RetryAfter, tt.wantRetry)
			}
			if !d.Reset.Equal(now.Add(d.RetryAfter)) {
				t.Errorf("Reset = %v, want now+RetryAfter = %v", d.Reset, now.Add(d.RetryAfter))
			}
			setClock(clk, now.Add(d.RetryAfter-time.Nanosecond))
			if p, _ := l.Peek(context.Background(), "k", tt.limit); p.Allowed {
				t.Errorf("1ns before RetryAfter: allowed (%+v)", p)
			}
			if a := l.AllowAt(now.Add(d.RetryAfter-time.Nanosecond), "k", tt.limit); a.Allowed {
				t.Errorf("1ns before RetryAfter: Allow allowed (%+v)", a)
			}
			setClock(clk, now.Add(d.RetryAfter))
			if p, _ := l.Peek(context.Background(), "k", tt.limit); !p.Allowed {
				t.Errorf("at RetryAfter: Peek refused (%+v)", p)
			}
			if a := l.AllowAt(now.Add(d.RetryAfter), "k", tt.limit); !a.Allowed || a.RetryAfter != 0 {
				t.Errorf("at RetryAfter: Allow = %+v, want allowed with RetryAfter 0", a)
			}
		})
	}
}

func seconds(s ...int) []time.Duration {
	out := make([]time.Duration, len(s))
	for i, v := range s {
		out[i] = time.Duration(v) * time.Second
	}
	return out
}

func TestMemoryLimiterLoweredLimit(t *testing.T) {
	// Ten requests at 0s..9s under limit 10, then the token's limit is cut
	// to 5: it refuses until six of the ten have left the window (at 65 s).
	l := newLimiterAt(0)
	for i := range 10 {
		if d := l.AllowAt(at(time.Duration(i)*time.Second), "k", 10); !d.Allowed {
			t.Fatalf("request %d refused", i)
		}
	}
	steps := []struct {
		name    string
		at      time.Duration
		limit   int
		allowed bool
		current int
	}{
		{"cut to 5 refuses", 10 * time.Second, 5, false, 6},
		{"one gone still refuses", 60 * time.Second, 5, false, 6},
		{"five gone still refuses", 64*time.Second + 999*time.Millisecond, 5, false, 6},
		{"six gone allows", 65 * time.Second, 5, true, 5},
		{"full again", 65*time.Second + 500*time.Millisecond, 5, false, 6},
		{"raised back to 10 allows", 66 * time.Second, 10, true, 5},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			d := l.AllowAt(at(s.at), "k", s.limit)
			if d.Allowed != s.allowed || d.Current != s.current || d.Limit != s.limit {
				t.Errorf("got %+v, want allowed=%v current=%d limit=%d", d, s.allowed, s.current, s.limit)
			}
		})
	}
}

func TestMemoryLimiterPeek(t *testing.T) {
	tests := []struct {
		name    string
		limit   int
		allowed int // Allow calls before peeking
		want    apitoken.Decision
	}{
		{"unknown key", 5, 0, apitoken.Decision{Allowed: true, Limit: 5, Remaining: 5, Reset: at(time.Minute)}},
		{"two used", 5, 2, apitoken.Decision{Allowed: true, Limit: 5, Remaining: 3, Current: 2, Reset: at(time.Minute)}},
		{"one left", 5, 4, apitoken.Decision{Allowed: true, Limit: 5, Remaining: 1, Current: 4, Reset: at(time.Minute)}},
		{"full", 5, 5, apitoken.Decision{Limit: 5, Remaining: 0, Current: 6, Reset: at(time.Minute), RetryAfter: time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := fakeclock.New(limT0)
			l := apitoken.NewMemoryLimiter(0, clk)
			var p apitoken.Limiter = l
			ctx := context.Background()
			for range tt.allowed {
				if d, _ := l.Allow(ctx, "k", tt.limit); !d.Allowed {
					t.Fatal("setup request refused")
				}
			}
			for i := range 1000 {
				d, err := p.Peek(ctx, "k", tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				if !sameDecision(d, tt.want) {
					t.Fatalf("peek %d: got %+v, want %+v", i, d, tt.want)
				}
			}
			// Peeking counted nothing: the remaining quota is still there.
			for i := range tt.limit - tt.allowed {
				if d, _ := l.Allow(ctx, "k", tt.limit); !d.Allowed || d.Remaining != tt.want.Remaining-i-1 {
					t.Fatalf("Allow %d after peeking: %+v, want allowed with Remaining %d", i, d, tt.want.Remaining-i-1)
				}
			}
			if d, _ := l.Allow(ctx, "k", tt.limit); d.Allowed {
				t.Errorf("Allow beyond the limit after peeking: %+v", d)
			}
		})
	}
}

func TestMemoryLimiterUnlimited(t *testing.T) {
	tests := []struct {
		name  string
		limit int
	}{
		{"zero", 0},
		{"minus one", -1},
		{"very negative", math.MinInt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := fakeclock.New(limT0)
			l := apitoken.NewMemoryLimiter(0, clk)
			ctx := context.Background()
			for i := range 10_000 {
				d, err := l.Allow(ctx, "k", tt.limit)
				if err != nil || !d.Allowed || d.RetryAfter != 0 || d.Limit != tt.limit {
					t.Fatalf("request %d: %+v, %v", i, d, err)
				}
			}
			if d, err := l.Peek(ctx, "k", tt.limit); err != nil || !d.Allowed {
				t.Fatalf("Peek: %+v, %v", d, err)
			}
			// They did not count: the same key under a real limit has it all.
			if d, _ := l.Allow(ctx, "k", 3); !d.Allowed || d.Remaining != 2 {
				t.Errorf("limit 3 after unlimited requests: %+v", d)
			}
		})
	}
}

func TestMemoryLimiterKeysIndependent(t *testing.T) {
	tests := []struct {
		name string
		keys []string
	}{
		{"two keys", []string{"a", "b"}},
		{"similar keys", []string{"tok-1", "tok-10", "tok-11", "tok-1 ", ""}},
		{"many keys", func() []string {
			var ks []string
			for i := range 300 {
				ks = append(ks, fmt.Sprintf("token-%d", i))
			}
			return ks
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimiterAt(0)
			const limit = 4
			// Key i uses i%limit+1 requests, then each key must have exactly
			// the rest of its quota left.
			for i, k := range tt.keys {
				for range i%limit + 1 {
					if d := l.AllowAt(limT0, k, limit); !d.Allowed {
						t.Fatalf("key %q refused during setup", k)
					}
				}
			}
			for i, k := range tt.keys {
				used := i%limit + 1
				d := l.AllowAt(limT0, k, limit)
				if want := used < limit; d.Allowed != want {
					t.Errorf("key %q after %d requests: Allowed = %v, want %v", k, used, d.Allowed, want)
				}
				if d.Allowed && d.Remaining != limit-used-1 {
					t.Errorf("key %q: Remaining = %d, want %d", k, d.Remaining, limit-used-1)
				}
			}
		})
	}
}

func TestMemoryLimiterReset(t *testing.T) {
	tests := []struct {
		name  string
		limit int
		used  int
	}{
		{"full key", 3, 3},
		{"partly used key", 3, 1},
		{"unknown key", 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimiterAt(0)
			for range tt.used {
				l.AllowAt(limT0, "k", tt.limit)
			}
			l.AllowAt(limT0, "other", 1) // fills "other"
			l.Reset("k")
			l.Reset("k") // again: a no-op
			for i := range tt.limit {
				if d := l.AllowAt(limT0, "k", tt.limit); !d.Allowed || d.Current != i+1 {
					t.Fatalf("request %d after Reset: %+v", i, d)
				}
			}
			if d := l.AllowAt(limT0, "other", 1); d.Allowed {
				t.Errorf("Reset(%q) freed %q too", "k", "other")
			}
		})
	}
}

// TestMemoryLimiterExactUnderContention is an acceptance criterion: with a
// frozen clock, concurrent callers get exactly limit allowed requests.
func TestMemoryLimiterExactUnderContention(t *testing.T) {
	tests := []struct {
		name       string
		goroutines int
		calls      int // per goroutine
		keys       int
		limit      int
	}{
		{"2 goroutines x 100000 calls, one key, 1000 per minute", 2, 100_000, 1, 1000},
		{"8 goroutines x 20000 calls, 4 keys, 1000 per minute", 8, 20_000, 4, 1000},
		{"16 goroutines x 1000 calls, one key, limit 1", 16, 1000, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := fakeclock.New(limT0) // frozen: nobody advances it
			l := apitoken.NewMemoryLimiter(0, clk)
			keys := make([]string, tt.keys)
			for i := range keys {
				keys[i] = fmt.Sprintf("token-%d", i)
			}
			allowed := make([]atomic.Int64, tt.keys)
			// currents[k][c] counts allowed decisions for key k with Current c:
			// each value 1..limit must be handed out exactly once.
			currents := make([][]atomic.Int32, tt.keys)
			for i := range currents {
				currents[i] = make([]atomic.Int32, tt.limit+2)
			}
			var bad atomic.Int64
			start := make(chan struct{})
			var wg sync.WaitGroup
			for g := range tt.goroutines {
				wg.Go(func() {
					ctx := context.Background()
					<-start
					for i := range tt.calls {
						k := (g + i) % tt.keys
						d, err := l.Allow(ctx, keys[k], tt.limit)
						if err != nil {
							bad.Add(1)
							continue
						}
						if d.Allowed {
							allowed[k].Add(1)
							if d.Current < 1 || d.Current > tt.limit {
								bad.Add(1)
								continue
							}
							currents[k][d.Current].Add(1)
						} else if d.Current != tt.limit+1 || d.Remaining != 0 || d.RetryAfter != time.Minute {
							bad.Add(1)
						}
					}
				})
			}
			close(start)
			wg.Wait()
			if b := bad.Load(); b != 0 {
				t.Errorf("%d malformed decisions", b)
			}
			for k := range keys {
				if got := allowed[k].Load(); got != int64(tt.limit) {
					t.Errorf("key %q: %d allowed, want exactly %d", keys[k], got, tt.limit)
				}
				for c := 1; c <= tt.limit; c++ {
					if n := currents[k][c].Load(); n != 1 {
						t.Errorf("key %q: Current=%d handed out %d times, want once", keys[k], c, n)
						break
					}
				}
			}
		})
	}
}

func TestMemoryLimiterNoDoubleBurstAtBoundary(t *testing.T) {
	// limit 10 per minute; early requests at 0.05 s, the rest at 59.9 s
	// (the limit is used up then); at 60.1 s exactly the early ones have
	// left the window, so exactly that many are allowed: a fixed window
	// would allow all 10 again.
	tests := []struct {
		name  string
		early int
		late  int
	}{
		{"all at 59.9s", 0, 10},
		{"4 early 6 late", 4, 6},
		{"1 early 9 late", 1, 9},
		{"all early", 10, 0},
	}
	const limit = 10
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimiterAt(0)
			for range tt.early {
				if !l.AllowAt(at(50*time.Millisecond), "k", limit).Allowed {
					t.Fatal("early request refused")
				}
			}
			for range tt.late {
				if !l.AllowAt(at(59900*time.Millisecond), "k", limit).Allowed {
					t.Fatal("late request refused")
				}
			}
			if l.AllowAt(at(59900*time.Millisecond), "k", limit).Allowed {
				t.Fatal("request beyond the limit at 59.9s allowed")
			}
			n := 0
			for range 2 * limit {
				if l.AllowAt(at(60100*time.Millisecond), "k", limit).Allowed {
					n++
				}
			}
			if n != tt.early {
				t.Errorf("at 60.1s %d allowed, want %d (the requests that left the window)", n, tt.early)
			}
			// At 119.9 s the 59.9 s requests are still in the window.
			n = 0
			for range 2 * limit {
				if l.AllowAt(at(119800*time.Millisecond), "k", limit).Allowed {
					n++
				}
			}
			if n != 0 {
				t.Errorf("at 119.8s %d allowed, want 0", n)
			}
			// At 119.9 s the late ones leave.
			n = 0
			for range 2 * limit {
				if l.AllowAt(at(119900*time.Millisecond), "k", limit).Allowed {
					n++
				}
			}
			if n != tt.late {
				t.Errorf("at 119.9s %d allowed, want %d", n, tt.late)
			}
		})
	}
}

// countIn counts the sorted times ts in [from, to).
func countIn(ts []int64, from, to int64) int {
	lo := sort.Search(len(ts), func(i int) bool { return ts[i] >= from })
	hi := sort.Search(len(ts), func(i int) bool { return ts[i] >= to })
	return hi - lo
}

// windowExtremes returns the fewest and the most of the sorted times ts that
// any half-open window [s, s+win) holds, over the starts s in [from, to]. The
// count only changes where s or s+win crosses a time, so those starts (and
// their neighbours) are all that need checking.
func windowExtremes(ts []int64, win, from, to int64) (lo, hi int) {
	lo, hi = int(^uint(0)>>1), 0
	try := func(s int64) {
		if s < from || s > to {
			return
		}
		c := countIn(ts, s, s+win)
		lo, hi = min(lo, c), max(hi, c)
	}
	try(from)
	try(to)
	for _, x := range ts {
		try(x)
		try(x + 1)
		try(x - win)
		try(x - win + 1)
	}
	return lo, hi
}

// TestMemoryLimiterSlidingWindowExact replays long random arrival sequences
// with the injected time and checks every decision against a brute-force
// sliding window: a request is allowed exactly when fewer than limit allowed
// requests lie in (now-window, now], and no window [s, s+window), wherever
// it starts, ever holds more than limit allowed requests.
func TestMemoryLimiterSlidingWindowExact(t *testing.T) {
	tests := []struct {
		name    string
		limit   int
		window  time.Duration
		meanGap time.Duration
		burst   float64 // probability that a request comes with the previous one
		idle    float64 // probability of an idle gap longer than the window
		n       int
		seed    uint64
	}{
		{"10 per minute, 4x overload", 10, time.Minute, 1500 * time.Millisecond, 0, 0, 5000, 1},
		{"10 per minute, bursts and idle gaps", 10, time.Minute, 3 * time.Second, 0.3, 0.01, 5000, 2},
		{"1 per second", 1, time.Second, 300 * time.Millisecond, 0.1, 0.001, 5000, 3},
		{"1000 per minute, 10x overload", 1000, time.Minute, 6 * time.Millisecond, 0.05, 0, 60_000, 4},
		{"500 per minute, under the rate", 500, time.Minute, 200 * time.Millisecond, 0, 0, 5000, 5},
		{"3 per 10ms, nanosecond times", 3, 10 * time.Millisecond, 1700 * time.Microsecond, 0.2, 0.005, 20_000, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(tt.seed, 42))
			l := newLimiterAt(tt.window)
			win := int64(tt.window)
			now := limT0.UnixNano()
			var allowed []int64
			refused := 0
			for i := range tt.n {
				switch r := rng.Float64(); {
				case i > 0 && r < tt.burst:
				case r < tt.burst+tt.idle:
					now += win + rng.Int64N(win)
				default:
					now += int64(rng.ExpFloat64() * float64(tt.meanGap))
				}
				// Brute force: allowed requests in (now-win, now].
				inWindow := countIn(allowed, now-win+1, now+1)
				d := l.AllowAt(time.Unix(0, now), "k", tt.limit)
				if d.Allowed != (inWindow < tt.limit) {
					t.Fatalf("request %d at +%v: Allowed=%v with %d in the window (limit %d)",
						i, time.Duration(now-limT0.UnixNano()), d.Allowed, inWindow, tt.limit)
				}
				if d.Allowed {
					if d.Current != inWindow+1 || d.Remaining != tt.limit-inWindow-1 || d.RetryAfter != 0 {
						t.Fatalf("request %d: %+v with %d in the window", i, d, inWindow)
					}
					allowed = append(allowed, now)
				} else {
					refused++
					oldest := allowed[len(allowed)-tt.limit]
					if d.Current != tt.limit+1 || d.RetryAfter != time.Duration(oldest+win-now) ||
						d.Reset.UnixNano() != oldest+win {
						t.Fatalf("request %d: %+v, oldest counted at %v", i, d, time.Unix(0, oldest))
					}
				}
			}
			_, most := windowExtremes(allowed, win, allowed[0]-win, allowed[len(allowed)-1])
			if most > tt.limit {
				t.Errorf("a window of %v holds %d allowed requests, limit %d", tt.window, most, tt.limit)
			}
			t.Logf("%d requests, %d allowed, %d refused, busiest window %d", tt.n, len(allowed), refused, most)
		})
	}
}

// TestMemoryLimiterSteadyOverload sends requests at a steady rate above the
// limit: after the first window every window holds limit or limit-1 allowed
// requests (a fixed window or a token bucket would let some window hold up
// to 2×limit; a limiter that over-refuses would fall lower).
func TestMemoryLimiterSteadyOverload(t *testing.T) {
	tests := []struct {
		name    string
		limit   int
		window  time.Duration
		every   time.Duration
		windows int
	}{
		{"10 per minute, one a second", 10, time.Minute, time.Second, 20},
		{"10 per minute, every 5.5s", 10, time.Minute, 5500 * time.Millisecond, 30},
		{"100 per minute, every 333ms", 100, time.Minute, 333 * time.Millisecond, 10},
		{"1000 per minute, every 7ms", 1000, time.Minute, 7 * time.Millisecond, 5},
		{"1 per second, every 300ms", 1, time.Second, 300 * time.Millisecond, 50},
		{"exactly at the rate", 10, time.Minute, 6 * time.Second, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimiterAt(tt.window)
			win := int64(tt.window)
			start := limT0.UnixNano()
			end := start + int64(tt.windows)*win
			var allowed []int64
			for now := start; now < end; now += int64(tt.every) {
				if l.AllowAt(time.Unix(0, now), "k", tt.limit).Allowed {
					allowed = append(allowed, now)
				}
			}
			fewest, most := windowExtremes(allowed, win, start+win, end-win)
			if most > tt.limit {
				t.Errorf("a window holds %d allowed, limit %d", most, tt.limit)
			}
			if fewest < tt.limit-1 {
				t.Errorf("a window after warm-up holds only %d allowed, want at least %d", fewest, tt.limit-1)
			}
			t.Logf("%d allowed; windows after warm-up hold %d..%d", len(allowed), fewest, most)
		})
	}
}

func TestMemoryLimiterNeverErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		limit int
	}{
		{"cancelled context", ctx, 5},
		{"cancelled context, unlimited", ctx, 0},
		{"background", context.Background(), 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimiterAt(0)
			if d, err := l.Allow(tt.ctx, "k", tt.limit); err != nil || !d.Allowed {
				t.Errorf("Allow: %+v, %v", d, err)
			}
			if d, err := l.Peek(tt.ctx, "k", tt.limit); err != nil || !d.Allowed {
				t.Errorf("Peek: %+v, %v", d, err)
			}
		})
	}
}

// TestMemoryLimiterAllowDoesNotAllocate: deciding for a key already tracked
// costs no allocation, allowed or refused.
func TestMemoryLimiterAllowDoesNotAllocate(t *testing.T) {
	tests := []struct {
		name  string
		limit int
		step  time.Duration // clock advance per request
	}{
		{"allowed at the rate, ring full", 100, time.Minute / 100},
		{"refused", 100, 0},
		{"unlimited", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimiterAt(0)
			now := limT0
			for range 2 * max(tt.limit, 1) { // warm up: the ring reaches its size
				l.AllowAt(now, "k", tt.limit)
				now = now.Add(tt.step)
			}
			allocs := testing.AllocsPerRun(1000, func() {
				l.AllowAt(now, "k", tt.limit)
				now = now.Add(tt.step)
			})
			if allocs != 0 {
				t.Errorf("AllowAt on an existing key: %v allocs/op, want 0", allocs)
			}
		})
	}
}

func BenchmarkMemoryLimiterAllow(b *testing.B) {
	ctx := context.Background()
	b.Run("single key allowed", func(b *testing.B) {
		// The clock advances by window/limit per request: every request is
		// allowed, one logged time leaves the window and one enters.
		const limit = 1000
		l := newLimiterAt(0)
		now := limT0
		step := time.Minute / limit
		for range 2 * limit {
			l.AllowAt(now, "tok", limit)
			now = now.Add(step)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if !l.AllowAt(now, "tok", limit).Allowed {
				b.Fatal("refused")
			}
			now = now.Add(step)
		}
	})
	b.Run("single key refused", func(b *testing.B) {
		clk := fakeclock.New(limT0)
		l := apitoken.NewMemoryLimiter(0, clk)
		for range 1000 {
			l.Allow(ctx, "tok", 1000)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if d, _ := l.Allow(ctx, "tok", 1000); d.Allowed {
				b.Fatal("allowed")
			}
		}
	})
	b.Run("parallel 1000 keys", func(b *testing.B) {
		// Real clock: each key's first 1000 requests of a minute are
		// allowed, the rest refused.
		l := newLimiterAt(0)
		keys := make([]string, 1000)
		for i := range keys {
			keys[i] = fmt.Sprintf("token-%d", i)
			l.Allow(ctx, keys[i], 1000)
		}
		var seed atomic.Uint64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := int(seed.Add(7919))
			for pb.Next() {
				l.Allow(ctx, keys[i%len(keys)], 1000)
				i++
			}
		})
	})
}

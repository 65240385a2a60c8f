package apitoken

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/apitoken/apitoken/internal/fakeclock"
)

// logTimes returns the log's times, oldest first.
func logTimes(w *slidingLog) []time.Duration {
	out := make([]time.Duration, 0, w.n)
	for i := range w.n {
		out = append(out, w.at(i))
	}
	return out
}

func TestSlidingLogRing(t *testing.T) {
	type op struct {
		push   []time.Duration // times to push, then
		expire time.Duration   // cutoff to expire (0: none)
	}
	tests := []struct {
		name    string
		limit   int
		ops     []op
		want    []time.Duration
		wantCap int
	}{
		{"empty", 10, nil, []time.Duration{}, 0},
		{"grows from 8 to the limit", 10, []op{{push: seq(1, 10)}}, seq(1, 10), 10},
		{"limit 1", 1, []op{{push: []time.Duration{5}}, {expire: 5}, {push: []time.Duration{6}}}, []time.Duration{6}, 1},
		{"limit below 8", 3, []op{{push: seq(1, 3)}}, seq(1, 3), 3},
		{"wraps without growing", 8, []op{
			{push: seq(1, 8), expire: 5},
			{push: seq(9, 13)},
		}, seq(6, 13), 8},
		{"grows while wrapped, keeps order", 100, []op{
			{push: seq(1, 8), expire: 5},
			{push: seq(9, 13)}, // full and wrapped: head 5
			{push: seq(14, 20)},
		}, seq(6, 20), 16},
		{"expire everything", 100, []op{{push: seq(1, 20), expire: 20}}, []time.Duration{}, 32},
		{"expire across the wrap", 8, []op{
			{push: seq(1, 8), expire: 6},
			{push: seq(9, 14), expire: 11},
		}, seq(12, 14), 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &slidingLog{}
			for _, o := range tt.ops {
				for _, ts := range o.push {
					w.push(ts, tt.limit)
				}
				if o.expire != 0 {
					w.expire(o.expire)
				}
			}
			if got := logTimes(w); !slices.Equal(got, tt.want) {
				t.Errorf("log = %v, want %v", got, tt.want)
			}
			if len(w.ts) != tt.wantCap {
				t.Errorf("ring size %d, want %d", len(w.ts), tt.wantCap)
			}
			if w.n > 0 && w.newest() != tt.want[len(tt.want)-1] {
				t.Errorf("newest() = %d, want %d", w.newest(), tt.want[len(tt.want)-1])
			}
			if w.oldest(-1) != first(tt.want, -1) {
				t.Errorf("oldest() = %d, want %d", w.oldest(-1), first(tt.want, -1))
			}
		})
	}
}

func seq(from, to time.Duration) []time.Duration {
	var s []time.Duration
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func first(s []time.Duration, def time.Duration) time.Duration {
	if len(s) == 0 {
		return def
	}
	return s[0]
}

// TestLimiterMemoryBoundedByLimit: a key's ring never holds more than limit
// times, however many requests it gets.
func TestLimiterMemoryBoundedByLimit(t *testing.T) {
	for _, limit := range []int{1, 7, 9, 100, 1000} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			clk := fakeclock.New(time.Date(2025, 1, 15, 10, 30, 0, 0, time.UTC))
			l := NewMemoryLimiter(0, clk)
			for range 10 * limit {
				l.decide("k", limit, true)
				clk.Advance(time.Minute / time.Duration(3*limit)) // 3x overload
			}
			if got := len(l.shard("k").logs["k"].ts); got != limit {
				t.Errorf("ring size %d, want %d", got, limit)
			}
		})
	}
}

// TestLimiterSweepsIdleKeys fills every shard, lets the window pass and
// touches one new key per shard: each shard sweeps, so exactly those keys
// remain.
func TestLimiterSweepsIdleKeys(t *testing.T) {
	clk := fakeclock.New(time.Date(2025, 1, 15, 10, 30, 0, 0, time.UTC))
	l := NewMemoryLimiter(0, clk)
	for i := range 10_000 {
		l.decide(fmt.Sprintf("key-%d", i), 10, true)
	}
	probes := map[*limiterShard]string{}
	for i := 0; len(probes) < limiterShards; i++ {
		k := fmt.Sprintf("probe-%d", i)
		if sh := l.shard(k); probes[sh] == "" {
			probes[sh] = k
		}
	}
	clk.Advance(defaultWindow + time.Nanosecond)
	for sh, k := range probes {
		l.decide(k, 10, true)
		if n := len(sh.logs); n != 1 {
			t.Errorf("a shard holds %d keys after its sweep, want 1", n)
		}
	}
}

// TestLimiterPeekKeepsNoKey: asking about a key without counting leaves no
// state behind (a flood of refused requests cannot fill the limiter).
func TestLimiterPeekKeepsNoKey(t *testing.T) {
	l := NewMemoryLimiter(0, fakeclock.New(time.Now()))
	for i := range 1000 {
		l.decide(fmt.Sprint(i), 10, false)
	}
	for i := range l.shards {
		if n := len(l.shards[i].logs); n != 0 {
			t.Fatalf("shard %d holds %d keys after peeks only", i, n)
		}
	}
}

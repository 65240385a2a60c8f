package apitoken

import (
	"fmt"
	"slices"
	"testing"
	"time"
	"unsafe"
)

func TestLimiterShardSize(t *testing.T) {
	// The padding's job: shards (and their mutexes) never share a cache line.
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("the padding is tuned for 64-bit platforms")
	}
	if s := unsafe.Sizeof(limiterShard{}); s%64 != 0 {
		t.Errorf("limiterShard is %d bytes, want a multiple of 64", s)
	}
}

// logTimes returns the log's times, oldest first.
func logTimes(w *slidingLog) []int64 {
	out := make([]int64, 0, w.n)
	for i := range w.n {
		out = append(out, w.at(i))
	}
	return out
}

func TestSlidingLogRing(t *testing.T) {
	type op struct {
		push   []int64 // times to push, then
		expire int64   // cutoff to expire (0: none)
	}
	tests := []struct {
		name    string
		limit   int
		ops     []op
		want    []int64
		wantCap int
	}{
		{"empty", 10, nil, []int64{}, 0},
		{"grows from 8 to the limit", 10, []op{{push: seq(1, 10)}}, seq(1, 10), 10},
		{"limit 1", 1, []op{{push: []int64{5}}, {expire: 5}, {push: []int64{6}}}, []int64{6}, 1},
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
		{"expire everything", 100, []op{{push: seq(1, 20), expire: 20}}, []int64{}, 32},
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

func seq(from, to int64) []int64 {
	var s []int64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func first(s []int64, def int64) int64 {
	if len(s) == 0 {
		return def
	}
	return s[0]
}

// TestLimiterMemoryBoundedByLimit: a key's ring never holds more than limit
// times, however many requests it gets.
func TestLimiterMemoryBoundedByLimit(t *testing.T) {
	tests := []struct {
		name  string
		limit int
	}{
		{"limit 1", 1},
		{"limit 7", 7},
		{"limit 9", 9},
		{"limit 100", 100},
		{"limit 1000", 1000},
	}
	t0 := time.Date(2025, 1, 15, 10, 30, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewMemoryLimiter()
			now := t0
			for range 10 * tt.limit {
				l.AllowAt(now, "k", tt.limit)
				now = now.Add(time.Minute / time.Duration(3*tt.limit)) // 3x overload
			}
			sh := &l.shards[shardOf("k")]
			if got := len(sh.keys["k"].ts); got != tt.limit {
				t.Errorf("ring size %d, want %d", got, tt.limit)
			}
		})
	}
}

// TestLimiterSweepsEveryShard fills every shard, lets the window pass and
// touches one new key per shard: each shard sweeps, so exactly those keys
// remain.
func TestLimiterSweepsEveryShard(t *testing.T) {
	tests := []struct {
		name string
		keys int
	}{
		{"100000 keys", 100_000},
		{"one key per shard", limiterShards},
	}
	t0 := time.Date(2025, 1, 15, 10, 30, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewMemoryLimiter()
			for i := range tt.keys {
				l.AllowAt(t0, fmt.Sprintf("key-%d", i), 10)
			}
			// One probe key for each shard.
			var probes [limiterShards]string
			found := 0
			for i := 0; found < limiterShards; i++ {
				k := fmt.Sprintf("probe-%d", i)
				if s := shardOf(k); probes[s] == "" {
					probes[s] = k
					found++
				}
			}
			now := t0.Add(DefaultWindow + time.Nanosecond)
			for s, k := range probes {
				l.AllowAt(now, k, 10)
				if n := len(l.shards[s].keys); n != 1 {
					t.Errorf("shard %d holds %d keys after its sweep, want 1", s, n)
				}
			}
			if n := l.Len(); n != limiterShards {
				t.Errorf("Len() = %d, want %d", n, limiterShards)
			}
		})
	}
}

func TestShardOfSpreadsKeys(t *testing.T) {
	tests := []struct {
		name   string
		format string
	}{
		{"numbered tokens", "token-%d"},
		{"database ids", "%d"},
		{"hashes", "atk_%08x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 64_000
			var counts [limiterShards]int
			for i := range n {
				counts[shardOf(fmt.Sprintf(tt.format, i))]++
			}
			mean := n / limiterShards
			for s, c := range counts {
				if c < mean/2 || c > mean*3/2 {
					t.Errorf("shard %d has %d keys, mean %d", s, c, mean)
				}
			}
		})
	}
}

// decideHinted, with the log it returns passed back, decides exactly as
// decideAt does, through sweeps and Resets.
func TestDecideHintedMatchesDecideAt(t *testing.T) {
	const win = int64(time.Second)
	plain := NewMemoryLimiter(WithWindow(time.Second))
	hinted := NewMemoryLimiter(WithWindow(time.Second))
	keys := []string{"1", "2", "3", "42"}
	hints := map[string]*slidingLog{}
	now := int64(1_700_000_000) * int64(time.Second)
	rng := uint64(1)
	next := func(n uint64) uint64 { // xorshift: a fixed sequence
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		return rng % n
	}
	for step := range 20_000 {
		switch next(100) {
		case 0:
			now += 2 * win // every log idle: the next call sweeps them away
		case 1:
			k := keys[next(uint64(len(keys)))]
			plain.Reset(k)
			hinted.Reset(k)
			continue
		default:
			now += int64(next(uint64(win / 50)))
		}
		k := keys[next(uint64(len(keys)))]
		limit := int(1 + next(40))
		c1, r1, a1 := plain.decideAt(now, k, limit, true)
		c2, r2, a2, w := hinted.decideHinted(now, k, limit, hints[k])
		if c1 != c2 || r1 != r2 || a1 != a2 {
			t.Fatalf("step %d, key %s, limit %d: decideAt (%d, %d, %v), decideHinted (%d, %d, %v)", step, k, limit, c1, r1, a1, c2, r2, a2)
		}
		if got := hinted.shards[shardOf(k)].keys[k]; got != w {
			t.Fatalf("step %d: decideHinted returned a log that is not the key's", step)
		}
		hints[k] = w
	}
}

// A hint whose log was swept or Reset, or that belongs to another limiter,
// is not used.
func TestDecideHintedIgnoresStaleHints(t *testing.T) {
	l := NewMemoryLimiter(WithWindow(time.Second))
	now := int64(1_700_000_000) * int64(time.Second)
	_, _, _, w := l.decideHinted(now, "7", 5, nil)
	for range 4 {
		_, _, _, w = l.decideHinted(now, "7", 5, w)
	}
	if cur, _, allowed, _ := l.decideHinted(now, "7", 5, w); allowed || cur != 6 {
		t.Fatalf("6th request: allowed %v current %d, want refused with 6", allowed, cur)
	}

	l.Reset("7")
	cur, _, allowed, w2 := l.decideHinted(now, "7", 5, w)
	if !allowed || cur != 1 || w2 == w {
		t.Fatalf("after Reset: allowed %v current %d, new log %v; want a new log's first request", allowed, cur, w2 != w)
	}

	// Two windows later the next call sweeps the idle log away.
	now += 2 * int64(time.Second)
	_, _, _, w3 := l.decideHinted(now, "7", 5, w2)
	if !w2.gone || w3 == w2 || l.shards[shardOf("7")].keys["7"] != w3 {
		t.Fatal("a swept log was used, or the new one is not in the map")
	}

	other := NewMemoryLimiter(WithWindow(time.Second))
	_, _, _, w4 := other.decideHinted(now, "7", 5, w3)
	if w4 == w3 || w4.owner != other || w3.n != 1 {
		t.Fatal("another limiter's log was used")
	}
}

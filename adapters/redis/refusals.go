package apitokenredis

import (
	"sync"
	"time"

	"github.com/apitoken/apitoken"
)

// refusals remembers, per key, that Redis refused it until a known time, so
// that further requests are refused without a round trip until then.
//
// This is exact, not an approximation: a refused request is not counted, so
// once Redis refuses a key at (Redis) time t with reset R, every request for
// it until R is refused, whichever replica sends it. The entry is kept as a
// local deadline, the local time the request was sent plus R-t: the request
// reached Redis after it was sent, so the deadline is never later than R and
// only requests Redis would refuse are refused locally. An entry applies
// only to the limit it was made for.
type refusals struct {
	shards [refusalShards]refusalShard
}

const (
	refusalShards = 64
	// refusalShardMax bounds the memory: beyond it a shard first forgets
	// its expired entries, and caches nothing more if they were all live.
	refusalShardMax = 1024
)

type refusalShard struct {
	mu sync.Mutex
	m  map[string]refusal
	// first is at or before the earliest deadline in m: before it a full
	// shard has nothing to sweep.
	first time.Duration
}

type refusal struct {
	limit int
	reset time.Time     // Redis's Reset
	until time.Duration // local deadline: a monotonic Clock reading
}

func (r *refusals) init() {
	for i := range r.shards {
		r.shards[i].m = make(map[string]refusal)
	}
}

// lookup returns the refusal for key and limit at monotonic reading now.
func (r *refusals) lookup(key string, limit int, now time.Duration) (apitoken.Decision, bool) {
	sh := &r.shards[shardOf(key)]
	sh.mu.Lock()
	e, ok := sh.m[key]
	if ok && now >= e.until {
		delete(sh.m, key)
		ok = false
	}
	sh.mu.Unlock()
	if !ok || e.limit != limit {
		return apitoken.Decision{}, false
	}
	return apitoken.Decision{
		Limit:      limit,
		Current:    limit + 1,
		Reset:      e.reset,
		RetryAfter: e.until - now,
	}, true
}

// store records Redis's refusal d of a request sent at monotonic reading
// sent.
func (r *refusals) store(key string, d apitoken.Decision, sent time.Duration) {
	if d.RetryAfter <= 0 {
		return
	}
	e := refusal{limit: d.Limit, reset: d.Reset, until: sent + d.RetryAfter}
	sh := &r.shards[shardOf(key)]
	sh.mu.Lock()
	_, present := sh.m[key]
	if !present && len(sh.m) >= refusalShardMax && sent >= sh.first {
		first := time.Duration(-1)
		for k, v := range sh.m {
			if sent >= v.until {
				delete(sh.m, k)
			} else if first < 0 || v.until < first {
				first = v.until
			}
		}
		sh.first = first
	}
	if present || len(sh.m) < refusalShardMax {
		sh.m[key] = e
		if len(sh.m) == 1 || e.until < sh.first {
			sh.first = e.until
		}
	}
	sh.mu.Unlock()
}

// forget drops key's entry (it was allowed, or reset).
func (r *refusals) forget(key string) {
	sh := &r.shards[shardOf(key)]
	sh.mu.Lock()
	delete(sh.m, key)
	sh.mu.Unlock()
}

// shardOf hashes key with FNV-1a.
func shardOf(key string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return h % refusalShards
}

package apitoken

import (
	"encoding/binary"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apitoken/apitoken/internal/pathmatch"
)

// cacheEntry is what the verification cache keeps per token hash: the token
// and everything the request path derives from it, computed once.
//
// Its first 64 bytes hold all that Verify reads on a cache hit: the rest of
// the hash (the map key is its first 8 bytes), the staleness and expiry
// times, the last use, the token and its state. (The middleware reads the
// fields after them too.) The entry is 192 bytes, a size class
// whose objects start on a 64-byte boundary, so those bytes are one cache
// line: with a million cached tokens, each line read is a trip to memory.
// TestCacheEntryLayout keeps it so.
type cacheEntry struct {
	rest      [24]byte     // bytes 8 to 31 of the hash
	expires   int64        // clock nanoseconds after which the entry is stale
	expiresAt int64        // the token's ExpiresAt in Unix nanoseconds; math.MaxInt64 for none
	lastUsed  atomic.Int64 // clock nanoseconds of the latest verified use
	tok       *Token       // shared, read-only; nil when notFound
	notFound  bool
	active    bool // the token's Active

	next      *cacheEntry // the next entry whose hash has the same map key
	id        int64       // the token's ID and RateLimit, for the middleware
	rateLimit int
	key       string        // limiter key: the decimal id
	limitHdr  string        // the rate limit as a header value
	endpoints pathmatch.Set // compiled AllowedEndpoints

	flushed atomic.Int64 // lastUsed value already written to the store

	// limLog is the token's log in the middleware's MemoryLimiter, handed
	// back to it on the next request (MemoryLimiter.decideHinted).
	limLog atomic.Pointer[slidingLog]

	_ [24]byte // to 192 bytes
}

// resetText is a formatted X-RateLimit-Reset second.
type resetText struct {
	unix int64
	text string
}

// newCacheEntry builds the entry for t. When t's stored patterns do not
// compile it returns the error with an entry that refuses every endpoint.
func newCacheEntry(t *Token, expires int64) (*cacheEntry, error) {
	set, err := pathmatch.CompileAll(t.AllowedEndpoints) // on error: a Set that refuses all
	return &cacheEntry{
		tok:       t,
		active:    t.Active,
		expiresAt: unixNanoClamped(t.ExpiresAt),
		id:        t.ID,
		rateLimit: t.RateLimit,
		expires:   expires,
		key:       strconv.FormatInt(t.ID, 10),
		limitHdr:  intText(t.RateLimit), // below 10,000: shared, in the CPU's caches
		endpoints: set,
	}, err
}

// unixNanoClamped returns t in Unix nanoseconds, math.MaxInt64 for nil or a
// time after 2262 and math.MinInt64 for one before 1678 (where UnixNano
// would overflow).
func unixNanoClamped(t *time.Time) int64 {
	switch {
	case t == nil || t.After(maxUnixNano):
		return math.MaxInt64
	case t.Before(minUnixNano):
		return math.MinInt64
	}
	return t.UnixNano()
}

var (
	maxUnixNano = time.Unix(0, math.MaxInt64)
	minUnixNano = time.Unix(0, math.MinInt64)
)

const cacheShards = 64

// verifyCache maps token hashes to entries. Lookups take one shard's read
// lock. Invalidation by id bumps a generation counter so a fill that read the
// store before the invalidation cannot put the stale token back.
type verifyCache struct {
	shards  [cacheShards]cacheShard
	gen     atomic.Uint64
	maxNeg  int // negative entries per shard before they are all dropped
	pendMu  sync.Mutex
	pending map[int64]int64 // last uses of entries evicted before a flush
}

// cacheShard's map is keyed by the hash's first 8 bytes, not all 32: its
// slots are 16 bytes, not 40, so a lookup among a million tokens reads
// fewer cache lines, and hashing the key is cheaper. The entry holds the
// other 24 bytes; entries whose hashes share the first 8 (about one pair
// in 10^7 among a million tokens) are chained through next.
type cacheShard struct {
	mu   sync.RWMutex
	m    map[uint64]*cacheEntry
	ids  map[int64][]Hash
	negs int
}

func newVerifyCache(maxNegative int) *verifyCache {
	c := &verifyCache{maxNeg: maxNegative/cacheShards + 1, pending: map[int64]int64{}}
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]*cacheEntry)
		c.shards[i].ids = make(map[int64][]Hash)
	}
	return c
}

// shard picks the shard by the hash's first byte.
func (c *verifyCache) shard(h *Hash) *cacheShard { return &c.shards[h[0]%cacheShards] }

// mapKey is the first 8 bytes of h; hashRest the other 24.
func mapKey(h *Hash) uint64 { return binary.LittleEndian.Uint64(h[:8]) }

func hashRest(h *Hash) [24]byte { return [24]byte(h[8:]) }

// fullHash is the hash of an entry stored under map key k.
func (e *cacheEntry) fullHash(k uint64) Hash {
	var h Hash
	binary.LittleEndian.PutUint64(h[:8], k)
	copy(h[8:], e.rest[:])
	return h
}

func (c *verifyCache) get(h Hash) *cacheEntry {
	s := c.shard(&h)
	s.mu.RLock()
	e := s.get(h)
	s.mu.RUnlock()
	return e
}

// put stores e under h unless an invalidation happened since gen was read.
func (c *verifyCache) put(h Hash, e *cacheEntry, gen uint64) {
	s := c.shard(&h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	e.rest = hashRest(&h)
	if old := s.remove(h); old != nil {
		// The hash may now answer for another token, or for none (a
		// rotated token's old hash once its grace has ended).
		c.forget(s, old, h)
	}
	if e.notFound {
		if s.negs >= c.maxNeg {
			s.removeIf(func(_ uint64, x *cacheEntry) bool { return x.notFound })
			s.negs = 0
		}
		s.negs++
	} else {
		ids := s.ids[e.tok.ID]
		found := false
		for _, x := range ids {
			found = found || x == h
		}
		if !found {
			s.ids[e.tok.ID] = append(ids, h)
		}
	}
	k := mapKey(&h)
	e.next = s.m[k]
	s.m[k] = e
}

// remove unlinks and returns the entry of h, or nil.
func (s *cacheShard) remove(h Hash) *cacheEntry {
	k, rest := mapKey(&h), hashRest(&h)
	var prev *cacheEntry
	for e := s.m[k]; e != nil; prev, e = e, e.next {
		if e.rest != rest {
			continue
		}
		switch {
		case prev != nil:
			prev.next = e.next
		case e.next != nil:
			s.m[k] = e.next
		default:
			delete(s.m, k)
		}
		e.next = nil
		return e
	}
	return nil
}

// removeIf unlinks every entry for which drop (given the entry's map key)
// is true. Readers never see a chain being changed: they hold the read
// lock, removeIf's caller the write lock.
func (s *cacheShard) removeIf(drop func(k uint64, e *cacheEntry) bool) {
	for k, head := range s.m {
		var keep, last *cacheEntry
		for e := head; e != nil; {
			next := e.next
			if drop(k, e) {
				e.next = nil
			} else {
				if last == nil {
					keep = e
				} else {
					last.next = e
				}
				last = e
			}
			e = next
		}
		if keep == nil {
			delete(s.m, k)
			continue
		}
		last.next = nil
		if keep != head {
			s.m[k] = keep
		}
	}
}

// each calls f for every entry of the shard.
func (s *cacheShard) each(f func(*cacheEntry)) {
	for _, e := range s.m {
		for ; e != nil; e = e.next {
			f(e)
		}
	}
}

// invalidate drops every entry of the token id, at once.
func (c *verifyCache) invalidate(id int64) {
	c.gen.Add(1)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for _, h := range s.ids[id] {
			if e := s.get(h); e != nil && !e.notFound {
				c.retire(s.remove(h))
			}
		}
		delete(s.ids, id)
		s.mu.Unlock()
	}
}

// get finds h's entry; the caller holds the shard's lock.
func (s *cacheShard) get(h Hash) *cacheEntry {
	e, rest := s.m[mapKey(&h)], hashRest(&h)
	for e != nil && e.rest != rest {
		e = e.next
	}
	return e
}

// dropNegative forgets cached not-found answers (a token was created).
func (c *verifyCache) dropNegative() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		if s.negs > 0 {
			s.removeIf(func(_ uint64, x *cacheEntry) bool { return x.notFound })
			s.negs = 0
		}
		s.mu.Unlock()
	}
}

// clear drops everything.
func (c *verifyCache) clear() {
	c.gen.Add(1)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.each(c.retire)
		s.m = make(map[uint64]*cacheEntry)
		s.ids = make(map[int64][]Hash)
		s.negs = 0
		s.mu.Unlock()
	}
}

// sweep drops stale entries so tokens no longer used do not stay in memory.
// Entries of valid tokens are kept for grace past their expiry, for
// stale-if-error.
func (c *verifyCache) sweep(now, grace int64) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.removeIf(func(k uint64, e *cacheEntry) bool {
			limit := e.expires
			if !e.notFound {
				limit += grace
			}
			if now <= limit {
				return false
			}
			c.forget(s, e, e.fullHash(k))
			return true
		})
		s.mu.Unlock()
	}
}

// forget does the bookkeeping for e, stored under h, just taken out of s
// (whose lock the caller holds): its last use is kept for the flush, and it
// leaves the negative count or its token's hashes.
func (c *verifyCache) forget(s *cacheShard, e *cacheEntry, h Hash) {
	c.retire(e)
	if e.notFound {
		s.negs--
	} else {
		s.removeID(e.tok.ID, h)
	}
}

func (s *cacheShard) removeID(id int64, h Hash) {
	ids := s.ids[id]
	for i, x := range ids {
		if x == h {
			ids = append(ids[:i], ids[i+1:]...)
			break
		}
	}
	if len(ids) == 0 {
		delete(s.ids, id)
	} else {
		s.ids[id] = ids
	}
}

// retire keeps an evicted entry's unflushed last use for the next flush.
func (c *verifyCache) retire(e *cacheEntry) {
	if e.notFound {
		return
	}
	used := e.lastUsed.Load()
	if used == 0 || used <= e.flushed.Load() {
		return
	}
	c.pendMu.Lock()
	if used > c.pending[e.tok.ID] {
		c.pending[e.tok.ID] = used
	}
	c.pendMu.Unlock()
}

// lastUses collects every last use not yet written. commit marks them
// written after the store accepted them.
func (c *verifyCache) lastUses() (map[int64]time.Time, func()) {
	out := map[int64]time.Time{}
	type mark struct {
		e    *cacheEntry
		used int64
	}
	var marks []mark
	c.pendMu.Lock()
	pend := c.pending
	c.pending = map[int64]int64{}
	c.pendMu.Unlock()
	for id, used := range pend {
		out[id] = time.Unix(0, used).UTC()
	}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		s.each(func(e *cacheEntry) {
			if e.notFound {
				return
			}
			used := e.lastUsed.Load()
			if used > e.flushed.Load() {
				marks = append(marks, mark{e, used})
				if t := time.Unix(0, used).UTC(); t.After(out[e.tok.ID]) {
					out[e.tok.ID] = t
				}
			}
		})
		s.mu.RUnlock()
	}
	commit := func() {
		for _, m := range marks {
			m.e.flushed.Store(m.used)
		}
	}
	// If the store refuses the values, the caller hands them to restore.
	return out, commit
}

// restore merges last uses that could not be written back into pending.
func (c *verifyCache) restore(used map[int64]time.Time) {
	c.pendMu.Lock()
	for id, t := range used {
		if n := t.UnixNano(); n > c.pending[id] {
			c.pending[id] = n
		}
	}
	c.pendMu.Unlock()
}

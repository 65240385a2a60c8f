package apitoken

import (
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apitoken/apitoken/internal/pathmatch"
)

// cacheEntry is what the verification cache keeps per token hash: the token
// and everything the request path derives from it, computed once.
type cacheEntry struct {
	// What every verified request reads comes first, so that a cache hit
	// touches one or two cache lines of the entry and never the token:
	// with a million cached tokens every line is a trip to memory. active,
	// expiresAt, id and rateLimit are copies of the token's fields.
	expires   int64        // clock nanoseconds after which the entry is stale
	expiresAt int64        // ExpiresAt in Unix nanoseconds; math.MaxInt64 for none
	lastUsed  atomic.Int64 // clock nanoseconds of the latest verified use
	id        int64
	rateLimit int
	notFound  bool
	active    bool

	tok       *Token        // shared, read-only
	key       string        // limiter key: the decimal id
	limitHdr  string        // the rate limit as a header value
	endpoints pathmatch.Set // compiled AllowedEndpoints

	reset atomic.Pointer[resetText] // last X-RateLimit-Reset value

	flushed atomic.Int64 // lastUsed value already written to the store
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
		limitHdr:  strconv.Itoa(t.RateLimit),
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

type cacheShard struct {
	mu   sync.RWMutex
	m    map[Hash]*cacheEntry
	ids  map[int64][]Hash
	negs int
}

func newVerifyCache(maxNegative int) *verifyCache {
	c := &verifyCache{maxNeg: maxNegative/cacheShards + 1, pending: map[int64]int64{}}
	for i := range c.shards {
		c.shards[i].m = make(map[Hash]*cacheEntry)
		c.shards[i].ids = make(map[int64][]Hash)
	}
	return c
}

func (c *verifyCache) shard(h Hash) *cacheShard { return &c.shards[h[0]%cacheShards] }

func (c *verifyCache) get(h Hash) *cacheEntry {
	s := c.shard(h)
	s.mu.RLock()
	e := s.m[h]
	s.mu.RUnlock()
	return e
}

// put stores e unless an invalidation happened since gen was read.
func (c *verifyCache) put(h Hash, e *cacheEntry, gen uint64) {
	s := c.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if old := s.m[h]; old != nil {
		c.retire(old)
		if old.notFound {
			s.negs--
		}
	}
	if e.notFound {
		if s.negs >= c.maxNeg {
			for k, x := range s.m {
				if x.notFound {
					delete(s.m, k)
				}
			}
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
	s.m[h] = e
}

// invalidate drops every entry of the token id, at once.
func (c *verifyCache) invalidate(id int64) {
	c.gen.Add(1)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for _, h := range s.ids[id] {
			if e := s.m[h]; e != nil && !e.notFound {
				c.retire(e)
				delete(s.m, h)
			}
		}
		delete(s.ids, id)
		s.mu.Unlock()
	}
}

// dropNegative forgets cached not-found answers (a token was created).
func (c *verifyCache) dropNegative() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		if s.negs > 0 {
			for k, x := range s.m {
				if x.notFound {
					delete(s.m, k)
				}
			}
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
		for _, e := range s.m {
			c.retire(e)
		}
		s.m = make(map[Hash]*cacheEntry)
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
		for h, e := range s.m {
			limit := e.expires
			if !e.notFound {
				limit += grace
			}
			if now > limit {
				c.retire(e)
				delete(s.m, h)
				if e.notFound {
					s.negs--
				} else {
					s.removeID(e.tok.ID, h)
				}
			}
		}
		s.mu.Unlock()
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
		for _, e := range s.m {
			if e.notFound {
				continue
			}
			used := e.lastUsed.Load()
			if used > e.flushed.Load() {
				marks = append(marks, mark{e, used})
				if t := time.Unix(0, used).UTC(); t.After(out[e.tok.ID]) {
					out[e.tok.ID] = t
				}
			}
		}
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

package apitoken

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apitoken/apitoken/internal/pathmatch"
)

// cacheEntry is what the verification cache keeps per token hash: the
// store's answer and what the request path derives from it, computed once.
type cacheEntry struct {
	tok       *Token // shared, read-only; nil when notFound
	notFound  bool
	expires   time.Duration // monotonic Clock reading after which the entry is stale
	key       string        // the limiter key: tok.LimiterKey()
	endpoints pathmatch.Set // compiled AllowedEndpoints

	touched  atomic.Int64 // monotonic reading of the last use noted in lastUsed
	lastUsed atomic.Int64 // wall-clock Unix nanoseconds of the latest use
	flushed  atomic.Int64 // the lastUsed value already written to the store
}

// newCacheEntry builds the entry for t. When t's stored patterns do not
// compile it returns the error with an entry that refuses every endpoint.
func newCacheEntry(t *Token, expires time.Duration) (*cacheEntry, error) {
	set, err := pathmatch.CompileAll(t.AllowedEndpoints) // on error: a Set that refuses all
	return &cacheEntry{
		tok:       t,
		expires:   expires,
		key:       t.LimiterKey(),
		endpoints: set,
	}, err
}

// noteUse records a verified use at wall-clock time wall and Monotonic
// reading mono, at most once a second per entry.
func (e *cacheEntry) noteUse(wall time.Time, mono time.Duration) {
	if last := time.Duration(e.touched.Load()); last != 0 && mono-last < time.Second {
		return
	}
	e.touched.Store(int64(mono))
	e.lastUsed.Store(wall.UnixNano())
}

// verifyCache maps token hashes to entries. Invalidation by id bumps a
// generation counter, so a fill that read the store before the
// invalidation cannot put the stale token back.
type verifyCache struct {
	mu      sync.RWMutex
	entries map[Hash]*cacheEntry
	byID    map[int64][]Hash // the hashes of each token's entries
	negs    int              // not-found entries
	maxNeg  int
	gen     atomic.Uint64

	pendMu  sync.Mutex
	pending map[int64]int64 // unflushed last uses of entries taken out
}

func newVerifyCache(maxNegative int) *verifyCache {
	return &verifyCache{
		entries: map[Hash]*cacheEntry{},
		byID:    map[int64][]Hash{},
		maxNeg:  maxNegative,
		pending: map[int64]int64{},
	}
}

func (c *verifyCache) get(h Hash) *cacheEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.entries[h]
}

// put stores e under h unless an invalidation happened since gen was read.
func (c *verifyCache) put(h Hash, e *cacheEntry, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	// The hash may now answer for another token, or for none (a rotated
	// token's old hash once its grace has ended).
	c.remove(h)
	if e.notFound {
		if c.maxNeg == 0 {
			return
		}
		if c.negs >= c.maxNeg {
			c.removeIf(func(x *cacheEntry) bool { return x.notFound })
		}
		c.negs++
	} else if id := e.tok.ID; !slices.Contains(c.byID[id], h) {
		c.byID[id] = append(c.byID[id], h)
	}
	c.entries[h] = e
}

// remove takes h's entry out, keeping the books: its last use for the
// flush, the count of not-found entries, its token's hashes. The caller
// holds mu.
func (c *verifyCache) remove(h Hash) {
	e := c.entries[h]
	if e == nil {
		return
	}
	delete(c.entries, h)
	if e.notFound {
		c.negs--
		return
	}
	c.retire(e)
	id := e.tok.ID
	if hs := slices.DeleteFunc(c.byID[id], func(x Hash) bool { return x == h }); len(hs) > 0 {
		c.byID[id] = hs
	} else {
		delete(c.byID, id)
	}
}

// removeIf removes every entry for which drop is true; the caller holds mu.
func (c *verifyCache) removeIf(drop func(*cacheEntry) bool) {
	for h, e := range c.entries {
		if drop(e) {
			c.remove(h)
		}
	}
}

// invalidate drops every entry of the token id.
func (c *verifyCache) invalidate(id int64) {
	c.gen.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range slices.Clone(c.byID[id]) {
		c.remove(h)
	}
}

// dropNegative forgets cached not-found answers (a token was created).
func (c *verifyCache) dropNegative() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.negs > 0 {
		c.removeIf(func(e *cacheEntry) bool { return e.notFound })
	}
}

// clear drops everything.
func (c *verifyCache) clear() {
	c.gen.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeIf(func(*cacheEntry) bool { return true })
}

// sweep drops entries stale at monotonic reading now, so tokens no longer
// used do not stay in memory. Entries of known tokens are kept for grace
// past their expiry, for stale-if-error.
func (c *verifyCache) sweep(now, grace time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeIf(func(e *cacheEntry) bool {
		if e.notFound {
			return now > e.expires
		}
		return now > e.expires+grace
	})
}

// retire keeps a removed entry's unflushed last use for the next flush.
func (c *verifyCache) retire(e *cacheEntry) {
	used := e.lastUsed.Load()
	if used == 0 || used <= e.flushed.Load() {
		return
	}
	c.pendMu.Lock()
	c.pending[e.tok.ID] = max(c.pending[e.tok.ID], used)
	c.pendMu.Unlock()
}

// lastUses collects every last use not yet written, per token. The caller
// calls commit once the store has accepted them, or hands them to restore.
func (c *verifyCache) lastUses() (used map[int64]time.Time, commit func()) {
	type mark struct {
		e    *cacheEntry
		used int64
	}
	c.pendMu.Lock()
	latest := c.pending
	c.pending = map[int64]int64{}
	c.pendMu.Unlock()

	var marks []mark
	c.mu.RLock()
	for _, e := range c.entries {
		if e.notFound {
			continue
		}
		if u := e.lastUsed.Load(); u > e.flushed.Load() {
			marks = append(marks, mark{e, u})
			latest[e.tok.ID] = max(latest[e.tok.ID], u)
		}
	}
	c.mu.RUnlock()

	used = make(map[int64]time.Time, len(latest))
	for id, u := range latest {
		used[id] = time.Unix(0, u).UTC()
	}
	return used, func() {
		for _, m := range marks {
			m.e.flushed.Store(m.used)
		}
	}
}

// restore gives back last uses that could not be written.
func (c *verifyCache) restore(used map[int64]time.Time) {
	c.pendMu.Lock()
	defer c.pendMu.Unlock()
	for id, t := range used {
		c.pending[id] = max(c.pending[id], t.UnixNano())
	}
}

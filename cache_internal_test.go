package apitoken

import (
	"math"
	"testing"
	"time"
	"unsafe"
)

func TestUnixNanoClamped(t *testing.T) {
	at := func(y int) *time.Time { v := time.Date(y, 12, 31, 23, 59, 59, 999999999, time.UTC); return &v }
	now := time.Date(2026, 11, 23, 12, 0, 0, 5, time.FixedZone("x", 3600))
	for _, tc := range []struct {
		name string
		in   *time.Time
		want int64
	}{
		{"nil", nil, math.MaxInt64},
		{"now", &now, now.UnixNano()},
		{"9999", at(9999), math.MaxInt64},
		{"2262 after the int64 range", at(2262), math.MaxInt64},
		{"1000", at(1000), math.MinInt64},
	} {
		if got := unixNanoClamped(tc.in); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	// A token expiring in year 9999 verifies; one a nanosecond past its
	// expiry does not.
	e, _ := newCacheEntry(&Token{ID: 1, Active: true, ExpiresAt: at(9999)}, 0)
	if now.UnixNano() >= e.expiresAt {
		t.Error("a token expiring in 9999 counts as expired")
	}
	e, _ = newCacheEntry(&Token{ID: 1, Active: true, ExpiresAt: &now}, 0)
	if now.UnixNano() < e.expiresAt || now.Add(-time.Nanosecond).UnixNano() >= e.expiresAt {
		t.Error("expiry is not exact to the nanosecond")
	}
}

// Entries whose hashes share the first 8 bytes (and so the shard and the
// map key) are chained; every operation finds, keeps or drops each of them
// by its full hash, wherever it sits in the chain.
func TestVerifyCacheCollisions(t *testing.T) {
	c := newVerifyCache(1000)
	hashes := make([]Hash, 4)
	for i := range hashes {
		hashes[i][0], hashes[i][1] = 7, 42 // same first 8 bytes
		hashes[i][31] = byte(i + 1)
	}
	s := c.shard(&hashes[0])
	found := func(id int64, expires int64) *cacheEntry {
		e, _ := newCacheEntry(&Token{ID: id, Active: true}, expires)
		return e
	}
	want := make([]*cacheEntry, len(hashes)) // what each hash must find
	put := func(i int, e *cacheEntry) {
		c.put(hashes[i], e, c.gen.Load())
		want[i] = e
	}
	check := func(step string) {
		t.Helper()
		n := 0
		for i, h := range hashes {
			if got := c.get(h); got != want[i] {
				t.Fatalf("%s: hash %d finds %p, want %p", step, i, got, want[i])
			}
			if want[i] != nil {
				n++
			}
		}
		chain := 0
		s.each(func(*cacheEntry) { chain++ })
		if chain != n {
			t.Fatalf("%s: %d entries in the shard, want %d", step, chain, n)
		}
		if n > 0 && len(s.m) != 1 {
			t.Fatalf("%s: %d map keys, want one chain", step, len(s.m))
		}
		negs := 0
		for _, e := range want {
			if e != nil && e.notFound {
				negs++
			}
		}
		if s.negs != negs {
			t.Fatalf("%s: negs %d, want %d", step, s.negs, negs)
		}
	}
	ids := func(step string, id int64, want ...int) {
		t.Helper()
		var got []int
		for _, h := range s.ids[id] {
			got = append(got, int(h[31])-1)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: ids[%d] holds hashes %v, want %v", step, id, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: ids[%d] holds hashes %v, want %v", step, id, got, want)
			}
		}
	}

	// The chain, head first, ends up 3 2 1 0: 0 and 3 are token 1 (3 as
	// its previous hash during a rotation), 2 is token 2 and 1 a negative
	// entry.
	put(0, found(1, 100))
	put(1, &cacheEntry{notFound: true, expires: 100})
	put(2, found(2, 300))
	put(3, found(1, 100))
	check("after put")
	ids("after put", 1, 0, 3)

	// Replacing an entry in the middle and one at the tail keeps one entry
	// per hash.
	// An unflushed last use of a replaced entry is kept for the flush.
	want[2].lastUsed.Store(40)
	put(2, found(2, 300))
	put(0, found(1, 100))
	check("after replace")
	if c.pending[2] != 40 {
		t.Fatalf("pending %v after replacing token 2's entry, want its last use 40", c.pending)
	}

	c.dropNegative()
	want[1] = nil
	check("after dropNegative")

	// A hash that answered for a token and now answers for none leaves
	// the token's hashes.
	put(3, &cacheEntry{notFound: true, expires: 100})
	check("after a negative answer replaced token 1's entry")
	ids("after a negative answer", 1, 0)

	// Last uses: token 2's is flushed; token 1's is not when its entry is
	// invalidated, and is kept for the next flush.
	want[2].lastUsed.Store(50)
	want[0].lastUsed.Store(70)
	used, commit := c.lastUses()
	if len(used) != 2 || used[1].UnixNano() != 70 || used[2].UnixNano() != 50 {
		t.Fatalf("last uses %v", used)
	}
	commit()
	want[0].lastUsed.Store(80)
	c.invalidate(1)
	want[0] = nil
	check("after invalidate(1)")
	if used, _ := c.lastUses(); len(used) != 1 || used[1].UnixNano() != 80 {
		t.Fatalf("last uses after invalidate %v, want token 1's 80", used)
	}

	// sweep drops entries that expired at 100 at the head and in the
	// middle of the chain (1 was put before 0, so the chain is 0 1 2 3).
	put(1, found(3, 100))
	put(0, found(1, 100))
	check("before sweep")
	c.sweep(200, 0)
	want[0], want[1], want[3] = nil, nil, nil
	check("after sweep")
	if len(s.ids) != 1 {
		t.Fatalf("ids %v after sweep, want token 2's only", s.ids)
	}

	// The tail of the chain goes too, behind an entry that stays (the
	// chain is 0 2).
	put(0, found(1, 500))
	c.sweep(400, 0)
	want[2] = nil
	check("after sweeping the tail")
	c.invalidate(1)
	want[0] = nil
	check("after invalidating the last entry")
	if len(s.m) != 0 || len(s.ids) != 0 {
		t.Fatalf("map %v ids %v, want both empty", s.m, s.ids)
	}

	put(2, found(2, 300))
	put(1, &cacheEntry{notFound: true, expires: 100})
	want[2].lastUsed.Store(90)
	c.clear()
	want[1], want[2] = nil, nil
	check("after clear")
	if c.pending[2] != 90 {
		t.Fatalf("pending %v after clear, want token 2's last use 90", c.pending)
	}
}

// A cache hit reads one cache line of the entry: the fields it reads lie in
// the first 64 bytes, and the entry's size is a size class whose objects
// start on a 64-byte boundary.
func TestCacheEntryLayout(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("the layout is tuned for 64-bit platforms")
	}
	var e cacheEntry
	if size := unsafe.Sizeof(e); size != 192 {
		t.Errorf("cacheEntry is %d bytes, want 192 (adjust its padding)", size)
	}
	hot := map[string]uintptr{
		"rest":      unsafe.Offsetof(e.rest) + unsafe.Sizeof(e.rest),
		"expires":   unsafe.Offsetof(e.expires) + unsafe.Sizeof(e.expires),
		"expiresAt": unsafe.Offsetof(e.expiresAt) + unsafe.Sizeof(e.expiresAt),
		"lastUsed":  unsafe.Offsetof(e.lastUsed) + unsafe.Sizeof(e.lastUsed),
		"tok":       unsafe.Offsetof(e.tok) + unsafe.Sizeof(e.tok),
		"notFound":  unsafe.Offsetof(e.notFound) + unsafe.Sizeof(e.notFound),
		"active":    unsafe.Offsetof(e.active) + unsafe.Sizeof(e.active),
	}
	for name, end := range hot {
		if end > 64 {
			t.Errorf("%s ends at byte %d, past the first cache line", name, end)
		}
	}
	// Entries on the heap start on a cache line.
	for range 100 {
		p := newCacheEntryForTest()
		if uintptr(unsafe.Pointer(p))%64 != 0 {
			t.Fatalf("an entry at %p is not 64-byte aligned", p)
		}
	}
}

var heapEntries []*cacheEntry

// newCacheEntryForTest returns an entry that escapes to the heap.
func newCacheEntryForTest() *cacheEntry {
	e, _ := newCacheEntry(&Token{ID: 1, Active: true}, 0)
	heapEntries = append(heapEntries, e)
	return e
}

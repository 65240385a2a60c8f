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

// Entries whose hashes share the shard byte and the map key are chained;
// every operation finds, keeps or drops each of them by its full hash.
func TestVerifyCacheCollisions(t *testing.T) {
	c := newVerifyCache(1000)
	hashes := make([]Hash, 4)
	for i := range hashes {
		hashes[i][0], hashes[i][1] = 7, 42 // same shard, same map key
		hashes[i][31] = byte(i + 1)
	}
	found := func(id int64, expires int64) *cacheEntry {
		e, _ := newCacheEntry(&Token{ID: id, Active: true}, expires)
		return e
	}
	// 0 and 2 are tokens 1 and 2; 1 is a negative entry; 3 is token 1
	// again (its previous hash during a rotation).
	c.put(hashes[0], found(1, 100), c.gen.Load())
	c.put(hashes[1], &cacheEntry{notFound: true, expires: 100}, c.gen.Load())
	c.put(hashes[2], found(2, 300), c.gen.Load())
	c.put(hashes[3], found(1, 100), c.gen.Load())
	s := c.shard(&hashes[0])
	if len(s.m) != 1 {
		t.Fatalf("%d map keys, want 1 chain", len(s.m))
	}
	check := func(step string, want ...bool) {
		t.Helper()
		for i, h := range hashes {
			e := c.get(h)
			if (e != nil) != want[i] {
				t.Fatalf("%s: hash %d present %v, want %v", step, i, e != nil, want[i])
			}
			if e != nil && e.rest != hashRest(&h) {
				t.Fatalf("%s: hash %d found the entry of another hash", step, i)
			}
		}
	}
	check("after put", true, true, true, true)

	// Replacing one entry keeps the others.
	c.put(hashes[2], found(2, 300), c.gen.Load())
	check("after replace", true, true, true, true)

	c.dropNegative()
	check("after dropNegative", true, false, true, true)
	if s.negs != 0 {
		t.Fatalf("negs %d", s.negs)
	}

	c.get(hashes[2]).lastUsed.Store(50)
	c.get(hashes[3]).lastUsed.Store(60)
	used, commit := c.lastUses()
	if len(used) != 2 || used[1].UnixNano() != 60 || used[2].UnixNano() != 50 {
		t.Fatalf("last uses %v", used)
	}
	commit()

	c.invalidate(1)
	check("after invalidate(1)", false, false, true, false)

	c.put(hashes[1], &cacheEntry{notFound: true, expires: 100}, c.gen.Load())
	c.put(hashes[0], found(1, 100), c.gen.Load())
	c.sweep(200, 0) // drops every entry that expired at 100
	check("after sweep", false, false, true, false)
	if len(s.ids) != 1 || s.negs != 0 {
		t.Fatalf("ids %v negs %d after sweep", s.ids, s.negs)
	}

	c.clear()
	check("after clear", false, false, false, false)
	if len(s.m) != 0 {
		t.Fatal("clear left chains")
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

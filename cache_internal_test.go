package apitoken

import (
	"math"
	"testing"
	"time"
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

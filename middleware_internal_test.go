package apitoken

import (
	"strconv"
	"testing"
	"time"
)

func TestResetTextRoundsUpToTheSecond(t *testing.T) {
	base := time.Date(2025, 1, 15, 10, 31, 0, 0, time.UTC)
	e := &cacheEntry{}
	tests := []struct {
		name string
		in   time.Time
		want string
	}{
		{"whole second", base, "2025-01-15T10:31:00.000Z"},
		{"1 ns later", base.Add(time.Nanosecond), "2025-01-15T10:31:01.000Z"},
		{"999 ms later", base.Add(999 * time.Millisecond), "2025-01-15T10:31:01.000Z"},
		{"other zone", base.In(time.FixedZone("x", 3600)), "2025-01-15T10:31:00.000Z"},
		{"cached again", base, "2025-01-15T10:31:00.000Z"},
		{"year end", time.Date(1999, 12, 31, 23, 59, 59, 1, time.UTC), "2000-01-01T00:00:00.000Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := e.resetText(tt.in); got != tt.want {
				t.Fatalf("resetText(%v) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestIntText(t *testing.T) {
	for _, n := range []int{-5, 0, 7, 9999, 10000, 123456} {
		want := strconv.Itoa(max(n, 0))
		if got := intText(n); got != want {
			t.Errorf("intText(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestCanonical(t *testing.T) {
	tests := []struct {
		name, p, c string
		want       bool
	}{
		{"same", "/a/b", "/a/b", true},
		{"trailing slash", "/a/b/", "/a/b", true},
		{"dot dot", "/a/../b", "/b", false},
		{"double slash", "//a", "/a", false},
		{"two trailing slashes", "/a//", "/a", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := canonical(tt.p, tt.c); got != tt.want {
				t.Fatalf("canonical(%q, %q) = %t", tt.p, tt.c, got)
			}
		})
	}
}

package apitoken

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestSetLimitHeaders(t *testing.T) {
	base := time.Date(2025, 1, 15, 10, 31, 0, 0, time.UTC)
	tests := []struct {
		name      string
		d         Decision
		remaining string
		reset     string
	}{
		{"whole second", Decision{Limit: 500, Remaining: 499, Reset: base}, "499", "2025-01-15T10:31:00.000Z"},
		{"1 ns later rounds up", Decision{Limit: 500, Reset: base.Add(time.Nanosecond)}, "0", "2025-01-15T10:31:01.000Z"},
		{"999 ms later rounds up", Decision{Limit: 5, Reset: base.Add(999 * time.Millisecond)}, "0", "2025-01-15T10:31:01.000Z"},
		{"other zone shown in UTC", Decision{Limit: 5, Reset: base.In(time.FixedZone("x", 3600))}, "0", "2025-01-15T10:31:00.000Z"},
		{"before 1970", Decision{Limit: 5, Reset: time.Date(1969, 12, 31, 23, 59, 58, 500_000_000, time.UTC)}, "0", "1969-12-31T23:59:59.000Z"},
		{"negative remaining shown as 0", Decision{Limit: 5, Remaining: -1, Reset: base}, "0", "2025-01-15T10:31:00.000Z"},
		{"large numbers", Decision{Limit: 1_000_000, Remaining: 123_456, Reset: base}, "123456", "2025-01-15T10:31:00.000Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			setLimitHeaders(h, tt.d)
			if got := h.Get("X-RateLimit-Remaining"); got != tt.remaining {
				t.Errorf("X-RateLimit-Remaining = %q, want %q", got, tt.remaining)
			}
			if got := h.Get("X-RateLimit-Reset"); got != tt.reset {
				t.Errorf("X-RateLimit-Reset = %q, want %q", got, tt.reset)
			}
			if got, want := h.Get("X-RateLimit-Limit"), strconv.Itoa(tt.d.Limit); got != want {
				t.Errorf("X-RateLimit-Limit = %q, want %q", got, want)
			}
		})
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

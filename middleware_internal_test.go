package apitoken

import (
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apitoken/apitoken/internal/pathmatch"
)

func TestResetTextRoundsUpToTheSecond(t *testing.T) {
	base := time.Date(2025, 1, 15, 10, 31, 0, 0, time.UTC)
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
		{"same slot, 4096 s later", base.Add(4096 * time.Second), "2025-01-15T11:39:16.000Z"},
		{"same slot, the first second again", base, "2025-01-15T10:31:00.000Z"},
		{"year end", time.Date(1999, 12, 31, 23, 59, 59, 1, time.UTC), "2000-01-01T00:00:00.000Z"},
		{"before 1970", time.Date(1969, 12, 31, 23, 59, 58, 500_000_000, time.UTC), "1969-12-31T23:59:59.000Z"},
		{"whole second before 1970", time.Date(1969, 12, 31, 23, 59, 58, 0, time.UTC), "1969-12-31T23:59:58.000Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := resetTextFor(resetSecond(tt.in)); got != tt.want {
				t.Fatalf("resetTextFor(resetSecond(%v)) = %s, want %s", tt.in, got, tt.want)
			}
			if got, want := ceilSecond(tt.in.UnixNano()), resetSecond(tt.in); got != want {
				t.Fatalf("ceilSecond(%d) = %d, resetSecond gives %d", tt.in.UnixNano(), got, want)
			}
		})
	}
}

func TestFormatReset(t *testing.T) {
	secs := []int64{0, 1, -1, 59, 86399, 86400, 951782400 /* 2000-02-29 */, 1736937060, 253402300799, 253402300800, -62135596800, -62135596801}
	for i := int64(0); i < 2000; i++ {
		secs = append(secs, i*1_234_567_891%253402300800)
	}
	for _, sec := range secs {
		want := time.Unix(sec, 0).UTC().Format(resetLayout)
		if got := formatReset(sec); got != want {
			t.Fatalf("formatReset(%d) = %q, want %q", sec, got, want)
		}
	}
}

func TestRoundMicro(t *testing.T) {
	ds := []time.Duration{0, 1, 499, 500, 501, 999, 1000, 1499, 1500, -1, -500, -501, -1500,
		math.MaxInt64, math.MaxInt64 - 499, math.MaxInt64 - 500, math.MaxInt64 - 501, math.MinInt64}
	for i := time.Duration(0); i < 5000; i++ {
		ds = append(ds, i*7919, i*104729*1000+i)
	}
	for _, d := range ds {
		if got, want := roundMicro(d), d.Round(time.Microsecond); got != want {
			t.Fatalf("roundMicro(%d) = %d, want %d", d, got, want)
		}
	}
}

func TestIntText(t *testing.T) {
	ns := []int{-5, 10000, 123456}
	for n := range smallIntsLen {
		ns = append(ns, n)
	}
	for _, n := range ns {
		want := strconv.Itoa(max(n, 0))
		if got := intText(n); got != want {
			t.Fatalf("intText(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestCleanPath(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"root", "/", "/"},
		{"clean", "/api/products/123", "/api/products/123"},
		{"empty", "", "/"},
		{"relative", "api/x", "/api/x"},
		{"trailing slash", "/api/", "/api"},
		{"double slash", "/api//x", "/api/x"},
		{"dot", "/api/./x", "/api/x"},
		{"dot dot", "/api/../x", "/x"},
		{"dot at the end", "/api/.", "/api"},
		{"dot file", "/api/.well-known", "/api/.well-known"},
		{"dots in a name", "/a..b/c.", "/a..b/c."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cleanPath(tt.in); got != tt.want {
				t.Fatalf("cleanPath(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzCleanPath checks cleanPath's shortcut against pathmatch.Clean.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/", "", "/a/b", "/a/", "//a", "/a/./b", "/a/../b", "/.", "/..", "a", "/a/.b", "/a./b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if got, want := cleanPath(p), pathmatch.Clean(p); got != want {
			t.Fatalf("cleanPath(%q) = %q, pathmatch.Clean gives %q", p, got, want)
		}
	})
}

// FuzzTokenFromAuthorization checks the middleware's shortcut for
// "Bearer <token>" against bearerCredentials.
func FuzzTokenFromAuthorization(f *testing.F) {
	for _, s := range []string{"Bearer atk_abc", "bearer atk_abc", "Bearer  atk_abc", "Bearer atk_abc ", " Bearer atk_abc",
		"Bearer ", "Bearer", "Basic dXNlcjpwdw==", "Bearer atk\u00a0", "Bearer a b", "Bearer \u0085x"} {
		f.Add(s)
	}
	mw := &middleware{}
	f.Fuzz(func(t *testing.T, v string) {
		r := &http.Request{Header: http.Header{"Authorization": {v}}, URL: &url.URL{}}
		want, ok := bearerCredentials(v)
		if !ok {
			want = ""
		}
		if got := mw.token(r); got != want {
			t.Fatalf("token from Authorization %q = %q, bearerCredentials gives %q", v, got, want)
		}
	})
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

func TestReadClock(t *testing.T) {
	epochAt := func(d time.Duration) func() *clockEpoch {
		return func() *clockEpoch {
			at := time.Now().Add(d)
			return &clockEpoch{at: at, wall: at.UnixNano()}
		}
	}
	tests := []struct {
		name  string
		epoch func() *clockEpoch
		renew bool
	}{
		{"no epoch yet", func() *clockEpoch { return nil }, true},
		{"current epoch", epochAt(0), false},
		{"epoch too old", epochAt(-2 * clockEpochLen), true},
		{"epoch ahead of the clock", epochAt(time.Hour), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := tt.epoch()
			clockEpochs.Store(ep)
			before := time.Now()
			r := readClock()
			after := time.Now()
			// An epoch is renewed when it is too old or ahead; a current one
			// may have aged past clockEpochLen on a slow machine.
			if renewed := r.ep != ep; renewed != tt.renew && (tt.renew || after.Sub(ep.at) < clockEpochLen) {
				t.Fatalf("epoch renewed: %t, want %t", renewed, tt.renew)
			}
			// The derived time is the wall clock's, but for the drift since
			// the epoch (none to speak of here).
			if r.wall.Before(before.Add(-time.Millisecond)) || r.wall.After(after.Add(time.Millisecond)) {
				t.Fatalf("readClock() = %v, outside [%v, %v]", r.wall, before, after)
			}
			if strings.Contains(r.wall.String(), "m=") {
				t.Fatalf("readClock() = %v has a monotonic reading", r.wall)
			}
			if d := r.since(); d < 0 || d > time.Since(before) {
				t.Fatalf("since() = %v, more than the %v since the reading", d, time.Since(before))
			}
			if next := readClock(); next.ep == r.ep && next.wall.Before(r.wall) {
				t.Fatalf("next reading %v before %v in one epoch", next.wall, r.wall)
			}
		})
	}
}

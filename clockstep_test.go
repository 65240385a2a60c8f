package apitoken_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
)

// A step of the wall clock (NTP, a resumed VM) neither locks a busy token
// out nor gives it quota: the rate-limit window runs on the monotonic clock.
func TestWallClockStepRateLimit(t *testing.T) {
	for _, step := range []time.Duration{-10 * time.Minute, 10 * time.Minute} {
		t.Run(step.String(), func(t *testing.T) {
			m, _, clk := newManager(t)
			_, plain := mustCreate(t, m, apitoken.CreateParams{RateLimit: ptr(5)})
			h := apitoken.Middleware(m)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			do := func() *httptest.ResponseRecorder { return getProducts(h, plain) }
			for i := range 5 {
				if w := do(); w.Code != 200 {
					t.Fatalf("request %d: %d", i+1, w.Code)
				}
			}
			clk.StepWall(step)
			if w := do(); w.Code != 429 {
				t.Fatalf("right after the step: %d, want 429 (no extra quota)", w.Code)
			}
			clk.Advance(time.Minute - time.Nanosecond)
			if w := do(); w.Code != 429 {
				t.Fatalf("1 ns before the window ends: %d, want 429", w.Code)
			}
			clk.Advance(time.Nanosecond)
			w := do()
			if w.Code != 200 {
				t.Fatalf("a window after the first requests: %d, want 200 (not locked out)", w.Code)
			}
			// The reset time shown is on the (stepped) wall clock: a minute
			// from now, as the client's clock sees it.
			if got, want := w.Header().Get("X-RateLimit-Reset"), clk.Now().Add(time.Minute).UTC().Format("2006-01-02T15:04:05.000Z07:00"); got != want {
				t.Errorf("X-RateLimit-Reset = %s, want %s", got, want)
			}
		})
	}
}

// A wall-clock step neither ends a cache entry early (a store lookup per
// request for the length of a forward step) nor keeps it past its TTL.
func TestWallClockStepCacheTTL(t *testing.T) {
	for _, step := range []time.Duration{-10 * time.Minute, 10 * time.Minute} {
		t.Run(step.String(), func(t *testing.T) {
			m, st, clk := newManager(t, apitoken.WithCacheTTL(30*time.Second))
			_, plain := mustCreate(t, m, apitoken.CreateParams{})
			ctx := context.Background()
			verify := func(wantLookups int64) {
				t.Helper()
				if _, err := m.Verify(ctx, plain); err != nil {
					t.Fatal(err)
				}
				if n := st.byHash.Load(); n != wantLookups {
					t.Fatalf("%d store lookups, want %d", n, wantLookups)
				}
			}
			verify(1)
			clk.StepWall(step)
			verify(1) // still cached
			clk.Advance(30 * time.Second)
			verify(1) // the TTL's last instant
			clk.Advance(time.Nanosecond)
			verify(2) // expired on the monotonic clock, whatever the wall says
		})
	}
}

// Response times are measured on the monotonic clock; the event's time is
// the wall-clock time the request came in.
func TestResponseTimeIgnoresWallClockSteps(t *testing.T) {
	ev := &events{}
	m, _, clk := newManager(t, apitoken.WithSink(ev))
	_, plain := mustCreate(t, m, apitoken.CreateParams{})
	start := clk.Now()
	h := apitoken.Middleware(m)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		clk.StepWall(-time.Hour)
		clk.Advance(1500*time.Microsecond + 400*time.Nanosecond)
	}))
	r := httptest.NewRequest("GET", "/products", nil)
	r.Header.Set("Authorization", "Bearer "+plain)
	h.ServeHTTP(httptest.NewRecorder(), r)
	evs := ev.list()
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	if evs[0].ResponseTime != 1500*time.Microsecond || !evs[0].Time.Equal(start) {
		t.Fatalf("response time %v at %v, want 1.5ms at %v", evs[0].ResponseTime, evs[0].Time, start)
	}
}

package apitoken_test

import (
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/internal/benchutil"
	"github.com/apitoken/apitoken/store/memory"
)

// discardUsage is a UsageStore that counts the events written and keeps
// none, so long benchmarks do not grow the heap.
type discardUsage struct {
	apitoken.UsageStore
	n atomic.Int64
}

func (d *discardUsage) RecordUsage(_ context.Context, evs []apitoken.Event) error {
	d.n.Add(int64(len(evs)))
	return nil
}

var bareHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header()["Content-Type"] = []string{"application/json"}
	_, _ = io.WriteString(w, `{"products":[]}`)
})

// benchSetup returns a Manager whose usage events go through its own
// pipeline to a discarding store (unless opts say otherwise), and a token
// allowed /products* and /stores/*/brands.
func benchSetup(b *testing.B, opts ...apitoken.Option) (*apitoken.Manager, string) {
	b.Helper()
	st := memory.New()
	all := append([]apitoken.Option{apitoken.WithUsageStore(&discardUsage{UsageStore: st}), apitoken.WithLogger(discardLogger())}, opts...)
	m, err := apitoken.NewManager(st, all...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close(context.Background()) })
	_, plain, err := m.Create(context.Background(), apitoken.CreateParams{
		Name: "bench", RateLimit: ptr(apitoken.MaxRateLimit), AllowedEndpoints: []string{"/products*", "/stores/*/brands"},
	})
	if err != nil {
		b.Fatal(err)
	}
	return m, plain
}

// BenchmarkVerifyCacheHit: parse + SHA-256 + one map lookup.
func BenchmarkVerifyCacheHit(b *testing.B) {
	m, plain := benchSetup(b)
	ctx := context.Background()
	if _, err := m.Verify(ctx, plain); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Verify(ctx, plain); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCacheHitParallel(b *testing.B) {
	m, plain := benchSetup(b)
	ctx := context.Background()
	_, _ = m.Verify(ctx, plain)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.Verify(ctx, plain); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkVerifyRejectMalformed: a forged token costs no hashing or lookup.
func BenchmarkVerifyRejectMalformed(b *testing.B) {
	m, plain := benchSetup(b)
	forged := otherLast(plain)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_, _ = m.Verify(ctx, forged)
	}
}

// benchLimiter is an in-process limiter on the real clock, as in
// production, with a 10 ms window: millions of requests a second stay far
// below the token's limit and the log of one window stays small. The cost
// of a decision does not depend on the window's length.
func benchLimiter() *apitoken.MemoryLimiter {
	return apitoken.NewMemoryLimiter(10*time.Millisecond, nil)
}

// serveLoop serves the same allowed request b.N times.
func serveLoop(b *testing.B, h http.Handler, plain string) {
	r := httptest.NewRequest("GET", "/api/products/123", nil)
	r.Header.Set("Authorization", "Bearer "+plain)
	r.Header.Set("User-Agent", "bench")
	benchutil.ServeLoop(b, h, r)
}

// BenchmarkMiddleware compares a bare handler with the full path in front of
// it: cached token, endpoint check, memory limiter, headers, recording
// writer and one event queued to the usage pipeline. The difference is the
// middleware's overhead.
func BenchmarkMiddleware(b *testing.B) {
	m, plain := benchSetup(b)
	full := apitoken.Middleware(m, apitoken.WithBasePath("/api"), apitoken.WithLimiter(benchLimiter()))(bareHandler)
	b.Run("bare", func(b *testing.B) { serveLoop(b, bareHandler, plain) })
	b.Run("full", func(b *testing.B) { serveLoop(b, full, plain) })
}

func BenchmarkMiddlewareParallel(b *testing.B) {
	m, plain := benchSetup(b)
	full := apitoken.Middleware(m, apitoken.WithBasePath("/api"), apitoken.WithLimiter(benchLimiter()))(bareHandler)
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"bare", bareHandler}, {"full", full}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := httptest.NewRequest("GET", "/api/products/123", nil)
				r.Header.Set("Authorization", "Bearer "+plain)
				w := benchutil.NewDiscardWriter()
				for pb.Next() {
					w.Serve(bc.h, r)
				}
			})
		})
	}
}

// BenchmarkFloor is the least any verifying, limiting, recording middleware
// must do per request: SHA-256 of the token, one map lookup, one limiter
// decision and one queued event. The middleware's overhead is judged
// against it (and against the bare handler) in the same run.
func BenchmarkFloor(b *testing.B) {
	_, plain := benchSetup(b)
	limiter := benchLimiter()
	var queue eventQueue
	tokens := map[[32]byte]int64{sha256.Sum256([]byte(plain)): 1}
	ctx := context.Background()
	var buf [96]byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := copy(buf[:], plain)
		id := tokens[sha256.Sum256(buf[:n])]
		if d, _ := limiter.Allow(ctx, "1", apitoken.MaxRateLimit); !d.Allowed {
			b.Fatal("refused")
		}
		queue.Record(apitoken.Event{TokenID: id, Endpoint: "/products/123", Method: "GET", StatusCode: 200, Time: time.Now()})
	}
}

// eventQueue is the least a sink can do: append under a lock, and start
// again after a batch.
type eventQueue struct {
	mu sync.Mutex
	q  []apitoken.Event
}

func (s *eventQueue) Record(e apitoken.Event) {
	s.mu.Lock()
	if len(s.q) == 1000 {
		s.q = s.q[:0]
	}
	s.q = append(s.q, e)
	s.mu.Unlock()
}

// BenchmarkMiddlewareParts splits the middleware's cost: verification,
// endpoint check and context only; plus the limiter and its headers; plus
// the usage event (the full path).
func BenchmarkMiddlewareParts(b *testing.B) {
	m, plain := benchSetup(b)
	quiet, quietPlain := benchSetup(b, apitoken.WithSink(nil))
	limiter := benchLimiter()
	variants := []struct {
		name  string
		h     http.Handler
		plain string
	}{
		{"bare", bareHandler, plain},
		{"verify+context", apitoken.Middleware(quiet, apitoken.WithBasePath("/api"), apitoken.WithLimiter(nil))(bareHandler), quietPlain},
		{"+limiter", apitoken.Middleware(quiet, apitoken.WithBasePath("/api"), apitoken.WithLimiter(limiter))(bareHandler), quietPlain},
		{"+usage(full)", apitoken.Middleware(m, apitoken.WithBasePath("/api"), apitoken.WithLimiter(limiter))(bareHandler), plain},
	}
	for _, bc := range variants {
		b.Run(bc.name, func(b *testing.B) { serveLoop(b, bc.h, bc.plain) })
	}
}

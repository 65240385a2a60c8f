package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/internal/benchutil"
	"github.com/apitoken/apitoken/store/memory"
	"github.com/go-chi/httprate"
)

func serveLoop(b *testing.B, h http.Handler, authorization string) {
	r := httptest.NewRequest("GET", Path, nil)
	r.RemoteAddr = "192.0.2.1:1234"
	r.Header.Set("User-Agent", "bench")
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	benchutil.ServeLoop(b, h, r)
}

// BenchmarkContenders serves Path through every contender the environment
// allows (naive with APITOKEN_TEST_POSTGRES_DSN, apitoken-redis with
// APITOKEN_TEST_REDIS_ADDR). With -count N the contenders alternate
// (A B C A B C ...), so the machine's drift spreads over all of them.
func BenchmarkContenders(b *testing.B) {
	cs, err := Contenders(context.Background(), Config{
		PostgresDSN: os.Getenv("APITOKEN_TEST_POSTGRES_DSN"),
		RedisAddr:   os.Getenv("APITOKEN_TEST_REDIS_ADDR"),
		ShortWindow: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	for _, c := range cs {
		b.Run(c.Name, func(b *testing.B) { serveLoop(b, c.Handler, c.Authorization) })
	}
}

// BenchmarkHttprateReference measures go-chi/httprate's LimitByIP (a popular
// middleware that only rate-limits) in front of Bare, the same handler the
// root package's BenchmarkMiddleware wraps: the yardstick the middleware's
// overhead is compared with (it lives here so that the root module does not
// depend on httprate).
func BenchmarkHttprateReference(b *testing.B) {
	//lint:ignore SA1019 the yardstick is the middleware users pick; its deprecation is about the key behind a proxy, not its cost
	serveLoop(b, httprate.LimitByIP(1<<30, time.Minute)(Bare), "")
}

// scaleSizes are the store sizes of BenchmarkScale; APITOKEN_BENCH_SCALE
// (a comma-free single number) replaces the largest, e.g. for a short run.
func scaleSizes(b *testing.B) []int {
	sizes := []int{1_000, 100_000, 1_000_000}
	if s := os.Getenv("APITOKEN_BENCH_SCALE"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1000 {
			b.Fatalf("APITOKEN_BENCH_SCALE=%q: want a number of at least 1000", s)
		}
		sizes = []int{1_000, n}
	}
	return sizes
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// inOneBuffer returns prefix+s for each s, laid out back to back in one
// buffer, as a request's token lies in its freshly read header: reading
// the next one is not a trip to memory of its own.
func inOneBuffer(prefix string, ss []string) []string {
	var buf []byte
	for _, s := range ss {
		buf = append(buf, prefix+s...)
	}
	all, out := string(buf), make([]string, len(ss))
	for i, s := range ss {
		n := len(prefix) + len(s)
		out[i], all = all[:n], all[n:]
	}
	return out
}

// hotTokens is how many tokens send the requests of verify-hot.
const hotTokens = 1000

// BenchmarkScale measures Verify and the full middleware with n tokens in the
// store, all of them cached, cycling through every token (so a large n pays
// its CPU-cache misses); Verify again with requests from hotTokens of them
// (the store's size alone); and reports the memory per cached token and
// per limiter key.
func BenchmarkScale(b *testing.B) {
	ctx := context.Background()
	for _, n := range scaleSizes(b) {
		// A TTL longer than the setup and the run: the benchmark measures
		// cache hits, not refills.
		m, err := apitoken.NewManager(memory.New(memory.WithMaxAudit(0)), apitoken.WithLogger(quietLogger()),
			apitoken.WithUsageStore(nil), apitoken.WithCacheTTL(time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		// The plaintexts lie one after another in one buffer.
		created := make([]string, n)
		for i := range created {
			_, p, err := m.Create(ctx, apitoken.CreateParams{Name: "t" + strconv.Itoa(i), RateLimit: ptrTo(apitoken.MaxRateLimit)})
			if err != nil {
				b.Fatal(err)
			}
			created[i] = p
		}
		headers := inOneBuffer("Bearer ", created)
		plains := make([]string, n)
		for i, h := range headers {
			plains[i] = h[len("Bearer "):]
		}
		before := heapInUse()
		for _, p := range plains {
			if _, err := m.Verify(ctx, p); err != nil {
				b.Fatal(err)
			}
		}
		perToken := float64(heapInUse()-before) / float64(n)

		// The real clock and the one-minute window: every key stays in
		// the limiter for the whole run, as with steady traffic.
		limiter := apitoken.NewMemoryLimiter(0, nil)
		keys := make([]string, n)
		for i := range keys {
			keys[i] = strconv.Itoa(i + 1)
		}
		before = heapInUse()
		for _, k := range keys {
			_, _ = limiter.Allow(ctx, k, apitoken.MaxRateLimit)
		}
		perKey := float64(heapInUse()-before) / float64(n)
		full := apitoken.Middleware(m, apitoken.WithBasePath("/api"), apitoken.WithLimiter(limiter))(Bare)

		b.Run(fmt.Sprintf("verify/tokens=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.ReportMetric(perToken, "B/cached-token")
			for i := 0; i < b.N; i++ {
				if _, err := m.Verify(ctx, plains[i%n]); err != nil {
					b.Fatal(err)
				}
			}
		})
		// The same store with traffic from 1,000 of its tokens, spread over
		// it: the cost of the store's size alone, apart from the CPU-cache
		// misses of a working set of n tokens.
		// Their plaintexts are copied into one buffer, as for all tokens.
		var spread []string
		for i := 0; i < n && len(spread) < hotTokens; i += max(n/hotTokens, 1) {
			spread = append(spread, plains[i])
		}
		hot := inOneBuffer("", spread)
		b.Run(fmt.Sprintf("verify-hot/tokens=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := m.Verify(ctx, hot[i%len(hot)]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("middleware/tokens=%d", n), func(b *testing.B) {
			r := httptest.NewRequest("GET", Path, nil)
			w := benchutil.NewDiscardWriter()
			b.ReportAllocs()
			b.ReportMetric(perKey, "B/limiter-key")
			for i := 0; i < b.N; i++ {
				r.Header["Authorization"] = []string{headers[i%n]}
				w.Serve(full, r)
			}
		})
		_ = m.Close(ctx)
	}
}

package apitokenredis_test

import (
	"context"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apitoken/apitoken"
	apitokenredis "github.com/apitoken/apitoken/adapters/redis"
)

// benchKeys is the number of tokens the benchmarks spread requests over;
// the limit is never reached, so every request is counted.
const (
	benchKeys  = 1024
	benchLimit = 1 << 30
)

var keyNames = func() []string {
	k := make([]string, benchKeys)
	for i := range k {
		k[i] = strconv.Itoa(i)
	}
	return k
}()

// BenchmarkAllow measures decisions per second and the latency of one
// decision (p50, p99) from one goroutine and from 64, for the Redis limiter
// and, for scale, apitoken.MemoryLimiter.
func BenchmarkAllow(b *testing.B) {
	limiters := []struct {
		name string
		new  func(b *testing.B) apitoken.Limiter
	}{
		{"memory", func(*testing.B) apitoken.Limiter { return apitoken.NewMemoryLimiter(0, nil) }},
		{"redis", func(b *testing.B) apitoken.Limiter {
			c, prefix := testRedis(b)
			return apitokenredis.New(c, apitokenredis.WithPrefix(prefix), apitokenredis.WithTimeout(generous), apitokenredis.WithFailClosed())
		}},
		{"redis-ctxtimeout", func(b *testing.B) apitoken.Limiter {
			c, prefix := testRedis(b, func(o *redis.Options) { o.ContextTimeoutEnabled = true })
			return apitokenredis.New(c, apitokenredis.WithPrefix(prefix), apitokenredis.WithTimeout(generous), apitokenredis.WithFailClosed())
		}},
	}
	for _, lt := range limiters {
		for _, goroutines := range []int{1, 64} {
			b.Run(lt.name+"/goroutines="+strconv.Itoa(goroutines), func(b *testing.B) {
				benchLimiter(b, lt.new(b), goroutines)
			})
		}
	}
}

// BenchmarkLocalRefusal measures a request for a token over its limit:
// refused from the local cache, without a round trip.
func BenchmarkLocalRefusal(b *testing.B) {
	c, prefix := testRedis(b)
	l := apitokenredis.New(c, apitokenredis.WithPrefix(prefix), apitokenredis.WithTimeout(generous), apitokenredis.WithFailClosed())
	ctx := context.Background()
	for range 2 {
		if _, err := l.Allow(ctx, "k", 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if d, err := l.Allow(ctx, "k", 1); err != nil || d.Allowed {
				b.Fatalf("%+v, %v", d, err)
			}
		}
	})
}

func benchLimiter(b *testing.B, l apitoken.Limiter, goroutines int) {
	ctx := context.Background()
	var (
		mu  sync.Mutex
		all []time.Duration
	)
	record := func(lat []time.Duration) {
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if goroutines == 1 {
		lat := make([]time.Duration, 0, b.N)
		for i := range b.N {
			t := time.Now()
			if _, err := l.Allow(ctx, keyNames[i%benchKeys], benchLimit); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t))
		}
		record(lat)
	} else {
		b.SetParallelism(max(1, goroutines/runtime.GOMAXPROCS(0)))
		var next sync.Mutex
		seq := 0
		b.RunParallel(func(pb *testing.PB) {
			next.Lock()
			i := seq * 7919
			seq++
			next.Unlock()
			lat := make([]time.Duration, 0, 1024)
			for pb.Next() {
				t := time.Now()
				if _, err := l.Allow(ctx, keyNames[i%benchKeys], benchLimit); err != nil {
					b.Error(err)
					return
				}
				lat = append(lat, time.Since(t))
				i++
			}
			record(lat)
		})
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if bs, ok := l.(interface{ BatchStats(testing.TB) }); ok {
		bs.BatchStats(b)
	}
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "decisions/s")
	b.ReportMetric(float64(all[len(all)*50/100].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Nanoseconds())/1e3, "p99-µs")
}

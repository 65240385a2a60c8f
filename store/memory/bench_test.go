package memory_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/memory"
	"github.com/apitoken/apitoken/store/storetest"
)

// benchStore returns a store with n tokens shaped like real ones, and their
// hashes.
func benchStore(b *testing.B, n int, opts ...memory.Option) (*memory.Store, []apitoken.Hash, []int64) {
	s := memory.New(opts...)
	exp := base.Add(365 * 24 * time.Hour)
	hashes := make([]apitoken.Hash, n)
	ids := make([]int64, n)
	for i := range n {
		tok := &apitoken.Token{
			Name: fmt.Sprint("token ", i), Description: "bench", Start: "atk_abcdef", Active: true, RateLimit: 100,
			AllowedEndpoints: []string{"/products*", "/stores*"}, Scopes: []string{"read"},
			Metadata: map[string]string{"env": "prod"}, ExpiresAt: &exp, CreatedAt: base, UpdatedAt: base,
		}
		hashes[i] = storetest.NewHash(b, tok.Name)
		if err := s.CreateToken(context.Background(), tok, hashes[i]); err != nil {
			b.Fatal(err)
		}
		ids[i] = tok.ID
	}
	return s, hashes, ids
}

func BenchmarkGetTokenByHash(b *testing.B) {
	s, hashes, _ := benchStore(b, 10_000)
	ctx := context.Background()
	b.ReportAllocs()
	b.Run("Serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := s.GetTokenByHash(ctx, hashes[i%len(hashes)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := s.GetTokenByHash(ctx, hashes[i%len(hashes)]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}

// BenchmarkRecordUsage records batches of 1,000 events (the default batch
// of the Manager's usage pipeline) over 100 tokens; ns/op is per batch, ns/event per event. The store
// is first filled past its raw-event cap, so every measured batch also trims
// 1,000 old events (the steady state of a long-running service).
func BenchmarkRecordUsage(b *testing.B) {
	for _, max := range []int{memory.DefaultMaxEvents, 0} {
		b.Run(fmt.Sprint("MaxEvents=", max), func(b *testing.B) {
			s, _, ids := benchStore(b, 100, memory.WithMaxEvents(max))
			ctx := context.Background()
			endpoints := []string{"/products", "/products/1", "/stores", "/categories/7", "/orders"}
			batch := make([]apitoken.Event, 1000)
			ip := netip.MustParseAddr("192.168.1.100")
			at := base
			record := func() {
				for i := range batch {
					at = at.Add(100 * time.Millisecond)
					batch[i] = apitoken.Event{
						TokenID: ids[i%len(ids)], Endpoint: endpoints[i%len(endpoints)], Method: "GET",
						StatusCode: 200, ResponseTime: 3 * time.Millisecond, IP: ip,
						UserAgent: "WordPress/6.4; https://example.com", Time: at,
					}
				}
				if err := s.RecordUsage(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			for range max/len(batch) + 1 {
				record()
			}
			b.ReportAllocs()
			for b.Loop() {
				record()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/event")
		})
	}
}

func BenchmarkTokenUsage(b *testing.B) {
	s, _, ids := benchStore(b, 10)
	ctx := context.Background()
	batch := make([]apitoken.Event, 0, 100_000)
	for i := range cap(batch) {
		batch = append(batch, apitoken.Event{
			TokenID: ids[i%len(ids)], Endpoint: fmt.Sprint("/p/", i%20), Method: "GET", StatusCode: 200,
			ResponseTime: time.Millisecond, Time: base.Add(time.Duration(i) * 5 * time.Second),
		})
	}
	if err := s.RecordUsage(ctx, batch); err != nil {
		b.Fatal(err)
	}
	q := apitoken.Query{From: base, To: base.Add(7 * 24 * time.Hour)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.TokenUsage(ctx, ids[0], q); err != nil {
			b.Fatal(err)
		}
	}
}

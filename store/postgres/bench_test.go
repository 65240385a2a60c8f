package postgres_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/apitoken/apitoken"
)

const benchBatch = 1000

// benchEvents returns a batch of realistic events over tokens ids.
func benchEvents(ids []int64) []apitoken.Event {
	events := make([]apitoken.Event, benchBatch)
	for i := range events {
		events[i] = apitoken.Event{
			TokenID: ids[i%len(ids)], Endpoint: fmt.Sprintf("/products/%d", i%50), Route: "/products/{id}",
			Method: "GET", StatusCode: 200 + i%5*100, ResponseTime: time.Duration(1000+i) * time.Microsecond,
			RequestSize: 120, ResponseSize: 4567, IP: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}),
			UserAgent: "WordPress/6.4; https://example.com", Time: u0.Add(time.Duration(i) * time.Second),
		}
	}
	return events
}

// BenchmarkRecordUsage writes batches of 1,000 events through RecordUsage:
// one transaction with COPY, one rollup upsert and one last_used_at update.
func BenchmarkRecordUsage(b *testing.B) {
	s, _, _ := newStore(b)
	ids := make([]int64, 10)
	for i := range ids {
		ids[i] = mustCreate(b, s, fmt.Sprint("bench ", i))
	}
	events := benchEvents(ids)
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := s.RecordUsage(ctx, events); err != nil {
			b.Fatal(err)
		}
		n += len(events)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkInsertPerRow is the naive path for comparison: one INSERT (and
// so one transaction) per event, and no rollups at all.
func BenchmarkInsertPerRow(b *testing.B) {
	s, db, schema := newStore(b)
	ids := make([]int64, 10)
	for i := range ids {
		ids[i] = mustCreate(b, s, fmt.Sprint("bench ", i))
	}
	events := benchEvents(ids)
	insert := `INSERT INTO ` + pq.QuoteIdentifier(schema) + `.api_token_usage (token_id, endpoint, route, method, status_code,
		response_time_us, request_size, response_size, ip_address, user_agent, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for i := range events {
			ev := &events[i]
			if _, err := db.ExecContext(ctx, insert, ev.TokenID, ev.Endpoint, ev.Route, ev.Method, ev.StatusCode,
				ev.ResponseTime.Microseconds(), ev.RequestSize, ev.ResponseSize, ev.IP.String(), ev.UserAgent, ev.Time); err != nil {
				b.Fatal(err)
			}
		}
		n += len(events)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

package memory

import (
	"context"
	"fmt"
	"testing"
	"time"
	"unsafe"

	"github.com/apitoken/apitoken"
)

func TestQueue(t *testing.T) {
	var q queue[int]
	next, front := 0, 0
	// Grow, drain partly, grow again, drain fully: order is kept.
	for _, step := range []struct{ push, pop int }{{10, 3}, {1000, 900}, {5, 100}, {3000, 3012}, {1, 1}} {
		for range step.push {
			q.push(next)
			next++
		}
		for range step.pop {
			if v := q.pop(); v != front {
				t.Fatalf("pop = %d, want %d", v, front)
			}
			front++
		}
		if q.len() != next-front {
			t.Fatalf("len = %d, want %d", q.len(), next-front)
		}
		for i := range q.len() {
			if v := *q.at(i); v != front+i {
				t.Fatalf("at(%d) = %d, want %d", i, v, front+i)
			}
		}
	}
	if len(q.buf) > minShrinkCap {
		t.Errorf("an empty queue keeps a ring of %d", len(q.buf))
	}
}

func TestQueueSteadyStateIsBounded(t *testing.T) {
	var q queue[int]
	for i := range 100 {
		q.push(i)
	}
	for i := range 100_000 {
		q.push(i)
		q.pop()
	}
	if q.len() != 100 || len(q.buf) > 256 {
		t.Errorf("len %d ring %d after a steady state of 100 elements", q.len(), len(q.buf))
	}
}

func TestQueueFilter(t *testing.T) {
	var q queue[int]
	for i := range 2000 {
		q.push(i)
	}
	for range 500 {
		q.pop()
	}
	for i := range 500 { // wraps around the ring
		q.push(2000 + i)
	}
	q.filter(func(v *int) bool { return *v%100 == 0 })
	if q.len() != 20 || *q.at(0) != 500 || *q.at(19) != 2400 {
		t.Errorf("filter kept %d elements from %d", q.len(), *q.at(0))
	}
	for i := range q.len() {
		if *q.at(i) != 500+100*i {
			t.Errorf("at(%d) = %d after filter", i, *q.at(i))
		}
	}
	if len(q.buf) > minShrinkCap {
		t.Errorf("filtered queue keeps a ring of %d", len(q.buf))
	}
}

// TestDeletedTokensDoNotGrowTheOrder checks that the ids of deleted tokens'
// events do not pile up in the trimming order, and that interned strings are
// released.
func TestDeletedTokensDoNotGrowTheOrder(t *testing.T) {
	ctx := context.Background()
	s := New(WithMaxEvents(1_000_000))
	keep := &apitoken.Token{Name: "keep"}
	if err := s.CreateToken(ctx, keep, apitoken.Hash{1}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ev := func(id int64, i int) apitoken.Event {
		return apitoken.Event{TokenID: id, Endpoint: fmt.Sprint("/p/", i), Method: "GET", UserAgent: fmt.Sprint("ua", i), StatusCode: 200, Time: at}
	}
	for round := range 200 {
		tok := &apitoken.Token{Name: "tmp"}
		if err := s.CreateToken(ctx, tok, apitoken.Hash{2, byte(round), byte(round >> 8)}); err != nil {
			t.Fatal(err)
		}
		batch := make([]apitoken.Event, 0, 101)
		for i := range 100 {
			batch = append(batch, ev(tok.ID, round*100+i))
		}
		batch = append(batch, ev(keep.ID, 0))
		if err := s.RecordUsage(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
	}
	if s.events != 200 {
		t.Errorf("%d raw events kept, want 200", s.events)
	}
	if n := s.order.len(); n > 2*s.events+1024+100 {
		t.Errorf("trimming order holds %d ids for %d live events", n, s.events)
	}
	// keep's events hold "/p/0", "GET" and "ua0".
	if len(s.strs) != 3 {
		t.Errorf("%d interned strings, want 3", len(s.strs))
	}
	if err := s.DeleteToken(ctx, keep.ID); err != nil {
		t.Fatal(err)
	}
	if len(s.strs) != 0 || s.events != 0 {
		t.Errorf("after deleting every token: %d interned strings, %d events", len(s.strs), s.events)
	}
}

func TestTrimReleasesStrings(t *testing.T) {
	ctx := context.Background()
	s := New(WithMaxEvents(3))
	tok := &apitoken.Token{Name: "t"}
	if err := s.CreateToken(ctx, tok, apitoken.Hash{1}); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		e := apitoken.Event{TokenID: tok.ID, Endpoint: fmt.Sprint("/", i), Method: "GET", UserAgent: "ua", Time: time.Unix(int64(i), 0)}
		if err := s.RecordUsage(ctx, []apitoken.Event{e}); err != nil {
			t.Fatal(err)
		}
	}
	// 3 paths, "GET", "ua".
	if len(s.strs) != 5 || s.strs["ua"].refs != 3 {
		t.Errorf("%d interned strings after trimming, want 5", len(s.strs))
	}
}

func TestRawEventIsCompact(t *testing.T) {
	if n := unsafe.Sizeof(rawEvent{}); n > 96 {
		t.Errorf("rawEvent is %d bytes, want at most 96", n)
	}
}

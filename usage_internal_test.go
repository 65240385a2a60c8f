package apitoken

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

var _ Sink = (*batchSink)(nil)

// sinkWriterFunc adapts a function to usageWriter.
type sinkWriterFunc func(context.Context, []Event) error

func (f sinkWriterFunc) RecordUsage(ctx context.Context, evs []Event) error {
	return f(ctx, evs)
}

// sinkCollector is a usageWriter that copies every batch it is handed (the
// sink reuses the slice once RecordUsage returns) and can be made to fail or
// go slowly. Read its batches with its methods.
type sinkCollector struct {
	mu     sync.Mutex
	calls  []sinkCall // every call, failed ones too
	failN  int        // fail this many calls first
	always bool       // fail every call
	delay  time.Duration
}

type sinkCall struct {
	at     time.Time
	events []Event
	err    error
}

var errSinkDown = errors.New("usage store down")

func (c *sinkCollector) RecordUsage(_ context.Context, evs []Event) error {
	c.mu.Lock()
	call := sinkCall{at: time.Now(), events: append([]Event(nil), evs...)}
	if c.always || len(c.calls) < c.failN {
		call.err = errSinkDown
	}
	c.calls = append(c.calls, call)
	c.mu.Unlock()
	if c.delay > 0 {
		time.Sleep(c.delay) // the writer is slow; this tests no time
	}
	return call.err
}

// written returns the events of the successful calls, in call order.
func (c *sinkCollector) written() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Event
	for _, call := range c.calls {
		if call.err == nil {
			out = append(out, call.events...)
		}
	}
	return out
}

// sizes returns every call's batch size.
func (c *sinkCollector) sizes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for _, call := range c.calls {
		out = append(out, len(call.events))
	}
	return out
}

func (c *sinkCollector) callList() []sinkCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]sinkCall(nil), c.calls...)
}

// usageEvent is producer p's n-th event.
func usageEvent(p, n int) Event {
	return Event{
		TokenID:      int64(p),
		Endpoint:     "/products",
		Route:        "/products/{id}",
		Method:       "GET",
		StatusCode:   200,
		ResponseTime: time.Duration(n) * time.Microsecond,
		RequestSize:  int64(n),
		ResponseSize: 512,
		IP:           netip.MustParseAddr("203.0.113.7"),
		UserAgent:    "sink-test/1.0",
		Time:         time.Date(2025, 1, 15, 10, 30, 0, n, time.UTC),
	}
}

// checkEachOnceInOrder checks that written holds each of producers×perProducer
// events exactly once, each producer's in the order recorded.
func checkEachOnceInOrder(t *testing.T, written []Event, producers, perProducer int) {
	t.Helper()
	next := make([]int, producers)
	for i, e := range written {
		p, n := int(e.TokenID), int(e.RequestSize)
		if p < 0 || p >= producers {
			t.Fatalf("event %d from unknown producer %d", i, p)
		}
		if n != next[p] {
			t.Fatalf("event %d: producer %d's event %d, want its event %d (lost, duplicated or reordered)", i, p, n, next[p])
		}
		if e != usageEvent(p, n) {
			t.Fatalf("event %d altered: %+v", i, e)
		}
		next[p]++
	}
	for p, n := range next {
		if n != perProducer {
			t.Errorf("producer %d: %d events written, want %d", p, n, perProducer)
		}
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// recv receives from ch or fails the test after a generous deadline.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func closeSink(t *testing.T, s *batchSink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.Reset()
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// blockingWriter blocks every call until its context ends or it is released.
type blockingWriter struct {
	entered chan int
	release chan struct{}
}

func newBlockingWriter() *blockingWriter {
	return &blockingWriter{entered: make(chan int, 1000), release: make(chan struct{})}
}

func (w *blockingWriter) RecordUsage(ctx context.Context, evs []Event) error {
	select {
	case w.entered <- len(evs):
	default: // nobody is counting any more
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-w.release:
		return nil
	}
}

func storeMax(m *atomic.Int64, v int) {
	for {
		old := m.Load()
		if int64(v) <= old || m.CompareAndSwap(old, int64(v)) {
			return
		}
	}
}

// TestUsageBatchDefaults: zero fields take the documented defaults, and a
// negative field or an inverted retry range is an error naming it.
func TestUsageBatchDefaults(t *testing.T) {
	got, err := UsageBatch{}.withDefaults()
	want := UsageBatch{QueueSize: 65_536, Size: 1000, FlushInterval: time.Second,
		RetryMin: 100 * time.Millisecond, RetryMax: 10 * time.Second, WriteTimeout: 30 * time.Second}
	if err != nil || got != want {
		t.Fatalf("defaults = %+v, %v; want %+v", got, err, want)
	}
	for _, tt := range []struct {
		name string
		in   UsageBatch
		want string
	}{
		{"negative queue", UsageBatch{QueueSize: -1}, "QueueSize"},
		{"negative size", UsageBatch{Size: -1}, "Size"},
		{"negative interval", UsageBatch{FlushInterval: -1}, "FlushInterval"},
		{"negative timeout", UsageBatch{WriteTimeout: -1}, "WriteTimeout"},
		{"inverted retry range", UsageBatch{RetryMin: time.Second, RetryMax: time.Millisecond}, "RetryMax below RetryMin"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.in.withDefaults(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %s", err, tt.want)
			}
		})
	}
}

func TestBatchSinkFlushesByBatchSize(t *testing.T) {
	tests := []struct {
		name        string
		batch       int
		events      int
		beforeClose int   // full batches written before Close
		wantSizes   []int // all calls, the last ones made by Close
	}{
		{"25 events, batches of 10", 10, 25, 2, []int{10, 10, 5}},
		{"batches of 1", 1, 3, 3, []int{1, 1, 1}},
		{"exact multiple", 7, 21, 3, []int{7, 7, 7}},
		{"less than a batch", 100, 99, 0, []int{99}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			col := &sinkCollector{}
			entered := make(chan int, 100)
			w := sinkWriterFunc(func(ctx context.Context, evs []Event) error {
				entered <- len(evs)
				return col.RecordUsage(ctx, evs)
			})
			s := testSink(w, quietLogger(), UsageBatch{Size: tt.batch, FlushInterval: time.Hour})
			for i := range tt.events {
				s.Record(usageEvent(0, i))
			}
			for i := range tt.beforeClose {
				if n := recv(t, entered, fmt.Sprintf("batch %d", i)); n != tt.batch {
					t.Errorf("batch %d before Close has %d events, want %d", i, n, tt.batch)
				}
			}
			want := uint64(tt.beforeClose * tt.batch)
			waitFor(t, "the full batches to be written", func() bool { return s.stats().Written == want })
			if got := len(col.sizes()); got != tt.beforeClose {
				t.Errorf("%d calls before Close, want %d", got, tt.beforeClose)
			}
			// The partial batch waits in the queue for more events or the
			// flush interval.
			if q := s.stats().Queued; q != tt.events-tt.beforeClose*tt.batch {
				t.Errorf("Queued() = %d, want the partial batch of %d", q, tt.events-tt.beforeClose*tt.batch)
			}
			if got := len(col.sizes()); got != tt.beforeClose {
				t.Errorf("%d calls with a partial batch in hand, want %d", got, tt.beforeClose)
			}
			closeSink(t, s)
			if got := col.sizes(); fmt.Sprint(got) != fmt.Sprint(tt.wantSizes) {
				t.Errorf("batch sizes %v, want %v", got, tt.wantSizes)
			}
			checkEachOnceInOrder(t, col.written(), 1, tt.events)
			if s.stats().Written != uint64(tt.events) || s.stats().Dropped != 0 || s.stats().Failures != 0 {
				t.Errorf("Written %d Dropped %d Failures %d, want %d 0 0", s.stats().Written, s.stats().Dropped, s.stats().Failures, tt.events)
			}
		})
	}
}

func TestBatchSinkFlushesByInterval(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		rounds   []int // events recorded per round; each round must flush without Close
	}{
		{"5ms, one round of 3", 5 * time.Millisecond, []int{3}},
		{"5ms, three rounds", 5 * time.Millisecond, []int{3, 1, 7}},
		{"50ms, two rounds", 50 * time.Millisecond, []int{2, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			col := &sinkCollector{}
			s := testSink(col, quietLogger(), UsageBatch{Size: 1000, FlushInterval: tt.interval})
			defer closeSink(t, s)
			total := 0
			for r, n := range tt.rounds {
				for i := range n {
					s.Record(usageEvent(0, total+i))
				}
				total += n
				waitFor(t, fmt.Sprintf("round %d to be flushed by the interval", r), func() bool {
					return s.stats().Written == uint64(total)
				})
				if q := s.stats().Queued; q != 0 {
					t.Errorf("round %d: %d still queued", r, q)
				}
			}
			checkEachOnceInOrder(t, col.written(), 1, total)
		})
	}
}

// TestBatchSinkCloseWritesEverything holds the writer on its first batch
// while all the events are recorded, so they are queued when Close is called,
// then lets a slow writer go: Close must write each of them once, in order.
func TestBatchSinkCloseWritesEverything(t *testing.T) {
	tests := []struct {
		name      string
		producers int
		each      int
		batch     int
		delay     time.Duration
	}{
		{"one producer, 10000 events", 1, 10_000, 100, 200 * time.Microsecond},
		{"4 producers x 2500 events", 4, 2500, 100, 200 * time.Microsecond},
		{"10 producers x 1000 events, batches of 1000", 10, 1000, 1000, time.Millisecond},
		{"2 producers x 5000 events, batches of 7", 2, 5000, 7, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gate := make(chan struct{})
			entered := make(chan struct{})
			var once sync.Once
			col := &sinkCollector{delay: tt.delay}
			w := sinkWriterFunc(func(ctx context.Context, evs []Event) error {
				once.Do(func() { close(entered); <-gate })
				return col.RecordUsage(ctx, evs)
			})
			s := testSink(w, quietLogger(), UsageBatch{Size: tt.batch, FlushInterval: time.Hour})
			var wg sync.WaitGroup
			for p := range tt.producers {
				wg.Go(func() {
					for i := range tt.each {
						s.Record(usageEvent(p, i))
					}
				})
			}
			wg.Wait()
			recv(t, entered, "the first batch")
			total := tt.producers * tt.each
			// The writer holds its first batch; the rest waits (the sink
			// may have taken more than one batch's worth out of the queue).
			if q := s.stats().Queued; q > total-tt.batch {
				t.Fatalf("Queued() = %d before Close, want at most %d", q, total-tt.batch)
			}
			closed := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				closed <- s.close(ctx)
			}()
			close(gate)
			if err := recv(t, closed, "Close"); err != nil {
				t.Fatalf("Close: %v", err)
			}
			checkEachOnceInOrder(t, col.written(), tt.producers, tt.each)
			if s.stats().Written != uint64(total) || s.stats().Dropped != 0 || s.stats().Queued != 0 {
				t.Errorf("Written %d Dropped %d Queued %d, want %d 0 0", s.stats().Written, s.stats().Dropped, s.stats().Queued, total)
			}
			for _, n := range col.sizes() {
				if n > tt.batch {
					t.Errorf("a batch of %d, more than the batch size %d", n, tt.batch)
				}
			}
		})
	}
}

// TestBatchSinkRecordNeverBlocks: with the writer stuck on a batch and a
// small queue, recording 1,000 more events returns at once; exactly the
// events that fit the queue wait, the rest are dropped and counted.
func TestBatchSinkRecordNeverBlocks(t *testing.T) {
	tests := []struct {
		name   string
		batch  int // events in the writer's hands
		queue  int
		record int
	}{
		{"batch of 1 in hand, queue 10", 1, 10, 1000},
		{"batch of 5 in hand, queue 10", 5, 10, 1000},
		{"batch of 10 in hand, queue 10", 10, 10, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newBlockingWriter()
			s := testSink(w, quietLogger(), UsageBatch{QueueSize: tt.queue, Size: tt.batch, FlushInterval: time.Hour})
			for i := range tt.batch { // a full batch wakes the sink
				s.Record(usageEvent(0, i))
			}
			waitFor(t, "the sink to take the batch", func() bool { return s.stats().Queued == 0 })
			if s.stats().Dropped != 0 {
				t.Fatalf("Dropped() = %d while filling the first batch", s.stats().Dropped)
			}
			if n := recv(t, w.entered, "the writer to take the first batch"); n != tt.batch {
				t.Fatalf("writer holds %d events, want %d", n, tt.batch)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := range tt.record {
					s.Record(usageEvent(0, tt.batch+i))
				}
			}()
			recv(t, done, "Record to return (it blocks)")
			if d, want := s.stats().Dropped, uint64(tt.record-tt.queue); d != want {
				t.Errorf("Dropped() = %d, want %d", d, want)
			}
			if q := s.stats().Queued; q != tt.queue {
				t.Errorf("Queued() = %d, want %d", q, tt.queue)
			}
			// Close cannot write (the writer is stuck until its context
			// ends): what was in hand and queued is dropped too.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if err := s.close(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Close = %v, want %v", err, context.DeadlineExceeded)
			}
			if recorded := uint64(tt.batch + tt.record); s.stats().Written != 0 || s.stats().Dropped != recorded {
				t.Errorf("Written %d Dropped %d, want 0 and %d", s.stats().Written, s.stats().Dropped, recorded)
			}
		})
	}
}

// TestBatchSinkRetriesFailedBatches: a failed batch is retried, unchanged,
// after growing waits, and nothing is lost or written twice. The failure is
// logged once per batch, without event data.
func TestBatchSinkRetriesFailedBatches(t *testing.T) {
	tests := []struct {
		name      string
		failN     int
		min, max  time.Duration
		wantWaits []time.Duration // least gaps between the attempts at the first batch
	}{
		{"fails 3 times", 3, time.Millisecond, 10 * time.Millisecond,
			[]time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond}},
		{"fails 4 times, capped backoff", 4, 2 * time.Millisecond, 5 * time.Millisecond,
			[]time.Duration{2 * time.Millisecond, 4 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond}},
		{"fails once", 1, time.Millisecond, time.Millisecond, []time.Duration{time.Millisecond}},
		{"never fails", 0, time.Millisecond, time.Millisecond, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			col := &sinkCollector{failN: tt.failN}
			s := testSink(col, slog.New(slog.NewTextHandler(&logs, nil)), UsageBatch{Size: 10, FlushInterval: time.Hour, RetryMin: tt.min, RetryMax: tt.max})
			const n = 25
			for i := range n {
				s.Record(usageEvent(0, i))
			}
			closeSink(t, s)
			checkEachOnceInOrder(t, col.written(), 1, n)
			if f := s.stats().Failures; f != uint64(tt.failN) {
				t.Errorf("Failures() = %d, want %d", f, tt.failN)
			}
			if s.stats().Written != n || s.stats().Dropped != 0 {
				t.Errorf("Written %d Dropped %d, want %d 0", s.stats().Written, s.stats().Dropped, n)
			}
			// The first failN+1 calls carry the same batch, the waits between
			// them growing.
			calls := col.callList()
			if len(calls) != tt.failN+3 {
				t.Fatalf("%d calls, want %d", len(calls), tt.failN+3)
			}
			for i := 1; i <= tt.failN; i++ {
				if fmt.Sprint(calls[i].events) != fmt.Sprint(calls[0].events) {
					t.Errorf("retry %d is not the failed batch", i)
				}
				if gap := calls[i].at.Sub(calls[i-1].at); gap < tt.wantWaits[i-1] {
					t.Errorf("retry %d came %v after the previous attempt, want at least %v", i, gap, tt.wantWaits[i-1])
				}
			}
			out := logs.String()
			if tt.failN > 0 {
				if c := strings.Count(out, "usage write failed"); c != 1 {
					t.Errorf("failure logged %d times, want once per failed batch:\n%s", c, out)
				}
				if !strings.Contains(out, errSinkDown.Error()) || !strings.Contains(out, "recovered") {
					t.Errorf("error or recovery not logged:\n%s", out)
				}
			} else if out != "" {
				t.Errorf("logged without failures:\n%s", out)
			}
			for _, data := range []string{"sink-test/1.0", "/products", "203.0.113.7"} {
				if strings.Contains(out, data) {
					t.Errorf("log contains event data %q:\n%s", data, out)
				}
			}
		})
	}
}

// TestBatchSinkCloseDeadline: when Close's context ends while the writer
// keeps failing (or hangs), Close returns the context's error and every
// recorded event is accounted for: Dropped()+Written() == recorded.
func TestBatchSinkCloseDeadline(t *testing.T) {
	tests := []struct {
		name    string
		writer  func() usageWriter
		record  int
		queue   int
		wantErr error
	}{
		{"always fails", func() usageWriter { return &sinkCollector{always: true} }, 100, 1000, context.DeadlineExceeded},
		{"always fails, queue overflows", func() usageWriter { return &sinkCollector{always: true} }, 500, 50, context.DeadlineExceeded},
		{"hangs until cancelled", func() usageWriter { return newBlockingWriter() }, 100, 1000, context.DeadlineExceeded},
		{"fails every other call", func() usageWriter {
			var n atomic.Int64
			return sinkWriterFunc(func(context.Context, []Event) error {
				if n.Add(1)%2 == 0 {
					return errSinkDown
				}
				return nil
			})
		}, 100, 1000, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSink(tt.writer(), quietLogger(), UsageBatch{Size: 10, QueueSize: tt.queue, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond})
			for i := range tt.record {
				s.Record(usageEvent(0, i))
			}
			timeout := 30 * time.Millisecond
			if tt.wantErr == nil {
				timeout = 30 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			err := s.close(ctx)
			if err != tt.wantErr && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Close = %v, want %v", err, tt.wantErr)
			}
			if got := s.stats().Dropped + s.stats().Written; got != uint64(tt.record) {
				t.Errorf("Dropped %d + Written %d = %d, want %d", s.stats().Dropped, s.stats().Written, got, tt.record)
			}
			if tt.wantErr != nil && s.stats().Written != 0 {
				t.Errorf("Written() = %d with a writer that never succeeds", s.stats().Written)
			}
			if tt.wantErr == nil && s.stats().Dropped != 0 {
				t.Errorf("Dropped() = %d though Close finished in time", s.stats().Dropped)
			}
			if s.stats().Queued != 0 {
				t.Errorf("Queued() = %d after Close", s.stats().Queued)
			}
			if err2 := s.close(context.Background()); err2 != err {
				t.Errorf("second Close = %v, want %v", err2, err)
			}
		})
	}
}

// TestBatchSinkNeverExceedsBatchSize: even when Close gives up on a failing
// writer while more events are queued, no call gets more than the batch
// size, and the writer is not called again and again with a context that
// has ended.
func TestBatchSinkNeverExceedsBatchSize(t *testing.T) {
	tests := []struct {
		name  string
		hangs bool // else fails at once
	}{
		{"always fails", false},
		{"hangs until cancelled", true},
	}
	const batch, rounds = 5, 50
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for r := range rounds { // the give-up path has had a random element
				var maxSeen, deadCalls atomic.Int64
				w := sinkWriterFunc(func(ctx context.Context, evs []Event) error {
					storeMax(&maxSeen, len(evs))
					if ctx.Err() != nil {
						deadCalls.Add(1)
					}
					if tt.hangs {
						<-ctx.Done()
						return ctx.Err()
					}
					return errSinkDown
				})
				s := testSink(w, quietLogger(), UsageBatch{Size: batch, RetryMin: time.Millisecond, RetryMax: time.Millisecond})
				for i := range 200 {
					s.Record(usageEvent(0, i))
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
				err := s.close(ctx)
				cancel()
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("round %d: Close = %v", r, err)
				}
				if m := maxSeen.Load(); m > batch {
					t.Fatalf("round %d: the writer got a batch of %d, batch size %d", r, m, batch)
				}
				// One call may start as Close gives up; no more.
				if n := deadCalls.Load(); n > 1 {
					t.Fatalf("round %d: the writer was called %d times with its context already ended", r, n)
				}
				if s.stats().Dropped != 200 {
					t.Fatalf("round %d: Dropped() = %d, want 200", r, s.stats().Dropped)
				}
			}
		})
	}
}

func TestBatchSinkRecordAfterClose(t *testing.T) {
	tests := []struct {
		name   string
		before int
		after  int
	}{
		{"nothing before", 0, 5},
		{"some before", 7, 3},
		{"many after", 3, 10_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			col := &sinkCollector{}
			s := testSink(col, quietLogger(), UsageBatch{})
			for i := range tt.before {
				s.Record(usageEvent(0, i))
			}
			closeSink(t, s)
			for i := range tt.after {
				s.Record(usageEvent(0, tt.before+i))
			}
			if s.stats().Dropped != uint64(tt.after) || s.stats().Written != uint64(tt.before) || s.stats().Queued != 0 {
				t.Errorf("Dropped %d Written %d Queued %d, want %d %d 0", s.stats().Dropped, s.stats().Written, s.stats().Queued, tt.after, tt.before)
			}
			checkEachOnceInOrder(t, col.written(), 1, tt.before)
		})
	}
}

func TestBatchSinkCloseIsIdempotent(t *testing.T) {
	tests := []struct {
		name    string
		writer  usageWriter
		timeout time.Duration
		wantErr error
	}{
		{"clean close", &sinkCollector{}, 30 * time.Second, nil},
		{"close that gives up", &sinkCollector{always: true}, 10 * time.Millisecond, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSink(tt.writer, quietLogger(), UsageBatch{RetryMin: time.Millisecond, RetryMax: time.Millisecond})
			for i := range 10 {
				s.Record(usageEvent(0, i))
			}
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			errs := make(chan error, 4)
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() { errs <- s.close(ctx) })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != tt.wantErr {
					t.Errorf("concurrent Close = %v, want %v", err, tt.wantErr)
				}
			}
			// Later calls, even with an ended context, give the first answer.
			dead, cancelDead := context.WithCancel(context.Background())
			cancelDead()
			for range 2 {
				if err := s.close(dead); err != tt.wantErr {
					t.Errorf("repeated Close = %v, want %v", err, tt.wantErr)
				}
			}
			if s.stats().Dropped+s.stats().Written != 10 {
				t.Errorf("Dropped %d + Written %d != 10", s.stats().Dropped, s.stats().Written)
			}
		})
	}
}

// TestBatchSinkReusesBatchSlice pins the contract between the sink and its
// writer from the sink's side: while RecordUsage runs the slice does not
// change (even as new events are recorded), and after it returns the sink
// refills the same array with the next batch, so a writer that keeps events
// must copy them.
func TestBatchSinkReusesBatchSlice(t *testing.T) {
	tests := []struct {
		name    string
		batch   int
		batches int
	}{
		{"batches of 10", 10, 4},
		{"batches of 1", 1, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				heldCopy []Event
				changed  []int               // calls whose slice changed while the writer held it
				arrays   = map[*Event]bool{} // distinct arrays handed over
			)
			entered := make(chan struct{})
			proceed := make(chan struct{})
			s := testSink(sinkWriterFunc(func(_ context.Context, evs []Event) error {
				// This runs on the sink's goroutine, which also writes the
				// array: reading held here is not a race.
				arrays[unsafe.SliceData(evs)] = true
				before := append([]Event(nil), evs...)
				entered <- struct{}{} // the test records the next batch now
				<-proceed
				if fmt.Sprint(before) != fmt.Sprint(evs) {
					changed = append(changed, len(heldCopy))
				}
				heldCopy = before
				return nil
			}), quietLogger(), UsageBatch{Size: tt.batch, FlushInterval: time.Hour})
			n := 0
			record := func() {
				for range tt.batch {
					s.Record(usageEvent(0, n))
					n++
				}
			}
			record()
			for b := range tt.batches {
				recv(t, entered, fmt.Sprintf("batch %d", b))
				if b < tt.batches-1 {
					record() // while the writer holds batch b
					waitFor(t, "the next batch to be queued", func() bool { return s.stats().Queued == tt.batch })
				}
				proceed <- struct{}{}
			}
			closeSink(t, s)
			if len(changed) != 0 {
				t.Errorf("%d batches changed while the writer held them", len(changed))
			}
			// Two buffers alternate (one filling, one being written): no
			// batch after the first two needs a new array.
			if len(arrays) > 2 {
				t.Errorf("%d distinct arrays for %d batches: the sink should reuse its two buffers, as the usageWriter contract says", len(arrays), tt.batches)
			}
		})
	}
}

// TestBatchSinkConcurrentProducers: 8 producers × 10,000 events; every event
// is written once or counted as dropped, and with a large queue none is
// dropped.
func TestBatchSinkConcurrentProducers(t *testing.T) {
	tests := []struct {
		name        string
		queue       int
		batch       int
		delay       time.Duration
		wantNoDrops bool
	}{
		{"large queue", 1 << 17, 1000, 0, true},
		{"large queue, small batches", 1 << 17, 64, 0, true},
		{"small queue, slow writer", 64, 32, 100 * time.Microsecond, false},
	}
	const producers, each = 8, 10_000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			col := &sinkCollector{delay: tt.delay}
			s := testSink(col, quietLogger(), UsageBatch{QueueSize: tt.queue, Size: tt.batch, FlushInterval: time.Millisecond})
			var wg sync.WaitGroup
			for p := range producers {
				wg.Go(func() {
					for i := range each {
						s.Record(usageEvent(p, i))
					}
				})
			}
			wg.Wait()
			closeSink(t, s)
			if got := s.stats().Written + s.stats().Dropped; got != producers*each {
				t.Errorf("Written %d + Dropped %d = %d, want %d", s.stats().Written, s.stats().Dropped, got, producers*each)
			}
			written := col.written()
			if uint64(len(written)) != s.stats().Written {
				t.Errorf("the writer got %d events, Written() = %d", len(written), s.stats().Written)
			}
			if tt.wantNoDrops {
				if s.stats().Dropped != 0 {
					t.Errorf("Dropped() = %d with a large queue", s.stats().Dropped)
				}
				checkEachOnceInOrder(t, written, producers, each)
				return
			}
			// With drops: what was written is each producer's events in
			// order, none twice.
			last := make([]int64, producers)
			for i := range last {
				last[i] = -1
			}
			for _, e := range written {
				if e.RequestSize <= last[e.TokenID] {
					t.Fatalf("producer %d: event %d after %d", e.TokenID, e.RequestSize, last[e.TokenID])
				}
				last[e.TokenID] = e.RequestSize
			}
			t.Logf("written %d, dropped %d", s.stats().Written, s.stats().Dropped)
		})
	}
}

func TestBatchSinkRecordDoesNotAllocate(t *testing.T) {
	tests := []struct {
		name  string
		queue int
	}{
		{"queued", 1 << 16},
		{"dropped: queue full", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newBlockingWriter() // holds the first event: the queue only fills
			s := testSink(w, quietLogger(), UsageBatch{QueueSize: tt.queue, Size: 1, FlushInterval: time.Hour})
			defer func() { close(w.release); closeSink(t, s) }()
			s.Record(usageEvent(0, 0))
			recv(t, w.entered, "the first batch")
			e := usageEvent(1, 1)
			if allocs := testing.AllocsPerRun(1000, func() { s.Record(e) }); allocs != 0 {
				t.Errorf("Record: %v allocs/op, want 0", allocs)
			}
		})
	}
}

func BenchmarkBatchSinkRecord(b *testing.B) {
	s := testSink(sinkWriterFunc(func(context.Context, []Event) error { return nil }), quietLogger(), UsageBatch{})
	e := usageEvent(1, 1)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Record(e)
		}
	})
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.close(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(s.stats().Dropped)/float64(b.N), "dropped/op")
}

// testSink starts a batchSink with b's zero fields set to their defaults.
func testSink(w usageWriter, log *slog.Logger, b UsageBatch) *batchSink {
	b, err := b.withDefaults()
	if err != nil {
		panic(err)
	}
	return newBatchSink(w, b, log)
}

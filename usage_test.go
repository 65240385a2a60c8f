package apitoken_test

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

	"github.com/apitoken/apitoken"
)

var (
	_ apitoken.Sink = (*apitoken.BatchSink)(nil)
	_ apitoken.Sink = apitoken.SinkFunc(nil)
)

// sinkWriterFunc adapts a function to apitoken.UsageWriter.
type sinkWriterFunc func(context.Context, []apitoken.Event) error

func (f sinkWriterFunc) RecordUsage(ctx context.Context, evs []apitoken.Event) error {
	return f(ctx, evs)
}

// sinkCollector is a UsageWriter that copies every batch it is handed (the
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
	events []apitoken.Event
	err    error
}

var errSinkDown = errors.New("usage store down")

func (c *sinkCollector) RecordUsage(_ context.Context, evs []apitoken.Event) error {
	c.mu.Lock()
	call := sinkCall{at: time.Now(), events: append([]apitoken.Event(nil), evs...)}
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
func (c *sinkCollector) written() []apitoken.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []apitoken.Event
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
func usageEvent(p, n int) apitoken.Event {
	return apitoken.Event{
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
func checkEachOnceInOrder(t *testing.T, written []apitoken.Event, producers, perProducer int) {
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

func closeSink(t *testing.T, s *apitoken.BatchSink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
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

func (w *blockingWriter) RecordUsage(ctx context.Context, evs []apitoken.Event) error {
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

func TestSinkFunc(t *testing.T) {
	tests := []struct {
		name string
		evs  []apitoken.Event
	}{
		{"none", nil},
		{"one", []apitoken.Event{usageEvent(1, 1)}},
		{"several", []apitoken.Event{usageEvent(1, 1), usageEvent(2, 2), usageEvent(1, 3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []apitoken.Event
			var s apitoken.Sink = apitoken.SinkFunc(func(e apitoken.Event) { got = append(got, e) })
			for _, e := range tt.evs {
				s.Record(e)
			}
			if len(got) != len(tt.evs) {
				t.Fatalf("got %d events, want %d", len(got), len(tt.evs))
			}
			for i := range got {
				if got[i] != tt.evs[i] {
					t.Errorf("event %d = %+v, want %+v", i, got[i], tt.evs[i])
				}
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
			w := sinkWriterFunc(func(ctx context.Context, evs []apitoken.Event) error {
				entered <- len(evs)
				return col.RecordUsage(ctx, evs)
			})
			s := apitoken.NewBatchSink(w, apitoken.WithBatchSize(tt.batch),
				apitoken.WithFlushInterval(time.Hour), apitoken.WithSinkLogger(quietLogger()))
			for i := range tt.events {
				s.Record(usageEvent(0, i))
			}
			for i := range tt.beforeClose {
				if n := recv(t, entered, fmt.Sprintf("batch %d", i)); n != tt.batch {
					t.Errorf("batch %d before Close has %d events, want %d", i, n, tt.batch)
				}
			}
			want := uint64(tt.beforeClose * tt.batch)
			waitFor(t, "the full batches to be written", func() bool { return s.Written() == want })
			if got := len(col.sizes()); got != tt.beforeClose {
				t.Errorf("%d calls before Close, want %d", got, tt.beforeClose)
			}
			// The partial batch waits in the queue for more events or the
			// flush interval.
			if q := s.Queued(); q != tt.events-tt.beforeClose*tt.batch {
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
			if s.Written() != uint64(tt.events) || s.Dropped() != 0 || s.Failures() != 0 {
				t.Errorf("Written %d Dropped %d Failures %d, want %d 0 0", s.Written(), s.Dropped(), s.Failures(), tt.events)
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
			s := apitoken.NewBatchSink(col, apitoken.WithBatchSize(1000),
				apitoken.WithFlushInterval(tt.interval), apitoken.WithSinkLogger(quietLogger()))
			defer closeSink(t, s)
			total := 0
			for r, n := range tt.rounds {
				for i := range n {
					s.Record(usageEvent(0, total+i))
				}
				total += n
				waitFor(t, fmt.Sprintf("round %d to be flushed by the interval", r), func() bool {
					return s.Written() == uint64(total)
				})
				if q := s.Queued(); q != 0 {
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
			w := sinkWriterFunc(func(ctx context.Context, evs []apitoken.Event) error {
				once.Do(func() { close(entered); <-gate })
				return col.RecordUsage(ctx, evs)
			})
			s := apitoken.NewBatchSink(w, apitoken.WithBatchSize(tt.batch),
				apitoken.WithFlushInterval(time.Hour), apitoken.WithSinkLogger(quietLogger()))
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
			if q := s.Queued(); q > total-tt.batch {
				t.Fatalf("Queued() = %d before Close, want at most %d", q, total-tt.batch)
			}
			closed := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				closed <- s.Close(ctx)
			}()
			close(gate)
			if err := recv(t, closed, "Close"); err != nil {
				t.Fatalf("Close: %v", err)
			}
			checkEachOnceInOrder(t, col.written(), tt.producers, tt.each)
			if s.Written() != uint64(total) || s.Dropped() != 0 || s.Queued() != 0 {
				t.Errorf("Written %d Dropped %d Queued %d, want %d 0 0", s.Written(), s.Dropped(), s.Queued(), total)
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
			s := apitoken.NewBatchSink(w, apitoken.WithQueueSize(tt.queue), apitoken.WithBatchSize(tt.batch),
				apitoken.WithFlushInterval(time.Hour), apitoken.WithSinkLogger(quietLogger()))
			for i := range tt.batch { // a full batch wakes the sink
				s.Record(usageEvent(0, i))
			}
			waitFor(t, "the sink to take the batch", func() bool { return s.Queued() == 0 })
			if s.Dropped() != 0 {
				t.Fatalf("Dropped() = %d while filling the first batch", s.Dropped())
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
			if d, want := s.Dropped(), uint64(tt.record-tt.queue); d != want {
				t.Errorf("Dropped() = %d, want %d", d, want)
			}
			if q := s.Queued(); q != tt.queue {
				t.Errorf("Queued() = %d, want %d", q, tt.queue)
			}
			// Close cannot write (the writer is stuck until its context
			// ends): what was in hand and queued is dropped too.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if err := s.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Close = %v, want %v", err, context.DeadlineExceeded)
			}
			if recorded := uint64(tt.batch + tt.record); s.Written() != 0 || s.Dropped() != recorded {
				t.Errorf("Written %d Dropped %d, want 0 and %d", s.Written(), s.Dropped(), recorded)
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
			s := apitoken.NewBatchSink(col, apitoken.WithBatchSize(10), apitoken.WithFlushInterval(time.Hour),
				apitoken.WithRetryBackoff(tt.min, tt.max),
				apitoken.WithSinkLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			const n = 25
			for i := range n {
				s.Record(usageEvent(0, i))
			}
			closeSink(t, s)
			checkEachOnceInOrder(t, col.written(), 1, n)
			if f := s.Failures(); f != uint64(tt.failN) {
				t.Errorf("Failures() = %d, want %d", f, tt.failN)
			}
			if s.Written() != n || s.Dropped() != 0 {
				t.Errorf("Written %d Dropped %d, want %d 0", s.Written(), s.Dropped(), n)
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
		writer  func() apitoken.UsageWriter
		record  int
		queue   int
		wantErr error
	}{
		{"always fails", func() apitoken.UsageWriter { return &sinkCollector{always: true} }, 100, 1000, context.DeadlineExceeded},
		{"always fails, queue overflows", func() apitoken.UsageWriter { return &sinkCollector{always: true} }, 500, 50, context.DeadlineExceeded},
		{"hangs until cancelled", func() apitoken.UsageWriter { return newBlockingWriter() }, 100, 1000, context.DeadlineExceeded},
		{"fails every other call", func() apitoken.UsageWriter {
			var n atomic.Int64
			return sinkWriterFunc(func(context.Context, []apitoken.Event) error {
				if n.Add(1)%2 == 0 {
					return errSinkDown
				}
				return nil
			})
		}, 100, 1000, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := apitoken.NewBatchSink(tt.writer(), apitoken.WithBatchSize(10), apitoken.WithQueueSize(tt.queue),
				apitoken.WithRetryBackoff(time.Millisecond, 2*time.Millisecond), apitoken.WithSinkLogger(quietLogger()))
			for i := range tt.record {
				s.Record(usageEvent(0, i))
			}
			timeout := 30 * time.Millisecond
			if tt.wantErr == nil {
				timeout = 30 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			err := s.Close(ctx)
			if err != tt.wantErr && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Close = %v, want %v", err, tt.wantErr)
			}
			if got := s.Dropped() + s.Written(); got != uint64(tt.record) {
				t.Errorf("Dropped %d + Written %d = %d, want %d", s.Dropped(), s.Written(), got, tt.record)
			}
			if tt.wantErr != nil && s.Written() != 0 {
				t.Errorf("Written() = %d with a writer that never succeeds", s.Written())
			}
			if tt.wantErr == nil && s.Dropped() != 0 {
				t.Errorf("Dropped() = %d though Close finished in time", s.Dropped())
			}
			if s.Queued() != 0 {
				t.Errorf("Queued() = %d after Close", s.Queued())
			}
			if err2 := s.Close(context.Background()); err2 != err {
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
				w := sinkWriterFunc(func(ctx context.Context, evs []apitoken.Event) error {
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
				s := apitoken.NewBatchSink(w, apitoken.WithBatchSize(batch),
					apitoken.WithRetryBackoff(time.Millisecond, time.Millisecond), apitoken.WithSinkLogger(quietLogger()))
				for i := range 200 {
					s.Record(usageEvent(0, i))
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
				err := s.Close(ctx)
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
				if s.Dropped() != 200 {
					t.Fatalf("round %d: Dropped() = %d, want 200", r, s.Dropped())
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
			s := apitoken.NewBatchSink(col, apitoken.WithSinkLogger(quietLogger()))
			for i := range tt.before {
				s.Record(usageEvent(0, i))
			}
			closeSink(t, s)
			for i := range tt.after {
				s.Record(usageEvent(0, tt.before+i))
			}
			if s.Dropped() != uint64(tt.after) || s.Written() != uint64(tt.before) || s.Queued() != 0 {
				t.Errorf("Dropped %d Written %d Queued %d, want %d %d 0", s.Dropped(), s.Written(), s.Queued(), tt.after, tt.before)
			}
			checkEachOnceInOrder(t, col.written(), 1, tt.before)
		})
	}
}

func TestBatchSinkCloseIsIdempotent(t *testing.T) {
	tests := []struct {
		name    string
		writer  apitoken.UsageWriter
		timeout time.Duration
		wantErr error
	}{
		{"clean close", &sinkCollector{}, 30 * time.Second, nil},
		{"close that gives up", &sinkCollector{always: true}, 10 * time.Millisecond, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := apitoken.NewBatchSink(tt.writer, apitoken.WithRetryBackoff(time.Millisecond, time.Millisecond),
				apitoken.WithSinkLogger(quietLogger()))
			for i := range 10 {
				s.Record(usageEvent(0, i))
			}
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			errs := make(chan error, 4)
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() { errs <- s.Close(ctx) })
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
				if err := s.Close(dead); err != tt.wantErr {
					t.Errorf("repeated Close = %v, want %v", err, tt.wantErr)
				}
			}
			if s.Dropped()+s.Written() != 10 {
				t.Errorf("Dropped %d + Written %d != 10", s.Dropped(), s.Written())
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
				heldCopy []apitoken.Event
				changed  []int                        // calls whose slice changed while the writer held it
				arrays   = map[*apitoken.Event]bool{} // distinct arrays handed over
			)
			entered := make(chan struct{})
			proceed := make(chan struct{})
			s := apitoken.NewBatchSink(sinkWriterFunc(func(_ context.Context, evs []apitoken.Event) error {
				// This runs on the sink's goroutine, which also writes the
				// array: reading held here is not a race.
				arrays[unsafe.SliceData(evs)] = true
				before := append([]apitoken.Event(nil), evs...)
				entered <- struct{}{} // the test records the next batch now
				<-proceed
				if fmt.Sprint(before) != fmt.Sprint(evs) {
					changed = append(changed, len(heldCopy))
				}
				heldCopy = before
				return nil
			}), apitoken.WithBatchSize(tt.batch), apitoken.WithFlushInterval(time.Hour), apitoken.WithSinkLogger(quietLogger()))
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
					waitFor(t, "the next batch to be queued", func() bool { return s.Queued() == tt.batch })
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
				t.Errorf("%d distinct arrays for %d batches: the sink should reuse its two buffers, as the UsageWriter contract says", len(arrays), tt.batches)
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
			s := apitoken.NewBatchSink(col, apitoken.WithQueueSize(tt.queue), apitoken.WithBatchSize(tt.batch),
				apitoken.WithFlushInterval(time.Millisecond), apitoken.WithSinkLogger(quietLogger()))
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
			if got := s.Written() + s.Dropped(); got != producers*each {
				t.Errorf("Written %d + Dropped %d = %d, want %d", s.Written(), s.Dropped(), got, producers*each)
			}
			written := col.written()
			if uint64(len(written)) != s.Written() {
				t.Errorf("the writer got %d events, Written() = %d", len(written), s.Written())
			}
			if tt.wantNoDrops {
				if s.Dropped() != 0 {
					t.Errorf("Dropped() = %d with a large queue", s.Dropped())
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
			t.Logf("written %d, dropped %d", s.Written(), s.Dropped())
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
			s := apitoken.NewBatchSink(w, apitoken.WithQueueSize(tt.queue), apitoken.WithBatchSize(1),
				apitoken.WithFlushInterval(time.Hour), apitoken.WithSinkLogger(quietLogger()))
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
	s := apitoken.NewBatchSink(sinkWriterFunc(func(context.Context, []apitoken.Event) error { return nil }),
		apitoken.WithSinkLogger(quietLogger()))
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
	if err := s.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(s.Dropped())/float64(b.N), "dropped/op")
}

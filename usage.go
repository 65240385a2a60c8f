package apitoken

import (
	"golang.org/x/time/rate"

	"context"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apitoken/apitoken/internal/clientip"
)

// Event is the record of one request made with a known token: the spec's
// ten tracked fields plus the router's route pattern.
type Event struct {
	TokenID int64
	// Endpoint is the cleaned request path relative to the middleware's base
	// path (what allowed_endpoints patterns are matched against).
	Endpoint string
	// Route is the router's pattern for the request (e.g. "/products/{id}")
	// when the router reports one, else "".
	Route      string
	Method     string
	StatusCode int
	// ResponseTime is measured with the monotonic clock, to the microsecond.
	ResponseTime time.Duration
	RequestSize  int64
	ResponseSize int64
	IP           netip.Addr
	UserAgent    string
	Time         time.Time

	// peer is the request's RemoteAddr when the middleware left IP for the
	// BatchSink to parse off the request path, and "" once IP is set.
	peer string
}

// Sink receives one Event per request. Record is called on the request path
// and must never block or fail; implementations must be safe for concurrent
// use.
type Sink interface {
	Record(Event)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(Event)

// Record calls f(e).
func (f SinkFunc) Record(e Event) { f(e) }

// BatchSink queues events in a bounded buffer and writes them to a
// UsageWriter in batches from one background goroutine. Record never blocks:
// when the queue is full the event is dropped and counted (Dropped). A batch
// whose write fails is retried with exponential backoff while new events keep
// queueing behind it. Close writes everything queued.
type BatchSink struct {
	w        UsageWriter
	size     int // most events waiting in q
	batch    int
	interval time.Duration
	backoff  [2]time.Duration
	timeout  time.Duration
	log      *slog.Logger

	// Record appends to q under mu; the run goroutine swaps q out whole.
	// Waking the writer only when a batch is full (not per event, as a
	// channel would) keeps a goroutine wake-up off every request.
	mu     sync.Mutex
	q      []Event
	closed bool
	wake   chan struct{} // capacity 1: a batch is ready

	dropped   atomic.Uint64
	written   atomic.Uint64
	failures  atomic.Uint64
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	dropLog   rate.Sometimes  // throttles drop reports (run goroutine only)
	reported  uint64          // Dropped() at the last report
	ctx       context.Context // cancelled when Close's context ends
	abort     context.CancelFunc
}

// dropLogInterval is the shortest time between two log lines about dropped
// events or failing stores.
const dropLogInterval = 10 * time.Second

// BatchOption configures a BatchSink.
type BatchOption func(*BatchSink)

// WithQueueSize sets how many events may wait to be written (default
// 65,536), besides those being written. When full, new events are dropped
// and counted. An Event is about 150 bytes; the queue grows as it fills and
// keeps its storage.
func WithQueueSize(n int) BatchOption {
	return func(s *BatchSink) {
		if n > 0 {
			s.size = n
		}
	}
}

// WithBatchSize sets the largest batch handed to the writer (default 1,000).
func WithBatchSize(n int) BatchOption {
	return func(s *BatchSink) {
		if n > 0 {
			s.batch = n
		}
	}
}

// WithFlushInterval sets how long a partial batch may wait (default 1 s).
func WithFlushInterval(d time.Duration) BatchOption {
	return func(s *BatchSink) {
		if d > 0 {
			s.interval = d
		}
	}
}

// WithRetryBackoff sets the first and the longest wait between retries of a
// failed batch (defaults 100 ms and 10 s).
func WithRetryBackoff(min, max time.Duration) BatchOption {
	return func(s *BatchSink) {
		if min > 0 && max >= min {
			s.backoff = [2]time.Duration{min, max}
		}
	}
}

// WithWriteTimeout bounds each RecordUsage call (default 30 s).
func WithWriteTimeout(d time.Duration) BatchOption {
	return func(s *BatchSink) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// WithSinkLogger sets where write failures and drops are reported (default
// slog.Default()). Events are never logged.
func WithSinkLogger(l *slog.Logger) BatchOption {
	return func(s *BatchSink) {
		if l != nil {
			s.log = l
		}
	}
}

// NewBatchSink starts a BatchSink writing to w. Call Close to stop it.
func NewBatchSink(w UsageWriter, opts ...BatchOption) *BatchSink {
	s := &BatchSink{
		w:        w,
		batch:    1000,
		interval: time.Second,
		backoff:  [2]time.Duration{100 * time.Millisecond, 10 * time.Second},
		timeout:  30 * time.Second,
		log:      slog.Default(),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		wake:     make(chan struct{}, 1),
		size:     65536,
		dropLog:  rate.Sometimes{Interval: dropLogInterval},
	}
	s.ctx, s.abort = context.WithCancel(context.Background())
	for _, o := range opts {
		o(s)
	}
	s.q = make([]Event, 0, min(s.batch, s.size))
	go s.run()
	return s
}

// Record queues e without blocking. After Close, or when the queue is full,
// e is dropped and counted.
func (s *BatchSink) Record(e Event) {
	s.mu.Lock()
	if s.closed || len(s.q) >= s.size {
		s.mu.Unlock()
		s.dropped.Add(1)
		return
	}
	s.q = append(s.q, e)
	ready := len(s.q)%s.batch == 0 || len(s.q) == s.size // a batch, or full
	s.mu.Unlock()
	if ready {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Dropped returns how many events were dropped because the queue was full,
// the sink was closed, or Close's context ended before they were written.
func (s *BatchSink) Dropped() uint64 { return s.dropped.Load() }

// Written returns how many events the writer has accepted.
func (s *BatchSink) Written() uint64 { return s.written.Load() }

// Failures returns how many RecordUsage calls have failed (each is retried).
func (s *BatchSink) Failures() uint64 { return s.failures.Load() }

// Queued returns how many events wait in the queue.
func (s *BatchSink) Queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.q)
}

// Close stops accepting events and writes everything queued, retrying
// failures until ctx ends. Events still unwritten then are counted as
// dropped and ctx's error is returned. Close is idempotent.
func (s *BatchSink) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.stop)
		select {
		case <-s.done:
		case <-ctx.Done():
			s.closeErr = ctx.Err()
			s.abort() // cancels the write in flight; the drain gives up
			<-s.done
		}
		s.abort()
	})
	return s.closeErr
}

// reportDrops logs how many events were dropped since the last report, at
// most once per dropLogInterval, so an overload cannot flood the log.
func (s *BatchSink) reportDrops() {
	n := s.dropped.Load()
	if n == s.reported {
		return
	}
	s.dropLog.Do(func() {
		s.log.Warn("apitoken: usage events dropped: queue full", "dropped", n-s.reported, "dropped_total", n, "queue_size", s.size)
		s.reported = n
	})
}

func (s *BatchSink) run() {
	defer close(s.done)
	spare := make([]Event, 0, min(s.batch, s.size))
	ticker := time.NewTicker(s.interval)
	defer ticker.Stop()
	for {
		stopping, woken := false, false
		select {
		case <-s.wake:
			woken = true
		case <-ticker.C:
			s.reportDrops()
		case <-s.stop:
			stopping = true
		}
		s.mu.Lock()
		all := s.q
		taken := all
		if woken {
			// Take the full batches only; a partial one waits for more
			// events or for the flush interval.
			eb := min(s.batch, s.size)
			taken = all[:len(all)-len(all)%eb]
		}
		if len(taken) > 0 || stopping {
			s.q = append(spare[:0], all[len(taken):]...)
		}
		s.mu.Unlock()
		if len(taken) > 0 {
			if !s.writeAll(taken) {
				// Close's context ended: count what is left and stop.
				s.mu.Lock()
				s.dropped.Add(uint64(len(s.q)))
				s.q = nil
				s.mu.Unlock()
				return
			}
			clear(all)
			spare = all[:0]
		}
		if stopping {
			// Close set closed under mu before closing stop, so the swap
			// above took every event there will ever be.
			return
		}
	}
}

// writeAll writes events in batches. It returns false, having counted the
// unwritten rest as dropped, when Close's context ended first.
func (s *BatchSink) writeAll(events []Event) bool {
	setPeerIPs(events)
	for len(events) > 0 {
		n := min(s.batch, len(events))
		if rest := s.write(events[:n]); len(rest) > 0 {
			s.dropped.Add(uint64(len(events)))
			return false
		}
		events = events[n:]
	}
	return true
}

// setPeerIPs sets the IP of the events the middleware queued with their
// peer address only: the client of a request is its peer when no proxy is
// trusted.
func setPeerIPs(events []Event) {
	for i := range events {
		if e := &events[i]; e.peer != "" {
			e.IP, e.peer = clientip.Resolver{}.ClientIP(e.peer, nil), ""
		}
	}
}

// write hands buf to the writer, retrying with backoff until it succeeds
// (new events queue meanwhile and are dropped only if the queue fills). It
// returns buf emptied, or unwritten when Close's context has ended.
func (s *BatchSink) write(buf []Event) []Event {
	wait := s.backoff[0]
	for attempt := 0; ; attempt++ {
		if s.ctx.Err() != nil { // Close's context has ended
			return buf
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
		err := s.w.RecordUsage(ctx, buf)
		cancel()
		if err == nil {
			s.written.Add(uint64(len(buf)))
			if attempt > 0 {
				s.log.Info("apitoken: usage writes recovered", "attempts", attempt+1, "events", len(buf))
			}
			clear(buf)
			return buf[:0]
		}
		s.failures.Add(1)
		s.reportDrops() // the queue fills while the store is down
		if attempt == 0 {
			s.log.Warn("apitoken: usage write failed; retrying", "events", len(buf), "error", err.Error())
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return buf
		}
		wait *= 2
		if wait > s.backoff[1] {
			wait = s.backoff[1]
		}
	}
}

package apitoken

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
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
}

// Sink receives one Event per request. Record is called on the request path
// and must never block or fail; implementations must be safe for concurrent
// use.
type Sink interface {
	Record(Event)
}

// UsageBatch configures how the Manager's usage pipeline queues events and
// writes them to the UsageStore (WithUsageBatch). A zero field takes its
// default; a negative one, or a RetryMax below RetryMin, makes NewManager
// return an error.
type UsageBatch struct {
	// QueueSize is how many events may wait to be written (default
	// 65,536), besides those being written. When the queue is full, new
	// events are dropped and counted. An Event is about 150 bytes; the
	// queue grows as it fills and keeps its storage.
	QueueSize int
	// Size is the largest batch handed to RecordUsage (default 1,000).
	Size int
	// FlushInterval is how long a partial batch may wait (default 1 s).
	FlushInterval time.Duration
	// RetryMin and RetryMax are the first and the longest wait between
	// retries of a failed batch (defaults 100 ms and 10 s).
	RetryMin, RetryMax time.Duration
	// WriteTimeout bounds each RecordUsage call (default 30 s).
	WriteTimeout time.Duration
}

// withDefaults returns b with every zero field set to its default, or an
// error naming the first invalid field.
func (b UsageBatch) withDefaults() (UsageBatch, error) {
	defInt := func(name string, v *int, def int) error {
		if *v < 0 {
			return fmt.Errorf("apitoken: WithUsageBatch: negative %s", name)
		}
		if *v == 0 {
			*v = def
		}
		return nil
	}
	defDur := func(name string, v *time.Duration, def time.Duration) error {
		if *v < 0 {
			return fmt.Errorf("apitoken: WithUsageBatch: negative %s", name)
		}
		if *v == 0 {
			*v = def
		}
		return nil
	}
	err := errors.Join(
		defInt("QueueSize", &b.QueueSize, 65_536),
		defInt("Size", &b.Size, 1000),
		defDur("FlushInterval", &b.FlushInterval, time.Second),
		defDur("RetryMin", &b.RetryMin, 100*time.Millisecond),
		defDur("RetryMax", &b.RetryMax, 10*time.Second),
		defDur("WriteTimeout", &b.WriteTimeout, 30*time.Second),
	)
	if err == nil && b.RetryMax < b.RetryMin {
		err = errors.New("apitoken: WithUsageBatch: RetryMax below RetryMin")
	}
	return b, err
}

// UsageStats counts the Manager's usage pipeline since NewManager.
type UsageStats struct {
	Queued   int    // events waiting to be written now
	Written  uint64 // events the UsageStore accepted
	Failures uint64 // RecordUsage calls that failed (each batch is retried)
	Dropped  uint64 // events lost: queue full, sent after Close, or Close's context ended first
}

// batchSink queues events in a bounded buffer and writes them to a
// usageWriter in batches from one background goroutine. Record never blocks:
// when the queue is full the event is dropped and counted. A batch whose
// write fails is retried with exponential backoff while new events keep
// queueing behind it. close writes everything queued.
type batchSink struct {
	w   usageWriter
	cfg UsageBatch
	log *slog.Logger

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
	reported  uint64          // dropped at the last report
	ctx       context.Context // cancelled when close's context ends
	abort     context.CancelFunc
}

// usageWriter is what a batchSink writes to: UsageStore.RecordUsage.
type usageWriter interface {
	RecordUsage(ctx context.Context, events []Event) error
}

// dropLogInterval is the shortest time between two log lines about dropped
// events or failing stores.
const dropLogInterval = 10 * time.Second

// newBatchSink starts a batchSink writing to w; cfg has its defaults set.
func newBatchSink(w usageWriter, cfg UsageBatch, log *slog.Logger) *batchSink {
	s := &batchSink{
		w:       w,
		cfg:     cfg,
		log:     log,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		dropLog: rate.Sometimes{Interval: dropLogInterval},
	}
	s.ctx, s.abort = context.WithCancel(context.Background())
	s.q = make([]Event, 0, min(cfg.Size, cfg.QueueSize))
	go s.run()
	return s
}

// Record queues e without blocking. After Close, or when the queue is full,
// e is dropped and counted.
func (s *batchSink) Record(e Event) {
	s.mu.Lock()
	if s.closed || len(s.q) >= s.cfg.QueueSize {
		s.mu.Unlock()
		s.dropped.Add(1)
		return
	}
	s.q = append(s.q, e)
	ready := len(s.q)%s.cfg.Size == 0 || len(s.q) == s.cfg.QueueSize // a batch, or full
	s.mu.Unlock()
	if ready {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// stats returns the sink's counts.
func (s *batchSink) stats() UsageStats {
	s.mu.Lock()
	queued := len(s.q)
	s.mu.Unlock()
	return UsageStats{Queued: queued, Written: s.written.Load(), Failures: s.failures.Load(), Dropped: s.dropped.Load()}
}

// close stops accepting events and writes everything queued, retrying
// failures until ctx ends. Events still unwritten then are counted as
// dropped and ctx's error is returned. Close is idempotent.
func (s *batchSink) close(ctx context.Context) error {
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
func (s *batchSink) reportDrops() {
	n := s.dropped.Load()
	if n == s.reported {
		return
	}
	s.dropLog.Do(func() {
		s.log.Warn("apitoken: usage events dropped: queue full", "dropped", n-s.reported, "dropped_total", n, "queue_size", s.cfg.QueueSize)
		s.reported = n
	})
}

func (s *batchSink) run() {
	defer close(s.done)
	spare := make([]Event, 0, min(s.cfg.Size, s.cfg.QueueSize))
	ticker := time.NewTicker(s.cfg.FlushInterval)
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
			eb := min(s.cfg.Size, s.cfg.QueueSize)
			taken = all[:len(all)-len(all)%eb]
		}
		if len(taken) > 0 || stopping {
			s.q = append(spare[:0], all[len(taken):]...)
		}
		s.mu.Unlock()
		if len(taken) > 0 {
			if !s.writeAll(taken) {
				// close's context ended: count what is left and stop.
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
			// close set closed under mu before closing stop, so the swap
			// above took every event there will ever be.
			return
		}
	}
}

// writeAll writes events in batches. It returns false, having counted the
// unwritten rest as dropped, when close's context ended first.
func (s *batchSink) writeAll(events []Event) bool {
	for len(events) > 0 {
		n := min(s.cfg.Size, len(events))
		if rest := s.write(events[:n]); len(rest) > 0 {
			s.dropped.Add(uint64(len(events)))
			return false
		}
		events = events[n:]
	}
	return true
}

// write hands buf to the writer, retrying with backoff until it succeeds
// (new events queue meanwhile and are dropped only if the queue fills). It
// returns buf emptied, or unwritten when close's context has ended.
func (s *batchSink) write(buf []Event) []Event {
	wait := s.cfg.RetryMin
	for attempt := 0; ; attempt++ {
		if s.ctx.Err() != nil { // close's context has ended
			return buf
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WriteTimeout)
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
		if wait > s.cfg.RetryMax {
			wait = s.cfg.RetryMax
		}
	}
}

package apitokenredis

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// The limiter's calls to Redis go through a batcher: decisions made at the
// same time are sent together, as one pipeline, by a few worker
// goroutines. Under load this turns a write and a read system call per
// decision, on both sides, into one per batch, which is most of the cost of
// a decision besides the script itself.
//
// When nothing else is in flight and the client stops at its context's
// deadline (ContextTimeoutEnabled), the caller sends its call itself: one
// request alone pays no goroutine switch. Otherwise a worker sends it and
// the caller waits for the answer or its timeout, whichever comes first; a
// call the caller gave up on before a worker took it is never sent.
//
// baseWorkers workers are started on demand; more (up to maxWorkers) only
// when no batch has completed for a timeout, so that workers stuck on a
// Redis that does not answer do not hold up the probes that detect its
// return. A worker ends after idleWorker without work, so an unused
// Limiter holds no goroutine.
const (
	maxBatch    = 128
	baseWorkers = 2
	maxWorkers  = 64
	queueLen    = 4096
	idleWorker  = 5 * time.Second
)

// call is one decision on its way to Redis.
type call struct {
	key   string // Redis key
	limit int
	mode  any // modeAllow or modePeek
	state atomic.Int32
	v     []int64
	err   error
	done  chan struct{} // closed when v and err are set
}

// The script's ARGV[3], boxed once.
var (
	modeAllow any = "1"
	modePeek  any = "0"
)

const (
	callQueued    = iota
	callSent      // a worker took it
	callAbandoned // the caller stopped waiting before a worker took it
)

type batcher struct {
	client      redis.UniversalClient
	winUS       any // the window in microseconds (int64), boxed once
	timeout     time.Duration
	ctxTimeouts bool          // the client stops at its context's deadline
	idleFor     time.Duration // idleWorker; shorter in tests
	epoch       time.Time
	queue       chan *call
	queued      atomic.Int64 // calls submitted and not yet taken by a worker
	workers     atomic.Int64
	idle        atomic.Int64
	active      atomic.Int64 // batches and direct calls being sent
	progress    atomic.Int64 // when a batch last started or completed, since epoch
	batches     atomic.Uint64
	sent        atomic.Uint64
}

func newBatcher(client redis.UniversalClient, winUS any, timeout time.Duration) *batcher {
	return &batcher{
		client:      client,
		winUS:       winUS,
		timeout:     timeout,
		ctxTimeouts: contextTimeouts(client),
		idleFor:     idleWorker,
		epoch:       time.Now(),
		queue:       make(chan *call, queueLen),
	}
}

// contextTimeouts reports whether client's commands stop at their context's
// deadline.
func contextTimeouts(client redis.UniversalClient) bool {
	switch c := client.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

// direct sends c from the caller when nothing else is in flight and ctx's
// deadline bounds the call. It reports whether it did.
func (b *batcher) direct(ctx context.Context, c *call) bool {
	if !b.ctxTimeouts || b.queued.Load() != 0 || !b.active.CompareAndSwap(0, 1) {
		return false
	}
	c.state.Store(callSent)
	b.send(ctx, c)
	b.active.Add(-1)
	b.batches.Add(1)
	b.sent.Add(1)
	return true
}

// submit queues c for a worker, unless ctx ends first (a full queue).
func (b *batcher) submit(ctx context.Context, c *call) bool {
	b.queued.Add(1)
	select {
	case b.queue <- c:
	case <-ctx.Done():
		b.queued.Add(-1)
		return false
	}
	// A worker about to end decrements idle and then looks at queued; this
	// looks at idle after incrementing queued: one of the two sees the
	// other, so c is never left without a worker.
	if b.idle.Load() == 0 {
		if w := b.workers.Load(); w < baseWorkers || w < maxWorkers && b.stalled() {
			b.workers.Add(1)
			go b.work()
		}
	}
	return true
}

// stalled reports whether no batch has started or completed for a timeout
// while some are being sent.
func (b *batcher) stalled() bool {
	return b.active.Load() > 0 && time.Since(b.epoch)-time.Duration(b.progress.Load()) > b.timeout
}

func (b *batcher) work() {
	batch := make([]*call, 0, maxBatch)
	idle := time.NewTimer(b.idleFor)
	defer idle.Stop()
	for {
		b.idle.Add(1)
		select {
		case c := <-b.queue:
			b.idle.Add(-1)
			batch = append(batch[:0], c)
		fill:
			for len(batch) < maxBatch {
				select {
				case c := <-b.queue:
					batch = append(batch, c)
				default:
					break fill
				}
			}
			b.queued.Add(-int64(len(batch)))
			b.run(batch)
			clear(batch)
			idle.Reset(b.idleFor)
		case <-idle.C:
			b.idle.Add(-1)
			b.workers.Add(-1)
			if b.queued.Load() == 0 {
				return
			}
			b.workers.Add(1)
			idle.Reset(b.idleFor)
		}
	}
}

// run sends the batch's calls that are still wanted, as one pipeline.
func (b *batcher) run(batch []*call) {
	n := 0
	for _, c := range batch {
		if c.state.CompareAndSwap(callQueued, callSent) {
			batch[n] = c
			n++
		}
	}
	batch = batch[:n]
	if n == 0 {
		return
	}
	b.active.Add(1)
	defer b.active.Add(-1)
	b.progress.Store(int64(time.Since(b.epoch)))
	b.batches.Add(1)
	b.sent.Add(uint64(n))
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	if n == 1 {
		b.send(ctx, batch[0])
		b.progress.Store(int64(time.Since(b.epoch)))
		return
	}
	pipe := b.client.Pipeline()
	cmds := make([]*redis.Cmd, n)
	hash := slidingLog.Hash()
	for i, c := range batch {
		cmds[i] = pipe.EvalSha(ctx, hash, []string{c.key}, c.limit, b.winUS, c.mode)
	}
	_, _ = pipe.Exec(ctx)
	b.progress.Store(int64(time.Since(b.epoch)))
	for i, c := range batch {
		c.v, c.err = cmds[i].Int64Slice()
		if c.err != nil && redis.HasErrorPrefix(c.err, "NOSCRIPT") {
			// Redis restarted or failed over: send the script again.
			b.send(ctx, c)
			continue
		}
		close(c.done)
	}
}

// send runs the script for c alone (EVALSHA, then EVAL on NOSCRIPT).
func (b *batcher) send(ctx context.Context, c *call) {
	c.v, c.err = slidingLog.Run(ctx, b.client, []string{c.key}, c.limit, b.winUS, c.mode).Int64Slice()
	close(c.done)
}

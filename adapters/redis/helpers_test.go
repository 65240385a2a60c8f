package apitokenredis_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apitoken/apitoken"
)

// redisAddr returns the test Redis's address, from APITOKEN_TEST_REDIS_ADDR.
// Unset, the test is skipped, or fails when CI is set: a skipped integration
// suite must never look green.
func redisAddr(tb testing.TB) string {
	tb.Helper()
	addr := os.Getenv("APITOKEN_TEST_REDIS_ADDR")
	if addr == "" {
		if os.Getenv("CI") != "" {
			tb.Fatal("APITOKEN_TEST_REDIS_ADDR is not set, and CI is: the Redis tests must run in CI")
		}
		tb.Skip("APITOKEN_TEST_REDIS_ADDR is not set: skipping the Redis tests (e.g. APITOKEN_TEST_REDIS_ADDR=127.0.0.1:6379)")
	}
	return addr
}

// newClient returns a client of addr, closed when the test ends.
func newClient(tb testing.TB, addr string, edit ...func(*redis.Options)) *redis.Client {
	tb.Helper()
	opt := &redis.Options{Addr: addr}
	for _, e := range edit {
		e(opt)
	}
	c := redis.NewClient(opt)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// testRedis returns a client of the test Redis and a key prefix of the
// test's own; the keys under it are deleted when the test ends.
func testRedis(tb testing.TB, edit ...func(*redis.Options)) (*redis.Client, string) {
	tb.Helper()
	c := newClient(tb, redisAddr(tb), edit...)
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil {
		tb.Fatalf("APITOKEN_TEST_REDIS_ADDR=%s: %v", c.Options().Addr, err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := strings.NewReplacer("/", ".", " ", "_", "{", "(", "}", ")").Replace(tb.Name())
	prefix := "apitoken:test:" + name + ":" + hex.EncodeToString(b) + ":"
	tb.Cleanup(func() {
		cleanup := redis.NewClient(&redis.Options{Addr: c.Options().Addr})
		defer cleanup.Close()
		iter := cleanup.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			cleanup.Del(ctx, iter.Val())
		}
	})
	return c, prefix
}

// redisTime reads Redis's clock.
func redisTime(tb testing.TB, c redis.UniversalClient) time.Time {
	tb.Helper()
	t, err := c.Time(context.Background()).Result()
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// commandCounter is a go-redis hook counting the commands sent.
type commandCounter struct{ n atomic.Int64 }

func (h *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// logBuffer collects log output (safe for concurrent use).
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// count returns the number of lines containing s.
func (b *logBuffer) count(s string) int {
	n := 0
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// proxy is a TCP proxy to Redis that a test can break and restore.
type proxy struct {
	ln     net.Listener
	target string
	mode   atomic.Int32 // proxyUp, proxyRefuse or proxyBlackhole
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

const (
	proxyUp        = iota // forward to Redis
	proxyRefuse           // close every connection at once
	proxyBlackhole        // accept connections and never answer
)

func newProxy(tb testing.TB, target string) *proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.serve()
	tb.Cleanup(func() {
		_ = ln.Close()
		p.closeAll()
		p.mu.Lock()
		p.conns = nil // track closes what comes later
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// blackhole returns the address of a listener that accepts connections and
// never answers: a Redis that is too slow.
func blackhole(tb testing.TB) string {
	p := newProxy(tb, "")
	p.set(proxyBlackhole)
	return p.addr()
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

// set switches the mode, closing the connections of the previous one.
func (p *proxy) set(mode int32) {
	p.mode.Store(mode)
	p.closeAll()
}

func (p *proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		switch p.mode.Load() {
		case proxyRefuse:
			_ = c.Close()
		case proxyBlackhole:
			p.track(c)
		default:
			p.wg.Add(1)
			go p.forward(c)
		}
	}
}

func (p *proxy) forward(c net.Conn) {
	defer p.wg.Done()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	if !p.track(c) || !p.track(up) {
		_ = c.Close()
		_ = up.Close()
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	_ = c.Close()
	_ = up.Close()
	<-done
}

// eventually polls cond every 5 ms until it holds or d passes.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cond()
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// skewedClock is the system clock moved by skew(): both its wall clock and
// its monotonic reading.
func skewedClock(skew func() time.Duration) apitoken.Clock {
	return &skewed{base: apitoken.SystemClock(), skew: skew}
}

type skewed struct {
	base apitoken.Clock
	skew func() time.Duration
}

func (c *skewed) Read() (time.Time, time.Duration) {
	wall, mono := c.base.Read()
	return wall.Add(c.skew()), mono + c.skew()
}

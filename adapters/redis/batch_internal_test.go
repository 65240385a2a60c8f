package apitokenredis

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// internalRedis is redisAddr of the black-box tests, for the white-box ones.
func internalRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	addr := os.Getenv("APITOKEN_TEST_REDIS_ADDR")
	if addr == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("APITOKEN_TEST_REDIS_ADDR is not set, and CI is: the Redis tests must run in CI")
		}
		t.Skip("APITOKEN_TEST_REDIS_ADDR is not set: skipping the Redis tests")
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	prefix := "apitoken:test:internal:" + time.Now().Format("150405.000000000") + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		_ = c.Close()
	})
	return c, prefix
}

func newCall(key string) *call {
	return &call{key: key, limit: 100, mode: modeAllow, done: make(chan struct{})}
}

// TestPipelineNoScript: a pipeline whose EVALSHAs all answer NOSCRIPT sends
// the script again for each call.
func TestPipelineNoScript(t *testing.T) {
	c, prefix := internalRedis(t)
	ctx := context.Background()
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	b := newBatcher(c, int64(time.Minute/time.Microsecond), time.Minute)
	batch := []*call{newCall(prefix + "{a}"), newCall(prefix + "{a}"), newCall(prefix + "{b}")}
	b.run(batch)
	for i, c := range batch {
		<-c.done
		if c.err != nil || len(c.v) != 5 || c.v[0] != 1 {
			t.Errorf("call %d: %v, %v", i, c.v, c.err)
		}
	}
	if n := c.ZCard(ctx, prefix+"{a}").Val(); n != 2 {
		t.Errorf("ZCARD = %d, want 2", n)
	}
}

// TestAbandonedCallNotSent: a call its caller gave up on before a worker
// took it is never sent.
func TestAbandonedCallNotSent(t *testing.T) {
	c, prefix := internalRedis(t)
	b := newBatcher(c, int64(time.Minute/time.Microsecond), time.Minute)
	gone := newCall(prefix + "{a}")
	gone.state.Store(callAbandoned)
	kept := newCall(prefix + "{b}")
	b.run([]*call{gone, kept})
	<-kept.done
	select {
	case <-gone.done:
		t.Error("the abandoned call was answered")
	default:
	}
	if n := c.Exists(context.Background(), prefix+"{a}").Val(); n != 0 {
		t.Error("the abandoned call was counted")
	}
}

// TestWorkersEnd: idle workers end, and calls submitted while they do are
// still sent.
func TestWorkersEnd(t *testing.T) {
	c, prefix := internalRedis(t)
	b := newBatcher(c, int64(time.Minute/time.Microsecond), time.Minute)
	b.idleFor = time.Millisecond
	ctx := context.Background()
	for round := range 50 {
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cl := newCall(prefix + "{k}")
				if !b.submit(ctx, cl) {
					t.Error("submit failed")
					return
				}
				select {
				case <-cl.done:
					if cl.err != nil {
						t.Error(cl.err)
					}
				case <-time.After(30 * time.Second):
					t.Errorf("round %d: a call was never sent", round)
				}
			}()
		}
		wg.Wait()
		time.Sleep(time.Duration(round%3) * time.Millisecond)
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.workers.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := b.workers.Load(); n != 0 {
		t.Errorf("%d workers left", n)
	}
}

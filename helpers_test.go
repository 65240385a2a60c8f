package apitoken_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/internal/fakeclock"
	"github.com/apitoken/apitoken/store/memory"
)

// clock is the controlled test clock.
type clock = fakeclock.Clock

func newClock() *clock { return fakeclock.New(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)) }

// countingStore counts lookups and can be made to fail.
type countingStore struct {
	*memory.Store
	byHash  atomic.Int64
	touches atomic.Int64
	fail    atomic.Bool
	delay   time.Duration // added to every lookup
}

func (s *countingStore) GetTokenByHash(ctx context.Context, h apitoken.Hash) (*apitoken.Token, error) {
	s.byHash.Add(1)
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	if s.fail.Load() {
		return nil, errUnreachable
	}
	return s.Store.GetTokenByHash(ctx, h)
}

func (s *countingStore) TouchTokens(ctx context.Context, used map[int64]time.Time) error {
	s.touches.Add(1)
	if s.fail.Load() {
		return errUnreachable
	}
	return s.Store.TouchTokens(ctx, used)
}

type unreachable struct{}

func (unreachable) Error() string { return "dial tcp 127.0.0.1:5432: connect: connection refused" }

var errUnreachable error = unreachable{}

// newManager returns a Manager on a counting memory store with a test clock;
// it is closed when the test ends.
func newManager(t testing.TB, opts ...apitoken.Option) (*apitoken.Manager, *countingStore, *clock) {
	t.Helper()
	clk := newClock()
	st := &countingStore{Store: memory.New()}
	all := append([]apitoken.Option{apitoken.WithClock(clk)}, opts...)
	m, err := apitoken.NewManager(st, all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m, st, clk
}

func mustCreate(t testing.TB, m *apitoken.Manager, p apitoken.CreateParams) (*apitoken.Token, string) {
	t.Helper()
	if p.Name == "" {
		p.Name = "test token"
	}
	tok, plain, err := m.Create(context.Background(), p)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return tok, plain
}

func ptr[T any](v T) *T { return &v }

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// events collects usage events synchronously.
type events struct {
	mu  sync.Mutex
	all []apitoken.Event
}

func (e *events) Record(ev apitoken.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

func (e *events) reset() {
	e.mu.Lock()
	e.all = nil
	e.mu.Unlock()
}

func (e *events) list() []apitoken.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]apitoken.Event(nil), e.all...)
}

// waitFor returns the events once at least n have been recorded, or what
// there is after five seconds. A handler that hijacks the connection can
// answer the client before the middleware records its event.
func (e *events) waitFor(n int) []apitoken.Event {
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs := e.list()
		if len(evs) >= n || time.Now().After(deadline) {
			return evs
		}
		time.Sleep(time.Millisecond)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// otherLast returns s with its last character changed to another base62
// character, so the checksum fails.
func otherLast(s string) string {
	if s[len(s)-1] == 'x' {
		return s[:len(s)-1] + "y"
	}
	return s[:len(s)-1] + "x"
}

// sinkFunc adapts a function to apitoken.Sink.
type sinkFunc func(apitoken.Event)

func (f sinkFunc) Record(e apitoken.Event) { f(e) }

// syncBuffer is a bytes.Buffer safe for concurrent use, for logs.
type syncBuffer = apitoken.SyncBuffer

// getProducts serves GET /products with the token plain to h.
func getProducts(h http.Handler, plain string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/products", nil)
	r.Header.Set("Authorization", "Bearer "+plain)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

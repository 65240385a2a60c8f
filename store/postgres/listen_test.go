package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/postgres"
)

// recorder is an Invalidator that records its calls.
type recorder struct {
	ids chan int64
	all atomic.Int64
}

func newRecorder() *recorder { return &recorder{ids: make(chan int64, 1000)} }

func (r *recorder) Invalidate(id int64) { r.ids <- id }
func (r *recorder) InvalidateAll()      { r.all.Add(1) }

// expectID waits up to a second for Invalidate(id).
func (r *recorder) expectID(t *testing.T, what string, id int64) {
	t.Helper()
	timeout := time.After(time.Second)
	for {
		select {
		case got := <-r.ids:
			if got == id {
				return
			}
			t.Errorf("%s: Invalidate(%d), want Invalidate(%d)", what, got, id)
		case <-timeout:
			t.Errorf("%s: no Invalidate(%d) within 1 s", what, id)
			return
		}
	}
}

// expectNone checks that no Invalidate comes within d.
func (r *recorder) expectNone(t *testing.T, what string, d time.Duration) {
	t.Helper()
	select {
	case got := <-r.ids:
		t.Errorf("%s: unexpected Invalidate(%d)", what, got)
	case <-time.After(d):
	}
}

// withParam adds a connection parameter to a URL connection string.
func withParam(dsn, kv string) string {
	if strings.Contains(dsn, "?") {
		return dsn + "&" + kv
	}
	return dsn + "?" + kv
}

func randomName(t testing.TB) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "apitoken_listen_" + hex.EncodeToString(b)
}

// listenRun is a Listen running until the test ends.
type listenRun struct {
	listening <-chan struct{} // receives each (re)start of listening
	done      <-chan struct{} // closed when Listen has returned
	err       error           // Listen's result, once done is closed
	stop      context.CancelFunc
}

// startListen runs Listen until the test ends and waits until it listens.
func startListen(t *testing.T, dsn string, m postgres.Invalidator, opts ...postgres.Option) *listenRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	on := make(chan struct{}, 16)
	done := make(chan struct{})
	r := &listenRun{listening: on, done: done, stop: cancel}
	opts = append(opts, postgres.WithOnListen(func() { on <- struct{}{} }))
	go func() {
		defer close(done)
		r.err = postgres.Listen(ctx, dsn, m, opts...)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Listen did not return within 5 s of its context ending")
		}
	})
	select {
	case <-on:
	case <-done:
		t.Fatalf("Listen returned early: %v", r.err)
	case <-time.After(10 * time.Second):
		t.Fatal("Listen is not listening after 10 s")
	}
	return r
}

// Two Managers on separate connections, each with its own Listen: disabling
// a token through one makes the other refuse it within a second, although
// its cache would trust the token for 30 s.
func TestListenTwoManagers(t *testing.T) {
	dsn := testDSN(t)
	storeA, _, schema := newStore(t)
	storeB := postgres.New(openDB(t), postgres.WithSchema(schema))
	storeC := postgres.New(openDB(t), postgres.WithSchema(schema))
	manager := func(s apitoken.Store) *apitoken.Manager {
		m, err := apitoken.NewManager(s, apitoken.WithCacheTTL(30*time.Second), apitoken.WithUsageStore(nil))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close(context.Background()) })
		return m
	}
	a, b, control := manager(storeA), manager(storeB), manager(storeC) // control has no Listen
	startListen(t, dsn, a, postgres.WithSchema(schema))
	startListen(t, dsn, b, postgres.WithSchema(schema))

	ctx := t.Context()
	tok, plain, err := a.Create(ctx, apitoken.CreateParams{Name: "shared"})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*apitoken.Manager{a, b, control} {
		if _, err := m.Verify(ctx, plain); err != nil {
			t.Fatalf("Verify before the change: %v", err)
		}
	}

	// eventually polls m.Verify every 10 ms until it returns want, for 1 s.
	eventually := func(what string, m *apitoken.Manager, want error) {
		t.Helper()
		start := time.Now()
		for {
			_, err := m.Verify(ctx, plain)
			if errors.Is(err, want) || err == nil && want == nil {
				t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
				return
			}
			if time.Since(start) > time.Second {
				t.Fatalf("%s: Verify still says %v after 1 s, want %v", what, err, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	if _, err := a.Update(ctx, tok.ID, apitoken.Update{Active: apitoken.Set(false)}); err != nil {
		t.Fatal(err)
	}
	eventually("disabled on A, refused by B", b, apitoken.ErrTokenDisabled)
	if _, err := control.Verify(ctx, plain); err != nil {
		t.Errorf("the Manager without Listen refuses already (%v): the test would not show Listen's effect", err)
	}

	if _, err := b.Update(ctx, tok.ID, apitoken.Update{Active: apitoken.Set(true)}); err != nil {
		t.Fatal(err)
	}
	eventually("enabled on B, accepted by A", a, nil)

	if err := b.Delete(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	eventually("deleted on B, refused by A", a, apitoken.ErrInvalidToken)
}

// Which changes are notified.
func TestListenNotifiesChanges(t *testing.T) {
	dsn := testDSN(t)
	s, db, schema := newStore(t)
	rec := newRecorder()
	startListen(t, dsn, rec, postgres.WithSchema(schema))
	if n := rec.all.Load(); n != 1 {
		t.Errorf("InvalidateAll called %d times on starting, want once", n)
	}
	ctx := t.Context()
	id := mustCreate(t, s, "watched")
	other := mustCreate(t, s, "other")
	rec.expectNone(t, "CreateToken", 100*time.Millisecond)

	if err := s.TouchTokens(ctx, map[int64]time.Time{id: u0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordUsage(ctx, []apitoken.Event{{TokenID: id, Endpoint: "/x", Method: "GET", StatusCode: 200, Time: u0.Add(2 * time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	rec.expectNone(t, "last_used_at writes", 300*time.Millisecond)

	if _, err := s.UpdateToken(ctx, id, apitoken.Update{Name: apitoken.Set("renamed")}, u0); err != nil {
		t.Fatal(err)
	}
	rec.expectID(t, "UpdateToken", id)
	if _, err := s.UpdateToken(ctx, id, apitoken.Update{}, u0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	rec.expectID(t, "empty UpdateToken", id)

	q := pq.QuoteIdentifier(schema)
	if _, err := db.Exec(`UPDATE ` + q + `.api_tokens SET active = false, last_used_at = now()`); err != nil {
		t.Fatal(err)
	}
	got := map[int64]bool{}
	for range 2 {
		select {
		case x := <-rec.ids:
			got[x] = true
		case <-time.After(time.Second):
		}
	}
	if !got[id] || !got[other] {
		t.Errorf("an UPDATE in SQL of both tokens notified %v, want both ids", got)
	}

	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`UPDATE `+q+`.api_tokens SET name = 'rolled back' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	rec.expectNone(t, "a rolled back UPDATE", 300*time.Millisecond)

	if err := s.DeleteToken(ctx, id); err != nil {
		t.Fatal(err)
	}
	rec.expectID(t, "DeleteToken", id)

	before := rec.all.Load()
	if _, err := db.Exec(`TRUNCATE ` + q + `.api_tokens CASCADE`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for rec.all.Load() == before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if rec.all.Load() == before {
		t.Error("TRUNCATE did not empty the cache")
	}
}

// A lost listener connection is re-established, and the cache is emptied
// then, since notifications may have been missed.
func TestListenReconnects(t *testing.T) {
	testDSN(t)
	for _, strict := range []bool{false, true} {
		name := "Default"
		if strict {
			name = "Strict"
		}
		t.Run(name, func(t *testing.T) {
			app := randomName(t)
			dsn := withParam(testDSN(t), "application_name="+app)
			s, db, schema := newStore(t)
			rec := newRecorder()
			opts := []postgres.Option{postgres.WithSchema(schema), postgres.WithReconnectInterval(20*time.Millisecond, 100*time.Millisecond),
				postgres.WithLogger(slog.New(slog.DiscardHandler))}
			if strict {
				opts = append(opts, postgres.WithStrictInvalidation())
			}
			run := startListen(t, dsn, rec, opts...)
			if _, err := db.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, app); err != nil {
				t.Fatal(err)
			}
			select {
			case <-run.listening:
			case <-time.After(5 * time.Second):
				t.Fatal("not listening again 5 s after the connection was killed")
			}
			want := int64(2) // on starting and on reconnecting
			if strict {
				want = 3 // and on losing the connection
			}
			if n := rec.all.Load(); n < want || !strict && n != want {
				t.Errorf("InvalidateAll called %d times, want %d", n, want)
			}
			id := mustCreate(t, s, "after reconnect")
			if err := s.DeleteToken(t.Context(), id); err != nil {
				t.Fatal(err)
			}
			rec.expectID(t, "DeleteToken after reconnecting", id)
		})
	}
}

func TestListenStopsWhenContextEnds(t *testing.T) {
	app := randomName(t)
	dsn := withParam(testDSN(t), "application_name="+app)
	_, db, schema := newStore(t)
	run := startListen(t, dsn, newRecorder(), postgres.WithSchema(schema))
	run.stop()
	select {
	case <-run.done:
		if run.err != nil {
			t.Errorf("Listen returned %v after its context ended, want nil", run.err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Listen still running 2 s after its context ended")
	}
	deadline := time.Now().Add(2 * time.Second)
	for count(t, db, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the listener's connection is still open 2 s after Listen returned")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// With the database unreachable Listen keeps retrying, logs without
// secrets, keeps the cache, and still stops when its context ends.
func TestListenWithoutDatabase(t *testing.T) {
	var mu sync.Mutex
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	rec := newRecorder()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- postgres.Listen(ctx, "postgres://apitoken:s3cretpw@127.0.0.1:1/test?sslmode=disable", rec,
			postgres.WithLogger(log), postgres.WithReconnectInterval(10*time.Millisecond, 50*time.Millisecond))
	}()
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Listen = %v, want nil after its context ended", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Listen still running 2 s after its context ended")
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if !strings.Contains(out, "cannot connect") || strings.Contains(out, "s3cretpw") {
		t.Errorf("logs %q: want connection failures reported without the password", out)
	}
	if n := rec.all.Load(); n != 0 {
		t.Errorf("InvalidateAll called %d times without a connection; the cache should keep serving", n)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

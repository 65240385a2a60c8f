package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/postgres"
)

// Acceptance checks of the PostgreSQL store under faults: the usage pipeline loses
// no usage event when the database kills its connections, and during a
// network outage the middleware keeps serving cached tokens, answers 503
// (never 401) for the others, and stores every event once the network is
// back.

var discardLog = slog.New(slog.DiscardHandler)

// openDSN opens a pool on dsn, closed when t ends.
func openDSN(t testing.TB, dsn string) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		t.Fatalf("connecting to %s: %v", dsnEnv, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// 200,000 events recorded by 8 goroutines through a Manager over the Store,
// whose connections the server terminates twice while it writes: every
// event is stored exactly once, the rollups count each once, none dropped.
func TestNoLossUnderBackendTermination(t *testing.T) {
	dsn := testDSN(t)
	_, admin, schema := newStore(t)
	app := randomName(t) // only the sink's connections carry it
	s := postgres.New(openDSN(t, withParam(dsn, "application_name="+app)), postgres.WithSchema(schema))
	tokens := make([]int64, 4)
	for i := range tokens {
		tokens[i] = mustCreate(t, s, fmt.Sprint("no loss ", i))
	}
	sink, err := apitoken.NewManager(s, apitoken.WithLogger(discardLog), apitoken.WithUsageBatch(apitoken.UsageBatch{
		QueueSize: 250_000, RetryMin: 20 * time.Millisecond, RetryMax: 500 * time.Millisecond, FlushInterval: 50 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = sink.Close(context.Background())
		}
	})

	const (
		total     = 200_000
		producers = 8
		per       = total / producers
	)
	sent := make(map[int64]int64) // per token
	for i := range int64(total) {
		sent[tokens[i%int64(len(tokens))]]++
	}
	var wg sync.WaitGroup
	for g := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				n := int64(g*per + i) // unique: the event's request size
				sink.Record(apitoken.Event{
					TokenID:      tokens[n%int64(len(tokens))],
					Endpoint:     fmt.Sprintf("/items/%d", n%5),
					Method:       []string{"GET", "POST", "DELETE"}[n%3],
					StatusCode:   []int{200, 200, 201, 404, 500}[n%5],
					ResponseTime: time.Duration(n%5000) * time.Microsecond,
					RequestSize:  n,
					ResponseSize: n % 977,
					UserAgent:    "noloss/1",
					Time:         u0.Add(time.Duration(n%6)*time.Hour + time.Duration(n)*time.Microsecond),
				})
				if i%2000 == 1999 {
					time.Sleep(time.Millisecond) // spread the load over the kills
				}
			}
		}()
	}

	// Terminate the writer's backends when a fifth and then half of the
	// events are written, preferring a moment when one is inside a
	// transaction.
	kill := func(at uint64) {
		t.Helper()
		for sink.UsageStats().Written < at {
			time.Sleep(time.Millisecond)
		}
		if w := sink.UsageStats().Written; w >= total {
			t.Fatalf("all %d events were written before the kill planned at %d: nothing was tested", w, at)
		}
		for deadline := time.Now().Add(200 * time.Millisecond); time.Now().Before(deadline); time.Sleep(100 * time.Microsecond) {
			if count(t, admin, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle'`, app) > 0 {
				break
			}
		}
		var hit, busy int64
		if err := admin.QueryRowContext(t.Context(), `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)), count(*) FILTER (WHERE state <> 'idle')
			FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&hit, &busy); err != nil {
			t.Fatal(err)
		}
		t.Logf("kill after %d events written: %d backends terminated, %d of them busy", sink.UsageStats().Written, hit, busy)
		if hit == 0 {
			t.Errorf("the kill after %d events hit no backend", at)
		}
	}
	kill(total / 5)
	kill(total / 2)
	wg.Wait()

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	closed = true
	if err := sink.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	q := pq.QuoteIdentifier(schema)
	rows := count(t, admin, `SELECT count(*) FROM `+q+`.api_token_usage`)
	distinct := count(t, admin, `SELECT count(DISTINCT request_size) FROM `+q+`.api_token_usage`)
	rolled := count(t, admin, `SELECT COALESCE(sum(requests), 0) FROM `+q+`.api_token_usage_hourly`)
	rolledBytes := count(t, admin, `SELECT COALESCE(sum(sum_request_bytes), 0) FROM `+q+`.api_token_usage_hourly`)
	rawBytes := count(t, admin, `SELECT COALESCE(sum(request_size), 0) FROM `+q+`.api_token_usage`)
	dropped := int64(sink.UsageStats().Dropped)
	t.Logf("sent %d, stored %d raw rows (%d distinct), rollups count %d, dropped %d, failed writes %d",
		total, rows, distinct, rolled, dropped, sink.UsageStats().Failures)
	if rows+dropped != total {
		t.Errorf("raw rows %d + dropped %d = %d, want %d", rows, dropped, rows+dropped, total)
	}
	if dropped != 0 {
		t.Errorf("%d events dropped", dropped)
	}
	if distinct != rows {
		t.Errorf("%d raw rows but %d distinct events: %d written twice", rows, distinct, rows-distinct)
	}
	if rolled != rows || rolledBytes != rawBytes {
		t.Errorf("rollups count %d requests (%d request bytes), raw rows %d (%d bytes)", rolled, rolledBytes, rows, rawBytes)
	}
	if sink.UsageStats().Failures == 0 {
		t.Error("no write failed: the kills did not reach the writer")
	}
	var perToken []struct {
		ID int64 `db:"token_id"`
		N  int64 `db:"n"`
	}
	if err := admin.SelectContext(t.Context(), &perToken, `SELECT token_id, count(*) AS n FROM `+q+`.api_token_usage GROUP BY token_id`); err != nil {
		t.Fatal(err)
	}
	for _, r := range perToken {
		if r.N != sent[r.ID] {
			t.Errorf("token %d: %d rows, %d events sent", r.ID, r.N, sent[r.ID])
		}
	}
}

// The network between the Store and PostgreSQL is cut for 5 s under load:
// token A, verified before the cut, keeps answering 200 from the Manager's
// cache; token B, never verified, answers 503 {"error":"Token store
// unavailable"} (never 401); B answers 200 soon after the network is back;
// and after Close every request of a known token is a usage row.
func TestOutageCachedTokensKeepWorking(t *testing.T) {
	dsn := testDSN(t)
	_, admin, schema := newStore(t)
	proxy := startProxy(t, dsn)
	s := postgres.New(openProxiedDB(t, proxy, dsn), postgres.WithSchema(schema))
	m, err := apitoken.NewManager(s, apitoken.WithLogger(discardLog), apitoken.WithUsageBatch(apitoken.UsageBatch{
		RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, FlushInterval: 100 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = m.Close(context.Background())
		}
	})
	ctx := t.Context()
	tokA, plainA, err := m.Create(ctx, apitoken.CreateParams{Name: "A"})
	if err != nil {
		t.Fatal(err)
	}
	tokB, plainB, err := m.Create(ctx, apitoken.CreateParams{Name: "B"})
	if err != nil {
		t.Fatal(err)
	}
	h := apitoken.Middleware(m, apitoken.WithLimiter(nil))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	serve := func(plain, path string) (int, string) {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set("Authorization", "Bearer "+plain)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}

	const (
		before = iota
		cut
		after
		phases
	)
	var (
		phase     atomic.Int32
		stop      atomic.Bool
		restoreAt time.Time // written before phase becomes after
		mu        sync.Mutex
		// byPhase[phase][token] counts statuses of requests that began and
		// ended in that phase; token 0 is A, 1 is B.
		byPhase [phases][2]map[int]int
		// Requests that got past the token lookup (anything but 503) are
		// events: all of A's, and B's when the store answered.
		recorded     [2]int64
		badBodies    []string
		firstB200    time.Duration = -1
		bFailedAfter int           // B refused after it had recovered
	)
	for p := range byPhase {
		for k := range byPhase[p] {
			byPhase[p][k] = map[int]int{}
		}
	}

	// A is verified, and so cached, before the outage.
	if code, body := serve(plainA, "/warm"); code != http.StatusOK {
		t.Fatalf("A before the outage: %d %s", code, body)
	}
	recorded[0]++

	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				p0 := phase.Load()
				useB := w%2 == 1 && p0 != before // B is never used before the cut
				plain := plainA
				if useB {
					plain = plainB
				}
				started := time.Now()
				code, body := serve(plain, fmt.Sprintf("/items/%d", i%10))
				p1 := phase.Load()
				mu.Lock()
				k := 0
				if useB {
					k = 1
					if p1 == after && code == http.StatusOK && firstB200 < 0 {
						firstB200 = time.Since(restoreAt)
					} else if p0 == after && firstB200 >= 0 && started.After(restoreAt.Add(firstB200)) && code != http.StatusOK {
						bFailedAfter++
					}
				}
				if code != http.StatusServiceUnavailable {
					recorded[k]++
				}
				if p0 == p1 {
					byPhase[p0][k][code]++
				}
				if code == http.StatusServiceUnavailable && strings.TrimSpace(body) != `{"error":"Token store unavailable"}` && len(badBodies) < 5 {
					badBodies = append(badBodies, body)
				}
				mu.Unlock()
				time.Sleep(time.Millisecond)
			}
		}()
	}

	time.Sleep(3 * time.Second)
	closedConns := proxy.Cut()
	phase.Store(cut)
	cutAt := time.Now()
	failuresBefore := m.UsageStats().Failures
	time.Sleep(5 * time.Second)
	failuresDuring := m.UsageStats().Failures - failuresBefore
	mu.Lock()
	restoreAt = time.Now()
	mu.Unlock()
	proxy.Restore()
	phase.Store(after)
	time.Sleep(3 * time.Second)
	stop.Store(true)
	wg.Wait()
	t.Logf("cut %v after start, closing %d connections; restored after %v", 3*time.Second, closedConns, restoreAt.Sub(cutAt).Round(time.Millisecond))

	closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	closed = true
	if err := m.Close(closeCtx); err != nil {
		t.Errorf("Manager.Close: %v", err)
	}

	name := [2]string{"A", "B"}
	for p, label := range []string{"before", "during", "after"} {
		for k := range 2 {
			t.Logf("%s the cut, %s: %v", label, name[k], byPhase[p][k])
		}
	}
	for code := range byPhase[cut][0] {
		if code != http.StatusOK {
			t.Errorf("during the cut, cached token A got %d (%d times), want only 200", code, byPhase[cut][0][code])
		}
	}
	for code := range byPhase[cut][1] {
		if code != http.StatusServiceUnavailable {
			t.Errorf("during the cut, uncached token B got %d (%d times), want only 503", code, byPhase[cut][1][code])
		}
	}
	if byPhase[cut][0][http.StatusOK] < 100 || byPhase[cut][1][http.StatusServiceUnavailable] < 100 {
		t.Errorf("too few requests during the cut to tell: %v %v", byPhase[cut][0], byPhase[cut][1])
	}
	for p := range phases {
		for k := range 2 {
			if n := byPhase[p][k][http.StatusUnauthorized]; n > 0 {
				t.Errorf("%s got 401 %d times", name[k], n)
			}
		}
	}
	if len(badBodies) > 0 {
		t.Errorf("503 bodies %q, want {\"error\":\"Token store unavailable\"}", badBodies)
	}
	switch {
	case firstB200 < 0:
		t.Error("B never answered 200 after the network came back")
	case firstB200 > 3*time.Second:
		t.Errorf("B answered 200 only %v after the network came back", firstB200)
	default:
		t.Logf("B answered 200 %v after the network came back", firstB200.Round(time.Microsecond))
	}
	if bFailedAfter > 0 {
		t.Errorf("B was refused %d times after it had recovered", bFailedAfter)
	}
	for code, n := range byPhase[after][0] {
		if code != http.StatusOK {
			t.Errorf("after the cut, A got %d (%d times)", code, n)
		}
	}

	q := pq.QuoteIdentifier(schema)
	rowsA := count(t, admin, `SELECT count(*) FROM `+q+`.api_token_usage WHERE token_id = $1`, tokA.ID)
	rowsB := count(t, admin, `SELECT count(*) FROM `+q+`.api_token_usage WHERE token_id = $1`, tokB.ID)
	rolled := count(t, admin, `SELECT COALESCE(sum(requests), 0) FROM `+q+`.api_token_usage_hourly`)
	t.Logf("events: A %d, B %d (B refused with 503: %d); stored rows: A %d, B %d; rollups %d; dropped %d; failed writes during the cut %d, in all %d",
		recorded[0], recorded[1], byPhase[cut][1][http.StatusServiceUnavailable], rowsA, rowsB, rolled, m.UsageStats().Dropped, failuresDuring, m.UsageStats().Failures)
	if rowsA != recorded[0] || rowsB != recorded[1] {
		t.Errorf("stored %d rows of A and %d of B, want %d and %d", rowsA, rowsB, recorded[0], recorded[1])
	}
	if rolled != rowsA+rowsB {
		t.Errorf("rollups count %d requests, raw rows %d", rolled, rowsA+rowsB)
	}
	if d := m.UsageStats().Dropped; d != 0 {
		t.Errorf("%d events dropped", d)
	}
	if failuresDuring == 0 {
		t.Error("no usage write failed during the cut: the cut did not reach the writer")
	}
}

// While the database refuses connections, the admin API answers 503 with
// Retry-After (never a 500), and the store's errors match
// apitoken.ErrStoreUnavailable.
func TestAdminAPIWhileTheDatabaseRefuses(t *testing.T) {
	dsn := testDSN(t)
	_, _, schema := newStore(t)
	proxy := startProxy(t, dsn)
	s := postgres.New(openProxiedDB(t, proxy, dsn), postgres.WithSchema(schema))
	m, err := apitoken.NewManager(s, apitoken.WithLogger(discardLog))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	h, err := apitoken.NewHandler(m, apitoken.StaticSecret("adm_secret"))
	if err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	defer proxy.Restore()
	if _, err := s.GetToken(t.Context(), 1); !errors.Is(err, apitoken.ErrStoreUnavailable) {
		t.Fatalf("GetToken with the database refusing: %v, want ErrStoreUnavailable", err)
	}
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/", ""},
		{"GET", "/1", ""},
		{"POST", "/", `{"name":"x"}`},
		{"PATCH", "/1", `{"name":"y"}`},
	} {
		r := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
		r.Header.Set("Authorization", "Bearer adm_secret")
		if tc.body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Errorf("%s %s: %d %s (Retry-After %q), want 503 with Retry-After", tc.method, tc.path, w.Code, w.Body, w.Header().Get("Retry-After"))
		}
	}
}

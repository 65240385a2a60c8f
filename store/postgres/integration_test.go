package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/memory"
	"github.com/apitoken/apitoken/store/postgres"
)

// Integration tests against the PostgreSQL of APITOKEN_TEST_POSTGRES_DSN,
// each in a fresh schema.

var u0 = time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)

func mustCreate(t testing.TB, s apitoken.Store, name string) int64 {
	t.Helper()
	tok := &apitoken.Token{Name: name, Active: true, RateLimit: 100, CreatedAt: u0, UpdatedAt: u0}
	if err := s.CreateToken(context.Background(), tok, apitoken.Hash(sha(name))); err != nil {
		t.Fatalf("CreateToken(%q): %v", name, err)
	}
	return tok.ID
}

func sha(s string) [32]byte {
	var h [32]byte
	copy(h[:], s)
	h[31] = byte(len(s))
	return h
}

func count(t testing.TB, db *sqlx.DB, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.GetContext(context.Background(), &n, query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestMigrateTwiceIsNoOp(t *testing.T) {
	db, schema := freshSchema(t)
	q := pq.QuoteIdentifier(schema)
	var before time.Time
	if err := db.Get(&before, `SELECT applied_at FROM `+q+`.apitoken_schema_migrations WHERE version = 1`); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := postgres.Migrate(t.Context(), db, postgres.WithSchema(schema)); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
	}
	if n := count(t, db, `SELECT count(*) FROM `+q+`.apitoken_schema_migrations`); n != postgres.SchemaVersion {
		t.Errorf("%d versions recorded, want %d", n, postgres.SchemaVersion)
	}
	var after time.Time
	if err := db.Get(&after, `SELECT applied_at FROM `+q+`.apitoken_schema_migrations WHERE version = 1`); err != nil {
		t.Fatal(err)
	}
	if !after.Equal(before) {
		t.Errorf("version 1 re-applied: applied_at %v, then %v", before, after)
	}
	tables := count(t, db, `SELECT count(*) FROM pg_tables WHERE schemaname = $1`, schema)
	// tokens, usage, three rollups, audit, migrations
	if tables != 7 {
		t.Errorf("%d tables in the schema, want 7", tables)
	}
}

func TestMigrateConcurrently(t *testing.T) {
	const replicas = 4
	admin := pool(t)
	schema := newSchemaName(t)
	dropSchemaLater(t, admin, schema)
	dbs := make([]*sqlx.DB, replicas)
	for i := range dbs {
		dbs[i] = openDB(t) // a connection of its own, as separate replicas have
	}
	start := make(chan struct{})
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Go(func() {
			<-start
			errs[i] = postgres.Migrate(t.Context(), db, postgres.WithSchema(schema))
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: Migrate: %v", i, err)
		}
	}
	q := pq.QuoteIdentifier(schema)
	if n := count(t, admin, `SELECT count(*) FROM `+q+`.apitoken_schema_migrations`); n != postgres.SchemaVersion {
		t.Errorf("%d versions recorded, want %d", n, postgres.SchemaVersion)
	}
	s := postgres.New(admin, postgres.WithSchema(schema))
	mustCreate(t, s, "after concurrent migrations")
}

// Migrate waits for a replica that holds the lock, within its context.
func TestMigrateWaitsForLockWithinContext(t *testing.T) {
	db, schema := freshSchema(t)
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), `SELECT pg_advisory_lock($1)`, postgres.MigrationLockKey); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = postgres.Migrate(ctx, openDB(t), postgres.WithSchema(schema))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Migrate while another holds the lock: %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Migrate took %v to give up", d)
	}
	if _, err := conn.ExecContext(t.Context(), `SELECT pg_advisory_unlock($1)`, postgres.MigrationLockKey); err != nil {
		t.Fatal(err)
	}
}

// Without WithSchema the tables go to the connection's search_path and the
// store uses unqualified names.
func TestMigrateWithoutSchemaUsesSearchPath(t *testing.T) {
	admin := pool(t)
	schema := newSchemaName(t)
	dropSchemaLater(t, admin, schema)
	if _, err := admin.Exec(`CREATE SCHEMA ` + pq.QuoteIdentifier(schema)); err != nil {
		t.Fatal(err)
	}
	sep := "?"
	if strings.Contains(testDSN(t), "?") {
		sep = "&"
	}
	db, err := sqlx.Open("postgres", testDSN(t)+sep+"search_path="+schema)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := postgres.Migrate(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	s := postgres.New(db)
	id := mustCreate(t, s, "search path")
	if n := count(t, admin, `SELECT count(*) FROM `+pq.QuoteIdentifier(schema)+`.api_tokens WHERE id = $1`, id); n != 1 {
		t.Errorf("token not in schema %s", schema)
	}
}

func TestSchemasAreIsolated(t *testing.T) {
	a, _, _ := newStore(t)
	b, _, _ := newStore(t)
	id := mustCreate(t, a, "only in a")
	if _, err := b.GetToken(t.Context(), id); !errors.Is(err, apitoken.ErrNotFound) {
		t.Errorf("token of schema a found in schema b: %v", err)
	}
	if _, total, err := b.ListTokens(t.Context(), apitoken.ListOptions{}); err != nil || total != 0 {
		t.Errorf("schema b lists %d tokens, %v", total, err)
	}
}

func TestTimesTruncatedToMicroseconds(t *testing.T) {
	s, _, _ := newStore(t)
	at := time.Date(2025, 1, 15, 10, 30, 0, 999_999_999, time.FixedZone("x", 3600))
	tok := &apitoken.Token{Name: "ns", CreatedAt: at, UpdatedAt: at, ExpiresAt: &at}
	if err := s.CreateToken(t.Context(), tok, apitoken.Hash{9}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetToken(t.Context(), tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := at.UTC().Truncate(time.Microsecond)
	for name, v := range map[string]time.Time{"CreatedAt": got.CreatedAt, "UpdatedAt": got.UpdatedAt, "ExpiresAt": *got.ExpiresAt} {
		if !v.Equal(want) || v.Location() != time.UTC {
			t.Errorf("%s = %v, want %v in UTC (truncated, not rounded)", name, v, want)
		}
	}
}

func TestListTokensPastTheEnd(t *testing.T) {
	s, _, _ := newStore(t)
	for i := range 3 {
		mustCreate(t, s, fmt.Sprint("t", i))
	}
	list, total, err := s.ListTokens(t.Context(), apitoken.ListOptions{Limit: 2, Offset: 10})
	if err != nil || len(list) != 0 || total != 3 || list == nil {
		t.Errorf("page past the end: %d tokens (nil %t), total %d, %v; want an empty page and total 3", len(list), list == nil, total, err)
	}
	list, total, err = s.ListTokens(t.Context(), apitoken.ListOptions{Search: "%", Limit: 2})
	if err != nil || len(list) != 0 || total != 0 {
		t.Errorf("search for %%: %d tokens, total %d, %v; want none (no wildcards)", len(list), total, err)
	}
}

func TestRecordUsageDropsEventsOfDeletedTokens(t *testing.T) {
	s, db, schema := newStore(t)
	q := pq.QuoteIdentifier(schema)
	live := mustCreate(t, s, "live")
	gone := mustCreate(t, s, "gone")
	if err := s.DeleteToken(t.Context(), gone); err != nil {
		t.Fatal(err)
	}
	ev := func(id int64, min int) apitoken.Event {
		return apitoken.Event{TokenID: id, Endpoint: "/x", Method: "GET", StatusCode: 200, ResponseTime: time.Millisecond, Time: u0.Add(time.Duration(min) * time.Minute)}
	}
	batch := []apitoken.Event{ev(live, 1), ev(gone, 2), ev(999_999, 3), ev(live, 4)}
	if err := s.RecordUsage(t.Context(), batch); err != nil {
		t.Fatalf("RecordUsage with events of a deleted and an unknown token: %v", err)
	}
	if n := count(t, db, `SELECT count(*) FROM `+q+`.api_token_usage`); n != 2 {
		t.Errorf("%d raw rows, want the live token's 2", n)
	}
	if n := count(t, db, `SELECT COALESCE(sum(requests), 0) FROM `+q+`.api_token_usage_hourly`); n != 2 {
		t.Errorf("%d requests in the rollup, want 2", n)
	}
	if err := s.RecordUsage(t.Context(), []apitoken.Event{ev(gone, 5)}); err != nil {
		t.Errorf("RecordUsage of only a deleted token's events: %v", err)
	}
	tok, err := s.GetToken(t.Context(), live)
	if err != nil {
		t.Fatal(err)
	}
	if tok.LastUsedAt == nil || !tok.LastUsedAt.Equal(u0.Add(4*time.Minute)) {
		t.Errorf("LastUsedAt = %v, want the latest event %v", tok.LastUsedAt, u0.Add(4*time.Minute))
	}
	// An older batch does not move last_used_at back.
	if err := s.RecordUsage(t.Context(), []apitoken.Event{ev(live, 0)}); err != nil {
		t.Fatal(err)
	}
	if tok, _ := s.GetToken(t.Context(), live); !tok.LastUsedAt.Equal(u0.Add(4 * time.Minute)) {
		t.Errorf("LastUsedAt moved back to %v", tok.LastUsedAt)
	}
}

// Deleting a token while its events are being written neither fails the
// batch nor leaves rows behind.
func TestRecordUsageRacingDelete(t *testing.T) {
	s, db, schema := newStore(t)
	q := pq.QuoteIdentifier(schema)
	for round := range 10 {
		id := mustCreate(t, s, fmt.Sprint("racing ", round))
		batch := make([]apitoken.Event, 500)
		for i := range batch {
			batch[i] = apitoken.Event{TokenID: id, Endpoint: "/r", Method: "GET", StatusCode: 200, Time: u0}
		}
		var wg sync.WaitGroup
		var recErr, delErr error
		wg.Go(func() { recErr = s.RecordUsage(t.Context(), batch) })
		wg.Go(func() { delErr = s.DeleteToken(t.Context(), id) })
		wg.Wait()
		if recErr != nil || delErr != nil {
			t.Fatalf("round %d: RecordUsage %v, DeleteToken %v", round, recErr, delErr)
		}
	}
	if n := count(t, db, `SELECT count(*) FROM `+q+`.api_token_usage`); n != 0 {
		t.Errorf("%d usage rows left of deleted tokens", n)
	}
	if n := count(t, db, `SELECT count(*) FROM `+q+`.api_token_usage_hourly`); n != 0 {
		t.Errorf("%d rollup rows left of deleted tokens", n)
	}
}

// Events PostgreSQL text columns or indexes could not hold are stored
// rather than failing the batch for ever.
func TestRecordUsageAwkwardEvents(t *testing.T) {
	s, db, schema := newStore(t)
	q := pq.QuoteIdentifier(schema)
	id := mustCreate(t, s, "awkward")
	long := "/" + strings.Repeat("é", 3000) // 6 kB, beyond a B-tree entry
	events := []apitoken.Event{
		{TokenID: id, Endpoint: "/bad\xff\xfeutf8", Method: "GET", StatusCode: 200, UserAgent: "nul\x00byte", Time: u0},
		{TokenID: id, Endpoint: long, Method: "GET", StatusCode: 200, Time: u0},
		{TokenID: id, Endpoint: "/zone", Method: "VERYLONGCUSTOMMETHOD", StatusCode: 200, IP: netip.MustParseAddr("fe80::1%eth0"), Time: u0},
		{TokenID: id, Endpoint: "/neg", Method: "GET", StatusCode: 999, ResponseTime: -time.Second, Time: u0},
		{TokenID: id, Endpoint: "/mapped", Method: "GET", StatusCode: 200, IP: netip.MustParseAddr("::ffff:10.1.2.3"), Time: u0},
		{TokenID: id, Endpoint: "/tab\tnew\nline\\", Method: "GET", StatusCode: 200, UserAgent: "a\tb\\n", Time: u0},
	}
	if err := s.RecordUsage(t.Context(), events); err != nil {
		t.Fatalf("RecordUsage: %v", err)
	}
	if n := count(t, db, `SELECT count(*) FROM `+q+`.api_token_usage`); n != int64(len(events)) {
		t.Errorf("%d raw rows, want %d", n, len(events))
	}
	if n := count(t, db, `SELECT count(*) FROM `+q+`.api_token_usage WHERE endpoint = $1`, long); n != 1 {
		t.Error("the long endpoint was not kept whole in the raw row")
	}
	if n := count(t, db, `SELECT max(octet_length(endpoint)) FROM `+q+`.api_token_usage_hourly`); n > postgres.MaxRollupEndpointLen {
		t.Errorf("rollup endpoint of %d bytes, want at most %d", n, postgres.MaxRollupEndpointLen)
	}
	u, err := s.TokenUsage(t.Context(), id, apitoken.Query{From: u0, To: u0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]apitoken.RecentRequest{}
	for _, r := range u.RecentRequests {
		byPath[r.Endpoint] = r
	}
	if r := byPath["/tab\tnew\nline\\"]; r.UserAgent != "a\tb\\n" {
		t.Errorf("COPY escaping: user agent %q", r.UserAgent)
	}
	if r := byPath["/zone"]; r.IPAddress != "fe80::1" {
		t.Errorf("zoned IP stored as %q, want fe80::1", r.IPAddress)
	}
	if r := byPath["/mapped"]; r.IPAddress != "::ffff:10.1.2.3" {
		t.Errorf("mapped IP reported as %q", r.IPAddress)
	}
	if r := byPath["/neg"]; r.ResponseTimeMS != 0 {
		t.Errorf("negative response time stored as %v ms", r.ResponseTimeMS)
	}
}

// The rollup columns no report shows yet are summed right too.
func TestRollupColumns(t *testing.T) {
	s, db, schema := newStore(t)
	id := mustCreate(t, s, "rollup")
	var events []apitoken.Event
	for i, st := range []int{200, 302, 404, 500} {
		events = append(events, apitoken.Event{
			TokenID: id, Endpoint: fmt.Sprint("/p/", i), Route: "/p/{id}", Method: "GET", StatusCode: st,
			ResponseTime: time.Duration(i+1) * time.Millisecond, RequestSize: 10, ResponseSize: 100, Time: u0.Add(time.Duration(i) * time.Minute),
		})
	}
	// Two batches: the second adds to the rows of the first.
	if err := s.RecordUsage(t.Context(), events[:2]); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordUsage(t.Context(), events[2:]); err != nil {
		t.Fatal(err)
	}
	var r struct {
		Hour      time.Time `db:"hour"`
		Endpoint  string    `db:"endpoint"`
		Requests  int64     `db:"requests"`
		Successes int64     `db:"successes"`
		Failures  int64     `db:"failures"`
		Sum       int64     `db:"sum_response_us"`
		Max       int64     `db:"max_response_us"`
		Req       int64     `db:"sum_request_bytes"`
		Resp      int64     `db:"sum_response_bytes"`
	}
	if err := db.Get(&r, `SELECT hour, endpoint, requests, successes, failures, sum_response_us, max_response_us,
		sum_request_bytes, sum_response_bytes FROM `+pq.QuoteIdentifier(schema)+`.api_token_usage_hourly`); err != nil {
		t.Fatal(err)
	}
	if !r.Hour.Equal(u0) || r.Endpoint != "/p/{id}" || r.Requests != 4 || r.Successes != 2 || r.Failures != 2 ||
		r.Sum != 10_000 || r.Max != 4_000 || r.Req != 40 || r.Resp != 400 {
		t.Errorf("rollup row %+v", r)
	}
}

func TestPruneDeletesInChunksAndKeepsRollups(t *testing.T) {
	s, db, schema := newStore(t, postgres.WithPruneChunk(3))
	q := pq.QuoteIdentifier(schema)
	id := mustCreate(t, s, "prune")
	var events []apitoken.Event
	for i := range 12 {
		events = append(events, apitoken.Event{TokenID: id, Endpoint: "/p", Method: "GET", StatusCode: 200,
			ResponseTime: time.Millisecond, Time: u0.Add(time.Duration(i) * time.Hour)})
	}
	if err := s.RecordUsage(t.Context(), events); err != nil {
		t.Fatal(err)
	}
	rollups := func() string {
		var rows []string
		if err := db.Select(&rows, `SELECT concat_ws(' ', token_id, hour, endpoint, method, requests, sum_response_us)
			FROM `+q+`.api_token_usage_hourly ORDER BY 1`); err != nil {
			t.Fatal(err)
		}
		return strings.Join(rows, "\n")
	}
	stats := func() apitoken.TokenStats {
		st, err := s.TokenStats(t.Context(), []int64{id}, u0.Add(12*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return st[id]
	}
	beforeRollups, beforeStats := rollups(), stats()
	cut := u0.Add(10*time.Hour - time.Nanosecond) // rows of hours 0..9 are older
	n, err := s.Prune(t.Context(), cut)
	if err != nil || n != 10 {
		t.Fatalf("Prune = %d, %v; want 10 (4 chunks of at most 3)", n, err)
	}
	if left := count(t, db, `SELECT count(*) FROM `+q+`.api_token_usage`); left != 2 {
		t.Errorf("%d raw rows left, want 2", left)
	}
	if got := rollups(); got != beforeRollups {
		t.Errorf("Prune changed the rollups:\n%s\nwant\n%s", got, beforeRollups)
	}
	if got := stats(); got != beforeStats || got.TotalRequests != 12 {
		t.Errorf("TokenStats after Prune %+v, before %+v", got, beforeStats)
	}
	if n, err := s.Prune(t.Context(), cut); err != nil || n != 0 {
		t.Errorf("second Prune = %d, %v; want 0", n, err)
	}
	u, err := s.TokenUsage(t.Context(), id, apitoken.Query{From: u0, To: u0.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(u.RecentRequests) != 2 || len(u.HourlyUsage) != 12 {
		t.Errorf("after Prune: %d recent requests (want 2), %d hours (want 12)", len(u.RecentRequests), len(u.HourlyUsage))
	}
}

// The analytics match the memory store's on random data, including queries
// whose bounds fall between microseconds and on hour boundaries.
func TestAnalyticsMatchMemoryStore(t *testing.T) {
	pg, _, _ := newStore(t)
	mem := memory.New()
	stores := []apitoken.Store{mem, pg}
	rng := rand.New(rand.NewPCG(1, 2))
	const tokens = 4
	ids := make([]int64, tokens)
	for i := range tokens {
		for _, s := range stores {
			tok := &apitoken.Token{Name: fmt.Sprint("token ", i%3), Active: i != 2, RateLimit: 1, CreatedAt: u0, UpdatedAt: u0}
			if i == 3 {
				exp := u0.Add(48 * time.Hour)
				tok.ExpiresAt = &exp
			}
			if err := s.CreateToken(t.Context(), tok, apitoken.Hash{byte(i + 1)}); err != nil {
				t.Fatal(err)
			}
			if ids[i] != 0 && ids[i] != tok.ID {
				t.Fatalf("ids differ: %d and %d", ids[i], tok.ID)
			}
			ids[i] = tok.ID
		}
	}
	paths := []string{"/a", "/b", "/b/1", "/B", "/ä", "/products/7"}
	routes := []string{"", "", "/b/{id}", "/products/{id}"}
	methods := []string{"GET", "POST", "DELETE", "get"}
	statuses := []int{200, 201, 302, 399, 400, 404, 500}
	ips := []string{"", "192.168.1.1", "2001:db8::7", "::ffff:10.0.0.1"}
	var events []apitoken.Event
	for i := range 3000 {
		at := u0.Add(time.Duration(rng.Int64N(int64(10 * 24 * time.Hour))))
		at = at.Truncate(time.Microsecond)
		if i%50 == 0 && len(events) > 0 {
			at = events[len(events)-1].Time // equal times: the later recorded is newer
		}
		var ip netip.Addr
		if s := ips[rng.IntN(len(ips))]; s != "" {
			ip = netip.MustParseAddr(s)
		}
		events = append(events, apitoken.Event{
			TokenID: ids[rng.IntN(tokens)], Endpoint: paths[rng.IntN(len(paths))], Route: routes[rng.IntN(len(routes))],
			Method: methods[rng.IntN(len(methods))], StatusCode: statuses[rng.IntN(len(statuses))],
			ResponseTime: time.Duration(rng.Int64N(int64(2 * time.Second))).Truncate(time.Microsecond),
			RequestSize:  rng.Int64N(1000), ResponseSize: rng.Int64N(100000), IP: ip, UserAgent: fmt.Sprint("ua/", rng.IntN(3)), Time: at,
		})
	}
	for start := 0; start < len(events); {
		end := min(start+1+rng.IntN(400), len(events))
		for _, s := range stores {
			if err := s.(apitoken.UsageStore).RecordUsage(t.Context(), events[start:end]); err != nil {
				t.Fatal(err)
			}
		}
		start = end
	}
	queries := []apitoken.Query{
		{From: u0, To: u0.Add(240 * time.Hour)},
		{From: u0.Add(30*time.Minute + 7), To: u0.Add(50*time.Hour + 1), Limit: 5},
		{From: u0.Add(24 * time.Hour), To: u0.Add(48 * time.Hour), Limit: 3},
		{From: u0.Add(-time.Hour), To: u0.Add(time.Nanosecond), Limit: 500},
		{From: u0.Add(100*time.Hour + 999), To: u0.Add(101*time.Hour - 999), Limit: 1000},
		{From: u0.Add(300 * time.Hour), To: u0.Add(400 * time.Hour)},
	}
	// The Manager's query for days=7: To one nanosecond after now.
	now := u0.Add(9 * 24 * time.Hour)
	queries = append(queries, apitoken.Query{From: now.Add(-7 * 24 * time.Hour), To: now.Add(time.Nanosecond)})
	for i, q := range queries {
		for _, id := range append(ids, 12345) {
			want, err := mem.TokenUsage(t.Context(), id, q)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pg.TokenUsage(t.Context(), id, q)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("query %d token %d: TokenUsage differs\n got  %+v\n want %+v", i, id, got, want)
			}
		}
		want, err := mem.Overview(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pg.Overview(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && (got.Overview.TotalRequests != int64(len(events)) || len(got.TopTokens) != tokens) {
			t.Errorf("query 0 covers every event: got %d requests of %d tokens, want %d of %d", got.Overview.TotalRequests, len(got.TopTokens), len(events), tokens)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("query %d: Overview differs\n got  %+v\n want %+v", i, got, want)
		}
	}
	for _, now := range []time.Time{u0, u0.Add(5*24*time.Hour + 30*time.Minute + 1), u0.Add(9*24*time.Hour - 1), u0.Add(30 * 24 * time.Hour)} {
		in := append([]int64{ids[1], 12345}, ids...)
		want, err := mem.TokenStats(t.Context(), in, now)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pg.TokenStats(t.Context(), in, now)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("TokenStats at %v differs\n got  %v\n want %v", now, got, want)
		}
	}
}

// A database that refuses connections gives prompt wrapped errors, never
// ErrNotFound and never a panic. No test database needed.
func TestRefusedConnection(t *testing.T) {
	db, err := sqlx.Open("postgres", "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := postgres.New(db)
	for _, c := range storeCalls() {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			start := time.Now()
			err := c.call(ctx, s)
			if err == nil || errors.Is(err, apitoken.ErrNotFound) || !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("%s: %v, want a wrapped connection refused error", c.name, err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("%s took %v", c.name, d)
			}
		})
	}
	if err := postgres.Migrate(t.Context(), db); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Migrate: %v", err)
	}
}

// A batch whose context ends in the middle of the COPY returns the
// context's error promptly, writes nothing, and leaves the pool usable.
func TestRecordUsageCancelledMidBatch(t *testing.T) {
	s, db, schema := newStore(t)
	id := mustCreate(t, s, "cancelled")
	batch := make([]apitoken.Event, 200_000)
	for i := range batch {
		batch[i] = apitoken.Event{TokenID: id, Endpoint: "/c", Method: "GET", StatusCode: 200, UserAgent: strings.Repeat("u", 100), Time: u0}
	}
	for _, d := range []time.Duration{time.Millisecond, 20 * time.Millisecond, 100 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(t.Context(), d)
		start := time.Now()
		err := s.RecordUsage(ctx, batch)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("RecordUsage cancelled after %v: %v, want context.DeadlineExceeded", d, err)
		}
		t.Logf("cancelled after %v: returned after %v", d, time.Since(start))
		if el := time.Since(start); el > d+2*time.Second {
			t.Errorf("RecordUsage cancelled after %v returned after %v", d, el)
		}
	}
	if n := count(t, db, `SELECT count(*) FROM `+pq.QuoteIdentifier(schema)+`.api_token_usage`); n != 0 {
		t.Errorf("%d rows written by cancelled batches", n)
	}
	if err := s.RecordUsage(t.Context(), batch[:10]); err != nil {
		t.Errorf("RecordUsage after cancelled batches: %v", err)
	}
}

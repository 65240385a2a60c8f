package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/postgres"
	"github.com/apitoken/apitoken/store/storeutil"
)

// BenchmarkAnalyticsLarge compares the reports the Store computes from the
// hourly rollup with the same reports computed from the raw usage rows
// only, over a large data set:
//
//	go test -run '^$' -bench AnalyticsLarge -timeout 60m ./store/postgres/
//
// The data set (default 10,000,000 raw rows; APITOKEN_BENCH_ROWS=n for
// another size) is seeded once into the schema apitoken_bench_<n>, which is
// kept and reused by later runs. Drop it by hand to reseed.

const (
	benchTokens    = 50
	benchEndpoints = 20
	benchDays      = 30
)

// benchRows is the size of the large data set.
func benchRows(b *testing.B) int64 {
	s := os.Getenv("APITOKEN_BENCH_ROWS")
	if s == "" {
		return 10_000_000
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1000 {
		b.Fatalf("APITOKEN_BENCH_ROWS=%q: want a whole number of at least 1000", s)
	}
	return n
}

// largeSet is the seeded data set.
type largeSet struct {
	store  *postgres.Store
	db     *sqlx.DB
	schema string
	end    time.Time // the newest event is just before end
	busy   int64     // the busiest token
}

func (ls *largeSet) table(name string) string { return pq.QuoteIdentifier(ls.schema) + "." + name }

// seedLarge returns the data set of n rows, seeding it when the schema does
// not hold it yet (or holds an unfinished or different one).
func seedLarge(b *testing.B, n int64) *largeSet {
	b.Helper()
	db := pool(b)
	ls := &largeSet{db: db, schema: fmt.Sprintf("apitoken_bench_%d", n)}
	ctx := context.Background()
	// Migrate also brings an existing bench schema to the current version.
	if err := postgres.Migrate(ctx, db, postgres.WithSchema(ls.schema)); err != nil {
		b.Fatal(err)
	}
	ls.store = postgres.New(db, postgres.WithSchema(ls.schema))
	marker := ls.table("bench_seed")
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+marker+` (rows BIGINT NOT NULL, seed_end TIMESTAMPTZ NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `ALTER TABLE `+marker+` ADD COLUMN IF NOT EXISTS rate_limited BOOLEAN NOT NULL DEFAULT false`); err != nil {
		b.Fatal(err)
	}
	var rows int64
	err := db.QueryRowContext(ctx, `SELECT rows, seed_end FROM `+marker).Scan(&rows, &ls.end)
	switch {
	case err == nil && rows == n:
		b.Logf("reusing the %d rows seeded in schema %s", n, ls.schema)
		// Seeds made before migration 0006 have no 429 counts in the
		// per-token rollup: fill them in once.
		var done bool
		if err := db.GetContext(ctx, &done, `SELECT rate_limited FROM `+marker); err != nil {
			b.Fatal(err)
		}
		if !done {
			start := time.Now()
			if _, err := db.ExecContext(ctx, ls.backfillRateLimited()); err != nil {
				b.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, `UPDATE `+marker+` SET rate_limited = true`); err != nil {
				b.Fatal(err)
			}
			b.Logf("filled in the rollup's 429 counts in %s", time.Since(start).Round(time.Millisecond))
		}
	case err == nil || errors.Is(err, sql.ErrNoRows):
		ls.seed(b, n)
	default:
		b.Fatal(err)
	}
	ls.end = ls.end.UTC()
	if err := db.GetContext(ctx, &ls.busy, `SELECT token_id FROM `+ls.table("api_token_usage_hourly")+
		` GROUP BY token_id ORDER BY sum(requests) DESC, token_id LIMIT 1`); err != nil {
		b.Fatal(err)
	}
	return ls
}

func (ls *largeSet) seed(b *testing.B, n int64) {
	b.Helper()
	ctx := context.Background()
	conn, err := ls.db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	// Everything but VACUUM in one transaction: an interrupted seed leaves
	// the schema as it was (DDL included), without a marker.
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	start := time.Now()
	step := start
	exec := func(e interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
	}, what, query string, args ...any) {
		b.Helper()
		if _, err := e.ExecContext(ctx, query, args...); err != nil {
			b.Fatalf("seeding: %s: %v", what, err)
		}
		if what != "" {
			b.Logf("seeding %s: %s", what, time.Since(step).Round(time.Millisecond))
		}
		step = time.Now()
	}
	ls.end = time.Now().UTC().Truncate(time.Microsecond)
	b.Logf("seeding %d raw usage rows into schema %s (once; later runs reuse them)", n, ls.schema)
	exec(tx, "", `SET LOCAL synchronous_commit = off`)
	exec(tx, "", `SET LOCAL maintenance_work_mem = '1GB'`)
	exec(tx, "", `SET LOCAL work_mem = '1GB'`)
	exec(tx, "", `DELETE FROM `+ls.table("bench_seed"))
	exec(tx, "", `TRUNCATE `+ls.table("api_tokens")+` RESTART IDENTITY CASCADE`)
	exec(tx, "tokens", `INSERT INTO `+ls.table("api_tokens")+` (name, token_hash, start, rate_limit, created_at, updated_at)
		SELECT 'bench token ' || i, sha256(convert_to('bench token ' || i, 'UTF8')), 'atk_bench' || i, 0,
			$1::timestamptz - interval '31 days', $1::timestamptz - interval '31 days'
		FROM generate_series(1, $2::int) AS i`, ls.end, benchTokens)

	// The secondary indexes are built after the load, from their own
	// definitions, which is much faster than maintaining them row by row.
	var indexes []struct {
		Name string `db:"indexname"`
		Def  string `db:"indexdef"`
	}
	rows, err := tx.QueryContext(ctx, `SELECT i.indexname, i.indexdef FROM pg_indexes i
		JOIN pg_index x ON x.indexrelid = format('%I.%I', i.schemaname, i.indexname)::regclass
		WHERE i.schemaname = $1 AND i.tablename = 'api_token_usage' AND NOT x.indisprimary AND NOT x.indisunique`, ls.schema)
	if err != nil {
		b.Fatal(err)
	}
	if err := sqlx.StructScan(rows, &indexes); err != nil {
		b.Fatal(err)
	}
	for _, ix := range indexes {
		exec(tx, "", `DROP INDEX `+pq.QuoteIdentifier(ls.schema)+`.`+pq.QuoteIdentifier(ix.Name))
	}

	// Pseudo-random but reproducible: a and b are two independent hashes of
	// the row number. Tokens are skewed (the busiest gets about 14% of the
	// requests, the quietest about 1%), times are spread evenly over 30
	// days, 20 routes with 1,000 ids each, 70% GET / 20% POST / 10% DELETE,
	// 88% 200 and 3% 201, then 404, 429, 500 and 503.
	exec(tx, "raw rows", `INSERT INTO `+ls.table("api_token_usage")+` (token_id, endpoint, route, method, status_code,
			response_time_us, request_size, response_size, ip_address, user_agent, created_at)
		SELECT t.ids[1 + floor($3::int * ((g.a % 10007) / 10007.0) ^ 2)::int],
			'/api/v1/r' || (g.a / 10007 % $4::int) || '/' || (g.b % 1000),
			'/api/v1/r' || (g.a / 10007 % $4::int) || '/{id}',
			CASE WHEN g.b % 10 < 7 THEN 'GET' WHEN g.b % 10 < 9 THEN 'POST' ELSE 'DELETE' END,
			CASE WHEN g.b / 10 % 100 < 88 THEN 200 WHEN g.b / 10 % 100 < 91 THEN 201 WHEN g.b / 10 % 100 < 95 THEN 404
				WHEN g.b / 10 % 100 < 97 THEN 429 WHEN g.b / 10 % 100 < 99 THEN 500 ELSE 503 END,
			200 + g.b / 1000 % 100000,
			g.a / 7 % 4096,
			100 + g.b / 13 % 50000,
			'10.0.0.0'::inet + (g.a % 65536),
			'bench-client/' || (g.b % 5),
			$1::timestamptz - make_interval(days => $5::int) + (g.i - 1) * ($5::int * 86400000000.0 / $2::bigint) * interval '1 microsecond'
		FROM (SELECT i, hashint8(i) & 2147483647 AS a, hashint8(-i) & 2147483647 AS b FROM generate_series(1, $2::bigint) AS i) g,
			(SELECT array_agg(id ORDER BY id) AS ids FROM `+ls.table("api_tokens")+`) t`,
		ls.end, n, benchTokens, benchEndpoints, benchDays)
	for _, ix := range indexes {
		exec(tx, "index "+ix.Name, ix.Def)
	}

	// The rollup RecordUsage would have written for these rows: UTC hour,
	// route else path (all routes here are far below MaxRollupEndpointLen),
	// successes are statuses below 400.
	exec(tx, "hourly rollup", `INSERT INTO `+ls.table("api_token_usage_hourly")+` (token_id, hour, endpoint, method,
			requests, successes, failures, sum_response_us, max_response_us, sum_request_bytes, sum_response_bytes)
		SELECT token_id, date_trunc('hour', created_at, 'UTC'), COALESCE(NULLIF(route, ''), endpoint), method,
			count(*), count(*) FILTER (WHERE status_code < 400), count(*) FILTER (WHERE status_code >= 400),
			sum(response_time_us), max(response_time_us), sum(request_size), sum(response_size)
		FROM `+ls.table("api_token_usage")+` GROUP BY 1, 2, 3, 4`)
	exec(tx, "token rollup", `INSERT INTO `+ls.table("api_token_usage_token_hourly")+` (token_id, hour, requests, successes, failures,
			sum_response_us, max_response_us, sum_request_bytes, sum_response_bytes)
		SELECT token_id, hour, sum(requests), sum(successes), sum(failures), sum(sum_response_us), max(max_response_us),
			sum(sum_request_bytes), sum(sum_response_bytes)
		FROM `+ls.table("api_token_usage_hourly")+` GROUP BY token_id, hour`)
	exec(tx, "token rollup 429s", ls.backfillRateLimited())
	exec(tx, "endpoint rollup", `INSERT INTO `+ls.table("api_token_usage_endpoint_hourly")+` (hour, endpoint, method, requests, successes, failures,
			sum_response_us, sum_request_bytes, sum_response_bytes)
		SELECT hour, endpoint, method, sum(requests), sum(successes), sum(failures), sum(sum_response_us),
			sum(sum_request_bytes), sum(sum_response_bytes)
		FROM `+ls.table("api_token_usage_hourly")+` GROUP BY hour, endpoint, method`)
	exec(tx, "last_used_at", `UPDATE `+ls.table("api_tokens")+` t SET last_used_at = u.at
		FROM (SELECT token_id, max(created_at) AS at FROM `+ls.table("api_token_usage")+` GROUP BY token_id) u WHERE t.id = u.token_id`)
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	for _, table := range []string{"api_tokens", "api_token_usage", "api_token_usage_hourly",
		"api_token_usage_token_hourly", "api_token_usage_endpoint_hourly"} {
		exec(conn, "vacuum analyze "+table, `VACUUM ANALYZE `+ls.table(table))
	}
	exec(conn, "", `INSERT INTO `+ls.table("bench_seed")+` (rows, seed_end, rate_limited) VALUES ($1, $2, true)`, n, ls.end)
	b.Logf("seeded %d rows in %s", n, time.Since(start).Round(time.Second))
}

// backfillRateLimited is the statement that sets the per-token rollup's 429
// counts from the raw rows.
func (ls *largeSet) backfillRateLimited() string {
	return `UPDATE ` + ls.table("api_token_usage_token_hourly") + ` h SET rate_limited = x.n
		FROM (SELECT token_id, date_trunc('hour', created_at, 'UTC') AS hour, count(*) AS n
			FROM ` + ls.table("api_token_usage") + ` WHERE status_code = 429 GROUP BY 1, 2) x
		WHERE h.token_id = x.token_id AND h.hour = x.hour`
}

// ceilHour is the first hour start at or after t.
func ceilHour(t time.Time) time.Time {
	h := t.UTC().Truncate(time.Hour)
	if h.Before(t) {
		h = h.Add(time.Hour)
	}
	return h
}

// rawReports computes TokenUsage and Overview from api_token_usage alone,
// with the Store's rules: hour buckets whose start is in
// [From truncated to the hour, To), endpoint = route else path, successes
// below 400, ties in byte order.
type rawReports struct {
	ls                              *largeSet
	hourly, endpoints, recent       string
	totals, topTokens, topEndpoints string
	rateLimited                     string
}

func newRawReports(ls *largeSet) *rawReports {
	usage, tokens := ls.table("api_token_usage"), ls.table("api_tokens")
	return &rawReports{
		ls: ls,
		hourly: `SELECT date_trunc('hour', created_at, 'UTC') AS h, count(*), count(*) FILTER (WHERE status_code < 400),
				sum(response_time_us)::bigint
			FROM ` + usage + ` WHERE token_id = $1 AND created_at >= $2 AND created_at < $3 GROUP BY h ORDER BY h`,
		endpoints: `SELECT COALESCE(NULLIF(route, ''), endpoint) AS e, method, count(*) AS n, sum(response_time_us)::bigint
			FROM ` + usage + ` WHERE token_id = $1 AND created_at >= $2 AND created_at < $3
			GROUP BY e, method ORDER BY n DESC, COALESCE(NULLIF(route, ''), endpoint) COLLATE "C", method COLLATE "C" LIMIT $4`,
		recent: `SELECT endpoint, method, status_code, response_time_us, COALESCE(host(ip_address), ''), user_agent, created_at
			FROM ` + usage + ` WHERE token_id = $1 AND created_at >= $2 AND created_at < $3
			ORDER BY created_at DESC, id DESC LIMIT $4`,
		totals: `SELECT (SELECT count(*) FROM ` + tokens + ` WHERE active AND (expires_at IS NULL OR expires_at > $3)),
				count(*), count(*) FILTER (WHERE status_code < 400), COALESCE(sum(response_time_us), 0)::bigint
			FROM ` + usage + ` WHERE created_at >= $1 AND created_at < $2`,
		topTokens: `SELECT u.token_id, t.name, count(*) AS n, sum(u.response_time_us)::bigint,
				count(*) FILTER (WHERE u.status_code = 429)
			FROM ` + usage + ` u JOIN ` + tokens + ` t ON t.id = u.token_id
			WHERE u.created_at >= $1 AND u.created_at < $2 GROUP BY u.token_id, t.name ORDER BY n DESC, u.token_id LIMIT $3`,
		rateLimited: `SELECT u.token_id, t.name, t.rate_limit, count(*) FILTER (WHERE u.status_code = 429) AS rl, count(*)
			FROM ` + usage + ` u JOIN ` + tokens + ` t ON t.id = u.token_id
			WHERE u.created_at >= $1 AND u.created_at < $2 GROUP BY u.token_id, t.name, t.rate_limit
			HAVING count(*) FILTER (WHERE u.status_code = 429) > 0 ORDER BY rl DESC, u.token_id LIMIT $3`,
		topEndpoints: `SELECT COALESCE(NULLIF(route, ''), endpoint) AS e, method, count(*) AS n, sum(response_time_us)::bigint
			FROM ` + usage + ` WHERE created_at >= $1 AND created_at < $2
			GROUP BY e, method ORDER BY n DESC, COALESCE(NULLIF(route, ''), endpoint) COLLATE "C", method COLLATE "C" LIMIT $3`,
	}
}

// bounds returns the raw-row range [lo, hi) whose hour buckets the Store
// reports for q, and the bound of recent requests.
func rawBounds(q apitoken.Query) (lo, hi, recentLo, recentHi time.Time) {
	lo = q.From.UTC().Truncate(time.Hour)
	to := q.To.UTC().Truncate(time.Microsecond)
	if to.Before(q.To) {
		to = to.Add(time.Microsecond)
	}
	recentLo = q.From.UTC().Truncate(time.Microsecond)
	if recentLo.Before(q.From) {
		recentLo = recentLo.Add(time.Microsecond)
	}
	return lo, ceilHour(to), recentLo, to
}

func avgMS(sumUS, n int64) float64 {
	return storeutil.AvgMillis(time.Duration(sumUS)*time.Microsecond, n)
}

func (r *rawReports) each(ctx context.Context, query string, args []any, f func(*sql.Rows) error) error {
	rows, err := r.ls.db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := f(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (r *rawReports) endpointList(ctx context.Context, query string, args ...any) ([]apitoken.EndpointUsage, error) {
	out := []apitoken.EndpointUsage{}
	err := r.each(ctx, query, args, func(rows *sql.Rows) error {
		var (
			e     apitoken.EndpointUsage
			sumUS int64
		)
		if err := rows.Scan(&e.Endpoint, &e.Method, &e.Requests, &sumUS); err != nil {
			return err
		}
		e.AvgResponseTime = avgMS(sumUS, e.Requests)
		out = append(out, e)
		return nil
	})
	return out, err
}

func (r *rawReports) TokenUsage(ctx context.Context, id int64, q apitoken.Query) (*apitoken.TokenUsage, error) {
	lo, hi, recentLo, recentHi := rawBounds(q)
	limit := storeutil.QueryLimit(q)
	res := &apitoken.TokenUsage{HourlyUsage: []apitoken.HourlyUsage{}, RecentRequests: []apitoken.RecentRequest{}}
	err := r.each(ctx, r.hourly, []any{id, lo, hi}, func(rows *sql.Rows) error {
		var (
			h            time.Time
			n, ok, sumUS int64
		)
		if err := rows.Scan(&h, &n, &ok, &sumUS); err != nil {
			return err
		}
		res.HourlyUsage = append(res.HourlyUsage, apitoken.HourlyUsage{Hour: h.UTC(), Requests: n,
			AvgResponseTime: avgMS(sumUS, n), SuccessfulRequests: ok, FailedRequests: n - ok})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if res.EndpointUsage, err = r.endpointList(ctx, r.endpoints, id, lo, hi, limit); err != nil {
		return nil, err
	}
	err = r.each(ctx, r.recent, []any{id, recentLo, recentHi, limit}, func(rows *sql.Rows) error {
		var (
			x  apitoken.RecentRequest
			us int64
			ip string
			at time.Time
		)
		if err := rows.Scan(&x.Endpoint, &x.Method, &x.StatusCode, &us, &ip, &x.UserAgent, &at); err != nil {
			return err
		}
		x.ResponseTimeMS = storeutil.RoundMillis(float64(us) / 1000)
		if a, err := netip.ParseAddr(ip); err == nil {
			ip = a.String()
		}
		x.IPAddress, x.CreatedAt = ip, at.UTC()
		res.RecentRequests = append(res.RecentRequests, x)
		return nil
	})
	return res, err
}

func (r *rawReports) Overview(ctx context.Context, q apitoken.Query) (*apitoken.Overview, error) {
	lo, hi, _, _ := rawBounds(q)
	limit := storeutil.QueryLimit(q)
	res := &apitoken.Overview{TopTokens: []apitoken.TopToken{}, RateLimitedTokens: []apitoken.RateLimitedToken{}}
	o := &res.Overview
	var sumUS int64
	if err := r.ls.db.QueryRowContext(ctx, r.totals, lo, hi, q.To.UTC().Truncate(time.Microsecond)).Scan(
		&o.ActiveTokens, &o.TotalRequests, &o.SuccessfulRequests, &sumUS); err != nil {
		return nil, err
	}
	o.FailedRequests = o.TotalRequests - o.SuccessfulRequests
	o.AvgResponseTime = avgMS(sumUS, o.TotalRequests)
	err := r.each(ctx, r.topTokens, []any{lo, hi, limit}, func(rows *sql.Rows) error {
		var (
			t     apitoken.TopToken
			sumUS int64
		)
		if err := rows.Scan(&t.ID, &t.Name, &t.Requests, &sumUS, &t.RateLimitedRequests); err != nil {
			return err
		}
		t.AvgResponseTime = avgMS(sumUS, t.Requests)
		res.TopTokens = append(res.TopTokens, t)
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = r.each(ctx, r.rateLimited, []any{lo, hi, limit}, func(rows *sql.Rows) error {
		var t apitoken.RateLimitedToken
		if err := rows.Scan(&t.TokenID, &t.Name, &t.RateLimit, &t.RateLimitedRequests, &t.Requests); err != nil {
			return err
		}
		res.RateLimitedTokens = append(res.RateLimitedTokens, t)
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.TopEndpoints, err = r.endpointList(ctx, r.topEndpoints, lo, hi, limit)
	return res, err
}

func BenchmarkAnalyticsLarge(b *testing.B) {
	testDSN(b)
	ls := seedLarge(b, benchRows(b))
	raw := newRawReports(ls)
	// The Manager's query for days=7: To one nanosecond after now.
	q := apitoken.Query{From: ls.end.Add(-7 * 24 * time.Hour), To: ls.end.Add(time.Nanosecond)}
	ctx := context.Background()

	// Both paths must give the same reports, or the comparison means
	// nothing (and the seeded rollup would not be what RecordUsage writes).
	gotU, err := ls.store.TokenUsage(ctx, ls.busy, q)
	if err != nil {
		b.Fatal(err)
	}
	wantU, err := raw.TokenUsage(ctx, ls.busy, q)
	if err != nil {
		b.Fatal(err)
	}
	if !reflect.DeepEqual(gotU, wantU) {
		b.Fatalf("TokenUsage: rollup and raw rows differ\n rollup %+v\n raw    %+v", gotU, wantU)
	}
	gotO, err := ls.store.Overview(ctx, q)
	if err != nil {
		b.Fatal(err)
	}
	wantO, err := raw.Overview(ctx, q)
	if err != nil {
		b.Fatal(err)
	}
	if !reflect.DeepEqual(gotO, wantO) {
		b.Fatalf("Overview: rollup and raw rows differ\n rollup %+v\n raw    %+v", gotO, wantO)
	}
	b.Logf("7-day reports over %d raw rows: %d requests in range, busiest token %d has %d, %d hours",
		benchRows(b), gotO.Overview.TotalRequests, ls.busy, gotO.TopTokens[0].Requests, len(gotU.HourlyUsage))

	run := func(name string, f func() error) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := f(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
		})
	}
	run("TokenUsage7d/rollup", func() error { _, err := ls.store.TokenUsage(ctx, ls.busy, q); return err })
	run("TokenUsage7d/raw", func() error { _, err := raw.TokenUsage(ctx, ls.busy, q); return err })
	run("Overview7d/rollup", func() error { _, err := ls.store.Overview(ctx, q); return err })
	run("Overview7d/raw", func() error { _, err := raw.Overview(ctx, q); return err })
}

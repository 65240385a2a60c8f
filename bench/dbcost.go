package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/postgres"
)

// DBCost is what n requests cost the database.
type DBCost struct {
	Requests   int
	Statements int64 // round trips sent (see Counter)
	Rows       int64 // rows inserted, updated or deleted (pg_stat_user_tables)
	Elapsed    time.Duration
}

// DBCostSchema is the schema apitoken's tables live in for MeasureDBCost.
const DBCostSchema = "apitoken_bench_dbcost"

// MeasureDBCost serves n requests, one after another, through apitoken on
// PostgreSQL (store/postgres for tokens and usage, the Manager's usage pipeline
// and last_used_at batching, flushed by Close at the end) and through the
// naive baseline, and counts what each sent to the database after setup.
func MeasureDBCost(ctx context.Context, dsn string, n int) (apitokenCost, naiveCost DBCost, err error) {
	admin, err := sqlx.Open("postgres", dsn)
	if err != nil {
		return
	}
	defer admin.Close()

	// apitoken on PostgreSQL.
	if _, err = admin.ExecContext(ctx, `DROP SCHEMA IF EXISTS `+pq.QuoteIdentifier(DBCostSchema)+` CASCADE`); err != nil {
		return
	}
	if err = postgres.Migrate(ctx, admin, postgres.WithSchema(DBCostSchema)); err != nil {
		return
	}
	apitokenCost, err = measure(ctx, dsn, admin, DBCostSchema, n, func(db *sqlx.DB) (http.Handler, string, func() error, error) {
		m, err := apitoken.NewManager(postgres.New(db, postgres.WithSchema(DBCostSchema)), apitoken.WithLogger(quietLogger()))
		if err != nil {
			return nil, "", nil, err
		}
		_, plain, err := m.Create(ctx, apitoken.CreateParams{Name: "bench", RateLimit: ptrTo(apitoken.MaxRateLimit)})
		if err != nil {
			return nil, "", nil, err
		}
		h := apitoken.Middleware(m, apitoken.WithBasePath("/api"))(Bare)
		return h, "Bearer " + plain, func() error { return m.Close(ctx) }, nil
	})
	if err != nil {
		return
	}

	// The naive baseline.
	naiveCost, err = measure(ctx, dsn, admin, NaiveSchema, n, func(db *sqlx.DB) (http.Handler, string, func() error, error) {
		nv, err := NewNaive(ctx, db, NaiveSchema)
		if err != nil {
			return nil, "", nil, err
		}
		token, err := nv.CreateToken(ctx, "bench")
		if err != nil {
			return nil, "", nil, err
		}
		return nv.Middleware(Bare), "Bearer " + token, func() error { return nil }, nil
	})
	return
}

// measure sets a contender up on a counted pool, serves n requests and
// closes it, and returns the statements and rows after setup.
func measure(ctx context.Context, dsn string, admin *sqlx.DB, schema string, n int,
	setup func(db *sqlx.DB) (http.Handler, string, func() error, error)) (DBCost, error) {
	var counter Counter
	db, err := OpenCounted(dsn, &counter)
	if err != nil {
		return DBCost{}, err
	}
	h, authorization, closeFn, err := setup(db)
	if err != nil {
		db.Close()
		return DBCost{}, err
	}
	// A backend reports its table counters when it exits: closing the
	// setup's connections makes the baseline below complete.
	db.SetMaxIdleConns(0)
	db.SetMaxIdleConns(2)
	rows0, err := rowsWritten(ctx, admin, schema)
	if err != nil {
		db.Close()
		return DBCost{}, err
	}
	statements0 := counter.Statements()
	start := time.Now()
	for i := range n {
		r := httptest.NewRequest("GET", Path, nil)
		r.Header.Set("Authorization", authorization)
		r.Header.Set("User-Agent", "apitoken-bench")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			db.Close()
			return DBCost{}, fmt.Errorf("%s: request %d: %d %s", schema, i, w.Code, w.Body)
		}
	}
	if err := closeFn(); err != nil {
		db.Close()
		return DBCost{}, err
	}
	elapsed := time.Since(start)
	statements := counter.Statements() - statements0
	db.Close()
	rows1, err := rowsWritten(ctx, admin, schema)
	if err != nil {
		return DBCost{}, err
	}
	return DBCost{Requests: n, Statements: statements, Rows: rows1 - rows0, Elapsed: elapsed}, nil
}

// rowsWritten sums the rows inserted, updated and deleted in schema's
// tables. Table counters reach pg_stat_user_tables when a backend reports
// them (at the latest when it exits), so it waits until two readings a
// second apart agree.
func rowsWritten(ctx context.Context, db *sqlx.DB, schema string) (int64, error) {
	read := func() (int64, error) {
		var n int64
		err := db.GetContext(ctx, &n, `SELECT COALESCE(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint
			FROM pg_stat_user_tables WHERE schemaname = $1`, schema)
		return n, err
	}
	prev, err := read()
	if err != nil {
		return 0, err
	}
	for range 10 {
		time.Sleep(time.Second)
		cur, err := read()
		if err != nil {
			return 0, err
		}
		if cur == prev {
			return cur, nil
		}
		prev = cur
	}
	return prev, nil
}

package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/apitoken/apitoken/store/postgres"
)

// dsnEnv names the variable holding the test database's connection string.
const dsnEnv = "APITOKEN_TEST_POSTGRES_DSN"

// testDSN returns the test database's connection string. Without one the
// test is skipped, or fails when CI is set: a skipped integration suite must
// never look green. Every integration test starts here.
func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set, and CI is: the PostgreSQL integration tests must run in CI", dsnEnv)
		}
		t.Skipf("%s is not set; skipping PostgreSQL integration tests (e.g. %s=postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", dsnEnv, dsnEnv)
	}
	return dsn
}

var (
	sharedMu sync.Mutex
	sharedDB *sqlx.DB
)

func TestMain(m *testing.M) {
	code := m.Run()
	sharedMu.Lock()
	if sharedDB != nil {
		_ = sharedDB.Close()
	}
	sharedMu.Unlock()
	os.Exit(code)
}

// openDB opens a new pool on the test database, closed when t ends.
func openDB(t testing.TB) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("postgres", testDSN(t))
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

// pool returns the pool shared by the tests that need no connection of
// their own.
func pool(t testing.TB) *sqlx.DB {
	t.Helper()
	dsn := testDSN(t)
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedDB == nil {
		db, err := sqlx.Open("postgres", dsn)
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(16)
		sharedDB = db
	}
	return sharedDB
}

// newSchemaName returns a random schema name that no other test run uses.
func newSchemaName(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "apitoken_test_" + hex.EncodeToString(b)
}

// dropSchemaLater drops schema when t ends.
func dropSchemaLater(t testing.TB, db *sqlx.DB, schema string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, `DROP SCHEMA IF EXISTS `+pq.QuoteIdentifier(schema)+` CASCADE`); err != nil {
			t.Errorf("dropping test schema %s: %v", schema, err)
		}
	})
}

// freshSchema creates a random schema, migrates it and drops it when t ends.
// It returns the shared pool and the schema.
func freshSchema(t testing.TB) (*sqlx.DB, string) {
	t.Helper()
	db := pool(t)
	schema := newSchemaName(t)
	dropSchemaLater(t, db, schema)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := postgres.Migrate(ctx, db, postgres.WithSchema(schema)); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db, schema
}

// newStore returns a Store over a fresh, migrated schema.
func newStore(t testing.TB, opts ...postgres.Option) (*postgres.Store, *sqlx.DB, string) {
	t.Helper()
	db, schema := freshSchema(t)
	return postgres.New(db, append([]postgres.Option{postgres.WithSchema(schema)}, opts...)...), db, schema
}

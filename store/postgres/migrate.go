package postgres

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/lib/pq"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLockKey is the pg_advisory_xact_lock key that serialises Migrate
// across processes: "apitoken" in ASCII.
const migrationLockKey int64 = 0x617069746f6b656e

// TxBeginner starts transactions: *sql.DB, *sqlx.DB and *sql.Conn are
// TxBeginners.
type TxBeginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order. A file is
// named NNNN_description.sql; NNNN is its version.
func migrations() ([]migration, error) {
	files, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, f := range files {
		base := path.Base(f)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("apitoken: postgres: migration file %q is not named NNNN_description.sql", base)
		}
		b, err := migrationFiles.ReadFile(f)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("apitoken: postgres: two migrations have version %d", ms[i].version)
		}
	}
	return ms, nil
}

// SchemaVersion is the schema version this package's Migrate brings the
// database to.
const SchemaVersion = 6

// Migrate creates or upgrades the tables to SchemaVersion. It runs in one
// transaction holding a transaction-scoped advisory lock on a fixed key, so
// replicas that start at once apply each migration exactly once: the others
// wait for the lock, then find nothing left to do. Applied versions are
// recorded in apitoken_schema_migrations (version, applied_at); running
// Migrate again is a no-op. Versions recorded by a newer release are left
// alone. With WithSchema the schema is created when missing and the tables
// go there; the NOTIFY trigger is bound to ChannelName(schema). Migrate needs
// the privileges to create tables (and the schema) and respects ctx, also
// while waiting for the lock.
func Migrate(ctx context.Context, db TxBeginner, opts ...Option) error {
	c := newConfig(opts)
	if c.err != nil {
		return c.err
	}
	if db == nil {
		return fmt.Errorf("apitoken: postgres: Migrate needs a database")
	}
	ms, err := migrations()
	if err != nil {
		return err
	}
	fail := func(op string, err error) error { return wrapErr(ctx, "migrate: "+op, err) }
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fail("begin", err)
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit

	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
		return fail("lock", err)
	}
	if c.schema != "" {
		if err := useSchema(ctx, tx, c.schema); err != nil {
			return err
		}
	}
	n := newNames(c.schema)
	applied, err := appliedVersions(ctx, tx, n.migrations)
	if err != nil {
		return err
	}
	channel := pq.QuoteLiteral(ChannelName(c.schema))
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		body := strings.ReplaceAll(m.sql, "{{channel}}", channel)
		if _, err := tx.ExecContext(ctx, body); err != nil {
			return fail(m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+n.migrations+` (version) VALUES ($1)`, m.version); err != nil {
			return fail("record "+m.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fail("commit", err)
	}
	return nil
}

// useSchema makes schema, created when missing, the one tx's unqualified
// names (those of the migrations) refer to, until tx ends.
func useSchema(ctx context.Context, tx *sql.Tx, schema string) error {
	var exists bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		return wrapErr(ctx, "migrate: schema", err)
	}
	if !exists {
		if _, err := tx.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+pq.QuoteIdentifier(schema)); err != nil {
			return wrapErr(ctx, "migrate: create schema", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `SET LOCAL search_path TO `+pq.QuoteIdentifier(schema)); err != nil {
		return wrapErr(ctx, "migrate: search_path", err)
	}
	return nil
}

// appliedVersions creates the migrations table (its qualified name) when
// missing and returns the versions it records.
func appliedVersions(ctx context.Context, tx *sql.Tx, table string) (map[int]bool, error) {
	fail := func(op string, err error) (map[int]bool, error) { return nil, wrapErr(ctx, "migrate: "+op, err) }
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (
		version    INTEGER PRIMARY KEY,
		applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
	)`); err != nil {
		return fail("create migrations table", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT version FROM `+table)
	if err != nil {
		return fail("read versions", err)
	}
	defer func() { _ = rows.Close() }()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return fail("read versions", err)
		}
		applied[v] = true
	}
	if err := rows.Close(); err != nil {
		return fail("read versions", err)
	}
	if err := rows.Err(); err != nil {
		return fail("read versions", err)
	}
	return applied, nil
}

package bench

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"sync/atomic"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Counter counts the statements a database handle sends: every query,
// exec, prepare (a COPY counts once, however many rows it carries), BEGIN,
// COMMIT and ROLLBACK: the round trips a request path costs the database.
type Counter struct{ n atomic.Int64 }

// Statements returns the count so far.
func (c *Counter) Statements() int64 { return c.n.Load() }

// OpenCounted opens a lib/pq pool on dsn whose statements c counts.
func OpenCounted(dsn string, c *Counter) (*sqlx.DB, error) {
	base, err := pq.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return sqlx.NewDb(sql.OpenDB(&countingConnector{base: base, c: c}), "postgres"), nil
}

type countingConnector struct {
	base driver.Connector
	c    *Counter
}

func (k *countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := k.base.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, c: k.c}, nil
}

func (k *countingConnector) Driver() driver.Driver { return k.base.Driver() }

// countingConn forwards to a lib/pq connection, counting statements.
type countingConn struct {
	driver.Conn
	c *Counter
}

func (c *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	c.c.n.Add(1)
	return c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

func (c *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	c.c.n.Add(1)
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
}

func (c *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	c.c.n.Add(1)
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
}

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.c.n.Add(1)
	tx, err := c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &countingTx{Tx: tx, c: c.c}, nil
}

func (c *countingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *countingConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *countingConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

type countingTx struct {
	driver.Tx
	c *Counter
}

func (t *countingTx) Commit() error {
	t.c.n.Add(1)
	return t.Tx.Commit()
}

func (t *countingTx) Rollback() error {
	t.c.n.Add(1)
	return t.Tx.Rollback()
}

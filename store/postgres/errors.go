package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/apitoken/apitoken"
	"github.com/lib/pq"
)

// codeUniqueViolation is the SQLSTATE of a unique constraint violation.
const codeUniqueViolation = "23505"

// wrapErr maps a database error of operation op:
//
//   - nil stays nil;
//   - when ctx has ended, ctx's error (the driver's own report of the
//     cancellation, such as "canceling statement due to user request", is
//     dropped);
//   - sql.ErrNoRows becomes apitoken.ErrNotFound;
//   - a database that cannot be reached or talked to (a refused, reset or
//     broken connection, a server shutting down or out of connections)
//     wraps apitoken.ErrStoreUnavailable, for a 503;
//   - anything else is wrapped as "apitoken: postgres: op: err", keeping the
//     driver error reachable with errors.As.
//
// Errors of this package are for logs and errors.Is; the root package never
// puts them into an HTTP body.
func wrapErr(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %s", apitoken.ErrNotFound, op)
	}
	if unreachable(err) {
		return fmt.Errorf("apitoken: postgres: %s: %w (%w)", op, err, apitoken.ErrStoreUnavailable)
	}
	return fmt.Errorf("apitoken: postgres: %s: %w", op, err)
}

// unreachable reports whether err says the database could not be reached
// or the connection to it failed, rather than that it refused a statement.
func unreachable(err error) bool {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		// Class 08: connection exception; 53300: too many connections;
		// 57P01-57P03: shutting down or starting up.
		code := string(pqErr.Code)
		return len(code) == 5 && code[:2] == "08" || code == "53300" || code == "57P01" || code == "57P02" || code == "57P03"
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET)
}

// isCode reports whether err is a PostgreSQL error with the SQLSTATE code.
func isCode(err error, code string) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && string(pqErr.Code) == code
}

func notFound(id int64) error {
	return fmt.Errorf("%w: token %d", apitoken.ErrNotFound, id)
}

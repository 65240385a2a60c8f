package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

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
	return fmt.Errorf("apitoken: postgres: %s: %w", op, err)
}

// isCode reports whether err is a PostgreSQL error with the SQLSTATE code.
func isCode(err error, code string) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && string(pqErr.Code) == code
}

func notFound(id int64) error {
	return fmt.Errorf("%w: token %d", apitoken.ErrNotFound, id)
}

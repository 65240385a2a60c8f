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
	"testing"

	"github.com/lib/pq"

	"github.com/apitoken/apitoken"
)

// A database that cannot be reached is ErrStoreUnavailable (the admin API's
// 503); one that refuses a statement is not.
func TestWrapErrUnavailable(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"refused dial", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"bad connection", driver.ErrBadConn, true},
		{"connection done", sql.ErrConnDone, true},
		{"EOF", io.EOF, true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"admin shutdown", &pq.Error{Code: "57P01"}, true},
		{"too many connections", &pq.Error{Code: "53300"}, true},
		{"connection failure", &pq.Error{Code: "08006"}, true},
		{"unique violation", &pq.Error{Code: "23505"}, false},
		{"invalid text", &pq.Error{Code: "22021"}, false},
		{"other", errors.New("sql: converting argument"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := wrapErr(context.Background(), "op", tt.err)
			if errors.Is(got, apitoken.ErrStoreUnavailable) != tt.unavailable {
				t.Fatalf("wrapErr(%v) = %v; unavailable %t, want %t", tt.err, got, !tt.unavailable, tt.unavailable)
			}
			if !errors.Is(got, tt.err) {
				t.Fatalf("wrapErr(%v) = %v loses the driver's error", tt.err, got)
			}
		})
	}
}

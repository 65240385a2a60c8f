package postgres_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/postgres"
)

// The unit tests below run the Store against go-sqlmock: every error path
// without a database.

var (
	// errRefused is what the driver returns when the server is down.
	errRefused = &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	hash1      = apitoken.Hash{1, 2, 3}
	t1         = time.Date(2025, 1, 15, 10, 30, 0, 123456789, time.UTC)
	anyQuery   = apitoken.Query{From: t1.Add(-time.Hour), To: t1}
)

func mockStore(t *testing.T, opts ...postgres.Option) (*postgres.Store, sqlmock.Sqlmock) {
	t.Helper()
	db, mock, err := sqlmock.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return postgres.New(sqlx.NewDb(db, "postgres"), opts...), mock
}

func checkMock(t *testing.T, mock sqlmock.Sqlmock) {
	t.Helper()
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Error(err)
	}
}

func sampleEvents() []apitoken.Event {
	return []apitoken.Event{
		{TokenID: 1, Endpoint: "/products/1", Route: "/products/{id}", Method: "GET", StatusCode: 200,
			ResponseTime: 1500 * time.Microsecond, RequestSize: 10, ResponseSize: 20,
			IP: netip.MustParseAddr("192.168.1.100"), UserAgent: "curl/8", Time: t1},
		{TokenID: 2, Endpoint: "/orders", Method: "POST", StatusCode: 500, ResponseTime: time.Millisecond, Time: t1},
		{TokenID: 1, Endpoint: "/products", Method: "GET", StatusCode: 404, ResponseTime: 2 * time.Millisecond, Time: t1.Add(time.Second)},
	}
}

// mockXid is the transaction id the mocked lock-tokens query returns.
const mockXid = "1000"

// lockedRows is the answer of the lock-tokens query that finds ids: each
// with the transaction's id.
func lockedRows(ids ...int64) *sqlmock.Rows {
	rows := sqlmock.NewRows([]string{"id", "pg_current_xact_id"})
	for _, id := range ids {
		rows.AddRow(id, mockXid)
	}
	return rows
}

// expectXactStatus expects the question what became of mockXid, answered
// with status.
func expectXactStatus(mock sqlmock.Sqlmock, status string) {
	mock.ExpectQuery(`^SELECT pg_xact_status\(\$1::xid8\)$`).WithArgs(mockXid).
		WillReturnRows(sqlmock.NewRows([]string{"pg_xact_status"}).AddRow(status))
}

// storeCall is one Store method called with fixed arguments.
type storeCall struct {
	name string
	call func(ctx context.Context, s *postgres.Store) error
}

func storeCalls() []storeCall {
	return []storeCall{
		{"CreateToken", func(ctx context.Context, s *postgres.Store) error {
			return s.CreateToken(ctx, &apitoken.Token{Name: "x", CreatedAt: t1, UpdatedAt: t1}, hash1)
		}},
		{"GetToken", func(ctx context.Context, s *postgres.Store) error { _, err := s.GetToken(ctx, 1); return err }},
		{"GetTokenByHash", func(ctx context.Context, s *postgres.Store) error { _, err := s.GetTokenByHash(ctx, hash1); return err }},
		{"ListTokens", func(ctx context.Context, s *postgres.Store) error {
			_, _, err := s.ListTokens(ctx, apitoken.ListOptions{Search: "x", Limit: 10})
			return err
		}},
		{"UpdateToken", func(ctx context.Context, s *postgres.Store) error {
			_, err := s.UpdateToken(ctx, 1, apitoken.Update{Active: apitoken.Set(false)}, t1)
			return err
		}},
		{"RotateToken", func(ctx context.Context, s *postgres.Store) error {
			_, err := s.RotateToken(ctx, 1, hash1, "atk_abcdef", t1, t1)
			return err
		}},
		{"DeleteToken", func(ctx context.Context, s *postgres.Store) error { return s.DeleteToken(ctx, 1) }},
		{"ListAudit", func(ctx context.Context, s *postgres.Store) error {
			_, _, err := s.ListAudit(ctx, apitoken.AuditQuery{TokenID: 1, Limit: 10})
			return err
		}},
		{"TouchTokens", func(ctx context.Context, s *postgres.Store) error {
			return s.TouchTokens(ctx, map[int64]time.Time{1: t1, 2: t1})
		}},
		{"RecordUsage", func(ctx context.Context, s *postgres.Store) error { return s.RecordUsage(ctx, sampleEvents()) }},
		{"TokenUsage", func(ctx context.Context, s *postgres.Store) error {
			_, err := s.TokenUsage(ctx, 1, anyQuery)
			return err
		}},
		{"Overview", func(ctx context.Context, s *postgres.Store) error { _, err := s.Overview(ctx, anyQuery); return err }},
		{"TokenStats", func(ctx context.Context, s *postgres.Store) error {
			_, err := s.TokenStats(ctx, []int64{1, 2}, t1)
			return err
		}},
		{"Prune", func(ctx context.Context, s *postgres.Store) error { _, err := s.Prune(ctx, t1); return err }},
	}
}

// expectFirst makes the first statement of each method fail with err.
func expectFirst(mock sqlmock.Sqlmock, method string, err error) {
	switch method {
	case "CreateToken", "GetToken", "GetTokenByHash", "ListTokens", "ListAudit", "TokenUsage", "Overview", "TokenStats":
		mock.ExpectQuery(".").WillReturnError(err)
	case "DeleteToken", "TouchTokens", "Prune":
		mock.ExpectExec(".").WillReturnError(err)
	case "RecordUsage", "UpdateToken", "RotateToken":
		mock.ExpectBegin().WillReturnError(err)
	}
}

func TestMockDriverErrors(t *testing.T) {
	for _, c := range storeCalls() {
		t.Run(c.name, func(t *testing.T) {
			s, mock := mockStore(t)
			expectFirst(mock, c.name, errRefused)
			err := c.call(t.Context(), s)
			switch {
			case err == nil:
				t.Fatal("no error from a refused connection")
			case errors.Is(err, apitoken.ErrNotFound):
				t.Errorf("error %v matches ErrNotFound; a refused connection must not look like a missing token", err)
			case !errors.Is(err, syscall.ECONNREFUSED):
				t.Errorf("error %v does not wrap the driver error", err)
			case !strings.HasPrefix(err.Error(), "apitoken: postgres: "):
				t.Errorf("error %q lacks the apitoken: postgres: prefix", err)
			}
			checkMock(t, mock)
		})
	}
}

// Every later statement of RecordUsage fails into a rollback too.
func TestMockRecordUsageStatementErrors(t *testing.T) {
	steps := []string{"lock", "prepare", "copy row", "copy end", "rollup", "last used", "commit"}
	for fail, name := range steps {
		t.Run(name, func(t *testing.T) {
			s, mock := mockStore(t)
			step := 0
			next := func() error {
				defer func() { step++ }()
				if step == fail {
					return errRefused
				}
				return nil
			}
			mock.ExpectBegin()
			if err := next(); err != nil {
				mock.ExpectQuery("FOR KEY SHARE").WillReturnError(err)
			} else {
				mock.ExpectQuery("FOR KEY SHARE").WillReturnRows(lockedRows(1, 2))
			}
			if step <= fail {
				if err := next(); err != nil {
					mock.ExpectPrepare("^COPY").WillReturnError(err)
				} else {
					prep := mock.ExpectPrepare("^COPY")
					if err := next(); err != nil {
						prep.ExpectExec().WillReturnError(err)
					} else {
						for range sampleEvents() {
							prep.ExpectExec().WillReturnResult(driver.RowsAffected(0))
						}
						if err := next(); err != nil {
							prep.ExpectExec().WithArgs().WillReturnError(err)
						} else {
							prep.ExpectExec().WithArgs().WillReturnResult(driver.RowsAffected(3))
						}
					}
				}
			}
			if step <= fail {
				if err := next(); err != nil {
					mock.ExpectExec("INSERT INTO .*api_token_usage_hourly").WillReturnError(err)
				} else {
					mock.ExpectExec("INSERT INTO .*api_token_usage_hourly").WillReturnResult(driver.RowsAffected(3))
				}
			}
			if step <= fail {
				if err := next(); err != nil {
					mock.ExpectExec("UPDATE .*last_used_at").WillReturnError(err)
				} else {
					mock.ExpectExec("UPDATE .*last_used_at").WillReturnResult(driver.RowsAffected(2))
				}
			}
			if step <= fail {
				mock.ExpectCommit().WillReturnError(next())
				expectXactStatus(mock, "aborted") // the failed COMMIT is asked about
			} else {
				mock.ExpectRollback()
			}
			err := s.RecordUsage(t.Context(), sampleEvents())
			if err == nil || !errors.Is(err, syscall.ECONNREFUSED) || !strings.HasPrefix(err.Error(), "apitoken: postgres: record usage: ") {
				t.Errorf("RecordUsage failing at %s: %v, want the wrapped driver error", name, err)
			}
			checkMock(t, mock)
		})
	}
}

// expectWrite expects sampleEvents to be written, both tokens live, up to a
// COMMIT that returns commitErr.
func expectWrite(mock sqlmock.Sqlmock, commitErr error) {
	mock.ExpectBegin()
	mock.ExpectQuery("FOR KEY SHARE").WillReturnRows(lockedRows(1, 2))
	prep := mock.ExpectPrepare("^COPY")
	for range sampleEvents() {
		prep.ExpectExec().WillReturnResult(driver.RowsAffected(0))
	}
	prep.ExpectExec().WithArgs().WillReturnResult(driver.RowsAffected(3))
	mock.ExpectExec("INSERT INTO .*api_token_usage_hourly").WillReturnResult(driver.RowsAffected(3))
	mock.ExpectExec("UPDATE .*last_used_at").WillReturnResult(driver.RowsAffected(2))
	mock.ExpectCommit().WillReturnError(commitErr)
}

// A failed COMMIT is resolved with pg_xact_status: a committed transaction
// is a success, a rolled back one a failure; one the server cannot be asked
// about is a failure, settled when the same batch is retried, before anything
// is written.
func TestMockRecordUsageFailedCommit(t *testing.T) {
	tests := []struct {
		name    string
		status  string // pg_xact_status's answer; "" for no answer
		wantErr string // "" for success
		retry   string // the answer on the retry, when there is one
	}{
		{name: "Committed", status: "committed"},
		{name: "RolledBack", status: "aborted", wantErr: "record usage: commit: "},
		{name: "UnknownThenCommitted", wantErr: "outcome unknown", retry: "committed"},
		{name: "UnknownThenRolledBack", wantErr: "outcome unknown", retry: "aborted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, mock := mockStore(t)
			expectWrite(mock, errRefused)
			if tc.status != "" {
				expectXactStatus(mock, tc.status)
			} else {
				mock.ExpectQuery("pg_xact_status").WillReturnError(errRefused)
			}
			err := s.RecordUsage(t.Context(), sampleEvents())
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("RecordUsage: %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, syscall.ECONNREFUSED)):
				t.Fatalf("RecordUsage: %v, want the COMMIT error with %q", err, tc.wantErr)
			}
			if tc.retry != "" {
				expectXactStatus(mock, tc.retry)
				if tc.retry != "committed" {
					expectWrite(mock, nil) // rolled back: written again
				}
				if err := s.RecordUsage(t.Context(), sampleEvents()); err != nil {
					t.Errorf("retried RecordUsage: %v", err)
				}
			}
			checkMock(t, mock)
		})
	}
}

// A COPY that fails in the middle of a batch rolls the transaction back and
// writes nothing else.
func TestMockCopyFailureRollsBack(t *testing.T) {
	s, mock := mockStore(t)
	copyErr := &pq.Error{Code: "22P04", Message: "bad copy file format"}
	mock.ExpectBegin()
	mock.ExpectQuery(`SELECT id FROM .*api_tokens.* WHERE id = ANY\(\$1::bigint\[\]\) ORDER BY id FOR KEY SHARE\)\s+SELECT id, pg_current_xact_id\(\)::text FROM live$`).
		WithArgs("{1,2}").
		WillReturnRows(lockedRows(1, 2))
	prep := mock.ExpectPrepare(`^COPY api_token_usage \(token_id, endpoint, route, method, status_code, response_time_us,\s+request_size, response_size, ip_address, user_agent, created_at\) FROM STDIN$`)
	prep.ExpectExec().
		WithArgs(int64(1), "/products/1", "/products/{id}", "GET", int64(200), int64(1500), int64(10), int64(20),
			"192.168.1.100", "curl/8", t1.Truncate(time.Microsecond)).
		WillReturnResult(driver.RowsAffected(0))
	prep.ExpectExec().WillReturnError(copyErr)
	mock.ExpectRollback()

	err := s.RecordUsage(t.Context(), sampleEvents())
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) || pqErr.Code != "22P04" {
		t.Errorf("RecordUsage: %v, want the COPY error", err)
	}
	checkMock(t, mock)
}

func mockStoreInSchema(t *testing.T) (*postgres.Store, sqlmock.Sqlmock) {
	return mockStore(t, postgres.WithSchema("s1"))
}

// Events of tokens that are gone are left out of the COPY; the rest of the
// batch is written with one rollup upsert and one last_used_at update.
func TestMockRecordUsageSkipsDeletedTokens(t *testing.T) {
	s, mock := mockStoreInSchema(t)
	mock.ExpectBegin()
	mock.ExpectQuery(`FOR KEY SHARE`).WithArgs("{1,2}").WillReturnRows(lockedRows(1))
	prep := mock.ExpectPrepare(`^COPY "s1"\.api_token_usage `)
	at := t1.Truncate(time.Microsecond)
	prep.ExpectExec().WithArgs(int64(1), "/products/1", "/products/{id}", "GET", int64(200), int64(1500), int64(10), int64(20), "192.168.1.100", "curl/8", at).
		WillReturnResult(driver.RowsAffected(0))
	prep.ExpectExec().WithArgs(int64(1), "/products", "", "GET", int64(404), int64(2000), int64(0), int64(0), nil, "", at.Add(time.Second)).
		WillReturnResult(driver.RowsAffected(0))
	prep.ExpectExec().WithArgs().WillReturnResult(driver.RowsAffected(2))
	mock.ExpectExec(`INSERT INTO "s1"\.api_token_usage_hourly AS h .* FROM unnest\(.*\) ON CONFLICT \(token_id, hour, endpoint, method\) DO UPDATE SET`).
		WithArgs("{1,1}", `{"2025-01-15T10:00:00Z","2025-01-15T10:00:00Z"}`, `{"/products","/products/{id}"}`, `{"GET","GET"}`,
			"{1,1}", "{0,1}", "{1,0}", "{2000,1500}", "{2000,1500}", "{0,10}", "{0,20}", "{0,0}").
		WillReturnResult(driver.RowsAffected(2))
	mock.ExpectExec(`UPDATE "s1"\.api_tokens AS t SET last_used_at = u\.at\s+FROM unnest`).
		WithArgs("{1}", `{"2025-01-15T10:30:01.123456Z"}`).
		WillReturnResult(driver.RowsAffected(1))
	mock.ExpectCommit()
	if err := s.RecordUsage(t.Context(), sampleEvents()); err != nil {
		t.Fatal(err)
	}
	checkMock(t, mock)
}

func TestMockRecordUsageAllTokensGone(t *testing.T) {
	s, mock := mockStore(t)
	mock.ExpectBegin()
	mock.ExpectQuery(`FOR KEY SHARE`).WillReturnRows(lockedRows())
	mock.ExpectRollback()
	if err := s.RecordUsage(t.Context(), sampleEvents()); err != nil {
		t.Fatal(err)
	}
	checkMock(t, mock)
}

func TestMockEmptyInputsTouchNothing(t *testing.T) {
	s, mock := mockStore(t)
	if err := s.RecordUsage(t.Context(), nil); err != nil {
		t.Error(err)
	}
	if err := s.TouchTokens(t.Context(), nil); err != nil {
		t.Error(err)
	}
	if stats, err := s.TokenStats(t.Context(), nil, t1); err != nil || stats == nil || len(stats) != 0 {
		t.Errorf("TokenStats(nil) = %v, %v; want an empty map", stats, err)
	}
	checkMock(t, mock)
}

func TestMockUniqueViolation(t *testing.T) {
	s, mock := mockStore(t)
	mock.ExpectQuery(`^WITH t AS \(INSERT INTO`).WillReturnError(&pq.Error{Code: "23505", Message: "duplicate key value violates unique constraint \"api_tokens_token_hash_key\""})
	tok := &apitoken.Token{Name: "x", CreatedAt: t1, UpdatedAt: t1}
	err := s.CreateToken(t.Context(), tok, hash1)
	if !errors.Is(err, apitoken.ErrDuplicate) {
		t.Errorf("CreateToken on a unique violation: %v, want ErrDuplicate", err)
	}
	if strings.Contains(err.Error(), "api_tokens_token_hash_key") {
		t.Errorf("ErrDuplicate error %q shows the driver's text", err)
	}
	if tok.ID != 0 {
		t.Errorf("failed CreateToken set ID %d", tok.ID)
	}
	checkMock(t, mock)
}

func TestMockNotFound(t *testing.T) {
	noRows := func(mock sqlmock.Sqlmock) { mock.ExpectQuery(".").WillReturnRows(sqlmock.NewRows([]string{"id"})) }
	// A change locks the row first, in a transaction that is rolled back.
	noRowToLock := func(mock sqlmock.Sqlmock) {
		mock.ExpectBegin()
		mock.ExpectQuery("FOR UPDATE$").WithArgs(int64(7)).WillReturnRows(sqlmock.NewRows([]string{"id"}))
		mock.ExpectRollback()
	}
	tests := []struct {
		name   string
		expect func(sqlmock.Sqlmock)
		call   func(context.Context, *postgres.Store) error
	}{
		{"GetToken", noRows, func(ctx context.Context, s *postgres.Store) error { _, err := s.GetToken(ctx, 7); return err }},
		{"GetTokenByHash", noRows, func(ctx context.Context, s *postgres.Store) error { _, err := s.GetTokenByHash(ctx, hash1); return err }},
		{"UpdateToken", noRowToLock, func(ctx context.Context, s *postgres.Store) error {
			_, err := s.UpdateToken(ctx, 7, apitoken.Update{Name: apitoken.Set("n")}, t1)
			return err
		}},
		{"UpdateTokenEmpty", noRowToLock, func(ctx context.Context, s *postgres.Store) error {
			_, err := s.UpdateToken(ctx, 7, apitoken.Update{}, t1)
			return err
		}},
		{"RotateToken", noRowToLock, func(ctx context.Context, s *postgres.Store) error {
			_, err := s.RotateToken(ctx, 7, hash1, "atk_abcdef", t1, t1)
			return err
		}},
		{"DeleteToken", func(mock sqlmock.Sqlmock) {
			mock.ExpectExec("^WITH t AS \\(DELETE FROM").WithArgs(int64(7), "", t1.Truncate(time.Microsecond)).
				WillReturnResult(driver.RowsAffected(0))
		}, func(ctx context.Context, s *postgres.Store) error {
			return s.DeleteToken(apitoken.WithAuditTime(ctx, t1), 7)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, mock := mockStore(t)
			tc.expect(mock)
			if err := tc.call(t.Context(), s); !errors.Is(err, apitoken.ErrNotFound) {
				t.Errorf("%s of a missing token: %v, want ErrNotFound", tc.name, err)
			}
			checkMock(t, mock)
		})
	}
}

// A context cancelled before the call never reaches the database.
func TestMockCancelledBeforeCall(t *testing.T) {
	for _, c := range storeCalls() {
		t.Run(c.name, func(t *testing.T) {
			s, mock := mockStore(t)
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			if err := c.call(ctx, s); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context: %v, want context.Canceled", c.name, err)
			}
			checkMock(t, mock)
		})
	}
}

// A context cancelled while the statement runs returns the context's error
// promptly, not the driver's "canceling statement" error.
func TestMockCancelledDuringCall(t *testing.T) {
	for _, c := range storeCalls() {
		t.Run(c.name, func(t *testing.T) {
			s, mock := mockStore(t)
			switch c.name {
			case "DeleteToken", "TouchTokens", "Prune":
				mock.ExpectExec(".").WillDelayFor(10 * time.Second).WillReturnResult(driver.RowsAffected(1))
			case "RecordUsage":
				mock.ExpectBegin()
				mock.ExpectQuery("FOR KEY SHARE").WillDelayFor(10 * time.Second).WillReturnRows(lockedRows())
				mock.ExpectRollback()
			case "UpdateToken", "RotateToken":
				mock.ExpectBegin()
				mock.ExpectQuery("FOR UPDATE$").WillDelayFor(10 * time.Second).WillReturnRows(sqlmock.NewRows([]string{"id"}))
				mock.ExpectRollback()
			default:
				mock.ExpectQuery(".").WillDelayFor(10 * time.Second).WillReturnRows(sqlmock.NewRows([]string{"id"}))
			}
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(20*time.Millisecond, cancel)
			start := time.Now()
			err := c.call(ctx, s)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s cancelled while running: %v, want context.Canceled", c.name, err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("%s took %v to give up after cancellation", c.name, d)
			}
		})
	}
}

// UpdateToken locks the row, runs one UPDATE that writes only the fields set,
// plus updated_at, and records the changed fields in the audit log, in one
// transaction.
func TestMockUpdateTokenStatements(t *testing.T) {
	s, mock := mockStore(t, postgres.WithSchema("tenant_1"))
	cols := []string{"id", "name", "description", "user_id", "start", "active", "rate_limit", "allowed_endpoints",
		"scopes", "metadata", "expires_at", "last_used_at", "created_at", "updated_at", "previous_expires_at"}
	t1us := t1.Truncate(time.Microsecond)
	mock.ExpectBegin()
	mock.ExpectQuery(`^SELECT id, name, .* FROM "tenant_1"\.api_tokens WHERE id = \$1 FOR UPDATE$`).WithArgs(int64(5)).
		WillReturnRows(sqlmock.NewRows(cols).AddRow(int64(5), "old", "", "", "atk_abcdef", true, 100, []byte("{/a}"), nil,
			nil, nil, nil, t1us, t1us, nil))
	mock.ExpectQuery(`^UPDATE "tenant_1"\.api_tokens SET name = \$2, user_id = NULLIF\(\$3, ''\), allowed_endpoints = \$4, metadata = \$5, expires_at = \$6, updated_at = \$7 WHERE id = \$1 RETURNING id, name`).
		WithArgs(int64(5), "new", "", "{}", `{"k":"v"}`, nil, t1us).
		WillReturnRows(sqlmock.NewRows(cols).AddRow(int64(5), "new", "", "", "atk_abcdef", true, 100, []byte("{}"), nil,
			[]byte(`{"k":"v"}`), nil, nil, t1us, t1us, nil))
	mock.ExpectExec(`^INSERT INTO "tenant_1"\.api_token_audit \(token_id, token_name, action, actor, changes, created_at\)`).
		WithArgs(int64(5), "new", "update", "root", `[{"field":"name","from":"old","to":"new"},`+
			`{"field":"allowed_endpoints","from":["/a"],"to":null},{"field":"metadata","from":null,"to":{"k":"v"}}]`, t1us).
		WillReturnResult(driver.RowsAffected(1))
	mock.ExpectCommit()
	got, err := s.UpdateToken(apitoken.WithActor(t.Context(), "root"), 5, apitoken.Update{
		Name:             apitoken.Set("new"),
		UserID:           apitoken.Set(""),
		AllowedEndpoints: apitoken.Set([]string{}),
		Metadata:         apitoken.Set(map[string]string{"k": "v"}),
		ExpiresAt:        apitoken.Set[*time.Time](nil),
	}, t1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "new" || got.Metadata["k"] != "v" || got.AllowedEndpoints == nil || got.Scopes != nil || got.UpdatedAt.Location() != time.UTC {
		t.Errorf("UpdateToken returned %+v", *got)
	}
	checkMock(t, mock)
}

// Prune deletes chunk by chunk, one statement each, until a chunk comes back
// short.
func TestMockPruneChunks(t *testing.T) {
	s, mock := mockStore(t, postgres.WithPruneChunk(2))
	before := time.Date(2025, 1, 1, 0, 0, 0, 500, time.UTC) // rounds up to the next microsecond
	cut := time.Date(2025, 1, 1, 0, 0, 0, 1000, time.UTC)
	for _, n := range []int64{2, 2, 1} {
		mock.ExpectExec(`^DELETE FROM api_token_usage WHERE id IN \(SELECT id FROM api_token_usage WHERE created_at < \$1 LIMIT \$2\)$`).
			WithArgs(cut, 2).WillReturnResult(driver.RowsAffected(n))
	}
	n, err := s.Prune(t.Context(), before)
	if err != nil || n != 5 {
		t.Errorf("Prune = %d, %v; want 5 rows in 3 chunks", n, err)
	}
	checkMock(t, mock)

	// A failure part way reports what was deleted.
	s, mock = mockStore(t, postgres.WithPruneChunk(2))
	mock.ExpectExec("^DELETE").WillReturnResult(driver.RowsAffected(2))
	mock.ExpectExec("^DELETE").WillReturnError(errRefused)
	n, err = s.Prune(t.Context(), before)
	if n != 2 || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Prune failing at the second chunk = %d, %v; want 2 and the driver error", n, err)
	}
	checkMock(t, mock)
}

func TestMockMigrateErrors(t *testing.T) {
	t.Run("Begin", func(t *testing.T) {
		db, mock, _ := sqlmock.New()
		defer db.Close()
		mock.ExpectBegin().WillReturnError(errRefused)
		err := postgres.Migrate(t.Context(), db)
		if !errors.Is(err, syscall.ECONNREFUSED) || !strings.HasPrefix(err.Error(), "apitoken: postgres: migrate: ") {
			t.Errorf("Migrate: %v", err)
		}
		checkMock(t, mock)
	})
	t.Run("MigrationFails", func(t *testing.T) {
		db, mock, _ := sqlmock.New()
		defer db.Close()
		mock.ExpectBegin()
		mock.ExpectExec(`SELECT pg_advisory_xact_lock\(\$1\)`).WithArgs(postgres.MigrationLockKey).WillReturnResult(driver.RowsAffected(0))
		mock.ExpectQuery(`pg_namespace`).WithArgs("tenant").WillReturnRows(sqlmock.NewRows([]string{"exists"}).AddRow(false))
		mock.ExpectExec(`^CREATE SCHEMA IF NOT EXISTS "tenant"$`).WillReturnResult(driver.RowsAffected(0))
		mock.ExpectExec(`^SET LOCAL search_path TO "tenant"$`).WillReturnResult(driver.RowsAffected(0))
		mock.ExpectExec(`CREATE TABLE IF NOT EXISTS "tenant"\.apitoken_schema_migrations`).WillReturnResult(driver.RowsAffected(0))
		mock.ExpectQuery(`SELECT version FROM "tenant"\.apitoken_schema_migrations`).WillReturnRows(sqlmock.NewRows([]string{"version"}))
		mock.ExpectExec(`CREATE TABLE api_tokens`).WillReturnError(&pq.Error{Code: "42501", Message: "permission denied"})
		mock.ExpectRollback()
		err := postgres.Migrate(t.Context(), db, postgres.WithSchema("tenant"))
		if err == nil || !strings.Contains(err.Error(), "0001_init.sql") {
			t.Errorf("Migrate: %v, want the failing migration named", err)
		}
		checkMock(t, mock)
	})
	t.Run("CancelledWhileLocked", func(t *testing.T) {
		db, mock, _ := sqlmock.New()
		defer db.Close()
		mock.ExpectBegin()
		mock.ExpectExec(`pg_advisory_xact_lock`).WillDelayFor(10 * time.Second).WillReturnResult(driver.RowsAffected(0))
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		if err := postgres.Migrate(ctx, db); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Migrate waiting for the lock past its deadline: %v", err)
		}
	})
}

func TestSchemaOption(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"tenant_1", true},
		{"_x", true},
		{"CamelCase", true},
		{strings.Repeat("a", 63), true},
		{"", false},
		{strings.Repeat("a", 64), false},
		{"1abc", false},
		{"pg_catalog", false},
		{"PG_x", false},
		{"bad-name", false},
		{`x"; DROP TABLE api_tokens; --`, false},
		{"schéma", false},
		{"a.b", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := postgres.Migrate(t.Context(), nil, postgres.WithSchema(tc.name))
			if tc.ok {
				if err == nil || strings.Contains(err.Error(), "schema") {
					t.Errorf("Migrate(nil db, WithSchema(%q)) = %v, want only the nil database refused", tc.name, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "invalid schema name") {
				t.Errorf("WithSchema(%q): Migrate = %v, want an invalid schema error", tc.name, err)
			}
			wantPanic(t, "WithSchema", func() { postgres.New(sqlx.NewDb(nil, "postgres"), postgres.WithSchema(tc.name)) })
			if err := postgres.Listen(t.Context(), "postgres://localhost/x", nopInvalidator{}, postgres.WithSchema(tc.name)); err == nil {
				t.Errorf("WithSchema(%q): Listen accepted it", tc.name)
			}
		})
	}
}

func TestInvalidOptions(t *testing.T) {
	wantPanic(t, "New needs a database", func() { postgres.New(nil) })
	wantPanic(t, "WithPruneChunk", func() { postgres.New(sqlx.NewDb(nil, "postgres"), postgres.WithPruneChunk(0)) })
	wantPanic(t, "WithLogger", func() { postgres.New(sqlx.NewDb(nil, "postgres"), postgres.WithLogger(nil)) })
	if err := postgres.Listen(t.Context(), "postgres://localhost/x", nopInvalidator{}, postgres.WithReconnectInterval(time.Second, time.Millisecond)); err == nil {
		t.Error("WithReconnectInterval(1s, 1ms) accepted")
	}
	if err := postgres.Listen(t.Context(), "postgres://localhost/x", nil); err == nil {
		t.Error("Listen with a nil Invalidator accepted")
	}
	err := postgres.Listen(t.Context(), "host=localhost password=hunter2 sslmode=bogus", nopInvalidator{})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Listen with an invalid connection string: %v, want an error without the password", err)
	}
}

func TestChannelName(t *testing.T) {
	long := strings.Repeat("s", 63)
	tests := []struct{ schema, want string }{
		{"", "apitoken_changes"},
		{"tenant_1", "apitoken_changes.tenant_1"},
		{long, postgres.ChannelName(long)},
	}
	for _, tc := range tests {
		if got := postgres.ChannelName(tc.schema); got != tc.want || len(got) > 63 {
			t.Errorf("ChannelName(%q) = %q, want %q (at most 63 bytes)", tc.schema, got, tc.want)
		}
	}
	if a, b := postgres.ChannelName(long), postgres.ChannelName(long[1:]); a == b || len(a) > 63 || !strings.HasPrefix(a, "apitoken_changes.") {
		t.Errorf("long schema names give channels %q and %q", a, b)
	}
}

func TestMigrationsMatchSchemaVersion(t *testing.T) {
	names, err := postgres.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != postgres.SchemaVersion {
		t.Errorf("%d migrations %v, SchemaVersion %d", len(names), names, postgres.SchemaVersion)
	}
}

type nopInvalidator struct{}

func (nopInvalidator) Invalidate(int64) {}
func (nopInvalidator) InvalidateAll()   {}

// wantPanic checks that f panics with a message containing want.
func wantPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		if s, _ := recover().(string); !strings.Contains(s, want) {
			t.Errorf("panic %q, want one naming %s", s, want)
		}
	}()
	f()
}

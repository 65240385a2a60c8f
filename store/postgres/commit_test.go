package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/postgres"
)

// A batch whose COMMIT goes unanswered is retried, as the Manager's usage pipeline does, until
// RecordUsage returns nil; whether the first attempt committed or not, every
// event is then stored exactly once. Without the store's resolution of
// unanswered commits the "answer lost" cases store the batch twice, and the
// "COMMIT lost" cases block on the rollup rows the abandoned transaction
// still holds.
func TestRecordUsageUnansweredCommit(t *testing.T) {
	dsn := testDSN(t)
	tests := []struct {
		name    string
		fault   commitFault
		thenCut bool // the database stays unreachable after the fault
	}{
		{"AnswerLost", loseCommitAck, false},
		{"AnswerLostThenOutage", loseCommitAck, true},
		{"CommitLost", loseCommit, false},
		{"CommitLostThenOutage", loseCommit, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			direct, db, schema := newStore(t)
			id := mustCreate(t, direct, "unanswered")
			proxy := startProxy(t, dsn)
			app := randomName(t)
			s := postgres.New(openProxiedDB(t, proxy, withParam(dsn, "application_name="+app)), postgres.WithSchema(schema))

			const n = 500
			batch := make([]apitoken.Event, n)
			for i := range batch {
				batch[i] = apitoken.Event{TokenID: id, Endpoint: fmt.Sprintf("/items/%d", i%7), Method: "GET", StatusCode: 200,
					RequestSize: int64(i), ResponseTime: time.Millisecond, Time: u0.Add(time.Duration(i) * time.Second)}
			}
			proxy.Arm(tc.fault, tc.thenCut)
			start := time.Now()
			var errs []error
			for attempt := 0; ; attempt++ {
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				err := s.RecordUsage(ctx, batch)
				cancel()
				if err == nil {
					break
				}
				errs = append(errs, err)
				if attempt == 4 {
					t.Fatalf("RecordUsage still failing after %d attempts: %v", attempt+1, errs)
				}
				proxy.Restore() // the outage ends before the retry
				time.Sleep(20 * time.Millisecond)
			}
			if proxy.Struck() != 1 {
				t.Fatalf("the fault struck %d times, want once: the test did not test anything", proxy.Struck())
			}
			t.Logf("stored after %d failed attempts in %v: %v", len(errs), time.Since(start).Round(time.Millisecond), errs)
			if tc.fault == loseCommitAck && !tc.thenCut && len(errs) > 0 {
				t.Errorf("a lost answer to a committed COMMIT was reported as a failure: %v", errs)
			}

			q := pq.QuoteIdentifier(schema)
			rows := count(t, db, `SELECT count(*) FROM `+q+`.api_token_usage`)
			distinct := count(t, db, `SELECT count(DISTINCT request_size) FROM `+q+`.api_token_usage`)
			rolled := count(t, db, `SELECT COALESCE(sum(requests), 0) FROM `+q+`.api_token_usage_hourly`)
			if rows != n || distinct != n || rolled != n {
				t.Errorf("%d events sent; stored %d raw rows (%d distinct), rollups count %d: want %d of each", n, rows, distinct, rolled, n)
			}
			if idle := count(t, db, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state LIKE 'idle in transaction%'`, app); idle != 0 {
				t.Errorf("%d sessions left idle in an open transaction", idle)
			}
		})
	}
}

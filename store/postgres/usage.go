package postgres

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lib/pq"

	"github.com/apitoken/apitoken"
)

// Longest endpoint and method kept in the hourly rollup's key, in bytes
// (longer ones are cut at a UTF-8 boundary). The key is a B-tree index entry,
// whose size PostgreSQL limits to about 2.7 kB; an over-long path must not
// make a batch fail for ever. Raw usage rows keep the whole path.
const (
	MaxRollupEndpointLen = 1024
	MaxRollupMethodLen   = 64
)

// rollupKey identifies an hourly rollup row.
type rollupKey struct {
	token    int64
	hour     int64 // Unix seconds of the UTC hour
	endpoint string
	method   string
}

type rollupSums struct {
	requests, successes, failures int64
	sumUS, maxUS                  int64
	reqBytes, respBytes           int64
	limited                       int64 // 429 responses
}

// RecordUsage stores the events in one transaction, all or none:
//
//  1. it locks the batch's tokens that still exist (SELECT ... FOR KEY SHARE,
//     which only a DELETE of the token waits for) and drops the events of
//     the others silently, as ON DELETE CASCADE would have removed them;
//  2. COPY writes the raw rows into api_token_usage;
//  3. one INSERT ... ON CONFLICT DO UPDATE adds the batch, aggregated per
//     (token, UTC hour, endpoint, method), to api_token_usage_hourly (and
//     per token and hour, with the count of 429 responses, to
//     api_token_usage_token_hourly; per hour, endpoint and method to
//     api_token_usage_endpoint_hourly);
//  4. one UPDATE moves each token's last_used_at to its latest event (never
//     backwards).
//
// When COMMIT fails, the transaction may nevertheless have committed (the
// server's answer was lost with the connection). RecordUsage then asks the
// server with pg_xact_status and returns nil if it did, so a retry cannot
// write the batch twice; if the server cannot be asked, it returns the error
// and remembers the batch as in doubt, and a later call with the same events
// first resolves it, returning nil without writing when the first attempt
// had committed. A transaction still open on a connection the client has
// lost is ended with pg_terminate_backend first, so it cannot commit later
// (nor keep its rollup rows locked).
//
// Strings are made valid UTF-8 without NUL bytes (PostgreSQL text cannot hold
// either), so no event can make a batch fail for ever. The slice is not kept.
func (s *Store) RecordUsage(ctx context.Context, events []apitoken.Event) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	var (
		digest     [32]byte
		haveDigest bool
	)
	if !s.doubt.empty() {
		digest, haveDigest = batchDigest(events), true
		if xid := s.doubt.get(digest); xid != "" {
			// A retry of a batch whose COMMIT went unanswered.
			committed, err := s.wasCommitted(ctx, xid)
			if err != nil {
				return wrapErr(ctx, "record usage: resolving an unanswered commit", err)
			}
			s.doubt.forget(digest)
			if committed {
				return nil
			}
		}
	}
	ids := make([]int64, 0, len(events))
	for i := range events {
		ids = append(ids, events[i].TokenID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)

	// The transaction itself must not be tied to ctx: when ctx ends,
	// database/sql rolls a transaction back from a goroutine of its own,
	// which would use the connection at the same time as lib/pq's COPY
	// reader (a data race in the driver). So ctx bounds the wait for a
	// connection and every statement, the COPY loop stops at once when ctx
	// ends, and the deferred Rollback runs after the COPY is closed.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return wrapErr(ctx, "record usage: connect", err)
	}
	defer func() { _ = conn.Close() }()
	tx, err := conn.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		return wrapErr(ctx, "record usage: begin", err)
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit; runs before conn.Close

	live := make(map[int64]bool, len(ids))
	rows, err := tx.QueryContext(ctx, s.q.liveTokens, pq.Int64Array(ids))
	if err != nil {
		return wrapErr(ctx, "record usage: lock tokens", err)
	}
	// xid is the transaction's id. A result without it (one column, as test
	// doubles give) leaves it unknown: a failed COMMIT is then reported as
	// a failure without asking the server.
	cols, err := rows.Columns()
	if err != nil {
		rows.Close()
		return wrapErr(ctx, "record usage: lock tokens", err)
	}
	var xid string
	for rows.Next() {
		var id int64
		dest := []any{&id}
		if len(cols) > 1 {
			dest = append(dest, &xid)
		}
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return wrapErr(ctx, "record usage: lock tokens", err)
		}
		live[id] = true
	}
	if err := rows.Close(); err != nil {
		return wrapErr(ctx, "record usage: lock tokens", err)
	}
	if err := rows.Err(); err != nil {
		return wrapErr(ctx, "record usage: lock tokens", err)
	}
	if len(live) == 0 {
		return nil // every token is gone: nothing to write
	}

	stmt, err := tx.PrepareContext(ctx, s.q.copyUsage)
	if err != nil {
		return wrapErr(ctx, "record usage: copy", err)
	}
	sums := make(map[rollupKey]*rollupSums)
	lastUsed := make(map[int64]time.Time, len(live))
	for i := range events {
		ev := &events[i]
		if !live[ev.TokenID] {
			continue
		}
		at := ts(ev.Time)
		us := max(ev.ResponseTime.Microseconds(), 0)
		endpoint, route, method := cleanText(ev.Endpoint), cleanText(ev.Route), cleanText(ev.Method)
		var ip any
		if ev.IP.IsValid() {
			ip = ev.IP.WithZone("").String()
		}
		if _, err := stmt.ExecContext(ctx, ev.TokenID, endpoint, route, method, int64(ev.StatusCode), us,
			ev.RequestSize, ev.ResponseSize, ip, cleanText(ev.UserAgent), at); err != nil {
			_ = stmt.Close()
			return wrapErr(ctx, "record usage: copy", err)
		}

		k := rollupKey{token: ev.TokenID, hour: ev.Time.Truncate(time.Hour).Unix(), endpoint: route, method: method}
		if k.endpoint == "" {
			k.endpoint = endpoint
		}
		k.endpoint = truncateUTF8(k.endpoint, MaxRollupEndpointLen)
		k.method = truncateUTF8(k.method, MaxRollupMethodLen)
		r := sums[k]
		if r == nil {
			r = &rollupSums{}
			sums[k] = r
		}
		r.requests++
		if apitoken.Successful(ev.StatusCode) {
			r.successes++
		} else {
			r.failures++
		}
		if apitoken.RateLimited(ev.StatusCode) {
			r.limited++
		}
		r.sumUS += us
		r.maxUS = max(r.maxUS, us)
		r.reqBytes += ev.RequestSize
		r.respBytes += ev.ResponseSize
		if last, ok := lastUsed[ev.TokenID]; !ok || at.After(last) {
			lastUsed[ev.TokenID] = at
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil { // ends the COPY, reporting its errors
		_ = stmt.Close()
		return wrapErr(ctx, "record usage: copy", err)
	}
	if err := stmt.Close(); err != nil {
		return wrapErr(ctx, "record usage: copy", err)
	}

	// Keys in one order for every writer, so that concurrent batches lock
	// rollup rows in the same order and cannot deadlock.
	keys := make([]rollupKey, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b rollupKey) int {
		return cmp.Or(cmp.Compare(a.token, b.token), cmp.Compare(a.hour, b.hour),
			strings.Compare(a.endpoint, b.endpoint), strings.Compare(a.method, b.method))
	})
	n := len(keys)
	var (
		tokens                                   = make([]int64, n)
		hours, endpoints, methods                = make([]string, n), make([]string, n), make([]string, n)
		requests, successes, failures, sum, most = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		reqBytes, respBytes, limited             = make([]int64, n), make([]int64, n), make([]int64, n)
	)
	for i, k := range keys {
		r := sums[k]
		tokens[i], hours[i], endpoints[i], methods[i] = k.token, tsText(time.Unix(k.hour, 0)), k.endpoint, k.method
		requests[i], successes[i], failures[i], sum[i], most[i] = r.requests, r.successes, r.failures, r.sumUS, r.maxUS
		reqBytes[i], respBytes[i], limited[i] = r.reqBytes, r.respBytes, r.limited
	}
	if _, err := tx.ExecContext(ctx, s.q.rollup,
		pq.Int64Array(tokens), pq.StringArray(hours), pq.StringArray(endpoints), pq.StringArray(methods),
		pq.Int64Array(requests), pq.Int64Array(successes), pq.Int64Array(failures), pq.Int64Array(sum),
		pq.Int64Array(most), pq.Int64Array(reqBytes), pq.Int64Array(respBytes), pq.Int64Array(limited)); err != nil {
		return wrapErr(ctx, "record usage: rollup", err)
	}

	touched := make([]int64, 0, len(lastUsed))
	for id := range lastUsed {
		touched = append(touched, id)
	}
	slices.Sort(touched)
	at := make([]string, len(touched))
	for i, id := range touched {
		at[i] = tsText(lastUsed[id])
	}
	if _, err := tx.ExecContext(ctx, s.q.touch, pq.Int64Array(touched), pq.StringArray(at)); err != nil {
		return wrapErr(ctx, "record usage: last used", err)
	}
	if err := ctx.Err(); err != nil {
		return err // all or none: the caller will retry the batch
	}
	if err := tx.Commit(); err != nil {
		if xid == "" {
			return wrapErr(ctx, "record usage: commit", err)
		}
		committed, rerr := s.wasCommitted(ctx, xid)
		switch {
		case rerr == nil && committed:
			return nil // only the answer was lost
		case rerr == nil:
			return wrapErr(ctx, "record usage: commit", err) // rolled back: retrying is safe
		}
		if !haveDigest {
			digest = batchDigest(events)
		}
		s.doubt.put(digest, xid)
		return wrapErr(ctx, "record usage: commit (outcome unknown until the batch is retried)", err)
	}
	return nil
}

// cleanText returns s as valid UTF-8 without NUL bytes.
func cleanText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Prune deletes raw usage rows (the source of RecentRequests) created before
// before and returns how many it deleted. It deletes at most WithPruneChunk
// rows per statement, each statement its own short transaction, until none
// is left, so it never holds many row locks or a long transaction. The hourly
// rollups, and so every other report, are kept. Run it periodically (for
// example daily with before = now - 30 days). On an error or when ctx ends
// it returns what it deleted so far with the error.
func (s *Store) Prune(ctx context.Context, before time.Time) (deleted int64, err error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	cut := ts(before)
	if cut.Before(before) {
		cut = cut.Add(time.Microsecond) // stored times are whole microseconds
	}
	for {
		if err := ctx.Err(); err != nil {
			return deleted, err
		}
		res, err := s.db.ExecContext(ctx, s.q.prune, cut, s.chunk)
		if err != nil {
			return deleted, wrapErr(ctx, "prune usage", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return deleted, wrapErr(ctx, "prune usage", err)
		}
		deleted += n
		if n < int64(s.chunk) {
			return deleted, nil
		}
	}
}

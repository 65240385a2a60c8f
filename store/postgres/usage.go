package postgres

import (
	"cmp"
	"context"
	"database/sql"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lib/pq"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/storeutil"
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
	if written, err := s.resolveInDoubt(ctx, events); written || err != nil {
		return err
	}

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

	live, xid, err := s.lockTokens(ctx, tx, tokenIDs(events))
	if err != nil {
		return err
	}
	if len(live) == 0 {
		return nil // every token is gone: nothing to write
	}
	if err := s.copyRows(ctx, tx, events, live); err != nil {
		return err
	}
	sums, lastUsed := aggregate(events, live)
	if err := s.upsertRollups(ctx, tx, sums); err != nil {
		return err
	}
	if err := s.touchLastUsed(ctx, tx, lastUsed); err != nil {
		return err
	}
	return s.commit(ctx, tx, xid, events)
}

// resolveInDoubt reports whether events are the retry of a batch whose
// COMMIT went unanswered and which did commit: then the batch is written
// already and must not be written again. A batch found in doubt and now
// resolved is forgotten. The error is that of asking the server, which
// leaves the batch in doubt.
func (s *Store) resolveInDoubt(ctx context.Context, events []apitoken.Event) (written bool, err error) {
	if s.doubt.empty() {
		return false, nil
	}
	digest := batchDigest(events)
	xid := s.doubt.get(digest)
	if xid == "" {
		return false, nil
	}
	committed, err := s.wasCommitted(ctx, xid)
	if err != nil {
		return false, wrapErr(ctx, "record usage: resolving an unanswered commit", err)
	}
	s.doubt.forget(digest)
	return committed, nil
}

// tokenIDs returns the distinct token ids of events in ascending order, the
// order in which every writer locks them.
func tokenIDs(events []apitoken.Event) []int64 {
	ids := make([]int64, 0, len(events))
	for i := range events {
		ids = append(ids, events[i].TokenID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// lockTokens locks, in tx, the rows of the tokens ids (ascending) that still
// exist, so that none of them is deleted before tx ends, and returns the set
// of those ids and tx's transaction id (pg_current_xact_id, for commit to
// resolve a lost answer). With no live token the set is empty and xid "".
func (s *Store) lockTokens(ctx context.Context, tx *sql.Tx, ids []int64) (live map[int64]bool, xid string, err error) {
	rows, err := tx.QueryContext(ctx, s.q.liveTokens, pq.Int64Array(ids))
	if err != nil {
		return nil, "", wrapErr(ctx, "record usage: lock tokens", err)
	}
	defer func() { _ = rows.Close() }()
	live = make(map[int64]bool, len(ids))
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id, &xid); err != nil {
			return nil, "", wrapErr(ctx, "record usage: lock tokens", err)
		}
		live[id] = true
	}
	if err := rows.Close(); err != nil {
		return nil, "", wrapErr(ctx, "record usage: lock tokens", err)
	}
	if err := rows.Err(); err != nil {
		return nil, "", wrapErr(ctx, "record usage: lock tokens", err)
	}
	return live, xid, nil
}

// copyRows writes, in tx, one raw usage row per event of a live token with
// COPY. Every row is sent under ctx, so the loop stops at once when ctx ends;
// the COPY statement is closed on every return, before tx can be rolled
// back.
func (s *Store) copyRows(ctx context.Context, tx *sql.Tx, events []apitoken.Event, live map[int64]bool) (err error) {
	stmt, err := tx.PrepareContext(ctx, s.q.copyUsage)
	if err != nil {
		return wrapErr(ctx, "record usage: copy", err)
	}
	defer func() {
		if cerr := stmt.Close(); err == nil {
			err = wrapErr(ctx, "record usage: copy", cerr)
		}
	}()
	for i := range events {
		ev := &events[i]
		if !live[ev.TokenID] {
			continue
		}
		var ip any
		if ev.IP.IsValid() {
			ip = ev.IP.WithZone("").String()
		}
		if _, err := stmt.ExecContext(ctx, ev.TokenID, cleanText(ev.Endpoint), cleanText(ev.Route), cleanText(ev.Method),
			int64(ev.StatusCode), responseUS(ev), ev.RequestSize, ev.ResponseSize, ip, cleanText(ev.UserAgent),
			ts(ev.Time)); err != nil {
			return wrapErr(ctx, "record usage: copy", err)
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil { // ends the COPY, reporting its errors
		return wrapErr(ctx, "record usage: copy", err)
	}
	return nil
}

// responseUS is the event's response time in whole microseconds, 0 for a
// negative one.
func responseUS(ev *apitoken.Event) int64 { return max(ev.ResponseTime.Microseconds(), 0) }

// aggregate sums the events of live tokens per rollup key, and gives each
// such token the time of its latest event (as stored: UTC, whole
// microseconds). The key's endpoint is the route, or the raw endpoint when
// the event has none, both cut to the rollup's length limits; its hour is
// the event's UTC hour. Events of other tokens are left out. It does not
// keep or change events.
func aggregate(events []apitoken.Event, live map[int64]bool) (map[rollupKey]*rollupSums, map[int64]time.Time) {
	sums := make(map[rollupKey]*rollupSums)
	lastUsed := make(map[int64]time.Time, len(live))
	for i := range events {
		ev := &events[i]
		if !live[ev.TokenID] {
			continue
		}
		k := rollupKeyOf(ev)
		r := sums[k]
		if r == nil {
			r = &rollupSums{}
			sums[k] = r
		}
		r.add(ev)
		at := ts(ev.Time)
		if last, ok := lastUsed[ev.TokenID]; !ok || at.After(last) {
			lastUsed[ev.TokenID] = at
		}
	}
	return sums, lastUsed
}

// rollupKeyOf is the key of the hourly rollup row ev counts in.
func rollupKeyOf(ev *apitoken.Event) rollupKey {
	endpoint := cleanText(ev.Route)
	if endpoint == "" {
		endpoint = cleanText(ev.Endpoint)
	}
	return rollupKey{
		token:    ev.TokenID,
		hour:     ev.Time.Truncate(time.Hour).Unix(),
		endpoint: truncateUTF8(endpoint, MaxRollupEndpointLen),
		method:   truncateUTF8(cleanText(ev.Method), MaxRollupMethodLen),
	}
}

// add counts ev in r.
func (r *rollupSums) add(ev *apitoken.Event) {
	us := responseUS(ev)
	r.requests++
	if storeutil.Successful(ev.StatusCode) {
		r.successes++
	} else {
		r.failures++
	}
	if storeutil.RateLimited(ev.StatusCode) {
		r.limited++
	}
	r.sumUS += us
	r.maxUS = max(r.maxUS, us)
	r.reqBytes += ev.RequestSize
	r.respBytes += ev.ResponseSize
}

// upsertRollups adds sums, in tx, to the three hourly rollups with one
// statement. The rows are sent in key order, the same for every writer, so
// that concurrent batches lock rollup rows in one order and cannot deadlock.
func (s *Store) upsertRollups(ctx context.Context, tx *sql.Tx, sums map[rollupKey]*rollupSums) error {
	keys := slices.SortedFunc(maps.Keys(sums), func(a, b rollupKey) int {
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
	return nil
}

// touchLastUsed moves, in tx, each token's last_used_at forward to its time
// in lastUsed; a later stored time is kept.
func (s *Store) touchLastUsed(ctx context.Context, tx *sql.Tx, lastUsed map[int64]time.Time) error {
	if _, err := tx.ExecContext(ctx, s.q.touch, touchArgs(lastUsed)...); err != nil {
		return wrapErr(ctx, "record usage: last used", err)
	}
	return nil
}

// commit commits tx, the transaction xid that wrote events, unless ctx has
// ended (all or none: the caller retries the batch), and returns nil exactly
// when it committed. When COMMIT fails it asks the server what became of xid:
// committed gives nil (only the answer was lost), rolled back gives the
// error (a retry is safe); when the server cannot be asked, it remembers the
// batch as in doubt, for resolveInDoubt to settle on the retry, and returns
// the error.
func (s *Store) commit(ctx context.Context, tx *sql.Tx, xid string, events []apitoken.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := tx.Commit()
	if err == nil {
		return nil
	}
	committed, rerr := s.wasCommitted(ctx, xid)
	switch {
	case rerr == nil && committed:
		return nil
	case rerr == nil:
		return wrapErr(ctx, "record usage: commit", err)
	}
	s.doubt.put(batchDigest(events), xid)
	return wrapErr(ctx, "record usage: commit (outcome unknown until the batch is retried)", err)
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

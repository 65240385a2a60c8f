package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/storeutil"
)

var (
	_ apitoken.Store      = (*Store)(nil)
	_ apitoken.UsageStore = (*Store)(nil)
	_ apitoken.AuditStore = (*Store)(nil)
)

// Store is a PostgreSQL apitoken.Store and apitoken.UsageStore. It is safe
// for concurrent use (it holds only the pool and prepared SQL text). The zero
// value is not usable: call New.
type Store struct {
	db    *sqlx.DB
	chunk int
	n     names
	q     queries
	doubt inDoubt // batches whose COMMIT outcome is not known yet
}

// New returns a Store over db, whose tables Migrate has created (with the
// same WithSchema). It does not touch the database. Options: WithSchema,
// WithPruneChunk. It panics when db is nil or an option's value is invalid,
// naming the option.
func New(db *sqlx.DB, opts ...Option) *Store {
	c := newConfig(opts)
	switch {
	case c.err != nil:
		panic(c.err.Error())
	case db == nil || db.DB == nil:
		panic("apitoken: postgres: New needs a database")
	}
	s := &Store{db: db, chunk: c.pruneChunk, n: newNames(c.schema)}
	s.q = newQueries(s.n)
	return s
}

// Schema-independent SQL fragments.
const tokenColumns = `id, name, description, COALESCE(user_id, '') AS user_id, start, active, rate_limit,
	allowed_endpoints, scopes, metadata, expires_at, last_used_at, created_at, updated_at, previous_expires_at`

// queries is the SQL text of every statement, with table names filled in.
type queries struct {
	tokenQueries
	usageQueries
	analyticsQueries
}

func newQueries(n names) queries {
	return queries{newTokenQueries(n), newUsageQueries(n), newAnalyticsQueries(n)}
}

// tokenQueries are the statements on tokens and the audit log.
type tokenQueries struct {
	create, get, getByHash, delete      string
	lockToken, hashTaken, rotate, audit string
	touch                               string
}

func newTokenQueries(n names) tokenQueries {
	return tokenQueries{
		// The token and its audit entry in one statement.
		create: `WITH t AS (INSERT INTO ` + n.tokens + ` (name, token_hash, start, description, user_id, active, rate_limit,
				allowed_endpoints, scopes, metadata, expires_at, last_used_at, created_at, updated_at)
				VALUES ($1, $2, $3, $4, NULLIF($5, ''), $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id, name)
			INSERT INTO ` + n.audit + ` (token_id, token_name, action, actor, changes, created_at)
			SELECT id, name, 'create', $15, $16, $17 FROM t RETURNING token_id`,
		get: `SELECT ` + tokenColumns + ` FROM ` + n.tokens + ` WHERE id = $1`,
		// The current hash first; the previous one (of a rotation) next.
		getByHash: `(SELECT ` + tokenColumns + `, false AS via_previous FROM ` + n.tokens + ` WHERE token_hash = $1)
			UNION ALL (SELECT ` + tokenColumns + `, true FROM ` + n.tokens + ` WHERE previous_hash = $1) LIMIT 1`,
		delete: `WITH t AS (DELETE FROM ` + n.tokens + ` WHERE id = $1 RETURNING id, name)
			INSERT INTO ` + n.audit + ` (token_id, token_name, action, actor, changes, created_at)
			SELECT id, name, 'delete', $2, '[]', $3 FROM t RETURNING token_id`,
		lockToken: `SELECT ` + tokenColumns + ` FROM ` + n.tokens + ` WHERE id = $1 FOR UPDATE`,
		hashTaken: `SELECT EXISTS (SELECT 1 FROM ` + n.tokens + ` WHERE token_hash = $1)
			OR EXISTS (SELECT 1 FROM ` + n.tokens + ` WHERE previous_hash = $1)`,
		rotate: `UPDATE ` + n.tokens + ` SET previous_hash = token_hash, previous_expires_at = $3,
			token_hash = $2, start = $4, updated_at = $5 WHERE id = $1 RETURNING ` + tokenColumns,
		audit: `INSERT INTO ` + n.audit + ` (token_id, token_name, action, actor, changes, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`,
		// The ids arrive sorted, so concurrent writers lock rows in one order.
		touch: `UPDATE ` + n.tokens + ` AS t SET last_used_at = u.at
			FROM unnest($1::bigint[], $2::timestamptz[]) AS u(id, at)
			WHERE t.id = u.id AND (t.last_used_at IS NULL OR t.last_used_at < u.at)`,
	}
}

// usageQueries are the statements that write and prune usage.
type usageQueries struct {
	liveTokens, copyUsage, rollup, prune string
}

func newUsageQueries(n names) usageQueries {
	return usageQueries{
		// Also returns the transaction's id (the same on every row), with
		// which a COMMIT whose answer is lost can be resolved (indoubt.go).
		liveTokens: `WITH live AS (SELECT id FROM ` + n.tokens + ` WHERE id = ANY($1::bigint[]) ORDER BY id FOR KEY SHARE)
			SELECT id, pg_current_xact_id()::text FROM live`,
		copyUsage: `COPY ` + n.usage + ` (token_id, endpoint, route, method, status_code, response_time_us,
			request_size, response_size, ip_address, user_agent, created_at) FROM STDIN`,
		rollup: rollupQuery(n),
		prune:  `DELETE FROM ` + n.usage + ` WHERE id IN (SELECT id FROM ` + n.usage + ` WHERE created_at < $1 LIMIT $2)`,
	}
}

// rollupQuery is the one statement that adds a batch to the three rollups
// ($12, the 429 count, only to the per-token one). The data-modifying WITH
// clauses run after the main INSERT, each locking its rows in key order, so
// concurrent writers take their locks in one order.
func rollupQuery(n names) string {
	return `WITH by_token AS (
				INSERT INTO ` + n.tokenHourly + ` AS x (token_id, hour, requests, successes, failures,
					sum_response_us, max_response_us, sum_request_bytes, sum_response_bytes, rate_limited)
				SELECT token_id, hour, sum(requests), sum(successes), sum(failures), sum(sum_us), max(max_us), sum(req), sum(resp),
					sum(limited)
				FROM unnest($1::bigint[], $2::timestamptz[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[],
					$9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[])
					AS b(token_id, hour, requests, successes, failures, sum_us, max_us, req, resp, limited)
				GROUP BY token_id, hour ORDER BY token_id, hour
				ON CONFLICT (token_id, hour) DO UPDATE SET
					requests = x.requests + EXCLUDED.requests,
					successes = x.successes + EXCLUDED.successes,
					failures = x.failures + EXCLUDED.failures,
					sum_response_us = x.sum_response_us + EXCLUDED.sum_response_us,
					max_response_us = GREATEST(x.max_response_us, EXCLUDED.max_response_us),
					sum_request_bytes = x.sum_request_bytes + EXCLUDED.sum_request_bytes,
					sum_response_bytes = x.sum_response_bytes + EXCLUDED.sum_response_bytes,
					rate_limited = x.rate_limited + EXCLUDED.rate_limited
			), by_endpoint AS (
				INSERT INTO ` + n.endpointHourly + ` AS y (hour, endpoint, method, requests, successes, failures,
					sum_response_us, sum_request_bytes, sum_response_bytes)
				SELECT hour, endpoint, method, sum(requests), sum(successes), sum(failures), sum(sum_us), sum(req), sum(resp)
				FROM unnest($2::timestamptz[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[],
					$8::bigint[], $10::bigint[], $11::bigint[])
					AS b(hour, endpoint, method, requests, successes, failures, sum_us, req, resp)
				GROUP BY hour, endpoint, method ORDER BY hour, endpoint, method
				ON CONFLICT (hour, endpoint, method) DO UPDATE SET
					requests = y.requests + EXCLUDED.requests,
					successes = y.successes + EXCLUDED.successes,
					failures = y.failures + EXCLUDED.failures,
					sum_response_us = y.sum_response_us + EXCLUDED.sum_response_us,
					sum_request_bytes = y.sum_request_bytes + EXCLUDED.sum_request_bytes,
					sum_response_bytes = y.sum_response_bytes + EXCLUDED.sum_response_bytes
			)
			INSERT INTO ` + n.hourly + ` AS h (token_id, hour, endpoint, method, requests, successes, failures,
				sum_response_us, max_response_us, sum_request_bytes, sum_response_bytes)
			SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::bigint[], $6::bigint[],
				$7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[])
			ON CONFLICT (token_id, hour, endpoint, method) DO UPDATE SET
				requests = h.requests + EXCLUDED.requests,
				successes = h.successes + EXCLUDED.successes,
				failures = h.failures + EXCLUDED.failures,
				sum_response_us = h.sum_response_us + EXCLUDED.sum_response_us,
				max_response_us = GREATEST(h.max_response_us, EXCLUDED.max_response_us),
				sum_request_bytes = h.sum_request_bytes + EXCLUDED.sum_request_bytes,
				sum_response_bytes = h.sum_response_bytes + EXCLUDED.sum_response_bytes`
}

// analyticsQueries are the statements of the reports.
type analyticsQueries struct {
	hourly, endpoints, recent, totals           string
	topTokens, rateLimited, topEndpoints, stats string
}

func newAnalyticsQueries(n names) analyticsQueries {
	return analyticsQueries{
		hourly: `SELECT hour, requests, successes, sum_response_us FROM ` + n.tokenHourly + `
			WHERE token_id = $1 AND hour >= $2 AND hour < $3 ORDER BY hour`,
		endpoints: `SELECT endpoint, method, sum(requests)::bigint AS n, sum(sum_response_us)::bigint FROM ` + n.hourly + `
			WHERE token_id = $1 AND hour >= $2 AND hour < $3 GROUP BY endpoint, method
			ORDER BY n DESC, endpoint COLLATE "C", method COLLATE "C" LIMIT $4`,
		recent: `SELECT endpoint, method, status_code, response_time_us, COALESCE(host(ip_address), ''), user_agent, created_at
			FROM ` + n.usage + ` WHERE token_id = $1 AND created_at >= $2 AND created_at < $3
			ORDER BY created_at DESC, id DESC LIMIT $4`,
		totals: `SELECT (SELECT count(*) FROM ` + n.tokens + ` WHERE active AND (expires_at IS NULL OR expires_at > $3)),
				COALESCE(sum(requests), 0)::bigint, COALESCE(sum(successes), 0)::bigint, COALESCE(sum(sum_response_us), 0)::bigint
			FROM ` + n.tokenHourly + ` WHERE hour >= $1 AND hour < $2`,
		topTokens: `SELECT h.token_id, t.name, sum(h.requests)::bigint AS n, sum(h.sum_response_us)::bigint,
				sum(h.rate_limited)::bigint
			FROM ` + n.tokenHourly + ` h JOIN ` + n.tokens + ` t ON t.id = h.token_id
			WHERE h.hour >= $1 AND h.hour < $2 GROUP BY h.token_id, t.name ORDER BY n DESC, h.token_id LIMIT $3`,
		// The same rows as topTokens; HAVING keeps the tokens with a 429.
		rateLimited: `SELECT h.token_id, t.name, t.rate_limit, sum(h.rate_limited)::bigint AS n, sum(h.requests)::bigint
			FROM ` + n.tokenHourly + ` h JOIN ` + n.tokens + ` t ON t.id = h.token_id
			WHERE h.hour >= $1 AND h.hour < $2 GROUP BY h.token_id, t.name, t.rate_limit HAVING sum(h.rate_limited) > 0
			ORDER BY n DESC, h.token_id LIMIT $3`,
		// Rows of deleted tokens are subtracted (and removed at zero) by
		// a trigger; HAVING keeps a sum of zero out all the same.
		topEndpoints: `SELECT endpoint, method, sum(requests)::bigint AS n, sum(sum_response_us)::bigint FROM ` + n.endpointHourly + `
			WHERE hour >= $1 AND hour < $2 GROUP BY endpoint, method HAVING sum(requests) > 0
			ORDER BY n DESC, endpoint COLLATE "C", method COLLATE "C" LIMIT $3`,
		stats: `SELECT i.id,
				COALESCE(sum(h.requests) FILTER (WHERE h.hour >= $2 AND h.hour <= $4), 0)::bigint,
				COALESCE(sum(h.requests) FILTER (WHERE h.hour >= $3 AND h.hour <= $4), 0)::bigint,
				COALESCE(sum(h.requests), 0)::bigint
			FROM unnest($1::bigint[]) AS i(id) LEFT JOIN ` + n.tokenHourly + ` h ON h.token_id = i.id
			GROUP BY i.id`,
	}
}

// check returns ctx's error.
func (s *Store) check(ctx context.Context) error { return ctx.Err() }

// tokenRow is a row of tokenColumns.
type tokenRow struct {
	ID               int64          `db:"id"`
	Name             string         `db:"name"`
	Description      string         `db:"description"`
	UserID           string         `db:"user_id"`
	Start            string         `db:"start"`
	Active           bool           `db:"active"`
	RateLimit        int            `db:"rate_limit"`
	AllowedEndpoints pq.StringArray `db:"allowed_endpoints"`
	Scopes           pq.StringArray `db:"scopes"`
	Metadata         []byte         `db:"metadata"`
	ExpiresAt        *time.Time     `db:"expires_at"`
	LastUsedAt       *time.Time     `db:"last_used_at"`
	CreatedAt        time.Time      `db:"created_at"`
	UpdatedAt        time.Time      `db:"updated_at"`
	PreviousExpires  *time.Time     `db:"previous_expires_at"`
}

// hashRow is a tokenRow found by a hash, saying which one.
type hashRow struct {
	tokenRow
	ViaPrevious bool `db:"via_previous"`
}

// listRow is a tokenRow with the number of matching rows.
type listRow struct {
	tokenRow
	Total int `db:"total"`
}

func (r *tokenRow) token() (*apitoken.Token, error) {
	t := &apitoken.Token{
		ID:               r.ID,
		Name:             r.Name,
		Description:      r.Description,
		UserID:           r.UserID,
		Start:            r.Start,
		Active:           r.Active,
		RateLimit:        r.RateLimit,
		AllowedEndpoints: []string(r.AllowedEndpoints),
		Scopes:           []string(r.Scopes),
		ExpiresAt:        utcPtr(r.ExpiresAt),
		LastUsedAt:       utcPtr(r.LastUsedAt),
		CreatedAt:        r.CreatedAt.UTC(),
		UpdatedAt:        r.UpdatedAt.UTC(),

		PreviousExpiresAt: utcPtr(r.PreviousExpires),
	}
	if r.Metadata != nil {
		if err := json.Unmarshal(r.Metadata, &t.Metadata); err != nil {
			return nil, fmt.Errorf("apitoken: postgres: token %d: decoding metadata: %w", r.ID, err)
		}
		if t.Metadata == nil { // JSON null
			t.Metadata = map[string]string{}
		}
	}
	return t, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// ts is t as stored: UTC, truncated to the microsecond (PostgreSQL would
// round the nanoseconds instead).
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// tsPtr is ts for a nullable time: nil gives SQL NULL.
func tsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ts(*t)
}

// tsText formats t for a timestamptz[] parameter.
func tsText(t time.Time) string { return ts(t).Format("2006-01-02T15:04:05.999999Z07:00") }

// metadataParam encodes metadata for the JSONB column: nil gives NULL. It is
// passed as text, since lib/pq would send a []byte as bytea.
func metadataParam(m map[string]string) (any, error) {
	if m == nil {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// CreateToken stores t under hash and sets t.ID, changing nothing else in t.
// A hash already stored returns an error matching apitoken.ErrDuplicate.
// Times are stored in UTC, truncated to the microsecond.
func (s *Store) CreateToken(ctx context.Context, t *apitoken.Token, hash apitoken.Hash) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if t == nil {
		return errors.New("apitoken: postgres: CreateToken with a nil token")
	}
	meta, err := metadataParam(t.Metadata)
	if err != nil {
		return fmt.Errorf("apitoken: postgres: create token: encoding metadata: %w", err)
	}
	actor, at := auditInfo(ctx, t.CreatedAt)
	_, created := apitoken.AuditChanges(apitoken.ActionCreate, nil, t, apitoken.Update{})
	changes, err := json.Marshal(created)
	if err != nil {
		return fmt.Errorf("apitoken: postgres: create token: encoding audit changes: %w", err)
	}
	var id int64
	err = s.db.QueryRowContext(ctx, s.q.create,
		t.Name, hash[:], t.Start, t.Description, t.UserID, t.Active, t.RateLimit,
		pq.StringArray(t.AllowedEndpoints), pq.StringArray(t.Scopes), meta,
		tsPtr(t.ExpiresAt), tsPtr(t.LastUsedAt), ts(t.CreatedAt), ts(t.UpdatedAt),
		actor, string(changes), ts(at),
	).Scan(&id)
	if err != nil {
		if ctx.Err() == nil && isCode(err, codeUniqueViolation) {
			return fmt.Errorf("%w: the token hash is already stored", apitoken.ErrDuplicate)
		}
		return wrapErr(ctx, "create token", err)
	}
	t.ID = id
	return nil
}

// GetToken returns the token with the id, or an error matching
// apitoken.ErrNotFound.
func (s *Store) GetToken(ctx context.Context, id int64) (*apitoken.Token, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var r tokenRow
	if err := s.db.GetContext(ctx, &r, s.q.get, id); err != nil {
		return nil, wrapErr(ctx, fmt.Sprintf("get token %d", id), err)
	}
	return r.token()
}

// GetTokenByHash returns the token stored under hash, or an error
// matching apitoken.ErrNotFound. It is one statement of two index lookups,
// on token_hash and on previous_hash; for the hash a rotation replaced,
// ExpiresAt is the end of the grace period when that is earlier.
func (s *Store) GetTokenByHash(ctx context.Context, hash apitoken.Hash) (*apitoken.Token, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var r hashRow
	if err := s.db.GetContext(ctx, &r, s.q.getByHash, hash[:]); err != nil {
		return nil, wrapErr(ctx, "get token by hash", err)
	}
	t, err := r.token()
	if err != nil {
		return nil, err
	}
	if r.ViaPrevious {
		t.ExpiresAt = storeutil.PreviousExpiry(t)
	}
	return t, nil
}

// ListTokens returns the tokens matching opts, highest id first, and how many
// match before paging. Search matches a substring of the name after lower()
// on both sides ('%' and '_' are not wildcards). A negative Limit or Offset
// counts as 0. Status and ExpiresBefore are conditions of the same
// statement (Status judged at opts.Now, time.Now() when zero), so paging and
// the total count only the matching tokens.
func (s *Store) ListTokens(ctx context.Context, opts apitoken.ListOptions) ([]*apitoken.Token, int, error) {
	if err := s.check(ctx); err != nil {
		return nil, 0, err
	}
	if err := apitoken.CheckStatus(opts.Status); err != nil {
		return nil, 0, err
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if opts.Active != nil {
		where = append(where, "active = "+arg(*opts.Active))
	}
	if opts.Search != "" {
		where = append(where, "strpos(lower(name), lower("+arg(opts.Search)+")) > 0")
	}
	if opts.UserID != "" {
		where = append(where, "user_id = "+arg(opts.UserID))
	}
	if opts.Status != "" {
		// A stored expiry x (whole microseconds) is at or before now
		// exactly when x <= now truncated to the microsecond.
		now := ts(storeutil.StatusTime(opts, time.Now))
		switch opts.Status {
		case apitoken.StatusActive:
			where = append(where, "active AND (expires_at IS NULL OR expires_at > "+arg(now)+")")
		case apitoken.StatusDisabled:
			where = append(where, "NOT active")
		case apitoken.StatusExpired:
			where = append(where, "active AND expires_at <= "+arg(now))
		}
	}
	if opts.ExpiresBefore != nil {
		where = append(where, "expires_at < "+arg(ceilMicro(*opts.ExpiresBefore)))
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	q, pageArgs := withPage(`SELECT `+tokenColumns+`, count(*) OVER () AS total FROM `+s.n.tokens+cond+` ORDER BY id DESC`,
		args, opts.Limit, opts.Offset)
	var rows []listRow
	if err := s.db.SelectContext(ctx, &rows, q, pageArgs...); err != nil {
		return nil, 0, wrapErr(ctx, "list tokens", err)
	}
	out := make([]*apitoken.Token, 0, len(rows))
	for i := range rows {
		t, err := rows[i].token()
		if err != nil {
			return nil, 0, err
		}
		out = append(out, t)
	}
	if len(rows) > 0 {
		return out, rows[0].Total, nil
	}
	if opts.Offset <= 0 {
		return out, 0, nil
	}
	// The page is past the end: count separately.
	var total int
	if err := s.db.GetContext(ctx, &total, `SELECT count(*) FROM `+s.n.tokens+cond, args...); err != nil {
		return nil, 0, wrapErr(ctx, "count tokens", err)
	}
	return out, total, nil
}

// UpdateToken applies u and sets UpdatedAt to now in one UPDATE ...
// RETURNING statement that writes only the columns u sets, and returns the
// result. A missing token returns an error matching apitoken.ErrNotFound. The
// change is notified to Listen (see the package documentation).
func (s *Store) UpdateToken(ctx context.Context, id int64, u apitoken.Update, now time.Time) (*apitoken.Token, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	args := []any{id}
	var sets []string
	set := func(col string, v any) {
		args = append(args, v)
		sets = append(sets, col+" = $"+strconv.Itoa(len(args)))
	}
	if u.Name.Set {
		set("name", u.Name.Value)
	}
	if u.Description.Set {
		set("description", u.Description.Value)
	}
	if u.UserID.Set {
		args = append(args, u.UserID.Value)
		sets = append(sets, "user_id = NULLIF($"+strconv.Itoa(len(args))+", '')")
	}
	if u.Active.Set {
		set("active", u.Active.Value)
	}
	if u.RateLimit.Set {
		set("rate_limit", u.RateLimit.Value)
	}
	if u.AllowedEndpoints.Set {
		set("allowed_endpoints", pq.StringArray(u.AllowedEndpoints.Value))
	}
	if u.Scopes.Set {
		set("scopes", pq.StringArray(u.Scopes.Value))
	}
	if u.Metadata.Set {
		meta, err := metadataParam(u.Metadata.Value)
		if err != nil {
			return nil, fmt.Errorf("apitoken: postgres: update token: encoding metadata: %w", err)
		}
		set("metadata", meta)
	}
	if u.ExpiresAt.Set {
		set("expires_at", tsPtr(u.ExpiresAt.Value))
	}
	set("updated_at", ts(now))
	q := `UPDATE ` + s.n.tokens + ` SET ` + strings.Join(sets, ", ") + ` WHERE id = $1 RETURNING ` + tokenColumns
	var after *apitoken.Token
	err := s.changeToken(ctx, id, "update", now, func(tx *sqlx.Tx, before *apitoken.Token) (*apitoken.Token, string, []apitoken.Change, error) {
		var r tokenRow
		if err := tx.GetContext(ctx, &r, q, args...); err != nil {
			return nil, "", nil, err
		}
		t, err := r.token()
		if err != nil {
			return nil, "", nil, err
		}
		after = t
		action, changes := apitoken.AuditChanges(apitoken.ActionUpdate, before, t, u)
		return t, action, changes, nil
	})
	if err != nil {
		return nil, err
	}
	return after, nil
}

// RotateToken moves the token's hash to previous_hash with previousUntil as
// its expiry, stores hash and start, and records the rotation in the audit
// log, in one transaction (see apitoken.Store). The change is notified to
// Listen.
func (s *Store) RotateToken(ctx context.Context, id int64, hash apitoken.Hash, start string, previousUntil, now time.Time) (*apitoken.Token, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var after *apitoken.Token
	err := s.changeToken(ctx, id, "rotate", now, func(tx *sqlx.Tx, before *apitoken.Token) (*apitoken.Token, string, []apitoken.Change, error) {
		var taken bool
		if err := tx.GetContext(ctx, &taken, s.q.hashTaken, hash[:]); err != nil {
			return nil, "", nil, err
		}
		if taken {
			return nil, "", nil, fmt.Errorf("%w: the token hash is already stored", apitoken.ErrDuplicate)
		}
		var r tokenRow
		if err := tx.GetContext(ctx, &r, s.q.rotate, id, hash[:], ts(previousUntil), start, ts(now)); err != nil {
			if ctx.Err() == nil && isCode(err, codeUniqueViolation) {
				return nil, "", nil, fmt.Errorf("%w: the token hash is already stored", apitoken.ErrDuplicate)
			}
			return nil, "", nil, err
		}
		t, err := r.token()
		if err != nil {
			return nil, "", nil, err
		}
		after = t
		action, changes := apitoken.AuditChanges(apitoken.ActionRotate, before, t, apitoken.Update{})
		return t, action, changes, nil
	})
	if err != nil {
		return nil, err
	}
	return after, nil
}

// changeToken runs change on the token locked FOR UPDATE and writes its
// audit entry, in one transaction. change gets the token before the change
// and returns it after, with the action and changes to record.
func (s *Store) changeToken(ctx context.Context, id int64, op string, now time.Time,
	change func(tx *sqlx.Tx, before *apitoken.Token) (*apitoken.Token, string, []apitoken.Change, error)) error {
	what := fmt.Sprintf("%s token %d", op, id)
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return wrapErr(ctx, what, err)
	}
	defer func() { _ = tx.Rollback() }()
	var r tokenRow
	if err := tx.GetContext(ctx, &r, s.q.lockToken, id); err != nil {
		return wrapErr(ctx, what, err)
	}
	before, err := r.token()
	if err != nil {
		return err
	}
	after, action, changes, err := change(tx, before)
	if err != nil {
		if errors.Is(err, apitoken.ErrDuplicate) {
			return err
		}
		return wrapErr(ctx, what, err)
	}
	if changes == nil {
		changes = []apitoken.Change{}
	}
	body, err := json.Marshal(changes)
	if err != nil {
		return fmt.Errorf("apitoken: postgres: %s: encoding audit changes: %w", what, err)
	}
	actor, at := auditInfo(ctx, now)
	if _, err := tx.ExecContext(ctx, s.q.audit, id, after.Name, action, actor, string(body), ts(at)); err != nil {
		return wrapErr(ctx, what, err)
	}
	if err := tx.Commit(); err != nil {
		return wrapErr(ctx, what, err)
	}
	return nil
}

// auditInfo returns the actor and time of a change from ctx (see
// apitoken.AuditInfo), with fallback as the time when ctx has none.
func auditInfo(ctx context.Context, fallback time.Time) (string, time.Time) {
	actor, at := apitoken.AuditInfo(ctx)
	if at.IsZero() {
		at = fallback
	}
	return actor, at
}

// DeleteToken removes the token, its usage rows and rollups (by trigger and
// ON DELETE CASCADE), and records the delete in the audit log, in one
// statement. A missing token returns an error matching apitoken.ErrNotFound.
func (s *Store) DeleteToken(ctx context.Context, id int64) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	actor, at := auditInfo(ctx, time.Now())
	res, err := s.db.ExecContext(ctx, s.q.delete, id, actor, ts(at))
	if err != nil {
		return wrapErr(ctx, fmt.Sprintf("delete token %d", id), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrapErr(ctx, fmt.Sprintf("delete token %d", id), err)
	}
	if n == 0 {
		return notFound(id)
	}
	return nil
}

// withPage appends LIMIT and OFFSET, when positive, to q as parameters after
// args, and returns q and all its arguments.
func withPage(q string, args []any, limit, offset int) (string, []any) {
	all := slices.Clone(args)
	if limit > 0 {
		all = append(all, limit)
		q += " LIMIT $" + strconv.Itoa(len(all))
	}
	if offset > 0 {
		all = append(all, offset)
		q += " OFFSET $" + strconv.Itoa(len(all))
	}
	return q, all
}

// auditRow is a row of the audit table.
type auditRow struct {
	ID        int64     `db:"id"`
	TokenID   int64     `db:"token_id"`
	TokenName string    `db:"token_name"`
	Action    string    `db:"action"`
	Actor     string    `db:"actor"`
	Changes   []byte    `db:"changes"`
	CreatedAt time.Time `db:"created_at"`
	Total     int       `db:"total"`
}

// ListAudit returns the audit entries matching q, newest first, and how many
// match before paging. A negative Limit or Offset counts as 0.
func (s *Store) ListAudit(ctx context.Context, q apitoken.AuditQuery) ([]*apitoken.AuditEntry, int, error) {
	if err := s.check(ctx); err != nil {
		return nil, 0, err
	}
	cond, args := "", []any{}
	if q.TokenID > 0 {
		cond, args = " WHERE token_id = $1", append(args, q.TokenID)
	}
	sel, pageArgs := withPage(`SELECT id, token_id, token_name, action, actor, changes, created_at, count(*) OVER () AS total FROM `+
		s.n.audit+cond+` ORDER BY id DESC`, args, q.Limit, q.Offset)
	var rows []auditRow
	if err := s.db.SelectContext(ctx, &rows, sel, pageArgs...); err != nil {
		return nil, 0, wrapErr(ctx, "list audit", err)
	}
	out := make([]*apitoken.AuditEntry, 0, len(rows))
	for _, r := range rows {
		e := &apitoken.AuditEntry{ID: r.ID, TokenID: r.TokenID, TokenName: r.TokenName, Action: r.Action,
			Actor: r.Actor, CreatedAt: r.CreatedAt.UTC()}
		if err := json.Unmarshal(r.Changes, &e.Changes); err != nil {
			return nil, 0, fmt.Errorf("apitoken: postgres: audit entry %d: decoding changes: %w", r.ID, err)
		}
		if e.Changes == nil {
			e.Changes = []apitoken.Change{}
		}
		out = append(out, e)
	}
	if len(rows) > 0 {
		return out, rows[0].Total, nil
	}
	if q.Offset <= 0 {
		return out, 0, nil
	}
	var total int
	if err := s.db.GetContext(ctx, &total, `SELECT count(*) FROM `+s.n.audit+cond, args...); err != nil {
		return nil, 0, wrapErr(ctx, "count audit", err)
	}
	return out, total, nil
}

// TouchTokens sets last_used_at of each known id to the given time unless the
// stored value is later, in one statement. Unknown ids are ignored. It does
// not notify Listen.
func (s *Store) TouchTokens(ctx context.Context, used map[int64]time.Time) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if len(used) == 0 {
		return nil
	}
	if _, err := s.db.ExecContext(ctx, s.q.touch, touchArgs(used)...); err != nil {
		return wrapErr(ctx, "touch tokens", err)
	}
	return nil
}

// touchArgs gives the touch statement's arguments for used: the ids in
// ascending order, so that concurrent writers lock rows in one order, and
// their times.
func touchArgs(used map[int64]time.Time) []any {
	ids := slices.Sorted(maps.Keys(used))
	at := make([]string, len(ids))
	for i, id := range ids {
		at[i] = tsText(used[id])
	}
	return []any{pq.Int64Array(ids), pq.StringArray(at)}
}

package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/lib/pq"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/storeutil"
)

// ceilMicro returns the first whole microsecond at or after t, in UTC. For a
// stored (whole-microsecond) time x, x < t exactly when x < ceilMicro(t), and
// x >= t exactly when x >= ceilMicro(t).
func ceilMicro(t time.Time) time.Time {
	c := ts(t)
	if c.Before(t) {
		c = c.Add(time.Microsecond)
	}
	return c
}

// bucketRange returns the bounds [lo, hi) of the hour starts that belong to
// q: hour starts in [q.From.Truncate(time.Hour), q.To).
func bucketRange(q apitoken.Query) (lo, hi time.Time) {
	return q.From.UTC().Truncate(time.Hour), ceilMicro(q.To)
}

func avg(sumUS, n int64) float64 {
	return storeutil.AvgMillis(time.Duration(sumUS)*time.Microsecond, n)
}

// TokenUsage reports the token's requests in q by the rules in the package
// documentation of store/memory: hourly buckets and endpoints from the hourly
// rollup, recent requests from the raw rows. A token without usage, or one
// that does not exist, gives empty slices.
func (s *Store) TokenUsage(ctx context.Context, id int64, q apitoken.Query) (*apitoken.TokenUsage, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	limit := storeutil.QueryLimit(q)
	lo, hi := bucketRange(q)
	res := &apitoken.TokenUsage{
		HourlyUsage:    []apitoken.HourlyUsage{},
		EndpointUsage:  []apitoken.EndpointUsage{},
		RecentRequests: []apitoken.RecentRequest{},
	}
	fail := func(op string, err error) (*apitoken.TokenUsage, error) {
		return nil, wrapErr(ctx, fmt.Sprintf("token usage %d: %s", id, op), err)
	}

	err := s.each(ctx, s.q.hourly, []any{id, lo, hi}, func(rows *sql.Rows) error {
		var (
			h            time.Time
			n, ok, sumUS int64
		)
		if err := rows.Scan(&h, &n, &ok, &sumUS); err != nil {
			return err
		}
		res.HourlyUsage = append(res.HourlyUsage, apitoken.HourlyUsage{
			Hour: h.UTC(), Requests: n, AvgResponseTime: avg(sumUS, n),
			SuccessfulRequests: ok, FailedRequests: n - ok,
		})
		return nil
	})
	if err != nil {
		return fail("hourly", err)
	}
	if res.EndpointUsage, err = s.endpointList(ctx, s.q.endpoints, id, lo, hi, limit); err != nil {
		return fail("endpoints", err)
	}
	err = s.each(ctx, s.q.recent, []any{id, ceilMicro(q.From), hi, limit}, func(rows *sql.Rows) error {
		var (
			r  apitoken.RecentRequest
			us int64
			ip string
			at time.Time
		)
		if err := rows.Scan(&r.Endpoint, &r.Method, &r.StatusCode, &us, &ip, &r.UserAgent, &at); err != nil {
			return err
		}
		r.ResponseTimeMS = storeutil.RoundMillis(float64(us) / 1000)
		if a, err := netip.ParseAddr(ip); err == nil {
			ip = a.String() // Go's form, as the memory store reports it
		}
		r.IPAddress = ip
		r.CreatedAt = at.UTC()
		res.RecentRequests = append(res.RecentRequests, r)
		return nil
	})
	if err != nil {
		return fail("recent", err)
	}
	return res, nil
}

// endpointList runs an endpoint query (endpoint, method, requests, summed
// response time) with args.
func (s *Store) endpointList(ctx context.Context, query string, args ...any) ([]apitoken.EndpointUsage, error) {
	out := []apitoken.EndpointUsage{}
	err := s.each(ctx, query, args, func(rows *sql.Rows) error {
		var (
			e     apitoken.EndpointUsage
			sumUS int64
		)
		if err := rows.Scan(&e.Endpoint, &e.Method, &e.Requests, &sumUS); err != nil {
			return err
		}
		e.AvgResponseTime = avg(sumUS, e.Requests)
		out = append(out, e)
		return nil
	})
	return out, err
}

// each runs query and calls f for every row.
func (s *Store) each(ctx context.Context, query string, args []any, f func(*sql.Rows) error) error {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := f(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}

// Overview reports every token's requests in q from the hourly rollup, by the
// rules in the package documentation of store/memory. ActiveTokens counts
// active tokens not expired at q.To. RateLimitedTokens read the per-token
// rollup's rate_limited column (migration 0006).
func (s *Store) Overview(ctx context.Context, q apitoken.Query) (*apitoken.Overview, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	limit := storeutil.QueryLimit(q)
	lo, hi := bucketRange(q)
	res := &apitoken.Overview{
		TopTokens:         []apitoken.TopToken{},
		TopEndpoints:      []apitoken.EndpointUsage{},
		RateLimitedTokens: []apitoken.RateLimitedToken{},
	}
	fail := func(op string, err error) (*apitoken.Overview, error) {
		return nil, wrapErr(ctx, "overview: "+op, err)
	}
	var sumUS int64
	o := &res.Overview
	// A token expiring at x (whole microseconds) is after q.To exactly when
	// x > q.To truncated to the microsecond.
	if err := s.db.QueryRowContext(ctx, s.q.totals, lo, hi, ts(q.To)).Scan(
		&o.ActiveTokens, &o.TotalRequests, &o.SuccessfulRequests, &sumUS); err != nil {
		return fail("totals", err)
	}
	o.FailedRequests = o.TotalRequests - o.SuccessfulRequests
	o.AvgResponseTime = avg(sumUS, o.TotalRequests)

	err := s.each(ctx, s.q.topTokens, []any{lo, hi, limit}, func(rows *sql.Rows) error {
		var (
			t     apitoken.TopToken
			sumUS int64
		)
		if err := rows.Scan(&t.ID, &t.Name, &t.Requests, &sumUS, &t.RateLimitedRequests); err != nil {
			return err
		}
		t.AvgResponseTime = avg(sumUS, t.Requests)
		res.TopTokens = append(res.TopTokens, t)
		return nil
	})
	if err != nil {
		return fail("top tokens", err)
	}
	if res.TopEndpoints, err = s.endpointList(ctx, s.q.topEndpoints, lo, hi, limit); err != nil {
		return fail("top endpoints", err)
	}
	err = s.each(ctx, s.q.rateLimited, []any{lo, hi, limit}, func(rows *sql.Rows) error {
		var t apitoken.RateLimitedToken
		if err := rows.Scan(&t.TokenID, &t.Name, &t.RateLimit, &t.RateLimitedRequests, &t.Requests); err != nil {
			return err
		}
		res.RateLimitedTokens = append(res.RateLimitedTokens, t)
		return nil
	})
	if err != nil {
		return fail("rate-limited tokens", err)
	}
	return res, nil
}

// TokenStats returns the 24 h, 7 d and all-time request counts of each id
// relative to now, from the hourly rollup in one query, hour-granular as the
// memory store: the 24 h count covers the hours from (now-24h) truncated to
// the hour through now's hour. Every id is in the map, with zero counts when
// it has no usage or does not exist.
func (s *Store) TokenStats(ctx context.Context, ids []int64, now time.Time) (map[int64]apitoken.TokenStats, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	res := make(map[int64]apitoken.TokenStats, len(ids))
	if len(ids) == 0 {
		return res, nil
	}
	uniq := slices.Clone(ids)
	slices.Sort(uniq)
	uniq = slices.Compact(uniq) // a repeated id would count its rows twice
	end := now.UTC().Truncate(time.Hour)
	from24h := now.UTC().Add(-24 * time.Hour).Truncate(time.Hour)
	from7d := now.UTC().Add(-7 * 24 * time.Hour).Truncate(time.Hour)
	err := s.each(ctx, s.q.stats, []any{pq.Int64Array(uniq), from24h, from7d, end}, func(rows *sql.Rows) error {
		var (
			id int64
			st apitoken.TokenStats
		)
		if err := rows.Scan(&id, &st.Requests24h, &st.Requests7d, &st.TotalRequests); err != nil {
			return err
		}
		res[id] = st
		return nil
	})
	if err != nil {
		return nil, wrapErr(ctx, "token stats", err)
	}
	for _, id := range uniq {
		if _, ok := res[id]; !ok {
			res[id] = apitoken.TokenStats{}
		}
	}
	return res, nil
}

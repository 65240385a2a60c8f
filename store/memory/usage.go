package memory

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/storeutil"
)

const hourSecs = int64(time.Hour / time.Second)

// counts is a rollup: requests, successful requests and summed response time.
type counts struct {
	n, ok int64
	sum   time.Duration
}

func (c *counts) add(status int, rt time.Duration) {
	c.n++
	if storeutil.Successful(status) {
		c.ok++
	}
	c.sum += rt
}

func (c *counts) merge(o *counts) {
	c.n += o.n
	c.ok += o.ok
	c.sum += o.sum
}

// epKey is an endpoint (route, else path) and method.
type epKey struct{ endpoint, method string }

// hourBucket is one token's rollups for one UTC hour.
type hourBucket struct {
	all     counts            // every endpoint
	limited int64             // requests answered 429
	eps     map[epKey]*counts // per endpoint and method
}

// rawEvent is the compact form of a kept event: what RecentRequests reads.
type rawEvent struct {
	sec      int64 // Unix time of the event
	nsec     int32
	status   int32
	rt       time.Duration
	endpoint string // interned
	method   string // interned
	ua       string // interned
	ip       netip.Addr
}

func (e *rawEvent) time() time.Time { return time.Unix(e.sec, int64(e.nsec)).UTC() }

// newer reports whether e happened after o.
func (e *rawEvent) newer(o *rawEvent) bool {
	return e.sec > o.sec || e.sec == o.sec && e.nsec > o.nsec
}

// tokenUsage is everything kept about one token's requests.
type tokenUsage struct {
	total  int64
	hours  map[int64]*hourBucket // by Unix second of the hour start
	events queue[rawEvent]       // oldest recorded first
}

// hourOf returns the Unix second of the start of t's UTC hour.
func hourOf(t time.Time) int64 { return t.Truncate(time.Hour).Unix() }

// RecordUsage stores the events, all or none. Events of tokens that do not
// exist are dropped silently. The slice is not kept.
func (s *Store) RecordUsage(ctx context.Context, events []apitoken.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var (
		lastID int64
		u      *tokenUsage
	)
	for i := range events {
		ev := &events[i]
		if u == nil || ev.TokenID != lastID {
			e := s.tokens[ev.TokenID]
			if e == nil {
				u = nil
				continue
			}
			if e.usage == nil {
				e.usage = &tokenUsage{hours: make(map[int64]*hourBucket)}
			}
			lastID, u = ev.TokenID, e.usage
		}
		s.record(u, ev)
	}
	s.trim()
	return nil
}

func (s *Store) record(u *tokenUsage, ev *apitoken.Event) {
	u.total++
	h := hourOf(ev.Time)
	b := u.hours[h]
	if b == nil {
		b = &hourBucket{eps: make(map[epKey]*counts, 1)}
		u.hours[h] = b
	}
	b.all.add(ev.StatusCode, ev.ResponseTime)
	if storeutil.RateLimited(ev.StatusCode) {
		b.limited++
	}
	k := epKey{endpoint: ev.Route, method: ev.Method}
	if k.endpoint == "" {
		k.endpoint = ev.Endpoint
	}
	c := b.eps[k]
	if c == nil {
		// Own copies: a map key must not keep the caller's memory.
		k = epKey{endpoint: strings.Clone(k.endpoint), method: strings.Clone(k.method)}
		c = &counts{}
		b.eps[k] = c
	}
	c.add(ev.StatusCode, ev.ResponseTime)

	if s.maxEvents == 0 {
		return
	}
	u.events.push(rawEvent{
		sec:      ev.Time.Unix(),
		nsec:     int32(ev.Time.Nanosecond()),
		status:   int32(ev.StatusCode),
		rt:       ev.ResponseTime,
		endpoint: s.strs.get(ev.Endpoint),
		method:   s.strs.get(ev.Method),
		ua:       s.strs.get(ev.UserAgent),
		ip:       ev.IP,
	})
	s.order.push(ev.TokenID)
	s.events++
}

// trim drops the earliest recorded raw events until at most maxEvents remain.
func (s *Store) trim() {
	for s.events > s.maxEvents && s.order.len() > 0 {
		id := s.order.pop()
		e := s.tokens[id]
		if e == nil || e.usage == nil || e.usage.events.len() == 0 {
			s.stale-- // an event of a deleted token, already released
			continue
		}
		ev := e.usage.events.pop()
		s.releaseEvent(&ev)
		s.events--
	}
}

// dropStale removes the ids of deleted tokens' events from order once they
// outnumber the live ones, so deleting tokens cannot grow it without bound.
func (s *Store) dropStale() {
	if s.stale <= 1024 || s.stale <= s.events {
		return
	}
	s.order.filter(func(id *int64) bool { return s.tokens[*id] != nil })
	s.stale = 0
}

func (s *Store) releaseEvent(e *rawEvent) {
	s.strs.release(e.endpoint)
	s.strs.release(e.method)
	s.strs.release(e.ua)
}

// bucketRange returns the Unix seconds [lo, hi) of the hour starts that
// belong to q: those in [q.From.Truncate(time.Hour), q.To).
func bucketRange(q apitoken.Query) (lo, hi int64) {
	lo = hourOf(q.From)
	hi = q.To.Unix()
	if q.To.Nanosecond() > 0 {
		hi++ // h < q.To for a whole second h
	}
	return lo, hi
}

// endpointList sorts m into the reports' order and caps it at limit.
func endpointList(m map[epKey]*counts, limit int) []apitoken.EndpointUsage {
	keys := make([]epKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b epKey) int {
		if c := cmp.Compare(m[b].n, m[a].n); c != 0 {
			return c
		}
		if c := cmp.Compare(a.endpoint, b.endpoint); c != 0 {
			return c
		}
		return cmp.Compare(a.method, b.method)
	})
	if len(keys) > limit {
		keys = keys[:limit]
	}
	out := make([]apitoken.EndpointUsage, len(keys))
	for i, k := range keys {
		c := m[k]
		out[i] = apitoken.EndpointUsage{Endpoint: k.endpoint, Method: k.method, Requests: c.n, AvgResponseTime: storeutil.AvgMillis(c.sum, c.n)}
	}
	return out
}

// addEndpoints merges b's endpoint rollups into m.
func addEndpoints(m map[epKey]*counts, b *hourBucket) {
	for k, c := range b.eps {
		t := m[k]
		if t == nil {
			t = &counts{}
			m[k] = t
		}
		t.merge(c)
	}
}

// TokenUsage reports the token's requests in q (see the package
// documentation for the exact rules). A token without usage, or one that does
// not exist, gives empty slices.
func (s *Store) TokenUsage(ctx context.Context, id int64, q apitoken.Query) (*apitoken.TokenUsage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit := storeutil.QueryLimit(q)
	lo, hi := bucketRange(q)
	s.mu.RLock()
	defer s.mu.RUnlock()
	res := &apitoken.TokenUsage{
		HourlyUsage:    []apitoken.HourlyUsage{},
		EndpointUsage:  []apitoken.EndpointUsage{},
		RecentRequests: []apitoken.RecentRequest{},
	}
	e := s.tokens[id]
	if e == nil || e.usage == nil {
		return res, nil
	}
	u := e.usage
	eps := make(map[epKey]*counts)
	for h, b := range u.hours {
		if h < lo || h >= hi {
			continue
		}
		res.HourlyUsage = append(res.HourlyUsage, apitoken.HourlyUsage{
			Hour:               time.Unix(h, 0).UTC(),
			Requests:           b.all.n,
			AvgResponseTime:    storeutil.AvgMillis(b.all.sum, b.all.n),
			SuccessfulRequests: b.all.ok,
			FailedRequests:     b.all.n - b.all.ok,
		})
		addEndpoints(eps, b)
	}
	slices.SortFunc(res.HourlyUsage, func(a, b apitoken.HourlyUsage) int { return a.Hour.Compare(b.Hour) })
	res.EndpointUsage = endpointList(eps, limit)
	res.RecentRequests = recent(&u.events, q, limit)
	return res, nil
}

// recent returns the newest limit events of evs in [q.From, q.To), newest
// first, the later recorded first among equal times.
func recent(evs *queue[rawEvent], q apitoken.Query, limit int) []apitoken.RecentRequest {
	from := rawEvent{sec: q.From.Unix(), nsec: int32(q.From.Nanosecond())}
	to := rawEvent{sec: q.To.Unix(), nsec: int32(q.To.Nanosecond())}
	// best holds indexes into evs, newest first. Walking from the latest
	// recorded, an equal time never displaces an event already chosen, which
	// gives the later recorded first; events recorded in time order are
	// rejected at the first comparison once best is full.
	best := make([]int, 0, min(limit, evs.len()))
	for i := evs.len() - 1; i >= 0; i-- {
		ev := evs.at(i)
		if from.newer(ev) || !to.newer(ev) {
			continue
		}
		if len(best) == limit && !ev.newer(evs.at(best[limit-1])) {
			continue
		}
		j := sort.Search(len(best), func(j int) bool { return ev.newer(evs.at(best[j])) })
		if len(best) < limit {
			best = append(best, 0)
		}
		copy(best[j+1:], best[j:len(best)-1])
		best[j] = i
	}
	out := make([]apitoken.RecentRequest, len(best))
	for n, i := range best {
		ev := evs.at(i)
		ip := ""
		if ev.ip.IsValid() {
			ip = ev.ip.String()
		}
		out[n] = apitoken.RecentRequest{
			Endpoint:       ev.endpoint,
			Method:         ev.method,
			StatusCode:     int(ev.status),
			ResponseTimeMS: storeutil.RoundMillis(float64(ev.rt) / float64(time.Millisecond)),
			IPAddress:      ip,
			UserAgent:      ev.ua,
			CreatedAt:      ev.time(),
		}
	}
	return out
}

// Overview reports every token's requests in q (see the package
// documentation for the exact rules).
func (s *Store) Overview(ctx context.Context, q apitoken.Query) (*apitoken.Overview, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit := storeutil.QueryLimit(q)
	lo, hi := bucketRange(q)
	s.mu.RLock()
	defer s.mu.RUnlock()
	res := &apitoken.Overview{
		TopTokens:         []apitoken.TopToken{},
		TopEndpoints:      []apitoken.EndpointUsage{},
		RateLimitedTokens: []apitoken.RateLimitedToken{},
	}
	var all counts
	eps := make(map[epKey]*counts)
	type tokenCounts struct {
		id        int64
		name      string
		rateLimit int
		c         counts
		limited   int64
	}
	var tops, limited []tokenCounts
	for id, e := range s.tokens {
		t := e.tok
		if t.Active && (t.ExpiresAt == nil || t.ExpiresAt.After(q.To)) {
			res.Overview.ActiveTokens++
		}
		if e.usage == nil {
			continue
		}
		tc := tokenCounts{id: id, name: t.Name, rateLimit: t.RateLimit}
		for h, b := range e.usage.hours {
			if h >= lo && h < hi {
				tc.c.merge(&b.all)
				tc.limited += b.limited
				addEndpoints(eps, b)
			}
		}
		if tc.c.n > 0 {
			all.merge(&tc.c)
			tops = append(tops, tc)
		}
		if tc.limited > 0 {
			limited = append(limited, tc)
		}
	}
	res.Overview.TotalRequests = all.n
	res.Overview.SuccessfulRequests = all.ok
	res.Overview.FailedRequests = all.n - all.ok
	res.Overview.AvgResponseTime = storeutil.AvgMillis(all.sum, all.n)
	slices.SortFunc(tops, func(a, b tokenCounts) int {
		if c := cmp.Compare(b.c.n, a.c.n); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	if len(tops) > limit {
		tops = tops[:limit]
	}
	for _, t := range tops {
		res.TopTokens = append(res.TopTokens, apitoken.TopToken{ID: t.id, Name: t.name, Requests: t.c.n,
			AvgResponseTime: storeutil.AvgMillis(t.c.sum, t.c.n), RateLimitedRequests: t.limited})
	}
	slices.SortFunc(limited, func(a, b tokenCounts) int {
		if c := cmp.Compare(b.limited, a.limited); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	if len(limited) > limit {
		limited = limited[:limit]
	}
	for _, t := range limited {
		res.RateLimitedTokens = append(res.RateLimitedTokens, apitoken.RateLimitedToken{TokenID: t.id, Name: t.name,
			RateLimit: t.rateLimit, RateLimitedRequests: t.limited, Requests: t.c.n})
	}
	res.TopEndpoints = endpointList(eps, limit)
	return res, nil
}

// TokenStats returns the 24 h, 7 d and all-time request counts of each id
// relative to now, hour-granular (see the package documentation). Every id
// is in the map.
func (s *Store) TokenStats(ctx context.Context, ids []int64, now time.Time) (map[int64]apitoken.TokenStats, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	end := hourOf(now)
	from24h := hourOf(now.Add(-24 * time.Hour))
	from7d := hourOf(now.Add(-7 * 24 * time.Hour))
	span := (end-from7d)/hourSecs + 1
	s.mu.RLock()
	defer s.mu.RUnlock()
	res := make(map[int64]apitoken.TokenStats, len(ids))
	for _, id := range ids {
		var st apitoken.TokenStats
		if e := s.tokens[id]; e != nil && e.usage != nil {
			u := e.usage
			st.TotalRequests = u.total
			count := func(h int64, b *hourBucket) {
				if h >= from7d && h <= end {
					st.Requests7d += b.all.n
					if h >= from24h {
						st.Requests24h += b.all.n
					}
				}
			}
			if int64(len(u.hours)) <= span {
				for h, b := range u.hours {
					count(h, b)
				}
			} else {
				for h := from7d; h <= end; h += hourSecs {
					if b := u.hours[h]; b != nil {
						count(h, b)
					}
				}
			}
		}
		res[id] = st
	}
	return res, nil
}

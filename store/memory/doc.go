// Package memory is a goroutine-safe, in-memory apitoken.Store and
// apitoken.UsageStore, for tests, demos and single-process services that do
// not need their tokens to outlive the process.
//
// # Tokens
//
// Ids start at 1, increase by one per created token and are never reused,
// even after a delete. Tokens are deep-copied (Token.Clone) on the way in and
// on the way out, so a caller changing the token it passed or got never
// changes the store. All times are stored and returned in UTC. ListTokens
// matches Search against the name after strings.ToLower on both sides (a
// plain substring: '%' and '_' are not wildcards), Status against
// Token.Status(opts.Now) and ExpiresBefore against ExpiresAt.Before.
//
// # Rotation and audit
//
// RotateToken keeps the replaced hash as a second key of the token until the
// next rotation or delete. Every successful CreateToken, UpdateToken,
// RotateToken and DeleteToken appends an apitoken.AuditEntry under the same
// lock as the change; ListAudit returns copies, newest first. The log keeps
// the latest DefaultMaxAudit entries (WithMaxAudit); ids keep increasing
// when old entries are dropped.
//
// # Usage
//
// RecordUsage copies the events it is given and keeps none of the caller's
// memory. An event whose token does not exist (for instance one recorded just
// before its token was deleted) is dropped silently and the rest of the batch
// is stored, as a PostgreSQL store must do too (the usage table's foreign key
// is ON DELETE CASCADE, and a batch must not fail for ever because of one late
// event). DeleteToken drops the token's usage.
//
// The store keeps three things per token:
//
//   - an all-time request counter (TokenStats.TotalRequests);
//   - hourly rollups per (UTC hour, endpoint, method): request count,
//     successful count and summed response time, the same rollups the
//     PostgreSQL store keeps, and per UTC hour the count of 429 responses;
//     HourlyUsage, EndpointUsage, Overview and TokenStats are computed from
//     them only;
//   - raw events, for RecentRequests only, in a compact per-token ring buffer
//     (time, status, response time, path, method, client IP, user agent;
//     the request and response sizes and the route are not kept because no
//     report reads them). At most WithMaxEvents events are kept over all
//     tokens; when a batch goes over the cap, the events recorded earliest
//     are dropped first, whichever token they belong to. The counters and
//     rollups are unaffected by this trimming.
//
// Strings of raw events (paths, methods, user agents) are interned with
// reference counts, so a million events from a handful of clients cost one
// copy of each user agent.
//
// # Analytics semantics
//
// These rules are shared with the PostgreSQL store; storetest checks them.
//
//   - An event's hour is Event.Time.Truncate(time.Hour) in UTC. Its endpoint
//     is Event.Route when that is non-empty, else Event.Endpoint. It is
//     successful when storeutil.Successful(Event.StatusCode).
//   - Hour-bucket reports (HourlyUsage, EndpointUsage, Overview totals,
//     TopTokens, TopEndpoints) include an hour bucket when its start lies in
//     [q.From.Truncate(time.Hour), q.To), that is when the hour overlaps
//     [q.From, q.To). They are hour-granular: a bucket that starts before
//     q.From counts whole.
//   - RecentRequests are raw events with q.From <= Time < q.To, newest first
//     (by Time, then latest recorded first), at most storeutil.QueryLimit(q). Their
//     Endpoint is Event.Endpoint (the actual path, not the route), IPAddress
//     is Event.IP.String() or "" for the zero netip.Addr, ResponseTimeMS is
//     storeutil.RoundMillis of the response time in milliseconds.
//   - HourlyUsage is oldest hour first; hours without requests are omitted.
//   - EndpointUsage and TopEndpoints are sorted by requests descending, then
//     endpoint ascending, then method ascending (byte order), and capped at
//     storeutil.QueryLimit(q).
//   - TopTokens are the tokens with requests in the range, by requests
//     descending then id ascending, capped at storeutil.QueryLimit(q); Name is the
//     token's current name.
//   - RateLimitedTokens are the tokens with at least one request in the
//     range whose status was 429 (storeutil.RateLimited), by those requests
//     descending then id ascending, capped at storeutil.QueryLimit(q); Name and
//     RateLimit are the token's current ones, Requests all its requests in
//     the range. TopTokens carry the same 429 count.
//   - Overview.ActiveTokens counts tokens with Active set that are not expired
//     at q.To: ExpiresAt == nil || ExpiresAt.After(q.To).
//   - Averages are storeutil.AvgMillis(summed response time, requests).
//   - TokenStats(ids, now) is hour-granular: Requests24h counts the hour
//     buckets whose start h satisfies (now-24h).Truncate(time.Hour) <= h <=
//     now, Requests7d likewise with now-7*24h; TotalRequests counts every
//     event ever recorded for the token (still present after trimming). So
//     the 24 h window covers 24 to 25 hours of events, and events in hours
//     after now count only in TotalRequests. Every requested id is in the
//     result, with zero counts when it has no usage or does not exist.
//   - Reports never return nil slices: no data gives empty slices.
package memory

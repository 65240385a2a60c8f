// Package bench measures apitoken side by side with the physical floor and
// with what a user would otherwise pick, in one run on one machine. It is
// not imported by the library.
//
// Contenders (see Contenders):
//
//   - bare: the handler alone;
//   - apitoken: the full path (cached token, endpoint check, MemoryLimiter,
//     headers, recording writer, one event queued to the Manager's usage pipeline, which writes
//     to the memory store);
//   - apitoken-redis: the same with the Redis limiter (adapters/redis);
//   - httprate: github.com/go-chi/httprate's LimitByIP, a popular
//     middleware that only rate-limits;
//   - naive: what the spec's reference implementation implies per request,
//     on the same PostgreSQL: SELECT the token row by its plaintext value,
//     UPDATE last_used_at, INSERT one usage row (Naive).
//
// go run ./bench/cmd/benchtable runs everything and prints one table; see
// bench/README.md.
package bench

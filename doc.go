// Package apitoken gives a net/http service named API tokens: created once
// with a plaintext that is shown only then, stored as a hash, verified on
// every request with per-token rate limits, endpoint restrictions, expiry and
// enable/disable, every request recorded asynchronously for analytics.
//
// # Quick start
//
//	store := memory.New()                       // or store/postgres
//	m, err := apitoken.NewManager(store)
//	if err != nil { ... }
//	defer m.Close(context.Background())         // flushes usage events
//
//	tok, plaintext, err := m.Create(ctx, apitoken.CreateParams{
//		Name:             "WordPress Plugin - Main Site",
//		AllowedEndpoints: []string{"/products*", "/stores/*/brands"},
//	})
//	// give plaintext to the client now: it cannot be retrieved later
//
//	mux := http.NewServeMux()
//	mux.Handle("/api/", apitoken.Middleware(m, apitoken.WithBasePath("/api"))(api))
//
// In a handler behind the middleware, FromContext returns the verified token.
//
// # The request
//
// Each step lives in one place, and the middleware only orchestrates them:
//
//   - the token is taken from Authorization: Bearer (or WithHeader,
//     WithQueryParam) by the middleware;
//   - its prefix and checksum are checked and it is hashed (token.go), so a
//     forged token never reaches the store;
//   - Manager.Verify looks the hash up in the verification cache (cache.go)
//     and on a miss in the Store, once for all concurrent misses, keeping a
//     token verified before while the store is down (WithStaleIfError);
//     active and expiry are judged there;
//   - the endpoint is matched against allowed_endpoints (internal/pathmatch);
//   - the Limiter decides, through its interface, and the middleware sets
//     the X-RateLimit-* headers from its Decision;
//   - the next handler runs behind a recording ResponseWriter;
//   - one Event, with the client IP resolved once (WithTrustedProxies), goes
//     to Manager.Record and from there to the usage pipeline (usage.go),
//     which writes batches to the UsageStore.
//
// Time that decides (cache TTLs, rate-limit windows, response times) runs on
// the monotonic reading of the Clock; its wall-clock time is only shown or
// stored.
//
// # Token format
//
// A token is <prefix>_<secret><checksum>, e.g.
// atk_3xK9aQ...(43 characters)...Zt08qM: the prefix (default "atk"), 43
// base62 characters of secret (256 bits from crypto/rand) and six base62
// characters of CRC32 over everything before them. A mistyped, truncated or
// forged token fails the checksum and is refused without a store lookup, and
// secret scanners can recognise leaked tokens (ScannerRegexp). Only the
// SHA-256 of the whole token (HMAC-SHA256 with WithPepper) is stored, with
// the first characters ("start") for display.
//
// # Endpoint patterns
//
// allowed_endpoints holds path patterns relative to the middleware's base
// path. A trailing * matches any rest of the path, across segments:
// "/products*" allows /products, /products/123 and /products/meta/brands.
// An inner * matches exactly one segment: "/stores/*/brands" allows
// /stores/1/brands but not /stores/1/2/brands. ** matches across segments
// anywhere, and ?, [abc] and {a,b} work as in github.com/gobwas/glob. A
// pattern may start with a method: "GET /products*" (GET also allows HEAD).
// An empty or nil list allows every endpoint. Paths are matched after
// decoding once and resolving ".", ".." and "//", so /products/..%2forders
// is /orders; the query string never takes part.
//
// # Rate limits
//
// RateLimit is requests per minute per token (0 = unlimited), enforced by a
// Limiter: MemoryLimiter in one process, adapters/redis across replicas. The
// limiter is an exact sliding window: no 60-second span ever holds more than
// the limit.
//
// # Usage and analytics
//
// The middleware records one Event per request of a known token with
// Manager.Record; the Manager's usage pipeline queues them (never blocking a
// request) and writes them in batches to the UsageStore, which answers
// TokenUsage, Overview and TokenStats in the spec's JSON shapes. WithSink
// sends the events elsewhere instead. Store implementations find the
// shared helpers in store/storeutil.
//
// # Rotation and audit
//
// Manager.Rotate gives a token a new secret and lets the old one work for a
// grace period. Stores that implement AuditStore (memory and PostgreSQL do)
// record every create, update, enable, disable, rotate and delete, with the
// actor named by WithActor and the changed fields, in the same transaction
// as the change; Manager.Audit lists them. NewHandler serves the spec's admin
// API plus POST /{id}/rotate, GET /audit and GET /{id}/audit.
package apitoken

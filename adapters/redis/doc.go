// Package apitokenredis is an apitoken.Limiter kept in Redis, for a service
// that runs several replicas: they share each token's rate limit, decided in
// one round trip on Redis's clock.
//
//	client := redis.NewUniversalClient(&redis.UniversalOptions{
//		Addrs:                 []string{"127.0.0.1:6379"}, // several: Cluster; MasterName: Sentinel
//		ContextTimeoutEnabled: true,
//	})
//	limiter := apitokenredis.New(client,
//		apitokenredis.WithReplicas(3), // fail open at limit÷3 per replica
//	)
//	mux.Handle("/api/", apitoken.Middleware(m, apitoken.WithLimiter(limiter))(api))
//	// expose limiter.Stats() with the service's metrics
//
// # Decisions
//
// The limiter makes apitoken.MemoryLimiter's decisions: an exact sliding
// window, at most limit allowed requests in any window (one minute by
// default) wherever it starts, refused requests not counted, and the
// Decision's Current, Remaining, Reset and RetryAfter as apitoken.Decision
// documents them. Each decision is an atomic Lua script over a sorted set of
// the allowed requests' times, read from Redis's own clock (TIME), so
// neither the replicas' clocks nor races between them change a count (a
// step back of Redis's clock can delay allowed requests, never add any).
// Keys are "apitoken:rl:{<key>}" (WithPrefix), the middleware's key being
// apitoken.Token.LimiterKey (the token's id and creation time, so two
// stores' tokens of one id do not share a count): the braces keep each key
// in one Cluster slot. They expire by themselves a window after their last
// allowed request.
//
// A refusal is kept in process until its Reset, so a token far over its
// limit is refused without a round trip; decisions made at the same time are
// sent to Redis together, in one pipeline.
//
// # When Redis fails
//
// A decision waits at most 50 ms (WithTimeout). When Redis errs or is
// slower, the limiter turns degraded, logs it once, and until a probe (at
// most every 250 ms, WithProbeInterval) finds Redis answering again, which
// it logs once too, decisions are made without waiting for Redis:
//
//   - FailOpen (the default): by an in-process apitoken.MemoryLimiter at
//     limit÷replicas (WithReplicas, at least 1 per window), so the replicas
//     together stay near the limit;
//   - FailClosed (WithFailClosed): an error wrapping
//     apitoken.ErrLimiterUnavailable, which apitoken.Middleware answers
//     with 503.
//
// Stats counts decisions, local refusals, failures, switches and fallback
// decisions.
//
// # Requirements
//
// Redis 5 or later (the script reads TIME before writing, which needs
// effect replication, the only mode since Redis 7), or a compatible server
// with Lua scripting. Any redis.UniversalClient of go-redis v9: a single
// server, Sentinel or Cluster.
package apitokenredis

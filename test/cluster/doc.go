// Package cluster is the load and fault harness of examples/server run as
// three replicas sharing PostgreSQL and Redis. Its test is behind the build
// tag cluster, so the README's test command does not run it; CI (.ci/run)
// does, from the repository root (test is its own module, in go.work):
//
//	go test -tags cluster -count=1 -v ./test/cluster/
//
// It needs APITOKEN_TEST_POSTGRES_DSN (a postgres:// URL) and redis-server
// on PATH. It builds examples/server once, starts its own redis-server on a
// free port (so stopping it disturbs no other test), a TCP proxy in front of
// PostgreSQL (so it can cut the replicas off), and three replicas A, B and C
// on free ports with REDIS_URL, REPLICAS=3, RATE_WINDOW=10s,
// REDIS_TIMEOUT=500ms ($CLUSTER_REDIS_TIMEOUT overrides it) and a fresh
// DATABASE_SCHEMA (dropped at the end). Tokens are created through A's admin
// API; a bounded load generator (a fixed number of workers, requests paced
// by the clock, ticks skipped and counted when every worker is busy) drives
// the replicas. The checks, each printing its figures:
//
//   - limit exactness: 100 per 10 s window, 50 requests/s round-robin over
//     A, B and C for 60 s: at most 100 allowed in any 10 s window and at
//     least 99 (the limit less 1.7%), at most 600 and at least 590 in the
//     whole 60 s;
//   - revocation: a token disabled through A is refused by B and C within
//     1 s (PostgreSQL LISTEN/NOTIFY);
//   - PostgreSQL cut off for 10 s under load: cached tokens keep working,
//     usage rows stop landing, and once PostgreSQL is back every answered
//     request has its row;
//   - Redis killed for 10 s under load (a saturating one and a light one)
//     and restarted empty on the same port: no request fails (fail-open),
//     each replica allows at most limit÷3 per window meanwhile, and within
//     1 s of Redis answering again the replicas share counts again (probed
//     with fresh tokens) and no window holds more than the limit;
//   - SIGTERM to C under load: a request in C's handler when the signal
//     comes is answered, C exits 0, and every request C answered has its
//     usage row when it has exited;
//   - after A and B are stopped with SIGTERM, every answered request of the
//     whole run has its usage row.
//
// Windows are counted conservatively from the client's side: a request
// counts in a window only if it was both sent and answered inside it, so a
// count above the limit is a real excess, whatever the latency.
//
// It ends with a line "N passed, M failed" and takes about two minutes.
// CLUSTER_CHECKS=redis,sigterm runs only the checks named (exact, revoke,
// pg, redis, sigterm, usage).
package cluster

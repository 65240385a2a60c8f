// Package postgres is a PostgreSQL apitoken.Store and apitoken.UsageStore
// built on sqlx and lib/pq, for services that run several replicas.
//
//	db := sqlx.MustOpen("postgres", dsn)
//	if err := postgres.Migrate(ctx, db, postgres.WithSchema("apitoken")); err != nil { ... }
//	store := postgres.New(db, postgres.WithSchema("apitoken"))
//	m, err := apitoken.NewManager(store) // usage goes to store through its batching pipeline
//	go postgres.Listen(ctx, dsn, m, postgres.WithSchema("apitoken"))
//
// # Schema
//
// Migrate applies the embedded, versioned migrations (migrations/*.sql) in
// one transaction under an advisory lock, so replicas may all call it on
// start. The tables are api_tokens, api_token_usage (one row per request),
// api_token_usage_hourly (rollups per token, UTC hour, endpoint and method)
// and apitoken_schema_migrations. README.md lists the columns and why they
// differ from the spec's schema. Tokens are stored by their SHA-256 or HMAC
// digest (token_hash), never in plaintext. WithSchema puts everything in a
// schema of its own; pass the same option to Migrate, New and Listen.
//
// # Errors
//
// Every method returns ctx's error when ctx ends (before or during the
// statement), an error matching apitoken.ErrNotFound for a missing token,
// apitoken.ErrDuplicate for a token hash already stored, and otherwise the
// driver's error wrapped as "apitoken: postgres: <operation>: ...". These
// errors can name tables and carry the server's message: log them, but do
// not show them to HTTP clients (the root package never does). No method
// panics on database failures.
//
// # Usage and analytics
//
// RecordUsage writes a batch in one transaction: COPY of the raw rows, one
// upsert of the hourly rollups, one last_used_at update. Events of tokens
// deleted meanwhile are dropped, as the foreign key's ON DELETE CASCADE
// would have removed them. Every report except RecentRequests is computed
// from the rollups, with the rules the store/memory package documents
// (ranges [From, To) of hour buckets, endpoint = route or else path, byte
// order for ties, averages by storeutil.AvgMillis); RecentRequests reads the
// raw rows. Prune deletes old raw rows in chunks and keeps the rollups.
//
// A batch whose COMMIT gets no answer (the connection died after the server
// committed, or before the COMMIT reached it) is resolved with the server's
// record of the transaction (pg_xact_status), at once or, when the server is
// unreachable, when the same batch is retried: a retry never writes a batch
// twice, and a transaction orphaned on a lost connection is terminated
// rather than left holding its rollup rows' locks.
//
// # Revocation across replicas
//
// A trigger on api_tokens sends NOTIFY with the token id on ChannelName(schema)
// whenever a token is updated (except a last_used_at-only update) or deleted,
// in the transaction of the change, whoever makes it. Listen receives these on
// a connection of its own and drops the token from a Manager's cache, so a
// disabled or deleted token is refused by every replica within milliseconds
// instead of after the cache TTL. Listen needs a session-level connection: do
// not point its DSN at a transaction-pooling PgBouncer.
package postgres

// Command server is a demo API protected by apitoken.
//
//	go run ./examples/server
//
// It listens on $ADDR (default 127.0.0.1:8080), serves a small product
// catalogue under /api behind the middleware, creates two demo tokens at
// start (one for every endpoint, one restricted to /products* with a limit
// of 5 requests per minute) and prints them with curl lines to try. The
// admin API is mounted at /api/api-tokens, authorized by $ADMIN_TOKEN (a
// secret is generated and printed once when it is unset), and the admin
// dashboard (package dashboard) at /api/api-tokens/ui/.
//
// Tokens and usage live in memory unless $DATABASE_URL names a PostgreSQL
// database (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable):
// then the server applies the migrations at start, keeps everything there,
// and listens for changes made by other replicas. $DATABASE_SCHEMA puts the
// tables in a schema of their own (default: the first schema of the
// connection's search_path).
//
// Rate limits are counted in this process unless $REDIS_URL names a Redis
// server (e.g. redis://127.0.0.1:6379/0, parsed by go-redis's ParseURL):
// then every copy of the server pointed at the same Redis shares them, so
// several replicas behind a load balancer form one cluster. $REPLICAS
// (default 1) is how many copies run: while Redis cannot be reached each
// copy goes on alone, allowing limit÷$REPLICAS requests per window, so the
// cluster as a whole stays within the limit. $RATE_WINDOW (default 1m, a Go
// duration) is the window the limits apply to; shorter windows are for
// tests. $REDIS_PREFIX sets the prefix of the Redis keys, so that clusters
// sharing one Redis do not share counts (default: the adapter's), and
// $REDIS_TIMEOUT how long a decision may wait for Redis before the replica
// decides alone (default 50ms). The server prints which limiter it uses at
// start.
//
// Several replicas:
//
//	DATABASE_URL=postgres://… REDIS_URL=redis://127.0.0.1:6379/0 REPLICAS=3 \
//		ADMIN_TOKEN=… ADDR=127.0.0.1:8081 go run ./examples/server
//	(and the same with ADDR=127.0.0.1:8082 and :8083)
//
// On SIGINT or SIGTERM it stops accepting connections, finishes the requests
// in flight, writes every queued usage event, and exits.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"
	"github.com/redis/go-redis/v9"

	"github.com/apitoken/apitoken"
	apitokenredis "github.com/apitoken/apitoken/adapters/redis"
	"github.com/apitoken/apitoken/dashboard"
	"github.com/apitoken/apitoken/examples/internal/demo"
	"github.com/apitoken/apitoken/store/memory"
	"github.com/apitoken/apitoken/store/postgres"
)

func main() {
	if err := run(context.Background(), os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

// run starts the server and blocks until SIGINT/SIGTERM or ctx ends.
func run(ctx context.Context, getenv func(string) string, out io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	addr := getenv("ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	var pgOpts []postgres.Option
	if schema := getenv("DATABASE_SCHEMA"); schema != "" {
		pgOpts = append(pgOpts, postgres.WithSchema(schema))
	}
	store, closeStore, err := openStore(ctx, getenv("DATABASE_URL"), pgOpts, logger)
	if err != nil {
		return err
	}
	defer closeStore()
	limiter, limiterInfo, closeLimiter, err := newLimiter(ctx, getenv, logger)
	if err != nil {
		return err
	}
	defer closeLimiter()
	m, err := apitoken.NewManager(store, apitoken.WithLogger(logger))
	if err != nil {
		return err
	}
	if dsn := getenv("DATABASE_URL"); dsn != "" {
		// Disables and deletes made by other replicas reach this one's
		// verification cache at once.
		go func() {
			opts := append([]postgres.Option{postgres.WithLogger(logger)}, pgOpts...)
			if err := postgres.Listen(ctx, dsn, m, opts...); err != nil {
				logger.Error("listening for token changes failed", "error", err)
			}
		}()
	}

	closed := false
	defer func() { // error paths: still write what was queued
		if !closed {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			_ = m.Close(ctx)
		}
	}()

	// The admin API is authorized by $ADMIN_TOKEN; without one a secret is
	// generated and printed once.
	adminSecret, generated, err := demo.AdminSecret(getenv)
	if err != nil {
		return err
	}
	admin, err := apitoken.NewHandler(m, apitoken.StaticSecret(adminSecret), apitoken.WithMountPath("/api/api-tokens"))
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           newHandler(m, admin, limiter),
		ReadHeaderTimeout: 10 * time.Second,
	}
	fmt.Fprintln(out, limiterInfo)
	if err := printWelcome(ctx, m, out, "http://"+ln.Addr().String(), adminSecret, generated); err != nil {
		return err
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}

	// Graceful shutdown: stop accepting, finish in-flight requests, then
	// write every queued usage event and last_used_at value.
	// The Manager is closed even when Shutdown times out, with its own
	// time: requests that did finish must not lose their usage rows.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	shutdownErr := srv.Shutdown(shutdownCtx)
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancelClose()
	closed = true
	closeErr := m.Close(closeCtx)
	if shutdownErr != nil {
		return shutdownErr
	}
	if closeErr != nil {
		return closeErr
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// openStore returns the memory store, or the PostgreSQL store at dsn with
// its migrations applied.
func openStore(ctx context.Context, dsn string, opts []postgres.Option, logger *slog.Logger) (apitoken.Store, func(), error) {
	if dsn == "" {
		return memory.New(), func() {}, nil
	}
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		return nil, nil, err
	}
	mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := postgres.Migrate(mctx, db, opts...); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("migrating %s: %w", "the database", err)
	}
	logger.Info("using PostgreSQL", "schema_version", postgres.SchemaVersion)
	return postgres.New(db, opts...), func() { db.Close() }, nil
}

// newLimiter returns the rate limiter, a line saying which one it is, and a
// function that releases it: Redis at $REDIS_URL, shared by $REPLICAS copies
// of the server, or else an in-process limiter. Both count per $RATE_WINDOW.
func newLimiter(ctx context.Context, getenv func(string) string, logger *slog.Logger) (apitoken.Limiter, string, func(), error) {
	window := time.Minute // the spec's
	if v := getenv("RATE_WINDOW"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, "", nil, fmt.Errorf("RATE_WINDOW %q is not a positive duration such as 1m or 10s", v)
		}
		window = d
	}
	url := getenv("REDIS_URL")
	if url == "" {
		info := fmt.Sprintf("rate limits: in memory, counted by this process only (window %s)", window)
		return apitoken.NewMemoryLimiter(window, nil), info, func() {}, nil
	}
	replicas := 1
	if v := getenv("REPLICAS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, "", nil, fmt.Errorf("REPLICAS %q is not a positive integer", v)
		}
		replicas = n
	}
	timeout := apitokenredis.DefaultTimeout
	if v := getenv("REDIS_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, "", nil, fmt.Errorf("REDIS_TIMEOUT %q is not a positive duration such as 50ms", v)
		}
		timeout = d
	}
	prefix := getenv("REDIS_PREFIX")
	if strings.Contains(prefix, "{") {
		return nil, "", nil, fmt.Errorf("REDIS_PREFIX %q must not contain '{'", prefix)
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		// Not the parser's message: it may quote the URL, password included.
		return nil, "", nil, errors.New("REDIS_URL is not a redis://, rediss:// or unix:// URL go-redis can parse")
	}
	if opt.PoolSize == 0 { // not set with ?pool_size= in the URL
		// After PoolSize failed dials go-redis stops dialling and tries
		// again once a second, so Redis would decide again up to a second
		// after it is back. While Redis is lost the limiter's probes fail
		// about three dials a second: with 100 (the default is 10 per
		// CPU) that happens only after outages of over half a minute.
		opt.PoolSize = 100
	}
	// The limiter's timeout then also frees the connection, and a lone
	// decision needs no hand-off to a batching goroutine (see
	// adapters/redis).
	opt.ContextTimeoutEnabled = true
	client := redis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	if err := client.Ping(pctx).Err(); err != nil {
		// Not fatal: the limiter falls back to counting alone until Redis
		// answers.
		logger.Warn("Redis does not answer yet", "addr", opt.Addr, "error", err.Error())
	}
	cancel()
	opts := []apitokenredis.Option{
		apitokenredis.WithReplicas(replicas),
		apitokenredis.WithWindow(window),
		apitokenredis.WithLogger(logger),
		apitokenredis.WithTimeout(timeout),
	}
	if prefix != "" {
		opts = append(opts, apitokenredis.WithPrefix(prefix))
	}
	info := fmt.Sprintf("rate limits: Redis at %s (db %d), shared by %d replica(s); when Redis fails or takes over %s each allows limit/%d (window %s)",
		opt.Addr, opt.DB, replicas, timeout, replicas, window)
	return apitokenredis.New(client, opts...), info, func() { _ = client.Close() }, nil
}

// newHandler is the demo API behind the middleware, with the spec's routes.
func newHandler(m *apitoken.Manager, admin http.Handler, limiter apitoken.Limiter) http.Handler {
	api := http.NewServeMux()
	api.HandleFunc("GET /api/products", list("products", "Espresso machine", "Grinder", "Kettle"))
	api.HandleFunc("GET /api/products/{id}", item("product"))
	api.HandleFunc("GET /api/products/meta/brands", list("brands", "Acme", "Globex"))
	api.HandleFunc("GET /api/stores", list("stores", "Berlin", "Lisbon"))
	api.HandleFunc("GET /api/stores/{id}/brands", list("brands", "Acme"))
	api.HandleFunc("GET /api/categories", list("categories", "Coffee", "Tea"))
	api.HandleFunc("GET /api/orders", list("orders", "#1001", "#1002"))
	api.HandleFunc("GET /api/whoami", func(w http.ResponseWriter, r *http.Request) {
		tok, _ := apitoken.FromContext(r.Context())
		demo.WriteJSON(w, demo.Whoami(tok))
	})

	mux := http.NewServeMux()
	mux.Handle("/api/", apitoken.Middleware(m, apitoken.WithBasePath("/api"), apitoken.WithLimiter(limiter))(api))
	// The admin API (the spec's /api/api-tokens endpoints), authorized by
	// the admin secret, never by an API token.
	mux.Handle("/api/api-tokens", admin)
	mux.Handle("/api/api-tokens/", admin)
	// The admin dashboard: a page that talks to the admin API above.
	mux.Handle("/api/api-tokens/ui/", dashboard.MustNew(dashboard.WithMountPath("/api/api-tokens/ui")))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	return mux
}

func list(kind string, names ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { demo.WriteJSON(w, demo.List(kind, names...)) }
}

func item(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { demo.WriteJSON(w, demo.Item(kind, r.PathValue("id"))) }
}

// printWelcome creates the demo tokens and prints how to use them.
func printWelcome(ctx context.Context, m *apitoken.Manager, out io.Writer, base, adminSecret string, generated bool) error {
	_, all, err := m.Create(ctx, apitoken.CreateParams{
		Name:        "Demo - all endpoints",
		Description: "created by examples/server at start",
	})
	if err != nil {
		return err
	}
	five := 5
	_, limited, err := m.Create(ctx, apitoken.CreateParams{
		Name:             "Demo - products only",
		Description:      "allowed /products*, 5 requests per minute",
		RateLimit:        &five,
		AllowedEndpoints: []string{"/products*"},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, `apitoken demo listening on %[1]s

Two tokens were created (shown once):
  all endpoints:           %[2]s
  /products* at 5/minute:  %[3]s

Try:
  curl -i %[1]s/api/products -H "Authorization: Bearer %[2]s"
  curl -i %[1]s/api/stores/1/brands -H "Authorization: Bearer %[2]s"
  curl -i %[1]s/api/orders -H "Authorization: Bearer %[3]s"      # 403: endpoint not allowed
  for i in 1 2 3 4 5 6; do curl -s %[1]s/api/products -H "Authorization: Bearer %[3]s"; done   # the 6th is 429
  curl -i %[1]s/api/products                                     # 401: no token

Admin dashboard: %[1]s/api/api-tokens/ui/ (sign in with the admin secret)

Admin API (the spec's endpoints) at %[1]s/api/api-tokens, authorized by the admin secret%[5]s:
  curl -X POST %[1]s/api/api-tokens -H "Authorization: Bearer %[4]s" -H "Content-Type: application/json" \
    -d '{"name":"WordPress Plugin - Main Site","rate_limit":200,"allowed_endpoints":["/products*","/stores*","/categories*"]}'
  curl %[1]s/api/api-tokens -H "Authorization: Bearer %[4]s"
  curl %[1]s/api/api-tokens/1/usage?days=7 -H "Authorization: Bearer %[4]s"
  curl %[1]s/api/api-tokens/stats/overview?days=7 -H "Authorization: Bearer %[4]s"
`, base, all, limited, adminSecret, demo.SecretNote(generated))
	return nil
}

package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/httprate"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/apitoken/apitoken"
	apitokenredis "github.com/apitoken/apitoken/adapters/redis"
	"github.com/apitoken/apitoken/store/memory"
)

// Path is the request path every contender serves.
const Path = "/api/products/123"

// Bare is the handler every contender wraps: a small JSON answer.
var Bare = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header()["Content-Type"] = []string{"application/json"}
	_, _ = io.WriteString(w, `{"products":[]}`)
})

// Contender is one way of serving Path.
type Contender struct {
	Name    string
	Handler http.Handler
	// Authorization is the header value its requests carry ("" for none).
	Authorization string
	// Close releases what the contender holds (flushes queued usage).
	Close func()
}

// Config says which contenders can run.
type Config struct {
	// PostgresDSN enables "naive" (in schema NaiveSchema); "" skips it.
	PostgresDSN string
	// RedisAddr enables "apitoken-redis"; "" skips it.
	RedisAddr string
	// ShortWindow gives apitoken's in-process limiter a window of
	// ShortWindow instead of a minute, so that a long in-process run at
	// millions of requests a second never reaches the token's limit and
	// the limiter's log stays small. The limiter still runs on the real
	// clock (the middleware's own reading), as in production; its cost per
	// decision does not depend on the window's length. Loopback runs keep
	// the minute.
	ShortWindow bool
}

// ShortWindow is the in-process limiter's window with Config.ShortWindow.
const ShortWindow = 10 * time.Millisecond

// NaiveSchema is the schema of the naive baseline's tables.
const NaiveSchema = "apitoken_bench_naive"

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Contenders returns the contenders cfg allows, in a fixed order: bare,
// apitoken, apitoken-redis, httprate, naive.
func Contenders(ctx context.Context, cfg Config) ([]*Contender, error) {
	var out []*Contender
	closeAll := func() {
		for _, c := range out {
			c.Close()
		}
	}
	out = append(out, &Contender{Name: "bare", Handler: Bare, Close: func() {}})

	window := time.Minute // the spec's
	if cfg.ShortWindow {
		window = ShortWindow
	}
	c, err := apitokenContender(ctx, "apitoken", apitoken.NewMemoryLimiter(window, nil))
	if err != nil {
		closeAll()
		return nil, err
	}
	out = append(out, c)

	if cfg.RedisAddr != "" {
		client := redis.NewClient(&redis.Options{Addr: cfg.RedisAddr, PoolSize: 128, ContextTimeoutEnabled: true})
		if err := client.Ping(ctx).Err(); err != nil {
			closeAll()
			return nil, fmt.Errorf("redis at %s: %w", cfg.RedisAddr, err)
		}
		// A one-second window keeps the sorted sets small at benchmark
		// rates; the cost per decision does not depend on the window.
		l := apitokenredis.New(client, apitokenredis.WithPrefix(fmt.Sprintf("apitoken:bench:%d:", time.Now().UnixNano())),
			apitokenredis.WithWindow(time.Second), apitokenredis.WithLogger(quietLogger()))
		c, err := apitokenContender(ctx, "apitoken-redis", l)
		if err != nil {
			closeAll()
			return nil, err
		}
		inner := c.Close
		c.Close = func() { inner(); _ = client.Close() }
		out = append(out, c)
	}

	//lint:ignore SA1019 LimitByIP is what users pick; its deprecation is about the key behind a proxy, not its cost
	out = append(out, &Contender{Name: "httprate", Handler: httprate.LimitByIP(1<<30, time.Minute)(Bare), Close: func() {}})

	if cfg.PostgresDSN != "" {
		db, err := sqlx.Open("postgres", cfg.PostgresDSN)
		if err != nil {
			closeAll()
			return nil, err
		}
		db.SetMaxOpenConns(64)
		db.SetMaxIdleConns(64)
		n, err := NewNaive(ctx, db, NaiveSchema)
		if err != nil {
			_ = db.Close()
			closeAll()
			return nil, err
		}
		token, err := n.CreateToken(ctx, "bench")
		if err != nil {
			_ = db.Close()
			closeAll()
			return nil, err
		}
		out = append(out, &Contender{Name: "naive", Handler: n.Middleware(Bare), Authorization: "Bearer " + token,
			Close: func() { _ = db.Close() }})
	}
	return out, nil
}

// apitokenContender is the full path over a memory store with limiter l.
func apitokenContender(ctx context.Context, name string, l apitoken.Limiter) (*Contender, error) {
	store := memory.New(memory.WithMaxEvents(100_000))
	m, err := apitoken.NewManager(store, apitoken.WithLogger(quietLogger()))
	if err != nil {
		return nil, err
	}
	_, plain, err := m.Create(ctx, apitoken.CreateParams{
		Name: "bench", RateLimit: ptrTo(apitoken.MaxRateLimit), AllowedEndpoints: []string{"/products*", "/stores/*/brands"},
	})
	if err != nil {
		_ = m.Close(ctx)
		return nil, err
	}
	h := apitoken.Middleware(m, apitoken.WithBasePath("/api"), apitoken.WithLimiter(l))(Bare)
	return &Contender{Name: name, Handler: h, Authorization: "Bearer " + plain, Close: func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Close(closeCtx); err != nil {
			slog.Warn("bench: closing the manager", "error", err)
		}
	}}, nil
}

func ptrTo[T any](v T) *T { return &v }

package apitokenredis_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apitoken/apitoken"
	apitokenredis "github.com/apitoken/apitoken/adapters/redis"
	"github.com/apitoken/apitoken/store/memory"
)

// A service with three replicas shares each token's limit through Redis.
func Example() {
	client := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 []string{"127.0.0.1:6379"},
		ContextTimeoutEnabled: true, // the limiter's 50 ms timeout also frees the connection
	})
	defer client.Close()
	limiter := apitokenredis.New(client,
		apitokenredis.WithReplicas(3), // if Redis fails: limit÷3 in each replica
		apitokenredis.WithTimeout(50*time.Millisecond),
	)

	m, err := apitoken.NewManager(memory.New())
	if err != nil {
		panic(err)
	}
	defer m.Close(context.Background())
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux := http.NewServeMux()
	mux.Handle("/api/", apitoken.Middleware(m, apitoken.WithBasePath("/api"), apitoken.WithLimiter(limiter))(api))
	_ = mux // http.ListenAndServe(":8080", mux)
}

// While Redis cannot be reached, the default policy decides in process at
// limit÷replicas; Stats tells.
func Example_failOpen() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // nothing listens there
	defer client.Close()
	limiter := apitokenredis.New(client,
		apitokenredis.WithReplicas(4),
		apitokenredis.WithLogger(slog.New(slog.DiscardHandler)),
	)
	for range 3 {
		d, err := limiter.Allow(context.Background(), "42", 8)
		fmt.Println(d.Allowed, d.Limit, d.Remaining, err)
	}
	st := limiter.Stats()
	fmt.Println("degraded:", st.Degraded, "fallback decisions:", st.FallbackDecisions)
	// Output:
	// true 2 1 <nil>
	// true 2 0 <nil>
	// false 2 0 <nil>
	// degraded: true fallback decisions: 3
}

// With FailClosed, requests get 503 while Redis cannot be reached.
func ExampleWithFailClosed() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // nothing listens there
	defer client.Close()
	limiter := apitokenredis.New(client,
		apitokenredis.WithFailClosed(),
		apitokenredis.WithLogger(slog.New(slog.DiscardHandler)),
	)
	_, err := limiter.Allow(context.Background(), "42", 8)
	fmt.Println(errors.Is(err, apitoken.ErrLimiterUnavailable))
	// Output:
	// true
}

package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"
)

// wrkOutput is what wrk 4.1 printed here for a server answering 404.
const wrkOutput = `Running 1s test @ http://127.0.0.1:18081/x
  2 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   277.43us  632.42us   8.63ms   91.84%
    Req/Sec    22.55k     5.20k   39.45k    80.95%
  Latency Distribution
     50%   56.00us
     75%  148.00us
     90%  756.00us
     99%    3.33ms
  47207 requests in 1.10s, 5.63MB read
  Non-2xx or 3xx responses: 47207
Requests/sec:  42918.54
Transfer/sec:      5.12MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkOutput)
	if err != nil {
		t.Fatal(err)
	}
	want := LoadResult{Requests: 47207, Errors: 47207, PerSecond: 42918.54, P50: 56 * time.Microsecond, P99: 3330 * time.Microsecond, Tool: "wrk", Report: wrkOutput}
	if r != want {
		t.Errorf("parseWrk:\n\tgot  %+v\n\twant %+v", r, want)
	}
	if _, err := parseWrk("Requests/sec: 10\n"); err == nil {
		t.Error("output without a latency distribution accepted")
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused"); err == nil {
		t.Error("wrk's connection error accepted")
	}
}

// services returns the DSN and Redis address; unset, the parts that need
// them are skipped, unless CI is set.
func services(t *testing.T) (dsn, redisAddr string) {
	dsn, redisAddr = os.Getenv("APITOKEN_TEST_POSTGRES_DSN"), os.Getenv("APITOKEN_TEST_REDIS_ADDR")
	if os.Getenv("CI") != "" && (dsn == "" || redisAddr == "") {
		t.Fatal("CI is set but APITOKEN_TEST_POSTGRES_DSN or APITOKEN_TEST_REDIS_ADDR is not")
	}
	if dsn == "" {
		t.Log("APITOKEN_TEST_POSTGRES_DSN unset: no naive contender")
	}
	if redisAddr == "" {
		t.Log("APITOKEN_TEST_REDIS_ADDR unset: no apitoken-redis contender")
	}
	return dsn, redisAddr
}

// Every contender answers the benchmark's request with 200, and refuses a
// request without its token (except those that take none).
func TestContendersAnswer(t *testing.T) {
	dsn, redisAddr := services(t)
	cs, err := Contenders(context.Background(), Config{PostgresDSN: dsn, RedisAddr: redisAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	want := 3
	if dsn != "" {
		want++
	}
	if redisAddr != "" {
		want++
	}
	if len(cs) != want {
		t.Fatalf("%d contenders, want %d", len(cs), want)
	}
	for _, c := range cs {
		r := httptest.NewRequest("GET", Path, nil)
		r.Header.Set("Authorization", c.Authorization)
		w := httptest.NewRecorder()
		c.Handler.ServeHTTP(w, r)
		if w.Code != http.StatusOK || w.Body.String() != `{"products":[]}` {
			t.Errorf("%s: %d %s", c.Name, w.Code, w.Body)
		}
		if c.Authorization == "" {
			continue
		}
		r = httptest.NewRequest("GET", Path, nil)
		w = httptest.NewRecorder()
		c.Handler.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d", c.Name, w.Code)
		}
	}
}

// The naive baseline costs three statements per request, and apitoken on
// PostgreSQL a handful per batch: what MeasureDBCost reports.
func TestMeasureDBCost(t *testing.T) {
	dsn, _ := services(t)
	if dsn == "" {
		t.Skip("APITOKEN_TEST_POSTGRES_DSN unset")
	}
	a, n, err := MeasureDBCost(context.Background(), dsn, 50)
	if err != nil {
		t.Fatal(err)
	}
	if n.Statements != 150 || n.Rows != 100 {
		t.Errorf("naive: %d statements, %d rows for 50 requests; want 150 and 100", n.Statements, n.Rows)
	}
	// One lookup, one usage batch (begin, lock, COPY, rollups, last_used,
	// commit) and one last_used flush; rows: 50 usage rows and a few
	// rollup and token rows.
	if a.Statements < 3 || a.Statements > 15 || a.Rows < 50 || a.Rows > 60 {
		t.Errorf("apitoken: %d statements, %d rows for 50 requests", a.Statements, a.Rows)
	}
}

func TestLoadGo(t *testing.T) {
	url, stop, err := Serve(Bare)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	r, err := loadGo(context.Background(), url, "", 4, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.Errors != 0 || r.P50 <= 0 || r.P99 < r.P50 || r.PerSecond <= 0 {
		t.Errorf("loadGo: %+v", r)
	}
}

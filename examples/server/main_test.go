package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/lib/pq"
)

// startServer runs the example on a free port and returns its base URL, the
// two printed tokens, and a stop function that waits for run to return.
func startServer(t *testing.T, env map[string]string) (base, all, limited string, stop func() error) {
	base, all, limited, _, stop = startServerInfo(t, env)
	return base, all, limited, stop
}

// startServerInfo is startServer that also returns the "rate limits:" line.
func startServerInfo(t *testing.T, env map[string]string) (base, all, limited, limiter string, stop func() error) {
	t.Helper()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	getenv := func(k string) string {
		if k == "ADDR" {
			return "127.0.0.1:0"
		}
		return env[k]
	}
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, getenv, pw)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	tokRe := regexp.MustCompile(`(atk_[0-9A-Za-z]{49})`)
	deadline := time.After(30 * time.Second)
	lines := make(chan string)
	go func() {
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for base == "" || all == "" || limited == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				cancel()
				t.Fatalf("server exited: %v", <-errc)
			}
			switch {
			case strings.HasPrefix(l, "rate limits:"):
				limiter = l
			case strings.HasPrefix(l, "apitoken demo listening on "):
				base = strings.TrimPrefix(l, "apitoken demo listening on ")
			case strings.Contains(l, "all endpoints:"):
				all = tokRe.FindString(l)
			case strings.Contains(l, "/products* at 5/minute:"):
				limited = tokRe.FindString(l)
			}
		case <-deadline:
			cancel()
			t.Fatal("server did not print its tokens in time")
		}
	}
	go func() {
		for range lines { // drain the rest
		}
	}()
	return base, all, limited, limiter, func() error {
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("server did not stop")
			return nil
		}
	}
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func exercise(t *testing.T, base, all, limited string) {
	t.Helper()
	checks := []struct {
		name, path, token string
		status            int
		body              string
	}{
		{"products", "/api/products", all, 200, ""},
		{"store brands", "/api/stores/1/brands", all, 200, ""},
		{"no token", "/api/products", "", 401, `{"error":"Invalid API token"}`},
		{"restricted", "/api/orders", limited, 403, `{"error":"Endpoint not allowed"}`},
	}
	for _, c := range checks {
		status, body := get(t, base+c.path, c.token)
		if status != c.status || (c.body != "" && body != c.body) {
			t.Errorf("%s: %d %s, want %d %s", c.name, status, body, c.status, c.body)
		}
	}
	for i := 1; i <= 6; i++ {
		status, body := get(t, base+"/api/products", limited)
		want := 200
		if i == 6 {
			want = 429
		}
		if status != want {
			t.Fatalf("limited request %d: %d %s", i, status, body)
		}
		if i == 6 && !strings.HasPrefix(body, `{"error":"Rate limit exceeded","limit":5,"current":6,"retry_after":`) {
			t.Fatalf("429 body %s", body)
		}
	}
}

func TestServerInMemory(t *testing.T) {
	base, all, limited, limiter, stop := startServerInfo(t, map[string]string{"ADMIN_TOKEN": "s3cret"})
	if want := "rate limits: in memory, counted by this process only (window 1m0s)"; limiter != want {
		t.Errorf("limiter line %q, want %q", limiter, want)
	}
	exercise(t, base, all, limited)
	// The admin API: the spec's create call, then the new token works.
	req, _ := http.NewRequest("POST", base+"/api/api-tokens", strings.NewReader(
		`{"name":"WordPress Plugin - Main Site","rate_limit":200,"expires_at":"2099-12-31","allowed_endpoints":["/products*","/stores*","/categories*"]}`))
	req.Header.Set("Authorization", "Bearer s3cret")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		Token struct {
			Token string `json:"token"`
		} `json:"token"`
		Message string `json:"message"`
	}
	err = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 201 || created.Message != "API token created successfully. Save this token securely - it cannot be retrieved later." {
		t.Fatalf("create: %d %+v %v", resp.StatusCode, created, err)
	}
	if status, body := get(t, base+"/api/products", created.Token.Token); status != 200 {
		t.Fatalf("created token: %d %s", status, body)
	}
	if status, _ := get(t, base+"/api/api-tokens", all); status != 401 {
		t.Fatalf("an API token used the admin API: %d", status)
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// TestServerPostgres runs the example on PostgreSQL and checks the graceful
// shutdown wrote every request's usage row.
func TestServerPostgres(t *testing.T) {
	dsn := os.Getenv("APITOKEN_TEST_POSTGRES_DSN")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("APITOKEN_TEST_POSTGRES_DSN is not set (required when CI is set)")
		}
		t.Skip("APITOKEN_TEST_POSTGRES_DSN is not set: skipping the PostgreSQL example test")
	}
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	base, all, limited, stop := startServer(t, map[string]string{"DATABASE_URL": dsn})
	exercise(t, base, all, limited)
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	// 2 + 1 (403) + 6 (5 allowed, one 429) requests of known tokens; the
	// 401 without a token is not recorded.
	var n int
	err = db.QueryRow(`SELECT count(*) FROM api_token_usage u JOIN api_tokens t ON t.id = u.token_id
		WHERE t.start = $1 OR t.start = $2`, all[:10], limited[:10]).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	if n != 9 {
		t.Fatalf("%d usage rows after shutdown, want 9", n)
	}
}

// TestServerSIGTERM sends the process SIGTERM while requests are being made
// and one admin request is in its handler, and checks that the in-flight
// request is answered, run returns nil, and every answered API request has
// its usage row.
func TestServerSIGTERM(t *testing.T) {
	dsn := os.Getenv("APITOKEN_TEST_POSTGRES_DSN")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("APITOKEN_TEST_POSTGRES_DSN is not set (required when CI is set)")
		}
		t.Skip("APITOKEN_TEST_POSTGRES_DSN is not set: skipping the graceful shutdown test")
	}
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	schema := fmt.Sprintf("server_sigterm_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
	t.Cleanup(func() {
		if _, err := db.Exec(`DROP SCHEMA IF EXISTS "` + schema + `" CASCADE`); err != nil {
			t.Logf("dropping schema %s: %v", schema, err)
		}
		db.Close()
	})
	base, all, _, stop := startServer(t, map[string]string{
		"DATABASE_URL": dsn, "DATABASE_SCHEMA": schema, "ADMIN_TOKEN": "s3cret",
	})
	host := strings.TrimPrefix(base, "http://")

	// An admin request whose handler is running when the signal comes: the
	// server has read its headers and asked for the body (100 Continue).
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	body := `{"name":"created while shutting down"}`
	fmt.Fprintf(conn, "POST /api/api-tokens HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer s3cret\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", host, len(body))
	br := bufio.NewReader(conn)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("waiting for 100 Continue: %q %v", line, err)
	}
	for { // the blank line ending the interim response
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}

	// Load from four clients until the server stops answering.
	var (
		mu       sync.Mutex
		answered int
		wg       sync.WaitGroup
	)
	started := make(chan struct{}, 4)
	client := &http.Client{Timeout: 10 * time.Second}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			ready := func() { once.Do(func() { started <- struct{}{} }) }
			defer ready()
			for i := 0; ; i++ {
				req, _ := http.NewRequest("GET", base+"/api/products", nil)
				req.Header.Set("Authorization", "Bearer "+all)
				resp, err := client.Do(req)
				if err != nil {
					return // the server has stopped accepting
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				answered++
				mu.Unlock()
				if i == 4 {
					ready()
				}
			}
		}()
	}
	for range 4 {
		<-started
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Once the listener is closed, finish the in-flight request.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", host, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still accepts connections 10 s after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := io.WriteString(conn, body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the in-flight request got no answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("in-flight request: %d, want 201", resp.StatusCode)
	}
	wg.Wait()
	if err := stop(); err != nil {
		t.Fatalf("run after SIGTERM: %v", err)
	}

	var rows int
	err = db.QueryRow(`SELECT count(*) FROM "`+schema+`".api_token_usage u JOIN "`+schema+`".api_tokens t
		ON t.id = u.token_id WHERE t.start = $1`, all[:10]).Scan(&rows)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d requests answered, %d usage rows after SIGTERM", answered, rows)
	if rows != answered {
		t.Fatalf("%d usage rows, want %d (one per answered request)", rows, answered)
	}
}

// TestServerRedis runs the example with its rate limits in Redis.
func TestServerRedis(t *testing.T) {
	addr := os.Getenv("APITOKEN_TEST_REDIS_ADDR")
	if addr == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("APITOKEN_TEST_REDIS_ADDR is not set (required when CI is set)")
		}
		t.Skip("APITOKEN_TEST_REDIS_ADDR is not set: skipping the Redis example test")
	}
	// A prefix of its own: the memory store's token ids (1, 2) are other
	// tests' too.
	prefix := fmt.Sprintf("apitoken-example-test:%d:%d:", os.Getpid(), time.Now().UnixNano())
	base, all, limited, limiter, stop := startServerInfo(t, map[string]string{
		"REDIS_URL": "redis://" + addr + "/0", "REDIS_PREFIX": prefix, "REPLICAS": "3",
	})
	want := "rate limits: Redis at " + addr + " (db 0), shared by 3 replica(s); when Redis fails or takes over 50ms each allows limit/3 (window 1m0s)"
	if limiter != want {
		t.Errorf("limiter line %q, want %q", limiter, want)
	}
	exercise(t, base, all, limited)
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func TestNewLimiter(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name string
		env  map[string]string
		info string // prefix of the line; "" when an error is wanted
		err  string
	}{
		{"memory", nil, "rate limits: in memory, counted by this process only (window 1m0s)", ""},
		{"memory window", map[string]string{"RATE_WINDOW": "10s"}, "rate limits: in memory, counted by this process only (window 10s)", ""},
		{"bad window", map[string]string{"RATE_WINDOW": "ten"}, "", `RATE_WINDOW "ten" is not a positive duration`},
		{"negative window", map[string]string{"RATE_WINDOW": "-1s"}, "", `RATE_WINDOW "-1s" is not a positive duration`},
		// Port 1 on 127.0.0.1 refuses: the server starts anyway (fail-open).
		{"redis", map[string]string{"REDIS_URL": "redis://127.0.0.1:1/2", "REPLICAS": "3", "RATE_WINDOW": "10s", "REDIS_TIMEOUT": "250ms"},
			"rate limits: Redis at 127.0.0.1:1 (db 2), shared by 3 replica(s); when Redis fails or takes over 250ms each allows limit/3 (window 10s)", ""},
		{"redis defaults", map[string]string{"REDIS_URL": "redis://127.0.0.1:1"},
			"rate limits: Redis at 127.0.0.1:1 (db 0), shared by 1 replica(s); when Redis fails or takes over 50ms each allows limit/1 (window 1m0s)", ""},
		{"bad timeout", map[string]string{"REDIS_URL": "redis://127.0.0.1:1", "REDIS_TIMEOUT": "0s"}, "", `REDIS_TIMEOUT "0s" is not a positive duration`},
		{"bad replicas", map[string]string{"REDIS_URL": "redis://127.0.0.1:1", "REPLICAS": "0"}, "", `REPLICAS "0" is not a positive integer`},
		{"bad prefix", map[string]string{"REDIS_URL": "redis://127.0.0.1:1", "REDIS_PREFIX": "a{b"}, "", `REDIS_PREFIX "a{b" must not contain`},
		{"bad url", map[string]string{"REDIS_URL": "http://user:hunter2@host:1"}, "", "REDIS_URL is not a redis://"},
		{"bad url escape", map[string]string{"REDIS_URL": "redis://user:hunter2%zz@host:1"}, "", "REDIS_URL is not a redis://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim, info, closeFn, err := newLimiter(context.Background(), func(k string) string { return tt.env[k] }, logger)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer closeFn()
			if lim == nil || info != tt.info {
				t.Fatalf("limiter %T, line %q, want %q", lim, info, tt.info)
			}
		})
	}
}

package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq"
)

// startServer runs the example on a free port and returns its base URL, the
// two printed tokens, and a stop function that waits for run to return.
func startServer(t *testing.T, env map[string]string) (base, all, limited string, stop func() error) {
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
	return base, all, limited, func() error {
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
	base, all, limited, stop := startServer(t, map[string]string{"ADMIN_TOKEN": "s3cret"})
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

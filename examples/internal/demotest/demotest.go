// Package demotest is the test suite every router example (examples/chi,
// examples/gin, examples/echo) runs against its own handler.
package demotest

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/internal/fakeclock"
	"github.com/apitoken/apitoken/internal/testhttp"
	"github.com/apitoken/apitoken/store/memory"
)

// Example is one router example under test.
type Example struct {
	// NewHandler builds the example's handler; opts are added to the
	// middleware's.
	NewHandler func(m *apitoken.Manager, adminSecret string, opts ...apitoken.MiddlewareOption) (http.Handler, error)
	// Run is the example's main loop (demo.Run with its handler).
	Run func(ctx context.Context, getenv func(string) string, out io.Writer) error
	// Route patterns as the router reports them, relative to /api, e.g.
	// "/products/{id}" (chi) or "/products/:id" (gin, echo).
	RouteProduct, RouteStoreBrands string
}

// Run runs the suite: the middleware's behaviours through the router, the
// token in the handler, the admin API, and the example's main loop.
func Run(t *testing.T, ex Example) {
	t.Run("MiddlewareBehaviours", func(t *testing.T) { middlewareBehaviours(t, ex) })
	t.Run("Whoami", func(t *testing.T) { whoami(t, ex) })
	t.Run("AdminAPI", func(t *testing.T) { adminAPI(t, ex) })
	t.Run("Run", func(t *testing.T) { runServer(t, ex) })
}

const secret = "adm_example_test"

type server struct {
	h      http.Handler
	clock  *fakeclock.Clock
	mu     sync.Mutex
	events []apitoken.Event
	tokens map[string]string
	ids    map[string]int64
}

// Record implements apitoken.Sink: the suite sees every usage event.
func (d *server) Record(e apitoken.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.events = append(d.events, e)
}

func (d *server) takeEvents() []apitoken.Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.events
	d.events = nil
	return e
}

func (d *server) do(t *testing.T, method, path, bearer, body string) *httptest.ResponseRecorder {
	t.Helper()
	return testhttp.Do(d.h, method, path, bearer, body)
}

// create makes a token through the admin API.
func (d *server) create(t *testing.T, name, body string) {
	t.Helper()
	rec := d.do(t, "POST", "/api/api-tokens", secret, body)
	if rec.Code != http.StatusCreated {
		t.Fatalf("creating %s: %d %s", name, rec.Code, rec.Body)
	}
	var resp struct {
		Token struct {
			ID    int64  `json:"id"`
			Token string `json:"token"`
		} `json:"token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	d.tokens[name], d.ids[name] = resp.Token.Token, resp.Token.ID
}

// newServer serves the example's handler and creates, through the admin API,
// the tokens of the behaviour table.
func newServer(t *testing.T, ex Example) *server {
	t.Helper()
	d := &server{tokens: map[string]string{}, ids: map[string]int64{}}
	d.clock = fakeclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	m, err := apitoken.NewManager(memory.New(), apitoken.WithClock(d.clock), apitoken.WithSink(d))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	h, err := ex.NewHandler(m, secret)
	if err != nil {
		t.Fatal(err)
	}
	d.h = h
	d.create(t, "all", `{"name":"all","rate_limit":100}`)
	d.create(t, "restricted", `{"name":"WordPress Plugin - Main Site","rate_limit":100,"allowed_endpoints":["/products*","/stores*","/categories*"]}`)
	d.create(t, "limited", `{"name":"limited","rate_limit":1}`)
	d.create(t, "disabled", `{"name":"disabled","rate_limit":100}`)
	d.create(t, "expired", `{"name":"expired","rate_limit":100,"expires_at":"`+d.clock.Now().Add(time.Hour).Format(time.RFC3339)+`"}`)
	if rec := d.do(t, "PATCH", "/api/api-tokens/"+strconv.FormatInt(d.ids["disabled"], 10), secret, `{"active":false}`); rec.Code != 200 {
		t.Fatalf("disabling: %d %s", rec.Code, rec.Body)
	}
	d.clock.Advance(2 * time.Hour)
	d.takeEvents()
	return d
}

// middlewareBehaviours is the table every router example passes.
func middlewareBehaviours(t *testing.T, ex Example) {
	d := newServer(t, ex)
	tests := []struct {
		name       string
		path       string
		token      string
		warmup     int
		wantStatus int
		wantBody   string // exact, or the start when bodyPrefix
		bodyPrefix bool
		wantLimit  string
		wantRoute  string
		wantEvent  bool
	}{
		{name: "allowed", path: "/api/products", token: "all", wantStatus: 200,
			wantBody:  `{"products":[{"id":1,"name":"Espresso machine"},{"id":2,"name":"Grinder"},{"id":3,"name":"Kettle"}]}`,
			wantLimit: "100", wantRoute: "/products", wantEvent: true},
		{name: "allowed with id", path: "/api/products/123", token: "all", wantStatus: 200,
			wantBody: `{"product":{"id":"123"}}`, wantLimit: "100", wantRoute: ex.RouteProduct, wantEvent: true},
		{name: "static beside param", path: "/api/products/meta/brands", token: "all", wantStatus: 200,
			wantLimit: "100", wantRoute: "/products/meta/brands", wantEvent: true},
		{name: "restricted token, allowed endpoint", path: "/api/stores/1/brands", token: "restricted", wantStatus: 200,
			wantBody: `{"brands":[{"id":1,"name":"Acme"}]}`, wantLimit: "100", wantRoute: ex.RouteStoreBrands, wantEvent: true},
		{name: "endpoint refused", path: "/api/orders", token: "restricted", wantStatus: 403,
			wantBody: `{"error":"Endpoint not allowed"}`, wantLimit: "100", wantEvent: true},
		{name: "expired", path: "/api/products", token: "expired", wantStatus: 401,
			wantBody: `{"error":"Token has expired"}`, wantLimit: "100", wantEvent: true},
		{name: "disabled", path: "/api/products", token: "disabled", wantStatus: 403,
			wantBody: `{"error":"Token is disabled"}`, wantLimit: "100", wantEvent: true},
		{name: "no token", path: "/api/products", wantStatus: 401, wantBody: `{"error":"Invalid API token"}`},
		{name: "unknown token", path: "/api/products", token: "atk_unknown", wantStatus: 401, wantBody: `{"error":"Invalid API token"}`},
		{name: "rate limited", path: "/api/products", token: "limited", warmup: 1, wantStatus: 429,
			wantBody: `{"error":"Rate limit exceeded","limit":1,"current":2,"retry_after":`, bodyPrefix: true, wantLimit: "1", wantEvent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bearer, ok := d.tokens[tt.token]
			if !ok {
				bearer = tt.token
			}
			for range tt.warmup {
				if rec := d.do(t, "GET", tt.path, bearer, ""); rec.Code != 200 {
					t.Fatalf("warm-up: %d %s", rec.Code, rec.Body)
				}
			}
			d.takeEvents()
			rec := d.do(t, "GET", tt.path, bearer, "")
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if got := strings.TrimSpace(rec.Body.String()); tt.wantBody != "" && got != tt.wantBody && !(tt.bodyPrefix && strings.HasPrefix(got, tt.wantBody)) {
				t.Errorf("body %s, want %s", rec.Body, tt.wantBody)
			}
			if got := rec.Header().Get("X-RateLimit-Limit"); got != tt.wantLimit {
				t.Errorf("X-RateLimit-Limit %q, want %q", got, tt.wantLimit)
			}
			if tt.wantLimit != "" && (rec.Header().Get("X-RateLimit-Remaining") == "" || rec.Header().Get("X-RateLimit-Reset") == "") {
				t.Errorf("X-RateLimit-Remaining/Reset missing: %v", rec.Header())
			}
			if tt.wantStatus == 429 && rec.Header().Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			evs := d.takeEvents()
			if !tt.wantEvent {
				if len(evs) != 0 {
					t.Errorf("events %+v, want none", evs)
				}
				return
			}
			if len(evs) != 1 {
				t.Fatalf("%d events, want 1", len(evs))
			}
			ev := evs[0]
			if ev.TokenID != d.ids[tt.token] || ev.StatusCode != rec.Code || ev.ResponseSize != int64(rec.Body.Len()) || ev.Route != tt.wantRoute {
				t.Errorf("event %+v; want token %d, status %d, size %d, route %q", ev, d.ids[tt.token], rec.Code, rec.Body.Len(), tt.wantRoute)
			}
		})
	}
}

func whoami(t *testing.T, ex Example) {
	d := newServer(t, ex)
	rec := d.do(t, "GET", "/api/whoami", d.tokens["all"], "")
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	var body struct {
		TokenID int64  `json:"token_id"`
		Name    string `json:"name"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body.TokenID != d.ids["all"] || body.Name != "all" {
		t.Errorf("whoami %+v", body)
	}
}

func adminAPI(t *testing.T, ex Example) {
	d := newServer(t, ex)
	tests := []struct {
		name       string
		method     string
		path       string
		bearer     string
		body       string
		wantStatus int
	}{
		{name: "create", method: "POST", path: "/api/api-tokens", bearer: secret, body: `{"name":"n"}`, wantStatus: 201},
		{name: "create without secret", method: "POST", path: "/api/api-tokens", body: `{"name":"n"}`, wantStatus: 401},
		{name: "create with an API token", method: "POST", path: "/api/api-tokens", bearer: d.tokens["all"], body: `{"name":"n"}`, wantStatus: 401},
		{name: "list", method: "GET", path: "/api/api-tokens", bearer: secret, wantStatus: 200},
		{name: "get", method: "GET", path: "/api/api-tokens/" + strconv.FormatInt(d.ids["all"], 10), bearer: secret, wantStatus: 200},
		{name: "usage", method: "GET", path: "/api/api-tokens/" + strconv.FormatInt(d.ids["all"], 10) + "/usage?days=7", bearer: secret, wantStatus: 200},
		{name: "overview", method: "GET", path: "/api/api-tokens/stats/overview?days=7", bearer: secret, wantStatus: 200},
		{name: "delete without secret", method: "DELETE", path: "/api/api-tokens/1", wantStatus: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if rec := d.do(t, tt.method, tt.path, tt.bearer, tt.body); rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if evs := d.takeEvents(); len(evs) != 0 {
				t.Errorf("admin request recorded as usage: %+v", evs)
			}
		})
	}
}

// runServer starts the example on a free port, uses the admin secret to
// create a token, uses the token, and stops the server.
func runServer(t *testing.T, ex Example) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	env := map[string]string{"ADDR": "127.0.0.1:0", "ADMIN_TOKEN": secret}
	errc := make(chan error, 1)
	go func() {
		errc <- ex.Run(ctx, func(k string) string { return env[k] }, pw)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var base string
	for sc.Scan() {
		if _, rest, ok := strings.Cut(sc.Text(), " listening on "); ok {
			base = rest
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if base == "" {
		t.Fatalf("no listening line; run: %v", <-errc)
	}
	req, _ := http.NewRequest("POST", base+"/api/api-tokens", strings.NewReader(`{"name":"run","allowed_endpoints":["/products*"]}`))
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		Token struct {
			Token string `json:"token"`
		} `json:"token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("create: %d %v", resp.StatusCode, err)
	}
	for path, want := range map[string]int{"/api/products/1": 200, "/api/orders": 403} {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+created.Token.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return")
	}
}

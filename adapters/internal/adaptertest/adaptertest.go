// Package adaptertest holds the fixtures and checks that the router
// adapters' tests (adapters/gin, adapters/echo) share.
package adaptertest

import (
	"context"
	"encoding/json"
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

// AdminSecret authorizes the admin API in the adapters' tests.
const AdminSecret = "adm_test_secret"

// Events collects the usage events of the middleware: an apitoken.Sink.
type Events struct {
	mu      sync.Mutex
	all     []apitoken.Event
	discard bool // keep none (benchmarks)
}

// Record implements apitoken.Sink.
func (e *Events) Record(ev apitoken.Event) {
	if e.discard {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

// Reset forgets the events recorded so far.
func (e *Events) Reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = nil
}

// List returns the events recorded so far.
func (e *Events) List() []apitoken.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]apitoken.Event(nil), e.all...)
}

// Tokens is a Manager on a memory store with the tokens the adapters' tables
// use: "all", "limited" (1 request per minute), "restricted" (/products*),
// "disabled" and "expired" (the Manager's clock is moved past its expiry).
type Tokens struct {
	M      *apitoken.Manager
	Plain  map[string]string // name → plaintext
	IDs    map[string]int64
	Events *Events
}

// NewTokens builds the Manager and its tokens; the Manager is closed when t
// ends.
func NewTokens(t *testing.T) *Tokens {
	t.Helper()
	events := &Events{}
	clock := fakeclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	m, err := apitoken.NewManager(memory.New(), apitoken.WithClock(clock), apitoken.WithSink(events))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	tk := &Tokens{M: m, Plain: map[string]string{}, IDs: map[string]int64{}, Events: events}
	create := func(name string, p apitoken.CreateParams) {
		p.Name = name
		tok, plain, err := m.Create(t.Context(), p)
		if err != nil {
			t.Fatalf("creating %s: %v", name, err)
		}
		tk.Plain[name], tk.IDs[name] = plain, tok.ID
	}
	hundred, one := 100, 1
	soon := clock.Now().Add(time.Minute)
	create("all", apitoken.CreateParams{RateLimit: &hundred})
	create("limited", apitoken.CreateParams{RateLimit: &one})
	create("restricted", apitoken.CreateParams{RateLimit: &hundred, AllowedEndpoints: []string{"/products*"}})
	create("disabled", apitoken.CreateParams{RateLimit: &hundred, Inactive: true})
	create("expired", apitoken.CreateParams{RateLimit: &hundred, ExpiresAt: &soon})
	clock.Advance(time.Hour)
	return tk
}

// Check429 checks the spec's 429 body for a token limited to 1 request and
// the Retry-After header.
func Check429(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	var body struct {
		Error      string `json:"error"`
		Limit      int    `json:"limit"`
		Current    int    `json:"current"`
		RetryAfter int    `json:"retry_after"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("429 body %q: %v", rec.Body, err)
	}
	if body.Error != "Rate limit exceeded" || body.Limit != 1 || body.Current <= body.Limit || body.RetryAfter < 1 {
		t.Errorf("429 body %+v", body)
	}
	if ra, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q", rec.Header().Get("Retry-After"))
	}
}

// CheckEvent checks the one usage event of a request against its response:
// token, status, response size, route, endpoint (the path relative to /api)
// and method.
func CheckEvent(t *testing.T, evs []apitoken.Event, tokenID int64, rec *httptest.ResponseRecorder, method, path, route string) {
	t.Helper()
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	ev := evs[0]
	if ev.TokenID != tokenID {
		t.Errorf("event token %d, want %d", ev.TokenID, tokenID)
	}
	if ev.StatusCode != rec.Code {
		t.Errorf("event status %d, want the response's %d", ev.StatusCode, rec.Code)
	}
	if ev.ResponseSize != int64(rec.Body.Len()) {
		t.Errorf("event response size %d, want the body's %d", ev.ResponseSize, rec.Body.Len())
	}
	if ev.Route != route {
		t.Errorf("event route %q, want %q", ev.Route, route)
	}
	if want := strings.TrimPrefix(path, "/api"); ev.Endpoint != want {
		t.Errorf("event endpoint %q, want %q", ev.Endpoint, want)
	}
	if ev.Method != method {
		t.Errorf("event method %q, want %q", ev.Method, method)
	}
}

// BenchSetup returns, for the adapters' benchmarks, a Manager on a memory
// store, the plaintext of its one token (rate limit 5,000 a minute,
// restricted to /products*) and the middleware options: base path /api and
// a limiter with a 10 ms window, so the limit is never reached. The
// Manager's sink drops the events.
func BenchSetup(b *testing.B) (*apitoken.Manager, string, []apitoken.MiddlewareOption) {
	b.Helper()
	m, err := apitoken.NewManager(memory.New(), apitoken.WithSink(&Events{discard: true}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close(context.Background()) })
	limit := 5000
	_, plain, err := m.Create(context.Background(), apitoken.CreateParams{
		Name: "bench", RateLimit: &limit, AllowedEndpoints: []string{"/products*"},
	})
	if err != nil {
		b.Fatal(err)
	}
	// A 10 ms window keeps millions of requests a second below the limit.
	return m, plain, []apitoken.MiddlewareOption{
		apitoken.WithBasePath("/api"),
		apitoken.WithLimiter(apitoken.NewMemoryLimiter(10*time.Millisecond, nil)),
	}
}

// CheckMountAdmin checks the admin API mounted at /api/api-tokens of h,
// whose demo routes under /api are behind the middleware over tk: the admin
// secret is required (an API token is refused), subpaths reach the
// handler, a created token works on the demo API, and admin requests are
// not recorded as usage.
func CheckMountAdmin(t *testing.T, h http.Handler, tk *Tokens) {
	t.Helper()
	tests := []struct {
		name       string
		method     string
		path       string
		bearer     string
		body       string
		wantStatus int
	}{
		{name: "create with admin secret", method: "POST", path: "/api/api-tokens", bearer: AdminSecret,
			body: `{"name":"WordPress Plugin - Main Site","rate_limit":200,"allowed_endpoints":["/products*"]}`, wantStatus: 201},
		{name: "create without secret", method: "POST", path: "/api/api-tokens",
			body: `{"name":"x"}`, wantStatus: 401},
		{name: "create with an API token", method: "POST", path: "/api/api-tokens", bearer: tk.Plain["all"],
			body: `{"name":"x"}`, wantStatus: 401},
		{name: "list", method: "GET", path: "/api/api-tokens", bearer: AdminSecret, wantStatus: 200},
		{name: "subpath get", method: "GET", path: "/api/api-tokens/" + strconv.FormatInt(tk.IDs["all"], 10), bearer: AdminSecret, wantStatus: 200},
		{name: "subpath patch", method: "PATCH", path: "/api/api-tokens/" + strconv.FormatInt(tk.IDs["all"], 10), bearer: AdminSecret,
			body: `{"description":"patched"}`, wantStatus: 200},
		{name: "nested subpath", method: "GET", path: "/api/api-tokens/stats/overview?days=7", bearer: AdminSecret, wantStatus: 200},
		{name: "subpath without secret", method: "DELETE", path: "/api/api-tokens/1", wantStatus: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := testhttp.Do(h, tt.method, tt.path, tt.bearer, tt.body)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantStatus == 201 {
				var body struct {
					Token struct {
						ID    int64  `json:"id"`
						Token string `json:"token"`
					} `json:"token"`
					Message string `json:"message"`
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(body.Token.Token, "atk_") || body.Message == "" {
					t.Fatalf("create response %s", rec.Body)
				}
				// The new token works on the demo API through the middleware.
				if got := testhttp.Do(h, "GET", "/api/products", body.Token.Token, ""); got.Code != 200 {
					t.Errorf("new token: %d %s", got.Code, got.Body)
				}
			}
			if len(tk.Events.List()) != 0 && tt.wantStatus != 201 {
				t.Errorf("admin requests were recorded as usage: %+v", tk.Events.List())
			}
			tk.Events.Reset()
		})
	}
}

package apitokenecho_test

import (
	"context"
	"encoding/json"
	"github.com/apitoken/apitoken/adapters/internal/adaptertest"
	"github.com/apitoken/apitoken/internal/benchutil"
	"github.com/apitoken/apitoken/internal/testhttp"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/apitoken/apitoken"
	apitokenecho "github.com/apitoken/apitoken/adapters/echo"
	"github.com/apitoken/apitoken/store/memory"
)

const adminSecret = adaptertest.AdminSecret

type fixture struct {
	engine *echo.Echo
	events *adaptertest.Events
	tokens map[string]string // name → plaintext
	ids    map[string]int64
	tk     *adaptertest.Tokens
}

// newFixture builds an Echo with the admin API at /api/api-tokens and
// demo routes behind the middleware under /api, and creates tokens: "all",
// "limited" (1 request per minute), "restricted" (/products*), "disabled"
// and "expired" (the Manager's clock is moved past its expiry).
func newFixture(t *testing.T) *fixture {
	t.Helper()
	tk := adaptertest.NewTokens(t)
	m := tk.M
	f := &fixture{events: tk.Events, tokens: tk.Plain, ids: tk.IDs, tk: tk}

	admin, err := apitoken.NewHandler(m, apitoken.StaticSecret(adminSecret), apitoken.WithMountPath("/api/api-tokens"))
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	apitokenecho.Mount(e, "/api/api-tokens", admin)
	demo := e.Group("/api",
		apitokenecho.Middleware(m, apitoken.WithBasePath("/api")),
		func(next echo.HandlerFunc) echo.HandlerFunc { // runs only for accepted requests
			return func(c echo.Context) error {
				c.Response().Header().Set("X-After", "1")
				return next(c)
			}
		})
	demo.GET("/products", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]any{"products": []string{"Espresso machine", "Grinder"}})
	})
	demo.GET("/products/:id", func(c echo.Context) error {
		tok, ok := apitokenecho.Token(c)
		if !ok {
			return c.String(http.StatusInternalServerError, "no token")
		}
		return c.JSON(http.StatusOK, map[string]any{"id": c.Param("id"), "token_id": tok.ID})
	})
	demo.POST("/products", func(c echo.Context) error {
		return echo.NewHTTPError(http.StatusTeapot, "short and stout")
	})
	demo.GET("/stores/:id/brands", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]any{"brands": []string{"Acme"}})
	})
	demo.GET("/empty", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	demo.GET("/orders", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]any{"orders": []string{}}) })
	demo.GET("/missing", func(c echo.Context) error { return echo.ErrNotFound })
	f.engine = e
	return f
}

func (f *fixture) do(method, path, bearer, body string) *httptest.ResponseRecorder {
	return testhttp.Do(f.engine, method, path, bearer, body)
}

func TestMiddleware(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name       string
		method     string
		path       string
		token      string // a fixture token name, or a literal when not one
		warmup     int    // requests sent before the checked one
		wantStatus int
		wantBody   string // exact, when set
		wantLimit  string // X-RateLimit-Limit; "" means absent
		wantRemain string
		wantRoute  string
		wantEvent  bool
	}{
		{name: "allowed with route param", method: "GET", path: "/api/products/42", token: "all",
			wantStatus: 200, wantLimit: "100", wantRemain: "99", wantRoute: "/products/:id", wantEvent: true},
		{name: "allowed list", method: "GET", path: "/api/products", token: "all",
			wantStatus: 200, wantBody: `{"products":["Espresso machine","Grinder"]}` + "\n", wantLimit: "100", wantRemain: "98", wantRoute: "/products", wantEvent: true},
		{name: "nested route", method: "GET", path: "/api/stores/7/brands", token: "all",
			wantStatus: 200, wantLimit: "100", wantRoute: "/stores/:id/brands", wantEvent: true},
		{name: "error returned by the handler", method: "POST", path: "/api/products", token: "all",
			wantStatus: 418, wantBody: `{"message":"short and stout"}` + "\n", wantLimit: "100", wantRoute: "/products", wantEvent: true},
		{name: "status without body", method: "GET", path: "/api/empty", token: "all",
			wantStatus: 204, wantBody: "", wantLimit: "100", wantRoute: "/empty", wantEvent: true},
		{name: "echo error", method: "GET", path: "/api/missing", token: "all",
			wantStatus: 404, wantBody: `{"message":"Not Found"}` + "\n", wantLimit: "100", wantRoute: "/missing", wantEvent: true},
		{name: "unknown path under the group", method: "GET", path: "/api/nowhere/1", token: "all",
			wantStatus: 404, wantBody: `{"message":"Not Found"}` + "\n", wantLimit: "100", wantRoute: "/*", wantEvent: true},
		{name: "restricted token on allowed endpoint", method: "GET", path: "/api/products/1", token: "restricted",
			wantStatus: 200, wantLimit: "100", wantRoute: "/products/:id", wantEvent: true},
		{name: "no token", method: "GET", path: "/api/products",
			wantStatus: 401, wantBody: `{"error":"Invalid API token"}` + "\n"},
		{name: "malformed token", method: "GET", path: "/api/products", token: "atk_nope",
			wantStatus: 401, wantBody: `{"error":"Invalid API token"}` + "\n"},
		{name: "expired", method: "GET", path: "/api/products", token: "expired",
			wantStatus: 401, wantBody: `{"error":"Token has expired"}` + "\n", wantLimit: "100", wantEvent: true},
		{name: "disabled", method: "GET", path: "/api/products", token: "disabled",
			wantStatus: 403, wantBody: `{"error":"Token is disabled"}` + "\n", wantLimit: "100", wantEvent: true},
		{name: "endpoint not allowed", method: "GET", path: "/api/orders", token: "restricted",
			wantStatus: 403, wantBody: `{"error":"Endpoint not allowed"}` + "\n", wantLimit: "100", wantEvent: true},
		{name: "rate limited", method: "GET", path: "/api/products", token: "limited", warmup: 1,
			wantStatus: 429, wantLimit: "1", wantRemain: "0", wantEvent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bearer, ok := f.tokens[tt.token]
			if !ok {
				bearer = tt.token
			}
			for range tt.warmup {
				if rec := f.do(tt.method, tt.path, bearer, ""); rec.Code != 200 {
					t.Fatalf("warm-up request: %d %s", rec.Code, rec.Body)
				}
			}
			f.events.Reset()
			rec := f.do(tt.method, tt.path, bearer, "")
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantBody != "" || tt.wantStatus == 204 {
				if got := rec.Body.String(); got != tt.wantBody {
					t.Errorf("body %q, want %q", got, tt.wantBody)
				}
			}
			if got := rec.Header().Get("X-RateLimit-Limit"); got != tt.wantLimit {
				t.Errorf("X-RateLimit-Limit %q, want %q", got, tt.wantLimit)
			}
			if tt.wantRemain != "" {
				if got := rec.Header().Get("X-RateLimit-Remaining"); got != tt.wantRemain {
					t.Errorf("X-RateLimit-Remaining %q, want %q", got, tt.wantRemain)
				}
			}
			if tt.wantLimit != "" {
				if _, err := time.Parse(time.RFC3339, rec.Header().Get("X-RateLimit-Reset")); err != nil {
					t.Errorf("X-RateLimit-Reset: %v", err)
				}
			}
			accepted := tt.wantStatus < 400 || tt.wantStatus == 404 || tt.wantStatus == 418
			if got := rec.Header().Get("X-After") == "1"; got != accepted {
				t.Errorf("later handlers ran: %v, want %v", got, accepted)
			}
			if tt.wantStatus == 429 {
				adaptertest.Check429(t, rec)
			}

			evs := f.events.List()
			if !tt.wantEvent {
				if len(evs) != 0 {
					t.Fatalf("events %+v, want none", evs)
				}
				return
			}
			adaptertest.CheckEvent(t, evs, f.ids[tt.token], rec, tt.method, tt.path, tt.wantRoute)
		})
	}
}

func TestTokenInHandler(t *testing.T) {
	f := newFixture(t)
	rec := f.do("GET", "/api/products/9", f.tokens["all"], "")
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var body struct {
		ID      string `json:"id"`
		TokenID int64  `json:"token_id"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body.ID != "9" || body.TokenID != f.ids["all"] {
		t.Errorf("got %+v, want id 9 and token %d", body, f.ids["all"])
	}
}

func TestTokenAndRouteOutsideMiddleware(t *testing.T) {
	e := echo.New()
	tests := []struct {
		name string
		c    echo.Context
	}{
		{name: "nil context", c: nil},
		{name: "no request", c: e.NewContext(nil, httptest.NewRecorder())},
		{name: "request without token", c: e.NewContext(httptest.NewRequest("GET", "/", nil), httptest.NewRecorder())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tok, ok := apitokenecho.Token(tt.c); ok || tok != nil {
				t.Errorf("Token = %v, %v; want nil, false", tok, ok)
			}
		})
	}
	if got := apitokenecho.Route(httptest.NewRequest("GET", "/x", nil)); got != "" {
		t.Errorf("Route outside the middleware = %q, want \"\"", got)
	}
}

func TestMountAdmin(t *testing.T) {
	f := newFixture(t)
	adaptertest.CheckMountAdmin(t, f.engine, f.tk)
}

// TestRecordedSizeStreaming checks the status and size of a response
// written in several pieces, flushed, through WriteString and io.Copy.
func TestRecordedSizeStreaming(t *testing.T) {
	var evs adaptertest.Events
	m, err := apitoken.NewManager(memory.New(), apitoken.WithSink(&evs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	_, plain, err := m.Create(t.Context(), apitoken.CreateParams{Name: "s"})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	var outerStatus int
	var outerSize int64
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc { // an access logger before the middleware
		return func(c echo.Context) error {
			err := next(c)
			outerStatus, outerSize = c.Response().Status, c.Response().Size
			return err
		}
	})
	e.Use(apitokenecho.Middleware(m))
	e.GET("/stream/*", func(c echo.Context) error {
		w := c.Response()
		w.WriteHeader(http.StatusPartialContent)
		_, _ = io.WriteString(w, "abc")
		w.Flush()
		_, _ = w.Write([]byte("defg"))
		_, _ = io.Copy(w, strings.NewReader("hijk"))
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("ResponseController.Flush: %v", err)
		}
		return nil
	})
	req := httptest.NewRequest("GET", "/stream/a/b", nil)
	req.Header.Set("Authorization", "Bearer "+plain)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if rec.Code != 206 || rec.Body.String() != "abcdefghijk" || !rec.Flushed {
		t.Fatalf("got %d %q flushed=%v", rec.Code, rec.Body, rec.Flushed)
	}
	got := evs.List()
	if len(got) != 1 || got[0].StatusCode != 206 || got[0].ResponseSize != 11 || got[0].Route != "/stream/*" {
		t.Fatalf("events %+v", got)
	}
	if outerStatus != 206 || outerSize != 11 {
		t.Errorf("an outer middleware saw status %d size %d, want 206 and 11", outerStatus, outerSize)
	}
}

// BenchmarkMiddleware compares an Echo route with the same route behind
// Middleware: cached token, endpoint check, limiter, headers and one event.
func BenchmarkMiddleware(b *testing.B) {
	m, plain, opts := adaptertest.BenchSetup(b)
	handler := func(c echo.Context) error {
		c.Response().Header()["Content-Type"] = []string{"application/json"}
		_, err := io.WriteString(c.Response(), `{"products":[]}`)
		return err
	}
	bare := echo.New()
	bare.GET("/api/products/:id", handler)
	full := echo.New()
	full.Group("/api", apitokenecho.Middleware(m, opts...)).GET("/products/:id", handler)
	r := httptest.NewRequest("GET", "/api/products/123", nil)
	r.Header.Set("Authorization", "Bearer "+plain)
	b.Run("bare", func(b *testing.B) { benchutil.ServeLoop(b, bare, r) })
	b.Run("full", func(b *testing.B) { benchutil.ServeLoop(b, full, r) })
}

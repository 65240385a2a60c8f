package apitoken_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
)

// demoAPI is the spec's demo routes under /api, behind the middleware with
// base path /api, a limiter on the test clock and a synchronous sink.
type demoAPI struct {
	m    *apitoken.Manager
	st   *countingStore
	clk  *clock
	ev   *events
	h    http.Handler
	seen *apitoken.Token // token seen by the last handler call
}

func newDemoAPI(t testing.TB, mopts []apitoken.Option, opts ...apitoken.MiddlewareOption) *demoAPI {
	t.Helper()
	d := &demoAPI{ev: &events{}}
	d.m, d.st, d.clk = newManager(t, append([]apitoken.Option{apitoken.WithSink(d.ev)}, mopts...)...)
	inner := http.NewServeMux()
	ok := func(w http.ResponseWriter, r *http.Request) {
		d.seen, _ = apitoken.FromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}
	for _, p := range []string{"/api/products", "/api/products/{id}", "/api/products/meta/brands", "/api/stores",
		"/api/stores/{id}/brands", "/api/categories", "/api/orders", "/api/orders/{id}"} {
		inner.HandleFunc(p, ok)
	}
	all := append([]apitoken.MiddlewareOption{
		apitoken.WithBasePath("/api"),
	}, opts...)
	d.h = apitoken.Middleware(d.m, all...)(inner)
	return d
}

func (d *demoAPI) do(method, target, token string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	d.h.ServeHTTP(w, r)
	return w
}

func TestMiddlewareRejections(t *testing.T) {
	d := newDemoAPI(t, nil)
	_, good := mustCreate(t, d.m, apitoken.CreateParams{})
	_, disabled := mustCreate(t, d.m, apitoken.CreateParams{Inactive: true})
	_, expired := mustCreate(t, d.m, apitoken.CreateParams{ExpiresAt: ptr(d.clk.Now().Add(time.Minute))})
	_, products := mustCreate(t, d.m, apitoken.CreateParams{AllowedEndpoints: []string{"/products*"}})
	_, limited := mustCreate(t, d.m, apitoken.CreateParams{RateLimit: ptr(1)})
	other, _, _ := newManager(t)
	_, unknown := mustCreate(t, other, apitoken.CreateParams{})
	d.clk.Advance(2 * time.Minute)        // expired's minute is over
	d.do("GET", "/api/products", limited) // uses the one request
	d.clk.Advance(30 * time.Second)

	tests := []struct {
		name   string
		auth   string // full Authorization header
		path   string
		status int
		body   string
	}{
		{"allowed", "Bearer " + good, "/api/products", 200, `{"ok":true}`},
		{"no header", "", "/api/products", 401, `{"error":"Invalid API token"}`},
		{"basic scheme", "Basic " + good, "/api/products", 401, `{"error":"Invalid API token"}`},
		{"bearer only", "Bearer ", "/api/products", 401, `{"error":"Invalid API token"}`},
		{"malformed", "Bearer abc", "/api/products", 401, `{"error":"Invalid API token"}`},
		{"checksum", "Bearer " + otherLast(good), "/api/products", 401, `{"error":"Invalid API token"}`},
		{"unknown", "Bearer " + unknown, "/api/products", 401, `{"error":"Invalid API token"}`},
		{"lower-case scheme", "bearer " + good, "/api/products", 200, `{"ok":true}`},
		{"expired", "Bearer " + expired, "/api/products", 401, `{"error":"Token has expired"}`},
		{"disabled", "Bearer " + disabled, "/api/products", 403, `{"error":"Token is disabled"}`},
		{"endpoint not allowed", "Bearer " + products, "/api/orders", 403, `{"error":"Endpoint not allowed"}`},
		{"rate limited", "Bearer " + limited, "/api/products", 429, `{"error":"Rate limit exceeded","limit":1,"current":2,"retry_after":30}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.path, nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			w := httptest.NewRecorder()
			d.h.ServeHTTP(w, r)
			if w.Code != tt.status || strings.TrimSpace(w.Body.String()) != tt.body {
				t.Fatalf("got %d %s, want %d %s", w.Code, w.Body, tt.status, tt.body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type = %q", ct)
			}
			if tt.status == 429 && w.Header().Get("Retry-After") != "30" {
				t.Fatalf("Retry-After = %q", w.Header().Get("Retry-After"))
			}
		})
	}
}

func TestMiddlewareStoreUnavailable(t *testing.T) {
	d := newDemoAPI(t, nil)
	_, cached := mustCreate(t, d.m, apitoken.CreateParams{})
	_, fresh := mustCreate(t, d.m, apitoken.CreateParams{})
	if w := d.do("GET", "/api/products", cached); w.Code != 200 {
		t.Fatal(w.Code)
	}
	d.st.fail.Store(true)
	if w := d.do("GET", "/api/products", cached); w.Code != 200 {
		t.Fatalf("cached token during an outage: %d", w.Code)
	}
	w := d.do("GET", "/api/products", fresh)
	if w.Code != 503 || strings.TrimSpace(w.Body.String()) != `{"error":"Token store unavailable"}` {
		t.Fatalf("uncached token during an outage: %d %s", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), "5432") {
		t.Fatal("driver error text leaked into the body")
	}
	d.st.fail.Store(false)
	if w := d.do("GET", "/api/products", fresh); w.Code != 200 {
		t.Fatalf("after recovery: %d", w.Code)
	}
}

func TestMiddlewareSpecEndpointExamples(t *testing.T) {
	d := newDemoAPI(t, nil)
	_, wp := mustCreate(t, d.m, apitoken.CreateParams{AllowedEndpoints: []string{"/products*", "/stores*", "/categories*"}})
	_, brands := mustCreate(t, d.m, apitoken.CreateParams{AllowedEndpoints: []string{"/stores/*/brands"}})
	_, nullList := mustCreate(t, d.m, apitoken.CreateParams{AllowedEndpoints: nil})
	_, emptyList := mustCreate(t, d.m, apitoken.CreateParams{AllowedEndpoints: []string{}})
	_, getOnly := mustCreate(t, d.m, apitoken.CreateParams{AllowedEndpoints: []string{"GET /products*"}})
	tests := []struct {
		name, token, method, path string
		allowed                   bool
	}{
		{"products", wp, "GET", "/api/products", true},
		{"product id", wp, "GET", "/api/products/123", true},
		{"product brands", wp, "GET", "/api/products/meta/brands", true},
		{"query ignored", wp, "GET", "/api/products?store_id=1", true},
		{"stores", wp, "GET", "/api/stores", true},
		{"categories", wp, "GET", "/api/categories", true},
		{"orders refused", wp, "GET", "/api/orders", false},
		{"query cannot smuggle", wp, "GET", "/api/orders?x=/products", false},
		{"store 1 brands", brands, "GET", "/api/stores/1/brands", true},
		{"store 2 brands", brands, "GET", "/api/stores/2/brands", true},
		{"two segments refused", brands, "GET", "/api/stores/1/2/brands", false},
		{"stores refused", brands, "GET", "/api/stores", false},
		{"null allows all", nullList, "GET", "/api/orders", true},
		{"[] allows all", emptyList, "GET", "/api/orders", true},
		{"method form GET", getOnly, "GET", "/api/products", true},
		{"method form HEAD", getOnly, "HEAD", "/api/products", true},
		{"method form POST refused", getOnly, "POST", "/api/products", false},
		{"outside the base path", wp, "GET", "/products", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := d.do(tt.method, tt.path, tt.token)
			if got := w.Code != 403; got != tt.allowed {
				t.Fatalf("%s %s: status %d, allowed want %t", tt.method, tt.path, w.Code, tt.allowed)
			}
		})
	}
}

func TestMiddlewareBypassAttempts(t *testing.T) {
	d := newDemoAPI(t, nil)
	_, tok := mustCreate(t, d.m, apitoken.CreateParams{AllowedEndpoints: []string{"/products*"}})
	for _, target := range []string{
		"/api/products/../orders",
		"/api/products/..%2forders",
		"/api/products/%2e%2e/orders",
		"/api/products/%2E%2E/orders",
		"//api/orders",
		"/api//orders",
		"/api/products%2f..%2forders",
		"/api/products/./../orders",
		"/api/./orders",
		"/api/orders/%2e%2e/products",
		"/api/orders/..%2fproducts",
		"/api/orders/%2E%2E/products/1",
	} {
		t.Run(target, func(t *testing.T) {
			d.seen = nil
			w := d.do("GET", target, tok)
			if w.Code != 403 || d.seen != nil {
				t.Fatalf("%s: status %d (handler reached: %t), want 403", target, w.Code, d.seen != nil)
			}
		})
	}
}

func TestMiddlewareRateLimitHeaders(t *testing.T) {
	d := newDemoAPI(t, nil)
	tok, plain := mustCreate(t, d.m, apitoken.CreateParams{RateLimit: ptr(3)})
	_, unlimited := mustCreate(t, d.m, apitoken.CreateParams{RateLimit: ptr(0)})
	reset := d.clk.Now().Add(time.Minute).Format("2006-01-02T15:04:05.000Z")
	for i, wantRemaining := range []string{"2", "1", "0"} {
		w := d.do("GET", "/api/products", plain)
		if w.Code != 200 {
			t.Fatalf("request %d: %d", i, w.Code)
		}
		h := w.Header()
		if h.Get("X-RateLimit-Limit") != "3" || h.Get("X-RateLimit-Remaining") != wantRemaining || h.Get("X-RateLimit-Reset") != reset {
			t.Fatalf("request %d headers: limit %q remaining %q reset %q (want reset %s)", i,
				h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Remaining"), h.Get("X-RateLimit-Reset"), reset)
		}
		d.clk.Advance(10 * time.Second)
	}
	w := d.do("GET", "/api/products", plain)
	if w.Code != 429 || w.Header().Get("X-RateLimit-Remaining") != "0" || w.Header().Get("Retry-After") != "30" {
		t.Fatalf("4th request: %d remaining %q retry-after %q", w.Code, w.Header().Get("X-RateLimit-Remaining"), w.Header().Get("Retry-After"))
	}
	if got := strings.TrimSpace(w.Body.String()); got != `{"error":"Rate limit exceeded","limit":3,"current":4,"retry_after":30}` {
		t.Fatalf("429 body %s", got)
	}
	// Refused for another reason: headers still present, no quota used.
	if _, err := d.m.Update(context.Background(), tok.ID, apitoken.Update{AllowedEndpoints: apitoken.Set([]string{"/stores*"})}); err != nil {
		t.Fatal(err)
	}
	d.clk.Advance(31 * time.Second) // the first request left the window
	for i := 0; i < 5; i++ {
		w := d.do("GET", "/api/products", plain)
		if w.Code != 403 || w.Header().Get("X-RateLimit-Remaining") != "1" {
			t.Fatalf("403 %d: %d remaining %q", i, w.Code, w.Header().Get("X-RateLimit-Remaining"))
		}
	}
	if w := d.do("GET", "/api/stores", plain); w.Code != 200 {
		t.Fatalf("403s consumed quota: %d", w.Code)
	}
	if w := d.do("GET", "/api/products", unlimited); w.Code != 200 || w.Header().Get("X-RateLimit-Limit") != "" {
		t.Fatalf("unlimited token: %d limit header %q", w.Code, w.Header().Get("X-RateLimit-Limit"))
	}
}

func TestMiddlewareTokenSources(t *testing.T) {
	d := newDemoAPI(t, nil, apitoken.WithHeader("X-API-Key"))
	_, plain := mustCreate(t, d.m, apitoken.CreateParams{})
	if w := d.do("GET", "/api/products", "", "X-API-Key", plain); w.Code != 200 {
		t.Fatalf("X-API-Key: %d", w.Code)
	}
	if w := d.do("GET", "/api/products?api_key="+plain, ""); w.Code != 401 {
		t.Fatalf("query parameter accepted without opting in: %d", w.Code)
	}
	q := newDemoAPI(t, nil, apitoken.WithQueryParam("api_key"))
	_, qp := mustCreate(t, q.m, apitoken.CreateParams{})
	if w := q.do("GET", "/api/products?api_key="+qp, ""); w.Code != 200 {
		t.Fatalf("query parameter after opting in: %d", w.Code)
	}
}

func TestMiddlewareFromContextAndErrorHandler(t *testing.T) {
	var got []error
	d := newDemoAPI(t, nil, apitoken.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		got = append(got, err)
		http.Error(w, "custom", http.StatusTeapot)
	}))
	tok, plain := mustCreate(t, d.m, apitoken.CreateParams{RateLimit: ptr(1)})
	if w := d.do("GET", "/api/products", plain); w.Code != 200 || d.seen == nil || d.seen.ID != tok.ID {
		t.Fatalf("FromContext: %v (status %d)", d.seen, w.Code)
	}
	if w := d.do("GET", "/api/products", plain); w.Code != 418 {
		t.Fatalf("custom handler not used: %d", w.Code)
	}
	if w := d.do("GET", "/api/products", "nope"); w.Code != 418 {
		t.Fatalf("custom handler not used: %d", w.Code)
	}
	var rl *apitoken.RateLimitError
	if len(got) != 2 || !errors.As(got[0], &rl) || rl.Decision.Limit != 1 || !errors.Is(got[1], apitoken.ErrInvalidToken) {
		t.Fatalf("errors given to the handler: %v", got)
	}
	if _, ok := apitoken.FromContext(context.Background()); ok {
		t.Fatal("FromContext on a bare context")
	}
}

func TestMiddlewareRecordsUsage(t *testing.T) {
	d := newDemoAPI(t, nil)
	tok, plain := mustCreate(t, d.m, apitoken.CreateParams{AllowedEndpoints: []string{"/products*"}, RateLimit: ptr(2)})
	r := httptest.NewRequest("POST", "/api/products/7?x=1", strings.NewReader("hello"))
	r.RemoteAddr = "192.0.2.1:5555"
	r.Header.Set("Authorization", "Bearer "+plain)
	r.Header.Set("User-Agent", "WordPress/6.5")
	r.Header.Set("X-Forwarded-For", "203.0.113.9") // untrusted peer: ignored
	d.h.ServeHTTP(httptest.NewRecorder(), r)
	d.do("GET", "/api/orders", plain)   // 403
	d.do("GET", "/api/products", plain) // 200
	d.do("GET", "/api/products", plain) // 429
	d.do("GET", "/api/products", "atk_nope")
	evs := d.ev.list()
	if len(evs) != 4 {
		t.Fatalf("%d events, want 4 (unknown tokens are not recorded): %+v", len(evs), evs)
	}
	e := evs[0]
	want := apitoken.Event{
		TokenID: tok.ID, Endpoint: "/products/7", Route: "/products/{id}", Method: "POST", StatusCode: 200,
		RequestSize: 5, ResponseSize: int64(len(`{"ok":true}`)), IP: netip.MustParseAddr("192.0.2.1"),
		UserAgent: "WordPress/6.5",
	}
	e.ResponseTime, e.Time = 0, time.Time{}
	if e != want {
		t.Fatalf("event\n got %+v\nwant %+v", e, want)
	}
	if !evs[0].Time.Equal(d.clk.Now()) || evs[0].ResponseTime != 0 {
		t.Fatalf("time %v, response time %v; want the clock's %v and 0 (it did not move)", evs[0].Time, evs[0].ResponseTime, d.clk.Now())
	}
	for i, status := range []int{403, 200, 429} {
		if evs[i+1].StatusCode != status {
			t.Fatalf("event %d status %d, want %d", i+1, evs[i+1].StatusCode, status)
		}
	}
	if evs[1].Endpoint != "/orders" || evs[1].ResponseSize == 0 {
		t.Fatalf("refusal event %+v", evs[1])
	}
}

func TestMiddlewareTrustedProxies(t *testing.T) {
	d := newDemoAPI(t, nil, apitoken.WithTrustedProxies("10.0.0.0/8"))
	_, plain := mustCreate(t, d.m, apitoken.CreateParams{})
	tests := []struct{ name, peer, xff, want string }{
		{"direct", "198.51.100.7:1", "203.0.113.9", "198.51.100.7"},
		{"via proxy", "10.0.0.1:1", "203.0.113.9, 10.0.0.2", "203.0.113.9"},
		{"spoofed left", "10.0.0.1:1", "1.1.1.1, 203.0.113.9", "203.0.113.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api/products", nil)
			r.RemoteAddr = tt.peer
			r.Header.Set("Authorization", "Bearer "+plain)
			r.Header.Set("X-Forwarded-For", tt.xff)
			n := len(d.ev.list())
			d.h.ServeHTTP(httptest.NewRecorder(), r)
			if got := d.ev.list()[n].IP.String(); got != tt.want {
				t.Fatalf("IP %s, want %s", got, tt.want)
			}
		})
	}
}

func TestMiddlewareKeepsWriterFeatures(t *testing.T) {
	ev := &events{}
	m, _, _ := newManager(t, apitoken.WithSink(ev))
	_, plain := mustCreate(t, m, apitoken.CreateParams{})
	wrap := apitoken.Middleware(m)
	mux := http.NewServeMux()
	mux.HandleFunc("/flush", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "a")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("ResponseController.Flush: %v", err)
		}
		w.(http.Flusher).Flush()
	})
	mux.HandleFunc("/copy", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(io.ReaderFrom); !ok {
			t.Error("ReaderFrom lost")
		}
		// Without WriteTo (which io.Copy prefers), io.Copy calls the
		// writer's ReadFrom.
		_, _ = io.Copy(w, struct{ io.Reader }{strings.NewReader(strings.Repeat("x", 10000))})
	})
	mux.HandleFunc("/hijack", func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
		_ = buf.Flush()
	})
	mux.HandleFunc("/deadline", func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetWriteDeadline through Unwrap: %v", err)
		}
	})
	srv := httptest.NewServer(wrap(mux))
	defer srv.Close()
	for _, p := range []string{"/flush", "/copy", "/hijack", "/deadline"} {
		req, _ := http.NewRequest("GET", srv.URL+p, nil)
		req.Header.Set("Authorization", "Bearer "+plain)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", p, resp.StatusCode, body)
		}
	}
	evs := ev.waitFor(4)
	byPath := map[string]apitoken.Event{}
	for _, e := range evs {
		byPath[e.Endpoint] = e
	}
	if len(evs) != 4 || byPath["/copy"].ResponseSize != 10000 || byPath["/flush"].ResponseSize != 1 ||
		byPath["/hijack"].StatusCode != http.StatusSwitchingProtocols || byPath["/deadline"].StatusCode != 200 {
		t.Fatalf("events: %+v", evs)
	}
}

func TestMiddlewareRecordsPanics(t *testing.T) {
	ev := &events{}
	m, _, _ := newManager(t, apitoken.WithSink(ev))
	_, plain := mustCreate(t, m, apitoken.CreateParams{})
	h := apitoken.Middleware(m)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	}))
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Authorization", "Bearer "+plain)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic swallowed")
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), r)
	}()
	if evs := ev.list(); len(evs) != 1 || evs[0].StatusCode != 500 {
		t.Fatalf("events after a panic: %+v", evs)
	}
}

// TestNoPlaintextInLogs runs a full create / verify / reject cycle, with
// failures that make the library log, and checks no log line holds a token.
func TestNoPlaintextInLogs(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	prev := slog.Default()
	slog.SetDefault(logger)
	defer slog.SetDefault(prev)

	d := newDemoAPI(t, []apitoken.Option{apitoken.WithLogger(logger)})
	var plains []string
	for _, p := range []apitoken.CreateParams{{}, {Inactive: true}, {AllowedEndpoints: []string{"/products*"}}, {RateLimit: ptr(1)}} {
		_, plain := mustCreate(t, d.m, p)
		plains = append(plains, plain)
	}
	for _, p := range plains {
		d.do("GET", "/api/orders", p)
		d.do("GET", "/api/orders", p)
		d.do("GET", "/api/orders", otherLast(p))
	}
	d.st.fail.Store(true)
	_, fresh := mustCreate(t, d.m, apitoken.CreateParams{})
	d.do("GET", "/api/orders", fresh)
	_ = d.m.FlushLastUsed(context.Background())
	d.st.fail.Store(false)
	plains = append(plains, fresh)
	if !strings.Contains(logs.String(), "token lookup failed") {
		t.Fatalf("the cycle did not log the failures it should have: %q", logs.String())
	}
	sc := bufio.NewScanner(&logs)
	for sc.Scan() {
		for _, p := range plains {
			if strings.Contains(sc.Text(), p[4:20]) || strings.Contains(sc.Text(), sha256Hex(p)[:16]) {
				t.Fatalf("log line reveals a token: %s", sc.Text())
			}
		}
	}
}

// TestMiddlewareRouteSeesValue: the route function is called on the routed
// request, so a router adapter's value in its context reaches it.
func TestMiddlewareRouteSeesValue(t *testing.T) {
	type adapterKey struct{}
	ev := &events{}
	m, _, _ := newManager(t, apitoken.WithSink(ev))
	_, plain := mustCreate(t, m, apitoken.CreateParams{})
	h := apitoken.Middleware(m, apitoken.WithRouteFunc(func(r *http.Request) string {
		s, _ := r.Context().Value(adapterKey{}).(string)
		return s
	}))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequestWithContext(context.WithValue(context.Background(), adapterKey{}, "/products/:id"), "GET", "/products/1", nil)
	r.Header.Set("Authorization", "Bearer "+plain)
	h.ServeHTTP(httptest.NewRecorder(), r)
	if evs := ev.list(); len(evs) != 1 || evs[0].Route != "/products/:id" {
		t.Fatalf("events %+v", evs)
	}
}

// TestMiddlewareCountsBodyOfUnknownLength: without Content-Length, the
// request size is what the handler read.
func TestMiddlewareCountsBodyOfUnknownLength(t *testing.T) {
	ev := &events{}
	m, _, _ := newManager(t, apitoken.WithSink(ev))
	_, plain := mustCreate(t, m, apitoken.CreateParams{})
	tests := []struct {
		name string
		read bool
		want int64
	}{
		{"read", true, 5},
		{"not read", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev.reset()
			h := apitoken.Middleware(m)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.read {
					_, _ = io.Copy(io.Discard, r.Body)
				}
			}))
			r := httptest.NewRequest("POST", "/products", io.NopCloser(strings.NewReader("hello")))
			r.ContentLength = -1
			r.Header.Set("Authorization", "Bearer "+plain)
			h.ServeHTTP(httptest.NewRecorder(), r)
			if evs := ev.list(); len(evs) != 1 || evs[0].RequestSize != tt.want {
				t.Fatalf("events %+v, want request size %d", evs, tt.want)
			}
		})
	}
}

// MemoryLimiter.Reset of a token's key starts its count over, although the
// middleware keeps the key's log with the cached token.
func TestMiddlewareLimiterReset(t *testing.T) {
	m, _, clk := newManager(t)
	tok, plain := mustCreate(t, m, apitoken.CreateParams{RateLimit: ptr(2)})
	limiter := apitoken.NewMemoryLimiter(0, clk)
	h := apitoken.Middleware(m, apitoken.WithLimiter(limiter))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	do := func() *httptest.ResponseRecorder { return getProducts(h, plain) }
	for i, want := range []int{200, 200, 429} {
		if w := do(); w.Code != want {
			t.Fatalf("request %d: %d, want %d", i+1, w.Code, want)
		}
	}
	limiter.Reset(tok.LimiterKey())
	if w := do(); w.Code != 200 || w.Header().Get("X-RateLimit-Remaining") != "1" {
		t.Fatalf("after Reset: %d, remaining %q; want 200 and 1", w.Code, w.Header().Get("X-RateLimit-Remaining"))
	}
	if w := do(); w.Code != 200 || w.Header().Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("second after Reset: %d, remaining %q; want 200 and 0", w.Code, w.Header().Get("X-RateLimit-Remaining"))
	}
	if w := do(); w.Code != 429 {
		t.Fatalf("third after Reset: %d, want 429", w.Code)
	}
}

// Large limits' remaining counts are exact, and a response's header value
// stays what it was when later requests are served.
func TestMiddlewareLargeRemaining(t *testing.T) {
	m, _, clk := newManager(t)
	_, plain := mustCreate(t, m, apitoken.CreateParams{RateLimit: ptr(apitoken.MaxRateLimit)})
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	h := apitoken.Middleware(m, apitoken.WithLimiter(apitoken.NewMemoryLimiter(0, clk)))(ok)
	var seen []http.Header
	for range 3 {
		r := httptest.NewRequest("GET", "/products", nil)
		r.Header.Set("Authorization", "Bearer "+plain)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
		seen = append(seen, w.Header())
	}
	for i, hdr := range seen {
		if got, want := hdr.Get("X-RateLimit-Remaining"), strconv.Itoa(apitoken.MaxRateLimit-i-1); got != want {
			t.Errorf("response %d: X-RateLimit-Remaining %q, want %q", i, got, want)
		}
		if got, want := hdr.Get("X-RateLimit-Limit"), strconv.Itoa(apitoken.MaxRateLimit); got != want {
			t.Errorf("response %d: X-RateLimit-Limit %q, want %q", i, got, want)
		}
	}
}

// An invalid Middleware option panics at construction, naming the option.
func TestMiddlewareOptionPanicsNameTheOption(t *testing.T) {
	m, _, _ := newManager(t)
	tests := []struct {
		name string
		opt  apitoken.MiddlewareOption
		want string
	}{
		{"bad proxy prefix", apitoken.WithTrustedProxies("10.0.0.0/99"), "WithTrustedProxies"},
		{"empty header", apitoken.WithHeader(" "), "WithHeader"},
		{"empty query parameter", apitoken.WithQueryParam(""), "WithQueryParam"},
		{"nil error handler", apitoken.WithErrorHandler(nil), "WithErrorHandler"},
		{"nil route function", apitoken.WithRouteFunc(nil), "WithRouteFunc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.Contains(s, tt.want) {
					t.Fatalf("panic %v, want one naming %s", r, tt.want)
				}
			}()
			apitoken.Middleware(m, tt.opt)
		})
	}
}

// A valid Authorization followed by a second one is refused, as the admin
// API refuses it: which header counts must not depend on the reader.
func TestMiddlewareRefusesTwoAuthorizationHeaders(t *testing.T) {
	m, _, _ := newManager(t)
	_, plain := mustCreate(t, m, apitoken.CreateParams{})
	h := apitoken.Middleware(m)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, second := range []string{"Bearer junk", "Bearer " + plain, ""} {
		r := httptest.NewRequest("GET", "/products", nil)
		r.Header.Add("Authorization", "Bearer "+plain)
		r.Header.Add("Authorization", second)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("second Authorization %q: status %d, want 401", second, w.Code)
		}
	}
	if w := getProducts(h, plain); w.Code != 200 {
		t.Fatalf("one Authorization: %d", w.Code)
	}
}

// Two stores whose tokens share an id (a reset database, staging and
// production on one Redis) keep apart on one limiter: the key holds the
// token's creation time too.
func TestTwoStoresOnOneLimiter(t *testing.T) {
	shared := apitoken.NewMemoryLimiter(0, nil)
	mA, _, _ := newManager(t)
	mB, _, clkB := newManager(t)
	clkB.Advance(time.Hour) // B's token is created later
	tokA, plainA := mustCreate(t, mA, apitoken.CreateParams{RateLimit: ptr(1)})
	tokB, plainB := mustCreate(t, mB, apitoken.CreateParams{RateLimit: ptr(1)})
	if tokA.ID != tokB.ID {
		t.Fatalf("ids %d and %d: the test needs equal ids", tokA.ID, tokB.ID)
	}
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	hA := apitoken.Middleware(mA, apitoken.WithLimiter(shared))(ok)
	hB := apitoken.Middleware(mB, apitoken.WithLimiter(shared))(ok)
	for i, want := range []int{200, 429} {
		if w := getProducts(hA, plainA); w.Code != want {
			t.Fatalf("store A, request %d: %d, want %d", i+1, w.Code, want)
		}
	}
	if w := getProducts(hB, plainB); w.Code != 200 {
		t.Fatalf("store B's first request: %d, want 200 (its own limit)", w.Code)
	}
	if tokA.LimiterKey() == tokB.LimiterKey() {
		t.Fatal("equal limiter keys")
	}
}

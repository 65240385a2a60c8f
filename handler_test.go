package apitoken_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/memory"
)

const adminSecret = "s3cret-admin-key"

// adminEnv is an admin handler over a memory store with a test clock.
type adminEnv struct {
	m     *apitoken.Manager
	store *failingStore
	clk   *clock
	h     http.Handler
	logs  *syncBuffer
}

// failingStore fails every call with an error text that must never reach a
// response while fail is set.
type failingStore struct {
	*memory.Store
	fail atomic.Bool
}

var errStoreSecret = errors.New(`pq: password authentication failed for user "admin" password=hunter2`)

func (s *failingStore) CreateToken(ctx context.Context, t *apitoken.Token, h apitoken.Hash) error {
	if s.fail.Load() {
		return errStoreSecret
	}
	return s.Store.CreateToken(ctx, t, h)
}

func (s *failingStore) GetToken(ctx context.Context, id int64) (*apitoken.Token, error) {
	if s.fail.Load() {
		return nil, errStoreSecret
	}
	return s.Store.GetToken(ctx, id)
}

func (s *failingStore) GetTokenByHash(ctx context.Context, h apitoken.Hash) (*apitoken.Token, error) {
	if s.fail.Load() {
		return nil, fmt.Errorf("%w: %v", apitoken.ErrStoreUnavailable, errStoreSecret)
	}
	return s.Store.GetTokenByHash(ctx, h)
}

func (s *failingStore) ListTokens(ctx context.Context, o apitoken.ListOptions) ([]*apitoken.Token, int, error) {
	if s.fail.Load() {
		return nil, 0, errStoreSecret
	}
	return s.Store.ListTokens(ctx, o)
}

func (s *failingStore) UpdateToken(ctx context.Context, id int64, u apitoken.Update, now time.Time) (*apitoken.Token, error) {
	if s.fail.Load() {
		return nil, errStoreSecret
	}
	return s.Store.UpdateToken(ctx, id, u, now)
}

func (s *failingStore) DeleteToken(ctx context.Context, id int64) error {
	if s.fail.Load() {
		return errStoreSecret
	}
	return s.Store.DeleteToken(ctx, id)
}

func (s *failingStore) RotateToken(ctx context.Context, id int64, h apitoken.Hash, start string, until, now time.Time) (*apitoken.Token, error) {
	if s.fail.Load() {
		return nil, errStoreSecret
	}
	return s.Store.RotateToken(ctx, id, h, start, until, now)
}

func (s *failingStore) ListAudit(ctx context.Context, q apitoken.AuditQuery) ([]*apitoken.AuditEntry, int, error) {
	if s.fail.Load() {
		return nil, 0, errStoreSecret
	}
	return s.Store.ListAudit(ctx, q)
}

func (s *failingStore) Overview(ctx context.Context, q apitoken.Query) (*apitoken.Overview, error) {
	if s.fail.Load() {
		return nil, fmt.Errorf("%w: %v", apitoken.ErrStoreUnavailable, errStoreSecret)
	}
	return s.Store.Overview(ctx, q)
}

func newAdminEnv(t testing.TB, auth apitoken.Authorizer, mopts []apitoken.Option, hopts ...apitoken.HandlerOption) *adminEnv {
	t.Helper()
	e := &adminEnv{clk: newClock(), store: &failingStore{Store: memory.New()}, logs: &syncBuffer{}}
	m, err := apitoken.NewManager(e.store, append([]apitoken.Option{apitoken.WithClock(e.clk), apitoken.WithLogger(slog.New(slog.NewTextHandler(e.logs, nil)))}, mopts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	e.m = m
	if auth == nil {
		auth = apitoken.StaticSecret(adminSecret)
	}
	e.h, err = apitoken.NewHandler(m, auth, hopts...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// do sends a request with the admin secret.
func (e *adminEnv) do(t testing.TB, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	return e.doAuth(t, method, path, body, "Bearer "+adminSecret)
}

func (e *adminEnv) doAuth(t testing.TB, method, path, body, authz string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	if authz != "" {
		r.Header.Set("Authorization", authz)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// decodeObject decodes a JSON object response, checking the content type.
func decodeObject(t testing.TB, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	var v map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("body %q: %v", w.Body.String(), err)
	}
	return v
}

func keys(m map[string]any) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

func wantKeys(t testing.TB, what string, m map[string]any, want ...string) {
	t.Helper()
	sort.Strings(want)
	if got := keys(m); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s keys = %v, want %v", what, got, want)
	}
}

func wantStatus(t testing.TB, w *httptest.ResponseRecorder, status int) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body.String())
	}
}

// tokenFields are the JSON fields of a token as the handler shows it (the
// spec's, plus start and updated_at; user_id, scopes and metadata when set).
var tokenFields = []string{"id", "name", "description", "start", "active", "rate_limit", "allowed_endpoints", "expires_at", "last_used_at", "created_at", "updated_at"}

func withFields(extra ...string) []string {
	return append(append([]string{}, tokenFields...), extra...)
}

// The spec's curl examples, in order, with the exact field names.
func TestHandlerSpecExamples(t *testing.T) {
	e := newAdminEnv(t, nil, nil, apitoken.WithMountPath("/api/api-tokens"))
	ctx := context.Background()
	var id float64
	var plaintext string

	t.Run("create", func(t *testing.T) {
		w := e.do(t, "POST", "/api/api-tokens", `{
"name": "WordPress Plugin - Main Site",
"description": "Token for the main WordPress website",
"rate_limit": 200,
"expires_at": "2026-12-31",
"allowed_endpoints": ["/products*", "/stores*", "/categories*"]
}`)
		wantStatus(t, w, http.StatusCreated)
		if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control = %q", cc)
		}
		body := decodeObject(t, w)
		wantKeys(t, "body", body, "token", "message")
		if body["message"] != "API token created successfully. Save this token securely - it cannot be retrieved later." {
			t.Errorf("message = %q", body["message"])
		}
		tok := body["token"].(map[string]any)
		wantKeys(t, "token", tok, withFields("token")...)
		id = tok["id"].(float64)
		plaintext = tok["token"].(string)
		want := map[string]any{
			"id": 1.0, "name": "WordPress Plugin - Main Site", "description": "Token for the main WordPress website",
			"active": true, "rate_limit": 200.0, "expires_at": "2026-12-31T00:00:00Z",
			"created_at": "2026-11-23T12:00:00Z", "last_used_at": nil,
		}
		for k, v := range want {
			if tok[k] != v {
				t.Errorf("%s = %v, want %v", k, tok[k], v)
			}
		}
		if got := fmt.Sprint(tok["allowed_endpoints"]); got != "[/products* /stores* /categories*]" {
			t.Errorf("allowed_endpoints = %s", got)
		}
		if !strings.HasPrefix(plaintext, "atk_") || !strings.HasPrefix(plaintext, tok["start"].(string)) {
			t.Errorf("token %q, start %q", plaintext, tok["start"])
		}
	})

	// Requests through the middleware, recorded synchronously at the test
	// clock's time (the middleware stamps events with time.Now).
	recorded, err := apitoken.NewManager(e.store, apitoken.WithClock(e.clk), apitoken.WithSink(sinkFunc(func(ev apitoken.Event) {
		_ = e.store.RecordUsage(ctx, []apitoken.Event{ev})
	})))
	if err != nil {
		t.Fatal(err)
	}
	defer recorded.Close(ctx)
	api := apitoken.Middleware(recorded, apitoken.WithBasePath("/api"))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	for _, p := range []string{"/api/products", "/api/products/1", "/api/stores", "/api/orders"} {
		r := httptest.NewRequest("GET", p, nil)
		r.Header.Set("Authorization", "Bearer "+plaintext)
		api.ServeHTTP(httptest.NewRecorder(), r)
	}
	e.clk.Advance(time.Minute)
	if err := recorded.FlushLastUsed(ctx); err != nil {
		t.Fatal(err)
	}

	t.Run("list", func(t *testing.T) {
		w := e.do(t, "GET", "/api/api-tokens", "")
		wantStatus(t, w, http.StatusOK)
		body := decodeObject(t, w)
		wantKeys(t, "body", body, "tokens", "total", "limit", "offset")
		list := body["tokens"].([]any)
		if len(list) != 1 || body["total"] != 1.0 || body["limit"] != 50.0 || body["offset"] != 0.0 {
			t.Fatalf("body = %v", body)
		}
		tok := list[0].(map[string]any)
		wantKeys(t, "token", tok, withFields("requests_24h", "requests_7d", "total_requests")...)
		if _, ok := tok["token"]; ok {
			t.Error("list shows the plaintext")
		}
		if tok["requests_24h"] != 4.0 || tok["requests_7d"] != 4.0 || tok["total_requests"] != 4.0 {
			t.Errorf("counts = %v %v %v, want 4", tok["requests_24h"], tok["requests_7d"], tok["total_requests"])
		}
		if tok["last_used_at"] != "2026-11-23T12:00:00Z" {
			t.Errorf("last_used_at = %v", tok["last_used_at"])
		}
	})

	t.Run("get", func(t *testing.T) {
		w := e.do(t, "GET", fmt.Sprintf("/api/api-tokens/%d", int(id)), "")
		wantStatus(t, w, http.StatusOK)
		body := decodeObject(t, w)
		wantKeys(t, "body", body, "token")
		tok := body["token"].(map[string]any)
		wantKeys(t, "token", tok, withFields("requests_24h", "requests_7d", "total_requests")...)
		if tok["name"] != "WordPress Plugin - Main Site" || tok["total_requests"] != 4.0 {
			t.Errorf("token = %v", tok)
		}
	})

	t.Run("usage", func(t *testing.T) {
		w := e.do(t, "GET", fmt.Sprintf("/api/api-tokens/%d/usage?days=7", int(id)), "")
		wantStatus(t, w, http.StatusOK)
		body := decodeObject(t, w)
		wantKeys(t, "body", body, "hourly_usage", "endpoint_usage", "recent_requests")
		hours := body["hourly_usage"].([]any)
		if len(hours) != 1 {
			t.Fatalf("hourly_usage = %v", hours)
		}
		wantKeys(t, "hourly_usage[0]", hours[0].(map[string]any), "hour", "requests", "avg_response_time", "successful_requests", "failed_requests")
		h0 := hours[0].(map[string]any)
		if h0["hour"] != "2026-11-23T12:00:00Z" || h0["requests"] != 4.0 || h0["failed_requests"] != 1.0 {
			t.Errorf("hourly_usage[0] = %v", h0)
		}
		eps := body["endpoint_usage"].([]any)
		if len(eps) == 0 {
			t.Fatal("no endpoint_usage")
		}
		wantKeys(t, "endpoint_usage[0]", eps[0].(map[string]any), "endpoint", "method", "requests", "avg_response_time")
		recent := body["recent_requests"].([]any)
		if len(recent) != 4 {
			t.Fatalf("recent_requests = %v", recent)
		}
		wantKeys(t, "recent_requests[0]", recent[0].(map[string]any), "endpoint", "method", "status_code", "response_time_ms", "ip_address", "user_agent", "created_at")
	})

	t.Run("overview", func(t *testing.T) {
		w := e.do(t, "GET", "/api/api-tokens/stats/overview?days=7", "")
		wantStatus(t, w, http.StatusOK)
		body := decodeObject(t, w)
		// The spec's keys, and rate_limited_tokens.
		wantKeys(t, "body", body, "overview", "top_tokens", "top_endpoints", "rate_limited_tokens")
		if l, ok := body["rate_limited_tokens"].([]any); !ok || len(l) != 0 {
			t.Errorf("rate_limited_tokens = %v, want [] (no 429s)", body["rate_limited_tokens"])
		}
		ov := body["overview"].(map[string]any)
		wantKeys(t, "overview", ov, "active_tokens", "total_requests", "avg_response_time", "successful_requests", "failed_requests")
		if ov["active_tokens"] != 1.0 || ov["total_requests"] != 4.0 || ov["successful_requests"] != 3.0 || ov["failed_requests"] != 1.0 {
			t.Errorf("overview = %v", ov)
		}
		top := body["top_tokens"].([]any)
		if len(top) != 1 {
			t.Fatalf("top_tokens = %v", top)
		}
		wantKeys(t, "top_tokens[0]", top[0].(map[string]any), "id", "name", "requests", "avg_response_time", "rate_limited_requests")
		if n := top[0].(map[string]any)["rate_limited_requests"]; n != 0.0 {
			t.Errorf("top_tokens[0].rate_limited_requests = %v, want 0", n)
		}
		eps := body["top_endpoints"].([]any)
		if len(eps) == 0 {
			t.Fatal("no top_endpoints")
		}
		wantKeys(t, "top_endpoints[0]", eps[0].(map[string]any), "endpoint", "method", "requests", "avg_response_time")
	})

	t.Run("update", func(t *testing.T) {
		w := e.do(t, "PUT", fmt.Sprintf("/api/api-tokens/%d", int(id)), `{
"name": "WordPress Plugin - Main Site (Updated)",
"active": false,
"rate_limit": 300
}`)
		wantStatus(t, w, http.StatusOK)
		body := decodeObject(t, w)
		wantKeys(t, "body", body, "token")
		tok := body["token"].(map[string]any)
		wantKeys(t, "token", tok, tokenFields...)
		if tok["name"] != "WordPress Plugin - Main Site (Updated)" || tok["active"] != false || tok["rate_limit"] != 300.0 {
			t.Errorf("token = %v", tok)
		}
		// Fields absent from the body are unchanged.
		if tok["description"] != "Token for the main WordPress website" || tok["expires_at"] != "2026-12-31T00:00:00Z" || tok["updated_at"] != "2026-11-23T12:01:00Z" {
			t.Errorf("token = %v", tok)
		}
		if _, err := e.m.Verify(ctx, plaintext); !errors.Is(err, apitoken.ErrTokenDisabled) {
			t.Errorf("Verify after disabling = %v", err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		path := fmt.Sprintf("/api/api-tokens/%d", int(id))
		w := e.do(t, "DELETE", path, "")
		wantStatus(t, w, http.StatusOK)
		if got := strings.TrimSpace(w.Body.String()); got != `{"message":"API token deleted"}` {
			t.Errorf("body = %s", got)
		}
		for _, method := range []string{"GET", "DELETE", "PUT"} {
			w = e.do(t, method, path, `{}`)
			wantStatus(t, w, http.StatusNotFound)
			if got := strings.TrimSpace(w.Body.String()); got != `{"error":"Token not found"}` {
				t.Errorf("%s after delete: body = %s", method, got)
			}
		}
	})
}

// The spec's other create bodies (use cases) are accepted as they are.
func TestHandlerCreateSpecBodies(t *testing.T) {
	tests := []struct {
		name, body    string
		rateLimit     float64
		endpoints     string
		expiresAt     any
		active        bool
		extraKeysSeen []string
	}{
		{"rate limit only", `{"name": "Mobile App", "rate_limit": 500}`, 500, "[]", nil, true, nil},
		{"restricted", `{"name": "Public Website", "allowed_endpoints": ["/products*", "/stores*", "/categories*"]}`, 100, "[/products* /stores* /categories*]", nil, true, nil},
		{"expiry", `{"name": "Temporary Integration", "expires_at": "2026-12-31T18:30:00+02:00"}`, 100, "[]", "2026-12-31T16:30:00Z", true, nil},
		{"ios null endpoints", `{"name": "iOS App - Production", "description": "Production iOS application", "rate_limit": 500, "allowed_endpoints": null}`, 500, "[]", nil, true, nil},
		{"unlimited", `{"name": "Dev", "rate_limit": 0, "expires_at": null}`, 0, "[]", nil, true, nil},
		{"extras", `{"name": "Owned", "user_id": "42", "scopes": ["admin"], "metadata": {"team": "web"}, "active": false}`, 100, "[]", nil, false, []string{"user_id", "scopes", "metadata"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newAdminEnv(t, nil, nil)
			w := e.do(t, "POST", "/", tt.body)
			wantStatus(t, w, http.StatusCreated)
			tok := decodeObject(t, w)["token"].(map[string]any)
			wantKeys(t, "token", tok, withFields(append([]string{"token"}, tt.extraKeysSeen...)...)...)
			if tok["rate_limit"] != tt.rateLimit || tok["expires_at"] != tt.expiresAt || tok["active"] != tt.active {
				t.Errorf("token = %v", tok)
			}
			if got := fmt.Sprint(tok["allowed_endpoints"]); got != tt.endpoints && !(tt.endpoints == "[]" && got == "<nil>") {
				t.Errorf("allowed_endpoints = %s, want %s", got, tt.endpoints)
			}
		})
	}
}

// adminRoutes is every method and path the handler serves, and some it does
// not: each must answer 401 without valid credentials.
var adminRoutes = []struct{ method, path string }{
	{"POST", "/"},
	{"GET", "/"},
	{"GET", "/1"},
	{"PUT", "/1"},
	{"PATCH", "/1"},
	{"DELETE", "/1"},
	{"GET", "/1/usage"},
	{"GET", "/stats/overview"},
	{"GET", "/openapi.json"},
	// Not served: 404 or 405 once authorized, 401 before.
	{"DELETE", "/"},
	{"POST", "/1"},
	{"POST", "/1/rotate"},
	{"GET", "/audit"},
	{"GET", "/1/audit"},
	{"POST", "/openapi.json"},
	{"GET", "/abc"},
	{"GET", "/stats"},
	{"POST", "/stats/overview"},
	{"OPTIONS", "/"},
	{"HEAD", "/1"},
	{"GET", "/1/usage/x"},
	{"GET", "/../etc/passwd"},
}

func TestHandlerRouteInventoryRequiresAuthorization(t *testing.T) {
	e := newAdminEnv(t, nil, nil)
	ctx := context.Background()
	tok, plain, err := e.m.Create(ctx, apitoken.CreateParams{Name: "keep", Scopes: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	auths := []struct{ name, header string }{
		{"none", ""},
		{"wrong secret", "Bearer wrong"},
		{"secret with suffix", "Bearer " + adminSecret + "x"},
		{"secret prefix", "Bearer " + adminSecret[:len(adminSecret)-1]},
		{"basic scheme", "Basic " + adminSecret},
		{"bare secret", adminSecret},
		{"empty bearer", "Bearer "},
		// A valid API token, even with an admin scope, is not the admin
		// secret.
		{"api token", "Bearer " + plain},
	}
	body := `{"name":"changed","active":false}`
	for _, rt := range adminRoutes {
		for _, a := range auths {
			t.Run(rt.method+" "+rt.path+"/"+a.name, func(t *testing.T) {
				w := e.doAuth(t, rt.method, rt.path, body, a.header)
				wantStatus(t, w, http.StatusUnauthorized)
				if got := strings.TrimSpace(w.Body.String()); got != `{"error":"Unauthorized"}` {
					t.Errorf("body = %s", got)
				}
				if w.Header().Get("WWW-Authenticate") == "" {
					t.Error("no WWW-Authenticate")
				}
			})
		}
	}
	// Nothing changed.
	got, err := e.m.Get(ctx, tok.ID)
	if err != nil || got.Name != "keep" || !got.Active {
		t.Fatalf("token after refused requests = %v, %v", got, err)
	}
	if _, total, _ := e.m.List(ctx, apitoken.ListOptions{}); total != 1 {
		t.Fatalf("%d tokens after refused requests, want 1", total)
	}
	// Two Authorization headers are refused even when one is right.
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Add("Authorization", "Bearer "+adminSecret)
	r.Header.Add("Authorization", "Bearer wrong")
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	wantStatus(t, w, http.StatusUnauthorized)
}

// Authorized requests for paths and methods the handler does not serve get
// 404 or 405 with Allow, as JSON.
func TestHandlerUnknownRoutes(t *testing.T) {
	e := newAdminEnv(t, nil, nil)
	tests := []struct {
		name, method, path string
		status             int
		allow, body        string
	}{
		{"delete collection", "DELETE", "/", 405, "GET, POST", `{"error":"Method not allowed"}`},
		{"post id", "POST", "/1", 405, "GET, PUT, PATCH, DELETE", `{"error":"Method not allowed"}`},
		{"post usage", "POST", "/1/usage", 405, "GET", `{"error":"Method not allowed"}`},
		{"post overview", "POST", "/stats/overview", 405, "GET", `{"error":"Method not allowed"}`},
		{"options", "OPTIONS", "/", 405, "GET, POST", `{"error":"Method not allowed"}`},
		{"get rotate", "GET", "/1/rotate", 405, "POST", `{"error":"Method not allowed"}`},
		{"post audit", "POST", "/audit", 405, "GET", `{"error":"Method not allowed"}`},
		{"delete token audit", "DELETE", "/1/audit", 405, "GET", `{"error":"Method not allowed"}`},
		{"deep rotate", "POST", "/1/rotate/x", 404, "", `{"error":"Not found"}`},
		{"deep", "GET", "/1/usage/x", 404, "", `{"error":"Not found"}`},
		{"trailing slash", "GET", "/1/", 404, "", `{"error":"Not found"}`},
		{"double slash", "GET", "//1", 404, "", `{"error":"Not found"}`},
		{"stats alone", "GET", "/stats", 400, "", `{"error":"Invalid token id: must be a positive integer"}`},
		{"non-numeric id", "GET", "/abc", 400, "", `{"error":"Invalid token id: must be a positive integer"}`},
		{"negative id", "GET", "/-1", 400, "", `{"error":"Invalid token id: must be a positive integer"}`},
		{"plus id", "DELETE", "/+1", 400, "", `{"error":"Invalid token id: must be a positive integer"}`},
		{"overflow id", "GET", "/99999999999999999999", 400, "", `{"error":"Invalid token id: must be a positive integer"}`},
		{"non-numeric usage id", "GET", "/x/usage", 400, "", `{"error":"Invalid token id: must be a positive integer"}`},
		{"unknown id", "GET", "/42", 404, "", `{"error":"Token not found"}`},
		{"zero id", "GET", "/0", 404, "", `{"error":"Token not found"}`},
		{"unknown id usage", "GET", "/42/usage", 404, "", `{"error":"Token not found"}`},
		{"unknown id delete", "DELETE", "/42", 404, "", `{"error":"Token not found"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(t, tt.method, tt.path, "")
			wantStatus(t, w, tt.status)
			decodeObject(t, w)
			if got := strings.TrimSpace(w.Body.String()); got != tt.body {
				t.Errorf("body = %s, want %s", got, tt.body)
			}
			if got := w.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
		})
	}
}

// Every bad input is a 4xx naming what is wrong, and changes nothing.
func TestHandlerBadInput(t *testing.T) {
	e := newAdminEnv(t, nil, nil)
	ctx := context.Background()
	orig, _, err := e.m.Create(ctx, apitoken.CreateParams{Name: "original", AllowedEndpoints: []string{"/a*"}})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("n", 256)
	huge := `{"name":"` + strings.Repeat("x", apitoken.DefaultMaxBodyBytes) + `"}`
	type tc struct {
		name, method, path, body string
		contentType              string
		status                   int
		want                     string // substring of the error text
	}
	var tests []tc
	// Every body case runs against create and against update.
	bodies := []struct{ name, body, want string }{
		{"unknown field", `{"name":"x","bogus":1}`, "Unknown field \"bogus\""},
		{"unknown id field", `{"name":"x","id":5}`, "Unknown field \"id\""},
		{"unknown token field", `{"name":"x","token":"atk_x"}`, "Unknown field \"token\""},
		{"name wrong type", `{"name":5}`, "name must be a string"},
		{"name null", `{"name":null}`, "name must be a string"},
		{"name too long", `{"name":"` + long + `"}`, "name must be at most 255 characters"},
		{"name blank", `{"name":"  "}`, "name is required"},
		{"description wrong type", `{"name":"x","description":[]}`, "description must be a string"},
		{"rate_limit string", `{"name":"x","rate_limit":"100"}`, "rate_limit must be an integer"},
		{"rate_limit fraction", `{"name":"x","rate_limit":1.5}`, "rate_limit must be an integer"},
		{"rate_limit null", `{"name":"x","rate_limit":null}`, "rate_limit must be an integer"},
		{"rate_limit negative", `{"name":"x","rate_limit":-1}`, "rate_limit must be 0 (unlimited) or more"},
		{"rate_limit overflow", `{"name":"x","rate_limit":1e30}`, "rate_limit must be an integer"},
		{"rate_limit too big", `{"name":"x","rate_limit":1000000001}`, "rate_limit must be at most"},
		{"active string", `{"name":"x","active":"yes"}`, "active must be true or false"},
		{"active null", `{"name":"x","active":null}`, "active must be true or false"},
		{"expires_at bad date", `{"name":"x","expires_at":"31/12/2026"}`, "expires_at \"31/12/2026\" is neither a date"},
		{"expires_at impossible date", `{"name":"x","expires_at":"2026-02-30"}`, "expires_at"},
		{"expires_at number", `{"name":"x","expires_at":20261231}`, "expires_at must be a date"},
		{"expires_at past", `{"name":"x","expires_at":"2025-12-31"}`, "expires_at must be in the future"},
		{"expires_at now", `{"name":"x","expires_at":"2026-11-23T12:00:00Z"}`, "expires_at must be in the future"},
		{"allowed_endpoints string", `{"name":"x","allowed_endpoints":"/products*"}`, "allowed_endpoints must be an array of strings or null"},
		{"allowed_endpoints numbers", `{"name":"x","allowed_endpoints":[1]}`, "allowed_endpoints must be an array of strings or null"},
		{"allowed_endpoints no slash", `{"name":"x","allowed_endpoints":["products*"]}`, "allowed_endpoints"},
		{"allowed_endpoints dotdot", `{"name":"x","allowed_endpoints":["/a/../b"]}`, "allowed_endpoints"},
		{"scopes space", `{"name":"x","scopes":["a b"]}`, "scopes"},
		{"metadata array", `{"name":"x","metadata":["a"]}`, "metadata must be an object of strings or null"},
		{"metadata number value", `{"name":"x","metadata":{"a":1}}`, "metadata must be an object of strings or null"},
		{"user_id number", `{"name":"x","user_id":42}`, "user_id must be a string"},
		{"NUL in name", `{"name":"a\u0000b"}`, "name must not contain NUL"},
		{"array body", `[{"name":"x"}]`, "Request body must be a JSON object"},
		{"string body", `"x"`, "Request body must be a JSON object"},
		{"null body", `null`, "Request body must be a JSON object"},
		{"malformed", `{"name":`, "Malformed JSON"},
		{"syntax error", `{"name" "x"}`, "Malformed JSON"},
		{"trailing object", `{"name":"x"}{"name":"y"}`, "nothing after it"},
		{"trailing garbage", `{"name":"x"} x`, "nothing after it"},
		{"trailing brace", `{"name":"x"}}`, "nothing after it"},
	}
	for _, b := range bodies {
		tests = append(tests,
			tc{"create/" + b.name, "POST", "/", b.body, "application/json", 400, b.want},
			tc{"update/" + b.name, "PUT", fmt.Sprintf("/%d", orig.ID), b.body, "application/json", 400, b.want},
			tc{"patch/" + b.name, "PATCH", fmt.Sprintf("/%d", orig.ID), b.body, "application/json", 400, b.want},
		)
	}
	tests = append(tests,
		tc{"create/empty body", "POST", "/", "", "application/json", 400, "the body is empty"},
		tc{"create/too large", "POST", "/", huge, "application/json", 413, "Request body too large"},
		tc{"update/too large", "PUT", fmt.Sprintf("/%d", orig.ID), huge, "application/json", 413, "Request body too large"},
		tc{"create/trailing data past the limit", "POST", "/", `{"name":"x"}` + strings.Repeat(" ", apitoken.DefaultMaxBodyBytes), "application/json", 413, "Request body too large"},
		tc{"create/form content type", "POST", "/", `{"name":"x"}`, "application/x-www-form-urlencoded", 415, "Content-Type must be application/json"},
		tc{"update/bad id", "PUT", "/abc", `{"name":"x"}`, "application/json", 400, "Invalid token id"},
		tc{"update/unknown id", "PUT", "/999", `{"name":"x"}`, "application/json", 404, "Token not found"},
		tc{"list/limit text", "GET", "/?limit=ten", "", "", 400, "limit must be a positive integer"},
		tc{"list/limit zero", "GET", "/?limit=0", "", "", 400, "limit must be a positive integer"},
		tc{"list/limit negative", "GET", "/?limit=-1", "", "", 400, "limit must be a positive integer"},
		tc{"list/offset negative", "GET", "/?offset=-5", "", "", 400, "offset must be"},
		tc{"list/offset text", "GET", "/?offset=x", "", "", 400, "offset must be"},
		tc{"list/active yes", "GET", "/?active=yes", "", "", 400, "active must be true or false"},
		tc{"list/active empty", "GET", "/?active=", "", "", 400, "active must be true or false"},
		tc{"list/search too long", "GET", "/?search=" + long, "", "", 400, "search must be"},
		tc{"list/status unknown", "GET", "/?status=bogus", "", "", 400, "status must be active, disabled or expired"},
		tc{"list/status empty", "GET", "/?status=", "", "", 400, "status must be active, disabled or expired"},
		tc{"list/status upper case", "GET", "/?status=Active", "", "", 400, "status must be active, disabled or expired"},
		tc{"list/status all", "GET", "/?status=all", "", "", 400, "status must be active, disabled or expired"},
		tc{"list/expires_before word", "GET", "/?expires_before=tomorrow", "", "", 400, "expires_before must be a date (2026-12-31) or an RFC 3339 time"},
		tc{"list/expires_before empty", "GET", "/?expires_before=", "", "", 400, "expires_before must be a date"},
		tc{"list/expires_before bad month", "GET", "/?expires_before=2026-13-01", "", "", 400, "expires_before must be a date"},
		tc{"list/expires_before no zone", "GET", "/?expires_before=2026-12-01T10:00:00", "", "", 400, "expires_before must be a date"},
		tc{"usage/days zero", "GET", fmt.Sprintf("/%d/usage?days=0", orig.ID), "", "", 400, "days must be an integer between 1 and 90"},
		tc{"usage/days 91", "GET", fmt.Sprintf("/%d/usage?days=91", orig.ID), "", "", 400, "days must be an integer between 1 and 90"},
		tc{"usage/days text", "GET", fmt.Sprintf("/%d/usage?days=week", orig.ID), "", "", 400, "days must be an integer between 1 and 90"},
		tc{"usage/days unknown id", "GET", "/999/usage?days=7", "", "", 404, "Token not found"},
		tc{"overview/days zero", "GET", "/stats/overview?days=0", "", "", 400, "days must be an integer between 1 and 90"},
		tc{"overview/days 91", "GET", "/stats/overview?days=91", "", "", 400, "days must be an integer between 1 and 90"},
		tc{"overview/days negative", "GET", "/stats/overview?days=-7", "", "", 400, "days must be an integer between 1 and 90"},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			r.Header.Set("Authorization", "Bearer "+adminSecret)
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			wantStatus(t, w, tt.status)
			body := decodeObject(t, w)
			wantKeys(t, "body", body, "error")
			if msg, _ := body["error"].(string); !strings.Contains(msg, tt.want) || strings.Contains(msg, "apitoken:") {
				t.Errorf("error = %q, want it to contain %q", msg, tt.want)
			}
		})
	}
	// Nothing was written: still one token, unchanged.
	list, total, err := e.m.List(ctx, apitoken.ListOptions{})
	if err != nil || total != 1 || len(list) != 1 {
		t.Fatalf("List = %d tokens (%v), want 1", total, err)
	}
	got := list[0]
	if got.Name != "original" || !got.UpdatedAt.Equal(orig.UpdatedAt) || fmt.Sprint(got.AllowedEndpoints) != "[/a*]" {
		t.Errorf("token changed: %+v", *got)
	}
}

// PUT and PATCH change only the fields present; null clears the nullable
// ones.
func TestHandlerPartialUpdate(t *testing.T) {
	tests := []struct {
		name, method, body string
		check              func(t *testing.T, tok *apitoken.Token)
	}{
		{"empty body changes nothing", "PUT", `{}`, func(t *testing.T, tok *apitoken.Token) {
			if tok.Name != "orig" || tok.ExpiresAt == nil || len(tok.AllowedEndpoints) != 1 || tok.RateLimit != 7 {
				t.Errorf("token = %+v", *tok)
			}
		}},
		{"expires_at null clears", "PUT", `{"expires_at":null}`, func(t *testing.T, tok *apitoken.Token) {
			if tok.ExpiresAt != nil || len(tok.AllowedEndpoints) != 1 {
				t.Errorf("token = %+v", *tok)
			}
		}},
		{"allowed_endpoints null clears", "PATCH", `{"allowed_endpoints":null}`, func(t *testing.T, tok *apitoken.Token) {
			if len(tok.AllowedEndpoints) != 0 || tok.ExpiresAt == nil {
				t.Errorf("token = %+v", *tok)
			}
		}},
		{"set fields", "PATCH", `{"description":"d","rate_limit":0,"expires_at":"2027-01-01","allowed_endpoints":["/x*"],"scopes":["admin"],"metadata":{"k":"v"},"user_id":"u1"}`, func(t *testing.T, tok *apitoken.Token) {
			if tok.Description != "d" || tok.RateLimit != 0 || tok.ExpiresAt.Format(time.RFC3339) != "2027-01-01T00:00:00Z" ||
				fmt.Sprint(tok.AllowedEndpoints) != "[/x*]" || !slices.Contains(tok.Scopes, "admin") || tok.Metadata["k"] != "v" || tok.UserID != "u1" || tok.Name != "orig" {
				t.Errorf("token = %+v", *tok)
			}
		}},
		{"enable and disable", "PUT", `{"active":false}`, func(t *testing.T, tok *apitoken.Token) {
			if tok.Active {
				t.Error("still active")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newAdminEnv(t, nil, nil)
			ctx := context.Background()
			exp := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
			limit := 7
			tok, _, err := e.m.Create(ctx, apitoken.CreateParams{Name: "orig", ExpiresAt: &exp, AllowedEndpoints: []string{"/a*"}, RateLimit: &limit})
			if err != nil {
				t.Fatal(err)
			}
			w := e.do(t, tt.method, fmt.Sprintf("/%d", tok.ID), tt.body)
			wantStatus(t, w, http.StatusOK)
			var resp struct{ Token json.RawMessage }
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.Token == nil {
				t.Fatalf("body %s: %v", w.Body.String(), err)
			}
			got, err := e.m.Get(ctx, tok.ID)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, got)
			var shown apitoken.Token
			if err := json.Unmarshal(resp.Token, &shown); err != nil || shown.Name != got.Name || shown.Active != got.Active {
				t.Errorf("response token %s does not match the stored one", resp.Token)
			}
		})
	}
}

func TestHandlerListPaging(t *testing.T) {
	e := newAdminEnv(t, nil, nil)
	ctx := context.Background()
	for i := 1; i <= 105; i++ {
		p := apitoken.CreateParams{Name: fmt.Sprintf("token %03d", i), Inactive: i%5 == 0}
		if i == 42 {
			p.Name = "WordPress Plugin"
		}
		if _, _, err := e.m.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, query      string
		count, total     int
		limit, offset    float64
		firstID, firstNm string
	}{
		{"default", "", 50, 105, 50, 0, "105", ""},
		{"capped at 100", "?limit=1000", 100, 105, 100, 0, "105", ""},
		{"page", "?limit=2&offset=3", 2, 105, 2, 3, "102", ""},
		{"past the end", "?offset=500", 0, 105, 50, 500, "", ""},
		{"search ignores case", "?search=wordpress", 1, 1, 50, 0, "42", "WordPress Plugin"},
		{"inactive", "?active=false", 21, 21, 50, 0, "105", ""},
		{"active", "?active=true&limit=100", 84, 84, 100, 0, "104", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(t, "GET", "/"+tt.query, "")
			wantStatus(t, w, http.StatusOK)
			var body struct {
				Tokens []map[string]any `json:"tokens"`
				Total  int              `json:"total"`
				Limit  float64          `json:"limit"`
				Offset float64          `json:"offset"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if body.Tokens == nil || len(body.Tokens) != tt.count || body.Total != tt.total || body.Limit != tt.limit || body.Offset != tt.offset {
				t.Fatalf("got %d tokens, total %d, limit %v, offset %v", len(body.Tokens), body.Total, body.Limit, body.Offset)
			}
			if tt.firstID != "" && fmt.Sprint(body.Tokens[0]["id"]) != tt.firstID {
				t.Errorf("first id = %v, want %s", body.Tokens[0]["id"], tt.firstID)
			}
			if tt.firstNm != "" && body.Tokens[0]["name"] != tt.firstNm {
				t.Errorf("first name = %v", body.Tokens[0]["name"])
			}
		})
	}
	// An empty list is [], not null.
	e2 := newAdminEnv(t, nil, nil)
	if got := e2.do(t, "GET", "/", "").Body.String(); !strings.Contains(got, `"tokens":[]`) {
		t.Errorf("empty list = %s", got)
	}
}

// The status and expires_before filters, judged at the Manager's clock.
func TestHandlerListStatus(t *testing.T) {
	e := newAdminEnv(t, nil, nil)
	ctx := context.Background()
	now := e.clk.Now() // 2026-11-23 12:00 UTC
	at := func(d time.Duration) *time.Time { x := now.Add(d); return &x }
	for _, p := range []apitoken.CreateParams{
		{Name: "live"}, // 1
		{Name: "soon", ExpiresAt: at(3 * 24 * time.Hour)},                 // 2: 2026-11-26 12:00
		{Name: "later", ExpiresAt: at(10 * 24 * time.Hour)},               // 3: 2026-12-03 12:00
		{Name: "short", ExpiresAt: at(time.Hour)},                         // 4: expired once the clock moves
		{Name: "off", Inactive: true},                                     // 5
		{Name: "off soon", Inactive: true, ExpiresAt: at(24 * time.Hour)}, // 6
	} {
		if _, _, err := e.m.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	e.clk.Advance(2 * time.Hour)
	tests := []struct {
		name, query string
		ids         []int64
		total       int
	}{
		{"active", "?status=active", []int64{3, 2, 1}, 3},
		{"disabled", "?status=disabled", []int64{6, 5}, 2},
		{"expired", "?status=expired", []int64{4}, 1},
		{"expired and active flag", "?status=expired&active=true", []int64{4}, 1},
		{"disabled and active flag", "?status=disabled&active=true", []int64{}, 0},
		{"page", "?status=active&limit=1&offset=1", []int64{2}, 3},
		{"expires_before date", "?expires_before=2026-11-30", []int64{6, 4, 2}, 3},
		{"expiring within 7 days", "?status=active&expires_before=2026-11-30T14:00:00Z", []int64{2}, 1},
		{"expires_before with offset", "?status=active&expires_before=2026-12-03T14:00:00%2B02:00", []int64{2}, 1},
		{"expires_before with an unencoded plus", "?status=active&expires_before=2026-12-03T14:00:00.000001+02:00", []int64{3, 2}, 2},
		{"expires_before and search", "?expires_before=2026-12-31&search=SOON", []int64{6, 2}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(t, "GET", "/"+tt.query, "")
			wantStatus(t, w, http.StatusOK)
			var body struct {
				Tokens []struct {
					ID int64 `json:"id"`
				} `json:"tokens"`
				Total int `json:"total"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			ids := []int64{}
			for _, tok := range body.Tokens {
				ids = append(ids, tok.ID)
			}
			if !slices.Equal(ids, tt.ids) || body.Total != tt.total {
				t.Errorf("GET /%s: ids %v, total %d; want %v, total %d", tt.query, ids, body.Total, tt.ids, tt.total)
			}
		})
	}
	t.Run("Manager.List", func(t *testing.T) {
		_, _, err := e.m.List(ctx, apitoken.ListOptions{Status: "gone"})
		var ve *apitoken.ValidationError
		if !errors.As(err, &ve) || ve.Field != "status" {
			t.Errorf("List with an unknown status: %v, want a ValidationError for status", err)
		}
		// An explicit Now wins over the Manager's clock.
		list, total, err := e.m.List(ctx, apitoken.ListOptions{Status: apitoken.StatusExpired, Now: now})
		if err != nil || total != 0 || len(list) != 0 {
			t.Errorf("List(expired at creation time) = %d tokens, total %d, %v; want none", len(list), total, err)
		}
	})
}

// Both mounting styles serve the spec's paths; paths outside the mount are 404.
func TestHandlerMounting(t *testing.T) {
	e := newAdminEnv(t, nil, nil, apitoken.WithMountPath("/api/api-tokens/"))
	plain := newAdminEnv(t, nil, nil)
	mux := http.NewServeMux()
	mux.Handle("/api/api-tokens/", http.StripPrefix("/api/api-tokens", plain.h))
	mux.Handle("/api/api-tokens", http.StripPrefix("/api/api-tokens", plain.h))
	handlers := []struct {
		name string
		h    http.Handler
	}{{"WithMountPath", e.h}, {"http.StripPrefix", mux}}
	tests := []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/api/api-tokens", `{"name":"a"}`, 201},
		{"POST", "/api/api-tokens/", `{"name":"b"}`, 201},
		{"GET", "/api/api-tokens", "", 200},
		{"GET", "/api/api-tokens/1", "", 200},
		{"GET", "/api/api-tokens/1/usage?days=1", "", 200},
		{"GET", "/api/api-tokens/stats/overview", "", 200},
		{"DELETE", "/api/api-tokens/2", "", 200},
	}
	for _, hh := range handlers {
		for _, tt := range tests {
			t.Run(hh.name+"/"+tt.method+" "+tt.path, func(t *testing.T) {
				r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
				r.Header.Set("Authorization", "Bearer "+adminSecret)
				w := httptest.NewRecorder()
				hh.h.ServeHTTP(w, r)
				wantStatus(t, w, tt.status)
			})
		}
	}
	for _, p := range []string{"/api/api-tokensX", "/api/other", "/", "/api"} {
		t.Run("outside "+p, func(t *testing.T) {
			w := e.do(t, "GET", p, "")
			wantStatus(t, w, http.StatusNotFound)
			if got := strings.TrimSpace(w.Body.String()); got != `{"error":"Not found"}` {
				t.Errorf("body = %s", got)
			}
			// Still authorization first.
			wantStatus(t, e.doAuth(t, "GET", p, "", ""), http.StatusUnauthorized)
		})
	}
}

func TestNewHandlerArguments(t *testing.T) {
	m, err := apitoken.NewManager(memory.New(), apitoken.WithLogger(discardLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	tests := []struct {
		name string
		m    *apitoken.Manager
		auth apitoken.Authorizer
		opts []apitoken.HandlerOption
		ok   bool
	}{
		{"ok", m, apitoken.StaticSecret("x"), nil, true},
		{"no manager", nil, apitoken.StaticSecret("x"), nil, false},
		{"no authorizer", m, nil, nil, false},
		{"relative mount", m, apitoken.StaticSecret("x"), []apitoken.HandlerOption{apitoken.WithMountPath("api")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := apitoken.NewHandler(tt.m, tt.auth, tt.opts...)
			if (err == nil) != tt.ok || (h != nil) != tt.ok {
				t.Fatalf("NewHandler = %v, %v", h, err)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "apitoken: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestStaticSecret(t *testing.T) {
	tests := []struct {
		name, secret, header string
		ok                   bool
	}{
		{"match", "abc", "Bearer abc", true},
		{"scheme any case", "abc", "bearer abc", true},
		{"extra spaces", "abc", "Bearer   abc  ", true},
		{"wrong", "abc", "Bearer abd", false},
		{"longer", "abc", "Bearer abcd", false},
		{"shorter", "abc", "Bearer ab", false},
		{"no scheme", "abc", "abc", false},
		{"basic", "abc", "Basic abc", false},
		{"missing", "abc", "", false},
		{"empty secret refuses empty", "", "Bearer ", false},
		{"empty secret refuses anything", "", "Bearer x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			actor, err := apitoken.StaticSecret(tt.secret)(r)
			if tt.ok && (err != nil || actor != "admin") {
				t.Errorf("= %q, %v; want admin", actor, err)
			}
			if !tt.ok && (err == nil || actor != "" || !errors.Is(err, apitoken.ErrUnauthorized)) {
				t.Errorf("= %q, %v; want ErrUnauthorized", actor, err)
			}
		})
	}
}

func TestTokenScopeAuthorizer(t *testing.T) {
	var e *adminEnv
	e = newAdminEnv(t, func(r *http.Request) (string, error) {
		return apitoken.TokenScopeAuthorizer(e.m, "admin")(r)
	}, nil)
	ctx := context.Background()
	_, admin, _ := e.m.Create(ctx, apitoken.CreateParams{Name: "admin", Scopes: []string{"read", "admin"}})
	_, reader, _ := e.m.Create(ctx, apitoken.CreateParams{Name: "reader", Scopes: []string{"read"}})
	off, disabled, _ := e.m.Create(ctx, apitoken.CreateParams{Name: "off", Scopes: []string{"admin"}})
	if _, err := e.m.Update(ctx, off.ID, apitoken.Update{Active: apitoken.Set(false)}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, header string
		status       int
	}{
		{"admin scope", "Bearer " + admin, 200},
		{"no admin scope", "Bearer " + reader, 401},
		{"disabled", "Bearer " + disabled, 401},
		{"forged", "Bearer " + otherLast(admin), 401},
		{"static secret is not a token", "Bearer " + adminSecret, 401},
		{"none", "", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantStatus(t, e.doAuth(t, "GET", "/", "", tt.header), tt.status)
		})
	}
	t.Run("actor", func(t *testing.T) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+admin)
		actor, err := apitoken.TokenScopeAuthorizer(e.m, "admin")(r)
		if err != nil || actor != "token:1" {
			t.Errorf("= %q, %v", actor, err)
		}
		if _, err := apitoken.TokenScopeAuthorizer(nil, "admin")(r); err == nil {
			t.Error("nil Manager accepted")
		}
		if _, err := apitoken.TokenScopeAuthorizer(e.m, "")(r); err == nil {
			t.Error("empty scope accepted")
		}
	})
	t.Run("store down is 503, not 401", func(t *testing.T) {
		e.m.InvalidateAll()
		e.store.fail.Store(true)
		defer e.store.fail.Store(false)
		w := e.doAuth(t, "GET", "/", "", "Bearer "+reader)
		wantStatus(t, w, http.StatusServiceUnavailable)
		if strings.Contains(w.Body.String(), "hunter2") {
			t.Errorf("body leaks the store error: %s", w.Body.String())
		}
	})
}

// A failing store gives a fixed 5xx body; the error goes to the log only.
func TestHandlerStoreFailure(t *testing.T) {
	e := newAdminEnv(t, nil, nil)
	tok, _, err := e.m.Create(context.Background(), apitoken.CreateParams{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	e.store.fail.Store(true)
	id := fmt.Sprint(tok.ID)
	tests := []struct {
		name, method, path, body string
		status                   int
	}{
		{"create", "POST", "/", `{"name":"y"}`, 500},
		{"list", "GET", "/", "", 500},
		{"get", "GET", "/" + id, "", 500},
		{"update", "PUT", "/" + id, `{"name":"z"}`, 500},
		{"delete", "DELETE", "/" + id, "", 500},
		{"usage", "GET", "/" + id + "/usage", "", 500},
		{"overview unavailable", "GET", "/stats/overview", "", 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.logs.Reset()
			w := e.do(t, tt.method, tt.path, tt.body)
			wantStatus(t, w, tt.status)
			want := `{"error":"Internal server error"}`
			if tt.status == 503 {
				want = `{"error":"Service unavailable"}`
			}
			if got := strings.TrimSpace(w.Body.String()); got != want {
				t.Errorf("body = %s, want %s", got, want)
			}
			if !strings.Contains(e.logs.String(), "hunter2") || !strings.Contains(e.logs.String(), "actor=admin") {
				t.Errorf("log = %q, want the store error and the actor", e.logs.String())
			}
		})
	}
}

// Without a usage store the list shows zero counts and the reports are 501.
func TestHandlerWithoutUsageStore(t *testing.T) {
	e := newAdminEnv(t, nil, []apitoken.Option{apitoken.WithUsageStore(nil)})
	if w := e.do(t, "POST", "/", `{"name":"x"}`); w.Code != 201 {
		t.Fatalf("create = %d", w.Code)
	}
	w := e.do(t, "GET", "/", "")
	wantStatus(t, w, 200)
	if !strings.Contains(w.Body.String(), `"requests_24h":0,"requests_7d":0,"total_requests":0`) {
		t.Errorf("list = %s", w.Body.String())
	}
	for _, p := range []string{"/1/usage", "/stats/overview"} {
		w := e.do(t, "GET", p, "")
		wantStatus(t, w, http.StatusNotImplemented)
		if got := strings.TrimSpace(w.Body.String()); got != `{"error":"Usage analytics are not enabled"}` {
			t.Errorf("%s body = %s", p, got)
		}
	}
}

// The plaintext appears in the create response only, never in a log line.
func TestHandlerPlaintextOnlyInCreateResponse(t *testing.T) {
	e := newAdminEnv(t, nil, nil)
	w := e.do(t, "POST", "/", `{"name":"x"}`)
	wantStatus(t, w, 201)
	var resp struct {
		Token struct {
			ID    int64  `json:"id"`
			Token string `json:"token"`
		} `json:"token"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.Token.Token == "" {
		t.Fatalf("%s: %v", w.Body.String(), err)
	}
	secret := resp.Token.Token
	id := fmt.Sprint(resp.Token.ID)
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/", ""}, {"GET", "/" + id, ""}, {"PUT", "/" + id, `{"name":"y"}`}, {"GET", "/" + id + "/usage", ""}, {"GET", "/stats/overview", ""},
	} {
		if got := e.do(t, r.method, r.path, r.body).Body.String(); strings.Contains(got, secret) || strings.Contains(got, secret[len(secret)-20:]) {
			t.Errorf("%s %s shows the secret", r.method, r.path)
		}
	}
	e.store.fail.Store(true)
	e.do(t, "GET", "/", "")
	if strings.Contains(e.logs.String(), secret[len(secret)-20:]) {
		t.Error("log shows the secret")
	}
}

// Mount the admin API at the spec's path with a static admin secret and create
// a token.
func ExampleNewHandler() {
	m, _ := apitoken.NewManager(memory.New())
	defer m.Close(context.Background())
	admin, err := apitoken.NewHandler(m, apitoken.StaticSecret("change-me"), apitoken.WithMountPath("/api/api-tokens"))
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/api-tokens", admin)
	mux.Handle("/api/api-tokens/", admin)

	r := httptest.NewRequest("POST", "/api/api-tokens", strings.NewReader(`{
		"name": "WordPress Plugin - Main Site",
		"rate_limit": 200,
		"allowed_endpoints": ["/products*", "/stores*", "/categories*"]
	}`))
	r.Header.Set("Authorization", "Bearer change-me")
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)

	var resp struct {
		Token struct {
			Name      string `json:"name"`
			RateLimit int    `json:"rate_limit"`
		} `json:"token"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &resp)
	fmt.Println(w.Code, resp.Token.Name, resp.Token.RateLimit)
	fmt.Println(resp.Message)

	// Without the secret, every route answers 401.
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/api/api-tokens", nil))
	fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))
	// Output:
	// 201 WordPress Plugin - Main Site 200
	// API token created successfully. Save this token securely - it cannot be retrieved later.
	// 401 {"error":"Unauthorized"}
}

// A NUL in a list filter is the client's mistake: 400 naming the
// parameter, on every store (PostgreSQL text cannot hold one).
func TestListFiltersWithNUL(t *testing.T) {
	e := newAdminEnv(t, nil, nil)
	for _, param := range []string{"search", "user_id"} {
		t.Run(param, func(t *testing.T) {
			w := e.do(t, "GET", "/?"+param+"=a%00b", "")
			wantStatus(t, w, http.StatusBadRequest)
			if body := w.Body.String(); !strings.Contains(body, param) {
				t.Fatalf("body %s does not name %s", body, param)
			}
		})
	}
}

package dashboard_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/apitoken/apitoken/dashboard"
)

func get(t *testing.T, h http.Handler, method, target string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mounted(t *testing.T, opts ...dashboard.Option) http.Handler {
	t.Helper()
	h, err := dashboard.New(append([]dashboard.Option{dashboard.WithMountPath("/api/api-tokens/ui")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestServes(t *testing.T) {
	h := mounted(t)
	tests := []struct {
		name, method, path string
		status             int
		contentType        string
		contains           string
	}{
		{"index", "GET", "/api/api-tokens/ui/", 200, "text/html; charset=utf-8", `<script type="module" src="app.js"></script>`},
		{"index HEAD", "HEAD", "/api/api-tokens/ui/", 200, "text/html; charset=utf-8", ""},
		{"entry module", "GET", "/api/api-tokens/ui/app.js", 200, "text/javascript; charset=utf-8", "import"},
		{"nested module", "GET", "/api/api-tokens/ui/views/detail.js", 200, "text/javascript; charset=utf-8", "export function detailView"},
		{"style sheet", "GET", "/api/api-tokens/ui/style.css", 200, "text/css; charset=utf-8", ":root"},
		{"icon", "GET", "/api/api-tokens/ui/icon.svg", 200, "image/svg+xml", "<svg"},
		{"unknown asset", "GET", "/api/api-tokens/ui/nope.js", 404, "text/plain; charset=utf-8", ""},
		{"directory", "GET", "/api/api-tokens/ui/views/", 404, "text/plain; charset=utf-8", ""},
		{"directory without slash", "GET", "/api/api-tokens/ui/views", 404, "text/plain; charset=utf-8", ""},
		{"embed root", "GET", "/api/api-tokens/ui/static/app.js", 404, "text/plain; charset=utf-8", ""},
		{"dot segments", "GET", "/api/api-tokens/ui/../ui/app.js", 404, "text/plain; charset=utf-8", ""},
		{"outside the mount path", "GET", "/api/api-tokens/uix/app.js", 404, "text/plain; charset=utf-8", ""},
		{"other path", "GET", "/app.js", 404, "text/plain; charset=utf-8", ""},
		{"POST", "POST", "/api/api-tokens/ui/", 405, "text/plain; charset=utf-8", ""},
		{"DELETE asset", "DELETE", "/api/api-tokens/ui/app.js", 405, "text/plain; charset=utf-8", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := get(t, h, tt.method, tt.path, nil)
			if res.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.status)
			}
			if ct := res.Header.Get("Content-Type"); ct != tt.contentType {
				t.Errorf("Content-Type = %q, want %q", ct, tt.contentType)
			}
			b := body(t, res)
			if tt.contains != "" && !strings.Contains(b, tt.contains) {
				t.Errorf("body does not contain %q", tt.contains)
			}
			if tt.method == "HEAD" && b != "" {
				t.Errorf("HEAD answered with a body")
			}
			if tt.status == 405 && res.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow = %q", res.Header.Get("Allow"))
			}
		})
	}
}

func TestSecurityHeaders(t *testing.T) {
	h := mounted(t)
	for _, path := range []string{"/api/api-tokens/ui/", "/api/api-tokens/ui/app.js", "/api/api-tokens/ui/missing", "/api/api-tokens/ui"} {
		t.Run(path, func(t *testing.T) {
			res := get(t, h, "GET", path, nil)
			csp := res.Header.Get("Content-Security-Policy")
			for _, d := range []string{
				"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
				"frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'", "require-trusted-types-for 'script'",
			} {
				if !strings.Contains(csp, d) {
					t.Errorf("Content-Security-Policy %q lacks %q", csp, d)
				}
			}
			if strings.Contains(csp, "unsafe") {
				t.Errorf("Content-Security-Policy allows something unsafe: %q", csp)
			}
			for k, want := range map[string]string{
				"X-Content-Type-Options": "nosniff",
				"Referrer-Policy":        "no-referrer",
				"X-Frame-Options":        "DENY",
			} {
				if got := res.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

// The page obeys its own policy: no inline script or style anywhere in
// the embedded files.
func TestNoInlineScriptOrStyle(t *testing.T) {
	h := mounted(t)
	index := body(t, get(t, h, "GET", "/api/api-tokens/ui/", nil))
	if regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`).MatchString(index) {
		t.Error("index.html has an inline script")
	}
	if regexp.MustCompile(`(?i)<style|\sstyle=|\son[a-z]+=`).MatchString(index) {
		t.Error("index.html has an inline style or event handler attribute")
	}
	for _, js := range []string{"app.js", "dom.js", "ui.js", "chart.js", "views/detail.js", "views/tokens.js", "views/form.js", "views/overview.js", "views/login.js"} {
		src := body(t, get(t, h, "GET", "/api/api-tokens/ui/"+js, nil))
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute('style'", ".style."} {
			if strings.Contains(src, bad) {
				t.Errorf("%s uses %s", js, bad)
			}
		}
	}
}

func TestIndexAndRedirects(t *testing.T) {
	tests := []struct {
		name     string
		h        http.Handler
		target   string
		status   int
		location string
	}{
		{"mount path without slash", mounted(t), "/api/api-tokens/ui", 301, "ui/"},
		{"keeps the query", mounted(t), "/api/api-tokens/ui?x=1", 301, "ui/?x=1"},
		{"index.html", mounted(t), "/api/api-tokens/ui/index.html", 301, "./"},
		{"index", mounted(t), "/api/api-tokens/ui/", 200, ""},
		{"behind StripPrefix without slash", http.StripPrefix("/api/api-tokens/ui", dashboard.MustNew()), "/api/api-tokens/ui", 301, "ui/"},
		{"behind StripPrefix", http.StripPrefix("/api/api-tokens/ui", dashboard.MustNew()), "/api/api-tokens/ui/", 200, ""},
		{"behind StripPrefix with slash", http.StripPrefix("/api/api-tokens/ui/", dashboard.MustNew()), "/api/api-tokens/ui/", 200, ""},
		{"asset behind StripPrefix with slash", http.StripPrefix("/api/api-tokens/ui/", dashboard.MustNew()), "/api/api-tokens/ui/app.js", 200, ""},
		{"asset behind StripPrefix", http.StripPrefix("/api/api-tokens/ui", dashboard.MustNew()), "/api/api-tokens/ui/views/form.js", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := get(t, tt.h, "GET", tt.target, nil)
			if res.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.status)
			}
			if got := res.Header.Get("Location"); got != tt.location {
				t.Errorf("Location = %q, want %q", got, tt.location)
			}
		})
	}
}

func TestAPIBase(t *testing.T) {
	meta := regexp.MustCompile(`<meta name="apitoken-api-base" content="([^"]*)">`)
	tests := []struct {
		name    string
		opts    []dashboard.Option
		path    string
		base    string
		connect string
	}{
		{"parent of the mount path", []dashboard.Option{dashboard.WithMountPath("/api/api-tokens/ui/")}, "/api/api-tokens/ui/", "/api/api-tokens", "connect-src 'self';"},
		{"relative without a mount path", nil, "/", "..", "connect-src 'self';"},
		{"explicit path", []dashboard.Option{dashboard.WithAPIBase("/admin/tokens")}, "/", "/admin/tokens", "connect-src 'self';"},
		{"other origin", []dashboard.Option{dashboard.WithAPIBase("https://admin.example.com:8443/api/api-tokens")}, "/", "https://admin.example.com:8443/api/api-tokens", "connect-src 'self' https://admin.example.com:8443;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := dashboard.New(tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			path := tt.path
			res := get(t, h, "GET", path, nil)
			m := meta.FindStringSubmatch(body(t, res))
			if m == nil || m[1] != tt.base {
				t.Errorf("API base = %v, want %q", m, tt.base)
			}
			if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, tt.connect) {
				t.Errorf("Content-Security-Policy %q lacks %q", csp, tt.connect)
			}
		})
	}
}

func TestOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		opt  dashboard.Option
	}{
		{"relative mount path", dashboard.WithMountPath("ui")},
		{"API base with a query", dashboard.WithAPIBase("/api?x=1")},
		{"API base with credentials", dashboard.WithAPIBase("https://user:pw@example.com/api")},
		{"API base with a quote", dashboard.WithAPIBase(`/api"x`)},
		{"API base with a space", dashboard.WithAPIBase("/api x")},
		{"API base of another scheme", dashboard.WithAPIBase("javascript://example.com/x")},
		{"API base with a semicolon in the host", dashboard.WithAPIBase("https://a;b.example/x")},
		{"empty title", dashboard.WithTitle(" ")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := dashboard.New(tt.opt); err == nil {
				t.Fatal("New accepted it")
			} else if !strings.HasPrefix(err.Error(), "apitoken: ") {
				t.Errorf("error %q lacks the apitoken: prefix", err)
			}
		})
	}
	defer func() {
		if recover() == nil {
			t.Error("MustNew did not panic")
		}
	}()
	dashboard.MustNew(dashboard.WithMountPath("ui"))
}

func TestTitleIsEscaped(t *testing.T) {
	h, err := dashboard.New(dashboard.WithTitle(`Tokens <script>alert(1)</script>`))
	if err != nil {
		t.Fatal(err)
	}
	b := body(t, get(t, h, "GET", "/", nil))
	if strings.Contains(b, "<script>alert") || !strings.Contains(b, "Tokens &lt;script&gt;") {
		t.Errorf("title not escaped:\n%s", b)
	}
}

func TestConditionalGet(t *testing.T) {
	h := mounted(t)
	res := get(t, h, "GET", "/api/api-tokens/ui/app.js", nil)
	etag := res.Header.Get("ETag")
	if etag == "" || res.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q", etag, res.Header.Get("Cache-Control"))
	}
	res = get(t, h, "GET", "/api/api-tokens/ui/app.js", http.Header{"If-None-Match": {etag}})
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: status %d, want 304", res.StatusCode)
	}
}

package pathmatch_test

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/apitoken/apitoken/internal/pathmatch"
)

const testBase = "/api"

// readRequest parses a request the way net/http's server does, with the
// request target exactly as sent.
func readRequest(method, target string) (*http.Request, error) {
	return http.ReadRequest(bufio.NewReader(strings.NewReader(
		method + " " + target + " HTTP/1.1\r\nHost: example.com\r\n\r\n")))
}

// canonical reports whether the decoded path p equals its Clean form c, but
// for one trailing slash.
func canonical(p, c string) bool {
	return p == c || (len(p) == len(c)+1 && p[len(c)] == '/' && p[:len(c)] == c)
}

// allowPlain is the bare chain: r.URL.Path (decoded once) -> Clean ->
// Relative -> Allow.
func allowPlain(s pathmatch.Set, base string, r *http.Request) bool {
	rel, ok := pathmatch.Relative(pathmatch.Clean(r.URL.Path), base)
	return ok && s.Allow(r.Method, rel)
}

// allow is the decision a middleware must make (see the package
// documentation): the bare chain, refusing decoded paths that are not
// already clean.
func allow(s pathmatch.Set, base string, r *http.Request) bool {
	if !canonical(r.URL.Path, pathmatch.Clean(r.URL.Path)) {
		return false
	}
	return allowPlain(s, base, r)
}

// bypassTests are raw request targets that must be refused for the allowed
// list ["/products*"] under /api.
var bypassTests = []struct {
	name string
	raw  string
	// plainAllows is true when the bare chain without the canonical check
	// lets the request through; ServeMux would then serve /api/orders/.
	plainAllows bool
}{
	{name: "dot dot", raw: "/api/products/../orders"},
	{name: "encoded slash before dot dot", raw: "/api/products/..%2forders"},
	{name: "encoded dot dot", raw: "/api/products/%2e%2e/orders"},
	{name: "double leading slash", raw: "//api/orders"},
	{name: "encoded slashes", raw: "/api/products%2f..%2forders"},
	{name: "upper case encoding", raw: "/api/products/%2E%2E/orders"},
	{name: "dot segment", raw: "/api/./orders"},
	{name: "dot dot at end", raw: "/api/products/.."},
	{name: "out of base", raw: "/api/../orders"},
	{name: "base sibling", raw: "/apix/products"},
	{name: "encoded base slash", raw: "/api%2fproducts/../../orders"},
	{name: "encoded dot dot into products", raw: "/api/orders/%2e%2e/products", plainAllows: true},
	{name: "encoded dot dot into products deep", raw: "/api/orders/x/%2e%2e/%2e%2e/products/1", plainAllows: true},
	{name: "encoded dot into products", raw: "/api/orders/%2e%2e/./products", plainAllows: true},
}

func TestBypass(t *testing.T) {
	s := mustCompileAll(t, "/products*")
	for _, tt := range bypassTests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tt.raw, nil)
			if allow(s, testBase, r) {
				t.Errorf("%q (r.URL.Path %q) allowed", tt.raw, r.URL.Path)
			}
			if got := allowPlain(s, testBase, r); got != tt.plainAllows {
				t.Errorf("%q (r.URL.Path %q): bare chain allows = %v, want %v", tt.raw, r.URL.Path, got, tt.plainAllows)
			}
		})
	}
}

func TestAllowedRequests(t *testing.T) {
	s := mustCompileAll(t, "/products*", "/stores/*/brands")
	tests := []struct {
		name string
		raw  string
		want bool
	}{
		{name: "products", raw: "/api/products", want: true},
		{name: "products trailing slash", raw: "/api/products/", want: true},
		{name: "product id", raw: "/api/products/123", want: true},
		{name: "product deep", raw: "/api/products/meta/brands", want: true},
		{name: "encoded letter", raw: "/api/%70roducts/1", want: true},
		{name: "with query", raw: "/api/products?id=1", want: true},
		{name: "store brands", raw: "/api/stores/1/brands", want: true},
		{name: "nested store brands", raw: "/api/stores/1/2/brands", want: false},
		{name: "encoded slash in store id", raw: "/api/stores/1%2f2/brands", want: false},
		{name: "orders", raw: "/api/orders", want: false},
		{name: "base", raw: "/api", want: false},
		{name: "unprefixed products", raw: "/products", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tt.raw, nil)
			if got := allow(s, testBase, r); got != tt.want {
				t.Errorf("%q (r.URL.Path %q) allowed = %v, want %v", tt.raw, r.URL.Path, got, tt.want)
			}
		})
	}
}

// muxPatterns are the ServeMux patterns of FuzzServeMuxBypass, and whether
// serving them is fine for a token restricted to ["/products*",
// "/stores/*/brands"] under /api. The catch-all "/" stands for a 404 page:
// it serves nothing sensitive.
var muxPatterns = map[string]bool{
	"/api/products":           true,
	"/api/products/":          true,
	"/api/stores/{id}/brands": true,
	"/api/orders":             false,
	"/api/orders/":            false,
	"/":                       true,
}

func newTestMux() *http.ServeMux {
	mux := http.NewServeMux()
	for p := range muxPatterns {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Pattern", p)
		})
	}
	return mux
}

// FuzzServeMuxBypass checks the middleware decision (allow) against what an
// http.ServeMux behind it would serve: a request allowed by the decision
// must not reach the /api/orders handlers. A redirect from the mux is
// followed once, as a client would, and the new request is checked again,
// as the middleware would.
func FuzzServeMuxBypass(f *testing.F) {
	for _, tt := range bypassTests {
		f.Add(tt.raw)
	}
	for _, raw := range []string{
		"/api/products/1",
		"/api/stores/1/brands",
		"/api/stores/%2e%2e/orders/brands",
		"/api/orders%2f..%2fproducts",
		"http://example.com/api/orders/%2e%2e/products",
		"/api/products/..",
		"/api//products",
	} {
		f.Add(raw)
	}
	s := mustCompileAll(f, "/products*", "/stores/*/brands")
	mux := newTestMux()
	f.Fuzz(func(t *testing.T, raw string) {
		if strings.ContainsAny(raw, "\r\n") {
			t.Skip("not a request target")
		}
		r, err := readRequest(http.MethodGet, raw)
		if err != nil {
			t.Skip("rejected by net/http")
		}
		for hop := 0; hop < 2; hop++ {
			if !allow(s, testBase, r) {
				return
			}
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, r)
			switch w.Code {
			case http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
				loc := w.Header().Get("Location")
				if r, err = readRequest(http.MethodGet, loc); err != nil {
					return // not followable
				}
				continue
			case http.StatusNotFound:
				return
			}
			p := w.Header().Get("X-Pattern")
			if ok, known := muxPatterns[p]; !known || !ok {
				t.Fatalf("raw %q (hop %d, r.URL.Path %q, RawPath %q) allowed, but ServeMux answered %d with pattern %q",
					raw, hop, r.URL.Path, r.URL.RawPath, w.Code, p)
			}
			return
		}
	})
}

package pathmatch_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gobwas/glob"

	"github.com/apitoken/apitoken/internal/pathmatch"
)

func mustCompileAll(t testing.TB, patterns ...string) pathmatch.Set {
	t.Helper()
	s, err := pathmatch.CompileAll(patterns)
	if err != nil {
		t.Fatalf("CompileAll(%q): %v", patterns, err)
	}
	return s
}

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		method  string
		path    string
		want    bool
	}{
		// The spec's examples.
		{name: "prefix exact", pattern: "/products*", method: "GET", path: "/products", want: true},
		{name: "prefix one segment", pattern: "/products*", method: "GET", path: "/products/123", want: true},
		{name: "prefix two segments", pattern: "/products*", method: "GET", path: "/products/meta/brands", want: true},
		{name: "prefix other endpoint", pattern: "/products*", method: "GET", path: "/orders", want: false},
		{name: "prefix root", pattern: "/products*", method: "GET", path: "/", want: false},
		{name: "prefix is a plain prefix", pattern: "/products*", method: "GET", path: "/products-archive", want: true},
		{name: "prefix needs the whole literal", pattern: "/products*", method: "GET", path: "/product", want: false},
		{name: "inner star 1", pattern: "/stores/*/brands", method: "GET", path: "/stores/1/brands", want: true},
		{name: "inner star 2", pattern: "/stores/*/brands", method: "GET", path: "/stores/2/brands", want: true},
		{name: "inner star two segments", pattern: "/stores/*/brands", method: "GET", path: "/stores/1/2/brands", want: false},
		{name: "inner star empty segment", pattern: "/stores/*/brands", method: "GET", path: "/stores/brands", want: false},
		{name: "inner star suffix", pattern: "/stores/*/brands", method: "GET", path: "/stores/1/brands/9", want: false},
		{name: "inner star other", pattern: "/stores/*/brands", method: "GET", path: "/stores/1/orders", want: false},

		// `**` crosses segments anywhere.
		{name: "double star inner", pattern: "/stores/**/brands", method: "GET", path: "/stores/1/2/brands", want: true},
		{name: "double star inner one", pattern: "/stores/**/brands", method: "GET", path: "/stores/1/brands", want: true},
		{name: "double star is not globstar", pattern: "/stores/**/brands", method: "GET", path: "/stores/brands", want: false},
		{name: "double star trailing", pattern: "/products/**", method: "GET", path: "/products/1/2", want: true},
		{name: "double star trailing not parent", pattern: "/products/**", method: "GET", path: "/products", want: false},

		// Trailing `/*` is a trailing star too.
		{name: "slash star below", pattern: "/products/*", method: "GET", path: "/products/1/2", want: true},
		{name: "slash star not parent", pattern: "/products/*", method: "GET", path: "/products", want: false},
		{name: "slash star not sibling", pattern: "/products/*", method: "GET", path: "/products-archive", want: false},
		{name: "root star", pattern: "/*", method: "GET", path: "/", want: true},
		{name: "root star deep", pattern: "/*", method: "GET", path: "/a/b/c", want: true},

		// Segment-bounded prefix.
		{name: "segment prefix self", pattern: "/products{,/**}", method: "GET", path: "/products", want: true},
		{name: "segment prefix below", pattern: "/products{,/**}", method: "GET", path: "/products/1/2", want: true},
		{name: "segment prefix sibling", pattern: "/products{,/**}", method: "GET", path: "/products-archive", want: false},

		// Exact patterns and their normalisation.
		{name: "exact", pattern: "/products", method: "GET", path: "/products", want: true},
		{name: "exact not below", pattern: "/products", method: "GET", path: "/products/1", want: false},
		{name: "trailing slash pattern", pattern: "/products/", method: "GET", path: "/products", want: true},
		{name: "trailing slash pattern not below", pattern: "/products/", method: "GET", path: "/products/1", want: false},
		{name: "double slash pattern", pattern: "//stores//*/brands", method: "GET", path: "/stores/1/brands", want: true},
		{name: "dot segment pattern", pattern: "/./products/.", method: "GET", path: "/products", want: true},
		{name: "star before trailing slash is one segment", pattern: "/stores/*/", method: "GET", path: "/stores/1", want: true},
		{name: "star before trailing slash not deeper", pattern: "/stores/*/", method: "GET", path: "/stores/1/2", want: false},
		{name: "root star slash is one segment", pattern: "/*/", method: "GET", path: "/a/b", want: false},
		{name: "star before dot segment is one segment", pattern: "/a*/.", method: "GET", path: "/ab/c", want: false},
		{name: "root", pattern: "/", method: "GET", path: "/", want: true},
		{name: "root not below", pattern: "/", method: "GET", path: "/a", want: false},

		// Escapes.
		{name: "escaped trailing star literal", pattern: `/a\*`, method: "GET", path: "/a*", want: true},
		{name: "escaped trailing star not prefix", pattern: `/a\*`, method: "GET", path: "/a*b", want: false},
		{name: "escaped star then star", pattern: `/a\**`, method: "GET", path: "/a*/b/c", want: true},
		{name: "escaped backslash then star", pattern: `/a\\*`, method: "GET", path: `/a\/b/c`, want: true},

		// Other glob syntax.
		{name: "question mark", pattern: "/v?/x", method: "GET", path: "/v1/x", want: true},
		{name: "question mark not slash", pattern: "/v?x", method: "GET", path: "/v/x", want: false},
		{name: "class", pattern: "/v[12]/x", method: "GET", path: "/v2/x", want: true},
		{name: "class miss", pattern: "/v[12]/x", method: "GET", path: "/v3/x", want: false},
		{name: "question mark is one character", pattern: "/caf?", method: "GET", path: "/caf\u00e9", want: true},
		{name: "negated class is not segment bound", pattern: "/a[!x]b", method: "GET", path: "/a/b", want: true},
		{name: "one star and one group in a segment", pattern: "/v*{1,2}/x", method: "GET", path: "/vv2/x", want: true},
		{name: "one inner double star and others", pattern: "/*/**/brands/*/x*", method: "GET", path: "/s/1/2/brands/b/xy/z", want: true},
		{name: "trailing star aside", pattern: "/v*-*", method: "GET", path: "/v1-2/3", want: true},
		{name: "alternatives", pattern: "/{products,stores}/*", method: "GET", path: "/stores/1/x", want: true},
		{name: "mux-style wildcard is literal", pattern: "/stores/{id}/brands", method: "GET", path: "/stores/1/brands", want: false},

		// Methods.
		{name: "method match", pattern: "GET /products*", method: "GET", path: "/products/1", want: true},
		{name: "method head allowed by get", pattern: "GET /products*", method: "HEAD", path: "/products/1", want: true},
		{name: "method other refused", pattern: "GET /products*", method: "POST", path: "/products/1", want: false},
		{name: "method is case sensitive", pattern: "GET /products*", method: "get", path: "/products/1", want: false},
		{name: "method path still matters", pattern: "GET /products*", method: "GET", path: "/orders", want: false},
		{name: "method post", pattern: "POST /orders", method: "POST", path: "/orders", want: true},
		{name: "method head pattern", pattern: "HEAD /x", method: "HEAD", path: "/x", want: true},
		{name: "method head pattern not get", pattern: "HEAD /x", method: "GET", path: "/x", want: false},
		{name: "method post not head", pattern: "POST /x", method: "HEAD", path: "/x", want: false},
		{name: "no method any", pattern: "/x", method: "DELETE", path: "/x", want: true},
		{name: "no method empty", pattern: "/x", method: "", path: "/x", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := pathmatch.Compile(tt.pattern)
			if err != nil {
				t.Fatalf("Compile(%q): %v", tt.pattern, err)
			}
			if got := p.Match(tt.method, tt.path); got != tt.want {
				t.Errorf("Compile(%q).Match(%q, %q) = %v, want %v", tt.pattern, tt.method, tt.path, got, tt.want)
			}
		})
	}
}

func TestCompileFields(t *testing.T) {
	tests := []struct {
		name       string
		pattern    string
		wantMethod string
	}{
		{name: "no method", pattern: "/products*", wantMethod: ""},
		{name: "get", pattern: "GET /products*", wantMethod: "GET"},
		{name: "custom token", pattern: "PROPFIND /dav", wantMethod: "PROPFIND"},
		{name: "path with space", pattern: "/a b", wantMethod: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := pathmatch.Compile(tt.pattern)
			if err != nil {
				t.Fatalf("Compile(%q): %v", tt.pattern, err)
			}
			if p.Raw != tt.pattern {
				t.Errorf("Raw = %q, want %q", p.Raw, tt.pattern)
			}
			if p.Method != tt.wantMethod {
				t.Errorf("Method = %q, want %q", p.Method, tt.wantMethod)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	long := "/" + strings.Repeat("a", 1024)
	tests := []struct {
		name    string
		pattern string
		wantErr string
	}{
		{name: "empty", pattern: "", wantErr: `apitoken: invalid endpoint pattern "": empty pattern`},
		{name: "no leading slash", pattern: "products*", wantErr: `apitoken: invalid endpoint pattern "products*": path must start with "/"`},
		{name: "relative after method", pattern: "GET products", wantErr: `apitoken: invalid endpoint pattern "GET products": path must start with "/" after the method and one space`},
		{name: "two spaces", pattern: "GET  /products", wantErr: `apitoken: invalid endpoint pattern "GET  /products": path must start with "/" after the method and one space`},
		{name: "lowercase method", pattern: "get /products", wantErr: `apitoken: invalid endpoint pattern "get /products": method must be an uppercase token of letters followed by one space`},
		{name: "method with digit", pattern: "GET2 /products", wantErr: `apitoken: invalid endpoint pattern "GET2 /products": method must be an uppercase token of letters followed by one space`},
		{name: "tab separator", pattern: "GET\t/products", wantErr: `apitoken: invalid endpoint pattern "GET\t/products": path must start with "/"`},
		{name: "leading space", pattern: " /products", wantErr: `apitoken: invalid endpoint pattern " /products": path must start with "/"`},
		{name: "method only", pattern: "GET", wantErr: `apitoken: invalid endpoint pattern "GET": path must start with "/"`},
		{name: "dot dot", pattern: "/a/../b", wantErr: `apitoken: invalid endpoint pattern "/a/../b": contains a ".." segment`},
		{name: "unclosed class", pattern: "/a[", wantErr: `apitoken: invalid endpoint pattern "/a[": syntax error: `},
		{name: "unclosed brace", pattern: "/a{b,c", wantErr: `apitoken: invalid endpoint pattern "/a{b,c": syntax error: `},
		{name: "bad range", pattern: "GET /[z-a]", wantErr: `apitoken: invalid endpoint pattern "GET /[z-a]": syntax error: `},
		{name: "class with two ranges", pattern: "/[a-z0-9]", wantErr: `apitoken: invalid endpoint pattern "/[a-z0-9]": syntax error: `},
		{name: "two stars in a segment", pattern: "/*-*-x", wantErr: `apitoken: invalid endpoint pattern "/*-*-x": too complex: more than one * in a path segment (a trailing * aside)`},
		{name: "star and double star in a segment", pattern: "/a*b**c", wantErr: `apitoken: invalid endpoint pattern "/a*b**c": too complex: more than one * in a path segment`},
		{name: "stars in alternatives", pattern: "/{*.json,*.xml}", wantErr: `apitoken: invalid endpoint pattern "/{*.json,*.xml}": too complex: more than one * in a path segment`},
		{name: "stars in alternatives across slash", pattern: "/{a/*,b/*}", wantErr: `apitoken: invalid endpoint pattern "/{a/*,b/*}": too complex: more than one * in a path segment`},
		{name: "star exposed by trailing slash is not free", pattern: "/*a*/", wantErr: `apitoken: invalid endpoint pattern "/*a*/": too complex: more than one * in a path segment`},
		{name: "two groups in a segment", pattern: "/{a,aa}{a,aa}", wantErr: `apitoken: invalid endpoint pattern "/{a,aa}{a,aa}": too complex: more than one {...} group in a path segment`},
		{name: "nested groups", pattern: "/{a,{b,c}}", wantErr: `apitoken: invalid endpoint pattern "/{a,{b,c}}": too complex: nested {...} groups`},
		{name: "two inner double stars", pattern: "/**/x/**/y", wantErr: `apitoken: invalid endpoint pattern "/**/x/**/y": too complex: more than one ** before the end of the pattern`},
		{name: "too long", pattern: long, wantErr: `apitoken: invalid endpoint pattern "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...": longer than 1024 bytes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := pathmatch.Compile(tt.pattern)
			if err == nil {
				t.Fatalf("Compile(%q) = %+v, want error", tt.pattern, p)
			}
			if !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("Compile(%q) error = %q, want prefix %q", tt.pattern, err, tt.wantErr)
			}
			if p.Match("GET", "/") {
				t.Errorf("failed Compile(%q) returned a Pattern that matches", tt.pattern)
			}
		})
	}
}

func TestCompileMaxLen(t *testing.T) {
	p := "/" + strings.Repeat("a", 1023)
	if _, err := pathmatch.Compile(p); err != nil {
		t.Fatalf("Compile(1024 bytes): %v", err)
	}
}

func TestCompileSyntaxErrorUnwraps(t *testing.T) {
	_, err := pathmatch.Compile("/a[")
	var se *glob.SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("error %v does not unwrap to *glob.SyntaxError", err)
	}
}

func TestSet(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		method   string
		path     string
		want     bool
	}{
		{name: "nil allows all", patterns: nil, method: "DELETE", path: "/orders/1", want: true},
		{name: "empty allows all", patterns: []string{}, method: "POST", path: "/anything", want: true},
		{name: "first matches", patterns: []string{"/products*", "/stores/*/brands"}, method: "GET", path: "/products/1", want: true},
		{name: "second matches", patterns: []string{"/products*", "/stores/*/brands"}, method: "GET", path: "/stores/7/brands", want: true},
		{name: "none matches", patterns: []string{"/products*", "/stores/*/brands"}, method: "GET", path: "/orders", want: false},
		{name: "nested store refused", patterns: []string{"/products*", "/stores/*/brands"}, method: "GET", path: "/stores/1/2/brands", want: false},
		{name: "method mix allowed", patterns: []string{"GET /orders*", "POST /orders"}, method: "POST", path: "/orders", want: true},
		{name: "method mix refused", patterns: []string{"GET /orders*", "POST /orders"}, method: "POST", path: "/orders/1", want: false},
		{name: "method mix head", patterns: []string{"GET /orders*", "POST /orders"}, method: "HEAD", path: "/orders/1", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustCompileAll(t, tt.patterns...)
			if s.Len() != len(tt.patterns) {
				t.Errorf("Len() = %d, want %d", s.Len(), len(tt.patterns))
			}
			if got := s.Allow(tt.method, tt.path); got != tt.want {
				t.Errorf("Allow(%q, %q) = %v, want %v", tt.method, tt.path, got, tt.want)
			}
		})
	}
}

func TestLongPaths(t *testing.T) {
	s := mustCompileAll(t, "/products*")
	tests := []struct {
		name string
		set  pathmatch.Set
		path string
		want bool
	}{
		{name: "8 KiB allowed", set: s, path: "/products/" + strings.Repeat("a", 8<<10-len("/products/")), want: true},
		{name: "over 8 KiB refused", set: s, path: "/products/" + strings.Repeat("a", 8<<10-len("/products/")+1), want: false},
		{name: "empty set allows long paths", set: pathmatch.Set{}, path: "/products/" + strings.Repeat("a", 16<<10), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.set.Allow("GET", tt.path); got != tt.want {
				t.Errorf("Allow(GET, %d bytes) = %v, want %v", len(tt.path), got, tt.want)
			}
		})
	}
}

// TestAdversarialPaths matches patterns at the complexity limits against
// long paths built to make a backtracking matcher work hard. It has no
// timing assertion: a regression shows as the test timing out.
func TestAdversarialPaths(t *testing.T) {
	patterns := []string{
		"/**/*a/*a/*a/*a/*a/c/**",
		"/*[!x]/*[!x]/*[!x]/c*",
		"/?[!x]a**a{a,aa}/?",
		"/{a,aa}*/{a,aa}*/{a,aa}*/c",
		"/*a{a,aa}?",
		"/*a?",
		"/**{,a}/{a*,b}?b**",
	}
	paths := []string{
		"/" + strings.Repeat("a", 8<<10-1),
		strings.Repeat("/a", 4<<10),
		"/" + strings.Repeat("aab/", 2<<10-1) + "aa",
	}
	for _, pattern := range patterns {
		t.Run(pattern, func(t *testing.T) {
			p, err := pathmatch.Compile(pattern)
			if err != nil {
				t.Fatalf("Compile(%q): %v", pattern, err)
			}
			for _, path := range paths {
				if len(path) > 8<<10 {
					t.Fatalf("path of %d bytes is over the limit", len(path))
				}
				p.Match("GET", path)
			}
		})
	}
}

func TestZeroSetAllowsAll(t *testing.T) {
	var s pathmatch.Set
	if !s.Allow("GET", "/orders") || s.Len() != 0 {
		t.Errorf("zero Set: Allow = false or Len = %d, want allow all and 0", s.Len())
	}
}

func TestZeroPatternMatchesNothing(t *testing.T) {
	var p pathmatch.Pattern
	if p.Match("GET", "/") {
		t.Error("zero Pattern matched")
	}
}

func TestCompileAllError(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		wantErr  string
	}{
		{name: "first bad", patterns: []string{"/a[", "nope"}, wantErr: `apitoken: invalid endpoint pattern "/a[": syntax error: `},
		{name: "later bad", patterns: []string{"/products*", "", "/a["}, wantErr: `apitoken: invalid endpoint pattern "": empty pattern`},
		{name: "no slash", patterns: []string{"/ok", "orders"}, wantErr: `apitoken: invalid endpoint pattern "orders": path must start with "/"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := pathmatch.CompileAll(tt.patterns)
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("CompileAll(%q) error = %v, want prefix %q", tt.patterns, err, tt.wantErr)
			}
			// Fail closed: a caller dropping the error must not get the
			// allow-all zero Set.
			if s.Allow("GET", "/ok") {
				t.Error("Set returned with an error allows requests")
			}
			if verr := pathmatch.Validate(tt.patterns); verr == nil || verr.Error() != err.Error() {
				t.Errorf("Validate = %v, want %v", verr, err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		wantErr  bool
	}{
		{name: "nil", patterns: nil},
		{name: "good", patterns: []string{"/products*", "GET /stores/*/brands", "/products/"}},
		{name: "bad", patterns: []string{"/products*", "/x{"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := pathmatch.Validate(tt.patterns); (err != nil) != tt.wantErr {
				t.Errorf("Validate(%q) = %v, wantErr %v", tt.patterns, err, tt.wantErr)
			}
		})
	}
}

func TestClean(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "empty", in: "", want: "/"},
		{name: "root", in: "/", want: "/"},
		{name: "clean", in: "/products/1", want: "/products/1"},
		{name: "dot dot", in: "/products/../orders", want: "/orders"},
		{name: "double slash", in: "//orders", want: "/orders"},
		{name: "dot and trailing slash", in: "/./a/", want: "/a"},
		{name: "trailing slash", in: "/products/", want: "/products"},
		{name: "above root", in: "/../../etc", want: "/etc"},
		{name: "only dots", in: "/..", want: "/"},
		{name: "no leading slash", in: "products", want: "/products"},
		{name: "no leading slash dot dot", in: "../orders", want: "/orders"},
		{name: "inner slashes", in: "/a//b///c", want: "/a/b/c"},
		{name: "dots in names kept", in: "/a/..b/c.", want: "/a/..b/c."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pathmatch.Clean(tt.in); got != tt.want {
				t.Errorf("Clean(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRelative(t *testing.T) {
	tests := []struct {
		name   string
		p      string
		base   string
		want   string
		wantOK bool
	}{
		{name: "below base", p: "/api/products", base: "/api", want: "/products", wantOK: true},
		{name: "deep below base", p: "/api/products/1/x", base: "/api", want: "/products/1/x", wantOK: true},
		{name: "base itself", p: "/api", base: "/api", want: "/", wantOK: true},
		{name: "sibling with base prefix", p: "/apix", base: "/api", want: "", wantOK: false},
		{name: "sibling below", p: "/apix/products", base: "/api", want: "", wantOK: false},
		{name: "outside", p: "/orders", base: "/api", want: "", wantOK: false},
		{name: "root outside", p: "/", base: "/api", want: "", wantOK: false},
		{name: "no base empty", p: "/products", base: "", want: "/products", wantOK: true},
		{name: "no base root", p: "/products", base: "/", want: "/products", wantOK: true},
		{name: "no base root path", p: "/", base: "", want: "/", wantOK: true},
		{name: "nested base", p: "/v1/api/products", base: "/v1/api", want: "/products", wantOK: true},
		{name: "base with trailing slash tolerated", p: "/api/products", base: "/api/", want: "/products", wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := pathmatch.Relative(tt.p, tt.base)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Relative(%q, %q) = %q, %v, want %q, %v", tt.p, tt.base, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

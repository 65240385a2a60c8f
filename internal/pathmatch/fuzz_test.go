package pathmatch_test

import (
	"strings"
	"testing"

	"github.com/apitoken/apitoken/internal/pathmatch"
)

// FuzzCompile checks that Compile never panics, and that a compiled pattern
// matches any path without panicking and consistently.
func FuzzCompile(f *testing.F) {
	for _, seed := range []struct{ pattern, path string }{
		{"/products*", "/products/meta/brands"},
		{"/stores/*/brands", "/stores/1/2/brands"},
		{"GET /products*", "/products"},
		{"/products/", "/products"},
		{"//a/./b/", "/a/b"},
		{"/a/../b", "/b"},
		{`/a\*`, "/a*"},
		{`/a\**`, "/a*/b"},
		{`/a\`, "/a"},
		{"/***", "/x/y"},
		{"/{a,/../}b", "/ab"},
		{"/[!/]*", "/x"},
		{"/{,/**}", "/"},
		{"/[z-a]", "/b"},
		{"POST  /x", "/x"},
		{"/*a*a*c", "/aaa"},
		{"/{a,aa}{a,aa}", "/aa"},
		{"/[!x]*/{a,b*}/**", "/a/b/c"},
		{"/", "/"},
		{"/stores/*", "/stores/1/2"},
		{"/*", "/a/b"},
	} {
		f.Add(seed.pattern, seed.path)
	}
	f.Fuzz(func(t *testing.T, pattern, path string) {
		p, err := pathmatch.Compile(pattern)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "apitoken: invalid endpoint pattern ") {
				t.Fatalf("Compile(%q) error %q lacks the prefix", pattern, err)
			}
			if p.Match("GET", "/") || p.Match("GET", path) {
				t.Fatalf("failed Compile(%q) returned a matching Pattern", pattern)
			}
			return
		}
		if p.Raw != pattern {
			t.Fatalf("Raw = %q, want %q", p.Raw, pattern)
		}
		if err := pathmatch.Validate([]string{pattern}); err != nil {
			t.Fatalf("Compile(%q) succeeded, Validate failed: %v", pattern, err)
		}
		clean := pathmatch.Clean(path)
		own := p.Method
		if own == "" {
			own = "GET"
		}
		for _, in := range []string{path, clean, "/", "", "/products", "/a/b/c"} {
			pathOK := p.Match(own, in)
			if pathOK != p.Match(own, in) {
				t.Fatalf("Compile(%q).Match(%q) is not deterministic", pattern, in)
			}
			for _, m := range []struct {
				method string
				want   bool
			}{
				{"GET", pathOK && (p.Method == "" || p.Method == "GET")},
				{"HEAD", pathOK && (p.Method == "" || p.Method == "GET" || p.Method == "HEAD")},
				{"DELETE", pathOK && (p.Method == "" || p.Method == "DELETE")},
			} {
				if got := p.Match(m.method, in); got != m.want {
					t.Fatalf("Compile(%q).Match(%q, %q) = %v, want %v", pattern, m.method, in, got, m.want)
				}
			}
		}
		// A pattern without glob syntax matches the Clean form of its own
		// path.
		if p.Method == "" && !strings.ContainsAny(pattern, `*?[]{}\`) {
			if c := pathmatch.Clean(pattern); !p.Match("GET", c) {
				t.Fatalf("literal Compile(%q) does not match %q", pattern, c)
			}
		}
		// Normalising a trailing "/" away never widens a pattern.
		if ps, err := pathmatch.Compile(pattern + "/"); err == nil {
			for _, in := range []string{path, clean, "/", "/a/b/c"} {
				if ps.Match(own, in) && !p.Match(own, in) {
					t.Fatalf("Compile(%q) matches %q, Compile(%q) does not", pattern+"/", in, pattern)
				}
			}
		}
		s, err := pathmatch.CompileAll([]string{pattern})
		if err != nil {
			t.Fatalf("CompileAll(%q): %v", pattern, err)
		}
		if s.Allow("GET", clean) != p.Match("GET", clean) {
			t.Fatalf("Set and Pattern disagree on %q", clean)
		}
	})
}

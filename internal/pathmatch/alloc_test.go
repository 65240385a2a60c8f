package pathmatch_test

import (
	"testing"

	"github.com/apitoken/apitoken/internal/pathmatch"
)

func TestCleanDoesNotAllocate(t *testing.T) {
	tests := []struct {
		name string
		path string
	}{
		{name: "root", path: "/"},
		{name: "one segment", path: "/products"},
		{name: "deep", path: "/api/products/meta/brands"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			if n := testing.AllocsPerRun(100, func() { got = pathmatch.Clean(tt.path) }); n != 0 {
				t.Errorf("Clean(%q) allocates %v times", tt.path, n)
			}
			if got != tt.path {
				t.Errorf("Clean(%q) = %q", tt.path, got)
			}
		})
	}
}

func TestAllowDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race (sync.Pool drops items at random)")
	}
	s := mustCompileAll(t, "/products*", "/stores/*/brands", "GET /orders/*/items", "/v[12]/{a,b}/**/x")
	tests := []struct {
		name   string
		method string
		path   string
	}{
		{name: "prefix", method: "GET", path: "/products/meta/brands"},
		{name: "inner star", method: "GET", path: "/stores/1/brands"},
		{name: "method", method: "HEAD", path: "/orders/1/items"},
		{name: "backtracking", method: "GET", path: "/v1/a/b/c/d/x"},
		{name: "no match", method: "GET", path: "/customers/1/addresses/2"},
		{name: "relative", method: "GET", path: "/api/products/1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, func() {
				rel, _ := pathmatch.Relative(tt.path, "/api")
				s.Allow(tt.method, rel)
				s.Allow(tt.method, tt.path)
			}); n != 0 {
				t.Errorf("Allow(%q, %q) allocates %v times", tt.method, tt.path, n)
			}
		})
	}
}

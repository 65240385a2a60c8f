package pathmatch_test

import (
	"testing"

	"github.com/apitoken/apitoken/internal/pathmatch"
)

func BenchmarkSetAllow(b *testing.B) {
	s := mustCompileAll(b, "/products*", "/stores/*/brands", "GET /orders/*/items")
	tests := []struct {
		name   string
		method string
		path   string
		want   bool
	}{
		{name: "match first", method: "GET", path: "/products/meta/brands", want: true},
		{name: "match inner star", method: "GET", path: "/stores/42/brands", want: true},
		{name: "match method", method: "HEAD", path: "/orders/42/items", want: true},
		{name: "no match", method: "GET", path: "/customers/42/addresses", want: false},
		{name: "no match near miss", method: "GET", path: "/stores/1/2/brands", want: false},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if s.Allow(tt.method, tt.path) != tt.want {
					b.Fatal("wrong result")
				}
			}
		})
	}
}

func BenchmarkClean(b *testing.B) {
	tests := []struct {
		name string
		path string
	}{
		{name: "clean", path: "/api/products/meta/brands"},
		{name: "dirty", path: "/api/products/../orders//1/"},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = pathmatch.Clean(tt.path)
			}
		})
	}
}

package main

import "testing"

func TestParseBenchAndMedians(t *testing.T) {
	out := []byte(`goos: linux
BenchmarkContenders/bare-2         	    2000	       103.3 ns/op	      32 B/op	       2 allocs/op
BenchmarkContenders/apitoken-2     	    2000	      1893 ns/op	     965 B/op	       5 allocs/op
BenchmarkContenders/bare-2         	    2000	       101.0 ns/op	      32 B/op	       2 allocs/op
BenchmarkContenders/bare-2         	    2000	       200.0 ns/op	      32 B/op	       2 allocs/op
BenchmarkScale/verify/tokens=1000-2         	    2000	       286.7 ns/op	       517.4 B/cached-token	       0 B/op	       0 allocs/op
PASS
ok  	github.com/apitoken/apitoken/bench	0.334s
`)
	samples := parseBench(out)
	if len(samples) != 5 {
		t.Fatalf("%d samples, want 5: %+v", len(samples), samples)
	}
	m := medians(samples)
	if got := m["BenchmarkContenders/bare"]["ns/op"]; got != 103.3 {
		t.Errorf("median of bare = %v, want 103.3", got)
	}
	if got := m["BenchmarkContenders/apitoken"]["allocs/op"]; got != 5 {
		t.Errorf("apitoken allocs = %v", got)
	}
	if got := m["BenchmarkScale/verify/tokens=1000"]["B/cached-token"]; got != 517.4 {
		t.Errorf("custom metric = %v", got)
	}
}

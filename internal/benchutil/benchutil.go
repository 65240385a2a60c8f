// Package benchutil holds what the repository's HTTP benchmarks share: a
// ResponseWriter that costs nothing and a loop serving one request.
package benchutil

import (
	"net/http"
	"testing"
)

// DiscardWriter is a ResponseWriter that costs as little as possible, so a
// benchmark measures the handler, not the recorder. Its header map is
// cleared between requests, keeping its storage, as a server's fresh map
// would start empty.
type DiscardWriter struct {
	H      http.Header
	Status int
}

// NewDiscardWriter returns a DiscardWriter with an empty header map.
func NewDiscardWriter() *DiscardWriter { return &DiscardWriter{H: http.Header{}} }

func (w *DiscardWriter) Header() http.Header         { return w.H }
func (w *DiscardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *DiscardWriter) WriteHeader(code int)        { w.Status = code }

// Serve clears the header map and serves r to h.
func (w *DiscardWriter) Serve(h http.Handler, r *http.Request) {
	clear(w.H)
	w.Status = 0
	h.ServeHTTP(w, r)
}

// ServeLoop serves r to h b.N times, after one warm-up request that must be
// answered 200.
func ServeLoop(b *testing.B, h http.Handler, r *http.Request) {
	b.Helper()
	w := NewDiscardWriter()
	w.Serve(h, r)
	if w.Status != 0 && w.Status != http.StatusOK {
		b.Fatalf("status %d", w.Status)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.Serve(h, r)
	}
}

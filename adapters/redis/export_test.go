package apitokenredis

import "testing"

// BatchStats logs how many round trips the limiter's decisions took, for
// the benchmarks.
func (l *Limiter) BatchStats(tb testing.TB) {
	n, rt := l.batch.sent.Load(), l.batch.batches.Load()
	if rt > 0 {
		tb.Logf("%d decisions sent in %d round trips (%.1f per pipeline); %d workers running", n, rt, float64(n)/float64(rt), l.batch.workers.Load())
	}
}

package postgres_test

import (
	"testing"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/storetest"
)

// TestConformance runs the shared store suite on PostgreSQL, every subtest
// in a fresh schema.
func TestConformance(t *testing.T) {
	testDSN(t)
	storetest.Run(t, func(t *testing.T) apitoken.Store {
		s, _, _ := newStore(t)
		return s
	})
}

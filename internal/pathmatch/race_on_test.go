//go:build race

package pathmatch_test

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation counts of code that pools (gobwas/glob's matcher state) are
// not meaningful under -race.
const raceEnabled = true

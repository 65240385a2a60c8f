//go:build !race

package pathmatch_test

const raceEnabled = false

//go:build race

package e2e_test

// raceEnabled: the server is built with -race too, so it reuses the
// packages the test run compiled.
const raceEnabled = true

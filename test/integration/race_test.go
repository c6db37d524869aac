//go:build race

package integration

// raceEnabled builds the daemon with -race too, so that a data race in the
// server fails these tests.
const raceEnabled = true

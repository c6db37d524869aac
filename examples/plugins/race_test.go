//go:build race

package plugins_test

// raceEnabled builds the daemon with -race too.
const raceEnabled = true

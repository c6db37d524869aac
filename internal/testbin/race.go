//go:build race

package testbin

// raceEnabled: the daemon is built with -race too, so that a data race in
// the server fails the tests that run it.
const raceEnabled = true

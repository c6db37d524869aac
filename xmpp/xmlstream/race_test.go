//go:build race

package xmlstream

// raceEnabled: the tests run under the race detector, whose sync.Pool
// drops items at random.
const raceEnabled = true

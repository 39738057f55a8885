//go:build race

package dpop

// raceEnabled reports that the race detector is on: allocation counts are
// not exact, and the heaviest tests do less work, since it slows them
// tenfold.
const raceEnabled = true

//go:build race

package dpop_test

// raceOn reports that the race detector is on: the heaviest tests do
// less work, since it slows them tenfold.
const raceOn = true

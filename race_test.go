//go:build race

package dpop

const raceEnabled = true

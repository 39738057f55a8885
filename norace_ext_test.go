//go:build !race

package dpop_test

const raceOn = false

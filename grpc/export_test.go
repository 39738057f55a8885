package dpopgrpc

import "time"

// SetProbeWait sets how long RPCs wait for the first RPC to an authority,
// for tests that count challenges on a loaded machine, and returns a
// function that restores it.
func SetProbeWait(d time.Duration) (restore func()) {
	old := probeWait
	probeWait = d
	return func() { probeWait = old }
}

//go:build !unix

package dpopgrpc_test

import (
	"testing"
	"time"
)

// cpuTime returns 0: process CPU time is read with getrusage, on unix.
func cpuTime(*testing.B) time.Duration { return 0 }

//go:build !unix

package dpop

import (
	"testing"
	"time"
)

// cpuTime skips the benchmark: process CPU time is read with getrusage.
func cpuTime(b *testing.B) time.Duration {
	b.Skip("process CPU time is measured on unix only")
	return 0
}

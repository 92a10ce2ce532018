package crypt

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

// cpuClock measures the CPU time of the benchmark's OS thread, so that
// throughput on a shared, overloaded machine compares with `openssl speed`
// (which also counts CPU time, not wall time).
type cpuClock struct{ start time.Duration }

func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU(b *testing.B) *cpuClock {
	runtime.LockOSThread()
	b.ResetTimer()
	return &cpuClock{start: threadCPU()}
}

// report adds a "cpu-MB/s" metric for bytes processed per iteration.
func (c *cpuClock) report(b *testing.B, bytesPerOp int) {
	d := threadCPU() - c.start
	runtime.UnlockOSThread()
	if d > 0 {
		b.ReportMetric(float64(bytesPerOp)*float64(b.N)/d.Seconds()/1e6, "cpu-MB/s")
	}
}

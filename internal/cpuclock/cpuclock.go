// Package cpuclock measures the CPU time of a benchmark's OS thread, so that
// throughput measured on a shared, busy machine compares with `openssl speed`,
// which also reports bytes per second of CPU time rather than of wall time.
//
//	clk := cpuclock.Start(b)
//	for i := 0; i < b.N; i++ { work() }
//	clk.Report(b, bytesPerOp) // adds a "cpu-MB/s" metric
//
// Only Linux has a per-thread CPU clock (RUSAGE_THREAD); elsewhere Report
// adds nothing.
package cpuclock

import (
	"runtime"
	"testing"
	"time"
)

// Clock is started by [Start] and read by [Clock.Report].
type Clock struct{ start time.Duration }

// Start locks the calling goroutine to its OS thread, resets b's timer and
// notes the thread's CPU time.
func Start(b *testing.B) *Clock {
	runtime.LockOSThread()
	b.ResetTimer()
	return &Clock{start: threadCPU()}
}

// Report unlocks the thread and adds a "cpu-MB/s" metric: bytesPerOp × b.N
// over the thread's CPU time since Start.
func (c *Clock) Report(b *testing.B, bytesPerOp int) {
	d := threadCPU() - c.start
	runtime.UnlockOSThread()
	if d > 0 && c.start > 0 {
		b.ReportMetric(float64(bytesPerOp)*float64(b.N)/d.Seconds()/1e6, "cpu-MB/s")
	}
}

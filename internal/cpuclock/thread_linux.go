package cpuclock

import (
	"syscall"
	"time"
)

// threadCPU is the user+system CPU time of the calling thread (0 when
// unknown).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

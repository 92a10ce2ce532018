package crypt

import (
	"errors"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fileChunk is the chunk size of the mapped path.
func fileChunk() int64 { return mmapChunk }

// TestMmapInputTruncated: the input shrinks while the mapped path reads
// it. The run must end with an error (MADV_POPULATE_READ failing, or the
// SIGBUS of touching a page past the new end turned into an error by
// SetPanicOnFault), never kill the process.
func TestMmapInputTruncated(t *testing.T) {
	savedChunk, savedPop := mmapChunk, populate.Load()
	defer func() { mmapChunk = savedChunk; populate.Store(savedPop) }()
	mmapChunk = 64 << 10
	c, err := New(Spec{Cipher: "aes-xts-plain64", Key: make([]byte, 64), SectorSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	size := 64 * mmapChunk
	for _, pop := range []bool{true, false} {
		populate.Store(pop)
		src := writeTemp(t, "in", make([]byte, size))
		dst := writeTemp(t, "out", nil)
		var once sync.Once
		shrink := func(int64) {
			once.Do(func() {
				if err := os.Truncate(src.Name(), mmapChunk); err != nil {
					t.Error(err)
				}
			})
		}
		err := EncryptFile(dst, src, size, c, &FileOptions{IO: IOMmap, Progress: shrink})
		if err == nil {
			t.Fatalf("populate=%v: input truncated during the run, no error", pop)
		}
		t.Logf("populate=%v: %v", pop, err)
		if !pop && !strings.Contains(err.Error(), "memory fault") {
			t.Errorf("populate=false: %v, want the memory fault error", err)
		}
		if pop && !strings.Contains(err.Error(), "memory fault") && !errors.Is(err, errShort) {
			t.Errorf("populate=true: %v, want a short input or memory fault error", err)
		}
	}
}

// processCPU is the user+system CPU time of the whole process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

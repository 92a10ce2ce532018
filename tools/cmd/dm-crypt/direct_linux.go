package main

import (
	"errors"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// directAlign is the alignment O_DIRECT needs for offsets, lengths and
// buffers (the largest logical block size in use).
const directAlign = 4096

// directWriter writes aligned chunks of the output with O_DIRECT, skipping
// the page-cache copy (it halves the kernel CPU time of writing a large
// image), and everything else through the regular file. Filesystems
// without O_DIRECT (tmpfs) fall back to regular writes. Both descriptors
// refer to the same (temporary) file; ranges never overlap.
type directWriter struct {
	f      *os.File
	direct *os.File
	off    atomic.Bool
}

func newDirectWriter(f *os.File) *directWriter {
	w := &directWriter{f: f}
	if d, err := os.OpenFile(f.Name(), os.O_WRONLY|syscall.O_DIRECT, 0); err == nil {
		w.direct = d
	}
	return w
}

func (w *directWriter) WriteAt(p []byte, off int64) (int, error) {
	if w.direct != nil && !w.off.Load() && len(p) > 0 && off%directAlign == 0 &&
		len(p)%directAlign == 0 && uintptr(unsafe.Pointer(&p[0]))%directAlign == 0 {
		n, err := w.direct.WriteAt(p, off)
		if err == nil {
			return n, nil
		}
		if n != 0 || !errors.Is(err, syscall.EINVAL) {
			return n, err
		}
		w.off.Store(true) // not supported here: regular writes from now on
	}
	return w.f.WriteAt(p, off)
}

// Close closes the O_DIRECT descriptor (the regular file stays open for
// Commit, whose fsync covers both).
func (w *directWriter) Close() error {
	if w.direct == nil {
		return nil
	}
	return w.direct.Close()
}

// adviseSequential tells the kernel IN is read once, front to back (larger
// readahead); a hint only, errors ignored.
func adviseSequential(f *os.File) {
	const fadvSequential = 2 // POSIX_FADV_SEQUENTIAL
	syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, fadvSequential, 0, 0)
}

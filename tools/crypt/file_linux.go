package crypt

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// mmapChunk is the unit of work of the mapped path: each worker faults
// this much of the input mapping in, encrypts it into its own buffer (one
// per worker, the L2-sized working set), writes the buffer and drops the
// chunk from the mapping. A variable so that tests can make chunk
// boundaries cheap to reach.
var mmapChunk int64 = 1 << 20

const madvPopulateRead = 22 // MADV_POPULATE_READ, Linux 5.14

// populate is cleared when the kernel does not know MADV_POPULATE_READ
// (EINVAL): the pages are then faulted in by the encryption itself.
var populate atomic.Bool

func init() { populate.Store(true) }

// mmapConvert is the IOMmap path: the input is read through one shared
// read-only mapping (no copy out of the page cache), each chunk encrypted
// from the mapping into a worker's buffer, and the buffer written with
// pwrite (O_DIRECT where the filesystem has it: no copy into the page cache
// either). Chunks wholly inside a hole of the input (SEEK_DATA/SEEK_HOLE,
// mapped once at the start) are encrypted from a zero buffer instead.
// Errors that mean "this input cannot be mapped", returned before any byte
// is written, wrap ErrNoMmap.
//
// Measured and dropped (1 GiB, warm input, see tests/bench/run.sh): mapping
// the output too (fallocate, MAP_SHARED, MADV_POPULATE_WRITE, encrypt
// straight into it) costs more CPU than the pwrite it saves, 0.9-1.0 CPU-s
// against 0.55-0.65 on tmpfs: every new page of the output is zeroed, mapped
// and unmapped (TLB shootdowns to the other worker), where pwrite of whole
// pages only copies; fallocate of 1 GiB on tmpfs alone takes 0.25 s on one
// core. On a disk, O_DIRECT writes are already copy-free.
func mmapConvert(dst, src *os.File, size int64, c *Cipher, enc bool, progress func(int64)) error {
	st, err := src.Stat()
	if err != nil {
		return fmt.Errorf("crypt: input: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("crypt: %w: input is not a regular file", ErrNoMmap)
	}
	if st.Size() < size {
		return fmt.Errorf("crypt: read at offset %d: %w", st.Size(), io.ErrUnexpectedEOF)
	}
	if size == 0 {
		return nil
	}
	if unsafe.Sizeof(uintptr(0)) < 8 && size > 1<<30 {
		return fmt.Errorf("crypt: %w: %d bytes do not fit this address space", ErrNoMmap, size)
	}
	// One mapping for the whole run (per-chunk mmap and munmap contend on
	// the process's mmap lock); chunks are dropped from it once encrypted
	// (MADV_DONTNEED: the data stays in the page cache), so the resident
	// set stays at a few chunks however large the input.
	in, err := syscall.Mmap(int(src.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("crypt: %w: map input: %v", ErrNoMmap, err)
	}
	defer syscall.Munmap(in)
	adviseSequential(src)
	var w io.WriterAt = dst
	if !sameFile(dst, src) {
		d := NewDirectWriter(dst)
		defer d.Close()
		w = d
	}

	holes := dataMap(src, size)
	chunk := mmapChunk
	chunks := (size + chunk - 1) / chunk
	return forChunks(chunks, int64(mmapWorkers()), func() func(int64) error {
		// A fault on the mapping (the input truncated under us, an I/O
		// error) panics in this goroutine instead of killing the process;
		// mapChunk recovers it into an error. The setting is per goroutine.
		debug.SetPanicOnFault(true)
		buf := make([]byte, chunk) // page-aligned (a large object)
		var zero []byte
		return func(idx int64) error {
			off := idx * chunk
			n := min(chunk, size-off)
			if holes.hole(off, n) {
				// a hole reads as zeros: encrypt zeros without filling the
				// page cache with them (the ciphertext of a zero sector is
				// not zero: it is written)
				if zero == nil {
					zero = make([]byte, chunk)
				}
				convertSectors(buf[:n], zero[:n], off, c, enc)
			} else if err := mapChunk(buf[:n], in[off:off+n], off, c, enc); err != nil {
				return err
			}
			if _, err := w.WriteAt(buf[:n], off); err != nil {
				return fmt.Errorf("crypt: write at offset %d: %w", off, err)
			}
			if progress != nil {
				progress(n)
			}
			return nil
		}
	})
}

// mmapWorkers is the number of chunks in flight on the mapped path. As in
// convert, two per GOMAXPROCS: writes into one file serialise on its lock,
// and a worker waiting there leaves its core to another one.
func mmapWorkers() int { return 2 * runtime.GOMAXPROCS(0) }

// mapChunk converts the mapped input chunk in (file offset off) into out,
// then drops it from the mapping. A memory fault (SIGBUS: the file shrank,
// an I/O error) comes back as an error.
func mapChunk(out, in []byte, off int64, c *Cipher, enc bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(interface{ Addr() uintptr })
			if !ok {
				panic(r)
			}
			where := ""
			if a, p := f.Addr(), uintptr(unsafe.Pointer(&in[0])); a >= p && a < p+uintptr(len(in)) {
				where = fmt.Sprintf(" at offset %d", off+int64(a-p))
			}
			err = fmt.Errorf("crypt: read%s: memory fault on the mapped input (file truncated during the run, or an I/O error)", where)
		}
		madvise(in, syscall.MADV_DONTNEED)
	}()
	if err := populateRange(in); err != nil {
		return fmt.Errorf("crypt: read at offset %d: %w", off, err)
	}
	convertSectors(out, in, off, c, enc)
	return nil
}

// convertSectors encrypts or decrypts in (at byte offset off of the image)
// into out.
func convertSectors(out, in []byte, off int64, c *Cipher, enc bool) {
	first := uint64(off / int64(c.sectorSize))
	if enc {
		c.EncryptSectors(out, in, first)
	} else {
		c.DecryptSectors(out, in, first)
	}
}

const (
	seekData = 3 // SEEK_DATA
	seekHole = 4 // SEEK_HOLE
)

// dataMap lists the data extents of f's first size bytes with
// SEEK_DATA/SEEK_HOLE, so that chunks lying wholly in a hole are encrypted
// from a zero buffer instead of being read (which would fill the page
// cache with zero pages). f's file offset is restored.
func dataMap(f *os.File, size int64) extents {
	fd := int(f.Fd())
	cur, err := syscall.Seek(fd, 0, io.SeekCurrent)
	if err != nil {
		return nil
	}
	defer syscall.Seek(fd, cur, io.SeekStart)
	m := extents{}
	for off := int64(0); off < size; {
		d, err := syscall.Seek(fd, off, seekData)
		if err == syscall.ENXIO {
			break // a hole up to the end
		}
		if err != nil || d < off {
			return nil
		}
		if d >= size {
			break
		}
		h, err := syscall.Seek(fd, d, seekHole)
		if err != nil || h <= d {
			return nil
		}
		m = append(m, [2]int64{d, min(h, size)})
		if len(m) > maxExtents {
			return nil
		}
		off = h
	}
	if len(m) == 1 && m[0] == [2]int64{0, size} {
		return nil
	}
	return m
}

func madvise(b []byte, advice int) syscall.Errno {
	_, _, e := syscall.Syscall(syscall.SYS_MADVISE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(advice))
	return e
}

// populateRange faults the pages of b in with one system call (instead of
// a fault per fault-around batch), reporting read errors as errors. EINVAL
// (a kernel before 5.14) turns it off for the rest of the run; EFAULT means
// the file ends before the mapping does (truncated since the size check).
func populateRange(b []byte) error {
	if !populate.Load() {
		return nil
	}
	e := madvise(b, madvPopulateRead)
	switch e {
	case 0:
		return nil
	case syscall.EINVAL:
		populate.Store(false)
		return nil
	case syscall.EFAULT:
		return errShort
	}
	return e
}

var errShort = errors.New("input shorter than the image (truncated during the run?)")

// adviseSequential tells the kernel the file is read once, front to back
// (larger readahead); a hint only, errors ignored.
func adviseSequential(f *os.File) {
	const fadvSequential = 2 // POSIX_FADV_SEQUENTIAL
	syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, fadvSequential, 0, 0)
}

// directAlign is the alignment O_DIRECT needs for offsets, lengths and
// buffers (the largest logical block size in use).
const directAlign = 4096

// DirectWriter writes aligned chunks (offset, length and buffer multiples
// of 4096) with O_DIRECT, skipping the page-cache copy, and everything else
// through the regular file. Filesystems without O_DIRECT (tmpfs) fall back
// to regular writes. Concurrent WriteAt calls must not overlap. The
// [IORead] path of [EncryptFile] uses it; [EncryptAEAD] callers may too.
type DirectWriter struct {
	f      *os.File
	direct *os.File
	off    atomic.Bool
}

// NewDirectWriter returns a DirectWriter for f (open for writing; it stays
// the caller's to sync and close).
func NewDirectWriter(f *os.File) *DirectWriter {
	w := &DirectWriter{f: f}
	// Reopen through /proc: the file's name may be relative or gone.
	if d, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), os.O_WRONLY|syscall.O_DIRECT, 0); err == nil {
		w.direct = d
	}
	return w
}

func (w *DirectWriter) WriteAt(p []byte, off int64) (int, error) {
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

// Close closes the O_DIRECT descriptor (the caller's file stays open; its
// fsync covers both).
func (w *DirectWriter) Close() error {
	if w.direct == nil {
		return nil
	}
	return w.direct.Close()
}

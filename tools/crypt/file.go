package crypt

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
)

// IOMode selects how [EncryptFile] and [DecryptFile] move the bytes.
type IOMode int

const (
	// IOAuto picks the path measured faster (see autoMode): IORead for
	// now.
	IOAuto IOMode = iota
	// IORead reads chunks with pread (chunks wholly inside a hole of a
	// sparse input are zeroed, not read) and writes them with pwrite
	// (O_DIRECT where the filesystem has it): the [Encrypt] path.
	IORead
	// IOMmap reads the input through one shared read-only mapping (no
	// copy out of the page cache; chunks wholly inside a hole of a sparse
	// input are encrypted from zeros without being read) and writes like
	// IORead; an error wrapping ErrNoMmap where the input cannot be mapped.
	// Forced, for tests and measurements (not faster here: see autoMode).
	IOMmap
)

// String is the name ParseIOMode accepts.
func (m IOMode) String() string {
	switch m {
	case IOAuto:
		return "auto"
	case IORead:
		return "read"
	case IOMmap:
		return "mmap"
	}
	return fmt.Sprintf("IOMode(%d)", int(m))
}

// ParseIOMode parses "auto" (or ""), "read" or "mmap".
func ParseIOMode(s string) (IOMode, error) {
	switch s {
	case "", "auto":
		return IOAuto, nil
	case "read":
		return IORead, nil
	case "mmap":
		return IOMmap, nil
	}
	return IOAuto, fmt.Errorf("crypt: I/O mode %q: want auto, read or mmap", s)
}

// FileOptions are the optional settings of [EncryptFile] and [DecryptFile];
// a nil *FileOptions means the defaults.
type FileOptions struct {
	// IO is the I/O path (default IOAuto).
	IO IOMode
	// Progress, when set, is called with the byte count of each finished
	// chunk (from several goroutines at once: it must be safe for that).
	Progress func(n int64)
}

// ErrNoMmap is wrapped by the error of an [IOMmap] run on files that cannot
// be mapped (not regular files, or no shared mappings on their
// filesystem). IOAuto falls back to IORead then.
var ErrNoMmap = errors.New("files cannot be mapped")

// EncryptFile encrypts the first size bytes of src into the first size
// bytes of dst (offset 0 = sector 0 of the crypt target), as [Encrypt]
// does, but on files, by the fastest path that works here (see [IOMode]).
// dst must be open for writing; it is grown to size bytes if shorter, and
// bytes past size are left alone. dst and src may be the same file (encryption in place), not
// otherwise overlapping ranges of one file. The output is byte-identical
// to a sequential EncryptSectors over the whole range, on every path. The
// data reaches the disk on the caller's fsync (dst.Sync). An input that
// shrinks or fails to read while it is mapped gives an error, never a
// crash. Chunks are processed in parallel (2×GOMAXPROCS in flight, one
// ChunkSize buffer each: peak RSS stays at a few MiB for any size).
func EncryptFile(dst, src *os.File, size int64, c *Cipher, o *FileOptions) error {
	return convertFile(dst, src, size, c, true, o)
}

// DecryptFile is the inverse of [EncryptFile], with the same rules.
func DecryptFile(dst, src *os.File, size int64, c *Cipher, o *FileOptions) error {
	return convertFile(dst, src, size, c, false, o)
}

func convertFile(dst, src *os.File, size int64, c *Cipher, enc bool, o *FileOptions) error {
	var opt FileOptions
	if o != nil {
		opt = *o
	}
	ss := int64(c.sectorSize)
	if size < 0 || size%ss != 0 {
		return fmt.Errorf("crypt: %w: %d bytes is not a multiple of %d", ErrSize, size, ss)
	}
	mode := opt.IO
	if mode == IOAuto {
		mode = autoMode(c)
	}
	switch mode {
	case IOMmap:
		err := mmapConvert(dst, src, size, c, enc, opt.Progress)
		if err == nil || opt.IO == IOMmap || !errors.Is(err, ErrNoMmap) {
			return err
		}
	case IORead:
	default:
		return fmt.Errorf("crypt: unknown %v", opt.IO)
	}
	return readConvert(dst, src, size, c, enc, opt.Progress)
}

// autoMode is IOAuto's choice, from measurements (1 GiB, warm input, output
// on tmpfs; the project's 2-core VM, alternated runs): the mapped input did
// not pay. XTS: 0.737 against 0.744 CPU-s per GiB (10 runs each; an
// earlier series of 8 gave 0.67 against 0.74), wall 0.74 against 0.71 s;
// CBC: 0.78 against 0.75 CPU-s, because the 8-sector interleaved CBC kernel
// then reads its eight streams from DRAM instead of from the L2-hot buffer
// the kernel's copy filled (user time 0.22 against 0.13 s). What the copy
// saves, populating and dropping the mapping (page tables, TLB-shootdown
// IPIs, dear in a VM) costs back. So reads; IOMmap stays for measurements
// on other machines.
func autoMode(*Cipher) IOMode { return IORead }

// readConvert is the IORead path: [Encrypt] or [Decrypt] with O_DIRECT
// writes where possible, then dst grown to size.
func readConvert(dst, src *os.File, size int64, c *Cipher, enc bool, progress func(int64)) error {
	st, err := dst.Stat()
	if err != nil {
		return fmt.Errorf("crypt: output: %w", err)
	}
	var w io.WriterAt = dst
	if !sameFile(dst, src) {
		d := NewDirectWriter(dst)
		defer d.Close()
		w = d
	}
	if progress != nil {
		w = &progressWriter{w: w, f: progress}
	}
	adviseSequential(src)
	if err := convert(w, src, size, c, enc, dataMap(src, size)); err != nil {
		return err
	}
	if st.Mode().IsRegular() && st.Size() < size {
		// a size-0 image, or one whose last chunk failed to extend it
		if err := dst.Truncate(size); err != nil {
			return fmt.Errorf("crypt: output: %w", err)
		}
	}
	return nil
}

type progressWriter struct {
	w io.WriterAt
	f func(int64)
}

func (p *progressWriter) WriteAt(b []byte, off int64) (int, error) {
	n, err := p.w.WriteAt(b, off)
	p.f(int64(n))
	return n, err
}

// sameFile reports whether a and b are the same open file (in-place
// encryption: one mapping, no O_DIRECT writer).
func sameFile(a, b *os.File) bool {
	if a == b {
		return true
	}
	sa, err1 := a.Stat()
	sb, err2 := b.Stat()
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// extents are the data ranges [start, end) of a sparse input, in order; nil
// means "all data" (no holes, or the filesystem cannot tell).
type extents [][2]int64

// maxExtents bounds the map: a more fragmented input is treated as dense
// (the map only saves reading holes; their bytes are zeros either way).
const maxExtents = 1 << 16

// hole reports whether [off, off+n) holds no data.
func (m extents) hole(off, n int64) bool {
	if m == nil {
		return false
	}
	// first extent ending after off
	i := sort.Search(len(m), func(i int) bool { return m[i][1] > off })
	return i == len(m) || m[i][0] >= off+n
}

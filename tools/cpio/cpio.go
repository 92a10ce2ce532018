// Package cpio writes reproducible "newc" (SVR4, no CRC) cpio archives, the
// format the Linux kernel unpacks as an initramfs.
//
// Every entry has mtime 0, uid and gid 0, nlink 1 (2 for directories), device
// numbers 0 and inode numbers counted from 1 in write order, so the bytes depend
// only on the names, modes and contents given. [Writer] does not sort; callers
// that want a canonical order (dm-cpio does) sort their entries first.
// See https://docs.kernel.org/driver-api/early-userspace/buffer-format.html.
package cpio

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeLink = 0o120000
)

// Writer writes one archive to an io.Writer.
type Writer struct {
	w      io.Writer
	off    int64
	ino    uint32
	closed bool
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

func (cw *Writer) write(b []byte) error {
	n, err := cw.w.Write(b)
	cw.off += int64(n)
	return err
}

func (cw *Writer) pad() error {
	if r := cw.off % 4; r != 0 {
		return cw.write(make([]byte, 4-r))
	}
	return nil
}

func (cw *Writer) header(name string, mode uint32, nlink uint32, size int64) error {
	if cw.closed {
		return errors.New("cpio: write after close")
	}
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\x00") {
		return fmt.Errorf("cpio: bad entry name %q", name)
	}
	if size < 0 || size > 0xffffffff {
		return fmt.Errorf("cpio: %s: size %d does not fit newc", name, size)
	}
	cw.ino++
	h := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		cw.ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name)+1, 0)
	if err := cw.write([]byte(h + name + "\x00")); err != nil {
		return err
	}
	return cw.pad()
}

// Dir adds a directory with permission bits perm.
func (cw *Writer) Dir(name string, perm uint32) error {
	return cw.header(name, modeDir|perm&0o7777, 2, 0)
}

// File adds a regular file of size bytes read from r.
func (cw *Writer) File(name string, perm uint32, size int64, r io.Reader) error {
	if err := cw.header(name, modeFile|perm&0o7777, 1, size); err != nil {
		return err
	}
	n, err := io.Copy(cw.w, io.LimitReader(r, size))
	cw.off += n
	if err != nil {
		return fmt.Errorf("cpio: %s: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("cpio: %s: got %d of %d bytes", name, n, size)
	}
	return cw.pad()
}

// Symlink adds a symbolic link to target.
func (cw *Writer) Symlink(name, target string) error {
	if err := cw.header(name, modeLink|0o777, 1, int64(len(target))); err != nil {
		return err
	}
	if err := cw.write([]byte(target)); err != nil {
		return err
	}
	return cw.pad()
}

// Close writes the trailer. It does not close the underlying writer.
func (cw *Writer) Close() error {
	if cw.closed {
		return nil
	}
	if err := cw.header("TRAILER!!!", 0, 1, 0); err != nil {
		return err
	}
	cw.closed = true
	return nil
}

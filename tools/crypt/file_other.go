//go:build !linux

package crypt

import (
	"fmt"
	"io"
	"os"
)

// mmapConvert: the mapped path is Linux-only (MADV_POPULATE_READ, SIGBUS recovery).
func mmapConvert(dst, src *os.File, size int64, c *Cipher, enc bool, progress func(int64)) error {
	return fmt.Errorf("crypt: %w: mapped I/O is implemented on Linux only", ErrNoMmap)
}

func adviseSequential(*os.File) {}

// dataMap: no SEEK_DATA here; every chunk is read.
func dataMap(*os.File, int64) extents { return nil }

// DirectWriter is an *os.File's WriteAt here (O_DIRECT is Linux-only).
type DirectWriter struct{ f *os.File }

// NewDirectWriter returns a DirectWriter for f.
func NewDirectWriter(f *os.File) *DirectWriter { return &DirectWriter{f: f} }

func (w *DirectWriter) WriteAt(p []byte, off int64) (int, error) { return w.f.WriteAt(p, off) }

func (w *DirectWriter) Close() error { return nil }

var _ io.WriterAt = (*DirectWriter)(nil)

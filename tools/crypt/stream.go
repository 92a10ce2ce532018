package crypt

import (
	"errors"
	"fmt"
	"io"
	"runtime"
)

// ChunkSize is the unit of work of [Encrypt] and [Decrypt]: each worker
// holds one buffer of this size (a multiple of every sector size).
const ChunkSize = 1 << 20

// ErrSize is wrapped by errors about an image size that is not a multiple
// of the sector size.
var ErrSize = errors.New("size not a multiple of the sector size")

// Encrypt reads size bytes of plaintext from src and writes the ciphertext
// at the same offsets of dst (offset 0 = sector 0 of the crypt target).
// size must be a multiple of c's sector size. Chunks are processed by up to
// 2×GOMAXPROCS workers, each with one ChunkSize buffer; the output is
// byte-identical to a sequential run. src shorter than size is an error.
func Encrypt(dst io.WriterAt, src io.ReaderAt, size int64, c *Cipher) error {
	return convert(dst, src, size, c, true, nil)
}

// Decrypt is the inverse of [Encrypt], with the same rules.
func Decrypt(dst io.WriterAt, src io.ReaderAt, size int64, c *Cipher) error {
	return convert(dst, src, size, c, false, nil)
}

// workers is the number of chunks [Encrypt] and [Decrypt] keep in flight:
// two per GOMAXPROCS, so that while one worker waits for its read or write
// (writes into one file take that file's lock in the kernel, which
// serialises the writers), another one reads or encrypts on the same core.
func workers() int { return 2 * runtime.GOMAXPROCS(0) }

// convert is Encrypt and Decrypt. Chunks lying wholly in a hole of src
// (holes; nil: none known) are zeroed instead of read.
func convert(dst io.WriterAt, src io.ReaderAt, size int64, c *Cipher, enc bool, holes extents) error {
	ss := int64(c.sectorSize)
	if size < 0 || size%ss != 0 {
		return fmt.Errorf("crypt: %w: %d bytes is not a multiple of %d", ErrSize, size, ss)
	}
	chunks := (size + ChunkSize - 1) / ChunkSize
	return forChunks(chunks, int64(workers()), func() func(int64) error {
		buf := make([]byte, ChunkSize)
		return func(idx int64) error {
			off := idx * ChunkSize
			n := min(ChunkSize, size-off)
			b := buf[:n]
			if holes.hole(off, n) {
				clear(b) // a hole reads as zeros; its ciphertext is not zero
			} else if m, err := src.ReadAt(b, off); int64(m) != n {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return fmt.Errorf("crypt: read at offset %d: %w", off+int64(m), err)
			}
			first := uint64(off / ss)
			if enc {
				c.EncryptSectors(b, b, first)
			} else {
				c.DecryptSectors(b, b, first)
			}
			if _, err := dst.WriteAt(b, off); err != nil {
				return fmt.Errorf("crypt: write at offset %d: %w", off, err)
			}
			return nil
		}
	})
}

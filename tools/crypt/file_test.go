package crypt

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
)

// ioModes are the paths EncryptFile can be forced onto; IOMmap is skipped
// where it is not implemented.
var ioModes = []IOMode{IORead, IOMmap, IOAuto}

func writeTemp(t *testing.T, name string, b []byte) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readAll(t *testing.T, f *os.File) []byte {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fileSizes are the image sizes of the file tests for sector size ss: one
// sector, a chunk of either path ±1 sector, and several chunks (more than
// the workers, with a short last chunk).
func fileSizes(ss int64) []int64 {
	sizes := []int64{ss}
	seen := map[int64]bool{}
	for _, ch := range []int64{ChunkSize, fileChunk()} {
		if !seen[ch] {
			seen[ch] = true
			sizes = append(sizes, ch-ss, ch, ch+ss)
		}
	}
	return append(sizes, int64(2*runtime.GOMAXPROCS(0)+1)*max(ChunkSize, fileChunk())+ss)
}

// TestFileMatchesSectors: every I/O path of EncryptFile and DecryptFile,
// into a new file, over a longer file (bytes past size untouched) and in
// place, gives the bytes of one sequential EncryptSectors/DecryptSectors
// call over the whole image (the reference path, itself checked against
// OpenSSL in 20-crypt and against IEEE P1619 above).
func TestFileMatchesSectors(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	for _, cs := range []string{"aes-xts-plain64", "aes-cbc-plain"} {
		for _, ss := range []int64{512, 4096} {
			key := make([]byte, 32)
			rng.Read(key)
			c, err := New(Spec{Cipher: cs, Key: key, SectorSize: int(ss), IVOffset: 8})
			if err != nil {
				t.Fatal(err)
			}
			sizes := fileSizes(ss)
			for _, size := range sizes {
				pt := make([]byte, size)
				rng.Read(pt)
				ct := make([]byte, size)
				c.EncryptSectors(ct, pt, 0)
				for _, mode := range ioModes {
					for _, enc := range []bool{true, false} {
						name := fmt.Sprintf("%s/%d/%d/%v/enc=%v", cs, ss, size, mode, enc)
						in, want := pt, ct
						run := EncryptFile
						if !enc {
							in, want, run = ct, pt, DecryptFile
						}
						// new, empty output
						src := writeTemp(t, "in", in)
						dst := writeTemp(t, "out", nil)
						err := run(dst, src, size, c, &FileOptions{IO: mode})
						if mode == IOMmap && errors.Is(err, ErrNoMmap) && runtime.GOOS != "linux" {
							t.Logf("%s: %v", name, err)
							continue
						}
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						if got := readAll(t, dst); !bytes.Equal(got, want) {
							t.Fatalf("%s: output differs from the sequential reference (%d bytes, want %d)", name, len(got), len(want))
						}
						if size != ss && size != sizes[len(sizes)-1] {
							continue // the variants below: smallest and largest size
						}
						// longer output: the tail stays
						tail := bytes.Repeat([]byte{0xa5}, 3*int(ss))
						dst = writeTemp(t, "out2", append(make([]byte, size), tail...))
						if err := run(dst, src, size, c, &FileOptions{IO: mode}); err != nil {
							t.Fatalf("%s (longer output): %v", name, err)
						}
						if got := readAll(t, dst); !bytes.Equal(got[:size], want) || !bytes.Equal(got[size:], tail) {
							t.Fatalf("%s: longer output wrong (image or tail)", name)
						}
						// in place: one *os.File, and two descriptors of one file
						f := writeTemp(t, "inplace", in)
						if err := run(f, f, size, c, &FileOptions{IO: mode}); err != nil {
							t.Fatalf("%s (in place): %v", name, err)
						}
						if !bytes.Equal(readAll(t, f), want) {
							t.Fatalf("%s: in-place output differs from the reference", name)
						}
						f = writeTemp(t, "inplace2", in)
						g, err := os.OpenFile(f.Name(), os.O_RDWR, 0)
						if err != nil {
							t.Fatal(err)
						}
						err = run(g, f, size, c, &FileOptions{IO: mode})
						g.Close()
						if err != nil {
							t.Fatalf("%s (in place, second descriptor): %v", name, err)
						}
						if !bytes.Equal(readAll(t, f), want) {
							t.Fatalf("%s: in-place output (second descriptor) differs from the reference", name)
						}
					}
				}
			}
		}
	}
}

func TestFileErrors(t *testing.T) {
	c, err := New(Spec{Cipher: "aes-xts-plain64", Key: make([]byte, 64), SectorSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	src := writeTemp(t, "in", make([]byte, 8192))
	for _, mode := range ioModes {
		dst := writeTemp(t, "out", nil)
		if err := EncryptFile(dst, src, 8192+4096, c, &FileOptions{IO: mode}); err == nil {
			t.Errorf("%v: input shorter than size accepted", mode)
		}
		if err := EncryptFile(dst, src, 4096+512, c, &FileOptions{IO: mode}); !errors.Is(err, ErrSize) {
			t.Errorf("%v: size not a multiple of the sector: %v", mode, err)
		}
	}
	if _, err := ParseIOMode("fast"); err == nil {
		t.Error("ParseIOMode accepted an unknown mode")
	}
	for _, m := range []IOMode{IOAuto, IORead, IOMmap} {
		if got, err := ParseIOMode(m.String()); err != nil || got != m {
			t.Errorf("ParseIOMode(%q) = %v, %v", m.String(), got, err)
		}
	}
}

// TestFileNotRegular: a character device cannot be mapped; IOMmap says so
// (ErrNoMmap) and IOAuto falls back to reading it.
func TestFileNotRegular(t *testing.T) {
	zero, err := os.Open("/dev/zero")
	if err != nil {
		t.Skip("no /dev/zero")
	}
	defer zero.Close()
	c, err := New(Spec{Cipher: "aes-cbc-plain", Key: make([]byte, 16), SectorSize: 512})
	if err != nil {
		t.Fatal(err)
	}
	size := int64(ChunkSize + 512)
	want := make([]byte, size)
	c.EncryptSectors(want, want, 0)
	dst := writeTemp(t, "out", nil)
	if err := EncryptFile(dst, zero, size, c, &FileOptions{IO: IOMmap}); !errors.Is(err, ErrNoMmap) {
		t.Fatalf("IOMmap on /dev/zero: %v, want ErrNoMmap", err)
	}
	var done atomic.Int64
	if err := EncryptFile(dst, zero, size, c, &FileOptions{Progress: func(n int64) { done.Add(n) }}); err != nil {
		t.Fatalf("IOAuto on /dev/zero: %v", err)
	}
	if !bytes.Equal(readAll(t, dst), want) {
		t.Fatal("IOAuto on /dev/zero: wrong output")
	}
	if done.Load() != size {
		t.Fatalf("progress counted %d bytes, want %d", done.Load(), size)
	}
}

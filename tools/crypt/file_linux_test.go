package crypt

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
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

// TestSparseInput: on both paths, chunks wholly in a hole are encrypted
// from zeros (not read); the output must still be the reference's for every
// sector, holes included (their ciphertext is not zero), with data at chunk
// edges and inside chunks (of either path: the read path's chunk is
// ChunkSize, the mapped path's mmapChunk, made smaller here).
func TestSparseInput(t *testing.T) {
	savedChunk := mmapChunk
	defer func() { mmapChunk = savedChunk }()
	mmapChunk = 64 << 10
	c, err := New(Spec{Cipher: "aes-xts-plain64", Key: make([]byte, 64), SectorSize: 512})
	if err != nil {
		t.Fatal(err)
	}
	size := int64(4*ChunkSize + 512)
	pt := make([]byte, size)
	rng := rand.New(rand.NewSource(5))
	// data: the first sector, a block across the boundary of chunks 9/10,
	// a block inside chunk 20, the last sector; holes elsewhere
	spans := [][2]int64{{0, 512}, {10*mmapChunk - 4096, 10*mmapChunk + 4096}, {20*mmapChunk + 8192, 20*mmapChunk + 12288}, {size - 512, size}}
	p := filepath.Join(t.TempDir(), "sparse")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for _, s := range spans {
		rng.Read(pt[s[0]:s[1]])
		if _, err := f.WriteAt(pt[s[0]:s[1]], s[0]); err != nil {
			t.Fatal(err)
		}
	}
	m := dataMap(f, size)
	t.Logf("data map: %v", m)
	if m != nil && !m.hole(30*mmapChunk, mmapChunk) {
		t.Errorf("chunk 30 not seen as a hole in %v", m)
	}
	if m.hole(10*mmapChunk, mmapChunk) || m.hole(20*mmapChunk, mmapChunk) || m.hole(size-512, 512) {
		t.Errorf("a chunk with data seen as a hole in %v", m)
	}
	if off, _ := f.Seek(0, io.SeekCurrent); off != 0 {
		t.Errorf("dataMap moved the file offset to %d", off)
	}
	if m != nil && !m.hole(2*ChunkSize, ChunkSize) {
		t.Errorf("read-path chunk 2 (a hole) not seen as one in %v", m)
	}
	want := make([]byte, size)
	c.EncryptSectors(want, pt, 0)
	for _, mode := range []IOMode{IORead, IOMmap} {
		dst := writeTemp(t, "out", nil)
		if err := EncryptFile(dst, f, size, c, &FileOptions{IO: mode}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(readAll(t, dst), want) {
			t.Fatalf("%v: sparse input: output differs from the sequential reference", mode)
		}
	}
	f.Close()
}

func TestExtentsHole(t *testing.T) {
	m := extents{{4096, 8192}, {16384, 20480}}
	for _, c := range []struct {
		off, n int64
		hole   bool
	}{
		{0, 4096, true}, {0, 4097, false}, {8192, 8192, true}, {8191, 1, false},
		{12288, 4096, true}, {12288, 4097, false}, {20480, 1 << 20, true}, {19000, 10, false},
	} {
		if got := m.hole(c.off, c.n); got != c.hole {
			t.Errorf("hole(%d, %d) = %v, want %v", c.off, c.n, got, c.hole)
		}
	}
	if extents(nil).hole(0, 4096) {
		t.Error("a nil map (all data) reported a hole")
	}
	if !(extents{}).hole(0, 4096) {
		t.Error("an empty map (all hole) reported data")
	}
}

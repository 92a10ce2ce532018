package integrity

import (
	"bytes"
	"math/rand"
	"sync/atomic"
	"testing"
)

// BenchmarkFormatSeparate measures FormatSeparate (crc32c, 4 KiB blocks) on
// 64 MiB of random data in memory: tag computation and metadata writes, no
// file I/O. Bytes are data bytes.
func BenchmarkFormatSeparate(b *testing.B) {
	const size = 64 << 20
	data := make([]byte, size)
	rand.New(rand.NewSource(1)).Read(data)
	p := Params{Hash: HashCRC32C, BlockSize: 4096}
	msize, err := MetaSize(size, p)
	if err != nil {
		b.Fatal(err)
	}
	meta := &memWA{b: make([]byte, msize)}
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := FormatSeparate(bytes.NewReader(data), size, meta, p); err != nil {
			b.Fatal(err)
		}
	}
}

// TestProgress checks that Params.Progress is called for every chunk and adds
// up to the data size, and that the output does not depend on it.
func TestProgress(t *testing.T) {
	const size = 3*chunkBytes + 5*4096
	data := make([]byte, size)
	rand.New(rand.NewSource(2)).Read(data)
	for _, layout := range []string{LayoutSeparate, LayoutInterleaved} {
		p := Params{Hash: HashCRC32C, BlockSize: 4096, Layout: layout, Workers: 3}
		want := &memWA{}
		var err error
		if layout == LayoutSeparate {
			_, err = FormatSeparate(bytes.NewReader(data), size, want, p)
		} else {
			_, err = FormatInterleaved(bytes.NewReader(data), size, want, p)
		}
		if err != nil {
			t.Fatal(err)
		}
		var done, calls atomic.Int64
		p.Progress = func(n int64) { done.Add(n); calls.Add(1) }
		got := &memWA{}
		if layout == LayoutSeparate {
			_, err = FormatSeparate(bytes.NewReader(data), size, got, p)
		} else {
			_, err = FormatInterleaved(bytes.NewReader(data), size, got, p)
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.b, want.b) {
			t.Fatalf("%s: output differs with Progress set", layout)
		}
		if done.Load() < size || calls.Load() < 4 {
			t.Fatalf("%s: progress reported %d bytes in %d calls, want >= %d in >= 4", layout, done.Load(), calls.Load(), size)
		}
		if layout == LayoutSeparate && done.Load() != size {
			t.Fatalf("separate: progress reported %d bytes, want %d", done.Load(), size)
		}
	}
}

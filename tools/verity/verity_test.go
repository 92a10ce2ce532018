package verity

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// memFile is an in-memory io.ReaderAt/io.WriterAt that grows on write.
type memFile struct{ b []byte }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// pattern is the test data generator shared with the vector generator below:
// byte k is ((k*2654435761)>>7) % 251, except that every block i with
// i%5 == 2 is all zero.
func pattern(blocks, bs int) []byte {
	b := make([]byte, blocks*bs)
	for k := range b {
		if (k/bs)%5 == 2 {
			continue
		}
		b[k] = byte(((uint64(k) * 2654435761) >> 7) % 251)
	}
	return b
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

var testUUID = [16]byte{0x6a, 0x1f, 0x0b, 0x2c, 0x3d, 0x4e, 0x4f, 0x50, 0x81, 0x62, 0x73, 0x84, 0x95, 0xa6, 0xb7, 0xc8}

const testSalt = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

// Known answers from veritysetup 2.6.1 (cryptsetup-bin, Debian), on the data
// of pattern(blocks, dbs) written to a file d, into a new file h:
//
//	veritysetup format d h --uuid 6a1f0b2c-3d4e-4f50-8162-738495a6b7c8 <args>
//
// root is its "Root hash:", dev the sha256 and size of h.
var vectors = []struct {
	name    string
	blocks  int
	p       Params
	offset  int64
	args    string
	root    string
	devHash string
	devSize int64
}{
	{"defaults", 300, Params{1, "sha256", 4096, 4096, mustHex(testSalt), testUUID, true}, 0,
		"--salt " + testSalt,
		"de2087de13bcddca35fa88ddd68f5f4bafad9c94b99cb10bb657d3a20b640829",
		"3a57cdafb17fd9d0496e784323fd4b6ea2ae21cf6287da4ace8d949e9af4cf68", 20480},
	{"chromeos-sha1-512", 1000, Params{0, "sha1", 512, 512, []byte{0xaa}, testUUID, false}, 0,
		"--hash sha1 --data-block-size 512 --hash-block-size 512 --format 0 --salt aa --no-superblock",
		"dbf3c32e8612886499c78a1ae6002bd33c76188b",
		"ae6c009b24193b314792619f8358420d7852eea157c53b267ae433e83c213ebf", 34816},
	{"sha512-nosalt-offset", 333, Params{1, "sha512", 1024, 512, []byte{}, testUUID, true}, 1024,
		"--hash sha512 --data-block-size 1024 --hash-block-size 512 --salt - --hash-offset 1024",
		"7650ca6af28d65d20570c0d9b5667f9353ce579bf12833dcfd349876f6134201b7aa2fb65283476312fa345e588b89ad42ac26c3f311c935b3b6cd96360c328c",
		"4e83578fba4023bb639116a37842dc72f987dd5f05294f4162a94260545e784f", 26624},
	{"one-block", 1, Params{1, "sha256", 4096, 4096, mustHex(testSalt), testUUID, true}, 0,
		"--salt " + testSalt,
		"1847ab6b03258486bc6c3fcf02b5d48334f662f29cb316770cf885f0ed6478d5",
		"5da7213d8b2e9f691fd4dbb744cea24071a8e58c8201c278606cc1e2c268c66c", 4096},
	{"chromeos-sha1-1024", 129, Params{0, "sha1", 4096, 1024, mustHex(testSalt), testUUID, true}, 0,
		"--hash sha1 --format 0 --salt " + testSalt + " --hash-block-size 1024",
		"bfb244cd965c9a4da23e1608ee0ad127a885c29d",
		"6ce7d6b5c369fe94f2d469b470162a75e49ed17f7a277e4bb6a4ae3ca1cb92fa", 7168},
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		for _, workers := range []int{1, 3} {
			data := pattern(v.blocks, v.p.DataBlockSize)
			var h memFile
			r, err := format(bytes.NewReader(data), int64(len(data)), &h, v.offset, v.p, workers)
			if err != nil {
				t.Fatalf("%s/%d: Format: %v", v.name, workers, err)
			}
			if got := r.RootHex(); got != v.root {
				t.Errorf("%s/%d: root %s, want %s", v.name, workers, got, v.root)
			}
			sum := sha256.Sum256(h.b)
			if got := hex.EncodeToString(sum[:]); got != v.devHash || int64(len(h.b)) != v.devSize {
				t.Errorf("%s/%d: hash device sha256 %s size %d, want %s size %d", v.name, workers, got, len(h.b), v.devHash, v.devSize)
			}
			if v.offset+r.HashBytes != v.devSize {
				t.Errorf("%s/%d: offset+HashBytes %d, want %d", v.name, workers, v.offset+r.HashBytes, v.devSize)
			}
			if err := Verify(bytes.NewReader(data), int64(len(data)), &h, v.offset, v.p, r.RootHash); err != nil {
				t.Errorf("%s/%d: Verify: %v", v.name, workers, err)
			}
		}
	}
}

func randomData(blocks, bs int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, blocks*bs)
	for i := 0; i < blocks; i++ {
		if rng.IntN(4) == 0 {
			continue // zero block
		}
		for k := i * bs; k < (i+1)*bs; k += 8 {
			v := rng.Uint64()
			for j := 0; j < 8; j++ {
				b[k+j] = byte(v >> (8 * j))
			}
		}
	}
	return b
}

// The parallel path must give exactly the sequential bytes.
func TestParallelMatchesSequential(t *testing.T) {
	for _, p := range []Params{
		{1, "sha256", 4096, 4096, []byte("salt"), testUUID, true},
		{0, "sha1", 512, 1024, nil, testUUID, false},
		{1, "sha512", 1024, 512, []byte{1, 2, 3}, testUUID, true},
	} {
		blocks := 3001
		data := randomData(blocks, p.DataBlockSize, uint64(p.DataBlockSize))
		var seq memFile
		r1, err := format(bytes.NewReader(data), int64(len(data)), &seq, 0, p, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []int{2, 5, runtime.GOMAXPROCS(0) + 1} {
			var par memFile
			r2, err := format(bytes.NewReader(data), int64(len(data)), &par, 0, p, w)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(r1.RootHash, r2.RootHash) || !bytes.Equal(seq.b, par.b) {
				t.Errorf("%s/%d workers=%d: parallel output differs from sequential", p.Hash, p.DataBlockSize, w)
			}
		}
	}
}

// A sparse *os.File (holes skipped with SEEK_DATA/SEEK_HOLE) gives the same
// tree as the same bytes in memory.
func TestSparseFile(t *testing.T) {
	dir := t.TempDir()
	p := Params{1, "sha256", 4096, 4096, []byte("s"), testUUID, true}
	const blocks = 5000
	f, err := os.Create(filepath.Join(dir, "sparse.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(blocks * 4096); err != nil {
		t.Fatal(err)
	}
	mem := make([]byte, blocks*4096)
	rng := rand.New(rand.NewPCG(7, 7))
	for _, at := range []int64{0, 4096*300 + 100, 4096*4999 + 4000, 4096 * 2000} {
		chunk := make([]byte, 9000)
		for i := range chunk {
			chunk[i] = byte(rng.Uint32())
		}
		if end := at + int64(len(chunk)); end > int64(len(mem)) {
			chunk = chunk[:int64(len(mem))-at]
		}
		if _, err := f.WriteAt(chunk, at); err != nil {
			t.Fatal(err)
		}
		copy(mem[at:], chunk)
	}
	for _, w := range []int{1, 4} {
		var a, b memFile
		ra, err := format(f, blocks*4096, &a, 0, p, w)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := format(bytes.NewReader(mem), blocks*4096, &b, 0, p, w)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ra.RootHash, rb.RootHash) || !bytes.Equal(a.b, b.b) {
			t.Errorf("workers=%d: sparse file tree differs from in-memory tree", w)
		}
	}
	// A file shorter than the data size is an error, not silent zeros.
	var h memFile
	if _, err := Format(f, (blocks+1)*4096, &h, 0, p); !errors.Is(err, ErrDataSize) {
		t.Errorf("short sparse file: %v, want ErrDataSize", err)
	}
}

// A large all-hole file is hashed without reading it and with flat memory.
func TestLargeSparseFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "big.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size = 2 << 30
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	p := Params{1, "sha256", 4096, 4096, nil, testUUID, false}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var h discardWriter
	if _, err := Format(f, size, &h, 0, p); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 32<<20 {
		t.Errorf("allocated %d bytes for a 2 GiB sparse image", d)
	}
}

type discardWriter struct{}

func (discardWriter) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }

func TestVerifyFindsCorruption(t *testing.T) {
	p := Params{1, "sha256", 4096, 4096, []byte("x"), testUUID, true}
	data := randomData(1000, 4096, 3) // 8 level-0 blocks, 1 top block
	var h memFile
	r, err := Format(bytes.NewReader(data), int64(len(data)), &h, 0, p)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := Plan(int64(len(data)), 0, p)
	check := func(name string, d, hb []byte, root []byte, wantData bool, wantBlock uint64, wantIn string) {
		t.Helper()
		err := Verify(bytes.NewReader(d), int64(len(d)), &memFile{hb}, 0, p, root)
		var ce *CorruptionError
		if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: got %v, want a *CorruptionError", name, err)
		}
		if ce.Data != wantData || ce.Block != wantBlock || !strings.Contains(ce.Error(), wantIn) {
			t.Errorf("%s: got %v (data=%v block=%d), want data=%v block=%d containing %q",
				name, ce, ce.Data, ce.Block, wantData, wantBlock, wantIn)
		}
	}
	clone := func(b []byte) []byte { return append([]byte{}, b...) }

	d := clone(data)
	d[777*4096+1] ^= 0x80
	check("data", d, h.b, r.RootHash, true, 777, "data block 777")

	hb := clone(h.b)
	top := l.LevelStart[1]
	hb[int(top)*4096+3] ^= 1
	check("top", data, hb, r.RootHash, false, top, "root hash")

	hb = clone(h.b)
	l0 := l.LevelStart[0] + 3
	hb[int(l0)*4096+64] ^= 1
	check("level0", data, hb, r.RootHash, false, l0, "level 0")

	hb = clone(h.b)
	hb[int(l.LevelStart[0])*4096+40] = 1 // inside digest 1 (sha256 slots have no padding)
	check("level0-slot", data, hb, r.RootHash, false, l.LevelStart[0], "level 0")

	bad := clone(r.RootHash)
	bad[0] ^= 1
	check("root", data, h.b, bad, false, top, "root hash")

	// Superblock disagreeing with the parameters.
	q := p
	q.Salt = []byte("y")
	if err := Verify(bytes.NewReader(data), int64(len(data)), &h, 0, q, r.RootHash); !errors.Is(err, ErrSuperblock) {
		t.Errorf("salt mismatch: %v, want ErrSuperblock", err)
	}
}

// Version 1 pads sha1 digests to 32-byte slots; corrupting padding is found.
func TestVerifyPadding(t *testing.T) {
	p := Params{1, "sha1", 4096, 4096, nil, testUUID, false}
	data := randomData(300, 4096, 5)
	var h memFile
	r, err := Format(bytes.NewReader(data), int64(len(data)), &h, 0, p)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := Plan(int64(len(data)), 0, p)
	hb := append([]byte{}, h.b...)
	hb[int(l.LevelStart[0])*4096+32*5+25] = 9 // inside slot 5, past the 20-byte digest
	err = Verify(bytes.NewReader(data), int64(len(data)), &memFile{hb}, 0, p, r.RootHash)
	var ce *CorruptionError
	if !errors.As(err, &ce) || ce.Data || ce.Block != l.LevelStart[0] {
		t.Errorf("padding: got %v", err)
	}
	// One data block: no tree; the root is the block's digest.
	one := data[:4096]
	var h1 memFile
	r1, err := Format(bytes.NewReader(one), 4096, &h1, 0, p)
	if err != nil || len(h1.b) != 0 {
		t.Fatalf("one block: %v, %d hash bytes", err, len(h1.b))
	}
	bad := append([]byte{}, one...)
	bad[9] ^= 1
	err = Verify(bytes.NewReader(bad), 4096, &h1, 0, p, r1.RootHash)
	if !errors.As(err, &ce) || !ce.Data || ce.Block != 0 {
		t.Errorf("one block: got %v", err)
	}
}

func TestBadInput(t *testing.T) {
	good := Params{1, "sha256", 4096, 4096, nil, testUUID, true}
	data := make([]byte, 8192)
	cases := []struct {
		name   string
		mod    func(*Params)
		size   int64
		offset int64
		want   error
	}{
		{"dbs", func(p *Params) { p.DataBlockSize = 1000 }, 8192, 0, ErrBadBlockSize},
		{"hbs-big", func(p *Params) { p.HashBlockSize = 8192 }, 8192, 0, ErrBadBlockSize},
		{"hbs-small", func(p *Params) { p.HashBlockSize = 256 }, 8192, 0, ErrBadBlockSize},
		{"hash", func(p *Params) { p.Hash = "md5" }, 8192, 0, ErrHash},
		{"salt", func(p *Params) { p.Salt = make([]byte, 257) }, 8192, 0, ErrSalt},
		{"version", func(p *Params) { p.Version = 2 }, 8192, 0, ErrVersion},
		{"size", func(p *Params) {}, 8000, 0, ErrDataSize},
		{"empty", func(p *Params) {}, 0, 0, ErrDataSize},
		{"short", func(p *Params) {}, 12288, 0, ErrDataSize},
		{"offset-sb", func(p *Params) {}, 8192, 100, ErrHashOffset},
		{"offset-nosb", func(p *Params) { p.Superblock = false }, 8192, 512, ErrHashOffset},
		{"offset-neg", func(p *Params) {}, 8192, -512, ErrHashOffset},
	}
	for _, c := range cases {
		p := good
		c.mod(&p)
		var h memFile
		if _, err := Format(bytes.NewReader(data), c.size, &h, c.offset, p); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := ParseSalt("xyz"); !errors.Is(err, ErrSalt) {
		t.Errorf("ParseSalt(xyz): %v", err)
	}
	if s, err := ParseSalt("-"); err != nil || len(s) != 0 {
		t.Errorf("ParseSalt(-): %v %v", s, err)
	}
	if _, err := ParseUUID("6a1f0b2c-3d4e-4f50-8162-738495a6b7cZ"); !errors.Is(err, ErrUUID) {
		t.Errorf("ParseUUID: %v", err)
	}
}

func TestSuperblockRoundTrip(t *testing.T) {
	p := Params{0, "sha512", 1024, 2048, []byte("salty"), testUUID, true}
	b, err := EncodeSuperblock(p, 12345)
	if err != nil {
		t.Fatal(err)
	}
	q, n, err := ParseSuperblock(b)
	if err != nil || n != 12345 || q.Version != 0 || q.Hash != "sha512" || q.DataBlockSize != 1024 ||
		q.HashBlockSize != 2048 || string(q.Salt) != "salty" || q.UUID != testUUID || !q.Superblock {
		t.Errorf("round trip: %+v %d %v", q, n, err)
	}
	for i, mod := range []func([]byte){
		func(b []byte) { b[0] = 'V' },
		func(b []byte) { b[8] = 2 },
		func(b []byte) { b[12] = 2 },
		func(b []byte) { copy(b[32:], "md5\x00\x00\x00") },
		func(b []byte) { b[64], b[65] = 0, 0x20 },
		func(b []byte) { b[68], b[69] = 0, 3 },
		func(b []byte) { b[80], b[81] = 1, 1 },
		func(b []byte) { clear(b[72:80]) },
		func(b []byte) { copy(b[72:80], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) },
	} {
		c := append([]byte{}, b...)
		mod(c)
		if _, _, err := ParseSuperblock(c); !errors.Is(err, ErrSuperblock) {
			t.Errorf("hostile superblock %d: %v", i, err)
		}
	}
	if _, _, err := ParseSuperblock(b[:100]); !errors.Is(err, ErrSuperblock) {
		t.Errorf("short superblock: %v", err)
	}
}

func TestDerive(t *testing.T) {
	p := DefaultParams()
	s1, s2 := DeriveSalt("a", p), DeriveSalt("a", p)
	if len(s1) != 32 || !bytes.Equal(s1, s2) || bytes.Equal(s1, DeriveSalt("b", p)) {
		t.Errorf("DeriveSalt not deterministic or not seed-dependent")
	}
	q := p
	q.HashBlockSize = 1024
	if bytes.Equal(s1, DeriveSalt("a", q)) {
		t.Errorf("DeriveSalt ignores parameters")
	}
	u := DeriveUUID("a", p, s1)
	if u != DeriveUUID("a", p, s1) || u == DeriveUUID("a", p, nil) {
		t.Errorf("DeriveUUID not deterministic or ignores the salt")
	}
	if u[6]>>4 != 4 || u[8]>>6 != 2 {
		t.Errorf("DeriveUUID %s lacks version/variant bits", FormatUUID(u))
	}
	if back, err := ParseUUID(FormatUUID(u)); err != nil || back != u {
		t.Errorf("UUID round trip: %v", err)
	}
	// Pinned so that a change of the derivation is noticed (it changes every image).
	if got := hex.EncodeToString(DeriveSalt("", p)); got != pinnedSalt {
		t.Errorf("DeriveSalt(\"\", defaults) = %s, pinned %s", got, pinnedSalt)
	}
}

const pinnedSalt = "7794e0a735293f554da4f67215225f5116fc23905c14ecdba02a991fd2ba2cde" // python3 hashlib, from the formula in doc.go

func TestTableAndTreeSize(t *testing.T) {
	p := Params{1, "sha256", 4096, 4096, nil, testUUID, true}
	data := pattern(2048, 4096)
	var h memFile
	r, err := Format(bytes.NewReader(data), int64(len(data)), &h, int64(len(data)), p)
	if err != nil {
		t.Fatal(err)
	}
	want := "0 16384 verity 1 @DATA@ @DATA@ 4096 4096 2048 2049 sha256 " + r.RootHex() + " -"
	if got := Table(p, r, "@DATA@", "@DATA@"); got != want {
		t.Errorf("Table:\n got %s\nwant %s", got, want)
	}
	ts, err := TreeSize(int64(len(data)), p)
	if err != nil || ts != r.HashBytes || ts != 4096*(1+16+1) {
		t.Errorf("TreeSize %d (%v), HashBytes %d", ts, err, r.HashBytes)
	}
}

func BenchmarkFormat(b *testing.B) {
	data := randomData(2048, 4096, 9) // 8 MiB
	p := Params{1, "sha256", 4096, 4096, []byte("bench"), testUUID, true}
	for _, w := range []struct {
		name string
		n    int
	}{{"sequential", 1}, {"parallel", 0}} {
		b.Run(w.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := format(bytes.NewReader(data), int64(len(data)), discardWriter{}, 0, p, w.n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	data := randomData(2048, 4096, 9)
	p := Params{1, "sha256", 4096, 4096, []byte("bench"), testUUID, true}
	var h memFile
	r, err := Format(bytes.NewReader(data), int64(len(data)), &h, 0, p)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(bytes.NewReader(data), int64(len(data)), &h, 0, p, r.RootHash); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkZeroBlocks(b *testing.B) {
	data := make([]byte, 8<<20)
	p := Params{1, "sha256", 4096, 4096, nil, testUUID, false}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Format(bytes.NewReader(data), int64(len(data)), discardWriter{}, 0, p); err != nil {
			b.Fatal(err)
		}
	}
}

// Options.Progress sees increasing byte counts ending at the data size, and
// FormatWith/VerifyWith give Format's bytes.
func TestProgress(t *testing.T) {
	p := Params{1, "sha256", 4096, 4096, []byte("salt"), testUUID, true}
	data := randomData(1000, 4096, 3)
	var plain memFile
	r0, err := Format(bytes.NewReader(data), int64(len(data)), &plain, 0, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []int{1, 3} {
		var got []int64
		var h memFile
		o := Options{Progress: func(n int64) { got = append(got, n) }, workers: w}
		r, err := FormatWith(bytes.NewReader(data), int64(len(data)), &h, 0, p, o)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r.RootHash, r0.RootHash) || !bytes.Equal(h.b, plain.b) {
			t.Errorf("workers=%d: FormatWith output differs from Format", w)
		}
		if len(got) < 2 || got[len(got)-1] != int64(len(data)) {
			t.Fatalf("workers=%d: progress %v, want several calls ending at %d", w, got, len(data))
		}
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				t.Fatalf("workers=%d: progress not increasing: %v", w, got)
			}
		}
		got = nil
		if err := VerifyWith(bytes.NewReader(data), int64(len(data)), bytes.NewReader(h.b), 0, p, r.RootHash, o); err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 || got[len(got)-1] != int64(len(data)) {
			t.Errorf("workers=%d: verify progress %v", w, got)
		}
	}
}

// refRoot is a naive whole-in-memory root hash, independent of the level
// streaming and of the cached all-zero blocks.
func refRoot(data []byte, p Params) []byte {
	nh, ds, _ := newHash(p.Hash)
	h := func(b []byte) []byte {
		x := nh()
		if p.Version == 1 {
			x.Write(p.Salt)
		}
		x.Write(b)
		if p.Version == 0 {
			x.Write(p.Salt)
		}
		return x.Sum(nil)
	}
	var dg [][]byte
	for i := 0; i < len(data); i += p.DataBlockSize {
		dg = append(dg, h(data[i:i+p.DataBlockSize]))
	}
	per := 1
	for per*2*ds <= p.HashBlockSize {
		per *= 2
	}
	stride := ds
	if p.Version == 1 {
		stride = p.HashBlockSize / per
	}
	for len(dg) > 1 {
		var next [][]byte
		for i := 0; i < len(dg); i += per {
			blk := make([]byte, p.HashBlockSize)
			for k := 0; k < per && i+k < len(dg); k++ {
				copy(blk[k*stride:], dg[i+k])
			}
			next = append(next, h(blk))
		}
		dg = next
	}
	return dg[0]
}

// Long zero runs (whole hash blocks of zero-block digests, on several
// levels) give the naive tree's root.
func TestZeroRunsMatchNaiveTree(t *testing.T) {
	for _, p := range []Params{
		{1, "sha256", 4096, 4096, []byte("salt"), testUUID, true},
		{0, "sha1", 512, 512, []byte{1}, testUUID, false},
		{1, "sha512", 1024, 512, nil, testUUID, true},
	} {
		const blocks = 40000
		data := make([]byte, blocks*p.DataBlockSize)
		rnd := randomData(300, p.DataBlockSize, 9)
		copy(data[12345*p.DataBlockSize:], rnd)
		copy(data[(blocks-7)*p.DataBlockSize:], rnd[:7*p.DataBlockSize])
		for _, w := range []int{1, 2} {
			var h memFile
			r, err := format(bytes.NewReader(data), int64(len(data)), &h, 0, p, w)
			if err != nil {
				t.Fatal(err)
			}
			if want := refRoot(data, p); !bytes.Equal(r.RootHash, want) {
				t.Errorf("%s/v%d/%d workers=%d: root %x, naive tree %x", p.Hash, p.Version, p.DataBlockSize, w, r.RootHash, want)
			}
		}
	}
	// The known answers also hold against the naive tree.
	for _, v := range vectors {
		if got := refRoot(pattern(v.blocks, v.p.DataBlockSize), v.p); hex.EncodeToString(got) != v.root {
			t.Errorf("%s: naive tree root %x, veritysetup %s", v.name, got, v.root)
		}
	}
}

package verity

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// Known answers from veritysetup 2.6.1 on pattern() data (see vectors):
//
//	veritysetup format d h --uuid 6a1f0b2c-3d4e-4f50-8162-738495a6b7c8 <args> --fec-device f --fec-roots <roots>
//
// fec is the sha256 and size of f.
var fecVectors = []struct {
	name    string
	blocks  int
	p       Params
	roots   int
	fec     string
	fecSize int64
}{
	{"defaults-2", 300, Params{1, "sha256", 4096, 4096, mustHex(testSalt), testUUID, true}, 2,
		"2c1d6a2d545c1e8bd878198729c61cf6031a3b6d0c86977bf5007ba884bb3ec4", 16384},
	{"defaults-24", 300, Params{1, "sha256", 4096, 4096, mustHex(testSalt), testUUID, true}, 24,
		"7504984047ad5455b34761c7fb3bc8da1a6ef2c07a3bc707f415f9727161bd6f", 196608},
	// --data-block-size 512 --hash-block-size 512 --hash sha1 --format 0 --salt - --no-superblock
	{"chromeos-512-11", 1000, Params{0, "sha1", 512, 512, nil, testUUID, false}, 11,
		"c42aa715d8ed674c5323bfb499d3521908a2aed0aaa25b7d873cebc37fca55b0", 28160},
}

func TestFECVectors(t *testing.T) {
	for _, v := range fecVectors {
		data := pattern(v.blocks, v.p.DataBlockSize)
		var h memFile
		r, err := Format(bytes.NewReader(data), int64(len(data)), &h, 0, v.p)
		if err != nil {
			t.Fatal(err)
		}
		bs := int64(v.p.DataBlockSize)
		start := int64(r.HashStartBlock) * bs
		for _, w := range []int{1, 3} {
			var f memFile
			fr, err := encodeFEC(bytes.NewReader(data), int64(len(data)), &h, start, int64(len(h.b))-start, &f, 0, v.roots, v.p.DataBlockSize, w)
			if err != nil {
				t.Fatalf("%s: %v", v.name, err)
			}
			sum := sha256.Sum256(f.b)
			if got := hex.EncodeToString(sum[:]); got != v.fec || int64(len(f.b)) != v.fecSize || fr.Bytes != v.fecSize {
				t.Errorf("%s/%d: FEC sha256 %s size %d (Bytes %d), want %s size %d", v.name, w, got, len(f.b), fr.Bytes, v.fec, v.fecSize)
			}
			if fr.Blocks != r.DataBlocks+r.TreeBlocks {
				t.Errorf("%s: fec_blocks %d, want %d", v.name, fr.Blocks, r.DataBlocks+r.TreeBlocks)
			}
		}
	}
}

func TestFECBadParams(t *testing.T) {
	data := make([]byte, 8192)
	var f memFile
	for _, c := range []struct {
		roots       int
		bs          int
		fecOff      int64
		hashStart   int64
		wantFECErr  bool
		wantBSError bool
	}{
		{1, 4096, 0, 0, true, false},
		{25, 4096, 0, 0, true, false},
		{2, 4096, 100, 0, true, false},
		{2, 4096, 0, 512, true, false},
		{2, 3000, 0, 0, false, true},
	} {
		_, err := EncodeFEC(bytes.NewReader(data), 8192, bytes.NewReader(nil), c.hashStart, 0, &f, c.fecOff, c.roots, c.bs)
		if c.wantFECErr && !errors.Is(err, ErrFEC) || c.wantBSError && !errors.Is(err, ErrBadBlockSize) {
			t.Errorf("%+v: got %v", c, err)
		}
	}
	if got := FECOptions(&FECResult{Roots: 2, Blocks: 785, Start: 9}, "@META@"); got != "use_fec_from_device @META@ fec_roots 2 fec_blocks 785 fec_start 9" {
		t.Errorf("FECOptions: %s", got)
	}
}

func BenchmarkFEC(b *testing.B) {
	data := randomData(1024, 4096, 4) // 4 MiB
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeFEC(bytes.NewReader(data), int64(len(data)), bytes.NewReader(nil), 0, 0, discardWriter{}, 0, 2, 4096); err != nil {
			b.Fatal(err)
		}
	}
}

func TestVerifyFEC(t *testing.T) {
	p := Params{1, "sha256", 4096, 4096, []byte("f"), testUUID, true}
	data := randomData(600, 4096, 11)
	var h, f memFile
	r, err := Format(bytes.NewReader(data), int64(len(data)), &h, 0, p)
	if err != nil {
		t.Fatal(err)
	}
	start := int64(r.HashStartBlock) * 4096
	size := int64(len(h.b)) - start
	if _, err := EncodeFEC(bytes.NewReader(data), int64(len(data)), &h, start, size, &f, 8192, 4, 4096); err != nil {
		t.Fatal(err)
	}
	if err := VerifyFEC(bytes.NewReader(data), int64(len(data)), &h, start, size, &f, 8192, 4, 4096); err != nil {
		t.Fatalf("good parity: %v", err)
	}
	f.b[8192+5000] ^= 1
	if err := VerifyFEC(bytes.NewReader(data), int64(len(data)), &h, start, size, &f, 8192, 4, 4096); !errors.Is(err, ErrCorrupt) ||
		!strings.Contains(err.Error(), "byte 13192") {
		t.Errorf("flipped parity: %v", err)
	}
	f.b[8192+5000] ^= 1
	data[77] ^= 1
	if err := VerifyFEC(bytes.NewReader(data), int64(len(data)), &h, start, size, &f, 8192, 4, 4096); !errors.Is(err, ErrCorrupt) {
		t.Errorf("flipped data: %v", err)
	}
	short := &memFile{f.b[:9000]}
	if err := VerifyFEC(bytes.NewReader(data), int64(len(data)), &h, start, size, short, 8192, 4, 4096); err == nil || errors.Is(err, ErrCorrupt) {
		t.Errorf("short FEC device: %v", err)
	}
}

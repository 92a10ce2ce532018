package verity

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
)

// pair2 gives crypto/sha256's digests for every salt length, format and
// block size.
func TestPair2MatchesSHA256(t *testing.T) {
	if !useSHA2x {
		t.Skip("no SHA-NI two-stream path on this machine")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rnd := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	for _, dbs := range []int{512, 1024, 2048, 4096} {
		for _, sl := range []int{0, 1, 31, 32, 55, 56, 63, 64, 65, 100, 128, 200, 256} {
			for _, v := range []int{0, 1} {
				h := &hasher{newH: sha256.New, ds: 32, version: v, salt: rnd(sl), isSHA256: true}
				p := newPair2(h, dbs)
				if p == nil {
					t.Fatalf("no pair2 for dbs %d salt %d", dbs, sl)
				}
				for range 3 {
					a, b := rnd(dbs), rnd(dbs)
					var da, db, wa, wb [32]byte
					p.sum(da[:], db[:], a, b)
					h.sum(sha256.New(), wa[:], a)
					h.sum(sha256.New(), wb[:], b)
					if da != wa || db != wb {
						t.Fatalf("dbs %d salt %d v%d: pair2 %x %x, want %x %x", dbs, sl, v, da, db, wa, wb)
					}
				}
			}
		}
	}
}

func BenchmarkPair2(b *testing.B) {
	h := &hasher{newH: sha256.New, ds: 32, version: 1, salt: bytes.Repeat([]byte{7}, 32), isSHA256: true}
	x, y := make([]byte, 4096), make([]byte, 4096)
	var da, db [32]byte
	b.Run("pair2", func(b *testing.B) {
		p := newPair2(h, 4096)
		if p == nil {
			b.Skip("no SHA-NI")
		}
		b.SetBytes(2 * 4096)
		for b.Loop() {
			p.sum(da[:], db[:], x, y)
		}
	})
	b.Run("single", func(b *testing.B) {
		st := sha256.New()
		b.SetBytes(2 * 4096)
		for b.Loop() {
			h.sum(st, da[:], x)
			h.sum(st, db[:], y)
		}
	})
}

// Format gives the same bytes with and without the two-stream path.
func TestFormatWithoutPair2(t *testing.T) {
	if !useSHA2x {
		t.Skip("no SHA-NI two-stream path on this machine")
	}
	for _, p := range []Params{
		{1, "sha256", 4096, 4096, []byte("salt"), testUUID, true},
		{0, "sha256", 512, 1024, bytes.Repeat([]byte{3}, 100), testUUID, false},
	} {
		data := randomData(777, p.DataBlockSize, 5)
		copy(data[100*p.DataBlockSize:], make([]byte, 3*p.DataBlockSize)) // zero blocks break pairs
		var a, b memFile
		ra, err := format(bytes.NewReader(data), int64(len(data)), &a, 0, p, 2)
		if err != nil {
			t.Fatal(err)
		}
		useSHA2x = false
		rb, err := format(bytes.NewReader(data), int64(len(data)), &b, 0, p, 2)
		useSHA2x = true
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ra.RootHash, rb.RootHash) || !bytes.Equal(a.b, b.b) {
			t.Errorf("v%d/%d: two-stream output differs from crypto/sha256", p.Version, p.DataBlockSize)
		}
	}
}

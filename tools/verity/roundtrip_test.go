package verity

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// Random parameters and sizes: Format then Verify succeeds, and any single
// flipped byte of the data or of the tree is reported as a *CorruptionError
// naming the block that holds it.
func TestRoundTripFlips(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 42))
	sizes := []int{512, 1024, 2048, 4096}
	hashes := []string{"sha1", "sha256", "sha512"}
	iters := 150
	if testing.Short() {
		iters = 30
	}
	for it := 0; it < iters; it++ {
		p := Params{
			Version:       rng.IntN(2),
			Hash:          hashes[rng.IntN(3)],
			DataBlockSize: sizes[rng.IntN(4)],
			HashBlockSize: sizes[rng.IntN(4)],
			Salt:          make([]byte, rng.IntN(40)),
			Superblock:    rng.IntN(2) == 0,
		}
		for i := range p.Salt {
			p.Salt[i] = byte(rng.Uint32())
		}
		blocks := 1 + rng.IntN(300)
		data := randomData(blocks, p.DataBlockSize, rng.Uint64())
		off := int64(rng.IntN(3)) * int64(p.HashBlockSize)
		var h memFile
		r, err := format(bytes.NewReader(data), int64(len(data)), &h, off, p, 1+rng.IntN(3))
		if err != nil {
			t.Fatalf("%d %+v: %v", it, p, err)
		}
		if err := Verify(bytes.NewReader(data), int64(len(data)), &h, off, p, r.RootHash); err != nil {
			t.Fatalf("%d %+v: verify good: %v", it, p, err)
		}
		l, _ := Plan(int64(len(data)), off, p)
		// flip a data byte
		k := rng.IntN(len(data))
		d := append([]byte{}, data...)
		d[k] ^= byte(1 + rng.IntN(255))
		err = Verify(bytes.NewReader(d), int64(len(d)), &h, off, p, r.RootHash)
		var ce *CorruptionError
		if !errors.As(err, &ce) || !ce.Data || ce.Block != uint64(k/p.DataBlockSize) {
			t.Fatalf("%d %+v: data byte %d (block %d) flipped: got %v", it, p, k, k/p.DataBlockSize, err)
		}
		// flip a tree byte
		if l.TreeBlocks == 0 {
			continue
		}
		treeStart := int(l.HashStartBlock) * p.HashBlockSize
		k = treeStart + rng.IntN(len(h.b)-treeStart)
		hb := append([]byte{}, h.b...)
		hb[k] ^= byte(1 + rng.IntN(255))
		err = Verify(bytes.NewReader(data), int64(len(data)), &memFile{hb}, off, p, r.RootHash)
		ce = nil
		if !errors.As(err, &ce) || ce.Data || ce.Block != uint64(k/p.HashBlockSize) {
			t.Fatalf("%d %+v: hash byte %d (block %d) flipped: got %v", it, p, k, k/p.HashBlockSize, err)
		}
	}
}

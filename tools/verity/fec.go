package verity

import (
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"
)

// Forward error correction, as `veritysetup format --fec-device` writes it
// and the kernel's dm-verity-fec reads it:
//
//   - The protected area is the data blocks followed by the hash blocks from
//     the first tree block (hash_start_block) on; each counts in blocks of the
//     (common) block size, and the total is the table's fec_blocks.
//   - Reed-Solomon RS(255, 255-roots) over GF(2^8) with field polynomial
//     0x11d, first consecutive root 0 and primitive element 1 (Karn's
//     init_rs_char(8, 0x11d, 0, 1, roots, 0)), systematic: the parity is the
//     remainder of data(x)*x^roots modulo the generator.
//   - Interleaving: with rsn = 255-roots, blocks = fec_blocks and rounds =
//     ceil(blocks/rsn), codeword (round n, byte b) takes byte b of blocks
//     n, rounds+n, 2*rounds+n, ... (rsn of them; blocks past the end read as
//     zero), so the bytes of one block are spread over distinct codewords.
//   - The parity is stored round by round, byte by byte, roots bytes per
//     codeword: rounds*block_size*roots bytes at the FEC offset (fec_start
//     blocks into the FEC device).

// FEC root limits (veritysetup's).
const (
	MinFECRoots = 2
	MaxFECRoots = 24
)

// ErrFEC is wrapped by errors about FEC parameters.
var ErrFEC = errors.New("verity: bad FEC parameters")

// FECResult describes parity written by EncodeFEC; Blocks, Start and Roots are
// the table's fec_blocks, fec_start and fec_roots.
type FECResult struct {
	Roots  int
	Blocks uint64 // protected blocks: data blocks + hash blocks covered
	Start  uint64 // FEC offset in blocks
	Rounds uint64
	Bytes  int64 // parity bytes written from the FEC offset
}

// FECSize returns the parity bytes for protected blocks of blockSize bytes.
func FECSize(blocks uint64, roots, blockSize int) int64 {
	rsn := uint64(255 - roots)
	return int64((blocks+rsn-1)/rsn) * int64(blockSize) * int64(roots)
}

// FECOptions returns the optional table words for FEC (to append after the
// table line with their count): "use_fec_from_device <dev> fec_roots <n>
// fec_blocks <n> fec_start <n>".
func FECOptions(r *FECResult, fecDev string) string {
	return fmt.Sprintf("use_fec_from_device %s fec_roots %d fec_blocks %d fec_start %d",
		fecDev, r.Roots, r.Blocks, r.Start)
}

// EncodeFEC writes Reed-Solomon parity over the dataSize bytes of data then
// hashSize bytes of hash starting at byte hashStart (the first tree block;
// veritysetup covers from there to the end of the hash device, or to the FEC
// offset when FEC and hash share a device), to fec at fecOffset. blockSize is
// the data (= hash) block size; sizes and offsets are multiples of it.
func EncodeFEC(data io.ReaderAt, dataSize int64, hash io.ReaderAt, hashStart, hashSize int64,
	fec io.WriterAt, fecOffset int64, roots, blockSize int) (*FECResult, error) {
	return encodeFEC(data, dataSize, hash, hashStart, hashSize, fec, fecOffset, roots, blockSize, 0)
}

func encodeFEC(data io.ReaderAt, dataSize int64, hash io.ReaderAt, hashStart, hashSize int64,
	fec io.WriterAt, fecOffset int64, roots, blockSize, workers int) (*FECResult, error) {
	if roots < MinFECRoots || roots > MaxFECRoots {
		return nil, fmt.Errorf("%w: %d roots (want %d..%d)", ErrFEC, roots, MinFECRoots, MaxFECRoots)
	}
	if err := checkBlockSize("block size", blockSize); err != nil {
		return nil, err
	}
	bs := int64(blockSize)
	for _, v := range []struct {
		what string
		n    int64
	}{{"data size", dataSize}, {"hash start", hashStart}, {"hash size", hashSize}, {"FEC offset", fecOffset}} {
		if v.n < 0 || v.n%bs != 0 {
			return nil, fmt.Errorf("%w: %s %d is not a multiple of the block size %d", ErrFEC, v.what, v.n, bs)
		}
	}
	if dataSize == 0 {
		return nil, fmt.Errorf("%w: data is empty", ErrDataSize)
	}
	dataBlocks := uint64(dataSize / bs)
	total := dataBlocks + uint64(hashSize/bs)
	rsn := uint64(255 - roots)
	rounds := (total + rsn - 1) / rsn
	res := &FECResult{Roots: roots, Blocks: total, Start: uint64(fecOffset / bs), Rounds: rounds,
		Bytes: FECSize(total, roots, blockSize)}
	if fecOffset > math.MaxInt64-res.Bytes {
		return nil, fmt.Errorf("%w: FEC offset %d too large", ErrFEC, fecOffset)
	}
	rs := newRS(roots)

	readBlock := func(k uint64, buf []byte) error {
		switch {
		case k < dataBlocks:
			return readFull(data, buf, int64(k)*bs, "data")
		case k < total:
			return readFull(hash, buf, hashStart+int64(k-dataBlocks)*bs, "hash")
		}
		clear(buf)
		return nil
	}
	// One round: parity of every byte column over its rsn blocks.
	doRound := func(n uint64, blk, out []byte, par [][]byte) error {
		for _, row := range par {
			clear(row)
		}
		for i := uint64(0); i < rsn; i++ {
			if err := readBlock(i*rounds+n, blk); err != nil {
				return err
			}
			rs.step(par, blk)
		}
		for b := 0; b < blockSize; b++ {
			for j := 0; j < roots; j++ {
				out[b*roots+j] = par[j][b]
			}
		}
		return nil
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = int(min(uint64(workers), max(rounds, 1)))
	var (
		mu       sync.Mutex
		firstErr error
		next     uint64
		wg       sync.WaitGroup
	)
	take := func() (uint64, bool) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr != nil || next >= rounds {
			return 0, false
		}
		next++
		return next - 1, true
	}
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			blk := make([]byte, blockSize)
			out := make([]byte, blockSize*roots)
			par := make([][]byte, roots)
			for j := range par {
				par[j] = make([]byte, blockSize)
			}
			for {
				n, ok := take()
				if !ok {
					return
				}
				if err := doRound(n, blk, out, par); err != nil {
					fail(err)
					return
				}
				mu.Lock()
				_, err := fec.WriteAt(out, fecOffset+int64(n)*int64(len(out)))
				mu.Unlock()
				if err != nil {
					fail(fmt.Errorf("write FEC: %w", err))
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return res, nil
}

// rsEncoder is a systematic RS encoder over GF(2^8)/0x11d whose generator
// has the roots alpha^0 .. alpha^(roots-1).
type rsEncoder struct {
	roots int
	// mul[j] multiplies by the generator coefficient the parity row j takes
	// from the feedback (g[roots-1-j]).
	mul [][256]byte
}

func newRS(roots int) *rsEncoder {
	var exp [512]byte
	var log [256]int
	x := 1
	for i := 0; i < 255; i++ {
		exp[i] = byte(x)
		log[x] = i
		x <<= 1
		if x&0x100 != 0 {
			x ^= 0x11d
		}
	}
	for i := 255; i < 512; i++ {
		exp[i] = exp[i-255]
	}
	gmul := func(a, b byte) byte {
		if a == 0 || b == 0 {
			return 0
		}
		return exp[log[a]+log[b]]
	}
	// g[k] is the coefficient of x^k; g = prod (x + alpha^i).
	g := make([]byte, roots+1)
	g[0] = 1
	for i := 0; i < roots; i++ {
		root := exp[i]
		for k := i + 1; k > 0; k-- {
			g[k] = g[k-1] ^ gmul(root, g[k])
		}
		g[0] = gmul(root, g[0])
	}
	e := &rsEncoder{roots: roots, mul: make([][256]byte, roots)}
	for j := 0; j < roots; j++ {
		c := g[roots-1-j]
		for v := 0; v < 256; v++ {
			e.mul[j][v] = gmul(c, byte(v))
		}
	}
	return e
}

// step feeds one symbol per column (blk[b] for column b) through the LFSR
// whose state is par[0..roots-1] (par[0] the highest remainder coefficient).
func (e *rsEncoder) step(par [][]byte, blk []byte) {
	first := par[0]
	// feedback, kept in first (which becomes the new last row)
	for b := range first {
		first[b] ^= blk[b]
	}
	fb := first
	last := e.roots - 1
	for j := 0; j < last; j++ {
		next, t := par[j+1], &e.mul[j]
		for b := range next {
			next[b] ^= t[fb[b]]
		}
	}
	// Rotate: rows 1..last move up to 0..last-1; the feedback row becomes
	// the new last row, fb * g[0].
	t := &e.mul[last]
	for b := range fb {
		fb[b] = t[fb[b]]
	}
	copy(par, par[1:])
	par[last] = fb
}

// VerifyFEC recomputes the parity EncodeFEC would write and compares it with
// the parity stored in fec at fecOffset. It returns nil when they match, and
// otherwise an error wrapping ErrCorrupt that names the first differing byte
// of the FEC device (a difference means the parity, the data or the covered
// hash blocks changed since it was written).
func VerifyFEC(data io.ReaderAt, dataSize int64, hash io.ReaderAt, hashStart, hashSize int64,
	fec io.ReaderAt, fecOffset int64, roots, blockSize int) error {
	c := &fecChecker{r: fec, first: -1}
	if _, err := encodeFEC(data, dataSize, hash, hashStart, hashSize, c, fecOffset, roots, blockSize, 0); err != nil {
		return err
	}
	if c.err != nil {
		return c.err
	}
	if c.first >= 0 {
		return fmt.Errorf("%w: FEC parity differs at byte %d of the FEC device", ErrCorrupt, c.first)
	}
	return nil
}

// fecChecker is an io.WriterAt that compares instead of writing. encodeFEC
// serializes its WriteAt calls.
type fecChecker struct {
	r     io.ReaderAt
	buf   []byte
	first int64
	err   error
}

func (c *fecChecker) WriteAt(p []byte, off int64) (int, error) {
	if cap(c.buf) < len(p) {
		c.buf = make([]byte, len(p))
	}
	b := c.buf[:len(p)]
	if err := readFull(c.r, b, off, "FEC"); err != nil {
		c.err = err
		return 0, err
	}
	for i := range p {
		if p[i] != b[i] {
			if c.first < 0 || off+int64(i) < c.first {
				c.first = off + int64(i)
			}
			break
		}
	}
	return len(p), nil
}

package verity

import (
	"bytes"
	"fmt"
	"hash"
	"io"
)

// batchBytes bounds the hash blocks a level buffers before writing (or, when
// verifying, reading and comparing) them.
const batchBytes = 256 << 10

type levelState struct {
	buf   []byte // batch of hash blocks being built, zero beyond what is set
	first uint64 // level-relative index of the first block in buf
	nfull int    // complete blocks in buf
	slot  int    // digests in the current block
	got   uint64 // digests received
	want  uint64 // digests this level receives
	// zblk is a full block of this level over all-zero data (every slot
	// the digest of an all-zero child) and zdg its digest: blocks equal to
	// zblk (holes, zeroed regions) are not hashed again.
	zblk []byte
	zdg  []byte
}

// tree builds the hash tree from the level-0 digests, level by level as the
// blocks fill up: memory is one batch per level. With w set it writes the
// blocks; with r set it compares them with the stored ones instead.
type tree struct {
	l    *Layout
	h    *hasher
	st   hash.Hash
	hbs  int
	dbs  int
	w    io.WriterAt
	r    io.ReaderAt
	lv   []levelState
	root []byte
	cmp  []byte
	// verification only
	wantRoot []byte
}

func newTree(l *Layout, p Params) *tree {
	t := &tree{l: l, h: newHasher(p), hbs: p.HashBlockSize, dbs: p.DataBlockSize}
	t.st = t.h.newH()
	per := max(1, batchBytes/t.hbs)
	t.lv = make([]levelState, l.Levels)
	zdg := make([]byte, t.h.ds)
	t.h.sum(t.st, zdg, zeroBlock[:t.dbs])
	for i := range t.lv {
		t.lv[i].zblk = make([]byte, t.hbs)
		for k := 0; k < l.PerBlock; k++ {
			copy(t.lv[i].zblk[k*l.Stride:], zdg)
		}
		zdg = make([]byte, t.h.ds)
		t.h.sum(t.st, zdg, t.lv[i].zblk)
		t.lv[i].zdg = zdg
		n := int(min(uint64(per), l.LevelSize[i]))
		t.lv[i].buf = make([]byte, n*t.hbs)
		if i == 0 {
			t.lv[i].want = l.DataBlocks
		} else {
			t.lv[i].want = l.LevelSize[i-1]
		}
	}
	return t
}

// addDigests feeds level-0 digests (data block order).
func (t *tree) addDigests(dgs []byte) error {
	ds := t.h.ds
	if t.l.Levels == 0 {
		t.root = append(t.root[:0], dgs[:ds]...)
		return nil
	}
	for i := 0; i+ds <= len(dgs); i += ds {
		if err := t.add(0, dgs[i:i+ds]); err != nil {
			return err
		}
	}
	return nil
}

func (t *tree) add(i int, dg []byte) error {
	ls := &t.lv[i]
	blk := ls.buf[ls.nfull*t.hbs : (ls.nfull+1)*t.hbs]
	copy(blk[ls.slot*t.l.Stride:], dg)
	ls.slot++
	ls.got++
	if ls.slot < t.l.PerBlock && ls.got < ls.want {
		return nil
	}
	var up [maxDigestSize]byte
	if ls.slot == t.l.PerBlock && bytes.Equal(blk, ls.zblk) {
		copy(up[:], ls.zdg)
	} else {
		t.h.sum(t.st, up[:t.h.ds], blk)
	}
	ls.slot = 0
	ls.nfull++
	if ls.nfull*t.hbs == len(ls.buf) || ls.got == ls.want {
		if err := t.flush(i); err != nil {
			return err
		}
	}
	if i == t.l.Levels-1 {
		t.root = append(t.root[:0], up[:t.h.ds]...)
		return nil
	}
	return t.add(i+1, up[:t.h.ds])
}

func (t *tree) blockOffset(level int, idx uint64) int64 {
	return int64(t.l.LevelStart[level]+idx) * int64(t.hbs)
}

func (t *tree) flush(i int) error {
	ls := &t.lv[i]
	n := ls.nfull * t.hbs
	off := t.blockOffset(i, ls.first)
	if t.w != nil {
		if _, err := t.w.WriteAt(ls.buf[:n], off); err != nil {
			return fmt.Errorf("write hash block %d: %w", t.l.LevelStart[i]+ls.first, err)
		}
	} else {
		if cap(t.cmp) < n {
			t.cmp = make([]byte, n)
		}
		stored := t.cmp[:n]
		if err := readFull(t.r, stored, off, "hash"); err != nil {
			return err
		}
		if !bytes.Equal(stored, ls.buf[:n]) {
			k := 0
			for stored[k] == ls.buf[k] {
				k++
			}
			return t.locate(i, ls.first+uint64(k/t.hbs), k%t.hbs)
		}
	}
	clear(ls.buf[:n])
	ls.first += uint64(ls.nfull)
	ls.nfull = 0
	return nil
}

func readFull(r io.ReaderAt, b []byte, off int64, what string) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		return fmt.Errorf("%w: %s device ends before byte %d", ErrDataSize, what, off+int64(len(b)))
	}
	return fmt.Errorf("read %s at byte %d: %w", what, off+int64(n), err)
}

// readStored reads one stored hash block.
func (t *tree) readStored(level int, idx uint64) ([]byte, error) {
	b := make([]byte, t.hbs)
	return b, readFull(t.r, b, t.blockOffset(level, idx), "hash")
}

// locate explains a difference between the recomputed and the stored hash
// block idx of level L at byte off within it: it checks the stored path from
// the root down to that block and names the first block that does not match
// its parent (or the root), else the child whose digest differs.
func (t *tree) locate(L int, idx uint64, off int) error {
	ds := t.h.ds
	var parent []byte
	var dg [maxDigestSize]byte
	top := t.l.Levels - 1
	for lv := top; lv >= L; lv-- {
		i := idx >> (t.l.PerBlockBits * uint(lv-L))
		blk, err := t.readStored(lv, i)
		if err != nil {
			return err
		}
		t.h.sum(t.st, dg[:ds], blk)
		if lv == top {
			if !bytes.Equal(dg[:ds], t.wantRoot) {
				return t.hashErr(lv, i, "does not match the root hash (top hash block corrupt, or wrong root hash)")
			}
		} else {
			slot := int(i & uint64(t.l.PerBlock-1))
			if !bytes.Equal(dg[:ds], parent[slot*t.l.Stride:slot*t.l.Stride+ds]) {
				pi := i >> t.l.PerBlockBits
				return t.hashErr(lv, i, fmt.Sprintf("does not match its digest in hash block %d", t.l.LevelStart[lv+1]+pi))
			}
		}
		parent = blk
	}
	slot, in := off/t.l.Stride, off%t.l.Stride
	if slot >= t.l.PerBlock || in >= ds {
		return t.hashErr(L, idx, fmt.Sprintf("has non-zero padding at byte %d", off))
	}
	child := idx<<t.l.PerBlockBits + uint64(slot)
	if L == 0 {
		return t.dataErr(child, fmt.Sprintf("does not match its digest in hash block %d", t.l.LevelStart[0]+idx))
	}
	return t.hashErr(L-1, child, fmt.Sprintf("does not match its digest in hash block %d", t.l.LevelStart[L]+idx))
}

func (t *tree) hashErr(level int, idx uint64, why string) error {
	b := t.l.LevelStart[level] + idx
	return &CorruptionError{Block: b, Level: level, Offset: int64(b) * int64(t.hbs), Reason: why}
}

func (t *tree) dataErr(block uint64, why string) error {
	return &CorruptionError{Data: true, Block: block, Level: -1,
		Offset: int64(block) * int64(t.dbs), Reason: why}
}

package verity

import (
	"fmt"
	"math"
	"math/bits"
)

// Layout is where everything of a tree lives on the hash device. Block
// numbers count hash blocks from the start of the hash device (the file the
// hash offset is taken in), as the kernel table's hash_start_block does.
type Layout struct {
	DataBlocks uint64
	DigestSize int
	// PerBlock digests fit in one hash block (a power of two, 1<<PerBlockBits);
	// Stride is the bytes between two digests (version 1: HashBlockSize /
	// PerBlock; version 0: DigestSize).
	PerBlock     int
	PerBlockBits uint
	Stride       int
	// Levels is the number of tree levels (0 when there is a single data
	// block: the root hash is then that block's digest). Level 0 is over the
	// data; Levels-1 is the top, a single block.
	Levels     int
	LevelStart []uint64 // first hash block of each level
	LevelSize  []uint64 // hash blocks in each level
	// HashOffset is the byte offset of the superblock (or of the tree without
	// one); HashStartBlock the first tree block; TreeBlocks the tree's size.
	HashOffset     int64
	HashStartBlock uint64
	TreeBlocks     uint64
	// HashEnd is the byte offset just past the tree (past the superblock's
	// hash block when there is no tree); HashBytes = HashEnd - HashOffset.
	HashEnd   int64
	HashBytes int64
}

// Plan validates p and computes the layout of a tree over dataSize bytes
// whose superblock (or tree) starts at byte hashOffset of the hash device.
func Plan(dataSize, hashOffset int64, p Params) (*Layout, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	_, ds, _ := newHash(p.Hash)
	dbs, hbs := int64(p.DataBlockSize), int64(p.HashBlockSize)
	if dataSize <= 0 {
		return nil, fmt.Errorf("%w: data is empty", ErrDataSize)
	}
	if dataSize%dbs != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a multiple of the data block size %d",
			ErrDataSize, dataSize, dbs)
	}
	if hashOffset < 0 {
		return nil, fmt.Errorf("%w: %d is negative", ErrHashOffset, hashOffset)
	}
	l := &Layout{DataBlocks: uint64(dataSize / dbs), DigestSize: ds, HashOffset: hashOffset}
	if p.Superblock {
		if hashOffset%superblockAlign != 0 {
			return nil, fmt.Errorf("%w: %d is not a multiple of %d", ErrHashOffset, hashOffset, superblockAlign)
		}
		if hashOffset > math.MaxInt64-SuperblockSize-hbs {
			return nil, fmt.Errorf("%w: %d is too large", ErrHashOffset, hashOffset)
		}
		l.HashStartBlock = uint64((hashOffset + SuperblockSize + hbs - 1) / hbs)
	} else {
		if hashOffset%hbs != 0 {
			return nil, fmt.Errorf("%w: %d is not a multiple of the hash block size %d (needed without a superblock)",
				ErrHashOffset, hashOffset, hbs)
		}
		l.HashStartBlock = uint64(hashOffset / hbs)
	}
	l.PerBlockBits = uint(bits.Len(uint(hbs)/uint(ds)) - 1)
	l.PerBlock = 1 << l.PerBlockBits
	if p.Version == 0 {
		l.Stride = ds
	} else {
		l.Stride = int(hbs) / l.PerBlock
	}
	b := l.PerBlockBits
	for b*uint(l.Levels) < 64 && (l.DataBlocks-1)>>(b*uint(l.Levels)) != 0 {
		l.Levels++
	}
	l.LevelStart = make([]uint64, l.Levels)
	l.LevelSize = make([]uint64, l.Levels)
	pos := l.HashStartBlock
	for i := l.Levels - 1; i >= 0; i-- {
		shift := uint(i+1) * b
		var s uint64
		if shift >= 64 {
			s = 1
		} else {
			s = (l.DataBlocks + (uint64(1) << shift) - 1) >> shift
			if s == 0 { // the addition overflowed: the true value is 1 << (64-shift)
				s = uint64(1) << (64 - shift)
			}
		}
		l.LevelStart[i] = pos
		l.LevelSize[i] = s
		pos += s
		l.TreeBlocks += s
	}
	if pos > uint64(math.MaxInt64)/uint64(hbs) {
		return nil, fmt.Errorf("%w: the hash area would end beyond 2^63 bytes", ErrHashOffset)
	}
	l.HashEnd = int64(pos) * hbs
	l.HashBytes = l.HashEnd - hashOffset
	return l, nil
}

// TreeSize returns the bytes a superblock (if p asks for one) and the tree over
// dataSize bytes take when the hash offset is a multiple of the hash block
// size: the room to reserve after a data image for an appended tree.
func TreeSize(dataSize int64, p Params) (int64, error) {
	l, err := Plan(dataSize, 0, p)
	if err != nil {
		return 0, err
	}
	return l.HashBytes, nil
}

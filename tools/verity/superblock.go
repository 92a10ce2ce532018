package verity

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Superblock layout (little-endian, 512 bytes), as cryptsetup's struct verity_sb:
//
//	0   8  "verity\0\0"
//	8   4  superblock version (1)
//	12  4  hash type (format version 0 or 1)
//	16  16 UUID
//	32  32 algorithm name, NUL padded
//	64  4  data block size
//	68  4  hash block size
//	72  8  data blocks
//	80  2  salt size
//	82  6  padding
//	88  256 salt
//	344 168 padding

// EncodeSuperblock returns the 512-byte superblock for p and dataBlocks.
func EncodeSuperblock(p Params, dataBlocks uint64) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, SuperblockSize)
	copy(b, superblockMagic)
	binary.LittleEndian.PutUint32(b[8:], superblockVersion)
	binary.LittleEndian.PutUint32(b[12:], uint32(p.Version))
	copy(b[16:32], p.UUID[:])
	copy(b[32:32+superblockAlgoSize], p.Hash)
	binary.LittleEndian.PutUint32(b[64:], uint32(p.DataBlockSize))
	binary.LittleEndian.PutUint32(b[68:], uint32(p.HashBlockSize))
	binary.LittleEndian.PutUint64(b[72:], dataBlocks)
	binary.LittleEndian.PutUint16(b[80:], uint16(len(p.Salt)))
	copy(b[88:88+MaxSaltSize], p.Salt)
	return b, nil
}

// ParseSuperblock decodes a superblock (the first 512 bytes of b). It returns
// the parameters (Superblock set) and the data block count. Anything outside
// this package's limits (unknown magic, version, hash, block sizes, a salt
// longer than 256 bytes, zero data blocks, a data size beyond 2^63 bytes) is an
// error wrapping ErrSuperblock (and the more precise sentinel where there is
// one). It never allocates more than the salt.
func ParseSuperblock(b []byte) (Params, uint64, error) {
	var p Params
	if len(b) < SuperblockSize {
		return p, 0, fmt.Errorf("%w: %d bytes, want %d", ErrSuperblock, len(b), SuperblockSize)
	}
	if string(b[:8]) != superblockMagic {
		return p, 0, fmt.Errorf("%w: no verity signature", ErrSuperblock)
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != superblockVersion {
		return p, 0, fmt.Errorf("%w: superblock version %d, want %d", ErrSuperblock, v, superblockVersion)
	}
	ht := binary.LittleEndian.Uint32(b[12:])
	if ht > 1 {
		return p, 0, fmt.Errorf("%w: hash type %d: %w", ErrSuperblock, ht, ErrVersion)
	}
	p.Version = int(ht)
	copy(p.UUID[:], b[16:32])
	algo := b[32 : 32+superblockAlgoSize]
	if i := bytes.IndexByte(algo, 0); i >= 0 {
		algo = algo[:i]
	}
	p.Hash = string(algo)
	if _, _, err := newHash(p.Hash); err != nil {
		return Params{}, 0, fmt.Errorf("%w: %w", ErrSuperblock, err)
	}
	dbs := binary.LittleEndian.Uint32(b[64:])
	hbs := binary.LittleEndian.Uint32(b[68:])
	if dbs > MaxBlockSize || hbs > MaxBlockSize {
		return Params{}, 0, fmt.Errorf("%w: %w: %d/%d", ErrSuperblock, ErrBadBlockSize, dbs, hbs)
	}
	p.DataBlockSize, p.HashBlockSize = int(dbs), int(hbs)
	n := binary.LittleEndian.Uint64(b[72:])
	ss := binary.LittleEndian.Uint16(b[80:])
	if ss > MaxSaltSize {
		return Params{}, 0, fmt.Errorf("%w: %w: size %d, at most %d", ErrSuperblock, ErrSalt, ss, MaxSaltSize)
	}
	p.Salt = append([]byte{}, b[88:88+int(ss)]...)
	p.Superblock = true
	if err := p.Validate(); err != nil {
		return Params{}, 0, fmt.Errorf("%w: %w", ErrSuperblock, err)
	}
	if n == 0 || n > uint64(math.MaxInt64)/uint64(dbs) {
		return Params{}, 0, fmt.Errorf("%w: %w: %d data blocks", ErrSuperblock, ErrDataSize, n)
	}
	return p, n, nil
}

// ReadSuperblock reads and decodes the superblock at byte offset off of r.
func ReadSuperblock(r io.ReaderAt, off int64) (Params, uint64, error) {
	b := make([]byte, SuperblockSize)
	if _, err := r.ReadAt(b, off); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return Params{}, 0, fmt.Errorf("%w: hash device too short for a superblock at offset %d", ErrSuperblock, off)
		}
		return Params{}, 0, fmt.Errorf("read superblock: %w", err)
	}
	return ParseSuperblock(b)
}

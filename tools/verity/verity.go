package verity

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
)

// Result describes a tree written by Format.
type Result struct {
	// RootHash is the digest the kernel table and veritysetup take.
	RootHash []byte
	// DataBlocks is the number of data blocks covered.
	DataBlocks uint64
	// HashStartBlock is the first tree block, in hash blocks from the start
	// of the hash device (so past the superblock): the table's
	// hash_start_block.
	HashStartBlock uint64
	// HashBytes is what Format wrote from the hash offset on: superblock and
	// its padding to a hash block boundary (if any), then the tree.
	HashBytes int64
	// TreeBlocks is the number of hash blocks of the tree (veritysetup's
	// "Hash blocks").
	TreeBlocks uint64
}

// RootHex returns the root hash as lowercase hex.
func (r *Result) RootHex() string { return hex.EncodeToString(r.RootHash) }

// CorruptionError names the first block found not to match the tree. It wraps
// ErrCorrupt.
type CorruptionError struct {
	// Data is true for a data block (Block is then its index on the data
	// device), false for a hash block (Block counts hash blocks from the
	// start of the hash device, as hash_start_block does).
	Data  bool
	Block uint64
	// Level is the tree level of a hash block (0 is the level over the
	// data), -1 for a data block.
	Level int
	// Offset is the block's byte offset in its device.
	Offset int64
	Reason string
}

func (e *CorruptionError) Error() string {
	if e.Data {
		return fmt.Sprintf("verity: data block %d (byte %d) %s", e.Block, e.Offset, e.Reason)
	}
	return fmt.Sprintf("verity: hash block %d (level %d, byte %d) %s", e.Block, e.Level, e.Offset, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptionError) Unwrap() error { return ErrCorrupt }

// Format computes the hash tree of the first dataSize bytes of data and writes
// it to hash, the superblock (when p.Superblock) at byte hashOffset and the
// tree from Result.HashStartBlock. data and hash may be the same file when
// the hash area lies past the data. Bytes of hash outside
// [hashOffset, hashOffset+HashBytes) are not touched.
func Format(data io.ReaderAt, dataSize int64, hash io.WriterAt, hashOffset int64, p Params) (*Result, error) {
	return formatWith(data, dataSize, hash, hashOffset, p, Options{})
}

// Options tunes [FormatWith] and [VerifyWith]; the zero value makes them
// [Format] and [Verify].
type Options struct {
	// Progress, when set, is called from one goroutine with the number of
	// data bytes done so far (holes included), increasing, after each
	// chunk of data. It must be cheap (it runs on the ordered output path).
	Progress func(done int64)
	// workers is the level-0 worker count (0: GOMAXPROCS); tests set it.
	workers int
}

// FormatWith is [Format] with options.
func FormatWith(data io.ReaderAt, dataSize int64, hash io.WriterAt, hashOffset int64, p Params, o Options) (*Result, error) {
	return formatWith(data, dataSize, hash, hashOffset, p, o)
}

// VerifyWith is [Verify] with options.
func VerifyWith(data io.ReaderAt, dataSize int64, hash io.ReaderAt, hashOffset int64, p Params, root []byte, o Options) error {
	return verifyWith(data, dataSize, hash, hashOffset, p, root, o)
}

// format is Format with a given worker count (tests).
func format(data io.ReaderAt, dataSize int64, hash io.WriterAt, hashOffset int64, p Params, workers int) (*Result, error) {
	return formatWith(data, dataSize, hash, hashOffset, p, Options{workers: workers})
}

func formatWith(data io.ReaderAt, dataSize int64, hash io.WriterAt, hashOffset int64, p Params, o Options) (*Result, error) {
	l, err := Plan(dataSize, hashOffset, p)
	if err != nil {
		return nil, err
	}
	if p.Superblock {
		sb, err := EncodeSuperblock(p, l.DataBlocks)
		if err != nil {
			return nil, err
		}
		pad := make([]byte, int64(l.HashStartBlock)*int64(p.HashBlockSize)-hashOffset)
		copy(pad, sb)
		if _, err := hash.WriteAt(pad, hashOffset); err != nil {
			return nil, fmt.Errorf("write superblock: %w", err)
		}
	}
	z, err := newLevel0(data, l, p, o)
	if err != nil {
		return nil, err
	}
	t := newTree(l, p)
	t.w = hash
	if err := z.run(t.addDigests); err != nil {
		return nil, err
	}
	return &Result{
		RootHash:       t.root,
		DataBlocks:     l.DataBlocks,
		HashStartBlock: l.HashStartBlock,
		HashBytes:      l.HashBytes,
		TreeBlocks:     l.TreeBlocks,
	}, nil
}

// Verify checks the first dataSize bytes of data against the tree stored in
// hash at hashOffset (laid out as Format writes it) and the root hash. With
// p.Superblock the stored superblock must match p and the data size. It
// returns nil when everything matches, a *CorruptionError naming the first bad
// block found, or another error (bad parameters, I/O).
func Verify(data io.ReaderAt, dataSize int64, hash io.ReaderAt, hashOffset int64, p Params, root []byte) error {
	return verifyWith(data, dataSize, hash, hashOffset, p, root, Options{})
}

func verifyWith(data io.ReaderAt, dataSize int64, hash io.ReaderAt, hashOffset int64, p Params, root []byte, o Options) error {
	l, err := Plan(dataSize, hashOffset, p)
	if err != nil {
		return err
	}
	if len(root) != l.DigestSize {
		return fmt.Errorf("%w: %d bytes, want %d for %s", ErrRootHash, len(root), l.DigestSize, p.Hash)
	}
	if p.Superblock {
		sp, n, err := ReadSuperblock(hash, hashOffset)
		if err != nil {
			return err
		}
		if err := sameParams(sp, n, p, l.DataBlocks); err != nil {
			return err
		}
	}
	z, err := newLevel0(data, l, p, o)
	if err != nil {
		return err
	}
	t := newTree(l, p)
	t.r = hash
	t.wantRoot = root
	if err := z.run(t.addDigests); err != nil {
		return err
	}
	if bytes.Equal(t.root, root) {
		return nil
	}
	if l.Levels == 0 {
		return t.dataErr(0, "does not match the root hash")
	}
	if err := t.locate(l.Levels-1, 0, 0); err != nil {
		return err
	}
	return fmt.Errorf("%w: root hash mismatch", ErrCorrupt)
}

func sameParams(sb Params, n uint64, p Params, dataBlocks uint64) error {
	switch {
	case sb.Version != p.Version:
		return fmt.Errorf("%w: superblock has format %d, want %d", ErrSuperblock, sb.Version, p.Version)
	case sb.Hash != p.Hash:
		return fmt.Errorf("%w: superblock has hash %s, want %s", ErrSuperblock, sb.Hash, p.Hash)
	case sb.DataBlockSize != p.DataBlockSize || sb.HashBlockSize != p.HashBlockSize:
		return fmt.Errorf("%w: superblock has block sizes %d/%d, want %d/%d", ErrSuperblock,
			sb.DataBlockSize, sb.HashBlockSize, p.DataBlockSize, p.HashBlockSize)
	case !bytes.Equal(sb.Salt, p.Salt):
		return fmt.Errorf("%w: superblock has salt %s, want %s", ErrSuperblock, SaltString(sb.Salt), SaltString(p.Salt))
	case n != dataBlocks:
		return fmt.Errorf("%w: superblock has %d data blocks, want %d", ErrSuperblock, n, dataBlocks)
	}
	return nil
}

// Table returns the kernel table line (without optional arguments) for a
// tree: "0 <data sectors> verity <version> <dataDev> <hashDev> <data block
// size> <hash block size> <data blocks> <hash start block> <hash> <root hex>
// <salt hex or ->". dataDev and hashDev are used verbatim (device paths, or
// placeholders such as @DATA@ and @LOWER@).
func Table(p Params, r *Result, dataDev, hashDev string) string {
	sectors := r.DataBlocks * uint64(p.DataBlockSize) / 512
	return fmt.Sprintf("0 %d verity %d %s %s %d %d %d %d %s %s %s",
		sectors, p.Version, dataDev, hashDev, p.DataBlockSize, p.HashBlockSize,
		r.DataBlocks, r.HashStartBlock, p.Hash, hex.EncodeToString(r.RootHash), SaltString(p.Salt))
}

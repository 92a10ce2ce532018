// Package integrity writes dm-integrity devices offline: superblock, a kernel-style empty
// journal and the tags of every block, so that the Linux kernel activates the result with
// no write at all (rules: docs integrity-offline.md, verified on Linux 6.1).
//
// Two layouts:
//   - separate: the data device holds the data unchanged; a metadata device holds the
//     superblock, the journal and the tags (contiguous). FormatSeparate writes the
//     metadata image only.
//   - interleaved: one device holds superblock, journal, then areas of
//     [metadata run | interleave_sectors data sectors]. FormatInterleaved takes the
//     logical data and writes the whole device (fix_padding, as integritysetup 2.6).
//
// Everything streams through io.ReaderAt / io.WriterAt with bounded memory.
package integrity

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// On-disk constants (kernel drivers/md/dm-integrity.c).
const (
	SectorSize           = 512
	SuperblockSectors    = 8
	SaltSize             = 16
	MaxTagSize           = 255 // kernel MAX_TAG_SIZE (newer kernels; 6.1 allows a bit more)
	journalSectorData    = 504 // 512 - commit id
	journalBlockSectors  = 8
	defaultInterleave    = 32768
	defaultBufferSectors = 128
	defaultMaxJournal    = 131072 // DEFAULT_MAX_JOURNAL_SECTORS (64-bit)
	journalSizeFactor    = 7      // DEFAULT_JOURNAL_SIZE_FACTOR
	metadataPadding      = 8      // METADATA_PADDING_SECTORS
	fixedPaddingBytes    = 4096   // metadata run padding with FIXED_PADDING
	defaultBitmapLog2    = 15     // DEFAULT_SECTORS_PER_BITMAP_BIT = 32768
)

// Superblock flags.
const (
	FlagHaveJournalMAC = 0x1
	FlagRecalculating  = 0x2
	FlagDirtyBitmap    = 0x4
	FlagFixedPadding   = 0x8
	FlagFixedHMAC      = 0x10
)

// Layouts.
const (
	LayoutSeparate    = "separate"
	LayoutInterleaved = "interleaved"
)

// Hashes.
const (
	HashCRC32C     = "crc32c"
	HashSHA256     = "sha256"
	HashHMACSHA256 = "hmac-sha256"
	HashNone       = "none"
)

// TagFunc supplies the tag of one block for hash "none" (tags written by someone else,
// e.g. dm-crypt AEAD). It gets the block's data (zero-filled past the input) and must fill
// tag (TagSize bytes). It may be called from several goroutines, for distinct blocks.
type TagFunc func(block int64, data, tag []byte) error

// Params selects the format. The zero value (plus a salt) is integritysetup 2.6's default
// except for the block size: crc32c, tag 4, 4096-byte blocks, separate metadata, mode J,
// kernel-default journal size, fix_hmac.
type Params struct {
	Hash      string // crc32c (default), sha256, hmac-sha256, none
	Key       []byte // hmac-sha256 key (required for it, refused otherwise)
	TagSize   int    // 0: digest size (crc32c 4, sha256 32); required for none
	BlockSize int    // 512 or 4096 (default 4096)
	Layout    string // separate (default) or interleaved
	Mode      byte   // 'J' (default) or 'D'; same on-disk image
	// JournalSections: 0 = what the kernel (and so integritysetup) picks:
	// max(1, min(131072, device_sectors>>7) / section_sectors), where device_sectors is
	// the data device (separate) or the whole device (interleaved).
	JournalSections int
	// Salt (16 bytes) hashed into every tag with fix_hmac. nil: DeriveSalt("", p).
	Salt []byte
	// NoFixHMAC disables fix_hmac (superblock v2 separate / v4 interleaved, no salt).
	// Hash none never uses fix_hmac.
	NoFixHMAC bool
	// InterleaveSectors (interleaved only): power of two 8..2^31, default 32768.
	InterleaveSectors int
	// BufferSectors: separate only, power of two 8..65536, default 128; the metadata image
	// is sized so that the kernel keeps it (interleaved: min(128, metadata run)).
	BufferSectors int
	// Hash none: exactly one of Tags (a stream of TagSize bytes per block, block order)
	// or TagFunc.
	Tags    io.Reader
	TagFunc TagFunc
	// Workers: parallel tag computation (0 = GOMAXPROCS).
	Workers int
	// Progress, if set, is called by the format workers (concurrently, in no
	// particular order) with the number of data bytes of each chunk done,
	// holes skipped included: the calls add up to the data size rounded up to
	// whole blocks (more when an interleaved device zero-extends the data).
	// It must be cheap and safe for concurrent use (e.g. progress.Bar.Add).
	Progress func(n int64)
}

// ErrParams marks invalid parameters (usage errors for the CLI).
var ErrParams = errors.New("invalid integrity parameters")

func paramErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrParams, fmt.Sprintf(format, a...))
}

// digestSize of an internal hash (0 for none).
func digestSize(hash string) int {
	switch hash {
	case HashCRC32C:
		return 4
	case HashSHA256, HashHMACSHA256:
		return 32
	}
	return 0
}

// MinTagSize is the smallest tag size accepted for a hash. The kernel itself truncates or
// zero-pads digests to any tag size of 1..255 bytes; we refuse tags that throw away
// protection: crc32c needs its full 4 bytes, sha256/hmac-sha256 at least 16 bytes
// (128 bits, truncated like the kernel does). Larger than the digest: zero-padded.
func MinTagSize(hash string) int {
	switch hash {
	case HashCRC32C:
		return 4
	case HashSHA256, HashHMACSHA256:
		return 16
	}
	return 1
}

// normalize validates p and fills in defaults. It does not compute the salt.
func (p Params) normalize() (Params, error) {
	if p.Hash == "" {
		p.Hash = HashCRC32C
	}
	switch p.Hash {
	case HashCRC32C, HashSHA256, HashHMACSHA256, HashNone:
	default:
		return p, paramErr("unknown hash %q (want crc32c, sha256, hmac-sha256 or none)", p.Hash)
	}
	if p.Hash == HashHMACSHA256 && len(p.Key) == 0 {
		return p, paramErr("hash hmac-sha256 needs a key")
	}
	if p.Hash != HashHMACSHA256 && len(p.Key) != 0 {
		return p, paramErr("a key is only used with hash hmac-sha256")
	}
	if p.Hash == HashNone {
		if p.TagSize == 0 {
			return p, paramErr("hash none needs an explicit tag size")
		}
		p.NoFixHMAC = true
	} else if p.Tags != nil || p.TagFunc != nil {
		return p, paramErr("caller-supplied tags are only used with hash none")
	}
	if p.TagSize == 0 {
		p.TagSize = digestSize(p.Hash)
	}
	if p.TagSize < MinTagSize(p.Hash) {
		return p, paramErr("tag size %d too small for hash %s (minimum %d)", p.TagSize, p.Hash, MinTagSize(p.Hash))
	}
	if p.TagSize > MaxTagSize {
		return p, paramErr("tag size %d too large (maximum %d)", p.TagSize, MaxTagSize)
	}
	if p.BlockSize == 0 {
		p.BlockSize = 4096
	}
	if p.BlockSize != 512 && p.BlockSize != 4096 {
		return p, paramErr("block size %d not supported (512 or 4096)", p.BlockSize)
	}
	if p.Layout == "" {
		p.Layout = LayoutSeparate
	}
	if p.Layout != LayoutSeparate && p.Layout != LayoutInterleaved {
		return p, paramErr("unknown layout %q (separate or interleaved)", p.Layout)
	}
	switch p.Mode {
	case 0:
		p.Mode = 'J'
	case 'J', 'D':
	case 'B':
		return p, paramErr("mode B (bitmap) is not supported: the kernel writes the superblock at every activation in bitmap mode")
	default:
		return p, paramErr("unknown mode %q (J or D)", string(rune(p.Mode)))
	}
	if p.JournalSections < 0 || p.JournalSections > 1<<20 {
		return p, paramErr("journal sections %d out of range (1..1048576, 0 = default)", p.JournalSections)
	}
	if p.Salt != nil && len(p.Salt) != SaltSize {
		return p, paramErr("salt must be %d bytes, got %d", SaltSize, len(p.Salt))
	}
	if p.Layout == LayoutInterleaved {
		if p.InterleaveSectors == 0 {
			p.InterleaveSectors = defaultInterleave
		}
		if !pow2(p.InterleaveSectors) || p.InterleaveSectors < 8 || p.InterleaveSectors < p.BlockSize/SectorSize || int64(p.InterleaveSectors) > 1<<31 {
			return p, paramErr("interleave sectors %d: want a power of two from 8 to 2^31", p.InterleaveSectors)
		}
		if p.BufferSectors != 0 {
			return p, paramErr("buffer sectors are chosen by the kernel for the interleaved layout")
		}
	} else {
		if p.InterleaveSectors != 0 && p.InterleaveSectors != 1 {
			return p, paramErr("interleave sectors only apply to the interleaved layout")
		}
		p.InterleaveSectors = 1
		if p.BufferSectors == 0 {
			p.BufferSectors = defaultBufferSectors
		}
		if !pow2(p.BufferSectors) || p.BufferSectors < 8 || p.BufferSectors > 65536 {
			return p, paramErr("buffer sectors %d: want a power of two from 8 to 65536", p.BufferSectors)
		}
	}
	if p.Tags != nil && p.TagFunc != nil {
		return p, paramErr("give either Tags or TagFunc, not both")
	}
	return p, nil
}

func pow2(n int) bool { return n > 0 && n&(n-1) == 0 }

func log2(n int) int { return bits.Len(uint(n)) - 1 }

// geom is the complete on-disk geometry.
type geom struct {
	interleaved    bool
	tagSize        int
	spb, log2spb   int // sectors per block
	entrySize      int
	entriesPerSect int
	sectionEntries int
	sectionSectors int
	sections       int
	initial        uint64 // superblock + journal, sectors
	provided       uint64 // data sectors the mapping provides
	log2I          int    // interleaved: log2 of data sectors per area
	metaRun        uint64 // interleaved: metadata sectors per area
	bufferSectors  int
	totalSectors   uint64 // meta image (separate) or whole device (interleaved)
	log2BPBB       int    // superblock log2_blocks_per_bitmap_bit
}

func journalGeometry(g *geom) error {
	g.entrySize = roundUp(8+8*g.spb+g.tagSize, 8)
	g.entriesPerSect = journalSectorData / g.entrySize
	if g.entriesPerSect == 0 {
		return paramErr("tag size %d too large for the journal", g.tagSize)
	}
	g.sectionEntries = g.entriesPerSect * journalBlockSectors
	g.sectionSectors = g.sectionEntries<<g.log2spb + journalBlockSectors
	return nil
}

func roundUp(n, m int) int { return (n + m - 1) / m * m }

func roundUp64(n, m uint64) uint64 { return (n + m - 1) / m * m }

// defaultSections is the kernel's choice when the table gives no journal_sectors.
func defaultSections(deviceSectors uint64, sectionSectors int) int {
	js := deviceSectors >> journalSizeFactor
	if js > defaultMaxJournal {
		js = defaultMaxJournal
	}
	n := int(js / uint64(sectionSectors))
	if n < 1 {
		n = 1
	}
	return n
}

// interleaved geometry helpers (kernel calculate_device_limits / get_data_sector).
func (g *geom) physData(s uint64) uint64 {
	area := s >> g.log2I
	off := s & (1<<g.log2I - 1)
	return area<<g.log2I + (area+1)*g.metaRun + g.initial + off
}

func (g *geom) fits(provided, devSectors uint64) bool {
	if g.initial+metadataPadding >= devSectors || g.initial > 0xffffffff {
		return false
	}
	return g.physData(provided-1) < devSectors
}

// providedFor runs the kernel's greedy get_provided_data_sectors on a device.
func (g *geom) providedFor(devSectors uint64) uint64 {
	var p uint64
	for bit := bits.Len64(devSectors) - 1; bit >= 3; bit-- {
		try := p | 1<<uint(bit)
		if g.fits(try, devSectors) {
			p = try
		}
	}
	return p
}

func (g *geom) setSections(n int) {
	g.sections = n
	g.initial = SuperblockSectors + uint64(n)*uint64(g.sectionSectors)
}

func (g *geom) computeBPBB() {
	l := defaultBitmapLog2
	if l < g.log2spb {
		l = g.log2spb
	}
	bitsInJournal := uint64(g.sections) * uint64(g.sectionSectors) << (9 + 3)
	if bitsInJournal > 0xffffffff {
		bitsInJournal = 0xffffffff
	}
	for bitsInJournal < (g.provided+(1<<uint(l))-1)>>uint(l) {
		l++
	}
	g.log2BPBB = l - g.log2spb
}

// plan computes the geometry for dataSize bytes of input.
func plan(dataSize int64, p Params) (*geom, error) {
	g := &geom{interleaved: p.Layout == LayoutInterleaved, tagSize: p.TagSize, spb: p.BlockSize / SectorSize}
	g.log2spb = log2(g.spb)
	if dataSize <= 0 {
		return nil, paramErr("data size must be positive, got %d", dataSize)
	}
	if dataSize%int64(p.BlockSize) != 0 {
		return nil, paramErr("data size %d is not a multiple of the block size %d", dataSize, p.BlockSize)
	}
	if dataSize > 1<<56 {
		return nil, paramErr("data size %d too large", dataSize)
	}
	if err := journalGeometry(g); err != nil {
		return nil, err
	}
	n := uint64(dataSize / SectorSize)
	if !g.interleaved {
		g.provided = n
		secs := p.JournalSections
		if secs == 0 {
			secs = defaultSections(n, g.sectionSectors)
		}
		g.setSections(secs)
		g.bufferSectors = p.BufferSectors
		tagBytes := n >> uint(g.log2spb) * uint64(g.tagSize)
		g.totalSectors = g.initial + roundUp64(tagBytes, uint64(g.bufferSectors)*SectorSize)/SectorSize
		g.computeBPBB()
		return g, nil
	}
	g.log2I = log2(p.InterleaveSectors)
	g.metaRun = roundUp64(uint64(g.tagSize)<<uint(g.log2I-g.log2spb), fixedPaddingBytes) / SectorSize
	g.bufferSectors = defaultBufferSectors
	if lb := int(g.metaRun & -g.metaRun); lb < g.bufferSectors {
		g.bufferSectors = lb
	}
	// Smallest device (a multiple of 4 KiB) whose provided_data_sectors >= n. A lower
	// bound: n data sectors + superblock + journal + one metadata run per area.
	areas := (n + 1<<uint(g.log2I) - 1) >> uint(g.log2I)
	dev := n + SuperblockSectors + areas*g.metaRun
	dev = roundUp64(dev, 8)
	for iter := 0; ; iter++ {
		secs := p.JournalSections
		if secs == 0 {
			secs = defaultSections(dev, g.sectionSectors)
		}
		g.setSections(secs)
		if lower := n + g.initial + areas*g.metaRun; dev < lower {
			dev = roundUp64(lower, 8)
			continue
		}
		if g.providedFor(dev) >= n {
			break
		}
		if iter > 1<<22 {
			return nil, fmt.Errorf("cannot size the interleaved device for %d bytes", dataSize)
		}
		dev += 8
	}
	g.totalSectors = dev
	g.provided = g.providedFor(dev)
	g.computeBPBB()
	return g, nil
}

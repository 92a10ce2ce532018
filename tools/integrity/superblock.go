package integrity

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Magic starts every dm-integrity superblock.
var Magic = [8]byte{'i', 'n', 't', 'e', 'g', 'r', 't', 0}

// Superblock is the on-disk superblock (first 64 bytes of sector 0; little-endian).
type Superblock struct {
	Version                uint8
	Log2InterleaveSectors  uint8
	TagSize                uint16
	JournalSections        uint32
	ProvidedDataSectors    uint64
	Flags                  uint32
	Log2SectorsPerBlock    uint8
	Log2BlocksPerBitmapBit uint8
	RecalcSector           uint64
	Salt                   [SaltSize]byte
}

// SuperblockLen is the number of meaningful superblock bytes.
const SuperblockLen = 64

// versionFor follows the kernel's sb_set_version (mode B never used here).
func versionFor(flags uint32, metaDevice bool) uint8 {
	switch {
	case flags&FlagFixedHMAC != 0:
		return 5
	case flags&FlagFixedPadding != 0:
		return 4
	case flags&FlagDirtyBitmap != 0:
		return 3
	case metaDevice || flags&FlagRecalculating != 0:
		return 2
	}
	return 1
}

// Marshal returns the 4096-byte superblock area (8 sectors; all but 64 bytes zero).
func (sb *Superblock) Marshal() []byte {
	b := make([]byte, SuperblockSectors*SectorSize)
	copy(b, Magic[:])
	b[8] = sb.Version
	b[9] = sb.Log2InterleaveSectors
	binary.LittleEndian.PutUint16(b[10:], sb.TagSize)
	binary.LittleEndian.PutUint32(b[12:], sb.JournalSections)
	binary.LittleEndian.PutUint64(b[16:], sb.ProvidedDataSectors)
	binary.LittleEndian.PutUint32(b[24:], sb.Flags)
	b[28] = sb.Log2SectorsPerBlock
	b[29] = sb.Log2BlocksPerBitmapBit
	binary.LittleEndian.PutUint64(b[32:], sb.RecalcSector)
	copy(b[48:64], sb.Salt[:])
	return b
}

// ParseSuperblock decodes and validates a superblock (at least 64 bytes). It accepts
// only what an offline image may hold and what the kernel (6.1) accepts: versions 1..5,
// no journal MAC, no recalculation or dirty bitmap, a consistent geometry. It never
// panics on hostile input.
func ParseSuperblock(b []byte) (*Superblock, error) {
	if len(b) < SuperblockLen {
		return nil, fmt.Errorf("superblock: %d bytes, need %d", len(b), SuperblockLen)
	}
	if !bytes.Equal(b[:8], Magic[:]) {
		if bytes.Count(b[:SuperblockLen], []byte{0}) == SuperblockLen {
			return nil, fmt.Errorf("superblock: all zero (not formatted)")
		}
		return nil, fmt.Errorf("superblock: bad magic %q", b[:8])
	}
	sb := &Superblock{
		Version:                b[8],
		Log2InterleaveSectors:  b[9],
		TagSize:                binary.LittleEndian.Uint16(b[10:]),
		JournalSections:        binary.LittleEndian.Uint32(b[12:]),
		ProvidedDataSectors:    binary.LittleEndian.Uint64(b[16:]),
		Flags:                  binary.LittleEndian.Uint32(b[24:]),
		Log2SectorsPerBlock:    b[28],
		Log2BlocksPerBitmapBit: b[29],
		RecalcSector:           binary.LittleEndian.Uint64(b[32:]),
	}
	copy(sb.Salt[:], b[48:64])
	if sb.Version < 1 || sb.Version > 5 {
		return nil, fmt.Errorf("superblock: unsupported version %d (1..5)", sb.Version)
	}
	const known = FlagHaveJournalMAC | FlagRecalculating | FlagDirtyBitmap | FlagFixedPadding | FlagFixedHMAC
	if sb.Flags&^uint32(known) != 0 {
		return nil, fmt.Errorf("superblock: unknown flags %#x", sb.Flags)
	}
	if sb.Flags&FlagHaveJournalMAC != 0 {
		return nil, fmt.Errorf("superblock: journal MAC is not supported")
	}
	if sb.Flags&(FlagRecalculating|FlagDirtyBitmap) != 0 {
		return nil, fmt.Errorf("superblock: recalculating/dirty-bitmap flags set (flags %#x)", sb.Flags)
	}
	if sb.TagSize == 0 || sb.TagSize > MaxTagSize {
		return nil, fmt.Errorf("superblock: tag size %d out of range 1..%d", sb.TagSize, MaxTagSize)
	}
	if sb.Log2SectorsPerBlock > 3 {
		return nil, fmt.Errorf("superblock: log2_sectors_per_block %d out of range 0..3", sb.Log2SectorsPerBlock)
	}
	if sb.JournalSections == 0 || sb.JournalSections > 1<<24 {
		return nil, fmt.Errorf("superblock: journal_sections %d out of range", sb.JournalSections)
	}
	if sb.Log2InterleaveSectors != 0 && (sb.Log2InterleaveSectors < 3 || sb.Log2InterleaveSectors > 31) {
		return nil, fmt.Errorf("superblock: log2_interleave_sectors %d out of range", sb.Log2InterleaveSectors)
	}
	if sb.Log2InterleaveSectors != 0 && int(sb.Log2InterleaveSectors) < int(sb.Log2SectorsPerBlock) {
		return nil, fmt.Errorf("superblock: interleave smaller than a block")
	}
	spb := uint64(1) << sb.Log2SectorsPerBlock
	if sb.ProvidedDataSectors == 0 || sb.ProvidedDataSectors%spb != 0 || sb.ProvidedDataSectors > 1<<56 {
		return nil, fmt.Errorf("superblock: provided_data_sectors %d invalid", sb.ProvidedDataSectors)
	}
	if want := versionFor(sb.Flags, sb.Log2InterleaveSectors == 0); sb.Version < want {
		return nil, fmt.Errorf("superblock: version %d too old for flags %#x", sb.Version, sb.Flags)
	}
	if sb.Flags&FlagFixedPadding != 0 && sb.Log2InterleaveSectors == 0 {
		return nil, fmt.Errorf("superblock: fix_padding without interleaving")
	}
	if _, err := sb.geometry(); err != nil {
		return nil, err
	}
	return sb, nil
}

// Interleaved reports whether the superblock describes a single (interleaved) device.
func (sb *Superblock) Interleaved() bool { return sb.Log2InterleaveSectors != 0 }

// geometry rebuilds the layout from a parsed superblock (totalSectors left 0).
func (sb *Superblock) geometry() (*geom, error) {
	g := &geom{
		interleaved: sb.Interleaved(),
		tagSize:     int(sb.TagSize),
		log2spb:     int(sb.Log2SectorsPerBlock),
		spb:         1 << sb.Log2SectorsPerBlock,
		provided:    sb.ProvidedDataSectors,
	}
	if err := journalGeometry(g); err != nil {
		return nil, fmt.Errorf("superblock: %w", err)
	}
	g.setSections(int(sb.JournalSections))
	if g.initial > 0xffffffff {
		return nil, fmt.Errorf("superblock: journal too large")
	}
	if g.interleaved {
		g.log2I = int(sb.Log2InterleaveSectors)
		pad := uint64(fixedPaddingBytes)
		if sb.Flags&FlagFixedPadding == 0 {
			pad = 1 << (9 + metadataPadding)
		}
		g.metaRun = roundUp64(uint64(g.tagSize)<<uint(g.log2I-g.log2spb), pad) / SectorSize
		g.bufferSectors = defaultBufferSectors
		if lb := int(g.metaRun & -g.metaRun); lb < g.bufferSectors {
			g.bufferSectors = lb
		}
	}
	g.log2BPBB = int(sb.Log2BlocksPerBitmapBit)
	return g, nil
}

package integrity

import (
	"encoding/binary"
	"fmt"
	"io"
)

// commitIDs are the kernel's fixed commit ids when there is no journal encryption.
var commitIDs = [4]uint64{0x1111111111111111, 0x2222222222222222, 0x3333333333333333, 0x4444444444444444}

// journalSection returns the bytes of one empty journal section (section i, sequence seq):
// every sector ends with le64(C[seq] ^ (i<<32 ^ j)); every entry is marked unused
// (sector_hi = 0xFFFFFFFF); everything else is zero.
func (g *geom) journalSection(buf []byte, i int, seq int) []byte {
	n := g.sectionSectors * SectorSize
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	clear(buf)
	for e := 0; e < g.sectionEntries; e++ {
		off := (e%journalBlockSectors)*SectorSize + (e/journalBlockSectors)*g.entrySize
		binary.LittleEndian.PutUint32(buf[off+4:], 0xffffffff)
	}
	for j := 0; j < g.sectionSectors; j++ {
		id := commitIDs[seq] ^ (uint64(i)<<32 ^ uint64(j))
		binary.LittleEndian.PutUint64(buf[j*SectorSize+journalSectorData:], id)
	}
	return buf
}

// writeJournal writes all sections after the superblock at base (bytes).
func (g *geom) writeJournal(w io.WriterAt, base int64) error {
	var buf []byte
	for i := 0; i < g.sections; i++ {
		buf = g.journalSection(buf, i, 0)
		off := base + int64(SuperblockSectors*SectorSize) + int64(i)*int64(len(buf))
		if _, err := w.WriteAt(buf, off); err != nil {
			return fmt.Errorf("write journal: %w", err)
		}
	}
	return nil
}

// checkJournal verifies that the journal is a valid empty journal: every sector of a
// section carries the commit id of one sequence (sections may differ: the kernel
// commits section by section, e.g. seqs 2,1 after a close) and every entry is unused.
// It returns the sequence of section 0.
func (g *geom) checkJournal(r io.ReaderAt, base int64) (int, error) {
	first := -1
	n := g.sectionSectors * SectorSize
	buf := make([]byte, n)
	for i := 0; i < g.sections; i++ {
		seq := -1
		off := base + int64(SuperblockSectors*SectorSize) + int64(i)*int64(n)
		if _, err := r.ReadAt(buf, off); err != nil {
			return 0, fmt.Errorf("read journal section %d: %w", i, err)
		}
		for j := 0; j < g.sectionSectors; j++ {
			id := binary.LittleEndian.Uint64(buf[j*SectorSize+journalSectorData:])
			x := id ^ (uint64(i)<<32 ^ uint64(j))
			s := -1
			for k, c := range commitIDs {
				if x == c {
					s = k
				}
			}
			if s < 0 {
				return 0, fmt.Errorf("journal section %d sector %d: bad commit id %#016x", i, j, id)
			}
			if seq < 0 {
				seq = s
			} else if s != seq {
				return 0, fmt.Errorf("journal section %d sector %d: commit sequence %d, expected %d (journal not empty)", i, j, s, seq)
			}
		}
		if first < 0 {
			first = seq
		}
		for e := 0; e < g.sectionEntries; e++ {
			o := (e%journalBlockSectors)*SectorSize + (e/journalBlockSectors)*g.entrySize
			if binary.LittleEndian.Uint32(buf[o+4:]) != 0xffffffff {
				return 0, fmt.Errorf("journal section %d entry %d is in use (journal not empty)", i, e)
			}
		}
	}
	return first, nil
}

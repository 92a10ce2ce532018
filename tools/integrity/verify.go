package integrity

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
)

// BadBlockError names the first block whose stored tag does not match its data.
type BadBlockError struct {
	Block  uint64 // logical block number
	Sector uint64 // its first logical 512-byte sector
}

func (e *BadBlockError) Error() string {
	return fmt.Sprintf("tag mismatch at block %d (sector %d)", e.Block, e.Sector)
}

// VerifyParams says how tags were computed; the superblock does not record the hash.
type VerifyParams struct {
	Hash string // "" = by tag size: 4 crc32c, 32 sha256 (hmac-sha256 when Key is set)
	Key  []byte
	Mode byte // for the returned table; default J
}

// Report is what Verify found.
type Report struct {
	Result            // parameters read back (Table() works on it)
	Blocks     uint64 // blocks whose tags were checked
	JournalSeq int    // commit sequence of the (empty) journal
}

func (vp VerifyParams) hashFor(tagSize int) (string, error) {
	if vp.Hash != "" {
		switch vp.Hash {
		case HashCRC32C, HashSHA256, HashHMACSHA256, HashNone:
		default:
			return "", fmt.Errorf("unknown hash %q", vp.Hash)
		}
		if vp.Hash == HashHMACSHA256 && len(vp.Key) == 0 {
			return "", fmt.Errorf("hash hmac-sha256 needs a key")
		}
		return vp.Hash, nil
	}
	switch {
	case len(vp.Key) > 0:
		return HashHMACSHA256, nil
	case tagSize == 4:
		return HashCRC32C, nil
	case tagSize == 32:
		return HashSHA256, nil
	}
	return "", fmt.Errorf("cannot guess the hash for tag size %d; give it", tagSize)
}

// ReadSuperblock reads and validates the superblock at the start of img.
func ReadSuperblock(img io.ReaderAt) (*Superblock, error) {
	b := make([]byte, SuperblockLen)
	if _, err := img.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("read superblock: %w", err)
	}
	return ParseSuperblock(b)
}

// Describe rebuilds the Result (table parameters) of an existing image: the metadata
// image (separate; dataSize = data device bytes, or 0 to take provided_data_sectors) or
// the single device (interleaved). buffer_sectors is what the kernel will use for this
// image size (it halves 128 until the tags fit).
func Describe(img io.ReaderAt, imgSize, dataSize int64, vp VerifyParams) (*Result, *geom, error) {
	sb, err := ReadSuperblock(img)
	if err != nil {
		return nil, nil, err
	}
	g, err := sb.geometry()
	if err != nil {
		return nil, nil, err
	}
	hash, err := vp.hashFor(g.tagSize)
	if err != nil {
		return nil, nil, err
	}
	if hash != HashNone && g.tagSize < MinTagSize(hash) {
		return nil, nil, fmt.Errorf("tag size %d too small for hash %s", g.tagSize, hash)
	}
	if imgSize < 0 {
		return nil, nil, fmt.Errorf("image size unknown")
	}
	size := uint64(imgSize) / SectorSize
	g.totalSectors = size
	if g.interleaved {
		if got := g.providedFor(size); got != sb.ProvidedDataSectors {
			return nil, nil, fmt.Errorf("device of %d sectors provides %d data sectors, superblock says %d (kernel would rewrite the superblock)", size, got, sb.ProvidedDataSectors)
		}
	} else {
		if dataSize > 0 {
			want := uint64(dataSize) / SectorSize &^ uint64(g.spb-1)
			if want != sb.ProvidedDataSectors {
				return nil, nil, fmt.Errorf("data device of %d bytes provides %d sectors, superblock says %d", dataSize, want, sb.ProvidedDataSectors)
			}
		}
		tagBytes := sb.ProvidedDataSectors >> uint(g.log2spb) * uint64(g.tagSize)
		g.bufferSectors = 0
		for b := defaultBufferSectors; b >= 8; b /= 2 {
			need := g.initial + roundUp64(tagBytes, uint64(b)*SectorSize)/SectorSize
			if g.initial+metadataPadding < size && need <= size {
				g.bufferSectors = b
				break
			}
		}
		if g.bufferSectors == 0 {
			return nil, nil, fmt.Errorf("metadata image too small: %d bytes, need at least %d", imgSize,
				int64(g.initial+roundUp64(tagBytes, 8*SectorSize)/SectorSize)*SectorSize)
		}
	}
	mode := vp.Mode
	if mode == 0 {
		mode = 'J'
	}
	layout := LayoutSeparate
	if g.interleaved {
		layout = LayoutInterleaved
	}
	p := Params{Hash: hash, Key: vp.Key, TagSize: g.tagSize, BlockSize: g.spb * SectorSize, Layout: layout, Mode: mode}
	r := g.result(int64(sb.ProvidedDataSectors)*SectorSize, p)
	r.FixHMAC = sb.Flags&FlagFixedHMAC != 0
	r.FixPadding = sb.Flags&FlagFixedPadding != 0
	r.Salt = nil
	if r.FixHMAC {
		r.Salt = append([]byte(nil), sb.Salt[:]...)
	}
	r.Superblock = *sb
	r.Version = int(sb.Version)
	r.MetaBytes, r.DeviceBytes = 0, 0
	if g.interleaved {
		r.DeviceBytes = imgSize
	} else {
		r.MetaBytes = imgSize
	}
	return r, g, nil
}

// VerifySeparate checks a separate-layout pair: superblock, empty journal and the tag
// of every block against data. The first bad block is a *BadBlockError.
func VerifySeparate(data io.ReaderAt, dataSize int64, meta io.ReaderAt, metaSize int64, vp VerifyParams) (*Report, error) {
	r, g, err := Describe(meta, metaSize, dataSize, vp)
	if err != nil {
		return nil, err
	}
	if g.interleaved {
		return nil, fmt.Errorf("superblock describes an interleaved device, not a separate metadata image")
	}
	return verify(data, meta, r, g)
}

// VerifyInterleaved checks a single interleaved device.
func VerifyInterleaved(dev io.ReaderAt, devSize int64, vp VerifyParams) (*Report, error) {
	r, g, err := Describe(dev, devSize, 0, vp)
	if err != nil {
		return nil, err
	}
	if !g.interleaved {
		return nil, fmt.Errorf("superblock describes a separate metadata image, not an interleaved device")
	}
	return verify(dev, dev, r, g)
}

// ReadLogical copies the logical data of an interleaved device to w (provided sectors).
func ReadLogical(dev io.ReaderAt, devSize int64, w io.Writer) error {
	_, g, err := Describe(dev, devSize, 0, VerifyParams{Hash: HashNone})
	if err != nil {
		return err
	}
	if !g.interleaved {
		return fmt.Errorf("not an interleaved device")
	}
	buf := make([]byte, chunkBytes)
	var ferr error
	g.chunks(chunkBytes/uint64(g.spb*SectorSize), func(b0, n uint64) bool {
		d := buf[:n*uint64(g.spb)*SectorSize]
		if _, ferr = dev.ReadAt(d, int64(g.physData(b0<<uint(g.log2spb)))*SectorSize); ferr != nil {
			return false
		}
		_, ferr = w.Write(d)
		return ferr == nil
	})
	return ferr
}

func verify(data, meta io.ReaderAt, r *Result, g *geom) (*Report, error) {
	seq, err := g.checkJournal(meta, 0)
	if err != nil {
		return nil, err
	}
	rep := &Report{Result: *r, JournalSeq: seq}
	if r.Hash == HashNone {
		return rep, nil // tags belong to someone else (AEAD); structure only
	}
	bs := uint64(g.spb * SectorSize)
	workers := runtime.GOMAXPROCS(0)
	type vjob struct{ b0, n uint64 }
	jobs := make(chan vjob, workers)
	var mu sync.Mutex
	var ioErr error
	var bad *BadBlockError
	stop := func(b0 uint64) bool { // true once nothing at or after b0 can matter
		mu.Lock()
		defer mu.Unlock()
		return ioErr != nil || (bad != nil && bad.Block < b0)
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := newTagger(r.Hash, r.key, r.Salt, g.tagSize)
			buf := make([]byte, chunkBytes)
			stored := make([]byte, chunkBytes/bs*uint64(g.tagSize))
			want := make([]byte, g.tagSize)
			for j := range jobs {
				if stop(j.b0) {
					continue
				}
				if err := verifyChunk(data, meta, g, t, j.b0, j.n, buf, stored, want); err != nil {
					mu.Lock()
					var bb *BadBlockError
					if errors.As(err, &bb) {
						if bad == nil || bb.Block < bad.Block {
							bad = bb
						}
					} else if ioErr == nil {
						ioErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	g.chunks(chunkBytes/bs, func(b0, n uint64) bool {
		if stop(b0) {
			return false
		}
		jobs <- vjob{b0, n}
		rep.Blocks += n
		return true
	})
	close(jobs)
	wg.Wait()
	if ioErr != nil {
		return nil, ioErr
	}
	if bad != nil {
		return nil, bad
	}
	return rep, nil
}

// verifyChunk checks blocks [b0, b0+n) (never crossing an interleave area).
func verifyChunk(data, meta io.ReaderAt, g *geom, t *tagger, b0, n uint64, buf, stored, want []byte) error {
	bs := uint64(g.spb * SectorSize)
	d := buf[:n*bs]
	off := int64(b0 * bs)
	if g.interleaved {
		off = int64(g.physData(b0<<uint(g.log2spb))) * SectorSize
	}
	if _, err := data.ReadAt(d, off); err != nil {
		return fmt.Errorf("read data block %d: %w", b0, err)
	}
	st := stored[:n*uint64(g.tagSize)]
	if _, err := meta.ReadAt(st, g.tagOffset(b0)); err != nil {
		return fmt.Errorf("read tags of block %d: %w", b0, err)
	}
	ts := uint64(g.tagSize)
	for k := uint64(0); k < n; k++ {
		t.tag((b0+k)<<uint(g.log2spb), d[k*bs:(k+1)*bs], want)
		if !bytes.Equal(want, st[k*ts:(k+1)*ts]) {
			return &BadBlockError{Block: b0 + k, Sector: (b0 + k) << uint(g.log2spb)}
		}
	}
	return nil
}

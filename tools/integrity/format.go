package integrity

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// chunkBytes is the unit of reading/hashing/writing per worker.
const chunkBytes = 4 << 20

// Result describes a formatted device; everything a table or manifest needs.
type Result struct {
	Layout              string
	Mode                byte
	Hash                string
	TagSize             int
	BlockSize           int
	ProvidedDataSectors uint64 // table length; = data size for separate
	JournalSections     int
	JournalSectors      int // journal_sections * section_sectors (table journal_sectors:)
	InitialSectors      int // superblock + journal
	InterleaveSectors   int // 1 for separate
	BufferSectors       int
	MetadataRunSectors  int // interleaved: tag sectors per area
	FixPadding          bool
	FixHMAC             bool
	Salt                []byte // nil without fix_hmac
	Version             int
	MetaBytes           int64 // separate: size of the metadata image
	DeviceBytes         int64 // interleaved: size of the whole device
	DataBytes           int64 // input size
	KeySize             int   // hmac-sha256 key bytes
	Superblock          Superblock
	key                 []byte // hmac key (never printed; Table uses a placeholder)
}

// KeyPlaceholder is the manifest placeholder for the hmac key (spec/manifest.md).
const KeyPlaceholder = "@IKEY@"

// Table returns the kernel table line, as integritysetup 2.6 (and the kernel's status)
// writes it, with KeyPlaceholder for an hmac key.
func (r *Result) Table(dev, meta string) string { return r.TableKey(dev, meta, KeyPlaceholder) }

// TableKey is Table with the given hmac key text (hex key or a placeholder).
func (r *Result) TableKey(dev, meta, key string) string {
	var args []string
	if r.Layout == LayoutSeparate {
		args = append(args, "meta_device:"+meta)
	}
	if r.BlockSize != SectorSize {
		args = append(args, "block_size:"+strconv.Itoa(r.BlockSize))
	}
	args = append(args,
		"journal_sectors:"+strconv.Itoa(r.JournalSectors),
		"interleave_sectors:"+strconv.Itoa(r.InterleaveSectors),
		"buffer_sectors:"+strconv.Itoa(r.BufferSectors))
	if r.Mode == 'J' {
		args = append(args, "journal_watermark:50", "commit_time:10000")
	}
	if r.FixPadding {
		args = append(args, "fix_padding")
	}
	if r.FixHMAC {
		args = append(args, "fix_hmac")
	}
	switch r.Hash {
	case HashCRC32C, HashSHA256:
		args = append(args, "internal_hash:"+r.Hash)
	case HashHMACSHA256:
		args = append(args, "internal_hash:hmac(sha256):"+key)
	}
	s := fmt.Sprintf("0 %d integrity %s 0 %d %c %d", r.ProvidedDataSectors, dev, r.TagSize, r.Mode, len(args))
	for _, a := range args {
		s += " " + a
	}
	return s
}

// DeriveSalt returns a deterministic 16-byte salt from a seed and the parameters (never
// random: same inputs, same image). Keys are not part of it.
func DeriveSalt(seed string, p Params) []byte {
	if q, err := p.normalize(); err == nil {
		p = q
	}
	h := sha256.New()
	fmt.Fprintf(h, "rules_dm dm-integrity salt v1\x00%s\x00hash=%s tag=%d block=%d layout=%s interleave=%d sections=%d buffer=%d",
		seed, p.Hash, p.TagSize, p.BlockSize, p.Layout, p.InterleaveSectors, p.JournalSections, p.BufferSectors)
	return h.Sum(nil)[:SaltSize]
}

// Plan computes the result of formatting dataSize bytes without any I/O.
func Plan(dataSize int64, p Params) (*Result, error) {
	p, err := p.normalize()
	if err != nil {
		return nil, err
	}
	g, err := plan(dataSize, p)
	if err != nil {
		return nil, err
	}
	return g.result(dataSize, p), nil
}

// MetaSize is the metadata image size for the separate layout.
func MetaSize(dataSize int64, p Params) (int64, error) {
	p.Layout = LayoutSeparate
	r, err := Plan(dataSize, p)
	if err != nil {
		return 0, err
	}
	return r.MetaBytes, nil
}

// DeviceSize is the whole-device size for the interleaved layout: the smallest multiple
// of 4 KiB whose provided_data_sectors (kernel algorithm) holds dataSize bytes.
func DeviceSize(dataSize int64, p Params) (int64, error) {
	p.Layout = LayoutInterleaved
	r, err := Plan(dataSize, p)
	if err != nil {
		return 0, err
	}
	return r.DeviceBytes, nil
}

func (g *geom) result(dataSize int64, p Params) *Result {
	r := &Result{
		Layout: p.Layout, Mode: p.Mode, Hash: p.Hash, TagSize: p.TagSize, BlockSize: p.BlockSize,
		ProvidedDataSectors: g.provided,
		JournalSections:     g.sections,
		JournalSectors:      g.sections * g.sectionSectors,
		InitialSectors:      int(g.initial),
		InterleaveSectors:   1,
		BufferSectors:       g.bufferSectors,
		FixHMAC:             !p.NoFixHMAC,
		DataBytes:           dataSize,
		KeySize:             len(p.Key),
		key:                 p.Key,
	}
	var flags uint32
	if r.FixHMAC {
		flags |= FlagFixedHMAC
		r.Salt = p.Salt
		if r.Salt == nil {
			r.Salt = DeriveSalt("", p)
		}
	}
	if g.interleaved {
		r.InterleaveSectors = 1 << g.log2I
		r.MetadataRunSectors = int(g.metaRun)
		r.FixPadding = true
		flags |= FlagFixedPadding
		r.DeviceBytes = int64(g.totalSectors) * SectorSize
	} else {
		r.MetaBytes = int64(g.totalSectors) * SectorSize
	}
	sb := Superblock{
		Version:                versionFor(flags, !g.interleaved),
		TagSize:                uint16(g.tagSize),
		JournalSections:        uint32(g.sections),
		ProvidedDataSectors:    g.provided,
		Flags:                  flags,
		Log2SectorsPerBlock:    uint8(g.log2spb),
		Log2BlocksPerBitmapBit: uint8(g.log2BPBB),
	}
	if g.interleaved {
		sb.Log2InterleaveSectors = uint8(g.log2I)
	}
	copy(sb.Salt[:], r.Salt)
	r.Superblock = sb
	r.Version = int(sb.Version)
	return r
}

// FormatSeparate writes the metadata image of the separate layout to meta for dataSize
// bytes of data (which is not modified: the data device is the data itself). meta must
// read as zeros where not written (a new file); if it has Truncate(int64) error it is
// sized to Result.MetaBytes. With hash none and Params.Tags, data may be nil.
func FormatSeparate(data io.ReaderAt, dataSize int64, meta io.WriterAt, p Params) (*Result, error) {
	p.Layout = LayoutSeparate
	return format(data, dataSize, meta, p)
}

// FormatInterleaved writes the whole single device to dev: the logical data (dataSize
// bytes, zero-extended to ProvidedDataSectors) scattered into the data areas, with
// superblock, journal and tags. Same contract for dev as FormatSeparate's meta.
func FormatInterleaved(data io.ReaderAt, dataSize int64, dev io.WriterAt, p Params) (*Result, error) {
	p.Layout = LayoutInterleaved
	return format(data, dataSize, dev, p)
}

func format(data io.ReaderAt, dataSize int64, out io.WriterAt, p Params) (*Result, error) {
	p, err := p.normalize()
	if err != nil {
		return nil, err
	}
	g, err := plan(dataSize, p)
	if err != nil {
		return nil, err
	}
	r := g.result(dataSize, p)
	if data == nil && !(p.Hash == HashNone && p.Tags != nil && !g.interleaved) {
		return nil, errors.New("no data to read")
	}
	total := int64(g.totalSectors) * SectorSize
	if t, ok := out.(interface{ Truncate(int64) error }); ok {
		if err := t.Truncate(total); err != nil {
			return nil, fmt.Errorf("size output: %w", err)
		}
	} else if _, err := out.WriteAt([]byte{0}, total-1); err != nil {
		return nil, fmt.Errorf("size output: %w", err)
	}
	if _, err := out.WriteAt(r.Superblock.Marshal(), 0); err != nil {
		return nil, fmt.Errorf("write superblock: %w", err)
	}
	if err := g.writeJournal(out, 0); err != nil {
		return nil, err
	}
	e := &engine{g: g, p: p, salt: r.Salt, data: data, dataSize: dataSize, out: out}
	if err := e.run(); err != nil {
		return nil, err
	}
	return r, nil
}

// tagOffset is the byte offset of block b's tag in the metadata (or single) device.
func (g *geom) tagOffset(b uint64) int64 {
	if !g.interleaved {
		return int64(g.initial)*SectorSize + int64(b)*int64(g.tagSize)
	}
	s := b << uint(g.log2spb)
	area := s >> uint(g.log2I)
	k := (s & (1<<uint(g.log2I) - 1)) >> uint(g.log2spb)
	return int64(g.initial+area*(1<<uint(g.log2I)+g.metaRun))*SectorSize + int64(k)*int64(g.tagSize)
}

// chunks calls fn for consecutive block ranges that never cross an interleave area.
func (g *geom) chunks(maxBlocks uint64, fn func(b0, n uint64) bool) {
	nblocks := g.provided >> uint(g.log2spb)
	per := maxBlocks
	if g.interleaved {
		if a := uint64(1) << uint(g.log2I-g.log2spb); a < per {
			per = a
		}
	}
	for b := uint64(0); b < nblocks; {
		n := per
		if g.interleaved {
			a := uint64(1) << uint(g.log2I-g.log2spb)
			if rest := a - b%a; rest < n {
				n = rest
			}
		}
		if b+n > nblocks {
			n = nblocks - b
		}
		if !fn(b, n) {
			return
		}
		b += n
	}
}

type engine struct {
	g        *geom
	p        Params
	salt     []byte
	data     io.ReaderAt
	dataSize int64
	out      io.WriterAt
	fd       int // for SEEK_DATA; -1 if unknown
	mu       sync.Mutex
	err      error
}

type job struct{ b0, n uint64 }

func (e *engine) fail(err error) {
	e.mu.Lock()
	if e.err == nil {
		e.err = err
	}
	e.mu.Unlock()
}

func (e *engine) failed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err != nil
}

func (e *engine) run() error {
	e.fd = -1
	if f, ok := e.data.(interface{ Fd() uintptr }); ok {
		e.fd = int(f.Fd())
	}
	workers := e.p.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if e.p.Tags != nil {
		workers = 1 // a tag stream is consumed in block order
	}
	bs := uint64(e.p.BlockSize)
	jobs := make(chan job, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.worker(jobs)
		}()
	}
	e.g.chunks(chunkBytes/bs, func(b0, n uint64) bool {
		if e.failed() {
			return false
		}
		jobs <- job{b0, n}
		return true
	})
	close(jobs)
	wg.Wait()
	return e.err
}

// hole reports whether [off, off+n) of the input is known to be a hole (reads as zeros).
func (e *engine) hole(off, n int64) bool {
	if e.fd < 0 {
		return false
	}
	next, err := unix.Seek(e.fd, off, unix.SEEK_DATA)
	if err == unix.ENXIO {
		return true // no data at or after off
	}
	return err == nil && next >= off+n
}

func (e *engine) worker(jobs <-chan job) {
	bs := int64(e.p.BlockSize)
	buf := make([]byte, chunkBytes)
	tags := make([]byte, chunkBytes/bs*int64(e.g.tagSize))
	var t *tagger
	if e.p.Hash != HashNone {
		t = newTagger(e.p.Hash, e.p.Key, e.salt, e.g.tagSize)
	}
	for j := range jobs {
		if e.failed() {
			continue
		}
		if err := e.do(j, buf, tags, t); err != nil {
			e.fail(err)
		} else if e.p.Progress != nil {
			e.p.Progress(int64(j.n) * bs)
		}
	}
}

func (e *engine) do(j job, buf, tags []byte, t *tagger) error {
	g := e.g
	bs := int64(e.p.BlockSize)
	off := int64(j.b0) * bs
	n := int64(j.n) * bs
	d := buf[:n]
	avail := min(max(e.dataSize-off, 0), n)
	zero := true
	needData := !(e.p.Hash == HashNone && e.p.Tags != nil && !g.interleaved)
	if needData {
		if avail > 0 && !e.hole(off, avail) {
			if _, err := e.data.ReadAt(d[:avail], off); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return fmt.Errorf("read data at %d: %w", off, err)
			}
			zero = false
		} else {
			avail = 0
		}
		clear(d[avail:])
	}
	tg := tags[:int64(j.n)*int64(g.tagSize)]
	switch {
	case t != nil:
		for k := uint64(0); k < j.n; k++ {
			b := j.b0 + k
			t.tag(b<<uint(g.log2spb), d[int64(k)*bs:int64(k+1)*bs], tg[int(k)*g.tagSize:int(k+1)*g.tagSize])
		}
	case e.p.Tags != nil:
		if _, err := io.ReadFull(e.p.Tags, tg); err != nil {
			return fmt.Errorf("read tags of blocks %d..%d: %w", j.b0, j.b0+j.n-1, err)
		}
	case e.p.TagFunc != nil:
		for k := uint64(0); k < j.n; k++ {
			if err := e.p.TagFunc(int64(j.b0+k), d[int64(k)*bs:int64(k+1)*bs], tg[int(k)*g.tagSize:int(k+1)*g.tagSize]); err != nil {
				return fmt.Errorf("tag of block %d: %w", j.b0+k, err)
			}
		}
	default:
		return errors.New("hash none needs Tags or TagFunc")
	}
	if _, err := e.out.WriteAt(tg, g.tagOffset(j.b0)); err != nil {
		return fmt.Errorf("write tags: %w", err)
	}
	if g.interleaved && !zero {
		phys := int64(g.physData(j.b0<<uint(g.log2spb))) * SectorSize
		if _, err := e.out.WriteAt(d[:avail], phys); err != nil {
			return fmt.Errorf("write data: %w", err)
		}
	}
	return nil
}

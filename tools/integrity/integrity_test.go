package integrity

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// memWA is an in-memory io.WriterAt/ReaderAt.
type memWA struct{ b []byte }

func (m *memWA) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}

func (m *memWA) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memWA) Truncate(n int64) error {
	if int(n) < len(m.b) {
		m.b = m.b[:n]
	} else {
		m.b = append(m.b, make([]byte, int(n)-len(m.b))...)
	}
	return nil
}

func pattern(n int) []byte {
	b := make([]byte, n)
	var ctr [8]byte
	for i := 0; i < n; i += 32 {
		binary.LittleEndian.PutUint64(ctr[:], uint64(i))
		s := sha256.Sum256(ctr[:])
		copy(b[i:], s[:])
	}
	// some zero blocks
	clear(b[4096*3 : 4096*5])
	return b
}

func unhex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The superblock hexdump of kernel-e2e.md (c): integritysetup format crc32c 4096, 8 MiB data.
func TestSuperblockMatchesKernelHexdump(t *testing.T) {
	salt := unhex(t, "fce2f8379dfa7199158829a176a87c90")
	data := make([]byte, 8<<20)
	meta := &memWA{}
	r, err := FormatSeparate(bytes.NewReader(data), int64(len(data)), meta, Params{Salt: salt})
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, "69 6e 74 65 67 72 74 00 05 00 04 00 01 00 00 00"+
		"00 40 00 00 00 00 00 00 10 00 00 00 03 0c 00 00"+
		"00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"+
		"fc e2 f8 37 9d fa 71 99 15 88 29 a1 76 a8 7c 90")
	if !bytes.Equal(meta.b[:64], want) {
		t.Fatalf("superblock\n got %x\nwant %x", meta.b[:64], want)
	}
	if !bytes.Equal(meta.b[64:4096], make([]byte, 4096-64)) {
		t.Fatal("superblock area not zero after 64 bytes")
	}
	// Journal: 392 sectors from sector 8, commit ids C0^(i<<32^j), entries unused at 4+80k.
	if r.JournalSectors != 392 || r.InitialSectors != 400 || r.BufferSectors != 128 {
		t.Fatalf("geometry %+v", r)
	}
	for j := 0; j < 392; j++ {
		sec := meta.b[(8+j)*512 : (9+j)*512]
		if id := binary.LittleEndian.Uint64(sec[504:]); id != 0x1111111111111111^uint64(j) {
			t.Fatalf("sector %d commit id %#x", j, id)
		}
		for k := 0; k < 504; k++ {
			want := byte(0)
			if j < 8 && k < 6*80 && k%80 >= 4 && k%80 < 8 {
				want = 0xff
			}
			if sec[k] != want {
				t.Fatalf("journal sector %d byte %d = %#x want %#x", j, k, sec[k], want)
			}
		}
	}
	// Tags at 204800, the meta rounded to 64 KiB of tags.
	if r.MetaBytes != 204800+65536 || int64(len(meta.b)) != r.MetaBytes {
		t.Fatalf("meta bytes %d (len %d)", r.MetaBytes, len(meta.b))
	}
	wantTable := "0 16384 integrity D 0 4 J 9 meta_device:M block_size:4096 journal_sectors:392 interleave_sectors:1 buffer_sectors:128 journal_watermark:50 commit_time:10000 fix_hmac internal_hash:crc32c"
	if got := r.Table("D", "M"); got != wantTable {
		t.Fatalf("table\n got %s\nwant %s", got, wantTable)
	}
}

func TestKnownGeometries(t *testing.T) {
	// integrity-offline.md: journal/entry geometry and interleaved provided sectors.
	cases := []struct {
		tag, bs, entry, sect int
	}{{4, 4096, 80, 392}, {32, 4096, 104, 264}, {28, 512, 48, 88}, {48, 512, 64, 64}, {28, 4096, 104, 264}, {48, 4096, 120, 264}}
	for _, c := range cases {
		g := &geom{tagSize: c.tag, spb: c.bs / 512, log2spb: log2(c.bs / 512)}
		if err := journalGeometry(g); err != nil || g.entrySize != c.entry || g.sectionSectors != c.sect {
			t.Errorf("tag %d bs %d: entry %d section %d err %v", c.tag, c.bs, g.entrySize, g.sectionSectors, err)
		}
	}
	dev := []struct {
		mib, log2I int
		pad        uint64
		want       uint64
	}{{16, 15, 4096, 32336}, {40, 15, 4096, 81424}, {16, 11, 4096, 32240}, {40, 15, 131072, 80752}}
	for _, c := range dev {
		g := &geom{tagSize: 4, spb: 8, log2spb: 3, interleaved: true, log2I: c.log2I}
		journalGeometry(g)
		g.setSections(1)
		g.metaRun = roundUp64(uint64(4)<<uint(c.log2I-3), c.pad) / 512
		if got := g.providedFor(uint64(c.mib) << 11); got != c.want {
			t.Errorf("%d MiB log2I %d pad %d: provided %d want %d", c.mib, c.log2I, c.pad, got, c.want)
		}
	}
}

func TestRoundTripAllHashes(t *testing.T) {
	data := pattern(3<<20 + 8192)
	for _, layout := range []string{LayoutSeparate, LayoutInterleaved} {
		for _, h := range []string{HashCRC32C, HashSHA256, HashHMACSHA256} {
			for _, bs := range []int{512, 4096} {
				for _, nofix := range []bool{false, true} {
					p := Params{Hash: h, BlockSize: bs, Layout: layout, NoFixHMAC: nofix, InterleaveSectors: 0}
					if h == HashHMACSHA256 {
						p.Key = []byte("0123456789abcdef0123456789abcdef")
					}
					if layout == LayoutInterleaved {
						p.InterleaveSectors = 2048 // several areas
					}
					name := layout + "/" + h + "/" + string(rune('0'+bs/512))
					out := &memWA{}
					var r *Result
					var err error
					if layout == LayoutSeparate {
						r, err = FormatSeparate(bytes.NewReader(data), int64(len(data)), out, p)
					} else {
						r, err = FormatInterleaved(bytes.NewReader(data), int64(len(data)), out, p)
					}
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					vp := VerifyParams{Hash: h, Key: p.Key}
					if layout == LayoutSeparate {
						_, err = VerifySeparate(bytes.NewReader(data), int64(len(data)), out, int64(len(out.b)), vp)
					} else {
						_, err = VerifyInterleaved(out, int64(len(out.b)), vp)
						var lg bytes.Buffer
						if err == nil {
							err = ReadLogical(out, int64(len(out.b)), &lg)
						}
						if err == nil && (!bytes.Equal(lg.Bytes()[:len(data)], data) || lg.Len() != int(r.ProvidedDataSectors*512)) {
							t.Fatalf("%s: logical data differs", name)
						}
						if r.ProvidedDataSectors*512 < uint64(len(data)) {
							t.Fatalf("%s: provided %d too small", name, r.ProvidedDataSectors)
						}
						// smallest: 4 KiB less would not do
						g, _ := plan(int64(len(data)), mustNorm(t, p))
						smaller := g.totalSectors - 8
						g.setSections(defaultSections(smaller, g.sectionSectors))
						if g.providedFor(smaller) >= uint64(len(data)/512) {
							t.Fatalf("%s: device not minimal", name)
						}
					}
					if err != nil {
						t.Fatalf("%s: verify: %v", name, err)
					}
					// flip a byte in block 7's tag / data
					tagOff := plan2(t, data, p).tagOffset(7)
					out.b[tagOff] ^= 1
					if layout == LayoutSeparate {
						_, err = VerifySeparate(bytes.NewReader(data), int64(len(data)), out, int64(len(out.b)), vp)
					} else {
						_, err = VerifyInterleaved(out, int64(len(out.b)), vp)
					}
					var bb *BadBlockError
					if !errors.As(err, &bb) || bb.Block != 7 {
						t.Fatalf("%s: flipped tag: %v", name, err)
					}
					wantV := map[bool]map[string]uint8{false: {LayoutSeparate: 5, LayoutInterleaved: 5}, true: {LayoutSeparate: 2, LayoutInterleaved: 4}}[nofix][layout]
					if r.Superblock.Version != wantV {
						t.Fatalf("%s: version %d want %d", name, r.Superblock.Version, wantV)
					}
				}
			}
		}
	}
}

func mustNorm(t *testing.T, p Params) Params {
	q, err := p.normalize()
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func plan2(t *testing.T, data []byte, p Params) *geom {
	g, err := plan(int64(len(data)), mustNorm(t, p))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestNoneHashTags(t *testing.T) {
	data := pattern(1 << 20)
	nb := len(data) / 512
	tags := make([]byte, nb*28)
	for i := range tags {
		tags[i] = byte(i * 7)
	}
	meta := &memWA{}
	r, err := FormatSeparate(nil, int64(len(data)), meta, Params{Hash: HashNone, TagSize: 28, BlockSize: 512, Tags: bytes.NewReader(tags)})
	if err != nil {
		t.Fatal(err)
	}
	if r.Superblock.Version != 2 || r.Superblock.Flags != 0 || r.Salt != nil || r.InitialSectors != 96 {
		t.Fatalf("none: %+v", r.Superblock)
	}
	if !bytes.Equal(meta.b[96*512:96*512+len(tags)], tags) {
		t.Fatal("tags not stored contiguously at initial_sectors")
	}
	if got := r.Table("D", "M"); got != "0 2048 integrity D 0 28 J 6 meta_device:M journal_sectors:88 interleave_sectors:1 buffer_sectors:128 journal_watermark:50 commit_time:10000" {
		t.Fatalf("table %s", got)
	}
	// TagFunc path, with parallel workers.
	meta2 := &memWA{}
	_, err = FormatSeparate(bytes.NewReader(data), int64(len(data)), meta2, Params{Hash: HashNone, TagSize: 28, BlockSize: 512,
		TagFunc: func(b int64, d, tag []byte) error { copy(tag, tags[b*28:(b+1)*28]); return nil }})
	if err != nil || !bytes.Equal(meta.b, meta2.b) {
		t.Fatalf("TagFunc differs: %v", err)
	}
}

func TestParamErrors(t *testing.T) {
	bad := []struct {
		p    Params
		size int64
		msg  string
	}{
		{Params{Hash: "md5"}, 4096, "unknown hash"},
		{Params{Hash: HashHMACSHA256}, 4096, "needs a key"},
		{Params{TagSize: 2}, 4096, "too small"},
		{Params{Hash: HashSHA256, TagSize: 8}, 4096, "too small"},
		{Params{TagSize: 300}, 4096, "too large"},
		{Params{BlockSize: 1024}, 4096, "block size"},
		{Params{}, 4097, "not a multiple"},
		{Params{Mode: 'B'}, 4096, "bitmap"},
		{Params{Hash: HashNone}, 4096, "explicit tag size"},
		{Params{Salt: []byte{1}}, 4096, "salt"},
	}
	for _, c := range bad {
		_, err := Plan(c.size, c.p)
		if err == nil || !strings.Contains(err.Error(), c.msg) || !errors.Is(err, ErrParams) {
			t.Errorf("%+v: %v (want %q)", c.p, err, c.msg)
		}
	}
}

func TestDefaultJournalSections(t *testing.T) {
	// 1 GiB data crc32c/4K: min(131072, 2097152>>7)=16384 sectors / 392 = 41 sections.
	r, err := Plan(1<<30, Params{})
	if err != nil || r.JournalSections != 41 {
		t.Fatalf("%v %v", r, err)
	}
	r, err = Plan(1<<30, Params{JournalSections: 3})
	if err != nil || r.JournalSections != 3 || r.InitialSectors != 8+3*392 {
		t.Fatalf("%v %v", r, err)
	}
}

func TestSparseFileInput(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "data")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(64 << 20)
	f.WriteAt(pattern(1<<20), 40<<20)
	mf, _ := os.Create(filepath.Join(dir, "meta"))
	r, err := FormatSeparate(f, 64<<20, mf, Params{Salt: make([]byte, 16)})
	if err != nil {
		t.Fatal(err)
	}
	full, _ := os.ReadFile(p)
	mem := &memWA{}
	if _, err := FormatSeparate(bytes.NewReader(full), 64<<20, mem, Params{Salt: make([]byte, 16)}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(mf.Name())
	if !bytes.Equal(got, mem.b) || int64(len(got)) != r.MetaBytes {
		t.Fatal("sparse and dense inputs give different metadata")
	}
}

func TestVerifyReportsFirstBadBlockAcrossChunks(t *testing.T) {
	data := pattern(12 << 20)
	meta := &memWA{}
	p := Params{Salt: make([]byte, 16), Workers: 3}
	if _, err := FormatSeparate(bytes.NewReader(data), int64(len(data)), meta, p); err != nil {
		t.Fatal(err)
	}
	g := plan2(t, data, p)
	for _, bad := range [][]uint64{{2500}, {2500, 100}, {3071, 1024}} {
		m := &memWA{b: append([]byte(nil), meta.b...)}
		for _, b := range bad {
			m.b[g.tagOffset(b)] ^= 0x80
		}
		_, err := VerifySeparate(bytes.NewReader(data), int64(len(data)), m, int64(len(m.b)), VerifyParams{})
		var bb *BadBlockError
		want := bad[len(bad)-1]
		if !errors.As(err, &bb) || bb.Block != want {
			t.Fatalf("bad %v: got %v, want block %d", bad, err, want)
		}
	}
}

func TestInterleavedSizingLarge(t *testing.T) {
	for _, size := range []int64{4096, 1 << 20, 3<<30 + 4096*7, 1 << 40} {
		for _, p := range []Params{{Layout: LayoutInterleaved}, {Layout: LayoutInterleaved, Hash: HashSHA256, BlockSize: 512, InterleaveSectors: 8}} {
			r, err := Plan(size, p)
			if err != nil {
				t.Fatalf("%d: %v", size, err)
			}
			if r.ProvidedDataSectors*512 < uint64(size) || r.DeviceBytes%4096 != 0 {
				t.Fatalf("%d: provided %d device %d", size, r.ProvidedDataSectors, r.DeviceBytes)
			}
		}
	}
}

func TestNoneInterleavedTagFunc(t *testing.T) {
	data := pattern(2 << 20)
	dev := &memWA{}
	p := Params{Hash: HashNone, TagSize: 28, BlockSize: 512, Layout: LayoutInterleaved, InterleaveSectors: 1024,
		TagFunc: func(b int64, d, tag []byte) error {
			binary.LittleEndian.PutUint64(tag, uint64(b))
			copy(tag[8:], d[:20])
			return nil
		}}
	r, err := FormatInterleaved(bytes.NewReader(data), int64(len(data)), dev, p)
	if err != nil {
		t.Fatal(err)
	}
	if r.Superblock.Version != 4 || r.Superblock.Flags != FlagFixedPadding || r.Salt != nil {
		t.Fatalf("sb %+v", r.Superblock)
	}
	g := plan2(t, data, p)
	for _, b := range []uint64{0, 1023, 1024, 4095} {
		tag := dev.b[g.tagOffset(b) : g.tagOffset(b)+28]
		phys := int64(g.physData(b)) * 512
		if binary.LittleEndian.Uint64(tag) != b || !bytes.Equal(tag[8:], data[b*512:b*512+20]) || !bytes.Equal(dev.b[phys:phys+512], data[b*512:(b+1)*512]) {
			t.Fatalf("block %d: tag %x", b, tag)
		}
	}
	var lg bytes.Buffer
	if err := ReadLogical(dev, int64(len(dev.b)), &lg); err != nil || !bytes.Equal(lg.Bytes()[:len(data)], data) {
		t.Fatalf("logical data: %v", err)
	}
	if _, err := VerifyInterleaved(dev, int64(len(dev.b)), VerifyParams{Hash: HashNone}); err != nil {
		t.Fatal(err)
	}
}

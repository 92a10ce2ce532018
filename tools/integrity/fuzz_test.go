package integrity

import (
	"bytes"
	"testing"
)

func FuzzParseSuperblock(f *testing.F) {
	for _, p := range []Params{
		{Salt: make([]byte, 16)},
		{Hash: HashSHA256, BlockSize: 512, NoFixHMAC: true},
		{Layout: LayoutInterleaved},
		{Hash: HashNone, TagSize: 48, BlockSize: 512},
	} {
		r, err := Plan(8<<20, p)
		if err != nil {
			f.Fatal(err)
		}
		b := r.Superblock.Marshal()
		f.Add(b[:SuperblockLen])
		c := append([]byte(nil), b[:SuperblockLen]...)
		c[8] = 6
		f.Add(c)
	}
	f.Add(make([]byte, 64))
	f.Add([]byte("integrt\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sb, err := ParseSuperblock(b)
		if err != nil {
			return
		}
		g, err := sb.geometry()
		if err != nil {
			t.Fatalf("parsed superblock without geometry: %v", err)
		}
		if g.entriesPerSect < 1 || g.initial < SuperblockSectors {
			t.Fatalf("bad geometry %+v", g)
		}
		want := append([]byte(nil), b[:SuperblockLen]...)
		clear(want[30:32])
		clear(want[40:48])
		if got := sb.Marshal()[:SuperblockLen]; !bytes.Equal(got, want) {
			t.Fatalf("round trip\n got %x\nwant %x", got, want)
		}
		// Describe on a tiny image must fail cleanly or succeed, never panic.
		img := &memWA{b: append(sb.Marshal(), make([]byte, 8192)...)}
		Describe(img, int64(len(img.b)), 0, VerifyParams{Hash: HashNone})
		VerifyInterleaved(img, int64(len(img.b)), VerifyParams{Hash: HashNone})
	})
}

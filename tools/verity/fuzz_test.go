package verity

import (
	"bytes"
	"testing"
)

// FuzzParseSuperblock feeds hostile headers to the decoder: it must never
// panic, and whatever it accepts must be within the limits and re-encode to
// the same fields.
func FuzzParseSuperblock(f *testing.F) {
	for _, p := range []Params{
		{1, "sha256", 4096, 4096, []byte("salt"), testUUID, true},
		{0, "sha1", 512, 1024, nil, testUUID, true},
		{1, "sha512", 1024, 512, bytes.Repeat([]byte{0xee}, MaxSaltSize), testUUID, true},
	} {
		b, err := EncodeSuperblock(p, 777)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, n, err := ParseSuperblock(b)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil || n == 0 || !p.Superblock {
			t.Fatalf("accepted invalid superblock: %+v %d %v", p, n, err)
		}
		enc, err := EncodeSuperblock(p, n)
		if err != nil {
			t.Fatal(err)
		}
		q, m, err := ParseSuperblock(enc)
		if err != nil || m != n || q.Hash != p.Hash || q.Version != p.Version || !bytes.Equal(q.Salt, p.Salt) ||
			q.UUID != p.UUID || q.DataBlockSize != p.DataBlockSize || q.HashBlockSize != p.HashBlockSize {
			t.Fatalf("re-encoding changed the superblock: %+v %d -> %+v %d %v", p, n, q, m, err)
		}
		if _, err := Plan(int64(n)*int64(p.DataBlockSize), 0, p); err != nil {
			t.Fatalf("accepted superblock has no layout: %v", err)
		}
	})
}

package crypt

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/rules-dm/rules_dm/internal/cpuclock"
	"github.com/rules-dm/rules_dm/tools/crypt/internal/fastaes"
	"golang.org/x/crypto/xts"
)

// withPath runs f once with the generic path and, where available, once
// with the assembly path.
func withPath(t *testing.T, f func(t *testing.T, fast bool)) {
	saved := useFast
	defer func() { useFast = saved }()
	useFast = false
	t.Run("generic", func(t *testing.T) { f(t, false) })
	if fastaes.Available {
		useFast = true
		t.Run("fast", func(t *testing.T) { f(t, true) })
	}
}

type p1619 struct {
	key    []byte
	sector uint64
	pt, ct []byte
}

func loadP1619(t *testing.T) []p1619 {
	f, err := os.Open("testdata/ieee-p1619-xts.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []p1619
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		fs := strings.Fields(line)
		var v p1619
		v.key, _ = hex.DecodeString(fs[0])
		v.sector, _ = strconv.ParseUint(fs[1], 10, 64)
		v.pt, _ = hex.DecodeString(fs[2])
		v.ct, _ = hex.DecodeString(fs[3])
		out = append(out, v)
	}
	return out
}

// IEEE P1619 vectors whose data unit is a 512-byte sector go through the
// whole dm-crypt path: aes-xts-plain64, sector 0 with iv_offset = the data
// unit number.
func TestIEEEP1619Vectors(t *testing.T) {
	vs := loadP1619(t)
	withPath(t, func(t *testing.T, fast bool) {
		n := 0
		for i, v := range vs {
			if len(v.pt) != 512 {
				continue
			}
			n++
			c, err := New(Spec{Cipher: "aes-xts-plain64", Key: v.key, IVOffset: v.sector})
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 512)
			c.EncryptSectors(got, v.pt, 0)
			if !bytes.Equal(got, v.ct) {
				t.Errorf("#%d: ciphertext mismatch", i)
			}
			c.DecryptSectors(got, got, 0)
			if !bytes.Equal(got, v.pt) {
				t.Errorf("#%d: decrypt mismatch", i)
			}
		}
		if n != 3 {
			t.Fatalf("%d sector-sized vectors, want 3", n)
		}
	})
}

func TestIVSector(t *testing.T) {
	cases := []struct {
		ss      int
		off     uint64
		large   bool
		k, want uint64
	}{
		{512, 0, false, 5, 5},
		{512, 7, false, 5, 12},
		{512, 7, true, 5, 12},
		{4096, 0, false, 3, 24},
		{4096, 8, false, 3, 32},
		{4096, 0, true, 3, 3},
		{4096, 16, true, 3, 5},
		{1024, 2, true, 10, 11},
		{2048, 4, false, 1, 8},
	}
	for _, c := range cases {
		ci, err := New(Spec{Cipher: "aes-cbc-plain64", Key: make([]byte, 16), SectorSize: c.ss, IVOffset: c.off, IVLargeSectors: c.large})
		if err != nil {
			t.Fatal(err)
		}
		if got := ci.IVSector(c.k); got != c.want {
			t.Errorf("ss %d off %d large %v k %d: iv sector %d, want %d", c.ss, c.off, c.large, c.k, got, c.want)
		}
	}
}

// reference computes one sector with crypto/aes and x/crypto/xts directly
// from the formulas in formats.md (independent of Cipher's code paths).
func reference(t *testing.T, cs string, key []byte, ss int, off uint64, large bool, k uint64, pt []byte) []byte {
	spb := uint64(ss / 512)
	s := k*spb + off
	if large {
		s /= spb
	}
	out := make([]byte, len(pt))
	var iv [16]byte
	switch cs {
	case "aes-xts-plain64":
		x, _ := xts.NewCipher(aes.NewCipher, key)
		x.Encrypt(out, pt, s)
		return out
	case "aes-cbc-plain":
		binary.LittleEndian.PutUint32(iv[:], uint32(s))
	case "aes-cbc-plain64":
		binary.LittleEndian.PutUint64(iv[:], s)
	case "aes-cbc-essiv:sha256":
		h := sha256.Sum256(key)
		e, _ := aes.NewCipher(h[:])
		binary.LittleEndian.PutUint64(iv[:], s)
		e.Encrypt(iv[:], iv[:])
	default:
		t.Fatalf("no reference for %s", cs)
	}
	b, _ := aes.NewCipher(key)
	cipher.NewCBCEncrypter(b, iv[:]).CryptBlocks(out, pt)
	return out
}

func TestAllSpecsAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	withPath(t, func(t *testing.T, fast bool) {
		for _, cs := range Supported {
			spec, _ := ParseCipher(cs)
			for _, kl := range spec.KeySizes() {
				key := make([]byte, kl)
				rng.Read(key)
				for _, ss := range []int{512, 1024, 2048, 4096} {
					for _, large := range []bool{false, true} {
						for _, off := range []uint64{0, uint64(ss / 512 * 3), 1<<32 - uint64(ss/512)} {
							c, err := New(Spec{Cipher: cs, Key: key, SectorSize: ss, IVOffset: off, IVLargeSectors: large})
							if err != nil {
								t.Fatal(err)
							}
							// 19 sectors: exercises 8-sector groups and the tail
							const n = 19
							pt := make([]byte, n*ss)
							rng.Read(pt)
							first := uint64(rng.Intn(1 << 20))
							ct := make([]byte, len(pt))
							c.EncryptSectors(ct, pt, first)
							for i := 0; i < n; i++ {
								want := reference(t, cs, key, ss, off, large, first+uint64(i), pt[i*ss:(i+1)*ss])
								if !bytes.Equal(ct[i*ss:(i+1)*ss], want) {
									t.Fatalf("%s key %d ss %d off %d large %v sector %d: mismatch", cs, kl, ss, off, large, i)
								}
							}
							back := make([]byte, len(ct))
							c.DecryptSectors(back, ct, first)
							if !bytes.Equal(back, pt) {
								t.Fatalf("%s key %d ss %d: round trip failed", cs, kl, ss)
							}
							c.EncryptSectors(pt, pt, first) // in place
							if !bytes.Equal(pt, ct) {
								t.Fatalf("%s key %d ss %d: in-place encrypt differs", cs, kl, ss)
							}
						}
					}
				}
			}
		}
	})
}

func TestNewErrors(t *testing.T) {
	secret := bytes.Repeat([]byte{0xAB}, 20)
	_, err := New(Spec{Cipher: "aes-xts-plain64", Key: secret})
	if !errors.Is(err, ErrKeySize) || !strings.Contains(err.Error(), "32, 48 or 64") || strings.Contains(strings.ToLower(err.Error()), "abab") {
		t.Fatalf("wrong key size: %v", err)
	}
	if _, err := New(Spec{Cipher: "aes-cbc-plain", Key: make([]byte, 32)}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Spec{Cipher: "aes-cbc-plain", Key: make([]byte, 64)}); !errors.Is(err, ErrKeySize) {
		t.Fatalf("64-byte CBC key: %v", err)
	}
	if _, err := New(Spec{Cipher: "aes-ctr-plain", Key: make([]byte, 16)}); !errors.Is(err, ErrUnsupportedCipher) || !strings.Contains(err.Error(), "aes-ctr-plain") {
		t.Fatalf("unknown cipher: %v", err)
	}
	if _, err := New(Spec{Cipher: "aes-cbc-plain", Key: make([]byte, 16), SectorSize: 8192}); err == nil {
		t.Fatal("sector size 8192 accepted")
	}
	if _, err := New(Spec{Cipher: "aes-cbc-plain", Key: make([]byte, 16), SectorSize: 4096, IVOffset: 4}); err == nil {
		t.Fatal("iv offset 4 with 4K sectors accepted (kernel rejects it)")
	}
}

func TestParseCipher(t *testing.T) {
	for _, s := range Supported {
		cs, err := ParseCipher(s)
		if err != nil || cs.String() != s {
			t.Errorf("%s: %v %v", s, cs, err)
		}
	}
	for _, s := range []string{"", "aes", "aes-cbc", "aes-cbc-essiv", "aes-cbc-essiv:md5", "aes-xts-plain", "aes-xts-essiv:sha256",
		"AES-XTS-PLAIN64", "aes-xts-plain64 ", "aes:2-xts-plain64", "capi:xts(aes)-plain64", "aes-cbc-plain:", "aes-xts-plain64:",
		"twofish-xts-plain64", "aes-ecb-null", "aes-cbc-plain64-x", "aes-cbc-plain\n64", strings.Repeat("a", 500)} {
		_, err := ParseCipher(s)
		if !errors.Is(err, ErrUnsupportedCipher) {
			t.Errorf("%q accepted", s)
			continue
		}
		if strings.ContainsAny(err.Error(), "\n\r") || len(err.Error()) > 400 {
			t.Errorf("%q: error is not one short line: %q", s, err)
		}
	}
}

func FuzzParseCipher(f *testing.F) {
	for _, s := range append(Supported, "", "aes-cbc-essiv:md5", "capi:gcm(aes)-random", "aes:64-cbc-lmk", "\x00\xff", "a-b-c:d:e") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := ParseCipher(s)
		if err != nil {
			if !errors.Is(err, ErrUnsupportedCipher) {
				t.Fatalf("%q: error does not wrap ErrUnsupportedCipher: %v", s, err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") || len(err.Error()) > 400 {
				t.Fatalf("%q: error not one short line: %q", s, err)
			}
			return
		}
		if cs.String() != s {
			t.Fatalf("%q parsed as %q", s, cs)
		}
		found := false
		for _, sup := range Supported {
			found = found || sup == s
		}
		if !found {
			t.Fatalf("%q accepted but not in Supported", s)
		}
	})
}

func TestTable(t *testing.T) {
	cases := []struct {
		got, want string
	}{
		{Table("aes-xts-plain64", "@KEY@", 0, "@LOWER@", 0, 16384, 4096, false, ""),
			"0 16384 crypt aes-xts-plain64 @KEY@ 0 @LOWER@ 0 1 sector_size:4096"},
		{Table("aes-cbc-essiv:sha256", "@KEY@", 8, "@DATA@", 0, 100, 512, false, ""),
			"0 100 crypt aes-cbc-essiv:sha256 @KEY@ 8 @DATA@ 0"},
		{Table("aes-xts-plain64", ":64:logon:rules_dm:x", 0, "@DATA@", 16, 64, 0, true, ""),
			"0 64 crypt aes-xts-plain64 :64:logon:rules_dm:x 0 @DATA@ 16 1 iv_large_sectors"},
		{Table("capi:gcm(aes)-random", "@KEY@", 0, "@LOWER@", 0, 8192, 4096, true, "28:aead"),
			"0 8192 crypt capi:gcm(aes)-random @KEY@ 0 @LOWER@ 0 3 integrity:28:aead sector_size:4096 iv_large_sectors"},
		{Table("capi:gcm(aes)-random", "@KEY@", 0, "@LOWER@", 0, 8192, 512, false, "integrity:28:aead"),
			"0 8192 crypt capi:gcm(aes)-random @KEY@ 0 @LOWER@ 0 1 integrity:28:aead"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got  %q\nwant %q", c.got, c.want)
		}
	}
}

type memFile struct{ b []byte }

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, errors.New("EOF")
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, errors.New("short")
	}
	return n, nil
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if need := off + int64(len(p)); need > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, need-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

func TestStreamMatchesSectors(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	for _, cs := range []string{"aes-xts-plain64", "aes-cbc-essiv:sha256"} {
		key := make([]byte, 32)
		rng.Read(key)
		c, err := New(Spec{Cipher: cs, Key: key, SectorSize: 4096, IVOffset: 64})
		if err != nil {
			t.Fatal(err)
		}
		size := 3*ChunkSize + 5*4096
		pt := make([]byte, size)
		rng.Read(pt)
		want := make([]byte, size)
		c.EncryptSectors(want, pt, 0)
		out := &memFile{b: make([]byte, size)} // preallocated: concurrent WriteAt on disjoint ranges
		if err := Encrypt(out, &memFile{b: pt}, int64(size), c); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.b, want) {
			t.Fatalf("%s: parallel stream differs from sequential", cs)
		}
		back := &memFile{b: make([]byte, size)}
		if err := Decrypt(back, out, int64(size), c); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back.b, pt) {
			t.Fatalf("%s: stream round trip failed", cs)
		}
		if err := Encrypt(out, &memFile{b: pt}, int64(size)-512, c); !errors.Is(err, ErrSize) {
			t.Fatalf("unaligned size: %v", err)
		}
		if err := Encrypt(&memFile{b: make([]byte, size+4096)}, &memFile{b: pt}, int64(size)+4096, c); err == nil {
			t.Fatal("short input accepted")
		}
	}
}

func benchSectors(b *testing.B, cs string, keyLen, ss int, fast, dec bool) {
	saved := useFast
	defer func() { useFast = saved }()
	useFast = fast
	if fast && !fastaes.Available {
		b.Skip("no AES-NI")
	}
	c, err := New(Spec{Cipher: cs, Key: make([]byte, keyLen), SectorSize: ss})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	clk := cpuclock.Start(b)
	for i := 0; i < b.N; i++ {
		if dec {
			c.DecryptSectors(buf, buf, 0)
		} else {
			c.EncryptSectors(buf, buf, 0)
		}
	}
	clk.Report(b, len(buf))
}

func BenchmarkXTS256Encrypt4K(b *testing.B) {
	benchSectors(b, "aes-xts-plain64", 64, 4096, true, false)
}
func BenchmarkXTS256Decrypt4K(b *testing.B) { benchSectors(b, "aes-xts-plain64", 64, 4096, true, true) }
func BenchmarkXTS256Encrypt512(b *testing.B) {
	benchSectors(b, "aes-xts-plain64", 64, 512, true, false)
}
func BenchmarkXTS256Encrypt4KGeneric(b *testing.B) {
	benchSectors(b, "aes-xts-plain64", 64, 4096, false, false)
}
func BenchmarkCBC128PlainEncrypt4K(b *testing.B) {
	benchSectors(b, "aes-cbc-plain", 16, 4096, true, false)
}
func BenchmarkCBC128PlainEncrypt512(b *testing.B) {
	benchSectors(b, "aes-cbc-plain", 16, 512, true, false)
}
func BenchmarkCBC128PlainDecrypt4K(b *testing.B) {
	benchSectors(b, "aes-cbc-plain", 16, 4096, true, true)
}
func BenchmarkCBC128EssivEncrypt512(b *testing.B) {
	benchSectors(b, "aes-cbc-essiv:sha256", 16, 512, true, false)
}
func BenchmarkCBC128PlainEncrypt4KGeneric(b *testing.B) {
	benchSectors(b, "aes-cbc-plain", 16, 4096, false, false)
}

// benchParallel runs EncryptSectors on every core at once (b.RunParallel,
// one 256 KiB buffer per goroutine, like one chunk per worker) and reports
// the per-core figures that compare with `openssl speed -multi N` divided
// by N: "MB/s/core" (bytes per wall second / GOMAXPROCS) and "cpu-MB/s"
// (bytes per CPU second of the whole process, user+sys; Linux only). Run
// with -cpu 1,2 to see what a second busy core costs each core.
func benchParallel(b *testing.B, cs string, keyLen int) {
	if !fastaes.Available {
		b.Skip("no AES-NI")
	}
	c, err := New(Spec{Cipher: cs, Key: make([]byte, keyLen), SectorSize: 4096})
	if err != nil {
		b.Fatal(err)
	}
	const size = 256 << 10
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, size)
		for pb.Next() {
			c.EncryptSectors(buf, buf, 0)
		}
	})
	b.StopTimer()
	total := float64(size) * float64(b.N) / 1e6
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(total/s/float64(runtime.GOMAXPROCS(0)), "MB/s/core")
	}
	if d := (processCPU() - cpu0).Seconds(); d > 0 && cpu0 > 0 {
		b.ReportMetric(total/d, "cpu-MB/s")
	}
}

func BenchmarkXTS256Encrypt4KParallel(b *testing.B) { benchParallel(b, "aes-xts-plain64", 64) }
func BenchmarkCBC128PlainEncrypt4KParallel(b *testing.B) {
	benchParallel(b, "aes-cbc-plain", 16)
}

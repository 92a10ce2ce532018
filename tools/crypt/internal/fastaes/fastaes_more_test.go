package fastaes

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/rand"
	"os"
	"testing"

	"golang.org/x/crypto/xts"
)

// FASTAES_EXPECT=asm or =generic makes the run fail unless Available says
// so, so a cross-architecture run (tests/suites/22-arm64.sh under QEMU)
// cannot pass by silently skipping the assembly tests, and a run with the
// CPU feature turned off (GODEBUG=cpu.aes=off) proves the fallback.
func TestExpectedPath(t *testing.T) {
	switch want := os.Getenv("FASTAES_EXPECT"); want {
	case "":
		t.Skip("FASTAES_EXPECT not set")
	case "asm":
		if !Available {
			t.Fatal("FASTAES_EXPECT=asm but the assembly kernels are not available")
		}
	case "generic":
		if Available {
			t.Fatal("FASTAES_EXPECT=generic but the assembly kernels are available")
		}
		defer func() {
			if recover() == nil {
				t.Fatal("XTSEncrypt did not panic without the assembly kernels")
			}
		}()
		k, err := NewKey(make([]byte, 16))
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 16)
		k.XTSEncrypt(buf, buf, [16]byte{})
	default:
		t.Fatalf("FASTAES_EXPECT=%q: want asm or generic", want)
	}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FIPS-197 Appendix C known answers, through every entry point that can
// compute a single block.
func TestFIPS197(t *testing.T) {
	skipIfUnavailable(t)
	pt := unhex(t, "00112233445566778899aabbccddeeff")
	for _, v := range []struct{ key, ct string }{
		{"000102030405060708090a0b0c0d0e0f", "69c4e0d86a7b0430d8cdb78070b4c55a"},
		{"000102030405060708090a0b0c0d0e0f1011121314151617", "dda97ca4864cdfe06eaf70a0ec0d7191"},
		{"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "8ea2b7ca516745bfeafc49904b496089"},
	} {
		key, ct := unhex(t, v.key), unhex(t, v.ct)
		k, err := NewKey(key)
		if err != nil {
			t.Fatal(err)
		}
		if k.Rounds() != len(key)/4+6 {
			t.Fatalf("AES-%d: %d rounds", len(key)*8, k.Rounds())
		}
		var in, out [16]byte
		copy(in[:], pt)
		k.EncryptBlock(&out, &in)
		if !bytes.Equal(out[:], ct) {
			t.Errorf("AES-%d EncryptBlock: %x", len(key)*8, out)
		}
		// 9 copies: the 8-block loop and the tail.
		many := bytes.Repeat(pt, 9)
		k.EncryptBlocks(many, many)
		if !bytes.Equal(many, bytes.Repeat(ct, 9)) {
			t.Errorf("AES-%d EncryptBlocks mismatch", len(key)*8)
		}
		// CBC with a zero IV is the bare cipher on the first block.
		got := make([]byte, 16)
		k.CBCEncrypt(got, pt, [16]byte{})
		if !bytes.Equal(got, ct) {
			t.Errorf("AES-%d CBCEncrypt: %x", len(key)*8, got)
		}
		k.CBCDecrypt(got, ct, [16]byte{})
		if !bytes.Equal(got, pt) {
			t.Errorf("AES-%d CBCDecrypt: %x", len(key)*8, got)
		}
		// 9 blocks C, C, ...: every block after the first decrypts to
		// pt ^ C, the first to pt (zero IV).
		cc := bytes.Repeat(ct, 9)
		k.CBCDecrypt(cc, cc, [16]byte{})
		for i := 0; i < 9; i++ {
			want := append([]byte(nil), pt...)
			if i > 0 {
				for j := range want {
					want[j] ^= ct[j]
				}
			}
			if !bytes.Equal(cc[16*i:16*i+16], want) {
				t.Errorf("AES-%d CBCDecrypt block %d mismatch", len(key)*8, i)
			}
		}
	}
}

// Every block count from 0 to 33 (empty, the 8-block loop, every tail
// length) for every entry point and key size, against crypto/aes, with
// guard bytes after dst that must stay untouched, separate and in place.
func TestBlockCounts(t *testing.T) { withVAES(t, testBlockCounts) }

func testBlockCounts(t *testing.T) {
	skipIfUnavailable(t)
	rng := rand.New(rand.NewSource(4))
	const guard = 48
	for _, kl := range []int{16, 24, 32} {
		key := make([]byte, 2*kl)
		rng.Read(key)
		k, _ := NewKey(key[:kl])
		k2, _ := NewKey(key[kl:])
		blk, _ := aes.NewCipher(key[:kl])
		ref, _ := xts.NewCipher(aes.NewCipher, key)
		for n := 0; n <= 33; n++ {
			src := make([]byte, 16*n)
			rng.Read(src)
			var iv [16]byte
			rng.Read(iv[:])
			sector := rng.Uint64()
			var tw [16]byte
			binary.LittleEndian.PutUint64(tw[:], sector)
			k2.EncryptBlock(&tw, &tw)

			ecb := make([]byte, len(src))
			for i := 0; i < n; i++ {
				blk.Encrypt(ecb[16*i:], src[16*i:])
			}
			cbc := make([]byte, len(src))
			cipher.NewCBCEncrypter(blk, iv[:]).CryptBlocks(cbc, src)
			xt := make([]byte, len(src))
			if n > 0 {
				ref.Encrypt(xt, src, sector)
			}

			for _, c := range []struct {
				name string
				f    func(dst, src []byte)
				in   []byte
				want []byte
			}{
				{"EncryptBlocks", k.EncryptBlocks, src, ecb},
				{"CBCEncrypt", func(d, s []byte) { k.CBCEncrypt(d, s, iv) }, src, cbc},
				{"CBCDecrypt", func(d, s []byte) { k.CBCDecrypt(d, s, iv) }, cbc, src},
				{"XTSEncrypt", func(d, s []byte) { k.XTSEncrypt(d, s, tw) }, src, xt},
				{"XTSDecrypt", func(d, s []byte) { k.XTSDecrypt(d, s, tw) }, xt, src},
			} {
				dst := make([]byte, len(c.in)+guard)
				for i := range dst {
					dst[i] = 0xa5
				}
				c.f(dst, c.in)
				if !bytes.Equal(dst[:len(c.in)], c.want) {
					t.Fatalf("AES-%d %s %d blocks: mismatch", kl*8, c.name, n)
				}
				if !bytes.Equal(dst[len(c.in):], bytes.Repeat([]byte{0xa5}, guard)) {
					t.Fatalf("AES-%d %s %d blocks: wrote past the input length", kl*8, c.name, n)
				}
				inPlace := append(append([]byte(nil), c.in...), bytes.Repeat([]byte{0x5a}, guard)...)
				c.f(inPlace[:len(c.in)], inPlace[:len(c.in)])
				if !bytes.Equal(inPlace[:len(c.in)], c.want) {
					t.Fatalf("AES-%d %s %d blocks: in-place mismatch", kl*8, c.name, n)
				}
				if !bytes.Equal(inPlace[len(c.in):], bytes.Repeat([]byte{0x5a}, guard)) {
					t.Fatalf("AES-%d %s %d blocks: in place wrote past the input length", kl*8, c.name, n)
				}
			}
		}
	}
}

// dm-crypt's use: runs of 19 sectors (two groups of 8 and a tail) of each
// sector size and key size, starting at sector numbers that cross the
// 32-bit boundary (plain IVs wrap there) and the end of the 64-bit range,
// encrypted the way tools/crypt does (XTS per sector; CBC 8 sectors at a
// time, then one by one) against crypto/aes, x/crypto/xts and
// crypto/cipher's CBC.
func TestSectorRuns(t *testing.T) { withVAES(t, testSectorRuns) }

func testSectorRuns(t *testing.T) {
	skipIfUnavailable(t)
	rng := rand.New(rand.NewSource(5))
	const nsec = 19
	starts := []uint64{0, 7, 1<<32 - 5, 1<<64 - 9}
	for _, ss := range []int{512, 1024, 2048, 4096} {
		src := make([]byte, nsec*ss)
		rng.Read(src)
		for _, kl := range []int{16, 24, 32} {
			key := make([]byte, 2*kl)
			rng.Read(key)
			k1, _ := NewKey(key[:kl])
			k2, _ := NewKey(key[kl:])
			ref, _ := xts.NewCipher(aes.NewCipher, key)
			blk, _ := aes.NewCipher(key[:kl])
			salt := sha256.Sum256(key[:kl])
			essivBlk, _ := aes.NewCipher(salt[:])
			essivKey, _ := NewKey(salt[:])
			for _, s0 := range starts {
				// XTS (aes-xts-plain64)
				got := make([]byte, len(src))
				want := make([]byte, len(src))
				for i := 0; i < nsec; i++ {
					s := s0 + uint64(i) // wraps like dm-crypt's u64
					var tw [16]byte
					binary.LittleEndian.PutUint64(tw[:], s)
					k2.EncryptBlock(&tw, &tw)
					k1.XTSEncrypt(got[i*ss:(i+1)*ss], src[i*ss:(i+1)*ss], tw)
					ref.Encrypt(want[i*ss:(i+1)*ss], src[i*ss:(i+1)*ss], s)
					k1.XTSDecrypt(got[i*ss:(i+1)*ss], got[i*ss:(i+1)*ss], tw)
					k1.XTSEncrypt(got[i*ss:(i+1)*ss], got[i*ss:(i+1)*ss], tw)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("xts ss %d key %d start %d: mismatch", ss, 2*kl, s0)
				}

				// CBC with plain, plain64 and essiv IVs
				for _, mode := range []string{"plain", "plain64", "essiv"} {
					iv := func(s uint64) (v [16]byte) {
						switch mode {
						case "plain":
							binary.LittleEndian.PutUint32(v[:], uint32(s))
						case "plain64":
							binary.LittleEndian.PutUint64(v[:], s)
						case "essiv":
							binary.LittleEndian.PutUint64(v[:], s)
							essivKey.EncryptBlock(&v, &v)
						}
						return v
					}
					refIV := func(s uint64) []byte {
						var v [16]byte
						switch mode {
						case "plain":
							binary.LittleEndian.PutUint32(v[:], uint32(s))
						default:
							binary.LittleEndian.PutUint64(v[:], s)
						}
						if mode == "essiv" {
							essivBlk.Encrypt(v[:], v[:])
						}
						return v[:]
					}
					for i := 0; i < nsec; i++ {
						s := s0 + uint64(i)
						cipher.NewCBCEncrypter(blk, refIV(s)).CryptBlocks(want[i*ss:(i+1)*ss], src[i*ss:(i+1)*ss])
					}
					i := 0
					for ; i+8 <= nsec; i += 8 {
						var ivs [8][16]byte
						for j := range ivs {
							ivs[j] = iv(s0 + uint64(i+j))
						}
						k1.CBCEncrypt8(got[i*ss:(i+8)*ss], src[i*ss:(i+8)*ss], ss, &ivs)
					}
					for ; i < nsec; i++ {
						k1.CBCEncrypt(got[i*ss:(i+1)*ss], src[i*ss:(i+1)*ss], iv(s0+uint64(i)))
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("cbc-%s ss %d key %d start %d: encrypt mismatch", mode, ss, kl, s0)
					}
					for i := 0; i < nsec; i++ {
						k1.CBCDecrypt(got[i*ss:(i+1)*ss], got[i*ss:(i+1)*ss], iv(s0+uint64(i)))
					}
					if !bytes.Equal(got, src) {
						t.Fatalf("cbc-%s ss %d key %d start %d: decrypt mismatch", mode, ss, kl, s0)
					}
				}
			}
		}
	}
}

// Byte-aligned buffers (slices at odd offsets): the kernels must not rely
// on 16-byte alignment.
func TestUnaligned(t *testing.T) {
	skipIfUnavailable(t)
	rng := rand.New(rand.NewSource(6))
	key := make([]byte, 64)
	rng.Read(key)
	k1, _ := NewKey(key[:32])
	k2, _ := NewKey(key[32:])
	ref, _ := xts.NewCipher(aes.NewCipher, key)
	blk, _ := aes.NewCipher(key[:32])
	const size = 512 + 9*16
	for _, off := range []int{1, 3, 8, 15} {
		backing := make([]byte, 2*size+64)
		rng.Read(backing)
		src := backing[off : off+size]
		dst := backing[size+32+off/2 : size+32+off/2+size]
		var tw [16]byte
		binary.LittleEndian.PutUint64(tw[:], 99)
		k2.EncryptBlock(&tw, &tw)
		want := make([]byte, size)
		ref.Encrypt(want, src, 99)
		k1.XTSEncrypt(dst, src, tw)
		if !bytes.Equal(dst, want) {
			t.Fatalf("offset %d: XTS mismatch", off)
		}
		var ivs [8][16]byte
		cbc := make([]byte, 8*64)
		unit := backing[off : off+8*64]
		for i := 0; i < 8; i++ {
			cipher.NewCBCEncrypter(blk, ivs[i][:]).CryptBlocks(cbc[64*i:64*i+64], unit[64*i:64*i+64])
		}
		out := backing[size+32+off/2 : size+32+off/2+8*64]
		k1.CBCEncrypt8(out, unit, 64, &ivs)
		if !bytes.Equal(out, cbc) {
			t.Fatalf("offset %d: CBCEncrypt8 mismatch", off)
		}
	}
}

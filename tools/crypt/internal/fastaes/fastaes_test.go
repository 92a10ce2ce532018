package fastaes

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"math/rand"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/rules-dm/rules_dm/internal/cpuclock"
	"golang.org/x/crypto/xts"
)

func skipIfUnavailable(t testing.TB) {
	if !Available {
		t.Skip("assembly kernels not available here")
	}
}

func TestKeyExpansionMatchesCryptoAES(t *testing.T) {
	skipIfUnavailable(t)
	rng := rand.New(rand.NewSource(1))
	for _, n := range []int{16, 24, 32} {
		for i := 0; i < 50; i++ {
			key := make([]byte, n)
			rng.Read(key)
			k, err := NewKey(key)
			if err != nil {
				t.Fatal(err)
			}
			ref, _ := aes.NewCipher(key)
			var in, got, want [16]byte
			rng.Read(in[:])
			k.EncryptBlock(&got, &in)
			ref.Encrypt(want[:], in[:])
			if got != want {
				t.Fatalf("AES-%d block mismatch", n*8)
			}
		}
	}
	for _, n := range []int{1, 7, 8, 9, 64, 67} {
		key := make([]byte, 32)
		rng.Read(key)
		k, _ := NewKey(key)
		ref, _ := aes.NewCipher(key)
		src := make([]byte, 16*n)
		rng.Read(src)
		got := make([]byte, len(src))
		k.EncryptBlocks(got, src)
		for i := 0; i < n; i++ {
			want := make([]byte, 16)
			ref.Encrypt(want, src[16*i:])
			if !bytes.Equal(got[16*i:16*i+16], want) {
				t.Fatalf("EncryptBlocks n=%d block %d mismatch", n, i)
			}
		}
	}
	if _, err := NewKey(make([]byte, 17)); err == nil {
		t.Fatal("17-byte key accepted")
	}
}

// withVAES runs f on the AES-NI kernels and, where the CPU has it, on the
// VAES ones.
func withVAES(t *testing.T, f func(t *testing.T)) {
	saved := hasVAES
	defer func() { hasVAES = saved }()
	hasVAES = false
	name := "aesni"
	if runtime.GOARCH == "arm64" {
		name = "armv8"
	}
	t.Run(name, f)
	if saved {
		hasVAES = true
		t.Run("vaes", f)
	}
}

func TestXTSMatchesXCrypto(t *testing.T) { withVAES(t, testXTSMatchesXCrypto) }

func testXTSMatchesXCrypto(t *testing.T) {
	skipIfUnavailable(t)
	rng := rand.New(rand.NewSource(2))
	for _, n := range []int{32, 48, 64} {
		key := make([]byte, n)
		rng.Read(key)
		ref, _ := xts.NewCipher(aes.NewCipher, key)
		k1, _ := NewKey(key[:n/2])
		k2, _ := NewKey(key[n/2:])
		for _, size := range []int{16, 32, 112, 128, 144, 240, 256, 272, 496, 512, 1024, 4096, 4096 + 48, 4096 + 256 + 128 + 16} {
			src := make([]byte, size)
			rng.Read(src)
			sector := rng.Uint64()
			var tw [16]byte
			binary.LittleEndian.PutUint64(tw[:], sector)
			k2.EncryptBlock(&tw, &tw)
			want := make([]byte, size)
			ref.Encrypt(want, src, sector)
			got := make([]byte, size)
			k1.XTSEncrypt(got, src, tw)
			if !bytes.Equal(got, want) {
				t.Fatalf("key %d size %d: XTS encrypt mismatch", n, size)
			}
			back := make([]byte, size)
			k1.XTSDecrypt(back, got, tw)
			if !bytes.Equal(back, src) {
				t.Fatalf("key %d size %d: XTS decrypt mismatch", n, size)
			}
			// in place
			k1.XTSDecrypt(got, got, tw)
			if !bytes.Equal(got, src) {
				t.Fatalf("key %d size %d: in-place XTS decrypt mismatch", n, size)
			}
		}
	}
}

// IEEE P1619/D16 Annex B vectors (all of them, including the 32-byte data
// units that dm-crypt never uses) straight through the kernels.
func TestIEEEP1619(t *testing.T) {
	withVAES(t, func(t *testing.T) {
		skipIfUnavailable(t)
		f, err := os.ReadFile("../../testdata/ieee-p1619-xts.txt")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, line := range strings.Split(string(f), "\n") {
			fs := strings.Fields(line)
			if len(fs) != 4 || strings.HasPrefix(line, "#") {
				continue
			}
			key, _ := hex.DecodeString(fs[0])
			sector, _ := strconv.ParseUint(fs[1], 10, 64)
			pt, _ := hex.DecodeString(fs[2])
			ct, _ := hex.DecodeString(fs[3])
			k1, _ := NewKey(key[:len(key)/2])
			k2, _ := NewKey(key[len(key)/2:])
			var tw [16]byte
			binary.LittleEndian.PutUint64(tw[:], sector)
			k2.EncryptBlock(&tw, &tw)
			got := make([]byte, len(pt))
			k1.XTSEncrypt(got, pt, tw)
			if !bytes.Equal(got, ct) {
				t.Errorf("vector %d: encrypt mismatch", n)
			}
			k1.XTSDecrypt(got, got, tw)
			if !bytes.Equal(got, pt) {
				t.Errorf("vector %d: decrypt mismatch", n)
			}
			n++
		}
		if n != 6 {
			t.Fatalf("%d vectors, want 6", n)
		}
	})
}

func TestCBCMatchesCryptoCipher(t *testing.T) {
	skipIfUnavailable(t)
	rng := rand.New(rand.NewSource(3))
	for _, n := range []int{16, 24, 32} {
		key := make([]byte, n)
		rng.Read(key)
		blk, _ := aes.NewCipher(key)
		k, _ := NewKey(key)
		for _, unit := range []int{16, 48, 128, 512, 4096} {
			src := make([]byte, 8*unit)
			rng.Read(src)
			var ivs [8][16]byte
			for i := range ivs {
				rng.Read(ivs[i][:])
			}
			want := make([]byte, len(src))
			for i := 0; i < 8; i++ {
				cipher.NewCBCEncrypter(blk, ivs[i][:]).CryptBlocks(want[i*unit:(i+1)*unit], src[i*unit:(i+1)*unit])
			}
			got := make([]byte, len(src))
			k.CBCEncrypt8(got, src, unit, &ivs)
			if !bytes.Equal(got, want) {
				t.Fatalf("key %d unit %d: CBCEncrypt8 mismatch", n, unit)
			}
			one := make([]byte, unit)
			k.CBCEncrypt(one, src[:unit], ivs[0])
			if !bytes.Equal(one, want[:unit]) {
				t.Fatalf("key %d unit %d: CBCEncrypt mismatch", n, unit)
			}
			for i := 0; i < 8; i++ {
				back := make([]byte, unit)
				k.CBCDecrypt(back, got[i*unit:(i+1)*unit], ivs[i])
				if !bytes.Equal(back, src[i*unit:(i+1)*unit]) {
					t.Fatalf("key %d unit %d: CBCDecrypt mismatch", n, unit)
				}
			}
			k.CBCDecrypt(got[:unit], got[:unit], ivs[0])
			if !bytes.Equal(got[:unit], src[:unit]) {
				t.Fatalf("key %d unit %d: in-place CBCDecrypt mismatch", n, unit)
			}
		}
	}
}

func benchXTS(b *testing.B, keyLen int, dec bool) { benchXTSSize(b, keyLen, dec, 4096) }

func BenchmarkXTSEncrypt256x512(b *testing.B) { benchXTSSize(b, 64, false, 512) }

func benchXTSSize(b *testing.B, keyLen int, dec bool, size int) {
	skipIfUnavailable(b)
	key := make([]byte, keyLen)
	k, _ := NewKey(key[:keyLen/2])
	buf := make([]byte, size)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	var tw [16]byte
	clk := cpuclock.Start(b)
	for i := 0; i < b.N; i++ {
		if dec {
			k.XTSDecrypt(buf, buf, tw)
		} else {
			k.XTSEncrypt(buf, buf, tw)
		}
	}
	clk.Report(b, len(buf))
}

func BenchmarkXTSEncrypt256(b *testing.B) { benchXTS(b, 64, false) }
func BenchmarkXTSEncrypt256AESNI(b *testing.B) {
	saved := hasVAES
	defer func() { hasVAES = saved }()
	hasVAES = false
	benchXTS(b, 64, false)
}
func BenchmarkXTSDecrypt256(b *testing.B) { benchXTS(b, 64, true) }

func BenchmarkCBCEncrypt8x4K128(b *testing.B) {
	skipIfUnavailable(b)
	k, _ := NewKey(make([]byte, 16))
	buf := make([]byte, 8*4096)
	var ivs [8][16]byte
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		k.CBCEncrypt8(buf, buf, 4096, &ivs)
	}
}

func BenchmarkCBCDecrypt4K128(b *testing.B) {
	skipIfUnavailable(b)
	k, _ := NewKey(make([]byte, 16))
	buf := make([]byte, 4096)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	var iv [16]byte
	for i := 0; i < b.N; i++ {
		k.CBCDecrypt(buf, buf, iv)
	}
}

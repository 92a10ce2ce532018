package crypt

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/rand"
	"strconv"
	"strings"
	"testing"
)

func TestAEADRoundTripAndTamper(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	withPath(t, func(t *testing.T, fast bool) {
		for _, spec := range []string{AEADGCM, AEADAuthencXTS} {
			sizes, _ := AEADKeySizes(spec)
			for _, kl := range sizes {
				for _, ss := range []int{512, 4096} {
					key := make([]byte, kl)
					rng.Read(key)
					a, err := NewAEAD(spec, key, ss)
					if err != nil {
						t.Fatal(err)
					}
					n := 9
					pt := make([]byte, n*ss)
					rng.Read(pt)
					copy(pt[ss:2*ss], pt[:ss]) // equal plaintext in sectors 0 and 1
					ct := make([]byte, len(pt))
					tags := make([]byte, n*a.TagSize())
					a.SealSectors(ct, tags, pt, 5)
					ts := a.TagSize()
					if bytes.Equal(tags[a.AuthSize():ts], tags[ts+a.AuthSize():2*ts]) {
						t.Fatalf("%s: same IV for equal plaintext in different sectors", spec)
					}
					ct2 := make([]byte, len(pt))
					tags2 := make([]byte, len(tags))
					a.SealSectors(ct2, tags2, pt, 5)
					if !bytes.Equal(ct, ct2) || !bytes.Equal(tags, tags2) {
						t.Fatalf("%s: not deterministic", spec)
					}
					back := make([]byte, len(ct))
					if err := a.OpenSectors(back, ct, tags, 5); err != nil || !bytes.Equal(back, pt) {
						t.Fatalf("%s key %d ss %d: open: %v", spec, kl, ss, err)
					}
					spb := uint64(ss / 512)
					for _, flip := range []struct {
						what string
						buf  []byte
						off  int
						sect uint64
					}{
						{"ciphertext", ct, 3*ss + 7, 3},
						{"auth tag", tags, 4*ts + 1, 4},
						{"iv", tags, 6*ts + ts - 1, 6},
					} {
						flip.buf[flip.off] ^= 1
						err := a.OpenSectors(back, ct, tags, 5)
						flip.buf[flip.off] ^= 1
						want := "sector " + itoa((5+flip.sect)*spb) + ":"
						if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), want) {
							t.Fatalf("%s: flipped %s: %v (want %q)", spec, flip.what, err, want)
						}
					}
					// wrong position: AAD binds the sector
					if err := a.OpenSectors(back, ct, tags, 6); !errors.Is(err, ErrAuth) {
						t.Fatalf("%s: moved sectors verified", spec)
					}
				}
			}
		}
	})
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

// Independent recomputation from aead-offline.md with crypto/* primitives.
func TestAEADLayout(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	key := make([]byte, 96)
	rng.Read(key)
	pt := make([]byte, 2*4096)
	rng.Read(pt)
	// authenc, 4 KiB sectors, first sector 10: S = 80, 88
	a, _ := NewAEAD(AEADAuthencXTS, key, 4096)
	ct := make([]byte, len(pt))
	tags := make([]byte, 2*48)
	a.SealSectors(ct, tags, pt, 10)
	m := hmac.New(sha256.New, key)
	m.Write([]byte("dm-crypt-aead deterministic iv v1"))
	kiv := m.Sum(nil)
	for i := 0; i < 2; i++ {
		var S [8]byte
		binary.LittleEndian.PutUint64(S[:], uint64(80+8*i))
		m := hmac.New(sha256.New, kiv)
		m.Write(S[:])
		m.Write(pt[i*4096 : (i+1)*4096])
		iv := m.Sum(nil)[:16]
		if !bytes.Equal(tags[i*48+32:(i+1)*48], iv) {
			t.Fatalf("sector %d: IV not as documented", i)
		}
		mac := hmac.New(sha256.New, key[64:])
		mac.Write(S[:])
		mac.Write(iv)
		mac.Write(ct[i*4096 : (i+1)*4096])
		if !bytes.Equal(mac.Sum(nil), tags[i*48:i*48+32]) {
			t.Fatalf("sector %d: HMAC not as documented", i)
		}
	}
	// the AES-NI XTS and the generic (crypto/aes) XTS with a full IV tweak agree
	saved := useFast
	useFast = false
	ag, _ := NewAEAD(AEADAuthencXTS, key, 4096)
	useFast = saved
	ctg := make([]byte, len(pt))
	tagsg := make([]byte, len(tags))
	ag.SealSectors(ctg, tagsg, pt, 10)
	if !bytes.Equal(ctg, ct) || !bytes.Equal(tagsg, tags) {
		t.Fatal("authenc: generic and fast paths differ")
	}
	// gcm, 512-byte sectors, first sector 3: S = 3
	g, _ := NewAEAD(AEADGCM, key[:32], 512)
	tags = make([]byte, 28)
	g.SealSectors(ct[:512], tags, pt[:512], 3)
	blk, _ := aes.NewCipher(key[:32])
	gcm, _ := cipher.NewGCM(blk)
	var aad [20]byte
	binary.LittleEndian.PutUint64(aad[:8], 3)
	copy(aad[8:], tags[16:])
	sealed := gcm.Seal(nil, tags[16:], pt[:512], aad[:])
	if !bytes.Equal(sealed[:512], ct[:512]) || !bytes.Equal(sealed[512:], tags[:16]) {
		t.Fatal("gcm layout not as documented")
	}
	if g.TagSize() != 28 || a.TagSize() != 48 || g.IntegrityArg() != "28:aead" {
		t.Fatal("tag sizes")
	}
}

func TestAEADStream(t *testing.T) {
	rng := rand.New(rand.NewSource(13))
	key := make([]byte, 32)
	rng.Read(key)
	a, _ := NewAEAD(AEADGCM, key, 4096)
	size := 2*ChunkSize + 3*4096
	pt := make([]byte, size)
	rng.Read(pt)
	want := make([]byte, size)
	wantTags := make([]byte, size/4096*28)
	a.SealSectors(want, wantTags, pt, 0)
	out := &memFile{b: make([]byte, size)}
	tags := &memFile{b: make([]byte, len(wantTags))}
	if err := EncryptAEAD(out, tags, &memFile{b: pt}, int64(size), a); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.b, want) || !bytes.Equal(tags.b, wantTags) {
		t.Fatal("parallel AEAD stream differs from sequential")
	}
	back := &memFile{b: make([]byte, size)}
	if err := DecryptAEAD(back, out, tags, int64(size), a); err != nil || !bytes.Equal(back.b, pt) {
		t.Fatalf("AEAD stream round trip: %v", err)
	}
	tags.b[len(tags.b)-1] ^= 1
	if err := DecryptAEAD(back, out, tags, int64(size), a); !errors.Is(err, ErrAuth) {
		t.Fatalf("tampered stream: %v", err)
	}
}

func TestAEADErrors(t *testing.T) {
	if _, err := NewAEAD(AEADGCM, make([]byte, 20), 512); !errors.Is(err, ErrKeySize) {
		t.Fatal(err)
	}
	if _, err := NewAEAD(AEADAuthencXTS, make([]byte, 64+31), 512); !errors.Is(err, ErrKeySize) || !strings.Contains(err.Error(), "64, 80 or 96") {
		t.Fatal(err)
	}
	if _, err := NewAEAD("capi:ccm(aes)-random", make([]byte, 32), 512); !errors.Is(err, ErrUnsupportedCipher) {
		t.Fatal(err)
	}
	if _, err := NewAEAD(AEADGCM, make([]byte, 32), 8192); err == nil {
		t.Fatal("sector size 8192 accepted")
	}
}

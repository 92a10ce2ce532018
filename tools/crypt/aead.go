package crypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/rules-dm/rules_dm/tools/crypt/internal/fastaes"
)

// AEAD cipher specs (the kernel's capi: form, IV mode "random").
const (
	AEADGCM        = "capi:gcm(aes)-random"
	AEADAuthencXTS = "capi:authenc(hmac(sha256),xts(aes))-random"
)

const aeadIVLabel = "dm-crypt-aead deterministic iv v1"

// ErrAuth is wrapped by errors for a sector whose tag does not verify.
var ErrAuth = errors.New("authentication failed")

// AEAD seals and opens sectors of an authenticated dm-crypt mapping. It is
// safe for concurrent use.
//
// Authenticated dm-crypt (table option integrity:<N>:aead over a
// dm-integrity device in "none" hash mode), built offline as
// docs/aead-offline.md describes and as verified in a 6.1 kernel:
//
//   - every sector (SectorSize bytes) is encrypted and authenticated on its
//     own; its integrity tag entry is [auth tag | IV] (AEADGCM: 16+12 = 28
//     bytes, AEADAuthencXTS: 32+16 = 48), one entry per sector, contiguous;
//   - the associated data is le64(S) || IV, where S is the sector's offset
//     from the start of the crypt target in 512-byte units (8*i for 4 KiB
//     sector i); iv_offset and iv_large_sectors do not enter it;
//   - AEADGCM: AES-GCM(key, nonce = IV, aad, sector) -> ciphertext + tag;
//   - AEADAuthencXTS: key = xts key (32/48/64) || hmac key (32);
//     ciphertext = XTS(tweak = AES_K2(IV), the full 16-byte IV),
//     tag = HMAC-SHA256(hmac key, S || IV || ciphertext).
//
// "-random" IVs are only read back by the kernel, so offline we choose them:
// deterministically, SIV-like, so the same key and input give the same
// image:
//
//	K_iv = HMAC-SHA256(table key, "dm-crypt-aead deterministic iv v1")
//	IV   = HMAC-SHA256(K_iv, le64(S) || plaintext sector)[:IV size]
//
// The same (S, plaintext) under one key always gives the same IV and
// ciphertext (revealing only "this sector is unchanged"); any other
// (S, plaintext) gets an independent pseudo-random 96/128-bit IV, so an IV
// repeats under one key only by a truncated-HMAC collision (probability
// below n^2/2^97 for n sectors: < 2^-41 for a 1 TiB image of 4 KiB sectors).
// Sectors the kernel later rewrites get kernel-random IVs; the image stays
// valid.
type AEAD struct {
	spec       string
	sectorSize int
	keySize    int
	ivSize     int
	authSize   int
	ivKey      []byte // K_iv

	gcm cipher.AEAD // AEADGCM

	macKey       []byte // AEADAuthencXTS
	k1, k2       cipher.Block
	fast1, fast2 *fastaes.Key
}

// AEADKeySizes returns the key lengths in bytes the kernel accepts for an
// AEAD spec (for authenc: XTS key plus the 32-byte HMAC key).
func AEADKeySizes(spec string) ([]int, error) {
	switch spec {
	case AEADGCM:
		return []int{16, 24, 32}, nil
	case AEADAuthencXTS:
		return []int{64, 80, 96}, nil
	}
	return nil, fmt.Errorf("%w %s: supported AEAD specs: %s, %s", ErrUnsupportedCipher, quoteSpec(spec), AEADGCM, AEADAuthencXTS)
}

// NewAEAD checks the spec, key length and sector size (512, 1024, 2048 or
// 4096; it must equal the dm-integrity block size). Errors never contain
// key bytes.
func NewAEAD(spec string, key []byte, sectorSize int) (*AEAD, error) {
	sizes, err := AEADKeySizes(spec)
	if err != nil {
		return nil, err
	}
	ok := false
	for _, n := range sizes {
		ok = ok || n == len(key)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s takes a key of %d, %d or %d bytes, got %d bytes", ErrKeySize, spec, sizes[0], sizes[1], sizes[2], len(key))
	}
	switch sectorSize {
	case 0:
		sectorSize = 512
	case 512, 1024, 2048, 4096:
	default:
		return nil, fmt.Errorf("crypt: sector size %d: want 512, 1024, 2048 or 4096", sectorSize)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(aeadIVLabel))
	a := &AEAD{spec: spec, sectorSize: sectorSize, keySize: len(key), ivKey: m.Sum(nil)}
	switch spec {
	case AEADGCM:
		a.ivSize, a.authSize = 12, 16
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("crypt: %s: %v", spec, err)
		}
		if a.gcm, err = cipher.NewGCM(b); err != nil {
			return nil, fmt.Errorf("crypt: %s: %v", spec, err)
		}
	case AEADAuthencXTS:
		a.ivSize, a.authSize = 16, 32
		enc := key[:len(key)-32]
		a.macKey = append([]byte(nil), key[len(key)-32:]...)
		half := len(enc) / 2
		if a.k1, err = aes.NewCipher(enc[:half]); err != nil {
			return nil, err
		}
		if a.k2, err = aes.NewCipher(enc[half:]); err != nil {
			return nil, err
		}
		if useFast {
			if a.fast1, err = fastaes.NewKey(enc[:half]); err != nil {
				return nil, err
			}
			if a.fast2, err = fastaes.NewKey(enc[half:]); err != nil {
				return nil, err
			}
		}
	}
	return a, nil
}

// TagSize is the on-disk integrity tag size per sector (auth tag + IV): the
// <N> of integrity:<N>:aead and of the dm-integrity table.
func (a *AEAD) TagSize() int { return a.authSize + a.ivSize }

// IVSize returns 12 (gcm) or 16 (authenc).
func (a *AEAD) IVSize() int { return a.ivSize }

// AuthSize returns 16 (gcm) or 32 (authenc).
func (a *AEAD) AuthSize() int { return a.authSize }

// SectorSize returns the sector (and integrity block) size in bytes.
func (a *AEAD) SectorSize() int { return a.sectorSize }

// KeySize returns the table key length in bytes.
func (a *AEAD) KeySize() int { return a.keySize }

// Spec returns the capi: cipher spec.
func (a *AEAD) Spec() string { return a.spec }

// IntegrityArg returns "<TagSize>:aead" for [Table]'s integrity argument.
func (a *AEAD) IntegrityArg() string { return fmt.Sprintf("%d:aead", a.TagSize()) }

// aeadScratch is per-call working memory.
type aeadScratch struct {
	ivMac  hash.Hash
	mac    hash.Hash
	sealed []byte
	sum    []byte
}

func (a *AEAD) scratch() *aeadScratch {
	s := &aeadScratch{ivMac: hmac.New(sha256.New, a.ivKey), sum: make([]byte, 0, 32)}
	if a.macKey != nil {
		s.mac = hmac.New(sha256.New, a.macKey)
	}
	if a.gcm != nil {
		s.sealed = make([]byte, 0, a.sectorSize+16)
	}
	return s
}

func (a *AEAD) check(data, tags []byte) int {
	if len(data)%a.sectorSize != 0 {
		panic(fmt.Sprintf("crypt: input of %d bytes is not a multiple of the sector size %d", len(data), a.sectorSize))
	}
	n := len(data) / a.sectorSize
	if len(tags) < n*a.TagSize() {
		panic("crypt: tag buffer smaller than sectors*TagSize")
	}
	return n
}

// xts encrypts or decrypts one sector with the full 16-byte IV as tweak.
func (a *AEAD) xts(dst, src []byte, iv *[16]byte, enc bool) {
	var tw [16]byte
	if a.fast1 != nil {
		a.fast2.EncryptBlock(&tw, iv)
		if enc {
			a.fast1.XTSEncrypt(dst, src, tw)
		} else {
			a.fast1.XTSDecrypt(dst, src, tw)
		}
		return
	}
	a.k2.Encrypt(tw[:], iv[:])
	for j := 0; j < len(src); j += 16 {
		var x [16]byte
		for b := 0; b < 16; b++ {
			x[b] = src[j+b] ^ tw[b]
		}
		if enc {
			a.k1.Encrypt(x[:], x[:])
		} else {
			a.k1.Decrypt(x[:], x[:])
		}
		for b := 0; b < 16; b++ {
			dst[j+b] = x[b] ^ tw[b]
		}
		// tw *= alpha (little-endian GF(2^128), IEEE P1619)
		lo, hi := binary.LittleEndian.Uint64(tw[:8]), binary.LittleEndian.Uint64(tw[8:])
		carry := hi >> 63
		hi = hi<<1 | lo>>63
		lo = lo<<1 ^ carry*0x87
		binary.LittleEndian.PutUint64(tw[:8], lo)
		binary.LittleEndian.PutUint64(tw[8:], hi)
	}
}

// SealSectors encrypts whole sectors of src into dst and writes one tag
// entry [auth tag | IV] per sector into tags (len >= sectors*TagSize).
// firstSector is src's first sector in SectorSize units from the start of
// the crypt target. dst may be src; no other overlap. Misuse panics.
func (a *AEAD) SealSectors(dst, tags, src []byte, firstSector uint64) {
	n := a.check(src, tags)
	if len(dst) < len(src) {
		panic("crypt: output smaller than input")
	}
	s := a.scratch()
	ss, ts := a.sectorSize, a.TagSize()
	spb := uint64(ss / 512)
	var aad [24]byte
	for i := 0; i < n; i++ {
		pt, out, entry := src[i*ss:(i+1)*ss], dst[i*ss:(i+1)*ss], tags[i*ts:(i+1)*ts]
		S := (firstSector + uint64(i)) * spb
		binary.LittleEndian.PutUint64(aad[:8], S)
		s.ivMac.Reset()
		s.ivMac.Write(aad[:8])
		s.ivMac.Write(pt)
		s.sum = s.ivMac.Sum(s.sum[:0])
		iv := entry[a.authSize:]
		copy(iv, s.sum[:a.ivSize])
		copy(aad[8:], iv)
		switch {
		case a.gcm != nil:
			s.sealed = a.gcm.Seal(s.sealed[:0], iv, pt, aad[:8+a.ivSize])
			copy(out, s.sealed[:ss])
			copy(entry[:a.authSize], s.sealed[ss:])
		default:
			var iv16 [16]byte
			copy(iv16[:], iv)
			a.xts(out, pt, &iv16, true)
			s.mac.Reset()
			s.mac.Write(aad[:24])
			s.mac.Write(out)
			s.sum = s.mac.Sum(s.sum[:0])
			copy(entry[:a.authSize], s.sum)
		}
	}
}

// OpenSectors verifies and decrypts whole sectors of src (with their tag
// entries) into dst. It returns an error wrapping [ErrAuth] naming the first
// sector (in 512-byte units, as the kernel logs it) that fails; dst is then
// unspecified. dst may be src; no other overlap.
func (a *AEAD) OpenSectors(dst, src, tags []byte, firstSector uint64) error {
	n := a.check(src, tags)
	if len(dst) < len(src) {
		panic("crypt: output smaller than input")
	}
	s := a.scratch()
	ss, ts := a.sectorSize, a.TagSize()
	spb := uint64(ss / 512)
	var aad [24]byte
	for i := 0; i < n; i++ {
		ct, out, entry := src[i*ss:(i+1)*ss], dst[i*ss:(i+1)*ss], tags[i*ts:(i+1)*ts]
		S := (firstSector + uint64(i)) * spb
		binary.LittleEndian.PutUint64(aad[:8], S)
		iv := entry[a.authSize:]
		copy(aad[8:], iv)
		switch {
		case a.gcm != nil:
			s.sealed = append(append(s.sealed[:0], ct...), entry[:a.authSize]...)
			if _, err := a.gcm.Open(out[:0], iv, s.sealed, aad[:8+a.ivSize]); err != nil {
				return fmt.Errorf("crypt: sector %d: %w", S, ErrAuth)
			}
		default:
			s.mac.Reset()
			s.mac.Write(aad[:24])
			s.mac.Write(ct)
			s.sum = s.mac.Sum(s.sum[:0])
			if !hmac.Equal(s.sum, entry[:a.authSize]) {
				return fmt.Errorf("crypt: sector %d: %w", S, ErrAuth)
			}
			var iv16 [16]byte
			copy(iv16[:], iv)
			a.xts(out, ct, &iv16, false)
		}
	}
	return nil
}

// EncryptAEAD reads size bytes of plaintext from src, writes the ciphertext
// at the same offsets of dst and the tag entries contiguously from offset 0
// of tags (sector i's entry at i*TagSize; wrap tags in io.NewOffsetWriter to
// place them inside a metadata image). Parallel and memory-flat like
// [Encrypt]; output identical to a sequential run.
func EncryptAEAD(dst, tags io.WriterAt, src io.ReaderAt, size int64, a *AEAD) error {
	return aeadConvert(dst, tags, src, nil, size, a)
}

// DecryptAEAD verifies and decrypts: the inverse of [EncryptAEAD]. The
// first sector that fails authentication stops it with an error wrapping
// [ErrAuth].
func DecryptAEAD(dst io.WriterAt, src, tags io.ReaderAt, size int64, a *AEAD) error {
	return aeadConvert(dst, nil, src, tags, size, a)
}

func aeadConvert(dst, tagsOut io.WriterAt, src, tagsIn io.ReaderAt, size int64, a *AEAD) error {
	ss := int64(a.sectorSize)
	if size < 0 || size%ss != 0 {
		return fmt.Errorf("crypt: %w: %d bytes is not a multiple of %d", ErrSize, size, ss)
	}
	ts := int64(a.TagSize())
	chunks := (size + ChunkSize - 1) / ChunkSize
	workers := int64(runtime.GOMAXPROCS(0))
	if workers > chunks {
		workers = chunks
	}
	var (
		next     atomic.Int64
		failed   atomic.Bool
		mu       sync.Mutex
		firstErr error
		errOff   int64 = -1
		wg       sync.WaitGroup
	)
	// Keep the error of the lowest offset so that the report is the same
	// whatever the scheduling.
	setErr := func(off int64, err error) {
		mu.Lock()
		if errOff < 0 || off < errOff {
			errOff, firstErr = off, err
		}
		mu.Unlock()
		failed.Store(true)
	}
	readFull := func(r io.ReaderAt, b []byte, off int64, what string) error {
		if m, err := r.ReadAt(b, off); m != len(b) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("crypt: read %s at offset %d: %w", what, off+int64(m), err)
		}
		return nil
	}
	for w := int64(0); w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, ChunkSize)
			tbuf := make([]byte, ChunkSize/512*ts)
			for !failed.Load() {
				idx := next.Add(1) - 1
				if idx >= chunks {
					return
				}
				off := idx * ChunkSize
				n := min(size-off, ChunkSize)
				b := buf[:n]
				first := off / ss
				t := tbuf[:n/ss*ts]
				if err := readFull(src, b, off, "data"); err != nil {
					setErr(off, err)
					return
				}
				if tagsIn != nil {
					if err := readFull(tagsIn, t, first*ts, "tags"); err != nil {
						setErr(off, err)
						return
					}
					if err := a.OpenSectors(b, b, t, uint64(first)); err != nil {
						setErr(off, err)
						return
					}
				} else {
					a.SealSectors(b, t, b, uint64(first))
					if _, err := tagsOut.WriteAt(t, first*ts); err != nil {
						setErr(off, fmt.Errorf("crypt: write tags at offset %d: %w", first*ts, err))
						return
					}
				}
				if _, err := dst.WriteAt(b, off); err != nil {
					setErr(off, fmt.Errorf("crypt: write at offset %d: %w", off, err))
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

package crypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/rules-dm/rules_dm/tools/crypt/internal/fastaes"
	"golang.org/x/crypto/xts"
)

// Spec describes one dm-crypt mapping: the table's <cipher>, <key>,
// <iv_offset> and the sector_size / iv_large_sectors options.
type Spec struct {
	// Cipher is a dm-crypt cipher spec, one of [Supported].
	Cipher string
	// Key is the raw key (16/24/32 bytes for CBC, 32/48/64 for XTS).
	Key []byte
	// SectorSize is the encryption unit in bytes: 512 (default when 0),
	// 1024, 2048 or 4096.
	SectorSize int
	// IVOffset is added to the IV sector number, in 512-byte units; a
	// multiple of SectorSize/512.
	IVOffset uint64
	// IVLargeSectors counts IV sectors in SectorSize units.
	IVLargeSectors bool
}

// Cipher encrypts and decrypts sectors for one [Spec]. It is safe for
// concurrent use.
type Cipher struct {
	spec       CipherSpec
	sectorSize int
	shift      uint // log2(sectorSize/512)
	ivOffset   uint64
	ivLarge    bool
	keySize    int

	// generic path
	block cipher.Block // CBC data key
	xts   *xts.Cipher
	essiv cipher.Block // AES-256 keyed with sha256(key)
	// essivFast is the same key for the assembly path (no interface call,
	// so the IV does not escape to the heap).
	essivFast *fastaes.Key

	// fast path (nil when unavailable or disabled)
	fast      *fastaes.Key // data key (XTS K1 or the CBC key)
	fastTweak *fastaes.Key // XTS K2
}

// useFast lets tests force the generic path.
var useFast = fastaes.Available

// New checks spec and expands its key. Errors name the problem (unknown
// spec, wrong key length with the accepted lengths, bad sector size or IV
// offset) but never contain key bytes.
func New(spec Spec) (*Cipher, error) {
	cs, err := ParseCipher(spec.Cipher)
	if err != nil {
		return nil, err
	}
	if err := checkKeySize(cs, len(spec.Key)); err != nil {
		return nil, err
	}
	ss := spec.SectorSize
	if ss == 0 {
		ss = 512
	}
	c := &Cipher{spec: cs, sectorSize: ss, ivOffset: spec.IVOffset, ivLarge: spec.IVLargeSectors, keySize: len(spec.Key)}
	switch ss {
	case 512:
		c.shift = 0
	case 1024:
		c.shift = 1
	case 2048:
		c.shift = 2
	case 4096:
		c.shift = 3
	default:
		return nil, fmt.Errorf("crypt: sector size %d: want 512, 1024, 2048 or 4096", spec.SectorSize)
	}
	if spb := uint64(ss / 512); spec.IVOffset%spb != 0 {
		return nil, fmt.Errorf("crypt: iv offset %d must be a multiple of %d (sector size %d in 512-byte units), as the kernel requires", spec.IVOffset, spb, ss)
	}
	key := spec.Key
	switch cs.Chain {
	case "xts":
		if c.xts, err = xts.NewCipher(aes.NewCipher, key); err != nil {
			return nil, fmt.Errorf("crypt: %s: %v", cs, err)
		}
		if useFast {
			half := len(key) / 2
			if c.fast, err = fastaes.NewKey(key[:half]); err != nil {
				return nil, err
			}
			if c.fastTweak, err = fastaes.NewKey(key[half:]); err != nil {
				return nil, err
			}
		}
	case "cbc":
		if c.block, err = aes.NewCipher(key); err != nil {
			return nil, fmt.Errorf("crypt: %s: %v", cs, err)
		}
		if cs.IVMode == "essiv" {
			salt := sha256.Sum256(key)
			if c.essiv, err = aes.NewCipher(salt[:]); err != nil {
				return nil, fmt.Errorf("crypt: essiv: %v", err)
			}
			if useFast {
				if c.essivFast, err = fastaes.NewKey(salt[:]); err != nil {
					return nil, err
				}
			}
		}
		if useFast {
			if c.fast, err = fastaes.NewKey(key); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

// SectorSize returns the encryption unit in bytes.
func (c *Cipher) SectorSize() int { return c.sectorSize }

// KeySize returns the key length in bytes.
func (c *Cipher) KeySize() int { return c.keySize }

// CipherSpec returns the parsed cipher spec.
func (c *Cipher) CipherSpec() CipherSpec { return c.spec }

// IVSector returns the sector number that goes into the IV of sector k
// (k counted in SectorSize units from the start of the target), as
// dm-crypt computes it: k*(SectorSize/512)+IVOffset, divided by
// SectorSize/512 with iv_large_sectors. Arithmetic wraps at 64 bits as in
// the kernel.
func (c *Cipher) IVSector(k uint64) uint64 {
	s := k<<c.shift + c.ivOffset
	if c.ivLarge {
		s >>= c.shift
	}
	return s
}

// IV returns the 16-byte IV (for XTS: the tweak before encryption with the
// tweak key) of sector k.
func (c *Cipher) IV(k uint64) [16]byte {
	var iv [16]byte
	s := c.IVSector(k)
	switch c.spec.IVMode {
	case "plain":
		binary.LittleEndian.PutUint32(iv[:], uint32(s))
	case "plain64":
		binary.LittleEndian.PutUint64(iv[:], s)
	case "essiv":
		binary.LittleEndian.PutUint64(iv[:], s)
		if c.essivFast != nil {
			c.essivFast.EncryptBlock(&iv, &iv)
		} else {
			return c.essivGeneric(iv)
		}
	}
	return iv
}

func (c *Cipher) essivGeneric(iv [16]byte) [16]byte {
	var out [16]byte
	c.essiv.Encrypt(out[:], iv[:])
	return out
}

// tweakBatch is how many XTS tweaks are encrypted per call (8 in flight).
const tweakBatch = 32

// tweaks fills tws[:16*m] with the encrypted XTS tweaks of sectors
// first..first+m-1 (fast path only; 8 encryptions in flight) and returns m.
func (c *Cipher) tweaks(tws *[tweakBatch * 16]byte, first uint64, m int) int {
	for j := 0; j < m; j++ {
		iv := c.IV(first + uint64(j))
		copy(tws[16*j:], iv[:])
	}
	c.fastTweak.EncryptBlocks(tws[:16*m], tws[:16*m])
	return m
}

func (c *Cipher) checkBuffers(dst, src []byte) {
	if len(src)%c.sectorSize != 0 {
		panic(fmt.Sprintf("crypt: input of %d bytes is not a multiple of the sector size %d", len(src), c.sectorSize))
	}
	if len(dst) < len(src) {
		panic("crypt: output smaller than input")
	}
}

// EncryptSectors encrypts whole sectors from src into dst. firstSector is
// the index of src's first sector in SectorSize units from the start of the
// crypt target (byte offset / SectorSize). len(src) must be a multiple of
// SectorSize and dst at least as long; dst and src may be the same slice
// but must not otherwise overlap. Misuse panics.
func (c *Cipher) EncryptSectors(dst, src []byte, firstSector uint64) {
	c.checkBuffers(dst, src)
	ss := c.sectorSize
	n := len(src) / ss
	switch {
	case c.spec.Chain == "xts" && c.fast != nil:
		var tws [tweakBatch * 16]byte
		for i := 0; i < n; i += tweakBatch {
			m := c.tweaks(&tws, firstSector+uint64(i), min(tweakBatch, n-i))
			for j := 0; j < m; j++ {
				k := i + j
				c.fast.XTSEncrypt(dst[k*ss:(k+1)*ss], src[k*ss:(k+1)*ss], [16]byte(tws[16*j:]))
			}
		}
	case c.spec.Chain == "xts":
		for i := 0; i < n; i++ {
			c.xts.Encrypt(dst[i*ss:(i+1)*ss], src[i*ss:(i+1)*ss], c.IVSector(firstSector+uint64(i)))
		}
	case c.fast != nil:
		i := 0
		var ivs [8][16]byte
		for ; i+8 <= n; i += 8 {
			for j := range ivs {
				ivs[j] = c.IV(firstSector + uint64(i+j))
			}
			c.fast.CBCEncrypt8(dst[i*ss:(i+8)*ss], src[i*ss:(i+8)*ss], ss, &ivs)
		}
		for ; i < n; i++ {
			c.fast.CBCEncrypt(dst[i*ss:(i+1)*ss], src[i*ss:(i+1)*ss], c.IV(firstSector+uint64(i)))
		}
	default:
		for i := 0; i < n; i++ {
			iv := c.IV(firstSector + uint64(i))
			cipher.NewCBCEncrypter(c.block, iv[:]).CryptBlocks(dst[i*ss:(i+1)*ss], src[i*ss:(i+1)*ss])
		}
	}
}

// DecryptSectors is the inverse of [Cipher.EncryptSectors], with the same
// rules.
func (c *Cipher) DecryptSectors(dst, src []byte, firstSector uint64) {
	c.checkBuffers(dst, src)
	ss := c.sectorSize
	n := len(src) / ss
	switch {
	case c.spec.Chain == "xts" && c.fast != nil:
		var tws [tweakBatch * 16]byte
		for i := 0; i < n; i += tweakBatch {
			m := c.tweaks(&tws, firstSector+uint64(i), min(tweakBatch, n-i))
			for j := 0; j < m; j++ {
				k := i + j
				c.fast.XTSDecrypt(dst[k*ss:(k+1)*ss], src[k*ss:(k+1)*ss], [16]byte(tws[16*j:]))
			}
		}
	case c.spec.Chain == "xts":
		for i := 0; i < n; i++ {
			c.xts.Decrypt(dst[i*ss:(i+1)*ss], src[i*ss:(i+1)*ss], c.IVSector(firstSector+uint64(i)))
		}
	case c.fast != nil:
		for i := 0; i < n; i++ {
			c.fast.CBCDecrypt(dst[i*ss:(i+1)*ss], src[i*ss:(i+1)*ss], c.IV(firstSector+uint64(i)))
		}
	default:
		for i := 0; i < n; i++ {
			iv := c.IV(firstSector + uint64(i))
			cipher.NewCBCDecrypter(c.block, iv[:]).CryptBlocks(dst[i*ss:(i+1)*ss], src[i*ss:(i+1)*ss])
		}
	}
}

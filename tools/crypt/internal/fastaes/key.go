// Package fastaes holds multi-block AES kernels for dm-crypt's sector
// modes: XTS (tweaks computed in registers by GF(2^128) doubling, 8 blocks
// in flight), CBC encryption of 8 independent sectors at once (a CBC chain
// is sequential, but dm-crypt sectors are independent), and CBC decryption
// (8 blocks in flight within a sector).
//
// The kernels are assembly: on amd64 AES-NI (with 16-block VAES XTS
// kernels where the CPU has VAES), on arm64 the ARMv8 Crypto Extensions
// (AESE/AESMC/AESD/AESIMC; the same entry points, 8 blocks or 8 CBC
// sectors in flight, no VAES counterpart). [Available] reports whether
// this machine has the instructions (GODEBUG=cpu.aes=off turns them off).
// Elsewhere, or with the purego build tag, [Available] is false and every
// method panics: callers keep a generic path (crypto/aes,
// golang.org/x/crypto/xts) and choose with [Available]. The arm64 kernels
// are tested under user-mode QEMU (tests/suites/22-arm64.sh), which checks
// results, not speed.
//
// Buffers: dst and src must be the same length, a multiple of 16, and either
// identical or not overlapping. Misuse panics with a "fastaes: " message.
// A Key is read-only after NewKey and safe for concurrent use.
package fastaes

import (
	"errors"
	"strconv"
)

// Key is an expanded AES key: round keys in FIPS-197 byte order (what
// AES-NI and AESE load), for encryption and for the equivalent inverse
// cipher (AESDEC, AESD/AESIMC).
type Key struct {
	enc [240]byte
	dec [240]byte
	nr  int
}

// Rounds returns 10, 12 or 14.
func (k *Key) Rounds() int { return k.nr }

var sbox [256]byte

func gmul(a, b byte) byte {
	var p byte
	for b != 0 {
		if b&1 != 0 {
			p ^= a
		}
		hi := a & 0x80
		a <<= 1
		if hi != 0 {
			a ^= 0x1b
		}
		b >>= 1
	}
	return p
}

func init() {
	for x := 0; x < 256; x++ {
		// inverse in GF(2^8) as x^254 (0 maps to 0)
		inv := byte(0)
		if x != 0 {
			inv = 1
			base := byte(x)
			for e := 254; e > 0; e >>= 1 {
				if e&1 != 0 {
					inv = gmul(inv, base)
				}
				base = gmul(base, base)
			}
		}
		rotl := func(v byte, n uint) byte { return v<<n | v>>(8-n) }
		sbox[x] = inv ^ rotl(inv, 1) ^ rotl(inv, 2) ^ rotl(inv, 3) ^ rotl(inv, 4) ^ 0x63
	}
}

// NewKey expands a 16, 24 or 32-byte AES key.
func NewKey(key []byte) (*Key, error) {
	nk := len(key) / 4
	switch len(key) {
	case 16, 24, 32:
	default:
		return nil, errors.New("fastaes: invalid AES key size " + strconv.Itoa(len(key)))
	}
	k := &Key{nr: nk + 6}
	words := 4 * (k.nr + 1)
	w := k.enc[:4*words]
	copy(w, key)
	rcon := byte(1)
	for i := nk; i < words; i++ {
		var t [4]byte
		copy(t[:], w[4*(i-1):4*i])
		if i%nk == 0 {
			t = [4]byte{sbox[t[1]] ^ rcon, sbox[t[2]], sbox[t[3]], sbox[t[0]]}
			rcon = gmul(rcon, 2)
		} else if nk > 6 && i%nk == 4 {
			t = [4]byte{sbox[t[0]], sbox[t[1]], sbox[t[2]], sbox[t[3]]}
		}
		for j := 0; j < 4; j++ {
			w[4*i+j] = w[4*(i-nk)+j] ^ t[j]
		}
	}
	// Equivalent inverse cipher: reversed round keys, InvMixColumns on
	// all but the first and last.
	for r := 0; r <= k.nr; r++ {
		src := k.enc[16*(k.nr-r) : 16*(k.nr-r)+16]
		dst := k.dec[16*r : 16*r+16]
		if r == 0 || r == k.nr {
			copy(dst, src)
			continue
		}
		for c := 0; c < 4; c++ {
			a0, a1, a2, a3 := src[4*c], src[4*c+1], src[4*c+2], src[4*c+3]
			dst[4*c] = gmul(a0, 14) ^ gmul(a1, 11) ^ gmul(a2, 13) ^ gmul(a3, 9)
			dst[4*c+1] = gmul(a0, 9) ^ gmul(a1, 14) ^ gmul(a2, 11) ^ gmul(a3, 13)
			dst[4*c+2] = gmul(a0, 13) ^ gmul(a1, 9) ^ gmul(a2, 14) ^ gmul(a3, 11)
			dst[4*c+3] = gmul(a0, 11) ^ gmul(a1, 13) ^ gmul(a2, 9) ^ gmul(a3, 14)
		}
	}
	return k, nil
}

func check(dst, src []byte) {
	if len(src)%16 != 0 {
		panic("fastaes: input not a multiple of the block size")
	}
	if len(dst) < len(src) {
		panic("fastaes: output smaller than input")
	}
}

//go:build arm64 && !purego

package fastaes

import "golang.org/x/sys/cpu"

// Available reports whether the assembly kernels can run here (the ARMv8
// AES instructions; GODEBUG=cpu.aes=off turns them off).
var Available = cpu.ARM64.HasAES

// hasVAES is always false on arm64 (the VAES kernels are amd64 only).
var hasVAES = false

// VAES reports whether the YMM VAES kernels are in use: never on arm64.
func VAES() bool { return hasVAES }

//go:noescape
func encBlock(nr int, xk *byte, dst, src *byte)

//go:noescape
func ecbEnc(nr int, xk *byte, dst, src *byte, n int)

//go:noescape
func xtsEnc(nr int, xk *byte, dst, src *byte, n int, tweak *[16]byte)

//go:noescape
func xtsDec(nr int, dk *byte, dst, src *byte, n int, tweak *[16]byte)

//go:noescape
func cbcEnc1(nr int, xk *byte, dst, src *byte, n int, iv *[16]byte)

//go:noescape
func cbcEnc8(nr int, xk *byte, dst, src *byte, stride, n int, ivs *[8][16]byte)

//go:noescape
func cbcDec(nr int, dk *byte, dst, src *byte, n int, iv *[16]byte)

func mustAvail() {
	if !Available {
		panic("fastaes: ARMv8 AES instructions not available")
	}
}

// EncryptBlock encrypts one 16-byte block.
func (k *Key) EncryptBlock(dst, src *[16]byte) {
	mustAvail()
	encBlock(k.nr, &k.enc[0], &dst[0], &src[0])
}

// EncryptBlocks encrypts len(src)/16 independent blocks (ECB), 8 in
// flight; for batches of XTS tweaks or ESSIV IVs.
func (k *Key) EncryptBlocks(dst, src []byte) {
	mustAvail()
	check(dst, src)
	if len(src) == 0 {
		return
	}
	ecbEnc(k.nr, &k.enc[0], &dst[0], &src[0], len(src)/16)
}

// XTSEncrypt encrypts one XTS data unit whose first tweak (already
// encrypted with the tweak key) is tweak. k is the data key.
func (k *Key) XTSEncrypt(dst, src []byte, tweak [16]byte) {
	mustAvail()
	check(dst, src)
	if len(src) == 0 {
		return
	}
	xtsEnc(k.nr, &k.enc[0], &dst[0], &src[0], len(src)/16, &tweak)
}

// XTSDecrypt is the inverse of XTSEncrypt.
func (k *Key) XTSDecrypt(dst, src []byte, tweak [16]byte) {
	mustAvail()
	check(dst, src)
	if len(src) == 0 {
		return
	}
	xtsDec(k.nr, &k.dec[0], &dst[0], &src[0], len(src)/16, &tweak)
}

// CBCEncrypt encrypts one CBC chain starting from iv.
func (k *Key) CBCEncrypt(dst, src []byte, iv [16]byte) {
	mustAvail()
	check(dst, src)
	if len(src) == 0 {
		return
	}
	cbcEnc1(k.nr, &k.enc[0], &dst[0], &src[0], len(src)/16, &iv)
}

// CBCEncrypt8 encrypts 8 consecutive independent CBC chains of unit bytes
// each (src holds 8*unit bytes); chain i starts from ivs[i].
func (k *Key) CBCEncrypt8(dst, src []byte, unit int, ivs *[8][16]byte) {
	mustAvail()
	if unit <= 0 || unit%16 != 0 || len(src) != 8*unit {
		panic("fastaes: CBCEncrypt8 needs 8 units of a multiple of 16 bytes")
	}
	check(dst, src)
	cbcEnc8(k.nr, &k.enc[0], &dst[0], &src[0], unit, unit/16, ivs)
}

// CBCDecrypt decrypts one CBC chain starting from iv.
func (k *Key) CBCDecrypt(dst, src []byte, iv [16]byte) {
	mustAvail()
	check(dst, src)
	if len(src) == 0 {
		return
	}
	cbcDec(k.nr, &k.dec[0], &dst[0], &src[0], len(src)/16, &iv)
}

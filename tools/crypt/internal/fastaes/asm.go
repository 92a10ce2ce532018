//go:build (amd64 || arm64) && !purego

package fastaes

// The assembly kernels and the methods over them, shared by amd64 (AES-NI,
// and VAES for XTS) and arm64 (ARMv8 Crypto Extensions); each architecture's
// file says what Available, hasVAES and instructions are.

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
		panic("fastaes: " + instructions + " not available")
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
	n := len(src) / 16
	if n16 := n &^ 15; hasVAES && n16 > 0 {
		xtsEncVAES(k.nr, &k.enc[0], &dst[0], &src[0], n16, &tweak)
		if n == n16 {
			return
		}
		dst, src, n = dst[16*n16:], src[16*n16:], n-n16
	}
	xtsEnc(k.nr, &k.enc[0], &dst[0], &src[0], n, &tweak)
}

// XTSDecrypt is the inverse of XTSEncrypt.
func (k *Key) XTSDecrypt(dst, src []byte, tweak [16]byte) {
	mustAvail()
	check(dst, src)
	if len(src) == 0 {
		return
	}
	n := len(src) / 16
	if n16 := n &^ 15; hasVAES && n16 > 0 {
		xtsDecVAES(k.nr, &k.dec[0], &dst[0], &src[0], n16, &tweak)
		if n == n16 {
			return
		}
		dst, src, n = dst[16*n16:], src[16*n16:], n-n16
	}
	xtsDec(k.nr, &k.dec[0], &dst[0], &src[0], n, &tweak)
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

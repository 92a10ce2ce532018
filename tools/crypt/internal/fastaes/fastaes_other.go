//go:build (!amd64 && !arm64) || purego

package fastaes

// Available reports whether the assembly kernels can run here: never on
// this architecture or with the purego tag.
var Available = false

func unavailable() { panic("fastaes: not available on this platform") }

// EncryptBlock panics: see Available.
func (k *Key) EncryptBlock(dst, src *[16]byte) { unavailable() }

// EncryptBlocks panics: see Available.
func (k *Key) EncryptBlocks(dst, src []byte) { unavailable() }

// XTSEncrypt panics: see Available.
func (k *Key) XTSEncrypt(dst, src []byte, tweak [16]byte) { unavailable() }

// XTSDecrypt panics: see Available.
func (k *Key) XTSDecrypt(dst, src []byte, tweak [16]byte) { unavailable() }

// CBCEncrypt panics: see Available.
func (k *Key) CBCEncrypt(dst, src []byte, iv [16]byte) { unavailable() }

// CBCEncrypt8 panics: see Available.
func (k *Key) CBCEncrypt8(dst, src []byte, unit int, ivs *[8][16]byte) { unavailable() }

// CBCDecrypt panics: see Available.
func (k *Key) CBCDecrypt(dst, src []byte, iv [16]byte) { unavailable() }

// hasVAES is always false here.
var hasVAES = false

// VAES reports whether the YMM VAES kernels are in use: never here.
func VAES() bool { return hasVAES }

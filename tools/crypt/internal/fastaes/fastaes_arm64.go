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

// instructions names what Available checks, for the panic of a call
// without them.
const instructions = "ARMv8 AES instructions"

// xtsEncVAES and xtsDecVAES exist for asm.go only: hasVAES is false here,
// so they are never called.
func xtsEncVAES(nr int, xk *byte, dst, src *byte, n int, tweak *[16]byte) {
	panic("fastaes: no VAES on arm64")
}

func xtsDecVAES(nr int, dk *byte, dst, src *byte, n int, tweak *[16]byte) {
	panic("fastaes: no VAES on arm64")
}

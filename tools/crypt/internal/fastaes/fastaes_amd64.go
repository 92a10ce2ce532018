//go:build amd64 && !purego

package fastaes

import "golang.org/x/sys/cpu"

// Available reports whether the assembly kernels can run here (AES-NI).
var Available = cpu.X86.HasAES && cpu.X86.HasSSE41

// hasVAES enables the 16-blocks-in-flight YMM XTS kernels (VAES with AVX2
// encoding). x/sys/cpu reports the VAES bit only with AVX-512 OS support,
// so CPUs with VAES but no AVX-512 take the AES-NI path.
var hasVAES = Available && cpu.X86.HasAVX2 && cpu.X86.HasAVX512VAES

// VAES reports whether the YMM VAES kernels are in use.
func VAES() bool { return hasVAES }

//go:noescape
func xtsEncVAES(nr int, xk *byte, dst, src *byte, n int, tweak *[16]byte)

//go:noescape
func xtsDecVAES(nr int, dk *byte, dst, src *byte, n int, tweak *[16]byte)

// instructions names what Available checks, for the panic of a call
// without them.
const instructions = "AES-NI"

//go:build amd64 && !purego

package verity

import "golang.org/x/sys/cpu"

// block2 runs the SHA-256 compression function over n 64-byte blocks of two
// independent messages at pa and pb, updating the states a and b (SHA-NI,
// the two streams interleaved).
//
//go:noescape
func block2(a, b *[8]uint32, pa, pb *byte, n int)

// hasSHA reports the SHA extensions (CPUID.7.0:EBX[29]).
func hasSHA() bool

var useSHA2x = cpu.X86.HasAVX && cpu.X86.HasSSE41 && cpu.X86.HasSSSE3 && hasSHA()

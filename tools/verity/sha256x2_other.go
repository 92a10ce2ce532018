//go:build !amd64 || purego

package verity

var useSHA2x = false

func block2(a, b *[8]uint32, pa, pb *byte, n int) { panic("verity: block2 without SHA-NI") }

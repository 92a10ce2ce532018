package crypt

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrUnsupportedCipher is wrapped by every error for a cipher spec this
// package cannot build.
var ErrUnsupportedCipher = errors.New("unsupported cipher spec")

// ErrKeySize is wrapped by errors about a key of the wrong length.
var ErrKeySize = errors.New("wrong key size")

// Supported lists the cipher specs this package implements.
var Supported = []string{"aes-cbc-plain", "aes-cbc-plain64", "aes-cbc-essiv:sha256", "aes-xts-plain64"}

// maxSpecLen bounds the cipher spec string (the kernel's CRYPTO_MAX_ALG_NAME
// is 128).
const maxSpecLen = 128

// CipherSpec is a parsed dm-crypt cipher spec in the kernel's
// cipher-chainmode-ivmode[:ivopts] form.
type CipherSpec struct {
	Cipher string // "aes"
	Chain  string // "cbc" or "xts"
	IVMode string // "plain", "plain64" or "essiv"
	IVOpts string // hash for essiv ("sha256"), else ""
}

// String returns the spec as the kernel table spells it.
func (s CipherSpec) String() string {
	out := s.Cipher + "-" + s.Chain + "-" + s.IVMode
	if s.IVOpts != "" {
		out += ":" + s.IVOpts
	}
	return out
}

// KeySizes returns the key lengths in bytes the kernel accepts for s
// (AES-128, -192, -256; doubled for XTS).
func (s CipherSpec) KeySizes() []int {
	if s.Chain == "xts" {
		return []int{32, 48, 64}
	}
	return []int{16, 24, 32}
}

// quoteSpec renders untrusted input for an error message: bytes outside
// printable ASCII become '?', long input is truncated, and the result is
// quoted, so the message stays one short line.
func quoteSpec(s string) string {
	const max = 64
	b := []byte(s)
	suffix := ""
	if len(b) > max {
		b, suffix = b[:max], "..."
	}
	for i, c := range b {
		if c < ' ' || c >= 0x7f {
			b[i] = '?'
		}
	}
	return strconv.Quote(string(b)) + suffix
}

// ParseCipher parses a dm-crypt cipher spec. It accepts exactly the specs in
// [Supported] and returns an error wrapping [ErrUnsupportedCipher], naming the
// spec, for anything else (including capi: specs, key counts such as
// "aes:2-...", other IV modes and upper case).
func ParseCipher(s string) (CipherSpec, error) {
	fail := func(why string) (CipherSpec, error) {
		return CipherSpec{}, fmt.Errorf("%w %s: %s (supported: %s)", ErrUnsupportedCipher, quoteSpec(s), why, strings.Join(Supported, ", "))
	}
	if s == "" {
		return fail("empty")
	}
	if len(s) > maxSpecLen {
		return fail(fmt.Sprintf("longer than %d bytes", maxSpecLen))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f {
			return fail("contains a space, control or non-ASCII character")
		}
	}
	if strings.HasPrefix(s, "capi:") {
		return fail("capi: specs are not handled by plain dm-crypt images")
	}
	parts := strings.Split(s, "-")
	if len(parts) != 3 {
		return fail("want cipher-chainmode-ivmode")
	}
	spec := CipherSpec{Cipher: parts[0], Chain: parts[1], IVMode: parts[2]}
	if i := strings.IndexByte(spec.IVMode, ':'); i >= 0 {
		spec.IVMode, spec.IVOpts = spec.IVMode[:i], spec.IVMode[i+1:]
	}
	if spec.Cipher != "aes" {
		return fail("cipher must be aes")
	}
	switch spec.Chain {
	case "cbc":
		switch {
		case (spec.IVMode == "plain" || spec.IVMode == "plain64") && spec.IVOpts == "" && !strings.Contains(parts[2], ":"):
		case spec.IVMode == "essiv" && spec.IVOpts == "sha256":
		default:
			return fail("cbc needs IV mode plain, plain64 or essiv:sha256")
		}
	case "xts":
		if spec.IVMode != "plain64" || strings.Contains(parts[2], ":") {
			return fail("xts needs IV mode plain64")
		}
	default:
		return fail("chain mode must be cbc or xts")
	}
	return spec, nil
}

// KeySizes returns the key lengths in bytes accepted for the cipher spec s.
func KeySizes(s string) ([]int, error) {
	spec, err := ParseCipher(s)
	if err != nil {
		return nil, err
	}
	return spec.KeySizes(), nil
}

// checkKeySize returns an error naming the expected sizes (never the key).
func checkKeySize(spec CipherSpec, n int) error {
	sizes := spec.KeySizes()
	for _, k := range sizes {
		if n == k {
			return nil
		}
	}
	what := "AES-128/192/256"
	if spec.Chain == "xts" {
		what = "two AES-128/192/256 keys"
	}
	return fmt.Errorf("%w: %s takes a key of %d, %d or %d bytes (%s), got %d bytes",
		ErrKeySize, spec, sizes[0], sizes[1], sizes[2], what, n)
}

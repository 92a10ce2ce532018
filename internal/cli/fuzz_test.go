package cli

import (
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseSize: every CLI size/count argument goes through ParseSize. It
// accepts exactly the non-negative int64 decimals, and its errors are usage
// errors of one line.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "4096", "9223372036854775807", "9223372036854775808",
		"-1", "18446744073709551616", "0x10", "1e3", " 1", "+5", "", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseSize("--size", s)
		want, werr := strconv.ParseInt(s, 10, 64)
		if werr != nil || want < 0 {
			if err == nil {
				t.Fatalf("ParseSize(%q) = %d, want an error", s, v)
			}
			if !IsUsage(err) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("ParseSize(%q): %v is not a one-line usage error", s, err)
			}
			return
		}
		if err != nil || v != want {
			t.Fatalf("ParseSize(%q) = %d, %v; want %d", s, v, err, want)
		}
	})
}

// FuzzKeyHex: --key-hex decoding never panics, accepts exactly non-empty hex
// (surrounding white space ignored), and never echoes the text in its error.
func FuzzKeyHex(f *testing.F) {
	for _, s := range []string{"00", "0011223344556677889900aabbccddeeff", "zz", "0", " 00 ", "", "\n", "00\n11"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k := KeyFlags{Hex: s}
		b, err := k.Load(true)
		want, werr := hex.DecodeString(strings.TrimSpace(s))
		if werr != nil || len(want) == 0 {
			if err == nil {
				t.Fatalf("Load(%q) accepted %x", s, b)
			}
			if !IsUsage(err) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Load(%q): %v is not a one-line usage error", s, err)
			}
			if ts := strings.TrimSpace(s); len(ts) >= 32 && strings.Contains(err.Error(), ts) {
				t.Fatalf("error %q echoes the key text", err)
			}
			return
		}
		if err != nil || string(b) != string(want) {
			t.Fatalf("Load(%q) = %x, %v; want %x", s, b, err, want)
		}
	})
}

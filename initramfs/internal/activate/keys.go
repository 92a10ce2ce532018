package activate

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/rules-dm/rules_dm/internal/cli"
)

// loadKey returns the key bytes of src. Messages name the variable, never
// the key.
func loadKey(src KeySource) ([]byte, error) {
	switch {
	case src.Hex != "":
		s := src.Hex // no trimming: the same value apply_manifest.sh accepts
		if len(s)%2 != 0 {
			return nil, fmt.Errorf("%s_HEX: odd number of hex digits (%d)", src.Name, len(s))
		}
		// Decoded straight from the string: no unwipeable copy of the hex.
		b := make([]byte, len(s)/2)
		for i := range b {
			hi, ok1 := unhex(s[2*i])
			lo, ok2 := unhex(s[2*i+1])
			if !ok1 || !ok2 {
				wipe(b)
				return nil, fmt.Errorf("%s_HEX: not a hex string (%d characters)", src.Name, len(s))
			}
			b[i] = hi<<4 | lo
		}
		return b, nil
	case src.File != "":
		b, err := readKeyFile(src.File)
		if err != nil {
			return nil, fmt.Errorf("%s_BIN: %w", src.Name, err)
		}
		return b, nil
	}
	return nil, errors.New(src.Name + ": no key given")
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// wipe zeroes key material that is no longer needed.
func wipe(b []byte) { cli.Wipe(b) }

// expand replaces @KEY@ and @IKEY@ in a table into a fresh byte slice that
// the caller must wipe: keyRef (a keyring reference) or, when keyRef is empty,
// the hex of ckey for @KEY@; the hex of ikey for @IKEY@.
func expand(table, keyRef string, ckey, ikey []byte) ([]byte, error) {
	out := make([]byte, 0, len(table)+2*len(ckey)+2*len(ikey))
	rest := table
	for {
		i := strings.IndexByte(rest, '@')
		if i < 0 {
			return append(out, rest...), nil
		}
		out = append(out, rest[:i]...)
		rest = rest[i:]
		switch {
		case strings.HasPrefix(rest, "@KEY@"):
			if keyRef != "" {
				out = append(out, keyRef...)
			} else if ckey != nil {
				out = appendHex(out, ckey)
			} else {
				wipe(out)
				return nil, errors.New("table needs the crypt key")
			}
			rest = rest[len("@KEY@"):]
		case strings.HasPrefix(rest, "@IKEY@"):
			if ikey == nil {
				wipe(out)
				return nil, errors.New("table needs the integrity key")
			}
			out = appendHex(out, ikey)
			rest = rest[len("@IKEY@"):]
		default:
			out = append(out, '@')
			rest = rest[1:]
		}
	}
}

// appendHex appends lowercase hex without an intermediate string (that
// could not be wiped). It never reallocates when cap suffices; the caller
// sized out for that.
func appendHex(out, b []byte) []byte {
	n := len(out)
	if cap(out)-n < 2*len(b) {
		grown := make([]byte, n, n+2*len(b)+64)
		copy(grown, out)
		wipe(out)
		out = grown
	}
	out = out[:n+2*len(b)]
	hex.Encode(out[n:], b)
	return out
}

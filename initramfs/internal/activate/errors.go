package activate

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/rules-dm/rules_dm/initramfs/internal/keyring"
)

// tools/internal/cli is internal to tools/, so the few conventions we need
// (usage errors, key files) are repeated here, with the same behaviour.

// UsageError marks a bad invocation or environment; the command exits 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Usagef returns a *UsageError.
func Usagef(format string, a ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, a...)}
}

// IsUsage reports whether err is (or wraps) a *UsageError.
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}

func oneOf(name, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return Usagef("unknown %s %q (want one of: %s)", name, v, strings.Join(allowed, ", "))
}

// maxKeyFile bounds a key file: no dm key is longer.
const maxKeyFile = 1024

// readKeyFile reads raw key bytes (at most maxKeyFile) from a regular file,
// pipe or character device.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	m := st.Mode()
	if !m.IsRegular() && m&os.ModeNamedPipe == 0 && m&os.ModeCharDevice == 0 {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	b := make([]byte, maxKeyFile+1)
	n, err := io.ReadFull(f, b)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		wipe(b)
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if n > maxKeyFile {
		wipe(b)
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxKeyFile)
	}
	if n == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	key := make([]byte, n)
	copy(key, b)
	wipe(b)
	return key, nil
}

// readSig reads a root hash signature file: a few hundred bytes of DER, at
// most keyring.MaxUserPayload (what a "user" key holds).
func readSig(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, keyring.MaxUserPayload+1))
	if err != nil {
		return nil, err
	}
	switch {
	case len(b) == 0:
		return nil, errors.New("empty file")
	case len(b) > keyring.MaxUserPayload:
		return nil, fmt.Errorf("larger than %d bytes", keyring.MaxUserPayload)
	}
	return b, nil
}

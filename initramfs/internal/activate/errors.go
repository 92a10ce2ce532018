package activate

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/rules-dm/rules_dm/initramfs/internal/keyring"
	"github.com/rules-dm/rules_dm/internal/cli"
)

// The usage conventions are the tools' (internal/cli): exit 2 on a bad
// invocation or environment.

// Usagef returns a usage error (the command exits 2).
func Usagef(format string, a ...any) error { return cli.Usagef(format, a...) }

// IsUsage reports whether err is (or wraps) a usage error.
func IsUsage(err error) bool { return cli.IsUsage(err) }

func oneOf(name, v string, allowed ...string) error { return cli.OneOf(name, v, allowed...) }

// readKeyFile reads raw key bytes (at most cli.MaxKeyFile) from a regular
// file, pipe or character device.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return cli.ReadSecret(f, path, cli.MaxKeyFile)
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

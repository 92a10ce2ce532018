package cli

import (
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// KeyFlags are the --key-file / --key-hex pair of every command that takes a
// key. Key bytes never appear in an error message.
type KeyFlags struct {
	File string
	Hex  string
	// Prefix is put in front of the flag names ("" for --key-file,
	// "hmac-" for --hmac-key-file, ...).
	Prefix string
}

// Register adds the flags to fs.
func (k *KeyFlags) Register(fs *flag.FlagSet, what string) {
	fs.StringVar(&k.File, k.Prefix+"key-file", "", "file holding the raw "+what+" key bytes")
	fs.StringVar(&k.Hex, k.Prefix+"key-hex", "", what+" key as hex (interactive use; prefer --"+k.Prefix+"key-file)")
}

// Given reports whether either flag was set.
func (k *KeyFlags) Given() bool { return k.File != "" || k.Hex != "" }

// Load returns the key. It fails with a usage error when both or (if
// required) neither flag is given, or when the hex is malformed. It warns on
// stderr when the key file is readable by group or others.
func (k *KeyFlags) Load(required bool) ([]byte, error) {
	switch {
	case k.File != "" && k.Hex != "":
		return nil, Usagef("--%skey-file and --%skey-hex are mutually exclusive", k.Prefix, k.Prefix)
	case k.Hex != "":
		s := strings.TrimSpace(k.Hex)
		b, err := hex.DecodeString(s)
		if err != nil || len(s) == 0 {
			return nil, Usagef("--%skey-hex: not a hex string (%d characters)", k.Prefix, len(s))
		}
		return b, nil
	case k.File != "":
		return ReadKeyFile(k.File)
	case required:
		return nil, Usagef("a key is required: give --%skey-file FILE or --%skey-hex HEX", k.Prefix, k.Prefix)
	}
	return nil, nil
}

// MaxKeyFile bounds what ReadKeyFile reads: no dm key is longer.
const MaxKeyFile = 1024

// ReadKeyFile reads raw key bytes from path (at most MaxKeyFile).
func ReadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil {
		if !st.Mode().IsRegular() && st.Mode()&os.ModeNamedPipe == 0 && st.Mode()&os.ModeCharDevice == 0 {
			return nil, fmt.Errorf("key file %s: not a regular file", path)
		}
		if st.Mode().IsRegular() && st.Mode().Perm()&0o077 != 0 {
			fmt.Fprintf(os.Stderr, "warning: key file %s is readable by group or others (mode %04o)\n", path, st.Mode().Perm())
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("key file %s is empty", path)
	}
	if len(b) > MaxKeyFile {
		return nil, fmt.Errorf("key file %s is larger than %d bytes", path, MaxKeyFile)
	}
	return b, nil
}

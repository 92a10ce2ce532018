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

// ReadKeyFile reads raw key bytes from path (at most MaxKeyFile). It warns
// on stderr when the file is readable by group or others.
func ReadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(os.Stderr, "warning: key file %s is readable by group or others (mode %04o)\n", path, st.Mode().Perm())
	}
	b, err := ReadSecret(f, path, MaxKeyFile)
	if err != nil {
		return nil, fmt.Errorf("key file %w", err)
	}
	return b, nil
}

// ReadSecret reads 1..max bytes of key material from f (a regular file,
// pipe or character device) named name. Buffers it used are wiped before it
// returns; errors start with name and never hold the bytes.
func ReadSecret(f *os.File, name string, max int) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if m := st.Mode(); !m.IsRegular() && m&os.ModeNamedPipe == 0 && m&os.ModeCharDevice == 0 {
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	b := make([]byte, max+1)
	defer Wipe(b)
	n, err := io.ReadFull(f, b)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	switch {
	case n == 0:
		return nil, fmt.Errorf("%s is empty", name)
	case n > max:
		return nil, fmt.Errorf("%s is larger than %d bytes", name, max)
	}
	return append([]byte(nil), b[:n]...), nil
}

// Wipe zeroes b (key material that is no longer needed).
func Wipe(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

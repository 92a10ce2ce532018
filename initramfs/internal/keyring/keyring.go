// Package keyring loads dm-crypt keys into the kernel keyring with add_key(2),
// so that a table can name a key (":<size>:logon:<desc>") instead of holding it,
// and dm-verity root hash signatures, which a verity table names with
// root_hash_sig_key_desc.
//
// Keys go into the user keyring (@u): an initramfs's PID 1 has no session
// keyring, and a per-process one would vanish with the process. Crypt keys
// are of type "logon": their payload can be used by the kernel but never read
// back from user space. Signatures are of type "user": dm-verity looks them up
// with request_key(&key_type_user, desc), and they are not secret.
package keyring

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// ValidDesc checks a logon (or user) key description: "<prefix>:<name>" with a
// non-empty prefix (the kernel refuses logon keys without one), printable,
// no blanks (a table word cannot hold one).
func ValidDesc(desc string) error {
	prefix, rest, ok := strings.Cut(desc, ":")
	if !ok || prefix == "" || rest == "" {
		return fmt.Errorf("logon key description %q: want <prefix>:<name>", desc)
	}
	if len(desc) > 4095 {
		return fmt.Errorf("logon key description too long (%d bytes)", len(desc))
	}
	for _, c := range []byte(desc) {
		if c <= ' ' || c >= 0x7f {
			return fmt.Errorf("logon key description %q: invalid character", desc)
		}
	}
	return nil
}

// Ref is the dm-crypt table reference of a logon key of size bytes.
func Ref(size int, desc string) string {
	return fmt.Sprintf(":%d:logon:%s", size, desc)
}

// addKey is add_key(2) (replaced in tests).
var addKey = unix.AddKey

// AddLogon adds (or updates) the logon key desc with payload in the user
// keyring and returns its table reference and serial number. The payload is
// not kept; errors never contain it.
func AddLogon(desc string, payload []byte) (ref string, id int, err error) {
	if err := ValidDesc(desc); err != nil {
		return "", 0, err
	}
	if len(payload) == 0 {
		return "", 0, errors.New("empty key")
	}
	id, err = addKey("logon", desc, payload, unix.KEY_SPEC_USER_KEYRING)
	if err != nil {
		return "", 0, fmt.Errorf("add_key logon %s to @u: %w", desc, err)
	}
	return Ref(len(payload), desc), id, nil
}

// MaxUserPayload is the largest payload the kernel's "user" key type takes.
const MaxUserPayload = 32767

// AddUser adds (or updates) the "user" key desc with payload in the user
// keyring (keyctl padd user DESC @u) and returns its serial number: how a
// dm-verity root hash signature is handed to the kernel.
func AddUser(desc string, payload []byte) (id int, err error) {
	if err := ValidDesc(desc); err != nil {
		return 0, err
	}
	if len(payload) == 0 || len(payload) > MaxUserPayload {
		return 0, fmt.Errorf("user key %s: payload of %d bytes (want 1..%d)", desc, len(payload), MaxUserPayload)
	}
	id, err = addKey("user", desc, payload, unix.KEY_SPEC_USER_KEYRING)
	if err != nil {
		return 0, fmt.Errorf("add_key user %s to @u: %w", desc, err)
	}
	return id, nil
}

// Unavailable reports whether err from AddLogon means the kernel has no
// keyring support (then a table must carry the key in hex).
func Unavailable(err error) bool {
	return errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP)
}

// Unlink removes key id from the user keyring (keyctl unlink ID @u). A
// dm-crypt table keeps its own copy of the key once loaded, so the key is
// unlinked as soon as the tables hold it (and the kernel then frees it).
func Unlink(id int) error {
	if id <= 0 {
		return nil
	}
	if _, err := unix.KeyctlInt(unix.KEYCTL_UNLINK, id, unix.KEY_SPEC_USER_KEYRING, 0, 0); err != nil {
		return fmt.Errorf("keyctl unlink %d @u: %w", id, err)
	}
	return nil
}

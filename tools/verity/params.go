package verity

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// Limits and defaults (veritysetup's compiled-in defaults).
const (
	MinBlockSize       = 512
	MaxBlockSize       = 4096
	MaxSaltSize        = 256
	DefaultSaltSize    = 32
	DefaultHash        = "sha256"
	DefaultBlockSize   = 4096
	DefaultVersion     = 1
	SuperblockSize     = 512
	superblockAlign    = 512
	maxDigestSize      = sha512.Size
	superblockMagic    = "verity\x00\x00"
	superblockVersion  = 1
	superblockAlgoSize = 32
)

// Sentinel errors. Every error the package returns for bad parameters or bad
// input wraps one of them (test with errors.Is).
var (
	ErrBadBlockSize = errors.New("verity: bad block size")
	ErrDataSize     = errors.New("verity: bad data size")
	ErrHash         = errors.New("verity: unsupported hash algorithm")
	ErrSalt         = errors.New("verity: bad salt")
	ErrVersion      = errors.New("verity: unsupported format version")
	ErrHashOffset   = errors.New("verity: bad hash offset")
	ErrUUID         = errors.New("verity: bad UUID")
	ErrSuperblock   = errors.New("verity: bad superblock")
	ErrRootHash     = errors.New("verity: bad root hash")
	// ErrCorrupt is wrapped by every *CorruptionError.
	ErrCorrupt = errors.New("verity: corruption")
)

// Params are the dm-verity parameters, mirroring veritysetup's options.
type Params struct {
	// Version is the hash format: 1 (normal, H(salt||block)) or 0 (Chrome OS,
	// H(block||salt), packed digests). The kernel table's <version>.
	Version int
	// Hash is the digest algorithm: "sha1", "sha256" or "sha512".
	Hash string
	// DataBlockSize and HashBlockSize are in bytes: powers of two, 512..4096.
	DataBlockSize int
	HashBlockSize int
	// Salt is hashed with every block; empty means none. At most 256 bytes.
	Salt []byte
	// UUID is stored in the superblock (ignored without one).
	UUID [16]byte
	// Superblock asks for the 512-byte veritysetup superblock at the hash
	// offset; the tree then starts at the next hash block boundary.
	Superblock bool
}

// DefaultParams returns veritysetup's defaults (sha256, 4096/4096, version
// 1, superblock) with no salt and a zero UUID: set them, for example with
// DeriveSalt and DeriveUUID.
func DefaultParams() Params {
	return Params{
		Version:       DefaultVersion,
		Hash:          DefaultHash,
		DataBlockSize: DefaultBlockSize,
		HashBlockSize: DefaultBlockSize,
		Superblock:    true,
	}
}

// newHash returns a constructor and digest size for a hash name.
func newHash(name string) (func() hash.Hash, int, error) {
	switch name {
	case "sha1":
		return sha1.New, sha1.Size, nil
	case "sha256":
		return sha256.New, sha256.Size, nil
	case "sha512":
		return sha512.New, sha512.Size, nil
	}
	return nil, 0, fmt.Errorf("%w %q (want sha1, sha256 or sha512)", ErrHash, name)
}

// DigestSize returns the digest size of a supported hash algorithm.
func DigestSize(hashName string) (int, error) {
	_, n, err := newHash(hashName)
	return n, err
}

func checkBlockSize(what string, n int) error {
	if n < MinBlockSize || n > MaxBlockSize || n&(n-1) != 0 {
		return fmt.Errorf("%w: %s %d (want a power of two from %d to %d)",
			ErrBadBlockSize, what, n, MinBlockSize, MaxBlockSize)
	}
	return nil
}

// Validate checks p against the package limits.
func (p *Params) Validate() error {
	if p.Version != 0 && p.Version != 1 {
		return fmt.Errorf("%w %d (want 1, or 0 for Chrome OS)", ErrVersion, p.Version)
	}
	if _, _, err := newHash(p.Hash); err != nil {
		return err
	}
	if err := checkBlockSize("data block size", p.DataBlockSize); err != nil {
		return err
	}
	if err := checkBlockSize("hash block size", p.HashBlockSize); err != nil {
		return err
	}
	if len(p.Salt) > MaxSaltSize {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrSalt, len(p.Salt), MaxSaltSize)
	}
	return nil
}

// ParseSalt parses a hex salt; "-" (and "") mean no salt.
func ParseSalt(s string) ([]byte, error) {
	if s == "-" || s == "" {
		return []byte{}, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: not hex (%d characters; want an even number of 0-9a-f, or -)", ErrSalt, len(s))
	}
	if len(b) > MaxSaltSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrSalt, len(b), MaxSaltSize)
	}
	return b, nil
}

// SaltString formats a salt as the kernel table and veritysetup show it:
// lowercase hex, or "-" when empty.
func SaltString(salt []byte) string {
	if len(salt) == 0 {
		return "-"
	}
	return hex.EncodeToString(salt)
}

// ParseUUID parses the canonical 8-4-4-4-12 hex form.
func ParseUUID(s string) ([16]byte, error) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, fmt.Errorf("%w %q (want xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", ErrUUID, s)
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if _, err := hex.Decode(u[:], []byte(h)); err != nil {
		return u, fmt.Errorf("%w %q (want xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", ErrUUID, s)
	}
	return u, nil
}

// FormatUUID formats a UUID in the canonical lowercase 8-4-4-4-12 form.
func FormatUUID(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func canon(p Params) string {
	sb := 0
	if p.Superblock {
		sb = 1
	}
	return fmt.Sprintf("v%d %s %d %d sb=%d\x00", p.Version, strings.ToLower(p.Hash),
		p.DataBlockSize, p.HashBlockSize, sb)
}

// DeriveSalt returns the 32-byte salt derived from seed and p (p.Salt and
// p.UUID are ignored). See the package documentation for the formula.
func DeriveSalt(seed string, p Params) []byte {
	h := sha256.New()
	h.Write([]byte("rules_dm/verity/salt/v1\x00"))
	h.Write([]byte(canon(p)))
	h.Write([]byte(seed))
	return h.Sum(nil)[:DefaultSaltSize]
}

// DeriveUUID returns the UUID derived from seed, p and the salt actually used
// (p.Salt and p.UUID are ignored), with RFC 4122 version-4/variant bits.
func DeriveUUID(seed string, p Params, salt []byte) [16]byte {
	h := sha256.New()
	h.Write([]byte("rules_dm/verity/uuid/v1\x00"))
	h.Write([]byte(canon(p)))
	var n [2]byte
	binary.LittleEndian.PutUint16(n[:], uint16(len(salt)))
	h.Write(n[:])
	h.Write(salt)
	h.Write([]byte(seed))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// Package compose builds a whole rules_dm stack offline (dm-compose build):
// it runs the layer libraries (tools/crypt, tools/verity, tools/integrity) in
// the order of the stack table of the design and writes data.img, the
// metadata image when the stack has one, manifest.json and manifest.env.
//
// Defaults (documented in spec/manifest.md, "dm-compose defaults"):
//   - verity: sha256, format 1, superblock, tree appended to data.img at the
//     first 4096-byte boundary after the data (hash_offset), or at offset 0 of
//     verity.hash.img with HashOnMeta (not for crypt-then-verity: the tree is
//     plaintext-derived and must stay under the encryption).
//   - verity FEC (--verity-fec-roots N): Reed-Solomon parity right after the
//     tree on the hash device (block aligned), as veritysetup --fec-device
//     with the parity on the hash device; table opts use_fec_from_device.
//   - integrity: crc32c, mode J, separate layout (tags on
//     integrity.meta.img), fix_hmac with a derived salt.
//   - profile aead (integrity-then-crypt): dm-integrity in hash-none mode on DATA_DEV
//     with the [auth tag | IV] entries on integrity.meta.img, then dm-crypt
//     capi:gcm(aes)-random (or authenc(hmac(sha256),xts(aes))) with
//     integrity:<tag>:aead on it.
//   - crypt: aes-xts-plain64; sector size 4096 when the image allows it
//     (size a multiple of 4096 and, for ext4, a block size of 4096), else 512.
//   - block sizes of verity/integrity follow the same rule (a mapped device
//     whose logical block size is larger than the filesystem block cannot be
//     mounted).
//   - seed: "<stack>:<sha256 of the input>" unless given; every salt and UUID
//     is derived from it, so the same inputs give byte-identical outputs.
package compose

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rules-dm/rules_dm/internal/cli"
	"github.com/rules-dm/rules_dm/tools/crypt"
	"github.com/rules-dm/rules_dm/tools/integrity"
	"github.com/rules-dm/rules_dm/tools/manifest"
	"github.com/rules-dm/rules_dm/tools/verity"
)

// File names of the outdir (spec/manifest.md).
const (
	DataFile      = "data.img"
	IntegrityMeta = "integrity.meta.img"
	VerityHash    = "verity.hash.img"
	VeritySig     = "verity.roothash.p7s"
	ManifestJSON  = "manifest.json"
	ManifestEnv   = "manifest.env"
)

// Options are the dm-compose build inputs. Zero values mean "default".
type Options struct {
	In, OutDir, Stack, Profile string
	Key                        []byte
	Name                       string
	Cipher                     string
	SectorSize                 int
	IVLargeSectors             bool
	VerityHash                 string
	VerityDataBlockSize        int
	VerityHashBlockSize        int
	Salt                       string // verity salt: "" derived, "-" none, else hex
	HashOnMeta                 bool
	VerityFECRoots             int // 0: no FEC; 2..24: Reed-Solomon parity after the tree
	IntegrityHash              string
	IntegrityKey               []byte // hmac-sha256 key (--integrity-key-file)
	IntegrityBlockSize         int
	IntegrityLayout            string
	Seed                       string
	MountFSType                string // "" = auto (ext4 if the input is ext4)
	NewRoot                    string
	MountOpts                  *string // nil = default ("ro" for verity stacks)
	Force                      bool
	Log                        io.Writer // notes and warnings (stderr)

	// Progress, when set, is called as each long pass of Build starts
	// (hashing the input, copying or encrypting it, the verity tree and
	// FEC, the integrity tags, hashing an image back) with a short name of
	// the pass and the bytes it covers. The func it returns, when not nil,
	// is then told how many of those bytes are done: possibly from several
	// goroutines at once and out of order (keep the highest value), and
	// holes skipped count as done; it must be cheap. A pass ends when the
	// next one starts or Build returns.
	Progress func(pass string, total int64) func(done int64)

	// VeritySignKey/VeritySignCert: PEM RSA key and X.509 certificate; when
	// set, verity.roothash.p7s (detached PKCS#7 over the hex root hash) is
	// written and the verity layer carries root_hash_sig_key_desc.
	VeritySignKey, VeritySignCert string
	// Boot: how boot/* name the target's devices and key files.
	Boot BootDevs
}

// UsageError marks a bad option (the CLI exits 2 on it).
type UsageError = cli.UsageError

var usagef = cli.Usagef

// stack describes a stack: its layers bottom-up.
var stackLayers = map[string][]string{
	manifest.StackCryptOnly:          {"crypt"},
	manifest.StackIntegrityOnly:      {"integrity"},
	manifest.StackIntegrityThenCrypt: {"integrity", "crypt"},
	manifest.StackCryptThenIntegrity: {"crypt", "integrity"},
	manifest.StackVerityOnly:         {"verity"},
	manifest.StackVerityThenCrypt:    {"verity", "crypt"},
	manifest.StackCryptThenVerity:    {"crypt", "verity"},
}

// HasCrypt reports whether a stack has a crypt layer.
func HasCrypt(stack string) bool {
	for _, t := range stackLayers[stack] {
		if t == "crypt" {
			return true
		}
	}
	return false
}

func has(stack, target string) bool {
	for _, t := range stackLayers[stack] {
		if t == target {
			return true
		}
	}
	return false
}

// Ext4BlockSize reads the ext4 superblock at byte 1024 and returns the block
// size, or 0 when the image is not ext2/3/4.
func Ext4BlockSize(r io.ReaderAt) int {
	var sb [0x3A]byte
	if _, err := r.ReadAt(sb[:], 1024); err != nil {
		return 0
	}
	if binary.LittleEndian.Uint16(sb[0x38:]) != 0xEF53 {
		return 0
	}
	l := binary.LittleEndian.Uint32(sb[0x18:])
	if l > 6 {
		return 0
	}
	return 1024 << l
}

// plan is a checked Options with every default filled.
type plan struct {
	Options
	size    int64
	fsBlock int // ext4 block size or 0
	vp      verity.Params
	ip      integrity.Params
	cipher  *crypt.Cipher
	aead    *crypt.AEAD
	signer  *Signer
	notes   []string
}

func (p *plan) note(format string, a ...any) { p.notes = append(p.notes, fmt.Sprintf(format, a...)) }

// mountable is the largest logical block size the filesystem tolerates.
func (p *plan) mountable() int {
	switch {
	case p.fsBlock >= 4096:
		return 4096
	case p.fsBlock > 0:
		return p.fsBlock
	}
	return 4096
}

func (p *plan) check() error {
	o := &p.Options
	if o.In == "" {
		return usagef("--in FILE is required")
	}
	if o.OutDir == "" {
		return usagef("--outdir DIR is required")
	}
	if o.Stack == "" {
		return usagef("--stack is required (one of: %s)", strings.Join(manifest.Stacks, ", "))
	}
	if _, ok := stackLayers[o.Stack]; !ok {
		return usagef("unknown stack %q (want one of: %s)", o.Stack, strings.Join(manifest.Stacks, ", "))
	}
	if o.Profile == "" {
		o.Profile = manifest.ProfilePlainCrypt
	}
	if err := cli.OneOf("profile", o.Profile, manifest.Profiles...); err != nil {
		return err
	}
	if o.Profile == manifest.ProfileAEAD && o.Stack != manifest.StackIntegrityThenCrypt {
		return usagef("--profile aead builds --stack integrity-then-crypt (dm-integrity in hash-none mode under authenticated dm-crypt); %s with aead is not a stack: use --stack integrity-then-crypt --profile aead", o.Stack)
	}
	aead := o.Profile == manifest.ProfileAEAD
	if aead && (o.IntegrityHash != "" || o.IntegrityBlockSize != 0 || o.IntegrityLayout != "" || len(o.IntegrityKey) != 0) {
		return usagef("--integrity-* options do not apply to --profile aead: the integrity layer holds the AEAD tags (hash none, separate layout, block size = --sector-size)")
	}
	if o.Name == "" {
		o.Name = "dmroot"
	}
	if !manifest.ValidName(o.Name) {
		return usagef("--name %q: want 1-64 characters of A-Za-z0-9_.+-", o.Name)
	}
	// lower layers are named <name>-<target>: those must be valid names too
	if lower := manifest.LayerName(o.Name, "integrity", false); !strings.HasSuffix(o.Stack, "-only") && !manifest.ValidName(lower) {
		return usagef("--name %q: %d characters is too long for a stack (its lower layers are named %s-<target>; at most %d)", o.Name, len(o.Name), o.Name, 64-len("-integrity"))
	}
	hasCrypt := HasCrypt(o.Stack)
	if hasCrypt && len(o.Key) == 0 {
		return usagef("stack %s has a crypt layer: give --key-file FILE or --key-hex HEX", o.Stack)
	}
	if !hasCrypt && len(o.Key) != 0 {
		return usagef("stack %s has no crypt layer: do not give a key", o.Stack)
	}
	if !hasCrypt && (o.Cipher != "" || o.SectorSize != 0 || o.IVLargeSectors) {
		return usagef("--cipher/--sector-size/--iv-large-sectors need a stack with a crypt layer")
	}
	if !has(o.Stack, "verity") && (o.VerityHash != "" || o.VerityDataBlockSize != 0 || o.VerityHashBlockSize != 0 || o.Salt != "" || o.HashOnMeta || o.VerityFECRoots != 0) {
		return usagef("--verity-*/--salt/--hash-on-meta need a stack with a verity layer")
	}
	if !has(o.Stack, "integrity") && (o.IntegrityHash != "" || o.IntegrityBlockSize != 0 || o.IntegrityLayout != "" || len(o.IntegrityKey) != 0) {
		return usagef("--integrity-* options need a stack with an integrity layer")
	}
	if o.HashOnMeta && o.Stack == manifest.StackCryptThenVerity {
		return usagef("--hash-on-meta is refused for crypt-then-verity: the tree is computed over the plaintext and would sit unencrypted on META_DEV; it stays appended inside the encrypted data.img")
	}
	if (o.VeritySignKey == "") != (o.VeritySignCert == "") {
		return usagef("--verity-sign-key and --verity-sign-cert go together")
	}
	if o.VeritySignKey != "" && !has(o.Stack, "verity") {
		return usagef("--verity-sign-key/--verity-sign-cert need a stack with a verity layer")
	}
	for _, s := range []string{o.Boot.Data, o.Boot.Meta} {
		if s != "" && !ValidBootDev(s) {
			return usagef("boot device %q: want an absolute path, PARTUUID=/PARTLABEL=/UUID=/LABEL=<id> or major:minor (no blanks, commas or ;)", s)
		}
	}
	if o.Boot.KeyDir != "" && (!reKeyDir.MatchString(o.Boot.KeyDir) || strings.Contains(o.Boot.KeyDir, "..")) {
		return usagef("--boot-key-dir %q: want an absolute path of A-Za-z0-9_.+- components", o.Boot.KeyDir)
	}
	mt := &manifest.Mount{FSType: o.MountFSType, NewRoot: o.NewRoot}
	if o.MountOpts != nil {
		mt.Options = *o.MountOpts
	}
	if err := manifest.ValidateMount(mt); err != nil {
		return usagef("%v", err)
	}

	// The input.
	st, err := os.Stat(o.In)
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("input %s is not a regular file", o.In)
	}
	p.size = st.Size()
	if p.size == 0 {
		return fmt.Errorf("input %s is empty", o.In)
	}
	f, err := os.Open(o.In)
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	p.fsBlock = Ext4BlockSize(f)
	f.Close()
	if o.MountFSType == "" && p.fsBlock != 0 {
		o.MountFSType = "ext4"
	}
	if p.size%512 != 0 {
		return fmt.Errorf("input %s: size %d is not a multiple of 512 bytes", o.In, p.size)
	}

	if o.VeritySignKey != "" {
		if p.signer, err = LoadSigner(o.VeritySignKey, o.VeritySignCert); err != nil {
			return err
		}
	}
	if hasCrypt {
		if err := p.checkCrypt(); err != nil {
			return err
		}
	}
	if has(o.Stack, "verity") {
		if err := p.checkVerity(); err != nil {
			return err
		}
	}
	if has(o.Stack, "integrity") && !aead {
		if err := p.checkIntegrity(); err != nil {
			return err
		}
	}
	return nil
}

func (p *plan) checkCrypt() error {
	o := &p.Options
	aead := o.Profile == manifest.ProfileAEAD
	if o.Cipher == "" {
		o.Cipher = "aes-xts-plain64"
		if aead {
			o.Cipher = crypt.AEADGCM
		}
	}
	if aead {
		if _, err := crypt.AEADKeySizes(o.Cipher); err != nil {
			return usagef("--cipher %q: unsupported with --profile aead (want %s or %s)", o.Cipher, crypt.AEADGCM, crypt.AEADAuthencXTS)
		}
		if o.IVLargeSectors {
			return usagef("--iv-large-sectors does not apply to --profile aead")
		}
	} else if _, err := crypt.ParseCipher(o.Cipher); err != nil {
		return usagef("--cipher %q: unsupported (want one of: %s)", o.Cipher, strings.Join(crypt.Supported, ", "))
	}
	// the size the crypt layer covers
	unit := p.size
	if o.SectorSize == 0 {
		switch {
		case unit%4096 == 0 && p.mountable() >= 4096:
			o.SectorSize = 4096
		default:
			o.SectorSize = 512
			why := "the image size is not a multiple of 4096"
			if unit%4096 == 0 {
				why = fmt.Sprintf("the ext4 block size is %d", p.fsBlock)
			}
			p.note("crypt sector size 512 (%s)", why)
		}
	} else {
		allowed := []string{"512", "1024", "2048", "4096"}
		if aead {
			allowed = []string{"512", "4096"} // = the dm-integrity block size
		}
		if err := cli.OneOf("--sector-size", fmt.Sprint(o.SectorSize), allowed...); err != nil {
			return err
		}
		if p.size%int64(o.SectorSize) != 0 {
			return fmt.Errorf("input size %d is not a multiple of the crypt sector size %d", p.size, o.SectorSize)
		}
		if p.fsBlock != 0 && o.SectorSize > p.fsBlock && o.Stack != manifest.StackCryptThenVerity && o.Stack != manifest.StackCryptThenIntegrity {
			p.note("warning: crypt sector size %d is larger than the ext4 block size %d: the filesystem will not mount on the mapped device", o.SectorSize, p.fsBlock)
		}
	}
	sizes, _ := crypt.KeySizes(o.Cipher)
	if aead {
		sizes, _ = crypt.AEADKeySizes(o.Cipher)
	}
	ok := false
	for _, s := range sizes {
		ok = ok || s == len(o.Key)
	}
	if !ok {
		return usagef("key is %d bytes; %s takes %s bytes", len(o.Key), o.Cipher, joinInts(sizes))
	}
	if aead {
		a, err := crypt.NewAEAD(o.Cipher, o.Key, o.SectorSize)
		if err != nil {
			return usagef("crypt: %v", err)
		}
		p.aead = a
		return nil
	}
	c, err := crypt.New(crypt.Spec{Cipher: o.Cipher, Key: o.Key, SectorSize: o.SectorSize, IVLargeSectors: o.IVLargeSectors})
	if err != nil {
		return usagef("crypt: %v", err)
	}
	p.cipher = c
	return nil
}

func (p *plan) checkVerity() error {
	o := &p.Options
	vp := verity.DefaultParams()
	if o.VerityHash != "" {
		vp.Hash = o.VerityHash
	}
	if _, err := verity.DigestSize(vp.Hash); err != nil {
		return usagef("--verity-hash %q: want sha1, sha256 or sha512", vp.Hash)
	}
	if o.VerityDataBlockSize != 0 {
		vp.DataBlockSize = o.VerityDataBlockSize
		if p.fsBlock != 0 && vp.DataBlockSize > p.fsBlock {
			p.note("warning: verity data block size %d is larger than the ext4 block size %d: the filesystem will not mount on the mapped device", vp.DataBlockSize, p.fsBlock)
		}
	} else if m := p.mountable(); m < vp.DataBlockSize {
		vp.DataBlockSize = m
		p.note("verity data block size %d (the ext4 block size)", m)
	}
	if o.VerityHashBlockSize != 0 {
		vp.HashBlockSize = o.VerityHashBlockSize
	}
	for _, b := range []int{vp.DataBlockSize, vp.HashBlockSize} {
		if b < 512 || b > 4096 || b&(b-1) != 0 {
			return usagef("verity block size %d: want 512, 1024, 2048 or 4096", b)
		}
	}
	if p.size%int64(vp.DataBlockSize) != 0 {
		hint := ""
		if o.VerityDataBlockSize == 0 {
			hint = " (choose a smaller one with --verity-data-block-size)"
		}
		return fmt.Errorf("input size %d is not a multiple of the verity data block size %d%s", p.size, vp.DataBlockSize, hint)
	}
	if o.VerityFECRoots != 0 {
		if o.VerityFECRoots < verity.MinFECRoots || o.VerityFECRoots > verity.MaxFECRoots {
			return usagef("--verity-fec-roots %d: want %d..%d (or 0 for no FEC)", o.VerityFECRoots, verity.MinFECRoots, verity.MaxFECRoots)
		}
		if vp.DataBlockSize != vp.HashBlockSize {
			return usagef("--verity-fec-roots needs equal verity data and hash block sizes (%d, %d)", vp.DataBlockSize, vp.HashBlockSize)
		}
	}
	switch o.Salt {
	case "":
	case "-":
		vp.Salt = nil
	default:
		s, err := verity.ParseSalt(o.Salt)
		if err != nil || len(s) == 0 {
			return usagef("--salt: want hex (at most 256 bytes) or -")
		}
		vp.Salt = s
	}
	p.vp = vp
	return vp.Validate()
}

func (p *plan) checkIntegrity() error {
	o := &p.Options
	ip := integrity.Params{Hash: "crc32c", BlockSize: 4096, Layout: integrity.LayoutSeparate, Mode: 'J'}
	if o.IntegrityHash != "" {
		if err := cli.OneOf("--integrity-hash", o.IntegrityHash, "crc32c", "sha256", "hmac-sha256"); err != nil {
			return err
		}
		ip.Hash = o.IntegrityHash
	}
	if (ip.Hash == "hmac-sha256") != (len(o.IntegrityKey) > 0) {
		if len(o.IntegrityKey) > 0 {
			return usagef("--integrity-key-file/--integrity-key-hex only go with --integrity-hash hmac-sha256")
		}
		return usagef("--integrity-hash hmac-sha256 needs --integrity-key-file FILE or --integrity-key-hex HEX")
	}
	if len(o.IntegrityKey) > 0 {
		if len(o.IntegrityKey) < 16 || len(o.IntegrityKey) > 128 {
			return usagef("integrity key is %d bytes; want 16..128 (32 is usual for hmac-sha256)", len(o.IntegrityKey))
		}
		ip.Key = o.IntegrityKey
	}
	if o.IntegrityBlockSize != 0 {
		if err := cli.OneOf("--integrity-block-size", fmt.Sprint(o.IntegrityBlockSize), "512", "4096"); err != nil {
			return err
		}
		ip.BlockSize = o.IntegrityBlockSize
		if p.fsBlock != 0 && ip.BlockSize > p.fsBlock {
			p.note("warning: integrity block size %d is larger than the ext4 block size %d: the filesystem will not mount on the mapped device", ip.BlockSize, p.fsBlock)
		}
	} else if p.mountable() < 4096 || p.size%4096 != 0 {
		ip.BlockSize = 512
		p.note("integrity block size 512 (image size or ext4 block size below 4096)")
	}
	if o.IntegrityLayout != "" {
		if err := cli.OneOf("--integrity-layout", o.IntegrityLayout, integrity.LayoutSeparate, integrity.LayoutInterleaved); err != nil {
			return err
		}
		ip.Layout = o.IntegrityLayout
	}
	if p.size%int64(ip.BlockSize) != 0 {
		return fmt.Errorf("input size %d is not a multiple of the integrity block size %d", p.size, ip.BlockSize)
	}
	p.ip = ip
	return nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}

// sha256File streams a file through SHA-256.
func sha256File(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func sha256Reader(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

func outPath(dir, name string) string { return filepath.Join(dir, name) }

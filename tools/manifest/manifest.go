// Package manifest is the Go side of the rules_dm manifest contract
// (spec/manifest.md): the types of manifest.json, strict parsing and
// validation, stable encoding, the flattened manifest.env (writer and a strict
// reader that never evaluates anything), and table template substitution.
//
// Both activators and the composer use it; a manifest read here has been
// checked field by field, so a hostile file is rejected before anything runs.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// SchemaVersion is the only manifest version this package reads and writes.
const SchemaVersion = 1

// MaxLayers bounds the number of layers of a stack.
const MaxLayers = 8

// MaxManifestSize bounds what Load and Parse accept.
const MaxManifestSize = 1 << 20

// Stacks, profiles, targets, devices and roles of the contract.
const (
	StackCryptOnly          = "crypt-only"
	StackIntegrityOnly      = "integrity-only"
	StackIntegrityThenCrypt = "integrity-then-crypt"
	StackCryptThenIntegrity = "crypt-then-integrity"
	StackVerityOnly         = "verity-only"
	StackVerityThenCrypt    = "verity-then-crypt"
	StackCryptThenVerity    = "crypt-then-verity"

	ProfilePlainCrypt = "plain-crypt"
	ProfileAEAD       = "aead"

	TargetCrypt     = "crypt"
	TargetIntegrity = "integrity"
	TargetVerity    = "verity"

	DeviceData  = "data"
	DeviceMeta  = "meta"
	DeviceLower = "lower"
	DeviceNone  = "none"

	RoleData      = "data"
	RoleMeta      = "meta"
	RoleSignature = "signature" // detached PKCS#7 signature of a verity root hash
	RoleBoot      = "boot"      // boot-time configuration (boot/...), not a device image

	// BootDir is the subdirectory of the outdir holding the boot artifacts.
	BootDir = "boot"
	// MaxBootArtifacts bounds the boot artifacts of a manifest.
	MaxBootArtifacts = 8
)

// Stacks lists the stack names in a fixed order.
var Stacks = []string{
	StackCryptOnly, StackIntegrityOnly, StackIntegrityThenCrypt, StackCryptThenIntegrity,
	StackVerityOnly, StackVerityThenCrypt, StackCryptThenVerity,
}

// Profiles lists the profile names.
var Profiles = []string{ProfilePlainCrypt, ProfileAEAD}

// Manifest is manifest.json. Field order is the encoding order.
type Manifest struct {
	SchemaVersion int        `json:"schema_version"`
	Stack         string     `json:"stack"`
	Profile       string     `json:"profile"`
	Name          string     `json:"name"`
	Input         Input      `json:"input"`
	Artifacts     []Artifact `json:"artifacts"`
	Layers        []Layer    `json:"layers"`
	Mount         *Mount     `json:"mount,omitempty"`

	// partial marks a manifest rebuilt from manifest.env (FromEnv): the env
	// does not list the signature and boot artifacts.
	partial bool
}

// Input describes the plaintext filesystem image the stack was built from.
type Input struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Artifact is one file of the outdir: a device image (data, meta), the
// root-hash signature, or a boot-time configuration file.
type Artifact struct {
	Role   string `json:"role"`
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Layer is one device-mapper target, bottom (index 0) to top.
type Layer struct {
	Index     int        `json:"index"`
	Target    string     `json:"target"`
	Name      string     `json:"name"`
	Device    string     `json:"device"`
	Sectors   int64      `json:"sectors"`
	Table     string     `json:"table"`
	Verity    *Verity    `json:"verity,omitempty"`
	Crypt     *Crypt     `json:"crypt,omitempty"`
	Integrity *Integrity `json:"integrity,omitempty"`
}

// Verity holds every dm-verity table parameter.
type Verity struct {
	Version        int    `json:"version"`
	DataDevice     string `json:"data_device"`
	HashDevice     string `json:"hash_device"`
	DataBlockSize  int    `json:"data_block_size"`
	HashBlockSize  int    `json:"hash_block_size"`
	DataBlocks     int64  `json:"data_blocks"`
	HashStartBlock int64  `json:"hash_start_block"`
	HashOffset     int64  `json:"hash_offset"`
	HashAlgorithm  string `json:"hash_algorithm"`
	RootHash       string `json:"root_hash"`
	Salt           string `json:"salt"`
	Superblock     bool   `json:"superblock"`
	UUID           string `json:"uuid"`
	Opts           string `json:"opts"`
	// RootHashSig names the signature artifact (detached PKCS#7 over the
	// lowercase hex root hash); RootHashSigKeyDesc is the description under
	// which the activator adds it to the keyring as a "user" key, and which
	// Opts passes as "root_hash_sig_key_desc <desc>". Both empty when unsigned.
	RootHashSig        string `json:"root_hash_sig,omitempty"`
	RootHashSigKeyDesc string `json:"root_hash_sig_key_desc,omitempty"`
}

// Crypt holds every dm-crypt table parameter except the key.
type Crypt struct {
	Cipher         string `json:"cipher"`
	KeySize        int    `json:"key_size"`
	KeyDesc        string `json:"key_desc"`
	IVOffset       int64  `json:"iv_offset"`
	Offset         int64  `json:"offset"`
	SectorSize     int    `json:"sector_size"`
	IVLargeSectors bool   `json:"iv_large_sectors"`
	Integrity      string `json:"integrity"`
}

// Integrity holds every dm-integrity table/superblock parameter.
type Integrity struct {
	TagSize             int    `json:"tag_size"`
	Mode                string `json:"mode"`
	BlockSize           int    `json:"block_size"`
	Hash                string `json:"hash"`
	Layout              string `json:"layout"`
	MetaDevice          string `json:"meta_device"`
	JournalSectors      int64  `json:"journal_sectors"`
	JournalSections     int64  `json:"journal_sections"`
	InterleaveSectors   int64  `json:"interleave_sectors"`
	BufferSectors       int64  `json:"buffer_sectors"`
	ProvidedDataSectors int64  `json:"provided_data_sectors"`
	FixPadding          bool   `json:"fix_padding"`
	FixHmac             bool   `json:"fix_hmac"`
	Salt                string `json:"salt"`
	KeySize             int    `json:"key_size,omitempty"`
	KeyDesc             string `json:"key_desc,omitempty"`
}

// Mount holds the optional mount defaults; empty fields mean "activator default".
type Mount struct {
	FSType  string `json:"fstype"`
	NewRoot string `json:"newroot"`
	Options string `json:"options"`
}

// Load reads and validates a manifest.json.
func Load(path string) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	m, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Parse decodes and validates manifest.json bytes. Unknown fields, trailing
// data and every contract violation are errors.
func Parse(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestSize {
		return nil, fmt.Errorf("manifest: larger than %d bytes", MaxManifestSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("manifest: trailing data after the JSON object")
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Marshal validates m and encodes it: indented JSON with a final newline, in
// struct field order, so the same manifest always gives the same bytes.
func Marshal(m *Manifest) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("manifest: encode: %w", err)
	}
	return buf.Bytes(), nil
}

// Artifact returns the artifact with the given role, or nil.
func (m *Manifest) Artifact(role string) *Artifact {
	for i := range m.Artifacts {
		if m.Artifacts[i].Role == role {
			return &m.Artifacts[i]
		}
	}
	return nil
}

// NeedsMeta reports whether the stack uses META_DEV.
func (m *Manifest) NeedsMeta() bool { return m.Artifact(RoleMeta) != nil }

// Top returns the mapped name of the top layer ("" without layers).
func (m *Manifest) Top() string {
	if len(m.Layers) == 0 {
		return ""
	}
	return m.Layers[len(m.Layers)-1].Name
}

// HasTarget reports whether some layer is of the given target type.
func (m *Manifest) HasTarget(target string) bool {
	for _, l := range m.Layers {
		if l.Target == target {
			return true
		}
	}
	return false
}

// KeyDesc is the keyring description of a crypt key for the mapped name.
func KeyDesc(name string) string { return "rules_dm:" + name }

// SigKeyDesc is the keyring description of the root-hash signature of a
// verity layer with the given mapped name.
func SigKeyDesc(layerName string) string { return "rules_dm:" + layerName + ":roothash-sig" }

// LayerName gives the mapped name of a layer: the top is name, the others
// name-target.
func LayerName(name, target string, top bool) string {
	if top {
		return name
	}
	return name + "-" + target
}

// ---- validation ----

var (
	reHex      = regexp.MustCompile(`^[0-9a-f]+$`)
	reName     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$`)
	rePath     = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$`)
	reUUID     = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	reCipher   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:()+,-]{0,127}$`)
	reKeyDesc  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,127}$`)
	reFSType   = regexp.MustCompile(`^[A-Za-z0-9_.+-]{0,32}$`)
	reNewRoot  = regexp.MustCompile(`^(/[A-Za-z0-9_.+-]+)*/?$`)
	reMountOpt = regexp.MustCompile(`^[A-Za-z0-9_.,:=+/-]{0,256}$`)
	reOptWord  = regexp.MustCompile(`^([A-Za-z0-9_.:=+/-]+|@(DATA|META|LOWER)@)$`)
	reCryptInt = regexp.MustCompile(`^([0-9]{1,3}:(aead|none|[a-z0-9()_-]{1,64}))?$`)
	reWord     = regexp.MustCompile(`^[A-Za-z0-9_.,:/=+()-]+$`)
	rePlace    = regexp.MustCompile(`@[A-Z]*@?`)
)

// Placeholders are the words a table template may contain besides plain
// characters (spec/manifest.md, "Table templates").
var Placeholders = []string{"@DATA@", "@META@", "@LOWER@", "@KEY@", "@IKEY@"}

func isHexN(s string, n int) bool { return len(s) == n && reHex.MatchString(s) }

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

func pow2In(v, lo, hi int) bool { return v >= lo && v <= hi && v&(v-1) == 0 }

// ValidName reports whether s is acceptable as a mapped device name.
func ValidName(s string) bool { return reName.MatchString(s) }

// ValidPath reports whether s is a plain artifact file name.
func ValidPath(s string) bool {
	return rePath.MatchString(s) && !strings.Contains(s, "..")
}

// ValidBootPath reports whether s is "boot/<plain file name>".
func ValidBootPath(s string) bool {
	rest, ok := strings.CutPrefix(s, BootDir+"/")
	return ok && ValidPath(rest)
}

// Validate checks every rule of the contract.
func (m *Manifest) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("manifest: "+format, a...)
	}
	if m.SchemaVersion != SchemaVersion {
		return bad("unsupported schema_version %d (want %d)", m.SchemaVersion, SchemaVersion)
	}
	if !oneOf(m.Stack, Stacks...) {
		return bad("unknown stack %q", m.Stack)
	}
	if !oneOf(m.Profile, Profiles...) {
		return bad("unknown profile %q", m.Profile)
	}
	if !ValidName(m.Name) {
		return bad("name %q: want 1-64 characters of A-Za-z0-9_.+- not starting with a symbol", m.Name)
	}
	if m.Input.Size <= 0 {
		return bad("input.size %d: want a positive size", m.Input.Size)
	}
	if !isHexN(m.Input.SHA256, 64) {
		return bad("input.sha256: want 64 lowercase hex digits")
	}
	if len(m.Artifacts) < 1 || len(m.Artifacts) > 3+MaxBootArtifacts {
		return bad("want 1..%d artifacts, got %d", 3+MaxBootArtifacts, len(m.Artifacts))
	}
	roles := map[string]bool{}
	paths := map[string]bool{}
	nboot := 0
	for i, a := range m.Artifacts {
		if !oneOf(a.Role, RoleData, RoleMeta, RoleSignature, RoleBoot) {
			return bad("artifacts[%d]: unknown role %q", i, a.Role)
		}
		if a.Role == RoleBoot {
			nboot++
			if !ValidBootPath(a.Path) {
				return bad("artifacts[%d].path %q: a boot artifact is boot/<name> (A-Za-z0-9_.+-, no '..')", i, a.Path)
			}
		} else {
			if roles[a.Role] {
				return bad("artifacts[%d]: duplicate role %q", i, a.Role)
			}
			if !ValidPath(a.Path) {
				return bad("artifacts[%d].path %q: want a plain file name (no '/', no '..', A-Za-z0-9_.+-)", i, a.Path)
			}
		}
		roles[a.Role] = true
		if paths[a.Path] {
			return bad("artifacts[%d]: duplicate path %q", i, a.Path)
		}
		paths[a.Path] = true
		if a.Size <= 0 {
			return bad("artifacts[%d].size %d: want a positive size", i, a.Size)
		}
		if !isHexN(a.SHA256, 64) {
			return bad("artifacts[%d].sha256: want 64 lowercase hex digits", i)
		}
	}
	if nboot > MaxBootArtifacts {
		return bad("at most %d boot artifacts, got %d", MaxBootArtifacts, nboot)
	}
	if !roles[RoleData] {
		return bad("no artifact with role data")
	}
	if m.Artifacts[0].Role != RoleData {
		return bad("artifacts[0] must be the data artifact")
	}
	if len(m.Layers) < 1 || len(m.Layers) > MaxLayers {
		return bad("want 1..%d layers, got %d", MaxLayers, len(m.Layers))
	}
	names := map[string]bool{}
	usesMeta := false
	for i := range m.Layers {
		l := &m.Layers[i]
		if err := l.validate(i, roles[RoleMeta]); err != nil {
			return bad("layers[%d]: %v", i, err)
		}
		if names[l.Name] {
			return bad("layers[%d]: duplicate name %q", i, l.Name)
		}
		names[l.Name] = true
		if strings.Contains(l.Table, "@META@") || strings.Contains(verityOpts(l), "@META@") {
			usesMeta = true
		}
	}
	if m.Top() != m.Name {
		return bad("top layer name %q differs from name %q", m.Top(), m.Name)
	}
	signed := ""
	for _, l := range m.Layers {
		if l.Verity != nil && l.Verity.RootHashSig != "" {
			if signed != "" {
				return bad("at most one verity layer carries a root hash signature")
			}
			signed = l.Verity.RootHashSig
		}
	}
	if sa := m.Artifact(RoleSignature); sa != nil && sa.Path != signed {
		return bad("signature artifact %q is not the root_hash_sig of a verity layer", sa.Path)
	}
	if signed != "" && m.Artifact(RoleSignature) == nil && !m.partial {
		return bad("root_hash_sig %q has no signature artifact", signed)
	}
	if roles[RoleMeta] != usesMeta {
		if usesMeta {
			return bad("a table uses @META@ but there is no meta artifact")
		}
		return bad("a meta artifact is listed but no table uses @META@")
	}
	if err := m.validateAEAD(); err != nil {
		return bad("%v", err)
	}
	if m.Mount != nil {
		if err := ValidateMount(m.Mount); err != nil {
			return bad("%v", err)
		}
	}
	return nil
}

// validateAEAD: profile aead is exactly the integrity-then-crypt stack whose
// integrity layer (hash none, separate layout) holds the [auth tag | IV]
// entries of the crypt layer above (integrity:<tag>:aead); an aead crypt
// layer appears only in profile aead.
func (m *Manifest) validateAEAD() error {
	aeadCrypt := false
	for _, l := range m.Layers {
		if l.Crypt != nil && strings.HasSuffix(l.Crypt.Integrity, ":aead") {
			aeadCrypt = true
		}
	}
	if m.Profile != ProfileAEAD {
		if aeadCrypt {
			return errors.New("a crypt layer uses integrity:<tag>:aead but the profile is not aead")
		}
		return nil
	}
	if m.Stack != StackIntegrityThenCrypt || len(m.Layers) != 2 {
		return fmt.Errorf("profile aead is the integrity-then-crypt stack (two layers), not %s", m.Stack)
	}
	g, c := m.Layers[0].Integrity, m.Layers[1].Crypt
	if g == nil || c == nil {
		return errors.New("profile aead: want an integrity layer under a crypt layer")
	}
	if g.Hash != "none" || g.Layout != "separate" {
		return errors.New("profile aead: the integrity layer must use hash none and the separate layout")
	}
	if c.Integrity != fmt.Sprintf("%d:aead", g.TagSize) {
		return fmt.Errorf("profile aead: crypt.integrity %q, want %d:aead (the integrity tag size)", c.Integrity, g.TagSize)
	}
	if c.SectorSize != g.BlockSize {
		return fmt.Errorf("profile aead: crypt sector size %d differs from the integrity block size %d", c.SectorSize, g.BlockSize)
	}
	return nil
}

// ValidateMount checks the mount defaults.
func ValidateMount(mo *Mount) error {
	if !reFSType.MatchString(mo.FSType) {
		return fmt.Errorf("mount.fstype %q: want A-Za-z0-9_.+- only", mo.FSType)
	}
	if mo.NewRoot != "" && (!reNewRoot.MatchString(mo.NewRoot) || strings.Contains(mo.NewRoot, "..")) {
		return fmt.Errorf("mount.newroot %q: want an absolute path of A-Za-z0-9_.+- components", mo.NewRoot)
	}
	if !reMountOpt.MatchString(mo.Options) {
		return fmt.Errorf("mount.options %q: want A-Za-z0-9_.,:=+/- only", mo.Options)
	}
	return nil
}

func verityOpts(l *Layer) string {
	if l.Verity == nil {
		return ""
	}
	return l.Verity.Opts
}

func (l *Layer) validate(i int, haveMeta bool) error {
	if l.Index != i {
		return fmt.Errorf("index %d, want %d", l.Index, i)
	}
	if !oneOf(l.Target, TargetCrypt, TargetIntegrity, TargetVerity) {
		return fmt.Errorf("unknown target %q", l.Target)
	}
	if !ValidName(l.Name) {
		return fmt.Errorf("name %q: want 1-64 characters of A-Za-z0-9_.+-", l.Name)
	}
	wantDev := DeviceLower
	if i == 0 {
		wantDev = DeviceData
	}
	if l.Device != wantDev {
		return fmt.Errorf("device %q, want %q", l.Device, wantDev)
	}
	if l.Sectors <= 0 {
		return fmt.Errorf("sectors %d: want a positive count", l.Sectors)
	}
	n := 0
	if l.Verity != nil {
		n++
	}
	if l.Crypt != nil {
		n++
	}
	if l.Integrity != nil {
		n++
	}
	if n != 1 {
		return fmt.Errorf("want exactly one parameter object (%s), got %d", l.Target, n)
	}
	if err := ValidateTable(l.Table); err != nil {
		return err
	}
	w := strings.Fields(l.Table)
	if len(w) < 3 || w[0] != "0" || w[1] != strconv.FormatInt(l.Sectors, 10) || w[2] != l.Target {
		return fmt.Errorf("table must start with \"0 %d %s \"", l.Sectors, l.Target)
	}
	if i == 0 && strings.Contains(l.Table, "@LOWER@") {
		return errors.New("layer 0 table uses @LOWER@")
	}
	if i > 0 && (strings.Contains(l.Table, "@DATA@") || !strings.Contains(l.Table, "@LOWER@")) {
		return errors.New("an upper layer table must sit on @LOWER@ and not use @DATA@")
	}
	if i == 0 && !strings.Contains(l.Table, "@DATA@") {
		return errors.New("layer 0 table does not use @DATA@")
	}
	if strings.Contains(l.Table, "@META@") && !haveMeta {
		return errors.New("table uses @META@ but there is no meta artifact")
	}
	devOK := func(d string, none bool) bool {
		if d == DeviceNone {
			return none
		}
		if d == DeviceMeta {
			return haveMeta
		}
		if i == 0 {
			return d == DeviceData
		}
		return d == DeviceLower
	}
	switch l.Target {
	case TargetVerity:
		v := l.Verity
		if v == nil {
			return errors.New("verity layer without a verity object")
		}
		if strings.Contains(l.Table, "@KEY@") || strings.Contains(l.Table, "@IKEY@") {
			return errors.New("verity table uses a key placeholder")
		}
		if v.Version != 0 && v.Version != 1 {
			return fmt.Errorf("verity.version %d: want 0 or 1", v.Version)
		}
		if !devOK(v.DataDevice, false) || !devOK(v.HashDevice, false) || v.DataDevice == DeviceMeta {
			return fmt.Errorf("verity devices %q/%q do not fit layer %d", v.DataDevice, v.HashDevice, i)
		}
		if !pow2In(v.DataBlockSize, 512, 1<<20) || !pow2In(v.HashBlockSize, 512, 1<<20) {
			return errors.New("verity block sizes: want powers of two from 512")
		}
		if v.DataBlocks <= 0 || v.HashStartBlock < 0 || v.HashOffset < 0 {
			return errors.New("verity data_blocks/hash_start_block/hash_offset out of range")
		}
		if v.DataBlocks*int64(v.DataBlockSize/512) != l.Sectors {
			return fmt.Errorf("verity: %d data blocks of %d bytes is not %d sectors", v.DataBlocks, v.DataBlockSize, l.Sectors)
		}
		dl := map[string]int{"sha1": 40, "sha256": 64, "sha512": 128}[v.HashAlgorithm]
		if dl == 0 {
			return fmt.Errorf("verity.hash_algorithm %q: want sha1, sha256 or sha512", v.HashAlgorithm)
		}
		if !isHexN(v.RootHash, dl) {
			return fmt.Errorf("verity.root_hash: want %d lowercase hex digits", dl)
		}
		if v.Salt != "-" && (!reHex.MatchString(v.Salt) || len(v.Salt)%2 != 0 || len(v.Salt) > 512) {
			return errors.New("verity.salt: want '-' or even-length lowercase hex (at most 256 bytes)")
		}
		if v.UUID != "" && !reUUID.MatchString(v.UUID) {
			return errors.New("verity.uuid: want a lowercase UUID or empty")
		}
		if v.Opts != "" {
			for _, w := range strings.Split(v.Opts, " ") {
				if !reOptWord.MatchString(w) {
					return fmt.Errorf("verity.opts word %q not allowed", w)
				}
			}
			if strings.Contains(v.Opts, "@META@") && !haveMeta {
				return errors.New("verity.opts uses @META@ but there is no meta artifact")
			}
		}
		if (v.RootHashSig == "") != (v.RootHashSigKeyDesc == "") {
			return errors.New("verity: root_hash_sig and root_hash_sig_key_desc go together")
		}
		if v.RootHashSig != "" {
			if !ValidPath(v.RootHashSig) {
				return fmt.Errorf("verity.root_hash_sig %q: want a plain file name", v.RootHashSig)
			}
			if !reKeyDesc.MatchString(v.RootHashSigKeyDesc) || !strings.Contains(v.RootHashSigKeyDesc, ":") {
				return fmt.Errorf("verity.root_hash_sig_key_desc %q not allowed (want prefix:name of A-Za-z0-9_.:+-)", v.RootHashSigKeyDesc)
			}
		}
		if n := strings.Count(" "+v.Opts+" ", " root_hash_sig_key_desc "); n > 1 ||
			(v.RootHashSig != "") != strings.Contains(" "+v.Opts+" ", " root_hash_sig_key_desc "+v.RootHashSigKeyDesc+" ") ||
			(v.RootHashSig == "" && n > 0) {
			return errors.New("verity.opts must hold \"root_hash_sig_key_desc <root_hash_sig_key_desc>\" exactly when signed")
		}
		dev := func(d string) string {
			return map[string]string{DeviceData: "@DATA@", DeviceMeta: "@META@", DeviceLower: "@LOWER@"}[d]
		}
		want := fmt.Sprintf("0 %d verity %d %s %s %d %d %d %d %s %s %s", l.Sectors, v.Version,
			dev(v.DataDevice), dev(v.HashDevice), v.DataBlockSize, v.HashBlockSize,
			v.DataBlocks, v.HashStartBlock, v.HashAlgorithm, v.RootHash, v.Salt)
		if l.Table != want {
			return fmt.Errorf("verity table %q does not match its parameters (%q)", l.Table, want)
		}
	case TargetCrypt:
		c := l.Crypt
		if c == nil {
			return errors.New("crypt layer without a crypt object")
		}
		if strings.Contains(l.Table, "@IKEY@") || strings.Count(l.Table, "@KEY@") != 1 {
			return errors.New("crypt table must hold @KEY@ exactly once and no @IKEY@")
		}
		if !reCipher.MatchString(c.Cipher) {
			return fmt.Errorf("crypt.cipher %q not allowed", c.Cipher)
		}
		if c.KeySize < 1 || c.KeySize > 1024 {
			return fmt.Errorf("crypt.key_size %d out of range", c.KeySize)
		}
		if !reKeyDesc.MatchString(c.KeyDesc) {
			return fmt.Errorf("crypt.key_desc %q not allowed", c.KeyDesc)
		}
		if c.IVOffset < 0 || c.Offset < 0 {
			return errors.New("crypt offsets must not be negative")
		}
		if !pow2In(c.SectorSize, 512, 4096) {
			return fmt.Errorf("crypt.sector_size %d: want 512, 1024, 2048 or 4096", c.SectorSize)
		}
		if l.Sectors%int64(c.SectorSize/512) != 0 {
			return fmt.Errorf("crypt: %d sectors is not a multiple of the %d-byte sector", l.Sectors, c.SectorSize)
		}
		if !reCryptInt.MatchString(c.Integrity) {
			return fmt.Errorf("crypt.integrity %q not allowed", c.Integrity)
		}
		if !strings.HasPrefix(l.Table, fmt.Sprintf("0 %d crypt %s @KEY@ %d ", l.Sectors, c.Cipher, c.IVOffset)) {
			return errors.New("crypt table does not match its parameters")
		}
	case TargetIntegrity:
		g := l.Integrity
		if g == nil {
			return errors.New("integrity layer without an integrity object")
		}
		if strings.Contains(l.Table, "@KEY@") {
			return errors.New("integrity table uses @KEY@")
		}
		if g.TagSize < 1 || g.TagSize > 255 {
			return fmt.Errorf("integrity.tag_size %d out of range", g.TagSize)
		}
		if !oneOf(g.Mode, "J", "D", "B", "R") {
			return fmt.Errorf("integrity.mode %q: want J, D, B or R", g.Mode)
		}
		if !pow2In(g.BlockSize, 512, 4096) {
			return fmt.Errorf("integrity.block_size %d: want 512..4096, a power of two", g.BlockSize)
		}
		if !oneOf(g.Hash, "crc32c", "sha256", "hmac-sha256", "none") {
			return fmt.Errorf("integrity.hash %q: want crc32c, sha256, hmac-sha256 or none", g.Hash)
		}
		if !oneOf(g.Layout, "separate", "interleaved") {
			return fmt.Errorf("integrity.layout %q: want separate or interleaved", g.Layout)
		}
		wantMeta := DeviceMeta
		if g.Layout == "interleaved" {
			wantMeta = DeviceNone
		}
		if g.MetaDevice != wantMeta || !devOK(g.MetaDevice, true) {
			return fmt.Errorf("integrity.meta_device %q does not fit layout %s", g.MetaDevice, g.Layout)
		}
		if (g.MetaDevice == DeviceMeta) != strings.Contains(l.Table, "meta_device:@META@") {
			return errors.New("integrity table meta_device: does not match meta_device")
		}
		if g.JournalSectors < 0 || g.JournalSections < 0 || g.InterleaveSectors < 0 || g.BufferSectors < 0 || g.ProvidedDataSectors < 0 {
			return errors.New("integrity sector counts must not be negative")
		}
		if g.ProvidedDataSectors != 0 && l.Sectors > g.ProvidedDataSectors {
			return fmt.Errorf("integrity: table length %d exceeds provided_data_sectors %d", l.Sectors, g.ProvidedDataSectors)
		}
		if g.Salt != "" && !isHexN(g.Salt, 32) {
			return errors.New("integrity.salt: want 32 lowercase hex digits or empty")
		}
		hmac := g.Hash == "hmac-sha256"
		if hmac != (g.KeySize > 0) || g.KeySize < 0 || g.KeySize > 1024 {
			return errors.New("integrity.key_size: required (1..1024) exactly for hmac-sha256")
		}
		if hmac != strings.Contains(l.Table, "@IKEY@") || strings.Count(l.Table, "@IKEY@") > 1 {
			return errors.New("integrity table must hold @IKEY@ exactly when the hash is hmac-sha256")
		}
		if g.KeyDesc != "" && !reKeyDesc.MatchString(g.KeyDesc) {
			return fmt.Errorf("integrity.key_desc %q not allowed", g.KeyDesc)
		}
	}
	if l.Target != TargetVerity && l.Verity != nil || l.Target != TargetCrypt && l.Crypt != nil ||
		l.Target != TargetIntegrity && l.Integrity != nil {
		return fmt.Errorf("parameter object does not match target %s", l.Target)
	}
	return nil
}

// ValidateTable checks a table template: single spaces between words, at
// most 4096 bytes, words of A-Za-z0-9_.,:/=+()- and the placeholders
// @DATA@ @META@ @LOWER@ @KEY@ @IKEY@ (also after a "name:" prefix, as in
// meta_device:@META@).
func ValidateTable(t string) error {
	if t == "" || len(t) > 4096 {
		return errors.New("table: empty or longer than 4096 bytes")
	}
	for _, w := range strings.Split(t, " ") {
		if w == "" {
			return errors.New("table: words must be separated by single spaces")
		}
		plain := rePlace.ReplaceAllStringFunc(w, func(p string) string {
			if oneOf(p, Placeholders...) {
				return "x"
			}
			return "\x00"
		})
		if !reWord.MatchString(plain) {
			return fmt.Errorf("table: word %q holds a character or placeholder that is not allowed", w)
		}
	}
	return nil
}

// Substitute replaces the placeholders of a table template in one pass. The
// keys of devices are placeholder names with or without the @s: "DATA",
// "META", "LOWER", "KEY", "IKEY". Placeholders without a value stay as they
// are (check with Unresolved).
func Substitute(template string, devices map[string]string) string {
	var pairs []string
	for _, p := range Placeholders {
		v, ok := devices[strings.Trim(p, "@")]
		if !ok {
			v, ok = devices[p]
		}
		if ok {
			pairs = append(pairs, p, v)
		}
	}
	if len(pairs) == 0 {
		return template
	}
	return strings.NewReplacer(pairs...).Replace(template)
}

// Unresolved returns the placeholders still present in a substituted table.
func Unresolved(table string) []string {
	var out []string
	for _, p := range Placeholders {
		if strings.Contains(table, p) {
			out = append(out, p)
		}
	}
	return out
}

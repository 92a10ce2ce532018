package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// MaxEnvSize bounds what ParseEnv accepts.
const MaxEnvSize = 64 << 10

// Global env keys in their fixed order (spec/manifest.md, "manifest.env").
// The META keys are written only when there is a meta artifact; the mount
// keys always come last.
var envHead = []string{
	"DMTOOLS_SCHEMA_VERSION",
	"DMTOOLS_STACK", "DMTOOLS_PROFILE", "DMTOOLS_NAME",
	"DMTOOLS_INPUT_SIZE", "DMTOOLS_INPUT_SHA256",
	"DMTOOLS_DATA_PATH", "DMTOOLS_DATA_SIZE", "DMTOOLS_DATA_SHA256",
	"DMTOOLS_META_PATH", "DMTOOLS_META_SIZE", "DMTOOLS_META_SHA256",
	"DMTOOLS_NEEDS_META", "DMTOOLS_LAYERS", "DMTOOLS_TOP",
}

var envTail = []string{"DMTOOLS_MOUNT_FSTYPE", "DMTOOLS_NEWROOT", "DMTOOLS_MOUNT_OPTS"}

// Per-layer key suffixes (DMTOOLS_L<i>_<suffix>) in their fixed order.
var envLayer = []string{
	"TARGET", "NAME", "SECTORS", "TABLE",
	"VERITY_OPTS", "VERITY_ROOT_HASH", "VERITY_SIG_PATH", "VERITY_SIG_DESC",
	"CRYPT_KEY_SIZE", "CRYPT_KEY_DESC",
	"INTEGRITY_KEY_SIZE",
}

var (
	reEnvLine  = regexp.MustCompile(`^(DMTOOLS_[A-Z0-9_]+)='([A-Za-z0-9 _.,:/@=+%()-]*)'$`)
	reEnvValue = regexp.MustCompile(`^[A-Za-z0-9 _.,:/@=+%()-]*$`)
	reLayerKey = regexp.MustCompile(`^DMTOOLS_L([0-7])_([A-Z_]+)$`)
)

// ValidEnvValue reports whether s may appear as a manifest.env value.
func ValidEnvValue(s string) bool { return reEnvValue.MatchString(s) }

// KnownEnvKey reports whether key belongs to the manifest.env key set.
func KnownEnvKey(key string) bool {
	if oneOf(key, envHead...) || oneOf(key, envTail...) {
		return true
	}
	if sm := reLayerKey.FindStringSubmatch(key); sm != nil {
		return oneOf(sm[2], envLayer...)
	}
	return false
}

// Env is a parsed manifest.env: the keys in file order and their values.
type Env struct {
	Keys   []string
	Values map[string]string
}

// Get returns the value of key and whether it was present.
func (e *Env) Get(key string) (string, bool) {
	v, ok := e.Values[key]
	return v, ok
}

func (e *Env) set(k, v string) {
	e.Keys = append(e.Keys, k)
	e.Values[k] = v
}

// envLines flattens m into ordered key/value pairs.
func envLines(m *Manifest) *Env {
	e := &Env{Values: map[string]string{}}
	itoa := func(v int64) string { return strconv.FormatInt(v, 10) }
	e.set("DMTOOLS_SCHEMA_VERSION", strconv.Itoa(m.SchemaVersion))
	e.set("DMTOOLS_STACK", m.Stack)
	e.set("DMTOOLS_PROFILE", m.Profile)
	e.set("DMTOOLS_NAME", m.Name)
	e.set("DMTOOLS_INPUT_SIZE", itoa(m.Input.Size))
	e.set("DMTOOLS_INPUT_SHA256", m.Input.SHA256)
	d := m.Artifact(RoleData)
	e.set("DMTOOLS_DATA_PATH", d.Path)
	e.set("DMTOOLS_DATA_SIZE", itoa(d.Size))
	e.set("DMTOOLS_DATA_SHA256", d.SHA256)
	needs := "0"
	if mt := m.Artifact(RoleMeta); mt != nil {
		e.set("DMTOOLS_META_PATH", mt.Path)
		e.set("DMTOOLS_META_SIZE", itoa(mt.Size))
		e.set("DMTOOLS_META_SHA256", mt.SHA256)
		needs = "1"
	}
	e.set("DMTOOLS_NEEDS_META", needs)
	e.set("DMTOOLS_LAYERS", strconv.Itoa(len(m.Layers)))
	e.set("DMTOOLS_TOP", m.Top())
	for i, l := range m.Layers {
		p := fmt.Sprintf("DMTOOLS_L%d_", i)
		e.set(p+"TARGET", l.Target)
		e.set(p+"NAME", l.Name)
		e.set(p+"SECTORS", itoa(l.Sectors))
		e.set(p+"TABLE", l.Table)
		switch {
		case l.Verity != nil:
			e.set(p+"VERITY_OPTS", l.Verity.Opts)
			e.set(p+"VERITY_ROOT_HASH", l.Verity.RootHash)
			if l.Verity.RootHashSig != "" {
				e.set(p+"VERITY_SIG_PATH", l.Verity.RootHashSig)
				e.set(p+"VERITY_SIG_DESC", l.Verity.RootHashSigKeyDesc)
			}
		case l.Crypt != nil:
			e.set(p+"CRYPT_KEY_SIZE", strconv.Itoa(l.Crypt.KeySize))
			e.set(p+"CRYPT_KEY_DESC", l.Crypt.KeyDesc)
		case l.Integrity != nil && l.Integrity.KeySize > 0:
			e.set(p+"INTEGRITY_KEY_SIZE", strconv.Itoa(l.Integrity.KeySize))
		}
	}
	var mo Mount
	if m.Mount != nil {
		mo = *m.Mount
	}
	e.set("DMTOOLS_MOUNT_FSTYPE", mo.FSType)
	e.set("DMTOOLS_NEWROOT", mo.NewRoot)
	e.set("DMTOOLS_MOUNT_OPTS", mo.Options)
	return e
}

// WriteEnv renders manifest.env for m: a comment header, then one
// KEY='value' line per key in the fixed order of spec/manifest.md. m must be
// valid (Validate); WriteEnv panics on a value outside the env charset,
// which a valid manifest never holds.
func WriteEnv(m *Manifest) []byte {
	var b bytes.Buffer
	b.WriteString("# rules_dm manifest.env (generated from manifest.json; do not edit).\n")
	b.WriteString("# KEY='value' lines only; read it with a strict parser, never eval or source it.\n")
	e := envLines(m)
	for _, k := range e.Keys {
		v := e.Values[k]
		if !ValidEnvValue(v) {
			panic(fmt.Sprintf("manifest: %s holds a character not allowed in manifest.env", k))
		}
		fmt.Fprintf(&b, "%s='%s'\n", k, v)
	}
	return b.Bytes()
}

// LoadEnv reads and parses a manifest.env file.
func LoadEnv(path string) (*Env, error) {
	b, err := readLimited(path, MaxEnvSize)
	if err != nil {
		return nil, err
	}
	e, err := ParseEnv(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return e, nil
}

func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	b := make([]byte, st.Size()+1)
	n, _ := f.Read(b)
	for n < len(b) {
		k, err := f.Read(b[n:])
		n += k
		if err != nil || k == 0 {
			break
		}
	}
	if int64(n) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return b[:n], nil
}

// ParseEnv is the strict manifest.env reader. Every line is blank, a comment
// starting with '#', or exactly KEY='value' with a known key and a value of
// A-Za-z0-9 _.,:/@=+%()- only. Anything else (unknown or duplicate key,
// missing quote, $, backtick, ;, backslash, CR, NUL, spaces around '=')
// rejects the whole file. It checks syntax and the key set only; FromEnv
// checks the meaning.
func ParseEnv(b []byte) (*Env, error) {
	if len(b) > MaxEnvSize {
		return nil, fmt.Errorf("manifest.env: larger than %d bytes", MaxEnvSize)
	}
	e := &Env{Values: map[string]string{}}
	s := string(b)
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil, errors.New("manifest.env: empty")
	}
	for n, line := range strings.Split(s, "\n") {
		ln := n + 1
		if line == "" || line[0] == '#' {
			if strings.ContainsAny(line, "\r\x00") {
				return nil, fmt.Errorf("manifest.env line %d: control character in a comment", ln)
			}
			continue
		}
		sm := reEnvLine.FindStringSubmatch(line)
		if sm == nil {
			return nil, fmt.Errorf("manifest.env line %d: %s", ln, whyBadLine(line))
		}
		k, v := sm[1], sm[2]
		if !KnownEnvKey(k) {
			return nil, fmt.Errorf("manifest.env line %d: unknown key %s", ln, k)
		}
		if _, dup := e.Values[k]; dup {
			return nil, fmt.Errorf("manifest.env line %d: duplicate key %s", ln, k)
		}
		e.set(k, v)
	}
	return e, nil
}

// whyBadLine explains a rejected line without echoing it (it may be hostile).
func whyBadLine(line string) string {
	eq := strings.IndexByte(line, '=')
	if eq < 0 {
		return "not a KEY='value' line"
	}
	k := line[:eq]
	if !regexp.MustCompile(`^DMTOOLS_[A-Z0-9_]+$`).MatchString(k) {
		return "key is not DMTOOLS_[A-Z0-9_]+ (no spaces, no export)"
	}
	v := line[eq+1:]
	if len(v) < 2 || v[0] != '\'' || v[len(v)-1] != '\'' {
		return fmt.Sprintf("value of %s is not in single quotes", k)
	}
	for _, c := range v[1 : len(v)-1] {
		if !reEnvValue.MatchString(string(c)) {
			if c < 0x20 || c > 0x7e {
				return fmt.Sprintf("value of %s holds a forbidden character (code %d)", k, c)
			}
			return fmt.Sprintf("value of %s holds a forbidden character %q", k, c)
		}
	}
	return fmt.Sprintf("bad line for %s", k)
}

// FromEnv rebuilds a Manifest from a parsed manifest.env and validates it.
// The env holds everything an activator needs (tables, names, sizes, key
// sizes and descriptions) but not every JSON parameter, so the result has
// the parameter objects filled only with what the env carries (and what the
// verity table spells out); WriteEnv of the result gives the same bytes as
// the original file. Missing keys, keys of layers beyond DMTOOLS_LAYERS, keys
// of the wrong target and malformed numbers are errors.
func FromEnv(e *Env) (*Manifest, error) {
	used := map[string]bool{}
	get := func(k string) (string, error) {
		v, ok := e.Values[k]
		if !ok {
			return "", fmt.Errorf("manifest.env: missing %s", k)
		}
		used[k] = true
		return v, nil
	}
	num := func(k string) (int64, error) {
		v, err := get(k)
		if err != nil {
			return 0, err
		}
		if v == "" || len(v) > 18 || strings.Trim(v, "0123456789") != "" || (len(v) > 1 && v[0] == '0') {
			return 0, fmt.Errorf("manifest.env: %s is not a decimal number", k)
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		return n, nil
	}
	var err error
	m := &Manifest{}
	var sv int64
	if sv, err = num("DMTOOLS_SCHEMA_VERSION"); err != nil {
		return nil, err
	}
	if sv != SchemaVersion {
		return nil, fmt.Errorf("manifest.env: unsupported DMTOOLS_SCHEMA_VERSION %d", sv)
	}
	m.SchemaVersion = int(sv)
	for _, f := range []struct {
		k string
		p *string
	}{{"DMTOOLS_STACK", &m.Stack}, {"DMTOOLS_PROFILE", &m.Profile}, {"DMTOOLS_NAME", &m.Name}, {"DMTOOLS_INPUT_SHA256", &m.Input.SHA256}} {
		if *f.p, err = get(f.k); err != nil {
			return nil, err
		}
	}
	if m.Input.Size, err = num("DMTOOLS_INPUT_SIZE"); err != nil {
		return nil, err
	}
	art := func(role, prefix string) (Artifact, error) {
		a := Artifact{Role: role}
		var err error
		if a.Path, err = get(prefix + "PATH"); err != nil {
			return a, err
		}
		if a.Size, err = num(prefix + "SIZE"); err != nil {
			return a, err
		}
		a.SHA256, err = get(prefix + "SHA256")
		return a, err
	}
	d, err := art(RoleData, "DMTOOLS_DATA_")
	if err != nil {
		return nil, err
	}
	m.Artifacts = append(m.Artifacts, d)
	needs, err := get("DMTOOLS_NEEDS_META")
	if err != nil {
		return nil, err
	}
	switch needs {
	case "1":
		mt, err := art(RoleMeta, "DMTOOLS_META_")
		if err != nil {
			return nil, err
		}
		m.Artifacts = append(m.Artifacts, mt)
	case "0":
	default:
		return nil, errors.New("manifest.env: DMTOOLS_NEEDS_META must be 0 or 1")
	}
	nl, err := num("DMTOOLS_LAYERS")
	if err != nil {
		return nil, err
	}
	if nl < 1 || nl > MaxLayers {
		return nil, fmt.Errorf("manifest.env: DMTOOLS_LAYERS %d out of range 1..%d", nl, MaxLayers)
	}
	top, err := get("DMTOOLS_TOP")
	if err != nil {
		return nil, err
	}
	for i := 0; i < int(nl); i++ {
		p := fmt.Sprintf("DMTOOLS_L%d_", i)
		l := Layer{Index: i, Device: DeviceLower}
		if i == 0 {
			l.Device = DeviceData
		}
		if l.Target, err = get(p + "TARGET"); err != nil {
			return nil, err
		}
		if l.Name, err = get(p + "NAME"); err != nil {
			return nil, err
		}
		if l.Sectors, err = num(p + "SECTORS"); err != nil {
			return nil, err
		}
		if l.Table, err = get(p + "TABLE"); err != nil {
			return nil, err
		}
		switch l.Target {
		case TargetVerity:
			v, err := verityFromTable(l.Table)
			if err != nil {
				return nil, fmt.Errorf("manifest.env: %sTABLE: %v", p, err)
			}
			if v.Opts, err = get(p + "VERITY_OPTS"); err != nil {
				return nil, err
			}
			rh, err := get(p + "VERITY_ROOT_HASH")
			if err != nil {
				return nil, err
			}
			if rh != v.RootHash {
				return nil, fmt.Errorf("manifest.env: %sVERITY_ROOT_HASH differs from the root hash in the table", p)
			}
			_, hasSig := e.Values[p+"VERITY_SIG_PATH"]
			if _, ok := e.Values[p+"VERITY_SIG_DESC"]; ok || hasSig {
				if v.RootHashSig, err = get(p + "VERITY_SIG_PATH"); err != nil {
					return nil, err
				}
				if v.RootHashSigKeyDesc, err = get(p + "VERITY_SIG_DESC"); err != nil {
					return nil, err
				}
			}
			l.Verity = v
		case TargetCrypt:
			c := &Crypt{}
			ks, err := num(p + "CRYPT_KEY_SIZE")
			if err != nil {
				return nil, err
			}
			c.KeySize = int(ks)
			if c.KeyDesc, err = get(p + "CRYPT_KEY_DESC"); err != nil {
				return nil, err
			}
			if err := cryptFromTable(l.Table, c); err != nil {
				return nil, fmt.Errorf("manifest.env: %sTABLE: %v", p, err)
			}
			l.Crypt = c
		case TargetIntegrity:
			g, err := integrityFromTable(l.Table)
			if err != nil {
				return nil, fmt.Errorf("manifest.env: %sTABLE: %v", p, err)
			}
			if _, ok := e.Values[p+"INTEGRITY_KEY_SIZE"]; ok || g.Hash == "hmac-sha256" {
				ks, err := num(p + "INTEGRITY_KEY_SIZE")
				if err != nil {
					return nil, err
				}
				g.KeySize = int(ks)
			}
			l.Integrity = g
		default:
			return nil, fmt.Errorf("manifest.env: %sTARGET %q unknown", p, l.Target)
		}
		m.Layers = append(m.Layers, l)
	}
	if m.Top() != top {
		return nil, errors.New("manifest.env: DMTOOLS_TOP is not the name of the top layer")
	}
	mo := Mount{}
	if mo.FSType, err = get("DMTOOLS_MOUNT_FSTYPE"); err != nil {
		return nil, err
	}
	if mo.NewRoot, err = get("DMTOOLS_NEWROOT"); err != nil {
		return nil, err
	}
	if mo.Options, err = get("DMTOOLS_MOUNT_OPTS"); err != nil {
		return nil, err
	}
	if mo != (Mount{}) {
		m.Mount = &mo
	}
	for _, k := range e.Keys {
		if !used[k] {
			return nil, fmt.Errorf("manifest.env: key %s does not belong to this stack", k)
		}
	}
	m.partial = true // the env lists no signature or boot artifacts
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("manifest.env: %w", err)
	}
	return m, nil
}

var placeholderDevice = map[string]string{"@DATA@": DeviceData, "@META@": DeviceMeta, "@LOWER@": DeviceLower}

// verityFromTable reads the parameters a verity table spells out.
func verityFromTable(t string) (*Verity, error) {
	w := strings.Split(t, " ")
	if len(w) != 13 || w[2] != TargetVerity {
		return nil, errors.New("not a verity table of 13 words")
	}
	v := &Verity{HashAlgorithm: w[10], RootHash: w[11], Salt: w[12]}
	var ok bool
	if v.DataDevice, ok = placeholderDevice[w[4]]; !ok {
		return nil, errors.New("verity data device is not a placeholder")
	}
	if v.HashDevice, ok = placeholderDevice[w[5]]; !ok {
		return nil, errors.New("verity hash device is not a placeholder")
	}
	nums := []*int64{nil, nil, nil, nil, nil}
	var ver, dbs, hbs int64
	nums[0], nums[1], nums[2], nums[3], nums[4] = &ver, &dbs, &hbs, &v.DataBlocks, &v.HashStartBlock
	for j, idx := range []int{3, 6, 7, 8, 9} {
		n, err := strconv.ParseInt(w[idx], 10, 64)
		if err != nil || n < 0 || n > 1<<40 {
			return nil, fmt.Errorf("verity table word %d is not a number", idx+1)
		}
		*nums[j] = n
	}
	v.Version, v.DataBlockSize, v.HashBlockSize = int(ver), int(dbs), int(hbs)
	return v, nil
}

// cryptFromTable fills cipher, iv_offset, offset and the optional arguments.
func cryptFromTable(t string, c *Crypt) error {
	w := strings.Split(t, " ")
	if len(w) < 8 || w[2] != TargetCrypt {
		return errors.New("not a crypt table")
	}
	c.Cipher = w[3]
	var err error
	if c.IVOffset, err = strconv.ParseInt(w[5], 10, 64); err != nil || c.IVOffset < 0 {
		return errors.New("crypt iv_offset is not a number")
	}
	if c.Offset, err = strconv.ParseInt(w[7], 10, 64); err != nil || c.Offset < 0 {
		return errors.New("crypt offset is not a number")
	}
	c.SectorSize = 512
	if len(w) > 8 {
		n, err := strconv.Atoi(w[8])
		if err != nil || n != len(w)-9 {
			return errors.New("crypt optional argument count does not match")
		}
		for _, a := range w[9:] {
			switch {
			case strings.HasPrefix(a, "sector_size:"):
				if c.SectorSize, err = strconv.Atoi(a[len("sector_size:"):]); err != nil {
					return errors.New("crypt sector_size is not a number")
				}
			case a == "iv_large_sectors":
				c.IVLargeSectors = true
			case strings.HasPrefix(a, "integrity:"):
				c.Integrity = a[len("integrity:"):]
			}
		}
	}
	return nil
}

// integrityFromTable fills what an integrity table spells out.
func integrityFromTable(t string) (*Integrity, error) {
	w := strings.Split(t, " ")
	if len(w) < 8 || w[2] != TargetIntegrity {
		return nil, errors.New("not an integrity table")
	}
	g := &Integrity{Mode: w[6], BlockSize: 512, Hash: "none", Layout: "interleaved", MetaDevice: DeviceNone}
	ts, err := strconv.Atoi(w[5])
	if err != nil {
		return nil, errors.New("integrity tag size is not a number")
	}
	g.TagSize = ts
	n, err := strconv.Atoi(w[7])
	if err != nil || n != len(w)-8 {
		return nil, errors.New("integrity optional argument count does not match")
	}
	num := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
	for _, a := range w[8:] {
		k, v, _ := strings.Cut(a, ":")
		switch k {
		case "meta_device":
			g.Layout, g.MetaDevice = "separate", DeviceMeta
		case "block_size":
			g.BlockSize = int(num(v))
		case "journal_sectors":
			g.JournalSectors = num(v)
		case "interleave_sectors":
			g.InterleaveSectors = num(v)
		case "buffer_sectors":
			g.BufferSectors = num(v)
		case "fix_padding":
			g.FixPadding = true
		case "fix_hmac":
			g.FixHmac = true
		case "internal_hash":
			alg, _, _ := strings.Cut(v, ":")
			switch alg {
			case "crc32c", "sha256":
				g.Hash = alg
			case "hmac(sha256)":
				g.Hash = "hmac-sha256"
			default:
				return nil, fmt.Errorf("integrity internal_hash %q unknown", alg)
			}
		}
	}
	return g, nil
}

package compose

// Boot-time outputs (spec/boot.md): boot/dm-mod.create, boot/veritytab,
// boot/integritytab and boot/crypttab, generated from the manifest's layers.
//
//   - dm-mod.create: the value of the kernel's dm-mod.create= parameter
//     (Documentation/admin-guide/device-mapper/dm-init.rst:
//     <name>,<uuid>,<minor>,<flags>,<table>[,<table>+][;<dev>...]). Written
//     for verity-only stacks without a root-hash signature: dm-init can create
//     only some targets (no integrity), a crypt table there would hold the key
//     in clear on the command line, and a signature needs a user-keyring key
//     that cannot exist before userspace runs.
//   - veritytab(5), integritytab(5), crypttab(5): one line per layer the tab can
//     express; a layer it cannot express (aead crypt, hash-none integrity,
//     iv_large_sectors) gets no line, and a tab without lines is not written.

import (
	"encoding/base64"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/rules-dm/rules_dm/tools/manifest"
)

// Boot file names under boot/.
const (
	BootDMModCreate  = "dm-mod.create"
	BootVeritytab    = "veritytab"
	BootIntegritytab = "integritytab"
	BootCrypttab     = "crypttab"
)

// BootDevs says how the boot files name the target's devices and key files.
type BootDevs struct {
	// Data and Meta: device specs used verbatim in every file when set;
	// when empty, the GPT partition labels <name>-data / <name>-meta, spelled
	// PARTLABEL=<label> in dm-mod.create (the kernel's early device lookup)
	// and /dev/disk/by-partlabel/<label> in the systemd tabs (udev links).
	Data, Meta string
	// KeyDir holds the key files the tabs name (<mapped name>.key);
	// default /etc/cryptsetup-keys.d.
	KeyDir string
}

// DefaultBootKeyDir is where crypttab/integritytab lines expect key files.
const DefaultBootKeyDir = "/etc/cryptsetup-keys.d"

var reBootDev = regexp.MustCompile(`^(/[A-Za-z0-9_.:+-]+)+$|^(PARTUUID|PARTLABEL|UUID|LABEL)=[A-Za-z0-9_.:+-]+$|^[0-9]+:[0-9]+$`)

// ValidBootDev reports whether s can name a device in every boot file: an
// absolute path, KEY=value (PARTUUID, PARTLABEL, UUID, LABEL) or major:minor,
// without commas, semicolons or blanks (the dm-mod.create separators).
func ValidBootDev(s string) bool { return len(s) <= 256 && reBootDev.MatchString(s) }

var reKeyDir = regexp.MustCompile(`^(/[A-Za-z0-9_.+-]+)+$`)

type bootFile struct {
	name string
	body []byte
}

// bootFiles renders the boot files for m (names and opts final). sig is the
// root-hash signature (nil when unsigned).
func bootFiles(m *manifest.Manifest, d BootDevs, sig []byte) ([]bootFile, error) {
	kernelDev := func(spec, label string) string {
		if spec != "" {
			return spec
		}
		return "PARTLABEL=" + label
	}
	udevDev := func(spec, label string) string {
		if spec != "" {
			return spec
		}
		return "/dev/disk/by-partlabel/" + label
	}
	keyDir := d.KeyDir
	if keyDir == "" {
		keyDir = DefaultBootKeyDir
	}
	if !reKeyDir.MatchString(keyDir) || strings.Contains(keyDir, "..") {
		return nil, usagef("--boot-key-dir %q: want an absolute path of A-Za-z0-9_.+- components", keyDir)
	}
	for _, s := range []string{d.Data, d.Meta} {
		if s != "" && !ValidBootDev(s) {
			return nil, usagef("boot device %q: want an absolute path, PARTUUID=/PARTLABEL=/UUID=/LABEL=<id> or major:minor (no blanks, commas or ;)", s)
		}
	}
	dataLabel, metaLabel := m.Name+"-data", m.Name+"-meta"
	// device of a layer reference, for the systemd tabs
	tabDev := func(ref string, i int) string {
		switch ref {
		case manifest.DeviceData:
			return udevDev(d.Data, dataLabel)
		case manifest.DeviceMeta:
			return udevDev(d.Meta, metaLabel)
		}
		return "/dev/mapper/" + m.Layers[i-1].Name
	}
	var out []bootFile
	// dm-mod.create
	if m.Stack == manifest.StackVerityOnly && m.Layers[0].Verity.RootHashSig == "" {
		l := m.Layers[0]
		devs := map[string]string{"DATA": kernelDev(d.Data, dataLabel), "META": kernelDev(d.Meta, metaLabel)}
		t := manifest.Substitute(l.Table, devs)
		if o := l.Verity.Opts; o != "" {
			w := strings.Fields(manifest.Substitute(o, devs))
			t += fmt.Sprintf(" %d %s", len(w), strings.Join(w, " "))
		}
		v := fmt.Sprintf("%s,,,ro,%s", l.Name, t)
		if err := CheckDMModCreate(v); err != nil {
			return nil, fmt.Errorf("internal: %w", err)
		}
		out = append(out, bootFile{BootDMModCreate, []byte(v + "\n")})
	}
	var vt, it, ct []string
	for i, l := range m.Layers {
		switch {
		case l.Verity != nil:
			v := l.Verity
			var opts []string
			if v.HashOffset != 0 {
				opts = append(opts, fmt.Sprintf("hash-offset=%d", v.HashOffset))
			}
			if !v.Superblock {
				opts = append(opts, "superblock=false", fmt.Sprintf("format=%d", v.Version),
					fmt.Sprintf("data-block-size=%d", v.DataBlockSize), fmt.Sprintf("hash-block-size=%d", v.HashBlockSize),
					fmt.Sprintf("data-blocks=%d", v.DataBlocks), "hash="+v.HashAlgorithm, "salt="+v.Salt)
			}
			if f := fecParams(v.Opts); f != nil {
				opts = append(opts, "fec-device="+tabDev(v.HashDevice, i),
					fmt.Sprintf("fec-offset=%d", f.start*int64(v.DataBlockSize)), fmt.Sprintf("fec-roots=%d", f.roots))
			}
			if v.RootHashSig != "" {
				opts = append(opts, "root-hash-signature=base64:"+base64.StdEncoding.EncodeToString(sig))
			}
			line := fmt.Sprintf("%s %s %s %s", l.Name, tabDev(v.DataDevice, i), tabDev(v.HashDevice, i), v.RootHash)
			if len(opts) > 0 {
				line += " " + strings.Join(opts, ",")
			}
			vt = append(vt, line)
		case l.Integrity != nil:
			g := l.Integrity
			if g.Hash == "none" {
				continue // AEAD tags: only dm-crypt knows them
			}
			key := "-"
			if g.Hash == "hmac-sha256" {
				key = path.Join(keyDir, l.Name+".key")
			}
			var opts []string
			dev := tabDev(l.Device, i)
			if g.MetaDevice == manifest.DeviceMeta {
				opts = append(opts, "data-device="+dev)
				dev = tabDev(manifest.DeviceMeta, i)
			}
			opts = append(opts, "integrity-algorithm="+g.Hash)
			it = append(it, fmt.Sprintf("%s %s %s %s", l.Name, dev, key, strings.Join(opts, ",")))
		case l.Crypt != nil:
			c := l.Crypt
			if c.Integrity != "" || c.IVLargeSectors {
				continue // crypttab's plain mode has no AEAD and no iv_large_sectors
			}
			opts := []string{"plain", "cipher=" + c.Cipher, fmt.Sprintf("size=%d", c.KeySize*8), fmt.Sprintf("sector-size=%d", c.SectorSize)}
			if i > 0 && m.Layers[i-1].Verity != nil {
				opts = append(opts, "read-only") // over a read-only verity mapping
			}
			if c.Offset != 0 {
				opts = append(opts, fmt.Sprintf("offset=%d", c.Offset))
			}
			if c.IVOffset != 0 {
				opts = append(opts, fmt.Sprintf("skip=%d", c.IVOffset))
			}
			ct = append(ct, fmt.Sprintf("%s %s %s %s", l.Name, tabDev(l.Device, i), path.Join(keyDir, l.Name+".key"), strings.Join(opts, ",")))
		}
	}
	head := "# rules_dm %s for stack %s (generated by dm-compose build; see spec/boot.md)\n"
	for _, t := range []struct {
		name  string
		lines []string
	}{{BootVeritytab, vt}, {BootIntegritytab, it}, {BootCrypttab, ct}} {
		if len(t.lines) == 0 {
			continue
		}
		out = append(out, bootFile{t.name, []byte(fmt.Sprintf(head, t.name, m.Stack) + strings.Join(t.lines, "\n") + "\n")})
	}
	return out, nil
}

type fec struct{ roots, blocks, start int64 }

// fecParams reads the FEC words of verity opts (nil without FEC).
func fecParams(opts string) *fec {
	w := strings.Fields(opts)
	f := &fec{}
	found := false
	for i := 0; i+1 < len(w); i++ {
		var n int64
		if _, err := fmt.Sscan(w[i+1], &n); err != nil {
			continue
		}
		switch w[i] {
		case "fec_roots":
			f.roots, found = n, true
		case "fec_blocks":
			f.blocks = n
		case "fec_start":
			f.start = n
		}
	}
	if !found {
		return nil
	}
	return f
}

// dmInitTargets are the targets dm-init accepts (drivers/md/dm-init.c).
var dmInitTargets = []string{"crypt", "delay", "linear", "snapshot-origin", "striped", "verity"}

// CheckDMModCreate parses a dm-mod.create= value by the grammar of
// dm-init.rst: devices separated by ';', each
// <name>,<uuid>,<minor>,<flags>,<table>[,<table>]... with flags ro or rw and
// tables "<start> <length> <target> <args>" of an allowed target, starting
// at 0 and contiguous; at most 4096 bytes (DM_MAX_STR_SIZE).
func CheckDMModCreate(v string) error {
	if len(v) > 4096 {
		return fmt.Errorf("dm-mod.create: %d bytes, the kernel takes at most 4096", len(v))
	}
	for _, dev := range strings.Split(v, ";") {
		f := strings.Split(dev, ",")
		if len(f) < 5 {
			return fmt.Errorf("dm-mod.create: device %q: want <name>,<uuid>,<minor>,<flags>,<table>", dev)
		}
		if !manifest.ValidName(f[0]) {
			return fmt.Errorf("dm-mod.create: bad name %q", f[0])
		}
		if f[2] != "" {
			var n uint
			if _, err := fmt.Sscan(f[2], &n); err != nil {
				return fmt.Errorf("dm-mod.create: minor %q is not a number", f[2])
			}
		}
		if f[3] != "ro" && f[3] != "rw" {
			return fmt.Errorf("dm-mod.create: flags %q, want ro or rw", f[3])
		}
		next := int64(0)
		for _, t := range f[4:] {
			w := strings.Fields(t)
			if strings.Join(w, " ") != t || len(w) < 4 {
				return fmt.Errorf("dm-mod.create: table %q: want <start> <length> <target> <args> with single spaces", t)
			}
			var start, length int64
			if _, err := fmt.Sscan(w[0], &start); err != nil || start != next {
				return fmt.Errorf("dm-mod.create: table start %q, want %d", w[0], next)
			}
			if _, err := fmt.Sscan(w[1], &length); err != nil || length <= 0 {
				return fmt.Errorf("dm-mod.create: table length %q", w[1])
			}
			next += length
			ok := false
			for _, a := range dmInitTargets {
				ok = ok || a == w[2]
			}
			if !ok {
				return fmt.Errorf("dm-mod.create: target %q cannot be created by dm-init", w[2])
			}
			if strings.ContainsAny(t, "@\"") {
				return fmt.Errorf("dm-mod.create: table %q holds a placeholder or quote", t)
			}
		}
	}
	return nil
}

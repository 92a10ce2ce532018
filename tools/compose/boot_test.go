package compose

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rules-dm/rules_dm/tools/manifest"
)

// Option names as the man pages list them (systemd 258: veritytab(5),
// integritytab(5), crypttab(5)); a value-taking option is listed with "=".
var (
	veritytabOpts = []string{"superblock=", "format=", "data-block-size=", "hash-block-size=", "data-blocks=",
		"hash-offset=", "salt=", "uuid=", "hash=", "fec-device=", "fec-offset=", "fec-roots=", "root-hash-file=",
		"root-hash-signature=", "ignore-corruption", "restart-on-corruption", "panic-on-corruption",
		"ignore-zero-blocks", "check-at-most-once", "_netdev", "noauto", "nofail", "x-initrd.attach"}
	integritytabOpts = []string{"allow-discards", "mode=", "journal-watermark=", "journal-commit-time=",
		"data-device=", "integrity-algorithm=", "x-initrd.attach"}
	crypttabOpts = []string{"cipher=", "discard", "hash=", "header=", "keyfile-offset=", "keyfile-size=",
		"keyfile-erase", "key-slot=", "keyfile-timeout=", "luks", "bitlk", "_netdev", "noauto", "nofail",
		"offset=", "plain", "read-only", "readonly", "same-cpu-crypt", "submit-from-crypt-cpus",
		"no-read-workqueue", "no-write-workqueue", "skip=", "size=", "sector-size=", "swap", "tcrypt",
		"tcrypt-hidden", "tcrypt-system", "tcrypt-veracrypt", "veracrypt-pim=", "timeout=", "tmp=", "tries=",
		"headless=", "verify", "password-echo=", "pkcs11-uri=", "fido2-device=", "tpm2-device=",
		"x-initrd.attach", "integrity-key-size="}
	reDevSpec = regexp.MustCompile(`^(/[^\s,]+|(UUID|PARTUUID|LABEL|PARTLABEL)=\S+)$`)
)

// checkOpts parses a comma-separated option field against a man page list.
func checkOpts(t *testing.T, tab, field string, allowed []string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, o := range strings.Split(field, ",") {
		k, v, hasV := strings.Cut(o, "=")
		name := k
		if hasV {
			name += "="
		}
		ok := false
		for _, a := range allowed {
			ok = ok || a == name
		}
		if !ok || (hasV && v == "") {
			t.Fatalf("%s: option %q is not in the man page's list", tab, o)
		}
		if _, dup := got[k]; dup {
			t.Fatalf("%s: option %q twice", tab, k)
		}
		got[k] = v
	}
	return got
}

// tabLines returns the non-comment lines of a tab, split at white space.
func tabLines(t *testing.T, body string) [][]string {
	t.Helper()
	if !strings.HasSuffix(body, "\n") {
		t.Fatal("tab without a final newline")
	}
	var out [][]string
	for _, l := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		out = append(out, strings.Fields(l))
	}
	return out
}

func devOK(t *testing.T, tab, d string) {
	t.Helper()
	if !reDevSpec.MatchString(d) {
		t.Fatalf("%s: device %q is not a path or UUID=/PARTLABEL=... spec", tab, d)
	}
}

// TestBootFilesGrammar builds every stack (and signed, FEC, hmac, aead
// variants) and parses boot/* back by the documented grammars.
func TestBootFilesGrammar(t *testing.T) {
	in := writeInput(t, 1<<20)
	_, key, cert := makeSigner(t)
	type variant struct {
		name  string
		stack string
		mod   func(*Options)
	}
	var vs []variant
	for _, st := range manifest.Stacks {
		vs = append(vs, variant{"default", st, func(*Options) {}})
	}
	vs = append(vs,
		variant{"signed", "verity-only", func(o *Options) { o.VeritySignKey, o.VeritySignCert = key, cert }},
		variant{"signed-vtc", "verity-then-crypt", func(o *Options) { o.VeritySignKey, o.VeritySignCert = key, cert }},
		variant{"fec-meta", "verity-only", func(o *Options) { o.VerityFECRoots = 4; o.HashOnMeta = true }},
		variant{"devs", "verity-only", func(o *Options) { o.Boot = BootDevs{Data: "/dev/vda", Meta: "/dev/vdb", KeyDir: "/run/keys"} }},
		variant{"hmac", "integrity-only", func(o *Options) {
			o.IntegrityHash, o.IntegrityKey, o.Boot.KeyDir = "hmac-sha256", make([]byte, 32), "/run/keys"
		}},
		variant{"interleaved", "crypt-then-integrity", func(o *Options) { o.IntegrityLayout = "interleaved" }},
		variant{"aead", "integrity-then-crypt", func(o *Options) { o.Profile, o.Key = "aead", key64[:32] }},
		variant{"large", "crypt-only", func(o *Options) { o.IVLargeSectors = true }},
	)
	for _, v := range vs {
		o := opts(in, filepath.Join(t.TempDir(), "out"), v.stack)
		v.mod(&o)
		m, err := Build(o)
		if err != nil {
			t.Fatalf("%s/%s: %v", v.stack, v.name, err)
		}
		files := map[string]string{}
		for _, a := range m.Artifacts {
			if a.Role != manifest.RoleBoot {
				continue
			}
			b, err := os.ReadFile(filepath.Join(o.OutDir, a.Path))
			if err != nil || int64(len(b)) != a.Size {
				t.Fatalf("%s/%s: %s: %v", v.stack, v.name, a.Path, err)
			}
			files[strings.TrimPrefix(a.Path, "boot/")] = string(b)
		}
		wantV, wantI, wantC := 0, 0, 0
		for _, l := range m.Layers {
			switch {
			case l.Verity != nil:
				wantV++
			case l.Integrity != nil && l.Integrity.Hash != "none":
				wantI++
			case l.Crypt != nil && l.Crypt.Integrity == "" && !l.Crypt.IVLargeSectors:
				wantC++
			}
		}
		tag := v.stack + "/" + v.name
		// dm-mod.create: verity-only, unsigned
		dmc, has := files[BootDMModCreate]
		if want := v.stack == "verity-only" && v.name != "signed"; has != want {
			t.Fatalf("%s: dm-mod.create present %v, want %v", tag, has, want)
		}
		if has {
			val := strings.TrimSuffix(dmc, "\n")
			if err := CheckDMModCreate(val); err != nil {
				t.Fatalf("%s: %v", tag, err)
			}
			f := strings.Split(val, ",")
			tbl := strings.Fields(f[4])
			l := m.Layers[0]
			if f[0] != l.Name || f[3] != "ro" || strings.Join(tbl[:3], " ") != "0 "+strconv.FormatInt(l.Sectors, 10)+" verity" {
				t.Fatalf("%s: dm-mod.create %q", tag, val)
			}
			data := "PARTLABEL=dmroot-data"
			if v.name == "devs" {
				data = "/dev/vda"
			}
			if tbl[4] != data || tbl[11] != l.Verity.RootHash {
				t.Fatalf("%s: dm-mod.create devices/root hash: %q", tag, val)
			}
			if l.Verity.Opts != "" {
				n, _ := strconv.Atoi(tbl[13])
				if n != len(tbl)-14 || !strings.Contains(val, " use_fec_from_device PARTLABEL=dmroot-meta ") {
					t.Fatalf("%s: dm-mod.create optional args: %q", tag, val)
				}
			}
		}
		// veritytab(5): volume-name data-device hash-device roothash [options]
		if vt, ok := files[BootVeritytab]; ok != (wantV > 0) {
			t.Fatalf("%s: veritytab present %v", tag, ok)
		} else if ok {
			lines := tabLines(t, vt)
			if len(lines) != wantV {
				t.Fatalf("%s: veritytab %d lines", tag, len(lines))
			}
			for _, f := range lines {
				if len(f) < 4 || len(f) > 5 || !manifest.ValidName(f[0]) {
					t.Fatalf("%s: veritytab line %q", tag, f)
				}
				devOK(t, "veritytab", f[1])
				devOK(t, "veritytab", f[2])
				var l *manifest.Layer
				for i := range m.Layers {
					if m.Layers[i].Name == f[0] {
						l = &m.Layers[i]
					}
				}
				if l == nil || l.Verity == nil || f[3] != l.Verity.RootHash {
					t.Fatalf("%s: veritytab line %q does not match a verity layer", tag, f)
				}
				op := map[string]string{}
				if len(f) == 5 {
					op = checkOpts(t, "veritytab", f[4], veritytabOpts)
				}
				if l.Verity.HashOffset != 0 && op["hash-offset"] != strconv.FormatInt(l.Verity.HashOffset, 10) {
					t.Fatalf("%s: veritytab hash-offset %q", tag, op["hash-offset"])
				}
				if s, ok := op["root-hash-signature"]; ok != (l.Verity.RootHashSig != "") {
					t.Fatalf("%s: veritytab signature %v", tag, ok)
				} else if ok {
					raw, _ := os.ReadFile(filepath.Join(o.OutDir, l.Verity.RootHashSig))
					if s != "base64:"+base64.StdEncoding.EncodeToString(raw) {
						t.Fatalf("%s: veritytab root-hash-signature differs from %s", tag, l.Verity.RootHashSig)
					}
				}
				if _, ok := op["fec-roots"]; ok != strings.Contains(l.Verity.Opts, "fec_roots") {
					t.Fatalf("%s: veritytab FEC options", tag)
				}
			}
		}
		// integritytab(5): volume-name block-device [keyfile|-] [options|-]
		if it, ok := files[BootIntegritytab]; ok != (wantI > 0) {
			t.Fatalf("%s: integritytab present %v", tag, ok)
		} else if ok {
			for _, f := range tabLines(t, it) {
				if len(f) < 2 || len(f) > 4 || !manifest.ValidName(f[0]) {
					t.Fatalf("%s: integritytab line %q", tag, f)
				}
				devOK(t, "integritytab", f[1])
				if len(f) > 2 && f[2] != "-" && !filepath.IsAbs(f[2]) {
					t.Fatalf("%s: integritytab key file %q", tag, f[2])
				}
				op := checkOpts(t, "integritytab", f[3], integritytabOpts)
				alg := op["integrity-algorithm"]
				if !strings.Contains("crc32c crc32 sha1 sha256 hmac-sha256", alg) || (alg == "hmac-sha256") != (f[2] != "-") {
					t.Fatalf("%s: integritytab algorithm %q with key %q", tag, alg, f[2])
				}
				if d, ok := op["data-device"]; ok {
					devOK(t, "integritytab data-device", d)
				}
			}
		}
		// crypttab(5): volume-name encrypted-device [key-file] [options]
		if ct, ok := files[BootCrypttab]; ok != (wantC > 0) {
			t.Fatalf("%s: crypttab present %v", tag, ok)
		} else if ok {
			for _, f := range tabLines(t, ct) {
				if len(f) != 4 || !manifest.ValidName(f[0]) || !filepath.IsAbs(f[2]) {
					t.Fatalf("%s: crypttab line %q", tag, f)
				}
				devOK(t, "crypttab", f[1])
				op := checkOpts(t, "crypttab", f[3], crypttabOpts)
				if _, ok := op["plain"]; !ok || op["cipher"] == "" || op["size"] == "" || op["sector-size"] == "" {
					t.Fatalf("%s: crypttab options %q", tag, f[3])
				}
			}
		}
	}
}

func TestCheckDMModCreate(t *testing.T) {
	good := []string{
		"vroot,,,ro,0 1740800 verity 254:0 254:0 1 4096 4096 217600 217600 sha1 76e9 5b35",
		"vroot,,,ro,0 8 verity a b c;vram,,,rw,0 32768 linear 1:0 0,32768 32768 linear 1:0 32768",
	}
	for _, g := range good {
		if err := CheckDMModCreate(g); err != nil {
			t.Errorf("%q: %v", g, err)
		}
	}
	bad := []string{
		"vroot,,,ro", "vroot,,,xx,0 8 verity a", "vroot,,,ro,0 8 integrity a b c",
		"vroot,,,ro,8 8 verity a b c", "vroot,,,ro,0 8 linear a 0,16 8 linear a 0", "v/x,,,ro,0 8 verity a b c",
		"vroot,,,ro,0 8 verity @DATA@ b c",
	}
	for _, b := range bad {
		if CheckDMModCreate(b) == nil {
			t.Errorf("%q accepted", b)
		}
	}
}

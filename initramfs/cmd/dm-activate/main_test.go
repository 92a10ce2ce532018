package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rules-dm/rules_dm/initramfs/internal/activate"
	"github.com/rules-dm/rules_dm/initramfs/internal/dm"
)

func envOf(kv ...string) activate.Getenv {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

type hookLog struct{ calls []string }

func (h *hookLog) hooks() activate.FailHooks {
	return activate.FailHooks{
		Sync:   func() { h.calls = append(h.calls, "sync") },
		Sysrq:  func() error { h.calls = append(h.calls, "sysrq"); return nil },
		Reboot: func() error { h.calls = append(h.calls, "reboot"); return nil },
		Shell:  func() error { h.calls = append(h.calls, "shell"); return errors.New("no shell") },
		Exit:   func(code int) { h.calls = append(h.calls, fmt.Sprintf("exit %d", code)) },
		Sleep:  func(time.Duration) {},
	}
}

func runWith(t *testing.T, args []string, env ...string) (int, string, string, *hookLog) {
	t.Helper()
	var out, errb bytes.Buffer
	h := &hookLog{}
	code := run(args, envOf(env...), &out, &errb, h.hooks())
	return code, out.String(), errb.String(), h
}

const key64 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

// Dry-run plans of every sample, for both file formats, in the bootstrap
// and the sealed phase, against goldens (testdata/<sample>/dryrun-*.txt).
func TestDryRunGoldens(t *testing.T) {
	for _, name := range sampleNames {
		for _, phase := range []string{"bootstrap", "sealed"} {
			var first string
			ckey := key64
			if name == "aead" {
				ckey = key64[:64] // AES-256-GCM: 32 bytes
			}
			for _, f := range []string{"manifest.json", "manifest.env"} {
				code, out, errs, _ := runWith(t, []string{filepath.Join("testdata", name, f)},
					"DATA_DEV", "/dev/vda", "META_DEV", "/dev/vdb", "CRYPT_KEY_HEX", ckey,
					"INTEGRITY_KEY_HEX", key64[:64], "DMTOOLS_PHASE", phase)
				if code != 0 || errs != "" {
					t.Fatalf("%s %s %s: exit %d: %s", name, phase, f, code, errs)
				}
				if strings.Contains(out, key64[:32]) {
					t.Errorf("%s: dry-run prints the key", name)
				}
				if first == "" {
					first = out
					checkFile(t, filepath.Join("testdata", name, "dryrun-"+phase+".txt"), []byte(out))
				} else if out != first {
					t.Errorf("%s %s: json and env plans differ:\n%s\n%s", name, phase, first, out)
				}
			}
		}
	}
	// Without devices and keys, a dry-run prints placeholders.
	_, out, _, _ := runWith(t, []string{"testdata/integrity-then-crypt/manifest.env"})
	if !strings.Contains(out, "integrity <DATA_DEV> 0 4 J 9 meta_device:<META_DEV>") {
		t.Errorf("placeholders:\n%s", out)
	}
}

func TestUsageAndRejections(t *testing.T) {
	dir := t.TempDir()
	hostile := map[string]string{
		"subst":    "DMTOOLS_SCHEMA_VERSION='1'\nDMTOOLS_STACK='$(reboot)'\n",
		"backtick": "DMTOOLS_SCHEMA_VERSION='1`reboot`'\n",
		"semi":     "DMTOOLS_SCHEMA_VERSION='1';reboot\n",
		"unknown":  "DMTOOLS_SCHEMA_VERSION='1'\nDMTOOLS_EVIL='x'\n",
		"noquote":  "DMTOOLS_SCHEMA_VERSION=1\n",
		"export":   "export DMTOOLS_SCHEMA_VERSION='1'\n",
		"newline":  "DMTOOLS_SCHEMA_VERSION='1\n'\n",
	}
	for name, body := range hostile {
		p := filepath.Join(dir, name+".env")
		os.WriteFile(p, []byte(body), 0o644)
		// Rejected with one line, no fail action: a dry-run (any phase) and
		// a bootstrap apply. (A sealed apply fails closed: TestSealedApplyFailsClosed.)
		for _, mp := range [][2]string{{"dry-run", "sealed"}, {"dry-run", "bootstrap"}, {"apply", "bootstrap"}} {
			code, out, errs, h := runWith(t, []string{p}, "MODE", mp[0], "DATA_DEV", "/dev/vda", "DMTOOLS_PHASE", mp[1])
			if code != 1 || out != "" || strings.Count(errs, "\n") != 1 || len(h.calls) != 0 {
				t.Errorf("hostile %s (%v): exit %d, stdout %q, stderr %q, hooks %v", name, mp, code, out, errs, h.calls)
			}
			if strings.Contains(errs, "reboot") {
				t.Errorf("hostile %s: the line is echoed: %s", name, errs)
			}
		}
	}
	good := "testdata/crypt-only/manifest.env"
	cases := []struct {
		args []string
		env  []string
		code int
		want string
	}{
		{nil, nil, 2, "expected exactly one argument"},
		{[]string{good, good}, nil, 2, "expected exactly one argument"},
		{[]string{"--frob"}, nil, 2, "expected exactly one argument"},
		{[]string{good}, []string{"MODE", "run"}, 2, "unknown MODE"},
		{[]string{good}, []string{"DMTOOLS_PHASE", "x"}, 2, "unknown DMTOOLS_PHASE"},
		{[]string{good}, []string{"DMTOOLS_FAIL_ACTION", "halt"}, 2, "unknown DMTOOLS_FAIL_ACTION"},
		{[]string{dir + "/missing.env"}, nil, 1, "no such file"},
		{[]string{good}, []string{"MODE", "apply"}, 1, "DATA_DEV is not set"},
		{[]string{good}, []string{"DMTOOLS_PHASE", "sealed", "DATA_DEV", "/dev/vda", "CRYPT_KEY_HEX", "00"}, 1, "crypt key is 1 bytes"},
		{[]string{good}, []string{"DATA_DEV", "/dev/vda", "CRYPT_KEY_HEX", "00"}, 1, "crypt key is 1 bytes, layer 0 expects 64"},
	}
	for _, c := range cases {
		code, _, errs, h := runWith(t, c.args, c.env...)
		if code != c.code || !strings.Contains(errs, c.want) || strings.Count(errs, "\n") != 1 || len(h.calls) != 0 {
			t.Errorf("%v %v: exit %d, stderr %q, hooks %v; want %d %q", c.args, c.env, code, errs, h.calls, c.code, c.want)
		}
	}
	code, out, _, _ := runWith(t, []string{"--help"})
	if code != 0 || !strings.Contains(out, "usage: dm-activate MANIFEST") {
		t.Errorf("--help: %d %q", code, out)
	}
}

// failingMapper refuses every table.
type failingMapper struct{ removed []string }

func (f *failingMapper) Status(name string) (dm.Info, error) {
	return dm.Info{}, fmt.Errorf("DM_DEV_STATUS %s: %w", name, unix.ENXIO)
}
func (f *failingMapper) Table(string) (dm.Info, []dm.Target, error) { return dm.Info{}, nil, nil }
func (f *failingMapper) InactiveTable(string) (dm.Info, []dm.Target, error) {
	return dm.Info{}, nil, nil
}
func (f *failingMapper) Create(string, string) (dm.Info, error) { return dm.Info{Dev: 0xfd00}, nil }
func (f *failingMapper) Load(name string, _ []dm.Target, _ bool) error {
	return errors.New("DM_TABLE_LOAD " + name + ": invalid argument")
}
func (f *failingMapper) Clear(string) error             { return nil }
func (f *failingMapper) Resume(string) (dm.Info, error) { return dm.Info{}, nil }
func (f *failingMapper) Remove(name string) error       { f.removed = append(f.removed, name); return nil }

// A failed activation: bootstrap exits 1; sealed takes its fail action.
func TestFailActionSelection(t *testing.T) {
	checkDevs = func(*activate.Config) error { return nil }
	defer func() { checkDevs = activate.CheckBlockDevs }()
	var fm *failingMapper
	openKernel = func() (*activate.Kernel, func(), error) {
		fm = &failingMapper{}
		return &activate.Kernel{Mapper: fm, RemoveNode: func(string) error { return nil }}, func() {}, nil
	}
	defer func() { openKernel = nil }()
	want := map[string]string{
		"panic":  "sync sysrq reboot exit 1",
		"reboot": "sync reboot exit 1",
		"shell":  "shell exit 1",
		"exit":   "exit 1",
	}
	for _, phase := range []string{"bootstrap", "sealed"} {
		for action, calls := range want {
			code, _, errs, h := runWith(t, []string{"testdata/verity-only/manifest.env"},
				"MODE", "apply", "DATA_DEV", "/dev/vda", "DMTOOLS_PHASE", phase, "DMTOOLS_FAIL_ACTION", action)
			got := strings.Join(h.calls, " ")
			if phase == "bootstrap" {
				calls = ""
			}
			if code != 1 || got != calls || !strings.Contains(errs, "table rejected") {
				t.Errorf("%s/%s: exit %d, hooks %q (want %q)\n%s", phase, action, code, got, calls, errs)
			}
			if phase == "sealed" && !strings.Contains(errs, "fail action: "+action) {
				t.Errorf("%s/%s: stderr\n%s", phase, action, errs)
			}
			if len(fm.removed) != 1 || fm.removed[0] != "dmroot" {
				t.Errorf("%s/%s: cleanup %v", phase, action, fm.removed)
			}
		}
	}
}

// The lead's rule: in a sealed apply, a bad manifest or environment fails
// closed (the fail action), not only exit 1; a dry-run and the bootstrap
// phase exit 1; usage errors exit 2 everywhere.
func TestSealedApplyFailsClosed(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "unknown.env")
	b, err := os.ReadFile("testdata/verity-only/manifest.env")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(unknown, append(b, "DMTOOLS_EVIL='x'\n"...), 0o644)
	// verity-sig without its signature file next to the manifest
	nosig := filepath.Join(dir, "manifest.json")
	b, err = os.ReadFile("testdata/verity-sig/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(nosig, b, 0o644)
	checkDevs = func(*activate.Config) error { return nil }
	defer func() { checkDevs = activate.CheckBlockDevs }()
	openKernel = func() (*activate.Kernel, func(), error) {
		t.Error("the kernel was opened for a rejected run")
		return nil, nil, errors.New("no")
	}
	defer func() { openKernel = nil }()
	vo, co := "testdata/verity-only/manifest.env", "testdata/crypt-only/manifest.json"
	cases := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"unknown key", []string{unknown}, []string{"DATA_DEV", "/dev/vda"}, "unknown key DMTOOLS_EVIL"},
		{"missing manifest", []string{dir + "/none.env"}, []string{"DATA_DEV", "/dev/vda"}, "no such file"},
		{"missing DATA_DEV", []string{vo}, nil, "DATA_DEV is not set"},
		{"relative DATA_DEV", []string{vo}, []string{"DATA_DEV", "vda"}, "DATA_DEV must be an absolute device path"},
		{"missing key", []string{co}, []string{"DATA_DEV", "/dev/vda"}, "needs CRYPT_KEY_HEX or CRYPT_KEY_BIN"},
		{"wrong key size", []string{co}, []string{"DATA_DEV", "/dev/vda", "CRYPT_KEY_HEX", key64[:64]}, "crypt key is 32 bytes, layer 0 expects 64"},
		{"both key forms", []string{co}, []string{"DATA_DEV", "/dev/vda", "CRYPT_KEY_HEX", key64, "CRYPT_KEY_BIN", "/k"}, "not both"},
		{"bad mount options", []string{vo}, []string{"DATA_DEV", "/dev/vda", "DMTOOLS_MOUNT_OPTS", "ro nodev"}, "DMTOOLS_MOUNT_OPTS"},
		{"missing signature", []string{nosig}, []string{"DATA_DEV", "/dev/vda", "CRYPT_KEY_HEX", key64}, "cannot read the root hash signature " + dir + "/verity.roothash.p7s"},
	}
	actions := map[string]string{
		"panic": "sync sysrq reboot exit 1", "reboot": "sync reboot exit 1", "shell": "shell exit 1", "exit": "exit 1",
	}
	for _, c := range cases {
		for action, calls := range actions {
			env := append([]string{"MODE", "apply", "DMTOOLS_PHASE", "sealed", "DMTOOLS_FAIL_ACTION", action}, c.env...)
			code, out, errs, h := runWith(t, c.args, env...)
			lines := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
			if code != 1 || out != "" || strings.Join(h.calls, " ") != calls || !strings.Contains(lines[0], c.want) ||
				len(lines) < 2 || lines[1] != "dm-activate: sealed boot failed; fail action: "+action {
				t.Errorf("%s, sealed apply, %s: exit %d, hooks %v (want %q), stderr:\n%s", c.name, action, code, h.calls, calls, errs)
			}
			if strings.Contains(errs, key64[:32]) {
				t.Errorf("%s: key printed", c.name)
			}
		}
		// bootstrap apply and sealed dry-run: exit 1, one line, no fail action
		for _, mp := range [][2]string{{"apply", "bootstrap"}, {"dry-run", "sealed"}} {
			if mp[0] == "dry-run" && (c.name == "missing signature" || c.name == "missing DATA_DEV" || c.name == "missing key") {
				continue // a dry-run needs no device, key or signature
			}
			env := append([]string{"MODE", mp[0], "DMTOOLS_PHASE", mp[1]}, c.env...)
			code, _, errs, h := runWith(t, c.args, env...)
			if code != 1 || len(h.calls) != 0 || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, c.want) {
				t.Errorf("%s, %v: exit %d, hooks %v, stderr:\n%s", c.name, mp, code, h.calls, errs)
			}
		}
	}
	// Usage errors stay exit 2, without a fail action, in a sealed apply too.
	for _, c := range []struct {
		args []string
		env  []string
	}{
		{nil, nil},
		{[]string{vo, vo}, nil},
		{[]string{vo}, []string{"DMTOOLS_FAIL_ACTION", "halt"}},
		{[]string{vo}, []string{"MODE", "aply"}},
	} {
		env := append([]string{"MODE", "apply", "DMTOOLS_PHASE", "sealed", "DATA_DEV", "/dev/vda"}, c.env...)
		code, _, errs, h := runWith(t, c.args, env...)
		if code != 2 || len(h.calls) != 0 || strings.Count(errs, "\n") != 1 {
			t.Errorf("usage %v %v: exit %d, hooks %v, stderr %q", c.args, c.env, code, h.calls, errs)
		}
	}
}

// A signed verity layer in a dry-run: the keyctl line names the signature
// next to the manifest, as apply_manifest.sh does (${path%/*}, or ".").
func TestDryRunSignaturePath(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"manifest.env", "manifest.json"} {
		b, err := os.ReadFile(filepath.Join("testdata/verity-sig", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	t.Chdir(dir)
	for path, want := range map[string]string{
		"manifest.env":        "./verity.roothash.p7s",
		"./manifest.json":     "./verity.roothash.p7s",
		dir + "/manifest.env": dir + "/verity.roothash.p7s",
		"../" + filepath.Base(dir) + "//manifest.json": "../" + filepath.Base(dir) + "//verity.roothash.p7s",
	} {
		code, out, errs, _ := runWith(t, []string{path}, "DATA_DEV", "/dev/vda", "CRYPT_KEY_HEX", key64)
		line := "keyctl padd user rules_dm:dmroot-verity:roothash-sig @u < " + want + "\n"
		if code != 0 || !strings.Contains(out, line) {
			t.Errorf("%s: exit %d %s\n%s(want %q)", path, code, errs, out, line)
		}
	}
}

package activate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rules-dm/rules_dm/initramfs/internal/dm"
	"github.com/rules-dm/rules_dm/tools/manifest"
)

// sample loads a sample manifest of dm-activate's testdata.
func sample(t *testing.T, name string) *manifest.Manifest {
	t.Helper()
	m, err := manifest.Load(filepath.Join("..", "..", "cmd", "dm-activate", "testdata", name, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func envOf(kv ...string) Getenv {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

var key64 = strings.Repeat("0123456789abcdef", 8) // 64 bytes
var key32 = strings.Repeat("fedcba9876543210", 4) // 32 bytes

func TestModePhaseFailActionValues(t *testing.T) {
	if m, err := ModeFromEnv(envOf()); err != nil || m != ModeDryRun {
		t.Errorf("default mode %q %v", m, err)
	}
	if _, err := ModeFromEnv(envOf("MODE", "go")); !IsUsage(err) {
		t.Errorf("MODE=go: %v", err)
	}
	p, a, err := PhaseFromEnv(envOf())
	if err != nil || p != PhaseBootstrap || a != FailPanic {
		t.Errorf("defaults %q %q %v", p, a, err)
	}
	for _, kv := range [][]string{{"DMTOOLS_PHASE", "late"}, {"DMTOOLS_FAIL_ACTION", "halt"}} {
		if _, _, err := PhaseFromEnv(envOf(kv...)); !IsUsage(err) {
			t.Errorf("%v: %v", kv, err)
		}
	}
}

func TestCorruptionOptAndMountDefaults(t *testing.T) {
	cases := []struct{ phase, action, want string }{
		{PhaseSealed, FailPanic, "panic_on_corruption"},
		{PhaseSealed, FailReboot, "restart_on_corruption"},
		{PhaseSealed, FailShell, ""},
		{PhaseSealed, FailExit, ""},
		{PhaseBootstrap, FailPanic, ""},
		{PhaseBootstrap, FailReboot, ""},
	}
	for _, c := range cases {
		if got := CorruptionOpt(c.phase, c.action); got != c.want {
			t.Errorf("CorruptionOpt(%s, %s) = %q, want %q", c.phase, c.action, got, c.want)
		}
	}
	if DefaultMountOpts(PhaseSealed, "ext4") != "ro,errors=panic" || DefaultMountOpts(PhaseSealed, "squashfs") != "ro" ||
		DefaultMountOpts(PhaseSealed, "") != "ro" || DefaultMountOpts(PhaseBootstrap, "ext4") != "" {
		t.Error("DefaultMountOpts")
	}
	f, d := SplitMountOpts("ro,errors=panic,noatime,data=ordered")
	if f != unix.MS_RDONLY|unix.MS_NOATIME || d != "errors=panic,data=ordered" {
		t.Errorf("SplitMountOpts: %#x %q", f, d)
	}
	if f, d := SplitMountOpts("ro,rw"); f != 0 || d != "" {
		t.Errorf("ro,rw: %#x %q", f, d)
	}
}

func TestSealMountOpts(t *testing.T) {
	for _, c := range []struct{ phase, fs, in, want string }{
		{PhaseSealed, "ext4", "ro", "ro,errors=panic"},
		{PhaseSealed, "ext4", "ro,noatime", "ro,noatime,errors=panic"},
		{PhaseSealed, "ext4", "ro,errors=remount-ro", "ro,errors=remount-ro"},
		{PhaseSealed, "ext4", "", ""},
		{PhaseSealed, "squashfs", "ro", "ro"},
		{PhaseBootstrap, "ext4", "ro", "ro"},
	} {
		if got := SealMountOpts(c.phase, c.fs, c.in); got != c.want {
			t.Errorf("SealMountOpts(%s, %s, %q) = %q, want %q", c.phase, c.fs, c.in, got, c.want)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	m := sample(t, "verity-meta") // mount: ext4 /sysroot ro,noatime
	c, err := ConfigFromEnv(envOf("DATA_DEV", "/dev/vda", "META_DEV", "/dev/vdb", "DMTOOLS_PHASE", "sealed"), m)
	if err != nil {
		t.Fatal(err)
	}
	// sealed: the manifest's ext4 options get errors=panic
	if c.NewRoot != "/sysroot" || c.FSType != "ext4" || c.MountOpt != "ro,noatime,errors=panic" || !c.Mounts() {
		t.Errorf("manifest mount defaults: %+v", c)
	}
	c, err = ConfigFromEnv(envOf("DATA_DEV", "/dev/vda", "META_DEV", "/dev/vdb", "DMTOOLS_NEWROOT", "/mnt",
		"DMTOOLS_MOUNT_FSTYPE", "xfs", "DMTOOLS_MOUNT_OPTS", "ro,nodev"), m)
	if err != nil || c.NewRoot != "/mnt" || c.FSType != "xfs" || c.MountOpt != "ro,nodev" || c.Mounts() {
		t.Errorf("env overrides: %+v %v", c, err)
	}
	// Sealed default options come from the phase when the manifest has none.
	c, err = ConfigFromEnv(envOf("DATA_DEV", "/dev/vda", "DMTOOLS_PHASE", "sealed"), sample(t, "verity-only"))
	if err != nil || c.MountOpt != "ro,errors=panic" || c.NewRoot != "/newroot" {
		t.Errorf("sealed defaults: %+v %v", c, err)
	}
	// Dry-run without devices or keys prints placeholders.
	c, err = ConfigFromEnv(envOf(), sample(t, "integrity-then-crypt"))
	if err != nil || c.DataDev != "<DATA_DEV>" || c.MetaDev != "<META_DEV>" {
		t.Errorf("dry-run placeholders: %+v %v", c, err)
	}
	dir := t.TempDir()
	kf := filepath.Join(dir, "key")
	if err := os.WriteFile(kf, make([]byte, 64), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		env  []string
		want string
	}{
		{"integrity-only", []string{"MODE", "apply", "DATA_DEV", "/dev/vda"}, "META_DEV is not set"},
		{"crypt-only", []string{"MODE", "apply"}, "DATA_DEV is not set"},
		{"crypt-only", []string{"DATA_DEV", "vda"}, "absolute device path"},
		{"crypt-only", []string{"DATA_DEV", "/dev/vda 0 /dev/vdb"}, "absolute device path"},
		{"crypt-only", []string{"DATA_DEV", "/dev/$(reboot)"}, "absolute device path"},
		{"crypt-only", []string{"MODE", "apply", "DATA_DEV", "/dev/vda"}, "needs CRYPT_KEY_HEX or CRYPT_KEY_BIN"},
		{"crypt-only", []string{"DATA_DEV", "/dev/vda", "CRYPT_KEY_HEX", key32}, "crypt key is 32 bytes, layer 0 expects 64"},
		{"crypt-only", []string{"DATA_DEV", "/dev/vda", "CRYPT_KEY_HEX", "xyz"}, "CRYPT_KEY_HEX is not hex"},
		{"crypt-only", []string{"DATA_DEV", "/dev/vda", "CRYPT_KEY_HEX", "abc"}, "odd number"},
		{"crypt-only", []string{"DATA_DEV", "/dev/vda", "CRYPT_KEY_HEX", key64, "CRYPT_KEY_BIN", kf}, "not both"},
		{"crypt-only", []string{"DATA_DEV", "/dev/vda", "CRYPT_KEY_BIN", dir + "/nokey"}, "cannot read the key file"},
		{"integrity-hmac", []string{"DATA_DEV", "/dev/vda", "META_DEV", "/dev/vdb", "INTEGRITY_KEY_BIN", kf}, "integrity key is 64 bytes, layer 0 expects 32"},
		{"integrity-hmac", []string{"MODE", "apply", "DATA_DEV", "/dev/vda", "META_DEV", "/dev/vdb"}, "needs INTEGRITY_KEY_HEX"},
		{"verity-only", []string{"DATA_DEV", "/dev/vda", "DMTOOLS_NEWROOT", "/new root"}, "DMTOOLS_NEWROOT"},
		{"verity-only", []string{"DATA_DEV", "/dev/vda", "DMTOOLS_MOUNT_OPTS", "ro errors=continue"}, "DMTOOLS_MOUNT_OPTS"},
		{"verity-only", []string{"DATA_DEV", "/dev/vda", "DMTOOLS_MOUNT_FSTYPE", "ext4;x"}, "DMTOOLS_MOUNT_FSTYPE"},
	}
	for _, b := range bad {
		_, err := ConfigFromEnv(envOf(b.env...), sample(t, b.name))
		if err == nil || !strings.Contains(err.Error(), b.want) || IsUsage(err) {
			t.Errorf("%s %v: got %v, want a plain error with %q", b.name, b.env, err, b.want)
		}
		if err != nil && (strings.Contains(err.Error(), key64) || strings.Contains(err.Error(), key32)) {
			t.Errorf("error holds the key: %v", err)
		}
	}
	if _, err := ConfigFromEnv(envOf("DATA_DEV", "/dev/vda", "CRYPT_KEY_BIN", kf), sample(t, "crypt-only")); err != nil {
		t.Errorf("64-byte key file: %v", err)
	}
}

// Every stack: layer order, names, read-only flags, substituted devices and
// the verity optional arguments per phase and fail action.
func TestBuildPlanAllStacks(t *testing.T) {
	type want struct {
		names []string
		ro    []bool
		lower []string // a word each table must hold
	}
	wants := map[string]want{
		"crypt-only":           {[]string{"dmroot"}, []bool{false}, []string{" /dev/vda "}},
		"integrity-only":       {[]string{"dmroot"}, []bool{false}, []string{"meta_device:/dev/vdb"}},
		"integrity-then-crypt": {[]string{"dmroot-integrity", "dmroot"}, []bool{false, false}, []string{" /dev/vda ", " /dev/mapper/dmroot-integrity "}},
		"crypt-then-integrity": {[]string{"dmroot-crypt", "dmroot"}, []bool{false, false}, []string{" /dev/vda ", " /dev/mapper/dmroot-crypt "}},
		"verity-only":          {[]string{"dmroot"}, []bool{true}, []string{" /dev/vda /dev/vda "}},
		"verity-then-crypt":    {[]string{"dmroot-verity", "dmroot"}, []bool{true, true}, []string{" /dev/vda /dev/vda ", " /dev/mapper/dmroot-verity "}},
		"crypt-then-verity":    {[]string{"dmroot-crypt", "dmroot"}, []bool{false, true}, []string{" /dev/vda ", " /dev/mapper/dmroot-crypt /dev/mapper/dmroot-crypt "}},
		"integrity-hmac":       {[]string{"dmroot"}, []bool{false}, []string{"internal_hash:hmac(sha256):@IKEY@"}},
		"verity-meta":          {[]string{"dmroot"}, []bool{true}, []string{" /dev/vda /dev/vdb "}},
	}
	for name, w := range wants {
		for _, pa := range [][2]string{{"bootstrap", "panic"}, {"sealed", "panic"}, {"sealed", "reboot"}, {"sealed", "exit"}, {"sealed", "shell"}} {
			m := sample(t, name)
			c, err := ConfigFromEnv(envOf("DATA_DEV", "/dev/vda", "META_DEV", "/dev/vdb", "DMTOOLS_PHASE", pa[0], "DMTOOLS_FAIL_ACTION", pa[1]), m)
			if err != nil {
				t.Fatal(err)
			}
			p, err := BuildPlan(m, c)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(p.Steps) != len(w.names) || p.TopDev != "/dev/mapper/dmroot" || p.Mount != (pa[0] == "sealed") {
				t.Fatalf("%s: %d steps, top %s, mount %v", name, len(p.Steps), p.TopDev, p.Mount)
			}
			for i, s := range p.Steps {
				if s.Name != w.names[i] || s.ReadOnly != w.ro[i] || !strings.Contains(s.Table+" ", w.lower[i]) {
					t.Errorf("%s step %d: %+v", name, i, s)
				}
				if strings.Contains(s.Table, "@DATA@") || strings.Contains(s.Table, "@META@") || strings.Contains(s.Table, "@LOWER@") {
					t.Errorf("%s step %d: unresolved device in %q", name, i, s.Table)
				}
				if s.Target == "verity" {
					opt := CorruptionOpt(pa[0], pa[1])
					var words []string
					if name == "verity-meta" {
						words = append(words, "ignore_zero_blocks")
					}
					if opt != "" {
						words = append(words, opt)
					}
					suffix := "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
					if len(words) > 0 {
						suffix += fmt.Sprintf(" %d %s", len(words), strings.Join(words, " "))
					}
					if !strings.HasSuffix(s.Table, suffix) {
						t.Errorf("%s %v: verity table %q does not end in %q", name, pa, s.Table, suffix)
					}
				}
			}
		}
	}
	// DMTOOLS_READONLY=1 makes every layer read-only.
	m := sample(t, "crypt-then-integrity")
	c, _ := ConfigFromEnv(envOf("DATA_DEV", "/dev/vda", "META_DEV", "/dev/vdb", "DMTOOLS_READONLY", "1"), m)
	p, _ := BuildPlan(m, c)
	for _, s := range p.Steps {
		if !s.ReadOnly {
			t.Errorf("DMTOOLS_READONLY: %s read-write", s.Name)
		}
	}
}

// ---- apply against a fake kernel ----

type fakeDev struct {
	dev      uint64
	active   []dm.Target
	inactive []dm.Target
	ro       bool
	open     int32
}

type fakeMapper struct {
	devs    map[string]*fakeDev
	log     []string
	next    uint32
	failOn  string // "load:<name>" or "resume:<name>" or "create:<name>"
	failErr error
	seen    [][]byte // every parameter buffer passed to Load (to check wiping)
}

func newFake() *fakeMapper { return &fakeMapper{devs: map[string]*fakeDev{}} }

func (f *fakeMapper) fail(op, name string) error {
	if f.failOn == op+":"+name {
		return f.failErr
	}
	return nil
}

func clone(ts []dm.Target) []dm.Target {
	var out []dm.Target
	for _, t := range ts {
		t.Params = append([]byte(nil), t.Params...)
		out = append(out, t)
	}
	return out
}

func (f *fakeMapper) Status(name string) (dm.Info, error) {
	d, ok := f.devs[name]
	if !ok {
		return dm.Info{}, fmt.Errorf("DM_DEV_STATUS %s: %w", name, unix.ENXIO)
	}
	in := dm.Info{Dev: d.dev, OpenCount: d.open}
	if d.active != nil {
		in.Flags |= dm.FlagActivePresent
	}
	return in, nil
}
func (f *fakeMapper) Table(name string) (dm.Info, []dm.Target, error) {
	return dm.Info{}, clone(f.devs[name].active), nil
}
func (f *fakeMapper) InactiveTable(name string) (dm.Info, []dm.Target, error) {
	return dm.Info{}, clone(f.devs[name].inactive), nil
}
func (f *fakeMapper) Create(name, uuid string) (dm.Info, error) {
	f.log = append(f.log, "create "+name)
	if err := f.fail("create", name); err != nil {
		return dm.Info{}, err
	}
	if _, ok := f.devs[name]; ok {
		return dm.Info{}, unix.EBUSY
	}
	f.next++
	f.devs[name] = &fakeDev{dev: unix.Mkdev(253, f.next)}
	return dm.Info{Dev: f.devs[name].dev}, nil
}
func (f *fakeMapper) Load(name string, ts []dm.Target, ro bool) error {
	f.log = append(f.log, fmt.Sprintf("load %s ro=%v %s %s", name, ro, ts[0].Type, ts[0].Params))
	f.seen = append(f.seen, ts[0].Params)
	if err := f.fail("load", name); err != nil {
		return err
	}
	f.devs[name].inactive = clone(ts)
	f.devs[name].ro = ro
	return nil
}
func (f *fakeMapper) Clear(name string) error {
	f.log = append(f.log, "clear "+name)
	f.devs[name].inactive = nil
	return nil
}
func (f *fakeMapper) Resume(name string) (dm.Info, error) {
	f.log = append(f.log, "resume "+name)
	if err := f.fail("resume", name); err != nil {
		return dm.Info{}, err
	}
	d := f.devs[name]
	d.active, d.inactive = d.inactive, nil
	return dm.Info{Dev: d.dev}, nil
}
func (f *fakeMapper) Remove(name string) error {
	f.log = append(f.log, "remove "+name)
	delete(f.devs, name)
	return nil
}

type fakeSys struct {
	f        *fakeMapper
	keys     map[int]string
	unlinked []int
	nodes    map[string]uint64
	mounted  string
	mountErr error
	keyErr   error
	cmds     []string
	readErr  error
	reads    int
}

func (s *fakeSys) kernel() *Kernel {
	return &Kernel{
		Mapper: s.f,
		AddKey: func(desc string, key []byte) (string, int, error) {
			if s.keyErr != nil {
				return "", 0, s.keyErr
			}
			id := 100 + len(s.keys)
			s.keys[id] = desc
			return fmt.Sprintf(":%d:logon:%s", len(key), desc), id, nil
		},
		AddUserKey: func(desc string, payload []byte) (int, error) {
			id := 100 + len(s.keys)
			s.keys[id] = "user:" + desc
			return id, nil
		},
		KeyUnusable: func(err error) bool { return errors.Is(err, unix.ENOSYS) },
		UnlinkKey:   func(id int) error { s.unlinked = append(s.unlinked, id); return nil },
		MakeNode: func(name string, dev uint64) (string, error) {
			s.nodes[name] = dev
			return "/dev/mapper/" + name, nil
		},
		RemoveNode: func(name string) error { delete(s.nodes, name); return nil },
		ReadAll:    func(string) error { s.reads++; return s.readErr },
		Mount: func(dev string, c *Config) error {
			if s.mountErr != nil {
				return s.mountErr
			}
			s.mounted = fmt.Sprintf("%s %s %s %s", dev, c.NewRoot, c.FSType, c.MountOpt)
			return nil
		},
		RunMountCmd: func(cmd, _ string, env []string) error {
			s.cmds = append(s.cmds, cmd+" | "+strings.Join(env, " "))
			return nil
		},
	}
}

func newSys() *fakeSys {
	return &fakeSys{f: newFake(), keys: map[int]string{}, nodes: map[string]uint64{}}
}

func planFor(t *testing.T, name string, kv ...string) *Plan {
	t.Helper()
	m := sample(t, name)
	env := append([]string{"MODE", "apply", "DATA_DEV", "/dev/vda", "META_DEV", "/dev/vdb", "CRYPT_KEY_HEX", key64, "INTEGRITY_KEY_HEX", key32}, kv...)
	c, err := ConfigFromEnv(envOf(env...), m)
	if err != nil {
		t.Fatal(err)
	}
	p, err := BuildPlan(m, c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func apply(t *testing.T, p *Plan, s *fakeSys) (string, error) {
	t.Helper()
	keys, err := LoadKeys(p)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	err = Apply(p, s.kernel(), keys, &log)
	keys.Wipe()
	for _, b := range [][]byte{keys.Crypt, keys.Integrity} {
		if len(b) > 0 && !bytes.Equal(b, make([]byte, len(b))) {
			t.Error("key buffer not wiped")
		}
	}
	for _, b := range s.f.seen {
		if bytes.Contains(b, []byte(key64)) || bytes.Contains(b, []byte(key32)) || bytes.Contains(b, []byte("logon")) {
			t.Error("table parameters not wiped after load")
		}
	}
	if strings.Contains(log.String(), key64) || strings.Contains(log.String(), key32) {
		t.Error("log holds a key")
	}
	return log.String(), err
}

func TestApplyAllStacks(t *testing.T) {
	for _, name := range []string{"crypt-only", "integrity-only", "integrity-then-crypt", "crypt-then-integrity",
		"verity-only", "verity-then-crypt", "crypt-then-verity", "integrity-hmac", "verity-meta"} {
		s := newSys()
		p := planFor(t, name, "DMTOOLS_PHASE", "sealed")
		log, err := apply(t, p, s)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, log)
		}
		if len(s.f.devs) != len(p.Steps) || len(s.nodes) != len(p.Steps) {
			t.Errorf("%s: %d devices, %d nodes", name, len(s.f.devs), len(s.nodes))
		}
		for i, st := range p.Steps {
			d := s.f.devs[st.Name]
			if d == nil || d.active == nil || d.ro != st.ReadOnly || s.nodes[st.Name] != d.dev {
				t.Fatalf("%s: layer %d %s not active as planned", name, i, st.Name)
			}
			params := string(d.active[0].Params)
			switch st.Target {
			case "crypt":
				if !strings.HasPrefix(params, "aes-xts-plain64 :64:logon:rules_dm:dmroot 0 ") {
					t.Errorf("%s: crypt params %q", name, params)
				}
			case "integrity":
				if name == "integrity-hmac" && !strings.HasSuffix(params, "internal_hash:hmac(sha256):"+key32) {
					t.Errorf("%s: hmac key not in the table: %q", name, params)
				}
			case "verity":
				if !strings.HasSuffix(params, " 1 panic_on_corruption") && !strings.HasSuffix(params, " 2 ignore_zero_blocks panic_on_corruption") {
					t.Errorf("%s: verity params %q", name, params)
				}
			}
		}
		// keys: loaded once into @u and unlinked after the tables hold them
		if p.Steps[0].CryptKeySize > 0 || (len(p.Steps) > 1 && p.Steps[1].CryptKeySize > 0) {
			if len(s.keys) != 1 || len(s.unlinked) != 1 || s.keys[s.unlinked[0]] != "rules_dm:dmroot" {
				t.Errorf("%s: keys %v unlinked %v", name, s.keys, s.unlinked)
			}
		} else if len(s.keys) != 0 {
			t.Errorf("%s: keys %v for a keyless stack", name, s.keys)
		}
		wantMount := "/dev/mapper/dmroot /newroot ext4 ro,errors=panic"
		if name == "verity-meta" {
			wantMount = "/dev/mapper/dmroot /sysroot ext4 ro,noatime,errors=panic"
		}
		if s.mounted != wantMount {
			t.Errorf("%s: mounted %q", name, s.mounted)
		}
		if !strings.Contains(log, "dm-activate: activated /dev/mapper/dmroot ("+p.Stack+", sealed)") {
			t.Errorf("%s: log\n%s", name, log)
		}
		// Idempotent: a second run keeps everything.
		before := len(s.f.log)
		log, err = apply(t, p, s)
		if err != nil {
			t.Fatalf("%s: second run: %v\n%s", name, err, log)
		}
		for _, l := range s.f.log[before:] {
			if strings.HasPrefix(l, "create") || strings.HasPrefix(l, "remove") || strings.HasPrefix(l, "resume") {
				t.Errorf("%s: second run did %q", name, l)
			}
		}
		if strings.Count(log, "already active with the same table") != len(p.Steps) {
			t.Errorf("%s: second run log\n%s", name, log)
		}
	}
}

func TestApplyCleansUpTopDown(t *testing.T) {
	for _, failOn := range []string{"load:dmroot", "resume:dmroot", "create:dmroot"} {
		s := newSys()
		s.f.failOn, s.f.failErr = failOn, unix.EINVAL
		p := planFor(t, "verity-then-crypt")
		log, err := apply(t, p, s)
		if err == nil || !errors.Is(err, unix.EINVAL) {
			t.Fatalf("%s: err %v", failOn, err)
		}
		if len(s.f.devs) != 0 || len(s.nodes) != 0 {
			t.Errorf("%s: left %v %v", failOn, s.f.devs, s.nodes)
		}
		// removal order: top first
		var removes []string
		for _, l := range s.f.log {
			if strings.HasPrefix(l, "remove") {
				removes = append(removes, l)
			}
		}
		want := []string{"remove dmroot", "remove dmroot-verity"}
		if failOn == "create:dmroot" {
			want = want[1:]
		}
		if strings.Join(removes, ",") != strings.Join(want, ",") {
			t.Errorf("%s: removes %v, want %v\n%s", failOn, removes, want, log)
		}
		if len(s.unlinked) != 1 {
			t.Errorf("%s: key not unlinked on failure", failOn)
		}
	}
	// A mount failure also removes what this run created; pre-existing
	// mappings stay.
	s := newSys()
	p := planFor(t, "verity-then-crypt", "DMTOOLS_PHASE", "sealed")
	if _, err := apply(t, p, s); err != nil {
		t.Fatal(err)
	}
	delete(s.f.devs, "dmroot")
	s.mountErr = errors.New("mount of /dev/mapper/dmroot on /newroot failed: invalid argument")
	if _, err := apply(t, p, s); err == nil {
		t.Fatal("mount failure not reported")
	}
	if _, ok := s.f.devs["dmroot-verity"]; !ok || len(s.f.devs) != 1 {
		t.Errorf("after mount failure: %v", s.f.devs)
	}
}

func TestApplyExistingMappings(t *testing.T) {
	// different table: refused, nothing removed
	s := newSys()
	p := planFor(t, "verity-only")
	if _, err := apply(t, p, s); err != nil {
		t.Fatal(err)
	}
	p2 := planFor(t, "verity-only", "DMTOOLS_PHASE", "sealed", "DMTOOLS_FAIL_ACTION", "reboot")
	_, err := apply(t, p2, s)
	if err == nil || !strings.Contains(err.Error(), "already exists with a different table") {
		t.Fatalf("different table: %v", err)
	}
	if s.f.devs["dmroot"] == nil || s.f.devs["dmroot"].inactive != nil {
		t.Error("live mapping removed or inactive slot not cleared")
	}
	// stale mapping without a table: removed and made again
	s = newSys()
	s.f.devs["dmroot"] = &fakeDev{dev: unix.Mkdev(253, 9)}
	log, err := apply(t, p, s)
	if err != nil || !strings.Contains(log, "exists without a table") || s.f.devs["dmroot"].active == nil {
		t.Errorf("stale: %v\n%s", err, log)
	}
	// stale and open: refused
	s = newSys()
	s.f.devs["dmroot"] = &fakeDev{dev: unix.Mkdev(253, 9), open: 1}
	if _, err := apply(t, p, s); err == nil {
		t.Error("open stale mapping replaced")
	}
}

func TestApplyKeyringFallbackAndErrors(t *testing.T) {
	s := newSys()
	s.keyErr = fmt.Errorf("add_key: %w", unix.ENOSYS)
	p := planFor(t, "crypt-only")
	log, err := apply(t, p, s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log, "no kernel keyring") || !strings.HasPrefix(string(s.f.devs["dmroot"].active[0].Params), "aes-xts-plain64 "+key64+" 0 /dev/vda") {
		t.Errorf("hex fallback:\n%s", log)
	}
	s = newSys()
	s.keyErr = fmt.Errorf("add_key: %w", unix.EDQUOT)
	if _, err := apply(t, p, s); err == nil || len(s.f.devs) != 0 {
		t.Errorf("keyring error: %v", err)
	}
}

func TestApplyReadCheckAndMountCmd(t *testing.T) {
	s := newSys()
	p := planFor(t, "integrity-only", "DMTOOLS_PHASE", "sealed", "DMTOOLS_SEALED_READCHECK", "1", "DMTOOLS_MOUNT_CMD", "mount -r $DMTOOLS_TOP_DEV /x")
	if _, err := apply(t, p, s); err != nil {
		t.Fatal(err)
	}
	if s.reads != 1 || len(s.cmds) != 1 || s.mounted != "" ||
		!strings.Contains(s.cmds[0], "DMTOOLS_TOP_DEV=/dev/mapper/dmroot DMTOOLS_NEWROOT=/newroot") {
		t.Errorf("reads %d cmds %v mounted %q", s.reads, s.cmds, s.mounted)
	}
	s = newSys()
	s.readErr = unix.EIO
	_, err := apply(t, p, s)
	if err == nil || !strings.Contains(err.Error(), "read check of /dev/mapper/dmroot failed") || len(s.f.devs) != 0 {
		t.Errorf("read check failure: %v, left %v", err, s.f.devs)
	}
	// bootstrap without DMTOOLS_MOUNT_CMD: no mount
	s = newSys()
	p = planFor(t, "integrity-only")
	if _, err := apply(t, p, s); err != nil || s.mounted != "" || len(s.cmds) != 0 {
		t.Errorf("bootstrap mounted: %v %q %v", err, s.mounted, s.cmds)
	}
}

func TestFailActions(t *testing.T) {
	for _, action := range []string{FailPanic, FailReboot, FailShell, FailExit} {
		var calls []string
		h := FailHooks{
			Sync:   func() { calls = append(calls, "sync") },
			Sysrq:  func() error { calls = append(calls, "sysrq"); return nil },
			Reboot: func() error { calls = append(calls, "reboot"); return nil },
			Shell:  func() error { calls = append(calls, "shell"); return errors.New("no /bin/sh") },
			Exit:   func(code int) { calls = append(calls, fmt.Sprintf("exit %d", code)) },
			Sleep:  func(time.Duration) { calls = append(calls, "sleep") },
		}
		Fail(action, 1, h, func(string) {})
		want := map[string]string{
			FailPanic:  "sync sysrq sleep reboot sleep exit 1",
			FailReboot: "sync reboot sleep exit 1",
			FailShell:  "shell exit 1",
			FailExit:   "exit 1",
		}[action]
		if got := strings.Join(calls, " "); got != want {
			t.Errorf("%s: %q, want %q", action, got, want)
		}
	}
}

// Without /proc (sysrq cannot be written), panic falls back to a forced
// reboot, as apply_manifest.sh does; when even that fails, it exits.
func TestFailPanicFallback(t *testing.T) {
	var calls, logs []string
	h := FailHooks{
		Sync:   func() { calls = append(calls, "sync") },
		Sysrq:  func() error { calls = append(calls, "sysrq"); return os.ErrNotExist },
		Reboot: func() error { calls = append(calls, "reboot"); return unix.EPERM },
		Shell:  func() error { return nil },
		Exit:   func(code int) { calls = append(calls, fmt.Sprintf("exit %d", code)) },
		Sleep:  func(time.Duration) { calls = append(calls, "sleep") },
	}
	Fail(FailPanic, 1, h, func(s string) { logs = append(logs, s) })
	if got := strings.Join(calls, " "); got != "sync sysrq reboot exit 1" {
		t.Errorf("calls %q", got)
	}
	if !strings.Contains(strings.Join(logs, "\n"), "panic failed (is /proc mounted?); trying reboot -f") {
		t.Errorf("logs %q", logs)
	}
}

func TestChildEnvAndManifestDir(t *testing.T) {
	env := []string{"PATH=/bin", "CRYPT_KEY_HEX=00ff", "CRYPT_KEY_BIN=/k", "INTEGRITY_KEY_HEX=aa", "INTEGRITY_KEY_BIN=/i",
		"CRYPT_KEY_HEXX=keep", "DMTOOLS_PHASE=sealed", "X=CRYPT_KEY_HEX=1"}
	if got := strings.Join(ChildEnv(env), " "); got != "PATH=/bin CRYPT_KEY_HEXX=keep DMTOOLS_PHASE=sealed X=CRYPT_KEY_HEX=1" {
		t.Errorf("ChildEnv: %s", got)
	}
	for in, want := range map[string]string{
		"manifest.env": ".", "./manifest.env": ".", "/etc/rules_dm/manifest.json": "/etc/rules_dm",
		"a//manifest.env": "a/", "/manifest.env": "", "": ".",
	} {
		if got := ManifestDir(in); got != want {
			t.Errorf("ManifestDir(%q) = %q, want %q", in, got, want)
		}
	}
}

// A signed verity layer: the signature goes into @u as a "user" key under
// its description before the table is loaded (also on an idempotent re-run,
// where the candidate table is loaded for the comparison), and is unlinked
// with the crypt key once the tables hold them.
func TestApplySignedVerity(t *testing.T) {
	sigPath := filepath.Join("..", "..", "cmd", "dm-activate", "testdata", "verity-sig", "verity.roothash.p7s")
	sig, err := os.ReadFile(sigPath)
	if err != nil {
		t.Fatal(err)
	}
	mpath := filepath.Join("..", "..", "cmd", "dm-activate", "testdata", "verity-sig", "manifest.json")
	plan := func(kv ...string) *Plan {
		p := planFor(t, "verity-sig", kv...)
		p.Cfg.ManifestPath = mpath
		// rebuild with the manifest path (planFor builds without it)
		p2, err := BuildPlan(sample(t, "verity-sig"), p.Cfg)
		if err != nil {
			t.Fatal(err)
		}
		return p2
	}
	p := plan("DMTOOLS_PHASE", "sealed")
	if p.Steps[0].SigPath != sigPath || p.Steps[0].SigDesc != "rules_dm:dmroot-verity:roothash-sig" || p.Steps[1].SigDesc != "" {
		t.Fatalf("steps %+v", p.Steps)
	}
	s := newSys()
	var order []string
	k := s.kernel()
	k.AddUserKey = func(desc string, payload []byte) (int, error) {
		if !bytes.Equal(payload, sig) {
			t.Errorf("payload %x", payload)
		}
		order = append(order, fmt.Sprintf("user %s (%d devices)", desc, len(s.f.devs)))
		s.keys[200+len(order)] = desc
		return 200 + len(order), nil
	}
	keys, err := LoadKeys(p)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if err := Apply(p, k, keys, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if strings.Join(order, ",") != "user rules_dm:dmroot-verity:roothash-sig (0 devices)" {
		t.Errorf("order %v", order)
	}
	if !strings.Contains(log.String(), "loaded user key rules_dm:dmroot-verity:roothash-sig into @u (root hash signature "+sigPath+", "+fmt.Sprint(len(sig))+" bytes)") {
		t.Errorf("log:\n%s", log.String())
	}
	if len(s.unlinked) != 2 || s.keys[s.unlinked[0]] == s.keys[s.unlinked[1]] {
		t.Errorf("unlinked %v of %v", s.unlinked, s.keys)
	}
	if v := string(s.f.devs["dmroot-verity"].active[0].Params); !strings.HasSuffix(v, " 3 root_hash_sig_key_desc rules_dm:dmroot-verity:roothash-sig panic_on_corruption") {
		t.Errorf("verity params %q", v)
	}
	// re-run: the signature is loaded again before the comparison
	log.Reset()
	if err := Apply(p, k, keys, &log); err != nil || len(order) != 2 || strings.Count(log.String(), "already active") != 2 {
		t.Errorf("re-run: %v %v\n%s", err, order, log.String())
	}
	keys.Wipe()

	// The kernel's verdicts on the signature, explained; cleanup as usual.
	for errno, hint := range map[unix.Errno]string{
		unix.ENOKEY:       "signer not trusted by the kernel",
		unix.EKEYREJECTED: "bad signature of the root hash",
		unix.EBADMSG:      "is not PKCS#7",
		unix.EINVAL:       "CONFIG_DM_VERITY_VERIFY_ROOTHASH_SIG",
	} {
		s := newSys()
		s.f.failOn, s.f.failErr = "load:dmroot-verity", errno
		k := s.kernel()
		keys, _ := LoadKeys(p)
		err := Apply(p, k, keys, io.Discard)
		if err == nil || !strings.Contains(err.Error(), hint) || !errors.Is(err, errno) || len(s.f.devs) != 0 || len(s.unlinked) != 1 {
			t.Errorf("%v: %v, devs %v, unlinked %v", errno, err, s.f.devs, s.unlinked)
		}
	}
	// No keyring: a signature cannot be handed over (no fallback).
	s = newSys()
	k = s.kernel()
	k.AddUserKey = func(string, []byte) (int, error) { return 0, fmt.Errorf("add_key: %w", unix.ENOSYS) }
	keys, _ = LoadKeys(p)
	if err := Apply(p, k, keys, io.Discard); err == nil || !strings.Contains(err.Error(), "needs the kernel keyring") || len(s.f.devs) != 0 {
		t.Errorf("no keyring: %v %v", err, s.f.devs)
	}
	// add_key refused
	k.AddUserKey = func(string, []byte) (int, error) { return 0, fmt.Errorf("add_key user x to @u: %w", unix.EDQUOT) }
	if err := Apply(p, k, keys, io.Discard); err == nil || !strings.Contains(err.Error(), "(root hash signature)") {
		t.Errorf("EDQUOT: %v", err)
	}
	// LoadKeys: a missing, empty or oversized signature is found before anything runs.
	dir := t.TempDir()
	p.Steps[0].SigPath = filepath.Join(dir, "none.p7s")
	if _, err := LoadKeys(p); err == nil || !strings.Contains(err.Error(), "layer 0: cannot read the root hash signature "+dir+"/none.p7s") {
		t.Errorf("missing: %v", err)
	}
	for _, n := range []int{0, 32768} {
		os.WriteFile(filepath.Join(dir, "none.p7s"), make([]byte, n), 0o644)
		if _, err := LoadKeys(p); err == nil {
			t.Errorf("signature of %d bytes accepted", n)
		}
	}
}

func TestExpand(t *testing.T) {
	out, err := expand("a @KEY@ b internal_hash:hmac(sha256):@IKEY@ @x", "", []byte{0xab, 0x01}, []byte{0xff})
	if err != nil || string(out) != "a ab01 b internal_hash:hmac(sha256):ff @x" {
		t.Errorf("%q %v", out, err)
	}
	out, err = expand("k @KEY@", ":2:logon:a:b", []byte{1, 2}, nil)
	if err != nil || string(out) != "k :2:logon:a:b" {
		t.Errorf("%q %v", out, err)
	}
	if _, err := expand("@IKEY@", "", nil, nil); err == nil {
		t.Error("missing integrity key accepted")
	}
}

func TestLoadKeyHex(t *testing.T) {
	b, err := loadKey(KeySource{Name: "CRYPT_KEY", Hex: " 00aBcD ff"[1:]})
	if err == nil {
		t.Errorf("blank inside hex accepted: %x", b)
	}
	b, err = loadKey(KeySource{Name: "CRYPT_KEY", Hex: "00aBcDfF"})
	if err != nil || !bytes.Equal(b, []byte{0, 0xab, 0xcd, 0xff}) {
		t.Errorf("%x %v", b, err)
	}
	for _, h := range []string{"0g", "abc", "zz"} {
		if _, err := loadKey(KeySource{Name: "CRYPT_KEY", Hex: h}); err == nil || strings.Contains(err.Error(), h) {
			t.Errorf("%q: %v", h, err)
		}
	}
}

func TestLoadKeyFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "k")
	os.WriteFile(f, bytes.Repeat([]byte{7}, 64), 0o600)
	b, err := loadKey(KeySource{Name: "CRYPT_KEY", File: f})
	if err != nil || len(b) != 64 {
		t.Errorf("%d %v", len(b), err)
	}
	os.WriteFile(f, nil, 0o600)
	if _, err := loadKey(KeySource{Name: "CRYPT_KEY", File: f}); err == nil {
		t.Error("empty key file accepted")
	}
	os.WriteFile(f, make([]byte, 2000), 0o600)
	if _, err := loadKey(KeySource{Name: "CRYPT_KEY", File: f}); err == nil {
		t.Error("huge key file accepted")
	}
}

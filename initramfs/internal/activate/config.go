// Package activate turns a validated manifest (tools/manifest) and the
// target's environment into an activation plan, prints it (dry-run) or
// applies it with raw device-mapper ioctls and keyring syscalls, then mounts
// the top device. It is the logic of initramfs/cmd/dm-activate, kept apart
// from the kernel calls (interface Kernel) so that it runs in host tests.
//
// The environment contract is apply_manifest.sh's (spec/manifest.md,
// README): MODE, DATA_DEV, META_DEV, CRYPT_KEY_HEX|CRYPT_KEY_BIN,
// INTEGRITY_KEY_HEX|INTEGRITY_KEY_BIN, DMTOOLS_PHASE, DMTOOLS_FAIL_ACTION,
// DMTOOLS_MOUNT_CMD, DMTOOLS_NEWROOT, DMTOOLS_MOUNT_FSTYPE, DMTOOLS_MOUNT_OPTS.
package activate

import (
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/rules-dm/rules_dm/tools/manifest"
)

// Modes, phases and fail actions of the contract.
const (
	ModeDryRun = "dry-run"
	ModeApply  = "apply"

	PhaseBootstrap = "bootstrap"
	PhaseSealed    = "sealed"

	FailPanic  = "panic"
	FailReboot = "reboot"
	FailShell  = "shell"
	FailExit   = "exit"

	DefaultNewRoot = "/newroot"
)

// Config is the target's side of the contract, read from the environment.
type Config struct {
	Mode       string
	Phase      string
	FailAction string

	DataDev string // "<DATA_DEV>" in a dry-run without DATA_DEV
	MetaDev string

	CryptKey     KeySource
	IntegrityKey KeySource

	MountCmd  string // run with sh -c after activation
	NewRoot   string // resolved: env, manifest, default
	FSType    string // resolved; "" = let the kernel try each filesystem
	MountOpt  string // resolved
	ReadOnly  bool   // DMTOOLS_READONLY=1: every layer read-only
	ReadCheck bool   // DMTOOLS_SEALED_READCHECK=1: read the top device before mounting (sealed)

	// ManifestPath is the manifest's path as given (set by the caller):
	// files it names (verity root hash signatures) are read from
	// ManifestDir(ManifestPath).
	ManifestPath string
}

// ManifestDir returns the directory of a manifest path exactly as
// apply_manifest.sh computes it (${MF_PATH%/*} when the path has a slash,
// else "."), so that both activators print the same signature paths.
func ManifestDir(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[:i]
	}
	return "."
}

// SensitiveEnv lists the variables that carry key material (or say where
// it is): no child process (DMTOOLS_MOUNT_CMD, the rescue shell) inherits
// them, as in apply_manifest.sh, which unsets them once read.
var SensitiveEnv = []string{"CRYPT_KEY_HEX", "CRYPT_KEY_BIN", "INTEGRITY_KEY_HEX", "INTEGRITY_KEY_BIN"}

// ChildEnv returns environ ("K=V" entries) without the SensitiveEnv variables.
func ChildEnv(environ []string) []string {
	out := make([]string, 0, len(environ))
next:
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		for _, s := range SensitiveEnv {
			if k == s {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

// KeySource says where a key comes from: hex in the environment or a file of
// raw bytes. Name is the variable family ("CRYPT_KEY", "INTEGRITY_KEY") for
// messages; the key itself never appears in one.
type KeySource struct {
	Name string
	Hex  string
	File string
}

// Given reports whether a key was supplied.
func (k KeySource) Given() bool { return k.Hex != "" || k.File != "" }

// Describe says where the key comes from, without the key.
func (k KeySource) Describe() string {
	if k.File != "" {
		return k.Name + "_BIN=" + k.File
	}
	if k.Hex != "" {
		return k.Name + "_HEX"
	}
	return k.Name + " (not given)"
}

// Getenv looks a variable up; ok is false when it is unset.
type Getenv func(key string) (string, bool)

// reDevPath restricts device paths to one table word (apply_manifest.sh's
// dev_ok): absolute, A-Za-z0-9_./:+- only.
var reDevPath = regexp.MustCompile(`^/[A-Za-z0-9_./:+-]{0,255}$`)

// reMountOpts restricts mount options (no blanks: they are one word).
var reMountOpts = regexp.MustCompile(`^[A-Za-z0-9_.,:=+/@-]{0,512}$`)

// ModeFromEnv returns MODE (default dry-run), or a usage error.
func ModeFromEnv(env Getenv) (string, error) {
	mode := get(env, "MODE", ModeDryRun)
	if err := oneOf("MODE", mode, ModeDryRun, ModeApply); err != nil {
		return "", err
	}
	return mode, nil
}

// PhaseFromEnv returns DMTOOLS_PHASE and DMTOOLS_FAIL_ACTION (defaults
// bootstrap, panic), or a usage error. They are read before the manifest so
// that a sealed boot can take its fail action on a bad manifest.
func PhaseFromEnv(env Getenv) (phase, action string, err error) {
	phase = get(env, "DMTOOLS_PHASE", PhaseBootstrap)
	if err := oneOf("DMTOOLS_PHASE", phase, PhaseBootstrap, PhaseSealed); err != nil {
		return "", "", err
	}
	action = get(env, "DMTOOLS_FAIL_ACTION", FailPanic)
	if err := oneOf("DMTOOLS_FAIL_ACTION", action, FailPanic, FailReboot, FailShell, FailExit); err != nil {
		return "", "", err
	}
	return phase, action, nil
}

// get returns the variable's value, or def when it is unset or empty.
func get(env Getenv, key, def string) string {
	if v, ok := env(key); ok && v != "" {
		return v
	}
	return def
}

// ConfigFromEnv reads the whole contract for manifest m. MODE, PHASE and
// FAIL_ACTION values are usage errors; everything else (missing devices,
// keys of the wrong size, bad paths) is a plain error found before anything
// runs, as in apply_manifest.sh. A dry-run needs neither devices nor keys:
// it prints <DATA_DEV>, <META_DEV> and <key> in their place.
func ConfigFromEnv(env Getenv, m *manifest.Manifest) (*Config, error) {
	var err error
	c := &Config{}
	if c.Mode, err = ModeFromEnv(env); err != nil {
		return nil, err
	}
	if c.Phase, c.FailAction, err = PhaseFromEnv(env); err != nil {
		return nil, err
	}
	apply := c.Mode == ModeApply
	dev := func(name, what string) (string, error) {
		v := get(env, name, "")
		if v == "" {
			if apply {
				return "", fmt.Errorf("%s is not set (%s)", name, what)
			}
			return "<" + name + ">", nil
		}
		if !reDevPath.MatchString(v) {
			return "", fmt.Errorf("%s must be an absolute device path of A-Za-z0-9_./:+- only", name)
		}
		return v, nil
	}
	if c.DataDev, err = dev("DATA_DEV", "the block device holding "+artifactPath(m, manifest.RoleData)); err != nil {
		return nil, err
	}
	if m.NeedsMeta() {
		if c.MetaDev, err = dev("META_DEV", "this stack keeps its metadata on a second device, "+artifactPath(m, manifest.RoleMeta)); err != nil {
			return nil, err
		}
		if apply && c.MetaDev == c.DataDev {
			return nil, fmt.Errorf("META_DEV and DATA_DEV are the same device %s", c.DataDev)
		}
	}
	if c.CryptKey, err = keySource(env, "CRYPT_KEY"); err != nil {
		return nil, err
	}
	if c.IntegrityKey, err = keySource(env, "INTEGRITY_KEY"); err != nil {
		return nil, err
	}
	for i, l := range m.Layers {
		if l.Crypt != nil {
			if err := checkKeySize(c.CryptKey, apply, i, "crypt", l.Crypt.KeySize); err != nil {
				return nil, err
			}
		}
		if l.Integrity != nil && l.Integrity.KeySize > 0 {
			if err := checkKeySize(c.IntegrityKey, apply, i, "hmac integrity", l.Integrity.KeySize); err != nil {
				return nil, err
			}
		}
	}
	c.MountCmd = get(env, "DMTOOLS_MOUNT_CMD", "")
	var mo manifest.Mount
	if m.Mount != nil {
		mo = *m.Mount
	}
	c.NewRoot = get(env, "DMTOOLS_NEWROOT", firstNonEmpty(mo.NewRoot, DefaultNewRoot))
	if !reDevPath.MatchString(c.NewRoot) || strings.Contains(c.NewRoot, "..") {
		return nil, fmt.Errorf("DMTOOLS_NEWROOT must be an absolute path of A-Za-z0-9_./:+- only")
	}
	c.FSType = get(env, "DMTOOLS_MOUNT_FSTYPE", mo.FSType)
	if !regexp.MustCompile(`^[A-Za-z0-9_.+-]{0,32}$`).MatchString(c.FSType) {
		return nil, fmt.Errorf("DMTOOLS_MOUNT_FSTYPE must be a filesystem type name")
	}
	c.MountOpt = get(env, "DMTOOLS_MOUNT_OPTS", SealMountOpts(c.Phase, c.FSType, firstNonEmpty(mo.Options, DefaultMountOpts(c.Phase, c.FSType))))
	if !reMountOpts.MatchString(c.MountOpt) {
		return nil, fmt.Errorf("DMTOOLS_MOUNT_OPTS must be comma-separated options without blanks")
	}
	c.ReadOnly = get(env, "DMTOOLS_READONLY", "0") == "1"
	c.ReadCheck = get(env, "DMTOOLS_SEALED_READCHECK", "0") == "1"
	return c, nil
}

// checkKeySize checks a given key's size against a layer before anything
// runs (hex length, or the key file's size); a missing key is an error in
// apply mode only.
func checkKeySize(k KeySource, apply bool, i int, what string, want int) error {
	var n int64
	switch {
	case k.Hex != "":
		h := k.Hex // not trimmed: apply_manifest.sh rejects blanks too
		if strings.Trim(h, "0123456789abcdefABCDEF") != "" {
			return fmt.Errorf("%s_HEX is not hex", k.Name)
		}
		if len(h)%2 != 0 {
			return fmt.Errorf("%s_HEX has an odd number of digits", k.Name)
		}
		n = int64(len(h) / 2)
	case k.File != "":
		st, err := os.Stat(k.File)
		if err != nil {
			return fmt.Errorf("%s_BIN: cannot read the key file: %w", k.Name, err)
		}
		if !st.Mode().IsRegular() {
			return nil // a pipe or device: checked when read
		}
		n = st.Size()
	default:
		if apply {
			return fmt.Errorf("layer %d (%s) needs %s_HEX or %s_BIN", i, what, k.Name, k.Name)
		}
		return nil
	}
	if n != int64(want) {
		label := "crypt"
		if k.Name == "INTEGRITY_KEY" {
			label = "integrity"
		}
		return fmt.Errorf("%s key is %d bytes, layer %d expects %d", label, n, i, want)
	}
	return nil
}

func keySource(env Getenv, name string) (KeySource, error) {
	k := KeySource{Name: name, Hex: get(env, name+"_HEX", ""), File: get(env, name+"_BIN", "")}
	if k.Hex != "" && k.File != "" {
		return k, fmt.Errorf("set %s_HEX or %s_BIN, not both", name, name)
	}
	return k, nil
}

func artifactPath(m *manifest.Manifest, role string) string {
	if a := m.Artifact(role); a != nil {
		return a.Path
	}
	return role
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// DefaultMountOpts: the sealed phase mounts ext4 "ro,errors=panic" (a
// metadata error stops the machine) and other filesystems "ro"; bootstrap
// has no default (DMTOOLS_MOUNT_CMD does its own mounting).
func DefaultMountOpts(phase, fstype string) string {
	if phase != PhaseSealed {
		return ""
	}
	if fstype == "ext4" {
		return "ro,errors=panic"
	}
	return "ro"
}

// SealMountOpts hardens the manifest's mount options in the sealed phase:
// ext4 options without an errors= setting get ",errors=panic" (a manifest
// that says "ro" for a read-only verity device still fails closed on a
// metadata error). Options from DMTOOLS_MOUNT_OPTS are the operator's
// explicit choice and are not passed through here.
func SealMountOpts(phase, fstype, opts string) string {
	if phase != PhaseSealed || fstype != "ext4" || opts == "" {
		return opts
	}
	for _, o := range strings.Split(opts, ",") {
		if strings.HasPrefix(o, "errors=") {
			return opts
		}
	}
	return opts + ",errors=panic"
}

// CorruptionOpt is the verity optional argument for the phase and fail
// action: the kernel itself reacts to a corrupted block in the sealed phase
// (panic or restart), while shell/exit and the bootstrap phase get plain EIO
// so that the caller sees the error and acts.
func CorruptionOpt(phase, action string) string {
	if phase != PhaseSealed {
		return ""
	}
	switch action {
	case FailPanic:
		return "panic_on_corruption"
	case FailReboot:
		return "restart_on_corruption"
	}
	return ""
}

// Mounts reports whether the run mounts the top device: always in
// the sealed phase, in bootstrap only through DMTOOLS_MOUNT_CMD.
func (c *Config) Mounts() bool {
	return c.Phase == PhaseSealed || c.MountCmd != ""
}

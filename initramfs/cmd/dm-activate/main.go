// Command dm-activate activates a rules_dm stack in an initramfs without
// dmsetup or keyctl: raw device-mapper ioctls and keyring syscalls, one
// static binary (CGO_ENABLED=0).
//
//	dm-activate MANIFEST      (manifest.json or manifest.env)
//
// Environment (the contract of initramfs/apply_manifest.sh):
//
//	MODE=dry-run|apply              default dry-run: print the plan, touch nothing
//	DATA_DEV, META_DEV              block devices of the data and meta artifacts
//	CRYPT_KEY_HEX | CRYPT_KEY_BIN   crypt key (hex, or a file of raw bytes)
//	INTEGRITY_KEY_HEX | _BIN        hmac-sha256 integrity key
//	DMTOOLS_PHASE=bootstrap|sealed  default bootstrap
//	DMTOOLS_FAIL_ACTION=panic|reboot|shell|exit   sealed phase, default panic
//	DMTOOLS_MOUNT_CMD               run with sh -c after activation
//	DMTOOLS_NEWROOT, DMTOOLS_MOUNT_FSTYPE, DMTOOLS_MOUNT_OPTS
//	                                sealed default ext4 "ro,errors=panic", others
//	                                "ro"; the manifest's ext4 options get
//	                                errors=panic added unless they set errors=
//	DMTOOLS_SEALED_READCHECK=1      sealed: read the whole top device first
//	DMTOOLS_READONLY=1              create every layer read-only
//
// A signed verity layer's root hash signature (DMTOOLS_L<i>_VERITY_SIG_PATH,
// next to the manifest) is added to @u as a "user" key before its table.
//
// Exit status: 0 ok, 1 failure, 2 bad usage (argument count, MODE,
// DMTOOLS_PHASE, DMTOOLS_FAIL_ACTION). A bad manifest or environment is
// rejected before anything runs: exit 1, except with MODE=apply in the
// sealed phase, which fails closed and takes the fail action. A failure
// while activating or mounting removes the mappings this run made, then
// exits 1 (bootstrap) or takes the fail action (sealed). The plan goes to
// stdout, progress and errors to stderr.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/rules-dm/rules_dm/initramfs/internal/activate"
	"github.com/rules-dm/rules_dm/initramfs/internal/dm"
	"github.com/rules-dm/rules_dm/tools/manifest"
)

const prog = "dm-activate"

const usage = `usage: dm-activate MANIFEST   (manifest.json or manifest.env)
environment: MODE=dry-run|apply DATA_DEV META_DEV CRYPT_KEY_HEX|CRYPT_KEY_BIN
  INTEGRITY_KEY_HEX|INTEGRITY_KEY_BIN DMTOOLS_PHASE=bootstrap|sealed
  DMTOOLS_FAIL_ACTION=panic|reboot|shell|exit DMTOOLS_MOUNT_CMD DMTOOLS_NEWROOT
  DMTOOLS_MOUNT_FSTYPE DMTOOLS_MOUNT_OPTS DMTOOLS_SEALED_READCHECK=1
  DMTOOLS_READONLY=1   (see initramfs/README.md)
`

// Replaced in tests.
var (
	checkDevs  = activate.CheckBlockDevs
	openKernel = func() (*activate.Kernel, func(), error) {
		ctl, err := dm.Open()
		if err != nil {
			return nil, nil, err
		}
		return activate.System(ctl), func() { ctl.Close() }, nil
	}
)

func main() {
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr, activate.SystemFailHooks()))
}

func run(args []string, env activate.Getenv, stdout, stderr io.Writer, hooks activate.FailHooks) (code int) {
	say := func(s string) { fmt.Fprintf(stderr, "%s: %s\n", prog, oneLine(s)) }
	// Known once MODE, DMTOOLS_PHASE and DMTOOLS_FAIL_ACTION are valid.
	var mode, phase, action string
	sealedApply := func() bool { return mode == activate.ModeApply && phase == activate.PhaseSealed }
	failAction := func() int {
		say("sealed boot failed; fail action: " + action)
		activate.Fail(action, 1, hooks, say)
		return 1
	}
	// reject: a bad invocation, manifest or environment, found before
	// anything ran. Usage errors (arguments, MODE, DMTOOLS_PHASE,
	// DMTOOLS_FAIL_ACTION) exit 2; anything else exits 1, except in a
	// sealed apply, which fails closed: the fail action.
	reject := func(err error) int {
		say(err.Error())
		if activate.IsUsage(err) {
			return 2
		}
		if sealedApply() {
			return failAction()
		}
		return 1
	}
	// fail: activation went wrong (mappings already cleaned up): bootstrap
	// exits 1, sealed takes the fail action.
	fail := func(err error) int {
		if !activate.Reported(err) {
			say(err.Error())
		}
		if phase == activate.PhaseSealed {
			return failAction()
		}
		return 1
	}
	defer func() {
		if r := recover(); r != nil {
			code = reject(fmt.Errorf("internal error: %v", r))
		}
	}()
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return reject(activate.Usagef("expected exactly one argument, the manifest (manifest.json or manifest.env); see --help"))
	}
	var err error
	if mode, err = activate.ModeFromEnv(env); err != nil {
		return reject(err)
	}
	if phase, action, err = activate.PhaseFromEnv(env); err != nil {
		return reject(err)
	}
	m, err := loadManifest(args[0])
	if err != nil {
		return reject(err)
	}
	cfg, err := activate.ConfigFromEnv(env, m)
	if err != nil {
		return reject(err)
	}
	cfg.ManifestPath = args[0]
	plan, err := activate.BuildPlan(m, cfg)
	if err != nil {
		return reject(err)
	}
	if mode == activate.ModeDryRun {
		plan.Print(stdout)
		return 0
	}
	if err := checkDevs(cfg); err != nil {
		return reject(err)
	}
	keys, err := activate.LoadKeys(plan)
	if err != nil {
		return reject(err)
	}
	defer keys.Wipe()
	say(fmt.Sprintf("activating %s: stack %s, %d layer(s), phase %s", args[0], m.Stack, len(plan.Steps), phase))
	k, closeKernel, err := openKernel()
	if err != nil {
		keys.Wipe()
		return fail(err)
	}
	defer closeKernel()
	if err := activate.Apply(plan, k, keys, stderr); err != nil {
		keys.Wipe()
		return fail(err)
	}
	return 0
}

// loadManifest reads manifest.json or manifest.env: by extension, else by
// content (a JSON manifest starts with '{').
func loadManifest(path string) (*manifest.Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, manifest.MaxManifestSize+1))
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	isJSON := strings.HasSuffix(path, ".json")
	if !isJSON && !strings.HasSuffix(path, ".env") {
		isJSON = bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("{"))
	}
	if isJSON {
		m, err := manifest.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return m, nil
	}
	e, err := manifest.ParseEnv(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m, err := manifest.FromEnv(e)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\r", " ")
	return strings.ReplaceAll(s, "\n", "; ")
}

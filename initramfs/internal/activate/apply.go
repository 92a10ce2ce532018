package activate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rules-dm/rules_dm/initramfs/internal/dm"
)

// Mapper is the device-mapper ioctl interface (*dm.Control in production).
type Mapper interface {
	Status(name string) (dm.Info, error)
	Table(name string) (dm.Info, []dm.Target, error)
	InactiveTable(name string) (dm.Info, []dm.Target, error)
	Create(name, uuid string) (dm.Info, error)
	Load(name string, targets []dm.Target, readOnly bool) error
	Clear(name string) error
	Resume(name string) (dm.Info, error)
	Remove(name string) error
}

// Kernel is every side effect of an activation; System() gives the real one.
type Kernel struct {
	Mapper      Mapper
	AddKey      func(desc string, key []byte) (ref string, id int, err error)
	AddUserKey  func(desc string, payload []byte) (id int, err error) // root hash signatures
	KeyUnusable func(err error) bool                                  // no keyring: fall back to a hex key in the table
	UnlinkKey   func(id int) error
	MakeNode    func(name string, dev uint64) (string, error)
	RemoveNode  func(name string) error
	ReadAll     func(path string) error // DMTOOLS_SEALED_READCHECK
	Mount       func(dev string, c *Config) error
	RunMountCmd func(cmd, newroot string, env []string) error // mkdir -p newroot, then sh -c cmd
}

// UUIDPrefix marks the mapped devices dm-activate creates.
const UUIDPrefix = "RULES_DM-"

// Keys holds the key bytes of a run (Wipe zeroes them) and the root hash
// signatures of signed verity layers, by layer index (not secret).
type Keys struct {
	Crypt     []byte
	Integrity []byte
	Sigs      map[int][]byte
}

// Wipe zeroes the keys.
func (k *Keys) Wipe() {
	wipe(k.Crypt)
	wipe(k.Integrity)
}

// LoadKeys reads the keys and signatures the plan needs and checks their
// sizes, before anything runs.
func LoadKeys(p *Plan) (*Keys, error) {
	k := &Keys{}
	for _, s := range p.Steps {
		var err error
		if s.SigDesc != "" {
			sig, err := readSig(s.SigPath)
			if err != nil {
				k.Wipe()
				return nil, fmt.Errorf("layer %d: cannot read the root hash signature %s: %w", s.Index, s.SigPath, err)
			}
			if k.Sigs == nil {
				k.Sigs = map[int][]byte{}
			}
			k.Sigs[s.Index] = sig
		}
		if s.CryptKeySize > 0 {
			if k.Crypt == nil {
				if k.Crypt, err = loadKey(p.Cfg.CryptKey); err != nil {
					k.Wipe()
					return nil, err
				}
			}
			if len(k.Crypt) != s.CryptKeySize {
				k.Wipe()
				return nil, fmt.Errorf("crypt key is %d bytes, layer %d expects %d", len(k.Crypt), s.Index, s.CryptKeySize)
			}
		}
		if s.IntegrityKeySize > 0 {
			if k.Integrity == nil {
				if k.Integrity, err = loadKey(p.Cfg.IntegrityKey); err != nil {
					k.Wipe()
					return nil, err
				}
			}
			if len(k.Integrity) != s.IntegrityKeySize {
				k.Wipe()
				return nil, fmt.Errorf("integrity key is %d bytes, layer %d expects %d", len(k.Integrity), s.Index, s.IntegrityKeySize)
			}
		}
	}
	return k, nil
}

// Apply runs the plan: loads the crypt key into @u, creates every layer
// bottom up (an existing mapping with the same table is kept, so a re-run is
// harmless; one without a table is removed and made again), makes the
// /dev/mapper nodes, optionally reads the top device through (sealed read
// check), then mounts. On any failure it removes, top down, the mappings
// this run created. The keyring keys it added are unlinked from @u once the
// tables are loaded (or on failure). Progress goes
// to log, one line per action.
func Apply(p *Plan, k *Kernel, keys *Keys, log io.Writer) (err error) {
	c := p.Cfg
	var created []string
	var keyIDs []int
	unlink := func() {
		for _, id := range keyIDs {
			if uerr := k.UnlinkKey(id); uerr != nil {
				fmt.Fprintf(log, "dm-activate: %v\n", uerr)
			}
		}
		keyIDs = nil
	}
	defer func() {
		if err == nil {
			return
		}
		// The error first, then the cleanup lines (as apply_manifest.sh).
		fmt.Fprintf(log, "dm-activate: %s\n", oneLine(err.Error()))
		err = &reportedError{err}
		for i := len(created) - 1; i >= 0; i-- {
			n := created[i]
			_ = k.RemoveNode(n)
			if rerr := k.Mapper.Remove(n); rerr != nil {
				fmt.Fprintf(log, "dm-activate: could not remove %s: %v\n", n, rerr)
			} else {
				fmt.Fprintf(log, "dm-activate: removed %s (cleanup)\n", n)
			}
		}
		unlink()
	}()

	refs := map[string]string{}
	for _, s := range p.Steps {
		ref := ""
		if s.CryptKeySize > 0 {
			var ok bool
			if ref, ok = refs[s.CryptKeyDesc]; !ok {
				r, id, kerr := k.AddKey(s.CryptKeyDesc, keys.Crypt)
				switch {
				case kerr == nil:
					ref = r
					keyIDs = append(keyIDs, id)
					fmt.Fprintf(log, "dm-activate: loaded logon key %s into @u (%d bytes)\n", s.CryptKeyDesc, len(keys.Crypt))
				case k.KeyUnusable != nil && k.KeyUnusable(kerr):
					fmt.Fprintf(log, "dm-activate: no kernel keyring (%v): the crypt key goes into the table in hex\n", kerr)
				default:
					return kerr
				}
				refs[s.CryptKeyDesc] = ref
			}
		}
		if s.SigDesc != "" {
			// Before the table (and before comparing with a live mapping:
			// loading the candidate table needs it too).
			if k.AddUserKey == nil {
				return fmt.Errorf("layer %d: a verity root hash signature needs the kernel keyring", s.Index)
			}
			sig := keys.Sigs[s.Index]
			id, kerr := k.AddUserKey(s.SigDesc, sig)
			if kerr != nil {
				if k.KeyUnusable != nil && k.KeyUnusable(kerr) {
					return fmt.Errorf("layer %d: a verity root hash signature needs the kernel keyring: %w", s.Index, kerr)
				}
				return fmt.Errorf("%w (root hash signature)", kerr)
			}
			keyIDs = append(keyIDs, id)
			fmt.Fprintf(log, "dm-activate: loaded user key %s into @u (root hash signature %s, %d bytes)\n", s.SigDesc, s.SigPath, len(sig))
		}
		params, perr := expandStep(s, ref, keys.Crypt, keys.Integrity)
		if perr != nil {
			return fmt.Errorf("layer %d (%s): %w", s.Index, s.Name, perr)
		}
		made, aerr := activateOne(k, s, params, log)
		wipe(params)
		if made {
			created = append(created, s.Name)
		}
		if aerr != nil {
			return aerr
		}
	}
	unlink() // the tables hold the key now
	if c.Phase == PhaseSealed && c.ReadCheck {
		fmt.Fprintf(log, "dm-activate: reading %s through (DMTOOLS_SEALED_READCHECK)\n", p.TopDev)
		if err := k.ReadAll(p.TopDev); err != nil {
			return fmt.Errorf("read check of %s failed: %w", p.TopDev, err)
		}
	}
	if p.Mount {
		if err := mount(p, k, log); err != nil {
			return err
		}
	}
	fmt.Fprintf(log, "dm-activate: activated %s (%s, %s)\n", p.TopDev, p.Stack, c.Phase)
	return nil
}

// expandStep returns the target parameters of a step (after "0 <len> <type> ").
func expandStep(s Step, ref string, ckey, ikey []byte) ([]byte, error) {
	t, err := expand(s.Table, ref, ckey, ikey)
	if err != nil {
		return nil, err
	}
	prefix := fmt.Sprintf("0 %d %s ", s.Sectors, s.Target)
	if !bytes.HasPrefix(t, []byte(prefix)) {
		wipe(t)
		return nil, fmt.Errorf("table does not start with %q", prefix)
	}
	params := append([]byte(nil), t[len(prefix):]...)
	wipe(t)
	return params, nil
}

func wipeTargets(ts []dm.Target) {
	for _, t := range ts {
		wipe(t.Params)
	}
}

// equalTables compares two tables as the kernel prints them.
func equalTables(a, b []dm.Target) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for i := range a {
		if a[i].Start != b[i].Start || a[i].Length != b[i].Length || a[i].Type != b[i].Type || !bytes.Equal(a[i].Params, b[i].Params) {
			return false
		}
	}
	return true
}

// sameTable reports whether the live mapping has the table the kernel makes
// of ours: the candidate is loaded into the inactive slot, both are read
// back in the kernel's own spelling (devices as major:minor, defaults
// filled in), compared, and the inactive slot is cleared again.
func sameTable(m Mapper, s Step, t []dm.Target) (bool, error) {
	if err := m.Load(s.Name, t, s.ReadOnly); err != nil {
		_ = m.Clear(s.Name)
		return false, nil
	}
	_, active, err := m.Table(s.Name)
	if err != nil {
		_ = m.Clear(s.Name)
		return false, err
	}
	defer wipeTargets(active)
	_, inactive, err := m.InactiveTable(s.Name)
	defer wipeTargets(inactive)
	if cerr := m.Clear(s.Name); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return false, err
	}
	return equalTables(active, inactive), nil
}

// activateOne creates one mapping; made reports whether this call created
// it (and so must remove it on a later failure).
func activateOne(k *Kernel, s Step, params []byte, log io.Writer) (made bool, err error) {
	t := []dm.Target{{Start: 0, Length: uint64(s.Sectors), Type: s.Target, Params: params}}
	info, err := k.Mapper.Status(s.Name)
	switch {
	case err == nil && info.Flags&dm.FlagActivePresent != 0:
		same, serr := sameTable(k.Mapper, s, t)
		if serr != nil {
			return false, fmt.Errorf("comparing with the live %s: %w", s.Name, serr)
		}
		if !same {
			return false, fmt.Errorf("%s already exists with a different table; remove it first (dmsetup remove %s)", s.Name, s.Name)
		}
		if _, err := k.MakeNode(s.Name, info.Dev); err != nil {
			return false, err
		}
		fmt.Fprintf(log, "dm-activate: %s already active with the same table\n", s.Name)
		return false, nil
	case err == nil:
		if info.OpenCount > 0 {
			return false, fmt.Errorf("%s exists without a table and is open; remove it first", s.Name)
		}
		fmt.Fprintf(log, "dm-activate: removing %s: it exists without a table (left by a failed run)\n", s.Name)
		if err := k.Mapper.Remove(s.Name); err != nil {
			return false, fmt.Errorf("cannot remove the half-made mapping %s: %w", s.Name, err)
		}
	case !dm.IsNotExist(err):
		return false, err
	}
	info, err = k.Mapper.Create(s.Name, UUIDPrefix+s.Name)
	if err != nil {
		return false, err
	}
	if err := k.Mapper.Load(s.Name, t, s.ReadOnly); err != nil {
		return true, fmt.Errorf("layer %d (%s): table rejected: %w%s", s.Index, s.Target, err, sigHint(s, err))
	}
	if info, err = k.Mapper.Resume(s.Name); err != nil {
		return true, err
	}
	node, err := k.MakeNode(s.Name, info.Dev)
	if err != nil {
		return true, err
	}
	mode := "read-write"
	if s.ReadOnly {
		mode = "read-only"
	}
	fmt.Fprintf(log, "dm-activate: created %s (layer %d, %s, %d sectors, %d:%d, %s)\n", node, s.Index, s.Target, s.Sectors, info.Major(), info.Minor(), mode)
	return true, nil
}

// sigHint explains the kernel's answers to a signed verity table
// (spec/manifest.md, "Root hash signature").
func sigHint(s Step, err error) string {
	if s.SigDesc == "" {
		return ""
	}
	switch {
	case errors.Is(err, unix.ENOKEY):
		return " (root hash signature: signer not trusted by the kernel, or the key " + s.SigDesc + " is missing)"
	case errors.Is(err, unix.EKEYREJECTED):
		return " (root hash signature: bad signature of the root hash)"
	case errors.Is(err, unix.EBADMSG):
		return " (root hash signature: " + s.SigPath + " is not PKCS#7)"
	case errors.Is(err, unix.EINVAL):
		return " (a signed table: a kernel without CONFIG_DM_VERITY_VERIFY_ROOTHASH_SIG rejects root_hash_sig_key_desc)"
	}
	return ""
}

// MountEnv is what DMTOOLS_MOUNT_CMD sees on top of our environment.
func MountEnv(p *Plan) []string {
	c := p.Cfg
	return []string{
		"DMTOOLS_TOP_DEV=" + p.TopDev,
		"DMTOOLS_NEWROOT=" + c.NewRoot,
		"DMTOOLS_MOUNT_FSTYPE=" + c.FSType,
		"DMTOOLS_MOUNT_OPTS=" + c.MountOpt,
	}
}

func mount(p *Plan, k *Kernel, log io.Writer) error {
	c := p.Cfg
	if c.MountCmd != "" {
		fmt.Fprintf(log, "dm-activate: running DMTOOLS_MOUNT_CMD\n")
		if err := k.RunMountCmd(c.MountCmd, c.NewRoot, MountEnv(p)); err != nil {
			return fmt.Errorf("DMTOOLS_MOUNT_CMD failed: %w", err)
		}
		return nil
	}
	if err := k.Mount(p.TopDev, c); err != nil {
		return err
	}
	fmt.Fprintf(log, "dm-activate: mounted %s on %s (%s)\n", p.TopDev, c.NewRoot, strings.TrimSpace(c.FSType+" "+c.MountOpt))
	return nil
}

// reportedError is an error Apply has already printed.
type reportedError struct{ error }

func (e *reportedError) Unwrap() error { return e.error }

// Reported reports whether err was already printed by Apply.
func Reported(err error) bool {
	var r *reportedError
	return errors.As(err, &r)
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\r", " ")
	return strings.ReplaceAll(s, "\n", "; ")
}

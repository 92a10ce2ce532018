package activate

import (
	"fmt"
	"io"
	"strings"

	"github.com/rules-dm/rules_dm/initramfs/internal/dm"
	"github.com/rules-dm/rules_dm/initramfs/internal/keyring"
	"github.com/rules-dm/rules_dm/tools/manifest"
)

// Step is the activation of one layer, bottom first.
type Step struct {
	Index    int
	Target   string
	Name     string
	Sectors  int64
	ReadOnly bool
	// Table is the kernel table with the devices substituted and the verity
	// optional arguments appended; @KEY@ and @IKEY@ are left for Expand.
	Table string
	// Crypt layers: key size and keyring description; IntegrityKeySize for
	// hmac integrity layers.
	CryptKeySize     int
	CryptKeyDesc     string
	IntegrityKeySize int
	// Signed verity layers: the root hash signature file (the manifest's
	// directory + its path) and the description of the "user" key it is
	// loaded as before the table (the table's root_hash_sig_key_desc).
	SigPath string
	SigDesc string
}

// Plan is everything a run does, in order.
type Plan struct {
	Stack  string
	Steps  []Step
	TopDev string // /dev/mapper/<top>
	Mount  bool   // mount after activation (sealed, or DMTOOLS_MOUNT_CMD)
	Cfg    *Config
}

// BuildPlan substitutes the devices into every layer's template (never
// composing a table: only words are replaced) and decides read-only
// mappings: verity is read-only, and so is everything stacked on a
// read-only layer.
func BuildPlan(m *manifest.Manifest, c *Config) (*Plan, error) {
	p := &Plan{Stack: m.Stack, Cfg: c, Mount: c.Mounts()}
	ro := c.ReadOnly
	corr := CorruptionOpt(c.Phase, c.FailAction)
	for i, l := range m.Layers {
		if err := dm.ValidName(l.Name); err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		devs := map[string]string{"DATA": c.DataDev}
		if c.MetaDev != "" {
			devs["META"] = c.MetaDev
		}
		if i > 0 {
			devs["LOWER"] = dm.NodePath(m.Layers[i-1].Name)
		}
		table := manifest.Substitute(l.Table, devs)
		if l.Target == manifest.TargetVerity {
			ro = true
			var words []string
			if l.Verity != nil && l.Verity.Opts != "" {
				words = strings.Fields(manifest.Substitute(l.Verity.Opts, devs))
			}
			if corr != "" {
				words = append(words, corr)
			}
			if len(words) > 0 {
				table += fmt.Sprintf(" %d %s", len(words), strings.Join(words, " "))
			}
		}
		for _, u := range manifest.Unresolved(table) {
			if u != "@KEY@" && u != "@IKEY@" {
				return nil, fmt.Errorf("layer %d (%s): placeholder %s has no device", i, l.Name, u)
			}
		}
		s := Step{Index: i, Target: l.Target, Name: l.Name, Sectors: l.Sectors, ReadOnly: ro, Table: table}
		if l.Crypt != nil {
			s.CryptKeySize, s.CryptKeyDesc = l.Crypt.KeySize, l.Crypt.KeyDesc
			if err := keyring.ValidDesc(s.CryptKeyDesc); err != nil {
				return nil, fmt.Errorf("layer %d: %w", i, err)
			}
		}
		if l.Integrity != nil {
			s.IntegrityKeySize = l.Integrity.KeySize
		}
		if l.Verity != nil && l.Verity.RootHashSig != "" {
			s.SigPath = ManifestDir(c.ManifestPath) + "/" + l.Verity.RootHashSig
			s.SigDesc = l.Verity.RootHashSigKeyDesc
			if err := keyring.ValidDesc(s.SigDesc); err != nil {
				return nil, fmt.Errorf("layer %d: root hash signature: %w", i, err)
			}
		}
		p.Steps = append(p.Steps, s)
	}
	p.TopDev = dm.NodePath(m.Layers[len(m.Layers)-1].Name)
	return p, nil
}

// Print writes the dry-run plan as the equivalent keyctl, dmsetup and
// mount commands, line for line what apply_manifest.sh prints (only the
// first comment line differs); keys appear as <key>, keyring references as
// they will be used.
func (p *Plan) Print(w io.Writer) {
	c := p.Cfg
	fmt.Fprintf(w, "# dm-activate plan (dry-run, nothing is run): stack=%s phase=%s fail_action=%s\n", p.Stack, c.Phase, c.FailAction)
	loaded := map[string]bool{}
	for _, s := range p.Steps {
		if s.CryptKeySize > 0 && !loaded[s.CryptKeyDesc] {
			loaded[s.CryptKeyDesc] = true
			fmt.Fprintf(w, "keyctl padd logon %s @u <<< <key>\n", s.CryptKeyDesc)
		}
		if s.SigDesc != "" {
			loaded[s.SigDesc] = true
			fmt.Fprintf(w, "keyctl padd user %s @u < %s\n", s.SigDesc, s.SigPath)
		}
		ro := ""
		if s.ReadOnly {
			ro = " --readonly"
		}
		t := strings.ReplaceAll(s.Table, "@KEY@", keyring.Ref(s.CryptKeySize, s.CryptKeyDesc))
		t = strings.ReplaceAll(t, "@IKEY@", "<key>")
		fmt.Fprintf(w, "dmsetup create%s %s <<< '%s'\n", ro, s.Name, t)
	}
	if len(loaded) > 0 {
		fmt.Fprintln(w, "keyctl unlink <id> @u")
	}
	if c.Phase == PhaseSealed && c.ReadCheck {
		fmt.Fprintf(w, "dd if=%s of=/dev/null bs=1M\n", p.TopDev)
	}
	switch {
	case c.MountCmd != "":
		fmt.Fprintln(w, "sh -c <DMTOOLS_MOUNT_CMD>")
	case p.Mount:
		fmt.Fprintf(w, "mkdir -p %s\n", c.NewRoot)
		fmt.Fprintln(w, p.MountLine())
	}
	if c.Phase == PhaseSealed {
		fmt.Fprintf(w, "# on failure: %s\n", c.FailAction)
	}
}

// MountLine is the mount command of the plan (for the dry-run).
func (p *Plan) MountLine() string {
	l := "mount"
	if p.Cfg.FSType != "" {
		l += " -t " + p.Cfg.FSType
	}
	if p.Cfg.MountOpt != "" {
		l += " -o " + p.Cfg.MountOpt
	}
	return l + " " + p.TopDev + " " + p.Cfg.NewRoot
}

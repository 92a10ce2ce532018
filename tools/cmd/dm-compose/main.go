// Command dm-compose builds a whole rules_dm stack offline and handles its
// manifest:
//
//	dm-compose build --in fs.img --outdir out --stack STACK [options]
//	dm-compose env manifest.json manifest.env
//	dm-compose verify manifest.json [--key-file F | --key-hex HEX] [--in fs.img]
//	dm-compose check-env manifest.env [manifest.json]
//	dm-compose inspect OUTDIR|manifest.json [--json] [--deep]
//
// check-env reads a manifest.env with the strict parser the activators use
// (tools/manifest.ParseEnv + FromEnv) and, given the manifest.json too, checks
// that the env is exactly what `dm-compose env` generates from it.
//
// build draws a progress line on stderr (one per pass: hashing the input,
// copying or encrypting it, the verity tree and FEC, the integrity tags,
// hashing the images back) when stderr is a terminal, unless --quiet.
//
// See docs/design.md (CLI contract) and spec/manifest.md.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/rules-dm/rules_dm/internal/cli"
	"github.com/rules-dm/rules_dm/tools/compose"
	"github.com/rules-dm/rules_dm/tools/internal/progress"
	"github.com/rules-dm/rules_dm/tools/manifest"
)

const usage = "usage: dm-compose build|env|verify|check-env|inspect ... (dm-compose <command> --help)"

func main() { cli.Main("dm-compose", run) }

func run(args []string) error {
	if len(args) == 0 {
		return cli.Usagef("%s", usage)
	}
	switch args[0] {
	case "build":
		return build(args[1:])
	case "env":
		return env(args[1:])
	case "verify":
		return verify(args[1:])
	case "check-env":
		return checkEnv(args[1:])
	case "inspect":
		return inspect(args[1:])
	case "-h", "--help", "help":
		fmt.Println(usage)
		return nil
	}
	return cli.Usagef("unknown command %q; %s", args[0], usage)
}

// optional string flag that remembers whether it was set
type optString struct {
	v   string
	set bool
}

func (o *optString) String() string     { return o.v }
func (o *optString) Set(s string) error { o.v, o.set = s, true; return nil }

func build(args []string) error {
	fs := cli.NewFlagSet("dm-compose build")
	var o compose.Options
	var key cli.KeyFlags
	ikey := cli.KeyFlags{Prefix: "integrity-"}
	var mountOpts optString
	fs.StringVar(&o.In, "in", "", "plaintext filesystem image")
	fs.StringVar(&o.OutDir, "outdir", "", "output directory")
	fs.StringVar(&o.Stack, "stack", "", "stack: "+strings.Join(manifest.Stacks, ", "))
	fs.StringVar(&o.Profile, "profile", "plain-crypt", "plain-crypt, or aead (with --stack integrity-then-crypt: authenticated dm-crypt over dm-integrity in hash-none mode)")
	key.Register(fs, "dm-crypt")
	fs.StringVar(&o.Name, "name", "dmroot", "mapped name of the top layer (lower layers: NAME-<target>)")
	fs.StringVar(&o.Cipher, "cipher", "", "dm-crypt cipher (default aes-xts-plain64; aead: capi:gcm(aes)-random)")
	fs.IntVar(&o.SectorSize, "sector-size", 0, "dm-crypt sector size (default 4096 when the image allows, else 512)")
	fs.BoolVar(&o.IVLargeSectors, "iv-large-sectors", false, "dm-crypt iv_large_sectors")
	fs.StringVar(&o.VerityHash, "verity-hash", "", "verity hash: sha256 (default), sha1, sha512")
	fs.IntVar(&o.VerityDataBlockSize, "verity-data-block-size", 0, "verity data block size (default 4096, or the ext4 block size if smaller)")
	fs.IntVar(&o.VerityHashBlockSize, "verity-hash-block-size", 0, "verity hash block size (default 4096)")
	fs.StringVar(&o.Salt, "salt", "", "verity salt as hex, or - for none (default: derived from --seed)")
	fs.BoolVar(&o.HashOnMeta, "hash-on-meta", false, "put the verity tree on verity.hash.img (META_DEV) instead of appending it to data.img")
	fs.IntVar(&o.VerityFECRoots, "verity-fec-roots", 0, "add verity FEC (Reed-Solomon, 2..24 parity bytes) after the tree on the hash device (default 0: none)")
	fs.StringVar(&o.IntegrityHash, "integrity-hash", "", "integrity hash: crc32c (default), sha256, or hmac-sha256 (with --integrity-key-file)")
	ikey.Register(fs, "dm-integrity hmac-sha256")
	fs.IntVar(&o.IntegrityBlockSize, "integrity-block-size", 0, "integrity block size: 4096 (default when the image allows) or 512")
	fs.StringVar(&o.IntegrityLayout, "integrity-layout", "", "separate (default: tags on integrity.meta.img) or interleaved (single data.img)")
	fs.StringVar(&o.Seed, "seed", "", "seed for salts and UUIDs (default: \"<stack>:<sha256 of the input>\")")
	fs.StringVar(&o.MountFSType, "mount-fstype", "", "mount default: filesystem type (default ext4 when the input is ext4)")
	fs.StringVar(&o.NewRoot, "newroot", "", "mount default: mount point (empty: the activator's default)")
	fs.Var(&mountOpts, "mount-opts", "mount default: options (default ro for verity stacks, else empty)")
	fs.BoolVar(&o.Force, "force", false, "replace an outdir that already holds a manifest")
	fs.StringVar(&o.VeritySignKey, "verity-sign-key", "", "PEM RSA private key: sign the verity root hash (verity.roothash.p7s, detached PKCS#7)")
	fs.StringVar(&o.VeritySignCert, "verity-sign-cert", "", "PEM X.509 certificate of --verity-sign-key (its issuer and serial name the signer)")
	fs.StringVar(&o.Boot.Data, "boot-data-dev", "", "DATA_DEV as boot/* name it (default: partition label NAME-data: PARTLABEL= in dm-mod.create, /dev/disk/by-partlabel/ in the tabs)")
	fs.StringVar(&o.Boot.Meta, "boot-meta-dev", "", "META_DEV as boot/* name it (default: partition label NAME-meta)")
	quiet := fs.Bool("quiet", false, "no progress line on stderr (drawn only when stderr is a terminal)")
	fs.StringVar(&o.Boot.KeyDir, "boot-key-dir", "", "directory of the key files crypttab/integritytab name, <mapped name>.key (default "+compose.DefaultBootKeyDir+")")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return cli.Usagef("build takes no positional arguments (got %q)", pos[0])
	}
	if mountOpts.set {
		o.MountOpts = &mountOpts.v
	}
	// A key is loaded only when one was given; Build decides whether the
	// stack needs one.
	if key.File != "" || key.Hex != "" {
		if o.Key, err = key.Load(true); err != nil {
			return err
		}
	}
	if ikey.File != "" || ikey.Hex != "" {
		if o.IntegrityKey, err = ikey.Load(true); err != nil {
			return err
		}
	}
	o.Log = os.Stderr
	// one bar per pass, each erased when the next pass starts; no hook at
	// all when nothing would be drawn (stderr not a terminal, TERM=dumb,
	// --quiet)
	var bar *progress.Bar
	if progress.Enabled(*quiet) {
		o.Progress = func(pass string, total int64) func(int64) {
			bar.Done()
			bar = progress.New("dm-compose "+pass, total, *quiet)
			return bar.Set
		}
	}
	m, err := compose.Build(o)
	bar.Done() // before the summary or the error
	if err != nil {
		return err
	}
	compose.Summary(os.Stdout, m, o.OutDir)
	return nil
}

func env(args []string) error {
	fs := cli.NewFlagSet("dm-compose env")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return cli.Usagef("usage: dm-compose env manifest.json manifest.env")
	}
	m, err := manifest.Load(pos[0])
	if err != nil {
		return err
	}
	return cli.WriteFileAtomic(pos[1], manifest.WriteEnv(m), 0o644)
}

func verify(args []string) error {
	fs := cli.NewFlagSet("dm-compose verify")
	var key cli.KeyFlags
	key.Register(fs, "dm-crypt")
	ikey := cli.KeyFlags{Prefix: "integrity-"}
	ikey.Register(fs, "dm-integrity hmac-sha256")
	in := fs.String("in", "", "plaintext filesystem image to compare with the manifest's input")
	certPath := fs.String("verity-sign-cert", "", "certificate to check the verity root hash signature with")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Usagef("usage: dm-compose verify manifest.json [--key-file F | --key-hex HEX] [--integrity-key-file F] [--in fs.img]")
	}
	k, err := key.Load(false)
	if err != nil {
		return err
	}
	ik, err := ikey.Load(false)
	if err != nil {
		return err
	}
	vk := compose.VerifyKeys{Crypt: k, Integrity: ik}
	if *certPath != "" {
		if vk.SignCert, err = compose.LoadCert(*certPath); err != nil {
			return err
		}
	}
	return compose.VerifyWith(pos[0], vk, *in, os.Stdout)
}

func checkEnv(args []string) error {
	fs := cli.NewFlagSet("dm-compose check-env")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return cli.Usagef("usage: dm-compose check-env manifest.env [manifest.json]")
	}
	e, err := manifest.LoadEnv(pos[0])
	if err != nil {
		return err
	}
	m, err := manifest.FromEnv(e)
	if err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	if len(pos) == 2 {
		mj, err := manifest.Load(pos[1])
		if err != nil {
			return err
		}
		raw, err := os.ReadFile(pos[0])
		if err != nil {
			return err
		}
		if string(raw) != string(manifest.WriteEnv(mj)) {
			return fmt.Errorf("%s is not what dm-compose env generates from %s", pos[0], pos[1])
		}
	}
	fmt.Printf("ok   %s: %d layers, top %s, stack %s\n", pos[0], len(m.Layers), m.Top(), m.Stack)
	return nil
}

func inspect(args []string) error {
	fs := cli.NewFlagSet("dm-compose inspect")
	asJSON := fs.Bool("json", false, "print JSON instead of tables")
	deep := fs.Bool("deep", false, "also check the sha256 of every artifact (reads them all)")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Usagef("usage: dm-compose inspect OUTDIR|manifest.json [--json] [--deep]")
	}
	in, err := compose.Inspect(pos[0], *deep)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := in.WriteJSON(os.Stdout); err != nil {
			return err
		}
	} else {
		in.WriteText(os.Stdout)
	}
	if n := len(in.Problems); n > 0 {
		return fmt.Errorf("%s: %d problem(s), first: %s", pos[0], n, in.Problems[0])
	}
	return nil
}

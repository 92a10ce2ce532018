// Command dm-manifest is the Bazel rules' glue between layer tools: it merges
// the layer fragments that dm-crypt, dm-verity and dm-integrity write with
// --params-out into manifest.json + manifest.env (the dm_stack rule), and
// appends a separately built dm-verity tree to its data (dm_verity_image with
// hash_device = "data").
//
//	dm-manifest build --stack STACK --input FS --data DATA [--meta META]
//	    [--name NAME] [--profile plain-crypt] [--data-path data.img]
//	    [--meta-path FILE] [--mount-fstype T] [--newroot DIR] [--mount-opts O]
//	    --layer TARGET:PLACEMENT:PARAMS.json ...   (bottom layer first)
//	    MANIFEST_JSON MANIFEST_ENV
//	dm-manifest verity-append --params IN.json --params-out OUT.json DATA TREE OUT
//
// PLACEMENT says where a layer keeps its metadata: "-" for crypt, "data" or
// "meta" for the verity hash tree, "meta" (separate) or "none" (interleaved)
// for integrity. The mapped names, key descriptions and table templates follow
// spec/manifest.md; the result is checked with manifest.Validate.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/rules-dm/rules_dm/internal/cli"
	"github.com/rules-dm/rules_dm/tools/crypt"
	"github.com/rules-dm/rules_dm/tools/manifest"
)

func main() { cli.Main("dm-manifest", run) }

func run(args []string) error {
	if len(args) == 0 {
		return cli.Usagef("missing command (want build or verity-append)")
	}
	switch args[0] {
	case "build":
		return runBuild(args[1:])
	case "verity-append":
		return runVerityAppend(args[1:])
	}
	return cli.Usagef("unknown command %q (want build or verity-append)", args[0])
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// Shapes of the seven named stacks, bottom target first.
var shapes = map[string][]string{
	manifest.StackCryptOnly:          {"crypt"},
	manifest.StackIntegrityOnly:      {"integrity"},
	manifest.StackIntegrityThenCrypt: {"integrity", "crypt"},
	manifest.StackCryptThenIntegrity: {"crypt", "integrity"},
	manifest.StackVerityOnly:         {"verity"},
	manifest.StackVerityThenCrypt:    {"verity", "crypt"},
	manifest.StackCryptThenVerity:    {"crypt", "verity"},
}

type verityFrag struct {
	Target         string `json:"target"`
	Version        int    `json:"version"`
	DataBlockSize  int    `json:"data_block_size"`
	HashBlockSize  int    `json:"hash_block_size"`
	DataBlocks     int64  `json:"data_blocks"`
	DataSectors    int64  `json:"data_sectors"`
	HashStartBlock int64  `json:"hash_start_block"`
	HashOffset     int64  `json:"hash_offset"`
	HashAlgorithm  string `json:"hash_algorithm"`
	RootHash       string `json:"root_hash"`
	Salt           string `json:"salt"`
	Superblock     bool   `json:"superblock"`
	UUID           string `json:"uuid"`
}

type integrityFrag struct {
	Target              string `json:"target"`
	Layout              string `json:"layout"`
	MetaDevice          string `json:"meta_device"`
	TagSize             int    `json:"tag_size"`
	BlockSize           int    `json:"block_size"`
	Mode                string `json:"mode"`
	Hash                string `json:"hash"`
	JournalSections     int64  `json:"journal_sections"`
	JournalSectors      int64  `json:"journal_sectors"`
	InterleaveSectors   int64  `json:"interleave_sectors"`
	BufferSectors       int64  `json:"buffer_sectors"`
	ProvidedDataSectors int64  `json:"provided_data_sectors"`
	FixPadding          bool   `json:"fix_padding"`
	FixHmac             bool   `json:"fix_hmac"`
	Salt                string `json:"salt"`
	KeySize             int    `json:"key_size"`
	Table               string `json:"table"`
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func fileSum(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", fmt.Errorf("read %s: %w", path, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

func runBuild(args []string) error {
	fs := cli.NewFlagSet("dm-manifest build")
	stack := fs.String("stack", "", "stack name (one of the seven)")
	name := fs.String("name", "dmroot", "mapped name of the top layer")
	profile := fs.String("profile", manifest.ProfilePlainCrypt, "plain-crypt (aead is not built by the rules yet)")
	input := fs.String("input", "", "the plaintext filesystem image")
	data := fs.String("data", "", "the data device image")
	meta := fs.String("meta", "", "the metadata device image, if any")
	dataPath := fs.String("data-path", "data.img", "artifact file name of the data image")
	metaPath := fs.String("meta-path", "", "artifact file name of the meta image (default by target)")
	fstype := fs.String("mount-fstype", "", "mount default: file system type")
	newroot := fs.String("newroot", "", "mount default: new root directory")
	mountOpts := fs.String("mount-opts", "", "mount default: options")
	var layers multi
	fs.Var(&layers, "layer", "TARGET:PLACEMENT:PARAMS.json, bottom layer first (repeatable)")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return cli.Usagef("want MANIFEST_JSON and MANIFEST_ENV, got %d arguments", len(pos))
	}
	if *input == "" || *data == "" {
		return cli.Usagef("--input and --data are required")
	}
	shape, ok := shapes[*stack]
	if !ok {
		return cli.Usagef("unknown --stack %q (want one of: %s)", *stack, strings.Join(manifest.Stacks, ", "))
	}
	if len(layers) != len(shape) {
		return fmt.Errorf("stack %s has %d layers (%s), got %d", *stack, len(shape), strings.Join(shape, ", "), len(layers))
	}
	m := &manifest.Manifest{
		SchemaVersion: manifest.SchemaVersion,
		Stack:         *stack,
		Profile:       *profile,
		Name:          *name,
	}
	if m.Input.Size, m.Input.SHA256, err = fileSum(*input); err != nil {
		return err
	}
	metaTarget := ""
	for i, spec := range layers {
		parts := strings.SplitN(spec, ":", 3)
		if len(parts) != 3 {
			return cli.Usagef("--layer %q: want TARGET:PLACEMENT:PARAMS.json", spec)
		}
		target, place, params := parts[0], parts[1], parts[2]
		if target != shape[i] {
			return fmt.Errorf("stack %s: layer %d (bottom first) is %s, want %s", *stack, i, target, shape[i])
		}
		top := i == len(layers)-1
		l := manifest.Layer{
			Index:  i,
			Target: target,
			Name:   manifest.LayerName(*name, target, top),
			Device: manifest.DeviceData,
		}
		dev := "@DATA@"
		if i > 0 {
			l.Device, dev = manifest.DeviceLower, "@LOWER@"
		}
		switch target {
		case "crypt":
			var f crypt.Params
			if err := readJSON(params, &f); err != nil {
				return err
			}
			if place != "-" && place != "" {
				return cli.Usagef("--layer %q: crypt takes placement -", spec)
			}
			l.Sectors = int64(f.Sectors)
			l.Crypt = &manifest.Crypt{
				Cipher:         f.Cipher,
				KeySize:        f.KeySize,
				KeyDesc:        manifest.KeyDesc(*name), // one crypt key per stack, as dm-compose names it
				IVOffset:       int64(f.IVOffset),
				SectorSize:     f.SectorSize,
				IVLargeSectors: f.IVLargeSectors,
			}
			l.Table = crypt.Table(f.Cipher, "@KEY@", f.IVOffset, dev, 0, f.Sectors, f.SectorSize, f.IVLargeSectors, "")
		case "verity":
			var f verityFrag
			if err := readJSON(params, &f); err != nil {
				return err
			}
			hashDev, hashDevName := dev, l.Device
			switch place {
			case "data":
			case "meta":
				hashDev, hashDevName = "@META@", manifest.DeviceMeta
				metaTarget = target
			default:
				return cli.Usagef("--layer %q: verity placement is data or meta", spec)
			}
			l.Sectors = f.DataBlocks * int64(f.DataBlockSize) / 512
			l.Verity = &manifest.Verity{
				Version:        f.Version,
				DataDevice:     l.Device,
				HashDevice:     hashDevName,
				DataBlockSize:  f.DataBlockSize,
				HashBlockSize:  f.HashBlockSize,
				DataBlocks:     f.DataBlocks,
				HashStartBlock: f.HashStartBlock,
				HashOffset:     f.HashOffset,
				HashAlgorithm:  f.HashAlgorithm,
				RootHash:       f.RootHash,
				Salt:           f.Salt,
				Superblock:     f.Superblock,
				UUID:           f.UUID,
			}
			l.Table = fmt.Sprintf("0 %d verity %d %s %s %d %d %d %d %s %s %s",
				l.Sectors, f.Version, dev, hashDev, f.DataBlockSize, f.HashBlockSize,
				f.DataBlocks, f.HashStartBlock, f.HashAlgorithm, f.RootHash, f.Salt)
		case "integrity":
			var f integrityFrag
			if err := readJSON(params, &f); err != nil {
				return err
			}
			metaDev := manifest.DeviceNone
			switch place {
			case "meta":
				if f.Layout != "separate" {
					return fmt.Errorf("--layer %q: placement meta needs the separate layout, got %q", spec, f.Layout)
				}
				metaDev = manifest.DeviceMeta
				metaTarget = target
			case "none":
				if f.Layout != "interleaved" {
					return fmt.Errorf("--layer %q: placement none needs the interleaved layout, got %q", spec, f.Layout)
				}
			default:
				return cli.Usagef("--layer %q: integrity placement is meta or none", spec)
			}
			l.Sectors = f.ProvidedDataSectors
			l.Integrity = &manifest.Integrity{
				TagSize:             f.TagSize,
				Mode:                f.Mode,
				BlockSize:           f.BlockSize,
				Hash:                f.Hash,
				Layout:              f.Layout,
				MetaDevice:          metaDev,
				JournalSectors:      f.JournalSectors,
				JournalSections:     f.JournalSections,
				InterleaveSectors:   f.InterleaveSectors,
				BufferSectors:       f.BufferSectors,
				ProvidedDataSectors: f.ProvidedDataSectors,
				FixPadding:          f.FixPadding,
				FixHmac:             f.FixHmac,
				Salt:                f.Salt,
				KeySize:             f.KeySize,
			}
			if f.KeySize > 0 {
				l.Integrity.KeyDesc = manifest.KeyDesc(l.Name)
			}
			l.Table = strings.ReplaceAll(f.Table, "@DATA@", dev)
		default:
			return cli.Usagef("--layer %q: unknown target", spec)
		}
		m.Layers = append(m.Layers, l)
	}
	// Artifacts.
	a := manifest.Artifact{Role: manifest.RoleData, Path: *dataPath}
	if a.Size, a.SHA256, err = fileSum(*data); err != nil {
		return err
	}
	m.Artifacts = append(m.Artifacts, a)
	if (*meta != "") != (metaTarget != "") {
		return fmt.Errorf("--meta given: %v, but a layer keeps metadata on META_DEV: %v", *meta != "", metaTarget != "")
	}
	if *meta != "" {
		p := *metaPath
		if p == "" {
			p = map[string]string{"verity": "verity.hash.img", "integrity": "integrity.meta.img"}[metaTarget]
		}
		a := manifest.Artifact{Role: manifest.RoleMeta, Path: p}
		if a.Size, a.SHA256, err = fileSum(*meta); err != nil {
			return err
		}
		m.Artifacts = append(m.Artifacts, a)
	}
	if *fstype != "" || *newroot != "" || *mountOpts != "" {
		m.Mount = &manifest.Mount{FSType: *fstype, NewRoot: *newroot, Options: *mountOpts}
	}
	js, err := manifest.Marshal(m)
	if err != nil {
		return err
	}
	env := manifest.WriteEnv(m)
	if err := cli.WriteFileAtomic(pos[0], js, 0o644); err != nil {
		return err
	}
	return cli.WriteFileAtomic(pos[1], env, 0o644)
}

// runVerityAppend writes DATA (zero-padded to the hash block size) followed by
// TREE (a dm-verity hash device written at offset 0) to OUT, and the fragment
// with the tree's new position to --params-out.
func runVerityAppend(args []string) error {
	fs := cli.NewFlagSet("dm-manifest verity-append")
	in := fs.String("params", "", "the dm-verity fragment of TREE")
	out := fs.String("params-out", "", "where to write the fragment for OUT")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 3 || *in == "" || *out == "" {
		return cli.Usagef("want --params IN --params-out OUT DATA TREE OUT")
	}
	var raw map[string]json.RawMessage
	if err := readJSON(*in, &raw); err != nil {
		return err
	}
	var f verityFrag
	if err := readJSON(*in, &f); err != nil {
		return err
	}
	if f.Target != "verity" || f.HashBlockSize <= 0 || f.HashOffset != 0 {
		return fmt.Errorf("%s: not a dm-verity fragment of a tree at offset 0", *in)
	}
	dst, err := cli.Create(pos[2], 0o644)
	if err != nil {
		return err
	}
	defer dst.Abort()
	n, err := appendFile(dst, pos[0])
	if err != nil {
		return err
	}
	if r := n % int64(f.HashBlockSize); r != 0 {
		pad := int64(f.HashBlockSize) - r
		if _, err := dst.Write(make([]byte, pad)); err != nil {
			return err
		}
		n += pad
	}
	if _, err := appendFile(dst, pos[1]); err != nil {
		return err
	}
	shift := n / int64(f.HashBlockSize)
	raw["hash_offset"] = json.RawMessage(strconv.FormatInt(n, 10))
	raw["hash_start_block"] = json.RawMessage(strconv.FormatInt(f.HashStartBlock+shift, 10))
	if err := cli.WriteJSON(*out, raw); err != nil {
		return err
	}
	return dst.Commit()
}

func appendFile(dst io.Writer, path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := io.Copy(dst, f)
	if err != nil {
		return n, fmt.Errorf("copy %s: %w", path, err)
	}
	return n, nil
}

package compose

// dm-compose inspect: what a built outdir holds, layer by layer.

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/rules-dm/rules_dm/tools/manifest"
)

// InspectArtifact is one artifact and what was found on disk.
type InspectArtifact struct {
	manifest.Artifact
	Device       string `json:"device,omitempty"` // DATA_DEV / META_DEV for device images
	Present      bool   `json:"present"`
	ActualSize   int64  `json:"actual_size"`
	SizeOK       bool   `json:"size_ok"`
	SHA256Status string `json:"sha256_status"` // match, mismatch, unchecked, missing
}

// InspectLayer is one layer as the target builds it.
type InspectLayer struct {
	Index   int    `json:"index"`
	Target  string `json:"target"`
	Name    string `json:"name"`
	Mapped  string `json:"mapped"` // /dev/mapper/<name>
	On      string `json:"on"`     // DATA_DEV, /dev/mapper/<lower>, plus META_DEV
	Sectors int64  `json:"sectors"`
	Bytes   int64  `json:"bytes"`
	Details string `json:"details"`
	Table   string `json:"table"`
}

// InspectKey is a secret or keyring entry the activator needs.
type InspectKey struct {
	Layer   int    `json:"layer"`
	Kind    string `json:"kind"` // crypt, integrity-hmac, verity-signature
	Size    int    `json:"size,omitempty"`
	From    string `json:"from"`              // activator environment / file
	Keyring string `json:"keyring,omitempty"` // type:description
}

// Inspection is the --json form of dm-compose inspect.
type Inspection struct {
	Manifest  string            `json:"manifest"`
	Stack     string            `json:"stack"`
	Profile   string            `json:"profile"`
	Name      string            `json:"name"`
	Top       string            `json:"top"`
	Input     manifest.Input    `json:"input"`
	NeedsMeta bool              `json:"needs_meta"`
	Artifacts []InspectArtifact `json:"artifacts"`
	Layers    []InspectLayer    `json:"layers"`
	Keys      []InspectKey      `json:"keys"`
	Mount     *manifest.Mount   `json:"mount,omitempty"`
	Deep      bool              `json:"deep"`
	Problems  []string          `json:"problems"`
}

// Inspect reads OUTDIR/manifest.json (or the given manifest) and checks the
// artifacts: present, size, and with deep also sha256.
func Inspect(target string, deep bool) (*Inspection, error) {
	p := target
	if st, err := os.Stat(target); err == nil && st.IsDir() {
		p = filepath.Join(target, ManifestJSON)
	}
	m, err := manifest.Load(p)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(p)
	in := &Inspection{Manifest: p, Stack: m.Stack, Profile: m.Profile, Name: m.Name, Top: m.Top(),
		Input: m.Input, NeedsMeta: m.NeedsMeta(), Mount: m.Mount, Deep: deep,
		Problems: []string{}, Keys: []InspectKey{}}
	for _, a := range m.Artifacts {
		ia := InspectArtifact{Artifact: a, SHA256Status: "unchecked"}
		ia.Device = map[string]string{manifest.RoleData: "DATA_DEV", manifest.RoleMeta: "META_DEV"}[a.Role]
		fp := filepath.Join(dir, a.Path)
		st, err := os.Stat(fp)
		switch {
		case err != nil:
			ia.SHA256Status = "missing"
			in.Problems = append(in.Problems, fmt.Sprintf("%s: missing", a.Path))
		case !st.Mode().IsRegular():
			ia.SHA256Status = "missing"
			in.Problems = append(in.Problems, fmt.Sprintf("%s: not a regular file", a.Path))
		default:
			ia.Present, ia.ActualSize = true, st.Size()
			ia.SizeOK = st.Size() == a.Size
			if !ia.SizeOK {
				in.Problems = append(in.Problems, fmt.Sprintf("%s: %d bytes, manifest says %d", a.Path, st.Size(), a.Size))
			}
			if deep {
				sum, _, err := sha256File(fp)
				switch {
				case err != nil:
					ia.SHA256Status = "missing"
					in.Problems = append(in.Problems, fmt.Sprintf("%s: %v", a.Path, err))
				case sum == a.SHA256:
					ia.SHA256Status = "match"
				default:
					ia.SHA256Status = "mismatch"
					in.Problems = append(in.Problems, fmt.Sprintf("%s: sha256 %s, manifest says %s", a.Path, sum, a.SHA256))
				}
			}
		}
		in.Artifacts = append(in.Artifacts, ia)
	}
	for i, l := range m.Layers {
		il := InspectLayer{Index: l.Index, Target: l.Target, Name: l.Name, Mapped: "/dev/mapper/" + l.Name,
			Sectors: l.Sectors, Bytes: l.Sectors * 512, Table: l.Table}
		il.On = "DATA_DEV"
		if i > 0 {
			il.On = "/dev/mapper/" + m.Layers[i-1].Name
		}
		var d []string
		switch {
		case l.Verity != nil:
			v := l.Verity
			where := "appended at byte " + fmt.Sprint(v.HashOffset)
			if v.HashDevice == manifest.DeviceMeta {
				where = "on META_DEV"
				il.On += " + META_DEV"
			}
			d = append(d, fmt.Sprintf("%s, blocks %d/%d, tree %s, root %s", v.HashAlgorithm, v.DataBlockSize, v.HashBlockSize, where, v.RootHash))
			if f := fecParams(v.Opts); f != nil {
				d = append(d, fmt.Sprintf("FEC %d roots", f.roots))
			}
			if v.RootHashSig != "" {
				d = append(d, "signed ("+v.RootHashSig+")")
				in.Keys = append(in.Keys, InspectKey{Layer: i, Kind: "verity-signature", From: v.RootHashSig,
					Keyring: "user:" + v.RootHashSigKeyDesc})
			}
		case l.Crypt != nil:
			c := l.Crypt
			d = append(d, fmt.Sprintf("%s, %d-byte key, sector %d", c.Cipher, c.KeySize, c.SectorSize))
			if c.Integrity != "" {
				d = append(d, "integrity:"+c.Integrity)
			}
			if c.IVLargeSectors {
				d = append(d, "iv_large_sectors")
			}
			in.Keys = append(in.Keys, InspectKey{Layer: i, Kind: "crypt", Size: c.KeySize,
				From: "CRYPT_KEY_HEX or CRYPT_KEY_BIN", Keyring: "logon:" + c.KeyDesc})
		case l.Integrity != nil:
			g := l.Integrity
			d = append(d, fmt.Sprintf("hash %s, tag %d, block %d, mode %s, %s layout", g.Hash, g.TagSize, g.BlockSize, g.Mode, g.Layout))
			if g.MetaDevice == manifest.DeviceMeta {
				il.On += " + META_DEV"
			}
			if g.KeySize > 0 {
				in.Keys = append(in.Keys, InspectKey{Layer: i, Kind: "integrity-hmac", Size: g.KeySize,
					From: "INTEGRITY_KEY_HEX or INTEGRITY_KEY_BIN"})
			}
		}
		il.Details = strings.Join(d, "; ")
		in.Layers = append(in.Layers, il)
	}
	return in, nil
}

// WriteJSON prints the inspection as indented JSON.
func (in *Inspection) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(in)
}

// WriteText prints the human form.
func (in *Inspection) WriteText(w io.Writer) {
	fmt.Fprintf(w, "manifest:  %s\n", in.Manifest)
	fmt.Fprintf(w, "stack:     %s (profile %s), top /dev/mapper/%s\n", in.Stack, in.Profile, in.Top)
	fmt.Fprintf(w, "input:     %d bytes, sha256 %s\n", in.Input.Size, in.Input.SHA256)
	devs := "DATA_DEV"
	if in.NeedsMeta {
		devs += " + META_DEV"
	}
	fmt.Fprintf(w, "devices:   %s\n\n", devs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tPATH\tDEVICE\tSIZE\tSTATUS")
	for _, a := range in.Artifacts {
		st := "ok"
		switch {
		case !a.Present:
			st = "MISSING"
		case !a.SizeOK:
			st = fmt.Sprintf("SIZE %d", a.ActualSize)
		case a.SHA256Status == "mismatch":
			st = "SHA256 MISMATCH"
		case a.SHA256Status == "match":
			st = "ok (sha256 matches)"
		default:
			st = "ok (size; --deep checks sha256)"
		}
		dev := a.Device
		if dev == "" {
			dev = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", a.Role, a.Path, dev, a.Size, st)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nlayers, bottom to top:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tTARGET\tMAPPED\tON\tSECTORS\tDETAILS")
	for _, l := range in.Layers {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", l.Index, l.Target, l.Mapped, l.On, l.Sectors, l.Details)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nkeys the activator needs:")
	if len(in.Keys) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, k := range in.Keys {
		switch k.Kind {
		case "crypt":
			fmt.Fprintf(w, "  layer %d crypt: %d-byte key from %s, loaded as %s\n", k.Layer, k.Size, k.From, k.Keyring)
		case "integrity-hmac":
			fmt.Fprintf(w, "  layer %d integrity: %d-byte hmac-sha256 key from %s (hex in the table)\n", k.Layer, k.Size, k.From)
		case "verity-signature":
			fmt.Fprintf(w, "  layer %d verity: root hash signature %s, added as %s (kernel checks it against its trusted keyrings)\n", k.Layer, k.From, k.Keyring)
		}
	}
	if mo := in.Mount; mo != nil {
		fmt.Fprintf(w, "\nmount:     fstype %q, newroot %q, options %q (empty: activator default)\n", mo.FSType, mo.NewRoot, mo.Options)
	}
	if len(in.Problems) > 0 {
		fmt.Fprintln(w, "\nproblems:")
		for _, p := range in.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
}

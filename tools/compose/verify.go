package compose

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rules-dm/rules_dm/tools/crypt"
	"github.com/rules-dm/rules_dm/tools/integrity"
	"github.com/rules-dm/rules_dm/tools/manifest"
	"github.com/rules-dm/rules_dm/tools/verity"
)

// Summary prints a short human summary of a manifest.
func Summary(w io.Writer, m *manifest.Manifest, dir string) {
	fmt.Fprintf(w, "stack:    %s (profile %s)\n", m.Stack, m.Profile)
	fmt.Fprintf(w, "input:    %d bytes, sha256 %s\n", m.Input.Size, m.Input.SHA256)
	for _, a := range m.Artifacts {
		dev := map[string]string{manifest.RoleData: "DATA_DEV", manifest.RoleMeta: "META_DEV",
			manifest.RoleSignature: "root hash signature", manifest.RoleBoot: "boot config"}[a.Role]
		fmt.Fprintf(w, "artifact: %s (%s) %d bytes, sha256 %s\n", filepath.Join(dir, a.Path), dev, a.Size, a.SHA256)
	}
	for _, l := range m.Layers {
		fmt.Fprintf(w, "layer %d:  %s %s: %s\n", l.Index, l.Target, l.Name, l.Table)
		if l.Verity != nil {
			fmt.Fprintf(w, "Root hash: %s\n", l.Verity.RootHash)
		}
	}
	fmt.Fprintf(w, "manifest: %s\n", filepath.Join(dir, ManifestJSON))
}

// view is a device as a layer sees it: bytes [0, size) of r.
type view struct {
	r    io.ReaderAt
	size int64
}

// decryptView decrypts a crypt mapping on the fly (aligned sector reads).
type decryptView struct {
	lower io.ReaderAt
	c     *crypt.Cipher
	size  int64
}

func (d *decryptView) ReadAt(p []byte, off int64) (int, error) {
	if off >= d.size {
		return 0, io.EOF
	}
	ss := int64(d.c.SectorSize())
	n := 0
	for n < len(p) && off < d.size {
		first := off / ss
		start := first * ss
		end := roundUp(off+int64(len(p)-n), ss)
		if end > d.size {
			end = d.size
		}
		if end-start > 1<<20 {
			end = start + 1<<20
		}
		buf := make([]byte, end-start)
		if _, err := d.lower.ReadAt(buf, start); err != nil {
			return n, err
		}
		d.c.DecryptSectors(buf, buf, uint64(first))
		k := copy(p[n:], buf[off-start:])
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// aeadView verifies and decrypts an authenticated crypt mapping on the fly;
// tags holds the [auth tag | IV] entries, one per sector, contiguous.
type aeadView struct {
	lower, tags io.ReaderAt
	a           *crypt.AEAD
	size        int64
}

func (d *aeadView) ReadAt(p []byte, off int64) (int, error) {
	if off >= d.size {
		return 0, io.EOF
	}
	ss, ts := int64(d.a.SectorSize()), int64(d.a.TagSize())
	n := 0
	for n < len(p) && off < d.size {
		first := off / ss
		start := first * ss
		end := roundUp(off+int64(len(p)-n), ss)
		if end > d.size {
			end = d.size
		}
		if end-start > 1<<20 {
			end = start + 1<<20
		}
		buf := make([]byte, end-start)
		tg := make([]byte, (end-start)/ss*ts)
		if _, err := d.lower.ReadAt(buf, start); err != nil {
			return n, err
		}
		if _, err := d.tags.ReadAt(tg, first*ts); err != nil {
			return n, fmt.Errorf("read tags: %w", err)
		}
		if err := d.a.OpenSectors(buf, buf, tg, uint64(first)); err != nil {
			return n, err
		}
		k := copy(p[n:], buf[off-start:])
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// interleavedView maps the logical sectors of an interleaved dm-integrity
// device to its physical sectors (integrity-offline.md).
type interleavedView struct {
	dev              io.ReaderAt
	initial, ileave  int64 // sectors
	metaRun, logical int64
}

func (v *interleavedView) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		if off >= v.logical {
			return n, io.EOF
		}
		s := off / 512
		a, in := s/v.ileave, s%v.ileave
		phys := (v.initial+a*(v.ileave+v.metaRun)+v.metaRun+in)*512 + off%512
		room := (v.ileave-in)*512 - off%512
		want := int64(len(p) - n)
		if want > room {
			want = room
		}
		if want > v.logical-off {
			want = v.logical - off
		}
		k, err := v.dev.ReadAt(p[n:n+int(want)], phys)
		n += k
		off += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

var errNoFEC = errors.New("no FEC")

// verifyFEC checks the parity named by the verity opts (dm-compose puts it
// on the hash device, right after the tree).
func verifyFEC(v *manifest.Verity, data, hash view, size int64) error {
	w := strings.Fields(v.Opts)
	if !strings.Contains(" "+v.Opts+" ", " use_fec_from_device ") {
		if v.Opts != "" && v.Opts != "root_hash_sig_key_desc "+v.RootHashSigKeyDesc {
			return fmt.Errorf("verity opts %q are not checked by dm-compose verify", v.Opts)
		}
		return errNoFEC
	}
	var roots, blocks, start int64 = -1, -1, -1
	dev := ""
	for i := 0; i+1 < len(w); i += 2 {
		var err error
		switch w[i] {
		case "use_fec_from_device":
			dev = w[i+1]
		case "fec_roots":
			roots, err = strconv.ParseInt(w[i+1], 10, 32)
		case "fec_blocks":
			blocks, err = strconv.ParseInt(w[i+1], 10, 64)
		case "fec_start":
			start, err = strconv.ParseInt(w[i+1], 10, 64)
		case "root_hash_sig_key_desc": // checked with the signature artifact
		default:
			return fmt.Errorf("verity opts: %q is not checked by dm-compose verify", w[i])
		}
		if err != nil {
			return fmt.Errorf("verity opts: %s: %w", w[i], err)
		}
	}
	if len(w)%2 != 0 || roots < 0 || blocks < 0 || start < 0 || dev == "" {
		return fmt.Errorf("verity opts %q: want use_fec_from_device/fec_roots/fec_blocks/fec_start", v.Opts)
	}
	want := map[string]string{manifest.DeviceData: "@DATA@", manifest.DeviceMeta: "@META@", manifest.DeviceLower: "@LOWER@"}[v.HashDevice]
	if dev != want {
		return fmt.Errorf("FEC on %s: dm-compose verify checks parity on the hash device (%s) only", dev, want)
	}
	bs := int64(v.DataBlockSize)
	hashStart, fecOff := v.HashStartBlock*bs, start*bs
	if fecOff < hashStart || blocks != v.DataBlocks+(fecOff-hashStart)/bs {
		return fmt.Errorf("FEC: fec_blocks %d / fec_start %d do not fit the tree", blocks, start)
	}
	return verity.VerifyFEC(data.r, size, hash.r, hashStart, fecOff-hashStart, hash.r, fecOff, int(roots), v.DataBlockSize)
}

// Verify checks an outdir against its manifest: sizes and sha256 of every
// artifact, the keyless layers (verity tree, integrity tags) and, with the
// key, decrypts and compares with the recorded input sha256. Layers above a
// crypt layer are only checked with the key.
func Verify(path string, key []byte, in string, out io.Writer) error {
	return VerifyWith(path, VerifyKeys{Crypt: key}, in, out)
}

// VerifyKeys are the keys Verify may use: the dm-crypt key and the
// dm-integrity hmac-sha256 key.
type VerifyKeys struct {
	Crypt, Integrity []byte
	// SignCert, when set, checks the verity root hash signature.
	SignCert *x509.Certificate
}

// VerifyWith is Verify with an optional integrity (hmac) key. Without it, an
// hmac integrity layer and everything above it are skipped.
func VerifyWith(path string, keys VerifyKeys, in string, out io.Writer) error {
	key := keys.Crypt
	m, err := manifest.Load(path)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	files := map[string]*os.File{}
	sizes := map[string]int64{}
	for _, a := range m.Artifacts {
		p := filepath.Join(dir, a.Path)
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("artifact %s: %w", a.Path, err)
		}
		defer f.Close()
		sum, n, err := sha256Reader(f)
		if err != nil {
			return fmt.Errorf("artifact %s: %w", a.Path, err)
		}
		if n != a.Size {
			return fmt.Errorf("artifact %s: size %d, manifest says %d", a.Path, n, a.Size)
		}
		if sum != a.SHA256 {
			return fmt.Errorf("artifact %s: sha256 %s, manifest says %s", a.Path, sum, a.SHA256)
		}
		if a.Role == manifest.RoleData || a.Role == manifest.RoleMeta {
			files[a.Role], sizes[a.Role] = f, n
		}
		fmt.Fprintf(out, "ok   %s: %d bytes, sha256 matches\n", a.Path, n)
	}
	if in != "" {
		sum, n, err := sha256File(in)
		if err != nil {
			return fmt.Errorf("input: %w", err)
		}
		if n != m.Input.Size || sum != m.Input.SHA256 {
			return fmt.Errorf("input %s (%d bytes, sha256 %s) is not the manifest's input (%d bytes, sha256 %s)", in, n, sum, m.Input.Size, m.Input.SHA256)
		}
		fmt.Fprintf(out, "ok   input %s matches the manifest\n", in)
	}
	if len(key) > 0 && !m.HasTarget(manifest.TargetCrypt) {
		return errors.New("a key was given but the stack has no crypt layer")
	}
	hmacLayer := false
	for _, l := range m.Layers {
		hmacLayer = hmacLayer || l.Integrity != nil && l.Integrity.Hash == integrity.HashHMACSHA256
	}
	signed := false
	for _, l := range m.Layers {
		signed = signed || l.Verity != nil && l.Verity.RootHashSig != ""
	}
	if keys.SignCert != nil && !signed {
		return errors.New("a signing certificate was given but no verity layer has a root hash signature")
	}
	if len(keys.Integrity) > 0 && !hmacLayer {
		return errors.New("an integrity key was given but no layer uses hmac-sha256")
	}
	var meta view
	if f := files[manifest.RoleMeta]; f != nil {
		meta = view{f, sizes[manifest.RoleMeta]}
	}
	cur := view{files[manifest.RoleData], sizes[manifest.RoleData]}
	var below *integrity.Report // the integrity layer right under the current one
	for _, l := range m.Layers {
		var rep *integrity.Report
		switch l.Target {
		case manifest.TargetCrypt:
			if len(key) == 0 {
				fmt.Fprintf(out, "skip layer %d (crypt) and above: no key given\n", l.Index)
				return nil
			}
			size := l.Sectors * 512
			if size > cur.size {
				return fmt.Errorf("layer %d (crypt): %d bytes but the device below has %d", l.Index, size, cur.size)
			}
			if strings.HasSuffix(l.Crypt.Integrity, ":aead") {
				a, err := crypt.NewAEAD(l.Crypt.Cipher, key, l.Crypt.SectorSize)
				if err != nil {
					return fmt.Errorf("layer %d (crypt): %w", l.Index, err)
				}
				if below == nil || below.Layout != integrity.LayoutSeparate || below.TagSize != a.TagSize() {
					return fmt.Errorf("layer %d (crypt): an aead crypt layer needs a separate-layout integrity layer with %d-byte tags right below it", l.Index, a.TagSize())
				}
				tags := io.NewSectionReader(meta.r, int64(below.InitialSectors)*512, size/int64(a.SectorSize())*int64(a.TagSize()))
				cur = view{&aeadView{cur.r, tags, a, size}, size}
			} else {
				c, err := crypt.New(crypt.Spec{Cipher: l.Crypt.Cipher, Key: key, SectorSize: l.Crypt.SectorSize,
					IVOffset: uint64(l.Crypt.IVOffset), IVLargeSectors: l.Crypt.IVLargeSectors})
				if err != nil {
					return fmt.Errorf("layer %d (crypt): %w", l.Index, err)
				}
				cur = view{&decryptView{cur.r, c, size}, size}
			}
			fmt.Fprintf(out, "ok   layer %d (crypt %s): decrypting with the given key\n", l.Index, l.Name)
		case manifest.TargetVerity:
			v := l.Verity
			hv := cur
			if v.HashDevice == manifest.DeviceMeta {
				hv = meta
			}
			p := verity.Params{Version: v.Version, Hash: v.HashAlgorithm, DataBlockSize: v.DataBlockSize,
				HashBlockSize: v.HashBlockSize, Superblock: v.Superblock}
			if p.Salt, err = verity.ParseSalt(v.Salt); err != nil {
				return fmt.Errorf("layer %d (verity): %w", l.Index, err)
			}
			if v.UUID != "" {
				if p.UUID, err = verity.ParseUUID(v.UUID); err != nil {
					return fmt.Errorf("layer %d (verity): %w", l.Index, err)
				}
			}
			root, _ := hex.DecodeString(v.RootHash)
			size := l.Sectors * 512
			if err := verity.Verify(cur.r, size, hv.r, v.HashOffset, p, root); err != nil {
				return fmt.Errorf("layer %d (verity %s): %w", l.Index, l.Name, err)
			}
			if v.Opts != "" {
				switch err := verifyFEC(v, cur, hv, size); err {
				case errNoFEC:
				case nil:
					fmt.Fprintf(out, "ok   layer %d (verity %s): FEC parity matches\n", l.Index, l.Name)
				default:
					return fmt.Errorf("layer %d (verity %s): %w", l.Index, l.Name, err)
				}
			}
			if v.RootHashSig != "" {
				sig, err := os.ReadFile(filepath.Join(dir, v.RootHashSig))
				if err != nil {
					return fmt.Errorf("layer %d (verity %s): signature: %w", l.Index, l.Name, err)
				}
				if keys.SignCert == nil {
					fmt.Fprintf(out, "skip layer %d (verity %s): root hash signature not checked (no --verity-sign-cert)\n", l.Index, l.Name)
				} else if err := VerifyRootHashSig(sig, []byte(v.RootHash), keys.SignCert); err != nil {
					return fmt.Errorf("layer %d (verity %s): %s: %w", l.Index, l.Name, v.RootHashSig, err)
				} else {
					fmt.Fprintf(out, "ok   layer %d (verity %s): %s signs the root hash (signer %s)\n", l.Index, l.Name, v.RootHashSig, keys.SignCert.Subject)
				}
			}
			cur = view{cur.r, size}
			fmt.Fprintf(out, "ok   layer %d (verity %s): tree and root hash match\n", l.Index, l.Name)
		case manifest.TargetIntegrity:
			g := l.Integrity
			vp := integrity.VerifyParams{Hash: g.Hash, Mode: g.Mode[0]}
			if g.Hash == integrity.HashHMACSHA256 {
				if len(keys.Integrity) == 0 {
					fmt.Fprintf(out, "skip layer %d (integrity hmac-sha256) and above: no --integrity-key-file given\n", l.Index)
					return nil
				}
				vp.Key = keys.Integrity
			}
			if g.Layout == "separate" {
				rep, err = integrity.VerifySeparate(cur.r, cur.size, meta.r, meta.size, vp)
			} else {
				rep, err = integrity.VerifyInterleaved(cur.r, cur.size, vp)
			}
			if err != nil {
				return fmt.Errorf("layer %d (integrity %s): %w", l.Index, l.Name, err)
			}
			if int64(rep.ProvidedDataSectors) < l.Sectors {
				return fmt.Errorf("layer %d (integrity): device provides %d sectors, table maps %d", l.Index, rep.ProvidedDataSectors, l.Sectors)
			}
			size := l.Sectors * 512
			if g.Layout == "separate" {
				cur = view{cur.r, size}
			} else {
				cur = view{&interleavedView{dev: cur.r, initial: int64(rep.InitialSectors), ileave: int64(rep.InterleaveSectors),
					metaRun: int64(rep.MetadataRunSectors), logical: size}, size}
			}
			if g.Hash == integrity.HashNone {
				fmt.Fprintf(out, "ok   layer %d (integrity %s): superblock and journal (tags belong to the crypt layer above)\n", l.Index, l.Name)
			} else {
				fmt.Fprintf(out, "ok   layer %d (integrity %s): %d block tags match\n", l.Index, l.Name, rep.Blocks)
			}
		}
		below = rep
	}
	if cur.size < m.Input.Size {
		return fmt.Errorf("top device has %d bytes, less than the input's %d", cur.size, m.Input.Size)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(cur.r, 0, m.Input.Size)); err != nil {
		return fmt.Errorf("read top device: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != m.Input.SHA256 {
		return fmt.Errorf("top device content sha256 %s differs from the input's %s", got, m.Input.SHA256)
	}
	fmt.Fprintf(out, "ok   %s: the top device holds the input (sha256 %s)\n", m.Name, m.Input.SHA256)
	return nil
}

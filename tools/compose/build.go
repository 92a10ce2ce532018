package compose

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/rules-dm/rules_dm/internal/cli"
	"github.com/rules-dm/rules_dm/tools/crypt"
	"github.com/rules-dm/rules_dm/tools/integrity"
	"github.com/rules-dm/rules_dm/tools/manifest"
	"github.com/rules-dm/rules_dm/tools/verity"
)

// HashAlign is where an appended verity tree starts: the first multiple of
// 4096 bytes at or after the end of the data.
const HashAlign = 4096

// DefaultSeed is the seed used when none is given.
func DefaultSeed(stack, inputSHA256 string) string { return stack + ":" + inputSHA256 }

type builder struct {
	*plan
	seed      string
	in        *os.File
	inSHA     string
	tmps      []*cli.File // open temporaries (aborted on failure)
	committed []string    // final paths written by this run (removed on failure)
	layers    []manifest.Layer
	data      *cli.File
	meta      *cli.File
	metaName  string
	hashEnd   int64 // end of the tree (and FEC) on the hash device
}

// Build runs dm-compose build and returns the manifest it wrote.
func Build(o Options) (m *manifest.Manifest, err error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	p := &plan{Options: o}
	if err := p.check(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("outdir: %w", err)
	}
	// one build per outdir at a time; released on return, failure or signal
	unlock, err := cli.LockDir(o.OutDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// all or nothing: whatever this run commits is removed again if it then
	// fails or is signalled (cli.Main), an earlier run's files never
	for _, n := range []string{DataFile, IntegrityMeta, VerityHash, VeritySig, ManifestEnv, ManifestJSON} {
		cli.UndoOnFailure(outPath(o.OutDir, n))
	}
	for _, n := range []string{BootDMModCreate, BootVeritytab, BootIntegritytab, BootCrypttab} {
		cli.UndoOnFailure(outPath(outPath(o.OutDir, manifest.BootDir), n))
	}
	mj := outPath(o.OutDir, ManifestJSON)
	if _, err := os.Lstat(mj); err == nil && !o.Force {
		return nil, fmt.Errorf("outdir %s already holds %s (use --force to replace it)", o.OutDir, ManifestJSON)
	}
	in, err := os.Open(o.In)
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	defer in.Close()
	inSt, _ := in.Stat()
	for _, n := range []string{DataFile, IntegrityMeta, VerityHash, VeritySig} {
		if st, err := os.Stat(outPath(o.OutDir, n)); err == nil && os.SameFile(st, inSt) {
			return nil, fmt.Errorf("input %s is an output of this outdir; copy it elsewhere first", o.In)
		}
	}
	// probe writability before any long work
	probe, err := cli.Create(outPath(o.OutDir, DataFile), 0o644)
	if err != nil {
		return nil, fmt.Errorf("outdir %s is not writable: %w", o.OutDir, errors.Unwrap(err))
	}
	probe.Abort()
	if o.Force {
		for _, n := range []string{ManifestJSON, ManifestEnv} {
			if err := os.Remove(outPath(o.OutDir, n)); err != nil && !os.IsNotExist(err) {
				return nil, fmt.Errorf("--force: %w", err)
			}
		}
	}
	for _, n := range p.notes {
		fmt.Fprintf(o.Log, "dm-compose: %s\n", n)
	}
	inSHA, n, err := sha256Reader(&progressReader{r: io.NewSectionReader(in, 0, p.size), set: p.pass("sha256 input", p.size)})
	if err != nil {
		return nil, fmt.Errorf("read input %s: %w", o.In, err)
	}
	if n != p.size {
		return nil, fmt.Errorf("read input %s: got %d bytes, expected %d (file changed?)", o.In, n, p.size)
	}
	b := &builder{plan: p, in: in, inSHA: inSHA, seed: o.Seed}
	if b.seed == "" {
		b.seed = DefaultSeed(o.Stack, inSHA)
	}
	defer func() {
		if err != nil {
			for _, t := range b.tmps {
				t.Abort()
			}
			for _, c := range b.committed {
				os.Remove(c)
			}
			os.Remove(outPath(o.OutDir, manifest.BootDir)) // only when empty
			m = nil
		}
	}()
	// boot/ exists before the long work, so that a signal at any later point
	// finds it declared (a directory made after the signal cleanup would stay)
	bootDir := outPath(o.OutDir, manifest.BootDir)
	if _, err := os.Stat(bootDir); os.IsNotExist(err) {
		cli.UndoDirOnFailure(bootDir)
	}
	if err := os.MkdirAll(bootDir, 0o755); err != nil {
		return nil, fmt.Errorf("outdir: %w", err)
	}
	if err := b.run(); err != nil {
		return nil, err
	}
	if has(b.Stack, "crypt") {
		if err := b.data.SetPerm(0o644); err != nil { // encrypted now
			return nil, err
		}
	}
	return b.finish()
}

func (b *builder) create(name string) (*cli.File, error) {
	f, err := cli.Create(outPath(b.OutDir, name), 0o644)
	if err != nil {
		return nil, err
	}
	b.tmps = append(b.tmps, f)
	return f, nil
}

func (b *builder) createMeta(name string) error {
	f, err := b.create(name)
	if err != nil {
		return err
	}
	b.meta, b.metaName = f, name
	return nil
}

// pass announces a long pass to Options.Progress and returns where to
// report the bytes done (a no-op without Progress).
func (p *plan) pass(name string, total int64) func(int64) {
	if p.Progress != nil {
		if set := p.Progress(name, total); set != nil {
			return set
		}
	}
	return func(int64) {}
}

// adder turns a set-style progress func into one told increments (from
// several goroutines at once).
func adder(set func(int64)) func(int64) {
	var n atomic.Int64
	return func(d int64) { set(n.Add(d)) }
}

// progressReader reports the bytes read so far.
type progressReader struct {
	r   io.Reader
	n   int64
	set func(int64)
}

func (c *progressReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.set(c.n)
	return n, err
}

// progressWriterAt reports the end of each write, less base.
type progressWriterAt struct {
	w    io.WriterAt
	base int64
	set  func(int64)
}

func (c *progressWriterAt) WriteAt(p []byte, off int64) (int, error) {
	n, err := c.w.WriteAt(p, off)
	c.set(off + int64(n) - c.base)
	return n, err
}

// encrypt encrypts size bytes of src into dst (the same file for in-place
// passes) with crypt.EncryptFile: parallel chunks, holes of a sparse input
// not read, O_DIRECT writes where the filesystem allows them.
func (b *builder) encrypt(dst, src *os.File, size int64) error {
	opt := &crypt.FileOptions{Progress: adder(b.pass("encrypt", size))}
	if err := crypt.EncryptFile(dst, src, size, b.cipher, opt); err != nil {
		return fmt.Errorf("encrypt: %w", err)
	}
	return nil
}

// copyInput copies the input to dst, leaving holes of a sparse input as
// holes (SEEK_DATA/SEEK_HOLE; the verity tree then skips them too).
func (b *builder) copyInput(dst *cli.File) error {
	if err := sparseCopy(dst.File, b.in, b.size, b.pass("copy input", b.size)); err != nil {
		return fmt.Errorf("copy input: %w", err)
	}
	return nil
}

const (
	seekData = 3 // SEEK_DATA
	seekHole = 4 // SEEK_HOLE
)

// set is told the offset copied up to (holes skipped included).
func sparseCopy(dst, src *os.File, size int64, set func(int64)) error {
	buf := make([]byte, 1<<20)
	w := &progressWriterAt{w: dst, set: set}
	copyRange := func(from, to int64) error {
		_, err := io.CopyBuffer(io.NewOffsetWriter(w, from), io.NewSectionReader(src, from, to-from), buf)
		return err
	}
	for off := int64(0); off < size; {
		d, err := src.Seek(off, seekData)
		if err != nil {
			if errors.Is(err, syscall.ENXIO) { // only a hole is left
				break
			}
			return copyRange(off, size) // no SEEK_DATA here: copy everything
		}
		if d >= size {
			break
		}
		h, err := src.Seek(d, seekHole)
		if err != nil || h > size {
			h = size
		}
		if h <= d {
			return copyRange(d, size)
		}
		if err := copyRange(d, h); err != nil {
			return err
		}
		off = h
		set(off)
	}
	set(size)
	return dst.Truncate(size)
}

func setSize(f *cli.File, size int64) error {
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("size %s: %w", f.Final(), err)
	}
	return nil
}

func (b *builder) run() error {
	var err error
	if b.data, err = b.create(DataFile); err != nil {
		return err
	}
	if has(b.Stack, "crypt") {
		// crypt-then-* stacks stage plaintext in it until the in-place
		// encryption: owner-only until Build has encrypted it
		if err := b.data.SetPerm(0o600); err != nil {
			return err
		}
	}
	N := b.size
	switch b.Stack {
	case manifest.StackCryptOnly:
		if err := b.encrypt(b.data.File, b.in, N); err != nil {
			return err
		}
		b.addCrypt("@DATA@", N)

	case manifest.StackVerityOnly, manifest.StackVerityThenCrypt:
		var base io.ReaderAt = b.in
		if b.Stack == manifest.StackVerityThenCrypt {
			if err := b.encrypt(b.data.File, b.in, N); err != nil {
				return err
			}
			base = b.data
		} else if err := b.copyInput(b.data); err != nil {
			return err
		}
		if err := b.verity(base, N, "@DATA@"); err != nil {
			return err
		}
		if b.Stack == manifest.StackVerityThenCrypt {
			b.addCrypt("@LOWER@", N)
		}

	case manifest.StackCryptThenVerity:
		if err := b.copyInput(b.data); err != nil {
			return err
		}
		if err := b.verity(b.data, N, "@DATA@"); err != nil {
			return err
		}
		total := roundUp(b.hashEnd, HashAlign)
		if err := setSize(b.data, total); err != nil {
			return err
		}
		if err := b.encrypt(b.data.File, b.data.File, total); err != nil {
			return err
		}
		v := b.layers[0]
		b.layers = nil
		b.addCrypt("@DATA@", total)
		// the verity layer now sits on the crypt mapping
		v.Verity.DataDevice, v.Verity.HashDevice = manifest.DeviceLower, manifest.DeviceLower
		v.Verity.Opts = strings.ReplaceAll(v.Verity.Opts, "@DATA@", "@LOWER@")
		v.Table = verityTable(v.Verity, v.Sectors)
		b.layers = append(b.layers, v)

	case manifest.StackIntegrityThenCrypt:
		if b.aead != nil {
			return b.aeadIntegrityThenCrypt()
		}
		if err := b.integrityStack(); err != nil {
			return err
		}
	case manifest.StackIntegrityOnly, manifest.StackCryptThenIntegrity:
		if err := b.integrityStack(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("stack %s is not supported", b.Stack)
	}
	return nil
}

// aeadIntegrityThenCrypt builds the aead profile: authenticated dm-crypt
// (integrity:<tag>:aead) over dm-integrity in hash-none mode whose separate
// metadata image holds the per-sector [auth tag | IV] entries
// (aead-offline.md).
func (b *builder) aeadIntegrityThenCrypt() error {
	N := b.size
	a := b.aead
	if err := b.createMeta(IntegrityMeta); err != nil {
		return err
	}
	tags, err := b.create(".aead-tags")
	if err != nil {
		return err
	}
	defer tags.Abort()
	dst := &progressWriterAt{w: b.data, set: b.pass("encrypt", N)}
	if err := crypt.EncryptAEAD(dst, tags, b.in, N, a); err != nil {
		return fmt.Errorf("encrypt: %w", err)
	}
	nTags := N / int64(a.SectorSize()) * int64(a.TagSize())
	ip := integrity.Params{Hash: integrity.HashNone, TagSize: a.TagSize(), BlockSize: a.SectorSize(),
		Layout: integrity.LayoutSeparate, Mode: 'J', Tags: io.NewSectionReader(tags.File, 0, nTags),
		Progress: adder(b.pass("integrity tags", N))}
	r, err := integrity.FormatSeparate(nil, N, b.meta, ip)
	if err != nil {
		return fmt.Errorf("integrity: %w", err)
	}
	b.addIntegrity(r, "@DATA@")
	sectors := N / 512
	b.layers = append(b.layers, manifest.Layer{Target: manifest.TargetCrypt, Sectors: sectors,
		Table: crypt.Table(a.Spec(), "@KEY@", 0, "@LOWER@", 0, uint64(sectors), a.SectorSize(), false, a.IntegrityArg()),
		Crypt: &manifest.Crypt{Cipher: a.Spec(), KeySize: a.KeySize(), KeyDesc: manifest.KeyDesc(b.Name),
			SectorSize: a.SectorSize(), Integrity: a.IntegrityArg()}})
	return nil
}

func (b *builder) integrityStack() error {
	N := b.size
	ip := b.ip
	ip.Salt = integrity.DeriveSalt(b.seed+"/integrity", ip)
	sep := ip.Layout == integrity.LayoutSeparate
	// the params of the tags pass, announced as the pass starts
	tagsPass := func() integrity.Params {
		q := ip
		q.Progress = adder(b.pass("integrity tags", N))
		return q
	}
	if sep {
		if err := b.createMeta(IntegrityMeta); err != nil {
			return err
		}
	}
	var r *integrity.Result
	var err error
	switch b.Stack {
	case manifest.StackIntegrityOnly:
		if sep {
			if err := b.copyInput(b.data); err != nil {
				return err
			}
			r, err = integrity.FormatSeparate(b.in, N, b.meta, tagsPass())
		} else {
			r, err = integrity.FormatInterleaved(b.in, N, b.data, tagsPass())
		}
		if err != nil {
			return fmt.Errorf("integrity: %w", err)
		}
		b.addIntegrity(r, "@DATA@")
	case manifest.StackIntegrityThenCrypt:
		if sep {
			if err := b.encrypt(b.data.File, b.in, N); err != nil {
				return err
			}
			r, err = integrity.FormatSeparate(b.data, N, b.meta, tagsPass())
		} else {
			tmp, err2 := b.create(".ciphertext")
			if err2 != nil {
				return err2
			}
			if err := b.encrypt(tmp.File, b.in, N); err != nil {
				return err
			}
			r, err = integrity.FormatInterleaved(tmp, N, b.data, tagsPass())
			tmp.Abort()
		}
		if err != nil {
			return fmt.Errorf("integrity: %w", err)
		}
		b.addIntegrity(r, "@DATA@")
		b.addCrypt("@LOWER@", N)
	case manifest.StackCryptThenIntegrity:
		total := N
		if sep {
			if r, err = integrity.FormatSeparate(b.in, N, b.meta, tagsPass()); err != nil {
				return fmt.Errorf("integrity: %w", err)
			}
			if err := b.encrypt(b.data.File, b.in, N); err != nil {
				return err
			}
		} else {
			if r, err = integrity.FormatInterleaved(b.in, N, b.data, tagsPass()); err != nil {
				return fmt.Errorf("integrity: %w", err)
			}
			total = r.DeviceBytes
			if total%int64(b.SectorSize) != 0 {
				return fmt.Errorf("interleaved device of %d bytes is not a multiple of the crypt sector size %d", total, b.SectorSize)
			}
			if err := b.encrypt(b.data.File, b.data.File, total); err != nil {
				return err
			}
		}
		b.addCrypt("@DATA@", total)
		b.addIntegrity(r, "@LOWER@")
	}
	return nil
}

func roundUp(v, a int64) int64 { return (v + a - 1) / a * a }

// verity builds the tree over the first size bytes of data, appended to
// data.img at the next 4096 boundary, or on verity.hash.img.
func (b *builder) verity(data io.ReaderAt, size int64, dev string) error {
	vp := b.vp
	if b.Salt == "" {
		vp.Salt = verity.DeriveSalt(b.seed, vp)
	}
	vp.UUID = verity.DeriveUUID(b.seed, vp, vp.Salt)
	hashDev, off := dev, roundUp(size, HashAlign)
	var hw io.WriterAt = b.data
	if b.HashOnMeta {
		if err := b.createMeta(VerityHash); err != nil {
			return err
		}
		hw, hashDev, off = b.meta, "@META@", 0
	}
	r, err := verity.FormatWith(data, size, hw, off, vp, verity.Options{Progress: b.pass("verity tree", size)})
	if err != nil {
		return fmt.Errorf("verity: %w", err)
	}
	end := off + r.HashBytes
	hf := b.data
	if b.HashOnMeta {
		hf = b.meta
	}
	if err := setSize(hf, end); err != nil {
		return err
	}
	opts := ""
	if b.VerityFECRoots != 0 {
		// parity after the tree, on the hash device; it covers the data and
		// the hash blocks from hash_start_block up to the parity.
		bs := int64(vp.DataBlockSize)
		fecOff := roundUp(end, bs)
		hashStart := int64(r.HashStartBlock) * bs
		// progress in bytes covered (data and tree), as the other passes
		// count: the parity is written in order, each part covering its
		// share of them
		covered := size + fecOff - hashStart
		fecBytes := verity.FECSize(uint64(covered/bs), b.VerityFECRoots, vp.DataBlockSize)
		set := b.pass("verity FEC", covered)
		fw := &progressWriterAt{w: hf, base: fecOff, set: func(n int64) {
			set(int64(float64(n) / float64(fecBytes) * float64(covered)))
		}}
		fr, err := verity.EncodeFEC(data, size, hf, hashStart, fecOff-hashStart, fw, fecOff, b.VerityFECRoots, vp.DataBlockSize)
		if err != nil {
			return fmt.Errorf("verity FEC: %w", err)
		}
		end = fecOff + fr.Bytes
		if err := setSize(hf, end); err != nil {
			return err
		}
		opts = verity.FECOptions(fr, hashDev)
	}
	b.hashEnd = end
	devName := map[string]string{"@DATA@": manifest.DeviceData, "@LOWER@": manifest.DeviceLower, "@META@": manifest.DeviceMeta}
	v := &manifest.Verity{
		Version: vp.Version, DataDevice: devName[dev], HashDevice: devName[hashDev],
		DataBlockSize: vp.DataBlockSize, HashBlockSize: vp.HashBlockSize,
		DataBlocks: int64(r.DataBlocks), HashStartBlock: int64(r.HashStartBlock), HashOffset: off,
		HashAlgorithm: vp.Hash, RootHash: r.RootHex(), Salt: verity.SaltString(vp.Salt),
		Superblock: vp.Superblock, Opts: opts,
	}
	if vp.Superblock {
		v.UUID = verity.FormatUUID(vp.UUID)
	}
	sectors := size / 512
	l := manifest.Layer{Target: manifest.TargetVerity, Sectors: sectors, Verity: v}
	l.Table = verity.Table(vp, r, dev, hashDev)
	if want := verityTable(v, sectors); l.Table != want {
		return fmt.Errorf("internal: verity table %q differs from the manifest form %q", l.Table, want)
	}
	b.layers = append(b.layers, l)
	return nil
}

func verityTable(v *manifest.Verity, sectors int64) string {
	dev := map[string]string{manifest.DeviceData: "@DATA@", manifest.DeviceMeta: "@META@", manifest.DeviceLower: "@LOWER@"}
	return fmt.Sprintf("0 %d verity %d %s %s %d %d %d %d %s %s %s", sectors, v.Version,
		dev[v.DataDevice], dev[v.HashDevice], v.DataBlockSize, v.HashBlockSize,
		v.DataBlocks, v.HashStartBlock, v.HashAlgorithm, v.RootHash, v.Salt)
}

func (b *builder) addCrypt(dev string, size int64) {
	sectors := size / 512
	c := &manifest.Crypt{
		Cipher: b.Cipher, KeySize: len(b.Key), KeyDesc: manifest.KeyDesc(b.Name),
		SectorSize: b.SectorSize, IVLargeSectors: b.IVLargeSectors,
	}
	t := crypt.Table(b.Cipher, "@KEY@", 0, dev, 0, uint64(sectors), b.SectorSize, b.IVLargeSectors, "")
	b.layers = append(b.layers, manifest.Layer{Target: manifest.TargetCrypt, Sectors: sectors, Table: t, Crypt: c})
}

func (b *builder) addIntegrity(r *integrity.Result, dev string) {
	g := &manifest.Integrity{
		TagSize: r.TagSize, Mode: string(r.Mode), BlockSize: r.BlockSize, Hash: r.Hash, Layout: r.Layout,
		MetaDevice: manifest.DeviceNone, JournalSectors: int64(r.JournalSectors), JournalSections: int64(r.JournalSections),
		InterleaveSectors: int64(r.InterleaveSectors), BufferSectors: int64(r.BufferSectors),
		ProvidedDataSectors: int64(r.ProvidedDataSectors), FixPadding: r.FixPadding, FixHmac: r.FixHMAC,
		Salt: hex.EncodeToString(r.Salt), KeySize: r.KeySize,
	}
	meta := ""
	if r.Layout == integrity.LayoutSeparate {
		g.MetaDevice, meta = manifest.DeviceMeta, "@META@"
	}
	b.layers = append(b.layers, manifest.Layer{Target: manifest.TargetIntegrity,
		Sectors: int64(r.ProvidedDataSectors), Table: r.Table(dev, meta), Integrity: g})
}

// artifact syncs a temporary image, hashes it and commits it.
func (b *builder) artifact(f *cli.File, role, name string) (manifest.Artifact, error) {
	a := manifest.Artifact{Role: role, Path: name}
	if err := f.Sync(); err != nil {
		return a, fmt.Errorf("write %s: %w", name, err)
	}
	st, err := f.Stat()
	if err != nil {
		return a, err
	}
	var r io.Reader = io.NewSectionReader(f.File, 0, st.Size())
	if role == manifest.RoleData || role == manifest.RoleMeta { // the images
		r = &progressReader{r: r, set: b.pass("sha256 "+name, st.Size())}
	}
	a.SHA256, a.Size, err = sha256Reader(r)
	if err != nil {
		return a, fmt.Errorf("read back %s: %w", name, err)
	}
	if err := f.Commit(); err != nil {
		return a, err
	}
	b.committed = append(b.committed, f.Final())
	return a, nil
}

func (b *builder) finish() (*manifest.Manifest, error) {
	m := &manifest.Manifest{
		SchemaVersion: manifest.SchemaVersion, Stack: b.Stack, Profile: b.Profile, Name: b.Name,
		Input: manifest.Input{Size: b.size, SHA256: b.inSHA},
	}
	var sig []byte
	for i := range b.layers {
		l := &b.layers[i]
		l.Index = i
		l.Device = manifest.DeviceLower
		if i == 0 {
			l.Device = manifest.DeviceData
		}
		l.Name = manifest.LayerName(b.Name, l.Target, i == len(b.layers)-1)
		if v := l.Verity; v != nil && b.signer != nil {
			// the kernel verifies the signature over the root hash as the
			// table spells it: lowercase hex, no newline
			var err error
			if sig, err = b.signer.Sign([]byte(v.RootHash)); err != nil {
				return nil, err
			}
			v.RootHashSig, v.RootHashSigKeyDesc = VeritySig, manifest.SigKeyDesc(l.Name)
			v.Opts = strings.TrimSpace(v.Opts + " root_hash_sig_key_desc " + v.RootHashSigKeyDesc)
		}
	}
	m.Layers = b.layers
	mo := &manifest.Mount{FSType: b.MountFSType, NewRoot: b.NewRoot}
	if b.MountOpts != nil {
		mo.Options = *b.MountOpts
	} else if has(b.Stack, "verity") {
		mo.Options = "ro"
	}
	m.Mount = mo
	// validate before committing anything (artifact hashes are filled below)
	probe := *m
	fake := func(role, path string) manifest.Artifact {
		return manifest.Artifact{Role: role, Path: path, Size: 1, SHA256: b.inSHA}
	}
	probe.Artifacts = []manifest.Artifact{fake(manifest.RoleData, DataFile)}
	if b.meta != nil {
		probe.Artifacts = append(probe.Artifacts, fake(manifest.RoleMeta, b.metaName))
	}
	if sig != nil {
		probe.Artifacts = append(probe.Artifacts, fake(manifest.RoleSignature, VeritySig))
	}
	if err := probe.Validate(); err != nil {
		return nil, fmt.Errorf("internal: %w", err)
	}
	boot, err := bootFiles(&probe, b.Boot, sig)
	if err != nil {
		return nil, err
	}
	a, err := b.artifact(b.data, manifest.RoleData, DataFile)
	if err != nil {
		return nil, err
	}
	m.Artifacts = append(m.Artifacts, a)
	if b.meta != nil {
		a, err := b.artifact(b.meta, manifest.RoleMeta, b.metaName)
		if err != nil {
			return nil, err
		}
		m.Artifacts = append(m.Artifacts, a)
	}
	small := func(role, name string, body []byte) error {
		f, err := b.create(name)
		if err != nil {
			return err
		}
		if _, err := f.Write(body); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		a, err := b.artifact(f, role, name)
		if err != nil {
			return err
		}
		m.Artifacts = append(m.Artifacts, a)
		return nil
	}
	if sig != nil {
		if err := small(manifest.RoleSignature, VeritySig, sig); err != nil {
			return nil, err
		}
	}
	bootDir := outPath(b.OutDir, manifest.BootDir)
	produced := map[string]bool{}
	for _, f := range boot {
		name := manifest.BootDir + "/" + f.name
		produced[f.name] = true
		if err := small(manifest.RoleBoot, name, f.body); err != nil {
			return nil, err
		}
	}
	js, err := manifest.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("internal: %w", err)
	}
	if err := cli.WriteFileAtomic(outPath(b.OutDir, ManifestEnv), manifest.WriteEnv(m), 0o644); err != nil {
		return nil, err
	}
	b.committed = append(b.committed, outPath(b.OutDir, ManifestEnv))
	if err := cli.WriteFileAtomic(outPath(b.OutDir, ManifestJSON), js, 0o644); err != nil {
		return nil, err
	}
	// remove files of an earlier build that this build does not produce
	for _, n := range []string{IntegrityMeta, VerityHash} {
		if b.meta == nil || n != b.metaName {
			os.Remove(outPath(b.OutDir, n))
		}
	}
	if sig == nil {
		os.Remove(outPath(b.OutDir, VeritySig))
	}
	for _, n := range []string{BootDMModCreate, BootVeritytab, BootIntegritytab, BootCrypttab} {
		if !produced[n] {
			os.Remove(outPath(bootDir, n))
		}
	}
	os.Remove(bootDir) // only when empty
	return m, nil
}

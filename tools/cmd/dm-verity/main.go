// Command dm-verity builds and checks dm-verity hash trees offline, writing
// the same bytes as `veritysetup format`.
//
//	dm-verity format [flags] DATA HASH
//	dm-verity verify [flags] DATA HASH ROOT
//
// format prints a veritysetup-like summary (or JSON with --json) whose
// "Root hash:" line holds the lowercase hex root hash, and with --params-out
// writes the layer's manifest fragment. The defaults are veritysetup's
// (sha256, 4096-byte blocks, format 1, superblock) except that the salt (32
// bytes) and UUID are derived from --seed and the parameters, never random.
//
// DATA and HASH may be the same file: the tree is then written in place at
// --hash-offset (which must be given, and lie at or past the data) and DATA is
// not truncated; the data covered is --data-blocks blocks, else the bytes
// before the offset, else (an offset past the end of the file) the whole
// blocks the file holds, as veritysetup does: the file then grows to hold the
// tree, by at most 1 GiB past its end, and goes back to its size on failure
// or SIGINT/SIGTERM/SIGHUP. A separate HASH file is written atomically (temporary
// file, then rename), zero-filled before --hash-offset; a HASH that is a
// block device is written in place.
//
// verify reads the superblock at --hash-offset (unless --no-superblock, when
// the parameters come from the flags) and exits 0 when data and tree match
// ROOT, 1 naming the first bad block. With --fec-device it then also
// recomputes the FEC parity and compares it. Exit 2 is bad usage.
//
// --quiet turns off the progress line (percentage, MB/s, ETA) that format
// and verify draw on stderr while hashing, only when stderr is a terminal.
//
// --fec-device FILE --fec-roots N [--fec-offset BYTES] on format writes
// Reed-Solomon parity as `veritysetup format --fec-device` does (equal data
// and hash block sizes; FILE may be HASH or DATA, with the offset past what
// they hold); the table's FEC words are in the "fec" object of --params-out.
package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rules-dm/rules_dm/internal/cli"
	"github.com/rules-dm/rules_dm/tools/internal/progress"
	"github.com/rules-dm/rules_dm/tools/verity"
)

const prog = "dm-verity"

func main() { cli.Main(prog, run) }

func run(args []string) error {
	if len(args) == 0 {
		return cli.Usagef("missing command (want format or verify)")
	}
	switch args[0] {
	case "format":
		return runFormat(args[1:])
	case "verify":
		return runVerify(args[1:])
	case "-h", "--help", "help":
		fmt.Println("usage: dm-verity format [flags] DATA HASH | dm-verity verify [flags] DATA HASH ROOT (see --help of each)")
		return nil
	}
	return cli.Usagef("unknown command %q (want format or verify)", args[0])
}

// paramFlags are the flags format and verify share.
type paramFlags struct {
	fs            *flag.FlagSet
	hash          string
	dataBlockSize int
	hashBlockSize int
	salt          string
	version       int
	noSuperblock  bool
	hashOffset    int64
	dataBlocks    int64
	uuid          string
	seed          string
	quiet         bool
}

func newParamFlags(name string) *paramFlags {
	f := &paramFlags{fs: cli.NewFlagSet(prog + " " + name)}
	fs := f.fs
	fs.StringVar(&f.hash, "hash", verity.DefaultHash, "hash algorithm: sha256, sha1 or sha512")
	fs.IntVar(&f.dataBlockSize, "data-block-size", verity.DefaultBlockSize, "data block size in bytes (512..4096, power of two)")
	fs.IntVar(&f.hashBlockSize, "hash-block-size", verity.DefaultBlockSize, "hash block size in bytes (512..4096, power of two)")
	fs.StringVar(&f.salt, "salt", "", "salt as hex, or - for none (default: 32 bytes derived from --seed and the parameters)")
	fs.IntVar(&f.version, "format", verity.DefaultVersion, "hash format: 1 (normal) or 0 (Chrome OS)")
	fs.BoolVar(&f.noSuperblock, "no-superblock", false, "write (or expect) no superblock")
	fs.Int64Var(&f.hashOffset, "hash-offset", 0, "byte offset of the superblock/tree in HASH (multiple of 512; of the hash block size with --no-superblock)")
	fs.Int64Var(&f.dataBlocks, "data-blocks", 0, "data blocks to cover (default: all of DATA, or the bytes before --hash-offset when DATA is HASH)")
	fs.StringVar(&f.uuid, "uuid", "", "superblock UUID (default: derived from --seed, the parameters and the salt)")
	fs.StringVar(&f.seed, "seed", "", "seed for the derived salt and UUID")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress line on stderr (shown only when stderr is a terminal)")
	return f
}

func (f *paramFlags) set(name string) bool {
	found := false
	f.fs.Visit(func(fl *flag.Flag) {
		if fl.Name == name {
			found = true
		}
	})
	return found
}

// params turns the flags into verity.Params; bad values are usage errors.
func (f *paramFlags) params() (verity.Params, error) {
	p := verity.Params{
		Version:       f.version,
		Hash:          f.hash,
		DataBlockSize: f.dataBlockSize,
		HashBlockSize: f.hashBlockSize,
		Superblock:    !f.noSuperblock,
	}
	if err := cli.OneOf("--hash", f.hash, "sha256", "sha1", "sha512"); err != nil {
		return p, err
	}
	if f.hashOffset < 0 || f.dataBlocks < 0 {
		return p, cli.Usagef("--hash-offset and --data-blocks must not be negative")
	}
	if f.set("salt") {
		s, err := verity.ParseSalt(f.salt)
		if err != nil || f.salt == "" {
			if err == nil {
				err = errors.New("empty (use - for no salt)")
			}
			return p, cli.Usagef("--salt: %v", strings.TrimPrefix(err.Error(), "verity: "))
		}
		p.Salt = s
	} else {
		p.Salt = verity.DeriveSalt(f.seed, p)
	}
	if err := p.Validate(); err != nil {
		return p, cli.Usagef("%s", strings.TrimPrefix(err.Error(), "verity: "))
	}
	if f.uuid != "" {
		u, err := verity.ParseUUID(f.uuid)
		if err != nil {
			return p, cli.Usagef("--uuid: %s", strings.TrimPrefix(err.Error(), "verity: "))
		}
		p.UUID = u
	} else {
		p.UUID = verity.DeriveUUID(f.seed, p, p.Salt)
	}
	return p, nil
}

// fragment is the layer's manifest fragment (--params-out, --json).
type fragment struct {
	Target         string `json:"target"`
	Version        int    `json:"version"`
	DataBlockSize  int    `json:"data_block_size"`
	HashBlockSize  int    `json:"hash_block_size"`
	DataBlocks     uint64 `json:"data_blocks"`
	DataSectors    uint64 `json:"data_sectors"`
	HashStartBlock uint64 `json:"hash_start_block"`
	HashOffset     int64  `json:"hash_offset"`
	HashBytes      int64  `json:"hash_bytes"`
	HashBlocks     uint64 `json:"hash_blocks"`
	HashAlgorithm  string `json:"hash_algorithm"`
	RootHash       string `json:"root_hash"`
	Salt           string `json:"salt"`
	Superblock     bool   `json:"superblock"`
	UUID           string `json:"uuid"`
	// FEC is present when parity was written.
	FEC *fecFragment `json:"fec,omitempty"`
}

// fecFragment holds the table's FEC words (use_fec_from_device <dev>
// fec_roots <roots> fec_blocks <blocks> fec_start <start>) and where the
// parity lies (offset, bytes) in its device.
type fecFragment struct {
	Roots  int    `json:"roots"`
	Blocks uint64 `json:"blocks"`
	Start  uint64 `json:"start"`
	Offset int64  `json:"offset"`
	Bytes  int64  `json:"bytes"`
}

func newFragment(p verity.Params, r *verity.Result, hashOffset int64) fragment {
	u := ""
	if p.Superblock {
		u = verity.FormatUUID(p.UUID)
	}
	return fragment{
		Target:         "verity",
		Version:        p.Version,
		DataBlockSize:  p.DataBlockSize,
		HashBlockSize:  p.HashBlockSize,
		DataBlocks:     r.DataBlocks,
		DataSectors:    r.DataBlocks * uint64(p.DataBlockSize) / 512,
		HashStartBlock: r.HashStartBlock,
		HashOffset:     hashOffset,
		HashBytes:      r.HashBytes,
		HashBlocks:     r.TreeBlocks,
		HashAlgorithm:  p.Hash,
		RootHash:       r.RootHex(),
		Salt:           verity.SaltString(p.Salt),
		Superblock:     p.Superblock,
		UUID:           u,
	}
}

// sizeOf returns the size of an open file or block device.
func sizeOf(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Mode().IsRegular() {
		return fi.Size(), nil
	}
	return f.Seek(0, io.SeekEnd)
}

// sameFile reports whether two paths name the same existing file.
func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false
	}
	return os.SameFile(fa, fb)
}

// isDevice reports whether path is an existing device node.
func isDevice(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&os.ModeDevice != 0
}

// dataSize decides how many data bytes the tree covers.
func (f *paramFlags) dataSize(p verity.Params, data *os.File, same bool) (int64, error) {
	if f.dataBlocks > 0 {
		n := f.dataBlocks * int64(p.DataBlockSize)
		if n/int64(p.DataBlockSize) != f.dataBlocks {
			return 0, cli.Usagef("--data-blocks %d is too large", f.dataBlocks)
		}
		return n, nil
	}
	if same {
		if !f.set("hash-offset") || f.hashOffset == 0 {
			return 0, cli.Usagef("DATA and HASH are the same file: give --hash-offset (at or past the end of the data)")
		}
		n, err := sizeOf(data)
		if err != nil {
			return 0, fmt.Errorf("size of %s: %w", data.Name(), err)
		}
		if f.hashOffset > n {
			// As veritysetup: an offset past the end of the file covers the
			// whole blocks the file holds (the tree then grows the file).
			if f.hashOffset-n > maxGrowth {
				return 0, cli.Usagef("--hash-offset %d lies %d bytes past the end of %s (%d bytes); more than %d MiB of growth is refused as a likely mistake",
					f.hashOffset, f.hashOffset-n, data.Name(), n, maxGrowth>>20)
			}
			return n / int64(p.DataBlockSize) * int64(p.DataBlockSize), nil
		}
		return f.hashOffset, nil
	}
	n, err := sizeOf(data)
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", data.Name(), err)
	}
	return n, nil
}

// maxGrowth bounds how far past the end of DATA a --hash-offset may lie when
// DATA is HASH (veritysetup has no bound: it grows the file, leaving a hole
// up to the offset). A gap larger than this is almost surely a typo.
const maxGrowth = 1 << 30

func runFormat(args []string) error {
	f := newParamFlags("format")
	jsonOut := f.fs.Bool("json", false, "print a JSON object instead of the summary")
	paramsOut := f.fs.String("params-out", "", "write the layer's manifest fragment (JSON) to this file")
	fecPath := f.fs.String("fec-device", "", "also write Reed-Solomon parity (FEC) to this file (may be HASH, with --fec-offset past the tree)")
	fecRoots := f.fs.Int("fec-roots", 2, "FEC parity bytes per codeword (2..24)")
	fecOffset := f.fs.Int64("fec-offset", 0, "byte offset of the parity in the FEC device (multiple of the block size)")
	pos, err := cli.Parse(f.fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return cli.Usagef("format wants DATA HASH, got %d arguments", len(pos))
	}
	p, err := f.params()
	if err != nil {
		return err
	}
	dataPath, hashPath := pos[0], pos[1]
	same := sameFile(dataPath, hashPath)
	fecOnHash := *fecPath != "" && (filepath.Clean(*fecPath) == filepath.Clean(hashPath) || sameFile(*fecPath, hashPath))
	fecOnData := *fecPath != "" && !fecOnHash && sameFile(*fecPath, dataPath)
	flags := os.O_RDONLY
	if same || fecOnData {
		flags = os.O_RDWR
	}
	data, err := os.OpenFile(dataPath, flags, 0)
	if err != nil {
		return fmt.Errorf("open data: %w", err)
	}
	defer data.Close()
	size, err := f.dataSize(p, data, same)
	if err != nil {
		return err
	}
	if same && f.hashOffset < size {
		return cli.Usagef("--hash-offset %d lies inside the %d data bytes of %s", f.hashOffset, size, dataPath)
	}
	if size%int64(p.DataBlockSize) != 0 || size == 0 {
		return fmt.Errorf("data %s: %d bytes is not a non-zero multiple of the data block size %d", dataPath, size, p.DataBlockSize)
	}
	if *fecPath != "" {
		if *fecRoots < verity.MinFECRoots || *fecRoots > verity.MaxFECRoots {
			return cli.Usagef("--fec-roots %d (want %d..%d)", *fecRoots, verity.MinFECRoots, verity.MaxFECRoots)
		}
		if p.DataBlockSize != p.HashBlockSize {
			return cli.Usagef("FEC needs equal data and hash block sizes (have %d and %d)", p.DataBlockSize, p.HashBlockSize)
		}
		if *fecOffset < 0 || *fecOffset%int64(p.DataBlockSize) != 0 {
			return cli.Usagef("--fec-offset %d is not a multiple of the block size %d", *fecOffset, p.DataBlockSize)
		}
	}
	lay, err := verity.Plan(size, f.hashOffset, p)
	if err != nil {
		if errors.Is(err, verity.ErrHashOffset) {
			return cli.Usagef("--hash-offset: %s", strings.TrimPrefix(err.Error(), "verity: "))
		}
		return fmt.Errorf("data %s: %w", dataPath, err)
	}
	if fecOnHash && *fecOffset < lay.HashEnd {
		return cli.Usagef("--fec-offset %d lies inside the hash area (which ends at byte %d)", *fecOffset, lay.HashEnd)
	}
	if fecOnData && *fecOffset < size {
		return cli.Usagef("--fec-offset %d lies inside the %d data bytes of %s", *fecOffset, size, dataPath)
	}

	// hashDev is where the tree went (for FEC, which reads it back).
	var hashDev interface {
		io.ReaderAt
		io.WriterAt
	}
	var pending []*cli.File
	abort := func() {
		for _, o := range pending {
			o.Abort()
		}
	}
	// The manifest fragment is created (not yet written) before anything
	// else, so that an unwritable --params-out fails before HASH or DATA is
	// touched; every output is then committed together at the end.
	var paramsFile *cli.File
	if *paramsOut != "" {
		if paramsFile, err = cli.Create(*paramsOut, 0o644); err != nil {
			return err
		}
		defer paramsFile.Abort() // no-op once committed
	}
	if same {
		// In place: on failure, give DATA back its original size (what was
		// written past it is tree; within it, nothing but tree is written).
		if fi, serr := data.Stat(); serr == nil && fi.Mode().IsRegular() && f.hashOffset >= fi.Size() {
			orig := fi.Size()
			// On a failure or a signal (cli runs it in both cases).
			cli.RestoreOnFailure(func() { os.Truncate(dataPath, orig) })
		}
	}
	var res *verity.Result
	bar := progress.New(prog+" format", size, f.quiet)
	defer bar.Done()
	opt := verity.Options{}
	if bar != nil {
		opt.Progress = bar.Set
	}
	if !same && isDevice(hashPath) {
		// A block device cannot be replaced by a rename: write in place.
		dev, err := os.OpenFile(hashPath, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("open hash: %w", err)
		}
		defer dev.Close()
		res, err = verity.FormatWith(data, size, dev, f.hashOffset, p, opt)
		if err == nil {
			err = dev.Sync()
		}
		if err != nil {
			return fmt.Errorf("format %s: %w", dataPath, err)
		}
		hashDev = dev
	} else if same {
		res, err = verity.FormatWith(data, size, data, f.hashOffset, p, opt)
		if err == nil {
			err = data.Sync()
		}
		if err != nil {
			return fmt.Errorf("format %s: %w", dataPath, err)
		}
		hashDev = data
	} else {
		out, err := cli.Create(hashPath, 0o644)
		if err != nil {
			return err
		}
		res, err = verity.FormatWith(data, size, out, f.hashOffset, p, opt)
		if err == nil {
			// Give the file its full size even if the tree ends in a hole.
			err = out.Truncate(f.hashOffset + res.HashBytes)
		}
		if err != nil {
			out.Abort()
			return fmt.Errorf("format %s: %w", dataPath, err)
		}
		pending = append(pending, out)
		hashDev = out
	}
	bar.Done()
	var fec *verity.FECResult
	if *fecPath != "" {
		var err error
		if fec, err = writeFEC(data, size, hashDev, res, p, *fecPath, *fecOffset, *fecRoots, fecOnHash, fecOnData, &pending); err != nil {
			abort()
			return err
		}
	}
	frag := newFragment(p, res, f.hashOffset)
	if fec != nil {
		frag.FEC = &fecFragment{Roots: fec.Roots, Blocks: fec.Blocks, Start: fec.Start, Offset: *fecOffset, Bytes: fec.Bytes}
	}
	if paramsFile != nil {
		b, _ := json.MarshalIndent(frag, "", "  ")
		if _, err := paramsFile.Write(append(b, '\n')); err != nil {
			abort()
			return fmt.Errorf("write %s: %w", *paramsOut, err)
		}
		pending = append(pending, paramsFile)
	}
	for _, o := range pending {
		cli.UndoOnFailure(o.Final())
	}
	for i, o := range pending {
		if err := o.Commit(); err != nil {
			for _, r := range pending[i+1:] {
				r.Abort()
			}
			return err
		}
	}
	if *jsonOut {
		b, _ := json.MarshalIndent(frag, "", "  ")
		fmt.Printf("%s\n", b)
		return nil
	}
	printSummary(os.Stdout, hashPath, p, res, f.hashOffset, fec)
	return nil
}

// writeFEC computes the parity as veritysetup does: over the data, then the
// hash device from the first tree block to its end (to the FEC offset when
// the parity shares the hash device).
func writeFEC(data *os.File, size int64, hashDev io.ReaderAt, res *verity.Result, p verity.Params,
	fecPath string, fecOffset int64, roots int, onHash, onData bool, pending *[]*cli.File) (*verity.FECResult, error) {
	bs := int64(p.DataBlockSize)
	hashStart := int64(res.HashStartBlock) * bs
	var hashEnd int64
	if onHash {
		hashEnd = fecOffset
	} else {
		var err error
		switch h := hashDev.(type) {
		case *cli.File:
			hashEnd, err = sizeOf(h.File)
		case *os.File:
			hashEnd, err = sizeOf(h)
		default:
			err = errors.New("unknown hash device type")
		}
		if err != nil {
			return nil, fmt.Errorf("size of the hash device: %w", err)
		}
		hashEnd = hashEnd / bs * bs
	}
	hashSize := max(hashEnd-hashStart, 0)
	var w io.WriterAt
	var out *cli.File
	switch {
	case onHash:
		w = hashDev.(io.WriterAt)
	case onData:
		w = data
	case isDevice(fecPath):
		dev, err := os.OpenFile(fecPath, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("open FEC device: %w", err)
		}
		defer dev.Close()
		w = dev
	default:
		var err error
		if out, err = cli.Create(fecPath, 0o644); err != nil {
			return nil, err
		}
		w = out
	}
	fec, err := verity.EncodeFEC(data, size, hashDev, hashStart, hashSize, w, fecOffset, roots, p.DataBlockSize)
	if err == nil && out != nil {
		err = out.Truncate(fecOffset + fec.Bytes)
	}
	if err == nil && onData {
		err = data.Sync()
	}
	if err != nil {
		if out != nil {
			out.Abort()
		}
		return nil, fmt.Errorf("FEC %s: %w", fecPath, err)
	}
	if out != nil {
		*pending = append(*pending, out)
	}
	return fec, nil
}

func printSummary(w io.Writer, hashPath string, p verity.Params, r *verity.Result, hashOffset int64, fec *verity.FECResult) {
	u := ""
	if p.Superblock {
		u = verity.FormatUUID(p.UUID)
	}
	fmt.Fprintf(w, "VERITY header information for %s\n", hashPath)
	fmt.Fprintf(w, "UUID:            \t%s\n", u)
	fmt.Fprintf(w, "Hash type:       \t%d\n", p.Version)
	fmt.Fprintf(w, "Data blocks:     \t%d\n", r.DataBlocks)
	fmt.Fprintf(w, "Data block size: \t%d\n", p.DataBlockSize)
	fmt.Fprintf(w, "Hash blocks:     \t%d\n", r.TreeBlocks)
	fmt.Fprintf(w, "Hash block size: \t%d\n", p.HashBlockSize)
	fmt.Fprintf(w, "Hash algorithm:  \t%s\n", p.Hash)
	if fec != nil {
		fmt.Fprintf(w, "FEC RS roots:   \t%d\n", fec.Roots)
		fmt.Fprintf(w, "FEC blocks:     \t%d\n", fec.Bytes/int64(p.DataBlockSize))
	}
	fmt.Fprintf(w, "Salt:            \t%s\n", verity.SaltString(p.Salt))
	fmt.Fprintf(w, "Root hash:      \t%s\n", r.RootHex())
	fmt.Fprintf(w, "Hash start block:\t%d\n", r.HashStartBlock)
	fmt.Fprintf(w, "Hash device size: \t%d [bytes]\n", hashOffset+r.HashBytes)
	if fec != nil {
		fmt.Fprintf(w, "FEC protected blocks:\t%d\n", fec.Blocks)
		fmt.Fprintf(w, "FEC size:        \t%d [bytes]\n", fec.Bytes)
	}
}

func runVerify(args []string) error {
	f := newParamFlags("verify")
	fecPath := f.fs.String("fec-device", "", "also check the FEC parity in this file")
	fecRoots := f.fs.Int("fec-roots", 2, "FEC parity bytes per codeword (2..24)")
	fecOffset := f.fs.Int64("fec-offset", 0, "byte offset of the parity in the FEC device")
	pos, err := cli.Parse(f.fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 3 {
		return cli.Usagef("verify wants DATA HASH ROOT, got %d arguments", len(pos))
	}
	dataPath, hashPath := pos[0], pos[1]
	root, err := hex.DecodeString(pos[2])
	if err != nil || len(root) == 0 {
		return cli.Usagef("ROOT %q is not a hex root hash", pos[2])
	}
	p, err := f.params()
	if err != nil {
		return err
	}
	same := sameFile(dataPath, hashPath)
	data, err := os.Open(dataPath)
	if err != nil {
		return fmt.Errorf("open data: %w", err)
	}
	defer data.Close()
	hash := data
	if !same {
		if hash, err = os.Open(hashPath); err != nil {
			return fmt.Errorf("open hash: %w", err)
		}
		defer hash.Close()
	}
	var size int64
	if p.Superblock {
		sb, n, err := verity.ReadSuperblock(hash, f.hashOffset)
		if err != nil {
			return fmt.Errorf("%s: %w", hashPath, err)
		}
		if err := f.agree(sb, p); err != nil {
			return fmt.Errorf("%s: %w", hashPath, err)
		}
		p = sb
		size = int64(n) * int64(p.DataBlockSize)
		if f.dataBlocks > 0 && uint64(f.dataBlocks) != n {
			return fmt.Errorf("%s: superblock has %d data blocks, --data-blocks says %d", hashPath, n, f.dataBlocks)
		}
	} else if size, err = f.dataSize(p, data, same); err != nil {
		return err
	}
	if *fecPath != "" && (*fecRoots < verity.MinFECRoots || *fecRoots > verity.MaxFECRoots) {
		return cli.Usagef("--fec-roots %d (want %d..%d)", *fecRoots, verity.MinFECRoots, verity.MaxFECRoots)
	}
	if n, err := verity.DigestSize(p.Hash); err == nil && len(root) != n {
		return cli.Usagef("ROOT is %d bytes of hex, a %s root hash is %d", len(root), p.Hash, n)
	}
	bar := progress.New(prog+" verify", size, f.quiet)
	opt := verity.Options{}
	if bar != nil {
		opt.Progress = bar.Set
	}
	err = verity.VerifyWith(data, size, hash, f.hashOffset, p, root, opt)
	bar.Done()
	if err != nil {
		return fmt.Errorf("%s: %w", dataPath, err)
	}
	fmt.Printf("%s: verified %d bytes against root hash %s\n", dataPath, size, hex.EncodeToString(root))
	if *fecPath == "" {
		return nil
	}
	lay, err := verity.Plan(size, f.hashOffset, p)
	if err != nil {
		return err
	}
	bs := int64(p.DataBlockSize)
	hashStart := int64(lay.HashStartBlock) * bs
	var hashEnd int64
	if filepath.Clean(*fecPath) == filepath.Clean(hashPath) || sameFile(*fecPath, hashPath) {
		hashEnd = *fecOffset
	} else if hashEnd, err = sizeOf(hash); err != nil {
		return fmt.Errorf("size of %s: %w", hashPath, err)
	}
	fec, err := os.Open(*fecPath)
	if err != nil {
		return fmt.Errorf("open FEC: %w", err)
	}
	defer fec.Close()
	if err := verity.VerifyFEC(data, size, hash, hashStart, max(hashEnd/bs*bs-hashStart, 0), fec, *fecOffset, *fecRoots, p.DataBlockSize); err != nil {
		return fmt.Errorf("%s: %w", *fecPath, err)
	}
	fmt.Printf("%s: FEC parity (%d roots) matches\n", *fecPath, *fecRoots)
	return nil
}

// agree checks that explicitly given flags match the superblock.
func (f *paramFlags) agree(sb, p verity.Params) error {
	bad := func(flag string, have, want any) error {
		return fmt.Errorf("superblock has %s %v, but --%s says %v", flag, have, flag, want)
	}
	switch {
	case f.set("hash") && sb.Hash != p.Hash:
		return bad("hash", sb.Hash, p.Hash)
	case f.set("format") && sb.Version != p.Version:
		return bad("format", sb.Version, p.Version)
	case f.set("data-block-size") && sb.DataBlockSize != p.DataBlockSize:
		return bad("data-block-size", sb.DataBlockSize, p.DataBlockSize)
	case f.set("hash-block-size") && sb.HashBlockSize != p.HashBlockSize:
		return bad("hash-block-size", sb.HashBlockSize, p.HashBlockSize)
	case f.set("salt") && verity.SaltString(sb.Salt) != verity.SaltString(p.Salt):
		return bad("salt", verity.SaltString(sb.Salt), verity.SaltString(p.Salt))
	case f.set("uuid") && sb.UUID != p.UUID:
		return bad("uuid", verity.FormatUUID(sb.UUID), verity.FormatUUID(p.UUID))
	}
	return nil
}

// Command dm-integrity formats dm-integrity devices offline so that the kernel activates
// them with no write (superblock, kernel-style empty journal, tags of every block), and
// checks them.
//
//	dm-integrity format [flags] DATA OUT
//	dm-integrity verify [flags] DATA META      (separate layout)
//	dm-integrity verify [flags] DEV            (interleaved layout)
//	dm-integrity table [flags] IMAGE           (kernel table line of an image)
//
// format, separate layout (default): OUT is the metadata image; DATA is the data device
// as is and is not modified. Interleaved layout: OUT is the whole single device (the
// smallest multiple of 4 KiB whose usable size holds DATA), DATA's bytes scattered
// into its data areas. Outputs are atomic (temporary file, then rename).
//
// Defaults are integritysetup 2.6's (crc32c, tag = digest size, mode J, fix_hmac,
// kernel-chosen journal size, interleave 32768 sectors with fix_padding) except the
// block size (4096 here, 512 in integritysetup) and the salt, which is derived from
// --seed and the parameters instead of random.
//
// format draws a progress line (percentage, MB/s, ETA) on stderr when it is a
// terminal, unless --quiet.
package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/rules-dm/rules_dm/internal/cli"
	"github.com/rules-dm/rules_dm/tools/integrity"
	"github.com/rules-dm/rules_dm/tools/internal/progress"
)

const prog = "dm-integrity"

func main() { cli.Main(prog, run) }

func run(args []string) error {
	if len(args) == 0 {
		return cli.Usagef("missing command (want format, verify or table)")
	}
	switch args[0] {
	case "format":
		return runFormat(args[1:])
	case "verify":
		return runVerify(args[1:])
	case "table":
		return runTable(args[1:])
	case "-h", "--help", "help":
		fmt.Println("usage: dm-integrity format [flags] DATA OUT | verify [flags] DATA META | verify [flags] DEV | table [flags] IMAGE (see --help of each)")
		return nil
	}
	return cli.Usagef("unknown command %q (want format, verify or table)", args[0])
}

// libErr maps library parameter errors to usage errors.
func libErr(err error) error {
	if errors.Is(err, integrity.ErrParams) {
		return cli.Usagef("%s", strings.TrimPrefix(err.Error(), integrity.ErrParams.Error()+": "))
	}
	return err
}

func parseMode(s string) (byte, error) {
	if err := cli.OneOf("--mode", s, "J", "D"); err != nil {
		return 0, err
	}
	return s[0], nil
}

func openSized(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	return f, size, nil
}

// Fragment is the layer's manifest fragment (--params-out).
type Fragment struct {
	Target              string `json:"target"`
	Layout              string `json:"layout"`
	MetaDevice          string `json:"meta_device"`
	TagSize             int    `json:"tag_size"`
	BlockSize           int    `json:"block_size"`
	Mode                string `json:"mode"`
	Hash                string `json:"hash"`
	JournalSections     int    `json:"journal_sections"`
	JournalSectors      int    `json:"journal_sectors"`
	InterleaveSectors   int    `json:"interleave_sectors"`
	BufferSectors       int    `json:"buffer_sectors"`
	ProvidedDataSectors uint64 `json:"provided_data_sectors"`
	FixPadding          bool   `json:"fix_padding"`
	FixHmac             bool   `json:"fix_hmac"`
	Salt                string `json:"salt"`
	KeySize             int    `json:"key_size,omitempty"`
	Version             int    `json:"superblock_version"`
	MetaBytes           int64  `json:"meta_bytes,omitempty"`
	DeviceBytes         int64  `json:"device_bytes,omitempty"`
	DataBytes           int64  `json:"data_bytes"`
	Table               string `json:"table"`
}

func fragment(r *integrity.Result) Fragment {
	f := Fragment{
		Target: "integrity", Layout: r.Layout, MetaDevice: "meta", TagSize: r.TagSize, BlockSize: r.BlockSize,
		Mode: string(rune(r.Mode)), Hash: r.Hash, JournalSections: r.JournalSections, JournalSectors: r.JournalSectors,
		InterleaveSectors: r.InterleaveSectors, BufferSectors: r.BufferSectors, ProvidedDataSectors: r.ProvidedDataSectors,
		FixPadding: r.FixPadding, FixHmac: r.FixHMAC, Salt: hex.EncodeToString(r.Salt), KeySize: r.KeySize,
		Version: r.Version, MetaBytes: r.MetaBytes, DeviceBytes: r.DeviceBytes, DataBytes: r.DataBytes,
		Table: r.Table("@DATA@", "@META@"),
	}
	if r.Layout == integrity.LayoutInterleaved {
		f.MetaDevice = "none"
	}
	return f
}

func printSummary(r *integrity.Result) {
	fmt.Printf("Layout:              %s\n", r.Layout)
	fmt.Printf("Hash:                %s\n", r.Hash)
	fmt.Printf("Tag size:            %d\n", r.TagSize)
	fmt.Printf("Block size:          %d\n", r.BlockSize)
	fmt.Printf("Mode:                %c\n", r.Mode)
	fmt.Printf("Superblock version:  %d\n", r.Version)
	fmt.Printf("Provided sectors:    %d\n", r.ProvidedDataSectors)
	fmt.Printf("Journal sections:    %d (%d sectors)\n", r.JournalSections, r.JournalSectors)
	if r.Layout == integrity.LayoutInterleaved {
		fmt.Printf("Interleave sectors:  %d\n", r.InterleaveSectors)
		fmt.Printf("Device bytes:        %d\n", r.DeviceBytes)
	} else {
		fmt.Printf("Metadata bytes:      %d\n", r.MetaBytes)
	}
	fmt.Printf("Buffer sectors:      %d\n", r.BufferSectors)
	if r.FixHMAC {
		fmt.Printf("Salt:                %s\n", hex.EncodeToString(r.Salt))
	} else {
		fmt.Printf("Salt:                -\n")
	}
	meta := "@META@"
	if r.Layout == integrity.LayoutInterleaved {
		meta = ""
	}
	fmt.Printf("Table:               %s\n", r.Table("@DATA@", meta))
}

func runFormat(args []string) error {
	fs := cli.NewFlagSet(prog + " format")
	hash := fs.String("hash", integrity.HashCRC32C, "internal hash: crc32c, sha256, hmac-sha256 (or none with --tags-file)")
	key := cli.KeyFlags{Prefix: "hmac-"}
	key.Register(fs, "hmac-sha256")
	tagSize := fs.Int("tag-size", 0, "tag bytes per block (default: digest size; crc32c >= 4, sha256 >= 16, <= 255)")
	blockSize := fs.Int("block-size", 4096, "block size: 512 or 4096")
	layout := fs.String("layout", integrity.LayoutSeparate, "separate (OUT = metadata image) or interleaved (OUT = whole device)")
	mode := fs.String("mode", "J", "J (journal) or D (direct); same image")
	sections := fs.Int("journal-sections", 0, "journal sections (default: the kernel's choice for the device size)")
	interleave := fs.Int("interleave-sectors", 0, "interleaved: data sectors per area (power of two, default 32768)")
	buffer := fs.Int("buffer-sectors", 0, "separate: buffer_sectors the metadata is sized for (default 128)")
	salt := fs.String("salt", "", "16-byte salt as hex (default: derived from --seed and the parameters)")
	noFix := fs.Bool("no-fix-hmac", false, "no fix_hmac: unsalted tags, superblock v2 (separate) / v4 (interleaved)")
	seed := fs.String("seed", "", "seed for the derived salt")
	tagsFile := fs.String("tags-file", "", "hash none: file of tag-size bytes per block, in block order")
	paramsOut := fs.String("params-out", "", "write the layer's manifest fragment (JSON) here")
	quiet := fs.Bool("quiet", false, "no progress line on stderr (drawn only when stderr is a terminal)")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return cli.Usagef("format needs DATA OUT (got %d arguments)", len(pos))
	}
	if err := cli.OneOf("--hash", *hash, "crc32c", "sha256", "hmac-sha256", "none"); err != nil {
		return err
	}
	if err := cli.OneOf("--layout", *layout, "separate", "interleaved"); err != nil {
		return err
	}
	if *blockSize != 512 && *blockSize != 4096 {
		return cli.Usagef("--block-size %d: want 512 or 4096", *blockSize)
	}
	m, err := parseMode(*mode)
	if err != nil {
		return err
	}
	p := integrity.Params{Hash: *hash, TagSize: *tagSize, BlockSize: *blockSize, Layout: *layout, Mode: m,
		JournalSections: *sections, InterleaveSectors: *interleave, BufferSectors: *buffer, NoFixHMAC: *noFix}
	if *hash == integrity.HashHMACSHA256 {
		k, err := key.Load(false)
		if err != nil {
			return err
		}
		if len(k) == 0 {
			return cli.Usagef("--hash hmac-sha256 needs --hmac-key-file FILE (or --hmac-key-hex)")
		}
		p.Key = k
	} else if key.Given() {
		return cli.Usagef("--hmac-key-file/--hmac-key-hex only apply to --hash hmac-sha256")
	}
	if (*tagsFile != "") != (*hash == integrity.HashNone) {
		return cli.Usagef("--tags-file goes with --hash none (and --hash none needs it)")
	}
	if *salt != "" {
		if *noFix {
			return cli.Usagef("--salt is only used with fix_hmac (drop --no-fix-hmac)")
		}
		s, err := hex.DecodeString(*salt)
		if err != nil || len(s) != integrity.SaltSize {
			return cli.Usagef("--salt: want %d bytes as hex", integrity.SaltSize)
		}
		p.Salt = s
	} else if !*noFix && *hash != integrity.HashNone {
		p.Salt = integrity.DeriveSalt(*seed, p)
	}
	dataPath, outPath := pos[0], pos[1]
	data, size, err := openSized(dataPath)
	if err != nil {
		return err
	}
	defer data.Close()
	if st, err := os.Stat(outPath); err == nil {
		if dst, _ := data.Stat(); dst != nil && os.SameFile(st, dst) {
			return cli.Usagef("DATA and OUT are the same file")
		}
	}
	if *tagsFile != "" {
		tf, err := os.Open(*tagsFile)
		if err != nil {
			return err
		}
		defer tf.Close()
		p.Tags = tf
	}
	// Validate before creating any output.
	if _, err := integrity.Plan(size, p); err != nil {
		if errors.Is(err, integrity.ErrParams) && strings.Contains(err.Error(), "data size") {
			return fmt.Errorf("%s: %s", dataPath, strings.TrimPrefix(err.Error(), integrity.ErrParams.Error()+": "))
		}
		return libErr(err)
	}
	out, err := cli.Create(outPath, 0o644)
	if err != nil {
		return err
	}
	var r *integrity.Result
	bar := progress.New(prog+" format", size, *quiet)
	if bar != nil {
		p.Progress = bar.Add
	}
	if p.Layout == integrity.LayoutInterleaved {
		r, err = integrity.FormatInterleaved(data, size, out, p)
	} else {
		r, err = integrity.FormatSeparate(data, size, out, p)
	}
	bar.Done()
	if err != nil {
		out.Abort()
		return libErr(err)
	}
	if *paramsOut != "" {
		cli.UndoOnFailure(*paramsOut) // removed again if OUT's commit fails
		if err := cli.WriteJSON(*paramsOut, fragment(r)); err != nil {
			out.Abort()
			return err
		}
	}
	if err := out.Commit(); err != nil {
		return err
	}
	printSummary(r)
	return nil
}

func runVerify(args []string) error {
	fs := cli.NewFlagSet(prog + " verify")
	hash := fs.String("hash", "", "internal hash (default: by tag size: 4 crc32c, 32 sha256; hmac-sha256 with a key)")
	key := cli.KeyFlags{Prefix: "hmac-"}
	key.Register(fs, "hmac-sha256")
	layout := fs.String("layout", "", "separate (DATA META) or interleaved (DEV); default: by argument count")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if *hash != "" {
		if err := cli.OneOf("--hash", *hash, "crc32c", "sha256", "hmac-sha256", "none"); err != nil {
			return err
		}
	}
	k, err := key.Load(false)
	if err != nil {
		return err
	}
	if *hash == integrity.HashHMACSHA256 && len(k) == 0 {
		return cli.Usagef("--hash hmac-sha256 needs --hmac-key-file FILE")
	}
	vp := integrity.VerifyParams{Hash: *hash, Key: k}
	switch {
	case *layout == "" && len(pos) == 2, *layout == integrity.LayoutSeparate:
		if len(pos) != 2 {
			return cli.Usagef("verify --layout separate needs DATA META")
		}
		data, dsize, err := openSized(pos[0])
		if err != nil {
			return err
		}
		defer data.Close()
		meta, msize, err := openSized(pos[1])
		if err != nil {
			return err
		}
		defer meta.Close()
		rep, err := integrity.VerifySeparate(data, dsize, meta, msize, vp)
		if err != nil {
			return fmt.Errorf("%s: %w", pos[1], err)
		}
		fmt.Printf("OK: %d blocks of %d bytes, hash %s, journal empty (seq %d)\n", rep.Blocks, rep.BlockSize, rep.Hash, rep.JournalSeq)
		return nil
	case *layout == "" && len(pos) == 1, *layout == integrity.LayoutInterleaved:
		if len(pos) != 1 {
			return cli.Usagef("verify --layout interleaved needs DEV")
		}
		dev, size, err := openSized(pos[0])
		if err != nil {
			return err
		}
		defer dev.Close()
		rep, err := integrity.VerifyInterleaved(dev, size, vp)
		if err != nil {
			return fmt.Errorf("%s: %w", pos[0], err)
		}
		fmt.Printf("OK: %d blocks of %d bytes, hash %s, journal empty (seq %d)\n", rep.Blocks, rep.BlockSize, rep.Hash, rep.JournalSeq)
		return nil
	case *layout != "":
		return cli.OneOf("--layout", *layout, "separate", "interleaved")
	}
	return cli.Usagef("verify needs DATA META (separate) or DEV (interleaved), got %d arguments", len(pos))
}

func runTable(args []string) error {
	fs := cli.NewFlagSet(prog + " table")
	dataDev := fs.String("data-dev", "@DATA@", "data device path in the table (the single device, interleaved)")
	metaDev := fs.String("meta-dev", "@META@", "metadata device path in the table (separate)")
	hash := fs.String("hash", "", "internal hash (default: by tag size: 4 crc32c, 32 sha256)")
	keyText := fs.String("key-placeholder", integrity.KeyPlaceholder, "text put where the hmac key goes")
	mode := fs.String("mode", "J", "J or D")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Usagef("table needs IMAGE (got %d arguments)", len(pos))
	}
	if *hash != "" {
		if err := cli.OneOf("--hash", *hash, "crc32c", "sha256", "hmac-sha256", "none"); err != nil {
			return err
		}
	}
	m, err := parseMode(*mode)
	if err != nil {
		return err
	}
	img, size, err := openSized(pos[0])
	if err != nil {
		return err
	}
	defer img.Close()
	vp := integrity.VerifyParams{Hash: *hash, Mode: m}
	if *hash == integrity.HashHMACSHA256 {
		vp.Key = []byte{0} // only the algorithm name matters here
	}
	r, _, err := integrity.Describe(img, size, 0, vp)
	if err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	fmt.Println(r.TableKey(*dataDev, *metaDev, *keyText))
	return nil
}

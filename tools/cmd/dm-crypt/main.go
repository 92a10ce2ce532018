// Command dm-crypt encrypts or decrypts a whole image as the kernel's
// dm-crypt target would (plain dm-crypt, no LUKS header):
//
//	dm-crypt encrypt|decrypt --cipher C (--key-file F | --key-hex HEX)
//	    [--sector-size 512|1024|2048|4096] [--iv-offset N] [--iv-large-sectors]
//	    [--params-out FILE] IN OUT
//
// C is aes-cbc-plain, aes-cbc-plain64, aes-cbc-essiv:sha256 or
// aes-xts-plain64. OUT appears only when complete (atomic rename).
// --params-out writes the layer's manifest fragment (JSON, never the key).
// Exit 0 ok, 1 failure, 2 bad usage; errors are one line on stderr.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/rules-dm/rules_dm/tools/crypt"
	"github.com/rules-dm/rules_dm/tools/internal/cli"
)

func main() { cli.Main("dm-crypt", run) }

const usage = "usage: dm-crypt encrypt|decrypt --cipher C (--key-file F | --key-hex HEX) [--sector-size N] [--iv-offset N] [--iv-large-sectors] [--params-out FILE] IN OUT"

func run(args []string) error {
	if len(args) == 0 {
		return cli.Usagef("missing command; %s", usage)
	}
	verb := args[0]
	switch verb {
	case "encrypt", "decrypt":
	case "-h", "-help", "--help", "help":
		fmt.Println(usage)
		return nil
	default:
		return cli.Usagef("unknown command %q (want encrypt or decrypt)", verb)
	}
	fs := cli.NewFlagSet("dm-crypt " + verb)
	cipherSpec := fs.String("cipher", "", "dm-crypt cipher spec: "+strings.Join(crypt.Supported, ", "))
	var key cli.KeyFlags
	key.Register(fs, "dm-crypt")
	sectorSize := fs.Int("sector-size", 512, "encryption sector size in bytes (512, 1024, 2048, 4096)")
	ivOffset := fs.Uint64("iv-offset", 0, "IV offset in 512-byte sectors (table <iv_offset>)")
	ivLarge := fs.Bool("iv-large-sectors", false, "count IV sectors in sector-size units (table option iv_large_sectors)")
	paramsOut := fs.String("params-out", "", "write the layer's manifest fragment (JSON) to this file")
	pos, err := cli.Parse(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return cli.Usagef("want IN and OUT, got %d argument(s); %s", len(pos), usage)
	}
	in, out := pos[0], pos[1]
	if *cipherSpec == "" {
		return cli.Usagef("--cipher is required (one of: %s)", strings.Join(crypt.Supported, ", "))
	}
	if _, err := crypt.ParseCipher(*cipherSpec); err != nil {
		return cli.Usagef("--cipher: %v", err)
	}
	switch *sectorSize {
	case 512, 1024, 2048, 4096:
	default:
		return cli.Usagef("--sector-size %d: want 512, 1024, 2048 or 4096", *sectorSize)
	}
	if spb := uint64(*sectorSize / 512); *ivOffset%spb != 0 {
		return cli.Usagef("--iv-offset %d: must be a multiple of %d with --sector-size %d (the kernel rejects it otherwise)", *ivOffset, spb, *sectorSize)
	}
	keyBytes, err := key.Load(true)
	if err != nil {
		return err
	}
	c, err := crypt.New(crypt.Spec{Cipher: *cipherSpec, Key: keyBytes, SectorSize: *sectorSize, IVOffset: *ivOffset, IVLargeSectors: *ivLarge})
	clear(keyBytes)
	if err != nil {
		return err
	}
	return convert(verb, c, in, out, *paramsOut)
}

func convert(verb string, c *crypt.Cipher, in, out, paramsOut string) error {
	src, err := os.Open(in)
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("input %s: not a regular file", in)
	}
	size := st.Size()
	if size%int64(c.SectorSize()) != 0 {
		return fmt.Errorf("input %s: %d bytes is not a multiple of the sector size %d", in, size, c.SectorSize())
	}
	dst, err := cli.Create(out, 0o644)
	if err != nil {
		return err
	}
	defer dst.Abort()
	if verb == "encrypt" {
		err = crypt.Encrypt(dst.File, src, size, c)
	} else {
		err = crypt.Decrypt(dst.File, src, size, c)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", verb, in, err)
	}
	if err := dst.Truncate(size); err != nil { // size 0, or a sparse tail
		return fmt.Errorf("write %s: %w", out, err)
	}
	var params *cli.File
	if paramsOut != "" {
		b, err := json.MarshalIndent(c.Params(size), "", "  ")
		if err != nil {
			return errors.New("encode params: " + err.Error())
		}
		if params, err = cli.Create(paramsOut, 0o644); err != nil {
			return err
		}
		defer params.Abort()
		if _, err := params.Write(append(b, '\n')); err != nil {
			return fmt.Errorf("write %s: %w", paramsOut, err)
		}
	}
	if err := dst.Commit(); err != nil {
		return err
	}
	if params != nil {
		if err := params.Commit(); err != nil {
			return err
		}
	}
	return nil
}

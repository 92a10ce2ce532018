// Command dm-crypt encrypts or decrypts a whole image as the kernel's
// dm-crypt target would (plain dm-crypt, no LUKS header):
//
//	dm-crypt encrypt|decrypt --cipher C (--key-file F | --key-hex HEX)
//	    [--sector-size 512|1024|2048|4096] [--iv-offset N] [--iv-large-sectors]
//	    [--params-out FILE] IN OUT
//
// C is aes-cbc-plain, aes-cbc-plain64, aes-cbc-essiv:sha256 or
// aes-xts-plain64. OUT appears only when complete (atomic rename).
//
// Authenticated dm-crypt (integrity:<N>:aead): C is
// capi:gcm(aes)-random or capi:authenc(hmac(sha256),xts(aes))-random and
// --tags FILE is required: encrypt writes the per-sector [auth tag | IV]
// entries there (contiguous, TagSize bytes each, for the dm-integrity
// metadata); decrypt reads and verifies them.
// --params-out writes the layer's manifest fragment (JSON, never the key).
// Exit 0 ok, 1 failure, 2 bad usage (a key of the wrong length included);
// errors are one line on stderr. encrypt and decrypt draw a progress line
// (percentage, MB/s, ETA) on stderr when it is a terminal, unless --quiet.
//
// I/O (plain ciphers; crypt.EncryptFile): IN is read with pread (holes of
// a sparse IN are not read), OUT written with pwrite, O_DIRECT where the
// filesystem has it. The environment variable DMCRYPT_IO=auto|read|mmap
// (default auto, which is read) picks the path, for tests and
// measurements: mmap reads IN through a shared read-only mapping instead
// (no copy out of the page cache; a file truncated during the run is an
// error, not a crash; measured no faster here) and fails where IN cannot
// be mapped. Every path gives the same bytes.
//
//	dm-crypt table --cipher C [--sector-size N] [--iv-offset N]
//	    [--iv-large-sectors] [--key-ref REF] [--device DEV] [--offset N] SIZE
//
// prints the kernel table line for an image of SIZE bytes (default key
// reference @KEY@ and device @DATA@, the manifest placeholders).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/rules-dm/rules_dm/internal/cli"
	"github.com/rules-dm/rules_dm/tools/crypt"
	"github.com/rules-dm/rules_dm/tools/internal/progress"
)

func main() { cli.Main("dm-crypt", run) }

const usage = "usage: dm-crypt encrypt|decrypt --cipher C (--key-file F | --key-hex HEX) [--sector-size N] [--iv-offset N] [--iv-large-sectors] [--params-out FILE] [--tags FILE] IN OUT | dm-crypt table --cipher C [--sector-size N] [--iv-offset N] [--iv-large-sectors] [--key-ref REF] [--device DEV] [--offset N] SIZE"

func run(args []string) error {
	if len(args) == 0 {
		return cli.Usagef("missing command; %s", usage)
	}
	verb := args[0]
	switch verb {
	case "encrypt", "decrypt":
	case "table":
		return table(args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Println(usage)
		return nil
	default:
		return cli.Usagef("unknown command %q (want encrypt, decrypt or table)", verb)
	}
	fs := cli.NewFlagSet("dm-crypt " + verb)
	cipherSpec := fs.String("cipher", "", "dm-crypt cipher spec: "+strings.Join(crypt.Supported, ", "))
	var key cli.KeyFlags
	key.Register(fs, "dm-crypt")
	sectorSize := fs.Int("sector-size", 512, "encryption sector size in bytes (512, 1024, 2048, 4096)")
	ivOffset := fs.Uint64("iv-offset", 0, "IV offset in 512-byte sectors (table <iv_offset>)")
	ivLarge := fs.Bool("iv-large-sectors", false, "count IV sectors in sector-size units (table option iv_large_sectors)")
	paramsOut := fs.String("params-out", "", "write the layer's manifest fragment (JSON) to this file")
	quiet := fs.Bool("quiet", false, "no progress line on stderr (drawn only when stderr is a terminal)")
	tagsPath := fs.String("tags", "", "AEAD specs (capi:...): per-sector tag entries, written by encrypt, read by decrypt")
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
	aead := strings.HasPrefix(*cipherSpec, "capi:")
	if aead {
		if _, err := crypt.AEADKeySizes(*cipherSpec); err != nil {
			return cli.Usagef("--cipher: %v", err)
		}
		if *tagsPath == "" {
			return cli.Usagef("--cipher %s needs --tags FILE", *cipherSpec)
		}
	} else {
		if _, err := crypt.ParseCipher(*cipherSpec); err != nil {
			return cli.Usagef("--cipher: %v", err)
		}
		if *tagsPath != "" {
			return cli.Usagef("--tags is only for AEAD ciphers (capi:...)")
		}
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
	if aead {
		a, err := crypt.NewAEAD(*cipherSpec, keyBytes, *sectorSize)
		clear(keyBytes)
		if err != nil {
			return keyErr(err)
		}
		return convertAEAD(verb, a, in, out, *tagsPath, *paramsOut, *ivOffset, *ivLarge, *quiet)
	}
	c, err := crypt.New(crypt.Spec{Cipher: *cipherSpec, Key: keyBytes, SectorSize: *sectorSize, IVOffset: *ivOffset, IVLargeSectors: *ivLarge})
	clear(keyBytes)
	if err != nil {
		return keyErr(err)
	}
	return convert(verb, c, in, out, *paramsOut, *quiet)
}

// keyErr makes a key of the wrong length a usage error (exit 2, as
// dm-compose): it is a bad argument value, not a failure of the run.
func keyErr(err error) error {
	if errors.Is(err, crypt.ErrKeySize) {
		return cli.Usagef("%v", err)
	}
	return err
}

// openInput opens IN and checks that it is a regular file whose size is a
// multiple of the sector size.
func openInput(in string, sectorSize int) (*os.File, int64, error) {
	src, err := os.Open(in)
	if err != nil {
		return nil, 0, fmt.Errorf("input: %w", err)
	}
	st, err := src.Stat()
	if err != nil {
		src.Close()
		return nil, 0, fmt.Errorf("input: %w", err)
	}
	if !st.Mode().IsRegular() {
		src.Close()
		return nil, 0, fmt.Errorf("input %s: not a regular file", in)
	}
	size := st.Size()
	if size == 0 {
		src.Close()
		return nil, 0, fmt.Errorf("input %s is empty (the kernel refuses a zero-length table)", in)
	}
	if size%int64(sectorSize) != 0 {
		src.Close()
		return nil, 0, fmt.Errorf("input %s: %d bytes is not a multiple of the sector size %d", in, size, sectorSize)
	}
	return src, size, nil
}

// outMode is the mode of the image a verb writes: ciphertext 0644,
// recovered plaintext 0600 (both less the umask).
func outMode(verb string) os.FileMode {
	if verb == "decrypt" {
		return 0o600
	}
	return 0o644
}

// outputs are the atomic files of one run, committed together at the end.
type outputs []*cli.File

func (o *outputs) create(path string) (*cli.File, error) {
	return o.createMode(path, 0o644)
}

// createMode creates with perm (0600 for plaintext a decryption recovers:
// it is as secret as the key that recovered it).
func (o *outputs) createMode(path string, perm os.FileMode) (*cli.File, error) {
	f, err := cli.Create(path, perm)
	if err != nil {
		return nil, err
	}
	*o = append(*o, f)
	return f, nil
}

func (o outputs) abort() {
	for _, f := range o {
		f.Abort()
	}
}

func (o outputs) commit() error {
	for _, f := range o {
		if err := f.Commit(); err != nil {
			return err
		}
	}
	return nil
}

func (o *outputs) params(path string, p crypt.Params) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return errors.New("encode params: " + err.Error())
	}
	f, err := o.create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func convert(verb string, c *crypt.Cipher, in, out, paramsOut string, quiet bool) error {
	src, size, err := openInput(in, c.SectorSize())
	if err != nil {
		return err
	}
	defer src.Close()
	var o outputs
	defer func() { o.abort() }()
	dst, err := o.createMode(out, outMode(verb))
	if err != nil {
		return err
	}
	mode, err := crypt.ParseIOMode(os.Getenv("DMCRYPT_IO"))
	if err != nil {
		return fmt.Errorf("DMCRYPT_IO: %w", err)
	}
	bar := progress.New("dm-crypt "+verb, size, quiet)
	opt := &crypt.FileOptions{IO: mode, Progress: bar.Add}
	if verb == "encrypt" {
		err = crypt.EncryptFile(dst.File, src, size, c, opt)
	} else {
		err = crypt.DecryptFile(dst.File, src, size, c, opt)
	}
	bar.Done()
	if err != nil {
		return fmt.Errorf("%s %s: %w", verb, in, err)
	}
	if err := o.params(paramsOut, c.Params(size)); err != nil {
		return err
	}
	return o.commit()
}

func convertAEAD(verb string, a *crypt.AEAD, in, out, tagsPath, paramsOut string, ivOffset uint64, ivLarge, quiet bool) error {
	src, size, err := openInput(in, a.SectorSize())
	if err != nil {
		return err
	}
	defer src.Close()
	tagsSize := size / int64(a.SectorSize()) * int64(a.TagSize())
	var o outputs
	defer func() { o.abort() }()
	dst, err := o.createMode(out, outMode(verb))
	if err != nil {
		return err
	}
	if verb == "encrypt" {
		tags, err := o.create(tagsPath)
		if err != nil {
			return err
		}
		w := crypt.NewDirectWriter(dst.File)
		bar := progress.New("dm-crypt encrypt", size, quiet)
		err = crypt.EncryptAEAD(bar.WriterAt(w), tags.File, src, size, a)
		bar.Done()
		if cerr := w.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("encrypt %s: %w", in, err)
		}
		if err := tags.Truncate(tagsSize); err != nil {
			return fmt.Errorf("write %s: %w", tagsPath, err)
		}
	} else {
		tags, err := os.Open(tagsPath)
		if err != nil {
			return fmt.Errorf("tags: %w", err)
		}
		defer tags.Close()
		if st, err := tags.Stat(); err != nil || st.Size() != tagsSize {
			if err == nil {
				err = fmt.Errorf("%d bytes, want %d (%d sectors of %d-byte entries)", st.Size(), tagsSize, size/int64(a.SectorSize()), a.TagSize())
			}
			return fmt.Errorf("tags %s: %w", tagsPath, err)
		}
		w := crypt.NewDirectWriter(dst.File)
		bar := progress.New("dm-crypt decrypt", size, quiet)
		err = crypt.DecryptAEAD(bar.WriterAt(w), src, tags, size, a)
		bar.Done()
		if cerr := w.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("decrypt %s: %w", in, err)
		}
	}
	if err := dst.Truncate(size); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	if err := o.params(paramsOut, a.AEADParams(size, ivOffset, ivLarge)); err != nil {
		return err
	}
	return o.commit()
}

func table(args []string) error {
	fs := cli.NewFlagSet("dm-crypt table")
	cipherSpec := fs.String("cipher", "", "dm-crypt cipher spec")
	sectorSize := fs.Int("sector-size", 512, "encryption sector size in bytes")
	ivOffset := fs.Uint64("iv-offset", 0, "IV offset in 512-byte sectors")
	ivLarge := fs.Bool("iv-large-sectors", false, "iv_large_sectors option")
	keyRef := fs.String("key-ref", "@KEY@", "key field of the table (hex, :<size>:logon:<desc>, or a placeholder)")
	device := fs.String("device", "@DATA@", "device field of the table")
	offset := fs.Uint64("offset", 0, "start of the image on the device, in 512-byte sectors")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Usagef("want SIZE (image bytes); %s", usage)
	}
	size, err := cli.ParseSize("SIZE", pos[0])
	if err != nil {
		return err
	}
	integrity := ""
	switch {
	case *cipherSpec == "":
		return cli.Usagef("--cipher is required")
	case *cipherSpec == crypt.AEADGCM:
		integrity = "28:aead"
	case *cipherSpec == crypt.AEADAuthencXTS:
		integrity = "48:aead"
	default:
		if _, err := crypt.ParseCipher(*cipherSpec); err != nil {
			return cli.Usagef("--cipher: %v", err)
		}
	}
	switch *sectorSize {
	case 512, 1024, 2048, 4096:
	default:
		return cli.Usagef("--sector-size %d: want 512, 1024, 2048 or 4096", *sectorSize)
	}
	if spb := uint64(*sectorSize / 512); *ivOffset%spb != 0 {
		return cli.Usagef("--iv-offset %d: must be a multiple of %d with --sector-size %d", *ivOffset, spb, *sectorSize)
	}
	if size%int64(*sectorSize) != 0 {
		return cli.Usagef("SIZE %d is not a multiple of the sector size %d", size, *sectorSize)
	}
	for _, f := range []struct{ name, v string }{{"--key-ref", *keyRef}, {"--device", *device}} {
		if f.v == "" || strings.ContainsAny(f.v, " \t\n\r") {
			return cli.Usagef("%s must be one non-empty word", f.name)
		}
	}
	fmt.Println(crypt.Table(*cipherSpec, *keyRef, *ivOffset, *device, *offset, uint64(size)/512, *sectorSize, *ivLarge, integrity))
	return nil
}

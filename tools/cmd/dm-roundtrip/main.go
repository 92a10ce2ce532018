// Command dm-roundtrip is the driver of the dm_roundtrip_test Bazel rule: it
// checks that every layer of a chain decodes back to its input, by running the
// layer tools themselves (dm-crypt decrypt, dm-verity verify, dm-integrity
// verify) on the built images.
//
// It reads the JSON configuration named by $DM_ROUNDTRIP_CONFIG (a runfiles
// path, as are all paths inside it) and prints one line per check.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/rules-dm/rules_dm/internal/cli"
)

type layer struct {
	Target    string `json:"target"`
	Placement string `json:"placement"`
	Image     string `json:"image"`
	Meta      string `json:"meta"`
	Src       string `json:"src"`
	Params    string `json:"params"`
}

type config struct {
	Layers    []layer `json:"layers"`
	Key       string  `json:"key"`
	HMACKey   string  `json:"hmac_key"`
	Crypt     string  `json:"crypt"`
	Verity    string  `json:"verity"`
	Integrity string  `json:"integrity"`
}

func main() { cli.Main("dm-roundtrip", run) }

var root string

func rf(p string) string {
	if p == "" {
		return ""
	}
	return filepath.Join(root, p)
}

func run(args []string) error {
	root = filepath.Join(os.Getenv("TEST_SRCDIR"), os.Getenv("TEST_WORKSPACE"))
	cfgPath := os.Getenv("DM_ROUNDTRIP_CONFIG")
	if cfgPath == "" {
		return cli.Usagef("DM_ROUNDTRIP_CONFIG is not set (run me through bazel test)")
	}
	b, err := os.ReadFile(rf(cfgPath))
	if err != nil {
		return err
	}
	var c config
	if err := json.Unmarshal(b, &c); err != nil {
		return fmt.Errorf("%s: %w", cfgPath, err)
	}
	tmp := os.Getenv("TEST_TMPDIR")
	if tmp == "" {
		tmp = os.TempDir()
	}
	for i, l := range c.Layers {
		if err := check(&c, l, tmp); err != nil {
			return fmt.Errorf("layer %d from the bottom (%s): %w", len(c.Layers)-1-i, l.Target, err)
		}
		fmt.Printf("ok  %s layer %s: decodes back to %s\n", l.Target, l.Image, l.Src)
	}
	return nil
}

func tool(path string, args ...string) error {
	cmd := exec.Command(rf(path), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %v: %v: %s", filepath.Base(path), args, err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// samePrefix checks that the first size(want) bytes of got equal want.
func samePrefix(got, want string) error {
	g, err := os.Open(got)
	if err != nil {
		return err
	}
	defer g.Close()
	w, err := os.Open(want)
	if err != nil {
		return err
	}
	defer w.Close()
	gb, wb := make([]byte, 1<<20), make([]byte, 1<<20)
	var off int64
	for {
		n, err := io.ReadFull(w, wb)
		if n > 0 {
			if _, err := io.ReadFull(g, gb[:n]); err != nil {
				return fmt.Errorf("%s is shorter than %s", got, want)
			}
			if !bytes.Equal(gb[:n], wb[:n]) {
				return fmt.Errorf("%s differs from %s in the 1 MiB at offset %d", got, want, off)
			}
			off += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func sameFile(a, b string) error {
	sa, err := os.Stat(a)
	if err != nil {
		return err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return err
	}
	if sa.Size() != sb.Size() {
		return fmt.Errorf("%s has %d bytes, %s has %d", a, sa.Size(), b, sb.Size())
	}
	return samePrefix(a, b)
}

func check(c *config, l layer, tmp string) error {
	var p map[string]any
	b, err := os.ReadFile(rf(l.Params))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("%s: %w", l.Params, err)
	}
	num := func(k string) string {
		v, _ := p[k].(float64)
		return strconv.FormatInt(int64(v), 10)
	}
	str := func(k string) string { s, _ := p[k].(string); return s }
	switch l.Target {
	case "crypt":
		if c.Key == "" {
			return errors.New("the chain has a crypt layer: give the test a key")
		}
		out := filepath.Join(tmp, "decrypted.img")
		args := []string{"decrypt", "--cipher", str("cipher"), "--key-file", rf(c.Key),
			"--sector-size", num("sector_size"), "--iv-offset", num("iv_offset")}
		if v, _ := p["iv_large_sectors"].(bool); v {
			args = append(args, "--iv-large-sectors")
		}
		if err := tool(c.Crypt, append(args, rf(l.Image), out)...); err != nil {
			return err
		}
		defer os.Remove(out)
		return sameFile(out, rf(l.Src))
	case "verity":
		args := []string{"verify", "--hash", str("hash_algorithm"),
			"--data-block-size", num("data_block_size"), "--hash-block-size", num("hash_block_size"),
			"--format", num("version"), "--data-blocks", num("data_blocks")}
		if v, _ := p["superblock"].(bool); !v {
			args = append(args, "--no-superblock", "--salt", str("salt"))
		}
		if l.Placement == "meta" {
			args = append(args, rf(l.Image), rf(l.Meta), str("root_hash"))
			if err := tool(c.Verity, args...); err != nil {
				return err
			}
			return sameFile(rf(l.Image), rf(l.Src))
		}
		args = append(args, "--hash-offset", num("hash_offset"), rf(l.Image), rf(l.Image), str("root_hash"))
		if err := tool(c.Verity, args...); err != nil {
			return err
		}
		return samePrefix(rf(l.Image), rf(l.Src))
	case "integrity":
		args := []string{"verify"}
		if c.HMACKey != "" {
			args = append(args, "--hmac-key-file", rf(c.HMACKey))
		}
		if l.Placement == "meta" {
			if err := tool(c.Integrity, append(args, "--layout", "separate", rf(l.Image), rf(l.Meta))...); err != nil {
				return err
			}
			return sameFile(rf(l.Image), rf(l.Src))
		}
		return tool(c.Integrity, append(args, "--layout", "interleaved", rf(l.Image))...)
	}
	return fmt.Errorf("unknown target %q", l.Target)
}

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rules-dm/rules_dm/internal/cli"
)

func writeData(t *testing.T, dir string, n int) string {
	t.Helper()
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7 / 3)
	}
	p := filepath.Join(dir, "data.img")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFormatParamsOutAndVerify(t *testing.T) {
	dir := t.TempDir()
	data := writeData(t, dir, 64*4096)
	hash := filepath.Join(dir, "hash.img")
	params := filepath.Join(dir, "p.json")
	if err := run([]string{"format", data, hash, "--seed", "t", "--params-out", params}); err != nil {
		t.Fatal(err)
	}
	var f fragment
	b, err := os.ReadFile(params)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if f.Target != "verity" || f.DataBlocks != 64 || f.HashStartBlock != 1 || f.DataSectors != 512 ||
		f.HashBytes != 2*4096 || len(f.RootHash) != 64 || len(f.Salt) != 64 || f.UUID == "" {
		t.Errorf("fragment %+v", f)
	}
	fi, err := os.Stat(hash)
	if err != nil || fi.Size() != f.HashBytes {
		t.Errorf("hash file: %v, size %d want %d", err, fi.Size(), f.HashBytes)
	}
	if err := run([]string{"verify", data, hash, f.RootHash}); err != nil {
		t.Errorf("verify: %v", err)
	}
	// Same seed, same bytes.
	hash2 := filepath.Join(dir, "hash2.img")
	if err := run([]string{"format", "--seed", "t", data, hash2}); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(hash)
	c, _ := os.ReadFile(hash2)
	if string(a) != string(c) {
		t.Error("same seed gave different hash files")
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	data := writeData(t, dir, 3*4096)
	odd := filepath.Join(dir, "odd.img")
	if err := os.WriteFile(odd, make([]byte, 3*4096+1), 0o644); err != nil {
		t.Fatal(err)
	}
	hash := filepath.Join(dir, "hash.img")
	for _, c := range []struct {
		args  []string
		usage bool
		msg   string
	}{
		{[]string{}, true, "missing command"},
		{[]string{"frob"}, true, "unknown command"},
		{[]string{"format", data}, true, "DATA HASH"},
		{[]string{"format", data, hash, "--hash", "md5"}, true, "--hash"},
		{[]string{"format", data, hash, "--salt", "abc"}, true, "salt"},
		{[]string{"format", data, hash, "--data-block-size", "3000"}, true, "block size"},
		{[]string{"format", data, hash, "--hash-offset", "7"}, true, "hash-offset"},
		{[]string{"format", odd, hash}, false, "multiple of the data block size"},
		{[]string{"format", data, hash, "--fec-device", hash + ".fec", "--fec-roots", "30"}, true, "fec-roots"},
		{[]string{"format", data, data}, true, "--hash-offset"},
		{[]string{"format", filepath.Join(dir, "nope"), hash}, false, "no such file"},
		{[]string{"verify", data, hash, "xx"}, true, "hex root hash"},
	} {
		err := run(c.args)
		if err == nil || cli.IsUsage(err) != c.usage || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%v: got %v (usage=%v), want usage=%v containing %q", c.args, err, cli.IsUsage(err), c.usage, c.msg)
		}
	}
	if _, err := os.Stat(hash); !os.IsNotExist(err) {
		t.Errorf("a failed format left %s behind", hash)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".hash.img.tmp-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// Progress goes to stderr only on a terminal: with stderr a file, format and
// verify write nothing there, with or without --quiet.
func TestNoProgressWhenNotTerminal(t *testing.T) {
	dir := t.TempDir()
	data := writeData(t, dir, 300*4096)
	errf, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	old := os.Stderr
	os.Stderr = errf
	defer func() { os.Stderr = old }()
	params := filepath.Join(dir, "p.json")
	for i, q := range [][]string{nil, {"--quiet"}} {
		hash := filepath.Join(dir, "hash"+strings.Repeat("q", i))
		args := append([]string{"format", data, hash, "--seed", "s", "--params-out", params}, q...)
		if err := run(args); err != nil {
			t.Fatal(err)
		}
		var f fragment
		b, _ := os.ReadFile(params)
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		if err := run(append([]string{"verify", data, hash, f.RootHash}, q...)); err != nil {
			t.Fatal(err)
		}
	}
	if fi, _ := errf.Stat(); fi.Size() != 0 {
		b, _ := os.ReadFile(errf.Name())
		t.Errorf("stderr got %q", b)
	}
}

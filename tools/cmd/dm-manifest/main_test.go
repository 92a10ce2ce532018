package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rules-dm/rules_dm/tools/manifest"
)

func write(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVerityAppend(t *testing.T) {
	dir := t.TempDir()
	data := write(t, dir, "data", bytes.Repeat([]byte{1}, 8192+100))
	tree := write(t, dir, "tree", bytes.Repeat([]byte{2}, 4096))
	in := write(t, dir, "in.json", []byte(`{"target":"verity","hash_block_size":4096,"hash_offset":0,"hash_start_block":1,"root_hash":"ab"}`))
	out, params := filepath.Join(dir, "out"), filepath.Join(dir, "out.json")
	if err := run([]string{"verity-append", "--params", in, "--params-out", params, data, tree, out}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if len(b) != 3*4096+4096 || b[8192+100] != 0 || b[3*4096] != 2 {
		t.Fatalf("out: %d bytes, want data padded to 12288 then the tree", len(b))
	}
	var f map[string]any
	pb, _ := os.ReadFile(params)
	if err := json.Unmarshal(pb, &f); err != nil {
		t.Fatal(err)
	}
	if f["hash_offset"].(float64) != 12288 || f["hash_start_block"].(float64) != 4 || f["root_hash"] != "ab" {
		t.Fatalf("params: %v", f)
	}
}

func TestBuildCryptOnly(t *testing.T) {
	dir := t.TempDir()
	fs := write(t, dir, "fs.img", bytes.Repeat([]byte{7}, 8192))
	ct := write(t, dir, "ct.img", bytes.Repeat([]byte{9}, 8192))
	frag := write(t, dir, "crypt.json", []byte(`{"target":"crypt","cipher":"aes-xts-plain64","key_size":64,"sector_size":4096,"iv_offset":0,"iv_large_sectors":false,"sectors":16,"data_sectors":16}`))
	mj, me := filepath.Join(dir, "manifest.json"), filepath.Join(dir, "manifest.env")
	args := []string{"build", "--stack", "crypt-only", "--input", fs, "--data", ct, "--layer", "crypt:-:" + frag, mj, me}
	if err := run(args); err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Load(mj)
	if err != nil {
		t.Fatal(err)
	}
	want := "0 16 crypt aes-xts-plain64 @KEY@ 0 @DATA@ 0 1 sector_size:4096"
	if m.Layers[0].Table != want || m.Layers[0].Crypt.KeyDesc != "rules_dm:dmroot" {
		t.Fatalf("layer 0: table %q key_desc %q", m.Layers[0].Table, m.Layers[0].Crypt.KeyDesc)
	}
	env, _ := os.ReadFile(me)
	if !strings.Contains(string(env), "DMTOOLS_STACK='crypt-only'") {
		t.Fatalf("manifest.env:\n%s", env)
	}
	// The wrong shape is refused.
	bad := []string{"build", "--stack", "verity-only", "--input", fs, "--data", ct, "--layer", "crypt:-:" + frag, mj, me}
	if err := run(bad); err == nil {
		t.Fatal("crypt layer accepted for verity-only")
	}
}

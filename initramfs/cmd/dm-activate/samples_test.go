package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rules-dm/rules_dm/tools/manifest"
)

var update = flag.Bool("update", false, "rewrite testdata (sample manifests and dry-run goldens)")

// Sample manifests in the shapes dm-compose writes (spec/manifest.md): the
// seven stacks, plus hmac integrity, verity with its tree on META_DEV, a
// signed verity-then-crypt stack (root hash signature) and the aead profile.
var sampleNames = append(append([]string{}, manifest.Stacks...), "integrity-hmac", "verity-meta", "verity-sig", "aead")

// sampleSig stands for the verity-sig sample's verity.roothash.p7s (any
// bytes do for the activator: the kernel checks them).
var sampleSig = append([]byte{0x30, 0x82, 0x01, 0x8a}, bytes.Repeat([]byte("rules_dm test signature "), 16)...)

func sampleManifest(name string) *manifest.Manifest {
	stack := name
	switch name {
	case "integrity-hmac":
		stack = manifest.StackIntegrityOnly
	case "verity-meta":
		stack = manifest.StackVerityOnly
	case "verity-sig":
		stack = manifest.StackVerityThenCrypt
	case "aead":
		stack = manifest.StackIntegrityThenCrypt
	}
	hx := func(c string, n int) string { return strings.Repeat(c, n) }
	m := &manifest.Manifest{
		SchemaVersion: 1, Stack: stack, Profile: manifest.ProfilePlainCrypt, Name: "dmroot",
		Input:     manifest.Input{Size: 8388608, SHA256: hx("a", 64)},
		Artifacts: []manifest.Artifact{{Role: "data", Path: "data.img", Size: 8462336, SHA256: hx("b", 64)}},
		Mount:     &manifest.Mount{FSType: "ext4"},
	}
	const sectors = 16384
	crypt := func(dev string) manifest.Layer {
		return manifest.Layer{Target: "crypt", Sectors: sectors,
			Table: fmt.Sprintf("0 %d crypt aes-xts-plain64 @KEY@ 0 %s 0 1 sector_size:4096", sectors, dev),
			Crypt: &manifest.Crypt{Cipher: "aes-xts-plain64", KeySize: 64, KeyDesc: "rules_dm:dmroot", SectorSize: 4096}}
	}
	devName := map[string]string{"@DATA@": "data", "@LOWER@": "lower", "@META@": "meta"}
	verity := func(dev, hdev string, start int64, opts string) manifest.Layer {
		v := &manifest.Verity{Version: 1, DataDevice: devName[dev], HashDevice: devName[hdev],
			DataBlockSize: 4096, HashBlockSize: 4096, DataBlocks: 2048, HashStartBlock: start,
			HashOffset: (start - 1) * 4096, HashAlgorithm: "sha256", RootHash: hx("c", 64),
			Salt: hx("d", 64), Superblock: true, UUID: "01234567-89ab-cdef-0123-456789abcdef", Opts: opts}
		return manifest.Layer{Target: "verity", Sectors: sectors, Verity: v,
			Table: fmt.Sprintf("0 %d verity 1 %s %s 4096 4096 2048 %d sha256 %s %s", sectors, dev, hdev, start, v.RootHash, v.Salt)}
	}
	integ := func(dev string, hmac bool) manifest.Layer {
		g := &manifest.Integrity{TagSize: 4, Mode: "J", BlockSize: 4096, Hash: "crc32c", Layout: "separate", MetaDevice: "meta",
			JournalSectors: 392, JournalSections: 1, InterleaveSectors: 1, BufferSectors: 128,
			ProvidedDataSectors: sectors, FixHmac: true, Salt: hx("e", 32)}
		h := "internal_hash:crc32c"
		if hmac {
			g.Hash, g.TagSize, g.KeySize = "hmac-sha256", 32, 32
			h = "internal_hash:hmac(sha256):@IKEY@"
		}
		return manifest.Layer{Target: "integrity", Sectors: sectors, Integrity: g,
			Table: fmt.Sprintf("0 %d integrity %s 0 %d J 9 meta_device:@META@ block_size:4096 journal_sectors:392 interleave_sectors:1 buffer_sectors:128 journal_watermark:50 commit_time:10000 fix_hmac %s", sectors, dev, g.TagSize, h)}
	}
	meta := func(p string) {
		m.Artifacts = append(m.Artifacts, manifest.Artifact{Role: "meta", Path: p, Size: 1 << 20, SHA256: hx("f", 64)})
	}
	switch name {
	case manifest.StackCryptOnly:
		m.Layers = []manifest.Layer{crypt("@DATA@")}
	case manifest.StackVerityOnly:
		m.Layers = []manifest.Layer{verity("@DATA@", "@DATA@", 2049, "")}
	case manifest.StackVerityThenCrypt:
		m.Layers = []manifest.Layer{verity("@DATA@", "@DATA@", 2049, ""), crypt("@LOWER@")}
	case manifest.StackCryptThenVerity:
		m.Layers = []manifest.Layer{crypt("@DATA@"), verity("@LOWER@", "@LOWER@", 2049, "")}
	case manifest.StackIntegrityOnly:
		m.Layers = []manifest.Layer{integ("@DATA@", false)}
		meta("integrity.meta.img")
	case manifest.StackIntegrityThenCrypt:
		m.Layers = []manifest.Layer{integ("@DATA@", false), crypt("@LOWER@")}
		meta("integrity.meta.img")
	case manifest.StackCryptThenIntegrity:
		m.Layers = []manifest.Layer{crypt("@DATA@"), integ("@LOWER@", false)}
		meta("integrity.meta.img")
	case "integrity-hmac":
		m.Layers = []manifest.Layer{integ("@DATA@", true)}
		meta("integrity.meta.img")
	case "verity-meta":
		m.Layers = []manifest.Layer{verity("@DATA@", "@META@", 1, "ignore_zero_blocks")}
		m.Mount = &manifest.Mount{FSType: "ext4", NewRoot: "/sysroot", Options: "ro,noatime"}
		meta("verity.hash.img")
	case "verity-sig":
		const desc = "rules_dm:dmroot-verity:roothash-sig"
		v := verity("@DATA@", "@DATA@", 2049, "root_hash_sig_key_desc "+desc)
		v.Verity.RootHashSig, v.Verity.RootHashSigKeyDesc = "verity.roothash.p7s", desc
		m.Layers = []manifest.Layer{v, crypt("@LOWER@")}
		sum := sha256.Sum256(sampleSig)
		m.Artifacts = append(m.Artifacts, manifest.Artifact{Role: manifest.RoleSignature, Path: "verity.roothash.p7s",
			Size: int64(len(sampleSig)), SHA256: hex.EncodeToString(sum[:])})
		m.Mount = &manifest.Mount{FSType: "ext4", Options: "ro"}
	case "aead":
		m.Profile = manifest.ProfileAEAD
		g := integ("@DATA@", false)
		g.Integrity.Hash, g.Integrity.TagSize, g.Integrity.FixHmac, g.Integrity.Salt = "none", 28, false, ""
		g.Table = fmt.Sprintf("0 %d integrity @DATA@ 0 28 J 7 meta_device:@META@ block_size:4096 journal_sectors:392 interleave_sectors:1 buffer_sectors:128 journal_watermark:50 commit_time:10000", sectors)
		c := crypt("@LOWER@")
		c.Crypt.Cipher, c.Crypt.KeySize, c.Crypt.Integrity = "capi:gcm(aes)-random", 32, "28:aead"
		c.Table = fmt.Sprintf("0 %d crypt capi:gcm(aes)-random @KEY@ 0 @LOWER@ 0 2 integrity:28:aead sector_size:4096", sectors)
		m.Layers = []manifest.Layer{g, c}
		meta("integrity.meta.img")
	}
	for i := range m.Layers {
		m.Layers[i].Index = i
		m.Layers[i].Device = "lower"
		if i == 0 {
			m.Layers[i].Device = "data"
		}
		m.Layers[i].Name = manifest.LayerName("dmroot", m.Layers[i].Target, i == len(m.Layers)-1)
	}
	return m
}

// checkFile compares (or with -update writes) a testdata file.
func checkFile(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale or differs (run go test -update and review):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// The testdata manifests are what tools/manifest writes for these shapes,
// and they parse back (JSON and env) to the same manifest.
func TestSampleManifests(t *testing.T) {
	for _, name := range sampleNames {
		m := sampleManifest(name)
		j, err := manifest.Marshal(m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		env := manifest.WriteEnv(m)
		checkFile(t, filepath.Join("testdata", name, "manifest.json"), j)
		checkFile(t, filepath.Join("testdata", name, "manifest.env"), env)
		if a := m.Artifact(manifest.RoleSignature); a != nil {
			checkFile(t, filepath.Join("testdata", name, a.Path), sampleSig)
		}
		e, err := manifest.ParseEnv(env)
		if err != nil {
			t.Fatalf("%s: env: %v", name, err)
		}
		if _, err := manifest.FromEnv(e); err != nil {
			t.Fatalf("%s: env: %v", name, err)
		}
	}
}

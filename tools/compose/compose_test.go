package compose

import (
	"bytes"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rules-dm/rules_dm/internal/cli"
	"github.com/rules-dm/rules_dm/tools/manifest"
	"github.com/rules-dm/rules_dm/tools/manifest/schematest"
)

func writeInput(t *testing.T, size int) string {
	t.Helper()
	b := make([]byte, size)
	rand.New(rand.NewSource(1)).Read(b)
	for i := 64 << 10; i < 128<<10; i++ { // a zero run (hole-like)
		b[i] = 0
	}
	p := filepath.Join(t.TempDir(), "fs.img")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

var key64 = bytes.Repeat([]byte{0x42}, 64)

func opts(in, out, stack string) Options {
	o := Options{In: in, OutDir: out, Stack: stack}
	if HasCrypt(stack) {
		o.Key = key64
	}
	return o
}

// TestAllStacks builds every stack (and the layout variants), validates each
// manifest against spec/manifest.schema.json and manifest.Parse, checks the
// env round trip, runs Verify with the key and checks reproducibility.
func TestAllStacks(t *testing.T) {
	in := writeInput(t, 1<<20)
	type variant struct {
		name string
		mod  func(*Options)
	}
	variants := []variant{{"default", func(*Options) {}}}
	for _, st := range manifest.Stacks {
		vs := variants
		if strings.Contains(st, "verity") {
			vs = append(vs, variant{"hash-on-meta", func(o *Options) { o.HashOnMeta = o.Stack != manifest.StackCryptThenVerity }},
				variant{"fec", func(o *Options) { o.VerityFECRoots = 2 }},
				variant{"fec-on-meta", func(o *Options) { o.VerityFECRoots = 24; o.HashOnMeta = o.Stack != manifest.StackCryptThenVerity }})
		}
		if st == manifest.StackIntegrityThenCrypt {
			vs = append(vs, variant{"aead-gcm", func(o *Options) { o.Profile = "aead"; o.Key = key64[:32] }},
				variant{"aead-authenc", func(o *Options) {
					o.Profile, o.Key, o.Cipher = "aead", bytes.Repeat([]byte{7}, 96), "capi:authenc(hmac(sha256),xts(aes))-random"
				}},
				variant{"aead-512", func(o *Options) { o.Profile = "aead"; o.Key = key64[:16]; o.SectorSize = 512 }})
		}
		if strings.Contains(st, "integrity") {
			vs = append(vs, variant{"interleaved", func(o *Options) { o.IntegrityLayout = "interleaved" }},
				variant{"sha256-512", func(o *Options) { o.IntegrityHash = "sha256"; o.IntegrityBlockSize = 512 }},
				variant{"hmac", func(o *Options) { o.IntegrityHash = "hmac-sha256"; o.IntegrityKey = bytes.Repeat([]byte{9}, 32) }})
		}
		for _, v := range vs {
			dir := t.TempDir()
			o := opts(in, filepath.Join(dir, "out"), st)
			v.mod(&o)
			m, err := Build(o)
			if err != nil {
				t.Fatalf("%s/%s: %v", st, v.name, err)
			}
			js, err := os.ReadFile(filepath.Join(o.OutDir, ManifestJSON))
			if err != nil {
				t.Fatal(err)
			}
			if err := schematest.Validate(js); err != nil {
				t.Fatalf("%s/%s: schema: %v", st, v.name, err)
			}
			if _, err := manifest.Parse(js); err != nil {
				t.Fatalf("%s/%s: parse: %v", st, v.name, err)
			}
			env, _ := os.ReadFile(filepath.Join(o.OutDir, ManifestEnv))
			e, err := manifest.ParseEnv(env)
			if err != nil {
				t.Fatalf("%s/%s: env: %v", st, v.name, err)
			}
			if m2, err := manifest.FromEnv(e); err != nil || !bytes.Equal(manifest.WriteEnv(m2), env) {
				t.Fatalf("%s/%s: env round trip: %v", st, v.name, err)
			}
			if err := VerifyWith(filepath.Join(o.OutDir, ManifestJSON), VerifyKeys{Crypt: o.Key, Integrity: o.IntegrityKey}, in, io.Discard); err != nil {
				t.Fatalf("%s/%s: verify: %v", st, v.name, err)
			}
			if len(m.Layers) != len(stackLayers[st]) {
				t.Fatalf("%s: %d layers", st, len(m.Layers))
			}
			if o.Profile == "aead" && (m.Layers[0].Integrity.Hash != "none" || !strings.HasSuffix(m.Layers[1].Crypt.Integrity, ":aead")) {
				t.Fatalf("%s/%s: not an aead stack: %+v %+v", st, v.name, m.Layers[0].Integrity, m.Layers[1].Crypt)
			}
			// reproducible
			o2 := o
			o2.OutDir = filepath.Join(dir, "again")
			if _, err := Build(o2); err != nil {
				t.Fatal(err)
			}
			for _, a := range append(m.Artifacts, manifest.Artifact{Path: ManifestJSON}, manifest.Artifact{Path: ManifestEnv}) {
				x, _ := os.ReadFile(filepath.Join(o.OutDir, a.Path))
				y, _ := os.ReadFile(filepath.Join(o2.OutDir, a.Path))
				if !bytes.Equal(x, y) {
					t.Fatalf("%s/%s: %s differs between two builds", st, v.name, a.Path)
				}
			}
			ents, _ := os.ReadDir(o.OutDir)
			want, boot := 2, 0
			for _, a := range m.Artifacts {
				if a.Role == manifest.RoleBoot {
					boot = 1
				} else {
					want++
				}
			}
			if want += boot; len(ents) != want {
				t.Fatalf("%s/%s: %d files in outdir, want %d", st, v.name, len(ents), want)
			}
			if bytes.Contains(js, []byte("4242424242")) || bytes.Contains(env, []byte("4242424242")) || bytes.Contains(js, []byte("0909090909")) {
				t.Fatalf("%s: key bytes in the manifest", st)
			}
		}
	}
}

func TestRefusals(t *testing.T) {
	in := writeInput(t, 1<<20)
	odd := writeInput(t, 1<<20+512)
	cases := []struct {
		name  string
		mod   func(*Options)
		want  string
		usage bool
	}{
		{"missing key", func(o *Options) { o.Stack = "crypt-only"; o.Key = nil }, "give --key-file", true},
		{"key for keyless", func(o *Options) { o.Key = key64 }, "no crypt layer", true},
		{"wrong key size", func(o *Options) { o.Stack = "crypt-only"; o.Key = key64[:20] }, "key is 20 bytes", true},
		{"unknown stack", func(o *Options) { o.Stack = "x" }, "unknown stack", true},
		{"aead key", func(o *Options) { o.Stack = "integrity-then-crypt"; o.Key = key64; o.Profile = "aead" }, "key is 64 bytes", true},
		{"aead stack", func(o *Options) { o.Stack = "verity-then-crypt"; o.Key = key64[:32]; o.Profile = "aead" }, "use --stack integrity-then-crypt --profile aead", true},
		{"aead crypt-only", func(o *Options) { o.Stack = "crypt-only"; o.Key = key64[:32]; o.Profile = "aead" }, "use --stack integrity-then-crypt --profile aead", true},
		{"aead integrity opts", func(o *Options) {
			o.Stack = "integrity-then-crypt"
			o.Key = key64[:32]
			o.Profile = "aead"
			o.IntegrityHash = "sha256"
		}, "do not apply to --profile aead", true},
		{"aead sector", func(o *Options) {
			o.Stack = "integrity-then-crypt"
			o.Key = key64[:32]
			o.Profile = "aead"
			o.SectorSize = 1024
		}, "sector-size", true},
		{"cipher", func(o *Options) { o.Stack = "crypt-only"; o.Key = key64; o.Cipher = "aes-ecb" }, "unsupported", true},
		{"odd size verity", func(o *Options) { o.In = odd }, "multiple of the verity data block size", false},
		{"hash-on-meta ctv", func(o *Options) { o.Stack = "crypt-then-verity"; o.Key = key64; o.HashOnMeta = true }, "unencrypted", true},
		{"integrity opt on verity", func(o *Options) { o.IntegrityLayout = "interleaved" }, "integrity", true},
		{"hmac without key", func(o *Options) { o.Stack = "integrity-only"; o.IntegrityHash = "hmac-sha256" }, "needs --integrity-key-file", true},
		{"integrity key without hmac", func(o *Options) { o.Stack = "integrity-only"; o.IntegrityKey = key64[:32] }, "only go with", true},
		{"name", func(o *Options) { o.Name = "a/b" }, "--name", true},
	}
	for _, c := range cases {
		o := Options{In: in, OutDir: filepath.Join(t.TempDir(), "out"), Stack: "verity-only"}
		c.mod(&o)
		_, err := Build(o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
			continue
		}
		if cli.IsUsage(err) != c.usage {
			t.Errorf("%s: usage error %v, want %v", c.name, cli.IsUsage(err), c.usage)
		}
		if ents, _ := os.ReadDir(o.OutDir); len(ents) != 0 {
			t.Errorf("%s: left %v", c.name, ents)
		}
	}
	// --force
	out := filepath.Join(t.TempDir(), "out")
	if _, err := Build(Options{In: in, OutDir: out, Stack: "verity-only"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(Options{In: in, OutDir: out, Stack: "verity-only"}); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("no --force: %v", err)
	}
	if _, err := Build(Options{In: in, OutDir: out, Stack: "verity-only", Force: true}); err != nil {
		t.Fatal(err)
	}
	// input inside the outdir
	if _, err := Build(Options{In: filepath.Join(out, DataFile), OutDir: out, Stack: "verity-only", Force: true}); err == nil {
		t.Fatal("input = output accepted")
	}
}

func TestExt4BlockSize(t *testing.T) {
	b := make([]byte, 2048)
	b[1024+0x38], b[1024+0x39] = 0x53, 0xEF
	b[1024+0x18] = 2
	if got := Ext4BlockSize(bytes.NewReader(b)); got != 4096 {
		t.Fatalf("got %d", got)
	}
	b[1024+0x38] = 0
	if got := Ext4BlockSize(bytes.NewReader(b)); got != 0 {
		t.Fatalf("not ext4: got %d", got)
	}
}

func TestSparseCopy(t *testing.T) {
	dir := t.TempDir()
	for _, layout := range [][]int64{{}, {0}, {5 << 20}, {0, 3 << 20, 7<<20 + 4096}} {
		src, _ := os.Create(filepath.Join(dir, "src"))
		size := int64(8 << 20)
		src.Truncate(size)
		want := make([]byte, size)
		for i, off := range layout {
			blk := bytes.Repeat([]byte{byte(i + 1)}, 8192)
			src.WriteAt(blk, off)
			copy(want[off:], blk)
		}
		dst, _ := os.Create(filepath.Join(dir, "dst"))
		var done int64
		if err := sparseCopy(dst, src, size, func(n int64) { done = max(done, n) }); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(dst.Name())
		if !bytes.Equal(got, want) {
			t.Fatalf("layout %v: copy differs", layout)
		}
		if done != size {
			t.Errorf("layout %v: progress ended at %d of %d", layout, done, size)
		}
		src.Close()
		dst.Close()
	}
}

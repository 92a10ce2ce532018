package compose

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rules-dm/rules_dm/internal/cli"
	"github.com/rules-dm/rules_dm/tools/manifest"
)

type passRec struct {
	name        string
	total, done int64
	calls       int
}

// recorder is an Options.Progress that keeps every pass and the highest
// count each was told.
type recorder struct {
	mu     sync.Mutex
	passes []*passRec
}

func (r *recorder) progress(name string, total int64) func(int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := &passRec{name: name, total: total}
	r.passes = append(r.passes, p)
	return func(done int64) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.passes[len(r.passes)-1] != p {
			panic(fmt.Sprintf("pass %s reported after the next one started", name))
		}
		p.done = max(p.done, done)
		p.calls++
	}
}

// TestProgressPasses builds stacks with a Progress hook: the passes come in
// the order the build runs them, each one's total is the size of what it
// reads or writes (the input, the artifacts of the manifest, the FEC size)
// and ends fully reported, and the outputs are the bytes of a build
// without the hook.
func TestProgressPasses(t *testing.T) {
	const size = 1 << 20
	in := writeInput(t, size)
	for _, c := range []struct {
		stack string
		mod   func(*Options)
		want  string
	}{
		{manifest.StackVerityOnly, nil, "sha256 input, copy input, verity tree, sha256 data.img"},
		{manifest.StackVerityOnly, func(o *Options) { o.VerityFECRoots = 2; o.HashOnMeta = true },
			"sha256 input, copy input, verity tree, verity FEC, sha256 data.img, sha256 verity.hash.img"},
		{manifest.StackCryptThenVerity, nil, "sha256 input, copy input, verity tree, encrypt, sha256 data.img"},
		{manifest.StackVerityThenCrypt, nil, "sha256 input, encrypt, verity tree, sha256 data.img"},
		{manifest.StackCryptOnly, nil, "sha256 input, encrypt, sha256 data.img"},
		{manifest.StackIntegrityThenCrypt, nil, "sha256 input, encrypt, integrity tags, sha256 data.img, sha256 integrity.meta.img"},
		{manifest.StackIntegrityThenCrypt, func(o *Options) { o.IntegrityLayout = "interleaved" }, "sha256 input, encrypt, integrity tags, sha256 data.img"},
		{manifest.StackIntegrityThenCrypt, func(o *Options) { o.Profile = "aead"; o.Key = key64[:32] },
			"sha256 input, encrypt, integrity tags, sha256 data.img, sha256 integrity.meta.img"},
		{manifest.StackIntegrityOnly, nil, "sha256 input, copy input, integrity tags, sha256 data.img, sha256 integrity.meta.img"},
		{manifest.StackCryptThenIntegrity, func(o *Options) { o.IntegrityLayout = "interleaved" }, "sha256 input, integrity tags, encrypt, sha256 data.img"},
	} {
		dir := t.TempDir()
		o := opts(in, filepath.Join(dir, "plain"), c.stack)
		if c.mod != nil {
			c.mod(&o)
		}
		name := c.stack + "/" + c.want
		m, err := Build(o)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var rec recorder
		o.OutDir, o.Progress = filepath.Join(dir, "progress"), rec.progress
		if _, err := Build(o); err != nil {
			t.Fatalf("%s with progress: %v", name, err)
		}
		var names []string
		for _, p := range rec.passes {
			names = append(names, p.name)
		}
		if got := strings.Join(names, ", "); got != c.want {
			t.Errorf("%s: passes %q", name, got)
		}
		sizes := map[string]int64{"input": size}
		for _, a := range m.Artifacts {
			sizes[a.Path] = a.Size
		}
		for _, p := range rec.passes {
			want := int64(size)
			switch {
			case strings.HasPrefix(p.name, "sha256 "):
				want = sizes[strings.TrimPrefix(p.name, "sha256 ")]
			case p.name == "verity FEC":
				// counted in bytes covered: the table's fec_blocks (of
				// 4096 bytes): the data and the tree
				var blocks int64
				f := strings.Fields(m.Layers[0].Verity.Opts)
				for i := range f[:len(f)-1] {
					if f[i] == "fec_blocks" {
						fmt.Sscan(f[i+1], &blocks)
					}
				}
				want = blocks * 4096
				if want <= size {
					t.Fatalf("%s: fec_blocks %d in %q", name, blocks, m.Layers[0].Verity.Opts)
				}
			case p.name == "encrypt" && c.stack == manifest.StackCryptThenVerity:
				want = sizes[DataFile] // data and tree
			case p.name == "encrypt" && c.stack == manifest.StackCryptThenIntegrity:
				want = sizes[DataFile] // the interleaved device
			}
			if p.total != want || p.done != p.total || p.calls == 0 {
				t.Errorf("%s: pass %s: total %d (want %d), done %d after %d reports", name, p.name, p.total, want, p.done, p.calls)
			}
		}
		for _, a := range m.Artifacts {
			x, _ := os.ReadFile(filepath.Join(dir, "plain", a.Path))
			y, _ := os.ReadFile(filepath.Join(o.OutDir, a.Path))
			if !bytes.Equal(x, y) {
				t.Errorf("%s: %s differs with a Progress hook", name, a.Path)
			}
		}
	}
}

// TestPlaintextStagingIsOwnerOnly: crypt-then-verity copies the plaintext
// into the data.img temporary before encrypting it in place; while it holds
// plaintext the file is 0600, and the committed ciphertext 0644 less umask.
func TestPlaintextStagingIsOwnerOnly(t *testing.T) {
	in := writeInput(t, 1<<20)
	dir := t.TempDir()
	o := opts(in, filepath.Join(dir, "out"), manifest.StackCryptThenVerity)
	var staged []os.FileMode
	o.Progress = func(pass string, total int64) func(int64) {
		if pass == "verity tree" { // after "copy input", before "encrypt"
			tmps, _ := filepath.Glob(filepath.Join(o.OutDir, "."+DataFile+".tmp-*"))
			for _, p := range tmps {
				if st, err := os.Stat(p); err == nil {
					staged = append(staged, st.Mode().Perm())
				}
			}
		}
		return nil
	}
	if _, err := Build(o); err != nil {
		t.Fatal(err)
	}
	if len(staged) != 1 || staged[0] != 0o600 {
		t.Errorf("plaintext staging modes %v, want one 0600 temporary", staged)
	}
	st, err := os.Stat(filepath.Join(o.OutDir, DataFile))
	if err != nil {
		t.Fatal(err)
	}
	mask := cli.Umask()
	if want := 0o644 &^ mask; st.Mode().Perm() != want {
		t.Errorf("committed data.img mode %04o, want %04o (0644 less umask %04o)", st.Mode().Perm(), want, mask)
	}
}

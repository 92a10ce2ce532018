package ext4

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func build(t *testing.T, entries []Entry, contents map[string][]byte, p Params) string {
	t.Helper()
	im, err := Layout(entries, p)
	if err != nil {
		t.Fatalf("Layout: %v", err)
	}
	path := filepath.Join(t.TempDir(), "fs.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := im.WriteMeta(f); err != nil {
		t.Fatalf("WriteMeta: %v", err)
	}
	for _, name := range im.Files() {
		if err := im.WriteFile(name, bytes.NewReader(contents[name])); err != nil {
			t.Fatalf("WriteFile %s: %v", name, err)
		}
	}
	if err := im.Finish(); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	return path
}

func sample() ([]Entry, map[string][]byte) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640000 bytes
	contents := map[string][]byte{"etc/hostname": []byte("host\n"), "usr/lib/big": big}
	entries := []Entry{
		{Path: "etc/hostname", Type: TypeFile, Mode: 0644, Size: 5},
		{Path: "usr/lib/big", Type: TypeFile, Mode: 0600, UID: 1000, GID: 1000, Size: int64(len(big))},
		{Path: "usr/bin/sh", Type: TypeSymlink, Target: "busybox"},
		{Path: "usr/long", Type: TypeSymlink, Target: strings.Repeat("x/", 50)},
		{Path: "etc/hostname2", Type: TypeLink, Target: "etc/hostname"},
		{Path: "dev/null", Type: TypeChar, Mode: 0666, Major: 1, Minor: 3},
		{Path: "run/fifo", Type: TypeFifo, Mode: 0600},
		{Path: "empty", Type: TypeFile, Mode: 0644},
	}
	for i := 0; i < 300; i++ { // a directory of several blocks
		entries = append(entries, Entry{Path: "many/" + strings.Repeat("n", 40) + string(rune('a'+i%26)) + string(rune('a'+i/26)), Type: TypeDir, Mode: 0755})
	}
	return entries, contents
}

func TestDeterministicAndFsckClean(t *testing.T) {
	entries, contents := sample()
	p := Params{Label: "test", Seed: "s", ExtraBlocks: 10}
	a := build(t, entries, contents, p)
	b := build(t, entries, contents, p)
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Fatal("two builds of the same entries differ")
	}
	if len(ab)%BlockSize != 0 {
		t.Fatalf("image size %d is not a multiple of %d", len(ab), BlockSize)
	}
	fsck, err := exec.LookPath("e2fsck")
	if err != nil {
		if fsck, err = exec.LookPath("/usr/sbin/e2fsck"); err != nil {
			t.Skip("e2fsck not installed (Debian: e2fsprogs)")
		}
	}
	out, err := exec.Command(fsck, "-fn", a).CombinedOutput()
	if err != nil {
		t.Fatalf("e2fsck -fn: %v\n%s", err, out)
	}
	debugfs, err := exec.LookPath("debugfs")
	if err != nil {
		debugfs = "/usr/sbin/debugfs"
	}
	for name, want := range contents {
		got, err := exec.Command(debugfs, "-R", "cat /"+name, a).Output()
		if err != nil {
			t.Fatalf("debugfs cat %s: %v", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("debugfs cat %s: got %d bytes, want %d", name, len(got), len(want))
		}
	}
}

func TestFixedSizeTooSmall(t *testing.T) {
	entries, _ := sample()
	if _, err := Layout(entries, Params{SizeBytes: 64 * BlockSize}); err == nil {
		t.Fatal("Layout into 64 blocks succeeded, want ErrNoSpace")
	}
}

func TestBadEntries(t *testing.T) {
	for _, es := range [][]Entry{
		{{Path: "a", Type: TypeFile}, {Path: "a/b", Type: TypeFile}},
		{{Path: "l", Type: TypeLink, Target: "missing"}},
		{{Path: "s", Type: TypeSymlink}},
		{{Path: "x", Type: 'z'}},
	} {
		if _, err := Layout(es, Params{}); err == nil {
			t.Errorf("Layout(%+v) succeeded, want an error", es)
		}
	}
}

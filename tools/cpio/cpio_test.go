package cpio

import (
	"bytes"
	"strings"
	"testing"
)

func TestNewcLayout(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.Dir("etc", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := w.File("etc/x", 0o644, 3, strings.NewReader("abc")); err != nil {
		t.Fatal(err)
	}
	if err := w.Symlink("init", "etc/x"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if len(b)%4 != 0 {
		t.Fatalf("archive length %d is not 4-aligned", len(b))
	}
	// First header: ino 1, mode 040755, uid 0, gid 0, nlink 2, mtime 0, size 0,
	// devs 0, namesize 4 ("etc\0"), check 0.
	want := "070701" + "00000001" + "000041ed" + "00000000" + "00000000" + "00000002" + "00000000" +
		"00000000" + "00000000" + "00000000" + "00000000" + "00000000" + "00000004" + "00000000" + "etc\x00"
	if got := string(b[:len(want)]); got != want {
		t.Fatalf("first header:\n got %q\nwant %q", got, want)
	}
	if !bytes.Contains(b, []byte("TRAILER!!!\x00")) {
		t.Fatal("no trailer")
	}
	if !bytes.Contains(b, []byte("etc/x\x00abc")) {
		t.Fatal("file name and data not adjacent as expected")
	}
}

func TestBadInput(t *testing.T) {
	w := NewWriter(&bytes.Buffer{})
	if err := w.File("/abs", 0o644, 0, strings.NewReader("")); err == nil {
		t.Error("absolute name accepted")
	}
	if err := w.File("short", 0o644, 5, strings.NewReader("abc")); err == nil {
		t.Error("short contents accepted")
	}
}

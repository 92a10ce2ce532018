package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunExitCodes(t *testing.T) {
	cases := []struct {
		err  error
		code int
	}{
		{nil, ExitOK},
		{errors.New("boom\nsecond line"), ExitFailure},
		{Usagef("bad flag"), ExitUsage},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		got := run("prog", func([]string) error { return c.err }, nil, &buf)
		if got != c.code {
			t.Errorf("err %v: exit %d, want %d", c.err, got, c.code)
		}
		if c.err != nil && strings.Count(buf.String(), "\n") != 1 {
			t.Errorf("err %v: stderr %q is not one line", c.err, buf.String())
		}
	}
}

func TestRunPanicIsOneLine(t *testing.T) {
	var buf bytes.Buffer
	code := run("prog", func([]string) error { panic("kaboom") }, nil, &buf)
	if code != ExitFailure || !strings.Contains(buf.String(), "internal error: kaboom") || strings.Count(buf.String(), "\n") != 1 {
		t.Fatalf("code %d stderr %q", code, buf.String())
	}
}

func TestParseInterleavedFlags(t *testing.T) {
	fs := NewFlagSet("x")
	salt := fs.String("salt", "", "")
	pos, err := Parse(fs, []string{"a", "--salt", "-", "b"})
	if err != nil || *salt != "-" || len(pos) != 2 || pos[1] != "b" {
		t.Fatalf("pos %v salt %q err %v", pos, *salt, err)
	}
	if _, err := Parse(NewFlagSet("y"), []string{"--nope"}); !IsUsage(err) {
		t.Fatalf("unknown flag: %v, want usage error", err)
	}
}

func TestKeyFlags(t *testing.T) {
	k := KeyFlags{Hex: "zz"}
	_, err := k.Load(true)
	if !IsUsage(err) || strings.Contains(err.Error(), "zz") {
		t.Fatalf("non-hex key: %v", err)
	}
	k = KeyFlags{}
	if _, err := k.Load(true); !IsUsage(err) {
		t.Fatalf("missing key: %v", err)
	}
	p := filepath.Join(t.TempDir(), "k")
	os.WriteFile(p, []byte{1, 2, 3}, 0o600)
	k = KeyFlags{File: p}
	if b, err := k.Load(true); err != nil || len(b) != 3 {
		t.Fatalf("key file: %v %v", b, err)
	}
}

func TestAtomicAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.img")
	f, err := Create(p, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("partial"))
	f.Abort()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left %v", ents)
	}
	if err := WriteFileAtomic(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("stat %v %v", st, err)
	}
}

func TestCreateHonoursUmask(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out")
	f, err := Create(p, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := os.FileMode(0o666 &^ umask); st.Mode().Perm() != want {
		t.Errorf("mode %04o, want %04o (umask %04o)", st.Mode().Perm(), want, umask)
	}
	if umask&0o022 == 0 {
		t.Logf("umask %04o: the check cannot tell a missing umask from an applied one", umask)
	}
}

// Command dm-cpio writes a reproducible newc cpio archive (an initramfs).
//
//	dm-cpio [--base FILE] [--file DEST=SRC]... [--exec DEST=SRC]... [--dir DEST]...
//	        [--symlink DEST=TARGET]... OUT
//
// Entries are sorted by path; missing parent directories are added (mode 0755).
// --file entries get mode 0644 and --exec entries 0755, whatever the mode of SRC
// (Bazel marks every output executable); every entry has mtime 0
// and owner 0:0. With --base, OUT is FILE's bytes followed by the new archive
// (the kernel unpacks concatenated archives in order, later entries winning).
package main

import (
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/rules-dm/rules_dm/internal/cli"
	"github.com/rules-dm/rules_dm/tools/cpio"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

type entry struct {
	kind   byte // 'd', 'f', 'l'
	perm   uint32
	src    string
	target string
}

func main() { cli.Main("dm-cpio", run) }

func run(args []string) error {
	fs := cli.NewFlagSet("dm-cpio")
	var files, execs, dirs, links multi
	fs.Var(&files, "file", "DEST=SRC: add file SRC as DEST, mode 0644 (repeatable)")
	fs.Var(&execs, "exec", "DEST=SRC: add file SRC as DEST, mode 0755 (repeatable)")
	fs.Var(&dirs, "dir", "add a directory (repeatable)")
	fs.Var(&links, "symlink", "DEST=TARGET: add a symlink (repeatable)")
	base := fs.String("base", "", "an existing initramfs to append the archive to")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Usagef("want exactly one output path, got %d arguments", len(pos))
	}
	ents := map[string]entry{}
	norm := func(p string) (string, error) {
		c := strings.TrimPrefix(path.Clean("/"+p), "/")
		if c == "" {
			return "", cli.Usagef("bad archive path %q", p)
		}
		return c, nil
	}
	add := func(p string, e entry) error {
		c, err := norm(p)
		if err != nil {
			return err
		}
		if old, ok := ents[c]; ok && !(old.kind == 'd' && e.kind == 'd') {
			return cli.Usagef("path %q given twice", c)
		}
		ents[c] = e
		for d := path.Dir(c); d != "."; d = path.Dir(d) {
			if old, ok := ents[d]; ok && old.kind != 'd' {
				return cli.Usagef("%q is both a file and a directory", d)
			}
			ents[d] = entry{kind: 'd'}
		}
		return nil
	}
	for _, d := range dirs {
		if err := add(d, entry{kind: 'd'}); err != nil {
			return err
		}
	}
	for i, f := range append(append([]string{}, files...), execs...) {
		dest, src, ok := strings.Cut(f, "=")
		if !ok || dest == "" || src == "" {
			return cli.Usagef("--file/--exec %q: want DEST=SRC", f)
		}
		perm := uint32(0o644)
		if i >= len(files) {
			perm = 0o755
		}
		if err := add(dest, entry{kind: 'f', src: src, perm: perm}); err != nil {
			return err
		}
	}
	for _, l := range links {
		dest, target, ok := strings.Cut(l, "=")
		if !ok || dest == "" || target == "" {
			return cli.Usagef("--symlink %q: want DEST=TARGET", l)
		}
		if err := add(dest, entry{kind: 'l', target: target}); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(ents))
	for n := range ents {
		names = append(names, n)
	}
	sort.Strings(names)

	out, err := cli.Create(pos[0], 0644)
	if err != nil {
		return err
	}
	defer out.Abort()
	if *base != "" {
		b, err := os.Open(*base)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, b)
		b.Close()
		if err != nil {
			return fmt.Errorf("copy --base: %w", err)
		}
		// Archives that follow must start 4-byte aligned.
		if st, err := out.Stat(); err == nil && st.Size()%4 != 0 {
			if _, err := out.Write(make([]byte, 4-st.Size()%4)); err != nil {
				return err
			}
		}
	}
	w := cpio.NewWriter(out)
	for _, n := range names {
		e := ents[n]
		switch e.kind {
		case 'd':
			err = w.Dir(n, 0o755)
		case 'l':
			err = w.Symlink(n, e.target)
		case 'f':
			err = addFile(w, n, e.src, e.perm)
		}
		if err != nil {
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	return out.Commit()
}

func addFile(w *cpio.Writer, name, src string, perm uint32) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", src)
	}
	return w.File(name, perm, st.Size(), f)
}

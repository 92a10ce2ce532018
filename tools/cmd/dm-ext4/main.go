// Command dm-ext4 builds a deterministic, read-only ext4 image (4 KiB blocks,
// no journal) from tar archives and single files, with no host tools.
//
//	dm-ext4 [--tar FILE]... [--file DEST=SRC]... [--exec DEST=SRC]... [--dir DEST]... [--size BYTES]
//	        [--extra-blocks N] [--inodes N] [--label L] [--seed S] [--mtime SECS] OUT
//
// Tars are applied in order, then --dir and --file entries (later entries for a
// path win). --file entries get mode 0644 and --exec entries 0755 (the mode of
// SRC is ignored: Bazel marks every output executable), owner 0:0 and mtime
// --mtime (default 0). Entry metadata from tars is kept.
// The UUID comes from --seed (default: the label), never from randomness.
package main

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/rules-dm/rules_dm/internal/cli"
	"github.com/rules-dm/rules_dm/tools/ext4"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() { cli.Main("dm-ext4", run) }

func run(args []string) error {
	fs := cli.NewFlagSet("dm-ext4")
	var tars, files, execs, dirs multi
	fs.Var(&tars, "tar", "tar archive to add (repeatable)")
	fs.Var(&files, "file", "DEST=SRC: add file SRC at DEST, mode 0644 (repeatable)")
	fs.Var(&execs, "exec", "DEST=SRC: add file SRC at DEST, mode 0755 (repeatable)")
	fs.Var(&dirs, "dir", "add an empty directory (repeatable)")
	size := fs.String("size", "0", "image size in bytes (multiple of 4096); 0: smallest that fits")
	extra := fs.String("extra-blocks", "0", "free 4 KiB blocks to add to an automatic size")
	inodes := fs.String("inodes", "0", "minimum number of inodes (0: automatic)")
	label := fs.String("label", "", "volume label (at most 16 bytes)")
	seed := fs.String("seed", "", "derives the UUID (default: the label)")
	mtime := fs.String("mtime", "0", "mtime of --file and --dir entries (seconds)")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Usagef("want exactly one output path, got %d arguments", len(pos))
	}
	var p ext4.Params
	if p.SizeBytes, err = cli.ParseSize("--size", *size); err != nil {
		return err
	}
	if p.ExtraBlocks, err = cli.ParseSize("--extra-blocks", *extra); err != nil {
		return err
	}
	n, err := cli.ParseSize("--inodes", *inodes)
	if err != nil {
		return err
	}
	p.Inodes = int(n)
	mt, err := cli.ParseSize("--mtime", *mtime)
	if err != nil || mt > 1<<32-1 {
		return cli.Usagef("--mtime: %q is not a 32-bit time", *mtime)
	}
	p.Label = *label
	p.Seed = *seed
	if p.Seed == "" {
		p.Seed = *label
	}

	var entries []ext4.Entry
	for _, t := range tars {
		e, err := scanTar(t)
		if err != nil {
			return err
		}
		entries = append(entries, e...)
	}
	for _, d := range dirs {
		entries = append(entries, ext4.Entry{Path: d, Type: ext4.TypeDir, Mode: 0755, Mtime: uint32(mt)})
	}
	fileSrc := map[string]string{}
	for i, f := range append(append([]string{}, files...), execs...) {
		dest, src, ok := strings.Cut(f, "=")
		if !ok || dest == "" || src == "" {
			return cli.Usagef("--file/--exec %q: want DEST=SRC", f)
		}
		st, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("--file %s: %w", dest, err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("--file %s: %s is not a regular file", dest, src)
		}
		mode := uint32(0644)
		if i >= len(files) {
			mode = 0755
		}
		key := strings.TrimPrefix(path.Clean("/"+dest), "/")
		fileSrc[key] = src
		entries = append(entries, ext4.Entry{Path: dest, Type: ext4.TypeFile, Mode: mode, Mtime: uint32(mt), Size: st.Size()})
	}

	im, err := ext4.Layout(entries, p)
	if err != nil {
		return err
	}
	out, err := cli.Create(pos[0], 0644)
	if err != nil {
		return err
	}
	defer out.Abort()
	if err := im.WriteMeta(out); err != nil {
		return err
	}
	// Contents: the final owner of each path is either a --file or the last
	// tar that holds it.
	want := map[string]bool{}
	for _, f := range im.Files() {
		want[f] = true
	}
	for f := range want {
		if src, ok := fileSrc[f]; ok {
			if err := copyFile(im, f, src); err != nil {
				return err
			}
			delete(want, f)
		}
	}
	for i := len(tars) - 1; i >= 0 && len(want) > 0; i-- {
		if err := fillFromTar(im, tars[i], want); err != nil {
			return err
		}
	}
	if err := im.Finish(); err != nil {
		return err
	}
	return out.Commit()
}

func copyFile(im *ext4.Image, dest, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	return im.WriteFile(dest, f)
}

func scanTar(name string) ([]ext4.Entry, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var out []ext4.Entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		e := ext4.Entry{
			Path:  h.Name,
			Mode:  uint32(h.Mode) & 07777,
			UID:   uint32(h.Uid),
			GID:   uint32(h.Gid),
			Mtime: uint32(h.ModTime.Unix()),
		}
		if h.ModTime.Unix() < 0 {
			e.Mtime = 0
		}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			e.Type, e.Size = ext4.TypeFile, h.Size
		case tar.TypeDir:
			e.Type = ext4.TypeDir
		case tar.TypeSymlink:
			e.Type, e.Target = ext4.TypeSymlink, h.Linkname
		case tar.TypeLink:
			e.Type, e.Target = ext4.TypeLink, h.Linkname
		case tar.TypeChar:
			e.Type, e.Major, e.Minor = ext4.TypeChar, uint32(h.Devmajor), uint32(h.Devminor)
		case tar.TypeBlock:
			e.Type, e.Major, e.Minor = ext4.TypeBlock, uint32(h.Devmajor), uint32(h.Devminor)
		case tar.TypeFifo:
			e.Type = ext4.TypeFifo
		case tar.TypeXGlobalHeader:
			continue
		default:
			return nil, fmt.Errorf("%s: %s: unsupported tar entry type %q", name, h.Name, h.Typeflag)
		}
		out = append(out, e)
	}
}

// fillFromTar writes the contents of the wanted paths whose last occurrence is
// in this tar.
func fillFromTar(im *ext4.Image, name string, want map[string]bool) error {
	// Find the last regular-file occurrence of each wanted path in this tar.
	last := map[string]int{}
	if err := eachEntry(name, func(i int, h *tar.Header, _ io.Reader) error {
		k := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if want[k] {
			if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeRegA {
				last[k] = i
			} else {
				delete(last, k)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	return eachEntry(name, func(i int, h *tar.Header, r io.Reader) error {
		k := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if j, ok := last[k]; ok && j == i {
			if err := im.WriteFile(k, r); err != nil {
				return err
			}
			delete(want, k)
		}
		return nil
	})
}

func eachEntry(name string, fn func(i int, h *tar.Header, r io.Reader) error) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for i := 0; ; i++ {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := fn(i, h, tr); err != nil {
			return err
		}
	}
}

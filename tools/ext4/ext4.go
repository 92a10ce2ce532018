// Package ext4 writes small, deterministic, read-only ext4 file systems from a
// list of entries (directories, regular files, symlinks, hard links, device
// nodes), for root file systems built offline (dm_ext4_image).
//
// The image uses 4 KiB blocks, 256-byte inodes, extents, the filetype and
// sparse_super features, and no journal, no metadata checksums and no htree
// directories: what `mke2fs -t ext4 -O ^has_journal,^metadata_csum,^flex_bg,
// ^resize_inode,^dir_index` would lay out, so the Linux ext4 driver mounts it and
// `e2fsck -fn` finds nothing to fix. Directory entries are sorted by name,
// inodes numbered in that order, blocks allocated first-fit in that order; the
// UUID and hash seed come from a seed string. The clock and crypto/rand are never
// read, so equal inputs give byte-identical images.
//
// File contents are not held in memory: [Image.Layout] places every entry from
// its metadata, [Image.WriteMeta] writes the metadata, and the caller then
// streams each regular file's bytes with [Image.WriteFile].
//
// Limits: at most 4*340 extents per file (about 170 GiB), no extended
// attributes, no sparse files.
package ext4

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// BlockSize is the file system block size in bytes.
const BlockSize = 4096

const (
	inodeSize       = 256
	extraISize      = 32
	blocksPerGroup  = 8 * BlockSize
	firstIno        = 11
	rootIno         = 2
	maxExtentLen    = 32768
	extentsPerLeaf  = (BlockSize - 12) / 12
	maxLeaves       = 4
	descSize        = 32
	featIncompatFT  = 0x2
	featIncompatExt = 0x40
	featROSparse    = 0x1
	featROLargeFile = 0x2
	featRODirNlink  = 0x20
	featROExtraIsz  = 0x40
	inodeFlExtents  = 0x80000
)

// Kinds of entries.
const (
	TypeFile    = 'f'
	TypeDir     = 'd'
	TypeSymlink = 'l'
	TypeLink    = 'h' // hard link to Target
	TypeChar    = 'c'
	TypeBlock   = 'b'
	TypeFifo    = 'p'
)

// Entry is one path in the file system. Path is slash-separated and relative
// to the root ("etc/hostname"); parents that are not listed are created as
// directories with mode 0755, owned by root.
type Entry struct {
	Path   string
	Type   byte
	Mode   uint32 // permission bits (07777)
	UID    uint32
	GID    uint32
	Mtime  uint32 // seconds since the epoch
	Size   int64  // regular files only
	Target string // symlink target, or the path a hard link points to
	Major  uint32 // device nodes
	Minor  uint32
}

// Params sets the geometry of the image.
type Params struct {
	// SizeBytes is the image size, a multiple of BlockSize; 0 picks the
	// smallest size that holds the entries (plus ExtraBlocks).
	SizeBytes int64
	// Inodes is the minimum number of inodes; 0 gives the entries plus 16.
	Inodes int
	// ExtraBlocks is free space added to an automatic size.
	ExtraBlocks int64
	// Label is the volume label (at most 16 bytes).
	Label string
	// Seed derives the file system UUID and directory hash seed.
	Seed string
}

// ErrNoSpace means the entries do not fit in Params.SizeBytes.
var ErrNoSpace = errors.New("ext4: entries do not fit in the image")

type node struct {
	Entry
	ino      uint32
	children []*node // directories, sorted by name
	nlink    uint32
	blocks   []uint32 // data blocks, in file order
	leaves   []uint32 // extent leaf blocks (when more than 4 extents)
	dirData  []byte   // directory contents
	written  bool
	inlineLn bool // fast symlink
}

// Image is a laid-out file system.
type Image struct {
	p          Params
	root       *node
	byPath     map[string]*node
	inodes     []*node // index = ino-1 (nil for unused/reserved)
	nblocks    uint32
	ngroups    uint32
	ipg        uint32 // inodes per group
	itBlocks   uint32 // inode table blocks per group
	gdtBlocks  uint32
	used       []bool // per block
	uuid       [16]byte
	hashSeed   [16]byte
	w          io.WriterAt
	usedDirs   []uint32
	totalInode uint32
}

func clean(p string) (string, error) {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	if p == "" {
		return "", nil
	}
	for _, c := range strings.Split(p, "/") {
		if len(c) > 255 {
			return "", fmt.Errorf("ext4: name %q longer than 255 bytes", c)
		}
	}
	return p, nil
}

// Layout checks the entries and places them: inode numbers, data blocks,
// directory contents. Later entries for the same path replace earlier ones (as
// when extracting a tar).
func Layout(entries []Entry, p Params) (*Image, error) {
	if p.SizeBytes%BlockSize != 0 {
		return nil, fmt.Errorf("ext4: size %d is not a multiple of %d", p.SizeBytes, BlockSize)
	}
	if len(p.Label) > 16 {
		return nil, fmt.Errorf("ext4: label %q longer than 16 bytes", p.Label)
	}
	im := &Image{p: p, byPath: map[string]*node{}}
	im.root = &node{Entry: Entry{Type: TypeDir, Mode: 0755}}
	im.byPath[""] = im.root
	var links []*node
	for _, e := range entries {
		cp, err := clean(e.Path)
		if err != nil {
			return nil, err
		}
		e.Path = cp
		switch e.Type {
		case TypeFile, TypeDir, TypeSymlink, TypeLink, TypeChar, TypeBlock, TypeFifo:
		default:
			return nil, fmt.Errorf("ext4: %s: unsupported entry type %q", e.Path, e.Type)
		}
		if cp == "" {
			if e.Type != TypeDir {
				return nil, fmt.Errorf("ext4: the root must be a directory")
			}
			im.root.Entry = e
			continue
		}
		if e.Type == TypeSymlink && (len(e.Target) == 0 || len(e.Target) >= BlockSize) {
			return nil, fmt.Errorf("ext4: %s: symlink target length %d not in 1..%d", cp, len(e.Target), BlockSize-1)
		}
		if e.Type == TypeFile && e.Size < 0 {
			return nil, fmt.Errorf("ext4: %s: negative size", cp)
		}
		parent, err := im.mkdirs(path.Dir(cp))
		if err != nil {
			return nil, err
		}
		if old, ok := im.byPath[cp]; ok {
			if old.Type == TypeDir && e.Type == TypeDir {
				old.Entry = e // keep children, take the new metadata
				continue
			}
			if old.Type == TypeDir && len(old.children) > 0 {
				return nil, fmt.Errorf("ext4: %s: replacing a non-empty directory", cp)
			}
			parent.removeChild(old)
		}
		n := &node{Entry: e}
		im.byPath[cp] = n
		parent.children = append(parent.children, n)
		if e.Type == TypeLink {
			links = append(links, n)
		}
	}
	// Resolve hard links to their targets.
	for _, l := range links {
		t, err := clean(l.Target)
		if err != nil {
			return nil, err
		}
		seen := 0
		target := im.byPath[t]
		for target != nil && target.Type == TypeLink && seen < 64 {
			t2, _ := clean(target.Target)
			target = im.byPath[t2]
			seen++
		}
		if target == nil || target.Type == TypeDir || target.Type == TypeLink {
			return nil, fmt.Errorf("ext4: %s: hard link target %q is missing or a directory", l.Path, l.Target)
		}
		l.Target = target.Path
	}
	if err := im.place(); err != nil {
		return nil, err
	}
	return im, nil
}

func (n *node) removeChild(c *node) {
	for i, x := range n.children {
		if x == c {
			n.children = append(n.children[:i], n.children[i+1:]...)
			return
		}
	}
}

func (im *Image) mkdirs(p string) (*node, error) {
	if p == "." || p == "" {
		return im.root, nil
	}
	if n, ok := im.byPath[p]; ok {
		if n.Type != TypeDir {
			return nil, fmt.Errorf("ext4: %s is not a directory", p)
		}
		return n, nil
	}
	parent, err := im.mkdirs(path.Dir(p))
	if err != nil {
		return nil, err
	}
	n := &node{Entry: Entry{Path: p, Type: TypeDir, Mode: 0755}}
	im.byPath[p] = n
	parent.children = append(parent.children, n)
	return n, nil
}

func base(p string) string { return path.Base(p) }

// walk visits directories depth-first, children sorted by name.
func (im *Image) walk(fn func(n *node)) {
	var rec func(n *node)
	rec = func(n *node) {
		fn(n)
		if n.Type == TypeDir {
			for _, c := range n.children {
				rec(c)
			}
		}
	}
	rec(im.root)
}

func hasSuper(g uint32) bool {
	if g <= 1 {
		return true
	}
	for _, b := range []uint32{3, 5, 7} {
		x := g
		for x%b == 0 {
			x /= b
		}
		if x == 1 {
			return true
		}
	}
	return false
}

func dirRecLen(nameLen int) int { return (8 + nameLen + 3) &^ 3 }

func fileType(t byte) byte {
	switch t {
	case TypeFile:
		return 1
	case TypeDir:
		return 2
	case TypeChar:
		return 3
	case TypeBlock:
		return 4
	case TypeFifo:
		return 5
	case TypeSymlink:
		return 7
	}
	return 0
}

func (im *Image) place() error {
	// Sort children, create lost+found, number inodes.
	lf, ok := im.byPath["lost+found"]
	if !ok {
		lf = &node{Entry: Entry{Path: "lost+found", Type: TypeDir, Mode: 0700}}
		im.byPath["lost+found"] = lf
		im.root.children = append(im.root.children, lf)
	} else if lf.Type != TypeDir {
		return fmt.Errorf("ext4: lost+found must be a directory")
	}
	im.walk(func(n *node) {
		sort.Slice(n.children, func(i, j int) bool { return base(n.children[i].Path) < base(n.children[j].Path) })
	})
	var order []*node
	nextIno := uint32(firstIno)
	im.root.ino = rootIno
	// lost+found first (inode 11, as mke2fs does), then the rest in walk order.
	lf.ino = nextIno
	nextIno++
	order = append(order, lf)
	im.walk(func(n *node) {
		if n == im.root || n == lf || n.Type == TypeLink {
			return
		}
		n.ino = nextIno
		nextIno++
		order = append(order, n)
	})
	// Link counts.
	im.walk(func(n *node) {
		switch n.Type {
		case TypeDir:
			n.nlink = 2
			for _, c := range n.children {
				if c.Type == TypeDir {
					n.nlink++
				}
			}
		case TypeLink:
		default:
			n.nlink++
		}
	})
	im.walk(func(n *node) {
		if n.Type == TypeLink {
			t := im.byPath[n.Target]
			t.nlink++
		}
	})
	for _, n := range order {
		if n.nlink > 65000 {
			return fmt.Errorf("ext4: %s: too many links (%d)", n.Path, n.nlink)
		}
	}
	usedInodes := nextIno - 1
	// Directory contents.
	var dirs []*node
	dirs = append(dirs, im.root)
	dirs = append(dirs, order...)
	for _, n := range dirs {
		if n.Type != TypeDir {
			continue
		}
		parent := im.root
		if n != im.root {
			parent = im.byPath[path.Dir(n.Path)]
			if path.Dir(n.Path) == "." {
				parent = im.root
			}
		}
		n.dirData = im.dirBlocks(n, parent)
	}
	// Block demand (data + possible extent leaves), for automatic sizing.
	var need int64
	for _, n := range dirs {
		switch {
		case n.Type == TypeDir:
			need += int64(len(n.dirData) / BlockSize)
		case n.Type == TypeFile:
			need += (n.Size + BlockSize - 1) / BlockSize
		case n.Type == TypeSymlink && len(n.Target) >= 60:
			need++
		}
	}
	minInodes := int64(usedInodes) + 16
	if im.p.Inodes > 0 && int64(im.p.Inodes) > minInodes {
		minInodes = int64(im.p.Inodes)
	}
	var nblocks int64
	if im.p.SizeBytes > 0 {
		nblocks = im.p.SizeBytes / BlockSize
		if err := im.geometry(nblocks, minInodes); err != nil {
			return err
		}
		if err := im.allocate(dirs); err != nil {
			return err
		}
	} else {
		// Grow until it fits: start from data + metadata estimate.
		nblocks = need + need/64 + 64 + im.p.ExtraBlocks
		for {
			if err := im.geometry(nblocks, minInodes); err == nil {
				if err := im.allocate(dirs); err == nil {
					free := int64(0)
					for _, u := range im.used {
						if !u {
							free++
						}
					}
					if free >= im.p.ExtraBlocks {
						break
					}
				} else if !errors.Is(err, ErrNoSpace) {
					return err
				}
			}
			nblocks += nblocks/16 + 16
			if nblocks > 1<<32-1 {
				return ErrNoSpace
			}
		}
	}
	im.inodes = make([]*node, im.totalInode)
	im.inodes[rootIno-1] = im.root
	for _, n := range order {
		im.inodes[n.ino-1] = n
	}
	sum := sha256.Sum256([]byte("rules_dm ext4 uuid\x00" + im.p.Seed))
	copy(im.uuid[:], sum[:16])
	im.uuid[6] = im.uuid[6]&0x0f | 0x40
	im.uuid[8] = im.uuid[8]&0x3f | 0x80
	sum = sha256.Sum256([]byte("rules_dm ext4 hash seed\x00" + im.p.Seed))
	copy(im.hashSeed[:], sum[:16])
	return nil
}

// dirBlocks encodes a directory: ".", "..", then the children by name.
func (im *Image) dirBlocks(n, parent *node) []byte {
	type de struct {
		ino  uint32
		name string
		ft   byte
	}
	ents := []de{{n.ino, ".", 2}, {parent.ino, "..", 2}}
	for _, c := range n.children {
		ino, ft := c.ino, fileType(c.Type)
		if c.Type == TypeLink {
			t := im.byPath[c.Target]
			ino, ft = t.ino, fileType(t.Type)
		}
		ents = append(ents, de{ino, base(c.Path), ft})
	}
	var out []byte
	blk := make([]byte, 0, BlockSize)
	lastOff := -1
	flush := func() {
		// Stretch the last entry to the end of the block.
		binary.LittleEndian.PutUint16(blk[lastOff+4:], uint16(BlockSize-lastOff))
		blk = blk[:BlockSize]
		out = append(out, blk...)
		blk = make([]byte, 0, BlockSize)
		lastOff = -1
	}
	for _, e := range ents {
		rl := dirRecLen(len(e.name))
		if len(blk)+rl > BlockSize {
			flush()
		}
		lastOff = len(blk)
		var h [8]byte
		binary.LittleEndian.PutUint32(h[0:], e.ino)
		binary.LittleEndian.PutUint16(h[4:], uint16(rl))
		h[6] = byte(len(e.name))
		h[7] = e.ft
		blk = append(blk, h[:]...)
		blk = append(blk, e.name...)
		for len(blk)-lastOff < rl {
			blk = append(blk, 0)
		}
	}
	flush()
	return out
}

// geometry fixes groups, inodes per group and the metadata blocks.
func (im *Image) geometry(nblocks int64, minInodes int64) error {
	if nblocks < 64 || nblocks > 1<<32-1 {
		return fmt.Errorf("ext4: %d blocks is outside 64..2^32-1: %w", nblocks, ErrNoSpace)
	}
	nb := uint32(nblocks)
	ng := (nb + blocksPerGroup - 1) / blocksPerGroup
	gdt := (ng*descSize + BlockSize - 1) / BlockSize
	ipg := uint32((minInodes + int64(ng) - 1) / int64(ng))
	ipg = (ipg + 15) &^ 15 // whole inode-table blocks (16 inodes per block)
	if ipg < 16 {
		ipg = 16
	}
	if ipg > blocksPerGroup {
		return fmt.Errorf("ext4: too many inodes for %d blocks: %w", nblocks, ErrNoSpace)
	}
	itb := ipg * inodeSize / BlockSize
	// The last group must hold its own metadata plus at least one block.
	last := nb - (ng-1)*blocksPerGroup
	meta := uint32(2) + itb
	if hasSuper(ng - 1) {
		meta += 1 + gdt
	}
	if last < meta+1 {
		return fmt.Errorf("ext4: last group too small: %w", ErrNoSpace)
	}
	im.nblocks, im.ngroups, im.ipg, im.itBlocks, im.gdtBlocks = nb, ng, ipg, itb, gdt
	im.totalInode = ng * ipg
	im.used = make([]bool, nb)
	for g := uint32(0); g < ng; g++ {
		for _, b := range im.groupMeta(g) {
			im.used[b] = true
		}
	}
	return nil
}

// groupMeta lists the metadata blocks of group g.
func (im *Image) groupMeta(g uint32) []uint32 {
	start := g * blocksPerGroup
	var out []uint32
	b := start
	if hasSuper(g) {
		for i := uint32(0); i < 1+im.gdtBlocks; i++ {
			out = append(out, b)
			b++
		}
	}
	for i := uint32(0); i < 2+im.itBlocks; i++ {
		out = append(out, b)
		b++
	}
	return out
}

func (im *Image) bitmapBlocks(g uint32) (blockBitmap, inodeBitmap, inodeTable uint32) {
	b := g * blocksPerGroup
	if hasSuper(g) {
		b += 1 + im.gdtBlocks
	}
	return b, b + 1, b + 2
}

// allocate gives every directory, file and long symlink its blocks.
func (im *Image) allocate(order []*node) error {
	cursor := uint32(0)
	next := func() (uint32, error) {
		for cursor < im.nblocks && im.used[cursor] {
			cursor++
		}
		if cursor >= im.nblocks {
			return 0, ErrNoSpace
		}
		im.used[cursor] = true
		cursor++
		return cursor - 1, nil
	}
	for _, n := range order {
		n.blocks, n.leaves = nil, nil
		var count int64
		switch {
		case n.Type == TypeDir:
			count = int64(len(n.dirData) / BlockSize)
		case n.Type == TypeFile:
			count = (n.Size + BlockSize - 1) / BlockSize
		case n.Type == TypeSymlink:
			n.inlineLn = len(n.Target) < 60
			if !n.inlineLn {
				count = 1
			}
		}
		if count == 0 {
			continue
		}
		// Leaves first when the data will not fit in 4 extents.
		save := cursor
		for nleaves := 0; ; {
			cursor = save
			n.leaves = nil
			for i := 0; i < nleaves; i++ {
				b, err := next()
				if err != nil {
					return err
				}
				n.leaves = append(n.leaves, b)
			}
			n.blocks = n.blocks[:0]
			for i := int64(0); i < count; i++ {
				b, err := next()
				if err != nil {
					return err
				}
				n.blocks = append(n.blocks, b)
			}
			ne := len(extents(n.blocks))
			want := 0
			if ne > 4 {
				want = (ne + extentsPerLeaf - 1) / extentsPerLeaf
			}
			if want > maxLeaves {
				return fmt.Errorf("ext4: %s: too fragmented (%d extents)", n.Path, ne)
			}
			if want <= nleaves {
				break
			}
			// Undo and retry with more leaves.
			for _, b := range n.leaves {
				im.used[b] = false
			}
			for _, b := range n.blocks {
				im.used[b] = false
			}
			nleaves = want
		}
	}
	return nil
}

type extent struct {
	logical uint32
	start   uint32
	length  uint32
}

func extents(blocks []uint32) []extent {
	var out []extent
	for i, b := range blocks {
		if len(out) > 0 {
			e := &out[len(out)-1]
			if e.start+e.length == b && e.length < maxExtentLen {
				e.length++
				continue
			}
		}
		out = append(out, extent{uint32(i), b, 1})
	}
	return out
}

// Size is the image size in bytes.
func (im *Image) Size() int64 { return int64(im.nblocks) * BlockSize }

// Files lists the regular files (paths) whose data WriteFile must receive.
func (im *Image) Files() []string {
	var out []string
	im.walk(func(n *node) {
		if n.Type == TypeFile && n.Size > 0 {
			out = append(out, n.Path)
		}
	})
	return out
}

// WriteMeta writes everything but regular file data to w (which must read as
// zeros where nothing is written: a new or truncated file of Size bytes).
func (im *Image) WriteMeta(w io.WriterAt) error {
	im.w = w
	le := binary.LittleEndian
	// Free counts per group.
	freeBlocks := make([]uint32, im.ngroups)
	freeInodes := make([]uint32, im.ngroups)
	im.usedDirs = make([]uint32, im.ngroups)
	var totalFreeB, totalFreeI uint32
	for g := uint32(0); g < im.ngroups; g++ {
		start := g * blocksPerGroup
		end := start + blocksPerGroup
		if end > im.nblocks {
			end = im.nblocks
		}
		bb := make([]byte, BlockSize)
		for b := start; b < start+blocksPerGroup; b++ {
			if b >= end || im.used[b] {
				bb[(b-start)/8] |= 1 << ((b - start) % 8)
			} else {
				freeBlocks[g]++
			}
		}
		ib := make([]byte, BlockSize)
		for i := uint32(0); i < BlockSize*8; i++ {
			ino := g*im.ipg + i + 1
			used := i >= im.ipg || ino < firstIno || im.inodes[ino-1] != nil
			if used {
				ib[i/8] |= 1 << (i % 8)
			} else if i < im.ipg {
				freeInodes[g]++
			}
			if i < im.ipg && ino <= im.totalInode && im.inodes[ino-1] != nil && im.inodes[ino-1].Type == TypeDir {
				im.usedDirs[g]++
			}
		}
		bbn, ibn, _ := im.bitmapBlocks(g)
		if err := im.writeBlock(bbn, bb); err != nil {
			return err
		}
		if err := im.writeBlock(ibn, ib); err != nil {
			return err
		}
		totalFreeB += freeBlocks[g]
		totalFreeI += freeInodes[g]
	}
	// Group descriptors.
	gdt := make([]byte, im.gdtBlocks*BlockSize)
	for g := uint32(0); g < im.ngroups; g++ {
		d := gdt[g*descSize:]
		bbn, ibn, itn := im.bitmapBlocks(g)
		le.PutUint32(d[0:], bbn)
		le.PutUint32(d[4:], ibn)
		le.PutUint32(d[8:], itn)
		le.PutUint16(d[12:], uint16(freeBlocks[g]))
		le.PutUint16(d[14:], uint16(freeInodes[g]))
		le.PutUint16(d[16:], uint16(im.usedDirs[g]))
	}
	// Superblock and backups.
	for g := uint32(0); g < im.ngroups; g++ {
		if !hasSuper(g) {
			continue
		}
		sb := im.superblock(totalFreeB, totalFreeI, uint16(g))
		blk := make([]byte, BlockSize)
		off := 0
		if g == 0 {
			off = 1024
		}
		copy(blk[off:], sb)
		if err := im.writeBlock(g*blocksPerGroup, blk); err != nil {
			return err
		}
		if _, err := w.WriteAt(gdt, int64(g*blocksPerGroup+1)*BlockSize); err != nil {
			return fmt.Errorf("ext4: write group descriptors: %w", err)
		}
	}
	// Inode tables.
	for g := uint32(0); g < im.ngroups; g++ {
		_, _, itn := im.bitmapBlocks(g)
		tab := make([]byte, im.itBlocks*BlockSize)
		for i := uint32(0); i < im.ipg; i++ {
			ino := g*im.ipg + i + 1
			n := im.inodes[ino-1]
			if n == nil {
				continue
			}
			if err := im.inode(tab[i*inodeSize:(i+1)*inodeSize], n); err != nil {
				return err
			}
		}
		if _, err := w.WriteAt(tab, int64(itn)*BlockSize); err != nil {
			return fmt.Errorf("ext4: write inode table: %w", err)
		}
	}
	// Directories and long symlinks.
	var err error
	im.walk(func(n *node) {
		if err != nil {
			return
		}
		switch {
		case n.Type == TypeDir:
			for i, b := range n.blocks {
				if err = im.writeBlock(b, n.dirData[i*BlockSize:(i+1)*BlockSize]); err != nil {
					return
				}
			}
		case n.Type == TypeSymlink && !n.inlineLn:
			blk := make([]byte, BlockSize)
			copy(blk, n.Target)
			err = im.writeBlock(n.blocks[0], blk)
		}
	})
	if err != nil {
		return err
	}
	// Make sure the image has its full size even if the tail is free.
	last := make([]byte, 1)
	if !im.used[im.nblocks-1] {
		if _, err := w.WriteAt(last, im.Size()-1); err != nil {
			return fmt.Errorf("ext4: extend image: %w", err)
		}
	}
	return nil
}

func (im *Image) writeBlock(b uint32, data []byte) error {
	if _, err := im.w.WriteAt(data, int64(b)*BlockSize); err != nil {
		return fmt.Errorf("ext4: write block %d: %w", b, err)
	}
	return nil
}

func (im *Image) superblock(freeB, freeI uint32, group uint16) []byte {
	le := binary.LittleEndian
	sb := make([]byte, 1024)
	le.PutUint32(sb[0:], im.totalInode)
	le.PutUint32(sb[4:], im.nblocks)
	le.PutUint32(sb[8:], 0)
	le.PutUint32(sb[12:], freeB)
	le.PutUint32(sb[16:], freeI)
	le.PutUint32(sb[20:], 0) // first data block
	le.PutUint32(sb[24:], 2) // log block size: 1024<<2
	le.PutUint32(sb[28:], 2)
	le.PutUint32(sb[32:], blocksPerGroup)
	le.PutUint32(sb[36:], blocksPerGroup)
	le.PutUint32(sb[40:], im.ipg)
	le.PutUint16(sb[54:], 0xffff) // max mount count: -1
	le.PutUint16(sb[56:], 0xef53)
	le.PutUint16(sb[58:], 1) // clean
	le.PutUint16(sb[60:], 1) // errors: continue
	le.PutUint32(sb[76:], 1) // dynamic revision
	le.PutUint32(sb[84:], firstIno)
	le.PutUint16(sb[88:], inodeSize)
	le.PutUint16(sb[90:], group)
	le.PutUint32(sb[92:], 0)
	le.PutUint32(sb[96:], featIncompatFT|featIncompatExt)
	le.PutUint32(sb[100:], featROSparse|featROLargeFile|featRODirNlink|featROExtraIsz)
	copy(sb[104:120], im.uuid[:])
	copy(sb[120:136], im.p.Label)
	copy(sb[236:252], im.hashSeed[:])
	sb[252] = 1 // default hash: half_md4
	le.PutUint16(sb[348:], extraISize)
	le.PutUint16(sb[350:], extraISize)
	le.PutUint32(sb[352:], 1) // signed directory hash
	return sb
}

func (im *Image) inode(buf []byte, n *node) error {
	le := binary.LittleEndian
	mode := uint16(n.Mode & 07777)
	var size uint64
	switch n.Type {
	case TypeFile:
		mode |= 0x8000
		size = uint64(n.Size)
	case TypeDir:
		mode |= 0x4000
		size = uint64(len(n.dirData))
	case TypeSymlink:
		mode |= 0xa000
		size = uint64(len(n.Target))
	case TypeChar:
		mode |= 0x2000
	case TypeBlock:
		mode |= 0x6000
	case TypeFifo:
		mode |= 0x1000
	}
	le.PutUint16(buf[0:], mode)
	le.PutUint16(buf[2:], uint16(n.UID))
	le.PutUint32(buf[4:], uint32(size))
	le.PutUint32(buf[8:], n.Mtime)
	le.PutUint32(buf[12:], n.Mtime)
	le.PutUint32(buf[16:], n.Mtime)
	le.PutUint16(buf[24:], uint16(n.GID))
	le.PutUint16(buf[26:], uint16(n.nlink))
	nb := uint64(len(n.blocks)+len(n.leaves)) * (BlockSize / 512)
	le.PutUint32(buf[28:], uint32(nb))
	le.PutUint32(buf[108:], uint32(size>>32))
	le.PutUint16(buf[116:], uint16(nb>>32))
	le.PutUint16(buf[120:], uint16(n.UID>>16))
	le.PutUint16(buf[122:], uint16(n.GID>>16))
	le.PutUint16(buf[128:], extraISize)
	iblock := buf[40:100]
	switch {
	case n.Type == TypeSymlink && n.inlineLn:
		copy(iblock, n.Target)
		return nil
	case n.Type == TypeChar || n.Type == TypeBlock:
		if n.Major < 256 && n.Minor < 256 {
			le.PutUint32(iblock[0:], n.Major<<8|n.Minor)
		} else {
			le.PutUint32(iblock[4:], n.Minor&0xff|n.Major<<8|(n.Minor&^0xff)<<12)
		}
		return nil
	case n.Type == TypeFifo:
		return nil
	}
	le.PutUint32(buf[32:], inodeFlExtents)
	ext := extents(n.blocks)
	if len(ext) <= 4 {
		putExtentHeader(iblock, len(ext), 4, 0)
		for i, e := range ext {
			putExtent(iblock[12+12*i:], e)
		}
		return nil
	}
	putExtentHeader(iblock, len(n.leaves), 4, 1)
	for i, leaf := range n.leaves {
		lo := i * extentsPerLeaf
		hi := lo + extentsPerLeaf
		if hi > len(ext) {
			hi = len(ext)
		}
		idx := iblock[12+12*i:]
		le.PutUint32(idx[0:], ext[lo].logical)
		le.PutUint32(idx[4:], leaf)
		blk := make([]byte, BlockSize)
		putExtentHeader(blk, hi-lo, extentsPerLeaf, 0)
		for j, e := range ext[lo:hi] {
			putExtent(blk[12+12*j:], e)
		}
		if err := im.writeBlock(leaf, blk); err != nil {
			return err
		}
	}
	return nil
}

func putExtentHeader(b []byte, entries, max, depth int) {
	le := binary.LittleEndian
	le.PutUint16(b[0:], 0xf30a)
	le.PutUint16(b[2:], uint16(entries))
	le.PutUint16(b[4:], uint16(max))
	le.PutUint16(b[6:], uint16(depth))
}

func putExtent(b []byte, e extent) {
	le := binary.LittleEndian
	le.PutUint32(b[0:], e.logical)
	le.PutUint16(b[4:], uint16(e.length))
	le.PutUint16(b[6:], 0)
	le.PutUint32(b[8:], e.start)
}

// WriteFile streams the contents of the regular file at p (exactly its Size
// bytes) into its blocks. Call it once per path in Files, after WriteMeta.
func (im *Image) WriteFile(p string, r io.Reader) error {
	cp, err := clean(p)
	if err != nil {
		return err
	}
	n, ok := im.byPath[cp]
	if !ok || n.Type != TypeFile {
		return fmt.Errorf("ext4: %s: not a regular file of the image", p)
	}
	if n.written {
		return fmt.Errorf("ext4: %s: written twice", p)
	}
	n.written = true
	buf := make([]byte, 1<<20)
	var done int64
	for i := 0; i < len(n.blocks); {
		// Gather a run of contiguous blocks, up to len(buf).
		j := i + 1
		for j < len(n.blocks) && n.blocks[j] == n.blocks[j-1]+1 && (j-i+1)*BlockSize <= len(buf) {
			j++
		}
		want := int64(j-i) * BlockSize
		if rest := n.Size - done; rest < want {
			want = rest
		}
		if _, err := io.ReadFull(r, buf[:want]); err != nil {
			return fmt.Errorf("ext4: %s: reading contents: %w", p, err)
		}
		if _, err := im.w.WriteAt(buf[:want], int64(n.blocks[i])*BlockSize); err != nil {
			return fmt.Errorf("ext4: %s: %w", p, err)
		}
		done += want
		i = j
	}
	if done != n.Size {
		return fmt.Errorf("ext4: %s: wrote %d of %d bytes", p, done, n.Size)
	}
	return nil
}

// Finish checks that every regular file received its contents.
func (im *Image) Finish() error {
	for _, p := range im.Files() {
		if !im.byPath[p].written {
			return fmt.Errorf("ext4: %s: contents never written", p)
		}
	}
	return nil
}

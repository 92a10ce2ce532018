#!/usr/bin/env python3
"""normjournal.py IN OUT: copy a dm-integrity image, rewriting its journal's commit-id
sequences to 0 (what a freshly formatted journal holds), and print the superblock salt.

The kernel's commit ids are le64(C[seq] ^ (section<<32 ^ sector)) with C = 0x1111..,
0x2222.., 0x3333.., 0x4444..; an empty journal left by close has one uniform seq (0..3)
that depends on usage history. This script refuses anything else: every journal sector
of a section must carry the id of one and the same seq and every entry must be unused (sector_hi =
0xffffffff); otherwise it exits 1. With several journal sections the seq may differ
between sections (the kernel commits section by section: e.g. seqs 2,1 seen on a
2-section journal after close), so uniformity is required per section. Independent of the Go code (written from the kernel
source): it is the only transformation applied to the kernel's reference images."""
import struct
import sys

C = [0x1111111111111111 * k for k in (1, 2, 3, 4)]
src, dst = sys.argv[1], sys.argv[2]
img = bytearray(open(src, "rb").read())
if img[:8] != b"integrt\0":
    sys.exit("no dm-integrity superblock")
ver, l2i, tag, sections, provided, flags, l2spb = struct.unpack_from("<BBHIQIB", img, 8)
spb = 1 << l2spb
entry = (8 + 8 * spb + tag + 7) // 8 * 8
eps = 504 // entry
sect_entries = 8 * eps
ss = sect_entries * spb + 8
seqs = []
for i in range(sections):
    seq = None
    for j in range(ss):
        off = (8 + i * ss + j) * 512
        cid = struct.unpack_from("<Q", img, off + 504)[0] ^ ((i << 32) ^ j)
        if cid not in C:
            sys.exit("section %d sector %d: bad commit id" % (i, j))
        s = C.index(cid)
        if seq is None:
            seq = s
        elif s != seq:
            sys.exit("section %d sector %d: mixed commit sequences in a section (journal not empty)" % (i, j))
        struct.pack_into("<Q", img, off + 504, C[0] ^ ((i << 32) ^ j))
    seqs.append(seq)
    for e in range(sect_entries):
        off = (8 + i * ss + e % 8) * 512 + (e // 8) * entry
        if struct.unpack_from("<I", img, off + 4)[0] != 0xFFFFFFFF:
            sys.exit("section %d entry %d in use" % (i, e))
open(dst, "wb").write(img)
print("seqs=%s salt=%s initial=%d" % (",".join(map(str, seqs)), img[48:64].hex(), 8 + sections * ss))

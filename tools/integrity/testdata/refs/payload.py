#!/usr/bin/env python3
"""Deterministic, compressible test payload: payload.py BYTES > FILE.
4 KiB block i: every 5th block (i % 5 == 3) is zero, the others repeat a line naming i."""
import sys

n = int(sys.argv[1])
out = bytearray()
i = 0
while len(out) < n:
    if i % 5 == 3:
        blk = bytes(4096)
    else:
        line = b"rules_dm dm-integrity reference block %08d %02x\n" % (i, i & 0xff)
        blk = (line * (4096 // len(line) + 1))[:4096]
    out += blk
    i += 1
sys.stdout.buffer.write(bytes(out[:n]))

#!/bin/sh
# Build the bundled example root filesystem as an ext4 image, unprivileged and
# reproducibly: the same files give the same image bytes on every machine.
#
#   examples/rootfs/mkimage.sh OUT.img [SIZE]      (SIZE as mke2fs takes it; default 8M)
#
# Fixed: 4096-byte blocks, UUID, directory hash seed, every timestamp
# (SOURCE_DATE_EPOCH, default 1700000000; E2FSPROGS_FAKE_TIME for e2fsprogs
# < 1.47.1), owner root:root and modes of every file (set with debugfs after
# mke2fs -d, which would otherwise copy the caller's uid, mode and ctime).
set -eu
out=${1:?usage: mkimage.sh OUT.img [SIZE]}
size=${2:-8M}
here=$(cd "$(dirname "$0")" && pwd)
epoch=${SOURCE_DATE_EPOCH:-1700000000}
PATH=$PATH:/usr/sbin:/sbin
command -v mkfs.ext4 >/dev/null && command -v debugfs >/dev/null ||
	{ echo "mkimage.sh: needs mkfs.ext4 and debugfs (Debian: apt-get install e2fsprogs)" >&2; exit 1; }

stage=$(mktemp -d "${TMPDIR:-/tmp}/rules_dm-rootfs.XXXXXX")
cmds=$stage.debugfs
trap 'rm -rf "$stage" "$cmds" "$out.tmp"' EXIT
cp -R "$here/files/." "$stage/"
find "$stage" -type d -exec chmod 0755 {} +
find "$stage" -type f -exec chmod 0644 {} +

rm -f "$out.tmp"
SOURCE_DATE_EPOCH=$epoch E2FSPROGS_FAKE_TIME=$epoch mkfs.ext4 -q -F -b 4096 -I 256 \
	-U 6d3e4c1a-0b6f-4d5e-9a1b-5f2c7e8d9a01 \
	-E hash_seed=2b4f1e6a-7c3d-4e8f-a9b0-c1d2e3f4a5b6,root_owner=0:0 \
	-L rules-dm-demo -d "$stage" "$out.tmp" "$size" >/dev/null

# Normalise what -d copied from the staging tree: owner, times.
: >"$cmds"
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort) | while read -r p; do
	p=${p#.}
	for f in uid gid; do echo "sif $p $f 0"; done
	for f in atime mtime ctime crtime; do echo "sif $p $f $epoch"; done
done >>"$cmds"
for f in atime mtime ctime crtime; do echo "sif / $f $epoch"; done >>"$cmds"
E2FSPROGS_FAKE_TIME=$epoch debugfs -w -f "$cmds" "$out.tmp" >/dev/null 2>&1
E2FSPROGS_FAKE_TIME=$epoch e2fsck -fn "$out.tmp" >/dev/null 2>&1 ||
	{ echo "mkimage.sh: e2fsck reports problems in the generated image" >&2; exit 1; }
mv "$out.tmp" "$out"
trap 'rm -rf "$stage" "$cmds"' EXIT

#!/usr/bin/env bash
# rules_dm quick start: build the bundled example root filesystem, then a
# verity-then-crypt stack from it, offline and unprivileged.
#
#   ./examples/quickstart.sh            (from the repository root, or anywhere)
#
# Writes, in ./out of the current directory (git- and Bazel-ignored in the repository):
#   out/data.img, out/manifest.json, out/manifest.env   the stack (dm-compose build)
#   out/inputs/rootfs.img   the ext4 image of examples/rootfs/files (reproducible)
#   out/inputs/demo.key     a 64-byte aes-xts-plain64 key. DEMO KEY, NOT A SECRET: it is
#                           derived from a fixed public string so that the example is
#                           reproducible. Never use it for real data.
#   out/inputs/bin/dm-compose
# and checks the result with dm-compose verify. Needs Go (go.mod's version, or a Go that
# can fetch it) and e2fsprogs (installed with apt-get when missing and we may).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=out
IN=$OUT/inputs
export PATH=$PATH:/usr/sbin:/sbin

if ! command -v mkfs.ext4 >/dev/null || ! command -v debugfs >/dev/null; then
	echo "== installing e2fsprogs"
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q e2fsprogs >/dev/null
fi
command -v go >/dev/null || { echo "quickstart: Go is required (https://go.dev/dl/; see go.mod for the version)" >&2; exit 1; }
# Go >= 1.21 builds it (fetching go.mod's toolchain when older, unless GOTOOLCHAIN=local);
# Debian 12's golang-go is 1.19: use bookworm-backports (golang-1.2x) or go.dev/dl.
gov=$(go env GOVERSION 2>/dev/null || echo go1.0)
gominor=$(echo "$gov" | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
if [ "${gominor:-0}" -lt 21 ]; then
	echo "quickstart: $gov is too old: Go 1.21 or newer is needed (Debian 12: golang from bookworm-backports, or https://go.dev/dl/)" >&2
	exit 1
fi

mkdir -p "$IN/bin"
echo "== building dm-compose"
(cd "$ROOT" && go build -o "$OLDPWD/$IN/bin/dm-compose" ./tools/cmd/dm-compose)

echo "== building the example root filesystem ($IN/rootfs.img)"
"$ROOT/examples/rootfs/mkimage.sh" "$IN/rootfs.img" 8M

# The demo key: SHA-512 of a fixed string, as 64 raw bytes. NOT SECRET.
hex=$(printf 'rules_dm quick-start demo key; public, never use for real data' | sha512sum | cut -c1-128)
umask 077
printf "$(printf '%s' "$hex" | sed 's/../\\x&/g')" >"$IN/demo.key"
umask 022
echo "== demo key: $IN/demo.key (64 bytes, derived from a public string: NOT A SECRET)"

echo "== dm-compose build --stack verity-then-crypt --outdir $OUT"
"$IN/bin/dm-compose" build --in "$IN/rootfs.img" --outdir "$OUT" --stack verity-then-crypt \
	--key-file "$IN/demo.key" --newroot /newroot --force
echo "== dm-compose verify"
"$IN/bin/dm-compose" verify "$OUT/manifest.json" --key-file "$IN/demo.key" --in "$IN/rootfs.img"
echo "== dm-compose inspect"
"$IN/bin/dm-compose" inspect "$OUT"
cat <<EOT

Done. $OUT/data.img is the disk image (DATA_DEV): the dm-verity tree is appended after the
encrypted filesystem. $OUT/manifest.json / $OUT/manifest.env tell an activator
(initramfs/apply_manifest.sh or dm-activate) how to open it: verity on DATA_DEV, then
dm-crypt with the key from the kernel keyring, mounted from /dev/mapper/dmroot.
$OUT/boot/veritytab and $OUT/boot/crypttab set up the same stack with systemd instead
(spec/boot.md).
EOT

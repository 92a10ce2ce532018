#!/usr/bin/env bash
# Regenerates the reference images of tests/suites/30-integrity.sh in a real kernel
# (Debian 6.1 under QEMU via tests/e2e/dmtest.sh; integritysetup 2.6.1 in the guest).
# Usage: tools/integrity/testdata/refs/make-refs.sh   (from anywhere; writes *.xz here)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/integrity-refs.XXXXXX")
trap 'rm -rf "$T"' EXIT
mkdir "$T/files"
python3 "$HERE/payload.py" 67108864 >"$T/files/payload"
printf 'rules_dm integrity test hmac key' | sha256sum | cut -c1-64 | xxd -r -p >"$T/files/hmac.key"
mk() { truncate -s "$2" "$T/$1"; }
mk sep-crc32c-4k.meta 1M; mk sep-crc32c-4k.data 8M
mk sep-sha256-4k.meta 1M; mk sep-sha256-4k.data 8M
mk sep-hmac-4k.meta 1M; mk sep-hmac-4k.data 8M
mk sep-crc32c-512.meta 1M; mk sep-crc32c-512.data 2M
mk sep-crc32c-4k-D.meta 1M; mk sep-crc32c-4k-D.data 8M
mk il-crc32c-4k.dev 16M
mk il-sha256-512.dev 2M
mk sep-crc32c-4k-64m.meta 4M; mk sep-crc32c-4k-64m.data 64M   # default journal: 2 sections
mk il-crc32c-4k-64m.dev 64M
"$ROOT/tests/e2e/dmtest.sh" run --timeout 600 --files "$T/files" "$HERE/guest-refs.sh" \
	"$T"/sep-crc32c-4k.{meta,data} "$T"/sep-sha256-4k.{meta,data} "$T"/sep-hmac-4k.{meta,data} \
	"$T"/sep-crc32c-512.{meta,data} "$T"/sep-crc32c-4k-D.{meta,data} \
	"$T/il-crc32c-4k.dev" "$T/il-sha256-512.dev" \
	"$T"/sep-crc32c-4k-64m.{meta,data} "$T/il-crc32c-4k-64m.dev" | tee "$T/console"
grep '^REFTABLE ' "$T/console" | sed 's/^REFTABLE //' >"$HERE/tables.txt"
for f in "$T"/*.meta "$T"/*.dev; do
	xz -9e -T1 -c "$f" >"$HERE/$(basename "$f").xz"
done
for f in "$T"/*.data; do  # the kernel must have left exactly the payload on the data device
	n=$(stat -c %s "$f")
	cmp "$f" <(head -c "$n" "$T/files/payload") || { echo "data device $f != payload" >&2; exit 1; }
done
ls -l "$HERE"

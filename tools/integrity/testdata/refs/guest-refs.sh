#!/bin/sh
# Guest script (busybox sh) run by make-refs.sh through tests/e2e/dmtest.sh: formats each
# disk with integritysetup 2.6.1 in the real kernel, writes the payload through the
# mapping (all provided sectors), reads it back, closes. Disks: see make-refs.sh.
set -u
F=${DMTEST_FILES:-/files}
fail=0
ref() { # name meta data(or -) sector-size integrity-opts...
	name=$1 meta=$2 data=$3 ss=$4
	shift 4
	if [ "$data" = - ]; then dd=""; else dd="--data-device $data"; fi
	# shellcheck disable=SC2086
	integritysetup format "$meta" $dd --sector-size "$ss" "$@" --batch-mode || { echo "REF $name format failed"; fail=1; return; }
	# shellcheck disable=SC2086
	integritysetup open "$meta" "$name" $dd "$@" || { echo "REF $name open failed"; fail=1; return; }
	echo "REFTABLE $name $(dmsetup table "$name")"
	n=$(dmsetup table "$name" | cut -d' ' -f2)
	dd if="$F/payload" of="/dev/mapper/$name" bs=512 count="$n" conv=fsync 2>/dev/null || { echo "REF $name write failed"; fail=1; }
	a=$(dd if="/dev/mapper/$name" bs=512 count="$n" 2>/dev/null | sha256sum | cut -d' ' -f1)
	b=$(dd if="$F/payload" bs=512 count="$n" 2>/dev/null | sha256sum | cut -d' ' -f1)
	[ "$a" = "$b" ] || { echo "REF $name readback differs"; fail=1; }
	integritysetup close "$name" || fail=1
	echo "REFDONE $name sectors=$n"
}
ref sep-crc32c-4k /dev/vda /dev/vdb 4096 --integrity crc32c
ref sep-sha256-4k /dev/vdc /dev/vdd 4096 --integrity sha256
ref sep-hmac-4k /dev/vde /dev/vdf 4096 --integrity hmac-sha256 --integrity-key-file "$F/hmac.key" --integrity-key-size 32
ref sep-crc32c-512 /dev/vdg /dev/vdh 512 --integrity crc32c
ref sep-crc32c-4k-D /dev/vdi /dev/vdj 4096 --integrity crc32c  --integrity-no-journal
ref il-crc32c-4k /dev/vdk - 4096 --integrity crc32c
ref il-sha256-512 /dev/vdl - 512 --integrity sha256
ref sep-crc32c-4k-64m /dev/vdm /dev/vdn 4096 --integrity crc32c
ref il-crc32c-4k-64m /dev/vdo - 4096 --integrity crc32c
sync
exit $fail

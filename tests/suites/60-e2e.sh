#!/usr/bin/env bash
# Real-kernel end-to-end tests (QEMU TCG, tests/e2e/dmtest.sh): for each of the seven
# stacks, an ext4 image (with a known file) goes through `dm-compose build`, then ONE guest
# per stack activates it with initramfs/apply_manifest.sh AND the static Go dm-activate:
# dry-run, bootstrap (key file, mount command, whole top device sha256 == input sha256,
# keyring key reference, idempotent re-run), sealed good (hex key, read check, ro mount),
# sealed wrong key (fail action exit), tampered data / verity hash / integrity tag copies
# (bootstrap reports the error; sealed FAIL_ACTION=exit exits non-zero), and last a sealed
# FAIL_ACTION=panic that must take the kernel down. The host checks that no image changed.
#
# Skip it: DMTEST_SKIP=e2e ./tests/run_tests.sh. Knobs: DMTEST_E2E_STACKS="verity-only ..."
# (subset), DMTEST_E2E_JOBS (parallel guests, default 2), and dmtest.sh's DMTEST_CACHE,
# DMTEST_TIMEOUT. The guest console of each stack is printed below its results.
set -u
. "$ROOT/tests/lib.sh"

E2E=$ROOT/tests/e2e
DMTEST=$E2E/dmtest.sh
cd "$WORK" || exit 1
# Two variants beyond the seven stacks: integrity-then-crypt-aead (--profile aead:
# capi:gcm(aes)-random over dm-integrity holding tags only, the authenticated dm-crypt) and
# integrity-only-hmac (--integrity-hash hmac-sha256: the @IKEY@ path). And
# crypt-then-verity-fec (--verity-fec-roots 2: use_fec_from_device names the crypt layer
# below, @LOWER@ in the verity options); FEC repairs a flipped byte, so it has no tamper
# sets: a wrong key (verity over garbage, beyond what FEC corrects) shows the fail action.
ALL_STACKS="crypt-only integrity-only integrity-then-crypt crypt-then-integrity verity-only verity-then-crypt crypt-then-verity integrity-then-crypt-aead integrity-only-hmac crypt-then-verity-fec"
STACKS=${DMTEST_E2E_STACKS:-$ALL_STACKS}
JOBS=${DMTEST_E2E_JOBS:-2}
TIMEOUT=${DMTEST_TIMEOUT:-240}
LETTERS=abcdefghijklmnopqrst

# ---- prerequisites: kernel + initramfs (cached), dm-compose, a static dm-activate
if ! DMTEST_IMAGE_DIR=$("$DMTEST" build 2>build.log); then
	if grep -q 'missing host packages' build.log; then
		skip e2e "$(tail -n 1 build.log)"
		exit 0
	fi
	check "dmtest.sh build" sh -c 'cat build.log; false'
	exit 0
fi
export DMTEST_IMAGE_DIR
check "dmtest.sh build (cached kernel + initramfs)" test -f "$DMTEST_IMAGE_DIR/initrd.gz"
if [ ! -x "$BIN/dm-compose" ]; then
	skip e2e "tools/cmd/dm-compose not built"
	exit 0
fi
ACTS="sh"
if [ -d "$ROOT/initramfs/cmd/dm-activate" ] &&
	(cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/dm-activate" ./initramfs/cmd/dm-activate) >go-build.log 2>&1; then
	ACTS="sh go"
	check "dm-activate builds static (CGO_ENABLED=0)" sh -c "! ldd '$WORK/dm-activate' >/dev/null 2>&1"
else
	skip "e2e: Go activator" "initramfs/cmd/dm-activate does not build: $(tail -n 1 go-build.log 2>/dev/null)"
fi

# ---- the input filesystem: 8 MiB ext4, 4 KiB blocks, a known file and some data
mkdir -p src
echo "hello from the rules_dm e2e suite" >src/hello.txt
"$PY" -c '
import hashlib, sys
with open("src/blob", "wb") as f:
    for i in range(1024):
        f.write(hashlib.sha512(b"blob %d" % i).digest() * 4)
'
HELLO_SHA=$(sha256sum src/hello.txt | cut -d' ' -f1)
if ! mkfs.ext4 -q -F -b 4096 -U 6f2c1b0e-1d3a-4c5e-9f7a-0123456789ab -E hash_seed=6f2c1b0e-1d3a-4c5e-9f7a-0123456789ab \
	-d src fs.img 8M >mkfs.log 2>&1; then
	check "mkfs.ext4 -d" sh -c 'cat mkfs.log; false'
	exit 0
fi
HELLO_BLOCK=$(debugfs -R "bmap /hello.txt 0" fs.img 2>/dev/null | tail -n 1)
case $HELLO_BLOCK in '' | *[!0-9]*) check "debugfs bmap hello.txt" false; exit 0 ;; esac
"$PY" -c 'import hashlib,sys; sys.stdout.buffer.write(hashlib.sha512(b"rules_dm e2e key").digest())' >key.bin
"$PY" -c 'import hashlib,sys; sys.stdout.buffer.write(hashlib.sha512(b"rules_dm e2e WRONG key").digest())' >wrong.bin
head -c 32 key.bin >key32.bin
head -c 32 wrong.bin >wrong32.bin
"$PY" -c 'import hashlib,sys; sys.stdout.buffer.write(hashlib.sha256(b"rules_dm e2e hmac key").digest())' >ikey.bin
"$PY" -c 'import hashlib,sys; sys.stdout.buffer.write(hashlib.sha256(b"rules_dm e2e WRONG hmac key").digest())' >wrong-ikey.bin

# tamper FILE OFFSET: flip all bits of one byte.
tamper() {
	"$PY" - "$1" "$2" <<'EOF'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(off)
    b = f.read(1)
    assert len(b) == 1, "offset beyond the end"
    f.seek(off)
    f.write(bytes([b[0] ^ 0xFF]))
EOF
}

# layout OUTDIR: shell assignments from manifest.json (needs_meta, where the verity tree and
# the integrity tags live), independent of the activators.
layout() {
	"$PY" - "$1/manifest.json" "$HELLO_BLOCK" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1])); hb = int(sys.argv[2])
arts = {a["role"]: a["path"] for a in m["artifacts"]}
print("DATA_IMG=%s META_IMG=%s NLAYERS=%d" % (arts["data"], arts.get("meta", ""), len(m["layers"])))
print("HAS_CRYPT=%d" % any(l["target"] == "crypt" for l in m["layers"]))
print("INPUT_SHA=%s" % m["input"]["sha256"])
# every stack maps data.img 1:1 onto the filesystem blocks (separate metadata layouts)
print("DATA_TAMPER=%d" % (hb * 4096 + 100))
for l in m["layers"]:
    if l["target"] == "verity":
        v = l["verity"]
        img = "META_IMG" if v["hash_device"] == "meta" else "DATA_IMG"
        # first tree block after the superblock: the top level (or the only one)
        print("HASH_IMG=$%s HASH_TAMPER=%d" % (img, v["hash_start_block"] * v["hash_block_size"] + 7))
    if l["target"] == "integrity":
        i = l["integrity"]
        if i["layout"] != "separate":
            print("TAG_TAMPER=")
            continue
        # tags follow the 4 KiB superblock area and the journal; one per block
        print("TAG_TAMPER=%d" % (4096 + i["journal_sectors"] * 512 + hb * i["tag_size"]))
EOF
}

run_stack() { # run_stack STACK: prepares, boots, writes $WORK/<stack>/{console.log,rc,results}
	local s=$1 d="$WORK/$1"
	mkdir -p "$d/files"
	local args=(--stack "$s") key=key.bin wrong=wrong.bin hmac=0
	case $s in
	integrity-then-crypt-aead)
		key=key32.bin wrong=wrong32.bin
		args=(--stack integrity-then-crypt --profile aead --cipher 'capi:gcm(aes)-random')
		;;
	integrity-only-hmac)
		hmac=1
		args=(--stack integrity-only --integrity-hash hmac-sha256 --integrity-key-file ikey.bin)
		;;
	crypt-then-verity-fec)
		args=(--stack crypt-then-verity --verity-fec-roots 2)
		;;
	esac
	case $s in *crypt*) args+=(--key-file "$key") ;; esac
	if ! "$BIN/dm-compose" build --in fs.img --outdir "$d/out" "${args[@]}" >"$d/compose.log" 2>&1; then
		if grep -qi 'not yet supported\|not supported' "$d/compose.log"; then echo skip >"$d/status"; else echo compose-fail >"$d/status"; fi
		return
	fi
	local DATA_IMG META_IMG NLAYERS HAS_CRYPT INPUT_SHA DATA_TAMPER HASH_IMG="" HASH_TAMPER="" TAG_TAMPER=""
	eval "$(layout "$d/out")"
	case $s in *-fec) HASH_TAMPER="" TAG_TAMPER="" ;; esac # FEC corrects a flipped byte
	local sets=(good) imgs=() set devs n=0 cfg="$d/files/config.sh"
	[ -n "$HASH_TAMPER" ] || [ -n "$TAG_TAMPER" ] && sets+=(tdata)
	[ -n "$HASH_TAMPER" ] && sets+=(thash)
	[ -n "$TAG_TAMPER" ] && sets+=(ttag)
	sets+=(panic)
	local panic_wrong=""
	if [ "${#sets[@]}" = 2 ]; then panic_wrong=1; fi # crypt-only: the wrong key panics
	{
		echo "STACK=$s NLAYERS=$NLAYERS HAS_CRYPT=$HAS_CRYPT"
		echo "INPUT_SHA=$INPUT_SHA HELLO_SHA=$HELLO_SHA KEY_HEX=$(od -An -v -tx1 "$key" | tr -d ' \n')"
		echo "HAS_IKEY=$hmac IKEY_HEX=$(od -An -v -tx1 ikey.bin | tr -d ' \n')"
		echo "ACTS='$ACTS'"
	} >"$cfg"
	local tsets=""
	for set in "${sets[@]}"; do
		devs=""
		for role in data meta; do
			local src
			if [ $role = data ]; then src=$DATA_IMG; else src=$META_IMG; fi
			[ -n "$src" ] || continue
			local img="$d/$set.$role.img"
			cp --sparse=always "$d/out/$src" "$img"
			imgs+=("$img")
			devs="$devs /dev/vd${LETTERS:n:1}"
			n=$((n + 1))
		done
		echo "SET_$set='${devs# }'" >>"$cfg"
		case $set in tdata | thash | ttag) tsets="$tsets $set" ;; esac
	done
	[ -z "$HASH_TAMPER" ] || tamper "$d/thash.$([ "$HASH_IMG" = "$META_IMG" ] && [ -n "$META_IMG" ] && echo meta || echo data).img" "$HASH_TAMPER"
	[ -z "$TAG_TAMPER" ] || tamper "$d/ttag.meta.img" "$TAG_TAMPER"
	if [ -n "$HASH_TAMPER$TAG_TAMPER" ]; then
		tamper "$d/tdata.data.img" "$DATA_TAMPER"
		tamper "$d/panic.data.img" "$DATA_TAMPER"
	fi
	local pact=${ACTS##* }
	case $s in crypt-only | integrity-then-crypt | verity-only | crypt-then-verity | integrity-only-hmac | crypt-then-verity-fec) pact=${ACTS%% *} ;; esac
	{
		echo "TAMPER_SETS='${tsets# }'"
		# the aead variant shows FAIL_ACTION=reboot; the others panic
		echo "PANIC_SET=panic PANIC_WRONG_KEY=$panic_wrong PANIC_ACT=$pact PANIC_ACTION=$(case $s in *-aead) echo reboot ;; *) echo panic ;; esac)"
	} >>"$cfg"
	cp "$ROOT/initramfs/apply_manifest.sh" "$d/out/manifest.env" "$d/out/manifest.json" "$d/files/"
	cp "$key" "$d/files/key.bin"
	cp "$wrong" "$d/files/wrong-key.bin"
	cp ikey.bin wrong-ikey.bin "$d/files/"
	[ "$ACTS" = sh ] || cp "$WORK/dm-activate" "$d/files/"
	(cd "$d" && sha256sum ./*.img) >"$d/before.sha"
	local t0=$SECONDS rc=0
	DMTEST_TIMEOUT=$TIMEOUT "$DMTEST" run --timeout "$TIMEOUT" --files "$d/files" "$E2E/guest-stack.sh" "${imgs[@]}" \
		>"$d/console.log" 2>&1 || rc=$?
	echo "$rc $((SECONDS - t0))" >"$d/rc"
	(cd "$d" && sha256sum ./*.img) >"$d/after.sha"
	echo ran >"$d/status"
}

# ---- boot the guests, JOBS at a time
t_start=$SECONDS
running=0
for s in $STACKS; do
	run_stack "$s" &
	running=$((running + 1))
	if [ "$running" -ge "$JOBS" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait

# ---- results
for s in $STACKS; do
	d="$WORK/$s"
	echo "  -- $s"
	case $(cat "$d/status" 2>/dev/null) in
	skip)
		skip "e2e $s" "$(head -n 1 "$d/compose.log")"
		continue
		;;
	compose-fail)
		check "e2e $s: dm-compose build" sh -c "cat '$d/compose.log'; false"
		continue
		;;
	ran) ;;
	*)
		check "e2e $s: prepared" false
		continue
		;;
	esac
	read -r rc secs <"$d/rc"
	while read -r _ st name detail; do
		if [ "$st" = PASS ]; then
			echo "  PASS e2e $s: $name${detail:+ ($detail)}"
			_record PASS "e2e $s: $name"
		else
			echo "  FAIL e2e $s: $name${detail:+ ($detail)}"
			_record FAIL "e2e $s: $name"
		fi
	done < <(grep '^DMTEST-RESULT ' "$d/console.log")
	nres=$(grep -c '^DMTEST-RESULT ' "$d/console.log")
	paction="" pname=""
	read -r paction pname < <(sed -n 's/^DMTEST-EXPECT-DEATH //p' "$d/console.log")
	if [ -n "${pname:-}" ]; then
		sign='Kernel panic'
		[ "$paction" = reboot ] && sign='reboot: Restarting system'
		if [ "$rc" = 125 ] && sed -n '/^DMTEST-EXPECT-DEATH/,$p' "$d/console.log" | grep -q "$sign"; then
			why=$(sed -n '/^DMTEST-EXPECT-DEATH/,$p' "$d/console.log" | grep -m1 "$sign\|Kernel panic\|corrupted" | sed 's/^\[[ 0-9.]*\] //')
			echo "  PASS e2e $s: $pname (guest died: $why)"
			_record PASS "e2e $s: $pname"
		else
			echo "  FAIL e2e $s: $pname (dmtest exit $rc, no '$sign' after the marker)"
			_record FAIL "e2e $s: $pname"
		fi
	else
		echo "  FAIL e2e $s: guest ended before the panic scenario (dmtest exit $rc, $nres results)"
		_record FAIL "e2e $s: guest completed"
	fi
	if cmp -s "$d/before.sha" "$d/after.sha"; then
		echo "  PASS e2e $s: activation wrote nothing to any image ($(wc -l <"$d/before.sha") images)"
		_record PASS "e2e $s: images unchanged"
	else
		echo "  FAIL e2e $s: images changed by the guest:"
		diff "$d/before.sha" "$d/after.sha" | sed 's/^/    /'
		_record FAIL "e2e $s: images unchanged"
	fi
	echo "    guest console ($secs s):"
	sed 's/^/    | /' "$d/console.log"
done
echo "  e2e guests took $((SECONDS - t_start)) s ($JOBS at a time)"

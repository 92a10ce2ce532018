#!/usr/bin/env bash
# 70-bazel: the Bazel rules offline (Debian's Bazel 4.2.3, rules_go 0.34 + gazelle 0.26
# from the Go module proxy; see third_party/bazel/setup.sh).
#
#   setup     ./third_party/bazel/setup.sh (idempotent)
#   lint      buildifier --mode=check --lint=warn on our Starlark; gazelle -mode=diff
#   (a)       bazel test //... (builds all seven example stacks, the initramfs, the
#             round-trip tests and the Go unit tests) with a bazel-remote v2.6.2 cache on
#             127.0.0.1 (HTTP and gRPC) being filled; e2fsck/debugfs on the ext4 image
#   (c)       a no-op rebuild runs 0 actions; changing one attribute of the top rule of
#             verity-then-crypt (--define=dm_example_verity_hash=sha512) re-runs only that
#             layer's actions (counted from the execution log)
#   (b)       bazel clean --expunge, build again reading no cache (results are uploaded
#             to the remote cache for (d)): the dm artifacts are byte-identical to (a)'s
#   (d)       bazel clean --expunge, build with the remote cache: hit rate, 100% for dm actions
#   aead      dm_stack(profile = "aead") (gcm, and authenc with 512-byte sectors): the
#             four outputs are byte-identical to dm-compose build run by hand (the go-built
#             $BIN/dm-compose) with the same flags; the manifest says profile aead and
#             integrity:28:aead over hash none; the round trip authenticated every sector
#   arm64     //dm:dm-activate-linux-arm64: an ELF for AArch64, statically linked, packed
#             in initramfs_arm64.cpio; under qemu-aarch64 (apt qemu-user; skipped
#             without it) MODE=dry-run prints exactly the amd64 binary's plan for every
#             example stack's manifest.env
#   bad input bad attributes (and the aead ones) fail the build and name the problem
#   keys      by default (//dm:no_remote_keys) key-reading actions carry `no-remote`
#   kernel    //examples:verity_then_crypt_kernel_test and integrity_then_crypt_aead_kernel_test
#             (dm_kernel_test, manual): activation in the kernel cached by
#             tests/e2e/dmtest.sh build, under QEMU TCG (~10 s each); skipped without
#             qemu-system-x86_64 or that cache
#
# Bazel runs in a snapshot of the working tree (tracked and untracked, not ignored
# files) at a fixed path, $RULES_DM_BAZEL_WS (default ~/.cache/rules_dm/ws): edits made
# while the suite runs cannot disturb its checks, and the output base (keyed by that
# path) stays warm from one run to the next; (b) and (d) expunge it on purpose.
#
# Knobs: RULES_DM_BAZELDEPS (default ~/.cache/rules_dm/bazeldeps unless ./.bazeldeps is a
# directory), RULES_DM_TOOLS (buildifier + bazel-remote, default ~/.cache/rules_dm/tools),
# RULES_DM_BAZEL_WS, DMTEST_BAZEL_NO_EXPUNGE=1 (skip (b) and (d): no cold rebuilds).
. "$ROOT/tests/lib.sh"
set -u
cd "$ROOT" || exit 1
SNAP=${RULES_DM_BAZEL_WS:-$HOME/.cache/rules_dm/ws}
export GOTOOLCHAIN=local
TOOLS=${RULES_DM_TOOLS:-$HOME/.cache/rules_dm/tools}
LOGS=$WORK/logs
mkdir -p "$TOOLS" "$LOGS"
T0=$(date +%s)
stamp() { echo "   [$(($(date +%s) - T0)) s] $*"; }
gocmd() { env -u GOROOT GOFLAGS= GOWORK=off GOTOOLCHAIN=local go "$@"; }

# Every bazel call: no progress spam; key-reading actions may use the cache here so
# that (d) can demand 100% (the default is checked separately at the end).
BZ=(--noshow_progress --//dm:no_remote_keys=false)
BR_PID=""
cleanup() {
	if [ -n "$BR_PID" ]; then kill "$BR_PID" 2>/dev/null; wait "$BR_PID" 2>/dev/null; fi
	bazel shutdown >/dev/null 2>&1
}
trap cleanup EXIT

# ---------------------------------------------------------------- snapshot + setup
if [ -d .bazeldeps ] && [ ! -L .bazeldeps ]; then
	export RULES_DM_BAZELDEPS=$ROOT/.bazeldeps
else
	export RULES_DM_BAZELDEPS=${RULES_DM_BAZELDEPS:-$HOME/.cache/rules_dm/bazeldeps}
fi
snapshot() {
	mkdir -p "$SNAP" &&
		find "$SNAP" -mindepth 1 -maxdepth 1 ! -name .bazeldeps ! -name 'bazel-*' -exec rm -rf {} + &&
		git ls-files -z --cached --others --exclude-standard |
		tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$SNAP"
}
# One run at a time per snapshot (a second run waits here).
mkdir -p "$(dirname "$SNAP")"
exec 9>"$SNAP.lock"
flock 9
check snapshot snapshot
cd "$SNAP" || exit 1
echo "  workspace snapshot: $SNAP"
check setup env SKIP_TEST=1 ./third_party/bazel/setup.sh
if ! [ -x .bazeldeps/go/bin/go ]; then
	skip bazel-all "setup failed"
	exit 0
fi
stamp "setup done"

# ---------------------------------------------------------------- lint
if [ ! -x "$TOOLS/buildifier" ]; then
	(cd /tmp && GOBIN=$TOOLS gocmd install github.com/bazelbuild/buildtools/buildifier@latest) >"$LOGS/buildifier-install.log" 2>&1
fi
if [ -x "$TOOLS/buildifier" ]; then
	mapfile -t STARLARK < <(find . \( -path ./.bazeldeps -o -path './bazel-*' -o -path ./.git \) -prune -o \
		\( -name '*.bzl' -o -name BUILD.bazel -o -name WORKSPACE -o -name WORKSPACE.bzlmod -o -name MODULE.bazel \) \
		-type f -print | LC_ALL=C sort)
	check buildifier "$TOOLS/buildifier" --mode=check --lint=warn "${STARLARK[@]}"
else
	skip buildifier "could not install buildifier (see $LOGS/buildifier-install.log)"
fi

# ---------------------------------------------------------------- bazel-remote
if [ ! -x "$TOOLS/bazel-remote" ]; then
	dir=$(cd /tmp && gocmd mod download -json github.com/buchgr/bazel-remote/v2@v2.6.2 2>"$LOGS/bazel-remote-build.log" |
		sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
	[ -n "$dir" ] && (cd "$dir" && gocmd build -o "$TOOLS/bazel-remote" .) >>"$LOGS/bazel-remote-build.log" 2>&1
fi
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
REMOTE=()
if [ -x "$TOOLS/bazel-remote" ]; then
	HTTP_PORT=$(free_port)
	GRPC_PORT=$(free_port)
	"$TOOLS/bazel-remote" --dir "$WORK/brcache" --max_size 2 \
		--http_address "127.0.0.1:$HTTP_PORT" --grpc_address "127.0.0.1:$GRPC_PORT" \
		>"$LOGS/bazel-remote.log" 2>&1 </dev/null &
	BR_PID=$!
	for _ in $(seq 50); do
		curl -sf "http://127.0.0.1:$HTTP_PORT/status" >/dev/null 2>&1 && break
		sleep 0.2
	done
	if curl -sf "http://127.0.0.1:$HTTP_PORT/status" >/dev/null 2>&1; then
		REMOTE=(--remote_cache="grpc://127.0.0.1:$GRPC_PORT")
		echo "  bazel-remote pid $BR_PID on 127.0.0.1:$HTTP_PORT (http), 127.0.0.1:$GRPC_PORT (grpc)"
	else
		skip bazel-remote-start "bazel-remote did not answer (see $LOGS/bazel-remote.log)"
	fi
else
	skip bazel-remote-build "could not build bazel-remote v2.6.2 (see $LOGS/bazel-remote-build.log)"
fi
stamp "tools ready"

# Helpers ------------------------------------------------------------------------

# spawns LOG [MNEMONIC_REGEX]: "executed hits total" spawn counts from a JSON execution log.
spawns() {
	"$PY" - "$1" "${2:-.}" <<'EOF'
import json, re, sys
data = open(sys.argv[1]).read()
pat = re.compile(sys.argv[2])
dec = json.JSONDecoder()
i, total, hits = 0, 0, 0
mnem = {}
while True:
    while i < len(data) and data[i].isspace():
        i += 1
    if i >= len(data):
        break
    o, i = dec.raw_decode(data, i)
    m = o.get("mnemonic", "")
    if not pat.search(m):
        continue
    total += 1
    if o.get("remoteCacheHit"):
        hits += 1
    else:
        mnem[m] = mnem.get(m, 0) + 1
print(total - hits, hits, total, " ".join("%s=%d" % kv for kv in sorted(mnem.items())))
EOF
}

# artifacts OUT: sha256 of every dm artifact under bazel-bin/examples (not the
# round-trip tests' own configuration files).
# (the opt-in dm_kernel_test outputs are left out: a warm output base may hold
# them from an earlier run, while the cold rebuilds never build manual targets)
artifacts() {
	(cd bazel-bin/examples && find -L . -path '*.runfiles' -prune -o -type f \
		\( -name '*.img' -o -name '*.json' -o -name '*.env' -o -name '*.cpio' \) \
		! -name '*.roundtrip.json' ! -name '*_kernel_test*' -print |
		LC_ALL=C sort | xargs sha256sum) >"$1"
}

# ---------------------------------------------------------------- gazelle
# The BUILD files of the Go packages must be gazelle's own output. When they are
# not, the snapshot's are regenerated so that the checks below still mean something.
start=$(date +%s)
if bazel run "${BZ[@]}" "${REMOTE[@]}" //:gazelle -- -mode=diff >"$LOGS/gazelle.diff" 2>&1; then
	check gazelle-diff true
else
	check gazelle-diff sh -c "cat '$LOGS/gazelle.diff'; echo 'BUILD files are stale: run bazel run //:gazelle'; exit 1"
	bazel run "${BZ[@]}" "${REMOTE[@]}" //:gazelle >"$LOGS/gazelle-fix.log" 2>&1
fi
stamp "gazelle -mode=diff took $(($(date +%s) - start)) s"

# ---------------------------------------------------------------- (a) bazel test //...
start=$(date +%s)
check a-bazel-test bazel test "${BZ[@]}" "${REMOTE[@]}" --execution_log_json_file="$LOGS/exec-a.json" //...
COLD_A=$(($(date +%s) - start))
stamp "(a) bazel test //... took $COLD_A s"
artifacts "$LOGS/sha-a.txt"
check a-artifacts test "$(wc -l <"$LOGS/sha-a.txt")" -ge 30
E2FSCK=$(command -v e2fsck || echo /usr/sbin/e2fsck)
DEBUGFS=$(command -v debugfs || echo /usr/sbin/debugfs)
check a-rootfs-e2fsck "$E2FSCK" -fn bazel-bin/examples/rootfs.img
check a-rootfs-debugfs sh -c "'$DEBUGFS' -R 'cat /etc/hostname' bazel-bin/examples/rootfs.img 2>/dev/null | cmp - examples/rootfs/files/etc/hostname"
if command -v cpio >/dev/null; then
	check a-initramfs-listing sh -c "cpio -it <bazel-bin/examples/initramfs.cpio 2>/dev/null | tr '\n' ' ' | grep -q 'etc/rules_dm/manifest.env etc/rules_dm/manifest.json sbin sbin/apply_manifest.sh sbin/dm-activate'"
fi
check a-dm-activate-static sh -c "file -L bazel-bin/initramfs/cmd/dm-activate/dm-activate_/dm-activate | grep -q 'statically linked'"

# ---------------------------------------------------------------- aead profile
# dm_stack(profile = "aead") runs one dm-compose action; dm-compose by hand (built by
# `go build`, not Bazel) with the same input and flags must give the same four files.
aead_same() { # TARGET FLAGS...
	t=$1
	shift
	rm -rf "$WORK/aead-$t"
	"$BIN/dm-compose" build --stack integrity-then-crypt --profile aead --mount-fstype ext4 \
		--in bazel-bin/examples/rootfs.img --outdir "$WORK/aead-$t" "$@" >"$LOGS/aead-$t.log" 2>&1 || {
		cat "$LOGS/aead-$t.log"
		return 1
	}
	ls "$WORK/aead-$t"
	[ "$(ls "$WORK/aead-$t")" = "$(ls "bazel-bin/examples/$t")" ] || return 1
	for f in data.img integrity.meta.img manifest.env manifest.json; do
		cmp "$WORK/aead-$t/$f" "bazel-bin/examples/$t/$f" || return 1
	done
	sha256sum "bazel-bin/examples/$t/"*
}
A=bazel-bin/examples/integrity_then_crypt_aead
check aead-stack-built test -s "$A/data.img" -a -s "$A/integrity.meta.img" -a -s "$A/manifest.env" -a -s "$A/manifest.json"
check "aead stack = dm-compose by hand (capi:gcm(aes)-random)" aead_same integrity_then_crypt_aead \
	--key-file examples/bazel/keys/gcm.key
check "aead stack = dm-compose by hand (authenc, 512-byte sectors)" aead_same integrity_then_crypt_aead_authenc \
	--key-file examples/bazel/keys/authenc.key --cipher 'capi:authenc(hmac(sha256),xts(aes))-random' \
	--sector-size 512 --name aeadroot
check aead-manifest-profile "$PY" -c '
import json, sys
m = json.load(open("bazel-bin/examples/integrity_then_crypt_aead/manifest.json"))
i, c = m["layers"][0], m["layers"][1]
assert m["profile"] == "aead" and m["stack"] == "integrity-then-crypt", m
assert i["integrity"]["hash"] == "none" and i["integrity"]["tag_size"] == 28, i
assert c["crypt"]["cipher"] == "capi:gcm(aes)-random" and c["crypt"]["integrity"] == "28:aead", c
assert "integrity:28:aead" in c["table"], c
env = open("bazel-bin/examples/integrity_then_crypt_aead/manifest.env").read().splitlines()
assert "DMTOOLS_PROFILE=\x27aead\x27" in env, env
'
check aead-roundtrip-authenticated grep -q 'ok   dmroot: the top device holds the input' \
	bazel-testlogs/examples/integrity_then_crypt_aead_roundtrip_test/test.log

# ---------------------------------------------------------------- arm64 activator
ARM=bazel-bin/initramfs/cmd/dm-activate/dm-activate-linux-arm64_/dm-activate-linux-arm64
AMD=bazel-bin/initramfs/cmd/dm-activate/dm-activate_/dm-activate
check arm64-activator-aarch64 sh -c "file -L '$ARM' | grep -q 'ELF 64-bit LSB executable, ARM aarch64' &&
	{ ! command -v readelf >/dev/null || readelf -h '$ARM' | grep -Eq 'Machine:[[:space:]]+AArch64'; }"
check arm64-activator-static sh -c "file -L '$ARM' | grep -q 'statically linked' &&
	{ ! command -v readelf >/dev/null || ! readelf -lW '$ARM' | grep -Eq 'INTERP|DYNAMIC'; }"
if command -v cpio >/dev/null; then
	check arm64-in-initramfs sh -c "cpio -i --quiet --to-stdout sbin/dm-activate <bazel-bin/examples/initramfs_arm64.cpio | cmp - '$ARM'"
fi
# plans ACTIVATOR...: the dry-run plan of every example stack (stdout and exit status).
plans() {
	for e in bazel-bin/examples/*/manifest.env; do
		echo "== $e"
		env -i MODE=dry-run DATA_DEV=/dev/vda META_DEV=/dev/vdb "$@" "$e"
		echo "exit $?"
	done
}
if command -v qemu-aarch64 >/dev/null; then
	plans "$AMD" >"$LOGS/plans-amd64.txt" 2>/dev/null
	plans "$(command -v qemu-aarch64)" "$ARM" >"$LOGS/plans-arm64.txt" 2>/dev/null
	check arm64-dry-run-same-plan sh -c "test \$(grep -c '^exit 0$' '$LOGS/plans-arm64.txt') -ge 10 &&
		grep -q 'integrity:28:aead' '$LOGS/plans-arm64.txt' && diff '$LOGS/plans-amd64.txt' '$LOGS/plans-arm64.txt'"
else
	skip arm64-dry-run-same-plan "no qemu-aarch64 (apt package qemu-user)"
fi

# ---------------------------------------------------------------- bad input to the rules
# Each bad target fails the build (at loading/analysis, or in its one action with the
# tool's one-line error) and names the problem. One package per case (a loading error
# poisons its package); the packages live in the snapshot only.
bazel_bad() { # NAME REGEX RULE-CALL: building //badinput/NAME fails and says REGEX
	mkdir -p "badinput/$1"
	head -c 1000 /dev/zero >"badinput/$1/odd.img"
	cp examples/bazel/keys/xts.key "badinput/$1/xts.key"
	head -c 7 /dev/zero >"badinput/$1/short.key"
	head -c 8192 /dev/zero >"badinput/$1/z.img"
	printf '%s\n\n%s\n' 'load("//dm:defs.bzl", "dm_crypt_image", "dm_integrity_image", "dm_stack", "dm_verity_image")' "$3" >"badinput/$1/BUILD.bazel"
	bazel build "${BZ[@]}" "${REMOTE[@]}" "//badinput/$1:x" >"$LOGS/bad-$1.log" 2>&1 && return 1
	grep -E -- "$2" "$LOGS/bad-$1.log" | head -2
	grep -Eq -- "$2" "$LOGS/bad-$1.log" && ! grep -q 'goroutine [0-9]' "$LOGS/bad-$1.log"
}
check "bazel bad input: unknown cipher" bazel_bad cipher "instead of 'aes-foo'" \
	'dm_crypt_image(name = "x", src = "z.img", cipher = "aes-foo", key = "xts.key")'
check "bazel bad input: crypt layer without a key" bazel_bad nokey "missing value for mandatory attribute 'key'" \
	'dm_crypt_image(name = "x", src = "z.img", cipher = "aes-xts-plain64")'
check "bazel bad input: key of the wrong length" bazel_bad shortkey 'dm-crypt: .*key' \
	'dm_crypt_image(name = "x", src = "z.img", cipher = "aes-xts-plain64", key = "short.key")'
check "bazel bad input: image not a multiple of the sector size" bazel_bad oddsize 'not a multiple of the sector size' \
	'dm_crypt_image(name = "x", src = "odd.img", cipher = "aes-xts-plain64", key = "xts.key")'
check "bazel bad input: verity block size" bazel_bad block "data_block_size.*instead of '1000'" \
	'dm_verity_image(name = "x", src = "z.img", data_block_size = 1000)'
check "bazel bad input: hmac integrity without a key" bazel_bad hmac 'hmac_key is needed' \
	'dm_integrity_image(name = "x", src = "z.img", hash = "hmac-sha256")'
check "bazel bad input: chain does not match the stack shape" bazel_bad shape 'stack verity-only needs layers' \
	'dm_crypt_image(name = "c", src = "z.img", cipher = "aes-xts-plain64", key = "xts.key")
dm_stack(name = "x", src = ":c", stack = "verity-only")'
check "bazel bad input: aead cipher" bazel_bad aeadcipher "'cipher' attribute.*instead of 'capi:gcm\\(aes\\)'" \
	'dm_stack(name = "x", src = "z.img", stack = "integrity-then-crypt", profile = "aead", key = "xts.key", cipher = "capi:gcm(aes)")'
check "bazel bad input: aead on another stack" bazel_bad aeadstack 'profile aead builds stack integrity-then-crypt' \
	'dm_stack(name = "x", src = "z.img", stack = "crypt-only", profile = "aead", key = "xts.key")'
check "bazel bad input: aead key of the wrong length" bazel_bad aeadkey 'dm-compose: key is 64 bytes; capi:gcm\(aes\)-random takes' \
	'dm_stack(name = "x", src = "z.img", stack = "integrity-then-crypt", profile = "aead", key = "xts.key")'
check "bazel bad input: key on a plain-crypt stack" bazel_bad plainkey 'key is only for profile aead' \
	'dm_crypt_image(name = "c", src = "z.img", cipher = "aes-xts-plain64", key = "xts.key")
dm_stack(name = "x", src = ":c", stack = "crypt-only", key = "xts.key")'
rm -rf badinput


# The rebuilds below build the images only: without the round-trip test drivers
# (and the tools built for them in the target configuration).
IMAGES=(--build_tag_filters=-dm_roundtrip //examples/...)

# ---------------------------------------------------------------- (c) incrementality
start=$(date +%s)
bazel build "${BZ[@]}" "${REMOTE[@]}" --execution_log_json_file="$LOGS/exec-c0.json" "${IMAGES[@]}" >"$LOGS/c0.log" 2>&1
read -r ran _ _ _ < <(spawns "$LOGS/exec-c0.json")
echo "  no-op rebuild: $(grep -E '^INFO: [0-9]+ process' "$LOGS/c0.log" | tail -1) (took $(($(date +%s) - start)) s)"
check c-noop-zero-actions test "$ran" -eq 0

bazel build "${BZ[@]}" "${REMOTE[@]}" --define=dm_example_verity_hash=sha512 \
	--execution_log_json_file="$LOGS/exec-c1.json" "${IMAGES[@]}" >"$LOGS/c1.log" 2>&1
read -r ran _ _ which < <(spawns "$LOGS/exec-c1.json")
echo "  after changing vtc_verity's hash: $(grep -E '^INFO: [0-9]+ process' "$LOGS/c1.log" | tail -1); ran: $which"
# Only the changed layer (DmVerity + DmVerityAppend) and what consumes it: its
# stack's manifest and the initramfs that packs that manifest.
check c-top-layer-only test "$which" = "DmCpio=1 DmManifest=1 DmVerity=1 DmVerityAppend=1"
bazel build "${BZ[@]}" "${REMOTE[@]}" "${IMAGES[@]}" >"$LOGS/c2.log" 2>&1
artifacts "$LOGS/sha-c2.txt"
check c-back-to-default cmp "$LOGS/sha-a.txt" "$LOGS/sha-c2.txt"
stamp "(c) done"

# ---------------------------------------------------------------- (b) clean rebuild
if [ -n "${DMTEST_BAZEL_NO_EXPUNGE:-}" ]; then
	skip b-reproducible "DMTEST_BAZEL_NO_EXPUNGE is set"
	skip d-remote-cache "DMTEST_BAZEL_NO_EXPUNGE is set"
else
	bazel clean --expunge >/dev/null 2>&1
	start=$(date +%s)
	# No cache is read (--noremote_accept_cached), but every result is uploaded: (a)
	# may have executed nothing (a warm output base from an earlier run uploads
	# nothing), so this cold build is what fills the cache that (d) must hit.
	check b-build-expunged bazel build "${BZ[@]}" "${REMOTE[@]}" --noremote_accept_cached "${IMAGES[@]}"
	COLD_B=$(($(date +%s) - start))
	stamp "(b) cold build of the example images (no cache) took $COLD_B s"
	artifacts "$LOGS/sha-b.txt"
	check b-reproducible cmp "$LOGS/sha-a.txt" "$LOGS/sha-b.txt"
	[ -s "$LOGS/sha-b.txt" ] && sed 's/^/    /' "$LOGS/sha-b.txt" | grep -E 'data.img|manifest.json|initramfs' | head -12

	# ------------------------------------------------------------ (d) remote cache reuse
	if [ ${#REMOTE[@]} -gt 0 ]; then
		bazel clean --expunge >/dev/null 2>&1
		start=$(date +%s)
		check d-build-from-cache bazel build "${BZ[@]}" "${REMOTE[@]}" \
			--execution_log_json_file="$LOGS/exec-d.json" "${IMAGES[@]}"
		stamp "(d) build after expunge with the remote cache took $(($(date +%s) - start)) s"
		read -r _ hits total _ < <(spawns "$LOGS/exec-d.json")
		read -r dmiss dhits dtotal dmissed < <(spawns "$LOGS/exec-d.json" '^Dm')
		echo "  remote cache: $hits/$total spawns hit ($((100 * hits / (total > 0 ? total : 1)))%); dm actions: $dhits/$dtotal ${dmissed:+(missed: $dmissed)}"
		curl -s "http://127.0.0.1:$HTTP_PORT/status" | tr -d '\n' | sed 's/^/  bazel-remote status: /'
		echo
		check d-dm-actions-all-hit test "$dtotal" -gt 0 -a "$dmiss" -eq 0
		artifacts "$LOGS/sha-d.txt"
		check d-same-bytes cmp "$LOGS/sha-a.txt" "$LOGS/sha-d.txt"
	else
		skip d-remote-cache "no bazel-remote"
	fi
fi

# ---------------------------------------------------------------- keys stay off remote
bazel aquery "${BZ[@]:0:1}" 'mnemonic("DmCrypt", //examples:rootfs_crypt)' >"$LOGS/aquery-default.txt" 2>&1
check keys-no-remote-by-default grep -q 'no-remote' "$LOGS/aquery-default.txt"
bazel aquery "${BZ[@]}" 'mnemonic("DmCrypt", //examples:rootfs_crypt)' >"$LOGS/aquery-false.txt" 2>&1
check keys-remote-when-allowed sh -c "grep -q 'Mnemonic: DmCrypt' '$LOGS/aquery-false.txt' && ! grep -q 'no-remote' '$LOGS/aquery-false.txt'"
check keys-not-on-argv sh -c "! grep -E -- '--key-hex' '$LOGS/aquery-false.txt'"

# ---------------------------------------------------------------- dm_kernel_test (opt-in)
# One real-kernel activation through the Bazel rule (//examples:verity_then_crypt_kernel_test,
# tagged manual) with the kernel + initramfs that tests/e2e/dmtest.sh build cached (never
# built or downloaded here). The ELF vmlinux boots through qboot in ~6 s under TCG.
KDIR=""
for d in "${DMTEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rules_dm-e2e}"/*/; do
	[ -f "$d/stamp" ] && [ -f "$d/initrd.gz" ] && [ -f "$d/vmlinuz" ] && KDIR=${d%/}
done
if ! command -v qemu-system-x86_64 >/dev/null; then
	skip kernel-test "no qemu-system-x86_64"
elif [ -z "$KDIR" ]; then
	skip kernel-test "no e2e kernel cache (run tests/e2e/dmtest.sh build)"
else
	KT=(--test_env=DM_KERNEL="$KDIR/vmlinuz" --test_env=DM_INITRAMFS="$KDIR/initrd.gz")
	if [ -f "$KDIR/vmlinux" ] && [ -f /usr/share/qemu/qboot.rom ]; then
		KT=(--test_env=DM_KERNEL="$KDIR/vmlinux" --test_env=DM_INITRAMFS="$KDIR/initrd.gz"
			"--test_env=DM_QEMU_ARGS=-bios /usr/share/qemu/qboot.rom")
	fi
	start=$(date +%s)
	check kernel-test-activates bazel test "${BZ[@]}" --nocache_test_results --test_output=errors "${KT[@]}" \
		//examples:verity_then_crypt_kernel_test //examples:integrity_then_crypt_aead_kernel_test
	stamp "dm_kernel_test (2 targets) took $(($(date +%s) - start)) s"
	check kernel-test-pass-marker grep -q '^DM-KERNEL-TEST: PASS' bazel-testlogs/examples/verity_then_crypt_kernel_test/test.log
	check kernel-test-aead-pass-marker grep -q '^DM-KERNEL-TEST: PASS' bazel-testlogs/examples/integrity_then_crypt_aead_kernel_test/test.log
	# snapshot=on: the guest wrote nothing to the build output.
	want=$(sed -n "s/^DMTOOLS_DATA_SHA256='\(.*\)'$/\1/p" bazel-bin/examples/verity_then_crypt/manifest.env)
	check kernel-test-image-unchanged sh -c "sha256sum -b <bazel-bin/examples/verity_then_crypt/data.img | grep -q '^$want '"
fi

if [ -n "$BR_PID" ]; then
	kill "$BR_PID"
	wait "$BR_PID" 2>/dev/null
	BR_PID=""
fi
stamp "70-bazel total (cold (a) $COLD_A s${COLD_B:+, cold (b) $COLD_B s})"

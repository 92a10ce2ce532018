#!/usr/bin/env bash
# dm-activate (initramfs/cmd/dm-activate) on the host: a static CGO_ENABLED=0
# build; dry-run plans of the sample manifests (every stack, JSON and env,
# bootstrap and sealed x every fail action) compared line by line with the
# independent POSIX activator initramfs/apply_manifest.sh (under dash and
# busybox sh); hostile manifest.env files rejected with one line and nothing
# run; keys never printed; the exit codes of the contract. The host kernel
# has no device-mapper: real activation is tested in QEMU by tests/e2e; with
# DMTEST_ACTIVATOR_QEMU=1 this suite also boots one guest of its own
# (tests/e2e/dmtest.sh) that activates all seven stacks built by dm-compose
# (plus verity with its tree on META_DEV) with dm-activate, and checks mount,
# file content, top-device sha256, idempotent re-run, refusal of a different
# table, cleanup after a tampered verity read check and a wrong key, the
# replacement of a half-made mapping, and a signed verity image (signature
# loaded as a user key, refused by the kernel as untrusted; garbage refused as
# not PKCS#7); images must stay byte-identical.
set -u
. "$ROOT/tests/lib.sh"

cd "$WORK" || exit 1
SAMPLES="$ROOT/initramfs/cmd/dm-activate/testdata"
SCRIPT="$ROOT/initramfs/apply_manifest.sh"
DA="$WORK/dm-activate"

# ---- static build
check "static build (CGO_ENABLED=0)" env CGO_ENABLED=0 GOTOOLCHAIN=local \
	go build -C "$ROOT" -trimpath -o "$DA" ./initramfs/cmd/dm-activate
is_static() {
	file "$1" | grep -q 'statically linked' || { file "$1"; return 1; }
	if command -v ldd >/dev/null; then
		out=$(ldd "$1" 2>&1)
		case $out in *"not a dynamic executable"* | *"statically linked"*) ;; *) echo "ldd: $out"; return 1 ;; esac
	fi
}
check "binary is static (file, ldd)" is_static "$DA"
check "binary has no cgo (go version -m)" sh -c "go version -m '$DA' | grep -q 'CGO_ENABLED=0'"

KEY=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
IKEY=ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100
KEYS="$KEY$KEY" # 128 bytes of hex: sliced to each manifest's crypt key size
# key_for MANIFEST_ENV: a hex crypt key of the size the manifest expects (64 bytes when none)
key_for() {
	ks=$(sed -n "s/^DMTOOLS_L[0-7]_CRYPT_KEY_SIZE='\([0-9]*\)'\$/\1/p" "$1" | head -n 1)
	printf '%s' "${KEYS:0:$((2 * ${ks:-64}))}"
}

# ---- dry-run: same plan as apply_manifest.sh
shells=""
for s in dash "busybox sh"; do
	set -- $s
	command -v "$1" >/dev/null && shells="$shells${shells:+,}$s"
done
[ -n "$shells" ] || shells="sh"

plan_go() { # plan_go MANIFEST ENV...
	m=$1
	shift
	env -i PATH="$PATH" "$@" "$DA" "$m"
}
plan_sh() { # plan_sh SHELL MANIFEST_ENV ENV...
	sh_=$1 m=$2
	shift 2
	# shellcheck disable=SC2086
	env -i PATH="$PATH" "$@" $sh_ "$SCRIPT" "$m"
}
same_plan() { # same_plan SAMPLE FORMAT SHELL ENV...: dm-activate's plan == the script's
	name=$1 fmt=$2 sh_=$3
	shift 3
	plan_sh "$sh_" "$SAMPLES/$name/manifest.env" "$@" >sh.out 2>sh.err || { cat sh.err; return 1; }
	same_as_sh "$name" "$fmt" "$@"
}
same_as_sh() { # same_as_sh SAMPLE FORMAT ENV...: compare with the last sh.out
	name=$1 fmt=$2
	shift 2
	plan_go "$SAMPLES/$name/manifest.$fmt" "$@" >go.out 2>go.err || { cat go.err; return 1; }
	head -n 1 go.out | grep -q '^# dm-activate plan (dry-run, nothing is run)' || { cat go.out; return 1; }
	if ! diff <(tail -n +2 sh.out) <(tail -n +2 go.out); then return 1; fi
	if grep -q "${KEY:0:32}\|$IKEY" go.out go.err; then echo "a key was printed"; return 1; fi
}
if [ -f "$SCRIPT" ]; then
	n=0
	bad=""
	IFS=, read -r -a shell_list <<<"$shells"
	nsamples=0
	for d in "$SAMPLES"/*/; do
		name=$(basename "$d")
		nsamples=$((nsamples + 1))
		for pa in bootstrap:panic sealed:panic sealed:reboot sealed:shell sealed:exit; do
			for sh_ in "${shell_list[@]}"; do
				# every shell for sealed:panic, the first one for the other cases
				[ "$sh_" = "${shell_list[0]}" ] || [ "$pa" = sealed:panic ] || continue
				set -- DATA_DEV=/dev/vda META_DEV=/dev/vdb CRYPT_KEY_HEX="$(key_for "$d/manifest.env")" INTEGRITY_KEY_HEX=$IKEY \
					DMTOOLS_PHASE="${pa%:*}" DMTOOLS_FAIL_ACTION="${pa#*:}"
				if ! plan_sh "$sh_" "$SAMPLES/$name/manifest.env" "$@" >sh.out 2>same.log; then
					bad="$bad $name/$pa/$sh_"
					sed 's/^/    | /' same.log | head -n 5
					continue
				fi
				for fmt in json env; do
					n=$((n + 1))
					if ! same_as_sh "$name" "$fmt" "$@" >same.log 2>&1; then
						bad="$bad $name/$fmt/$pa/$sh_"
						sed 's/^/    | /' same.log | head -n 20
					fi
				done
			done
		done
	done
	check "dry-run plan == apply_manifest.sh plan ($n cases: $nsamples samples x json,env x 5 phase/actions; shells $shells)" test -z "$bad"
	[ -z "$bad" ] || echo "    differing:$bad"
	# Options that change the plan: read check, read-only, mount command, env mount overrides, no devices.
	check "dry-run == script: DMTOOLS_SEALED_READCHECK, DMTOOLS_READONLY, mount overrides" \
		same_plan crypt-then-integrity env "${shell_list[0]}" DATA_DEV=/dev/vda META_DEV=/dev/vdb \
		DMTOOLS_PHASE=sealed DMTOOLS_SEALED_READCHECK=1 DMTOOLS_READONLY=1 \
		DMTOOLS_NEWROOT=/sysroot DMTOOLS_MOUNT_FSTYPE=xfs DMTOOLS_MOUNT_OPTS=ro,nodev
	check "dry-run == script: DMTOOLS_MOUNT_CMD in bootstrap" \
		same_plan verity-then-crypt env "${shell_list[0]}" DATA_DEV=/dev/vda "DMTOOLS_MOUNT_CMD=mount -r \$DMTOOLS_TOP_DEV /x"
	check "dry-run == script: no DATA_DEV/META_DEV/keys (placeholders)" \
		same_plan integrity-then-crypt env "${shell_list[0]}"
else
	skip "dry-run == apply_manifest.sh" "initramfs/apply_manifest.sh not present"
fi

# ---- manifests as dm-compose writes them: aead (gcm, authenc), hmac integrity, signed verity
# with FEC; the same plan from both activators (json and env, every phase/action)
compose_all() {
	mkdir -p "$WORK/composed" && cd "$WORK/composed" || return 1
	head -c 2097152 /dev/zero >fs.img && mkfs.ext4 -q -F -b 4096 fs.img >/dev/null 2>&1 || return 1
	for n in 32 64 96; do printf '%s' "${KEYS:0:$((2 * n))}" | xxd -r -p >k$n && chmod 600 k$n || return 1; done
	printf '%s' "$IKEY" | xxd -r -p >ik && chmod 600 ik || return 1
	DC="$BIN/dm-compose"
	"$DC" build --in fs.img --outdir aead-gcm --stack integrity-then-crypt --profile aead --key-file k32 &&
		"$DC" build --in fs.img --outdir aead-authenc --stack integrity-then-crypt --profile aead \
			--cipher 'capi:authenc(hmac(sha256),xts(aes))-random' --key-file k96 &&
		"$DC" build --in fs.img --outdir hmac-itc --stack integrity-then-crypt --integrity-hash hmac-sha256 \
			--integrity-key-file ik --key-file k64 &&
		"$DC" build --in fs.img --outdir hmac-cti --stack crypt-then-integrity --integrity-hash hmac-sha256 \
			--integrity-key-file ik --key-file k64 || return 1
	if openssl req -x509 -newkey rsa:2048 -nodes -keyout sign.key -out sign.crt -days 3650 -subj "/CN=rules_dm 16" >/dev/null 2>&1; then
		"$DC" build --in fs.img --outdir signed --stack verity-then-crypt --key-file k64 --verity-fec-roots 2 \
			--verity-sign-key sign.key --verity-sign-cert sign.crt || return 1
	fi
}
if [ -f "$SCRIPT" ] && command -v mkfs.ext4 >/dev/null && command -v xxd >/dev/null; then
	check "dm-compose builds the aead, hmac and signed samples" compose_all
	cd "$WORK" || exit 1
	composed_same() {
		bad=""
		n=0
		for d in "$WORK"/composed/*/; do
			name=$(basename "$d")
			for pa in bootstrap:panic sealed:panic sealed:reboot sealed:shell sealed:exit; do
				set -- DATA_DEV=/dev/vda META_DEV=/dev/vdb CRYPT_KEY_HEX="$(key_for "$d/manifest.env")" INTEGRITY_KEY_HEX=$IKEY \
					DMTOOLS_PHASE="${pa%:*}" DMTOOLS_FAIL_ACTION="${pa#*:}"
				for fmt in json env; do
					n=$((n + 1))
					SAMPLES="$WORK/composed" same_plan "$name" "$fmt" "${shell_list[0]}" "$@" >same.log 2>&1 ||
						{ bad="$bad $name/$fmt/$pa" && sed 's/^/  | /' same.log | head -n 20; }
				done
			done
		done
		echo "$n cases: $(cd "$WORK/composed" && echo */)"
		[ -z "$bad" ] || { echo "differing:$bad"; return 1; }
	}
	check "dry-run == apply_manifest.sh on dm-compose output (aead gcm/authenc, hmac, signed verity+FEC)" composed_same
	if [ -d "$WORK/composed/signed" ]; then
		signed_order() {
			"$DA" "$WORK/composed/signed/manifest.json" >so.out 2>&1 || { cat so.out; return 1; }
			cat so.out
			u=$(grep -n "^keyctl padd user rules_dm:dmroot-verity:roothash-sig @u < $WORK/composed/signed/verity.roothash.p7s\$" so.out | cut -d: -f1)
			v=$(grep -n "^dmsetup create --readonly dmroot-verity <<< '.* use_fec_from_device <DATA_DEV> fec_roots 2 .* root_hash_sig_key_desc rules_dm:dmroot-verity:roothash-sig'\$" so.out | cut -d: -f1)
			l=$(grep -n '^keyctl padd logon rules_dm:dmroot @u' so.out | cut -d: -f1)
			[ -n "$u" ] && [ -n "$v" ] && [ -n "$l" ] && [ "$u" -lt "$v" ] && [ "$v" -lt "$l" ]
		}
		check "signed (dm-compose): user key before the verity table (FEC + root_hash_sig_key_desc), then the crypt key" signed_order
	else
		skip "signed (dm-compose) plan" "openssl req failed"
	fi
else
	skip "dry-run == apply_manifest.sh on dm-compose output" "needs apply_manifest.sh, mkfs.ext4 and xxd"
fi

# ---- dry-run content, checked directly
plan_has() { # plan_has MANIFEST PATTERN ENV...
	m=$1 pat=$2
	shift 2
	plan_go "$m" "$@" >p.out 2>p.err || { cat p.err; return 1; }
	grep -Eq -- "$pat" p.out || { cat p.out; return 1; }
}
plan_lacks() {
	m=$1 pat=$2
	shift 2
	plan_go "$m" "$@" >p.out 2>p.err || { cat p.err; return 1; }
	! grep -Eq -- "$pat" p.out || { cat p.out; return 1; }
}
V="$SAMPLES/verity-then-crypt/manifest.json"
check "sealed+panic: verity gets '1 panic_on_corruption', read-only" \
	plan_has "$V" "^dmsetup create --readonly dmroot-verity <<< '0 16384 verity 1 /dev/vda /dev/vda .* 1 panic_on_corruption'$" DATA_DEV=/dev/vda DMTOOLS_PHASE=sealed
check "sealed+reboot: restart_on_corruption" \
	plan_has "$V" " 1 restart_on_corruption'$" DATA_DEV=/dev/vda DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=reboot
check "sealed+exit: no corruption option (plain EIO)" \
	plan_lacks "$V" "_on_corruption" DATA_DEV=/dev/vda DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=exit
check "bootstrap: no corruption option, no mount" \
	plan_lacks "$V" "_on_corruption|^mount" DATA_DEV=/dev/vda
check "crypt over verity is read-only, key by keyring reference" \
	plan_has "$V" "^dmsetup create --readonly dmroot <<< '0 16384 crypt aes-xts-plain64 :64:logon:rules_dm:dmroot 0 /dev/mapper/dmroot-verity 0 1 sector_size:4096'$" DATA_DEV=/dev/vda
check "sealed mount: ext4 ro,errors=panic on /newroot" \
	plan_has "$V" "^mount -t ext4 -o ro,errors=panic /dev/mapper/dmroot /newroot$" DATA_DEV=/dev/vda DMTOOLS_PHASE=sealed
check "hmac integrity key shown as <key>" \
	plan_has "$SAMPLES/integrity-hmac/manifest.env" "internal_hash:hmac\\(sha256\\):<key>'$" DATA_DEV=/dev/vda META_DEV=/dev/vdb INTEGRITY_KEY_HEX=$IKEY
goldens_stable() { # as the unit tests run: from initramfs/cmd/dm-activate, paths testdata/<sample>/
	(
		cd "$SAMPLES/.." || exit 1
		for d in testdata/*/; do
			d=${d%/}
			env -i DATA_DEV=/dev/vda META_DEV=/dev/vdb CRYPT_KEY_HEX="$(key_for "$d/manifest.env")" INTEGRITY_KEY_HEX=$IKEY \
				DMTOOLS_PHASE=sealed "$DA" "$d/manifest.env" | cmp - "$d/dryrun-sealed.txt" || exit 1
		done
	)
}
check "stdout plan is stable (goldens)" goldens_stable
check "signed verity: the signature is loaded as a user key before its table" \
	plan_has "$SAMPLES/verity-sig/manifest.json" "^keyctl padd user rules_dm:dmroot-verity:roothash-sig @u < $SAMPLES/verity-sig/verity.roothash.p7s$" DATA_DEV=/dev/vda


# ---- hostile manifest.env: rejected with one line, nothing run
hostile() { # hostile NAME LINE
	{
		echo "# rules_dm manifest.env"
		echo "DMTOOLS_SCHEMA_VERSION='1'"
		printf '%s\n' "$2"
		echo "DMTOOLS_STACK='verity-only'"
	} >"h-$1.env"
}
hostile subst "DMTOOLS_NAME='\$(touch $WORK/pwned)'"
hostile backtick "DMTOOLS_NAME='\`touch $WORK/pwned\`'"
hostile semicolon "DMTOOLS_NAME='x';touch $WORK/pwned"
hostile unknown "DMTOOLS_PWNED='x'"
hostile export "export DMTOOLS_NAME='x'"
hostile unquoted "DMTOOLS_NAME=x"
hostile dollar "DMTOOLS_NAME='\$HOME'"
hostile backslash "DMTOOLS_NAME='a\\b'"
printf "DMTOOLS_SCHEMA_VERSION='1'\nDMTOOLS_NAME='a\nb'\n" >h-newline.env
printf "DMTOOLS_SCHEMA_VERSION='1'\r\n" >h-cr.env
# fails_closed PATTERN CMD...: a sealed apply rejected before anything ran takes the fail
# action (here exit): exit 1, the error line matching PATTERN, then the fail-action line.
fails_closed() {
	pat=$1
	shift
	"$@" >fc.out 2>fc.err
	rc=$?
	cat fc.err
	[ "$rc" = 1 ] && [ "$(wc -l <fc.err)" = 2 ] && head -n 1 fc.err | grep -Eq -- "$pat" &&
		[ "$(sed -n 2p fc.err)" = "dm-activate: sealed boot failed; fail action: exit" ] && [ ! -s fc.out ]
}
for f in h-*.env; do
	n=${f#h-}
	n=${n%.env}
	expect_fail "hostile manifest.env ($n), dry-run" "^dm-activate: .*line [0-9]+: " env -i DATA_DEV=/dev/vda "$DA" "$f"
	expect_fail "hostile manifest.env ($n), bootstrap apply: exit 1, no fail action" "^dm-activate: .*line [0-9]+: " \
		env -i MODE=apply DATA_DEV=/dev/vda DMTOOLS_FAIL_ACTION=exit "$DA" "$f"
	check "hostile manifest.env ($n), sealed apply: rejected before anything runs, fail action (fail-closed)" \
		fails_closed "^dm-activate: .*line [0-9]+: " env -i MODE=apply DATA_DEV=/dev/vda DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=exit "$DA" "$f"
done
check "hostile manifests ran nothing" test ! -e "$WORK/pwned"
cp "$SAMPLES/verity-only/manifest.env" trailing.env
echo "DMTOOLS_L1_NAME='x'" >>trailing.env
expect_fail "manifest.env key of a layer beyond DMTOOLS_LAYERS" "DMTOOLS_L1_NAME" env -i DATA_DEV=/dev/vda "$DA" trailing.env
sed 's/"sectors": 16384/"sectors": 16385/' "$SAMPLES/verity-only/manifest.json" >bad.json
expect_fail "manifest.json that contradicts its table" "manifest" env -i DATA_DEV=/dev/vda "$DA" bad.json
printf '{"schema_version": 1, "evil": true}' >unknown.json
expect_fail "manifest.json with an unknown field" "unknown field" env -i DATA_DEV=/dev/vda "$DA" unknown.json

# ---- environment and usage
M="$SAMPLES/crypt-only/manifest.env"
exit_is() { # exit_is CODE CMD...
	want=$1
	shift
	"$@" >/dev/null 2>&1
	rc=$?
	[ "$rc" = "$want" ] || { echo "exit $rc, want $want"; return 1; }
}
check "no argument: exit 2" exit_is 2 env -i "$DA"
check "two arguments: exit 2" exit_is 2 env -i "$DA" "$M" "$M"
check "MODE=bogus: exit 2" exit_is 2 env -i MODE=bogus "$DA" "$M"
check "DMTOOLS_PHASE=bogus: exit 2" exit_is 2 env -i DMTOOLS_PHASE=bogus "$DA" "$M"
check "DMTOOLS_FAIL_ACTION=halt: exit 2" exit_is 2 env -i DMTOOLS_FAIL_ACTION=halt "$DA" "$M"
check "--help: exit 0" exit_is 0 env -i "$DA" --help
expect_fail "missing manifest" "no such file" env -i "$DA" "$WORK/none.env"
expect_fail "apply without DATA_DEV" "DATA_DEV is not set" env -i MODE=apply CRYPT_KEY_HEX=$KEY "$DA" "$M"
expect_fail "apply without a key" "needs CRYPT_KEY_HEX or CRYPT_KEY_BIN" env -i MODE=apply DATA_DEV=/dev/vda "$DA" "$M"
expect_fail "key of the wrong size (and not printed)" "crypt key is 32 bytes, layer 0 expects 64$" env -i DATA_DEV=/dev/vda CRYPT_KEY_HEX=${KEY:0:64} "$DA" "$M"
check "error does not print the key" sh -c "! env -i DATA_DEV=/dev/vda CRYPT_KEY_HEX=${KEY:0:64} '$DA' '$M' 2>&1 | grep -q ${KEY:0:64}"
expect_fail "both CRYPT_KEY_HEX and CRYPT_KEY_BIN" "not both" env -i DATA_DEV=/dev/vda CRYPT_KEY_HEX=$KEY CRYPT_KEY_BIN=/dev/null "$DA" "$M"
expect_fail "DATA_DEV with a blank (would add table words)" "DATA_DEV must be an absolute device path" env -i "DATA_DEV=/dev/vda 0 /dev/vdb" "$DA" "$M"
head -c 64 /dev/zero >key.bin
chmod 600 key.bin
check "CRYPT_KEY_BIN of the right size: dry-run ok" exit_is 0 env -i DATA_DEV=/dev/vda CRYPT_KEY_BIN=key.bin "$DA" "$M"
expect_fail "apply: DATA_DEV not a block device" "not a block device" env -i MODE=apply DATA_DEV=/dev/null CRYPT_KEY_BIN=key.bin "$DA" "$M"
# Sealed apply: a bad environment fails closed too (the lead's rule); dry-run and bootstrap exit 1.
check "sealed apply without DATA_DEV: fail action" fails_closed "DATA_DEV is not set" \
	env -i MODE=apply DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=exit CRYPT_KEY_HEX=$KEY "$DA" "$M"
check "sealed apply, key of the wrong size: fail action" fails_closed "crypt key is 32 bytes, layer 0 expects 64$" \
	env -i MODE=apply DATA_DEV=/dev/vda DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=exit CRYPT_KEY_HEX=${KEY:0:64} "$DA" "$M"
check "sealed apply, DATA_DEV not a block device: fail action" fails_closed "not a block device" \
	env -i MODE=apply DATA_DEV=/dev/null DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=exit CRYPT_KEY_BIN=key.bin "$DA" "$M"
check "sealed apply, missing manifest: fail action" fails_closed "no such file" \
	env -i MODE=apply DATA_DEV=/dev/vda DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=exit "$DA" "$WORK/none.env"
blk=""
for b in /dev/loop0 /dev/vda /dev/sda /dev/nvme0n1 /dev/zram0; do [ -b "$b" ] && blk=$b && break; done
cp "$SAMPLES/verity-sig/manifest.env" nosig.env
if [ -n "$blk" ]; then
	# (rejected before the kernel is asked anything: DATA_DEV is only stat'ed)
	check "sealed apply, root hash signature missing: fail action" fails_closed "layer 0: cannot read the root hash signature ./verity.roothash.p7s" \
		env -i MODE=apply DATA_DEV=$blk DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=exit CRYPT_KEY_BIN=key.bin "$DA" nosig.env
	expect_fail "bootstrap apply, root hash signature missing: exit 1" "cannot read the root hash signature" \
		env -i MODE=apply DATA_DEV=$blk CRYPT_KEY_BIN=key.bin "$DA" nosig.env
else
	skip "apply, root hash signature missing" "no block device to name as DATA_DEV"
fi
check "sealed apply, bad DMTOOLS_FAIL_ACTION: usage (exit 2), no fail action" exit_is 2 \
	env -i MODE=apply DATA_DEV=/dev/vda DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=halt "$DA" "$M"
# FAIL_ACTION=shell: exec /bin/sh (commands from stdin), without the key variables.
shell_no_keys() {
	out=$(echo 'echo IN-RESCUE-SHELL; env; exit 7' | env -i PATH="$PATH" MODE=apply DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=shell \
		CRYPT_KEY_HEX=$KEY INTEGRITY_KEY_BIN=/x "$DA" "$M" 2>&1)
	rc=$?
	echo "$out"
	[ "$rc" = 7 ] && echo "$out" | grep -q '^IN-RESCUE-SHELL$' && echo "$out" | grep -q '^MODE=apply$' &&
		! echo "$out" | grep -q "CRYPT_KEY\|INTEGRITY_KEY\|${KEY:0:16}"
}
check "sealed apply, bad environment, FAIL_ACTION=shell: /bin/sh without the key variables" shell_no_keys

# ---- apply on this host: no device-mapper, so the activation itself fails
if [ -e /sys/class/misc/device-mapper ]; then
	skip "apply without device-mapper" "this host has device-mapper (the QEMU e2e suite covers apply)"
elif [ -z "$blk" ]; then
	skip "apply without device-mapper" "no block device to name as DATA_DEV"
else
	apply_fails() { # bootstrap: exit 1 and a clear message; sealed+exit: fail action exit 1
		env -i MODE=apply DATA_DEV=$blk DMTOOLS_PHASE="$1" DMTOOLS_FAIL_ACTION=exit "$DA" "$SAMPLES/verity-only/manifest.env" >a.out 2>a.err
		rc=$?
		cat a.err
		[ "$rc" = 1 ] && grep -q '/dev/mapper/control' a.err || return 1
		if [ "$1" = sealed ]; then grep -q 'fail action: exit' a.err; else ! grep -q 'fail action' a.err; fi
	}
	check "apply, bootstrap, no device-mapper: exit 1, nothing created" apply_fails bootstrap
	check "apply, sealed, FAIL_ACTION=exit, no device-mapper: fail action exit 1" apply_fails sealed
fi
# ---- optional: one QEMU guest, every stack, real kernel (DMTEST_ACTIVATOR_QEMU=1)
qemu_smoke() {
	Q="$WORK/qemu"
	rm -rf "$Q" && mkdir -p "$Q/fs" "$Q/files" || return 1
	cd "$Q" || return 1
	echo "hello from dm-activate" >fs/hello.txt
	head -c 300000 /dev/urandom >fs/blob.bin
	mkfs.ext4 -q -b 4096 -d fs fs.img 8M || return 1
	head -c 64 /dev/urandom >files/key.bin
	imgs=()
	letters=(a b c d e f g h i j k l m n o p)
	i=0
	: >files/disks.txt
	for s in crypt-only integrity-only integrity-then-crypt crypt-then-integrity verity-only \
		verity-then-crypt crypt-then-verity verity-meta; do
		st=$s opt=()
		[ "$s" = verity-meta ] && st=verity-only opt=(--hash-on-meta)
		k=()
		case $st in *crypt*) k=(--key-file files/key.bin) ;; esac
		"$BIN/dm-compose" build --in fs.img --outdir "out-$s" --stack "$st" "${k[@]}" "${opt[@]}" >/dev/null || return 1
		cp "out-$s/manifest.env" "files/$s.env" && cp "out-$s/manifest.json" "files/$s.json" || return 1
		d=vd${letters[$i]} m=-
		imgs+=("out-$s/data.img")
		i=$((i + 1))
		for mf in "out-$s/integrity.meta.img" "out-$s/verity.hash.img"; do
			[ -f "$mf" ] && { m=vd${letters[$i]}; imgs+=("$mf"); i=$((i + 1)); }
		done
		echo "$s $d $m" >>files/disks.txt
	done
	cp out-verity-only/data.img tampered.img
	# flip one byte of data block 1000
	printf '\xa5' | dd of=tampered.img bs=1 seek=$((1000 * 4096 + 123)) conv=notrunc status=none
	imgs+=(tampered.img)
	echo "tampered vd${letters[$i]} -" >>files/disks.txt
	i=$((i + 1))
	# signed verity: the guest kernel trusts only its builtin keys, so the table is refused
	# (ENOKEY) after dm-activate loaded the signature; a garbage signature fails to parse
	nsig=0
	if openssl req -x509 -newkey rsa:2048 -nodes -keyout sign.key -out sign.crt -days 3650 -subj "/CN=rules_dm 16 qemu" >/dev/null 2>&1 &&
		"$BIN/dm-compose" build --in fs.img --outdir out-signed --stack verity-only \
			--verity-sign-key sign.key --verity-sign-cert sign.crt >/dev/null; then
		mkdir -p files/signed files/garbage || return 1
		cp out-signed/manifest.env out-signed/verity.roothash.p7s files/signed/ &&
			cp out-signed/manifest.json files/garbage/ || return 1
		head -c 300 /dev/zero | tr '\0' 'x' >files/garbage/verity.roothash.p7s
		imgs+=(out-signed/data.img)
		echo "signed vd${letters[$i]} -" >>files/disks.txt
		nsig=3
	else
		echo "note: no signed verity case (openssl req or dm-compose failed)"
	fi
	sha256sum fs.img | cut -c1-64 >files/fs.sha256
	cp fs/hello.txt files/hello.txt
	cp "$DA" files/dm-activate
	sha256sum "${imgs[@]}" >before.sha
	cat >guest.sh <<'GUEST'
F=$DMTEST_FILES
DA=$F/dm-activate
rc=0
ok() { echo "GUEST-PASS $*"; }
bad() { echo "GUEST-FAIL $*"; rc=1; }
want_hello=$(cat $F/hello.txt)
want_sha=$(cat $F/fs.sha256)
n=0
while read stack data meta; do
	case $stack in tampered | signed) continue ;; esac
	n=$((n + 1))
	fmt=env
	[ $((n % 2)) = 0 ] && fmt=json
	M=$F/$stack.$fmt
	echo "=== $stack ($fmt) data=$data meta=$meta"
	if env MODE=apply DATA_DEV=/dev/$data META_DEV=/dev/$meta CRYPT_KEY_BIN=$F/key.bin DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=exit $DA $M; then
		ok "$stack: sealed apply"
	else
		bad "$stack: sealed apply"
		dmsetup ls
		continue
	fi
	dmsetup table
	[ "$(cat /newroot/hello.txt 2>&1)" = "$want_hello" ] && ok "$stack: file read" || bad "$stack: file read"
	umount /newroot
	[ "$(sha256sum /dev/mapper/dmroot | cut -c1-64)" = "$want_sha" ] && ok "$stack: top device sha256" || bad "$stack: top sha256"
	keyctl show @u 2>&1 | grep -q rules_dm && bad "$stack: key left in @u" || ok "$stack: no key left in @u"
	out=$(env MODE=apply DATA_DEV=/dev/$data META_DEV=/dev/$meta CRYPT_KEY_BIN=$F/key.bin DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=exit DMTOOLS_MOUNT_CMD=true $DA $M 2>&1)
	r=$?
	echo "$out"
	[ $r = 0 ] && echo "$out" | grep -q 'already active with the same table' && ok "$stack: idempotent re-run" || bad "$stack: re-run rc=$r"
	out=$(env MODE=apply DATA_DEV=/dev/vdm META_DEV=/dev/$meta CRYPT_KEY_BIN=$F/key.bin $DA $M 2>&1)
	r=$?
	echo "$out"
	[ $r = 1 ] && dmsetup info dmroot >/dev/null 2>&1 && ok "$stack: different table refused" || bad "$stack: different table rc=$r"
	dmsetup remove dmroot || bad "$stack: remove"
	for nm in dmroot-crypt dmroot-verity dmroot-integrity; do dmsetup info $nm >/dev/null 2>&1 && dmsetup remove $nm; done
done <$F/disks.txt
tdev=$(awk '$1=="tampered"{print $2}' $F/disks.txt)
env MODE=apply DATA_DEV=/dev/$tdev DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=exit DMTOOLS_SEALED_READCHECK=1 $DA $F/verity-only.env
r=$?
[ $r = 1 ] && [ ! -e /dev/mapper/dmroot ] && ! dmsetup info dmroot >/dev/null 2>&1 && ok "tampered: sealed read check fails, cleaned up" || bad "tampered rc=$r"
head -c 64 /dev/zero >/tmp/wrong.key
d=$(awk '$1=="crypt-only"{print $2}' $F/disks.txt)
env MODE=apply DATA_DEV=/dev/$d CRYPT_KEY_BIN=/tmp/wrong.key DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=exit $DA $F/crypt-only.env
r=$?
[ $r = 1 ] && ! dmsetup info dmroot >/dev/null 2>&1 && ok "wrong key: mount fails, cleaned up" || bad "wrong key rc=$r"
dmsetup create dmroot --notable
env MODE=apply DATA_DEV=/dev/$d CRYPT_KEY_BIN=$F/key.bin $DA $F/crypt-only.env && dmsetup table dmroot | grep -q ' crypt ' && ok "half-made mapping replaced" || bad "half-made mapping"
dmsetup remove dmroot
sdev=$(awk '$1=="signed"{print $2}' $F/disks.txt)
if [ -n "$sdev" ]; then
	out=$(env MODE=apply DATA_DEV=/dev/$sdev DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=exit $DA $F/signed/manifest.env 2>&1)
	r=$?
	echo "$out"
	echo "$out" | grep -q 'loaded user key rules_dm:dmroot:roothash-sig into @u' &&
		echo "$out" | grep -q 'table rejected: .*(root hash signature: signer not trusted\|(a signed table: a kernel without' &&
		echo "$out" | grep -q 'sealed boot failed; fail action: exit' && [ $r = 1 ] &&
		! dmsetup info dmroot >/dev/null 2>&1 && ! keyctl show @u 2>&1 | grep -q roothash-sig &&
		ok "signed: signature loaded as a user key, untrusted signer refused by the kernel, cleaned up" || bad "signed rc=$r"
	out=$(env MODE=apply DATA_DEV=/dev/$sdev $DA $F/garbage/manifest.json 2>&1)
	r=$?
	echo "$out"
	[ $r = 1 ] && echo "$out" | grep -q 'root hash signature: .* is not PKCS#7\|(a signed table: a kernel without' &&
		! echo "$out" | grep -q 'fail action' && ! dmsetup info dmroot >/dev/null 2>&1 &&
		ok "garbage signature: refused (EBADMSG), bootstrap exit 1" || bad "garbage signature rc=$r"
	out=$(env MODE=apply DATA_DEV=/dev/$sdev DMTOOLS_PHASE=sealed DMTOOLS_FAIL_ACTION=exit $DA $F/signed/nothere.env 2>&1)
	r=$?
	echo "$out"
	[ $r = 1 ] && echo "$out" | grep -q 'sealed boot failed; fail action: exit' && ok "sealed apply, missing manifest: fail action" || bad "missing manifest rc=$r"
fi
exit $rc
GUEST
	bash "$ROOT/tests/e2e/dmtest.sh" run --timeout 300 --files "$Q/files" guest.sh "${imgs[@]}" >guest.log 2>&1
	qrc=$?
	grep -E 'GUEST-(PASS|FAIL)' guest.log
	grep -q 'GUEST-FAIL' guest.log && { tail -n 60 guest.log; return 1; }
	[ "$qrc" = 0 ] && [ "$(grep -c GUEST-PASS guest.log)" = $((51 + nsig)) ] || { echo "qemu rc=$qrc"; tail -n 60 guest.log; return 1; }
	sha256sum --quiet -c before.sha || { echo "activation wrote to an image"; return 1; }
}
if [ "${DMTEST_ACTIVATOR_QEMU:-0}" = 1 ]; then
	check "QEMU: dm-activate on all seven stacks (+ tampered, wrong key, idempotence, cleanup, signed verity)" qemu_smoke
	cd "$WORK" || exit 1
else
	skip "QEMU guest of dm-activate" "set DMTEST_ACTIVATOR_QEMU=1 (tests/e2e covers both activators by default)"
fi
exit 0

#!/usr/bin/env bash
# Sets up the offline Bazel toolchain for rules_dm on Debian 12 (Bazel 4.2.3 from
# bazel-bootstrap, rules_go v0.34.0 + gazelle v0.26.0 from the Go module proxy, the
# local Go SDK), then runs `bazel test //...`. Idempotent: each step is skipped when
# its stamp matches. See docs in /work/shared/docs/bazel-offline.md (the recipe) and
# the two patches beside this script.
#
# Knobs:
#   SKIP_TEST=1              do not run the closing `bazel test //...`
#   RULES_DM_BAZELDEPS=DIR   keep the toolchain copies in DIR (default: <repo>/.bazeldeps);
#                            <repo>/.bazeldeps becomes a symlink to it, so several
#                            checkouts on one CI machine share one copy.
#   DMTEST_NO_INSTALL=1      never run apt-get (fail if a package is missing)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"

export GOTOOLCHAIN=local
gocmd() { env -u GOROOT GOFLAGS= GOWORK=off GOTOOLCHAIN=local go "$@"; }
log() { printf '== setup: %s\n' "$*"; }

RULES_GO_VERSION=v0.34.0
GAZELLE_VERSION=v0.26.0

# 1. Debian packages.
PKGS="bazel-bootstrap bazel-skylib bazel-platforms bazel-rules-java"
need=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
	if [ -n "${DMTEST_NO_INSTALL:-}" ]; then
		echo "setup: missing Debian packages:$need (DMTEST_NO_INSTALL is set)" >&2
		exit 1
	fi
	log "apt-get install$need"
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q $need >/dev/null
fi

# Where the copies live.
DEPS="$ROOT/.bazeldeps"
if [ -n "${RULES_DM_BAZELDEPS:-}" ]; then
	mkdir -p "$RULES_DM_BAZELDEPS"
	shared=$(cd "$RULES_DM_BAZELDEPS" && pwd)
	if [ -L "$DEPS" ] && [ "$(readlink "$DEPS")" = "$shared" ]; then :; else
		if [ -e "$DEPS" ] && [ ! -L "$DEPS" ]; then
			echo "setup: $DEPS exists and is not a symlink; remove it to use RULES_DM_BAZELDEPS" >&2
			exit 1
		fi
		rm -f "$DEPS"
		ln -s "$shared" "$DEPS"
	fi
fi
mkdir -p "$DEPS/"
DEPS=$(cd "$DEPS/" && pwd -P)

stamp_ok() { [ -f "$DEPS/$1.stamp" ] && [ "$(cat "$DEPS/$1.stamp")" = "$2" ]; }
stamp_set() { printf '%s\n' "$2" >"$DEPS/$1.stamp"; }
patch_sum() { sha256sum "$1" | cut -c1-16; }

# Downloads module@version from the Go module proxy and prints its directory.
moddir() {
	(cd /tmp && gocmd mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
}

# 2. rules_go, patched.
want="$RULES_GO_VERSION $(patch_sum "$HERE/rules_go-v0.34.0-go126.patch")"
if ! stamp_ok rules_go "$want" || [ ! -d "$DEPS/rules_go" ]; then
	log "rules_go $RULES_GO_VERSION"
	src=$(moddir "github.com/bazelbuild/rules_go@$RULES_GO_VERSION")
	[ -n "$src" ] || { echo "setup: cannot download rules_go" >&2; exit 1; }
	rm -rf "$DEPS/rules_go"
	cp -r "$src" "$DEPS/rules_go"
	chmod -R u+w "$DEPS/rules_go"
	(cd "$DEPS/rules_go" && patch -s -p1 <"$HERE/rules_go-v0.34.0-go126.patch")
	stamp_set rules_go "$want"
fi

# 3. gazelle, vendored (go_repository builds its tools in GOPATH mode), patched.
want="$GAZELLE_VERSION $(patch_sum "$HERE/gazelle-v0.26.0.patch")"
if ! stamp_ok gazelle "$want" || [ ! -d "$DEPS/bazel-gazelle" ]; then
	log "gazelle $GAZELLE_VERSION"
	src=$(moddir "github.com/bazelbuild/bazel-gazelle@$GAZELLE_VERSION")
	[ -n "$src" ] || { echo "setup: cannot download gazelle" >&2; exit 1; }
	rm -rf "$DEPS/bazel-gazelle"
	cp -r "$src" "$DEPS/bazel-gazelle"
	chmod -R u+w "$DEPS/bazel-gazelle"
	(cd "$DEPS/bazel-gazelle" && gocmd mod vendor && patch -s -p1 <"$HERE/gazelle-v0.26.0.patch")
	stamp_set gazelle "$want"
fi

# 4. A copy of the Go SDK with std (and cmd/pack) installed into pkg/.
goroot=$(gocmd env GOROOT)
want="$(gocmd version) $goroot"
if ! stamp_ok go "$want" || [ ! -x "$DEPS/go/bin/go" ]; then
	log "Go SDK copy of $goroot"
	rm -rf "$DEPS/go"
	mkdir -p "$DEPS/go"
	cp -a "$goroot/." "$DEPS/go/"
	chmod -R u+w "$DEPS/go"
	(cd "$DEPS/go/src" && env -u GOROOT GOFLAGS= GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=1 \
		GODEBUG=installgoroot=all ../bin/go install std cmd/pack)
	stamp_set go "$want"
fi

# 5. Stubs for repositories Bazel 4.2.3 would download.
want="stubs-1"
if ! stamp_ok stubs "$want"; then
	log "rules_cc and remote_coverage_tools stubs"
	rm -rf "$DEPS/rules_cc" "$DEPS/remote_coverage_tools"
	mkdir -p "$DEPS/rules_cc/cc" "$DEPS/remote_coverage_tools"
	echo 'workspace(name = "rules_cc")' >"$DEPS/rules_cc/WORKSPACE"
	: >"$DEPS/rules_cc/BUILD"
	{
		echo '"""Offline stub: forwards to the native rules (Debian rules_cc needs Bazel >= 5)."""'
		for r in cc_binary cc_import cc_library cc_proto_library cc_test cc_toolchain \
			cc_toolchain_suite fdo_prefetch_hints fdo_profile objc_import objc_library; do
			printf '\ndef %s(**kwargs):\n    native.%s(**kwargs)\n' "$r" "$r"
		done
	} >"$DEPS/rules_cc/cc/defs.bzl"
	cat >"$DEPS/rules_cc/cc/BUILD" <<'EOF'
exports_files(["defs.bzl"])

alias(
    name = "toolchain_type",
    actual = "@bazel_tools//tools/cpp:toolchain_type",
    visibility = ["//visibility:public"],
)
EOF
	echo 'workspace(name = "remote_coverage_tools")' >"$DEPS/remote_coverage_tools/WORKSPACE"
	printf '#!/bin/sh\necho "coverage is not available offline" >&2\nexit 1\n' >"$DEPS/remote_coverage_tools/fail.sh"
	chmod +x "$DEPS/remote_coverage_tools/fail.sh"
	cat >"$DEPS/remote_coverage_tools/BUILD" <<'EOF'
sh_binary(
    name = "coverage_report_generator",
    srcs = ["fail.sh"],
    visibility = ["//visibility:public"],
)

sh_binary(
    name = "lcov_merger",
    srcs = ["fail.sh"],
    visibility = ["//visibility:public"],
)
EOF
	stamp_set stubs "$want"
fi

# 6. Build and test.
if [ -z "${SKIP_TEST:-}" ]; then
	log "bazel test //..."
	bazel test //...
fi
log "done"

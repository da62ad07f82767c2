#!/usr/bin/env bash
# build-assets.sh OUT_DIR
#
# Puts the two control-plane binaries that controller-runtime's envtest runs,
# OUT_DIR/kube-apiserver and OUT_DIR/etcd, in place. First it asks
# setup-envtest (the standard tool, pinned below) for the envtest release of the
# pinned Kubernetes version, which takes seconds where release binaries can be
# downloaded; when that fails (this project's machines and CI reach the Go
# module proxy but no release-binary host), it builds both from source fetched
# through the Go module proxy. It says which path it took.
#
# The pinned versions live in the wrapper modules beside this script
# (kube-apiserver/go.mod and etcd/go.mod, with committed go.sum files); this
# script only reads them. To move to a new Kubernetes release, edit those
# go.mod files (see their header comments) and re-run `go mod tidy` in them.
#
# Idempotent: OUT_DIR/.versions records, per binary, the pinned version and a
# hash of everything that shapes the build (wrapper go.mod/go.sum, build flags,
# Go toolchain). A binary whose line still matches is left alone, so a second
# run returns at once. A cold kube-apiserver build takes several minutes and a
# few GiB of module cache + build cache; see e2e/README.md.
#
# Environment:
#   BUILD_PARALLELISM  go build -p value (default 2: the project machines have
#                      2 cores and other work may be compiling at the same time)
#   FORCE=1            rebuild even if the stamp matches
#   ENVTEST_DOWNLOAD   auto (default): setup-envtest first, build if it fails;
#                      never: always build; only: setup-envtest or fail
#   ENVTEST_INDEX      setup-envtest's release index (default: its own, on
#                      GitHub); tests point it at a local one
#   ENVTEST_DOWNLOAD_TIMEOUT  seconds setup-envtest may take (default 180)
#   SETUP_ENVTEST_DIR  where setup-envtest is installed (default OUT_DIR/.setup-envtest)
set -euo pipefail

log() { printf '[build-assets] %s\n' "$*" >&2; }
die() { printf '[build-assets] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $# -eq 1 && -n $1 ]] || die "usage: $0 OUT_DIR"
command -v go >/dev/null || die "go not found on PATH"

TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$1"
OUT_DIR=$(cd "$1" && pwd)
STAMP="$OUT_DIR/.versions"
PARALLELISM=${BUILD_PARALLELISM:-2}

# Serialise concurrent runs (e.g. two `make test` in parallel) so they do not
# both spend minutes building, or race on the rename below.
if command -v flock >/dev/null; then
	exec 9>"$OUT_DIR/.lock"
	flock 9
fi

# pinned_version MODULE_DIR MODULE_PATH: the version that the wrapper's go.mod
# requires. Read with awk rather than `go list -m` so the up-to-date check
# needs neither the module cache nor the network.
pinned_version() {
	local v
	v=$(awk -v m="$2" '($1 == m && $2 ~ /^v/) || ($1 == "require" && $2 == m) { print ($1 == "require" ? $3 : $2); exit }' "$1/go.mod")
	[[ -n $v ]] || die "cannot find the pinned version of $2 in $1/go.mod"
	printf '%s' "$v"
}

KUBE_VERSION=$(pinned_version "$TOOLS_DIR/kube-apiserver" k8s.io/kubernetes)
ETCD_VERSION=$(pinned_version "$TOOLS_DIR/etcd" go.etcd.io/etcd/server/v3)

# Shared build settings. CGO off gives static binaries that run on any Linux
# (this is also how upstream ships both). -trimpath and a fixed build date keep
# the output independent of where and when it was built. -mod=readonly makes
# the build fail, instead of silently re-resolving, if go.mod/go.sum are stale.
export CGO_ENABLED=0 GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false"
# The checksum database is not reachable for k8s.io/kubernetes from here; the
# committed go.sum pins its hash instead.
export GONOSUMDB="k8s.io/kubernetes${GONOSUMDB:+,$GONOSUMDB}"

# Kubernetes stamps its version into these variables at release time (see
# hack/lib/version.sh). Without them the API server reports v0.0.0-master,
# which clients and kubectl then show and reason about (version skew, discovery).
kube_major=${KUBE_VERSION#v}; kube_major=${kube_major%%.*}
kube_minor=${KUBE_VERSION#v*.}; kube_minor=${kube_minor%%.*}
KUBE_LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	KUBE_LDFLAGS+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$kube_major -X $pkg.gitMinor=$kube_minor -X $pkg.gitTreeState=clean"
done
ETCD_LDFLAGS="-s -w"

GO_VERSION=$(go env GOVERSION)

# fingerprint MODULE_DIR LDFLAGS: hash of every input that changes the binary.
fingerprint() {
	{
		cat "$1/go.mod" "$1/go.sum"
		printf '%s\n' "$2" "$GO_VERSION" "$(go env GOOS)/$(go env GOARCH)" "CGO_ENABLED=$CGO_ENABLED"
	} | sha256sum | cut -c1-16
}

KUBE_LINE="kube-apiserver $KUBE_VERSION $(fingerprint "$TOOLS_DIR/kube-apiserver" "$KUBE_LDFLAGS")"
ETCD_LINE="etcd $ETCD_VERSION $(fingerprint "$TOOLS_DIR/etcd" "$ETCD_LDFLAGS")"

# The stamp lines of binaries that setup-envtest downloaded: the envtest
# release of KUBE_VERSION (its etcd is the one that release ships).
KUBE_DL_LINE="kube-apiserver $KUBE_VERSION setup-envtest"
ETCD_DL_LINE="etcd for-kube-$KUBE_VERSION setup-envtest"

# up_to_date NAME LINE [LINE]: the binary exists and the stamp holds exactly
# one of the LINEs (built, or downloaded).
up_to_date() {
	local name=$1
	shift
	[[ ${FORCE:-0} != 1 && -x "$OUT_DIR/$name" && -f $STAMP ]] || return 1
	for line in "$@"; do
		grep -qxF "$line" "$STAMP" && return 0
	done
	return 1
}

# build NAME MODULE_DIR PACKAGE LDFLAGS: go build PACKAGE from inside the
# wrapper module (so its go.mod pins every dependency), into a temporary name,
# then rename: an interrupted build never leaves a half-written binary that a
# later run would take as current.
build() {
	local name=$1 dir=$2 pkg=$3 ldflags=$4 start tmp
	tmp="$OUT_DIR/.$name.tmp"
	log "building $name from $pkg (module $dir, -p $PARALLELISM); a cold build downloads modules and can take several minutes"
	start=$SECONDS
	(cd "$dir" && go build -p "$PARALLELISM" -trimpath -ldflags "$ldflags" -o "$tmp" "$pkg") ||
		{ rm -f "$tmp"; die "go build of $pkg failed (see above)"; }
	mv -f "$tmp" "$OUT_DIR/$name"
	log "built $OUT_DIR/$name in $((SECONDS - start))s ($(du -h "$OUT_DIR/$name" | cut -f1))"
}

# check_version NAME WANT ARGS...: the binary runs and reports the version we
# pinned, so a wrong replace or a missing -X is caught here and not in a test.
check_version() {
	local name=$1 want=$2 out
	shift 2
	out=$("$OUT_DIR/$name" "$@" 2>&1) || die "$OUT_DIR/$name $* failed: $out"
	grep -qF -- "$want" <<<"$out" || die "$OUT_DIR/$name reports '$out', want '$want'"
	log "$name reports: $(head -n1 <<<"$out")"
}

if up_to_date kube-apiserver "$KUBE_LINE" && up_to_date etcd "$ETCD_LINE"; then
	log "up to date: kube-apiserver $KUBE_VERSION, etcd $ETCD_VERSION in $OUT_DIR (built from source)"
	exit 0
fi
if up_to_date kube-apiserver "$KUBE_DL_LINE" && up_to_date etcd "$ETCD_DL_LINE"; then
	log "up to date: kube-apiserver $KUBE_VERSION and its etcd in $OUT_DIR (downloaded by setup-envtest)"
	exit 0
fi

# Drop the stamp before building: if the build dies half-way, the next run
# must not trust an old stamp next to a binary of unknown provenance.
old_stamp=$(cat "$STAMP" 2>/dev/null || true)
rm -f "$STAMP"

# setup-envtest, pinned like every other tool; `go install` fetches it from
# the Go module proxy.
SETUP_ENVTEST_VERSION=v0.25.1

# download: setup-envtest fetches the envtest release of KUBE_VERSION (checked
# against the index's SHA-512) into a scratch store; both binaries are copied
# into OUT_DIR once the API server reports the pinned version. Returns non-zero,
# having logged why, on any failure.
download() {
	local tools=${SETUP_ENVTEST_DIR:-$OUT_DIR/.setup-envtest} store dir out
	if ! GOBIN="$tools" GOFLAGS=-mod=mod go install "sigs.k8s.io/controller-runtime/tools/setup-envtest@$SETUP_ENVTEST_VERSION" >&2; then
		log "cannot install setup-envtest $SETUP_ENVTEST_VERSION"
		return 1
	fi
	store=$(mktemp -d "$OUT_DIR/.envtest-store.XXXXXX")
	local args=(use -p path --bin-dir "$store" "${KUBE_VERSION#v}")
	[[ -n ${ENVTEST_INDEX:-} ]] && args+=(--index "$ENVTEST_INDEX")
	log "asking setup-envtest $SETUP_ENVTEST_VERSION for the envtest release of Kubernetes $KUBE_VERSION${ENVTEST_INDEX:+ (index $ENVTEST_INDEX)}"
	if ! out=$(timeout "${ENVTEST_DOWNLOAD_TIMEOUT:-180}" "$tools/setup-envtest" "${args[@]}" 2>&1); then
		log "setup-envtest failed: $(tail -n1 <<<"$out")"
		rm -rf "$store"
		return 1
	fi
	dir=$(tail -n1 <<<"$out")
	if [[ ! -x $dir/kube-apiserver || ! -x $dir/etcd ]]; then
		log "setup-envtest gave $dir, without kube-apiserver and etcd"
		rm -rf "$store"
		return 1
	fi
	if ! "$dir/kube-apiserver" --version 2>&1 | grep -qxF "Kubernetes $KUBE_VERSION"; then
		log "the downloaded kube-apiserver reports '$("$dir/kube-apiserver" --version 2>&1 | head -n1)', want Kubernetes $KUBE_VERSION"
		rm -rf "$store"
		return 1
	fi
	for name in kube-apiserver etcd; do
		cp "$dir/$name" "$OUT_DIR/.$name.tmp" && chmod 0755 "$OUT_DIR/.$name.tmp" && mv -f "$OUT_DIR/.$name.tmp" "$OUT_DIR/$name"
	done
	rm -rf "$store"
}

case ${ENVTEST_DOWNLOAD:-auto} in
auto | only)
	start=$SECONDS
	if download; then
		check_version kube-apiserver "Kubernetes $KUBE_VERSION" --version
		check_version etcd "etcd Version:" --version
		printf '%s\n%s\n' "$KUBE_DL_LINE" "$ETCD_DL_LINE" >"$STAMP"
		log "done in $((SECONDS - start))s: downloaded by setup-envtest (kube-apiserver $KUBE_VERSION and the etcd of its envtest release)"
		exit 0
	fi
	[[ ${ENVTEST_DOWNLOAD:-auto} == only ]] && die "setup-envtest could not provide the binaries and ENVTEST_DOWNLOAD=only"
	log "falling back to building from the Go module proxy"
	# A downloaded pair is no base for a partial rebuild.
	old_stamp=""
	;;
never) log "ENVTEST_DOWNLOAD=never: building from the Go module proxy" ;;
*) die "ENVTEST_DOWNLOAD=${ENVTEST_DOWNLOAD}: want auto, never or only" ;;
esac

if grep -qxF "$KUBE_LINE" <<<"$old_stamp" && [[ ${FORCE:-0} != 1 && -x $OUT_DIR/kube-apiserver ]]; then
	log "kube-apiserver $KUBE_VERSION is up to date"
else
	build kube-apiserver "$TOOLS_DIR/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver "$KUBE_LDFLAGS"
fi
check_version kube-apiserver "Kubernetes $KUBE_VERSION" --version

if grep -qxF "$ETCD_LINE" <<<"$old_stamp" && [[ ${FORCE:-0} != 1 && -x $OUT_DIR/etcd ]]; then
	log "etcd $ETCD_VERSION is up to date"
else
	build etcd "$TOOLS_DIR/etcd" go.etcd.io/etcd/server/v3 "$ETCD_LDFLAGS"
fi
check_version etcd "etcd Version: ${ETCD_VERSION#v}" --version

printf '%s\n%s\n' "$KUBE_LINE" "$ETCD_LINE" >"$STAMP"
log "done: built from source through the Go module proxy: $(tr '\n' ';' <"$STAMP")"

#!/usr/bin/env bash
# Build the e2e control plane (etcd, kube-apiserver, kube-controller-manager),
# the node (kubelet, kube-scheduler, kube-proxy) and helm from the Go modules
# pinned in e2e/tools/*/go.mod (+ go.sum).
#
# Output: ${XDG_CACHE_HOME:-$HOME/.cache}/vmlisub-e2e/<k8s>-<etcd>-<helm>/bin
# A stamp file next to bin/ marks a finished build and lists its binaries;
# with it present (and listing all of them) this script only prints the bin
# directory and exits (fast, idempotent). A cache made before a binary was
# added keeps what it has and builds only the missing ones.
#
# Usage: e2e/build-control-plane.sh [--print-dir]
#   --print-dir   print the bin directory that a build would use, build nothing
# Environment:
#   VMLISUB_E2E_CACHE   cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/vmlisub-e2e)
#   GO                  go command (default: go on PATH, else /usr/local/go/bin/go)
#
# The last line on stdout is always the bin directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="$here/tools"

GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"

# Version of the single required module named $2 in go.mod $1.
modver() {
  local v
  v="$(awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$1")"
  [ -n "$v" ] || { echo "build-control-plane: $2 not found in $1" >&2; exit 1; }
  printf '%s\n' "$v"
}

k8s_ver="$(modver "$tools/kubernetes/go.mod" k8s.io/kubernetes)"
etcd_ver="$(modver "$tools/etcd/go.mod" go.etcd.io/etcd/server/v3)"
helm_ver="$(modver "$tools/helm/go.mod" helm.sh/helm/v4)"

# Every staging module must be replaced by the twin of the kubernetes release
# (v1.36.3 -> v0.36.3): catch a half-done version bump before building.
staging_ver="v0.${k8s_ver#v1.}"
stale="$(awk -v want="$staging_ver" '$2 == "=>" && $1 ~ /^k8s\.io\// && $4 != want { print $1 " " $4 }' "$tools/kubernetes/go.mod")"
if [ -n "$stale" ]; then
  echo "build-control-plane: e2e/tools/kubernetes/go.mod: replace targets differ from $staging_ver:" >&2
  echo "$stale" >&2
  exit 1
fi

cache_root="${VMLISUB_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmlisub-e2e}"
dest="$cache_root/${k8s_ver}-${etcd_ver}-${helm_ver}"
bin="$dest/bin"
stamp="$dest/stamp"

if [ "${1:-}" = "--print-dir" ]; then
  printf '%s\n' "$bin"
  exit 0
fi

binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy helm)

have_all() {
  [ -f "$stamp" ] || return 1
  grep -qxF "binaries=${binaries[*]}" "$stamp" || return 1
  for b in "${binaries[@]}"; do
    [ -x "$bin/$b" ] || return 1
  done
}

if have_all; then
  printf '%s\n' "$bin"
  exit 0
fi

command -v "$GO" >/dev/null 2>&1 || { echo "build-control-plane: go not found (set GO=...)" >&2; exit 1; }

mkdir -p "$cache_root"
# One build at a time per cache root; a second caller waits, then finds the stamp.
exec 9>"$cache_root/.build.lock"
flock 9
if have_all; then
  printf '%s\n' "$bin"
  exit 0
fi

work="$(mktemp -d "$cache_root/.build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

export CGO_ENABLED=0
# go.sum is committed: never let a build rewrite the pins.
export GOFLAGS="-mod=readonly -buildvcs=false"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

k8s_minor="${k8s_ver#v}"; k8s_major="${k8s_minor%%.*}"; k8s_minor="${k8s_minor#*.}"; k8s_minor="${k8s_minor%%.*}"
k8s_x=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_x+=" -X $p.gitVersion=$k8s_ver -X $p.gitMajor=$k8s_major -X $p.gitMinor=$k8s_minor -X $p.gitTreeState=clean"
done

start=$(date +%s)
echo "build-control-plane: building kubernetes $k8s_ver, etcd $etcd_ver, helm $helm_ver into $bin" >&2

# Binaries of an earlier build of the same versions (the directory name holds
# them all) are reused: only what is missing gets built.
build() { # dir ldflags-extra out pkg
  local dir="$1" extra="$2" out="$3" pkg="$4" t0
  if [ -x "$bin/$out" ]; then
    cp -p "$bin/$out" "$work/bin/$out"
    echo "build-control-plane:   $out kept from the earlier build" >&2
    return 0
  fi
  t0=$(date +%s)
  (cd "$dir" && nice -n 19 "$GO" build -trimpath -ldflags="-s -w$extra" -o "$work/bin/$out" "$pkg") >&2
  echo "build-control-plane:   $out built in $(( $(date +%s) - t0 ))s" >&2
}

mkdir -p "$work/bin"
build "$tools/etcd" "" etcd go.etcd.io/etcd/server/v3
build "$tools/kubernetes" "$k8s_x" kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build "$tools/kubernetes" "$k8s_x" kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build "$tools/kubernetes" "$k8s_x" kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
build "$tools/kubernetes" "$k8s_x" kubelet k8s.io/kubernetes/cmd/kubelet
build "$tools/kubernetes" "$k8s_x" kube-proxy k8s.io/kubernetes/cmd/kube-proxy
build "$tools/helm" " -X helm.sh/helm/v4/internal/version.version=$helm_ver -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
  helm helm.sh/helm/v4/cmd/helm

cat >"$work/stamp" <<EOF
kubernetes=$k8s_ver
etcd=$etcd_ver
helm=$helm_ver
binaries=${binaries[*]}
go=$("$GO" env GOVERSION)
built=$(date -u +%Y-%m-%dT%H:%M:%SZ)
build_seconds=$(( $(date +%s) - start ))
EOF

rm -rf "$dest"
mv "$work" "$dest"
trap - EXIT
echo "build-control-plane: done in $(( $(date +%s) - start ))s" >&2
printf '%s\n' "$bin"

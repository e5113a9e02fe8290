#!/usr/bin/env bash
# Print the ConfigMap(s) of the vmlisub trust anchors from an IGTF CA
# directory (the ca-policy-egi-core / igtf-policy packages' contents):
# for every CA `<hash>.0` with its `<hash>.signing_policy`, `<hash>.namespaces`,
# `<hash>.info` and `<hash>.crl_url`, symlinks resolved; no CRLs (`*.r0`:
# the operator refreshes them itself), nothing else. Apply with kubectl:
#
#   docs/recipes/grid-ca-configmap.sh -n vmlisub-system vmlisub-grid-ca \
#     /etc/grid-security/certificates | kubectl apply --server-side -f -
#
# (server-side: a client-side apply would copy the data into the
# last-applied-configuration annotation, which is limited to 256 KiB.)
#
# One ConfigMap holds at most 1 MiB. With --split BYTES the files go into
# NAME-0, NAME-1, ... of at most BYTES each (a CA's files stay together);
# mount them with trust.source=projected, the sources printed on stderr.
# Why not `kubectl create configmap --from-file=DIR`: it skips symlinks (the
# hash names of an IGTF directory are symlinks to `<alias>.pem` etc.) and
# takes the CRLs along.
set -euo pipefail

namespace=""
split=0
while [ "$#" -gt 0 ]; do
  case "$1" in
    -n) namespace="$2"; shift 2 ;;
    --split) split="$2"; shift 2 ;;
    *) break ;;
  esac
done
[ "$#" -ge 1 ] || { echo "usage: $0 [-n NAMESPACE] [--split BYTES] NAME [CA_DIR]" >&2; exit 2; }
name="$1"; src="${2:-/etc/grid-security/certificates}"
[[ "$name" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || { echo "bad ConfigMap name '$name'" >&2; exit 2; }
[[ "$split" =~ ^[0-9]+$ ]] || { echo "bad --split '$split'" >&2; exit 2; }
[ -d "$src" ] || { echo "$src: not a directory" >&2; exit 1; }
# What one ConfigMap may hold (etcd's default request limit is 1.5 MiB; the
# API server refuses ConfigMap data over 1 MiB = 1048576 bytes). Keep room
# for the object's metadata.
limit=1000000
[ "$split" -eq 0 ] || [ "$split" -le "$limit" ] || { echo "--split is at most $limit" >&2; exit 2; }

stage="$(mktemp -d)"
trap 'rm -rf -- "$stage"' EXIT

# One directory per CA: <hash>.0 plus its policy and CRL-location files,
# found under the hash name or, failing that, the alias the .0 links to.
declare -A seen=()
cas=()
shopt -s nullglob
# Hash names with their own policy links first (the current OpenSSL hash in
# IGTF directories), so that an old-style alias of the same CA is skipped.
ordered=()
for cert in "$src"/*.0; do [ -e "${cert%.0}.signing_policy" ] && ordered+=("$cert"); done
for cert in "$src"/*.0; do [ -e "${cert%.0}.signing_policy" ] || ordered+=("$cert"); done
for cert in "${ordered[@]}"; do
  base="$(basename "$cert" .0)"
  [[ "$base" =~ ^[0-9a-f]{8}$ ]] || continue
  real="$(readlink -f "$cert")"
  [ -f "$real" ] || continue
  # Old-style hash links to the same certificate: once is enough.
  [ -z "${seen[$real]:-}" ] || continue
  seen[$real]=1
  alias_stem="${real%.*}"
  mkdir "$stage/$base"
  cat "$real" > "$stage/$base/$base.0"
  for ext in signing_policy namespaces info crl_url; do
    if [ -f "$src/$base.$ext" ]; then
      cat "$src/$base.$ext" > "$stage/$base/$base.$ext"
    elif [ -f "$alias_stem.$ext" ]; then
      cat "$alias_stem.$ext" > "$stage/$base/$base.$ext"
    fi
  done
  cas+=("$base")
done
[ "${#cas[@]}" -gt 0 ] || { echo "$src: no <hash>.0 CA certificates" >&2; exit 1; }

# Pack the CAs into ConfigMaps.
bytes_of() { cat "$stage/$1"/* | wc -c; }
parts=()
part=-1
size=0
max=$limit
[ "$split" -eq 0 ] || max=$split
for ca in "${cas[@]}"; do
  n="$(bytes_of "$ca")"
  if [ "$part" -lt 0 ] || { [ "$split" -gt 0 ] && [ $((size + n)) -gt "$max" ]; }; then
    part=$((part + 1))
    size=0
    mkdir "$stage/part-$part"
    parts+=("$part")
  fi
  size=$((size + n))
  [ "$size" -le "$max" ] || {
    echo "$src: the CA files take more than $max bytes: use --split (e.g. --split 900000) and trust.source=projected" >&2
    exit 1
  }
  mv "$stage/$ca"/* "$stage/part-$part/"
done

ns_args=()
[ -n "$namespace" ] && ns_args=(-n "$namespace")
total=0
for p in "${parts[@]}"; do
  cm="$name"
  [ "$split" -eq 0 ] || cm="$name-$p"
  [ "$p" -eq 0 ] || echo "---"
  kubectl create configmap "$cm" "${ns_args[@]}" --from-file="$stage/part-$p" \
    --dry-run=client -o yaml
  total=$((total + $(cat "$stage/part-$p"/* | wc -c)))
done
echo "grid-ca-configmap: ${#cas[@]} CAs, $total bytes in ${#parts[@]} ConfigMap(s)" >&2
if [ "$split" -gt 0 ]; then
  echo "helm values: trust.source=projected, trust.projected.sources:" >&2
  for p in "${parts[@]}"; do echo "  - configMap: {name: $name-$p}" >&2; done
fi

#!/usr/bin/env bash
# Build the OCI images of the e2e node without a registry or a daemon
# (umoci): the pod sandbox image, a small client image and, when given a
# binary, the operator image. Writes one OCI image layout per image under
# OUTDIR (OUTDIR/<name>/, for inspection) and an archive of it
# (OUTDIR/<name>.tar) for `ctr -n k8s.io images import`.
#
# Usage: e2e/node/build-images.sh OUTDIR [OPERATOR_BINARY]
#
#   pause    localhost/vmlisub-e2e/pause:1     e2e/node/pause.c, static (cc)
#   busybox  localhost/vmlisub-e2e/busybox:1   the host's busybox-static
#   vmlisub  localhost/vmlisub:e2e              OPERATOR_BINARY + exactly the
#            shared libraries `ldd` lists for it, laid out as the Dockerfile's
#            distroless image (user 65532, /usr/local/bin/vmlisub, the same
#            ENV, EXPOSE, ENTRYPOINT and CMD; e2e/tests/node.rs checks that
#            the two definitions agree)
#
# The Dockerfile remains the way release images are made; this is the
# registry-less equivalent for the e2e node. Needs umoci, cc (static libc),
# busybox (busybox-static), ldd, tar.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:?usage: build-images.sh OUTDIR [OPERATOR_BINARY]}"
operator_bin="${2:-}"

die() { echo "build-images: $*" >&2; exit 1; }
for t in umoci cc tar ldd; do
  command -v "$t" >/dev/null 2>&1 || die "$t is required"
done
busybox="$(command -v busybox || true)"
[ -n "$busybox" ] || die "busybox is required (apt-get install busybox-static)"
# A dynamically linked busybox would need its libraries in the image.
if ldd "$busybox" >/dev/null 2>&1; then
  die "$busybox is dynamically linked; install busybox-static"
fi

mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d "$out/.build.XXXXXX")"
trap 'rm -rf -- "$work"' EXIT

# new_image NAME: an empty image NAME:img in $work/NAME; its root file system
# is unpacked at $work/NAME.bundle/rootfs.
new_image() {
  umoci init --layout "$work/$1"
  umoci new --image "$work/$1:img"
  umoci unpack --image "$work/$1:img" "$work/$1.bundle" >/dev/null
}

# finish NAME REF-TAG CONFIG-ARGS...: pack the root file system as one layer,
# set the image configuration, tag it and write OUTDIR/NAME{,.tar}.
finish() {
  local name="$1" tag="$2"
  shift 2
  umoci repack --image "$work/$name:img" "$work/$name.bundle"
  umoci config --image "$work/$name:img" --tag "$tag" "$@"
  umoci rm --image "$work/$name:img"
  umoci gc --layout "$work/$name"
  rm -rf -- "${out:?}/$name" "$out/$name.tar"
  mv "$work/$name" "$out/$name"
  tar -C "$out/$name" -cf "$out/$name.tar" .
  echo "build-images: $out/$name.tar ($tag)" >&2
}

# ---------------------------------------------------------------- pause
new_image pause
cc -static -Os -s -o "$work/pause.bundle/rootfs/pause" "$here/pause.c"
finish pause 1 \
  --config.user 65535:65535 \
  --config.entrypoint /pause \
  --clear config.cmd

# -------------------------------------------------------------- busybox
new_image busybox
install -d "$work/busybox.bundle/rootfs/bin" "$work/busybox.bundle/rootfs/tmp"
chmod 1777 "$work/busybox.bundle/rootfs/tmp"
install -m 0555 "$busybox" "$work/busybox.bundle/rootfs/bin/busybox"
for applet in sh cat ls sleep wget nc sha512sum id ps grep head; do
  ln -s busybox "$work/busybox.bundle/rootfs/bin/$applet"
done
finish busybox 1 \
  --config.user 65532:65532 \
  --config.env PATH=/bin \
  --config.cmd /bin/sh

# ---------------------------------------------------------- the operator
if [ -n "$operator_bin" ]; then
  [ -x "$operator_bin" ] || die "$operator_bin is not an executable"
  new_image vmlisub
  root="$work/vmlisub.bundle/rootfs"
  # distroless/base: /etc/passwd and /etc/group with root, nobody and
  # nonroot (65532), nonroot's home, a world-writable /tmp, the CA roots.
  install -d -m 0755 "$root/etc" "$root/usr/local/bin" "$root/etc/ssl/certs"
  install -d -m 0700 -o 65532 -g 65532 "$root/home/nonroot"
  install -d -m 0700 "$root/root"
  install -d -m 1777 "$root/tmp"
  cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
  cat >"$root/etc/group" <<'GROUP'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
GROUP
  chmod 0644 "$root/etc/passwd" "$root/etc/group"
  if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    install -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  fi
  install -m 0555 -o 0 -g 0 "$operator_bin" "$root/usr/local/bin/vmlisub"
  # Exactly the shared libraries the binary loads (and the loader), at the
  # paths ldd resolves them to; a static binary needs none.
  if ldd "$operator_bin" >/dev/null 2>&1; then
    while read -r lib; do
      install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
      echo "build-images:   vmlisub needs $lib" >&2
    done < <(ldd "$operator_bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
  fi
  finish vmlisub e2e \
    --config.user 65532:65532 \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --config.env VMLISUB_CACHE_DIR=/var/cache/vmimages \
    --config.env VMLISUB_CA_DIR=/etc/grid-security/certificates \
    --config.env MALLOC_ARENA_MAX=2 \
    --config.exposedports 8080/tcp \
    --config.entrypoint /usr/local/bin/vmlisub \
    --config.cmd operator \
    --config.label org.opencontainers.image.title=vmlisub \
    --config.label org.opencontainers.image.licenses=Apache-2.0
fi

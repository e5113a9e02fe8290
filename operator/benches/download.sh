#!/usr/bin/env bash
# Benchmark: downloading and verifying one large image over loopback HTTP.
#
# Side by side, in one run, on the same file served by the same server
# (`python3 -m http.server` on 127.0.0.1):
#   (a) `vmlisub sync --once` with a signed list naming the image: list
#       fetch and verification, streamed download into the cache's
#       partial/ area with the sha512 of the file read back as it is
#       written, fsync, promotion to endorsed/ (the whole process is timed;
#       its peak RSS and CPU time are measured with /usr/bin/time);
#   (d) of (a), the downloader alone, from its log line: request to the
#       fsynced file whose size and sha512 are proven;
#   (b) the original tool's approach: `curl -s -o file URL`, then
#       `sha512sum file`;
#   (c) the physical limit: `openssl dgst -sha512` of the (page-cached)
#       file, no network, no disk write.
# Each is run BENCH_RUNS times (interleaved) and the median is reported,
# with the ratios (a)/(c), (a)/(b), (d)/(c) and (d)/(b). Then, disk space
# permitting, the peak RSS of (a) on a BENCH_LARGE_MIB image.
#
# Goals (issue 14, item 8): (a) >= 0.9 x (c), (a) >= 1.6 x (b), peak RSS of
# (a) <= 64 MiB on a 4 GiB image. (The goals of the run before were 0.75
# and 1.5.)
#
# Run with `bash operator/benches/download.sh` (or `make bench-download`).
# Needs cargo, openssl, curl, python3, GNU time (/usr/bin/time), sha512sum.
# Only loopback traffic. Every temporary file (the images are GiB-sized)
# is removed at the end, on error and on interrupt.
#
# Environment:
#   BENCH_SIZE_MIB   image size for the comparison      (default 1024)
#   BENCH_LARGE_MIB  image size for the RSS run, 0=skip  (default 4096)
#   BENCH_RUNS       runs of each method                 (default 3)
#   VMLISUB_BIN      use this binary instead of building the release one
#                    (built into $CARGO_TARGET_DIR, default target/)
#   VMLISUB_BASELINE_BIN  also run this other vmlisub binary as (a0), e.g.
#                    a build from before a change, for a before/after row
#   BENCH_TMPDIR     where the temporary files go        (default $TMPDIR or /tmp)

set -euo pipefail

SIZE_MIB=${BENCH_SIZE_MIB:-1024}
LARGE_MIB=${BENCH_LARGE_MIB:-4096}
RUNS=${BENCH_RUNS:-3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

for tool in openssl curl python3 sha512sum /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "download.sh: $tool is required" >&2; exit 2; }
done

WORK=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/vmlisub-download-bench.XXXXXX")
SERVER_PID=
cleanup() {
    local status=$?
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf -- "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() { printf '%s\n' "$*" >&2; }
die() { log "download.sh: $*"; exit 1; }

# ----- the binary ---------------------------------------------------------------

if [[ -n ${VMLISUB_BIN:-} ]]; then
    BIN=$VMLISUB_BIN
else
    log "building the release binary..."
    (cd "$ROOT" && cargo build --release --quiet -p vmlisub)
    TARGET_DIR=${CARGO_TARGET_DIR:-target}
    [[ $TARGET_DIR == /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
    BIN="$TARGET_DIR/release/vmlisub"
fi
[[ -x $BIN ]] || die "no binary at $BIN"
BASELINE=${VMLISUB_BASELINE_BIN:-}
[[ -z $BASELINE || -x $BASELINE ]] || die "no binary at $BASELINE"

# ----- helpers ------------------------------------------------------------------

now_ns() { date +%s%N; }

# MiB/s for <bytes> in <nanoseconds>.
mibps() { awk -v b="$1" -v ns="$2" 'BEGIN { printf "%.0f", (b / 1048576) / (ns / 1e9) }'; }

# The median of the arguments (numbers).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# Available bytes on the file system holding $WORK.
avail_bytes() { df -P -B1 "$WORK" | awk 'NR == 2 { print $4 }'; }

# A deterministic pseudo-random file of <MiB> MiB (AES-CTR keystream:
# incompressible, and much faster than /dev/urandom).
make_image() {
    local path=$1 mib=$2
    openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f \
        -iv 00000000000000000000000000000000 -in /dev/zero 2>/dev/null |
        head -c "$((mib * 1048576))" >"$path" || true
    [[ $(stat -c %s "$path") -eq $((mib * 1048576)) ]] || die "could not write $path"
}

# ----- a PKI valid now (as operator/tests/support/live.rs) -----------------------

PKI="$WORK/pki"
mkdir -p "$PKI/certificates"
(
    cd "$PKI"
    printf '[ca]\ndefault_ca = live\n[live]\ndatabase = index.txt\ndefault_md = sha256\ndefault_crl_days = 30\n' >ca.cnf
    : >index.txt
    printf 'keyUsage = critical, digitalSignature, nonRepudiation\nextendedKeyUsage = emailProtection\n' >signer.ext
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
        -out ca.pem -days 3650 -subj "/DC=org/DC=example/CN=Bench CA" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout signer.key \
        -out signer.csr -subj "/DC=org/DC=example/OU=People/CN=bench signer" 2>/dev/null
    openssl x509 -req -in signer.csr -CA ca.pem -CAkey ca.key -set_serial 4242 -days 365 \
        -extfile signer.ext -out signer.pem 2>/dev/null
    openssl ca -config ca.cnf -gencrl -keyfile ca.key -cert ca.pem -out ca.crl 2>/dev/null
    cp ca.pem certificates/bench.0
    cp ca.crl certificates/bench.r0
)
one_line() { openssl x509 -noout -subject -nameopt compat -in "$1" | sed 's/^subject=//'; }
SUBJECT=$(one_line "$PKI/signer.pem")
ISSUER=$(one_line "$PKI/ca.pem")

# ----- the site -----------------------------------------------------------------

SITE="$WORK/site"
OUT="$WORK/out"
mkdir -p "$SITE" "$OUT" "$WORK/manifests"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
python3 -m http.server --bind 127.0.0.1 --directory "$SITE" "$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
    curl -s -o /dev/null "$BASE/" && break
    sleep 0.1
done
curl -s -o /dev/null "$BASE/" || die "the HTTP server did not start"

# Signs a list that names $SITE/image.img (size and sha512 given), as
# version <version>, into $SITE/image.list.
publish_list() {
    local version=$1 size=$2 sha=$3
    local created expires
    created=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
    expires=$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)
    cat >"$PKI/list.json" <<EOF
{"hv:imagelist": {
  "dc:identifier": "5d7f3a2e-8c41-4b6e-9f0a-1e2d3c4b5a69", "dc:title": "Benchmark list",
  "dc:description": "generated", "dc:source": "https://example.org/",
  "dc:date:created": "$created", "dc:date:expires": "$expires",
  "hv:version": "$version", "hv:uri": "$BASE/image.list",
  "hv:endorser": {"hv:x509": {"hv:dn": "$SUBJECT", "hv:ca": "$ISSUER",
    "hv:email": "signer@example.org", "dc:creator": "bench"}},
  "hv:images": [{"hv:image": {
    "dc:identifier": "bench-image", "dc:title": "Benchmark image",
    "dc:description": "pseudo-random bytes", "hv:uri": "$BASE/image.img", "hv:size": $size,
    "sl:checksum:sha512": "$sha", "sl:arch": "x86_64", "sl:os": "Linux",
    "sl:osversion": "bench", "sl:comments": "", "hv:hypervisor": "KVM",
    "hv:version": "1", "hv:format": "raw"}}]
}}
EOF
    openssl smime -sign -signer "$PKI/signer.pem" -inkey "$PKI/signer.key" -md sha256 \
        -in "$PKI/list.json" -out "$SITE/image.list"
}

cat >"$WORK/manifests/bench.yaml" <<EOF
apiVersion: vmli.hepix.org/v1alpha1
kind: Endorser
metadata: {name: signer}
spec:
  credentials:
    - subject: "$SUBJECT"
      issuer: "$ISSUER"
---
apiVersion: vmli.hepix.org/v1alpha1
kind: ImageListSubscription
metadata: {name: bench}
spec:
  url: "$BASE/image.list"
  endorsers: [{name: signer}]
  imagePolicy: AutoSubscribe
EOF

# Generates a <MiB> image, takes its digest (which also warms the page
# cache) and signs a list for it.
prepare_image() {
    local mib=$1 version=$2
    rm -f "$SITE/image.img"
    log "generating a $mib MiB image..."
    make_image "$SITE/image.img" "$mib"
    SIZE=$((mib * 1048576))
    SHA=$(openssl dgst -sha512 -r "$SITE/image.img" | cut -d' ' -f1)
    publish_list "$version" "$SIZE" "$SHA"
}

# ----- the three methods ----------------------------------------------------------

# (a) with the binary <bin>. Sets A_NS (wall time), A_RSS (peak RSS, KiB),
# A_CPU (user + system seconds) and A_DL (the downloader's own seconds,
# from its log).
run_vmlisub() {
    local bin=$1
    rm -rf "$OUT/cache" "$OUT/state"
    local start end
    start=$(now_ns)
    if ! env -u http_proxy -u HTTP_PROXY -u all_proxy -u ALL_PROXY RUST_LOG=vmlisub=info \
        /usr/bin/time -f '%M %U %S' -o "$OUT/time" \
        "$bin" sync --once -f "$WORK/manifests" --cache-dir "$OUT/cache" \
        --ca-dir "$PKI/certificates" --state "$OUT/state/state.json" \
        >"$OUT/sync.stdout" 2>"$OUT/sync.stderr"; then
        cat "$OUT/sync.stdout" "$OUT/sync.stderr" >&2
        die "vmlisub sync failed"
    fi
    end=$(now_ns)
    local image="$OUT/cache/endorsed/default/bench/bench-image/image"
    if [[ ! -f $image ]] || [[ $(stat -c %s "$image") -ne $SIZE ]]; then
        cat "$OUT/sync.stdout" "$OUT/sync.stderr" >&2
        die "vmlisub did not endorse the image"
    fi
    A_NS=$((end - start))
    read -r A_RSS user sys < <(tail -n 1 "$OUT/time")
    A_CPU=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    # The downloader's own timing (request to fsynced, verified file).
    A_DL=$(grep -o 'seconds=[0-9.]*' "$OUT/sync.stderr" | tail -n 1 | cut -d= -f2 || true)
    rm -rf "$OUT/cache" "$OUT/state"
}

# (b) Sets B_NS.
run_curl_sha512sum() {
    rm -f "$OUT/curl.img"
    local start end sum
    start=$(now_ns)
    curl -s --noproxy '*' -o "$OUT/curl.img" "$BASE/image.img"
    sum=$(sha512sum "$OUT/curl.img" | cut -d' ' -f1)
    end=$(now_ns)
    [[ $sum == "$SHA" ]] || die "curl + sha512sum: digest mismatch"
    B_NS=$((end - start))
    rm -f "$OUT/curl.img"
}

# (c) Sets C_NS.
run_openssl_dgst() {
    local start end sum
    start=$(now_ns)
    sum=$(openssl dgst -sha512 -r "$SITE/image.img" | cut -d' ' -f1)
    end=$(now_ns)
    [[ $sum == "$SHA" ]] || die "openssl dgst: digest mismatch"
    C_NS=$((end - start))
}

# ----- the comparison --------------------------------------------------------------

need=$((SIZE_MIB * 1048576 * 3 + (1 << 30)))
(($(avail_bytes) >= need)) || die "need $((need >> 20)) MiB free in $WORK for a $SIZE_MIB MiB image"

prepare_image "$SIZE_MIB" 1
log "$(nproc) CPUs; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
log "running each method $RUNS times on $SIZE_MIB MiB..."
# MiB/s of the downloader alone, from its seconds (A_DL).
dl_mibps() {
    [[ -n $A_DL ]] || die "no 'image downloaded and verified' log line with seconds="
    awk -v b="$SIZE" -v s="$A_DL" 'BEGIN { printf "%.0f", (b / 1048576) / s }'
}

a=() a0=() b=() c=() d=() d0=() cpu=() cpu0=() rss=() rss0=() ac=() ab=() dc=() db=()
for run in $(seq "$RUNS"); do
    if [[ -n $BASELINE ]]; then
        run_vmlisub "$BASELINE"
        a0+=("$(mibps "$SIZE" "$A_NS")")
        d0+=("$(dl_mibps)")
        cpu0+=("$A_CPU")
        rss0+=("$A_RSS")
        log "  run $run: (a0) ${a0[-1]} MiB/s (downloader ${d0[-1]} MiB/s, CPU ${A_CPU} s)"
    fi
    run_vmlisub "$BIN"
    a+=("$(mibps "$SIZE" "$A_NS")")
    d+=("$(dl_mibps)")
    cpu+=("$A_CPU")
    rss+=("$A_RSS")
    run_curl_sha512sum
    b+=("$(mibps "$SIZE" "$B_NS")")
    run_openssl_dgst
    c+=("$(mibps "$SIZE" "$C_NS")")
    # Ratios within a run, less sensitive to a load that drifts between runs.
    ac+=("$(ratio "${a[-1]}" "${c[-1]}")")
    ab+=("$(ratio "${a[-1]}" "${b[-1]}")")
    dc+=("$(ratio "${d[-1]}" "${c[-1]}")")
    db+=("$(ratio "${d[-1]}" "${b[-1]}")")
    log "  run $run: (a) ${a[-1]} MiB/s (downloader ${d[-1]} MiB/s, CPU ${A_CPU} s), (b) ${b[-1]} MiB/s, (c) ${c[-1]} MiB/s"
done
A=$(median "${a[@]}")
B=$(median "${b[@]}")
C=$(median "${c[@]}")
D=$(median "${d[@]}")
RSS=$(median "${rss[@]}")

verdict() { awk -v v="$1" -v goal="$2" 'BEGIN { print (v >= goal) ? "ok" : "MISSED" }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

printf '\nDownload + verify of a %d MiB image over loopback HTTP (median of %d runs)\n\n' "$SIZE_MIB" "$RUNS"
printf '%-44s %10s   %s\n' "method" "MiB/s" "runs"
printf '%-44s %10s   %s\n' "(a) vmlisub sync --once" "$A" "${a[*]}"
printf '%-44s %10s   %s\n' "(d) of (a), the downloader alone" "$D" "${d[*]}"
if [[ -n $BASELINE ]]; then
    printf '%-44s %10s   %s\n' "(a0) baseline vmlisub sync --once" "$(median "${a0[@]}")" "${a0[*]}"
    printf '%-44s %10s   %s\n' "(d0) of (a0), the downloader alone" "$(median "${d0[@]}")" "${d0[*]}"
fi
printf '%-44s %10s   %s\n' "(b) curl -o file && sha512sum file" "$B" "${b[*]}"
printf '%-44s %10s   %s\n' "(c) openssl dgst -sha512 (page-cached file)" "$C" "${c[*]}"
printf '\n'
printf '%-44s %10s   goal >= 0.9   %s\n' "(a)/(c)" "$(ratio "$A" "$C")" "$(verdict "$(ratio "$A" "$C")" 0.9)"
printf '%-44s %10s   goal >= 1.6   %s\n' "(a)/(b)" "$(ratio "$A" "$B")" "$(verdict "$(ratio "$A" "$B")" 1.6)"
printf '%-44s %10s\n' "(d)/(c)" "$(ratio "$D" "$C")"
printf '%-44s %10s\n' "(d)/(b)" "$(ratio "$D" "$B")"
printf '%-44s %10s   runs: %s\n' "(a)/(c) within each run, median" "$(median "${ac[@]}")" "${ac[*]}"
printf '%-44s %10s   runs: %s\n' "(a)/(b) within each run, median" "$(median "${ab[@]}")" "${ab[*]}"
printf '%-44s %10s   runs: %s\n' "(d)/(c) within each run, median" "$(median "${dc[@]}")" "${dc[*]}"
printf '%-44s %10s   runs: %s\n' "(d)/(b) within each run, median" "$(median "${db[@]}")" "${db[*]}"
printf '%-44s %10s   runs: %s\n' "CPU seconds of (a), user + system" "$(median "${cpu[@]}")" "${cpu[*]}"
printf '%-44s %10s   runs: %s KiB\n' "peak RSS of (a), MiB" "$(mib "$RSS")" "${rss[*]}"
if [[ -n $BASELINE ]]; then
    printf '%-44s %10s\n' "(a)/(a0)" "$(ratio "$A" "$(median "${a0[@]}")")"
    printf '%-44s %10s\n' "(d)/(d0)" "$(ratio "$D" "$(median "${d0[@]}")")"
    printf '%-44s %10s   runs: %s\n' "CPU seconds of (a0), user + system" "$(median "${cpu0[@]}")" "${cpu0[*]}"
    printf '%-44s %10s   runs: %s KiB\n' "peak RSS of (a0), MiB" "$(mib "$(median "${rss0[@]}")")" "${rss0[*]}"
fi

# ----- peak RSS on a large image ------------------------------------------------------

if ((LARGE_MIB > 0)); then
    need=$((LARGE_MIB * 1048576 * 2 + (1 << 30)))
    if (($(avail_bytes) + SIZE >= need)); then
        prepare_image "$LARGE_MIB" 2
        log "running (a) on $LARGE_MIB MiB..."
        run_vmlisub "$BIN"
        printf '%-44s %10s   goal <= 64    %s\n' "peak RSS of (a) at $LARGE_MIB MiB, MiB" \
            "$(mib "$A_RSS")" \
            "$(awk -v k="$A_RSS" 'BEGIN { print (k <= 65536) ? "ok" : "MISSED" }')"
        printf '%-44s %10s\n' "(a) at $LARGE_MIB MiB, MiB/s" "$(mibps "$SIZE" "$A_NS")"
        printf '%-44s %10s\n' "(d) at $LARGE_MIB MiB, MiB/s" "$(dl_mibps)"
    else
        printf 'peak RSS at %d MiB: skipped, needs %d MiB free in %s, has %d MiB\n' \
            "$LARGE_MIB" "$((need >> 20))" "$WORK" "$(($(avail_bytes) >> 20))"
    fi
fi

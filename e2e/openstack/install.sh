#!/usr/bin/env bash
# Installs the OpenStack services the Glance export tests run against:
# Glance (image service) and Keystone (identity: tokens and application
# credentials) from PyPI, served by gunicorn, into one private virtualenv
# under ${VMLISUB_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/vmlisub-tools},
# outside the repository, like cargo-deny and hadolint (e2e/tests/*.sh).
# Installed once; later runs reuse it. Prints the virtualenv's path.
#
# The tests (operator/tests/glance_export.rs) find it at the same path, or
# at $VMLISUB_OPENSTACK_VENV.
set -euo pipefail

GLANCE_VERSION=33.0.0
KEYSTONE_VERSION=28.1.0
GUNICORN_VERSION=27.0.1
tools="${VMLISUB_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/vmlisub-tools}"
venv="${VMLISUB_OPENSTACK_VENV:-$tools/openstack-glance-$GLANCE_VERSION-keystone-$KEYSTONE_VERSION}"

# Built in place (console scripts carry the virtualenv's absolute path);
# the stamp file marks a complete installation.
stamp="$venv/.vmlisub-complete"
if [ ! -f "$stamp" ]; then
  start=$(date +%s)
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "glance==$GLANCE_VERSION" "keystone==$KEYSTONE_VERSION" "gunicorn==$GUNICORN_VERSION"
  touch "$stamp"
  echo "openstack: installed Glance $GLANCE_VERSION and Keystone $KEYSTONE_VERSION in $(( $(date +%s) - start ))s" >&2
fi
echo "$venv"

#!/usr/bin/env bash
# End-to-end tests (`make e2e`): build the pinned control plane (cached),
# start a throw-away cluster on 127.0.0.1 with a node on this machine
# (e2e/cluster up --node: containerd, kubelet, kube-scheduler, kube-proxy;
# needs root), build the operator's image from the release binary and import
# it into the node, run the vmlisub-e2e tests against it, and always tear the
# cluster down. Exits with the tests' status.
#
# Environment:
#   VMLISUB_E2E_EXTERNAL=1      use the cluster of the current KUBECONFIG (kind,
#                               k3d, ...) instead of starting one; nothing is
#                               built, started or stopped
#   VMLISUB_E2E_TEST_THREADS    parallel tests per test binary (default 1)
#   VMLISUB_E2E_KEEP=1          leave the local cluster running afterwards
#                               (stop it with e2e/cluster down)
#   VMLISUB_E2E_NODE=0          no node: the control plane only, the node tests
#                               (e2e/tests/node.rs) skip; for developers
#                               without root. CI never sets it (with CI set the
#                               node tests fail instead of skipping)
#   extra arguments are passed to the test binaries, e.g. `run.sh smoke_`
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
CARGO="${CARGO:-cargo}"
start=$(date +%s)

# The tests must run, not skip: a missing cluster fails them.
export VMLISUB_E2E=1 VMLISUB_E2E_REQUIRE=1

if [ "${VMLISUB_E2E_EXTERNAL:-}" = 1 ]; then
  [ -n "${KUBECONFIG:-}" ] || [ -f "$HOME/.kube/config" ] ||
    { echo "run.sh: VMLISUB_E2E_EXTERNAL=1 needs KUBECONFIG (or ~/.kube/config)" >&2; exit 1; }
  echo "run.sh: testing against the external cluster of KUBECONFIG=${KUBECONFIG:-~/.kube/config}" >&2
else
  # A cluster record of our own, so this run never shares (or stops) a
  # cluster started by hand with `e2e/cluster up` or by another run.
  export VMLISUB_E2E_CLUSTER_ENV
  VMLISUB_E2E_CLUSTER_ENV="$(mktemp -d "${TMPDIR:-/tmp}/vmlisub-e2e-run.XXXXXX")/cluster.env"
  # shellcheck disable=SC2317 # called from the EXIT trap
  cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "${VMLISUB_E2E_KEEP:-}" = 1 ]; then
      echo "run.sh: cluster kept; stop it with: VMLISUB_E2E_CLUSTER_ENV=$VMLISUB_E2E_CLUSTER_ENV e2e/cluster down" >&2
    else
      "$here/cluster" down >/dev/null || rc=1
      rm -rf -- "$(dirname "$VMLISUB_E2E_CLUSTER_ENV")"
    fi
    echo "run.sh: finished in $(( $(date +%s) - start ))s (exit $rc)" >&2
    exit "$rc"
  }
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  "$here/build-control-plane.sh" >/dev/null
  # Compile the tests before the cluster starts: both want the CPU.
  "$CARGO" test -p vmlisub-e2e --locked --no-run
  if [ "${VMLISUB_E2E_NODE:-1}" = 0 ]; then
    "$here/cluster" up
  else
    # The operator's image, from the release binary (the Dockerfile's build).
    "$CARGO" build --release --locked -p vmlisub
    export VMLISUB_E2E_NODE_IMAGES
    VMLISUB_E2E_NODE_IMAGES="$(dirname "$VMLISUB_E2E_CLUSTER_ENV")/images"
    "$here/node/build-images.sh" "$VMLISUB_E2E_NODE_IMAGES" \
      "${CARGO_TARGET_DIR:-$PWD/target}/release/vmlisub"
    "$here/cluster" up --node
    "$here/cluster" import "$VMLISUB_E2E_NODE_IMAGES/vmlisub.tar" localhost/vmlisub
  fi
  eval "$("$here/cluster" env)"
  export KUBECONFIG
  unset VMLISUB_E2E_KUBECONFIG
fi

set +e
"$CARGO" test -p vmlisub-e2e --locked -- --test-threads="${VMLISUB_E2E_TEST_THREADS:-1}" "$@"
rc=$?
set -e
if [ "$rc" -ne 0 ] && [ "${VMLISUB_E2E_EXTERNAL:-}" != 1 ]; then
  echo "run.sh: tests failed; control-plane logs:" >&2
  "$here/cluster" logs 30 >&2 || true
fi
exit "$rc"

#!/usr/bin/env bash
# Bring up the local e2e control plane and show what is in it. The cluster
# keeps running: use it with `eval "$(e2e/cluster env)"; kubectl ...`, and stop
# it with `e2e/cluster down`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

"$here/cluster" up
eval "$("$here/cluster" env)"
export KUBECONFIG

show() { echo; echo "\$ $*"; "$@"; }
show kubectl version
echo; echo "\$ kubectl get --raw /readyz"; kubectl get --raw /readyz; echo
show kubectl get ns,crd,sa -A
"$here/cluster" status

cat <<MSG

The cluster is still running (no nodes: pods are never scheduled).
  eval "\$($here/cluster env)"     # point kubectl at it
  $here/cluster logs              # component logs
  $here/cluster down              # stop it and remove its state
MSG

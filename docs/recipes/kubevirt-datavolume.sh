#!/usr/bin/env bash
# Print a CDI DataVolume that imports an Available ImageSubscription's
# verified image from the vmlisub artifact server, with CDI's own sha512
# check (`checksum`, CDI v1.65+). Apply it with kubectl:
#
#   docs/recipes/kubevirt-datavolume.sh -n my-vms cernvm-4 [DV_NAME] [SIZE] | kubectl apply -f -
#
# Fails (exit 1, nothing printed) unless the ImageSubscription is Available
# with an artifact URL and a sha512 digest.
set -euo pipefail

namespace=""
if [ "${1:-}" = "-n" ]; then namespace="$2"; shift 2; fi
[ "$#" -ge 1 ] || { echo "usage: $0 [-n NAMESPACE] IMAGESUBSCRIPTION [DV_NAME] [SIZE]" >&2; exit 2; }
sub="$1"; dv="${2:-$1}"; size="${3:-20Gi}"
ns_args=()
[ -n "$namespace" ] && ns_args=(-n "$namespace")

field() { kubectl get imagesubscriptions.vmli.hepix.org "$sub" "${ns_args[@]}" -o "jsonpath=$1"; }

phase="$(field '{.status.phase}')"
url="$(field '{.status.artifact.url}')"
digest="$(field '{.status.artifact.digest}')"
ns="$(field '{.metadata.namespace}')"

[ "$phase" = Available ] || { echo "$sub: phase is '${phase:-none}', not Available" >&2; exit 1; }
[[ "$url" =~ ^https?://[^[:space:]]+$ ]] || { echo "$sub: no artifact URL in status (is --artifact-base-url set?)" >&2; exit 1; }
[[ "$digest" =~ ^sha512:[0-9a-f]{128}$ ]] || { echo "$sub: unexpected artifact digest '$digest'" >&2; exit 1; }
[[ "$dv" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || { echo "bad DataVolume name '$dv'" >&2; exit 2; }
[[ "$size" =~ ^[0-9]+(\.[0-9]+)?([KMGTPE]i?)?$ ]] || { echo "bad size '$size'" >&2; exit 2; }

cat <<YAML
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: $dv
  namespace: $ns
  labels:
    vmli.hepix.org/image-subscription: $sub
spec:
  source:
    http:
      url: "$url"
      checksum: "$digest"
  storage:
    resources:
      requests:
        storage: $size
YAML

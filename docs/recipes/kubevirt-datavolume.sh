#!/usr/bin/env bash
# Fallback for a one-off import: the operator's export (spec.export.kubevirt,
# see kubevirt.md) creates DataVolumes and a DataSource for every version.
# Print a CDI DataVolume that imports an Available ImageSubscription's
# verified image from the vmlisub artifact server, with CDI's own sha512
# check (`checksum`, CDI v1.65+). Apply it with kubectl:
#
#   docs/recipes/kubevirt-datavolume.sh -n my-vms [-t SECRET] cernvm-4 [DV_NAME] [SIZE] | kubectl apply -f -
#
# -t SECRET: a Secret whose value is the header line
# "Authorization: Bearer <ServiceAccount token>" for the artifact server
# (CDI's secretExtraHeaders; see kubevirt.md, "Access to the artifact server").
#
# Fails (exit 1, nothing printed) unless the ImageSubscription is Available
# with a sha512 digest and an artifact URL of the artifact server's form
# /images/<namespace>/<ImageListSubscription>/<identifier>.
set -euo pipefail

namespace=""
token_secret=""
while [ "$#" -ge 2 ]; do
  case "$1" in
    -n) namespace="$2"; shift 2 ;;
    -t) token_secret="$2"; shift 2 ;;
    *) break ;;
  esac
done
[ "$#" -ge 1 ] || { echo "usage: $0 [-n NAMESPACE] [-t SECRET] IMAGESUBSCRIPTION [DV_NAME] [SIZE]" >&2; exit 2; }
sub="$1"; dv="${2:-$1}"; size="${3:-20Gi}"
ns_args=()
[ -n "$namespace" ] && ns_args=(-n "$namespace")

field() { kubectl get imagesubscriptions.vmli.hepix.org "$sub" "${ns_args[@]}" -o "jsonpath=$1"; }

phase="$(field '{.status.phase}')"
url="$(field '{.status.artifact.url}')"
digest="$(field '{.status.artifact.digest}')"
ns="$(field '{.metadata.namespace}')"
list="$(field '{.spec.subscriptionRef.name}')"

[ "$phase" = Available ] || { echo "$sub: phase is '${phase:-none}', not Available" >&2; exit 1; }
[[ "$url" =~ ^https?://[^[:space:]]+$ ]] || { echo "$sub: no artifact URL in status (is --artifact-base-url set?)" >&2; exit 1; }
[[ "$url" == *"/images/$ns/$list/"* ]] || { echo "$sub: artifact URL '$url' is not under /images/$ns/$list/" >&2; exit 1; }
[[ "$digest" =~ ^sha512:[0-9a-f]{128}$ ]] || { echo "$sub: unexpected artifact digest '$digest'" >&2; exit 1; }
[[ "$dv" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || { echo "bad DataVolume name '$dv'" >&2; exit 2; }
[[ "$size" =~ ^[0-9]+(\.[0-9]+)?([KMGTPE]i?)?$ ]] || { echo "bad size '$size'" >&2; exit 2; }
[ -z "$token_secret" ] || [[ "$token_secret" =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] ||
  { echo "bad Secret name '$token_secret'" >&2; exit 2; }
headers=""
if [ -n "$token_secret" ]; then
  headers="
      secretExtraHeaders:
        - $token_secret"
fi

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
      checksum: "$digest"$headers
  storage:
    resources:
      requests:
        storage: $size
YAML

#!/usr/bin/env bash
# Import an Available ImageSubscription's verified image into OpenStack
# Glance with interoperable image import (web-download from the vmlisub
# artifact server), then check that Glance's own sha512 of the stored data
# (os_hash_algo / os_hash_value) equals the signed list's sha512.
#
#   docs/recipes/openstack-import.sh -n my-vms cernvm-4 [GLANCE_IMAGE_NAME]
#
# Needs kubectl (access to the ImageSubscription) and the glance and
# openstack clients with OS_* credentials in the environment. Exits 1 when
# the import fails or the hashes differ (the image is then deactivated).
set -euo pipefail

namespace=""
if [ "${1:-}" = "-n" ]; then namespace="$2"; shift 2; fi
[ "$#" -ge 1 ] || { echo "usage: $0 [-n NAMESPACE] IMAGESUBSCRIPTION [GLANCE_IMAGE_NAME]" >&2; exit 2; }
sub="$1"; name="${2:-$1}"
timeout_s="${IMPORT_TIMEOUT:-3600}"
ns_args=()
[ -n "$namespace" ] && ns_args=(-n "$namespace")

field() { kubectl get imagesubscriptions.vmli.hepix.org "$sub" "${ns_args[@]}" -o "jsonpath=$1"; }

phase="$(field '{.status.phase}')"
url="$(field '{.status.artifact.url}')"
digest="$(field '{.status.artifact.digest}')"
format="$(field '{.status.image.format}' | tr '[:upper:]' '[:lower:]')"

[ "$phase" = Available ] || { echo "$sub: phase is '${phase:-none}', not Available" >&2; exit 1; }
[[ "$url" =~ ^https?://[^[:space:]]+$ ]] || { echo "$sub: no artifact URL in status" >&2; exit 1; }
[[ "$digest" =~ ^sha512:[0-9a-f]{128}$ ]] || { echo "$sub: unexpected artifact digest '$digest'" >&2; exit 1; }
expected="${digest#sha512:}"
case "$format" in
  qcow2|raw|vmdk|vdi|vhd|vhdx|iso|ploop) disk_format="$format" ;;
  ova) echo "$sub: OVA archives need unpacking before Glance can boot them" >&2; exit 1 ;;
  *) disk_format="${DISK_FORMAT:-qcow2}"; echo "$sub: format '${format:-unset}', using disk format $disk_format" >&2 ;;
esac

# Create the image record and let Glance download the data itself.
id="$(glance image-create-via-import --name "$name" \
        --disk-format "$disk_format" --container-format bare \
        --property "vmli_hepix_org_subscription=${namespace:-default}/$sub" \
        --property "vmli_hepix_org_sha512=$expected" \
        --import-method web-download --uri "$url" | awk '$2 == "id" { print $4 }')"
[ -n "$id" ] || { echo "glance returned no image id" >&2; exit 1; }
echo "image $id: importing from $url" >&2

deadline=$(( $(date +%s) + timeout_s ))
while :; do
  status="$(openstack image show -f value -c status "$id")"
  case "$status" in
    active) break ;;
    killed|deleted|deactivated) echo "image $id: import ended in status $status" >&2; exit 1 ;;
  esac
  [ "$(date +%s)" -lt "$deadline" ] || { echo "image $id: still $status after ${timeout_s}s" >&2; exit 1; }
  sleep 10
done

algo="$(openstack image show -f value -c os_hash_algo "$id")"
value="$(openstack image show -f value -c os_hash_value "$id")"
if [ "$algo" != sha512 ] || [ "$value" != "$expected" ]; then
  echo "image $id: Glance $algo:$value does not match the list's sha512:$expected; deactivating it" >&2
  openstack image set --deactivate "$id" >&2 || true
  exit 1
fi
echo "image $id: active, Glance sha512 matches the signed list" >&2
echo "$id"

# shellcheck shell=bash
# The node of the e2e cluster (`e2e/cluster up --node`): containerd + runc,
# a CNI bridge, kubelet, kube-scheduler and kube-proxy (iptables mode) on this
# machine, as root. Sourced by e2e/cluster; uses its STATE_DIR, spawn,
# wait_for, free_port, die and the cluster's PKI and kubeconfigs.
#
# What it touches outside STATE_DIR, and how `down` gives it back:
#   - a bridge vmle2e<hex> with a private /24 (10.203.X.0/24, X free) and
#     route_localnet on it                         -> deleted
#   - pod network namespaces (under the containerd state dir) -> unmounted
#   - cgroups under /<controller>/vmlisub-e2e-<hex> -> processes killed, rmdir
#   - iptables: chain VMLISUB-E2E-<hex> (nat; the pods' route to the API
#     server) and kube-proxy's KUBE-* chains       -> removed
#   - net.ipv4.ip_forward and bridge-nf-call-iptables set to 1 -> restored
#   - hostPath volumes of the hostpath provisioner (/tmp/hostpath_pv/<uuid>)
#     -> the ones of this cluster's PVs removed
#   - /run/vmlisub-e2e-node.owner: one node per machine (kube-proxy's chains
#     are global)                                  -> removed
# Everything else (containerd root and state, kubelet root, pod logs, local
# volumes, images) lives in STATE_DIR.

NODE_NAME=vmlisub-e2e-node
NODE_OWNER=/run/vmlisub-e2e-node.owner
# The API server's Service IP (first address of --service-cluster-ip-range).
KUBERNETES_SERVICE_IP=10.0.0.1
NODE_IMAGES="localhost/vmlisub-e2e/pause:1 localhost/vmlisub-e2e/busybox:1"

node_components=(containerd kubelet kube-scheduler kube-proxy)

cni_bin_dir() {
  local d
  for d in /usr/lib/cni /opt/cni/bin; do
    [ -x "$d/bridge" ] && [ -x "$d/host-local" ] && { printf '%s\n' "$d"; return 0; }
  done
  return 1
}

node_preflight() {
  [ "$(id -u)" = 0 ] || die "--node needs root (mounts, cgroups, network namespaces)"
  local t
  for t in containerd containerd-shim-runc-v2 runc ctr ip iptables umoci cc busybox mountpoint; do
    command -v "$t" >/dev/null 2>&1 ||
      die "--node needs $t (apt-get install containerd runc containernetworking-plugins iptables umoci busybox-static gcc)"
  done
  cni_bin_dir >/dev/null || die "--node needs the CNI plugins (apt-get install containernetworking-plugins)"
  [ -d /sys/fs/cgroup/memory ] || [ -f /sys/fs/cgroup/cgroup.controllers ] || die "no cgroup file system at /sys/fs/cgroup"
  if [ -f "$NODE_OWNER" ]; then
    local other
    other="$(cat "$NODE_OWNER")"
    if [ -d "$other" ]; then
      die "another e2e node is up ($other; stop it with e2e/cluster down); kube-proxy's iptables chains are per machine"
    fi
    rm -f -- "$NODE_OWNER"
  fi
}

# node_env_set NAME VALUE: remember a node setting in STATE_DIR/node.env (read
# back by node_down, also after a failed start).
node_env_set() {
  printf -v "$1" '%s' "$2"
  printf "%s='%s'\n" "$1" "$2" >>"$STATE_DIR/node.env"
}

# cgroup directories of our root in every mounted hierarchy.
node_cgroup_dirs() {
  local d
  [ -n "${NODE_CGROUP:-}" ] || return 0
  for d in /sys/fs/cgroup/*/"$NODE_CGROUP" /sys/fs/cgroup/"$NODE_CGROUP"; do
    [ -d "$d" ] && printf '%s\n' "$d"
  done
  return 0
}

# A /24 in 10.203.0.0/16 that no address or route of this machine uses.
pick_pod_subnet() {
  local x used
  used="$(ip -4 route show table all 2>/dev/null; ip -4 addr show 2>/dev/null)"
  for _ in $(seq 1 100); do
    x=$((1 + RANDOM % 254))
    case "$used" in *"10.203.$x."*) continue ;; esac
    printf '%s\n' "$x"
    return 0
  done
  die "no free 10.203.X.0/24 for the pod network"
}

node_pki() {
  local pki="$STATE_DIR/pki"
  (
    cd "$pki"
    umask 077
    key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
    leaf() {
      key "$1.key"
      openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
      {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$3"
        [ -z "${4:-}" ] || echo "subjectAltName=$4"
      } >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
        -sha256 -days 7 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
    }
    leaf kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
    leaf kubelet-serving "/CN=$NODE_NAME" serverAuth "IP:$NODE_IP,IP:127.0.0.1,DNS:$NODE_NAME"
    leaf kube-scheduler "/CN=system:kube-scheduler" clientAuth
    leaf kube-scheduler-serving "/CN=kube-scheduler" serverAuth "IP:127.0.0.1,DNS:localhost"
    leaf kube-proxy "/CN=system:kube-proxy" clientAuth
  )
  kubeconfig kubelet
  kubeconfig kube-scheduler
  kubeconfig kube-proxy
}

# Before the API server starts: names, addresses, ports and certificates.
node_prepare() {
  node_preflight
  : >"$STATE_DIR/node.env"
  chmod 600 "$STATE_DIR/node.env"
  printf '%s\n' "$STATE_DIR" >"$NODE_OWNER"
  node_env_set NODE_OWNED 1
  local suffix x
  suffix="$(openssl rand -hex 3)"
  x="$(pick_pod_subnet)"
  node_env_set NODE_BRIDGE "vmle2e$suffix"
  node_env_set NODE_CGROUP "vmlisub-e2e-$suffix"
  node_env_set NODE_CHAIN "VMLISUB-E2E-${suffix^^}"
  node_env_set POD_SUBNET "10.203.$x.0/24"
  node_env_set NODE_IP "10.203.$x.1"
  free_port KUBELET_PORT
  free_port KUBELET_HEALTHZ_PORT
  free_port SCHEDULER_PORT
  free_port PROXY_HEALTHZ_PORT
  free_port PROXY_METRICS_PORT
  node_env_set KUBELET_PORT "$KUBELET_PORT"
  node_env_set KUBELET_HEALTHZ_PORT "$KUBELET_HEALTHZ_PORT"
  node_env_set SCHEDULER_PORT "$SCHEDULER_PORT"
  node_env_set PROXY_HEALTHZ_PORT "$PROXY_HEALTHZ_PORT"
  node_env_set PROXY_METRICS_PORT "$PROXY_METRICS_PORT"
  node_pki
}

# Extra flags of the API server for a node: how it reaches the kubelet.
node_apiserver_flags() {
  local pki="$STATE_DIR/pki"
  printf '%s\n' \
    "--kubelet-client-certificate=$pki/admin.crt" \
    "--kubelet-client-key=$pki/admin.key" \
    "--kubelet-certificate-authority=$pki/ca.crt" \
    "--kubelet-preferred-address-types=InternalIP" \
    "--enable-admission-plugins=NodeRestriction"
}

node_kcm_flags() {
  printf '%s\n' "--enable-hostpath-provisioner=true"
}

node_network() {
  # The bridge exists before the CNI plugin runs: it carries the node's
  # address (the kubelet's, and the gateway of the pods).
  ip link add "$NODE_BRIDGE" type bridge
  ip addr add "$NODE_IP/24" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
  # Pods reach the API server (127.0.0.1 only) through its Service IP:
  # DNAT to loopback, which the kernel accepts from this bridge only.
  sysctl -qw "net.ipv4.conf.$NODE_BRIDGE.route_localnet=1"
  node_env_set SAVED_IP_FORWARD "$(cat /proc/sys/net/ipv4/ip_forward)"
  sysctl -qw net.ipv4.ip_forward=1
  if [ -f /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
    # Service traffic between two pods of the bridge must pass iptables
    # (kube-proxy's DNAT is undone on the way back).
    node_env_set SAVED_BRIDGE_NF "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables)"
    sysctl -qw net.bridge.bridge-nf-call-iptables=1
  fi
  iptables -w -t nat -N "$NODE_CHAIN"
  iptables -w -t nat -A "$NODE_CHAIN" -d "$KUBERNETES_SERVICE_IP/32" -p tcp --dport 443 \
    -j DNAT --to-destination "127.0.0.1:$APISERVER_PORT"
  iptables -w -t nat -I PREROUTING 1 -i "$NODE_BRIDGE" -j "$NODE_CHAIN"

  mkdir -p "$STATE_DIR/cni/net.d" "$STATE_DIR/cni/ipam"
  cat >"$STATE_DIR/cni/net.d/10-vmlisub-e2e.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "vmlisub-e2e",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$NODE_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$STATE_DIR/cni/ipam",
        "ranges": [[{ "subnet": "$POD_SUBNET", "gateway": "$NODE_IP" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    }
  ]
}
EOF
}

node_cgroups() {
  local c
  for c in /sys/fs/cgroup/*/; do
    [ -f "$c/cgroup.procs" ] || continue
    mkdir -p "$c$NODE_CGROUP"
  done
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    mkdir -p "/sys/fs/cgroup/$NODE_CGROUP"
  fi
}

node_containerd() {
  local d="$STATE_DIR/containerd" cni
  cni="$(cni_bin_dir)"
  mkdir -p "$d"
  cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/vmlisub-e2e/pause:1"
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  enable_selinux = false
  # Lowering a process's oom_score_adj (the kubelet asks -998 for sandboxes)
  # needs CAP_SYS_RESOURCE, which a sandboxed root may lack: never go below
  # containerd's own value.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$d/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$cni"
    conf_dir = "$STATE_DIR/cni/net.d"
    max_conf_num = 1
EOF
  spawn containerd containerd --config "$d/config.toml" --log-level warn
  wait_for containerd ctr_quiet --address "$d/containerd.sock" version
}

ctr_quiet() { ctr "$@" >/dev/null 2>&1; }

ctr_node() { ctr --address "$STATE_DIR/containerd/containerd.sock" --namespace k8s.io "$@"; }

# Build (when missing) and import the pause and busybox images.
node_images() {
  local imgs="$STATE_DIR/images" name
  "$here/node/build-images.sh" "$imgs" >"$STATE_DIR/logs/build-images.log" 2>&1 ||
    { cat "$STATE_DIR/logs/build-images.log" >&2; die "building the node images failed"; }
  for name in pause busybox; do
    ctr_node images import --base-name "localhost/vmlisub-e2e/$name" "$imgs/$name.tar" >/dev/null
  done
}

node_kubelet() {
  local pki="$STATE_DIR/pki" d="$STATE_DIR/kubelet"
  mkdir -p "$d/root" "$STATE_DIR/pod-logs"
  cat >"$d/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The machine's cgroups are v1/hybrid.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$NODE_CGROUP
containerRuntimeEndpoint: unix://$STATE_DIR/containerd/containerd.sock
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $pki/ca.crt
authorization:
  mode: Webhook
podLogsDir: $STATE_DIR/pod-logs
resolvConf: ""
failSwapOn: false
# The machine's disk is shared with other work and may be nearly full:
# evict only at the very end (absolute thresholds; percentages of a big disk
# are gigabytes), never collect images for disk use.
evictionHard:
  memory.available: "50Mi"
  nodefs.available: "100Mi"
  nodefs.inodesFree: "1%"
  imagefs.available: "100Mi"
# ... and forget a passing pressure at once (default: 5 minutes of refusing
# every pod after the disk recovered).
evictionPressureTransitionPeriod: 10s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
registerNode: true
maxPods: 30
EOF
  spawn kubelet "$BIN_DIR/kubelet" \
    --config="$d/config.yaml" \
    --kubeconfig="$STATE_DIR/kubelet.kubeconfig" \
    --root-dir="$d/root" \
    --hostname-override="$NODE_NAME" \
    --node-ip="$NODE_IP" \
    --v=1
  wait_for kubelet curl -sf --max-time 2 "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz" -o /dev/null
  wait_for kubelet node_ready
}

api() { # METHOD PATH [BODY]
  curl -sf --max-time 10 --cacert "$STATE_DIR/pki/ca.crt" \
    --cert "$STATE_DIR/pki/admin.crt" --key "$STATE_DIR/pki/admin.key" \
    -X "$1" -H 'Content-Type: application/json' ${3:+--data-binary "$3"} \
    "https://127.0.0.1:$APISERVER_PORT$2"
}

node_ready() {
  api GET "/api/v1/nodes/$NODE_NAME" 2>/dev/null | tr -d ' \n' | grep -qF '"type":"Ready","status":"True"'
}

node_scheduler() {
  local pki="$STATE_DIR/pki"
  spawn kube-scheduler "$BIN_DIR/kube-scheduler" \
    --kubeconfig="$STATE_DIR/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig="$STATE_DIR/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig="$STATE_DIR/kube-scheduler.kubeconfig" \
    --bind-address=127.0.0.1 \
    --secure-port="$SCHEDULER_PORT" \
    --tls-cert-file="$pki/kube-scheduler-serving.crt" \
    --tls-private-key-file="$pki/kube-scheduler-serving.key" \
    --leader-elect=false \
    --profiling=false \
    --v=1
  wait_for kube-scheduler curl -sf --max-time 2 --cacert "$pki/ca.crt" \
    "https://127.0.0.1:$SCHEDULER_PORT/healthz" -o /dev/null
}

node_proxy() {
  cat >"$STATE_DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: $STATE_DIR/kube-proxy.kubeconfig
hostnameOverride: $NODE_NAME
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
clusterCIDR: $POD_SUBNET
nodePortAddresses: ["$NODE_IP/32"]
# Leave the machine's conntrack table size alone.
conntrack:
  maxPerCore: 0
  min: 0
EOF
  spawn kube-proxy "$BIN_DIR/kube-proxy" --config="$STATE_DIR/kube-proxy.yaml" --v=1
  wait_for kube-proxy curl -sf --max-time 2 "http://127.0.0.1:$PROXY_HEALTHZ_PORT/healthz" -o /dev/null
}

# Storage: a default StorageClass of local volumes (kubelet applies fsGroup
# to them, so the chart's non-root pod can write) backed by 16 directories in
# STATE_DIR/volumes (reclaim policy Retain: a released one is not reused), and the hostpath provisioner's class (dynamic, but its
# root-owned 0750 directories are not writable for a non-root pod: hostPath
# volumes get no fsGroup).
node_storage() {
  local i vol
  api POST /apis/storage.k8s.io/v1/storageclasses '{
    "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
    "metadata": {"name": "local", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
    "provisioner": "kubernetes.io/no-provisioner",
    "volumeBindingMode": "WaitForFirstConsumer",
    "reclaimPolicy": "Retain"}' >/dev/null
  api POST /apis/storage.k8s.io/v1/storageclasses '{
    "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
    "metadata": {"name": "hostpath"},
    "provisioner": "kubernetes.io/host-path",
    "reclaimPolicy": "Delete"}' >/dev/null
  for i in $(seq 1 16); do
    vol="$STATE_DIR/volumes/pv$i"
    mkdir -p "$vol"
    api POST /api/v1/persistentvolumes '{
      "apiVersion": "v1", "kind": "PersistentVolume",
      "metadata": {"name": "vmlisub-e2e-local-'"$i"'", "labels": {"e2e.vmli.hepix.org/volume": "local"}},
      "spec": {
        "capacity": {"storage": "100Gi"},
        "accessModes": ["ReadWriteOnce", "ReadWriteMany"],
        "persistentVolumeReclaimPolicy": "Retain",
        "storageClassName": "local",
        "local": {"path": "'"$vol"'"},
        "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
          {"key": "kubernetes.io/hostname", "operator": "In", "values": ["'"$NODE_NAME"'"]}]}]}}}}' >/dev/null
  done
}

# After the control plane is up (the record's variables are set).
node_up() {
  node_cgroups
  node_network
  node_containerd
  node_images
  node_kubelet
  node_scheduler
  node_proxy
  node_storage
}

# ----------------------------------------------------------------- stopping

# Signal component $1's process group and wait for it (up to $2 tenths of a
# second), then SIGKILL.
node_stop() {
  local pid i
  pid="$(live_pid "$1")"
  [ -n "$pid" ] || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < ${2:-100}; i++)); do
    running "$pid" || break
    sleep 0.1
  done
  if running "$pid"; then
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# Processes whose command line names STATE_DIR (containerd shims) or that
# live in our cgroups (containers).
node_leftover_pids() {
  local p d
  for p in /proc/[0-9]*; do
    tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "$STATE_DIR/containerd" && printf '%s\n' "${p#/proc/}"
  done
  while read -r d; do
    find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
  done < <(node_cgroup_dirs)
}

# Remove the KUBE-* chains of kube-proxy and the kubelet (KUBE-FIREWALL,
# KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT, ...) from every table, IPv4 and
# IPv6: first the jumps from the built-in chains, then the chains.
node_kube_chains_cleanup() {
  local ipt table chains c
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null 2>&1 || continue
    for table in nat filter mangle; do
      # xargs honours the quotes of the rule comments.
      "$ipt" -w -t "$table" -S 2>/dev/null |
        grep -E '^-A (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) .*-j KUBE-' |
        sed 's/^-A /-D /' | xargs -r -L1 "$ipt" -w -t "$table" 2>/dev/null || true
      chains="$("$ipt" -w -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ { print $2 }')"
      for c in $chains; do "$ipt" -w -t "$table" -F "$c" 2>/dev/null || true; done
      for c in $chains; do "$ipt" -w -t "$table" -X "$c" 2>/dev/null || true; done
    done
  done
}

node_down() {
  [ -n "${STATE_DIR:-}" ] && [ -f "$STATE_DIR/node.env" ] || return 0
  # shellcheck disable=SC1091
  . "$STATE_DIR/node.env"
  local hostpaths="" sock="$STATE_DIR/containerd/containerd.sock" i pids m
  # hostPath volumes the provisioner made for this cluster (the API server
  # still runs).
  if [ -n "${APISERVER_PORT:-}" ]; then
    hostpaths="$(api GET /api/v1/persistentvolumes 2>/dev/null |
      grep -o '"path": *"/tmp/hostpath_pv/[0-9a-f-]*"' | sed 's/.*"\(\/tmp\/[^"]*\)"/\1/' || true)"
  fi
  node_stop kube-proxy
  node_stop kube-scheduler
  node_stop kubelet
  # Containers and sandboxes, while containerd still runs.
  if [ -S "$sock" ] && [ -n "$(live_pid containerd)" ]; then
    for i in $(ctr_node tasks ls -q 2>/dev/null); do
      ctr_node tasks kill -s SIGKILL "$i" >/dev/null 2>&1 || true
    done
    sleep 0.5
    for i in $(ctr_node tasks ls -q 2>/dev/null); do
      ctr_node tasks delete -f "$i" >/dev/null 2>&1 || true
    done
    for i in $(ctr_node containers ls -q 2>/dev/null); do
      ctr_node containers delete "$i" >/dev/null 2>&1 || true
    done
  fi
  node_stop containerd
  # Shims and container processes that outlived containerd.
  for i in 1 2 3; do
    pids="$(node_leftover_pids | sort -u)"
    [ -n "$pids" ] || break
    # shellcheck disable=SC2086 # a list of pids
    kill -KILL $pids 2>/dev/null || true
    sleep 0.3
  done
  # Mounts under STATE_DIR (overlay root file systems, shm, pod volumes,
  # network namespaces), deepest first.
  for i in 1 2 3; do
    m="$(awk -v d="$STATE_DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)"
    [ -n "$m" ] || break
    while read -r i; do
      umount "$i" 2>/dev/null || umount -l "$i" 2>/dev/null || true
    done <<<"$m"
  done
  # Network: the bridge (the pods' veths went with their namespaces), our
  # NAT chain, kube-proxy's chains.
  if [ -n "${NODE_BRIDGE:-}" ] && ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    ip link del "$NODE_BRIDGE" || true
  fi
  if [ -n "${NODE_CHAIN:-}" ]; then
    while iptables -w -t nat -D PREROUTING -i "$NODE_BRIDGE" -j "$NODE_CHAIN" 2>/dev/null; do :; done
    iptables -w -t nat -F "$NODE_CHAIN" 2>/dev/null || true
    iptables -w -t nat -X "$NODE_CHAIN" 2>/dev/null || true
  fi
  node_kube_chains_cleanup
  [ -z "${SAVED_IP_FORWARD:-}" ] || sysctl -qw "net.ipv4.ip_forward=$SAVED_IP_FORWARD" || true
  [ -z "${SAVED_BRIDGE_NF:-}" ] || sysctl -qw "net.bridge.bridge-nf-call-iptables=$SAVED_BRIDGE_NF" || true
  # Cgroups, leaves first.
  while read -r i; do
    find "$i" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done < <(node_cgroup_dirs)
  for i in $hostpaths; do
    case "$i" in /tmp/hostpath_pv/?*) rm -rf -- "$i" ;; esac
  done
  if [ "${NODE_OWNED:-}" = 1 ] && [ "$(cat "$NODE_OWNER" 2>/dev/null)" = "$STATE_DIR" ]; then
    rm -f -- "$NODE_OWNER"
  fi
  rm -f -- "$STATE_DIR/node.env"
}

# What `down` must leave behind: nothing. Prints each leftover; exit 1 if any.
node_leftovers() { # STATE_DIR NODE_BRIDGE NODE_CGROUP NODE_CHAIN
  local left=0
  if awk -v d="$1/" 'index($5, d) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    echo "leftover mounts under $1"; left=1
  fi
  if ip link show "$2" >/dev/null 2>&1; then echo "leftover interface $2"; left=1; fi
  if ls -d /sys/fs/cgroup/*/"$3" >/dev/null 2>&1; then echo "leftover cgroup $3"; left=1; fi
  if iptables -w -t nat -S "$4" >/dev/null 2>&1; then echo "leftover chain $4"; left=1; fi
  if { iptables -w -S; iptables -w -t nat -S; iptables -w -t mangle -S; } 2>/dev/null | grep -q -- '-N KUBE-'; then
    echo "leftover KUBE-* chains"; left=1
  fi
  return $left
}

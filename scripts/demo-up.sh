#!/usr/bin/env bash
# The Star Wars demo on a two-node local cluster, in the background: an
# etcd (the cluster store) on loopback, an underlay namespace with a bridge,
# two node namespaces each run by `datapath agent` (cluster store, VXLAN
# overlay carrying the source identity) with a `flow-exporter`, four pods
# wired by the `datapath-cni` plugin exactly as a runtime calls it
# (deathstar-1 and -2 and tiefighter on node 1, xwing on node 2), Cilium's
# getting-started policy applied once through the cluster store (only
# org=empire may land on class=deathstar, TCP/80) and an explicit deny of
# the xwing's landings (deny-xwing-80), the deathstar ClusterIP
# service (10.96.0.20:80, load-balanced by each node's datapath), a traffic
# loop in which both ships request landings through the service every
# second, `relay` discovering the
# nodes through node 1's Peer.Notify and serving Hubble's Observer API on
# 127.0.0.1:4245, where `hubble` looks by default, and a `flow-archiver`
# following the relay into $DEMO_STATE/archive. Every daemon serves
# Prometheus metrics (DEMO_METRICS); the end of the output lists where.
# Everything made is recorded in $DEMO_STATE/state; scripts/demo-down.sh
# removes exactly that. Needs root. Builds nothing: `just demo-up` does.
#
# Overrides (for tests, or a second demo next to a running one):
#   BIN_DIR            binaries (datapath, datapath-cni, flow-exporter, relay, hubble, flow-archiver); default target/release
#   DEMO_PREFIX        prefix of namespace names; default sw (nodes sw-node-1, sw-node-2)
#   DEMO_STATE         state directory; default /run/hubble-demo
#   DEMO_PORT          the relay's Observer API port on 127.0.0.1; default 4245
#   DEMO_NODE_PORTS    the two exporters' ports on 127.0.0.1; default "4244 4246"
#   DEMO_ETCD_PORTS    etcd's client and peer ports on 127.0.0.1; default "23790 23800"
#   DEMO_METRICS       "off", or the base metrics address: exporters on port, port+1; relay port+2;
#                      archiver port+3; agents port+4, port+5; default 127.0.0.1:9965
#   DEMO_HUBBLE_METRICS the exporters' --metrics list (Hubble's metrics and context options;
#                      passed only when the exporter has the flag); default: the one below
#   DEMO_POD_CIDRS     the nodes' pod CIDRs; default "10.202.1.0/24 10.202.2.0/24"
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
bin=$(realpath -m "${BIN_DIR:-target/release}")
prefix=${DEMO_PREFIX:-sw}
state=${DEMO_STATE:-/run/hubble-demo}
port=${DEMO_PORT:-4245}
read -r -a node_ports <<<"${DEMO_NODE_PORTS:-4244 4246}"
read -r etcd_port etcd_peer_port <<<"${DEMO_ETCD_PORTS:-23790 23800}"
metrics=${DEMO_METRICS:-127.0.0.1:9965}
# The Hubble metrics the dashboards (dashboards/hubble-overview.json) are written against.
hubble_metrics=${DEMO_HUBBLE_METRICS:-"flow:sourceContext=namespace;destinationContext=namespace drop:sourceContext=pod;destinationContext=pod;labelsContext=source_namespace,destination_namespace tcp port-distribution icmp policy:sourceContext=app|workload-name|pod|reserved-identity;destinationContext=app|workload-name|pod|reserved-identity;labelsContext=source_namespace,destination_namespace flows-to-world"}
read -r -a cidrs <<<"${DEMO_POD_CIDRS:-10.202.1.0/24 10.202.2.0/24}"
nodes=("$prefix-node-1" "$prefix-node-2")
underlay=$prefix-underlay
server=127.0.0.1:$port
etcd_url=http://127.0.0.1:$etcd_port
statefile=$state/state

has_netns() { ip netns list | awk '{print $1}' | grep -qxF "$1"; }
die() { echo "demo-up: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "needs root (network namespaces, bpffs, tc programs)"
for b in datapath datapath-cni flow-exporter relay hubble flow-archiver; do
    [[ -x $bin/$b ]] || die "$bin/$b missing: build first (just demo-up builds the release binaries)"
done
command -v etcd >/dev/null || die "etcd missing: run ./bootstrap.sh (installs Debian's etcd-server)"
if [[ -e $statefile ]] || has_netns "${nodes[0]}" || [[ -e /sys/fs/bpf/datapath/${nodes[0]} ]]; then
    die "the demo is already up (or left over): state $statefile, netns ${nodes[0]}; run scripts/demo-down.sh (just demo-down) first"
fi
metrics_at() { # offset
    [[ $metrics == off ]] && { echo off; return; }
    echo "${metrics%:*}:$((${metrics##*:} + $1))"
}
# The exporter's --metrics, when this build has the flag (not to be
# confused with --metrics-address or --metrics-policy-names).
exporter_metrics=()
if "$bin/flow-exporter" --help | grep -qE -- '--metrics([ =]|$)'; then
    exporter_metrics=(--metrics "$hubble_metrics")
fi

mkdir -p "$state/logs" "$state/www" /sys/fs/bpf/datapath
: >"$statefile"
record() { echo "$*" >>"$statefile"; }

# Anything failing from here on removes what was made so far.
fail() {
    trap - EXIT
    echo "demo-up: failed; logs in $state/logs:" >&2
    tail -n 20 "$state"/logs/*.log >&2 2>/dev/null || true
    DEMO_STATE=$state DEMO_PREFIX=$prefix BIN_DIR=$bin "$repo/scripts/demo-down.sh" >&2 || true
    exit 1
}
trap '[[ $? == 0 ]] || fail' EXIT

# Start a background process in its own session (so demo-down can stop its
# whole process group), logging to $state/logs/NAME.log, and record its pid.
spawn() {
    local name=$1
    shift
    setsid "$@" </dev/null >"$state/logs/$name.log" 2>&1 &
    record pid "$name" $!
}

wait_until() { # what, tries (0.1 s each), command...
    local what=$1 n=$2
    shift 2
    for _ in $(seq "$n"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "demo-up: timed out waiting for $what" >&2
    return 1
}

# 1. The cluster store: etcd on loopback with its own data directory.
record dir "$state/etcd"
spawn etcd etcd --name demo --data-dir "$state/etcd" --logger=zap --log-level=error \
    --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "demo=http://127.0.0.1:$etcd_peer_port"
wait_until "etcd at $etcd_url" 100 bash -c "exec 3<>/dev/tcp/127.0.0.1/$etcd_port"

# 2. The underlay: a namespace with a bridge that every node's eth0 hangs on.
record netns "$underlay"
ip netns add "$underlay"
ip -n "$underlay" link set lo up
ip -n "$underlay" link add br0 type bridge
ip -n "$underlay" link set br0 up
# The outside world, as the pods see it: an address on the underlay's bridge
# (reserved:world in every flow) that routes the pod CIDRs back to their nodes.
world=10.99.0.254
ip -n "$underlay" addr add "$world/24" dev br0

# 3. The nodes: a namespace each with its underlay address, run by an agent
# on the cluster store with the VXLAN overlay, and an exporter on its ring.
for i in 0 1; do
    node=${nodes[i]} ip=10.99.0.$((i + 1)) pins=/sys/fs/bpf/datapath/${nodes[i]}
    sock=$state/$node/agent.sock
    record netns "$node"
    ip netns add "$node"
    ip -n "$node" link set lo up
    ip netns exec "$node" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$underlay" link add "$prefix-u$i" type veth peer name eth0 netns "$node"
    ip -n "$underlay" link set "$prefix-u$i" master br0 up
    ip -n "$node" addr add "$ip/24" dev eth0
    ip -n "$node" link set eth0 up
    ip netns exec "$node" sysctl -qw net.ipv4.ip_forward=1 # a node routes its pods to the world
    ip -n "$underlay" route add "${cidrs[i]}" via "$ip"
    mkdir -p "$state/$node/policies"
    record pins "$pins"
    record agent "$node" "$sock"
    spawn "agent-$node" "$bin/datapath" agent --node-name "$node" --pod-cidr "${cidrs[i]}" \
        --state-dir "$state/$node/agent" --bpffs-dir "$pins" --policy-dir "$state/$node/policies" \
        --api-socket "$sock" --netns "/run/netns/$node" \
        --kvstore etcd --kvstore-endpoints "$etcd_url" --node-ip "$ip" \
        --hubble-address "127.0.0.1:${node_ports[i]}" --metrics-address "$(metrics_at $((4 + i)))"
    wait_until "the agent of $node" 300 "$bin/datapath" --api-socket "$sock" status
    spawn "flow-exporter-$node" "$bin/flow-exporter" --ringbuf "$pins/events" \
        --lost-counter "$pins/lost_events" --lb-stats "$pins/lb4_stats" --enrichment "$state/$node/agent/enrichment.json" \
        --node-name "$node" --listen-address "127.0.0.1:${node_ports[i]}" \
        --metrics-address "$(metrics_at "$i")" "${exporter_metrics[@]}"
done
sock1=$state/${nodes[0]}/agent.sock
for i in 0 1; do
    wait_until "the exporter of ${nodes[i]}" 100 "$bin/hubble" status --server "127.0.0.1:${node_ports[i]}"
done

# 4. Cilium's getting-started policy, once, through the cluster store.
"$bin/datapath" --api-socket "$sock1" policy apply --name rule1 datapath/testdata/policies/starwars.yaml
# And an explicit deny by name: the xwing's landings show `DENIED BY deny-xwing-80`.
"$bin/datapath" --api-socket "$sock1" policy apply --name deny-xwing-80 datapath/testdata/policies/deny-xwing.yaml
# The Death Star behind its ClusterIP service (10.96.0.20:80), also through
# the store: every node load-balances it in its own datapath.
"$bin/datapath" --api-socket "$sock1" service apply datapath/testdata/services/starwars.yaml
vip=10.96.0.20

# 5. Pods through the CNI plugin, as a runtime calls it (run in the node's
# namespace, CNI_* environment, network configuration on stdin).
cni() { # node sock command cid netns args
    local conf
    conf=$(printf '{"cniVersion":"1.0.0","name":"datapath","type":"datapath-cni","agentSocket":"%s"}' "$2")
    nsenter --net="/run/netns/$1" env -i PATH="$PATH" CNI_COMMAND="$3" CNI_CONTAINERID="$4" \
        CNI_NETNS="$5" CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin CNI_ARGS="$6" \
        "$bin/datapath-cni" <<<"$conf"
}
declare -A ip_of
add_pod() { # node-index name labels
    local node=${nodes[$1]} name=$2 labels=$3 ns=$prefix-$2 cid result sock
    sock=$state/$node/agent.sock
    cid=$(printf '%s' "$node/$name" | sha256sum | cut -c1-64)
    record netns "$ns"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    record pod "$name" "$cid" "/run/netns/$ns" "$node" "$sock"
    result=$(cni "$node" "$sock" ADD "$cid" "/run/netns/$ns" \
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=$name;K8S_POD_LABELS=$labels")
    ip_of[$name]=$(jq -r '.ips[0].address' <<<"$result" | cut -d/ -f1)
    echo "  pod default/$name ($labels): ${ip_of[$name]} on $node"
}
echo "Creating pods (node ${nodes[0]}: ${cidrs[0]}, node ${nodes[1]}: ${cidrs[1]}):"
add_pod 0 deathstar-1 org=empire,class=deathstar
add_pod 0 deathstar-2 org=empire,class=deathstar
add_pod 0 tiefighter org=empire,class=tiefighter
add_pod 1 xwing org=alliance,class=xwing

# 6. The Death Star's landing service: HTTP on port 80 in both pods.
echo "Ship landed" >"$state/www/index.html"
for ds in deathstar-1 deathstar-2; do
    spawn "http-$ds" ip netns exec "$prefix-$ds" /usr/bin/python3 -m http.server 80 \
        --bind "${ip_of[$ds]}" --directory "$state/www"
done
for ds in deathstar-1 deathstar-2; do
    wait_until "HTTP on $ds" 100 ip netns exec "$prefix-$ds" bash -c "exec 3<>/dev/tcp/${ip_of[$ds]}/80"
done

# 7. The relay: finds both nodes through node 1's Peer.Notify.
spawn relay "$bin/relay" --peer-service "127.0.0.1:${node_ports[0]}" --listen-address "$server" \
    --metrics-address "$(metrics_at 2)" --retry-timeout 1s
wait_until "the relay at $server with 2 nodes" 200 bash -c \
    "'$bin/hubble' status --server '$server' | grep -q 'Connected Nodes: 2/2'"

# 8. The archiver: follows the relay into Parquet under $state/archive.
archiver_metrics=()
[[ $metrics == off ]] || archiver_metrics=(--metrics-address "$(metrics_at 3)")
spawn flow-archiver "$bin/flow-archiver" --server "$server" --dir "$state/archive" \
    --file-age-secs 10 "${archiver_metrics[@]}"

# 9. The traffic loop: every second both ships request two landings through
# the deathstar service (each connection load-balanced to one of the pods),
# and the tiefighter pings the world.
wait_until "the deathstar service on both nodes" 100 bash -c \
    "'$bin/datapath' --api-socket '$state/${nodes[1]}/agent.sock' bpf lb list | grep -q '$vip:80'"
spawn traffic bash -c '
    while :; do
        for ship in tiefighter xwing; do
            for try in 1 2; do
                if ip netns exec '"$prefix"'-$ship curl -sf -o /dev/null -m 0.9 "http://'"$vip"'/"; then
                    echo "$(date +%T) $ship -> deathstar service ('"$vip"'): landed"
                else
                    echo "$(date +%T) $ship -> deathstar service ('"$vip"'): no landing"
                fi &
            done
        done
        ip netns exec '"$prefix"'-tiefighter ping -c 1 -W 1 '"$world"' >/dev/null 2>&1 &
        sleep 1
        wait
    done'
trap - EXIT

h=$bin/hubble
[[ $port == 4245 ]] || h="$h --server $server"
[[ $bin == "$repo/target/release" ]] && h=${h/#$repo\//}
d=$bin/datapath
[[ $bin == "$repo/target/release" ]] && d=${d/#$repo\//}
if [[ $metrics == off ]]; then
    metrics_list=off
else
    metrics_list="http://$(metrics_at 4)/metrics, http://$(metrics_at 5)/metrics (agents)
                http://$(metrics_at 0)/metrics, http://$(metrics_at 1)/metrics (exporters)
                http://$(metrics_at 2)/metrics (relay), http://$(metrics_at 3)/metrics (archiver)"
fi
cat <<MSG

The Star Wars demo is up on two nodes: ${nodes[0]} (deathstar-1, deathstar-2,
tiefighter) and ${nodes[1]} (xwing, which reaches the Death Star through the
VXLAN overlay and is dropped on ${nodes[0]} by deny-xwing-80; rule1 allows
the tiefighter).
  Observer API: $server (relay over both nodes; a plain \`hubble observe\` works when the port is 4245)
  nodes:        $h list nodes
  drops:        $h observe --verdict DROPPED
  verdicts:     $h observe -t policy-verdict
  by policy:    $h observe --verdict DROPPED --print-policy-names
  overlay:      $h observe --node-name ${nodes[1]}
  follow:       $h observe --follow
  status:       $h status
  agents:       $d --api-socket $state/${nodes[0]}/agent.sock status   (also: node list, endpoint list, policy get)
  policy:       $d --api-socket $sock1 policy apply FILE   (cluster-wide, through etcd at $etcd_url)
  service:      $d --api-socket $sock1 service list   (deathstar: ClusterIP $vip:80; also bpf lb list)
  to service:   $h observe --to-service default/deathstar
  archive:      $state/archive (flow-archiver following the relay; $h observe --archive $state/archive)
  metrics:      $metrics_list
  prometheus:   dashboards/prometheus-scrape.yml (targets above), dashboards/*.json for Grafana
  logs:         $state/logs/ (traffic.log shows each landing attempt)
  stop:         just demo-down   (scripts/demo-down.sh)
MSG

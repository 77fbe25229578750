#!/usr/bin/env bash
# The Star Wars demo on this machine, in the background (issue 4, item 7):
# a node network namespace run by `datapath agent`, four pods wired by the
# `datapath-cni` plugin exactly as a runtime calls it, Cilium's
# getting-started policy (only org=empire may land on class=deathstar, TCP/80),
# a traffic loop in which tiefighter and xwing request a landing every
# second, and `flow-exporter` serving Hubble's Observer API on 127.0.0.1:4245.
# Everything made is recorded in $DEMO_STATE/state; scripts/demo-down.sh
# removes exactly that. Needs root. Builds nothing: `just demo-up` does.
#
# Overrides (for tests, or a second demo next to a running one):
#   BIN_DIR            binaries (datapath, datapath-cni, flow-exporter, hubble); default target/release
#   DEMO_PREFIX        prefix of namespace names; default sw (node netns sw-node)
#   DEMO_STATE         state directory; default /run/hubble-demo
#   DEMO_PORT          Observer API port on 127.0.0.1; default 4245
#   DEMO_METRICS       exporter metrics address or "off"; default 127.0.0.1:9965
#   DEMO_POD_CIDR      the node's pod CIDR; default 10.202.0.0/24
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
bin=$(realpath -m "${BIN_DIR:-target/release}")
prefix=${DEMO_PREFIX:-sw}
node=$prefix-node
state=${DEMO_STATE:-/run/hubble-demo}
port=${DEMO_PORT:-4245}
metrics=${DEMO_METRICS:-127.0.0.1:9965}
cidr=${DEMO_POD_CIDR:-10.202.0.0/24}
pins=/sys/fs/bpf/datapath/$node
server=127.0.0.1:$port
sock=$state/agent.sock
statefile=$state/state

has_netns() { ip netns list | awk '{print $1}' | grep -qxF "$1"; }
die() { echo "demo-up: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "needs root (network namespaces, bpffs, tc programs)"
for b in datapath datapath-cni flow-exporter hubble; do
    [[ -x $bin/$b ]] || die "$bin/$b missing: build first (just demo-up builds the release binaries)"
done
if [[ -e $statefile ]] || has_netns "$node" || [[ -e $pins ]]; then
    die "the demo is already up (or left over): state $statefile, netns $node, pins $pins; run scripts/demo-down.sh (just demo-down) first"
fi

mkdir -p "$state/policies" "$state/logs" "$state/www" /sys/fs/bpf/datapath
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

# 1. The node: a network namespace with its own address, run by the agent.
record netns "$node"
ip netns add "$node"
ip -n "$node" link set lo up
ip netns exec "$node" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n "$node" addr add 10.202.99.1/32 dev lo
record pins "$pins"
cp datapath/testdata/policies/starwars.yaml "$state/policies/starwars.yaml"
spawn agent "$bin/datapath" agent --node-name "$node" --pod-cidr "$cidr" \
    --state-dir "$state/agent" --bpffs-dir "$pins" --policy-dir "$state/policies" \
    --api-socket "$sock" --netns "/run/netns/$node"
wait_until "the agent's API" 300 "$bin/datapath" --api-socket "$sock" status

# 2. Pods through the CNI plugin, as a runtime calls it (run in the node's
# namespace, CNI_* environment, network configuration on stdin).
conf=$(printf '{"cniVersion":"1.0.0","name":"datapath","type":"datapath-cni","agentSocket":"%s"}' "$sock")
cni() { # command cid netns args
    nsenter --net="/run/netns/$node" env -i PATH="$PATH" CNI_COMMAND="$1" CNI_CONTAINERID="$2" \
        CNI_NETNS="$3" CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin CNI_ARGS="$4" \
        "$bin/datapath-cni" <<<"$conf"
}
declare -A ip_of
add_pod() { # name labels
    local name=$1 labels=$2 ns=$prefix-$1 cid result
    cid=$(printf '%s' "$node/$name" | sha256sum | cut -c1-64)
    record netns "$ns"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    record pod "$name" "$cid" "/run/netns/$ns"
    result=$(cni ADD "$cid" "/run/netns/$ns" \
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=$name;K8S_POD_LABELS=$labels")
    ip_of[$name]=$(jq -r '.ips[0].address' <<<"$result" | cut -d/ -f1)
    echo "  pod default/$name ($labels): ${ip_of[$name]} in netns $ns"
}
echo "Creating pods on node $node (pod CIDR $cidr):"
add_pod deathstar-1 org=empire,class=deathstar
add_pod deathstar-2 org=empire,class=deathstar
add_pod tiefighter org=empire,class=tiefighter
add_pod xwing org=alliance,class=xwing

# 3. The Death Star's landing service: HTTP on port 80 in both pods.
echo "Ship landed" >"$state/www/index.html"
for ds in deathstar-1 deathstar-2; do
    spawn "http-$ds" ip netns exec "$prefix-$ds" /usr/bin/python3 -m http.server 80 \
        --bind "${ip_of[$ds]}" --directory "$state/www"
done
for ds in deathstar-1 deathstar-2; do
    wait_until "HTTP on $ds" 100 ip netns exec "$prefix-$ds" bash -c "exec 3<>/dev/tcp/${ip_of[$ds]}/80"
done

# 4. The exporter in the host namespace, on the node's pinned ring buffer.
spawn flow-exporter "$bin/flow-exporter" --ringbuf "$pins/events" --lost-counter "$pins/lost_events" \
    --enrichment "$state/agent/enrichment.json" --node-name "$node" \
    --listen-address "$server" --metrics-address "$metrics"
wait_until "the exporter at $server" 100 "$bin/hubble" status --server "$server"

# 5. The traffic loop: every second both ships request a landing.
spawn traffic bash -c '
    while :; do
        for ship in tiefighter xwing; do
            for ip in '"${ip_of[deathstar-1]} ${ip_of[deathstar-2]}"'; do
                if ip netns exec '"$prefix"'-$ship curl -sf -o /dev/null -m 0.9 "http://$ip/"; then
                    echo "$(date +%T) $ship -> $ip: landed"
                else
                    echo "$(date +%T) $ship -> $ip: no landing"
                fi &
            done
        done
        sleep 1
        wait
    done'
trap - EXIT

h=$bin/hubble
[[ $port == 4245 ]] || h="$h --server $server"
[[ $bin == "$repo/target/release" ]] && h=${h/#$repo\//}
cat <<MSG

The Star Wars demo is up on node $node.
  Observer API: $server (flow-exporter; a plain \`hubble observe\` works when the port is 4245)
  drops:        $h observe --verdict DROPPED
  verdicts:     $h observe -t policy-verdict
  tiefighter:   $h observe --from-pod default/tiefighter
  follow:       $h observe --follow
  status:       $h status
  agent:        $bin/datapath --api-socket $sock endpoint list   (also: identity list, policy get)
  policy:       $state/policies/starwars.yaml (edits apply live)
  logs:         $state/logs/ (traffic.log shows each landing attempt)
  pins:         $pins
  stop:         just demo-down   (scripts/demo-down.sh)
MSG

#!/usr/bin/env bash
# Removes what scripts/demo-up.sh made, as recorded in $DEMO_STATE/state:
# the traffic loop, relay, HTTP servers and exporters, the pods (CNI DEL
# while their node's agent still runs), the agents (SIGTERM), etcd, the
# namespaces, the nodes' pins and the state directory (etcd's data with it).
# Safe to run twice, and after a half-finished demo-up. Takes the same
# overrides as demo-up.sh (BIN_DIR, DEMO_PREFIX, DEMO_STATE).
set -uo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath -m "${BIN_DIR:-target/release}")
prefix=${DEMO_PREFIX:-sw}
state=${DEMO_STATE:-/run/hubble-demo}
statefile=$state/state
[[ $(id -u) == 0 ]] || { echo "demo-down: needs root" >&2; exit 1; }

pids=() names=() pods=() netns=() pins=()
if [[ -r $statefile ]]; then
    while read -r kind a b c d e; do
        case $kind in
        pid) names+=("$a") pids+=("$b") ;;
        pod) pods+=("$a $b $c $d $e") ;;
        netns) netns+=("$a") ;;
        pins) pins+=("$a") ;;
        esac
    done <"$statefile"
fi
# Without a state file (or a partial one), still remove the well-known names.
for n in node-1 node-2 underlay deathstar-1 deathstar-2 tiefighter xwing; do netns+=("$prefix-$n"); done
pins+=("/sys/fs/bpf/datapath/$prefix-node-1" "/sys/fs/bpf/datapath/$prefix-node-2")

has_netns() { ip netns list | awk '{print $1}' | grep -qxF "$1"; }
alive() { kill -0 "$1" 2>/dev/null; }
stop() { # name pid: SIGTERM to its process group (it leads a session), then SIGKILL
    local name=$1 pid=$2
    alive "$pid" || return 0
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 100); do
        alive "$pid" || { echo "stopped $name ($pid)"; return 0; }
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    echo "killed $name ($pid)"
}

# 1. Everything but the agents and etcd, newest first.
late=()
for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    case ${names[i]} in
    agent-* | etcd) late+=("${names[i]} ${pids[i]}") ;;
    *) stop "${names[i]}" "${pids[i]}" ;;
    esac
done

# 2. Pods: CNI DEL, as a runtime would (idempotent; needs their agent).
for p in "${pods[@]}"; do
    read -r name cid ns node sock <<<"$p"
    has_netns "$node" && [[ -x $bin/datapath-cni ]] || continue
    conf=$(printf '{"cniVersion":"1.0.0","name":"datapath","type":"datapath-cni","agentSocket":"%s"}' "$sock")
    if nsenter --net="/run/netns/$node" env -i PATH="$PATH" CNI_COMMAND=DEL CNI_CONTAINERID="$cid" \
        CNI_NETNS="$ns" CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin CNI_ARGS= \
        "$bin/datapath-cni" <<<"$conf" >/dev/null; then
        echo "deleted pod default/$name"
    else
        echo "CNI DEL of $name failed; its namespace goes anyway" >&2
    fi
done

# 3. The agents (SIGTERM: a graceful stop that leaves the programs pinned),
# then etcd.
for l in "${late[@]}"; do
    read -r name pid <<<"$l"
    [[ $name == etcd ]] || stop "$name" "$pid"
done
for l in "${late[@]}"; do
    read -r name pid <<<"$l"
    [[ $name == etcd ]] && stop "$name" "$pid"
done

# 4. Namespaces (their veths, VXLAN devices and tc attachments go with
# them), pins, state.
for ns in "${netns[@]}"; do
    if has_netns "$ns"; then
        ip netns del "$ns" && echo "deleted netns $ns"
    fi
done
for d in "${pins[@]}"; do
    if [[ -e $d ]]; then
        [[ -x $bin/datapath ]] && "$bin/datapath" --pin-dir "$d" unpin >/dev/null 2>&1
        rm -rf "$d" && echo "removed pins $d"
    fi
    rmdir "$(dirname "$d")" 2>/dev/null || true
done
if [[ -e $state ]]; then
    rm -rf "$state" && echo "removed $state"
fi
echo "demo-down: done"

#!/usr/bin/env bash
# Removes what scripts/demo-up.sh made, as recorded in $DEMO_STATE/state:
# the traffic loop, HTTP servers and exporter, the pods (CNI DEL while the
# agent still runs), the agent (SIGTERM), the namespaces, the node's pins and
# the state directory. Safe to run twice, and after a half-finished demo-up.
# Takes the same overrides as demo-up.sh (BIN_DIR, DEMO_PREFIX, DEMO_STATE).
set -uo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath -m "${BIN_DIR:-target/release}")
prefix=${DEMO_PREFIX:-sw}
node=$prefix-node
state=${DEMO_STATE:-/run/hubble-demo}
sock=$state/agent.sock
statefile=$state/state
[[ $(id -u) == 0 ]] || { echo "demo-down: needs root" >&2; exit 1; }

pids=() names=() pods=() netns=() pins=()
if [[ -r $statefile ]]; then
    while read -r kind a b c; do
        case $kind in
        pid) names+=("$a") pids+=("$b") ;;
        pod) pods+=("$a $b $c") ;;
        netns) netns+=("$a") ;;
        pins) pins+=("$a") ;;
        esac
    done <"$statefile"
fi
# Without a state file (or a partial one), still remove the well-known names.
netns+=("$node")
for p in deathstar-1 deathstar-2 tiefighter xwing; do netns+=("$prefix-$p"); done
pins+=("/sys/fs/bpf/datapath/$node")

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

# 1. Everything but the agent, newest first.
agent_pid=
for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    if [[ ${names[i]} == agent ]]; then agent_pid=${pids[i]}; continue; fi
    stop "${names[i]}" "${pids[i]}"
done

# 2. Pods: CNI DEL, as a runtime would (idempotent; needs the agent).
if has_netns "$node" && [[ -x $bin/datapath-cni ]]; then
    conf=$(printf '{"cniVersion":"1.0.0","name":"datapath","type":"datapath-cni","agentSocket":"%s"}' "$sock")
    for p in "${pods[@]}"; do
        read -r name cid ns <<<"$p"
        if nsenter --net="/run/netns/$node" env -i PATH="$PATH" CNI_COMMAND=DEL CNI_CONTAINERID="$cid" \
            CNI_NETNS="$ns" CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin CNI_ARGS= \
            "$bin/datapath-cni" <<<"$conf" >/dev/null; then
            echo "deleted pod default/$name"
        else
            echo "CNI DEL of $name failed; its namespace goes anyway" >&2
        fi
    done
fi

# 3. The agent: SIGTERM (a graceful stop; it leaves the programs pinned).
[[ -n $agent_pid ]] && stop agent "$agent_pid"

# 4. Namespaces (their veths and tc attachments go with them), pins, state.
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

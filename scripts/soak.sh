#!/usr/bin/env bash
# A soak run: the demo cluster (scripts/demo-up.sh, under its own prefix,
# state directory and ports, so it runs beside a demo) under load, with a
# fault every SOAK_FAULT_EVERY seconds, for SECS seconds. Every
# SOAK_SAMPLE_EVERY seconds it prints the RSS of every process of the
# cluster, the flows the exporters processed, the flows a follower of the
# relay received, and the lost events by source, so leaks and losses show.
# Everything is torn down at the end (also on Ctrl-C or an error).
#
#   scripts/soak.sh SECS          (just soak SECS; needs root and `just build`)
#
# The load: SOAK_RATE allowed HTTP requests per second from tiefighter to
# the deathstar service (default 100), a tenth of that denied from xwing,
# and two followers (`hubble observe --follow -o json` through the relay;
# one reads everything, one only drops).
# The faults, in turn: an exporter stopped (SIGSTOP) for 10 s then resumed;
# the relay killed (SIGKILL) and restarted; etcd stopped for 10 s then
# resumed; node 1's agent stopped (SIGTERM) and restarted.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
secs=${1:?usage: scripts/soak.sh SECS}
[[ $secs =~ ^[0-9]+$ ]] || { echo "soak: SECS must be a whole number of seconds, got $secs" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "soak: needs root (the demo cluster)" >&2; exit 1; }
bin=$(realpath -m "${BIN_DIR:-target/release}")
rate=${SOAK_RATE:-100}
fault_every=${SOAK_FAULT_EVERY:-60}
sample_every=${SOAK_SAMPLE_EVERY:-10}
export BIN_DIR=$bin DEMO_PREFIX=${SOAK_PREFIX:-soak} DEMO_STATE=${SOAK_STATE:-/run/hubble-soak}
export DEMO_PORT=4345 DEMO_NODE_PORTS="4344 4346" DEMO_ETCD_PORTS="23890 23900"
export DEMO_METRICS=127.0.0.1:9975 DEMO_POD_CIDRS="10.203.1.0/24 10.203.2.0/24"
state=$DEMO_STATE
prefix=$DEMO_PREFIX
server=127.0.0.1:$DEMO_PORT
metrics_ports=(9975 9976 9977) # exporter 1, exporter 2, relay

cleanup() {
    trap - EXIT INT TERM
    for p in "${load_pids[@]:-}"; do [[ -n $p ]] && kill "$p" 2>/dev/null || true; done
    pkill -f -- "--server $server --follow" 2>/dev/null || true
    # A stopped process cannot die of SIGTERM: resume everything first.
    [[ -e $state/state ]] && awk '$1 == "pid" {print $3}' "$state/state" | xargs -r kill -CONT 2>/dev/null || true
    "$repo/scripts/demo-down.sh" >/dev/null 2>&1 || true
    rm -rf "$work"
}
work=$(mktemp -d /tmp/soak.XXXXXX)
load_pids=()
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "soak: starting the demo cluster ($prefix-node-1, $prefix-node-2; relay $server)"
"$repo/scripts/demo-up.sh" >"$work/demo-up.log" 2>&1 || { cat "$work/demo-up.log" >&2; exit 1; }

pid_of() { awk -v n="$1" '$1 == "pid" && $2 == n {p = $3} END {print p}' "$state/state"; }
# Restart a recorded process with its own command line (read from /proc
# before it is stopped), in a new session, and record the new pid.
respawn() { # name signal
    local name=$1 sig=$2 pid cmd
    pid=$(pid_of "$name")
    mapfile -d '' -t cmd <"/proc/$pid/cmdline"
    kill -"$sig" "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    setsid "${cmd[@]}" </dev/null >>"$state/logs/$name.log" 2>&1 &
    echo "pid $name $!" >>"$state/state"
}

# The load: allowed requests from tiefighter, denied ones from xwing.
load_py='
import socket, sys, time
vip, rate, timeout = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
ok = fail = 0
next_t = time.monotonic()
while True:
    try:
        s = socket.create_connection((vip, 80), timeout=timeout)
        s.sendall(b"GET / HTTP/1.0\r\nHost: deathstar\r\n\r\n")
        while s.recv(4096):
            pass
        s.close()
        ok += 1
    except OSError:
        fail += 1
    next_t += 1.0 / rate
    d = next_t - time.monotonic()
    if d > 0:
        time.sleep(d)
    else:
        next_t = time.monotonic()
'
ip netns exec "$prefix-tiefighter" python3 -c "$load_py" 10.96.0.20 "$rate" 1 >/dev/null 2>&1 &
load_pids+=($!)
ip netns exec "$prefix-xwing" python3 -c "$load_py" 10.96.0.20 "$(((rate + 9) / 10))" 0.05 >/dev/null 2>&1 &
load_pids+=($!)
# A follower whose stream ends (the relay was killed) reconnects, as a UI would.
follow() { # file args...
    local out=$1
    shift
    while :; do
        "$bin/hubble" observe --server "$server" --follow -o json "$@" >>"$out.json" 2>>"$out.err" || true
        echo reconnect >>"$out.reconnects"
        sleep 1
    done
}
follow "$work/follow-all" &
load_pids+=($!)
follow "$work/follow-drops" --verdict DROPPED &
load_pids+=($!)

# One scrape's sum of a metric (optionally only lines matching a label filter).
metric_sum() { # port name [grep]
    curl -s -m 2 "http://127.0.0.1:$1/metrics" 2>/dev/null |
        grep -E "^$2(\{|[[:space:]])" | grep -E -- "${3:-.}" |
        awk '{s += $NF} END {printf "%d", s}' || true
}
rss_of() { awk '/^VmRSS/ {printf "%d", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo "-"; }

names=()
while read -r _ name _; do
    [[ " ${names[*]} " == *" $name "* ]] || names+=("$name")
done < <(awk '$1 == "pid"' "$state/state")
declare -A rss_first rss_max rss_last

sample() { # elapsed fault-text
    local line="" n p r
    for n in "${names[@]}"; do
        p=$(pid_of "$n")
        r=$(rss_of "$p")
        line+=" $n=${r}M"
        [[ $r == - ]] && continue
        [[ -n ${rss_first[$n]:-} ]] || rss_first[$n]=$r
        ((r > ${rss_max[$n]:-0})) && rss_max[$n]=$r
        rss_last[$n]=$r
    done
    local processed=0 lost_lines
    for p in "${metrics_ports[@]:0:2}"; do
        processed=$((processed + $(metric_sum "$p" hubble_flows_processed_total)))
    done
    local fwd drop lost_ring lost_perf lost_obs
    fwd=$(metric_sum "${metrics_ports[2]}" hubble_relay_flows_forwarded_total)
    drop=$(metric_sum "${metrics_ports[2]}" hubble_relay_flows_dropped_total)
    lost_perf=0 lost_ring=0 lost_obs=0
    for p in "${metrics_ports[@]:0:2}"; do
        lost_perf=$((lost_perf + $(metric_sum "$p" hubble_lost_events_total PERF_EVENT_RING_BUFFER)))
        lost_ring=$((lost_ring + $(metric_sum "$p" hubble_lost_events_total OBSERVER_EVENTS_QUEUE)))
        lost_obs=$((lost_obs + $(metric_sum "$p" hubble_lost_events_total HUBBLE_RING_BUFFER)))
    done
    lost_lines=$(grep -c '"lost_events"' "$work/follow-all.json" || true)
    printf '%5ss processed=%s relay_forwarded=%s relay_dropped=%s follower_flows=%s follower_lost_msgs=%s drops_seen=%s reconnects=%s lost{perf_ring=%s events_queue=%s hubble_ring=%s}%s\n' \
        "$1" "$processed" "$fwd" "$drop" "$(grep -c '"flow"' "$work/follow-all.json" || true)" "$lost_lines" \
        "$(grep -c '"flow"' "$work/follow-drops.json" || true)" "$(cat "$work"/*.reconnects 2>/dev/null | wc -l)" \
        "$lost_perf" "$lost_ring" "$lost_obs" "${2:+ [$2]}"
    echo "       rss:$line"
}

fault=0
do_fault() {
    case $((fault % 4)) in
    0)
        local p
        p=$(pid_of "flow-exporter-$prefix-node-2")
        kill -STOP "$p"
        echo "fault: exporter of $prefix-node-2 stopped (SIGSTOP) for 10 s"
        (sleep 10 && kill -CONT "$p") &
        ;;
    1)
        respawn relay KILL
        echo "fault: relay killed (SIGKILL) and restarted"
        ;;
    2)
        p=$(pid_of etcd)
        kill -STOP "$p"
        echo "fault: etcd stopped (SIGSTOP) for 10 s"
        (sleep 10 && kill -CONT "$p") &
        ;;
    3)
        respawn "agent-$prefix-node-1" TERM
        echo "fault: agent of $prefix-node-1 stopped (SIGTERM) and restarted"
        ;;
    esac
    fault=$((fault + 1))
}

echo "soak: $secs s, load $rate req/s allowed + $(((rate + 9) / 10)) req/s denied, a fault every $fault_every s, a sample every $sample_every s"
start=$SECONDS
next_fault=$fault_every
sample 0
while ((SECONDS - start < secs)); do
    sleep "$sample_every"
    el=$((SECONDS - start))
    text=""
    if ((el >= next_fault && el < secs)); then
        do_fault >"$work/fault.txt"
        text=$(<"$work/fault.txt")
        next_fault=$((next_fault + fault_every))
    fi
    sample "$el" "$text"
done

echo
echo "soak: RSS per process in MiB (first sample, max, last):"
for n in "${names[@]}"; do
    printf '  %-34s %6s %6s %6s\n' "$n" "${rss_first[$n]:--}" "${rss_max[$n]:--}" "${rss_last[$n]:--}"
done
echo "soak: follower errors (count, message): $(cat "$work"/*.err 2>/dev/null | sort | uniq -c | head -5 | tr -s ' \n' ' ;')"
echo "soak: counters are since each process's start (a restarted relay starts from 0); lost events by source are the exporters' hubble_lost_events_total"

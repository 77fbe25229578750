#!/usr/bin/env bash
# The demo for now: a flow exporter on the synthetic datapath source, serving
# Hubble's Observer API on 127.0.0.1:4245 (where `hubble observe` looks by
# default), and a live follow of its flows with our `hubble` CLI. Ctrl-C
# stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-50}
bin=target/release/flow-exporter
hubble=target/release/hubble
log=$(mktemp -t flow-exporter-demo.XXXXXX.log)

"$bin" --synthetic --rate "$rate" --node-name demo-node \
    --listen-address 127.0.0.1:4245 --metrics-address 127.0.0.1:9965 2>"$log" &
pid=$!
cleanup() { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

for _ in $(seq 50); do
    "$hubble" status --server 127.0.0.1:4245 >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
done

cat <<MSG
flow-exporter is serving the synthetic datapath (${rate} events/s) at 127.0.0.1:4245.
  log:      $log
  status:   $hubble status
  drops:    $hubble observe --verdict DROPPED
  json:     $hubble observe --last 5 -o json
  verdicts: $hubble observe -t policy-verdict --last 10
  metrics:  curl -s 127.0.0.1:9965/metrics | grep ^hubble_
(an upstream Hubble CLI works the same way: hubble observe --verdict DROPPED)
Following all flows now (Ctrl-C to stop the demo):
MSG
"$hubble" observe --server 127.0.0.1:4245 --follow || true

#!/usr/bin/env bash
# Installs what building, testing and the demo need on a fresh Debian 12
# machine (as root): clang/llvm/libbpf for the kernel programs, protoc for
# the gRPC code, iproute2, `just`, and Python's grpcio for interop tests. Idempotent: instant once done.
set -euo pipefail

need_apt=()
command -v clang >/dev/null || need_apt+=(clang llvm)
[ -f /usr/include/bpf/bpf_helpers.h ] || need_apt+=(libbpf-dev)
command -v protoc >/dev/null || need_apt+=(protobuf-compiler)
command -v ip >/dev/null || need_apt+=(iproute2)
[ -d /usr/include/x86_64-linux-gnu/asm ] || need_apt+=(linux-libc-dev)
# Load and real clients for the integration tests: iperf3 (datapath bench),
# podman with its CNI backend (a real runtime driving datapath-cni), tmux
# (the TUI test reads a real terminal).
command -v iperf3 >/dev/null || need_apt+=(iperf3)
command -v podman >/dev/null || need_apt+=(podman containernetworking-plugins busybox-static runc)
command -v tmux >/dev/null || need_apt+=(tmux)
# ping: the demo's ICMP traffic to the world (the dashboards' ICMP and flows-to-world panels).
command -v ping >/dev/null || need_apt+=(iputils-ping)
# A real etcd (server and etcdctl): the cluster store of the demo, the
# multi-node tests and the etcd backend's tests; jq and curl for the demo.
{ command -v etcd && command -v etcdctl; } >/dev/null || need_apt+=(etcd-server etcd-client)
# Graphviz's dot: the `hubble map -o dot` test renders the map with it.
command -v dot >/dev/null || need_apt+=(graphviz)
# A real Prometheus (and promtool) for the dashboards' proof (it/tests/prometheus.rs).
{ command -v prometheus && command -v promtool; } >/dev/null || need_apt+=(prometheus)
command -v jq >/dev/null || need_apt+=(jq)
command -v curl >/dev/null || need_apt+=(curl)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "bootstrap: installing ${need_apt[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v just >/dev/null; then
    echo "bootstrap: installing just (PyPI rust-just)" >&2
    python3 -m pip install -q --disable-pip-version-check rust-just
    scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
    ln -sf "$scripts/just" /usr/local/bin/just
fi

# An independent gRPC/protobuf client stack for the interop tests, and the
# archive's readers (DuckDB, pyarrow, polars, pandas), the notebook runner,
# and moto's S3-compatible server for the archive's object-store backend.
if ! python3 -c 'import grpc, grpc_tools, grpc_health, grpc_reflection, duckdb, pyarrow, polars, pandas, pytz, nbclient, nbformat, ipykernel, matplotlib, moto, boto3, flask_cors' 2>/dev/null; then
    echo "bootstrap: installing grpcio(-tools, -health-checking, -reflection), duckdb, pyarrow, polars, pandas (PyPI)" >&2
    python3 -m pip install -q --disable-pip-version-check \
        grpcio grpcio-tools grpcio-health-checking grpcio-reflection duckdb pyarrow polars pandas pytz \
        nbclient nbformat ipykernel matplotlib 'moto[server]' boto3
fi

# bpffs: the datapath pins its maps there; tests mount it too if missing.
if [ "$(id -u)" = 0 ] && ! mountpoint -q /sys/fs/bpf 2>/dev/null; then
    mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
fi

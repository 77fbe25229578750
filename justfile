# Task runner. `./bootstrap.sh` first on a fresh machine (the README does).

set shell := ["bash", "-euo", "pipefail", "-c"]

export CARGO_TERM_COLOR := "never"

# List the recipes.
default:
    @just --list

# The release binaries: exactly `cargo build --release --workspace`, so the demo, the benchmarks and a packager share one set of artifacts (workspace-hack/ unifies features; `just lint` checks it).
build:
    cargo build --release --workspace

# The demo: the Star Wars scenario on a two-node local cluster (demo-up: etcd, VXLAN overlay, relay), then the live terminal UI on the relay; quitting it (q) tears everything down.
demo: build
    ./scripts/demo-up.sh
    trap ./scripts/demo-down.sh EXIT; trap 'exit 0' INT TERM; if [ -t 1 ]; then target/release/hubble tui --server 127.0.0.1:4245; else target/release/hubble observe --server 127.0.0.1:4245 --follow; fi || true

# The Star Wars demo in the background (root): etcd, two node namespaces on an underlay with agents and exporters, pods via the CNI plugin, a cluster-wide policy, traffic, the relay's Observer API on 127.0.0.1:4245.
demo-up: build
    ./scripts/demo-up.sh

# Remove everything demo-up made (safe to run twice).
demo-down:
    ./scripts/demo-down.sh

# The exporter on the synthetic source at 127.0.0.1:4245 (no datapath, no root), and a live follow of its flows.
demo-synthetic rate="50": build
    ./scripts/demo.sh {{rate}}

# Everything CI checks: formatting, lints, the whole test suite (privileged tests included), the notebook, fuzz smoke runs.
test: lint
    mkdir -p target
    cargo test --workspace --no-fail-fast 2>&1 | tee target/test.log || true
    ./scripts/test-summary.sh target/test.log
    ./scripts/notebook-test.sh
    just fuzz-smoke 20

# cargo fmt --check, clippy with warnings denied, flow-filter/flow-parser free of an async runtime, one set of release artifacts, no import cycle between modules.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    ./scripts/check-release-units.sh
    ./scripts/check-module-cycles.py
    cargo test -p flow-filter --test runtime_free

# Benchmarks: prints every figure the README's performance section quotes (on the same release artifacts as `just build`; `--workspace` everywhere keeps the features identical).
bench: build
    cargo build --release --workspace --examples
    cargo bench --workspace --profile release --bench decode -- --noplot
    cargo bench --workspace --profile release --bench match -- --noplot
    cargo bench --workspace --profile release --bench exporter -- --noplot
    target/release/examples/e2e_bench
    cargo bench --workspace --profile release --bench observe -- --noplot
    target/release/examples/tui_bench
    target/release/examples/relay_bench
    target/release/examples/archive_bench 10000000 target/bench-archive
    target/release/examples/datapath_bench
    target/release/examples/cluster_bench
    target/release/examples/service_bench

# The demo cluster under load with a fault every minute (exporter hung, relay killed, etcd hung, agent restarted) for SECS seconds, printing RSS of every process, flows in and out and lost events by source every 10 s (root).
soak secs="600": build
    ./scripts/soak.sh {{secs}}

# Short runs of every cargo-fuzz target (nightly only for this).
fuzz-smoke secs="20":
    ./scripts/fuzz-smoke.sh {{secs}}

# Remove build outputs.
clean:
    cargo clean

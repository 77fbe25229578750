# Task runner. `./bootstrap.sh` first on a fresh machine (the README does).

set shell := ["bash", "-euo", "pipefail", "-c"]

export CARGO_TERM_COLOR := "never"

# List the recipes.
default:
    @just --list

# The demo: the Star Wars scenario on this node (demo-up), then the live terminal UI on its flows; quitting it (q) tears everything down.
demo:
    cargo build --release -p datapath -p flow-exporter -p hubble-tui
    ./scripts/demo-up.sh
    trap ./scripts/demo-down.sh EXIT; trap 'exit 0' INT TERM; if [ -t 1 ]; then target/release/hubble tui --server 127.0.0.1:4245; else target/release/hubble observe --server 127.0.0.1:4245 --follow; fi || true

# The Star Wars demo in the background (root): node netns, agent, pods via the CNI plugin, policy, traffic, Observer API on 127.0.0.1:4245.
demo-up:
    cargo build --release -p datapath -p flow-exporter -p hubble-tui
    ./scripts/demo-up.sh

# Remove everything demo-up made (safe to run twice).
demo-down:
    ./scripts/demo-down.sh

# The exporter on the synthetic source at 127.0.0.1:4245 (no datapath, no root), and a live follow of its flows.
demo-synthetic rate="50":
    cargo build --release -p flow-exporter --bin flow-exporter -p hubble-tui --bin hubble
    ./scripts/demo.sh {{rate}}

# Everything CI checks: formatting, lints, the whole test suite (privileged tests included), the notebook, fuzz smoke runs.
test: lint
    mkdir -p target
    cargo test --workspace --no-fail-fast 2>&1 | tee target/test.log || true
    ./scripts/test-summary.sh target/test.log
    ./scripts/notebook-test.sh
    just fuzz-smoke 20

# cargo fmt --check, clippy with warnings denied, and flow-filter/flow-parser free of an async runtime.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo test -p flow-filter --test runtime_free

# Benchmarks: prints every figure the README's performance section quotes.
bench:
    cargo bench -p flow-parser --bench decode -- --noplot
    cargo bench -p flow-filter --bench match -- --noplot
    cargo bench -p flow-exporter --bench exporter -- --noplot
    cargo run --release -p flow-exporter --example e2e_bench
    cargo bench -p hubble-tui --bench observe -- --noplot
    cargo run --release -p hubble-tui --example tui_bench
    cargo run --release -p relay --example relay_bench
    cargo run --release -p archiver --example archive_bench -- 10000000 target/bench-archive
    cargo run --release -p it --example datapath_bench

# Short runs of every cargo-fuzz target (nightly only for this).
fuzz-smoke secs="20":
    ./scripts/fuzz-smoke.sh {{secs}}

# Remove build outputs.
clean:
    cargo clean

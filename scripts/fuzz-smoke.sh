#!/usr/bin/env bash
# Runs every cargo-fuzz target of the workspace for a few seconds each.
# Needs the nightly toolchain (present on these machines) and cargo-fuzz,
# which is installed on first use.
set -euo pipefail
secs=${1:-20}
cd "$(dirname "$0")/.."
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz-smoke: no nightly toolchain; cargo fuzz needs one" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz" >&2
    cargo install -q cargo-fuzz --locked
fi
for dir in */fuzz; do
    [ -f "$dir/Cargo.toml" ] || continue
    crate=${dir%/fuzz}
    for target in $(cd "$crate" && cargo +nightly fuzz list); do
        echo "fuzz-smoke: $crate/$target for ${secs}s" >&2
        (cd "$crate" && cargo +nightly fuzz run "$target" -- -max_total_time="$secs" -rss_limit_mb=2048 >/dev/null 2>&1) \
            || { echo "fuzz-smoke: $crate/$target FAILED (re-run: cd $crate && cargo +nightly fuzz run $target)" >&2; exit 1; }
    done
done
echo "fuzz-smoke: all targets ran ${secs}s without a crash" >&2

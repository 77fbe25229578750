#!/usr/bin/env bash
# Checks that every release build shares one set of compiled dependencies:
# the units (crate + features + profile) of `cargo build --release
# --workspace` (what a packager and `just build` run) must all reappear in a
# build that also selects tests, benches and examples (`just bench`), and the
# demo's and the harness's narrower builds must need nothing beyond it. When
# this fails, a dev-dependency turned on a feature the normal build lacks:
# add that feature to workspace-hack/Cargo.toml (the output names the crate).
#
# Reads cargo's unit graph (`--unit-graph`, which builds nothing); that flag
# is unstable, so it runs on the nightly toolchain (present on these machines,
# see scripts/fuzz-smoke.sh), with the same Cargo.lock (--locked).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "check-release-units: no nightly toolchain (cargo's --unit-graph needs one)" >&2
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
graph() { # name, cargo args...
    local name=$1; shift
    cargo +nightly "$@" --unit-graph -Z unstable-options --locked >"$tmp/$name.json" 2>"$tmp/$name.err" \
        || { cat "$tmp/$name.err" >&2; exit 1; }
}
graph ws build --release --workspace
graph all build --release --workspace --all-targets
graph bench build --workspace --profile release --benches --examples
graph it build --release --workspace --bin datapath --bin datapath-cni --bin flow-exporter
graph tui build --release --workspace --bin flow-exporter --bin hubble
python3 - "$tmp" <<'PY'
import json, sys
tmp = sys.argv[1]
def units(name):
    g = json.load(open(f"{tmp}/{name}.json"))
    return {
        (u["pkg_id"].split("#")[-1], u["target"]["name"], ",".join(u["target"]["kind"]),
         ",".join(u["features"]), json.dumps(u["profile"], sort_keys=True))
        for u in g["units"]
        if u["mode"] == "build" and u["target"]["kind"] not in (["bin"], ["example"], ["test"], ["bench"])
    }
ws, everything = units("ws"), units("all")
bad = []
for name, small, big in [("release --workspace", ws, everything),
                         ("bench build", units("bench"), everything),
                         ("it harness build", units("it"), ws),
                         ("tui bench build", units("tui"), ws)]:
    for u in sorted(small - big):
        bad.append(f"{name}: {u[0]} ({u[1]}, {u[2]}) features [{u[3]}] is not shared")
if bad:
    print("check-release-units: release builds would compile crates twice:", file=sys.stderr)
    for b in bad[:40]:
        print("  " + b, file=sys.stderr)
    sys.exit(1)
print(f"check-release-units: {len(ws)} library units shared by every release build", file=sys.stderr)
PY

#!/usr/bin/env bash
# Builds an archive with the archiver's writer (synthetic flows over three
# hours) and executes notebooks/flow-archive.ipynb against it.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=target/notebook-archive
rm -rf "$dir"
cargo run -q -p archiver --example make_archive -- "$dir" 20000 3
ARCHIVE_DIR="$PWD/$dir" PLOT_OUT="$PWD/target/notebook-plot.png" \
    python3 scripts/run_notebook.py notebooks/flow-archive.ipynb target/flow-archive.executed.ipynb

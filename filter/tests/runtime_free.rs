//! Keeps flow-filter and flow-parser runtime-free: their normal dependency
//! trees (`cargo tree -p <crate> -e normal`, features as those crates alone
//! resolve them) hold no tokio, hyper, axum or tonic. They reach the Hubble
//! messages through `proto` without its `grpc` feature; a crate that turns
//! `grpc` on (or adds an async runtime) here fails this test.
//!
//! Feature unification in `cargo test --workspace` still builds `proto` with
//! `grpc` for the whole run; that is fine, this checks the crates' own trees.

use std::path::Path;
use std::process::Command;

/// Crate-name prefixes that mean an async runtime or gRPC transport.
const FORBIDDEN: &[&str] = &["tokio", "hyper", "axum", "tonic"];

/// The crates of `cargo tree -p <package> -e normal` (one name per line).
fn normal_dependencies(package: &str) -> Vec<String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("flow-filter lives in the workspace");
    let out = Command::new(env!("CARGO"))
        .current_dir(workspace)
        .args(["tree", "-p", package, "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}"])
        .output()
        .expect("runs cargo tree");
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("cargo tree prints UTF-8")
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn assert_runtime_free(package: &str) {
    let deps = normal_dependencies(package);
    assert!(
        deps.iter().any(|d| d == "proto"),
        "{package}'s tree should list proto: {deps:?}"
    );
    let bad: Vec<&String> = deps
        .iter()
        .filter(|d| FORBIDDEN.iter().any(|f| d.starts_with(f)))
        .collect();
    assert!(
        bad.is_empty(),
        "{package} must not depend on an async runtime or gRPC transport, \
         but its normal tree has {bad:?} (is proto's `grpc` feature on?)"
    );
}

#[test]
fn flow_filter_has_no_runtime_or_transport() {
    assert_runtime_free("flow-filter");
}

#[test]
fn flow_parser_has_no_runtime_or_transport() {
    assert_runtime_free("flow-parser");
}

//! The binaries of other packages (`datapath`, `datapath-cni`,
//! `flow-exporter`, `relay`, `hubble`, `flow-archiver`). Cargo gives a test only its own package's binaries, so
//! the harness builds these once per process with the cargo that runs it
//! (`$CARGO`), in the profile of the running executable, and finds them next
//! to it in the target directory. `IT_BIN_DIR` points at prebuilt ones
//! instead (no build).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

static DIR: OnceLock<PathBuf> = OnceLock::new();

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The profile directory the running executable was built into
/// (`target/debug` for `target/debug/deps/x` or `target/debug/examples/x`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if matches!(
        dir.file_name().and_then(|n| n.to_str()),
        Some("deps" | "examples")
    ) {
        dir.pop();
    }
    dir
}

/// The directory holding `datapath`, `datapath-cni` and `flow-exporter`,
/// built on first use.
pub fn dir() -> &'static Path {
    DIR.get_or_init(|| {
        if let Some(d) = std::env::var_os("IT_BIN_DIR") {
            return PathBuf::from(d);
        }
        let dir = profile_dir();
        let release = dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace_root())
            .args(["build", "--workspace"])
            .args(["--bin", "datapath", "--bin", "datapath-cni"])
            .args([
                "--bin",
                "flow-exporter",
                "--bin",
                "relay",
                "--bin",
                "hubble",
                "--bin",
                "flow-archiver",
            ]);
        if release {
            cmd.arg("--release");
        }
        // The target directory of the running executable, whatever
        // CARGO_TARGET_DIR said when it was built.
        if let Some(target) = dir.parent() {
            cmd.env("CARGO_TARGET_DIR", target);
        }
        let st = cmd.status().expect("run cargo build");
        assert!(st.success(), "cargo build of datapath and flow-exporter");
        dir
    })
}

/// The path of one of the binaries.
pub fn bin(name: &str) -> PathBuf {
    let p = dir().join(name);
    assert!(p.is_file(), "{} missing", p.display());
    p
}

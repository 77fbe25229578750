//! Compiles the kernel programs (`ebpf/bpf/lxc.bpf.c`) with clang into
//! `$OUT_DIR/lxc.bpf.o`, which the library embeds.
//!
//! Without clang the crate still builds (so `cargo check` works on a machine
//! without the BPF toolchain): an empty object is embedded, a warning is
//! printed, and loading fails at run time with `DatapathError::ObjectMissing`.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let ebpf = manifest.join("../ebpf");
    let src = ebpf.join("bpf/lxc.bpf.c");
    let include = ebpf.join("include");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("lxc.bpf.o");

    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-changed={}", include.display());
    for entry in std::fs::read_dir(&include).expect("read ebpf/include") {
        println!(
            "cargo:rerun-if-changed={}",
            entry.expect("dir entry").path().display()
        );
    }
    println!("cargo:rerun-if-env-changed=CLANG");

    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".to_string());
    let result = Command::new(&clang)
        .args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf"])
        .arg("-I/usr/include/x86_64-linux-gnu")
        .arg(format!("-I{}", include.display()))
        .arg("-c")
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .output();
    match result {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "{clang} failed to compile {}:\n{}",
            src.display(),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => {
            println!(
                "cargo:warning=datapath: {clang} not runnable ({e}); embedding an empty BPF object (./bootstrap.sh installs clang)"
            );
            std::fs::write(&out, []).expect("write empty object");
        }
    }
}

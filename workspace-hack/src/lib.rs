//! Feature unification only: this crate has no code. Its `Cargo.toml`
//! lists the union of the features that the workspace's dependencies are
//! built with in any command (with or without tests, benches and examples),
//! so that every release build shares one set of artifacts. The binary
//! crates depend on it; the pure crates (proto, flow-filter, flow-parser,
//! ebpf) must not.

//! The `hubble` command line, a drop-in for upstream Hubble's CLI: `observe`
//! (every selector, filter and output flag, `--input-file`), `status`,
//! `list nodes|namespaces`, `watch peers`, `config` and `version`, over the
//! Hubble v1 gRPC API of our exporter, our relay or a Cilium Hubble relay.
//!
//! Layout: [`cli`] builds the command tree and runs a command line;
//! [`filters`] turns filter flags into `FlowFilter`s with upstream's
//! left/right pairing, `--not` and conflict rules; [`printer`] prints
//! responses exactly as upstream does (compact, dict, table, JSON);
//! [`conn`] dials (TLS, unix sockets, timeouts); [`config`] merges flags,
//! `HUBBLE_*` variables and the config file; [`input`] reads `--input-file`
//! with the server's filter semantics (`flow-filter`). The terminal UI will
//! live in this crate too.
//!
//! This crate must not depend on the datapath (`aya`) or on the exporter;
//! it talks to servers only through `proto`.

pub mod cli;
pub mod cmd;
pub mod config;
pub mod conn;
pub mod defaults;
pub mod filters;
pub mod gotime;
pub mod input;
pub mod printer;

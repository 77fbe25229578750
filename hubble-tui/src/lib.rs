//! The `hubble` command line, a drop-in for upstream Hubble's CLI: `observe`
//! (every selector, filter and output flag, `--input-file`), `map` (the
//! service map as text, DOT, Mermaid or JSON), `status`,
//! `list nodes|namespaces`, `watch peers`, `config` and `version`, plus the
//! live terminal UI `tui`, over the
//! Hubble v1 gRPC API of our exporter, our relay or a Cilium Hubble relay.
//!
//! Layout: [`cli`] builds the command tree and runs a command line,
//! dispatching to one module per subcommand in [`cmd`] or to [`tui`];
//! [`request`] holds what every streaming command shares (the [`request::Io`]
//! a command runs against, the filter and selector flags, `-o`, gRPC error
//! rendering, printing a stream); [`filters`] turns filter flags into
//! `FlowFilter`s with upstream's left/right pairing, `--not` and conflict
//! rules; [`printer`] prints responses exactly as upstream does (compact,
//! dict, table, JSON); [`conn`] dials (TLS, unix sockets, timeouts);
//! [`config`] merges flags, `HUBBLE_*` variables and the config file;
//! [`input_file`] reads `--input-file` with the server's filter semantics
//! (`flow-filter`); [`aggregate`] groups flows for `observe
//! --aggregate-by`; [`map`] builds the service map (`hubble map`, the
//! TUI's `m` view); [`defaults`] holds every default, period and limit;
//! [`tui`] is `hubble tui`, the live terminal UI (ratatui): a flow table
//! coloured by verdict that follows, pauses and scrolls, a detail pane,
//! live filter editing in the flags' syntax, counters, top talkers and
//! drops, a rate sparkline, node status and lost events, reconnecting by
//! itself; `--archive` replays an archive in it.
//!
//! Dependencies point one way (no module imports one that imports it back;
//! `tests/module_graph.rs` checks): `cli` → `cmd::*` / `tui` →
//! `request` → `filters` / `printer` / `config` / `conn` → `gotime` /
//! `defaults`.
//!
//! This crate must not depend on the datapath (`aya`) or on the exporter;
//! it talks to servers only through `proto`.

pub mod aggregate;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod conn;
pub mod defaults;
pub mod filters;
pub mod gotime;
pub mod input_file;
pub mod map;
pub mod printer;
pub mod request;
pub mod tui;

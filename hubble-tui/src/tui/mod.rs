//! `hubble tui`: the live terminal UI (ratatui on crossterm).
//!
//! Split as tokio-console splits its console: [`flags`] is the command
//! line (flags, the first request, the filter line); [`mod@run`] starts the
//! tasks and runs the UI loop; [`terminal`] owns the terminal (raw mode,
//! alternate screen, restored on panic); [`net`] streams `GetFlows` (or
//! replays an archive) and reconnects; [`controller`] is the UI's handle on
//! it; [`app`] is the model (the [`app::Inbox`] the stream fills, the
//! [`app::App`] the UI owns); [`stats`] aggregates every flow; [`ui`]
//! draws, one module per widget; [`keys`] maps keys to state changes.
//!
//! Two threads: the network task runs on the command's tokio runtime and
//! hands batches to the inbox under a mutex; the UI loop runs on a blocking
//! thread, polls keys with a short timeout (so input is never blocked by
//! the stream), and every [`crate::defaults::TUI_TICK`] takes what arrived
//! into the bounded history and draws, formatting only the rows on screen.
//! The terminal is restored when the loop ends, on error, and on panic.
//!
//! Dependencies inside point one way: `run` → `controller` → `net` →
//! `app` → `stats`, with `flags`, `keys`, `ui` and `terminal` beside them;
//! no submodule imports this one, which only re-exports.

pub mod app;
pub mod controller;
pub mod flags;
pub mod keys;
pub mod net;
pub mod run;
pub mod stats;
pub mod terminal;
pub mod ui;

pub use controller::Controller;
pub use flags::{Plan, filter_text, parse_filter_line, plan};
pub use run::run;

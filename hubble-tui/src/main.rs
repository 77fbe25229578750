//! `hubble`: see the crate documentation of `hubble_tui`.

use std::io::IsTerminal as _;

fn main() {
    let io = hubble_tui::cli::Io {
        out_is_terminal: std::io::stdout().is_terminal(),
        out: Box::new(std::io::stdout()),
        err: Box::new(std::io::stderr()),
    };
    std::process::exit(hubble_tui::cli::run(std::env::args_os(), io));
}

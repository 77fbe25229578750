//! `hubble version`.

use std::io::Write;

use crate::request::Io;

/// The version printed by `hubble version` and `--version`.
pub const VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));

/// Prints `hubble VERSION compiled with rustc on OS/ARCH`.
pub fn run(io: &mut Io) -> anyhow::Result<()> {
    writeln!(
        io.out,
        "hubble {VERSION} compiled with rustc on {}/{}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )?;
    Ok(())
}

//! One module per subcommand, called by [`crate::cli`]. What they share
//! with each other and with `tui` (the I/O, selector and filter flags,
//! `-o`, gRPC errors, printing a stream) is in [`crate::request`]; no
//! module here imports `cli` or another subcommand.

pub mod config;
pub mod events;
pub mod list;
pub mod map;
pub mod observe;
pub mod reflect;
pub mod status;
pub mod version;
pub mod watch;

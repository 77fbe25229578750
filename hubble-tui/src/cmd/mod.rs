//! One module per subcommand.

pub mod config;
pub mod list;
pub mod observe;
pub mod status;
pub mod version;
pub mod watch;

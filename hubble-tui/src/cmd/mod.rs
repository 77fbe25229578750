//! One module per subcommand.

pub mod config;
pub mod events;
pub mod list;
pub mod observe;
pub mod reflect;
pub mod status;
pub mod version;
pub mod watch;

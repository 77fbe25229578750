//! The library's error type.

use std::path::PathBuf;

/// What went wrong in the datapath library.
#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    /// The crate was built without clang, so no BPF object is embedded.
    #[error(
        "no BPF object embedded: the datapath crate was built without clang (run ./bootstrap.sh and rebuild)"
    )]
    ObjectMissing,
    /// Loading the object (maps creation, ELF parsing) failed.
    #[error("load BPF object: {0}")]
    Load(#[source] aya::EbpfError),
    /// A program is missing from the object or the verifier rejected it.
    #[error("program {name}: {source}")]
    Program {
        /// Program (C function) name.
        name: &'static str,
        /// The cause.
        #[source]
        source: aya::programs::ProgramError,
    },
    /// A program or map named in the loader is not in the object.
    #[error("{kind} {name} not found in the BPF object")]
    Missing {
        /// "program" or "map".
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// A map operation failed.
    #[error("map {map}: {source}")]
    Map {
        /// Map name.
        map: &'static str,
        /// The cause.
        #[source]
        source: aya::maps::MapError,
    },
    /// Attaching, swapping or pinning a TCX link failed.
    #[error("{op} {prog} on {iface}: {message}")]
    Link {
        /// What was attempted ("attach", "pin", "replace").
        op: &'static str,
        /// Program name.
        prog: &'static str,
        /// Interface name.
        iface: String,
        /// The cause, rendered (aya's link errors are not all `Send`).
        message: String,
    },
    /// Creating, inspecting or removing a network device failed, or a
    /// device of that name exists with another type or setting.
    #[error("{op} device {iface}: {message}")]
    Device {
        /// What was attempted ("create vxlan", "inspect", "remove").
        op: &'static str,
        /// Device name.
        iface: String,
        /// The cause (the `ip` command's error, or what is wrong).
        message: String,
    },
    /// A file-system operation on a pin, a pin directory or a netns handle failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An argument is out of range (prefix length, port, ...).
    #[error("invalid {what}: {value}")]
    Invalid {
        /// What was invalid.
        what: &'static str,
        /// The offending value.
        value: String,
    },
}

impl DatapathError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn map(map: &'static str, source: aya::maps::MapError) -> Self {
        Self::Map { map, source }
    }
}

/// Result alias of the library.
pub type Result<T, E = DatapathError> = std::result::Result<T, E>;

//! The eBPF CNI datapath, user-space side: loads the pod programs of
//! `ebpf/bpf/lxc.bpf.c` (compiled by build.rs with clang and embedded),
//! pins their maps in a per-node bpffs directory, attaches them to the
//! host side of pod veths through pinned TCX links (so a restarted agent
//! swaps programs without detaching), and programs the maps: endpoints,
//! ipcache, per-endpoint policy, conntrack inspection, configuration and
//! counters.
//!
//! - [`loader`]: [`Datapath::load`] (pin re-adoption with shape checks),
//!   [`Datapath::attach`], [`loader::detach`], [`loader::unpin_all`].
//! - [`maps`]: `#[repr(C)]` mirrors of `ebpf/include/dp_types.h` (layout
//!   checked against the C compiler) and [`Maps`], the typed programming API.
//! - [`netns`]: per-operation network-namespace switching on a dedicated
//!   thread.
//!
//! The kernel side and its decisions are documented in the C headers under
//! `ebpf/include/dp_*.h`. This crate is the only one besides the exporter's
//! ring-buffer source that touches the kernel; it must not depend on the
//! exporter, the parser or any gRPC code (tests excepted).

pub mod defaults;
pub mod error;
pub mod loader;
pub mod maps;
pub mod netns;

#[cfg(test)]
mod layout_tests;

pub use error::{DatapathError, Result};
pub use loader::{AttachReport, AttachTarget, Datapath, LinkOutcome, LoadOptions, MapSizes};
pub use maps::{Aggregation, Config, Direction, Endpoint, Maps, PolicyAction, PolicyEntry};

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
//! Part 2, the agent and its pure building blocks:
//! - [`identity`]: identities from security-relevant labels (Cilium's
//!   reserved ones, stable allocation ≥ 256, node-local CIDR identities);
//! - [`policy`]: CiliumNetworkPolicy-shaped YAML → validated [`policy::Policy`]
//!   → per-endpoint map entries and enforcement flags, as a minimal diff;
//! - [`store`]: the cluster-state store interface (DESIGN §3) and its
//!   single-node JSON-file implementation; [`ipam`]: the node's pod CIDR;
//! - [`agent`]: endpoint manager and convergence of store + policies into
//!   the maps, enrichment file for the exporter; [`server`]: its API on a
//!   unix socket (axum), [`api`]: wire types and the blocking client the
//!   CNI plugin (`datapath-cni`) and the admin CLI use.
//!
//! The kernel side and its decisions are documented in the C headers under
//! `ebpf/include/dp_*.h`. This crate is the only one besides the exporter's
//! ring-buffer source that touches the kernel. It must not depend on the
//! exporter or on gRPC code; it uses `flow-parser` only for its enrichment
//! file format and to print events in `datapath monitor`.

pub mod agent;
pub mod api;
pub mod cidr;
pub mod cni;
pub mod defaults;
pub mod error;
pub mod identity;
pub mod ipam;
pub mod loader;
pub mod maps;
pub mod netns;
pub mod policy;
pub mod server;
pub mod store;

#[cfg(test)]
mod layout_tests;

pub use error::{DatapathError, Result};
pub use loader::{AttachReport, AttachTarget, Datapath, LinkOutcome, LoadOptions, MapSizes};
pub use maps::{Aggregation, Config, Direction, Endpoint, Maps, PolicyAction, PolicyEntry};

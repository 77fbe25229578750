//! The eBPF CNI datapath, user-space side: loads the pod programs of
//! `ebpf/bpf/lxc.bpf.c` (compiled by build.rs with clang and embedded),
//! pins their maps in a per-node bpffs directory, attaches them to the
//! host side of pod veths through pinned TCX links (so a restarted agent
//! swaps programs without detaching), and programs the maps: endpoints,
//! ipcache, per-endpoint policy, conntrack inspection, configuration and
//! counters.
//!
//! Laid out by concern:
//! - [`kernel`]: the kernel boundary: [`loader`] ([`Datapath::load`] with
//!   pin re-adoption and shape checks, [`Datapath::attach`], the pinned TCX
//!   links, [`Datapath::attach_overlay`]), [`maps`] ([`Maps`], the typed
//!   programming API over the `#[repr(C)]` mirrors of
//!   `ebpf/include/dp_types.h`, which live in the `ebpf` crate), [`netns`],
//!   [`tunnel`] (the node's VXLAN device of the overlay);
//! - [`policy`]: CiliumNetworkPolicy-shaped YAML → validated
//!   [`policy::Policy`] → per-endpoint map entries and enforcement flags, as
//!   a minimal diff; the labels and identities it selects on ([`identity`]:
//!   Cilium's reserved ones, stable allocation ≥ 256, node-local CIDR
//!   identities); [`cidr`] prefixes;
//! - [`agent`]: IPAM ([`ipam`]), the cluster store ([`store`]), the endpoint manager and convergence of store +
//!   policies into the maps ([`agent::Agent`]), its API server ([`server`])
//!   and wire types and blocking client ([`api`]);
//! - [`cni`]: the pure parts of the CNI plugin (`datapath-cni`);
//! - [`defaults`] and [`error`].
//!
//! The former flat module paths (`datapath::maps`, `datapath::loader`,
//! `datapath::identity`, ...) are re-exported.
//!
//! The kernel side and its decisions are documented in the C headers under
//! `ebpf/include/dp_*.h`. This crate is the only one besides the exporter's
//! ring-buffer source that touches the kernel. It must not depend on the
//! exporter or on gRPC code; it uses `flow-parser` only for its enrichment
//! file format and to print events in `datapath monitor`.

pub mod agent;
pub mod cni;
pub mod defaults;
pub mod error;
pub mod kernel;
pub mod policy;

pub use agent::{api, ipam, server, store};
pub use kernel::{lb, loader, maps, netns, tunnel};
pub use policy::{cidr, identity};

pub use error::{DatapathError, Result};
pub use kernel::loader::{
    AttachReport, AttachTarget, Datapath, LinkOutcome, LoadOptions, MapSizes, OverlayAttachReport,
};
pub use kernel::maps::{Aggregation, Config, Direction, Endpoint, Maps, PolicyAction, PolicyEntry};

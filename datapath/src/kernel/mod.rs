//! The kernel boundary: everything that makes BPF or namespace syscalls.
//!
//! - [`loader`]: [`Datapath::load`](loader::Datapath::load) (pin re-adoption
//!   with shape checks), [`Datapath::attach`](loader::Datapath::attach),
//!   [`Datapath::attach_overlay`](loader::Datapath::attach_overlay) and
//!   [`loader::unpin_all`];
//! - [`links`]: the pinned TCX links ([`links::links`], [`links::detach`],
//!   [`links::prune_defunct_links`]), re-exported by the loader;
//! - [`maps`]: [`Maps`](maps::Maps), the typed programming API over the
//!   pinned maps, whose keys and values are the `ebpf::maps` mirrors of
//!   `ebpf/include/dp_types.h`;
//! - [`lb`]: [`LbMaps`](lb::LbMaps), the service load-balancing maps
//!   (frontends, backends, reverse NAT, Maglev tables, affinity), and
//!   [`lb::maglev_table`];
//! - [`netns`]: per-operation network-namespace switching on a dedicated
//!   thread;
//! - [`tunnel`]: the node's VXLAN device of the overlay
//!   ([`tunnel::ensure_vxlan`], [`tunnel::remove_vxlan`]).
//!
//! Nothing here knows about policy, identities allocation or the agent; it
//! depends only on [`crate::defaults`] and [`crate::error`].

pub mod lb;
pub mod links;
pub mod loader;
pub mod maps;
pub mod netns;
pub mod tunnel;

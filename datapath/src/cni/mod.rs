//! The pure parts of the CNI plugin (`datapath-cni`): the CNI 1.0.0 wire
//! types (network configuration, result, error), `CNI_ARGS` parsing, label
//! sources, host-side interface naming and the pod MTU. The binary does the I/O.
//!
//! - `wire`: the wire types ([`NetConf`], [`CniResult`], [`CniError`],
//!   [`code`]);
//! - `args`: [`parse_cni_args`] and [`pod_identity`];
//! - `iface`: [`host_iface`], [`temp_iface`] and [`pod_mtu`].
//!
//! Their items are re-exported here; the submodules never import this
//! facade.

mod args;
mod iface;
mod wire;

pub use args::{parse_cni_args, pod_identity, pod_ports};
pub use iface::{host_iface, pod_mtu, temp_iface};
pub use wire::*;

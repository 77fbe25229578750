//! Network policy: CiliumNetworkPolicy-shaped YAML files, validated into
//! [`Policy`], and compiled with the endpoints and identities of a node into
//! the per-endpoint entries and enforcement flags of the `policy` and
//! `endpoints` maps (`ebpf/include/dp_policy.h` for the kernel side).
//!
//! Semantics (Cilium's):
//! - an endpoint selected by a rule that has `ingress` or `ingressDeny` is
//!   default-deny on ingress (likewise egress); otherwise that direction
//!   is allow-all and no entries are consulted;
//! - an allow rule's peers × ports become ALLOW entries, a deny rule's
//!   DENY entries; on the same key DENY wins, and the kernel lets any
//!   matching DENY win over any ALLOW;
//! - a `CiliumNetworkPolicy` is namespaced: its `endpointSelector`, and its
//!   peer selectors unless they name the namespace label, only select pods
//!   of its namespace (default `default`); a `CiliumClusterwideNetworkPolicy`
//!   is not;
//! - `fromCIDR`/`toCIDR` (and `…CIDRSet` with `except`) become ipcache
//!   prefixes with node-local CIDR identities; a CIDR selects every CIDR
//!   identity inside it (minus its exceptions), `world` selects them all;
//! - a rule with peers but no `toPorts` is L3-only (proto 0), a rule with
//!   `toPorts` but no peers L4-only (identity 0, any peer); an empty rule
//!   `{}` allows nothing (the usual way to say "default deny"), and so
//!   does a port rule that names no port (`toPorts: [{}]`,
//!   `toPorts: [{ports: []}]`), while `toPorts: []` is no `toPorts`.
//!
//! [`diff_entries`] turns desired entries into the minimal set of writes
//! and removals against what the map holds. Pure code: no I/O except
//! [`load_file`] and [`load_dir`].

pub mod cidr;
mod compile;
mod model;
mod raw;
mod validate;

pub use compile::*;
pub use model::*;
pub use validate::{is_policy_file, load_dir, load_file, parse_str};

/// A policy file or field that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {field}: {message}")]
pub struct PolicyError {
    /// The file (or other origin) of the document.
    pub origin: String,
    /// The field path (`spec.ingress[0].toPorts[0].ports[0].port`), or
    /// `document N` when the problem is the document as a whole.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

#[cfg(test)]
mod tests;

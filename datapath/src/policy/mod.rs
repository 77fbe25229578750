//! Network policy: CiliumNetworkPolicy-shaped YAML files, validated into
//! [`Policy`], and compiled with the endpoints and identities of a node into
//! the per-endpoint entries and enforcement flags of the `policy` and
//! `endpoints` maps (`ebpf/include/dp_policy.h` for the kernel side).
//!
//! Semantics (Cilium's):
//! - an endpoint selected by a rule that has a non-empty `ingress` or
//!   `ingressDeny` is default-deny on ingress (likewise egress); otherwise
//!   that direction is allow-all and no entries are consulted. An empty
//!   list (`ingress: []`) is no section; a rule without any non-empty
//!   section is rejected, as is a rule combining two kinds of peers
//!   (`toCIDR` and `toEndpoints`, `fromEndpoints` and `fromEntities`, ...);
//!   `enableDefaultDeny: {ingress: false}` on a rule keeps it from turning
//!   on default-deny: when no selecting rule with a section for that
//!   direction asks for it, the direction still enforces (denies apply)
//!   but gets a wildcard ALLOW entry, as Cilium's wildcard-allow rule;
//! - an allow rule's peers × ports become ALLOW entries, a deny rule's
//!   DENY entries; a port range becomes its maximal aligned prefixes
//!   ([`port_prefixes`]: the `policy` map is an LPM trie, as Cilium's);
//!   on the same key DENY wins, an ALLOW inside a DENY of the same peer
//!   becomes that DENY (so the kernel's longest match is a deny whenever
//!   one matches), and the kernel lets a DENY of the peer's or of the
//!   any-peer lookup win over any ALLOW;
//! - a `CiliumNetworkPolicy` is namespaced: its `endpointSelector`, and its
//!   peer selectors unless they name the namespace label, only select pods
//!   of its namespace (`default` when `metadata.namespace` is missing,
//!   marked `namespace_defaulted`); a `CiliumClusterwideNetworkPolicy`
//!   is not;
//! - entities: `world` selects WORLD, world-ipv4, world-ipv6 and every
//!   CIDR identity; `world-ipv4` the same without world-ipv6 (this
//!   datapath is IPv4-only, see [`Entity::WorldIpv4`]); a reserved name
//!   every reserved identity with its label (`remote-node`: 6 and 7);
//! - `fromCIDR`/`toCIDR` (and `…CIDRSet` with `except`) become ipcache
//!   prefixes with node-local CIDR identities; a CIDR selects every CIDR
//!   identity inside it (minus its exceptions), `world` selects them all;
//! - a rule with peers but no `toPorts` is L3-only (proto 0), a rule with
//!   `toPorts` but no peers L4-only (identity 0, any peer); an empty rule
//!   `{}` allows nothing (the usual way to say "default deny"), and so
//!   does a port rule that names no port (`toPorts: [{}]`,
//!   `toPorts: [{ports: []}]`), while `toPorts: []` is no `toPorts`;
//! - named ports (`port: http`) resolve per endpoint ([`CompileOptions`]):
//!   ingress against the selected endpoint's declared [`NamedPort`]s,
//!   egress against every endpoint's; unresolved, they add nothing;
//! - `icmps` (not beside `toPorts` in one rule) become `(ICMP, type)`
//!   ports for IPv4 fields (a full-length prefix: type 0 is type 0 alone)
//!   and nothing for IPv6 ones (IPv4-only datapath).
//!
//! [`diff_entries`] turns desired entries into the minimal set of writes
//! and removals against what the map holds. Pure code: no I/O except
//! [`load_file`] and [`load_dir`].
//!
//! Laid out along the pipeline, each step importing only the ones before
//! it: `raw` (the YAML shape serde reads) → `model` (the validated
//! [`Policy`]) → `validate` ([`parse_str`], [`load_file`], [`load_dir`]:
//! raw → model, or a [`PolicyError`] naming the field) → `compile`
//! ([`compile()`], [`diff_entries`]: model → map entries). [`identity`]
//! holds what policy selects on: labels and the identities allocated to
//! them (the agent and its cluster store persist the allocator); [`cidr`]
//! is the IPv4 prefix type that policies, IPAM and the store share. The items are
//! re-exported here; the submodules never import this facade.

pub mod cidr;
mod compile;
mod error;
pub mod identity;
mod model;
mod origins;
mod raw;
mod validate;

pub use compile::*;
pub use error::PolicyError;
pub use model::*;
pub use origins::PolicyOrigins;
pub use validate::{is_policy_file, load_dir, load_file, parse_str};

#[cfg(test)]
mod tests;

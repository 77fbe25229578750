//! Cilium's reserved security identities: the numbers the kernel programs
//! use (`DP_ID_*` in `include/dp_types.h`, checked by the layout test) and
//! the one table of their names (labels are `reserved:<name>`).

/// No identity (unknown source).
pub const UNKNOWN: u32 = 0;
/// The local node.
pub const HOST: u32 = 1;
/// Anything outside the cluster.
pub const WORLD: u32 = 2;
/// Pods not managed by this datapath.
pub const UNMANAGED: u32 = 3;
/// Health-check endpoints.
pub const HEALTH: u32 = 4;
/// Endpoints whose identity is not resolved yet.
pub const INIT: u32 = 5;
/// Other nodes of the cluster.
pub const REMOTE_NODE: u32 = 6;
/// The Kubernetes API server.
pub const KUBE_APISERVER: u32 = 7;
/// The ingress proxy.
pub const INGRESS: u32 = 8;
/// IPv4 outside the cluster (Cilium's dual-stack split of world; the
/// datapath itself uses [`WORLD`]).
pub const WORLD_IPV4: u32 = 9;
/// IPv6 outside the cluster (see [`WORLD_IPV4`]).
pub const WORLD_IPV6: u32 = 10;

/// Every reserved identity and its name, in numeric order, [`UNKNOWN`] first.
pub const NAMES: [(u32, &str); 11] = [
    (UNKNOWN, "unknown"),
    (HOST, "host"),
    (WORLD, "world"),
    (UNMANAGED, "unmanaged"),
    (HEALTH, "health"),
    (INIT, "init"),
    (REMOTE_NODE, "remote-node"),
    (KUBE_APISERVER, "kube-apiserver"),
    (INGRESS, "ingress"),
    (WORLD_IPV4, "world-ipv4"),
    (WORLD_IPV6, "world-ipv6"),
];

/// The reserved identities that carry labels: [`NAMES`] without [`UNKNOWN`].
pub const LABELLED: &[(u32, &str)] = NAMES.split_at(HOST as usize).1;

/// The reserved identities the datapath assigns (`DP_ID_HOST` ..=
/// `DP_ID_INGRESS`): [`LABELLED`] without the world-ipv4/-ipv6 split.
pub const DATAPATH: &[(u32, &str)] = NAMES
    .split_at(INGRESS as usize + 1)
    .0
    .split_at(HOST as usize)
    .1;

/// The name of reserved identity `id` (`2` → `"world"`, `0` → `"unknown"`).
pub fn name(id: u32) -> Option<&'static str> {
    NAMES.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
}

/// The reserved identity called `name` (`"world"` → `2`).
pub fn from_name(name: &str) -> Option<u32> {
    NAMES.iter().find(|(_, n)| *n == name).map(|(i, _)| *i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_numeric_order_and_subsets_are_ranges() {
        for (i, (id, _)) in NAMES.iter().enumerate() {
            assert_eq!(*id as usize, i);
        }
        assert_eq!(LABELLED.first(), Some(&(HOST, "host")));
        assert_eq!(LABELLED.last(), Some(&(WORLD_IPV6, "world-ipv6")));
        assert_eq!(DATAPATH.first(), Some(&(HOST, "host")));
        assert_eq!(DATAPATH.last(), Some(&(INGRESS, "ingress")));
        assert_eq!(DATAPATH.len(), 8);
    }

    #[test]
    fn lookups() {
        assert_eq!(name(REMOTE_NODE), Some("remote-node"));
        assert_eq!(name(UNKNOWN), Some("unknown"));
        assert_eq!(name(11), None);
        assert_eq!(from_name("world-ipv6"), Some(WORLD_IPV6));
        assert_eq!(from_name("nope"), None);
    }
}

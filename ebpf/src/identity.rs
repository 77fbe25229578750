//! Cilium's reserved security identities: the numbers the kernel programs
//! use (`DP_ID_*` in `include/dp_types.h`, checked by the layout test), the
//! one table of their names and their labels (`reserved:<name>`, plus
//! [`EXTRA_LABELS`]; see [`labels`]).

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
/// IPv4 outside the cluster: Cilium's dual-stack split of [`WORLD`]
/// (`GetWorldIdentityFromIP` gives 9 or 10 in a dual-stack cluster and 2
/// in a single-stack one). This datapath is IPv4-only and its kernel
/// programs resolve an unknown address to [`WORLD`], never to 9; policies
/// may still name it (`toEntities: [world-ipv4]`, which the policy
/// compiler also maps to [`WORLD`]).
pub const WORLD_IPV4: u32 = 9;
/// IPv6 outside the cluster (see [`WORLD_IPV4`]); never seen by this
/// IPv4-only datapath.
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

/// The reserved identities the kernel programs assign (`DP_ID_HOST` ..=
/// `DP_ID_INGRESS`): [`LABELLED`] without the world-ipv4/-ipv6 split,
/// which only policies name.
pub const DATAPATH: &[(u32, &str)] = NAMES
    .split_at(INGRESS as usize + 1)
    .0
    .split_at(HOST as usize)
    .1;

/// Reserved labels an identity carries besides its own `reserved:<name>`,
/// as `(id, name)`: Cilium gives kube-apiserver (7) the labels
/// `reserved:kube-apiserver` and `reserved:remote-node`
/// (`reservedIdentityLabels` in `pkg/identity/numericidentity.go`), so
/// whatever selects `remote-node` selects 7 too.
pub const EXTRA_LABELS: &[(u32, &str)] = &[(KUBE_APISERVER, "remote-node")];

/// The labels of reserved identity `id`, sorted (as Cilium lists them):
/// `reserved:<name>` and its [`EXTRA_LABELS`]; `None` for [`UNKNOWN`] and
/// numbers that are not reserved identities.
pub fn labels(id: u32) -> Option<Vec<String>> {
    let (_, own) = LABELLED.iter().find(|(i, _)| *i == id)?;
    let mut out: Vec<String> = std::iter::once(*own)
        .chain(
            EXTRA_LABELS
                .iter()
                .filter(|(i, _)| *i == id)
                .map(|(_, n)| *n),
        )
        .map(|n| format!("reserved:{n}"))
        .collect();
    out.sort();
    Some(out)
}

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

    #[test]
    fn labels_are_ciliums() {
        assert_eq!(labels(HOST).unwrap(), ["reserved:host"]);
        assert_eq!(
            labels(KUBE_APISERVER).unwrap(),
            ["reserved:kube-apiserver", "reserved:remote-node"]
        );
        assert_eq!(labels(WORLD_IPV4).unwrap(), ["reserved:world-ipv4"]);
        assert_eq!(labels(WORLD_IPV6).unwrap(), ["reserved:world-ipv6"]);
        assert_eq!(labels(UNKNOWN), None);
        assert_eq!(labels(11), None);
    }
}

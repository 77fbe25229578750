//! Security identities: numbers the datapath compares instead of labels.
//!
//! A pod's identity is derived from its *security-relevant* labels only
//! (Cilium's label filter: pod-template hashes and similar churn-prone
//! labels are left out, so every replica of a Deployment shares one
//! identity). Labels are strings in Cilium's `source:key=value` form
//! (`k8s:org=empire`, `reserved:host`, `cidr:10.0.0.0/8`); every pod label
//! set includes `k8s:io.kubernetes.pod.namespace=<ns>`.
//!
//! Numbering, as Cilium's:
//! - 1..=10 are the reserved identities ([`ebpf::identity::LABELLED`]):
//!   1..=8 the ones the datapath assigns, 9 and 10 Cilium's world-ipv4 and
//!   world-ipv6, which only policies name; their labels are Cilium's
//!   (kube-apiserver, 7, also carries `reserved:remote-node`);
//! - [`MIN_USER`].. are cluster-wide identities of label sets, allocated
//!   in order and stable (the allocator is persisted by the cluster store);
//! - [`CIDR_BASE`].. are node-local identities of CIDR prefixes used in
//!   policy (Cilium's local scope bit, `1 << 24`).
//!
//! Pure code: no I/O.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// First identity allocated to a label set (below are reserved ones).
pub const MIN_USER: u32 = 256;

/// First node-local identity (CIDR prefixes), Cilium's local scope bit.
pub const CIDR_BASE: u32 = 1 << 24;

/// The label holding a pod's namespace.
pub const NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";

/// The label holding the cluster name.
pub const CLUSTER_LABEL: &str = "io.cilium.k8s.policy.cluster";

/// A set of labels in `source:key=value` form, kept sorted.
pub type LabelSet = BTreeSet<String>;

/// Names of the reserved identities (as in `reserved:<name>`), by id:
/// [`ebpf::identity::LABELLED`], the one table.
pub const RESERVED: &[(u32, &str)] = ebpf::identity::LABELLED;

/// The reserved identity called `name` (`host`, `world`, ...).
pub fn reserved_id(name: &str) -> Option<u32> {
    RESERVED.iter().find(|(_, n)| *n == name).map(|(id, _)| *id)
}

/// The name of reserved identity `id`.
pub fn reserved_name(id: u32) -> Option<&'static str> {
    RESERVED.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
}

/// The labels of reserved identity `id`: `{reserved:<name>}`, and
/// `reserved:remote-node` too for kube-apiserver (7), as in Cilium
/// ([`ebpf::identity::labels`]).
pub fn reserved_labels(id: u32) -> Option<LabelSet> {
    ebpf::identity::labels(id).map(LabelSet::from_iter)
}

/// One label split into `(source, key, value)`. The source is what comes
/// before the first `:` if that `:` precedes any `=`; otherwise `""`.
pub fn split_label(label: &str) -> (&str, &str, &str) {
    let (source, rest) = match (label.find(':'), label.find('=')) {
        (Some(c), Some(e)) if c < e => (&label[..c], &label[c + 1..]),
        (Some(c), None) => (&label[..c], &label[c + 1..]),
        _ => ("", label),
    };
    match rest.split_once('=') {
        Some((k, v)) => (source, k, v),
        None => (source, rest, ""),
    }
}

/// Whether a pod label key is security-relevant (Cilium's default label
/// filter, reduced to what matters for pods): hashes and generation
/// counters that differ between replicas or rollouts are not.
pub fn is_security_relevant(key: &str) -> bool {
    const EXCLUDED: [&str; 7] = [
        "pod-template-hash",
        "pod-template-generation",
        "controller-revision-hash",
        "controller-uid",
        "statefulset.kubernetes.io/pod-name",
        "batch.kubernetes.io/controller-uid",
        "apps.kubernetes.io/pod-index",
    ];
    !EXCLUDED.contains(&key) && !key.starts_with("annotation.")
}

/// The identity labels of a pod: its security-relevant labels with the
/// `k8s:` source, its namespace and its cluster.
pub fn pod_labels(namespace: &str, labels: &BTreeMap<String, String>, cluster: &str) -> LabelSet {
    let mut set: LabelSet = labels
        .iter()
        .filter(|(k, _)| is_security_relevant(k))
        .map(|(k, v)| format!("k8s:{k}={v}"))
        .collect();
    set.insert(format!("k8s:{NAMESPACE_LABEL}={namespace}"));
    if !cluster.is_empty() {
        set.insert(format!("k8s:{CLUSTER_LABEL}={cluster}"));
    }
    set
}

/// The labels of a CIDR identity (it is also part of `world`, as in Cilium).
pub fn cidr_labels(cidr: &str) -> LabelSet {
    LabelSet::from([format!("cidr:{cidr}"), "reserved:world".to_string()])
}

/// What kind of identity a number is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// 0: no identity.
    Unknown,
    /// 1..=10 (and the rest of 1..256).
    Reserved,
    /// A label set's cluster-wide identity.
    Cluster,
    /// A node-local CIDR identity.
    Cidr,
}

/// The scope of `id`.
pub fn scope(id: u32) -> Scope {
    match id {
        0 => Scope::Unknown,
        1..MIN_USER => Scope::Reserved,
        MIN_USER..CIDR_BASE => Scope::Cluster,
        _ => Scope::Cidr,
    }
}

/// Stable allocation of identities to label sets.
///
/// Allocation is idempotent (the same labels always get the same id) and
/// ids are never reused while allocated. The state is serializable so the
/// cluster store persists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityAllocator {
    /// Allocated identities (reserved ones are implicit).
    ids: BTreeMap<u32, LabelSet>,
    #[serde(skip)]
    by_labels: BTreeMap<LabelSet, u32>,
    #[serde(skip)]
    ranges: Ranges,
}

/// The half-open id ranges an allocator hands out: `[MIN_USER, CIDR_BASE)`
/// for label sets and `[CIDR_BASE, u32::MAX)` for CIDRs (tests shrink them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ranges {
    user: (u32, u32),
    cidr: (u32, u32),
}

impl Default for Ranges {
    fn default() -> Self {
        Self {
            user: (MIN_USER, CIDR_BASE),
            cidr: (CIDR_BASE, u32::MAX),
        }
    }
}

/// Why an identity could not be allocated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Every id of the range is allocated.
    #[error("identity space exhausted: no free {scope:?} identity in {lo}..{hi}")]
    Exhausted {
        /// Which range.
        scope: Scope,
        /// First id of the range.
        lo: u32,
        /// End of the range (exclusive).
        hi: u32,
    },
}

impl IdentityAllocator {
    /// An empty allocator.
    pub fn new() -> Self {
        Self::default()
    }

    /// An allocator holding exactly `ids` (a view a store assembles from
    /// what it holds; reserved ids stay implicit).
    pub fn from_allocated(ids: BTreeMap<u32, LabelSet>) -> Self {
        let mut a = Self {
            ids,
            ..Self::default()
        };
        a.reindex();
        a
    }

    /// Rebuilds the reverse index after deserialization.
    pub fn reindex(&mut self) {
        self.by_labels = self.ids.iter().map(|(k, v)| (v.clone(), *k)).collect();
    }

    /// The identity of `labels`, allocating one if needed. A set made of a
    /// single `reserved:<name>` label, or equal to a reserved identity's
    /// labels (`{reserved:kube-apiserver, reserved:remote-node}`), gets the
    /// reserved id; a set with a `cidr:` label gets a node-local id. Fails
    /// when every id of the range is allocated.
    pub fn try_allocate(&mut self, labels: &LabelSet) -> Result<u32, IdentityError> {
        if labels.len() == 1
            && let Some(name) = labels.first().and_then(|l| l.strip_prefix("reserved:"))
            && let Some(id) = reserved_id(name)
        {
            return Ok(id);
        }
        if let Some((id, _)) = RESERVED
            .iter()
            .find(|(id, _)| reserved_labels(*id).as_ref() == Some(labels))
        {
            return Ok(*id);
        }
        if let Some(id) = self.by_labels.get(labels) {
            return Ok(*id);
        }
        let cidr = labels.iter().any(|l| l.starts_with("cidr:"));
        let (scope, lo, hi) = if cidr {
            (Scope::Cidr, self.ranges.cidr.0, self.ranges.cidr.1)
        } else {
            (Scope::Cluster, self.ranges.user.0, self.ranges.user.1)
        };
        // The smallest free id of the range after the last one allocated
        // there; gaps left by releases are reused only when the top is hit.
        let next = self
            .ids
            .range(lo..hi)
            .next_back()
            .map_or(lo, |(id, _)| id + 1);
        let id = if next < hi {
            next
        } else {
            (lo..hi)
                .find(|i| !self.ids.contains_key(i))
                .ok_or(IdentityError::Exhausted { scope, lo, hi })?
        };
        self.ids.insert(id, labels.clone());
        self.by_labels.insert(labels.clone(), id);
        Ok(id)
    }

    /// [`try_allocate`](Self::try_allocate) for callers that cannot run out
    /// (tests, offline compilation of a handful of policies): the ranges
    /// hold 2^24 − 256 label sets and 2^32 − 2^24 CIDRs. The agent and the
    /// cluster store use `try_allocate` and report exhaustion as an error.
    ///
    /// # Panics
    ///
    /// When the range of `labels` is exhausted.
    pub fn allocate(&mut self, labels: &LabelSet) -> u32 {
        self.try_allocate(labels).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The labels of `id` (reserved ones included).
    pub fn labels(&self, id: u32) -> Option<LabelSet> {
        reserved_labels(id).or_else(|| self.ids.get(&id).cloned())
    }

    /// The id allocated to `labels`, without allocating.
    pub fn lookup(&self, labels: &LabelSet) -> Option<u32> {
        self.by_labels.get(labels).copied()
    }

    /// Frees `id`; `false` if it was not allocated.
    pub fn release(&mut self, id: u32) -> bool {
        match self.ids.remove(&id) {
            Some(l) => {
                self.by_labels.remove(&l);
                true
            }
            None => false,
        }
    }

    /// Allocated identities (not the reserved ones), by id.
    pub fn allocated(&self) -> &BTreeMap<u32, LabelSet> {
        &self.ids
    }

    /// Every identity with its labels: reserved ones first.
    pub fn all(&self) -> Vec<(u32, LabelSet)> {
        RESERVED
            .iter()
            .map(|(id, _)| (*id, reserved_labels(*id).unwrap_or_default()))
            .chain(self.ids.iter().map(|(k, v)| (*k, v.clone())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(labels: &[&str]) -> LabelSet {
        labels.iter().map(|s| s.to_string()).collect()
    }

    fn kv(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reserved_identities_are_ciliums() {
        let table = [
            ("host", 1),
            ("world", 2),
            ("unmanaged", 3),
            ("health", 4),
            ("init", 5),
            ("remote-node", 6),
            ("kube-apiserver", 7),
            ("ingress", 8),
            ("world-ipv4", 9),
            ("world-ipv6", 10),
        ];
        let mut a = IdentityAllocator::new();
        for (name, id) in table {
            assert_eq!(reserved_id(name), Some(id));
            assert_eq!(reserved_name(id), Some(name));
            assert_eq!(a.allocate(&set(&[&format!("reserved:{name}")])), id);
            let mut want = set(&[&format!("reserved:{name}")]);
            if name == "kube-apiserver" {
                // Cilium's identity 7 is also a remote node.
                want.insert("reserved:remote-node".into());
            }
            assert_eq!(a.labels(id), Some(want.clone()), "{name}");
            assert_eq!(a.allocate(&want), id, "{name}: its full label set");
        }
        assert!(a.allocated().is_empty(), "reserved ids are implicit");
        assert_eq!(
            a.all().iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>()
        );
        assert_eq!(scope(0), Scope::Unknown);
        assert_eq!(scope(2), Scope::Reserved);
    }

    #[test]
    fn label_sets_get_stable_ids_from_256() {
        let mut a = IdentityAllocator::new();
        let empire = pod_labels("default", &kv(&[("org", "empire")]), "default");
        let alliance = pod_labels("default", &kv(&[("org", "alliance")]), "default");
        let e = a.allocate(&empire);
        let x = a.allocate(&alliance);
        assert_eq!((e, x), (256, 257));
        assert_eq!(a.allocate(&empire), 256, "idempotent");
        assert_eq!(a.lookup(&alliance), Some(257));
        // Survives a serialization round trip (what the store persists).
        let json = serde_json::to_string(&a).unwrap();
        let mut b: IdentityAllocator = serde_json::from_str(&json).unwrap();
        b.reindex();
        assert_eq!(b.allocate(&alliance), 257);
        assert_eq!(b.allocate(&set(&["k8s:app=new"])), 258);
        assert_eq!(scope(258), Scope::Cluster);
    }

    #[test]
    fn cidr_identities_are_node_local() {
        let mut a = IdentityAllocator::new();
        let c = a.allocate(&cidr_labels("10.0.0.0/8"));
        assert_eq!(c, CIDR_BASE);
        assert_eq!(a.allocate(&cidr_labels("192.168.0.0/16")), CIDR_BASE + 1);
        assert_eq!(a.allocate(&set(&["k8s:a=b"])), MIN_USER);
        assert_eq!(scope(c), Scope::Cidr);
        assert!(a.release(c));
        assert!(!a.release(c));
        assert_eq!(a.allocate(&cidr_labels("1.0.0.0/8")), CIDR_BASE + 2);
    }

    #[test]
    fn pod_labels_are_filtered_and_namespaced() {
        let l = pod_labels(
            "prod",
            &kv(&[
                ("app", "web"),
                ("pod-template-hash", "6fb5694d48"),
                ("controller-revision-hash", "x"),
            ]),
            "c1",
        );
        assert_eq!(
            l,
            set(&[
                "k8s:app=web",
                "k8s:io.cilium.k8s.policy.cluster=c1",
                "k8s:io.kubernetes.pod.namespace=prod",
            ])
        );
        // Replicas differing only in the template hash share an identity.
        let mut a = IdentityAllocator::new();
        let r2 = pod_labels(
            "prod",
            &kv(&[("app", "web"), ("pod-template-hash", "other")]),
            "c1",
        );
        assert_eq!(a.allocate(&l), a.allocate(&r2));
    }

    #[test]
    fn labels_split_into_source_key_value() {
        let cases = [
            ("k8s:org=empire", ("k8s", "org", "empire")),
            ("org=empire", ("", "org", "empire")),
            ("reserved:host", ("reserved", "host", "")),
            ("k8s:a=b:c", ("k8s", "a", "b:c")),
            ("cidr:10.0.0.0/8", ("cidr", "10.0.0.0/8", "")),
            (
                "k8s:io.kubernetes.pod.namespace=default",
                ("k8s", NAMESPACE_LABEL, "default"),
            ),
        ];
        for (label, want) in cases {
            assert_eq!(split_label(label), want, "{label}");
        }
    }

    impl IdentityAllocator {
        /// An allocator with tiny ranges, to run out of ids.
        fn with_ranges(user: (u32, u32), cidr: (u32, u32)) -> Self {
            Self {
                ranges: Ranges { user, cidr },
                ..Self::default()
            }
        }
    }

    #[test]
    fn exhaustion_is_an_error_and_released_ids_are_reused() {
        let mut a = IdentityAllocator::with_ranges((256, 258), (CIDR_BASE, CIDR_BASE + 1));
        assert_eq!(a.try_allocate(&set(&["k8s:a=1"])), Ok(256));
        assert_eq!(a.try_allocate(&set(&["k8s:a=2"])), Ok(257));
        let full = a.try_allocate(&set(&["k8s:a=3"])).unwrap_err();
        assert_eq!(
            full,
            IdentityError::Exhausted {
                scope: Scope::Cluster,
                lo: 256,
                hi: 258
            }
        );
        assert!(full.to_string().contains("identity space exhausted"));
        // Known labels and reserved ones still resolve when the range is full.
        assert_eq!(a.try_allocate(&set(&["k8s:a=1"])), Ok(256));
        assert_eq!(a.try_allocate(&set(&["reserved:world"])), Ok(2));
        assert!(a.release(256));
        assert_eq!(a.try_allocate(&set(&["k8s:a=3"])), Ok(256));

        assert_eq!(a.try_allocate(&cidr_labels("10.0.0.0/8")), Ok(CIDR_BASE));
        assert!(matches!(
            a.try_allocate(&cidr_labels("10.1.0.0/16")),
            Err(IdentityError::Exhausted {
                scope: Scope::Cidr,
                ..
            })
        ));
    }
}

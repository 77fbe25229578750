//! The desired load-balancer state of a node, as plain data: every
//! frontend (`VIP:port/proto`) with its ordered backends, stable ids, and
//! the minimal [`diff`] between two states. What the map writers apply;
//! nothing here touches the kernel.
//!
//! - **Frontends**: one per `ClusterIP:port/proto`; for a NodePort service
//!   also one per address of *this* node (`node_ips`: the agent's
//!   `--node-ip`, else every non-loopback IPv4 address of the node) and
//!   node port. A packet for another node's address never reaches this
//!   node's datapath, so those frontends would be dead entries; each
//!   agent programs its own addresses (the flows' enrichment, in
//!   contrast, names NodePort frontends of every node).
//! - **Backends** of a service with a selector: the cluster's endpoints
//!   (every node's) in the service's namespace whose labels match, at
//!   the numeric `targetPort` or the pod's declared port (`K8S_POD_PORTS`)
//!   of a named one (a pod without it is no backend), all active. Without a selector: the
//!   addresses of its EndpointSlices, at the slice port of the same name
//!   and protocol (or the slice port named by a named `targetPort`):
//!   ready → active; terminating and serving → terminating (no new
//!   connections, listed so established ones finish); else left out.
//!   Order: active backends by address, then terminating ones by address.
//! - **Ids**: a frontend keeps its `rev_nat_id` (u16) and a backend
//!   address its `backend_id` (u32) as long as it exists in consecutive
//!   states; new ones get the next id after the highest in use (wrapping to
//!   the lowest free), so a just-freed id is not handed out again at
//!   once (connections tracked with it may still be finishing). Seed the
//!   previous state from the maps after a restart to keep ids across it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::catalog::Catalog;
use super::model::{Affinity, LbAlgorithm, ObjectName, Protocol, Service, ServiceType, TargetPort};
use crate::agent::store::EndpointRecord;
use crate::policy::identity::pod_labels;
use crate::policy::{Op, Requirement, Selector};

/// The tracing target of this module's log lines (as the agent's
/// `datapath::services`).
const LOG_TARGET: &str = "datapath::services";

/// A frontend address: what a client connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Frontend {
    /// ClusterIP or node address.
    pub addr: Ipv4Addr,
    /// Service port or node port.
    pub port: u16,
    /// TCP or UDP.
    pub proto: Protocol,
}

impl fmt::Display for Frontend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.addr, self.port, self.proto)
    }
}

/// A backend address: where a connection is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Backend {
    /// Pod (or endpoint) address.
    pub addr: Ipv4Addr,
    /// Target port.
    pub port: u16,
    /// TCP or UDP.
    pub proto: Protocol,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.addr, self.port, self.proto)
    }
}

/// Whether a backend takes new connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendState {
    /// Chosen for new connections.
    Active,
    /// Finishing: established connections keep it, new ones never get it.
    Terminating,
}

impl BackendState {
    /// `active` or `terminating` (`cilium service list`'s spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Terminating => "terminating",
        }
    }
}

/// One backend slot of a frontend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendRef {
    /// Its id in [`LbState::backends`].
    pub id: u32,
    /// Its state for this frontend.
    pub state: BackendState,
}

/// Everything the datapath needs about one frontend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrontendEntry {
    /// Reverse-NAT id: replies from a backend are rewritten back to this
    /// frontend. Stable while the frontend exists.
    pub rev_nat_id: u16,
    /// The service.
    pub service: ObjectName,
    /// ClusterIP or NodePort (a NodePort service's ClusterIP frontend is
    /// `ClusterIP`).
    pub kind: ServiceType,
    /// The service port's name.
    pub port_name: String,
    /// Backend selection.
    pub algorithm: LbAlgorithm,
    /// Session affinity.
    pub affinity: Affinity,
    /// Active backends first (by address), then terminating ones.
    pub backends: Vec<BackendRef>,
}

impl FrontendEntry {
    /// The backends that take new connections.
    pub fn active(&self) -> impl Iterator<Item = &BackendRef> {
        self.backends
            .iter()
            .filter(|b| b.state == BackendState::Active)
    }
}

/// The desired load-balancer state of a node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LbState {
    /// Every frontend.
    pub frontends: BTreeMap<Frontend, FrontendEntry>,
    /// Every backend referenced by a frontend, by id.
    pub backends: BTreeMap<u32, Backend>,
}

impl LbState {
    /// Whether there is no service at all.
    pub fn is_empty(&self) -> bool {
        self.frontends.is_empty()
    }
}

/// The writes that turn one state into another. Apply in field order:
/// backends first (a frontend never points at a missing backend), then
/// frontends, then deletions of frontends, then of backends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LbDiff {
    /// Backends new or changed.
    pub upsert_backends: Vec<(u32, Backend)>,
    /// Frontends new or changed (id, backends, flags).
    pub upsert_frontends: Vec<(Frontend, FrontendEntry)>,
    /// Frontends gone.
    pub delete_frontends: Vec<Frontend>,
    /// Backends no frontend references any more.
    pub delete_backends: Vec<u32>,
}

impl LbDiff {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.upsert_backends.is_empty()
            && self.upsert_frontends.is_empty()
            && self.delete_frontends.is_empty()
            && self.delete_backends.is_empty()
    }
}

/// The minimal writes from `old` to `new`.
pub fn diff(old: &LbState, new: &LbState) -> LbDiff {
    LbDiff {
        upsert_backends: new
            .backends
            .iter()
            .filter(|(id, b)| old.backends.get(id) != Some(b))
            .map(|(id, b)| (*id, *b))
            .collect(),
        upsert_frontends: new
            .frontends
            .iter()
            .filter(|(f, e)| old.frontends.get(f) != Some(e))
            .map(|(f, e)| (*f, e.clone()))
            .collect(),
        delete_frontends: old
            .frontends
            .keys()
            .filter(|f| !new.frontends.contains_key(f))
            .copied()
            .collect(),
        delete_backends: old
            .backends
            .keys()
            .filter(|id| !new.backends.contains_key(id))
            .copied()
            .collect(),
    }
}

/// The policy-style selector of a service: `k8s:key=value` for every
/// selector entry, plus the service's namespace.
fn selector_of(s: &Service, sel: &BTreeMap<String, String>) -> Selector {
    let mut requirements: Vec<Requirement> = sel
        .iter()
        .map(|(k, v)| Requirement {
            source: Some("k8s".into()),
            key: k.clone(),
            op: Op::In,
            values: vec![v.clone()],
        })
        .collect();
    requirements.push(Requirement {
        source: Some("k8s".into()),
        key: crate::policy::identity::NAMESPACE_LABEL.into(),
        op: Op::In,
        values: vec![s.name.namespace.clone()],
    });
    Selector { requirements }
}

/// The next id after the highest in `used` (wrapping to the lowest free
/// in `1..=max`), or `None` if all are taken.
fn next_id(used: &BTreeSet<u64>, max: u64) -> Option<u64> {
    let after = used.last().map_or(1, |h| h + 1);
    if after <= max {
        return Some(after);
    }
    (1..=max).find(|i| !used.contains(i))
}

/// The backends of one service port, ordered (see the module doc).
fn backends_of(
    catalog: &Catalog,
    s: &Service,
    port_index: usize,
    endpoints: &[EndpointRecord],
) -> Vec<(Backend, BackendState)> {
    let p = &s.ports[port_index];
    let mut found: BTreeMap<Backend, BackendState> = BTreeMap::new();
    match &s.selector {
        Some(sel) => {
            let selector = selector_of(s, sel);
            for e in endpoints {
                if e.namespace == s.name.namespace
                    && selector.matches(&pod_labels(&e.namespace, &e.labels, ""))
                {
                    // A named targetPort is the pod's declared port of that
                    // name and protocol (`K8S_POD_PORTS`); a pod without it
                    // is no backend of this port, as in Kubernetes.
                    let target = match &p.target_port {
                        TargetPort::Number(n) => *n,
                        TargetPort::Name(n) => match e
                            .ports
                            .iter()
                            .find(|q| &q.name == n && q.protocol == p.protocol.number())
                        {
                            Some(q) => q.port,
                            None => continue,
                        },
                    };
                    found.insert(
                        Backend {
                            addr: e.ip,
                            port: target,
                            proto: p.protocol,
                        },
                        BackendState::Active,
                    );
                }
            }
        }
        None => {
            for entry in catalog.slices.values() {
                let sl = &entry.slice;
                if sl.name.namespace != s.name.namespace || sl.service != s.name.name {
                    continue;
                }
                let by_name = |n: &str| {
                    sl.ports
                        .iter()
                        .find(|q| q.name == n && q.protocol == p.protocol)
                };
                let sp = match &p.target_port {
                    TargetPort::Name(n) => by_name(n).or_else(|| by_name(&p.name)),
                    TargetPort::Number(_) => by_name(&p.name),
                };
                let Some(sp) = sp else { continue };
                for ep in &sl.endpoints {
                    let c = ep.conditions;
                    let state = if c.terminating {
                        if !c.serving {
                            continue;
                        }
                        BackendState::Terminating
                    } else if c.ready {
                        BackendState::Active
                    } else {
                        continue;
                    };
                    for a in &ep.addresses {
                        let b = Backend {
                            addr: *a,
                            port: sp.port,
                            proto: p.protocol,
                        };
                        let st = found.entry(b).or_insert(state);
                        *st = (*st).min(state);
                    }
                }
            }
        }
    }
    let mut v: Vec<_> = found.into_iter().collect();
    v.sort_by_key(|(b, st)| (*st, *b));
    v
}

/// The desired state: every frontend of every service of `catalog` with
/// the backends among `endpoints` (every node's) and slices, ids kept
/// from `prev`. `node_ips`: this node's addresses for NodePort frontends.
pub fn desired(
    catalog: &Catalog,
    endpoints: &[EndpointRecord],
    node_ips: &[Ipv4Addr],
    prev: &LbState,
) -> LbState {
    // Frontends and their backends, before ids.
    let mut wanted: BTreeMap<Frontend, (FrontendEntry, Vec<(Backend, BackendState)>)> =
        BTreeMap::new();
    for e in catalog.services.values() {
        let s = &e.service;
        for (i, p) in s.ports.iter().enumerate() {
            let backends = backends_of(catalog, s, i, endpoints);
            let entry = |kind| FrontendEntry {
                rev_nat_id: 0,
                service: s.name.clone(),
                kind,
                port_name: p.name.clone(),
                algorithm: s.algorithm,
                affinity: s.affinity,
                backends: Vec::new(),
            };
            let mut fronts = vec![(
                Frontend {
                    addr: s.cluster_ip,
                    port: p.port,
                    proto: p.protocol,
                },
                ServiceType::ClusterIP,
            )];
            if let Some(np) = e.node_ports.get(i).copied().flatten() {
                fronts.extend(node_ips.iter().map(|ip| {
                    (
                        Frontend {
                            addr: *ip,
                            port: np,
                            proto: p.protocol,
                        },
                        ServiceType::NodePort,
                    )
                }));
            }
            for (f, kind) in fronts {
                // The catalog guarantees unique ClusterIP frontends; a
                // node address equal to a ClusterIP keeps the first.
                wanted
                    .entry(f)
                    .or_insert_with(|| (entry(kind), backends.clone()));
            }
        }
    }

    // Backend ids: kept for known addresses, new ones after the highest.
    let prev_ids: BTreeMap<Backend, u32> = prev.backends.iter().map(|(id, b)| (*b, *id)).collect();
    let all_backends: BTreeSet<Backend> = wanted
        .values()
        .flat_map(|(_, bs)| bs.iter().map(|(b, _)| *b))
        .collect();
    let mut backends: BTreeMap<u32, Backend> = BTreeMap::new();
    let mut backend_id: BTreeMap<Backend, u32> = BTreeMap::new();
    let mut used: BTreeSet<u64> = prev.backends.keys().map(|i| u64::from(*i)).collect();
    for b in &all_backends {
        if let Some(id) = prev_ids.get(b) {
            backends.insert(*id, *b);
            backend_id.insert(*b, *id);
        }
    }
    for b in &all_backends {
        if backend_id.contains_key(b) {
            continue;
        }
        let Some(id) = next_id(&used, u64::from(u32::MAX)) else {
            tracing::error!(target: LOG_TARGET, backend = %b, "no free backend id");
            continue;
        };
        let id = id as u32;
        used.insert(u64::from(id));
        backends.insert(id, *b);
        backend_id.insert(*b, id);
    }

    // Frontend ids likewise.
    let mut used: BTreeSet<u64> = prev
        .frontends
        .values()
        .map(|e| u64::from(e.rev_nat_id))
        .collect();
    let mut frontends = BTreeMap::new();
    let mut new_fronts = Vec::new();
    for (f, (mut entry, bs)) in wanted {
        entry.backends = bs
            .iter()
            .filter_map(|(b, st)| {
                backend_id.get(b).map(|id| BackendRef {
                    id: *id,
                    state: *st,
                })
            })
            .collect();
        match prev.frontends.get(&f) {
            Some(p) => {
                entry.rev_nat_id = p.rev_nat_id;
                frontends.insert(f, entry);
            }
            None => new_fronts.push((f, entry)),
        }
    }
    for (f, mut entry) in new_fronts {
        let Some(id) = next_id(&used, u64::from(u16::MAX)) else {
            tracing::error!(target: LOG_TARGET, frontend = %f, "no free rev-NAT id");
            continue;
        };
        used.insert(id);
        entry.rev_nat_id = id as u16;
        frontends.insert(f, entry);
    }
    LbState {
        frontends,
        backends,
    }
}

//! Service load balancing, user-space side: [`LbMaps`] programs the pinned
//! `lb4_*` maps that the kernel's per-packet translation reads
//! (`ebpf/include/dp_lb.h`), and [`maglev_table`] builds a service's Maglev
//! lookup table.
//!
//! The model is Cilium's: a service *frontend* ([`Frontend`]: VIP, port,
//! protocol) has a master entry (slot 0: backend count, `rev_nat_id`,
//! flags, algorithm) and one slot per backend id; *backends* ([`Backend`])
//! live in their own table by id, so one backend can serve several
//! frontends and can be marked terminating in one write. The agent's
//! control plane (services, endpoint slices, backend ids and `rev_nat_id`
//! allocation) calls this API; nothing here knows about Kubernetes objects.
//!
//! Order of writes, so the kernel never sees a half-made service: backends
//! first ([`LbMaps::upsert_backend`]), then [`LbMaps::upsert_service`]
//! (Maglev table, backend slots, reverse NAT, master entry, stale slots
//! removed last); to remove, [`LbMaps::delete_service`] and then
//! [`LbMaps::delete_backend`] (refused while a service still lists it).
//!
//! A terminating backend gets no new connections but keeps its established
//! ones: the kernel skips it when choosing, and the connection's service
//! conntrack entry keeps pointing at it. Setting `terminating` with
//! [`LbMaps::upsert_backend`] takes effect at once; re-writing the service
//! afterwards moves it from the active slots to the terminating ones (what
//! [`LbMaps::list`] shows).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use aya::maps::{Array, HashMap, MapData, MapError, PerCpuArray};

pub use ebpf::maps::{
    LB_MAGLEV_M, LB_MAGLEV_SERVICES, Lb4AffinityKey, Lb4AffinityValue, Lb4Backend, Lb4Key,
    Lb4ReverseNat, Lb4Service, LbAlgorithm, lb_backend_flags, lb_flags, lb_rnat_flags, lb_stat,
};

use crate::error::{DatapathError, Result};
use crate::kernel::maps::{Plain, ip4_from_key, ip4_key, names, not_found_ok, open_map};

/// A backend's id: the key of `lb4_backends`, non-zero, allocated by the
/// agent (unique per node; the same id may serve several frontends).
pub type BackendId = u32;

/// The L4 protocol of a frontend or backend (what Kubernetes' `protocol`
/// allows and the datapath translates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum LbProto {
    /// TCP (6).
    Tcp = 6,
    /// UDP (17).
    Udp = 17,
}

impl LbProto {
    /// The protocol of an IP protocol number, if it is one of ours.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            6 => Some(Self::Tcp),
            17 => Some(Self::Udp),
            _ => None,
        }
    }
}

impl std::fmt::Display for LbProto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
        })
    }
}

impl std::str::FromStr for LbProto {
    type Err = DatapathError;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "TCP" => Ok(Self::Tcp),
            "UDP" => Ok(Self::Udp),
            _ => Err(DatapathError::Invalid {
                what: "service protocol (TCP or UDP)",
                value: s.to_string(),
            }),
        }
    }
}

/// Per-service options of the master entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServiceFlags {
    /// The frontend is a NodePort (node IP:nodePort).
    pub node_port: bool,
    /// `sessionAffinity: ClientIP` with this timeout in seconds (Kubernetes'
    /// default is 10800); `None` = no affinity.
    pub session_affinity_s: Option<u32>,
}

/// A service frontend: what clients connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frontend {
    /// The virtual IP (ClusterIP), or the node IP of a NodePort.
    pub vip: Ipv4Addr,
    /// Port, non-zero.
    pub port: u16,
    /// Protocol.
    pub proto: LbProto,
    /// Reverse-NAT id: replies of the frontend's connections get `vip:port`
    /// back as their source. Non-zero; one per frontend address (frontends
    /// with the same `vip:port`, e.g. TCP and UDP, may share it). Maglev
    /// needs it below [`LB_MAGLEV_SERVICES`].
    pub rev_nat_id: u16,
    /// Options.
    pub flags: ServiceFlags,
    /// Backend selection.
    pub algorithm: LbAlgorithm,
}

/// A backend: where a frontend's connections are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    /// Address (a pod, on any node).
    pub ip: Ipv4Addr,
    /// Port, non-zero.
    pub port: u16,
    /// Protocol (must match the frontends that use it).
    pub proto: LbProto,
    /// No new connections; established ones go on.
    pub terminating: bool,
}

/// One service as the maps hold it ([`LbMaps::list`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    /// The frontend (from its master entry).
    pub frontend: Frontend,
    /// The active slots' backend ids, in slot order.
    pub active: Vec<BackendId>,
    /// The terminating slots' backend ids.
    pub terminating: Vec<BackendId>,
}

/// The load-balancing maps of a node, opened from their pins.
pub struct LbMaps {
    dir: PathBuf,
    services: HashMap<MapData, Plain<Lb4Key>, Plain<Lb4Service>>,
    backends: HashMap<MapData, u32, Plain<Lb4Backend>>,
    rev_nat: HashMap<MapData, u16, Plain<Lb4ReverseNat>>,
    maglev: Array<MapData, u32>,
    affinity: HashMap<MapData, Plain<Lb4AffinityKey>, Plain<Lb4AffinityValue>>,
    stats: PerCpuArray<MapData, u64>,
}

/// The load balancer's counters since the maps were created, summed over
/// CPUs ([`LbMaps::stats`]). Connections refused for want of a backend are
/// the `SERVICE_BACKEND_NOT_FOUND` entry of [`crate::Maps::drop_stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LbStats {
    /// New connections given a backend.
    pub new_connections: u64,
    /// Packets translated to a backend.
    pub translated: u64,
    /// Replies translated back to their frontend.
    pub reverse_translated: u64,
}

impl std::fmt::Debug for LbMaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LbMaps").field("dir", &self.dir).finish()
    }
}

macro_rules! typed {
    ($dir:expr, $name:expr) => {
        open_map($dir, $name)?
            .try_into()
            .map_err(|e| DatapathError::map($name, e))?
    };
}

fn master_key(vip: Ipv4Addr, port: u16, proto: LbProto) -> Lb4Key {
    Lb4Key {
        vip: ip4_key(vip),
        dport: port,
        proto: proto as u8,
        scope: 0,
        backend_slot: 0,
        pad: 0,
    }
}

fn invalid(what: &'static str, value: impl std::fmt::Display) -> DatapathError {
    DatapathError::Invalid {
        what,
        value: value.to_string(),
    }
}

impl LbMaps {
    /// Opens the `lb4_*` maps pinned in a node's pin directory (by the
    /// agent's [`crate::Datapath::load`]).
    pub fn open(pin_dir: impl AsRef<Path>) -> Result<Self> {
        let dir = pin_dir.as_ref();
        Ok(Self {
            dir: dir.to_path_buf(),
            services: typed!(dir, names::LB4_SERVICES),
            backends: typed!(dir, names::LB4_BACKENDS),
            rev_nat: typed!(dir, names::LB4_REVERSE_NAT),
            maglev: typed!(dir, names::LB4_MAGLEV),
            affinity: typed!(dir, names::LB4_AFFINITY),
            stats: typed!(dir, names::LB4_STATS),
        })
    }

    /// The pin directory the maps were opened from.
    pub fn pin_dir(&self) -> &Path {
        &self.dir
    }

    // ---- backends ----------------------------------------------------------

    /// Adds or replaces backend `id`. Marking it terminating takes effect
    /// on the next new connection.
    pub fn upsert_backend(&mut self, id: BackendId, b: &Backend) -> Result<()> {
        if id == 0 {
            return Err(invalid("backend id (must be non-zero)", 0));
        }
        if b.port == 0 {
            return Err(invalid("backend port (must be non-zero)", format!("{b:?}")));
        }
        let v = Lb4Backend {
            ip: ip4_key(b.ip),
            port: b.port,
            proto: b.proto as u8,
            flags: if b.terminating {
                lb_backend_flags::TERMINATING
            } else {
                0
            },
        };
        self.backends
            .insert(id, Plain(v), 0)
            .map_err(|e| DatapathError::map(names::LB4_BACKENDS, e))
    }

    /// Backend `id`, if present.
    pub fn backend(&self, id: BackendId) -> Result<Option<Backend>> {
        match self.backends.get(&id, 0) {
            Ok(Plain(v)) => Ok(backend_from_raw(v)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(DatapathError::map(names::LB4_BACKENDS, e)),
        }
    }

    /// All backends, by id.
    pub fn backends(&self) -> Result<Vec<(BackendId, Backend)>> {
        let mut out = Vec::new();
        for kv in self.backends.iter() {
            let (k, Plain(v)) = kv.map_err(|e| DatapathError::map(names::LB4_BACKENDS, e))?;
            if let Some(b) = backend_from_raw(v) {
                out.push((k, b));
            }
        }
        out.sort_by_key(|(id, _)| *id);
        Ok(out)
    }

    /// Removes backend `id`; `false` if it was not there. Refused while a
    /// service still has it in a slot (remove it from the service first:
    /// established connections to it then end, as Cilium's do).
    pub fn delete_backend(&mut self, id: BackendId) -> Result<bool> {
        if let Some(svc) = self
            .list()?
            .into_iter()
            .find(|s| s.active.contains(&id) || s.terminating.contains(&id))
        {
            let f = svc.frontend;
            return Err(invalid(
                "backend deletion (still used by a service)",
                format!("backend {id} in {}:{}/{}", f.vip, f.port, f.proto),
            ));
        }
        not_found_ok(self.backends.remove(&id))
            .map_err(|e| DatapathError::map(names::LB4_BACKENDS, e))
    }

    // ---- services ------------------------------------------------------------

    /// Adds or replaces the frontend `f` with exactly these backends (ids
    /// written with [`Self::upsert_backend`] before; duplicates refused).
    /// Active backends get the slots 1..=count in the order given,
    /// terminating ones (by their backend flag) the slots after them.
    /// Connections already established keep their backend.
    pub fn upsert_service(&mut self, f: &Frontend, backends: &[BackendId]) -> Result<()> {
        let mut active = Vec::new();
        let mut terminating = Vec::new();
        for &id in backends {
            let b = self
                .backend(id)?
                .ok_or_else(|| invalid("backend id (not in lb4_backends)", id))?;
            if b.terminating {
                terminating.push(id);
            } else {
                active.push(id);
            }
        }
        self.upsert_service_slots(f, &active, &terminating)
    }

    /// [`Self::upsert_service`] with the split given per frontend (a
    /// control plane that tracks terminating endpoints per service): only
    /// `active` backends are chosen for new connections (and of those, none
    /// whose backend is flagged terminating); `terminating` ones are kept
    /// for listing. Every id must exist, once, with the frontend's protocol.
    pub fn upsert_service_slots(
        &mut self,
        f: &Frontend,
        active: &[BackendId],
        terminating: &[BackendId],
    ) -> Result<()> {
        if f.port == 0 {
            return Err(invalid(
                "frontend port (must be non-zero)",
                format!("{f:?}"),
            ));
        }
        if f.rev_nat_id == 0 {
            return Err(invalid("rev_nat_id (must be non-zero)", format!("{f:?}")));
        }
        if f.algorithm == LbAlgorithm::Maglev && u32::from(f.rev_nat_id) >= LB_MAGLEV_SERVICES {
            return Err(invalid(
                "rev_nat_id of a Maglev service (must be below 256)",
                f.rev_nat_id,
            ));
        }
        let all: Vec<BackendId> = active.iter().chain(terminating).copied().collect();
        if all.len() > usize::from(u16::MAX) {
            return Err(invalid("backend count (at most 65535)", all.len()));
        }
        for (i, &id) in all.iter().enumerate() {
            if all[..i].contains(&id) {
                return Err(invalid("backend list (duplicate id)", id));
            }
            let b = self
                .backend(id)?
                .ok_or_else(|| invalid("backend id (not in lb4_backends)", id))?;
            if b.proto != f.proto {
                return Err(invalid(
                    "backend protocol (differs from the frontend's)",
                    format!("backend {id} is {}, frontend {}", b.proto, f.proto),
                ));
            }
        }
        let rn = Lb4ReverseNat {
            vip: ip4_key(f.vip),
            port: f.port,
            flags: if f.flags.node_port {
                lb_rnat_flags::NODEPORT
            } else {
                0
            },
            pad: 0,
        };
        match self.rev_nat.get(&f.rev_nat_id, 0) {
            Ok(Plain(have)) if have != rn => {
                return Err(invalid(
                    "rev_nat_id (in use by another frontend)",
                    format!(
                        "{} is {}:{}",
                        f.rev_nat_id,
                        ip4_from_key(have.vip),
                        have.port
                    ),
                ));
            }
            Ok(_) | Err(MapError::KeyNotFound) => {}
            Err(e) => return Err(DatapathError::map(names::LB4_REVERSE_NAT, e)),
        }

        let mk = master_key(f.vip, f.port, f.proto);
        let old_slots = match self.services.get(&Plain(mk), 0) {
            Ok(Plain(m)) => u32::from(m.count) + u32::from(m.qcount),
            Err(MapError::KeyNotFound) => 0,
            Err(e) => return Err(DatapathError::map(names::LB4_SERVICES, e)),
        };

        if f.algorithm == LbAlgorithm::Maglev {
            let table = maglev_table(active, LB_MAGLEV_M);
            let base = u32::from(f.rev_nat_id) * LB_MAGLEV_M;
            for (i, id) in table.into_iter().enumerate() {
                self.maglev
                    .set(base + i as u32, id, 0)
                    .map_err(|e| DatapathError::map(names::LB4_MAGLEV, e))?;
            }
        }
        for (i, &id) in all.iter().enumerate() {
            let k = Lb4Key {
                backend_slot: i as u16 + 1,
                ..mk
            };
            let v = Lb4Service {
                backend_id: id,
                ..Lb4Service::default()
            };
            self.services
                .insert(Plain(k), Plain(v), 0)
                .map_err(|e| DatapathError::map(names::LB4_SERVICES, e))?;
        }
        self.rev_nat
            .insert(f.rev_nat_id, Plain(rn), 0)
            .map_err(|e| DatapathError::map(names::LB4_REVERSE_NAT, e))?;
        let mut flags = 0;
        if f.flags.node_port {
            flags |= lb_flags::NODEPORT;
        }
        if f.flags.session_affinity_s.is_some() {
            flags |= lb_flags::AFFINITY;
        }
        let master = Lb4Service {
            backend_id: 0,
            count: active.len() as u16,
            qcount: terminating.len() as u16,
            rev_nat_id: f.rev_nat_id,
            flags,
            algorithm: f.algorithm as u8,
            affinity_timeout_s: f.flags.session_affinity_s.unwrap_or(0),
        };
        self.services
            .insert(Plain(mk), Plain(master), 0)
            .map_err(|e| DatapathError::map(names::LB4_SERVICES, e))?;
        for slot in all.len() as u32 + 1..=old_slots {
            self.remove_slot(mk, slot as u16)?;
        }
        Ok(())
    }

    fn remove_slot(&mut self, mk: Lb4Key, slot: u16) -> Result<bool> {
        let k = Lb4Key {
            backend_slot: slot,
            ..mk
        };
        not_found_ok(self.services.remove(&Plain(k)))
            .map_err(|e| DatapathError::map(names::LB4_SERVICES, e))
    }

    /// Removes a frontend: its master entry first (new packets to it are no
    /// longer translated), then its slots, then its reverse NAT unless
    /// another frontend shares it. `false` if it was not there.
    pub fn delete_service(&mut self, vip: Ipv4Addr, port: u16, proto: LbProto) -> Result<bool> {
        let mk = master_key(vip, port, proto);
        let master = match self.services.get(&Plain(mk), 0) {
            Ok(Plain(m)) => m,
            Err(MapError::KeyNotFound) => return Ok(false),
            Err(e) => return Err(DatapathError::map(names::LB4_SERVICES, e)),
        };
        self.remove_slot(mk, 0)?;
        for slot in 1..=u32::from(master.count) + u32::from(master.qcount) {
            self.remove_slot(mk, slot as u16)?;
        }
        let shared = self
            .list()?
            .iter()
            .any(|s| s.frontend.rev_nat_id == master.rev_nat_id);
        if !shared {
            not_found_ok(self.rev_nat.remove(&master.rev_nat_id))
                .map_err(|e| DatapathError::map(names::LB4_REVERSE_NAT, e))?;
        }
        Ok(true)
    }

    /// Every service with its backend slots, sorted by frontend (for
    /// `datapath bpf lb list`).
    pub fn list(&self) -> Result<Vec<ServiceEntry>> {
        let mut masters: BTreeMap<(u32, u16, u8), (Lb4Key, Lb4Service)> = BTreeMap::new();
        let mut slots: BTreeMap<(u32, u16, u8), BTreeMap<u16, u32>> = BTreeMap::new();
        for kv in self.services.iter() {
            let (Plain(k), Plain(v)) =
                kv.map_err(|e| DatapathError::map(names::LB4_SERVICES, e))?;
            let fk = (u32::from(ip4_from_key(k.vip)), k.dport, k.proto);
            if k.backend_slot == 0 {
                masters.insert(fk, (k, v));
            } else {
                slots
                    .entry(fk)
                    .or_default()
                    .insert(k.backend_slot, v.backend_id);
            }
        }
        let mut out = Vec::new();
        for (fk, (k, m)) in masters {
            let Some(proto) = LbProto::from_u8(k.proto) else {
                continue;
            };
            let s = slots.remove(&fk).unwrap_or_default();
            let ids = |range: std::ops::RangeInclusive<u16>| -> Vec<BackendId> {
                range.filter_map(|i| s.get(&i).copied()).collect()
            };
            let count = m.count;
            out.push(ServiceEntry {
                frontend: Frontend {
                    vip: ip4_from_key(k.vip),
                    port: k.dport,
                    proto,
                    rev_nat_id: m.rev_nat_id,
                    flags: ServiceFlags {
                        node_port: m.flags & lb_flags::NODEPORT != 0,
                        session_affinity_s: (m.flags & lb_flags::AFFINITY != 0)
                            .then_some(m.affinity_timeout_s),
                    },
                    algorithm: LbAlgorithm::from_u8(m.algorithm),
                },
                active: ids(1..=count),
                terminating: ids(count.saturating_add(1)..=count.saturating_add(m.qcount)),
            });
        }
        Ok(out)
    }

    /// The Maglev table the kernel holds for `rev_nat_id`.
    pub fn maglev_entries(&self, rev_nat_id: u16) -> Result<Vec<BackendId>> {
        if u32::from(rev_nat_id) >= LB_MAGLEV_SERVICES {
            return Err(invalid("rev_nat_id of a Maglev service", rev_nat_id));
        }
        let base = u32::from(rev_nat_id) * LB_MAGLEV_M;
        (base..base + LB_MAGLEV_M)
            .map(|i| {
                self.maglev
                    .get(&i, 0)
                    .map_err(|e| DatapathError::map(names::LB4_MAGLEV, e))
            })
            .collect()
    }

    /// The load balancer's counters, summed over CPUs.
    pub fn stats(&self) -> Result<LbStats> {
        let get = |i: u32| -> Result<u64> {
            let v = self
                .stats
                .get(&i, 0)
                .map_err(|e| DatapathError::map(names::LB4_STATS, e))?;
            Ok(v.iter().sum())
        };
        Ok(LbStats {
            new_connections: get(lb_stat::NEW)?,
            translated: get(lb_stat::DNAT)?,
            reverse_translated: get(lb_stat::REV_NAT)?,
        })
    }

    /// The client's affinity entry for a service: `(backend, last use in
    /// boot ns)`.
    pub fn affinity(&self, client: Ipv4Addr, rev_nat_id: u16) -> Result<Option<(BackendId, u64)>> {
        let k = Lb4AffinityKey {
            client_ip: ip4_key(client),
            rev_nat_id,
            pad: 0,
        };
        match self.affinity.get(&Plain(k), 0) {
            Ok(Plain(v)) => Ok(Some((v.backend_id, v.last_used_ns))),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(DatapathError::map(names::LB4_AFFINITY, e)),
        }
    }
}

/// `datapath bpf lb list`, in the shape of `cilium bpf lb list`: per
/// frontend, its master entry (slot 0: kind and algorithm) then one line
/// per backend slot with `(rev_nat_id) (slot)`; terminating backends are
/// marked, a slot whose backend is missing shows `(missing)`.
pub fn render_lb_list(services: &[ServiceEntry], backends: &[(BackendId, Backend)]) -> String {
    use std::fmt::Write as _;
    let by_id: BTreeMap<BackendId, &Backend> = backends.iter().map(|(i, b)| (*i, b)).collect();
    let mut out = format!(
        "{:<24} BACKEND ADDRESS (REVNAT_ID) (SLOT)\n",
        "SERVICE ADDRESS"
    );
    for s in services {
        let f = &s.frontend;
        let mut tags = vec![if f.flags.node_port {
            "NodePort"
        } else {
            "ClusterIP"
        }];
        tags.push(match f.algorithm {
            LbAlgorithm::Random => "random",
            LbAlgorithm::Maglev => "maglev",
        });
        let affinity;
        if let Some(t) = f.flags.session_affinity_s {
            affinity = format!("affinity {t}s");
            tags.push(&affinity);
        }
        let front = format!("{}:{}/{}", f.vip, f.port, f.proto);
        let _ = writeln!(
            out,
            "{front:<24} 0.0.0.0:0 ({}) (0) [{}]",
            f.rev_nat_id,
            tags.join(", ")
        );
        for (slot, id) in s.active.iter().chain(&s.terminating).enumerate() {
            let addr = match by_id.get(id) {
                Some(b) => format!(
                    "{}:{}/{}{}",
                    b.ip,
                    b.port,
                    b.proto,
                    if b.terminating { " [terminating]" } else { "" }
                ),
                None => "(missing)".to_string(),
            };
            let _ = writeln!(
                out,
                "{:<24} {addr} ({}) ({}) id={id}",
                "",
                f.rev_nat_id,
                slot + 1
            );
        }
    }
    out
}

fn backend_from_raw(v: Lb4Backend) -> Option<Backend> {
    Some(Backend {
        ip: ip4_from_key(v.ip),
        port: v.port,
        proto: LbProto::from_u8(v.proto)?,
        terminating: v.flags & lb_backend_flags::TERMINATING != 0,
    })
}

/// SplitMix64: a well-mixed, stable hash of a backend id (the table must
/// come out the same on every node and every run).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The Maglev lookup table (Eisenbud et al., NSDI 2016, §3.4) of `m`
/// entries (`m` prime, well above the number of backends) for these
/// backends: each backend has its own permutation of the entries (offset
/// and skip from two hashes of its id) and the backends take turns
/// claiming their next free entry until all are taken. So every backend
/// gets `m / n` entries give or take one, the table depends only on the set
/// of ids (not their order), and removing one backend moves mostly the
/// entries it had. Empty input gives a table of zeros (no backend).
pub fn maglev_table(backends: &[BackendId], m: u32) -> Vec<BackendId> {
    let mut ids: Vec<BackendId> = backends.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let m64 = u64::from(m);
    let mut table: Vec<BackendId> = vec![0; m as usize];
    if ids.is_empty() || m == 0 {
        return table;
    }
    let perm: Vec<(u64, u64)> = ids
        .iter()
        .map(|&id| {
            let offset = mix(u64::from(id)) % m64;
            let skip = if m > 1 {
                mix(u64::from(id) ^ 0x5bd1_e995_0000_0000) % (m64 - 1) + 1
            } else {
                1
            };
            (offset, skip)
        })
        .collect();
    let mut next = vec![0u64; ids.len()];
    let mut filled = 0u32;
    loop {
        for (i, &id) in ids.iter().enumerate() {
            let (offset, skip) = perm[i];
            let mut c = (offset + next[i] * skip) % m64;
            while table[c as usize] != 0 {
                next[i] += 1;
                c = (offset + next[i] * skip) % m64;
            }
            table[c as usize] = id;
            next[i] += 1;
            filled += 1;
            if filled == m {
                return table;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(t: &[BackendId]) -> BTreeMap<BackendId, usize> {
        let mut c = BTreeMap::new();
        for &id in t {
            *c.entry(id).or_insert(0) += 1;
        }
        c
    }

    #[test]
    fn maglev_fills_every_entry_evenly() {
        for n in [1u32, 2, 3, 7, 10] {
            let ids: Vec<u32> = (1..=n).map(|i| i * 17).collect();
            let t = maglev_table(&ids, LB_MAGLEV_M);
            assert_eq!(t.len(), LB_MAGLEV_M as usize);
            let c = counts(&t);
            assert_eq!(c.len(), n as usize, "every backend has entries, no zero");
            let (lo, hi) = (*c.values().min().unwrap(), *c.values().max().unwrap());
            assert!(hi - lo <= 1, "n={n}: {lo}..{hi}");
        }
    }

    #[test]
    fn maglev_depends_on_the_set_not_the_order() {
        let a = maglev_table(&[5, 9, 2, 40], 251);
        let b = maglev_table(&[40, 2, 9, 5, 9], 251);
        assert_eq!(a, b);
    }

    #[test]
    fn maglev_removal_moves_few_other_entries() {
        let ids: Vec<u32> = (1..=10).collect();
        let before = maglev_table(&ids, LB_MAGLEV_M);
        let after = maglev_table(&ids[..9], LB_MAGLEV_M);
        assert!(!after.contains(&10));
        let moved = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| **b != 10 && b != a)
            .count();
        // The removed backend's ~102 entries must move; others mostly stay.
        assert!(
            moved < LB_MAGLEV_M as usize / 10,
            "{moved} entries of remaining backends moved"
        );
    }

    #[test]
    fn maglev_of_nothing_is_empty() {
        assert!(maglev_table(&[], 7).iter().all(|&x| x == 0));
        assert_eq!(maglev_table(&[3], 7), vec![3; 7]);
    }

    #[test]
    fn lb_list_renders_like_cilium() {
        let f = Frontend {
            vip: Ipv4Addr::new(10, 96, 0, 10),
            port: 80,
            proto: LbProto::Tcp,
            rev_nat_id: 7,
            flags: ServiceFlags {
                node_port: false,
                session_affinity_s: Some(10800),
            },
            algorithm: LbAlgorithm::Maglev,
        };
        let b = |last, terminating| Backend {
            ip: Ipv4Addr::new(10, 0, last, 2),
            port: 8080,
            proto: LbProto::Tcp,
            terminating,
        };
        let text = render_lb_list(
            &[ServiceEntry {
                frontend: f,
                active: vec![1],
                terminating: vec![2, 3],
            }],
            &[(1, b(1, false)), (2, b(2, true))],
        );
        let want = "\
SERVICE ADDRESS          BACKEND ADDRESS (REVNAT_ID) (SLOT)
10.96.0.10:80/TCP        0.0.0.0:0 (7) (0) [ClusterIP, maglev, affinity 10800s]
                         10.0.1.2:8080/TCP (7) (1) id=1
                         10.0.2.2:8080/TCP [terminating] (7) (2) id=2
                         (missing) (7) (3) id=3
";
        assert_eq!(text, want);
    }

    #[test]
    fn protocols_parse_with_a_clear_error() {
        assert_eq!("tcp".parse::<LbProto>().unwrap(), LbProto::Tcp);
        assert_eq!("UDP".parse::<LbProto>().unwrap(), LbProto::Udp);
        let e = "SCTP".parse::<LbProto>().unwrap_err().to_string();
        assert!(e.contains("SCTP") && e.contains("TCP or UDP"), "{e}");
        assert_eq!(LbProto::from_u8(6), Some(LbProto::Tcp));
        assert_eq!(LbProto::from_u8(1), None);
    }
}

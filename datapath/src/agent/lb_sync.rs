//! Keeps the kernel's load-balancer maps (`lb4_*`, [`crate::lb::LbMaps`])
//! equal to the agent's desired service state ([`LbState`], computed by
//! [`crate::agent::services`]), and attaches the NodePort program to the
//! devices that carry the node's NodePort addresses.
//!
//! The writer remembers what it last wrote ([`LbSync::applied`]); each
//! sync writes only the difference (backends, frontends, then deletions,
//! so a frontend never points at a missing backend). At start the applied
//! state is read back from the pinned maps, so a restarted agent keeps the
//! frontend and backend ids (and established connections keep their
//! backends) and removes what disappeared while it was down. A failed
//! write leaves `applied` untouched: the next sync retries the whole
//! difference.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::agent::services::model::{Affinity, LbAlgorithm, Protocol};
use crate::agent::services::resolve::BackendRef;
use crate::agent::services::{
    Backend, BackendState, Frontend, FrontendEntry, LbDiff, LbState, ObjectName, ServiceType, diff,
};
use crate::error::DatapathError;
use crate::kernel::lb::{self, LbMaps, LbProto, ServiceFlags};
use crate::kernel::loader::{AttachTarget, Datapath};
use crate::kernel::netns::in_netns;

type Result<T> = std::result::Result<T, DatapathError>;

/// The writer of the LB maps.
pub struct LbSync {
    maps: LbMaps,
    applied: LbState,
    /// Devices `from_netdev` is attached to (with this run's program).
    netdevs: BTreeSet<String>,
    /// Devices whose `from_netdev` link a previous run pinned, not yet
    /// re-attached (detached if no NodePort needs them).
    stale_netdevs: BTreeSet<String>,
    /// The NodePort addresses `netdevs` was computed for: the devices are
    /// looked up again only when they change.
    netdev_addrs: BTreeSet<Ipv4Addr>,
    /// Writes done since start (for status).
    writes: u64,
}

impl std::fmt::Debug for LbSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LbSync")
            .field("frontends", &self.applied.frontends.len())
            .field("backends", &self.applied.backends.len())
            .field("netdevs", &self.netdevs)
            .finish()
    }
}

impl LbSync {
    /// Opens the pinned LB maps of `pin_dir` and reads back what they hold.
    pub fn open(pin_dir: &Path) -> Result<Self> {
        let maps = LbMaps::open(pin_dir)?;
        let applied = read_back(&maps)?;
        let stale_netdevs = crate::kernel::loader::links(pin_dir)?
            .into_iter()
            .filter(|l| l.program == crate::defaults::PROG_FROM_NETDEV)
            .map(|l| l.iface)
            .collect();
        Ok(Self {
            maps,
            applied,
            netdevs: BTreeSet::new(),
            stale_netdevs,
            netdev_addrs: BTreeSet::new(),
            writes: 0,
        })
    }

    /// What the maps hold (as far as the maps can say: service names and
    /// port names are not in the kernel and are empty after a restart).
    pub fn applied(&self) -> &LbState {
        &self.applied
    }

    /// Map writes done since start.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// The kernel's LB counters.
    pub fn stats(&self) -> Result<lb::LbStats> {
        self.maps.stats()
    }

    /// Devices the NodePort program is attached to.
    pub fn netdevs(&self) -> &BTreeSet<String> {
        &self.netdevs
    }

    /// Writes the difference between what the maps hold and `desired`.
    /// Returns the difference written.
    pub fn apply(&mut self, desired: &LbState) -> Result<LbDiff> {
        let d = diff(&self.applied, desired);
        if d.is_empty() {
            return Ok(d);
        }
        for (id, b) in &d.upsert_backends {
            self.maps.upsert_backend(*id, &kernel_backend(b))?;
            self.writes += 1;
        }
        for (f, e) in &d.upsert_frontends {
            let active: Vec<u32> = e.active().map(|b| b.id).collect();
            let terminating: Vec<u32> = e
                .backends
                .iter()
                .filter(|b| b.state == BackendState::Terminating)
                .map(|b| b.id)
                .collect();
            self.maps
                .upsert_service_slots(&kernel_frontend(f, e), &active, &terminating)?;
            self.writes += 1;
        }
        for f in &d.delete_frontends {
            self.maps
                .delete_service(f.addr, f.port, lb_proto(f.proto))?;
            self.writes += 1;
        }
        for id in &d.delete_backends {
            self.maps.delete_backend(*id)?;
            self.writes += 1;
        }
        self.applied = desired.clone();
        Ok(d)
    }

    /// Attaches `from_netdev` to every device of `netns` holding one of
    /// `addrs` (the NodePort frontends' node addresses) not attached yet,
    /// and turns on IPv4 forwarding there (NodePort replies to a remote
    /// client are routed by a FIB lookup, which needs it); detaches it from
    /// the devices no NodePort needs any more. Returns the devices newly
    /// attached and detached.
    pub fn ensure_netdevs(
        &mut self,
        dp: &mut Datapath,
        netns: Option<&Path>,
        addrs: &BTreeSet<Ipv4Addr>,
    ) -> Result<(Vec<String>, Vec<String>)> {
        if *addrs == self.netdev_addrs && self.stale_netdevs.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let want: BTreeSet<String> = in_netns(netns, || {
            let mut out = BTreeSet::new();
            for &a in addrs {
                if let Some(dev) = crate::kernel::tunnel::device_of_address(a)? {
                    out.insert(dev);
                }
            }
            Ok(out)
        })?;
        let mut added = Vec::new();
        for dev in want.difference(&self.netdevs.clone()) {
            if added.is_empty() {
                in_netns(netns, enable_ip_forward)?;
            }
            dp.attach_netdev(&AttachTarget {
                netns: netns.map(PathBuf::from),
                iface: dev.clone(),
            })?;
            self.netdevs.insert(dev.clone());
            self.stale_netdevs.remove(dev);
            added.push(dev.clone());
        }
        let mut removed = Vec::new();
        let gone: Vec<String> = self
            .netdevs
            .union(&self.stale_netdevs)
            .filter(|d| !want.contains(*d))
            .cloned()
            .collect();
        for dev in gone {
            crate::kernel::loader::detach_netdev(dp.pin_dir(), &dev)?;
            self.netdevs.remove(&dev);
            self.stale_netdevs.remove(&dev);
            removed.push(dev);
        }
        self.netdev_addrs = addrs.clone();
        Ok((added, removed))
    }
}

/// `net.ipv4.ip_forward = 1` in the calling thread's namespace.
fn enable_ip_forward() -> Result<()> {
    let path = "/proc/sys/net/ipv4/ip_forward";
    match std::fs::read_to_string(path) {
        Ok(v) if v.trim() == "1" => Ok(()),
        _ => std::fs::write(path, "1").map_err(|e| DatapathError::io("write", path, e)),
    }
}

/// The node addresses of the NodePort frontends of `state`.
pub fn node_port_addresses(state: &LbState) -> BTreeSet<Ipv4Addr> {
    state
        .frontends
        .iter()
        .filter(|(_, e)| e.kind == ServiceType::NodePort)
        .map(|(f, _)| f.addr)
        .collect()
}

fn lb_proto(p: Protocol) -> LbProto {
    match p {
        Protocol::Tcp => LbProto::Tcp,
        Protocol::Udp => LbProto::Udp,
    }
}

fn protocol(p: LbProto) -> Protocol {
    match p {
        LbProto::Tcp => Protocol::Tcp,
        LbProto::Udp => Protocol::Udp,
    }
}

fn kernel_backend(b: &Backend) -> lb::Backend {
    lb::Backend {
        ip: b.addr,
        port: b.port,
        proto: lb_proto(b.proto),
        // Terminating is per frontend (its slots), not per backend.
        terminating: false,
    }
}

fn kernel_frontend(f: &Frontend, e: &FrontendEntry) -> lb::Frontend {
    lb::Frontend {
        vip: f.addr,
        port: f.port,
        proto: lb_proto(f.proto),
        rev_nat_id: e.rev_nat_id,
        flags: ServiceFlags {
            node_port: e.kind == ServiceType::NodePort,
            session_affinity_s: match e.affinity {
                Affinity::None => None,
                Affinity::ClientIp { timeout_s } => Some(timeout_s),
            },
        },
        algorithm: match e.algorithm {
            LbAlgorithm::Random => lb::LbAlgorithm::Random,
            LbAlgorithm::Maglev => lb::LbAlgorithm::Maglev,
        },
    }
}

/// The state the maps hold, as an [`LbState`] (names unknown).
fn read_back(maps: &LbMaps) -> Result<LbState> {
    let backends: BTreeMap<u32, Backend> = maps
        .backends()?
        .into_iter()
        .map(|(id, b)| {
            (
                id,
                Backend {
                    addr: b.ip,
                    port: b.port,
                    proto: protocol(b.proto),
                },
            )
        })
        .collect();
    let mut frontends = BTreeMap::new();
    for s in maps.list()? {
        let f = s.frontend;
        let refs = s
            .active
            .iter()
            .map(|&id| BackendRef {
                id,
                state: BackendState::Active,
            })
            .chain(s.terminating.iter().map(|&id| BackendRef {
                id,
                state: BackendState::Terminating,
            }))
            .collect();
        frontends.insert(
            Frontend {
                addr: f.vip,
                port: f.port,
                proto: protocol(f.proto),
            },
            FrontendEntry {
                rev_nat_id: f.rev_nat_id,
                service: ObjectName::new("", ""),
                kind: if f.flags.node_port {
                    ServiceType::NodePort
                } else {
                    ServiceType::ClusterIP
                },
                port_name: String::new(),
                algorithm: match f.algorithm {
                    lb::LbAlgorithm::Random => LbAlgorithm::Random,
                    lb::LbAlgorithm::Maglev => LbAlgorithm::Maglev,
                },
                affinity: match f.flags.session_affinity_s {
                    None => Affinity::None,
                    Some(timeout_s) => Affinity::ClientIp { timeout_s },
                },
                backends: refs,
            },
        );
    }
    Ok(LbState {
        frontends,
        backends,
    })
}

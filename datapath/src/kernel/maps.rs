//! The datapath maps, user-space side: [`Maps`], which opens the pinned
//! maps of a node (from the agent or from any other process, such as the
//! admin CLI) and programs them, and its typed high-level entries
//! ([`Endpoint`], [`PolicyEntry`], [`Config`]).
//!
//! The keys, values, names and constants are the `#[repr(C)]` mirrors of
//! `ebpf/include/dp_types.h` in [`ebpf::maps`] (checked there by the layout
//! test); they are re-exported here. aya reads and writes them through
//! `Plain`, the one place that vouches for them as plain old data.
//!
//! Byte order: IPv4 addresses in keys are in network order (as the kernel
//! reads them from the packet); ports, identities and counters in host order.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use aya::maps::lpm_trie::Key as LpmKey;
use aya::maps::{Array, HashMap, LpmTrie, Map, MapData, MapError, MapType, PerCpuArray};

pub use ebpf::identity;
pub use ebpf::maps::{
    Aggregation, CFG_F_SET, CtKey, CtValue, DROP_STATS_ENTRIES, Direction, DpConfig, DropRlValue,
    DropStatsValue, EndpointKey, EndpointValue, IpcacheKey, IpcacheValue, METRICS_DIRS,
    METRICS_ENTRIES, MetricsValue, POLICY_KEY_DATA_LEN, ParseAggregationError, PolicyAction,
    PolicyKey, PolicyValue, ct_flags, ct_lifetime, ep_flags, ip4_from_key, ip4_key, metrics_index,
    names, policy_flags, policy_prefix,
};

use crate::error::{DatapathError, Result};
use ebpf::maps::{Lb4AffinityKey, Lb4AffinityValue, Lb4Backend, Lb4Key, Lb4ReverseNat, Lb4Service};

/// A map key or value of [`ebpf::maps`] as aya reads and writes it.
#[repr(transparent)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plain<T>(pub(crate) T);

// SAFETY: `Plain` is #[repr(transparent)] over each of these, and each is
// #[repr(C)], Copy, made only of integers and integer arrays with every
// padding byte an explicit field (the ebpf layout test checks sizes and
// offsets against dp_types.h), so any bit pattern is valid and the kernel
// can read and write them as plain bytes.
unsafe impl aya::Pod for Plain<EndpointKey> {}
// SAFETY: see above.
unsafe impl aya::Pod for Plain<EndpointValue> {}
// SAFETY: see above.
unsafe impl aya::Pod for Plain<IpcacheKey> {}
// SAFETY: see above.
unsafe impl aya::Pod for Plain<IpcacheValue> {}
// SAFETY: see above.
unsafe impl aya::Pod for Plain<PolicyValue> {}
// SAFETY: see above.
unsafe impl aya::Pod for Plain<CtKey> {}
// SAFETY: see above.
unsafe impl aya::Pod for Plain<CtValue> {}
// SAFETY: see above.
unsafe impl aya::Pod for Plain<DpConfig> {}
// SAFETY: see above.
unsafe impl aya::Pod for Plain<DropStatsValue> {}
// SAFETY: see above.
unsafe impl aya::Pod for Plain<DropRlValue> {}
// SAFETY: see above.
unsafe impl aya::Pod for Plain<MetricsValue> {}
// SAFETY: see above.
unsafe impl aya::Pod for Plain<Lb4Key> {}
// SAFETY: see above.
unsafe impl aya::Pod for Plain<Lb4Service> {}
// SAFETY: see above.
unsafe impl aya::Pod for Plain<Lb4Backend> {}
// SAFETY: see above.
unsafe impl aya::Pod for Plain<Lb4ReverseNat> {}
// SAFETY: see above.
unsafe impl aya::Pod for Plain<Lb4AffinityKey> {}
// SAFETY: see above.
unsafe impl aya::Pod for Plain<Lb4AffinityValue> {}

impl From<ParseAggregationError> for DatapathError {
    fn from(e: ParseAggregationError) -> Self {
        DatapathError::Invalid {
            what: ParseAggregationError::WHAT,
            value: e.value,
        }
    }
}

/// Runtime configuration of the programs (the `dp_config` map).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Trace aggregation level.
    pub aggregation: Aggregation,
    /// Medium aggregation's re-report interval in seconds (0 = never).
    pub report_interval_s: u32,
    /// Drop events per second per CPU (0 = unlimited).
    pub drop_events_per_s: u32,
    /// ifindex of the node's external VXLAN device in the node netns
    /// ([`crate::kernel::tunnel::ensure_vxlan`]), 0 = no tunnel: remote pods
    /// are then reached through the node stack.
    pub tunnel_ifindex: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            aggregation: crate::defaults::AGGREGATION,
            report_interval_s: crate::defaults::REPORT_INTERVAL.as_secs() as u32,
            drop_events_per_s: crate::defaults::DROP_EVENTS_PER_SEC,
            tunnel_ifindex: 0,
        }
    }
}

/// A local endpoint (one row of `endpoints`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// Pod address.
    pub ip: Ipv4Addr,
    /// Host-side veth ifindex in the node netns.
    pub ifindex: u32,
    /// Pod interface MAC.
    pub pod_mac: [u8; 6],
    /// Host-side veth MAC.
    pub node_mac: [u8; 6],
    /// Security identity.
    pub identity: u32,
    /// Endpoint id (non-zero).
    pub ep_id: u16,
    /// Default-deny on ingress (selected by an ingress policy).
    pub enforce_ingress: bool,
    /// Default-deny on egress.
    pub enforce_egress: bool,
    /// Audit mode.
    pub audit: bool,
}

impl Endpoint {
    fn to_raw(self) -> (EndpointKey, EndpointValue) {
        let mut flags = 0;
        if self.enforce_ingress {
            flags |= ep_flags::ENFORCE_INGRESS;
        }
        if self.enforce_egress {
            flags |= ep_flags::ENFORCE_EGRESS;
        }
        if self.audit {
            flags |= ep_flags::AUDIT;
        }
        (
            EndpointKey {
                ip4: ip4_key(self.ip),
            },
            EndpointValue {
                ifindex: self.ifindex,
                pod_mac: self.pod_mac,
                node_mac: self.node_mac,
                identity: self.identity,
                ep_id: self.ep_id,
                flags,
                pad: 0,
            },
        )
    }

    fn from_raw(k: EndpointKey, v: EndpointValue) -> Self {
        Self {
            ip: ip4_from_key(k.ip4),
            ifindex: v.ifindex,
            pod_mac: v.pod_mac,
            node_mac: v.node_mac,
            identity: v.identity,
            ep_id: v.ep_id,
            enforce_ingress: v.flags & ep_flags::ENFORCE_INGRESS != 0,
            enforce_egress: v.flags & ep_flags::ENFORCE_EGRESS != 0,
            audit: v.flags & ep_flags::AUDIT != 0,
        }
    }
}

/// One resolved policy entry of an endpoint: a prefix of the policy trie.
///
/// `identity: 0` matches any peer (an L4-only rule); `proto: 0` (with
/// `port: 0`, `port_prefix: 0`) any protocol and port (an L3-only rule).
/// With a protocol, the entry matches the ports whose first `port_prefix`
/// bits are those of `port`: `port_prefix: 0` is every port, 16 exactly
/// `port` (port 0 included: ICMP type 0), and a port range is written as
/// its maximal aligned prefixes. For ICMP the port is the ICMP type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PolicyEntry {
    /// Local endpoint id.
    pub ep_id: u16,
    /// Direction from the endpoint's point of view.
    pub direction: Direction,
    /// Peer identity, 0 = any.
    pub identity: u32,
    /// IP protocol (6 TCP, 17 UDP, 1 ICMP, 132 SCTP), 0 = any.
    pub proto: u8,
    /// Destination port (ICMP type): the first of the ports matched.
    pub port: u16,
    /// Leading bits of `port` that must match, 0..=16 (0 = every port).
    pub port_prefix: u8,
    /// What it does.
    pub action: PolicyAction,
    /// Opaque rule cookie (which rule produced the entry).
    pub rule: u32,
}

impl PolicyEntry {
    /// The entry matching exactly `port` of `proto` (`port: 0` = every
    /// port, as most rules mean it; for ICMP type 0 alone set
    /// `port_prefix: 16` yourself).
    pub fn port(
        ep_id: u16,
        direction: Direction,
        identity: u32,
        proto: u8,
        port: u16,
        action: PolicyAction,
        rule: u32,
    ) -> Self {
        Self {
            ep_id,
            direction,
            identity,
            proto,
            port,
            port_prefix: if port == 0 { 0 } else { 16 },
            action,
            rule,
        }
    }

    /// The last port the entry matches (`port` when it is one port).
    pub fn last_port(&self) -> u16 {
        match self.port_prefix {
            p @ 0..=15 => self.port | (u16::MAX >> p),
            _ => self.port,
        }
    }

    /// Whether the entry matches `proto`/`port` (identity and endpoint
    /// aside).
    pub fn matches(&self, proto: u8, port: u16) -> bool {
        self.proto == 0 || (self.proto == proto && (self.port..=self.last_port()).contains(&port))
    }

    /// The map key of this entry.
    pub fn key(&self) -> Result<PolicyKey> {
        let bad = |what| DatapathError::Invalid {
            what,
            value: format!("{self:?}"),
        };
        if self.proto == 0 && (self.port != 0 || self.port_prefix != 0) {
            return Err(bad("policy entry (a port needs a protocol)"));
        }
        if self.port_prefix > 16 {
            return Err(bad("policy entry (port_prefix above 16 bits)"));
        }
        if self.port_prefix < 16 && self.port & (u16::MAX >> self.port_prefix) != 0 {
            return Err(bad("policy entry (port has bits beyond port_prefix)"));
        }
        Ok(PolicyKey {
            prefixlen: if self.proto == 0 {
                policy_prefix::L3
            } else {
                policy_prefix::PROTO + u32::from(self.port_prefix)
            },
            ep_id: self.ep_id,
            direction: self.direction as u8,
            pad: 0,
            identity: self.identity,
            proto: self.proto,
            pad2: 0,
            dport: self.port.to_be(),
        })
    }

    fn value(&self) -> PolicyValue {
        PolicyValue {
            action: self.action as u8,
            flags: if self.proto != 0 { policy_flags::L4 } else { 0 },
            pad: [0; 2],
            rule: self.rule,
        }
    }

    fn from_raw(k: PolicyKey, v: PolicyValue) -> Option<Self> {
        let port_prefix = match k.prefixlen {
            policy_prefix::L3 => 0,
            p @ policy_prefix::PROTO..=policy_prefix::FULL => (p - policy_prefix::PROTO) as u8,
            _ => return None,
        };
        Some(Self {
            ep_id: k.ep_id,
            direction: match k.direction {
                1 => Direction::Ingress,
                2 => Direction::Egress,
                _ => return None,
            },
            identity: k.identity,
            proto: if k.prefixlen == policy_prefix::L3 {
                0
            } else {
                k.proto
            },
            port: if k.prefixlen == policy_prefix::L3 {
                0
            } else {
                u16::from_be(k.dport)
            },
            port_prefix,
            action: match v.action {
                1 => PolicyAction::Allow,
                2 => PolicyAction::Deny,
                3 => PolicyAction::Audit,
                _ => return None,
            },
            rule: v.rule,
        })
    }

    /// Sort key: endpoint, direction, identity, protocol, port, prefix.
    pub fn sort_key(&self) -> (u16, u8, u32, u8, u16, u8) {
        (
            self.ep_id,
            self.direction as u8,
            self.identity,
            self.proto,
            self.port,
            self.port_prefix,
        )
    }
}

/// The node's maps, opened from their pins.
pub struct Maps {
    dir: PathBuf,
    endpoints: HashMap<MapData, Plain<EndpointKey>, Plain<EndpointValue>>,
    ipcache: LpmTrie<MapData, u32, Plain<IpcacheValue>>,
    policy: LpmTrie<MapData, [u8; POLICY_KEY_DATA_LEN], Plain<PolicyValue>>,
    ct4: HashMap<MapData, Plain<CtKey>, Plain<CtValue>>,
    config: Array<MapData, Plain<DpConfig>>,
    lost_events: PerCpuArray<MapData, u64>,
    drop_stats: PerCpuArray<MapData, Plain<DropStatsValue>>,
    metrics: PerCpuArray<MapData, Plain<MetricsValue>>,
    drop_rl: PerCpuArray<MapData, Plain<DropRlValue>>,
}

impl std::fmt::Debug for Maps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Maps").field("dir", &self.dir).finish()
    }
}

pub(crate) fn open_map(dir: &Path, name: &'static str) -> Result<Map> {
    let data = MapData::from_pin(dir.join(name)).map_err(|e| DatapathError::map(name, e))?;
    Map::from_map_data(data).map_err(|e| DatapathError::map(name, e))
}

macro_rules! typed {
    ($dir:expr, $name:expr) => {
        open_map($dir, $name)?
            .try_into()
            .map_err(|e| DatapathError::map($name, e))?
    };
}

/// Sums a per-CPU value over all possible CPUs.
fn sum_cpus<T: aya::Pod, R: std::iter::Sum<R>>(
    values: &aya::maps::PerCpuValues<T>,
    f: impl Fn(&T) -> R,
) -> R {
    values.iter().map(f).sum()
}

pub(crate) fn not_found_ok(
    r: std::result::Result<(), MapError>,
) -> std::result::Result<bool, MapError> {
    match r {
        Ok(()) => Ok(true),
        Err(MapError::KeyNotFound) => Ok(false),
        Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

impl Maps {
    /// Opens the maps pinned in a node's pin directory.
    pub fn open(pin_dir: impl AsRef<Path>) -> Result<Self> {
        let dir = pin_dir.as_ref();
        Ok(Self {
            dir: dir.to_path_buf(),
            endpoints: typed!(dir, names::ENDPOINTS),
            ipcache: typed!(dir, names::IPCACHE),
            policy: typed!(dir, names::POLICY),
            ct4: typed!(dir, names::CT4),
            config: typed!(dir, names::CONFIG),
            lost_events: typed!(dir, names::LOST_EVENTS),
            drop_stats: typed!(dir, names::DROP_STATS),
            metrics: typed!(dir, names::METRICS),
            drop_rl: typed!(dir, names::DROP_RL),
        })
    }

    /// The pin directory the maps were opened from.
    pub fn pin_dir(&self) -> &Path {
        &self.dir
    }

    // ---- endpoints -------------------------------------------------------

    /// Adds or replaces an endpoint.
    pub fn upsert_endpoint(&mut self, ep: &Endpoint) -> Result<()> {
        if ep.ep_id == 0 {
            return Err(DatapathError::Invalid {
                what: "endpoint id (must be non-zero)",
                value: "0".into(),
            });
        }
        let (k, v) = ep.to_raw();
        self.endpoints
            .insert(Plain(k), Plain(v), 0)
            .map_err(|e| DatapathError::map(names::ENDPOINTS, e))
    }

    /// Removes an endpoint; `false` if it was not there.
    pub fn remove_endpoint(&mut self, ip: Ipv4Addr) -> Result<bool> {
        not_found_ok(
            self.endpoints
                .remove(&Plain(EndpointKey { ip4: ip4_key(ip) })),
        )
        .map_err(|e| DatapathError::map(names::ENDPOINTS, e))
    }

    /// The endpoint with this address, if any.
    pub fn endpoint(&self, ip: Ipv4Addr) -> Result<Option<Endpoint>> {
        let k = EndpointKey { ip4: ip4_key(ip) };
        match self.endpoints.get(&Plain(k), 0) {
            Ok(Plain(v)) => Ok(Some(Endpoint::from_raw(k, v))),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(DatapathError::map(names::ENDPOINTS, e)),
        }
    }

    /// All endpoints, sorted by endpoint id.
    pub fn endpoints(&self) -> Result<Vec<Endpoint>> {
        let mut out = Vec::new();
        for kv in self.endpoints.iter() {
            let (Plain(k), Plain(v)) = kv.map_err(|e| DatapathError::map(names::ENDPOINTS, e))?;
            out.push(Endpoint::from_raw(k, v));
        }
        out.sort_by_key(|e| e.ep_id);
        Ok(out)
    }

    // ---- ipcache ---------------------------------------------------------

    /// Maps `prefix/len` to `identity` (`tunnel_ep`: host-order IPv4 of the
    /// node behind it, 0 if none).
    pub fn upsert_prefix(
        &mut self,
        prefix: Ipv4Addr,
        len: u8,
        identity: u32,
        tunnel_ep: u32,
    ) -> Result<()> {
        let key = lpm_key(prefix, len)?;
        self.ipcache
            .insert(
                &key,
                Plain(IpcacheValue {
                    identity,
                    tunnel_ep,
                }),
                0,
            )
            .map_err(|e| DatapathError::map(names::IPCACHE, e))
    }

    /// Removes `prefix/len`; `false` if it was not there.
    pub fn remove_prefix(&mut self, prefix: Ipv4Addr, len: u8) -> Result<bool> {
        let key = lpm_key(prefix, len)?;
        not_found_ok(self.ipcache.remove(&key)).map_err(|e| DatapathError::map(names::IPCACHE, e))
    }

    /// Longest-prefix match of `ip`, as the programs see it (before the
    /// WORLD fallback).
    pub fn lookup_prefix(&self, ip: Ipv4Addr) -> Result<Option<IpcacheValue>> {
        match self.ipcache.get(&LpmKey::new(32, ip4_key(ip)), 0) {
            Ok(Plain(v)) => Ok(Some(v)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(DatapathError::map(names::IPCACHE, e)),
        }
    }

    /// All prefixes: `(address, length, value)`.
    pub fn prefixes(&self) -> Result<Vec<(Ipv4Addr, u8, IpcacheValue)>> {
        let mut out = Vec::new();
        for kv in self.ipcache.iter() {
            let (k, Plain(v)) = kv.map_err(|e| DatapathError::map(names::IPCACHE, e))?;
            out.push((ip4_from_key(k.data()), k.prefix_len() as u8, v));
        }
        out.sort_by_key(|(ip, len, _)| (u32::from(*ip), *len));
        Ok(out)
    }

    // ---- policy ----------------------------------------------------------

    /// Adds or replaces one policy entry.
    pub fn upsert_policy(&mut self, e: &PolicyEntry) -> Result<()> {
        let k = e.key()?;
        self.policy
            .insert(&LpmKey::new(k.prefixlen, k.data()), Plain(e.value()), 0)
            .map_err(|e| DatapathError::map(names::POLICY, e))
    }

    /// Removes one policy entry (action and rule are ignored); `false` if it
    /// was not there.
    pub fn remove_policy(&mut self, e: &PolicyEntry) -> Result<bool> {
        let k = e.key()?;
        not_found_ok(self.policy.remove(&LpmKey::new(k.prefixlen, k.data())))
            .map_err(|e| DatapathError::map(names::POLICY, e))
    }

    /// All entries of endpoint `ep_id`, in a stable order.
    pub fn policy_entries(&self, ep_id: u16) -> Result<Vec<PolicyEntry>> {
        let mut out = self.all_policy_entries()?;
        out.retain(|e| e.ep_id == ep_id);
        Ok(out)
    }

    /// Every entry of every endpoint, in a stable order.
    pub fn all_policy_entries(&self) -> Result<Vec<PolicyEntry>> {
        let mut out = Vec::new();
        for kv in self.policy.iter() {
            let (k, Plain(v)) = kv.map_err(|e| DatapathError::map(names::POLICY, e))?;
            let k = PolicyKey::from_data(k.prefix_len(), k.data());
            if let Some(e) = PolicyEntry::from_raw(k, v) {
                out.push(e);
            }
        }
        out.sort_by_key(PolicyEntry::sort_key);
        out.dedup();
        Ok(out)
    }

    /// Makes the entries of endpoint `ep_id` exactly `want`: adds and
    /// updates first, then removes stale entries, so traffic that stays
    /// allowed is never denied in between. Returns `(written, removed)`.
    pub fn replace_policy(&mut self, ep_id: u16, want: &[PolicyEntry]) -> Result<(usize, usize)> {
        if let Some(bad) = want.iter().find(|e| e.ep_id != ep_id) {
            return Err(DatapathError::Invalid {
                what: "policy entry for another endpoint",
                value: format!("{bad:?}"),
            });
        }
        let have = self.policy_entries(ep_id)?;
        let mut written = 0;
        for e in want {
            if !have.contains(e) {
                self.upsert_policy(e)?;
                written += 1;
            }
        }
        let want_keys: Vec<PolicyKey> = want.iter().map(PolicyEntry::key).collect::<Result<_>>()?;
        let mut removed = 0;
        for e in &have {
            if !want_keys.contains(&e.key()?) && self.remove_policy(e)? {
                removed += 1;
            }
        }
        Ok((written, removed))
    }

    // ---- conntrack -------------------------------------------------------

    /// All conntrack entries (approximate under concurrent updates).
    pub fn ct_entries(&self) -> Result<Vec<(CtKey, CtValue)>> {
        self.ct4
            .iter()
            .map(|kv| kv.map(|(Plain(k), Plain(v))| (k, v)))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| DatapathError::map(names::CT4, e))
    }

    /// Conntrack entries by IP protocol (keys only, no values copied;
    /// approximate under concurrent updates).
    pub fn ct_count_by_proto(&self) -> Result<std::collections::BTreeMap<u8, u64>> {
        let mut out = std::collections::BTreeMap::new();
        for k in self.ct4.keys() {
            let Plain(k) = k.map_err(|e| DatapathError::map(names::CT4, e))?;
            *out.entry(k.proto).or_insert(0) += 1;
        }
        Ok(out)
    }

    /// One conntrack entry.
    pub fn ct_entry(&self, key: &CtKey) -> Result<Option<CtValue>> {
        match self.ct4.get(&Plain(*key), 0) {
            Ok(Plain(v)) => Ok(Some(v)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(DatapathError::map(names::CT4, e)),
        }
    }

    /// Removes every conntrack entry that involves address `ip` (e.g. when
    /// its endpoint goes away). Returns how many were removed.
    pub fn ct_flush_ip(&mut self, ip: Ipv4Addr) -> Result<usize> {
        let k = ip4_key(ip);
        let keys: Vec<CtKey> = self
            .ct4
            .keys()
            .filter_map(|r| r.ok())
            .map(|Plain(c)| c)
            .filter(|c| c.saddr == k || c.daddr == k)
            .collect();
        let mut n = 0;
        for key in keys {
            if not_found_ok(self.ct4.remove(&Plain(key)))
                .map_err(|e| DatapathError::map(names::CT4, e))?
            {
                n += 1;
            }
        }
        Ok(n)
    }

    // ---- config and counters ----------------------------------------------

    /// Writes the runtime configuration; the programs use it from their next packet on.
    pub fn set_config(&mut self, c: &Config) -> Result<()> {
        let v = DpConfig {
            flags: CFG_F_SET,
            aggregation: c.aggregation as u8,
            pad: [0; 3],
            report_interval_s: c.report_interval_s,
            drop_events_per_s: c.drop_events_per_s,
            tunnel_ifindex: c.tunnel_ifindex,
            pad2: 0,
        };
        self.config
            .set(0, Plain(v), 0)
            .map_err(|e| DatapathError::map(names::CONFIG, e))
    }

    /// The runtime configuration (the built-in defaults if never written).
    pub fn config(&self) -> Result<Config> {
        let Plain(v) = self
            .config
            .get(&0, 0)
            .map_err(|e| DatapathError::map(names::CONFIG, e))?;
        if v.flags & CFG_F_SET == 0 {
            return Ok(Config::default());
        }
        Ok(Config {
            aggregation: Aggregation::from_u8(v.aggregation),
            report_interval_s: v.report_interval_s,
            drop_events_per_s: v.drop_events_per_s,
            tunnel_ifindex: v.tunnel_ifindex,
        })
    }

    /// Events lost to a full ring, summed over CPUs.
    pub fn lost_events(&self) -> Result<u64> {
        let v = self
            .lost_events
            .get(&0, 0)
            .map_err(|e| DatapathError::map(names::LOST_EVENTS, e))?;
        Ok(sum_cpus(&v, |x| *x))
    }

    /// Drop events suppressed by the rate limit, summed over CPUs.
    pub fn suppressed_drop_events(&self) -> Result<u64> {
        let v = self
            .drop_rl
            .get(&0, 0)
            .map_err(|e| DatapathError::map(names::DROP_RL, e))?;
        Ok(sum_cpus(&v, |x| x.0.suppressed))
    }

    /// Dropped packets and bytes per drop reason (non-zero reasons only).
    pub fn drop_stats(&self) -> Result<Vec<(u8, DropStatsValue)>> {
        let mut out = Vec::new();
        for (reason, per_cpu) in self.drop_stats.iter().enumerate() {
            let per_cpu = per_cpu.map_err(|e| DatapathError::map(names::DROP_STATS, e))?;
            let total = DropStatsValue {
                packets: sum_cpus(&per_cpu, |v| v.0.packets),
                bytes: sum_cpus(&per_cpu, |v| v.0.bytes),
            };
            if total.packets != 0 {
                out.push((reason as u8, total));
            }
        }
        Ok(out)
    }
}

/// One non-zero entry of the `metrics` map, summed over CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsEntry {
    /// 0 = forwarded, else the drop reason code.
    pub reason: u8,
    /// `HUBBLE_DIR_*`: 0 unknown, 1 ingress, 2 egress.
    pub direction: u8,
    /// Packets and bytes.
    pub value: MetricsValue,
}

impl Maps {
    /// Forwarded and dropped packets and bytes by reason and direction
    /// (non-zero entries only), read from the kernel's per-CPU counters.
    pub fn metrics(&self) -> Result<Vec<MetricsEntry>> {
        let mut out = Vec::new();
        for (i, per_cpu) in self.metrics.iter().enumerate() {
            let per_cpu = per_cpu.map_err(|e| DatapathError::map(names::METRICS, e))?;
            let value = MetricsValue {
                count: sum_cpus(&per_cpu, |v| v.0.count),
                bytes: sum_cpus(&per_cpu, |v| v.0.bytes),
            };
            if value.count != 0 {
                let i = i as u32;
                let (reason, direction) = ((i / METRICS_DIRS) as u8, (i % METRICS_DIRS) as u8);
                debug_assert_eq!(metrics_index(reason, direction), i);
                out.push(MetricsEntry {
                    reason,
                    direction,
                    value,
                });
            }
        }
        debug_assert!(out.len() <= METRICS_ENTRIES as usize);
        Ok(out)
    }
}

/// How full a pinned map is: `(entries, max_entries)`. Entries are counted
/// by walking the keys with `BPF_MAP_GET_NEXT_KEY` (one syscall per entry,
/// no values copied): meant for hash, LRU-hash and LPM-trie maps, read
/// every few seconds, as Cilium's map pressure.
pub fn map_fill(pin_dir: &Path, name: &'static str) -> Result<(u64, u64)> {
    use std::os::fd::{AsFd as _, AsRawFd as _};
    let data = MapData::from_pin(pin_dir.join(name)).map_err(|e| DatapathError::map(name, e))?;
    let info = data.info().map_err(|e| DatapathError::map(name, e))?;
    let fd = data.fd().as_fd().as_raw_fd();
    let key_size = info.key_size() as usize;
    let mut cur = vec![0u8; key_size.max(1)];
    let mut next = vec![0u8; key_size.max(1)];
    let mut first = true;
    let mut n = 0u64;
    // `union bpf_attr` for the element commands: map_fd, pad, key, next_key, flags.
    #[repr(C)]
    struct ElemAttr {
        map_fd: u32,
        pad: u32,
        key: u64,
        next_key: u64,
        flags: u64,
    }
    loop {
        let attr = ElemAttr {
            map_fd: fd as u32,
            pad: 0,
            key: if first { 0 } else { cur.as_ptr() as u64 },
            next_key: next.as_mut_ptr() as u64,
            flags: 0,
        };
        // SAFETY: BPF_MAP_GET_NEXT_KEY reads `key_size` bytes at `key` (or
        // none when null) and writes `key_size` bytes at `next_key`; both
        // buffers are that long and live across the call; `attr` is a valid
        // prefix of `union bpf_attr` whose size is passed.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                libc::c_long::from(4i32), // BPF_MAP_GET_NEXT_KEY
                &attr as *const ElemAttr,
                size_of::<ElemAttr>() as libc::c_long,
            )
        };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOENT) {
                break;
            }
            return Err(DatapathError::io(
                "count map entries",
                pin_dir.join(name),
                e,
            ));
        }
        n += 1;
        std::mem::swap(&mut cur, &mut next);
        first = false;
        // An LRU map may recycle entries while we walk: never loop forever.
        if n > u64::from(info.max_entries()) {
            break;
        }
    }
    Ok((n, u64::from(info.max_entries())))
}

fn lpm_key(prefix: Ipv4Addr, len: u8) -> Result<LpmKey<u32>> {
    if len > 32 {
        return Err(DatapathError::Invalid {
            what: "IPv4 prefix length",
            value: len.to_string(),
        });
    }
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    let net = Ipv4Addr::from(u32::from(prefix) & mask);
    Ok(LpmKey::new(u32::from(len), ip4_key(net)))
}

/// What a pinned map must look like: `(name, type, key size, value size)`;
/// max entries come from [`crate::kernel::loader::MapSizes`].
pub(crate) const MAP_SHAPES: [(&str, MapType, u32, u32); 16] = [
    (
        names::ENDPOINTS,
        MapType::Hash,
        size_of::<EndpointKey>() as u32,
        size_of::<EndpointValue>() as u32,
    ),
    (
        names::IPCACHE,
        MapType::LpmTrie,
        size_of::<IpcacheKey>() as u32,
        size_of::<IpcacheValue>() as u32,
    ),
    (
        names::POLICY,
        MapType::LpmTrie,
        size_of::<PolicyKey>() as u32,
        size_of::<PolicyValue>() as u32,
    ),
    (
        names::CT4,
        MapType::LruHash,
        size_of::<CtKey>() as u32,
        size_of::<CtValue>() as u32,
    ),
    (names::EVENTS, MapType::RingBuf, 0, 0),
    (names::LOST_EVENTS, MapType::PerCpuArray, 4, 8),
    (
        names::DROP_STATS,
        MapType::PerCpuArray,
        4,
        size_of::<DropStatsValue>() as u32,
    ),
    (
        names::METRICS,
        MapType::PerCpuArray,
        4,
        size_of::<MetricsValue>() as u32,
    ),
    (
        names::DROP_RL,
        MapType::PerCpuArray,
        4,
        size_of::<DropRlValue>() as u32,
    ),
    (
        names::CONFIG,
        MapType::Array,
        4,
        size_of::<DpConfig>() as u32,
    ),
    (
        names::LB4_SERVICES,
        MapType::Hash,
        size_of::<Lb4Key>() as u32,
        size_of::<Lb4Service>() as u32,
    ),
    (
        names::LB4_BACKENDS,
        MapType::Hash,
        4,
        size_of::<Lb4Backend>() as u32,
    ),
    (
        names::LB4_REVERSE_NAT,
        MapType::Hash,
        2,
        size_of::<Lb4ReverseNat>() as u32,
    ),
    (names::LB4_MAGLEV, MapType::Array, 4, 4),
    (names::LB4_STATS, MapType::PerCpuArray, 4, 8),
    (
        names::LB4_AFFINITY,
        MapType::LruHash,
        size_of::<Lb4AffinityKey>() as u32,
        size_of::<Lb4AffinityValue>() as u32,
    ),
];

/// The names of every map the datapath pins (what [`crate::Datapath::load`]
/// creates in an empty pin directory, in its report's order).
pub fn pinned_map_names() -> impl Iterator<Item = &'static str> {
    MAP_SHAPES.iter().map(|(name, ..)| *name)
}

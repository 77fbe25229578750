//! The datapath maps: `#[repr(C)]` mirrors of `ebpf/include/dp_types.h`
//! (checked by the layout test against the C compiler), typed high-level
//! entries, and [`Maps`], which opens the pinned maps of a node (from the
//! agent or from any other process, such as the admin CLI) and programs them.
//!
//! Byte order: IPv4 addresses in keys are in network order (as the kernel
//! reads them from the packet); ports, identities and counters in host order.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use aya::maps::lpm_trie::Key as LpmKey;
use aya::maps::{Array, HashMap, LpmTrie, Map, MapData, MapError, MapType, PerCpuArray};

use crate::error::{DatapathError, Result};

/// Map names (the pin file names under the node's pin directory).
pub mod names {
    /// Local endpoints by IPv4.
    pub const ENDPOINTS: &str = "endpoints";
    /// Prefix → identity (LPM trie).
    pub const IPCACHE: &str = "ipcache";
    /// Resolved policy of all endpoints.
    pub const POLICY: &str = "policy";
    /// IPv4 connection tracking.
    pub const CT4: &str = "ct4";
    /// The event ring buffer the exporter reads.
    pub const EVENTS: &str = "events";
    /// Per-CPU count of events lost to a full ring (key 0).
    pub const LOST_EVENTS: &str = "lost_events";
    /// Per-CPU dropped packets/bytes by drop reason.
    pub const DROP_STATS: &str = "drop_stats";
    /// Per-CPU drop-event rate limiter state.
    pub const DROP_RL: &str = "drop_rl";
    /// Runtime configuration (aggregation level, ...).
    pub const CONFIG: &str = "dp_config";
}

/// Cilium's reserved security identities (`DP_ID_*`).
pub mod identity {
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
}

/// [`EndpointValue::flags`] bits (`DP_EP_F_*`).
pub mod ep_flags {
    /// Ingress is default-deny: a policy selects the endpoint for ingress.
    pub const ENFORCE_INGRESS: u8 = 1 << 0;
    /// Egress is default-deny.
    pub const ENFORCE_EGRESS: u8 = 1 << 1;
    /// Policy audit mode: denials are reported (verdict AUDIT) but forwarded.
    pub const AUDIT: u8 = 1 << 2;
}

/// [`CtValue::flags`] bits (`DP_CT_F_*`).
pub mod ct_flags {
    /// A reply was seen.
    pub const SEEN_REPLY: u8 = 1 << 0;
    /// FIN seen in the original direction.
    pub const FWD_CLOSING: u8 = 1 << 1;
    /// FIN seen in the reply direction.
    pub const REV_CLOSING: u8 = 1 << 2;
    /// RST seen.
    pub const RST: u8 = 1 << 3;
}

/// Conntrack lifetimes in seconds (`DP_CT_*`), Cilium's defaults.
pub mod ct_lifetime {
    /// Established TCP.
    pub const TCP_S: u32 = 21_600;
    /// UDP, ICMP, SCTP.
    pub const NONTCP_S: u32 = 60;
    /// TCP before a reply was seen.
    pub const SYN_TIMEOUT_S: u32 = 60;
    /// TCP after RST or FIN in both directions.
    pub const CLOSE_TIMEOUT_S: u32 = 10;
}

/// `DP_CFG_F_SET`: the config entry was written by the loader.
pub const CFG_F_SET: u32 = 1;

/// Entries in `drop_stats` (one per possible drop code).
pub const DROP_STATS_ENTRIES: u32 = 256;

/// `struct endpoint_key`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct EndpointKey {
    /// Pod IPv4, network byte order.
    pub ip4: u32,
}

/// `struct endpoint_value`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointValue {
    /// Host-side veth ifindex (node netns).
    pub ifindex: u32,
    /// MAC of the pod's interface.
    pub pod_mac: [u8; 6],
    /// MAC of the host-side veth (the pod's gateway).
    pub node_mac: [u8; 6],
    /// Security identity of the pod.
    pub identity: u32,
    /// Endpoint id.
    pub ep_id: u16,
    /// [`ep_flags`] bits.
    pub flags: u8,
    /// Padding, 0.
    pub pad: u8,
}

/// `struct ipcache_key` (the map itself is used through aya's
/// `lpm_trie::Key<u32>`, which has the same layout).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpcacheKey {
    /// Prefix length in bits.
    pub prefixlen: u32,
    /// Network byte order.
    pub ip4: u32,
}

/// `struct ipcache_value`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpcacheValue {
    /// Security identity of the prefix.
    pub identity: u32,
    /// IPv4 of the node hosting the prefix (host order), 0 if none.
    pub tunnel_ep: u32,
}

/// `struct policy_key`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PolicyKey {
    /// Peer identity, 0 = any.
    pub identity: u32,
    /// Local endpoint id.
    pub ep_id: u16,
    /// Destination port (ICMP: type), 0 = any.
    pub dport: u16,
    /// IP protocol, 0 = any.
    pub proto: u8,
    /// [`Direction`] as `u8`.
    pub direction: u8,
    /// Padding, 0.
    pub pad: u16,
}

/// `struct policy_value`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyValue {
    /// [`PolicyAction`] as `u8`.
    pub action: u8,
    /// Padding, 0.
    pub pad: [u8; 3],
    /// Opaque rule cookie.
    pub rule: u32,
}

/// `struct ct_key`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CtKey {
    /// Network order.
    pub saddr: u32,
    /// Network order.
    pub daddr: u32,
    /// Host order (ICMP echo request: the identifier).
    pub sport: u16,
    /// Host order (ICMP echo reply: the identifier).
    pub dport: u16,
    /// IP protocol.
    pub proto: u8,
    /// Padding, 0.
    pub pad: [u8; 3],
}

/// `struct ct_value`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CtValue {
    /// Boot-time ns at creation.
    pub created_ns: u64,
    /// Boot-time ns after which the entry is dead.
    pub expires_ns: u64,
    /// Packets in the original direction.
    pub fwd_packets: u64,
    /// Bytes in the original direction.
    pub fwd_bytes: u64,
    /// Packets in the reply direction.
    pub rev_packets: u64,
    /// Bytes in the reply direction.
    pub rev_bytes: u64,
    /// Last trace report, original direction (boot ns).
    pub fwd_report_ns: u64,
    /// Last trace report, reply direction (boot ns).
    pub rev_report_ns: u64,
    /// Identity of the originator.
    pub src_identity: u32,
    /// Identity of the responder.
    pub dst_identity: u32,
    /// Originator's endpoint id, 0 if not local.
    pub src_ep: u16,
    /// Responder's endpoint id, 0 if not local.
    pub dst_ep: u16,
    /// TCP flags seen, original direction.
    pub fwd_flags_seen: u8,
    /// TCP flags seen, reply direction.
    pub rev_flags_seen: u8,
    /// TCP flags reported, original direction.
    pub fwd_flags_reported: u8,
    /// TCP flags reported, reply direction.
    pub rev_flags_reported: u8,
    /// [`ct_flags`] bits.
    pub flags: u8,
    /// Padding, 0.
    pub pad: [u8; 7],
}

/// `struct dp_config`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DpConfig {
    /// [`CFG_F_SET`] once written.
    pub flags: u32,
    /// [`Aggregation`] as `u8`.
    pub aggregation: u8,
    /// Padding, 0.
    pub pad: [u8; 3],
    /// Medium aggregation's re-report interval in seconds.
    pub report_interval_s: u32,
    /// Drop events per second per CPU, 0 = unlimited.
    pub drop_events_per_s: u32,
}

/// `struct drop_stats_value`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropStatsValue {
    /// Dropped packets.
    pub packets: u64,
    /// Dropped bytes.
    pub bytes: u64,
}

/// `struct drop_rl_value`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropRlValue {
    /// Start of the current window (boot ns).
    pub window_ns: u64,
    /// Drop events emitted in the window.
    pub emitted: u64,
    /// Drop events suppressed since load.
    pub suppressed: u64,
}

// SAFETY: all of these are #[repr(C)], Copy, made only of integers and
// integer arrays with every padding byte an explicit field (the layout test
// checks sizes and offsets against dp_types.h), so any bit pattern is valid
// and the kernel can read and write them as plain bytes.
unsafe impl aya::Pod for EndpointKey {}
// SAFETY: see above.
unsafe impl aya::Pod for EndpointValue {}
// SAFETY: see above.
unsafe impl aya::Pod for IpcacheKey {}
// SAFETY: see above.
unsafe impl aya::Pod for IpcacheValue {}
// SAFETY: see above.
unsafe impl aya::Pod for PolicyKey {}
// SAFETY: see above.
unsafe impl aya::Pod for PolicyValue {}
// SAFETY: see above.
unsafe impl aya::Pod for CtKey {}
// SAFETY: see above.
unsafe impl aya::Pod for CtValue {}
// SAFETY: see above.
unsafe impl aya::Pod for DpConfig {}
// SAFETY: see above.
unsafe impl aya::Pod for DropStatsValue {}
// SAFETY: see above.
unsafe impl aya::Pod for DropRlValue {}

const _: () = assert!(size_of::<EndpointValue>() == 24);
const _: () = assert!(size_of::<PolicyKey>() == 12);
const _: () = assert!(size_of::<PolicyValue>() == 8);
const _: () = assert!(size_of::<CtKey>() == 16);
const _: () = assert!(size_of::<CtValue>() == 88);
const _: () = assert!(size_of::<DpConfig>() == 16);

/// An IPv4 address as the kernel keys it (network byte order in a `u32`).
pub fn ip4_key(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

/// The address of a network-order key.
pub fn ip4_from_key(k: u32) -> Ipv4Addr {
    Ipv4Addr::from(k.to_ne_bytes())
}

/// Monitor aggregation level (`DP_AGG_*`), Cilium's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Aggregation {
    /// Every trace.
    None = 0,
    /// No traces at receive points (from-endpoint, from-stack).
    Low = 1,
    /// Low, and only new connections, new TCP flags (SYN, ACK, FIN, RST per
    /// direction) and once per report interval for active flows.
    Medium = 2,
    /// Low, and only new connections and SYN/FIN/RST.
    Max = 3,
}

impl std::str::FromStr for Aggregation {
    type Err = DatapathError;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "none" | "disabled" => Self::None,
            "low" | "lowest" => Self::Low,
            "medium" => Self::Medium,
            "max" | "maximum" => Self::Max,
            _ => {
                return Err(DatapathError::Invalid {
                    what: "aggregation level (none, low, medium, max)",
                    value: s.to_string(),
                });
            }
        })
    }
}

impl Aggregation {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::None,
            1 => Self::Low,
            3 => Self::Max,
            _ => Self::Medium,
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
}

impl Default for Config {
    fn default() -> Self {
        Self {
            aggregation: crate::defaults::AGGREGATION,
            report_interval_s: crate::defaults::REPORT_INTERVAL.as_secs() as u32,
            drop_events_per_s: crate::defaults::DROP_EVENTS_PER_SEC,
        }
    }
}

/// Policy direction, from the local endpoint's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Direction {
    /// Traffic into the endpoint.
    Ingress = 1,
    /// Traffic out of the endpoint.
    Egress = 2,
}

/// What a policy entry does (`DP_POLICY_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PolicyAction {
    /// Allow.
    Allow = 1,
    /// Deny; wins over any allow that also matches.
    Deny = 2,
    /// A deny rule in audit mode: reported as AUDIT, forwarded.
    Audit = 3,
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

/// One resolved policy entry of an endpoint.
///
/// `identity: 0` matches any peer (an L4-only rule); `proto: 0` (with
/// `port: 0`) any protocol and port (an L3-only rule); `port: 0` with a
/// protocol every port of it. For ICMP the port is the ICMP type.
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
    /// Destination port (ICMP type), 0 = any.
    pub port: u16,
    /// What it does.
    pub action: PolicyAction,
    /// Opaque rule cookie (which rule produced the entry).
    pub rule: u32,
}

impl PolicyEntry {
    /// The map key of this entry.
    pub fn key(&self) -> Result<PolicyKey> {
        if self.proto == 0 && self.port != 0 {
            return Err(DatapathError::Invalid {
                what: "policy entry (a port needs a protocol)",
                value: format!("{self:?}"),
            });
        }
        Ok(PolicyKey {
            identity: self.identity,
            ep_id: self.ep_id,
            dport: self.port,
            proto: self.proto,
            direction: self.direction as u8,
            pad: 0,
        })
    }

    fn from_raw(k: PolicyKey, v: PolicyValue) -> Option<Self> {
        Some(Self {
            ep_id: k.ep_id,
            direction: match k.direction {
                1 => Direction::Ingress,
                2 => Direction::Egress,
                _ => return None,
            },
            identity: k.identity,
            proto: k.proto,
            port: k.dport,
            action: match v.action {
                1 => PolicyAction::Allow,
                2 => PolicyAction::Deny,
                3 => PolicyAction::Audit,
                _ => return None,
            },
            rule: v.rule,
        })
    }
}

/// The node's maps, opened from their pins.
pub struct Maps {
    dir: PathBuf,
    endpoints: HashMap<MapData, EndpointKey, EndpointValue>,
    ipcache: LpmTrie<MapData, u32, IpcacheValue>,
    policy: HashMap<MapData, PolicyKey, PolicyValue>,
    ct4: HashMap<MapData, CtKey, CtValue>,
    config: Array<MapData, DpConfig>,
    lost_events: PerCpuArray<MapData, u64>,
    drop_stats: PerCpuArray<MapData, DropStatsValue>,
    drop_rl: PerCpuArray<MapData, DropRlValue>,
}

impl std::fmt::Debug for Maps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Maps").field("dir", &self.dir).finish()
    }
}

fn open_map(dir: &Path, name: &'static str) -> Result<Map> {
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

fn not_found_ok(r: std::result::Result<(), MapError>) -> std::result::Result<bool, MapError> {
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
            .insert(k, v, 0)
            .map_err(|e| DatapathError::map(names::ENDPOINTS, e))
    }

    /// Removes an endpoint; `false` if it was not there.
    pub fn remove_endpoint(&mut self, ip: Ipv4Addr) -> Result<bool> {
        not_found_ok(self.endpoints.remove(&EndpointKey { ip4: ip4_key(ip) }))
            .map_err(|e| DatapathError::map(names::ENDPOINTS, e))
    }

    /// The endpoint with this address, if any.
    pub fn endpoint(&self, ip: Ipv4Addr) -> Result<Option<Endpoint>> {
        let k = EndpointKey { ip4: ip4_key(ip) };
        match self.endpoints.get(&k, 0) {
            Ok(v) => Ok(Some(Endpoint::from_raw(k, v))),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(DatapathError::map(names::ENDPOINTS, e)),
        }
    }

    /// All endpoints, sorted by endpoint id.
    pub fn endpoints(&self) -> Result<Vec<Endpoint>> {
        let mut out = Vec::new();
        for kv in self.endpoints.iter() {
            let (k, v) = kv.map_err(|e| DatapathError::map(names::ENDPOINTS, e))?;
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
                IpcacheValue {
                    identity,
                    tunnel_ep,
                },
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
            Ok(v) => Ok(Some(v)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(DatapathError::map(names::IPCACHE, e)),
        }
    }

    /// All prefixes: `(address, length, value)`.
    pub fn prefixes(&self) -> Result<Vec<(Ipv4Addr, u8, IpcacheValue)>> {
        let mut out = Vec::new();
        for kv in self.ipcache.iter() {
            let (k, v) = kv.map_err(|e| DatapathError::map(names::IPCACHE, e))?;
            out.push((ip4_from_key(k.data()), k.prefix_len() as u8, v));
        }
        out.sort_by_key(|(ip, len, _)| (u32::from(*ip), *len));
        Ok(out)
    }

    // ---- policy ----------------------------------------------------------

    /// Adds or replaces one policy entry.
    pub fn upsert_policy(&mut self, e: &PolicyEntry) -> Result<()> {
        let k = e.key()?;
        let v = PolicyValue {
            action: e.action as u8,
            pad: [0; 3],
            rule: e.rule,
        };
        self.policy
            .insert(k, v, 0)
            .map_err(|e| DatapathError::map(names::POLICY, e))
    }

    /// Removes one policy entry (action and rule are ignored); `false` if it
    /// was not there.
    pub fn remove_policy(&mut self, e: &PolicyEntry) -> Result<bool> {
        let k = e.key()?;
        not_found_ok(self.policy.remove(&k)).map_err(|e| DatapathError::map(names::POLICY, e))
    }

    /// All entries of endpoint `ep_id`, in a stable order.
    pub fn policy_entries(&self, ep_id: u16) -> Result<Vec<PolicyEntry>> {
        let mut out = Vec::new();
        for kv in self.policy.iter() {
            let (k, v) = kv.map_err(|e| DatapathError::map(names::POLICY, e))?;
            if k.ep_id == ep_id
                && let Some(e) = PolicyEntry::from_raw(k, v)
            {
                out.push(e);
            }
        }
        out.sort_by_key(|e| (e.direction as u8, e.identity, e.proto, e.port));
        out.dedup();
        Ok(out)
    }

    /// Every entry of every endpoint, in a stable order.
    pub fn all_policy_entries(&self) -> Result<Vec<PolicyEntry>> {
        let mut out = Vec::new();
        for kv in self.policy.iter() {
            let (k, v) = kv.map_err(|e| DatapathError::map(names::POLICY, e))?;
            if let Some(e) = PolicyEntry::from_raw(k, v) {
                out.push(e);
            }
        }
        out.sort_by_key(|e| (e.ep_id, e.direction as u8, e.identity, e.proto, e.port));
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
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| DatapathError::map(names::CT4, e))
    }

    /// One conntrack entry.
    pub fn ct_entry(&self, key: &CtKey) -> Result<Option<CtValue>> {
        match self.ct4.get(key, 0) {
            Ok(v) => Ok(Some(v)),
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
            .filter(|c| c.saddr == k || c.daddr == k)
            .collect();
        let mut n = 0;
        for key in keys {
            if not_found_ok(self.ct4.remove(&key)).map_err(|e| DatapathError::map(names::CT4, e))? {
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
        };
        self.config
            .set(0, v, 0)
            .map_err(|e| DatapathError::map(names::CONFIG, e))
    }

    /// The runtime configuration (the built-in defaults if never written).
    pub fn config(&self) -> Result<Config> {
        let v = self
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
        Ok(sum_cpus(&v, |x| x.suppressed))
    }

    /// Dropped packets and bytes per drop reason (non-zero reasons only).
    pub fn drop_stats(&self) -> Result<Vec<(u8, DropStatsValue)>> {
        let mut out = Vec::new();
        for (reason, per_cpu) in self.drop_stats.iter().enumerate() {
            let per_cpu = per_cpu.map_err(|e| DatapathError::map(names::DROP_STATS, e))?;
            let total = DropStatsValue {
                packets: sum_cpus(&per_cpu, |v| v.packets),
                bytes: sum_cpus(&per_cpu, |v| v.bytes),
            };
            if total.packets != 0 {
                out.push((reason as u8, total));
            }
        }
        Ok(out)
    }
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
/// max entries come from [`crate::loader::MapSizes`].
pub(crate) const MAP_SHAPES: [(&str, MapType, u32, u32); 9] = [
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
        MapType::Hash,
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
];

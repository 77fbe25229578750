//! The datapath maps' keys, values and constants: `#[repr(C)]` mirrors of
//! `include/dp_types.h`, checked by the layout test against the C compiler.
//!
//! Only the shapes live here; opening and programming the pinned maps (with
//! aya) is the datapath crate's `Maps`. The structs are plain integers with
//! every padding byte an explicit field, so any bit pattern is valid.
//!
//! Byte order: IPv4 addresses in keys are in network order (as the kernel
//! reads them from the packet); ports, identities and counters in host order.

use std::mem::size_of;
use std::net::Ipv4Addr;

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
    /// Per-CPU forwarded/dropped packets and bytes by reason and direction
    /// (index [`super::metrics_index`]).
    pub const METRICS: &str = "metrics";
    /// Per-CPU drop-event rate limiter state.
    pub const DROP_RL: &str = "drop_rl";
    /// Runtime configuration (aggregation level, ...).
    pub const CONFIG: &str = "dp_config";
    /// Service frontends: master entries and backend slots.
    pub const LB4_SERVICES: &str = "lb4_services";
    /// Service backends by id.
    pub const LB4_BACKENDS: &str = "lb4_backends";
    /// `rev_nat_id` → frontend, for replies.
    pub const LB4_REVERSE_NAT: &str = "lb4_reverse_nat";
    /// Maglev lookup tables of the services that use Maglev.
    pub const LB4_MAGLEV: &str = "lb4_maglev";
    /// sessionAffinity ClientIP: client + service → backend.
    pub const LB4_AFFINITY: &str = "lb4_affinity";
    /// Per-CPU load-balancer counters ([`super::lb_stat`]).
    pub const LB4_STATS: &str = "lb4_stats";
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
    /// A service entry {client → VIP:port}: `backend_id` is the backend
    /// chosen for the connection.
    pub const SERVICE: u8 = 1 << 4;
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

/// Directions per reason in `metrics` (`DP_METRICS_DIRS`).
pub const METRICS_DIRS: u32 = 4;
/// Entries in `metrics` (`DP_METRICS_ENTRIES`): 256 reasons × 4 directions.
pub const METRICS_ENTRIES: u32 = 256 * METRICS_DIRS;

/// The `metrics` index of a reason (0 = forwarded, else the drop code) and a
/// direction (`HUBBLE_DIR_*`: 0 unknown, 1 ingress, 2 egress), as
/// `DP_METRICS_INDEX`.
pub const fn metrics_index(reason: u8, direction: u8) -> u32 {
    reason as u32 * METRICS_DIRS + (direction as u32 & 3)
}

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
    /// IPv4 of the node hosting the prefix (host order), 0 if none; a
    /// non-zero one sends traffic to the prefix through the VXLAN overlay.
    pub tunnel_ep: u32,
}

/// `struct policy_key`: an LPM trie key over
/// `{ep_id, direction, pad, identity, proto, pad2, dport}`; see
/// [`policy_prefix`] for what `prefixlen` covers.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PolicyKey {
    /// LPM prefix length in bits of the fields after it
    /// ([`policy_prefix::L3`]..=[`policy_prefix::FULL`]).
    pub prefixlen: u32,
    /// Local endpoint id.
    pub ep_id: u16,
    /// [`Direction`] as `u8`.
    pub direction: u8,
    /// Padding, 0.
    pub pad: u8,
    /// Peer identity (host order), 0 = any.
    pub identity: u32,
    /// IP protocol (meaningful when `prefixlen > L3`).
    pub proto: u8,
    /// Padding, 0.
    pub pad2: u8,
    /// Destination port or ICMP type in NETWORK byte order (its leading
    /// bits are the trie's next bits).
    pub dport: u16,
}

/// Bytes of a [`PolicyKey`] after `prefixlen`: the LPM trie's data.
pub const POLICY_KEY_DATA_LEN: usize = 12;

impl PolicyKey {
    /// The key's data bytes, as the kernel stores them after `prefixlen`.
    pub fn data(&self) -> [u8; POLICY_KEY_DATA_LEN] {
        let mut b = [0u8; POLICY_KEY_DATA_LEN];
        b[0..2].copy_from_slice(&self.ep_id.to_ne_bytes());
        b[2] = self.direction;
        b[3] = self.pad;
        b[4..8].copy_from_slice(&self.identity.to_ne_bytes());
        b[8] = self.proto;
        b[9] = self.pad2;
        b[10..12].copy_from_slice(&self.dport.to_ne_bytes());
        b
    }

    /// The key of `prefixlen` and the data bytes of [`PolicyKey::data`].
    pub fn from_data(prefixlen: u32, b: [u8; POLICY_KEY_DATA_LEN]) -> Self {
        Self {
            prefixlen,
            ep_id: u16::from_ne_bytes([b[0], b[1]]),
            direction: b[2],
            pad: b[3],
            identity: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            proto: b[8],
            pad2: b[9],
            dport: u16::from_ne_bytes([b[10], b[11]]),
        }
    }
}

/// `DP_POLICY_PREFIX_*`: prefix lengths of the policy trie's key.
pub mod policy_prefix {
    /// ep_id, direction, pad and identity: an L3-only entry (any protocol).
    pub const L3: u32 = 64;
    /// ... and proto, pad2: an entry for every port of a protocol; add the
    /// number of leading port bits matched (0..=16).
    pub const PROTO: u32 = 80;
    /// Every bit: one protocol and one port.
    pub const FULL: u32 = 96;
}

/// `DP_POLICY_F_*`: `policy_value.flags`.
pub mod policy_flags {
    /// The entry names a protocol (an L4 entry).
    pub const L4: u8 = 1 << 0;
}

/// `struct policy_value`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyValue {
    /// [`PolicyAction`] as `u8`.
    pub action: u8,
    /// [`policy_flags`].
    pub flags: u8,
    /// Padding, 0.
    pub pad: [u8; 2],
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
    pub pad: u8,
    /// The service the connection was translated for (`lb4_reverse_nat`
    /// key), 0 if none.
    pub rev_nat_id: u16,
    /// Service entry ([`ct_flags::SERVICE`]): the chosen backend, else 0.
    pub backend_id: u32,
    /// Node the connection came from through the overlay (host order), 0 if
    /// none: replies to a peer without a route of its own go back there.
    pub tunnel_ep: u32,
    /// Padding, 0.
    pub pad2: u32,
}

/// [`Lb4Service::flags`] bits of a master entry (`DP_LB_F_*`).
pub mod lb_flags {
    /// A NodePort frontend (node IP:nodePort).
    pub const NODEPORT: u8 = 1 << 0;
    /// sessionAffinity: ClientIP.
    pub const AFFINITY: u8 = 1 << 1;
}

/// [`Lb4ReverseNat::flags`] bits (`DP_LB_RNAT_F_*`).
pub mod lb_rnat_flags {
    /// The frontend is a node address (NodePort): replies leave through the
    /// FIB, not the node stack.
    pub const NODEPORT: u8 = 1 << 0;
}

/// [`Lb4Backend::flags`] bits (`DP_LB_BACKEND_F_*`).
pub mod lb_backend_flags {
    /// No new connections; established ones go on.
    pub const TERMINATING: u8 = 1 << 0;
}

/// Backend selection of a service (`DP_LB_ALG_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum LbAlgorithm {
    /// A uniformly random active backend per new connection.
    #[default]
    Random = 1,
    /// Maglev consistent hashing of the 5-tuple: the same connection maps
    /// to the same backend on every node, and a backend change moves few
    /// connections.
    Maglev = 2,
}

impl LbAlgorithm {
    /// The algorithm of a master entry's byte; unknown values are random
    /// (what the kernel does with them).
    pub fn from_u8(v: u8) -> Self {
        if v == Self::Maglev as u8 {
            Self::Maglev
        } else {
            Self::Random
        }
    }
}

/// Indexes of the `lb4_stats` counters (`DP_LB_STAT_*`).
pub mod lb_stat {
    /// New connections given a backend.
    pub const NEW: u32 = 0;
    /// Packets translated to a backend.
    pub const DNAT: u32 = 1;
    /// Replies translated back to the frontend.
    pub const REV_NAT: u32 = 2;
    /// Entries of the map.
    pub const ENTRIES: u32 = 3;
}

/// Size of one service's Maglev table (`DP_LB_MAGLEV_M`, a prime).
pub const LB_MAGLEV_M: u32 = 1021;
/// Services that can have a Maglev table: `rev_nat_id` below this
/// (`DP_LB_MAGLEV_SERVICES`).
pub const LB_MAGLEV_SERVICES: u32 = 256;
/// Hairpin source (`DP_LB_HAIRPIN_IP4`): a pod reaching itself through a
/// service sees the connection come from this address (Cilium's
/// `IPV4_LOOPBACK`), since its own address as source would be dropped.
pub const LB_HAIRPIN_IP: Ipv4Addr = Ipv4Addr::new(169, 254, 42, 1);

/// Backend slots the kernel tries when the chosen one is unusable
/// (`DP_LB_MAX_PROBE`).
pub const LB_MAX_PROBE: u32 = 16;

/// `struct lb4_key`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Lb4Key {
    /// Frontend IPv4, network order.
    pub vip: u32,
    /// Frontend port, host order.
    pub dport: u16,
    /// IP protocol (6 TCP, 17 UDP).
    pub proto: u8,
    /// Reserved, 0.
    pub scope: u8,
    /// 0 = master entry, 1.. = backend slots.
    pub backend_slot: u16,
    /// Padding, 0.
    pub pad: u16,
}

/// `struct lb4_service`: a master entry (slot 0) or a backend slot.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lb4Service {
    /// Slots ≥ 1: the backend id; master: 0.
    pub backend_id: u32,
    /// Master: active backends (slots 1..=count).
    pub count: u16,
    /// Master: terminating backends (the slots after the active ones).
    pub qcount: u16,
    /// Master: the frontend's `lb4_reverse_nat` key, non-zero.
    pub rev_nat_id: u16,
    /// Master: [`lb_flags`] bits.
    pub flags: u8,
    /// Master: [`LbAlgorithm`] as `u8`.
    pub algorithm: u8,
    /// Master: sessionAffinity timeout in seconds.
    pub affinity_timeout_s: u32,
}

/// `struct lb4_backend`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lb4Backend {
    /// Network order.
    pub ip: u32,
    /// Host order.
    pub port: u16,
    /// IP protocol.
    pub proto: u8,
    /// [`lb_backend_flags`] bits.
    pub flags: u8,
}

/// `struct lb4_reverse_nat`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lb4ReverseNat {
    /// Frontend IPv4, network order.
    pub vip: u32,
    /// Frontend port, host order.
    pub port: u16,
    /// [`lb_rnat_flags`] bits.
    pub flags: u8,
    /// Padding, 0.
    pub pad: u8,
}

/// `struct lb4_affinity_key`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Lb4AffinityKey {
    /// Client IPv4, network order.
    pub client_ip: u32,
    /// The service.
    pub rev_nat_id: u16,
    /// Padding, 0.
    pub pad: u16,
}

/// `struct lb4_affinity_value`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lb4AffinityValue {
    /// Boot ns of the client's last new connection to the service.
    pub last_used_ns: u64,
    /// The backend.
    pub backend_id: u32,
    /// Padding, 0.
    pub pad: u32,
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
    /// ifindex of the node's external VXLAN device (node netns), 0 = no tunnel.
    pub tunnel_ifindex: u32,
    /// Padding, 0.
    pub pad2: u32,
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

/// `struct metrics_value`: one reason and direction of `metrics`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsValue {
    /// Packets.
    pub count: u64,
    /// Bytes.
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

const _: () = assert!(size_of::<EndpointValue>() == 24);
const _: () = assert!(size_of::<PolicyKey>() == 16);
const _: () = assert!(size_of::<PolicyValue>() == 8);
const _: () = assert!(size_of::<CtKey>() == 16);
const _: () = assert!(size_of::<CtValue>() == 96);
const _: () = assert!(size_of::<DpConfig>() == 24);
const _: () = assert!(size_of::<Lb4Key>() == 12);
const _: () = assert!(size_of::<Lb4Service>() == 16);
const _: () = assert!(size_of::<Lb4Backend>() == 8);
const _: () = assert!(size_of::<Lb4ReverseNat>() == 8);
const _: () = assert!(size_of::<Lb4AffinityKey>() == 8);
const _: () = assert!(size_of::<Lb4AffinityValue>() == 16);

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
    /// No traces at receive points (from-endpoint, from-stack, from-overlay,
    /// from-network).
    Low = 1,
    /// Low, and only new connections, new TCP flags (SYN, ACK, FIN, RST per
    /// direction) and once per report interval for active flows.
    Medium = 2,
    /// Low, and only new connections and SYN/FIN/RST.
    Max = 3,
}

impl std::str::FromStr for Aggregation {
    type Err = ParseAggregationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "none" | "disabled" => Self::None,
            "low" | "lowest" => Self::Low,
            "medium" => Self::Medium,
            "max" | "maximum" => Self::Max,
            _ => {
                return Err(ParseAggregationError {
                    value: s.to_string(),
                });
            }
        })
    }
}

/// A string that is not an [`Aggregation`] level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid aggregation level (none, low, medium, max): {value}")]
pub struct ParseAggregationError {
    /// The string given.
    pub value: String,
}

impl ParseAggregationError {
    /// What was expected, as in the error message.
    pub const WHAT: &'static str = "aggregation level (none, low, medium, max)";
}

impl Aggregation {
    /// The level of a `dp_config.aggregation` byte; unknown values are
    /// [`Aggregation::Medium`], the default.
    pub fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::None,
            1 => Self::Low,
            3 => Self::Max,
            _ => Self::Medium,
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

/// Kernel-side defaults (`DP_DEFAULT_*`, `DP_EVENTS_RING_BYTES`): what the
/// programs do before the loader writes `dp_config`. The reasons for the
/// values are given where the datapath crate re-exports them
/// (`datapath::defaults`).
pub mod defaults {
    use super::Aggregation;

    /// `DP_DEFAULT_AGGREGATION`.
    pub const AGGREGATION: Aggregation = Aggregation::Medium;
    /// `DP_DEFAULT_REPORT_INTERVAL_S`: Cilium's `MONITOR_REPORT_INTERVAL`.
    pub const REPORT_INTERVAL_S: u32 = 5;
    /// `DP_DEFAULT_DROP_EVENTS_PER_S`: per CPU, 0 = unlimited.
    pub const DROP_EVENTS_PER_S: u32 = 1000;
    /// `DP_EVENTS_RING_BYTES`: `events` ring size in bytes.
    pub const EVENTS_RING_BYTES: u32 = 1 << 22;
}

//! The event records: the kernel programs write fixed-layout records into
//! the `events` BPF ring buffer, defined by `include/hubble_events.h`.
//!
//! Each record is a kind struct that starts with [`EventHdr`], followed by
//! `hdr.cap_len` captured packet bytes (from the Ethernet header on, or from
//! the IP header on when [`event_flags::L3_PACKET`] is set), optionally
//! followed by trailing bytes that are ignored (a BPF ring-buffer reservation
//! has a constant size).
//!
//! Decoding ([`parse`]) never panics and never transmutes: every field is read
//! with `from_le_bytes` after a length check, and bad input is a typed
//! [`AbiError`]. The `encode` methods build records for the synthetic
//! generator, tests and benchmarks.

use std::mem::size_of;

/// Version byte every event carries (`HUBBLE_EVENT_VERSION`).
///
/// Version 2 added the policy rule origin (`rule`) to [`DropEvent`] (in
/// place of its padding) and to [`PolicyVerdictEvent`] (now 56 bytes).
pub const EVENT_VERSION: u8 = 2;

/// Maximum number of captured packet bytes after an event struct
/// (`HUBBLE_CAPTURE_MAX`).
pub const CAPTURE_MAX: usize = 128;

/// Message types, in Cilium's monitor numbering (`HUBBLE_MSG_*`).
pub mod msg_type {
    /// A packet drop ([`crate::events::DropEvent`]).
    pub const DROP: u8 = 1;
    /// Debug message (reserved, not emitted).
    pub const DEBUG: u8 = 2;
    /// Debug capture (reserved, not emitted).
    pub const CAPTURE: u8 = 3;
    /// A forwarding trace ([`crate::events::TraceEvent`]).
    pub const TRACE: u8 = 4;
    /// A policy decision ([`crate::events::PolicyVerdictEvent`]).
    pub const POLICY_VERDICT: u8 = 5;
    /// A service translation ([`crate::events::TraceSockEvent`]); Cilium's
    /// `MessageTypeTraceSock`.
    pub const TRACE_SOCK: u8 = 7;
}

/// Service translation points (`HUBBLE_XLATE_*`): the subtype of a
/// [`TraceSockEvent`], equal to Cilium's `xlate_point` and to the
/// `flow.SocketTranslationPoint` proto values.
pub mod xlate_point {
    /// Unknown.
    pub const UNKNOWN: u8 = 0;
    /// Before the forward translation: the frontend (VIP:port).
    pub const PRE_DIRECTION_FWD: u8 = 1;
    /// After the forward translation: the chosen backend.
    pub const POST_DIRECTION_FWD: u8 = 2;
    /// Before the reverse translation: the backend (UDP replies to a local
    /// client, at aggregation none only).
    pub const PRE_DIRECTION_REV: u8 = 3;
    /// After the reverse translation: the frontend (as above).
    pub const POST_DIRECTION_REV: u8 = 4;
}

/// L4 protocol of a [`TraceSockEvent`] (`HUBBLE_SOCK_L4_*`): Cilium's
/// `l4_protocol` enum, not the IP protocol number.
pub mod sock_l4 {
    /// Unknown.
    pub const UNKNOWN: u8 = 0;
    /// TCP.
    pub const TCP: u8 = 1;
    /// UDP.
    pub const UDP: u8 = 2;
}

/// [`TraceSockEvent::flags`] bits (`HUBBLE_SOCK_F_*`).
pub mod sock_flags {
    /// The addresses are IPv6 (never set: the datapath is IPv4 only).
    pub const IPV6: u8 = 1 << 0;
}

/// Trace subtypes: Cilium's monitor observation points (`HUBBLE_TRACE_*`).
///
/// These are *not* the `flow.TraceObservationPoint` proto values (there
/// to-endpoint is 101); the parser maps between the two.
pub mod trace_point {
    /// to-endpoint: delivered to a pod.
    pub const TO_LXC: u8 = 0;
    /// to-proxy.
    pub const TO_PROXY: u8 = 1;
    /// to-host: delivered to the host stack.
    pub const TO_HOST: u8 = 2;
    /// to-stack: passed up the node's stack.
    pub const TO_STACK: u8 = 3;
    /// to-overlay: sent into the tunnel.
    pub const TO_OVERLAY: u8 = 4;
    /// from-endpoint: received from a pod.
    pub const FROM_LXC: u8 = 5;
    /// from-proxy.
    pub const FROM_PROXY: u8 = 6;
    /// from-host.
    pub const FROM_HOST: u8 = 7;
    /// from-stack.
    pub const FROM_STACK: u8 = 8;
    /// from-overlay: received from the tunnel.
    pub const FROM_OVERLAY: u8 = 9;
    /// from-network: native device ingress.
    pub const FROM_NETWORK: u8 = 10;
    /// to-network: native device egress.
    pub const TO_NETWORK: u8 = 11;
    /// from-crypto.
    pub const FROM_CRYPTO: u8 = 12;
    /// to-crypto.
    pub const TO_CRYPTO: u8 = 13;
}

/// Drop reason codes: Cilium's `DROP_*` numbers, positive (`HUBBLE_DROP_*`).
/// Names follow the `flow.DropReason` proto enum.
#[expect(
    missing_docs,
    reason = "the names are the documentation; see hubble_events.h"
)]
pub mod drop_reason {
    pub const INVALID_SOURCE_IP: u8 = 132;
    /// No allow rule matched.
    pub const POLICY_DENIED: u8 = 133;
    /// Malformed packet.
    pub const INVALID_PACKET: u8 = 134;
    pub const CT_TRUNCATED_OR_INVALID_HEADER: u8 = 135;
    pub const CT_MISSING_TCP_ACK_FLAG: u8 = 136;
    pub const CT_UNKNOWN_L4_PROTOCOL: u8 = 137;
    pub const UNSUPPORTED_L3_PROTOCOL: u8 = 139;
    pub const MISSED_TAIL_CALL: u8 = 140;
    pub const ERROR_WRITING_TO_PACKET: u8 = 141;
    pub const UNKNOWN_L4_PROTOCOL: u8 = 142;
    pub const UNKNOWN_ICMPV4_CODE: u8 = 143;
    pub const UNKNOWN_ICMPV4_TYPE: u8 = 144;
    pub const UNKNOWN_ICMPV6_CODE: u8 = 145;
    pub const UNKNOWN_ICMPV6_TYPE: u8 = 146;
    pub const ERROR_RETRIEVING_TUNNEL_KEY: u8 = 147;
    pub const UNKNOWN_L3_TARGET_ADDRESS: u8 = 150;
    pub const STALE_OR_UNROUTABLE_IP: u8 = 151;
    pub const ERROR_WHILE_CORRECTING_L3_CHECKSUM: u8 = 153;
    pub const ERROR_WHILE_CORRECTING_L4_CHECKSUM: u8 = 154;
    pub const CT_MAP_INSERTION_FAILED: u8 = 155;
    pub const INVALID_IPV6_EXTENSION_HEADER: u8 = 156;
    pub const IP_FRAGMENTATION_NOT_SUPPORTED: u8 = 157;
    pub const SERVICE_BACKEND_NOT_FOUND: u8 = 158;
    pub const NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT: u8 = 160;
    pub const UNKNOWN_CONNECTION_TRACKING_STATE: u8 = 163;
    pub const LOCAL_HOST_IS_UNREACHABLE: u8 = 164;
    pub const UNSUPPORTED_L2_PROTOCOL: u8 = 166;
    pub const NO_MAPPING_FOR_NAT_MASQUERADE: u8 = 167;
    pub const FIB_LOOKUP_FAILED: u8 = 169;
    /// Identity lookup failed.
    pub const INVALID_IDENTITY: u8 = 171;
    pub const UNKNOWN_SENDER: u8 = 172;
    pub const IS_A_CLUSTERIP: u8 = 174;
    pub const FORBIDDEN_ICMPV6_MESSAGE: u8 = 176;
    pub const DENIED_BY_LB_SRC_RANGE_CHECK: u8 = 177;
    /// An explicit deny rule matched.
    pub const POLICY_DENY: u8 = 181;
    pub const VLAN_FILTERED: u8 = 182;
    pub const AUTH_REQUIRED: u8 = 189;
    pub const NO_EGRESS_GATEWAY: u8 = 194;
    pub const UNENCRYPTED_TRAFFIC: u8 = 195;
    pub const TTL_EXCEEDED: u8 = 196;
    /// The drop-event rate limit was hit.
    pub const RATE_LIMITED: u8 = 198;
    pub const HOST_NOT_READY: u8 = 202;
    pub const EP_NOT_READY: u8 = 203;
}

/// Connection-tracking state of a packet (`HUBBLE_CT_*`), equal to the
/// `flow.TraceReason` values.
pub mod ct_state {
    /// Unknown.
    pub const UNKNOWN: u8 = 0;
    /// First packet of a connection.
    pub const NEW: u8 = 1;
    /// Original direction of a known connection.
    pub const ESTABLISHED: u8 = 2;
    /// Reply direction.
    pub const REPLY: u8 = 3;
    /// Related to a known connection (e.g. an ICMP error).
    pub const RELATED: u8 = 4;
}

/// Policy match types (`HUBBLE_POLICY_MATCH_*`, `flow.policy_match_type`).
pub mod policy_match {
    /// No rule matched.
    pub const NONE: u8 = 0;
    /// Matched on the peer identity only.
    pub const L3_ONLY: u8 = 1;
    /// Matched on identity and port/protocol.
    pub const L3_L4: u8 = 2;
    /// Matched on port/protocol only.
    pub const L4_ONLY: u8 = 3;
    /// Allow-all.
    pub const ALL: u8 = 4;
}

/// Traffic directions (`HUBBLE_DIR_*`, `flow.TrafficDirection` values).
pub mod direction {
    /// Unknown.
    pub const UNKNOWN: u8 = 0;
    /// Into the endpoint.
    pub const INGRESS: u8 = 1;
    /// Out of the endpoint.
    pub const EGRESS: u8 = 2;
}

/// [`EventHdr::flags`] bits (`HUBBLE_EVENT_F_*`). Unknown bits are ignored.
pub mod event_flags {
    /// The captured bytes start at the IP header (no Ethernet header).
    pub const L3_PACKET: u8 = 1 << 0;
}

/// Datapath source file ids of [`DropEvent::file`](crate::events::DropEvent::file)
/// (`HUBBLE_SRC_FILE_*`).
pub mod src_file {
    /// Unknown.
    pub const UNKNOWN: u8 = 0;
    /// `bpf/test_emit.bpf.c`.
    pub const TEST_EMIT: u8 = 1;
    /// `bpf/lxc.bpf.c`: the pod veth programs.
    pub const LXC: u8 = 2;

    /// The file name for an id, if known.
    pub fn name(id: u8) -> Option<&'static str> {
        match id {
            TEST_EMIT => Some("test_emit.bpf.c"),
            LXC => Some("lxc.bpf.c"),
            _ => None,
        }
    }
}

/// Common header every event starts with (`struct event_hdr`, 24 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventHdr {
    /// [`msg_type`] of the event.
    pub r#type: u8,
    /// Trace: [`trace_point`]; drop: [`drop_reason`] code; policy verdict: 0.
    pub subtype: u8,
    /// [`EVENT_VERSION`].
    pub version: u8,
    /// [`event_flags`] bits.
    pub flags: u8,
    /// Endpoint id the event is about, 0 if none.
    pub source: u16,
    /// Captured packet bytes following the kind struct (≤ [`CAPTURE_MAX`]).
    pub cap_len: u16,
    /// skb hash, 0 if not computed.
    pub hash: u32,
    /// Original packet length.
    pub orig_len: u32,
    /// `bpf_ktime_get_boot_ns()` at emission.
    pub ktime_ns: u64,
}

/// A forwarding trace (`struct trace_event`, 40 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TraceEvent {
    /// Common header; `hdr.subtype` is the [`trace_point`].
    pub hdr: EventHdr,
    /// Security identity of the source.
    pub src_label: u32,
    /// Security identity of the destination, 0 if unknown.
    pub dst_label: u32,
    /// Destination endpoint id, 0 if not a local endpoint.
    pub dst_id: u16,
    /// [`ct_state`] of the packet.
    pub reason: u8,
    /// Padding, 0.
    pub pad: u8,
    /// Interface the packet is observed on, 0 if unknown.
    pub ifindex: u32,
}

/// A packet drop (`struct drop_event`, 48 bytes); the reason is `hdr.subtype`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DropEvent {
    /// Common header; `hdr.subtype` is the [`drop_reason`] code.
    pub hdr: EventHdr,
    /// Security identity of the source.
    pub src_label: u32,
    /// Security identity of the destination, 0 if unknown.
    pub dst_label: u32,
    /// Destination endpoint id, 0 if not a local endpoint.
    pub dst_id: u16,
    /// Datapath source line of the drop, 0 if unknown.
    pub line: u16,
    /// [`src_file`] id of the datapath source file.
    pub file: u8,
    /// [`ct_state`] of the packet.
    pub ct_state: u8,
    /// [`direction`] of the policy decision that dropped, or 0.
    pub direction: u8,
    /// Padding, 0.
    pub pad: u8,
    /// Interface the packet was dropped on, 0 if unknown.
    pub ifindex: u32,
    /// Rule origin of a policy drop (the deciding entry's `policy_value.rule`), else 0.
    pub rule: u32,
}

/// A policy decision for a new connection (`struct policy_verdict_event`, 56 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PolicyVerdictEvent {
    /// Common header; `hdr.source` is the local endpoint that applied policy.
    pub hdr: EventHdr,
    /// Identity of the peer.
    pub remote_label: u32,
    /// Identity of the local endpoint.
    pub local_label: u32,
    /// 0 = allowed, negative = minus the [`drop_reason`].
    pub verdict: i32,
    /// Destination L4 port the rule matched, host byte order.
    pub dst_port: u16,
    /// IP protocol number.
    pub proto: u8,
    /// [`direction::INGRESS`] or [`direction::EGRESS`].
    pub direction: u8,
    /// [`policy_match`] type.
    pub match_type: u8,
    /// 1 if the policy is in audit mode, else 0.
    pub audited: u8,
    /// [`ct_state`] of the packet.
    pub reason: u8,
    /// Padding, 0.
    pub pad: u8,
    /// Interface of the local endpoint, 0 if unknown.
    pub ifindex: u32,
    /// Rule origin of the deciding entry (`policy_value.rule`), 0 if none
    /// (a default deny).
    pub rule: u32,
    /// Padding, 0.
    pub pad2: u32,
}

/// A service translation of a new connection (`struct trace_sock_event`,
/// 64 bytes), what Cilium's socket LB reports as `trace_sock_notify`; no
/// packet follows (`hdr.cap_len` 0).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TraceSockEvent {
    /// Common header; `hdr.subtype` is the [`xlate_point`], `hdr.source`
    /// the client endpoint.
    pub hdr: EventHdr,
    /// Security identity of the client.
    pub src_label: u32,
    /// Identity of `dst_ip`, 0 if unknown.
    pub dst_label: u32,
    /// Client IPv4 address, network byte order (as in memory).
    pub src_ip: [u8; 4],
    /// Frontend (pre) or backend (post) IPv4 address, network byte order.
    pub dst_ip: [u8; 4],
    /// Frontend (pre) or backend (post) port, host byte order.
    pub dst_port: u16,
    /// [`sock_l4`] protocol.
    pub l4_proto: u8,
    /// [`sock_flags`] bits.
    pub flags: u8,
    /// Padding, 0.
    pub pad: u32,
    /// Stable per connection (a hash of the tuple as sent), never 0.
    pub sock_cookie: u64,
    /// Cgroup id of the client, 0 (pods are in no cgroup the datapath knows).
    pub cgroup_id: u64,
}

const _: () = assert!(size_of::<EventHdr>() == 24);
const _: () = assert!(size_of::<TraceSockEvent>() == 64);
const _: () = assert!(size_of::<TraceEvent>() == 40);
const _: () = assert!(size_of::<DropEvent>() == 48);
const _: () = assert!(size_of::<PolicyVerdictEvent>() == 56);
const _: () = assert!(std::mem::offset_of!(EventHdr, ktime_ns) == 16);
const _: () = assert!(std::mem::offset_of!(TraceEvent, ifindex) == 36);
const _: () = assert!(std::mem::offset_of!(DropEvent, ifindex) == 40);
const _: () = assert!(std::mem::offset_of!(PolicyVerdictEvent, ifindex) == 44);
const _: () = assert!(std::mem::offset_of!(PolicyVerdictEvent, rule) == 48);
const _: () = assert!(std::mem::offset_of!(DropEvent, rule) == 44);

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AbiError {
    /// The record is shorter than the struct it claims to be.
    #[error("truncated {what}: need {need} bytes, got {got}")]
    Truncated {
        /// What was being read (`"event header"`, `"trace event"`, ...).
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        got: usize,
    },
    /// The version byte is not [`EVENT_VERSION`].
    #[error("unsupported event version {version} (expected {EVENT_VERSION})")]
    UnsupportedVersion {
        /// The version found.
        version: u8,
    },
    /// The message type is not one this ABI defines.
    #[error("unknown event type {type}")]
    UnknownType {
        /// The type found.
        r#type: u8,
    },
    /// `cap_len` exceeds [`CAPTURE_MAX`] or the bytes left in the record.
    #[error("capture length {cap_len} invalid: max {CAPTURE_MAX}, {available} bytes available")]
    BadCaptureLength {
        /// The `cap_len` found.
        cap_len: u16,
        /// Bytes left after the struct.
        available: usize,
    },
}

/// One decoded record: the kind struct and its captured packet bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawEvent<'a> {
    /// A forwarding trace.
    Trace(TraceEvent, &'a [u8]),
    /// A drop.
    Drop(DropEvent, &'a [u8]),
    /// A policy verdict.
    PolicyVerdict(PolicyVerdictEvent, &'a [u8]),
    /// A service translation (no packet bytes: the slice is empty).
    TraceSock(TraceSockEvent, &'a [u8]),
}

impl<'a> RawEvent<'a> {
    /// The common header.
    pub fn hdr(&self) -> &EventHdr {
        match self {
            RawEvent::Trace(e, _) => &e.hdr,
            RawEvent::Drop(e, _) => &e.hdr,
            RawEvent::PolicyVerdict(e, _) => &e.hdr,
            RawEvent::TraceSock(e, _) => &e.hdr,
        }
    }

    /// The captured packet bytes (exactly `hdr.cap_len` of them).
    pub fn payload(&self) -> &'a [u8] {
        match self {
            RawEvent::Trace(_, p)
            | RawEvent::Drop(_, p)
            | RawEvent::PolicyVerdict(_, p)
            | RawEvent::TraceSock(_, p) => p,
        }
    }
}

/// Decodes one ring-buffer record.
///
/// Trailing bytes after the captured packet are ignored.
pub fn parse(buf: &[u8]) -> Result<RawEvent<'_>, AbiError> {
    let hdr = EventHdr::decode(buf)?;
    if hdr.version != EVENT_VERSION {
        return Err(AbiError::UnsupportedVersion {
            version: hdr.version,
        });
    }
    match hdr.r#type {
        msg_type::TRACE => {
            let ev = TraceEvent::decode(buf)?;
            Ok(RawEvent::Trace(
                ev,
                payload(buf, TraceEvent::SIZE, hdr.cap_len)?,
            ))
        }
        msg_type::DROP => {
            let ev = DropEvent::decode(buf)?;
            Ok(RawEvent::Drop(
                ev,
                payload(buf, DropEvent::SIZE, hdr.cap_len)?,
            ))
        }
        msg_type::POLICY_VERDICT => {
            let ev = PolicyVerdictEvent::decode(buf)?;
            Ok(RawEvent::PolicyVerdict(
                ev,
                payload(buf, PolicyVerdictEvent::SIZE, hdr.cap_len)?,
            ))
        }
        msg_type::TRACE_SOCK => {
            let ev = TraceSockEvent::decode(buf)?;
            Ok(RawEvent::TraceSock(
                ev,
                payload(buf, TraceSockEvent::SIZE, hdr.cap_len)?,
            ))
        }
        other => Err(AbiError::UnknownType { r#type: other }),
    }
}

fn payload(buf: &[u8], start: usize, cap_len: u16) -> Result<&[u8], AbiError> {
    let rest = buf.get(start..).unwrap_or_default();
    let len = usize::from(cap_len);
    if len > CAPTURE_MAX || len > rest.len() {
        return Err(AbiError::BadCaptureLength {
            cap_len,
            available: rest.len(),
        });
    }
    Ok(&rest[..len])
}

fn check_len(buf: &[u8], need: usize, what: &'static str) -> Result<(), AbiError> {
    if buf.len() < need {
        Err(AbiError::Truncated {
            what,
            need,
            got: buf.len(),
        })
    } else {
        Ok(())
    }
}

// Little-endian field readers. Callers check the length first, so the
// indexing below is in bounds.
fn rd_u16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}
fn rd_u32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}
fn rd_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

impl EventHdr {
    /// Size in bytes.
    pub const SIZE: usize = size_of::<Self>();

    /// A header of the given type and subtype with [`EVENT_VERSION`] and all
    /// other fields zero.
    pub fn new(r#type: u8, subtype: u8) -> Self {
        Self {
            r#type,
            subtype,
            version: EVENT_VERSION,
            ..Self::default()
        }
    }

    /// Reads the header from the start of `buf` (no version or type check).
    pub fn decode(buf: &[u8]) -> Result<Self, AbiError> {
        check_len(buf, Self::SIZE, "event header")?;
        Ok(Self {
            r#type: buf[0],
            subtype: buf[1],
            version: buf[2],
            flags: buf[3],
            source: rd_u16(buf, 4),
            cap_len: rd_u16(buf, 6),
            hash: rd_u32(buf, 8),
            orig_len: rd_u32(buf, 12),
            ktime_ns: rd_u64(buf, 16),
        })
    }

    fn encode_with_cap(&self, cap_len: u16, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.r#type, self.subtype, self.version, self.flags]);
        out.extend_from_slice(&self.source.to_le_bytes());
        out.extend_from_slice(&cap_len.to_le_bytes());
        out.extend_from_slice(&self.hash.to_le_bytes());
        out.extend_from_slice(&self.orig_len.to_le_bytes());
        out.extend_from_slice(&self.ktime_ns.to_le_bytes());
    }
}

/// The captured part of `payload` and its length as `cap_len`.
fn clamp_payload(payload: &[u8]) -> (&[u8], u16) {
    let p = &payload[..payload.len().min(CAPTURE_MAX)];
    // CAPTURE_MAX fits in u16.
    (p, p.len() as u16)
}

impl TraceEvent {
    /// Size in bytes.
    pub const SIZE: usize = size_of::<Self>();

    /// Reads the struct from the start of `buf` (no header checks).
    pub fn decode(buf: &[u8]) -> Result<Self, AbiError> {
        check_len(buf, Self::SIZE, "trace event")?;
        Ok(Self {
            hdr: EventHdr::decode(buf)?,
            src_label: rd_u32(buf, 24),
            dst_label: rd_u32(buf, 28),
            dst_id: rd_u16(buf, 32),
            reason: buf[34],
            pad: buf[35],
            ifindex: rd_u32(buf, 36),
        })
    }

    /// Appends the record to `out`: the struct, then up to [`CAPTURE_MAX`]
    /// bytes of `payload`. Every field is written as is, except
    /// `hdr.cap_len`, which becomes the number of payload bytes written.
    pub fn encode(&self, payload: &[u8], out: &mut Vec<u8>) {
        let (p, cap) = clamp_payload(payload);
        out.reserve(Self::SIZE + p.len());
        self.hdr.encode_with_cap(cap, out);
        out.extend_from_slice(&self.src_label.to_le_bytes());
        out.extend_from_slice(&self.dst_label.to_le_bytes());
        out.extend_from_slice(&self.dst_id.to_le_bytes());
        out.extend_from_slice(&[self.reason, self.pad]);
        out.extend_from_slice(&self.ifindex.to_le_bytes());
        out.extend_from_slice(p);
    }
}

impl DropEvent {
    /// Size in bytes.
    pub const SIZE: usize = size_of::<Self>();

    /// Reads the struct from the start of `buf` (no header checks).
    pub fn decode(buf: &[u8]) -> Result<Self, AbiError> {
        check_len(buf, Self::SIZE, "drop event")?;
        Ok(Self {
            hdr: EventHdr::decode(buf)?,
            src_label: rd_u32(buf, 24),
            dst_label: rd_u32(buf, 28),
            dst_id: rd_u16(buf, 32),
            line: rd_u16(buf, 34),
            file: buf[36],
            ct_state: buf[37],
            direction: buf[38],
            pad: buf[39],
            ifindex: rd_u32(buf, 40),
            rule: rd_u32(buf, 44),
        })
    }

    /// Appends the record to `out`; see [`TraceEvent::encode`].
    pub fn encode(&self, payload: &[u8], out: &mut Vec<u8>) {
        let (p, cap) = clamp_payload(payload);
        out.reserve(Self::SIZE + p.len());
        self.hdr.encode_with_cap(cap, out);
        out.extend_from_slice(&self.src_label.to_le_bytes());
        out.extend_from_slice(&self.dst_label.to_le_bytes());
        out.extend_from_slice(&self.dst_id.to_le_bytes());
        out.extend_from_slice(&self.line.to_le_bytes());
        out.extend_from_slice(&[self.file, self.ct_state, self.direction, self.pad]);
        out.extend_from_slice(&self.ifindex.to_le_bytes());
        out.extend_from_slice(&self.rule.to_le_bytes());
        out.extend_from_slice(p);
    }
}

impl PolicyVerdictEvent {
    /// Size in bytes.
    pub const SIZE: usize = size_of::<Self>();

    /// Reads the struct from the start of `buf` (no header checks).
    pub fn decode(buf: &[u8]) -> Result<Self, AbiError> {
        check_len(buf, Self::SIZE, "policy verdict event")?;
        Ok(Self {
            hdr: EventHdr::decode(buf)?,
            remote_label: rd_u32(buf, 24),
            local_label: rd_u32(buf, 28),
            verdict: rd_u32(buf, 32) as i32,
            dst_port: rd_u16(buf, 36),
            proto: buf[38],
            direction: buf[39],
            match_type: buf[40],
            audited: buf[41],
            reason: buf[42],
            pad: buf[43],
            ifindex: rd_u32(buf, 44),
            rule: rd_u32(buf, 48),
            pad2: rd_u32(buf, 52),
        })
    }

    /// Appends the record to `out`; see [`TraceEvent::encode`].
    pub fn encode(&self, payload: &[u8], out: &mut Vec<u8>) {
        let (p, cap) = clamp_payload(payload);
        out.reserve(Self::SIZE + p.len());
        self.hdr.encode_with_cap(cap, out);
        out.extend_from_slice(&self.remote_label.to_le_bytes());
        out.extend_from_slice(&self.local_label.to_le_bytes());
        out.extend_from_slice(&self.verdict.to_le_bytes());
        out.extend_from_slice(&self.dst_port.to_le_bytes());
        out.extend_from_slice(&[
            self.proto,
            self.direction,
            self.match_type,
            self.audited,
            self.reason,
            self.pad,
        ]);
        out.extend_from_slice(&self.ifindex.to_le_bytes());
        out.extend_from_slice(&self.rule.to_le_bytes());
        out.extend_from_slice(&self.pad2.to_le_bytes());
        out.extend_from_slice(p);
    }

    /// True if the connection was allowed (`verdict == 0`).
    pub fn allowed(&self) -> bool {
        self.verdict == 0
    }

    /// The drop reason code of a denied verdict, if any.
    pub fn deny_reason(&self) -> Option<u8> {
        (self.verdict < 0).then(|| u8::try_from(-i64::from(self.verdict)).unwrap_or(0))
    }
}

impl TraceSockEvent {
    /// Size in bytes.
    pub const SIZE: usize = size_of::<Self>();

    /// Reads the struct from the start of `buf` (no header checks).
    pub fn decode(buf: &[u8]) -> Result<Self, AbiError> {
        check_len(buf, Self::SIZE, "trace sock event")?;
        Ok(Self {
            hdr: EventHdr::decode(buf)?,
            src_label: rd_u32(buf, 24),
            dst_label: rd_u32(buf, 28),
            src_ip: [buf[32], buf[33], buf[34], buf[35]],
            dst_ip: [buf[36], buf[37], buf[38], buf[39]],
            dst_port: rd_u16(buf, 40),
            l4_proto: buf[42],
            flags: buf[43],
            pad: rd_u32(buf, 44),
            sock_cookie: rd_u64(buf, 48),
            cgroup_id: rd_u64(buf, 56),
        })
    }

    /// Appends the record to `out`; `hdr.cap_len` is written as 0 (the
    /// record carries no packet).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(Self::SIZE);
        self.hdr.encode_with_cap(0, out);
        out.extend_from_slice(&self.src_label.to_le_bytes());
        out.extend_from_slice(&self.dst_label.to_le_bytes());
        out.extend_from_slice(&self.src_ip);
        out.extend_from_slice(&self.dst_ip);
        out.extend_from_slice(&self.dst_port.to_le_bytes());
        out.extend_from_slice(&[self.l4_proto, self.flags]);
        out.extend_from_slice(&self.pad.to_le_bytes());
        out.extend_from_slice(&self.sock_cookie.to_le_bytes());
        out.extend_from_slice(&self.cgroup_id.to_le_bytes());
    }

    /// The client address.
    pub fn src_addr(&self) -> std::net::Ipv4Addr {
        std::net::Ipv4Addr::from(self.src_ip)
    }

    /// The frontend (pre) or backend (post) address.
    pub fn dst_addr(&self) -> std::net::Ipv4Addr {
        std::net::Ipv4Addr::from(self.dst_ip)
    }
}

//! Archive rows from a flow's encoded bytes, without decoding it into a
//! [`Flow`] (issue 14: the decode, the re-encode of `flow_pb` and the
//! string copies were most of the writer's cost per row).
//!
//! [`FlowScan`] walks an encoded `flow.Flow` once with prost's wire-format
//! primitives and keeps, for every field a column needs, its value or the
//! range of its bytes; [`crate::schema::BatchBuilder::push_scanned`] then
//! appends the columns straight from those bytes, and `flow_pb` is the
//! bytes themselves. The scan keeps its buffers from flow to flow, so a row
//! allocates nothing.
//!
//! The scan has prost's semantics for what it reads (a later scalar or
//! string replaces an earlier one, repeated fields append, wire types are
//! checked, strings must be UTF-8). Where prost would *merge* two
//! occurrences of a message field (never in an encoder's output, but legal
//! protobuf), the scan says [`Scan::Irregular`] and the writer decodes the
//! flow with prost instead, so the columns are always what
//! [`crate::schema::BatchBuilder::push`] makes of the decoded flow (tested).
//!
//! What the scan does not do is validate the fields no column reads (the
//! inside of `l7`, `ethernet`, `tunnel`, ...): a flow whose bytes are
//! well-formed at every level the scan reads but broken inside one of those
//! would be archived as it came and fail to decode when read. With
//! [`crate::writer::WriterOptions::verify_flows`] (`--verify-flows`) the
//! writer also decodes each flow with prost and refuses what prost refuses;
//! it is off by default (ARCHITECTURE.md, archive, has the reasons).
//!
//! [`response_flow`] finds the flow in an encoded `GetFlowsResponse` (the
//! follower's unit) the same way.

use std::ops::Range;

use prost::bytes::Buf;
use prost::encoding::{DecodeContext, WireType, decode_varint, skip_field};
use proto::flow::Flow;
use proto::wkt::Timestamp;

/// Why encoded bytes could not be scanned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Scan {
    /// Not a valid encoded `flow.Flow` (the same bytes fail prost's decode).
    #[error("malformed flow: {0}")]
    Malformed(String),
    /// Valid protobuf that the scan leaves to prost (a message field that
    /// occurs twice and would be merged).
    #[error("flow needs a full decode: {0}")]
    Irregular(&'static str),
}

impl From<prost::DecodeError> for Scan {
    fn from(e: prost::DecodeError) -> Self {
        Scan::Malformed(e.to_string())
    }
}

type R = Range<u32>;

/// An endpoint's columns.
#[derive(Debug, Default, Clone)]
pub struct EndpointScan {
    /// `identity` (2).
    pub identity: u32,
    /// `namespace` (3).
    pub namespace: R,
    /// `pod_name` (5).
    pub pod_name: R,
    /// `labels` (4): indices into [`FlowScan::lists`].
    pub labels: Range<usize>,
    /// The first workload's `name` (1) and `kind` (2).
    pub workload: Option<(R, R)>,
}

/// The layer-4 protocol and its columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    /// `TCP` (1): ports and the flags (bit `i` = field `i + 1` of
    /// `TCPFlags`), if the flags message is present.
    Tcp(u32, u32, Option<u16>),
    /// `UDP` (2).
    Udp(u32, u32),
    /// `ICMPv4` (3).
    Icmp4,
    /// `ICMPv6` (4).
    Icmp6,
    /// `SCTP` (5).
    Sctp(u32, u32),
    /// `VRRP` (6).
    Vrrp,
    /// `IGMP` (7).
    Igmp,
}

/// A `(name, namespace)` pair: a service or a policy.
pub type NameNs = (R, R);

/// Everything the columns need from one encoded flow, as values and byte
/// ranges of that flow. Reused from flow to flow.
#[derive(Debug, Default, Clone)]
pub struct FlowScan {
    /// `time` (1).
    pub time: Option<Timestamp>,
    /// `uuid` (34).
    pub uuid: R,
    /// `node_name` (11).
    pub node_name: R,
    /// `verdict` (2).
    pub verdict: i32,
    /// `drop_reason` (3).
    pub drop_reason: u32,
    /// `drop_reason_desc` (25).
    pub drop_reason_desc: i32,
    /// `event_type` (19): `type`, `sub_type`.
    pub event_type: Option<(i32, i32)>,
    /// `Type` (10).
    pub r#type: i32,
    /// `traffic_direction` (22).
    pub traffic_direction: i32,
    /// `trace_observation_point` (24).
    pub trace_observation_point: i32,
    /// `policy_match_type` (23).
    pub policy_match_type: u32,
    /// `is_reply` (26).
    pub is_reply: Option<bool>,
    /// `IP` (5): source, destination, ipVersion.
    pub ip: Option<(R, R, i32)>,
    /// `l4` (6): `Some(None)` is a `Layer4` without a protocol.
    pub l4: Option<Option<L4>>,
    /// `source` (8).
    pub source: Option<EndpointScan>,
    /// `destination` (9).
    pub destination: Option<EndpointScan>,
    /// `source_service` (20).
    pub source_service: Option<NameNs>,
    /// `destination_service` (21).
    pub destination_service: Option<NameNs>,
    /// `source_names` (13): indices into [`FlowScan::lists`].
    pub source_names: Range<usize>,
    /// `destination_names` (14).
    pub destination_names: Range<usize>,
    /// `interface` (28): its `name`.
    pub interface: Option<R>,
    /// `Summary` (100000).
    pub summary: R,
    /// `sock_xlate_point` (31).
    pub sock_xlate_point: i32,
    /// `socket_cookie` (32).
    pub socket_cookie: u64,
    /// `ingress_allowed_by`, `egress_allowed_by`, `ingress_denied_by`,
    /// `egress_denied_by` (21002, 21001, 21005, 21004): indices into
    /// [`FlowScan::policies`].
    pub policies: [Range<usize>; 4],
    /// Every repeated string's range, grouped by field (labels, names).
    pub lists: Vec<R>,
    /// Every policy's `(name, namespace)`.
    pub policies_all: Vec<NameNs>,
    /// Policies as they come, with the column they belong to (sorted into
    /// [`FlowScan::policies_all`] at the end of the scan).
    pending_policies: Vec<(u8, NameNs)>,
    /// Repeated strings of the two endpoints and the name lists as they
    /// come, with their owner (sorted into [`FlowScan::lists`]).
    pending_lists: Vec<(u8, R)>,
}

/// Owners of entries of `pending_lists`.
const SRC_LABELS: u8 = 0;
const DST_LABELS: u8 = 1;
const SRC_NAMES: u8 = 2;
const DST_NAMES: u8 = 3;

/// A varint at the front of `buf`, consumed: prost's `decode_varint`,
/// with the one- and two-byte values (nearly every tag, length and enum of
/// a flow) read inline instead of through the call.
#[inline(always)]
fn read_varint(buf: &mut &[u8]) -> Result<u64, Scan> {
    match **buf {
        [b0, ..] if b0 < 0x80 => {
            *buf = &buf[1..];
            Ok(u64::from(b0))
        }
        [b0, b1, ..] if b1 < 0x80 => {
            *buf = &buf[2..];
            Ok(u64::from(b0 & 0x7f) | (u64::from(b1) << 7))
        }
        _ => Ok(decode_varint(buf)?),
    }
}

/// A field's key at the front of `buf`, consumed: prost's `decode_key`
/// (the same checks) over [`read_varint`].
#[inline(always)]
fn read_key(buf: &mut &[u8]) -> Result<(u32, WireType), Scan> {
    let key = read_varint(buf)?;
    if key > u64::from(u32::MAX) {
        return Err(Scan::Malformed(format!("invalid key value: {key}")));
    }
    let wt = WireType::try_from(key & 0x07)?;
    let tag = key as u32 >> 3;
    if tag == 0 {
        return Err(Scan::Malformed("invalid tag value: 0".into()));
    }
    Ok((tag, wt))
}

/// Whether `b` is UTF-8, as prost checks a string: ASCII (nearly every
/// string of a flow) is recognised by a word-at-a-time scan first.
#[inline(always)]
fn is_utf8(b: &[u8]) -> bool {
    b.is_ascii() || std::str::from_utf8(b).is_ok()
}

/// The range of a length-delimited payload at the front of `buf`
/// (a suffix of `whole`), consumed from `buf`.
fn payload(whole: &[u8], buf: &mut &[u8], wt: WireType, what: &str) -> Result<R, Scan> {
    if wt != WireType::LengthDelimited {
        return Err(Scan::Malformed(format!(
            "{what}: invalid wire type {wt:?} (expected LengthDelimited)"
        )));
    }
    let len = read_varint(buf)?;
    let len = usize::try_from(len)
        .ok()
        .filter(|l| *l <= buf.len())
        .ok_or_else(|| Scan::Malformed(format!("{what}: buffer underflow")))?;
    let start = whole.len() - buf.len();
    buf.advance(len);
    Ok(start as u32..(start + len) as u32)
}

/// A UTF-8 string field's range (checked, as prost's decode does).
fn string(whole: &[u8], buf: &mut &[u8], wt: WireType, what: &str) -> Result<R, Scan> {
    let r = payload(whole, buf, wt, what)?;
    if !is_utf8(&whole[r.start as usize..r.end as usize]) {
        return Err(Scan::Malformed(format!(
            "{what}: invalid string value: data is not UTF-8 encoded"
        )));
    }
    Ok(r)
}

fn varint(buf: &mut &[u8], wt: WireType, what: &str) -> Result<u64, Scan> {
    if wt != WireType::Varint {
        return Err(Scan::Malformed(format!(
            "{what}: invalid wire type {wt:?} (expected Varint)"
        )));
    }
    read_varint(buf)
}

/// Walks the fields of the message `whole[r]`, calling `field` with each
/// key and the buffer positioned at its value; `field` returns `false` for
/// a field it does not read (skipped here).
fn fields(
    whole: &[u8],
    r: &R,
    mut field: impl FnMut(u32, WireType, &mut &[u8]) -> Result<bool, Scan>,
) -> Result<(), Scan> {
    // `buf` stays a suffix of `whole` (so `payload` can compute ranges);
    // a field that runs past the message's end is malformed, as in prost.
    let end = r.end as usize;
    let pos = |b: &[u8]| whole.len() - b.len();
    let mut buf = &whole[r.start as usize..];
    while pos(buf) < end {
        let (tag, wt) = read_key(&mut buf)?;
        if pos(buf) <= end && !field(tag, wt, &mut buf)? {
            let mut b = &whole[pos(buf)..end];
            skip_field(wt, tag, &mut b, DecodeContext::default())?;
            buf = &whole[end - b.len()..];
        }
        if pos(buf) > end {
            return Err(Scan::Malformed("buffer underflow".into()));
        }
    }
    Ok(())
}

fn once<T>(slot: &Option<T>, what: &'static str) -> Result<(), Scan> {
    if slot.is_some() {
        Err(Scan::Irregular(what))
    } else {
        Ok(())
    }
}

impl FlowScan {
    /// A scan with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Scans the encoded flow `pb`, replacing what the last scan held;
    /// the result reads the columns' values from `pb`.
    pub fn scan<'a>(&'a mut self, pb: &'a [u8]) -> Result<Scanned<'a>, Scan> {
        self.scan_fields(pb)?;
        Ok(Scanned { scan: self, pb })
    }

    fn scan_fields(&mut self, pb: &[u8]) -> Result<(), Scan> {
        if pb.len() > u32::MAX as usize {
            return Err(Scan::Irregular("flow larger than 4 GiB"));
        }
        let lists = std::mem::take(&mut self.lists);
        let policies_all = std::mem::take(&mut self.policies_all);
        let mut pending_lists = std::mem::take(&mut self.pending_lists);
        let mut pending_policies = std::mem::take(&mut self.pending_policies);
        pending_lists.clear();
        pending_policies.clear();
        *self = FlowScan {
            lists,
            policies_all,
            ..Default::default()
        };
        let whole = 0..pb.len() as u32;
        let res = fields(pb, &whole, |tag, wt, buf| {
            match tag {
                1 => {
                    once(&self.time, "time")?;
                    let r = payload(pb, buf, wt, "Flow.time")?;
                    let mut t = Timestamp::default();
                    fields(pb, &r, |tag, wt, buf| {
                        match tag {
                            1 => t.seconds = varint(buf, wt, "Timestamp.seconds")? as i64,
                            2 => t.nanos = varint(buf, wt, "Timestamp.nanos")? as i32,
                            _ => return Ok(false),
                        }
                        Ok(true)
                    })?;
                    self.time = Some(t);
                }
                34 => self.uuid = string(pb, buf, wt, "Flow.uuid")?,
                11 => self.node_name = string(pb, buf, wt, "Flow.node_name")?,
                2 => self.verdict = varint(buf, wt, "Flow.verdict")? as i32,
                3 => self.drop_reason = varint(buf, wt, "Flow.drop_reason")? as u32,
                25 => self.drop_reason_desc = varint(buf, wt, "Flow.drop_reason_desc")? as i32,
                19 => {
                    once(&self.event_type, "event_type")?;
                    let r = payload(pb, buf, wt, "Flow.event_type")?;
                    let mut e = (0, 0);
                    fields(pb, &r, |tag, wt, buf| {
                        match tag {
                            1 => e.0 = varint(buf, wt, "CiliumEventType.type")? as i32,
                            2 => e.1 = varint(buf, wt, "CiliumEventType.sub_type")? as i32,
                            _ => return Ok(false),
                        }
                        Ok(true)
                    })?;
                    self.event_type = Some(e);
                }
                10 => self.r#type = varint(buf, wt, "Flow.Type")? as i32,
                22 => self.traffic_direction = varint(buf, wt, "Flow.traffic_direction")? as i32,
                24 => {
                    self.trace_observation_point =
                        varint(buf, wt, "Flow.trace_observation_point")? as i32
                }
                23 => self.policy_match_type = varint(buf, wt, "Flow.policy_match_type")? as u32,
                26 => {
                    once(&self.is_reply, "is_reply")?;
                    let r = payload(pb, buf, wt, "Flow.is_reply")?;
                    let mut v = false;
                    fields(pb, &r, |tag, wt, buf| {
                        if tag != 1 {
                            return Ok(false);
                        }
                        v = varint(buf, wt, "BoolValue.value")? != 0;
                        Ok(true)
                    })?;
                    self.is_reply = Some(v);
                }
                5 => {
                    once(&self.ip, "IP")?;
                    let r = payload(pb, buf, wt, "Flow.IP")?;
                    let mut ip = (0..0, 0..0, 0);
                    fields(pb, &r, |tag, wt, buf| {
                        match tag {
                            1 => ip.0 = string(pb, buf, wt, "IP.source")?,
                            2 => ip.1 = string(pb, buf, wt, "IP.destination")?,
                            3 => ip.2 = varint(buf, wt, "IP.ipVersion")? as i32,
                            5 => {
                                string(pb, buf, wt, "IP.source_xlated")?;
                            }
                            _ => return Ok(false),
                        }
                        Ok(true)
                    })?;
                    self.ip = Some(ip);
                }
                6 => {
                    once(&self.l4, "l4")?;
                    let r = payload(pb, buf, wt, "Flow.l4")?;
                    self.l4 = Some(scan_l4(pb, &r)?);
                }
                8 | 9 => {
                    let (slot, labels) = if tag == 8 {
                        (&mut self.source, SRC_LABELS)
                    } else {
                        (&mut self.destination, DST_LABELS)
                    };
                    once(slot, "source/destination")?;
                    let r = payload(pb, buf, wt, "Flow.source/destination")?;
                    *slot = Some(scan_endpoint(pb, &r, labels, &mut pending_lists)?);
                }
                20 | 21 => {
                    let slot = if tag == 20 {
                        &mut self.source_service
                    } else {
                        &mut self.destination_service
                    };
                    once(slot, "source_service/destination_service")?;
                    let r = payload(pb, buf, wt, "Flow.source_service/destination_service")?;
                    *slot = Some(scan_name_ns(pb, &r, "Service")?);
                }
                13 => pending_lists.push((SRC_NAMES, string(pb, buf, wt, "Flow.source_names")?)),
                14 => {
                    pending_lists.push((DST_NAMES, string(pb, buf, wt, "Flow.destination_names")?))
                }
                28 => {
                    once(&self.interface, "interface")?;
                    let r = payload(pb, buf, wt, "Flow.interface")?;
                    let mut name = 0..0;
                    fields(pb, &r, |tag, wt, buf| {
                        match tag {
                            2 => name = string(pb, buf, wt, "NetworkInterface.name")?,
                            1 => {
                                varint(buf, wt, "NetworkInterface.index")?;
                            }
                            _ => return Ok(false),
                        }
                        Ok(true)
                    })?;
                    self.interface = Some(name);
                }
                100000 => self.summary = string(pb, buf, wt, "Flow.Summary")?,
                31 => self.sock_xlate_point = varint(buf, wt, "Flow.sock_xlate_point")? as i32,
                32 => self.socket_cookie = varint(buf, wt, "Flow.socket_cookie")?,
                21001 | 21002 | 21004 | 21005 => {
                    // Column order: ingress_allowed, egress_allowed,
                    // ingress_denied, egress_denied.
                    let column = match tag {
                        21002 => 0,
                        21001 => 1,
                        21005 => 2,
                        _ => 3,
                    };
                    let r = payload(pb, buf, wt, "Flow policy")?;
                    pending_policies.push((column, scan_name_ns(pb, &r, "Policy")?));
                }
                _ => return Ok(false),
            }
            Ok(true)
        });
        // Group the repeated values by owner, keeping their order.
        let mut lists = std::mem::take(&mut self.lists);
        lists.clear();
        let mut groups = [0..0, 0..0, 0..0, 0..0];
        for (owner, group) in groups.iter_mut().enumerate() {
            let start = lists.len();
            lists.extend(
                pending_lists
                    .iter()
                    .filter(|(o, _)| usize::from(*o) == owner)
                    .map(|(_, r)| r.clone()),
            );
            *group = start..lists.len();
        }
        let mut policies_all = std::mem::take(&mut self.policies_all);
        policies_all.clear();
        let mut pol = [0..0, 0..0, 0..0, 0..0];
        for (column, group) in pol.iter_mut().enumerate() {
            let start = policies_all.len();
            policies_all.extend(
                pending_policies
                    .iter()
                    .filter(|(c, _)| usize::from(*c) == column)
                    .map(|(_, p)| p.clone()),
            );
            *group = start..policies_all.len();
        }
        if let Some(e) = self.source.as_mut() {
            e.labels = groups[0].clone();
        }
        if let Some(e) = self.destination.as_mut() {
            e.labels = groups[1].clone();
        }
        self.source_names = groups[2].clone();
        self.destination_names = groups[3].clone();
        self.policies = pol;
        self.lists = lists;
        self.policies_all = policies_all;
        self.pending_lists = pending_lists;
        self.pending_policies = pending_policies;
        res
    }
}

fn scan_name_ns(pb: &[u8], r: &R, what: &'static str) -> Result<NameNs, Scan> {
    let mut v = (0..0, 0..0);
    fields(pb, r, |tag, wt, buf| {
        match tag {
            1 => v.0 = string(pb, buf, wt, what)?,
            2 => v.1 = string(pb, buf, wt, what)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(v)
}

fn scan_endpoint(
    pb: &[u8],
    r: &R,
    labels_owner: u8,
    pending: &mut Vec<(u8, R)>,
) -> Result<EndpointScan, Scan> {
    let mut e = EndpointScan::default();
    fields(pb, r, |tag, wt, buf| {
        match tag {
            2 => e.identity = varint(buf, wt, "Endpoint.identity")? as u32,
            3 => e.namespace = string(pb, buf, wt, "Endpoint.namespace")?,
            5 => e.pod_name = string(pb, buf, wt, "Endpoint.pod_name")?,
            4 => pending.push((labels_owner, string(pb, buf, wt, "Endpoint.labels")?)),
            6 => {
                let w = payload(pb, buf, wt, "Endpoint.workloads")?;
                let nk = scan_name_ns(pb, &w, "Workload")?;
                if e.workload.is_none() {
                    e.workload = Some(nk);
                }
            }
            1 => {
                varint(buf, wt, "Endpoint.ID")?;
            }
            7 => {
                string(pb, buf, wt, "Endpoint.cluster_name")?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(e)
}

fn scan_l4(pb: &[u8], r: &R) -> Result<Option<L4>, Scan> {
    let mut l4: Option<L4> = None;
    fields(pb, r, |tag, wt, buf| {
        if !(1..=7).contains(&tag) {
            return Ok(false);
        }
        if l4.is_some() {
            return Err(Scan::Irregular("Layer4.protocol"));
        }
        let m = payload(pb, buf, wt, "Layer4.protocol")?;
        let mut ports = (0u32, 0u32);
        let mut flags: Option<u16> = None;
        let mut irregular = None;
        fields(pb, &m, |t, wt, buf| {
            match (tag, t) {
                (1 | 2 | 5, 1) => ports.0 = varint(buf, wt, "source_port")? as u32,
                (1 | 2 | 5, 2) => ports.1 = varint(buf, wt, "destination_port")? as u32,
                (1, 3) => {
                    if flags.is_some() {
                        irregular = Some("TCP.flags");
                    }
                    let fr = payload(pb, buf, wt, "TCP.flags")?;
                    let mut bits = 0u16;
                    fields(pb, &fr, |f, wt, buf| {
                        if !(1..=9).contains(&f) {
                            return Ok(false);
                        }
                        let v = varint(buf, wt, "TCPFlags")? != 0;
                        let bit = 1u16 << (f - 1);
                        if v {
                            bits |= bit;
                        } else {
                            bits &= !bit;
                        }
                        Ok(true)
                    })?;
                    flags = Some(bits);
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        if let Some(what) = irregular {
            return Err(Scan::Irregular(what));
        }
        l4 = Some(match tag {
            1 => L4::Tcp(ports.0, ports.1, flags),
            2 => L4::Udp(ports.0, ports.1),
            3 => L4::Icmp4,
            4 => L4::Icmp6,
            5 => L4::Sctp(ports.0, ports.1),
            6 => L4::Vrrp,
            _ => L4::Igmp,
        });
        Ok(true)
    })?;
    Ok(l4)
}

/// A successful scan of `pb`: the values of [`FlowScan`], and the strings
/// at its ranges. Holding `pb` borrowed, it guarantees that every range is
/// one the scan checked to be UTF-8 in these very bytes.
#[derive(Debug, Clone, Copy)]
pub struct Scanned<'a> {
    scan: &'a FlowScan,
    pb: &'a [u8],
}

impl<'a> Scanned<'a> {
    /// The scanned values.
    pub fn fields(&self) -> &'a FlowScan {
        self.scan
    }

    /// The bytes scanned (the row's `flow_pb`).
    pub fn bytes(&self) -> &'a [u8] {
        self.pb
    }

    /// The flow's time.
    pub fn time(&self) -> Option<Timestamp> {
        self.scan.time
    }

    /// The flow's uuid.
    pub fn uuid(&self) -> &'a str {
        self.text(&self.scan.uuid)
    }

    /// The string at `r`, a range of [`Scanned::fields`].
    pub fn text(&self, r: &R) -> &'a str {
        let b = &self.pb[r.start as usize..r.end as usize];
        debug_assert!(std::str::from_utf8(b).is_ok());
        // SAFETY: every range in `self.scan` is either empty or a string
        // field's payload that `string()` checked to be UTF-8 in `self.pb`
        // during the scan that produced this value; `self.pb` is borrowed
        // immutably since, so the bytes are the ones checked.
        unsafe { std::str::from_utf8_unchecked(b) }
    }
}

/// Decodes `pb` with prost: the flow for rows the scan leaves to prost, and
/// the validation of bytes nobody checked.
pub fn decode(pb: &[u8]) -> Result<Flow, Scan> {
    use prost::Message as _;
    Flow::decode(pb).map_err(|e| Scan::Malformed(e.to_string()))
}

/// Field numbers of `observer.GetFlowsResponse`.
const RESPONSE_FLOW: u32 = 1;
const RESPONSE_NODE_STATUS: u32 = 2;
const RESPONSE_LOST_EVENTS: u32 = 3;
const RESPONSE_NODE_NAME: u32 = 1000;
const RESPONSE_TIME: u32 = 1001;

/// The flow of an encoded `GetFlowsResponse`, as the range of its bytes:
/// `Ok(Some(_))` when the response is a flow, `Ok(None)` when it is
/// something else (lost events, node status, a progress marker), and
/// [`Scan::Irregular`] when prost would merge several `flow` occurrences
/// (the caller decodes the response then). The response's own
/// `node_name` must be UTF-8 and its `time` must decode, as in prost.
pub fn response_flow(bytes: &[u8]) -> Result<Option<Range<usize>>, Scan> {
    let mut flow: Option<Range<usize>> = None;
    let mut is_flow = false;
    let whole =
        0..u32::try_from(bytes.len()).map_err(|_| Scan::Irregular("response larger than 4 GiB"))?;
    let mut irregular = false;
    fields(bytes, &whole, |tag, wt, buf| {
        match tag {
            RESPONSE_FLOW => {
                let r = payload(bytes, buf, wt, "GetFlowsResponse.flow")?;
                if is_flow {
                    irregular = true;
                }
                is_flow = true;
                flow = Some(r.start as usize..r.end as usize);
            }
            RESPONSE_NODE_STATUS | RESPONSE_LOST_EVENTS => {
                payload(bytes, buf, wt, "GetFlowsResponse.response_types")?;
                is_flow = false;
                irregular = false;
                flow = None;
            }
            RESPONSE_NODE_NAME => {
                string(bytes, buf, wt, "GetFlowsResponse.node_name")?;
            }
            RESPONSE_TIME => {
                let r = payload(bytes, buf, wt, "GetFlowsResponse.time")?;
                fields(bytes, &r, |tag, wt, buf| {
                    match tag {
                        1 | 2 => {
                            varint(buf, wt, "Timestamp")?;
                        }
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if irregular {
        return Err(Scan::Irregular("GetFlowsResponse.flow"));
    }
    Ok(flow)
}

#[cfg(test)]
mod tests {
    use prost::encoding::{decode_key, encode_varint};

    use super::*;

    /// Buffers around every varint length: complete, truncated, too long,
    /// with bytes after.
    fn buffers() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for shift in 0..64 {
            for v in [1u64 << shift, (1u64 << shift) - 1, (1u64 << shift) + 1] {
                let mut b = Vec::new();
                encode_varint(v, &mut b);
                for cut in 0..=b.len() {
                    out.push(b[..cut].to_vec());
                }
                b.extend([0x08, 0x96, 0x01]);
                out.push(b);
            }
        }
        out.push(vec![0xff; 11]);
        out.push([vec![0xff; 9], vec![0x7f]].concat());
        out.push([vec![0xff; 9], vec![0x02]].concat());
        out.push(vec![0x80, 0x00]);
        out
    }

    #[test]
    fn varints_and_keys_read_as_prost_reads_them() {
        for b in buffers() {
            let (mut ours, mut theirs) = (b.as_slice(), b.as_slice());
            let got = read_varint(&mut ours).map_err(|_| ());
            let want = decode_varint(&mut theirs).map_err(|_| ());
            assert_eq!(got, want, "{b:02x?}");
            if got.is_ok() {
                assert_eq!(ours.len(), theirs.len(), "{b:02x?}");
            }
            let (mut ours, mut theirs) = (b.as_slice(), b.as_slice());
            let got = read_key(&mut ours).map_err(|_| ());
            let want = decode_key(&mut theirs).map_err(|_| ());
            assert_eq!(got, want, "{b:02x?}");
            if got.is_ok() {
                assert_eq!(ours.len(), theirs.len(), "{b:02x?}");
            }
        }
    }

    #[test]
    fn strings_are_checked_as_utf8() {
        for (s, ok) in [
            (&b""[..], true),
            (b"default/xwing", true),
            ("k8s:app=d\u{e9}mo".as_bytes(), true),
            (b"\xff", false),
            (b"abc\xc3", false),
            (b"\xed\xa0\x80", false),
        ] {
            assert_eq!(is_utf8(s), ok, "{s:02x?}");
            assert_eq!(is_utf8(s), std::str::from_utf8(s).is_ok());
        }
    }
}

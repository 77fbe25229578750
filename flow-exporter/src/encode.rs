//! A flow's protobuf encoding written by hand ([`flow_fields`]): the bytes
//! prost writes for a `Flow` (its fields in field-number order), without
//! its endpoints, at ingest's speed. prost computes every nested message's
//! length before writing it and writes each varint byte by byte through a
//! call; here a nested message's length is filled in after its body (one
//! byte reserved, the body moved in the rare case it needs more) and the
//! fields the parser fills are written directly. Fields it never fills
//! (L7, policies, trace context, ...) are written by prost. The parser's
//! text fields can also come from a [`FlowText`] ([`flow_fields_with`]):
//! MACs, addresses, summary and UUID formatted straight into the output,
//! never into the flow's strings. Pinned byte
//! for byte to prost by `tests/served_bytes.rs` (every fixture, 20,000
//! synthetic flows, masked flows).

use flow_parser::FlowText;
use flow_parser::l34::{Headers, write_ip_bytes, write_mac_bytes};
use prost::Message;
use proto::flow::{Ethernet, Flow, Ip, Layer4, layer4::Protocol};
use proto::wkt::Timestamp;

/// Wire type of varints.
const VARINT: u32 = 0;
/// Wire type of length-delimited fields.
const LEN: u32 = 2;

#[inline]
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn key(out: &mut Vec<u8>, tag: u32, wire: u32) {
    varint(out, u64::from(tag << 3 | wire));
}

/// An `int32` or enum field (negative values as ten bytes, as prost).
#[inline]
fn int32(out: &mut Vec<u8>, tag: u32, v: i32) {
    if v != 0 {
        key(out, tag, VARINT);
        varint(out, v as i64 as u64);
    }
}

#[inline]
fn uint64(out: &mut Vec<u8>, tag: u32, v: u64) {
    if v != 0 {
        key(out, tag, VARINT);
        varint(out, v);
    }
}

#[inline]
fn boolean(out: &mut Vec<u8>, tag: u32, v: bool) {
    if v {
        key(out, tag, VARINT);
        out.push(1);
    }
}

/// A length-delimited field, written even when empty.
#[inline]
fn bytes(out: &mut Vec<u8>, tag: u32, b: &[u8]) {
    key(out, tag, LEN);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

#[inline]
fn string(out: &mut Vec<u8>, tag: u32, s: &str) {
    if !s.is_empty() {
        bytes(out, tag, s.as_bytes());
    }
}

fn strings(out: &mut Vec<u8>, tag: u32, v: &[String]) {
    // Repeated strings: every element, empty ones too.
    for s in v {
        bytes(out, tag, s.as_bytes());
    }
}

/// A nested message field: key, length, then the body `body` writes.
#[inline]
fn nested(out: &mut Vec<u8>, tag: u32, body: impl FnOnce(&mut Vec<u8>)) {
    key(out, tag, LEN);
    out.push(0);
    let start = out.len();
    body(out);
    let n = out.len() - start;
    if n < 0x80 {
        out[start - 1] = n as u8;
    } else {
        // A longer body: its length takes more bytes; move it up.
        let mut len = Vec::with_capacity(5);
        varint(&mut len, n as u64);
        out.splice(start - 1..start, len);
    }
}

/// A nested message prost writes (the fields the parser never fills).
fn message<M: Message>(out: &mut Vec<u8>, tag: u32, m: &Option<M>) {
    if let Some(m) = m {
        prost::encoding::message::encode(tag, m, out);
    }
}

fn timestamp(out: &mut Vec<u8>, tag: u32, t: &Timestamp) {
    nested(out, tag, |out| {
        if t.seconds != 0 {
            key(out, 1, VARINT);
            varint(out, t.seconds as u64);
        }
        int32(out, 2, t.nanos);
    });
}

fn ethernet(out: &mut Vec<u8>, e: &Ethernet) {
    let Ethernet {
        source,
        destination,
    } = e;
    nested(out, 4, |out| {
        string(out, 1, source);
        string(out, 2, destination);
    });
}

fn ip(out: &mut Vec<u8>, ip: &Ip) {
    let Ip {
        source,
        source_xlated,
        destination,
        ip_version,
        encrypted,
    } = ip;
    nested(out, 5, |out| {
        string(out, 1, source);
        string(out, 2, destination);
        int32(out, 3, *ip_version);
        boolean(out, 4, *encrypted);
        string(out, 5, source_xlated);
    });
}

fn ports(out: &mut Vec<u8>, source: u32, destination: u32) {
    uint64(out, 1, source.into());
    uint64(out, 2, destination.into());
}

fn layer4(out: &mut Vec<u8>, l4: &Layer4) {
    nested(out, 6, |out| match &l4.protocol {
        None => {}
        Some(Protocol::Tcp(t)) => nested(out, 1, |out| {
            ports(out, t.source_port, t.destination_port);
            if let Some(f) = &t.flags {
                nested(out, 3, |out| {
                    let proto::flow::TcpFlags {
                        fin,
                        syn,
                        rst,
                        psh,
                        ack,
                        urg,
                        ece,
                        cwr,
                        ns,
                    } = f;
                    for (tag, v) in [fin, syn, rst, psh, ack, urg, ece, cwr, ns]
                        .into_iter()
                        .enumerate()
                    {
                        boolean(out, tag as u32 + 1, *v);
                    }
                });
            }
        }),
        Some(Protocol::Udp(u)) => {
            nested(out, 2, |out| ports(out, u.source_port, u.destination_port))
        }
        Some(Protocol::IcmPv4(i)) => nested(out, 3, |out| ports(out, i.r#type, i.code)),
        Some(Protocol::IcmPv6(i)) => nested(out, 4, |out| ports(out, i.r#type, i.code)),
        Some(Protocol::Sctp(s)) => {
            nested(out, 5, |out| ports(out, s.source_port, s.destination_port))
        }
        Some(p) => p.encode(out),
    });
}

/// Appends the encoding of `f`'s fields but `source` and `destination`
/// (what prost's `encode_raw` writes for `f` with both `None`); returns
/// the length of those numbered below them (the head, see
/// [`crate::stored`]) within what was appended. The pattern lists every
/// field of `Flow`: a field added to the proto fails to compile here.
pub fn flow_fields(f: &Flow, out: &mut Vec<u8>) -> usize {
    flow_fields_with(f, &FlowText::default(), out)
}

/// [`flow_fields`] of the flow `f` and `text` make together
/// ([`flow_parser::Parser::decode_text_into`]): what `text` keeps (the
/// packet's Ethernet and IP, the summary, the UUID) is written from it,
/// straight into `out`, in place of the flow's fields, the rest from `f`.
/// The bytes are those of [`flow_fields`] of the flow
/// [`FlowText::write_into`] completes.
pub fn flow_fields_with(f: &Flow, text: &FlowText, out: &mut Vec<u8>) -> usize {
    let Flow {
        time,
        verdict,
        drop_reason,
        ethernet: eth,
        ip: ip_,
        l4,
        source: _,
        destination: _,
        uuid,
        emitter,
        auth_type,
        tunnel,
        r#type,
        node_name,
        node_labels,
        source_names,
        destination_names,
        l7,
        reply,
        event_type,
        source_service,
        destination_service,
        traffic_direction,
        policy_match_type,
        trace_observation_point,
        trace_reason,
        file,
        drop_reason_desc,
        is_reply,
        debug_capture_point,
        interface,
        proxy_port,
        trace_context,
        sock_xlate_point,
        socket_cookie,
        cgroup_id,
        ip_trace_id,
        summary,
        extensions,
        egress_allowed_by,
        ingress_allowed_by,
        egress_denied_by,
        ingress_denied_by,
        policy_log,
        aggregate,
    } = f;
    let start = out.len();
    if let Some(t) = time {
        timestamp(out, 1, t);
    }
    int32(out, 2, *verdict);
    uint64(out, 3, (*drop_reason).into());
    match text.packet() {
        Some(h) => packet(out, h),
        None => {
            if let Some(e) = eth {
                ethernet(out, e);
            }
            if let Some(i) = ip_ {
                ip(out, i);
            }
        }
    }
    if let Some(l) = l4 {
        layer4(out, l);
    }
    let head = out.len() - start;
    // 8, 9: the endpoints, shared (not written here).
    int32(out, 10, *r#type);
    string(out, 11, node_name);
    strings(out, 13, source_names);
    strings(out, 14, destination_names);
    message(out, 15, l7);
    boolean(out, 16, *reply);
    if let Some(e) = event_type {
        nested(out, 19, |out| {
            int32(out, 1, e.r#type);
            int32(out, 2, e.sub_type);
        });
    }
    for (tag, s) in [(20, source_service), (21, destination_service)] {
        if let Some(s) = s {
            nested(out, tag, |out| {
                string(out, 1, &s.name);
                string(out, 2, &s.namespace);
            });
        }
    }
    int32(out, 22, *traffic_direction);
    uint64(out, 23, (*policy_match_type).into());
    int32(out, 24, *trace_observation_point);
    int32(out, 25, *drop_reason_desc);
    if let Some(r) = is_reply {
        nested(out, 26, |out| boolean(out, 1, r.value));
    }
    int32(out, 27, *debug_capture_point);
    if let Some(i) = interface {
        nested(out, 28, |out| {
            uint64(out, 1, i.index.into());
            string(out, 2, &i.name);
        });
    }
    uint64(out, 29, (*proxy_port).into());
    message(out, 30, trace_context);
    int32(out, 31, *sock_xlate_point);
    uint64(out, 32, *socket_cookie);
    uint64(out, 33, *cgroup_id);
    if !text_field(out, 34, |out| text.write_uuid(out)) {
        string(out, 34, uuid);
    }
    int32(out, 35, *auth_type);
    int32(out, 36, *trace_reason);
    strings(out, 37, node_labels);
    message(out, 38, file);
    message(out, 39, tunnel);
    message(out, 40, ip_trace_id);
    message(out, 41, emitter);
    for (tag, policies) in [
        (21001, egress_allowed_by),
        (21002, ingress_allowed_by),
        (21004, egress_denied_by),
        (21005, ingress_denied_by),
    ] {
        for p in policies {
            prost::encoding::message::encode(tag, p, out);
        }
    }
    strings(out, 21006, policy_log);
    message(out, 21007, aggregate);
    if !text_field(out, 100000, |out| text.write_summary(out)) {
        string(out, 100000, summary);
    }
    message(out, 150000, extensions);
    head
}

/// The packet's `Ethernet` (4) and `IP` (5) from its headers, the text
/// written straight into `out` (as [`flow_parser::l34::Headers`]'s
/// `ethernet_into` and `ip_into` would make them).
fn packet(out: &mut Vec<u8>, h: &Headers) {
    if let Some((s, d)) = &h.eth {
        // Two 17-byte strings: 38 bytes.
        key(out, 4, LEN);
        out.push(38);
        for (tag, m) in [(1, s), (2, d)] {
            key(out, tag, LEN);
            out.push(17);
            write_mac_bytes(m, out);
        }
    }
    if let Some((s, d)) = h.ip {
        nested(out, 5, |out| {
            for (tag, a) in [(1, s), (2, d)] {
                // At most 39 bytes: the length is one byte, filled in
                // after the text.
                key(out, tag, LEN);
                out.push(0);
                let start = out.len();
                write_ip_bytes(a, out);
                out[start - 1] = (out.len() - start) as u8;
            }
            int32(out, 3, h.ip_version() as i32);
        });
    }
}

/// A string field whose text `body` appends (returning whether it did);
/// nothing when it appended nothing, as prost skips an empty string.
/// Returns `body`'s answer.
fn text_field(out: &mut Vec<u8>, tag: u32, body: impl FnOnce(&mut Vec<u8>) -> bool) -> bool {
    let mark = out.len();
    key(out, tag, LEN);
    out.push(0);
    let start = out.len();
    if !body(out) {
        out.truncate(mark);
        return false;
    }
    let n = out.len() - start;
    if n == 0 {
        out.truncate(mark);
    } else if n < 0x80 {
        out[start - 1] = n as u8;
    } else {
        let mut len = Vec::with_capacity(5);
        varint(&mut len, n as u64);
        out.splice(start - 1..start, len);
    }
    true
}

/// [`response_suffix`] after the fields [`flow_fields`] wrote at
/// `flow_start` in `out` for a flow whose time is `time`: the response's
/// `time` is the flow's, so its bytes are copied from the flow's `time`
/// field (the first one written) instead of encoded again.
pub fn response_suffix_after(
    node_name: &str,
    time: Option<&Timestamp>,
    flow_start: usize,
    out: &mut Vec<u8>,
) {
    string(out, 1000, node_name);
    if time.is_some() {
        // The flow's field 1: key, one length byte (a timestamp's body is
        // at most 22 bytes), body.
        debug_assert_eq!(out[flow_start], 1 << 3 | LEN as u8);
        let len = usize::from(out[flow_start + 1]);
        key(out, 1001, LEN);
        out.extend_from_within(flow_start + 1..flow_start + 2 + len);
    }
}

/// Appends `GetFlowsResponse`'s fields after its flow: `node_name` (1000)
/// and `time` (1001), as prost writes them.
pub fn response_suffix(node_name: &str, time: Option<&Timestamp>, out: &mut Vec<u8>) {
    string(out, 1000, node_name);
    if let Some(t) = time {
        timestamp(out, 1001, t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::flow::{
        CiliumEventType, Layer7, NetworkInterface, Policy, Service, Tcp, TcpFlags, Vrrp,
    };
    use proto::wkt::BoolValue;

    /// prost's bytes of `f` without its endpoints, and the head's length.
    fn prost_bytes(f: &Flow) -> (Vec<u8>, usize) {
        let mut f = f.clone();
        (f.source, f.destination) = (None, None);
        let all = f.encode_to_vec();
        let head = Flow {
            time: f.time,
            verdict: f.verdict,
            drop_reason: f.drop_reason,
            ethernet: f.ethernet.clone(),
            ip: f.ip.clone(),
            l4: f.l4,
            ..Flow::default()
        };
        (all, head.encoded_len())
    }

    fn check(f: &Flow) {
        let mut out = vec![7];
        let head = flow_fields(f, &mut out);
        let (want, want_head) = prost_bytes(f);
        assert_eq!(&out[1..], &want[..], "{f:?}");
        assert_eq!(head, want_head);
    }

    #[test]
    fn edge_cases_are_written_as_prost_writes_them() {
        let long = "x".repeat(300);
        let flows = [
            Flow::default(),
            // Negative numbers, empty nested messages, long nested bodies.
            Flow {
                time: Some(Timestamp {
                    seconds: -5,
                    nanos: -1,
                }),
                verdict: -3,
                drop_reason: u32::MAX,
                ethernet: Some(Ethernet {
                    source: long.clone(),
                    destination: String::new(),
                }),
                ip: Some(Ip {
                    source_xlated: long.clone(),
                    encrypted: true,
                    ip_version: 2,
                    ..Ip::default()
                }),
                l4: Some(Layer4 { protocol: None }),
                is_reply: Some(BoolValue { value: false }),
                event_type: Some(CiliumEventType {
                    r#type: -1,
                    sub_type: 0,
                }),
                source_service: Some(Service::default()),
                interface: Some(NetworkInterface {
                    index: 1 << 31,
                    name: long.clone(),
                }),
                source_names: vec![String::new(), long.clone()],
                node_labels: vec!["a".into()],
                policy_log: vec![String::new()],
                socket_cookie: u64::MAX,
                summary: long.clone(),
                ..Flow::default()
            },
            Flow {
                time: Some(Timestamp::default()),
                l4: Some(Layer4 {
                    protocol: Some(Protocol::Tcp(Tcp {
                        source_port: 1,
                        destination_port: 65535,
                        flags: Some(TcpFlags {
                            fin: true,
                            syn: true,
                            rst: true,
                            psh: true,
                            ack: true,
                            urg: true,
                            ece: true,
                            cwr: true,
                            ns: true,
                        }),
                    })),
                }),
                l7: Some(Layer7 {
                    r#type: 1,
                    latency_ns: 5,
                    record: None,
                }),
                egress_allowed_by: vec![
                    Policy::default(),
                    Policy {
                        name: long.clone(),
                        ..Policy::default()
                    },
                ],
                ingress_denied_by: vec![Policy::default()],
                ..Flow::default()
            },
            Flow {
                l4: Some(Layer4 {
                    protocol: Some(Protocol::Vrrp(Vrrp {
                        r#type: 1,
                        vrid: 2,
                        priority: 3,
                    })),
                }),
                ..Flow::default()
            },
        ];
        for f in &flows {
            check(f);
        }
    }

    #[test]
    fn the_response_suffix_is_written_as_prost_writes_it() {
        use proto::observer::GetFlowsResponse;
        for (node_name, time) in [
            (String::new(), None),
            ("n".repeat(200), Some(Timestamp::from_unix_nanos(-1))),
            (
                "kind-worker".into(),
                Some(Timestamp::from_unix_nanos(1 << 62)),
            ),
        ] {
            let mut out = Vec::new();
            response_suffix(&node_name, time.as_ref(), &mut out);
            // The same, copied from a flow's time.
            let mut copied = vec![9];
            flow_fields(
                &Flow {
                    time,
                    ..Flow::default()
                },
                &mut copied,
            );
            let end = copied.len();
            response_suffix_after(&node_name, time.as_ref(), 1, &mut copied);
            assert_eq!(copied[end..], out[..]);
            let r = GetFlowsResponse {
                response_types: None,
                node_name,
                time,
            };
            assert_eq!(out, r.encode_to_vec());
        }
    }
}

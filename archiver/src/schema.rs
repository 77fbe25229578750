//! The archive's Parquet schema (ARCHITECTURE.md, archive): flat, typed columns for
//! everything users filter on, plus `flow_pb`, the flow's protobuf encoding,
//! which rebuilds the full flow. The schema version is written into every
//! file's key-value metadata.
//!
//! The date and hour are not columns: they are the hive partition
//! directories (`dt=YYYY-MM-DD/hour=HH/`), which DuckDB, pyarrow and polars
//! turn back into columns.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Int32Builder, ListBuilder, StringBuilder,
    TimestampNanosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use prost::Message;

use crate::encoded::{L4, Scanned};
use proto::flow::{
    DropReason, Flow, IpVersion, SocketTranslationPoint, TraceObservationPoint, TrafficDirection,
    Verdict, layer4,
};

/// Version of the column layout below; bump on any change.
/// Version 2 added `sock_xlate_point` and `socket_cookie` (service
/// translations, trace-sock flows); compaction rebuilds version-1 rows from
/// their `flow_pb`. Version 3 added the policies that decided a verdict
/// (`ingress_allowed_by`, `egress_allowed_by`, `ingress_denied_by`,
/// `egress_denied_by`: `namespace/name`, or `name` for a clusterwide policy).
pub const SCHEMA_VERSION: &str = "3";
/// Metadata key holding [`SCHEMA_VERSION`].
pub const SCHEMA_VERSION_KEY: &str = "flow_archive.schema_version";

fn list_of_strings(name: &str) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        true,
    )
}

/// The Arrow schema of every archive file.
pub fn schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("time", ts, false),
        Field::new("uuid", DataType::Utf8, true),
        Field::new("node_name", DataType::Utf8, true),
        Field::new("verdict", DataType::Utf8, false),
        Field::new("drop_reason", DataType::UInt32, true),
        Field::new("drop_reason_desc", DataType::Utf8, true),
        Field::new("event_type", DataType::Int32, true),
        Field::new("event_sub_type", DataType::Int32, true),
        Field::new("type", DataType::Utf8, true),
        Field::new("traffic_direction", DataType::Utf8, true),
        Field::new("trace_observation_point", DataType::Utf8, true),
        Field::new("policy_match_type", DataType::UInt32, true),
        Field::new("is_reply", DataType::Boolean, true),
        Field::new("ip_version", DataType::Utf8, true),
        Field::new("source_ip", DataType::Utf8, true),
        Field::new("destination_ip", DataType::Utf8, true),
        Field::new("protocol", DataType::Utf8, true),
        Field::new("source_port", DataType::UInt32, true),
        Field::new("destination_port", DataType::UInt32, true),
        Field::new("tcp_flags", DataType::Utf8, true),
        Field::new("source_identity", DataType::UInt32, true),
        Field::new("destination_identity", DataType::UInt32, true),
        Field::new("source_namespace", DataType::Utf8, true),
        Field::new("source_pod", DataType::Utf8, true),
        Field::new("destination_namespace", DataType::Utf8, true),
        Field::new("destination_pod", DataType::Utf8, true),
        list_of_strings("source_labels"),
        list_of_strings("destination_labels"),
        Field::new("source_workload", DataType::Utf8, true),
        Field::new("destination_workload", DataType::Utf8, true),
        Field::new("source_service", DataType::Utf8, true),
        Field::new("destination_service", DataType::Utf8, true),
        list_of_strings("source_names"),
        list_of_strings("destination_names"),
        Field::new("interface", DataType::Utf8, true),
        Field::new("summary", DataType::Utf8, true),
        Field::new("sock_xlate_point", DataType::Utf8, true),
        Field::new("socket_cookie", DataType::UInt64, true),
        list_of_strings("ingress_allowed_by"),
        list_of_strings("egress_allowed_by"),
        list_of_strings("ingress_denied_by"),
        list_of_strings("egress_denied_by"),
        Field::new("flow_pb", DataType::Binary, false),
    ]))
}

/// Appends flows column by column and produces record batches.
#[derive(Debug)]
pub struct BatchBuilder {
    schema: SchemaRef,
    time: TimestampNanosecondBuilder,
    uuid: StringBuilder,
    node_name: StringBuilder,
    verdict: StringBuilder,
    drop_reason: UInt32Builder,
    drop_reason_desc: StringBuilder,
    event_type: Int32Builder,
    event_sub_type: Int32Builder,
    r#type: StringBuilder,
    traffic_direction: StringBuilder,
    trace_observation_point: StringBuilder,
    policy_match_type: UInt32Builder,
    is_reply: BooleanBuilder,
    ip_version: StringBuilder,
    source_ip: StringBuilder,
    destination_ip: StringBuilder,
    protocol: StringBuilder,
    source_port: UInt32Builder,
    destination_port: UInt32Builder,
    tcp_flags: StringBuilder,
    source_identity: UInt32Builder,
    destination_identity: UInt32Builder,
    source_namespace: StringBuilder,
    source_pod: StringBuilder,
    destination_namespace: StringBuilder,
    destination_pod: StringBuilder,
    source_labels: ListBuilder<StringBuilder>,
    destination_labels: ListBuilder<StringBuilder>,
    source_workload: StringBuilder,
    destination_workload: StringBuilder,
    source_service: StringBuilder,
    destination_service: StringBuilder,
    source_names: ListBuilder<StringBuilder>,
    destination_names: ListBuilder<StringBuilder>,
    interface: StringBuilder,
    summary: StringBuilder,
    sock_xlate_point: StringBuilder,
    socket_cookie: UInt64Builder,
    ingress_allowed_by: ListBuilder<StringBuilder>,
    egress_allowed_by: ListBuilder<StringBuilder>,
    ingress_denied_by: ListBuilder<StringBuilder>,
    egress_denied_by: ListBuilder<StringBuilder>,
    flow_pb: BinaryBuilder,
    rows: usize,
    scratch: Vec<u8>,
    /// Reused for values built from parts (`kind/name`, TCP flags).
    text: String,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

fn opt_str(b: &mut StringBuilder, s: &str) {
    if s.is_empty() {
        b.append_null()
    } else {
        b.append_value(s)
    }
}

/// `a/b`, built in `buf` (reused from value to value).
fn joined<'a>(buf: &'a mut String, a: &str, b: &str) -> &'a str {
    buf.clear();
    buf.push_str(a);
    buf.push('/');
    buf.push_str(b);
    buf
}

fn enum_name<E>(v: i32, name: fn(&E) -> &'static str) -> Option<&'static str>
where
    E: TryFrom<i32>,
{
    E::try_from(v).ok().as_ref().map(name)
}

fn list(b: &mut ListBuilder<StringBuilder>, items: &[String]) {
    for i in items {
        b.values().append_value(i);
    }
    b.append(true);
}

/// Writes the names of the set TCP flags, comma-separated, into `out`
/// (cleared first).
fn tcp_flag_names(f: &proto::flow::TcpFlags, out: &mut String) {
    out.clear();
    for (set, name) in [
        (f.syn, "SYN"),
        (f.ack, "ACK"),
        (f.fin, "FIN"),
        (f.rst, "RST"),
        (f.psh, "PSH"),
        (f.urg, "URG"),
        (f.ece, "ECE"),
        (f.cwr, "CWR"),
        (f.ns, "NS"),
    ] {
        if set {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(name);
        }
    }
}

/// Room for the next batch, from a finished column of `rows` rows holding
/// `n` items (values, bytes): scaled to at least a full batch
/// ([`crate::defaults::BATCH_ROWS`], so a file's short last batch does not
/// shrink the next file's builders) plus a quarter, so a batch slightly
/// larger than the last one does not grow (reallocate and copy) its
/// buffers; the bytes of `flow_pb` are most of a batch.
fn room(n: usize, rows: usize) -> usize {
    let want = rows.max(crate::defaults::BATCH_ROWS);
    let n = (n * want).checked_div(rows).unwrap_or(0);
    n + n / 4
}

/// Rows of room for the next batch after one of `rows` rows.
fn rows_room(rows: usize) -> usize {
    rows.max(crate::defaults::BATCH_ROWS)
}

/// A string builder with room for `col`'s rows and bytes.
fn sized_strings(col: &ArrayRef) -> StringBuilder {
    sized_strings_for(col, col.len())
}

/// [`sized_strings`] for the values of a list column of `rows` rows.
fn sized_strings_for(col: &ArrayRef, rows: usize) -> StringBuilder {
    let bytes = col
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .map_or(0, |a| a.value_data().len());
    StringBuilder::with_capacity(room(col.len(), rows), room(bytes, rows))
}

/// A binary builder with room for `col`'s rows and bytes.
fn sized_binary(col: &ArrayRef) -> BinaryBuilder {
    let bytes = col
        .as_any()
        .downcast_ref::<arrow_array::BinaryArray>()
        .map_or(0, |a| a.value_data().len());
    BinaryBuilder::with_capacity(rows_room(col.len()), room(bytes, col.len()))
}

/// A list-of-strings builder with room for `col`'s lists and strings.
fn sized_lists(col: &ArrayRef) -> ListBuilder<StringBuilder> {
    let values = col
        .as_any()
        .downcast_ref::<arrow_array::ListArray>()
        .map_or_else(StringBuilder::new, |l| {
            sized_strings_for(l.values(), col.len())
        });
    ListBuilder::with_capacity(values, rows_room(col.len()))
}

/// [`tcp_flag_bits`] of every combination of the nine flags, computed
/// once: the scanned path looks a row's value up instead of building it.
fn tcp_flag_table() -> &'static [String; 512] {
    static TABLE: std::sync::OnceLock<Box<[String; 512]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        Box::new(std::array::from_fn(|bits| {
            let mut s = String::new();
            tcp_flag_bits(bits as u16, &mut s);
            s
        }))
    })
}

/// [`tcp_flag_names`] of the flags as bits (bit `i` is field `i + 1` of
/// `TCPFlags`: FIN, SYN, RST, PSH, ACK, URG, ECE, CWR, NS).
fn tcp_flag_bits(bits: u16, out: &mut String) {
    let bit = |field: u16| bits & (1 << (field - 1)) != 0;
    tcp_flag_names(
        &proto::flow::TcpFlags {
            fin: bit(1),
            syn: bit(2),
            rst: bit(3),
            psh: bit(4),
            ack: bit(5),
            urg: bit(6),
            ece: bit(7),
            cwr: bit(8),
            ns: bit(9),
        },
        out,
    );
}

impl BatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        let sl = || ListBuilder::new(StringBuilder::new());
        BatchBuilder {
            schema: schema(),
            time: TimestampNanosecondBuilder::new().with_timezone("UTC"),
            uuid: StringBuilder::new(),
            node_name: StringBuilder::new(),
            verdict: StringBuilder::new(),
            drop_reason: UInt32Builder::new(),
            drop_reason_desc: StringBuilder::new(),
            event_type: Int32Builder::new(),
            event_sub_type: Int32Builder::new(),
            r#type: StringBuilder::new(),
            traffic_direction: StringBuilder::new(),
            trace_observation_point: StringBuilder::new(),
            policy_match_type: UInt32Builder::new(),
            is_reply: BooleanBuilder::new(),
            ip_version: StringBuilder::new(),
            source_ip: StringBuilder::new(),
            destination_ip: StringBuilder::new(),
            protocol: StringBuilder::new(),
            source_port: UInt32Builder::new(),
            destination_port: UInt32Builder::new(),
            tcp_flags: StringBuilder::new(),
            source_identity: UInt32Builder::new(),
            destination_identity: UInt32Builder::new(),
            source_namespace: StringBuilder::new(),
            source_pod: StringBuilder::new(),
            destination_namespace: StringBuilder::new(),
            destination_pod: StringBuilder::new(),
            source_labels: sl(),
            destination_labels: sl(),
            source_workload: StringBuilder::new(),
            destination_workload: StringBuilder::new(),
            source_service: StringBuilder::new(),
            destination_service: StringBuilder::new(),
            source_names: sl(),
            destination_names: sl(),
            interface: StringBuilder::new(),
            summary: StringBuilder::new(),
            sock_xlate_point: StringBuilder::new(),
            socket_cookie: UInt64Builder::new(),
            ingress_allowed_by: sl(),
            egress_allowed_by: sl(),
            ingress_denied_by: sl(),
            egress_denied_by: sl(),
            flow_pb: BinaryBuilder::new(),
            rows: 0,
            scratch: Vec::with_capacity(1024),
            text: String::with_capacity(256),
        }
    }

    /// Rows appended since the last [`BatchBuilder::finish`].
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row is pending.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one flow.
    pub fn push(&mut self, f: &Flow) {
        self.push_columns(f);
        self.scratch.clear();
        // Encoding into a Vec cannot fail.
        let _ = f.encode(&mut self.scratch);
        self.flow_pb.append_value(&self.scratch);
        self.rows += 1;
    }

    /// Every column but `flow_pb`.
    fn push_columns(&mut self, f: &Flow) {
        let t = f.time.map(|t| t.as_unix_nanos()).unwrap_or(0);
        self.time
            .append_value(t.clamp(i64::MIN as i128, i64::MAX as i128) as i64);
        opt_str(&mut self.uuid, &f.uuid);
        opt_str(&mut self.node_name, &f.node_name);
        self.verdict
            .append_value(enum_name(f.verdict, Verdict::as_str_name).unwrap_or("VERDICT_UNKNOWN"));
        let dropped = f.verdict == Verdict::Dropped as i32;
        if dropped {
            self.drop_reason.append_value(f.drop_reason);
            self.drop_reason_desc
                .append_option(enum_name(f.drop_reason_desc, DropReason::as_str_name));
        } else {
            self.drop_reason.append_null();
            self.drop_reason_desc.append_null();
        }
        self.event_type
            .append_option(f.event_type.as_ref().map(|e| e.r#type));
        self.event_sub_type
            .append_option(f.event_type.as_ref().map(|e| e.sub_type));
        self.r#type
            .append_option(enum_name(f.r#type, proto::flow::FlowType::as_str_name));
        self.traffic_direction.append_option(enum_name(
            f.traffic_direction,
            TrafficDirection::as_str_name,
        ));
        self.trace_observation_point.append_option(
            (f.trace_observation_point != 0)
                .then(|| {
                    enum_name(
                        f.trace_observation_point,
                        TraceObservationPoint::as_str_name,
                    )
                })
                .flatten(),
        );
        self.policy_match_type.append_option(
            (f.event_type.as_ref().map(|e| e.r#type) == Some(5)).then_some(f.policy_match_type),
        );
        self.is_reply.append_option(f.is_reply.map(|r| r.value));
        let ip = f.ip.as_ref();
        self.ip_version
            .append_option(ip.and_then(|i| enum_name(i.ip_version, IpVersion::as_str_name)));
        self.source_ip
            .append_option(ip.map(|i| i.source.as_str()).filter(|s| !s.is_empty()));
        self.destination_ip
            .append_option(ip.map(|i| i.destination.as_str()).filter(|s| !s.is_empty()));
        let (proto_name, sport, dport, flags) =
            match f.l4.as_ref().and_then(|l| l.protocol.as_ref()) {
                Some(layer4::Protocol::Tcp(t)) => (
                    Some("TCP"),
                    Some(t.source_port),
                    Some(t.destination_port),
                    t.flags.as_ref().map(|fl| {
                        tcp_flag_names(fl, &mut self.text);
                        self.text.as_str()
                    }),
                ),
                Some(layer4::Protocol::Udp(u)) => (
                    Some("UDP"),
                    Some(u.source_port),
                    Some(u.destination_port),
                    None,
                ),
                Some(layer4::Protocol::Sctp(s)) => (
                    Some("SCTP"),
                    Some(s.source_port),
                    Some(s.destination_port),
                    None,
                ),
                Some(layer4::Protocol::IcmPv4(_)) => (Some("ICMPv4"), None, None, None),
                Some(layer4::Protocol::IcmPv6(_)) => (Some("ICMPv6"), None, None, None),
                Some(layer4::Protocol::Vrrp(_)) => (Some("VRRP"), None, None, None),
                Some(layer4::Protocol::Igmp(_)) => (Some("IGMP"), None, None, None),
                None => (None, None, None, None),
            };
        self.protocol.append_option(proto_name);
        self.source_port.append_option(sport);
        self.destination_port.append_option(dport);
        self.tcp_flags
            .append_option(flags.filter(|s| !s.is_empty()));
        for (ep, identity, ns, pod, labels, workload) in [
            (
                f.source.as_ref(),
                &mut self.source_identity,
                &mut self.source_namespace,
                &mut self.source_pod,
                &mut self.source_labels,
                &mut self.source_workload,
            ),
            (
                f.destination.as_ref(),
                &mut self.destination_identity,
                &mut self.destination_namespace,
                &mut self.destination_pod,
                &mut self.destination_labels,
                &mut self.destination_workload,
            ),
        ] {
            identity.append_option(ep.map(|e| e.identity));
            ns.append_option(ep.map(|e| e.namespace.as_str()).filter(|s| !s.is_empty()));
            pod.append_option(ep.map(|e| e.pod_name.as_str()).filter(|s| !s.is_empty()));
            list(labels, ep.map(|e| e.labels.as_slice()).unwrap_or_default());
            match ep.and_then(|e| e.workloads.first()) {
                Some(w) if w.kind.is_empty() => workload.append_value(&w.name),
                Some(w) => workload.append_value(joined(&mut self.text, &w.kind, &w.name)),
                None => workload.append_null(),
            }
        }
        for (svc, b) in [
            (f.source_service.as_ref(), &mut self.source_service),
            (
                f.destination_service.as_ref(),
                &mut self.destination_service,
            ),
        ] {
            match svc {
                Some(s) if !s.name.is_empty() => {
                    b.append_value(joined(&mut self.text, &s.namespace, &s.name))
                }
                _ => b.append_null(),
            }
        }
        list(&mut self.source_names, &f.source_names);
        list(&mut self.destination_names, &f.destination_names);
        self.interface.append_option(
            f.interface
                .as_ref()
                .map(|i| i.name.as_str())
                .filter(|s| !s.is_empty()),
        );
        opt_str(&mut self.summary, &f.summary);
        self.sock_xlate_point.append_option(
            (f.sock_xlate_point != 0)
                .then(|| enum_name(f.sock_xlate_point, SocketTranslationPoint::as_str_name))
                .flatten(),
        );
        self.socket_cookie
            .append_option((f.socket_cookie != 0).then_some(f.socket_cookie));
        for (b, policies) in [
            (&mut self.ingress_allowed_by, &f.ingress_allowed_by),
            (&mut self.egress_allowed_by, &f.egress_allowed_by),
            (&mut self.ingress_denied_by, &f.ingress_denied_by),
            (&mut self.egress_denied_by, &f.egress_denied_by),
        ] {
            for p in policies {
                if p.namespace.is_empty() {
                    b.values().append_value(&p.name);
                } else {
                    b.values()
                        .append_value(joined(&mut self.text, &p.namespace, &p.name));
                }
            }
            b.append(true);
        }
    }

    /// Appends one decoded flow with `pb`, its encoding as received, as
    /// `flow_pb` (instead of encoding it again).
    pub fn push_decoded(&mut self, f: &Flow, pb: &[u8]) {
        self.push_columns(f);
        self.flow_pb.append_value(pb);
        self.rows += 1;
    }

    /// Appends one flow from its encoded bytes, as scanned: the same columns as [`BatchBuilder::push`]
    /// of the decoded flow (tested), strings copied straight from `pb`,
    /// and `pb` itself as `flow_pb`.
    pub fn push_scanned(&mut self, scanned: &Scanned<'_>) {
        let s = scanned.fields();
        let pb = scanned.bytes();
        let t = |r: &std::ops::Range<u32>| scanned.text(r);
        let opt = |r: &std::ops::Range<u32>| (!r.is_empty()).then(|| scanned.text(r));
        let nanos = s.time.map(|t| t.as_unix_nanos()).unwrap_or(0);
        self.time
            .append_value(nanos.clamp(i64::MIN as i128, i64::MAX as i128) as i64);
        self.uuid.append_option(opt(&s.uuid));
        self.node_name.append_option(opt(&s.node_name));
        self.verdict
            .append_value(enum_name(s.verdict, Verdict::as_str_name).unwrap_or("VERDICT_UNKNOWN"));
        if s.verdict == Verdict::Dropped as i32 {
            self.drop_reason.append_value(s.drop_reason);
            self.drop_reason_desc
                .append_option(enum_name(s.drop_reason_desc, DropReason::as_str_name));
        } else {
            self.drop_reason.append_null();
            self.drop_reason_desc.append_null();
        }
        self.event_type.append_option(s.event_type.map(|e| e.0));
        self.event_sub_type.append_option(s.event_type.map(|e| e.1));
        self.r#type
            .append_option(enum_name(s.r#type, proto::flow::FlowType::as_str_name));
        self.traffic_direction.append_option(enum_name(
            s.traffic_direction,
            TrafficDirection::as_str_name,
        ));
        self.trace_observation_point.append_option(
            (s.trace_observation_point != 0)
                .then(|| {
                    enum_name(
                        s.trace_observation_point,
                        TraceObservationPoint::as_str_name,
                    )
                })
                .flatten(),
        );
        self.policy_match_type
            .append_option((s.event_type.map(|e| e.0) == Some(5)).then_some(s.policy_match_type));
        self.is_reply.append_option(s.is_reply);
        let ip = s.ip.as_ref();
        self.ip_version
            .append_option(ip.and_then(|i| enum_name(i.2, IpVersion::as_str_name)));
        self.source_ip.append_option(ip.and_then(|i| opt(&i.0)));
        self.destination_ip
            .append_option(ip.and_then(|i| opt(&i.1)));
        let (proto_name, sport, dport, flags) = match s.l4.flatten() {
            Some(L4::Tcp(sp, dp, fl)) => (Some("TCP"), Some(sp), Some(dp), fl),
            Some(L4::Udp(sp, dp)) => (Some("UDP"), Some(sp), Some(dp), None),
            Some(L4::Sctp(sp, dp)) => (Some("SCTP"), Some(sp), Some(dp), None),
            Some(L4::Icmp4) => (Some("ICMPv4"), None, None, None),
            Some(L4::Icmp6) => (Some("ICMPv6"), None, None, None),
            Some(L4::Vrrp) => (Some("VRRP"), None, None, None),
            Some(L4::Igmp) => (Some("IGMP"), None, None, None),
            None => (None, None, None, None),
        };
        self.protocol.append_option(proto_name);
        self.source_port.append_option(sport);
        self.destination_port.append_option(dport);
        match flags {
            Some(bits) => {
                // The scan keeps only bits 0..=8 (fields 1..=9).
                let names = &tcp_flag_table()[usize::from(bits) & 0x1ff];
                self.tcp_flags
                    .append_option((!names.is_empty()).then_some(names.as_str()));
            }
            None => self.tcp_flags.append_null(),
        }
        for (ep, identity, ns, pod, labels, workload) in [
            (
                s.source.as_ref(),
                &mut self.source_identity,
                &mut self.source_namespace,
                &mut self.source_pod,
                &mut self.source_labels,
                &mut self.source_workload,
            ),
            (
                s.destination.as_ref(),
                &mut self.destination_identity,
                &mut self.destination_namespace,
                &mut self.destination_pod,
                &mut self.destination_labels,
                &mut self.destination_workload,
            ),
        ] {
            identity.append_option(ep.map(|e| e.identity));
            ns.append_option(ep.and_then(|e| opt(&e.namespace)));
            pod.append_option(ep.and_then(|e| opt(&e.pod_name)));
            if let Some(e) = ep {
                for r in &s.lists[e.labels.clone()] {
                    labels.values().append_value(t(r));
                }
            }
            labels.append(true);
            match ep.and_then(|e| e.workload.as_ref()) {
                Some((name, kind)) if kind.is_empty() => workload.append_value(t(name)),
                Some((name, kind)) => {
                    workload.append_value(joined(&mut self.text, t(kind), t(name)))
                }
                None => workload.append_null(),
            }
        }
        for (svc, b) in [
            (s.source_service.as_ref(), &mut self.source_service),
            (
                s.destination_service.as_ref(),
                &mut self.destination_service,
            ),
        ] {
            match svc {
                Some((name, ns)) if !name.is_empty() => {
                    b.append_value(joined(&mut self.text, t(ns), t(name)))
                }
                _ => b.append_null(),
            }
        }
        for (b, range) in [
            (&mut self.source_names, &s.source_names),
            (&mut self.destination_names, &s.destination_names),
        ] {
            for r in &s.lists[range.clone()] {
                b.values().append_value(t(r));
            }
            b.append(true);
        }
        self.interface
            .append_option(s.interface.as_ref().and_then(opt));
        self.summary.append_option(opt(&s.summary));
        self.sock_xlate_point.append_option(
            (s.sock_xlate_point != 0)
                .then(|| enum_name(s.sock_xlate_point, SocketTranslationPoint::as_str_name))
                .flatten(),
        );
        self.socket_cookie
            .append_option((s.socket_cookie != 0).then_some(s.socket_cookie));
        for (b, range) in [
            (&mut self.ingress_allowed_by, &s.policies[0]),
            (&mut self.egress_allowed_by, &s.policies[1]),
            (&mut self.ingress_denied_by, &s.policies[2]),
            (&mut self.egress_denied_by, &s.policies[3]),
        ] {
            for (name, ns) in &s.policies_all[range.clone()] {
                if ns.is_empty() {
                    b.values().append_value(t(name));
                } else {
                    b.values()
                        .append_value(joined(&mut self.text, t(ns), t(name)));
                }
            }
            b.append(true);
        }
        self.flow_pb.append_value(pb);
        self.rows += 1;
    }

    /// The pending rows as one record batch; the builder is empty after.
    pub fn finish(&mut self) -> RecordBatch {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.uuid.finish()),
            Arc::new(self.node_name.finish()),
            Arc::new(self.verdict.finish()),
            Arc::new(self.drop_reason.finish()),
            Arc::new(self.drop_reason_desc.finish()),
            Arc::new(self.event_type.finish()),
            Arc::new(self.event_sub_type.finish()),
            Arc::new(self.r#type.finish()),
            Arc::new(self.traffic_direction.finish()),
            Arc::new(self.trace_observation_point.finish()),
            Arc::new(self.policy_match_type.finish()),
            Arc::new(self.is_reply.finish()),
            Arc::new(self.ip_version.finish()),
            Arc::new(self.source_ip.finish()),
            Arc::new(self.destination_ip.finish()),
            Arc::new(self.protocol.finish()),
            Arc::new(self.source_port.finish()),
            Arc::new(self.destination_port.finish()),
            Arc::new(self.tcp_flags.finish()),
            Arc::new(self.source_identity.finish()),
            Arc::new(self.destination_identity.finish()),
            Arc::new(self.source_namespace.finish()),
            Arc::new(self.source_pod.finish()),
            Arc::new(self.destination_namespace.finish()),
            Arc::new(self.destination_pod.finish()),
            Arc::new(self.source_labels.finish()),
            Arc::new(self.destination_labels.finish()),
            Arc::new(self.source_workload.finish()),
            Arc::new(self.destination_workload.finish()),
            Arc::new(self.source_service.finish()),
            Arc::new(self.destination_service.finish()),
            Arc::new(self.source_names.finish()),
            Arc::new(self.destination_names.finish()),
            Arc::new(self.interface.finish()),
            Arc::new(self.summary.finish()),
            Arc::new(self.sock_xlate_point.finish()),
            Arc::new(self.socket_cookie.finish()),
            Arc::new(self.ingress_allowed_by.finish()),
            Arc::new(self.egress_allowed_by.finish()),
            Arc::new(self.ingress_denied_by.finish()),
            Arc::new(self.egress_denied_by.finish()),
            Arc::new(self.flow_pb.finish()),
        ];
        self.rows = 0;
        // The next batch is like this one: its builders start with this
        // one's sizes rather than growing (and copying) their buffers
        // several times over.
        self.time = TimestampNanosecondBuilder::with_capacity(rows_room(cols[0].len()))
            .with_timezone("UTC");
        self.uuid = sized_strings(&cols[1]);
        self.node_name = sized_strings(&cols[2]);
        self.verdict = sized_strings(&cols[3]);
        self.drop_reason = UInt32Builder::with_capacity(rows_room(cols[4].len()));
        self.drop_reason_desc = sized_strings(&cols[5]);
        self.event_type = Int32Builder::with_capacity(rows_room(cols[6].len()));
        self.event_sub_type = Int32Builder::with_capacity(rows_room(cols[7].len()));
        self.r#type = sized_strings(&cols[8]);
        self.traffic_direction = sized_strings(&cols[9]);
        self.trace_observation_point = sized_strings(&cols[10]);
        self.policy_match_type = UInt32Builder::with_capacity(rows_room(cols[11].len()));
        self.is_reply = BooleanBuilder::with_capacity(rows_room(cols[12].len()));
        self.ip_version = sized_strings(&cols[13]);
        self.source_ip = sized_strings(&cols[14]);
        self.destination_ip = sized_strings(&cols[15]);
        self.protocol = sized_strings(&cols[16]);
        self.source_port = UInt32Builder::with_capacity(rows_room(cols[17].len()));
        self.destination_port = UInt32Builder::with_capacity(rows_room(cols[18].len()));
        self.tcp_flags = sized_strings(&cols[19]);
        self.source_identity = UInt32Builder::with_capacity(rows_room(cols[20].len()));
        self.destination_identity = UInt32Builder::with_capacity(rows_room(cols[21].len()));
        self.source_namespace = sized_strings(&cols[22]);
        self.source_pod = sized_strings(&cols[23]);
        self.destination_namespace = sized_strings(&cols[24]);
        self.destination_pod = sized_strings(&cols[25]);
        self.source_labels = sized_lists(&cols[26]);
        self.destination_labels = sized_lists(&cols[27]);
        self.source_workload = sized_strings(&cols[28]);
        self.destination_workload = sized_strings(&cols[29]);
        self.source_service = sized_strings(&cols[30]);
        self.destination_service = sized_strings(&cols[31]);
        self.source_names = sized_lists(&cols[32]);
        self.destination_names = sized_lists(&cols[33]);
        self.interface = sized_strings(&cols[34]);
        self.summary = sized_strings(&cols[35]);
        self.sock_xlate_point = sized_strings(&cols[36]);
        self.socket_cookie = UInt64Builder::with_capacity(rows_room(cols[37].len()));
        self.ingress_allowed_by = sized_lists(&cols[38]);
        self.egress_allowed_by = sized_lists(&cols[39]);
        self.ingress_denied_by = sized_lists(&cols[40]);
        self.egress_denied_by = sized_lists(&cols[41]);
        self.flow_pb = sized_binary(&cols[42]);
        // The columns are built to the schema above, row for row.
        RecordBatch::try_new(self.schema.clone(), cols).expect("batch matches the archive schema")
    }
}

/// The rows of `batch` in the current schema: as they are when the batch
/// already has it, else rebuilt from each row's `flow_pb` (files written by
/// an older schema version, e.g. before compaction merges them with new
/// ones). Rows whose `flow_pb` does not decode are an error.
pub fn upgrade(batch: RecordBatch) -> Result<RecordBatch, String> {
    let want = schema();
    if batch.schema().fields() == want.fields() {
        return Ok(batch);
    }
    let pb = batch
        .column_by_name("flow_pb")
        .and_then(|c| c.as_any().downcast_ref::<arrow_array::BinaryArray>())
        .ok_or("not a flow archive batch: no binary flow_pb column")?;
    let mut b = BatchBuilder::new();
    for (row, bytes) in pb.iter().enumerate() {
        let flow = Flow::decode(bytes.unwrap_or_default())
            .map_err(|e| format!("row {row}: flow_pb does not decode: {e}"))?;
        b.push(&flow);
    }
    Ok(b.finish())
}

#[cfg(test)]
mod tests {
    use arrow_array::{Array, StringArray, UInt64Array};
    use proto::flow::{CiliumEventType, Service};

    use super::*;

    fn sock_flow() -> Flow {
        Flow {
            verdict: Verdict::Translated as i32,
            r#type: proto::flow::FlowType::Sock as i32,
            event_type: Some(CiliumEventType {
                r#type: 7,
                sub_type: 2,
            }),
            sock_xlate_point: SocketTranslationPoint::SockXlatePointPostDirectionFwd as i32,
            socket_cookie: 77,
            source_service: Some(Service {
                name: "frontend".into(),
                namespace: "default".into(),
            }),
            destination_service: Some(Service {
                name: "deathstar".into(),
                namespace: "empire".into(),
            }),
            ..Flow::default()
        }
    }

    fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> &'a T {
        b.column_by_name(name)
            .unwrap_or_else(|| panic!("column {name}"))
            .as_any()
            .downcast_ref::<T>()
            .unwrap()
    }

    #[test]
    fn translation_and_service_columns() {
        let mut b = BatchBuilder::new();
        b.push(&sock_flow());
        b.push(&Flow::default());
        let batch = b.finish();
        let xlate = col::<StringArray>(&batch, "sock_xlate_point");
        assert_eq!(xlate.value(0), "SOCK_XLATE_POINT_POST_DIRECTION_FWD");
        assert!(xlate.is_null(1));
        let cookie = col::<UInt64Array>(&batch, "socket_cookie");
        assert_eq!(cookie.value(0), 77);
        assert!(cookie.is_null(1));
        assert_eq!(col::<StringArray>(&batch, "type").value(0), "SOCK");
        assert_eq!(col::<StringArray>(&batch, "verdict").value(0), "TRANSLATED");
        let src = col::<StringArray>(&batch, "source_service");
        let dst = col::<StringArray>(&batch, "destination_service");
        assert_eq!(
            (src.value(0), dst.value(0)),
            ("default/frontend", "empire/deathstar")
        );
        assert!(src.is_null(1) && dst.is_null(1));
    }

    #[test]
    fn policy_columns_name_the_deciding_policies() {
        let policy = |name: &str, namespace: &str| proto::flow::Policy {
            name: name.into(),
            namespace: namespace.into(),
            kind: "CiliumNetworkPolicy".into(),
            ..Default::default()
        };
        let allowed = Flow {
            ingress_allowed_by: vec![policy("rule1", "default"), policy("global", "")],
            ..Flow::default()
        };
        let denied = Flow {
            egress_denied_by: vec![policy("deny-xwing-80", "default")],
            ..Flow::default()
        };
        let mut b = BatchBuilder::new();
        for f in [&allowed, &denied, &Flow::default()] {
            b.push(f);
        }
        let batch = b.finish();
        let names = |column: &str, row: usize| -> Vec<String> {
            let l = col::<arrow_array::ListArray>(&batch, column).value(row);
            let s = l.as_any().downcast_ref::<StringArray>().unwrap();
            (0..s.len()).map(|i| s.value(i).to_string()).collect()
        };
        assert_eq!(names("ingress_allowed_by", 0), ["default/rule1", "global"]);
        assert!(names("egress_denied_by", 0).is_empty());
        assert_eq!(names("egress_denied_by", 1), ["default/deny-xwing-80"]);
        for c in [
            "ingress_allowed_by",
            "egress_allowed_by",
            "ingress_denied_by",
            "egress_denied_by",
        ] {
            assert!(names(c, 2).is_empty(), "{c}");
        }
    }

    #[test]
    fn older_batches_are_rebuilt_from_flow_pb() {
        let mut b = BatchBuilder::new();
        b.push(&sock_flow());
        let batch = b.finish();
        // A version-1 batch: the same rows without the new columns.
        let old = batch
            .project(
                &(0..batch.num_columns())
                    .filter(|&i| {
                        !matches!(
                            batch.schema().field(i).name().as_str(),
                            "sock_xlate_point" | "socket_cookie"
                        )
                    })
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        assert_ne!(old.schema().fields(), schema().fields());
        assert_eq!(upgrade(old).unwrap(), batch);
        assert_eq!(upgrade(batch.clone()).unwrap(), batch);
        let no_pb = batch.project(&[0]).unwrap();
        assert!(upgrade(no_pb).unwrap_err().contains("flow_pb"));
    }
}

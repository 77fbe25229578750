//! Flow aggregation straight from the archive's columns (`hubble observe
//! --archive DIR --aggregate-by FIELDS`): only the columns the grouping
//! paths and the filters need are read (Parquet projection), row groups
//! outside `since`/`until` are skipped by their statistics, and rows are
//! grouped in a hash map over the column values; no `flow_pb` is read and
//! no flow decoded.
//!
//! The result is the one the decoding path gives: a grouped value is the
//! value the flow's Hubble JSON has at that path (absent, zero and empty
//! values are JSON `null`), and filters are Hubble's own
//! ([`flow_filter::FilterSet`]), run on a flow rebuilt from the columns
//! with just the fields the supported filters read. [`plan`] says when a
//! query cannot be answered this way (a path or a filter field without a
//! column); callers then decode instead.
//!
//! Paths with a column: `verdict`, `drop_reason_desc` (kept for dropped
//! flows only, as the column is), `Type`, `node_name`,
//! `traffic_direction`, `is_reply`, `event_type.type`,
//! `event_type.sub_type`, `IP.source`, `IP.destination`, `IP.ipVersion`,
//! `source.`/`destination.` `namespace`, `pod_name`, `identity`, and
//! `l4.TCP.`/`l4.UDP.`/`l4.SCTP.` `source_port`, `destination_port`.
//! Filter fields with a column: source/destination pod (and so
//! namespace), identity and port, verdict, event type, protocol (not the
//! L7 ones), node name, drop reason, traffic direction, reply.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use arrow_array::{
    Array, BooleanArray, Int32Array, RecordBatch, StringArray, TimestampNanosecondArray,
    UInt32Array,
};
use flow_filter::FilterSet;
use parquet::arrow::ProjectionMask;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use proto::flow::{
    CiliumEventType, DropReason, Endpoint, Flow, FlowFilter, FlowType, IpVersion, Layer4,
    TrafficDirection, Verdict, layer4,
};
use proto::wkt::Timestamp;
use rustc_hash::FxHashMap;
use serde_json::Value;

use crate::read::{Archive, Query, ReadError, ReadStats, column};

/// One group: the grouped values (in the order of the paths), how many
/// flows, and the times of the first and last.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The value at each path (`Null` when the flow has none).
    pub values: Vec<Value>,
    /// Flows in the group.
    pub count: u64,
    /// Earliest flow time.
    pub first: Option<Timestamp>,
    /// Latest flow time.
    pub last: Option<Timestamp>,
}

/// How one grouped path is read from the columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A string column; the value is `null` when the column is null or
    /// holds `zero` (an enum's zero name, omitted from JSON).
    Str(&'static str, Option<&'static str>),
    /// An unsigned column; 0 is `null`.
    U32(&'static str),
    /// A signed column; 0 is `null`.
    I32(&'static str),
    /// A boolean column.
    Bool(&'static str),
    /// A port column, for flows of this L4 protocol only.
    Port(&'static str, &'static str),
}

impl Source {
    fn columns(self) -> Vec<&'static str> {
        match self {
            Source::Str(c, _) | Source::U32(c) | Source::I32(c) | Source::Bool(c) => vec![c],
            Source::Port(c, _) => vec![c, "protocol"],
        }
    }
}

fn source_of(path: &str) -> Option<Source> {
    let zero = |name: &'static str| Some(name);
    Some(match path {
        "verdict" => Source::Str("verdict", zero(Verdict::Unknown.as_str_name())),
        "drop_reason_desc" => {
            Source::Str("drop_reason_desc", zero(DropReason::Unknown.as_str_name()))
        }
        "Type" => Source::Str("type", zero(FlowType::UnknownType.as_str_name())),
        "node_name" => Source::Str("node_name", None),
        "traffic_direction" => Source::Str(
            "traffic_direction",
            zero(TrafficDirection::Unknown.as_str_name()),
        ),
        "is_reply" => Source::Bool("is_reply"),
        "event_type.type" => Source::I32("event_type"),
        "event_type.sub_type" => Source::I32("event_sub_type"),
        "IP.source" => Source::Str("source_ip", None),
        "IP.destination" => Source::Str("destination_ip", None),
        "IP.ipVersion" => Source::Str("ip_version", zero(IpVersion::IpNotUsed.as_str_name())),
        "source.namespace" => Source::Str("source_namespace", None),
        "source.pod_name" => Source::Str("source_pod", None),
        "source.identity" => Source::U32("source_identity"),
        "destination.namespace" => Source::Str("destination_namespace", None),
        "destination.pod_name" => Source::Str("destination_pod", None),
        "destination.identity" => Source::U32("destination_identity"),
        _ => {
            let rest = path.strip_prefix("l4.")?;
            let (proto, field) = rest.split_once('.')?;
            let proto = match proto {
                "TCP" => "TCP",
                "UDP" => "UDP",
                "SCTP" => "SCTP",
                _ => return None,
            };
            match field {
                "source_port" => Source::Port("source_port", proto),
                "destination_port" => Source::Port("destination_port", proto),
                _ => return None,
            }
        }
    })
}

/// The columns a filter needs, or `None` when one of its fields has none.
fn filter_columns(f: &FlowFilter) -> Option<Vec<&'static str>> {
    let mut rest = f.clone();
    let mut cols = Vec::new();
    let mut need = |used: bool, c: &[&'static str]| {
        if used {
            cols.extend_from_slice(c);
        }
    };
    need(
        !f.source_pod.is_empty(),
        &["source_namespace", "source_pod"],
    );
    need(
        !f.destination_pod.is_empty(),
        &["destination_namespace", "destination_pod"],
    );
    need(!f.source_identity.is_empty(), &["source_identity"]);
    need(
        !f.destination_identity.is_empty(),
        &["destination_identity"],
    );
    need(!f.verdict.is_empty(), &["verdict"]);
    need(!f.event_type.is_empty(), &["event_type", "event_sub_type"]);
    need(!f.protocol.is_empty(), &["protocol"]);
    need(!f.source_port.is_empty(), &["protocol", "source_port"]);
    need(
        !f.destination_port.is_empty(),
        &["protocol", "destination_port"],
    );
    need(!f.node_name.is_empty(), &["node_name"]);
    need(
        !f.drop_reason_desc.is_empty(),
        &["verdict", "drop_reason_desc"],
    );
    need(!f.traffic_direction.is_empty(), &["traffic_direction"]);
    need(!f.reply.is_empty(), &["verdict", "is_reply"]);
    // L7 protocols are not columns.
    if f.protocol
        .iter()
        .any(|p| matches!(p.to_ascii_lowercase().as_str(), "dns" | "http" | "kafka"))
    {
        return None;
    }
    rest.source_pod.clear();
    rest.destination_pod.clear();
    rest.source_identity.clear();
    rest.destination_identity.clear();
    rest.verdict.clear();
    rest.event_type.clear();
    rest.protocol.clear();
    rest.source_port.clear();
    rest.destination_port.clear();
    rest.node_name.clear();
    rest.drop_reason_desc.clear();
    rest.traffic_direction.clear();
    rest.reply.clear();
    (rest == FlowFilter::default()).then_some(cols)
}

/// A query the columns can answer: the columns to read and how each path
/// is read.
#[derive(Debug)]
pub struct Plan {
    sources: Vec<Source>,
    columns: Vec<&'static str>,
    filters: FilterSet,
    filtered: bool,
}

/// Plans `q` grouped by `paths` from the columns; `Err` says why it cannot
/// be (a path or filter field without a column, or an invalid filter).
pub fn plan(q: &Query, paths: &[String]) -> Result<Plan, String> {
    let mut columns = vec!["time"];
    let mut sources = Vec::new();
    for p in paths {
        let s = source_of(p).ok_or_else(|| format!("--aggregate-by {p} has no archive column"))?;
        columns.extend(s.columns());
        sources.push(s);
    }
    let mut filtered = false;
    for f in q.whitelist.iter().chain(&q.blacklist) {
        let c =
            filter_columns(f).ok_or_else(|| "a filter field has no archive column".to_string())?;
        filtered = true;
        columns.extend(c);
    }
    // The rebuilt flow has an endpoint only where the flow had one.
    if columns.iter().any(|c| c.starts_with("source_")) {
        columns.push("source_identity");
    }
    if columns.iter().any(|c| c.starts_with("destination_")) {
        columns.push("destination_identity");
    }
    columns.sort_unstable();
    columns.dedup();
    let filters = FilterSet::compile(&q.whitelist, &q.blacklist).map_err(|e| e.to_string())?;
    Ok(Plan {
        sources,
        columns,
        filtered: filtered && !filters.is_match_all(),
        filters,
    })
}

/// The loaded columns of one batch (those the plan asked for).
struct Cols<'a> {
    time: &'a TimestampNanosecondArray,
    batch: &'a RecordBatch,
}

impl<'a> Cols<'a> {
    fn str(&self, name: &str) -> Option<StrCol<'a>> {
        let c = self.batch.column_by_name(name)?.as_any();
        if let Some(a) = c.downcast_ref::<StringArray>() {
            return Some(StrCol::Plain(a));
        }
        let d = c.downcast_ref::<arrow_array::DictionaryArray<arrow_array::types::Int32Type>>()?;
        Some(StrCol::Dict(
            d.keys(),
            d.values().as_any().downcast_ref::<StringArray>()?,
        ))
    }
    fn u32(&self, name: &str) -> Option<&'a UInt32Array> {
        self.batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref())
    }
    fn i32(&self, name: &str) -> Option<&'a Int32Array> {
        self.batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref())
    }
    fn bool(&self, name: &str) -> Option<&'a BooleanArray> {
        self.batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref())
    }
}

/// A string column as read: plain, or dictionary-encoded (as the files
/// store it, which saves building every row's string).
#[derive(Clone, Copy)]
enum StrCol<'a> {
    Plain(&'a StringArray),
    Dict(&'a Int32Array, &'a StringArray),
}

impl<'a> StrCol<'a> {
    fn get(self, row: usize) -> Option<&'a str> {
        match self {
            StrCol::Plain(a) => (!a.is_null(row)).then(|| a.value(row)),
            StrCol::Dict(k, v) => (!k.is_null(row)).then(|| v.value(k.value(row) as usize)),
        }
    }
}

fn get_str(a: Option<StrCol<'_>>, row: usize) -> Option<&str> {
    a.and_then(|a| a.get(row))
}

/// Interned string values of one grouped path: 0 is `null` (absent, empty
/// or the enum's zero name), others count from 1.
#[derive(Default)]
struct Interned(FxHashMap<String, u32>);

impl Interned {
    fn id(&mut self, s: Option<&str>, zero: Option<&'static str>) -> u32 {
        match s {
            None => 0,
            Some(s) if s.is_empty() || Some(s) == zero => 0,
            Some(s) => match self.0.get(s) {
                Some(id) => *id,
                None => {
                    let id = self.0.len() as u32 + 1;
                    self.0.insert(s.to_owned(), id);
                    id
                }
            },
        }
    }
}

fn get<T: arrow_array::ArrowPrimitiveType>(
    a: Option<&arrow_array::PrimitiveArray<T>>,
    row: usize,
) -> Option<T::Native> {
    a.filter(|a| !a.is_null(row)).map(|a| a.value(row))
}

/// Typed references to the columns the paths read, per batch.
enum PathCol<'a> {
    Str(Option<StrCol<'a>>, Option<&'static str>),
    U32(Option<&'a UInt32Array>),
    I32(Option<&'a Int32Array>),
    Bool(Option<&'a BooleanArray>),
    Port(Option<&'a UInt32Array>, Option<StrCol<'a>>, &'static str),
}

impl PathCol<'_> {
    /// Appends the value's key bytes; returns nothing.
    fn key(&self, row: usize, out: &mut Vec<u8>) {
        match self.value_ref(row) {
            Ref::Null => out.push(0),
            Ref::Str(s) => {
                out.push(1);
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Ref::Num(n) => {
                out.push(2);
                out.extend_from_slice(&n.to_le_bytes());
            }
            Ref::Bool(b) => out.push(3 + u8::from(b)),
        }
    }

    fn value_ref(&self, row: usize) -> Ref<'_> {
        match *self {
            PathCol::Str(a, zero) => match get_str(a, row) {
                Some(s) if !s.is_empty() && Some(s) != zero => Ref::Str(s),
                _ => Ref::Null,
            },
            PathCol::U32(a) => match get(a, row) {
                Some(n) if n != 0 => Ref::Num(i64::from(n)),
                _ => Ref::Null,
            },
            PathCol::I32(a) => match get(a, row) {
                Some(n) if n != 0 => Ref::Num(i64::from(n)),
                _ => Ref::Null,
            },
            PathCol::Bool(a) => a
                .filter(|a| !a.is_null(row))
                .map_or(Ref::Null, |a| Ref::Bool(a.value(row))),
            PathCol::Port(a, proto, want) => match (get_str(proto, row), get(a, row)) {
                (Some(p), Some(n)) if p == want && n != 0 => Ref::Num(i64::from(n)),
                _ => Ref::Null,
            },
        }
    }

    fn value(&self, row: usize) -> Value {
        match self.value_ref(row) {
            Ref::Null => Value::Null,
            Ref::Str(s) => Value::from(s),
            Ref::Num(n) => Value::from(n),
            Ref::Bool(b) => Value::from(b),
        }
    }
}

enum Ref<'a> {
    Null,
    Str(&'a str),
    Num(i64),
    Bool(bool),
}

/// A flow rebuilt from the columns, with the fields the supported filters
/// read; reused from row to row.
#[derive(Default)]
struct Rebuilt {
    flow: Flow,
    spare_src: Option<Endpoint>,
    spare_dst: Option<Endpoint>,
}

fn set_endpoint(
    slot: &mut Option<Endpoint>,
    spare: &mut Option<Endpoint>,
    present: bool,
    ns: Option<&str>,
    pod: Option<&str>,
    identity: u32,
) {
    if !present {
        if let Some(e) = slot.take() {
            *spare = Some(e);
        }
        return;
    }
    let e = slot.get_or_insert_with(|| spare.take().unwrap_or_default());
    e.namespace.clear();
    e.namespace.push_str(ns.unwrap_or_default());
    e.pod_name.clear();
    e.pod_name.push_str(pod.unwrap_or_default());
    e.identity = identity;
}

impl Rebuilt {
    fn fill(&mut self, c: &Cols<'_>, row: usize) {
        let f = &mut self.flow;
        f.verdict = get_str(c.str("verdict"), row)
            .and_then(Verdict::from_str_name)
            .map_or(0, |v| v as i32);
        f.drop_reason_desc = get_str(c.str("drop_reason_desc"), row)
            .and_then(DropReason::from_str_name)
            .map_or(0, |v| v as i32);
        f.traffic_direction = get_str(c.str("traffic_direction"), row)
            .and_then(TrafficDirection::from_str_name)
            .map_or(0, |v| v as i32);
        f.is_reply = c
            .bool("is_reply")
            .and_then(|a| (!a.is_null(row)).then(|| proto::wkt::BoolValue::from(a.value(row))));
        f.event_type = get(c.i32("event_type"), row).map(|t| CiliumEventType {
            r#type: t,
            sub_type: get(c.i32("event_sub_type"), row).unwrap_or(0),
        });
        f.node_name.clear();
        f.node_name
            .push_str(get_str(c.str("node_name"), row).unwrap_or_default());
        let (sp, dp) = (
            get(c.u32("source_port"), row).unwrap_or(0),
            get(c.u32("destination_port"), row).unwrap_or(0),
        );
        f.l4 = get_str(c.str("protocol"), row).map(|p| Layer4 {
            protocol: Some(match p {
                "TCP" => layer4::Protocol::Tcp(proto::flow::Tcp {
                    source_port: sp,
                    destination_port: dp,
                    ..Default::default()
                }),
                "UDP" => layer4::Protocol::Udp(proto::flow::Udp {
                    source_port: sp,
                    destination_port: dp,
                }),
                "SCTP" => layer4::Protocol::Sctp(proto::flow::Sctp {
                    source_port: sp,
                    destination_port: dp,
                }),
                "ICMPv4" => layer4::Protocol::IcmPv4(Default::default()),
                "ICMPv6" => layer4::Protocol::IcmPv6(Default::default()),
                "VRRP" => layer4::Protocol::Vrrp(Default::default()),
                _ => layer4::Protocol::Igmp(Default::default()),
            }),
        });
        let sid = get(c.u32("source_identity"), row);
        set_endpoint(
            &mut f.source,
            &mut self.spare_src,
            sid.is_some(),
            get_str(c.str("source_namespace"), row),
            get_str(c.str("source_pod"), row),
            sid.unwrap_or(0),
        );
        let did = get(c.u32("destination_identity"), row);
        set_endpoint(
            &mut f.destination,
            &mut self.spare_dst,
            did.is_some(),
            get_str(c.str("destination_namespace"), row),
            get_str(c.str("destination_pod"), row),
            did.unwrap_or(0),
        );
    }
}

fn ts(nanos: i64) -> Timestamp {
    Timestamp {
        seconds: nanos.div_euclid(1_000_000_000),
        nanos: nanos.rem_euclid(1_000_000_000) as i32,
    }
}

/// Where a row stands in the decoding path's order (file, then time, then
/// position), for `--last`/`--first N`.
type Order = (u32, i64, u64);

/// The rows one file adds, merged into the result only when the whole
/// file was read (a file that fails half-way adds nothing, as on the
/// decoding path).
#[derive(Default)]
struct Tally {
    /// Per group id: count, first and last time (nanoseconds).
    counts: Vec<(u64, i64, i64)>,
    /// With a limit: the rows kept so far (newest, or oldest with `first`).
    newest: BinaryHeap<Reverse<(Order, u32)>>,
    oldest: BinaryHeap<(Order, u32)>,
}

impl Tally {
    fn count(&mut self, gid: u32, t: i64) {
        let i = gid as usize;
        if self.counts.len() <= i {
            self.counts.resize(i + 1, (0, i64::MAX, i64::MIN));
        }
        let c = &mut self.counts[i];
        c.0 += 1;
        c.1 = c.1.min(t);
        c.2 = c.2.max(t);
    }

    fn add(&mut self, limit: Option<usize>, first: bool, order: Order, gid: u32) {
        match limit {
            None => self.count(gid, order.1),
            Some(n) if first => {
                self.oldest.push((order, gid));
                if self.oldest.len() > n {
                    self.oldest.pop();
                }
            }
            Some(n) => {
                self.newest.push(Reverse((order, gid)));
                if self.newest.len() > n {
                    self.newest.pop();
                }
            }
        }
    }

    fn merge(&mut self, other: Tally, limit: Option<usize>, first: bool) {
        for (gid, (n, lo, hi)) in other.counts.into_iter().enumerate() {
            if n > 0 {
                self.count(gid as u32, lo);
                let c = &mut self.counts[gid];
                c.0 += n - 1;
                c.2 = c.2.max(hi);
            }
        }
        for (o, gid) in other.oldest {
            self.add(limit, first, o, gid);
        }
        for Reverse((o, gid)) in other.newest {
            self.add(limit, first, o, gid);
        }
    }

    fn finish(mut self, mut groups: Vec<Group>) -> Vec<Group> {
        let kept: Vec<(Order, u32)> = std::mem::take(&mut self.oldest)
            .into_iter()
            .chain(std::mem::take(&mut self.newest).into_iter().map(|r| r.0))
            .collect();
        for (o, gid) in kept {
            self.count(gid, o.1);
        }
        for (gid, (n, lo, hi)) in self.counts.into_iter().enumerate() {
            if n > 0 {
                let g = &mut groups[gid];
                g.count = n;
                g.first = Some(ts(lo));
                g.last = Some(ts(hi));
            }
        }
        groups.into_iter().filter(|g| g.count > 0).collect()
    }
}

/// A file to read: a local file (only the column chunks needed are read)
/// or an object fetched whole.
enum Src {
    Mem(bytes::Bytes),
    File(std::fs::File),
}

impl Src {
    fn dup(&self) -> std::io::Result<Src> {
        Ok(match self {
            Src::Mem(b) => Src::Mem(b.clone()),
            Src::File(f) => Src::File(f.try_clone()?),
        })
    }
}

impl parquet::file::reader::Length for Src {
    fn len(&self) -> u64 {
        match self {
            Src::Mem(b) => b.len() as u64,
            Src::File(f) => parquet::file::reader::Length::len(f),
        }
    }
}

impl parquet::file::reader::ChunkReader for Src {
    type T = Box<dyn std::io::Read>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(match self {
            Src::Mem(b) => Box::new(b.get_read(start)?),
            Src::File(f) => Box::new(f.get_read(start)?),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        match self {
            Src::Mem(b) => b.get_bytes(start, length),
            Src::File(f) => f.get_bytes(start, length),
        }
    }
}

/// What one file's scan read: its bytes, the row groups kept and their rows.
struct Scanned {
    data: Src,
    row_groups: Vec<usize>,
    rows: usize,
}

/// A matching row: its index in the batch, time and position in the file
/// (over the row groups kept).
type Hit = (usize, i64, u64);

impl Archive {
    /// Reads the plan's columns of the row groups of `path` in the window
    /// and calls `on_batch` with each batch and its rows that the time
    /// window and the filters select.
    fn scan(
        &self,
        path: &str,
        q: &Query,
        plan: &Plan,
        stats: &mut ReadStats,
        rebuilt: &mut Rebuilt,
        on_batch: &mut dyn FnMut(&Cols<'_>, &[Hit]),
    ) -> Result<Scanned, ReadError> {
        let err = |reason: String| ReadError::File {
            path: path.to_owned(),
            reason,
        };
        let data = match self.storage().local_path(path) {
            Some(p) => match std::fs::File::open(&p) {
                Ok(f) => Src::File(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(err("vanished while reading".into()));
                }
                Err(e) => return Err(err(e.to_string())),
            },
            None => Src::Mem(bytes::Bytes::from(
                self.storage()
                    .get(path)?
                    .ok_or_else(|| err("vanished while reading".into()))?,
            )),
        };
        let dup = || data.dup().map_err(|e| err(e.to_string()));
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(dup()?).map_err(|e| err(e.to_string()))?;
        // The string columns read as dictionaries, as they are stored.
        let file_schema = builder.schema().clone();
        let fields: Vec<Field> = file_schema
            .fields()
            .iter()
            .map(|f| {
                if f.data_type() == &DataType::Utf8 && plan.columns.contains(&f.name().as_str()) {
                    Field::new(
                        f.name(),
                        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                        f.is_nullable(),
                    )
                } else {
                    f.as_ref().clone()
                }
            })
            .collect();
        let dict_schema = Arc::new(Schema::new_with_metadata(
            fields,
            file_schema.metadata().clone(),
        ));
        let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(
            dup()?,
            ArrowReaderOptions::new().with_schema(dict_schema),
        )
        .unwrap_or(builder);
        let schema = builder.parquet_schema();
        let mut leaves = Vec::new();
        let mut time_idx = 0;
        for name in &plan.columns {
            let i = schema
                .columns()
                .iter()
                .position(|c| c.name() == *name)
                .ok_or_else(|| err(format!("not a flow archive file (no {name} column)")))?;
            if *name == "time" {
                time_idx = i;
            }
            leaves.push(i);
        }
        let row_groups = crate::read::row_groups_in_window(builder.metadata(), time_idx, q, stats);
        let rows: usize = row_groups
            .iter()
            .map(|&i| builder.metadata().row_group(i).num_rows() as usize)
            .sum();
        let mask = ProjectionMask::leaves(schema, leaves);
        let reader = builder
            .with_row_groups(row_groups.clone())
            .with_projection(mask)
            .build()
            .map_err(|e| err(e.to_string()))?;
        let since = q.since.map(|t| t.as_unix_nanos());
        let until = q.until.map(|t| t.as_unix_nanos());
        let mut pos = 0u64;
        let mut hits: Vec<Hit> = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|e| err(e.to_string()))?;
            let time = column::<TimestampNanosecondArray>(&batch, "time")
                .ok_or_else(|| err("unexpected column types".into()))?;
            let cols = Cols {
                time,
                batch: &batch,
            };
            hits.clear();
            for row in 0..batch.num_rows() {
                let at = pos;
                pos += 1;
                let t = cols.time.value(row);
                if since.is_some_and(|s| (t as i128) < s) || until.is_some_and(|u| (t as i128) > u)
                {
                    continue;
                }
                if plan.filtered {
                    rebuilt.fill(&cols, row);
                    if !plan.filters.matches(&rebuilt.flow) {
                        continue;
                    }
                }
                hits.push((row, t, at));
            }
            on_batch(&cols, &hits);
        }
        Ok(Scanned {
            data,
            row_groups,
            rows,
        })
    }

    /// Groups the flows `q` selects by `plan`'s paths, from the columns
    /// (see the module doc); unreadable files are skipped and named in the
    /// stats, as by [`Archive::query`]. Groups come back in no order.
    ///
    /// Without a limit the files are shared out among threads (one per
    /// core), whose groups are merged by value at the end.
    pub fn aggregate(&self, q: &Query, plan: &Plan) -> Result<(Vec<Group>, ReadStats), ReadError> {
        let (files, mut stats) = self.files_to_read(q)?;
        let files: Vec<(usize, &String)> = files.iter().enumerate().collect();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(files.len());
        if q.number.is_some() || threads < 2 {
            let groups = self.aggregate_files(q, plan, &files, &mut stats)?;
            stats.warnings = self.storage().take_warnings();
            return Ok((groups, stats));
        }
        let parts: Vec<Result<(Vec<Group>, ReadStats), ReadError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let mine: Vec<(usize, &String)> =
                        files.iter().skip(t).step_by(threads).copied().collect();
                    scope.spawn(move || {
                        let mut st = ReadStats::default();
                        self.aggregate_files(q, plan, &mine, &mut st)
                            .map(|g| (g, st))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let mut merged: FxHashMap<String, Group> = FxHashMap::default();
        for part in parts {
            let (groups, st) = part?;
            stats.files_read += st.files_read;
            stats.row_groups_skipped += st.row_groups_skipped;
            stats.unreadable.extend(st.unreadable);
            for g in groups {
                let key = serde_json::to_string(&g.values).unwrap_or_default();
                match merged.get_mut(&key) {
                    None => {
                        merged.insert(key, g);
                    }
                    Some(m) => {
                        m.count += g.count;
                        m.first = m.first.min(g.first).or(m.first).or(g.first);
                        m.last = m.last.max(g.last);
                    }
                }
            }
        }
        stats.unreadable.sort();
        stats.warnings = self.storage().take_warnings();
        Ok((merged.into_values().collect(), stats))
    }

    /// [`Archive::aggregate`] over some of the candidate files (with their
    /// place among all of them).
    fn aggregate_files(
        &self,
        q: &Query,
        plan: &Plan,
        files: &[(usize, &String)],
        stats: &mut ReadStats,
    ) -> Result<Vec<Group>, ReadError> {
        let limit = q.number.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        let mut index: FxHashMap<Vec<u8>, u32> = FxHashMap::default();
        let mut groups: Vec<Group> = Vec::new();
        let mut total = Tally::default();
        let mut rebuilt = Rebuilt::default();
        let mut key = Vec::with_capacity(64);
        let mut interned: Vec<Interned> =
            plan.sources.iter().map(|_| Interned::default()).collect();
        for &(file_no, path) in files {
            if !self.in_window(path, q) {
                continue;
            }
            stats.files_read += 1;
            let mut tally = Tally::default();
            let mut on_batch = |cols: &Cols<'_>, hits: &[Hit]| {
                let path_cols: Vec<PathCol<'_>> = plan
                    .sources
                    .iter()
                    .map(|s| match *s {
                        Source::Str(c, zero) => PathCol::Str(cols.str(c), zero),
                        Source::U32(c) => PathCol::U32(cols.u32(c)),
                        Source::I32(c) => PathCol::I32(cols.i32(c)),
                        Source::Bool(c) => PathCol::Bool(cols.bool(c)),
                        Source::Port(c, p) => PathCol::Port(cols.u32(c), cols.str("protocol"), p),
                    })
                    .collect();
                // A dictionary column's values are interned once per batch.
                let dict_ids: Vec<Option<Vec<u32>>> = path_cols
                    .iter()
                    .zip(interned.iter_mut())
                    .map(|(c, ids)| match c {
                        PathCol::Str(Some(StrCol::Dict(_, v)), zero) => Some(
                            (0..v.len())
                                .map(|i| ids.id((!v.is_null(i)).then(|| v.value(i)), *zero))
                                .collect(),
                        ),
                        _ => None,
                    })
                    .collect();
                for &(row, t, at) in hits {
                    key.clear();
                    for ((c, ids), dict) in path_cols.iter().zip(interned.iter_mut()).zip(&dict_ids)
                    {
                        let id = match (c, dict) {
                            (PathCol::Str(Some(StrCol::Dict(k, _)), _), Some(d)) => {
                                if k.is_null(row) {
                                    0
                                } else {
                                    d[k.value(row) as usize]
                                }
                            }
                            (PathCol::Str(a, zero), _) => ids.id(get_str(*a, row), *zero),
                            _ => {
                                c.key(row, &mut key);
                                continue;
                            }
                        };
                        key.push(5);
                        key.extend_from_slice(&id.to_le_bytes());
                    }
                    let gid = match index.get(key.as_slice()) {
                        Some(g) => *g,
                        None => {
                            let g = groups.len() as u32;
                            groups.push(Group {
                                values: path_cols.iter().map(|c| c.value(row)).collect(),
                                count: 0,
                                first: None,
                                last: None,
                            });
                            index.insert(key.clone(), g);
                            g
                        }
                    };
                    tally.add(limit, q.first, (file_no as u32, t, at), gid);
                }
            };
            match self.scan(path, q, plan, stats, &mut rebuilt, &mut on_batch) {
                Ok(_) => total.merge(tally, limit, q.first),
                Err(ReadError::File { path, reason }) => {
                    stats.unreadable.push(format!("{path}: {reason}"));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(total.finish(groups))
    }

    /// `--last N`/`--first N` answered with the columns: files are scanned
    /// from the newest (the oldest with `first`) until N rows match, and only
    /// those rows' `flow_pb` is read and decoded. `None` when a filter has no
    /// column or there is no limit (then [`Archive::query`] decodes).
    pub(crate) fn select_newest(
        &self,
        q: &Query,
    ) -> Option<Result<(Vec<Flow>, ReadStats), ReadError>> {
        let n = usize::try_from(q.number?).unwrap_or(usize::MAX);
        let plan = plan(q, &[]).ok()?;
        Some(self.select_with(q, &plan, n))
    }

    fn select_with(
        &self,
        q: &Query,
        plan: &Plan,
        n: usize,
    ) -> Result<(Vec<Flow>, ReadStats), ReadError> {
        let (files, mut stats) = self.files_to_read(q)?;
        let mut rebuilt = Rebuilt::default();
        // Per file read: its flows in the decoding path's order.
        let mut kept: Vec<(usize, Vec<Flow>)> = Vec::new();
        let mut found = 0usize;
        let order: Box<dyn Iterator<Item = (usize, &String)>> = if q.first {
            Box::new(files.iter().enumerate())
        } else {
            Box::new(files.iter().enumerate().rev())
        };
        for (file_no, path) in order {
            if found >= n {
                break;
            }
            if !self.in_window(path, q) {
                continue;
            }
            stats.files_read += 1;
            let mut hits: Vec<(i64, u64)> = Vec::new();
            let scanned = self.scan(path, q, plan, &mut stats, &mut rebuilt, &mut |_, h| {
                hits.extend(h.iter().map(|&(_, t, at)| (t, at)));
            });
            let flows = scanned.and_then(|s| {
                hits.sort_unstable();
                let want = n - found;
                if hits.len() > want {
                    if q.first {
                        hits.truncate(want);
                    } else {
                        hits.drain(..hits.len() - want);
                    }
                }
                self.decode_rows(path, s, &hits, plan, &mut stats)
            });
            match flows {
                Ok(f) => {
                    found += f.len();
                    kept.push((file_no, f));
                }
                Err(ReadError::File { path, reason }) => {
                    stats.unreadable.push(format!("{path}: {reason}"));
                }
                Err(e) => return Err(e),
            }
        }
        kept.sort_by_key(|k| k.0);
        let mut all: Vec<Flow> = kept.into_iter().flat_map(|k| k.1).collect();
        if all.len() > n {
            if q.first {
                all.truncate(n);
            } else {
                all.drain(..all.len() - n);
            }
        }
        all.sort_by_key(|f| f.time);
        stats.warnings = self.storage().take_warnings();
        Ok((all, stats))
    }

    /// Decodes the `flow_pb` of the rows at `hits` (sorted by time, then
    /// position) of a scanned file; returns them in that order.
    fn decode_rows(
        &self,
        path: &str,
        s: Scanned,
        hits: &[(i64, u64)],
        plan: &Plan,
        stats: &mut ReadStats,
    ) -> Result<Vec<Flow>, ReadError> {
        use parquet::arrow::arrow_reader::{RowSelection, RowSelector};
        use prost::Message as _;
        let err = |reason: String| ReadError::File {
            path: path.to_owned(),
            reason,
        };
        if hits.is_empty() {
            return Ok(Vec::new());
        }
        let mut positions: Vec<u64> = hits.iter().map(|h| h.1).collect();
        positions.sort_unstable();
        let mut selectors = Vec::new();
        let mut at = 0u64;
        for &p in &positions {
            if p > at {
                selectors.push(RowSelector::skip((p - at) as usize));
            }
            selectors.push(RowSelector::select(1));
            at = p + 1;
        }
        if (at as usize) < s.rows {
            selectors.push(RowSelector::skip(s.rows - at as usize));
        }
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(s.data).map_err(|e| err(e.to_string()))?;
        let schema = builder.parquet_schema();
        let pb = schema
            .columns()
            .iter()
            .position(|c| c.name() == "flow_pb")
            .ok_or_else(|| err("not a flow archive file (no flow_pb column)".into()))?;
        let mask = ProjectionMask::leaves(schema, [pb]);
        let reader = builder
            .with_row_groups(s.row_groups)
            .with_projection(mask)
            .with_row_selection(RowSelection::from(selectors))
            .build()
            .map_err(|e| err(e.to_string()))?;
        let mut by_pos: FxHashMap<u64, Flow> = FxHashMap::default();
        let mut next = positions.iter();
        for batch in reader {
            let batch = batch.map_err(|e| err(e.to_string()))?;
            let col = batch
                .column(0)
                .as_any()
                .downcast_ref::<arrow_array::BinaryArray>()
                .ok_or_else(|| err("unexpected column types".into()))?;
            for row in 0..batch.num_rows() {
                let p = *next
                    .next()
                    .ok_or_else(|| err("row selection overran".into()))?;
                stats.rows_decoded += 1;
                let f = Flow::decode(col.value(row)).map_err(|e| err(format!("row {p}: {e}")))?;
                by_pos.insert(p, f);
            }
        }
        let mut out = Vec::with_capacity(hits.len());
        for (_, p) in hits {
            let f = by_pos
                .remove(p)
                .ok_or_else(|| err(format!("row {p} missing from the selection")))?;
            // The columns decided; the decoded flow agrees unless the file
            // disagrees with itself.
            if plan.filters.matches(&f) {
                out.push(f);
            }
        }
        Ok(out)
    }
}

//! The compact form a flow is stored in ([`StoredFlow`]): its GetFlows
//! response already encoded, split around the two endpoints, which are
//! shared ([`SharedEndpoint`], interned by [`Compactor`]) instead of copied
//! into every flow.
//!
//! The bytes are laid out as
//! `prefix | head | tail | suffix`: `prefix` is the response's `flow` field
//! key and length, `head` the flow's fields prost writes before `source`
//! (it writes in field-number order: those numbered below 8), `tail` those
//! after `destination` (numbered above 9), `suffix` the response's
//! `node_name` and `time`. A follower without a field mask gets
//! `prefix + head + source + destination + tail + suffix`, byte for byte
//! what prost writes for [`crate::served::flow_response`] of the flow
//! (pinned by `tests/served_bytes.rs`). A reader that filters or masks
//! rebuilds the [`Flow`] ([`StoredFlow::flow_into`]).

use std::sync::Arc;

use flow_parser::FlowText;
use prost::Message as _;
use prost::bytes::BufMut;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, message};
use proto::flow::{Endpoint, Ethernet, Flow, Ip};
use proto::wkt::Timestamp;
use rustc_hash::FxHashMap;

/// Endpoints kept by the interner before it starts over (entries still
/// used by stored flows stay alive through their `Arc`s).
const INTERNED_ENDPOINTS: usize = 4096;

/// `Flow.source`'s field number.
const SOURCE_TAG: u32 = 8;
/// `Flow.destination`'s field number.
const DESTINATION_TAG: u32 = 9;

/// One endpoint shared by every stored flow it appears in: the decoded
/// message (to rebuild a flow) and its encoding (to serve one).
#[derive(Debug, PartialEq)]
pub struct SharedEndpoint {
    endpoint: Arc<Endpoint>,
    body: Vec<u8>,
}

impl SharedEndpoint {
    /// Shares `endpoint` (encoded once here).
    pub fn new(endpoint: Endpoint) -> Self {
        Self::from_arc(Arc::new(endpoint))
    }

    /// Shares an endpoint already shared (the parser's,
    /// [`flow_parser::SharedEndpoints`]), without copying it.
    pub fn from_arc(endpoint: Arc<Endpoint>) -> Self {
        let body = endpoint.encode_to_vec();
        SharedEndpoint { endpoint, body }
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Its protobuf encoding (the message body, no key or length).
    pub fn encoded(&self) -> &[u8] {
        &self.body
    }

    /// Bytes of the field `tag` carrying it.
    fn field_len(&self, tag: u32) -> usize {
        prost::encoding::key_len(tag) + encoded_len_varint(self.body.len() as u64) + self.body.len()
    }

    fn write_field(&self, tag: u32, out: &mut impl BufMut) {
        encode_key(tag, WireType::LengthDelimited, out);
        encode_varint(self.body.len() as u64, out);
        out.put_slice(&self.body);
    }
}

fn field_len(e: &Option<Arc<SharedEndpoint>>, tag: u32) -> usize {
    e.as_ref().map_or(0, |e| e.field_len(tag))
}

/// A flow as the ring stores it (see the module doc).
#[derive(Debug, Default)]
pub struct StoredFlow {
    bytes: Vec<u8>,
    /// Start of `prefix` in `bytes` (the bytes before it are unused); it
    /// ends at [`PREFIX_ROOM`].
    start: u8,
    /// End of `head`.
    head: u32,
    /// End of `tail`.
    tail: u32,
    source: Option<Arc<SharedEndpoint>>,
    destination: Option<Arc<SharedEndpoint>>,
    time: Option<Timestamp>,
    /// The flow's verdict, also kept apart from the bytes: filters on it
    /// and on the endpoints read no bytes ([`FlowView::with_index`]).
    verdict: i32,
}

impl StoredFlow {
    /// `bytes[start..end]`; empty for a flow never stored (a default one).
    fn range(&self, start: usize, end: u32) -> &[u8] {
        self.bytes.get(start..end as usize).unwrap_or_default()
    }

    /// The flow's time.
    pub fn time(&self) -> Option<Timestamp> {
        self.time
    }

    /// The flow's source endpoint, shared.
    pub fn source(&self) -> Option<&Arc<SharedEndpoint>> {
        self.source.as_ref()
    }

    /// The flow's destination endpoint, shared.
    pub fn destination(&self) -> Option<&Arc<SharedEndpoint>> {
        self.destination.as_ref()
    }

    /// Length of the encoded GetFlows response.
    pub fn encoded_len(&self) -> usize {
        self.bytes.len() - self.start as usize
            + field_len(&self.source, SOURCE_TAG)
            + field_len(&self.destination, DESTINATION_TAG)
    }

    /// Writes the encoded GetFlows response (what prost writes for
    /// [`crate::served::flow_response`] of the flow).
    pub fn write(&self, out: &mut impl BufMut) {
        let head = self.head as usize;
        out.put_slice(&self.bytes[self.start as usize..head]);
        if let Some(e) = &self.source {
            e.write_field(SOURCE_TAG, out);
        }
        if let Some(e) = &self.destination {
            e.write_field(DESTINATION_TAG, out);
        }
        out.put_slice(&self.bytes[head..]);
    }

    /// The encoded GetFlows response in a new buffer.
    pub fn encode_to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.encoded_len());
        self.write(&mut v);
        v
    }

    /// Rebuilds the flow into `flow`, replacing every field and reusing
    /// the buffers of its endpoints, UUID, summary and node name.
    pub fn flow_into(&self, flow: &mut Flow) {
        let mut source = flow.source.take();
        let mut destination = flow.destination.take();
        reset_keeping_buffers(flow);
        let fields = self.range(PREFIX_ROOM, self.tail);
        // The stored bytes are prost's own encoding of a flow: they decode.
        flow.merge(fields)
            .expect("a stored flow's bytes are a valid encoding");
        endpoint_into(self.source.as_deref(), &mut source);
        endpoint_into(self.destination.as_deref(), &mut destination);
        flow.source = source;
        flow.destination = destination;
    }

    /// The flow, rebuilt.
    pub fn to_flow(&self) -> Flow {
        let mut f = Flow::default();
        self.flow_into(&mut f);
        f
    }
}

/// Copies a shared endpoint into `to` field by field, reusing its buffers
/// (derived `clone_from` on prost messages would allocate a new one).
fn endpoint_into(from: Option<&SharedEndpoint>, to: &mut Option<Endpoint>) {
    let Some(from) = from else {
        *to = None;
        return;
    };
    let from = &from.endpoint;
    let to = to.get_or_insert_with(Endpoint::default);
    let Endpoint {
        id,
        identity,
        cluster_name,
        namespace,
        labels,
        pod_name,
        workloads,
    } = to;
    *id = from.id;
    *identity = from.identity;
    cluster_name.clone_from(&from.cluster_name);
    namespace.clone_from(&from.namespace);
    labels.clone_from(&from.labels);
    pod_name.clone_from(&from.pod_name);
    workloads.truncate(from.workloads.len());
    for (t, f) in workloads.iter_mut().zip(&from.workloads) {
        t.name.clone_from(&f.name);
        t.kind.clone_from(&f.kind);
    }
    let n = workloads.len();
    workloads.extend(from.workloads[n..].iter().cloned());
}

/// A cheap hash of what tells endpoints apart (IDs, namespace, pod name,
/// how many labels): the interner checks full equality on a hit, so
/// hashing every label would only cost time.
fn endpoint_hash(e: &Endpoint) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    e.id.hash(&mut h);
    e.identity.hash(&mut h);
    e.namespace.hash(&mut h);
    e.pod_name.hash(&mut h);
    e.labels.len().hash(&mut h);
    h.finish()
}

/// Endpoints seen recently, keyed by a hash of their content (checked for
/// equality), so that equal endpoints are stored once. Bounded: when
/// full it starts over.
#[derive(Debug, Default)]
struct Interner {
    map: FxHashMap<u64, Arc<SharedEndpoint>>,
    /// Shared endpoints by the address of the parser's `Arc` they were
    /// interned from.
    by_address: FxHashMap<usize, (Arc<Endpoint>, Arc<SharedEndpoint>)>,
}

impl Interner {
    fn intern(&mut self, e: &Endpoint) -> Arc<SharedEndpoint> {
        let h = endpoint_hash(e);
        if let Some(s) = self.map.get(&h)
            && *s.endpoint == *e
        {
            return Arc::clone(s);
        }
        if self.map.len() >= INTERNED_ENDPOINTS {
            self.map.clear();
        }
        let s = Arc::new(SharedEndpoint::new(e.clone()));
        self.map.insert(h, Arc::clone(&s));
        s
    }

    /// [`Interner::intern`] for an endpoint already shared: found by its
    /// address first (no hashing of its strings, no comparison); an
    /// endpoint not seen at that address is interned by content, sharing
    /// its `Arc` when it is new.
    fn intern_shared(&mut self, e: &Arc<Endpoint>) -> Arc<SharedEndpoint> {
        let k = Arc::as_ptr(e) as usize;
        if let Some((_, s)) = self.by_address.get(&k) {
            return Arc::clone(s);
        }
        let h = endpoint_hash(e);
        let s = match self.map.get(&h) {
            Some(s) if *s.endpoint == **e => Arc::clone(s),
            _ => {
                if self.map.len() >= INTERNED_ENDPOINTS {
                    self.map.clear();
                }
                let s = Arc::new(SharedEndpoint::from_arc(Arc::clone(e)));
                self.map.insert(h, Arc::clone(&s));
                s
            }
        };
        if self.by_address.len() >= INTERNED_ENDPOINTS {
            self.by_address.clear();
        }
        // The key's `Arc` is kept with it: its address is not reused for
        // another endpoint while the entry lives.
        self.by_address.insert(k, (Arc::clone(e), Arc::clone(&s)));
        s
    }
}

/// Room kept in front of the flow's fields for the response's `flow` key
/// (1 byte) and length (a varint of at most 5 bytes).
const PREFIX_ROOM: usize = 6;

/// Turns decoded flows into [`StoredFlow`]s: the ingest side's interner
/// (one per ring writer).
#[derive(Debug, Default)]
pub struct Compactor {
    endpoints: Interner,
}

impl Compactor {
    /// A compactor with an empty interner.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `f` into `to`, reusing `to`'s buffer. `f` is borrowed
    /// mutably to take its endpoints out while encoding; it is left as it
    /// was.
    pub fn store(&mut self, f: &mut Flow, to: &mut StoredFlow) {
        to.source = f.source.as_ref().map(|e| self.endpoints.intern(e));
        to.destination = f.destination.as_ref().map(|e| self.endpoints.intern(e));
        Self::encode_without_endpoints(f, &FlowText::default(), to);
    }

    /// Stores the flow `f` and `text` make together
    /// ([`flow_parser::Parser::decode_text_into`]) with the endpoints
    /// `endpoints` (`f`'s own `source` and `destination` are ignored: the
    /// parser leaves them `None`), interned by address; the text `text`
    /// keeps is written straight into the stored bytes
    /// ([`crate::encode::flow_fields_with`]).
    pub fn store_text(
        &mut self,
        f: &mut Flow,
        endpoints: &flow_parser::SharedEndpoints,
        text: &FlowText,
        to: &mut StoredFlow,
    ) {
        to.source = endpoints
            .source
            .as_ref()
            .map(|e| self.endpoints.intern_shared(e));
        to.destination = endpoints
            .destination
            .as_ref()
            .map(|e| self.endpoints.intern_shared(e));
        Self::encode_without_endpoints(f, text, to);
    }

    /// Encodes `f` with its own endpoints taken out for the while (they
    /// are `to`'s, stored apart) and put back.
    fn encode_without_endpoints(f: &mut Flow, text: &FlowText, to: &mut StoredFlow) {
        let source = f.source.take();
        let destination = f.destination.take();
        Self::encode(f, text, to);
        f.source = source;
        f.destination = destination;
    }

    /// Encodes `f` and `text` (without endpoints) around `to`'s endpoints.
    fn encode(f: &Flow, text: &FlowText, to: &mut StoredFlow) {
        to.time = f.time;
        to.verdict = f.verdict;
        let b = &mut to.bytes;
        b.clear();
        b.resize(PREFIX_ROOM, 0);
        // The flow without its endpoints: head then tail fields, as prost
        // writes them (`encode::flow_fields`).
        let head = crate::encode::flow_fields_with(f, text, b);
        let fields_end = b.len();
        // The response's own fields after the flow (`GetFlowsResponse`'s
        // `node_name` 1000 and `time` 1001).
        crate::encode::response_suffix_after(&f.node_name, f.time.as_ref(), PREFIX_ROOM, b);
        // The prefix, right-aligned in the room left for it.
        let flow_len = fields_end - PREFIX_ROOM
            + field_len(&to.source, SOURCE_TAG)
            + field_len(&to.destination, DESTINATION_TAG);
        let mut prefix = [0u8; PREFIX_ROOM];
        let mut w = &mut prefix[..];
        encode_key(1, WireType::LengthDelimited, &mut w);
        encode_varint(flow_len as u64, &mut w);
        let n = PREFIX_ROOM - w.len();
        b[PREFIX_ROOM - n..PREFIX_ROOM].copy_from_slice(&prefix[..n]);
        to.start = (PREFIX_ROOM - n) as u8;
        to.head = (PREFIX_ROOM + head) as u32;
        to.tail = fields_end as u32;
    }
}

/// Decoded endpoints a reader keeps, by the shared endpoint they came from.
const VIEW_ENDPOINTS: usize = 4096;

/// A reader's view of stored flows as [`Flow`]s, for filters and field
/// masks: the flow is rebuilt into one reused scratch, and its endpoints
/// are moved in from the reader's own decoded copies (one per shared
/// endpoint) instead of copied, then moved back.
#[derive(Debug, Default)]
pub struct FlowView {
    flow: Flow,
    /// The previous flow's Ethernet and IP, reused (their strings keep
    /// their capacity) when the next flow has them.
    spare_ethernet: Option<Ethernet>,
    spare_ip: Option<Ip>,
    /// Whether `flow` holds fields after the endpoints (the last call
    /// decoded them): only then is the whole flow reset.
    tail_filled: bool,
    /// Keyed by the shared endpoint's address; the `Arc` keeps it alive,
    /// so an address is never reused for another endpoint while cached.
    endpoints: FxHashMap<usize, (Arc<SharedEndpoint>, Endpoint)>,
}

impl FlowView {
    /// A view with nothing cached.
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls `f` with `stored` rebuilt as a [`Flow`].
    pub fn with<R>(&mut self, stored: &StoredFlow, f: impl FnOnce(&Flow) -> R) -> R {
        self.with_fields(stored, true, f)
    }

    /// Calls `f` with `stored` rebuilt as a [`Flow`]: every field when
    /// `all`, else only the endpoints and the fields numbered below them
    /// (time, verdict, drop reason, Ethernet, IP, L4), enough for filters
    /// that read nothing else and about half the work.
    pub fn with_fields<R>(
        &mut self,
        stored: &StoredFlow,
        all: bool,
        f: impl FnOnce(&Flow) -> R,
    ) -> R {
        self.clear_head();
        self.tail_filled = all;
        let head = stored.range(PREFIX_ROOM, stored.head);
        self.merge_head(head)
            .expect("a stored flow's bytes are a valid encoding");
        if all {
            self.flow
                .merge(&stored.bytes[stored.head as usize..stored.tail as usize])
                .expect("a stored flow's bytes are a valid encoding");
        }
        self.with_endpoints(stored, f)
    }

    /// Calls `f` with a [`Flow`] holding only `stored`'s verdict and
    /// endpoints (every other field default), for filters that read
    /// nothing else (`observer::reads_index_only`): no byte is decoded.
    pub fn with_index<R>(&mut self, stored: &StoredFlow, f: impl FnOnce(&Flow) -> R) -> R {
        self.clear_head();
        self.tail_filled = false;
        self.flow.verdict = stored.verdict;
        self.with_endpoints(stored, f)
    }

    /// Resets the scratch flow but its endpoints: the whole flow when the
    /// last call filled the tail, else only the head's fields (resetting
    /// the whole 1.4 KB flow would cost more than decoding the head).
    fn clear_head(&mut self) {
        self.spare_ethernet = self.flow.ethernet.take().or(self.spare_ethernet.take());
        self.spare_ip = self.flow.ip.take().or(self.spare_ip.take());
        if self.tail_filled {
            reset_keeping_buffers(&mut self.flow);
        } else {
            let f = &mut self.flow;
            (f.time, f.verdict, f.drop_reason, f.l4) = (None, 0, 0, None);
        }
    }

    /// Moves `stored`'s endpoints into the scratch flow (from this view's
    /// decoded copies), calls `f` with it, moves them back.
    fn with_endpoints<R>(&mut self, stored: &StoredFlow, f: impl FnOnce(&Flow) -> R) -> R {
        if self.endpoints.len() >= VIEW_ENDPOINTS {
            self.endpoints.clear();
        }
        let src = stored.source.as_ref().map(|e| self.take(e));
        let dst = stored.destination.as_ref().map(|e| {
            if src.is_some_and(|k| k == key(e)) {
                // Both sides the same endpoint: the one copy is in
                // `source`; the destination gets its own.
                let mut d = self.flow.destination.take();
                endpoint_into(Some(e), &mut d);
                self.flow.destination = d;
                None
            } else {
                Some(self.take(e))
            }
        });
        self.flow.source = src.map(|k| self.move_out(k));
        if let Some(Some(k)) = dst {
            self.flow.destination = Some(self.move_out(k));
        } else if dst.is_none() {
            self.flow.destination = None;
        }
        let r = f(&self.flow);
        // Back into the cache.
        if let Some(k) = src
            && let Some(e) = self.flow.source.take()
        {
            self.move_in(k, e);
        }
        if let Some(Some(k)) = dst
            && let Some(e) = self.flow.destination.take()
        {
            self.move_in(k, e);
        }
        r
    }

    /// Decodes the head's fields (numbered 1–6, see [`crate::encode::flow_fields`]) into the
    /// scratch flow, Ethernet and IP into the spare ones so that their
    /// strings are not allocated again.
    fn merge_head(&mut self, mut buf: &[u8]) -> Result<(), prost::DecodeError> {
        use prost::encoding::{DecodeContext, decode_key, int32, skip_field, uint32};
        let flow = &mut self.flow;
        while !buf.is_empty() {
            let (tag, wire_type) = decode_key(&mut buf)?;
            let ctx = DecodeContext::default();
            match tag {
                1 => message::merge(wire_type, flow.time.get_or_insert_default(), &mut buf, ctx)?,
                2 => int32::merge(wire_type, &mut flow.verdict, &mut buf, ctx)?,
                3 => uint32::merge(wire_type, &mut flow.drop_reason, &mut buf, ctx)?,
                4 => {
                    let spare = &mut self.spare_ethernet;
                    let e = flow.ethernet.get_or_insert_with(|| {
                        let mut e = spare.take().unwrap_or_default();
                        let Ethernet {
                            source,
                            destination,
                        } = &mut e;
                        source.clear();
                        destination.clear();
                        e
                    });
                    message::merge(wire_type, e, &mut buf, ctx)?
                }
                5 => {
                    let spare = &mut self.spare_ip;
                    let ip = flow.ip.get_or_insert_with(|| {
                        let mut ip = spare.take().unwrap_or_default();
                        let Ip {
                            source,
                            source_xlated,
                            destination,
                            ip_version,
                            encrypted,
                        } = &mut ip;
                        source.clear();
                        source_xlated.clear();
                        destination.clear();
                        *ip_version = 0;
                        *encrypted = false;
                        ip
                    });
                    message::merge(wire_type, ip, &mut buf, ctx)?
                }
                6 => message::merge(wire_type, flow.l4.get_or_insert_default(), &mut buf, ctx)?,
                // Not written by the compactor; skipped as prost would.
                _ => skip_field(wire_type, tag, &mut buf, ctx)?,
            }
        }
        Ok(())
    }

    /// Ensures the decoded copy of `e` is cached; returns its key.
    fn take(&mut self, e: &Arc<SharedEndpoint>) -> usize {
        let k = key(e);
        self.endpoints
            .entry(k)
            .or_insert_with(|| (Arc::clone(e), Endpoint::clone(&e.endpoint)));
        k
    }

    fn move_out(&mut self, k: usize) -> Endpoint {
        self.endpoints
            .get_mut(&k)
            .map(|(_, e)| std::mem::take(e))
            .unwrap_or_default()
    }

    fn move_in(&mut self, k: usize, e: Endpoint) {
        if let Some((_, slot)) = self.endpoints.get_mut(&k) {
            *slot = e;
        }
    }
}

fn key(e: &Arc<SharedEndpoint>) -> usize {
    Arc::as_ptr(e) as usize
}

/// Resets every field of `flow` to its default, keeping the buffers of its
/// UUID, summary and node name for the next decode.
fn reset_keeping_buffers(flow: &mut Flow) {
    let mut uuid = std::mem::take(&mut flow.uuid);
    let mut summary = std::mem::take(&mut flow.summary);
    let mut node_name = std::mem::take(&mut flow.node_name);
    uuid.clear();
    summary.clear();
    node_name.clear();
    *flow = Flow {
        uuid,
        summary,
        node_name,
        ..Flow::default()
    };
}

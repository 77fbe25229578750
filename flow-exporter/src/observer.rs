//! The node's observer: the flow ring, the figures ServerStatus reports, the
//! namespaces seen, and the GetFlows engine (positioning, filtering, field
//! masks, follow, lost-event reporting) with Hubble's semantics.

use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flow_filter::FilterSet;
use flow_parser::{FlowText, SharedEndpoints};
use proto::flow::{Endpoint, Flow, FlowFilter, LostEvent, LostEventSource};
use proto::observer::{GetFlowsRequest, GetFlowsResponse, get_flows_response::ResponseTypes};
use proto::wkt::{Int32Value, Timestamp};
use tokio::sync::mpsc;
use tonic::Status;

use crate::defaults;
use crate::mask::FlowMask;
use crate::metrics::Metrics;
use crate::ring::{Read, Ring, Spare};
use crate::served::Served;
use crate::stored::{Compactor, FlowView};

pub use crate::event::Event;

type Namespaces = FxHashMap<String, FxHashMap<String, Instant>>;

/// Records the namespaces of a flow's endpoints as seen at `now`; allocates
/// only for a namespace not seen before.
fn note_namespaces(ns: &mut Namespaces, f: &Flow, now: Instant) {
    note_endpoint_namespaces(ns, [f.source.as_ref(), f.destination.as_ref()], now);
}

/// [`note_namespaces`] of a flow's two endpoints.
fn note_endpoint_namespaces(ns: &mut Namespaces, eps: [Option<&Endpoint>; 2], now: Instant) {
    for ep in eps.into_iter().flatten() {
        if ep.namespace.is_empty() {
            continue;
        }
        let cluster = match ns.get_mut(ep.cluster_name.as_str()) {
            Some(c) => c,
            None => ns.entry(ep.cluster_name.clone()).or_default(),
        };
        match cluster.get_mut(ep.namespace.as_str()) {
            Some(t) => *t = now,
            None => {
                cluster.insert(ep.namespace.clone(), now);
            }
        }
    }
}

/// Per-second flow counts over the last minute, for `flows_rate`.
#[derive(Debug)]
struct RateCounter {
    buckets: Vec<AtomicU64>,
    stamps: Vec<AtomicU64>,
}

impl RateCounter {
    fn new() -> Self {
        let n = defaults::FLOWS_RATE_WINDOW_SECS as usize + 1;
        RateCounter {
            buckets: (0..n).map(|_| AtomicU64::new(0)).collect(),
            stamps: (0..n).map(|_| AtomicU64::new(u64::MAX)).collect(),
        }
    }

    fn add(&self, sec: u64, n: u64) {
        let i = (sec % self.buckets.len() as u64) as usize;
        if self.stamps[i].swap(sec, Ordering::AcqRel) != sec {
            self.buckets[i].store(0, Ordering::Release);
        }
        self.buckets[i].fetch_add(n, Ordering::AcqRel);
    }

    /// Flows per second over the complete seconds of the last window.
    fn rate(&self, now_sec: u64, uptime_secs: u64) -> f64 {
        let window = defaults::FLOWS_RATE_WINDOW_SECS.min(uptime_secs.max(1));
        let mut total = 0;
        for (b, s) in self.buckets.iter().zip(&self.stamps) {
            let stamp = s.load(Ordering::Acquire);
            if stamp != u64::MAX && stamp < now_sec && now_sec - stamp <= window {
                total += b.load(Ordering::Acquire);
            }
        }
        total as f64 / window as f64
    }
}

/// The observer of one node.
#[derive(Debug)]
pub struct Observer {
    ring: Ring<Event>,
    node_name: String,
    started: Instant,
    seen_flows: AtomicU64,
    rate: RateCounter,
    namespaces: Mutex<Namespaces>,
    /// The ring writer's scratch: the flow events are decoded into and the
    /// compactor that stores it (locked once per batch; there is one
    /// writer).
    ingest: Mutex<IngestScratch>,
    metrics: Option<Arc<Metrics>>,
    closed: std::sync::atomic::AtomicBool,
    /// `true` once closed, for streams that wait rather than poll
    /// (Peer.Notify).
    closing: tokio::sync::watch::Sender<bool>,
    /// How far ingest is complete, for progress markers.
    progress: crate::progress::IngestProgress,
}

/// What the ring's writer reuses from one flow to the next.
#[derive(Debug, Default)]
struct IngestScratch {
    /// Raw events are decoded into these, a chunk at a time (their
    /// buffers reused).
    decoded: Vec<Decoded>,
    /// Turns a decoded flow into the stored form, sharing endpoints.
    compactor: Compactor,
    /// The shared endpoints whose namespaces the current batch noted.
    noted: FxHashMap<usize, Arc<Endpoint>>,
    /// The slot the next flow is written into ([`Ring::push_with_spare`]).
    spare: Spare<Event>,
}

/// One decoded event waiting to be stored: the flow, its shared
/// endpoints and the text fields the decoder kept apart.
#[derive(Debug, Default)]
struct Decoded {
    flow: Flow,
    endpoints: SharedEndpoints,
    text: FlowText,
}

/// ServerStatus figures of one node.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusFigures {
    /// Flows in the ring.
    pub num_flows: u64,
    /// Ring capacity.
    pub max_flows: u64,
    /// Flows seen since start.
    pub seen_flows: u64,
    /// Uptime in nanoseconds.
    pub uptime_ns: u64,
    /// Flows per second over the last minute.
    pub flows_rate: f64,
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Observer {
    /// An observer with a ring of `capacity` (2^n − 1) events.
    pub fn new(
        node_name: impl Into<String>,
        capacity: u64,
    ) -> Result<Self, crate::ring::RingError> {
        Ok(Observer {
            ring: Ring::new(capacity)?,
            node_name: node_name.into(),
            started: Instant::now(),
            seen_flows: AtomicU64::new(0),
            rate: RateCounter::new(),
            namespaces: Mutex::new(Namespaces::default()),
            ingest: Mutex::new(IngestScratch::default()),
            metrics: None,
            closed: std::sync::atomic::AtomicBool::new(false),
            closing: tokio::sync::watch::Sender::new(false),
            progress: Default::default(),
        })
    }

    /// Counts readers' ring-buffer losses in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The node name flows are attributed to.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// The ring (for benchmarks and metrics).
    pub fn ring(&self) -> &Ring<Event> {
        &self.ring
    }

    /// How far ingest is complete ([`crate::progress`]): advance it after
    /// storing flows, or when the source is found drained.
    pub fn progress(&self) -> &crate::progress::IngestProgress {
        &self.progress
    }

    /// Stores a batch of flows and wakes followers once.
    pub fn push_flows(&self, flows: impl IntoIterator<Item = Flow>) {
        let mut n = 0;
        let now = Instant::now();
        let mut namespaces = self.namespaces.lock().ok();
        let mut scratch = self.ingest.lock().unwrap_or_else(|e| e.into_inner());
        for mut f in flows {
            if let Some(ns) = namespaces.as_deref_mut() {
                note_namespaces(ns, &f, now);
            }
            let IngestScratch {
                compactor, spare, ..
            } = &mut *scratch;
            self.store(compactor, spare, &mut f);
            n += 1;
        }
        drop(scratch);
        drop(namespaces);
        self.stored(n);
    }

    /// Decodes `raws` into the ring and wakes followers once. `decode`
    /// fills one reused scratch flow (and may look at the result, e.g. to
    /// count it); the flow is then stored in compact form over the slot the
    /// ring is about to overwrite (its buffer reused, see
    /// [`Ring::push_with_spare`]). A record `decode` rejects is handed to
    /// `rejected` and stores nothing.
    pub fn push_decoded<'a, E>(
        &self,
        raws: impl IntoIterator<Item = &'a [u8]>,
        mut decode: impl FnMut(&[u8], &mut Flow) -> Result<(), E>,
        rejected: impl FnMut(&[u8], E),
    ) {
        self.push_decoded_shared(
            raws,
            |raw, flow, endpoints| {
                decode(raw, flow)?;
                endpoints.source = flow.source.take().map(Arc::new);
                endpoints.destination = flow.destination.take().map(Arc::new);
                Ok(())
            },
            rejected,
        );
    }

    /// [`Observer::push_decoded`] for a decoder that shares the flows'
    /// endpoints ([`flow_parser::Parser::decode_shared_into`]): `decode`
    /// fills the scratch flow (endpoints left out) and its endpoints; the
    /// ring stores the endpoints as they are, interned by address, never
    /// copied.
    pub fn push_decoded_shared<'a, E>(
        &self,
        raws: impl IntoIterator<Item = &'a [u8]>,
        mut decode: impl FnMut(&[u8], &mut Flow, &mut SharedEndpoints) -> Result<(), E>,
        rejected: impl FnMut(&[u8], E),
    ) {
        self.push_decoded_text(raws, |raw, f, eps, _| decode(raw, f, eps), rejected);
    }

    /// [`Observer::push_decoded_shared`] for a decoder that also keeps the
    /// flow's text fields apart ([`flow_parser::Parser::decode_text_into`]):
    /// `decode` fills the scratch flow, its endpoints and a [`FlowText`]
    /// (handed in keeping nothing; what it keeps is written straight into
    /// the stored bytes, see [`Compactor::store_text`]).
    pub fn push_decoded_text<'a, E>(
        &self,
        raws: impl IntoIterator<Item = &'a [u8]>,
        mut decode: impl FnMut(&[u8], &mut Flow, &mut SharedEndpoints, &mut FlowText) -> Result<(), E>,
        mut rejected: impl FnMut(&[u8], E),
    ) {
        let mut n = 0;
        let now = Instant::now();
        let mut namespaces = self.namespaces.lock().ok();
        let mut scratch = self.ingest.lock().unwrap_or_else(|e| e.into_inner());
        let IngestScratch {
            decoded,
            compactor,
            noted,
            spare,
        } = &mut *scratch;
        decoded.resize_with(defaults::INGEST_CHUNK, Decoded::default);
        // Every flow of the batch is seen at `now`: each shared endpoint's
        // namespace is noted once per batch (the `Arc` kept meanwhile, so
        // an address stands for one endpoint).
        noted.clear();
        let mut raws = raws.into_iter();
        loop {
            // A chunk is decoded (and counted, by `decode`), then stored:
            // each step's code stays in the instruction cache over the
            // chunk instead of the whole path's going through it per
            // event.
            let mut k = 0;
            while k < decoded.len() {
                let Some(raw) = raws.next() else { break };
                let Decoded {
                    flow,
                    endpoints,
                    text,
                } = &mut decoded[k];
                text.clear();
                match decode(raw, flow, endpoints, text) {
                    Ok(()) => k += 1,
                    Err(e) => rejected(raw, e),
                }
            }
            for d in &mut decoded[..k] {
                if let Some(ns) = namespaces.as_deref_mut() {
                    for e in [&d.endpoints.source, &d.endpoints.destination]
                        .into_iter()
                        .flatten()
                    {
                        if let std::collections::hash_map::Entry::Vacant(v) =
                            noted.entry(Arc::as_ptr(e) as usize)
                        {
                            note_endpoint_namespaces(ns, [Some(e), None], now);
                            v.insert(Arc::clone(e));
                        }
                    }
                }
                let stored = self.ring.push_with_spare(spare, |ev| {
                    compactor.store_text(&mut d.flow, &d.endpoints, &d.text, ev.stored_mut());
                    Ok::<(), std::convert::Infallible>(())
                });
                match stored {
                    Ok(()) => {}
                    Err(never) => match never {},
                }
                n += 1;
            }
            if k < decoded.len() {
                // The events ran out.
                break;
            }
        }
        drop(scratch);
        drop(namespaces);
        self.stored(n);
    }

    /// Counts `n` flows just stored and wakes followers once (nothing when
    /// none was).
    fn stored(&self, n: u64) {
        if n > 0 {
            self.seen_flows.fetch_add(n, Ordering::Relaxed);
            self.rate.add(unix_secs(), n);
            self.ring.wake();
        }
    }

    /// Writes `f` into the next slot in compact form, without waking.
    fn store(&self, compactor: &mut Compactor, spare: &mut Spare<Event>, f: &mut Flow) {
        let stored = self.ring.push_with_spare(spare, |ev| {
            compactor.store(f, ev.stored_mut());
            Ok::<(), std::convert::Infallible>(())
        });
        match stored {
            Ok(()) => {}
            Err(never) => match never {},
        }
    }

    /// Records `n` events lost at `source` (on `cpu` if known).
    pub fn push_lost(&self, source: LostEventSource, n: u64, cpu: Option<i32>) {
        if n == 0 {
            return;
        }
        let now = Timestamp::now();
        self.ring.push(Event::Lost {
            lost: Box::new(LostEvent {
                source: source as i32,
                num_events_lost: n,
                cpu: cpu.map(Int32Value::from),
                first: None,
                last: None,
            }),
            time: now,
        });
    }

    /// Ends every stream: followers finish what they hold and return, so a
    /// graceful gRPC shutdown does not wait on them forever.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.closing.send_replace(true);
        self.ring.wake();
    }

    /// Resolves once [`Observer::close`] was called: long-lived streams
    /// that otherwise wait forever (Peer.Notify) end with it, so a graceful
    /// shutdown does not wait for their clients.
    pub fn until_closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.closing.subscribe();
        async move {
            let _ = rx.wait_for(|closed| *closed).await;
        }
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Namespaces seen within the TTL, sorted by cluster then namespace.
    pub fn namespaces(&self) -> Vec<(String, String)> {
        let Ok(mut ns) = self.namespaces.lock() else {
            return Vec::new();
        };
        let now = Instant::now();
        let mut out = Vec::new();
        for (cluster, m) in ns.iter_mut() {
            m.retain(|_, t| now.duration_since(*t) < defaults::NAMESPACE_TTL);
            out.extend(m.keys().map(|n| (cluster.clone(), n.clone())));
        }
        ns.retain(|_, m| !m.is_empty());
        out.sort();
        out
    }

    /// The ServerStatus figures.
    pub fn status(&self) -> StatusFigures {
        let uptime = self.started.elapsed();
        StatusFigures {
            num_flows: self.ring.len(),
            max_flows: self.ring.capacity(),
            seen_flows: self.seen_flows.load(Ordering::Relaxed),
            uptime_ns: uptime.as_nanos() as u64,
            flows_rate: self.rate.rate(unix_secs(), uptime.as_secs()),
        }
    }

    /// Validates a GetFlows request and starts streaming its responses.
    pub fn get_flows(
        self: &Arc<Self>,
        req: GetFlowsRequest,
    ) -> Result<mpsc::Receiver<Result<GetFlowsResponse, Status>>, Status> {
        self.get_flows_with_markers(req, None)
    }

    /// [`Observer::get_flows`], with progress markers for a follow request
    /// that asked for them ([`crate::progress`]).
    pub fn get_flows_with_markers(
        self: &Arc<Self>,
        req: GetFlowsRequest,
        markers: Option<crate::progress::Markers>,
    ) -> Result<mpsc::Receiver<Result<GetFlowsResponse, Status>>, Status> {
        let mut served = self.get_flows_served(req, markers)?;
        let (tx, rx) = mpsc::channel(defaults::STREAM_BUFFER);
        tokio::spawn(async move {
            while let Some(r) = served.recv().await {
                if tx.send(r.map(Served::into_response)).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }

    /// [`Observer::get_flows`] as the server sends it: a flow read without
    /// a field mask is its ring slot, written on the wire as the bytes it
    /// was stored as ([`crate::stored`], [`crate::served`]); with
    /// progress markers for a follow request that asked for them
    /// ([`crate::progress`]).
    pub fn get_flows_served(
        self: &Arc<Self>,
        req: GetFlowsRequest,
        markers: Option<crate::progress::Markers>,
    ) -> Result<mpsc::Receiver<Result<Served, Status>>, Status> {
        let mut q = Query::compile(req)?;
        q.markers = markers.filter(|_| q.follow);
        let (tx, rx) = mpsc::channel(defaults::STREAM_BUFFER);
        let this = Arc::clone(self);
        tokio::spawn(async move { this.run_query(q, tx).await });
        Ok(rx)
    }

    async fn run_query(self: Arc<Self>, mut q: Query, tx: mpsc::Sender<Result<Served, Status>>) {
        let mut reporter = LostReporter::new(&self.node_name);
        let end = self.ring.written();
        let mut pos = self.start_position(&mut q, end);
        let mut sent = 0u64;
        loop {
            if !q.follow && pos >= end {
                break;
            }
            let slot = match self.ring.read(pos) {
                Read::Event(slot) => slot,
                Read::Overwritten { oldest } => {
                    if let Some(m) = &self.metrics {
                        m.lost(LostEventSource::HubbleRingBuffer, oldest - pos);
                    }
                    reporter.add(oldest - pos);
                    pos = oldest;
                    continue;
                }
                Read::NotYet => {
                    if self.is_closed() {
                        break;
                    }
                    // Follow mode only: wait for the writer, flushing any
                    // pending loss report when its interval comes due.
                    if let Some(resp) = reporter.take_due()
                        && tx.send(Ok(Served::Message(Box::new(resp)))).await.is_err()
                    {
                        return;
                    }
                    if let Some(m) = q.markers.as_mut()
                        && let Some(resp) = m.take_due(&self.node_name, &self.progress, || {
                            self.ring.written() <= pos
                        })
                        && tx.send(Ok(Served::Message(Box::new(resp)))).await.is_err()
                    {
                        return;
                    }
                    let wait = self.ring.wait_for(pos);
                    let limit = [
                        reporter.pending().then(|| reporter.until_due()),
                        q.markers.as_ref().map(|m| m.until_due()),
                    ]
                    .into_iter()
                    .flatten()
                    .min();
                    if let Some(limit) = limit {
                        let _ = tokio::time::timeout(limit, wait).await;
                    } else {
                        tokio::select! {
                            () = wait => {}
                            () = tx.closed() => return,
                        }
                    }
                    continue;
                }
            };
            pos += 1;
            if let Some(resp) = reporter.take_due()
                && tx.send(Ok(Served::Message(Box::new(resp)))).await.is_err()
            {
                return;
            }
            let ev = &slot.value;
            if let Some(t) = ev.time() {
                if q.since.is_some_and(|s| t < s) {
                    continue;
                }
                if q.until.is_some_and(|u| t > u) {
                    break;
                }
            }
            let resp = match ev {
                Event::Lost { lost, time } => Served::Message(Box::new(GetFlowsResponse {
                    response_types: Some(ResponseTypes::LostEvents(**lost)),
                    node_name: self.node_name.clone(),
                    time: Some(*time),
                })),
                Event::Flow(stored) => {
                    if q.plain {
                        // The same stored bytes for every such reader.
                        sent += 1;
                        Served::Stored(slot.clone())
                    } else {
                        // Filters and masks look at the flow, rebuilt in
                        // this reader's view.
                        let (filters, mask) = (&q.filters, &q.mask);
                        let all = mask.is_some() || !q.head_filters;
                        let index = mask.is_none() && q.index_filters;
                        let resp = q.view.with(stored, index, all, |f| {
                            if !filters.matches(f) {
                                return None;
                            }
                            Some(match mask {
                                Some(m) => Served::Message(Box::new(GetFlowsResponse {
                                    node_name: f.node_name.clone(),
                                    time: f.time,
                                    response_types: Some(ResponseTypes::Flow(m.apply(f))),
                                })),
                                None => Served::Stored(slot.clone()),
                            })
                        });
                        match resp {
                            Some(r) => {
                                sent += 1;
                                r
                            }
                            None => continue,
                        }
                    }
                }
            };
            if tx.send(Ok(resp)).await.is_err() {
                return;
            }
            if !q.follow && q.number > 0 && sent >= q.number {
                break;
            }
        }
        if let Some(resp) = reporter.take_all() {
            let _ = tx.send(Ok(Served::Message(Box::new(resp)))).await;
        }
    }

    /// Hubble's `newRingReader`: where a request starts reading.
    fn start_position(&self, q: &mut Query, end: u64) -> u64 {
        let oldest = self.ring.oldest();
        if q.first {
            return oldest;
        }
        if q.follow && q.number == 0 && q.since.is_none() {
            return end;
        }
        if q.number == 0 && q.since.is_none() {
            return oldest;
        }
        // Walk backwards over matching flows until `number` are found or an
        // event older than `since` is reached.
        let mut pos = end;
        let mut found = 0u64;
        while pos > oldest {
            let Read::Event(slot) = self.ring.read(pos - 1) else {
                break;
            };
            if let Some(since) = q.since
                && slot.value.time().is_some_and(|t| t < since)
            {
                break;
            }
            pos -= 1;
            if let Event::Flow(f) = &slot.value {
                if q.until.is_some_and(|u| f.time().is_some_and(|t| t > u)) {
                    continue;
                }
                let filters = &q.filters;
                if filters.is_match_all()
                    || q.view
                        .with(f, q.index_filters, !q.head_filters, |f| filters.matches(f))
                {
                    found += 1;
                    if q.number > 0 && found >= q.number {
                        break;
                    }
                }
            }
        }
        pos
    }
}

/// A validated GetFlows request.
struct Query {
    number: u64,
    first: bool,
    follow: bool,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    filters: FilterSet,
    mask: Option<FlowMask>,
    markers: Option<crate::progress::Markers>,
    /// No filter and no mask: stored flows are served as they are, never
    /// rebuilt.
    plain: bool,
    /// The flows filters and masks look at, rebuilt from each stored flow.
    view: QueryView,
    /// The filters read only the endpoints and the flow's first fields
    /// ([`FlowView::with_fields`]).
    head_filters: bool,
    /// The filters read only the endpoints and the verdict
    /// ([`FlowView::with_index`]).
    index_filters: bool,
}

/// A query's [`FlowView`], by what its filters read.
#[derive(Debug, Default)]
struct QueryView(FlowView);

impl QueryView {
    /// Calls `f` with the stored flow as the filters see it: only its
    /// verdict and endpoints when `index`, else its head or (`all`) every
    /// field.
    fn with<R>(
        &mut self,
        stored: &crate::stored::StoredFlow,
        index: bool,
        all: bool,
        f: impl FnOnce(&Flow) -> R,
    ) -> R {
        if index {
            self.0.with_index(stored, f)
        } else {
            self.0.with_fields(stored, all, f)
        }
    }
}

impl Query {
    fn compile(req: GetFlowsRequest) -> Result<Query, Status> {
        if req.first && req.follow {
            return Err(Status::invalid_argument(
                "first cannot be specified with follow",
            ));
        }
        for (name, t) in [("since", &req.since), ("until", &req.until)] {
            if let Some(t) = t
                && (!(0..1_000_000_000).contains(&t.nanos) || t.to_datetime().is_none())
            {
                return Err(Status::invalid_argument(format!(
                    "invalid {name} timestamp: seconds={} nanos={}",
                    t.seconds, t.nanos
                )));
            }
        }
        let filters = FilterSet::compile(&req.whitelist, &req.blacklist).map_err(filter_status)?;
        let paths = req.field_mask.map(|m| m.paths).unwrap_or_default();
        let mask =
            FlowMask::compile(&paths).map_err(|e| Status::invalid_argument(e.to_string()))?;
        Ok(Query {
            plain: filters.is_match_all() && mask.is_none(),
            view: QueryView::default(),
            head_filters: reads_head_only(&req.whitelist) && reads_head_only(&req.blacklist),
            index_filters: reads_index_only(&req.whitelist) && reads_index_only(&req.blacklist),
            number: req.number,
            first: req.first,
            follow: req.follow,
            since: req.since,
            until: req.until,
            filters,
            mask,
            markers: None,
        })
    }
}

/// Whether every filter sets only fields whose predicates read the flow's
/// endpoints and the fields stored before them (verdict, IP, L4): such
/// filters are evaluated on [`FlowView::with_fields`] without the rest.
/// Anything else, including a field added to `FlowFilter` later, needs the
/// whole flow.
fn reads_head_only(filters: &[FlowFilter]) -> bool {
    sets_only(filters, |f| {
        clear_index_fields(f);
        f.source_ip.clear();
        f.destination_ip.clear();
        f.source_port.clear();
        f.destination_port.clear();
        f.tcp_flags.clear();
        f.ip_version.clear();
    })
}

/// Whether every filter sets only fields whose predicates read the flow's
/// endpoints and verdict: such filters are evaluated on
/// [`FlowView::with_index`], which decodes nothing. Anything else,
/// including a field added to `FlowFilter` later, needs more.
fn reads_index_only(filters: &[FlowFilter]) -> bool {
    sets_only(filters, clear_index_fields)
}

/// Whether every filter is empty once `clear` has cleared the fields a
/// view can answer.
fn sets_only(filters: &[FlowFilter], clear: impl Fn(&mut FlowFilter)) -> bool {
    filters.iter().all(|f| {
        let mut rest = f.clone();
        clear(&mut rest);
        rest == FlowFilter::default()
    })
}

/// Clears the fields [`FlowView::with_index`] answers: the endpoints' and
/// the verdict.
fn clear_index_fields(f: &mut FlowFilter) {
    f.source_pod.clear();
    f.destination_pod.clear();
    f.source_label.clear();
    f.destination_label.clear();
    f.source_identity.clear();
    f.destination_identity.clear();
    f.source_workload.clear();
    f.destination_workload.clear();
    f.verdict.clear();
}

/// Aggregates a reader's ring-buffer losses into at most one `LostEvent`
/// per interval, carrying the exact count.
struct LostReporter {
    node_name: String,
    pending: u64,
    first: Option<Timestamp>,
    last_sent: Option<Instant>,
}

impl LostReporter {
    fn new(node_name: &str) -> Self {
        LostReporter {
            node_name: node_name.to_owned(),
            pending: 0,
            first: None,
            last_sent: None,
        }
    }

    fn add(&mut self, n: u64) {
        if self.pending == 0 {
            self.first = Some(Timestamp::now());
        }
        self.pending += n;
    }

    fn pending(&self) -> bool {
        self.pending > 0
    }

    fn until_due(&self) -> Duration {
        match self.last_sent {
            Some(t) => defaults::LOST_EVENT_SEND_INTERVAL.saturating_sub(t.elapsed()),
            None => Duration::ZERO,
        }
    }

    fn take_due(&mut self) -> Option<GetFlowsResponse> {
        if self.pending > 0 && self.until_due().is_zero() {
            self.take_all()
        } else {
            None
        }
    }

    fn take_all(&mut self) -> Option<GetFlowsResponse> {
        if self.pending == 0 {
            return None;
        }
        let now = Timestamp::now();
        let lost = LostEvent {
            source: LostEventSource::HubbleRingBuffer as i32,
            num_events_lost: std::mem::take(&mut self.pending),
            cpu: None,
            first: self.first.take(),
            last: Some(now),
        };
        self.last_sent = Some(Instant::now());
        Some(GetFlowsResponse {
            response_types: Some(ResponseTypes::LostEvents(lost)),
            node_name: self.node_name.clone(),
            time: Some(now),
        })
    }
}

/// A filter error as a gRPC status: over a size limit is
/// `RESOURCE_EXHAUSTED`, anything else `INVALID_ARGUMENT`.
fn filter_status(e: flow_filter::FilterError) -> Status {
    if e.is_resource_limit() {
        Status::resource_exhausted(e.to_string())
    } else {
        Status::invalid_argument(e.to_string())
    }
}

//! GetFlows over the cluster: the request is validated once, sent to every
//! available peer, and the peers' streams are merged by time
//! ([`crate::merge`]) into a bounded client queue ([`crate::queue`]).
//!
//! # Semantics
//!
//! - **Non-follow** requests are merged in exact time order (a k-way merge
//!   that waits for every open peer stream's next flow or its end).
//!   `number = N` (`hubble observe --last N`) returns the N most recent
//!   flows of the **whole cluster**: each peer is asked for its N most
//!   recent (the cluster's N are among them), and the relay keeps the last
//!   N of the merge. Hubble's relay returns N flows *per node* instead.
//!   With `first`, the N oldest of the cluster. The relay then holds at
//!   most N flows (plus one read batch, at most
//!   [`defaults::INLINE_READ_BATCH`], per peer) for the request.
//! - **Follow** requests are merged within a window (default 1 s and 100
//!   flows; see [`crate::merge`] for the exact guarantee). A `number`
//!   with follow applies per node to the backlog before the live flows
//!   (as in Hubble). Peers that join, or come back after a failure, are
//!   attached to running follow requests (`NODE_CONNECTED`); a peer coming
//!   back is asked only for flows newer than the last one it delivered.
//!   A peer removed from discovery is detached (`NODE_GONE`). Each peer is
//!   asked for progress markers ([`defaults::PROGRESS_HEADER`]); those it
//!   sends (our exporter) let the merge release flows an idle peer cannot
//!   precede at once, in exact order; they are never forwarded.
//! - **Node status:** the stream starts with `NODE_CONNECTED` (peers
//!   asked) and `NODE_UNAVAILABLE` (peers without a usable connection,
//!   skipped); a peer stream failing mid-request yields `NODE_ERROR`
//!   (identical messages aggregated, [`crate::status`]); a follow stream
//!   the peer ends is a `NODE_ERROR` too. When the pool finds a peer down
//!   or hung (its probe or keepalive unanswered, [`crate::pool`]), its
//!   stream is detached and `NODE_UNAVAILABLE` sent, once, until it is
//!   back (`NODE_CONNECTED`). A pending aggregated error naming a node is
//!   sent before any later status of that node, so a client never sees an
//!   old `NODE_ERROR` after the node's `NODE_CONNECTED`.
//! - **Hung peers in non-follow requests:** the exact merge waits for every
//!   open peer; a peer that gives nothing for the per-node deadline
//!   (`--peer-deadline`) while the merge waits on it is cut off and named
//!   in `NODE_UNAVAILABLE`, and the answer completes without it.
//! - **Late flows** (a node that comes back sends what it observed while
//!   it was cut off, asked with `since` its last delivered flow, so nothing
//!   is lost or repeated): they are *delivered*, after that node's
//!   `NODE_CONNECTED`, at once rather than sorted (see [`crate::merge`]),
//!   so the other nodes' flows stay in order. Delivered rather than
//!   dropped because a follow client such as the archiver would otherwise
//!   lose them for good; the ones out of order are exactly those older
//!   than a flow already sent.
//! - **Lost events** from peers are passed through as soon as they arrive
//!   (they carry the peer's `node_name`); a slow follow client loses its
//!   oldest responses and is told ([`crate::queue`]).

use std::collections::{BTreeMap, BTreeSet};
use std::future::poll_fn;
use std::task::Poll;
use std::time::Duration;

use futures::Stream as _;
use proto::observer::GetFlowsRequest;
use proto::relay::NodeState;
use proto::wkt::Timestamp;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tonic::Status;
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;

use crate::defaults;
use crate::merge::{Merger, Mode, StreamId};
use crate::pool::{Backoff, PeerView, Pool, status_text};
use crate::queue::{ClientQueue, ClientStream, client_queue};
use crate::status::{ErrorAggregator, node_status};
use crate::wire::{Kind, Out, PeerCodec, PeerResponse};

/// Responses the request's loop takes in a row from peers that have them
/// ready before it looks at its timers and the pool again.
const FAST_TAKES: usize = 64;

/// How GetFlows merges and buffers.
#[derive(Debug, Clone)]
pub struct FlowsConfig {
    /// The relay's name in node status and lost events.
    pub relay_name: String,
    /// Follow mode: longest hold of a flow for sorting.
    pub sort_window: Duration,
    /// Follow mode: most flows held for sorting.
    pub sort_buffer_len: usize,
    /// Responses queued per client.
    pub client_queue_len: usize,
    /// Window over which identical node errors are merged.
    pub error_window: Duration,
    /// Non-follow: longest silence of a peer the merge waits on before the
    /// peer is cut off and reported unavailable.
    pub peer_deadline: Duration,
}

impl Default for FlowsConfig {
    fn default() -> Self {
        FlowsConfig {
            relay_name: "hubble-relay".into(),
            sort_window: defaults::SORT_WINDOW,
            sort_buffer_len: defaults::SORT_BUFFER_LEN,
            client_queue_len: defaults::CLIENT_QUEUE_LEN,
            error_window: defaults::ERROR_AGGREGATION_WINDOW,
            peer_deadline: defaults::NON_FOLLOW_PEER_DEADLINE,
        }
    }
}

/// Checks a request the way an exporter would, so that a bad request is
/// one `InvalidArgument` rather than one node error per peer.
pub fn validate(req: &GetFlowsRequest) -> Result<(), Status> {
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
    flow_filter::FilterSet::compile(&req.whitelist, &req.blacklist).map_err(filter_status)?;
    Ok(())
}

/// Starts a GetFlows request over the pool's peers; `metadata` goes with
/// every peer's request (see [`crate::server::forwarded_metadata`]).
pub fn get_flows(
    pool: &Pool,
    cfg: &FlowsConfig,
    req: GetFlowsRequest,
    metadata: MetadataMap,
) -> Result<ClientStream, Status> {
    validate(&req)?;
    let (queue, mut stream) = client_queue(
        cfg.client_queue_len,
        cfg.relay_name.clone(),
        pool.metrics().clone(),
    );
    let follow = req.follow;
    let run = Run::new(pool.clone(), cfg.clone(), req, metadata, queue);
    if follow {
        // Reads the peers whether or not the client reads (a slow client
        // loses its oldest flows, the merge's window keeps running).
        tokio::spawn(run.run());
    } else {
        // Paced by the client: the merge runs inside its stream.
        stream.drive(Box::pin(run.run()));
    }
    Ok(stream)
}

enum PeerEvent {
    /// The responses the peer had ready, in its order (at most
    /// [`defaults::PEER_READ_BATCH`] from a reader task, one channel
    /// message and one wakeup for all of them;
    /// [`defaults::INLINE_READ_BATCH`] read inline).
    Responses(Vec<PeerResponse>),
    End,
    Failed(Status),
}

/// What woke the request's loop.
enum Wake {
    ClientGone,
    Peer(StreamId, PeerEvent),
    Timer,
    PoolChanged,
}

/// One peer stream's reader.
struct Reader {
    name: String,
    source: Source,
    /// Since when the merge has been waiting on this peer without a
    /// response (non-follow deadline).
    idle_since: Instant,
}

/// Where a [`Reader`]'s events come from.
enum Source {
    /// A task of its own reads the peer (follow requests: the peers are
    /// read while the request's loop waits on its window and timers).
    Task {
        rx: mpsc::Receiver<PeerEvent>,
        task: JoinHandle<()>,
    },
    /// The request's loop reads the peer's stream itself (non-follow: the
    /// merge reads a peer only when it needs that peer's next flow, so a
    /// task in between bought nothing and cost a wakeup per batch).
    Inline(InlinePeer),
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let Source::Task { task, .. } = &self.source {
            task.abort();
        }
    }
}

impl Reader {
    /// The peer's next event: a batch of responses, its end or failure;
    /// `End` again once the task is gone.
    fn poll_recv(&mut self, cx: &mut std::task::Context<'_>) -> Poll<PeerEvent> {
        match &mut self.source {
            Source::Task { rx, .. } => match rx.poll_recv(cx) {
                Poll::Ready(Some(ev)) => Poll::Ready(ev),
                // The reader task is gone (it panicked).
                Poll::Ready(None) => Poll::Ready(PeerEvent::End),
                Poll::Pending => Poll::Pending,
            },
            Source::Inline(p) => p.poll_recv(cx),
        }
    }

    /// [`Reader::poll_recv`] without waiting.
    fn try_recv(&mut self) -> Option<PeerEvent> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match self.poll_recv(&mut cx) {
            Poll::Ready(ev) => Some(ev),
            Poll::Pending => None,
        }
    }
}

/// The GetFlows call of a peer and its responses.
type PeerCall = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = Result<tonic::Response<tonic::codec::Streaming<PeerResponse>>, Status>,
            > + Send,
    >,
>;

/// A peer stream read by the request's own loop.
struct InlinePeer {
    state: InlineState,
    /// The stream's end or failure, after the batch read before it.
    last: Option<PeerEvent>,
}

enum InlineState {
    Calling(PeerCall),
    Open(Box<tonic::codec::Streaming<PeerResponse>>),
    Over,
}

impl InlinePeer {
    fn new(channel: Channel, req: GetFlowsRequest, metadata: MetadataMap) -> Self {
        InlinePeer {
            state: InlineState::Calling(Box::pin(peer_get_flows(
                channel,
                peer_request(req, metadata),
            ))),
            last: None,
        }
    }

    fn poll_recv(&mut self, cx: &mut std::task::Context<'_>) -> Poll<PeerEvent> {
        if let Some(ev) = self.last.take() {
            return Poll::Ready(ev);
        }
        loop {
            match &mut self.state {
                InlineState::Calling(call) => match call.as_mut().poll(cx) {
                    Poll::Ready(Ok(r)) => self.state = InlineState::Open(Box::new(r.into_inner())),
                    Poll::Ready(Err(s)) => {
                        self.state = InlineState::Over;
                        return Poll::Ready(PeerEvent::Failed(s));
                    }
                    Poll::Pending => return Poll::Pending,
                },
                InlineState::Open(stream) => {
                    let mut batch = Vec::new();
                    let ready = poll_batch(
                        stream,
                        cx,
                        defaults::INLINE_READ_BATCH,
                        &mut batch,
                        &mut self.last,
                    );
                    if self.last.is_some() {
                        self.state = InlineState::Over;
                    }
                    return match ready {
                        Poll::Pending => Poll::Pending,
                        Poll::Ready(()) if batch.is_empty() => {
                            Poll::Ready(self.last.take().unwrap_or(PeerEvent::End))
                        }
                        Poll::Ready(()) => Poll::Ready(PeerEvent::Responses(batch)),
                    };
                }
                InlineState::Over => return Poll::Ready(PeerEvent::End),
            }
        }
    }
}

/// Takes one response, waiting for it, then every one already decodable
/// without waiting, up to `max` (never holds one back for a later one);
/// the stream's end or failure goes to `last`.
fn poll_batch(
    stream: &mut tonic::codec::Streaming<PeerResponse>,
    cx: &mut std::task::Context<'_>,
    max: usize,
    batch: &mut Vec<PeerResponse>,
    last: &mut Option<PeerEvent>,
) -> Poll<()> {
    loop {
        match std::pin::Pin::new(&mut *stream).poll_next(cx) {
            Poll::Ready(Some(Ok(r))) => {
                batch.push(r);
                if batch.len() >= max {
                    return Poll::Ready(());
                }
            }
            Poll::Ready(Some(Err(s))) => {
                *last = Some(PeerEvent::Failed(s));
                return Poll::Ready(());
            }
            Poll::Ready(None) => {
                *last = Some(PeerEvent::End);
                return Poll::Ready(());
            }
            Poll::Pending if batch.is_empty() => return Poll::Pending,
            Poll::Pending => return Poll::Ready(()),
        }
    }
}

/// The GetFlows request to a peer: `req` with the forwarded `metadata`.
fn peer_request(
    req: GetFlowsRequest,
    mut metadata: MetadataMap,
) -> tonic::Request<GetFlowsRequest> {
    // Progress markers: asked by the relay alone, and only when following
    // (a client's own value is never passed on).
    metadata.remove(defaults::PROGRESS_HEADER);
    if req.follow {
        metadata.insert(
            defaults::PROGRESS_HEADER,
            defaults::PROGRESS_INTERVAL
                .as_millis()
                .to_string()
                .parse()
                .expect("digits are valid metadata"),
        );
    }
    tonic::Request::from_parts(metadata, Default::default(), req)
}

/// A peer stream's reader task (follow requests).
async fn read_peer(
    channel: Channel,
    req: GetFlowsRequest,
    metadata: MetadataMap,
    tx: mpsc::Sender<PeerEvent>,
) {
    let mut stream = match peer_get_flows(channel, peer_request(req, metadata)).await {
        Ok(r) => r.into_inner(),
        Err(s) => {
            let _ = tx.send(PeerEvent::Failed(s)).await;
            return;
        }
    };
    loop {
        let mut batch = Vec::new();
        let mut last = None;
        poll_fn(|cx| {
            poll_batch(
                &mut stream,
                cx,
                defaults::PEER_READ_BATCH,
                &mut batch,
                &mut last,
            )
        })
        .await;
        if !batch.is_empty() && tx.send(PeerEvent::Responses(batch)).await.is_err() {
            return;
        }
        if let Some(ev) = last {
            let _ = tx.send(ev).await;
            return;
        }
    }
}

/// `observer.Observer/GetFlows` on a peer, as the generated client calls
/// it, with the responses kept as the bytes the peer sent
/// ([`crate::wire::PeerCodec`]).
async fn peer_get_flows(
    channel: Channel,
    req: tonic::Request<GetFlowsRequest>,
) -> Result<tonic::Response<tonic::codec::Streaming<PeerResponse>>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unknown(format!("Service was not ready: {e}")))?;
    let mut req = req;
    req.extensions_mut()
        .insert(tonic::GrpcMethod::new("observer.Observer", "GetFlows"));
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/observer.Observer/GetFlows");
    grpc.server_streaming(req, path, PeerCodec::new()).await
}

/// A follow request's view of one peer.
struct Track {
    attached: Option<StreamId>,
    last_time: Option<Timestamp>,
    retry_at: Instant,
    backoff: Backoff,
    ever_attached: bool,
    /// The last status reported for the node in this request.
    reported: Option<NodeState>,
}

impl Track {
    fn new(now: Instant) -> Self {
        Track {
            attached: None,
            last_time: None,
            retry_at: now,
            backoff: Backoff::new(defaults::BACKOFF_MIN, defaults::BACKOFF_MAX),
            ever_attached: false,
            reported: None,
        }
    }
}

/// Keeps the last N flows of a non-follow `number` request.
struct Tail {
    n: usize,
    flows: std::collections::VecDeque<PeerResponse>,
}

struct Run {
    pool: Pool,
    cfg: FlowsConfig,
    req: GetFlowsRequest,
    metadata: MetadataMap,
    queue: ClientQueue,
    merger: Merger<PeerResponse>,
    readers: BTreeMap<StreamId, Reader>,
    tracks: BTreeMap<String, Track>,
    errors: ErrorAggregator,
    tail: Option<Tail>,
    first_left: Option<u64>,
    rotate: usize,
}

/// Decrements the open-streams gauge when a request ends, however it ends.
struct StreamGauge(Pool);

impl Drop for StreamGauge {
    fn drop(&mut self) {
        self.0.metrics().streams_add(-1);
    }
}

impl Run {
    fn new(
        pool: Pool,
        cfg: FlowsConfig,
        req: GetFlowsRequest,
        metadata: MetadataMap,
        queue: ClientQueue,
    ) -> Self {
        let mode = if req.follow {
            Mode::Window {
                window: cfg.sort_window,
                max_buffered: cfg.sort_buffer_len,
            }
        } else {
            Mode::Exact
        };
        let tail = (!req.follow && !req.first && req.number > 0).then(|| Tail {
            n: usize::try_from(req.number).unwrap_or(usize::MAX),
            flows: std::collections::VecDeque::new(),
        });
        let first_left = (req.first && req.number > 0).then_some(req.number);
        let errors = ErrorAggregator::new(cfg.error_window, cfg.relay_name.clone());
        Run {
            pool,
            cfg,
            req,
            metadata,
            queue,
            merger: Merger::new(mode),
            readers: BTreeMap::new(),
            tracks: BTreeMap::new(),
            errors,
            tail,
            first_left,
            rotate: 0,
        }
    }

    fn attach(&mut self, v: &PeerView, req: GetFlowsRequest) {
        let Some(channel) = v.channel.clone() else {
            return;
        };
        let returning = self.tracks.get(&v.name).is_some_and(|t| t.ever_attached);
        let source = if self.req.follow {
            let (tx, rx) =
                mpsc::channel((defaults::PEER_BUFFER / defaults::PEER_READ_BATCH).max(1));
            let task = tokio::spawn(read_peer(channel, req, self.metadata.clone(), tx));
            Source::Task { rx, task }
        } else {
            Source::Inline(InlinePeer::new(channel, req, self.metadata.clone()))
        };
        let id = if returning {
            self.merger.add_catching_up(v.name.clone())
        } else {
            self.merger.add_stream(v.name.clone())
        };
        self.readers.insert(
            id,
            Reader {
                name: v.name.clone(),
                source,
                idle_since: Instant::now(),
            },
        );
        if let Some(t) = self.tracks.get_mut(&v.name) {
            t.attached = Some(id);
            t.ever_attached = true;
        }
    }

    /// The request for a peer joining a running follow request.
    fn request_for(&self, t: &Track) -> GetFlowsRequest {
        let mut r = self.req.clone();
        if t.ever_attached {
            // Coming back: only what we have not seen from it.
            r.number = 0;
            if let Some(last) = t.last_time {
                r.since = Some(Timestamp::from_unix_nanos(last.as_unix_nanos() + 1));
            }
        }
        r
    }

    async fn send(&mut self, r: impl Into<crate::wire::Out>) -> bool {
        if self.req.follow {
            self.queue.push_drop_oldest(r)
        } else {
            self.queue.push_wait(r).await
        }
    }

    /// Sends `items` in order, at once (one wakeup of the client's
    /// writer), leaving it empty; false once the client has gone.
    async fn send_all(&mut self, items: &mut Vec<Out>) -> bool {
        if self.req.follow {
            self.queue.push_all_drop_oldest(items)
        } else {
            self.queue.push_all_wait(items).await
        }
    }

    /// Takes a released flow into `out` (or the tail); false when the
    /// request is over once `out` is sent (`first` satisfied).
    fn take_flow(&mut self, r: PeerResponse, out: &mut Vec<Out>) -> bool {
        if let Some(t) = &mut self.tail {
            t.flows.push_back(r);
            if t.flows.len() > t.n {
                t.flows.pop_front();
            }
            return true;
        }
        out.push(r.into());
        match &mut self.first_left {
            Some(n) => {
                *n -= 1;
                *n > 0
            }
            None => true,
        }
    }

    async fn start(&mut self) -> bool {
        let now = Instant::now();
        let mut connected = Vec::new();
        let mut unavailable = Vec::new();
        for v in self.pool.peers() {
            self.tracks.insert(v.name.clone(), Track::new(now));
            if v.is_available() {
                self.attach(&v, self.req.clone());
                connected.push(v.name.clone());
            } else {
                unavailable.push(v.clone());
            }
        }
        self.status(NodeState::NodeConnected, connected, String::new())
            .await
            && self.unavailable(unavailable).await
    }

    /// Sends a status event about `nodes` (nothing when there are none),
    /// after any pending error naming one of them, and remembers it as
    /// their reported state.
    async fn status(&mut self, state: NodeState, nodes: Vec<String>, message: String) -> bool {
        if nodes.is_empty() {
            return true;
        }
        if self.errors.names_any(&nodes)
            && let Some(e) = self.errors.take_all()
            && !self.send(e).await
        {
            return false;
        }
        for n in &nodes {
            if let Some(t) = self.tracks.get_mut(n) {
                t.reported = Some(state);
            }
        }
        let name = self.cfg.relay_name.clone();
        self.send(node_status(&name, state, nodes, message)).await
    }

    /// `NODE_UNAVAILABLE` for `peers`, one event per reason (the pool's
    /// last error for each).
    async fn unavailable(&mut self, peers: Vec<PeerView>) -> bool {
        let mut by_reason: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in peers {
            by_reason
                .entry(p.last_error.unwrap_or_default())
                .or_default()
                .push(p.name);
        }
        for (reason, nodes) in by_reason {
            if !self.status(NodeState::NodeUnavailable, nodes, reason).await {
                return false;
            }
        }
        true
    }

    /// Detaches the peer stream `id` (the merge still releases what it
    /// queued).
    fn detach(&mut self, id: StreamId) {
        self.readers.remove(&id);
        self.merger.end(id);
        for t in self.tracks.values_mut() {
            if t.attached == Some(id) {
                t.attached = None;
            }
        }
    }

    /// Non-follow: cuts off every peer the merge has waited on for the
    /// per-node deadline and reports it unavailable.
    async fn cut_stalled(&mut self, now: Instant) -> bool {
        let d = self.cfg.peer_deadline;
        let stalled: Vec<(StreamId, String)> = self
            .readers
            .iter()
            .filter(|(id, r)| self.merger.wants(**id) && r.idle_since + d <= now)
            .map(|(id, r)| (*id, r.name.clone()))
            .collect();
        let mut names = Vec::new();
        for (id, name) in stalled {
            self.detach(id);
            tracing::warn!(peer = %name, deadline = ?d, "peer gave nothing within the deadline; answering without it");
            self.pool.report_stream_failure(&name);
            names.push(name);
        }
        self.status(
            NodeState::NodeUnavailable,
            names,
            format!(
                "no response within {d:?} (--peer-deadline): the node is hung or overloaded; \
                 its flows are missing from this answer"
            ),
        )
        .await
    }

    /// Non-follow: when the merge will cut off a silent peer.
    fn next_cut(&self) -> Option<Instant> {
        self.readers
            .iter()
            .filter(|(id, _)| self.merger.wants(**id))
            .map(|(_, r)| r.idle_since + self.cfg.peer_deadline)
            .min()
    }

    /// Detaches removed peers (`NODE_GONE`) and peers the pool found down
    /// or hung (`NODE_UNAVAILABLE`, once per outage); follow mode also
    /// attaches peers that joined or came back (`NODE_CONNECTED`).
    async fn reconcile(&mut self) -> bool {
        let now = Instant::now();
        let views = self.pool.peers();
        let names: BTreeSet<&str> = views.iter().map(|v| v.name.as_str()).collect();
        let gone: Vec<String> = self
            .tracks
            .keys()
            .filter(|n| !names.contains(n.as_str()))
            .cloned()
            .collect();
        for n in gone {
            if let Some(t) = self.tracks.remove(&n) {
                if let Some(id) = t.attached {
                    self.detach(id);
                }
                if !self
                    .status(NodeState::NodeGone, vec![n], String::new())
                    .await
                {
                    return false;
                }
            }
        }
        let mut down = Vec::new();
        for v in views.iter().filter(|v| !v.is_available()) {
            let Some(t) = self.tracks.get_mut(&v.name) else {
                continue;
            };
            let attached = t.attached;
            let report = match attached {
                Some(_) => true,
                // Follow: a node not attached is reported once per outage;
                // non-follow: only a node the answer still waits on.
                None => self.req.follow && t.reported != Some(NodeState::NodeUnavailable),
            };
            if let Some(id) = attached {
                t.retry_at = now;
                self.detach(id);
                tracing::info!(peer = %v.name, "peer unavailable; its stream is detached");
            }
            if report {
                down.push(v.clone());
            }
        }
        if !self.unavailable(down).await {
            return false;
        }
        if !self.req.follow {
            return true;
        }
        for v in &views {
            let t = self
                .tracks
                .entry(v.name.clone())
                .or_insert_with(|| Track::new(now));
            if t.attached.is_some() || !v.is_available() || now < t.retry_at {
                continue;
            }
            let req = self.request_for(&self.tracks[&v.name]);
            self.attach(v, req);
            if !self
                .status(
                    NodeState::NodeConnected,
                    vec![v.name.clone()],
                    String::new(),
                )
                .await
            {
                return false;
            }
        }
        true
    }

    fn next_retry(&self, now: Instant) -> Option<Instant> {
        self.tracks
            .values()
            .filter(|t| t.attached.is_none() && t.retry_at > now)
            .map(|t| t.retry_at)
            .min()
    }

    /// A response a peer has already sent, if any (without waiting).
    fn try_next(&mut self) -> Option<(StreamId, PeerEvent)> {
        let n = self.readers.len();
        if n == 0 {
            return None;
        }
        let start = self.rotate % n;
        self.rotate = self.rotate.wrapping_add(1);
        let merger = &self.merger;
        let take = |id: &StreamId, r: &mut Reader| {
            if !merger.wants(*id) {
                return None;
            }
            r.try_recv().map(|ev| (*id, ev))
        };
        let first = start;
        for (id, r) in self.readers.iter_mut().skip(first) {
            if let Some(x) = take(id, r) {
                return Some(x);
            }
        }
        for (id, r) in self.readers.iter_mut().take(first) {
            if let Some(x) = take(id, r) {
                return Some(x);
            }
        }
        None
    }

    /// A peer stream ended or failed.
    async fn stream_over(&mut self, id: StreamId, failure: Option<String>) -> bool {
        let Some(reader) = self.readers.remove(&id) else {
            return true;
        };
        self.merger.end(id);
        let name = reader.name.clone();
        drop(reader);
        let now = Instant::now();
        let failure = match failure {
            Some(f) => Some(f),
            None if self.req.follow => Some("the peer ended the follow stream".to_owned()),
            None => None,
        };
        if let Some(t) = self.tracks.get_mut(&name)
            && t.attached == Some(id)
        {
            t.attached = None;
            t.retry_at = now + t.backoff.next_delay();
            if failure.is_some() {
                t.reported = Some(NodeState::NodeError);
            }
        }
        let Some(msg) = failure else {
            return true;
        };
        tracing::info!(peer = %name, error = %msg, "peer stream failed");
        self.pool.report_stream_failure(&name);
        match self.errors.add(&name, &msg, now) {
            Some(flushed) => self.send(flushed).await,
            None => true,
        }
    }

    async fn handle(&mut self, id: StreamId, ev: PeerEvent) -> bool {
        match ev {
            PeerEvent::Responses(rs) => {
                // Every response of a batch arrived at the same instant.
                let now = Instant::now();
                for r in rs {
                    if !self.handle_response(id, r, now).await {
                        return false;
                    }
                }
                true
            }
            PeerEvent::End => self.stream_over(id, None).await,
            PeerEvent::Failed(s) => {
                if s.code() == tonic::Code::InvalidArgument {
                    tracing::debug!(error = %s, "peer rejected the request");
                }
                self.stream_over(id, Some(status_text(&s))).await
            }
        }
    }

    /// One response of peer stream `id`, arrived at `now`.
    async fn handle_response(&mut self, id: StreamId, r: PeerResponse, now: Instant) -> bool {
        match r.scanned.kind {
            Kind::Flow => {
                if self.req.follow
                    && let Some(name) = self.merger.name(id)
                    && let Some(t) = self.tracks.get_mut(name)
                {
                    t.last_time = Some(r.scanned.order_time());
                    t.backoff.reset();
                }
                self.merger.push(id, r, now);
                true
            }
            // Lost events and a peer relay's node status: passed on.
            Kind::LostEvents | Kind::NodeStatus => self.send(r).await,
            // A progress marker (asked for in follow requests only).
            Kind::None => {
                if let Some(t) = r.scanned.time {
                    self.merger.progress(id, t);
                }
                true
            }
        }
    }

    async fn run(mut self) {
        self.pool.metrics().streams_add(1);
        let _gauge = StreamGauge(self.pool.clone());
        let mut changes = self.pool.subscribe();
        changes.mark_unchanged();
        if !self.start().await {
            return;
        }
        // Responses taken in a row without the select below.
        let mut fast = 0;
        // Flows released together, sent together.
        let mut released = Vec::new();
        'outer: loop {
            let now = Instant::now();
            let mut more = true;
            while more && let Some(r) = self.merger.pop(now) {
                more = self.take_flow(r, &mut released);
            }
            if !self.send_all(&mut released).await || !more {
                break 'outer;
            }
            if let Some(e) = self.errors.take_due(now)
                && !self.send(e).await
            {
                return;
            }
            if !self.req.follow && self.merger.is_done() {
                break;
            }
            // What the peers have already sent is taken without the select
            // (its timer and pool-watch futures cost more than a flow), a
            // bounded number in a row so timers and pool changes are still
            // seen between them.
            if fast < FAST_TAKES
                && let Some((id, ev)) = self.try_next()
            {
                fast += 1;
                if let Some(r) = self.readers.get_mut(&id) {
                    r.idle_since = now;
                }
                if !self.handle(id, ev).await {
                    return;
                }
                continue;
            }
            fast = 0;
            if !self.req.follow {
                // The deadline counts only while the merge waits on a peer.
                for (id, r) in &mut self.readers {
                    if !self.merger.wants(*id) {
                        r.idle_since = now;
                    }
                }
            }
            let deadline = [
                self.merger.next_deadline(),
                self.errors.deadline(),
                if self.req.follow {
                    self.next_retry(now)
                } else {
                    self.next_cut()
                },
            ]
            .into_iter()
            .flatten()
            .min();
            let follow = self.req.follow;
            let ev = {
                let readers = &mut self.readers;
                let merger = &self.merger;
                let rotate = self.rotate;
                let next = poll_fn(|cx| {
                    let n = readers.len();
                    if n == 0 {
                        return Poll::Pending;
                    }
                    // From a rotating start round to it, without allocating.
                    let start = rotate % n;
                    let mut poll = |id: &StreamId, r: &mut Reader| {
                        if !merger.wants(*id) {
                            return None;
                        }
                        match r.poll_recv(cx) {
                            Poll::Ready(ev) => Some((*id, ev)),
                            Poll::Pending => None,
                        }
                    };
                    for (id, r) in readers.iter_mut().skip(start) {
                        if let Some(x) = poll(id, r) {
                            return Poll::Ready(Some(x));
                        }
                    }
                    for (id, r) in readers.iter_mut().take(start) {
                        if let Some(x) = poll(id, r) {
                            return Poll::Ready(Some(x));
                        }
                    }
                    Poll::Pending
                });
                tokio::select! {
                    biased;
                    () = self.queue.closed() => Wake::ClientGone,
                    Some((id, ev)) = next => Wake::Peer(id, ev),
                    () = async {
                        match deadline {
                            Some(d) => tokio::time::sleep_until(d).await,
                            None => std::future::pending().await,
                        }
                    } => Wake::Timer,
                    r = changes.changed() => match r {
                        Ok(()) => Wake::PoolChanged,
                        Err(_) => Wake::ClientGone,
                    },
                }
            };
            self.rotate = self.rotate.wrapping_add(1);
            let ok = match ev {
                Wake::ClientGone => return,
                // The relay is stopping: end the stream cleanly.
                Wake::PoolChanged if self.pool.is_closed() => return,
                // Releases and due errors are handled at the loop top;
                // peers that went down, came back (follow) or stalled
                // (non-follow) here.
                Wake::Timer | Wake::PoolChanged => {
                    self.reconcile().await && (follow || self.cut_stalled(Instant::now()).await)
                }
                Wake::Peer(id, ev) => {
                    if let Some(r) = self.readers.get_mut(&id) {
                        r.idle_since = Instant::now();
                    }
                    self.handle(id, ev).await
                }
            };
            if !ok {
                return;
            }
        }
        // Non-follow end (or `first` satisfied): the tail, then any error.
        self.readers.clear();
        if let Some(t) = self.tail.take() {
            for r in t.flows {
                if !self.send(r).await {
                    return;
                }
            }
        }
        if let Some(e) = self.errors.take_all() {
            self.send(e).await;
        }
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

//! Following a Hubble Observer API (a relay or an exporter) into the
//! archive, resuming where the archive left off.
//!
//! On (re)connect the archiver asks for flows `since` its resume mark (the
//! newest flow time it has, committed or still in the open file) and skips
//! the overlap: flows older than the mark, and flows at the mark whose uuid
//! it already has. Before that it asks the source for its oldest flow; when
//! that is newer than the mark, the source no longer holds the flows in
//! between, and the gap is recorded in `_archive/gaps.jsonl` and reported.
//! Lost-event notices from the source are recorded the same way.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use proto::flow::Flow;
use proto::observer::observer_client::ObserverClient;
use proto::observer::{GetFlowsRequest, GetFlowsResponse, get_flows_response::ResponseTypes};
use proto::wkt::Timestamp;
use tonic::transport::{Channel, Endpoint};

use crate::defaults;
use crate::metrics::Metrics;
use crate::storage::Storage;
use crate::writer::{
    ArchiveWriter, Encoded, Gap, WriteError, WriterOptions, WriterStats, record_gap,
};

/// TLS to the source.
#[derive(Debug, Clone)]
pub struct SourceTls {
    /// CAs (or the system roots), client certificate, or no verification.
    pub client: svc::tls::ClientTls,
    /// The name the server's certificate must carry (e.g.
    /// `instance.hubble-relay.cilium.io`); default: the host of `server`.
    pub server_name: Option<String>,
}

/// Where and how to follow.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// `host:port` of the Observer API (`http://` and `tls://` prefixes are
    /// accepted; TLS is on when [`run_with_tls`] is given its settings).
    pub server: String,
    /// Where to begin when the archive has no state (default: everything
    /// the source holds).
    pub since: Option<Timestamp>,
    /// File shaping.
    pub writer: WriterOptions,
}

/// Newest appended flow time and the uuids at that time.
#[derive(Debug, Clone, Default)]
struct Mark {
    time: Option<Timestamp>,
    uuids: Vec<String>,
}

impl Mark {
    fn note(&mut self, f: &Flow) {
        self.note_key(f.time, &f.uuid);
    }

    /// Notes a flow at `time` with `uuid`, reusing the one string of the
    /// common case (each flow newer than the last).
    fn note_key(&mut self, time: Option<Timestamp>, uuid: &str) {
        match (self.time, time) {
            (Some(m), Some(t)) if t < m => {}
            (Some(m), Some(t)) if t == m => self.uuids.push(uuid.to_owned()),
            (_, t) => {
                self.time = t;
                self.uuids.truncate(1);
                match self.uuids.first_mut() {
                    Some(u) => {
                        u.clear();
                        u.push_str(uuid);
                    }
                    None => self.uuids.push(uuid.to_owned()),
                }
            }
        }
    }

    fn covers(&self, f: &Flow) -> bool {
        self.covers_key(f.time, &f.uuid)
    }

    /// [`crate::writer::ArchiveState::already_archived`] of a flow at `time` with `uuid`.
    fn covers_key(&self, time: Option<Timestamp>, uuid: &str) -> bool {
        match (self.time, time) {
            (Some(last), Some(t)) => {
                t < last || (t == last && self.uuids.iter().any(|u| u == uuid))
            }
            _ => false,
        }
    }
}

/// The client codec of the archiver's GetFlows call: encodes the request
/// as prost does and yields each response as the bytes received, so a
/// flow is archived from its bytes ([`ArchiveWriter::append_encoded`])
/// instead of being decoded and encoded again. The response is archived
/// before the next is read, so taking it out of tonic's buffer holds
/// nothing longer than before.
pub type BytesCodec = svc::grpc_codec::RawResponseCodec<GetFlowsRequest, Bytes>;

/// `observer.Observer/GetFlows` as the generated client calls it, with the
/// responses kept as bytes ([`BytesCodec`]).
async fn get_flows_bytes(
    channel: Channel,
    req: GetFlowsRequest,
) -> Result<tonic::codec::Streaming<Bytes>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unknown(format!("Service was not ready: {e}")))?;
    let mut req = tonic::Request::new(req);
    req.extensions_mut()
        .insert(tonic::GrpcMethod::new("observer.Observer", "GetFlows"));
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/observer.Observer/GetFlows");
    Ok(grpc
        .server_streaming(req, path, BytesCodec::new())
        .await?
        .into_inner())
}

/// A `--server` prefix that turns TLS on (as the hubble CLI's).
pub const TLS_PREFIX: &str = "tls://";

/// `server` without its `tls://` or `http://` prefix.
pub fn server_address(server: &str) -> &str {
    server
        .strip_prefix(TLS_PREFIX)
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server)
}

/// The host of `host:port` or `[v6]:port`.
fn host_of(address: &str) -> &str {
    match address.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => address.rsplit_once(':').map_or(address, |(h, _)| h),
    }
}

/// How to reach the source: the endpoint's settings, and the TLS
/// connector when TLS is on.
struct Source {
    endpoint: Endpoint,
    tls: Option<svc::tls::TlsConnector>,
}

impl Source {
    fn new(server: &str, tls: Option<&SourceTls>) -> anyhow::Result<Source> {
        let address = server_address(server);
        let endpoint = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| anyhow::anyhow!("invalid --server {server:?}: {e}"))?
            .connect_timeout(defaults::DIAL_TIMEOUT)
            .tcp_nodelay(true);
        let tls = match tls {
            Some(t) => {
                let name = t.server_name.as_deref().unwrap_or(host_of(address));
                Some(
                    t.client
                        .connector(address, name)
                        .map_err(|e| anyhow::anyhow!("TLS to {server:?}: {e}"))?,
                )
            }
            None => None,
        };
        Ok(Source { endpoint, tls })
    }

    async fn connect(&self) -> Result<Channel, tonic::transport::Error> {
        match &self.tls {
            Some(c) => self.endpoint.connect_with_connector(c.clone()).await,
            None => self.endpoint.connect().await,
        }
    }
}

/// An error with its causes on one line (a TLS failure's reason is the
/// last of them).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

/// Follows `opts.server` in plain text into `storage` until `shutdown` is
/// set, then commits everything. Reconnects with backoff when the source
/// goes away.
pub async fn run(
    storage: Arc<dyn Storage>,
    opts: FollowOptions,
    metrics: Arc<Metrics>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<WriterStats> {
    run_with_tls(storage, opts, None, metrics, shutdown).await
}

/// [`run`], over TLS when `tls` is given.
pub async fn run_with_tls(
    storage: Arc<dyn Storage>,
    opts: FollowOptions,
    tls: Option<SourceTls>,
    metrics: Arc<Metrics>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<WriterStats> {
    crate::writer::check_writable(storage.as_ref())?;
    let mut writer = ArchiveWriter::new(storage.clone(), opts.writer.clone())?;
    let state = writer.state().clone();
    // The footers were read once, by the writer's state.
    for _ in crate::writer::quarantine(storage.as_ref(), &state.unreadable)? {
        metrics.gap();
    }
    let mut mark = Mark {
        time: state.last_time,
        uuids: state.last_uuids.clone(),
    };
    if let Some(t) = state.last_time {
        tracing::info!(resume_from = %t, rows = state.rows, files = state.files, "resuming archive");
    }
    let source = Source::new(&opts.server, tls.as_ref())?;
    let mut backoff = defaults::RECONNECT_MIN;
    let mut tick = tokio::time::interval(defaults::TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    'outer: loop {
        if *shutdown.borrow() {
            break;
        }
        let channel = tokio::select! {
            c = source.connect() => c,
            _ = shutdown.changed() => break,
        };
        let channel: Channel = match channel {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(server = %opts.server, error = %chain(&e), retry_in = ?backoff, "cannot reach the source");
                metrics.source_error();
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => break,
                }
                backoff = (backoff * 2).min(defaults::RECONNECT_MAX);
                continue;
            }
        };
        let mut client = ObserverClient::new(channel.clone());
        if let Some(from) = mark.time
            && let Some(oldest) = oldest_flow_time(&mut client).await
            && oldest > from
        {
            let gap = Gap {
                recorded_at: Timestamp::now(),
                from: Some(from),
                to: Some(oldest),
                lost_events: None,
                reason: "the source no longer holds flows between the archive's newest flow and its oldest".into(),
            };
            tracing::warn!(from = %from, to = %oldest, "gap in the archive: flows in this window are lost");
            metrics.gap();
            record_gap(storage.as_ref(), &gap)?;
        }
        let since = mark.time.or(opts.since).or(Some(Timestamp {
            seconds: 0,
            nanos: 0,
        }));
        let req = GetFlowsRequest {
            follow: true,
            since,
            ..Default::default()
        };
        let mut stream = match get_flows_bytes(channel, req).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %chain(&e), "GetFlows failed");
                metrics.source_error();
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(defaults::RECONNECT_MAX);
                continue;
            }
        };
        tracing::info!(server = %opts.server, since = ?since.map(|t| t.to_string()), "following");
        metrics.connected(true);
        backoff = defaults::RECONNECT_MIN;
        let resume = mark.clone();
        loop {
            tokio::select! {
                m = stream.message() => match m {
                    Ok(Some(bytes)) => {
                        // A flow is archived from its bytes; anything else
                        // (and a flow prost would have to merge) is decoded.
                        let r = match crate::encoded::response_flow(&bytes) {
                            Ok(Some(flow)) => {
                                let res = writer.append_encoded_unless(&bytes[flow], |t, uuid| {
                                    let skip = resume.covers_key(t, uuid);
                                    if !skip {
                                        mark.note_key(t, uuid);
                                    }
                                    skip
                                });
                                match res {
                                    Ok(Encoded::Appended(t)) => metrics.appended(t),
                                    Ok(Encoded::Skipped) => {}
                                    Err(WriteError::Flow(e)) => {
                                        malformed(storage.as_ref(), &metrics, &e)?
                                    }
                                    Err(e) => return Err(e.into()),
                                }
                                continue;
                            }
                            Ok(None) | Err(crate::encoded::Scan::Irregular(_)) => {
                                match GetFlowsResponse::decode(bytes.as_ref()) {
                                    Ok(r) => r,
                                    Err(e) => {
                                        malformed(storage.as_ref(), &metrics, &e)?;
                                        continue;
                                    }
                                }
                            }
                            Err(e) => {
                                malformed(storage.as_ref(), &metrics, &e)?;
                                continue;
                            }
                        };
                        match r.response_types {
                        Some(ResponseTypes::Flow(f)) => {
                            if resume.covers(&f) {
                                continue;
                            }
                            writer.append(&f)?;
                            mark.note(&f);
                            metrics.appended(f.time);
                        }
                        Some(ResponseTypes::LostEvents(l)) => {
                            let gap = Gap {
                                recorded_at: Timestamp::now(),
                                from: l.first,
                                to: l.last.or(r.time),
                                lost_events: Some(l.num_events_lost),
                                reason: format!(
                                    "the source reported {} lost events ({})",
                                    l.num_events_lost,
                                    proto::flow::LostEventSource::try_from(l.source)
                                        .map(|s| s.as_str_name())
                                        .unwrap_or("UNKNOWN")
                                ),
                            };
                            tracing::warn!(lost = l.num_events_lost, "source reported lost events");
                            metrics.lost(l.num_events_lost);
                            record_gap(storage.as_ref(), &gap)?;
                        }
                        Some(ResponseTypes::NodeStatus(n)) => {
                            tracing::info!(state = n.state_change, nodes = ?n.node_names, message = %n.message, "node status");
                        }
                        None => {}
                    }},
                    Ok(None) => {
                        tracing::warn!("the source ended the stream; reconnecting");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "stream failed; reconnecting");
                        metrics.source_error();
                        break;
                    }
                },
                _ = tick.tick() => {
                    writer.tick()?;
                    metrics.writer(&writer.stats());
                }
                _ = shutdown.changed() => break 'outer,
            }
        }
        metrics.connected(false);
        writer.tick()?;
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => break,
        }
    }
    let stats = writer.finish()?;
    metrics.writer(&stats);
    Ok(stats)
}

/// A response from the source that is not valid protobuf (or a flow that
/// is not a valid `flow.Flow`): skipped, and recorded as a gap of one
/// event, rather than ending the stream (the source would send it again on
/// every reconnect).
fn malformed(
    storage: &dyn Storage,
    metrics: &Metrics,
    e: &dyn std::fmt::Display,
) -> Result<(), crate::storage::StorageError> {
    tracing::warn!(error = %e, "malformed response from the source skipped");
    metrics.source_error();
    metrics.gap();
    record_gap(
        storage,
        &Gap {
            recorded_at: Timestamp::now(),
            from: None,
            to: None,
            lost_events: Some(1),
            reason: format!("a malformed response from the source was skipped: {e}"),
        },
    )
}

async fn oldest_flow_time(client: &mut ObserverClient<Channel>) -> Option<Timestamp> {
    let req = GetFlowsRequest {
        first: true,
        number: 1,
        ..Default::default()
    };
    let mut s = tokio::time::timeout(defaults::OLDEST_FLOW_TIMEOUT, client.get_flows(req))
        .await
        .ok()?
        .ok()?
        .into_inner();
    while let Ok(Some(r)) = s.message().await {
        if let Some(ResponseTypes::Flow(f)) = r.response_types {
            return f.time;
        }
    }
    None
}

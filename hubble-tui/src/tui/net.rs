//! The tasks that fill the [`Inbox`]: [`follow`] streams `GetFlows` from a
//! server and reconnects with backoff when the stream ends or fails;
//! [`replay_archive`] reads a flow-archiver archive. Both restart when the
//! UI sends a new [`Control`] (a new filter, or `r`), and stop when the UI
//! drops its end of the channel.
//!
//! Responses are taken from the stream in batches (whatever is already
//! decoded, up to [`defaults::TUI_BATCH`]) and handed over under one lock,
//! so the UI thread is never kept waiting and the stream is read as fast as
//! it arrives; a server that sees us lag reports the flows we missed, which
//! the status bar shows as lost.

use std::sync::{Arc, Mutex, MutexGuard};

use futures::FutureExt as _;
use proto::observer::observer_client::ObserverClient;
use proto::observer::{
    GetFlowsRequest, GetFlowsResponse, ServerStatusRequest, get_flows_response::ResponseTypes,
};
use proto::wkt::Timestamp;
use tokio::sync::watch;

use super::app::{ConnState, Inbox, ServerInfo};
use crate::config::ServerOptions;
use crate::defaults;
use crate::request::grpc_error;

/// What the UI asks the task to stream.
#[derive(Debug, Clone, Default)]
pub struct Control {
    /// The filter generation; a new one restarts the stream from scratch.
    pub generation: u64,
    /// The request for this generation (follow, filters, first screenful).
    pub request: GetFlowsRequest,
    /// Bumped by `r`: reconnect now, resuming after the newest flow.
    pub reconnect: u64,
}

/// Locks the inbox; a panic elsewhere while it was held does not make the
/// data unusable (it is only counters and queued flows).
pub fn lock(shared: &Mutex<Inbox>) -> MutexGuard<'_, Inbox> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How one connection ended.
enum Ended {
    /// The UI sent a new control (filter or reconnect).
    Changed,
    /// The UI is gone.
    Quit,
    /// The dial or the stream failed, or the server closed the stream.
    Error(String),
}

/// Follows the server until the UI quits, reconnecting with backoff
/// ([`defaults::TUI_RECONNECT_MIN`] doubling to
/// [`defaults::TUI_RECONNECT_MAX`]). After a reconnect within the same
/// filter the stream resumes after the newest flow received (`since`), so
/// nothing is shown twice.
pub async fn follow(
    server: ServerOptions,
    shared: Arc<Mutex<Inbox>>,
    mut ctl: watch::Receiver<Control>,
) {
    let mut attempt = 0u32;
    let mut wait = defaults::TUI_RECONNECT_MIN;
    let mut generation = ctl.borrow().generation;
    let mut resume: Option<Timestamp> = None;
    loop {
        let c = ctl.borrow_and_update().clone();
        if c.generation != generation {
            generation = c.generation;
            resume = None;
            attempt = 0;
            wait = defaults::TUI_RECONNECT_MIN;
        }
        attempt += 1;
        lock(&shared).conn = ConnState::Connecting { attempt };
        let mut received = false;
        let error =
            match stream_once(&server, &c, &mut resume, &shared, &mut ctl, &mut received).await {
                Ended::Quit => return,
                Ended::Changed => {
                    attempt = 0;
                    wait = defaults::TUI_RECONNECT_MIN;
                    continue;
                }
                Ended::Error(e) => e,
            };
        if received {
            attempt = 1;
            wait = defaults::TUI_RECONNECT_MIN;
        }
        lock(&shared).conn = ConnState::Retrying {
            attempt,
            error,
            wait,
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            r = ctl.changed() => if r.is_err() { return },
        }
        wait = (wait * 2).min(defaults::TUI_RECONNECT_MAX);
    }
}

/// Aborts a task when dropped (the status poller of one connection).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One connection: dial, stream until it ends, hand batches to the inbox.
async fn stream_once(
    server: &ServerOptions,
    c: &Control,
    resume: &mut Option<Timestamp>,
    shared: &Arc<Mutex<Inbox>>,
    ctl: &mut watch::Receiver<Control>,
    received: &mut bool,
) -> Ended {
    let conn = tokio::select! {
        r = crate::conn::connect(server) => match r {
            Ok(c) => c,
            // The root cause (`Connection refused`): the whole chain is too
            // long for the status bar.
            Err(e) => return Ended::Error(e.root_cause().to_string()),
        },
        r = ctl.changed() => return if r.is_err() { Ended::Quit } else { Ended::Changed },
    };
    let mut client = ObserverClient::new(conn.channel.clone())
        .max_decoding_message_size(defaults::MAX_MESSAGE_SIZE);
    let mut req = c.request.clone();
    if let Some(t) = resume {
        req.number = 0;
        req.since = Some(after(*t));
    }
    let mut stream = tokio::select! {
        r = client.get_flows(conn.stream(req)) => match r {
            Ok(s) => s.into_inner(),
            Err(s) => return Ended::Error(grpc_error(&s)),
        },
        r = ctl.changed() => return if r.is_err() { Ended::Quit } else { Ended::Changed },
    };
    lock(shared).conn = ConnState::Connected;
    let _status = AbortOnDrop(tokio::spawn(poll_status(conn.clone(), shared.clone())));
    let mut batch: Vec<GetFlowsResponse> = Vec::with_capacity(defaults::TUI_BATCH);
    loop {
        let first = tokio::select! {
            biased;
            r = ctl.changed() => return if r.is_err() { Ended::Quit } else { Ended::Changed },
            m = stream.message() => m,
        };
        let mut end = match first {
            Ok(Some(res)) => {
                batch.push(res);
                None
            }
            Ok(None) => Some("the server closed the stream".to_owned()),
            Err(s) => Some(grpc_error(&s)),
        };
        while end.is_none() && batch.len() < defaults::TUI_BATCH {
            match stream.message().now_or_never() {
                Some(Ok(Some(res))) => batch.push(res),
                Some(Ok(None)) => end = Some("the server closed the stream".to_owned()),
                Some(Err(s)) => end = Some(grpc_error(&s)),
                None => break,
            }
        }
        if !batch.is_empty() {
            *received = true;
            hand_over(shared, c.generation, &mut batch, resume);
        }
        if let Some(e) = end {
            return Ended::Error(e);
        }
    }
}

/// One nanosecond after `t` (the resume point: `since` is inclusive).
fn after(t: Timestamp) -> Timestamp {
    if t.nanos >= 999_999_999 {
        Timestamp {
            seconds: t.seconds + 1,
            nanos: 0,
        }
    } else {
        Timestamp {
            seconds: t.seconds,
            nanos: t.nanos + 1,
        }
    }
}

/// Hands a batch to the inbox under one lock (dropped if the UI has moved
/// to another filter meanwhile) and notes the newest flow time.
fn hand_over(
    shared: &Mutex<Inbox>,
    generation: u64,
    batch: &mut Vec<GetFlowsResponse>,
    resume: &mut Option<Timestamp>,
) {
    for res in batch.iter() {
        if let Some(ResponseTypes::Flow(f)) = &res.response_types
            && let Some(t) = f.time
            && resume.is_none_or(|r| (t.seconds, t.nanos) > (r.seconds, r.nanos))
        {
            *resume = Some(t);
        }
    }
    let mut inbox = lock(shared);
    if inbox.generation != generation {
        batch.clear();
        return;
    }
    let sec = inbox.now_sec();
    for res in batch.drain(..) {
        inbox.push(res, sec);
    }
}

/// Asks `ServerStatus` every [`defaults::TUI_STATUS_PERIOD`] for node
/// counts (a relay's) and the ring's fill; failures are left to the stream
/// to report.
async fn poll_status(conn: crate::conn::Conn, shared: Arc<Mutex<Inbox>>) {
    let mut client = ObserverClient::new(conn.channel.clone());
    loop {
        if let Ok(r) = client
            .server_status(conn.unary(ServerStatusRequest {}))
            .await
        {
            let r = r.into_inner();
            lock(&shared).server = Some(ServerInfo {
                connected_nodes: r.num_connected_nodes.map(|v| v.value),
                unavailable_nodes: r.num_unavailable_nodes.map(|v| v.value),
                num_flows: r.num_flows,
                max_flows: r.max_flows,
                version: r.version,
            });
        }
        tokio::time::sleep(defaults::TUI_STATUS_PERIOD).await;
    }
}

/// Replays the archive at `dir` with each control's filters, until the UI
/// quits. The query runs on a blocking thread; flows are handed over in
/// batches like the stream's.
pub async fn replay_archive(
    dir: String,
    shared: Arc<Mutex<Inbox>>,
    mut ctl: watch::Receiver<Control>,
) {
    loop {
        let c = ctl.borrow_and_update().clone();
        lock(&shared).conn = ConnState::Archive { done: false };
        let (d, s) = (dir.clone(), shared.clone());
        let res = tokio::task::spawn_blocking(move || query_archive(&d, &c, &s)).await;
        lock(&shared).conn = match res {
            Ok(Ok(())) => ConnState::Archive { done: true },
            Ok(Err(e)) => ConnState::ArchiveError(format!("{e:#}")),
            Err(e) => ConnState::ArchiveError(e.to_string()),
        };
        if ctl.changed().await.is_err() {
            return;
        }
    }
}

fn query_archive(location: &str, c: &Control, shared: &Mutex<Inbox>) -> anyhow::Result<()> {
    use archiver::read::{Archive, Query};
    // A directory or `s3://bucket/prefix`, as `observe --archive`.
    let archive = Archive::open(location)?;
    let (flows, _) = archive.query(&Query::from(&c.request))?;
    let mut it = flows.into_iter().peekable();
    while it.peek().is_some() {
        let mut inbox = lock(shared);
        if inbox.generation != c.generation {
            return Ok(());
        }
        let sec = inbox.now_sec();
        for f in it.by_ref().take(defaults::TUI_BATCH) {
            inbox.push_flow(f, sec);
        }
        drop(inbox);
        // Let the UI take the lock between batches.
        std::thread::sleep(defaults::TUI_ARCHIVE_YIELD);
    }
    Ok(())
}

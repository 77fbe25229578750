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
use std::time::Duration;

use futures::FutureExt as _;
use proto::observer::observer_client::ObserverClient;
use proto::observer::{
    GetFlowsRequest, GetFlowsResponse, GetNodesRequest, ServerStatusRequest,
    get_flows_response::ResponseTypes,
};
use proto::wkt::Timestamp;
use tokio::sync::watch;

use super::app::{ConnState, Inbox, ServerInfo};
use crate::config::ServerOptions;
use crate::defaults;
use crate::request::{grpc_error, stream_client};

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
    let mut backoff = Backoff::new();
    let mut generation = ctl.borrow().generation;
    let mut resume: Option<Timestamp> = None;
    loop {
        let c = ctl.borrow_and_update().clone();
        if c.generation != generation {
            generation = c.generation;
            resume = None;
            backoff.reset();
        }
        let attempt = backoff.start_attempt();
        lock(&shared).conn = ConnState::Connecting { attempt };
        let mut received = false;
        let error =
            match stream_once(&server, &c, &mut resume, &shared, &mut ctl, &mut received).await {
                Ended::Quit => return,
                Ended::Changed => {
                    backoff.reset();
                    continue;
                }
                Ended::Error(e) => e,
            };
        let (attempt, wait) = backoff.failed(received);
        lock(&shared).conn = ConnState::Retrying {
            attempt,
            error,
            wait,
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            r = ctl.changed() => if r.is_err() { return },
        }
        backoff.waited();
    }
}

/// The reconnection schedule of [`follow`]: attempts are numbered from 1,
/// the wait starts at [`defaults::TUI_RECONNECT_MIN`] and doubles after
/// each wait up to [`defaults::TUI_RECONNECT_MAX`]; a connection that
/// delivered flows before it failed starts the count afresh, and a new
/// control (filter or `r`) that interrupts a connection resets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    attempt: u32,
    wait: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

impl Backoff {
    /// No attempt yet, the shortest wait.
    pub fn new() -> Self {
        Backoff {
            attempt: 0,
            wait: defaults::TUI_RECONNECT_MIN,
        }
    }

    /// Back to no attempt and the shortest wait.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Starts an attempt; returns its number (1 for the first).
    pub fn start_attempt(&mut self) -> u32 {
        self.attempt += 1;
        self.attempt
    }

    /// The attempt failed (`received`: after delivering flows): the attempt
    /// count and the wait before the next one, for the status bar.
    pub fn failed(&mut self, received: bool) -> (u32, Duration) {
        if received {
            self.attempt = 1;
            self.wait = defaults::TUI_RECONNECT_MIN;
        }
        (self.attempt, self.wait)
    }

    /// The wait is over (or was cut short by the UI): the next is twice as
    /// long, at most [`defaults::TUI_RECONNECT_MAX`].
    pub fn waited(&mut self) {
        self.wait = (self.wait * 2).min(defaults::TUI_RECONNECT_MAX);
    }
}

/// The request of one connection: the control's, or after a reconnect
/// within the same filter generation, the flows since just after the
/// newest one received (no backfill, nothing shown twice).
pub fn resume_request(base: &GetFlowsRequest, resume: Option<Timestamp>) -> GetFlowsRequest {
    let mut req = base.clone();
    if let Some(t) = resume {
        req.number = 0;
        req.since = Some(after(t));
    }
    req
}

/// Moves `resume` to the newest flow time in `batch` (never backwards).
pub fn note_newest(resume: &mut Option<Timestamp>, batch: &[GetFlowsResponse]) {
    for res in batch {
        if let Some(ResponseTypes::Flow(f)) = &res.response_types
            && let Some(t) = f.time
            && resume.is_none_or(|r| (t.seconds, t.nanos) > (r.seconds, r.nanos))
        {
            *resume = Some(t);
        }
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
    let mut client = stream_client(&conn);
    let req = resume_request(&c.request, *resume);
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
    note_newest(resume, batch);
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
/// counts (a relay's) and the ring's fill, and `GetNodes` for the nodes
/// panel; failures are left to the stream to report (a server without
/// `GetNodes` leaves the panel to the node names its flows carry).
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
        if let Ok(r) = client.get_nodes(conn.unary(GetNodesRequest {})).await {
            lock(&shared).known_nodes = r.into_inner().nodes;
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

#[cfg(test)]
mod tests {
    use proto::flow::Flow;
    use proto::flow::LostEvent;

    use super::*;

    fn ts(seconds: i64, nanos: i32) -> Timestamp {
        Timestamp { seconds, nanos }
    }

    fn flow_at(t: Option<Timestamp>) -> GetFlowsResponse {
        GetFlowsResponse {
            response_types: Some(ResponseTypes::Flow(Flow {
                time: t,
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn backoff_doubles_to_the_maximum() {
        let mut b = Backoff::new();
        let mut seen = Vec::new();
        for _ in 0..8 {
            let n = b.start_attempt();
            let (attempt, wait) = b.failed(false);
            assert_eq!(attempt, n);
            seen.push(wait);
            b.waited();
        }
        let min = defaults::TUI_RECONNECT_MIN;
        assert_eq!(&seen[..3], &[min, min * 2, min * 4]);
        assert!(seen.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*seen.last().unwrap(), defaults::TUI_RECONNECT_MAX);
        assert!(seen.iter().all(|w| *w <= defaults::TUI_RECONNECT_MAX));
    }

    #[test]
    fn backoff_starts_afresh_after_a_connection_that_delivered() {
        let mut b = Backoff::new();
        for _ in 0..3 {
            b.start_attempt();
            b.failed(false);
            b.waited();
        }
        assert_eq!(b.start_attempt(), 4);
        // The fourth connection streamed flows, then broke: retry soon, and
        // call the next attempt the second.
        assert_eq!(b.failed(true), (1, defaults::TUI_RECONNECT_MIN));
        b.waited();
        assert_eq!(b.start_attempt(), 2);
        assert_eq!(b.failed(false), (2, defaults::TUI_RECONNECT_MIN * 2));
    }

    #[test]
    fn backoff_reset_by_a_new_control() {
        let mut b = Backoff::new();
        b.start_attempt();
        b.failed(false);
        b.waited();
        b.start_attempt();
        b.reset();
        assert_eq!(b, Backoff::new());
        assert_eq!(b.start_attempt(), 1);
        assert_eq!(b.failed(false), (1, defaults::TUI_RECONNECT_MIN));
    }

    #[test]
    fn first_request_is_the_controls() {
        let base = GetFlowsRequest {
            number: 1000,
            follow: true,
            since: Some(ts(5, 0)),
            ..Default::default()
        };
        assert_eq!(resume_request(&base, None), base);
    }

    #[test]
    fn resumed_request_starts_just_after_the_newest_flow() {
        let base = GetFlowsRequest {
            number: 1000,
            follow: true,
            whitelist: vec![proto::flow::FlowFilter {
                verdict: vec![proto::flow::Verdict::Dropped as i32],
                ..Default::default()
            }],
            ..Default::default()
        };
        let req = resume_request(&base, Some(ts(100, 41)));
        assert_eq!(req.number, 0, "no backfill after a reconnect");
        assert_eq!(req.since, Some(ts(100, 42)));
        assert!(req.follow);
        assert_eq!(req.whitelist, base.whitelist);
        // The last nanosecond of a second rolls over.
        let req = resume_request(&base, Some(ts(100, 999_999_999)));
        assert_eq!(req.since, Some(ts(101, 0)));
    }

    #[test]
    fn resume_point_is_the_newest_flow_time() {
        let mut resume = None;
        note_newest(&mut resume, &[]);
        assert_eq!(resume, None);
        let lost = GetFlowsResponse {
            response_types: Some(ResponseTypes::LostEvents(LostEvent::default())),
            ..Default::default()
        };
        note_newest(
            &mut resume,
            &[
                flow_at(Some(ts(10, 5))),
                flow_at(Some(ts(12, 0))),
                flow_at(None),
                lost,
                flow_at(Some(ts(11, 999))),
            ],
        );
        assert_eq!(resume, Some(ts(12, 0)));
        // Never backwards (flows of several nodes interleave).
        note_newest(&mut resume, &[flow_at(Some(ts(11, 0)))]);
        assert_eq!(resume, Some(ts(12, 0)));
        note_newest(&mut resume, &[flow_at(Some(ts(12, 1)))]);
        assert_eq!(resume, Some(ts(12, 1)));
    }

    #[test]
    fn hand_over_drops_batches_of_an_old_generation() {
        let shared = Mutex::new(Inbox::new(100));
        let mut resume = None;
        let mut batch = vec![flow_at(Some(ts(1, 0))), flow_at(Some(ts(2, 0)))];
        hand_over(&shared, 0, &mut batch, &mut resume);
        assert!(batch.is_empty());
        assert_eq!(lock(&shared).stats.flows, 2);
        assert_eq!(resume, Some(ts(2, 0)));
        // The UI moved to generation 1 meanwhile: a batch of generation 0
        // is not counted (its resume point is still noted).
        lock(&shared).reset(1);
        let mut batch = vec![flow_at(Some(ts(3, 0)))];
        hand_over(&shared, 0, &mut batch, &mut resume);
        assert!(batch.is_empty());
        assert_eq!(lock(&shared).stats.flows, 0);
        assert_eq!(lock(&shared).take().len(), 0);
        assert_eq!(resume, Some(ts(3, 0)));
    }

    #[test]
    fn lock_survives_a_poisoned_mutex() {
        let shared = Arc::new(Mutex::new(Inbox::new(1)));
        let s = shared.clone();
        let _ = std::thread::spawn(move || {
            let _g = s.lock().unwrap();
            panic!("poison the inbox");
        })
        .join();
        assert!(shared.is_poisoned());
        lock(&shared).overrun = 7;
        assert_eq!(lock(&shared).overrun, 7);
    }
}

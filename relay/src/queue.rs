//! The bounded queue between a request's merge and its client (tonic
//! drains it as fast as HTTP/2 flow control lets it).
//!
//! Follow requests push with [`ClientQueue::push_drop_oldest`]: a client
//! that reads slower than the cluster produces never makes the relay hold
//! more than the queue's capacity; its oldest responses are dropped,
//! counted (`hubble_relay_flows_dropped_total{reason="slow_client"}`) and
//! reported to it as one `LostEvent{source: HUBBLE_RING_BUFFER}` per
//! second at most (the source a Hubble client already shows as "reader
//! fell behind"), carrying the exact count. Non-follow requests push with
//! [`ClientQueue::push_wait`] instead: the merge waits for the client (and
//! HTTP/2 then waits on the peers), so a finite query loses nothing.
//!
//! The queue holds [`Out`] responses: the peers' flows as the bytes they
//! sent, the relay's own responses as messages ([`crate::wire`]).
//!
//! Wakeups are per batch, not per response (issue 14: at several hundred
//! thousand flows/s a task wakeup per flow cost more than the flow): the
//! merge pushes what it released at once ([`ClientQueue::push_all_wait`],
//! [`ClientQueue::push_all_drop_oldest`]) with one wakeup of the reader,
//! and a writer waiting on a full queue is woken only once the reader has
//! taken it down to half its capacity, so it refills it in one go instead
//! of one response per reader step.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use futures::Stream;
use proto::flow::{LostEvent, LostEventSource};
use proto::observer::GetFlowsResponse;
use proto::observer::get_flows_response::ResponseTypes;
use proto::wkt::Timestamp;
use tokio::sync::Notify;
use tokio::time::Instant;
use tonic::Status;

use crate::defaults;
use crate::metrics::Metrics;
use crate::wire::Out;

#[derive(Debug)]
struct State {
    items: VecDeque<Out>,
    dropped: u64,
    dropped_first: Option<Timestamp>,
    last_report: Option<Instant>,
    writer_done: bool,
    error: Option<Status>,
    reader_gone: bool,
    /// A writer waits for room ([`ClientQueue::push_all_wait`]).
    writer_waiting: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    capacity: usize,
    readable: Notify,
    writable: Notify,
    gone: Notify,
    metrics: Arc<Metrics>,
    relay_name: String,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The writer's end.
#[derive(Debug)]
pub struct ClientQueue {
    shared: Arc<Shared>,
}

/// The work that fills a queue, run by its reader (see
/// [`ClientStream::drive`]).
pub type Driver = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;

/// The reader's end: the response stream handed to tonic.
pub struct ClientStream {
    shared: Arc<Shared>,
    /// The writer's work, polled by the reader whenever the queue is
    /// empty, instead of a task of its own.
    driver: Option<Driver>,
}

impl std::fmt::Debug for ClientStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientStream")
            .field("shared", &self.shared)
            .field("driven", &self.driver.is_some())
            .finish()
    }
}

/// A queue of `capacity` responses; `relay_name` names the relay in the
/// lost events it reports.
pub fn client_queue(
    capacity: usize,
    relay_name: impl Into<String>,
    metrics: Arc<Metrics>,
) -> (ClientQueue, ClientStream) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::with_capacity(capacity.min(1024)),
            dropped: 0,
            dropped_first: None,
            last_report: None,
            writer_done: false,
            error: None,
            reader_gone: false,
            writer_waiting: false,
        }),
        capacity: capacity.max(1),
        readable: Notify::new(),
        writable: Notify::new(),
        gone: Notify::new(),
        metrics,
        relay_name: relay_name.into(),
    });
    (
        ClientQueue {
            shared: shared.clone(),
        },
        ClientStream {
            shared,
            driver: None,
        },
    )
}

impl ClientQueue {
    /// Queues `r`, dropping the oldest queued response if the queue is
    /// full. Returns false once the client has gone.
    pub fn push_drop_oldest(&self, r: impl Into<Out>) -> bool {
        let mut one = vec![r.into()];
        self.push_all_drop_oldest(&mut one)
    }

    /// Queues every response of `items` in order (leaving it empty),
    /// dropping the oldest queued responses beyond the capacity; one wakeup
    /// of the reader. Returns false once the client has gone.
    pub fn push_all_drop_oldest(&self, items: &mut Vec<Out>) -> bool {
        if items.is_empty() {
            return !self.shared.lock().reader_gone;
        }
        let mut st = self.shared.lock();
        if st.reader_gone {
            items.clear();
            return false;
        }
        let mut dropped = 0u64;
        for r in items.drain(..) {
            if st.items.len() >= self.shared.capacity {
                st.items.pop_front();
                dropped += 1;
            }
            st.items.push_back(r);
        }
        if dropped > 0 {
            if st.dropped == 0 {
                st.dropped_first = Some(Timestamp::now());
            }
            st.dropped += dropped;
            self.shared.metrics.dropped_slow_client(dropped);
        }
        drop(st);
        self.shared.readable.notify_one();
        true
    }

    /// Queues `r`, waiting while the queue is full. Returns false once the
    /// client has gone.
    pub async fn push_wait(&self, r: impl Into<Out>) -> bool {
        let mut one = vec![r.into()];
        self.push_all_wait(&mut one).await
    }

    /// Queues every response of `items` in order (leaving it empty),
    /// waiting whenever the queue is full; one wakeup of the reader per
    /// refill. Returns false once the client has gone.
    pub async fn push_all_wait(&self, items: &mut Vec<Out>) -> bool {
        loop {
            {
                let mut st = self.shared.lock();
                if st.reader_gone {
                    items.clear();
                    return false;
                }
                let room = self.shared.capacity.saturating_sub(st.items.len());
                let take = room.min(items.len());
                st.items.extend(items.drain(..take));
                st.writer_waiting = !items.is_empty();
                drop(st);
                if take > 0 {
                    self.shared.readable.notify_one();
                }
                if items.is_empty() {
                    return true;
                }
            }
            tokio::select! {
                () = self.shared.writable.notified() => {}
                () = self.shared.gone.notified() => {}
            }
        }
    }

    /// Responses queued now.
    pub fn len(&self) -> usize {
        self.shared.lock().items.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves when the client has gone (closed its stream).
    pub async fn closed(&self) {
        loop {
            if self.shared.lock().reader_gone {
                return;
            }
            self.shared.gone.notified().await;
        }
    }

    /// Ends the stream after what is queued, with `error` if given.
    pub fn finish(self, error: Option<Status>) {
        if let Some(e) = error {
            self.shared.lock().error = Some(e);
        }
    }
}

impl Drop for ClientQueue {
    fn drop(&mut self) {
        self.shared.lock().writer_done = true;
        self.shared.readable.notify_one();
    }
}

impl Drop for ClientStream {
    fn drop(&mut self) {
        self.shared.lock().reader_gone = true;
        self.shared.gone.notify_one();
        self.shared.writable.notify_one();
    }
}

impl ClientStream {
    /// Runs `writer` (the future that fills this queue) inside this
    /// stream: it is polled whenever the reader finds the queue empty, and
    /// dropped with the stream. A non-follow request is answered so: the
    /// client's pace drives it anyway (its writer waits on a full queue),
    /// and a response then costs no wakeup of another task.
    pub fn drive(&mut self, writer: Driver) {
        self.driver = Some(writer);
    }

    /// The next response: a pending loss report when one is due, else the
    /// oldest queued response; `None` at the end.
    pub async fn recv(&mut self) -> Option<Result<Out, Status>> {
        loop {
            {
                let mut st = self.shared.lock();
                // The clock is read only when there is a loss to report.
                let now = (st.dropped > 0).then(Instant::now);
                if let Some(now) = now
                    && (st.items.is_empty()
                        || st.last_report.is_none_or(|t| {
                            now.duration_since(t) >= defaults::LOST_EVENT_SEND_INTERVAL
                        }))
                {
                    st.last_report = Some(now);
                    let n = std::mem::take(&mut st.dropped);
                    let first = st.dropped_first.take();
                    return Some(Ok(self.lost_event(n, first).into()));
                }
                if let Some(r) = st.items.pop_front() {
                    // A waiting writer is woken once the queue is down to
                    // half (one wakeup per refill, not per response).
                    let wake = st.writer_waiting && st.items.len() <= self.shared.capacity / 2;
                    if wake {
                        st.writer_waiting = false;
                    }
                    drop(st);
                    if r.is_flow() {
                        self.shared.metrics.forwarded(1);
                    }
                    if wake {
                        self.shared.writable.notify_one();
                    }
                    return Some(Ok(r));
                }
                if st.writer_done {
                    return st.error.take().map(Err);
                }
            }
            match &mut self.driver {
                Some(writer) => {
                    tokio::select! {
                        biased;
                        () = writer => self.driver = None,
                        () = self.shared.readable.notified() => {}
                    }
                }
                None => self.shared.readable.notified().await,
            }
        }
    }

    fn lost_event(&self, n: u64, first: Option<Timestamp>) -> GetFlowsResponse {
        let now = Timestamp::now();
        GetFlowsResponse {
            response_types: Some(ResponseTypes::LostEvents(LostEvent {
                source: LostEventSource::HubbleRingBuffer as i32,
                num_events_lost: n,
                cpu: None,
                first,
                last: Some(now),
            })),
            node_name: self.shared.relay_name.clone(),
            time: Some(now),
        }
    }

    /// The responses as a stream for tonic.
    pub fn into_stream(self) -> impl Stream<Item = Result<Out, Status>> + Send + 'static {
        futures::stream::unfold(self, |mut s| async move {
            let r = s.recv().await?;
            Some((r, s))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::flow::Flow;

    fn flow(i: i64) -> GetFlowsResponse {
        GetFlowsResponse {
            response_types: Some(ResponseTypes::Flow(Flow {
                uuid: i.to_string(),
                ..Default::default()
            })),
            node_name: String::new(),
            time: None,
        }
    }

    fn uuid(r: &Out) -> String {
        let Out::Message(r) = r else {
            return "peer bytes".into();
        };
        match &r.response_types {
            Some(ResponseTypes::Flow(f)) => f.uuid.clone(),
            Some(ResponseTypes::LostEvents(l)) => format!("lost {}", l.num_events_lost),
            _ => "?".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_loses_the_oldest_and_is_told_how_many() {
        let m = Arc::new(Metrics::new());
        let (q, mut s) = client_queue(4, "relay", m.clone());
        for i in 0..10 {
            assert!(q.push_drop_oldest(flow(i)));
        }
        assert_eq!(q.len(), 4, "bounded");
        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(uuid(&s.recv().await.unwrap().unwrap()));
        }
        assert_eq!(got, ["lost 6", "6", "7", "8", "9"]);
        // Within the report interval further losses wait for the next report
        // unless the queue runs empty.
        for i in 10..16 {
            q.push_drop_oldest(flow(i));
        }
        assert_eq!(uuid(&s.recv().await.unwrap().unwrap()), "12");
        tokio::time::advance(defaults::LOST_EVENT_SEND_INTERVAL).await;
        assert_eq!(uuid(&s.recv().await.unwrap().unwrap()), "lost 2");
        drop(q);
        let rest: Vec<String> = futures::StreamExt::collect::<Vec<_>>(s.into_stream())
            .await
            .into_iter()
            .map(|r| uuid(&r.unwrap()))
            .collect();
        assert_eq!(rest, ["13", "14", "15"]);
        let text = m.encode();
        assert!(
            text.contains(r#"hubble_relay_flows_dropped_total{reason="slow_client"} 8"#),
            "{text}"
        );
        assert!(
            text.contains("hubble_relay_flows_forwarded_total 8"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_batch_over_the_capacity_keeps_the_newest_and_counts_the_rest() {
        let m = Arc::new(Metrics::new());
        let (q, mut s) = client_queue(3, "relay", m.clone());
        let mut batch: Vec<Out> = (0..5).map(|i| flow(i).into()).collect();
        assert!(q.push_all_drop_oldest(&mut batch));
        assert!(batch.is_empty());
        drop(q);
        let mut got = Vec::new();
        while let Some(r) = s.recv().await {
            got.push(uuid(&r.unwrap()));
        }
        assert_eq!(got, ["lost 2", "2", "3", "4"]);
    }

    #[tokio::test]
    async fn a_driven_writer_runs_inside_the_reader_and_loses_nothing() {
        let (q, mut s) = client_queue(4, "relay", Arc::new(Metrics::new()));
        // Ten responses through a queue of four, in batches of three, with
        // no task of its own: the reader polls it when the queue is empty.
        s.drive(Box::pin(async move {
            for b in 0..4 {
                let mut batch: Vec<Out> = (3 * b..(3 * b + 3).min(10))
                    .map(|i| flow(i).into())
                    .collect();
                assert!(q.push_all_wait(&mut batch).await);
            }
        }));
        let mut got = Vec::new();
        while let Some(r) = s.recv().await {
            got.push(uuid(&r.unwrap()));
        }
        let want: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn push_wait_applies_backpressure_and_sees_the_reader_leave() {
        let (q, mut s) = client_queue(2, "relay", Arc::new(Metrics::new()));
        assert!(q.push_wait(flow(0)).await);
        assert!(q.push_wait(flow(1)).await);
        let blocked =
            tokio::time::timeout(std::time::Duration::from_millis(50), q.push_wait(flow(2)));
        assert!(blocked.await.is_err(), "full: the writer waits");
        assert_eq!(uuid(&s.recv().await.unwrap().unwrap()), "0");
        assert!(q.push_wait(flow(2)).await);
        drop(s);
        assert!(!q.push_wait(flow(3)).await);
        q.closed().await;
    }
}

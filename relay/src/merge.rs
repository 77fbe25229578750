//! The time-ordered merge of the peers' flow streams, as a state machine
//! with an explicit clock (the caller passes `now`), so that its guarantees
//! are tested exactly.
//!
//! Each peer's flows are kept in a queue in the order the peer sent them
//! (an exporter sends its ring in observation order). The merge releases
//! the flow with the smallest time among the queues' heads (a k-way
//! merge); *when* it may release it depends on the mode.
//!
//! # Exact mode (non-follow requests)
//!
//! The smallest head is released only when every peer whose stream is
//! still open has a flow queued: nothing earlier can come from any of
//! them. The caller reads a peer only while its queue is empty, so the
//! merge holds at most one read per peer (the relay reads a batch of what
//! the peer has ready, at most `defaults::INLINE_READ_BATCH` flows).
//! **Guarantee: the output is in
//! exact time order** whenever each peer's own stream is (ties are broken
//! by peer, then by arrival).
//!
//! # Window mode (follow requests), window `W`, buffer `L`
//!
//! The smallest head is released when any of these holds:
//!
//! 1. every open peer has a flow queued (as in exact mode);
//! 2. some queued flow has waited `W` since it reached the relay (a peer
//!    with nothing to say must not stall the others longer than that);
//!    flows are then released in time order up to and including it;
//! 3. more than `L` flows are queued.
//!
//! **Guarantees** (tested in this module):
//!
//! - *Latency:* no flow is held longer than `W` after it reaches the relay
//!   (rule 2), and less when every peer is busy (rule 1).
//! - *Order:* the output is in time order, except that a flow B can follow
//!   a newer flow A when B reached the relay `W` or more after some flow
//!   at least as new as A did (a node lagging by the window or more), or
//!   when more than `L` flows were waiting (rule 3). While all nodes are
//!   sending and at most `L` flows wait, the order is exact whatever the
//!   lag between the nodes' clocks (holding a lag of `d` seconds takes
//!   about `d` × the cluster's flow rate flows).
//!
//! # Progress markers
//!
//! A peer that sends progress markers (our exporter, when asked; see
//! [`Merger::progress`]) promises that nothing older than the marker's
//! time will follow on its stream. Rule 1 then counts an open stream with
//! nothing queued as ready when its marker is at least as new as the
//! smallest head: an idle node no longer holds the others' flows for the
//! window, and the order stays exact. Without markers (a stock agent) the
//! rules above apply unchanged.
//!
//! *Late flows of a returning node:* a node that comes back after a hang
//! or an outage is attached as a *catching-up* stream
//! ([`Merger::add_catching_up`]) and first sends its backlog (see
//! [`crate::flows`]). Those of its flows that are older than the newest
//! flow already released cannot be put in order any more; they are
//! released at once, in the node's order, instead of being held: holding
//! them would only delay them and, thousands at a time, fill the buffer and
//! force rule 3 on the live flows of every other node. The stream is
//! sorted as any other from its first flow that is not late. So a node's
//! catch-up never reorders the other nodes' flows; its late flows come out
//! after the `NODE_CONNECTED` event that announces its return, each older
//! than a flow sent before it, which is how a client tells them apart
//! (counted by [`Merger::late`]). Only a returning node's stream is
//! treated so: a node whose clock runs ahead must not turn every other
//! node's flows into unsorted late ones.
//!
//! Hubble's relay sorts in a 100-flow heap and flushes flows older than
//! `now − 1 s` by the *relay's* clock after a second without input, so a
//! node whose clock or stream lags reorders output even when it is busy
//! (cilium/cilium#11223); here lag only matters for an idle stream.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use proto::observer::GetFlowsResponse;
use proto::observer::get_flows_response::ResponseTypes;
use proto::wkt::Timestamp;
use tokio::time::Instant;

/// Identifies one peer stream inside a merge.
pub type StreamId = u64;

/// How the merge decides that a flow may be released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Non-follow: exact order; wait for every open stream's next flow.
    Exact,
    /// Follow: exact while all streams are busy, bounded wait otherwise.
    Window {
        /// Longest time a flow is held.
        window: Duration,
        /// Most flows held.
        max_buffered: usize,
    },
}

/// A response the merge can order: it knows its time.
pub trait Timed {
    /// The time the merge orders by.
    fn order_time(&self) -> Timestamp;
}

impl Timed for GetFlowsResponse {
    fn order_time(&self) -> Timestamp {
        response_time(self)
    }
}

impl Timed for crate::wire::PeerResponse {
    fn order_time(&self) -> Timestamp {
        self.scanned.order_time()
    }
}

#[derive(Debug)]
struct Held<R> {
    arrival: Instant,
    time: Timestamp,
    resp: R,
}

#[derive(Debug)]
struct Stream<R> {
    name: String,
    queue: VecDeque<Held<R>>,
    open: bool,
    /// A returning node's backlog: late flows bypass the sorting.
    catching_up: bool,
    /// The newest progress marker: nothing older follows on this stream.
    progress: Option<Timestamp>,
}

/// The merge of one request's peer streams, of responses `R` (the relay
/// merges the peers' encoded responses, [`crate::wire::PeerResponse`]).
#[derive(Debug)]
pub struct Merger<R = GetFlowsResponse> {
    mode: Mode,
    streams: BTreeMap<StreamId, Stream<R>>,
    next_id: StreamId,
    buffered: usize,
    /// Window mode: the newest time released so far.
    released_max: Option<Timestamp>,
    /// Window mode: flows older than `released_max` when they arrived.
    late: VecDeque<R>,
    late_total: u64,
}

/// The time a response is ordered by: its `time`, else its flow's.
pub fn response_time(r: &GetFlowsResponse) -> Timestamp {
    let flow_time = match &r.response_types {
        Some(ResponseTypes::Flow(f)) => f.time,
        _ => None,
    };
    r.time.or(flow_time).unwrap_or_default()
}

impl<R: Timed> Merger<R> {
    /// An empty merge.
    pub fn new(mode: Mode) -> Self {
        Merger {
            mode,
            streams: BTreeMap::new(),
            next_id: 0,
            buffered: 0,
            released_max: None,
            late: VecDeque::new(),
            late_total: 0,
        }
    }

    /// Adds an open stream from the peer `name`.
    pub fn add_stream(&mut self, name: impl Into<String>) -> StreamId {
        self.insert(name.into(), false)
    }

    /// Adds an open stream from the peer `name` that returns after an
    /// outage: until its first flow that is not late, its flows older than
    /// the newest released one are released at once (window mode).
    pub fn add_catching_up(&mut self, name: impl Into<String>) -> StreamId {
        self.insert(name.into(), true)
    }

    fn insert(&mut self, name: String, catching_up: bool) -> StreamId {
        let id = self.next_id;
        self.next_id += 1;
        self.streams.insert(
            id,
            Stream {
                name,
                queue: VecDeque::new(),
                open: true,
                catching_up,
                progress: None,
            },
        );
        id
    }

    /// The peer a stream reads from.
    pub fn name(&self, id: StreamId) -> Option<&str> {
        self.streams.get(&id).map(|s| s.name.as_str())
    }

    /// Queues a flow response that arrived from `id` at `now`.
    pub fn push(&mut self, id: StreamId, resp: R, now: Instant) {
        if let Some(s) = self.streams.get_mut(&id) {
            let time = resp.order_time();
            if s.catching_up {
                if matches!(self.mode, Mode::Window { .. })
                    && self.released_max.is_some_and(|m| time < m)
                {
                    self.late.push_back(resp);
                    self.late_total += 1;
                    return;
                }
                s.catching_up = false;
            }
            // A stream that sends markers is in time order: its flow says
            // as much as a marker would (a stock agent's stream keeps the
            // window rules alone).
            if s.progress.is_some_and(|p| time > p) {
                s.progress = Some(time);
            }
            s.queue.push_back(Held {
                arrival: now,
                time,
                resp,
            });
            self.buffered += 1;
        }
    }

    /// A progress marker from `id`: it will send nothing older than `t`, so
    /// it no longer holds back flows up to `t` while it has nothing queued.
    pub fn progress(&mut self, id: StreamId, t: Timestamp) {
        if let Some(s) = self.streams.get_mut(&id)
            && s.progress.is_none_or(|p| t > p)
        {
            s.progress = Some(t);
        }
    }

    /// The stream ended (or failed): the merge stops waiting for it; what
    /// it queued is still released in order.
    pub fn end(&mut self, id: StreamId) {
        if let Some(s) = self.streams.get_mut(&id) {
            s.open = false;
            if s.queue.is_empty() {
                self.streams.remove(&id);
            }
        }
    }

    /// Whether the caller should read `id`'s next response now. In exact
    /// mode only an open stream with nothing queued is read, which bounds
    /// the merge to one read (one flow, or one batch) per peer.
    pub fn wants(&self, id: StreamId) -> bool {
        self.streams.get(&id).is_some_and(|s| {
            s.open
                && match self.mode {
                    Mode::Exact => s.queue.is_empty(),
                    Mode::Window { .. } => true,
                }
        })
    }

    /// Ids of the open streams.
    pub fn open_streams(&self) -> impl Iterator<Item = StreamId> + '_ {
        self.streams
            .iter()
            .filter(|(_, s)| s.open)
            .map(|(id, _)| *id)
    }

    /// Flows queued.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// No stream is open and nothing is queued.
    pub fn is_done(&self) -> bool {
        self.streams.is_empty() && self.late.is_empty()
    }

    /// Window mode: flows released at once because they arrived older than
    /// a flow already released (late flows), since the merge began.
    pub fn late(&self) -> u64 {
        self.late_total
    }

    /// When a queued flow will have waited the window (window mode): the
    /// caller calls [`Merger::pop`] again then.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.mode {
            Mode::Exact => None,
            Mode::Window { window, .. } => self
                .streams
                .values()
                .filter_map(|s| s.queue.front())
                .map(|h| h.arrival + window)
                .min(),
        }
    }

    /// Releases the next flow if the mode's rules allow it at `now`.
    pub fn pop(&mut self, now: Instant) -> Option<R> {
        if let Some(r) = self.late.pop_front() {
            return Some(r);
        }
        let mut min: Option<(StreamId, Timestamp)> = None;
        let mut all_open_have_one = true;
        let mut timed_out = false;
        // The oldest progress among open streams with nothing queued.
        let mut idle_progress: Option<Option<Timestamp>> = None;
        for (id, s) in &self.streams {
            match s.queue.front() {
                Some(h) => {
                    if min.is_none_or(|(_, t)| h.time < t) {
                        min = Some((*id, h.time));
                    }
                    if let Mode::Window { window, .. } = self.mode
                        && h.arrival + window <= now
                    {
                        timed_out = true;
                    }
                }
                None => {
                    if s.open {
                        all_open_have_one = false;
                        idle_progress = Some(match idle_progress {
                            None => s.progress,
                            Some(p) => p.min(s.progress),
                        });
                    }
                }
            }
        }
        let (id, min_time) = min?;
        // Every open stream with nothing queued promised nothing older.
        if let Some(Some(p)) = idle_progress
            && p >= min_time
        {
            all_open_have_one = true;
        }
        let release = match self.mode {
            Mode::Exact => all_open_have_one,
            Mode::Window { max_buffered, .. } => {
                all_open_have_one || timed_out || self.buffered > max_buffered
            }
        };
        if !release {
            return None;
        }
        let s = self.streams.get_mut(&id)?;
        let h = s.queue.pop_front()?;
        self.buffered -= 1;
        if self.released_max.is_none_or(|m| h.time > m) {
            self.released_max = Some(h.time);
        }
        if !s.open && s.queue.is_empty() {
            self.streams.remove(&id);
        }
        Some(h.resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::flow::Flow;

    fn resp(t: i64, tag: &str) -> GetFlowsResponse {
        let time = Some(Timestamp {
            seconds: t,
            nanos: 0,
        });
        GetFlowsResponse {
            response_types: Some(ResponseTypes::Flow(Flow {
                time,
                uuid: tag.to_owned(),
                ..Default::default()
            })),
            node_name: String::new(),
            time,
        }
    }

    fn secs(r: &GetFlowsResponse) -> i64 {
        response_time(r).seconds
    }

    fn drain(m: &mut Merger, now: Instant) -> Vec<i64> {
        std::iter::from_fn(|| m.pop(now))
            .map(|r| secs(&r))
            .collect()
    }

    /// A small deterministic generator for schedules.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    #[test]
    fn exact_waits_for_every_open_stream() {
        let now = Instant::now();
        let mut m = Merger::new(Mode::Exact);
        let a = m.add_stream("a");
        let b = m.add_stream("b");
        m.push(a, resp(5, "a5"), now);
        assert!(m.pop(now).is_none(), "b may still send something older");
        assert!(!m.wants(a) && m.wants(b));
        m.push(b, resp(3, "b3"), now);
        assert_eq!(drain(&mut m, now), [3]);
        m.end(b);
        assert_eq!(drain(&mut m, now), [5]);
        m.end(a);
        assert!(m.is_done());
    }

    #[test]
    fn exact_merge_is_sorted_and_complete_for_any_arrival_order() {
        let mut rng = Lcg(7);
        for round in 0..200 {
            let peers = 1 + rng.next(5) as usize;
            // Each peer's stream is sorted; times collide across peers.
            let streams: Vec<Vec<i64>> = (0..peers)
                .map(|_| {
                    let mut t = 0;
                    (0..rng.next(30))
                        .map(|_| {
                            t += rng.next(4) as i64;
                            t
                        })
                        .collect()
                })
                .collect();
            let now = Instant::now();
            let mut m = Merger::new(Mode::Exact);
            let ids: Vec<StreamId> = (0..peers).map(|i| m.add_stream(format!("p{i}"))).collect();
            let mut pos = vec![0; peers];
            let mut out = Vec::new();
            let mut held_max = 0;
            while !m.is_done() {
                // Serve the wanting streams in a random order.
                let wanting: Vec<usize> = (0..peers).filter(|&i| m.wants(ids[i])).collect();
                if !wanting.is_empty() {
                    let i = wanting[rng.next(wanting.len() as u64) as usize];
                    match streams[i].get(pos[i]) {
                        Some(&t) => {
                            m.push(ids[i], resp(t, ""), now);
                            pos[i] += 1;
                        }
                        None => m.end(ids[i]),
                    }
                }
                held_max = held_max.max(m.buffered());
                out.extend(drain(&mut m, now));
            }
            let mut want: Vec<i64> = streams.concat();
            want.sort();
            assert_eq!(out, want, "round {round}");
            assert!(held_max <= peers, "one flow per peer at most");
        }
    }

    const W: Duration = Duration::from_secs(1);

    fn window(max: usize) -> Merger {
        Merger::new(Mode::Window {
            window: W,
            max_buffered: max,
        })
    }

    #[test]
    fn window_is_exact_while_every_stream_is_busy_whatever_the_lag() {
        let t0 = Instant::now();
        let mut m = window(100);
        let fast = m.add_stream("fast");
        let slow = m.add_stream("slow");
        // The slow node's flows are 60 s older than the fast node's but
        // keep coming: each is released as soon as it can be ordered.
        let mut out = Vec::new();
        for i in 0..10 {
            let now = t0 + Duration::from_millis(100 * i);
            m.push(fast, resp(1000 + i as i64, ""), now);
            m.push(slow, resp(940 + i as i64, ""), now);
            out.extend(drain(&mut m, now));
        }
        m.end(fast);
        m.end(slow);
        out.extend(drain(&mut m, t0));
        let mut sorted = out.clone();
        sorted.sort();
        assert_eq!(out, sorted);
    }

    #[test]
    fn an_idle_stream_delays_release_by_exactly_the_window() {
        let t0 = Instant::now();
        let mut m = window(100);
        let busy = m.add_stream("busy");
        let _idle = m.add_stream("idle");
        m.push(busy, resp(10, ""), t0);
        m.push(busy, resp(11, ""), t0 + Duration::from_millis(300));
        assert_eq!(m.next_deadline(), Some(t0 + W));
        assert!(m.pop(t0 + W - Duration::from_nanos(1)).is_none());
        assert_eq!(drain(&mut m, t0 + W), [10]);
        assert_eq!(m.next_deadline(), Some(t0 + Duration::from_millis(1300)));
        assert_eq!(drain(&mut m, t0 + Duration::from_millis(1300)), [11]);
        assert_eq!(m.next_deadline(), None);
    }

    #[test]
    fn late_older_flow_within_the_window_is_put_first() {
        let t0 = Instant::now();
        let mut m = window(100);
        let a = m.add_stream("a");
        let b = m.add_stream("b");
        m.push(a, resp(20, ""), t0);
        m.push(b, resp(10, ""), t0 + Duration::from_millis(999));
        let mut out = drain(&mut m, t0 + Duration::from_millis(999));
        out.extend(drain(&mut m, t0 + W));
        m.end(a);
        m.end(b);
        out.extend(drain(&mut m, t0 + W));
        assert_eq!(out, [10, 20]);
    }

    #[test]
    fn a_node_later_than_the_window_comes_out_of_order() {
        let t0 = Instant::now();
        let mut m = window(100);
        let a = m.add_stream("a");
        let b = m.add_stream("b");
        m.push(a, resp(20, ""), t0);
        assert_eq!(drain(&mut m, t0 + W), [20]);
        m.push(b, resp(10, ""), t0 + W + Duration::from_millis(1));
        m.end(a);
        assert_eq!(drain(&mut m, t0 + W + Duration::from_millis(1)), [10]);
    }

    #[test]
    fn a_flow_older_than_one_released_is_sent_at_once_and_does_not_disturb_the_others() {
        let t0 = Instant::now();
        let mut m = window(3);
        let live = m.add_stream("live");
        let other = m.add_stream("other");
        let back = m.add_catching_up("back");
        m.push(live, resp(100, ""), t0);
        m.push(other, resp(101, ""), t0);
        assert_eq!(drain(&mut m, t0 + W), [100, 101]);
        // A node comes back with a backlog far larger than the buffer.
        for t in 50..60 {
            m.push(back, resp(t, ""), t0 + W);
        }
        m.push(live, resp(103, ""), t0 + W);
        m.push(other, resp(102, ""), t0 + W);
        assert_eq!(m.buffered(), 2, "late flows are not held");
        let out = drain(&mut m, t0 + W);
        assert_eq!(
            out,
            (50..60).collect::<Vec<_>>(),
            "late ones at once, in arrival order"
        );
        assert_eq!(m.late(), 10);
        // Its first flow that is not late ends the catch-up: from then on
        // it is sorted as any other stream.
        m.push(back, resp(101, ""), t0 + W);
        assert_eq!(drain(&mut m, t0 + W), [101]);
        m.push(back, resp(100, ""), t0 + W);
        assert_eq!(m.late(), 10);
        assert_eq!(drain(&mut m, t0 + W), [100]);
        // The live flows stay in order: the buffer never overflowed.
        m.push(back, resp(104, ""), t0 + W);
        for id in [live, other, back] {
            m.end(id);
        }
        assert_eq!(drain(&mut m, t0 + W), [102, 103, 104]);
        assert!(m.is_done());
    }

    #[test]
    fn a_full_buffer_releases_the_oldest_early() {
        let t0 = Instant::now();
        let mut m = window(3);
        let a = m.add_stream("a");
        let _idle = m.add_stream("idle");
        for t in 0..3 {
            m.push(a, resp(t, ""), t0);
            assert!(m.pop(t0).is_none());
        }
        m.push(a, resp(3, ""), t0);
        assert_eq!(drain(&mut m, t0), [0]);
        assert_eq!(m.buffered(), 3);
    }

    /// Releases everything due up to `until_ms`, at the instants it is due.
    fn release_until(m: &mut Merger, t0: Instant, until_ms: u64, rel: &mut Vec<(u64, i64)>) {
        loop {
            let now_ms = match m.next_deadline() {
                Some(d) if d <= t0 + Duration::from_millis(until_ms) => (d - t0).as_millis() as u64,
                _ => until_ms,
            };
            let got = drain(m, t0 + Duration::from_millis(now_ms));
            let progressed = !got.is_empty();
            rel.extend(got.into_iter().map(|t| (now_ms, t)));
            if now_ms == until_ms && !progressed {
                break;
            }
        }
    }

    /// The documented guarantees, checked on random schedules: no flow is
    /// held longer than the window, and every inversion is explained by a
    /// newer flow that arrived at least the window earlier.
    #[test]
    fn window_guarantees_hold_on_random_schedules() {
        let mut rng = Lcg(11);
        for round in 0..300 {
            let peers = 1 + rng.next(4) as usize;
            let t0 = Instant::now();
            let mut m = window(1_000_000);
            let ids: Vec<StreamId> = (0..peers).map(|i| m.add_stream(format!("p{i}"))).collect();
            // (peer, arrival ms, flow time); each peer's times ascending.
            let mut events = Vec::new();
            for p in 0..peers {
                let mut arrival = rng.next(500);
                let mut t = rng.next(3000) as i64;
                for _ in 0..rng.next(20) {
                    arrival += rng.next(1500);
                    t += rng.next(700) as i64;
                    events.push((arrival, p, t));
                }
            }
            events.sort();
            // Simulate: before each arrival, release what is due by then.
            let mut arrivals = Vec::new(); // (arrival ms, time)
            let mut rel: Vec<(u64, i64)> = Vec::new(); // (release ms, time)
            for &(arrival, p, t) in &events {
                release_until(&mut m, t0, arrival, &mut rel);
                m.push(ids[p], resp(t, ""), t0 + Duration::from_millis(arrival));
                arrivals.push((arrival, t));
                release_until(&mut m, t0, arrival, &mut rel);
            }
            let last = events.last().map_or(0, |e| e.0);
            release_until(&mut m, t0, last + 10_000, &mut rel);
            let mut out = Vec::new(); // (release ms, time, arrival ms)
            for id in ids {
                m.end(id);
            }
            assert!(m.is_done(), "round {round}: everything released");
            // Match releases to arrivals (times are unique per peer but may
            // repeat across peers: match by time, earliest arrival first).
            let mut by_time: BTreeMap<i64, VecDeque<u64>> = BTreeMap::new();
            for &(a, t) in &arrivals {
                by_time.entry(t).or_default().push_back(a);
            }
            for &(r, t) in &rel {
                let a = by_time.get_mut(&t).and_then(|q| q.pop_front()).unwrap();
                assert!(r >= a, "round {round}: released before arrival");
                assert!(
                    r - a <= W.as_millis() as u64,
                    "round {round}: flow t={t} held {} ms",
                    r - a
                );
                out.push((r, t, a));
            }
            assert_eq!(out.len(), arrivals.len(), "round {round}");
            // Every inversion (B after A, B older) is explained.
            for (j, &(_, tb, ab)) in out.iter().enumerate() {
                for &(_, ta, _) in &out[..j] {
                    if tb < ta {
                        let explained = arrivals
                            .iter()
                            .any(|&(ac, tc)| tc >= ta && ab >= ac + W.as_millis() as u64);
                        assert!(
                            explained,
                            "round {round}: t={tb} (arrived {ab} ms) after t={ta} unexplained"
                        );
                    }
                }
            }
        }
    }

    fn ts(t: i64) -> Timestamp {
        Timestamp {
            seconds: t,
            nanos: 0,
        }
    }

    #[test]
    fn progress_markers_release_at_once_and_keep_the_order_exact() {
        let now = Instant::now();
        let mut m = window(100);
        let busy = m.add_stream("busy");
        let idle1 = m.add_stream("idle1");
        let idle2 = m.add_stream("idle2");
        m.push(busy, resp(10, ""), now);
        assert!(m.pop(now).is_none(), "no marker yet: the window applies");
        m.progress(idle1, ts(10));
        assert!(m.pop(now).is_none(), "idle2 has promised nothing");
        m.progress(idle2, ts(9));
        assert!(m.pop(now).is_none(), "idle2 may still send t=9..10");
        m.progress(idle2, ts(12));
        assert_eq!(drain(&mut m, now), [10], "both idle nodes are past t=10");
        // A marker never moves back, and a flow older than an idle node's
        // marker cannot come from it, so the order stays exact.
        m.progress(idle1, ts(5));
        m.push(busy, resp(11, ""), now);
        assert!(m.pop(now).is_none(), "idle1 is at 10");
        m.progress(idle1, ts(11));
        assert_eq!(drain(&mut m, now), [11]);
        m.push(busy, resp(13, ""), now);
        assert!(m.pop(now).is_none(), "idle1 is at 11, idle2 at 12: hold 13");
        // A flow of a stream that sends markers is one too (its stream is
        // in time order).
        m.push(idle1, resp(12, ""), now);
        m.progress(idle2, ts(13));
        assert_eq!(drain(&mut m, now), [12]);
        m.push(idle1, resp(13, ""), now);
        assert_eq!(drain(&mut m, now), [13], "busy's 13 first (tie: by stream)");
        m.progress(busy, ts(14));
        assert_eq!(drain(&mut m, now), [13]);
    }
}

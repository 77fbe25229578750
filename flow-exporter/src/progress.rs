//! Progress markers: how our relay learns that an idle node has nothing
//! older in flight, so that it can release the other nodes' flows in exact
//! time order without waiting out its sort window.
//!
//! # Protocol
//!
//! - The ingest side (whoever stores flows into the node's ring) advances
//!   the node's [`IngestProgress`] to `T` after it has stored every flow
//!   with a time before `T` (a source that finds itself drained at wall time
//!   `T` may advance to `T`). Until someone advances it, no marker is sent.
//! - A follow GetFlows request carrying the metadata header
//!   [`PROGRESS_HEADER`] (value: the interval in milliseconds, 1–1000) gets,
//!   while its reader is caught up with the ring and at most once per
//!   interval, a **marker**: a `GetFlowsResponse` with no `response_types`,
//!   the node's `node_name` and `time` = the progress. It promises that no
//!   response sent after it on that stream has an older time.
//! - Without the header nothing changes: the stock Hubble CLI, Hubble's
//!   relay and every other client never see a marker (they never send the
//!   header). A relay in front of a node that does not send markers (a stock
//!   Cilium agent) keeps its window behaviour.
//!
//! The promise holds because the reader loads the progress *before* it
//! checks that the ring has nothing more for it: the ingest stores its flows
//! (a release of the ring's write counter) before it advances the progress,
//! so every flow older than the loaded progress is already behind the reader.
//!
//! # Where the progress comes from
//!
//! A source sends a [`Watermark`] through the ingest queue *behind* the
//! batches it covers; the decoder task, which stores batches in queue order,
//! advances the progress when it takes the watermark, so only after it has
//! stored every batch before it. Each source states what it knows:
//!
//! - **BPF ring buffer** (`sources::ringbuf`): the kernel reserves a record
//!   (its position in the ring is fixed then, under the ring's lock, in
//!   reservation order across CPUs), *then* the program reads
//!   `bpf_ktime_get_boot_ns()` into `ktime_ns`, fills the record and
//!   submits it. The consumer reads records in position order and stops at
//!   the first one still being written (busy). Let the source read the boot
//!   clock at `D` and *then* find the ring empty (no record, or a busy one
//!   at its position). A record it has not read was reserved either after
//!   that check, or while the busy record it stopped at was held, or after
//!   that busy record; in every case after `D − B`, where `B` is the
//!   longest a program holds a record between reserve and submit. Its
//!   `ktime_ns` is read after its reservation, so it is later than
//!   `D − B`. Hence every event stamped before `D − B` has been read:
//!   the watermark is `D − B`
//!   ([`defaults::RINGBUF_PROGRESS_SLACK`](crate::defaults::RINGBUF_PROGRESS_SLACK),
//!   1 ms). All CPUs read the same boot clock, so no per-CPU skew enters.
//!   The boot time is turned into wall time by the decoder, with the same
//!   clock offset as the flows' times. The source sends one after each
//!   drain (at most once per
//!   [`defaults::PROGRESS_TICK`](crate::defaults::PROGRESS_TICK)) and on
//!   that tick when nothing arrives, checking the ring itself then (which
//!   also recovers a missed wakeup).
//! - **Synthetic**: the generator stamps events with the boot clock read as
//!   it emits them, so the clock read after an emission is a watermark with
//!   no slack.
//! - **Replay**: a file's flows carry recorded times in file order, so no
//!   watermark can be given while it is fed; once it is fed nothing more
//!   will come, and the watermark is the wall clock, on every tick.
//!
//! *Lost events.* A batch the queue had no room for is dropped and counted;
//! the watermark behind it still passes those flows: they will never be
//! stored, so waiting for them would stall the relay for nothing. The loss
//! is stored as `LostEvent{OBSERVER_EVENTS_QUEUE}` when the decoder takes
//! the next queue item, so before the watermark advances the progress: a
//! follower sees the loss before the marker. The same holds for records
//! the kernel could not reserve (`PERF_EVENT_RING_BUFFER`, reported when
//! the counter is polled). A watermark the queue has no room for is
//! dropped silently: the next one supersedes it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use proto::observer::GetFlowsResponse;
use proto::wkt::Timestamp;
use tokio::time::Instant;
use tonic::Status;
use tonic::metadata::MetadataMap;

/// The request metadata key that asks for progress markers; its value is
/// the marker interval in milliseconds.
pub const PROGRESS_HEADER: &str = "x-flow-exporter-progress-ms";

/// Longest marker interval a request may ask for.
pub const MAX_INTERVAL: Duration = Duration::from_secs(1);

/// A source's statement that it has handed the pipeline every event older
/// than a time; it travels through the ingest queue behind those events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watermark {
    /// Every event with a kernel time (`ktime_ns`, `CLOCK_BOOTTIME`
    /// nanoseconds) before this was handed over; the decoder turns it into
    /// wall time with the clock offset it stamps flows with.
    Boot(u64),
    /// Every flow with a time before this was handed over.
    Wall(Timestamp),
}

/// How far the node's ingest is complete: every flow with an older time is
/// in the ring. Unset (no markers) until first advanced.
#[derive(Debug)]
pub struct IngestProgress {
    /// Unix nanoseconds; `i64::MIN` while unset.
    nanos: AtomicI64,
}

impl Default for IngestProgress {
    fn default() -> Self {
        IngestProgress {
            nanos: AtomicI64::new(i64::MIN),
        }
    }
}

impl IngestProgress {
    /// Records that every flow with a time before `t` has been stored in the
    /// ring (call it after storing them). Never moves backwards.
    pub fn advance(&self, t: Timestamp) {
        let n = i64::try_from(t.as_unix_nanos()).unwrap_or(i64::MAX);
        self.nanos.fetch_max(n, Ordering::Release);
    }

    /// The progress, if it was ever advanced.
    pub fn get(&self) -> Option<Timestamp> {
        let n = self.nanos.load(Ordering::Acquire);
        (n != i64::MIN).then(|| Timestamp::from_unix_nanos(i128::from(n)))
    }
}

/// The marker state of one follow request that asked for markers.
#[derive(Debug)]
pub struct Markers {
    interval: Duration,
    next: Instant,
    last: Option<Timestamp>,
}

impl Markers {
    /// Reads [`PROGRESS_HEADER`] from a request's metadata: `None` when the
    /// header is absent (no markers), an `InvalidArgument` naming the header
    /// when its value is not a whole number of milliseconds in 1–1000.
    pub fn from_metadata(md: &MetadataMap) -> Result<Option<Markers>, Status> {
        let Some(v) = md.get(PROGRESS_HEADER) else {
            return Ok(None);
        };
        let ms = v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|ms| (1..=MAX_INTERVAL.as_millis() as u64).contains(ms))
            .ok_or_else(|| {
                Status::invalid_argument(format!(
                    "metadata {PROGRESS_HEADER}: {v:?} is not a marker interval in milliseconds (1-{})",
                    MAX_INTERVAL.as_millis()
                ))
            })?;
        Ok(Some(Markers::new(Duration::from_millis(ms))))
    }

    /// Markers at most once per `interval`.
    pub fn new(interval: Duration) -> Self {
        Markers {
            interval,
            next: Instant::now(),
            last: None,
        }
    }

    /// The marker to send now, if one is due and the progress moved since
    /// the last one. `caught_up` must check, *after* this loads the
    /// progress, that the reader has sent everything in the ring.
    pub fn take_due(
        &mut self,
        node_name: &str,
        progress: &IngestProgress,
        caught_up: impl FnOnce() -> bool,
    ) -> Option<GetFlowsResponse> {
        let now = Instant::now();
        if now < self.next {
            return None;
        }
        let t = progress.get()?;
        if !caught_up() || self.last.is_some_and(|l| t <= l) {
            return None;
        }
        self.next = now + self.interval;
        self.last = Some(t);
        Some(marker(node_name, t))
    }

    /// How long until the next marker may be due.
    pub fn until_due(&self) -> Duration {
        let d = self.next.saturating_duration_since(Instant::now());
        if d.is_zero() { self.interval } else { d }
    }
}

/// A marker: no `response_types`, the node and the progress time.
pub fn marker(node_name: &str, t: Timestamp) -> GetFlowsResponse {
    GetFlowsResponse {
        response_types: None,
        node_name: node_name.to_owned(),
        time: Some(t),
    }
}

/// The progress a response announces, if it is a marker.
pub fn marker_time(r: &GetFlowsResponse) -> Option<Timestamp> {
    match r.response_types {
        None => r.time,
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_absent_means_no_markers_and_bad_values_are_named() {
        assert!(
            Markers::from_metadata(&MetadataMap::new())
                .unwrap()
                .is_none()
        );
        let mut md = MetadataMap::new();
        md.insert(PROGRESS_HEADER, "5".parse().unwrap());
        assert!(Markers::from_metadata(&md).unwrap().is_some());
        for bad in ["0", "1001", "x", "-3"] {
            md.insert(PROGRESS_HEADER, bad.parse().unwrap());
            let e = Markers::from_metadata(&md).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
            assert!(e.message().contains(PROGRESS_HEADER), "{}", e.message());
        }
    }

    #[tokio::test]
    async fn a_marker_needs_progress_a_caught_up_reader_and_news() {
        let p = IngestProgress::default();
        let mut m = Markers::new(Duration::from_millis(1));
        assert!(m.take_due("n", &p, || true).is_none(), "never advanced");
        p.advance(Timestamp::from_unix_nanos(1_000));
        assert!(m.take_due("n", &p, || false).is_none(), "reader behind");
        let r = m.take_due("n", &p, || true).unwrap();
        assert_eq!(marker_time(&r), Some(Timestamp::from_unix_nanos(1_000)));
        assert_eq!(r.node_name, "n");
        p.advance(Timestamp::from_unix_nanos(500));
        assert_eq!(p.get(), Some(Timestamp::from_unix_nanos(1_000)));
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert!(m.take_due("n", &p, || true).is_none(), "no news");
        p.advance(Timestamp::from_unix_nanos(2_000));
        assert!(m.take_due("n", &p, || true).is_some());
    }
}

//! The ingest pipeline: sources hand batches of raw events (or already
//! decoded flows, for replay) to a bounded queue; one decoder task decodes,
//! enriches, counts metrics and writes the ring. That task is the ring's only
//! writer. A full queue never blocks a live source: the batch is dropped,
//! counted, and surfaces as `LostEvent{OBSERVER_EVENTS_QUEUE}` in the ring
//! and in `hubble_lost_events_total`.
//!
//! The queue is bounded in *events*, not in batches
//! ([`defaults::EVENT_QUEUE_SIZE`]): a batch takes as many places as it
//! holds events (a lost-event count or a watermark takes one), so a source
//! that hands over many small batches (a ring buffer drained at every
//! wakeup) gets the same room as one that hands over full ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flow_parser::{DecodeError, FlowText, SharedEndpoints};
use proto::flow::{Flow, LostEventSource};
use proto::wkt::Timestamp;
use tokio::sync::{Semaphore, mpsc};

use crate::defaults;
use crate::metrics::Metrics;
use crate::observer::Observer;
use crate::progress::Watermark;

/// A batch of raw events laid end to end in one buffer.
#[derive(Debug, Default)]
pub struct RawBatch {
    /// The events' bytes.
    pub data: Vec<u8>,
    /// `(start, end)` of each event in `data`.
    pub spans: Vec<(u32, u32)>,
}

impl RawBatch {
    /// An empty batch with room for `n` events.
    pub fn with_capacity(n: usize) -> Self {
        RawBatch {
            data: Vec::with_capacity(n * 192),
            spans: Vec::with_capacity(n),
        }
    }

    /// Appends one event.
    pub fn push(&mut self, ev: &[u8]) {
        let start = self.data.len() as u32;
        self.data.extend_from_slice(ev);
        self.spans.push((start, self.data.len() as u32));
    }

    /// Starts an event written directly into `data` by the caller; finish
    /// it with [`RawBatch::end_event`].
    pub fn begin_event(&mut self) -> u32 {
        self.data.len() as u32
    }

    /// Records the event begun at `start`.
    pub fn end_event(&mut self, start: u32) {
        self.spans.push((start, self.data.len() as u32));
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Iterates the events.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.spans
            .iter()
            .map(|&(s, e)| &self.data[s as usize..e as usize])
    }
}

/// What travels through the queue.
#[derive(Debug)]
pub enum Batch {
    /// Raw datapath events from `source` (a metric label).
    Raw {
        /// The source's name for metrics.
        source: &'static str,
        /// The events.
        batch: RawBatch,
    },
    /// Flows decoded elsewhere (replay files), stored as they are.
    Flows(Vec<Flow>),
    /// Events lost before the exporter saw them.
    Lost {
        /// Where they were lost.
        source: LostEventSource,
        /// How many.
        count: u64,
        /// On which CPU, when known.
        cpu: Option<i32>,
    },
    /// The source has handed over every event older than this
    /// ([`crate::progress`]): the decoder advances the node's progress
    /// after storing everything queued before it.
    Progress(Watermark),
}

impl Batch {
    fn events(&self) -> u64 {
        match self {
            Batch::Raw { batch, .. } => batch.len() as u64,
            Batch::Flows(f) => f.len() as u64,
            Batch::Lost { .. } | Batch::Progress(_) => 0,
        }
    }

    /// Places it takes in the queue: its events, at least one.
    fn places(&self) -> u32 {
        self.events().clamp(1, defaults::EVENT_QUEUE_SIZE as u64) as u32
    }
}

/// Why a decoder rejected a raw event: the parser's typed error, or only a
/// description (a decoder other than the parser's, e.g. a test's closure).
#[derive(Debug, thiserror::Error)]
pub enum DecodeFailure {
    /// The parser's error.
    #[error(transparent)]
    Parse(#[from] DecodeError),
    /// Any other decoder's description of the failure.
    #[error("{0}")]
    Other(String),
}

impl From<String> for DecodeFailure {
    fn from(s: String) -> Self {
        DecodeFailure::Other(s)
    }
}

impl DecodeFailure {
    /// The `reason` label of `flow_exporter_decode_errors_total`: the
    /// parser's [`DecodeError::kind`] (one of [`DecodeError::KINDS`]:
    /// `truncated`, `version`, `unknown_type`, `capture_length`), or
    /// [`DecodeFailure::OTHER`].
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeFailure::Parse(e) => e.kind(),
            DecodeFailure::Other(_) => Self::OTHER,
        }
    }

    /// The `reason` of a failure described only by its message.
    pub const OTHER: &'static str = crate::metrics::DECODE_ERROR_OTHER;
}

/// Decodes one raw datapath event into a flow.
pub trait Decode: Send + 'static {
    /// The decoded flow, or why the event was malformed.
    fn decode(&mut self, raw: &[u8]) -> Result<Flow, DecodeFailure>;

    /// Decodes into `flow`, replacing every field. The pipeline hands in
    /// the flow of the ring slot being overwritten: a decoder that reuses
    /// its buffers ([`flow_parser::Parser::decode_into`]) allocates nothing
    /// per flow in steady state. The default replaces `flow` with
    /// [`Decode::decode`]'s result.
    fn decode_into(&mut self, raw: &[u8], flow: &mut Flow) -> Result<(), DecodeFailure> {
        *flow = self.decode(raw)?;
        Ok(())
    }

    /// Decodes into `flow` with its endpoints into `endpoints` instead
    /// (`flow.source` and `flow.destination` left `None`): what the
    /// pipeline calls. A decoder that shares endpoints between flows
    /// ([`flow_parser::Parser::decode_shared_into`]) stores and counts
    /// them without a copy. The default moves [`Decode::decode_into`]'s
    /// endpoints out of the flow.
    fn decode_shared(
        &mut self,
        raw: &[u8],
        flow: &mut Flow,
        endpoints: &mut SharedEndpoints,
    ) -> Result<(), DecodeFailure> {
        endpoints.source = None;
        endpoints.destination = None;
        self.decode_into(raw, flow)?;
        endpoints.source = flow.source.take().map(Arc::new);
        endpoints.destination = flow.destination.take().map(Arc::new);
        Ok(())
    }

    /// [`Decode::decode_shared`], the flow's text fields (MACs,
    /// addresses, summary, UUID) possibly kept in `text` instead of the
    /// flow ([`flow_parser::Parser::decode_text_into`]), to be written
    /// straight into the stored bytes: what the pipeline calls. The
    /// default keeps nothing there.
    fn decode_text(
        &mut self,
        raw: &[u8],
        flow: &mut Flow,
        endpoints: &mut SharedEndpoints,
        text: &mut FlowText,
    ) -> Result<(), DecodeFailure> {
        text.clear();
        self.decode_shared(raw, flow, endpoints)
    }

    /// The wall time this decoder gives an event stamped `ktime_ns`
    /// (`CLOCK_BOOTTIME`), so that a source's [`Watermark::Boot`] is
    /// compared with flow times on the same clock. `None` (the default): the
    /// decoder cannot say, and boot-time watermarks are ignored.
    fn wall_time(&self, ktime_ns: u64) -> Option<Timestamp> {
        let _ = ktime_ns;
        None
    }
}

/// Any closure returning the parser's [`DecodeError`] (or a `String`).
impl<F, E> Decode for F
where
    F: FnMut(&[u8]) -> Result<Flow, E> + Send + 'static,
    E: Into<DecodeFailure>,
{
    fn decode(&mut self, raw: &[u8]) -> Result<Flow, DecodeFailure> {
        self(raw).map_err(Into::into)
    }
}

/// The sending side of the queue, cloned into every source.
#[derive(Debug, Clone)]
pub struct Ingest {
    tx: mpsc::UnboundedSender<Batch>,
    /// Places left in the queue, in events ([`Batch::places`]).
    room: Arc<Semaphore>,
    dropped: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
}

impl Ingest {
    /// Offers a batch without waiting; a full queue drops it and counts the
    /// loss. Returns whether it was queued.
    pub fn offer(&self, b: Batch) -> bool {
        let n = b.events();
        match self.room.try_acquire_many(b.places()) {
            Ok(places) => {
                places.forget();
                self.metrics.queue_depth_add(n as i64);
                if self.tx.send(b).is_ok() {
                    return true;
                }
                self.metrics.queue_depth_add(-(n as i64));
            }
            Err(_) => {
                self.dropped.fetch_add(n, Ordering::Relaxed);
            }
        }
        false
    }

    /// Sends a batch, waiting for room (sources that must lose nothing, such
    /// as replay files). Fails only when the pipeline has stopped.
    pub async fn send(&self, b: Batch) -> Result<(), ()> {
        let n = b.events();
        self.room
            .acquire_many(b.places())
            .await
            .map_err(|_| ())?
            .forget();
        self.metrics.queue_depth_add(n as i64);
        self.tx.send(b).map_err(|_| {
            self.metrics.queue_depth_add(-(n as i64));
        })
    }

    /// Whether the pipeline has stopped (no more batches are taken).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Metrics handle for sources.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// Creates the queue and returns its sender and the decoder task's future.
pub fn pipeline(
    observer: Arc<Observer>,
    metrics: Arc<Metrics>,
    mut decoder: Box<dyn Decode>,
) -> (Ingest, impl std::future::Future<Output = ()> + Send) {
    // Unbounded in items, bounded in events by `room`.
    let (tx, mut rx) = mpsc::unbounded_channel::<Batch>();
    let room = Arc::new(Semaphore::new(defaults::EVENT_QUEUE_SIZE));
    let dropped = Arc::new(AtomicU64::new(0));
    let ingest = Ingest {
        tx,
        room: room.clone(),
        dropped: dropped.clone(),
        metrics: metrics.clone(),
    };
    let task = async move {
        let mut counters = metrics.flow_counters();
        let mut flows = Vec::with_capacity(defaults::SOURCE_BATCH);
        // A source waiting for room gives up when the decoder is gone.
        let _close = CloseOnDrop(room.clone());
        while let Some(b) = rx.recv().await {
            room.add_permits(b.places() as usize);
            metrics.queue_depth_add(-(b.events() as i64));
            let queue_lost = dropped.swap(0, Ordering::Relaxed);
            if queue_lost > 0 {
                metrics.lost(LostEventSource::ObserverEventsQueue, queue_lost);
                observer.push_lost(LostEventSource::ObserverEventsQueue, queue_lost, None);
            }
            match b {
                Batch::Raw { source, batch } => {
                    metrics.events_read(source, batch.len() as u64);
                    // Decoded into one reused flow around shared
                    // endpoints, its text kept apart, counted, stored
                    // compact over the ring's recycled slots.
                    observer.push_decoded_text(
                        batch.iter(),
                        |raw, f, eps, text| {
                            decoder.decode_text(raw, f, eps, text)?;
                            counters.observe_text(f, text, eps.source.as_deref(), eps.destination.as_deref());
                            Ok::<(), DecodeFailure>(())
                        },
                        |raw, e| {
                            metrics.decode_error(e.reason());
                            tracing::debug!(error = %e, reason = e.reason(), len = raw.len(), "skipping malformed event");
                        },
                    );
                }
                Batch::Flows(fs) => {
                    metrics.events_read("replay", fs.len() as u64);
                    flows.extend(fs);
                }
                Batch::Lost { source, count, cpu } => {
                    metrics.lost(source, count);
                    observer.push_lost(source, count, cpu);
                }
                Batch::Progress(w) => {
                    // Everything queued before it is stored (and a loss
                    // counted meanwhile was pushed above).
                    let t = match w {
                        Watermark::Boot(ns) => decoder.wall_time(ns),
                        Watermark::Wall(t) => Some(t),
                    };
                    if let Some(t) = t {
                        observer.progress().advance(t);
                    }
                    continue;
                }
            }
            for f in &flows {
                counters.observe(f);
            }
            observer.push_flows(flows.drain(..));
            let ring = observer.ring();
            metrics.ring(ring.len(), ring.capacity());
        }
    };
    (ingest, task)
}

/// Closes the queue's room when the decoder task ends (or is aborted), so
/// that [`Ingest::send`] fails instead of waiting forever.
struct CloseOnDrop(Arc<Semaphore>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_event_batch(generator: &mut flow_parser::Synthetic) -> Batch {
        let mut raw = Vec::new();
        generator.next_event(&mut raw);
        let mut batch = RawBatch::with_capacity(1);
        batch.push(&raw);
        Batch::Raw {
            source: "test",
            batch,
        }
    }

    fn parser_decoder() -> Box<dyn Decode> {
        let parser = flow_parser::Parser::new("node", flow_parser::Enricher::none());
        Box::new(crate::sources::ParserDecoder::new(
            parser,
            flow_parser::ClockOffset::new(0),
        ))
    }

    #[tokio::test]
    async fn the_queue_is_bounded_in_events_not_batches() {
        let observer = Arc::new(Observer::new("node", 4095).unwrap());
        let (ingest, _task) = pipeline(observer, Arc::new(Metrics::new()), parser_decoder());
        let mut g = flow_parser::Synthetic::new(1);
        for i in 0..defaults::EVENT_QUEUE_SIZE {
            assert!(ingest.offer(one_event_batch(&mut g)), "batch {i} has room");
        }
        assert!(!ingest.offer(one_event_batch(&mut g)), "the queue is full");
        assert!(!ingest.offer(Batch::Progress(Watermark::Boot(1))));
        assert_eq!(ingest.dropped.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_watermark_advances_the_progress_after_the_batches_before_it() {
        let observer = Arc::new(Observer::new("node", 4095).unwrap());
        let (ingest, task) = pipeline(observer.clone(), Arc::new(Metrics::new()), parser_decoder());
        let mut g = flow_parser::Synthetic::new(1);
        for _ in 0..100 {
            assert!(ingest.offer(one_event_batch(&mut g)));
        }
        // Boot time 5 s with a zero offset: 5 s after the epoch.
        assert!(ingest.offer(Batch::Progress(Watermark::Boot(5_000_000_000))));
        drop(ingest);
        task.await;
        assert_eq!(observer.ring().written(), 100);
        assert_eq!(
            observer.progress().get(),
            Some(Timestamp::from_unix_nanos(5_000_000_000))
        );
    }

    #[test]
    fn failures_carry_the_parsers_reason() {
        let mut parser = flow_parser::Parser::new("node", flow_parser::Enricher::none());
        let clock = flow_parser::ClockOffset::new(0);
        let mut decode = move |raw: &[u8]| parser.decode(raw, &clock);
        let e = Decode::decode(&mut decode, &[1, 2, 3]).unwrap_err();
        assert_eq!(e.reason(), "truncated");
        assert!(matches!(e, DecodeFailure::Parse(DecodeError::Abi(_))));
        let mut described = |_: &[u8]| -> Result<Flow, String> { Err("nope".into()) };
        let e = Decode::decode(&mut described, &[]).unwrap_err();
        assert_eq!((e.reason(), e.to_string().as_str()), ("other", "nope"));
    }
}

//! The kernel source: a pinned `BPF_MAP_TYPE_RINGBUF` of datapath events
//! (the ABI in `ebpf/include/hubble_events.h`) and the datapath's per-CPU
//! lost-event counter (`BPF_MAP_TYPE_PERCPU_ARRAY`, key 0, u64), both opened
//! from bpffs pins. Only one consumer may read a ring at a time.
//!
//! Records are copied into batches and handed to the pipeline without
//! waiting, each drain followed by the watermark that lets the node's
//! progress advance ([`crate::progress`]: one a drain, and every
//! [`defaults::PROGRESS_TICK`] on an idle ring); the kernel counter is polled and its increases per CPU become
//! `LostEvent{PERF_EVENT_RING_BUFFER}`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use aya::maps::{Map, MapData, PerCpuArray, RingBuf};
use proto::flow::LostEventSource;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::clock::boot_time_ns;
use crate::defaults;
use crate::pipeline::{Batch, Ingest, RawBatch};
use crate::progress::Watermark;

/// Opens a pinned map, checking that it is of the expected kind.
fn open_pinned(path: &Path) -> anyhow::Result<Map> {
    let data = MapData::from_pin(path).with_context(|| {
        format!(
            "open pinned BPF map {} (is bpffs mounted and the datapath agent running?)",
            path.display()
        )
    })?;
    Map::from_map_data(data).with_context(|| format!("read map info of {}", path.display()))
}

/// Polls the datapath's pinned load-balancer counters (`lb4_stats`, a
/// per-CPU u64 array indexed new connections, translated, reverse
/// translated) into `metrics` until `shutdown` fires.
pub async fn poll_lb_stats(
    path: PathBuf,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let map = PerCpuArray::<MapData, u64>::try_from(open_pinned(&path)?)
        .with_context(|| format!("{} is not a per-CPU u64 array", path.display()))?;
    tracing::info!(map = %path.display(), "reading the datapath's load-balancer counters");
    let mut poll = tokio::time::interval(defaults::LOST_COUNTER_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            _ = poll.tick() => {
                let mut totals = [0u64; 3];
                for (i, t) in totals.iter_mut().enumerate() {
                    match map.get(&(i as u32), 0) {
                        Ok(v) => *t = v.iter().sum(),
                        Err(e) => {
                            tracing::warn!(error = %e, "reading the load-balancer counters failed");
                            break;
                        }
                    }
                }
                metrics.lb_stats(totals);
            }
        }
    }
}

/// Reads `ring` until `shutdown` fires, feeding `ingest`.
pub async fn run(
    ring: PathBuf,
    lost_counter: Option<PathBuf>,
    ingest: Ingest,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let rb = RingBuf::try_from(open_pinned(&ring)?)
        .with_context(|| format!("{} is not a BPF ring buffer", ring.display()))?;
    let lost = match &lost_counter {
        Some(p) => Some(
            PerCpuArray::<MapData, u64>::try_from(open_pinned(p)?)
                .with_context(|| format!("{} is not a per-CPU u64 array", p.display()))?,
        ),
        None => None,
    };
    // SAFETY: the RingBuf owns its fd and the AsyncFd owns the RingBuf, so the
    // fd stays open and valid for as long as it is registered.
    let mut afd = unsafe { AsyncFd::register_with_interest(rb, Interest::READABLE) }
        .map_err(std::io::Error::from)
        .context("register the ring buffer with tokio")?;
    tracing::info!(ring = %ring.display(), lost = ?lost_counter, "reading datapath events");
    let mut last_lost: Vec<u64> = Vec::new();
    let mut poll = tokio::time::interval(defaults::LOST_COUNTER_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick = tokio::time::interval(defaults::PROGRESS_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reader = Reader::new(ingest.clone());
    loop {
        tokio::select! {
            r = afd.readable_mut() => {
                let mut guard = r.context("wait for ring buffer events")?;
                // Cleared before draining: a record submitted meanwhile
                // wakes the next wait, and the drain may find it already.
                guard.clear_ready();
                let read = reader.drain(guard.get_inner_mut(), false);
                drop(guard);
                if read > 0 {
                    // Busy: let records gather in the kernel ring (it holds
                    // far more than arrive meanwhile) rather than waking
                    // for each; the kernel does not wake us for records
                    // behind the first one we have not read either.
                    tokio::time::sleep(defaults::RINGBUF_GATHER).await;
                }
            }
            _ = tick.tick() => {
                // Nothing may have arrived (an idle node): look at the ring
                // ourselves, then say how far it is read.
                reader.drain(afd.get_mut(), true);
            }
            _ = poll.tick() => {
                if let Some(lost) = &lost {
                    poll_lost(lost, &mut last_lost, &ingest);
                }
            }
            _ = shutdown.changed() => return Ok(()),
        }
    }
}

/// Copies ring-buffer records into batches for the pipeline and sends the
/// watermark behind them ([`crate::progress`]).
struct Reader {
    ingest: Ingest,
    batch: RawBatch,
    /// Boot time of the last watermark sent.
    last_watermark: u64,
}

impl Reader {
    fn new(ingest: Ingest) -> Self {
        Reader {
            ingest,
            batch: RawBatch::with_capacity(defaults::SOURCE_BATCH),
            last_watermark: 0,
        }
    }

    fn push(&mut self, rec: &[u8]) {
        self.batch.push(rec);
        if self.batch.len() >= defaults::SOURCE_BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        // A batch holds no more memory than its events need: a small one
        // is sent as an exact copy and the buffer kept for the next.
        let out = if self.batch.len() >= defaults::SOURCE_BATCH / 2 {
            std::mem::replace(
                &mut self.batch,
                RawBatch::with_capacity(defaults::SOURCE_BATCH),
            )
        } else {
            let copy = RawBatch {
                data: self.batch.data.clone(),
                spans: self.batch.spans.clone(),
            };
            self.batch.data.clear();
            self.batch.spans.clear();
            copy
        };
        self.ingest.offer(Batch::Raw {
            source: "ringbuf",
            batch: out,
        });
    }

    /// Reads every record in the ring, hands them over, and then the
    /// watermark: on every `tick`, else at most once per
    /// [`defaults::PROGRESS_TICK`].
    /// Returns how many records it read.
    fn drain(&mut self, rb: &mut RingBuf<MapData>, tick: bool) -> usize {
        let mut read = 0;
        let empty_at = loop {
            while let Some(rec) = rb.next() {
                self.push(&rec);
                read += 1;
            }
            // The clock is read *before* the check that finds the ring
            // empty: every record not read yet was reserved after `d − B`.
            let d = boot_time_ns();
            match rb.next() {
                None => break d,
                Some(rec) => {
                    self.push(&rec);
                    read += 1;
                }
            }
        };
        self.flush();
        let slack = defaults::RINGBUF_PROGRESS_SLACK.as_nanos() as u64;
        let due = tick
            || empty_at.saturating_sub(self.last_watermark)
                >= defaults::PROGRESS_TICK.as_nanos() as u64;
        if due && empty_at > slack {
            self.last_watermark = empty_at;
            self.ingest
                .offer(Batch::Progress(Watermark::Boot(empty_at - slack)));
        }
        read
    }
}

fn poll_lost(map: &PerCpuArray<MapData, u64>, last: &mut Vec<u64>, ingest: &Ingest) {
    let values = match map.get(&0, 0) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "reading the lost-event counter failed");
            return;
        }
    };
    if last.len() != values.len() {
        // First reading: losses from before we started are reported once.
        last.resize(values.len(), 0);
    }
    for (cpu, (now, before)) in values.iter().zip(last.iter_mut()).enumerate() {
        let delta = now.saturating_sub(*before);
        if delta == 0 {
            continue;
        }
        let queued = ingest.offer(Batch::Lost {
            source: LostEventSource::PerfEventRingBuffer,
            count: delta,
            cpu: Some(cpu as i32),
        });
        if queued {
            *before = *now;
        }
    }
}

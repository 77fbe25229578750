//! `--synthetic`: the parser's generator of realistic ABI records, emitted
//! at a paced rate with the current boot time, as the kernel would.

use flow_parser::Synthetic;

use super::clock::boot_time_ns;
use crate::defaults;
use crate::pipeline::{Batch, Ingest, RawBatch};
use crate::progress::Watermark;

/// Emits `rate` synthetic events per second, a batch every
/// [`defaults::SYNTHETIC_TICK`], until `shutdown` fires. Events carry the current boot time, like the kernel's.
/// Every [`defaults::PROGRESS_TICK`] the boot time is sent as the
/// watermark ([`crate::progress`]).
pub async fn run_synthetic(
    mut generator: Synthetic,
    rate: u64,
    ingest: Ingest,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut interval = tokio::time::interval(defaults::SYNTHETIC_TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut progress = tokio::time::interval(defaults::PROGRESS_TICK);
    progress.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = tokio::time::Instant::now();
    let mut emitted: u64 = 0;
    let mut scratch = Vec::with_capacity(256);
    tracing::info!(rate, "synthetic source started");
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = progress.tick() => {
                // Events emitted so far carry earlier boot times than this
                // reading, later ones will carry later ones.
                ingest.offer(Batch::Progress(Watermark::Boot(boot_time_ns())));
                continue;
            }
            _ = shutdown.changed() => return Ok(()),
        }
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        let mut n = due.saturating_sub(emitted) as usize;
        while n > 0 {
            let k = n.min(defaults::SOURCE_BATCH);
            let mut batch = RawBatch::with_capacity(k);
            let now = boot_time_ns();
            for _ in 0..k {
                generator.next_event(&mut scratch);
                stamp_ktime(&mut scratch, now);
                batch.push(&scratch);
            }
            ingest.offer(Batch::Raw {
                source: "synthetic",
                batch,
            });
            emitted += k as u64;
            n -= k;
        }
    }
}

/// Overwrites the event header's `ktime_ns` (offset 16 of `struct
/// event_hdr`), as the kernel would have set it at emission.
pub fn stamp_ktime(raw: &mut [u8], ktime_ns: u64) {
    if let Some(f) = raw.get_mut(16..24) {
        f.copy_from_slice(&ktime_ns.to_le_bytes());
    }
}

//! Wiring of the event sources to the decoder: the parser with its clock and
//! enrichment, and the synthetic generator's paced loop. The kernel source
//! is in [`crate::ringbuf`], replay files in [`crate::replay`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use flow_parser::{ClockOffset, Enricher, Parser, StaticEnrichment, Synthetic};

use crate::pipeline::{Batch, Decode, Ingest, RawBatch};

/// The decoder for raw events and, for `--synthetic`, the generator whose
/// records it decodes.
pub struct Decoders {
    /// Decodes raw ABI records into flows.
    pub decode: Box<dyn Decode>,
    /// The synthetic generator, when asked for.
    pub generator: Option<Synthetic>,
}

impl std::fmt::Debug for Decoders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoders")
            .field("synthetic", &self.generator.is_some())
            .finish()
    }
}

/// Builds the parser: node name, enrichment (a static file, or the synthetic
/// generator's own pods), and the boot-time → wall-clock offset.
pub fn decoder(
    node_name: &str,
    enrichment: Option<&Path>,
    synthetic: bool,
    seed: u64,
) -> anyhow::Result<Decoders> {
    let generator = synthetic.then(|| Synthetic::new(seed));
    let stat = match (enrichment, &generator) {
        (Some(p), _) => Some(
            StaticEnrichment::from_file(p)
                .with_context(|| format!("load enrichment file {}", p.display()))?,
        ),
        (None, Some(g)) => Some(g.enrichment()),
        (None, None) => None,
    };
    let enricher = match stat {
        Some(s) => Enricher::from_static(Arc::new(s)),
        None => Enricher::none(),
    };
    let clock = ClockOffset::measure().context("read CLOCK_BOOTTIME to convert event times")?;
    let mut parser = Parser::new(node_name, enricher);
    let decode = move |raw: &[u8]| parser.decode(raw, &clock).map_err(|e| e.to_string());
    Ok(Decoders {
        decode: Box::new(decode),
        generator,
    })
}

/// Emits `rate` synthetic events per second in 10 ms batches until
/// `shutdown` fires. Events carry the current boot time, like the kernel's.
pub async fn run_synthetic(
    mut generator: Synthetic,
    rate: u64,
    ingest: Ingest,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let tick = Duration::from_millis(10);
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = tokio::time::Instant::now();
    let mut emitted: u64 = 0;
    let mut scratch = Vec::with_capacity(256);
    tracing::info!(rate, "synthetic source started");
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.changed() => return Ok(()),
        }
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        let mut n = due.saturating_sub(emitted) as usize;
        while n > 0 {
            let k = n.min(crate::defaults::SOURCE_BATCH);
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

/// `CLOCK_BOOTTIME` in nanoseconds: what `bpf_ktime_get_boot_ns()` returns.
pub fn boot_time_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Overwrites the event header's `ktime_ns` (offset 16 of `struct
/// event_hdr`), as the kernel would have set it at emission.
pub fn stamp_ktime(raw: &mut [u8], ktime_ns: u64) {
    if let Some(f) = raw.get_mut(16..24) {
        f.copy_from_slice(&ktime_ns.to_le_bytes());
    }
}

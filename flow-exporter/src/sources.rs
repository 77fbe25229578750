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
    let reload = enrichment.map(|p| EnrichmentReload::new(p.to_owned()));
    let decode = move |raw: &[u8]| {
        if let Some(r) = &reload
            && let Some(e) = r.poll(crate::defaults::ENRICHMENT_RELOAD)
        {
            parser.set_enricher(e);
        }
        let flow = parser.decode(raw, &clock).map_err(|e| e.to_string())?;
        // A workload identity the loaded file has no labels for: the agent
        // has most likely just written a new endpoint (a pod's first
        // packets follow its CNI ADD closely). Look at the file again now
        // rather than on the next periodic check, and decode this event
        // once more with what it says.
        if let Some(r) = &reload
            && unknown_workload(&flow)
            && let Some(e) = r.poll(crate::defaults::ENRICHMENT_STALE_RECHECK)
        {
            parser.set_enricher(e);
            return parser.decode(raw, &clock).map_err(|e| e.to_string());
        }
        Ok(flow)
    };
    Ok(Decoders {
        decode: Box::new(decode),
        generator,
    })
}

/// Whether a side of `flow` carries a workload identity (not a reserved
/// one) that the enrichment knows no labels for.
fn unknown_workload(flow: &proto::flow::Flow) -> bool {
    [&flow.source, &flow.destination].into_iter().any(|ep| {
        ep.as_ref().is_some_and(|ep| {
            ep.identity >= crate::defaults::FIRST_WORKLOAD_IDENTITY && ep.labels.is_empty()
        })
    })
}

/// What identifies one content of a file that is replaced by renames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileVersion {
    mtime: std::time::SystemTime,
    ino: u64,
    len: u64,
}

impl FileVersion {
    fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt as _;
        let m = std::fs::metadata(path).ok()?;
        Some(FileVersion {
            mtime: m.modified().ok()?,
            ino: m.ino(),
            len: m.len(),
        })
    }
}

/// Reloads the enrichment file when it changes (the datapath agent rewrites
/// it atomically whenever endpoints or identities change). Checked from the
/// decoder at most once per second, and sooner when a flow names an
/// identity the loaded file does not know; a file that fails to parse is
/// reported and the previous enrichment stays in use.
struct EnrichmentReload {
    path: std::path::PathBuf,
    last_check: std::cell::Cell<std::time::Instant>,
    /// Modification time, inode and size of the file last loaded: the agent
    /// renames a new file into place, so the inode changes even when two
    /// writes fall within one timestamp tick.
    version: std::cell::Cell<Option<FileVersion>>,
}

impl EnrichmentReload {
    fn new(path: std::path::PathBuf) -> Self {
        let version = FileVersion::of(&path);
        EnrichmentReload {
            path,
            last_check: std::cell::Cell::new(std::time::Instant::now()),
            version: std::cell::Cell::new(version),
        }
    }

    /// Reloads when at least `interval` has passed since the last look
    /// and the file's modification time changed.
    fn poll(&self, interval: std::time::Duration) -> Option<Enricher> {
        if self.last_check.get().elapsed() < interval {
            return None;
        }
        self.last_check.set(std::time::Instant::now());
        let v = FileVersion::of(&self.path);
        if v == self.version.get() {
            return None;
        }
        self.version.set(v);
        match StaticEnrichment::from_file(&self.path) {
            Ok(s) => {
                tracing::info!(file = %self.path.display(), "enrichment reloaded");
                Some(Enricher::from_static(Arc::new(s)))
            }
            Err(e) => {
                tracing::warn!(file = %self.path.display(), error = %e, "enrichment file unreadable; keeping the previous one");
                None
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Puts `contents` in place of `path` as the agent does (a new file
    /// renamed over it), dated `secs` ahead so its time surely differs.
    fn replace(path: &Path, contents: &[u8], secs: u64) {
        let tmp = path.with_file_name(".new");
        std::fs::write(&tmp, contents).unwrap();
        let later = std::time::SystemTime::now() + Duration::from_secs(secs);
        std::fs::File::options()
            .write(true)
            .open(&tmp)
            .unwrap()
            .set_modified(later)
            .unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    /// Decodes generated events until one comes from a workload identity.
    fn next_workload_flow(d: &mut Decoders, generator: &mut Synthetic) -> proto::flow::Flow {
        let mut raw = Vec::new();
        loop {
            raw.clear();
            generator.next_event(&mut raw);
            let f = d.decode.decode(&raw).unwrap();
            if f.source.as_ref().is_some_and(|e| e.identity >= 256) {
                return f;
            }
        }
    }

    #[test]
    fn a_flow_of_an_unknown_workload_rereads_the_file_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("enrichment.yaml");
        std::fs::write(&path, "node_name: kind-worker\n").unwrap();
        let mut d = decoder("kind-worker", Some(&path), false, 1).unwrap();
        let mut generator = Synthetic::new(1);
        // An empty file: workload identities come out without labels.
        let f = next_workload_flow(&mut d, &mut generator);
        assert!(f.source.unwrap().labels.is_empty());
        // The agent writes the pods (a newer file, atomically); the very
        // next flow of one of them is decoded with its labels, without
        // waiting for the periodic check.
        replace(&path, generator.enrichment().to_yaml().as_bytes(), 5);
        std::thread::sleep(crate::defaults::ENRICHMENT_STALE_RECHECK * 2);
        let f = next_workload_flow(&mut d, &mut generator);
        assert!(
            !f.source.unwrap().labels.is_empty(),
            "labels from the new file"
        );
    }

    #[test]
    fn enrichment_file_is_reloaded_when_it_changes() {
        let src = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../parser/testdata/starwars-enrichment.yaml"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("enrichment.yaml");
        std::fs::copy(src, &path).unwrap();
        let r = EnrichmentReload::new(path.clone());
        let past = std::time::Instant::now() - crate::defaults::ENRICHMENT_RELOAD * 2;
        r.last_check.set(past);
        assert!(
            r.poll(crate::defaults::ENRICHMENT_RELOAD).is_none(),
            "unchanged file: nothing to reload"
        );
        // A newer file (the agent renames a new one into place).
        replace(&path, &std::fs::read(src).unwrap(), 5);
        r.last_check.set(past);
        assert!(
            r.poll(crate::defaults::ENRICHMENT_RELOAD).is_some(),
            "changed file is reloaded"
        );
        // A broken file keeps the previous enrichment.
        replace(&path, b"endpoints: [", 10);
        r.last_check.set(past);
        assert!(r.poll(crate::defaults::ENRICHMENT_RELOAD).is_none());
    }
}

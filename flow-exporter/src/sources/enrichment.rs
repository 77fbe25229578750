//! The static enrichment file, reloaded when it changes: the datapath agent
//! rewrites it atomically (a new file renamed into place) whenever
//! endpoints, identities or the cluster's nodes change.
//!
//! [`EnrichmentFile`] owns the file: it loads it, and on each change
//! publishes the new enrichment and, when it differs, the node list
//! ([`ClusterNodes`]) through `tokio::sync::watch` channels, which never
//! wait for their readers. It is looked at by [`EnrichmentFile::run`] once
//! a second (so the node list `peer.Peer/Notify` announces follows the file
//! on an idle node too) and by the decoder's `EnrichmentReload`, which on
//! the hot path costs a timestamp comparison and an atomic load, and looks
//! at the file itself at once when a flow names an identity the loaded
//! file has no labels for.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flow_parser::{Enricher, EnrichmentError, StaticEnrichment};
use tokio::sync::watch;

use crate::peers::{ClusterNodes, NodesWatch};

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

/// The enrichment file and the latest content loaded from it. A file that
/// fails to parse is reported and the previous content stays in use.
#[derive(Debug)]
pub struct EnrichmentFile {
    path: PathBuf,
    /// Modification time, inode and size of the file last looked at: the
    /// agent renames a new file into place, so the inode changes even when
    /// two writes fall within one timestamp tick.
    version: Mutex<Option<FileVersion>>,
    enrichment: watch::Sender<Arc<StaticEnrichment>>,
    nodes: watch::Sender<Arc<ClusterNodes>>,
}

impl EnrichmentFile {
    /// Loads `path`; an unreadable or invalid file is an error here (at
    /// start), and only a warning on later reloads.
    pub fn open(path: impl Into<PathBuf>) -> Result<Arc<EnrichmentFile>, EnrichmentError> {
        let path = path.into();
        let version = FileVersion::of(&path);
        let loaded = StaticEnrichment::from_file(&path)?;
        let nodes = ClusterNodes::of(&loaded);
        Ok(Arc::new(EnrichmentFile {
            path,
            version: Mutex::new(version),
            enrichment: watch::Sender::new(Arc::new(loaded)),
            nodes: watch::Sender::new(Arc::new(nodes)),
        }))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The latest enrichment loaded.
    pub fn current(&self) -> Arc<StaticEnrichment> {
        Arc::clone(&self.enrichment.borrow())
    }

    /// The enrichment, as each reload publishes it.
    pub fn subscribe(&self) -> watch::Receiver<Arc<StaticEnrichment>> {
        self.enrichment.subscribe()
    }

    /// The cluster's node list, published when a reload changes it.
    pub fn nodes(&self) -> NodesWatch {
        self.nodes.subscribe()
    }

    /// Reloads the file if it changed since the last look; whether it did.
    /// Returns `false` at once when another caller is looking right now
    /// (what it loads is published all the same).
    pub fn check(&self) -> bool {
        let Ok(mut version) = self.version.try_lock() else {
            return false;
        };
        let v = FileVersion::of(&self.path);
        if v == *version {
            return false;
        }
        *version = v;
        match StaticEnrichment::from_file(&self.path) {
            Ok(s) => {
                tracing::info!(file = %self.path.display(), "enrichment reloaded");
                self.publish(s);
                true
            }
            Err(e) => {
                tracing::warn!(file = %self.path.display(), error = %e, "enrichment file unreadable; keeping the previous one");
                false
            }
        }
    }

    fn publish(&self, s: StaticEnrichment) {
        let nodes = ClusterNodes::of(&s);
        self.nodes.send_if_modified(|cur| {
            let changed = **cur != nodes;
            if changed {
                *cur = Arc::new(nodes);
            }
            changed
        });
        self.enrichment.send_replace(Arc::new(s));
    }

    /// Looks at the file every `interval` (off the async threads) until
    /// `stop` resolves.
    pub async fn run(self: Arc<Self>, interval: Duration, stop: impl Future<Output = ()>) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = tick.tick() => {}
            }
            let file = Arc::clone(&self);
            let _ = tokio::task::spawn_blocking(move || file.check()).await;
        }
    }
}

/// The decoder's side of the file: at most once per `interval` it looks at
/// the file itself, and it takes up what [`EnrichmentFile::run`] loaded as
/// soon as it is published.
pub(crate) struct EnrichmentReload {
    file: Arc<EnrichmentFile>,
    rx: watch::Receiver<Arc<StaticEnrichment>>,
    last_check: Instant,
}

impl EnrichmentReload {
    pub(crate) fn new(file: Arc<EnrichmentFile>) -> Self {
        let mut rx = file.subscribe();
        rx.mark_unchanged();
        EnrichmentReload {
            file,
            rx,
            last_check: Instant::now(),
        }
    }

    /// The enricher of a newer content: one loaded meanwhile, or found by
    /// looking at the file when at least `interval` has passed since this
    /// decoder last looked.
    pub(crate) fn poll(&mut self, interval: Duration) -> Option<Enricher> {
        if self.last_check.elapsed() >= interval {
            self.last_check = Instant::now();
            self.file.check();
        }
        if !self.rx.has_changed().unwrap_or(false) {
            return None;
        }
        let s = Arc::clone(&self.rx.borrow_and_update());
        Some(Enricher::from_static(s))
    }
}

#[cfg(test)]
pub(crate) mod tests;

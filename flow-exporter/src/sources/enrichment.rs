//! Reloads the static enrichment file when it changes: the datapath agent
//! rewrites it atomically (a new file renamed into place) whenever
//! endpoints or identities change.

use std::path::Path;
use std::sync::Arc;

use flow_parser::{Enricher, StaticEnrichment};

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
pub(crate) struct EnrichmentReload {
    path: std::path::PathBuf,
    last_check: std::cell::Cell<std::time::Instant>,
    /// Modification time, inode and size of the file last loaded: the agent
    /// renames a new file into place, so the inode changes even when two
    /// writes fall within one timestamp tick.
    version: std::cell::Cell<Option<FileVersion>>,
}

impl EnrichmentReload {
    pub(crate) fn new(path: std::path::PathBuf) -> Self {
        let version = FileVersion::of(&path);
        EnrichmentReload {
            path,
            last_check: std::cell::Cell::new(std::time::Instant::now()),
            version: std::cell::Cell::new(version),
        }
    }

    /// Reloads when at least `interval` has passed since the last look
    /// and the file's modification time changed.
    pub(crate) fn poll(&self, interval: std::time::Duration) -> Option<Enricher> {
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

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::defaults;

    /// Puts `contents` in place of `path` as the agent does (a new file
    /// renamed over it), dated `secs` ahead so its time surely differs.
    pub(crate) fn replace(path: &Path, contents: &[u8], secs: u64) {
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
        let past = std::time::Instant::now() - defaults::ENRICHMENT_RELOAD * 2;
        r.last_check.set(past);
        assert!(
            r.poll(defaults::ENRICHMENT_RELOAD).is_none(),
            "unchanged file: nothing to reload"
        );
        // A newer file (the agent renames a new one into place).
        replace(&path, &std::fs::read(src).unwrap(), 5);
        r.last_check.set(past);
        assert!(
            r.poll(defaults::ENRICHMENT_RELOAD).is_some(),
            "changed file is reloaded"
        );
        // A broken file keeps the previous enrichment.
        replace(&path, b"endpoints: [", 10);
        r.last_check.set(past);
        assert!(r.poll(defaults::ENRICHMENT_RELOAD).is_none());
    }
}

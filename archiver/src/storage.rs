//! Where archive files live, behind a small trait: whole-object put, get,
//! list and delete, which a local directory and an object store (S3 and
//! compatible) both offer. A `put` is atomic: readers see the old object or
//! the whole new one, never a partial file.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Errors of a storage backend.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An I/O error on `path`.
    #[error("{op} {path}: {source}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The object.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// An archive store. Paths are `/`-separated and relative to the archive root.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Writes a whole object atomically, replacing any previous one.
    fn put(&self, path: &str, data: &[u8]) -> Result<(), StorageError>;
    /// Reads a whole object; `Ok(None)` when it does not exist.
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StorageError>;
    /// Lists the visible objects under `prefix` (hidden and temporary
    /// objects, whose names start with `.` or `_`, are skipped), sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError>;
    /// Deletes an object (no error when it is already gone).
    fn delete(&self, path: &str) -> Result<(), StorageError>;
    /// A human-readable location for messages.
    fn describe(&self) -> String;
}

/// A local directory. `put` writes a hidden temporary file beside the
/// target, fsyncs it, renames it into place and fsyncs the directory, so a
/// crash leaves either nothing or a complete file (and at most a hidden
/// `.tmp` file, removed by [`LocalDir::remove_temporaries`]).
#[derive(Debug, Clone)]
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    /// A store rooted at `root` (created if missing).
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|source| StorageError::Io {
            op: "create directory",
            path: root.display().to_string(),
            source,
        })?;
        Ok(LocalDir { root })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Removes temporaries a crash may have left; returns how many.
    pub fn remove_temporaries(&self) -> usize {
        let mut n = 0;
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                let name = e.file_name().to_string_lossy().into_owned();
                if p.is_dir() {
                    stack.push(p);
                } else if name.starts_with('.')
                    && name.ends_with(".tmp")
                    && std::fs::remove_file(&p).is_ok()
                {
                    n += 1;
                }
            }
        }
        n
    }

    fn full(&self, path: &str) -> PathBuf {
        self.root.join(path)
    }
}

fn io<'a>(op: &'static str, p: &'a Path) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
    move |source| StorageError::Io {
        op,
        path: p.display().to_string(),
        source,
    }
}

impl Storage for LocalDir {
    fn put(&self, path: &str, data: &[u8]) -> Result<(), StorageError> {
        let target = self.full(path);
        let dir = target.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(io("create directory", &dir))?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let mut f = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
        f.write_all(data).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("fsync", &tmp))?;
        drop(f);
        std::fs::rename(&tmp, &target).map_err(io("rename into place", &target))?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let p = self.full(path);
        match std::fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("read", &p)(e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut out = Vec::new();
        let start = self.full(prefix);
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io("list", &dir)(e)),
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') || name.starts_with('_') {
                    continue;
                }
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(rel) = p.strip_prefix(&self.root) {
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn delete(&self, path: &str) -> Result<(), StorageError> {
        let p = self.full(path);
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("delete", &p)(e)),
        }
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_is_atomic_and_list_skips_hidden() {
        let d = tempfile::tempdir().unwrap();
        let s = LocalDir::new(d.path()).unwrap();
        s.put("dt=2024-05-01/hour=10/a.parquet", b"x").unwrap();
        s.put("_archive/state.json", b"{}").unwrap();
        std::fs::write(
            d.path().join("dt=2024-05-01/hour=10/.b.parquet.1.tmp"),
            b"partial",
        )
        .unwrap();
        assert_eq!(s.list("").unwrap(), ["dt=2024-05-01/hour=10/a.parquet"]);
        assert_eq!(s.get("_archive/state.json").unwrap().unwrap(), b"{}");
        assert_eq!(s.remove_temporaries(), 1);
        assert!(s.get("nope").unwrap().is_none());
    }
}

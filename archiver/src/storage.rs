//! Where archive files live, behind a small trait: whole-object put, get,
//! list and delete, which a local directory ([`LocalDir`], here) and an
//! object store (`crate::object::ObjectStorage`: S3 and compatible, through
//! the `object_store` crate) both offer. A `put` is atomic: readers see the
//! old object or the whole new one, never a partial file.
//!
//! This module knows no backend but [`LocalDir`]: `object` depends on it,
//! never the reverse. [`crate::location`] turns an archive location (a path
//! or `s3://bucket/prefix`, with [`S3Options`]) into a store.

use std::io::{Read as _, Seek as _, Write as _};
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
    /// An object-store request failed on `path` (a full `s3://` URL).
    #[error("{op} {path}: {message}")]
    Object {
        /// The operation.
        op: &'static str,
        /// The object.
        path: String,
        /// What failed (the store's error, with a hint when there is one).
        message: String,
    },
    /// The location cannot be opened (bad URL, missing bucket, unreachable
    /// endpoint, missing directory).
    #[error("archive {location}: {message}")]
    Location {
        /// The location as given.
        location: String,
        /// Why.
        message: String,
    },
}

/// An archive store. Paths are `/`-separated and relative to the archive root.
///
/// The methods are synchronous. They may be called from inside a tokio
/// runtime (the follower calls the writer from a task): backends that block
/// on I/O are expected to, as [`LocalDir`] blocks on the file system;
/// the object-store backend (`crate::object`) runs its requests on its own
/// runtime.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Writes a whole object atomically, replacing any previous one.
    fn put(&self, path: &str, data: &[u8]) -> Result<(), StorageError>;
    /// Reads a whole object; `Ok(None)` when it does not exist.
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StorageError>;
    /// Reads the last `n` bytes of an object (the whole object when it is
    /// shorter); `Ok(None)` when it does not exist. Used to read Parquet
    /// footers without fetching whole files.
    fn get_tail(&self, path: &str, n: u64) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.get(path)?.map(|mut d| {
            let skip = d
                .len()
                .saturating_sub(usize::try_from(n).unwrap_or(usize::MAX));
            d.drain(..skip);
            d
        }))
    }
    /// Lists the visible objects under `prefix` (hidden and temporary
    /// objects, whose names start with `.` or `_`, are skipped), sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError>;
    /// One level under `prefix`: the names of the visible sub-"directories"
    /// (key prefixes) and the visible objects directly in it (full paths, as
    /// [`Storage::list`]), each sorted. Lets a reader prune partitions by
    /// listing only the prefixes it needs.
    fn list_children(&self, prefix: &str) -> Result<(Vec<String>, Vec<String>), StorageError> {
        let base = prefix.trim_matches('/');
        let (mut dirs, mut files) = (Vec::new(), Vec::new());
        for p in self.list(prefix)? {
            let rel = if base.is_empty() {
                p.as_str()
            } else {
                p.strip_prefix(base)
                    .map_or(p.as_str(), |r| r.trim_start_matches('/'))
            };
            match rel.split_once('/') {
                Some((d, _)) => dirs.push(d.to_owned()),
                None => files.push(p.clone()),
            }
        }
        dirs.sort();
        dirs.dedup();
        Ok((dirs, files))
    }
    /// Deletes an object (no error when it is already gone).
    fn delete(&self, path: &str) -> Result<(), StorageError>;
    /// A human-readable location for messages.
    fn describe(&self) -> String;
    /// Warnings from listings since the last call (symbolic links skipped by
    /// a local directory walk), each naming what was skipped and why; none
    /// by default.
    fn take_warnings(&self) -> Vec<String> {
        Vec::new()
    }
    /// The object as a local file, when it is one: readers then read only
    /// the parts they need (the columns of a query) instead of [`Storage::get`].
    fn local_path(&self, _path: &str) -> Option<PathBuf> {
        None
    }
}

/// Settings for `s3://` locations; each unset field falls back to the usual
/// environment variable, read by `object_store` (`AWS_ENDPOINT_URL`,
/// `AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_ALLOW_HTTP`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, ...).
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// Endpoint of an S3-compatible store (MinIO, Ceph, moto, R2, ...), e.g.
    /// `http://127.0.0.1:9000`. Requests use path-style URLs then.
    pub endpoint: Option<String>,
    /// Region (default `us-east-1`).
    pub region: Option<String>,
    /// Allow plain HTTP. Implied by an `http://` endpoint.
    pub allow_http: bool,
    /// Access key id and secret (default: the environment, then the
    /// instance's or container's role).
    pub credentials: Option<(String, String)>,
}

/// A local directory. `put` writes a hidden temporary file beside the
/// target, fsyncs it, renames it into place and fsyncs the directory, so a
/// crash leaves either nothing or a complete file (and at most a hidden
/// `.tmp` file, removed by [`LocalDir::remove_temporaries`]).
///
/// Walks never follow a symbolic link to a directory (so a link back to the
/// root, two links into each other or `/proc/self` cannot loop) and take a
/// link to a file only when the file is inside the archive; every link
/// skipped is reported once by [`Storage::take_warnings`].
#[derive(Debug, Clone)]
pub struct LocalDir {
    root: PathBuf,
    warnings: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl LocalDir {
    /// A store on the existing directory `root`, which is neither created
    /// nor cleaned (a reader's view).
    pub(crate) fn existing(root: PathBuf) -> Self {
        LocalDir {
            root,
            warnings: Default::default(),
        }
    }

    /// A store rooted at `root` (created if missing).
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|source| StorageError::Io {
            op: "create directory",
            path: root.display().to_string(),
            source,
        })?;
        Ok(LocalDir::existing(root))
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Removes temporaries a crash may have left; returns how many. A
    /// temporary whose writer (the pid in its name, `.<name>.<pid>.tmp`) is
    /// still alive is left alone: it is another archiver's (or compaction's)
    /// file in the making, and removing it would fail that writer's rename.
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
                // Not through links: a link may lead out of the archive or round.
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(p);
                } else if name.starts_with('.')
                    && name.ends_with(".tmp")
                    && !temporary_writer(&name).is_some_and(process_alive)
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

    fn warn(&self, msg: String) {
        if let Ok(mut w) = self.warnings.lock()
            && !w.contains(&msg)
        {
            w.push(msg);
        }
    }

    /// Whether the symbolic link `link` (named `rel` in the archive) is a
    /// file to list: a link to a file inside the archive. Links to
    /// directories and out of the archive are skipped with a warning, when
    /// they could matter (a directory, or a name ending in `.parquet`).
    fn follow_file_link(&self, link: &Path, rel: &str) -> bool {
        let target = std::fs::canonicalize(link);
        let is_dir = std::fs::metadata(link).is_ok_and(|m| m.is_dir());
        let inside = match (&target, std::fs::canonicalize(&self.root)) {
            (Ok(t), Ok(root)) => t.starts_with(root),
            _ => false,
        };
        let shown = |t: &std::io::Result<PathBuf>| match t {
            Ok(t) => t.display().to_string(),
            Err(e) => format!("unresolvable: {e}"),
        };
        if is_dir {
            self.warn(format!(
                "skipped symbolic link {rel} -> {}: archive walks do not follow links to directories",
                shown(&target)
            ));
            false
        } else if !inside || target.is_err() {
            if rel.ends_with(".parquet") {
                self.warn(format!(
                    "skipped symbolic link {rel} -> {}: it leads out of the archive",
                    shown(&target)
                ));
            }
            false
        } else {
            true
        }
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

    fn get_tail(&self, path: &str, n: u64) -> Result<Option<Vec<u8>>, StorageError> {
        let p = self.full(path);
        let mut f = match std::fs::File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("open", &p)(e)),
        };
        let len = f.metadata().map_err(io("stat", &p))?.len();
        f.seek(std::io::SeekFrom::Start(len.saturating_sub(n)))
            .map_err(io("seek", &p))?;
        let mut out = Vec::new();
        f.read_to_end(&mut out).map_err(io("read", &p))?;
        Ok(Some(out))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut out = Vec::new();
        let mut stack = vec![prefix.trim_matches('/').to_owned()];
        while let Some(dir) = stack.pop() {
            let (dirs, files) = self.list_children(&dir)?;
            out.extend(files);
            stack.extend(dirs.into_iter().map(|d| match dir.as_str() {
                "" => d,
                _ => format!("{dir}/{d}"),
            }));
        }
        out.sort();
        Ok(out)
    }

    fn list_children(&self, prefix: &str) -> Result<(Vec<String>, Vec<String>), StorageError> {
        let dir = self.full(prefix.trim_matches('/'));
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
            Err(e) => return Err(io("list", &dir)(e)),
        };
        let (mut dirs, mut files) = (Vec::new(), Vec::new());
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name.starts_with('_') {
                continue;
            }
            let p = e.path();
            let Ok(rel) = p.strip_prefix(&self.root) else {
                continue;
            };
            let rel = rel.to_string_lossy().into_owned();
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                dirs.push(name);
            } else if !t.is_symlink() || self.follow_file_link(&p, &rel) {
                files.push(rel);
            }
        }
        dirs.sort();
        files.sort();
        Ok((dirs, files))
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

    fn local_path(&self, path: &str) -> Option<PathBuf> {
        Some(self.full(path))
    }

    fn take_warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }
}

/// The pid in a temporary's name (`.<name>.<pid>.tmp`, as [`LocalDir::put`]
/// writes it).
fn temporary_writer(name: &str) -> Option<i32> {
    let stem = name.strip_suffix(".tmp")?;
    stem.rsplit_once('.')?.1.parse().ok().filter(|&pid| pid > 0)
}

/// Whether a process with this pid exists (signal 0 checks without sending;
/// EPERM means it exists under another user).
fn process_alive(pid: i32) -> bool {
    // SAFETY: kill(2) with signal 0 sends nothing; any pid value is valid.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid no process has: a child that has been waited for.
    fn dead_pid() -> u32 {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        c.wait().unwrap();
        c.id()
    }

    #[test]
    fn a_live_writers_temporary_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let s = LocalDir::new(d.path()).unwrap();
        let live = format!(".a.parquet.{}.tmp", std::process::id());
        let dead = format!(".b.parquet.{}.tmp", dead_pid());
        for n in [&live, &dead, &".c.parquet.tmp".to_owned()] {
            std::fs::write(d.path().join(n), b"partial").unwrap();
        }
        assert_eq!(s.remove_temporaries(), 2);
        assert!(d.path().join(&live).exists());
        assert!(!d.path().join(&dead).exists());
        assert_eq!(temporary_writer(".x.y.123.tmp"), Some(123));
        assert_eq!(temporary_writer(".x.tmp"), None);
    }

    #[test]
    fn put_is_atomic_and_list_skips_hidden() {
        let d = tempfile::tempdir().unwrap();
        let s = LocalDir::new(d.path()).unwrap();
        s.put("dt=2024-05-01/hour=10/a.parquet", b"x").unwrap();
        s.put("_archive/state.json", b"{}").unwrap();
        std::fs::write(
            d.path().join(format!(
                "dt=2024-05-01/hour=10/.b.parquet.{}.tmp",
                dead_pid()
            )),
            b"partial",
        )
        .unwrap();
        assert_eq!(s.list("").unwrap(), ["dt=2024-05-01/hour=10/a.parquet"]);
        assert_eq!(s.get("_archive/state.json").unwrap().unwrap(), b"{}");
        assert_eq!(s.remove_temporaries(), 1);
        assert!(s.get("nope").unwrap().is_none());
        s.put("t", b"0123456789").unwrap();
        assert_eq!(s.get_tail("t", 3).unwrap().unwrap(), b"789");
        assert_eq!(s.get_tail("t", 30).unwrap().unwrap(), b"0123456789");
        assert!(s.get_tail("nope", 3).unwrap().is_none());
    }

    /// Only the required methods: exercises the trait's defaults.
    #[derive(Debug)]
    struct Plain(LocalDir);

    impl Storage for Plain {
        fn put(&self, path: &str, data: &[u8]) -> Result<(), StorageError> {
            self.0.put(path, data)
        }
        fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StorageError> {
            self.0.get(path)
        }
        fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
            self.0.list(prefix)
        }
        fn delete(&self, path: &str) -> Result<(), StorageError> {
            self.0.delete(path)
        }
        fn describe(&self) -> String {
            self.0.describe()
        }
    }

    #[test]
    fn default_methods_agree_with_local_dir() {
        let d = tempfile::tempdir().unwrap();
        let s = Plain(LocalDir::new(d.path()).unwrap());
        for p in [
            "top.parquet",
            "dt=2024-05-01/hour=10/a.parquet",
            "dt=2024-05-01/hour=11/b.parquet",
            "dt=2024-05-02/hour=00/c.parquet",
            "_archive/state.json",
        ] {
            s.put(p, b"0123456789").unwrap();
        }
        for prefix in ["", "dt=2024-05-01", "dt=2024-05-01/hour=10", "nope"] {
            assert_eq!(
                s.list_children(prefix).unwrap(),
                s.0.list_children(prefix).unwrap(),
                "{prefix:?}"
            );
        }
        assert_eq!(s.get_tail("top.parquet", 2).unwrap().unwrap(), b"89");
        assert_eq!(s.get_tail("top.parquet", 99).unwrap().unwrap().len(), 10);
        assert!(s.get_tail("nope", 2).unwrap().is_none());
    }
}

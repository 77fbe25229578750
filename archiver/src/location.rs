//! An archive location, as flags and `hubble observe --archive` name it: a
//! path (`/var/lib/flows`) is a local directory, `s3://bucket/prefix` an S3
//! bucket (endpoint, region and credentials from [`S3Options`] and the usual
//! `AWS_*` variables). [`open`], [`open_with`] and [`open_existing`] turn it
//! into a [`Storage`].
//!
//! The one module that knows every backend: it depends on [`crate::storage`]
//! (the trait, [`LocalDir`]) and [`crate::object`] (S3); neither depends on it.

use std::path::PathBuf;
use std::sync::Arc;

use crate::object::ObjectStorage;
use crate::storage::{LocalDir, S3Options, Storage, StorageError};

/// An archive location: a local directory or an object-store prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory.
    Local(PathBuf),
    /// `s3://bucket/prefix` (`s3a://` is accepted too).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix, without leading or trailing `/` (may be empty).
        prefix: String,
    },
}

impl Location {
    /// Parses a path or an `s3://bucket[/prefix]` URL.
    pub fn parse(location: &str) -> Result<Location, StorageError> {
        let bad = |message: &str| StorageError::Location {
            location: location.to_owned(),
            message: message.to_owned(),
        };
        if location.is_empty() {
            return Err(bad("empty location"));
        }
        let Some((scheme, rest)) = location.split_once("://") else {
            return Ok(Location::Local(PathBuf::from(location)));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "s3" | "s3a" => {}
            "file" => return Ok(Location::Local(PathBuf::from(rest))),
            _ => {
                return Err(bad(&format!(
                    "unsupported scheme {scheme:?}: use a directory path or s3://bucket/prefix"
                )));
            }
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket: use s3://bucket/prefix"));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") {
            return Err(bad("the prefix must not contain empty, '.' or '..' parts"));
        }
        Ok(Location::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

/// Opens an archive for writing (the follower, compaction): a local
/// directory is created if missing and cleared of temporaries an interrupted
/// run left; an `s3://` location is checked (the bucket must exist and be
/// reachable). `S3Options` come from the environment only; see [`open_with`].
pub fn open(location: &str) -> Result<Arc<dyn Storage>, StorageError> {
    open_with(location, &S3Options::default())
}

/// [`open`] with explicit S3 settings (flags override the environment).
pub fn open_with(location: &str, s3: &S3Options) -> Result<Arc<dyn Storage>, StorageError> {
    match Location::parse(location)? {
        Location::Local(dir) => {
            let s = LocalDir::new(dir)?;
            let removed = s.remove_temporaries();
            if removed > 0 {
                tracing::warn!(
                    removed,
                    "removed temporary files left by an interrupted run"
                );
            }
            Ok(Arc::new(s))
        }
        Location::S3 { bucket, prefix } => {
            Ok(Arc::new(ObjectStorage::s3(location, &bucket, &prefix, s3)?))
        }
    }
}

/// Opens an existing archive for reading (`hubble observe --archive`): a
/// local directory must exist (nothing is created or removed); an `s3://`
/// location is checked as by [`open`].
pub fn open_existing(location: &str, s3: &S3Options) -> Result<Arc<dyn Storage>, StorageError> {
    match Location::parse(location)? {
        Location::Local(dir) => {
            if !dir.is_dir() {
                return Err(StorageError::Location {
                    location: location.to_owned(),
                    message: "not a directory (pass flow-archiver's --dir)".into(),
                });
            }
            Ok(Arc::new(LocalDir::existing(dir)))
        }
        Location::S3 { bucket, prefix } => {
            Ok(Arc::new(ObjectStorage::s3(location, &bucket, &prefix, s3)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(
            Location::parse("/var/lib/flows").unwrap(),
            Location::Local("/var/lib/flows".into())
        );
        assert_eq!(
            Location::parse("s3://b/a/b/").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(
            Location::parse("s3://b").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                prefix: String::new()
            }
        );
        for bad in ["gs://b/p", "s3:///p", "s3://b/a/../c", ""] {
            let e = Location::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("archive {bad}:")), "{e}");
        }
    }
}

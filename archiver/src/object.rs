//! The object-store backend: an archive under `s3://bucket/prefix` (Amazon
//! S3 or a compatible store: MinIO, Ceph, R2, moto), through the
//! `object_store` crate.
//!
//! [`Storage`] is synchronous and `object_store` is async. Each
//! [`ObjectStorage`] owns a small tokio runtime (one worker thread) on which
//! every request runs; a call hands its request to that runtime and waits
//! for the answer. Called from a worker of a multi-threaded runtime (the
//! follower), the wait is wrapped in `block_in_place`, so the caller's
//! runtime keeps serving its other tasks; from a current-thread runtime or a
//! plain thread it simply blocks, as local file I/O would.
//!
//! A `put` is one S3 PUT, which is atomic: readers see the previous object
//! or the whole new one. Objects whose name, or the name of a "directory"
//! above them, starts with `.` or `_` are not listed, as in [`LocalDir`].
//!
//! Depends on [`crate::storage`] (the trait) only; [`crate::location`]
//! picks this backend for an `s3://` location.
//!
//! [`LocalDir`]: crate::storage::LocalDir

use std::future::Future;
use std::sync::Arc;

use futures::TryStreamExt as _;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{
    ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt as _, PutPayload, RetryConfig,
};

use crate::defaults::{S3_CONNECT_TIMEOUT, S3_MAX_RETRIES, S3_REQUEST_TIMEOUT, S3_RETRY_TIMEOUT};
use crate::storage::{S3Options, Storage, StorageError};

/// An archive in an object store. See the module docs.
pub struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
    /// The key prefix of the archive root, without trailing `/`.
    prefix: String,
    /// `s3://bucket/prefix`, for messages.
    url: String,
    rt: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for ObjectStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStorage")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Drop for ObjectStorage {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is not allowed inside another
        // runtime; nothing is pending once a call has returned.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// The store's error, with a hint for the usual causes.
fn describe(e: &object_store::Error) -> String {
    let text = e.to_string();
    if text.contains("NoSuchBucket") {
        // The store's XML answer adds nothing to this.
        return "the bucket does not exist (NoSuchBucket)".into();
    }
    let hint = if text.contains("InvalidAccessKeyId")
        || text.contains("SignatureDoesNotMatch")
        || text.contains("AccessDenied")
    {
        " (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
    } else if text.contains("error sending request")
        || text.contains("onnection refused")
        || text.contains("dns error")
        || text.contains("timed out")
    {
        " (is the endpoint reachable? set it with --s3-endpoint or AWS_ENDPOINT_URL)"
    } else {
        ""
    };
    format!("{text}{hint}")
}

impl ObjectStorage {
    /// Opens `s3://bucket/prefix`; `location` is the URL as given, for
    /// messages. Checks that the bucket exists and answers (one listing).
    pub fn s3(
        location: &str,
        bucket: &str,
        prefix: &str,
        opts: &S3Options,
    ) -> Result<ObjectStorage, StorageError> {
        let fail = |message: String| StorageError::Location {
            location: location.to_owned(),
            message,
        };
        // reqwest's rustls takes the process-wide crypto provider: ring, as
        // the rest of the workspace (installing fails harmlessly when one is
        // already installed).
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        // Our timeouts first, then the environment as `from_env` reads it
        // (AWS_* variables, including client settings such as
        // AWS_ALLOW_HTTP), then the explicit options.
        let client = ClientOptions::new()
            .with_connect_timeout(S3_CONNECT_TIMEOUT)
            .with_timeout(S3_REQUEST_TIMEOUT);
        let mut b = AmazonS3Builder::new().with_client_options(client);
        for (key, value) in std::env::vars() {
            if key.starts_with("AWS_")
                && let Ok(k) = key.to_ascii_lowercase().parse()
            {
                b = b.with_config(k, value);
            }
        }
        b = b.with_bucket_name(bucket);
        let endpoint = opts
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .filter(|e| !e.is_empty());
        if let Some(ep) = &endpoint {
            b = b.with_endpoint(ep.trim_end_matches('/'));
        }
        if opts.allow_http || endpoint.as_ref().is_some_and(|e| e.starts_with("http://")) {
            b = b.with_allow_http(true);
        }
        if let Some(r) = &opts.region {
            b = b.with_region(r);
        }
        if let Some((id, secret)) = &opts.credentials {
            b = b.with_access_key_id(id).with_secret_access_key(secret);
        }
        let retry = RetryConfig {
            max_retries: S3_MAX_RETRIES,
            retry_timeout: S3_RETRY_TIMEOUT,
            ..RetryConfig::default()
        };
        let store = b
            .with_retry(retry)
            .build()
            .map_err(|e| fail(describe(&e)))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("archive-store")
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start the object-store runtime: {e}")))?;
        let prefix = prefix.trim_matches('/').to_owned();
        let url = if prefix.is_empty() {
            format!("s3://{bucket}")
        } else {
            format!("s3://{bucket}/{prefix}")
        };
        let s = ObjectStorage {
            store: Arc::new(store),
            prefix,
            url,
            rt: Some(rt),
        };
        // One listing: a missing bucket, bad credentials or an unreachable
        // endpoint fail here, naming the location, not at the first write.
        let store = s.store.clone();
        let root = s.key("");
        s.block(async move {
            let root = (!root.as_ref().is_empty()).then_some(root);
            store.list_with_delimiter(root.as_ref()).await.map(|_| ())
        })
        .map_err(|e| {
            let endpoint = endpoint.map(|e| format!(" at {e}")).unwrap_or_default();
            fail(format!(
                "cannot list the bucket{endpoint}: {}",
                describe(&e)
            ))
        })?;
        Ok(s)
    }

    /// The store's key of an archive path.
    fn key(&self, path: &str) -> Path {
        let path = path.trim_matches('/');
        match (self.prefix.is_empty(), path.is_empty()) {
            (true, _) => Path::from(path),
            (false, true) => Path::from(self.prefix.as_str()),
            (false, false) => Path::from(format!("{}/{path}", self.prefix)),
        }
    }

    fn url_of(&self, path: &str) -> String {
        format!("{}/{}", self.url, path.trim_start_matches('/'))
    }

    fn err(&self, op: &'static str, path: &str, e: &object_store::Error) -> StorageError {
        StorageError::Object {
            op,
            path: self.url_of(path),
            message: describe(e),
        }
    }

    /// Runs `f` on the store's runtime and waits for it (see the module docs).
    fn block<T: Send + 'static>(&self, f: impl Future<Output = T> + Send + 'static) -> T {
        let Some(rt) = self.rt.as_ref() else {
            unreachable!("the runtime lives until drop")
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(f.await);
        });
        let wait = move || rx.recv();
        let r = match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            _ => wait(),
        };
        match r {
            Ok(v) => v,
            // The task panicked (the sender was dropped without a value).
            Err(_) => panic!("object-store request for {} panicked", self.url),
        }
    }
}

/// Whether any part of a relative path is hidden or temporary.
fn hidden(rel: &str) -> bool {
    rel.split('/')
        .any(|p| p.starts_with('.') || p.starts_with('_'))
}

impl Storage for ObjectStorage {
    fn put(&self, path: &str, data: &[u8]) -> Result<(), StorageError> {
        let store = self.store.clone();
        let key = self.key(path);
        let payload = PutPayload::from(bytes::Bytes::copy_from_slice(data));
        self.block(async move { store.put(&key, payload).await.map(|_| ()) })
            .map_err(|e| self.err("put", path, &e))
    }

    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let store = self.store.clone();
        let key = self.key(path);
        let r = self.block(async move {
            match store.get(&key).await {
                Ok(g) => g.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        });
        r.map(|b| b.map(|b| b.to_vec()))
            .map_err(|e| self.err("get", path, &e))
    }

    fn get_tail(&self, path: &str, n: u64) -> Result<Option<Vec<u8>>, StorageError> {
        if n == 0 {
            return Ok(self.get(path)?.map(|_| Vec::new()));
        }
        let store = self.store.clone();
        let key = self.key(path);
        let r = self.block(async move {
            let opts = GetOptions::new().with_range(Some(GetRange::Suffix(n)));
            match store.get_opts(&key, opts).await {
                Ok(g) => g.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        });
        r.map(|b| b.map(|b| b.to_vec()))
            .map_err(|e| self.err("get", path, &e))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let store = self.store.clone();
        let key = self.key(prefix);
        let root = self.key("");
        let metas = self
            .block(async move {
                let list = if key.as_ref().is_empty() {
                    store.list(None)
                } else {
                    store.list(Some(&key))
                };
                list.try_collect::<Vec<_>>().await
            })
            .map_err(|e| self.err("list", prefix, &e))?;
        let root = root.as_ref();
        let below = prefix.trim_matches('/');
        let mut out: Vec<String> = metas
            .into_iter()
            .filter_map(|m| {
                let full = m.location.as_ref();
                let rel = if root.is_empty() {
                    full
                } else {
                    full.strip_prefix(root)?.strip_prefix('/')?
                };
                // Hidden parts count below the listed prefix only, as in
                // LocalDir.
                let under = if below.is_empty() {
                    rel
                } else {
                    rel.strip_prefix(below)?.trim_start_matches('/')
                };
                (!hidden(under)).then(|| rel.to_owned())
            })
            .collect();
        out.sort();
        Ok(out)
    }

    fn list_children(&self, prefix: &str) -> Result<(Vec<String>, Vec<String>), StorageError> {
        let store = self.store.clone();
        let key = self.key(prefix);
        let root = self.key("");
        let listing = self
            .block(async move {
                if key.as_ref().is_empty() {
                    store.list_with_delimiter(None).await
                } else {
                    store.list_with_delimiter(Some(&key)).await
                }
            })
            .map_err(|e| self.err("list", prefix, &e))?;
        let visible = |name: &str| !(name.starts_with('.') || name.starts_with('_'));
        let mut dirs: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .filter(|n| visible(n))
            .collect();
        let root = root.as_ref();
        let mut files: Vec<String> = listing
            .objects
            .iter()
            .filter(|m| m.location.filename().is_some_and(visible))
            .filter_map(|m| {
                let full = m.location.as_ref();
                if root.is_empty() {
                    Some(full.to_owned())
                } else {
                    full.strip_prefix(root)?
                        .strip_prefix('/')
                        .map(str::to_owned)
                }
            })
            .collect();
        dirs.sort();
        files.sort();
        Ok((dirs, files))
    }

    fn delete(&self, path: &str) -> Result<(), StorageError> {
        let store = self.store.clone();
        let key = self.key(path);
        self.block(async move {
            match store.delete(&key).await {
                Err(object_store::Error::NotFound { .. }) => Ok(()),
                r => r,
            }
        })
        .map_err(|e| self.err("delete", path, &e))
    }

    fn describe(&self) -> String {
        self.url.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::hidden;

    #[test]
    fn hidden_parts() {
        assert!(hidden("_archive/state.json"));
        assert!(hidden("dt=2024-05-01/hour=10/.a.parquet.1.tmp"));
        assert!(!hidden("dt=2024-05-01/hour=10/a.parquet"));
    }
}

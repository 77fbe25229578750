//! What the store's synchronous methods and its tasks share: the mirror,
//! the table of this node's own keys, the status, the lease and client,
//! and the notifications between them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::{Notify, watch};

use super::config::KvstoreConfig;
use super::mirror::Mirror;
use crate::agent::store::{StoreError, StoreStatus, write_atomic};
use crate::policy::Policy;
use crate::policy::identity::{IdentityAllocator, LabelSet};

/// The tracing target of the store's log lines.
pub(super) const LOG_TARGET: &str = "datapath::kvstore";

/// One of this node's keys.
#[derive(Debug, Clone)]
pub(super) struct Own {
    /// `None`: to be deleted.
    pub(super) value: Option<String>,
    /// Attached to the node's lease.
    pub(super) leased: bool,
    /// Bumped on every change, so a write that raced a newer one does not
    /// mark it written.
    pub(super) seq: u64,
    pub(super) written: bool,
}

/// What the store's methods and tasks share.
pub(super) struct Inner {
    pub(super) mirror: Mirror,
    pub(super) own: BTreeMap<String, Own>,
    /// Cluster identities this node references (to restore them if they
    /// vanish).
    pub(super) own_ids: BTreeMap<u32, LabelSet>,
    /// Node-local (CIDR) identities.
    pub(super) local_ids: IdentityAllocator,
    pub(super) local_policies: BTreeMap<String, Vec<Policy>>,
    pub(super) status: StoreStatus,
    pub(super) lease: i64,
    pub(super) client: Option<etcd_client::Client>,
    pub(super) seq: u64,
    /// When each unreferenced identity was first seen unreferenced.
    pub(super) unref_since: BTreeMap<u32, Instant>,
}

pub(super) struct Shared {
    pub(super) cfg: KvstoreConfig,
    pub(super) node: String,
    pub(super) prefix: String,
    pub(super) cache_path: PathBuf,
    pub(super) inner: Mutex<Inner>,
    pub(super) changes: watch::Sender<u64>,
    /// Own keys to write: the session flushes them.
    pub(super) kick: Notify,
    /// The mirror changed: the cache writer rewrites the cache.
    pub(super) dirty: Notify,
    /// One flush at a time (writes of a key stay in order).
    pub(super) flush_lock: tokio::sync::Mutex<()>,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn unavailable(&self, op: &str, reason: impl Into<String>) -> StoreError {
        StoreError::Unavailable {
            endpoints: self.cfg.endpoints_str(),
            op: op.to_string(),
            reason: reason.into(),
        }
    }

    pub(super) fn bump(&self) {
        self.changes.send_modify(|c| *c += 1);
    }

    pub(super) fn write_cache(&self) {
        let snap = self.lock().mirror.snapshot();
        let json = serde_json::to_vec(&snap).expect("snapshot serializes");
        if let Err(e) = write_atomic(&self.cache_path, &json) {
            tracing::warn!(target: LOG_TARGET, path = %self.cache_path.display(), error = %e, "cluster cache not written");
        }
    }
}

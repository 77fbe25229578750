//! The distributed cluster-state store: [`EtcdStore`], the
//! [`ClusterStore`] on a real etcd (v3 API through `etcd-client`; no
//! home-made consensus), selected by the agent's `--kvstore etcd
//! --kvstore-endpoints http://127.0.0.1:2379[,..]` ([`KvstoreConfig`]).
//!
//! # Key layout
//!
//! Every key lives under `/datapath/<cluster>/`:
//!
//! | key | value | lease |
//! |---|---|---|
//! | `nodes/<name>` | JSON [`NodeRecord`] | the node's |
//! | `identities/id/<N>` | JSON list of the labels of identity N | none |
//! | `identities/labels/<l1;l2;...;>` | `N` (decimal) | none |
//! | `identities/refs/<N>/<node>` | empty: `node` uses identity N | the node's |
//! | `ipcache/<addr>/<len>` | JSON [`IpcacheEntry`] | the writer's |
//! | `endpoints/<node>/<ep_id>` | JSON [`EndpointRecord`] | the node's |
//! | `policies/<name>` | CiliumNetworkPolicy YAML (one or more documents) | none |
//! | `services/<ns>/<name>` | the Service's YAML (and its EndpointSlices) | none |
//!
//! - **Liveness**: each store holds one lease (TTL 15 s, renewed every
//!   TTL/3); a node that dies takes its record, endpoints, ipcache entries
//!   and identity references with it when the lease expires.
//! - **Identities** of label sets are cluster-wide, in
//!   `[MIN_USER, CIDR_BASE)`: the same labels get the same number on every
//!   node. A new number is taken by a Txn that requires both
//!   `identities/id/<N>` and `identities/labels/<labels>` to be absent
//!   (create_revision 0) and writes them with this node's reference; on
//!   conflict the next candidate is tried, or the winner's number is used.
//!   Identities of CIDRs are node-local and never in etcd. Every agent
//!   deletes identities that nobody has referenced for the GC grace (60 s),
//!   with a Txn that checks the identity is unchanged and still
//!   unreferenced. A node drops its reference when its last endpoint of that
//!   identity goes, or on [`ClusterStore::release_identity`].
//! - **Policies** under `policies/` are parsed by every agent; a malformed
//!   value is rejected ([`ClusterStore::policy_rejections`], name and
//!   reason) and the key's previous valid version stays in force. The
//!   policy directory of a node stays node-local ([`ClusterStore::set_policies`]).
//! - **Services** under `services/` are kept as text; every agent parses
//!   them (`agent::services`) and keeps an invalid entry's previous
//!   version in force, as for policies.
//!
//! # Behaviour
//!
//! An in-memory mirror of every key of the prefix, filled by a Get and
//! kept by one Watch from the next revision, serves every read: with etcd
//! unreachable the agent keeps forwarding with the last known state. The
//! node's own keys (its record, endpoints, ipcache entries, identity
//! references) are kept in an "own keys" table, applied to the mirror at
//! once and written to etcd with a timeout; a failed write is counted and
//! retried on reconnect, which takes a new lease if the old one expired,
//! re-puts every own key, re-reads everything (deletions noticed) and bumps
//! [`ClusterStore::subscribe`]. A *new* identity and cluster policy writes
//! need etcd. The mirror is also cached in `<state dir>/cluster-cache.json`,
//! so an agent starts (degraded) from it when etcd is unreachable.
//!
//! The trait is synchronous; the store owns a small tokio runtime for the
//! client, the watch, the keep-alive and GC, and its methods wait for that
//! runtime's answers through std channels (any thread, any runtime).

mod config;
mod mirror;
mod session;
mod shared;

pub use config::{InvalidFlag, KvstoreConfig};

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::agent::store::{
    ClusterStore, EndpointRecord, IpcacheEntry, NodeRecord, StoreError, StoreResult, StoreStatus,
    cidr_conflict, now_unix,
};
use crate::defaults;
use crate::policy::cidr::Cidr;
use crate::policy::identity::{self, IdentityAllocator, LabelSet, Scope};
use crate::policy::{self, Policy};

use mirror::{Key, Mirror, Snapshot, Value};

use shared::{Inner, LOG_TARGET, Own, Shared};

/// The etcd-backed [`ClusterStore`] (module documentation: key layout and
/// behaviour). Dropping it stops its tasks without revoking the lease (as a
/// crash would: the node's keys expire after the TTL unless a restarted
/// agent re-puts them); [`EtcdStore::leave`] revokes it.
pub struct EtcdStore {
    shared: Arc<Shared>,
    rt: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.shared.cfg.endpoints)
            .field("node", &self.shared.node)
            .finish()
    }
}

impl EtcdStore {
    /// Connects to etcd as node `node_name`, loads the cluster state and
    /// starts the watch, the keep-alive and GC. With etcd unreachable: a
    /// degraded start from `<state_dir>/cluster-cache.json` if present
    /// (connecting in the background), else an error naming the endpoints.
    pub fn connect(cfg: KvstoreConfig, node_name: &str, state_dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(state_dir).map_err(|source| StoreError::Io {
            op: "create state dir",
            path: state_dir.to_path_buf(),
            source,
        })?;
        let cache_path = state_dir.join(defaults::KVSTORE_CACHE_FILE);
        let cache = read_cache(&cache_path);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(defaults::KVSTORE_RUNTIME_THREADS)
            .thread_name("kvstore")
            .enable_all()
            .build()
            .map_err(|source| StoreError::Io {
                op: "start the kvstore runtime for",
                path: cache_path.clone(),
                source,
            })?;
        let mirror = cache
            .as_ref()
            .map(|s| Mirror::rebuild(None, s.revision, s.kvs.clone()))
            .unwrap_or_default();
        let shared = Arc::new(Shared {
            prefix: cfg.prefix(),
            node: node_name.to_string(),
            cache_path,
            inner: Mutex::new(Inner {
                mirror,
                own: BTreeMap::new(),
                own_ids: BTreeMap::new(),
                local_ids: IdentityAllocator::new(),
                local_policies: BTreeMap::new(),
                status: StoreStatus {
                    backend: "etcd".into(),
                    endpoints: cfg.endpoints.clone(),
                    since_unix: now_unix(),
                    ..StoreStatus::default()
                },
                lease: 0,
                client: None,
                seq: 0,
                unref_since: BTreeMap::new(),
            }),
            changes: watch::Sender::new(0),
            kick: Notify::new(),
            dirty: Notify::new(),
            flush_lock: tokio::sync::Mutex::new(()),
            cfg,
        });
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(session::run(shared.clone(), tx));
        rt.spawn(session::cache_writer(shared.clone()));
        let wait = shared.cfg.dial_timeout + shared.cfg.op_timeout * 4;
        let first = rx
            .recv_timeout(wait)
            .unwrap_or_else(|_| Err(format!("no answer within {wait:?}")));
        let store = Self {
            shared,
            rt: Some(rt),
        };
        if let Err(reason) = first {
            if cache.is_none() {
                return Err(store.shared.unavailable("connect", reason));
            }
            tracing::warn!(target: LOG_TARGET, endpoints = %store.shared.cfg.endpoints_str(), error = %reason,
                cache = %store.shared.cache_path.display(), "etcd unreachable: degraded start from the cluster cache, connecting in the background");
            store.shared.lock().status.last_error =
                Some(format!("degraded start from the cluster cache: {reason}"));
        }
        store.adopt_own_keys();
        Ok(store)
    }

    /// Takes over the keys an earlier run of this node left in the store
    /// (its endpoints, their ipcache entries, its identity references):
    /// they hang on that run's lease, which expires one TTL after it
    /// stopped, so they are written again under this run's lease (now, or
    /// at the next connect). Without this, a restarted agent's pods would
    /// vanish from every other node's ipcache one TTL after the restart.
    fn adopt_own_keys(&self) {
        let adopted = {
            let mut i = self.shared.lock();
            let node = self.shared.node.clone();
            let mut keys: Vec<String> = Vec::new();
            let mut ids = Vec::new();
            let mut ips = std::collections::BTreeSet::new();
            for ((n, ep_id), e) in &i.mirror.endpoints {
                if *n == node {
                    keys.push(Key::Endpoint(n.clone(), *ep_id).path());
                    ips.insert(e.ip);
                }
            }
            for prefix in i.mirror.ipcache.keys() {
                if prefix.len == 32 && ips.contains(&prefix.addr) {
                    keys.push(Key::Ipcache(*prefix).path());
                }
            }
            for (id, nodes) in &i.mirror.refs {
                if nodes.contains(&node) {
                    keys.push(Key::IdentityRef(*id, node.clone()).path());
                    if let Some(labels) = i.mirror.ids.get(id) {
                        ids.push((*id, labels.clone()));
                    }
                }
            }
            for (id, labels) in ids {
                i.own_ids.insert(id, labels);
            }
            let mut n = 0;
            for k in keys {
                let Some(v) = i.mirror.raw.get(&k).map(|v| v.text.clone()) else {
                    continue;
                };
                if i.own.contains_key(&k) {
                    continue;
                }
                i.seq += 1;
                let seq = i.seq;
                i.own.insert(
                    k,
                    Own {
                        value: Some(v),
                        leased: true,
                        seq,
                        written: false,
                    },
                );
                n += 1;
            }
            n
        };
        if adopted == 0 {
            return;
        }
        tracing::info!(target: LOG_TARGET, keys = adopted, "re-claiming this node's keys under the new lease");
        if self.shared.lock().status.connected {
            let shared = self.shared.clone();
            if let Err(e) = self.call(self.shared.cfg.op_timeout, async move {
                session::flush(&shared).await
            }) {
                tracing::warn!(target: LOG_TARGET, error = %e, "re-claiming keys failed; retried on reconnect");
            }
        }
    }

    /// Leaves the cluster cleanly: revokes the lease, which deletes this
    /// node's record, endpoints, ipcache entries and identity references.
    pub fn leave(self) -> StoreResult<()> {
        let (client, lease) = {
            let i = self.shared.lock();
            (i.client.clone(), i.lease)
        };
        let Some(mut client) = client.filter(|_| lease != 0) else {
            return Err(self.shared.unavailable("leave", "not connected"));
        };
        let t = self.shared.cfg.op_timeout;
        self.call(t, async move {
            tokio::time::timeout(t, client.lease_revoke(lease))
                .await
                .map_err(|_| "timed out".to_string())?
                .map_err(|e| e.to_string())
                .map(|_| ())
        })
        .map_err(|r| self.shared.unavailable("leave", r))
    }

    /// Runs `fut` on the store's runtime and waits for its answer (at most
    /// `limit`, plus a little for scheduling); `None` when none came.
    fn run<T: Send + 'static>(
        &self,
        limit: Duration,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.rt
            .as_ref()
            .expect("runtime lives as long as the store")
            .spawn(async move {
                let _ = tx.send(fut.await);
            });
        rx.recv_timeout(limit + Duration::from_millis(500)).ok()
    }

    /// [`run`](Self::run) for fallible work, a missing answer as an error.
    fn call<T: Send + 'static>(
        &self,
        limit: Duration,
        fut: impl Future<Output = Result<T, String>> + Send + 'static,
    ) -> Result<T, String> {
        self.run(limit, fut)
            .unwrap_or_else(|| Err(format!("no answer within {limit:?}")))
    }

    /// Records a change of one of this node's keys, applies it to the
    /// mirror and writes it to etcd (a failure is counted and retried on
    /// reconnect, not returned: the node keeps working).
    fn write_own(&self, key: &Key, value: Option<String>, leased: bool) {
        let path = key.path();
        let connected = {
            let mut i = self.shared.lock();
            i.seq += 1;
            let seq = i.seq;
            match &value {
                Some(v) => {
                    i.mirror.put(
                        &path,
                        Value {
                            text: v.clone(),
                            mod_rev: 0,
                        },
                    );
                }
                None => {
                    i.mirror.delete(&path);
                }
            }
            i.own.insert(
                path.clone(),
                Own {
                    value,
                    leased,
                    seq,
                    written: false,
                },
            );
            i.status.connected
        };
        self.shared.dirty.notify_one();
        if !connected {
            let mut i = self.shared.lock();
            i.status.failed_ops += 1;
            tracing::debug!(target: LOG_TARGET, key = %path, "etcd unreachable: write kept for the resync");
            return;
        }
        let shared = self.shared.clone();
        let r = self.call(self.shared.cfg.op_timeout, async move {
            session::flush(&shared).await
        });
        if let Err(e) = r {
            tracing::warn!(target: LOG_TARGET, key = %path, error = %e, "etcd write failed; retried at the next keep-alive or reconnect");
            let mut i = self.shared.lock();
            i.status.failed_ops += 1;
            i.status.last_error = Some(format!("write {path}: {e}"));
            drop(i);
            self.shared.kick.notify_one();
        }
    }

    /// A write outside the node's own keys (cluster policies, another
    /// node's record): needs etcd now. Whether the key existed (deletes) or
    /// `true` (puts).
    /// A cluster-wide write (a policy) made while etcd is unreachable:
    /// in force on this node at once (the mirror), written on reconnect
    /// (once: unlike the node's own leased keys it is not re-put at later
    /// resyncs, so a newer change by another node wins), counted in
    /// `pending_writes`. `false` when connected (write it directly).
    fn queue_while_disconnected(&self, key: &Key, value: Option<String>) -> bool {
        if self.shared.lock().status.connected {
            return false;
        }
        tracing::warn!(target: LOG_TARGET, key = %key.path(), "etcd unreachable: cluster write in force here now, written to etcd on reconnect");
        self.write_own(key, value, false);
        true
    }

    fn direct(&self, what: &str, rel_key: &str, value: Option<String>) -> StoreResult<bool> {
        if !self.shared.lock().status.connected {
            return Err(self.shared.unavailable(what, "not connected"));
        }
        let fut = session::direct(self.shared.clone(), rel_key.to_string(), value.clone());
        let r = self.call(self.shared.cfg.op_timeout, fut);
        let mut i = self.shared.lock();
        match r {
            Ok((existed, rev)) => {
                i.status.ops += 1;
                match value {
                    Some(text) => {
                        i.mirror.put(rel_key, Value { text, mod_rev: rev });
                    }
                    None => {
                        i.mirror.delete(rel_key);
                    }
                }
                drop(i);
                self.shared.dirty.notify_one();
                Ok(existed)
            }
            Err(e) => {
                i.status.failed_ops += 1;
                drop(i);
                Err(self.shared.unavailable(what, e))
            }
        }
    }

    /// Whether one of this node's endpoints still has identity `id`. Asked
    /// of the own-keys table (what this node wants in the store), not the
    /// mirror: a watch event that lags behind this node's own writes (the
    /// PUT of an endpoint just deleted here) must not keep a reference alive.
    fn own_node_uses(&self, id: u32) -> bool {
        let prefix = format!("endpoints/{}/", self.shared.node);
        self.shared.lock().own.iter().any(|(k, o)| {
            k.starts_with(&prefix)
                && o.value
                    .as_deref()
                    .and_then(|v| serde_json::from_str::<EndpointRecord>(v).ok())
                    .is_some_and(|e| e.identity == id)
        })
    }

    fn take_ref(&self, id: u32, labels: &LabelSet) {
        let had = self
            .shared
            .lock()
            .own_ids
            .insert(id, labels.clone())
            .is_some();
        if !had {
            self.write_own(
                &Key::IdentityRef(id, self.shared.node.clone()),
                Some(String::new()),
                true,
            );
        }
    }
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        self.shared.write_cache();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn read_cache(path: &Path) -> Option<Snapshot> {
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(target: LOG_TARGET, path = %path.display(), error = %e, "cluster cache unreadable, ignored");
            None
        }
    }
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("record serializes")
}

impl ClusterStore for EtcdStore {
    fn allocate_identity(&mut self, labels: &LabelSet) -> StoreResult<u32> {
        let cidr = labels.iter().any(|l| l.starts_with("cidr:"));
        let reserved = labels.len() == 1
            && labels
                .first()
                .and_then(|l| l.strip_prefix("reserved:"))
                .and_then(identity::reserved_id)
                .is_some();
        if cidr || reserved {
            return Ok(self.shared.lock().local_ids.try_allocate(labels)?);
        }
        let known = self.shared.lock().mirror.by_labels.get(labels).copied();
        if let Some(id) = known {
            self.take_ref(id, labels);
            return Ok(id);
        }
        if !self.shared.lock().status.connected {
            return Err(self
                .shared
                .unavailable("allocate a new identity", "not connected"));
        }
        let shared = self.shared.clone();
        let l = labels.clone();
        let limit = self.shared.cfg.op_timeout * 4;
        let r = self
            .run(limit, async move {
                tokio::time::timeout(limit, session::allocate(&shared, l))
                    .await
                    .unwrap_or_else(|_| Err(session::AllocError::Etcd("timed out".into())))
            })
            .unwrap_or_else(|| Err(session::AllocError::Etcd("no answer".into())));
        match r {
            Ok(id) => {
                self.shared.lock().own_ids.insert(id, labels.clone());
                Ok(id)
            }
            Err(session::AllocError::Exhausted(e)) => Err(StoreError::Identity(e)),
            Err(session::AllocError::Etcd(e)) => {
                self.shared.lock().status.failed_ops += 1;
                Err(self.shared.unavailable("allocate a new identity", e))
            }
        }
    }

    fn release_identity(&mut self, id: u32) -> StoreResult<bool> {
        if identity::scope(id) != Scope::Cluster {
            return Ok(self.shared.lock().local_ids.release(id));
        }
        if self.shared.lock().own_ids.remove(&id).is_none() {
            return Ok(false);
        }
        self.write_own(&Key::IdentityRef(id, self.shared.node.clone()), None, true);
        Ok(true)
    }

    fn identities(&self) -> StoreResult<IdentityAllocator> {
        let i = self.shared.lock();
        let mut ids = i.mirror.ids.clone();
        ids.extend(i.local_ids.allocated().iter().map(|(k, v)| (*k, v.clone())));
        Ok(IdentityAllocator::from_allocated(ids))
    }

    fn upsert_ipcache(&mut self, prefix: Cidr, entry: IpcacheEntry) -> StoreResult<()> {
        if self.shared.lock().mirror.ipcache.get(&prefix) != Some(&entry) {
            self.write_own(&Key::Ipcache(prefix), Some(json(&entry)), true);
        }
        Ok(())
    }

    fn remove_ipcache(&mut self, prefix: Cidr) -> StoreResult<bool> {
        let had = self.shared.lock().mirror.ipcache.contains_key(&prefix);
        if had {
            self.write_own(&Key::Ipcache(prefix), None, true);
        }
        Ok(had)
    }

    fn ipcache(&self) -> StoreResult<BTreeMap<Cidr, IpcacheEntry>> {
        Ok(self.shared.lock().mirror.ipcache.clone())
    }

    fn set_policies(&mut self, source: &str, policies: Vec<Policy>) -> StoreResult<()> {
        self.shared
            .lock()
            .local_policies
            .insert(source.to_string(), policies);
        Ok(())
    }

    fn policies(&self) -> StoreResult<Vec<Policy>> {
        let i = self.shared.lock();
        Ok(i.local_policies
            .values()
            .chain(i.mirror.policies.values())
            .flatten()
            .cloned()
            .collect())
    }

    fn put_cluster_policy(&mut self, name: &str, yaml: &str) -> StoreResult<()> {
        let invalid = |reason: String| StoreError::InvalidPolicy {
            name: name.to_string(),
            reason,
        };
        if name.is_empty() || name.contains(['/', '\0']) {
            return Err(invalid(
                "a policy name must be non-empty without '/'".into(),
            ));
        }
        policy::parse_str(name, yaml).map_err(|e| invalid(e.to_string()))?;
        let key = Key::Policy(name.to_string());
        if self.queue_while_disconnected(&key, Some(yaml.to_string())) {
            return Ok(());
        }
        self.direct(
            "store a cluster policy",
            &key.path(),
            Some(yaml.to_string()),
        )?;
        Ok(())
    }

    fn delete_cluster_policy(&mut self, name: &str) -> StoreResult<bool> {
        let key = Key::Policy(name.to_string());
        let existed = self.shared.lock().mirror.policies.contains_key(name);
        if existed && self.queue_while_disconnected(&key, None) {
            return Ok(true);
        }
        self.direct("delete a cluster policy", &key.path(), None)
    }

    fn policy_rejections(&self) -> Vec<(String, String)> {
        self.shared
            .lock()
            .mirror
            .rejections
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn put_cluster_service(&mut self, key: &str, yaml: &str) -> StoreResult<()> {
        crate::agent::store::check_service_key(key)?;
        let k = Key::Service(key.to_string());
        if self.queue_while_disconnected(&k, Some(yaml.to_string())) {
            return Ok(());
        }
        self.direct("store a cluster service", &k.path(), Some(yaml.to_string()))?;
        Ok(())
    }

    fn delete_cluster_service(&mut self, key: &str) -> StoreResult<bool> {
        let k = Key::Service(key.to_string());
        let existed = self.shared.lock().mirror.raw.contains_key(&k.path());
        if existed && self.queue_while_disconnected(&k, None) {
            return Ok(true);
        }
        self.direct("delete a cluster service", &k.path(), None)
    }

    fn cluster_services(&self) -> StoreResult<BTreeMap<String, String>> {
        Ok(self
            .shared
            .lock()
            .mirror
            .raw
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("services/")
                    .map(|k| (k.to_string(), v.text.clone()))
            })
            .collect())
    }

    fn register_node(&mut self, mut node: NodeRecord) -> StoreResult<()> {
        cidr_conflict(&node, self.shared.lock().mirror.nodes.values())?;
        if node.heartbeat_unix.is_none() {
            node.heartbeat_unix = Some(now_unix());
        }
        self.write_own(&Key::Node(node.name.clone()), Some(json(&node)), true);
        Ok(())
    }

    fn nodes(&self) -> StoreResult<Vec<NodeRecord>> {
        Ok(self.shared.lock().mirror.nodes.values().cloned().collect())
    }

    fn deregister_node(&mut self, name: &str) -> StoreResult<()> {
        let key = Key::Node(name.to_string());
        let own = name == self.shared.node || self.shared.lock().own.contains_key(&key.path());
        if own {
            self.write_own(&key, None, true);
        } else {
            self.direct("deregister a node", &key.path(), None)?;
        }
        Ok(())
    }

    fn upsert_endpoint(&mut self, ep: EndpointRecord) -> StoreResult<()> {
        let k = (ep.node.clone(), ep.ep_id);
        if self.shared.lock().mirror.endpoints.get(&k) != Some(&ep) {
            self.write_own(&Key::Endpoint(k.0, k.1), Some(json(&ep)), true);
        }
        Ok(())
    }

    fn remove_endpoint(&mut self, node: &str, ep_id: u16) -> StoreResult<Option<EndpointRecord>> {
        let k = (node.to_string(), ep_id);
        let Some(ep) = self.shared.lock().mirror.endpoints.get(&k).cloned() else {
            return Ok(None);
        };
        self.write_own(&Key::Endpoint(k.0, k.1), None, true);
        // The node's last endpoint of an identity drops its reference (GC
        // deletes the identity once nobody references it).
        if node == self.shared.node
            && identity::scope(ep.identity) == Scope::Cluster
            && !self.own_node_uses(ep.identity)
        {
            self.release_identity(ep.identity)?;
        }
        Ok(Some(ep))
    }

    fn endpoints(&self) -> StoreResult<Vec<EndpointRecord>> {
        Ok(self
            .shared
            .lock()
            .mirror
            .endpoints
            .values()
            .cloned()
            .collect())
    }

    fn status(&self) -> StoreStatus {
        let i = self.shared.lock();
        StoreStatus {
            pending_writes: i.own.values().filter(|o| !o.written).count(),
            ..i.status.clone()
        }
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }
}

//! The cluster-state store (ARCHITECTURE.md, process model): what nodes must share
//! (identities, ipcache, policies, node registry, endpoints) behind one
//! interface, [`ClusterStore`], with [`FileStore`], the single-node
//! implementation that persists everything to one JSON file (written
//! aside, then renamed, on every change). A distributed implementation
//! (etcd, [`crate::agent::kvstore::EtcdStore`]) plugs in behind the same
//! trait.
//!
//! Policies come from two kinds of sources: node-local ones
//! ([`ClusterStore::set_policies`]: the policy directory, never shared) and
//! cluster-wide ones ([`ClusterStore::put_cluster_policy`]: YAML text under
//! a name, shared by every node of an etcd-backed cluster).
//!
//! The state file lives in a normal directory (under /run by default):
//! bpffs cannot hold regular files.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::policy::cidr::Cidr;
use crate::policy::identity::{IdentityAllocator, IdentityError, LabelSet};
use crate::policy::{NamedPort, Policy};

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing the state failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The state file is not valid.
    #[error("state file {path} is corrupt: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// No identity could be allocated.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// A cluster policy is not valid; the previous version stays in force.
    #[error("policy {name} rejected: {reason}")]
    InvalidPolicy {
        /// The policy's name in the store.
        name: String,
        /// Why (the parser's message).
        reason: String,
    },
    /// A cluster service entry is not valid.
    #[error("service {key} rejected: {reason}")]
    InvalidService {
        /// The entry's key (`namespace/name`).
        key: String,
        /// Why.
        reason: String,
    },
    /// A node's pod CIDR overlaps another registered node's.
    #[error("pod CIDR {pod_cidr} of node {node} overlaps pod CIDR {other_cidr} of node {other}")]
    Conflict {
        /// The node being registered.
        node: String,
        /// Its pod CIDR.
        pod_cidr: Cidr,
        /// The node already registered.
        other: String,
        /// That node's pod CIDR.
        other_cidr: Cidr,
    },
    /// The distributed backend could not do what needs it (a new identity,
    /// a cluster policy) because it cannot be reached.
    #[error("cluster store (etcd at {endpoints}) unavailable for {op}: {reason}")]
    Unavailable {
        /// The backend's endpoints, comma-separated.
        endpoints: String,
        /// What was attempted.
        op: String,
        /// The cause.
        reason: String,
    },
}

/// Result alias of the store.
pub type StoreResult<T> = std::result::Result<T, StoreError>;

/// One ipcache entry: who is behind a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpcacheEntry {
    /// Security identity.
    pub identity: u32,
    /// The node hosting the prefix (its IPv4), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_ip: Option<Ipv4Addr>,
}

/// A node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Node name.
    pub name: String,
    /// Its pod CIDR.
    pub pod_cidr: Cidr,
    /// Its address on the underlay, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ipv4Addr>,
    /// `host:port` of the node's flow exporter (Hubble's Peer.Notify).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hubble_address: Option<String>,
    /// When the node last (re)registered, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_unix: Option<u64>,
}

impl NodeRecord {
    /// A node with only its name and pod CIDR.
    pub fn new(name: impl Into<String>, pod_cidr: Cidr) -> Self {
        Self {
            name: name.into(),
            pod_cidr,
            ip: None,
            hubble_address: None,
            heartbeat_unix: None,
        }
    }
}

/// Whether two prefixes share an address.
fn overlaps(a: Cidr, b: Cidr) -> bool {
    a.covers(&b) || b.covers(&a)
}

/// The registered node (other than `node.name`) whose pod CIDR overlaps
/// `node`'s, as [`StoreError::Conflict`].
pub(crate) fn cidr_conflict<'a>(
    node: &NodeRecord,
    registered: impl IntoIterator<Item = &'a NodeRecord>,
) -> StoreResult<()> {
    match registered
        .into_iter()
        .find(|o| o.name != node.name && overlaps(o.pod_cidr, node.pod_cidr))
    {
        Some(o) => Err(StoreError::Conflict {
            node: node.name.clone(),
            pod_cidr: node.pod_cidr,
            other: o.name.clone(),
            other_cidr: o.pod_cidr,
        }),
        None => Ok(()),
    }
}

/// Backend health and counters (`datapath status`, metrics): plain data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStatus {
    /// `file` or `etcd`.
    pub backend: String,
    /// Where the state lives: the state file, or the etcd endpoints.
    pub endpoints: Vec<String>,
    /// Whether the backend is reachable now (always true for the file).
    pub connected: bool,
    /// The last failure, if any (cleared on reconnect).
    pub last_error: Option<String>,
    /// Times the connection was lost.
    pub outages: u64,
    /// Backend operations that failed (or were skipped while disconnected).
    pub failed_ops: u64,
    /// Backend operations that succeeded.
    pub ops: u64,
    /// Full re-reads of the backend (first load and every reconnect).
    pub resyncs: u64,
    /// This node's own keys not yet written to the backend.
    pub pending_writes: usize,
    /// When `connected` last changed, seconds since the Unix epoch.
    pub since_unix: u64,
}

/// Seconds since the Unix epoch, now.
pub(crate) fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An endpoint (a pod's interface) of some node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    /// The node it lives on.
    pub node: String,
    /// Endpoint id (unique per node, non-zero).
    pub ep_id: u16,
    /// The runtime's container id (`CNI_CONTAINERID`).
    pub container_id: String,
    /// The interface in the pod (`CNI_IFNAME`).
    pub ifname: String,
    /// The pod's network namespace handle (`CNI_NETNS`).
    pub netns: String,
    /// Host-side veth name (in the node netns).
    pub host_iface: String,
    /// Host-side veth ifindex.
    pub ifindex: u32,
    /// Pod address.
    pub ip: Ipv4Addr,
    /// Pod interface MAC.
    pub pod_mac: [u8; 6],
    /// Host-side veth MAC.
    pub node_mac: [u8; 6],
    /// Kubernetes namespace.
    pub namespace: String,
    /// Pod name.
    pub pod_name: String,
    /// Pod labels (`key → value`, without source).
    pub labels: BTreeMap<String, String>,
    /// Security identity.
    pub identity: u32,
    /// The ports the pod declares by name (`K8S_POD_PORTS`), what a
    /// policy's `port: <name>` resolves to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<NamedPort>,
}

/// The cluster-state store interface (ARCHITECTURE.md, process model).
pub trait ClusterStore: Send {
    // -- identities
    /// The identity of a label set, allocating it if new.
    fn allocate_identity(&mut self, labels: &LabelSet) -> StoreResult<u32>;
    /// Frees an identity nobody uses any more.
    fn release_identity(&mut self, id: u32) -> StoreResult<bool>;
    /// All allocated identities (a snapshot of the allocator).
    fn identities(&self) -> StoreResult<IdentityAllocator>;

    // -- ipcache
    /// Sets who is behind `prefix`.
    fn upsert_ipcache(&mut self, prefix: Cidr, entry: IpcacheEntry) -> StoreResult<()>;
    /// Forgets `prefix`.
    fn remove_ipcache(&mut self, prefix: Cidr) -> StoreResult<bool>;
    /// Every prefix.
    fn ipcache(&self) -> StoreResult<BTreeMap<Cidr, IpcacheEntry>>;

    // -- policies
    /// Replaces the policies from `source` (a policy directory, an API).
    fn set_policies(&mut self, source: &str, policies: Vec<Policy>) -> StoreResult<()>;
    /// Every policy in force: the local sources' and the cluster ones (their
    /// last valid versions).
    fn policies(&self) -> StoreResult<Vec<Policy>>;
    /// Cluster-wide policies: validates `yaml` (one or several
    /// CiliumNetworkPolicy documents) and stores it under `name`,
    /// replacing. Invalid text is [`StoreError::InvalidPolicy`].
    fn put_cluster_policy(&mut self, name: &str, yaml: &str) -> StoreResult<()>;
    /// Removes the cluster policy `name`; `false` if there was none.
    fn delete_cluster_policy(&mut self, name: &str) -> StoreResult<bool>;
    /// Cluster policies rejected as invalid: `(name, reason)`.
    fn policy_rejections(&self) -> Vec<(String, String)>;

    // -- services
    /// Stores the YAML of a cluster-wide service under `key`
    /// (`<namespace>/<name>`: the Service of that name and its
    /// EndpointSlices), replacing. The agent validates the text first
    /// (it needs the service CIDR); every agent re-validates what it
    /// reads and keeps an invalid entry's previous version in force. A
    /// malformed key is [`StoreError::InvalidService`].
    fn put_cluster_service(&mut self, key: &str, yaml: &str) -> StoreResult<()>;
    /// Removes the cluster service `key`; `false` if there was none.
    fn delete_cluster_service(&mut self, key: &str) -> StoreResult<bool>;
    /// Every cluster service: `<namespace>/<name>` → YAML text.
    fn cluster_services(&self) -> StoreResult<BTreeMap<String, String>>;

    // -- nodes
    /// Adds or updates a node (the same name is an update). A pod CIDR
    /// overlapping another node's is [`StoreError::Conflict`].
    fn register_node(&mut self, node: NodeRecord) -> StoreResult<()>;
    /// Every node.
    fn nodes(&self) -> StoreResult<Vec<NodeRecord>>;
    /// Removes a node's record (clean deregistration).
    fn deregister_node(&mut self, name: &str) -> StoreResult<()>;

    // -- endpoints
    /// Adds or updates an endpoint (keyed by node and endpoint id).
    fn upsert_endpoint(&mut self, ep: EndpointRecord) -> StoreResult<()>;
    /// Removes an endpoint, returning it.
    fn remove_endpoint(&mut self, node: &str, ep_id: u16) -> StoreResult<Option<EndpointRecord>>;
    /// Every endpoint of every node.
    fn endpoints(&self) -> StoreResult<Vec<EndpointRecord>>;

    // -- backend
    /// Backend health and counters.
    fn status(&self) -> StoreStatus;
    /// A counter bumped on every change that came from elsewhere (another
    /// node, through the backend) and on every resync: the agent
    /// re-converges when it moves.
    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64>;
}

/// What [`FileStore`] persists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    #[serde(default)]
    identities: IdentityAllocator,
    #[serde(default)]
    ipcache: BTreeMap<Cidr, IpcacheEntry>,
    #[serde(default)]
    policies: BTreeMap<String, Vec<Policy>>,
    /// Cluster policies by name (validated).
    #[serde(default)]
    cluster_policies: BTreeMap<String, Vec<Policy>>,
    /// Cluster services: `namespace/name` → YAML (validated by the agent).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    cluster_services: BTreeMap<String, String>,
    #[serde(default)]
    nodes: BTreeMap<String, NodeRecord>,
    /// Keyed by `node/ep_id`.
    #[serde(default)]
    endpoints: BTreeMap<String, EndpointRecord>,
}

/// The single-node store: state in memory, persisted to a JSON file on
/// every change (write aside, fsync, rename), so a crash leaves either the
/// old or the new state.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    state: State,
    /// Never bumped: nothing changes the file from elsewhere.
    changes: tokio::sync::watch::Sender<u64>,
}

impl FileStore {
    /// Name of the state file inside the state directory.
    pub const FILE: &'static str = "cluster-state.json";

    /// Opens (or starts) the store in `dir` (created if missing).
    pub fn open(dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            op: "create state dir",
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(Self::FILE);
        let state = match std::fs::read(&path) {
            Ok(bytes) => {
                let mut s: State =
                    serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
                        path: path.clone(),
                        source,
                    })?;
                s.identities.reindex();
                s
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(source) => {
                return Err(StoreError::Io {
                    op: "read",
                    path,
                    source,
                });
            }
        };
        Ok(Self {
            path,
            state,
            changes: tokio::sync::watch::Sender::new(0),
        })
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn save(&self) -> StoreResult<()> {
        let json = serde_json::to_vec_pretty(&self.state).expect("state serializes");
        write_atomic(&self.path, &json).map_err(|source| StoreError::Io {
            op: "write",
            path: self.path.clone(),
            source,
        })
    }
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, fsync,
/// rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Checks the key of a cluster service: `<namespace>/<name>`, both
/// non-empty, no further `/`.
pub(crate) fn check_service_key(key: &str) -> StoreResult<()> {
    match key.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains(['/', '\0']) => {
            Ok(())
        }
        _ => Err(StoreError::InvalidService {
            key: key.to_string(),
            reason: "the key must be <namespace>/<name>".into(),
        }),
    }
}

fn ep_key(node: &str, ep_id: u16) -> String {
    format!("{node}/{ep_id}")
}

impl ClusterStore for FileStore {
    fn allocate_identity(&mut self, labels: &LabelSet) -> StoreResult<u32> {
        let known = self.state.identities.lookup(labels);
        let id = self.state.identities.try_allocate(labels)?;
        if known.is_none() && self.state.identities.lookup(labels).is_some() {
            self.save()?;
        }
        Ok(id)
    }

    fn release_identity(&mut self, id: u32) -> StoreResult<bool> {
        let r = self.state.identities.release(id);
        if r {
            self.save()?;
        }
        Ok(r)
    }

    fn identities(&self) -> StoreResult<IdentityAllocator> {
        Ok(self.state.identities.clone())
    }

    fn upsert_ipcache(&mut self, prefix: Cidr, entry: IpcacheEntry) -> StoreResult<()> {
        if self.state.ipcache.insert(prefix, entry) != Some(entry) {
            self.save()?;
        }
        Ok(())
    }

    fn remove_ipcache(&mut self, prefix: Cidr) -> StoreResult<bool> {
        let r = self.state.ipcache.remove(&prefix).is_some();
        if r {
            self.save()?;
        }
        Ok(r)
    }

    fn ipcache(&self) -> StoreResult<BTreeMap<Cidr, IpcacheEntry>> {
        Ok(self.state.ipcache.clone())
    }

    fn set_policies(&mut self, source: &str, policies: Vec<Policy>) -> StoreResult<()> {
        if self.state.policies.get(source) != Some(&policies) {
            self.state.policies.insert(source.to_string(), policies);
            self.save()?;
        }
        Ok(())
    }

    fn policies(&self) -> StoreResult<Vec<Policy>> {
        Ok(self
            .state
            .policies
            .values()
            .chain(self.state.cluster_policies.values())
            .flatten()
            .cloned()
            .collect())
    }

    fn put_cluster_policy(&mut self, name: &str, yaml: &str) -> StoreResult<()> {
        let p = crate::policy::parse_str(name, yaml).map_err(|e| StoreError::InvalidPolicy {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
        if self.state.cluster_policies.get(name) != Some(&p) {
            self.state.cluster_policies.insert(name.to_string(), p);
            self.save()?;
        }
        Ok(())
    }

    fn delete_cluster_policy(&mut self, name: &str) -> StoreResult<bool> {
        let r = self.state.cluster_policies.remove(name).is_some();
        if r {
            self.save()?;
        }
        Ok(r)
    }

    fn policy_rejections(&self) -> Vec<(String, String)> {
        // Invalid text never reaches the file.
        Vec::new()
    }

    fn put_cluster_service(&mut self, key: &str, yaml: &str) -> StoreResult<()> {
        check_service_key(key)?;
        if self.state.cluster_services.get(key).map(String::as_str) != Some(yaml) {
            self.state
                .cluster_services
                .insert(key.to_string(), yaml.to_string());
            self.save()?;
        }
        Ok(())
    }

    fn delete_cluster_service(&mut self, key: &str) -> StoreResult<bool> {
        let r = self.state.cluster_services.remove(key).is_some();
        if r {
            self.save()?;
        }
        Ok(r)
    }

    fn cluster_services(&self) -> StoreResult<BTreeMap<String, String>> {
        Ok(self.state.cluster_services.clone())
    }

    fn deregister_node(&mut self, name: &str) -> StoreResult<()> {
        if self.state.nodes.remove(name).is_some() {
            self.save()?;
        }
        Ok(())
    }

    fn status(&self) -> StoreStatus {
        StoreStatus {
            backend: "file".into(),
            endpoints: vec![self.path.display().to_string()],
            connected: true,
            ..StoreStatus::default()
        }
    }

    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn register_node(&mut self, node: NodeRecord) -> StoreResult<()> {
        cidr_conflict(&node, self.state.nodes.values())?;
        if self.state.nodes.get(&node.name) != Some(&node) {
            self.state.nodes.insert(node.name.clone(), node);
            self.save()?;
        }
        Ok(())
    }

    fn nodes(&self) -> StoreResult<Vec<NodeRecord>> {
        Ok(self.state.nodes.values().cloned().collect())
    }

    fn upsert_endpoint(&mut self, ep: EndpointRecord) -> StoreResult<()> {
        let k = ep_key(&ep.node, ep.ep_id);
        if self.state.endpoints.get(&k) != Some(&ep) {
            self.state.endpoints.insert(k, ep);
            self.save()?;
        }
        Ok(())
    }

    fn remove_endpoint(&mut self, node: &str, ep_id: u16) -> StoreResult<Option<EndpointRecord>> {
        let r = self.state.endpoints.remove(&ep_key(node, ep_id));
        if r.is_some() {
            self.save()?;
        }
        Ok(r)
    }

    fn endpoints(&self) -> StoreResult<Vec<EndpointRecord>> {
        Ok(self.state.endpoints.values().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::identity::pod_labels;

    fn ep(node: &str, ep_id: u16, ip: [u8; 4], identity: u32) -> EndpointRecord {
        EndpointRecord {
            node: node.into(),
            ep_id,
            container_id: format!("c{ep_id}"),
            ifname: "eth0".into(),
            netns: "/run/netns/x".into(),
            host_iface: format!("lxc{ep_id}"),
            ifindex: 7,
            ip: Ipv4Addr::from(ip),
            pod_mac: [2, 0, 0, 0, 0, 1],
            node_mac: [2, 0, 0, 0, 0, 2],
            namespace: "default".into(),
            pod_name: format!("pod{ep_id}"),
            labels: BTreeMap::from([("app".into(), "x".into())]),
            identity,
            ports: Vec::new(),
        }
    }

    #[test]
    fn file_store_persists_every_kind_of_state() {
        let dir = tempfile::tempdir().unwrap();
        let labels = pod_labels("default", &BTreeMap::new(), "default");
        let cidr: Cidr = "10.200.1.5/32".parse().unwrap();
        let pols = crate::policy::parse_str(
            "p.yaml",
            include_str!("../../testdata/policies/starwars.yaml"),
        )
        .unwrap();
        let id = {
            let mut s = FileStore::open(dir.path()).unwrap();
            let id = s.allocate_identity(&labels).unwrap();
            s.upsert_ipcache(
                cidr,
                IpcacheEntry {
                    identity: id,
                    node_ip: None,
                },
            )
            .unwrap();
            s.set_policies("dir", pols.clone()).unwrap();
            s.register_node(NodeRecord::new("n1", "10.200.1.0/24".parse().unwrap()))
                .unwrap();
            let e = s
                .register_node(NodeRecord::new("n2", "10.200.0.0/16".parse().unwrap()))
                .unwrap_err();
            assert!(matches!(e, StoreError::Conflict { .. }), "{e}");
            for want in ["n1", "n2", "10.200.1.0/24", "10.200.0.0/16"] {
                assert!(e.to_string().contains(want), "{e}");
            }
            s.put_cluster_policy("cluster.yaml", "kind: [").unwrap_err();
            s.put_cluster_policy("c1", include_str!("../../testdata/policies/starwars.yaml"))
                .unwrap();
            s.upsert_endpoint(ep("n1", 1, [10, 200, 1, 5], id)).unwrap();
            s.upsert_endpoint(ep("n1", 2, [10, 200, 1, 6], id)).unwrap();
            assert!(s.remove_endpoint("n1", 2).unwrap().is_some());
            s.put_cluster_service("default/web", "kind: Service")
                .unwrap();
            s.put_cluster_service("default/gone", "kind: Service")
                .unwrap();
            assert!(s.delete_cluster_service("default/gone").unwrap());
            assert!(!s.delete_cluster_service("default/gone").unwrap());
            for bad in ["web", "/web", "default/", "a/b/c"] {
                let e = s.put_cluster_service(bad, "x").unwrap_err();
                assert!(matches!(e, StoreError::InvalidService { .. }), "{bad}: {e}");
            }
            assert!(s.remove_endpoint("n1", 2).unwrap().is_none());
            id
        };
        let mut s = FileStore::open(dir.path()).unwrap();
        assert_eq!(
            s.allocate_identity(&labels).unwrap(),
            id,
            "stable across restarts"
        );
        assert_eq!(s.ipcache().unwrap()[&cidr].identity, id);
        assert_eq!(s.policies().unwrap().len(), pols.len() * 2);
        assert!(s.delete_cluster_policy("c1").unwrap());
        assert_eq!(s.policies().unwrap(), pols);
        assert_eq!(s.nodes().unwrap()[0].name, "n1");
        s.deregister_node("n1").unwrap();
        assert!(s.nodes().unwrap().is_empty());
        assert_eq!(s.status().backend, "file");
        assert_eq!(
            s.cluster_services().unwrap(),
            BTreeMap::from([("default/web".to_string(), "kind: Service".to_string())])
        );
        assert_eq!(
            s.endpoints().unwrap(),
            vec![ep("n1", 1, [10, 200, 1, 5], id)]
        );
        assert!(s.remove_ipcache(cidr).unwrap());
        assert!(s.release_identity(id).unwrap());
        // No stray temporary files.
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1);
    }

    #[test]
    fn corrupt_state_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FileStore::FILE), b"{not json").unwrap();
        let e = FileStore::open(dir.path()).unwrap_err();
        assert!(e.to_string().contains(FileStore::FILE), "{e}");
    }
}

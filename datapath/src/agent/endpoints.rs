//! The node agent's core, independent of the API transport: loads (or
//! re-adopts) the datapath, owns the endpoint manager, IPAM and the
//! cluster-state store, compiles policy into the maps and writes the
//! exporter's enrichment file.
//!
//! Everything converges through [`Agent::sync`]: desired state (store +
//! policies) is compiled and diffed against what the maps hold, and only
//! the difference is written, in an order that never denies traffic that
//! stays allowed: ipcache and policy entries are added first, then
//! endpoint flags, then stale entries are removed.
//!
//! Methods are blocking (map syscalls, netns switches); the server calls
//! them from `spawn_blocking` under one mutex.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use flow_parser::{EndpointInfo, EnrichmentSpec, NodeInfo, PolicyInfo};

use crate::agent::api::{
    EndpointAdd, EndpointView, IdentityView, IpamResponse, LbView, PolicyView, StatusView,
    TunnelView,
};
use crate::agent::ipam::Ipam;
use crate::agent::kvstore::{EtcdStore, KvstoreConfig};
use crate::agent::lb_sync::{LbSync, node_port_addresses};
use crate::agent::services::{self, ObjectName, ParseOptions, ServiceList, ServiceState};
use crate::agent::store::{
    ClusterStore, EndpointRecord, FileStore, IpcacheEntry, NodeRecord, StoreError, write_atomic,
};
use crate::defaults;
use crate::error::DatapathError;
use crate::kernel::loader::{self, AttachTarget, Datapath, LoadOptions};
use crate::kernel::maps::Config;
use crate::kernel::maps::{Endpoint, IpcacheValue, Maps, ip4_key};
use crate::kernel::netns::in_netns;
use crate::policy::cidr::Cidr;
use crate::policy::identity::{self, IdentityAllocator};
use crate::policy::{self, Compiled, Enforcement, LocalEndpoint, Policy};

/// The tracing target of this module's log lines: the module path it had
/// before the source was laid out by concern (`src/agent.rs`), kept so logs
/// and `RUST_LOG` filters stay as they were.
const LOG_TARGET: &str = "datapath::agent";

/// Agent failures.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A datapath (kernel) operation failed.
    #[error(transparent)]
    Datapath(#[from] DatapathError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file of the agent's own state failed.
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
    /// The request is not valid (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    /// No such object (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// Out of addresses, endpoint ids or identities (HTTP 507).
    #[error("{0}")]
    Exhausted(String),
}

/// A store error, with identity exhaustion as [`AgentError::Exhausted`] (so a
/// CNI ADD that needs a new identity fails with the agent's error, not a panic).
fn exhausted_identity(e: StoreError) -> AgentError {
    match e {
        StoreError::Identity(e) => AgentError::Exhausted(e.to_string()),
        e => AgentError::Store(e),
    }
}

/// Result alias of the agent.
pub type AgentResult<T> = std::result::Result<T, AgentError>;

/// How the agent runs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Node name.
    pub node_name: String,
    /// Cluster name.
    pub cluster: String,
    /// The node's pod CIDR.
    pub pod_cidr: Cidr,
    /// State directory (store, IPAM, enrichment file).
    pub state_dir: PathBuf,
    /// The node's pin directory on bpffs.
    pub pin_dir: PathBuf,
    /// The watched policy directory.
    pub policy_dir: PathBuf,
    /// The watched services directory (Service and EndpointSlice YAML).
    pub service_dir: PathBuf,
    /// The prefix every ClusterIP must lie in (Kubernetes'
    /// `--service-cluster-ip-range`).
    pub service_cidr: Cidr,
    /// The node's network namespace, `None` for the agent's own.
    pub netns: Option<PathBuf>,
    /// Where the enrichment file is written.
    pub enrichment_file: PathBuf,
    /// Datapath configuration (aggregation, ...).
    pub datapath: Config,
    /// Map capacities used when a map is created (a pinned map of another
    /// size is replaced at start).
    pub sizes: crate::kernel::loader::MapSizes,
    /// The node's address on the underlay: its registry entry, the tunnel
    /// endpoint other nodes send to, and the source of its pods' ipcache
    /// entries.
    pub node_ip: Option<Ipv4Addr>,
    /// `host:port` of this node's flow exporter, announced to the cluster
    /// (the exporters' `Peer.Notify`).
    pub hubble_address: Option<String>,
    /// The overlay between nodes.
    pub tunnel: Tunnel,
    /// The pods' MTU; `None`: the underlay's minus the encapsulation with
    /// a tunnel, else the kernel's default.
    pub mtu: Option<u32>,
    /// The cluster store; `None`: the single-node file store.
    pub kvstore: Option<KvstoreConfig>,
    /// `--allow-localhost`: whether the node may reach pods that enforce
    /// ingress without a rule allowing the host.
    pub allow_localhost: crate::policy::AllowLocalhost,
}

/// How traffic to pods on other nodes leaves this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tunnel {
    /// No overlay: only local pods (and the node stack's routing).
    #[default]
    Disabled,
    /// VXLAN in external (collect_md) mode, the source identity in the VNI.
    Vxlan,
}

impl std::str::FromStr for Tunnel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "disabled" => Ok(Self::Disabled),
            "vxlan" => Ok(Self::Vxlan),
            o => Err(format!(
                "unknown tunnel mode {o:?} (expected disabled or vxlan)"
            )),
        }
    }
}

impl Tunnel {
    /// The flag's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Vxlan => "vxlan",
        }
    }
}

/// The policy source name of the policy directory in the store.
const POLICY_SOURCE: &str = "policy-dir";

/// The running agent.
pub struct Agent {
    cfg: AgentConfig,
    dp: Datapath,
    maps: Maps,
    store: Box<dyn ClusterStore>,
    ipam: Ipam,
    /// The policy directory's content at the last check (file → bytes).
    policy_snapshot: BTreeMap<PathBuf, Vec<u8>>,
    /// The policy directory's policies in force.
    dir_policies: Vec<Policy>,
    /// The next sync's policy change was counted by `poll_policies`.
    revision_counted: bool,
    policy_error: Option<String>,
    policy_revision: u64,
    /// Every policy the last sync compiled (directory and cluster store).
    applied_policies: Vec<Policy>,
    /// Policy cookie → the policy in force and its revision.
    policy_origins: policy::PolicyOrigins,
    /// The VXLAN device's ifindex (0: no tunnel).
    tunnel_ifindex: u32,
    /// The MTU pods get (`None`: the kernel's default).
    pod_mtu: Option<u32>,
    remote_nodes: usize,
    compiled: Compiled,
    readopted: usize,
    /// Services: sources, objects in force, desired LB state.
    services: ServiceState,
    /// The LB maps' writer (what they hold) and the NodePort devices.
    lb: LbSync,
    /// The last LB write or NodePort attach that failed (retried at every sync).
    lb_error: Option<String>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").field("cfg", &self.cfg).finish()
    }
}

impl Agent {
    /// Loads or re-adopts the datapath and the state, re-attaches to the
    /// endpoints that still exist, loads the policies and converges.
    pub fn start(cfg: AgentConfig) -> AgentResult<Self> {
        if cfg.pin_dir.starts_with(defaults::BPFFS_MOUNT) {
            loader::ensure_bpffs(Path::new(defaults::BPFFS_MOUNT))?;
        }
        // The cluster store first: an unreachable store or a refused
        // registration (an overlapping pod CIDR) fails the start before
        // anything in the kernel changes.
        let mut store: Box<dyn ClusterStore> = match &cfg.kvstore {
            None => Box::new(FileStore::open(&cfg.state_dir)?),
            Some(k) => Box::new(EtcdStore::connect(
                k.clone(),
                &cfg.node_name,
                &cfg.state_dir,
            )?),
        };
        store.register_node(NodeRecord {
            name: cfg.node_name.clone(),
            pod_cidr: cfg.pod_cidr,
            ip: cfg.node_ip,
            hubble_address: cfg.hubble_address.clone(),
            heartbeat_unix: None,
        })?;
        // Then the overlay device: its ifindex goes into the programs'
        // configuration, and its ingress program is attached after the load.
        let (tunnel_ifindex, pod_mtu) = match cfg.tunnel {
            Tunnel::Disabled => (0, cfg.mtu),
            Tunnel::Vxlan => {
                let node_ip = cfg.node_ip.ok_or_else(|| {
                    AgentError::BadRequest(
                        "the VXLAN tunnel needs the node's underlay address (--node-ip)".into(),
                    )
                })?;
                let ifindex = crate::kernel::tunnel::ensure_vxlan(
                    cfg.netns.as_deref(),
                    defaults::VXLAN_DEVICE,
                    defaults::VXLAN_PORT,
                )?;
                let mtu = match cfg.mtu {
                    Some(m) => m,
                    None => {
                        let under = in_netns(cfg.netns.as_deref(), || {
                            crate::kernel::tunnel::mtu_of_address(node_ip)
                        })?;
                        under - defaults::VXLAN_OVERHEAD
                    }
                };
                (ifindex, Some(mtu))
            }
        };
        let mut opts = LoadOptions::new(&cfg.pin_dir);
        opts.config = cfg.datapath;
        opts.config.tunnel_ifindex = tunnel_ifindex;
        opts.sizes = cfg.sizes;
        let mut dp = Datapath::load(&opts)?;
        if tunnel_ifindex != 0 {
            dp.attach_overlay(&AttachTarget {
                netns: cfg.netns.clone(),
                iface: defaults::VXLAN_DEVICE.to_string(),
            })?;
            tracing::info!(target: LOG_TARGET, device = defaults::VXLAN_DEVICE, ifindex = tunnel_ifindex, mtu = ?pod_mtu, "VXLAN overlay up");
        }
        let maps = dp.maps()?;
        let ipam_path = cfg.state_dir.join(defaults::IPAM_FILE);
        let ipam = match std::fs::read(&ipam_path) {
            Ok(b) => {
                let i: Ipam = serde_json::from_slice(&b).map_err(|e| AgentError::Io {
                    op: "parse",
                    path: ipam_path.clone(),
                    source: std::io::Error::other(e),
                })?;
                if i.cidr() == cfg.pod_cidr {
                    i
                } else {
                    tracing::warn!(target: LOG_TARGET, old = %i.cidr(), new = %cfg.pod_cidr, "pod CIDR changed; IPAM starts over");
                    Ipam::new(cfg.pod_cidr)
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ipam::new(cfg.pod_cidr),
            Err(source) => {
                return Err(AgentError::Io {
                    op: "read",
                    path: ipam_path,
                    source,
                });
            }
        };
        let lb = LbSync::open(&cfg.pin_dir)?;
        let mut services = ServiceState::new(
            cfg.service_dir.clone(),
            ParseOptions {
                service_cidr: cfg.service_cidr,
            },
        );
        // What the maps hold from a previous run: its ids are kept.
        services.seed(lb.applied().clone());
        let mut agent = Self {
            cfg,
            dp,
            maps,
            store,
            ipam,
            policy_snapshot: BTreeMap::new(),
            dir_policies: Vec::new(),
            revision_counted: false,
            policy_error: None,
            policy_revision: 0,
            policy_origins: policy::PolicyOrigins::default(),
            applied_policies: Vec::new(),
            tunnel_ifindex,
            pod_mtu,
            remote_nodes: 0,
            compiled: Compiled::default(),
            readopted: 0,
            services,
            lb,
            lb_error: None,
        };
        agent.readopt()?;
        agent.services.poll_dir();
        agent.poll_policies()?;
        agent.sync()?;
        Ok(agent)
    }

    /// The configuration.
    pub fn config(&self) -> &AgentConfig {
        &self.cfg
    }

    fn local_endpoints(&self) -> AgentResult<Vec<EndpointRecord>> {
        Ok(self
            .store
            .endpoints()?
            .into_iter()
            .filter(|e| e.node == self.cfg.node_name)
            .collect())
    }

    /// Swaps the new programs into the links of every stored endpoint whose
    /// interface still exists; forgets the others (their pod went away
    /// while the agent was down).
    fn readopt(&mut self) -> AgentResult<()> {
        for ep in self.local_endpoints()? {
            let target = AttachTarget {
                netns: self.cfg.netns.clone(),
                iface: ep.host_iface.clone(),
            };
            match self.dp.attach(&target) {
                Ok(r) => {
                    self.readopted += 1;
                    if r.ifindex != ep.ifindex {
                        self.store.upsert_endpoint(EndpointRecord {
                            ifindex: r.ifindex,
                            ..ep
                        })?;
                    }
                }
                Err(e) => {
                    tracing::warn!(target: LOG_TARGET, ep = ep.ep_id, iface = %ep.host_iface, error = %e, "endpoint gone, forgetting it");
                    self.forget(&ep)?;
                    self.ipam
                        .release(&format!("{}/{}", ep.container_id, ep.ifname));
                    self.save_ipam()?;
                }
            }
        }
        let pruned = loader::prune_defunct_links(&self.cfg.pin_dir)?;
        if pruned > 0 {
            tracing::info!(target: LOG_TARGET, pruned, "defunct links unpinned");
        }
        Ok(())
    }

    fn save_ipam(&self) -> AgentResult<()> {
        let path = self.cfg.state_dir.join(defaults::IPAM_FILE);
        let json = serde_json::to_vec_pretty(&self.ipam).expect("ipam serializes");
        write_atomic(&path, &json).map_err(|source| AgentError::Io {
            op: "write",
            path,
            source,
        })
    }

    // ---- IPAM ----------------------------------------------------------------

    /// Hands out (or returns the existing) address of `owner`.
    pub fn ipam_allocate(&mut self, owner: &str) -> AgentResult<IpamResponse> {
        if owner.is_empty() {
            return Err(AgentError::BadRequest(
                "IPAM owner must not be empty".into(),
            ));
        }
        let ip = self.ipam.allocate(owner).ok_or_else(|| {
            AgentError::Exhausted(format!("pod CIDR {} is exhausted", self.cfg.pod_cidr))
        })?;
        self.save_ipam()?;
        Ok(IpamResponse {
            ip,
            gateway: defaults::GATEWAY,
            pod_cidr: self.cfg.pod_cidr,
            mtu: self.pod_mtu,
        })
    }

    /// Releases `owner`'s address.
    pub fn ipam_release(&mut self, owner: &str) -> AgentResult<Option<Ipv4Addr>> {
        let r = self.ipam.release(owner);
        if r.is_some() {
            self.save_ipam()?;
        }
        Ok(r)
    }

    // ---- endpoints -------------------------------------------------------------

    /// Registers a pod interface: identity, programs on its host veth, maps.
    /// Idempotent for the same container and interface. On failure nothing
    /// of it remains.
    pub fn add_endpoint(&mut self, req: EndpointAdd) -> AgentResult<EndpointView> {
        if !self.cfg.pod_cidr.contains(req.ip) {
            return Err(AgentError::BadRequest(format!(
                "address {} is outside the node's pod CIDR {}",
                req.ip, self.cfg.pod_cidr
            )));
        }
        if req.container_id.is_empty() || req.host_iface.is_empty() || req.ifname.is_empty() {
            return Err(AgentError::BadRequest(
                "container_id, ifname and host_iface are required".into(),
            ));
        }
        let eps = self.local_endpoints()?;
        if let Some(other) = eps.iter().find(|e| {
            e.ip == req.ip && (e.container_id != req.container_id || e.ifname != req.ifname)
        }) {
            return Err(AgentError::BadRequest(format!(
                "address {} belongs to endpoint {} ({})",
                req.ip, other.ep_id, other.container_id
            )));
        }
        let existing = eps
            .iter()
            .find(|e| e.container_id == req.container_id && e.ifname == req.ifname);
        let ep_id = match existing {
            Some(e) => e.ep_id,
            None => {
                let used: BTreeSet<u16> = eps.iter().map(|e| e.ep_id).collect();
                (1..=u16::try_from(defaults::ENDPOINTS_MAX).unwrap_or(u16::MAX))
                    .find(|i| !used.contains(i))
                    .ok_or_else(|| AgentError::Exhausted("no free endpoint id".into()))?
            }
        };
        let labels = identity::pod_labels(&req.namespace, &req.labels, &self.cfg.cluster);
        let identity = self
            .store
            .allocate_identity(&labels)
            .map_err(exhausted_identity)?;
        let report = self.dp.attach(&AttachTarget {
            netns: self.cfg.netns.clone(),
            iface: req.host_iface.clone(),
        })?;
        let rec = EndpointRecord {
            node: self.cfg.node_name.clone(),
            ep_id,
            container_id: req.container_id,
            ifname: req.ifname,
            netns: req.netns,
            host_iface: req.host_iface,
            ifindex: report.ifindex,
            ip: req.ip,
            pod_mac: req.pod_mac,
            node_mac: req.node_mac,
            namespace: req.namespace,
            pod_name: req.pod_name,
            labels: req.labels,
            identity,
            ports: req.ports,
        };
        let r = (|| {
            self.store.upsert_endpoint(rec.clone())?;
            self.store.upsert_ipcache(
                Cidr::host(rec.ip),
                IpcacheEntry {
                    identity,
                    node_ip: self.cfg.node_ip,
                },
            )?;
            self.sync()
        })();
        if let Err(e) = r {
            tracing::warn!(target: LOG_TARGET, ep = ep_id, error = %e, "endpoint add failed, rolling back");
            let _ = self.forget(&rec);
            let _ = loader::detach(&self.cfg.pin_dir, &rec.host_iface);
            let _ = self.sync();
            return Err(e);
        }
        tracing::info!(target: LOG_TARGET, ep = ep_id, ip = %rec.ip, pod = %rec.pod_name, ns = %rec.namespace, identity, "endpoint added");
        self.view(&rec)
    }

    /// Removes the state of an endpoint from the store (not the maps).
    fn forget(&mut self, ep: &EndpointRecord) -> AgentResult<()> {
        self.store.remove_endpoint(&ep.node, ep.ep_id)?;
        self.store.remove_ipcache(Cidr::host(ep.ip))?;
        Ok(())
    }

    /// Removes everything of an endpoint: store, maps, conntrack, links,
    /// address.
    fn remove_endpoint(&mut self, ep: &EndpointRecord) -> AgentResult<()> {
        self.forget(ep)?;
        self.maps.remove_endpoint(ep.ip)?;
        self.maps.replace_policy(ep.ep_id, &[])?;
        self.maps.ct_flush_ip(ep.ip)?;
        loader::detach(&self.cfg.pin_dir, &ep.host_iface)?;
        self.ipam_release(&format!("{}/{}", ep.container_id, ep.ifname))?;
        tracing::info!(target: LOG_TARGET, ep = ep.ep_id, ip = %ep.ip, pod = %ep.pod_name, "endpoint removed");
        Ok(())
    }

    /// Removes the endpoint of a container interface (and its address);
    /// `false` if there was none.
    pub fn del_endpoint(&mut self, container_id: &str, ifname: &str) -> AgentResult<bool> {
        let ep = self
            .local_endpoints()?
            .into_iter()
            .find(|e| e.container_id == container_id && e.ifname == ifname);
        let found = ep.is_some();
        match ep {
            Some(ep) => self.remove_endpoint(&ep)?,
            // An address handed out for an ADD that never registered.
            None => {
                self.ipam_release(&format!("{container_id}/{ifname}"))?;
            }
        }
        self.sync()?;
        Ok(found)
    }

    /// Removes endpoints whose host veth disappeared without a CNI DEL
    /// (the pod's namespace was deleted): their pinned links are defunct.
    /// Returns how many were removed.
    pub fn gc_endpoints(&mut self) -> AgentResult<usize> {
        let defunct: Vec<String> = loader::links(&self.cfg.pin_dir)?
            .into_iter()
            .filter(|l| l.ifindex == 0)
            .map(|l| l.iface)
            .collect();
        if defunct.is_empty() {
            return Ok(0);
        }
        let mut n = 0;
        for ep in self.local_endpoints()? {
            if defunct.contains(&ep.host_iface) {
                tracing::warn!(target: LOG_TARGET, ep = ep.ep_id, iface = %ep.host_iface, "interface gone without CNI DEL");
                self.remove_endpoint(&ep)?;
                n += 1;
            }
        }
        loader::prune_defunct_links(&self.cfg.pin_dir)?;
        self.sync()?;
        Ok(n)
    }

    /// The endpoint of a container interface.
    pub fn endpoint_by_container(
        &self,
        container_id: &str,
        ifname: &str,
    ) -> AgentResult<EndpointView> {
        let ep = self
            .local_endpoints()?
            .into_iter()
            .find(|e| e.container_id == container_id && e.ifname == ifname)
            .ok_or_else(|| {
                AgentError::NotFound(format!("no endpoint for {container_id}/{ifname}"))
            })?;
        self.view(&ep)
    }

    /// The endpoint with id `ep_id`.
    pub fn endpoint(&self, ep_id: u16) -> AgentResult<EndpointView> {
        let ep = self
            .local_endpoints()?
            .into_iter()
            .find(|e| e.ep_id == ep_id)
            .ok_or_else(|| AgentError::NotFound(format!("no endpoint {ep_id}")))?;
        self.view(&ep)
    }

    /// Every local endpoint.
    pub fn endpoints(&self) -> AgentResult<Vec<EndpointView>> {
        let mut v = self
            .local_endpoints()?
            .iter()
            .map(|e| self.view(e))
            .collect::<AgentResult<Vec<_>>>()?;
        v.sort_by_key(|e| e.record.ep_id);
        Ok(v)
    }

    fn view(&self, ep: &EndpointRecord) -> AgentResult<EndpointView> {
        let ids = self.store.identities()?;
        Ok(EndpointView {
            record: ep.clone(),
            identity_labels: ids
                .labels(ep.identity)
                .unwrap_or_default()
                .into_iter()
                .collect(),
            enforcement: self
                .compiled
                .enforce
                .get(&ep.ep_id)
                .copied()
                .unwrap_or_default(),
            policy_entries: self
                .compiled
                .entries
                .iter()
                .filter(|e| e.ep_id == ep.ep_id)
                .count(),
        })
    }

    // ---- identities, policies, status ----------------------------------------

    /// Every identity, reserved ones first.
    pub fn identities(&self) -> AgentResult<Vec<IdentityView>> {
        Ok(self
            .store
            .identities()?
            .all()
            .into_iter()
            .map(|(id, l)| IdentityView {
                id,
                labels: l.into_iter().collect(),
            })
            .collect())
    }

    /// The policies in force.
    pub fn policies(&self) -> AgentResult<PolicyView> {
        Ok(PolicyView {
            policies: self.applied_policies.clone(),
            error: self.policy_problem(),
            revision: self.policy_revision,
            origins: self.policy_origins(),
        })
    }

    /// What is not in force: the policy directory's error and the cluster
    /// store's rejected policies (each with its name and reason).
    fn policy_problem(&self) -> Option<String> {
        let mut v: Vec<String> = self.policy_error.iter().cloned().collect();
        for (name, reason) in self.store.policy_rejections() {
            v.push(format!(
                "cluster policy {name} rejected (its previous version stays in force): {reason}"
            ));
        }
        (!v.is_empty()).then(|| v.join("; "))
    }

    /// Stores a cluster-wide policy (validated first; an invalid one is a
    /// 400 naming the problem and changes nothing) and applies it.
    pub fn apply_cluster_policy(&mut self, name: &str, yaml: &str) -> AgentResult<u64> {
        if name.is_empty() {
            return Err(AgentError::BadRequest("a policy needs a name".into()));
        }
        self.store
            .put_cluster_policy(name, yaml)
            .map_err(|e| match e {
                StoreError::InvalidPolicy { .. } => AgentError::BadRequest(e.to_string()),
                e => AgentError::Store(e),
            })?;
        self.sync()?;
        Ok(self.policy_revision)
    }

    /// Removes a cluster-wide policy; `false` if there was none.
    pub fn delete_cluster_policy(&mut self, name: &str) -> AgentResult<bool> {
        let r = self.store.delete_cluster_policy(name)?;
        self.sync()?;
        Ok(r)
    }

    /// The node registry.
    pub fn nodes(&self) -> AgentResult<Vec<NodeRecord>> {
        Ok(self.store.nodes()?)
    }

    /// A change notification of the cluster store (its value bumps on
    /// every change made elsewhere and on every resync).
    pub fn store_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.store.subscribe()
    }

    /// The agent's status.
    pub fn status(&self) -> AgentResult<StatusView> {
        Ok(StatusView {
            node: self.cfg.node_name.clone(),
            cluster: self.cfg.cluster.clone(),
            pod_cidr: self.cfg.pod_cidr,
            pin_dir: self.cfg.pin_dir.clone(),
            netns: self.cfg.netns.clone(),
            program_ids: self.dp.program_ids()?,
            endpoints: self.local_endpoints()?.len(),
            identities: self.store.identities()?.allocated().len(),
            policies: self.applied_policies.len(),
            policy_revision: self.policy_revision,
            policy_error: self.policy_problem(),
            enrichment_file: self.cfg.enrichment_file.clone(),
            maps_reused: self.dp.load_report().reused.clone(),
            endpoints_readopted: self.readopted,
            kvstore: self.store.status(),
            tunnel: TunnelView {
                mode: self.cfg.tunnel.as_str().to_string(),
                device: (self.tunnel_ifindex != 0)
                    .then(|| (defaults::VXLAN_DEVICE.to_string(), self.tunnel_ifindex)),
                node_ip: self.cfg.node_ip,
                pod_mtu: self.pod_mtu,
                remote_nodes: self.remote_nodes,
                program_id: (self.tunnel_ifindex != 0)
                    .then(|| self.dp.overlay_program_id().ok())
                    .flatten(),
            },
            load_balancing: {
                let stats = self.lb.stats().unwrap_or_default();
                LbView {
                    services: self.services.catalog().services.len(),
                    frontends: self.lb.applied().frontends.len(),
                    backends: self.lb.applied().backends.len(),
                    node_port_devices: self.lb.netdevs().iter().cloned().collect(),
                    new_connections: stats.new_connections,
                    translated: stats.translated,
                    reverse_translated: stats.reverse_translated,
                    rejected: self.services.errors(),
                    error: self.lb_error.clone(),
                }
            },
        })
    }

    /// Re-reads the policy directory if its content changed; applies it
    /// when valid (an invalid directory leaves the last valid policies in
    /// force and is reported). Returns whether policies changed.
    pub fn poll_policies(&mut self) -> AgentResult<bool> {
        let snap = snapshot(&self.cfg.policy_dir);
        if snap == self.policy_snapshot && self.policy_revision > 0 {
            return Ok(false);
        }
        self.policy_snapshot = snap;
        match policy::load_dir(&self.cfg.policy_dir) {
            Ok(p) => {
                if self.policy_error.take().is_some() {
                    tracing::info!(target: LOG_TARGET, "policy directory valid again");
                }
                let changed = self.dir_policies != p;
                self.store.set_policies(POLICY_SOURCE, p.clone())?;
                self.dir_policies = p;
                self.policy_revision += 1;
                self.revision_counted = changed;
                if changed {
                    tracing::info!(target: LOG_TARGET, revision = self.policy_revision, "policies changed");
                    self.sync()?;
                }
                Ok(changed)
            }
            Err(e) => {
                tracing::error!(target: LOG_TARGET, error = %e, "policy directory not applied");
                self.policy_error = Some(e.to_string());
                if self.policy_revision == 0 {
                    self.policy_revision = 1;
                }
                Ok(false)
            }
        }
    }

    // ---- convergence ------------------------------------------------------------

    /// Compiles the desired state and writes the difference into the maps,
    /// then rewrites the enrichment file.
    pub fn sync(&mut self) -> AgentResult<()> {
        let policies: Vec<Policy> = self.store.policies()?;
        // A change that came from the cluster store gets its revision here
        // (the directory's changes counted theirs in poll_policies).
        if policies != self.applied_policies && !std::mem::take(&mut self.revision_counted) {
            self.policy_revision += 1;
            tracing::info!(target: LOG_TARGET, revision = self.policy_revision, "cluster policies changed");
        }
        self.policy_origins.update(&policies, self.policy_revision);
        for p in policies.iter().filter(|p| p.namespace_defaulted) {
            if !self.applied_policies.contains(p) {
                tracing::warn!(target: LOG_TARGET, policy = %p.full_name(), origin = %p.origin, "CiliumNetworkPolicy without metadata.namespace, applied in `default` (Cilium would apply it clusterwide)");
            }
        }
        let mut cidr_ids = BTreeMap::new();
        for c in policy::cidr_prefixes(&policies) {
            let id = self
                .store
                .allocate_identity(&identity::cidr_labels(&c.to_string()))
                .map_err(exhausted_identity)?;
            cidr_ids.insert(c, id);
        }
        let ids: IdentityAllocator = self.store.identities()?;
        let all_eps = self.store.endpoints()?;
        let eps: Vec<EndpointRecord> = all_eps
            .iter()
            .filter(|e| e.node == self.cfg.node_name)
            .cloned()
            .collect();
        let locals: Vec<LocalEndpoint> = eps
            .iter()
            .map(|e| LocalEndpoint {
                ep_id: e.ep_id,
                identity: e.identity,
            })
            .collect();
        let mut cluster_named_ports: Vec<_> = all_eps
            .iter()
            .flat_map(|e| e.ports.iter().cloned())
            .collect();
        cluster_named_ports.sort_unstable();
        cluster_named_ports.dedup();
        let opts = policy::CompileOptions {
            allow_localhost: self.cfg.allow_localhost,
            named_ports: eps
                .iter()
                .filter(|e| !e.ports.is_empty())
                .map(|e| (e.ep_id, e.ports.clone()))
                .collect(),
            cluster_named_ports,
        };
        let compiled = policy::compile_with(&policies, &locals, &ids, &cidr_ids, &opts);

        // Desired ipcache: the store's prefixes win over the node's own
        // addresses, which win over CIDR identities.
        let mut want_ipc: BTreeMap<Cidr, IpcacheValue> = cidr_ids
            .iter()
            .map(|(c, id)| {
                (
                    *c,
                    IpcacheValue {
                        identity: *id,
                        tunnel_ep: 0,
                    },
                )
            })
            .collect();
        // The node's own addresses are the host (Cilium's reserved:host),
        // so `fromEntities: [host]` matches traffic from the node stack.
        let local_addrs = in_netns(
            self.cfg.netns.as_deref(),
            crate::kernel::netns::ipv4_addresses,
        )?;
        for &ip in &local_addrs {
            want_ipc.insert(
                Cidr::host(ip),
                IpcacheValue {
                    identity: crate::kernel::maps::identity::HOST,
                    tunnel_ep: 0,
                },
            );
        }
        // Other nodes: their pod CIDR goes through the tunnel to them (an
        // address not yet known there is WORLD, as in Cilium), their own
        // address is REMOTE_NODE.
        let mut remote_nodes = 0;
        for n in self.store.nodes()? {
            let Some(ip) = n.ip else { continue };
            if n.name == self.cfg.node_name || Some(ip) == self.cfg.node_ip {
                continue;
            }
            remote_nodes += 1;
            want_ipc.insert(
                Cidr::host(ip),
                IpcacheValue {
                    identity: crate::kernel::maps::identity::REMOTE_NODE,
                    tunnel_ep: 0,
                },
            );
            if self.tunnel_ifindex != 0 {
                want_ipc.insert(
                    n.pod_cidr,
                    IpcacheValue {
                        identity: crate::kernel::maps::identity::WORLD,
                        tunnel_ep: u32::from(ip),
                    },
                );
            }
        }
        self.remote_nodes = remote_nodes;
        // The store's prefixes (pods of every node, with their node): a
        // pod elsewhere is reached through the tunnel to its node.
        for (c, e) in self.store.ipcache()? {
            let tunnel_ep = match e.node_ip {
                Some(ip) if Some(ip) != self.cfg.node_ip && self.tunnel_ifindex != 0 => {
                    u32::from(ip)
                }
                _ => 0,
            };
            want_ipc.insert(
                c,
                IpcacheValue {
                    identity: e.identity,
                    tunnel_ep,
                },
            );
        }
        let have_ipc: BTreeMap<Cidr, IpcacheValue> = self
            .maps
            .prefixes()?
            .into_iter()
            .filter_map(|(ip, len, v)| Cidr::new(ip, len).map(|c| (c, v)))
            .collect();
        for (c, v) in &want_ipc {
            if have_ipc.get(c) != Some(v) {
                self.maps
                    .upsert_prefix(c.addr, c.len, v.identity, v.tunnel_ep)?;
            }
        }

        let current = self.maps.all_policy_entries()?;
        let diff = policy::diff_entries(&current, &compiled.entries);
        for e in &diff.upsert {
            self.maps.upsert_policy(e)?;
        }

        let have_eps: BTreeMap<u32, Endpoint> = self
            .maps
            .endpoints()?
            .into_iter()
            .map(|e| (ip4_key(e.ip), e))
            .collect();
        let mut want_keys = BTreeSet::new();
        for e in &eps {
            let enf: Enforcement = compiled.enforce.get(&e.ep_id).copied().unwrap_or_default();
            let want = Endpoint {
                ip: e.ip,
                ifindex: e.ifindex,
                pod_mac: e.pod_mac,
                node_mac: e.node_mac,
                identity: e.identity,
                ep_id: e.ep_id,
                enforce_ingress: enf.ingress,
                enforce_egress: enf.egress,
                audit: false,
            };
            want_keys.insert(ip4_key(e.ip));
            if have_eps.get(&ip4_key(e.ip)) != Some(&want) {
                self.maps.upsert_endpoint(&want)?;
            }
        }
        for (k, e) in &have_eps {
            if !want_keys.contains(k) {
                self.maps.remove_endpoint(e.ip)?;
            }
        }
        for e in &diff.remove {
            self.maps.remove_policy(e)?;
        }
        for c in have_ipc.keys() {
            if !want_ipc.contains_key(c) {
                self.maps.remove_prefix(c.addr, c.len)?;
            }
        }
        if !diff.is_empty() {
            tracing::info!(
                target: LOG_TARGET,
                written = diff.upsert.len(),
                removed = diff.remove.len(),
                "policy map updated"
            );
        }
        self.compiled = compiled;
        self.applied_policies = policies;
        self.sync_services(&local_addrs)?;
        self.apply_lb();
        self.write_enrichment()
    }

    // ---- services ---------------------------------------------------------------

    /// Recomputes the desired load-balancer state from the services
    /// directory, the store's cluster services and every node's endpoints.
    /// NodePort frontends go on `--node-ip`, else on every non-loopback
    /// address of the node (`local_addrs`).
    fn sync_services(&mut self, local_addrs: &[Ipv4Addr]) -> AgentResult<()> {
        let node_ips: Vec<Ipv4Addr> = match self.cfg.node_ip {
            Some(ip) => vec![ip],
            None => local_addrs
                .iter()
                .copied()
                .filter(|a| !a.is_loopback())
                .collect(),
        };
        let store = self.store.cluster_services()?;
        let endpoints = self.store.endpoints()?;
        self.services.recompute(&store, &endpoints, &node_ips);
        Ok(())
    }

    /// Writes the desired LB state into the kernel's maps and attaches the
    /// NodePort program to the devices of the NodePort addresses. A failure
    /// is logged and kept for `status`; the next sync retries.
    fn apply_lb(&mut self) {
        let desired = self.services.lb();
        let res = self
            .lb
            .apply(desired)
            .and_then(|d| {
                if !d.is_empty() {
                    tracing::info!(
                        target: LOG_TARGET,
                        frontends = desired.frontends.len(),
                        backends = desired.backends.len(),
                        upserted = d.upsert_frontends.len(),
                        deleted = d.delete_frontends.len(),
                        "service load balancing updated"
                    );
                }
                let addrs = node_port_addresses(desired);
                self.lb
                    .ensure_netdevs(&mut self.dp, self.cfg.netns.as_deref(), &addrs)
            })
            .map(|(added, removed)| {
                for dev in added {
                    tracing::info!(target: LOG_TARGET, device = %dev, "NodePort program attached");
                }
                for dev in removed {
                    tracing::info!(target: LOG_TARGET, device = %dev, "NodePort program detached (no NodePort service)");
                }
            });
        match res {
            Ok(()) => self.lb_error = None,
            Err(e) => {
                let msg = format!("service load balancing not in force: {e}");
                if self.lb_error.as_deref() != Some(msg.as_str()) {
                    tracing::error!(target: LOG_TARGET, "{msg}");
                }
                self.lb_error = Some(msg);
            }
        }
    }

    /// Re-reads the services directory if its content changed and, if so,
    /// converges. Returns whether it changed.
    pub fn poll_services(&mut self) -> AgentResult<bool> {
        if !self.services.poll_dir() {
            return Ok(false);
        }
        self.sync()?;
        Ok(true)
    }

    /// `GET /v1/services`: frontends, backends and their state, and what
    /// is not in force.
    pub fn services(&self) -> ServiceList {
        self.services.list()
    }

    /// Stores the Services of `yaml` (with their EndpointSlices) in the
    /// cluster store, one entry per service, and applies them. Every
    /// object is validated first, also against the services in force
    /// (frontends, node ports): an invalid text is a 400 naming file,
    /// object and reason, and changes nothing. Returns the keys stored.
    pub fn apply_cluster_services(&mut self, yaml: &str) -> AgentResult<Vec<String>> {
        let groups = services::split_for_store(yaml, self.services.options())
            .map_err(AgentError::BadRequest)?;
        let mut store = self.store.cluster_services()?;
        for (key, text) in &groups {
            self.services
                .check_entry(key, text, &store)
                .map_err(AgentError::BadRequest)?;
            store.insert(key.to_string(), text.clone());
        }
        let mut keys = Vec::new();
        for (key, text) in groups {
            let k = key.to_string();
            self.store
                .put_cluster_service(&k, &text)
                .map_err(|e| match e {
                    StoreError::InvalidService { .. } => AgentError::BadRequest(e.to_string()),
                    e => AgentError::Store(e),
                })?;
            keys.push(k);
        }
        self.sync()?;
        Ok(keys)
    }

    /// Removes the cluster service `ns/name` (a bare name is in
    /// `default`); `false` if there was none.
    pub fn delete_cluster_service(&mut self, name: &str) -> AgentResult<bool> {
        let key = ObjectName::parse(name)
            .ok_or_else(|| AgentError::BadRequest(format!("{name:?} is not <namespace>/<name>")))?;
        let r = self.store.delete_cluster_service(&key.to_string())?;
        self.sync()?;
        Ok(r)
    }

    /// The enrichment the exporter needs (flow_parser's static format).
    pub fn enrichment(&self) -> AgentResult<EnrichmentSpec> {
        let ids = self.store.identities()?;
        let eps = self.local_endpoints()?;
        Ok(EnrichmentSpec {
            node_name: self.cfg.node_name.clone(),
            cluster: self.cfg.cluster.clone(),
            endpoints: eps
                .iter()
                .map(|e| endpoint_info(e, u32::from(e.ep_id), &ids))
                .collect(),
            identities: ids
                .allocated()
                .iter()
                .map(|(id, l)| (*id, l.iter().cloned().collect()))
                .collect(),
            interfaces: eps
                .iter()
                .map(|e| (e.ifindex, e.host_iface.clone()))
                .collect(),
            services: self.services.enrichment(&self.all_node_ips()?),
            remote_endpoints: self
                .store
                .endpoints()?
                .iter()
                .filter(|e| e.node != self.cfg.node_name)
                // Not local: no endpoint id, as Hubble shows remote pods.
                .map(|e| endpoint_info(e, 0, &ids))
                .collect(),
            nodes: self
                .store
                .nodes()?
                .into_iter()
                .filter_map(|n| {
                    n.hubble_address.map(|address| NodeInfo {
                        name: n.name,
                        address,
                        tls_server_name: None,
                    })
                })
                .collect(),
            policies: self.policy_origins(),
            ..EnrichmentSpec::default()
        })
    }

    /// Rule origin → the policies behind it, as the exporter needs them.
    pub fn policy_origins(&self) -> BTreeMap<u32, Vec<PolicyInfo>> {
        self.policy_origins.table(&self.compiled.origins)
    }

    /// Every node's address (the registry's, and this node's own NodePort
    /// addresses), for the NodePort entries of the enrichment.
    fn all_node_ips(&self) -> AgentResult<Vec<Ipv4Addr>> {
        let mut ips: BTreeSet<Ipv4Addr> = self.store.nodes()?.iter().filter_map(|n| n.ip).collect();
        ips.extend(self.cfg.node_ip);
        ips.extend(self.services.node_ips());
        Ok(ips.into_iter().collect())
    }

    fn write_enrichment(&self) -> AgentResult<()> {
        let spec = self.enrichment()?;
        let json = serde_json::to_vec_pretty(&spec).expect("enrichment serializes");
        let path = &self.cfg.enrichment_file;
        if std::fs::read(path).ok().as_deref() == Some(json.as_slice()) {
            return Ok(());
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| AgentError::Io {
                op: "create dir of",
                path: path.clone(),
                source,
            })?;
        }
        write_atomic(path, &json).map_err(|source| AgentError::Io {
            op: "write",
            path: path.clone(),
            source,
        })
    }
}

/// An endpoint as the enrichment file describes it, under endpoint id `id`.
fn endpoint_info(e: &EndpointRecord, id: u32, ids: &IdentityAllocator) -> EndpointInfo {
    EndpointInfo {
        id,
        ips: vec![IpAddr::V4(e.ip)],
        namespace: e.namespace.clone(),
        pod_name: e.pod_name.clone(),
        labels: ids
            .labels(e.identity)
            .unwrap_or_default()
            .into_iter()
            .collect(),
        workloads: Vec::new(),
        identity: e.identity,
        cluster: String::new(),
    }
}

/// The content of every policy file of a directory.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| policy::is_policy_file(p))
        .filter_map(|p| std::fs::read(&p).ok().map(|b| (p, b)))
        .collect()
}

//! Enrichment: who the addresses and identities in a flow are.
//!
//! The parser only sees endpoint ids, identities, addresses and an ifindex.
//! Everything else (namespace, pod, labels, workloads, services, DNS names,
//! interface names) comes through narrow lookup traits, so the source of that
//! data (a file, the datapath agent's API, a test table) is the caller's
//! choice:
//!
//! - [`EndpointLookup`]: endpoint id / IP → [`EndpointInfo`] (local pods by
//!   id or address; other nodes' pods by address only, reported with id 0
//!   as Hubble reports endpoints that are not local);
//! - [`IdentityLookup`]: identity → labels, with the reserved identities
//!   (`reserved:host`, `reserved:world`, ...) built in;
//! - [`ServiceLookup`] (optional): frontend address → service;
//! - [`NameLookup`] (optional): IP → DNS names;
//! - [`InterfaceLookup`] (optional): ifindex → interface name.
//!
//! [`StaticEnrichment`] implements all of them from a YAML or JSON file, and
//! [`Enricher`] applies them to a flow. The file also carries the cluster's
//! node list ([`NodeInfo`]), which the exporter announces on `peer.Peer/Notify`.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proto::flow::{
    DropReason, Endpoint, Flow, Policy, Service, TrafficDirection, Verdict, Workload,
};
use serde::{Deserialize, Serialize};

use crate::defaults::DEFAULT_CLUSTER_NAME;

/// What is known about one endpoint (a pod, or the host).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointInfo {
    /// Endpoint id (non-zero), as the datapath reports it.
    pub id: u32,
    /// Addresses of the endpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpAddr>,
    /// Kubernetes namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Pod name.
    #[serde(default, skip_serializing_if = "String::is_empty", alias = "pod")]
    pub pod_name: String,
    /// Labels in Cilium's `source:key=value` form, e.g. `k8s:app=x`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Owning workloads (e.g. the Deployment).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<WorkloadInfo>,
    /// Security identity, 0 if unknown.
    #[serde(default)]
    pub identity: u32,
    /// Cluster name; empty means the enrichment's cluster.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
}

/// A workload that owns an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadInfo {
    /// Workload name.
    pub name: String,
    /// Kind, e.g. `Deployment`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
}

/// A service frontend.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceInfo {
    /// Service name.
    pub name: String,
    /// Namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Frontend addresses (ClusterIPs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpAddr>,
    /// Frontend ports; empty means any port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u16>,
}

/// One policy a rule origin resolves to: what Hubble's `flow.Policy` says
/// about the policy that allowed or denied a flow.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyInfo {
    /// `metadata.name`.
    pub name: String,
    /// Namespace; empty for a clusterwide policy.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// `CiliumNetworkPolicy`, `CiliumClusterwideNetworkPolicy` or `NetworkPolicy`.
    pub kind: String,
    /// The policy's labels in Cilium's form
    /// (`k8s:io.cilium.k8s.policy.name=rule1`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// The agent's policy revision that last changed this policy.
    #[serde(default)]
    pub revision: u64,
}

/// One node of the cluster, as the exporter announces it on
/// `peer.Peer/Notify` (the relay connects to every node listed).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeInfo {
    /// Node name, without the cluster (the spec's `cluster` applies):
    /// `kind-worker`, not `prod/kind-worker`.
    pub name: String,
    /// `host:port` of the node's Hubble (exporter) gRPC server; a bare host
    /// gets Hubble's port 4244 at the relay.
    pub address: String,
    /// The server name of the node's certificate when the exporters serve
    /// TLS; `None`: Cilium's `<node>.<cluster>.hubble-grpc.cilium.io`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
}

/// Policy rule origin → policies.
pub trait PolicyLookup: Send + Sync {
    /// The policies behind `origin` (empty if unknown or 0).
    fn policies(&self, origin: u32) -> Vec<PolicyInfo>;

    /// [`PolicyLookup::policies`] as `flow.Policy` messages written over
    /// `to` (its messages' buffers reused when the lookup can; the
    /// default converts what [`PolicyLookup::policies`] returns).
    fn policies_into(&self, origin: u32, to: &mut Vec<Policy>) {
        to.clear();
        to.extend(self.policies(origin).into_iter().map(policy_proto));
    }
}

/// A `flow.Policy` from what a lookup says.
fn policy_proto(p: PolicyInfo) -> Policy {
    Policy {
        name: p.name,
        namespace: p.namespace,
        labels: p.labels,
        revision: p.revision,
        kind: p.kind,
    }
}

/// Endpoint id / IP → endpoint.
pub trait EndpointLookup: Send + Sync {
    /// The local endpoint with this id.
    fn by_id(&self, id: u32) -> Option<Arc<EndpointInfo>>;
    /// The endpoint owning this address: a local one, else another node's,
    /// which has id 0 (only local endpoints have ids that mean anything
    /// here, as in Hubble).
    fn by_ip(&self, ip: IpAddr) -> Option<Arc<EndpointInfo>>;

    /// A number that changes whenever an answer of this lookup may have
    /// changed (an endpoint appeared, changed or went away), so that the
    /// parser may keep the endpoints it built while it stays the same
    /// ([`crate::Parser::decode_shared_into`]). `None` (the default): the
    /// lookup does not say, and nothing built from it is kept.
    fn generation(&self) -> Option<u64> {
        None
    }
}

/// Identity → labels.
pub trait IdentityLookup: Send + Sync {
    /// The labels of an identity. The default knows only the reserved
    /// identities; implementations should fall back to
    /// [`reserved_identity_labels`] too.
    fn labels(&self, identity: u32) -> Option<Vec<String>> {
        reserved_identity_labels(identity)
    }

    /// [`IdentityLookup::labels`] into `to`, replacing its contents (empty
    /// when unknown). Implementations that hold the labels override it to
    /// copy into `to`'s buffers: the decoder calls it once per flow side.
    fn labels_into(&self, identity: u32, to: &mut Vec<String>) {
        *to = self.labels(identity).unwrap_or_default();
    }

    /// As [`EndpointLookup::generation`]: changes whenever an identity's
    /// labels may have changed; `None` (the default) when the lookup does
    /// not say.
    fn generation(&self) -> Option<u64> {
        None
    }
}

/// The reserved identities' labels, built once ([`reserved_identity_labels`]).
static RESERVED_LABELS: std::sync::LazyLock<Vec<(u32, Vec<String>)>> =
    std::sync::LazyLock::new(|| {
        RESERVED_IDENTITIES
            .iter()
            .filter_map(|&(id, _)| Some((id, reserved_identity_labels(id)?)))
            .collect()
    });

/// The labels of a reserved identity copied into `to` (reusing its
/// buffers); empty when `id` is not a reserved identity with labels.
pub fn reserved_identity_labels_into(id: u32, to: &mut Vec<String>) {
    match RESERVED_LABELS.iter().find(|(i, _)| *i == id) {
        Some((_, l)) => to.clone_from(l),
        None => to.clear(),
    }
}

/// Frontend address → service (optional).
pub trait ServiceLookup: Send + Sync {
    /// The service whose frontend is `ip:port`.
    fn by_addr(&self, ip: IpAddr, port: u16) -> Option<ServiceInfo>;

    /// [`ServiceLookup::by_addr`] as the `flow.Service` written over `to`
    /// (`None` when there is none). Implementations that hold the services
    /// override it to copy into `to`'s strings: the decoder calls it once
    /// per flow side.
    fn service_into(&self, ip: IpAddr, port: u16, to: &mut Option<Service>) {
        *to = self.by_addr(ip, port).map(service_proto);
    }
}

/// IP → DNS names (optional).
pub trait NameLookup: Send + Sync {
    /// Names known for `ip`, empty if none.
    fn names(&self, ip: IpAddr) -> Vec<String>;

    /// [`NameLookup::names`] into `to`, replacing its contents;
    /// implementations that hold the names override it to reuse `to`'s
    /// buffers.
    fn names_into(&self, ip: IpAddr, to: &mut Vec<String>) {
        *to = self.names(ip);
    }
}

/// ifindex → interface name (optional).
pub trait InterfaceLookup: Send + Sync {
    /// The name of the interface, if known.
    fn if_name(&self, ifindex: u32) -> Option<String>;

    /// [`InterfaceLookup::if_name`] copied into `to`; whether it was known
    /// (`to` is left as it was when not).
    fn if_name_into(&self, ifindex: u32, to: &mut String) -> bool {
        match self.if_name(ifindex) {
            Some(n) => {
                *to = n;
                true
            }
            None => false,
        }
    }
}

/// The reserved identities: `(id, name)`; labels are `reserved:<name>`
/// ([`ebpf::identity::LABELLED`], the one table; 0 has no labels).
pub const RESERVED_IDENTITIES: &[(u32, &str)] = ebpf::identity::LABELLED;

/// The name of a reserved identity (`2` → `"world"`).
pub fn reserved_identity_name(id: u32) -> Option<&'static str> {
    RESERVED_IDENTITIES
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, n)| *n)
}

/// The id of a reserved identity name (`"world"` → `2`).
pub fn reserved_identity_from_name(name: &str) -> Option<u32> {
    RESERVED_IDENTITIES
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(i, _)| *i)
}

/// The labels of a reserved identity, sorted, as Cilium gives them:
/// `["reserved:<name>"]`, and for kube-apiserver (7)
/// `["reserved:kube-apiserver", "reserved:remote-node"]`
/// ([`ebpf::identity::labels`]).
pub fn reserved_identity_labels(id: u32) -> Option<Vec<String>> {
    ebpf::identity::labels(id)
}

/// Why an enrichment file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EnrichmentError {
    /// The file could not be read.
    #[error("read enrichment file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// YAML syntax or schema error (with line and column).
    #[error("parse enrichment YAML {origin}")]
    Yaml {
        /// The file, or `<string>`.
        origin: String,
        /// The parser error.
        #[source]
        source: serde_yaml::Error,
    },
    /// JSON syntax or schema error (with line and column).
    #[error("parse enrichment JSON {origin}")]
    Json {
        /// The file, or `<string>`.
        origin: String,
        /// The parser error.
        #[source]
        source: serde_json::Error,
    },
    /// The content is well-formed but inconsistent.
    #[error("invalid enrichment: {0}")]
    Invalid(String),
}

/// The file form of [`StaticEnrichment`] (YAML or JSON):
///
/// ```yaml
/// node_name: kind-worker
/// cluster: default
/// endpoints:
///   - id: 1234
///     ips: [10.244.1.5, "fd00:10:244:1::5"]
///     namespace: default
///     pod_name: deathstar-6fb5694d48-5hmds
///     labels: ["k8s:org=empire", "k8s:class=deathstar"]
///     workloads: [{name: deathstar, kind: Deployment}]
///     identity: 15153
/// remote_endpoints:
///   - id: 0
///     ips: [10.244.2.7]
///     namespace: default
///     pod_name: xwing
///     labels: ["k8s:org=alliance", "k8s:class=xwing"]
///     identity: 54021
/// nodes:
///   - {name: kind-worker, address: "172.18.0.2:4244"}
///   - {name: kind-worker2, address: "172.18.0.3:4244", tls_server_name: kind-worker2.default.hubble-grpc.cilium.io}
/// identities:
///   15153: ["k8s:org=empire", "k8s:class=deathstar"]
/// services:
///   - {name: deathstar, namespace: default, ips: [10.96.0.100], ports: [80]}
/// names:
///   10.96.0.100: [deathstar.default.svc.cluster.local]
/// interfaces:
///   12: lxc1a2b3c4d
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichmentSpec {
    /// Node name flows get.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_name: String,
    /// Cluster name; empty means `default`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    /// Local endpoints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointInfo>,
    /// Pods on other nodes, looked up by address only: their `id` is
    /// ignored (0 is fine, and ids may repeat across nodes) and flows report
    /// them with id 0 and without workloads, as Hubble reports endpoints that
    /// are not local. A local endpoint's address wins over a remote one's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remote_endpoints: Vec<EndpointInfo>,
    /// The cluster's nodes (this one included), announced on
    /// `peer.Peer/Notify`; empty: the exporter announces itself only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeInfo>,
    /// Identity → labels (endpoint identities are added automatically).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub identities: BTreeMap<u32, Vec<String>>,
    /// Service frontends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceInfo>,
    /// IP → DNS names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub names: BTreeMap<IpAddr, Vec<String>>,
    /// ifindex → interface name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub interfaces: BTreeMap<u32, String>,
    /// Policy rule origin (the cookie in policy map entries and in drop and
    /// policy-verdict events) → every policy it stands for.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub policies: BTreeMap<u32, Vec<PolicyInfo>>,
}

/// Enrichment from a fixed table, loaded from a file or built in code.
#[derive(Debug, Clone, Default)]
pub struct StaticEnrichment {
    spec: EnrichmentSpec,
    by_id: HashMap<u32, Arc<EndpointInfo>>,
    by_ip: HashMap<IpAddr, Arc<EndpointInfo>>,
    identities: HashMap<u32, Vec<String>>,
}

impl StaticEnrichment {
    /// Builds the lookup tables, checking that local endpoint ids are
    /// non-zero and unique, that no address belongs to two local or two
    /// remote endpoints, and that node names are set, unique and without a
    /// cluster (`/`), with an address each.
    pub fn new(spec: EnrichmentSpec) -> Result<Self, EnrichmentError> {
        let mut by_id = HashMap::new();
        let mut by_ip = HashMap::new();
        let mut identities: HashMap<u32, Vec<String>> = spec
            .identities
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        for ep in &spec.endpoints {
            if ep.id == 0 {
                return Err(EnrichmentError::Invalid(format!(
                    "endpoint {}/{} has id 0 (ids must be non-zero)",
                    ep.namespace, ep.pod_name
                )));
            }
            let info = Arc::new(ep.clone());
            if by_id.insert(ep.id, Arc::clone(&info)).is_some() {
                return Err(EnrichmentError::Invalid(format!(
                    "duplicate endpoint id {}",
                    ep.id
                )));
            }
            for ip in &ep.ips {
                if let Some(other) = by_ip.insert(*ip, Arc::clone(&info)) {
                    return Err(EnrichmentError::Invalid(format!(
                        "address {ip} belongs to endpoints {} and {}",
                        other.id, ep.id
                    )));
                }
            }
            if ep.identity != 0 && !ep.labels.is_empty() {
                identities
                    .entry(ep.identity)
                    .or_insert_with(|| ep.labels.clone());
            }
        }
        let mut remote_ips: HashMap<IpAddr, &EndpointInfo> = HashMap::new();
        for ep in &spec.remote_endpoints {
            // What flows get for a pod that is not local (Hubble's remote
            // endpoint): no id, no workloads.
            let info = Arc::new(EndpointInfo {
                id: 0,
                workloads: Vec::new(),
                ..ep.clone()
            });
            for ip in &ep.ips {
                if let Some(other) = remote_ips.insert(*ip, ep) {
                    return Err(EnrichmentError::Invalid(format!(
                        "address {ip} belongs to remote endpoints {}/{} and {}/{}",
                        other.namespace, other.pod_name, ep.namespace, ep.pod_name
                    )));
                }
                by_ip.entry(*ip).or_insert_with(|| Arc::clone(&info));
            }
            if ep.identity != 0 && !ep.labels.is_empty() {
                identities
                    .entry(ep.identity)
                    .or_insert_with(|| ep.labels.clone());
            }
        }
        check_nodes(&spec.nodes)?;
        for svc in &spec.services {
            if svc.name.is_empty() {
                return Err(EnrichmentError::Invalid(
                    "a service has an empty name".into(),
                ));
            }
        }
        Ok(Self {
            spec,
            by_id,
            by_ip,
            identities,
        })
    }

    /// Parses YAML (JSON is valid YAML too).
    pub fn from_yaml_str(s: &str) -> Result<Self, EnrichmentError> {
        let spec = serde_yaml::from_str(s).map_err(|source| EnrichmentError::Yaml {
            origin: "<string>".into(),
            source,
        })?;
        Self::new(spec)
    }

    /// Parses JSON.
    pub fn from_json_str(s: &str) -> Result<Self, EnrichmentError> {
        let spec = serde_json::from_str(s).map_err(|source| EnrichmentError::Json {
            origin: "<string>".into(),
            source,
        })?;
        Self::new(spec)
    }

    /// Loads a `.json` file as JSON and anything else as YAML.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, EnrichmentError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| EnrichmentError::Io {
            path: path.to_owned(),
            source,
        })?;
        let origin = path.display().to_string();
        let spec = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text)
                .map_err(|source| EnrichmentError::Json { origin, source })?
        } else {
            serde_yaml::from_str(&text)
                .map_err(|source| EnrichmentError::Yaml { origin, source })?
        };
        Self::new(spec)
    }

    /// The spec this was built from.
    pub fn spec(&self) -> &EnrichmentSpec {
        &self.spec
    }

    /// The spec as YAML.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(&self.spec).unwrap_or_default()
    }

    /// The node name of the file (may be empty).
    pub fn node_name(&self) -> &str {
        &self.spec.node_name
    }

    /// The cluster name, `default` when unset.
    pub fn cluster_name(&self) -> &str {
        if self.spec.cluster.is_empty() {
            DEFAULT_CLUSTER_NAME
        } else {
            &self.spec.cluster
        }
    }

    /// The cluster's nodes (empty when the file lists none).
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.spec.nodes
    }
}

/// Node names set, unique and without `/`; addresses set.
fn check_nodes(nodes: &[NodeInfo]) -> Result<(), EnrichmentError> {
    let mut names = std::collections::HashSet::new();
    for n in nodes {
        if n.name.is_empty() {
            return Err(EnrichmentError::Invalid(format!(
                "a node has an empty name (address {:?})",
                n.address
            )));
        }
        if n.name.contains('/') {
            return Err(EnrichmentError::Invalid(format!(
                "node name {:?} contains '/': give the bare node name, the cluster comes from `cluster`",
                n.name
            )));
        }
        if n.address.trim().is_empty() {
            return Err(EnrichmentError::Invalid(format!(
                "node {} has an empty address (expected host:port of its Hubble server)",
                n.name
            )));
        }
        if !names.insert(n.name.as_str()) {
            return Err(EnrichmentError::Invalid(format!(
                "duplicate node name {}",
                n.name
            )));
        }
    }
    Ok(())
}

impl EndpointLookup for StaticEnrichment {
    fn by_id(&self, id: u32) -> Option<Arc<EndpointInfo>> {
        self.by_id.get(&id).cloned()
    }
    fn by_ip(&self, ip: IpAddr) -> Option<Arc<EndpointInfo>> {
        self.by_ip.get(&ip).cloned()
    }
    /// Never changes: a new file content is a new `StaticEnrichment`
    /// (and a new enricher).
    fn generation(&self) -> Option<u64> {
        Some(0)
    }
}

impl IdentityLookup for StaticEnrichment {
    fn labels(&self, identity: u32) -> Option<Vec<String>> {
        self.identities
            .get(&identity)
            .cloned()
            .or_else(|| reserved_identity_labels(identity))
    }

    fn labels_into(&self, identity: u32, to: &mut Vec<String>) {
        match self.identities.get(&identity) {
            Some(l) => to.clone_from(l),
            None => reserved_identity_labels_into(identity, to),
        }
    }

    /// Never changes (see the endpoint lookup's).
    fn generation(&self) -> Option<u64> {
        Some(0)
    }
}

impl ServiceLookup for StaticEnrichment {
    fn by_addr(&self, ip: IpAddr, port: u16) -> Option<ServiceInfo> {
        self.spec
            .services
            .iter()
            .find(|s| s.ips.contains(&ip) && (s.ports.is_empty() || s.ports.contains(&port)))
            .cloned()
    }

    fn service_into(&self, ip: IpAddr, port: u16, to: &mut Option<Service>) {
        let found = self
            .spec
            .services
            .iter()
            .find(|s| s.ips.contains(&ip) && (s.ports.is_empty() || s.ports.contains(&port)));
        match found {
            Some(s) => {
                let Service { name, namespace } = to.get_or_insert_with(Service::default);
                name.clone_from(&s.name);
                namespace.clone_from(&s.namespace);
            }
            None => *to = None,
        }
    }
}

impl NameLookup for StaticEnrichment {
    fn names(&self, ip: IpAddr) -> Vec<String> {
        self.spec.names.get(&ip).cloned().unwrap_or_default()
    }

    fn names_into(&self, ip: IpAddr, to: &mut Vec<String>) {
        match self.spec.names.get(&ip) {
            Some(n) => to.clone_from(n),
            None => to.clear(),
        }
    }
}

impl PolicyLookup for StaticEnrichment {
    fn policies(&self, origin: u32) -> Vec<PolicyInfo> {
        self.spec.policies.get(&origin).cloned().unwrap_or_default()
    }

    fn policies_into(&self, origin: u32, to: &mut Vec<Policy>) {
        let from = self
            .spec
            .policies
            .get(&origin)
            .map_or(&[][..], Vec::as_slice);
        to.truncate(from.len());
        for (t, f) in to.iter_mut().zip(from) {
            // Every field, by name: one added to `Policy` fails to compile.
            let Policy {
                name,
                namespace,
                labels,
                revision,
                kind,
            } = t;
            name.clone_from(&f.name);
            namespace.clone_from(&f.namespace);
            labels.clone_from(&f.labels);
            *revision = f.revision;
            kind.clone_from(&f.kind);
        }
        let n = to.len();
        to.extend(from[n..].iter().cloned().map(policy_proto));
    }
}

impl InterfaceLookup for StaticEnrichment {
    fn if_name(&self, ifindex: u32) -> Option<String> {
        self.spec.interfaces.get(&ifindex).cloned()
    }

    fn if_name_into(&self, ifindex: u32, to: &mut String) -> bool {
        match self.spec.interfaces.get(&ifindex) {
            Some(n) => {
                to.clone_from(n);
                true
            }
            None => false,
        }
    }
}

/// What the event tells about one side of a flow, before enrichment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SideHint {
    /// Endpoint id from the event, 0 if none.
    pub endpoint_id: u32,
    /// Identity from the event, 0 if none.
    pub identity: u32,
    /// Address from the packet.
    pub ip: Option<IpAddr>,
    /// L4 port from the packet, 0 if none.
    pub port: u16,
}

/// Applies the lookups to flows. Cheap to clone (it holds `Arc`s).
#[derive(Clone)]
pub struct Enricher {
    endpoints: Option<Arc<dyn EndpointLookup>>,
    identities: Option<Arc<dyn IdentityLookup>>,
    services: Option<Arc<dyn ServiceLookup>>,
    names: Option<Arc<dyn NameLookup>>,
    interfaces: Option<Arc<dyn InterfaceLookup>>,
    policies: Option<Arc<dyn PolicyLookup>>,
    cluster_name: String,
}

impl std::fmt::Debug for Enricher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enricher")
            .field("endpoints", &self.endpoints.is_some())
            .field("identities", &self.identities.is_some())
            .field("services", &self.services.is_some())
            .field("names", &self.names.is_some())
            .field("interfaces", &self.interfaces.is_some())
            .field("policies", &self.policies.is_some())
            .field("cluster_name", &self.cluster_name)
            .finish()
    }
}

impl Default for Enricher {
    fn default() -> Self {
        Self::none()
    }
}

impl Enricher {
    /// No lookups: flows keep the event's ids and identities, and reserved
    /// identities still get their labels.
    pub fn none() -> Self {
        Self {
            endpoints: None,
            identities: None,
            services: None,
            names: None,
            interfaces: None,
            policies: None,
            cluster_name: DEFAULT_CLUSTER_NAME.to_string(),
        }
    }

    /// Every lookup from one [`StaticEnrichment`], and its cluster name.
    pub fn from_static(s: Arc<StaticEnrichment>) -> Self {
        Self {
            cluster_name: s.cluster_name().to_string(),
            endpoints: Some(Arc::clone(&s) as Arc<dyn EndpointLookup>),
            identities: Some(Arc::clone(&s) as Arc<dyn IdentityLookup>),
            services: Some(Arc::clone(&s) as Arc<dyn ServiceLookup>),
            names: Some(Arc::clone(&s) as Arc<dyn NameLookup>),
            interfaces: Some(Arc::clone(&s) as Arc<dyn InterfaceLookup>),
            policies: Some(s as Arc<dyn PolicyLookup>),
        }
    }

    /// Sets the endpoint lookup.
    pub fn with_endpoints(mut self, l: Arc<dyn EndpointLookup>) -> Self {
        self.endpoints = Some(l);
        self
    }
    /// Sets the identity lookup.
    pub fn with_identities(mut self, l: Arc<dyn IdentityLookup>) -> Self {
        self.identities = Some(l);
        self
    }
    /// Sets the service lookup.
    pub fn with_services(mut self, l: Arc<dyn ServiceLookup>) -> Self {
        self.services = Some(l);
        self
    }
    /// Sets the DNS name lookup.
    pub fn with_names(mut self, l: Arc<dyn NameLookup>) -> Self {
        self.names = Some(l);
        self
    }
    /// Sets the interface name lookup.
    pub fn with_interfaces(mut self, l: Arc<dyn InterfaceLookup>) -> Self {
        self.interfaces = Some(l);
        self
    }
    /// Sets the policy lookup (rule origin → policies).
    pub fn with_policies(mut self, l: Arc<dyn PolicyLookup>) -> Self {
        self.policies = Some(l);
        self
    }

    /// Fills the policy fields of a policy-verdict flow from the rule
    /// `origin` of its event, as Hubble fills them: an allowed (forwarded
    /// or redirected) verdict gets `{ingress,egress}_allowed_by`, a verdict
    /// dropped by an explicit deny (`POLICY_DENY`) `{ingress,egress}_denied_by`,
    /// by the flow's traffic direction. Default denies (no rule matched,
    /// origin 0) and audited verdicts stay empty.
    pub fn policy_names(&self, origin: u32, flow: &mut Flow) {
        self.policy_names_reusing(origin, flow, &mut Vec::new());
    }

    /// [`Enricher::policy_names`] with the list written over `spare` (its
    /// messages' buffers reused) and moved into the flow; `spare` is left
    /// empty when it was used.
    pub fn policy_names_reusing(&self, origin: u32, flow: &mut Flow, spare: &mut Vec<Policy>) {
        let Some(l) = self.policies.as_ref() else {
            return;
        };
        if origin == 0 {
            return;
        }
        let allowed =
            flow.verdict == Verdict::Forwarded as i32 || flow.verdict == Verdict::Redirected as i32;
        let denied = flow.verdict == Verdict::Dropped as i32
            && flow.drop_reason_desc == DropReason::PolicyDeny as i32;
        if !allowed && !denied {
            return;
        }
        let ingress = flow.traffic_direction == TrafficDirection::Ingress as i32;
        let egress = flow.traffic_direction == TrafficDirection::Egress as i32;
        if !ingress && !egress {
            return;
        }
        let mut list = std::mem::take(spare);
        l.policies_into(origin, &mut list);
        match (ingress, allowed) {
            (true, true) => flow.ingress_allowed_by = list,
            (true, false) => flow.ingress_denied_by = list,
            (false, true) => flow.egress_allowed_by = list,
            (false, false) => flow.egress_denied_by = list,
        }
    }

    /// Sets the cluster name given to endpoints that do not name one.
    pub fn with_cluster_name(mut self, name: impl Into<String>) -> Self {
        self.cluster_name = name.into();
        self
    }

    /// The endpoint for one side: looked up by the event's endpoint id, then
    /// by address. The event's identity wins over the looked-up one (it is
    /// what the datapath decided on); labels come from the endpoint, else
    /// from the identity.
    pub fn endpoint(&self, hint: &SideHint) -> Endpoint {
        let mut e = Endpoint::default();
        self.endpoint_into(hint, &mut e);
        e
    }

    /// [`Enricher::endpoint`] written over `e`, every field replaced, its
    /// strings and lists reusing the buffers `e` already holds (the ring
    /// hands the decoder the flow it overwrites, so steady-state enrichment
    /// copies bytes but allocates nothing).
    pub fn endpoint_into(&self, hint: &SideHint, e: &mut Endpoint) {
        let info = self.endpoints.as_ref().and_then(|l| {
            (hint.endpoint_id != 0)
                .then(|| l.by_id(hint.endpoint_id))
                .flatten()
                .or_else(|| hint.ip.and_then(|ip| l.by_ip(ip)))
        });
        // Every field, by name: a field added to `Endpoint` fails to
        // compile here instead of leaking from the previous flow.
        let Endpoint {
            id,
            identity,
            cluster_name,
            namespace,
            labels,
            pod_name,
            workloads,
        } = e;
        *id = hint.endpoint_id;
        *identity = hint.identity;
        match &info {
            Some(info) => {
                *id = info.id;
                if *identity == 0 {
                    *identity = info.identity;
                }
                namespace.clone_from(&info.namespace);
                pod_name.clone_from(&info.pod_name);
                workloads.truncate(info.workloads.len());
                // Exactly as many as needed on a first fill (a pushed-to
                // empty `Vec` would round up to four).
                workloads.reserve_exact(info.workloads.len() - workloads.len());
                for (i, w) in info.workloads.iter().enumerate() {
                    match workloads.get_mut(i) {
                        Some(to) => {
                            to.name.clone_from(&w.name);
                            to.kind.clone_from(&w.kind);
                        }
                        None => workloads.push(Workload {
                            name: w.name.clone(),
                            kind: w.kind.clone(),
                        }),
                    }
                }
                cluster_name.clone_from(if info.cluster.is_empty() {
                    &self.cluster_name
                } else {
                    &info.cluster
                });
                if info.identity == *identity || info.identity == 0 {
                    if labels.capacity() == 0 {
                        // A first fill: an exact-size copy.
                        *labels = info.labels.clone();
                    } else {
                        labels.clone_from(&info.labels);
                    }
                } else {
                    labels.clear();
                }
            }
            None => {
                namespace.clear();
                pod_name.clear();
                workloads.clear();
                cluster_name.clear();
                labels.clear();
            }
        }
        if labels.is_empty() && *identity != 0 {
            match &self.identities {
                Some(l) => l.labels_into(*identity, labels),
                None => reserved_identity_labels_into(*identity, labels),
            }
        }
        if cluster_name.is_empty() {
            match labels
                .iter()
                .find_map(|l| l.strip_prefix("k8s:io.cilium.k8s.policy.cluster="))
            {
                Some(c) => cluster_name.push_str(c),
                None => cluster_name.clear(),
            }
        }
        if !labels.is_sorted() {
            labels.sort_unstable();
        }
    }

    /// The generations of the endpoint and identity lookups (0 for one
    /// not set), `None` when a set one does not track its changes.
    fn generation(&self) -> Option<(u64, u64)> {
        let e = match &self.endpoints {
            Some(l) => l.generation()?,
            None => 0,
        };
        let i = match &self.identities {
            Some(l) => l.generation()?,
            None => 0,
        };
        Some((e, i))
    }

    /// [`Enricher::endpoint`], shared: the same `Arc` for the same hint as
    /// long as the lookups' generations stay the same (kept in `memo`,
    /// which belongs to this enricher); a new one built otherwise, and
    /// always when a lookup does not track its changes.
    pub(crate) fn shared_endpoint(
        &self,
        hint: &SideHint,
        memo: &mut EndpointMemo,
    ) -> Arc<Endpoint> {
        let Some(generation) = self.generation() else {
            return Arc::new(self.endpoint(hint));
        };
        if memo.generation != Some(generation) || memo.map.len() >= MEMO_ENDPOINTS {
            memo.map.clear();
            memo.generation = Some(generation);
        }
        let key = (hint.endpoint_id, hint.identity, hint.ip);
        if let Some(e) = memo.map.get(&key) {
            return Arc::clone(e);
        }
        let e = Arc::new(self.endpoint(hint));
        memo.map.insert(key, Arc::clone(&e));
        e
    }

    /// Fills `source`, `destination`, the services, the DNS names and the
    /// interface name of `flow`, replacing what these fields held (their
    /// strings and lists are reused: the decoder keeps them across flows).
    pub fn enrich(&self, flow: &mut Flow, src: &SideHint, dst: &SideHint) {
        self.endpoint_into(src, flow.source.get_or_insert_with(Endpoint::default));
        self.endpoint_into(dst, flow.destination.get_or_insert_with(Endpoint::default));
        self.enrich_others(flow, src, dst);
    }

    /// [`Enricher::enrich`] but the endpoints: services, DNS names and the
    /// interface name.
    pub(crate) fn enrich_others(&self, flow: &mut Flow, src: &SideHint, dst: &SideHint) {
        match &self.services {
            Some(s) => {
                for (side, to) in [
                    (src, &mut flow.source_service),
                    (dst, &mut flow.destination_service),
                ] {
                    match side.ip {
                        Some(ip) => s.service_into(ip, side.port, to),
                        None => *to = None,
                    }
                }
            }
            None => {
                flow.source_service = None;
                flow.destination_service = None;
            }
        }
        for (side, to) in [
            (src, &mut flow.source_names),
            (dst, &mut flow.destination_names),
        ] {
            match (&self.names, side.ip) {
                (Some(n), Some(ip)) => n.names_into(ip, to),
                _ => to.clear(),
            }
        }
        if let (Some(l), Some(iface)) = (&self.interfaces, flow.interface.as_mut()) {
            l.if_name_into(iface.index, &mut iface.name);
        }
    }
}

/// Endpoints a memo keeps before it starts over.
const MEMO_ENDPOINTS: usize = 4096;

/// The endpoints one parser built, by the hint they were built from
/// (endpoint id, identity, address: all [`Enricher::endpoint_into`] reads
/// of it), valid for one enricher at the lookups' generations it records.
#[derive(Debug, Default)]
pub(crate) struct EndpointMemo {
    generation: Option<(u64, u64)>,
    map: rustc_hash::FxHashMap<(u32, u32, Option<IpAddr>), Arc<Endpoint>>,
}

impl EndpointMemo {
    /// Forgets every endpoint (the enricher was replaced).
    pub(crate) fn clear(&mut self) {
        self.generation = None;
        self.map.clear();
    }
}

fn service_proto(s: ServiceInfo) -> Service {
    Service {
        name: s.name,
        namespace: s.namespace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
node_name: kind-worker
cluster: prod
endpoints:
  - id: 100
    ips: [10.244.1.5, "fd00::5"]
    namespace: default
    pod_name: deathstar-1
    labels: ["k8s:org=empire", "k8s:class=deathstar"]
    workloads: [{name: deathstar, kind: Deployment}]
    identity: 15153
  - id: 101
    ips: [10.244.1.6]
    namespace: default
    pod: xwing
    labels: ["k8s:org=alliance"]
    identity: 54021
    cluster: other
identities:
  70000: ["k8s:app=remote", "k8s:io.cilium.k8s.policy.cluster=east"]
services:
  - {name: deathstar, namespace: default, ips: [10.96.0.100], ports: [80]}
names:
  10.96.0.100: [deathstar.default.svc.cluster.local]
interfaces:
  12: lxc12
"#;

    fn enricher() -> Enricher {
        Enricher::from_static(Arc::new(StaticEnrichment::from_yaml_str(YAML).unwrap()))
    }

    #[test]
    fn endpoint_by_id_and_ip() {
        let e = enricher();
        let by_id = e.endpoint(&SideHint {
            endpoint_id: 100,
            ..SideHint::default()
        });
        assert_eq!(by_id.pod_name, "deathstar-1");
        assert_eq!(by_id.identity, 15153);
        assert_eq!(
            by_id.labels,
            ["k8s:class=deathstar", "k8s:org=empire"],
            "sorted"
        );
        assert_eq!(by_id.cluster_name, "prod");
        assert_eq!(by_id.workloads[0].kind, "Deployment");

        let by_ip = e.endpoint(&SideHint {
            ip: Some("fd00::5".parse().unwrap()),
            identity: 15153,
            ..SideHint::default()
        });
        assert_eq!(by_ip.id, 100);
        assert_eq!(by_ip.namespace, "default");

        let other = e.endpoint(&SideHint {
            endpoint_id: 101,
            ..SideHint::default()
        });
        assert_eq!(other.cluster_name, "other");
    }

    #[test]
    fn event_identity_wins_and_labels_follow_it() {
        let e = enricher();
        let ep = e.endpoint(&SideHint {
            endpoint_id: 100,
            identity: 70000,
            ..SideHint::default()
        });
        assert_eq!(ep.identity, 70000, "datapath identity kept");
        assert_eq!(ep.labels[0], "k8s:app=remote");
        assert_eq!(ep.pod_name, "deathstar-1");
    }

    #[test]
    fn remote_and_reserved_identities() {
        let e = enricher();
        let world = e.endpoint(&SideHint {
            identity: 2,
            ip: Some("1.1.1.1".parse().unwrap()),
            ..SideHint::default()
        });
        assert_eq!(world.labels, ["reserved:world"]);
        assert_eq!(world.cluster_name, "");
        assert!(world.pod_name.is_empty());
        let remote = e.endpoint(&SideHint {
            identity: 70000,
            ..SideHint::default()
        });
        assert_eq!(remote.cluster_name, "east");
        let none = Enricher::none().endpoint(&SideHint {
            identity: 1,
            endpoint_id: 9,
            ..SideHint::default()
        });
        assert_eq!(
            (none.id, none.labels.as_slice()),
            (9, &["reserved:host".to_string()][..])
        );
        // Cilium's kube-apiserver identity is a remote node too.
        let apiserver = e.endpoint(&SideHint {
            identity: 7,
            ..SideHint::default()
        });
        assert_eq!(
            apiserver.labels,
            ["reserved:kube-apiserver", "reserved:remote-node"]
        );
    }

    #[test]
    fn services_names_interfaces() {
        let e = enricher();
        let mut flow = Flow {
            interface: Some(proto::flow::NetworkInterface {
                index: 12,
                name: String::new(),
            }),
            ..Flow::default()
        };
        let src = SideHint {
            ip: Some("10.244.1.6".parse().unwrap()),
            port: 40000,
            ..SideHint::default()
        };
        let dst = SideHint {
            ip: Some("10.96.0.100".parse().unwrap()),
            port: 80,
            ..SideHint::default()
        };
        e.enrich(&mut flow, &src, &dst);
        assert_eq!(flow.destination_service.as_ref().unwrap().name, "deathstar");
        assert_eq!(flow.source_service, None);
        assert_eq!(
            flow.destination_names,
            ["deathstar.default.svc.cluster.local"]
        );
        assert!(flow.source_names.is_empty());
        assert_eq!(flow.interface.unwrap().name, "lxc12");
        assert_eq!(flow.source.unwrap().pod_name, "xwing");
        let s = StaticEnrichment::from_yaml_str(YAML).unwrap();
        assert!(
            s.by_addr("10.96.0.100".parse().unwrap(), 81).is_none(),
            "port must match"
        );
    }

    #[test]
    fn json_and_roundtrip() {
        let s = StaticEnrichment::from_yaml_str(YAML).unwrap();
        let json = serde_json::to_string(s.spec()).unwrap();
        let back = StaticEnrichment::from_json_str(&json).unwrap();
        assert_eq!(back.spec(), s.spec());
        let again = StaticEnrichment::from_yaml_str(&s.to_yaml()).unwrap();
        assert_eq!(again.spec(), s.spec());
        assert_eq!(s.node_name(), "kind-worker");
    }

    #[test]
    fn errors_are_clear() {
        let dup = "endpoints: [{id: 1, ips: [10.0.0.1]}, {id: 2, ips: [10.0.0.1]}]";
        let e = StaticEnrichment::from_yaml_str(dup).unwrap_err();
        assert!(
            e.to_string()
                .contains("10.0.0.1 belongs to endpoints 1 and 2"),
            "{e}"
        );
        let e = StaticEnrichment::from_yaml_str("endpoints: [{id: 1}, {id: 1}]").unwrap_err();
        assert!(e.to_string().contains("duplicate endpoint id 1"), "{e}");
        let e = StaticEnrichment::from_yaml_str("endpoints: [{id: 0}]").unwrap_err();
        assert!(e.to_string().contains("id 0"), "{e}");
        let e = StaticEnrichment::from_yaml_str("endpoint: []").unwrap_err();
        let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
        assert!(chain.contains("unknown field `endpoint`"), "{chain}");
        let e =
            StaticEnrichment::from_yaml_str("endpoints: [{id: 1, ips: [not-an-ip]}]").unwrap_err();
        assert!(matches!(e, EnrichmentError::Yaml { .. }));
        let e = StaticEnrichment::from_file("/nonexistent/enrich.yaml").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/enrich.yaml"));
    }

    const MULTI_NODE: &str = r#"
node_name: node-a
cluster: prod
endpoints:
  - {id: 100, ips: [10.0.1.5], namespace: default, pod_name: local-pod, identity: 15153,
     labels: ["k8s:app=local"]}
remote_endpoints:
  - {id: 100, ips: [10.0.2.5, "fd00::2:5"], namespace: default, pod_name: remote-pod,
     labels: ["k8s:app=remote"], identity: 54021, workloads: [{name: remote, kind: Deployment}]}
  - {id: 0, ips: [10.0.3.5], namespace: other, pod_name: third-pod, identity: 60000,
     labels: ["k8s:app=third"], cluster: east}
  - {id: 7, ips: [10.0.1.5], namespace: stale, pod_name: moved-pod, identity: 61000}
nodes:
  - {name: node-a, address: "172.18.0.2:4244"}
  - {name: node-b, address: "172.18.0.3:4244", tls_server_name: b.example}
"#;

    #[test]
    fn remote_endpoints_are_found_by_address_with_id_0() {
        let s = StaticEnrichment::from_yaml_str(MULTI_NODE).unwrap();
        let r = s.by_ip("fd00::2:5".parse().unwrap()).unwrap();
        assert_eq!((r.id, r.pod_name.as_str()), (0, "remote-pod"));
        assert!(r.workloads.is_empty(), "no workloads for a remote pod");
        assert_eq!(s.by_id(100).unwrap().pod_name, "local-pod", "ids are local");
        assert!(s.by_id(7).is_none(), "a remote id is not an endpoint id");
        assert_eq!(s.labels(54021).unwrap(), ["k8s:app=remote"]);
        assert_eq!(s.nodes().len(), 2);
        assert_eq!(s.nodes()[1].tls_server_name.as_deref(), Some("b.example"));

        let e = Enricher::from_static(Arc::new(s));
        // The event names a local endpoint id for the other side: the
        // address decides, and a remote pod has no id.
        let ep = e.endpoint(&SideHint {
            endpoint_id: 42,
            ip: Some("10.0.2.5".parse().unwrap()),
            ..SideHint::default()
        });
        assert_eq!(ep.id, 0);
        assert_eq!(ep.identity, 54021, "identity from the file");
        assert_eq!(
            (ep.namespace.as_str(), ep.pod_name.as_str()),
            ("default", "remote-pod")
        );
        assert_eq!(ep.labels, ["k8s:app=remote"]);
        assert_eq!(ep.cluster_name, "prod");
        assert!(ep.workloads.is_empty());
        // The event's identity wins, and the labels follow it.
        let ep = e.endpoint(&SideHint {
            identity: 15153,
            ip: Some("10.0.2.5".parse().unwrap()),
            ..SideHint::default()
        });
        assert_eq!((ep.id, ep.identity), (0, 15153));
        assert_eq!(ep.labels, ["k8s:app=local"]);
        assert_eq!(ep.pod_name, "remote-pod");
        let third = e.endpoint(&SideHint {
            ip: Some("10.0.3.5".parse().unwrap()),
            ..SideHint::default()
        });
        assert_eq!((third.id, third.cluster_name.as_str()), (0, "east"));
    }

    #[test]
    fn a_local_address_wins_over_a_remote_one() {
        let s = StaticEnrichment::from_yaml_str(MULTI_NODE).unwrap();
        let ep = s.by_ip("10.0.1.5".parse().unwrap()).unwrap();
        assert_eq!((ep.id, ep.pod_name.as_str()), (100, "local-pod"));
        let ep = Enricher::from_static(Arc::new(s)).endpoint(&SideHint {
            ip: Some("10.0.1.5".parse().unwrap()),
            ..SideHint::default()
        });
        assert_eq!((ep.id, ep.pod_name.as_str()), (100, "local-pod"));
    }

    #[test]
    fn remote_endpoints_and_nodes_roundtrip_and_stay_out_when_empty() {
        let s = StaticEnrichment::from_yaml_str(MULTI_NODE).unwrap();
        let json = serde_json::to_string(s.spec()).unwrap();
        assert_eq!(
            StaticEnrichment::from_json_str(&json).unwrap().spec(),
            s.spec()
        );
        let empty = serde_json::to_string(&EnrichmentSpec::default()).unwrap();
        assert_eq!(empty, "{}");
    }

    #[test]
    fn remote_and_node_errors_are_clear() {
        let err = |y: &str| StaticEnrichment::from_yaml_str(y).unwrap_err().to_string();
        let e = err(
            "remote_endpoints: [{id: 0, ips: [10.0.0.1], namespace: a, pod_name: x}, \
                     {id: 0, ips: [10.0.0.1], namespace: b, pod_name: y}]",
        );
        assert!(
            e.contains("address 10.0.0.1 belongs to remote endpoints a/x and b/y"),
            "{e}"
        );
        // Remote ids may be 0 and may repeat (they are other nodes' ids).
        StaticEnrichment::from_yaml_str(
            "remote_endpoints: [{id: 3, ips: [10.0.0.1]}, {id: 3, ips: [10.0.0.2]}, {id: 0}]",
        )
        .unwrap();
        let e =
            err("nodes: [{name: a, address: '1.1.1.1:4244'}, {name: a, address: '1.1.1.2:4244'}]");
        assert!(e.contains("duplicate node name a"), "{e}");
        let e = err("nodes: [{name: '', address: '1.1.1.1:4244'}]");
        assert!(e.contains("a node has an empty name"), "{e}");
        let e = err("nodes: [{name: a, address: ''}]");
        assert!(e.contains("node a has an empty address"), "{e}");
        let e = err("nodes: [{name: prod/a, address: '1.1.1.1:4244'}]");
        assert!(e.contains("\"prod/a\" contains '/'"), "{e}");
        let e = StaticEnrichment::from_yaml_str("nodes: [{name: a}]").unwrap_err();
        let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
        assert!(chain.contains("missing field `address`"), "{chain}");
    }

    #[test]
    fn reserved_names() {
        assert_eq!(reserved_identity_name(6), Some("remote-node"));
        assert_eq!(reserved_identity_from_name("world-ipv6"), Some(10));
        assert_eq!(reserved_identity_labels(11), None);
        assert_eq!(reserved_identity_labels(0), None);
        assert_eq!(
            reserved_identity_labels(7).unwrap(),
            ["reserved:kube-apiserver", "reserved:remote-node"]
        );
        assert_eq!(
            reserved_identity_labels(9).unwrap(),
            ["reserved:world-ipv4"]
        );
    }
}

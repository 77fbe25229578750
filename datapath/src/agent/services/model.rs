//! The validated service objects: [`Service`] (Kubernetes' `v1 Service`,
//! ClusterIP and NodePort) and [`EndpointSlice`] (`discovery.k8s.io/v1`,
//! the backends of a service without a selector). Plain data; `load`
//! builds them from YAML and checks every field.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// `namespace/name` of an object: the key of a service everywhere (store
/// key `services/<ns>/<name>`, API paths, the admin table).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectName {
    /// Kubernetes namespace.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

impl ObjectName {
    /// `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// Parses `ns/name`, or a bare `name` in `default`.
    pub fn parse(s: &str) -> Option<Self> {
        let (ns, name) = s.split_once('/').unwrap_or(("default", s));
        (!ns.is_empty() && !name.is_empty() && !name.contains('/')).then(|| Self::new(ns, name))
    }
}

impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// L4 protocol of a service port (SCTP is rejected: the datapath has no
/// SCTP load balancing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Protocol {
    /// TCP (the default, as in Kubernetes).
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP.
    #[serde(rename = "UDP")]
    Udp,
}

impl Protocol {
    /// The IP protocol number (6, 17), what the kernel maps key on.
    pub fn number(self) -> u8 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
        }
    }

    /// `TCP` or `UDP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `spec.type` (LoadBalancer and ExternalName are rejected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ServiceType {
    /// A virtual IP reachable inside the cluster.
    ClusterIP,
    /// ClusterIP plus a port on every node's address.
    NodePort,
}

impl ServiceType {
    /// The Kubernetes spelling (`cilium service list`'s "Service Type").
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClusterIP => "ClusterIP",
            Self::NodePort => "NodePort",
        }
    }
}

/// How a frontend picks a backend for a new connection
/// (`service.cilium.io/lb-algorithm`, Cilium's per-service annotation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LbAlgorithm {
    /// A random backend per connection (Cilium's default): cheap, even.
    #[default]
    Random,
    /// Maglev consistent hashing of the 5-tuple: every node picks the same
    /// backend for a connection, and a backend change moves few
    /// connections (what NodePort traffic arriving on several nodes needs).
    Maglev,
}

impl LbAlgorithm {
    /// `random` or `maglev`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Random => "random",
            Self::Maglev => "maglev",
        }
    }
}

/// `spec.ports[].targetPort`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TargetPort {
    /// A port number on the backends.
    Number(u16),
    /// A named port, resolved against the ports the backends declare (an
    /// EndpointSlice's `ports[].name`).
    Name(String),
}

/// One port of a service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServicePort {
    /// `name` (required when the service has several ports; `""` if none).
    pub name: String,
    /// `protocol`.
    pub protocol: Protocol,
    /// `port`: the frontend port on the ClusterIP.
    pub port: u16,
    /// `targetPort` (defaults to `port`).
    pub target_port: TargetPort,
    /// `nodePort` as given (NodePort services only); `None`: allocated.
    pub node_port: Option<u16>,
}

/// Session affinity (`spec.sessionAffinity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Affinity {
    /// Each connection is balanced on its own.
    None,
    /// A client address keeps its backend for `timeout_s` seconds of
    /// inactivity (`sessionAffinityConfig.clientIP.timeoutSeconds`).
    ClientIp {
        /// Seconds (Kubernetes' default 10800).
        timeout_s: u32,
    },
}

/// A validated `v1 Service`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// `metadata.namespace/name`.
    pub name: ObjectName,
    /// The namespace was missing and `default` was taken.
    pub namespace_defaulted: bool,
    /// `spec.type`.
    pub kind: ServiceType,
    /// `spec.clusterIP`.
    pub cluster_ip: Ipv4Addr,
    /// `spec.ports`, in the given order.
    pub ports: Vec<ServicePort>,
    /// `spec.selector` (`key → value`); `None`: no selector, the backends
    /// come from EndpointSlices.
    pub selector: Option<BTreeMap<String, String>>,
    /// `spec.sessionAffinity`.
    pub affinity: Affinity,
    /// The `service.cilium.io/lb-algorithm` annotation.
    pub algorithm: LbAlgorithm,
}

/// Conditions of one EndpointSlice endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Conditions {
    /// `ready` (absent: true, as Kubernetes says consumers read it).
    pub ready: bool,
    /// `serving` (absent: the value of `ready`).
    pub serving: bool,
    /// `terminating` (absent: false).
    pub terminating: bool,
}

/// One endpoint of a slice: addresses and their conditions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SliceEndpoint {
    /// `addresses` (IPv4).
    pub addresses: Vec<Ipv4Addr>,
    /// `conditions`.
    pub conditions: Conditions,
}

/// One port of a slice.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SlicePort {
    /// `name` (`""` if absent); matches the service port's name.
    pub name: String,
    /// `protocol`.
    pub protocol: Protocol,
    /// `port` on the endpoints.
    pub port: u16,
}

/// A validated `discovery.k8s.io/v1 EndpointSlice`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSlice {
    /// `metadata.namespace/name`.
    pub name: ObjectName,
    /// The service it belongs to (label `kubernetes.io/service-name`, same
    /// namespace).
    pub service: String,
    /// `endpoints`.
    pub endpoints: Vec<SliceEndpoint>,
    /// `ports`.
    pub ports: Vec<SlicePort>,
}

/// Either kind of object, with the file (or store key) it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Object {
    /// A Service.
    Service(Service),
    /// An EndpointSlice.
    Slice(EndpointSlice),
}

impl Object {
    /// The object's key: kind and name.
    pub fn key(&self) -> ObjectKey {
        match self {
            Self::Service(s) => ObjectKey::Service(s.name.clone()),
            Self::Slice(s) => ObjectKey::Slice(s.name.clone()),
        }
    }
}

/// The identity of an object across versions: kind and `ns/name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ObjectKey {
    /// A Service.
    Service(ObjectName),
    /// An EndpointSlice.
    Slice(ObjectName),
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Service(n) => write!(f, "Service {n}"),
            Self::Slice(n) => write!(f, "EndpointSlice {n}"),
        }
    }
}

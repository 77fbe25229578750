//! The agent's local API: JSON over HTTP/1.1 on a unix socket, used by the
//! CNI plugin (IPAM, endpoint add/del/get) and the admin CLI. This module
//! holds the wire types and a small blocking client (one request per
//! connection, no async runtime: the CNI plugin is a short-lived process).
//!
//! | method | path | body → answer |
//! |---|---|---|
//! | GET | `/v1/healthz` | → `"ok"` |
//! | GET | `/v1/status` | → [`StatusView`] |
//! | POST | `/v1/ipam` | [`IpamRequest`] → [`IpamResponse`] |
//! | DELETE | `/v1/ipam/{owner}` | → `{released: ip \| null}` |
//! | GET | `/v1/endpoints` | → `[EndpointView]` |
//! | POST | `/v1/endpoints` | [`EndpointAdd`] → [`EndpointView`] |
//! | GET | `/v1/endpoints/{id}` | → [`EndpointView`] (404 if none) |
//! | GET/DELETE | `/v1/containers/{container_id}/{ifname}` | → [`EndpointView`] / `{removed: bool}` |
//! | GET | `/v1/identities` | → `[IdentityView]` |
//! | GET | `/v1/policies` | → [`PolicyView`] |
//! | POST | `/v1/policies` | [`PolicyApply`] → `{revision}` (cluster-wide, through the store) |
//! | DELETE | `/v1/policies/{name}` | → `{removed: bool}` |
//! | GET | `/v1/services` | → [`ServiceList`](crate::agent::services::ServiceList) (frontends, backends, rejections) |
//! | POST | `/v1/services` | [`ServiceApply`] → `{applied: ["ns/name", ...]}` (cluster-wide, through the store) |
//! | DELETE | `/v1/services/{ns}/{name}` | → `{removed: bool}` |
//! | GET | `/v1/nodes` | → `[NodeRecord]` (the node registry) |
//! | GET | `/v1/enrichment` | → flow_parser's `EnrichmentSpec` |
//!
//! Errors: a non-2xx status with `{"error": "..."}`.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::agent::store::{EndpointRecord, StoreStatus};
use crate::policy::cidr::Cidr;
use crate::policy::{Enforcement, NamedPort, Policy};

/// `POST /v1/ipam`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamRequest {
    /// Who holds the address (`container_id/ifname`).
    pub owner: String,
}

/// The address handed out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamResponse {
    /// Pod address (configured as a /32).
    pub ip: Ipv4Addr,
    /// The pod's gateway (answered by the datapath's ARP responder).
    pub gateway: Ipv4Addr,
    /// The node's pod CIDR.
    pub pod_cidr: Cidr,
    /// MTU for the pod interface and its host side: the underlay MTU minus
    /// `defaults::VXLAN_OVERHEAD` when the node runs the overlay, so no
    /// packet needs outer fragmentation; `None` leaves the kernel default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
}

/// `POST /v1/endpoints`: a pod interface wired by the CNI plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointAdd {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// `CNI_NETNS`.
    pub netns: String,
    /// Host-side veth (in the node netns).
    pub host_iface: String,
    /// Pod address (from `/v1/ipam`).
    pub ip: Ipv4Addr,
    /// Pod interface MAC.
    pub pod_mac: [u8; 6],
    /// Host-side veth MAC.
    pub node_mac: [u8; 6],
    /// Kubernetes namespace.
    pub namespace: String,
    /// Pod name.
    pub pod_name: String,
    /// Pod labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Ports the pod declares by name (`K8S_POD_PORTS`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<NamedPort>,
}

/// An endpoint as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointView {
    /// The stored record.
    #[serde(flatten)]
    pub record: EndpointRecord,
    /// The identity's labels.
    pub identity_labels: Vec<String>,
    /// Policy enforcement.
    pub enforcement: Enforcement,
    /// Policy map entries of the endpoint.
    pub policy_entries: usize,
}

/// One identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityView {
    /// Number.
    pub id: u32,
    /// Labels.
    pub labels: Vec<String>,
}

/// The policies in force and the last load problem, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyView {
    /// Policies in force (the last valid state of the policy directory).
    pub policies: Vec<Policy>,
    /// Why the directory's current content is not in force.
    pub error: Option<String>,
    /// Policy generation: incremented on every applied change.
    pub revision: u64,
    /// Rule origin (the `RULE` of policy map entries and of verdict and
    /// drop events) → the policies it stands for, as flows name them.
    #[serde(default)]
    pub origins: BTreeMap<u32, Vec<flow_parser::PolicyInfo>>,
}

/// `POST /v1/policies`: a CiliumNetworkPolicy YAML (one or more documents)
/// stored under `name` in the cluster store, for every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyApply {
    /// Name of the entry in the store (replaces an entry of that name).
    pub name: String,
    /// The YAML text.
    pub yaml: String,
}

/// `POST /v1/services`: Service YAML (one or more documents, with the
/// EndpointSlices of selector-less services), stored in the cluster store
/// under `services/<ns>/<name>` per Service, for every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceApply {
    /// The YAML text.
    pub yaml: String,
}

/// The overlay as the agent runs it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TunnelView {
    /// `disabled` or `vxlan`.
    pub mode: String,
    /// The VXLAN device and its ifindex in the node netns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<(String, u32)>,
    /// The node's underlay address (tunnel endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_ip: Option<Ipv4Addr>,
    /// The MTU pods get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_mtu: Option<u32>,
    /// Remote nodes routed through the tunnel.
    pub remote_nodes: usize,
    /// Id of the `from_overlay` program on the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program_id: Option<u32>,
}

/// Service load balancing as the agent runs it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LbView {
    /// Services in force.
    pub services: usize,
    /// Frontends in the kernel's maps.
    pub frontends: usize,
    /// Backends in the kernel's maps.
    pub backends: usize,
    /// Devices the NodePort program is attached to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_port_devices: Vec<String>,
    /// New connections given a backend (kernel counter, all CPUs).
    pub new_connections: u64,
    /// Packets translated to a backend.
    pub translated: u64,
    /// Replies translated back to their frontend.
    pub reverse_translated: u64,
    /// Service objects rejected (file or store: reason).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<String>,
    /// The last map write or attach that failed (retried at every sync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusView {
    /// Node name.
    pub node: String,
    /// Cluster name.
    pub cluster: String,
    /// Pod CIDR.
    pub pod_cidr: Cidr,
    /// Pin directory.
    pub pin_dir: PathBuf,
    /// Node netns handle, if not the agent's own.
    pub netns: Option<PathBuf>,
    /// Programs loaded (`from_container`, `to_container` ids).
    pub program_ids: (u32, u32),
    /// Local endpoints.
    pub endpoints: usize,
    /// Allocated identities.
    pub identities: usize,
    /// Policies in force.
    pub policies: usize,
    /// Policy revision.
    pub policy_revision: u64,
    /// Policy load problem.
    pub policy_error: Option<String>,
    /// Where the enrichment file is written.
    pub enrichment_file: PathBuf,
    /// Maps re-adopted at start (state carried over a restart).
    pub maps_reused: Vec<String>,
    /// Endpoints re-adopted at start.
    pub endpoints_readopted: usize,
    /// The cluster store: backend, connection, counters.
    pub kvstore: StoreStatus,
    /// The overlay.
    #[serde(default)]
    pub tunnel: TunnelView,
    /// Service load balancing.
    #[serde(default)]
    pub load_balancing: LbView,
}

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Could not talk to the agent.
    #[error("agent API at {socket}: {source}")]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The agent answered with an error.
    #[error("agent API {method} {path}: {status}: {message}")]
    Status {
        /// Method.
        method: &'static str,
        /// Path.
        path: String,
        /// HTTP status.
        status: u16,
        /// The error message.
        message: String,
    },
    /// The answer was not what was expected.
    #[error("agent API {path}: bad response: {message}")]
    Protocol {
        /// Path.
        path: String,
        /// What was wrong.
        message: String,
    },
}

impl ApiError {
    /// The HTTP status, if the agent answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A blocking client of the agent's API.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    timeout: Duration,
}

impl Client {
    /// A client of the agent listening on `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
            timeout: crate::defaults::API_TIMEOUT,
        }
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `GET path`.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.call("GET", path, None::<&()>)
    }

    /// `POST path` with a JSON body.
    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        self.call("POST", path, Some(body))
    }

    /// `DELETE path`.
    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.call("DELETE", path, None::<&()>)
    }

    /// One request on a fresh connection.
    pub fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let connect = |source| ApiError::Connect {
            socket: self.socket.clone(),
            source,
        };
        let body = body
            .map(|b| serde_json::to_vec(b).expect("request serializes"))
            .unwrap_or_default();
        let mut s = UnixStream::connect(&self.socket).map_err(connect)?;
        s.set_read_timeout(Some(self.timeout)).map_err(connect)?;
        s.set_write_timeout(Some(self.timeout)).map_err(connect)?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: datapath\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).map_err(connect)?;
        s.write_all(&body).map_err(connect)?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).map_err(connect)?;
        let proto = |message: String| ApiError::Protocol {
            path: path.to_string(),
            message,
        };
        let (status, body) = parse_response(&resp).map_err(proto)?;
        if !(200..300).contains(&status) {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(ApiError::Status {
                method,
                path: path.to_string(),
                status,
                message,
            });
        }
        serde_json::from_slice(&body).map_err(|e| proto(e.to_string()))
    }
}

/// Splits an HTTP/1.1 response into status and (de-chunked) body.
fn parse_response(resp: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&resp[..end]).map_err(|e| e.to_string())?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("no status line")?;
    let chunked = lines.any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let mut body = &resp[end + 4..];
    if !chunked {
        return Ok((status, body.to_vec()));
    }
    let mut out = Vec::new();
    loop {
        let nl = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk")?;
        let size_str = std::str::from_utf8(&body[..nl]).map_err(|e| e.to_string())?;
        let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| e.to_string())?;
        body = &body[nl + 2..];
        if size == 0 {
            return Ok((status, out));
        }
        if body.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn mac_string(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut m = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in &mut m {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_plain_and_chunked() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_response(plain).unwrap(), (200, b"{}".to_vec()));
        let chunked =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (404, b"abcde".to_vec()));
        assert!(parse_response(b"HTTP/1.1 200").is_err());
    }

    #[test]
    fn macs_round_trip() {
        let m = [0x02, 0xab, 0, 1, 0xff, 0x10];
        assert_eq!(mac_string(&m), "02:ab:00:01:ff:10");
        assert_eq!(parse_mac("02:ab:00:01:ff:10"), Some(m));
        assert_eq!(parse_mac("02:ab:00:01:ff"), None);
    }
}

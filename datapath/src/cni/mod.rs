//! The pure parts of the CNI plugin (`datapath-cni`): the CNI 1.0.0 wire
//! types (network configuration, result, error), `CNI_ARGS` parsing, label
//! sources and host-side interface naming. The binary does the I/O.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::defaults;

/// CNI versions this plugin speaks (results are in the config's version).
pub const SUPPORTED_VERSIONS: [&str; 4] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"];

/// CNI error codes (the spec's well-known ones, and ours ≥ 100).
pub mod code {
    /// Incompatible CNI version.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// Unsupported field in the network configuration.
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// Container unknown or does not exist.
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// Invalid necessary environment variables.
    pub const INVALID_ENV: u32 = 4;
    /// I/O failure.
    pub const IO_FAILURE: u32 = 5;
    /// Failed to decode content.
    pub const DECODE_FAILURE: u32 = 6;
    /// Invalid network config.
    pub const INVALID_CONFIG: u32 = 7;
    /// Try again later (the agent is not reachable).
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// The agent refused the request.
    pub const AGENT_ERROR: u32 = 100;
    /// Setting up the interfaces failed.
    pub const NETLINK_FAILURE: u32 = 101;
    /// CHECK found the container's network not as it was set up.
    pub const CHECK_FAILED: u32 = 102;
}

/// A CNI error result (printed on stdout, exit status 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{msg} ({details})")]
pub struct CniError {
    /// The config's version (or ours).
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    /// Error code.
    pub code: u32,
    /// Short message.
    pub msg: String,
    /// Details.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    /// An error with `code`.
    pub fn new(code: u32, msg: impl Into<String>, details: impl Into<String>) -> Self {
        Self {
            cni_version: "1.0.0".into(),
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }
}

/// A label in the CNI conventions' `args.cni.labels` form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

/// `args.cni` of the network configuration (CNI conventions).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniArgsSection {
    /// Pod labels.
    #[serde(default)]
    pub labels: Vec<KeyValue>,
}

/// `args` of the network configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigArgs {
    /// The conventions' section.
    #[serde(default)]
    pub cni: CniArgsSection,
    /// Pod labels as a map (shorthand).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// The network configuration on stdin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetConf {
    /// CNI version of the configuration.
    pub cni_version: String,
    /// Network name.
    #[serde(default)]
    pub name: String,
    /// Plugin type (`datapath-cni`).
    #[serde(default, rename = "type")]
    pub plugin_type: String,
    /// The agent's API socket.
    #[serde(default)]
    pub agent_socket: Option<PathBuf>,
    /// MTU of the pod interface and its host side.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Extra arguments (labels).
    #[serde(default)]
    pub args: ConfigArgs,
    /// The previous result (DEL, CHECK).
    #[serde(default)]
    pub prev_result: Option<serde_json::Value>,
}

impl NetConf {
    /// Parses and checks the configuration.
    pub fn parse(bytes: &[u8]) -> Result<Self, CniError> {
        let c: NetConf = serde_json::from_slice(bytes).map_err(|e| {
            CniError::new(
                code::DECODE_FAILURE,
                "invalid network configuration",
                e.to_string(),
            )
        })?;
        if !SUPPORTED_VERSIONS.contains(&c.cni_version.as_str()) {
            return Err(CniError::new(
                code::INCOMPATIBLE_VERSION,
                "incompatible CNI version",
                format!(
                    "config has {}, this plugin supports {}",
                    c.cni_version,
                    SUPPORTED_VERSIONS.join(", ")
                ),
            ));
        }
        if let Some(m) = c.mtu
            && !(576..=65_535).contains(&m)
        {
            return Err(CniError::new(
                code::INVALID_CONFIG,
                "invalid mtu",
                format!("{m} is outside 576..=65535"),
            ));
        }
        Ok(c)
    }

    /// The agent socket to use.
    pub fn socket(&self) -> PathBuf {
        self.agent_socket
            .clone()
            .unwrap_or_else(|| PathBuf::from(defaults::API_SOCKET))
    }
}

/// `CNI_ARGS`: `K=V;K=V`.
pub fn parse_cni_args(s: &str) -> Result<BTreeMap<String, String>, CniError> {
    let mut out = BTreeMap::new();
    for part in s.split(';').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| {
            CniError::new(
                code::INVALID_ENV,
                "invalid CNI_ARGS",
                format!("{part:?} is not KEY=VALUE"),
            )
        })?;
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// Who a pod is: namespace, name, labels, from `CNI_ARGS`
/// (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`, and labels as
/// `K8S_POD_LABELS=k=v,k2=v2`) and the configuration's `args` (which win).
pub fn pod_identity(
    cni_args: &BTreeMap<String, String>,
    conf: &NetConf,
    container_id: &str,
) -> Result<(String, String, BTreeMap<String, String>), CniError> {
    let namespace = cni_args
        .get("K8S_POD_NAMESPACE")
        .filter(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| defaults::POD_NAMESPACE.to_string());
    let name = cni_args
        .get("K8S_POD_NAME")
        .filter(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| container_id.chars().take(12).collect());
    let mut labels = BTreeMap::new();
    if let Some(l) = cni_args.get("K8S_POD_LABELS") {
        for kv in l.split(',').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').ok_or_else(|| {
                CniError::new(
                    code::INVALID_ENV,
                    "invalid K8S_POD_LABELS in CNI_ARGS",
                    format!("{kv:?} is not key=value"),
                )
            })?;
            labels.insert(k.to_string(), v.to_string());
        }
    }
    for kv in &conf.args.cni.labels {
        labels.insert(kv.key.clone(), kv.value.clone());
    }
    labels.extend(conf.args.labels.clone());
    for k in labels.keys() {
        if k.is_empty() || k.contains(['=', ',', ';']) {
            return Err(CniError::new(
                code::INVALID_CONFIG,
                "invalid label key",
                format!("{k:?}"),
            ));
        }
    }
    Ok((namespace, name, labels))
}

/// A stable 11-hex-digit tag of a container interface (FNV-1a 64).
fn tag(container_id: &str, ifname: &str) -> String {
    let h = format!("{container_id}/{ifname}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("{h:016x}")[..11].to_string()
}

/// The host-side veth of a container interface (≤ 15 bytes, stable, so
/// DEL finds it without state).
pub fn host_iface(container_id: &str, ifname: &str) -> String {
    format!(
        "{}{}",
        defaults::HOST_IFACE_PREFIX,
        tag(container_id, ifname)
    )
}

/// The temporary name of the pod end before it is moved and renamed.
pub fn temp_iface(container_id: &str, ifname: &str) -> String {
    format!("tmp{}", tag(container_id, ifname))
}

/// One interface of a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultInterface {
    /// Name.
    pub name: String,
    /// MAC.
    pub mac: String,
    /// The netns, for interfaces inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

/// One address of a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultIp {
    /// `0.3.x` only: `"4"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// CIDR notation.
    pub address: String,
    /// Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

/// One route of a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultRoute {
    /// Destination.
    pub dst: String,
    /// Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<String>,
}

/// DNS of a result (empty: the runtime's own).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultDns {}

/// The ADD result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CniResult {
    /// The config's version.
    pub cni_version: String,
    /// Host side first, then the container's interface.
    pub interfaces: Vec<ResultInterface>,
    /// Addresses.
    pub ips: Vec<ResultIp>,
    /// Routes.
    pub routes: Vec<ResultRoute>,
    /// DNS.
    pub dns: ResultDns,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_versions_and_errors() {
        let c = NetConf::parse(br#"{"cniVersion":"1.0.0","name":"n","type":"datapath-cni","args":{"cni":{"labels":[{"key":"org","value":"empire"}]}}}"#).unwrap();
        assert_eq!(c.args.cni.labels[0].key, "org");
        let e = NetConf::parse(br#"{"cniVersion":"2.0.0"}"#).unwrap_err();
        assert_eq!(e.code, code::INCOMPATIBLE_VERSION);
        let e = NetConf::parse(b"{").unwrap_err();
        assert_eq!(e.code, code::DECODE_FAILURE);
        let e = NetConf::parse(br#"{"cniVersion":"1.0.0","mtu":10}"#).unwrap_err();
        assert_eq!(e.code, code::INVALID_CONFIG);
        let json = serde_json::to_value(CniError::new(7, "m", "")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"cniVersion":"1.0.0","code":7,"msg":"m"})
        );
    }

    #[test]
    fn pod_identity_from_cni_args_and_config() {
        let conf = NetConf::parse(br#"{"cniVersion":"1.0.0","args":{"labels":{"class":"xwing"}}}"#)
            .unwrap();
        let a = parse_cni_args(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=rebels;K8S_POD_NAME=x1;K8S_POD_LABELS=org=alliance,class=other",
        )
        .unwrap();
        let (ns, name, labels) = pod_identity(&a, &conf, "abcdef0123456789").unwrap();
        assert_eq!((ns.as_str(), name.as_str()), ("rebels", "x1"));
        assert_eq!(labels["org"], "alliance");
        assert_eq!(labels["class"], "xwing", "config args win");
        // podman: only a pod name.
        let a = parse_cni_args("IgnoreUnknown=1;K8S_POD_NAME=tiefighter").unwrap();
        let (ns, name, _) = pod_identity(&a, &conf, "c").unwrap();
        assert_eq!((ns.as_str(), name.as_str()), ("default", "tiefighter"));
        assert!(parse_cni_args("novalue").is_err());
    }

    #[test]
    fn interface_names_fit_ifnamsiz_and_are_stable() {
        let h = host_iface("0123456789abcdef", "eth0");
        assert_eq!(h.len(), 14);
        assert_eq!(h, host_iface("0123456789abcdef", "eth0"));
        assert_ne!(h, host_iface("0123456789abcdef", "eth1"));
        assert!(temp_iface("x", "eth0").len() <= 15);
    }
}

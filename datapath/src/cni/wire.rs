//! The CNI 1.0.0 wire types: network configuration ([`NetConf`]), result
//! ([`CniResult`]) and error ([`CniError`], [`code`]).

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
}

//! The YAML shape of a policy document, as serde reads it (before any
//! validation): CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Doc {
    pub(super) api_version: String,
    pub(super) kind: String,
    pub(super) metadata: Metadata,
    #[serde(default)]
    pub(super) spec: Option<RawRule>,
    #[serde(default)]
    pub(super) specs: Option<Vec<RawRule>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Metadata {
    pub(super) name: String,
    #[serde(default)]
    pub(super) namespace: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawRule {
    #[serde(default)]
    pub(super) endpoint_selector: Option<RawSelector>,
    #[serde(default)]
    pub(super) node_selector: Option<RawSelector>,
    #[serde(default)]
    pub(super) ingress: Option<Vec<RawIngress>>,
    #[serde(default)]
    pub(super) ingress_deny: Option<Vec<RawIngress>>,
    #[serde(default)]
    pub(super) egress: Option<Vec<RawEgress>>,
    #[serde(default)]
    pub(super) egress_deny: Option<Vec<RawEgress>>,
    #[serde(default)]
    pub(super) enable_default_deny: Option<RawDefaultDeny>,
    #[serde(default)]
    pub(super) description: Option<String>,
    #[serde(default)]
    pub(super) labels: Option<serde_yaml::Value>,
}

/// `enableDefaultDeny` (Cilium ≥ 1.15); an unset direction takes Cilium's
/// default (on, for a direction the rule has a non-empty section for).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefaultDeny {
    #[serde(default)]
    pub(super) ingress: Option<bool>,
    #[serde(default)]
    pub(super) egress: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawSelector {
    #[serde(default)]
    pub(super) match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) match_expressions: Vec<RawExpr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpr {
    pub(super) key: String,
    pub(super) operator: String,
    #[serde(default)]
    pub(super) values: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawIngress {
    #[serde(default)]
    pub(super) from_endpoints: Option<Vec<RawSelector>>,
    #[serde(default, rename = "fromCIDR")]
    pub(super) from_cidr: Option<Vec<String>>,
    #[serde(default, rename = "fromCIDRSet")]
    pub(super) from_cidr_set: Option<Vec<RawCidrSet>>,
    #[serde(default)]
    pub(super) from_entities: Option<Vec<String>>,
    #[serde(default)]
    pub(super) to_ports: Option<Vec<RawPortRule>>,
    #[serde(default)]
    pub(super) icmps: Option<Vec<RawIcmpRule>>,
    /// Cilium fields this datapath rejects with a reason (see
    /// `validate::UNSUPPORTED_PEER_FIELDS`), read only to say why.
    #[serde(default)]
    pub(super) from_requires: Option<serde_yaml::Value>,
    #[serde(default)]
    pub(super) from_groups: Option<serde_yaml::Value>,
    #[serde(default)]
    pub(super) from_nodes: Option<serde_yaml::Value>,
    #[serde(default)]
    pub(super) authentication: Option<serde_yaml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawEgress {
    #[serde(default)]
    pub(super) to_endpoints: Option<Vec<RawSelector>>,
    #[serde(default, rename = "toCIDR")]
    pub(super) to_cidr: Option<Vec<String>>,
    #[serde(default, rename = "toCIDRSet")]
    pub(super) to_cidr_set: Option<Vec<RawCidrSet>>,
    #[serde(default)]
    pub(super) to_entities: Option<Vec<String>>,
    #[serde(default)]
    pub(super) to_ports: Option<Vec<RawPortRule>>,
    #[serde(default)]
    pub(super) icmps: Option<Vec<RawIcmpRule>>,
    /// Cilium fields this datapath rejects with a reason, read only to
    /// say why.
    #[serde(default, rename = "toFQDNs")]
    pub(super) to_fqdns: Option<serde_yaml::Value>,
    #[serde(default)]
    pub(super) to_services: Option<serde_yaml::Value>,
    #[serde(default)]
    pub(super) to_requires: Option<serde_yaml::Value>,
    #[serde(default)]
    pub(super) to_groups: Option<serde_yaml::Value>,
    #[serde(default)]
    pub(super) to_nodes: Option<serde_yaml::Value>,
    #[serde(default)]
    pub(super) authentication: Option<serde_yaml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCidrSet {
    pub(super) cidr: String,
    #[serde(default)]
    pub(super) except: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPortRule {
    #[serde(default)]
    pub(super) ports: Vec<RawPort>,
    #[serde(default)]
    pub(super) rules: Option<serde_yaml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawPort {
    #[serde(default)]
    pub(super) port: Option<serde_yaml::Value>,
    #[serde(default)]
    pub(super) end_port: Option<u32>,
    #[serde(default)]
    pub(super) protocol: Option<String>,
}

/// One entry of `icmps`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIcmpRule {
    #[serde(default)]
    pub(super) fields: Vec<RawIcmpField>,
}

/// An ICMP field: `type` is a number (0-255) or one of Cilium's type
/// names for the family; `family` is `IPv4` (default) or `IPv6`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIcmpField {
    #[serde(default)]
    pub(super) family: Option<String>,
    #[serde(rename = "type")]
    pub(super) icmp_type: serde_yaml::Value,
}

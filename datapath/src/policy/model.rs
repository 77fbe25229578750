//! The validated model: [`Policy`], its rules, selectors and peers.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::policy::cidr::Cidr;
use crate::policy::identity::{self, LabelSet, NAMESPACE_LABEL};

/// A policy document, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// `metadata.name`.
    pub name: String,
    /// The namespace of a `CiliumNetworkPolicy`; `None` for a clusterwide one.
    pub namespace: Option<String>,
    /// A `CiliumNetworkPolicy` without `metadata.namespace`, taken as
    /// `default`. Kubernetes' API server always fills the namespace in, so
    /// only a file can lack it, and Cilium's parser would treat such a
    /// policy as clusterwide: the CLI and the agent warn about it.
    #[serde(default)]
    pub namespace_defaulted: bool,
    /// Where it was read from.
    pub origin: String,
    /// Its rules (`spec` and `specs`).
    pub rules: Vec<Rule>,
}

impl Policy {
    /// `namespace/name` (or `name` when clusterwide).
    pub fn full_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }

    /// Its Kubernetes kind: `CiliumNetworkPolicy` when namespaced, else
    /// `CiliumClusterwideNetworkPolicy`.
    pub fn kind(&self) -> &'static str {
        if self.namespace.is_some() {
            "CiliumNetworkPolicy"
        } else {
            "CiliumClusterwideNetworkPolicy"
        }
    }

    /// The labels Cilium gives the rules of this policy (what Hubble's
    /// `Policy.labels` and `cilium policy get` show).
    pub fn labels(&self) -> Vec<String> {
        let mut v = vec![
            format!("k8s:io.cilium.k8s.policy.derived-from={}", self.kind()),
            format!("k8s:io.cilium.k8s.policy.name={}", self.name),
        ];
        if let Some(ns) = &self.namespace {
            v.push(format!("k8s:io.cilium.k8s.policy.namespace={ns}"));
        }
        v
    }

    /// The rule cookie entries of this policy carry (FNV-1a of the full name).
    pub fn cookie(&self) -> u32 {
        self.full_name().bytes().fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        })
    }
}

/// One rule: which endpoints it applies to and what it allows or denies.
///
/// A section is `None` when it is absent or empty (`ingress: []`): as in
/// Cilium, only a non-empty list turns on default-deny for its direction,
/// so `ingress: []` next to egress rules leaves ingress open, while
/// `ingress: [{}]` enforces and allows nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// The endpoints the rule applies to.
    pub subject: Selector,
    /// `ingress`: `None` when absent or empty (no enforcement from this rule).
    pub ingress: Option<Vec<PeerRule>>,
    /// `ingressDeny`.
    pub ingress_deny: Option<Vec<PeerRule>>,
    /// `egress`.
    pub egress: Option<Vec<PeerRule>>,
    /// `egressDeny`.
    pub egress_deny: Option<Vec<PeerRule>>,
    /// `enableDefaultDeny`, Cilium's defaults filled in.
    #[serde(default)]
    pub default_deny: DefaultDeny,
}

/// Whether a rule turns on default-deny for the endpoints it selects, per
/// direction (`enableDefaultDeny`, Cilium ≥ 1.15). Only a direction the
/// rule has a non-empty section for counts (`ingress: true` without an
/// `ingress`/`ingressDeny` section turns nothing on, as in Cilium). `false`
/// there makes the rule's allows and denies apply without making the
/// endpoint default-deny, unless another rule selecting it does. Unset is
/// `true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultDeny {
    /// Ingress.
    pub ingress: bool,
    /// Egress.
    pub egress: bool,
}

impl Default for DefaultDeny {
    fn default() -> Self {
        Self {
            ingress: true,
            egress: true,
        }
    }
}

/// A label selector: all requirements must hold (empty selects all).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selector {
    /// The requirements.
    pub requirements: Vec<Requirement>,
}

/// One requirement on a label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    /// Label source (`k8s`, `reserved`, ...), `None` for any.
    pub source: Option<String>,
    /// Label key.
    pub key: String,
    /// Operator.
    pub op: Op,
    /// Values for `In`/`NotIn`.
    pub values: Vec<String>,
}

/// Selector operators (Kubernetes' `matchExpressions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// The label has one of the values.
    In,
    /// The label is absent or has none of the values.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

/// A Cilium entity (`fromEntities`/`toEntities`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entity {
    /// Every peer (identity 0).
    All,
    /// Everything outside the cluster: WORLD, world-ipv4, world-ipv6 and
    /// every CIDR identity (Cilium's `world` selects `reserved:world`,
    /// `reserved:world-ipv4` and `reserved:world-ipv6`).
    World,
    /// `world-ipv4`: world-ipv4 (9), and also WORLD (2) and every CIDR
    /// identity, because this datapath is IPv4-only: every peer outside
    /// the cluster is IPv4 and the kernel gives it 2 (or its CIDR
    /// identity), where a dual-stack Cilium gives 9.
    WorldIpv4,
    /// `world-ipv6`: world-ipv6 (10) only, which an IPv4-only datapath
    /// never sees.
    WorldIpv6,
    /// Every cluster identity and the reserved in-cluster ones.
    Cluster,
    /// A reserved identity by name: every reserved identity carrying its
    /// label (`remote-node` selects 6 and kube-apiserver, 7).
    Reserved(u32),
    /// `none`: Cilium's entity that "can be selected but never exists"
    /// (`reserved:none`): it selects no peer, so a rule naming only it
    /// still makes its direction enforce and allows (or denies) nothing.
    None,
}

/// A CIDR with exceptions (`fromCIDRSet`), or a plain CIDR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CidrSet {
    /// The prefix.
    pub cidr: Cidr,
    /// Sub-prefixes not selected.
    pub except: Vec<Cidr>,
}

/// IP protocol number of ICMP (IPv4): `icmps` entries are `(1, type)`.
pub(super) const IPPROTO_ICMP: u8 = 1;

/// One ingress or egress rule: peers and ports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRule {
    /// `from/toEndpoints`, namespace requirement already added.
    pub endpoints: Option<Vec<Selector>>,
    /// `from/toCIDR` and `…CIDRSet`.
    pub cidrs: Option<Vec<CidrSet>>,
    /// `from/toEntities`.
    pub entities: Option<Vec<Entity>>,
    /// `(protocol, first, last)` port ranges (inclusive) from `toPorts`
    /// (`port: 0` = `(p, 0, 65535)`) and from `icmps` (`(1, type, type)`
    /// for IPv4, so type 0 is `(1, 0, 0)`; IPv6 fields add nothing, this
    /// datapath never sees ICMPv6); `None` when there is neither (L3-only).
    pub ports: Option<Vec<(u8, u16, u16)>>,
    /// Named ports from `toPorts` (`port: http`): `(protocol, name)`,
    /// protocol 0 when the rule says `ANY` or nothing (the port's declared
    /// protocol). Resolved per endpoint by the compiler; `ports` is then
    /// `Some` (possibly empty), so an unresolved name allows nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub named_ports: Vec<(u8, String)>,
}

/// A port an endpoint declares by name (Kubernetes' `containerPort` with a
/// `name`): what `port: <name>` in a policy resolves to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NamedPort {
    /// The name (an IANA service name: `http`, `dns-tcp`).
    pub name: String,
    /// The port number.
    pub port: u16,
    /// IP protocol (6 TCP, 17 UDP, 132 SCTP).
    pub protocol: u8,
}

/// Why a named-port declaration is invalid.
pub fn check_port_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if name.is_empty() || name.len() > 15 {
        Err(format!("{name:?}: a port name has 1 to 15 characters"))
    } else if !ok_chars || name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        Err(format!(
            "{name:?}: a port name is lowercase letters, digits and single inner dashes (IANA service name)"
        ))
    } else if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        Err(format!("{name:?}: a port name needs at least one letter"))
    } else {
        Ok(())
    }
}

impl std::str::FromStr for NamedPort {
    type Err = String;

    /// `name:port[/PROTOCOL]` (protocol TCP, UDP or SCTP; default TCP, as
    /// Kubernetes' `containerPort`).
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?} is not name:port[/protocol]"))?;
        let (port, proto) = rest.split_once('/').unwrap_or((rest, "TCP"));
        check_port_name(name)?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{s:?}: {port:?} is not a port (1-65535)"))?;
        let protocol = match proto.to_ascii_uppercase().as_str() {
            "TCP" => 6,
            "UDP" => 17,
            "SCTP" => 132,
            _ => return Err(format!("{s:?}: protocol {proto:?} (TCP, UDP or SCTP)")),
        };
        Ok(Self {
            name: name.to_string(),
            port,
            protocol,
        })
    }
}

impl PeerRule {
    pub(super) fn has_peers(&self) -> bool {
        self.endpoints.is_some() || self.cidrs.is_some() || self.entities.is_some()
    }
}

impl Selector {
    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &LabelSet) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    pub(super) fn mentions(&self, key: &str) -> bool {
        self.requirements.iter().any(|r| r.key == key)
    }

    pub(super) fn names_source(&self, source: &str) -> bool {
        self.requirements
            .iter()
            .any(|r| r.source.as_deref() == Some(source))
    }

    pub(super) fn in_namespace(mut self, ns: &str) -> Self {
        if !self.mentions(NAMESPACE_LABEL) {
            self.requirements.push(Requirement {
                source: Some("k8s".into()),
                key: NAMESPACE_LABEL.into(),
                op: Op::In,
                values: vec![ns.into()],
            });
        }
        self
    }
}

impl Requirement {
    fn matches(&self, labels: &LabelSet) -> bool {
        let mut values = labels.iter().filter_map(|l| {
            let (src, k, v) = identity::split_label(l);
            (k == self.key && self.source.as_deref().is_none_or(|s| s == src)).then_some(v)
        });
        match self.op {
            Op::In => values.any(|v| self.values.iter().any(|w| w == v)),
            Op::NotIn => !values.any(|v| self.values.iter().any(|w| w == v)),
            Op::Exists => values.next().is_some(),
            Op::DoesNotExist => values.next().is_none(),
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.requirements.is_empty() {
            return f.write_str("{}");
        }
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let key = match &r.source {
                Some(s) => format!("{s}:{}", r.key),
                None => r.key.clone(),
            };
            match r.op {
                Op::In if r.values.len() == 1 => write!(f, "{key}={}", r.values[0])?,
                Op::In => write!(f, "{key} in ({})", r.values.join("|"))?,
                Op::NotIn => write!(f, "{key} notin ({})", r.values.join("|"))?,
                Op::Exists => write!(f, "{key}")?,
                Op::DoesNotExist => write!(f, "!{key}")?,
            }
        }
        Ok(())
    }
}

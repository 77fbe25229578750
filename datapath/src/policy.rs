//! Network policy: CiliumNetworkPolicy-shaped YAML files, validated into
//! [`Policy`], and compiled with the endpoints and identities of a node into
//! the per-endpoint entries and enforcement flags of the `policy` and
//! `endpoints` maps (`ebpf/include/dp_policy.h` for the kernel side).
//!
//! Semantics (Cilium's):
//! - an endpoint selected by a rule that has `ingress` or `ingressDeny` is
//!   default-deny on ingress (likewise egress); otherwise that direction
//!   is allow-all and no entries are consulted;
//! - an allow rule's peers × ports become ALLOW entries, a deny rule's
//!   DENY entries; on the same key DENY wins, and the kernel lets any
//!   matching DENY win over any ALLOW;
//! - a `CiliumNetworkPolicy` is namespaced: its `endpointSelector`, and its
//!   peer selectors unless they name the namespace label, only select pods
//!   of its namespace (default `default`); a `CiliumClusterwideNetworkPolicy`
//!   is not;
//! - `fromCIDR`/`toCIDR` (and `…CIDRSet` with `except`) become ipcache
//!   prefixes with node-local CIDR identities; a CIDR selects every CIDR
//!   identity inside it (minus its exceptions), `world` selects them all;
//! - a rule with peers but no `toPorts` is L3-only (proto 0), a rule with
//!   `toPorts` but no peers L4-only (identity 0, any peer); an empty rule
//!   `{}` allows nothing (the usual way to say "default deny"), and so
//!   does a port rule that names no port (`toPorts: [{}]`,
//!   `toPorts: [{ports: []}]`), while `toPorts: []` is no `toPorts`.
//!
//! [`diff_entries`] turns desired entries into the minimal set of writes
//! and removals against what the map holds. Pure code: no I/O except
//! [`load_file`] and [`load_dir`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cidr::Cidr;
use crate::identity::{self, IdentityAllocator, LabelSet, NAMESPACE_LABEL, Scope};
use crate::maps::{Direction, PolicyAction, PolicyEntry, identity as reserved};

/// A policy file or field that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {field}: {message}")]
pub struct PolicyError {
    /// The file (or other origin) of the document.
    pub origin: String,
    /// The field path (`spec.ingress[0].toPorts[0].ports[0].port`), or
    /// `document N` when the problem is the document as a whole.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

// ---- the YAML shape ---------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Doc {
    api_version: String,
    kind: String,
    metadata: Metadata,
    #[serde(default)]
    spec: Option<RawRule>,
    #[serde(default)]
    specs: Option<Vec<RawRule>>,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    endpoint_selector: Option<RawSelector>,
    #[serde(default)]
    node_selector: Option<RawSelector>,
    #[serde(default)]
    ingress: Option<Vec<RawIngress>>,
    #[serde(default)]
    ingress_deny: Option<Vec<RawIngress>>,
    #[serde(default)]
    egress: Option<Vec<RawEgress>>,
    #[serde(default)]
    egress_deny: Option<Vec<RawEgress>>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    labels: Option<serde_yaml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSelector {
    #[serde(default)]
    match_labels: BTreeMap<String, String>,
    #[serde(default)]
    match_expressions: Vec<RawExpr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpr {
    key: String,
    operator: String,
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawIngress {
    #[serde(default)]
    from_endpoints: Option<Vec<RawSelector>>,
    #[serde(default, rename = "fromCIDR")]
    from_cidr: Option<Vec<String>>,
    #[serde(default, rename = "fromCIDRSet")]
    from_cidr_set: Option<Vec<RawCidrSet>>,
    #[serde(default)]
    from_entities: Option<Vec<String>>,
    #[serde(default)]
    to_ports: Option<Vec<RawPortRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawEgress {
    #[serde(default)]
    to_endpoints: Option<Vec<RawSelector>>,
    #[serde(default, rename = "toCIDR")]
    to_cidr: Option<Vec<String>>,
    #[serde(default, rename = "toCIDRSet")]
    to_cidr_set: Option<Vec<RawCidrSet>>,
    #[serde(default)]
    to_entities: Option<Vec<String>>,
    #[serde(default)]
    to_ports: Option<Vec<RawPortRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCidrSet {
    cidr: String,
    #[serde(default)]
    except: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPortRule {
    #[serde(default)]
    ports: Vec<RawPort>,
    #[serde(default)]
    rules: Option<serde_yaml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPort {
    #[serde(default)]
    port: Option<serde_yaml::Value>,
    #[serde(default)]
    end_port: Option<u32>,
    #[serde(default)]
    protocol: Option<String>,
}

// ---- the validated model ---------------------------------------------------

/// A policy document, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// `metadata.name`.
    pub name: String,
    /// The namespace of a `CiliumNetworkPolicy`; `None` for a clusterwide one.
    pub namespace: Option<String>,
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

    /// The rule cookie entries of this policy carry (FNV-1a of the full name).
    pub fn cookie(&self) -> u32 {
        self.full_name().bytes().fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        })
    }
}

/// One rule: which endpoints it applies to and what it allows or denies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// The endpoints the rule applies to.
    pub subject: Selector,
    /// `ingress`: `None` when absent (no enforcement from this rule).
    pub ingress: Option<Vec<PeerRule>>,
    /// `ingressDeny`.
    pub ingress_deny: Option<Vec<PeerRule>>,
    /// `egress`.
    pub egress: Option<Vec<PeerRule>>,
    /// `egressDeny`.
    pub egress_deny: Option<Vec<PeerRule>>,
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
    /// Everything outside the cluster: WORLD and every CIDR identity.
    World,
    /// Every cluster identity and the reserved in-cluster ones.
    Cluster,
    /// One reserved identity.
    Reserved(u32),
}

/// A CIDR with exceptions (`fromCIDRSet`), or a plain CIDR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CidrSet {
    /// The prefix.
    pub cidr: Cidr,
    /// Sub-prefixes not selected.
    pub except: Vec<Cidr>,
}

/// One ingress or egress rule: peers and ports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRule {
    /// `from/toEndpoints`, namespace requirement already added.
    pub endpoints: Option<Vec<Selector>>,
    /// `from/toCIDR` and `…CIDRSet`.
    pub cidrs: Option<Vec<CidrSet>>,
    /// `from/toEntities`.
    pub entities: Option<Vec<Entity>>,
    /// `(protocol, port)` pairs from `toPorts`, port 0 = all; `None` when
    /// there is no `toPorts` (L3-only).
    pub ports: Option<Vec<(u8, u16)>>,
}

impl PeerRule {
    fn has_peers(&self) -> bool {
        self.endpoints.is_some() || self.cidrs.is_some() || self.entities.is_some()
    }
}

impl Selector {
    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &LabelSet) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    fn mentions(&self, key: &str) -> bool {
        self.requirements.iter().any(|r| r.key == key)
    }

    fn names_source(&self, source: &str) -> bool {
        self.requirements
            .iter()
            .any(|r| r.source.as_deref() == Some(source))
    }

    fn in_namespace(mut self, ns: &str) -> Self {
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

// ---- parsing and validation ------------------------------------------------

struct Ctx<'a> {
    origin: &'a str,
}

impl Ctx<'_> {
    fn err(&self, field: impl Into<String>, message: impl Into<String>) -> PolicyError {
        PolicyError {
            origin: self.origin.to_string(),
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Parses every document of a YAML (or JSON) text; `origin` names it in errors.
pub fn parse_str(origin: &str, text: &str) -> Result<Vec<Policy>, PolicyError> {
    let cx = Ctx { origin };
    let mut out = Vec::new();
    // Pass 1 finds empty documents (a trailing `---`); pass 2 deserializes
    // straight from the text so errors carry the field path and position.
    let mut empty = Vec::new();
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = serde_yaml::Value::deserialize(de).map_err(|e| {
            cx.err(
                format!("document {}", i + 1),
                format!("not valid YAML: {e}"),
            )
        })?;
        empty.push(value.is_null());
    }
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        if empty.get(i).copied().unwrap_or(true) {
            continue;
        }
        let doc = Doc::deserialize(de).map_err(|e| {
            // serde_yaml's messages start with the field path when there is one.
            let msg = e.to_string();
            match msg.split_once(": ") {
                Some((path, rest)) if !path.contains(' ') => cx.err(path, rest),
                _ => cx.err(format!("document {}", i + 1), msg),
            }
        })?;
        out.push(validate(&cx, doc)?);
    }
    Ok(out)
}

/// Reads and parses one policy file.
pub fn load_file(path: &Path) -> Result<Vec<Policy>, PolicyError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
        origin: origin.clone(),
        field: "file".into(),
        message: e.to_string(),
    })?;
    parse_str(&origin, &text)
}

/// Whether a file name looks like a policy file (`*.yaml`, `*.yml`, `*.json`).
pub fn is_policy_file(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        && !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// Reads every policy file of a directory (sorted by name). A missing
/// directory holds no policies.
pub fn load_dir(dir: &Path) -> Result<Vec<Policy>, PolicyError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(PolicyError {
                origin: dir.display().to_string(),
                field: "directory".into(),
                message: e.to_string(),
            });
        }
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_policy_file(p))
        .collect();
    files.sort();
    let mut out = Vec::new();
    let mut names = BTreeMap::new();
    for f in files {
        for p in load_file(&f)? {
            if let Some(prev) = names.insert(p.full_name(), p.origin.clone()) {
                return Err(PolicyError {
                    origin: p.origin.clone(),
                    field: "metadata.name".into(),
                    message: format!("policy {} is also defined in {prev}", p.full_name()),
                });
            }
            out.push(p);
        }
    }
    Ok(out)
}

fn validate(cx: &Ctx<'_>, doc: Doc) -> Result<Policy, PolicyError> {
    if !doc.api_version.starts_with("cilium.io/") {
        return Err(cx.err(
            "apiVersion",
            format!("{:?} is not a cilium.io API version", doc.api_version),
        ));
    }
    let namespace = match doc.kind.as_str() {
        "CiliumNetworkPolicy" => Some(
            doc.metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
        ),
        "CiliumClusterwideNetworkPolicy" => None,
        k => {
            return Err(cx.err(
                "kind",
                format!("{k:?}: expected CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy"),
            ));
        }
    };
    if doc.metadata.name.is_empty() {
        return Err(cx.err("metadata.name", "must not be empty"));
    }
    let mut raw = Vec::new();
    if let Some(s) = doc.spec {
        raw.push(("spec".to_string(), s));
    }
    for (i, s) in doc.specs.into_iter().flatten().enumerate() {
        raw.push((format!("specs[{i}]"), s));
    }
    if raw.is_empty() {
        return Err(cx.err("spec", "a policy needs `spec` or `specs`"));
    }
    let ns = namespace.as_deref();
    let rules = raw
        .into_iter()
        .map(|(path, r)| rule(cx, &path, r, ns))
        .collect::<Result<_, _>>()?;
    Ok(Policy {
        name: doc.metadata.name,
        namespace,
        origin: cx.origin.to_string(),
        rules,
    })
}

fn rule(cx: &Ctx<'_>, path: &str, r: RawRule, ns: Option<&str>) -> Result<Rule, PolicyError> {
    let _ = (&r.description, &r.labels);
    if r.node_selector.is_some() {
        return Err(cx.err(
            format!("{path}.nodeSelector"),
            "host policies are not supported",
        ));
    }
    let Some(sel) = r.endpoint_selector else {
        return Err(cx.err(
            format!("{path}.endpointSelector"),
            "required (use {} to select every endpoint)",
        ));
    };
    let mut subject = selector(cx, &format!("{path}.endpointSelector"), sel)?;
    if let Some(ns) = ns {
        subject = subject.in_namespace(ns);
    }
    let ing = |name: &str, v: Option<Vec<RawIngress>>| -> Result<_, PolicyError> {
        v.map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, x)| {
                    let p = format!("{path}.{name}[{i}]");
                    peer_rule(
                        cx,
                        &p,
                        ns,
                        ["fromEndpoints", "fromCIDR", "fromCIDRSet", "fromEntities"],
                        x.from_endpoints,
                        x.from_cidr,
                        x.from_cidr_set,
                        x.from_entities,
                        x.to_ports,
                    )
                })
                .collect()
        })
        .transpose()
    };
    let eg = |name: &str, v: Option<Vec<RawEgress>>| -> Result<_, PolicyError> {
        v.map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, x)| {
                    let p = format!("{path}.{name}[{i}]");
                    peer_rule(
                        cx,
                        &p,
                        ns,
                        ["toEndpoints", "toCIDR", "toCIDRSet", "toEntities"],
                        x.to_endpoints,
                        x.to_cidr,
                        x.to_cidr_set,
                        x.to_entities,
                        x.to_ports,
                    )
                })
                .collect()
        })
        .transpose()
    };
    Ok(Rule {
        subject,
        ingress: ing("ingress", r.ingress)?,
        ingress_deny: ing("ingressDeny", r.ingress_deny)?,
        egress: eg("egress", r.egress)?,
        egress_deny: eg("egressDeny", r.egress_deny)?,
    })
}

fn split_key(key: &str) -> (Option<String>, String) {
    match key.split_once(':') {
        Some(("any", k)) => (None, k.to_string()),
        Some((s, k)) => (Some(s.to_string()), k.to_string()),
        None => (None, key.to_string()),
    }
}

fn selector(cx: &Ctx<'_>, path: &str, s: RawSelector) -> Result<Selector, PolicyError> {
    let mut requirements = Vec::new();
    for (k, v) in s.match_labels {
        if k.is_empty() {
            return Err(cx.err(format!("{path}.matchLabels"), "empty label key"));
        }
        let (source, key) = split_key(&k);
        requirements.push(Requirement {
            source,
            key,
            op: Op::In,
            values: vec![v],
        });
    }
    for (i, e) in s.match_expressions.into_iter().enumerate() {
        let p = format!("{path}.matchExpressions[{i}]");
        let op = match e.operator.as_str() {
            "In" => Op::In,
            "NotIn" => Op::NotIn,
            "Exists" => Op::Exists,
            "DoesNotExist" => Op::DoesNotExist,
            o => {
                return Err(cx.err(
                    format!("{p}.operator"),
                    format!("{o:?}: expected In, NotIn, Exists or DoesNotExist"),
                ));
            }
        };
        match op {
            Op::In | Op::NotIn if e.values.is_empty() => {
                return Err(cx.err(format!("{p}.values"), "In and NotIn need values"));
            }
            Op::Exists | Op::DoesNotExist if !e.values.is_empty() => {
                return Err(cx.err(
                    format!("{p}.values"),
                    "Exists and DoesNotExist take no values",
                ));
            }
            _ => {}
        }
        let (source, key) = split_key(&e.key);
        requirements.push(Requirement {
            source,
            key,
            op,
            values: e.values,
        });
    }
    Ok(Selector { requirements })
}

#[expect(clippy::too_many_arguments, reason = "ingress and egress share this")]
fn peer_rule(
    cx: &Ctx<'_>,
    path: &str,
    ns: Option<&str>,
    names: [&str; 4],
    endpoints: Option<Vec<RawSelector>>,
    cidr: Option<Vec<String>>,
    cidr_set: Option<Vec<RawCidrSet>>,
    entities: Option<Vec<String>>,
    to_ports: Option<Vec<RawPortRule>>,
) -> Result<PeerRule, PolicyError> {
    let endpoints = endpoints
        .map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let s = selector(cx, &format!("{path}.{}[{i}]", names[0]), s)?;
                    Ok(match ns {
                        Some(ns) if !s.names_source("reserved") => s.in_namespace(ns),
                        _ => s,
                    })
                })
                .collect::<Result<Vec<_>, PolicyError>>()
        })
        .transpose()?;
    let parse_cidr = |field: String, s: &str| -> Result<Cidr, PolicyError> {
        s.parse().map_err(|m: String| cx.err(field, m))
    };
    let mut cidrs: Option<Vec<CidrSet>> = None;
    if let Some(v) = cidr {
        let list = cidrs.get_or_insert_default();
        for (i, c) in v.iter().enumerate() {
            list.push(CidrSet {
                cidr: parse_cidr(format!("{path}.{}[{i}]", names[1]), c)?,
                except: Vec::new(),
            });
        }
    }
    if let Some(v) = cidr_set {
        let list = cidrs.get_or_insert_default();
        for (i, c) in v.into_iter().enumerate() {
            let p = format!("{path}.{}[{i}]", names[2]);
            let cidr = parse_cidr(format!("{p}.cidr"), &c.cidr)?;
            let mut except = Vec::new();
            for (j, e) in c.except.iter().enumerate() {
                let x = parse_cidr(format!("{p}.except[{j}]"), e)?;
                if !cidr.covers(&x) {
                    return Err(cx.err(
                        format!("{p}.except[{j}]"),
                        format!("{x} is not inside {cidr}"),
                    ));
                }
                except.push(x);
            }
            list.push(CidrSet { cidr, except });
        }
    }
    let entities = entities
        .map(|v| {
            v.iter()
                .enumerate()
                .map(|(i, e)| {
                    Ok(match e.as_str() {
                        "all" => Entity::All,
                        "world" | "world-ipv4" => Entity::World,
                        "cluster" => Entity::Cluster,
                        other => match identity::reserved_id(other) {
                            Some(id) => Entity::Reserved(id),
                            None => {
                                return Err(cx.err(
                                    format!("{path}.{}[{i}]", names[3]),
                                    format!(
                                        "unknown entity {other:?} (all, world, cluster, host, remote-node, health, init, unmanaged, kube-apiserver, ingress)"
                                    ),
                                ));
                            }
                        },
                    })
                })
                .collect::<Result<Vec<_>, PolicyError>>()
        })
        .transpose()?;
    // `toPorts: []` is no `toPorts` at all (L3-only), as a Go empty slice
    // is for Cilium.
    let ports = to_ports
        .filter(|v| !v.is_empty())
        .map(|v| {
            let mut out = Vec::new();
            for (i, pr) in v.into_iter().enumerate() {
                let p = format!("{path}.toPorts[{i}]");
                if pr.rules.is_some() {
                    return Err(cx.err(
                        format!("{p}.rules"),
                        "L7 rules are not supported by this datapath",
                    ));
                }
                // `toPorts: [{}]` or `[{ports: []}]` names no port, so it
                // allows nothing (Cilium's semantics); the section still
                // makes the endpoint enforce.
                for (j, port) in pr.ports.into_iter().enumerate() {
                    out.extend(port_entries(cx, &format!("{p}.ports[{j}]"), port)?);
                }
            }
            out.sort_unstable();
            out.dedup();
            Ok::<_, PolicyError>(out)
        })
        .transpose()?;
    Ok(PeerRule {
        endpoints,
        cidrs,
        entities,
        ports,
    })
}

/// Widest `endPort` range expanded into single-port entries.
const MAX_PORT_RANGE: u32 = 1024;

fn port_entries(cx: &Ctx<'_>, path: &str, p: RawPort) -> Result<Vec<(u8, u16)>, PolicyError> {
    let protos: &[u8] = match p
        .protocol
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("ANY") => &[6, 17, 132],
        Some("TCP") => &[6],
        Some("UDP") => &[17],
        Some("SCTP") => &[132],
        Some(other) => {
            return Err(cx.err(
                format!("{path}.protocol"),
                format!("{other:?}: expected TCP, UDP, SCTP or ANY"),
            ));
        }
    };
    let port: u32 = match &p.port {
        None => 0,
        Some(serde_yaml::Value::Number(n)) => n
            .as_u64()
            .filter(|n| *n <= 65_535)
            .ok_or_else(|| cx.err(format!("{path}.port"), format!("{n} is not a port")))?
            as u32,
        Some(serde_yaml::Value::String(s)) => s.parse::<u16>().map(u32::from).map_err(|_| {
            cx.err(
                format!("{path}.port"),
                format!("{s:?} is not a port number (named ports are not supported)"),
            )
        })?,
        Some(other) => {
            return Err(cx.err(
                format!("{path}.port"),
                format!("{other:?} is not a port number"),
            ));
        }
    };
    let last = match p.end_port {
        None => port,
        Some(e) if e >= port && e <= 65_535 && port != 0 => e,
        Some(e) => {
            return Err(cx.err(
                format!("{path}.endPort"),
                format!("{e} must be ≥ port ({port}), ≤ 65535, and port must be set"),
            ));
        }
    };
    if last - port >= MAX_PORT_RANGE {
        return Err(cx.err(
            format!("{path}.endPort"),
            format!("ranges wider than {MAX_PORT_RANGE} ports are not supported"),
        ));
    }
    let mut out = Vec::new();
    for proto in protos {
        for port in port..=last {
            out.push((*proto, port as u16));
        }
    }
    Ok(out)
}

// ---- compilation ------------------------------------------------------------

/// A local endpoint as the compiler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalEndpoint {
    /// Endpoint id.
    pub ep_id: u16,
    /// Its identity (labels come from the allocator).
    pub identity: u32,
}

/// Whether an endpoint is default-deny in each direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enforcement {
    /// Ingress is default-deny.
    pub ingress: bool,
    /// Egress is default-deny.
    pub egress: bool,
}

/// The compiled policy of a node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compiled {
    /// Every entry of every local endpoint, sorted by key.
    pub entries: Vec<PolicyEntry>,
    /// Enforcement per local endpoint id (every endpoint is listed).
    pub enforce: BTreeMap<u16, Enforcement>,
}

/// Every prefix the policies mention (CIDRs and their exceptions): each
/// needs an ipcache entry with its own CIDR identity.
pub fn cidr_prefixes(policies: &[Policy]) -> BTreeSet<Cidr> {
    let mut out = BTreeSet::new();
    for p in policies {
        for r in &p.rules {
            for list in [&r.ingress, &r.ingress_deny, &r.egress, &r.egress_deny]
                .into_iter()
                .flatten()
            {
                for pr in list {
                    for c in pr.cidrs.iter().flatten() {
                        out.insert(c.cidr);
                        out.extend(c.except.iter().copied());
                    }
                }
            }
        }
    }
    out
}

/// Allocates (or finds) the CIDR identity of every prefix the policies use.
pub fn allocate_cidr_identities(
    policies: &[Policy],
    ids: &mut IdentityAllocator,
) -> BTreeMap<Cidr, u32> {
    cidr_prefixes(policies)
        .into_iter()
        .map(|c| (c, ids.allocate(&identity::cidr_labels(&c.to_string()))))
        .collect()
}

/// What peer identities a rule's peers resolve to; `0` means any peer.
struct Universe<'a> {
    /// Every known identity with labels, reserved ones included.
    all: Vec<(u32, LabelSet)>,
    cidr_ids: &'a BTreeMap<Cidr, u32>,
}

impl Universe<'_> {
    fn peers(&self, pr: &PeerRule) -> BTreeSet<u32> {
        if !pr.has_peers() {
            return BTreeSet::from([0]);
        }
        let mut out = BTreeSet::new();
        for sel in pr.endpoints.iter().flatten() {
            let reserved_ok = sel.names_source("reserved");
            for (id, labels) in &self.all {
                let ok = match identity::scope(*id) {
                    Scope::Cluster => true,
                    Scope::Reserved => reserved_ok,
                    Scope::Cidr | Scope::Unknown => false,
                };
                if ok && sel.matches(labels) {
                    out.insert(*id);
                }
            }
        }
        for set in pr.cidrs.iter().flatten() {
            for (c, id) in self.cidr_ids {
                if set.cidr.covers(c) && !set.except.iter().any(|e| e.covers(c)) {
                    out.insert(*id);
                }
            }
        }
        for e in pr.entities.iter().flatten() {
            match e {
                Entity::All => {
                    out.insert(0);
                }
                Entity::World => {
                    out.insert(reserved::WORLD);
                    out.extend(self.cidr_ids.values().copied());
                }
                Entity::Cluster => {
                    out.extend(self.all.iter().map(|(id, _)| *id).filter(|id| {
                        *id != reserved::WORLD && identity::scope(*id) != Scope::Cidr
                    }));
                }
                Entity::Reserved(id) => {
                    out.insert(*id);
                }
            }
        }
        if out.contains(&0) {
            return BTreeSet::from([0]);
        }
        out
    }
}

/// Compiles `policies` for the local `endpoints`. `ids` must already hold
/// every identity (including the CIDR identities in `cidr_ids`, see
/// [`allocate_cidr_identities`]).
pub fn compile(
    policies: &[Policy],
    endpoints: &[LocalEndpoint],
    ids: &IdentityAllocator,
    cidr_ids: &BTreeMap<Cidr, u32>,
) -> Compiled {
    let uni = Universe {
        all: ids.all(),
        cidr_ids,
    };
    type Key = (u16, u8, u32, u8, u16);
    let mut entries: BTreeMap<Key, (PolicyAction, u32)> = BTreeMap::new();
    let mut enforce = BTreeMap::new();
    for ep in endpoints {
        let labels = ids.labels(ep.identity).unwrap_or_default();
        let mut enf = Enforcement::default();
        for p in policies {
            let cookie = p.cookie();
            for r in p.rules.iter().filter(|r| r.subject.matches(&labels)) {
                let sections = [
                    (Direction::Ingress, PolicyAction::Allow, &r.ingress),
                    (Direction::Ingress, PolicyAction::Deny, &r.ingress_deny),
                    (Direction::Egress, PolicyAction::Allow, &r.egress),
                    (Direction::Egress, PolicyAction::Deny, &r.egress_deny),
                ];
                for (dir, action, section) in sections {
                    let Some(list) = section else { continue };
                    match dir {
                        Direction::Ingress => enf.ingress = true,
                        Direction::Egress => enf.egress = true,
                    }
                    for pr in list {
                        if !pr.has_peers() && pr.ports.is_none() {
                            continue; // `{}`: selects no traffic
                        }
                        let ports = pr.ports.clone().unwrap_or_else(|| vec![(0, 0)]);
                        for peer in uni.peers(pr) {
                            for (proto, port) in &ports {
                                let key = (ep.ep_id, dir as u8, peer, *proto, *port);
                                match entries.get(&key) {
                                    Some((PolicyAction::Deny, _)) => {}
                                    Some(_) if action != PolicyAction::Deny => {}
                                    _ => {
                                        entries.insert(key, (action, cookie));
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        enforce.insert(ep.ep_id, enf);
    }
    let entries = entries
        .into_iter()
        .map(
            |((ep_id, dir, identity, proto, port), (action, rule))| PolicyEntry {
                ep_id,
                direction: if dir == Direction::Ingress as u8 {
                    Direction::Ingress
                } else {
                    Direction::Egress
                },
                identity,
                proto,
                port,
                action,
                rule,
            },
        )
        .collect();
    Compiled { entries, enforce }
}

/// Writes and removals that turn the map's entries into the desired ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryDiff {
    /// Entries to add or overwrite (new keys, or a changed action/cookie).
    pub upsert: Vec<PolicyEntry>,
    /// Entries whose key is no longer wanted.
    pub remove: Vec<PolicyEntry>,
}

impl EntryDiff {
    /// No change.
    pub fn is_empty(&self) -> bool {
        self.upsert.is_empty() && self.remove.is_empty()
    }
}

fn entry_key(e: &PolicyEntry) -> (u16, u8, u32, u8, u16) {
    (e.ep_id, e.direction as u8, e.identity, e.proto, e.port)
}

/// The minimal change from `current` (what the map holds) to `desired`.
pub fn diff_entries(current: &[PolicyEntry], desired: &[PolicyEntry]) -> EntryDiff {
    let have: BTreeMap<_, _> = current.iter().map(|e| (entry_key(e), e)).collect();
    let want: BTreeMap<_, _> = desired.iter().map(|e| (entry_key(e), e)).collect();
    EntryDiff {
        upsert: want
            .iter()
            .filter(|(k, e)| have.get(k) != Some(e))
            .map(|(_, e)| **e)
            .collect(),
        remove: have
            .iter()
            .filter(|(k, _)| !want.contains_key(k))
            .map(|(_, e)| **e)
            .collect(),
    }
}

#[cfg(test)]
mod tests;

//! Parsing and validation: YAML text or files → [`Policy`](super::Policy)
//! or a [`PolicyError`](super::PolicyError) naming the field.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::policy::cidr::Cidr;
use crate::policy::identity;

use super::error::PolicyError;
use super::model::{
    CidrSet, DefaultDeny, Entity, IPPROTO_ICMP, Op, PeerRule, Policy, Requirement, Rule, Selector,
    check_port_name,
};
use super::raw::{
    Doc, RawCidrSet, RawEgress, RawIcmpRule, RawIngress, RawPort, RawPortRule, RawRule, RawSelector,
};

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
    // A CiliumNetworkPolicy without a namespace is taken as `default` and
    // marked (`namespace_defaulted`): the API server always fills it in, so
    // only a file lacks it, and Cilium's parser would make such a policy
    // clusterwide, which is rarely what the file's author meant.
    let given = doc.metadata.namespace.clone().filter(|n| !n.is_empty());
    let (namespace, namespace_defaulted) = match doc.kind.as_str() {
        "CiliumNetworkPolicy" => (
            Some(given.clone().unwrap_or_else(|| "default".into())),
            given.is_none(),
        ),
        "CiliumClusterwideNetworkPolicy" => (None, false),
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
        namespace_defaulted,
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
    // Cilium's `Rule.Validate`: a rule needs a non-empty section; `[]`
    // counts as absent (`len(r.Ingress) == 0 && ...`).
    if !(nonempty(&r.ingress)
        || nonempty(&r.ingress_deny)
        || nonempty(&r.egress)
        || nonempty(&r.egress_deny))
    {
        return Err(cx.err(
            path,
            "rule must have at least one of ingress, ingressDeny, egress, egressDeny \
             with a rule in it (an empty list counts as absent, as in Cilium; \
             `ingress: [{}]` denies all ingress)",
        ));
    }
    if let Some(ns) = ns {
        subject = subject.in_namespace(ns);
    }
    let ing = |name: &str, v: Option<Vec<RawIngress>>| -> Result<_, PolicyError> {
        v.map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, x)| {
                    let p = format!("{path}.{name}[{i}]");
                    unsupported(
                        cx,
                        &p,
                        [
                            ("fromRequires", x.from_requires.is_some()),
                            ("fromGroups", x.from_groups.is_some()),
                            ("fromNodes", x.from_nodes.is_some()),
                            ("authentication", x.authentication.is_some()),
                        ],
                    )?;
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
                        x.icmps,
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
                    unsupported(
                        cx,
                        &p,
                        [
                            ("toFQDNs", x.to_fqdns.is_some()),
                            ("toServices", x.to_services.is_some()),
                            ("toRequires", x.to_requires.is_some()),
                            ("toGroups", x.to_groups.is_some()),
                            ("toNodes", x.to_nodes.is_some()),
                            ("authentication", x.authentication.is_some()),
                        ],
                    )?;
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
                        x.icmps,
                    )
                })
                .collect()
        })
        .transpose()
    };
    // An empty section is no section: Cilium turns on default-deny for a
    // direction only when `len(r.Ingress) > 0 || len(r.IngressDeny) > 0`
    // (likewise egress), so `ingress: []` beside egress rules leaves
    // ingress open.
    let some = |v: Option<Vec<PeerRule>>| v.filter(|v| !v.is_empty());
    // `enableDefaultDeny`: Cilium's `Rule.Sanitize` fills an unset
    // direction with "has a non-empty section"; only such a direction is
    // looked at, so unset is `true` here.
    let dd = r.enable_default_deny.unwrap_or_default();
    Ok(Rule {
        subject,
        ingress: some(ing("ingress", r.ingress)?),
        ingress_deny: some(ing("ingressDeny", r.ingress_deny)?),
        egress: some(eg("egress", r.egress)?),
        egress_deny: some(eg("egressDeny", r.egress_deny)?),
        default_deny: DefaultDeny {
            ingress: dd.ingress.unwrap_or(true),
            egress: dd.egress.unwrap_or(true),
        },
    })
}

/// Whether a list is present and holds something (Go's `len(x) > 0`).
fn nonempty<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_some_and(|v| !v.is_empty())
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
    icmps: Option<Vec<RawIcmpRule>>,
) -> Result<PeerRule, PolicyError> {
    // Cilium rejects a rule that combines two kinds of L3 peers
    // (`IngressCommonRule.Validate` / `EgressCommonRule.Validate`: "combining
    // X and Y is not supported yet"); an empty list does not count.
    let present = [
        nonempty(&endpoints),
        nonempty(&cidr),
        nonempty(&cidr_set),
        nonempty(&entities),
    ];
    let used: Vec<&str> = names
        .iter()
        .zip(present)
        .filter_map(|(name, p)| p.then_some(*name))
        .collect();
    if let [a, b, ..] = used[..] {
        return Err(cx.err(
            path,
            format!(
                "combining {a} and {b} in one rule is not supported (Cilium rejects it too); \
                 write them as separate rules"
            ),
        ));
    }
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
                        "world" => Entity::World,
                        "world-ipv4" => Entity::WorldIpv4,
                        "world-ipv6" => Entity::WorldIpv6,
                        "cluster" => Entity::Cluster,
                        "none" => Entity::None,
                        other => match identity::reserved_id(other) {
                            Some(id) => Entity::Reserved(id),
                            None => {
                                return Err(cx.err(
                                    format!("{path}.{}[{i}]", names[3]),
                                    format!(
                                        "unknown entity {other:?} (all, world, world-ipv4, world-ipv6, cluster, none, host, remote-node, health, init, unmanaged, kube-apiserver, ingress)"
                                    ),
                                ));
                            }
                        },
                    })
                })
                .collect::<Result<Vec<_>, PolicyError>>()
        })
        .transpose()?;
    // Cilium (`IngressRule.sanitize` / `EgressRule.sanitize`): "The ICMPs
    // block may only be present without ToPorts"; empty lists do not count.
    if nonempty(&icmps) && nonempty(&to_ports) {
        return Err(cx.err(
            path,
            "icmps may only be present without toPorts (Cilium rejects the combination too); \
             write them as separate rules",
        ));
    }
    let icmp_ports = icmps
        .filter(|v| !v.is_empty())
        .map(|v| icmp_entries(cx, path, v))
        .transpose()?;
    // `toPorts: []` is no `toPorts` at all (L3-only), as a Go empty slice
    // is for Cilium.
    let mut named_ports = Vec::new();
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
                    let (numeric, named) = port_entries(cx, &format!("{p}.ports[{j}]"), port)?;
                    out.extend(numeric);
                    named_ports.extend(named);
                }
            }
            out.sort_unstable();
            out.dedup();
            named_ports.sort_unstable();
            named_ports.dedup();
            Ok::<_, PolicyError>(out)
        })
        .transpose()?
        .or(icmp_ports);
    Ok(PeerRule {
        endpoints,
        cidrs,
        entities,
        ports,
        named_ports,
    })
}

/// Cilium's ICMP type names (`pkg/policy/api/icmp.go`), IPv4.
const ICMPV4_TYPES: &[(&str, u8)] = &[
    ("EchoReply", 0),
    ("DestinationUnreachable", 3),
    ("Redirect", 5),
    ("Echo", 8),
    ("EchoRequest", 8),
    ("RouterAdvertisement", 9),
    ("RouterSelection", 10),
    ("TimeExceeded", 11),
    ("ParameterProblem", 12),
    ("Timestamp", 13),
    ("TimestampReply", 14),
    ("Photuris", 40),
    ("ExtendedEchoRequest", 42),
    ("ExtendedEchoReply", 43),
];

/// Cilium's ICMPv6 type names.
const ICMPV6_TYPES: &[(&str, u8)] = &[
    ("DestinationUnreachable", 1),
    ("PacketTooBig", 2),
    ("TimeExceeded", 3),
    ("ParameterProblem", 4),
    ("EchoRequest", 128),
    ("EchoReply", 129),
    ("MulticastListenerQuery", 130),
    ("MulticastListenerReport", 131),
    ("MulticastListenerDone", 132),
    ("RouterSolicitation", 133),
    ("RouterAdvertisement", 134),
    ("NeighborSolicitation", 135),
    ("NeighborAdvertisement", 136),
    ("RedirectMessage", 137),
    ("RouterRenumbering", 138),
    ("ICMPNodeInformationQuery", 139),
    ("ICMPNodeInformationResponse", 140),
    ("InverseNeighborDiscoverySolicitation", 141),
    ("InverseNeighborDiscoveryAdvertisement", 142),
    ("HomeAgentAddressDiscoveryRequest", 144),
    ("HomeAgentAddressDiscoveryReply", 145),
    ("MobilePrefixSolicitation", 146),
    ("MobilePrefixAdvertisement", 147),
    ("DuplicateAddressRequestCodeSuffix", 157),
    ("DuplicateAddressConfirmationCodeSuffix", 158),
    ("ExtendedEchoRequest", 160),
    ("ExtendedEchoReply", 161),
];

/// At most this many fields per `icmps` entry (Cilium's `maxICMPFields`).
const MAX_ICMP_FIELDS: usize = 40;

/// `icmps` → `(1, type)` entries for the IPv4 fields. IPv6 fields are
/// validated and then dropped: this datapath is IPv4-only, so an ICMPv6
/// packet never reaches a policy lookup.
fn icmp_entries(
    cx: &Ctx<'_>,
    path: &str,
    rules: Vec<RawIcmpRule>,
) -> Result<Vec<(u8, u16, u16)>, PolicyError> {
    let mut out = Vec::new();
    for (i, r) in rules.into_iter().enumerate() {
        let p = format!("{path}.icmps[{i}]");
        if r.fields.len() > MAX_ICMP_FIELDS {
            return Err(cx.err(
                format!("{p}.fields"),
                format!("too many types, the max is {MAX_ICMP_FIELDS}"),
            ));
        }
        for (j, f) in r.fields.into_iter().enumerate() {
            let fp = format!("{p}.fields[{j}]");
            let (v6, family, names) = match f.family.as_deref() {
                None | Some("") | Some("IPv4") => (false, "IPv4", ICMPV4_TYPES),
                Some("IPv6") => (true, "IPv6", ICMPV6_TYPES),
                Some(other) => {
                    return Err(cx.err(
                        format!("{fp}.family"),
                        format!("{other:?}: expected IPv4 or IPv6"),
                    ));
                }
            };
            let bad_number = |n: &dyn std::fmt::Display| {
                cx.err(
                    format!("{fp}.type"),
                    format!("{n} is not an ICMP type (0-255)"),
                )
            };
            let ty: u8 = match &f.icmp_type {
                serde_yaml::Value::Number(n) => n
                    .as_u64()
                    .and_then(|n| u8::try_from(n).ok())
                    .ok_or_else(|| bad_number(n))?,
                serde_yaml::Value::String(s) if s.bytes().all(|b| b.is_ascii_digit()) => {
                    s.parse::<u8>().map_err(|_| bad_number(s))?
                }
                serde_yaml::Value::String(s) => names
                    .iter()
                    .find(|(name, _)| name == s)
                    .map(|(_, t)| *t)
                    .ok_or_else(|| {
                        let known: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
                        cx.err(
                            format!("{fp}.type"),
                            format!(
                                "unknown {family} ICMP type {s:?} (a number 0-255 or one of {})",
                                known.join(", ")
                            ),
                        )
                    })?,
                other => {
                    return Err(cx.err(
                        format!("{fp}.type"),
                        format!("{other:?} is not an ICMP type (a number 0-255 or a name)"),
                    ));
                }
            };
            if !v6 {
                out.push((IPPROTO_ICMP, u16::from(ty), u16::from(ty)));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Cilium rule fields this datapath rejects, and why.
const UNSUPPORTED_PEER_FIELDS: &[(&str, &str)] = &[
    (
        "toFQDNs",
        "DNS-based rules need Cilium's DNS proxy, which this datapath does not have",
    ),
    (
        "toServices",
        "service selectors need the Kubernetes service watcher, which this agent does not have",
    ),
    (
        "toRequires",
        "deprecated in Cilium and not supported; write the requirement into the selectors",
    ),
    (
        "fromRequires",
        "deprecated in Cilium and not supported; write the requirement into the selectors",
    ),
    (
        "toGroups",
        "cloud provider groups need an operator integration, not supported",
    ),
    (
        "fromGroups",
        "cloud provider groups need an operator integration, not supported",
    ),
    (
        "toNodes",
        "node selectors need node labels, not supported (use toEntities: [remote-node])",
    ),
    (
        "fromNodes",
        "node selectors need node labels, not supported (use fromEntities: [remote-node])",
    ),
    (
        "authentication",
        "mutual authentication needs Cilium's auth agent, not supported",
    ),
];

/// The error for the first of `present` fields that is set.
fn unsupported<const N: usize>(
    cx: &Ctx<'_>,
    path: &str,
    present: [(&str, bool); N],
) -> Result<(), PolicyError> {
    match present.iter().find(|(_, set)| *set) {
        None => Ok(()),
        Some((field, _)) => {
            let why = UNSUPPORTED_PEER_FIELDS
                .iter()
                .find(|(f, _)| f == field)
                .map_or("not supported", |(_, w)| w);
            Err(cx.err(format!("{path}.{field}"), format!("{field}: {why}")))
        }
    }
}

/// `(protocol, first, last)` ranges and `(protocol, name)` named ports.
type PortEntries = (Vec<(u8, u16, u16)>, Vec<(u8, String)>);

/// One `toPorts[].ports[]` entry → `(protocol, first, last)` ranges, or
/// `(protocol, name)` for a named port (protocol 0: any, the declared one).
fn port_entries(cx: &Ctx<'_>, path: &str, p: RawPort) -> Result<PortEntries, PolicyError> {
    if let Some(serde_yaml::Value::String(s)) = &p.port
        && s.parse::<u16>().is_err()
    {
        // A named port (Cilium: an IANA service name); `endPort` does not
        // apply to it.
        check_port_name(s).map_err(|m| cx.err(format!("{path}.port"), m))?;
        let proto = match p
            .protocol
            .as_deref()
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None | Some("ANY") => 0,
            Some("TCP") => 6,
            Some("UDP") => 17,
            Some("SCTP") => 132,
            Some(other) => {
                return Err(cx.err(
                    format!("{path}.protocol"),
                    format!("{other:?}: expected TCP, UDP, SCTP or ANY"),
                ));
            }
        };
        return Ok((Vec::new(), vec![(proto, s.clone())]));
    }
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
        Some(serde_yaml::Value::String(s)) => s
            .parse::<u16>()
            .map(u32::from)
            .map_err(|_| cx.err(format!("{path}.port"), format!("{s:?} is not a port")))?,
        Some(other) => {
            return Err(cx.err(
                format!("{path}.port"),
                format!("{other:?} is not a port number"),
            ));
        }
    };
    // Cilium (`pkg/policy/l4.go`): port 0 (or none) is every port and its
    // `endPort` is ignored; an `endPort` not above `port` is ignored too
    // (the rule is for `port` alone); 65535 is the CRD's maximum.
    let last = match p.end_port {
        Some(e) if e > 65_535 => {
            return Err(cx.err(
                format!("{path}.endPort"),
                format!("{e} is not a port (the maximum is 65535)"),
            ));
        }
        Some(e) if port != 0 && e > port => e,
        _ => port,
    };
    // Port 0 is every port; a range of any width is one entry (the
    // compiler splits it into aligned prefixes of the policy trie).
    let last = if port == 0 { 65_535 } else { last };
    Ok((
        protos
            .iter()
            .map(|proto| (*proto, port as u16, last as u16))
            .collect(),
        Vec::new(),
    ))
}

//! Parsing and validation: YAML (or JSON) text → [`Object`]s, one result
//! per document, so one bad object does not hide the others. Every error
//! names the origin (file or store key), the object (`Service ns/name`, or
//! the document number when even the name cannot be read) and the reason.
//!
//! Documents are read as generic YAML first and checked field by field,
//! so a message names the field (`spec.ports[1].port`) and what was
//! expected; fields this datapath does not act on (status, labels,
//! `clusterIPs`, ...) are ignored, as kube-proxy ignores what it does not
//! implement.

#![expect(
    clippy::result_large_err,
    reason = "one result per YAML document, never on a hot path; the error carries the object's key and a message"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;

use serde::Deserialize as _;
use serde_yaml::{Mapping, Value};

use super::error::ServiceError;
use super::model::{
    Affinity, Conditions, EndpointSlice, LbAlgorithm, Object, ObjectKey, ObjectName, Protocol,
    Service, ServicePort, ServiceType, SliceEndpoint, SlicePort, TargetPort,
};
use crate::policy::cidr::Cidr;

/// The annotation that picks a service's load-balancing algorithm (Cilium's
/// name, honoured there with `bpf-lb-algorithm-annotation`).
pub const LB_ALGORITHM_ANNOTATION: &str = "service.cilium.io/lb-algorithm";

/// The EndpointSlice label naming its service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Kubernetes' default NodePort range (`--service-node-port-range`).
pub const NODE_PORT_RANGE: std::ops::RangeInclusive<u16> = 30000..=32767;

/// Kubernetes' default ClientIP affinity timeout (3 hours).
pub const DEFAULT_AFFINITY_TIMEOUT_S: u32 = 10_800;

/// Kubernetes' upper bound of `timeoutSeconds` (one day).
const MAX_AFFINITY_TIMEOUT_S: u32 = 86_400;

/// What validation needs from the agent's configuration.
#[derive(Debug, Clone, Copy)]
pub struct ParseOptions {
    /// Every ClusterIP must lie in this prefix (`--service-cidr`).
    pub service_cidr: Cidr,
}

/// The result of one document: an object, or an error with the object's
/// key when it could be read (so the previous version of that object
/// stays in force).
pub type DocResult = Result<Object, (Option<ObjectKey>, ServiceError)>;

/// Parses every document of `text`; `origin` names it in errors. A text
/// that is not YAML at all gives one error without a key.
pub fn parse_str(origin: &str, text: &str, opts: &ParseOptions) -> Vec<DocResult> {
    let mut docs = Vec::new();
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        match Value::deserialize(de) {
            Ok(Value::Null) => {}
            Ok(v) => docs.push((i + 1, v)),
            Err(e) => {
                return vec![Err((
                    None,
                    ServiceError::new(
                        origin,
                        format!("document {}", i + 1),
                        format!("not valid YAML: {e}"),
                    ),
                ))];
            }
        }
    }
    docs.into_iter()
        .map(|(i, v)| parse_doc(origin, i, &v, opts))
        .collect()
}

/// Reads and parses one file.
pub fn load_file(path: &Path, opts: &ParseOptions) -> Vec<DocResult> {
    let origin = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(t) => parse_str(&origin, &t, opts),
        Err(e) => vec![Err((
            None,
            ServiceError::new(&origin, "file", format!("cannot read: {e}")),
        ))],
    }
}

/// Whether a file name looks like a service file (`*.yaml`, `*.yml`,
/// `*.json`, not hidden): the policy directory's rule.
pub fn is_service_file(path: &Path) -> bool {
    crate::policy::is_policy_file(path)
}

/// Every service file of a directory, sorted by name, with its content.
/// A missing directory holds none.
pub fn dir_files(dir: &Path) -> BTreeMap<std::path::PathBuf, Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_service_file(p))
        .filter_map(|p| std::fs::read(&p).ok().map(|b| (p, b)))
        .collect()
}

/// Field access with the path for messages.
struct Doc<'a> {
    origin: &'a str,
    object: String,
}

impl Doc<'_> {
    fn err(&self, field: &str, reason: impl std::fmt::Display) -> ServiceError {
        ServiceError::new(self.origin, &self.object, format!("{field}: {reason}"))
    }
}

fn get<'v>(m: &'v Mapping, key: &str) -> Option<&'v Value> {
    m.get(key).filter(|v| !v.is_null())
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a map",
        Value::Tagged(_) => "a tagged value",
    }
}

fn as_map<'v>(d: &Doc<'_>, field: &str, v: &'v Value) -> Result<&'v Mapping, ServiceError> {
    v.as_mapping()
        .ok_or_else(|| d.err(field, format!("expected a map, found {}", kind_of(v))))
}

fn as_list<'v>(d: &Doc<'_>, field: &str, v: &'v Value) -> Result<&'v [Value], ServiceError> {
    v.as_sequence()
        .map(Vec::as_slice)
        .ok_or_else(|| d.err(field, format!("expected a list, found {}", kind_of(v))))
}

fn as_str<'v>(d: &Doc<'_>, field: &str, v: &'v Value) -> Result<&'v str, ServiceError> {
    v.as_str()
        .ok_or_else(|| d.err(field, format!("expected a string, found {}", kind_of(v))))
}

fn as_bool(d: &Doc<'_>, field: &str, v: &Value) -> Result<bool, ServiceError> {
    v.as_bool().ok_or_else(|| {
        d.err(
            field,
            format!("expected true or false, found {}", kind_of(v)),
        )
    })
}

/// A port number 1..=65535 (out-of-range values are named, not wrapped).
fn as_port(d: &Doc<'_>, field: &str, v: &Value) -> Result<u16, ServiceError> {
    let n = v
        .as_i64()
        .ok_or_else(|| d.err(field, format!("expected a number, found {}", kind_of(v))))?;
    u16::try_from(n)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| d.err(field, format!("port {n} out of range 1-65535")))
}

fn protocol(d: &Doc<'_>, field: &str, v: Option<&Value>) -> Result<Protocol, ServiceError> {
    let Some(v) = v else {
        return Ok(Protocol::Tcp);
    };
    match as_str(d, field, v)? {
        "TCP" => Ok(Protocol::Tcp),
        "UDP" => Ok(Protocol::Udp),
        "SCTP" => Err(d.err(field, "SCTP is not supported by this datapath (TCP or UDP)")),
        o => Err(d.err(field, format!("unknown protocol {o:?} (TCP or UDP)"))),
    }
}

/// Kubernetes' DNS-1123 label: lowercase alphanumerics and `-`, at most 63,
/// starting and ending alphanumeric (names and namespaces).
fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS-1123 subdomain (EndpointSlice names, label key prefixes).
fn dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(dns_label)
}

/// The name part of a label key, and a label value when non-empty: at most
/// 63 of `[A-Za-z0-9._-]`, alphanumeric at both ends.
fn label_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

/// Checks one selector label (`[prefix/]name` = `value`).
fn check_label(key: &str, value: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if prefix.is_some_and(|p| !dns_subdomain(p)) || !label_name(name) {
        return Err(format!(
            "label key {key:?} is not valid (a name of at most 63 of [A-Za-z0-9._-], \
             alphanumeric at both ends, with an optional DNS subdomain prefix and '/')"
        ));
    }
    if !value.is_empty() && !label_name(value) {
        return Err(format!(
            "label value {value:?} of {key:?} is not valid (at most 63 of [A-Za-z0-9._-], \
             alphanumeric at both ends)"
        ));
    }
    Ok(())
}

/// `metadata`: name and namespace (missing namespace → `default`, marked).
fn metadata(
    origin: &str,
    index: usize,
    kind: &str,
    top: &Mapping,
) -> Result<(ObjectName, bool, Mapping), ServiceError> {
    let d = Doc {
        origin,
        object: format!("document {index} ({kind})"),
    };
    let meta = as_map(
        &d,
        "metadata",
        get(top, "metadata").ok_or_else(|| d.err("metadata", "missing"))?,
    )?;
    let name = as_str(
        &d,
        "metadata.name",
        get(meta, "name").ok_or_else(|| d.err("metadata.name", "missing"))?,
    )?;
    let (namespace, defaulted) = match get(meta, "namespace") {
        Some(v) => (as_str(&d, "metadata.namespace", v)?.to_string(), false),
        None => ("default".to_string(), true),
    };
    if !dns_label(&namespace) {
        return Err(d.err(
            "metadata.namespace",
            format!("{namespace:?} is not a valid namespace (DNS-1123 label)"),
        ));
    }
    let annotations = match get(meta, "annotations") {
        Some(v) => as_map(&d, "metadata.annotations", v)?.clone(),
        None => Mapping::new(),
    };
    Ok((ObjectName::new(namespace, name), defaulted, annotations))
}

fn parse_doc(origin: &str, index: usize, v: &Value, opts: &ParseOptions) -> DocResult {
    let d = Doc {
        origin,
        object: format!("document {index}"),
    };
    let top = as_map(&d, "document", v).map_err(|e| (None, e))?;
    let api = get(top, "apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = get(top, "kind").and_then(Value::as_str).unwrap_or("");
    match (api, kind) {
        ("v1", "Service") => {
            let (name, defaulted, annotations) =
                metadata(origin, index, kind, top).map_err(|e| (None, e))?;
            let key = ObjectKey::Service(name.clone());
            let d = Doc {
                origin,
                object: format!("Service {name}"),
            };
            service(&d, name, defaulted, &annotations, top, opts)
                .map(Object::Service)
                .map_err(|e| (Some(key), e))
        }
        ("discovery.k8s.io/v1", "EndpointSlice") => {
            let (name, _, _) = metadata(origin, index, kind, top).map_err(|e| (None, e))?;
            if !dns_subdomain(&name.name) {
                return Err((
                    Some(ObjectKey::Slice(name.clone())),
                    ServiceError::new(
                        origin,
                        format!("EndpointSlice {name}"),
                        "metadata.name: not a valid name (DNS-1123 subdomain)",
                    ),
                ));
            }
            let key = ObjectKey::Slice(name.clone());
            let d = Doc {
                origin,
                object: format!("EndpointSlice {name}"),
            };
            slice(&d, name, top)
                .map(Object::Slice)
                .map_err(|e| (Some(key), e))
        }
        _ => Err((
            None,
            d.err(
                "apiVersion/kind",
                format!(
                    "{api:?}/{kind:?} is not a v1 Service or a discovery.k8s.io/v1 EndpointSlice"
                ),
            ),
        )),
    }
}

fn service(
    d: &Doc<'_>,
    name: ObjectName,
    namespace_defaulted: bool,
    annotations: &Mapping,
    top: &Mapping,
    opts: &ParseOptions,
) -> Result<Service, ServiceError> {
    if !dns_label(&name.name) {
        return Err(d.err(
            "metadata.name",
            "not a valid service name (at most 63 of [a-z0-9-], alphanumeric at both ends)",
        ));
    }
    let empty = Value::Mapping(Mapping::new());
    let spec = as_map(d, "spec", get(top, "spec").unwrap_or(&empty))?;
    let kind = match get(spec, "type") {
        None => ServiceType::ClusterIP,
        Some(v) => match as_str(d, "spec.type", v)? {
            "ClusterIP" => ServiceType::ClusterIP,
            "NodePort" => ServiceType::NodePort,
            "LoadBalancer" => {
                return Err(d.err(
                    "spec.type",
                    "LoadBalancer is not supported (no load-balancer IPAM); use NodePort",
                ));
            }
            "ExternalName" => {
                return Err(d.err(
                    "spec.type",
                    "ExternalName is a DNS alias, not load-balanced by the datapath",
                ));
            }
            o => {
                return Err(d.err(
                    "spec.type",
                    format!("unknown type {o:?} (ClusterIP or NodePort)"),
                ));
            }
        },
    };
    let cluster_ip = match get(spec, "clusterIP") {
        None => {
            return Err(d.err(
                "spec.clusterIP",
                format!(
                    "missing: give the service an address in the service CIDR {} \
                     (this agent does not allocate ClusterIPs)",
                    opts.service_cidr
                ),
            ));
        }
        Some(v) => {
            let s = as_str(d, "spec.clusterIP", v)?;
            if s == "None" {
                return Err(d.err(
                    "spec.clusterIP",
                    "headless services (None) are not supported yet",
                ));
            }
            let ip: Ipv4Addr = s
                .parse()
                .map_err(|_| d.err("spec.clusterIP", format!("{s:?} is not an IPv4 address")))?;
            if !opts.service_cidr.contains(ip) {
                return Err(d.err(
                    "spec.clusterIP",
                    format!("{ip} is outside the service CIDR {}", opts.service_cidr),
                ));
            }
            ip
        }
    };
    let selector = match get(spec, "selector") {
        None => None,
        Some(v) => {
            let m = as_map(d, "spec.selector", v)?;
            let mut sel = BTreeMap::new();
            for (k, v) in m {
                let k = as_str(d, "spec.selector", k)?;
                let field = format!("spec.selector.{k}");
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    o => {
                        return Err(d.err(
                            &field,
                            format!("expected a string value, found {}", kind_of(o)),
                        ));
                    }
                };
                check_label(k, &v).map_err(|e| d.err(&field, e))?;
                sel.insert(k.to_string(), v);
            }
            // An empty selector is no selector (Kubernetes: the endpoints
            // are managed by hand, through EndpointSlices).
            (!sel.is_empty()).then_some(sel)
        }
    };
    let ports_v = get(spec, "ports").ok_or_else(|| d.err("spec.ports", "missing"))?;
    let ports_l = as_list(d, "spec.ports", ports_v)?;
    if ports_l.is_empty() {
        return Err(d.err("spec.ports", "a service needs at least one port"));
    }
    let mut ports = Vec::new();
    let mut seen = BTreeSet::new();
    let mut names = BTreeSet::new();
    for (i, p) in ports_l.iter().enumerate() {
        let f = |s: &str| format!("spec.ports[{i}].{s}");
        let pm = as_map(d, &format!("spec.ports[{i}]"), p)?;
        let pname = match get(pm, "name") {
            Some(v) => as_str(d, &f("name"), v)?.to_string(),
            None => String::new(),
        };
        if pname.is_empty() && ports_l.len() > 1 {
            return Err(d.err(&f("name"), "required when a service has several ports"));
        }
        if !pname.is_empty() && !dns_label(&pname) {
            return Err(d.err(
                &f("name"),
                format!("{pname:?} is not a valid port name (DNS-1123 label)"),
            ));
        }
        if !names.insert(pname.clone()) {
            return Err(d.err(&f("name"), format!("duplicate port name {pname:?}")));
        }
        let proto = protocol(d, &f("protocol"), get(pm, "protocol"))?;
        let port = as_port(
            d,
            &f("port"),
            get(pm, "port").ok_or_else(|| d.err(&f("port"), "missing"))?,
        )?;
        if !seen.insert((port, proto)) {
            return Err(d.err(&f("port"), format!("duplicate port {port}/{proto}")));
        }
        let target_port = match get(pm, "targetPort") {
            None => TargetPort::Number(port),
            Some(Value::String(s)) => match s.parse::<i64>() {
                Ok(_) => TargetPort::Number(as_port(
                    d,
                    &f("targetPort"),
                    &Value::Number(s.parse::<i64>().unwrap_or(0).into()),
                )?),
                Err(_) => {
                    if !label_name(s) || s.len() > 15 {
                        return Err(d.err(
                            &f("targetPort"),
                            format!("{s:?} is not a valid port name (IANA service name)"),
                        ));
                    }
                    TargetPort::Name(s.clone())
                }
            },
            Some(v) => TargetPort::Number(as_port(d, &f("targetPort"), v)?),
        };
        let node_port = match get(pm, "nodePort") {
            None => None,
            Some(v) => {
                let n = v.as_i64().ok_or_else(|| {
                    d.err(
                        &f("nodePort"),
                        format!("expected a number, found {}", kind_of(v)),
                    )
                })?;
                if kind != ServiceType::NodePort {
                    return Err(d.err(&f("nodePort"), "only a NodePort service has node ports"));
                }
                let np = u16::try_from(n)
                    .ok()
                    .filter(|p| NODE_PORT_RANGE.contains(p))
                    .ok_or_else(|| {
                        d.err(
                            &f("nodePort"),
                            format!(
                                "{n} outside the node port range {}-{}",
                                NODE_PORT_RANGE.start(),
                                NODE_PORT_RANGE.end()
                            ),
                        )
                    })?;
                Some(np)
            }
        };
        ports.push(ServicePort {
            name: pname,
            protocol: proto,
            port,
            target_port,
            node_port,
        });
    }
    let mut nps = BTreeSet::new();
    for p in &ports {
        if let Some(np) = p.node_port
            && !nps.insert((np, p.protocol))
        {
            return Err(d.err(
                "spec.ports",
                format!("node port {np}/{} is given twice", p.protocol),
            ));
        }
    }
    let affinity = match get(spec, "sessionAffinity") {
        None => Affinity::None,
        Some(v) => match as_str(d, "spec.sessionAffinity", v)? {
            "None" => Affinity::None,
            "ClientIP" => {
                let t = get(spec, "sessionAffinityConfig")
                    .and_then(|c| c.get("clientIP"))
                    .and_then(|c| c.get("timeoutSeconds"))
                    .filter(|v| !v.is_null());
                let timeout_s = match t {
                    None => DEFAULT_AFFINITY_TIMEOUT_S,
                    Some(v) => {
                        let field = "spec.sessionAffinityConfig.clientIP.timeoutSeconds";
                        let n = v.as_i64().ok_or_else(|| {
                            d.err(field, format!("expected a number, found {}", kind_of(v)))
                        })?;
                        u32::try_from(n)
                            .ok()
                            .filter(|t| (1..=MAX_AFFINITY_TIMEOUT_S).contains(t))
                            .ok_or_else(|| {
                                d.err(
                                    field,
                                    format!("{n} outside 1-{MAX_AFFINITY_TIMEOUT_S} seconds"),
                                )
                            })?
                    }
                };
                Affinity::ClientIp { timeout_s }
            }
            o => {
                return Err(d.err(
                    "spec.sessionAffinity",
                    format!("unknown affinity {o:?} (None or ClientIP)"),
                ));
            }
        },
    };
    let algorithm = match annotations.get(LB_ALGORITHM_ANNOTATION) {
        None => LbAlgorithm::default(),
        Some(v) => {
            let field = format!("metadata.annotations.{LB_ALGORITHM_ANNOTATION}");
            match as_str(d, &field, v)? {
                "random" => LbAlgorithm::Random,
                "maglev" => LbAlgorithm::Maglev,
                o => {
                    return Err(d.err(
                        &field,
                        format!("unknown algorithm {o:?} (random or maglev)"),
                    ));
                }
            }
        }
    };
    Ok(Service {
        name,
        namespace_defaulted,
        kind,
        cluster_ip,
        ports,
        selector,
        affinity,
        algorithm,
    })
}

fn slice(d: &Doc<'_>, name: ObjectName, top: &Mapping) -> Result<EndpointSlice, ServiceError> {
    let meta = get(top, "metadata")
        .and_then(Value::as_mapping)
        .cloned()
        .unwrap_or_default();
    let label_field = format!("metadata.labels.{SERVICE_NAME_LABEL}");
    let service = get(&meta, "labels")
        .and_then(Value::as_mapping)
        .and_then(|l| get(l, SERVICE_NAME_LABEL))
        .ok_or_else(|| d.err(&label_field, "missing: which service is this slice for?"))?;
    let service = as_str(d, &label_field, service)?.to_string();
    if !dns_label(&service) {
        return Err(d.err(
            &label_field,
            format!("{service:?} is not a valid service name"),
        ));
    }
    match get(top, "addressType").and_then(Value::as_str) {
        Some("IPv4") => {}
        Some(o) => {
            return Err(d.err(
                "addressType",
                format!("{o:?} is not supported (this datapath is IPv4-only)"),
            ));
        }
        None => return Err(d.err("addressType", "missing (IPv4)")),
    }
    let mut endpoints = Vec::new();
    if let Some(v) = get(top, "endpoints") {
        for (i, e) in as_list(d, "endpoints", v)?.iter().enumerate() {
            let f = |s: &str| format!("endpoints[{i}].{s}");
            let em = as_map(d, &format!("endpoints[{i}]"), e)?;
            let al = as_list(
                d,
                &f("addresses"),
                get(em, "addresses").ok_or_else(|| d.err(&f("addresses"), "missing"))?,
            )?;
            if al.is_empty() {
                return Err(d.err(&f("addresses"), "at least one address"));
            }
            let mut addresses = Vec::new();
            for a in al {
                let s = as_str(d, &f("addresses"), a)?;
                addresses.push(
                    s.parse::<Ipv4Addr>()
                        .map_err(|_| d.err(&f("addresses"), format!("{s:?} is not IPv4")))?,
                );
            }
            let c = get(em, "conditions").and_then(Value::as_mapping);
            let flag = |k: &str| -> Result<Option<bool>, ServiceError> {
                c.and_then(|c| get(c, k))
                    .map(|v| as_bool(d, &f(&format!("conditions.{k}")), v))
                    .transpose()
            };
            let ready = flag("ready")?.unwrap_or(true);
            let serving = flag("serving")?.unwrap_or(ready);
            let terminating = flag("terminating")?.unwrap_or(false);
            endpoints.push(SliceEndpoint {
                addresses,
                conditions: Conditions {
                    ready,
                    serving,
                    terminating,
                },
            });
        }
    }
    let mut ports = Vec::new();
    if let Some(v) = get(top, "ports") {
        for (i, p) in as_list(d, "ports", v)?.iter().enumerate() {
            let f = |s: &str| format!("ports[{i}].{s}");
            let pm = as_map(d, &format!("ports[{i}]"), p)?;
            let pname = match get(pm, "name") {
                Some(v) => as_str(d, &f("name"), v)?.to_string(),
                None => String::new(),
            };
            let proto = protocol(d, &f("protocol"), get(pm, "protocol"))?;
            let port = as_port(
                d,
                &f("port"),
                get(pm, "port").ok_or_else(|| d.err(&f("port"), "missing"))?,
            )?;
            ports.push(SlicePort {
                name: pname,
                protocol: proto,
                port,
            });
        }
    }
    Ok(EndpointSlice {
        name,
        service,
        endpoints,
        ports,
    })
}

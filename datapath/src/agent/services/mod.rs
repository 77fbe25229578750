//! Services in the agent's control plane: Kubernetes `Service` objects
//! (ClusterIP, NodePort) and `EndpointSlice`s, read from the services
//! directory (`--service-dir`) and from the cluster store
//! (`services/<ns>/<name>`, one write serves every node), turned into the
//! node's **desired load-balancer state** as plain data, and a **diff**
//! against the previous one. The kernel side (the LB maps and their
//! writers) consumes [`LbState`] / [`LbDiff`]; nothing here touches it.
//!
//! Laid out along the pipeline: [`model`] (the validated objects) ←
//! [`load`] (YAML → objects, per document, errors naming origin, object
//! and reason) → [`catalog`] (the objects in force across sources:
//! duplicates, conflicting frontends and node ports, node-port
//! allocation, the previous version kept for a bad object) →
//! [`resolve`] (frontends, backends from the cluster's endpoints and
//! slices, stable ids, [`diff`]) → [`view`] (`datapath service list`).
//! [`ServiceState`] holds it all for the agent, recomputed on every sync.

pub mod catalog;
mod error;
pub mod load;
pub mod model;
pub mod resolve;
pub mod view;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use flow_parser::ServiceInfo;

pub use catalog::Catalog;
pub use error::ServiceError;
pub use load::{DocResult, ParseOptions};
pub use model::{ObjectKey, ObjectName, ServiceType};
pub use resolve::{Backend, BackendState, Frontend, FrontendEntry, LbDiff, LbState, diff};
pub use view::{ServiceList, format_table};

use crate::agent::store::EndpointRecord;

/// The tracing target of this module's log lines.
const LOG_TARGET: &str = "datapath::services";

/// The origin of a store entry in errors and listings.
pub fn store_origin(key: &str) -> String {
    format!("cluster store services/{key}")
}

/// Parses the text of store entry `key` (`ns/name`): the Service of that
/// name and the EndpointSlices of that service, nothing else.
#[expect(
    clippy::result_large_err,
    reason = "one result per YAML document, as `load::parse_str`"
)]
pub fn parse_store_entry(key: &str, text: &str, opts: &ParseOptions) -> Vec<DocResult> {
    let origin = store_origin(key);
    let Some(want) = ObjectName::parse(key) else {
        return vec![Err((
            None,
            ServiceError::new(&origin, "key", "not of the form <namespace>/<name>"),
        ))];
    };
    load::parse_str(&origin, text, opts)
        .into_iter()
        .map(|r| match r {
            Ok(model::Object::Service(s)) if s.name != want => Err((
                Some(ObjectKey::Service(s.name.clone())),
                ServiceError::new(
                    &origin,
                    format!("Service {}", s.name),
                    format!("stored under the key of {want}"),
                ),
            )),
            Ok(model::Object::Slice(s))
                if s.name.namespace != want.namespace || s.service != want.name =>
            {
                Err((
                    Some(ObjectKey::Slice(s.name.clone())),
                    ServiceError::new(
                        &origin,
                        format!("EndpointSlice {}", s.name),
                        format!("belongs to service {}, not {want}", s.service),
                    ),
                ))
            }
            r => r,
        })
        .collect()
}

/// Splits the text of an apply (any number of Services and their
/// EndpointSlices) into store entries: `(ns/name, YAML of the Service and
/// its slices)`. Every document must be valid and every slice's service
/// in the text; else the errors, one per line.
pub fn split_for_store(
    text: &str,
    opts: &ParseOptions,
) -> Result<Vec<(ObjectName, String)>, String> {
    use serde::Deserialize as _;
    let origin = "request";
    let parsed = load::parse_str(origin, text, opts);
    let errors: Vec<String> = parsed
        .iter()
        .filter_map(|r| r.as_ref().err().map(|(_, e)| e.to_string()))
        .collect();
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    let values: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(text)
        .filter_map(|de| serde_yaml::Value::deserialize(de).ok())
        .filter(|v| !v.is_null())
        .collect();
    let mut groups: BTreeMap<ObjectName, Vec<String>> = BTreeMap::new();
    let mut slices = Vec::new();
    for (r, v) in parsed.into_iter().zip(values) {
        let yaml = serde_yaml::to_string(&v).map_err(|e| e.to_string())?;
        match r {
            Ok(model::Object::Service(s)) => {
                if groups.contains_key(&s.name) {
                    return Err(format!("Service {} is given twice", s.name));
                }
                groups.insert(s.name.clone(), vec![yaml]);
            }
            Ok(model::Object::Slice(s)) => slices.push((s, yaml)),
            Err(_) => unreachable!("errors returned above"),
        }
    }
    for (s, yaml) in slices {
        let svc = ObjectName::new(&s.name.namespace, &s.service);
        groups
            .get_mut(&svc)
            .ok_or_else(|| {
                format!(
                    "EndpointSlice {} is for Service {svc}, which is not in this text: \
                     apply a slice together with its service",
                    s.name
                )
            })?
            .push(yaml);
    }
    if groups.is_empty() {
        return Err("no Service in the text".into());
    }
    Ok(groups
        .into_iter()
        .map(|(k, docs)| (k, docs.join("---\n")))
        .collect())
}

/// The services of a node: sources, the catalog in force, the desired LB
/// state and its last change. Held by the agent, recomputed on every sync.
#[derive(Debug, Clone)]
pub struct ServiceState {
    opts: ParseOptions,
    dir: PathBuf,
    dir_snapshot: BTreeMap<PathBuf, Vec<u8>>,
    dir_docs: Vec<(String, DocResult)>,
    dir_read: bool,
    catalog: Catalog,
    lb: LbState,
    changes: LbDiff,
    revision: u64,
    node_ips: Vec<Ipv4Addr>,
}

impl ServiceState {
    /// Services from `dir` (read at the first [`Self::poll_dir`]) and the store.
    pub fn new(dir: PathBuf, opts: ParseOptions) -> Self {
        Self {
            opts,
            dir,
            dir_snapshot: BTreeMap::new(),
            dir_docs: Vec::new(),
            dir_read: false,
            catalog: Catalog::default(),
            lb: LbState::default(),
            changes: LbDiff::default(),
            revision: 0,
            node_ips: Vec::new(),
        }
    }

    /// Seeds the previous desired state, typically read back from the LB
    /// maps after a restart, so the next recomputation keeps their
    /// frontend and backend ids (and [`Self::changes`] is the difference to
    /// what the maps hold).
    pub fn seed(&mut self, from_maps: LbState) {
        self.lb = from_maps;
    }

    /// The services directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The validation options (service CIDR).
    pub fn options(&self) -> &ParseOptions {
        &self.opts
    }

    /// Re-reads the directory if its content changed; whether it did.
    pub fn poll_dir(&mut self) -> bool {
        let snap = load::dir_files(&self.dir);
        if self.dir_read && snap == self.dir_snapshot {
            return false;
        }
        self.dir_read = true;
        self.dir_docs = snap
            .iter()
            .flat_map(|(p, bytes)| {
                let origin = p.display().to_string();
                let docs = match std::str::from_utf8(bytes) {
                    Ok(t) => load::parse_str(&origin, t, &self.opts),
                    Err(e) => vec![Err((
                        None,
                        ServiceError::new(&origin, "file", format!("not UTF-8: {e}")),
                    ))],
                };
                docs.into_iter().map(move |d| (origin.clone(), d))
            })
            .collect();
        self.dir_snapshot = snap;
        true
    }

    /// Every document of every source: the directory (by file name), then
    /// the store (by key); the first definition of a name wins.
    fn docs(&self, store: &BTreeMap<String, String>) -> Vec<(String, DocResult)> {
        let mut v = self.dir_docs.clone();
        for (k, text) in store {
            let origin = store_origin(k);
            v.extend(
                parse_store_entry(k, text, &self.opts)
                    .into_iter()
                    .map(|d| (origin.clone(), d)),
            );
        }
        v
    }

    /// Recomputes the catalog and the desired state from the directory,
    /// the store's entries (`ns/name → YAML`) and the cluster's endpoints;
    /// `node_ips` are this node's addresses (NodePort frontends).
    pub fn recompute(
        &mut self,
        store: &BTreeMap<String, String>,
        endpoints: &[EndpointRecord],
        node_ips: &[Ipv4Addr],
    ) {
        let catalog = catalog::merge(&self.catalog, self.docs(store));
        for e in &catalog.errors {
            if !self.catalog.errors.contains(e) {
                tracing::error!(target: LOG_TARGET, origin = %e.origin, object = %e.object, reason = %e.reason, "service object rejected");
            }
        }
        for s in catalog.services.values() {
            if s.service.namespace_defaulted && !self.catalog.services.contains_key(&s.service.name)
            {
                tracing::warn!(target: LOG_TARGET, service = %s.service.name, origin = %s.origin, "Service without metadata.namespace, applied in `default`");
            }
        }
        let lb = resolve::desired(&catalog, endpoints, node_ips, &self.lb);
        self.changes = diff(&self.lb, &lb);
        if !self.changes.is_empty() || catalog != self.catalog {
            self.revision += 1;
        }
        if !self.changes.is_empty() {
            tracing::info!(
                target: LOG_TARGET,
                revision = self.revision,
                frontends = lb.frontends.len(),
                backends = lb.backends.len(),
                "services changed"
            );
        }
        self.catalog = catalog;
        self.lb = lb;
        self.node_ips = node_ips.to_vec();
    }

    /// This node's addresses the last recomputation put NodePort
    /// frontends on.
    pub fn node_ips(&self) -> &[Ipv4Addr] {
        &self.node_ips
    }

    /// Why a store entry `key` with `text` would not be in force, given
    /// every other source as it is now (`store` without `key`): the
    /// errors of that entry, one per line.
    pub fn check_entry(
        &self,
        key: &ObjectName,
        text: &str,
        store: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let k = key.to_string();
        let mut trial = store.clone();
        trial.insert(k.clone(), text.to_string());
        let origin = store_origin(&k);
        let c = catalog::merge(&self.catalog, self.docs(&trial));
        let errors: Vec<String> = c
            .errors
            .iter()
            .filter(|e| e.origin == origin)
            .map(ToString::to_string)
            .collect();
        // Defined in a file of the directory, which wins over the store.
        let shadowed = c.services.get(key).filter(|e| e.origin != origin).map(|e| {
            format!(
                "Service {key} is defined in {}, which takes precedence",
                e.origin
            )
        });
        match (errors.is_empty(), shadowed) {
            (true, None) => Ok(()),
            (_, s) => Err(errors.into_iter().chain(s).collect::<Vec<_>>().join("\n")),
        }
    }

    /// The objects in force.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The desired load-balancer state.
    pub fn lb(&self) -> &LbState {
        &self.lb
    }

    /// What the last recomputation changed in the desired state.
    pub fn changes(&self) -> &LbDiff {
        &self.changes
    }

    /// Rejections of the last recomputation.
    pub fn errors(&self) -> Vec<String> {
        self.catalog
            .errors
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Bumped whenever objects or the desired state change.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The admin view.
    pub fn list(&self) -> ServiceList {
        view::list(&self.lb, self.errors(), self.revision)
    }

    /// The services as the exporter's enrichment names them: a ClusterIP
    /// entry per service (its ports), and for a NodePort service one more
    /// with the node ports on `all_node_ips` (every node of the cluster:
    /// a flow to another node's NodePort is for the service too).
    pub fn enrichment(&self, all_node_ips: &[Ipv4Addr]) -> Vec<ServiceInfo> {
        let mut v = Vec::new();
        for e in self.catalog.services.values() {
            let s = &e.service;
            let mut ports: Vec<u16> = s.ports.iter().map(|p| p.port).collect();
            ports.sort_unstable();
            ports.dedup();
            v.push(ServiceInfo {
                name: s.name.name.clone(),
                namespace: s.name.namespace.clone(),
                ips: vec![IpAddr::V4(s.cluster_ip)],
                ports,
            });
            let mut nps: Vec<u16> = e.node_ports.iter().flatten().copied().collect();
            nps.sort_unstable();
            nps.dedup();
            if !nps.is_empty() && !all_node_ips.is_empty() {
                v.push(ServiceInfo {
                    name: s.name.name.clone(),
                    namespace: s.name.namespace.clone(),
                    ips: all_node_ips.iter().map(|i| IpAddr::V4(*i)).collect(),
                    ports: nps,
                });
            }
        }
        v
    }
}

#[cfg(test)]
mod tests;

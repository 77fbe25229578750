//! The in-memory mirror of every key under the cluster prefix, with typed
//! views (nodes, identities, references, ipcache, endpoints, policies)
//! kept up to date key by key. Pure: no I/O, no etcd; keys are relative to
//! the prefix (`nodes/n1`, not `/datapath/default/nodes/n1`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::agent::store::{EndpointRecord, IpcacheEntry, NodeRecord};
use crate::policy::cidr::Cidr;
use crate::policy::identity::LabelSet;
use crate::policy::{self, Policy};

/// The store's tracing target (as `shared::LOG_TARGET`; this pure module
/// depends on no sibling).
const LOG_TARGET: &str = "datapath::kvstore";

/// A key of the layout, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    Node(String),
    IdentityById(u32),
    IdentityByLabels(String),
    IdentityRef(u32, String),
    Ipcache(Cidr),
    Endpoint(String, u16),
    Policy(String),
    /// A cluster service, `namespace/name` (raw YAML; the agent parses it).
    Service(String),
}

impl Key {
    /// Parses a relative key; `None` for keys outside the layout.
    pub(crate) fn parse(key: &str) -> Option<Self> {
        let (kind, rest) = key.split_once('/')?;
        match kind {
            "nodes" if !rest.is_empty() => Some(Self::Node(rest.to_string())),
            "identities" => {
                let (sub, rest) = rest.split_once('/')?;
                match sub {
                    "id" => rest.parse().ok().map(Self::IdentityById),
                    "labels" => Some(Self::IdentityByLabels(rest.to_string())),
                    "refs" => {
                        let (id, node) = rest.split_once('/')?;
                        Some(Self::IdentityRef(id.parse().ok()?, node.to_string()))
                    }
                    _ => None,
                }
            }
            "ipcache" => {
                let (addr, len) = rest.split_once('/')?;
                Cidr::new(addr.parse::<Ipv4Addr>().ok()?, len.parse().ok()?).map(Self::Ipcache)
            }
            "endpoints" => {
                let (node, id) = rest.rsplit_once('/')?;
                Some(Self::Endpoint(node.to_string(), id.parse().ok()?))
            }
            "policies" if !rest.is_empty() => Some(Self::Policy(rest.to_string())),
            "services" => {
                let (ns, name) = rest.split_once('/')?;
                (!ns.is_empty() && !name.is_empty() && !name.contains('/'))
                    .then(|| Self::Service(rest.to_string()))
            }
            _ => None,
        }
    }

    /// The relative key.
    pub(crate) fn path(&self) -> String {
        match self {
            Self::Node(n) => format!("nodes/{n}"),
            Self::IdentityById(id) => format!("identities/id/{id}"),
            Self::IdentityByLabels(l) => format!("identities/labels/{l}"),
            Self::IdentityRef(id, node) => format!("identities/refs/{id}/{node}"),
            Self::Ipcache(c) => format!("ipcache/{}/{}", c.addr, c.len),
            Self::Endpoint(node, id) => format!("endpoints/{node}/{id}"),
            Self::Policy(n) => format!("policies/{n}"),
            Self::Service(k) => format!("services/{k}"),
        }
    }
}

/// The canonical string of a label set: every label followed by `;`, in
/// order (Cilium's sorted-list form; label values cannot hold `;`).
pub(crate) fn canonical(labels: &LabelSet) -> String {
    labels.iter().map(|l| format!("{l};")).collect()
}

/// One stored value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Value {
    /// The bytes, as text (every value of the layout is UTF-8).
    pub(crate) text: String,
    /// etcd's mod_revision (0 when applied locally before etcd answered).
    #[serde(default)]
    pub(crate) mod_rev: i64,
}

/// Every key of the prefix and the typed views derived from them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Mirror {
    /// The etcd revision the mirror reflects.
    pub(crate) revision: i64,
    pub(crate) raw: BTreeMap<String, Value>,
    pub(crate) nodes: BTreeMap<String, NodeRecord>,
    pub(crate) ids: BTreeMap<u32, LabelSet>,
    pub(crate) by_labels: BTreeMap<LabelSet, u32>,
    pub(crate) refs: BTreeMap<u32, BTreeSet<String>>,
    pub(crate) ipcache: BTreeMap<Cidr, IpcacheEntry>,
    pub(crate) endpoints: BTreeMap<(String, u16), EndpointRecord>,
    /// The last valid version of each cluster policy.
    pub(crate) policies: BTreeMap<String, Vec<Policy>>,
    /// Policies whose current value is invalid: name → reason.
    pub(crate) rejections: BTreeMap<String, String>,
}

/// What the cache file holds: the raw keys and the revision.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    pub(crate) revision: i64,
    pub(crate) kvs: BTreeMap<String, Value>,
}

impl Mirror {
    /// A mirror of `kvs` at `revision`. Cluster policies keep their last
    /// valid version from `previous` when their new text is invalid.
    pub(crate) fn rebuild(
        previous: Option<&Mirror>,
        revision: i64,
        kvs: impl IntoIterator<Item = (String, Value)>,
    ) -> Self {
        let mut m = Mirror {
            revision,
            policies: previous.map(|p| p.policies.clone()).unwrap_or_default(),
            ..Mirror::default()
        };
        for (k, v) in kvs {
            m.put(&k, v);
        }
        let present: BTreeSet<String> = m
            .raw
            .keys()
            .filter_map(|k| k.strip_prefix("policies/").map(str::to_string))
            .collect();
        m.policies.retain(|name, _| present.contains(name));
        m
    }

    /// The raw keys (for the cache file).
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            revision: self.revision,
            kvs: self.raw.clone(),
        }
    }

    /// Sets `key`; whether anything changed.
    pub(crate) fn put(&mut self, key: &str, value: Value) -> bool {
        if self.raw.get(key).is_some_and(|v| v.text == value.text) {
            if let Some(v) = self.raw.get_mut(key) {
                v.mod_rev = v.mod_rev.max(value.mod_rev);
            }
            return false;
        }
        let text = value.text.clone();
        self.raw.insert(key.to_string(), value);
        let Some(k) = Key::parse(key) else {
            return true;
        };
        match k {
            Key::Node(name) => match serde_json::from_str::<NodeRecord>(&text) {
                Ok(n) => {
                    self.nodes.insert(name, n);
                }
                Err(e) => {
                    tracing::warn!(target: LOG_TARGET, key, error = %e, "malformed node record ignored");
                    self.nodes.remove(&name);
                }
            },
            Key::IdentityById(id) => match serde_json::from_str::<Vec<String>>(&text) {
                Ok(l) => {
                    let labels: LabelSet = l.into_iter().collect();
                    if let Some(old) = self.ids.insert(id, labels.clone()) {
                        self.by_labels.remove(&old);
                    }
                    self.by_labels.insert(labels, id);
                }
                Err(e) => {
                    tracing::warn!(target: LOG_TARGET, key, error = %e, "malformed identity ignored");
                    self.drop_id(id);
                }
            },
            Key::IdentityByLabels(_) => {}
            Key::IdentityRef(id, node) => {
                self.refs.entry(id).or_default().insert(node);
            }
            Key::Ipcache(c) => match serde_json::from_str::<IpcacheEntry>(&text) {
                Ok(e) => {
                    self.ipcache.insert(c, e);
                }
                Err(e) => {
                    tracing::warn!(target: LOG_TARGET, key, error = %e, "malformed ipcache entry ignored");
                    self.ipcache.remove(&c);
                }
            },
            Key::Endpoint(node, id) => match serde_json::from_str::<EndpointRecord>(&text) {
                Ok(e) => {
                    self.endpoints.insert((node, id), e);
                }
                Err(e) => {
                    tracing::warn!(target: LOG_TARGET, key, error = %e, "malformed endpoint ignored");
                    self.endpoints.remove(&(node, id));
                }
            },
            Key::Policy(name) => match policy::parse_str(&name, &text) {
                Ok(p) => {
                    if self.rejections.remove(&name).is_some() {
                        tracing::info!(target: LOG_TARGET, policy = %name, "cluster policy valid again");
                    }
                    self.policies.insert(name, p);
                }
                Err(e) => {
                    tracing::error!(target: LOG_TARGET, policy = %name, error = %e, "cluster policy rejected; its previous version stays in force");
                    self.rejections.insert(name, e.to_string());
                }
            },
            // Kept raw: the agent validates services (it knows the
            // service CIDR) and keeps the last valid version itself.
            Key::Service(_) => {}
        }
        true
    }

    fn drop_id(&mut self, id: u32) {
        if let Some(l) = self.ids.remove(&id) {
            self.by_labels.remove(&l);
        }
    }

    /// Removes `key`; whether it was there.
    pub(crate) fn delete(&mut self, key: &str) -> bool {
        if self.raw.remove(key).is_none() {
            return false;
        }
        match Key::parse(key) {
            Some(Key::Node(n)) => {
                self.nodes.remove(&n);
            }
            Some(Key::IdentityById(id)) => self.drop_id(id),
            Some(Key::IdentityRef(id, node)) => {
                if let Some(r) = self.refs.get_mut(&id) {
                    r.remove(&node);
                    if r.is_empty() {
                        self.refs.remove(&id);
                    }
                }
            }
            Some(Key::Ipcache(c)) => {
                self.ipcache.remove(&c);
            }
            Some(Key::Endpoint(node, id)) => {
                self.endpoints.remove(&(node, id));
            }
            Some(Key::Policy(name)) => {
                self.policies.remove(&name);
                self.rejections.remove(&name);
            }
            Some(Key::IdentityByLabels(_) | Key::Service(_)) | None => {}
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Value {
        Value {
            text: text.into(),
            mod_rev: 1,
        }
    }

    #[test]
    fn keys_round_trip() {
        let keys = [
            Key::Node("n1".into()),
            Key::IdentityById(256),
            Key::IdentityByLabels("k8s:a=b;".into()),
            Key::IdentityRef(256, "n1".into()),
            Key::Ipcache("10.0.1.5/32".parse().unwrap()),
            Key::Endpoint("n1".into(), 7),
            Key::Policy("web".into()),
            Key::Service("default/web".into()),
        ];
        for k in keys {
            assert_eq!(Key::parse(&k.path()), Some(k.clone()), "{}", k.path());
        }
        assert_eq!(Key::parse("other/x"), None);
        assert_eq!(Key::parse("ipcache/1.2.3.4/99"), None);
        assert_eq!(Key::parse("services/web"), None);
        assert_eq!(Key::parse("services/a/b/c"), None);
    }

    #[test]
    fn typed_views_follow_puts_and_deletes() {
        let mut m = Mirror::default();
        assert!(m.put("identities/id/256", v(r#"["k8s:a=b"]"#)));
        assert!(
            !m.put("identities/id/256", v(r#"["k8s:a=b"]"#)),
            "same value"
        );
        assert!(m.put("identities/refs/256/n1", v("")));
        assert_eq!(m.by_labels[&LabelSet::from(["k8s:a=b".to_string()])], 256);
        assert!(m.delete("identities/refs/256/n1"));
        assert!(!m.refs.contains_key(&256));
        assert!(m.delete("identities/id/256"));
        assert!(m.by_labels.is_empty());
        assert!(!m.delete("identities/id/256"));
    }

    #[test]
    fn an_invalid_policy_keeps_the_previous_version() {
        let good = include_str!("../../../testdata/policies/starwars.yaml");
        let mut m = Mirror::default();
        m.put("policies/x", v(good));
        m.put("policies/x", v("spec: [unclosed"));
        assert!(m.rejections["x"].contains('x'), "{:?}", m.rejections);
        assert!(!m.policies["x"].is_empty());
        // A resync with the invalid text still keeps it; a deletion drops it.
        let r = Mirror::rebuild(Some(&m), 5, [("policies/x".into(), v("spec: ["))]);
        assert!(r.policies.contains_key("x") && r.rejections.contains_key("x"));
        let r = Mirror::rebuild(Some(&r), 6, []);
        assert!(r.policies.is_empty());
    }
}

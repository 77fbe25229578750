//! What `peer.Peer/Notify` announces: the cluster's nodes as the agent's
//! enrichment file lists them ([`ClusterNodes`], published through a
//! `tokio::sync::watch` by the reload in [`crate::sources::enrichment`]), or
//! this node alone while the list is empty; and, per stream, the changes
//! between what it last told its client and the current list.
//!
//! Names and addresses are Hubble's peer service's: the name is `node` in
//! the `default` cluster and `cluster/node` in any other (Hubble's
//! `Node.Fullname`, the form the relay shows in GetNodes and node status
//! events), the address is the node's gRPC `host:port` as listed, and when
//! this exporter serves TLS every node is announced with TLS (Hubble's rule:
//! one setting for the whole cluster) under its listed server name or
//! Cilium's `<node>.<cluster>.hubble-grpc.cilium.io`.
//!
//! A stream never blocks the reload: the `watch` keeps only the latest list,
//! and each stream diffs it against its own view whenever it gets to it, so
//! a slow client skips intermediate lists but always ends up right. It ends
//! when the client goes away (tonic drops it, and with it the receiver) or
//! when the enrichment file's publisher is gone.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use flow_parser::{NodeInfo, StaticEnrichment};
use futures::Stream;
use proto::peer::{ChangeNotification, ChangeNotificationType, Tls};

/// The cluster's nodes, as one enrichment file lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterNodes {
    /// The cluster name (`default` when the file sets none).
    pub cluster: String,
    /// The nodes; empty when the file lists none.
    pub nodes: Vec<NodeInfo>,
}

impl ClusterNodes {
    /// The cluster and nodes of a loaded enrichment file.
    pub fn of(s: &StaticEnrichment) -> ClusterNodes {
        ClusterNodes {
            cluster: s.cluster_name().to_owned(),
            nodes: s.nodes().to_vec(),
        }
    }
}

/// The node list as the enrichment reload publishes it.
pub type NodesWatch = tokio::sync::watch::Receiver<Arc<ClusterNodes>>;

/// Hubble's peer name: `node` in the `default` cluster, `cluster/node` in
/// any other.
pub fn peer_name(cluster: &str, node: &str) -> String {
    if cluster.is_empty() || cluster == flow_parser::defaults::DEFAULT_CLUSTER_NAME {
        node.to_owned()
    } else {
        format!("{cluster}/{node}")
    }
}

/// One peer as a stream has announced it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Announced {
    address: String,
    tls_server_name: Option<String>,
}

/// Peer name → how it was announced.
type View = BTreeMap<String, Announced>;

/// The node serving Notify, announced alone while the cluster list is
/// empty.
#[derive(Debug, Clone)]
pub struct SelfNode {
    /// Its name (`node` or `cluster/node`).
    pub name: String,
    /// Its advertised gRPC address.
    pub address: String,
    /// Its TLS server name when it serves TLS: then every node is announced
    /// with TLS.
    pub tls_server_name: Option<String>,
}

impl SelfNode {
    /// What a stream should have told its client for this list.
    fn view(&self, c: &ClusterNodes) -> View {
        if c.nodes.is_empty() {
            return View::from([(
                self.name.clone(),
                Announced {
                    address: self.address.clone(),
                    tls_server_name: self.tls_server_name.clone(),
                },
            )]);
        }
        let tls = self.tls_server_name.is_some();
        c.nodes
            .iter()
            .map(|n| {
                let name = peer_name(&c.cluster, &n.name);
                let tls_server_name = tls.then(|| {
                    n.tls_server_name.clone().unwrap_or_else(|| {
                        svc::tls::hubble_server_name(&format!("{}/{}", c.cluster, n.name))
                    })
                });
                (
                    name,
                    Announced {
                        address: n.address.clone(),
                        tls_server_name,
                    },
                )
            })
            .collect()
    }
}

fn notification(name: &str, a: &Announced, t: ChangeNotificationType) -> ChangeNotification {
    ChangeNotification {
        name: name.to_owned(),
        address: a.address.clone(),
        r#type: t as i32,
        tls: a
            .tls_server_name
            .clone()
            .map(|server_name| Tls { server_name }),
    }
}

/// From `old` to `new`: removed peers as DELETED (with what was announced),
/// then peers whose address or TLS changed as UPDATED, then new ones as
/// ADDED, each group in name order.
fn changes(old: &View, new: &View) -> Vec<ChangeNotification> {
    use ChangeNotificationType::{PeerAdded, PeerDeleted, PeerUpdated};
    let deleted = old
        .iter()
        .filter(|(n, _)| !new.contains_key(*n))
        .map(|(n, a)| notification(n, a, PeerDeleted));
    let updated = new
        .iter()
        .filter(|(n, a)| old.get(*n).is_some_and(|o| o != *a))
        .map(|(n, a)| notification(n, a, PeerUpdated));
    let added = new
        .iter()
        .filter(|(n, _)| !old.contains_key(*n))
        .map(|(n, a)| notification(n, a, PeerAdded));
    deleted.chain(updated).chain(added).collect()
}

/// A Notify stream: every peer of the current list as ADDED, then the
/// changes of each list the reload publishes. Without a list (`None`: no
/// enrichment file) it is the node itself and then nothing, as a
/// single-node exporter has always answered.
pub fn notify_stream(
    me: SelfNode,
    nodes: Option<NodesWatch>,
) -> impl Stream<Item = ChangeNotification> + Send + 'static {
    use futures::StreamExt as _;
    match nodes {
        None => {
            let first = changes(&View::new(), &me.view(&ClusterNodes::default()));
            futures::stream::iter(first)
                .chain(futures::stream::pending())
                .left_stream()
        }
        Some(mut rx) => {
            let current = Arc::clone(&rx.borrow_and_update());
            let sent = me.view(&current);
            let queue: VecDeque<_> = changes(&View::new(), &sent).into();
            let state = Follow {
                me,
                rx,
                sent,
                queue,
            };
            futures::stream::unfold(state, Follow::next).right_stream()
        }
    }
}

/// One stream's view of the list.
struct Follow {
    me: SelfNode,
    rx: NodesWatch,
    /// What the client has been told (or is about to be, from `queue`).
    sent: View,
    queue: VecDeque<ChangeNotification>,
}

impl Follow {
    async fn next(mut self) -> Option<(ChangeNotification, Follow)> {
        loop {
            if let Some(n) = self.queue.pop_front() {
                return Some((n, self));
            }
            // The publisher is gone: the exporter is stopping.
            self.rx.changed().await.ok()?;
            let current = Arc::clone(&self.rx.borrow_and_update());
            let view = self.me.view(&current);
            self.queue.extend(changes(&self.sent, &view));
            self.sent = view;
        }
    }
}

#[cfg(test)]
mod tests;

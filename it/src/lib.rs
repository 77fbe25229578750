//! The local cluster of the privileged end-to-end tests (`it/tests/`) and
//! of the whole-process benches (`it/examples/datapath_bench.rs`,
//! `it/examples/cluster_bench.rs`): nodes and pods
//! as network namespaces on one kernel, the real `datapath` agent,
//! `datapath-cni` plugin and `flow-exporter` processes, real TCP/UDP/ICMP
//! traffic, and guards that tear everything down, also when a test panics.
//!
//! - [`sys`]: unique names, the skip rule (`require_privileges!`), commands
//!   in a namespace, namespace / bpffs / directory guards, leftover checks.
//! - [`bins`]: builds and finds the other packages' binaries.
//! - [`cluster`]: [`Cluster`], [`Node`] (netns + agent + exporter), [`Pod`]
//!   (CNI ADD/DEL/CHECK as a runtime), policies, external namespaces.
//! - [`traffic`]: echo servers (and servers that say who they are), TCP/UDP
//!   exchanges, ping, long-lived streams.
//! - [`services`]: Services through a node's agent, the kernel's LB maps.
//! - [`flows`]: the exporter's flows over gRPC.
//! - [`bench`]: the benches' loads (iperf3, 64-byte request/response), a
//!   counting follower, spreads and percentiles, unwinding on SIGINT.

pub mod bench;
pub mod bins;
pub mod cluster;
pub mod flows;
pub mod relay;
pub mod services;
pub mod sys;
pub mod traffic;

pub use cluster::{ClusterLink, CniOutput, External, Node, NodeOptions, Pod, Proc, wait_for};
pub use relay::Relay;

use std::cell::Cell;
use std::net::Ipv4Addr;

/// A cluster: its nodes and, for a multi-node cluster, the underlay (a
/// namespace with the bridge `br0` every node's `eth0` hangs on,
/// `10.99.0.0/24`) and the cluster store (a real etcd on loopback: the
/// agents are host processes that only enter the node namespaces per
/// operation). Dropping it tears everything down, nodes first.
#[derive(Debug)]
pub struct Cluster {
    /// The nodes.
    pub nodes: Vec<Node>,
    /// The underlay namespace (multi-node only).
    pub underlay: Option<sys::NetNs>,
    /// The cluster store (multi-node only).
    pub etcd: Option<test_support::etcd::Etcd>,
    /// Lease TTL the agents register with.
    pub lease_ttl: String,
    next_ip: Cell<u8>,
}

impl Cluster {
    /// Starts one standalone node per options entry.
    pub fn new(nodes: Vec<NodeOptions>) -> Self {
        Self {
            nodes: nodes.into_iter().map(Node::start).collect(),
            underlay: None,
            etcd: None,
            lease_ttl: String::new(),
            next_ip: Cell::new(1),
        }
    }

    /// A multi-node cluster: etcd, the underlay, and one node per pod CIDR
    /// (`10.99.0.1`, `.2`, ... on the underlay), each agent on the cluster
    /// store with the VXLAN overlay.
    pub fn multi(pod_cidrs: &[&str]) -> Self {
        Self::multi_with(pod_cidrs, "15s", |_| {})
    }

    /// [`Cluster::multi`] with the agents' lease TTL and a hook to adjust
    /// each node's options.
    pub fn multi_with(
        pod_cidrs: &[&str],
        lease_ttl: &str,
        tune: impl Fn(&mut NodeOptions),
    ) -> Self {
        let etcd = test_support::etcd::Etcd::start();
        let underlay = sys::NetNs::bridge("itu");
        let mut c = Self {
            nodes: Vec::new(),
            underlay: Some(underlay),
            etcd: Some(etcd),
            lease_ttl: lease_ttl.to_string(),
            next_ip: Cell::new(1),
        };
        for cidr in pod_cidrs {
            let mut o = c.node_options(cidr);
            tune(&mut o);
            c.nodes.push(Node::start(o));
        }
        c
    }

    /// Options of a further node of this multi-node cluster (the next
    /// underlay address); start it with [`Node::start`]: it joins the
    /// cluster through the store, and the test owns it (so it can crash it).
    pub fn node_options(&self, pod_cidr: &str) -> NodeOptions {
        let n = self.next_ip.get();
        self.next_ip.set(n + 1);
        let mut o = NodeOptions::new(pod_cidr);
        o.cluster = Some(ClusterLink {
            underlay_ns: self
                .underlay
                .as_ref()
                .expect("a multi-node cluster")
                .name
                .clone(),
            ip: Ipv4Addr::new(10, 99, 0, n),
            kvstore: self.etcd.as_ref().expect("a multi-node cluster").endpoint(),
            lease_ttl: self.lease_ttl.clone(),
        });
        o.node_ip = None;
        o
    }

    /// A relay discovering the nodes through the first node's `Peer.Notify`.
    pub fn relay(&self) -> Relay {
        Relay::start(&self.nodes[0].hubble_addr.to_string())
    }

    /// A cluster of one node with pod CIDR `pod_cidr` and an exporter.
    pub fn single(pod_cidr: &str) -> Self {
        Self::new(vec![NodeOptions::new(pod_cidr)])
    }

    /// Tears the cluster down and checks that nothing of it remains: no
    /// namespace of a node, pod or external network, no bpffs mount, no
    /// scratch directory.
    pub fn shutdown(self) {
        let mut names = Vec::new();
        let mut dirs = Vec::new();
        if let Some(u) = &self.underlay {
            names.push(u.name.clone());
        }
        let etcd = self.etcd.as_ref().map(|e| (e.pid(), e.data_dir()));
        for n in &self.nodes {
            names.push(n.name.clone());
            names.extend(
                n.made
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .cloned(),
            );
            dirs.push(n.dir.clone());
        }
        drop(self);
        let left: Vec<String> = sys::netns_names()
            .into_iter()
            .filter(|n| names.contains(n))
            .collect();
        assert!(left.is_empty(), "namespaces left: {left:?}");
        if let Some((pid, data)) = etcd {
            if let Some(pid) = pid {
                let alive = std::path::Path::new(&format!("/proc/{pid}")).exists()
                    && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .unwrap_or_default()
                        .contains(") Z ");
                assert!(!alive, "etcd ({pid}) still runs");
            }
            assert!(!data.exists(), "etcd data dir {} left", data.display());
        }
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        for d in dirs {
            assert!(!d.exists(), "{} left", d.display());
            let d = d.to_string_lossy().into_owned();
            assert!(
                !mounts.lines().any(|l| l.contains(&d)),
                "bpffs of {d} still mounted"
            );
        }
    }

    /// A namespace outside the cluster on the underlay bridge (`eth0` with
    /// `10.99.0.<host>/24`, no default route): an external client that
    /// reaches every node's address (a NodePort) directly. A guard: drop it
    /// before the cluster.
    pub fn underlay_client(&self, host: u8) -> sys::NetNs {
        let ns = sys::NetNs::new("itx");
        let underlay = self.underlay.as_ref().expect("a multi-node cluster");
        ns.plug_into_bridge(&underlay.name, &format!("10.99.0.{host}/24"));
        ns
    }

    /// The first node.
    pub fn node(&self) -> &Node {
        &self.nodes[0]
    }
}

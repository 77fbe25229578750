//! The local cluster of the privileged end-to-end tests (`it/tests/`) and
//! of the datapath bench (`it/examples/datapath_bench.rs`): nodes and pods
//! as network namespaces on one kernel, the real `datapath` agent,
//! `datapath-cni` plugin and `flow-exporter` processes, real TCP/UDP/ICMP
//! traffic, and guards that tear everything down, also when a test panics.
//!
//! - [`sys`]: unique names, the skip rule (`require_privileges!`), commands
//!   in a namespace, namespace / bpffs / directory guards, leftover checks.
//! - [`bins`]: builds and finds the other packages' binaries.
//! - [`cluster`]: [`Cluster`], [`Node`] (netns + agent + exporter), [`Pod`]
//!   (CNI ADD/DEL/CHECK as a runtime), policies, external namespaces.
//! - [`traffic`]: echo servers, TCP/UDP exchanges, ping.
//! - [`flows`]: the exporter's flows over gRPC.

pub mod bins;
pub mod cluster;
pub mod flows;
pub mod sys;
pub mod traffic;

pub use cluster::{CniOutput, External, Node, NodeOptions, Pod, Proc, wait_for};

/// A cluster: its nodes (single-node datapath today; the multi-node
/// underlay comes with the VXLAN issue). Dropping it tears everything down.
#[derive(Debug)]
pub struct Cluster {
    /// The nodes.
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// Starts one node per options entry.
    pub fn new(nodes: Vec<NodeOptions>) -> Self {
        Self {
            nodes: nodes.into_iter().map(Node::start).collect(),
        }
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
        for n in &self.nodes {
            names.push(n.name.clone());
            names.extend(n.made.borrow().iter().cloned());
            dirs.push(n.dir.clone());
        }
        drop(self);
        let left: Vec<String> = sys::netns_names()
            .into_iter()
            .filter(|n| names.contains(n))
            .collect();
        assert!(left.is_empty(), "namespaces left: {left:?}");
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

    /// The first node.
    pub fn node(&self) -> &Node {
        &self.nodes[0]
    }
}

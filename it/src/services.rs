//! Services on the local cluster: applying Service (and EndpointSlice)
//! objects through a node's agent (the cluster store: every node gets
//! them), and reading what the kernel's load-balancer maps of a node hold
//! (`lb4_*` under the node's pin directory, what `datapath bpf lb list`
//! prints), which is what the datapath uses, unlike the agent's desired
//! state (`GET /v1/services`).

use std::net::{Ipv4Addr, SocketAddrV4};

use datapath::api::ServiceApply;
use datapath::lb::{LbMaps, LbProto};
use serde_json::Value;

use crate::Node;

/// Stores the objects of `yaml` (Services, with their EndpointSlices)
/// through `node`'s agent (`POST /v1/services`, as `datapath service
/// apply`); the agent's answer, or its error text.
pub fn apply(node: &Node, yaml: &str) -> Result<Value, String> {
    node.client()
        .post(
            "/v1/services",
            &ServiceApply {
                yaml: yaml.to_string(),
            },
        )
        .map_err(|e| e.to_string())
}

/// Removes Service `ns/name` through `node`'s agent.
pub fn delete(node: &Node, ns_name: &str) -> Result<Value, String> {
    node.client()
        .delete(&format!("/v1/services/{ns_name}"))
        .map_err(|e| e.to_string())
}

/// The backends one frontend has in a node's kernel maps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelFrontend {
    /// Active backends (slot order).
    pub active: Vec<SocketAddrV4>,
    /// Terminating backends (no new connections).
    pub terminating: Vec<SocketAddrV4>,
}

/// The kernel's entry for frontend `vip:port/proto` on `node`, `None` when
/// the maps have no such frontend.
pub fn kernel_frontend(
    node: &Node,
    vip: Ipv4Addr,
    port: u16,
    proto: LbProto,
) -> Option<KernelFrontend> {
    let maps = LbMaps::open(&node.pins).expect("open the node's LB maps");
    kernel_frontend_in(&maps, vip, port, proto)
}

/// [`kernel_frontend`] on maps already opened (for tight polling loops).
pub fn kernel_frontend_in(
    maps: &LbMaps,
    vip: Ipv4Addr,
    port: u16,
    proto: LbProto,
) -> Option<KernelFrontend> {
    let entries = maps.list().expect("list the LB services");
    let e = entries
        .into_iter()
        .find(|e| e.frontend.vip == vip && e.frontend.port == port && e.frontend.proto == proto)?;
    let backends = maps.backends().expect("list the LB backends");
    let addr = |id: &u32| {
        backends
            .iter()
            .find(|(b, _)| b == id)
            .map(|(_, b)| SocketAddrV4::new(b.ip, b.port))
            .unwrap_or_else(|| panic!("frontend {vip}:{port} names missing backend {id}"))
    };
    Some(KernelFrontend {
        active: e.active.iter().map(addr).collect(),
        terminating: e.terminating.iter().map(addr).collect(),
    })
}

/// The active backend addresses of `vip:port/proto` in `node`'s kernel
/// maps, sorted (empty when the frontend is absent).
pub fn kernel_active(node: &Node, vip: Ipv4Addr, port: u16, proto: LbProto) -> Vec<SocketAddrV4> {
    let mut v = kernel_frontend(node, vip, port, proto)
        .map(|f| f.active)
        .unwrap_or_default();
    v.sort();
    v
}

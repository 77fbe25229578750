//! The node agent and its building blocks:
//!
//! - [`ipam`]: the node's pod CIDR;
//! - [`store`]: the cluster-state store interface (ARCHITECTURE.md, process model) and its
//!   single-node JSON-file implementation; [`kvstore`]: its distributed
//!   implementation on etcd;
//! - [`endpoints`]: the endpoint manager and the convergence of store +
//!   policies into the maps, enrichment file for the exporter (re-exported
//!   here: [`Agent`], [`AgentConfig`], ...);
//! - [`services`]: Services and EndpointSlices → the node's desired
//!   load-balancer state and its diff (plain data for the LB map writers);
//! - [`lb_sync`]: writes the desired state into the kernel's LB maps and attaches the
//!   NodePort program;
//! - [`metrics`]: the agent's Prometheus metrics (Cilium's names);
//! - [`server`]: its API on a unix socket (axum); [`api`]: the wire types
//!   and the blocking client the CNI plugin (`datapath-cni`) and the admin
//!   CLI use.
//!
//! The agent programs the kernel through [`crate::kernel`] and allocates
//! identities and compiles policies with [`crate::policy`]; neither depends
//! on the agent.

pub mod api;
pub mod endpoints;
pub mod ipam;
pub mod kvstore;
pub mod lb_sync;
pub mod metrics;
pub mod server;
pub mod services;
pub mod store;

pub use endpoints::*;

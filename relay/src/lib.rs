//! The cluster-wide relay: discovers the nodes' flow exporters (a static
//! list, or `peer.Peer/Notify` from a peer service), keeps one connection
//! per node ([`pool`]), and serves Hubble's Observer API over the whole
//! cluster ([`server`]): GetFlows fans out and merges the nodes' streams by
//! time with written-down guarantees ([`flows`], [`merge`]), ServerStatus
//! and GetNodes sum and list the nodes, GetNamespaces merges theirs.
//! The peers' flows travel through the relay as the bytes the peers sent
//! ([`wire`]): the merge reads only their time and kind.
//!
//! The relay depends on `proto` and `flow-filter` (to reject a bad filter
//! once, not once per node) and on no datapath or exporter code: it speaks
//! to nodes only through the Observer and Peer gRPC APIs, so it works with
//! Cilium's agents as well as with `flow-exporter`.

pub mod conn_state;
pub mod defaults;
pub mod discovery;
pub mod flows;
pub mod merge;
pub mod metrics;
pub mod peers;
pub mod pool;
pub mod queue;
pub mod server;
pub mod status;
pub mod wire;

use std::sync::Arc;

use tokio::task::JoinHandle;

pub use flows::FlowsConfig;
pub use pool::{Pool, PoolOptions};

/// Everything a relay needs to start.
#[derive(Debug, Clone, Default)]
pub struct RelayConfig {
    /// GetFlows merging and buffering.
    pub flows: FlowsConfig,
    /// Connections to peers.
    pub pool: PoolOptions,
    /// Peers given on the command line.
    pub static_peers: Vec<peers::PeerSpec>,
    /// The peer service to follow, if any.
    pub peer_service: Option<discovery::DiscoveryOptions>,
}

/// A running relay: its pool and discovery. Stops discovery and closes
/// every peer connection when dropped.
#[derive(Debug)]
pub struct Relay {
    pool: Pool,
    flows: FlowsConfig,
    discovery: Option<JoinHandle<()>>,
}

impl Relay {
    /// Starts connecting to the static peers and following the peer
    /// service; must be called inside a tokio runtime.
    pub fn start(cfg: RelayConfig, metrics: Arc<metrics::Metrics>) -> Relay {
        let pool = Pool::new(cfg.pool, metrics);
        for p in cfg.static_peers {
            pool.upsert(p);
        }
        let discovery = cfg
            .peer_service
            .map(|o| tokio::spawn(discovery::run(o, pool.clone())));
        Relay {
            pool,
            flows: cfg.flows,
            discovery,
        }
    }

    /// The peer pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The gRPC services, ready to be served (in plain text on a
    /// `TcpIncoming`, or with TLS on [`svc::tls::incoming`]).
    pub async fn router(&self) -> anyhow::Result<tonic::transport::server::Router> {
        server::router(self.pool.clone(), self.flows.clone()).await
    }

    /// [`Relay::router`] with these server limits instead of the defaults
    /// ([`server::default_limits`]).
    pub async fn router_with(
        &self,
        limits: svc::grpc_layers::Limits,
    ) -> anyhow::Result<tonic::transport::server::Router> {
        server::router_with(self.pool.clone(), self.flows.clone(), limits).await
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(d) = self.discovery.take() {
            d.abort();
        }
        self.pool.shutdown();
    }
}

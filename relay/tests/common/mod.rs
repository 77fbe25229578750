//! Test harness: real exporters (`flow_exporter::observer::Observer` behind
//! its gRPC router), each in its own runtime on its own thread so that it
//! can be killed like a process (its runtime is dropped, which closes
//! every socket), an in-process relay, and clients.

#![allow(
    dead_code,
    reason = "each test file uses a different part of the harness"
)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flow_exporter::observer::Observer;
use proto::flow::{Endpoint, Flow};
use proto::observer::get_flows_response::ResponseTypes;
use proto::observer::observer_client::ObserverClient;
use proto::observer::{GetFlowsRequest, GetFlowsResponse};
use proto::wkt::Timestamp;
use relay::metrics::Metrics;
use relay::peers::PeerSpec;
use relay::{FlowsConfig, PoolOptions, Relay, RelayConfig};
use tonic::transport::Channel;

pub const T0: i64 = 1_700_000_000;

/// A flow of `node` at T0 + `ms` milliseconds.
pub fn flow(node: &str, ms: i64, ns: &str) -> Flow {
    let time = Some(Timestamp::from_unix_nanos(
        (T0 as i128) * 1_000_000_000 + (ms as i128) * 1_000_000,
    ));
    Flow {
        time,
        uuid: format!("{node}-{ms}"),
        node_name: node.to_owned(),
        source: Some(Endpoint {
            namespace: ns.to_owned(),
            pod_name: format!("pod-{ms}"),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A free loopback port.
pub use test_support::free_port;

/// An exporter serving `observer` on a fixed port in its own runtime.
pub struct Exporter {
    pub observer: Arc<Observer>,
    pub addr: SocketAddr,
    rt: Option<tokio::runtime::Runtime>,
}

impl Exporter {
    /// Starts an exporter named `node` on a free port.
    pub fn start(node: &str) -> Exporter {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        Self::start_on(node, addr)
    }

    /// Starts an exporter named `node` on `addr`.
    pub fn start_on(node: &str, addr: SocketAddr) -> Exporter {
        Self::start_following(node, addr, None)
    }

    /// Starts an exporter named `node` on `addr` whose Peer.Notify
    /// announces the nodes of `enrichment`, looked at every 50 ms.
    pub fn start_following(
        node: &str,
        addr: SocketAddr,
        enrichment: Option<Arc<flow_exporter::sources::enrichment::EnrichmentFile>>,
    ) -> Exporter {
        let observer = Arc::new(Observer::new(node, 4095).unwrap());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let o = observer.clone();
        // The port may linger briefly after a previous instance.
        let mut tries = 0;
        let listener = loop {
            match std::net::TcpListener::bind(addr) {
                Ok(l) => break l,
                Err(e) if tries < 100 => {
                    tries += 1;
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("bind {addr}: {e}"),
            }
        };
        listener.set_nonblocking(true).unwrap();
        let opts = flow_exporter::server::ServerOptions {
            cluster_nodes: enrichment.as_ref().map(|f| f.nodes()),
            ..Default::default()
        };
        if let Some(f) = enrichment {
            rt.spawn(f.run(Duration::from_millis(50), std::future::pending()));
        }
        rt.spawn(async move {
            let router =
                flow_exporter::server::router_with_options(o, addr.to_string(), None, &opts)
                    .await
                    .unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            let _ = router.serve_with_incoming(incoming).await;
        });
        Exporter {
            observer,
            addr,
            rt: Some(rt),
        }
    }

    /// Kills it: every connection is dropped at once, like a SIGKILL.
    pub fn kill(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }

    pub fn spec(&self) -> PeerSpec {
        PeerSpec {
            name: self.observer.node_name().to_owned(),
            address: self.addr.to_string(),
            tls_server_name: None,
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An in-process relay on a free port.
pub struct RelayHarness {
    pub relay: Relay,
    pub addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Fast settings for tests: short backoff and probes.
pub fn test_config(peers: Vec<PeerSpec>) -> RelayConfig {
    RelayConfig {
        flows: FlowsConfig {
            relay_name: "test-relay".into(),
            error_window: Duration::from_millis(200),
            ..FlowsConfig::default()
        },
        pool: PoolOptions {
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_millis(400),
            probe_interval: Duration::from_millis(200),
            ..PoolOptions::default()
        },
        static_peers: peers,
        peer_service: None,
    }
}

impl RelayHarness {
    pub async fn start(cfg: RelayConfig) -> RelayHarness {
        let metrics = Arc::new(Metrics::new());
        let relay = Relay::start(cfg, metrics.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = relay.router().await.unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            let _ = router
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = rx.await;
                })
                .await;
        });
        RelayHarness {
            relay,
            addr,
            metrics,
            _stop: tx,
        }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn client(&self) -> ObserverClient<Channel> {
        ObserverClient::new(self.channel().await)
    }

    /// Waits until `n` peers are connected.
    pub async fn wait_connected(&self, n: usize) {
        eventually(Duration::from_secs(20), || {
            let c = self
                .relay
                .pool()
                .peers()
                .iter()
                .filter(|p| p.is_available())
                .count();
            async move { c == n }
        })
        .await;
    }
}

/// Polls `f` until it holds, panicking after `within`.
pub async fn eventually<F, Fut>(within: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        if f().await {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "condition not reached within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a client sees, simplified.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Flow(String, Timestamp),
    Status(i32, Vec<String>, String),
    Lost(u64),
}

pub fn seen(r: GetFlowsResponse) -> Seen {
    match r.response_types {
        Some(ResponseTypes::Flow(f)) => Seen::Flow(f.uuid, f.time.unwrap_or_default()),
        Some(ResponseTypes::NodeStatus(s)) => {
            let mut names = s.node_names;
            names.sort();
            Seen::Status(s.state_change, names, s.message)
        }
        Some(ResponseTypes::LostEvents(l)) => Seen::Lost(l.num_events_lost),
        None => panic!("empty response"),
    }
}

/// Runs a non-follow request to the end.
pub async fn collect(client: &mut ObserverClient<Channel>, req: GetFlowsRequest) -> Vec<Seen> {
    let mut s = tokio::time::timeout(Duration::from_secs(20), client.get_flows(req))
        .await
        .expect("GetFlows answered")
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(r) = tokio::time::timeout(Duration::from_secs(20), s.message())
        .await
        .expect("stream progressed")
        .unwrap()
    {
        out.push(seen(r));
    }
    out
}

pub fn flows_of(v: &[Seen]) -> Vec<(String, Timestamp)> {
    v.iter()
        .filter_map(|s| match s {
            Seen::Flow(u, t) => Some((u.clone(), *t)),
            _ => None,
        })
        .collect()
}

pub fn uuids(v: &[Seen]) -> Vec<String> {
    flows_of(v).into_iter().map(|(u, _)| u).collect()
}

/// `flow-exporter --replay` lines for `node-<i>`: `n` flows at 10:00:00 + (3k + i) × 7 ms.
pub fn replay_file(dir: &Path, i: usize, n: usize) -> PathBuf {
    let node = format!("node-{i}");
    let mut text = String::new();
    for k in 0..n {
        let ms = ((3 * k + i) * 7) as i128;
        let time = Some(proto::wkt::Timestamp::from_unix_nanos(
            1_714_557_600_000_000_000 + ms * 1_000_000,
        ));
        let f = proto::flow::Flow {
            time,
            uuid: format!("{node}-{k}"),
            node_name: node.clone(),
            verdict: proto::flow::Verdict::Forwarded as i32,
            source: Some(proto::flow::Endpoint {
                namespace: ["default", "kube-system", "star-wars"][i].into(),
                pod_name: format!("pod-{k}"),
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = GetFlowsResponse {
            node_name: node.clone(),
            time,
            response_types: Some(ResponseTypes::Flow(f)),
        };
        text.push_str(&proto::json::to_hubble_json(&r).unwrap());
        text.push('\n');
    }
    let p = dir.join(format!("{node}.json"));
    std::fs::write(&p, text).unwrap();
    p
}

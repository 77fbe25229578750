//! Follow-mode ordering and drain timing on a controlled clock: scripted
//! peers (Observer servers whose GetFlows streams the test feeds), the
//! relay and the client all run in one paused-clock runtime on loopback,
//! so "a flow reached the relay at t" is exact and the window's rules can
//! be checked to the millisecond. (Loopback data written by a task of the
//! runtime is readable before the runtime would idle, so the paused clock
//! only moves when the test sleeps.)

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use proto::observer::observer_server::{Observer, ObserverServer};
use proto::observer::{
    GetAgentEventsRequest, GetAgentEventsResponse, GetDebugEventsRequest, GetDebugEventsResponse,
    GetFlowsRequest, GetFlowsResponse, GetNamespacesRequest, GetNamespacesResponse,
    GetNodesRequest, GetNodesResponse, ServerStatusRequest, ServerStatusResponse,
    get_flows_response::ResponseTypes,
};
use proto::wkt::Timestamp;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::{Request, Response, Status};

type Tx = mpsc::UnboundedSender<Result<GetFlowsResponse, Status>>;

/// A peer whose GetFlows streams are fed by the test.
#[derive(Clone, Default)]
struct Scripted {
    streams: Arc<Mutex<Vec<Tx>>>,
}

type Stream<T> = std::pin::Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl Observer for Scripted {
    type GetFlowsStream = Stream<GetFlowsResponse>;
    type GetAgentEventsStream = Stream<GetAgentEventsResponse>;
    type GetDebugEventsStream = Stream<GetDebugEventsResponse>;

    async fn get_flows(
        &self,
        _r: Request<GetFlowsRequest>,
    ) -> Result<Response<Self::GetFlowsStream>, Status> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.streams.lock().unwrap().push(tx);
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::UnboundedReceiverStream::new(rx),
        )))
    }
    async fn get_agent_events(
        &self,
        _r: Request<GetAgentEventsRequest>,
    ) -> Result<Response<Self::GetAgentEventsStream>, Status> {
        Err(Status::unimplemented(""))
    }
    async fn get_debug_events(
        &self,
        _r: Request<GetDebugEventsRequest>,
    ) -> Result<Response<Self::GetDebugEventsStream>, Status> {
        Err(Status::unimplemented(""))
    }
    async fn get_nodes(
        &self,
        _r: Request<GetNodesRequest>,
    ) -> Result<Response<GetNodesResponse>, Status> {
        Err(Status::unimplemented(""))
    }
    async fn get_namespaces(
        &self,
        _r: Request<GetNamespacesRequest>,
    ) -> Result<Response<GetNamespacesResponse>, Status> {
        Ok(Response::new(GetNamespacesResponse::default()))
    }
    async fn server_status(
        &self,
        _r: Request<ServerStatusRequest>,
    ) -> Result<Response<ServerStatusResponse>, Status> {
        Ok(Response::new(ServerStatusResponse::default()))
    }
}

impl Scripted {
    /// Sends a flow at T0 + `ms` on the latest stream.
    fn send(&self, node: &str, ms: i64) {
        let f = flow(node, ms, "default");
        let r = GetFlowsResponse {
            node_name: node.to_owned(),
            time: f.time,
            response_types: Some(ResponseTypes::Flow(f)),
        };
        let s = self.streams.lock().unwrap();
        s.last().expect("a GetFlows stream").send(Ok(r)).unwrap();
    }

    /// Fails the latest stream with `status`.
    fn fail(&self, status: Status) {
        let s = self.streams.lock().unwrap();
        s.last()
            .expect("a GetFlows stream")
            .send(Err(status))
            .unwrap();
    }

    fn streams(&self) -> usize {
        self.streams.lock().unwrap().len()
    }
}

struct Cluster {
    peers: Vec<Scripted>,
    relay: RelayHarness,
    _stops: Vec<tokio::sync::oneshot::Sender<()>>,
}

/// `n` scripted peers behind a relay with the default 1 s / 100 window.
async fn cluster(n: usize) -> Cluster {
    let mut peers = Vec::new();
    let mut specs = Vec::new();
    let mut stops = Vec::new();
    for i in 0..n {
        let p = Scripted::default();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        specs.push(relay::peers::PeerSpec {
            name: format!("node-{i}"),
            address: l.local_addr().unwrap().to_string(),
            tls_server_name: None,
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let svc = ObserverServer::new(p.clone());
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(l).with_nodelay(Some(true)),
                    async {
                        let _ = rx.await;
                    },
                )
                .await
        });
        peers.push(p);
        stops.push(tx);
    }
    let mut cfg = test_config(specs);
    cfg.flows.sort_window = Duration::from_secs(1);
    let relay = RelayHarness::start(cfg).await;
    relay.wait_connected(n).await;
    Cluster {
        peers,
        relay,
        _stops: stops,
    }
}

/// Receives flows with the (virtual) instant each arrived.
struct Client {
    stream: tonic::Streaming<GetFlowsResponse>,
}

impl Client {
    async fn follow(c: &Cluster) -> Client {
        let mut client = c.relay.client().await;
        let stream = client
            .get_flows(GetFlowsRequest {
                follow: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let mut me = Client { stream };
        // NODE_CONNECTED first; then every peer has its stream.
        let first = me.stream.message().await.unwrap().unwrap();
        assert!(matches!(
            first.response_types,
            Some(ResponseTypes::NodeStatus(_))
        ));
        for p in &c.peers {
            while p.streams() == 0 {
                tokio::task::yield_now().await;
            }
        }
        me
    }

    /// The next flow's uuid and when it came.
    async fn next_flow(&mut self) -> (String, Instant) {
        loop {
            let r = tokio::time::timeout(Duration::from_secs(60), self.stream.message())
                .await
                .expect("a flow within a minute of virtual time")
                .unwrap()
                .unwrap();
            if let Some(ResponseTypes::Flow(f)) = r.response_types {
                return (f.uuid, Instant::now());
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_flow_from_one_node_is_held_exactly_the_window_while_others_are_idle() {
    let c = cluster(3).await;
    let mut client = Client::follow(&c).await;
    let sent = Instant::now();
    c.peers[0].send("node-0", 10);
    let (u, at) = client.next_flow().await;
    assert_eq!(u, "node-0-10");
    let held = at - sent;
    assert!(
        held >= Duration::from_secs(1) && held < Duration::from_millis(1010),
        "held {held:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn flows_are_released_as_soon_as_every_node_has_spoken() {
    let c = cluster(3).await;
    let mut client = Client::follow(&c).await;
    let sent = Instant::now();
    c.peers[0].send("node-0", 30);
    c.peers[1].send("node-1", 20);
    c.peers[2].send("node-2", 10);
    let (u, at) = client.next_flow().await;
    assert_eq!(u, "node-2-10");
    assert!(at - sent < Duration::from_millis(10), "{:?}", at - sent);
    // The rest waits for the window (nodes 1 and 2 are idle again).
    let (u, at) = client.next_flow().await;
    assert_eq!(u, "node-1-20");
    assert!(at - sent >= Duration::from_secs(1));
    assert_eq!(client.next_flow().await.0, "node-0-30");
}

#[tokio::test(start_paused = true)]
async fn an_older_flow_arriving_within_the_window_goes_first() {
    let c = cluster(3).await;
    let mut client = Client::follow(&c).await;
    c.peers[0].send("node-0", 2000);
    tokio::time::sleep(Duration::from_millis(900)).await;
    c.peers[1].send("node-1", 1000);
    assert_eq!(client.next_flow().await.0, "node-1-1000");
    assert_eq!(client.next_flow().await.0, "node-0-2000");
}

#[tokio::test(start_paused = true)]
async fn a_node_lagging_beyond_the_window_is_delivered_late_as_documented() {
    let c = cluster(2).await;
    let mut client = Client::follow(&c).await;
    c.peers[0].send("node-0", 2000);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    c.peers[1].send("node-1", 1000);
    assert_eq!(client.next_flow().await.0, "node-0-2000");
    assert_eq!(client.next_flow().await.0, "node-1-1000");
}

#[tokio::test(start_paused = true)]
async fn busy_nodes_are_merged_exactly_whatever_their_clock_lag() {
    let c = cluster(3).await;
    let mut client = Client::follow(&c).await;
    // node-1's flows are a minute behind node-0's, node-2's two minutes;
    // all keep sending every 10 ms, for less than the 100-flow buffer
    // (holding a lag of L seconds exactly takes L × rate flows).
    let mut want = Vec::new();
    for k in 0..45 {
        c.peers[0].send("node-0", 120_000 + 10 * k);
        c.peers[1].send("node-1", 60_000 + 10 * k);
        c.peers[2].send("node-2", 10 * k);
        want.push((120_000 + 10 * k, "node-0"));
        want.push((60_000 + 10 * k, "node-1"));
        want.push((10 * k, "node-2"));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    want.sort();
    let mut got = Vec::new();
    for _ in 0..want.len() {
        got.push(client.next_flow().await.0);
    }
    let want: Vec<String> = want.iter().map(|(t, n)| format!("{n}-{t}")).collect();
    assert_eq!(got, want);
}

#[tokio::test(start_paused = true)]
async fn a_full_sort_buffer_releases_early() {
    let c = cluster(2).await;
    let mut client = Client::follow(&c).await;
    let sent = Instant::now();
    // 101 flows from one node while the other is idle: the 100-flow buffer
    // overflows and the oldest leaves at once.
    for k in 0..101 {
        c.peers[0].send("node-0", k);
    }
    let (u, at) = client.next_flow().await;
    assert_eq!(u, "node-0-0");
    assert!(at - sent < Duration::from_millis(10), "{:?}", at - sent);
    let _ = Timestamp::default();
}

#[tokio::test(start_paused = true)]
async fn identical_node_errors_become_one_event_after_the_window() {
    let c = cluster(3).await;
    let mut client = Client::follow(&c).await;
    let start = Instant::now();
    c.peers[0].fail(Status::unavailable("agent shutting down"));
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.peers[2].fail(Status::unavailable("agent shutting down"));
    // The node-1 stream keeps working meanwhile.
    c.peers[1].send("node-1", 5);
    let (u, _) = client.next_flow().await;
    assert_eq!(u, "node-1-5");
    let ev = loop {
        let r = client.stream.message().await.unwrap().unwrap();
        if let Some(ResponseTypes::NodeStatus(s)) = r.response_types {
            break s;
        }
    };
    let waited = start.elapsed();
    assert_eq!(ev.state_change, proto::relay::NodeState::NodeError as i32);
    assert_eq!(ev.node_names, ["node-0", "node-2"]);
    assert_eq!(ev.message, "agent shutting down");
    // test_config's aggregation window is 200 ms.
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_millis(300),
        "{waited:?}"
    );
}

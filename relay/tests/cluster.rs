//! In-process cluster tests: three real exporters (each in its own runtime,
//! killable like a process) behind an in-process relay, on loopback. They
//! pin the cluster view (ServerStatus, GetNodes, GetNamespaces), exact
//! non-follow ordering and cluster-wide `number`, node failure and recovery
//! (status events, reconnection, status figures), discovery through a peer
//! service, request validation, health, reflection-free basics and metrics.

mod common;

use std::time::Duration;

use common::*;
use proto::flow::FlowFilter;
use proto::observer::{
    GetAgentEventsRequest, GetFlowsRequest, GetNamespacesRequest, GetNodesRequest,
    ServerStatusRequest,
};
use proto::relay::NodeState;

const CONNECTED: i32 = NodeState::NodeConnected as i32;
const UNAVAILABLE: i32 = NodeState::NodeUnavailable as i32;
const ERROR: i32 = NodeState::NodeError as i32;
const GONE: i32 = NodeState::NodeGone as i32;

/// Three exporters whose flows interleave in time: node i holds the flows
/// at ms ≡ i (mod 3), 0..300.
fn three_nodes() -> Vec<Exporter> {
    (0..3)
        .map(|i| {
            let e = Exporter::start(&format!("node-{i}"));
            let ns = ["default", "kube-system", "star-wars"][i];
            e.observer
                .push_flows((0..100).map(|k| flow(&format!("node-{i}"), (3 * k + i) as i64, ns)));
            e
        })
        .collect()
}

async fn relay_for(nodes: &[Exporter]) -> RelayHarness {
    let r = RelayHarness::start(test_config(nodes.iter().map(Exporter::spec).collect())).await;
    r.wait_connected(nodes.len()).await;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_follow_is_in_exact_time_order_with_every_flow_once() {
    let nodes = three_nodes();
    let r = relay_for(&nodes).await;
    let mut c = r.client().await;
    let got = collect(
        &mut c,
        GetFlowsRequest {
            number: 1000,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        got[0],
        Seen::Status(
            CONNECTED,
            vec!["node-0".into(), "node-1".into(), "node-2".into()],
            String::new()
        )
    );
    let flows = flows_of(&got);
    assert_eq!(flows.len(), 300);
    let want: Vec<String> = (0..300).map(|ms| format!("node-{}-{ms}", ms % 3)).collect();
    assert_eq!(uuids(&got), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn number_means_the_most_recent_flows_of_the_whole_cluster() {
    let nodes = three_nodes();
    // node-2 is the busiest lately: its 20 newest flows are the cluster's.
    nodes[2]
        .observer
        .push_flows((0..20).map(|k| flow("node-2", 1000 + k, "star-wars")));
    let r = relay_for(&nodes).await;
    let mut c = r.client().await;
    let last = |n| GetFlowsRequest {
        number: n,
        ..Default::default()
    };
    let got = uuids(&collect(&mut c, last(5)).await);
    assert_eq!(
        got,
        (1015..1020)
            .map(|k| format!("node-2-{k}"))
            .collect::<Vec<_>>(),
        "5 most recent of the cluster, not 5 per node"
    );
    let got = uuids(&collect(&mut c, last(22)).await);
    assert_eq!(got.len(), 22);
    assert_eq!(got[0], "node-1-298");
    assert_eq!(got[1], "node-2-299");
    // first: the oldest of the cluster.
    let got = uuids(
        &collect(
            &mut c,
            GetFlowsRequest {
                number: 4,
                first: true,
                ..Default::default()
            },
        )
        .await,
    );
    assert_eq!(got, ["node-0-0", "node-1-1", "node-2-2", "node-0-3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_apply_on_every_node_and_bad_requests_are_rejected_once() {
    let nodes = three_nodes();
    let r = relay_for(&nodes).await;
    let mut c = r.client().await;
    let got = collect(
        &mut c,
        GetFlowsRequest {
            number: 1000,
            whitelist: vec![FlowFilter {
                source_pod: vec!["kube-system/".into(), "star-wars/pod-29".into()],
                ..Default::default()
            }],
            ..Default::default()
        },
    )
    .await;
    let u = uuids(&got);
    // Pod names match by prefix, as in Hubble: pod-29, pod-290, pod-293, …
    assert_eq!(u.len(), 105, "{u:?}");
    assert!(
        u.iter()
            .all(|x| x.starts_with("node-1-") || x.starts_with("node-2-29"))
    );
    let mut sorted = flows_of(&got);
    sorted.sort_by_key(|(_, t)| *t);
    assert_eq!(flows_of(&got), sorted);

    let err = c
        .get_flows(GetFlowsRequest {
            first: true,
            follow: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let err = c
        .get_flows(GetFlowsRequest {
            whitelist: vec![FlowFilter {
                source_ip: vec!["not-an-ip/99".into()],
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    let err = c
        .get_agent_events(GetAgentEventsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_nodes_and_namespaces_describe_the_cluster() {
    let nodes = three_nodes();
    let r = relay_for(&nodes).await;
    let mut c = r.client().await;
    let resp = c.server_status(ServerStatusRequest {}).await.unwrap();
    assert!(resp.metadata().get("hubble-relay-version").is_some());
    let s = resp.into_inner();
    assert_eq!(s.num_connected_nodes.map(|v| v.value), Some(3));
    assert_eq!(s.num_unavailable_nodes.map(|v| v.value), Some(0));
    assert_eq!(s.num_flows, 300);
    assert_eq!(s.seen_flows, 300);
    assert_eq!(s.max_flows, 3 * 4095);
    assert!(s.unavailable_nodes.is_empty());

    let n = c.get_nodes(GetNodesRequest {}).await.unwrap().into_inner();
    let names: Vec<&str> = n.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["node-0", "node-1", "node-2"]);
    for node in &n.nodes {
        assert_eq!(node.state, CONNECTED);
        assert_eq!(node.num_flows, 100);
        assert!(!node.version.is_empty());
        assert!(node.address.starts_with("127.0.0.1:"));
    }

    let ns = c
        .get_namespaces(GetNamespacesRequest {})
        .await
        .unwrap()
        .into_inner();
    let got: Vec<&str> = ns.namespaces.iter().map(|n| n.namespace.as_str()).collect();
    assert_eq!(got, ["default", "kube-system", "star-wars"]);

    let mut h = tonic_health::pb::health_client::HealthClient::new(r.channel().await);
    let st = h
        .check(tonic_health::pb::HealthCheckRequest {
            service: "hubble.server.Observer".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        st.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let m = r.metrics.encode();
    assert!(
        m.contains(r#"hubble_relay_pool_peer_connection_status{status="READY"} 3"#),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_is_reported_and_skipped_then_reconnected() {
    let mut nodes = three_nodes();
    let r = relay_for(&nodes).await;
    let mut c = r.client().await;
    let addr = nodes[1].addr;
    nodes[1].kill();
    r.wait_connected(2).await;

    let s = c
        .server_status(ServerStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.num_connected_nodes.map(|v| v.value), Some(2));
    assert_eq!(s.num_unavailable_nodes.map(|v| v.value), Some(1));
    assert_eq!(s.unavailable_nodes, ["node-1"]);
    assert_eq!(s.num_flows, 200);

    let got = collect(
        &mut c,
        GetFlowsRequest {
            number: 1000,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        got[0],
        Seen::Status(
            CONNECTED,
            vec!["node-0".into(), "node-2".into()],
            String::new()
        ),
    );
    // The unavailable node, with the reason the pool last saw.
    assert!(
        matches!(&got[1], Seen::Status(UNAVAILABLE, n, why)
            if n == &["node-1"] && why.contains("Connection refused")),
        "{:?}",
        got[1]
    );
    assert_eq!(flows_of(&got).len(), 200);
    let n = c.get_nodes(GetNodesRequest {}).await.unwrap().into_inner();
    assert_eq!(n.nodes[1].state, UNAVAILABLE);
    let m = r.metrics.encode();
    assert!(
        m.contains(r#"hubble_relay_peer_errors_total{peer="node-1",kind="dial"}"#),
        "{m}"
    );

    // Restart on the same address: the pool reconnects by itself.
    nodes[1] = Exporter::start_on("node-1", addr);
    nodes[1]
        .observer
        .push_flows((0..7).map(|k| flow("node-1", 500 + k, "kube-system")));
    r.wait_connected(3).await;
    let s = c
        .server_status(ServerStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.num_connected_nodes.map(|v| v.value), Some(3));
    assert_eq!(s.num_flows, 207);
}

/// Reads a follow stream in the background, into a shared log.
struct Follower {
    log: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Follower {
    async fn start(
        c: &mut proto::observer::observer_client::ObserverClient<tonic::transport::Channel>,
        req: GetFlowsRequest,
    ) -> Follower {
        let mut s = c.get_flows(req).await.unwrap().into_inner();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let l = log.clone();
        let task = tokio::spawn(async move {
            while let Ok(Some(r)) = s.message().await {
                l.lock().unwrap().push(seen(r));
            }
        });
        Follower { log, task }
    }

    /// Makes sure every node's follow reader is positioned: an exporter
    /// starts a follow at its newest flow when the request reaches it,
    /// which is after the relay announced NODE_CONNECTED, so a flow pushed
    /// in between is (correctly) not part of the follow.
    async fn sync(&self, nodes: &[&Exporter]) {
        for n in nodes {
            let node = n.observer.node_name().to_owned();
            let mut k = 0;
            loop {
                let mut f = flow(&node, 900_000 + k, "default");
                f.uuid = format!("sync-{node}-{k}");
                n.observer.push_flows([f]);
                // Longer than the sort window, which holds a lone flow.
                let deadline = std::time::Instant::now() + Duration::from_secs(3);
                let seen_it = loop {
                    let prefix = format!("sync-{node}-");
                    if uuids(&self.snapshot())
                        .iter()
                        .any(|u| u.starts_with(&prefix))
                    {
                        break true;
                    }
                    if std::time::Instant::now() > deadline {
                        break false;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                };
                if seen_it {
                    break;
                }
                k += 1;
                assert!(k < 40, "{node}'s follow never started");
            }
        }
        self.log.lock().unwrap().clear();
    }

    fn snapshot(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    async fn wait_for(&self, what: &str, f: impl Fn(&[Seen]) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if f(&self.snapshot()) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never saw {what}; got {:#?}",
                self.snapshot()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_survives_a_node_failure_and_picks_the_node_up_again() {
    let mut nodes = three_nodes();
    let r = relay_for(&nodes).await;
    let mut c = r.client().await;
    let f = Follower::start(
        &mut c,
        GetFlowsRequest {
            follow: true,
            ..Default::default()
        },
    )
    .await;
    f.wait_for("NODE_CONNECTED", |s| {
        s.iter()
            .any(|x| matches!(x, Seen::Status(CONNECTED, n, _) if n.len() == 3))
    })
    .await;
    f.sync(&nodes.iter().collect::<Vec<_>>()).await;
    for (i, n) in nodes.iter().enumerate() {
        n.observer
            .push_flows([flow(&format!("node-{i}"), 2000 + i as i64, "default")]);
    }
    f.wait_for("three live flows", |s| flows_of(s).len() == 3)
        .await;
    assert_eq!(
        uuids(&f.snapshot()),
        ["node-0-2000", "node-1-2001", "node-2-2002"]
    );

    let addr = nodes[2].addr;
    nodes[2].kill();
    f.wait_for("NODE_ERROR for node-2", |s| {
        s.iter()
            .any(|x| matches!(x, Seen::Status(ERROR, n, _) if n == &["node-2"]))
    })
    .await;
    // The others keep flowing.
    nodes[0]
        .observer
        .push_flows([flow("node-0", 3000, "default")]);
    f.wait_for("node-0 after the failure", |s| {
        uuids(s).contains(&"node-0-3000".to_owned())
    })
    .await;

    // Restarted: attached again without any client action.
    nodes[2] = Exporter::start_on("node-2", addr);
    f.wait_for("node-2 connected again", |s| {
        s.iter()
            .any(|x| matches!(x, Seen::Status(CONNECTED, n, _) if n == &["node-2"]))
    })
    .await;
    f.sync(&[&nodes[2]]).await;
    nodes[2]
        .observer
        .push_flows([flow("node-2", 4000, "default")]);
    f.wait_for("node-2's new flow", |s| {
        uuids(s).contains(&"node-2-4000".to_owned())
    })
    .await;
    let u = uuids(&f.snapshot());
    let mut dedup = u.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(u.len(), dedup.len(), "each flow once: {u:?}");
}

/// A peer service whose notifications the test sends.
struct PeerService {
    tx: tokio::sync::broadcast::Sender<proto::peer::ChangeNotification>,
}

#[tonic::async_trait]
impl proto::peer::peer_server::Peer for PeerService {
    type NotifyStream = std::pin::Pin<
        Box<
            dyn futures::Stream<Item = Result<proto::peer::ChangeNotification, tonic::Status>>
                + Send,
        >,
    >;

    async fn notify(
        &self,
        _r: tonic::Request<proto::peer::NotifyRequest>,
    ) -> Result<tonic::Response<Self::NotifyStream>, tonic::Status> {
        use futures::StreamExt as _;
        let rx = tokio_stream::wrappers::BroadcastStream::new(self.tx.subscribe());
        Ok(tonic::Response::new(Box::pin(
            rx.filter_map(|r| async move { r.ok().map(Ok) }),
        )))
    }
}

fn notification(
    e: &Exporter,
    t: proto::peer::ChangeNotificationType,
) -> proto::peer::ChangeNotification {
    proto::peer::ChangeNotification {
        name: e.observer.node_name().to_owned(),
        address: e.addr.to_string(),
        r#type: t as i32,
        tls: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_announced_and_withdrawn_by_the_peer_service_join_and_leave() {
    use proto::peer::ChangeNotificationType::{PeerAdded, PeerDeleted};
    let nodes = three_nodes();
    let (tx, _) = tokio::sync::broadcast::channel(16);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ps_addr = listener.local_addr().unwrap();
    let svc = PeerService { tx: tx.clone() };
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(proto::peer::peer_server::PeerServer::new(svc))
            .serve_with_incoming(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            )
            .await
    });
    let mut cfg = test_config(Vec::new());
    cfg.peer_service = Some(relay::discovery::DiscoveryOptions {
        retry_timeout: Duration::from_millis(100),
        ..relay::discovery::DiscoveryOptions::new(ps_addr.to_string())
    });
    let r = RelayHarness::start(cfg).await;
    // Announce two nodes once the relay follows the service.
    eventually(Duration::from_secs(20), || {
        let n = tx.receiver_count();
        async move { n > 0 }
    })
    .await;
    tx.send(notification(&nodes[0], PeerAdded)).unwrap();
    tx.send(notification(&nodes[1], PeerAdded)).unwrap();
    r.wait_connected(2).await;

    let mut c = r.client().await;
    let f = Follower::start(
        &mut c,
        GetFlowsRequest {
            follow: true,
            ..Default::default()
        },
    )
    .await;
    f.wait_for("NODE_CONNECTED for two", |s| {
        s.iter()
            .any(|x| matches!(x, Seen::Status(CONNECTED, n, _) if n.len() == 2))
    })
    .await;
    f.sync(&[&nodes[0], &nodes[1]]).await;
    // A third node joins the running request.
    tx.send(notification(&nodes[2], PeerAdded)).unwrap();
    f.wait_for("node-2 attached", |s| {
        s.iter()
            .any(|x| matches!(x, Seen::Status(CONNECTED, n, _) if n == &["node-2"]))
    })
    .await;
    f.sync(&[&nodes[2]]).await;
    nodes[2]
        .observer
        .push_flows([flow("node-2", 5000, "default")]);
    f.wait_for("node-2's flow", |s| {
        uuids(s).contains(&"node-2-5000".to_owned())
    })
    .await;
    // And one leaves.
    tx.send(notification(&nodes[0], PeerDeleted)).unwrap();
    f.wait_for("node-0 gone", |s| {
        s.iter()
            .any(|x| matches!(x, Seen::Status(GONE, n, _) if n == &["node-0"]))
    })
    .await;
    let n = c.get_nodes(GetNodesRequest {}).await.unwrap().into_inner();
    let names: Vec<&str> = n.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["node-1", "node-2"]);
    nodes[0]
        .observer
        .push_flows([flow("node-0", 6000, "default")]);
    nodes[1]
        .observer
        .push_flows([flow("node-1", 6001, "default")]);
    f.wait_for("node-1's flow", |s| {
        uuids(s).contains(&"node-1-6001".to_owned())
    })
    .await;
    assert!(!uuids(&f.snapshot()).contains(&"node-0-6000".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_follow_client_costs_bounded_memory_and_learns_what_it_lost() {
    let nodes = three_nodes();
    let mut cfg = test_config(nodes.iter().map(Exporter::spec).collect());
    cfg.flows.client_queue_len = 16;
    let r = RelayHarness::start(cfg).await;
    r.wait_connected(3).await;
    let mut c = r.client().await;
    let mut s = c
        .get_flows(GetFlowsRequest {
            follow: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // Wait until every node's follow is positioned (see Follower::sync),
    // then stop reading while the nodes produce far more than the queue and
    // the transport buffers hold.
    let mut markers = 0u64;
    for n in &nodes {
        let node = n.observer.node_name().to_owned();
        'node: for k in 0..40 {
            let mut f = flow(&node, 900_000 + k, "default");
            f.uuid = format!("sync-{node}-{k}");
            n.observer.push_flows([f]);
            markers += 1;
            while let Ok(r) = tokio::time::timeout(Duration::from_secs(3), s.message()).await {
                if let Seen::Flow(u, _) = seen(r.unwrap().unwrap())
                    && u.starts_with(&format!("sync-{node}-"))
                {
                    break 'node;
                }
            }
        }
    }
    let per_node = 3000;
    for (i, n) in nodes.iter().enumerate() {
        let node = format!("node-{i}");
        n.observer
            .push_flows((0..per_node).map(|k| flow(&node, 10_000 + 3 * k + i as i64, "default")));
    }
    let m = r.metrics.clone();
    eventually(Duration::from_secs(30), || {
        let t = m.encode();
        async move { !t.contains(r#"hubble_relay_flows_dropped_total{reason="slow_client"} 0"#) }
    })
    .await;
    // Now read everything: the flows received plus those reported lost
    // account for every flow produced (a late sync marker may be among
    // either).
    let (mut flows, mut lost) = (0u64, 0u64);
    while flows + lost < 3 * per_node as u64 {
        let r = tokio::time::timeout(Duration::from_secs(20), s.message())
            .await
            .expect("stream progressed")
            .unwrap()
            .unwrap();
        match seen(r) {
            Seen::Flow(u, _) if !u.starts_with("sync-") => flows += 1,
            Seen::Lost(n) => lost += n,
            _ => {}
        }
    }
    let total = 3 * per_node as u64;
    assert!(
        flows + lost >= total && flows + lost <= total + markers,
        "{flows} + {lost} vs {total}"
    );
    assert!(lost > 0);
    let t = r.metrics.encode();
    assert!(
        t.contains(&format!(
            r#"hubble_relay_flows_dropped_total{{reason="slow_client"}} {lost}"#
        )),
        "{t}"
    );
}

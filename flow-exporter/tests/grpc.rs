//! In-process gRPC tests: a real tonic server on a loopback port over an
//! [`Observer`] filled with known flows, and the generated client. They pin
//! GetFlows positioning (number, first, follow, since, until), lost events
//! for a lagging follower, field masks, ServerStatus figures, health, the
//! version header, GetNodes, GetNamespaces and Peer.Notify.

use std::sync::Arc;
use std::time::Duration;

use flow_exporter::observer::Observer;
use proto::flow::{Endpoint, Flow, FlowFilter, LostEventSource, Verdict};
use proto::observer::observer_client::ObserverClient;
use proto::observer::{
    GetAgentEventsRequest, GetFlowsRequest, GetFlowsResponse, GetNamespacesRequest,
    GetNodesRequest, ServerStatusRequest, get_flows_response::ResponseTypes,
};
use proto::peer::NotifyRequest;
use proto::peer::peer_client::PeerClient;
use proto::wkt::{FieldMask, Timestamp};
use tonic::transport::Channel;

const T0: i64 = 1_700_000_000;

fn flow(i: u64) -> Flow {
    Flow {
        time: Some(Timestamp {
            seconds: T0 + i as i64,
            nanos: 0,
        }),
        uuid: format!("uuid-{i}"),
        verdict: if i.is_multiple_of(3) {
            Verdict::Dropped as i32
        } else {
            Verdict::Forwarded as i32
        },
        node_name: "test-node".into(),
        source: Some(Endpoint {
            namespace: if i.is_multiple_of(2) {
                "default".into()
            } else {
                "kube-system".into()
            },
            pod_name: format!("pod-{i}"),
            identity: 1000 + i as u32,
            ..Default::default()
        }),
        destination: Some(Endpoint {
            namespace: "default".into(),
            pod_name: "server".into(),
            ..Default::default()
        }),
        summary: format!("flow {i}"),
        ..Default::default()
    }
}

struct Harness {
    observer: Arc<Observer>,
    channel: Channel,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

async fn start(capacity: u64, flows: u64) -> Harness {
    let observer = Arc::new(Observer::new("test-node", capacity).unwrap());
    observer.push_flows((0..flows).map(flow));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = flow_exporter::server::router(observer.clone(), addr.to_string())
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        router
            .serve_with_incoming_shutdown(incoming, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Harness {
        observer,
        channel,
        _shutdown: tx,
    }
}

impl Harness {
    fn client(&self) -> ObserverClient<Channel> {
        ObserverClient::new(self.channel.clone())
    }

    /// A follow stream with no filter (it starts at the newest flow).
    async fn follow(&self) -> tonic::Streaming<proto::observer::GetFlowsResponse> {
        self.client()
            .get_flows(GetFlowsRequest {
                follow: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// Runs a non-follow request and returns the uuids of the flows.
    async fn uuids(&self, req: GetFlowsRequest) -> Vec<String> {
        let mut s = self.client().get_flows(req).await.unwrap().into_inner();
        let mut out = Vec::new();
        while let Some(r) = s.message().await.unwrap() {
            if let Some(ResponseTypes::Flow(f)) = r.response_types {
                out.push(f.uuid);
            }
        }
        out
    }
}

fn ids(r: std::ops::Range<u64>) -> Vec<String> {
    r.map(|i| format!("uuid-{i}")).collect()
}

fn ts(i: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: T0 + i,
        nanos: 0,
    })
}

#[tokio::test]
async fn number_returns_the_last_n_in_order() {
    let h = start(4095, 100).await;
    assert_eq!(
        h.uuids(GetFlowsRequest {
            number: 5,
            ..Default::default()
        })
        .await,
        ids(95..100)
    );
}

#[tokio::test]
async fn number_counts_matching_flows_only() {
    let h = start(4095, 100).await;
    let req = GetFlowsRequest {
        number: 3,
        whitelist: vec![FlowFilter {
            verdict: vec![Verdict::Dropped as i32],
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(h.uuids(req).await, vec!["uuid-93", "uuid-96", "uuid-99"]);
}

#[tokio::test]
async fn first_returns_the_oldest_n() {
    let h = start(4095, 100).await;
    assert_eq!(
        h.uuids(GetFlowsRequest {
            number: 4,
            first: true,
            ..Default::default()
        })
        .await,
        ids(0..4)
    );
}

#[tokio::test]
async fn first_respects_the_ring_window() {
    // 10 flows into a ring of 7: the oldest readable is flow 3.
    let h = start(7, 10).await;
    assert_eq!(
        h.uuids(GetFlowsRequest {
            number: 2,
            first: true,
            ..Default::default()
        })
        .await,
        ids(3..5)
    );
}

#[tokio::test]
async fn since_and_until_select_a_window() {
    let h = start(4095, 100).await;
    let req = GetFlowsRequest {
        since: ts(90),
        ..Default::default()
    };
    assert_eq!(h.uuids(req).await, ids(90..100));
    let req = GetFlowsRequest {
        since: ts(10),
        until: ts(14),
        ..Default::default()
    };
    assert_eq!(h.uuids(req).await, ids(10..15));
    let req = GetFlowsRequest {
        number: 2,
        since: ts(10),
        until: ts(14),
        ..Default::default()
    };
    assert_eq!(
        h.uuids(req).await,
        ids(13..15),
        "number is the last N of the window"
    );
    let req = GetFlowsRequest {
        number: 2,
        first: true,
        since: ts(10),
        ..Default::default()
    };
    assert_eq!(h.uuids(req).await, ids(10..12));
    let req = GetFlowsRequest {
        until: ts(2),
        ..Default::default()
    };
    assert_eq!(h.uuids(req).await, ids(0..3));
}

#[tokio::test]
async fn first_with_follow_is_invalid() {
    let h = start(4095, 1).await;
    let err = h
        .client()
        .get_flows(GetFlowsRequest {
            first: true,
            follow: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn invalid_filter_names_field_and_value() {
    let h = start(4095, 1).await;
    let req = GetFlowsRequest {
        whitelist: vec![FlowFilter {
            source_ip: vec!["10.0.0.300".into()],
            ..Default::default()
        }],
        ..Default::default()
    };
    let err = h.client().get_flows(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("source_ip"), "{}", err.message());
    assert!(err.message().contains("10.0.0.300"), "{}", err.message());
}

#[tokio::test]
async fn follow_without_number_starts_at_the_newest() {
    let h = start(4095, 50).await;
    let mut s = h.follow().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    h.observer.push_flows((50..53).map(flow));
    let mut got = Vec::new();
    while got.len() < 3 {
        let r = tokio::time::timeout(Duration::from_secs(5), s.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Some(ResponseTypes::Flow(f)) = r.response_types {
            got.push(f.uuid);
        }
    }
    assert_eq!(got, ids(50..53));
}

#[tokio::test]
async fn follow_with_number_rewinds_then_follows() {
    let h = start(4095, 50).await;
    let req = GetFlowsRequest {
        number: 2,
        follow: true,
        ..Default::default()
    };
    let mut s = h.client().get_flows(req).await.unwrap().into_inner();
    let mut got = Vec::new();
    for _ in 0..2 {
        let r = s.message().await.unwrap().unwrap();
        if let Some(ResponseTypes::Flow(f)) = r.response_types {
            got.push(f.uuid);
        }
    }
    h.observer.push_flows([flow(50)]);
    let r = tokio::time::timeout(Duration::from_secs(5), s.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    if let Some(ResponseTypes::Flow(f)) = r.response_types {
        got.push(f.uuid);
    }
    assert_eq!(got, ids(48..51));
}

#[tokio::test]
async fn lagging_follower_gets_one_aggregated_exact_lost_event() {
    let h = start(7, 0).await;
    let mut s = h.follow().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The client reads nothing while 20,000 flows go through a ring of 7.
    const N: u64 = 20_000;
    for chunk in (0..N).collect::<Vec<_>>().chunks(100) {
        h.observer.push_flows(chunk.iter().copied().map(flow));
    }
    let (mut flows, mut lost, mut lost_msgs) = (0u64, 0u64, 0u64);
    let mut last_uuid = String::new();
    while flows + lost < N {
        let r = tokio::time::timeout(Duration::from_secs(10), s.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match r.response_types {
            Some(ResponseTypes::Flow(f)) => {
                flows += 1;
                last_uuid = f.uuid;
            }
            Some(ResponseTypes::LostEvents(l)) => {
                assert_eq!(l.source, LostEventSource::HubbleRingBuffer as i32);
                lost += l.num_events_lost;
                lost_msgs += 1;
            }
            _ => {}
        }
    }
    assert_eq!(
        flows + lost,
        N,
        "every flow is either delivered or counted as lost"
    );
    assert!(lost > 0);
    assert!(
        lost_msgs <= 2,
        "losses are aggregated, not one message per flow: {lost_msgs}"
    );
    assert_eq!(last_uuid, format!("uuid-{}", N - 1));
}

#[tokio::test]
async fn field_mask_limits_returned_fields() {
    let h = start(4095, 10).await;
    let req = GetFlowsRequest {
        number: 1,
        field_mask: Some(FieldMask {
            paths: vec!["time".into(), "source.pod_name".into()],
        }),
        ..Default::default()
    };
    let mut s = h.client().get_flows(req).await.unwrap().into_inner();
    let r: GetFlowsResponse = s.message().await.unwrap().unwrap();
    let Some(ResponseTypes::Flow(f)) = r.response_types else {
        panic!("no flow")
    };
    assert_eq!(f.time, ts(9));
    assert_eq!(f.source.unwrap().pod_name, "pod-9");
    assert!(f.uuid.is_empty() && f.destination.is_none() && f.summary.is_empty());
    assert_eq!(
        r.node_name, "test-node",
        "the response keeps node_name and time"
    );

    let bad = GetFlowsRequest {
        field_mask: Some(FieldMask {
            paths: vec!["nope".into()],
        }),
        ..Default::default()
    };
    assert_eq!(
        h.client().get_flows(bad).await.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
}

#[tokio::test]
async fn server_status_figures_and_version_header() {
    let h = start(15, 40).await;
    let resp = h
        .client()
        .server_status(ServerStatusRequest {})
        .await
        .unwrap();
    let v = resp
        .metadata()
        .get("hubble-server-version")
        .expect("version header")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(v.starts_with("1."), "{v}");
    let s = resp.into_inner();
    assert_eq!((s.num_flows, s.max_flows, s.seen_flows), (15, 15, 40));
    assert!(s.uptime_ns > 0);
    assert!(
        s.num_connected_nodes.is_none(),
        "an agent leaves node counts unset"
    );
    let flows = h
        .client()
        .get_flows(GetFlowsRequest {
            number: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(flows.metadata().get("hubble-server-version").is_some());
}

#[tokio::test]
async fn health_is_serving_for_hubble_observer() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let h = start(15, 0).await;
    let r = HealthClient::new(h.channel.clone())
        .check(HealthCheckRequest {
            service: "hubble.server.Observer".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test]
async fn nodes_namespaces_and_peers_describe_this_node() {
    let h = start(4095, 10).await;
    let nodes = h
        .client()
        .get_nodes(GetNodesRequest {})
        .await
        .unwrap()
        .into_inner()
        .nodes;
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].name, "test-node");
    assert_eq!(nodes[0].num_flows, 10);
    let ns = h
        .client()
        .get_namespaces(GetNamespacesRequest {})
        .await
        .unwrap()
        .into_inner()
        .namespaces;
    let names: Vec<_> = ns.iter().map(|n| n.namespace.as_str()).collect();
    assert_eq!(names, ["default", "kube-system"]);
    let mut peers = PeerClient::new(h.channel.clone())
        .notify(NotifyRequest {})
        .await
        .unwrap()
        .into_inner();
    let first = peers.message().await.unwrap().unwrap();
    assert_eq!(first.name, "test-node");
    assert_eq!(
        first.r#type,
        proto::peer::ChangeNotificationType::PeerAdded as i32
    );
}

#[tokio::test]
async fn agent_events_are_unimplemented_with_a_message() {
    let h = start(15, 0).await;
    let err = h
        .client()
        .get_agent_events(GetAgentEventsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented);
    assert!(err.message().contains("flow-exporter"));
}

#[tokio::test]
async fn close_ends_follow_streams_for_a_graceful_shutdown() {
    let h = start(4095, 3).await;
    let mut s = h
        .client()
        .get_flows(GetFlowsRequest {
            follow: true,
            number: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    for _ in 0..3 {
        assert!(s.message().await.unwrap().is_some());
    }
    h.observer.close();
    let end = tokio::time::timeout(Duration::from_secs(5), s.message())
        .await
        .expect("stream ends")
        .unwrap();
    assert!(end.is_none());
}

/// A hostile request costs no memory and gets a short answer: filters over
/// `flow_filter::defaults::MAX_FILTER_BYTES` are `RESOURCE_EXHAUSTED` naming
/// the limit (nothing is compiled), and an invalid value is quoted by a
/// short prefix, so the status fits any client's metadata limit.
#[tokio::test]
async fn oversized_filters_are_refused_and_errors_stay_short() {
    let h = start(4095, 1).await;
    let huge = "a".repeat(3 << 20);
    let req = GetFlowsRequest {
        whitelist: vec![FlowFilter {
            http_path: vec![huge],
            ..Default::default()
        }],
        ..Default::default()
    };
    let err = h.client().get_flows(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted);
    assert!(
        err.message().contains("filters too large"),
        "{}",
        err.message()
    );
    assert!(
        err.message()
            .contains(&flow_filter::defaults::MAX_FILTER_BYTES.to_string()),
        "{}",
        err.message()
    );
    let bad = format!("({}", "b".repeat(20_000));
    let req = GetFlowsRequest {
        whitelist: vec![FlowFilter {
            http_path: vec![bad],
            ..Default::default()
        }],
        ..Default::default()
    };
    let err = h.client().get_flows(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("http_path"), "{}", err.message());
    assert!(err.message().contains("(20001 bytes)"), "{}", err.message());
    assert!(err.message().len() < 1024, "{} bytes", err.message().len());
}

/// The pipeline's path (flows decoded in place over recycled slots, sent as
/// bytes encoded once) under forced lapping: the follower receives exactly
/// the flows a fresh decode gives, and is told exactly how many it missed.
#[tokio::test]
async fn recycled_slots_lapping_a_follower_keep_flows_and_losses_exact() {
    use flow_parser::{ClockOffset, Enricher, Parser, Synthetic};
    let h = start(7, 0).await;
    let mut s = h.follow().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let g = Synthetic::new(8);
    let parser = || {
        Parser::new(
            g.node_name(),
            Enricher::from_static(Arc::new(g.enrichment())),
        )
        .with_uuid_seed(3)
    };
    let (mut fresh, mut reused) = (parser(), parser());
    let clock = ClockOffset::new(0);
    let mut gen_ = Synthetic::new(8);
    const N: u64 = 5_000;
    let mut expected = std::collections::HashMap::new();
    for _ in 0..N / 100 {
        let events: Vec<Vec<u8>> = (0..100)
            .map(|_| {
                let mut v = Vec::new();
                gen_.next_event(&mut v);
                v
            })
            .collect();
        for e in &events {
            let f = fresh.decode(e, &clock).unwrap();
            expected.insert(f.uuid.clone(), f);
        }
        h.observer.push_decoded(
            events.iter().map(Vec::as_slice),
            |raw, f| reused.decode_into(raw, &clock, f),
            |_, e| panic!("rejected: {e}"),
        );
    }
    let (mut flows, mut lost) = (0u64, 0u64);
    while flows + lost < N {
        let r = tokio::time::timeout(Duration::from_secs(10), s.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match r.response_types {
            Some(ResponseTypes::Flow(f)) => {
                flows += 1;
                assert_eq!(r.node_name, f.node_name);
                assert_eq!(r.time, f.time);
                assert_eq!(Some(&f), expected.get(&f.uuid), "flow as decoded");
            }
            Some(ResponseTypes::LostEvents(l)) => lost += l.num_events_lost,
            _ => {}
        }
    }
    assert_eq!(flows + lost, N, "every flow delivered or counted as lost");
    assert!(lost > 0, "the follower was lapped");
}

//! The relay forwards the peers' encoded flows ([`relay::wire`]): the bytes
//! a client gets are the bytes the exporter sent, and the same bytes the
//! relay sent when it decoded every response and encoded it again (prost's
//! decode then encode), for every fixture flow, with and without a field
//! mask, non-follow and follow, from one exporter and merged from three.

mod common;

use common::{Exporter, RelayHarness, test_config};
use flow_exporter::sources::replay::{ReplayEvent, parse_line};
use prost::Message as _;
use proto::flow::Flow;
use proto::observer::get_flows_response::ResponseTypes;
use proto::observer::{GetFlowsRequest, GetFlowsResponse};
use proto::wkt::{FieldMask, Timestamp};
use relay::wire::{Kind, PeerCodec, PeerResponse, scan};
use std::net::SocketAddr;
use std::time::Duration;
use tonic::transport::Channel;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../flow-exporter/testdata/flows.jsonl"
);

fn fixtures() -> Vec<Flow> {
    let flows: Vec<Flow> = std::fs::read_to_string(FIXTURE)
        .expect("flow-exporter/testdata/flows.jsonl")
        .lines()
        .filter_map(|l| match parse_line(l) {
            Ok(Some(ReplayEvent::Flow(f))) => Some(f),
            _ => None,
        })
        .collect();
    assert!(flows.len() >= 10, "the fixture file has its flows");
    flows
}

/// The fixtures as node `node`'s flows, `k`-th at 10 ms × (3k + i).
fn node_flows(node: &str, i: usize) -> Vec<Flow> {
    fixtures()
        .into_iter()
        .enumerate()
        .map(|(k, mut f)| {
            f.node_name = node.to_owned();
            f.time = Some(Timestamp::from_unix_nanos(
                1_700_000_000_000_000_000 + ((3 * k + i) as i128) * 10_000_000,
            ));
            f
        })
        .collect()
}

/// What the relay sent before it forwarded bytes: the peer's response
/// decoded by prost and encoded again.
fn reencoded(bytes: &[u8]) -> Vec<u8> {
    GetFlowsResponse::decode(bytes)
        .expect("a response prost decodes")
        .encode_to_vec()
}

/// Every response of a GetFlows call to `addr`, as its encoded bytes.
async fn raw_get_flows(addr: SocketAddr, req: GetFlowsRequest, want: usize) -> Vec<PeerResponse> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/observer.Observer/GetFlows");
    let mut s = grpc
        .server_streaming(tonic::Request::new(req), path, PeerCodec::new())
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    let mut flows = 0;
    while flows < want {
        match tokio::time::timeout(Duration::from_secs(20), s.message())
            .await
            .expect("stream progressed")
            .unwrap()
        {
            Some(r) => {
                flows += usize::from(r.scanned.kind == Kind::Flow);
                out.push(r);
            }
            None => break,
        }
    }
    out
}

fn flows(rs: &[PeerResponse]) -> Vec<Vec<u8>> {
    rs.iter()
        .filter(|r| r.scanned.kind == Kind::Flow)
        .map(|r| r.bytes.to_vec())
        .collect()
}

#[test]
fn the_scan_reads_what_prost_decodes_for_every_fixture() {
    for f in node_flows("n", 0) {
        let mut bytes = Vec::new();
        flow_exporter::served::encode_flow_response(&f, &mut bytes);
        let r = GetFlowsResponse::decode(bytes.as_slice()).unwrap();
        let s = scan(&bytes).unwrap();
        assert_eq!(s.kind, Kind::Flow);
        assert_eq!(s.time, r.time);
        assert_eq!(s.order_time(), relay::merge::response_time(&r));
        assert_eq!(reencoded(&bytes), bytes, "prost re-encodes it as it was");
        // Without the response's own time, the flow's is read.
        let mut bare = r.clone();
        bare.time = None;
        let bare = bare.encode_to_vec();
        let s = scan(&bare).unwrap();
        assert_eq!((s.time, s.order_time()), (None, f.time.unwrap()));
    }
}

async fn check_requests(exporters: &[Exporter], relay: &RelayHarness) {
    let n = exporters.len();
    let per = fixtures().len();
    let requests = [
        GetFlowsRequest::default(),
        GetFlowsRequest {
            field_mask: Some(FieldMask {
                paths: vec!["time".into(), "source.pod_name".into(), "verdict".into()],
            }),
            ..Default::default()
        },
        GetFlowsRequest {
            number: 5,
            ..Default::default()
        },
        // Follow with a backlog of every flow of each node.
        GetFlowsRequest {
            follow: true,
            number: per as u64,
            ..Default::default()
        },
    ];
    for req in requests {
        let want = if req.number > 0 && !req.follow {
            req.number as usize
        } else {
            n * per
        };
        // Direct: each exporter's bytes; the relay's answer must be their
        // time-ordered merge, byte for byte.
        let mut direct = Vec::new();
        for e in exporters {
            let mut r = req.clone();
            r.number = 0;
            r.follow = false;
            direct.extend(flows(&raw_get_flows(e.addr, r, per).await));
        }
        direct.sort_by_key(|b| scan(b).unwrap().order_time());
        let direct = direct.split_off(direct.len() - want);
        let via = raw_get_flows(relay.addr, req.clone(), want).await;
        let mut via_flows = flows(&via);
        if req.follow {
            // Order is the merge's business (tests/progress.rs); here the
            // bytes are.
            via_flows.sort_by_key(|b| scan(b).unwrap().order_time());
        }
        assert_eq!(via_flows.len(), want, "{req:?}");
        for (got, exp) in via_flows.iter().zip(&direct) {
            assert_eq!(got, exp, "the exporter's bytes, as they were ({req:?})");
            assert_eq!(&reencoded(got), got, "what the relay sent before ({req:?})");
        }
        // The relay's own responses (node status) are whole messages.
        for r in &via {
            let m = r.decode().unwrap();
            if r.scanned.kind == Kind::NodeStatus {
                assert!(matches!(
                    m.response_types,
                    Some(ResponseTypes::NodeStatus(_))
                ));
                assert_eq!(m.node_name, "test-relay");
            }
        }
        if req.field_mask.is_some() {
            let m = GetFlowsResponse::decode(via_flows[0].as_slice()).unwrap();
            let Some(ResponseTypes::Flow(f)) = m.response_types else {
                panic!("a flow")
            };
            assert!(f.uuid.is_empty() && f.time.is_some(), "the mask applied");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_through_the_relay_are_the_exporters_bytes() {
    let e = Exporter::start("fwd-solo");
    e.observer.push_flows(node_flows("fwd-solo", 0));
    let relay = RelayHarness::start(test_config(vec![e.spec()])).await;
    relay.wait_connected(1).await;
    check_requests(std::slice::from_ref(&e), &relay).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_merged_from_three_are_the_exporters_bytes_in_time_order() {
    let exporters: Vec<Exporter> = (0..3)
        .map(|i| {
            let name = format!("fwd-{i}");
            let e = Exporter::start(&name);
            e.observer.push_flows(node_flows(&name, i));
            e
        })
        .collect();
    let relay =
        RelayHarness::start(test_config(exporters.iter().map(|e| e.spec()).collect())).await;
    relay.wait_connected(3).await;
    check_requests(&exporters, &relay).await;
}

/// The GetFlows of a peer that answers one response that is not protobuf
/// (a length running past its end); its other methods are a real
/// exporter's, so the relay's probes find it healthy.
#[derive(Clone)]
struct Garbage;

impl tonic::server::ServerStreamingService<GetFlowsRequest> for Garbage {
    type Response = relay::wire::Out;
    type ResponseStream =
        futures::stream::Iter<std::vec::IntoIter<Result<relay::wire::Out, tonic::Status>>>;
    type Future = std::future::Ready<Result<tonic::Response<Self::ResponseStream>, tonic::Status>>;

    fn call(&mut self, _: tonic::Request<GetFlowsRequest>) -> Self::Future {
        let bad = PeerResponse {
            bytes: prost::bytes::Bytes::from_static(&[0x0a, 0x05, 0x00]),
            scanned: relay::wire::Scanned {
                kind: Kind::Flow,
                time: None,
                flow_time: None,
                node_name: None,
            },
        };
        let items = vec![Ok(relay::wire::Out::Peer(bad))];
        std::future::ready(Ok(tonic::Response::new(futures::stream::iter(items))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_response_that_is_not_protobuf_is_that_nodes_error() {
    use proto::relay::NodeState;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let observer =
        std::sync::Arc::new(flow_exporter::observer::Observer::new("fwd-bad", 15).unwrap());
    let peer = svc::grpc_codec::StreamingOverride::<_, _, GetFlowsRequest, relay::wire::Out>::new(
        proto::observer::observer_server::ObserverServer::new(
            flow_exporter::server::ObserverService::new(observer, addr.to_string()),
        ),
        "/observer.Observer/GetFlows",
        Garbage,
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(peer)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    let spec = relay::peers::PeerSpec {
        name: "fwd-bad".into(),
        address: addr.to_string(),
        tls_server_name: None,
    };
    let relay = RelayHarness::start(test_config(vec![spec])).await;
    relay.wait_connected(1).await;
    let seen = common::collect(&mut relay.client().await, GetFlowsRequest::default()).await;
    let error = seen.iter().find_map(|s| match s {
        common::Seen::Status(state, nodes, msg) if *state == NodeState::NodeError as i32 => {
            Some((nodes.clone(), msg.clone()))
        }
        _ => None,
    });
    let (nodes, msg) = error.unwrap_or_else(|| panic!("a NODE_ERROR in {seen:?}"));
    assert_eq!(nodes, ["fwd-bad"]);
    assert!(msg.contains("malformed GetFlowsResponse"), "{msg}");
    assert!(
        common::flows_of(&seen).is_empty(),
        "nothing forwarded: {seen:?}"
    );
    let _ = stop.send(());
    let _ = server.await;
}

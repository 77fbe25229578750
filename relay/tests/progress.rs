//! Progress markers end to end: real exporters behind the relay. An idle
//! node's markers let the relay release a busy node's flows in exact order
//! without its sort window (set to an hour here, so only a marker can
//! release them before the stream ends); the stock request (no metadata)
//! never sees a marker; the relay never forwards one.

mod common;

use std::time::Duration;

use common::*;
use flow_exporter::progress::{PROGRESS_HEADER, marker_time};
use proto::observer::get_flows_response::ResponseTypes;
use proto::observer::{GetFlowsRequest, GetFlowsResponse};
use proto::wkt::Timestamp;
use tonic::Streaming;

fn at(ms: i64) -> Timestamp {
    Timestamp::from_unix_nanos((T0 as i128) * 1_000_000_000 + (ms as i128) * 1_000_000)
}

/// The next response, failing after a minute.
async fn next(s: &mut Streaming<GetFlowsResponse>) -> GetFlowsResponse {
    tokio::time::timeout(Duration::from_secs(60), s.message())
        .await
        .expect("a response within a minute")
        .unwrap()
        .expect("the stream is open")
}

/// The next flow's uuid; every other response must be a node status.
async fn next_flow(s: &mut Streaming<GetFlowsResponse>) -> String {
    loop {
        let r = next(s).await;
        match r.response_types {
            Some(ResponseTypes::Flow(f)) => return f.uuid,
            Some(ResponseTypes::NodeStatus(_)) => {}
            other => panic!("the relay's client got {other:?} (a marker is never forwarded)"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_nodes_markers_release_a_busy_nodes_flows_in_exact_order() {
    let ex: Vec<Exporter> = (0..3)
        .map(|i| Exporter::start(&format!("prog-{i}")))
        .collect();
    let mut cfg = test_config(ex.iter().map(|e| e.spec()).collect());
    cfg.flows.sort_window = Duration::from_secs(3600);
    cfg.flows.sort_buffer_len = 1_000_000;
    let relay = RelayHarness::start(cfg).await;
    relay.wait_connected(3).await;
    let mut s = relay
        .client()
        .await
        .get_flows(GetFlowsRequest {
            follow: true,
            // From the test's first flow: a flow stored before a node's
            // stream reached it is still sent.
            since: Some(at(0)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(
        next(&mut s).await.response_types,
        Some(ResponseTypes::NodeStatus(_))
    ));
    // Each node's ingest stores its flows, then says how far it is.
    let (o0, o1, o2) = (&ex[0].observer, &ex[1].observer, &ex[2].observer);
    o0.push_flows([10, 20, 30].map(|ms| flow("prog-0", ms, "default")));
    o0.progress().advance(at(30));
    o1.push_flows([flow("prog-1", 15, "default")]);
    o1.progress().advance(at(25));
    o2.progress().advance(at(40));
    let got: Vec<String> = [
        next_flow(&mut s).await,
        next_flow(&mut s).await,
        next_flow(&mut s).await,
    ]
    .into();
    assert_eq!(got, ["prog-0-10", "prog-1-15", "prog-0-20"]);
    // prog-0-30 waits for prog-1, which may still send 25..30.
    o1.push_flows([flow("prog-1", 28, "default")]);
    o1.progress().advance(at(35));
    assert_eq!(next_flow(&mut s).await, "prog-1-28");
    assert_eq!(next_flow(&mut s).await, "prog-0-30");
    // A busy stretch later: still exact, released by markers alone.
    for k in 0..50 {
        let ms = 100 + 3 * k;
        o0.push_flows([flow("prog-0", ms, "default")]);
        o0.progress().advance(at(ms));
        o1.push_flows([flow("prog-1", ms + 1, "default")]);
        o1.progress().advance(at(ms + 1));
        o2.progress().advance(at(ms + 2));
    }
    let mut want = Vec::new();
    for k in 0..50 {
        want.push(format!("prog-0-{}", 100 + 3 * k));
        want.push(format!("prog-1-{}", 101 + 3 * k));
    }
    // The last flow (prog-1-248) waits for prog-0's progress past it.
    o0.progress().advance(at(1000));
    let mut got = Vec::new();
    for _ in 0..want.len() {
        got.push(next_flow(&mut s).await);
    }
    assert_eq!(got, want);
}

/// A direct follower of one exporter: without the metadata it never sees a
/// marker; with it, it gets markers carrying the ingest's progress, never
/// older than a flow sent before and never newer than one sent after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markers_only_when_asked_and_never_out_of_order() {
    let ex = Exporter::start("prog-direct");
    let o = &ex.observer;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", ex.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = proto::observer::observer_client::ObserverClient::new(channel);
    let follow = GetFlowsRequest {
        follow: true,
        // Flows stored before a stream reached the exporter are sent too.
        since: Some(at(-1)),
        ..Default::default()
    };
    let mut stock = client.get_flows(follow.clone()).await.unwrap().into_inner();
    let mut req = tonic::Request::new(follow.clone());
    req.metadata_mut()
        .insert(PROGRESS_HEADER, "1".parse().unwrap());
    let mut asked = client.get_flows(req).await.unwrap().into_inner();
    for k in 0..20 {
        o.push_flows([flow("prog-direct", 10 * k, "default")]);
        o.progress().advance(at(10 * k + 5));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    o.push_flows([flow("prog-direct", 1000, "default")]);
    // The stock stream: 21 flows and nothing else.
    for k in 0..21 {
        let r = next(&mut stock).await;
        let Some(ResponseTypes::Flow(f)) = r.response_types else {
            panic!("a stock follower got {r:?}");
        };
        assert_eq!(
            f.uuid,
            format!("prog-direct-{}", if k < 20 { 10 * k } else { 1000 })
        );
    }
    // The asking stream: the same flows, markers between them, in order.
    let (mut flows, mut markers, mut newest) = (0, 0, Timestamp::default());
    while flows < 21 {
        let r = next(&mut asked).await;
        let t = match (&r.response_types, marker_time(&r)) {
            (Some(ResponseTypes::Flow(f)), _) => {
                flows += 1;
                f.time.unwrap()
            }
            (None, Some(t)) => {
                assert_eq!(r.node_name, "prog-direct");
                markers += 1;
                t
            }
            _ => panic!("unexpected {r:?}"),
        };
        assert!(t >= newest, "{t:?} after {newest:?}");
        newest = t;
    }
    assert!(markers > 0, "the asking stream got no marker");
    // A bad interval is refused, naming the header.
    let mut req = tonic::Request::new(follow);
    req.metadata_mut()
        .insert(PROGRESS_HEADER, "soon".parse().unwrap());
    let e = client.get_flows(req).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains(PROGRESS_HEADER), "{}", e.message());
}

#[test]
fn the_relay_asks_with_the_exporters_header() {
    assert_eq!(relay::defaults::PROGRESS_HEADER, PROGRESS_HEADER);
}

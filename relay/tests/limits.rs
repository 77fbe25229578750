//! The relay's gRPC tower stack, in process: GetFlows streams beyond
//! `--max-concurrent-streams` are refused at once with RESOURCE_EXHAUSTED
//! naming the limit, an open follow holds its slot until it is closed, a
//! closed one frees it, and `hubble_relay_grpc_*` count all of it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Exporter, eventually, test_config};
use proto::observer::observer_client::ObserverClient;
use proto::observer::{GetFlowsRequest, ServerStatusRequest};
use relay::Relay;
use relay::metrics::Metrics;
use tonic::transport::Channel;

/// A guard against a hang only: every call here is answered in
/// milliseconds, or the test fails instead of waiting forever.
const HANG_GUARD: Duration = Duration::from_secs(20);

async fn guarded<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(HANG_GUARD, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {HANG_GUARD:?} (a hang)"))
}

fn follow() -> GetFlowsRequest {
    GetFlowsRequest {
        follow: true,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_over_the_limit_are_refused_at_once_and_a_closed_stream_frees_its_slot() {
    let node = Exporter::start("node-1");
    let metrics = Arc::new(Metrics::new());
    let relay = Relay::start(test_config(vec![node.spec()]), metrics.clone());
    let limits = svc::grpc_layers::Limits {
        max_streams: 2,
        ..relay::server::default_limits()
    };
    let router = relay.router_with(limits).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let _ = router
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await;
    });
    eventually(Duration::from_secs(20), || {
        let up = relay.pool().peers().iter().any(|p| p.is_available());
        async move { up }
    })
    .await;
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = ObserverClient::new(channel);

    // Both slots taken by follows whose handlers have returned.
    let first = guarded("first GetFlows", client.get_flows(follow()))
        .await
        .expect("first stream admitted");
    let second = guarded("second GetFlows", client.get_flows(follow()))
        .await
        .expect("second stream admitted");

    // The third is refused at once, with the limit and its value.
    let err = guarded("third GetFlows", client.get_flows(follow()))
        .await
        .expect_err("a third stream is over the limit of 2");
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains("at most 2 streaming calls")
            && err.message().contains("--max-concurrent-streams"),
        "the message names the limit and its value: {}",
        err.message()
    );

    // Unary calls are not streams: they still pass.
    guarded("ServerStatus", client.server_status(ServerStatusRequest {}))
        .await
        .expect("ServerStatus is not limited by the stream slots");

    // Closing a follow frees its slot.
    drop(first);
    let reopened = guarded("GetFlows after a stream closed", async {
        loop {
            match client.get_flows(follow()).await {
                Ok(s) => break s,
                Err(e) if e.code() == tonic::Code::ResourceExhausted => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
    })
    .await;

    let text = metrics.encode();
    for want in [
        r#"hubble_relay_grpc_requests_total{method="observer.Observer/GetFlows",code="RESOURCE_EXHAUSTED"}"#,
        r#"hubble_relay_grpc_requests_total{method="observer.Observer/GetFlows",code="CANCELLED"} 1"#,
        r#"hubble_relay_grpc_requests_total{method="observer.Observer/ServerStatus",code="OK"} 1"#,
        r#"hubble_relay_grpc_streams{method="observer.Observer/GetFlows"} 2"#,
    ] {
        assert!(text.contains(want), "missing {want} in\n{text}");
    }
    drop((second, reopened, stop));
}

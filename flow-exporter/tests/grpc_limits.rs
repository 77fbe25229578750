//! The exporter's gRPC tower stack, in process: streams (GetFlows and
//! Peer.Notify together) beyond `--max-concurrent-streams` are refused at
//! once with RESOURCE_EXHAUSTED naming the limit, a stream holds its slot
//! until it is closed (not just until its handler returned), a closed
//! stream frees it, and `flow_exporter_grpc_*` count all of it.

use std::sync::Arc;
use std::time::Duration;

use flow_exporter::metrics::Metrics;
use flow_exporter::observer::Observer;
use flow_exporter::server::{ServerOptions, default_limits, router_with_options};
use proto::observer::observer_client::ObserverClient;
use proto::observer::{GetFlowsRequest, ServerStatusRequest};
use proto::peer::NotifyRequest;
use proto::peer::peer_client::PeerClient;
use tonic::transport::Channel;

/// A guard against a hang only: every call here is answered in
/// milliseconds, or the test fails instead of waiting forever.
const HANG_GUARD: Duration = Duration::from_secs(20);

struct Harness {
    metrics: Arc<Metrics>,
    channel: Channel,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

async fn start(max_streams: usize) -> Harness {
    let metrics = Arc::new(Metrics::new());
    let observer = Arc::new(Observer::new("test-node", 4095).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let opts = ServerOptions {
        limits: svc::grpc_layers::Limits {
            max_streams,
            ..default_limits()
        },
        metrics: metrics.grpc().clone(),
    };
    let router = router_with_options(observer, addr.to_string(), None, &opts)
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
        metrics,
        channel,
        _shutdown: tx,
    }
}

fn follow() -> GetFlowsRequest {
    GetFlowsRequest {
        follow: true,
        ..Default::default()
    }
}

async fn guarded<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(HANG_GUARD, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {HANG_GUARD:?} (a hang)"))
}

#[tokio::test]
async fn streams_over_the_limit_are_refused_at_once_and_a_closed_stream_frees_its_slot() {
    let h = start(2).await;
    let mut observer = ObserverClient::new(h.channel.clone());
    let mut peer = PeerClient::new(h.channel.clone());

    // The two slots: a follow and a Notify, both open after their
    // handlers returned.
    let flows = guarded("first GetFlows", observer.get_flows(follow()))
        .await
        .expect("first stream admitted");
    let mut notify = guarded("Notify", peer.notify(NotifyRequest {}))
        .await
        .expect("second stream admitted")
        .into_inner();
    guarded("Notify's first message", notify.message())
        .await
        .unwrap()
        .expect("Notify announces the node");

    // The third is refused at once, with the limit and its value.
    let err = guarded("third GetFlows", observer.get_flows(follow()))
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
    guarded(
        "ServerStatus",
        observer.server_status(ServerStatusRequest {}),
    )
    .await
    .expect("ServerStatus is not limited by the stream slots");

    // Closing the follow frees its slot (the server sees the reset stream
    // and drops the response body that held the permit).
    drop(flows);
    let reopened = guarded("GetFlows after a stream closed", async {
        loop {
            match observer.get_flows(follow()).await {
                Ok(s) => break s,
                Err(e) if e.code() == tonic::Code::ResourceExhausted => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
    })
    .await;

    let text = h.metrics.encode();
    for want in [
        r#"flow_exporter_grpc_requests_total{method="observer.Observer/GetFlows",code="RESOURCE_EXHAUSTED"}"#,
        r#"flow_exporter_grpc_requests_total{method="observer.Observer/GetFlows",code="CANCELLED"} 1"#,
        r#"flow_exporter_grpc_requests_total{method="observer.Observer/ServerStatus",code="OK"} 1"#,
        r#"flow_exporter_grpc_streams{method="observer.Observer/GetFlows"} 1"#,
        r#"flow_exporter_grpc_streams{method="peer.Peer/Notify"} 1"#,
    ] {
        assert!(text.contains(want), "missing {want} in\n{text}");
    }
    drop((reopened, notify));
}

#[tokio::test]
async fn the_default_limits_are_in_defaults() {
    let l = default_limits();
    assert_eq!(
        l.max_streams,
        flow_exporter::defaults::MAX_CONCURRENT_STREAMS
    );
    assert_eq!(
        l.max_requests,
        flow_exporter::defaults::MAX_CONCURRENT_REQUESTS
    );
    assert_eq!(l.unary_timeout, flow_exporter::defaults::UNARY_TIMEOUT);
    assert_eq!(
        l.keepalive_interval,
        flow_exporter::defaults::GRPC_KEEPALIVE_INTERVAL
    );
}

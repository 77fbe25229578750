//! The exporter's gRPC tower stack, in process: streams (GetFlows and
//! Peer.Notify together) beyond `--max-concurrent-streams` are refused at
//! once with RESOURCE_EXHAUSTED naming the limit, a stream holds its slot
//! until it is closed (not just until its handler returned), a closed
//! stream frees it, and `flow_exporter_grpc_*` count all of it; the unary
//! timeout cuts unary calls, never a follow; load shedding refuses a call
//! over `--max-concurrent-requests` instead of queueing it.

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
    let limits = svc::grpc_layers::Limits {
        max_streams,
        ..default_limits()
    };
    start_with(Arc::new(Observer::new("test-node", 4095).unwrap()), limits).await
}

async fn start_with(observer: Arc<Observer>, limits: svc::grpc_layers::Limits) -> Harness {
    let metrics = Arc::new(Metrics::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let opts = ServerOptions {
        limits,
        metrics: metrics.grpc().clone(),
        ..ServerOptions::default()
    };
    let router = router_with_options(observer, addr.to_string(), None, &opts)
        .await
        .unwrap();
    serve_router(router, listener, metrics).await
}

async fn serve_router(
    router: tonic::transport::server::Router,
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
) -> Harness {
    let addr = listener.local_addr().unwrap();
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
async fn the_unary_timeout_leaves_a_follow_alive() {
    let observer = Arc::new(Observer::new("test-node", 4095).unwrap());
    let limits = svc::grpc_layers::Limits {
        unary_timeout: Duration::from_millis(50),
        ..default_limits()
    };
    let h = start_with(observer.clone(), limits).await;
    let mut client = ObserverClient::new(h.channel.clone());
    let mut s = guarded("GetFlows", client.get_flows(follow()))
        .await
        .unwrap()
        .into_inner();
    // Well past the unary timeout, the follow still delivers.
    tokio::time::sleep(Duration::from_millis(300)).await;
    observer.push_flows([proto::flow::Flow {
        uuid: "late".into(),
        time: Some(proto::wkt::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
        ..Default::default()
    }]);
    let got = guarded("a flow on the follow", s.message())
        .await
        .expect("the follow is still open")
        .expect("a response");
    match got.response_types {
        Some(proto::observer::get_flows_response::ResponseTypes::Flow(f)) => {
            assert_eq!(f.uuid, "late")
        }
        other => panic!("expected the flow, got {other:?}"),
    }
}

/// A stand-in for the Observer service whose every call takes `delay`, to
/// drive the unary timeout and load shedding (the real handlers answer
/// too fast for either).
#[derive(Clone)]
struct Slow {
    delay: Duration,
    entered: Arc<std::sync::atomic::AtomicUsize>,
}

impl tonic::server::NamedService for Slow {
    const NAME: &'static str = "observer.Observer";
}

impl tower::Service<tonic::codegen::http::Request<tonic::body::Body>> for Slow {
    type Response = tonic::codegen::http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: tonic::codegen::http::Request<tonic::body::Body>) -> Self::Future {
        self.entered
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let delay = self.delay;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            Ok(tonic::Status::unavailable("slow service answered").into_http())
        })
    }
}

async fn start_slow(limits: svc::grpc_layers::Limits, slow: Slow) -> Harness {
    let metrics = Arc::new(Metrics::new());
    let stack = svc::grpc_layers::Stack::new(
        limits,
        flow_exporter::server::METHODS,
        metrics.grpc().clone(),
    );
    let router = tonic::transport::Server::builder().add_service(stack.wrap(slow));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve_router(router, listener, metrics).await
}

#[tokio::test]
async fn a_slow_unary_call_gets_deadline_exceeded_naming_the_timeout() {
    let slow = Slow {
        delay: Duration::from_secs(3600),
        entered: Default::default(),
    };
    let limits = svc::grpc_layers::Limits {
        unary_timeout: Duration::from_millis(100),
        ..default_limits()
    };
    let h = start_slow(limits, slow).await;
    let err = guarded(
        "ServerStatus",
        ObserverClient::new(h.channel.clone()).server_status(ServerStatusRequest {}),
    )
    .await
    .expect_err("the call outlives the unary timeout");
    assert_eq!(err.code(), tonic::Code::DeadlineExceeded, "{err:?}");
    assert!(err.message().contains("100ms"), "{}", err.message());
    let text = h.metrics.encode();
    let want = r#"flow_exporter_grpc_requests_total{method="observer.Observer/ServerStatus",code="DEADLINE_EXCEEDED"} 1"#;
    assert!(text.contains(want), "missing {want} in\n{text}");
}

#[tokio::test]
async fn a_call_over_the_request_limit_is_shed_not_queued() {
    let slow = Slow {
        delay: Duration::from_secs(3600),
        entered: Default::default(),
    };
    let entered = slow.entered.clone();
    let limits = svc::grpc_layers::Limits {
        max_requests: 1,
        ..default_limits()
    };
    let h = start_slow(limits, slow).await;
    let mut busy = ObserverClient::new(h.channel.clone());
    let first = tokio::spawn(async move { busy.server_status(ServerStatusRequest {}).await });
    guarded("the first call reaching its handler", async {
        while entered.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let err = guarded(
        "a second call while the first runs",
        ObserverClient::new(h.channel.clone()).get_nodes(proto::observer::GetNodesRequest {}),
    )
    .await
    .expect_err("shed: the one handler slot is taken");
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains("at most 1 requests")
            && err.message().contains("--max-concurrent-requests"),
        "{}",
        err.message()
    );
    first.abort();
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

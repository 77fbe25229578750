//! The relay passes a client's request metadata on to the nodes, as
//! Hubble's relay does (GetFlows, ServerStatus, GetNodes, GetNamespaces):
//! `authorization` and custom entries reach every node, the client's own
//! gRPC call headers (`grpc-timeout`) do not.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{RelayHarness, collect, eventually, flow, test_config, uuids};
use flow_exporter::observer::Observer;
use flow_exporter::server::ObserverService;
use proto::observer::observer_server::ObserverServer;
use proto::observer::{
    GetFlowsRequest, GetNamespacesRequest, GetNodesRequest, ServerStatusRequest,
};
use relay::peers::PeerSpec;
use tonic::Request;

/// What a node saw of one call that carried an `x-call` entry.
#[derive(Debug, Clone)]
struct Seen {
    call: String,
    authorization: Option<String>,
    tenant_bin: Option<Vec<u8>>,
    grpc_timeout: bool,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// An exporter whose Observer service records the metadata of each call.
async fn recording_node(name: &str, log: Log) -> PeerSpec {
    let observer = Arc::new(Observer::new(name, 4095).unwrap());
    observer.push_flows((0..5).map(|i| flow(name, i * 10, "default")));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = ObserverServer::with_interceptor(
        ObserverService::new(observer, addr.to_string()),
        move |req: Request<()>| {
            let md = req.metadata();
            if let Some(call) = md.get("x-call") {
                log.lock().unwrap().push(Seen {
                    call: call.to_str().unwrap().to_owned(),
                    authorization: md
                        .get("authorization")
                        .map(|v| v.to_str().unwrap().to_owned()),
                    tenant_bin: md
                        .get_bin("x-tenant-bin")
                        .map(|v| v.to_bytes().unwrap().to_vec()),
                    grpc_timeout: md.get("grpc-timeout").is_some(),
                });
            }
            Ok(req)
        },
    );
    tokio::spawn(async move {
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let _ = tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(incoming)
            .await;
    });
    PeerSpec {
        name: name.to_owned(),
        address: addr.to_string(),
        tls_server_name: None,
    }
}

fn with_metadata<T>(msg: T, call: &str) -> Request<T> {
    let mut r = Request::new(msg);
    let md = r.metadata_mut();
    md.insert("authorization", "Bearer s3cret".parse().unwrap());
    md.insert("x-call", call.parse().unwrap());
    md.insert_bin(
        "x-tenant-bin",
        tonic::metadata::MetadataValue::from_bytes(b"\x00tenant"),
    );
    // The client's deadline is its own call's, not the node's.
    r.set_timeout(Duration::from_secs(30));
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_metadata_reaches_every_node() {
    let log: Log = Arc::default();
    let n1 = recording_node("n1", log.clone()).await;
    let n2 = recording_node("n2", log.clone()).await;
    let relay = RelayHarness::start(test_config(vec![n1, n2])).await;
    relay.wait_connected(2).await;
    let mut c = relay.client().await;

    let seen_by_both = |call: &'static str| {
        let log = log.clone();
        move || {
            let log = log.clone();
            async move {
                let l = log.lock().unwrap();
                l.iter().filter(|s| s.call == call).count() >= 2
            }
        }
    };

    let flows = collect(
        &mut c,
        GetFlowsRequest {
            number: 100,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(uuids(&flows).len(), 10);
    // A plain request carries nothing of the previous one.
    let plain = log.lock().unwrap().len();
    assert_eq!(plain, 0, "no x-call yet");

    let s = c
        .get_flows(with_metadata(
            GetFlowsRequest {
                number: 100,
                ..Default::default()
            },
            "flows",
        ))
        .await
        .unwrap();
    let mut s = s.into_inner();
    while s.message().await.unwrap().is_some() {}
    eventually(Duration::from_secs(20), seen_by_both("flows")).await;

    c.server_status(with_metadata(ServerStatusRequest {}, "status"))
        .await
        .unwrap();
    eventually(Duration::from_secs(20), seen_by_both("status")).await;
    c.get_nodes(with_metadata(GetNodesRequest {}, "nodes"))
        .await
        .unwrap();
    eventually(Duration::from_secs(20), seen_by_both("nodes")).await;
    c.get_namespaces(with_metadata(GetNamespacesRequest {}, "namespaces"))
        .await
        .unwrap();
    eventually(Duration::from_secs(20), seen_by_both("namespaces")).await;

    let l = log.lock().unwrap().clone();
    assert_eq!(l.len(), 8, "{l:?}");
    for s in &l {
        assert_eq!(s.authorization.as_deref(), Some("Bearer s3cret"), "{s:?}");
        assert_eq!(s.tenant_bin.as_deref(), Some(&b"\x00tenant"[..]), "{s:?}");
        assert!(
            !s.grpc_timeout,
            "the client's grpc-timeout was forwarded: {s:?}"
        );
    }
}

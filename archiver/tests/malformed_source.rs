//! The follower archives flows from the bytes it receives: a source whose
//! response is not valid protobuf, or whose flow is malformed where a
//! column reads, has that response skipped and recorded as a gap of one
//! event; the flows around it are archived as sent.

mod common;

use std::sync::Arc;

use archiver::storage::{LocalDir, Storage};
use archiver::writer;
use common::{T0, all, archive_until, flow};
use prost::Message as _;
use proto::observer::get_flows_response::ResponseTypes;
use proto::observer::{GetFlowsRequest, GetFlowsResponse};
use tonic::codec::EncodeBuf;

/// A response as bytes, written as they are.
struct Raw(Vec<u8>);

impl svc::grpc_codec::EncodeResponse for Raw {
    fn encode_response(self, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        svc::grpc_codec::put_encoded(&self.0, dst);
        Ok(())
    }
}

type Stream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<Raw, tonic::Status>> + Send>>;

/// GetFlows answering: flow 0, bytes that are not protobuf, flow 1, a
/// flow whose uuid is not UTF-8, flow 2; then nothing more (the stream
/// stays open, so the follower does not reconnect).
#[derive(Clone)]
struct Broken;

fn response(i: u64) -> Vec<u8> {
    let f = flow(i, T0);
    GetFlowsResponse {
        node_name: f.node_name.clone(),
        time: f.time,
        response_types: Some(ResponseTypes::Flow(f)),
    }
    .encode_to_vec()
}

impl tonic::server::ServerStreamingService<GetFlowsRequest> for Broken {
    type Response = Raw;
    type ResponseStream = Stream;
    type Future = std::future::Ready<Result<tonic::Response<Stream>, tonic::Status>>;

    fn call(&mut self, _: tonic::Request<GetFlowsRequest>) -> Self::Future {
        // A flow field (1) of 5 bytes holding 1: truncated.
        let garbage = vec![0x0a, 0x05, 0x00];
        // Flow 3 with its uuid (field 34) replaced by invalid UTF-8.
        let mut bad_uuid = flow(3, T0);
        bad_uuid.uuid = "x".into();
        let mut pb = bad_uuid.encode_to_vec();
        let at = pb.windows(3).position(|w| w == [0x92, 0x02, 0x01]).unwrap();
        pb[at + 3] = 0xff;
        let mut bad = Vec::new();
        prost::encoding::bytes::encode(1, &pb, &mut bad);
        let items = vec![response(0), garbage, response(1), bad, response(2)];
        let s = futures::stream::iter(items.into_iter().map(|b| Ok(Raw(b))))
            .chain(futures::stream::pending());
        std::future::ready(Ok(tonic::Response::new(Box::pin(s) as Stream)))
    }
}

use futures::StreamExt as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_responses_are_skipped_and_recorded_as_gaps() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let observer = Arc::new(flow_exporter::observer::Observer::new("bad-src", 15).unwrap());
    let svc = svc::grpc_codec::StreamingOverride::<_, _, GetFlowsRequest, Raw>::new(
        proto::observer::observer_server::ObserverServer::new(
            flow_exporter::server::ObserverService::new(observer, addr.to_string()),
        ),
        "/observer.Observer/GetFlows",
        Broken,
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(LocalDir::new(dir.path()).unwrap());
    archive_until(storage.clone(), &addr.to_string(), 3).await;
    let uuids: Vec<String> = all(&storage).into_iter().map(|f| f.uuid).collect();
    assert_eq!(uuids, ["uuid-000000", "uuid-000001", "uuid-000002"]);
    assert_eq!(
        all(&storage),
        (0..3).map(|i| flow(i, T0)).collect::<Vec<_>>()
    );
    let gaps = writer::gaps(storage.as_ref()).unwrap();
    assert_eq!(gaps.len(), 2, "{gaps:?}");
    for g in &gaps {
        assert_eq!(g.lost_events, Some(1));
        assert!(g.reason.contains("malformed response"), "{}", g.reason);
    }
    assert!(gaps[1].reason.contains("UTF-8"), "{}", gaps[1].reason);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

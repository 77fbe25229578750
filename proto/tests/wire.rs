//! Pins the protobuf wire format against fixtures built by hand from the
//! field tables in HUBBLE_API.md §2 (field numbers and types), with a tiny
//! encoder below. If a field number or type drifts from upstream Hubble,
//! these bytes stop matching.

use prost::Message;
use proto::flow::{
    self, CiliumEventType, Endpoint, Flow, FlowFilter, Ip, Layer4, LostEvent, Tcp, TcpFlags,
};
use proto::observer::{
    GetFlowsRequest, GetFlowsResponse, ServerStatusResponse, get_flows_response::ResponseTypes,
};
use proto::peer::{ChangeNotification, ChangeNotificationType, Tls};
use proto::relay::{NodeState, NodeStatusEvent};
use proto::wkt::{BoolValue, FieldMask, Int32Value, Timestamp, UInt32Value};

/// A protobuf message written field by field.
#[derive(Default)]
struct W(Vec<u8>);

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl W {
    fn key(mut self, field: u32, wire: u8) -> Self {
        varint(u64::from(field) << 3 | u64::from(wire), &mut self.0);
        self
    }
    fn uint(self, field: u32, v: u64) -> Self {
        let mut s = self.key(field, 0);
        varint(v, &mut s.0);
        s
    }
    fn bytes(self, field: u32, b: &[u8]) -> Self {
        let mut s = self.key(field, 2);
        varint(b.len() as u64, &mut s.0);
        s.0.extend_from_slice(b);
        s
    }
    fn str(self, field: u32, v: &str) -> Self {
        self.bytes(field, v.as_bytes())
    }
    fn msg(self, field: u32, m: W) -> Self {
        self.bytes(field, &m.0)
    }
    fn double(self, field: u32, v: f64) -> Self {
        let mut s = self.key(field, 1);
        s.0.extend_from_slice(&v.to_le_bytes());
        s
    }
    fn packed(self, field: u32, vs: &[u64]) -> Self {
        let mut body = Vec::new();
        for v in vs {
            varint(*v, &mut body);
        }
        self.bytes(field, &body)
    }
}

fn ts(seconds: i64, nanos: i32) -> W {
    W::default().uint(1, seconds as u64).uint(2, nanos as u64)
}

fn sample_flow() -> Flow {
    Flow {
        time: Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        }),
        uuid: "u".into(),
        verdict: flow::Verdict::Dropped as i32,
        drop_reason: 133,
        ip: Some(Ip {
            source: "10.0.0.1".into(),
            destination: "10.0.0.2".into(),
            ip_version: flow::IpVersion::IPv4 as i32,
            ..Default::default()
        }),
        l4: Some(Layer4 {
            protocol: Some(flow::layer4::Protocol::Tcp(Tcp {
                source_port: 44916,
                destination_port: 80,
                flags: Some(TcpFlags {
                    syn: true,
                    ..Default::default()
                }),
            })),
        }),
        source: Some(Endpoint {
            id: 11,
            identity: 1001,
            namespace: "default".into(),
            labels: vec!["k8s:org=alliance".into()],
            pod_name: "xwing".into(),
            ..Default::default()
        }),
        r#type: flow::FlowType::L3L4 as i32,
        node_name: "node".into(),
        event_type: Some(CiliumEventType {
            r#type: 1,
            sub_type: 133,
        }),
        traffic_direction: flow::TrafficDirection::Ingress as i32,
        trace_observation_point: flow::TraceObservationPoint::ToEndpoint as i32,
        drop_reason_desc: flow::DropReason::PolicyDenied as i32,
        is_reply: Some(BoolValue { value: false }),
        summary: "TCP Flags: SYN".into(),
        ..Default::default()
    }
}

/// Flow fields in ascending field-number order, as every protobuf encoder
/// writes them.
fn sample_flow_bytes() -> W {
    W::default()
        .msg(1, ts(1_700_000_000, 5))
        .uint(2, 2) // verdict DROPPED
        .uint(3, 133) // drop_reason
        .msg(
            5,
            W::default()
                .str(1, "10.0.0.1")
                .str(2, "10.0.0.2")
                .uint(3, 1),
        ) // IP
        .msg(
            6,
            W::default().msg(
                1,
                W::default()
                    .uint(1, 44916)
                    .uint(2, 80)
                    .msg(3, W::default().uint(2, 1)),
            ),
        ) // l4.TCP
        .msg(
            8,
            W::default()
                .uint(1, 11)
                .uint(2, 1001)
                .str(3, "default")
                .str(4, "k8s:org=alliance")
                .str(5, "xwing"),
        ) // source
        .uint(10, 1) // Type L3_L4
        .str(11, "node")
        .msg(19, W::default().uint(1, 1).uint(2, 133)) // event_type
        .uint(22, 1) // traffic_direction INGRESS
        .uint(24, 101) // trace_observation_point TO_ENDPOINT
        .uint(25, 133) // drop_reason_desc POLICY_DENIED
        .msg(26, W::default()) // is_reply = BoolValue{false}: present, empty
        .str(34, "u") // uuid
        .str(100_000, "TCP Flags: SYN") // Summary
}

#[test]
fn flow_encodes_to_the_field_table() {
    assert_eq!(sample_flow().encode_to_vec(), sample_flow_bytes().0);
    assert_eq!(
        Flow::decode(sample_flow_bytes().0.as_slice()).unwrap(),
        sample_flow()
    );
}

#[test]
fn get_flows_request_encodes_to_the_field_table() {
    let req = GetFlowsRequest {
        number: 20,
        follow: true,
        blacklist: vec![FlowFilter {
            destination_pod: vec!["kube-system/".into()],
            ..Default::default()
        }],
        whitelist: vec![FlowFilter {
            source_pod: vec!["default/xwing".into()],
            verdict: vec![flow::Verdict::Dropped as i32, flow::Verdict::Error as i32],
            source_identity: vec![2],
            tcp_flags: vec![TcpFlags {
                syn: true,
                ack: true,
                ..Default::default()
            }],
            ..Default::default()
        }],
        since: Some(Timestamp {
            seconds: 10,
            nanos: 0,
        }),
        until: Some(Timestamp {
            seconds: 20,
            nanos: 0,
        }),
        first: false,
        field_mask: Some(FieldMask {
            paths: vec!["time".into(), "source.pod_name".into()],
        }),
        ..Default::default()
    };
    let whitelist = W::default()
        .str(2, "default/xwing")
        .packed(5, &[2, 3]) // repeated enums are packed in proto3
        .packed(19, &[2])
        .msg(23, W::default().uint(2, 1).uint(5, 1));
    let want = W::default()
        .uint(1, 20)
        .uint(3, 1)
        .msg(5, W::default().str(4, "kube-system/"))
        .msg(6, whitelist)
        .msg(7, W::default().uint(1, 10))
        .msg(8, W::default().uint(1, 20))
        .msg(10, W::default().str(1, "time").str(1, "source.pod_name"));
    assert_eq!(req.encode_to_vec(), want.0);
    assert_eq!(GetFlowsRequest::decode(want.0.as_slice()).unwrap(), req);
}

#[test]
fn get_flows_response_variants_encode_to_the_field_table() {
    let time = Some(Timestamp {
        seconds: 1_700_000_000,
        nanos: 5,
    });
    let flow_resp = GetFlowsResponse {
        response_types: Some(ResponseTypes::Flow(sample_flow())),
        node_name: "node".into(),
        time,
    };
    let want = W::default()
        .msg(1, sample_flow_bytes())
        .str(1000, "node")
        .msg(1001, ts(1_700_000_000, 5));
    assert_eq!(flow_resp.encode_to_vec(), want.0);

    let lost = GetFlowsResponse {
        response_types: Some(ResponseTypes::LostEvents(LostEvent {
            source: flow::LostEventSource::HubbleRingBuffer as i32,
            num_events_lost: 7,
            cpu: Some(Int32Value { value: 1 }),
            first: None,
            last: None,
        })),
        node_name: String::new(),
        time: None,
    };
    let want = W::default().msg(
        3,
        W::default()
            .uint(1, 3)
            .uint(2, 7)
            .msg(3, W::default().uint(1, 1)),
    );
    assert_eq!(lost.encode_to_vec(), want.0);

    let status = GetFlowsResponse {
        response_types: Some(ResponseTypes::NodeStatus(NodeStatusEvent {
            state_change: NodeState::NodeError as i32,
            node_names: vec!["a".into(), "b".into()],
            message: "boom".into(),
        })),
        node_name: String::new(),
        time: None,
    };
    let want = W::default().msg(
        2,
        W::default()
            .uint(1, 4)
            .str(2, "a")
            .str(2, "b")
            .str(3, "boom"),
    );
    assert_eq!(status.encode_to_vec(), want.0);
}

#[test]
fn server_status_encodes_to_the_field_table() {
    let s = ServerStatusResponse {
        num_flows: 4095,
        max_flows: 4095,
        seen_flows: 100_000,
        uptime_ns: 1,
        num_connected_nodes: Some(UInt32Value { value: 3 }),
        num_unavailable_nodes: Some(UInt32Value { value: 0 }),
        unavailable_nodes: vec!["n4".into()],
        version: "1.19.4".into(),
        flows_rate: 12.5,
    };
    let want = W::default()
        .uint(1, 4095)
        .uint(2, 4095)
        .uint(3, 100_000)
        .uint(4, 1)
        .msg(5, W::default().uint(1, 3))
        .msg(6, W::default())
        .str(7, "n4")
        .str(8, "1.19.4")
        .double(9, 12.5);
    assert_eq!(s.encode_to_vec(), want.0);
}

#[test]
fn peer_notification_encodes_to_the_field_table() {
    let n = ChangeNotification {
        name: "kind/worker".into(),
        address: "10.0.0.3:4244".into(),
        r#type: ChangeNotificationType::PeerUpdated as i32,
        tls: Some(Tls {
            server_name: "worker.kind.hubble-grpc.cilium.io".into(),
        }),
    };
    let want = W::default()
        .str(1, "kind/worker")
        .str(2, "10.0.0.3:4244")
        .uint(3, 3)
        .msg(4, W::default().str(1, "worker.kind.hubble-grpc.cilium.io"));
    assert_eq!(n.encode_to_vec(), want.0);
}

#[test]
fn service_and_method_names_match_upstream() {
    // The gRPC paths the stock Hubble CLI calls.
    let fds = prost_types_free_descriptor_names();
    for want in [
        "flow/flow.proto",
        "observer/observer.proto",
        "peer/peer.proto",
        "relay/relay.proto",
    ] {
        assert!(fds.iter().any(|n| n == want), "missing {want} in {fds:?}");
    }
    assert_eq!(
        <proto::observer::observer_server::ObserverServer<Dummy> as tonic::server::NamedService>::NAME,
        "observer.Observer"
    );
    assert_eq!(
        <proto::peer::peer_server::PeerServer<DummyPeer> as tonic::server::NamedService>::NAME,
        "peer.Peer"
    );
}

/// File names in the embedded descriptor set, read with the tiny decoder
/// above's inverse: field 1 (repeated FileDescriptorProto), its field 1 (name).
fn prost_types_free_descriptor_names() -> Vec<String> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct FileSet {
        #[prost(message, repeated, tag = "1")]
        file: Vec<File>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct File {
        #[prost(string, tag = "1")]
        name: String,
    }
    FileSet::decode(proto::FILE_DESCRIPTOR_SET)
        .unwrap()
        .file
        .into_iter()
        .map(|f| f.name)
        .collect()
}

struct Dummy;
#[tonic::async_trait]
impl proto::observer::observer_server::Observer for Dummy {
    type GetFlowsStream = tokio_stream::Empty<Result<GetFlowsResponse, tonic::Status>>;
    type GetAgentEventsStream =
        tokio_stream::Empty<Result<proto::observer::GetAgentEventsResponse, tonic::Status>>;
    type GetDebugEventsStream =
        tokio_stream::Empty<Result<proto::observer::GetDebugEventsResponse, tonic::Status>>;
    async fn get_flows(
        &self,
        _: tonic::Request<GetFlowsRequest>,
    ) -> Result<tonic::Response<Self::GetFlowsStream>, tonic::Status> {
        Err(tonic::Status::unimplemented(""))
    }
    async fn get_agent_events(
        &self,
        _: tonic::Request<proto::observer::GetAgentEventsRequest>,
    ) -> Result<tonic::Response<Self::GetAgentEventsStream>, tonic::Status> {
        Err(tonic::Status::unimplemented(""))
    }
    async fn get_debug_events(
        &self,
        _: tonic::Request<proto::observer::GetDebugEventsRequest>,
    ) -> Result<tonic::Response<Self::GetDebugEventsStream>, tonic::Status> {
        Err(tonic::Status::unimplemented(""))
    }
    async fn get_nodes(
        &self,
        _: tonic::Request<proto::observer::GetNodesRequest>,
    ) -> Result<tonic::Response<proto::observer::GetNodesResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented(""))
    }
    async fn get_namespaces(
        &self,
        _: tonic::Request<proto::observer::GetNamespacesRequest>,
    ) -> Result<tonic::Response<proto::observer::GetNamespacesResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented(""))
    }
    async fn server_status(
        &self,
        _: tonic::Request<proto::observer::ServerStatusRequest>,
    ) -> Result<tonic::Response<ServerStatusResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented(""))
    }
}

struct DummyPeer;
#[tonic::async_trait]
impl proto::peer::peer_server::Peer for DummyPeer {
    type NotifyStream = tokio_stream::Empty<Result<ChangeNotification, tonic::Status>>;
    async fn notify(
        &self,
        _: tonic::Request<proto::peer::NotifyRequest>,
    ) -> Result<tonic::Response<Self::NotifyStream>, tonic::Status> {
        Err(tonic::Status::unimplemented(""))
    }
}

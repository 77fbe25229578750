//! The relay's gRPC side: Hubble's `observer.Observer` over the whole
//! cluster, `grpc.health.v1.Health` (SERVING for `hubble.server.Observer`,
//! which `hubble status` checks), server reflection and the
//! `hubble-relay-version` header on every response.
//!
//! The Observer service sits behind `svc::grpc_layers`' tower stack
//! (request metrics, a GetFlows stream limit, a timeout on unary calls
//! only, load shedding) on a server with HTTP/2 keepalive to clients;
//! [`router_with`] sets its limits, [`default_limits`] come from
//! `defaults.rs`.
//!
//! GetFlows is answered through [`RelayRoutes`]: its responses go out
//! through [`crate::wire::RelayCodec`], so the peers' flows are written as
//! the bytes the peers sent (see [`crate::wire`]).

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use futures::Stream;
use proto::observer::observer_server::{Observer, ObserverServer};
use proto::observer::{
    GetAgentEventsRequest, GetAgentEventsResponse, GetDebugEventsRequest, GetDebugEventsResponse,
    GetFlowsRequest, GetFlowsResponse, GetNamespacesRequest, GetNamespacesResponse,
    GetNodesRequest, GetNodesResponse, Namespace, Node, ServerStatusRequest, ServerStatusResponse,
    Tls,
};
use proto::relay::NodeState;
use proto::wkt::UInt32Value;
use tonic::metadata::{KeyAndValueRef, MetadataMap, MetadataValue};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::defaults;
use crate::flows::{self, FlowsConfig};
use crate::pool::{PeerView, Pool, status_text};
use crate::wire::Out;
use tonic::codegen::BoxFuture;

/// The gRPC path of GetFlows, answered by [`RelayRoutes`].
const GET_FLOWS_PATH: &str = "/observer.Observer/GetFlows";

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

fn with_version<T>(mut r: Response<T>) -> Response<T> {
    r.metadata_mut().insert(
        "hubble-relay-version",
        MetadataValue::from_static(defaults::RELAY_VERSION),
    );
    r
}

/// The request metadata the relay passes on to every peer, as Hubble's
/// relay does (it forwards the incoming metadata of GetFlows, ServerStatus,
/// GetNodes and GetNamespaces): `authorization` and any custom entry.
/// gRPC's own (`grpc-*`: timeout, encodings) and HTTP connection headers
/// describe the client's call, not the peer's, and are left out.
pub fn forwarded_metadata(incoming: &MetadataMap) -> MetadataMap {
    fn forwardable(key: &str) -> bool {
        !key.starts_with("grpc-")
            && !key.starts_with(':')
            && !matches!(
                key,
                "te" | "content-type"
                    | "content-length"
                    | "user-agent"
                    | "host"
                    | "connection"
                    | "keep-alive"
                    | "proxy-connection"
                    | "transfer-encoding"
                    | "upgrade"
                    | "accept-encoding"
            )
    }
    let mut out = MetadataMap::new();
    for kv in incoming.iter() {
        match kv {
            KeyAndValueRef::Ascii(k, v) if forwardable(k.as_str()) => {
                out.append(k.clone(), v.clone());
            }
            KeyAndValueRef::Binary(k, v) if forwardable(k.as_str()) => {
                out.append_bin(k.clone(), v.clone());
            }
            _ => {}
        }
    }
    out
}

/// A peer request carrying the forwarded metadata.
fn peer_request<T>(msg: T, metadata: &MetadataMap) -> Request<T> {
    Request::from_parts(metadata.clone(), Default::default(), msg)
}

/// The relay's Observer service.
#[derive(Debug, Clone)]
pub struct RelayService {
    pool: Pool,
    cfg: FlowsConfig,
}

impl RelayService {
    /// Serves the peers of `pool`.
    pub fn new(pool: Pool, cfg: FlowsConfig) -> Self {
        RelayService { pool, cfg }
    }
}

/// Why a peer gave no answer in a fan-out.
#[derive(Debug)]
enum PeerFailure {
    /// Not connected, or no answer within the timeout (hung): the node is
    /// `NODE_UNAVAILABLE`.
    Unavailable,
    /// It answered with an error: `NODE_ERROR`.
    Error,
}

/// Calls `f` on every available peer concurrently, each with the peer
/// request timeout; unavailable peers give `Err` without a call.
async fn fan_out<T, F, Fut>(peers: &[PeerView], f: F) -> Vec<Result<T, PeerFailure>>
where
    F: Fn(Channel) -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let calls = peers.iter().map(|p| {
        let call = p.channel.clone().filter(|_| p.is_available()).map(&f);
        async move {
            let Some(call) = call else {
                return Err(PeerFailure::Unavailable);
            };
            match tokio::time::timeout(defaults::PEER_REQUEST_TIMEOUT, call).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(s)) => {
                    tracing::debug!(peer = %p.name, error = %status_text(&s), "peer call failed");
                    Err(PeerFailure::Error)
                }
                Err(_) => {
                    tracing::debug!(peer = %p.name, timeout = ?defaults::PEER_REQUEST_TIMEOUT, "peer did not answer");
                    Err(PeerFailure::Unavailable)
                }
            }
        }
    });
    futures::future::join_all(calls).await
}

async fn peer_status(ch: Channel, md: MetadataMap) -> Result<ServerStatusResponse, Status> {
    use proto::observer::observer_client::ObserverClient;
    Ok(ObserverClient::new(ch)
        .server_status(peer_request(ServerStatusRequest {}, &md))
        .await?
        .into_inner())
}

#[tonic::async_trait]
impl Observer for RelayService {
    type GetFlowsStream = BoxStream<GetFlowsResponse>;
    type GetAgentEventsStream = BoxStream<GetAgentEventsResponse>;
    type GetDebugEventsStream = BoxStream<GetDebugEventsResponse>;

    async fn get_flows(
        &self,
        request: Request<GetFlowsRequest>,
    ) -> Result<Response<Self::GetFlowsStream>, Status> {
        let md = forwarded_metadata(request.metadata());
        // Served by [`RelayRoutes`] through the byte codec; this decoded
        // form is for a caller of the generated service.
        use futures::StreamExt as _;
        let s = flows::get_flows(&self.pool, &self.cfg, request.into_inner(), md)?;
        let s = s.into_stream().map(|r| r.and_then(Out::into_message));
        Ok(with_version(Response::new(Box::pin(s))))
    }

    async fn get_agent_events(
        &self,
        _request: Request<GetAgentEventsRequest>,
    ) -> Result<Response<Self::GetAgentEventsStream>, Status> {
        Err(Status::unimplemented(
            "GetAgentEvents is not implemented by the relay (as Hubble's relay); ask a node's exporter",
        ))
    }

    async fn get_debug_events(
        &self,
        _request: Request<GetDebugEventsRequest>,
    ) -> Result<Response<Self::GetDebugEventsStream>, Status> {
        Err(Status::unimplemented(
            "GetDebugEvents is not implemented by the relay (as Hubble's relay); ask a node's exporter",
        ))
    }

    async fn server_status(
        &self,
        request: Request<ServerStatusRequest>,
    ) -> Result<Response<ServerStatusResponse>, Status> {
        let md = forwarded_metadata(request.metadata());
        let peers = self.pool.peers();
        let answers = fan_out(&peers, |ch| peer_status(ch, md.clone())).await;
        let mut out = ServerStatusResponse {
            version: defaults::RELAY_VERSION.to_owned(),
            ..Default::default()
        };
        let (mut connected, mut unavailable) = (0u32, Vec::new());
        for (p, a) in peers.iter().zip(answers) {
            match a {
                Ok(s) => {
                    connected += 1;
                    out.num_flows += s.num_flows;
                    out.max_flows += s.max_flows;
                    out.seen_flows += s.seen_flows;
                    out.flows_rate += s.flows_rate;
                    out.uptime_ns = out.uptime_ns.max(s.uptime_ns);
                }
                Err(_) => unavailable.push(p.name.clone()),
            }
        }
        out.num_connected_nodes = Some(UInt32Value::from(connected));
        out.num_unavailable_nodes = Some(UInt32Value::from(unavailable.len() as u32));
        unavailable.truncate(defaults::MAX_UNAVAILABLE_NODES);
        out.unavailable_nodes = unavailable;
        Ok(with_version(Response::new(out)))
    }

    async fn get_nodes(
        &self,
        request: Request<GetNodesRequest>,
    ) -> Result<Response<GetNodesResponse>, Status> {
        let md = forwarded_metadata(request.metadata());
        let peers = self.pool.peers();
        let answers = fan_out(&peers, |ch| peer_status(ch, md.clone())).await;
        let nodes = peers
            .iter()
            .zip(answers)
            .map(|(p, a)| {
                let mut n = Node {
                    name: p.name.clone(),
                    address: p.address.clone(),
                    tls: Some(Tls {
                        enabled: p.tls_server_name.is_some(),
                        server_name: p.tls_server_name.clone().unwrap_or_default(),
                    }),
                    ..Default::default()
                };
                match a {
                    Ok(s) => {
                        n.state = NodeState::NodeConnected as i32;
                        n.version = s.version;
                        n.uptime_ns = s.uptime_ns;
                        n.num_flows = s.num_flows;
                        n.max_flows = s.max_flows;
                        n.seen_flows = s.seen_flows;
                    }
                    Err(PeerFailure::Unavailable) => n.state = NodeState::NodeUnavailable as i32,
                    Err(PeerFailure::Error) => n.state = NodeState::NodeError as i32,
                }
                n
            })
            .collect();
        Ok(with_version(Response::new(GetNodesResponse { nodes })))
    }

    async fn get_namespaces(
        &self,
        request: Request<GetNamespacesRequest>,
    ) -> Result<Response<GetNamespacesResponse>, Status> {
        use proto::observer::observer_client::ObserverClient;
        let md = forwarded_metadata(request.metadata());
        let peers = self.pool.peers();
        let answers = fan_out(&peers, |ch| {
            let req = peer_request(GetNamespacesRequest {}, &md);
            async move {
                Ok(ObserverClient::new(ch)
                    .get_namespaces(req)
                    .await?
                    .into_inner())
            }
        })
        .await;
        // Failing peers are skipped: partial results beat none.
        let set: BTreeSet<(String, String)> = answers
            .into_iter()
            .flatten()
            .flat_map(|r| r.namespaces)
            .map(|n| (n.cluster, n.namespace))
            .collect();
        let namespaces = set
            .into_iter()
            .map(|(cluster, namespace)| Namespace { cluster, namespace })
            .collect();
        Ok(with_version(Response::new(GetNamespacesResponse {
            namespaces,
        })))
    }
}

/// The methods served through the tower stack, with their kind: the
/// streaming ones take a slot of `--max-concurrent-streams`, the unary ones
/// are bounded by [`defaults::UNARY_TIMEOUT`].
pub const METHODS: svc::grpc_layers::Methods = {
    use svc::grpc_layers::Kind::{Stream, Unary};
    &[
        ("observer.Observer/GetFlows", Stream),
        ("observer.Observer/GetAgentEvents", Stream),
        ("observer.Observer/GetDebugEvents", Stream),
        ("observer.Observer/ServerStatus", Unary),
        ("observer.Observer/GetNodes", Unary),
        ("observer.Observer/GetNamespaces", Unary),
    ]
};

/// The relay's default server limits (see `defaults.rs` for each reason).
pub fn default_limits() -> svc::grpc_layers::Limits {
    svc::grpc_layers::Limits {
        max_streams: defaults::MAX_CONCURRENT_STREAMS,
        max_requests: defaults::MAX_CONCURRENT_REQUESTS,
        unary_timeout: defaults::UNARY_TIMEOUT,
        keepalive_interval: defaults::SERVER_KEEPALIVE_INTERVAL,
        keepalive_timeout: defaults::SERVER_KEEPALIVE_TIMEOUT,
    }
}

/// The Observer, health and reflection services, ready to be served, with
/// the [`default_limits`].
pub async fn router(
    pool: Pool,
    cfg: FlowsConfig,
) -> anyhow::Result<tonic::transport::server::Router> {
    router_with(pool, cfg, default_limits()).await
}

/// [`router`] with `limits`: the Observer service sits behind
/// `svc::grpc_layers`' stack (request metrics into the pool's metrics,
/// stream limit, unary timeout, load shedding), on a server with HTTP/2
/// keepalive; health and reflection stay outside it, so an overloaded
/// relay still passes its probes.
pub async fn router_with(
    pool: Pool,
    cfg: FlowsConfig,
    limits: svc::grpc_layers::Limits,
) -> anyhow::Result<tonic::transport::server::Router> {
    use anyhow::Context as _;
    let stack = svc::grpc_layers::Stack::new(limits, METHODS, pool.metrics().grpc().clone());
    Ok(proto::services::standard_services(limits.server())
        .await
        .context("building the gRPC reflection service")?
        .add_service(stack.wrap(relay_routes(RelayService::new(pool, cfg)))))
}

/// The relay's Observer service with GetFlows answered through
/// [`RelayCodec`](crate::wire::RelayCodec): the peers' flows go out as the bytes they sent. Every
/// other method (and everything about GetFlows but its response encoding:
/// validation, errors, the version header) is the generated server's.
pub type RelayRoutes = svc::grpc_codec::StreamingOverride<
    ObserverServer<RelayService>,
    GetFlowsForwarded,
    GetFlowsRequest,
    Out,
>;

/// [`RelayRoutes`] serving `service`.
pub fn relay_routes(service: RelayService) -> RelayRoutes {
    let service = std::sync::Arc::new(service);
    RelayRoutes::new(
        ObserverServer::from_arc(service.clone()),
        GET_FLOWS_PATH,
        GetFlowsForwarded(service),
    )
}

/// GetFlows as a streaming method of [`RelayCodec`](crate::wire::RelayCodec).
#[derive(Clone)]
pub struct GetFlowsForwarded(std::sync::Arc<RelayService>);

impl tonic::server::ServerStreamingService<GetFlowsRequest> for GetFlowsForwarded {
    type Response = Out;
    type ResponseStream = BoxStream<Out>;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<GetFlowsRequest>) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move {
            let md = forwarded_metadata(request.metadata());
            let s = flows::get_flows(&service.pool, &service.cfg, request.into_inner(), md)?;
            let stream: Self::ResponseStream = Box::pin(s.into_stream());
            Ok(with_version(Response::new(stream)))
        })
    }
}

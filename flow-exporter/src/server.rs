//! The gRPC side: Hubble's `observer.Observer` and `peer.Peer` services over
//! the node's [`Observer`], plus `grpc.health.v1.Health` (SERVING for
//! `hubble.server.Observer`, which `hubble status` checks) and server
//! reflection (`hubble reflect`), on TCP or a unix socket.
//! `peer.Peer/Notify` announces the cluster's nodes from the enrichment
//! file ([`ServerOptions::cluster_nodes`], see [`crate::peers`]), or the node
//! itself without a list.
//!
//! Observer and Peer sit behind `svc::grpc_layers`' tower stack (request
//! metrics, a stream limit for GetFlows and Notify together, a timeout on
//! unary calls only, load shedding) on a server with HTTP/2 keepalive;
//! [`ServerOptions`] sets its limits, [`default_limits`] come from
//! `defaults.rs`.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use proto::observer::observer_server::{Observer as ObserverApi, ObserverServer};
use proto::observer::{
    GetAgentEventsRequest, GetAgentEventsResponse, GetDebugEventsRequest, GetDebugEventsResponse,
    GetFlowsRequest, GetFlowsResponse, GetNamespacesRequest, GetNamespacesResponse,
    GetNodesRequest, GetNodesResponse, Namespace, Node, ServerStatusRequest, ServerStatusResponse,
    Tls,
};
use proto::peer::peer_server::{Peer, PeerServer};
use proto::peer::{ChangeNotification, NotifyRequest};
use proto::relay::NodeState;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

use crate::defaults;
use crate::observer::Observer;
use crate::peers;
use crate::served::Served;
use tonic::codegen::BoxFuture;

/// Where the gRPC server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddress {
    /// `host:port`.
    Tcp(std::net::SocketAddr),
    /// A unix socket path (`unix:///path` or a path containing `/`).
    Unix(PathBuf),
}

impl std::str::FromStr for ListenAddress {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(p) = s.strip_prefix("unix://") {
            return Ok(ListenAddress::Unix(PathBuf::from(p)));
        }
        if s.starts_with('/') || s.starts_with("./") {
            return Ok(ListenAddress::Unix(PathBuf::from(s)));
        }
        let s2 = if s.starts_with(':') {
            format!("0.0.0.0{s}")
        } else {
            s.to_owned()
        };
        s2.parse().map(ListenAddress::Tcp).map_err(|_| {
            format!("invalid listen address {s:?}: expected host:port, :port or a unix socket path")
        })
    }
}

impl std::fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddress::Tcp(a) => write!(f, "{a}"),
            ListenAddress::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

/// The gRPC path of GetFlows, answered by [`ObserverRoutes`].
const GET_FLOWS_PATH: &str = "/observer.Observer/GetFlows";

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

fn with_version<T>(mut r: Response<T>) -> Response<T> {
    r.metadata_mut().insert(
        "hubble-server-version",
        MetadataValue::from_static(defaults::SERVER_VERSION),
    );
    r
}

/// The Observer service of one node.
#[derive(Debug, Clone)]
pub struct ObserverService {
    observer: Arc<Observer>,
    address: String,
    tls_server_name: Option<String>,
}

impl ObserverService {
    /// Serves `observer`; `address` is what GetNodes and Peer.Notify report.
    pub fn new(observer: Arc<Observer>, address: impl Into<String>) -> Self {
        ObserverService {
            observer,
            address: address.into(),
            tls_server_name: None,
        }
    }

    /// Reports TLS with this server name in GetNodes.
    pub fn with_tls_server_name(mut self, name: Option<String>) -> Self {
        self.tls_server_name = name;
        self
    }
}

#[tonic::async_trait]
impl ObserverApi for ObserverService {
    type GetFlowsStream = BoxStream<GetFlowsResponse>;
    type GetAgentEventsStream = BoxStream<GetAgentEventsResponse>;
    type GetDebugEventsStream = BoxStream<GetDebugEventsResponse>;

    async fn get_flows(
        &self,
        request: Request<GetFlowsRequest>,
    ) -> Result<Response<Self::GetFlowsStream>, Status> {
        let markers = crate::progress::Markers::from_metadata(request.metadata())?;
        let rx = self
            .observer
            .get_flows_with_markers(request.into_inner(), markers)?;
        Ok(with_version(Response::new(Box::pin(ReceiverStream::new(
            rx,
        )))))
    }

    async fn get_agent_events(
        &self,
        _request: Request<GetAgentEventsRequest>,
    ) -> Result<Response<Self::GetAgentEventsStream>, Status> {
        Err(Status::unimplemented(
            "GetAgentEvents is not implemented by flow-exporter: agent events are not collected; use `datapath monitor` on the node",
        ))
    }

    async fn get_debug_events(
        &self,
        _request: Request<GetDebugEventsRequest>,
    ) -> Result<Response<Self::GetDebugEventsStream>, Status> {
        Err(Status::unimplemented(
            "GetDebugEvents is not implemented by flow-exporter: the datapath emits no debug events",
        ))
    }

    async fn get_nodes(
        &self,
        _request: Request<GetNodesRequest>,
    ) -> Result<Response<GetNodesResponse>, Status> {
        let s = self.observer.status();
        let node = Node {
            name: self.observer.node_name().to_owned(),
            version: defaults::SERVER_VERSION.to_owned(),
            address: self.address.clone(),
            state: NodeState::NodeConnected as i32,
            tls: Some(Tls {
                enabled: self.tls_server_name.is_some(),
                server_name: self.tls_server_name.clone().unwrap_or_default(),
            }),
            uptime_ns: s.uptime_ns,
            num_flows: s.num_flows,
            max_flows: s.max_flows,
            seen_flows: s.seen_flows,
        };
        Ok(with_version(Response::new(GetNodesResponse {
            nodes: vec![node],
        })))
    }

    async fn get_namespaces(
        &self,
        _request: Request<GetNamespacesRequest>,
    ) -> Result<Response<GetNamespacesResponse>, Status> {
        let namespaces = self
            .observer
            .namespaces()
            .into_iter()
            .map(|(cluster, namespace)| Namespace { cluster, namespace })
            .collect();
        Ok(with_version(Response::new(GetNamespacesResponse {
            namespaces,
        })))
    }

    async fn server_status(
        &self,
        _request: Request<ServerStatusRequest>,
    ) -> Result<Response<ServerStatusResponse>, Status> {
        let s = self.observer.status();
        Ok(with_version(Response::new(ServerStatusResponse {
            num_flows: s.num_flows,
            max_flows: s.max_flows,
            seen_flows: s.seen_flows,
            uptime_ns: s.uptime_ns,
            // An agent leaves the node counts unset; only a relay fills them.
            num_connected_nodes: None,
            num_unavailable_nodes: None,
            unavailable_nodes: Vec::new(),
            version: defaults::SERVER_VERSION.to_owned(),
            flows_rate: s.flows_rate,
        })))
    }
}

/// `peer.Peer/Notify`: the cluster's nodes from the enrichment file's node
/// list as PEER_ADDED, then the changes of each reload (see [`peers`]);
/// while the list is empty, or without a file, the node itself, then
/// nothing until the client goes away.
#[derive(Debug, Clone)]
pub struct PeerService {
    me: peers::SelfNode,
    nodes: Option<peers::NodesWatch>,
    observer: Option<Arc<Observer>>,
}

impl PeerService {
    /// Announces one peer.
    pub fn new(name: impl Into<String>, address: impl Into<String>) -> Self {
        PeerService {
            me: peers::SelfNode {
                name: name.into(),
                address: address.into(),
                tls_server_name: None,
            },
            nodes: None,
            observer: None,
        }
    }

    /// Ends every Notify stream when `observer` closes (shutdown).
    pub fn ending_with(mut self, observer: Arc<Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Announces the peer as serving TLS under this name (`peer.TLS`), and
    /// the cluster's nodes as serving TLS.
    pub fn with_tls_server_name(mut self, name: Option<String>) -> Self {
        self.me.tls_server_name = name;
        self
    }

    /// Announces the cluster's nodes from this list as it changes.
    pub fn with_cluster_nodes(mut self, nodes: Option<peers::NodesWatch>) -> Self {
        self.nodes = nodes;
        self
    }
}

#[tonic::async_trait]
impl Peer for PeerService {
    type NotifyStream = BoxStream<ChangeNotification>;

    async fn notify(
        &self,
        _request: Request<NotifyRequest>,
    ) -> Result<Response<Self::NotifyStream>, Status> {
        let s = peers::notify_stream(self.me.clone(), self.nodes.clone()).map(Ok);
        match &self.observer {
            Some(o) => {
                let s = s.take_until(o.until_closed());
                Ok(with_version(Response::new(Box::pin(s))))
            }
            None => Ok(with_version(Response::new(Box::pin(s)))),
        }
    }
}

use futures::StreamExt as _;

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
        ("peer.Peer/Notify", Stream),
    ]
};

/// The exporter's default server limits (see `defaults.rs` for each reason).
pub fn default_limits() -> svc::grpc_layers::Limits {
    svc::grpc_layers::Limits {
        max_streams: defaults::MAX_CONCURRENT_STREAMS,
        max_requests: defaults::MAX_CONCURRENT_REQUESTS,
        unary_timeout: defaults::UNARY_TIMEOUT,
        keepalive_interval: defaults::GRPC_KEEPALIVE_INTERVAL,
        keepalive_timeout: defaults::GRPC_KEEPALIVE_TIMEOUT,
    }
}

/// The gRPC server's limits and the metrics its stack counts into.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Stream and request limits, unary timeout, HTTP/2 keepalive.
    pub limits: svc::grpc_layers::Limits,
    /// Request metrics: [`Metrics::grpc`](crate::metrics::Metrics::grpc)
    /// to have them on `/metrics`.
    pub metrics: svc::grpc_layers::GrpcMetrics,
    /// The cluster's node list Peer.Notify announces
    /// ([`EnrichmentFile::nodes`](crate::sources::enrichment::EnrichmentFile::nodes));
    /// `None`: the node itself only.
    pub cluster_nodes: Option<peers::NodesWatch>,
}

impl Default for ServerOptions {
    /// The [`default_limits`], counting into metrics nobody serves.
    fn default() -> Self {
        ServerOptions {
            limits: default_limits(),
            metrics: Default::default(),
            cluster_nodes: None,
        }
    }
}

/// The Observer, Peer, health and reflection services of one node, ready
/// to be served; `advertised` is the address GetNodes and Peer.Notify report.
pub async fn router(
    observer: Arc<Observer>,
    advertised: String,
) -> anyhow::Result<tonic::transport::server::Router> {
    router_with_tls(observer, advertised, None).await
}

/// [`router`] for a server that serves TLS as `tls_server_name` (the
/// node's Hubble server name): GetNodes and Peer.Notify say so.
pub async fn router_with_tls(
    observer: Arc<Observer>,
    advertised: String,
    tls_server_name: Option<String>,
) -> anyhow::Result<tonic::transport::server::Router> {
    router_with_options(
        observer,
        advertised,
        tls_server_name,
        &ServerOptions::default(),
    )
    .await
}

/// [`router_with_tls`] with these limits, metrics and cluster node list.
/// Observer and Peer sit
/// behind one `svc::grpc_layers` stack (so the stream limit counts GetFlows
/// and Notify together), on a server with HTTP/2 keepalive; health and
/// reflection stay outside it, so an overloaded exporter still passes its
/// probes.
pub async fn router_with_options(
    observer: Arc<Observer>,
    advertised: String,
    tls_server_name: Option<String>,
    opts: &ServerOptions,
) -> anyhow::Result<tonic::transport::server::Router> {
    use anyhow::Context as _;
    let stack = svc::grpc_layers::Stack::new(opts.limits, METHODS, opts.metrics.clone());
    Ok(proto::services::standard_services(opts.limits.server())
        .await
        .context("building the gRPC reflection service")?
        .add_service(
            stack.wrap(observer_routes(
                ObserverService::new(observer.clone(), advertised.clone())
                    .with_tls_server_name(tls_server_name.clone()),
            )),
        )
        .add_service(
            stack.wrap(PeerServer::new(
                PeerService::new(observer.node_name(), advertised)
                    .ending_with(observer.clone())
                    .with_tls_server_name(tls_server_name)
                    .with_cluster_nodes(opts.cluster_nodes.clone()),
            )),
        ))
}

/// Serves [`router`] on `addr` until `shutdown` resolves, with TLS on a
/// TCP address when `tls` is given (a unix socket is always plain text, as
/// a Cilium agent's). A stale unix socket is removed first, and the socket
/// is removed again on exit.
pub async fn serve(
    addr: ListenAddress,
    observer: Arc<Observer>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with_options(addr, observer, tls, ServerOptions::default(), shutdown).await
}

/// [`serve`] with these limits and metrics ([`router_with_options`]).
pub async fn serve_with_options(
    addr: ListenAddress,
    observer: Arc<Observer>,
    tls: Option<Arc<rustls::ServerConfig>>,
    opts: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let tls = match (&addr, tls) {
        (ListenAddress::Tcp(_), t) => t,
        (ListenAddress::Unix(_), Some(_)) => {
            tracing::warn!(address = %addr, "TLS applies to a TCP listen address; the unix socket is served in plain text");
            None
        }
        (ListenAddress::Unix(_), None) => None,
    };
    let server_name = tls
        .as_ref()
        .map(|_| svc::tls::hubble_server_name(observer.node_name()));
    let router = router_with_options(observer, addr.to_string(), server_name, &opts).await?;
    match addr {
        ListenAddress::Tcp(a) => {
            let l = tokio::net::TcpListener::bind(a).await.with_context(|| {
                format!(
                    "listen on {a} for gRPC (is another exporter or hubble relay running there?)"
                )
            })?;
            match tls {
                Some(cfg) => router
                    .serve_with_incoming_shutdown(svc::tls::incoming(l, cfg), shutdown)
                    .await
                    .context("gRPC server")?,
                None => {
                    // Nagle plus delayed ACKs would hold small follow
                    // messages for tens of milliseconds on loopback.
                    let incoming =
                        tonic::transport::server::TcpIncoming::from(l).with_nodelay(Some(true));
                    router
                        .serve_with_incoming_shutdown(incoming, shutdown)
                        .await
                        .context("gRPC server")?;
                }
            }
        }
        ListenAddress::Unix(p) => {
            remove_stale_socket(&p)?;
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("create {}", dir.display()))?;
            }
            let l = tokio::net::UnixListener::bind(&p)
                .with_context(|| format!("listen on unix socket {}", p.display()))?;
            let incoming = tokio_stream::wrappers::UnixListenerStream::new(l);
            let r = router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await;
            let _ = std::fs::remove_file(&p);
            r.context("gRPC server")?;
        }
    }
    Ok(())
}

fn remove_stale_socket(p: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::FileTypeExt as _;
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(p).is_ok() {
                anyhow::bail!("{} is in use by another server", p.display());
            }
            std::fs::remove_file(p)?;
            Ok(())
        }
        Ok(_) => anyhow::bail!(
            "{} exists and is not a socket; refusing to replace it",
            p.display()
        ),
        Err(_) => Ok(()),
    }
}

/// The Observer service with GetFlows answered through [`FlowsCodec`](crate::served::FlowsCodec):
/// stored flows go out as the bytes encoded once in their ring slot. Every
/// other method (and everything about GetFlows but its response encoding:
/// validation, errors, the version header) is the generated server's.
pub type ObserverRoutes = svc::grpc_codec::StreamingOverride<
    ObserverServer<ObserverService>,
    GetFlowsServed,
    GetFlowsRequest,
    Served,
>;

/// [`ObserverRoutes`] serving `service`.
pub fn observer_routes(service: ObserverService) -> ObserverRoutes {
    let service = Arc::new(service);
    ObserverRoutes::new(
        ObserverServer::from_arc(service.clone()),
        GET_FLOWS_PATH,
        GetFlowsServed(service),
    )
}

/// GetFlows as a streaming method of [`FlowsCodec`](crate::served::FlowsCodec).
#[derive(Clone)]
pub struct GetFlowsServed(Arc<ObserverService>);

impl tonic::server::ServerStreamingService<GetFlowsRequest> for GetFlowsServed {
    type Response = Served;
    type ResponseStream = BoxStream<Served>;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<GetFlowsRequest>) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move {
            let markers = crate::progress::Markers::from_metadata(request.metadata())?;
            let rx = service
                .observer
                .get_flows_served(request.into_inner(), markers)?;
            let stream: Self::ResponseStream = Box::pin(ReceiverStream::new(rx));
            Ok(with_version(Response::new(stream)))
        })
    }
}

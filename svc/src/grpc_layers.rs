//! The tower stack in front of a daemon's gRPC API services (Hubble's
//! Observer and Peer), in the style of linkerd2-proxy's stacks: one layer
//! per concern, each with the reason it sits where it does. From the
//! outside in ([`Stack::wrap`]):
//!
//! 1. **record**: counts every answer by method and gRPC code
//!    (`<prefix>_requests_total`) and keeps the open-streams gauge
//!    (`<prefix>_streams`). Outermost, so the rejections and timeouts of
//!    the layers below are counted too.
//! 2. **stream limit**: a streaming call (GetFlows, Peer.Notify) takes a
//!    permit of a semaphore with `try_acquire`; none left answers
//!    `RESOURCE_EXHAUSTED` at once, naming the limit. The permit moves into
//!    the response body, so it is held until the stream ends or the client
//!    goes away (the body is dropped), not just until the handler returns.
//! 3. **unary timeout**: a unary call (ServerStatus, GetNodes,
//!    GetNamespaces) is answered within the timeout or gets
//!    `DEADLINE_EXCEEDED`. Streams are exempt: a follow is meant to last.
//!    Below the stream limit, so it never runs for a call already rejected.
//! 4. **load shed** over a **concurrency limit**: at most so many handlers
//!    run at once (every unary call for its whole life, a stream until it
//!    returns its response stream); one more is shed with
//!    `RESOURCE_EXHAUSTED` instead of waiting, because tower's
//!    `ConcurrencyLimit` alone queues the call, which a client sees as a
//!    hang. Innermost, next to the handler whose work it bounds.
//!
//! The connection-level limits (HTTP/2 keepalive, HTTP/2 streams per
//! connection) are set on the server builder by [`Limits::server`].
//! Health and reflection are served outside the stack: an overloaded
//! server must still answer its liveness probe, or it is restarted and
//! every client loses its stream at once.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::{Code, Status};
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceBuilder};

type HttpRequest = http::Request<Body>;
type HttpResponse = http::Response<Body>;
type BoxFuture = Pin<Box<dyn Future<Output = Result<HttpResponse, Infallible>> + Send>>;

/// How a method answers: one message, or a stream of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One response message.
    Unary,
    /// A stream of responses (server streaming or bidirectional).
    Stream,
}

/// The methods a daemon serves through the stack: the gRPC path without
/// its leading `/` (`observer.Observer/GetFlows`) and its kind. A path not
/// listed is counted as method `other` and treated as unary, so a client
/// inventing method names cannot create metric series.
pub type Methods = &'static [(&'static str, Kind)];

fn classify(methods: Methods, path: &str) -> (&'static str, Kind) {
    let p = path.strip_prefix('/').unwrap_or(path);
    methods
        .iter()
        .find(|(m, _)| *m == p)
        .copied()
        .unwrap_or(("other", Kind::Unary))
}

/// The limits of one server; each daemon takes them from its `defaults.rs`
/// and its command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Streaming calls open at once on the server.
    pub max_streams: usize,
    /// Handlers running at once on the server (beyond them: shed).
    pub max_requests: usize,
    /// Longest a unary call may take.
    pub unary_timeout: Duration,
    /// HTTP/2 keepalive ping interval to clients.
    pub keepalive_interval: Duration,
    /// How long a keepalive ping may stay unanswered before the
    /// connection (and every stream on it, with its permit) is dropped.
    pub keepalive_timeout: Duration,
}

impl Limits {
    /// The server builder with the connection-level settings:
    ///
    /// - HTTP/2 keepalive: a client that vanished without closing its TCP
    ///   connection (power loss, partition) would otherwise hold its follow
    ///   stream, and its stream permit, forever.
    /// - HTTP/2 streams per connection: `max_streams + max_requests`, so a
    ///   single connection can reach the server-wide limits (which answer
    ///   `RESOURCE_EXHAUSTED` with a reason) before HTTP/2's own, which a
    ///   client only sees as its calls queueing.
    ///
    /// Not set, on purpose: `concurrency_limit_per_connection` (a tower
    /// `ConcurrencyLimit`, which makes a call over the limit wait, and
    /// counts a follow stream only until its headers) and `timeout` (it
    /// would apply to every call; the stack times out unary calls only).
    pub fn server(&self) -> tonic::transport::Server {
        let per_connection = self.max_streams.saturating_add(self.max_requests);
        tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(self.keepalive_interval))
            .http2_keepalive_timeout(Some(self.keepalive_timeout))
            .max_concurrent_streams(u32::try_from(per_connection).unwrap_or(u32::MAX))
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    method: &'static str,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
}

/// The request metrics of one server; register them in the daemon's
/// registry under its prefix with [`GrpcMetrics::register`].
#[derive(Debug, Clone, Default)]
pub struct GrpcMetrics {
    requests: Family<CallLabels, Counter>,
    streams: Family<MethodLabels, Gauge>,
}

impl GrpcMetrics {
    /// Registers `requests` (a counter: `_total`) and `streams` in
    /// `registry`, typically `registry.sub_registry_with_prefix("x_grpc")`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "requests",
            "gRPC calls answered, by method and gRPC status code",
            self.requests.clone(),
        );
        registry.register(
            "streams",
            "Streaming gRPC calls open, by method",
            self.streams.clone(),
        );
    }

    fn answered(&self, method: &'static str, code: Code) {
        self.requests
            .get_or_create(&CallLabels {
                method,
                code: code_name(code),
            })
            .inc();
    }

    fn streams_add(&self, method: &'static str, n: i64) {
        self.streams
            .get_or_create(&MethodLabels { method })
            .inc_by(n);
    }
}

/// The canonical name of a gRPC code, as in the gRPC spec and Prometheus
/// exporters of other gRPC servers.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<Code> {
    let v = headers.get("grpc-status")?.to_str().ok()?;
    Some(Code::from(v.parse::<i32>().ok()?))
}

/// The stack of one server, shared by every service it wraps (so the
/// limits are per server, not per service).
#[derive(Debug, Clone)]
pub struct Stack {
    limits: Limits,
    methods: Methods,
    metrics: GrpcMetrics,
    streams: Arc<Semaphore>,
    requests: tower::limit::GlobalConcurrencyLimitLayer,
}

impl Stack {
    /// A stack enforcing `limits` on `methods`, counting into `metrics`.
    pub fn new(limits: Limits, methods: Methods, metrics: GrpcMetrics) -> Self {
        Stack {
            limits,
            methods,
            metrics,
            streams: Arc::new(Semaphore::new(limits.max_streams)),
            requests: tower::limit::GlobalConcurrencyLimitLayer::new(limits.max_requests),
        }
    }

    /// `svc` behind the stack (see the module docs for the order and why).
    pub fn wrap<S>(&self, svc: S) -> Stacked<S>
    where
        S: Service<HttpRequest, Response = HttpResponse, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let max_requests = self.limits.max_requests;
        let inner = ServiceBuilder::new()
            // 1. Outermost: sees every answer, the stack's own included.
            .layer(StepLayer(Record {
                methods: self.methods,
                metrics: self.metrics.clone(),
            }))
            // 2. Streams: admitted or refused at once, permit in the body.
            .layer(StepLayer(StreamLimit {
                methods: self.methods,
                permits: self.streams.clone(),
                max: self.limits.max_streams,
            }))
            // 3. Unary calls only: bounded in time.
            .layer(StepLayer(UnaryTimeout {
                methods: self.methods,
                timeout: self.limits.unary_timeout,
            }))
            // 4a. Turns the shed error into a status the client can read.
            .layer(ShedStatusLayer { max_requests })
            // 4b. Refuses instead of waiting when 4c has no permit left.
            .load_shed()
            // 4c. Bounds the handlers running at once, across services.
            .layer(self.requests.clone())
            .service(svc);
        Stacked {
            inner: BoxCloneSyncService::new(inner),
            _named: PhantomData,
        }
    }
}

/// A service behind the [`Stack`], under the name of the service it wraps
/// (what tonic's router routes by).
pub struct Stacked<S> {
    inner: BoxCloneSyncService<HttpRequest, HttpResponse, Infallible>,
    _named: PhantomData<fn() -> S>,
}

impl<S> Clone for Stacked<S> {
    fn clone(&self) -> Self {
        Stacked {
            inner: self.inner.clone(),
            _named: PhantomData,
        }
    }
}

impl<S> std::fmt::Debug for Stacked<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stacked").finish_non_exhaustive()
    }
}

impl<S: NamedService> NamedService for Stacked<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<HttpRequest> for Stacked<S> {
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: HttpRequest) -> BoxFuture {
        Box::pin(self.inner.call(req))
    }
}

// --- the steps' one Layer/Service ---------------------------------------

/// The service a step wraps: everything below it in the stack.
trait Inner:
    Service<HttpRequest, Response = HttpResponse, Error = Infallible, Future: Send + 'static>
    + Clone
    + Send
    + 'static
{
}

impl<S> Inner for S where
    S: Service<HttpRequest, Response = HttpResponse, Error = Infallible, Future: Send + 'static>
        + Clone
        + Send
        + 'static
{
}

/// One layer of the stack, written as what it does around the inner call
/// ([`StepLayer`] and [`StepService`] supply tower's `Layer` and `Service`).
trait Step: Clone + Send + 'static {
    fn call<S: Inner>(&self, inner: &mut S, req: HttpRequest) -> BoxFuture;
}

#[derive(Debug, Clone)]
struct StepLayer<T>(T);

impl<T: Clone, S> Layer<S> for StepLayer<T> {
    type Service = StepService<T, S>;
    fn layer(&self, inner: S) -> StepService<T, S> {
        StepService {
            step: self.0.clone(),
            inner,
        }
    }
}

#[derive(Debug, Clone)]
struct StepService<T, S> {
    step: T,
    inner: S,
}

impl<T: Step, S: Inner> Service<HttpRequest> for StepService<T, S> {
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: HttpRequest) -> BoxFuture {
        self.step.call(&mut self.inner, req)
    }
}

// --- 1. record -----------------------------------------------------------

#[derive(Debug, Clone)]
struct Record {
    methods: Methods,
    metrics: GrpcMetrics,
}

impl Step for Record {
    fn call<S: Inner>(&self, inner: &mut S, req: HttpRequest) -> BoxFuture {
        let (method, kind) = classify(self.methods, req.uri().path());
        let metrics = self.metrics.clone();
        let call = inner.call(req);
        Box::pin(async move {
            let resp = call.await?;
            // An error before any message (trailers-only): the code is in
            // the headers and the body is empty.
            if let Some(code) = grpc_status(resp.headers()) {
                metrics.answered(method, code);
                return Ok(resp);
            }
            let stream = kind == Kind::Stream;
            if stream {
                metrics.streams_add(method, 1);
            }
            Ok(resp.map(|inner| {
                Body::new(Recorded {
                    inner,
                    recording: Some(Recording {
                        metrics,
                        method,
                        stream,
                    }),
                })
            }))
        })
    }
}

struct Recording {
    metrics: GrpcMetrics,
    method: &'static str,
    stream: bool,
}

/// A response body that counts the call's code when its trailers pass
/// (or `CANCELLED` when it is dropped before: the client went away).
struct Recorded {
    inner: Body,
    recording: Option<Recording>,
}

impl Recorded {
    fn finish(&mut self, code: Code) {
        if let Some(r) = self.recording.take() {
            r.metrics.answered(r.method, code);
            if r.stream {
                r.metrics.streams_add(r.method, -1);
            }
        }
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        self.finish(Code::Cancelled);
    }
}

impl http_body::Body for Recorded {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        match &r {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(t) = f.trailers_ref() {
                    let code = grpc_status(t).unwrap_or(Code::Unknown);
                    self.finish(code);
                }
            }
            Poll::Ready(Some(Err(s))) => self.finish(s.code()),
            // Ended without trailers: no status was sent.
            Poll::Ready(None) => self.finish(Code::Unknown),
            Poll::Pending => {}
        }
        r
    }

    // Not ended while the code is still to be counted, so that
    // `Body::new` keeps the wrapper and `poll_frame` sees the end.
    fn is_end_stream(&self) -> bool {
        self.recording.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

// --- 2. stream limit -----------------------------------------------------

#[derive(Debug, Clone)]
struct StreamLimit {
    methods: Methods,
    permits: Arc<Semaphore>,
    max: usize,
}

impl Step for StreamLimit {
    fn call<S: Inner>(&self, inner: &mut S, req: HttpRequest) -> BoxFuture {
        let (_, kind) = classify(self.methods, req.uri().path());
        if kind != Kind::Stream {
            return Box::pin(inner.call(req));
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            let max = self.max;
            return Box::pin(async move {
                Ok(Status::resource_exhausted(format!(
                    "too many streams: this server serves at most {max} streaming calls at once \
                     (--max-concurrent-streams); retry later"
                ))
                .into_http())
            });
        };
        let call = inner.call(req);
        Box::pin(async move {
            let resp = call.await?;
            Ok(resp.map(|inner| {
                Body::new(Holding {
                    inner,
                    _permit: permit,
                })
            }))
        })
    }
}

/// A response body holding the stream's permit until it is dropped.
struct Holding {
    inner: Body,
    _permit: OwnedSemaphorePermit,
}

impl http_body::Body for Holding {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    // An empty body (a trailers-only error) is ended at once: `Body::new`
    // then drops it, and the permit with it, which is right: no stream.
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

// --- 3. unary timeout ----------------------------------------------------

#[derive(Debug, Clone)]
struct UnaryTimeout {
    methods: Methods,
    timeout: Duration,
}

impl Step for UnaryTimeout {
    fn call<S: Inner>(&self, inner: &mut S, req: HttpRequest) -> BoxFuture {
        let (_, kind) = classify(self.methods, req.uri().path());
        let call = inner.call(req);
        if kind == Kind::Stream {
            return Box::pin(call);
        }
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, call).await {
                Ok(r) => r,
                Err(_) => Ok(Status::deadline_exceeded(format!(
                    "the server gives a unary call at most {timeout:?}"
                ))
                .into_http()),
            }
        })
    }
}

// --- 4a. shed status -----------------------------------------------------

#[derive(Debug, Clone)]
struct ShedStatusLayer {
    max_requests: usize,
}

impl<S> Layer<S> for ShedStatusLayer {
    type Service = ShedStatus<S>;
    fn layer(&self, inner: S) -> ShedStatus<S> {
        ShedStatus {
            inner,
            max_requests: self.max_requests,
        }
    }
}

#[derive(Debug, Clone)]
struct ShedStatus<S> {
    inner: S,
    max_requests: usize,
}

fn shed_status(max_requests: usize, e: tower::BoxError) -> HttpResponse {
    let status = if e.is::<tower::load_shed::error::Overloaded>() {
        Status::resource_exhausted(format!(
            "server overloaded: it handles at most {max_requests} requests at once \
             (--max-concurrent-requests); retry later"
        ))
    } else {
        Status::from_error(e)
    };
    status.into_http()
}

impl<S> Service<HttpRequest> for ShedStatus<S>
where
    S: Service<HttpRequest, Response = HttpResponse, Error = tower::BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = BoxFuture;

    // `LoadShed` is always ready (that is its point): an error here is a
    // broken inner service, and the call reports it.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        match self.inner.poll_ready(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(_) => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, req: HttpRequest) -> BoxFuture {
        let call = self.inner.call(req);
        let max = self.max_requests;
        Box::pin(async move { Ok(call.await.unwrap_or_else(|e| shed_status(max, e))) })
    }
}

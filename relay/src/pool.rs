//! The peer pool: one long-lived gRPC connection per peer, each kept by its
//! own task that dials with exponential backoff (1 s doubling to 1 min),
//! probes the connection while it is up (ServerStatus every 5 s, and at
//! once when a request saw the peer's stream fail) and redials when it is
//! lost. Requests read the pool's state ([`Pool::peers`]) and are told of
//! every change ([`Pool::subscribe`]).
//!
//! A peer is *available* only in [`ConnState::Ready`]: connected and its
//! last probe answered. A new connection becomes ready only once it has
//! answered a probe within the peer timeout: a TCP connect (and tonic's
//! HTTP/2 handshake, which does not wait for the peer's SETTINGS) succeeds
//! against a stopped process, whose kernel accepts for it. The connection
//! also sends HTTP/2 keepalive pings, idle or not, so every stream on a
//! hung peer's connection fails within the keepalive interval plus the
//! peer timeout even between probes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use proto::observer::ServerStatusRequest;
use proto::observer::observer_client::ObserverClient;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

use crate::defaults;
use crate::metrics::{Metrics, PeerErrorKind};
use crate::peers::{PeerSpec, derived_server_name};
use svc::tls::ClientTls;

pub use crate::conn_state::ConnState;

/// How the pool connects.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Timeout of one dial.
    pub dial_timeout: Duration,
    /// First backoff after a failed dial.
    pub backoff_min: Duration,
    /// Longest backoff.
    pub backoff_max: Duration,
    /// Probe interval of a connected peer.
    pub probe_interval: Duration,
    /// How long a probe or a keepalive ping may stay unanswered before the
    /// peer counts as hung.
    pub peer_timeout: Duration,
    /// HTTP/2 keepalive ping interval on peer connections.
    pub keepalive_interval: Duration,
    /// TLS to peers; plain text when `None`.
    pub tls: Option<ClientTls>,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            dial_timeout: defaults::DIAL_TIMEOUT,
            backoff_min: defaults::BACKOFF_MIN,
            backoff_max: defaults::BACKOFF_MAX,
            probe_interval: defaults::PROBE_INTERVAL,
            peer_timeout: defaults::PEER_TIMEOUT,
            keepalive_interval: defaults::KEEPALIVE_INTERVAL,
            tls: None,
        }
    }
}

/// Exponential backoff: `min`, doubled per failure, capped at `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A backoff starting at `min`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max: max.max(min),
            next: min,
        }
    }

    /// The wait before the next attempt; doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    /// Back to `min` after a success.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

/// A peer as requests see it.
#[derive(Debug, Clone)]
pub struct PeerView {
    /// Node name.
    pub name: String,
    /// gRPC address.
    pub address: String,
    /// TLS server name checked, when TLS is used.
    pub tls_server_name: Option<String>,
    /// Connection state.
    pub state: ConnState,
    /// The connection, when ready.
    pub channel: Option<Channel>,
    /// Why the last dial or probe failed.
    pub last_error: Option<String>,
}

impl PeerView {
    /// Whether requests may use the peer.
    pub fn is_available(&self) -> bool {
        self.state == ConnState::Ready && self.channel.is_some()
    }
}

#[derive(Debug)]
struct PeerStatus {
    state: ConnState,
    channel: Option<Channel>,
    last_error: Option<String>,
}

#[derive(Debug)]
struct PeerShared {
    status: Mutex<PeerStatus>,
    check: Notify,
}

#[derive(Debug)]
struct Entry {
    spec: PeerSpec,
    shared: Arc<PeerShared>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct Inner {
    opts: PoolOptions,
    metrics: Arc<Metrics>,
    peers: Mutex<BTreeMap<String, Entry>>,
    changed: watch::Sender<u64>,
    closed: std::sync::atomic::AtomicBool,
}

impl Inner {
    /// Recounts the per-state gauge and wakes subscribers.
    fn changed(&self) {
        let counts: Vec<(ConnState, i64)> = {
            let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
            peers
                .values()
                .map(|e| (lock(&e.shared.status).state, 1))
                .collect()
        };
        self.metrics.set_peer_states(&counts);
        self.changed.send_modify(|g| *g = g.wrapping_add(1));
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let peers = self.peers.get_mut().unwrap_or_else(|e| e.into_inner());
        for e in peers.values() {
            e.task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The set of peers and their connections. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

impl Pool {
    /// An empty pool.
    pub fn new(opts: PoolOptions, metrics: Arc<Metrics>) -> Self {
        let (changed, _) = watch::channel(0);
        let p = Pool {
            inner: Arc::new(Inner {
                opts,
                metrics,
                peers: Mutex::new(BTreeMap::new()),
                changed,
                closed: std::sync::atomic::AtomicBool::new(false),
            }),
        };
        p.inner.changed();
        p
    }

    /// The metrics the pool reports into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Adds a peer, or updates it: a known peer is reconnected only if its
    /// address or TLS server name changed (as Hubble's pool does).
    pub fn upsert(&self, spec: PeerSpec) {
        {
            let mut peers = lock(&self.inner.peers);
            if let Some(e) = peers.get(&spec.name) {
                if e.spec == spec {
                    return;
                }
                e.task.abort();
                tracing::info!(peer = %spec.name, address = %spec.address, "peer updated; reconnecting");
            } else {
                tracing::info!(peer = %spec.name, address = %spec.address, "peer added");
            }
            let shared = Arc::new(PeerShared {
                status: Mutex::new(PeerStatus {
                    state: ConnState::Idle,
                    channel: None,
                    last_error: None,
                }),
                check: Notify::new(),
            });
            let task = tokio::spawn(run_peer(
                spec.clone(),
                shared.clone(),
                Arc::downgrade(&self.inner),
            ));
            peers.insert(spec.name.clone(), Entry { spec, shared, task });
        }
        self.inner.changed();
    }

    /// Removes a peer and closes its connection. Returns whether it was
    /// known.
    pub fn remove(&self, name: &str) -> bool {
        let e = lock(&self.inner.peers).remove(name);
        match e {
            Some(e) => {
                e.task.abort();
                lock(&e.shared.status).state = ConnState::Shutdown;
                self.inner.metrics.forget_peer(name);
                tracing::info!(peer = %name, "peer removed");
                self.inner.changed();
                true
            }
            None => false,
        }
    }

    /// Every peer, sorted by name.
    pub fn peers(&self) -> Vec<PeerView> {
        let peers = lock(&self.inner.peers);
        peers
            .values()
            .map(|e| {
                let s = lock(&e.shared.status);
                PeerView {
                    name: e.spec.name.clone(),
                    address: e.spec.address.clone(),
                    tls_server_name: self.inner.opts.tls.as_ref().map(|_| server_name(&e.spec)),
                    state: s.state,
                    channel: s.channel.clone(),
                    last_error: s.last_error.clone(),
                }
            })
            .collect()
    }

    /// Names of the peers currently known.
    pub fn names(&self) -> Vec<String> {
        lock(&self.inner.peers).keys().cloned().collect()
    }

    /// A request saw `name`'s stream fail: probe it now rather than at the
    /// next interval, so a dead peer is marked unavailable at once.
    pub fn report_stream_failure(&self, name: &str) {
        self.inner.metrics.peer_error(name, PeerErrorKind::Stream);
        if let Some(e) = lock(&self.inner.peers).get(name) {
            e.shared.check.notify_one();
        }
    }

    /// Wakes on every peer addition, removal and state change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }

    /// Closes every connection and tells running requests to end (at
    /// shutdown).
    pub fn shutdown(&self) {
        self.inner
            .closed
            .store(true, std::sync::atomic::Ordering::Release);
        let names = self.names();
        for n in names {
            self.remove(&n);
        }
        self.inner.changed();
    }

    /// Whether [`Pool::shutdown`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(std::sync::atomic::Ordering::Acquire)
    }
}

fn server_name(spec: &PeerSpec) -> String {
    spec.tls_server_name
        .clone()
        .unwrap_or_else(|| derived_server_name(&spec.name))
}

fn endpoint(spec: &PeerSpec, opts: &PoolOptions) -> Result<Endpoint, String> {
    // The URI only carries settings when a connector dials (unix socket,
    // TLS); for a unix socket it must merely parse.
    let uri = if spec.address.starts_with("unix://") {
        "http://localhost".to_owned()
    } else {
        format!("http://{}", spec.address)
    };
    Ok(Endpoint::from_shared(uri)
        .map_err(|e| format!("invalid peer address {:?}: {e}", spec.address))?
        .connect_timeout(opts.dial_timeout)
        .tcp_nodelay(true)
        .max_frame_size(defaults::PEER_MAX_FRAME_SIZE)
        .http2_keep_alive_interval(opts.keepalive_interval)
        .keep_alive_timeout(opts.peer_timeout)
        .keep_alive_while_idle(true))
}

/// Why a dial failed.
#[derive(Debug, thiserror::Error)]
enum DialError {
    #[error(transparent)]
    Transport(#[from] tonic::transport::Error),
    #[error(transparent)]
    Tls(#[from] svc::tls::TlsError),
}

async fn dial(
    spec: &PeerSpec,
    e: &Endpoint,
    tls: Option<&ClientTls>,
) -> Result<Channel, DialError> {
    if let Some(path) = spec.address.strip_prefix("unix://") {
        let path = path.to_owned();
        Ok(e.connect_with_connector(tower::service_fn(move |_| {
            let p = path.clone();
            async move {
                let s = tokio::net::UnixStream::connect(p).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
            }
        }))
        .await?)
    } else if let Some(tls) = tls {
        Ok(
            e.connect_with_connector(tls.connector(&spec.address, &server_name(spec))?)
                .await?,
        )
    } else {
        Ok(e.connect().await?)
    }
}

/// Error text with its sources, as one line; a source already quoted by
/// the text before it is not repeated.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    append_sources(&mut s, e.source());
    s
}

fn append_sources(s: &mut String, mut src: Option<&(dyn std::error::Error + 'static)>) {
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
}

/// Keeps one peer's connection: dial with backoff, probe while up.
async fn run_peer(spec: PeerSpec, shared: Arc<PeerShared>, pool: Weak<Inner>) {
    let set = |state: ConnState, channel: Option<Channel>, err: Option<String>| {
        {
            let mut s = lock(&shared.status);
            s.state = state;
            s.channel = channel;
            if err.is_some() || state == ConnState::Ready {
                s.last_error = err;
            }
        }
        // The pool is gone: the task has nothing left to do.
        match pool.upgrade() {
            Some(p) => {
                p.changed();
                true
            }
            None => false,
        }
    };
    let Some(p) = pool.upgrade() else { return };
    let opts = p.opts.clone();
    let metrics = p.metrics.clone();
    drop(p);
    let ep = match endpoint(&spec, &opts) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(peer = %spec.name, error = %e, "peer cannot be dialled");
            set(ConnState::NilConnection, None, Some(e));
            return;
        }
    };
    let mut backoff = Backoff::new(opts.backoff_min, opts.backoff_max);
    loop {
        if !set(ConnState::Connecting, None, None) {
            return;
        }
        let r = tokio::time::timeout(opts.dial_timeout, dial(&spec, &ep, opts.tls.as_ref())).await;
        let err = match r {
            Ok(Ok(ch)) => match probe(&mut ObserverClient::new(ch.clone()), &opts).await {
                Err(e) => format!("connected, but {e}"),
                Ok(()) => {
                    tracing::info!(peer = %spec.name, address = %spec.address, "peer connected");
                    backoff.reset();
                    if !set(ConnState::Ready, Some(ch.clone()), None) {
                        return;
                    }
                    let e = supervise(&ch, &shared, &opts).await;
                    metrics.peer_error(&spec.name, PeerErrorKind::Probe);
                    tracing::warn!(peer = %spec.name, error = %e, "peer connection lost; redialling");
                    if !set(ConnState::TransientFailure, None, Some(e)) {
                        return;
                    }
                    // Redial at once: the peer may have restarted.
                    continue;
                }
            },
            Ok(Err(e)) => error_chain(&e),
            Err(_) => format!("dial timed out after {:?}", opts.dial_timeout),
        };
        metrics.peer_error(&spec.name, PeerErrorKind::Dial);
        let wait = backoff.next_delay();
        tracing::debug!(peer = %spec.name, error = %err, retry_in = ?wait, "dial failed");
        if !set(ConnState::TransientFailure, None, Some(err)) {
            return;
        }
        tokio::time::sleep(wait).await;
    }
}

/// Probes a connected peer until a probe fails; returns why.
async fn supervise(ch: &Channel, shared: &PeerShared, opts: &PoolOptions) -> String {
    let mut client = ObserverClient::new(ch.clone());
    loop {
        tokio::select! {
            () = tokio::time::sleep(opts.probe_interval) => {}
            () = shared.check.notified() => {}
        }
        if let Err(e) = probe(&mut client, opts).await {
            return e;
        }
    }
}

/// One probe: a ServerStatus answered within the peer timeout.
async fn probe(client: &mut ObserverClient<Channel>, opts: &PoolOptions) -> Result<(), String> {
    match tokio::time::timeout(
        opts.peer_timeout,
        client.server_status(ServerStatusRequest {}),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(s)) => Err(format!("probe failed: {}", status_text(&s))),
        Err(_) => Err(format!(
            "no answer to a probe within {:?} (the node is hung or overloaded)",
            opts.peer_timeout
        )),
    }
}

/// A status as one line: the message, with the source chain of transport
/// errors.
pub(crate) fn status_text(s: &tonic::Status) -> String {
    use std::error::Error as _;
    let mut t = if s.message().is_empty() {
        format!("{:?}", s.code())
    } else {
        s.message().to_owned()
    };
    append_sources(&mut t, s.source());
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let got: Vec<u64> = (0..9).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn unreachable_peer_is_redialled_with_backoff() {
        // A port nothing listens on: every dial fails fast.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let metrics = Arc::new(Metrics::new());
        let pool = Pool::new(PoolOptions::default(), metrics.clone());
        pool.upsert(PeerSpec {
            name: "n1".into(),
            address: format!("127.0.0.1:{port}"),
            tls_server_name: None,
        });
        let dials = || {
            metrics
                .encode()
                .lines()
                .find(|l| l.starts_with(r#"hubble_relay_peer_errors_total{peer="n1",kind="dial"}"#))
                .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // Dials at t = 0, 1, 3, 7, 15 s (waits 1, 2, 4, 8), each failing at
        // once or, with the paused clock, by its 5 s timeout.
        let mut rx = pool.subscribe();
        let start = tokio::time::Instant::now();
        while dials() < 5 {
            rx.changed().await.unwrap();
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_secs(15) && elapsed < Duration::from_secs(41),
            "{elapsed:?}"
        );
        let v = &pool.peers()[0];
        assert!(!v.is_available());
        assert!(v.last_error.is_some());
        assert!(pool.remove("n1"));
        assert!(pool.peers().is_empty());
    }
}

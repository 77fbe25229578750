//! `relay`: the cluster-wide Hubble relay binary. See the library docs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{ArgGroup, Parser};
use relay::{FlowsConfig, PoolOptions, Relay, RelayConfig, defaults, discovery, metrics, peers};

/// Cluster-wide Hubble relay: serves Hubble's Observer API (`hubble
/// observe`, `hubble status`, `hubble list nodes`, Hubble UI) over every
/// node's flow exporter.
///
/// GetFlows fans out to every connected node and merges the streams by
/// time: non-follow queries come out in exact time order and `--last N`
/// means the N most recent flows of the whole cluster (Hubble's relay
/// gives N per node); follow queries are ordered within a window (see
/// --sort-buffer-drain-timeout). Node failures show up in the stream as
/// NODE_ERROR / NODE_UNAVAILABLE events; nodes that come back are used
/// again without any client action.
///
/// A hung node (stopped process, stuck event loop: its kernel still
/// accepts connections) is found by probes and HTTP/2 keepalive pings that
/// go unanswered (--probe-interval, --peer-timeout,
/// --peer-keepalive-interval): follow clients get NODE_UNAVAILABLE within
/// 10 s by default and NODE_CONNECTED when it is back, and a non-follow
/// query waits at most --peer-deadline for a silent node and names it
/// instead of hanging.
#[derive(Debug, Parser)]
#[command(name = "relay", version, about, long_about)]
#[command(group(ArgGroup::new("discovery").required(true).multiple(true).args(["peers", "peer_service"])))]
struct Args {
    /// gRPC address to serve on: host:port or :port (all interfaces).
    #[arg(long, env = "RELAY_LISTEN_ADDRESS", default_value = defaults::LISTEN_ADDRESS)]
    listen_address: String,

    /// Prometheus /metrics address (host:port); "off" disables it.
    #[arg(long, env = "RELAY_METRICS_ADDRESS", default_value = defaults::METRICS_ADDRESS)]
    metrics_address: String,

    /// Static peers: comma-separated host[:port] or name=host[:port]
    /// (default port 4244). A peer without a name is named by its address.
    #[arg(long, value_name = "LIST", env = "RELAY_PEERS")]
    peers: Option<String>,

    /// Peer service to follow with peer.Peer/Notify (host[:port], default
    /// port 4244, or unix:///var/run/cilium/hubble.sock); nodes it adds,
    /// updates and deletes are applied at runtime. On TCP it is dialled
    /// with the TLS settings of the peers (--tls-hubble-server-ca-files,
    /// --tls-client-cert-file) when they are given, and its certificate
    /// must name hubble-peer.<cluster>.hubble-grpc.cilium.io.
    #[arg(long, value_name = "ADDR", env = "RELAY_PEER_SERVICE")]
    peer_service: Option<String>,

    /// Name of the cluster this relay serves; names the peer service's TLS
    /// server name (hubble-peer.<cluster>.hubble-grpc.cilium.io).
    #[arg(long, value_name = "NAME", env = "RELAY_CLUSTER_NAME", default_value = defaults::CLUSTER_NAME)]
    cluster_name: String,

    /// This relay's name in node status and lost events (default: the host
    /// name).
    #[arg(long)]
    node_name: Option<String>,

    /// Timeout of one dial to a peer or the peer service.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    dial_timeout: Duration,

    /// How often a connected node is probed (ServerStatus); a probe not
    /// answered within --peer-timeout marks it unavailable
    /// (NODE_UNAVAILABLE to follow clients).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    probe_interval: Duration,

    /// How long a node may leave a probe or an HTTP/2 keepalive ping
    /// unanswered before it counts as hung; a new connection is used only
    /// once it answered a probe within this time.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    peer_timeout: Duration,

    /// HTTP/2 keepalive ping interval on node connections (also while
    /// idle): a hung node's streams fail within this plus --peer-timeout
    /// even between probes.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    peer_keepalive_interval: Duration,

    /// Non-follow queries: longest wait for a node's next response while
    /// the time-ordered answer cannot go on without it; a node silent that
    /// long is left out and named in a NODE_UNAVAILABLE event.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    peer_deadline: Duration,

    /// Wait before reconnecting to the peer service after its stream broke.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    retry_timeout: Duration,

    /// Follow mode: most flows held per client for sorting; beyond it the
    /// oldest is sent early.
    #[arg(long, default_value_t = defaults::SORT_BUFFER_LEN)]
    sort_buffer_len_max: usize,

    /// Follow mode: the sorting window. Output is in exact time order while
    /// every node is sending; a node whose flows reach the relay this much
    /// or more later than newer flows of other nodes is sent out of
    /// order. No flow is held longer than this.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    sort_buffer_drain_timeout: Duration,

    /// Identical node errors within this window become one NODE_ERROR
    /// event naming every node.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    error_aggregation_window: Duration,

    /// Responses queued per follow client; a slower client loses the oldest
    /// (reported to it as a LostEvent, counted in
    /// hubble_relay_flows_dropped_total).
    #[arg(long, default_value_t = defaults::CLIENT_QUEUE_LEN)]
    client_queue_len: usize,

    /// Client streaming calls (GetFlows) served at once; one more is
    /// refused at once with RESOURCE_EXHAUSTED naming this limit, and a
    /// closed stream frees its slot (open ones: hubble_relay_grpc_streams).
    #[arg(long, value_name = "N", default_value_t = defaults::MAX_CONCURRENT_STREAMS)]
    max_concurrent_streams: usize,

    /// Client calls being handled at once (a unary call until it answers,
    /// a stream until it starts); one more is refused with
    /// RESOURCE_EXHAUSTED instead of waiting.
    #[arg(long, value_name = "N", default_value_t = defaults::MAX_CONCURRENT_REQUESTS)]
    max_concurrent_requests: usize,

    /// PEM CA bundle(s) that signed the nodes' certificates (comma
    /// separated). Enables TLS to peers and to a TCP --peer-service; each
    /// node's certificate must name <node>.<cluster>.hubble-grpc.cilium.io
    /// or the server name the peer service announces.
    #[arg(long, value_name = "FILES", value_delimiter = ',')]
    tls_hubble_server_ca_files: Vec<PathBuf>,

    /// PEM client certificate presented to peers (mTLS).
    #[arg(long, value_name = "FILE", requires = "tls_client_key_file")]
    tls_client_cert_file: Option<PathBuf>,

    /// PEM key of --tls-client-cert-file.
    #[arg(long, value_name = "FILE", requires = "tls_client_cert_file")]
    tls_client_key_file: Option<PathBuf>,

    /// PEM certificate of this relay's server (enables TLS for clients).
    #[arg(long, value_name = "FILE", requires = "tls_relay_server_key_file")]
    tls_relay_server_cert_file: Option<PathBuf>,

    /// PEM key of --tls-relay-server-cert-file.
    #[arg(long, value_name = "FILE", requires = "tls_relay_server_cert_file")]
    tls_relay_server_key_file: Option<PathBuf>,

    /// PEM CA bundle(s) client certificates must chain to (mTLS for
    /// clients; comma separated).
    #[arg(
        long,
        value_name = "FILES",
        value_delimiter = ',',
        requires = "tls_relay_server_cert_file"
    )]
    tls_relay_client_ca_files: Vec<PathBuf>,
}

/// `500ms`, `1s`, `2m`, `1h`, or plain seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 500ms, 1s, 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit in {s:?}: use ms, s, m or h")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

fn parse_listen(s: &str) -> anyhow::Result<SocketAddr> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_owned()
    };
    full.parse()
        .with_context(|| format!("invalid --listen-address {s:?}: expected host:port or :port"))
}

/// TLS to the peers: on when CA files are given (as Hubble's relay); a
/// client certificate without them is a mistake, not plain text.
fn peer_tls(args: &Args) -> anyhow::Result<Option<svc::tls::ClientTls>> {
    if args.tls_hubble_server_ca_files.is_empty() {
        anyhow::ensure!(
            args.tls_client_cert_file.is_none(),
            "a client certificate needs --tls-hubble-server-ca-files (TLS to peers)"
        );
        return Ok(None);
    }
    Ok(Some(svc::tls::ClientTls::load(&svc::tls::ClientOptions {
        ca_files: args.tls_hubble_server_ca_files.clone(),
        cert_file: args.tls_client_cert_file.clone(),
        key_file: args.tls_client_key_file.clone(),
        allow_insecure: false,
    })?))
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    svc::run("relay", || run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let relay_name = match args.node_name.clone() {
        Some(n) => n,
        None => hostname::get()
            .context("read the host name (pass --node-name)")?
            .to_string_lossy()
            .into_owned(),
    };
    for (flag, d) in [
        ("--probe-interval", args.probe_interval),
        ("--peer-timeout", args.peer_timeout),
        ("--peer-keepalive-interval", args.peer_keepalive_interval),
        ("--peer-deadline", args.peer_deadline),
    ] {
        anyhow::ensure!(!d.is_zero(), "{flag} must be above 0 (got {d:?})");
    }
    let static_peers = match &args.peers {
        Some(list) => peers::parse_static(list).context("--peers")?,
        None => Vec::new(),
    };
    let client_tls = peer_tls(&args).context("TLS to peers")?;
    let server_tls = match (
        &args.tls_relay_server_cert_file,
        &args.tls_relay_server_key_file,
    ) {
        (Some(c), Some(k)) => Some(
            svc::tls::server_config(c, k, &args.tls_relay_client_ca_files)
                .context("relay server TLS")?,
        ),
        _ => None,
    };
    let listen = parse_listen(&args.listen_address)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listen on {listen} for gRPC (is another relay running?)"))?;
    let metrics = Arc::new(metrics::Metrics::new());
    let metrics_server = if args.metrics_address != "off" && !args.metrics_address.is_empty() {
        let addr: SocketAddr = args.metrics_address.parse().with_context(|| {
            format!(
                "invalid --metrics-address {:?}: expected host:port",
                args.metrics_address
            )
        })?;
        Some(svc::metrics::MetricsServer::bind(addr).await?)
    } else {
        None
    };

    let cfg = RelayConfig {
        flows: FlowsConfig {
            relay_name: relay_name.clone(),
            sort_window: args.sort_buffer_drain_timeout,
            sort_buffer_len: args.sort_buffer_len_max.max(1),
            client_queue_len: args.client_queue_len.max(1),
            error_window: args.error_aggregation_window,
            peer_deadline: args.peer_deadline,
        },
        pool: PoolOptions {
            dial_timeout: args.dial_timeout,
            probe_interval: args.probe_interval,
            peer_timeout: args.peer_timeout,
            keepalive_interval: args.peer_keepalive_interval,
            tls: client_tls.clone(),
            ..PoolOptions::default()
        },
        static_peers,
        peer_service: args
            .peer_service
            .clone()
            .map(|address| discovery::DiscoveryOptions {
                address,
                dial_timeout: args.dial_timeout,
                retry_timeout: args.retry_timeout,
                tls: client_tls.clone(),
                cluster_name: args.cluster_name.clone(),
            }),
    };
    let relay = Relay::start(cfg, metrics.clone());
    let router = relay
        .router_with(svc::grpc_layers::Limits {
            max_streams: args.max_concurrent_streams.max(1),
            max_requests: args.max_concurrent_requests.max(1),
            ..relay::server::default_limits()
        })
        .await?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let tls_on = server_tls.is_some();
    let mut grpc = match server_tls {
        Some(cfg) => tokio::spawn(router.serve_with_incoming_shutdown(
            svc::tls::incoming(listener, cfg),
            stopped(stop_rx.clone()),
        )),
        None => {
            // TCP_NODELAY: flows are small writes; Nagle's algorithm with
            // delayed ACKs would add up to 40 ms to each.
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            tokio::spawn(router.serve_with_incoming_shutdown(incoming, stopped(stop_rx.clone())))
        }
    };
    tracing::info!(address = %listen, tls = tls_on, relay = %relay_name, peers = relay.pool().names().len(), peer_service = ?args.peer_service, "serving Hubble Observer API");
    let metrics_task = metrics_server.map(|server| {
        tracing::info!(address = %server.local_addr(), "serving Prometheus metrics on /metrics");
        let m = metrics.clone();
        tokio::spawn(server.serve(move || m.encode(), stopped(stop_rx.clone())))
    });

    let mut failure = None;
    tokio::select! {
        s = svc::shutdown_signal() => tracing::info!(signal = s, "shutting down"),
        r = &mut grpc => failure = Some(match r {
            Ok(Ok(())) => anyhow::anyhow!("gRPC server stopped"),
            Ok(Err(e)) => anyhow::Error::new(e).context("gRPC server"),
            Err(e) => e.into(),
        }),
    }
    let _ = stop_tx.send(true);
    // Ends every client stream (they see the pool close) and every peer
    // connection, so the graceful shutdown does not wait on follow streams.
    relay.pool().shutdown();
    if !grpc.is_finished()
        && tokio::time::timeout(defaults::SHUTDOWN_GRACE, &mut grpc)
            .await
            .is_err()
    {
        tracing::warn!(
            "client connections did not close within {:?}; exiting anyway",
            defaults::SHUTDOWN_GRACE
        );
    }
    if let Some(m) = metrics_task {
        let _ = tokio::time::timeout(svc::defaults::METRICS_SHUTDOWN_TIMEOUT, m).await;
    }
    drop(relay);
    tracing::info!("stopped");
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("1d").is_err());
        assert!(parse_duration("x").is_err());
    }

    /// The duration flags spell their defaults as text ("5s"): they must
    /// say what `defaults` does, which the library uses when no flag applies.
    #[test]
    fn duration_flag_defaults_are_the_crate_defaults() {
        let a = Args::try_parse_from(["relay", "--peers", "n1=127.0.0.1:4244"]).unwrap();
        assert_eq!(a.dial_timeout, defaults::DIAL_TIMEOUT);
        assert_eq!(a.retry_timeout, defaults::RETRY_TIMEOUT);
        assert_eq!(a.sort_buffer_drain_timeout, defaults::SORT_WINDOW);
        assert_eq!(
            a.error_aggregation_window,
            defaults::ERROR_AGGREGATION_WINDOW
        );
        assert_eq!(a.probe_interval, defaults::PROBE_INTERVAL);
        assert_eq!(a.peer_timeout, defaults::PEER_TIMEOUT);
        assert_eq!(a.peer_keepalive_interval, defaults::KEEPALIVE_INTERVAL);
        assert_eq!(a.peer_deadline, defaults::NON_FOLLOW_PEER_DEADLINE);
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory as _;
        Args::command().debug_assert();
    }
}

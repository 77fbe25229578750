//! `flow-exporter`: the per-node flow exporter binary. See the library docs.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{ArgGroup, Parser};
use flow_exporter::server::ListenAddress;
use flow_exporter::sources::{self, replay, ringbuf};
use flow_exporter::{defaults, metrics, observer, pipeline, server};

/// Per-node flow exporter: decodes datapath events into Hubble flows and
/// serves Hubble's Observer API (`hubble observe`, `hubble status`, Hubble UI
/// through a relay) and Prometheus metrics.
///
/// Exactly one source is read: a pinned BPF ring buffer (`--ringbuf`), a
/// replay file (`--replay`) or the synthetic generator (`--synthetic`).
#[derive(Debug, Parser)]
#[command(name = "flow-exporter", version, about, long_about)]
#[command(group(ArgGroup::new("source").required(true).args(["ringbuf", "replay", "synthetic"])))]
struct Args {
    /// gRPC address: host:port, :port, or a unix socket path
    /// (unix:///run/hubble.sock or /run/hubble.sock).
    #[arg(long, env = "FLOW_EXPORTER_LISTEN_ADDRESS", default_value = defaults::LISTEN_ADDRESS)]
    listen_address: ListenAddress,

    /// Prometheus /metrics address (host:port); "off" disables it.
    #[arg(long, env = "FLOW_EXPORTER_METRICS_ADDRESS", default_value = defaults::METRICS_ADDRESS)]
    metrics_address: String,

    /// Hubble metrics to serve, in Cilium's `hubble-metrics` syntax: the
    /// ConfigMap's space-separated form as one argument
    /// ("drop:sourceContext=pod;destinationContext=pod flow tcp"), the
    /// agent flag's comma-separated form, or the flag repeated. Metrics:
    /// flow, drop, tcp, port-distribution, icmp, policy, flows-to-world
    /// (options any-drop, port, syn-only). Context options:
    /// sourceContext, destinationContext and their Egress/Ingress variants
    /// (identity|namespace|pod|pod-short|pod-name|dns|ip|reserved-identity|
    /// workload|workload-name|app, `|` = first non-empty), labelsContext
    /// (source_ip, source_pod, source_namespace, source_workload,
    /// source_workload_kind, source_app, the destination_* ones,
    /// traffic_direction). dns, http, httpV2 and kafka are refused (they
    /// need L7 visibility). Default: "flow drop tcp port-distribution icmp
    /// policy" (Cilium's Helm chart enables none; this keeps the set served
    /// before the flag existed). Context-labelled series unseen for 10 min
    /// are removed; past 10000 series per metric new ones count as `other`.
    #[arg(long, value_name = "LIST", env = "FLOW_EXPORTER_METRICS")]
    metrics: Vec<String>,

    /// Adds the `policy` label to hubble_policy_verdicts_total: the
    /// policies that allowed or denied each verdict (namespace/name, joined
    /// by `,`; empty for a default deny), at most
    /// 100 distinct values (more count as `other`).
    #[arg(long, env = "FLOW_EXPORTER_METRICS_POLICY_NAMES")]
    metrics_policy_names: bool,

    /// Name of this node in flows, GetNodes and Peer.Notify
    /// (default: the host name). Use cluster/node to set a cluster.
    #[arg(long, env = "FLOW_EXPORTER_NODE_NAME")]
    node_name: Option<String>,

    /// Flows kept in memory; must be 2^n-1 (4095, 8191, …, 1048575).
    #[arg(long, default_value_t = defaults::RING_CAPACITY)]
    ring_capacity: u64,

    /// Pinned BPF ring buffer of datapath events, e.g.
    /// /sys/fs/bpf/<node>/events.
    #[arg(long, value_name = "PIN")]
    ringbuf: Option<PathBuf>,

    /// Pinned per-CPU lost-event counter map of the datapath (with --ringbuf).
    #[arg(long, value_name = "PIN", requires = "ringbuf")]
    lost_counter: Option<PathBuf>,

    /// Pinned load-balancer counters of the datapath (`<bpffs-dir>/lb4_stats`):
    /// served as datapath_lb_new_connections_total,
    /// datapath_lb_translated_packets_total and
    /// datapath_lb_reverse_translated_packets_total.
    #[arg(long, value_name = "PIN", requires = "ringbuf")]
    lb_stats: Option<PathBuf>,

    /// Replay Hubble jsonpb lines (`hubble observe -o json`, Hubble's flow
    /// log) as if observed, keeping every recorded field; `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    replay: Option<PathBuf>,

    /// Generate ABI-encoded datapath events with a realistic mix.
    #[arg(long)]
    synthetic: bool,

    /// Synthetic events per second.
    #[arg(long, default_value_t = 200, requires = "synthetic")]
    rate: u64,

    /// Seed of the synthetic generator.
    #[arg(long, default_value_t = 1, requires = "synthetic")]
    seed: u64,

    /// Static enrichment file (YAML or JSON): endpoints, other nodes' pods,
    /// identities, services, and the cluster's nodes, which Peer.Notify
    /// announces (reloaded when it changes). The synthetic source brings
    /// its own.
    #[arg(long, value_name = "FILE")]
    enrichment: Option<PathBuf>,

    /// PEM certificate (with its chain) of the gRPC server: enables TLS on a
    /// TCP --listen-address (a unix socket stays plain text). It should
    /// name <node>.<cluster>.hubble-grpc.cilium.io, which GetNodes and
    /// Peer.Notify announce (Cilium's --hubble-tls-cert-file).
    #[arg(long, value_name = "FILE", requires = "tls_key_file")]
    tls_cert_file: Option<PathBuf>,

    /// PEM private key of --tls-cert-file (Cilium's --hubble-tls-key-file).
    #[arg(long, value_name = "FILE", requires = "tls_cert_file")]
    tls_key_file: Option<PathBuf>,

    /// PEM CA bundle(s), comma separated, that clients' certificates must
    /// chain to: mutual TLS, clients without such a certificate are refused
    /// (Cilium's --hubble-tls-client-ca-files).
    #[arg(
        long,
        value_name = "FILES",
        value_delimiter = ',',
        requires = "tls_cert_file"
    )]
    tls_client_ca_files: Vec<PathBuf>,

    /// GetFlows and Peer.Notify streams served at once; one more is refused
    /// at once with RESOURCE_EXHAUSTED naming this limit, and a closed
    /// stream frees its slot (open ones: flow_exporter_grpc_streams).
    #[arg(long, value_name = "N", default_value_t = defaults::MAX_CONCURRENT_STREAMS)]
    max_concurrent_streams: usize,

    /// gRPC calls being handled at once (a unary call until it answers, a
    /// stream until it starts); one more is refused with RESOURCE_EXHAUSTED
    /// instead of waiting.
    #[arg(long, value_name = "N", default_value_t = defaults::MAX_CONCURRENT_REQUESTS)]
    max_concurrent_requests: usize,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    svc::run("flow-exporter", || run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let node_name = match args.node_name.clone() {
        Some(n) => n,
        None => hostname::get()
            .context("read the host name (pass --node-name)")?
            .to_string_lossy()
            .into_owned(),
    };
    // Check the TLS files before anything starts.
    // Check the metric list before anything starts.
    let metrics_config = if args.metrics.is_empty() {
        metrics::MetricsConfig::default_set()
    } else {
        metrics::MetricsConfig::parse(&args.metrics).context("--metrics")?
    };
    let tls = match (&args.tls_cert_file, &args.tls_key_file) {
        (Some(c), Some(k)) => Some(
            svc::tls::server_config(c, k, &args.tls_client_ca_files).context(
                "gRPC server TLS (--tls-cert-file, --tls-key-file, --tls-client-ca-files)",
            )?,
        ),
        _ => None,
    };
    let mtls = !args.tls_client_ca_files.is_empty();
    // Bind the metrics port before anything starts: a taken port fails the
    // start with its address.
    let metrics_server = if args.metrics_address != "off" && !args.metrics_address.is_empty() {
        let addr: std::net::SocketAddr = args.metrics_address.parse().with_context(|| {
            format!(
                "invalid --metrics-address {:?}: expected host:port",
                args.metrics_address
            )
        })?;
        Some(svc::metrics::MetricsServer::bind(addr).await?)
    } else {
        None
    };
    let metrics = Arc::new(
        metrics::Metrics::with_config(&metrics_config).with_policy_names(args.metrics_policy_names),
    );
    let observer = Arc::new(
        observer::Observer::new(node_name.clone(), args.ring_capacity)
            .context("--ring-capacity")?
            .with_metrics(metrics.clone()),
    );

    // Load a replay file before serving, so a bad line fails the start.
    let replayed = match &args.replay {
        Some(p) => {
            let r = replay::load(p)?;
            tracing::info!(file = %p.display(), events = r.events.len(), skipped = r.skipped, "replay file loaded");
            Some(r)
        }
        None => None,
    };

    let decoder = sources::decoder(
        &node_name,
        args.enrichment.as_deref(),
        args.synthetic,
        args.seed,
    )?;
    let enrichment = decoder.enrichment.clone();
    let (ingest, decode_task) =
        pipeline::pipeline(observer.clone(), metrics.clone(), decoder.decode);
    let decode_handle = tokio::spawn(decode_task);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };

    let mut tasks = tokio::task::JoinSet::new();
    if let Some(r) = replayed {
        let ingest = ingest.clone();
        tasks.spawn(async move { replay::feed_then_progress(r, ingest).await });
    }
    if args.synthetic {
        let generator = decoder.generator.context("synthetic generator")?;
        let (ingest, rx) = (ingest.clone(), stop_rx.clone());
        tasks.spawn(sources::run_synthetic(generator, args.rate, ingest, rx));
    }
    if let Some(ring) = args.ringbuf.clone() {
        let (ingest, rx) = (ingest.clone(), stop_rx.clone());
        let lost = args.lost_counter.clone();
        tasks.spawn(async move { ringbuf::run(ring, lost, ingest, rx).await });
    }
    if let Some(pin) = args.lb_stats.clone() {
        let (m, rx) = (metrics.clone(), stop_rx.clone());
        tasks.spawn(async move { ringbuf::poll_lb_stats(pin, m, rx).await });
    }
    drop(ingest);
    // The enrichment file is looked at every second even when no flow
    // comes, so Peer.Notify follows the node list on an idle node.
    let reload_task = enrichment.as_ref().map(|f| {
        tokio::spawn(Arc::clone(f).run(defaults::ENRICHMENT_RELOAD, stopped(stop_rx.clone())))
    });

    let tls_on = tls.is_some() && matches!(args.listen_address, ListenAddress::Tcp(_));
    let grpc_options = server::ServerOptions {
        limits: svc::grpc_layers::Limits {
            max_streams: args.max_concurrent_streams.max(1),
            max_requests: args.max_concurrent_requests.max(1),
            ..server::default_limits()
        },
        metrics: metrics.grpc().clone(),
        cluster_nodes: enrichment.as_ref().map(|f| f.nodes()),
    };
    let grpc = tokio::spawn(server::serve_with_options(
        args.listen_address.clone(),
        observer.clone(),
        tls,
        grpc_options,
        stopped(stop_rx.clone()),
    ));
    tracing::info!(address = %args.listen_address, node = %node_name, capacity = args.ring_capacity, tls = tls_on, mtls = tls_on && mtls, "serving Hubble Observer API");
    let metrics_task = metrics_server.map(|server| {
        tracing::info!(address = %server.local_addr(), "serving Prometheus metrics on /metrics");
        let m = metrics.clone();
        tokio::spawn(server.serve(move || m.encode(), stopped(stop_rx.clone())))
    });

    let mut failure: Option<anyhow::Error> = None;
    let mut grpc = grpc;
    tokio::select! {
        s = svc::shutdown_signal() => tracing::info!(signal = s, "shutting down"),
        r = &mut grpc => {
            failure = Some(match r { Ok(Ok(())) => anyhow::anyhow!("gRPC server stopped"), Ok(Err(e)) => e, Err(e) => e.into() });
        }
        Some(r) = tasks.join_next() => {
            if let Ok(Err(e)) = r {
                failure = Some(e.context("source failed"));
            } else {
                // A finite source (replay) ended: keep serving what it loaded.
                tokio::select! {
                    s = svc::shutdown_signal() => tracing::info!(signal = s, "shutting down"),
                    r = &mut grpc => failure = Some(match r { Ok(Ok(())) => anyhow::anyhow!("gRPC server stopped"), Ok(Err(e)) => e, Err(e) => e.into() }),
                }
            }
        }
    }
    let _ = stop_tx.send(true);
    observer.close();
    tasks.shutdown().await;
    if !grpc.is_finished()
        && tokio::time::timeout(defaults::GRPC_SHUTDOWN_TIMEOUT, &mut grpc)
            .await
            .is_err()
    {
        tracing::warn!(
            "gRPC connections did not close within {} s; exiting anyway",
            defaults::GRPC_SHUTDOWN_TIMEOUT.as_secs()
        );
        // The server bound the socket but could not remove it: do it here.
        if let ListenAddress::Unix(p) = &args.listen_address {
            let _ = std::fs::remove_file(p);
        }
    }
    if let Some(m) = metrics_task {
        let _ = tokio::time::timeout(svc::defaults::METRICS_SHUTDOWN_TIMEOUT, m).await;
    }
    decode_handle.abort();
    if let Some(t) = reload_task {
        t.abort();
    }
    let s = observer.status();
    tracing::info!(seen_flows = s.seen_flows, stored = s.num_flows, "stopped");
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

//! `flow-archiver`: follows a Hubble Observer API into a Parquet archive,
//! compacts it, and queries it. See the library docs.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use archiver::follow::{self, FollowOptions};
use archiver::location;
use archiver::metrics::Metrics;
use archiver::read::{Archive, Query};
use archiver::storage::{S3Options, Storage};
use archiver::writer::{self, WriterOptions};
use archiver::{compact, defaults};
use clap::{Parser, Subcommand};
use proto::wkt::Timestamp;

/// Archive Hubble flows into hive-partitioned Parquet (dt=YYYY-MM-DD/hour=HH)
/// that DuckDB, pandas and polars open directly.
///
/// Without a subcommand it follows `--server` into `--dir`, resuming where the
/// archive left off; SIGTERM or SIGINT commits everything and exits.
///
/// `--dir` is a directory or an S3 (or S3-compatible) location,
/// `s3://bucket/prefix`: the endpoint from `--s3-endpoint` or
/// AWS_ENDPOINT_URL (MinIO, Ceph, moto...; `http://` allows plain HTTP), the
/// region from `--s3-region` or AWS_REGION, credentials from
/// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN). With
/// a subcommand, the --s3-* flags go after it (`flow-archiver compact --dir
/// s3://bucket/prefix --s3-endpoint URL`).
#[derive(Debug, Parser)]
#[command(
    name = "flow-archiver",
    version,
    about,
    long_about,
    args_conflicts_with_subcommands = true
)]
struct Args {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    follow: FollowArgs,
    #[command(flatten)]
    s3: S3Args,
}

/// Settings of `s3://` archive locations (all subcommands).
#[derive(Debug, clap::Args)]
struct S3Args {
    /// Endpoint of an S3-compatible store for s3:// archives, e.g.
    /// http://127.0.0.1:9000 (default: AWS).
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    s3_endpoint: Option<String>,
    /// Region of s3:// archives (default us-east-1).
    #[arg(long, global = true, env = "AWS_REGION", value_name = "REGION")]
    s3_region: Option<String>,
    /// Allow plain HTTP to the S3 endpoint (implied by an http:// endpoint).
    #[arg(long, global = true)]
    s3_allow_http: bool,
}

#[derive(Debug, clap::Args)]
struct FollowArgs {
    /// Observer API to follow (a relay or a flow exporter), host:port; a
    /// tls:// prefix enables TLS.
    #[arg(long, env = "HUBBLE_SERVER", default_value = defaults::SERVER)]
    server: String,
    #[command(flatten)]
    tls: TlsArgs,
    /// Archive location: a directory, or s3://bucket/prefix.
    #[arg(long, value_name = "PATH|URL")]
    dir: Option<String>,
    /// Where to begin when the archive is new: RFC 3339 or a duration ago
    /// (30s, 5m, 2h). Default: everything the source still holds.
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Rows per Parquet row group.
    #[arg(long, default_value_t = defaults::ROW_GROUP_ROWS)]
    row_group_rows: usize,
    /// Rows after which a file is committed.
    #[arg(long, default_value_t = defaults::FILE_ROWS)]
    file_rows: u64,
    /// Approximate bytes after which a file is committed.
    #[arg(long, default_value_t = defaults::FILE_BYTES)]
    file_bytes: u64,
    /// Seconds after which an open file is committed.
    #[arg(long, default_value_t = defaults::FILE_AGE.as_secs())]
    file_age_secs: u64,
    /// Page compression of the files: zstd, zstd:LEVEL (1-22, or a fast
    /// level -1 to -100: larger, no faster here), snappy or
    /// none (every notebook reader reads each; README, archive, has the
    /// sizes and speeds).
    #[arg(long, default_value_t = defaults::COMPRESSION)]
    compression: writer::FileCompression,
    /// Encode and compress the Parquet pages on the receiving thread
    /// instead of a second thread (for a one-core budget; same files).
    #[arg(long)]
    one_thread: bool,
    /// Decode every received flow fully (prost) before archiving its bytes,
    /// refusing (and recording as a gap) a flow malformed in a part no
    /// column reads. Off by default: the columns' fields are always
    /// checked, and our exporter, our relay and Cilium agents send valid
    /// protobuf; costs about a third of the writer's throughput.
    #[arg(long)]
    verify_flows: bool,
    /// Prometheus /metrics address (host:port); off by default.
    #[arg(long)]
    metrics_address: Option<std::net::SocketAddr>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Merge the small files of each partition, atomically.
    Compact {
        /// Archive location: a directory, or s3://bucket/prefix.
        #[arg(long, value_name = "PATH|URL")]
        dir: String,
        /// Files smaller than this many bytes are merged.
        #[arg(long, default_value_t = defaults::COMPACT_SMALL_BYTES)]
        small_bytes: u64,
    },
    /// Print archived flows as Hubble JSON lines (`hubble observe -o json`).
    Query {
        /// Archive location: a directory, or s3://bucket/prefix.
        #[arg(long, value_name = "PATH|URL")]
        dir: String,
        /// Oldest flow (RFC 3339 or a duration ago).
        #[arg(long)]
        since: Option<String>,
        /// Newest flow (RFC 3339 or a duration ago).
        #[arg(long)]
        until: Option<String>,
        /// Only this verdict (repeatable).
        #[arg(long)]
        verdict: Vec<String>,
        /// Newest N flows.
        #[arg(long)]
        last: Option<u64>,
        /// Print pruning figures to stderr.
        #[arg(long)]
        stats: bool,
    },
    /// Print the archive's state and recorded gaps.
    Status {
        /// Archive location: a directory, or s3://bucket/prefix.
        #[arg(long, value_name = "PATH|URL")]
        dir: String,
    },
}

/// Parses RFC 3339 or a duration ago (`90s`, `5m`, `2h`, `1h30m`).
fn parse_time(s: &str) -> anyhow::Result<Timestamp> {
    if let Ok(t) = Timestamp::parse_rfc3339(s) {
        return Ok(t);
    }
    let mut total = 0u64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().with_context(|| format!("invalid time {s:?}"))?;
        num.clear();
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => anyhow::bail!("invalid time {s:?}: use RFC 3339 or a duration like 30s, 5m, 2h"),
        };
    }
    anyhow::ensure!(
        num.is_empty() && total > 0,
        "invalid time {s:?}: use RFC 3339 or a duration like 30s, 5m, 2h"
    );
    let now = Timestamp::now();
    Ok(Timestamp {
        seconds: now.seconds - total as i64,
        nanos: now.nanos,
    })
}

/// TLS to the source, with the hubble CLI's flags.
#[derive(Debug, clap::Args)]
struct TlsArgs {
    /// Use TLS to the server (also: a tls:// --server, or a client
    /// certificate).
    #[arg(long)]
    tls: bool,
    /// Accept any server certificate and name (NOT recommended: open to
    /// machine-in-the-middle attacks).
    #[arg(long)]
    tls_allow_insecure: bool,
    /// PEM CA certificate files (comma separated) that signed the server's
    /// certificate; default: the system roots.
    #[arg(
        long,
        value_name = "FILES",
        value_delimiter = ',',
        env = "HUBBLE_TLS_CA_CERT_FILES"
    )]
    tls_ca_cert_files: Vec<std::path::PathBuf>,
    /// PEM client certificate for mutual TLS (implies TLS).
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_client_key_file",
        env = "HUBBLE_TLS_CLIENT_CERT_FILE"
    )]
    tls_client_cert_file: Option<std::path::PathBuf>,
    /// PEM key of --tls-client-cert-file.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_client_cert_file",
        env = "HUBBLE_TLS_CLIENT_KEY_FILE"
    )]
    tls_client_key_file: Option<std::path::PathBuf>,
    /// Name the server's certificate must carry, e.g.
    /// instance.hubble-relay.cilium.io (default: the host of --server).
    #[arg(long, value_name = "NAME", env = "HUBBLE_TLS_SERVER_NAME")]
    tls_server_name: Option<String>,
}

/// The TLS settings for `server`, loaded and checked; `None` for plain text.
fn source_tls(server: &str, t: &TlsArgs) -> anyhow::Result<Option<follow::SourceTls>> {
    let on = t.tls || server.starts_with(follow::TLS_PREFIX) || t.tls_client_cert_file.is_some();
    if !on {
        return Ok(None);
    }
    let client = svc::tls::ClientTls::load(&svc::tls::ClientOptions {
        ca_files: t.tls_ca_cert_files.clone(),
        cert_file: t.tls_client_cert_file.clone(),
        key_file: t.tls_client_key_file.clone(),
        allow_insecure: t.tls_allow_insecure,
    })
    .context("TLS to the server")?;
    Ok(Some(follow::SourceTls {
        client,
        server_name: t.tls_server_name.clone(),
    }))
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    svc::run("flow-archiver", || run(args))
}

fn local(dir: &str, s3: &S3Options) -> anyhow::Result<Arc<dyn Storage>> {
    Ok(location::open_with(dir, s3)?)
}

/// An archive only read (`status`, `query`): nothing created or removed,
/// so a running archiver's files in the making are left alone.
fn existing(dir: &str, s3: &S3Options) -> anyhow::Result<Arc<dyn Storage>> {
    Ok(location::open_existing(dir, s3)?)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let s3 = S3Options {
        endpoint: args.s3.s3_endpoint.clone(),
        region: args.s3.s3_region.clone(),
        allow_http: args.s3.s3_allow_http,
        ..S3Options::default()
    };
    match args.cmd {
        Some(Cmd::Compact { dir, small_bytes }) => {
            let s = local(&dir, &s3)?;
            let st = compact::compact(&s, small_bytes)?;
            eprintln!(
                "compacted {} partition(s): {} files merged, {} rows rewritten",
                st.partitions, st.files_merged, st.rows
            );
            Ok(())
        }
        Some(Cmd::Status { dir }) => {
            let s = existing(&dir, &s3)?;
            let st = writer::ArchiveState::load(s.as_ref())?;
            println!("archive:   {dir}");
            println!("files:     {}", st.files);
            println!("rows:      {}", st.rows);
            println!(
                "newest:    {}",
                st.last_time
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "-".into())
            );
            let gaps = writer::gaps(s.as_ref())?;
            println!("gaps:      {}", gaps.len());
            for g in gaps {
                println!("  {}", serde_json::to_string(&g)?);
            }
            println!("unreadable: {}", st.unreadable.len());
            for f in &st.unreadable {
                println!("  {f}");
                eprintln!(
                    "warning: unreadable archive file {f} (truncated, empty or not Parquet): queries skip it; the archiver moves it aside at start"
                );
            }
            for w in s.take_warnings() {
                eprintln!("warning: {w}");
            }
            Ok(())
        }
        Some(Cmd::Query {
            dir,
            since,
            until,
            verdict,
            last,
            stats,
        }) => {
            let s = existing(&dir, &s3)?;
            let mut q = Query {
                since: since.as_deref().map(parse_time).transpose()?,
                until: until.as_deref().map(parse_time).transpose()?,
                number: last,
                ..Default::default()
            };
            if !verdict.is_empty() {
                let vs = verdict
                    .iter()
                    .map(|v| {
                        proto::flow::Verdict::from_str_name(v)
                            .map(|v| v as i32)
                            .ok_or_else(|| anyhow::anyhow!("invalid verdict {v:?}"))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                q.whitelist = vec![proto::flow::FlowFilter {
                    verdict: vs,
                    ..Default::default()
                }];
            }
            let (flows, st) = Archive::new(s).query(&q)?;
            use std::io::Write as _;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for f in flows {
                let r = proto::observer::GetFlowsResponse {
                    node_name: f.node_name.clone(),
                    time: f.time,
                    response_types: Some(proto::observer::get_flows_response::ResponseTypes::Flow(
                        f,
                    )),
                };
                writeln!(out, "{}", proto::json::to_hubble_json(&r)?)?;
            }
            out.flush()?;
            for w in &st.warnings {
                eprintln!("warning: {w}");
            }
            for f in &st.unreadable {
                eprintln!("warning: skipped unreadable archive file {f}");
            }
            if stats {
                eprintln!("{st:?}");
            }
            Ok(())
        }
        None => {
            let a = args.follow;
            let dir = a
                .dir
                .context("--dir PATH|URL is required (where the archive lives)")?;
            let storage = local(&dir, &s3)?;
            let tls = source_tls(&a.server, &a.tls)?;
            let opts = FollowOptions {
                server: a.server.clone(),
                since: a.since.as_deref().map(parse_time).transpose()?,
                writer: WriterOptions {
                    row_group_rows: a.row_group_rows,
                    file_rows: a.file_rows,
                    file_bytes: a.file_bytes,
                    file_age: Duration::from_secs(a.file_age_secs.max(1)),
                    verify_flows: a.verify_flows,
                    compression: a.compression,
                    encoder_thread: !a.one_thread,
                },
            };
            let metrics = Arc::new(Metrics::default());
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            if let Some(addr) = a.metrics_address {
                let server = svc::metrics::MetricsServer::bind(addr).await?;
                let (m, mut rx) = (metrics.clone(), stop_rx.clone());
                tokio::spawn(server.serve(move || m.encode(), async move {
                    let _ = rx.wait_for(|v| *v).await;
                }));
            }
            tokio::spawn(async move {
                let s = svc::shutdown_signal().await;
                tracing::info!(signal = s, "committing open files and stopping");
                let _ = stop_tx.send(true);
            });
            tracing::info!(server = %a.server, dir = %dir, "archiving");
            let st = follow::run_with_tls(storage, opts, tls, metrics, stop_rx).await?;
            eprintln!(
                "flow-archiver: stopped; this run committed {} rows in {} files ({} bytes)",
                st.rows, st.files, st.bytes
            );
            Ok(())
        }
    }
}

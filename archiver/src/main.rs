//! `flow-archiver`: follows a Hubble Observer API into a Parquet archive,
//! compacts it, and queries it. See the library docs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use archiver::follow::{self, FollowOptions};
use archiver::metrics::Metrics;
use archiver::read::{Archive, Query};
use archiver::storage::{LocalDir, Storage};
use archiver::writer::{self, WriterOptions};
use archiver::{compact, defaults};
use clap::{Parser, Subcommand};
use proto::wkt::Timestamp;

/// Archive Hubble flows into hive-partitioned Parquet (dt=YYYY-MM-DD/hour=HH)
/// that DuckDB, pandas and polars open directly.
///
/// Without a subcommand it follows `--server` into `--dir`, resuming where the
/// archive left off; SIGTERM or SIGINT commits everything and exits.
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
}

#[derive(Debug, clap::Args)]
struct FollowArgs {
    /// Observer API to follow (a relay or a flow exporter), host:port.
    #[arg(long, env = "HUBBLE_SERVER", default_value = defaults::SERVER)]
    server: String,
    /// Archive directory.
    #[arg(long, value_name = "PATH")]
    dir: Option<PathBuf>,
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
    /// Prometheus /metrics address (host:port); off by default.
    #[arg(long)]
    metrics_address: Option<std::net::SocketAddr>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Merge the small files of each partition, atomically.
    Compact {
        /// Archive directory.
        #[arg(long, value_name = "PATH")]
        dir: PathBuf,
        /// Files smaller than this many bytes are merged.
        #[arg(long, default_value_t = defaults::COMPACT_SMALL_BYTES)]
        small_bytes: u64,
    },
    /// Print archived flows as Hubble JSON lines (`hubble observe -o json`).
    Query {
        /// Archive directory.
        #[arg(long, value_name = "PATH")]
        dir: PathBuf,
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
        /// Archive directory.
        #[arg(long, value_name = "PATH")]
        dir: PathBuf,
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

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    svc::run("flow-archiver", || run(args))
}

fn local(dir: &std::path::Path) -> anyhow::Result<Arc<dyn Storage>> {
    let s =
        LocalDir::new(dir).with_context(|| format!("open archive directory {}", dir.display()))?;
    let removed = s.remove_temporaries();
    if removed > 0 {
        tracing::warn!(
            removed,
            "removed temporary files left by an interrupted run"
        );
    }
    Ok(Arc::new(s))
}

async fn run(args: Args) -> anyhow::Result<()> {
    match args.cmd {
        Some(Cmd::Compact { dir, small_bytes }) => {
            let s = local(&dir)?;
            let st = compact::compact(&s, small_bytes)?;
            eprintln!(
                "compacted {} partition(s): {} files merged, {} rows rewritten",
                st.partitions, st.files_merged, st.rows
            );
            Ok(())
        }
        Some(Cmd::Status { dir }) => {
            let s = local(&dir)?;
            let st = writer::ArchiveState::load(s.as_ref())?;
            println!("archive:   {}", dir.display());
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
            let s = local(&dir)?;
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
            if stats {
                eprintln!("{st:?}");
            }
            Ok(())
        }
        None => {
            let a = args.follow;
            let dir = a
                .dir
                .context("--dir PATH is required (where the archive lives)")?;
            let storage = local(&dir)?;
            let opts = FollowOptions {
                server: a.server.clone(),
                since: a.since.as_deref().map(parse_time).transpose()?,
                writer: WriterOptions {
                    row_group_rows: a.row_group_rows,
                    file_rows: a.file_rows,
                    file_bytes: a.file_bytes,
                    file_age: Duration::from_secs(a.file_age_secs.max(1)),
                    ..WriterOptions::default()
                },
            };
            let metrics = Arc::new(Metrics::default());
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            if let Some(addr) = a.metrics_address {
                let mut rx = stop_rx.clone();
                tokio::spawn(archiver::metrics::serve(
                    addr,
                    metrics.clone(),
                    async move {
                        let _ = rx.wait_for(|v| *v).await;
                    },
                ));
            }
            tokio::spawn(async move {
                let s = svc::shutdown_signal().await;
                tracing::info!(signal = s, "committing open files and stopping");
                let _ = stop_tx.send(true);
            });
            tracing::info!(server = %a.server, dir = %dir.display(), "archiving");
            let st = follow::run(storage, opts, metrics, stop_rx).await?;
            eprintln!(
                "flow-archiver: stopped; this run committed {} rows in {} files ({} bytes)",
                st.rows, st.files, st.bytes
            );
            Ok(())
        }
    }
}

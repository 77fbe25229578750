//! The request-building pieces every streaming command shares, so that
//! `observe` (flows, agent-events, debug-events) and `tui` depend on one
//! module instead of on each other: the [`Io`] a command runs against, the
//! filter flags (their clap [`Arg`]s and [`parse_filter_flags`]), the
//! [`Selector`] flags, the `-o` [`output_format`], Go gRPC's rendering of a
//! status error ([`grpc_error`]), the client of a stream
//! ([`stream_client`]) and [`print_stream`].
//!
//! Dependencies point one way: `cli` → `cmd::*` / `tui` → `request` →
//! `filters`, `printer`, `conn`, `config`, `gotime`, `defaults`; nothing here
//! imports `cli`, `cmd` or `tui`.

use std::io::{self, Write};

use clap::{Arg, ArgAction, ArgMatches, Command};
use futures::FutureExt as _;
use proto::observer::observer_client::ObserverClient;
use tonic::transport::Channel;

use crate::config::compat_legacy_json_output;
use crate::conn::Conn;
use crate::defaults;
use crate::filters::{FILTER_FLAGS, FlagParser};
use crate::gotime::{parse_time, to_timestamp};
use crate::printer::{Output, Printer};

/// The I/O a command runs against.
pub struct Io {
    /// Standard output (buffered by the caller as it likes).
    pub out: Box<dyn Write + Send>,
    /// Standard error.
    pub err: Box<dyn Write + Send>,
    /// Whether stdout is a terminal (for `--color auto`).
    pub out_is_terminal: bool,
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io")
            .field("out_is_terminal", &self.out_is_terminal)
            .finish()
    }
}

/// Adds every filter flag of [`FILTER_FLAGS`] (the one table `observe`,
/// `tui` and the TUI's filter line share, so their semantics are identical).
pub fn filter_args(mut cmd: Command) -> Command {
    for f in FILTER_FLAGS {
        let mut a = Arg::new(f.name)
            .long(f.name)
            .action(ArgAction::Append)
            .value_name("filter")
            .help(f.help);
        if let Some(c) = f.short {
            a = a.short(c);
        }
        if let Some(d) = f.no_opt_default {
            a = a
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value(d);
        }
        cmd = cmd.arg(a);
    }
    cmd
}

/// Adds `--allowlist`/`--denylist` (JSON `FlowFilter`s); `from_env` reads
/// `HUBBLE_ALLOWLIST`/`HUBBLE_DENYLIST` too (the command line, not the
/// TUI's filter line).
pub fn raw_filter_args(cmd: Command, from_env: bool) -> Command {
    let mut allow = Arg::new("allowlist")
        .long("allowlist")
        .action(ArgAction::Append)
        .value_name("stringArray")
        .help_heading("Raw-Filters Flags")
        .help("Specify allowlist as JSON encoded FlowFilters");
    let mut deny = Arg::new("denylist")
        .long("denylist")
        .action(ArgAction::Append)
        .value_name("stringArray")
        .help_heading("Raw-Filters Flags")
        .help("Specify denylist as JSON encoded FlowFilters");
    if from_env {
        allow = allow.env("HUBBLE_ALLOWLIST");
        deny = deny.env("HUBBLE_DENYLIST");
    }
    cmd.arg(allow).arg(deny)
}

/// Formats a filter error the way pflag reports a bad flag value.
fn pflag_error(name: &str, short: Option<char>, val: &str, err: &str) -> String {
    let flag = match short {
        Some(c) => format!("-{c}, --{name}"),
        None => format!("--{name}"),
    };
    format!(
        "invalid argument {} for {} flag: {err}",
        crate::printer::go_quote(val),
        crate::printer::go_quote(&flag)
    )
}

/// Feeds the filter flags to a [`FlagParser`] in command-line order.
pub fn parse_filter_flags(m: &ArgMatches) -> anyhow::Result<FlagParser> {
    let mut occurrences: Vec<(usize, &'static str, Option<char>, String)> = Vec::new();
    for f in FILTER_FLAGS {
        let (Some(idx), Some(vals)) = (m.indices_of(f.name), m.get_many::<String>(f.name)) else {
            continue;
        };
        for (i, v) in idx.zip(vals) {
            occurrences.push((i, f.name, f.short, v.clone()));
        }
    }
    occurrences.sort_by_key(|o| o.0);
    let mut p = FlagParser::new();
    for (_, name, short, val) in occurrences {
        p.set(name, &val)
            .map_err(|e| anyhow::anyhow!(pflag_error(name, short, &val, &e)))?;
    }
    Ok(p)
}

/// `-o NAME`: the output format; table cannot follow.
pub fn output_format(name: &str, follow: bool) -> anyhow::Result<Output> {
    Ok(match name {
        "compact" => Output::Compact,
        "dict" => Output::Dict,
        "json" | "JSON" if compat_legacy_json_output() => Output::JsonLegacy,
        "json" | "JSON" | "jsonpb" => Output::JsonPb,
        "tab" | "table" => {
            if follow {
                anyhow::bail!("table output format is not compatible with follow mode");
            }
            Output::Table
        }
        other => anyhow::bail!("invalid output format: {other}"),
    })
}

/// The selector flags (`--first`, `--last`, `--all`, `--follow`,
/// `--since`, `--until`) as the request fields shared by GetFlows,
/// GetAgentEvents and GetDebugEvents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selector {
    /// `number`.
    pub number: u64,
    /// `follow`.
    pub follow: bool,
    /// `first`.
    pub first: bool,
    /// `since`.
    pub since: Option<proto::wkt::Timestamp>,
    /// `until`.
    pub until: Option<proto::wkt::Timestamp>,
}

/// The selector from the flags, with upstream's checks and defaults:
/// `--all` means everything, and without a time range or `--first` the
/// last 20 unless following or `default_last` is false (`--input-file`).
pub fn selector(m: &ArgMatches, default_last: bool) -> anyhow::Result<Selector> {
    let follow = m.get_flag("follow");
    let all = m.get_flag("all");
    let first_n = m.get_one::<u64>("first").copied().unwrap_or(0);
    let mut last_n = m.get_one::<u64>("last").copied().unwrap_or(0);
    let (first, last) = (first_n > 0, last_n > 0);
    if first && last {
        anyhow::bail!("cannot set both --first and --last");
    }
    if first && all {
        anyhow::bail!("cannot set both --first and --all");
    }
    if first && follow {
        anyhow::bail!("cannot set both --first and --follow");
    }
    if last && all {
        anyhow::bail!("cannot set both --last and --all");
    }
    let now = chrono::Utc::now();
    let since = match m.get_one::<String>("since").filter(|s| !s.is_empty()) {
        Some(s) => {
            Some(to_timestamp(parse_time(s, now).map_err(|e| {
                anyhow::anyhow!("failed to parse the since time: {e}")
            })?))
        }
        None => None,
    };
    let until = match m.get_one::<String>("until").filter(|s| !s.is_empty()) {
        Some(s) if !follow => {
            Some(to_timestamp(parse_time(s, now).map_err(|e| {
                anyhow::anyhow!("failed to parse the until time: {e}")
            })?))
        }
        _ => None,
    };
    if since.is_none() && until.is_none() && !first {
        if all {
            last_n = u64::MAX;
        } else if last_n == 0 && !follow && default_last {
            last_n = defaults::FLOW_PRINT_COUNT;
        }
    }
    Ok(Selector {
        number: if first { first_n } else { last_n },
        follow,
        first,
        since,
        until,
    })
}

/// Go gRPC's rendering of a status error (`rpc error: code = X desc = Y`);
/// for code Unknown only the message, as upstream prints it.
pub fn grpc_error(s: &tonic::Status) -> String {
    let code = match s.code() {
        tonic::Code::Cancelled => "Canceled".to_owned(),
        tonic::Code::Unknown => return s.message().to_owned(),
        c => format!("{c:?}"),
    };
    format!("rpc error: code = {code} desc = {}", s.message())
}

/// An Observer client for a streaming call (`GetFlows`, `GetAgentEvents`,
/// `GetDebugEvents`) on `conn`, accepting messages up to
/// [`defaults::MAX_MESSAGE_SIZE`].
pub fn stream_client(conn: &Conn) -> ObserverClient<Channel> {
    ObserverClient::new(conn.channel.clone()).max_decoding_message_size(defaults::MAX_MESSAGE_SIZE)
}

/// Streams `req` from `server` into `state` (`add` per response) until the
/// stream ends; with `follow`, also until Ctrl-C, redrawing `draw`'s view of
/// `state` every [`defaults::AGGREGATE_REFRESH`] (over the previous one on a
/// terminal, `redraw_in_place`; one after another otherwise) and once more
/// at the end, like `top`. Shared by `--aggregate-by --follow` and
/// `hubble map --follow`.
#[allow(clippy::too_many_arguments)]
pub async fn stream_redrawn<S>(
    server: &crate::config::ServerOptions,
    req: proto::observer::GetFlowsRequest,
    state: &mut S,
    mut add: impl FnMut(&mut S, &proto::observer::GetFlowsResponse),
    mut draw: impl FnMut(&S, &mut dyn Write) -> anyhow::Result<()>,
    out: &mut dyn Write,
    follow: bool,
    redraw_in_place: bool,
) -> anyhow::Result<()> {
    let conn = crate::conn::connect(server).await?;
    let mut client = stream_client(&conn);
    let mut stream = client
        .get_flows(conn.stream(req))
        .await
        .map_err(|s| anyhow::anyhow!(grpc_error(&s)))?
        .into_inner();
    let mut redraw = |state: &S, out: &mut dyn Write| -> anyhow::Result<()> {
        if redraw_in_place {
            out.write_all(b"\x1b[H\x1b[2J")?;
        }
        draw(state, out)?;
        if !redraw_in_place {
            out.write_all(b"\n")?;
        }
        out.flush()?;
        Ok(())
    };
    let mut tick = tokio::time::interval(defaults::AGGREGATE_REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tick.tick().await;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            m = stream.message() => match m {
                Ok(Some(r)) => add(state, &r),
                Ok(None) => break,
                Err(s) if s.code() == tonic::Code::Cancelled => break,
                Err(s) => anyhow::bail!(grpc_error(&s)),
            },
            _ = tick.tick(), if follow => redraw(state, out)?,
            _ = &mut ctrl_c, if follow => break,
        }
    }
    if follow {
        redraw(state, out)?;
    }
    Ok(())
}

/// Prints a response stream until it ends, fails or Ctrl-C.
pub async fn print_stream<T, W: Write, E: Write>(
    mut stream: tonic::Streaming<T>,
    printer: &mut Printer<W, E>,
    mut write: impl FnMut(&mut Printer<W, E>, &T) -> io::Result<()>,
) -> anyhow::Result<()> {
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let next = match stream.message().now_or_never() {
            Some(r) => r,
            None => {
                printer.flush()?;
                tokio::select! {
                    r = stream.message() => r,
                    _ = &mut ctrl_c => return Ok(()),
                }
            }
        };
        match next {
            Ok(Some(r)) => write(printer, &r)?,
            Ok(None) => return Ok(()),
            Err(s) if s.code() == tonic::Code::Cancelled => return Ok(()),
            Err(s) => anyhow::bail!(grpc_error(&s)),
        }
    }
}

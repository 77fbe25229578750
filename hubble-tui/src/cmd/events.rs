//! `hubble observe agent-events` and `hubble observe debug-events`: the
//! selector flags build a `GetAgentEventsRequest` / `GetDebugEventsRequest`
//! as upstream does (default `--last 20` unless `--follow`, `--since`,
//! `--until` or `--first`), and the stream is printed by
//! [`Printer::write_agent_event`] / [`Printer::write_debug_event`]. There
//! are no filter flags. A relay (ours and upstream's) answers Unimplemented,
//! printed as `rpc error: code = Unimplemented desc = …` with exit status 1.

use std::io::{self, Write};

use clap::ArgMatches;
use proto::observer::{GetAgentEventsRequest, GetDebugEventsRequest};

use crate::config::{ConfigFile, ServerOptions, Settings};
use crate::defaults;
use crate::gotime::TimeFormat;
use crate::printer::{Options, Printer};
use crate::request::{
    Io, Selector, grpc_error, output_format, print_stream, selector, stream_client,
};

/// Which events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `agent-events` → `GetAgentEvents`.
    Agent,
    /// `debug-events` → `GetDebugEvents`.
    Debug,
}

fn printer_options(m: &ArgMatches, follow: bool) -> anyhow::Result<Options> {
    let output = output_format(
        m.get_one::<String>("output")
            .map(String::as_str)
            .unwrap_or("compact"),
        follow,
    )?;
    Ok(Options {
        output,
        time_format: TimeFormat::from_name(
            m.get_one::<String>("time-format")
                .map(String::as_str)
                .unwrap_or("StampMilli"),
        ),
        color: false,
        node_name: m.get_flag("print-node-name"),
        silent_errors: m.get_flag("silent-errors"),
        ..Options::default()
    })
}

/// Runs `hubble observe agent-events` or `debug-events`.
pub async fn run(kind: Kind, m: &ArgMatches, file: &ConfigFile, io: &mut Io) -> anyhow::Result<()> {
    let sel = selector(m, true)?;
    let opts = printer_options(m, sel.follow)?;
    let server = ServerOptions::from_settings(&Settings::new(m, file))?;
    let out = io::BufWriter::with_capacity(defaults::OUTPUT_BUFFER, &mut io.out);
    let mut printer = Printer::new(opts, out, &mut io.err);
    let res = stream(kind, &server, sel, &mut printer).await;
    let closed = printer.close();
    res?;
    closed?;
    Ok(())
}

async fn stream<W: Write, E: Write>(
    kind: Kind,
    server: &ServerOptions,
    sel: Selector,
    printer: &mut Printer<W, E>,
) -> anyhow::Result<()> {
    let conn = crate::conn::connect(server).await?;
    let mut client = stream_client(&conn);
    match kind {
        Kind::Agent => {
            let req = GetAgentEventsRequest {
                number: sel.number,
                follow: sel.follow,
                since: sel.since,
                until: sel.until,
                first: sel.first,
            };
            let s = client
                .get_agent_events(conn.stream(req))
                .await
                .map_err(|s| anyhow::anyhow!(grpc_error(&s)))?
                .into_inner();
            print_stream(s, printer, |p, r| p.write_agent_event(r)).await
        }
        Kind::Debug => {
            let req = GetDebugEventsRequest {
                number: sel.number,
                follow: sel.follow,
                since: sel.since,
                until: sel.until,
                first: sel.first,
            };
            let s = client
                .get_debug_events(conn.stream(req))
                .await
                .map_err(|s| anyhow::anyhow!(grpc_error(&s)))?
                .into_inner();
            print_stream(s, printer, |p, r| p.write_debug_event(r)).await
        }
    }
}

//! `hubble observe` (= `observe flows`): builds the `GetFlowsRequest` from
//! the flags as upstream does (`cmd/observe/flows.go`), then prints the
//! stream from the server, or from `--input-file` filtered client-side with
//! the server's own filter semantics (`flow-filter`).

use std::io::{self, BufRead, Write};

use anyhow::Context as _;
use clap::ArgMatches;
use proto::observer::{GetFlowsRequest, GetFlowsResponse};
use proto::wkt::FieldMask;

use crate::config::{ConfigFile, ServerOptions, Settings};
use crate::defaults;
use crate::filters::{filters_yaml, parse_raw_filters};
use crate::gotime::TimeFormat;
use crate::printer::{Options, Output, Printer};
use crate::request::{
    Io, grpc_error, output_format, parse_filter_flags, print_stream, selector, stream_client,
};

/// Top-level `flow.Flow` fields a field mask may name.
const FLOW_FIELDS: &[&str] = &[
    "time",
    "uuid",
    "emitter",
    "verdict",
    "drop_reason",
    "auth_type",
    "ethernet",
    "IP",
    "l4",
    "tunnel",
    "source",
    "destination",
    "Type",
    "node_name",
    "node_labels",
    "source_names",
    "destination_names",
    "l7",
    "reply",
    "event_type",
    "source_service",
    "destination_service",
    "traffic_direction",
    "policy_match_type",
    "trace_observation_point",
    "trace_reason",
    "file",
    "drop_reason_desc",
    "is_reply",
    "debug_capture_point",
    "interface",
    "proxy_port",
    "trace_context",
    "sock_xlate_point",
    "socket_cookie",
    "cgroup_id",
    "ip_trace_id",
    "Summary",
    "extensions",
    "egress_allowed_by",
    "ingress_allowed_by",
    "egress_denied_by",
    "ingress_denied_by",
    "policy_log",
    "aggregate",
];

const ENDPOINT_FIELDS: &[&str] = &[
    "ID",
    "identity",
    "cluster_name",
    "namespace",
    "labels",
    "pod_name",
    "workloads",
];

fn validate_field_mask(paths: &[String]) -> anyhow::Result<()> {
    for p in paths {
        let mut parts = p.split('.');
        let head = parts.next().unwrap_or_default();
        let ok = FLOW_FIELDS.contains(&head)
            && match head {
                "source" | "destination" => match (parts.next(), parts.next()) {
                    (None, _) => true,
                    (Some(f), None) => ENDPOINT_FIELDS.contains(&f),
                    _ => false,
                },
                _ => parts.all(|s| !s.is_empty()),
            };
        if !ok {
            anyhow::bail!(
                "failed to construct field mask: proto: invalid path {} for message \"flow.Flow\"",
                crate::printer::go_quote(p)
            );
        }
    }
    Ok(())
}

/// The field mask the request carries, as upstream decides it
/// (`handleFlowArgs`): only the jsonpb printer (`-o json`/`jsonpb`) takes a
/// custom `--field-mask`, and it sends no default; every other printer
/// (compact, dict, table, and legacy JSON under
/// `HUBBLE_COMPAT=legacy-json-output`, which upstream does not count as
/// JSON here) refuses a custom mask and, unless
/// `--use-default-field-masks=false`, sends [`defaults::FIELD_MASK`].
/// An empty result means no mask (the server returns whole flows).
///
/// One deliberate difference: with `--print-policy-names` the default mask
/// also asks for the policy fields and the direction that picks between
/// them ([`defaults::POLICY_NAME_FIELDS`]).
/// Upstream's default mask leaves them out, so its flag prints nothing
/// unless the mask is switched off; ours prints the names it was asked for
/// (and is otherwise byte-identical).
pub fn request_field_mask(
    output: Output,
    output_name: &str,
    custom: Vec<String>,
    use_default_masks: bool,
    policy_names: bool,
) -> anyhow::Result<Vec<String>> {
    if output == Output::JsonPb {
        return Ok(custom);
    }
    if !custom.is_empty() {
        anyhow::bail!("{output_name} output format is not compatible with custom field mask");
    }
    Ok(if use_default_masks {
        let extra = if policy_names {
            defaults::POLICY_NAME_FIELDS
        } else {
            &[]
        };
        defaults::FIELD_MASK
            .iter()
            .chain(extra)
            .map(|s| (*s).to_owned())
            .collect()
    } else {
        Vec::new()
    })
}

/// The parsed observe settings.
#[derive(Debug)]
pub struct Plan {
    /// The request for the server (or the input file).
    pub request: GetFlowsRequest,
    /// Printer settings.
    pub printer: Options,
    /// `--print-raw-filters`.
    pub print_raw_filters: bool,
    /// `--input-file`.
    pub input_file: Option<String>,
    /// `--archive`.
    pub archive: Option<String>,
    /// `--aggregate-by` (and `--top`): group instead of printing each flow.
    pub aggregate: Option<AggregateBy>,
}

/// `--aggregate-by FIELDS --top N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateBy {
    /// The field paths grouped by.
    pub paths: Vec<String>,
    /// Groups printed at most (0: all).
    pub top: usize,
}

/// Validates `--aggregate-by`/`--top` against the other flags.
fn aggregate_by(
    m: &ArgMatches,
    output: Output,
    follow: bool,
) -> anyhow::Result<Option<AggregateBy>> {
    let paths: Vec<String> = m
        .get_many::<String>("aggregate-by")
        .map(|v| v.map(|p| p.trim().to_owned()).collect())
        .unwrap_or_default();
    let top_given = m.value_source("top") == Some(clap::parser::ValueSource::CommandLine);
    if paths.is_empty() {
        if top_given {
            anyhow::bail!("--top needs --aggregate-by");
        }
        return Ok(None);
    }
    if let Some(p) = paths.iter().find(|p| p.is_empty()) {
        anyhow::bail!("invalid --aggregate-by path {p:?}: empty");
    }
    validate_field_mask(&paths).map_err(|e| {
        anyhow::anyhow!(
            "invalid --aggregate-by: {}",
            e.to_string()
                .trim_start_matches("failed to construct field mask: ")
        )
    })?;
    if follow && output.is_json() {
        anyhow::bail!(
            "--aggregate-by with --follow prints a table redrawn every second: drop -o json, or aggregate a bounded window (--last, --since/--until, --all)"
        );
    }
    if output == Output::Dict {
        anyhow::bail!(
            "--aggregate-by prints a table or JSON: use -o table (or compact) or -o json"
        );
    }
    let top = m.get_one::<u64>("top").copied().unwrap_or(0);
    Ok(Some(AggregateBy {
        paths,
        top: usize::try_from(top).unwrap_or(usize::MAX),
    }))
}

/// Turns the command line into a request and printer settings, with
/// upstream's validation order and messages.
pub fn plan(
    m: &ArgMatches,
    file: &ConfigFile,
    debug: bool,
    out_is_terminal: bool,
) -> anyhow::Result<Plan> {
    let filters = parse_filter_flags(m)?;
    let settings = Settings::new(m, file);
    let follow = m.get_flag("follow");
    let input_file = m.get_one::<String>("input-file").cloned();
    let archive = m.get_one::<String>("archive").cloned();
    if archive.is_some() && follow {
        anyhow::bail!(
            "--follow cannot be used with --archive: an archive is history; follow the server instead"
        );
    }

    // handleFlowArgs
    let (whitelist, blacklist) = filters.finish().map_err(anyhow::Error::msg)?;
    let output_name = m
        .get_one::<String>("output")
        .map(String::as_str)
        .unwrap_or("compact");
    let output = output_format(output_name, follow)?;
    let custom_mask: Vec<String> = m
        .get_many::<String>("field-mask")
        .map(|v| v.cloned().collect())
        .unwrap_or_default();
    let use_default_masks = m
        .get_one::<bool>("use-default-field-masks")
        .copied()
        .unwrap_or(true);
    let aggregate = aggregate_by(m, output, follow)?;
    // Grouping needs the grouped fields: no default mask then.
    let field_mask = request_field_mask(
        output,
        output_name,
        custom_mask,
        use_default_masks && aggregate.is_none(),
        m.get_flag("print-policy-names"),
    )?;
    let color = match m.get_one::<String>("color").map(|s| s.to_ascii_lowercase()) {
        Some(c) if c == "always" => true,
        Some(c) if c == "never" => false,
        _ => {
            out_is_terminal
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var("TERM").map(|t| t != "dumb").unwrap_or(true)
        }
    };
    let numeric = m.get_flag("numeric");
    let ip_translation = !numeric && m.get_one::<bool>("ip-translation").copied().unwrap_or(true);
    let printer = Options {
        output,
        time_format: TimeFormat::from_name(
            m.get_one::<String>("time-format")
                .map(String::as_str)
                .unwrap_or("StampMilli"),
        ),
        color,
        ip_translation,
        node_name: m.get_flag("print-node-name"),
        policy_names: m.get_flag("print-policy-names"),
        debug,
        silent_errors: m.get_flag("silent-errors"),
    };

    // getFlowsRequest
    let sel = selector(m, input_file.is_none())?;
    let mut wl = whitelist;
    let mut bl = blacklist;
    wl.extend(
        parse_raw_filters(&settings.list("allowlist"))
            .map_err(|e| anyhow::anyhow!("invalid --allowlist flag: {e}"))?,
    );
    bl.extend(
        parse_raw_filters(&settings.list("denylist"))
            .map_err(|e| anyhow::anyhow!("invalid --denylist flag: {e}"))?,
    );
    if !field_mask.is_empty() {
        validate_field_mask(&field_mask)?;
    }
    let request = GetFlowsRequest {
        number: sel.number,
        follow: sel.follow,
        whitelist: wl,
        blacklist: bl,
        since: sel.since,
        until: sel.until,
        first: sel.first,
        field_mask: (!field_mask.is_empty()).then_some(FieldMask { paths: field_mask }),
        ..Default::default()
    };
    Ok(Plan {
        request,
        printer,
        print_raw_filters: m.get_flag("print-raw-filters"),
        input_file,
        archive,
        aggregate,
    })
}

/// Runs `hubble observe`.
pub async fn run(
    m: &ArgMatches,
    file: &ConfigFile,
    debug: bool,
    io: &mut Io,
) -> anyhow::Result<()> {
    let plan = plan(m, file, debug, io.out_is_terminal)?;
    if plan.print_raw_filters {
        let yaml = filters_yaml(&plan.request.whitelist, &plan.request.blacklist)
            .map_err(anyhow::Error::msg)?;
        io.out.write_all(yaml.as_bytes())?;
        return Ok(());
    }
    if plan.printer.debug {
        // Upstream logs the request at debug level just before sending it
        // (`-D`): the field mask it carries can be checked from outside.
        let req = serde_json::to_string(&plan.request).context("encode the GetFlows request")?;
        writeln!(
            io.err,
            "level=DEBUG msg=\"Sending GetFlows request\" request={req}"
        )?;
    }
    if let Some(by) = &plan.aggregate
        && plan.request.follow
        && plan.input_file.is_none()
    {
        let server = ServerOptions::from_settings(&Settings::new(m, file))?;
        let mut a = crate::aggregate::Aggregator::new(&by.paths);
        let terminal = io.out_is_terminal;
        let mut out = io::BufWriter::with_capacity(defaults::OUTPUT_BUFFER, &mut io.out);
        return aggregate_follow(
            &server,
            plan.request.clone(),
            &mut a,
            by,
            &plan.printer,
            &mut out,
            terminal,
        )
        .await;
    }
    let mut agg = plan
        .aggregate
        .as_ref()
        .map(|a| crate::aggregate::Aggregator::new(&a.paths));
    // `--archive` with `--aggregate-by`: from the columns when they can.
    let mut columnar = false;
    if let (Some(dir), Some(a)) = (&plan.archive, agg.as_mut()) {
        columnar = aggregate_archive_columns(dir, &plan.request, a, &plan.printer, &mut io.err)?;
    }
    // Without grouping, an archive's lines are formatted on the reading
    // threads when the output form allows it.
    let rendered =
        agg.is_none() && crate::printer::FlowRenderer::renders_alone(plan.printer.output);
    let out = io::BufWriter::with_capacity(defaults::OUTPUT_BUFFER, &mut io.out);
    let mut printer = Printer::new(plan.printer.clone(), out, &mut io.err);
    // Each response is printed, or joins its group.
    let mut on = |p: &mut Printer<_, _>, r: &GetFlowsResponse| match agg.as_mut() {
        Some(a) => {
            a.add_response(r);
            Ok(())
        }
        None => p.write_response(r),
    };
    let res = match (&plan.input_file, &plan.archive) {
        _ if columnar => Ok(()),
        (_, Some(dir)) if rendered => observe_archive_rendered(dir, &plan.request, &mut printer),
        (_, Some(dir)) => observe_archive(dir, &plan.request, &mut printer, &mut on),
        (Some(path), None) => observe_input(path, &plan.request, &mut printer, &mut on),
        (None, None) => {
            let settings = Settings::new(m, file);
            let server = ServerOptions::from_settings(&settings)?;
            observe_server(&server, plan.request, &mut printer, &mut on).await
        }
    };
    let closed = printer.close();
    drop(printer);
    res?;
    closed?;
    if let (Some(a), Some(by)) = (agg, &plan.aggregate) {
        let mut out = io::BufWriter::with_capacity(defaults::OUTPUT_BUFFER, &mut io.out);
        if plan.printer.output.is_json() {
            a.write_json(&mut out, by.top)?;
        } else {
            a.write_table(&mut out, by.top, plan.printer.time_format)?;
        }
        out.flush()?;
        if a.lost > 0 {
            writeln!(
                io.err,
                "warning: the server reported {} events lost: the counts miss them",
                a.lost
            )?;
        }
    }
    Ok(())
}

/// `--aggregate-by` with `--follow`: the groups of the flows so far,
/// redrawn every [`defaults::AGGREGATE_REFRESH`] (over the previous table on
/// a terminal, like `top`; one table after another otherwise) until the
/// stream ends or Ctrl-C, then once more.
async fn aggregate_follow(
    server: &ServerOptions,
    req: GetFlowsRequest,
    agg: &mut crate::aggregate::Aggregator,
    by: &AggregateBy,
    opts: &Options,
    out: &mut dyn Write,
    redraw_in_place: bool,
) -> anyhow::Result<()> {
    let draw = |agg: &crate::aggregate::Aggregator, out: &mut dyn Write| -> anyhow::Result<()> {
        agg.write_table(out, by.top, opts.time_format)?;
        Ok(())
    };
    crate::request::stream_redrawn(
        server,
        req,
        agg,
        crate::aggregate::Aggregator::add_response,
        draw,
        out,
        true,
        redraw_in_place,
    )
    .await
}

/// What to do with each response: print it, or count it.
type OnResponse<'a, W, E> = dyn FnMut(&mut Printer<W, E>, &GetFlowsResponse) -> io::Result<()> + 'a;

async fn observe_server<W: Write, E: Write>(
    server: &ServerOptions,
    req: GetFlowsRequest,
    printer: &mut Printer<W, E>,
    on: &mut OnResponse<'_, W, E>,
) -> anyhow::Result<()> {
    let conn = crate::conn::connect(server).await?;
    let mut client = stream_client(&conn);
    let stream = client
        .get_flows(conn.stream(req))
        .await
        .map_err(|s| anyhow::anyhow!(grpc_error(&s)))?
        .into_inner();
    print_stream(stream, printer, on).await
}

/// `--archive DIR`: the same request answered from a flow-archiver archive
/// (partitions outside `--since`/`--until` are not read; filters are
/// Hubble's, as on the server).
fn observe_archive<W: Write, E: Write>(
    dir: &str,
    req: &GetFlowsRequest,
    printer: &mut Printer<W, E>,
    on: &mut OnResponse<'_, W, E>,
) -> anyhow::Result<()> {
    use archiver::read::{Archive, Query};
    let archive = Archive::open(dir)?; // a directory or s3://bucket/prefix
    let q = Query::from(req);
    let (flows, stats) = archive.query(&q)?;
    report_archive_stats(&stats, &mut |m| printer.write_err(m))?;
    for f in flows {
        let res = proto::observer::GetFlowsResponse {
            node_name: f.node_name.clone(),
            time: f.time,
            response_types: Some(proto::observer::get_flows_response::ResponseTypes::Flow(f)),
        };
        on(printer, &res)?;
    }
    Ok(())
}

/// [`observe_archive`] for output forms whose lines stand alone (compact,
/// JSON): each flow is formatted on the thread that read it
/// (`Archive::query_rendered`) and written in the query's order while later
/// row groups are still read: byte for byte what [`observe_archive`]
/// prints. The warnings (unreadable files, links skipped) come after the
/// flows instead of before them (on stderr either way).
fn observe_archive_rendered<W: Write, E: Write>(
    dir: &str,
    req: &GetFlowsRequest,
    printer: &mut Printer<W, E>,
) -> anyhow::Result<()> {
    use archiver::read::{Archive, Query};
    let archive = Archive::open(dir)?; // a directory or s3://bucket/prefix
    keep_freed_memory();
    let opts = printer.opts.clone();
    let make = || crate::printer::FlowRenderer::new(opts.clone());
    let stats = match archive.query_rendered(&Query::from(req), make, &mut printer.out) {
        Ok(stats) => stats,
        // The output's own error (a closed pipe ends the command quietly,
        // as when printing flow by flow).
        Err(archiver::read::ReadError::Output(e)) => return Err(e.into()),
        Err(e) => return Err(e.into()),
    };
    report_archive_stats(&stats, &mut |m| printer.write_err(m))?;
    Ok(())
}

/// Tells glibc's allocator to keep freed memory for reuse instead of
/// unmapping or trimming it: the archive reader allocates and frees a
/// buffer per Parquet page (~1 MB decompressed), and each fresh mapping is
/// faulted in again page by page (a tenth of the query's CPU time in the
/// profile). The command exits after one query, so the memory kept is at
/// most its peak. Elsewhere nothing to do.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; called before the
    // query's threads start, and any value is valid for these two.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// Warns about what an archive query skipped: symbolic links not followed
/// and unreadable files (each named, then their count).
fn report_archive_stats(
    stats: &archiver::read::ReadStats,
    err: &mut dyn FnMut(&str) -> io::Result<()>,
) -> io::Result<()> {
    for w in &stats.warnings {
        err(&format!("warning: {w}\n"))?;
    }
    for f in &stats.unreadable {
        err(&format!("warning: skipped unreadable archive file {f}\n"))?;
    }
    if !stats.unreadable.is_empty() {
        err(&format!(
            "warning: {} archive file(s) unreadable and skipped: the output misses their flows\n",
            stats.unreadable.len()
        ))?;
    }
    Ok(())
}

/// `--archive DIR --aggregate-by FIELDS`, grouped from the Parquet columns
/// without decoding a flow (`archiver::columnar`). Returns `false`, having
/// done nothing, when a path or a filter has no column: the caller then
/// decodes the flows instead (same result, slower; `-D` says why).
fn aggregate_archive_columns(
    dir: &str,
    req: &GetFlowsRequest,
    agg: &mut crate::aggregate::Aggregator,
    opts: &Options,
    err: &mut dyn Write,
) -> anyhow::Result<bool> {
    use archiver::read::{Archive, Query};
    let q = Query::from(req);
    let plan = match archiver::columnar::plan(&q, agg.paths()) {
        Ok(p) => p,
        Err(why) => {
            if opts.debug {
                writeln!(
                    err,
                    "level=DEBUG msg=\"aggregating by decoding each flow\" reason=\"{why}\""
                )?;
            }
            return Ok(false);
        }
    };
    let archive = Archive::open(dir)?;
    let (groups, stats) = archive.aggregate(&q, &plan)?;
    if !opts.silent_errors {
        report_archive_stats(&stats, &mut |m| {
            err.write_all(crate::printer::escape_terminal(m, false).as_bytes())
        })?;
    }
    for g in groups {
        agg.add_group(g.values, g.count, g.first, g.last);
    }
    Ok(true)
}

fn observe_input<W: Write, E: Write>(
    path: &str,
    req: &GetFlowsRequest,
    printer: &mut Printer<W, E>,
    on: &mut OnResponse<'_, W, E>,
) -> anyhow::Result<()> {
    let reader: Box<dyn BufRead> = if path == "-" {
        Box::new(io::BufReader::new(io::stdin()))
    } else {
        Box::new(io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("open {path}"))?,
        ))
    };
    crate::input_file::for_each(reader, req, |item| match item {
        crate::input_file::Item::Response(res) => on(printer, &res),
        crate::input_file::Item::Warning(msg) => printer.write_err(&msg),
    })
}

//! `hubble map`: the service map ([`crate::map`]) of the flows that
//! `hubble observe` with the same selector and filter flags would print,
//! from the server, `--input-file` or `--archive`; printed as text (edges
//! largest first), Graphviz DOT, Mermaid or JSON. `--follow` redraws the
//! text every [`defaults::AGGREGATE_REFRESH`]; the document formats refuse
//! it (a document is written once, when the flows are all in).

use std::io::{self, BufRead, Write};

use anyhow::Context as _;
use clap::ArgMatches;
use proto::observer::GetFlowsRequest;
use proto::wkt::FieldMask;

use crate::config::{ConfigFile, ServerOptions, Settings};
use crate::defaults;
use crate::filters::parse_raw_filters;
use crate::map::{Graph, Grouping, ServiceMap};
use crate::request::{Io, parse_filter_flags, selector};

/// `-o` of `hubble map`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Edges as aligned columns, then a summary line.
    Text,
    /// Graphviz DOT.
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
    /// One JSON document.
    Json,
}

impl Format {
    /// Parses `-o`.
    pub fn parse(s: &str) -> anyhow::Result<Format> {
        Ok(match s {
            "text" | "table" => Format::Text,
            "dot" => Format::Dot,
            "mermaid" => Format::Mermaid,
            "json" => Format::Json,
            other => anyhow::bail!(
                "invalid output format {other:?} for hubble map: one of text, dot, mermaid, json"
            ),
        })
    }
}

/// The fields the map reads: the request asks for these only.
pub const MAP_FIELDS: &[&str] = &[
    "time",
    "verdict",
    "IP",
    "l4",
    "source",
    "destination",
    "is_reply",
    "source_service",
    "destination_service",
    "node_name",
];

/// The parsed `hubble map` settings.
#[derive(Debug)]
pub struct Plan {
    /// The request for the server (or the input file, or the archive).
    pub request: GetFlowsRequest,
    /// `-o`.
    pub format: Format,
    /// `--group-by`.
    pub grouping: Grouping,
    /// `--focus`.
    pub focus: Option<String>,
    /// `--top` (0: all).
    pub top: usize,
    /// `--input-file`.
    pub input_file: Option<String>,
    /// `--archive`.
    pub archive: Option<String>,
}

/// Turns the command line into a request and output settings.
pub fn plan(m: &ArgMatches, file: &ConfigFile) -> anyhow::Result<Plan> {
    let filters = parse_filter_flags(m)?;
    let settings = Settings::new(m, file);
    let follow = m.get_flag("follow");
    let input_file = m.get_one::<String>("input-file").cloned();
    let archive = m.get_one::<String>("archive").cloned();
    let format_name = m.get_one::<String>("output").map_or("text", String::as_str);
    let format = Format::parse(format_name)?;
    if follow && archive.is_some() {
        anyhow::bail!(
            "--follow cannot be used with --archive: an archive is history; follow the server instead"
        );
    }
    if follow && format != Format::Text {
        anyhow::bail!(
            "--follow cannot be used with -o {format_name}: a {format_name} document is written once, when every flow is in, and a followed stream never ends; map a bounded window (--last N, --since/--until, --all), or follow the text map (-o text), which is redrawn every second"
        );
    }
    let grouping = Grouping::parse(
        m.get_one::<String>("group-by")
            .map_or("workload", String::as_str),
    )?;
    let focus = m
        .get_one::<String>("focus")
        .filter(|f| !f.is_empty())
        .cloned();
    let top = usize::try_from(m.get_one::<u64>("top").copied().unwrap_or(0)).unwrap_or(usize::MAX);
    let (mut wl, mut bl) = filters.finish().map_err(anyhow::Error::msg)?;
    wl.extend(
        parse_raw_filters(&settings.list("allowlist"))
            .map_err(|e| anyhow::anyhow!("invalid --allowlist flag: {e}"))?,
    );
    bl.extend(
        parse_raw_filters(&settings.list("denylist"))
            .map_err(|e| anyhow::anyhow!("invalid --denylist flag: {e}"))?,
    );
    let sel = selector(m, input_file.is_none())?;
    let request = GetFlowsRequest {
        number: sel.number,
        follow: sel.follow,
        whitelist: wl,
        blacklist: bl,
        since: sel.since,
        until: sel.until,
        first: sel.first,
        field_mask: Some(FieldMask {
            paths: MAP_FIELDS.iter().map(|s| (*s).to_owned()).collect(),
        }),
        ..Default::default()
    };
    Ok(Plan {
        request,
        format,
        grouping,
        focus,
        top,
        input_file,
        archive,
    })
}

/// The graph as printed: focused, then cut to the `top` edges (the nodes
/// of the edges kept, and the focused node).
pub fn shape(graph: Graph, focus: Option<&str>, top: usize) -> anyhow::Result<Graph> {
    let mut g = match focus {
        Some(id) => {
            if graph.node(id).is_none() {
                let mut known: Vec<&str> = graph.nodes.iter().map(|n| n.id.as_str()).collect();
                known.truncate(10);
                anyhow::bail!(
                    "--focus {id:?}: no such node in the map (node ids look like namespace/workload, reserved:world, identity:1234, ip:10.0.0.1; some here: {})",
                    if known.is_empty() {
                        "none, the map is empty".to_owned()
                    } else {
                        known.join(", ")
                    }
                );
            }
            graph.focus(id)
        }
        None => graph,
    };
    if top > 0 && g.edges.len() > top {
        g.edges.truncate(top);
        let keep = |id: &str| {
            focus == Some(id) || g.edges.iter().any(|e| e.source == id || e.target == id)
        };
        let nodes = g.nodes.iter().filter(|n| keep(&n.id)).cloned().collect();
        g.nodes = nodes;
    }
    Ok(g)
}

/// Writes the map in `format`.
pub fn write(g: &Graph, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Text => g.write_text(out, 0),
        Format::Dot => out.write_all(g.to_dot().as_bytes()),
        Format::Mermaid => out.write_all(g.to_mermaid().as_bytes()),
        Format::Json => out.write_all(g.to_json().as_bytes()),
    }
}

/// Runs `hubble map`.
pub async fn run(m: &ArgMatches, file: &ConfigFile, io: &mut Io) -> anyhow::Result<()> {
    let plan = plan(m, file)?;
    let mut map = ServiceMap::new(plan.grouping);
    match (&plan.input_file, &plan.archive) {
        (_, Some(dir)) => {
            use archiver::read::{Archive, Query};
            let archive = Archive::open(dir)?;
            let (flows, _) = archive.query(&Query::from(&plan.request))?;
            for f in flows {
                map.add(&f);
            }
        }
        (Some(path), None) => {
            let reader: Box<dyn BufRead> = if path == "-" {
                Box::new(io::BufReader::new(io::stdin()))
            } else {
                Box::new(io::BufReader::new(
                    std::fs::File::open(path).with_context(|| format!("open {path}"))?,
                ))
            };
            let err = &mut io.err;
            crate::input_file::for_each(reader, &plan.request, |item| match item {
                crate::input_file::Item::Response(r) => {
                    map.add_response(&r);
                    Ok(())
                }
                crate::input_file::Item::Warning(msg) => writeln!(err, "{msg}"),
            })?;
        }
        (None, None) => {
            let server = ServerOptions::from_settings(&Settings::new(m, file))?;
            let terminal = io.out_is_terminal;
            let mut out = io::BufWriter::with_capacity(defaults::OUTPUT_BUFFER, &mut io.out);
            from_server(&server, &plan, &mut map, &mut out, terminal).await?;
            out.flush()?;
            if plan.request.follow {
                return Ok(());
            }
        }
    }
    let g = shape(map.graph(), plan.focus.as_deref(), plan.top)?;
    let mut out = io::BufWriter::with_capacity(defaults::OUTPUT_BUFFER, &mut io.out);
    write(&g, plan.format, &mut out)?;
    out.flush()?;
    drop(out);
    if map.lost > 0 {
        writeln!(
            io.err,
            "warning: the server reported {} events lost: the counts miss them",
            map.lost
        )?;
    }
    Ok(())
}

/// Streams the request into `map`; with `--follow`, redraws the text map
/// every [`defaults::AGGREGATE_REFRESH`] (over the previous one on a
/// terminal, one after another otherwise) until the stream ends or Ctrl-C,
/// then once more.
async fn from_server(
    server: &ServerOptions,
    plan: &Plan,
    map: &mut ServiceMap,
    out: &mut dyn Write,
    redraw_in_place: bool,
) -> anyhow::Result<()> {
    let draw = |map: &ServiceMap, out: &mut dyn Write| -> anyhow::Result<()> {
        // A focused node not seen yet is not an error while following.
        let g = match shape(map.graph(), plan.focus.as_deref(), plan.top) {
            Ok(g) => g,
            Err(_) => shape(map.graph(), None, 0)?.focus(plan.focus.as_deref().unwrap_or("")),
        };
        g.write_text(out, 0)?;
        Ok(())
    };
    crate::request::stream_redrawn(
        server,
        plan.request.clone(),
        map,
        ServiceMap::add_response,
        draw,
        out,
        plan.request.follow,
        redraw_in_place,
    )
    .await
}

//! Printing `GetFlowsResponse`s and server status the way upstream's
//! `hubble` prints them (`hubble/pkg/printer`): one module per output form
//! (`compact`, `dict`, `table`, `json`), sharing the field renderings here:
//! host names with ports, identities, the TYPE column, verdicts, summaries,
//! colours and the terminal-escape filter.
//!
//! Flows and lost events go to the output writer; node-status events go to
//! the error writer (only NODE_ERROR and NODE_UNAVAILABLE unless debug).

mod compact;
mod dict;
mod events;
mod json;
mod status;
mod table;
pub mod tabwriter;

use std::borrow::Cow;
use std::io::{self, Write};

use proto::flow::{
    DebugCapturePoint, Flow, L7FlowType, LostEventSource, Policy, SocketTranslationPoint,
    TrafficDirection, Verdict, layer4::Protocol, layer7::Record,
};
use proto::observer::{GetFlowsResponse, get_flows_response::ResponseTypes};
use proto::relay::NodeState;

pub use events::{agent_event_details, endpoint_short};
pub use status::{group_thousands, write_server_status};
pub use tabwriter::TabWriter;

use crate::gotime::TimeFormat;

/// Monitor message types, as in `event_type.type`.
pub(crate) mod msg_type {
    pub const DROP: i32 = 1;
    pub const CAPTURE: i32 = 3;
    pub const TRACE: i32 = 4;
    pub const POLICY_VERDICT: i32 = 5;
    pub const TRACE_SOCK: i32 = 7;
}

/// Output forms of `-o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// One line per flow.
    Compact,
    /// `KEY: VALUE` blocks.
    Dict,
    /// jsonpb `GetFlowsResponse` lines (`json`, `jsonpb`).
    JsonPb,
    /// Bare `Flow` lines (`HUBBLE_COMPAT=legacy-json-output`).
    JsonLegacy,
    /// Tab-aligned columns.
    Table,
}

impl Output {
    /// Whether this form prints JSON.
    pub fn is_json(self) -> bool {
        matches!(self, Output::JsonPb | Output::JsonLegacy)
    }
}

/// Printer settings (upstream's printer options).
#[derive(Debug, Clone)]
pub struct Options {
    /// The output form.
    pub output: Output,
    /// `--time-format`.
    pub time_format: TimeFormat,
    /// Colours on (already resolved from `--color` and the terminal).
    pub color: bool,
    /// `--ip-translation` (off with `--numeric`).
    pub ip_translation: bool,
    /// `--print-node-name`.
    pub node_name: bool,
    /// `--print-policy-names`.
    pub policy_names: bool,
    /// `-D`: print every node-status event.
    pub debug: bool,
    /// `-s`: drop everything meant for stderr.
    pub silent_errors: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            output: Output::Compact,
            time_format: TimeFormat::StampMilli,
            color: false,
            ip_translation: true,
            node_name: false,
            policy_names: false,
            debug: false,
            silent_errors: false,
        }
    }
}

/// ANSI colours as fatih/color writes them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Colorer {
    on: bool,
}

impl Colorer {
    fn paint(self, code: u8, s: &str) -> Cow<'_, str> {
        if self.on {
            Cow::Owned(format!("\x1b[{code}m{s}\x1b[0m"))
        } else {
            Cow::Borrowed(s)
        }
    }
    pub(crate) fn host(self, s: &str) -> Cow<'_, str> {
        self.paint(36, s)
    }
    pub(crate) fn port(self, s: &str) -> Cow<'_, str> {
        self.paint(33, s)
    }
    pub(crate) fn identity(self, s: &str) -> Cow<'_, str> {
        self.paint(35, s)
    }
    fn red(self, s: &str) -> Cow<'_, str> {
        self.paint(31, s)
    }
    fn green(self, s: &str) -> Cow<'_, str> {
        self.paint(32, s)
    }
    fn yellow(self, s: &str) -> Cow<'_, str> {
        self.paint(33, s)
    }
}

/// Replaces terminal escapes and carriage returns in printed text (`ESC` →
/// `^[`, CR → `\r`), keeping the colour sequences the printer itself writes.
pub fn escape_terminal(s: &str, keep_colors: bool) -> Cow<'_, str> {
    if !s.contains(['\x1b', '\r']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut rest = s;
    while let Some(i) = rest.find(['\x1b', '\r']) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if rest.starts_with('\r') {
            out.push_str("\\r");
            rest = &rest[1..];
            continue;
        }
        let seq_len = if keep_colors {
            color_sequence_len(rest)
        } else {
            0
        };
        if seq_len > 0 {
            out.push_str(&rest[..seq_len]);
            rest = &rest[seq_len..];
        } else {
            out.push_str("^[");
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn color_sequence_len(s: &str) -> usize {
    for seq in [
        "\x1b[0m", "\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[34m", "\x1b[35m", "\x1b[36m",
    ] {
        if s.starts_with(seq) {
            return seq.len();
        }
    }
    0
}

/// Prints flows the way a [`Printer`] with these options does, one at a
/// time into a byte buffer, for the archive's reading threads
/// (`archiver::read::Render`): `hubble observe --archive` formats its lines
/// on every core.
pub struct FlowRenderer {
    printer: Printer<Vec<u8>, io::Sink>,
}

impl FlowRenderer {
    /// Whether `output`'s flow lines stand alone: compact and JSON, not the
    /// dict form (its separator depends on the line before) nor the table
    /// (its column widths depend on every row).
    pub fn renders_alone(output: Output) -> bool {
        matches!(
            output,
            Output::Compact | Output::JsonPb | Output::JsonLegacy
        )
    }

    /// A renderer for `opts` (meant for a form that [`Self::renders_alone`]).
    pub fn new(opts: Options) -> Self {
        FlowRenderer {
            printer: Printer::new(opts, Vec::new(), io::sink()),
        }
    }
}

impl archiver::read::Render for FlowRenderer {
    fn render(&mut self, flow: Flow, out: &mut Vec<u8>) -> io::Result<()> {
        let res = GetFlowsResponse {
            node_name: flow.node_name.clone(),
            time: flow.time,
            response_types: Some(ResponseTypes::Flow(flow)),
        };
        // JSON straight into `out` (`json_line` without its scratch buffer;
        // a line that cannot be printed leaves nothing).
        let json = match (self.printer.opts.output, &res.response_types) {
            (Output::JsonPb, _) => Some(proto::json::append_hubble_json(out, &res)),
            (Output::JsonLegacy, Some(ResponseTypes::Flow(f))) => {
                Some(proto::json::append_hubble_json(out, f))
            }
            _ => None,
        };
        match json {
            Some(Ok(())) => {
                out.push(b'\n');
                Ok(())
            }
            Some(Err(e)) => Err(io::Error::other(e)),
            None => {
                // The printer writes straight into `out`.
                std::mem::swap(&mut self.printer.out, out);
                let r = self.printer.write_response(&res);
                std::mem::swap(&mut self.printer.out, out);
                r
            }
        }
    }
}

/// Prints responses to `out` (flows, lost events) and `err` (node status).
pub struct Printer<W: Write, E: Write> {
    pub(crate) opts: Options,
    pub(crate) out: W,
    pub(crate) err: E,
    pub(crate) line: usize,
    pub(crate) tab: TabWriter,
    pub(crate) color: Colorer,
    pub(crate) buf: String,
    /// The JSON line being written (`-o json`).
    pub(crate) json: Vec<u8>,
}

impl<W: Write, E: Write> std::fmt::Debug for Printer<W, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Printer").field("opts", &self.opts).finish()
    }
}

impl<W: Write, E: Write> Printer<W, E> {
    /// A printer; tables are never coloured (Go's tabwriter would count the
    /// escape bytes as width).
    pub fn new(opts: Options, out: W, err: E) -> Self {
        let color = Colorer {
            on: opts.color && matches!(opts.output, Output::Compact | Output::Dict),
        };
        Printer {
            opts,
            out,
            err,
            line: 0,
            tab: TabWriter::default(),
            color,
            buf: String::with_capacity(512),
            json: Vec::new(),
        }
    }

    /// Prints one response.
    pub fn write_response(&mut self, res: &GetFlowsResponse) -> io::Result<()> {
        match &res.response_types {
            Some(ResponseTypes::Flow(f)) => self.write_flow(res, f),
            Some(ResponseTypes::LostEvents(_)) => self.write_lost(res),
            Some(ResponseTypes::NodeStatus(_)) => self.write_node_status(res),
            None => Ok(()),
        }
    }

    fn write_flow(&mut self, res: &GetFlowsResponse, f: &Flow) -> io::Result<()> {
        match self.opts.output {
            Output::Compact => self.compact_flow(f)?,
            Output::Dict => self.dict_flow(f)?,
            Output::Table => self.table_flow(f),
            Output::JsonPb => return self.json_line(res),
            Output::JsonLegacy => return self.json_line(f),
        }
        self.line += 1;
        Ok(())
    }

    /// Writes the buffered text, escaped, to the output.
    pub(crate) fn emit(&mut self) -> io::Result<()> {
        let text = escape_terminal(&self.buf, self.color.on);
        self.out.write_all(text.as_bytes())
    }

    /// Writes an error/warning line to stderr (unless `-s`).
    pub(crate) fn write_err(&mut self, msg: &str) -> io::Result<()> {
        if self.opts.silent_errors {
            return Ok(());
        }
        let text = escape_terminal(msg, false);
        self.err.write_all(text.as_bytes())
    }

    fn write_node_status(&mut self, res: &GetFlowsResponse) -> io::Result<()> {
        let Some(ResponseTypes::NodeStatus(s)) = &res.response_types else {
            return Ok(());
        };
        let state = NodeState::try_from(s.state_change).unwrap_or(NodeState::UnknownNodeState);
        if !self.opts.debug && !matches!(state, NodeState::NodeError | NodeState::NodeUnavailable) {
            return Ok(());
        }
        let ts = |p: &Self| crate::gotime::fmt_timestamp(p.opts.time_format, res.time.as_ref());
        let names = join_with_cutoff(&s.node_names, ", ", 50);
        match self.opts.output {
            Output::JsonPb => {
                let line = proto::json::to_hubble_json(res).map_err(io::Error::other)?;
                self.write_err(&format!("{line}\n"))
            }
            Output::JsonLegacy => Ok(()),
            Output::Dict => {
                if self.line != 0 {
                    self.out.write_all(b"------------\n")?;
                } else {
                    self.line += 1;
                }
                let message = if s.message.is_empty() {
                    "N/A".to_owned()
                } else {
                    go_quote(&s.message)
                };
                let text = format!(
                    "  TIMESTAMP: {}\n      STATE: {}\n      NODES: {}\n    MESSAGE: {}\n",
                    ts(self),
                    state.as_str_name(),
                    names,
                    message
                );
                self.write_err(&text)
            }
            Output::Compact | Output::Table => {
                let prefix = format!("{} [{}]", ts(self), res.node_name);
                let n = s.node_names.len();
                let msg = match state {
                    NodeState::NodeConnected => {
                        format!("{prefix}: Receiving flows from {n} nodes: {names}")
                    }
                    NodeState::NodeUnavailable => {
                        format!("{prefix}: {n} nodes are unavailable: {names}")
                    }
                    NodeState::NodeGone => {
                        format!("{prefix}: {n} nodes removed from cluster: {names}")
                    }
                    NodeState::NodeError => format!(
                        "{prefix}: Error {} on {n} nodes: {names}",
                        go_quote(&s.message)
                    ),
                    NodeState::UnknownNodeState => format!(
                        "{prefix}: unknown node status event: state_change:{} node_names:{:?}",
                        s.state_change, s.node_names
                    ),
                };
                self.write_err(&format!("{msg}\n"))
            }
        }
    }

    fn write_lost(&mut self, res: &GetFlowsResponse) -> io::Result<()> {
        let Some(ResponseTypes::LostEvents(l)) = &res.response_types else {
            return Ok(());
        };
        if self.opts.output == Output::JsonLegacy {
            return self.json_line(l);
        }
        if self.opts.output == Output::JsonPb {
            return self.json_line(res);
        }
        let fmt = self.opts.time_format;
        let time = crate::gotime::fmt_timestamp(fmt, res.time.as_ref());
        let source = LostEventSource::try_from(l.source)
            .map(|s| s.as_str_name().to_owned())
            .unwrap_or_else(|_| l.source.to_string());
        let cpu = l.cpu.map(|c| c.value).unwrap_or(0);
        let span = if l.first.is_some() || l.last.is_some() {
            format!(
                " (first: {}, last: {})",
                crate::gotime::fmt_timestamp(fmt, l.first.as_ref()),
                crate::gotime::fmt_timestamp(fmt, l.last.as_ref())
            )
        } else {
            String::new()
        };
        let n = l.num_events_lost;
        self.buf.clear();
        match self.opts.output {
            Output::Compact => {
                self.buf = format!("{time} EVENTS LOST: {source} CPU({cpu}) {n}{span}\n");
                self.emit()?;
            }
            Output::Dict => {
                if self.line != 0 {
                    self.buf.push_str("------------\n");
                }
                self.buf.push_str(&format!("  TIMESTAMP: {time}\n"));
                if self.opts.node_name {
                    self.buf
                        .push_str(&format!("       NODE: {}\n", res.node_name));
                }
                self.buf.push_str(&format!(
                    "     SOURCE: {source}\n       TYPE: EVENTS LOST\n    VERDICT: -\n    SUMMARY: CPU({cpu}) - {n}{span}\n"
                ));
                self.emit()?;
            }
            Output::Table => {
                self.table_header();
                let node = if self.opts.node_name {
                    format!("{}\t", res.node_name)
                } else {
                    String::new()
                };
                let row =
                    format!("{time}\t{node}{source}\t-\tEVENTS LOST\t-\tCPU({cpu}) - {n}{span}\n");
                self.tab.write_str(&escape_terminal(&row, false));
            }
            Output::JsonPb | Output::JsonLegacy => {}
        }
        self.line += 1;
        Ok(())
    }

    /// Flushes the table and the writers.
    pub fn close(&mut self) -> io::Result<()> {
        if !self.tab.is_empty() {
            let text = self.tab.flush();
            self.out.write_all(text.as_bytes())?;
        }
        self.out.flush()?;
        self.err.flush()
    }

    /// Flushes the output writer (follow mode, between bursts).
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Gives the writers back.
    pub fn into_writers(self) -> (W, E) {
        (self.out, self.err)
    }

    // --- shared field renderings ---

    /// SOURCE and DESTINATION: pod, service or DNS name (with
    /// `--ip-translation`), else the IP; with `:port` for TCP/UDP/SCTP.
    pub(crate) fn host_names(&self, f: &Flow) -> (String, String) {
        let Some(ip) = &f.ip else {
            return match &f.ethernet {
                Some(eth) => (
                    self.color.host(&eth.source).into_owned(),
                    self.color.host(&eth.destination).into_owned(),
                ),
                None => (String::new(), String::new()),
            };
        };
        let (mut src_ns, mut src_pod, mut dst_ns, mut dst_pod) = ("", "", "", "");
        let (mut src_svc, mut dst_svc) = ("", "");
        if let Some(s) = &f.source {
            src_ns = &s.namespace;
            src_pod = &s.pod_name;
        }
        if let Some(d) = &f.destination {
            dst_ns = &d.namespace;
            dst_pod = &d.pod_name;
        }
        if let Some(s) = &f.source_service {
            src_ns = &s.namespace;
            src_svc = &s.name;
        }
        if let Some(d) = &f.destination_service {
            dst_ns = &d.namespace;
            dst_svc = &d.name;
        }
        let (sport, dport) = ports(f);
        let src = self.hostname(&ip.source, sport, src_ns, src_pod, src_svc, &f.source_names);
        let dst = self.hostname(
            &ip.destination,
            dport,
            dst_ns,
            dst_pod,
            dst_svc,
            &f.destination_names,
        );
        (
            self.color.host(&src).into_owned(),
            self.color.host(&dst).into_owned(),
        )
    }

    fn hostname(
        &self,
        ip: &str,
        port: Option<u32>,
        ns: &str,
        pod: &str,
        svc: &str,
        names: &[String],
    ) -> String {
        let mut host = Cow::Borrowed(ip);
        if self.opts.ip_translation {
            if !pod.is_empty() {
                host = Cow::Owned(path_join(ns, pod));
            } else if !svc.is_empty() {
                host = Cow::Owned(path_join(ns, svc));
            } else if !names.is_empty() {
                host = Cow::Owned(names.join(","));
            }
        }
        match port {
            Some(p) if p != 0 => {
                let p = p.to_string();
                join_host_port(&host, &self.color.port(&p))
            }
            _ => host.into_owned(),
        }
    }

    /// `(ID:1234)`, or `(world)` etc. for reserved identities.
    pub(crate) fn identity(&self, id: u32) -> String {
        let s = match reserved_identity_name(id) {
            Some(name) => format!("({name})"),
            None => format!("(ID:{id})"),
        };
        self.color.identity(&s).into_owned()
    }

    /// VERDICT, with ALLOWED/DENIED/AUDITED for policy verdicts, coloured.
    pub(crate) fn verdict(&self, f: &Flow) -> String {
        let pv = event_type(f) == msg_type::POLICY_VERDICT;
        let v = Verdict::try_from(f.verdict).ok();
        let name = match v {
            Some(v) => v.as_str_name().to_owned(),
            None => f.verdict.to_string(),
        };
        let mut s = match v {
            Some(Verdict::Forwarded | Verdict::Redirected) => {
                let m = if pv { "ALLOWED" } else { &name };
                self.color.green(m).into_owned()
            }
            Some(Verdict::Dropped | Verdict::Error) => {
                let m = if pv { "DENIED" } else { &name };
                self.color.red(m).into_owned()
            }
            Some(Verdict::Audit) => {
                let m = if pv { "AUDITED" } else { &name };
                self.color.yellow(m).into_owned()
            }
            Some(Verdict::Traced | Verdict::Translated) => self.color.yellow(&name).into_owned(),
            _ => name,
        };
        if self.opts.policy_names && pv {
            s.push_str(&format_policy_names(policies_for(f)));
        }
        s
    }

    /// SUMMARY: the IP trace id, the flow summary and the auth type.
    pub(crate) fn summary(&self, f: &Flow) -> String {
        let mut s = String::new();
        if let Some(t) = &f.ip_trace_id
            && t.trace_id > 0
        {
            s.push_str(&format!("IP Trace ID: {}; ", t.trace_id));
        }
        s.push_str(&f.summary);
        match proto::flow::AuthType::try_from(f.auth_type) {
            Ok(proto::flow::AuthType::Disabled) => {}
            Ok(proto::flow::AuthType::TestAlwaysFail) => {
                s.push_str("; ");
                s.push_str(&self.color.red("TEST_ALWAYS_FAIL"));
            }
            Ok(a) => {
                s.push_str("; ");
                s.push_str(&self.color.green(a.as_str_name()));
            }
            Err(_) => {
                s.push_str("; ");
                s.push_str(&self.color.green(&f.auth_type.to_string()));
            }
        }
        s
    }
}

fn event_type(f: &Flow) -> i32 {
    f.event_type.as_ref().map(|e| e.r#type).unwrap_or(0)
}

fn ports(f: &Flow) -> (Option<u32>, Option<u32>) {
    match f.l4.as_ref().and_then(|l| l.protocol.as_ref()) {
        Some(Protocol::Tcp(t)) => (Some(t.source_port), Some(t.destination_port)),
        Some(Protocol::Udp(u)) => (Some(u.source_port), Some(u.destination_port)),
        Some(Protocol::Sctp(s)) => (Some(s.source_port), Some(s.destination_port)),
        _ => (None, None),
    }
}

/// Go's `path.Join` for a namespace and a name.
fn path_join(ns: &str, name: &str) -> String {
    if ns.is_empty() {
        name.to_owned()
    } else {
        format!("{ns}/{name}")
    }
}

/// Go's `net.JoinHostPort`: brackets around hosts that contain a colon.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Names of Cilium's reserved numeric identities (0 is `unknown`).
pub fn reserved_identity_name(id: u32) -> Option<&'static str> {
    ebpf::identity::name(id)
}

/// Reserved identities and their names, in numeric order
/// ([`ebpf::identity::NAMES`], the one table).
pub const RESERVED_IDENTITIES: [(u32, &str); 11] = ebpf::identity::NAMES;

/// The TYPE column (upstream's `GetFlowType`).
pub fn flow_type(f: &Flow) -> String {
    if let Some(l7) = &f.l7 {
        let mut ty = L7FlowType::try_from(l7.r#type)
            .map(|t| t.as_str_name().to_ascii_lowercase())
            .unwrap_or_else(|_| l7.r#type.to_string());
        #[expect(deprecated, reason = "Kafka records still print as kafka-*")]
        let proto = match &l7.record {
            Some(Record::Http(_)) => "http",
            Some(Record::Dns(d)) => {
                ty.push(' ');
                ty.push_str(&d.observation_source);
                "dns"
            }
            Some(Record::Kafka(_)) => "kafka",
            None => "l7",
        };
        return format!("{proto}-{ty}");
    }
    let (t, sub) = f
        .event_type
        .as_ref()
        .map(|e| (e.r#type, e.sub_type))
        .unwrap_or((0, 0));
    match t {
        msg_type::TRACE => {
            let sub = sub as u8;
            flow_parser::reasons::obs_point_name(sub)
                .map(str::to_owned)
                .unwrap_or_else(|| sub.to_string())
        }
        msg_type::DROP => flow_parser::reasons::drop_reason_text(u32::from(sub as u8)).into_owned(),
        msg_type::POLICY_VERDICT => {
            let dir = TrafficDirection::try_from(f.traffic_direction)
                .map(|d| d.as_str_name().to_owned())
                .unwrap_or_else(|_| f.traffic_direction.to_string());
            format!(
                "policy-verdict:{} {dir}",
                flow_parser::reasons::policy_match_name(f.policy_match_type)
            )
        }
        msg_type::CAPTURE => DebugCapturePoint::try_from(f.debug_capture_point)
            .map(|d| d.as_str_name().to_owned())
            .unwrap_or_else(|_| f.debug_capture_point.to_string()),
        msg_type::TRACE_SOCK => match SocketTranslationPoint::try_from(f.sock_xlate_point) {
            Ok(SocketTranslationPoint::SockXlatePointPostDirectionFwd) => "post-xlate-fwd".into(),
            Ok(SocketTranslationPoint::SockXlatePointPostDirectionRev) => "post-xlate-rev".into(),
            Ok(SocketTranslationPoint::SockXlatePointPreDirectionFwd) => "pre-xlate-fwd".into(),
            Ok(SocketTranslationPoint::SockXlatePointPreDirectionRev) => "pre-xlate-rev".into(),
            Ok(p) => p.as_str_name().to_owned(),
            Err(_) => f.sock_xlate_point.to_string(),
        },
        _ => "UNKNOWN".to_owned(),
    }
}

/// The policies that decided a policy verdict, by verdict and direction.
fn policies_for(f: &Flow) -> &[Policy] {
    let allowed = match Verdict::try_from(f.verdict) {
        Ok(Verdict::Forwarded | Verdict::Redirected) => true,
        Ok(Verdict::Dropped | Verdict::Error) => false,
        // Upstream names no policy for audited (or other) verdicts.
        _ => return &[],
    };
    match (TrafficDirection::try_from(f.traffic_direction), allowed) {
        (Ok(TrafficDirection::Ingress), true) => &f.ingress_allowed_by,
        (Ok(TrafficDirection::Ingress), false) => &f.ingress_denied_by,
        (Ok(TrafficDirection::Egress), true) => &f.egress_allowed_by,
        (Ok(TrafficDirection::Egress), false) => &f.egress_denied_by,
        _ => &[],
    }
}

/// ` BY name (Kind), …` for policies with both a name and a kind.
pub fn format_policy_names(policies: &[Policy]) -> String {
    let named: Vec<String> = policies
        .iter()
        .filter(|p| !p.name.is_empty() && !p.kind.is_empty())
        .map(|p| format!("{} ({})", p.name, p.kind))
        .collect();
    if named.is_empty() {
        String::new()
    } else {
        format!(" BY {}", named.join(", "))
    }
}

/// Joins names, leaving out the ones past `target` characters as
/// ` (and N more)` (always keeps the first).
pub fn join_with_cutoff(elems: &[String], sep: &str, target: usize) -> String {
    let mut len = 0;
    let mut end = elems.len();
    for (i, e) in elems.iter().enumerate() {
        len += e.len() + sep.len();
        if len > target && i > 0 {
            end = i;
            break;
        }
    }
    let joined = elems[..end].join(sep);
    let omitted = elems.len() - end;
    if omitted == 0 {
        joined
    } else {
        format!("{joined} (and {omitted} more)")
    }
}

/// Go's `%q` / `strconv.Quote` for the common cases.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests;

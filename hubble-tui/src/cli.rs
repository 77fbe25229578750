//! The command tree (clap builder API: the filter flags come from a table,
//! [`crate::request::filter_args`]; `tui`'s flags from [`tui::flags`]) and the
//! entry point that runs a command line and returns the exit code. Errors
//! print as upstream prints them: the message alone on stderr, exit status
//! 1.
//!
//! The top of the crate: `cli` uses `cmd::*` and `tui`, which use
//! [`crate::request`]; nothing imports `cli`.

use std::ffi::OsString;
use std::io::{self, Write};

use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::config::{ConfigFile, Settings, default_config_path};
use crate::request::{filter_args, raw_filter_args};
use crate::{cmd, defaults, tui};

pub use crate::cmd::version::VERSION;
pub use crate::request::Io;

/// `HUBBLE_TLS_SERVER_NAME` for `tls-server-name` (viper's env mapping).
/// The command tree is built once per process, so the names are leaked.
fn env_name(key: &str) -> &'static str {
    Box::leak(format!("HUBBLE_{}", key.to_ascii_uppercase().replace('-', "_")).into_boxed_str())
}

fn server_flags() -> Vec<Arg> {
    let s = |name: &'static str, help: &'static str| {
        Arg::new(name)
            .long(name)
            .env(env_name(name))
            .global(true)
            .help_heading("Server Flags")
            .help(help)
    };
    let b = |name: &'static str, help: &'static str| {
        s(name, help)
            .action(ArgAction::SetTrue)
            .value_parser(clap::builder::BoolishValueParser::new())
    };
    vec![
        s(
            "server",
            "Address of a Hubble server. Ignored when --input-file or --port-forward is provided.",
        )
        .default_value(defaults::SERVER)
        .value_name("string"),
        s("timeout", "Hubble server dialing timeout")
            .default_value(defaults::DIAL_TIMEOUT_FLAG)
            .value_name("duration"),
        s(
            "request-timeout",
            "Unary Request timeout. Only applies to non-streaming RPCs (ServerStatus, ListNodes, ListNamespaces).",
        )
        .default_value(defaults::REQUEST_TIMEOUT_FLAG)
        .value_name("duration"),
        b(
            "tls",
            "Specify that TLS must be used when establishing a connection to a Hubble server.\nBy default, TLS is only enabled if the server address starts with 'tls://'.",
        ),
        b(
            "tls-allow-insecure",
            "Allows the client to skip verifying the server's certificate chain and host name.\nThis option is NOT recommended as, in this mode, TLS is susceptible to machine-in-the-middle attacks.\nSee also the 'tls-server-name' option which allows setting the server name.",
        ),
        s(
            "tls-ca-cert-files",
            "Paths to custom Certificate Authority (CA) certificate files.The files must contain PEM encoded data.",
        )
        .action(ArgAction::Append)
        .value_delimiter(',')
        .value_name("strings"),
        s(
            "tls-client-cert-file",
            "Path to the public key file for the client certificate to connect to a Hubble server (implies TLS).\nThe file must contain PEM encoded data.",
        )
        .value_name("string"),
        s(
            "tls-client-key-file",
            "Path to the private key file for the client certificate to connect a Hubble server (implies TLS).\nThe file must contain PEM encoded data.",
        )
        .value_name("string"),
        s(
            "tls-server-name",
            "Specify a server name to verify the hostname on the returned certificate (eg: 'instance.hubble-relay.cilium.io').",
        )
        .value_name("string"),
        s("basic-auth-username", "Specify a username for basic auth").value_name("string"),
        s("basic-auth-password", "Specify a password for basic auth").value_name("string"),
        b(
            "port-forward",
            "Automatically forward the relay port to the local machine (not supported by this CLI; use kubectl port-forward).",
        )
        .short('P'),
        s(
            "port-forward-port",
            "Local port to forward to. This option is only considered when --port-forward is set.",
        )
        .default_value("4245")
        .value_name("uint16"),
        s(
            "kube-context",
            "Kubernetes configuration context. This option is only considered when --port-forward is set.",
        )
        .value_name("string"),
        s(
            "kube-namespace",
            "Namespace Cilium is running in. This option is only considered when --port-forward is set.",
        )
        .default_value("kube-system")
        .value_name("string"),
        s(
            "kubeconfig",
            "Path to the kubeconfig file. This option is only considered when --port-forward is set.",
        )
        .value_name("string"),
    ]
}

const TIME_FORMATS_HELP: &str = "one of:
  StampMilli:             Jan _2 15:04:05.000
  YearMonthDay:           2006-01-02
  YearMonthDayHour:       2006-01-02T15Z07:00
  YearMonthDayHourMinute: 2006-01-02T15:04Z07:00
  RFC3339:                2006-01-02T15:04:05Z07:00
  RFC3339Milli:           2006-01-02T15:04:05.999Z07:00
  RFC3339Micro:           2006-01-02T15:04:05.999999Z07:00
  RFC3339Nano:            2006-01-02T15:04:05.999999999Z07:00
  RFC1123Z:               Mon, 02 Jan 2006 15:04:05 -0700";

/// `--all`, `--first`, `--follow`, `--last`, `--since`, `--until` of the
/// flow commands (`observe`, `map`).
fn flow_selector_args(cmd: Command) -> Command {
    let since_help = |what: &str| {
        format!(
            "Filter flows {what} a specific date. The format is relative (e.g. 3s, 4m, 1h43m, ...) or {}",
            TIME_FORMATS_HELP.replace("Z07:00", "-07:00")
        )
    };
    cmd.next_help_heading("Selectors Flags")
        .arg(
            Arg::new("all")
                .long("all")
                .action(ArgAction::SetTrue)
                .help("Get all flows stored in Hubble's buffer. Note: this option may cause Hubble to return a lot of data. It is recommended to only use it along filters to limit the amount of data returned."),
        )
        .arg(
            Arg::new("first")
                .long("first")
                .value_name("uint")
                .value_parser(clap::value_parser!(u64))
                .help("Get first N flows stored in Hubble's buffer. When querying against Hubble Relay, this gets N flows per instance of Hubble connected to that Relay."),
        )
        .arg(
            Arg::new("follow")
                .short('f')
                .long("follow")
                .action(ArgAction::SetTrue)
                .help("Follow flows output"),
        )
        .arg(
            Arg::new("last")
                .long("last")
                .value_name("uint")
                .value_parser(clap::value_parser!(u64))
                .help("Get last N flows stored in Hubble's buffer (default 20). When querying against Hubble Relay, this gets N flows per instance of Hubble connected to that Relay."),
        )
        .arg(
            Arg::new("since")
                .long("since")
                .value_name("string")
                .help(since_help("since")),
        )
        .arg(
            Arg::new("until")
                .long("until")
                .value_name("string")
                .help(since_help("until")),
        )
}

fn observe_args(cmd: Command) -> Command {
    let cmd = flow_selector_args(cmd).next_help_heading("Filters Flags");
    raw_filter_args(filter_args(cmd), true)
        .next_help_heading("Formatting Flags")
        .arg(
            Arg::new("output")
                .short('o')
                .long("output")
                .default_value("compact")
                .value_name("string")
                .help("Specify the output format, one of:\n  compact:  Compact output\n  dict:     Each flow is shown as KEY:VALUE pair\n  jsonpb:   JSON encoded GetFlowResponse according to proto3's JSON mapping\n  json:     Alias for jsonpb\n  table:    Tab-aligned columns"),
        )
        .arg(
            Arg::new("print-node-name")
                .long("print-node-name")
                .action(ArgAction::SetTrue)
                .help("Print node name in output"),
        )
        .arg(
            Arg::new("print-policy-names")
                .long("print-policy-names")
                .action(ArgAction::SetTrue)
                .help("Print policy names in output"),
        )
        .arg(
            Arg::new("time-format")
                .long("time-format")
                .default_value("StampMilli")
                .value_name("string")
                .help(format!(
                    "Specify the time format for printing. This option does not apply to the json and jsonpb output type. {TIME_FORMATS_HELP}"
                )),
        )
        .next_help_heading("Flow Format Flags")
        .arg(
            Arg::new("color")
                .long("color")
                .default_value("auto")
                .value_name("string")
                .help("Colorize the output when the output format is one of 'compact' or 'dict'. The value is one of 'auto' (default), 'always' or 'never'"),
        )
        .arg(
            Arg::new("ip-translation")
                .long("ip-translation")
                .num_args(0..=1)
                .require_equals(true)
                .default_value("true")
                .default_missing_value("true")
                .value_parser(clap::builder::BoolishValueParser::new())
                .help("Translate IP addresses to logical names such as pod name, FQDN, ..."),
        )
        .arg(
            Arg::new("numeric")
                .long("numeric")
                .action(ArgAction::SetTrue)
                .help("Display all information in numeric form"),
        )
        .next_help_heading("Other Flags")
        .arg(
            Arg::new("field-mask")
                .long("field-mask")
                .visible_alias("experimental-field-mask")
                .action(ArgAction::Append)
                .value_delimiter(',')
                .value_name("strings")
                .help("Comma-separated list of fields for mask. Fields not in the mask will be removed from server response."),
        )
        .arg(
            Arg::new("use-default-field-masks")
                .long("use-default-field-masks")
                .visible_alias("experimental-use-default-field-masks")
                .num_args(0..=1)
                .require_equals(true)
                .default_value("true")
                .default_missing_value("true")
                .value_parser(clap::builder::BoolishValueParser::new())
                .help("Request only visible fields when the output format is compact, tab, or dict."),
        )
        .arg(
            Arg::new("aggregate-by")
                .long("aggregate-by")
                .action(ArgAction::Append)
                .value_delimiter(',')
                .value_name("fields")
                .help("Group flows by these comma-separated field paths (as in --field-mask, e.g. source.namespace,source.pod_name,l4.TCP.destination_port,verdict) and print each group's count and first and last time, largest first: a table, or one JSON object per group with -o json. With --archive, grouped from the Parquet columns without decoding flows when every path and filter has a column (paths: verdict, drop_reason_desc, Type, node_name, traffic_direction, is_reply, event_type.type/sub_type, IP.source/destination/ipVersion, source./destination. namespace, pod_name, identity, l4.TCP/UDP/SCTP.source_port/destination_port; filters: pod, namespace, identity, port, protocol but dns/http/kafka, verdict, type, node, drop reason, traffic direction, reply, since/until); otherwise each flow is decoded (same result, slower)."),
        )
        .arg(
            Arg::new("top")
                .long("top")
                .value_name("N")
                .value_parser(clap::value_parser!(u64))
                .default_value("0")
                .help("With --aggregate-by: print only the N largest groups (0: all)."),
        )
        .args(source_args(
            "Query flows from a flow-archiver Parquet archive (a directory or s3://bucket/prefix) instead of the server: history with the same filters and formats.",
        ))
        .arg(
            Arg::new("print-raw-filters")
                .long("print-raw-filters")
                .action(ArgAction::SetTrue)
                .help("Print allowlist/denylist filters and exit without sending the request to Hubble server"),
        )
        .arg(
            Arg::new("silent-errors")
                .short('s')
                .long("silent-errors")
                .action(ArgAction::SetTrue)
                .help("Silently ignores errors and warnings"),
        )
}

/// The flags of `observe agent-events` / `observe debug-events`:
/// selectors, formatting and `--silent-errors` (no filter flags).
fn events_args(cmd: Command, what: &'static str) -> Command {
    let since_help = |when: &str| {
        format!(
            "Filter {what} {when} a specific date. The format is relative (e.g. 3s, 4m, 1h43m, ...) or {}",
            TIME_FORMATS_HELP.replace("Z07:00", "-07:00")
        )
    };
    cmd.next_help_heading("Selectors Flags")
        .arg(
            Arg::new("all")
                .long("all")
                .action(ArgAction::SetTrue)
                .help(format!("Get all {what} stored in Hubble's buffer")),
        )
        .arg(
            Arg::new("first")
                .long("first")
                .value_name("uint")
                .value_parser(clap::value_parser!(u64))
                .help(format!("Get first N {what} stored in Hubble's buffer")),
        )
        .arg(
            Arg::new("follow")
                .short('f')
                .long("follow")
                .action(ArgAction::SetTrue)
                .help(format!("Follow {what} output")),
        )
        .arg(
            Arg::new("last")
                .long("last")
                .value_name("uint")
                .value_parser(clap::value_parser!(u64))
                .help(format!("Get last N {what} stored in Hubble's buffer (default 20)")),
        )
        .arg(
            Arg::new("since")
                .long("since")
                .value_name("string")
                .help(since_help("since")),
        )
        .arg(
            Arg::new("until")
                .long("until")
                .value_name("string")
                .help(since_help("until")),
        )
        .next_help_heading("Formatting Flags")
        .arg(
            Arg::new("output")
                .short('o')
                .long("output")
                .default_value("compact")
                .value_name("string")
                .help(format!("Specify the output format, one of:\n  compact:  Compact output\n  dict:     Each {} is shown as KEY:VALUE pair\n  jsonpb:   JSON encoded response according to proto3's JSON mapping\n  json:     Alias for jsonpb\n  table:    Tab-aligned columns", what.trim_end_matches('s'))),
        )
        .arg(
            Arg::new("print-node-name")
                .long("print-node-name")
                .action(ArgAction::SetTrue)
                .help("Print node name in output"),
        )
        .arg(
            Arg::new("time-format")
                .long("time-format")
                .default_value("StampMilli")
                .value_name("string")
                .help(format!(
                    "Specify the time format for printing. This option does not apply to the json and jsonpb output type. {TIME_FORMATS_HELP}"
                )),
        )
        .next_help_heading("Other Flags")
        .arg(
            Arg::new("silent-errors")
                .short('s')
                .long("silent-errors")
                .action(ArgAction::SetTrue)
                .help("Silently ignores errors and warnings"),
        )
}

/// The flags of `hubble map`: the selectors and every filter flag of
/// `observe`, the same sources, and the map's own output flags.
fn map_args(cmd: Command) -> Command {
    let cmd = flow_selector_args(cmd).next_help_heading("Filters Flags");
    raw_filter_args(filter_args(cmd), true)
        .next_help_heading("Formatting Flags")
        .arg(
            Arg::new("output")
                .short('o')
                .long("output")
                .default_value("text")
                .value_name("string")
                .help("Specify the output format, one of:\n  text:     Edges as tab-aligned columns, largest first\n  dot:      Graphviz DOT (e.g. | dot -Tsvg > map.svg)\n  mermaid:  Mermaid flowchart\n  json:     One JSON document: nodes and edges"),
        )
        .arg(
            Arg::new("group-by")
                .long("group-by")
                .default_value("workload")
                .value_name("string")
                .help("What a node stands for: workload, namespace or identity"),
        )
        .arg(
            Arg::new("focus")
                .long("focus")
                .value_name("node")
                .help("Only this node (its id, e.g. default/deathstar, reserved:world) and the edges to and from it"),
        )
        .arg(
            Arg::new("top")
                .long("top")
                .value_name("N")
                .value_parser(clap::value_parser!(u64))
                .default_value("0")
                .help("Only the N edges with the most flows (0: all)"),
        )
        .next_help_heading("Other Flags")
        .args(source_args(
            "Query flows from a flow-archiver Parquet archive (a directory or s3://bucket/prefix) instead of the server.",
        ))
}

const MAP_EXAMPLES: &str = "Examples:
  hubble map --last 1000
  hubble map --all --namespace default -o dot | dot -Tsvg > map.svg
  hubble map --input-file flows.json --group-by namespace -o mermaid
  hubble map --archive /var/lib/flows --since 1h -o json
  hubble map --follow --focus default/deathstar";

const OBSERVE_EXAMPLES: &str = "Examples:
  hubble observe --verdict DROPPED
  hubble observe --pod default/xwing --protocol tcp --port 80
  hubble observe --not --namespace kube-system -o json
  hubble observe -o jsonpb --last 1000 > flows.json
  hubble observe --input-file flows.json --verdict DROPPED

  A flow matches when it matches at least one value of each filter flag and
  every filter flag given. Either-side flags (--ip, --pod, --namespace, --port,
  --label, --fqdn, --service, --identity, --workload, --cluster) pair source
  with source and destination with destination: --ip X --port 80 means
  (source X and source port 80) or (destination X and destination port 80).
  --not negates the next filter flag; negated flags are combined with AND.";

/// `--input-file` and `--archive`: flows from a file or an archive instead
/// of the server (`observe`, `map`).
fn source_args(archive_help: &'static str) -> [Arg; 2] {
    [
        Arg::new("input-file")
            .long("input-file")
            .value_name("string")
            .help("Query flows from this file instead of the server. Use '-' to read from stdin."),
        Arg::new("archive")
            .long("archive")
            .value_name("path")
            .conflicts_with("input-file")
            .help(archive_help),
    ]
}

fn output_arg(default: &'static str, help: &'static str) -> Arg {
    Arg::new("output")
        .short('o')
        .long("output")
        .default_value(default)
        .value_name("string")
        .help_heading("Formatting Flags")
        .help(help)
}

/// The `hubble` command tree.
pub fn command() -> Command {
    let observe_long = "Observe provides visibility into flow information on the network and
application level. Rich filtering enable observing specific flows related to
individual pods, services, TCP connections, DNS queries, HTTP requests and
more.";
    let mut root = Command::new("hubble")
        .about("CLI")
        .long_about("Hubble is a utility to observe and inspect recent Cilium routed traffic in a cluster.")
        .version(VERSION)
        .subcommand_required(true)
        .arg_required_else_help(true)
        .args_override_self(true)
        .arg(
            Arg::new("config")
                .long("config")
                .global(true)
                .env("HUBBLE_CONFIG")
                .value_name("string")
                .help_heading("Global Flags")
                .help("Optional config file (default $XDG_CONFIG_HOME/hubble/config.yaml or ~/.config/hubble/config.yaml)"),
        )
        .arg(
            Arg::new("debug")
                .short('D')
                .long("debug")
                .global(true)
                .env("HUBBLE_DEBUG")
                .action(ArgAction::SetTrue)
                .value_parser(clap::builder::BoolishValueParser::new())
                .help_heading("Global Flags")
                .help("Enable debug messages"),
        );
    for a in server_flags() {
        root = root.arg(a);
    }
    let observe = observe_args(
        Command::new("observe")
            .about("Observe flows and events of a Hubble server")
            .long_about(observe_long)
            .after_help(OBSERVE_EXAMPLES)
            .args_override_self(true)
            .args_conflicts_with_subcommands(true),
    )
    .subcommand(observe_args(
        Command::new("flows")
            .about("Observe flows of a Hubble server")
            .long_about(observe_long)
            .args_override_self(true)
            .after_help(OBSERVE_EXAMPLES),
    ))
    .subcommand(events_args(
        Command::new("agent-events")
            .about("Observe Cilium agent events")
            .long_about("Observe Cilium agent events (agent start, policy updates, endpoint and ipcache changes) with GetAgentEvents. A Hubble Relay does not serve them: query a node's Hubble server.")
            .args_override_self(true),
        "agent events",
    ))
    .subcommand(events_args(
        Command::new("debug-events")
            .about("Observe Cilium debug events")
            .long_about("Observe Cilium datapath debug events with GetDebugEvents. A Hubble Relay does not serve them: query a node's Hubble server.")
            .args_override_self(true),
        "debug events",
    ));
    root.subcommand(observe)
        .subcommand(map_args(
            Command::new("map")
                .about("Service map: which workloads talk to which, with flow counts by verdict")
                .long_about("Builds the service map of the flows selected (from the server, --input-file or --archive): workloads (or namespaces, or identities) and the edges between them, with forwarded, dropped and other flow counts, ports and services. Prints it as text, Graphviz DOT, Mermaid or JSON; --follow redraws the text every second.")
                .after_help(MAP_EXAMPLES)
                .args_override_self(true),
        ))
        .subcommand(tui::flags::args(
            Command::new("tui")
                .about("Live terminal UI of the flows of a Hubble server (table, detail, counters, top talkers, rate)")
                .long_about(tui::flags::LONG)
                .after_help(tui::flags::KEYS)
                .args_override_self(true),
        ))
        .subcommand(
            Command::new("status")
                .about("Display status of Hubble server")
                .long_about("Display shows the status of the Hubble server. This is intended as a basic\nconnectivity health check.")
                .arg(output_arg(
                    "compact",
                    "Specify the output format, one of:\n compact:  Compact output\n dict:     Status is shown as KEY:VALUE pair\n json:     JSON encoding\n table:    Tab-aligned columns",
                )),
        )
        .subcommand(
            Command::new("list")
                .about("List Hubble objects")
                .subcommand_required(true)
                .subcommand(
                    Command::new("nodes")
                        .visible_alias("node")
                        .about("List Hubble nodes")
                        .arg(output_arg(
                            "table",
                            "Specify the output format, one of:\n json:     JSON encoding\n table:    Tab-aligned columns\n wide:     Tab-aligned columns with additional information",
                        )),
                )
                .subcommand(
                    Command::new("namespaces")
                        .about("List namespaces with recent flows")
                        .arg(output_arg(
                            "table",
                            "Specify the output format, one of:\n json:     JSON encoding\n table:    Tab-aligned columns\n wide:     Tab-aligned columns with additional information",
                        )),
                ),
        )
        .subcommand(
            Command::new("watch")
                .visible_alias("w")
                .about("Watch Hubble objects")
                .subcommand_required(true)
                .subcommand(
                    Command::new("peers")
                        .visible_alias("peer")
                        .about("Watch for Hubble peers updates"),
                ),
        )
        .subcommand(
            Command::new("reflect")
                .about("Use gRPC reflection to explore Hubble's API")
                .long_about("Lists the gRPC services of a Hubble server (or relay) through gRPC server reflection, hiding the reflection and health services."),
        )
        .subcommand(
            Command::new("version")
                .about("Display detailed version information")
                .long_about("Displays information about the version of this software."),
        )
        .subcommand(
            Command::new("config")
                .about("Modify or view hubble config")
                .subcommand_required(true)
                .subcommand(Command::new("view").about("Display merged configuration settings"))
                .subcommand(
                    Command::new("get")
                        .about("Get an individual value in the hubble config file")
                        .arg(Arg::new("key").required(true)),
                )
                .subcommand(
                    Command::new("set")
                        .about("Set an individual value in the hubble config file")
                        .arg(Arg::new("key").required(true))
                        .arg(Arg::new("value").required(true)),
                )
                .subcommand(
                    Command::new("reset")
                        .about("Reset all or an individual value in the hubble config file")
                        .arg(Arg::new("key")),
                ),
        )
}

/// The loaded config file for these matches.
pub fn load_config(m: &ArgMatches) -> anyhow::Result<ConfigFile> {
    match m.get_one::<String>("config") {
        Some(p) if !p.is_empty() => ConfigFile::load(std::path::Path::new(p)),
        _ => match default_config_path() {
            Some(p) => ConfigFile::load(&p),
            None => Ok(ConfigFile::default()),
        },
    }
}

/// Runs a command line; returns the exit status.
pub fn run<I, T>(args: I, mut io: Io) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = match command().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let text = e.render().to_string();
            let w: &mut dyn Write = if e.use_stderr() {
                &mut io.err
            } else {
                &mut io.out
            };
            let _ = w.write_all(text.as_bytes());
            let _ = w.flush();
            return code;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(io.err, "starting the async runtime: {e}");
            return 1;
        }
    };
    let res = rt.block_on(dispatch(&matches, &mut io));
    let _ = io.out.flush();
    match res {
        Ok(()) => 0,
        Err(e) => {
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            {
                return 0;
            }
            let _ = writeln!(io.err, "{}", format_error(&e));
            let _ = io.err.flush();
            1
        }
    }
}

/// An error with its causes, as `outer: inner: root`.
fn format_error(e: &anyhow::Error) -> String {
    let mut s = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
    }
    s
}

async fn dispatch(m: &ArgMatches, io: &mut Io) -> anyhow::Result<()> {
    let file = load_config(m)?;
    let settings = Settings::new(m, &file);
    let debug = settings.bool("debug")?;
    match m.subcommand() {
        Some(("observe", sub)) => {
            let sub = match sub.subcommand() {
                Some(("flows", flows)) => flows,
                Some(("agent-events", ev)) => {
                    return cmd::events::run(cmd::events::Kind::Agent, ev, &file, io).await;
                }
                Some(("debug-events", ev)) => {
                    return cmd::events::run(cmd::events::Kind::Debug, ev, &file, io).await;
                }
                _ => sub,
            };
            cmd::observe::run(sub, &file, debug, io).await
        }
        Some(("map", sub)) => cmd::map::run(sub, &file, io).await,
        Some(("tui", sub)) => tui::run(sub, &file, io).await,
        Some(("status", sub)) => cmd::status::run(sub, &file, io).await,
        Some(("list", sub)) => match sub.subcommand() {
            Some(("nodes", n)) => cmd::list::nodes(n, &file, io).await,
            Some(("namespaces", n)) => cmd::list::namespaces(n, &file, io).await,
            _ => Ok(()),
        },
        Some(("watch", sub)) => match sub.subcommand() {
            Some(("peers", p)) => cmd::watch::peers(p, &file, io).await,
            _ => Ok(()),
        },
        Some(("reflect", sub)) => cmd::reflect::run(sub, &file, io).await,
        Some(("version", _)) => cmd::version::run(io),
        Some(("config", sub)) => cmd::config::run(sub, file, io),
        _ => Ok(()),
    }
}

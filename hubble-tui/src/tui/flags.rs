//! The `hubble tui` command line: its flags (selectors for the first
//! screenful, every filter flag of `observe`, `--history`, `--archive`),
//! the [`Plan`] they make (the first `GetFlowsRequest`), and the filter
//! line: the filter flags as one editable line ([`filter_text`]) and back
//! ([`parse_filter_line`]), parsed with the same flag table and parser as
//! the command line so its meaning is identical.

use clap::{Arg, ArgMatches, Command};
use proto::flow::FlowFilter;
use proto::observer::GetFlowsRequest;

use super::keys::{quote_word, split_words};
use crate::config::{ConfigFile, Settings};
use crate::defaults;
use crate::filters::{FILTER_FLAGS, parse_raw_filters};
use crate::gotime::{parse_time, to_timestamp};
use crate::request::{filter_args, parse_filter_flags, raw_filter_args};

pub const LONG: &str = "A live terminal UI of the flows of a Hubble server (our exporter, our relay
or a Cilium Hubble relay), or of a flow-archiver archive with --archive:
a flow table coloured by verdict that follows, pauses and scrolls, a detail
pane with every field of the selected flow and its JSON, counters by verdict
and drop reason, top talkers and top drops by pod, namespace or identity, a
flows/s sparkline, node status and lost events. Filters take the same flags
as `hubble observe` and can be edited live with `/`. The stream reconnects
by itself when the server goes away.";

pub const KEYS: &str = "Keys:
  q, Ctrl-C       quit                      ?        help
  /               edit the filter (same flags as observe; Enter applies, Esc cancels)
  Up/Down, j/k    select a flow (stops following)
  PgUp/PgDn       scroll a page             Home/End oldest / newest (End follows)
  f               follow the newest flow    Space    pause (counters keep counting)
  Enter           detail pane               J/K      scroll the detail pane
  g               group top-N by pod / namespace / identity
  c               clear history and counters
  r               reconnect now

Examples:
  hubble tui --server localhost:4245
  hubble tui --verdict DROPPED --namespace default --history 50000
  hubble tui --archive /var/lib/flows --since 1h --pod default/xwing";

/// `--history`'s default as text ([`crate::defaults::TUI_HISTORY`]; a
/// test keeps the two equal).
const HISTORY_DEFAULT: &str = "10000";

/// The flags of `hubble tui`: selectors for the first screenful, every
/// filter flag of `observe`, the history size and `--archive`.
pub fn args(cmd: Command) -> Command {
    let cmd = cmd
        .next_help_heading("Selectors Flags")
        .arg(
            Arg::new("last")
                .long("last")
                .value_name("uint")
                .value_parser(clap::value_parser!(u64))
                .help("Get the last N flows stored in Hubble's buffer before following (default 1000, at most --history). When querying against Hubble Relay, this gets N flows per instance of Hubble connected to that Relay."),
        )
        .arg(
            Arg::new("since")
                .long("since")
                .value_name("string")
                .help("Start with the flows since this time (relative like 5m, or a date as in observe) instead of --last"),
        )
        .arg(
            Arg::new("until")
                .long("until")
                .value_name("string")
                .requires("archive")
                .help("With --archive: replay the flows until this time"),
        )
        .next_help_heading("Filters Flags");
    raw_filter_args(filter_args(cmd), true)
        .next_help_heading("TUI Flags")
        .arg(
            Arg::new("history")
                .long("history")
                .value_name("uint")
                .default_value(HISTORY_DEFAULT)
                .value_parser(clap::value_parser!(u64).range(1..=10_000_000))
                .help("Flows kept in memory for scrolling and the detail pane (counters and top-N count every flow)"),
        )
        .arg(
            Arg::new("archive")
                .long("archive")
                .value_name("path")
                .help("Replay flows from a flow-archiver Parquet archive (a directory or s3://bucket/prefix) instead of following a server; the same filters apply"),
        )
}

/// The parsed `hubble tui` command line.
#[derive(Debug)]
pub struct Plan {
    /// The first request (filters, first screenful, follow unless archive).
    pub request: GetFlowsRequest,
    /// `--history`.
    pub history: usize,
    /// `--archive`.
    pub archive: Option<String>,
    /// The filter flags as given, for the filter line.
    pub filter: String,
}

/// Turns the command line into the first request.
pub fn plan(m: &ArgMatches, file: &ConfigFile) -> anyhow::Result<Plan> {
    let (mut whitelist, mut blacklist) = parse_filter_flags(m)?
        .finish()
        .map_err(anyhow::Error::msg)?;
    let settings = Settings::new(m, file);
    whitelist.extend(
        parse_raw_filters(&settings.list("allowlist"))
            .map_err(|e| anyhow::anyhow!("invalid --allowlist flag: {e}"))?,
    );
    blacklist.extend(
        parse_raw_filters(&settings.list("denylist"))
            .map_err(|e| anyhow::anyhow!("invalid --denylist flag: {e}"))?,
    );
    let history = m
        .get_one::<u64>("history")
        .copied()
        .unwrap_or(defaults::TUI_HISTORY as u64);
    let history = usize::try_from(history).unwrap_or(defaults::TUI_HISTORY);
    let archive = m.get_one::<String>("archive").cloned();
    let now = chrono::Utc::now();
    let time = |name: &str| -> anyhow::Result<_> {
        match m.get_one::<String>(name).filter(|s| !s.is_empty()) {
            Some(s) => Ok(Some(to_timestamp(parse_time(s, now).map_err(|e| {
                anyhow::anyhow!("failed to parse the {name} time: {e}")
            })?))),
            None => Ok(None),
        }
    };
    let since = time("since")?;
    let until = time("until")?;
    let last = m.get_one::<u64>("last").copied();
    let cap = history as u64;
    let number = match (last, since.is_some() || until.is_some(), archive.is_some()) {
        (Some(n), _, _) => n.min(cap),
        (None, true, _) => 0,
        (None, false, true) => cap,
        (None, false, false) => defaults::TUI_BACKFILL.min(cap),
    };
    Ok(Plan {
        request: GetFlowsRequest {
            number,
            follow: archive.is_none(),
            whitelist,
            blacklist,
            since,
            until,
            ..Default::default()
        },
        history,
        archive,
        filter: filter_text(m),
    })
}

/// The filter flags of a command line, in order, as one editable line.
pub fn filter_text(m: &ArgMatches) -> String {
    let mut occ: Vec<(usize, String)> = Vec::new();
    for f in FILTER_FLAGS {
        let (Some(idx), Some(vals)) = (m.indices_of(f.name), m.get_many::<String>(f.name)) else {
            continue;
        };
        for (i, v) in idx.zip(vals) {
            let word = match f.no_opt_default {
                Some(d) if d == v => format!("--{}", f.name),
                Some(_) => format!("--{}={}", f.name, quote_word(v)),
                None => format!("--{} {}", f.name, quote_word(v)),
            };
            occ.push((i, word));
        }
    }
    for name in ["allowlist", "denylist"] {
        if m.value_source(name) != Some(clap::parser::ValueSource::CommandLine) {
            continue;
        }
        if let (Some(idx), Some(vals)) = (m.indices_of(name), m.get_many::<String>(name)) {
            for (i, v) in idx.zip(vals) {
                occ.push((i, format!("--{name} {}", quote_word(v))));
            }
        }
    }
    occ.sort_by_key(|o| o.0);
    occ.into_iter().map(|o| o.1).collect::<Vec<_>>().join(" ")
}

/// Parses a filter line (the flags of `hubble observe`, as typed after
/// `/`) with the same command table and flag parser as the command line,
/// so its meaning is identical. The error is one line for the status bar.
pub fn parse_filter_line(line: &str) -> Result<(Vec<FlowFilter>, Vec<FlowFilter>), String> {
    let words = split_words(line)?;
    let cmd = raw_filter_args(
        filter_args(
            Command::new("filter")
                .no_binary_name(true)
                .disable_help_flag(true)
                .args_override_self(true),
        ),
        false,
    );
    let m = cmd.try_get_matches_from(words).map_err(|e| {
        let text = e.render().to_string();
        let first = text.lines().next().unwrap_or_default();
        first.strip_prefix("error: ").unwrap_or(first).to_owned()
    })?;
    let p = parse_filter_flags(&m).map_err(|e| e.to_string())?;
    let (mut allow, mut deny) = p.finish()?;
    let raw = |name: &str| -> Vec<String> {
        m.get_many::<String>(name)
            .map(|v| v.cloned().collect())
            .unwrap_or_default()
    };
    allow.extend(
        parse_raw_filters(&raw("allowlist"))
            .map_err(|e| format!("invalid --allowlist flag: {e}"))?,
    );
    deny.extend(
        parse_raw_filters(&raw("denylist")).map_err(|e| format!("invalid --denylist flag: {e}"))?,
    );
    Ok((allow, deny))
}

#[cfg(test)]
#[test]
fn history_default_matches_defaults() {
    assert_eq!(HISTORY_DEFAULT, crate::defaults::TUI_HISTORY.to_string());
}

//! Every default the CLI uses, each with why it has that value (they are
//! upstream's, `hubble/pkg/defaults`, so scripts behave the same), and the
//! TUI's periods, timeouts and buffer sizes.

use std::time::Duration;

/// `--server`: the relay's port on localhost, where `cilium hubble
/// port-forward` puts it.
pub const SERVER: &str = "localhost:4245";

/// A server address with this prefix is dialled with TLS.
pub const TLS_PREFIX: &str = "tls://";

/// `--timeout`: dialling a healthy server on a LAN takes milliseconds;
/// five seconds covers a slow port-forward.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// [`DIAL_TIMEOUT`] as the flag's default text (`--help`, `config view`;
/// a test keeps the two equal).
pub const DIAL_TIMEOUT_FLAG: &str = "5s";

/// `--request-timeout`: unary calls (ServerStatus, GetNodes,
/// GetNamespaces) on a relay fan out to every node and may wait on the
/// slowest.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(12);

/// [`REQUEST_TIMEOUT`] as the flag's default text (`--help`, `config
/// view`; a test keeps the two equal).
pub const REQUEST_TIMEOUT_FLAG: &str = "12s";

/// The largest gRPC message a stream accepts (`GetFlows`, `GetAgentEvents`,
/// `GetDebugEvents`, for `observe` and `tui` alike): tonic's 4 MiB default
/// is too small for a flow with large L7 payloads or many policy names, and
/// upstream's client allows this much too; it still bounds what one
/// malformed message can make us allocate.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// `--last` when no selector is given: one screen of recent flows.
pub const FLOW_PRINT_COUNT: u64 = 20;

/// `--input-file` with `--last N` keeps N responses in memory: a bound so a
/// typo cannot exhaust memory.
pub const INPUT_LAST_MAX: u64 = 1_000_000;

/// The output buffer: large enough that printing is not syscall-bound at
/// high flow rates; flushed whenever the stream has nothing ready.
pub const OUTPUT_BUFFER: usize = 64 * 1024;

/// Default port when `--server` has none (gRPC's default for the DNS
/// resolver).
pub const DEFAULT_PORT: u16 = 443;

/// The field mask `hubble observe` sends by default (`--use-default-field-masks`,
/// on unless set to false) when the output is compact, dict or table and no
/// `--field-mask` is given: upstream's list (`hubble/pkg/defaults.FieldMask`,
/// Hubble 1.19), the same paths in the same order for all three formats.
///
/// It is upstream's list, not the set of fields our printers read: it leaves
/// out `traffic_direction`, `policy_match_type`, the policy names and a few
/// trace fields, so by default a policy verdict prints as
/// `policy-verdict:none TRAFFIC_DIRECTION_UNKNOWN`, exactly as upstream's
/// does against the same server. `--use-default-field-masks=false` gives the
/// full line. `-o json`/`jsonpb` never sends a default mask.
/// What `--print-policy-names` needs, added to [`FIELD_MASK`] when it is
/// given: the four policy fields and the direction that picks between them,
/// plus the match type of the same verdict line (upstream's mask omits them
/// all, which makes its flag print nothing by default; see
/// `request_field_mask`).
pub const POLICY_NAME_FIELDS: &[&str] = &[
    "traffic_direction",
    "policy_match_type",
    "ingress_allowed_by",
    "egress_allowed_by",
    "ingress_denied_by",
    "egress_denied_by",
];

pub const FIELD_MASK: &[&str] = &[
    "time",
    "verdict",
    "ethernet",
    "IP",
    "l4",
    "source.identity",
    "source.namespace",
    "source.pod_name",
    "destination.identity",
    "destination.namespace",
    "destination.pod_name",
    "Type",
    "node_name",
    "l7",
    "event_type",
    "source_service",
    "destination_service",
    "is_reply",
    "Summary",
    "ip_trace_id",
];

/// `hubble observe --aggregate-by --follow`: how often the table is
/// redrawn; once a second reads like `top` and costs nothing next to
/// decoding the stream.
pub const AGGREGATE_REFRESH: Duration = Duration::from_secs(1);

/// `hubble tui --history`: flows kept for scrolling and the detail pane.
/// A decoded flow costs about 2.5 KB, so 10,000 is about 25 MB: a few
/// seconds at 100k flows/s, minutes at a busy node's usual rate.
pub const TUI_HISTORY: usize = 10_000;

/// `hubble tui --last` when neither `--last` nor `--since` is given: the
/// flows asked for before following, enough to fill a tall screen at once.
pub const TUI_BACKFILL: u64 = 1_000;

/// The TUI's redraw period (10 frames per second): smooth enough for a
/// scrolling table, cheap enough that drawing never competes with decoding.
pub const TUI_TICK: Duration = Duration::from_millis(100);

/// First wait before reconnecting after the stream ended or failed.
pub const TUI_RECONNECT_MIN: Duration = Duration::from_millis(250);

/// Longest wait between reconnection attempts (the wait doubles up to it):
/// a restarted server is seen within five seconds.
pub const TUI_RECONNECT_MAX: Duration = Duration::from_secs(5);

/// How often the TUI asks the server for its status (node counts, rate).
pub const TUI_STATUS_PERIOD: Duration = Duration::from_secs(5);

/// Responses taken from the stream per lock of the shared inbox: large
/// enough that locking is rare at 100k flows/s, small enough that the UI
/// never waits long for the lock.
pub const TUI_BATCH: usize = 1024;

/// The TUI's terminal write buffer: a full frame of a large screen is
/// written in one or two syscalls.
pub const TUI_FRAME_BUFFER: usize = 64 * 1024;

/// The pause between two batches of an archive replay, so the UI thread
/// gets the inbox lock between batches.
pub const TUI_ARCHIVE_YIELD: Duration = Duration::from_micros(50);

/// Seconds of flows/s kept for the sparkline (wider than any screen needs).
pub const TUI_RATE_WINDOW: usize = 300;

/// Distinct groups counted per top-N table before the smallest half is
/// forgotten: bounds memory when sources are many (e.g. world IPs).
pub const TUI_GROUPS_MAX: usize = 8192;

/// Edges a service map keeps (`hubble map`, the TUI's `m`): flows between
/// pairs met after that count only as `overflow`, so memory stays bounded
/// when peers are many (e.g. world IPs); far more than a screen or a
/// drawing can show.
pub const MAP_EDGES_MAX: usize = 4096;

/// Distinct ports (and services) listed per service-map edge; further ones
/// are counted but not named (`+N more`).
pub const MAP_EDGE_PORTS_MAX: usize = 8;

#[cfg(test)]
#[test]
fn timeout_flags_match_their_durations() {
    let parse = |s: &str| {
        let ns = crate::gotime::parse_duration(s).unwrap();
        Duration::from_nanos(u64::try_from(ns).unwrap())
    };
    assert_eq!(parse(DIAL_TIMEOUT_FLAG), DIAL_TIMEOUT);
    assert_eq!(parse(REQUEST_TIMEOUT_FLAG), REQUEST_TIMEOUT);
}

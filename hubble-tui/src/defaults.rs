//! Every default the CLI uses, each with why it has that value (they are
//! upstream's, `hubble/pkg/defaults`, so scripts behave the same).

use std::time::Duration;

/// `--server`: the relay's port on localhost, where `cilium hubble
/// port-forward` puts it.
pub const SERVER: &str = "localhost:4245";

/// A server address with this prefix is dialled with TLS.
pub const TLS_PREFIX: &str = "tls://";

/// `--timeout`: dialling a healthy server on a LAN takes milliseconds;
/// five seconds covers a slow port-forward.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// `--request-timeout`: unary calls (ServerStatus, GetNodes,
/// GetNamespaces) on a relay fan out to every node and may wait on the
/// slowest.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(12);

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

/// Fields requested with `--use-default-field-masks` for compact, dict and
/// table output: every field those printers read.
pub const FIELD_MASK: &[&str] = &[
    "time",
    "source.identity",
    "source.namespace",
    "source.pod_name",
    "destination.identity",
    "destination.namespace",
    "destination.pod_name",
    "source_service",
    "destination_service",
    "l4",
    "IP",
    "ethernet",
    "l7",
    "Type",
    "node_name",
    "is_reply",
    "event_type",
    "verdict",
    "Summary",
    "ip_trace_id",
    "traffic_direction",
    "policy_match_type",
    "debug_capture_point",
    "sock_xlate_point",
    "auth_type",
    "egress_allowed_by",
    "ingress_allowed_by",
    "egress_denied_by",
    "ingress_denied_by",
];

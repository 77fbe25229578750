//! Filter flags → `FlowFilter`s, with upstream's semantics
//! (`hubble/cmd/observe/flows_filter.go`):
//!
//! * every flag may repeat; repeated values are ORed within one field;
//! * either-side flags (`--ip`, `--pod`, `--namespace`, `--label`, `--fqdn`,
//!   `--service`, `--port`, `--identity`, `--workload`, `--cluster`) write the
//!   source field into a *left* filter and the destination field into a
//!   *right* one, all other flags write into both, and the request carries
//!   `[left, right]` (ORed), or one filter when both are equal;
//! * `--not` sends the next flag to the deny list; negated flags share one
//!   deny filter (so they are ANDed);
//! * some flags cannot be combined (`filters --X and --Y cannot be
//!   combined`), checked per list as each flag arrives;
//! * namespaces (`-n`, `--from-namespace`, `-A`, …) are applied to the pod
//!   and service fields when the filters are built.
//!
//! [`FlagParser::set`] takes the flags in command-line order and returns
//! upstream's error text; the caller wraps it as pflag does
//! (`invalid argument "V" for "--flag" flag: …`).

use proto::flow::{
    DropReason, EventTypeFilter, FlowFilter, HttpHeader, IpVersion, NetworkInterface, TcpFlags,
    TrafficDirection, Verdict, Workload, flow_filter::Experimental,
};

use crate::printer::RESERVED_IDENTITIES;

/// One filter flag: long name, short name, whether it takes an optional
/// value (and its implied value), and its help text.
#[derive(Debug, Clone, Copy)]
pub struct FilterFlag {
    /// Long name without dashes.
    pub name: &'static str,
    /// Short name, if any.
    pub short: Option<char>,
    /// The value implied when the flag is given without `=VALUE`.
    pub no_opt_default: Option<&'static str>,
    /// Help text.
    pub help: &'static str,
}

const fn flag(name: &'static str, help: &'static str) -> FilterFlag {
    FilterFlag {
        name,
        short: None,
        no_opt_default: None,
        help,
    }
}

/// Every filter flag of `hubble observe`, in upstream's help order.
pub const FILTER_FLAGS: &[FilterFlag] = &[
    FilterFlag {
        short: Some('A'),
        no_opt_default: Some("true"),
        ..flag(
            "all-namespaces",
            "Show all flows in any Kubernetes namespace.",
        )
    },
    flag(
        "cel-expression",
        "Filter flows using the given CEL expression",
    ),
    flag(
        "cluster",
        "Show all flows which match the cluster names (e.g. \"test-cluster\", \"prod-*\")",
    ),
    flag(
        "drop-reason-desc",
        "Show only flows which match this drop reason describe (e.g. \"POLICY_DENIED\", \"UNSUPPORTED_L3_PROTOCOL\")",
    ),
    FilterFlag {
        no_opt_default: Some("true"),
        ..flag(
            "encrypted",
            "Show only encrypted flows (WireGuard or IPsec)",
        )
    },
    flag(
        "fqdn",
        "Show all flows related to the given fully qualified domain name (e.g. \"*.cilium.io\").",
    ),
    FilterFlag {
        no_opt_default: Some("true"),
        ..flag(
            "from-all-namespaces",
            "Show flows originating in any Kubernetes namespace.",
        )
    },
    flag(
        "from-cluster",
        "Show all flows originating from endpoints known to be in the given cluster name",
    ),
    flag(
        "from-fqdn",
        "Show all flows originating at the given fully qualified domain name (e.g. \"*.cilium.io\").",
    ),
    flag(
        "from-identity",
        "Show all flows originating at an endpoint with the given security identity",
    ),
    flag(
        "from-ip",
        "Show all flows originating at the given IP address. Each of the source IPs can be specified as an exact match (e.g. '1.1.1.1') or as a CIDR range (e.g.'1.1.1.0/24').",
    ),
    flag(
        "from-label",
        "Show only flows originating in an endpoint with the given labels (e.g. \"key1=value1\", \"reserved:world\")",
    ),
    flag(
        "from-namespace",
        "Show all flows originating in the given Kubernetes namespace.",
    ),
    flag(
        "from-pod",
        "Show all flows originating in the given pod name prefix([namespace/]<pod-name>). If namespace is not provided, 'default' is used",
    ),
    flag(
        "from-port",
        "Show only flows with the given source port (e.g. 8080)",
    ),
    flag(
        "from-service",
        "Shows flows where the source IP address matches the ClusterIP address of the given service name prefix([namespace/]<svc-name>). If namespace is not provided, 'default' is used",
    ),
    flag(
        "from-workload",
        "Show all flows originating at an endpoint with the given workload",
    ),
    flag(
        "http-header",
        "Show only flows which match this HTTP header key:value pairs (e.g. \"foo:bar\")",
    ),
    flag(
        "http-method",
        "Show only flows which match this HTTP method (e.g. \"get\", \"post\")",
    ),
    flag(
        "http-path",
        "Show only flows which match this HTTP path regular expressions (e.g. \"/page/\\\\d+\")",
    ),
    flag(
        "http-status",
        "Show only flows which match this HTTP status code prefix (e.g. \"404\", \"5+\")",
    ),
    flag(
        "http-url",
        "Show only flows which match this HTTP URL regular expressions (e.g. \"http://.*cilium\\.io/page/\\\\d+\")",
    ),
    flag(
        "identity",
        "Show all flows related to an endpoint with the given security identity",
    ),
    flag(
        "interface",
        "Show all flows observed at the given interface name (e.g. eth0)",
    ),
    flag(
        "ip",
        "Show all flows originating or terminating at the given IP address. Each of the IPs can be specified as an exact match (e.g. '1.1.1.1') or as a CIDR range (e.g.'1.1.1.0/24').",
    ),
    flag(
        "ip-trace-id",
        "Show only flows which match this IP trace ID",
    ),
    flag(
        "ip-version",
        "Show only IPv4, IPv6 flows or non IP flows (e.g. ARP packets) (ie: \"none\", \"v4\", \"v6\")",
    ),
    FilterFlag {
        short: Some('4'),
        no_opt_default: Some("v4"),
        ..flag("ipv4", "Show only IPv4 flows")
    },
    FilterFlag {
        short: Some('6'),
        no_opt_default: Some("v6"),
        ..flag("ipv6", "Show only IPv6 flows")
    },
    FilterFlag {
        short: Some('l'),
        ..flag(
            "label",
            "Show only flows related to an endpoint with the given labels (e.g. \"key1=value1\", \"reserved:world\")",
        )
    },
    FilterFlag {
        short: Some('n'),
        ..flag(
            "namespace",
            "Show all flows related to the given Kubernetes namespace.",
        )
    },
    flag(
        "node-label",
        "Show only flows observed on nodes matching the given label filter (e.g. \"key1=value1\", \"io.cilium/egress-gateway\")",
    ),
    flag(
        "node-name",
        "Show all flows which match the given node names (e.g. \"k8s*\", \"test-cluster/*.company.com\")",
    ),
    FilterFlag {
        no_opt_default: Some("true"),
        ..flag(
            "not",
            "Reverses the next filter to be blacklist i.e. --not --from-ip 2.2.2.2",
        )
    },
    flag(
        "pod",
        "Show all flows related to the given pod name prefix ([namespace/]<pod-name>). If namespace is not provided, 'default' is used.",
    ),
    flag(
        "port",
        "Show only flows with given port in either source or destination (e.g. 8080)",
    ),
    flag(
        "protocol",
        "Show only flows which match the given L4/L7 flow protocol (e.g. \"udp\", \"http\")",
    ),
    flag(
        "service",
        "Shows flows where either the source or destination IP address matches the ClusterIP address of the given service name prefix ([namespace/]<svc-name>). If namespace is not provided, 'default' is used.",
    ),
    flag(
        "snat-ip",
        "Show all flows SNATed with the given IP address. Each of the SNAT IPs can be specified as an exact match (e.g. '1.1.1.1') or as a CIDR range (e.g.'1.1.1.0/24').",
    ),
    flag(
        "tcp-flags",
        "Show only flows which match the given TCP flags (e.g. \"syn\", \"ack\", \"fin\")",
    ),
    FilterFlag {
        no_opt_default: Some("true"),
        ..flag(
            "to-all-namespaces",
            "Show flows terminating in any Kubernetes namespace.",
        )
    },
    flag(
        "to-cluster",
        "Show all flows destined to endpoints known to be in the given cluster name",
    ),
    flag(
        "to-fqdn",
        "Show all flows terminating at the given fully qualified domain name (e.g. \"*.cilium.io\").",
    ),
    flag(
        "to-identity",
        "Show all flows terminating at an endpoint with the given security identity",
    ),
    flag(
        "to-ip",
        "Show all flows terminating at the given IP address. Each of the destination IPs can be specified as an exact match (e.g. '1.1.1.1') or as a CIDR range (e.g.'1.1.1.0/24').",
    ),
    flag(
        "to-label",
        "Show only flows terminating in an endpoint with given labels (e.g. \"key1=value1\", \"reserved:world\")",
    ),
    flag(
        "to-namespace",
        "Show all flows terminating in the given Kubernetes namespace.",
    ),
    flag(
        "to-pod",
        "Show all flows terminating in the given pod name prefix([namespace/]<pod-name>). If namespace is not provided, 'default' is used",
    ),
    flag(
        "to-port",
        "Show only flows with the given destination port (e.g. 8080)",
    ),
    flag(
        "to-service",
        "Shows flows where the destination IP address matches the ClusterIP address of the given service name prefix ([namespace/]<svc-name>). If namespace is not provided, 'default' is used",
    ),
    flag(
        "to-workload",
        "Show all flows terminating at an endpoint with the given workload",
    ),
    flag("trace-id", "Show only flows which match this trace ID"),
    flag(
        "traffic-direction",
        "Show all flows in the given traffic direction (either ingress or egress)",
    ),
    FilterFlag {
        short: Some('t'),
        ..flag("type", TYPE_HELP)
    },
    FilterFlag {
        no_opt_default: Some("true"),
        ..flag("unencrypted", "Show only unencrypted flows")
    },
    flag(
        "uuid",
        "Show the only flow matching this unique flow identifier, if any",
    ),
    flag(
        "verdict",
        "Show only flows with this verdict [FORWARDED, DROPPED, AUDIT, REDIRECTED, ERROR, TRACED, TRANSLATED]",
    ),
    flag(
        "workload",
        "Show all flows related to an endpoint with the given workload",
    ),
];

const TYPE_HELP: &str = "Filter by event types TYPE[:SUBTYPE]. Available types and subtypes:
TYPE             SUBTYPE
capture          n/a
drop             n/a
l7               n/a
policy-verdict   n/a
trace            from-endpoint
                 from-host
                 from-network
                 from-overlay
                 from-proxy
                 from-stack
                 from-crypto
                 to-endpoint
                 to-host
                 to-network
                 to-overlay
                 to-proxy
                 to-stack
                 to-crypto
trace-sock       n/a";

/// Groups of flags of which at most one may be used (per allow/deny list).
const CONFLICTS: &[&[&str]] = &[
    &[
        "from-fqdn",
        "from-ip",
        "ip",
        "fqdn",
        "from-namespace",
        "namespace",
        "from-all-namespaces",
        "all-namespaces",
    ],
    &["from-fqdn", "from-ip", "ip", "fqdn", "from-pod", "pod"],
    &[
        "to-fqdn",
        "to-ip",
        "ip",
        "fqdn",
        "to-namespace",
        "namespace",
        "to-all-namespaces",
        "all-namespaces",
    ],
    &["to-fqdn", "to-ip", "ip", "fqdn", "to-pod", "pod"],
    &["to-pod", "namespace", "all-namespaces"],
    &["from-pod", "namespace", "all-namespaces"],
    &["to-service", "namespace", "all-namespaces"],
    &["from-service", "namespace", "all-namespaces"],
    &["label", "from-label"],
    &["label", "to-label"],
    &["service", "from-service"],
    &["service", "to-service"],
    &["port", "to-port"],
    &["port", "from-port"],
    &["identity", "to-identity"],
    &["identity", "from-identity"],
    &["workload", "to-workload"],
    &["workload", "from-workload"],
    &["encrypted", "unencrypted"],
];

/// Monitor message type names accepted by `--type`.
const MESSAGE_TYPES: &[(&str, i32)] = &[
    ("drop", 1),
    ("debug", 2),
    ("capture", 3),
    ("trace", 4),
    ("policy-verdict", 5),
    ("recorder", 6),
    ("trace-sock", 7),
    ("l7", 129),
    ("agent", 130),
];

const AGENT_SUBTYPES: &[(&str, i32)] = &[
    ("unspecified", 0),
    ("message", 1),
    ("agent-started", 2),
    ("policy-updated", 3),
    ("policy-deleted", 4),
    ("endpoint-regenerate-success", 5),
    ("endpoint-regenerate-failure", 6),
    ("endpoint-created", 7),
    ("endpoint-deleted", 8),
    ("ipcache-upserted", 9),
    ("ipcache-deleted", 10),
];

/// One list's (allow or deny) pending filters.
#[derive(Debug, Default)]
struct Tracker {
    left: Option<FlowFilter>,
    right: Option<FlowFilter>,
    ns: Vec<String>,
    src_ns: Vec<String>,
    dst_ns: Vec<String>,
    changed: Vec<String>,
}

impl Tracker {
    fn apply(&mut self, update: impl Fn(&mut FlowFilter)) {
        update(self.left.get_or_insert_with(FlowFilter::default));
        update(self.right.get_or_insert_with(FlowFilter::default));
    }
    fn apply_left(&mut self, update: impl FnOnce(&mut FlowFilter)) {
        update(self.left.get_or_insert_with(FlowFilter::default));
    }
    fn apply_right(&mut self, update: impl FnOnce(&mut FlowFilter)) {
        update(self.right.get_or_insert_with(FlowFilter::default));
    }

    fn check_conflict(&self) -> Result<(), String> {
        for group in CONFLICTS {
            for flag in group.iter() {
                if !self.changed.iter().any(|c| c == flag) {
                    continue;
                }
                for other in group.iter() {
                    if other != flag && self.changed.iter().any(|c| c == other) {
                        return Err(format!("filters --{flag} and --{other} cannot be combined"));
                    }
                }
            }
        }
        Ok(())
    }

    fn check_namespace_conflicts(&self, ff: Option<&FlowFilter>) -> Result<(), String> {
        let Some(ff) = ff else { return Ok(()) };
        let mut errs = Vec::new();
        for (nss, names) in [
            (&self.ns, &ff.source_pod),
            (&self.ns, &ff.source_service),
            (&self.ns, &ff.destination_pod),
            (&self.ns, &ff.destination_service),
            (&self.src_ns, &ff.source_pod),
            (&self.src_ns, &ff.source_service),
            (&self.dst_ns, &ff.destination_pod),
            (&self.dst_ns, &ff.destination_service),
        ] {
            if let Err(e) = ns_conflicts(nss, names) {
                errs.push(e);
            }
        }
        for (pods, svcs) in [
            (&ff.source_pod, &ff.source_service),
            (&ff.destination_pod, &ff.destination_service),
        ] {
            if let Err(e) = inconsistent_namespaces(pods, svcs) {
                errs.push(e);
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("\n"))
        }
    }

    /// The filters of this list, with namespaces applied.
    fn flow_filters(mut self) -> Vec<FlowFilter> {
        if self.left.is_none()
            && self.right.is_none()
            && self.ns.is_empty()
            && self.src_ns.is_empty()
            && self.dst_ns.is_empty()
        {
            return Vec::new();
        }
        let mut left = self.left.take().unwrap_or_default();
        let mut right = self.right.take().unwrap_or_default();
        if !self.dst_ns.is_empty() {
            apply_dest(&self.dst_ns, &mut left);
            apply_dest(&self.dst_ns, &mut right);
        }
        if !self.src_ns.is_empty() {
            apply_src(&self.src_ns, &mut left);
            apply_src(&self.src_ns, &mut right);
        }
        if !self.ns.is_empty() {
            apply_src(&self.ns, &mut left);
            apply_dest(&self.ns, &mut right);
        }
        if left == right {
            vec![left]
        } else {
            vec![left, right]
        }
    }
}

fn apply_src(ns: &[String], ff: &mut FlowFilter) {
    if ff.source_pod.is_empty() && ff.source_service.is_empty() {
        ff.source_pod = vec![String::new()];
    }
    ff.source_pod = add_namespaces(&ff.source_pod, ns);
    ff.source_service = add_namespaces(&ff.source_service, ns);
}

fn apply_dest(ns: &[String], ff: &mut FlowFilter) {
    if ff.destination_pod.is_empty() && ff.destination_service.is_empty() {
        ff.destination_pod = vec![String::new()];
    }
    ff.destination_pod = add_namespaces(&ff.destination_pod, ns);
    ff.destination_service = add_namespaces(&ff.destination_service, ns);
}

fn add_namespaces(filter: &[String], ns: &[String]) -> Vec<String> {
    if ns.is_empty() || filter.is_empty() {
        return filter.to_vec();
    }
    let mut out = Vec::new();
    for f in filter {
        if f.contains('/') {
            out.push(f.clone());
            continue;
        }
        for n in ns {
            out.push(format!("{n}/{f}"));
        }
    }
    out
}

fn namespace_of(name: &str) -> &str {
    match name.split_once('/') {
        Some((ns, _)) => ns,
        None => "",
    }
}

fn ns_conflicts(nss: &[String], names: &[String]) -> Result<(), String> {
    for ns in nss {
        for name in names {
            let nn = namespace_of(name);
            if !nn.is_empty() && nn != ns {
                return Err(format!(
                    "namespace conflict: {} does not contain {}",
                    crate::printer::go_quote(ns),
                    crate::printer::go_quote(name)
                ));
            }
        }
    }
    Ok(())
}

fn inconsistent_namespaces(pods: &[String], services: &[String]) -> Result<(), String> {
    for pod in pods {
        let pod_ns = namespace_of(pod);
        if pod_ns.is_empty() {
            continue;
        }
        for svc in services {
            if namespace_of(svc) != pod_ns {
                return Err(format!(
                    "namespace of service {} conflict with pod {}",
                    crate::printer::go_quote(svc),
                    crate::printer::go_quote(pod_ns)
                ));
            }
        }
    }
    Ok(())
}

/// Go's `strconv.ParseUint` error text.
fn parse_uint_err(s: &str, range: bool) -> String {
    let q = crate::printer::go_quote(s);
    if range {
        format!("strconv.ParseUint: parsing {q}: value out of range")
    } else {
        format!("strconv.ParseUint: parsing {q}: invalid syntax")
    }
}

/// Go's `strconv.ParseUint(s, 10, bits)`.
fn parse_uint(s: &str, bits: u32) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(parse_uint_err(s, false));
    }
    let v: u64 = s.parse().map_err(|_| parse_uint_err(s, true))?;
    if bits < 64 && v >= (1u64 << bits) {
        return Err(parse_uint_err(s, true));
    }
    Ok(v)
}

/// Go's `strconv.ParseUint(s, 0, 32)`: decimal, `0x`, `0o`/`0`, `0b`.
fn parse_uint_base0_u32(s: &str) -> Option<u32> {
    let t = s.replace('_', "");
    let (digits, radix) = if let Some(h) = t.strip_prefix("0x").or(t.strip_prefix("0X")) {
        (h.to_owned(), 16)
    } else if let Some(o) = t.strip_prefix("0o").or(t.strip_prefix("0O")) {
        (o.to_owned(), 8)
    } else if let Some(b) = t.strip_prefix("0b").or(t.strip_prefix("0B")) {
        (b.to_owned(), 2)
    } else if t.len() > 1 && t.starts_with('0') {
        (t[1..].to_owned(), 8)
    } else {
        (t, 10)
    };
    u32::from_str_radix(&digits, radix).ok()
}

/// `--identity` values: a reserved name or a number.
pub fn parse_identity(s: &str) -> Result<u32, String> {
    if let Some((id, _)) = RESERVED_IDENTITIES
        .iter()
        .skip(1)
        .find(|(_, name)| *name == s)
    {
        return Ok(*id);
    }
    parse_uint_base0_u32(s).ok_or_else(|| {
        let names: Vec<&str> = RESERVED_IDENTITIES
            .iter()
            .skip(1)
            .map(|(_, n)| *n)
            .collect();
        format!(
            "invalid security identity, expected one of [{}] or a numeric value",
            names.join(" ")
        )
    })
}

fn parse_workload(s: &str) -> Workload {
    match s.split_once('/') {
        None => Workload {
            name: s.to_owned(),
            kind: String::new(),
        },
        Some((kind, name)) => Workload {
            name: name.to_owned(),
            kind: kind.to_owned(),
        },
    }
}

fn parse_tcp_flags(val: &str) -> Result<TcpFlags, String> {
    let mut f = TcpFlags::default();
    for part in val.split(',') {
        match part.to_ascii_uppercase().as_str() {
            "SYN" => f.syn = true,
            "FIN" => f.fin = true,
            "RST" => f.rst = true,
            "PSH" => f.psh = true,
            "ACK" => f.ack = true,
            "URG" => f.urg = true,
            "ECE" => f.ece = true,
            "CWR" => f.cwr = true,
            "NS" => f.ns = true,
            _ => return Err(format!("unknown tcp flag: {part}")),
        }
    }
    Ok(f)
}

fn ip_version(v: &str) -> IpVersion {
    match v.to_ascii_lowercase().as_str() {
        "4" | "v4" | "ipv4" | "ip4" => IpVersion::IPv4,
        "6" | "v6" | "ipv6" | "ip6" => IpVersion::IPv6,
        _ => IpVersion::IpNotUsed,
    }
}

fn parse_event_type(val: &str) -> Result<EventTypeFilter, String> {
    let mut tf = EventTypeFilter::default();
    let (t, sub) = match val.split_once(':') {
        Some((t, s)) => (t, Some(s)),
        None => (val, None),
    };
    let named = MESSAGE_TYPES.iter().find(|(n, _)| *n == t).map(|(_, v)| *v);
    tf.r#type = match named {
        Some(v) => v,
        None => parse_uint(t, 32).map_err(|e| {
            format!(
                "unable to parse type '{t}', not a known type name and unable to parse as numeric value: {e}"
            )
        })? as i32,
    };
    if let Some(sub) = sub {
        match named {
            Some(4) => {
                if let Some(m) = flow_parser::reasons::obs_point_from_name(sub) {
                    tf.match_sub_type = true;
                    tf.sub_type = i32::from(m);
                }
            }
            Some(130) => {
                if let Some((_, v)) = AGENT_SUBTYPES.iter().find(|(n, _)| *n == sub) {
                    tf.match_sub_type = true;
                    tf.sub_type = *v;
                }
            }
            _ => {}
        }
        if !tf.match_sub_type {
            let v = parse_uint(sub, 32).map_err(|e| {
                format!(
                    "unable to parse event sub-type '{sub}', not a known sub-type name and unable to parse as numeric value: {e}"
                )
            })?;
            tf.match_sub_type = true;
            tf.sub_type = v as i32;
        }
    }
    Ok(tf)
}

/// Collects filter flags in command-line order into allow and deny lists.
#[derive(Debug, Default)]
pub struct FlagParser {
    whitelist: Option<Tracker>,
    blacklist: Option<Tracker>,
    blacklisting: bool,
}

impl FlagParser {
    /// A parser with no filters.
    pub fn new() -> Self {
        FlagParser::default()
    }

    /// Applies one flag (long name) and its value. The error is upstream's
    /// text, without pflag's `invalid argument` wrapper.
    pub fn set(&mut self, name: &str, val: &str) -> Result<(), String> {
        if name == "not" {
            if self.blacklisting {
                return Err("consecutive --not statements".to_owned());
            }
            self.blacklisting = true;
            return Ok(());
        }
        let t = if self.blacklisting {
            self.blacklisting = false;
            self.blacklist.get_or_insert_with(Tracker::default)
        } else {
            self.whitelist.get_or_insert_with(Tracker::default)
        };
        if !t.changed.iter().any(|c| c == name) {
            t.changed.push(name.to_owned());
        }
        t.check_conflict()?;
        set_field(t, name, val)?;
        let (l, r) = (t.left.clone(), t.right.clone());
        t.check_namespace_conflicts(l.as_ref())?;
        t.check_namespace_conflicts(r.as_ref())
    }

    /// The allow and deny lists; a trailing `--not` is an error.
    pub fn finish(self) -> Result<(Vec<FlowFilter>, Vec<FlowFilter>), String> {
        if self.blacklisting {
            return Err("trailing --not found in the arguments".to_owned());
        }
        Ok((
            self.whitelist
                .map(Tracker::flow_filters)
                .unwrap_or_default(),
            self.blacklist
                .map(Tracker::flow_filters)
                .unwrap_or_default(),
        ))
    }
}

fn set_field(t: &mut Tracker, name: &str, val: &str) -> Result<(), String> {
    let s = val.to_owned();
    match name {
        "uuid" => t.apply(|f| f.uuid.push(s.clone())),
        "fqdn" => {
            t.apply_left(|f| f.source_fqdn.push(s.clone()));
            t.apply_right(|f| f.destination_fqdn.push(s));
        }
        "from-fqdn" => t.apply(|f| f.source_fqdn.push(s.clone())),
        "to-fqdn" => t.apply(|f| f.destination_fqdn.push(s.clone())),
        "pod" => {
            t.apply_left(|f| f.source_pod.push(s.clone()));
            t.apply_right(|f| f.destination_pod.push(s));
        }
        "from-pod" => t.apply(|f| f.source_pod.push(s.clone())),
        "to-pod" => t.apply(|f| f.destination_pod.push(s.clone())),
        "from-ip" => t.apply(|f| f.source_ip.push(s.clone())),
        "snat-ip" => t.apply(|f| f.source_ip_xlated.push(s.clone())),
        "ip" => {
            t.apply_left(|f| f.source_ip.push(s.clone()));
            t.apply_right(|f| f.destination_ip.push(s));
        }
        "to-ip" => t.apply(|f| f.destination_ip.push(s.clone())),
        "ipv4" => t.apply(|f| f.ip_version.push(IpVersion::IPv4 as i32)),
        "ipv6" => t.apply(|f| f.ip_version.push(IpVersion::IPv6 as i32)),
        "ip-version" => {
            let v = ip_version(val) as i32;
            t.apply(|f| f.ip_version.push(v));
        }
        "label" => {
            t.apply_left(|f| f.source_label.push(s.clone()));
            t.apply_right(|f| f.destination_label.push(s));
        }
        "from-label" => t.apply(|f| f.source_label.push(s.clone())),
        "to-label" => t.apply(|f| f.destination_label.push(s.clone())),
        "namespace" => t.ns.push(s),
        "from-namespace" => t.src_ns.push(s),
        "to-namespace" => t.dst_ns.push(s),
        "all-namespaces" => t.ns.push(String::new()),
        "from-all-namespaces" => t.src_ns.push(String::new()),
        "to-all-namespaces" => t.dst_ns.push(String::new()),
        "service" => {
            t.apply_left(|f| f.source_service.push(s.clone()));
            t.apply_right(|f| f.destination_service.push(s));
        }
        "from-service" => t.apply(|f| f.source_service.push(s.clone())),
        "to-service" => t.apply(|f| f.destination_service.push(s.clone())),
        "port" => {
            t.apply_left(|f| f.source_port.push(s.clone()));
            t.apply_right(|f| f.destination_port.push(s));
        }
        "from-port" => t.apply(|f| f.source_port.push(s.clone())),
        "to-port" => t.apply(|f| f.destination_port.push(s.clone())),
        "trace-id" => t.apply(|f| f.trace_id.push(s.clone())),
        "ip-trace-id" => {
            if val == "0" {
                return Err("invalid --ip-trace-id value; must be greater than 0".to_owned());
            }
            let id =
                parse_uint(val, 64).map_err(|e| format!("invalid --ip-trace-id value: {e}"))?;
            t.apply(|f| f.ip_trace_id.push(id));
        }
        "verdict" => {
            let v = Verdict::from_str_name(val)
                .filter(|_| !val.is_empty())
                .ok_or_else(|| format!("invalid --verdict value: {val}"))?;
            t.apply(|f| f.verdict.push(v as i32));
        }
        "drop-reason-desc" => {
            if val.is_empty() {
                return Err("empty --drop-reason-desc value".to_owned());
            }
            let v = DropReason::from_str_name(val)
                .ok_or_else(|| format!("invalid --drop-reason-desc value: {val}"))?;
            t.apply(|f| f.drop_reason_desc.push(v as i32));
        }
        "http-status" => t.apply(|f| f.http_status_code.push(s.clone())),
        "http-method" => t.apply(|f| f.http_method.push(s.clone())),
        "http-path" => t.apply(|f| f.http_path.push(s.clone())),
        "http-url" => t.apply(|f| f.http_url.push(s.clone())),
        "http-header" => {
            let (k, v) = val.split_once(':').ok_or_else(|| {
                format!(
                    "invalid http-header value {}, expected name:value",
                    crate::printer::go_quote(val)
                )
            })?;
            let h = HttpHeader {
                key: k.to_owned(),
                value: v.to_owned(),
            };
            t.apply(|f| f.http_header.push(h.clone()));
        }
        "type" => {
            let tf = parse_event_type(val)?;
            t.apply(|f| f.event_type.push(tf));
        }
        "protocol" => t.apply(|f| f.protocol.push(s.clone())),
        "workload" => {
            let w = parse_workload(val);
            let w2 = w.clone();
            t.apply_left(|f| f.source_workload.push(w));
            t.apply_right(|f| f.destination_workload.push(w2));
        }
        "from-workload" => {
            let w = parse_workload(val);
            t.apply(|f| f.source_workload.push(w.clone()));
        }
        "to-workload" => {
            let w = parse_workload(val);
            t.apply(|f| f.destination_workload.push(w.clone()));
        }
        "identity" => {
            let id = parse_identity(val)?;
            t.apply_left(|f| f.source_identity.push(id));
            t.apply_right(|f| f.destination_identity.push(id));
        }
        "from-identity" => {
            let id = parse_identity(val)?;
            t.apply(|f| f.source_identity.push(id));
        }
        "to-identity" => {
            let id = parse_identity(val)?;
            t.apply(|f| f.destination_identity.push(id));
        }
        "node-name" => t.apply(|f| f.node_name.push(s.clone())),
        "node-label" => t.apply(|f| f.node_labels.push(s.clone())),
        "cluster" => {
            t.apply_left(|f| f.source_cluster_name.push(s.clone()));
            t.apply_right(|f| f.destination_cluster_name.push(s));
        }
        "from-cluster" => t.apply(|f| f.source_cluster_name.push(s.clone())),
        "to-cluster" => t.apply(|f| f.destination_cluster_name.push(s.clone())),
        "tcp-flags" => {
            let flags = parse_tcp_flags(val)?;
            t.apply(|f| f.tcp_flags.push(flags));
        }
        "traffic-direction" => {
            let td = val.to_ascii_lowercase();
            let d = match td.as_str() {
                "ingress" => TrafficDirection::Ingress,
                "egress" => TrafficDirection::Egress,
                _ => {
                    return Err(format!(
                        "{td}: invalid traffic direction, expected ingress or egress"
                    ));
                }
            };
            t.apply(|f| f.traffic_direction.push(d as i32));
        }
        "cel-expression" => t.apply(|f| {
            f.experimental
                .get_or_insert_with(Experimental::default)
                .cel_expression
                .push(s.clone())
        }),
        "interface" => t.apply(|f| {
            f.interface.push(NetworkInterface {
                index: 0,
                name: s.clone(),
            })
        }),
        "encrypted" => t.apply(|f| f.encrypted.push(true)),
        "unencrypted" => t.apply(|f| f.encrypted.push(false)),
        other => return Err(format!("unknown filter flag --{other}")),
    }
    Ok(())
}

/// Top-level JSON keys of a `FlowFilter` (proto and lowerCamelCase names).
const FLOW_FILTER_KEYS: &[&str] = &[
    "uuid",
    "source_ip",
    "source_ip_xlated",
    "source_pod",
    "source_fqdn",
    "source_label",
    "source_service",
    "source_workload",
    "source_cluster_name",
    "destination_ip",
    "destination_pod",
    "destination_fqdn",
    "destination_label",
    "destination_service",
    "destination_workload",
    "destination_cluster_name",
    "traffic_direction",
    "verdict",
    "drop_reason_desc",
    "interface",
    "event_type",
    "http_status_code",
    "protocol",
    "source_port",
    "destination_port",
    "reply",
    "dns_query",
    "source_identity",
    "destination_identity",
    "http_method",
    "http_path",
    "http_url",
    "http_header",
    "tcp_flags",
    "node_name",
    "node_labels",
    "ip_version",
    "trace_id",
    "ip_trace_id",
    "encrypted",
    "experimental",
];

fn known_key(k: &str) -> bool {
    FLOW_FILTER_KEYS.iter().any(|n| *n == k || camel(n) == k)
}

fn camel(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut up = false;
    for c in s.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.push(c.to_ascii_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses `--allowlist`/`--denylist` values: one or more JSON FlowFilters
/// per value (concatenated objects are allowed, as Go's decoder reads them).
pub fn parse_raw_filters(values: &[String]) -> Result<Vec<FlowFilter>, String> {
    let mut out = Vec::new();
    for v in values {
        let fail = |e: &dyn std::fmt::Display| format!("failed to decode '{v}': {e}");
        let stream = serde_json::Deserializer::from_str(v).into_iter::<serde_json::Value>();
        for item in stream {
            let item = item.map_err(|e| fail(&e))?;
            let obj = item
                .as_object()
                .ok_or_else(|| fail(&"expected a JSON object"))?;
            if let Some(k) = obj.keys().find(|k| !known_key(k)) {
                return Err(fail(&format!(
                    "unknown field {}",
                    crate::printer::go_quote(k)
                )));
            }
            let ff: FlowFilter = serde_json::from_value(item).map_err(|e| fail(&e))?;
            out.push(ff);
        }
    }
    Ok(out)
}

/// `--print-raw-filters`: the lists as YAML of JSON strings, as upstream
/// prints them with yaml.v3 (block sequences indented by four, each entry
/// single-quoted).
pub fn filters_yaml(allow: &[FlowFilter], deny: &[FlowFilter]) -> Result<String, String> {
    let mut out = String::new();
    for (key, list) in [("allowlist", allow), ("denylist", deny)] {
        if list.is_empty() {
            continue;
        }
        out.push_str(key);
        out.push_str(":\n");
        for f in list {
            let json = proto::json::to_hubble_json(f).map_err(|e| e.to_string())?;
            out.push_str("    - '");
            out.push_str(&json.replace('\'', "''"));
            out.push_str("'\n");
        }
    }
    if out.is_empty() {
        out.push_str("{}\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests;

//! Prometheus metrics: Hubble's flow metrics with Hubble's names and labels
//! (`hubble_flows_processed_total`, `hubble_drop_total`,
//! `hubble_tcp_flags_total`, `hubble_port_distribution_total`,
//! `hubble_icmp_total`, `hubble_policy_verdicts_total`,
//! `hubble_lost_events_total`) and the exporter's own health
//! (`flow_exporter_*`). Served as OpenMetrics text on `/metrics` by
//! `svc::metrics`.
//!
//! Label values are `&'static str` or integers so that counting a flow
//! allocates nothing once its series exists.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use proto::flow::{DropReason, Flow, LostEventSource, Verdict, layer4::Protocol};
use rustc_hash::FxHashMap;

use crate::defaults;

/// The `reason` of `flow_exporter_decode_errors_total` for a decoder that
/// gives only a message (not one of the parser's `DecodeError` kinds).
pub const DECODE_ERROR_OTHER: &str = "other";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlowLabels {
    protocol: &'static str,
    r#type: &'static str,
    subtype: &'static str,
    verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    reason: &'static str,
    protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TcpLabels {
    flag: &'static str,
    family: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PortLabels {
    protocol: &'static str,
    port: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IcmpLabels {
    family: &'static str,
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabels {
    direction: &'static str,
    r#match: &'static str,
    action: &'static str,
}

/// `hubble_policy_verdicts_total`'s labels: Hubble's three, then the
/// opt-in `policy` context (empty when off, so the series are Hubble's).
type PolicyVerdictLabels = (PolicyLabels, Vec<(&'static str, String)>);

/// The value of the opt-in `policy` label for a flow: the policies of its
/// filled `*_allowed_by`/`*_denied_by` field as `namespace/name` (`name`
/// when clusterwide), joined by `,`; empty when none decided it.
fn policy_label(f: &Flow) -> String {
    let list = [
        &f.ingress_allowed_by,
        &f.egress_allowed_by,
        &f.ingress_denied_by,
        &f.egress_denied_by,
    ]
    .into_iter()
    .find(|l| !l.is_empty());
    let Some(list) = list else {
        return String::new();
    };
    let mut names: Vec<String> = list
        .iter()
        .map(|p| {
            if p.namespace.is_empty() {
                p.name.clone()
            } else {
                format!("{}/{}", p.namespace, p.name)
            }
        })
        .collect();
    names.sort_unstable();
    names.join(",")
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LostLabels {
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// All metrics of one exporter.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    flows: Family<FlowLabels, Counter>,
    drops: Family<DropLabels, Counter>,
    tcp: Family<TcpLabels, Counter>,
    ports: Family<PortLabels, Counter>,
    icmp: Family<IcmpLabels, Counter>,
    policy: Family<PolicyVerdictLabels, Counter>,
    /// Whether `hubble_policy_verdicts_total` has the `policy` label.
    policy_names: bool,
    /// The distinct `policy` label values so far, at most
    /// [`defaults::POLICY_METRIC_NAMES_MAX`]; later ones count as `other`.
    policy_values: std::sync::Mutex<rustc_hash::FxHashSet<String>>,
    lost: Family<LostLabels, Counter>,
    events_read: Family<SourceLabels, Counter>,
    decode_errors: Family<ReasonLabels, Counter>,
    queue_depth: Gauge<i64, AtomicI64Compat>,
    ring_flows: Gauge,
    ring_capacity: Gauge,
    lb: [Counter; 3],
    lb_last: std::sync::Mutex<[u64; 3]>,
    grpc: svc::grpc_layers::GrpcMetrics,
}

/// The datapath's load-balancer counters (`lb4_stats`, in this order):
/// metric name and help.
pub const LB_COUNTERS: [(&str, &str); 3] = [
    (
        "datapath_lb_new_connections",
        "New connections to a service frontend given a backend by the datapath",
    ),
    (
        "datapath_lb_translated_packets",
        "Packets translated from a service frontend to a backend",
    ),
    (
        "datapath_lb_reverse_translated_packets",
        "Replies translated back from a backend to the service frontend",
    ),
];

type AtomicI64Compat = std::sync::atomic::AtomicI64;

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut m = Metrics {
            registry: Registry::default(),
            flows: Family::default(),
            drops: Family::default(),
            tcp: Family::default(),
            ports: Family::default(),
            icmp: Family::default(),
            policy: Family::default(),
            policy_names: false,
            policy_values: Default::default(),
            lost: Family::default(),
            events_read: Family::default(),
            decode_errors: Family::default(),
            queue_depth: Gauge::default(),
            ring_flows: Gauge::default(),
            ring_capacity: Gauge::default(),
            lb: Default::default(),
            lb_last: Default::default(),
            grpc: Default::default(),
        };
        let r = &mut m.registry;
        r.register(
            "hubble_flows_processed",
            "Total number of flows processed",
            m.flows.clone(),
        );
        r.register("hubble_drop", "Number of drops", m.drops.clone());
        r.register("hubble_tcp_flags", "TCP flag occurrences", m.tcp.clone());
        r.register(
            "hubble_port_distribution",
            "Numbers of packets distributed by destination port",
            m.ports.clone(),
        );
        r.register("hubble_icmp", "Number of ICMP messages", m.icmp.clone());
        r.register(
            "hubble_policy_verdicts",
            "Number of policy verdicts",
            m.policy.clone(),
        );
        r.register(
            "hubble_lost_events",
            "Number of lost events",
            m.lost.clone(),
        );
        r.register(
            "flow_exporter_events_read",
            "Raw events read from a source (ring buffer, replay file, synthetic)",
            m.events_read.clone(),
        );
        r.register(
            "flow_exporter_decode_errors",
            "Raw events that could not be decoded and were skipped, by reason",
            m.decode_errors.clone(),
        );
        r.register(
            "flow_exporter_event_queue_depth",
            "Raw events waiting between the sources and the decoder",
            m.queue_depth.clone(),
        );
        r.register(
            "flow_exporter_ring_flows",
            "Events currently held in the flow ring",
            m.ring_flows.clone(),
        );
        r.register(
            "flow_exporter_ring_capacity",
            "Capacity of the flow ring",
            m.ring_capacity.clone(),
        );
        for ((name, help), c) in LB_COUNTERS.iter().zip(&m.lb) {
            r.register(*name, *help, c.clone());
        }
        for source in [
            "perf_event_ring_buffer",
            "observer_events_queue",
            "hubble_ring_buffer",
        ] {
            let _ = m.lost.get_or_create(&LostLabels { source });
        }
        // `flow_exporter_grpc_requests_total`, `flow_exporter_grpc_streams`:
        // the gRPC server's tower stack (`svc::grpc_layers`) counts into them.
        m.grpc
            .register(m.registry.sub_registry_with_prefix("flow_exporter_grpc"));
        for &reason in flow_parser::DecodeError::KINDS
            .iter()
            .chain([&DECODE_ERROR_OTHER])
        {
            let _ = m.decode_errors.get_or_create(&ReasonLabels { reason });
        }
        m
    }

    /// The request metrics of the gRPC server (pass them to
    /// `server::ServerOptions`).
    pub fn grpc(&self) -> &svc::grpc_layers::GrpcMetrics {
        &self.grpc
    }

    /// Adds the opt-in `policy` context to `hubble_policy_verdicts_total`:
    /// the names of the policies that allowed or denied each verdict
    /// (`namespace/name`, several joined by `,`, empty for a default deny),
    /// bounded to [`defaults::POLICY_METRIC_NAMES_MAX`] distinct values
    /// (the rest count under `other`).
    pub fn with_policy_names(mut self, on: bool) -> Self {
        self.policy_names = on;
        self
    }

    /// The `policy` label value for `name`, within the cardinality bound.
    fn bounded_policy_value(&self, name: String) -> String {
        if name.is_empty() {
            return name;
        }
        let mut seen = self.policy_values.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(&name) {
            return name;
        }
        if seen.len() >= defaults::POLICY_METRIC_NAMES_MAX {
            return "other".to_string();
        }
        seen.insert(name.clone());
        name
    }

    /// Counts one flow in every Hubble flow metric it belongs to. The hot
    /// path uses [`FlowCounters`], which caches the series handles.
    pub fn observe_flow(self: &Arc<Self>, f: &Flow) {
        FlowCounters::new(self.clone()).observe(f);
    }

    /// A per-writer cache of series handles for counting flows.
    pub fn flow_counters(self: &Arc<Self>) -> FlowCounters {
        FlowCounters::new(self.clone())
    }

    /// Counts lost events.
    pub fn lost(&self, source: LostEventSource, n: u64) {
        let source = match source {
            LostEventSource::PerfEventRingBuffer => "perf_event_ring_buffer",
            LostEventSource::ObserverEventsQueue => "observer_events_queue",
            LostEventSource::HubbleRingBuffer => "hubble_ring_buffer",
            LostEventSource::UnknownLostEventSource => "unknown",
        };
        self.lost.get_or_create(&LostLabels { source }).inc_by(n);
    }

    /// Counts raw events read from a source.
    pub fn events_read(&self, source: &'static str, n: u64) {
        self.events_read
            .get_or_create(&SourceLabels { source })
            .inc_by(n);
    }

    /// Counts an undecodable event under its `reason` (a
    /// [`crate::pipeline::DecodeFailure::reason`]).
    pub fn decode_error(&self, reason: &'static str) {
        self.decode_errors
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Adjusts the queue-depth gauge.
    pub fn queue_depth_add(&self, n: i64) {
        self.queue_depth.inc_by(n);
    }

    /// Updates the ring gauges.
    pub fn ring(&self, len: u64, capacity: u64) {
        self.ring_flows.set(len as i64);
        self.ring_capacity.set(capacity as i64);
    }

    /// The datapath's load-balancer counters now (sums over CPUs, in
    /// [`LB_COUNTERS`] order): each counter grows by the increase since the
    /// last call (a kernel counter that went back, e.g. maps re-created,
    /// counts from its new value).
    pub fn lb_stats(&self, totals: [u64; 3]) {
        let mut last = self.lb_last.lock().unwrap_or_else(|e| e.into_inner());
        for (i, &t) in totals.iter().enumerate() {
            let delta = if t >= last[i] { t - last[i] } else { t };
            self.lb[i].inc_by(delta);
            last[i] = t;
        }
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
        s
    }
}

/// Series handles of every flow metric, cached by a packed integer key, so
/// that counting a flow is a few integer-keyed lookups and atomic adds
/// instead of hashing label strings. One per writer (the decoder task).
#[derive(Debug)]
pub struct FlowCounters {
    metrics: Arc<Metrics>,
    flows: FxHashMap<u32, Counter>,
    drops: FxHashMap<u32, Counter>,
    tcp: FxHashMap<u32, Counter>,
    ports: FxHashMap<u32, Counter>,
    icmp: FxHashMap<u32, Counter>,
    policy: FxHashMap<u32, Counter>,
    /// With the `policy` context: by packed key and policy label value.
    policy_named: FxHashMap<(u32, String), Counter>,
}

fn cached<S, F>(
    map: &mut FxHashMap<u32, Counter>,
    key: u32,
    family: &Family<S, Counter>,
    labels: F,
) -> Counter
where
    S: Clone + std::hash::Hash + Eq,
    F: FnOnce() -> S,
{
    map.entry(key)
        .or_insert_with(|| family.get_or_create(&labels()).clone())
        .clone()
}

impl FlowCounters {
    fn new(metrics: Arc<Metrics>) -> Self {
        FlowCounters {
            metrics,
            flows: FxHashMap::default(),
            drops: FxHashMap::default(),
            tcp: FxHashMap::default(),
            ports: FxHashMap::default(),
            icmp: FxHashMap::default(),
            policy: FxHashMap::default(),
            policy_named: FxHashMap::default(),
        }
    }

    /// Counts one flow in every Hubble flow metric it belongs to.
    pub fn observe(&mut self, f: &Flow) {
        let m = &*self.metrics;
        let (pi, protocol) = protocol_name(f);
        let ty = f.event_type.as_ref().map(|e| e.r#type).unwrap_or(0);
        let sub = f.event_type.as_ref().map(|e| e.sub_type).unwrap_or(-1);
        let (ti, type_name, subtype) = match ty {
            1 => (1, "Drop", ""),
            3 => (2, "Capture", ""),
            4 => (3, "Trace", trace_point_name(sub)),
            5 => (4, "PolicyVerdict", ""),
            129 => (5, "L7", ""),
            // Hubble's handler has no case for trace-sock: "Unknown" with
            // the message type as subtype.
            7 => (6, "Unknown", "7"),
            _ => (0, "Unknown", ""),
        };
        let si = if ty == 4 {
            (sub.clamp(-1, 14) + 1) as u32
        } else {
            0
        };
        let vi = f.verdict.clamp(0, 255) as u32;
        let verdict = verdict_name(f.verdict);
        let key = pi << 24 | ti << 16 | si << 8 | vi;
        cached(&mut self.flows, key, &m.flows, || FlowLabels {
            protocol,
            r#type: type_name,
            subtype,
            verdict,
        })
        .inc();
        if f.verdict == Verdict::Dropped as i32 {
            let reason = DropReason::try_from(f.drop_reason_desc)
                .map(|r| r.as_str_name())
                .unwrap_or("DROP_REASON_UNKNOWN");
            let key = (f.drop_reason_desc.clamp(0, 0xffff) as u32) << 8 | pi;
            cached(&mut self.drops, key, &m.drops, || DropLabels {
                reason,
                protocol,
            })
            .inc();
        }
        let (fi, family) = match f.ip.as_ref().map(|i| i.ip_version) {
            Some(1) => (1, "IPv4"),
            Some(2) => (2, "IPv6"),
            _ => (0, ""),
        };
        let l4 = f.l4.as_ref().and_then(|l| l.protocol.as_ref());
        if let Some(Protocol::Tcp(t)) = l4 {
            let forwarded =
                f.verdict == Verdict::Forwarded as i32 || f.verdict == Verdict::Redirected as i32;
            if let (true, Some(flags)) = (forwarded, t.flags.as_ref()) {
                let syn = if flags.syn && flags.ack {
                    Some((0, "SYN-ACK"))
                } else if flags.syn {
                    Some((1, "SYN"))
                } else {
                    None
                };
                let fin = flags.fin.then_some((2, "FIN"));
                let rst = flags.rst.then_some((3, "RST"));
                for (k, flag) in [syn, fin, rst].into_iter().flatten() {
                    cached(&mut self.tcp, k << 8 | fi, &m.tcp, || TcpLabels {
                        flag,
                        family,
                    })
                    .inc();
                }
            }
        }
        let reply = f.is_reply.is_some_and(|r| r.value);
        if f.verdict == Verdict::Forwarded as i32 && !reply {
            let port = match l4 {
                Some(Protocol::Tcp(t)) => Some(t.destination_port),
                Some(Protocol::Udp(u)) => Some(u.destination_port),
                Some(Protocol::Sctp(s)) => Some(s.destination_port),
                _ => None,
            };
            if let Some(port) = port {
                let key = (port & 0xffff) << 8 | pi;
                cached(&mut self.ports, key, &m.ports, || PortLabels {
                    protocol,
                    port,
                })
                .inc();
            }
        }
        match l4 {
            Some(Protocol::IcmPv4(i)) => {
                let t = icmp4_name(i.r#type);
                cached(
                    &mut self.icmp,
                    4 << 16 | (i.r#type & 0xffff),
                    &m.icmp,
                    || IcmpLabels {
                        family: "IPv4",
                        r#type: t,
                    },
                )
                .inc();
            }
            Some(Protocol::IcmPv6(i)) => {
                let t = icmp6_name(i.r#type);
                cached(
                    &mut self.icmp,
                    6 << 16 | (i.r#type & 0xffff),
                    &m.icmp,
                    || IcmpLabels {
                        family: "IPv6",
                        r#type: t,
                    },
                )
                .inc();
            }
            _ => {}
        }
        if ty == 5 && f.source.as_ref().map(|s| s.identity) != Some(1) {
            let (di, direction) = match f.traffic_direction {
                1 => (1, "ingress"),
                2 => (2, "egress"),
                _ => (0, "unknown"),
            };
            let mi = f.policy_match_type.min(7);
            let r#match = match mi {
                0 => "none",
                1 => "l3-only",
                2 => "l3-l4",
                3 => "l4-only",
                4 => "all",
                5 => "l3-proto",
                6 => "proto-only",
                _ => "unknown",
            };
            let action = match Verdict::try_from(f.verdict) {
                Ok(Verdict::Forwarded) => "forwarded",
                Ok(Verdict::Dropped) => "dropped",
                Ok(Verdict::Audit) => "audit",
                Ok(Verdict::Redirected) => "redirected",
                _ => "unknown",
            };
            let key = di << 16 | mi << 8 | vi;
            let labels = || PolicyLabels {
                direction,
                r#match,
                action,
            };
            if m.policy_names {
                let k = (key, policy_label(f));
                let c = match self.policy_named.get(&k) {
                    Some(c) => c.clone(),
                    None => {
                        let value = m.bounded_policy_value(k.1.clone());
                        let c = m
                            .policy
                            .get_or_create(&(labels(), vec![("policy", value)]))
                            .clone();
                        // The cache is bounded too (names past the bound
                        // are looked up in the family each time).
                        if self.policy_named.len() < defaults::POLICY_METRIC_NAMES_MAX * 64 {
                            self.policy_named.insert(k, c.clone());
                        }
                        c
                    }
                };
                c.inc();
            } else {
                cached(&mut self.policy, key, &m.policy, || (labels(), Vec::new())).inc();
            }
        }
    }
}

fn protocol_name(f: &Flow) -> (u32, &'static str) {
    match f.l4.as_ref().and_then(|l| l.protocol.as_ref()) {
        Some(Protocol::Tcp(_)) => (1, "TCP"),
        Some(Protocol::Udp(_)) => (2, "UDP"),
        Some(Protocol::IcmPv4(_)) => (3, "ICMPv4"),
        Some(Protocol::IcmPv6(_)) => (4, "ICMPv6"),
        Some(Protocol::Sctp(_)) => (5, "SCTP"),
        Some(Protocol::Vrrp(_)) => (6, "VRRP"),
        Some(Protocol::Igmp(_)) => (7, "IGMP"),
        None => (0, ""),
    }
}

fn verdict_name(v: i32) -> &'static str {
    Verdict::try_from(v)
        .map(|v| v.as_str_name())
        .unwrap_or("VERDICT_UNKNOWN")
}

/// Cilium's monitor observation-point names (the `-t trace:NAME` values).
pub fn trace_point_name(sub: i32) -> &'static str {
    match sub {
        0 => "to-endpoint",
        1 => "to-proxy",
        2 => "to-host",
        3 => "to-stack",
        4 => "to-overlay",
        5 => "from-endpoint",
        6 => "from-proxy",
        7 => "from-host",
        8 => "from-stack",
        9 => "from-overlay",
        10 => "from-network",
        11 => "to-network",
        12 => "from-crypto",
        13 => "to-crypto",
        _ => "unknown",
    }
}

fn icmp4_name(t: u32) -> &'static str {
    match t {
        0 => "EchoReply",
        3 => "DestinationUnreachable",
        5 => "Redirect",
        8 => "EchoRequest",
        11 => "TimeExceeded",
        12 => "ParameterProblem",
        13 => "TimestampRequest",
        14 => "TimestampReply",
        _ => "Other",
    }
}

fn icmp6_name(t: u32) -> &'static str {
    match t {
        1 => "DestinationUnreachable",
        2 => "PacketTooBig",
        3 => "TimeExceeded",
        4 => "ParameterProblem",
        128 => "EchoRequest",
        129 => "EchoReply",
        133 => "RouterSolicitation",
        134 => "RouterAdvertisement",
        135 => "NeighborSolicitation",
        136 => "NeighborAdvertisement",
        _ => "Other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::flow::{CiliumEventType, Ip, Layer4, Tcp, TcpFlags};

    #[test]
    fn lb_counters_grow_by_the_kernel_increase() {
        let m = Metrics::new();
        let text = m.encode();
        for (name, _) in LB_COUNTERS {
            assert!(text.contains(&format!("{name}_total 0")), "{name}: {text}");
        }
        m.lb_stats([3, 10, 8]);
        m.lb_stats([5, 14, 8]);
        // The maps were re-created: the counter starts over from 1.
        m.lb_stats([1, 14, 9]);
        let text = m.encode();
        assert!(
            text.contains("datapath_lb_new_connections_total 6"),
            "{text}"
        );
        assert!(
            text.contains("datapath_lb_translated_packets_total 14"),
            "{text}"
        );
        assert!(
            text.contains("datapath_lb_reverse_translated_packets_total 9"),
            "{text}"
        );
    }

    #[test]
    fn policy_names_are_an_opt_in_bounded_context() {
        let named = |name: &str| proto::flow::Policy {
            name: name.into(),
            namespace: "default".into(),
            kind: "CiliumNetworkPolicy".into(),
            ..Default::default()
        };
        let verdict = |v: Verdict, allowed: Vec<proto::flow::Policy>| Flow {
            verdict: v as i32,
            event_type: Some(CiliumEventType {
                r#type: 5,
                sub_type: 0,
            }),
            traffic_direction: 1,
            policy_match_type: 2,
            ingress_allowed_by: allowed,
            ..Default::default()
        };
        // Off (the default): Hubble's labels only.
        let m = Arc::new(Metrics::new());
        m.observe_flow(&verdict(Verdict::Forwarded, vec![named("rule1")]));
        let text = m.encode();
        assert!(
            text.contains(r#"hubble_policy_verdicts_total{direction="ingress",match="l3-l4",action="forwarded"} 1"#),
            "{text}"
        );
        assert!(!text.contains("policy=\""), "{text}");

        // On: the policy label, empty for a default deny, bounded.
        let m = Arc::new(Metrics::new().with_policy_names(true));
        let mut c = m.flow_counters();
        c.observe(&verdict(Verdict::Forwarded, vec![named("rule1")]));
        c.observe(&verdict(Verdict::Forwarded, vec![named("rule1")]));
        c.observe(&verdict(Verdict::Forwarded, vec![named("b"), named("a")]));
        c.observe(&verdict(Verdict::Dropped, vec![]));
        for i in 0..defaults::POLICY_METRIC_NAMES_MAX + 5 {
            c.observe(&verdict(Verdict::Forwarded, vec![named(&format!("p{i}"))]));
        }
        let text = m.encode();
        for want in [
            r#"hubble_policy_verdicts_total{direction="ingress",match="l3-l4",action="forwarded",policy="default/rule1"} 2"#,
            r#"hubble_policy_verdicts_total{direction="ingress",match="l3-l4",action="forwarded",policy="default/a,default/b"} 1"#,
            r#"hubble_policy_verdicts_total{direction="ingress",match="l3-l4",action="dropped",policy=""} 1"#,
            r#"hubble_policy_verdicts_total{direction="ingress",match="l3-l4",action="forwarded",policy="other"} 7"#,
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
        let series = text
            .lines()
            .filter(|l| l.starts_with("hubble_policy_verdicts_total{"))
            .count();
        assert_eq!(
            series,
            defaults::POLICY_METRIC_NAMES_MAX + 2,
            "bounded: {text}"
        );
    }

    #[test]
    fn names_and_labels_match_hubble() {
        let m = Arc::new(Metrics::new());
        let f = Flow {
            verdict: Verdict::Dropped as i32,
            drop_reason_desc: DropReason::PolicyDenied as i32,
            event_type: Some(CiliumEventType {
                r#type: 1,
                sub_type: 133,
            }),
            ip: Some(Ip {
                ip_version: 1,
                ..Default::default()
            }),
            l4: Some(Layer4 {
                protocol: Some(Protocol::Tcp(Tcp {
                    source_port: 1,
                    destination_port: 80,
                    flags: Some(TcpFlags {
                        syn: true,
                        ..Default::default()
                    }),
                })),
            }),
            ..Default::default()
        };
        m.observe_flow(&f);
        let fwd = Flow {
            verdict: Verdict::Forwarded as i32,
            event_type: Some(CiliumEventType {
                r#type: 4,
                sub_type: 0,
            }),
            ..f.clone()
        };
        m.observe_flow(&fwd);
        let sock = Flow {
            verdict: Verdict::Translated as i32,
            event_type: Some(CiliumEventType {
                r#type: 7,
                sub_type: 2,
            }),
            ..f.clone()
        };
        m.observe_flow(&sock);
        let text = m.encode();
        for want in [
            r#"hubble_flows_processed_total{protocol="TCP",type="Drop",subtype="",verdict="DROPPED"} 1"#,
            r#"hubble_flows_processed_total{protocol="TCP",type="Trace",subtype="to-endpoint",verdict="FORWARDED"} 1"#,
            r#"hubble_flows_processed_total{protocol="TCP",type="Unknown",subtype="7",verdict="TRANSLATED"} 1"#,
            r#"hubble_drop_total{reason="POLICY_DENIED",protocol="TCP"} 1"#,
            r#"hubble_tcp_flags_total{flag="SYN",family="IPv4"} 1"#,
            r#"hubble_port_distribution_total{protocol="TCP",port="80"} 1"#,
            r#"hubble_lost_events_total{source="hubble_ring_buffer"} 0"#,
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }

    #[test]
    fn decode_errors_are_counted_by_reason() {
        let m = Metrics::new();
        m.decode_error("truncated");
        m.decode_error("truncated");
        m.decode_error("unknown_type");
        let text = m.encode();
        for want in [
            r#"flow_exporter_decode_errors_total{reason="truncated"} 2"#,
            r#"flow_exporter_decode_errors_total{reason="unknown_type"} 1"#,
            // Every reason is listed from the start.
            r#"flow_exporter_decode_errors_total{reason="version"} 0"#,
            r#"flow_exporter_decode_errors_total{reason="capture_length"} 0"#,
            r#"flow_exporter_decode_errors_total{reason="other"} 0"#,
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }
}

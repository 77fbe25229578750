//! Prometheus metrics: Hubble's flow metrics with Hubble's names and labels
//! (`hubble_flows_processed_total`, `hubble_drop_total`,
//! `hubble_tcp_flags_total`, `hubble_port_distribution_total`,
//! `hubble_icmp_total`, `hubble_policy_verdicts_total`,
//! `hubble_lost_events_total`) and the exporter's own health
//! (`flow_exporter_*`). Served as OpenMetrics text on `/metrics` by
//! `svc::metrics`.
//!
//! Which Hubble families are served, and with which context labels, is
//! the `--metrics` list ([`config`], Cilium's `hubble-metrics` syntax);
//! `hubble_flows_to_world_total` is served when listed. Without context
//! labels, label values are `&'static str` or integers so that counting a
//! flow allocates nothing once its series exists; with context labels a
//! family's series are bounded in number and age ([`series`]).

pub mod config;
pub mod series;

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use proto::flow::{DropReason, Endpoint, Flow, LostEventSource, Verdict, layer4::Protocol};
use rustc_hash::FxHashMap;

use crate::defaults;
pub use config::{MetricKind, MetricSpec, MetricsConfig, MetricsConfigError};
use series::{CountOutcome, Ctx, HubbleFamily, Labels};

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorldLabels {
    protocol: &'static str,
    verdict: &'static str,
}

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MetricLabels {
    metric: &'static str,
}

/// A served family's options and its context label names.
#[derive(Debug, Clone)]
struct Served {
    spec: MetricSpec,
    names: Vec<&'static str>,
}

impl Served {
    fn new(spec: &MetricSpec) -> Self {
        Served {
            names: spec.context.label_names(),
            spec: spec.clone(),
        }
    }

    /// Whether series carry context labels (and so go through the bounded
    /// table rather than the fixed-label cache).
    fn contextual(&self) -> bool {
        !self.spec.context.is_empty()
    }

    fn ctx(&self, f: &Flow, (src, dst): Sides<'_>) -> Ctx {
        if !self.contextual() {
            return Vec::new();
        }
        self.names
            .iter()
            .copied()
            .zip(self.spec.context.label_values_with(f, src, dst))
            .collect()
    }
}

/// All metrics of one exporter.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    flows: HubbleFamily<FlowLabels>,
    drops: HubbleFamily<DropLabels>,
    tcp: HubbleFamily<TcpLabels>,
    ports: HubbleFamily<PortLabels>,
    icmp: HubbleFamily<IcmpLabels>,
    policy: HubbleFamily<PolicyLabels>,
    world: HubbleFamily<WorldLabels>,
    /// The served families, by [`MetricKind::ALL`] index.
    served: [Option<Served>; 7],
    /// Whether `hubble_policy_verdicts_total` has the `policy` label.
    policy_names: bool,
    /// The distinct `policy` label values so far, at most
    /// [`defaults::POLICY_METRIC_NAMES_MAX`]; later ones count as `other`.
    policy_values: std::sync::Mutex<rustc_hash::FxHashSet<String>>,
    /// Whether the two counters below are registered.
    series_counters: bool,
    series_overflow: Family<MetricLabels, Counter>,
    series_expired: Family<MetricLabels, Counter>,
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

fn kind_index(k: MetricKind) -> usize {
    MetricKind::ALL
        .iter()
        .position(|&x| x == k)
        .expect("every kind is in ALL")
}

impl Metrics {
    /// A fresh registry with the default Hubble metrics
    /// ([`defaults::METRICS`]) and the exporter's own.
    pub fn new() -> Self {
        Self::with_config(&MetricsConfig::default_set())
    }

    /// A fresh registry serving the Hubble metrics of `config` (a parsed
    /// `--metrics`) and the exporter's own.
    pub fn with_config(config: &MetricsConfig) -> Self {
        let mut served: [Option<Served>; 7] = Default::default();
        for spec in &config.metrics {
            served[kind_index(spec.kind)] = Some(Served::new(spec));
        }
        let world_port = served[kind_index(MetricKind::FlowsToWorld)]
            .as_ref()
            .is_some_and(|s| s.spec.port);
        let mut m = Metrics {
            registry: Registry::default(),
            flows: HubbleFamily::new(MetricKind::Flow.metric_name(), 0),
            drops: HubbleFamily::new(MetricKind::Drop.metric_name(), 0),
            tcp: HubbleFamily::new(MetricKind::Tcp.metric_name(), 0),
            ports: HubbleFamily::new(MetricKind::PortDistribution.metric_name(), 0),
            icmp: HubbleFamily::new(MetricKind::Icmp.metric_name(), 0),
            policy: HubbleFamily::new(MetricKind::Policy.metric_name(), 0),
            world: HubbleFamily::new(
                MetricKind::FlowsToWorld.metric_name(),
                usize::from(world_port),
            ),
            served,
            policy_names: false,
            policy_values: Default::default(),
            series_counters: false,
            series_overflow: Family::default(),
            series_expired: Family::default(),
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
        let on = |k: MetricKind| m.served[kind_index(k)].is_some();
        let r = &mut m.registry;
        // Registered in this order so the default output stays as it was.
        if on(MetricKind::Flow) {
            r.register(
                "hubble_flows_processed",
                "Total number of flows processed",
                m.flows.family.clone(),
            );
        }
        if on(MetricKind::Drop) {
            r.register("hubble_drop", "Number of drops", m.drops.family.clone());
        }
        if on(MetricKind::Tcp) {
            r.register(
                "hubble_tcp_flags",
                "TCP flag occurrences",
                m.tcp.family.clone(),
            );
        }
        if on(MetricKind::PortDistribution) {
            r.register(
                "hubble_port_distribution",
                "Numbers of packets distributed by destination port",
                m.ports.family.clone(),
            );
        }
        if on(MetricKind::Icmp) {
            r.register(
                "hubble_icmp",
                "Number of ICMP messages",
                m.icmp.family.clone(),
            );
        }
        if on(MetricKind::Policy) {
            r.register(
                "hubble_policy_verdicts",
                "Number of policy verdicts",
                m.policy.family.clone(),
            );
        }
        if on(MetricKind::FlowsToWorld) {
            r.register(
                "hubble_flows_to_world",
                "Total number of flows to reserved:world",
                m.world.family.clone(),
            );
        }
        r.register(
            "hubble_lost_events",
            "Number of lost events",
            m.lost.clone(),
        );
        if m.served.iter().flatten().any(Served::contextual) {
            m.register_series_counters();
        }
        let r = &mut m.registry;
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

    /// Registers the counters of the bounded context series (only when a
    /// family has context labels or policy names, so the default output is
    /// unchanged).
    fn register_series_counters(&mut self) {
        if self.series_counters {
            return;
        }
        self.series_counters = true;
        self.registry.register(
            "flow_exporter_metrics_series_overflow",
            "New context-labelled series of a Hubble metric counted under `other` because the family had reached its series limit",
            self.series_overflow.clone(),
        );
        self.registry.register(
            "flow_exporter_metrics_series_expired",
            "Context-labelled series of a Hubble metric removed after going unseen for the series TTL",
            self.series_expired.clone(),
        );
        for s in self.served.iter().flatten() {
            let metric = s.spec.kind.metric_name();
            let _ = self.series_overflow.get_or_create(&MetricLabels { metric });
            let _ = self.series_expired.get_or_create(&MetricLabels { metric });
        }
    }

    /// The Hubble families served, in [`MetricKind::ALL`] order.
    pub fn served(&self) -> Vec<MetricKind> {
        self.served.iter().flatten().map(|s| s.spec.kind).collect()
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
        if on && self.served[kind_index(MetricKind::Policy)].is_some() {
            self.register_series_counters();
        }
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

    fn note(&self, metric: &'static str, o: CountOutcome) {
        if o.overflowed {
            self.series_overflow
                .get_or_create(&MetricLabels { metric })
                .inc();
        }
        if o.expired > 0 {
            self.series_expired
                .get_or_create(&MetricLabels { metric })
                .inc_by(o.expired);
        }
    }

    /// Removes the context-labelled series unseen for
    /// [`defaults::METRIC_SERIES_TTL`], if a sweep is due at `now` (also
    /// done while counting and before each scrape).
    pub fn expire_series(&self, now: Instant) {
        macro_rules! sweep {
            ($($f:ident),*) => {$(
                let n = self.$f.sweep(now);
                if n > 0 {
                    self.note(self.$f.name, CountOutcome { overflowed: false, expired: n });
                }
            )*};
        }
        sweep!(flows, drops, tcp, ports, icmp, policy, world);
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

    /// The OpenMetrics text of every metric (after removing expired
    /// context series).
    pub fn encode(&self) -> String {
        self.expire_series(Instant::now());
        let mut s = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
        s
    }
}

/// Series handles of the flow metrics without context labels, cached by a
/// packed integer key, so that counting a flow is a few integer-keyed
/// lookups and atomic adds instead of hashing label strings. Families with
/// context labels go through their bounded table. One per writer (the
/// decoder task).
#[derive(Debug)]
pub struct FlowCounters {
    metrics: Arc<Metrics>,
    flows: FxHashMap<u32, Counter>,
    drops: FxHashMap<u32, Counter>,
    tcp: FxHashMap<u32, Counter>,
    ports: FxHashMap<u32, Counter>,
    icmp: FxHashMap<u32, Counter>,
    policy: FxHashMap<u32, Counter>,
    world: FxHashMap<u32, Counter>,
    /// Whether a served family has context labels (which may read the
    /// flow's addresses: [`Self::observe_text`] writes them in first).
    contextual: bool,
}

/// The counter of the series `key` stands for, resolved in `family` the
/// first time and kept in `map` (borrowed, not cloned: a clone is two
/// atomic operations on its `Arc`).
fn cached<'a, F, L>(
    map: &'a mut FxHashMap<u32, Counter>,
    key: u32,
    family: &Family<Labels<F>, Counter>,
    labels: L,
) -> &'a Counter
where
    F: Clone + std::hash::Hash + Eq,
    L: FnOnce() -> F,
{
    map.entry(key)
        .or_insert_with(|| family.get_or_create(&Labels::fixed(labels())).clone())
}

/// Counts in one family: through the fixed-label cache, or (with context
/// labels) through the family's bounded table.
fn hit<F, L>(
    m: &Metrics,
    cache: &mut FxHashMap<u32, Counter>,
    fam: &HubbleFamily<F>,
    key: u32,
    fixed: L,
    context: Option<(Ctx, Ctx)>,
    now: &mut Option<Instant>,
) where
    F: Clone + std::hash::Hash + Eq,
    L: FnOnce() -> F,
{
    match context {
        None => {
            cached(cache, key, &fam.family, fixed).inc();
        }
        Some((before, after)) => {
            let now = *now.get_or_insert_with(Instant::now);
            let o = fam.count(
                Labels {
                    before,
                    fixed: fixed(),
                    after,
                },
                now,
            );
            m.note(fam.name, o);
        }
    }
}

/// Whether an endpoint is the world (Hubble's flows-to-world looks for the
/// `reserved:world` label; the dual-stack world identities are included).
fn is_world(e: Option<&proto::flow::Endpoint>) -> bool {
    e.is_some_and(|e| {
        e.labels.iter().any(|l| {
            l == "reserved:world" || l == "reserved:world-ipv4" || l == "reserved:world-ipv6"
        })
    })
}

impl FlowCounters {
    fn new(metrics: Arc<Metrics>) -> Self {
        FlowCounters {
            flows: FxHashMap::default(),
            drops: FxHashMap::default(),
            tcp: FxHashMap::default(),
            ports: FxHashMap::default(),
            icmp: FxHashMap::default(),
            policy: FxHashMap::default(),
            world: FxHashMap::default(),
            contextual: metrics.served.iter().flatten().any(Served::contextual),
            metrics,
        }
    }

    /// Counts one flow in every Hubble flow metric it belongs to.
    pub fn observe(&mut self, f: &Flow) {
        self.observe_inner(f, (f.source.as_ref(), f.destination.as_ref()), None);
    }

    /// [`Self::observe`] of the flow `f` and `text` make together
    /// ([`flow_parser::Parser::decode_text_into`]), whose endpoints are
    /// `source` and `destination` (`f`'s own are not read: the ingest
    /// shares them apart from the flow, [`flow_parser::SharedEndpoints`]).
    /// The families without
    /// context labels read no text field (the IP version stays in `f`);
    /// when a family has context labels, `text` is first written into `f`
    /// ([`flow_parser::FlowText::write_into`]) so that they read the addresses.
    pub fn observe_text(
        &mut self,
        f: &mut Flow,
        text: &flow_parser::FlowText,
        source: Option<&Endpoint>,
        destination: Option<&Endpoint>,
    ) {
        if self.contextual && !text.is_empty() {
            text.write_into(f);
        }
        self.observe_inner(f, (source, destination), None);
    }

    /// [`Self::observe`] at a given time (the time decides when a
    /// context-labelled series expires).
    pub fn observe_at(&mut self, f: &Flow, now: Instant) {
        self.observe_inner(f, (f.source.as_ref(), f.destination.as_ref()), Some(now));
    }

    fn observe_inner(&mut self, f: &Flow, sides: Sides<'_>, mut now: Option<Instant>) {
        // Borrowed apart from the caches below (no `Arc` clone per flow).
        let m: &Metrics = &self.metrics;
        let served = |k: MetricKind| m.served[kind_index(k)].as_ref();
        // `None` when the family has no context labels (the cached path).
        let after = |s: &Served| s.contextual().then(|| (Vec::new(), s.ctx(f, sides)));
        let (pi, protocol) = protocol_name(f);
        let ty = f.event_type.as_ref().map(|e| e.r#type).unwrap_or(0);
        let sub = f.event_type.as_ref().map(|e| e.sub_type).unwrap_or(-1);
        let vi = f.verdict.clamp(0, 255) as u32;
        let verdict = verdict_name(f.verdict);
        if let Some(s) = served(MetricKind::Flow) {
            let (ti, type_name, subtype) = match ty {
                1 => (1, "Drop", ""),
                3 => (2, "Capture", ""),
                4 => (3, "Trace", trace_point_name(sub)),
                5 => (4, "PolicyVerdict", ""),
                129 => (5, "L7", ""),
                // Hubble's handler has no case for trace-sock: "Unknown"
                // with the message type as subtype.
                7 => (6, "Unknown", "7"),
                _ => (0, "Unknown", ""),
            };
            let si = if ty == 4 {
                (sub.clamp(-1, 14) + 1) as u32
            } else {
                0
            };
            let key = pi << 24 | ti << 16 | si << 8 | vi;
            let fixed = || FlowLabels {
                protocol,
                r#type: type_name,
                subtype,
                verdict,
            };
            hit(m, &mut self.flows, &m.flows, key, fixed, after(s), &mut now);
        }
        if f.verdict == Verdict::Dropped as i32
            && let Some(s) = served(MetricKind::Drop)
        {
            let reason = DropReason::try_from(f.drop_reason_desc)
                .map(|r| r.as_str_name())
                .unwrap_or("DROP_REASON_UNKNOWN");
            let key = (f.drop_reason_desc.clamp(0, 0xffff) as u32) << 8 | pi;
            let fixed = || DropLabels { reason, protocol };
            // Hubble puts the drop metric's context labels first.
            let ctx = s.contextual().then(|| (s.ctx(f, sides), Vec::new()));
            hit(m, &mut self.drops, &m.drops, key, fixed, ctx, &mut now);
        }
        let (fi, family) = match f.ip.as_ref().map(|i| i.ip_version) {
            Some(1) => (1, "IPv4"),
            Some(2) => (2, "IPv6"),
            _ => (0, ""),
        };
        let l4 = f.l4.as_ref().and_then(|l| l.protocol.as_ref());
        if let (Some(Protocol::Tcp(t)), Some(s)) = (l4, served(MetricKind::Tcp)) {
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
                    let fixed = || TcpLabels { flag, family };
                    hit(
                        m,
                        &mut self.tcp,
                        &m.tcp,
                        k << 8 | fi,
                        fixed,
                        after(s),
                        &mut now,
                    );
                }
            }
        }
        let reply = f.is_reply.is_some_and(|r| r.value);
        if let Some(s) = served(MetricKind::PortDistribution)
            && f.verdict == Verdict::Forwarded as i32
            && !reply
        {
            let port = match l4 {
                Some(Protocol::Tcp(t)) => Some(t.destination_port),
                Some(Protocol::Udp(u)) => Some(u.destination_port),
                Some(Protocol::Sctp(s)) => Some(s.destination_port),
                _ => None,
            };
            if let Some(port) = port {
                let key = (port & 0xffff) << 8 | pi;
                let fixed = || PortLabels { protocol, port };
                hit(m, &mut self.ports, &m.ports, key, fixed, after(s), &mut now);
            }
        }
        if let Some(s) = served(MetricKind::Icmp) {
            let icmp = match l4 {
                Some(Protocol::IcmPv4(i)) => Some((4, "IPv4", i.r#type, icmp4_name(i.r#type))),
                Some(Protocol::IcmPv6(i)) => Some((6, "IPv6", i.r#type, icmp6_name(i.r#type))),
                _ => None,
            };
            if let Some((v, family, t, name)) = icmp {
                let fixed = || IcmpLabels {
                    family,
                    r#type: name,
                };
                let key = v << 16 | (t & 0xffff);
                hit(m, &mut self.icmp, &m.icmp, key, fixed, after(s), &mut now);
            }
        }
        if ty == 5
            && sides.0.map(|s| s.identity) != Some(1)
            && let Some(s) = served(MetricKind::Policy)
        {
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
            let fixed = || PolicyLabels {
                direction,
                r#match,
                action,
            };
            let ctx = if m.policy_names {
                let mut ctx = s.ctx(f, sides);
                ctx.push(("policy", m.bounded_policy_value(policy_label(f))));
                Some((Vec::new(), ctx))
            } else {
                after(s)
            };
            hit(m, &mut self.policy, &m.policy, key, fixed, ctx, &mut now);
        }
        if let Some(s) = served(MetricKind::FlowsToWorld) {
            Self::world(
                m,
                &mut self.world,
                f,
                sides,
                s,
                pi,
                protocol,
                vi,
                verdict,
                reply,
                &mut now,
            );
        }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the flow's already decoded labels, passed on rather than recomputed"
    )]
    fn world(
        m: &Metrics,
        cache: &mut FxHashMap<u32, Counter>,
        f: &Flow,
        sides: Sides<'_>,
        s: &Served,
        pi: u32,
        protocol: &'static str,
        vi: u32,
        verdict: &'static str,
        reply: bool,
        now: &mut Option<Instant>,
    ) {
        let Some(l4) = f.l4.as_ref().and_then(|l| l.protocol.as_ref()) else {
            return;
        };
        if f.event_type.is_none() || !is_world(sides.1) {
            return;
        }
        let dropped = f.verdict == Verdict::Dropped as i32;
        // Without any-drop, only policy denials count among drops.
        if dropped && !s.spec.any_drop && f.drop_reason_desc != DropReason::PolicyDenied as i32 {
            return;
        }
        // Forwarded replies would count ephemeral ports.
        if !dropped && reply {
            return;
        }
        let syn = matches!(l4, Protocol::Tcp(t) if t.flags.as_ref().is_some_and(|fl| fl.syn));
        if s.spec.syn_only && (!syn || reply) {
            return;
        }
        let fixed = || WorldLabels { protocol, verdict };
        let key = pi << 8 | vi;
        let ctx = if s.spec.port || s.contextual() {
            let mut after = Vec::new();
            if s.spec.port {
                let port = match l4 {
                    Protocol::Tcp(t) => t.destination_port.to_string(),
                    Protocol::Udp(u) => u.destination_port.to_string(),
                    Protocol::Sctp(x) => x.destination_port.to_string(),
                    _ => String::new(),
                };
                after.push(("port", port));
            }
            after.extend(s.ctx(f, sides));
            Some((Vec::new(), after))
        } else {
            None
        };
        hit(m, cache, &m.world, key, fixed, ctx, now);
    }
}

/// A flow's source and destination endpoints, wherever they are kept.
type Sides<'a> = (Option<&'a Endpoint>, Option<&'a Endpoint>);

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

    /// Hubble's families: served name, then the labels before and after
    /// the context labels (C:pkg/hubble/metrics/*/handler.go, the
    /// "Exported Metrics" table of Documentation/observability/metrics.rst).
    const HUBBLE_NAMES: [(&str, &str, &[&str], &[&str]); 7] = [
        (
            "flow",
            "hubble_flows_processed_total",
            &[],
            &["protocol", "type", "subtype", "verdict"],
        ),
        ("drop", "hubble_drop_total", &["reason", "protocol"], &[]),
        ("tcp", "hubble_tcp_flags_total", &[], &["flag", "family"]),
        (
            "port-distribution",
            "hubble_port_distribution_total",
            &[],
            &["protocol", "port"],
        ),
        ("icmp", "hubble_icmp_total", &[], &["family", "type"]),
        (
            "policy",
            "hubble_policy_verdicts_total",
            &[],
            &["direction", "match", "action"],
        ),
        (
            "flows-to-world",
            "hubble_flows_to_world_total",
            &[],
            &["protocol", "verdict"],
        ),
    ];

    /// Hubble's `labelsContext` labels in emission order, then `source`
    /// and `destination` (C:pkg/hubble/metrics/api/context.go).
    const HUBBLE_CONTEXT_LABELS: [&str; 15] = [
        "source_ip",
        "source_pod",
        "source_namespace",
        "source_workload",
        "source_workload_kind",
        "source_app",
        "destination_ip",
        "destination_pod",
        "destination_namespace",
        "destination_workload",
        "destination_workload_kind",
        "destination_app",
        "traffic_direction",
        "source",
        "destination",
    ];

    /// The label names of each series line of `metric`, in order.
    fn label_names(text: &str, metric: &str) -> Vec<Vec<String>> {
        let prefix = format!("{metric}{{");
        text.lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(|rest| {
                let mut names = Vec::new();
                let mut chars = rest.chars().peekable();
                loop {
                    let name: String = chars.by_ref().take_while(|&c| c != '=').collect();
                    assert_eq!(chars.next(), Some('"'), "{rest}");
                    let mut escaped = false;
                    for c in chars.by_ref() {
                        match (escaped, c) {
                            (false, '\\') => escaped = true,
                            (false, '"') => break,
                            _ => escaped = false,
                        }
                    }
                    names.push(name);
                    match chars.next() {
                        Some(',') => continue,
                        _ => break,
                    }
                }
                names
            })
            .collect()
    }

    fn world_flows() -> Vec<Flow> {
        let endpoint = |ns: &str, pod: &str, labels: &[&str]| proto::flow::Endpoint {
            namespace: ns.into(),
            pod_name: pod.into(),
            identity: 300,
            labels: labels.iter().map(|s| s.to_string()).collect(),
            workloads: vec![proto::flow::Workload {
                name: "xwing".into(),
                kind: "Deployment".into(),
            }],
            ..Default::default()
        };
        let base = Flow {
            verdict: Verdict::Forwarded as i32,
            event_type: Some(CiliumEventType {
                r#type: 4,
                sub_type: 5,
            }),
            ip: Some(Ip {
                source: "10.0.0.1".into(),
                destination: "1.1.1.1".into(),
                ip_version: 1,
                ..Default::default()
            }),
            source: Some(endpoint("default", "xwing-1", &["k8s:app=xwing"])),
            destination: Some(proto::flow::Endpoint {
                identity: 2,
                labels: vec!["reserved:world".into()],
                ..Default::default()
            }),
            is_reply: Some(proto::wkt::BoolValue { value: false }),
            traffic_direction: 2,
            l4: Some(Layer4 {
                protocol: Some(Protocol::Tcp(Tcp {
                    source_port: 40000,
                    destination_port: 443,
                    flags: Some(TcpFlags {
                        syn: true,
                        ..Default::default()
                    }),
                })),
            }),
            ..Default::default()
        };
        let drop = Flow {
            verdict: Verdict::Dropped as i32,
            drop_reason_desc: DropReason::PolicyDenied as i32,
            event_type: Some(CiliumEventType {
                r#type: 1,
                sub_type: 133,
            }),
            ..base.clone()
        };
        let icmp = Flow {
            l4: Some(Layer4 {
                protocol: Some(Protocol::IcmPv4(proto::flow::IcmPv4 { r#type: 8, code: 0 })),
            }),
            ..base.clone()
        };
        let verdict = Flow {
            event_type: Some(CiliumEventType {
                r#type: 5,
                sub_type: 0,
            }),
            policy_match_type: 2,
            ..base.clone()
        };
        vec![base, drop, icmp, verdict]
    }

    /// The ingest's path (the text kept apart, [`FlowCounters::observe_text`])
    /// counts exactly what the whole flow counts, with and without context
    /// labels that read the addresses, over the synthetic mix.
    #[test]
    fn counting_with_the_text_apart_equals_counting_the_whole_flow() {
        use flow_parser::{ClockOffset, Enricher, FlowText, Parser, SharedEndpoints, Synthetic};
        let all: Vec<&str> = HUBBLE_NAMES.iter().map(|(o, ..)| *o).collect();
        let labels = HUBBLE_CONTEXT_LABELS[..13].join(",");
        let with_ip: Vec<String> = all
            .iter()
            .map(|o| {
                format!("{o}:sourceContext=ip;destinationContext=dns|ip;labelsContext={labels}")
            })
            .collect();
        let plain: Vec<String> = all.iter().map(|o| o.to_string()).collect();
        for list in [plain, with_ip] {
            let cfg = MetricsConfig::parse(&list).unwrap();
            let (whole, apart) = (
                Arc::new(Metrics::with_config(&cfg)),
                Arc::new(Metrics::with_config(&cfg)),
            );
            let (mut cw, mut ca) = (whole.flow_counters(), apart.flow_counters());
            let g = Synthetic::new(31);
            let enricher = Enricher::from_static(Arc::new(g.enrichment()));
            let mut p1 = Parser::new(g.node_name(), enricher.clone());
            let mut p2 = Parser::new(g.node_name(), enricher);
            let clock = ClockOffset::new(0);
            let mut events = Synthetic::new(31);
            let (mut raw, mut f, mut eps, mut text) = (
                Vec::new(),
                Flow::default(),
                SharedEndpoints::default(),
                FlowText::default(),
            );
            for _ in 0..5000 {
                raw.clear();
                events.next_event(&mut raw);
                let now = Instant::now();
                cw.observe_at(&p1.decode(&raw, &clock).unwrap(), now);
                p2.decode_text_into(&raw, &clock, &mut f, &mut eps, &mut text)
                    .unwrap();
                ca.observe_text(
                    &mut f,
                    &text,
                    eps.source.as_deref(),
                    eps.destination.as_deref(),
                );
            }
            // The same series and values (in the text's order of series
            // within a family, which follows hashing, not counting).
            let sorted = |t: String| {
                let mut l: Vec<String> = t.lines().map(str::to_owned).collect();
                l.sort();
                l
            };
            let want = sorted(whole.encode());
            assert!(want.iter().any(|l| l.contains("source=\"10.")) == list[0].contains("ip"));
            assert_eq!(sorted(apart.encode()), want, "{list:?}");
        }
    }

    #[test]
    fn metric_and_label_names_match_hubbles_table() {
        let all_labels = HUBBLE_CONTEXT_LABELS[..13].join(",");
        let context_sets: [(String, &[&str]); 4] = [
            (String::new(), &[]),
            ("sourceContext=pod".into(), &["source"]),
            (
                "destinationContext=namespace;destinationEgressContext=ip".into(),
                &["destination"],
            ),
            (
                format!(
                    "sourceContext=identity;destinationContext=dns|ip;labelsContext={all_labels}"
                ),
                &HUBBLE_CONTEXT_LABELS,
            ),
        ];
        for (opts, ctx) in &context_sets {
            let list: Vec<String> = HUBBLE_NAMES
                .iter()
                .map(|(o, ..)| {
                    if opts.is_empty() {
                        o.to_string()
                    } else {
                        format!("{o}:{opts}")
                    }
                })
                .collect();
            let cfg = MetricsConfig::parse(&list).unwrap();
            let m = Arc::new(Metrics::with_config(&cfg));
            let mut c = m.flow_counters();
            for f in world_flows() {
                c.observe(&f);
            }
            let text = m.encode();
            for (option, name, before, after) in HUBBLE_NAMES {
                let want: Vec<String> = if option == "drop" {
                    ctx.iter().chain(before).map(|s| s.to_string()).collect()
                } else {
                    after
                        .iter()
                        .chain(ctx.iter())
                        .map(|s| s.to_string())
                        .collect()
                };
                let got = label_names(&text, name);
                assert!(
                    !got.is_empty(),
                    "{option} ({opts}): no {name} series in\n{text}"
                );
                for names in got {
                    assert_eq!(names, want, "{option} ({opts})");
                }
            }
        }
        // flows-to-world's `port` comes after Hubble's two labels and before
        // the context ones.
        let cfg = MetricsConfig::parse(&["flows-to-world:port;sourceContext=namespace"]).unwrap();
        let m = Arc::new(Metrics::with_config(&cfg));
        for f in world_flows() {
            m.observe_flow(&f);
        }
        let text = m.encode();
        assert!(
            text.contains(r#"hubble_flows_to_world_total{protocol="TCP",verdict="FORWARDED",port="443",source="default"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"hubble_flows_to_world_total{protocol="TCP",verdict="DROPPED",port="443",source="default"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn families_not_listed_are_not_served() {
        let m = Metrics::with_config(&MetricsConfig::parse(&["drop"]).unwrap());
        let text = m.encode();
        assert_eq!(m.served(), [MetricKind::Drop]);
        assert!(text.contains("hubble_lost_events_total"), "{text}");
        for absent in [
            "hubble_flows_processed",
            "hubble_tcp_flags",
            "hubble_flows_to_world",
        ] {
            assert!(!text.contains(absent), "{absent} in\n{text}");
        }
    }

    #[test]
    fn context_series_expire_and_are_capped() {
        let cfg = MetricsConfig::parse(&["flow:sourceContext=ip"]).unwrap();
        let m = Arc::new(Metrics::with_config(&cfg));
        let mut c = m.flow_counters();
        let from = |ip: String| Flow {
            verdict: Verdict::Forwarded as i32,
            ip: Some(Ip {
                source: ip,
                ..Default::default()
            }),
            ..Default::default()
        };
        let t0 = Instant::now();
        c.observe_at(&from("10.0.0.1".into()), t0);
        c.observe_at(
            &from("10.0.0.2".into()),
            t0 + defaults::METRIC_SERIES_TTL / 2,
        );
        // Past the TTL of the first only: it goes, the second stays.
        c.observe_at(
            &from("10.0.0.3".into()),
            t0 + defaults::METRIC_SERIES_TTL + defaults::METRIC_SERIES_SWEEP,
        );
        let text = m.encode();
        assert!(!text.contains(r#"source="10.0.0.1""#), "{text}");
        assert!(text.contains(r#"source="10.0.0.2""#), "{text}");
        assert!(
            text.contains(r#"flow_exporter_metrics_series_expired_total{metric="hubble_flows_processed_total"} 1"#),
            "{text}"
        );
        // The cap: past it, new sources count under `other`.
        let t1 = t0 + defaults::METRIC_SERIES_TTL + defaults::METRIC_SERIES_SWEEP;
        for i in 0..defaults::METRIC_SERIES_MAX + 3 {
            c.observe_at(&from(format!("10.1.{}.{}", i / 256, i % 256)), t1);
        }
        assert_eq!(m.flows.len(), defaults::METRIC_SERIES_MAX + 1);
        let text = m.encode();
        // Two series were there before the loop: 10.0.0.2 and .3.
        assert!(
            text.contains(r#"hubble_flows_processed_total{protocol="",type="Unknown",subtype="",verdict="FORWARDED",source="other"} 5"#),
            "{}",
            text.lines().filter(|l| l.contains("other") || l.contains("overflow")).collect::<Vec<_>>().join("\n")
        );
        assert!(
            text.contains(r#"flow_exporter_metrics_series_overflow_total{metric="hubble_flows_processed_total"} 5"#),
            "overflow count"
        );
    }
}

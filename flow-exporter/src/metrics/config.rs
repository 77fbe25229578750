//! `--metrics`: Hubble's metric list in Cilium's `hubble-metrics` syntax,
//! parsed into the families to serve and their context options.
//!
//! Syntax (Cilium's): `name[:option[;option...]]`, an option being `key` or
//! `key=value`. Metrics are separated by white space (the ConfigMap's
//! `hubble-metrics` form) or by commas (the agent's `--hubble-metrics`
//! flag); in the comma form a `labelsContext=a,b` list keeps its commas (a
//! piece that is not a metric name continues the `labelsContext` before
//! it). Option keys and context identifiers are case-insensitive, as in
//! Hubble; metric names and `labelsContext` values are exact.
//!
//! Unlike Hubble, which ignores option keys it does not know, an unknown
//! metric, option, context identifier or label stops the start with the
//! list of valid ones: a typo would otherwise silently serve other labels
//! than the dashboards query.

use proto::flow::{Endpoint, Flow};

/// A Hubble L3/L4 metric family this exporter serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// `flow`: `hubble_flows_processed_total`.
    Flow,
    /// `drop`: `hubble_drop_total`.
    Drop,
    /// `tcp`: `hubble_tcp_flags_total`.
    Tcp,
    /// `port-distribution`: `hubble_port_distribution_total`.
    PortDistribution,
    /// `icmp`: `hubble_icmp_total`.
    Icmp,
    /// `policy`: `hubble_policy_verdicts_total`.
    Policy,
    /// `flows-to-world`: `hubble_flows_to_world_total`.
    FlowsToWorld,
}

impl MetricKind {
    /// Every family, in the order they are registered (and listed in errors).
    pub const ALL: [MetricKind; 7] = [
        MetricKind::Flow,
        MetricKind::Drop,
        MetricKind::Tcp,
        MetricKind::PortDistribution,
        MetricKind::Icmp,
        MetricKind::Policy,
        MetricKind::FlowsToWorld,
    ];

    /// The name in `--metrics` (Hubble's option key).
    pub fn option_name(self) -> &'static str {
        match self {
            MetricKind::Flow => "flow",
            MetricKind::Drop => "drop",
            MetricKind::Tcp => "tcp",
            MetricKind::PortDistribution => "port-distribution",
            MetricKind::Icmp => "icmp",
            MetricKind::Policy => "policy",
            MetricKind::FlowsToWorld => "flows-to-world",
        }
    }

    /// The Prometheus metric name as served (with `_total`).
    pub fn metric_name(self) -> &'static str {
        match self {
            MetricKind::Flow => "hubble_flows_processed_total",
            MetricKind::Drop => "hubble_drop_total",
            MetricKind::Tcp => "hubble_tcp_flags_total",
            MetricKind::PortDistribution => "hubble_port_distribution_total",
            MetricKind::Icmp => "hubble_icmp_total",
            MetricKind::Policy => "hubble_policy_verdicts_total",
            MetricKind::FlowsToWorld => "hubble_flows_to_world_total",
        }
    }

    /// The option keys this family takes besides the context options.
    pub fn own_options(self) -> &'static [&'static str] {
        match self {
            MetricKind::FlowsToWorld => &["any-drop", "port", "syn-only"],
            _ => &[],
        }
    }

    fn from_option_name(s: &str) -> Option<MetricKind> {
        MetricKind::ALL.into_iter().find(|k| k.option_name() == s)
    }
}

/// Hubble metrics that count L7 records (DNS, HTTP, Kafka flows from
/// Cilium's proxy). This datapath has no L7 proxy, so they would never
/// count anything: they are refused rather than served empty.
pub const L7_METRICS: [&str; 4] = ["dns", "http", "httpV2", "kafka"];

/// One identifier of `sourceContext`/`destinationContext` (Hubble's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContextId {
    /// `identity`: all identity labels, joined by `,`.
    Identity,
    /// `namespace`.
    Namespace,
    /// `pod`: `namespace/pod`.
    Pod,
    /// `pod-short`: `namespace/` and the pod name without its one or two
    /// generated suffixes (deprecated in Hubble, still accepted there).
    PodShort,
    /// `pod-name`: the pod name alone.
    PodName,
    /// `dns`: the known DNS names, joined by `,`.
    Dns,
    /// `ip`: the IP address.
    Ip,
    /// `reserved-identity`: `reserved:kube-apiserver` if present, else the
    /// first `reserved:` label.
    ReservedIdentity,
    /// `workload`: `namespace/workload`.
    Workload,
    /// `workload-name`: the first workload's name.
    WorkloadName,
    /// `app`: from `app.kubernetes.io/name`, `k8s-app` or `app`.
    App,
}

/// Every context identifier with its spelling, in Hubble's documentation
/// order.
pub const CONTEXT_IDS: [(&str, ContextId); 11] = [
    ("identity", ContextId::Identity),
    ("namespace", ContextId::Namespace),
    ("pod", ContextId::Pod),
    ("pod-short", ContextId::PodShort),
    ("pod-name", ContextId::PodName),
    ("dns", ContextId::Dns),
    ("ip", ContextId::Ip),
    ("reserved-identity", ContextId::ReservedIdentity),
    ("workload", ContextId::Workload),
    ("workload-name", ContextId::WorkloadName),
    ("app", ContextId::App),
];

/// The `labelsContext` labels, in the order Hubble emits them.
pub const CONTEXT_LABELS: [&str; 13] = [
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
];

/// The context option keys every family takes (Hubble's spelling).
pub const CONTEXT_OPTIONS: [&str; 7] = [
    "sourceContext",
    "sourceEgressContext",
    "sourceIngressContext",
    "destinationContext",
    "destinationEgressContext",
    "destinationIngressContext",
    "labelsContext",
];

/// How a family adds context labels to its series.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContextOptions {
    /// `sourceContext`: adds the `source` label.
    pub source: Vec<ContextId>,
    /// `sourceEgressContext`: the `source` value for egress flows.
    pub source_egress: Vec<ContextId>,
    /// `sourceIngressContext`: the `source` value for ingress flows.
    pub source_ingress: Vec<ContextId>,
    /// `destinationContext`: adds the `destination` label.
    pub destination: Vec<ContextId>,
    /// `destinationEgressContext`.
    pub destination_egress: Vec<ContextId>,
    /// `destinationIngressContext`.
    pub destination_ingress: Vec<ContextId>,
    /// `labelsContext`: indexes into [`CONTEXT_LABELS`], ascending.
    pub labels: Vec<usize>,
}

impl ContextOptions {
    /// Whether no context label is added.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.source.is_empty() && self.destination.is_empty()
    }

    /// The context label names, in Hubble's order: the `labelsContext`
    /// ones, then `source` (only with `sourceContext`), then `destination`
    /// (only with `destinationContext`). The direction-specific options
    /// override a value but add no label, as in Hubble.
    pub fn label_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.labels.iter().map(|&i| CONTEXT_LABELS[i]).collect();
        if !self.source.is_empty() {
            names.push("source");
        }
        if !self.destination.is_empty() {
            names.push("destination");
        }
        names
    }

    /// The context label values of a flow, in [`Self::label_names`] order.
    pub fn label_values(&self, f: &Flow) -> Vec<String> {
        self.label_values_with(f, f.source.as_ref(), f.destination.as_ref())
    }

    /// [`Self::label_values`] of a flow whose endpoints are `src` and `dst`
    /// (its own are not read: the ingest shares them apart from the flow).
    pub fn label_values_with(
        &self,
        f: &Flow,
        src: Option<&Endpoint>,
        dst: Option<&Endpoint>,
    ) -> Vec<String> {
        let mut out = Vec::with_capacity(self.labels.len() + 2);
        let ip = f.ip.as_ref();
        for &i in &self.labels {
            let v = match CONTEXT_LABELS[i] {
                "source_ip" => ip.map(|i| i.source.clone()).unwrap_or_default(),
                "source_pod" => src.map(|e| e.pod_name.clone()).unwrap_or_default(),
                "source_namespace" => src.map(|e| e.namespace.clone()).unwrap_or_default(),
                "source_workload" => workload(src).map(|w| w.name.clone()).unwrap_or_default(),
                "source_workload_kind" => workload(src).map(|w| w.kind.clone()).unwrap_or_default(),
                "source_app" => app(src),
                "destination_ip" => ip.map(|i| i.destination.clone()).unwrap_or_default(),
                "destination_pod" => dst.map(|e| e.pod_name.clone()).unwrap_or_default(),
                "destination_namespace" => dst.map(|e| e.namespace.clone()).unwrap_or_default(),
                "destination_workload" => workload(dst).map(|w| w.name.clone()).unwrap_or_default(),
                "destination_workload_kind" => {
                    workload(dst).map(|w| w.kind.clone()).unwrap_or_default()
                }
                "destination_app" => app(dst),
                _ => direction_name(f.traffic_direction).to_string(),
            };
            out.push(v);
        }
        let pick = |all: &[ContextId], ingress: &[ContextId], egress: &[ContextId]| match f
            .traffic_direction
        {
            1 if !ingress.is_empty() => ingress.to_vec(),
            2 if !egress.is_empty() => egress.to_vec(),
            _ => all.to_vec(),
        };
        if !self.source.is_empty() {
            let ids = pick(&self.source, &self.source_ingress, &self.source_egress);
            out.push(first_non_empty(&ids, f, src, true));
        }
        if !self.destination.is_empty() {
            let ids = pick(
                &self.destination,
                &self.destination_ingress,
                &self.destination_egress,
            );
            out.push(first_non_empty(&ids, f, dst, false));
        }
        out
    }

    /// Whether a series of this family is tied to a pod (Hubble removes
    /// such series after the pod is deleted): a `pod` context, or
    /// `labelsContext` with a namespace and a pod.
    pub fn pod_bound(&self) -> bool {
        let has = |n: &str| self.labels.iter().any(|&i| CONTEXT_LABELS[i] == n);
        [
            &self.source,
            &self.source_egress,
            &self.source_ingress,
            &self.destination,
            &self.destination_egress,
            &self.destination_ingress,
        ]
        .iter()
        .any(|ids| ids.contains(&ContextId::Pod))
            || (has("source_pod") && has("source_namespace"))
            || (has("destination_pod") && has("destination_namespace"))
    }
}

fn direction_name(d: i32) -> &'static str {
    match d {
        1 => "ingress",
        2 => "egress",
        _ => "unknown",
    }
}

fn workload(e: Option<&proto::flow::Endpoint>) -> Option<&proto::flow::Workload> {
    e.and_then(|e| e.workloads.first())
}

/// The app name from the first label (in the endpoint's order) that is one
/// of Hubble's app labels with a non-empty value.
fn app(e: Option<&proto::flow::Endpoint>) -> String {
    const APP_LABELS: [&str; 3] = ["k8s:app.kubernetes.io/name=", "k8s:k8s-app=", "k8s:app="];
    let Some(e) = e else {
        return String::new();
    };
    for l in &e.labels {
        for prefix in APP_LABELS {
            if let Some(v) = l.strip_prefix(prefix)
                && !v.is_empty()
            {
                return v.to_string();
            }
        }
    }
    String::new()
}

/// Hubble's short pod name: the name without its last one or two
/// `-[a-z0-9]+` segments (`coredns-5d78c9869d-x7k2p` → `coredns`).
fn short_pod_name(name: &str) -> &str {
    let segs: Vec<&str> = name.split('-').collect();
    let ok = |s: &&str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    // The first part keeps at least one segment; strip up to two valid ones.
    let mut strip = 0;
    while strip < 2 && segs.len() > strip + 1 && ok(&segs[segs.len() - 1 - strip]) {
        strip += 1;
    }
    if strip == 0 {
        return name;
    }
    let keep: usize = segs[..segs.len() - strip]
        .iter()
        .map(|s| s.len() + 1)
        .sum::<usize>()
        - 1;
    &name[..keep]
}

fn first_non_empty(ids: &[ContextId], f: &Flow, ep: Option<&Endpoint>, source: bool) -> String {
    let ns = ep.map(|e| e.namespace.as_str()).unwrap_or("");
    let with_ns = |v: &str| {
        if ns.is_empty() {
            v.to_string()
        } else {
            format!("{ns}/{v}")
        }
    };
    for id in ids {
        let v = match id {
            ContextId::Namespace => ns.to_string(),
            ContextId::Identity => ep.map(|e| e.labels.join(",")).unwrap_or_default(),
            ContextId::Pod => with_ns(ep.map(|e| e.pod_name.as_str()).unwrap_or("")),
            ContextId::PodShort => with_ns(short_pod_name(
                ep.map(|e| e.pod_name.as_str()).unwrap_or(""),
            )),
            ContextId::PodName => ep.map(|e| e.pod_name.clone()).unwrap_or_default(),
            ContextId::Dns => {
                if source {
                    f.source_names.join(",")
                } else {
                    f.destination_names.join(",")
                }
            }
            ContextId::Ip => {
                f.ip.as_ref()
                    .map(|i| {
                        if source {
                            i.source.clone()
                        } else {
                            i.destination.clone()
                        }
                    })
                    .unwrap_or_default()
            }
            ContextId::ReservedIdentity => reserved_identity(ep),
            ContextId::Workload => match workload(ep) {
                Some(w) if !w.name.is_empty() => with_ns(&w.name),
                _ => String::new(),
            },
            ContextId::WorkloadName => workload(ep).map(|w| w.name.clone()).unwrap_or_default(),
            ContextId::App => app(ep),
        };
        if !v.is_empty() {
            return v;
        }
    }
    String::new()
}

fn reserved_identity(e: Option<&proto::flow::Endpoint>) -> String {
    let Some(e) = e else {
        return String::new();
    };
    if e.labels.iter().any(|l| l == "reserved:kube-apiserver") {
        return "reserved:kube-apiserver".into();
    }
    e.labels
        .iter()
        .find(|l| l.starts_with("reserved:"))
        .cloned()
        .unwrap_or_default()
}

/// One metric of the list with its options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricSpec {
    /// Which family.
    pub kind: MetricKind,
    /// Its context labels.
    pub context: ContextOptions,
    /// flows-to-world `any-drop`: count every drop, not only policy denials.
    pub any_drop: bool,
    /// flows-to-world `port`: add the destination `port` label.
    pub port: bool,
    /// flows-to-world `syn-only`: count only TCP SYNs (no SYN-ACKs).
    pub syn_only: bool,
}

/// The families to serve and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    /// In the order given.
    pub metrics: Vec<MetricSpec>,
}

/// What is wrong with a `--metrics` list. Each message names the bad part
/// and lists the valid choices.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetricsConfigError {
    /// A metric name Hubble does not define for L3/L4.
    #[error(
        "unknown metric {name:?} in --metrics; valid metrics: {}",
        valid_metrics()
    )]
    UnknownMetric {
        /// The name given.
        name: String,
    },
    /// An L7 metric (dns, http, httpV2, kafka).
    #[error(
        "metric {name:?} needs L7 visibility (DNS/HTTP/Kafka records from Cilium's L7 proxy), which this datapath does not produce; valid metrics: {}",
        valid_metrics()
    )]
    NeedsL7 {
        /// The name given.
        name: String,
    },
    /// The same metric twice.
    #[error("metric {name:?} is given twice in --metrics")]
    Duplicate {
        /// The name given.
        name: String,
    },
    /// An option key the metric does not take.
    #[error("unknown option {option:?} for metric {metric:?}; valid options: {valid}")]
    UnknownOption {
        /// The metric.
        metric: String,
        /// The option key given.
        option: String,
        /// The valid keys, comma separated.
        valid: String,
    },
    /// A context option without a value.
    #[error("option {option:?} of metric {metric:?} needs a value (e.g. {option}=namespace)")]
    MissingValue {
        /// The metric.
        metric: String,
        /// The option key.
        option: String,
    },
    /// An unknown context identifier.
    #[error(
        "unknown context {value:?} in {metric}:{option}; valid contexts: {}",
        valid_contexts()
    )]
    UnknownContext {
        /// The metric.
        metric: String,
        /// The option key.
        option: String,
        /// The identifier given.
        value: String,
    },
    /// An unknown `labelsContext` label.
    #[error("invalid labelsContext value {value:?} for metric {metric:?}; valid labels: {}", CONTEXT_LABELS.join(", "))]
    UnknownLabel {
        /// The metric.
        metric: String,
        /// The label given.
        value: String,
    },
}

fn valid_metrics() -> String {
    MetricKind::ALL.map(MetricKind::option_name).join(", ")
}

fn valid_contexts() -> String {
    CONTEXT_IDS.map(|(n, _)| n).join(", ")
}

impl MetricsConfig {
    /// The families served when `--metrics` is not given
    /// ([`crate::defaults::METRICS`]).
    pub fn default_set() -> MetricsConfig {
        MetricsConfig::parse(&[crate::defaults::METRICS]).expect("the default metric list parses")
    }

    /// The spec of a family, if it is served.
    pub fn get(&self, kind: MetricKind) -> Option<&MetricSpec> {
        self.metrics.iter().find(|m| m.kind == kind)
    }

    /// Parses one or more `--metrics` values (a repeated flag adds to the
    /// list).
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<MetricsConfig, MetricsConfigError> {
        let mut items: Vec<String> = Vec::new();
        for arg in args {
            for token in arg.as_ref().split_whitespace() {
                split_commas(token, &mut items);
            }
        }
        let mut metrics: Vec<MetricSpec> = Vec::new();
        for item in &items {
            let spec = parse_item(item)?;
            if metrics.iter().any(|m| m.kind == spec.kind) {
                return Err(MetricsConfigError::Duplicate {
                    name: spec.kind.option_name().into(),
                });
            }
            metrics.push(spec);
        }
        Ok(MetricsConfig { metrics })
    }
}

fn is_metric_name(s: &str) -> bool {
    let name = s.split(':').next().unwrap_or("");
    MetricKind::from_option_name(name).is_some() || L7_METRICS.contains(&name)
}

/// Splits the agent flag's comma form: a piece continues the item before
/// it when that item ends in a `labelsContext=` list and the piece is not a
/// metric name and has no option syntax.
fn split_commas(token: &str, items: &mut Vec<String>) {
    let mut first = true;
    for piece in token.split(',') {
        let continues = !first
            && !is_metric_name(piece)
            && !piece.contains([':', '=', ';'])
            && items.last().is_some_and(|prev| {
                prev.split_once(':')
                    .and_then(|(_, opts)| opts.rsplit(';').next())
                    .is_some_and(|o| o.to_ascii_lowercase().starts_with("labelscontext="))
            });
        if continues {
            let prev = items.last_mut().expect("checked");
            prev.push(',');
            prev.push_str(piece);
        } else if !piece.is_empty() {
            items.push(piece.to_string());
        }
        first = false;
    }
}

fn parse_item(item: &str) -> Result<MetricSpec, MetricsConfigError> {
    let (name, opts) = match item.split_once(':') {
        Some((n, o)) => (n, o),
        None => (item, ""),
    };
    let Some(kind) = MetricKind::from_option_name(name) else {
        if L7_METRICS.contains(&name) {
            return Err(MetricsConfigError::NeedsL7 { name: name.into() });
        }
        return Err(MetricsConfigError::UnknownMetric { name: name.into() });
    };
    let mut spec = MetricSpec {
        kind,
        context: ContextOptions::default(),
        any_drop: false,
        port: false,
        syn_only: false,
    };
    for opt in opts.split(';').filter(|o| !o.is_empty()) {
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        let lower = key.to_ascii_lowercase();
        let ctx_key = CONTEXT_OPTIONS
            .iter()
            .find(|k| k.to_ascii_lowercase() == lower);
        if let Some(&ctx_key) = ctx_key {
            let value = value.filter(|v| !v.is_empty()).ok_or_else(|| {
                MetricsConfigError::MissingValue {
                    metric: name.into(),
                    option: ctx_key.into(),
                }
            })?;
            if ctx_key == "labelsContext" {
                let mut labels = Vec::new();
                for l in value.split(',') {
                    let i = CONTEXT_LABELS.iter().position(|c| *c == l).ok_or_else(|| {
                        MetricsConfigError::UnknownLabel {
                            metric: name.into(),
                            value: l.into(),
                        }
                    })?;
                    labels.push(i);
                }
                labels.sort_unstable();
                labels.dedup();
                spec.context.labels = labels;
                continue;
            }
            let mut ids = Vec::new();
            for v in value.split('|') {
                let lower = v.to_ascii_lowercase();
                let id = CONTEXT_IDS
                    .iter()
                    .find(|(n, _)| *n == lower)
                    .map(|(_, id)| *id)
                    .ok_or_else(|| MetricsConfigError::UnknownContext {
                        metric: name.into(),
                        option: ctx_key.into(),
                        value: v.into(),
                    })?;
                ids.push(id);
            }
            let c = &mut spec.context;
            match ctx_key {
                "sourceContext" => c.source = ids,
                "sourceEgressContext" => c.source_egress = ids,
                "sourceIngressContext" => c.source_ingress = ids,
                "destinationContext" => c.destination = ids,
                "destinationEgressContext" => c.destination_egress = ids,
                _ => c.destination_ingress = ids,
            }
            continue;
        }
        // Hubble looks at the key alone for these flags.
        match (kind, lower.as_str()) {
            (MetricKind::FlowsToWorld, "any-drop") => spec.any_drop = true,
            (MetricKind::FlowsToWorld, "port") => spec.port = true,
            (MetricKind::FlowsToWorld, "syn-only") => spec.syn_only = true,
            _ => {
                let valid: Vec<&str> = CONTEXT_OPTIONS
                    .iter()
                    .copied()
                    .chain(kind.own_options().iter().copied())
                    .collect();
                return Err(MetricsConfigError::UnknownOption {
                    metric: name.into(),
                    option: key.into(),
                    valid: valid.join(", "),
                });
            }
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests;

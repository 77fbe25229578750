//! The agent's Prometheus metrics (`datapath agent --metrics-address`), with
//! Cilium's agent names (`cilium_*`) where the meaning is the same and
//! `datapath_*` where this agent differs:
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `cilium_version` | gauge (1) | `version`, `revision`, `arch` | build info |
//! | `cilium_endpoint_state` | gauge | `endpoint_state` | local endpoints by state (`ready`: programmed in the maps) |
//! | `cilium_identity` | gauge | `type` | identities known to the node: `reserved`, `cluster_local`, `node_local` |
//! | `cilium_policy` | gauge | | policies in force |
//! | `cilium_policy_max_revision` | gauge | | the policy revision in force |
//! | `cilium_policy_change_total` | counter | `outcome` | policy changes applied (`success`) or rejected (`failure`: the last valid policies stay in force) |
//! | `cilium_bpf_map_pressure` | gauge | `map_name` | entries ÷ max entries of each hash, LRU and LPM map |
//! | `cilium_drop_count_total` | counter | `reason`, `direction` | dropped packets, from the kernel's per-CPU counters; `reason` is Hubble's drop reason text |
//! | `cilium_drop_bytes_total` | counter | `reason`, `direction` | dropped bytes |
//! | `cilium_forward_count_total` | counter | `direction` | forwarded packets (leaving the programs towards a pod = `INGRESS`, else `EGRESS`) |
//! | `cilium_forward_bytes_total` | counter | `direction` | forwarded bytes |
//! | `cilium_datapath_conntrack_gc_entries` | gauge | `family`, `protocol`, `status` | conntrack entries (`status="alive"`; `protocol` `TCP` or `non-TCP`) |
//! | `cilium_agent_api_process_time_seconds` | histogram | `path`, `method`, `return_code` | the agent API's requests (the CNI plugin's ADD and DEL among them) |
//! | `datapath_cni_requests_total` | counter | `command`, `outcome` | CNI ADD/DEL requests the agent answered |
//! | `datapath_kvstore_operations_total` | counter | `backend`, `outcome` | cluster-store operations |
//! | `cilium_kvstore_operations_duration_seconds` | histogram | `action`, `outcome` | each etcd request's latency (`action`: `put`, `delete`, `get`, `watch`, `identity txn`, `lease grant`, ...; `outcome`: `success`, `failure` including timeouts) |
//! | `datapath_kvstore_connected` | gauge | `backend` | 1 when the cluster store is reachable |
//! | `datapath_kvstore_outages_total` | counter | `backend` | connection losses |
//! | `datapath_kvstore_resyncs_total` | counter | `backend` | full re-reads (first load, every reconnect) |
//! | `datapath_kvstore_pending_writes` | gauge | `backend` | own keys not yet written to the store |
//! | `datapath_metrics_refresh_errors_total` | counter | `source` | failed refreshes (`agent`, `kernel`) |
//!
//! Gauges and the kernel counters are refreshed every
//! [`crate::defaults::METRICS_REFRESH`] (not per scrape: a scrape never waits on
//! the agent's lock or walks a map).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::agent::api::{IdentityView, StatusView};
use crate::kernel::maps::{Maps, map_fill, names};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KvOpLabels {
    action: &'static str,
    outcome: &'static str,
}

/// `cilium_kvstore_operations_duration_seconds`: process-wide, since the
/// cluster store records into it from its own tasks (no handle to the
/// agent's metrics there); [`AgentMetrics::new`] registers it.
fn kvstore_latency() -> &'static Family<KvOpLabels, Histogram> {
    static LATENCY: std::sync::LazyLock<Family<KvOpLabels, Histogram>> =
        std::sync::LazyLock::new(|| {
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 16)))
        });
    &LATENCY
}

/// Records one cluster-store request: its action, whether it succeeded and
/// how long it took.
pub fn kvstore_op(action: &'static str, ok: bool, took: Duration) {
    let outcome = if ok { "success" } else { "failure" };
    kvstore_latency()
        .get_or_create(&KvOpLabels { action, outcome })
        .observe(took.as_secs_f64());
}

/// The maps whose fill ratio is `cilium_bpf_map_pressure` (hash, LRU-hash and
/// LPM maps; arrays are always full).
pub const PRESSURE_MAPS: [&str; 8] = [
    names::ENDPOINTS,
    names::IPCACHE,
    names::POLICY,
    names::CT4,
    names::LB4_SERVICES,
    names::LB4_BACKENDS,
    names::LB4_REVERSE_NAT,
    names::LB4_AFFINITY,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
    revision: &'static str,
    arch: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointStateLabels {
    endpoint_state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabels {
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MapLabels {
    map_name: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    reason: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CtLabels {
    family: &'static str,
    protocol: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    path: String,
    method: String,
    return_code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CniLabels {
    command: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    backend: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendOutcomeLabels {
    backend: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

/// Cilium's `direction` label value of a `HUBBLE_DIR_*` number.
pub fn direction_label(d: u8) -> &'static str {
    match d {
        1 => "INGRESS",
        2 => "EGRESS",
        _ => "UNKNOWN",
    }
}

/// Cilium's `type` of an identity number: reserved (below 256), node-local
/// (the local scope, bit 24 set: CIDR identities) or cluster-wide.
pub fn identity_type(id: u32) -> &'static str {
    if id < 256 {
        "reserved"
    } else if id & (1 << 24) != 0 {
        "node_local"
    } else {
        "cluster_local"
    }
}

/// Counters that mirror a total read elsewhere (a status snapshot, the
/// kernel): the last value seen, so the counter grows by the difference.
#[derive(Debug, Default)]
struct Mirrored(Mutex<BTreeMap<String, u64>>);

impl Mirrored {
    /// How much `key` grew since the last call (0 the first time it shrinks,
    /// e.g. after the maps were re-created).
    fn delta(&self, key: String, now: u64) -> u64 {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let last = m.insert(key, now).unwrap_or(0);
        now.saturating_sub(last)
    }
}

/// All metrics of one agent.
#[derive(Debug)]
pub struct AgentMetrics {
    registry: Registry,
    endpoint_state: Family<EndpointStateLabels, Gauge>,
    identity: Family<TypeLabels, Gauge>,
    policy: Gauge,
    policy_revision: Gauge<u64, AtomicU64>,
    policy_change: Family<OutcomeLabels, Counter>,
    map_pressure: Family<MapLabels, Gauge<f64, AtomicU64>>,
    drop_count: Family<DropLabels, Counter>,
    drop_bytes: Family<DropLabels, Counter>,
    forward_count: Family<DirectionLabels, Counter>,
    forward_bytes: Family<DirectionLabels, Counter>,
    ct_entries: Family<CtLabels, Gauge>,
    api: Family<ApiLabels, Histogram>,
    cni: Family<CniLabels, Counter>,
    kv_ops: Family<BackendOutcomeLabels, Counter>,
    kv_connected: Family<BackendLabels, Gauge>,
    kv_outages: Family<BackendLabels, Counter>,
    kv_resyncs: Family<BackendLabels, Counter>,
    kv_pending: Family<BackendLabels, Gauge>,
    refresh_errors: Family<SourceLabels, Counter>,
    mirrored: Mirrored,
    last_policy_error: Mutex<Option<String>>,
}

impl Default for AgentMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl AgentMetrics {
    /// A registry with every family registered, and the series that must
    /// exist before anything happened (zeros) created.
    pub fn new() -> Self {
        let mut m = AgentMetrics {
            registry: Registry::default(),
            endpoint_state: Family::default(),
            identity: Family::default(),
            policy: Gauge::default(),
            policy_revision: Gauge::default(),
            policy_change: Family::default(),
            map_pressure: Family::default(),
            drop_count: Family::default(),
            drop_bytes: Family::default(),
            forward_count: Family::default(),
            forward_bytes: Family::default(),
            ct_entries: Family::default(),
            api: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0005, 2.0, 16))
            }),
            cni: Family::default(),
            kv_ops: Family::default(),
            kv_connected: Family::default(),
            kv_outages: Family::default(),
            kv_resyncs: Family::default(),
            kv_pending: Family::default(),
            refresh_errors: Family::default(),
            mirrored: Mirrored::default(),
            last_policy_error: Mutex::new(None),
        };
        let version = Family::<VersionLabels, Gauge>::default();
        version
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
                revision: option_env!("DATAPATH_GIT_REVISION").unwrap_or("unknown"),
                arch: std::env::consts::ARCH,
            })
            .set(1);
        let r = &mut m.registry;
        r.register("cilium_version", "Agent version (build info)", version);
        r.register(
            "cilium_endpoint_state",
            "Local endpoints by state",
            m.endpoint_state.clone(),
        );
        r.register(
            "cilium_identity",
            "Identities known to the node, by type",
            m.identity.clone(),
        );
        r.register("cilium_policy", "Policies in force", m.policy.clone());
        r.register(
            "cilium_policy_max_revision",
            "Policy revision in force",
            m.policy_revision.clone(),
        );
        r.register(
            "cilium_policy_change",
            "Policy changes by outcome (failure: rejected, the last valid policies stay in force)",
            m.policy_change.clone(),
        );
        r.register(
            "cilium_bpf_map_pressure",
            "Fill ratio (entries / max entries) of each BPF hash, LRU and LPM map",
            m.map_pressure.clone(),
        );
        r.register(
            "cilium_drop_count",
            "Dropped packets by reason and direction (kernel per-CPU counters)",
            m.drop_count.clone(),
        );
        r.register(
            "cilium_drop_bytes",
            "Dropped bytes by reason and direction (kernel per-CPU counters)",
            m.drop_bytes.clone(),
        );
        r.register(
            "cilium_forward_count",
            "Forwarded packets by direction (kernel per-CPU counters)",
            m.forward_count.clone(),
        );
        r.register(
            "cilium_forward_bytes",
            "Forwarded bytes by direction (kernel per-CPU counters)",
            m.forward_bytes.clone(),
        );
        r.register(
            "cilium_datapath_conntrack_gc_entries",
            "Conntrack entries by family, protocol and status",
            m.ct_entries.clone(),
        );
        r.register(
            "cilium_agent_api_process_time_seconds",
            "Duration of the agent API's requests",
            m.api.clone(),
        );
        r.register(
            "datapath_cni_requests",
            "CNI ADD/DEL requests the agent answered, by outcome",
            m.cni.clone(),
        );
        r.register(
            "datapath_kvstore_operations",
            "Cluster-store operations by outcome",
            m.kv_ops.clone(),
        );
        r.register(
            "datapath_kvstore_connected",
            "1 when the cluster store is reachable",
            m.kv_connected.clone(),
        );
        r.register(
            "datapath_kvstore_outages",
            "Times the cluster store connection was lost",
            m.kv_outages.clone(),
        );
        r.register(
            "datapath_kvstore_resyncs",
            "Full re-reads of the cluster store",
            m.kv_resyncs.clone(),
        );
        r.register(
            "datapath_kvstore_pending_writes",
            "Own keys not yet written to the cluster store",
            m.kv_pending.clone(),
        );
        r.register(
            "cilium_kvstore_operations_duration_seconds",
            "Latency of each cluster-store (etcd) request, by action and outcome",
            kvstore_latency().clone(),
        );
        r.register(
            "datapath_metrics_refresh_errors",
            "Failed refreshes of the agent's gauges, by source",
            m.refresh_errors.clone(),
        );
        for outcome in ["success", "failure"] {
            drop(m.policy_change.get_or_create(&OutcomeLabels { outcome }));
            for command in ["ADD", "DEL"] {
                drop(m.cni.get_or_create(&CniLabels { command, outcome }));
            }
        }
        for direction in ["INGRESS", "EGRESS"] {
            drop(
                m.forward_count
                    .get_or_create(&DirectionLabels { direction }),
            );
            drop(
                m.forward_bytes
                    .get_or_create(&DirectionLabels { direction }),
            );
        }
        for source in ["agent", "kernel"] {
            drop(m.refresh_errors.get_or_create(&SourceLabels { source }));
        }
        m
    }

    /// Counts one API request: `path` is the route's template
    /// (`/v1/endpoints`), so the label set stays bounded.
    pub fn api_request(&self, path: &str, method: &str, code: u16, took: Duration) {
        self.api
            .get_or_create(&ApiLabels {
                path: path.to_owned(),
                method: method.to_owned(),
                return_code: code.to_string(),
            })
            .observe(took.as_secs_f64());
        let command = match (method, path) {
            ("POST", "/v1/endpoints") => "ADD",
            ("DELETE", "/v1/containers/{cid}/{ifname}") => "DEL",
            _ => return,
        };
        let outcome = if code < 300 { "success" } else { "failure" };
        self.cni
            .get_or_create(&CniLabels { command, outcome })
            .inc();
    }

    /// Takes the agent's figures from a status snapshot and its identities.
    pub fn observe_agent(&self, s: &StatusView, identities: &[IdentityView]) {
        self.endpoint_state
            .get_or_create(&EndpointStateLabels {
                endpoint_state: "ready",
            })
            .set(s.endpoints as i64);
        let mut by_type: BTreeMap<&'static str, i64> =
            [("reserved", 0), ("cluster_local", 0), ("node_local", 0)].into();
        for i in identities {
            *by_type.entry(identity_type(i.id)).or_insert(0) += 1;
        }
        for (t, n) in by_type {
            self.identity
                .get_or_create(&TypeLabels { r#type: t })
                .set(n);
        }
        self.policy.set(s.policies as i64);
        let grew = self
            .mirrored
            .delta("policy_revision".into(), s.policy_revision);
        self.policy_revision.set(s.policy_revision);
        if grew > 0 {
            self.policy_change
                .get_or_create(&OutcomeLabels { outcome: "success" })
                .inc_by(grew);
        }
        {
            let mut last = self
                .last_policy_error
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if s.policy_error.is_some() && *last != s.policy_error {
                self.policy_change
                    .get_or_create(&OutcomeLabels { outcome: "failure" })
                    .inc();
            }
            last.clone_from(&s.policy_error);
        }
        let k = &s.kvstore;
        let backend = BackendLabels {
            backend: k.backend.clone(),
        };
        for (outcome, total) in [("success", k.ops), ("failure", k.failed_ops)] {
            let d = self.mirrored.delta(format!("kv_ops_{outcome}"), total);
            self.kv_ops
                .get_or_create(&BackendOutcomeLabels {
                    backend: k.backend.clone(),
                    outcome,
                })
                .inc_by(d);
        }
        self.kv_connected
            .get_or_create(&backend)
            .set(i64::from(k.connected));
        let d = self.mirrored.delta("kv_outages".into(), k.outages);
        self.kv_outages.get_or_create(&backend).inc_by(d);
        let d = self.mirrored.delta("kv_resyncs".into(), k.resyncs);
        self.kv_resyncs.get_or_create(&backend).inc_by(d);
        self.kv_pending
            .get_or_create(&backend)
            .set(k.pending_writes as i64);
    }

    /// Reads the kernel's counters, conntrack and map fill from the pinned
    /// maps of `pin_dir`.
    pub fn observe_kernel(&self, pin_dir: &Path) -> crate::Result<()> {
        let maps = Maps::open(pin_dir)?;
        for e in maps.metrics()? {
            let direction = direction_label(e.direction);
            let key = format!("{}/{}", e.reason, e.direction);
            let dc = self.mirrored.delta(format!("count/{key}"), e.value.count);
            let db = self.mirrored.delta(format!("bytes/{key}"), e.value.bytes);
            if e.reason == 0 {
                let l = DirectionLabels { direction };
                self.forward_count.get_or_create(&l).inc_by(dc);
                self.forward_bytes.get_or_create(&l).inc_by(db);
            } else {
                let l = DropLabels {
                    reason: flow_parser::reasons::drop_reason_text(u32::from(e.reason))
                        .into_owned(),
                    direction,
                };
                self.drop_count.get_or_create(&l).inc_by(dc);
                self.drop_bytes.get_or_create(&l).inc_by(db);
            }
        }
        let mut tcp = 0;
        let mut other = 0;
        for (proto, n) in maps.ct_count_by_proto()? {
            if proto == 6 {
                tcp += n;
            } else {
                other += n;
            }
        }
        for (protocol, n) in [("TCP", tcp), ("non-TCP", other)] {
            self.ct_entries
                .get_or_create(&CtLabels {
                    family: "ipv4",
                    protocol,
                    status: "alive",
                })
                .set(n as i64);
        }
        for name in PRESSURE_MAPS {
            let (n, max) = map_fill(pin_dir, name)?;
            let ratio = if max == 0 { 0.0 } else { n as f64 / max as f64 };
            self.map_pressure
                .get_or_create(&MapLabels { map_name: name })
                .set(ratio);
        }
        Ok(())
    }

    /// Counts a failed refresh (`agent` or `kernel`).
    pub fn refresh_error(&self, source: &'static str) {
        self.refresh_errors
            .get_or_create(&SourceLabels { source })
            .inc();
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_cilium() {
        assert_eq!(direction_label(1), "INGRESS");
        assert_eq!(direction_label(2), "EGRESS");
        assert_eq!(direction_label(0), "UNKNOWN");
        assert_eq!(identity_type(2), "reserved");
        assert_eq!(identity_type(300), "cluster_local");
        assert_eq!(identity_type((1 << 24) + 1), "node_local");
    }

    #[test]
    fn zero_series_exist_and_api_counts_cni() {
        let m = AgentMetrics::new();
        m.api_request("/v1/endpoints", "POST", 200, Duration::from_millis(3));
        m.api_request(
            "/v1/containers/{cid}/{ifname}",
            "DELETE",
            500,
            Duration::from_millis(1),
        );
        m.api_request("/v1/status", "GET", 200, Duration::from_millis(1));
        let t = m.encode();
        for want in [
            "cilium_version{",
            r#"cilium_policy_change_total{outcome="failure"} 0"#,
            r#"cilium_forward_count_total{direction="INGRESS"} 0"#,
            r#"datapath_cni_requests_total{command="ADD",outcome="success"} 1"#,
            r#"datapath_cni_requests_total{command="DEL",outcome="failure"} 1"#,
            r#"datapath_cni_requests_total{command="DEL",outcome="success"} 0"#,
            r#"cilium_agent_api_process_time_seconds_count{path="/v1/status",method="GET",return_code="200"} 1"#,
        ] {
            assert!(t.contains(want), "missing {want} in\n{t}");
        }
    }

    #[test]
    fn kvstore_requests_are_timed_by_action_and_outcome() {
        kvstore_op("put", true, Duration::from_millis(2));
        kvstore_op("put", false, Duration::from_secs(5));
        let t = AgentMetrics::new().encode();
        for want in [
            r#"cilium_kvstore_operations_duration_seconds_count{action="put",outcome="success"}"#,
            r#"cilium_kvstore_operations_duration_seconds_count{action="put",outcome="failure"}"#,
        ] {
            assert!(t.contains(want), "missing {want} in\n{t}");
        }
    }

    #[test]
    fn mirrored_counters_grow_by_the_difference() {
        let m = Mirrored::default();
        assert_eq!(m.delta("a".into(), 5), 5);
        assert_eq!(m.delta("a".into(), 7), 2);
        assert_eq!(m.delta("a".into(), 3), 0);
        assert_eq!(m.delta("a".into(), 4), 1);
    }
}

//! Aggregates over every flow received, whether or not it is kept in the
//! bounded history or drawn: counts by verdict and drop reason, top talkers
//! and top drops by pod, namespace and identity (all three kept at once, so
//! cycling the grouping is instant), the service map of each grouping
//! (the map view, `m`), and flows per second for the sparkline. Recording a flow allocates only when it meets a new group.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher as _, Hasher as _};

use proto::flow::{DropReason, Endpoint, Flow, Verdict};
use rustc_hash::{FxBuildHasher, FxHashMap};

use crate::defaults;
use crate::map::{Grouping, ServiceMap};
use crate::printer::reserved_identity_name;

/// What the top-N panels group endpoints by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// `namespace/pod`, or the IP address of an endpoint without a pod.
    Pod,
    /// The namespace, or the reserved identity (`world`, `host`, …).
    Namespace,
    /// The security identity (numeric, with a telling label).
    Identity,
}

impl GroupBy {
    /// The next grouping (`g`).
    pub fn next(self) -> GroupBy {
        match self {
            GroupBy::Pod => GroupBy::Namespace,
            GroupBy::Namespace => GroupBy::Identity,
            GroupBy::Identity => GroupBy::Pod,
        }
    }

    /// The name shown in panel titles.
    pub fn name(self) -> &'static str {
        match self {
            GroupBy::Pod => "pod",
            GroupBy::Namespace => "namespace",
            GroupBy::Identity => "identity",
        }
    }

    /// What the service map groups by: pods become their workloads.
    pub fn map_grouping(self) -> Grouping {
        match self {
            GroupBy::Pod => Grouping::Workload,
            GroupBy::Namespace => Grouping::Namespace,
            GroupBy::Identity => Grouping::Identity,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The service maps of the three groupings, built at once.
#[derive(Debug, Clone)]
struct Maps([ServiceMap; 3]);

impl Default for Maps {
    fn default() -> Self {
        Maps(
            [GroupBy::Pod, GroupBy::Namespace, GroupBy::Identity]
                .map(|g| ServiceMap::new(g.map_grouping())),
        )
    }
}

/// Counts per group, keyed by a hash of the group's name so a known group
/// is counted without building its label.
#[derive(Debug, Default, Clone)]
struct Tally {
    map: FxHashMap<u64, (String, u64)>,
}

impl Tally {
    fn add(&mut self, key: u64, label: impl FnOnce() -> String) {
        if let Some(e) = self.map.get_mut(&key) {
            e.1 += 1;
            return;
        }
        if self.map.len() >= defaults::TUI_GROUPS_MAX {
            self.forget_smallest_half();
        }
        self.map.insert(key, (label(), 1));
    }

    fn forget_smallest_half(&mut self) {
        let mut counts: Vec<u64> = self.map.values().map(|e| e.1).collect();
        counts.sort_unstable();
        let cut = counts[counts.len() / 2];
        self.map.retain(|_, e| e.1 > cut);
    }

    /// The `n` largest groups, ties by name (deterministic).
    fn top(&self, n: usize) -> Vec<(String, u64)> {
        let mut v: Vec<(&String, u64)> = self.map.values().map(|(l, c)| (l, *c)).collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        v.into_iter().take(n).map(|(l, c)| (l.clone(), c)).collect()
    }
}

/// Flows per second over the last [`defaults::TUI_RATE_WINDOW`] seconds,
/// by the receiver's clock (seconds since the TUI started).
#[derive(Debug, Clone, Default)]
struct Rate {
    /// The second the last bucket counts.
    current: u64,
    buckets: VecDeque<u64>,
}

impl Rate {
    fn advance(&mut self, sec: u64) {
        if self.buckets.is_empty() {
            self.current = sec;
            self.buckets.push_back(0);
            return;
        }
        if sec <= self.current {
            return;
        }
        let gap = (sec - self.current).min(defaults::TUI_RATE_WINDOW as u64);
        for _ in 0..gap {
            self.buckets.push_back(0);
        }
        while self.buckets.len() > defaults::TUI_RATE_WINDOW {
            self.buckets.pop_front();
        }
        self.current = sec;
    }

    fn add(&mut self, sec: u64, n: u64) {
        self.advance(sec);
        if let Some(b) = self.buckets.back_mut() {
            *b += n;
        }
    }
}

/// One node's counters for the nodes panel: its flows, their rate and the
/// events it reported lost.
#[derive(Debug, Clone, Default)]
pub struct NodeCounters {
    /// Flows received from the node.
    pub flows: u64,
    /// Events the node reported lost.
    pub lost: u64,
    rate: Rate,
}

impl NodeCounters {
    /// Flows per second of the last complete second.
    pub fn last_rate(&self) -> u64 {
        let n = self.rate.buckets.len();
        if n >= 2 { self.rate.buckets[n - 2] } else { 0 }
    }
}

/// Nodes counted one by one; flows of further nodes count only in the
/// totals (the same bound as the node names the inbox remembers).
pub const NODE_COUNTERS_MAX: usize = 64;

/// Every aggregate the side panels and the status bar show.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Flows received.
    pub flows: u64,
    /// Flows by `Verdict` value (unknown values count as 0).
    pub verdicts: [u64; 16],
    drop_reasons: HashMap<i32, u64, FxBuildHasher>,
    talkers: [Tally; 3],
    drops: [Tally; 3],
    /// Flows by (source group, destination group, port, verdict), for the
    /// aggregated view (`a`), one tally per grouping.
    pairs: [Tally; 3],
    /// Policies named in `*_denied_by` of denied flows (`namespace/name`).
    denying: Tally,
    /// The service map per grouping (`m`).
    maps: Maps,
    rate: Rate,
    /// Events the server reported lost (sum of `LostEvent.num_events_lost`).
    pub lost: u64,
    /// Lost events by `LostEventSource` value.
    pub lost_by_source: [u64; 4],
    /// Per-node counters, by node name (at most [`NODE_COUNTERS_MAX`]).
    pub nodes: BTreeMap<String, NodeCounters>,
}

fn hash_parts(parts: &[&str]) -> u64 {
    let mut h = FxBuildHasher.build_hasher();
    for p in parts {
        h.write(p.as_bytes());
        h.write_u8(0xff);
    }
    h.finish()
}

/// `ID:1001 class=xwing`: the identity with its first label that is not the
/// namespace; reserved identities by name.
fn identity_label(ep: &Endpoint) -> String {
    if let Some(name) = reserved_identity_name(ep.identity) {
        return name.to_owned();
    }
    let label = ep
        .labels
        .iter()
        .map(|l| l.split_once(':').map_or(l.as_str(), |(_, rest)| rest))
        .find(|l| !l.starts_with("io.kubernetes.pod.namespace=") && !l.starts_with("io.cilium."));
    match label {
        Some(l) => format!("{} {l}", ep.identity),
        None => ep.identity.to_string(),
    }
}

/// The L4 protocol's name and destination port (0 without one; ICMP has
/// only the name).
fn l4_port(f: &Flow) -> (&'static str, u32) {
    use proto::flow::layer4::Protocol;
    match f.l4.as_ref().and_then(|l| l.protocol.as_ref()) {
        Some(Protocol::Tcp(t)) => ("TCP", t.destination_port),
        Some(Protocol::Udp(u)) => ("UDP", u.destination_port),
        Some(Protocol::Sctp(s)) => ("SCTP", s.destination_port),
        Some(Protocol::IcmPv4(_)) => ("ICMPv4", 0),
        Some(Protocol::IcmPv6(_)) => ("ICMPv6", 0),
        _ => ("", 0),
    }
}

/// Which group of `g` a source endpoint (with source IP `ip`) is in, as a
/// hash of what [`group_label`] prints.
fn group_key(g: GroupBy, src: &Endpoint, ip: &str) -> u64 {
    match g {
        GroupBy::Pod if !src.pod_name.is_empty() => hash_parts(&[&src.namespace, &src.pod_name]),
        GroupBy::Pod if !ip.is_empty() => hash_parts(&["ip", ip]),
        GroupBy::Namespace if !src.namespace.is_empty() => hash_parts(&[&src.namespace]),
        GroupBy::Identity => u64::from(src.identity),
        _ => hash_parts(&[
            "reserved",
            reserved_identity_name(src.identity).unwrap_or("unknown"),
        ]),
    }
}

/// The name of the group [`group_key`] hashes.
fn group_label(g: GroupBy, src: &Endpoint, ip: &str) -> String {
    match g {
        GroupBy::Pod if !src.pod_name.is_empty() => format!("{}/{}", src.namespace, src.pod_name),
        GroupBy::Pod if !ip.is_empty() => ip.to_owned(),
        GroupBy::Namespace if !src.namespace.is_empty() => src.namespace.clone(),
        GroupBy::Identity => identity_label(src),
        _ => format!(
            "({})",
            reserved_identity_name(src.identity).unwrap_or("unknown")
        ),
    }
}

impl Stats {
    /// Counts one flow received at `sec` (seconds since start).
    pub fn record(&mut self, f: &Flow, sec: u64) {
        self.flows += 1;
        self.rate.add(sec, 1);
        if let Some(n) = self.node(&f.node_name) {
            n.flows += 1;
            n.rate.add(sec, 1);
        }
        let v = usize::try_from(f.verdict).unwrap_or(0);
        self.verdicts[if v < self.verdicts.len() { v } else { 0 }] += 1;
        let dropped = f.verdict == Verdict::Dropped as i32;
        if dropped {
            *self.drop_reasons.entry(f.drop_reason_desc).or_insert(0) += 1;
            for p in f.ingress_denied_by.iter().chain(&f.egress_denied_by) {
                let key = hash_parts(&["policy", &p.namespace, &p.name]);
                self.denying.add(key, || {
                    if p.namespace.is_empty() {
                        p.name.clone()
                    } else {
                        format!("{}/{}", p.namespace, p.name)
                    }
                });
            }
        }
        let empty = Endpoint::default();
        let src = f.source.as_ref().unwrap_or(&empty);
        let ip = f.ip.as_ref().map(|i| i.source.as_str()).unwrap_or("");
        let dst = f.destination.as_ref().unwrap_or(&empty);
        let dip = f.ip.as_ref().map(|i| i.destination.as_str()).unwrap_or("");
        let (proto, port) = l4_port(f);
        for g in [GroupBy::Pod, GroupBy::Namespace, GroupBy::Identity] {
            let mut h = FxBuildHasher.build_hasher();
            h.write_u64(group_key(g, src, ip));
            h.write_u64(group_key(g, dst, dip));
            h.write(proto.as_bytes());
            h.write_u32(port);
            h.write_i32(f.verdict);
            self.pairs[g.index()].add(h.finish(), || {
                let port = if port == 0 && proto.is_empty() {
                    String::new()
                } else if port == 0 {
                    proto.to_owned()
                } else {
                    format!("{port}/{proto}")
                };
                let verdict = Verdict::try_from(f.verdict)
                    .map_or_else(|_| f.verdict.to_string(), |v| v.as_str_name().to_owned());
                [
                    group_label(g, src, ip),
                    group_label(g, dst, dip),
                    port,
                    verdict,
                ]
                .join("\t")
            });
        }
        for m in &mut self.maps.0 {
            m.add(f);
        }
        for g in [GroupBy::Pod, GroupBy::Namespace, GroupBy::Identity] {
            let key = group_key(g, src, ip);
            self.talkers[g.index()].add(key, || group_label(g, src, ip));
            if dropped {
                let talkers = &self.talkers[g.index()];
                self.drops[g.index()].add(key, || {
                    talkers
                        .map
                        .get(&key)
                        .map_or_else(|| group_label(g, src, ip), |e| e.0.clone())
                });
            }
        }
    }

    /// The service map of every flow, grouped as `g` groups.
    pub fn service_map(&self, g: GroupBy) -> &ServiceMap {
        &self.maps.0[g.index()]
    }

    /// Counts a lost-events report.
    pub fn record_lost(&mut self, source: i32, n: u64) {
        self.lost += n;
        let i = usize::try_from(source).unwrap_or(0);
        self.lost_by_source[if i < 4 { i } else { 0 }] += n;
    }

    /// Counts events that node `node` reported lost (a relay names the
    /// node in the response; an empty name is not counted per node).
    pub fn record_node_lost(&mut self, node: &str, n: u64) {
        if let Some(c) = self.node(node) {
            c.lost += n;
        }
    }

    /// The counters of `node`, made on first use while there is room.
    fn node(&mut self, node: &str) -> Option<&mut NodeCounters> {
        if node.is_empty() {
            return None;
        }
        if !self.nodes.contains_key(node) {
            if self.nodes.len() >= NODE_COUNTERS_MAX {
                return None;
            }
            self.nodes.insert(node.to_owned(), NodeCounters::default());
        }
        self.nodes.get_mut(node)
    }

    /// Moves the rate clock to `sec` so the sparkline and the per-node
    /// rates move on when no flow arrives.
    pub fn tick(&mut self, sec: u64) {
        self.rate.advance(sec);
        for n in self.nodes.values_mut() {
            n.rate.advance(sec);
        }
    }

    /// Flows per second of the last complete second.
    pub fn last_rate(&self) -> u64 {
        let n = self.rate.buckets.len();
        if n >= 2 { self.rate.buckets[n - 2] } else { 0 }
    }

    /// Flows per second of the last `n` complete seconds, oldest first.
    pub fn rate_history(&self, n: usize) -> Vec<u64> {
        let complete = self.rate.buckets.len().saturating_sub(1);
        let skip = complete.saturating_sub(n);
        self.rate
            .buckets
            .iter()
            .take(complete)
            .skip(skip)
            .copied()
            .collect()
    }

    /// Non-zero verdict counts, by verdict number.
    pub fn verdict_counts(&self) -> Vec<(String, u64)> {
        self.verdicts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| {
                let name = i32::try_from(i)
                    .ok()
                    .and_then(|i| Verdict::try_from(i).ok())
                    .map_or_else(|| i.to_string(), |v| v.as_str_name().to_owned());
                (name, *c)
            })
            .collect()
    }

    /// The `n` most frequent drop reasons.
    pub fn top_drop_reasons(&self, n: usize) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .drop_reasons
            .iter()
            .map(|(r, c)| {
                let name = DropReason::try_from(*r)
                    .map_or_else(|_| r.to_string(), |d| d.as_str_name().to_owned());
                (name, *c)
            })
            .collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }

    /// The `n` policies that denied the most flows (from the flows'
    /// `ingress_denied_by`/`egress_denied_by`).
    pub fn top_denying_policies(&self, n: usize) -> Vec<(String, u64)> {
        self.denying.top(n)
    }

    /// The `n` sources with the most flows.
    pub fn top_talkers(&self, by: GroupBy, n: usize) -> Vec<(String, u64)> {
        self.talkers[by.index()].top(n)
    }

    /// The `n` largest (source, destination, port, verdict) groups by
    /// `by`, ties by their labels: `[source, destination, port, verdict]`
    /// and the count.
    pub fn top_pairs(&self, by: GroupBy, n: usize) -> Vec<([String; 4], u64)> {
        self.pairs[by.index()]
            .top(n)
            .into_iter()
            .map(|(label, c)| {
                let mut parts = label.splitn(4, '\t').map(str::to_owned);
                let mut next = || parts.next().unwrap_or_default();
                ([next(), next(), next(), next()], c)
            })
            .collect()
    }

    /// The `n` sources with the most dropped flows.
    pub fn top_drops(&self, by: GroupBy, n: usize) -> Vec<(String, u64)> {
        self.drops[by.index()].top(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::flow::Ip;

    fn flow(ns: &str, pod: &str, id: u32, verdict: Verdict) -> Flow {
        Flow {
            verdict: verdict as i32,
            drop_reason_desc: if verdict == Verdict::Dropped {
                DropReason::PolicyDenied as i32
            } else {
                0
            },
            ip: Some(Ip {
                source: "10.0.0.1".into(),
                ..Default::default()
            }),
            source: Some(Endpoint {
                namespace: ns.into(),
                pod_name: pod.into(),
                identity: id,
                labels: vec!["k8s:app=x".into()],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn counts_denying_policies() {
        let policy = |ns: &str, name: &str| proto::flow::Policy {
            name: name.into(),
            namespace: ns.into(),
            kind: "CiliumNetworkPolicy".into(),
            ..Default::default()
        };
        let mut s = Stats::default();
        let denied = |p: Vec<proto::flow::Policy>, egress: bool| {
            let mut f = flow("default", "xwing", 1001, Verdict::Dropped);
            if egress {
                f.egress_denied_by = p;
            } else {
                f.ingress_denied_by = p;
            }
            f
        };
        s.record(&denied(vec![policy("default", "deny-xwing-80")], false), 0);
        s.record(&denied(vec![policy("default", "deny-xwing-80")], false), 0);
        s.record(
            &denied(
                vec![policy("", "global"), policy("default", "deny-xwing-80")],
                true,
            ),
            0,
        );
        // Allowed flows and default denies name no denying policy.
        let mut allowed = flow("default", "tiefighter", 1002, Verdict::Forwarded);
        allowed.ingress_allowed_by = vec![policy("default", "rule1")];
        s.record(&allowed, 0);
        s.record(&flow("default", "xwing", 1001, Verdict::Dropped), 0);
        assert_eq!(
            s.top_denying_policies(5),
            vec![("default/deny-xwing-80".into(), 3), ("global".into(), 1)]
        );
        assert_eq!(s.top_denying_policies(1).len(), 1);
    }

    #[test]
    fn counts_verdicts_reasons_and_groups() {
        let mut s = Stats::default();
        s.record(&flow("default", "xwing", 1001, Verdict::Dropped), 0);
        s.record(&flow("default", "xwing", 1001, Verdict::Forwarded), 0);
        s.record(&flow("kube-system", "dns", 1020, Verdict::Forwarded), 1);
        s.record(&flow("", "", 2, Verdict::Dropped), 2);
        assert_eq!(s.flows, 4);
        assert_eq!(
            s.verdict_counts(),
            vec![("FORWARDED".into(), 2), ("DROPPED".into(), 2)]
        );
        assert_eq!(s.top_drop_reasons(5), vec![("POLICY_DENIED".into(), 2)]);
        assert_eq!(
            s.top_talkers(GroupBy::Pod, 2),
            vec![("default/xwing".into(), 2), ("10.0.0.1".into(), 1)]
        );
        assert_eq!(
            s.top_drops(GroupBy::Namespace, 5),
            vec![("(world)".into(), 1), ("default".into(), 1)]
        );
        assert_eq!(
            s.top_talkers(GroupBy::Identity, 1),
            vec![("1001 app=x".into(), 2)]
        );
        assert_eq!(s.rate_history(10), vec![2, 1]);
        assert_eq!(s.last_rate(), 1);
        s.tick(5);
        assert_eq!(s.rate_history(3), vec![1, 0, 0]);
    }

    #[test]
    fn groups_are_bounded() {
        let mut t = Tally::default();
        for i in 0..(defaults::TUI_GROUPS_MAX as u64 + 10) {
            t.add(i, || i.to_string());
            if i == 0 {
                t.add(0, String::new);
            }
        }
        assert!(t.map.len() <= defaults::TUI_GROUPS_MAX);
        assert_eq!(t.top(1), vec![("0".into(), 2)]);
    }
}

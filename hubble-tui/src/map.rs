//! The service map: who talks to whom. Flows become a directed graph whose
//! nodes are workloads (or namespaces, or security identities) and whose
//! edges carry flow counts by verdict (forwarded, dropped, other), the
//! destination ports and the services that translated them. `hubble map`
//! prints it (text, Graphviz DOT, Mermaid, JSON); the TUI's map view (`m`)
//! draws it.
//!
//! Decisions, written down:
//! - **Direction.** A reply (`is_reply` true) counts on the edge of the
//!   connection it answers (its destination → its source, port from its
//!   source port), so a conversation is one arrow from client to server,
//!   with its drops wherever they happened. A flow whose direction is
//!   unknown counts as a request.
//! - **Workloads.** The endpoint's first `workloads` entry names it
//!   (`namespace/name`); without one, the pod name with a Deployment's
//!   `-<pod-template-hash>-<suffix>` removed (the hash must hold a digit),
//!   else the pod name itself.
//! - **Peers without a pod** (in every grouping): reserved identities by
//!   name (`world`, `host`, `remote-node`, `kube-apiserver`, …, kind
//!   `world`, `host` or `reserved`); otherwise, grouping by workload, the IP
//!   address (kind `ip`), and `unknown` when there is none.
//! - **Services.** A flow translated by a service keeps its backend as the
//!   destination node (who really talks to whom); the service
//!   (`namespace/name`, from `destination_service`, or `source_service` of
//!   a reply) is listed on the edge, like its ports.
//! - **Verdicts.** `forwarded` counts FORWARDED, `dropped` DROPPED, `other`
//!   every other verdict (AUDIT, REDIRECTED, ERROR, TRACED, TRANSLATED, …).
//! - **Bounds.** At most [`defaults::MAP_EDGES_MAX`] edges; flows of further
//!   pairs count in `overflow`. At most [`defaults::MAP_EDGE_PORTS_MAX`]
//!   ports and services are named per edge.

use std::fmt::Write as _;
use std::hash::{BuildHasher as _, Hasher as _};
use std::io::{self, Write};

use proto::flow::{Endpoint, Flow, Verdict};
use proto::observer::{GetFlowsResponse, get_flows_response::ResponseTypes};
use rustc_hash::{FxBuildHasher, FxHashMap};
use serde::Serialize;

use crate::defaults;
use crate::printer::reserved_identity_name;
use crate::printer::tabwriter::TabWriter;

/// What a node of the map stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Grouping {
    /// A workload (`namespace/name`): the pods of a Deployment, …
    Workload,
    /// A namespace.
    Namespace,
    /// A security identity.
    Identity,
}

impl Grouping {
    /// Every grouping, in `g`'s order.
    pub const ALL: [Grouping; 3] = [Grouping::Workload, Grouping::Namespace, Grouping::Identity];

    /// Its name (`--group-by`, titles, JSON).
    pub fn name(self) -> &'static str {
        match self {
            Grouping::Workload => "workload",
            Grouping::Namespace => "namespace",
            Grouping::Identity => "identity",
        }
    }

    /// Parses a `--group-by` value.
    pub fn parse(s: &str) -> anyhow::Result<Grouping> {
        Grouping::ALL
            .into_iter()
            .find(|g| g.name() == s)
            .ok_or_else(|| {
                anyhow::anyhow!("invalid --group-by {s:?}: one of workload, namespace, identity")
            })
    }
}

/// What kind of thing a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// A workload (or a pod without workload information).
    Workload,
    /// A namespace.
    Namespace,
    /// A security identity allocated for endpoints.
    Identity,
    /// The reserved `world` identities (outside the cluster).
    World,
    /// The reserved `host` identity (this node).
    Host,
    /// Another reserved identity (`remote-node`, `kube-apiserver`, …).
    Reserved,
    /// A service's virtual address before translation (a socket-LB
    /// `pre-xlate` flow to a ClusterIP): the service, not its address.
    Service,
    /// An address with no pod and no reserved identity.
    Ip,
    /// Nothing known about the endpoint.
    Unknown,
}

impl NodeKind {
    /// Its name (JSON, DOT attributes).
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::Workload => "workload",
            NodeKind::Namespace => "namespace",
            NodeKind::Identity => "identity",
            NodeKind::World => "world",
            NodeKind::Host => "host",
            NodeKind::Reserved => "reserved",
            NodeKind::Service => "service",
            NodeKind::Ip => "ip",
            NodeKind::Unknown => "unknown",
        }
    }

    /// Whether it lies outside the cluster's workloads (drawn as an
    /// ellipse rather than a box).
    pub fn is_peer(self) -> bool {
        matches!(
            self,
            NodeKind::World
                | NodeKind::Host
                | NodeKind::Reserved
                | NodeKind::Ip
                | NodeKind::Unknown
        )
    }
}

/// A node of the map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// Stable identifier: `namespace/name` (workload), `namespace`,
    /// `identity:N`, `reserved:NAME`, `service:namespace/name`,
    /// `ip:ADDRESS` or `unknown`.
    pub id: String,
    /// What to show: `namespace/name`, `namespace`, `N label`, the
    /// reserved name, the address.
    pub label: String,
    /// What it is.
    pub kind: NodeKind,
    /// Its namespace (empty for peers and identities without one).
    pub namespace: String,
    /// The filter flags (after `--from-`/`--to-`) selecting it.
    #[serde(skip)]
    selector: (&'static str, String),
}

impl Node {
    /// The filter flags selecting this node as `side` (`"from"` or
    /// `"to"`), e.g. `["--from-pod", "default/xwing"]`. A workload is
    /// selected by pod-name prefix (`namespace/name`).
    pub fn filter_flags(&self, side: &str) -> [String; 2] {
        [
            format!("--{side}-{}", self.selector.0),
            self.selector.1.clone(),
        ]
    }
}

/// How an edge is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Every flow forwarded.
    Forwarded,
    /// Every flow dropped.
    Dropped,
    /// Some dropped, some not.
    Mixed,
    /// Neither forwarded nor dropped (audit, traced, …).
    Other,
}

/// An edge of the map: flows from `source` to `target`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edge {
    /// The source node's id.
    pub source: String,
    /// The target node's id.
    pub target: String,
    /// FORWARDED flows.
    pub forwarded: u64,
    /// DROPPED flows.
    pub dropped: u64,
    /// Flows of any other verdict.
    pub other: u64,
    /// All of them.
    pub total: u64,
    /// Destination ports as `80/TCP` (`ICMPv4` for ICMP), in order met.
    pub ports: Vec<String>,
    /// Services that translated its flows (`namespace/name`).
    pub services: Vec<String>,
}

impl Edge {
    /// Its colour class.
    pub fn tone(&self) -> Tone {
        match (self.forwarded, self.dropped, self.other) {
            (_, 0, _) if self.forwarded > 0 => Tone::Forwarded,
            (0, d, 0) if d > 0 => Tone::Dropped,
            (_, d, _) if d > 0 => Tone::Mixed,
            _ => Tone::Other,
        }
    }

    /// `1 fwd, 2 drop` (zero counts left out).
    pub fn counts_text(&self) -> String {
        let mut parts = Vec::new();
        for (n, what) in [
            (self.forwarded, "fwd"),
            (self.dropped, "drop"),
            (self.other, "other"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        parts.join(", ")
    }
}

/// The map as built: nodes sorted by id, edges largest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Graph {
    /// What the nodes stand for.
    pub grouping: Grouping,
    /// Flows counted.
    pub flows: u64,
    /// Flows of pairs beyond [`defaults::MAP_EDGES_MAX`], not in any edge.
    pub overflow: u64,
    /// The nodes, by id.
    pub nodes: Vec<Node>,
    /// The edges, by total count (largest first), then dropped count, then
    /// source and target ids.
    pub edges: Vec<Edge>,
}

#[derive(Debug, Clone)]
struct EdgeAcc {
    source: u64,
    target: u64,
    forwarded: u64,
    dropped: u64,
    other: u64,
    ports: Vec<(&'static str, u32)>,
    services: Vec<(String, String)>,
}

/// Builds a [`Graph`] flow by flow. Counting a flow allocates only when it
/// meets a new node, edge, port or service.
#[derive(Debug, Clone)]
pub struct ServiceMap {
    grouping: Grouping,
    nodes: FxHashMap<u64, Node>,
    edges: FxHashMap<(u64, u64), EdgeAcc>,
    flows: u64,
    overflow: u64,
    /// Events the server reported lost while building.
    pub lost: u64,
}

/// An endpoint, classified, borrowing from the flow.
enum Ref<'a> {
    Workload(&'a str, &'a str),
    Namespace(&'a str),
    Identity(u32, &'a Endpoint),
    Reserved(u32, &'static str),
    Service(&'a str, &'a str),
    Ip(&'a str),
    Unknown,
}

/// The workload name of a pod without workload information: the pod name
/// without a Deployment's `-<hash>-<suffix>`.
fn pod_workload(pod: &str) -> &str {
    let Some((head, suffix)) = pod.rsplit_once('-') else {
        return pod;
    };
    let Some((name, hash)) = head.rsplit_once('-') else {
        return pod;
    };
    let alnum = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    if !name.is_empty()
        && suffix.len() == 5
        && alnum(suffix)
        && (6..=10).contains(&hash.len())
        && alnum(hash)
        && hash.bytes().any(|b| b.is_ascii_digit())
    {
        name
    } else {
        pod
    }
}

/// The server side of a flow: a service's virtual address (no pod behind
/// it yet: a `pre-xlate` socket-LB flow, or its reply) is the service, in
/// its namespace when grouping by namespace; anything else as [`classify`].
fn classify_server<'a>(
    g: Grouping,
    ep: &'a Endpoint,
    ip: &'a str,
    service: Option<&'a proto::flow::Service>,
) -> Ref<'a> {
    match service {
        Some(s) if ep.pod_name.is_empty() && !s.name.is_empty() => match g {
            Grouping::Namespace if !s.namespace.is_empty() => Ref::Namespace(&s.namespace),
            _ => Ref::Service(&s.namespace, &s.name),
        },
        _ => classify(g, ep, ip),
    }
}

fn classify<'a>(g: Grouping, ep: &'a Endpoint, ip: &'a str) -> Ref<'a> {
    match g {
        Grouping::Workload if !ep.pod_name.is_empty() => {
            let name = ep
                .workloads
                .first()
                .map(|w| w.name.as_str())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| pod_workload(&ep.pod_name));
            return Ref::Workload(&ep.namespace, name);
        }
        Grouping::Namespace if !ep.namespace.is_empty() => return Ref::Namespace(&ep.namespace),
        Grouping::Identity if ep.identity != 0 && reserved_identity_name(ep.identity).is_none() => {
            return Ref::Identity(ep.identity, ep);
        }
        _ => {}
    }
    if ep.identity != 0
        && let Some(name) = reserved_identity_name(ep.identity)
    {
        return Ref::Reserved(ep.identity, name);
    }
    if g == Grouping::Workload && !ip.is_empty() {
        return Ref::Ip(ip);
    }
    Ref::Unknown
}

impl Ref<'_> {
    fn key(&self) -> u64 {
        let mut h = FxBuildHasher.build_hasher();
        match self {
            Ref::Workload(ns, name) => {
                h.write_u8(1);
                h.write(ns.as_bytes());
                h.write_u8(0xff);
                h.write(name.as_bytes());
            }
            Ref::Namespace(ns) => {
                h.write_u8(2);
                h.write(ns.as_bytes());
            }
            Ref::Identity(id, _) | Ref::Reserved(id, _) => {
                h.write_u8(3);
                h.write_u32(*id);
            }
            Ref::Ip(ip) => {
                h.write_u8(4);
                h.write(ip.as_bytes());
            }
            Ref::Service(ns, name) => {
                h.write_u8(6);
                h.write(ns.as_bytes());
                h.write_u8(0xff);
                h.write(name.as_bytes());
            }
            Ref::Unknown => h.write_u8(5),
        }
        h.finish()
    }

    fn node(&self) -> Node {
        let node =
            |id: String, label: String, kind, namespace: &str, sel: (&'static str, String)| Node {
                id,
                label,
                kind,
                namespace: namespace.to_owned(),
                selector: sel,
            };
        match self {
            Ref::Workload(ns, name) => {
                let id = format!("{ns}/{name}");
                node(id.clone(), id.clone(), NodeKind::Workload, ns, ("pod", id))
            }
            Ref::Namespace(ns) => node(
                (*ns).to_owned(),
                (*ns).to_owned(),
                NodeKind::Namespace,
                ns,
                ("namespace", (*ns).to_owned()),
            ),
            Ref::Identity(id, ep) => node(
                format!("identity:{id}"),
                identity_label(*id, ep),
                NodeKind::Identity,
                &ep.namespace,
                ("identity", id.to_string()),
            ),
            Ref::Reserved(id, name) => {
                let kind = match *name {
                    "world" | "world-ipv4" | "world-ipv6" => NodeKind::World,
                    "host" => NodeKind::Host,
                    _ => NodeKind::Reserved,
                };
                node(
                    format!("reserved:{name}"),
                    (*name).to_owned(),
                    kind,
                    "",
                    ("identity", id.to_string()),
                )
            }
            Ref::Service(ns, name) => node(
                format!("service:{ns}/{name}"),
                format!("{ns}/{name} (service)"),
                NodeKind::Service,
                ns,
                ("service", format!("{ns}/{name}")),
            ),
            Ref::Ip(ip) => node(
                format!("ip:{ip}"),
                (*ip).to_owned(),
                NodeKind::Ip,
                "",
                ("ip", (*ip).to_owned()),
            ),
            Ref::Unknown => node(
                "unknown".into(),
                "unknown".into(),
                NodeKind::Unknown,
                "",
                ("identity", "0".into()),
            ),
        }
    }
}

/// `1002 app=deathstar`: the identity and its first label that is not the
/// namespace or Cilium's own.
fn identity_label(id: u32, ep: &Endpoint) -> String {
    let label = ep
        .labels
        .iter()
        .map(|l| l.split_once(':').map_or(l.as_str(), |(_, rest)| rest))
        .find(|l| !l.starts_with("io.kubernetes.pod.namespace=") && !l.starts_with("io.cilium."));
    match label {
        Some(l) => format!("{id} {l}"),
        None => id.to_string(),
    }
}

/// The L4 protocol's name and source and destination ports.
fn l4(f: &Flow) -> (&'static str, u32, u32) {
    use proto::flow::layer4::Protocol;
    match f.l4.as_ref().and_then(|l| l.protocol.as_ref()) {
        Some(Protocol::Tcp(t)) => ("TCP", t.source_port, t.destination_port),
        Some(Protocol::Udp(u)) => ("UDP", u.source_port, u.destination_port),
        Some(Protocol::Sctp(s)) => ("SCTP", s.source_port, s.destination_port),
        Some(Protocol::IcmPv4(_)) => ("ICMPv4", 0, 0),
        Some(Protocol::IcmPv6(_)) => ("ICMPv6", 0, 0),
        _ => ("", 0, 0),
    }
}

fn port_text((proto, port): (&'static str, u32)) -> String {
    if port == 0 {
        proto.to_owned()
    } else {
        format!("{port}/{proto}")
    }
}

impl ServiceMap {
    /// An empty map grouped by `grouping`.
    pub fn new(grouping: Grouping) -> Self {
        ServiceMap {
            grouping,
            nodes: FxHashMap::default(),
            edges: FxHashMap::default(),
            flows: 0,
            overflow: 0,
            lost: 0,
        }
    }

    /// Its grouping.
    pub fn grouping(&self) -> Grouping {
        self.grouping
    }

    /// Flows counted.
    pub fn flows(&self) -> u64 {
        self.flows
    }

    /// Counts one response: a flow joins its edge, lost events are summed,
    /// anything else is ignored.
    pub fn add_response(&mut self, res: &GetFlowsResponse) {
        match &res.response_types {
            Some(ResponseTypes::Flow(f)) => self.add(f),
            Some(ResponseTypes::LostEvents(l)) => self.lost += l.num_events_lost,
            _ => {}
        }
    }

    /// Counts one flow.
    pub fn add(&mut self, f: &Flow) {
        self.flows += 1;
        let empty = Endpoint::default();
        let src = f.source.as_ref().unwrap_or(&empty);
        let dst = f.destination.as_ref().unwrap_or(&empty);
        let sip = f.ip.as_ref().map_or("", |i| i.source.as_str());
        let dip = f.ip.as_ref().map_or("", |i| i.destination.as_str());
        let (proto, sport, dport) = l4(f);
        let reply = f.is_reply.as_ref().is_some_and(|b| b.value);
        let (a, b, port, service) = if reply {
            (
                classify(self.grouping, dst, dip),
                classify_server(self.grouping, src, sip, f.source_service.as_ref()),
                sport,
                f.source_service.as_ref(),
            )
        } else {
            (
                classify(self.grouping, src, sip),
                classify_server(self.grouping, dst, dip, f.destination_service.as_ref()),
                dport,
                f.destination_service.as_ref(),
            )
        };
        let (ka, kb) = (a.key(), b.key());
        if !self.edges.contains_key(&(ka, kb)) {
            if self.edges.len() >= defaults::MAP_EDGES_MAX {
                self.overflow += 1;
                return;
            }
            for (k, r) in [(ka, &a), (kb, &b)] {
                self.nodes.entry(k).or_insert_with(|| r.node());
            }
            self.edges.insert(
                (ka, kb),
                EdgeAcc {
                    source: ka,
                    target: kb,
                    forwarded: 0,
                    dropped: 0,
                    other: 0,
                    ports: Vec::new(),
                    services: Vec::new(),
                },
            );
        }
        let Some(e) = self.edges.get_mut(&(ka, kb)) else {
            return;
        };
        match Verdict::try_from(f.verdict) {
            Ok(Verdict::Forwarded) => e.forwarded += 1,
            Ok(Verdict::Dropped) => e.dropped += 1,
            _ => e.other += 1,
        }
        let p = (proto, port);
        if !proto.is_empty()
            && e.ports.len() < defaults::MAP_EDGE_PORTS_MAX
            && !e.ports.contains(&p)
        {
            e.ports.push(p);
        }
        if let Some(s) = service.filter(|s| !s.name.is_empty())
            && e.services.len() < defaults::MAP_EDGE_PORTS_MAX
            && !e
                .services
                .iter()
                .any(|(ns, n)| *ns == s.namespace && *n == s.name)
        {
            e.services.push((s.namespace.clone(), s.name.clone()));
        }
    }

    /// The graph so far.
    pub fn graph(&self) -> Graph {
        let id = |k: &u64| self.nodes.get(k).map_or_else(String::new, |n| n.id.clone());
        let mut nodes: Vec<Node> = self.nodes.values().cloned().collect();
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        let mut edges: Vec<Edge> = self
            .edges
            .values()
            .map(|e| Edge {
                source: id(&e.source),
                target: id(&e.target),
                forwarded: e.forwarded,
                dropped: e.dropped,
                other: e.other,
                total: e.forwarded + e.dropped + e.other,
                ports: e.ports.iter().copied().map(port_text).collect(),
                services: e
                    .services
                    .iter()
                    .map(|(ns, n)| {
                        if ns.is_empty() {
                            n.clone()
                        } else {
                            format!("{ns}/{n}")
                        }
                    })
                    .collect(),
            })
            .collect();
        edges.sort_by(|a, b| {
            b.total
                .cmp(&a.total)
                .then_with(|| b.dropped.cmp(&a.dropped))
                .then_with(|| a.source.cmp(&b.source))
                .then_with(|| a.target.cmp(&b.target))
        });
        Graph {
            grouping: self.grouping,
            flows: self.flows,
            overflow: self.overflow,
            nodes,
            edges,
        }
    }
}

/// Escapes a DOT double-quoted string.
fn dot_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Escapes a Mermaid quoted label (entity codes for what ends or breaks
/// it).
fn mermaid_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A colour per tone, for DOT and Mermaid (the TUI's: green, red, yellow,
/// gray).
fn tone_color(t: Tone) -> &'static str {
    match t {
        Tone::Forwarded => "#2ca02c",
        Tone::Dropped => "#d62728",
        Tone::Mixed => "#ff7f0e",
        Tone::Other => "#7f7f7f",
    }
}

impl Graph {
    /// The node with id `id`.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes
            .binary_search_by(|n| n.id.as_str().cmp(id))
            .ok()
            .map(|i| &self.nodes[i])
    }

    /// The neighbourhood of node `id`: its edges (both ways) and the nodes
    /// they touch.
    pub fn focus(&self, id: &str) -> Graph {
        let edges: Vec<Edge> = self
            .edges
            .iter()
            .filter(|e| e.source == id || e.target == id)
            .cloned()
            .collect();
        let nodes = self
            .nodes
            .iter()
            .filter(|n| n.id == id || edges.iter().any(|e| e.source == n.id || e.target == n.id))
            .cloned()
            .collect();
        Graph {
            nodes,
            edges,
            ..self.clone()
        }
    }

    /// The label of node `id` (the id itself if unknown).
    pub fn label<'a>(&'a self, id: &'a str) -> &'a str {
        self.node(id).map_or(id, |n| n.label.as_str())
    }

    /// The filter line (words, unquoted) selecting the flows of `edge`
    /// from its source to its target.
    pub fn edge_filter(&self, edge: &Edge) -> Vec<String> {
        let mut words = Vec::new();
        if let Some(n) = self.node(&edge.source) {
            words.extend(n.filter_flags("from"));
        }
        if let Some(n) = self.node(&edge.target) {
            words.extend(n.filter_flags("to"));
        }
        words
    }

    /// The default text: one line per edge, largest first (SOURCE,
    /// DESTINATION, FLOWS, FORWARDED, DROPPED, OTHER, PORTS, SERVICES,
    /// aligned as `-o table` is), then a summary line. At most `top` edges
    /// (0: all).
    pub fn write_text(&self, out: &mut dyn Write, top: usize) -> io::Result<()> {
        let clean = |s: &str| crate::printer::escape_terminal(s, false).into_owned();
        let mut tw = TabWriter::new(2, 3);
        tw.write_str("SOURCE\tDESTINATION\tFLOWS\tFORWARDED\tDROPPED\tOTHER\tPORTS\tSERVICES\n");
        let n = if top == 0 { self.edges.len() } else { top };
        for e in self.edges.iter().take(n) {
            tw.write_str(&format!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                clean(self.label(&e.source)),
                clean(self.label(&e.target)),
                e.total,
                e.forwarded,
                e.dropped,
                e.other,
                clean(&e.ports.join(",")),
                clean(&e.services.join(",")),
            ));
        }
        for line in tw.flush().lines() {
            writeln!(out, "{}", line.trim_end())?;
        }
        let shown = n.min(self.edges.len());
        let mut summary = format!(
            "\n{} flows, {} nodes, {} edges by {}",
            self.flows,
            self.nodes.len(),
            self.edges.len(),
            self.grouping.name()
        );
        if shown < self.edges.len() {
            let _ = write!(summary, " ({shown} shown)");
        }
        if self.overflow > 0 {
            let _ = write!(
                summary,
                "; {} flows between further pairs not mapped",
                self.overflow
            );
        }
        writeln!(out, "{summary}")
    }

    /// Graphviz DOT: a left-to-right digraph, workloads as boxes, peers
    /// (world, host, IPs, …) as ellipses, edges labelled with their counts,
    /// ports and services and coloured by verdict (green forwarded, red
    /// dropped, orange both, gray other), thicker with more flows.
    pub fn to_dot(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "digraph \"service map\" {{");
        let _ = writeln!(s, "  rankdir=LR;");
        let _ = writeln!(
            s,
            "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#f5f5f5\", fontname=\"Helvetica\"];"
        );
        let _ = writeln!(s, "  edge [fontname=\"Helvetica\", fontsize=10];");
        for n in &self.nodes {
            let shape = if n.kind == NodeKind::Service {
                ", shape=hexagon"
            } else if n.kind.is_peer() {
                ", shape=ellipse"
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "  {} [label={}, kind={}{shape}];",
                dot_quote(&n.id),
                dot_quote(&n.label),
                dot_quote(n.kind.name())
            );
        }
        for e in &self.edges {
            let mut label = e.counts_text();
            for extra in [e.ports.join(","), e.services.join(",")] {
                if !extra.is_empty() {
                    label.push_str("\\n");
                    label.push_str(&extra.replace(['"', '\\'], ""));
                }
            }
            let width = 1.0 + (e.total as f64).log10().max(0.0);
            let color = tone_color(e.tone());
            let _ = writeln!(
                s,
                "  {} -> {} [label=\"{}\", color=\"{color}\", fontcolor=\"{color}\", penwidth={width:.1}];",
                dot_quote(&e.source),
                dot_quote(&e.target),
                label.replace('"', "")
            );
        }
        s.push_str("}\n");
        s
    }

    /// Mermaid: a left-to-right flowchart, nodes `n0`, `n1`, … (in id
    /// order; workloads as boxes, peers as rounded), one link per edge
    /// labelled with its counts and ports, then a `linkStyle` per edge with
    /// its colour.
    pub fn to_mermaid(&self) -> String {
        let mut s = String::from("flowchart LR\n");
        let idx = |id: &str| self.nodes.iter().position(|n| n.id == id).unwrap_or(0);
        for (i, n) in self.nodes.iter().enumerate() {
            let label = mermaid_quote(&n.label);
            if n.kind == NodeKind::Service {
                let _ = writeln!(s, "    n{i}{{{{{label}}}}}");
            } else if n.kind.is_peer() {
                let _ = writeln!(s, "    n{i}({label})");
            } else {
                let _ = writeln!(s, "    n{i}[{label}]");
            }
        }
        for e in &self.edges {
            let mut label = e.counts_text();
            if !e.ports.is_empty() {
                label.push_str(" · ");
                label.push_str(&e.ports.join(","));
            }
            if !e.services.is_empty() {
                label.push_str(" via ");
                label.push_str(&e.services.join(","));
            }
            let _ = writeln!(
                s,
                "    n{} -->|{}| n{}",
                idx(&e.source),
                mermaid_quote(&label),
                idx(&e.target)
            );
        }
        for (i, e) in self.edges.iter().enumerate() {
            let _ = writeln!(
                s,
                "    linkStyle {i} stroke:{},color:{}",
                tone_color(e.tone()),
                tone_color(e.tone())
            );
        }
        s
    }

    /// JSON (one document, indented): `grouping`, `flows`, `overflow`,
    /// `nodes` (`id`, `label`, `kind`, `namespace`) and `edges` (`source`,
    /// `target` as node ids, `forwarded`, `dropped`, `other`, `total`,
    /// `ports`, `services`).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests;

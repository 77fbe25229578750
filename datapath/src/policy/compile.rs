//! Compilation: policies + local endpoints + identities → per-endpoint map
//! entries and enforcement flags, and the minimal diff against the map.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::kernel::maps::{Direction, PolicyAction, PolicyEntry, identity as reserved};
use crate::policy::cidr::Cidr;
use crate::policy::identity::{self, IdentityAllocator, LabelSet, Scope};

use super::model::{Entity, NamedPort, PeerRule, Policy};

/// A local endpoint as the compiler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalEndpoint {
    /// Endpoint id.
    pub ep_id: u16,
    /// Its identity (labels come from the allocator).
    pub identity: u32,
}

/// Whether an endpoint is default-deny in each direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enforcement {
    /// Ingress is default-deny.
    pub ingress: bool,
    /// Egress is default-deny.
    pub egress: bool,
}

/// The compiled policy of a node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compiled {
    /// Every entry of every local endpoint, sorted by key.
    pub entries: Vec<PolicyEntry>,
    /// Enforcement per local endpoint id (every endpoint is listed).
    pub enforce: BTreeMap<u16, Enforcement>,
    /// Rule origin (the `rule` of an entry, 0 excepted) → the cookies of
    /// every policy that produced entries carrying it, sorted. One policy's
    /// origin is its own cookie; several policies selecting the same entry
    /// share an origin derived from their cookies ([`origin_of`]), so every
    /// node compiling the same policies gets the same origins.
    pub origins: BTreeMap<u32, Vec<u32>>,
}

/// The rule origin of the policies with `cookies`: 0 for none, the cookie
/// itself for one, else FNV-1a over the sorted cookies (never 0).
pub fn origin_of(cookies: &BTreeSet<u32>) -> u32 {
    match cookies.len() {
        0 => 0,
        1 => *cookies.iter().next().unwrap_or(&0),
        _ => {
            let h = cookies
                .iter()
                .flat_map(|c| c.to_le_bytes())
                .fold(0x811c_9dc5u32, |h, b| {
                    (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
                });
            h.max(1)
        }
    }
}

/// Every prefix the policies mention (CIDRs and their exceptions): each
/// needs an ipcache entry with its own CIDR identity.
pub fn cidr_prefixes(policies: &[Policy]) -> BTreeSet<Cidr> {
    let mut out = BTreeSet::new();
    for p in policies {
        for r in &p.rules {
            for list in [&r.ingress, &r.ingress_deny, &r.egress, &r.egress_deny]
                .into_iter()
                .flatten()
            {
                for pr in list {
                    for c in pr.cidrs.iter().flatten() {
                        out.insert(c.cidr);
                        out.extend(c.except.iter().copied());
                    }
                }
            }
        }
    }
    out
}

/// Allocates (or finds) the CIDR identity of every prefix the policies use.
pub fn allocate_cidr_identities(
    policies: &[Policy],
    ids: &mut IdentityAllocator,
) -> BTreeMap<Cidr, u32> {
    cidr_prefixes(policies)
        .into_iter()
        .map(|c| (c, ids.allocate(&identity::cidr_labels(&c.to_string()))))
        .collect()
}

/// What peer identities a rule's peers resolve to; `0` means any peer.
struct Universe<'a> {
    /// Every known identity with labels, reserved ones included.
    all: Vec<(u32, LabelSet)>,
    cidr_ids: &'a BTreeMap<Cidr, u32>,
}

impl Universe<'_> {
    fn peers(&self, pr: &PeerRule) -> BTreeSet<u32> {
        if !pr.has_peers() {
            return BTreeSet::from([0]);
        }
        let mut out = BTreeSet::new();
        for sel in pr.endpoints.iter().flatten() {
            let reserved_ok = sel.names_source("reserved");
            for (id, labels) in &self.all {
                let ok = match identity::scope(*id) {
                    Scope::Cluster => true,
                    Scope::Reserved => reserved_ok,
                    Scope::Cidr | Scope::Unknown => false,
                };
                if ok && sel.matches(labels) {
                    out.insert(*id);
                }
            }
        }
        for set in pr.cidrs.iter().flatten() {
            for (c, id) in self.cidr_ids {
                if set.cidr.covers(c) && !set.except.iter().any(|e| e.covers(c)) {
                    out.insert(*id);
                }
            }
        }
        let worlds = [reserved::WORLD, reserved::WORLD_IPV4, reserved::WORLD_IPV6];
        for e in pr.entities.iter().flatten() {
            match e {
                Entity::All => {
                    out.insert(0);
                }
                // Cilium's `world` selects reserved:world, reserved:world-ipv4
                // and reserved:world-ipv6 (2, 9, 10) and the CIDR identities
                // (they carry reserved:world).
                Entity::World => {
                    out.extend(worlds);
                    out.extend(self.cidr_ids.values().copied());
                }
                // Cilium's `world-ipv4` selects only reserved:world-ipv4: 9,
                // which a dual-stack cluster gives IPv4 peers outside it, and
                // its IPv4 CIDR identities. This datapath is IPv4-only and
                // its kernel gives such a peer WORLD (2) or a CIDR identity
                // (as a single-stack Cilium does), so `world-ipv4` selects
                // those too; without 2 it would allow no peer at all.
                Entity::WorldIpv4 => {
                    out.extend([reserved::WORLD, reserved::WORLD_IPV4]);
                    out.extend(self.cidr_ids.values().copied());
                }
                Entity::WorldIpv6 => {
                    out.insert(reserved::WORLD_IPV6);
                }
                // No identity carries `reserved:none`.
                Entity::None => {}
                Entity::Cluster => {
                    out.extend(
                        self.all.iter().map(|(id, _)| *id).filter(|id| {
                            !worlds.contains(id) && identity::scope(*id) != Scope::Cidr
                        }),
                    );
                }
                // Every reserved identity carrying `reserved:<name>`:
                // `remote-node` is 6 and kube-apiserver (7), as in Cilium.
                Entity::Reserved(id) => {
                    let label = identity::reserved_name(*id).map(|n| format!("reserved:{n}"));
                    out.insert(*id);
                    out.extend(
                        self.all
                            .iter()
                            .filter(|(i, labels)| {
                                identity::scope(*i) == Scope::Reserved
                                    && label.as_ref().is_some_and(|l| labels.contains(l))
                            })
                            .map(|(i, _)| *i),
                    );
                }
            }
        }
        if out.contains(&0) {
            return BTreeSet::from([0]);
        }
        out
    }
}

/// Whether the node itself (the host identity, 1) may reach local
/// endpoints that enforce ingress: Cilium's agent option
/// `--allow-localhost`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AllowLocalhost {
    /// Cilium's default: `policy`, except when running with Kubernetes,
    /// where it is `always` (Kubernetes requires the node to reach its
    /// pods, for kubelet probes). This agent is a Kubernetes CNI, so
    /// `auto` is `always`.
    #[default]
    Auto,
    /// An implicit ALLOW of the host identity (any protocol, any port) on
    /// the ingress of every endpoint that enforces ingress. A DENY that
    /// matches the host (e.g. `ingressDeny: [{fromEntities: [host]}]`)
    /// still wins, as in Cilium.
    Always,
    /// No implicit entry: the host reaches an enforcing endpoint only when
    /// a rule allows it (`fromEntities: [host]`).
    Policy,
}

impl AllowLocalhost {
    /// Whether the host gets its implicit allow (`auto` and `always`).
    pub fn always(self) -> bool {
        matches!(self, Self::Auto | Self::Always)
    }

    /// The option's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Always => "always",
            Self::Policy => "policy",
        }
    }
}

impl std::str::FromStr for AllowLocalhost {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "always" => Ok(Self::Always),
            "policy" => Ok(Self::Policy),
            o => Err(format!(
                "unknown allow-localhost mode {o:?} (expected auto, always or policy)"
            )),
        }
    }
}

/// What the compiler adds to the policies' own entries, and what it
/// resolves named ports against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompileOptions {
    /// `--allow-localhost`.
    pub allow_localhost: AllowLocalhost,
    /// The ports each local endpoint declares by name (endpoint id →
    /// ports): an ingress rule's `port: <name>` resolves against the
    /// endpoint the rule selects, as Cilium does.
    pub named_ports: BTreeMap<u16, Vec<NamedPort>>,
    /// Every named port known in the cluster (every endpoint's): an egress
    /// rule's `port: <name>` resolves against these, as Cilium resolves it
    /// against the cluster's named-port map (a name with two numbers for a
    /// protocol resolves to nothing there).
    pub cluster_named_ports: Vec<NamedPort>,
}

/// `(protocol, name)` references → `(protocol, port, 16)` entries of the
/// declared ports that match, per protocol (protocol 0 in a reference is
/// TCP, UDP and SCTP, as Cilium expands `ANY`, so it takes the declared
/// one). A name nobody declares resolves to nothing (the rule allows or
/// denies nothing for it), and so does a name with more than one number
/// for a protocol (Cilium's `ErrDuplicateNamedPorts`, only possible with
/// the cluster's ports of egress rules).
fn resolve_named(refs: &[(u8, String)], declared: &[NamedPort]) -> Vec<(u8, u16, u8)> {
    let mut out = Vec::new();
    for (proto, name) in refs {
        let protos: &[u8] = if *proto == 0 {
            &[6, 17, 132]
        } else {
            &[*proto][..]
        };
        for p in protos {
            let numbers: BTreeSet<u16> = declared
                .iter()
                .filter(|d| &d.name == name && d.protocol == *p)
                .map(|d| d.port)
                .collect();
            if let [port] = numbers.into_iter().collect::<Vec<_>>()[..] {
                out.push((*p, port, 16));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Compiles `policies` for the local `endpoints` with no implicit entries
/// (as `--allow-localhost policy`): exactly what the rules say. `ids` must
/// already hold every identity (including the CIDR identities in
/// `cidr_ids`, see [`allocate_cidr_identities`]).
pub fn compile(
    policies: &[Policy],
    endpoints: &[LocalEndpoint],
    ids: &IdentityAllocator,
    cidr_ids: &BTreeMap<Cidr, u32>,
) -> Compiled {
    let opts = CompileOptions {
        allow_localhost: AllowLocalhost::Policy,
        ..CompileOptions::default()
    };
    compile_with(policies, endpoints, ids, cidr_ids, &opts)
}

/// [`compile`] with the agent's options (the implicit host allow of
/// `--allow-localhost`).
pub fn compile_with(
    policies: &[Policy],
    endpoints: &[LocalEndpoint],
    ids: &IdentityAllocator,
    cidr_ids: &BTreeMap<Cidr, u32>,
    opts: &CompileOptions,
) -> Compiled {
    let uni = Universe {
        all: ids.all(),
        cidr_ids,
    };
    let mut entries: BTreeMap<EntryKey, (PolicyAction, BTreeSet<u32>)> = BTreeMap::new();
    let mut enforce = BTreeMap::new();
    for ep in endpoints {
        let labels = ids.labels(ep.identity).unwrap_or_default();
        let mut enf = Enforcement::default();
        // Per direction: whether a selecting rule with a section for it
        // asks for default-deny, and the cookie of the first that does not.
        let mut default_deny = [false; 2];
        let mut allow_all_cookie: [Option<u32>; 2] = [None; 2];
        for p in policies {
            let cookie = p.cookie();
            for r in p.rules.iter().filter(|r| r.subject.matches(&labels)) {
                let sections = [
                    (Direction::Ingress, PolicyAction::Allow, &r.ingress),
                    (Direction::Ingress, PolicyAction::Deny, &r.ingress_deny),
                    (Direction::Egress, PolicyAction::Allow, &r.egress),
                    (Direction::Egress, PolicyAction::Deny, &r.egress_deny),
                ];
                for (dir, action, section) in sections {
                    let Some(list) = section else { continue };
                    let (d, wants_deny) = match dir {
                        Direction::Ingress => {
                            enf.ingress = true;
                            (0, r.default_deny.ingress)
                        }
                        Direction::Egress => {
                            enf.egress = true;
                            (1, r.default_deny.egress)
                        }
                    };
                    if wants_deny {
                        default_deny[d] = true;
                    } else {
                        allow_all_cookie[d].get_or_insert(cookie);
                    }
                    for pr in list {
                        if !pr.has_peers() && pr.ports.is_none() {
                            continue; // `{}`: selects no traffic
                        }
                        // L3-only: one entry of any protocol and port.
                        let mut l4: Vec<(u8, u16, u8)> = match &pr.ports {
                            None => vec![(0, 0, 0)],
                            Some(ranges) => ranges
                                .iter()
                                .flat_map(|&(proto, first, last)| {
                                    port_prefixes(first, last)
                                        .into_iter()
                                        .map(move |(port, bits)| (proto, port, bits))
                                })
                                .collect(),
                        };
                        if !pr.named_ports.is_empty() {
                            let declared = match dir {
                                Direction::Ingress => {
                                    opts.named_ports.get(&ep.ep_id).map_or(&[][..], |v| v)
                                }
                                Direction::Egress => &opts.cluster_named_ports[..],
                            };
                            l4.extend(resolve_named(&pr.named_ports, declared));
                        }
                        for peer in uni.peers(pr) {
                            for &(proto, port, bits) in &l4 {
                                let key = (ep.ep_id, dir as u8, peer, proto, port, bits);
                                match entries.get_mut(&key) {
                                    // The same decision from another rule:
                                    // one more origin of the entry.
                                    Some((have, cookies)) if *have == action => {
                                        cookies.insert(cookie);
                                    }
                                    Some((PolicyAction::Deny, _)) => {}
                                    Some(_) if action != PolicyAction::Deny => {}
                                    _ => {
                                        entries.insert(key, (action, BTreeSet::from([cookie])));
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        // Cilium (`computePolicyEnforcementAndRules`): a direction selected
        // only by rules with `enableDefaultDeny: false` keeps its policy
        // (deny entries still apply) plus a wildcard allow, so traffic no
        // deny matches passes; one default-deny rule is enough to drop it.
        for (d, dir) in [(0, Direction::Ingress), (1, Direction::Egress)] {
            if let (false, Some(cookie)) = (default_deny[d], allow_all_cookie[d]) {
                entries
                    .entry((ep.ep_id, dir as u8, 0, 0, 0, 0))
                    .or_insert((PolicyAction::Allow, BTreeSet::from([cookie])));
            }
        }
        // Cilium's `--allow-localhost=always`: the node reaches its pods
        // (an L3 allow of the host identity, no rule cookie); a deny of the
        // host still wins (deny precedence below, or the same key's DENY).
        if enf.ingress && opts.allow_localhost.always() {
            entries
                .entry((ep.ep_id, Direction::Ingress as u8, reserved::HOST, 0, 0, 0))
                .or_insert((PolicyAction::Allow, BTreeSet::new()));
        }
        enforce.insert(ep.ep_id, enf);
    }
    let mut origins = BTreeMap::new();
    let mut entries: Vec<PolicyEntry> = entries
        .into_iter()
        .map(
            |((ep_id, dir, identity, proto, port, port_prefix), (action, cookies))| PolicyEntry {
                ep_id,
                direction: if dir == Direction::Ingress as u8 {
                    Direction::Ingress
                } else {
                    Direction::Egress
                },
                identity,
                proto,
                port,
                port_prefix,
                action,
                rule: {
                    let o = origin_of(&cookies);
                    if o != 0 {
                        origins.insert(o, cookies.into_iter().collect());
                    }
                    o
                },
            },
        )
        .collect();
    resolve_deny_precedence(&mut entries);
    Compiled {
        entries,
        enforce,
        origins,
    }
}

/// `(ep_id, direction, identity, proto, port, port_prefix)`: the order of
/// [`PolicyEntry::sort_key`].
type EntryKey = (u16, u8, u32, u8, u16, u8);

/// The port range `first..=last` as the fewest aligned prefixes
/// `(port, leading bits)`: `0..=65535` is `[(0, 0)]`, `80..=80` is
/// `[(80, 16)]`, `8000..=8002` is `[(8000, 15), (8002, 16)]`.
pub fn port_prefixes(first: u16, last: u16) -> Vec<(u16, u8)> {
    let mut out = Vec::new();
    let (mut lo, hi) = (u32::from(first), u32::from(last));
    while lo <= hi {
        // The widest block starting at `lo` that is aligned and fits.
        let mut size = if lo == 0 {
            1 << 16
        } else {
            1 << lo.trailing_zeros()
        };
        while lo + size - 1 > hi {
            size >>= 1;
        }
        out.push((lo as u16, 16 - size.trailing_zeros() as u8));
        lo += size;
    }
    out
}

/// Cilium's deny precedence, resolved here so that the datapath's
/// longest-prefix lookup gives the answer: an ALLOW (or AUDIT) entry that
/// lies inside a DENY entry of the same endpoint, direction and identity
/// becomes a DENY carrying the cookie of the most specific such deny.
/// Then whenever a packet matches some deny of an identity, the longest
/// entry it matches for that identity is a deny. (A deny of the other
/// lookup, identity 0 or the peer's, is seen by the datapath's second
/// lookup and wins there.)
fn resolve_deny_precedence(entries: &mut [PolicyEntry]) {
    let denies: Vec<PolicyEntry> = entries
        .iter()
        .filter(|e| e.action == PolicyAction::Deny)
        .copied()
        .collect();
    for e in entries
        .iter_mut()
        .filter(|e| e.action != PolicyAction::Deny)
    {
        let covering = denies
            .iter()
            .filter(|d| {
                (d.ep_id, d.direction, d.identity) == (e.ep_id, e.direction, e.identity)
                    && covers(d, e)
            })
            .max_by_key(|d| (d.proto != 0, d.port_prefix));
        if let Some(d) = covering {
            e.action = PolicyAction::Deny;
            e.rule = d.rule;
        }
    }
}

/// Whether every packet `inner` matches also matches `outer` (same
/// endpoint, direction and identity assumed).
fn covers(outer: &PolicyEntry, inner: &PolicyEntry) -> bool {
    if outer.proto == 0 {
        return true;
    }
    outer.proto == inner.proto
        && outer.port_prefix <= inner.port_prefix
        && outer.port <= inner.port
        && inner.last_port() <= outer.last_port()
}

/// Writes and removals that turn the map's entries into the desired ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryDiff {
    /// Entries to add or overwrite (new keys, or a changed action/cookie).
    pub upsert: Vec<PolicyEntry>,
    /// Entries whose key is no longer wanted.
    pub remove: Vec<PolicyEntry>,
}

impl EntryDiff {
    /// No change.
    pub fn is_empty(&self) -> bool {
        self.upsert.is_empty() && self.remove.is_empty()
    }
}

fn entry_key(e: &PolicyEntry) -> EntryKey {
    e.sort_key()
}

/// The minimal change from `current` (what the map holds) to `desired`.
pub fn diff_entries(current: &[PolicyEntry], desired: &[PolicyEntry]) -> EntryDiff {
    let have: BTreeMap<_, _> = current.iter().map(|e| (entry_key(e), e)).collect();
    let want: BTreeMap<_, _> = desired.iter().map(|e| (entry_key(e), e)).collect();
    EntryDiff {
        upsert: want
            .iter()
            .filter(|(k, e)| have.get(k) != Some(e))
            .map(|(_, e)| **e)
            .collect(),
        remove: have
            .iter()
            .filter(|(k, _)| !want.contains_key(k))
            .map(|(_, e)| **e)
            .collect(),
    }
}

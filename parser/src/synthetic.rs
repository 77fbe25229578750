//! A deterministic generator of realistic datapath events (ABI-encoded, as the
//! kernel programs write them), for demos without a datapath, tests and
//! benchmarks.
//!
//! The cluster is Cilium's Star Wars demo on one node: `deathstar` (two
//! replicas, org=empire), `tiefighter` (org=empire), `xwing` (org=alliance)
//! in `default`, and `coredns` in `kube-system`; [`Synthetic::enrichment`]
//! describes them. Traffic, interleaved across several conversations:
//!
//! - TCP connections to deathstar:80 over IPv4 and IPv6 (SYN, SYN-ACK, ACK,
//!   data, FIN, seen from-endpoint at the client and to-endpoint at the
//!   server), with an ingress policy verdict for each new connection; the
//!   IPv4 ones go through the `deathstar` service, so each starts with the
//!   datapath's two trace-sock records (the VIP, then the chosen replica);
//! - DNS over UDP to coredns:53;
//! - ICMP echo between pods and ICMPv6 echo;
//! - HTTPS to a world address (`reserved:world`);
//! - xwing → deathstar:80 denied by policy (drop 133, with retransmits), and
//!   xwing → deathstar:443 hitting an explicit deny rule (drop 181); about
//!   5 % of all events are drops.
//!
//! The same seed always yields the same events.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ebpf::{
    DropEvent, EventHdr, PolicyVerdictEvent, TraceEvent, TraceSockEvent, ct_state, direction,
    drop_reason, msg_type, policy_match, sock_l4, trace_point, xlate_point,
};
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};

use crate::defaults::{SYNTHETIC_CONCURRENT_CONVERSATIONS, SYNTHETIC_KTIME_START_NS};
use crate::enrich::{
    EndpointInfo, EnrichmentSpec, PolicyInfo, ServiceInfo, StaticEnrichment, WorkloadInfo,
};
use crate::packet::{L4, Packet, tcp_flags as f};

/// Node name of the synthetic node.
pub const NODE_NAME: &str = "kind-worker";
/// MAC of the node side of every pod's veth.
const NODE_MAC: [u8; 6] = [0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x01];
/// ifindex of the node's uplink.
const UPLINK_IFINDEX: u32 = 2;
/// ClusterIP of the `deathstar` service (port 80).
const DEATHSTAR_VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 161, 20);
/// Rule origin of the allowed verdicts (policy `default/rule1`).
const ALLOW_ORIGIN: u32 = 0x5157_0001;
/// Rule origin of the explicit denies (policy `default/deny-xwing-443`).
const DENY_ORIGIN: u32 = 0x5157_0002;

/// One side of a conversation.
#[derive(Debug, Clone)]
struct Peer {
    /// Endpoint id, 0 for a remote peer.
    ep: u16,
    identity: u32,
    ip4: Ipv4Addr,
    ip6: Ipv6Addr,
    mac: [u8; 6],
    ifindex: u32,
    info: Option<EndpointInfo>,
}

impl Peer {
    fn local(&self) -> bool {
        self.ep != 0
    }
    fn ip(&self, v6: bool) -> IpAddr {
        if v6 { self.ip6.into() } else { self.ip4.into() }
    }
}

const DEATHSTAR_1: usize = 0;
const DEATHSTAR_2: usize = 1;
const TIEFIGHTER: usize = 2;
const XWING: usize = 3;
const COREDNS: usize = 4;
const WORLD: usize = 5;

fn labels(ns: &str, sa: &str, extra: &[&str]) -> Vec<String> {
    let mut l: Vec<String> = extra.iter().map(|s| format!("k8s:{s}")).collect();
    l.push("k8s:io.cilium.k8s.policy.cluster=default".into());
    l.push(format!("k8s:io.cilium.k8s.policy.serviceaccount={sa}"));
    l.push(format!("k8s:io.kubernetes.pod.namespace={ns}"));
    l.push(format!(
        "k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name={ns}"
    ));
    l.sort();
    l
}

fn peers() -> Vec<Peer> {
    let pod = |i: u8,
               ep: u16,
               identity: u32,
               ns: &str,
               name: &str,
               sa: &str,
               extra: &[&str],
               workload: Option<&str>| {
        let ip4 = Ipv4Addr::new(10, 244, 1, i);
        let ip6 = Ipv6Addr::new(0xfd00, 0x10, 0x244, 1, 0, 0, 0, u16::from(i));
        Peer {
            ep,
            identity,
            ip4,
            ip6,
            mac: [0x5e, 0x00, 0x53, 0x00, 0x01, i],
            ifindex: 10 + u32::from(i),
            info: Some(EndpointInfo {
                id: ep.into(),
                ips: vec![ip4.into(), ip6.into()],
                namespace: ns.into(),
                pod_name: name.into(),
                labels: labels(ns, sa, extra),
                workloads: workload
                    .map(|w| WorkloadInfo {
                        name: w.into(),
                        kind: "Deployment".into(),
                    })
                    .into_iter()
                    .collect(),
                identity,
                cluster: String::new(),
            }),
        }
    };
    let deathstar = [
        "app.kubernetes.io/name=deathstar",
        "class=deathstar",
        "org=empire",
    ];
    vec![
        pod(
            5,
            1201,
            15153,
            "default",
            "deathstar-6fb5694d48-5hmds",
            "default",
            &deathstar,
            Some("deathstar"),
        ),
        pod(
            6,
            1202,
            15153,
            "default",
            "deathstar-6fb5694d48-nhmk2",
            "default",
            &deathstar,
            Some("deathstar"),
        ),
        pod(
            7,
            1303,
            38261,
            "default",
            "tiefighter",
            "default",
            &[
                "app.kubernetes.io/name=tiefighter",
                "class=tiefighter",
                "org=empire",
            ],
            None,
        ),
        pod(
            8,
            1404,
            54021,
            "default",
            "xwing",
            "default",
            &[
                "app.kubernetes.io/name=xwing",
                "class=xwing",
                "org=alliance",
            ],
            None,
        ),
        pod(
            9,
            421,
            21097,
            "kube-system",
            "coredns-5d78c9869d-9xwqz",
            "coredns",
            &["k8s-app=kube-dns"],
            Some("coredns"),
        ),
        Peer {
            ep: 0,
            identity: 2,
            ip4: Ipv4Addr::new(93, 184, 215, 14),
            ip6: Ipv6Addr::new(
                0x2606, 0x2800, 0x21f, 0xcb07, 0x6820, 0x80da, 0xaf6b, 0x8b2c,
            ),
            mac: NODE_MAC,
            ifindex: UPLINK_IFINDEX,
            info: None,
        },
    ]
}

/// An event waiting to be emitted; its `ktime_ns` is set on emission.
#[derive(Debug)]
enum Kind {
    Trace(TraceEvent),
    Drop(DropEvent),
    Verdict(PolicyVerdictEvent),
    Sock(TraceSockEvent),
}

#[derive(Debug)]
struct Pending {
    kind: Kind,
    packet: Vec<u8>,
}

/// The generator. See the module docs.
#[derive(Debug)]
pub struct Synthetic {
    rng: SmallRng,
    peers: Vec<Peer>,
    ktime_ns: u64,
    conversations: Vec<VecDeque<Pending>>,
}

impl Synthetic {
    /// A generator whose output depends only on `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: SmallRng::seed_from_u64(seed),
            peers: peers(),
            ktime_ns: SYNTHETIC_KTIME_START_NS,
            conversations: Vec::new(),
        }
    }

    /// The node name matching [`Self::enrichment`].
    pub fn node_name(&self) -> &'static str {
        NODE_NAME
    }

    /// `ktime_ns` of the next event.
    pub fn ktime_ns(&self) -> u64 {
        self.ktime_ns
    }

    /// The endpoints, identities, services, names and interfaces the
    /// generated events refer to.
    pub fn enrichment(&self) -> StaticEnrichment {
        let mut spec = EnrichmentSpec {
            node_name: NODE_NAME.into(),
            cluster: "default".into(),
            ..EnrichmentSpec::default()
        };
        for p in &self.peers {
            if let Some(info) = &p.info {
                spec.endpoints.push(info.clone());
                spec.identities.insert(p.identity, info.labels.clone());
                spec.interfaces.insert(
                    p.ifindex,
                    format!("lxc{:04x}{:04x}", p.ep, p.identity & 0xffff),
                );
            }
        }
        spec.interfaces.insert(UPLINK_IFINDEX, "eth0".into());
        spec.services = vec![
            ServiceInfo {
                name: "deathstar".into(),
                namespace: "default".into(),
                ips: vec![DEATHSTAR_VIP.into()],
                ports: vec![80],
            },
            ServiceInfo {
                name: "kube-dns".into(),
                namespace: "kube-system".into(),
                ips: vec![Ipv4Addr::new(10, 96, 0, 10).into()],
                ports: vec![53],
            },
        ];
        let policy = |name: &str| PolicyInfo {
            name: name.into(),
            namespace: "default".into(),
            kind: "CiliumNetworkPolicy".into(),
            labels: vec![
                "k8s:io.cilium.k8s.policy.derived-from=CiliumNetworkPolicy".into(),
                format!("k8s:io.cilium.k8s.policy.name={name}"),
                "k8s:io.cilium.k8s.policy.namespace=default".into(),
            ],
            revision: 1,
        };
        spec.policies.insert(ALLOW_ORIGIN, vec![policy("rule1")]);
        spec.policies
            .insert(DENY_ORIGIN, vec![policy("deny-xwing-443")]);
        let world = &self.peers[WORLD];
        for ip in [IpAddr::from(world.ip4), IpAddr::from(world.ip6)] {
            spec.names.insert(ip, vec!["example.com".into()]);
        }
        // The spec is built from fixed, consistent data.
        StaticEnrichment::new(spec).unwrap_or_default()
    }

    /// Clears `out` and writes the next event record into it.
    pub fn next_event(&mut self, out: &mut Vec<u8>) {
        out.clear();
        while self.conversations.len() < SYNTHETIC_CONCURRENT_CONVERSATIONS {
            let c = self.new_conversation();
            self.conversations.push(c);
        }
        let i = self.rng.random_range(0..self.conversations.len());
        let Some(mut p) = self.conversations[i].pop_front() else {
            // Conversations are never empty here; start a fresh one.
            self.conversations.swap_remove(i);
            return self.next_event(out);
        };
        if self.conversations[i].is_empty() {
            self.conversations.swap_remove(i);
        }
        self.ktime_ns += self.rng.random_range(20_000..400_000);
        match &mut p.kind {
            Kind::Trace(t) => {
                t.hdr.ktime_ns = self.ktime_ns;
                t.encode(&p.packet, out);
            }
            Kind::Drop(d) => {
                d.hdr.ktime_ns = self.ktime_ns;
                d.encode(&p.packet, out);
            }
            Kind::Verdict(v) => {
                v.hdr.ktime_ns = self.ktime_ns;
                v.encode(&p.packet, out);
            }
            Kind::Sock(s) => {
                s.hdr.ktime_ns = self.ktime_ns;
                s.encode(out);
            }
        }
    }

    fn new_conversation(&mut self) -> VecDeque<Pending> {
        let mut c = Conv {
            events: VecDeque::new(),
            rng: &mut self.rng,
            peers: &self.peers,
        };
        let deathstar = if c.rng.random_bool(0.5) {
            DEATHSTAR_1
        } else {
            DEATHSTAR_2
        };
        match c.rng.random_range(0..100u32) {
            0..40 => {
                c.service_translation(TIEFIGHTER, deathstar, 80);
                c.tcp(TIEFIGHTER, deathstar, 80, false);
            }
            40..48 => c.tcp(TIEFIGHTER, deathstar, 80, true),
            48..68 => {
                let client =
                    [TIEFIGHTER, XWING, DEATHSTAR_1, DEATHSTAR_2][c.rng.random_range(0..4)];
                c.dns(client);
            }
            68..75 => c.icmp_echo(TIEFIGHTER, deathstar, false),
            75..78 => c.icmp_echo(XWING, TIEFIGHTER, true),
            78..83 => c.tcp(XWING, WORLD, 443, false),
            83..95 => c.denied(XWING, deathstar, 80, drop_reason::POLICY_DENIED),
            _ => c.denied(XWING, deathstar, 443, drop_reason::POLICY_DENY),
        }
        c.events
    }
}

/// Builds the events of one conversation.
struct Conv<'a> {
    events: VecDeque<Pending>,
    rng: &'a mut SmallRng,
    peers: &'a [Peer],
}

impl Conv<'_> {
    fn hash(&mut self) -> u32 {
        self.rng.random()
    }

    fn push(&mut self, kind: Kind, packet: &[u8]) {
        self.events.push_back(Pending {
            kind,
            packet: packet[..packet.len().min(ebpf::CAPTURE_MAX)].to_vec(),
        });
    }

    fn hdr(ty: u8, sub: u8, source: u16, hash: u32, packet: &[u8]) -> EventHdr {
        EventHdr {
            source,
            hash,
            orig_len: packet.len() as u32,
            ..EventHdr::new(ty, sub)
        }
    }

    /// Traces for one packet from `a` to `b`: from-endpoint at `a` if local,
    /// then to-endpoint at `b` if local, else to-stack.
    fn packet(&mut self, a: usize, b: usize, ct: u8, hash: u32, pkt: &[u8]) {
        let (pa, pb) = (&self.peers[a], &self.peers[b]);
        let (a_local, b_local) = (pa.local(), pb.local());
        let from = TraceEvent {
            hdr: Self::hdr(msg_type::TRACE, trace_point::FROM_LXC, pa.ep, hash, pkt),
            src_label: pa.identity,
            dst_label: pb.identity,
            dst_id: 0,
            reason: ct,
            pad: 0,
            ifindex: pa.ifindex,
        };
        let to = TraceEvent {
            hdr: Self::hdr(msg_type::TRACE, trace_point::TO_LXC, pb.ep, hash, pkt),
            src_label: pa.identity,
            dst_label: pb.identity,
            dst_id: pb.ep,
            reason: ct,
            pad: 0,
            ifindex: pb.ifindex,
        };
        let to_stack = TraceEvent {
            hdr: Self::hdr(msg_type::TRACE, trace_point::TO_STACK, pa.ep, hash, pkt),
            dst_id: 0,
            ifindex: UPLINK_IFINDEX,
            ..from
        };
        if a_local {
            self.push(Kind::Trace(from), pkt);
        }
        if b_local {
            // Delivered to `b`: the node rewrote the MACs (node → pod).
            let mut delivered = pkt.to_vec();
            if delivered.len() >= 12 {
                delivered[0..6].copy_from_slice(&pb.mac);
                delivered[6..12].copy_from_slice(&NODE_MAC);
            }
            self.push(Kind::Trace(to), &delivered);
        } else {
            self.push(Kind::Trace(to_stack), pkt);
        }
    }

    fn build(&self, a: usize, b: usize, v6: bool, l4: L4, payload: usize) -> Vec<u8> {
        let (pa, pb) = (&self.peers[a], &self.peers[b]);
        let src_mac = if pa.local() { pa.mac } else { NODE_MAC };
        // As the packet leaves `a`: addressed to the node side of the veth.
        // `packet()` rewrites the MACs for the copy delivered to `b`.
        Packet::new(pa.ip(v6), pb.ip(v6), l4)
            .macs(src_mac, NODE_MAC)
            .payload(payload)
            .build()
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one field per policy_verdict_event member"
    )]
    fn verdict(
        &mut self,
        local: usize,
        remote: usize,
        dir: u8,
        verdict: i32,
        port: u16,
        proto: u8,
        match_type: u8,
        pkt: &[u8],
    ) {
        let (pl, pr) = (&self.peers[local], &self.peers[remote]);
        let hash = self.hash();
        // Allowed connections are rule1's, explicit denies deny-xwing-443's,
        // default denies nobody's (see the enrichment's `policies`).
        let rule = match verdict {
            0 => ALLOW_ORIGIN,
            v if v == -i32::from(drop_reason::POLICY_DENY) => DENY_ORIGIN,
            _ => 0,
        };
        let v = PolicyVerdictEvent {
            hdr: Self::hdr(msg_type::POLICY_VERDICT, 0, pl.ep, hash, pkt),
            remote_label: pr.identity,
            local_label: pl.identity,
            verdict,
            dst_port: port,
            proto,
            direction: dir,
            match_type,
            audited: 0,
            reason: ct_state::NEW,
            pad: 0,
            ifindex: pl.ifindex,
            rule,
            pad2: 0,
        };
        self.push(Kind::Verdict(v), pkt);
    }

    /// The datapath's report of a new connection from `client` to the
    /// deathstar service translated to `server` (trace-sock before and after).
    fn service_translation(&mut self, client: usize, server: usize, port: u16) {
        let cookie = self.rng.random::<u64>() | 1;
        let (pc, ps) = (&self.peers[client], &self.peers[server]);
        let base = TraceSockEvent {
            hdr: EventHdr::new(msg_type::TRACE_SOCK, xlate_point::PRE_DIRECTION_FWD),
            src_label: pc.identity,
            src_ip: pc.ip4.octets(),
            dst_ip: DEATHSTAR_VIP.octets(),
            dst_port: 80,
            l4_proto: sock_l4::TCP,
            sock_cookie: cookie,
            ..TraceSockEvent::default()
        };
        let pre = TraceSockEvent {
            hdr: EventHdr {
                source: pc.ep,
                ..base.hdr
            },
            ..base
        };
        let post = TraceSockEvent {
            hdr: EventHdr {
                subtype: xlate_point::POST_DIRECTION_FWD,
                ..pre.hdr
            },
            dst_label: ps.identity,
            dst_ip: ps.ip4.octets(),
            dst_port: port,
            ..pre
        };
        self.push(Kind::Sock(pre), &[]);
        self.push(Kind::Sock(post), &[]);
    }

    fn tcp(&mut self, client: usize, server: usize, port: u16, v6: bool) {
        let sport = self.rng.random_range(32768..61000u16);
        let hash = self.hash();
        let c2s = |flags| L4::Tcp {
            sport,
            dport: port,
            flags,
        };
        let s2c = |flags| L4::Tcp {
            sport: port,
            dport: sport,
            flags,
        };
        let syn = self.build(client, server, v6, c2s(f::SYN), 0);
        if self.peers[server].local() {
            self.verdict(
                server,
                client,
                direction::INGRESS,
                0,
                port,
                6,
                policy_match::L3_L4,
                &syn,
            );
        } else {
            self.verdict(
                client,
                server,
                direction::EGRESS,
                0,
                port,
                6,
                policy_match::L3_ONLY,
                &syn,
            );
        }
        self.packet(client, server, ct_state::NEW, hash, &syn);
        let p = self.build(server, client, v6, s2c(f::SYN | f::ACK), 0);
        self.packet(server, client, ct_state::REPLY, hash, &p);
        let p = self.build(client, server, v6, c2s(f::ACK), 0);
        self.packet(client, server, ct_state::ESTABLISHED, hash, &p);
        for _ in 0..self.rng.random_range(1..3) {
            let p = self.build(client, server, v6, c2s(f::PSH | f::ACK), 120);
            self.packet(client, server, ct_state::ESTABLISHED, hash, &p);
            let p = self.build(server, client, v6, s2c(f::PSH | f::ACK), 400);
            self.packet(server, client, ct_state::REPLY, hash, &p);
        }
        let p = self.build(client, server, v6, c2s(f::FIN | f::ACK), 0);
        self.packet(client, server, ct_state::ESTABLISHED, hash, &p);
        let p = self.build(server, client, v6, s2c(f::FIN | f::ACK), 0);
        self.packet(server, client, ct_state::REPLY, hash, &p);
        let p = self.build(client, server, v6, c2s(f::ACK), 0);
        self.packet(client, server, ct_state::ESTABLISHED, hash, &p);
    }

    fn dns(&mut self, client: usize) {
        let sport = self.rng.random_range(32768..61000u16);
        let hash = self.hash();
        let q = self.build(client, COREDNS, false, L4::Udp { sport, dport: 53 }, 45);
        self.verdict(
            COREDNS,
            client,
            direction::INGRESS,
            0,
            53,
            17,
            policy_match::L4_ONLY,
            &q,
        );
        self.packet(client, COREDNS, ct_state::NEW, hash, &q);
        let r = self.build(
            COREDNS,
            client,
            false,
            L4::Udp {
                sport: 53,
                dport: sport,
            },
            120,
        );
        self.packet(COREDNS, client, ct_state::REPLY, hash, &r);
    }

    fn icmp_echo(&mut self, client: usize, server: usize, v6: bool) {
        let hash = self.hash();
        let (req, rep, proto) = if v6 {
            (
                L4::Icmp6 { ty: 128, code: 0 },
                L4::Icmp6 { ty: 129, code: 0 },
                58,
            )
        } else {
            (
                L4::Icmp4 { ty: 8, code: 0 },
                L4::Icmp4 { ty: 0, code: 0 },
                1,
            )
        };
        let p = self.build(client, server, v6, req, 56);
        self.verdict(
            server,
            client,
            direction::INGRESS,
            0,
            0,
            proto,
            policy_match::L3_ONLY,
            &p,
        );
        self.packet(client, server, ct_state::NEW, hash, &p);
        let p = self.build(server, client, v6, rep, 56);
        self.packet(server, client, ct_state::REPLY, hash, &p);
    }

    /// A connection attempt denied at the server's ingress: the SYN leaves
    /// the client, is dropped at the server, and is retransmitted.
    fn denied(&mut self, client: usize, server: usize, port: u16, reason: u8) {
        let sport = self.rng.random_range(32768..61000u16);
        let hash = self.hash();
        let syn = self.build(
            client,
            server,
            false,
            L4::Tcp {
                sport,
                dport: port,
                flags: f::SYN,
            },
            0,
        );
        let match_type = if reason == drop_reason::POLICY_DENY {
            policy_match::L3_L4
        } else {
            policy_match::NONE
        };
        self.verdict(
            server,
            client,
            direction::INGRESS,
            -i32::from(reason),
            port,
            6,
            match_type,
            &syn,
        );
        let (pc, ps) = (&self.peers[client], &self.peers[server]);
        let from = TraceEvent {
            hdr: Self::hdr(msg_type::TRACE, trace_point::FROM_LXC, pc.ep, hash, &syn),
            src_label: pc.identity,
            dst_label: ps.identity,
            dst_id: 0,
            reason: ct_state::NEW,
            pad: 0,
            ifindex: pc.ifindex,
        };
        let drop = DropEvent {
            hdr: Self::hdr(msg_type::DROP, reason, ps.ep, hash, &syn),
            src_label: pc.identity,
            dst_label: ps.identity,
            dst_id: ps.ep,
            line: 0,
            file: 0,
            ct_state: ct_state::NEW,
            direction: direction::INGRESS,
            pad: 0,
            ifindex: ps.ifindex,
            rule: if reason == drop_reason::POLICY_DENY {
                DENY_ORIGIN
            } else {
                0
            },
        };
        for _ in 0..self.rng.random_range(2..4) {
            self.push(Kind::Trace(from), &syn);
            self.push(Kind::Drop(drop), &syn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Enricher, Parser};
    use proto::flow::Verdict;
    use std::sync::Arc;

    /// `testdata/starwars-enrichment.yaml` is what [`Synthetic::enrichment`]
    /// returns, so tools and other crates' tests can load it from disk.
    #[test]
    fn testdata_enrichment_file_is_in_sync() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/starwars-enrichment.yaml"
        );
        let want = Synthetic::new(0).enrichment().to_yaml();
        if std::env::var_os("UPDATE_TESTDATA").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let got = std::fs::read_to_string(path).expect("run with UPDATE_TESTDATA=1 to create");
        assert_eq!(
            got, want,
            "regenerate with UPDATE_TESTDATA=1 cargo test -p flow-parser"
        );
        let loaded = StaticEnrichment::from_file(path).unwrap();
        assert_eq!(loaded.spec(), Synthetic::new(0).enrichment().spec());
    }

    #[test]
    fn deterministic_and_decodable() {
        let (mut a, mut b) = (Synthetic::new(7), Synthetic::new(7));
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..500 {
            a.next_event(&mut x);
            b.next_event(&mut y);
            assert_eq!(x, y);
            ebpf::parse(&x).expect("valid ABI record");
        }
        let mut c = Synthetic::new(8);
        c.next_event(&mut y);
        a.next_event(&mut x);
        assert_ne!(x, y, "another seed, other events");
    }

    #[test]
    fn realistic_mix() {
        let mut g = Synthetic::new(42);
        let enrichment = Arc::new(g.enrichment());
        let mut p = Parser::new(NODE_NAME, Enricher::from_static(enrichment)).with_uuid_seed(1);
        let mut buf = Vec::new();
        let n = 20_000;
        let (mut drops, mut traces, mut verdicts, mut v6, mut udp, mut icmp, mut d181) =
            (0, 0, 0, 0, 0, 0, 0);
        let mut socks = 0;
        let mut last_time = None;
        for _ in 0..n {
            g.next_event(&mut buf);
            let flow = p.decode(&buf, &crate::ClockOffset::new(0)).unwrap();
            let ty = flow.event_type.unwrap().r#type as u8;
            match ty {
                msg_type::DROP => {
                    drops += 1;
                    d181 += usize::from(flow.drop_reason == 181);
                }
                msg_type::TRACE => traces += 1,
                msg_type::POLICY_VERDICT => {
                    verdicts += 1;
                    // Allowed by rule1, explicitly denied by
                    // deny-xwing-443, default denies unnamed.
                    let names: Vec<&str> = [
                        &flow.ingress_allowed_by,
                        &flow.egress_allowed_by,
                        &flow.ingress_denied_by,
                        &flow.egress_denied_by,
                    ]
                    .into_iter()
                    .flatten()
                    .map(|p| p.name.as_str())
                    .collect();
                    let want: &[&str] = match (flow.verdict, flow.drop_reason) {
                        (v, _) if v == Verdict::Forwarded as i32 => &["rule1"],
                        (_, 181) => &["deny-xwing-443"],
                        _ => &[],
                    };
                    assert_eq!(names, want, "{flow:?}");
                }
                msg_type::TRACE_SOCK => {
                    socks += 1;
                    // The frontend point names the service.
                    if flow.sock_xlate_point == i32::from(xlate_point::PRE_DIRECTION_FWD) {
                        let svc = flow.destination_service.as_ref().unwrap();
                        assert_eq!(
                            (svc.namespace.as_str(), svc.name.as_str()),
                            ("default", "deathstar")
                        );
                        continue;
                    }
                }
                _ => unreachable!(),
            }
            let ip = flow.ip.as_ref().unwrap();
            v6 += usize::from(ip.ip_version == 2);
            match flow.l4.as_ref().unwrap().protocol.as_ref().unwrap() {
                proto::flow::layer4::Protocol::Udp(_) => udp += 1,
                proto::flow::layer4::Protocol::IcmPv4(_)
                | proto::flow::layer4::Protocol::IcmPv6(_) => icmp += 1,
                _ => {}
            }
            // Every local endpoint was resolved.
            for ep in [
                flow.source.as_ref().unwrap(),
                flow.destination.as_ref().unwrap(),
            ] {
                if ep.identity != 2 {
                    assert!(!ep.pod_name.is_empty(), "{flow:?}");
                }
            }
            if flow.verdict == Verdict::Dropped as i32 && ty == msg_type::DROP {
                assert_eq!(flow.source.as_ref().unwrap().pod_name, "xwing");
            }
            let t = flow.time.unwrap();
            if let Some(prev) = last_time {
                assert!(t > prev, "time increases");
            }
            last_time = Some(t);
        }
        let share = drops as f64 / n as f64;
        assert!((0.03..0.08).contains(&share), "drop share {share}");
        assert!(d181 > 0 && d181 < drops);
        assert!(traces > n * 3 / 4, "mostly traces: {traces}");
        assert!(verdicts > 0 && v6 > 0 && udp > 0 && icmp > 0 && socks > 0);
    }
}

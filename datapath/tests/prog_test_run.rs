//! Privileged: the programs' decisions on crafted packets, through
//! `BPF_PROG_TEST_RUN` (nothing is attached, nothing is forwarded: the
//! verdict, the rewritten frame, the maps and the ring buffer are what we
//! observe). Each test loads its own datapath into its own private bpffs.
//!
//! Fixture: pods A (10.0.1.2, endpoint 101, identity 1001) and B (10.0.2.2,
//! endpoint 102, identity 1002) on this node; both "live" behind ifindex 1
//! (lo) so `skb->ifindex` passes source validation in either direction.
//! The overlay cases add a remote pod R (10.0.9.2, identity 3003) in the
//! ipcache behind node 192.168.50.2.
//! Events are checked raw (`ebpf::parse`) and as Hubble flows
//! (`flow_parser::Parser`).

mod common;

use std::net::{IpAddr, Ipv4Addr};

use datapath::lb::{Backend, Frontend, LbAlgorithm, LbMaps, LbProto, ServiceFlags};
use datapath::maps::{CtKey, identity, ip4_key};
use datapath::{Aggregation, Config, Direction, Endpoint, PolicyAction, PolicyEntry};
use ebpf::{
    RawEvent, ct_state, direction, drop_reason, msg_type, policy_match, sock_l4, trace_point,
    xlate_point,
};
use flow_parser::packet::{L4, Packet, tcp_flags};
use flow_parser::{ClockOffset, Enricher, Parser};
use proto::flow::layer4::Protocol;
use proto::flow::{DropReason, Flow, TraceObservationPoint, TrafficDirection, Verdict};

use common::Harness;

const TC_ACT_OK: u32 = 0;
const TC_ACT_SHOT: u32 = 2;
const TC_ACT_REDIRECT: u32 = 7;
const LO: u32 = 1;
const FROM: &str = "from_container";
const TO: &str = "to_container";
const OVERLAY: &str = "from_overlay";

const A_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
const A_ID: u32 = 1001;
const B_ID: u32 = 1002;
const A_EP: u16 = 101;
const B_EP: u16 = 102;
const A_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x02];
const A_GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];
const B_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x02];
const B_GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x01];

fn endpoint(ip: Ipv4Addr, ep_id: u16, id: u32, pod: [u8; 6], gw: [u8; 6]) -> Endpoint {
    Endpoint {
        ip,
        ifindex: LO,
        pod_mac: pod,
        node_mac: gw,
        identity: id,
        ep_id,
        enforce_ingress: false,
        enforce_egress: false,
        audit: false,
    }
}

/// A harness with pods A and B; `f` adjusts them (enforcement flags).
fn setup(f: impl FnOnce(&mut Endpoint, &mut Endpoint)) -> Harness {
    let mut h = Harness::new();
    let mut a = endpoint(A_IP, A_EP, A_ID, A_MAC, A_GW_MAC);
    let mut b = endpoint(B_IP, B_EP, B_ID, B_MAC, B_GW_MAC);
    f(&mut a, &mut b);
    h.maps.upsert_endpoint(&a).unwrap();
    h.maps.upsert_endpoint(&b).unwrap();
    h
}

fn rule(
    ep_id: u16,
    dir: Direction,
    identity: u32,
    proto: u8,
    port: u16,
    action: PolicyAction,
) -> PolicyEntry {
    PolicyEntry::port(ep_id, dir, identity, proto, port, action, 7)
}

fn tcp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, flags: u16) -> Vec<u8> {
    // A pod sends to its gateway MAC.
    Packet::new(
        IpAddr::V4(src),
        IpAddr::V4(dst),
        L4::Tcp {
            sport,
            dport,
            flags,
        },
    )
    .macs(A_MAC, A_GW_MAC)
    .build()
}

fn pkt(src: Ipv4Addr, dst: Ipv4Addr, l4: L4) -> Vec<u8> {
    Packet::new(IpAddr::V4(src), IpAddr::V4(dst), l4).build()
}

fn ct_key(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, proto: u8) -> CtKey {
    CtKey {
        saddr: ip4_key(src),
        daddr: ip4_key(dst),
        sport,
        dport,
        proto,
        pad: [0; 3],
    }
}

/// Decodes every record, checking the ABI invariants on the way.
fn decode(records: &[Vec<u8>]) -> Vec<(RawEvent<'_>, Flow)> {
    let mut parser = Parser::new("test-node", Enricher::none()).without_uuids();
    let clock = ClockOffset::new(0);
    records
        .iter()
        .map(|r| {
            let ev = ebpf::parse(r).expect("ABI record");
            let hdr = ev.hdr();
            assert_eq!(hdr.version, ebpf::EVENT_VERSION);
            assert!(hdr.ktime_ns > 0);
            assert!(usize::from(hdr.cap_len) <= ebpf::CAPTURE_MAX);
            assert_eq!(
                usize::from(hdr.cap_len),
                (hdr.orig_len as usize).min(ebpf::CAPTURE_MAX),
                "captures the frame up to 128 bytes"
            );
            let flow = parser.decode(r, &clock).expect("flow");
            (ev, flow)
        })
        .collect()
}

fn kinds(evs: &[(RawEvent<'_>, Flow)]) -> Vec<(u8, u8)> {
    evs.iter()
        .map(|(e, _)| (e.hdr().r#type, e.hdr().subtype))
        .collect()
}

const VERDICT: (u8, u8) = (msg_type::POLICY_VERDICT, 0);
const TO_LXC: (u8, u8) = (msg_type::TRACE, trace_point::TO_LXC);
const TO_STACK: (u8, u8) = (msg_type::TRACE, trace_point::TO_STACK);
const FROM_LXC: (u8, u8) = (msg_type::TRACE, trace_point::FROM_LXC);
const FROM_STACK: (u8, u8) = (msg_type::TRACE, trace_point::FROM_STACK);
const TO_OVERLAY: (u8, u8) = (msg_type::TRACE, trace_point::TO_OVERLAY);
const SOCK_PRE: (u8, u8) = (msg_type::TRACE_SOCK, xlate_point::PRE_DIRECTION_FWD);
const SOCK_POST: (u8, u8) = (msg_type::TRACE_SOCK, xlate_point::POST_DIRECTION_FWD);
const fn drop_kind(reason: u8) -> (u8, u8) {
    (msg_type::DROP, reason)
}

fn verdict_of(ev: &RawEvent<'_>) -> ebpf::PolicyVerdictEvent {
    match ev {
        RawEvent::PolicyVerdict(v, _) => *v,
        other => panic!("not a policy verdict: {other:?}"),
    }
}

fn drop_of(ev: &RawEvent<'_>) -> ebpf::DropEvent {
    match ev {
        RawEvent::Drop(d, _) => *d,
        other => panic!("not a drop: {other:?}"),
    }
}

fn sock_of(ev: &RawEvent<'_>) -> ebpf::TraceSockEvent {
    match ev {
        RawEvent::TraceSock(t, _) => *t,
        other => panic!("not a trace-sock record: {other:?}"),
    }
}

fn trace_of(ev: &RawEvent<'_>) -> ebpf::TraceEvent {
    match ev {
        RawEvent::Trace(t, _) => *t,
        other => panic!("not a trace: {other:?}"),
    }
}

#[test]
fn programs_load_and_every_map_is_pinned() {
    require_privileges!();
    let h = Harness::new();
    for m in [
        "endpoints",
        "ipcache",
        "policy",
        "ct4",
        "events",
        "lost_events",
        "drop_stats",
        "metrics",
        "drop_rl",
        "dp_config",
        "lb4_services",
        "lb4_backends",
        "lb4_reverse_nat",
        "lb4_maglev",
        "lb4_affinity",
        "lb4_stats",
    ] {
        assert!(h.scratch.pin_dir().join(m).exists(), "{m} pinned");
    }
    assert_eq!(
        h.dp.load_report().created,
        datapath::maps::pinned_map_names()
            .map(String::from)
            .collect::<Vec<_>>()
    );
    assert_eq!(h.maps.config().unwrap(), Config::default());
    assert_eq!(h.maps.config().unwrap().aggregation, Aggregation::Medium);
}

#[test]
fn egress_l3_only_allow_redirects_to_local_pod_and_tracks_connection() {
    require_privileges!();
    let mut h = setup(|a, _| a.enforce_egress = true);
    h.maps
        .upsert_policy(&rule(
            A_EP,
            Direction::Egress,
            B_ID,
            0,
            0,
            PolicyAction::Allow,
        ))
        .unwrap();

    let syn = tcp(A_IP, 40000, B_IP, 80, tcp_flags::SYN);
    let (rc, out) = h.run(FROM, &syn, LO);
    assert_eq!(rc, TC_ACT_REDIRECT, "bpf_redirect_peer into B");
    assert_eq!(&out[0..6], &B_MAC, "dst MAC = B's pod MAC");
    assert_eq!(&out[6..12], &B_GW_MAC, "src MAC = B's gateway");
    assert_eq!(&out[12..], &syn[12..], "rest of the frame untouched");

    let ct = h
        .maps
        .ct_entry(&ct_key(A_IP, 40000, B_IP, 80, 6))
        .unwrap()
        .expect("CT entry created");
    assert_eq!((ct.src_identity, ct.dst_identity), (A_ID, B_ID));
    assert_eq!((ct.src_ep, ct.dst_ep), (A_EP, B_EP));
    assert_eq!(ct.fwd_packets, 1);
    assert_eq!(ct.fwd_flags_seen, tcp_flags::SYN as u8);
    assert!(ct.expires_ns > ct.created_ns);

    let recs = h.drain();
    let evs = decode(&recs);
    // Medium aggregation: no from-endpoint trace; a verdict, then to-endpoint.
    assert_eq!(kinds(&evs), vec![VERDICT, TO_LXC]);
    let v = verdict_of(&evs[0].0);
    assert_eq!(v.hdr.source, A_EP);
    assert_eq!((v.local_label, v.remote_label), (A_ID, B_ID));
    assert_eq!((v.verdict, v.direction), (0, direction::EGRESS));
    assert_eq!(v.match_type, policy_match::L3_ONLY);
    assert_eq!((v.dst_port, v.proto), (80, 6));
    assert_eq!(v.reason, ct_state::NEW);
    let f = &evs[0].1;
    assert_eq!(f.verdict, Verdict::Forwarded as i32);
    assert_eq!(f.policy_match_type, u32::from(policy_match::L3_ONLY));
    assert_eq!(f.traffic_direction, TrafficDirection::Egress as i32);
    assert_eq!(f.event_type.as_ref().unwrap().r#type, 5);

    let t = trace_of(&evs[1].0);
    assert_eq!((t.hdr.source, t.dst_id), (B_EP, B_EP));
    assert_eq!((t.src_label, t.dst_label), (A_ID, B_ID));
    assert_eq!(t.reason, ct_state::NEW);
    assert_eq!(
        evs[1].0.payload(),
        &out[..],
        "captured after the MAC rewrite"
    );
    let f = &evs[1].1;
    assert_eq!(f.verdict, Verdict::Forwarded as i32);
    assert_eq!(
        f.trace_observation_point,
        TraceObservationPoint::ToEndpoint as i32
    );
    assert_eq!(f.event_type.as_ref().unwrap().r#type, 4);
    assert_eq!(f.source.as_ref().unwrap().identity, A_ID);
    assert_eq!(f.destination.as_ref().unwrap().identity, B_ID);
}

#[test]
fn ingress_l4_only_rule_allows_its_port_and_default_denies_the_rest() {
    require_privileges!();
    let mut h = setup(|_, b| b.enforce_ingress = true);
    h.maps
        .upsert_policy(&rule(
            B_EP,
            Direction::Ingress,
            0,
            6,
            80,
            PolicyAction::Allow,
        ))
        .unwrap();

    let (rc, _) = h.run(FROM, &tcp(A_IP, 40000, B_IP, 80, tcp_flags::SYN), LO);
    assert_eq!(rc, TC_ACT_REDIRECT);
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(kinds(&evs), vec![VERDICT, TO_LXC]);
    let v = verdict_of(&evs[0].0);
    assert_eq!(v.hdr.source, B_EP, "the endpoint applying ingress policy");
    assert_eq!((v.local_label, v.remote_label), (B_ID, A_ID));
    assert_eq!((v.verdict, v.direction), (0, direction::INGRESS));
    assert_eq!(v.match_type, policy_match::L4_ONLY);
    assert_eq!(evs[0].1.traffic_direction, TrafficDirection::Ingress as i32);

    let (rc, _) = h.run(FROM, &tcp(A_IP, 40001, B_IP, 81, tcp_flags::SYN), LO);
    assert_eq!(rc, TC_ACT_SHOT);
    assert!(
        h.maps
            .ct_entry(&ct_key(A_IP, 40001, B_IP, 81, 6))
            .unwrap()
            .is_none(),
        "no CT entry for a denied connection"
    );
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(
        kinds(&evs),
        vec![VERDICT, drop_kind(drop_reason::POLICY_DENIED)]
    );
    let v = verdict_of(&evs[0].0);
    assert_eq!(v.verdict, -i32::from(drop_reason::POLICY_DENIED));
    assert_eq!(v.match_type, policy_match::NONE);
    assert_eq!(evs[0].1.verdict, Verdict::Dropped as i32);
}

#[test]
fn l3_l4_rule_allows_only_that_peer_and_port() {
    require_privileges!();
    let mut h = setup(|_, b| b.enforce_ingress = true);
    h.maps
        .upsert_policy(&rule(
            B_EP,
            Direction::Ingress,
            A_ID,
            6,
            80,
            PolicyAction::Allow,
        ))
        .unwrap();

    let (rc, _) = h.run(FROM, &tcp(A_IP, 40000, B_IP, 80, tcp_flags::SYN), LO);
    assert_eq!(rc, TC_ACT_REDIRECT);
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(verdict_of(&evs[0].0).match_type, policy_match::L3_L4);
    assert_eq!(evs[0].1.policy_match_type, u32::from(policy_match::L3_L4));

    // Same peer, another port: default deny, reported with both identities.
    let (rc, _) = h.run(FROM, &tcp(A_IP, 40001, B_IP, 443, tcp_flags::SYN), LO);
    assert_eq!(rc, TC_ACT_SHOT);
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(
        kinds(&evs),
        vec![VERDICT, drop_kind(drop_reason::POLICY_DENIED)]
    );
    let d = drop_of(&evs[1].0);
    assert_eq!((d.src_label, d.dst_label), (A_ID, B_ID));
    assert_eq!((d.hdr.source, d.dst_id), (B_EP, B_EP));
    assert_eq!(d.direction, direction::INGRESS);
    assert_eq!(d.ct_state, ct_state::NEW);
    assert_eq!(d.file, 2, "HUBBLE_SRC_FILE_LXC");
    assert!(d.line > 0);
    let f = &evs[1].1;
    assert_eq!(f.verdict, Verdict::Dropped as i32);
    assert_eq!(f.drop_reason_desc, DropReason::PolicyDenied as i32);
    assert_eq!(f.event_type.as_ref().unwrap().r#type, 1);
    assert_eq!(f.traffic_direction, TrafficDirection::Ingress as i32);
    assert_eq!(f.source.as_ref().unwrap().identity, A_ID);
    assert_eq!(f.destination.as_ref().unwrap().identity, B_ID);

    // Drops are counted per reason.
    let stats = h.maps.drop_stats().unwrap();
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].0, drop_reason::POLICY_DENIED);
    assert_eq!(stats[0].1.packets, 1);
}

#[test]
fn explicit_deny_wins_over_allow() {
    require_privileges!();
    let mut h = setup(|_, b| b.enforce_ingress = true);
    h.maps
        .upsert_policy(&rule(
            B_EP,
            Direction::Ingress,
            A_ID,
            0,
            0,
            PolicyAction::Allow,
        ))
        .unwrap();
    h.maps
        .upsert_policy(&rule(
            B_EP,
            Direction::Ingress,
            0,
            6,
            22,
            PolicyAction::Deny,
        ))
        .unwrap();

    let (rc, _) = h.run(FROM, &tcp(A_IP, 40000, B_IP, 22, tcp_flags::SYN), LO);
    assert_eq!(rc, TC_ACT_SHOT);
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(
        kinds(&evs),
        vec![VERDICT, drop_kind(drop_reason::POLICY_DENY)]
    );
    let v = verdict_of(&evs[0].0);
    assert_eq!(v.verdict, -i32::from(drop_reason::POLICY_DENY));
    assert_eq!(v.match_type, policy_match::L4_ONLY);
    assert_eq!(evs[1].1.drop_reason_desc, DropReason::PolicyDeny as i32);

    let (rc, _) = h.run(FROM, &tcp(A_IP, 40001, B_IP, 80, tcp_flags::SYN), LO);
    assert_eq!(rc, TC_ACT_REDIRECT, "the L3 allow still covers other ports");
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(verdict_of(&evs[0].0).match_type, policy_match::L3_ONLY);
}

#[test]
fn reply_is_allowed_by_conntrack_without_policy() {
    require_privileges!();
    // Everything default-deny; only A → B:80 is allowed (A egress, B ingress).
    let mut h = setup(|a, b| {
        a.enforce_ingress = true;
        a.enforce_egress = true;
        b.enforce_ingress = true;
        b.enforce_egress = true;
    });
    h.maps
        .upsert_policy(&rule(
            A_EP,
            Direction::Egress,
            B_ID,
            6,
            80,
            PolicyAction::Allow,
        ))
        .unwrap();
    h.maps
        .upsert_policy(&rule(
            B_EP,
            Direction::Ingress,
            A_ID,
            6,
            80,
            PolicyAction::Allow,
        ))
        .unwrap();

    let (rc, _) = h.run(FROM, &tcp(A_IP, 40000, B_IP, 80, tcp_flags::SYN), LO);
    assert_eq!(rc, TC_ACT_REDIRECT);
    let recs = h.drain();
    assert_eq!(kinds(&decode(&recs)), vec![VERDICT, VERDICT, TO_LXC]);

    // SYN-ACK from B, leaving through B's veth: a reply, no policy.
    let synack = tcp(B_IP, 80, A_IP, 40000, tcp_flags::SYN | tcp_flags::ACK);
    let (rc, out) = h.run(FROM, &synack, LO);
    assert_eq!(rc, TC_ACT_REDIRECT);
    assert_eq!(&out[0..12], &[A_MAC, A_GW_MAC].concat()[..]);
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(kinds(&evs), vec![TO_LXC], "no verdict for a reply");
    let t = trace_of(&evs[0].0);
    assert_eq!(t.reason, ct_state::REPLY);
    assert_eq!((t.src_label, t.dst_label), (B_ID, A_ID));
    assert_eq!(t.hdr.source, A_EP);
    assert_eq!(evs[0].1.is_reply.as_ref().map(|b| b.value), Some(true));

    let ct = h
        .maps
        .ct_entry(&ct_key(A_IP, 40000, B_IP, 80, 6))
        .unwrap()
        .unwrap();
    assert_eq!((ct.fwd_packets, ct.rev_packets), (1, 1));
    assert_eq!(ct.rev_flags_seen, (tcp_flags::SYN | tcp_flags::ACK) as u8);
    assert_ne!(ct.flags & datapath::maps::ct_flags::SEEN_REPLY, 0);

    // The same packet as a *new* connection from B is denied (B egress).
    let (rc, _) = h.run(FROM, &tcp(B_IP, 80, A_IP, 40001, tcp_flags::SYN), LO);
    assert_eq!(rc, TC_ACT_SHOT);
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(
        kinds(&evs),
        vec![VERDICT, drop_kind(drop_reason::POLICY_DENIED)]
    );
    assert_eq!(drop_of(&evs[1].0).direction, direction::EGRESS);
    assert_eq!(drop_of(&evs[1].0).hdr.source, B_EP);
}

#[test]
fn icmp_echo_reply_is_tracked() {
    require_privileges!();
    let mut h = setup(|a, _| a.enforce_ingress = true);
    let req = pkt(A_IP, B_IP, L4::Icmp4 { ty: 8, code: 0 });
    assert_eq!(h.run(FROM, &req, LO).0, TC_ACT_REDIRECT);
    // Packet's ICMP identifier is 0x1234.
    assert!(
        h.maps
            .ct_entry(&ct_key(A_IP, 0x1234, B_IP, 0, 1))
            .unwrap()
            .is_some()
    );
    let rep = pkt(B_IP, A_IP, L4::Icmp4 { ty: 0, code: 0 });
    assert_eq!(
        h.run(FROM, &rep, LO).0,
        TC_ACT_REDIRECT,
        "echo reply allowed into default-deny A"
    );
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(kinds(&evs), vec![TO_LXC, TO_LXC]);
    assert_eq!(trace_of(&evs[1].0).reason, ct_state::REPLY);

    // An unsolicited echo request towards A is policed: denied.
    let req = pkt(B_IP, A_IP, L4::Icmp4 { ty: 8, code: 0 });
    assert_eq!(h.run(FROM, &req, LO).0, TC_ACT_SHOT);
}

/// An `icmps` type-8 rule, compiled by the policy compiler: the kernel
/// matches a new ICMP flow by its type (the policy "port"), so an echo
/// request is allowed and another type (timestamp, 13) is denied; the
/// verdicts carry the type and the flows show `l4.ICMPv4.type`.
#[test]
fn icmps_rule_allows_echo_request_by_type_and_denies_other_types() {
    require_privileges!();
    let yaml = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: ping}\nspec:\n  endpointSelector: {matchLabels: {app: b}}\n  ingress: [{icmps: [{fields: [{type: EchoRequest}]}]}]\n";
    let pols = datapath::policy::parse_str("ping.yaml", yaml).unwrap();
    let mut ids = datapath::identity::IdentityAllocator::new();
    let labels = std::collections::BTreeMap::from([("app".to_string(), "b".to_string())]);
    let b_id = ids.allocate(&datapath::identity::pod_labels(
        "default", &labels, "default",
    ));
    let cidr_ids = datapath::policy::allocate_cidr_identities(&pols, &mut ids);
    let eps = [datapath::policy::LocalEndpoint {
        ep_id: B_EP,
        identity: b_id,
    }];
    let compiled = datapath::policy::compile(&pols, &eps, &ids, &cidr_ids);
    let entries: Vec<_> = compiled
        .entries
        .iter()
        .map(|e| (e.ep_id, e.direction, e.identity, e.proto, e.port, e.action))
        .collect();
    assert_eq!(
        entries,
        vec![(B_EP, Direction::Ingress, 0, 1, 8, PolicyAction::Allow)]
    );
    assert!(compiled.enforce[&B_EP].ingress);

    let mut h = setup(|_, b| b.enforce_ingress = true);
    for e in &compiled.entries {
        h.maps.upsert_policy(e).unwrap();
    }
    let req = pkt(A_IP, B_IP, L4::Icmp4 { ty: 8, code: 0 });
    assert_eq!(
        h.run(FROM, &req, LO).0,
        TC_ACT_REDIRECT,
        "echo request allowed"
    );
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(kinds(&evs), vec![VERDICT, TO_LXC]);
    let v = verdict_of(&evs[0].0);
    assert_eq!((v.verdict, v.direction), (0, direction::INGRESS));
    assert_eq!(
        (v.proto, v.dst_port),
        (1, 8),
        "the verdict carries the ICMP type"
    );
    assert_eq!(v.match_type, policy_match::L4_ONLY);
    let icmp_type = |f: &Flow| match f.l4.as_ref().and_then(|l| l.protocol.as_ref()) {
        Some(Protocol::IcmPv4(i)) => i.r#type,
        other => panic!("not ICMPv4: {other:?}"),
    };
    assert_eq!(evs[0].1.verdict, Verdict::Forwarded as i32);
    assert_eq!(icmp_type(&evs[0].1), 8);

    let ts = pkt(A_IP, B_IP, L4::Icmp4 { ty: 13, code: 0 });
    assert_eq!(
        h.run(FROM, &ts, LO).0,
        TC_ACT_SHOT,
        "timestamp request denied"
    );
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(
        kinds(&evs),
        vec![VERDICT, drop_kind(drop_reason::POLICY_DENIED)]
    );
    let v = verdict_of(&evs[0].0);
    assert_eq!(v.verdict, -i32::from(drop_reason::POLICY_DENIED));
    assert_eq!((v.proto, v.dst_port), (1, 13));
    assert_eq!(evs[0].1.verdict, Verdict::Dropped as i32);
    assert_eq!(icmp_type(&evs[0].1), 13);
}

/// Compiles `ingress` (the sections of a policy selecting pod B) for B.
fn compile_for_b(ingress: &str) -> datapath::policy::Compiled {
    let opts = datapath::policy::CompileOptions {
        allow_localhost: datapath::policy::AllowLocalhost::Policy,
        ..Default::default()
    };
    compile_for_b_with(ingress, opts)
}

/// [`compile_for_b`] with compile options (named ports, allow-localhost).
fn compile_for_b_with(
    ingress: &str,
    opts: datapath::policy::CompileOptions,
) -> datapath::policy::Compiled {
    let yaml = format!(
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: ranges}}\nspec:\n  endpointSelector: {{matchLabels: {{app: b}}}}\n{ingress}"
    );
    let pols = datapath::policy::parse_str("ranges.yaml", &yaml).unwrap();
    let mut ids = datapath::identity::IdentityAllocator::new();
    let labels = std::collections::BTreeMap::from([("app".to_string(), "b".to_string())]);
    let b_id = ids.allocate(&datapath::identity::pod_labels(
        "default", &labels, "default",
    ));
    let cidr_ids = datapath::policy::allocate_cidr_identities(&pols, &mut ids);
    let eps = [datapath::policy::LocalEndpoint {
        ep_id: B_EP,
        identity: b_id,
    }];
    datapath::policy::compile_with(&pols, &eps, &ids, &cidr_ids, &opts)
}

/// A named port (`port: http`) resolved against what B declares
/// (`http:8080`): 8080 passes, 80 does not; the verdict shows 8080.
#[test]
fn named_port_resolves_to_the_declared_number() {
    require_privileges!();
    let opts = datapath::policy::CompileOptions {
        allow_localhost: datapath::policy::AllowLocalhost::Policy,
        named_ports: std::collections::BTreeMap::from([(B_EP, vec!["http:8080".parse().unwrap()])]),
        cluster_named_ports: Vec::new(),
    };
    let compiled = compile_for_b_with(
        "  ingress: [{toPorts: [{ports: [{port: http, protocol: TCP}]}]}]\n",
        opts,
    );
    let mut h = setup(|_, b| b.enforce_ingress = true);
    for e in &compiled.entries {
        h.maps.upsert_policy(e).unwrap();
    }
    let (rc, _) = h.run(FROM, &tcp(A_IP, 42000, B_IP, 8080, tcp_flags::SYN), LO);
    assert_eq!(rc, TC_ACT_REDIRECT, "http = 8080 allowed");
    let recs = h.drain();
    let v = verdict_of(&decode(&recs)[0].0);
    assert_eq!(
        (v.verdict, v.dst_port, v.match_type),
        (0, 8080, policy_match::L4_ONLY)
    );
    let (rc, _) = h.run(FROM, &tcp(A_IP, 42001, B_IP, 80, tcp_flags::SYN), LO);
    assert_eq!(rc, TC_ACT_SHOT, "80 is not http here");
}

/// A range of 4,000 ports is a few trie prefixes; a port inside passes, the
/// ports just outside are denied by default, and a denied sub-range inside
/// wins over the allowed range. Every verdict carries the packet's port.
#[test]
fn wide_port_range_with_a_denied_sub_range() {
    require_privileges!();
    let compiled = compile_for_b(
        "  ingress: [{toPorts: [{ports: [{port: 1000, endPort: 4999, protocol: TCP}]}]}]\n  ingressDeny: [{toPorts: [{ports: [{port: 2000, endPort: 2100, protocol: TCP}]}]}]\n",
    );
    assert!(compiled.entries.len() < 30, "{:?}", compiled.entries);
    let mut h = setup(|_, b| b.enforce_ingress = true);
    for e in &compiled.entries {
        h.maps.upsert_policy(e).unwrap();
    }
    let cases = [
        (999, None),
        (1000, Some(0)),
        (1999, Some(0)),
        (2000, Some(drop_reason::POLICY_DENY)),
        (2050, Some(drop_reason::POLICY_DENY)),
        (2100, Some(drop_reason::POLICY_DENY)),
        (2101, Some(0)),
        (4999, Some(0)),
        (5000, None),
    ];
    for (i, (port, want)) in cases.into_iter().enumerate() {
        let sport = 41000 + i as u16;
        let (rc, _) = h.run(FROM, &tcp(A_IP, sport, B_IP, port, tcp_flags::SYN), LO);
        let recs = h.drain();
        let evs = decode(&recs);
        let v = verdict_of(&evs[0].0);
        assert_eq!((v.proto, v.dst_port), (6, port), "port {port}");
        match want {
            Some(0) => {
                assert_eq!(rc, TC_ACT_REDIRECT, "port {port} allowed");
                assert_eq!(v.verdict, 0, "port {port}");
                assert_eq!(v.match_type, policy_match::L4_ONLY, "port {port}");
            }
            Some(reason) => {
                assert_eq!(rc, TC_ACT_SHOT, "port {port} denied by the deny rule");
                assert_eq!(v.verdict, -i32::from(reason), "port {port}");
                assert_eq!(v.match_type, policy_match::L4_ONLY, "port {port}");
            }
            None => {
                assert_eq!(rc, TC_ACT_SHOT, "port {port} outside the range");
                assert_eq!(
                    v.verdict,
                    -i32::from(drop_reason::POLICY_DENIED),
                    "port {port}"
                );
            }
        }
    }
}

/// ICMP type 0 alone is expressible: an allow of EchoReply (type 0) does
/// not allow EchoRequest (type 8), and a deny of type 0 leaves type 8 to
/// the allow of every type.
#[test]
fn icmp_type_0_alone_is_its_own_key() {
    require_privileges!();
    let compiled = compile_for_b(
        "  ingress: [{fromEntities: [all], icmps: [{fields: [{type: 8}, {type: 13}]}]}]\n  ingressDeny: [{icmps: [{fields: [{type: 0}]}]}]\n",
    );
    let mut h = setup(|_, b| b.enforce_ingress = true);
    for e in &compiled.entries {
        h.maps.upsert_policy(e).unwrap();
    }
    let req = pkt(A_IP, B_IP, L4::Icmp4 { ty: 8, code: 0 });
    assert_eq!(h.run(FROM, &req, LO).0, TC_ACT_REDIRECT, "type 8 allowed");
    h.drain();
    let ts = pkt(A_IP, B_IP, L4::Icmp4 { ty: 13, code: 0 });
    assert_eq!(h.run(FROM, &ts, LO).0, TC_ACT_REDIRECT, "type 13 allowed");
    h.drain();
    let info = pkt(A_IP, B_IP, L4::Icmp4 { ty: 15, code: 0 });
    assert_eq!(h.run(FROM, &info, LO).0, TC_ACT_SHOT, "type 15 not allowed");
    let recs = h.drain();
    let evs = decode(&recs);
    let v = verdict_of(&evs[0].0);
    assert_eq!(v.verdict, -i32::from(drop_reason::POLICY_DENIED));
    assert_eq!((v.proto, v.dst_port), (1, 15));
    // An echo reply no request was seen for: type 0, denied by its rule.
    let reply = pkt(A_IP, B_IP, L4::Icmp4 { ty: 0, code: 0 });
    assert_eq!(h.run(FROM, &reply, LO).0, TC_ACT_SHOT, "type 0 denied");
    let recs = h.drain();
    let evs = decode(&recs);
    let v = verdict_of(&evs[0].0);
    assert_eq!(v.verdict, -i32::from(drop_reason::POLICY_DENY));
    assert_eq!(
        (v.proto, v.dst_port, v.match_type),
        (1, 0, policy_match::L4_ONLY)
    );
}

#[test]
fn unknown_l4_protocol_is_dropped() {
    require_privileges!();
    let mut h = setup(|_, _| {});
    let (rc, _) = h.run(FROM, &pkt(A_IP, B_IP, L4::Other(253)), LO);
    assert_eq!(rc, TC_ACT_SHOT);
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(
        kinds(&evs),
        vec![drop_kind(drop_reason::UNKNOWN_L4_PROTOCOL)]
    );
    let d = drop_of(&evs[0].0);
    assert_eq!((d.src_label, d.dst_label), (A_ID, B_ID));
    assert_eq!(d.hdr.source, A_EP);
    assert_eq!(
        evs[0].1.drop_reason_desc,
        DropReason::UnknownL4Protocol as i32
    );
}

#[test]
fn truncated_packets_are_dropped() {
    require_privileges!();
    let mut h = setup(|_, _| {});
    // An IPv4 header cut short cannot be fed in: BPF_PROG_TEST_RUN on 6.18
    // rejects an IPv4 frame under 34 bytes with EINVAL. A header length
    // below the minimum (IHL 4) is the malformed-L3 case it accepts.
    let full = tcp(A_IP, 40000, B_IP, 80, tcp_flags::SYN);
    let mut bad_ihl = full.clone();
    bad_ihl[14] = 0x44;
    let (rc, _) = h.run(FROM, &bad_ihl, LO);
    assert_eq!(rc, TC_ACT_SHOT);
    // TCP header cut short (8 of 20 bytes).
    let (rc, _) = h.run(FROM, &full[..14 + 20 + 8], LO);
    assert_eq!(rc, TC_ACT_SHOT);
    // UDP header cut short, towards a pod through the stack.
    let udp = pkt(
        A_IP,
        B_IP,
        L4::Udp {
            sport: 5000,
            dport: 53,
        },
    );
    let (rc, _) = h.run(TO, &udp[..14 + 20 + 4], LO);
    assert_eq!(rc, TC_ACT_SHOT);

    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(
        kinds(&evs),
        vec![
            drop_kind(drop_reason::INVALID_PACKET),
            drop_kind(drop_reason::CT_TRUNCATED_OR_INVALID_HEADER),
            drop_kind(drop_reason::CT_TRUNCATED_OR_INVALID_HEADER),
        ]
    );
    assert_eq!(
        drop_of(&evs[0].0).src_label,
        0,
        "nothing readable: no identity"
    );
    assert_eq!(evs[1].0.hdr().orig_len, 42);
    assert_eq!(evs[1].0.payload(), &full[..42], "the whole short frame");
    let d = drop_of(&evs[1].0);
    assert_eq!((d.src_label, d.dst_label), (A_ID, B_ID), "L3 was readable");
    assert_eq!(
        evs[1].1.drop_reason_desc,
        DropReason::CtTruncatedOrInvalidHeader as i32
    );
    let d = drop_of(&evs[2].0);
    assert_eq!((d.hdr.source, d.direction), (B_EP, direction::INGRESS));
}

#[test]
fn unsupported_l3_spoofed_source_and_fragments_are_dropped() {
    require_privileges!();
    let mut h = setup(|_, _| {});
    let mut c = endpoint(Ipv4Addr::new(10, 0, 3, 2), 103, 1003, B_MAC, B_GW_MAC);
    c.ifindex = 9999; // lives behind another veth
    h.maps.upsert_endpoint(&c).unwrap();

    let v6 = Packet::new(
        "fd00::1".parse().unwrap(),
        "fd00::2".parse().unwrap(),
        L4::Udp { sport: 1, dport: 2 },
    )
    .build();
    assert_eq!(h.run(FROM, &v6, LO).0, TC_ACT_SHOT);
    // C's address sent from A's veth.
    let spoof = tcp(c.ip, 1, B_IP, 80, tcp_flags::SYN);
    assert_eq!(h.run(FROM, &spoof, LO).0, TC_ACT_SHOT);
    // A non-first fragment.
    let mut frag = pkt(
        A_IP,
        B_IP,
        L4::Udp {
            sport: 5000,
            dport: 53,
        },
    );
    frag[14 + 6] = 0x00;
    frag[14 + 7] = 0x10;
    assert_eq!(h.run(FROM, &frag, LO).0, TC_ACT_SHOT);

    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(
        kinds(&evs),
        vec![
            drop_kind(drop_reason::UNSUPPORTED_L3_PROTOCOL),
            drop_kind(drop_reason::INVALID_SOURCE_IP),
            drop_kind(drop_reason::IP_FRAGMENTATION_NOT_SUPPORTED),
        ]
    );
    assert_eq!(drop_of(&evs[1].0).dst_label, B_ID);
}

#[test]
fn to_container_polices_traffic_from_the_stack_by_ipcache_identity() {
    require_privileges!();
    let mut h = setup(|_, b| b.enforce_ingress = true);
    const CIDR_ID: u32 = 16_777_217;
    h.maps
        .upsert_prefix(Ipv4Addr::new(192, 168, 0, 0), 16, CIDR_ID, 0)
        .unwrap();
    h.maps
        .upsert_prefix(Ipv4Addr::new(10, 0, 0, 1), 32, identity::HOST, 0)
        .unwrap();
    h.maps
        .upsert_policy(&rule(
            B_EP,
            Direction::Ingress,
            CIDR_ID,
            0,
            0,
            PolicyAction::Allow,
        ))
        .unwrap();
    assert_eq!(
        h.maps
            .lookup_prefix(Ipv4Addr::new(192, 168, 7, 9))
            .unwrap()
            .map(|v| v.identity),
        Some(CIDR_ID)
    );

    let from_cidr = tcp(
        Ipv4Addr::new(192, 168, 7, 9),
        5555,
        B_IP,
        80,
        tcp_flags::SYN,
    );
    assert_eq!(
        h.run(TO, &from_cidr, LO).0,
        TC_ACT_OK,
        "delivered by the stack"
    );
    let from_world = tcp(Ipv4Addr::new(8, 8, 8, 8), 5555, B_IP, 80, tcp_flags::SYN);
    assert_eq!(h.run(TO, &from_world, LO).0, TC_ACT_SHOT);
    let from_host = tcp(Ipv4Addr::new(10, 0, 0, 1), 5555, B_IP, 80, tcp_flags::SYN);
    assert_eq!(h.run(TO, &from_host, LO).0, TC_ACT_SHOT);

    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(
        kinds(&evs),
        vec![
            VERDICT,
            TO_LXC,
            VERDICT,
            drop_kind(drop_reason::POLICY_DENIED),
            VERDICT,
            drop_kind(drop_reason::POLICY_DENIED),
        ]
    );
    assert_eq!(verdict_of(&evs[0].0).remote_label, CIDR_ID);
    assert_eq!(verdict_of(&evs[0].0).match_type, policy_match::L3_ONLY);
    assert_eq!(drop_of(&evs[3].0).src_label, identity::WORLD);
    assert_eq!(drop_of(&evs[5].0).src_label, identity::HOST);

    // A reply from B to the CIDR peer leaves through the stack.
    let reply = tcp(
        B_IP,
        80,
        Ipv4Addr::new(192, 168, 7, 9),
        5555,
        tcp_flags::SYN | tcp_flags::ACK,
    );
    assert_eq!(h.run(FROM, &reply, LO).0, TC_ACT_OK);
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(kinds(&evs), vec![TO_STACK]);
    assert_eq!(trace_of(&evs[0].0).reason, ct_state::REPLY);
    assert_eq!(trace_of(&evs[0].0).dst_label, CIDR_ID);

    // Without aggregation the receive point shows too: from-stack, to-endpoint.
    h.maps
        .set_config(&Config {
            aggregation: Aggregation::None,
            ..Config::default()
        })
        .unwrap();
    let ack = tcp(
        Ipv4Addr::new(192, 168, 7, 9),
        5555,
        B_IP,
        80,
        tcp_flags::ACK,
    );
    assert_eq!(h.run(TO, &ack, LO).0, TC_ACT_OK);
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(kinds(&evs), vec![FROM_STACK, TO_LXC]);
    assert_eq!(trace_of(&evs[0].0).reason, ct_state::ESTABLISHED);
    assert_eq!(
        evs[0].1.trace_observation_point,
        TraceObservationPoint::FromStack as i32
    );
}

#[test]
fn audit_mode_forwards_and_reports_audit() {
    require_privileges!();
    let mut h = setup(|_, b| {
        b.enforce_ingress = true;
        b.audit = true;
    });
    let (rc, _) = h.run(FROM, &tcp(A_IP, 40000, B_IP, 80, tcp_flags::SYN), LO);
    assert_eq!(rc, TC_ACT_REDIRECT);
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(kinds(&evs), vec![VERDICT, TO_LXC]);
    let v = verdict_of(&evs[0].0);
    assert_eq!(
        (v.audited, v.verdict),
        (1, -i32::from(drop_reason::POLICY_DENIED))
    );
    assert_eq!(evs[0].1.verdict, Verdict::Audit as i32);
}

#[test]
fn aggregation_levels_bound_the_trace_rate() {
    require_privileges!();
    let mut h = setup(|_, _| {});
    let conn = |h: &Harness, sport: u16| {
        for flags in [
            tcp_flags::SYN,
            tcp_flags::ACK,
            tcp_flags::ACK,
            tcp_flags::PSH | tcp_flags::ACK,
            tcp_flags::ACK,
            tcp_flags::FIN | tcp_flags::ACK,
        ] {
            assert_eq!(
                h.run(FROM, &tcp(A_IP, sport, B_IP, 80, flags), LO).0,
                TC_ACT_REDIRECT
            );
        }
    };
    let set = |h: &mut Harness, aggregation| {
        h.maps
            .set_config(&Config {
                aggregation,
                ..Config::default()
            })
            .unwrap();
    };

    set(&mut h, Aggregation::None);
    conn(&h, 1000);
    let recs = h.drain();
    let k = kinds(&decode(&recs));
    assert_eq!(
        k.len(),
        12,
        "none: from-endpoint and to-endpoint per packet"
    );
    assert_eq!(k.iter().filter(|x| **x == FROM_LXC).count(), 6);

    set(&mut h, Aggregation::Low);
    conn(&h, 1001);
    let recs = h.drain();
    assert_eq!(
        kinds(&decode(&recs)),
        vec![TO_LXC; 6],
        "low: no receive points"
    );

    set(&mut h, Aggregation::Medium);
    conn(&h, 1002);
    let recs = h.drain();
    let evs = decode(&recs);
    // SYN (new), first ACK, FIN: the flag changes only.
    assert_eq!(kinds(&evs), vec![TO_LXC; 3]);
    assert_eq!(trace_of(&evs[0].0).reason, ct_state::NEW);
    assert_eq!(trace_of(&evs[1].0).reason, ct_state::ESTABLISHED);

    set(&mut h, Aggregation::Max);
    conn(&h, 1003);
    let recs = h.drain();
    assert_eq!(kinds(&decode(&recs)), vec![TO_LXC; 2], "max: SYN and FIN");
    assert_eq!(h.maps.lost_events().unwrap(), 0);
}

#[test]
fn arp_request_for_the_gateway_is_answered() {
    require_privileges!();
    let h = setup(|_, _| {});
    let gw = Ipv4Addr::new(169, 254, 1, 1);
    let mut req = Vec::new();
    req.extend_from_slice(&[0xff; 6]);
    req.extend_from_slice(&A_MAC);
    req.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    req.extend_from_slice(&A_MAC);
    req.extend_from_slice(&A_IP.octets());
    req.extend_from_slice(&[0; 6]);
    req.extend_from_slice(&gw.octets());

    let (rc, out) = h.run(FROM, &req, LO);
    assert_eq!(rc, TC_ACT_REDIRECT, "sent back out of the same veth");
    assert_eq!(&out[0..6], &A_MAC);
    assert_eq!(&out[6..12], &A_GW_MAC);
    assert_eq!(&out[20..22], &[0, 2], "ARP reply");
    assert_eq!(&out[22..28], &A_GW_MAC, "sender = gateway MAC");
    assert_eq!(&out[28..32], &gw.octets());
    assert_eq!(&out[32..38], &A_MAC);
    assert_eq!(&out[38..42], &A_IP.octets());

    // From an unknown sender: left to the stack.
    let mut other = req.clone();
    other[28..32].copy_from_slice(&[10, 9, 9, 9]);
    assert_eq!(h.run(FROM, &other, LO).0, TC_ACT_OK);
}

#[test]
fn policy_replace_is_a_diff_and_takes_effect_on_new_connections() {
    require_privileges!();
    let mut h = setup(|_, b| b.enforce_ingress = true);
    let allow80 = rule(B_EP, Direction::Ingress, A_ID, 6, 80, PolicyAction::Allow);
    let allow443 = rule(B_EP, Direction::Ingress, A_ID, 6, 443, PolicyAction::Allow);
    assert_eq!(h.maps.replace_policy(B_EP, &[allow80]).unwrap(), (1, 0));
    assert_eq!(
        h.run(FROM, &tcp(A_IP, 1, B_IP, 443, tcp_flags::SYN), LO).0,
        TC_ACT_SHOT
    );
    assert_eq!(
        h.maps.replace_policy(B_EP, &[allow80, allow443]).unwrap(),
        (1, 0)
    );
    assert_eq!(
        h.run(FROM, &tcp(A_IP, 2, B_IP, 443, tcp_flags::SYN), LO).0,
        TC_ACT_REDIRECT
    );
    assert_eq!(h.maps.replace_policy(B_EP, &[allow443]).unwrap(), (0, 1));
    assert_eq!(h.maps.policy_entries(B_EP).unwrap(), vec![allow443]);
    assert_eq!(
        h.run(FROM, &tcp(A_IP, 3, B_IP, 80, tcp_flags::SYN), LO).0,
        TC_ACT_SHOT
    );
    h.drain();
}

const R_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 9, 2);
const R_ID: u32 = 3003;
const R_NODE: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 2);
/// Any ifindex works under test_run: `bpf_redirect` only records it.
const TUNNEL_IFINDEX: u32 = LO;

/// Pods A and B, the remote pod R in the ipcache behind R_NODE, and the
/// tunnel device configured.
fn overlay_setup(f: impl FnOnce(&mut Endpoint, &mut Endpoint)) -> Harness {
    let mut h = setup(f);
    h.maps
        .upsert_prefix(R_IP, 32, R_ID, u32::from(R_NODE))
        .unwrap();
    h.maps
        .set_config(&Config {
            tunnel_ifindex: TUNNEL_IFINDEX,
            ..Config::default()
        })
        .unwrap();
    h
}

#[test]
fn remote_pod_is_sent_into_the_overlay_with_the_source_identity() {
    require_privileges!();
    let mut h = overlay_setup(|_, _| {});
    assert_eq!(h.maps.config().unwrap().tunnel_ifindex, TUNNEL_IFINDEX);

    let syn = tcp(A_IP, 41000, R_IP, 80, tcp_flags::SYN);
    let (rc, out) = h.run(FROM, &syn, LO);
    assert_eq!(rc, TC_ACT_REDIRECT, "bpf_redirect to the VXLAN device");
    assert_eq!(out, syn, "the device encapsulates; the frame is untouched");

    let ct = h
        .maps
        .ct_entry(&ct_key(A_IP, 41000, R_IP, 80, 6))
        .unwrap()
        .expect("CT entry created");
    assert_eq!((ct.src_identity, ct.dst_identity), (A_ID, R_ID));
    assert_eq!((ct.src_ep, ct.dst_ep), (A_EP, 0));

    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(kinds(&evs), vec![TO_OVERLAY]);
    let t = trace_of(&evs[0].0);
    assert_eq!((t.src_label, t.dst_label), (A_ID, R_ID));
    assert_eq!((t.hdr.source, t.dst_id), (A_EP, 0));
    assert_eq!(t.ifindex, TUNNEL_IFINDEX);
    assert_eq!(t.reason, ct_state::NEW);
    let f = &evs[0].1;
    assert_eq!(
        f.trace_observation_point,
        TraceObservationPoint::ToOverlay as i32
    );
    assert_eq!(f.verdict, Verdict::Forwarded as i32);
    assert_eq!(f.destination.as_ref().unwrap().identity, R_ID);

    // Without a tunnel device the same destination goes up the stack.
    h.maps.set_config(&Config::default()).unwrap();
    let syn = tcp(A_IP, 41001, R_IP, 80, tcp_flags::SYN);
    assert_eq!(h.run(FROM, &syn, LO).0, TC_ACT_OK);
    let recs = h.drain();
    assert_eq!(kinds(&decode(&recs)), vec![TO_STACK]);
}

#[test]
fn egress_policy_applies_before_the_overlay() {
    require_privileges!();
    // A may talk to B only: the remote identity is denied by default.
    let mut h = overlay_setup(|a, _| a.enforce_egress = true);
    h.maps
        .upsert_policy(&rule(
            A_EP,
            Direction::Egress,
            B_ID,
            0,
            0,
            PolicyAction::Allow,
        ))
        .unwrap();
    let syn = tcp(A_IP, 41100, R_IP, 80, tcp_flags::SYN);
    assert_eq!(h.run(FROM, &syn, LO).0, TC_ACT_SHOT);
    assert!(
        h.maps
            .ct_entry(&ct_key(A_IP, 41100, R_IP, 80, 6))
            .unwrap()
            .is_none()
    );
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(
        kinds(&evs),
        vec![VERDICT, drop_kind(drop_reason::POLICY_DENIED)]
    );
    let v = verdict_of(&evs[0].0);
    assert_eq!((v.local_label, v.remote_label), (A_ID, R_ID));
    assert_eq!(v.direction, direction::EGRESS);
    let d = drop_of(&evs[1].0);
    assert_eq!((d.src_label, d.dst_label), (A_ID, R_ID));
    assert_eq!(d.direction, direction::EGRESS);
    assert_eq!(evs[1].1.drop_reason_desc, DropReason::PolicyDenied as i32);

    // Allowing the remote identity opens the tunnel.
    h.maps
        .upsert_policy(&rule(
            A_EP,
            Direction::Egress,
            R_ID,
            0,
            0,
            PolicyAction::Allow,
        ))
        .unwrap();
    let syn = tcp(A_IP, 41101, R_IP, 80, tcp_flags::SYN);
    assert_eq!(h.run(FROM, &syn, LO).0, TC_ACT_REDIRECT);
    let recs = h.drain();
    assert_eq!(kinds(&decode(&recs)), vec![VERDICT, TO_OVERLAY]);
}

#[test]
fn identities_beyond_the_24_bit_vni_are_not_tunneled() {
    require_privileges!();
    // 2^24: the VNI would silently carry 0.
    let mut h = overlay_setup(|a, _| a.identity = 1 << 24);
    let syn = tcp(A_IP, 41200, R_IP, 80, tcp_flags::SYN);
    assert_eq!(h.run(FROM, &syn, LO).0, TC_ACT_SHOT);
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(kinds(&evs), vec![drop_kind(drop_reason::INVALID_IDENTITY)]);
    let d = drop_of(&evs[0].0);
    assert_eq!((d.src_label, d.dst_label), (1 << 24, R_ID));
    assert_eq!(
        evs[0].1.drop_reason_desc,
        DropReason::InvalidIdentity as i32
    );
}

#[test]
fn from_overlay_without_tunnel_metadata_is_dropped() {
    require_privileges!();
    let mut h = overlay_setup(|_, _| {});
    // test_run's skb never carries tunnel metadata (no VXLAN device
    // decapsulated it): the sender's identity is unknown.
    let syn = pkt(
        R_IP,
        A_IP,
        L4::Tcp {
            sport: 5000,
            dport: 80,
            flags: tcp_flags::SYN,
        },
    );
    assert_eq!(h.run(OVERLAY, &syn, LO).0, TC_ACT_SHOT);
    assert!(
        h.maps
            .ct_entry(&ct_key(R_IP, 5000, A_IP, 80, 6))
            .unwrap()
            .is_none()
    );
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(
        kinds(&evs),
        vec![drop_kind(drop_reason::ERROR_RETRIEVING_TUNNEL_KEY)]
    );
    let d = drop_of(&evs[0].0);
    assert_eq!(d.direction, direction::INGRESS);
    assert_eq!(d.src_label, 0);
    assert_eq!(
        evs[0].1.drop_reason_desc,
        DropReason::ErrorRetrievingTunnelKey as i32
    );
    assert!(
        h.maps
            .drop_stats()
            .unwrap()
            .iter()
            .any(|(r, s)| *r == drop_reason::ERROR_RETRIEVING_TUNNEL_KEY && s.packets == 1)
    );
}

// ---- services (dp_lb.h) ------------------------------------------------------
//
// Frontend VIP 10.96.0.10:80 (rev_nat_id 7); backends: B (local pod,
// 10.0.2.2:8080, id 1) and two addresses of no local pod, C (10.0.3.2, id 2)
// and D (10.0.4.2, id 3), which leave for the stack.

const VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
const VIP_PORT: u16 = 80;
const REV_NAT: u16 = 7;
const C_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 3, 2);
const D_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 4, 2);
const BE_PORT: u16 = 8080;

fn frontend(proto: LbProto) -> Frontend {
    Frontend {
        vip: VIP,
        port: VIP_PORT,
        proto,
        rev_nat_id: REV_NAT,
        flags: ServiceFlags::default(),
        algorithm: LbAlgorithm::Random,
    }
}

fn backend(ip: Ipv4Addr, proto: LbProto) -> Backend {
    Backend {
        ip,
        port: BE_PORT,
        proto,
        terminating: false,
    }
}

/// Pods A and B, backends 1 = B, 2 = C, 3 = D (TCP and UDP ids +10), no
/// service yet; traces at every point (aggregation none).
fn lb_setup() -> (Harness, LbMaps) {
    let h = setup(|_, _| {});
    let mut lb = LbMaps::open(h.scratch.pin_dir()).unwrap();
    for (id, ip) in [(1, B_IP), (2, C_IP), (3, D_IP)] {
        lb.upsert_backend(id, &backend(ip, LbProto::Tcp)).unwrap();
        lb.upsert_backend(id + 10, &backend(ip, LbProto::Udp))
            .unwrap();
    }
    (h, lb)
}

fn all_traces(h: &mut Harness) {
    h.maps
        .set_config(&Config {
            aggregation: Aggregation::None,
            ..Config::default()
        })
        .unwrap();
}

fn sum16(data: &[u8]) -> u32 {
    data.chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

fn fold(mut s: u32) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// (L4 offset, L4 length, checksum offset in the frame) of an IPv4 TCP/UDP frame.
fn l4_span(f: &[u8]) -> (usize, usize, usize) {
    let ihl = usize::from(f[14] & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
    let off = 14 + ihl;
    let csum = off + if f[23] == 6 { 16 } else { 6 };
    (off, total - ihl, csum)
}

fn pseudo_sum(f: &[u8], l4_len: usize) -> u32 {
    sum16(&f[26..34]) + u32::from(f[23]) + l4_len as u32
}

/// Writes a valid L4 checksum (the builder leaves it 0).
fn with_l4_csum(mut f: Vec<u8>) -> Vec<u8> {
    let (off, len, c) = l4_span(&f);
    f[c..c + 2].copy_from_slice(&[0, 0]);
    let mut v = !fold(pseudo_sum(&f, len) + sum16(&f[off..off + len]));
    if v == 0 && f[23] == 17 {
        v = 0xffff;
    }
    f[c..c + 2].copy_from_slice(&v.to_be_bytes());
    f
}

fn assert_checksums_valid(f: &[u8]) {
    assert_eq!(fold(sum16(&f[14..34])), 0xffff, "IPv4 header checksum");
    let (off, len, c) = l4_span(f);
    if f[23] == 17 && f[c..c + 2] == [0, 0] {
        return;
    }
    assert_eq!(
        fold(pseudo_sum(f, len) + sum16(&f[off..off + len])),
        0xffff,
        "L4 checksum"
    );
}

fn daddr(f: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(f[30], f[31], f[32], f[33])
}

fn saddr(f: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(f[26], f[27], f[28], f[29])
}

fn ports(f: &[u8]) -> (u16, u16) {
    let (off, ..) = l4_span(f);
    (
        u16::from_be_bytes([f[off], f[off + 1]]),
        u16::from_be_bytes([f[off + 2], f[off + 3]]),
    )
}

fn udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    Packet::new(IpAddr::V4(src), IpAddr::V4(dst), L4::Udp { sport, dport })
        .macs(A_MAC, A_GW_MAC)
        .payload(24)
        .build()
}

/// The backend id the service CT entry of A:sport → VIP remembers.
fn chosen(h: &Harness, sport: u16, proto: u8) -> u32 {
    let e = h
        .maps
        .ct_entry(&ct_key(A_IP, sport, VIP, VIP_PORT, proto))
        .unwrap()
        .expect("service CT entry");
    assert_ne!(e.flags & datapath::maps::ct_flags::SERVICE, 0);
    assert_eq!(e.rev_nat_id, REV_NAT);
    e.backend_id
}

#[test]
fn service_tcp_and_udp_are_translated_to_the_backend_with_valid_checksums() {
    require_privileges!();
    let (mut h, mut lb) = lb_setup();
    all_traces(&mut h);
    lb.upsert_service(&frontend(LbProto::Tcp), &[1]).unwrap();
    lb.upsert_service(&frontend(LbProto::Udp), &[11]).unwrap();

    let syn = with_l4_csum(tcp(A_IP, 42000, VIP, VIP_PORT, tcp_flags::SYN));
    assert_checksums_valid(&syn);
    let (rc, out) = h.run(FROM, &syn, LO);
    assert_eq!(rc, TC_ACT_REDIRECT, "B is local: redirect_peer");
    assert_eq!(daddr(&out), B_IP);
    assert_eq!(ports(&out), (42000, BE_PORT));
    assert_eq!(saddr(&out), A_IP);
    assert_eq!(&out[0..6], &B_MAC);
    assert_checksums_valid(&out);

    // Two CT entries: the service one remembers the backend, the backend
    // one is the connection policy admitted, with the reverse NAT.
    assert_eq!(chosen(&h, 42000, 6), 1);
    let ct = h
        .maps
        .ct_entry(&ct_key(A_IP, 42000, B_IP, BE_PORT, 6))
        .unwrap()
        .expect("backend CT entry");
    assert_eq!(ct.rev_nat_id, REV_NAT);
    assert_eq!((ct.src_identity, ct.dst_identity), (A_ID, B_ID));
    assert_eq!(ct.flags & datapath::maps::ct_flags::SERVICE, 0);

    // The translation as Cilium's socket LB reports it (trace-sock before
    // and after), then from-endpoint still shows the VIP; to-endpoint the
    // backend.
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(kinds(&evs), vec![SOCK_PRE, SOCK_POST, FROM_LXC, TO_LXC]);
    let (pre, post) = (sock_of(&evs[0].0), sock_of(&evs[1].0));
    assert_eq!((pre.hdr.source, pre.src_label), (A_EP, A_ID));
    assert_eq!((post.hdr.source, post.src_label), (A_EP, A_ID));
    assert_eq!((pre.src_addr(), post.src_addr()), (A_IP, A_IP));
    assert_eq!((pre.dst_addr(), pre.dst_port), (VIP, VIP_PORT));
    assert_eq!((post.dst_addr(), post.dst_port), (B_IP, BE_PORT));
    assert_eq!((pre.dst_label, post.dst_label), (0, B_ID));
    assert_eq!((pre.l4_proto, post.l4_proto), (sock_l4::TCP, sock_l4::TCP));
    assert_eq!((pre.cgroup_id, pre.flags, pre.hdr.cap_len), (0, 0, 0));
    assert_ne!(pre.sock_cookie, 0);
    assert_eq!(
        pre.sock_cookie, post.sock_cookie,
        "one connection, one cookie"
    );
    let (fpre, fpost) = (&evs[0].1, &evs[1].1);
    assert_eq!(fpre.verdict, Verdict::Traced as i32);
    assert_eq!(fpost.verdict, Verdict::Translated as i32);
    assert_eq!(fpre.ip.as_ref().unwrap().destination, VIP.to_string());
    assert_eq!(fpost.ip.as_ref().unwrap().destination, B_IP.to_string());
    assert_eq!(fpre.summary, "TCP");
    assert_eq!(daddr(evs[2].0.payload()), VIP);
    assert_eq!(trace_of(&evs[2].0).dst_label, B_ID, "backend identity");
    assert_eq!(daddr(evs[3].0.payload()), B_IP);
    let ip = evs[3].1.ip.as_ref().unwrap();
    assert_eq!(ip.destination, B_IP.to_string());

    // The next packet of the connection is no new translation.
    let ack = with_l4_csum(tcp(A_IP, 42000, VIP, VIP_PORT, tcp_flags::ACK));
    assert_eq!(h.run(FROM, &ack, LO).0, TC_ACT_REDIRECT);
    let recs = h.drain();
    assert_eq!(kinds(&decode(&recs)), vec![FROM_LXC, TO_LXC]);

    // UDP, with a checksum and with none (0 stays 0).
    let dgram = with_l4_csum(udp(A_IP, 5353, VIP, VIP_PORT));
    let (rc, out) = h.run(FROM, &dgram, LO);
    assert_eq!(rc, TC_ACT_REDIRECT);
    assert_eq!((daddr(&out), ports(&out)), (B_IP, (5353, BE_PORT)));
    assert_ne!(out[14 + 20 + 6..14 + 20 + 8], [0, 0]);
    assert_checksums_valid(&out);
    assert_eq!(chosen(&h, 5353, 17), 11);
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(kinds(&evs), vec![SOCK_PRE, SOCK_POST, FROM_LXC, TO_LXC]);
    assert_eq!(sock_of(&evs[1].0).l4_proto, sock_l4::UDP);
    assert_eq!(evs[1].1.summary, "UDP");
    let bare = udp(A_IP, 5354, VIP, VIP_PORT);
    let (rc, out) = h.run(FROM, &bare, LO);
    assert_eq!(rc, TC_ACT_REDIRECT);
    assert_eq!(daddr(&out), B_IP);
    assert_eq!(
        out[14 + 20 + 6..14 + 20 + 8],
        [0, 0],
        "no UDP checksum stays none"
    );
    assert_checksums_valid(&out);

    // Another port of the VIP is no frontend: untouched, to the stack.
    let other = tcp(A_IP, 42001, VIP, 81, tcp_flags::SYN);
    let (rc, out) = h.run(FROM, &other, LO);
    assert_eq!((rc, out), (TC_ACT_OK, other));
}

#[test]
fn translations_are_reported_as_trace_sock_at_every_aggregation_level() {
    require_privileges!();
    let (mut h, mut lb) = lb_setup();
    lb.upsert_service(&frontend(LbProto::Tcp), &[1]).unwrap();
    for (i, agg) in [Aggregation::Low, Aggregation::Medium, Aggregation::Max]
        .into_iter()
        .enumerate()
    {
        h.maps
            .set_config(&Config {
                aggregation: agg,
                ..Config::default()
            })
            .unwrap();
        let sport = 44100 + i as u16;
        let syn = with_l4_csum(tcp(A_IP, sport, VIP, VIP_PORT, tcp_flags::SYN));
        assert_eq!(h.run(FROM, &syn, LO).0, TC_ACT_REDIRECT);
        let recs = h.drain();
        let evs = decode(&recs);
        // from-endpoint, which alone showed the VIP, is suppressed from
        // low on; the translation is not.
        assert_eq!(
            kinds(&evs),
            vec![SOCK_PRE, SOCK_POST, TO_LXC],
            "aggregation {agg:?}"
        );
        let svc_flow = &evs[0].1;
        assert_eq!(svc_flow.ip.as_ref().unwrap().destination, VIP.to_string());
        let l4 = svc_flow.l4.as_ref().and_then(|l| l.protocol.clone());
        let Some(Protocol::Tcp(t)) = l4 else {
            panic!("tcp: {l4:?}")
        };
        assert_eq!(
            (t.source_port, t.destination_port),
            (0, u32::from(VIP_PORT))
        );
        assert_eq!(sock_of(&evs[1].0).dst_addr(), B_IP);
    }
}

#[test]
fn every_backend_is_chosen_over_new_connections() {
    require_privileges!();
    let (h, mut lb) = lb_setup();
    lb.upsert_service(&frontend(LbProto::Tcp), &[1, 2, 3])
        .unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for sport in 43000..43060 {
        let (rc, out) = h.run(FROM, &tcp(A_IP, sport, VIP, VIP_PORT, tcp_flags::SYN), LO);
        let id = chosen(&h, sport, 6);
        let want = [B_IP, C_IP, D_IP][id as usize - 1];
        assert_eq!(daddr(&out), want, "packet goes where the CT entry says");
        assert_eq!(rc, if id == 1 { TC_ACT_REDIRECT } else { TC_ACT_OK });
        *seen.entry(id).or_insert(0) += 1;
    }
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        vec![1, 2, 3],
        "{seen:?}"
    );
}

#[test]
fn established_connection_keeps_its_backend_when_the_backend_set_changes() {
    require_privileges!();
    let (h, mut lb) = lb_setup();
    lb.upsert_service(&frontend(LbProto::Tcp), &[2]).unwrap();
    let (_, out) = h.run(FROM, &tcp(A_IP, 44000, VIP, VIP_PORT, tcp_flags::SYN), LO);
    assert_eq!(daddr(&out), C_IP);

    lb.upsert_service(&frontend(LbProto::Tcp), &[3]).unwrap();
    let list = lb.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].active.clone(), list[0].terminating.clone()),
        (vec![3], vec![])
    );

    let ack = tcp(A_IP, 44000, VIP, VIP_PORT, tcp_flags::ACK);
    let (rc, out) = h.run(FROM, &ack, LO);
    assert_eq!(
        (rc, daddr(&out)),
        (TC_ACT_OK, C_IP),
        "still the first backend"
    );
    assert_eq!(chosen(&h, 44000, 6), 2);
    let (_, out) = h.run(FROM, &tcp(A_IP, 44001, VIP, VIP_PORT, tcp_flags::SYN), LO);
    assert_eq!(daddr(&out), D_IP, "a new connection gets the new set");

    // A backend that is gone altogether is replaced.
    lb.upsert_service(&frontend(LbProto::Tcp), &[3]).unwrap();
    assert!(lb.delete_backend(2).unwrap());
    let (_, out) = h.run(FROM, &ack, LO);
    assert_eq!(daddr(&out), D_IP);
}

#[test]
fn replies_from_the_backend_come_from_the_vip() {
    require_privileges!();
    let (mut h, mut lb) = lb_setup();
    lb.upsert_service(&frontend(LbProto::Tcp), &[1]).unwrap();
    lb.upsert_service(&frontend(LbProto::Udp), &[12]).unwrap();
    h.run(FROM, &tcp(A_IP, 45000, VIP, VIP_PORT, tcp_flags::SYN), LO);
    h.drain();

    // SYN-ACK from the local backend B, leaving through B's veth.
    let synack = with_l4_csum(tcp(
        B_IP,
        BE_PORT,
        A_IP,
        45000,
        tcp_flags::SYN | tcp_flags::ACK,
    ));
    let (rc, out) = h.run(FROM, &synack, LO);
    assert_eq!(rc, TC_ACT_REDIRECT, "into A");
    assert_eq!((saddr(&out), daddr(&out)), (VIP, A_IP));
    assert_eq!(ports(&out), (VIP_PORT, 45000));
    assert_eq!(&out[0..6], &A_MAC);
    assert_checksums_valid(&out);
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(kinds(&evs), vec![TO_LXC]);
    assert_eq!(trace_of(&evs[0].0).reason, ct_state::REPLY);
    assert_eq!(saddr(evs[0].0.payload()), VIP, "the client's view");

    // A UDP reply of remote backend C, arriving from the stack.
    h.run(FROM, &udp(A_IP, 6000, VIP, VIP_PORT), LO);
    let recs = h.drain();
    let fwd = decode(&recs);
    assert_eq!(kinds(&fwd)[..2], [SOCK_PRE, SOCK_POST]);
    let cookie = sock_of(&fwd[0].0).sock_cookie;
    let reply = with_l4_csum(pkt(
        C_IP,
        A_IP,
        L4::Udp {
            sport: BE_PORT,
            dport: 6000,
        },
    ));
    let (rc, out) = h.run(TO, &reply, LO);
    assert_eq!(rc, TC_ACT_OK);
    assert_eq!((saddr(&out), ports(&out)), (VIP, (VIP_PORT, 6000)));
    assert_checksums_valid(&out);
    // The reverse translation is no trace-sock at medium aggregation.
    let recs = h.drain();
    assert_eq!(kinds(&decode(&recs)), vec![TO_LXC]);

    // Traffic from a backend that is no reply is left alone.
    let fresh = tcp(B_IP, BE_PORT, A_IP, 45999, tcp_flags::SYN);
    let (_, out) = h.run(FROM, &fresh, LO);
    assert_eq!(saddr(&out), B_IP);

    // Two connections, each translated once and answered once.
    assert_eq!(
        lb.stats().unwrap(),
        datapath::lb::LbStats {
            new_connections: 2,
            translated: 2,
            reverse_translated: 2,
        }
    );

    // At aggregation none a UDP reply is reported as Cilium's socket LB
    // reports a received datagram: pre-xlate-rev (the backend) and
    // post-xlate-rev (the frontend), with the connection's cookie.
    h.drain();
    all_traces(&mut h);
    let (rc, _) = h.run(TO, &reply, LO);
    assert_eq!(rc, TC_ACT_OK);
    let recs = h.drain();
    let evs = decode(&recs);
    let pre_rev = (msg_type::TRACE_SOCK, xlate_point::PRE_DIRECTION_REV);
    let post_rev = (msg_type::TRACE_SOCK, xlate_point::POST_DIRECTION_REV);
    assert_eq!(kinds(&evs), vec![FROM_STACK, pre_rev, post_rev, TO_LXC]);
    let (pre, post) = (sock_of(&evs[1].0), sock_of(&evs[2].0));
    assert_eq!(
        (pre.hdr.source, pre.src_label, pre.src_addr()),
        (A_EP, A_ID, A_IP)
    );
    assert_eq!((pre.dst_addr(), pre.dst_port), (C_IP, BE_PORT));
    assert_eq!(
        (post.dst_addr(), post.dst_port, post.dst_label),
        (VIP, VIP_PORT, 0)
    );
    assert_eq!((pre.l4_proto, post.l4_proto), (sock_l4::UDP, sock_l4::UDP));
    assert_eq!((pre.sock_cookie, post.sock_cookie), (cookie, cookie));
    // As flows: the backend / the VIP is the source, the client the
    // destination.
    let (fpre, fpost) = (&evs[1].1, &evs[2].1);
    assert_eq!(fpre.verdict, Verdict::Traced as i32);
    assert_eq!(fpost.verdict, Verdict::Translated as i32);
    let ip = fpost.ip.as_ref().unwrap();
    assert_eq!(
        (ip.source.as_str(), ip.destination.as_str()),
        ("10.96.0.10", "10.0.1.2")
    );
    let Some(Protocol::Udp(u)) = fpost.l4.as_ref().and_then(|l| l.protocol.clone()) else {
        panic!("udp")
    };
    assert_eq!(
        (u.source_port, u.destination_port),
        (u32::from(VIP_PORT), 0)
    );
    // TCP replies never are (Cilium reports the reverse points for UDP only).
    let synack2 = with_l4_csum(tcp(B_IP, BE_PORT, A_IP, 45000, tcp_flags::ACK));
    h.run(FROM, &synack2, LO);
    let recs = h.drain();
    assert!(
        decode(&recs)
            .iter()
            .all(|(e, _)| e.hdr().r#type != msg_type::TRACE_SOCK),
        "no trace-sock for TCP replies"
    );
}

#[test]
fn a_pod_reaching_itself_through_a_service_is_hairpinned() {
    require_privileges!();
    let (h, mut lb) = lb_setup();
    lb.upsert_backend(5, &backend(A_IP, LbProto::Tcp)).unwrap();
    lb.upsert_service(&frontend(LbProto::Tcp), &[5]).unwrap();
    let hairpin = ebpf::maps::LB_HAIRPIN_IP;

    let syn = with_l4_csum(tcp(A_IP, 45500, VIP, VIP_PORT, tcp_flags::SYN));
    let (rc, out) = h.run(FROM, &syn, LO);
    assert_eq!(rc, TC_ACT_REDIRECT, "back into A");
    assert_eq!((saddr(&out), daddr(&out)), (hairpin, A_IP));
    assert_eq!(ports(&out), (45500, BE_PORT));
    assert_eq!(&out[0..6], &A_MAC);
    assert_checksums_valid(&out);

    let synack = with_l4_csum(tcp(
        A_IP,
        BE_PORT,
        hairpin,
        45500,
        tcp_flags::SYN | tcp_flags::ACK,
    ));
    let (rc, out) = h.run(FROM, &synack, LO);
    assert_eq!(rc, TC_ACT_REDIRECT);
    assert_eq!((saddr(&out), daddr(&out)), (VIP, A_IP));
    assert_eq!(ports(&out), (VIP_PORT, 45500));
    assert_eq!(&out[0..6], &A_MAC);
    assert_checksums_valid(&out);
}

#[test]
fn a_service_without_backends_drops_with_service_backend_not_found() {
    require_privileges!();
    let (mut h, mut lb) = lb_setup();
    lb.upsert_service(&frontend(LbProto::Tcp), &[]).unwrap();
    let (rc, _) = h.run(FROM, &tcp(A_IP, 46000, VIP, VIP_PORT, tcp_flags::SYN), LO);
    assert_eq!(rc, TC_ACT_SHOT);
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(
        kinds(&evs),
        vec![drop_kind(drop_reason::SERVICE_BACKEND_NOT_FOUND)]
    );
    let d = drop_of(&evs[0].0);
    assert_eq!((d.hdr.source, d.src_label), (A_EP, A_ID));
    assert_eq!(
        evs[0].1.drop_reason_desc,
        DropReason::ServiceBackendNotFound as i32
    );
    assert_eq!(evs[0].1.verdict, Verdict::Dropped as i32);
    assert!(
        h.maps
            .drop_stats()
            .unwrap()
            .iter()
            .any(|(r, s)| *r == drop_reason::SERVICE_BACKEND_NOT_FOUND && s.packets == 1)
    );
    assert!(
        h.maps
            .ct_entry(&ct_key(A_IP, 46000, VIP, VIP_PORT, 6))
            .unwrap()
            .is_none()
    );

    // Only terminating backends: the same.
    let mut t = backend(C_IP, LbProto::Tcp);
    t.terminating = true;
    lb.upsert_backend(2, &t).unwrap();
    lb.upsert_service(&frontend(LbProto::Tcp), &[2]).unwrap();
    let (rc, _) = h.run(FROM, &tcp(A_IP, 46001, VIP, VIP_PORT, tcp_flags::SYN), LO);
    assert_eq!(rc, TC_ACT_SHOT);
}

#[test]
fn a_terminating_backend_gets_no_new_connections_but_keeps_established_ones() {
    require_privileges!();
    let (h, mut lb) = lb_setup();
    lb.upsert_service(&frontend(LbProto::Tcp), &[2]).unwrap();
    let (_, out) = h.run(FROM, &tcp(A_IP, 47000, VIP, VIP_PORT, tcp_flags::SYN), LO);
    assert_eq!(daddr(&out), C_IP);

    lb.upsert_service(&frontend(LbProto::Tcp), &[2, 3]).unwrap();
    // Marked terminating without rewriting the service: the kernel skips it.
    let mut t = backend(C_IP, LbProto::Tcp);
    t.terminating = true;
    lb.upsert_backend(2, &t).unwrap();
    for sport in 47100..47140 {
        let (_, out) = h.run(FROM, &tcp(A_IP, sport, VIP, VIP_PORT, tcp_flags::SYN), LO);
        assert_eq!(daddr(&out), D_IP, "sport {sport}");
    }
    let (_, out) = h.run(FROM, &tcp(A_IP, 47000, VIP, VIP_PORT, tcp_flags::ACK), LO);
    assert_eq!(daddr(&out), C_IP, "the established connection stays");

    // Re-writing the service moves it to the terminating slots.
    lb.upsert_service(&frontend(LbProto::Tcp), &[2, 3]).unwrap();
    let s = &lb.list().unwrap()[0];
    assert_eq!(
        (s.active.clone(), s.terminating.clone()),
        (vec![3], vec![2])
    );
    let e = lb.delete_backend(2).unwrap_err().to_string();
    assert!(
        e.contains("still used by a service") && e.contains("10.96.0.10:80/TCP"),
        "{e}"
    );

    // The split may also be given per frontend (backend 1 is not flagged).
    lb.upsert_service_slots(&frontend(LbProto::Tcp), &[3], &[1])
        .unwrap();
    for sport in 47200..47220 {
        let (_, out) = h.run(FROM, &tcp(A_IP, sport, VIP, VIP_PORT, tcp_flags::SYN), LO);
        assert_eq!(daddr(&out), D_IP, "sport {sport}");
    }
    let s = &lb.list().unwrap()[0];
    assert_eq!(
        (s.active.clone(), s.terminating.clone()),
        (vec![3], vec![1])
    );
}

#[test]
fn maglev_and_affinity_choose_stably_and_spread() {
    require_privileges!();
    let (h, mut lb) = lb_setup();
    let mut f = frontend(LbProto::Tcp);
    f.algorithm = LbAlgorithm::Maglev;
    lb.upsert_service(&f, &[1, 2, 3]).unwrap();
    let table = lb.maglev_entries(REV_NAT).unwrap();
    assert_eq!(
        table,
        datapath::lb::maglev_table(&[1, 2, 3], datapath::lb::LB_MAGLEV_M)
    );

    let mut seen = std::collections::BTreeSet::new();
    for sport in 48000..48060 {
        h.run(FROM, &tcp(A_IP, sport, VIP, VIP_PORT, tcp_flags::SYN), LO);
        let first = chosen(&h, sport, 6);
        seen.insert(first);
        // Forget the connection: the same tuple hashes to the same backend.
        let mut m = datapath::Maps::open(h.scratch.pin_dir()).unwrap();
        assert!(m.ct_flush_ip(VIP).unwrap() >= 1);
        h.run(FROM, &tcp(A_IP, sport, VIP, VIP_PORT, tcp_flags::SYN), LO);
        assert_eq!(chosen(&h, sport, 6), first);
    }
    assert_eq!(seen.len(), 3);

    // sessionAffinity: ClientIP: every connection of A goes to one backend.
    f.algorithm = LbAlgorithm::Random;
    f.flags.session_affinity_s = Some(10800);
    lb.upsert_service(&f, &[1, 2, 3]).unwrap();
    h.run(FROM, &tcp(A_IP, 49000, VIP, VIP_PORT, tcp_flags::SYN), LO);
    let first = chosen(&h, 49000, 6);
    assert_eq!(
        lb.affinity(A_IP, REV_NAT).unwrap().map(|a| a.0),
        Some(first)
    );
    for sport in 49001..49030 {
        h.run(FROM, &tcp(A_IP, sport, VIP, VIP_PORT, tcp_flags::SYN), LO);
        assert_eq!(chosen(&h, sport, 6), first);
    }
}

#[test]
fn policy_applies_to_the_backend_after_translation() {
    require_privileges!();
    let (mut h, mut lb) = lb_setup();
    let mut a = endpoint(A_IP, A_EP, A_ID, A_MAC, A_GW_MAC);
    a.enforce_egress = true;
    h.maps.upsert_endpoint(&a).unwrap();
    h.maps
        .upsert_policy(&rule(
            A_EP,
            Direction::Egress,
            B_ID,
            6,
            BE_PORT,
            PolicyAction::Allow,
        ))
        .unwrap();
    lb.upsert_service(&frontend(LbProto::Tcp), &[1]).unwrap();
    let (rc, _) = h.run(FROM, &tcp(A_IP, 50000, VIP, VIP_PORT, tcp_flags::SYN), LO);
    assert_eq!(
        rc, TC_ACT_REDIRECT,
        "allowed to B:8080, reached through the VIP"
    );
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(kinds(&evs), vec![SOCK_PRE, SOCK_POST, VERDICT, TO_LXC]);
    let v = verdict_of(&evs[2].0);
    assert_eq!((v.remote_label, v.dst_port), (B_ID, BE_PORT));

    // C is world to A's policy: denied, the drop names the backend.
    lb.upsert_service(&frontend(LbProto::Tcp), &[2]).unwrap();
    let (rc, _) = h.run(FROM, &tcp(A_IP, 50001, VIP, VIP_PORT, tcp_flags::SYN), LO);
    assert_eq!(rc, TC_ACT_SHOT);
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(
        kinds(&evs),
        vec![
            SOCK_PRE,
            SOCK_POST,
            VERDICT,
            drop_kind(drop_reason::POLICY_DENIED)
        ]
    );
    assert_eq!(daddr(evs[3].0.payload()), C_IP);
    assert_eq!(drop_of(&evs[3].0).dst_label, identity::WORLD);
}

#[test]
fn lb_maps_refuse_bad_input_and_change_nothing() {
    require_privileges!();
    let (_h, mut lb) = lb_setup();
    let err = |r: datapath::Result<()>| r.unwrap_err().to_string();
    let mut f = frontend(LbProto::Tcp);
    f.rev_nat_id = 0;
    assert!(err(lb.upsert_service(&f, &[1])).contains("rev_nat_id"));
    f = frontend(LbProto::Tcp);
    f.port = 0;
    assert!(err(lb.upsert_service(&f, &[1])).contains("frontend port"));
    f = frontend(LbProto::Tcp);
    assert!(err(lb.upsert_service(&f, &[1, 1])).contains("duplicate"));
    assert!(err(lb.upsert_service(&f, &[99])).contains("not in lb4_backends"));
    assert!(err(lb.upsert_service(&f, &[11])).contains("protocol"));
    f.algorithm = LbAlgorithm::Maglev;
    f.rev_nat_id = 300;
    assert!(err(lb.upsert_service(&f, &[1])).contains("Maglev"));
    assert!(lb.list().unwrap().is_empty());
    assert!(err(lb.upsert_backend(0, &backend(B_IP, LbProto::Tcp))).contains("backend id"));

    // rev_nat_id belongs to one frontend address.
    lb.upsert_service(&frontend(LbProto::Tcp), &[1]).unwrap();
    lb.upsert_service(&frontend(LbProto::Udp), &[11]).unwrap();
    let mut other = frontend(LbProto::Tcp);
    other.vip = Ipv4Addr::new(10, 96, 0, 11);
    assert!(err(lb.upsert_service(&other, &[1])).contains("in use by another frontend"));
    assert_eq!(lb.list().unwrap().len(), 2);

    // Delete: the shared reverse NAT stays until the last frontend goes.
    assert!(lb.delete_service(VIP, VIP_PORT, LbProto::Tcp).unwrap());
    assert!(!lb.delete_service(VIP, VIP_PORT, LbProto::Tcp).unwrap());
    lb.upsert_service(&other, &[1])
        .expect_err("rev_nat 7 still held by the UDP frontend");
    assert!(lb.delete_service(VIP, VIP_PORT, LbProto::Udp).unwrap());
    lb.upsert_service(&other, &[1]).unwrap();
    assert_eq!(lb.list().unwrap()[0].frontend, other);
}

// ---- NodePort (from_netdev) ------------------------------------------------------
//
// The node's address 192.168.50.1 with NodePort 30080 (rev_nat_id 8); an
// external client 172.16.0.9 with no ipcache entry (world).

const NETDEV: &str = "from_netdev";
const NODE_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 1);
const NODE_PORT: u16 = 30080;
const CLIENT: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 9);
const FROM_NETWORK: (u8, u8) = (msg_type::TRACE, trace_point::FROM_NETWORK);
const TO_NETWORK: (u8, u8) = (msg_type::TRACE, trace_point::TO_NETWORK);

fn nodeport(port: u16, rev_nat_id: u16) -> Frontend {
    Frontend {
        vip: NODE_IP,
        port,
        proto: LbProto::Tcp,
        rev_nat_id,
        flags: ServiceFlags {
            node_port: true,
            session_affinity_s: None,
        },
        algorithm: LbAlgorithm::Random,
    }
}

#[test]
fn nodeport_from_outside_reaches_a_local_backend_and_replies_from_the_node() {
    require_privileges!();
    let (mut h, mut lb) = lb_setup();
    all_traces(&mut h);
    lb.upsert_service(&nodeport(NODE_PORT, 8), &[1]).unwrap();

    let syn = with_l4_csum(pkt(
        CLIENT,
        NODE_IP,
        L4::Tcp {
            sport: 51000,
            dport: NODE_PORT,
            flags: tcp_flags::SYN,
        },
    ));
    let (rc, out) = h.run(NETDEV, &syn, LO);
    assert_eq!(rc, TC_ACT_REDIRECT, "redirect_peer into B");
    assert_eq!((daddr(&out), ports(&out)), (B_IP, (51000, BE_PORT)));
    assert_eq!(&out[0..6], &B_MAC);
    assert_checksums_valid(&out);
    let ct = h
        .maps
        .ct_entry(&ct_key(CLIENT, 51000, B_IP, BE_PORT, 6))
        .unwrap()
        .expect("backend CT entry");
    assert_eq!((ct.rev_nat_id, ct.src_identity), (8, identity::WORLD));
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(kinds(&evs), vec![FROM_NETWORK, TO_LXC]);
    assert_eq!(daddr(evs[0].0.payload()), NODE_IP);
    assert_eq!(
        evs[0].1.trace_observation_point,
        TraceObservationPoint::FromNetwork as i32
    );
    assert_eq!(trace_of(&evs[1].0).src_label, identity::WORLD);

    // B's reply leaves from the node address and port.
    let synack = with_l4_csum(tcp(
        B_IP,
        BE_PORT,
        CLIENT,
        51000,
        tcp_flags::SYN | tcp_flags::ACK,
    ));
    let (rc, out) = h.run(FROM, &synack, LO);
    assert!(
        rc == TC_ACT_REDIRECT || rc == TC_ACT_OK,
        "FIB redirect, or the stack without a route: {rc}"
    );
    assert_eq!((saddr(&out), ports(&out)), (NODE_IP, (NODE_PORT, 51000)));
    assert_eq!(daddr(&out), CLIENT);
    assert_checksums_valid(&out);
    let recs = h.drain();
    assert_eq!(kinds(&decode(&recs)), vec![FROM_LXC, TO_NETWORK]);

    // ClusterIPs are not reachable from outside; other traffic is not ours.
    lb.upsert_service(&frontend(LbProto::Tcp), &[1]).unwrap();
    for (dst, port) in [(VIP, VIP_PORT), (NODE_IP, 22)] {
        let p = pkt(
            CLIENT,
            dst,
            L4::Tcp {
                sport: 51001,
                dport: port,
                flags: tcp_flags::SYN,
            },
        );
        assert_eq!(h.run(NETDEV, &p, LO), (TC_ACT_OK, p.clone()));
    }
    assert!(h.drain().is_empty(), "untraced");

    // No backend: dropped with the reason, as for pods.
    lb.upsert_service(&nodeport(NODE_PORT + 1, 9), &[]).unwrap();
    let p = pkt(
        CLIENT,
        NODE_IP,
        L4::Tcp {
            sport: 51002,
            dport: NODE_PORT + 1,
            flags: tcp_flags::SYN,
        },
    );
    assert_eq!(h.run(NETDEV, &p, LO).0, TC_ACT_SHOT);
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(
        kinds(&evs),
        vec![drop_kind(drop_reason::SERVICE_BACKEND_NOT_FOUND)]
    );
    assert_eq!(drop_of(&evs[0].0).src_label, identity::WORLD);
}

#[test]
fn nodeport_to_a_backend_on_another_node_goes_through_the_overlay() {
    require_privileges!();
    let (mut h, mut lb) = lb_setup();
    h.maps
        .upsert_prefix(R_IP, 32, R_ID, u32::from(R_NODE))
        .unwrap();
    h.maps
        .set_config(&Config {
            tunnel_ifindex: TUNNEL_IFINDEX,
            ..Config::default()
        })
        .unwrap();
    lb.upsert_backend(4, &backend(R_IP, LbProto::Tcp)).unwrap();
    lb.upsert_service(&nodeport(NODE_PORT, 8), &[4]).unwrap();

    let syn = with_l4_csum(pkt(
        CLIENT,
        NODE_IP,
        L4::Tcp {
            sport: 52000,
            dport: NODE_PORT,
            flags: tcp_flags::SYN,
        },
    ));
    let (rc, out) = h.run(NETDEV, &syn, LO);
    assert_eq!(rc, TC_ACT_REDIRECT, "into the VXLAN device");
    assert_eq!((daddr(&out), ports(&out)), (R_IP, (52000, BE_PORT)));
    assert_checksums_valid(&out);
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(kinds(&evs), vec![TO_OVERLAY]);
    let t = trace_of(&evs[0].0);
    assert_eq!((t.src_label, t.dst_label), (identity::WORLD, R_ID));
    assert_eq!(t.ifindex, TUNNEL_IFINDEX);
    assert_eq!(
        h.maps
            .ct_entry(&ct_key(CLIENT, 52000, R_IP, BE_PORT, 6))
            .unwrap()
            .expect("backend CT entry")
            .rev_nat_id,
        8
    );
}

/// The rule origin of the deciding entry travels in the policy-verdict
/// event and, for a policy drop, in the drop event: the allow's origin for
/// an allowed connection, the deny's for an explicit deny, 0 for a default
/// deny.
#[test]
fn verdict_and_drop_events_carry_the_deciding_rule_origin() {
    require_privileges!();
    const ALLOW_ORIGIN: u32 = 0x1111_0001;
    const DENY_ORIGIN: u32 = 0x2222_0002;
    let mut h = setup(|_, b| b.enforce_ingress = true);
    h.maps
        .upsert_policy(&PolicyEntry::port(
            B_EP,
            Direction::Ingress,
            A_ID,
            6,
            80,
            PolicyAction::Allow,
            ALLOW_ORIGIN,
        ))
        .unwrap();
    h.maps
        .upsert_policy(&PolicyEntry::port(
            B_EP,
            Direction::Ingress,
            0,
            6,
            22,
            PolicyAction::Deny,
            DENY_ORIGIN,
        ))
        .unwrap();

    // Allowed by the L3-L4 allow.
    let (rc, _) = h.run(FROM, &tcp(A_IP, 41000, B_IP, 80, tcp_flags::SYN), LO);
    assert_eq!(rc, TC_ACT_REDIRECT);
    let recs = h.drain();
    let evs = decode(&recs);
    let v = verdict_of(&evs[0].0);
    assert_eq!((v.verdict, v.rule, v.pad2), (0, ALLOW_ORIGIN, 0));

    // Denied by the explicit deny: verdict and drop both name it.
    let (rc, _) = h.run(FROM, &tcp(A_IP, 41001, B_IP, 22, tcp_flags::SYN), LO);
    assert_eq!(rc, TC_ACT_SHOT);
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(
        kinds(&evs),
        vec![VERDICT, drop_kind(drop_reason::POLICY_DENY)]
    );
    assert_eq!(verdict_of(&evs[0].0).rule, DENY_ORIGIN);
    assert_eq!(drop_of(&evs[1].0).rule, DENY_ORIGIN);

    // Default deny (no entry for port 443): no origin anywhere.
    let (rc, _) = h.run(FROM, &tcp(A_IP, 41002, B_IP, 443, tcp_flags::SYN), LO);
    assert_eq!(rc, TC_ACT_SHOT);
    let recs = h.drain();
    let evs = decode(&recs);
    assert_eq!(
        kinds(&evs),
        vec![VERDICT, drop_kind(drop_reason::POLICY_DENIED)]
    );
    assert_eq!(verdict_of(&evs[0].0).rule, 0);
    assert_eq!(drop_of(&evs[1].0).rule, 0);
}

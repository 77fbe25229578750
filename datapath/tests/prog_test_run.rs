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

use datapath::maps::{CtKey, identity, ip4_key};
use datapath::{Aggregation, Config, Direction, Endpoint, PolicyAction, PolicyEntry};
use ebpf::{RawEvent, ct_state, direction, drop_reason, msg_type, policy_match, trace_point};
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
    PolicyEntry {
        ep_id,
        direction: dir,
        identity,
        proto,
        port,
        action,
        rule: 7,
    }
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
        "drop_rl",
        "dp_config",
        "lb4_services",
        "lb4_backends",
        "lb4_reverse_nat",
        "lb4_maglev",
        "lb4_affinity",
    ] {
        assert!(h.scratch.pin_dir().join(m).exists(), "{m} pinned");
    }
    assert_eq!(h.dp.load_report().created.len(), 14);
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

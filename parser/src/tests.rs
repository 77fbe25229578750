//! End-to-end decoder tests: byte fixtures built with [`crate::packet`] and
//! the ABI encoders, decoded by [`Parser`], every field checked.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ebpf::{
    DropEvent, EventHdr, PolicyVerdictEvent, TraceEvent, ct_state, direction, drop_reason,
    event_flags, msg_type, policy_match, src_file, trace_point,
};
use proto::flow::{
    DropReason, Endpoint, Flow, FlowType, IpVersion, TraceObservationPoint, TraceReason,
    TrafficDirection, Verdict, Workload, layer4::Protocol,
};
use proto::wkt::Timestamp;
use rstest::rstest;

use crate::packet::{L4, Packet, tcp_flags as f};
use crate::{ClockOffset, DecodeError as ParseError, Enricher, Parser, StaticEnrichment};

const ENRICH: &str = r#"
node_name: kind-worker
endpoints:
  - id: 100
    ips: [10.244.1.5, "fd00::5"]
    namespace: default
    pod_name: deathstar
    labels: ["k8s:org=empire", "k8s:class=deathstar"]
    workloads: [{name: deathstar, kind: Deployment}]
    identity: 15153
  - id: 200
    ips: [10.244.1.8, "fd00::8"]
    namespace: default
    pod_name: xwing
    labels: ["k8s:org=alliance"]
    identity: 54021
services:
  - {name: deathstar, namespace: empire, ips: [10.96.0.10], ports: [80]}
names:
  1.1.1.1: [one.one.one.one]
interfaces:
  12: lxc-deathstar
  18: lxc-xwing
policies:
  7:
    - {name: rule1, namespace: default, kind: CiliumNetworkPolicy, revision: 3,
       labels: ["k8s:io.cilium.k8s.policy.name=rule1"]}
  9:
    - {name: rule1, namespace: default, kind: CiliumNetworkPolicy, revision: 3}
    - {name: global, kind: CiliumClusterwideNetworkPolicy, revision: 4}
"#;

const XWING: &str = "10.244.1.8";
const DEATHSTAR: &str = "10.244.1.5";
const KTIME: u64 = 5_000_000_000;

fn parser() -> Parser {
    let e = StaticEnrichment::from_yaml_str(ENRICH).unwrap();
    Parser::new("kind-worker", Enricher::from_static(Arc::new(e))).with_uuid_seed(9)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(src: &str, dst: &str, sport: u16, dport: u16, flags: u16) -> Vec<u8> {
    Packet::new(
        ip(src),
        ip(dst),
        L4::Tcp {
            sport,
            dport,
            flags,
        },
    )
    .macs([0x5e, 0, 0x53, 0, 1, 8], [0x0a, 0x58, 0x0a, 0xf4, 1, 1])
    .build()
}

fn hdr(ty: u8, sub: u8, source: u16) -> EventHdr {
    EventHdr {
        source,
        ktime_ns: KTIME,
        orig_len: 54,
        ..EventHdr::new(ty, sub)
    }
}

fn trace(obs: u8, source: u16, dst_id: u16, reason: u8, ifindex: u32, pkt: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    TraceEvent {
        hdr: hdr(msg_type::TRACE, obs, source),
        src_label: 54021,
        dst_label: 15153,
        dst_id,
        reason,
        pad: 0,
        ifindex,
    }
    .encode(pkt, &mut out);
    out
}

/// Wall time = ktime + 1_700_000_000 s.
fn clock() -> ClockOffset {
    ClockOffset::new(1_700_000_000_000_000_000)
}

fn decode(raw: &[u8]) -> Flow {
    parser().decode(raw, &clock()).expect("decodes")
}

fn ep(f: &Option<Endpoint>) -> &Endpoint {
    f.as_ref().expect("endpoint set")
}

#[test]
fn trace_from_endpoint_every_field() {
    let pkt = tcp(XWING, DEATHSTAR, 40000, 80, f::SYN);
    let flow = decode(&trace(
        trace_point::FROM_LXC,
        200,
        0,
        ct_state::NEW,
        18,
        &pkt,
    ));

    assert_eq!(
        flow.time,
        Some(Timestamp {
            seconds: 1_700_000_005,
            nanos: 0
        })
    );
    assert_eq!(flow.uuid.len(), 36);
    assert_eq!(flow.verdict, Verdict::Forwarded as i32);
    assert_eq!(flow.drop_reason, 0);
    assert_eq!(flow.drop_reason_desc, DropReason::Unknown as i32);
    let eth = flow.ethernet.as_ref().unwrap();
    assert_eq!(eth.source, "5e:00:53:00:01:08");
    assert_eq!(eth.destination, "0a:58:0a:f4:01:01");
    let ipm = flow.ip.as_ref().unwrap();
    assert_eq!(
        (ipm.source.as_str(), ipm.destination.as_str()),
        (XWING, DEATHSTAR)
    );
    assert_eq!(ipm.ip_version, IpVersion::IPv4 as i32);
    let Some(Protocol::Tcp(t)) = flow.l4.as_ref().unwrap().protocol.as_ref() else {
        panic!("tcp")
    };
    assert_eq!((t.source_port, t.destination_port), (40000, 80));
    assert!(t.flags.unwrap().syn && !t.flags.unwrap().ack);
    assert_eq!(flow.r#type, FlowType::L3L4 as i32);
    assert_eq!(flow.node_name, "kind-worker");
    let et = flow.event_type.unwrap();
    assert_eq!((et.r#type, et.sub_type), (4, 5));
    assert_eq!(
        flow.trace_observation_point,
        TraceObservationPoint::FromEndpoint as i32
    );
    assert_eq!(flow.trace_reason, TraceReason::New as i32);
    assert_eq!(flow.is_reply, Some(false.into()));
    assert!(!flow.reply);
    assert_eq!(flow.traffic_direction, TrafficDirection::Egress as i32);
    assert_eq!(flow.policy_match_type, 0);
    let iface = flow.interface.as_ref().unwrap();
    assert_eq!((iface.index, iface.name.as_str()), (18, "lxc-xwing"));
    assert_eq!(flow.summary, "TCP Flags: SYN");

    let src = ep(&flow.source);
    assert_eq!(
        (
            src.id,
            src.identity,
            src.namespace.as_str(),
            src.pod_name.as_str()
        ),
        (200, 54021, "default", "xwing")
    );
    assert_eq!(src.labels, ["k8s:org=alliance"]);
    assert_eq!(src.cluster_name, "default");
    let dst = ep(&flow.destination);
    assert_eq!(
        (dst.id, dst.identity, dst.pod_name.as_str()),
        (100, 15153, "deathstar")
    );
    assert_eq!(dst.labels, ["k8s:class=deathstar", "k8s:org=empire"]);
    assert_eq!(
        dst.workloads,
        [Workload {
            name: "deathstar".into(),
            kind: "Deployment".into()
        }]
    );
    assert!(flow.file.is_none());
}

/// (observation point, CT state, event source, expected proto point,
/// direction, is_reply) for a packet xwing → deathstar.
#[rstest]
#[case::to_endpoint_new(
    trace_point::TO_LXC,
    ct_state::NEW,
    100,
    TraceObservationPoint::ToEndpoint,
    TrafficDirection::Ingress,
    Some(false)
)]
#[case::to_endpoint_reply(
    trace_point::TO_LXC,
    ct_state::REPLY,
    100,
    TraceObservationPoint::ToEndpoint,
    TrafficDirection::Egress,
    Some(true)
)]
#[case::from_endpoint_established(
    trace_point::FROM_LXC,
    ct_state::ESTABLISHED,
    200,
    TraceObservationPoint::FromEndpoint,
    TrafficDirection::Egress,
    Some(false)
)]
#[case::from_endpoint_reply(
    trace_point::FROM_LXC,
    ct_state::REPLY,
    200,
    TraceObservationPoint::FromEndpoint,
    TrafficDirection::Ingress,
    Some(true)
)]
#[case::unknown_ct(
    trace_point::FROM_LXC,
    ct_state::UNKNOWN,
    200,
    TraceObservationPoint::FromEndpoint,
    TrafficDirection::Unknown,
    None
)]
#[case::to_stack(
    trace_point::TO_STACK,
    ct_state::NEW,
    200,
    TraceObservationPoint::ToStack,
    TrafficDirection::Egress,
    Some(false)
)]
#[case::from_network(
    trace_point::FROM_NETWORK,
    ct_state::NEW,
    0,
    TraceObservationPoint::FromNetwork,
    TrafficDirection::Unknown,
    Some(false)
)]
#[case::related(
    trace_point::TO_LXC,
    ct_state::RELATED,
    100,
    TraceObservationPoint::ToEndpoint,
    TrafficDirection::Ingress,
    Some(false)
)]
fn trace_points_and_directions(
    #[case] obs: u8,
    #[case] ct: u8,
    #[case] source: u16,
    #[case] point: TraceObservationPoint,
    #[case] dir: TrafficDirection,
    #[case] reply: Option<bool>,
) {
    let pkt = tcp(XWING, DEATHSTAR, 40000, 80, f::ACK);
    let flow = decode(&trace(obs, source, 0, ct, 0, &pkt));
    assert_eq!(flow.trace_observation_point, point as i32);
    assert_eq!(flow.event_type.unwrap().sub_type, i32::from(obs));
    assert_eq!(flow.traffic_direction, dir as i32, "direction");
    assert_eq!(flow.is_reply, reply.map(Into::into));
    assert_eq!(flow.reply, reply == Some(true));
    assert_eq!(flow.trace_reason, crate::reasons::trace_reason(ct) as i32);
    assert!(flow.interface.is_none(), "ifindex 0 → no interface");
    assert_eq!(ep(&flow.source).pod_name, "xwing", "resolved by IP");
    assert_eq!(ep(&flow.destination).id, 100);
}

#[test]
fn trace_direction_without_enrichment_uses_observation_point() {
    let pkt = tcp(XWING, DEATHSTAR, 1, 2, f::SYN);
    let mut p = Parser::new("n", Enricher::none()).with_uuid_seed(1);
    let from = p
        .decode(
            &trace(trace_point::FROM_LXC, 200, 0, ct_state::NEW, 0, &pkt),
            &clock(),
        )
        .unwrap();
    assert_eq!(from.traffic_direction, TrafficDirection::Egress as i32);
    assert_eq!(ep(&from.source).id, 200);
    let to = p
        .decode(
            &trace(trace_point::TO_LXC, 100, 100, ct_state::NEW, 0, &pkt),
            &clock(),
        )
        .unwrap();
    assert_eq!(to.traffic_direction, TrafficDirection::Ingress as i32);
    assert_eq!((ep(&to.source).id, ep(&to.destination).id), (0, 100));
    assert!(ep(&to.destination).pod_name.is_empty());
    assert_eq!(ep(&to.source).identity, 54021);
}

#[rstest]
#[case::policy_denied(drop_reason::POLICY_DENIED, DropReason::PolicyDenied)]
#[case::policy_deny(drop_reason::POLICY_DENY, DropReason::PolicyDeny)]
#[case::invalid(drop_reason::INVALID_PACKET, DropReason::InvalidPacketDropped)]
#[case::ct_insert(drop_reason::CT_MAP_INSERTION_FAILED, DropReason::CtMapInsertionFailed)]
#[case::ttl(drop_reason::TTL_EXCEEDED, DropReason::TtlExceeded)]
#[case::rate(drop_reason::RATE_LIMITED, DropReason::DropRateLimited)]
fn drop_events(#[case] code: u8, #[case] want: DropReason) {
    let pkt = tcp(XWING, DEATHSTAR, 40000, 80, f::SYN);
    let mut raw = Vec::new();
    DropEvent {
        hdr: hdr(msg_type::DROP, code, 100),
        src_label: 54021,
        dst_label: 15153,
        dst_id: 100,
        line: 77,
        file: src_file::TEST_EMIT,
        ct_state: ct_state::NEW,
        direction: direction::INGRESS,
        pad: 0,
        ifindex: 12,
        rule: 0,
    }
    .encode(&pkt, &mut raw);
    let flow = decode(&raw);
    assert_eq!(flow.verdict, Verdict::Dropped as i32);
    assert_eq!(flow.drop_reason, u32::from(code));
    assert_eq!(flow.drop_reason_desc, want as i32);
    let et = flow.event_type.unwrap();
    assert_eq!((et.r#type, et.sub_type), (1, i32::from(code)));
    assert_eq!(flow.traffic_direction, TrafficDirection::Ingress as i32);
    assert_eq!(flow.trace_observation_point, 0);
    assert_eq!(flow.trace_reason, 0, "trace_reason is for traces only");
    assert_eq!(flow.is_reply, Some(false.into()));
    let file = flow.file.as_ref().unwrap();
    assert_eq!((file.name.as_str(), file.line), ("test_emit.bpf.c", 77));
    assert_eq!(flow.interface.as_ref().unwrap().name, "lxc-deathstar");
    assert_eq!(ep(&flow.source).pod_name, "xwing");
    assert_eq!(ep(&flow.destination).pod_name, "deathstar");
    assert_eq!(flow.summary, "TCP Flags: SYN");
}

#[test]
fn drop_direction_falls_back_to_hubble_rule() {
    let pkt = tcp(XWING, DEATHSTAR, 40000, 80, f::SYN);
    let mk = |source: u16| {
        let mut raw = Vec::new();
        DropEvent {
            hdr: hdr(msg_type::DROP, drop_reason::POLICY_DENIED, source),
            src_label: 54021,
            ..DropEvent::default()
        }
        .encode(&pkt, &mut raw);
        decode(&raw)
    };
    assert_eq!(
        mk(200).traffic_direction,
        TrafficDirection::Egress as i32,
        "at the source"
    );
    assert_eq!(mk(100).traffic_direction, TrafficDirection::Ingress as i32);
    assert_eq!(mk(0).traffic_direction, TrafficDirection::Unknown as i32);
    assert_eq!(mk(0).is_reply, None, "unknown CT state");
}

/// (direction, verdict, audited) → (Verdict, drop code).
#[rstest]
#[case::ingress_allowed(direction::INGRESS, 0, 0, Verdict::Forwarded, 0)]
#[case::ingress_denied(direction::INGRESS, -133, 0, Verdict::Dropped, 133)]
#[case::egress_deny_rule(direction::EGRESS, -181, 0, Verdict::Dropped, 181)]
#[case::audited(direction::INGRESS, -133, 1, Verdict::Audit, 0)]
#[case::redirected(direction::EGRESS, 15001, 0, Verdict::Redirected, 0)]
fn policy_verdicts(
    #[case] dir: u8,
    #[case] verdict: i32,
    #[case] audited: u8,
    #[case] want: Verdict,
    #[case] code: u32,
) {
    let (src, dst) = if dir == direction::INGRESS {
        (XWING, DEATHSTAR)
    } else {
        (DEATHSTAR, XWING)
    };
    let pkt = tcp(src, dst, 40000, 80, f::SYN);
    let mut raw = Vec::new();
    PolicyVerdictEvent {
        hdr: hdr(msg_type::POLICY_VERDICT, 0, 100),
        remote_label: 54021,
        local_label: 15153,
        verdict,
        dst_port: 80,
        proto: 6,
        direction: dir,
        match_type: policy_match::L3_L4,
        audited,
        reason: ct_state::UNKNOWN,
        pad: 0,
        ifindex: 12,
        rule: 0,
        pad2: 0,
    }
    .encode(&pkt, &mut raw);
    let flow = decode(&raw);
    assert_eq!(flow.verdict, want as i32);
    assert_eq!(flow.drop_reason, code);
    assert_eq!(
        flow.drop_reason_desc,
        crate::reasons::drop_reason_enum(code) as i32
    );
    assert_eq!(flow.policy_match_type, 2);
    let et = flow.event_type.unwrap();
    assert_eq!((et.r#type, et.sub_type), (5, 0));
    assert_eq!(flow.trace_observation_point, 0);
    assert_eq!(flow.traffic_direction, i32::from(dir));
    assert_eq!(flow.is_reply, (verdict >= 0).then_some(false.into()));
    let (s, d) = (ep(&flow.source), ep(&flow.destination));
    if dir == direction::INGRESS {
        assert_eq!(
            (s.identity, d.identity),
            (54021, 15153),
            "remote is the source"
        );
        assert_eq!((s.pod_name.as_str(), d.id), ("xwing", 100));
    } else {
        assert_eq!(
            (s.identity, d.identity),
            (15153, 54021),
            "local is the source"
        );
        assert_eq!((s.id, d.pod_name.as_str()), (100, "xwing"));
    }
}

#[rstest]
#[case::udp(L4::Udp { sport: 5353, dport: 53 }, "UDP")]
#[case::sctp(L4::Sctp { sport: 1, dport: 2 }, "SCTP")]
#[case::icmp(L4::Icmp4 { ty: 8, code: 0 }, "ICMPv4 EchoRequest")]
#[case::tcp_fin(L4::Tcp { sport: 1, dport: 2, flags: f::FIN | f::ACK }, "TCP Flags: ACK, FIN")]
#[case::gre(L4::Other(47), "IPv4")]
fn ipv4_l4_kinds(#[case] l4: L4, #[case] summary: &str) {
    let pkt = Packet::new(ip(XWING), ip("1.1.1.1"), l4).build();
    let flow = decode(&trace(
        trace_point::FROM_LXC,
        200,
        0,
        ct_state::NEW,
        0,
        &pkt,
    ));
    assert_eq!(flow.summary, summary);
    assert_eq!(flow.destination_names, ["one.one.one.one"]);
    assert!(flow.source_names.is_empty());
    let world = ep(&flow.destination);
    assert_eq!(
        world.identity, 15153,
        "event identity kept even if unresolved"
    );
    assert!(world.pod_name.is_empty());
}

#[test]
fn ipv6_icmpv6_and_l3_packets() {
    let pkt = Packet::new(ip("fd00::8"), ip("fd00::5"), L4::Icmp6 { ty: 128, code: 0 })
        .l3_only()
        .build();
    let mut raw = trace(trace_point::FROM_LXC, 200, 0, ct_state::NEW, 0, &pkt);
    raw[3] = event_flags::L3_PACKET;
    let flow = decode(&raw);
    assert!(flow.ethernet.is_none());
    let ipm = flow.ip.as_ref().unwrap();
    assert_eq!(
        (ipm.source.as_str(), ipm.ip_version),
        ("fd00::8", IpVersion::IPv6 as i32)
    );
    let Some(Protocol::IcmPv6(i)) = flow.l4.as_ref().unwrap().protocol.as_ref() else {
        panic!("icmpv6")
    };
    assert_eq!((i.r#type, i.code), (128, 0));
    assert_eq!(flow.summary, "ICMPv6 EchoRequest");
    assert_eq!(
        ep(&flow.destination).pod_name,
        "deathstar",
        "resolved by IPv6 address"
    );
}

#[test]
fn empty_and_truncated_payloads_fill_what_is_there() {
    let flow = decode(&trace(trace_point::FROM_LXC, 200, 0, ct_state::NEW, 0, &[]));
    assert!(flow.ethernet.is_none() && flow.ip.is_none() && flow.l4.is_none());
    assert_eq!(flow.summary, "");
    assert_eq!(
        ep(&flow.source).pod_name,
        "xwing",
        "endpoint id still resolves"
    );

    let pkt = tcp(XWING, DEATHSTAR, 40000, 80, f::SYN);
    let flow = decode(&trace(
        trace_point::FROM_LXC,
        200,
        0,
        ct_state::NEW,
        0,
        &pkt[..40],
    ));
    assert!(flow.ip.is_some());
    let Some(Protocol::Tcp(t)) = flow.l4.as_ref().unwrap().protocol.as_ref() else {
        panic!("tcp")
    };
    assert_eq!(
        (t.source_port, t.destination_port, t.flags),
        (40000, 80, None)
    );
    assert_eq!(flow.summary, "TCP");
}

#[test]
fn errors_are_typed_and_labelled() {
    let mut p = parser();
    let e = p.decode(&[1, 2, 3], &clock()).unwrap_err();
    assert_eq!(e.kind(), "truncated");
    assert!(matches!(
        e,
        ParseError::Abi(ebpf::AbiError::Truncated { .. })
    ));
    let mut raw = trace(trace_point::FROM_LXC, 200, 0, 0, 0, &[]);
    raw[0] = msg_type::DEBUG;
    assert_eq!(p.decode(&raw, &clock()).unwrap_err().kind(), "unknown_type");
    raw[0] = msg_type::TRACE;
    raw[2] = 9;
    assert_eq!(p.decode(&raw, &clock()).unwrap_err().kind(), "version");
    raw[2] = ebpf::EVENT_VERSION;
    raw[6] = 10;
    assert_eq!(
        p.decode(&raw, &clock()).unwrap_err().kind(),
        "capture_length"
    );
}

#[test]
fn clocks() {
    let raw = trace(trace_point::FROM_LXC, 200, 0, 0, 0, &[]);
    let mut p = parser();
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(42);
    assert_eq!(p.decode(&raw, &at).unwrap().time.unwrap().seconds, 42);
    let f = |k: u64| SystemTime::UNIX_EPOCH + Duration::from_nanos(k * 2);
    assert_eq!(p.decode(&raw, &f).unwrap().time.unwrap().seconds, 10);
    // A measured boot offset: flow_exporter::sources::clock's tests (the
    // parser reads no clock).
}

#[test]
fn uuids_are_v4_unique_and_seedable() {
    let raw = trace(trace_point::FROM_LXC, 200, 0, 0, 0, &[]);
    let (mut a, mut b) = (parser(), parser());
    let x = a.decode(&raw, &clock()).unwrap().uuid;
    let y = a.decode(&raw, &clock()).unwrap().uuid;
    assert_ne!(x, y);
    assert_eq!(
        b.decode(&raw, &clock()).unwrap().uuid,
        x,
        "same seed, same sequence"
    );
    let u = uuid::Uuid::parse_str(&x).unwrap();
    assert_eq!(u.get_version_num(), 4);
    let mut c = parser().without_uuids();
    assert!(c.decode(&raw, &clock()).unwrap().uuid.is_empty());
}

#[test]
fn uuid_bytes_are_the_uuid_crates_v4_text() {
    use rand::{Rng as _, SeedableRng as _};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
    let mut cases: Vec<[u8; 16]> = vec![[0; 16], [0xff; 16]];
    cases.extend((0..20_000).map(|_| rng.random::<[u8; 16]>()));
    for bytes in cases {
        let want = uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .hyphenated()
            .to_string();
        let mut b = vec![b'x'];
        crate::text::write_uuid_bytes(bytes, &mut b);
        assert_eq!(std::str::from_utf8(&b[1..]).unwrap(), want);
    }
}

#[test]
fn decode_into_overwrites_everything() {
    let mut p = parser();
    let mut flow = Flow::default();
    let pkt = tcp(XWING, DEATHSTAR, 1, 80, f::SYN);
    let mut drop = Vec::new();
    DropEvent {
        hdr: hdr(msg_type::DROP, 133, 100),
        line: 1,
        file: 1,
        ..DropEvent::default()
    }
    .encode(&pkt, &mut drop);
    p.decode_into(&drop, &clock(), &mut flow).unwrap();
    assert!(flow.file.is_some());
    let t = trace(trace_point::TO_LXC, 100, 100, ct_state::REPLY, 0, &[]);
    p.decode_into(&t, &clock(), &mut flow).unwrap();
    let mut fresh = p.decode(&t, &clock()).unwrap();
    fresh.uuid.clone_from(&flow.uuid);
    assert_eq!(flow, fresh);
    assert!(p.decode_into(&[0], &clock(), &mut flow).is_err());
    assert_eq!(flow, Flow::default());
}

#[test]
fn decode_into_a_reused_flow_equals_a_fresh_decode_over_the_synthetic_mix() {
    // Endpoints, services, DNS names and interface names are written over
    // the buffers of the previous flow: nothing of it may remain.
    let g = crate::Synthetic::new(21);
    let enricher = Enricher::from_static(Arc::new(g.enrichment()));
    let mut reused = Parser::new(g.node_name(), enricher.clone()).without_uuids();
    let mut fresh = Parser::new(g.node_name(), enricher).without_uuids();
    let mut events = crate::Synthetic::new(21);
    let mut raw = Vec::new();
    let mut flow = Flow::default();
    let (mut services, mut names) = (0, 0);
    for i in 0..5000 {
        raw.clear();
        events.next_event(&mut raw);
        reused.decode_into(&raw, &clock(), &mut flow).unwrap();
        let want = fresh.decode(&raw, &clock()).unwrap();
        assert_eq!(flow, want, "event {i}");
        services += usize::from(want.destination_service.is_some());
        names += usize::from(!want.destination_names.is_empty());
    }
    assert!(services > 0 && names > 0, "the mix has services and names");
}

#[test]
fn json_is_hubbles_form() {
    let pkt = tcp(XWING, DEATHSTAR, 44916, 80, f::SYN);
    let mut raw = Vec::new();
    DropEvent {
        hdr: hdr(msg_type::DROP, 133, 100),
        src_label: 54021,
        dst_label: 15153,
        dst_id: 100,
        direction: direction::INGRESS,
        ct_state: ct_state::NEW,
        ..DropEvent::default()
    }
    .encode(&pkt, &mut raw);
    let flow = decode(&raw);
    let v: serde_json::Value = serde_json::to_value(&flow).unwrap();
    assert_eq!(v["verdict"], "DROPPED");
    assert_eq!(v["drop_reason_desc"], "POLICY_DENIED");
    assert_eq!(v["drop_reason"], 133);
    assert_eq!(v["IP"]["source"], XWING);
    assert_eq!(v["IP"]["ipVersion"], "IPv4");
    assert_eq!(v["l4"]["TCP"]["source_port"], 44916);
    assert_eq!(v["l4"]["TCP"]["flags"]["SYN"], true);
    assert_eq!(v["source"]["pod_name"], "xwing");
    assert_eq!(v["destination"]["labels"][0], "k8s:class=deathstar");
    assert_eq!(v["Type"], "L3_L4");
    assert_eq!(v["event_type"]["type"], 1);
    assert_eq!(v["event_type"]["sub_type"], 133);
    assert_eq!(v["traffic_direction"], "INGRESS");
    assert_eq!(v["is_reply"], false);
    assert_eq!(v["Summary"], "TCP Flags: SYN");
    assert_eq!(v["time"], "2023-11-14T22:13:25Z");
    let back: Flow = serde_json::from_value(v).unwrap();
    assert_eq!(back, flow);
}

#[test]
fn decode_never_panics_on_arbitrary_bytes() {
    let mut p = parser();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let seeds = [
        trace(
            trace_point::FROM_LXC,
            200,
            0,
            1,
            3,
            &tcp(XWING, DEATHSTAR, 1, 2, 0x1ff),
        ),
        {
            let mut v = Vec::new();
            PolicyVerdictEvent {
                hdr: hdr(msg_type::POLICY_VERDICT, 0, 100),
                verdict: i32::MIN,
                ..PolicyVerdictEvent::default()
            }
            .encode(
                &Packet::new(ip("fd00::8"), ip("fd00::5"), L4::Udp { sport: 1, dport: 2 })
                    .ext(&[0, 60, 43, 44])
                    .build(),
                &mut v,
            );
            v
        },
    ];
    for i in 0..30_000 {
        let mut buf = seeds[i % 2].clone();
        // Flip a few bytes after the ABI header fields most of the time so the
        // packet decoders see mangled input, sometimes anywhere.
        for _ in 0..(next() % 6) {
            let at = (next() as usize) % buf.len();
            if i % 5 == 0 || at >= 8 {
                buf[at] = next() as u8;
            }
        }
        buf.truncate((next() as usize) % (buf.len() + 1));
        let _ = p.decode(&buf, &clock());
    }
}

// ---- trace-sock: service translations (crate::sock) ---------------------------

const VIP: &str = "10.96.0.10";

fn sock(point: u8, dst: &str, dport: u16, dst_label: u32, l4: u8) -> Vec<u8> {
    let std::net::IpAddr::V4(d) = ip(dst) else {
        panic!("v4")
    };
    let mut out = Vec::new();
    ebpf::TraceSockEvent {
        hdr: EventHdr {
            source: 200,
            ktime_ns: KTIME,
            ..EventHdr::new(msg_type::TRACE_SOCK, point)
        },
        src_label: 54021,
        dst_label,
        src_ip: [10, 244, 1, 8],
        dst_ip: d.octets(),
        dst_port: dport,
        l4_proto: l4,
        sock_cookie: 0x1234_5678_9abc,
        ..ebpf::TraceSockEvent::default()
    }
    .encode(&mut out);
    out
}

#[test]
fn trace_sock_pre_translation_names_the_service() {
    use ebpf::{sock_l4, xlate_point};
    let flow = decode(&sock(
        xlate_point::PRE_DIRECTION_FWD,
        VIP,
        80,
        0,
        sock_l4::TCP,
    ));
    assert_eq!(flow.r#type, FlowType::Sock as i32);
    assert_eq!(flow.verdict, Verdict::Traced as i32);
    let et = flow.event_type.as_ref().unwrap();
    assert_eq!((et.r#type, et.sub_type), (7, 1));
    assert_eq!(flow.sock_xlate_point, 1);
    assert_eq!(flow.socket_cookie, 0x1234_5678_9abc);
    assert_eq!(flow.cgroup_id, 0);
    let ipm = flow.ip.as_ref().unwrap();
    assert_eq!(
        (ipm.source.as_str(), ipm.destination.as_str()),
        (XWING, VIP)
    );
    assert_eq!(ipm.ip_version, IpVersion::IPv4 as i32);
    let Some(Protocol::Tcp(t)) = flow.l4.as_ref().and_then(|l| l.protocol.clone()) else {
        panic!("tcp")
    };
    assert_eq!((t.source_port, t.destination_port), (0, 80));
    assert_eq!(t.flags, None);
    assert_eq!(ep(&flow.source).pod_name, "xwing");
    assert_eq!(ep(&flow.source).id, 200);
    assert_eq!(ep(&flow.source).identity, 54021);
    let svc = flow
        .destination_service
        .as_ref()
        .expect("the VIP's service");
    assert_eq!(
        (svc.namespace.as_str(), svc.name.as_str()),
        ("empire", "deathstar")
    );
    assert_eq!(flow.source_service, None);
    assert_eq!(flow.summary, "TCP");
    assert_eq!(flow.is_reply, None);
    assert!(!flow.reply);
    assert_eq!(flow.trace_observation_point, 0);
    assert_eq!(flow.traffic_direction, TrafficDirection::Unknown as i32);
    assert_eq!(flow.ethernet, None);
    assert_eq!(flow.interface, None);
    assert_eq!(flow.node_name, "kind-worker");
    assert!(flow.time.is_some());

    // Hubble's JSON form.
    let v: serde_json::Value = serde_json::to_value(&flow).unwrap();
    assert_eq!(v["Type"], "SOCK");
    assert_eq!(v["verdict"], "TRACED");
    assert_eq!(v["sock_xlate_point"], "SOCK_XLATE_POINT_PRE_DIRECTION_FWD");
    assert_eq!(v["socket_cookie"], "20015998343868");
    assert_eq!(v["event_type"]["type"], 7);
    assert_eq!(v["event_type"]["sub_type"], 1);
    assert_eq!(v["destination_service"]["name"], "deathstar");
    assert_eq!(v["destination_service"]["namespace"], "empire");
    assert_eq!(v["l4"]["TCP"]["destination_port"], 80);
    assert_eq!(v["Summary"], "TCP");
    assert!(v.get("is_reply").is_none());
    assert!(v.get("trace_observation_point").is_none());
    let back: Flow = serde_json::from_value(v).unwrap();
    assert_eq!(back, flow);
}

#[test]
fn trace_sock_post_translation_names_the_backend() {
    use ebpf::{sock_l4, xlate_point};
    let flow = decode(&sock(
        xlate_point::POST_DIRECTION_FWD,
        DEATHSTAR,
        8080,
        15153,
        sock_l4::UDP,
    ));
    assert_eq!(flow.verdict, Verdict::Translated as i32);
    assert_eq!(flow.event_type.as_ref().unwrap().sub_type, 2);
    assert_eq!(flow.sock_xlate_point, 2);
    let ipm = flow.ip.as_ref().unwrap();
    assert_eq!(ipm.destination, DEATHSTAR);
    let d = ep(&flow.destination);
    assert_eq!(
        (d.pod_name.as_str(), d.id, d.identity),
        ("deathstar", 100, 15153)
    );
    assert_eq!(flow.destination_service, None, "a backend is no frontend");
    let Some(Protocol::Udp(u)) = flow.l4.as_ref().and_then(|l| l.protocol.clone()) else {
        panic!("udp")
    };
    assert_eq!((u.source_port, u.destination_port), (0, 8080));
    assert_eq!(flow.summary, "UDP");
}

#[rstest]
#[case::pre_rev(ebpf::xlate_point::PRE_DIRECTION_REV, Verdict::Traced)]
#[case::post_rev(ebpf::xlate_point::POST_DIRECTION_REV, Verdict::Translated)]
fn trace_sock_reverse_points_swap_the_sides(#[case] point: u8, #[case] verdict: Verdict) {
    let flow = decode(&sock(point, VIP, 80, 0, ebpf::sock_l4::UDP));
    assert_eq!(flow.verdict, verdict as i32);
    let ipm = flow.ip.as_ref().unwrap();
    assert_eq!(
        (ipm.source.as_str(), ipm.destination.as_str()),
        (VIP, XWING)
    );
    let Some(Protocol::Udp(u)) = flow.l4.as_ref().and_then(|l| l.protocol.clone()) else {
        panic!("udp")
    };
    assert_eq!((u.source_port, u.destination_port), (80, 0));
    assert_eq!(ep(&flow.destination).pod_name, "xwing");
    let svc = flow.source_service.as_ref().expect("the VIP is the source");
    assert_eq!(svc.name, "deathstar");
}

#[test]
fn trace_sock_unknown_protocol_and_point() {
    let flow = decode(&sock(0, VIP, 80, 0, 9));
    assert_eq!(flow.verdict, Verdict::Unknown as i32);
    assert_eq!(flow.l4, None);
    assert_eq!(flow.summary, "Unknown");
}

#[test]
fn reply_from_the_vip_carries_the_source_service() {
    // After reverse NAT the reply's source is the frontend: Hubble fills
    // source_service from it.
    let pkt = tcp(VIP, XWING, 80, 44916, f::SYN | f::ACK);
    let flow = decode(&trace(
        trace_point::TO_LXC,
        200,
        200,
        ct_state::REPLY,
        18,
        &pkt,
    ));
    let svc = flow.source_service.as_ref().expect("source is the VIP");
    assert_eq!(
        (svc.namespace.as_str(), svc.name.as_str()),
        ("empire", "deathstar")
    );
    assert_eq!(flow.destination_service, None);
    assert_eq!(flow.is_reply.as_ref().map(|b| b.value), Some(true));
}

/// The policy fields of policy-verdict flows, as Hubble fills them:
/// (direction, verdict, audited, origin) → which field holds which names.
#[rstest]
#[case::ingress_allowed(direction::INGRESS, 0, 0, 7, "ingress_allowed_by", &["rule1"])]
#[case::egress_allowed_two(direction::EGRESS, 0, 0, 9, "egress_allowed_by", &["rule1", "global"])]
#[case::ingress_deny_rule(direction::INGRESS, -181, 0, 7, "ingress_denied_by", &["rule1"])]
#[case::egress_deny_rule(direction::EGRESS, -181, 0, 9, "egress_denied_by", &["rule1", "global"])]
#[case::default_deny(direction::INGRESS, -133, 0, 0, "", &[])]
#[case::default_deny_stray_origin(direction::INGRESS, -133, 0, 7, "", &[])]
#[case::audited(direction::INGRESS, -181, 1, 7, "", &[])]
#[case::unknown_origin(direction::INGRESS, 0, 0, 12345, "ingress_allowed_by", &[])]
fn policy_verdict_names(
    #[case] dir: u8,
    #[case] verdict: i32,
    #[case] audited: u8,
    #[case] rule: u32,
    #[case] field: &str,
    #[case] names: &[&str],
) {
    let pkt = tcp(XWING, DEATHSTAR, 40000, 80, f::SYN);
    let mut raw = Vec::new();
    PolicyVerdictEvent {
        hdr: hdr(msg_type::POLICY_VERDICT, 0, 100),
        remote_label: 54021,
        local_label: 15153,
        verdict,
        dst_port: 80,
        proto: 6,
        direction: dir,
        match_type: policy_match::L3_L4,
        audited,
        rule,
        ..PolicyVerdictEvent::default()
    }
    .encode(&pkt, &mut raw);
    let flow = decode(&raw);
    let fields = [
        ("ingress_allowed_by", &flow.ingress_allowed_by),
        ("egress_allowed_by", &flow.egress_allowed_by),
        ("ingress_denied_by", &flow.ingress_denied_by),
        ("egress_denied_by", &flow.egress_denied_by),
    ];
    for (name, list) in fields {
        let got: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
        if name == field {
            assert_eq!(got, names, "{name}");
        } else {
            assert!(got.is_empty(), "{name} should be empty, got {got:?}");
        }
    }
    if field == "egress_allowed_by" {
        let p = &flow.egress_allowed_by[1];
        assert_eq!(
            (p.kind.as_str(), p.namespace.as_str(), p.revision),
            ("CiliumClusterwideNetworkPolicy", "", 4)
        );
    }
    if field == "ingress_allowed_by" && rule == 7 {
        let p = &flow.ingress_allowed_by[0];
        assert_eq!(p.labels, ["k8s:io.cilium.k8s.policy.name=rule1"]);
        assert_eq!((p.namespace.as_str(), p.revision), ("default", 3));
    }
}

/// [`Parser::decode_shared_into`]'s flow with its endpoints put back.
fn decode_shared(p: &mut Parser, raw: &[u8], eps: &mut crate::SharedEndpoints) -> Flow {
    let mut flow = Flow::default();
    p.decode_shared_into(raw, &clock(), &mut flow, eps).unwrap();
    assert!(flow.source.is_none() && flow.destination.is_none());
    flow.source = eps.source.as_deref().cloned();
    flow.destination = eps.destination.as_deref().cloned();
    flow
}

/// The text kept apart and written back gives the flow the shared decode
/// gives, over the synthetic mix (every event kind, service translations
/// included) and the fixtures' packet shapes, into reused flows.
#[test]
fn text_kept_apart_and_written_back_equals_the_shared_decode() {
    let g = crate::Synthetic::new(23);
    let enricher = Enricher::from_static(Arc::new(g.enrichment()));
    let mut apart = Parser::new(g.node_name(), enricher.clone()).with_uuid_seed(5);
    let mut whole = Parser::new(g.node_name(), enricher).with_uuid_seed(5);
    let mut events = crate::Synthetic::new(23);
    let mut raw = Vec::new();
    let (mut f1, mut e1, mut text) = (
        Flow::default(),
        crate::SharedEndpoints::default(),
        crate::FlowText::default(),
    );
    let (mut f2, mut e2) = (Flow::default(), crate::SharedEndpoints::default());
    let mut kinds = std::collections::HashSet::new();
    for i in 0..20_000 {
        raw.clear();
        events.next_event(&mut raw);
        apart
            .decode_text_into(&raw, &clock(), &mut f1, &mut e1, &mut text)
            .unwrap();
        whole
            .decode_shared_into(&raw, &clock(), &mut f2, &mut e2)
            .unwrap();
        assert!(f1.uuid.is_empty() && f1.summary.is_empty() && f1.ethernet.is_none());
        assert_eq!(
            f1.ip.as_ref().map(|i| i.ip_version),
            f2.ip.as_ref().map(|i| i.ip_version),
            "the version stays in the flow"
        );
        let mut got = f1.clone();
        text.write_into(&mut got);
        assert_eq!(got, f2, "event {i}");
        assert_eq!(e1, e2);
        kinds.insert((f2.r#type, f2.summary.split(' ').next().map(str::to_owned)));
    }
    assert!(kinds.len() >= 5, "{kinds:?}");
    // A rejected record keeps nothing.
    assert!(
        apart
            .decode_text_into(&[1, 2, 3], &clock(), &mut f1, &mut e1, &mut text)
            .is_err()
    );
    assert!(text.is_empty());
}

#[test]
fn shared_endpoints_equal_the_copied_ones_over_the_synthetic_mix() {
    let g = crate::Synthetic::new(22);
    let enricher = Enricher::from_static(Arc::new(g.enrichment()));
    let mut shared = Parser::new(g.node_name(), enricher.clone()).without_uuids();
    let mut copied = Parser::new(g.node_name(), enricher).without_uuids();
    let mut events = crate::Synthetic::new(22);
    let (mut raw, mut eps) = (Vec::new(), crate::SharedEndpoints::default());
    let mut flow = Flow::default();
    let mut seen: Vec<Arc<Endpoint>> = Vec::new();
    let mut reused = 0;
    let mut pointers = std::collections::HashSet::new();
    let mut held = Vec::new();
    for i in 0..5000 {
        raw.clear();
        events.next_event(&mut raw);
        // Into a reused flow, as the exporter does.
        shared
            .decode_shared_into(&raw, &clock(), &mut flow, &mut eps)
            .unwrap();
        let mut got = flow.clone();
        got.source = eps.source.as_deref().cloned();
        got.destination = eps.destination.as_deref().cloned();
        assert_eq!(got, copied.decode(&raw, &clock()).unwrap(), "event {i}");
        // Equal endpoints are one `Arc`.
        for e in [&eps.source, &eps.destination].into_iter().flatten() {
            pointers.insert(Arc::as_ptr(e) as usize);
            match seen.iter().find(|s| ***s == **e) {
                Some(first) => reused += usize::from(Arc::ptr_eq(first, e)),
                None => seen.push(Arc::clone(e)),
            }
            // Kept alive: an address is not reused meanwhile.
            held.push(Arc::clone(e));
        }
    }
    // 10,000 endpoints handed out, built once per side (endpoint id,
    // identity, address), not once per flow.
    assert!(
        pointers.len() < 100 && reused > 0,
        "{} endpoints built for {} distinct ones",
        pointers.len(),
        seen.len()
    );
    assert!(
        shared
            .decode_shared_into(&[0], &clock(), &mut flow, &mut eps)
            .is_err()
    );
    assert_eq!(eps, crate::SharedEndpoints::default());
}

/// An endpoint lookup that changes, as the datapath's live endpoints do;
/// it reports its generation, or not (`tracked`).
struct LiveEndpoints {
    pods: std::sync::Mutex<std::collections::HashMap<u32, Arc<crate::EndpointInfo>>>,
    generation: std::sync::atomic::AtomicU64,
    tracked: bool,
}

impl LiveEndpoints {
    fn new(tracked: bool) -> Self {
        let l = LiveEndpoints {
            pods: Default::default(),
            generation: Default::default(),
            tracked,
        };
        l.set(100, "deathstar-1", 15153);
        l
    }

    fn set(&self, id: u32, pod: &str, identity: u32) {
        let info = crate::EndpointInfo {
            id,
            ips: vec![ip(DEATHSTAR)],
            namespace: "default".into(),
            pod_name: pod.into(),
            labels: vec![format!("k8s:pod={pod}")],
            identity,
            ..Default::default()
        };
        self.pods.lock().unwrap().insert(id, Arc::new(info));
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl crate::EndpointLookup for LiveEndpoints {
    fn by_id(&self, id: u32) -> Option<Arc<crate::EndpointInfo>> {
        self.pods.lock().unwrap().get(&id).cloned()
    }
    fn by_ip(&self, ip: IpAddr) -> Option<Arc<crate::EndpointInfo>> {
        let pods = self.pods.lock().unwrap();
        pods.values().find(|p| p.ips.contains(&ip)).cloned()
    }
    fn generation(&self) -> Option<u64> {
        self.tracked
            .then(|| self.generation.load(std::sync::atomic::Ordering::SeqCst))
    }
}

#[rstest]
#[case::tracked(true)]
#[case::untracked(false)]
fn an_endpoint_changed_in_a_lookup_is_seen_by_the_next_flow(#[case] tracked: bool) {
    let live = Arc::new(LiveEndpoints::new(tracked));
    let mut p = Parser::new("n", Enricher::none().with_endpoints(live.clone())).without_uuids();
    let raw = trace(
        trace_point::FROM_LXC,
        100,
        0,
        ct_state::NEW,
        12,
        &tcp(DEATHSTAR, XWING, 1, 80, f::SYN),
    );
    let mut eps = crate::SharedEndpoints::default();
    let first = decode_shared(&mut p, &raw, &mut eps);
    assert_eq!(ep(&first.source).pod_name, "deathstar-1");
    let before = eps.source.clone().unwrap();
    decode_shared(&mut p, &raw, &mut eps);
    assert_eq!(
        Arc::ptr_eq(&before, eps.source.as_ref().unwrap()),
        tracked,
        "the same endpoint is shared only while the lookup says it did not change"
    );
    // The pod is replaced (a new pod with the same endpoint id).
    live.set(100, "deathstar-2", 15154);
    let next = decode_shared(&mut p, &raw, &mut eps);
    assert_eq!(ep(&next.source).pod_name, "deathstar-2");
    // And the copying decode agrees.
    assert_eq!(next, p.decode(&raw, &clock()).unwrap());
}

#[test]
fn a_replaced_enricher_forgets_the_shared_endpoints() {
    let mut p = parser().without_uuids();
    let raw = trace(
        trace_point::FROM_LXC,
        100,
        0,
        ct_state::NEW,
        12,
        &tcp(DEATHSTAR, XWING, 1, 80, f::SYN),
    );
    let mut eps = crate::SharedEndpoints::default();
    assert_eq!(
        ep(&decode_shared(&mut p, &raw, &mut eps).source).pod_name,
        "deathstar"
    );
    let changed = ENRICH.replace("pod_name: deathstar", "pod_name: deathstar-v2");
    let e = StaticEnrichment::from_yaml_str(&changed).unwrap();
    p.set_enricher(Enricher::from_static(Arc::new(e)));
    assert_eq!(
        ep(&decode_shared(&mut p, &raw, &mut eps).source).pod_name,
        "deathstar-v2"
    );
}

//! Privileged, real traffic: a "node" network namespace with two "pods"
//! (namespaces joined to it by veth pairs, /32 addresses, a default route
//! via the 169.254.1.1 gateway that only the BPF ARP responder answers),
//! the datapath attached to both host-side veths. TCP between the pods is
//! forwarded by the programs alone (no IPs, no bridge, no forwarding in the
//! node), an ingress policy change takes effect on the next connection, and
//! the denied attempt shows up as a POLICY_DENIED drop event. Everything
//! (namespaces, veths, links, pins) is removed by guards, also on failure.

mod common;

use std::net::{Ipv4Addr, SocketAddr};

use datapath::maps::ip4_key;
use datapath::{
    AttachTarget, Datapath, Direction, Endpoint, LoadOptions, PolicyAction, PolicyEntry,
};
use ebpf::{RawEvent, drop_reason, msg_type};

use common::{EchoServer, Harness, NetNs, Scratch, disable_ipv6, echo, mac_of, pod};

const PORT: u16 = 8080;

#[test]
fn pods_talk_through_the_programs_and_policy_applies_live() {
    require_privileges!();
    let scratch = Scratch::new();
    let node = NetNs::new("dpnode");
    // The datapath is IPv4-only and drops other L3 protocols with an event;
    // the host side of pod veths must not chatter IPv6 (what the CNI plugin
    // sets up too).
    disable_ipv6(&node);
    let p1 = pod(&node, Ipv4Addr::new(10, 200, 1, 2), "lxc1");
    let p2 = pod(&node, Ipv4Addr::new(10, 200, 2, 2), "lxc2");

    let mut opts = LoadOptions::new(scratch.pin_dir());
    opts.sizes.ct4 = 1024;
    opts.sizes.events_ring_bytes = 1 << 20;
    let mut dp = Datapath::load(&opts).expect("load");
    let mut maps = dp.maps().unwrap();
    for (i, p) in [&p1, &p2].into_iter().enumerate() {
        let r = dp
            .attach(&AttachTarget {
                netns: Some(node.path()),
                iface: p.host_if.clone(),
            })
            .expect("attach");
        maps.upsert_endpoint(&Endpoint {
            ip: p.ip,
            ifindex: r.ifindex,
            pod_mac: mac_of(&p.ns.name, "eth0"),
            node_mac: mac_of(&node.name, &p.host_if),
            identity: 20_000 + i as u32,
            ep_id: 1 + i as u16,
            enforce_ingress: false,
            enforce_egress: false,
            audit: false,
        })
        .unwrap();
    }
    // The ring is read through the same pins a separate exporter would use.
    let mut ring = Harness::ring_at(&scratch.pin_dir());

    let server = EchoServer::start(p2.ns.path(), SocketAddr::from((p2.ip, PORT)));
    let to = SocketAddr::from((p2.ip, PORT));

    // 1. No policy: allow-all, forwarded pod to pod.
    echo(&p1.ns.path(), to).expect("pod 1 -> pod 2 without policy");
    let ct = maps.ct_entries().unwrap();
    assert!(
        ct.iter()
            .any(|(k, v)| k.saddr == ip4_key(p1.ip) && k.dport == PORT && v.rev_packets > 0),
        "tracked with replies: {ct:?}"
    );

    // 2. Pod 2 selected by an ingress policy with no rules: default deny.
    let mut ep2 = maps.endpoint(p2.ip).unwrap().unwrap();
    ep2.enforce_ingress = true;
    maps.upsert_endpoint(&ep2).unwrap();
    Harness::drain_ring(&mut ring);
    let err = echo(&p1.ns.path(), to).expect_err("denied by default");
    assert!(
        err.contains("timed out") || err.contains("os error 110"),
        "{err}"
    );
    let drops: Vec<ebpf::DropEvent> = Harness::drain_ring(&mut ring)
        .iter()
        .filter_map(|r| match ebpf::parse(r).ok()? {
            RawEvent::Drop(d, _) => Some(d),
            _ => None,
        })
        .collect();
    assert!(!drops.is_empty(), "the SYN was dropped and reported");
    for d in &drops {
        assert_eq!(d.hdr.r#type, msg_type::DROP);
        assert_eq!(d.hdr.subtype, drop_reason::POLICY_DENIED);
        assert_eq!((d.src_label, d.dst_label), (20_000, 20_001));
    }

    // 3. Allow TCP/8080 from anywhere: the next connection goes through.
    maps.upsert_policy(&PolicyEntry {
        ep_id: ep2.ep_id,
        direction: Direction::Ingress,
        identity: 0,
        proto: 6,
        port: PORT,
        port_prefix: 16,
        action: PolicyAction::Allow,
        rule: 1,
    })
    .unwrap();
    echo(&p1.ns.path(), to).expect("allowed by the L4 rule");
    assert_eq!(maps.lost_events().unwrap(), 0);

    drop(server);
    for p in [&p1, &p2] {
        assert_eq!(
            datapath::loader::detach(&scratch.pin_dir(), &p.host_if).unwrap(),
            2
        );
    }
    // With the programs gone nothing forwards any more.
    let _server = EchoServer::start(p2.ns.path(), SocketAddr::from((p2.ip, PORT)));
    assert!(echo(&p1.ns.path(), to).is_err(), "no datapath, no path");
}

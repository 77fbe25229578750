//! The map over the exporter's twelve-flow fixture, whose counts are known
//! by hand (flow numbers in the comments are its lines), and over made-up
//! peers.

use proto::flow::{Endpoint, Flow, Ip, Verdict};
use proto::observer::GetFlowsResponse;

use super::*;

fn fixture() -> Vec<GetFlowsResponse> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../flow-exporter/testdata/flows.jsonl"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn build(g: Grouping) -> Graph {
    let mut m = ServiceMap::new(g);
    for r in fixture() {
        m.add_response(&r);
    }
    m.graph()
}

/// `(source, target, forwarded, dropped, other)` per edge, in order.
fn counts(g: &Graph) -> Vec<(&str, &str, u64, u64, u64)> {
    g.edges
        .iter()
        .map(|e| {
            (
                e.source.as_str(),
                e.target.as_str(),
                e.forwarded,
                e.dropped,
                e.other,
            )
        })
        .collect()
}

#[test]
fn by_workload() {
    let g = build(Grouping::Workload);
    assert_eq!(g.flows, 12);
    assert_eq!(g.overflow, 0);
    assert_eq!(
        counts(&g),
        [
            // 1 and 7 dropped; 10 (deathstar's reply) counted here.
            ("default/xwing", "default/deathstar", 1, 2, 0),
            // 2, 3 (the reply) and 8 (ICMP).
            ("default/tiefighter", "default/deathstar", 3, 0, 0),
            ("reserved:world", "default/deathstar", 0, 1, 0),
            ("default/tiefighter", "reserved:world", 1, 0, 0),
            ("default/xwing", "kube-system/coredns", 1, 0, 0),
            ("default/xwing", "reserved:world", 1, 0, 0),
            ("reserved:host", "reserved:remote-node", 1, 0, 0),
            ("telecom/diameter-0", "telecom/diameter-1", 1, 0, 0),
        ]
    );
    let e = &g.edges[1];
    assert_eq!(e.total, 3);
    // The reply's port is its source port: the server's 80, not the
    // client's ephemeral one.
    assert_eq!(e.ports, ["80/TCP", "ICMPv4"]);
    // Translated by the deathstar service (flow 2, and the reply's
    // source_service): the edge names it; the node is the backend.
    assert_eq!(e.services, ["default/deathstar"]);
    assert_eq!(g.edges[4].services, ["kube-system/kube-dns"]);
    assert_eq!(g.edges[4].ports, ["53/UDP"]);
    assert_eq!(g.edges[6].ports, ["ICMPv6"]);
    let ids: Vec<&str> = g.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "default/deathstar",
            "default/tiefighter",
            "default/xwing",
            "kube-system/coredns",
            "reserved:host",
            "reserved:remote-node",
            "reserved:world",
            "telecom/diameter-0",
            "telecom/diameter-1",
        ]
    );
    let kind = |id: &str| g.node(id).unwrap().kind;
    assert_eq!(kind("reserved:world"), NodeKind::World);
    assert_eq!(kind("reserved:host"), NodeKind::Host);
    assert_eq!(kind("reserved:remote-node"), NodeKind::Reserved);
    assert_eq!(kind("default/xwing"), NodeKind::Workload);
    assert_eq!(g.node("reserved:world").unwrap().label, "world");
    assert_eq!(
        g.node("kube-system/coredns").unwrap().namespace,
        "kube-system"
    );
    assert_eq!(g.edges[0].tone(), Tone::Mixed);
    assert_eq!(g.edges[1].tone(), Tone::Forwarded);
    assert_eq!(g.edges[2].tone(), Tone::Dropped);
}

#[test]
fn by_namespace_and_by_identity() {
    let g = build(Grouping::Namespace);
    assert_eq!(
        counts(&g),
        [
            ("default", "default", 4, 2, 0),
            ("default", "reserved:world", 2, 0, 0),
            ("reserved:world", "default", 0, 1, 0),
            ("default", "kube-system", 1, 0, 0),
            ("reserved:host", "reserved:remote-node", 1, 0, 0),
            ("telecom", "telecom", 1, 0, 0),
        ]
    );
    assert_eq!(g.nodes.len(), 6);
    assert_eq!(g.node("default").unwrap().kind, NodeKind::Namespace);

    let g = build(Grouping::Identity);
    assert_eq!(g.edges.len(), 8);
    assert_eq!(g.nodes.len(), 9);
    assert_eq!(
        counts(&g)[..2],
        [
            ("identity:1001", "identity:1002", 1, 2, 0),
            ("identity:1003", "identity:1002", 3, 0, 0),
        ]
    );
    let n = g.node("identity:1001").unwrap();
    assert_eq!(n.kind, NodeKind::Identity);
    assert_eq!(n.namespace, "default");
    assert!(n.label.starts_with("1001"), "{}", n.label);
    assert_eq!(n.filter_flags("from"), ["--from-identity", "1001"]);
}

#[test]
fn focus_keeps_a_node_and_its_neighbours() {
    let g = build(Grouping::Workload);
    let f = g.focus("default/deathstar");
    assert_eq!(f.edges.len(), 3);
    let ids: Vec<&str> = f.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "default/deathstar",
            "default/tiefighter",
            "default/xwing",
            "reserved:world"
        ]
    );
    assert_eq!(
        g.edge_filter(&g.edges[0]),
        [
            "--from-pod",
            "default/xwing",
            "--to-pod",
            "default/deathstar"
        ]
    );
    assert_eq!(
        g.edge_filter(&g.edges[2]),
        ["--from-identity", "2", "--to-pod", "default/deathstar"]
    );
}

fn peer_flow(src_ip: &str, dst: Endpoint, verdict: Verdict) -> Flow {
    Flow {
        verdict: verdict as i32,
        ip: Some(Ip {
            source: src_ip.into(),
            destination: "10.0.0.5".into(),
            ..Default::default()
        }),
        source: Some(Endpoint::default()),
        destination: Some(dst),
        ..Default::default()
    }
}

#[test]
fn peers_without_pods_are_named_sensibly() {
    let web = Endpoint {
        namespace: "shop".into(),
        pod_name: "web-7d4b9c8f6d-x2x4z".into(),
        identity: 3000,
        ..Default::default()
    };
    let mut m = ServiceMap::new(Grouping::Workload);
    m.add(&peer_flow("192.0.2.7", web.clone(), Verdict::Audit));
    m.add(&Flow::default());
    let g = m.graph();
    // The pod name without the Deployment's hash and suffix.
    assert_eq!(g.edges[0].target, "shop/web");
    let ip = g.node("ip:192.0.2.7").unwrap();
    assert_eq!((ip.kind, ip.label.as_str()), (NodeKind::Ip, "192.0.2.7"));
    assert_eq!(ip.filter_flags("from"), ["--from-ip", "192.0.2.7"]);
    assert_eq!(g.edges[0].other, 1);
    assert_eq!(g.edges[0].tone(), Tone::Other);
    assert_eq!(g.node("unknown").unwrap().kind, NodeKind::Unknown);

    // By namespace, an address without identity is unknown (not one node
    // per address).
    let mut m = ServiceMap::new(Grouping::Namespace);
    m.add(&peer_flow("192.0.2.7", web.clone(), Verdict::Forwarded));
    m.add(&peer_flow("192.0.2.8", web, Verdict::Forwarded));
    let g = m.graph();
    assert_eq!(g.edges.len(), 1);
    assert_eq!(g.edges[0].source, "unknown");
    assert_eq!(g.edges[0].forwarded, 2);
}

#[test]
fn pod_names_keep_their_own_shape() {
    for (pod, want) in [
        ("deathstar-6fb5694d48-5hmds", "deathstar"),
        ("coredns-5d78c9869d-abcde", "coredns"),
        ("diameter-0", "diameter-0"),
        ("my-service-backend-abcde", "my-service-backend-abcde"),
        ("xwing", "xwing"),
    ] {
        assert_eq!(pod_workload(pod), want, "{pod}");
    }
}

#[test]
fn edges_are_bounded() {
    let mut m = ServiceMap::new(Grouping::Workload);
    let dst = Endpoint {
        namespace: "a".into(),
        pod_name: "b".into(),
        ..Default::default()
    };
    for i in 0..defaults::MAP_EDGES_MAX + 3 {
        let ip = format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256);
        m.add(&peer_flow(&ip, dst.clone(), Verdict::Forwarded));
    }
    let g = m.graph();
    assert_eq!(g.edges.len(), defaults::MAP_EDGES_MAX);
    assert_eq!(g.overflow, 3);
    assert_eq!(g.flows, defaults::MAP_EDGES_MAX as u64 + 3);
}

#[test]
fn grouping_names_parse() {
    for g in Grouping::ALL {
        assert_eq!(Grouping::parse(g.name()).unwrap(), g);
    }
    let e = Grouping::parse("pods").unwrap_err().to_string();
    assert!(e.contains("\"pods\"") && e.contains("workload"), "{e}");
}

/// A socket-LB `pre-xlate` flow goes to the service's virtual address: the
/// map shows the service (not its address or `unknown`), in its namespace
/// when grouping by namespace; its reply comes back to the same arrow.
#[test]
fn a_service_address_is_the_service() {
    let client = Endpoint {
        namespace: "default".into(),
        pod_name: "tiefighter".into(),
        identity: 257,
        ..Default::default()
    };
    let deathstar = proto::flow::Service {
        name: "deathstar".into(),
        namespace: "default".into(),
    };
    let to_vip = Flow {
        verdict: Verdict::Traced as i32,
        ip: Some(Ip {
            source: "10.0.1.4".into(),
            destination: "10.96.0.20".into(),
            ..Default::default()
        }),
        source: Some(client.clone()),
        destination: Some(Endpoint::default()),
        destination_service: Some(deathstar.clone()),
        ..Default::default()
    };
    let reply = Flow {
        verdict: Verdict::Forwarded as i32,
        ip: Some(Ip {
            source: "10.96.0.20".into(),
            destination: "10.0.1.4".into(),
            ..Default::default()
        }),
        source: Some(Endpoint::default()),
        destination: Some(client),
        source_service: Some(deathstar),
        is_reply: Some(proto::wkt::BoolValue { value: true }),
        ..Default::default()
    };
    let mut m = ServiceMap::new(Grouping::Workload);
    m.add(&to_vip);
    m.add(&reply);
    let g = m.graph();
    assert_eq!(
        counts(&g),
        [("default/tiefighter", "service:default/deathstar", 1, 0, 1)]
    );
    let svc = g.node("service:default/deathstar").unwrap();
    assert_eq!(
        (svc.kind, svc.label.as_str()),
        (NodeKind::Service, "default/deathstar (service)")
    );
    assert_eq!(
        svc.filter_flags("to"),
        ["--to-service", "default/deathstar"]
    );

    let mut m = ServiceMap::new(Grouping::Namespace);
    m.add(&to_vip);
    let g = m.graph();
    assert_eq!(counts(&g), [("default", "default", 0, 0, 1)]);
}

//! Privileged, on the local cluster: pod-to-pod TCP, UDP and ICMP on one
//! node without policy, the node reaching its pods, and the node's
//! exporter serving the forwarded flows with pod names; afterwards nothing
//! of the cluster is left.

use std::net::SocketAddr;

use it::flows::{self, dport, dst, src, verdict};
use it::traffic::{EchoServers, ping, tcp_exchange, udp_exchange};
use it::{Cluster, require_privileges};

#[test]
fn pod_to_pod_tcp_udp_icmp_on_one_node() {
    require_privileges!("busybox");
    let cluster = Cluster::single("10.210.1.0/24");
    {
        let node = cluster.node();
        let a = node.add_pod("alpha", "app=alpha");
        let b = node.add_pod("beta", "app=beta");
        assert_ne!(a.ip, b.ip);
        let _srv = EchoServers::start(&b.netns(), b.ip, &[8080], &[5353]);
        let _srv_a = EchoServers::start(&a.netns(), a.ip, &[8080], &[]);

        tcp_exchange(&a.netns(), SocketAddr::from((b.ip, 8080))).expect("alpha -> beta TCP");
        tcp_exchange(&b.netns(), SocketAddr::from((a.ip, 8080))).expect("beta -> alpha TCP");
        udp_exchange(&a.netns(), SocketAddr::from((b.ip, 5353))).expect("alpha -> beta UDP");
        assert!(ping(&a.netns(), b.ip), "alpha pings beta");
        assert!(ping(&b.netns(), a.ip), "beta pings alpha");
        // A port nobody listens on: refused (RST), not a datapath drop.
        let refused = tcp_exchange(&a.netns(), SocketAddr::from((b.ip, 9)));
        assert!(
            refused.as_ref().is_err_and(|e| e.contains("refused")),
            "{refused:?}"
        );
        // The node itself reaches its pods.
        let out = node
            .netns
            .run(&["busybox", "ping", "-c", "1", "-W", "2", &b.ip.to_string()]);
        assert!(out.status.success(), "node pings beta");

        // The exporter serves the traffic with pod names and verdicts.
        let f = node.wait_flow("alpha -> beta TCP/8080 forwarded", |f| {
            src(f) == "alpha" && dst(f) == "beta" && dport(f) == 8080 && verdict(f) == "FORWARDED"
        });
        assert_eq!(f["source"]["namespace"], "default", "{f}");
        assert!(
            f["source"]["labels"].to_string().contains("app=alpha"),
            "{f}"
        );
        assert!(f["source"]["identity"].as_u64().unwrap_or(0) >= 256, "{f}");
        assert_eq!(f["node_name"], node.name.as_str(), "{f}");
        node.wait_flow("alpha -> beta UDP/5353", |f| {
            src(f) == "alpha" && dst(f) == "beta" && f["l4"]["UDP"]["destination_port"] == 5353
        });
        node.wait_flow("alpha -> beta ICMP", |f| {
            src(f) == "alpha" && dst(f) == "beta" && f["l4"]["ICMPv4"].is_object()
        });
        let drops: Vec<String> = node
            .flows(10_000)
            .iter()
            .filter(|f| verdict(f) == "DROPPED")
            .map(flows::line)
            .collect();
        assert!(drops.is_empty(), "no drops without policy: {drops:?}");
    }
    cluster.shutdown();
}

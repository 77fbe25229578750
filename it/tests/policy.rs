//! Privileged, on the local cluster: CiliumNetworkPolicy YAML dropped into
//! a node's policy directory is enforced on real traffic, in both
//! directions: `fromEndpoints`/`toEndpoints` with `toPorts`, `ingressDeny`
//! and `egressDeny` (deny wins over allow), `fromCIDR`/`toCIDR` with an
//! external namespace behind the node, and replies of allowed connections
//! pass an enforcing endpoint through conntrack. The node exporter's flows
//! show the verdicts with pod names. Port ranges (a denied port inside an
//! allowed range) and `enableDefaultDeny: {ingress: false}` too.

use std::net::SocketAddr;

use it::flows::{dport, dst, src, verdict};
use it::traffic::{EchoServers, ping, tcp_exchange, udp_exchange};
use it::{Cluster, require_privileges};

fn to(ip: std::net::Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::from((ip, port))
}

/// A policy-verdict flow allowing `from` -> `to`:`port`.
fn allowed_verdict(f: &serde_json::Value, from: &str, to: &str, port: u64) -> bool {
    is_policy_verdict(f)
        && src(f) == from
        && dst(f) == to
        && dport(f) == port
        && verdict(f) == "FORWARDED"
}

/// A policy-verdict flow from `from` to `to` on `port`.
fn verdict_flow(f: &serde_json::Value, from: &str, to: &str, port: u64) -> bool {
    f["event_type"]["type"] == 5 && src(f) == from && dst(f) == to && dport(f) == port
}

/// The names in one of a flow's policy fields (`ingress_allowed_by`, ...).
fn policy_names(f: &serde_json::Value, field: &str) -> Vec<String> {
    f[field]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|p| {
                    format!(
                        "{}/{}",
                        p["namespace"].as_str().unwrap_or(""),
                        p["name"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every policy field a flow fills.
fn policy_fields(f: &serde_json::Value) -> Vec<&'static str> {
    [
        "ingress_allowed_by",
        "egress_allowed_by",
        "ingress_denied_by",
        "egress_denied_by",
    ]
    .into_iter()
    .filter(|k| f[*k].as_array().is_some_and(|l| !l.is_empty()))
    .collect()
}

/// `hubble observe -t policy-verdict --print-policy-names` against the
/// node's exporter, compact output.
fn observe_policy_names(node: &it::Node) -> String {
    let addr = node.exporter_addr.expect("node has an exporter");
    let out = std::process::Command::new(it::bins::bin("hubble"))
        .args(["observe", "--server", &addr.to_string(), "--last", "10000"])
        .args([
            "-t",
            "policy-verdict",
            "--print-policy-names",
            "-o",
            "compact",
        ])
        .output()
        .expect("run hubble observe");
    assert!(
        out.status.success(),
        "hubble observe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `traffic` until the node's exporter serves a flow matching `pred`
/// (the exporter reloads the agent's enrichment, policy names included,
/// every second, so the first connection after a change may be unnamed).
fn wait_traffic_flow(
    node: &it::Node,
    what: &str,
    traffic: impl Fn(),
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        traffic();
        if let Some(f) = node.flows(10_000).into_iter().find(|f| pred(f)) {
            return f;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no flow {what} within 20 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

fn denied_flow(f: &serde_json::Value, from: &str, to: &str, port: u64) -> bool {
    src(f) == from
        && dst(f) == to
        && dport(f) == port
        && verdict(f) == "DROPPED"
        && f["drop_reason_desc"] == "POLICY_DENIED"
}

const WEB_INGRESS: &str = r#"apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: web-ingress
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      app: web
  ingress:
  - fromEndpoints:
    - matchLabels:
        role: frontend
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
"#;

const WEB_INGRESS_DENY: &str = r#"apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: web-ingress-deny
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      app: web
  ingressDeny:
  - fromEndpoints:
    - matchLabels:
        role: frontend
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
"#;

#[test]
fn ingress_allow_and_deny() {
    require_privileges!("busybox");
    let cluster = Cluster::single("10.210.2.0/24");
    {
        let node = cluster.node();
        let web = node.add_pod("web", "app=web");
        let good = node.add_pod("good", "role=frontend");
        let bad = node.add_pod("bad", "role=other");
        let _srv = EchoServers::start(&web.netns(), web.ip, &[80, 8080], &[5353]);
        let _srv_good = EchoServers::start(&good.netns(), good.ip, &[80], &[]);

        node.apply_policy("web.yaml", WEB_INGRESS);
        tcp_exchange(&good.netns(), to(web.ip, 80)).expect("frontend -> web:80 allowed");
        tcp_exchange(&good.netns(), to(web.ip, 8080)).expect_err("frontend -> web:8080 denied");
        udp_exchange(&good.netns(), to(web.ip, 5353)).expect_err("frontend -> web UDP denied");
        tcp_exchange(&bad.netns(), to(web.ip, 80)).expect_err("other -> web:80 denied");
        assert!(!ping(&bad.netns(), web.ip), "ICMP to web denied");
        // Ingress enforcement of web does not limit what web itself starts,
        // and the replies to web's connection come back through conntrack.
        tcp_exchange(&web.netns(), to(good.ip, 80)).expect("web -> frontend (egress free)");

        let f = node.wait_flow("bad -> web:80 POLICY_DENIED", |f| {
            denied_flow(f, "bad", "web", 80)
        });
        assert_eq!(f["traffic_direction"], "INGRESS", "{f}");
        assert!(
            f["source"]["labels"].to_string().contains("role=other"),
            "{f}"
        );
        node.wait_flow("good -> web:8080 POLICY_DENIED", |f| {
            denied_flow(f, "good", "web", 8080)
        });
        node.wait_flow("good -> web:80 forwarded", |f| {
            src(f) == "good" && dst(f) == "web" && dport(f) == 80 && verdict(f) == "FORWARDED"
        });

        // Policy names, as Hubble fills them: the allow names web-ingress
        // in ingress_allowed_by; the default deny of bad names nobody.
        let allowed = wait_traffic_flow(
            node,
            "good -> web:80 ALLOWED BY web-ingress",
            || drop(tcp_exchange(&good.netns(), to(web.ip, 80))),
            |f| verdict_flow(f, "good", "web", 80) && !policy_fields(f).is_empty(),
        );
        assert_eq!(verdict(&allowed), "FORWARDED", "{allowed}");
        assert_eq!(policy_fields(&allowed), ["ingress_allowed_by"], "{allowed}");
        assert_eq!(
            policy_names(&allowed, "ingress_allowed_by"),
            ["default/web-ingress"]
        );
        let p = &allowed["ingress_allowed_by"][0];
        assert_eq!(p["kind"], "CiliumNetworkPolicy", "{allowed}");
        // uint64 is a string in jsonpb.
        let revision: u64 = p["revision"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        assert!(revision > 0, "{allowed}");
        assert!(
            p["labels"]
                .to_string()
                .contains("io.cilium.k8s.policy.name=web-ingress"),
            "{allowed}"
        );
        let default_deny = node.wait_flow("bad -> web:80 policy verdict", |f| {
            verdict_flow(f, "bad", "web", 80)
        });
        assert_eq!(verdict(&default_deny), "DROPPED", "{default_deny}");
        assert!(
            policy_fields(&default_deny).is_empty(),
            "default deny names no policy: {default_deny}"
        );

        // ingressDeny wins over the allow, and the verdict names it.
        node.apply_policy("web-deny.yaml", WEB_INGRESS_DENY);
        tcp_exchange(&good.netns(), to(web.ip, 80)).expect_err("ingressDeny wins");
        let denied = wait_traffic_flow(
            node,
            "good -> web:80 DENIED BY web-ingress-deny",
            || drop(tcp_exchange(&good.netns(), to(web.ip, 80))),
            |f| {
                verdict_flow(f, "good", "web", 80)
                    && verdict(f) == "DROPPED"
                    && !policy_fields(f).is_empty()
            },
        );
        assert_eq!(denied["drop_reason_desc"], "POLICY_DENY", "{denied}");
        assert_eq!(policy_fields(&denied), ["ingress_denied_by"], "{denied}");
        assert_eq!(
            policy_names(&denied, "ingress_denied_by"),
            ["default/web-ingress-deny"]
        );

        // The CLI prints them as upstream's printer does.
        let out = observe_policy_names(node);
        let line = |needle: &str| out.lines().any(|l| l.contains(needle));
        assert!(
            line("INGRESS ALLOWED BY web-ingress (CiliumNetworkPolicy)"),
            "{out}"
        );
        assert!(
            line("INGRESS DENIED BY web-ingress-deny (CiliumNetworkPolicy)"),
            "{out}"
        );
        assert!(
            out.lines().any(|l| l.contains("default/bad:")
                && l.contains("INGRESS DENIED")
                && !l.contains(" BY ")),
            "default deny: DENIED without BY\n{out}"
        );
        // Removing both policies lifts enforcement.
        node.remove_policy("web-deny.yaml");
        tcp_exchange(&good.netns(), to(web.ip, 80)).expect("allowed again");
        node.remove_policy("web.yaml");
        tcp_exchange(&bad.netns(), to(web.ip, 8080)).expect("no policy: allowed");
    }
    cluster.shutdown();
}

const CLIENT_POLICY: &str = r#"apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: client
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      app: client
  egress:
  - toEndpoints:
    - matchLabels:
        app: web
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
      - port: "5353"
        protocol: UDP
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: nobody
"#;

const CLIENT_EGRESS_DENY: &str = r#"apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: client-deny
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      app: client
  egressDeny:
  - toEndpoints:
    - matchLabels:
        app: web
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
"#;

#[test]
fn egress_allow_deny_and_replies_through_conntrack() {
    require_privileges!("busybox");
    let cluster = Cluster::single("10.210.3.0/24");
    {
        let node = cluster.node();
        let client = node.add_pod("client", "app=client");
        let web = node.add_pod("web", "app=web");
        let other = node.add_pod("other", "app=other");
        let _srv_web = EchoServers::start(&web.netns(), web.ip, &[80, 8080], &[5353]);
        let _srv_other = EchoServers::start(&other.netns(), other.ip, &[80], &[]);
        let _srv_client = EchoServers::start(&client.netns(), client.ip, &[8080], &[]);

        node.apply_policy("client.yaml", CLIENT_POLICY);
        let ep = node
            .endpoints()
            .into_iter()
            .find(|e| e.record.ip == client.ip)
            .expect("client endpoint");
        assert!(ep.enforcement.ingress && ep.enforcement.egress, "{ep:?}");

        // Allowed egress; the replies pass client's enforced ingress only
        // because conntrack knows the connection.
        tcp_exchange(&client.netns(), to(web.ip, 80)).expect("client -> web:80 and its replies");
        udp_exchange(&client.netns(), to(web.ip, 5353)).expect("client -> web UDP and its reply");
        tcp_exchange(&client.netns(), to(web.ip, 8080)).expect_err("client -> web:8080 denied");
        tcp_exchange(&client.netns(), to(other.ip, 80)).expect_err("client -> other denied");
        // Nobody may start a connection to client (ingress allows only app=nobody).
        tcp_exchange(&web.netns(), to(client.ip, 8080)).expect_err("web -> client denied");
        assert!(!ping(&client.netns(), web.ip), "ICMP not allowed by egress");

        node.wait_flow("client -> other:80 POLICY_DENIED (egress)", |f| {
            denied_flow(f, "client", "other", 80) && f["traffic_direction"] == "EGRESS"
        });
        node.wait_flow("web -> client:8080 POLICY_DENIED (ingress)", |f| {
            denied_flow(f, "web", "client", 8080) && f["traffic_direction"] == "INGRESS"
        });
        let reply = node.wait_flow("a reply web -> client forwarded", |f| {
            src(f) == "web"
                && dst(f) == "client"
                && verdict(f) == "FORWARDED"
                && f["is_reply"] == true
        });
        assert!(
            reply["l4"]["TCP"]["source_port"] == 80 || reply["l4"]["UDP"]["source_port"] == 5353,
            "{reply}"
        );
        let reply_drops: Vec<String> = node
            .flows(10_000)
            .iter()
            .filter(|f| src(f) == "web" && dst(f) == "client" && verdict(f) == "DROPPED")
            .filter(|f| f["is_reply"] == true)
            .map(it::flows::line)
            .collect();
        assert!(reply_drops.is_empty(), "replies dropped: {reply_drops:?}");

        // egressDeny wins over the egress allow.
        node.apply_policy("client-deny.yaml", CLIENT_EGRESS_DENY);
        tcp_exchange(&client.netns(), to(web.ip, 80)).expect_err("egressDeny wins");
        udp_exchange(&client.netns(), to(web.ip, 5353)).expect("UDP still allowed");
    }
    cluster.shutdown();
}

const CIDR_POLICY: &str = r#"apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: cidr
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      app: web
  ingress:
  - fromCIDR:
    - 192.168.77.2/32
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
  egress:
  - toCIDR:
    - 192.168.77.0/24
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
"#;

#[test]
fn cidr_rules_with_external_networks() {
    require_privileges!("busybox");
    let cluster = Cluster::single("10.210.4.0/24");
    {
        let node = cluster.node();
        let web = node.add_pod("web", "app=web");
        let ext = node.add_external(77);
        let ext2 = node.add_external(78);
        let _srv_web = EchoServers::start(&web.netns(), web.ip, &[80], &[]);
        let _srv_ext = EchoServers::start(&ext.ns.path(), ext.ip, &[80, 8080], &[]);
        let _srv_ext2 = EchoServers::start(&ext2.ns.path(), ext2.ip, &[80], &[]);

        // Without policy, world traffic flows both ways.
        tcp_exchange(&web.netns(), to(ext2.ip, 80)).expect("web -> world");
        tcp_exchange(&ext2.ns.path(), to(web.ip, 80)).expect("world -> web");

        node.apply_policy("cidr.yaml", CIDR_POLICY);
        tcp_exchange(&ext.ns.path(), to(web.ip, 80)).expect("fromCIDR 192.168.77.2/32 allowed");
        tcp_exchange(&ext2.ns.path(), to(web.ip, 80)).expect_err("192.168.78.2 not in fromCIDR");
        tcp_exchange(&web.netns(), to(ext.ip, 80)).expect("toCIDR 192.168.77.0/24:80 allowed");
        tcp_exchange(&web.netns(), to(ext.ip, 8080)).expect_err("toCIDR only port 80");
        tcp_exchange(&web.netns(), to(ext2.ip, 80)).expect_err("192.168.78.0/24 not in toCIDR");

        let f = node.wait_flow("192.168.78.2 -> web:80 POLICY_DENIED", |f| {
            f["IP"]["source"] == ext2.ip.to_string()
                && dst(f) == "web"
                && dport(f) == 80
                && verdict(f) == "DROPPED"
                && f["drop_reason_desc"] == "POLICY_DENIED"
        });
        assert_eq!(f["traffic_direction"], "INGRESS", "{f}");
        node.wait_flow("web -> 192.168.78.2:80 POLICY_DENIED", |f| {
            src(f) == "web"
                && f["IP"]["destination"] == ext2.ip.to_string()
                && verdict(f) == "DROPPED"
                && f["drop_reason_desc"] == "POLICY_DENIED"
        });
        node.wait_flow("192.168.77.2 -> web:80 forwarded", |f| {
            f["IP"]["source"] == ext.ip.to_string()
                && dst(f) == "web"
                && dport(f) == 80
                && verdict(f) == "FORWARDED"
        });
    }
    cluster.shutdown();
}

/// `icmps` on `target`'s ingress: echo requests (type 8) from `pinger`
/// only, or (the L4-only variant) by Cilium's name `EchoRequest` from any
/// peer.
fn icmp_policy(peer_and_type: &str) -> String {
    format!(
        r#"apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: target-icmp
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      app: target
  ingress:
{peer_and_type}"#
    )
}

const TARGET_TCP_ONLY: &str = r#"apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: target-icmp
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      app: target
  ingress:
  - toPorts:
    - ports:
      - port: "80"
        protocol: TCP
"#;

fn icmp_type(f: &serde_json::Value) -> Option<u64> {
    f["l4"]["ICMPv4"]["type"].as_u64()
}

/// A policy-verdict flow (Hubble's event type 5).
fn is_policy_verdict(f: &serde_json::Value) -> bool {
    f["event_type"]["type"] == 5
}

#[test]
fn icmps_allow_ping_by_type() {
    require_privileges!("busybox");
    let cluster = Cluster::single("10.210.7.0/24");
    {
        let node = cluster.node();
        let target = node.add_pod("target", "app=target");
        let pinger = node.add_pod("pinger", "app=pinger");
        let stranger = node.add_pod("stranger", "app=stranger");
        assert!(ping(&pinger.netns(), target.ip), "no policy: ping works");

        // Type 8 by number, from pinger only.
        node.apply_policy(
            "icmp.yaml",
            &icmp_policy(
                "  - fromEndpoints:\n    - matchLabels:\n        app: pinger\n    icmps:\n    - fields:\n      - type: 8\n        family: IPv4\n",
            ),
        );
        assert!(
            ping(&pinger.netns(), target.ip),
            "icmps type 8 allows pinger's ping"
        );
        assert!(
            !ping(&stranger.netns(), target.ip),
            "stranger is not allowed"
        );
        let f = node.wait_flow("pinger -> target ICMPv4 type 8 allowed verdict", |f| {
            is_policy_verdict(f)
                && src(f) == "pinger"
                && dst(f) == "target"
                && verdict(f) == "FORWARDED"
                && icmp_type(f) == Some(8)
        });
        assert_eq!(f["traffic_direction"], "INGRESS", "{f}");
        node.wait_flow("stranger -> target ICMPv4 type 8 denied verdict", |f| {
            is_policy_verdict(f)
                && src(f) == "stranger"
                && dst(f) == "target"
                && verdict(f) == "DROPPED"
                && icmp_type(f) == Some(8)
        });

        // By Cilium's name, L4-only: any peer may ping.
        node.apply_policy(
            "icmp.yaml",
            &icmp_policy("  - icmps:\n    - fields:\n      - type: EchoRequest\n"),
        );
        assert!(ping(&pinger.netns(), target.ip), "EchoRequest allows ping");
        assert!(ping(&stranger.netns(), target.ip), "from any peer");

        // A policy without icmps: default deny blocks ping.
        node.apply_policy("icmp.yaml", TARGET_TCP_ONLY);
        assert!(!ping(&pinger.netns(), target.ip), "no icmps: ping denied");
        node.wait_flow("pinger -> target ICMPv4 type 8 POLICY_DENIED", |f| {
            src(f) == "pinger"
                && dst(f) == "target"
                && verdict(f) == "DROPPED"
                && f["drop_reason_desc"] == "POLICY_DENIED"
                && icmp_type(f) == Some(8)
        });
    }
    cluster.shutdown();
}

/// A range of 3,000 ports from the clients, with one port inside it denied
/// for every peer.
const RANGED_INGRESS: &str = r#"apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: ranged
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      app: ranged
  ingress:
  - fromEndpoints:
    - matchLabels:
        role: client
    toPorts:
    - ports:
      - port: "2000"
        endPort: 4999
        protocol: TCP
  ingressDeny:
  - toPorts:
    - ports:
      - port: "2500"
        protocol: TCP
"#;

/// The same deny without default-deny: ports no rule names stay open.
const RANGED_NO_DEFAULT_DENY: &str = r#"apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: ranged
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      app: ranged
  enableDefaultDeny:
    ingress: false
  ingressDeny:
  - toPorts:
    - ports:
      - port: "2500"
        protocol: TCP
"#;

#[test]
fn port_range_and_enable_default_deny_false() {
    require_privileges!("busybox");
    let cluster = Cluster::single("10.210.57.0/24");
    {
        let node = cluster.node();
        let ranged = node.add_pod("ranged", "app=ranged");
        let client = node.add_pod("client", "role=client");
        let _srv = EchoServers::start(&ranged.netns(), ranged.ip, &[2000, 2500, 4999, 5000], &[]);

        node.apply_policy("ranged.yaml", RANGED_INGRESS);
        for port in [2000, 4999] {
            tcp_exchange(&client.netns(), to(ranged.ip, port))
                .unwrap_or_else(|e| panic!("client -> ranged:{port} inside the range: {e}"));
        }
        tcp_exchange(&client.netns(), to(ranged.ip, 5000)).expect_err("5000 is outside the range");
        tcp_exchange(&client.netns(), to(ranged.ip, 2500)).expect_err("2500 is denied");
        node.wait_flow("client -> ranged:4999 allowed verdict", |f| {
            allowed_verdict(f, "client", "ranged", 4999)
        });
        node.wait_flow("client -> ranged:5000 POLICY_DENIED", |f| {
            denied_flow(f, "client", "ranged", 5000)
        });
        node.wait_flow("client -> ranged:2500 POLICY_DENY", |f| {
            src(f) == "client"
                && dst(f) == "ranged"
                && dport(f) == 2500
                && verdict(f) == "DROPPED"
                && f["drop_reason_desc"] == "POLICY_DENY"
        });

        // enableDefaultDeny: {ingress: false}: the deny still applies, the
        // rest of ingress is open (Cilium >= 1.15).
        node.apply_policy("ranged.yaml", RANGED_NO_DEFAULT_DENY);
        tcp_exchange(&client.netns(), to(ranged.ip, 5000)).expect("no default deny: 5000 open");
        tcp_exchange(&client.netns(), to(ranged.ip, 2000)).expect("no default deny: 2000 open");
        tcp_exchange(&client.netns(), to(ranged.ip, 2500)).expect_err("the deny still applies");
    }
    cluster.shutdown();
}

/// `port: http` resolved against the port the selected pod declares.
const NAMED_PORT_INGRESS: &str = r#"apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: named
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      app: named
  ingress:
  - toPorts:
    - ports:
      - port: http
        protocol: TCP
"#;

#[test]
fn named_port_resolved_per_endpoint() {
    require_privileges!("busybox");
    let cluster = Cluster::single("10.210.58.0/24");
    {
        let node = cluster.node();
        // Both pods run servers on 8080 and 9090, but name different ones.
        let named = node.add_pod_with_ports("named", "app=named", "http:8080,metrics:9090");
        let other = node.add_pod_with_ports("other", "app=named,alt=yes", "http:9090");
        let client = node.add_pod("client", "role=client");
        let _srv = EchoServers::start(&named.netns(), named.ip, &[8080, 9090], &[]);
        let _srv2 = EchoServers::start(&other.netns(), other.ip, &[8080, 9090], &[]);

        node.apply_policy("named.yaml", NAMED_PORT_INGRESS);
        tcp_exchange(&client.netns(), to(named.ip, 8080)).expect("named's http is 8080");
        tcp_exchange(&client.netns(), to(named.ip, 9090)).expect_err("9090 is not named http");
        tcp_exchange(&client.netns(), to(other.ip, 9090)).expect("other's http is 9090");
        tcp_exchange(&client.netns(), to(other.ip, 8080)).expect_err("8080 is not other's http");
        node.wait_flow("client -> named:8080 allowed verdict", |f| {
            allowed_verdict(f, "client", "named", 8080)
        });
        node.wait_flow("client -> named:9090 POLICY_DENIED", |f| {
            denied_flow(f, "client", "named", 9090)
        });
    }
    cluster.shutdown();
}

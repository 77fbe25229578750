//! Privileged, on two-node local clusters (a real etcd, the VXLAN
//! overlay): services through the agents, with real traffic. Services are
//! stored once through one node's agent; every node's agent programs its
//! kernel LB maps, and the tests wait for the kernel maps (not just the
//! agent's desired state) before sending traffic. Backends are servers
//! that answer with their pod's name, so a client learns which backend a
//! connection reached.
//!
//! - `clusterip_spreads_answers_from_the_vip_and_follows_backend_changes`:
//!   ClusterIP TCP and UDP from a pod on a backend's node and from a pod on
//!   the other node reach every backend (each client keeps connecting
//!   until it has seen all three, at most [`MAX_TRIES`]); replies come from
//!   the VIP (a connected socket accepts nothing else, and an unconnected
//!   UDP `recvfrom` shows the VIP as source); a backend pod deleted while a
//!   connection through the VIP runs gets no new connections and the
//!   established one goes on; a backend of an EndpointSlice marked
//!   terminating keeps its established connection but gets no new ones; a
//!   service without backends drops with `SERVICE_BACKEND_NOT_FOUND`.
//! - `nodeport_from_outside_and_policy_after_translation`: an external
//!   client on the underlay reaches a NodePort on each node's address, and
//!   through each node both backends (one on the other node); with a
//!   policy allowing `app=allowed` into the backends, an allowed pod
//!   reaches both through the VIP and a denied one is dropped with
//!   `POLICY_DENIED` on the backend's node, against the backend. The
//!   control plane around it: one write through one node's agent is in
//!   force on every node (the ClusterIP, and each node's NodePort frontend
//!   on its own address); a second service taking a frontend in force is
//!   refused naming both and changes nothing; a delete through the other
//!   node removes it from every agent and kernel.
//!
//! Each test ends by checking that nothing of its cluster is left.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::time::{Duration, Instant};

use datapath::agent::services::ServiceList;
use datapath::lb::LbProto;
use it::services::{self, kernel_active, kernel_frontend};
use it::traffic::{Stream, WhoServers, tcp_exchange, tcp_who, udp_who};
use it::{Cluster, Node, Pod, require_privileges, wait_for};
use serde_json::Value;

/// Connections a client may need before it has seen every backend (with
/// random selection among 3 backends, missing one over 100 connections
/// has a probability of about 1e-17).
const MAX_TRIES: usize = 100;
/// New connections checked after a backend change.
const AFTER_CHANGE: usize = 30;

const WEB_VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 61);
const SLICE_VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 62);
const EMPTY_VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 63);
const VAULT_VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 71);
const VAULT_NODE_PORT: u16 = 30071;

const WEB: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  clusterIP: 10.96.0.61
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: 8080
  - name: dns
    protocol: UDP
    port: 53
    targetPort: 5353
---
apiVersion: v1
kind: Service
metadata:
  name: empty
  namespace: default
spec:
  clusterIP: 10.96.0.63
  selector:
    app: nobody
  ports:
  - port: 80
    targetPort: 8080
";

/// A selector-less Service whose backends an EndpointSlice lists:
/// `(address, terminating)` each.
fn sliced(endpoints: &[(Ipv4Addr, bool)]) -> String {
    let mut s = String::from(
        "apiVersion: v1
kind: Service
metadata:
  name: web-sliced
  namespace: default
spec:
  clusterIP: 10.96.0.62
  ports:
  - name: http
    port: 80
    targetPort: 8080
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-sliced-1
  namespace: default
  labels:
    kubernetes.io/service-name: web-sliced
addressType: IPv4
ports:
- name: http
  port: 8080
endpoints:
",
    );
    for (ip, terminating) in endpoints {
        s.push_str(&format!("- addresses: [{ip}]\n"));
        if *terminating {
            s.push_str("  conditions: {ready: false, serving: true, terminating: true}\n");
        }
    }
    s
}

const VAULT: &str = "apiVersion: v1
kind: Service
metadata:
  name: vault
  namespace: default
spec:
  type: NodePort
  clusterIP: 10.96.0.71
  selector:
    app: vault
  ports:
  - port: 80
    targetPort: 8080
    nodePort: 30071
";

const VAULT_POLICY: &str = r#"apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: vault-from-allowed
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      app: vault
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: allowed
    toPorts:
    - ports:
      - port: "8080"
        protocol: TCP
"#;

fn wait_remote_nodes(nodes: &[&Node], n: usize) {
    for node in nodes {
        wait_for(&format!("{} sees {n} remote nodes", node.name), || {
            node.status().tunnel.remote_nodes == n
        });
    }
}

/// Waits until every node's kernel maps give `vip:port/proto` exactly the
/// active backends `want` (any order).
fn wait_kernel(nodes: &[&Node], vip: Ipv4Addr, port: u16, proto: LbProto, want: &[SocketAddrV4]) {
    let mut want = want.to_vec();
    want.sort();
    for n in nodes {
        wait_for(
            &format!("{}'s kernel maps: {vip}:{port}/{proto} -> {want:?}", n.name),
            || kernel_active(n, vip, port, proto) == want,
        );
    }
}

/// How [`reach_all`] connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// A TCP connection.
    Tcp,
    /// A connected UDP socket (takes answers from the peer only).
    UdpConnected,
    /// An unconnected UDP socket; the answer's source must be the peer.
    UdpUnconnected,
}

/// New connections from `ns` to `to` until every name of `all` answered;
/// panics after [`MAX_TRIES`] or on an answer from another address than
/// `to`. Returns how many connections it took.
fn reach_all(ns: &Path, to: SocketAddr, via: Via, all: &BTreeSet<String>, what: &str) -> usize {
    let mut seen = BTreeSet::new();
    for i in 1..=MAX_TRIES {
        let name = match via {
            Via::Tcp => tcp_who(ns, to),
            Via::UdpConnected => udp_who(ns, to, true).map(|(n, _)| n),
            Via::UdpUnconnected => udp_who(ns, to, false).map(|(n, from)| {
                assert_eq!(from, to, "{what}: {n} answered from {from}");
                n
            }),
        }
        .unwrap_or_else(|e| panic!("{what}: connection {i}: {e}"));
        assert!(all.contains(&name), "{what}: answer from {name:?}");
        seen.insert(name);
        if &seen == all {
            return i;
        }
    }
    panic!("{what}: only {seen:?} of {all:?} answered over {MAX_TRIES} connections");
}

/// `n` new TCP connections from `ns` to `to`; each must succeed: the
/// names that answered.
fn answers(ns: &Path, to: SocketAddr, n: usize, what: &str) -> BTreeSet<String> {
    (0..n)
        .map(|i| tcp_who(ns, to).unwrap_or_else(|e| panic!("{what}: connection {i}: {e}")))
        .collect()
}

/// Starts a [`Stream`] from `ns` to `to` and tells which of `servers`
/// accepted it (no other connection may be opened meanwhile).
fn stream_and_backend(ns: &Path, to: SocketAddr, servers: &[&WhoServers]) -> (Stream, String) {
    let before: Vec<u64> = servers.iter().map(|s| s.accepted()).collect();
    let stream = Stream::start(ns, to);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let took: Vec<&WhoServers> = servers
            .iter()
            .zip(&before)
            .filter(|(s, b)| s.accepted() > **b)
            .map(|(s, _)| *s)
            .collect();
        match took.as_slice() {
            [one] if stream.exchanges() > 0 => return (stream, one.name.clone()),
            [_, _, ..] => panic!("several backends accepted a connection meanwhile"),
            _ => {}
        }
        assert!(
            Instant::now() < deadline && stream.alive(),
            "the stream to {to} did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `stream` has made `more` exchanges beyond what it had.
fn wait_exchanges(stream: &Stream, more: u64, what: &str) {
    let target = stream.exchanges() + more;
    wait_for(what, || {
        assert!(stream.alive(), "{what}: the stream broke");
        stream.exchanges() >= target
    });
}

/// The agent's desired service state on `n` (`GET /v1/services`).
fn service_list(n: &Node) -> ServiceList {
    n.client().get("/v1/services").expect("GET /v1/services")
}

fn backend(p: &Pod<'_>, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(p.ip, port)
}

fn names(v: &[&WhoServers]) -> BTreeSet<String> {
    v.iter().map(|s| s.name.clone()).collect()
}

fn flow_ip<'a>(f: &'a Value, side: &str) -> &'a str {
    f["IP"][side].as_str().unwrap_or("")
}

#[test]
fn clusterip_spreads_answers_from_the_vip_and_follows_backend_changes() {
    require_privileges!("busybox", "etcd");
    let cluster = Cluster::multi(&["10.226.1.0/24", "10.226.2.0/24"]);
    {
        let [n1, n2] = [&cluster.nodes[0], &cluster.nodes[1]];
        wait_remote_nodes(&[n1, n2], 1);
        // Backend a beside client 1; b and c beside client 2.
        let c1 = n1.add_pod("client-1", "app=client");
        let a = n1.add_pod("web-a", "app=web");
        let b = n2.add_pod("web-b", "app=web");
        let c = n2.add_pod("web-c", "app=web");
        let c2 = n2.add_pod("client-2", "app=client");
        let sa = WhoServers::start(&a.netns(), a.ip, "web-a", &[8080], &[5353]);
        let sb = WhoServers::start(&b.netns(), b.ip, "web-b", &[8080], &[5353]);
        let sc = WhoServers::start(&c.netns(), c.ip, "web-c", &[8080], &[5353]);

        services::apply(n1, WEB).expect("apply web and empty");
        let tcp_backends: Vec<SocketAddrV4> = [&a, &b, &c].map(|p| backend(p, 8080)).to_vec();
        let udp_backends: Vec<SocketAddrV4> = [&a, &b, &c].map(|p| backend(p, 5353)).to_vec();
        wait_kernel(&[n1, n2], WEB_VIP, 80, LbProto::Tcp, &tcp_backends);
        wait_kernel(&[n1, n2], WEB_VIP, 53, LbProto::Udp, &udp_backends);

        // Every backend from each client, TCP and UDP; a connected socket
        // only takes answers from the VIP, so each answer came from it.
        let all = names(&[&sa, &sb, &sc]);
        let vip_tcp = SocketAddr::from((WEB_VIP, 80));
        let vip_udp = SocketAddr::from((WEB_VIP, 53));
        for client in [&c1, &c2] {
            let ns = client.netns();
            let name = &client.name;
            let t = reach_all(&ns, vip_tcp, Via::Tcp, &all, &format!("{name} TCP"));
            let u = reach_all(
                &ns,
                vip_udp,
                Via::UdpConnected,
                &all,
                &format!("{name} UDP"),
            );
            // Unconnected: the answer's source as the kernel reports it.
            let r = reach_all(
                &ns,
                vip_udp,
                Via::UdpUnconnected,
                &all,
                &format!("{name} UDP recvfrom"),
            );
            eprintln!(
                "{name}: all 3 backends after {t} TCP, {u} connected UDP, {r} unconnected UDP connections"
            );
        }

        // A backend pod deleted while a connection through the VIP runs:
        // no new connection reaches it, the established one goes on.
        let servers = [&sa, &sb, &sc];
        let (stream, kept) = stream_and_backend(&c2.netns(), vip_tcp, &servers);
        let (gone, gone_server) = [(&a, &sa), (&b, &sb), (&c, &sc)]
            .into_iter()
            .find(|(_, s)| s.name != kept)
            .expect("another backend");
        let gone_accepted = gone_server.accepted();
        assert!(gone.del().ok, "CNI DEL of {}", gone.name);
        let left: Vec<SocketAddrV4> = [&a, &b, &c]
            .into_iter()
            .filter(|p| p.name != gone.name)
            .map(|p| backend(p, 8080))
            .collect();
        wait_kernel(&[n1, n2], WEB_VIP, 80, LbProto::Tcp, &left);
        for client in [&c1, &c2] {
            let got = answers(&client.netns(), vip_tcp, AFTER_CHANGE, &client.name);
            assert!(
                !got.contains(&gone.name),
                "{got:?} after deleting {}",
                gone.name
            );
        }
        assert_eq!(
            gone_server.accepted(),
            gone_accepted,
            "the deleted backend accepted new connections"
        );
        wait_exchanges(&stream, 10, "the stream goes on after the backend change");
        let n = stream
            .finish()
            .expect("the established connection finishes");
        eprintln!("stream through the VIP to {kept}: {n} exchanges, unbroken");

        // Graceful: a selector-less service whose slice marks the backend
        // of an established connection terminating.
        let live: Vec<(&Pod<'_>, &WhoServers)> = [(&a, &sa), (&b, &sb), (&c, &sc)]
            .into_iter()
            .filter(|(p, _)| p.name != gone.name)
            .collect();
        let ips: Vec<(Ipv4Addr, bool)> = live.iter().map(|(p, _)| (p.ip, false)).collect();
        services::apply(n2, &sliced(&ips)).expect("apply web-sliced");
        let both: Vec<SocketAddrV4> = live.iter().map(|(p, _)| backend(p, 8080)).collect();
        wait_kernel(&[n1, n2], SLICE_VIP, 80, LbProto::Tcp, &both);
        let vip_sliced = SocketAddr::from((SLICE_VIP, 80));
        let live_servers: Vec<&WhoServers> = live.iter().map(|(_, s)| *s).collect();
        let (stream, draining) = stream_and_backend(&c1.netns(), vip_sliced, &live_servers);
        let (dp, ds) = *live
            .iter()
            .find(|(_, s)| s.name == draining)
            .expect("the stream's backend");
        let marked: Vec<(Ipv4Addr, bool)> = ips.iter().map(|&(ip, _)| (ip, ip == dp.ip)).collect();
        services::apply(n2, &sliced(&marked)).expect("mark a backend terminating");
        for n in [n1, n2] {
            wait_for(&format!("{}: {draining} terminating", n.name), || {
                kernel_frontend(n, SLICE_VIP, 80, LbProto::Tcp)
                    .is_some_and(|f| f.terminating == [backend(dp, 8080)] && f.active.len() == 1)
            });
        }
        let ds_accepted = ds.accepted();
        for client in [&c1, &c2] {
            let got = answers(&client.netns(), vip_sliced, AFTER_CHANGE, &client.name);
            assert!(
                !got.contains(&draining),
                "{got:?} with {draining} terminating"
            );
        }
        assert_eq!(
            ds.accepted(),
            ds_accepted,
            "a terminating backend got new connections"
        );
        wait_exchanges(&stream, 10, "the stream to the terminating backend goes on");
        let n = stream
            .finish()
            .expect("the connection to the terminating backend finishes");
        eprintln!("stream to terminating {draining}: {n} exchanges, unbroken");

        // No backend: dropped with SERVICE_BACKEND_NOT_FOUND.
        let empty = SocketAddr::from((EMPTY_VIP, 80));
        wait_for("n1's kernel maps have the empty frontend", || {
            kernel_frontend(n1, EMPTY_VIP, 80, LbProto::Tcp).is_some_and(|f| f.active.is_empty())
        });
        assert!(
            tcp_exchange(&c1.netns(), empty).is_err(),
            "a service without backends answered"
        );
        let f = n1.wait_flow("client-1 -> empty dropped", |f| {
            f["verdict"] == "DROPPED" && flow_ip(f, "destination") == EMPTY_VIP.to_string()
        });
        assert_eq!(f["drop_reason_desc"], "SERVICE_BACKEND_NOT_FOUND", "{f}");
        assert_eq!(flow_ip(&f, "source"), c1.ip.to_string(), "{f}");
    }
    cluster.shutdown();
}

#[test]
fn nodeport_from_outside_and_policy_after_translation() {
    require_privileges!("busybox", "etcd");
    let cluster = Cluster::multi(&["10.227.1.0/24", "10.227.2.0/24"]);
    {
        let [n1, n2] = [&cluster.nodes[0], &cluster.nodes[1]];
        wait_remote_nodes(&[n1, n2], 1);
        let v1 = n1.add_pod("vault-1", "app=vault");
        let v2 = n2.add_pod("vault-2", "app=vault");
        let allowed = n1.add_pod("allowed", "app=allowed");
        let denied = n1.add_pod("denied", "app=denied");
        let s1 = WhoServers::start(&v1.netns(), v1.ip, "vault-1", &[8080], &[]);
        let s2 = WhoServers::start(&v2.netns(), v2.ip, "vault-2", &[8080], &[]);
        let all = names(&[&s1, &s2]);

        // One write through node 2's agent: every node's agent has the
        // ClusterIP and its own NodePort frontend, both backends each.
        let r = services::apply(n2, VAULT).expect("apply vault");
        assert_eq!(r["applied"], serde_json::json!(["default/vault"]), "{r}");
        let want = [backend(&v1, 8080), backend(&v2, 8080)];
        wait_kernel(&[n1, n2], VAULT_VIP, 80, LbProto::Tcp, &want);
        for n in [n1, n2] {
            let node_ip = n.opts.cluster.as_ref().expect("cluster node").ip;
            let front = format!("{node_ip}:{VAULT_NODE_PORT}/TCP");
            let l = service_list(n);
            let np = l
                .frontends
                .iter()
                .find(|f| f.frontend == front)
                .unwrap_or_else(|| panic!("{}: no NodePort frontend {front}: {l:?}", n.name));
            assert_eq!(np.kind, "NodePort", "{np:?}");
            assert_eq!(np.service, "default/vault", "{np:?}");
            assert_eq!(np.backends.len(), 2, "{np:?}");
        }

        // A frontend in force cannot be taken: refused, naming both, and
        // nothing changes.
        let e = services::apply(n1, &VAULT.replace("name: vault", "name: thief"))
            .expect_err("a second service on vault's frontends");
        assert!(
            e.contains("Service default/thief")
                && e.contains("already used by Service default/vault"),
            "{e}"
        );
        assert!(
            service_list(n1)
                .frontends
                .iter()
                .all(|f| f.service == "default/vault"),
            "the refused service is in force"
        );

        // NodePort: from outside the cluster to each node's address, both
        // backends (one of them on the other node) answer through it.
        let outside = cluster.underlay_client(200);
        for n in [n1, n2] {
            let node_ip = n.opts.cluster.as_ref().expect("cluster node").ip;
            wait_kernel(&[n], node_ip, VAULT_NODE_PORT, LbProto::Tcp, &want);
            let to = SocketAddr::from((node_ip, VAULT_NODE_PORT));
            let k = reach_all(
                &outside.path(),
                to,
                Via::Tcp,
                &all,
                &format!("outside -> {to}"),
            );
            eprintln!("outside -> {to}: both backends after {k} connections");
        }
        drop(outside);

        // Policy after translation: only app=allowed into the backends.
        n1.apply_cluster_policy("vault", VAULT_POLICY)
            .expect("apply the cluster policy");
        for (n, pod) in [(n1, "vault-1"), (n2, "vault-2")] {
            wait_for(&format!("{pod} enforces ingress"), || {
                n.endpoints()
                    .iter()
                    .any(|e| e.record.pod_name == pod && e.enforcement.ingress)
            });
        }
        let vip = SocketAddr::from((VAULT_VIP, 80));
        reach_all(
            &allowed.netns(),
            vip,
            Via::Tcp,
            &all,
            "allowed -> vault VIP",
        );
        for _ in 0..4 {
            assert!(
                tcp_exchange(&denied.netns(), vip).is_err(),
                "denied reached vault through the VIP"
            );
        }
        // The drop is on the backend's node, against the backend.
        let backends = [v1.ip.to_string(), v2.ip.to_string()];
        let deadline = Instant::now() + it::cluster::WAIT;
        let f = loop {
            let hit = [n1, n2].into_iter().find_map(|n| {
                n.flows(10_000).into_iter().find(|f| {
                    f["verdict"] == "DROPPED"
                        && flow_ip(f, "source") == denied.ip.to_string()
                        && backends.iter().any(|b| b == flow_ip(f, "destination"))
                })
            });
            if let Some(f) = hit {
                break f;
            }
            assert!(Instant::now() < deadline, "no drop flow of denied -> vault");
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(f["drop_reason_desc"], "POLICY_DENIED", "{f}");
        assert_eq!(f["l4"]["TCP"]["destination_port"], 8080, "{f}");
        // The drop carries the backend, as Hubble's does for Cilium; the
        // connection's translation (trace-sock, before: the VIP) names the
        // service, and its pair (after: the backend the drop names) shares
        // the socket cookie.
        let sock = |n: &Node| -> Vec<Value> {
            n.flows(10_000)
                .into_iter()
                .filter(|f| f["Type"] == "SOCK" && flow_ip(f, "source") == denied.ip.to_string())
                .collect()
        };
        let socks: Vec<Value> = [n1, n2].into_iter().flat_map(sock).collect();
        let pre = socks
            .iter()
            .find(|p| {
                p["verdict"] == "TRACED"
                    && p["destination_service"]["name"] == "vault"
                    && p["destination_service"]["namespace"] == "default"
                    && socks.iter().any(|q| {
                        q["verdict"] == "TRANSLATED"
                            && q["socket_cookie"] == p["socket_cookie"]
                            && backends.iter().any(|b| b == flow_ip(q, "destination"))
                    })
            })
            .unwrap_or_else(|| panic!("no trace-sock pair of denied -> vault: {socks:?}"));
        assert_eq!(pre["IP"]["destination"], VAULT_VIP.to_string(), "{pre}");

        // Deleted through node 1, gone from every node's agent and kernel.
        let r = services::delete(n1, "default/vault").expect("delete vault");
        assert_eq!(r["removed"], true, "{r}");
        for n in [n1, n2] {
            wait_for(&format!("{} has no service", n.name), || {
                service_list(n).frontends.is_empty()
                    && kernel_frontend(n, VAULT_VIP, 80, LbProto::Tcp).is_none()
            });
        }
    }
    cluster.shutdown();
}

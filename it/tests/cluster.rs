//! Privileged, on a multi-node local cluster (node namespaces on one
//! underlay bridge, a real etcd as the cluster store, the VXLAN overlay):
//! cross-node traffic and its flows on both nodes and through the relay,
//! identity-based policy across nodes with the source identity from the
//! tunnel, cluster-wide identities, nodes joining and dying, an etcd outage
//! and an agent restart under established connections, and bad input.
//! Every test ends by checking that nothing of its cluster is left.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use it::flows::{self, dport, dst, src, verdict};
use it::traffic::{EchoServers, Stream, ping, tcp_exchange, udp_exchange};
use it::{Cluster, Node, require_privileges, wait_for};
use serde_json::Value;

/// The observation point of a trace flow (`TO_OVERLAY`, ...).
fn point(f: &Value) -> &str {
    f["trace_observation_point"].as_str().unwrap_or("")
}

/// A protojson timestamp (`2026-12-07T11:52:21.0745Z`: 0, 3, 6 or 9
/// fractional digits) as (seconds part, nanoseconds), ordered as the times.
fn time_key(t: &str) -> (String, u32) {
    let t = t.trim_end_matches('Z');
    let (secs, frac) = t.split_once('.').unwrap_or((t, ""));
    let nanos = format!("{frac:0<9}")
        .parse()
        .unwrap_or_else(|_| panic!("bad time {t}"));
    (secs.to_string(), nanos)
}

fn identity(f: &Value, side: &str) -> u64 {
    f[side]["identity"].as_u64().unwrap_or(0)
}

/// Waits until `from` reaches `to` over TCP (the remote pod's ipcache entry
/// travels through etcd: milliseconds, but not zero).
fn wait_reachable(from: &it::Pod<'_>, to: SocketAddr) {
    let ns = from.netns();
    wait_for(&format!("{} reaches {to}", from.name), || {
        tcp_exchange(&ns, to).is_ok()
    });
}

fn wait_remote_nodes(nodes: &[&Node], n: usize) {
    for node in nodes {
        wait_for(&format!("{} sees {n} remote nodes", node.name), || {
            node.status().tunnel.remote_nodes == n
        });
    }
}

#[test]
fn cross_node_tcp_udp_icmp_flows_on_both_nodes_and_through_the_relay() {
    require_privileges!("busybox", "etcd");
    // Aggregation none: every observation point, the receive points
    // (from-overlay) included, which medium leaves out as Cilium does.
    let cluster = Cluster::multi_with(
        &["10.211.1.0/24", "10.211.2.0/24", "10.211.3.0/24"],
        "15s",
        |o| o.aggregation = "none".into(),
    );
    {
        let [n1, n2, n3] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
        wait_remote_nodes(&[n1, n2, n3], 2);
        for n in [n1, n2, n3] {
            let st = n.status();
            assert_eq!(st.tunnel.mode, "vxlan", "{st:?}");
            assert_eq!(st.tunnel.pod_mtu, Some(1450), "{st:?}");
            assert!(st.kvstore.connected, "{st:?}");
        }
        let a = n1.add_pod("alpha", "app=alpha");
        let b = n2.add_pod("beta", "app=beta");
        let g = n3.add_pod("gamma", "app=gamma");
        let _sb = EchoServers::start(&b.netns(), b.ip, &[8080], &[5353]);
        let _sg = EchoServers::start(&g.netns(), g.ip, &[8080], &[]);
        let _sa = EchoServers::start(&a.netns(), a.ip, &[8080], &[]);

        wait_reachable(&a, SocketAddr::from((b.ip, 8080)));
        tcp_exchange(&a.netns(), SocketAddr::from((b.ip, 8080))).expect("alpha -> beta TCP");
        udp_exchange(&a.netns(), SocketAddr::from((b.ip, 5353))).expect("alpha -> beta UDP");
        assert!(ping(&a.netns(), b.ip), "alpha pings beta");
        wait_reachable(&b, SocketAddr::from((g.ip, 8080)));
        wait_reachable(&g, SocketAddr::from((a.ip, 8080)));
        assert!(ping(&g.netns(), a.ip), "gamma pings alpha");
        // A full-size segment crosses without fragmentation trouble (pod
        // MTU 1450 = underlay 1500 − VXLAN's 50).
        let out = a.ns.run(&[
            "busybox",
            "ping",
            "-c",
            "1",
            "-W",
            "2",
            "-s",
            "1422",
            &b.ip.to_string(),
        ]);
        assert!(out.status.success(), "1450-byte ping alpha -> beta");

        // Source node: egress to the overlay, both sides named.
        let f = n1.wait_flow("alpha -> beta to-overlay", |f| {
            src(f) == "alpha" && dst(f) == "beta" && dport(f) == 8080 && point(f) == "TO_OVERLAY"
        });
        let (ida, idb) = (identity(&f, "source"), identity(&f, "destination"));
        assert!(ida >= 256 && idb >= 256 && ida != idb, "{f}");
        assert!(
            f["destination"]["labels"].to_string().contains("app=beta"),
            "{f}"
        );
        assert_eq!(f["node_name"], n1.name.as_str(), "{f}");
        // Destination node: from the overlay, the same identities.
        let f = n2.wait_flow("alpha -> beta from-overlay", |f| {
            src(f) == "alpha" && dst(f) == "beta" && dport(f) == 8080 && point(f) == "FROM_OVERLAY"
        });
        assert_eq!(identity(&f, "source"), ida, "{f}");
        assert_eq!(identity(&f, "destination"), idb, "{f}");
        assert!(
            f["source"]["labels"].to_string().contains("app=alpha"),
            "{f}"
        );
        n2.wait_flow("alpha -> beta UDP on beta's node", |f| {
            src(f) == "alpha" && dst(f) == "beta" && f["l4"]["UDP"]["destination_port"] == 5353
        });
        n2.wait_flow("alpha -> beta ICMP on beta's node", |f| {
            src(f) == "alpha" && dst(f) == "beta" && f["l4"]["ICMPv4"].is_object()
        });
        for n in [n1, n2, n3] {
            let drops: Vec<String> = n
                .flows(10_000)
                .iter()
                .filter(|f| verdict(f) == "DROPPED")
                .map(flows::line)
                .collect();
            assert!(
                drops.is_empty(),
                "no drops without policy on {}: {drops:?}",
                n.name
            );
        }

        // The relay finds all three nodes through one node's Peer.Notify.
        let relay = cluster.relay();
        wait_for("the relay connects to the 3 nodes", || {
            let nodes = relay.nodes();
            nodes.len() == 3 && nodes.iter().all(|(_, s)| s == "NODE_CONNECTED")
        });
        let names: Vec<String> = relay.nodes().into_iter().map(|(n, _)| n).collect();
        for n in [n1, n2, n3] {
            assert!(names.iter().any(|x| x.ends_with(&n.name)), "{names:?}");
        }
        // The alpha -> beta connection, once per observing node, in time order.
        let all = relay.flows(100_000);
        let times: Vec<(String, u32)> = all
            .iter()
            .filter_map(|f| f["time"].as_str().map(time_key))
            .collect();
        assert_eq!(times.len(), all.len(), "every flow has a time");
        if let Some(w) = times.windows(2).find(|w| w[0] > w[1]) {
            panic!("the relay's flows are not in time order: {w:?}");
        }
        let seen: Vec<(&str, &str)> = all
            .iter()
            .filter(|f| src(f) == "alpha" && dst(f) == "beta" && dport(f) == 8080)
            .filter(|f| f["l4"]["TCP"]["flags"]["SYN"] == true && f["is_reply"] != true)
            .map(|f| (f["node_name"].as_str().unwrap_or(""), point(f)))
            .collect();
        assert!(
            seen.iter()
                .any(|(n, p)| n.ends_with(&n1.name) && *p == "TO_OVERLAY")
                && seen
                    .iter()
                    .any(|(n, p)| n.ends_with(&n2.name) && *p == "FROM_OVERLAY"),
            "alpha -> beta SYN on both nodes through the relay: {seen:?}"
        );
    }
    cluster.shutdown();
}

const WEB_POLICY: &str = r#"
apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: web-from-good
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      app: web
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: good
    toPorts:
    - ports:
      - port: "8080"
        protocol: TCP
"#;

#[test]
fn identity_policy_across_nodes_from_the_cluster_store() {
    require_privileges!("busybox", "etcd");
    let cluster = Cluster::multi(&["10.212.1.0/24", "10.212.2.0/24", "10.212.3.0/24"]);
    {
        let [n1, n2, n3] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
        wait_remote_nodes(&[n1, n2, n3], 2);
        let web = n2.add_pod("web", "app=web");
        let web3 = n3.add_pod("web3", "app=web");
        let good = n1.add_pod("good", "app=good");
        let bad = n3.add_pod("bad", "app=bad");
        let _s = EchoServers::start(&web.netns(), web.ip, &[8080, 9090], &[]);
        let _s3 = EchoServers::start(&web3.netns(), web3.ip, &[8080], &[]);
        let to_web = SocketAddr::from((web.ip, 8080));
        wait_reachable(&good, to_web);
        wait_reachable(&bad, to_web);

        // One write through node 1's agent; every node enforces it.
        n1.apply_cluster_policy("web", WEB_POLICY)
            .expect("apply the cluster policy");
        for n in [n1, n2, n3] {
            wait_for(&format!("{} has the policy", n.name), || {
                n.policy_names()
                    .contains(&"default/web-from-good".to_string())
            });
        }
        wait_for("web enforces ingress", || {
            n2.endpoints()
                .iter()
                .any(|e| e.record.pod_name == "web" && e.enforcement.ingress)
        });
        tcp_exchange(&good.netns(), to_web).expect("good -> web:8080 allowed");
        assert!(
            tcp_exchange(&bad.netns(), to_web).is_err(),
            "bad -> web:8080 denied"
        );
        assert!(
            tcp_exchange(&good.netns(), SocketAddr::from((web.ip, 9090))).is_err(),
            "good -> web:9090 denied (port)"
        );
        // The same policy on the third node, for a pod there.
        wait_for("web3 enforces ingress", || {
            n3.endpoints()
                .iter()
                .any(|e| e.record.pod_name == "web3" && e.enforcement.ingress)
        });
        tcp_exchange(&good.netns(), SocketAddr::from((web3.ip, 8080))).expect("good -> web3");

        // The denial happens on the destination node, against the source
        // identity the tunnel carried.
        let bad_id = n3
            .endpoints()
            .iter()
            .find(|e| e.record.pod_name == "bad")
            .map(|e| e.record.identity)
            .expect("bad's endpoint");
        let f = n2.wait_flow("bad -> web dropped on web's node", |f| {
            src(f) == "bad" && dst(f) == "web" && verdict(f) == "DROPPED"
        });
        assert_eq!(f["drop_reason_desc"], "POLICY_DENIED", "{f}");
        assert_eq!(identity(&f, "source"), u64::from(bad_id), "{f}");
        assert_eq!(f["traffic_direction"], "INGRESS", "{f}");
        // ... and the source node forwarded it into the tunnel.
        n3.wait_flow("bad -> web to-overlay on bad's node", |f| {
            src(f) == "bad" && dst(f) == "web" && point(f) == "TO_OVERLAY"
        });

        // Removing it through the store opens the port again everywhere.
        let r: Value = n3
            .client()
            .delete("/v1/policies/web")
            .expect("delete the cluster policy");
        assert_eq!(r["removed"], true);
        wait_for("bad reaches web after the delete", || {
            tcp_exchange(&bad.netns(), to_web).is_ok()
        });
    }
    cluster.shutdown();
}

#[test]
fn identities_are_cluster_wide_and_concurrent_adds_never_collide() {
    require_privileges!("busybox", "etcd");
    let cluster = Cluster::multi(&["10.213.1.0/24", "10.213.2.0/24", "10.213.3.0/24"]);
    {
        // Eight pods on each node at once, four label sets shared by all.
        let pods: Vec<Vec<it::Pod<'_>>> = std::thread::scope(|s| {
            let hs: Vec<_> = cluster
                .nodes
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    s.spawn(move || {
                        (0..8)
                            .map(|j| n.add_pod(&format!("p{i}-{j}"), &format!("app=set{}", j % 4)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().expect("adds")).collect()
        });
        let mut by_set =
            std::collections::BTreeMap::<String, std::collections::BTreeSet<u32>>::new();
        for n in &cluster.nodes {
            for e in n.endpoints() {
                let set = e.record.labels.get("app").cloned().unwrap_or_default();
                by_set.entry(set).or_default().insert(e.record.identity);
            }
        }
        assert_eq!(by_set.len(), 4, "{by_set:?}");
        let mut all = std::collections::BTreeSet::new();
        for (set, ids) in &by_set {
            assert_eq!(
                ids.len(),
                1,
                "label set {set} has one identity on every node: {ids:?}"
            );
            assert!(
                all.insert(*ids.iter().next().unwrap()),
                "two sets share an id: {by_set:?}"
            );
        }
        // Every node knows every identity with the same labels.
        let lists: Vec<Vec<(u32, Vec<String>)>> = cluster
            .nodes
            .iter()
            .map(|n| {
                let ids: Vec<datapath::api::IdentityView> =
                    n.client().get("/v1/identities").expect("identities");
                ids.into_iter()
                    .filter(|i| all.contains(&i.id))
                    .map(|i| (i.id, i.labels))
                    .collect()
            })
            .collect();
        assert_eq!(lists[0].len(), 4, "{lists:?}");
        assert!(lists.iter().all(|l| *l == lists[0]), "{lists:?}");
        drop(pods);
    }
    cluster.shutdown();
}

#[test]
fn a_node_joins_and_a_node_dies_without_stopping_the_others() {
    require_privileges!("busybox", "etcd");
    // A short lease, so the dead node's entry expires within seconds.
    let cluster = Cluster::multi_with(&["10.214.1.0/24", "10.214.2.0/24"], "5s", |_| {});
    {
        let [n1, n2] = [&cluster.nodes[0], &cluster.nodes[1]];
        wait_remote_nodes(&[n1, n2], 1);
        let a = n1.add_pod("alpha", "app=alpha");
        let b = n2.add_pod("beta", "app=beta");
        let _sb = EchoServers::start(&b.netns(), b.ip, &[8080], &[]);
        let to_b = SocketAddr::from((b.ip, 8080));
        wait_reachable(&a, to_b);
        let stream = Stream::start(&a.netns(), to_b);
        let relay = cluster.relay();
        wait_for("the relay has 2 nodes", || relay.nodes().len() == 2);

        // A third node joins: reachable, and the relay finds it by itself.
        let mut n3 = Node::start(cluster.node_options("10.214.3.0/24"));
        {
            let g = n3.add_pod("gamma", "app=gamma");
            let _sg = EchoServers::start(&g.netns(), g.ip, &[8080], &[]);
            wait_reachable(&a, SocketAddr::from((g.ip, 8080)));
            wait_reachable(&g, to_b);
            let name = n3.name.clone();
            wait_for("the relay discovers the new node", || {
                relay
                    .nodes()
                    .iter()
                    .any(|(n, s)| n.ends_with(&name) && s == "NODE_CONNECTED")
            });
            drop(_sg);
            // No CNI DEL: its node dies under it.
            g.deleted.set(true);
        }
        // It dies: agent and exporter SIGKILLed, its namespace gone.
        let name = n3.name.clone();
        n3.crash();
        wait_for("the relay reports the dead node unavailable", || {
            relay
                .nodes()
                .iter()
                .any(|(n, s)| n.ends_with(&name) && s != "NODE_CONNECTED")
        });
        let t0 = Instant::now();
        for n in [n1, n2] {
            wait_for(
                &format!("{}: the dead node's lease expires", n.name),
                || !n.registry().contains(&name),
            );
        }
        eprintln!("registry entry gone after {:?}", t0.elapsed());
        wait_for("the relay forgets the dead node", || {
            !relay.nodes().iter().any(|(n, _)| n.ends_with(&name))
        });
        wait_remote_nodes(&[n1, n2], 1);
        assert!(stream.alive(), "the alpha -> beta stream kept flowing");
        tcp_exchange(&a.netns(), to_b).expect("alpha -> beta after the death");
        let n = stream
            .finish()
            .expect("no break in the alpha -> beta stream");
        assert!(n > 0);
        drop(n3);
    }
    cluster.shutdown();
}

const DENY_9090: &str = r#"
apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: beta-8080-only
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      app: beta
  ingress:
  - toPorts:
    - ports:
      - port: "8080"
        protocol: TCP
"#;

#[test]
fn etcd_outage_keeps_traffic_flowing_and_resyncs_after() {
    require_privileges!("busybox", "etcd");
    let mut cluster = Cluster::multi(&["10.215.1.0/24", "10.215.2.0/24"]);
    {
        let [n1, n2] = [&cluster.nodes[0], &cluster.nodes[1]];
        wait_remote_nodes(&[n1, n2], 1);
        let a = n1.add_pod("alpha", "app=alpha");
        let b = n2.add_pod("beta", "app=beta");
        let _sb = EchoServers::start(&b.netns(), b.ip, &[8080, 9090], &[]);
        let to_b = SocketAddr::from((b.ip, 8080));
        wait_reachable(&a, to_b);
        wait_reachable(&a, SocketAddr::from((b.ip, 9090)));
        let stream = Stream::start(&a.netns(), to_b);

        let etcd = cluster.etcd.as_mut().expect("etcd");
        etcd.pause();
        let t0 = Instant::now();
        for n in [n1, n2] {
            wait_for(&format!("{} reports the outage", n.name), || {
                !n.status().kvstore.connected
            });
        }
        // A policy change during the outage: accepted by node 2's agent,
        // in force there at once, written to the store when it is back.
        n2.apply_cluster_policy("beta", DENY_9090)
            .expect("a policy applied during the outage is queued");
        assert!(
            n2.status().kvstore.pending_writes > 0,
            "{:?}",
            n2.status().kvstore
        );
        tcp_exchange(&a.netns(), to_b).expect("new connections during the outage");
        let left = Duration::from_secs(10).saturating_sub(t0.elapsed());
        std::thread::sleep(left);
        assert!(stream.alive(), "the stream survives 10 s of etcd outage");
        let etcd = cluster.etcd.as_mut().expect("etcd");
        etcd.resume();
        for n in [n1, n2] {
            wait_for(&format!("{} reconnects and resyncs", n.name), || {
                let k = n.status().kvstore;
                k.connected && k.resyncs > 0 && k.pending_writes == 0
            });
        }
        for n in [n1, n2] {
            wait_for(
                &format!("{} has the policy from the outage", n.name),
                || {
                    n.policy_names()
                        .contains(&"default/beta-8080-only".to_string())
                },
            );
        }
        wait_for("beta:9090 closed after the outage", || {
            tcp_exchange(&a.netns(), SocketAddr::from((b.ip, 9090))).is_err()
        });
        tcp_exchange(&a.netns(), to_b).expect("beta:8080 still open");
        stream.finish().expect("no break in the stream");
    }
    cluster.shutdown();
}

#[test]
fn agent_restart_under_a_cross_node_stream() {
    require_privileges!("busybox", "etcd");
    // A short lease: the old agents' leases expire during the test, which
    // must not take their pods out of the other node's ipcache.
    let cluster = Cluster::multi_with(&["10.216.1.0/24", "10.216.2.0/24"], "5s", |_| {});
    {
        let [n1, n2] = [&cluster.nodes[0], &cluster.nodes[1]];
        wait_remote_nodes(&[n1, n2], 1);
        let a = n1.add_pod("alpha", "app=alpha");
        let b = n2.add_pod("beta", "app=beta");
        let _sb = EchoServers::start(&b.netns(), b.ip, &[8080], &[]);
        let _sa = EchoServers::start(&a.netns(), a.ip, &[8080], &[]);
        let to_b = SocketAddr::from((b.ip, 8080));
        wait_reachable(&a, to_b);
        let stream = Stream::start(&a.netns(), to_b);
        for n in [n1, n2] {
            let before = stream.exchanges();
            n.stop_agent();
            std::thread::sleep(Duration::from_millis(500));
            n.start_agent();
            wait_for("the stream goes on", || stream.exchanges() > before + 10);
        }
        wait_remote_nodes(&[n1, n2], 1);
        tcp_exchange(&a.netns(), to_b).expect("new connection after the restarts");
        // Past the old leases' expiry: the restarted agents re-claimed
        // their keys under their new leases.
        std::thread::sleep(Duration::from_secs(7));
        assert!(stream.alive(), "the stream outlives the old leases");
        tcp_exchange(&a.netns(), to_b).expect("new connection after the old leases expired");
        tcp_exchange(&b.netns(), SocketAddr::from((a.ip, 8080)))
            .expect("beta -> alpha after the old leases expired");
        stream
            .finish()
            .expect("the stream survived both agents' restarts");
    }
    cluster.shutdown();
}

#[test]
fn bad_input_malformed_policy_overlapping_cidr_unreachable_store() {
    require_privileges!("busybox", "etcd");
    let cluster = Cluster::multi(&["10.217.1.0/24", "10.217.2.0/24"]);
    {
        let [n1, n2] = [&cluster.nodes[0], &cluster.nodes[1]];
        wait_remote_nodes(&[n1, n2], 1);
        let a = n1.add_pod("alpha", "app=alpha");
        let b = n2.add_pod("beta", "app=beta");
        let _sb = EchoServers::start(&b.netns(), b.ip, &[8080, 9090], &[]);
        let to_b = SocketAddr::from((b.ip, 8080));
        wait_reachable(&a, to_b);
        n1.apply_cluster_policy("beta", DENY_9090)
            .expect("a valid policy");
        wait_for("9090 closed", || {
            tcp_exchange(&a.netns(), SocketAddr::from((b.ip, 9090))).is_err()
        });

        // Through the agent: refused with the reason, nothing changes.
        let e = n1
            .apply_cluster_policy("beta", "kind: CiliumNetworkPolicy\nspec: [not, a, map]\n")
            .expect_err("a malformed policy is refused");
        assert!(e.contains("beta"), "{e}");
        // Written straight into etcd: every node rejects it by name and
        // keeps the previous version in force.
        let etcd = cluster.etcd.as_ref().expect("etcd");
        let out = std::process::Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &etcd.endpoint()])
            .args([
                "put",
                "/datapath/default/policies/beta",
                "spec: {endpointSelector: 5}",
            ])
            .output()
            .expect("run etcdctl");
        assert!(out.status.success(), "etcdctl put: {out:?}");
        for n in [n1, n2] {
            wait_for(&format!("{} reports the rejected policy", n.name), || {
                n.status().policy_error.is_some_and(|e| e.contains("beta"))
            });
            assert!(
                n.policy_names()
                    .contains(&"default/beta-8080-only".to_string())
            );
        }
        assert!(tcp_exchange(&a.netns(), SocketAddr::from((b.ip, 9090))).is_err());
        tcp_exchange(&a.netns(), to_b).expect("8080 still open");

        // A node whose pod CIDR overlaps another's is refused at registration.
        let mut o = cluster.node_options("10.217.2.128/25");
        o.exporter = false;
        let out = agent_run_to_exit(&cluster, o);
        assert!(
            out.contains("10.217.2.0/24") && out.contains(&n2.name),
            "overlap names the other node and CIDR:\n{out}"
        );
    }
    // An unreachable store and no cached state: a clear error naming it.
    let dead = format!("http://127.0.0.1:{}", it::cluster::free_port());
    let dir = it::sys::TempDir::new("it-deadstore-");
    let out = std::process::Command::new(it::bins::bin("datapath"))
        .args([
            "agent",
            "--node-name",
            "lonely",
            "--pod-cidr",
            "10.218.0.0/24",
        ])
        .args([
            "--kvstore",
            "etcd",
            "--kvstore-endpoints",
            &dead,
            "--tunnel",
            "disabled",
        ])
        .arg("--state-dir")
        .arg(dir.path.join("state"))
        .arg("--bpffs-dir")
        .arg(dir.path.join("nopins"))
        .arg("--policy-dir")
        .arg(dir.path.join("policies"))
        .arg("--api-socket")
        .arg(dir.path.join("agent.sock"))
        .output()
        .expect("run the agent");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains(&dead), "the error names the endpoint: {err}");
    cluster.shutdown();
}

/// Starts a node's agent that is expected to exit at once; its output.
fn agent_run_to_exit(cluster: &Cluster, opts: it::NodeOptions) -> String {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Node::start(opts)));
    let _ = cluster;
    match r {
        Ok(node) => panic!("the agent of {} started", node.name),
        Err(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default(),
    }
}

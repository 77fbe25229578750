//! The cluster bench (`just bench`, root): multi-node local clusters (node
//! namespaces on one underlay bridge, a real etcd, the VXLAN overlay, real
//! agent, exporter and relay processes), real traffic. Every figure is the
//! spread (min / median / max) over `RUNS` runs; nothing is a threshold.
//!
//! 1. Cross-node throughput and request rate: `iperf3 -c` (SECS s) and a
//!    64-byte TCP ping-pong on one connection (SECS s) from pod A (node 1)
//!    to pod B (node 2) through the datapath (default settings: medium
//!    aggregation, exporters reading), against plain kernel VXLAN routing
//!    built in the same run without any program: two node namespaces on
//!    their own underlay bridge, a point-to-point VXLAN device on each
//!    (`ip link add vx0 type vxlan id 42 dstport 8472 dev eth0 local L
//!    remote R`, an address in 10.97.0.0/24 on it, the other node's pod
//!    /24 routed via the peer's vx0 address), pod namespaces on veth pairs
//!    with /32 routes, ip_forward=1, pod MTU 1450 (the datapath's). The
//!    ratio datapath / baseline per run; the events both exporters decoded
//!    during the datapath runs (a following GetFlows client on each) and
//!    every loss: the kernel's lost counter and the exporters' LostEvents.
//! 2. The relay on a real cluster: three nodes with aggregation `none`,
//!    many short TCP connections (64-byte exchange, closed with RST) from a
//!    pod on each node to a pod on the next one, at two levels: 100
//!    connections/s per client pod, and as many as two loops per client
//!    pod make (which saturates the two CPUs); a following GetFlows
//!    client on the relay counts the flows it delivers against the sum the
//!    three exporters produced in the same window (`ServerStatus`
//!    seen_flows), and the follow latency (receive time − flow time)
//!    through the relay against a following client directly on node 1's
//!    exporter (p50 / p99).
//! 3. Policy propagation: three nodes, pod X on node 1, pods Y1..Y3 (one
//!    per node) with an echo server on 8080. `FLIPS` times per run one
//!    cluster policy, written through node 1's agent, flips between "X may
//!    reach Y on 8080" and "... on 9090" (8080 denied). Enforcement is
//!    observed in behaviour: X opens a new TCP connection to each Y every
//!    2 ms (400 ms timeout: a denied SYN is dropped silently); a node
//!    enforces from the send time of the first probe after which every
//!    probe (at least 20) shows the new verdict. Propagation = write →
//!    the last of the three nodes enforcing; p50 / p99 / max. Identity
//!    allocation: `IDS` CNI ADDs with new label sets, round robin on the
//!    three nodes, time per ADD (p50 / p99), beside the same number of ADDs
//!    with a label set that already has its identity.
//!
//! SIGINT/SIGTERM unwind through the guards (clusters, pods, the baseline
//! namespaces): nothing is left behind, which the bench checks at the end.
//!
//! `target/release/examples/cluster_bench [SECS]` (default 5) after
//! `cargo build --release --workspace --examples`.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use it::bench::{
    Counted, Follower, InlineServer, check_interrupted, columns, load, percentile, row,
    rst_on_close, seen_flows,
};
use it::sys::{NODE_SYSCTLS, NetNs, netns_names};
use it::traffic::{EchoServers, enter, tcp_exchange};
use it::{Cluster, Node, Pod, wait_for};

/// Repetitions of every measurement.
const RUNS: usize = 3;
/// Policy flips per run (part 3).
const FLIPS: usize = 20;
/// CNI ADDs per run (part 3).
const IDS: usize = 30;
/// Part 2's load levels: (name, connection loops per client pod, pace
/// per loop).
const LEVELS: [(&str, usize, Option<f64>); 2] = [
    (
        "moderate: 100 connections/s from each client pod",
        1,
        Some(100.0),
    ),
    (
        "saturating: 2 unthrottled connection loops per client pod",
        2,
        None,
    ),
];
/// The pod MTU the datapath gives its pods (underlay 1500 − VXLAN's 50).
const POD_MTU: &str = "1450";

fn title(t: &str) {
    println!("\n{t}");
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn wait_remote_nodes(nodes: &[Node], n: usize) {
    for node in nodes {
        wait_for(&format!("{} sees {n} remote nodes", node.name), || {
            node.status().tunnel.remote_nodes == n
        });
    }
}

fn wait_reachable(from: &Pod<'_>, to: SocketAddr) {
    let ns = from.netns();
    wait_for(&format!("{} reaches {to}", from.name), || {
        check_interrupted();
        tcp_exchange(&ns, to).is_ok()
    });
}

/// The MTU of `eth0` in a namespace (`ip -o link`: sysfs would show the
/// host's devices).
fn mtu_of(ns: &NetNs) -> String {
    let out = it::sys::sh_out(&["ip", "-n", &ns.name, "-o", "link", "show", "eth0"]);
    out.split_whitespace()
        .skip_while(|w| *w != "mtu")
        .nth(1)
        .unwrap_or("?")
        .to_string()
}

/// Sleeps `d` in small steps, unwinding on an interrupt.
fn sleep(d: Duration) {
    let end = Instant::now() + d;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        check_interrupted();
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

// ---------------------------------------------------------------------------
// Part 1: the plain kernel VXLAN baseline.

/// Two nodes on an underlay bridge, a unicast VXLAN device on each, one
/// routed pod per node; every namespace is a guard (dropping the struct
/// removes them, and with them every link and route).
struct VxlanBaseline {
    /// Pod namespaces (node 1's, node 2's).
    pods: Vec<NetNs>,
    /// Pod addresses.
    ips: Vec<Ipv4Addr>,
    nodes: Vec<NetNs>,
    underlay: NetNs,
}

impl VxlanBaseline {
    fn build() -> Self {
        let underlay = NetNs::bridge("itbu");
        let mut me = Self {
            pods: Vec::new(),
            ips: Vec::new(),
            nodes: Vec::new(),
            underlay,
        };
        for i in 0..2u8 {
            let (mine, other) = (i + 1, 2 - i);
            let node = NetNs::new("itbn");
            node.sysctl(NODE_SYSCTLS);
            // Underlay: eth0 (MTU 1500) on the bridge, 10.98.0.N/24.
            node.plug_into_bridge(&me.underlay.name, &format!("10.98.0.{mine}/24"));
            // The overlay: a unicast VXLAN device to the other node (MTU
            // 1450, VNI 42, UDP 8472 as the datapath's), an address on it.
            node.ip(&[
                "link",
                "add",
                "vx0",
                "type",
                "vxlan",
                "id",
                "42",
                "dstport",
                "8472",
                "dev",
                "eth0",
                "local",
                &format!("10.98.0.{mine}"),
                "remote",
                &format!("10.98.0.{other}"),
            ]);
            node.ip(&["addr", "add", &format!("10.97.0.{mine}/24"), "dev", "vx0"]);
            node.ip(&["link", "set", "vx0", "up"]);
            node.ip(&[
                "route",
                "add",
                &format!("10.210.{other}.0/24"),
                "via",
                &format!("10.97.0.{other}"),
                "dev",
                "vx0",
            ]);
            // The pod: a veth pair (MTU 1450 both ends), /32 routes.
            let ip = Ipv4Addr::new(10, 210, mine, 2);
            let pod = node.plain_routed_pod("itbp", ip, Some(POD_MTU));
            me.nodes.push(node);
            me.pods.push(pod);
            me.ips.push(ip);
        }
        me
    }

    fn names(&self) -> Vec<String> {
        let mut v = vec![self.underlay.name.clone()];
        v.extend(self.nodes.iter().map(|n| n.name.clone()));
        v.extend(self.pods.iter().map(|n| n.name.clone()));
        v
    }
}

struct Part1Run {
    plain_gbits: f64,
    plain_rr: f64,
    dp_gbits: f64,
    dp_rr: f64,
    events: u64,
    secs: f64,
    kernel_lost: u64,
    counted: Vec<Counted>,
}

fn part1(cluster: &Cluster, secs: u64) -> Vec<String> {
    let (n1, n2) = (&cluster.nodes[0], &cluster.nodes[1]);
    let a = n1.add_pod("bench-a", "app=bench-a");
    let b = n2.add_pod("bench-b", "app=bench-b");
    let _echo = EchoServers::start(&b.netns(), b.ip, &[8080], &[]);
    wait_reachable(&a, SocketAddr::from((b.ip, 8080)));
    let base = VxlanBaseline::build();
    assert!(
        it::traffic::ping(&base.pods[0].path(), base.ips[1]),
        "baseline pods reach each other over VXLAN"
    );
    println!(
        "pod MTU: datapath {} / {}, baseline {} / {}",
        mtu_of(&a.ns),
        mtu_of(&b.ns),
        mtu_of(&base.pods[0]),
        mtu_of(&base.pods[1])
    );
    title(&format!(
        "1. cross-node, pod A (node 1) -> pod B (node 2), {secs} s iperf3 + {secs} s 64-byte TCP request/response per run, {RUNS} runs"
    ));
    let mut runs = Vec::new();
    for run in 0..RUNS {
        check_interrupted();
        let plain = load(
            &base.pods[0].path(),
            &base.pods[1].path(),
            base.ips[1],
            secs,
        );
        let lost0: Vec<u64> = [n1, n2]
            .iter()
            .map(|n| n.maps().lost_events().expect("lost counter"))
            .collect();
        let followers: Vec<Follower> = [n1, n2]
            .iter()
            .map(|n| Follower::start(n.exporter_addr.expect("exporter"), false))
            .collect();
        sleep(Duration::from_millis(300));
        let start = Instant::now();
        let dp = load(&a.netns(), &b.netns(), b.ip, secs);
        let el = start.elapsed().as_secs_f64();
        // The exporters poll the kernel's lost counter every second.
        sleep(Duration::from_millis(2500));
        let counted: Vec<Counted> = followers.into_iter().map(Follower::finish).collect();
        let kernel_lost: u64 = [n1, n2]
            .iter()
            .zip(&lost0)
            .map(|(n, l0)| n.maps().lost_events().expect("lost counter") - l0)
            .sum();
        let events = counted.iter().map(|c| c.flows + c.lost()).sum();
        println!(
            "  run {}: plain VXLAN {:.2} Gbit/s {:.0} req/s | datapath {:.2} Gbit/s {:.0} req/s | events {} | lost: kernel counter {}, LostEvents kernel {} queue {} ring {}",
            run + 1,
            plain.gbits,
            plain.rr_per_s,
            dp.gbits,
            dp.rr_per_s,
            events,
            kernel_lost,
            counted.iter().map(|c| c.lost_kernel).sum::<u64>(),
            counted.iter().map(|c| c.lost_queue).sum::<u64>(),
            counted.iter().map(|c| c.lost_ring).sum::<u64>(),
        );
        runs.push(Part1Run {
            plain_gbits: plain.gbits,
            plain_rr: plain.rr_per_s,
            dp_gbits: dp.gbits,
            dp_rr: dp.rr_per_s,
            events,
            secs: el,
            kernel_lost,
            counted,
        });
    }
    let col = |f: &dyn Fn(&Part1Run) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
    columns();
    row(
        "TCP throughput, plain kernel VXLAN (Gbit/s)",
        &col(&|r| r.plain_gbits),
        2,
    );
    row(
        "TCP throughput, datapath (Gbit/s)",
        &col(&|r| r.dp_gbits),
        2,
    );
    row(
        "  ratio datapath / plain (per run)",
        &col(&|r| r.dp_gbits / r.plain_gbits),
        2,
    );
    row(
        "request rate, plain kernel VXLAN (req/s)",
        &col(&|r| r.plain_rr),
        0,
    );
    row("request rate, datapath (req/s)", &col(&|r| r.dp_rr), 0);
    row(
        "  ratio datapath / plain (per run)",
        &col(&|r| r.dp_rr / r.plain_rr),
        2,
    );
    row(
        "events decoded, both exporters (per run)",
        &col(&|r| r.events as f64),
        0,
    );
    row(
        "  events/s during the datapath load",
        &col(&|r| r.events as f64 / r.secs),
        1,
    );
    row(
        "lost: kernel ring counter (both nodes)",
        &col(&|r| r.kernel_lost as f64),
        0,
    );
    row(
        "lost: exporters' LostEvents, all sources",
        &col(&|r| r.counted.iter().map(Counted::lost).sum::<u64>() as f64),
        0,
    );
    let names = base.names();
    drop(base);
    names
}

// ---------------------------------------------------------------------------
// Part 2: the relay.

/// Short TCP connections from `ns` to `to` until `stop`: connect, 64 bytes
/// each way, RST; `per_s` of them a second, or as many as it can. Counts
/// completed connections.
fn short_connections(
    ns: PathBuf,
    to: SocketAddr,
    per_s: Option<f64>,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        enter(&ns);
        let msg = [9u8; 64];
        let mut buf = [0u8; 64];
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            if let Some(r) = per_s {
                next += Duration::from_secs_f64(1.0 / r);
                if let Some(d) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(d);
                }
            }
            let Ok(mut s) = TcpStream::connect_timeout(&to, Duration::from_secs(1)) else {
                continue;
            };
            rst_on_close(&s);
            let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
            if s.write_all(&msg).is_ok() && s.read_exact(&mut buf).is_ok() {
                done.fetch_add(1, Ordering::Relaxed);
            }
        }
    })
}

struct Part2Run {
    conns_per_s: f64,
    produced: u64,
    delivered_in_window: u64,
    delivered: u64,
    secs: f64,
    relay: Counted,
    direct: Counted,
}

fn part2(secs: u64) -> Vec<String> {
    let cluster = Cluster::multi_with(
        &["10.222.1.0/24", "10.222.2.0/24", "10.222.3.0/24"],
        "15s",
        |o| o.aggregation = "none".into(),
    );
    let mut names = Vec::new();
    title(&format!(
        "2. relay on 3 nodes, aggregation none, short TCP connections pod -> pod on the next node, {secs} s per run, {RUNS} runs"
    ));
    {
        let nodes = &cluster.nodes;
        wait_remote_nodes(nodes, 2);
        let clients: Vec<Pod<'_>> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| n.add_pod(&format!("client{}", i + 1), "app=bench-client"))
            .collect();
        let servers: Vec<Pod<'_>> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| n.add_pod(&format!("server{}", i + 1), "app=bench-server"))
            .collect();
        let _echo: Vec<InlineServer> = servers
            .iter()
            .map(|s| InlineServer::start(&s.netns(), s.ip, 8080))
            .collect();
        let targets: Vec<SocketAddr> = (0..3)
            .map(|i| SocketAddr::from((servers[(i + 1) % 3].ip, 8080)))
            .collect();
        for (c, t) in clients.iter().zip(&targets) {
            wait_reachable(c, *t);
        }
        let relay = cluster.relay();
        wait_for("the relay connects to the 3 nodes", || {
            let n = relay.nodes();
            n.len() == 3 && n.iter().all(|(_, s)| s == "NODE_CONNECTED")
        });
        let exporters: Vec<SocketAddr> = nodes
            .iter()
            .map(|n| n.exporter_addr.expect("exporter"))
            .collect();
        for (level, loops, pace) in LEVELS {
            println!("  {level}");
            let mut runs = Vec::new();
            for run in 0..RUNS {
                check_interrupted();
                let via_relay = Follower::start(relay.addr, true);
                let direct = Follower::start(exporters[0], true);
                sleep(Duration::from_millis(700));
                let seen0: u64 = exporters.iter().map(|a| seen_flows(*a).0).sum();
                let (stop, done) = (
                    Arc::new(AtomicBool::new(false)),
                    Arc::new(AtomicU64::new(0)),
                );
                let start = Instant::now();
                let load: Vec<_> = clients
                    .iter()
                    .zip(&targets)
                    .flat_map(|(c, t)| std::iter::repeat_n((c, t), loops))
                    .map(|(c, t)| {
                        short_connections(c.netns(), *t, pace, stop.clone(), done.clone())
                    })
                    .collect();
                sleep(Duration::from_secs(secs));
                stop.store(true, Ordering::Relaxed);
                for t in load {
                    let _ = t.join();
                }
                let el = start.elapsed().as_secs_f64();
                via_relay.mark();
                direct.mark();
                // Let the relay and the followers drain what the load made.
                sleep(Duration::from_secs(3));
                let seen1: u64 = exporters.iter().map(|a| seen_flows(*a).0).sum();
                let (rc, dc) = (via_relay.finish(), direct.finish());
                let r = Part2Run {
                    conns_per_s: done.load(Ordering::Relaxed) as f64 / el,
                    produced: seen1 - seen0,
                    delivered_in_window: rc.flows_at_mark.unwrap_or(rc.flows),
                    delivered: rc.flows,
                    secs: el,
                    relay: rc,
                    direct: dc,
                };
                let (rl, dl) = (r.relay.all_latencies(), r.direct.all_latencies());
                println!(
                    "  run {}: {:.0} conns/s; exporters produced {} flows, relay delivered {} ({} by the end of the load), relay LostEvents {} (kernel ring {}, exporter queues {}, rings/relay {}); latency relay p50 {:.1} ms p99 {:.1} ms, direct p50 {:.1} ms p99 {:.1} ms (direct follower lost {})",
                    run + 1,
                    r.conns_per_s,
                    r.produced,
                    r.delivered,
                    r.delivered_in_window,
                    r.relay.lost(),
                    r.relay.lost_kernel,
                    r.relay.lost_queue,
                    r.relay.lost_ring,
                    ms(percentile(&rl, 50.0)),
                    ms(percentile(&rl, 99.0)),
                    ms(percentile(&dl, 50.0)),
                    ms(percentile(&dl, 99.0)),
                    r.direct.lost(),
                );
                runs.push(r);
            }
            let n1 = nodes[0].name.clone();
            let col = |f: &dyn Fn(&Part2Run) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
            columns();
            row(
                "load: completed connections/s (3 clients)",
                &col(&|r| r.conns_per_s),
                0,
            );
            row(
                "flows/s produced, sum of 3 exporters",
                &col(&|r| r.produced as f64 / r.secs),
                0,
            );
            row(
                "flows/s delivered through the relay",
                &col(&|r| r.delivered as f64 / r.secs),
                0,
            );
            row(
                "  ratio delivered / produced",
                &col(&|r| r.delivered as f64 / r.produced.max(1) as f64),
                3,
            );
            row(
                "  delivered by the end of the load / produced",
                &col(&|r| r.delivered_in_window as f64 / r.produced.max(1) as f64),
                3,
            );
            row(
                "LostEvents through the relay (all sources)",
                &col(&|r| r.relay.lost() as f64),
                0,
            );
            row(
                "follow latency via relay, all flows p50 (ms)",
                &col(&|r| ms(percentile(&r.relay.all_latencies(), 50.0))),
                1,
            );
            row(
                "follow latency via relay, all flows p99 (ms)",
                &col(&|r| ms(percentile(&r.relay.all_latencies(), 99.0))),
                1,
            );
            row(
                "  via relay, node 1's flows p50 (ms)",
                &col(&|r| ms(percentile(&r.relay.latencies_of(&n1), 50.0))),
                1,
            );
            row(
                "  via relay, node 1's flows p99 (ms)",
                &col(&|r| ms(percentile(&r.relay.latencies_of(&n1), 99.0))),
                1,
            );
            row(
                "  direct from node 1's exporter p50 (ms)",
                &col(&|r| ms(percentile(&r.direct.all_latencies(), 50.0))),
                1,
            );
            row(
                "  direct from node 1's exporter p99 (ms)",
                &col(&|r| ms(percentile(&r.direct.all_latencies(), 99.0))),
                1,
            );
            row(
                "  LostEvents to the direct follower",
                &col(&|r| r.direct.lost() as f64),
                0,
            );
        }
        drop(relay);
        names.extend(nodes.iter().map(|n| n.name.clone()));
    }
    cluster.shutdown();
    names
}

// ---------------------------------------------------------------------------
// Part 3: policy propagation and identity allocation.

fn flip_policy(port: u16) -> String {
    format!(
        r#"
apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: bench-flip
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      app: bench-y
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: bench-x
    toPorts:
    - ports:
      - port: "{port}"
        protocol: TCP
"#
    )
}

/// Probe timeout: a denied SYN is dropped without an answer.
const PROBE_TIMEOUT: Duration = Duration::from_millis(400);
/// Time between two probes to one target.
const PROBE_EVERY: Duration = Duration::from_millis(2);
/// Probes that must agree after the first one showing the new verdict.
const PROBE_AGREE: usize = 20;

type ProbeLog = Arc<Mutex<Vec<(Instant, bool)>>>;

/// New TCP connections from `ns` to `to` every [`PROBE_EVERY`] until
/// `stop`, each recorded as (send time, connected within
/// [`PROBE_TIMEOUT`]).
fn prober(
    ns: PathBuf,
    to: SocketAddr,
    stop: Arc<AtomicBool>,
    log: ProbeLog,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        enter(&ns);
        let rt = it::flows::runtime();
        rt.block_on(async move {
            let mut tick = tokio::time::interval(PROBE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let log = log.clone();
                tokio::spawn(async move {
                    let sent = Instant::now();
                    let ok = matches!(
                        tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(to))
                            .await,
                        Ok(Ok(_))
                    );
                    log.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((sent, ok));
                });
            }
            tokio::time::sleep(PROBE_TIMEOUT + Duration::from_millis(50)).await;
        });
    })
}

/// When the target enforced `want` after `since`: the send time of the
/// first probe after which all (at least [`PROBE_AGREE`]) show `want`,
/// judged only on probes old enough to have completed. `None`: not yet.
fn enforced_at(log: &ProbeLog, since: Instant, want: bool) -> Option<Instant> {
    let settled = Instant::now().checked_sub(PROBE_TIMEOUT + Duration::from_millis(50))?;
    let mut v: Vec<(Instant, bool)> = log
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|(t, _)| *t >= since && *t <= settled)
        .copied()
        .collect();
    v.sort_by_key(|(t, _)| *t);
    let first = v
        .iter()
        .rposition(|(_, ok)| *ok != want)
        .map_or(0, |i| i + 1);
    (v.len() - first >= PROBE_AGREE).then(|| v[first].0)
}

struct FlipRun {
    /// Write → enforced on all three nodes, per flip (ns).
    all: Vec<u64>,
    /// Write → enforced, per node and flip (ns).
    per_node: Vec<Vec<u64>>,
    /// The POST itself (ns).
    post: Vec<u64>,
    timeouts: usize,
}

fn flips(n1: &Node, logs: &[ProbeLog]) -> FlipRun {
    let mut r = FlipRun {
        all: Vec::new(),
        per_node: vec![Vec::new(); logs.len()],
        post: Vec::new(),
        timeouts: 0,
    };
    for k in 0..FLIPS {
        check_interrupted();
        // Even flips deny 8080 (the policy opens 9090 only), odd ones allow.
        let want = k % 2 == 1;
        let yaml = flip_policy(if want { 8080 } else { 9090 });
        for l in logs {
            l.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
        let t0 = Instant::now();
        n1.apply_cluster_policy("bench-flip", &yaml)
            .expect("apply the flip policy");
        r.post.push(t0.elapsed().as_nanos() as u64);
        let deadline = t0 + Duration::from_secs(20);
        let mut at: Vec<Option<Instant>> = vec![None; logs.len()];
        while at.iter().any(Option::is_none) && Instant::now() < deadline {
            sleep(Duration::from_millis(20));
            for (a, l) in at.iter_mut().zip(logs) {
                *a = enforced_at(l, t0, want);
            }
        }
        if at.iter().any(Option::is_none) {
            r.timeouts += 1;
            continue;
        }
        let d: Vec<u64> = at
            .iter()
            .map(|a| a.expect("enforced").duration_since(t0).as_nanos() as u64)
            .collect();
        for (p, x) in r.per_node.iter_mut().zip(&d) {
            p.push(*x);
        }
        r.all.push(d.iter().copied().max().unwrap_or(0));
    }
    r
}

fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v
}

fn part3(cluster: &Cluster) {
    let nodes = &cluster.nodes;
    title(&format!(
        "3a. policy propagation, 3 nodes: one write through node 1's agent -> enforced (new TCP connects X -> Y1..Y3 every {} ms show the new verdict), {FLIPS} flips per run, {RUNS} runs",
        PROBE_EVERY.as_millis()
    ));
    let x = nodes[0].add_pod("bench-x", "app=bench-x");
    let ys: Vec<Pod<'_>> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| n.add_pod(&format!("bench-y{}", i + 1), "app=bench-y"))
        .collect();
    let _servers: Vec<InlineServer> = ys
        .iter()
        .map(|y| InlineServer::start(&y.netns(), y.ip, 8080))
        .collect();
    nodes[0]
        .apply_cluster_policy("bench-flip", &flip_policy(8080))
        .expect("apply the flip policy");
    for y in &ys {
        wait_reachable(&x, SocketAddr::from((y.ip, 8080)));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let logs: Vec<ProbeLog> = ys.iter().map(|_| ProbeLog::default()).collect();
    let probers: Vec<_> = ys
        .iter()
        .zip(&logs)
        .map(|(y, l)| {
            prober(
                x.netns(),
                SocketAddr::from((y.ip, 8080)),
                stop.clone(),
                l.clone(),
            )
        })
        .collect();
    let mut runs = Vec::new();
    for run in 0..RUNS {
        let r = flips(&nodes[0], &logs);
        let all = sorted(r.all.clone());
        println!(
            "  run {}: {} flips, write -> enforced on all 3 nodes p50 {:.1} ms p99 {:.1} ms max {:.1} ms (POST p50 {:.1} ms){}",
            run + 1,
            FLIPS,
            ms(percentile(&all, 50.0)),
            ms(percentile(&all, 99.0)),
            ms(all.last().copied().unwrap_or(0)),
            ms(percentile(&sorted(r.post.clone()), 50.0)),
            if r.timeouts > 0 {
                format!(", {} flips NOT enforced within 20 s", r.timeouts)
            } else {
                String::new()
            }
        );
        runs.push(r);
    }
    stop.store(true, Ordering::Relaxed);
    for p in probers {
        let _ = p.join();
    }
    let _ = nodes[0]
        .client()
        .delete::<serde_json::Value>("/v1/policies/bench-flip");

    let col = |f: &dyn Fn(&FlipRun) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
    columns();
    row(
        "write -> all 3 nodes enforce, p50 (ms)",
        &col(&|r| ms(percentile(&sorted(r.all.clone()), 50.0))),
        1,
    );
    row(
        "write -> all 3 nodes enforce, p99 (ms)",
        &col(&|r| ms(percentile(&sorted(r.all.clone()), 99.0))),
        1,
    );
    row(
        "write -> all 3 nodes enforce, max (ms)",
        &col(&|r| ms(sorted(r.all.clone()).last().copied().unwrap_or(0))),
        1,
    );
    for i in 0..nodes.len() {
        row(
            &format!("  node {} alone (Y{}), p50 (ms)", i + 1, i + 1),
            &col(&|r| ms(percentile(&sorted(r.per_node[i].clone()), 50.0))),
            1,
        );
    }
    row(
        "  the POST /v1/policies itself, p50 (ms)",
        &col(&|r| ms(percentile(&sorted(r.post.clone()), 50.0))),
        1,
    );
    row(
        "  flips not enforced within 20 s",
        &col(&|r| r.timeouts as f64),
        0,
    );
    drop(_servers);
    drop(ys);
    drop(x);

    // Identity allocation: CNI ADDs with new label sets vs a known one.
    title(&format!(
        "3b. identity allocation: CNI ADD (the real plugin, round robin on 3 nodes) with a new label set vs a known one, {IDS} each per run, {RUNS} runs"
    ));
    let mut new_runs = Vec::new();
    let mut known_runs = Vec::new();
    for run in 0..RUNS {
        check_interrupted();
        let mut new_t = Vec::new();
        let mut known_t = Vec::new();
        let mut pods = Vec::new();
        for i in 0..IDS {
            let n = &nodes[i % nodes.len()];
            let t = Instant::now();
            pods.push(n.add_pod(&format!("id{run}-{i}"), &format!("app=bench-id-{run}-{i}")));
            new_t.push(t.elapsed().as_nanos() as u64);
            let t = Instant::now();
            pods.push(n.add_pod(&format!("known{run}-{i}"), "app=bench-known"));
            known_t.push(t.elapsed().as_nanos() as u64);
        }
        let (new_t, known_t) = (sorted(new_t), sorted(known_t));
        println!(
            "  run {}: {IDS} ADDs with new label sets p50 {:.1} ms p99 {:.1} ms; {IDS} with a known set p50 {:.1} ms p99 {:.1} ms",
            run + 1,
            ms(percentile(&new_t, 50.0)),
            ms(percentile(&new_t, 99.0)),
            ms(percentile(&known_t, 50.0)),
            ms(percentile(&known_t, 99.0)),
        );
        drop(pods);
        new_runs.push(new_t);
        known_runs.push(known_t);
    }
    columns();
    let p = |v: &[Vec<u64>], q: f64| v.iter().map(|t| ms(percentile(t, q))).collect::<Vec<_>>();
    row("ADD, new label set, p50 (ms)", &p(&new_runs, 50.0), 1);
    row("ADD, new label set, p99 (ms)", &p(&new_runs, 99.0), 1);
    row("ADD, known label set, p50 (ms)", &p(&known_runs, 50.0), 1);
    row("ADD, known label set, p99 (ms)", &p(&known_runs, 99.0), 1);
}

fn main() {
    if let Some(why) = it::sys::skip_reason(&[
        "clang", "ip", "nsenter", "iperf3", "busybox", "etcd", "etcdctl",
    ]) {
        eprintln!("cluster_bench: {why}");
        std::process::exit(1);
    }
    let secs: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("SECS (whole seconds)"))
        .unwrap_or(5);
    it::bench::unwind_on_interrupt();
    it::bins::dir();
    println!(
        "cluster bench: {RUNS} runs of every measurement, {secs} s per load; min / median / max over the runs"
    );

    let mut made = Vec::new();
    // Parts 1 and 3 share one 3-node cluster at the default settings
    // (part 1 uses two of its nodes).
    let cluster = Cluster::multi(&["10.221.1.0/24", "10.221.2.0/24", "10.221.3.0/24"]);
    wait_remote_nodes(&cluster.nodes, 2);
    made.extend(part1(&cluster, secs));
    // Part 2 on its own cluster (aggregation none); this one idles.
    made.extend(part2(secs));
    part3(&cluster);
    made.extend(cluster.nodes.iter().map(|n| n.name.clone()));
    cluster.shutdown();

    let left: Vec<String> = netns_names()
        .into_iter()
        .filter(|n| made.contains(n))
        .collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    println!("\nteardown: every namespace, process, pin and directory of the bench removed");
}

//! The service bench (`just bench`, root): a two-node local cluster (a
//! real etcd, the VXLAN overlay, real agent and exporter processes), a
//! client pod on node 1 and the one backend pod of a ClusterIP service on
//! node 2, real traffic. Every figure is the spread (min / median / max)
//! over `RUNS` runs; nothing is a threshold.
//!
//! 1. New connections per second: one loop from the client opens a TCP
//!    connection, sends 64 bytes, reads the 64-byte answer and closes with
//!    RST (SO_LINGER 0, no TIME_WAIT), for SECS s, to the backend directly
//!    and through the ClusterIP (same server, same run, order alternating
//!    per run); ratio VIP / direct per run (target >= 0.90).
//! 2. One long TCP stream: `iperf3 -c` for SECS s directly and through the
//!    ClusterIP (service port 5201 -> the backend's iperf3 server); ratio
//!    VIP / direct (target >= 0.95).
//! 3. Service update propagation, `CHANGES` changes per run, each measured
//!    from just before the change until the change is in the kernel's LB
//!    maps of both nodes (`lb4_*` under each node's pin directory, polled
//!    every 0.5 ms; what `datapath bpf lb list` shows): (a) a new pod
//!    matching the selector (CNI ADD on node 2; the time includes the ADD,
//!    whose own duration is shown beside), (b) that pod deleted (CNI DEL),
//!    (c) a Service edit through node 1's API (`POST /v1/services`, a new
//!    port: a new frontend). p50 / p99 of the run's changes, per node; the
//!    CNI ADD and DEL durations (plugin process, agent API) beside: the
//!    agent writes the LB maps before it answers the plugin.
//!
//! SIGINT/SIGTERM unwind through the guards; the bench checks at the end
//! that nothing of it is left.
//!
//! `target/release/examples/service_bench [SECS]` (default 5) after
//! `cargo build --release --workspace --examples`.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use datapath::lb::{LbMaps, LbProto};
use it::bench::{
    InlineServer, check_interrupted, columns, iperf3_to, percentile, row, rst_on_close,
};
use it::services::{self, kernel_active, kernel_frontend_in};
use it::sys::netns_names;
use it::traffic::{in_ns, tcp_exchange};
use it::{Cluster, Node, wait_for};

/// Repetitions of every measurement.
const RUNS: usize = 3;
/// Changes per run (part 3).
const CHANGES: usize = 20;
/// The service's address.
const VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 91);
/// Backend port of the connection-rate server.
const CPS_PORT: u16 = 8080;
/// iperf3's port (service port and backend port).
const IPERF_PORT: u16 = 5201;

fn service(extra_ports: &[u16]) -> String {
    let mut s = String::from(
        "apiVersion: v1
kind: Service
metadata:
  name: bench
  namespace: default
spec:
  clusterIP: 10.96.0.91
  selector:
    app: bench
  ports:
  - name: cps
    port: 80
    targetPort: 8080
  - name: iperf
    port: 5201
    targetPort: 5201
",
    );
    for p in extra_ports {
        s.push_str(&format!(
            "  - name: p{p}\n    port: {p}\n    targetPort: 8080\n"
        ));
    }
    s
}

/// Connect-per-request from `ns` to `to` for `secs`: completed
/// connections per second (a failed one panics: nothing may be lost).
fn connection_rate(ns: &Path, to: SocketAddr, secs: u64) -> f64 {
    in_ns(ns, move || {
        let msg = [7u8; 64];
        let mut buf = [0u8; 64];
        let (start, mut n) = (Instant::now(), 0u64);
        while start.elapsed() < Duration::from_secs(secs) {
            let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(2))
                .unwrap_or_else(|e| panic!("connect {to} after {n}: {e}"));
            rst_on_close(&s);
            s.set_nodelay(true).expect("nodelay");
            s.set_read_timeout(Some(Duration::from_secs(2)))
                .expect("timeout");
            s.write_all(&msg).expect("request");
            s.read_exact(&mut buf).expect("response");
            n += 1;
            if n.is_multiple_of(256) {
                check_interrupted();
            }
        }
        n as f64 / start.elapsed().as_secs_f64()
    })
}

/// Polls both nodes' LB maps every 0.5 ms until `done(node index, maps)`
/// holds for each; the time from `t0` at which each node first satisfied
/// it, in ms.
fn until_in_kernels(
    maps: &[LbMaps],
    t0: Instant,
    what: &str,
    done: impl Fn(&LbMaps) -> bool,
) -> Vec<f64> {
    let mut at: Vec<Option<f64>> = vec![None; maps.len()];
    let deadline = Instant::now() + it::cluster::WAIT;
    while at.iter().any(Option::is_none) {
        for (i, m) in maps.iter().enumerate() {
            if at[i].is_none() && done(m) {
                at[i] = Some(t0.elapsed().as_secs_f64() * 1e3);
            }
        }
        assert!(Instant::now() < deadline, "{what}: not in every kernel");
        std::thread::sleep(Duration::from_micros(500));
        check_interrupted();
    }
    at.into_iter().flatten().collect()
}

fn has_backend(m: &LbMaps, port: u16, b: SocketAddrV4) -> bool {
    kernel_frontend_in(m, VIP, port, LbProto::Tcp).is_some_and(|f| f.active.contains(&b))
}

fn p(sorted_ms: &mut [f64], q: f64) -> f64 {
    sorted_ms.sort_by(f64::total_cmp);
    let us: Vec<u64> = sorted_ms.iter().map(|x| (x * 1e3) as u64).collect();
    percentile(&us, q) as f64 / 1e3
}

/// One run of part 3: (name, per-node change times in ms) rows.
fn propagation(n1: &Node, n2: &Node, run: usize) -> Vec<(String, Vec<f64>)> {
    let maps = [
        LbMaps::open(&n1.pins).expect("n1 LB maps"),
        LbMaps::open(&n2.pins).expect("n2 LB maps"),
    ];
    let (mut add, mut del, mut edit) = (
        [Vec::new(), Vec::new()],
        [Vec::new(), Vec::new()],
        [Vec::new(), Vec::new()],
    );
    let (mut cni_add, mut cni_del) = (Vec::new(), Vec::new());
    for i in 0..CHANGES {
        check_interrupted();
        let t0 = Instant::now();
        let pod = n2.add_pod(&format!("bench-new-{run}-{i}"), "app=bench");
        cni_add.push(t0.elapsed().as_secs_f64() * 1e3);
        let b = SocketAddrV4::new(pod.ip, CPS_PORT);
        let t = until_in_kernels(&maps, t0, "new pod", |m| has_backend(m, 80, b));
        add[0].push(t[0]);
        add[1].push(t[1]);
        let t0 = Instant::now();
        assert!(pod.del().ok, "CNI DEL of {}", pod.name);
        cni_del.push(t0.elapsed().as_secs_f64() * 1e3);
        let t = until_in_kernels(&maps, t0, "deleted pod", |m| !has_backend(m, 80, b));
        del[0].push(t[0]);
        del[1].push(t[1]);
    }
    for i in 0..CHANGES {
        check_interrupted();
        let port = 1000 + i as u16;
        let ports: Vec<u16> = (1000..=port).collect();
        let t0 = Instant::now();
        services::apply(n1, &service(&ports)).expect("edit the service");
        let t = until_in_kernels(&maps, t0, "service edit", |m| {
            kernel_frontend_in(m, VIP, port, LbProto::Tcp).is_some_and(|f| !f.active.is_empty())
        });
        edit[0].push(t[0]);
        edit[1].push(t[1]);
    }
    services::apply(n1, &service(&[])).expect("reset the service");
    let mut out = Vec::new();
    for (what, v) in [
        ("new pod", &mut add),
        ("pod deleted", &mut del),
        ("Service edit (new port)", &mut edit),
    ] {
        for (node, times) in ["node 1", "node 2"].iter().zip(v.iter_mut()) {
            out.push((
                format!("{what}, {node}"),
                vec![p(times, 50.0), p(times, 99.0)],
            ));
        }
    }
    out.push((
        "  (the CNI ADD itself)".into(),
        vec![p(&mut cni_add, 50.0), p(&mut cni_add, 99.0)],
    ));
    out.push((
        "  (the CNI DEL itself)".into(),
        vec![p(&mut cni_del, 50.0), p(&mut cni_del, 99.0)],
    ));
    out
}

fn main() {
    if let Some(why) =
        it::sys::skip_reason(&["clang", "ip", "nsenter", "iperf3", "busybox", "etcd"])
    {
        eprintln!("service_bench: {why}");
        std::process::exit(1);
    }
    let secs: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("SECS (whole seconds)"))
        .unwrap_or(5);
    it::bench::unwind_on_interrupt();
    it::bins::dir();
    println!(
        "service bench: {RUNS} runs of every measurement, {secs} s per load; min / median / max over the runs"
    );
    let mut made = Vec::new();
    let cluster = Cluster::multi(&["10.228.1.0/24", "10.228.2.0/24"]);
    {
        let [n1, n2] = [&cluster.nodes[0], &cluster.nodes[1]];
        for n in [n1, n2] {
            wait_for(&format!("{} sees the other node", n.name), || {
                n.status().tunnel.remote_nodes == 1
            });
        }
        let client = n1.add_pod("bench-client", "app=bench-client");
        let server = n2.add_pod("bench-server", "app=bench");
        services::apply(n1, &service(&[])).expect("apply the bench service");
        let want = [SocketAddrV4::new(server.ip, CPS_PORT)];
        for n in [n1, n2] {
            wait_for(&format!("{}'s kernel has the service", n.name), || {
                kernel_active(n, VIP, 80, LbProto::Tcp) == want
            });
        }
        let direct = SocketAddr::from((server.ip, CPS_PORT));
        let vip = SocketAddr::from((VIP, 80));
        let (cns, sns) = (client.netns(), server.netns());
        {
            let _srv = InlineServer::start(&sns, server.ip, CPS_PORT);
            for to in [direct, vip] {
                wait_for(&format!("client reaches {to}"), || {
                    tcp_exchange(&cns, to).is_ok()
                });
            }
            println!(
                "\n1. New connections per second, client pod (node 1) -> backend pod (node 2), connect + 64 B each way + RST, one loop"
            );
            columns();
            let (mut d, mut v, mut r) = (Vec::new(), Vec::new(), Vec::new());
            for run in 0..RUNS {
                let (a, b) = if run % 2 == 0 {
                    let a = connection_rate(&cns, direct, secs);
                    (a, connection_rate(&cns, vip, secs))
                } else {
                    let b = connection_rate(&cns, vip, secs);
                    (connection_rate(&cns, direct, secs), b)
                };
                d.push(a);
                v.push(b);
                r.push(b / a);
            }
            row("direct to the backend (conn/s)", &d, 0);
            row("through the ClusterIP (conn/s)", &v, 0);
            row("ratio ClusterIP / direct (target >= 0.90)", &r, 3);
        }

        println!("\n2. One TCP stream (iperf3, {secs} s), same pods");
        columns();
        let (mut d, mut v, mut r) = (Vec::new(), Vec::new(), Vec::new());
        let vip_iperf = SocketAddr::from((VIP, IPERF_PORT));
        let direct_iperf = SocketAddr::from((server.ip, IPERF_PORT));
        for run in 0..RUNS {
            let (a, b) = if run % 2 == 0 {
                let a = iperf3_to(&cns, &sns, server.ip, direct_iperf, secs);
                (a, iperf3_to(&cns, &sns, server.ip, vip_iperf, secs))
            } else {
                let b = iperf3_to(&cns, &sns, server.ip, vip_iperf, secs);
                (iperf3_to(&cns, &sns, server.ip, direct_iperf, secs), b)
            };
            d.push(a);
            v.push(b);
            r.push(b / a);
        }
        row("direct to the backend (Gbit/s)", &d, 2);
        row("through the ClusterIP (Gbit/s)", &v, 2);
        row("ratio ClusterIP / direct (target >= 0.95)", &r, 3);

        println!(
            "\n3. Service update propagation: change -> in the kernel LB maps, ms ({CHANGES} changes per run; p50 then p99 rows)"
        );
        columns();
        let mut rows: Vec<(String, Vec<f64>, Vec<f64>)> = Vec::new();
        for run in 0..RUNS {
            for (i, (name, pq)) in propagation(n1, n2, run).into_iter().enumerate() {
                if run == 0 {
                    rows.push((name, Vec::new(), Vec::new()));
                }
                rows[i].1.push(pq[0]);
                rows[i].2.push(pq[1]);
            }
        }
        for (name, p50, p99) in &rows {
            row(&format!("{name} p50"), p50, 2);
            row(&format!("{name} p99"), p99, 2);
        }
        made.extend(cluster.nodes.iter().map(|n| n.name.clone()));
        made.extend(
            cluster
                .nodes
                .iter()
                .flat_map(|n| n.made.lock().unwrap_or_else(|p| p.into_inner()).clone()),
        );
    }
    cluster.shutdown();
    let left: Vec<String> = netns_names()
        .into_iter()
        .filter(|n| made.contains(n))
        .collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    println!("\nteardown: every namespace, process, pin and directory of the bench removed");
}

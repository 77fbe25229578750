//! The datapath bench (`just bench`, root): two pods on one node of the
//! local cluster, real traffic, real agent and exporter processes.
//!
//! 1. TCP throughput (`iperf3 -c` from Debian's iperf3, SECS seconds) and
//!    TCP request rate (a 64-byte ping-pong loop on one connection, SECS
//!    seconds) between the pods, through the datapath (default settings:
//!    medium aggregation, 4 MiB ring, exporter reading) and over plain veth
//!    routing in a node namespace without any program; the ratio.
//! 2. Events per second at that load, per aggregation level (none, low,
//!    medium, max): everything the node's exporter decoded, as a following
//!    GetFlows client counts it, plus every loss it reports.
//! 3. Lost events at that load: zero with the default ring; with a
//!    deliberately tiny ring (one page) and aggregation none, the kernel's
//!    per-CPU lost counter rises and the exporter reports exactly that many
//!    in `LostEvent{PERF_EVENT_RING_BUFFER}`.
//!
//! `cargo run --release -p it --example datapath_bench [-- SECS]` (default 5).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use it::bench::{Counted, Follower, Load, load};
use it::sys::NetNs;
use it::{Node, NodeOptions};

struct Run {
    load: Load,
    counted: Counted,
    kernel_lost: u64,
    secs: f64,
}

/// One node with `opts`, two pods, the load, the exporter's counts.
fn datapath_run(opts: NodeOptions, secs: u64) -> Run {
    let node = Node::start(opts);
    let a = node.add_pod("client", "app=client");
    let b = node.add_pod("server", "app=server");
    // Warm up (ARP, conntrack) before counting.
    it::traffic::ping(&a.netns(), b.ip);
    let lost0 = node.maps().lost_events().unwrap();
    let follower = Follower::start(node.exporter_addr.unwrap(), false);
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let load = load(&a.netns(), &b.netns(), b.ip, secs);
    let secs = start.elapsed().as_secs_f64();
    // The exporter polls the kernel's lost counter every second.
    std::thread::sleep(Duration::from_millis(2500));
    let counted = follower.finish();
    let kernel_lost = node.maps().lost_events().unwrap() - lost0;
    drop((a, b));
    Run {
        load,
        counted,
        kernel_lost,
        secs,
    }
}

/// Two pods behind plain veth routing in a node namespace, no programs.
fn plain_run(secs: u64) -> Load {
    let node = NetNs::new("itbn");
    node.run(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    let mut pods = Vec::new();
    for ip in [Ipv4Addr::new(10, 211, 0, 2), Ipv4Addr::new(10, 211, 0, 3)] {
        pods.push((node.plain_routed_pod("itbp", ip, None), ip));
    }
    it::traffic::ping(&pods[0].0.path(), pods[1].1);
    load(&pods[0].0.path(), &pods[1].0.path(), pods[1].1, secs)
}

fn main() {
    if let Some(why) = it::sys::skip_reason(&["clang", "ip", "nsenter", "iperf3", "busybox"]) {
        eprintln!("datapath_bench: {why}");
        std::process::exit(1);
    }
    let secs: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("SECS"))
        .unwrap_or(5);
    it::bins::dir();
    println!(
        "datapath bench: two pods on one node, {secs} s iperf3 + {secs} s TCP request/response per run"
    );

    let plain = plain_run(secs);
    println!(
        "plain veth routing, no programs:  {:7.2} Gbit/s  {:9.0} req/s",
        plain.gbits, plain.rr_per_s
    );
    let mut default_run = None;
    for (i, level) in ["none", "low", "medium", "max"].into_iter().enumerate() {
        let mut opts = NodeOptions::new(&format!("10.212.{}.0/24", i + 1));
        opts.aggregation = level.into();
        let r = datapath_run(opts, secs);
        let c = &r.counted;
        let produced = c.flows + c.lost_kernel + c.lost_queue;
        println!(
            "datapath, aggregation {level:<6}    {:7.2} Gbit/s  {:9.0} req/s  events {:>9} ({:>8.0}/s)  lost: kernel {} (exporter reported {}), queue {}, follower lapped {}",
            r.load.gbits,
            r.load.rr_per_s,
            produced,
            produced as f64 / r.secs,
            r.kernel_lost,
            c.lost_kernel,
            c.lost_queue,
            c.lost_ring
        );
        if level == "medium" {
            default_run = Some(r);
        }
    }
    let d = default_run.expect("medium run").load;
    println!(
        "ratio datapath (default, medium) / plain veth: throughput {:.2}, request rate {:.2}",
        d.gbits / plain.gbits,
        d.rr_per_s / plain.rr_per_s
    );

    // A deliberately too small ring: one page, every trace reported.
    let mut opts = NodeOptions::new("10.212.9.0/24");
    opts.aggregation = "none".into();
    opts.events_ring_bytes = Some(4096);
    let r = datapath_run(opts, secs);
    let c = &r.counted;
    println!(
        "tiny ring (4 KiB, aggregation none): {:.2} Gbit/s, {} events received, kernel lost counter +{}, exporter reported LostEvent(PERF_EVENT_RING_BUFFER) {} -> {}",
        r.load.gbits,
        c.flows,
        r.kernel_lost,
        c.lost_kernel,
        if r.kernel_lost == c.lost_kernel {
            "counted exactly"
        } else {
            "MISMATCH"
        }
    );
    if r.kernel_lost != c.lost_kernel {
        std::process::exit(1);
    }
}

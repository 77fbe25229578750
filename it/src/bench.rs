//! What the whole-process benchmarks (`it/examples/*_bench.rs`) share: the
//! loads between two namespaces (`iperf3` TCP throughput, a 64-byte TCP
//! request/response loop), a following GetFlows client that counts flows
//! and every reported loss (and, if asked, how late each flow arrived),
//! `ServerStatus`, the spread of repeated runs, and an interrupt rule:
//! SIGINT/SIGTERM only set a flag, and [`check_interrupted`] turns it into
//! a panic at the next checkpoint, so the guards (pods, nodes, cluster,
//! namespaces) unwind and tear everything down.

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use proto::observer::observer_client::ObserverClient;
use proto::observer::{GetFlowsRequest, ServerStatusRequest, get_flows_response::ResponseTypes};

use crate::cluster::Proc;
use crate::sys::{TempDir, run_in};
use crate::traffic::{EchoServers, in_ns};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Makes SIGINT and SIGTERM set a flag instead of ending the process;
/// [`check_interrupted`] then unwinds from the next checkpoint. (The
/// children of a terminal's Ctrl-C get the signal too and stop; the guards
/// still remove namespaces, pins and directories.)
pub fn unwind_on_interrupt() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe);
        // the sigaction struct is zeroed and then filled.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// Whether SIGINT/SIGTERM arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Panics ("interrupted") if SIGINT/SIGTERM arrived, so the guards unwind.
pub fn check_interrupted() {
    if interrupted() {
        panic!("interrupted");
    }
}

/// A measured load between two namespaces.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// `iperf3` TCP throughput, Gbit/s (received).
    pub gbits: f64,
    /// 64-byte TCP request/response exchanges per second, one connection.
    pub rr_per_s: f64,
}

/// `iperf3 -c` for `secs` from `client_ns` to a server started in
/// `server_ns` on `ip`: the received throughput in Gbit/s.
pub fn iperf3(client_ns: &Path, server_ns: &Path, ip: Ipv4Addr, secs: u64) -> f64 {
    iperf3_to(client_ns, server_ns, ip, SocketAddr::from((ip, 5201)), secs)
}

/// [`iperf3`] with the server bound to `ip` (port 5201) and the client
/// connecting to `to` (a service frontend that leads to it, for example).
pub fn iperf3_to(
    client_ns: &Path,
    server_ns: &Path,
    ip: Ipv4Addr,
    to: SocketAddr,
    secs: u64,
) -> f64 {
    let dir = TempDir::new("it-bench-");
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net={}", server_ns.display()))
        .args(["iperf3", "-s", "-B", &ip.to_string()]);
    let _server = Proc::spawn("iperf3 -s", cmd, &dir.path.join("iperf3.log"));
    let mut last = String::new();
    for _ in 0..50 {
        check_interrupted();
        let out = run_in(
            client_ns,
            &[
                "iperf3",
                "-c",
                &to.ip().to_string(),
                "-p",
                &to.port().to_string(),
                "-t",
                &secs.to_string(),
                "-J",
            ],
        );
        check_interrupted();
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("iperf3 JSON");
            if let Some(b) = v["end"]["sum_received"]["bits_per_second"].as_f64() {
                return b / 1e9;
            }
        }
        last = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100)); // server not listening yet
    }
    panic!("iperf3 did not run: {last}")
}

/// A 64-byte TCP ping-pong on one connection (`TCP_NODELAY`) for `secs`
/// from `client_ns` to an echo server on `ip:7000` in `server_ns`:
/// exchanges per second.
pub fn request_rate(client_ns: &Path, server_ns: &Path, ip: Ipv4Addr, secs: u64) -> f64 {
    let _echo = EchoServers::start(server_ns, ip, &[7000], &[]);
    let to = SocketAddr::from((ip, 7000));
    in_ns(client_ns, move || {
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(5)).expect("connect");
        s.set_nodelay(true).expect("nodelay");
        let msg = [7u8; 64];
        let mut buf = [0u8; 64];
        let (start, mut n) = (Instant::now(), 0u64);
        while start.elapsed() < Duration::from_secs(secs) {
            s.write_all(&msg).expect("request");
            s.read_exact(&mut buf).expect("response");
            n += 1;
            if n.is_multiple_of(4096) {
                check_interrupted();
            }
        }
        n as f64 / start.elapsed().as_secs_f64()
    })
}

/// [`iperf3`] then [`request_rate`], `secs` each.
pub fn load(client_ns: &Path, server_ns: &Path, ip: Ipv4Addr, secs: u64) -> Load {
    Load {
        gbits: iperf3(client_ns, server_ns, ip, secs),
        rr_per_s: request_rate(client_ns, server_ns, ip, secs),
    }
}

/// What a following GetFlows client counted.
#[derive(Debug, Default, Clone)]
pub struct Counted {
    /// Flows received.
    pub flows: u64,
    /// Flows received before [`Follower::mark`] was called (0 if never).
    pub flows_at_mark: Option<u64>,
    /// `LostEvent{PERF_EVENT_RING_BUFFER}` totals (the kernel ring).
    pub lost_kernel: u64,
    /// `LostEvent{OBSERVER_EVENTS_QUEUE}` totals (the exporter's queue).
    pub lost_queue: u64,
    /// Every other `LostEvent` (`HUBBLE_RING_BUFFER`: this client lapped,
    /// or losses a relay reports).
    pub lost_ring: u64,
    /// Per node name: receive time − flow time of each flow with a time,
    /// in nanoseconds (only when asked for).
    pub latency_ns: HashMap<String, Vec<u64>>,
}

impl Counted {
    /// Every loss reported.
    pub fn lost(&self) -> u64 {
        self.lost_kernel + self.lost_queue + self.lost_ring
    }

    /// All latencies, every node, sorted.
    pub fn all_latencies(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.latency_ns.values().flatten().copied().collect();
        v.sort_unstable();
        v
    }

    /// The latencies of one node's flows, sorted.
    pub fn latencies_of(&self, node: &str) -> Vec<u64> {
        let mut v = self.latency_ns.get(node).cloned().unwrap_or_default();
        v.sort_unstable();
        v
    }
}

/// A following GetFlows client on its own thread.
#[derive(Debug)]
pub struct Follower {
    stop: Arc<AtomicBool>,
    mark: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Counted>>,
}

impl Follower {
    /// Follows `addr` (an exporter or a relay) from now on; with
    /// `latency`, keeps receive time − flow time per flow.
    pub fn start(addr: SocketAddr, latency: bool) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mark = Arc::new(AtomicBool::new(false));
        let (stop2, mark2) = (stop.clone(), mark.clone());
        let thread = std::thread::spawn(move || {
            let rt = crate::flows::runtime();
            rt.block_on(follow(addr, latency, &stop2, &mark2))
        });
        Self {
            stop,
            mark,
            thread: Some(thread),
        }
    }

    /// Remembers the number of flows received so far
    /// ([`Counted::flows_at_mark`]).
    pub fn mark(&self) {
        self.mark.store(true, Ordering::Relaxed);
    }

    /// Stops following; what it counted.
    pub fn finish(mut self) -> Counted {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .expect("running")
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn follow(addr: SocketAddr, latency: bool, stop: &AtomicBool, mark: &AtomicBool) -> Counted {
    let mut c = ObserverClient::connect(format!("http://{addr}"))
        .await
        .expect("connect to the Observer API")
        .max_decoding_message_size(64 << 20);
    let mut s = c
        .get_flows(GetFlowsRequest {
            follow: true,
            ..Default::default()
        })
        .await
        .expect("GetFlows")
        .into_inner();
    let mut n = Counted::default();
    loop {
        let next = tokio::time::timeout(Duration::from_millis(200), s.message()).await;
        if n.flows_at_mark.is_none() && mark.load(Ordering::Relaxed) {
            n.flows_at_mark = Some(n.flows);
        }
        if stop.load(Ordering::Relaxed) {
            return n;
        }
        let Ok(r) = next else { continue };
        match r.expect("GetFlows stream").and_then(|r| r.response_types) {
            Some(ResponseTypes::Flow(f)) => {
                n.flows += 1;
                if latency && let Some(t) = &f.time {
                    let now = proto::wkt::Timestamp::now().as_unix_nanos();
                    let d = (now - t.as_unix_nanos()).max(0) as u64;
                    match n.latency_ns.get_mut(&f.node_name) {
                        Some(v) => v.push(d),
                        None => {
                            n.latency_ns.insert(f.node_name.clone(), vec![d]);
                        }
                    }
                }
            }
            Some(ResponseTypes::LostEvents(l)) => match l.source {
                1 => n.lost_kernel += l.num_events_lost,
                2 => n.lost_queue += l.num_events_lost,
                _ => n.lost_ring += l.num_events_lost,
            },
            Some(_) => {}
            None => return n,
        }
    }
}

/// `ServerStatus` of an exporter or relay: `(seen_flows, num_flows)`.
pub fn seen_flows(addr: SocketAddr) -> (u64, u64) {
    let rt = crate::flows::runtime();
    rt.block_on(async move {
        let mut c = ObserverClient::connect(format!("http://{addr}"))
            .await
            .expect("connect to the Observer API");
        let s = c
            .server_status(ServerStatusRequest::default())
            .await
            .expect("ServerStatus")
            .into_inner();
        (s.seen_flows, s.num_flows)
    })
}

/// Minimum, median and maximum of repeated runs.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    /// Smallest.
    pub min: f64,
    /// Median (the mean of the middle two for an even count).
    pub median: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// The spread of `v` (not empty).
    pub fn of(v: &[f64]) -> Self {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        assert!(n > 0, "no values");
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        };
        Self {
            min: s[0],
            median,
            max: s[n - 1],
        }
    }
}

/// The `p`-th percentile (0–100, nearest rank) of sorted values; 0 when
/// empty.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Prints one row of a bench table: label, min / median / max of `v`, and
/// each run (`prec` decimals), under [`columns`].
pub fn row(label: &str, v: &[f64], prec: usize) {
    let s = Spread::of(v);
    let runs: Vec<String> = v.iter().map(|x| format!("{x:.prec$}")).collect();
    println!(
        "  {label:<44} {:>10.prec$} {:>10.prec$} {:>10.prec$}   runs: {}",
        s.min,
        s.median,
        s.max,
        runs.join(", ")
    );
}

/// Prints the header of the rows of [`row`].
pub fn columns() {
    println!(
        "  {:<44} {:>10} {:>10} {:>10}",
        "measurement", "min", "median", "max"
    );
}

/// A TCP server on `ip:port` in a namespace that serves each connection
/// inline (one read of at most 64 bytes, within 200 ms, echoed back, then
/// close): no thread per connection, so the server is not what limits a
/// connection rate. Stopped on drop (a last connection wakes `accept`).
pub struct InlineServer {
    stop: Arc<AtomicBool>,
    to: SocketAddr,
    ns: std::path::PathBuf,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InlineServer {
    /// Listens on `ip:port` in the namespace `ns`; returns once it does.
    pub fn start(ns: &Path, ip: Ipv4Addr, port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop2, ns2) = (stop.clone(), ns.to_path_buf());
        let thread = std::thread::spawn(move || {
            crate::traffic::enter(&ns2);
            let l = std::net::TcpListener::bind((ip, port)).expect("bind");
            tx.send(()).expect("signal");
            let mut buf = [0u8; 64];
            while !stop2.load(Ordering::Relaxed) {
                let Ok((mut s, _)) = l.accept() else { continue };
                let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                if let Ok(n @ 1..) = s.read(&mut buf) {
                    let _ = s.write_all(&buf[..n]);
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(10)).expect("server up");
        Self {
            stop,
            to: SocketAddr::from((ip, port)),
            ns: ns.to_path_buf(),
            thread: Some(thread),
        }
    }
}

impl Drop for InlineServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let (to, ns) = (self.to, self.ns.clone());
        let _ = std::thread::spawn(move || {
            crate::traffic::enter(&ns);
            let _ = TcpStream::connect_timeout(&to, Duration::from_millis(500));
        })
        .join();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sets SO_LINGER 0 on `s`: close sends RST and leaves no TIME_WAIT (short
/// connections at a high rate would exhaust the ports otherwise).
pub fn rst_on_close(s: &TcpStream) {
    use std::os::fd::AsRawFd as _;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a valid linger struct.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const l).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

//! Shared fixtures of the privileged datapath tests: a private bpffs in a
//! scratch directory (unmounted on drop, so every pin, map and pinned link
//! goes away even when a test fails), a named network namespace guard, the
//! skip rule, and `BPF_PROG_TEST_RUN` helpers.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aya::maps::{Map, MapData, RingBuf};
use aya::programs::{TestRun as _, TestRunOptions};
use datapath::netns::in_netns;
use datapath::{Datapath, LoadOptions, Maps};

pub use test_support::unique;

/// Why a privileged test cannot run here (root, clang); under CI (`CI` set)
/// it panics instead, so a broken machine cannot pass by skipping.
pub fn skip_reason() -> Option<String> {
    test_support::skip_reason(&["clang"])
}

/// Skips the calling test (returns) with a one-line reason when it cannot run.
#[macro_export]
macro_rules! require_privileges {
    () => {
        test_support::require_privileges!("clang")
    };
}

/// A private bpffs mounted in a scratch directory; the node's pins are
/// unpinned before it is unmounted (so pinned links detach at once).
pub struct Scratch {
    pub dir: PathBuf,
    pub bpffs: PathBuf,
    inner: test_support::BpffsScratch,
}

impl Scratch {
    pub fn new() -> Self {
        let inner = test_support::BpffsScratch::new("datapath-test-");
        Self {
            dir: inner.dir.clone(),
            bpffs: inner.bpffs.clone(),
            inner,
        }
    }

    /// The node pin directory inside the private bpffs.
    pub fn pin_dir(&self) -> PathBuf {
        self.bpffs.join("node")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = datapath::loader::unpin_all(&self.pin_dir());
        self.inner.unmount();
    }
}

/// Runs a command, panicking with its stderr on failure.
pub fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a command and returns its stdout.
pub fn sh_out(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The MAC address of `iface` in namespace `ns`.
pub fn mac_of(ns: &str, iface: &str) -> [u8; 6] {
    let out = sh_out(&["ip", "-n", ns, "-br", "link", "show", iface]);
    let mac = out
        .split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("no MAC in {out:?}"));
    let mut m = [0u8; 6];
    for (i, part) in mac.split(':').enumerate() {
        m[i] = u8::from_str_radix(part, 16).expect("hex");
    }
    m
}

/// Turns IPv6 off in a namespace: the datapath is IPv4-only and drops
/// other L3 protocols with an event, so interfaces must not chatter IPv6
/// (what the CNI plugin sets up too).
pub fn disable_ipv6(ns: &NetNs) {
    sh_out(&[
        "ip",
        "netns",
        "exec",
        &ns.name,
        "sysctl",
        "-qw",
        "net.ipv6.conf.all.disable_ipv6=1",
        "net.ipv6.conf.default.disable_ipv6=1",
    ]);
}

/// A named network namespace (`ip netns add`), deleted on drop.
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    pub fn new(prefix: &str) -> Self {
        let name = unique(prefix);
        sh(&["ip", "netns", "add", &name]);
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Self { name }
    }

    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// `ip -n NS args...`
    pub fn ip(&self, args: &[&str]) {
        let mut v = vec!["ip", "-n", &self.name];
        v.extend_from_slice(args);
        sh(&v);
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A datapath loaded into a private bpffs, with its maps and ring buffer.
pub struct Harness {
    pub dp: Datapath,
    pub maps: Maps,
    pub ring: RingBuf<MapData>,
    pub scratch: Scratch,
}

impl Harness {
    pub fn new() -> Self {
        Self::with(|_| {})
    }

    pub fn with(tweak: impl FnOnce(&mut LoadOptions)) -> Self {
        let scratch = Scratch::new();
        let mut opts = LoadOptions::new(scratch.pin_dir());
        // Small maps: a test never needs more, and loading is faster.
        opts.sizes.ct4 = 1024;
        opts.sizes.events_ring_bytes = 1 << 20;
        tweak(&mut opts);
        let dp = Datapath::load(&opts).expect("load datapath");
        let maps = dp.maps().expect("open maps");
        let ring = Self::ring_at(&scratch.pin_dir());
        Self {
            dp,
            maps,
            ring,
            scratch,
        }
    }

    /// Runs `prog` once on `frame` with `skb->ifindex = ifindex`; returns
    /// the TC verdict and the frame as the program left it.
    pub fn run(&self, prog: &'static str, frame: &[u8], ifindex: u32) -> (u32, Vec<u8>) {
        let p = self.dp.program(prog).expect("program");
        let mut ctx = [0u8; 192]; // struct __sk_buff
        ctx[40..44].copy_from_slice(&ifindex.to_ne_bytes());
        let mut out = vec![0u8; frame.len() + 64];
        let mut o = TestRunOptions::new();
        o.data_in = Some(frame);
        o.data_out = Some(&mut out);
        o.ctx_in = Some(&ctx);
        let r = p.test_run(o).expect("BPF_PROG_TEST_RUN");
        out.truncate(r.data_size_out as usize);
        (r.return_value, out)
    }

    /// Opens the pinned `events` ring of a node, as the exporter would.
    pub fn ring_at(pin_dir: &Path) -> RingBuf<MapData> {
        let data = MapData::from_pin(pin_dir.join("events")).expect("events pin");
        RingBuf::try_from(Map::from_map_data(data).expect("map")).expect("ringbuf")
    }

    /// Every record waiting in a ring buffer.
    pub fn drain_ring(ring: &mut RingBuf<MapData>) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        while let Some(item) = ring.next() {
            v.push(item.to_vec());
        }
        v
    }

    /// Every record waiting in the ring buffer.
    pub fn drain(&mut self) -> Vec<Vec<u8>> {
        Self::drain_ring(&mut self.ring)
    }
}

/// The pods' gateway address (answered by the BPF ARP responder).
pub const GW: &str = "169.254.1.1";
/// A pod: its namespace, address and host-side veth.
pub struct Pod {
    pub ns: NetNs,
    pub ip: Ipv4Addr,
    pub host_if: String,
}

/// A pod namespace wired to `node` by a veth pair, as a CNI plugin would.
pub fn pod(node: &NetNs, ip: Ipv4Addr, host_if: &str) -> Pod {
    let ns = NetNs::new("dpp");
    node.ip(&[
        "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", &ns.name,
    ]);
    disable_ipv6(&ns);
    ns.ip(&["addr", "add", &format!("{ip}/32"), "dev", "eth0"]);
    ns.ip(&["link", "set", "eth0", "up"]);
    ns.ip(&["route", "add", GW, "dev", "eth0", "scope", "link"]);
    ns.ip(&["route", "add", "default", "via", GW, "dev", "eth0"]);
    node.ip(&["link", "set", host_if, "up"]);
    Pod {
        ns,
        ip,
        host_if: host_if.to_string(),
    }
}

/// A TCP echo server inside a namespace, on its own thread: echoes each
/// connection until EOF (one at a time); stopped on drop.
pub struct EchoServer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EchoServer {
    pub fn start(ns: PathBuf, addr: SocketAddr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let f = std::fs::File::open(&ns).expect("open netns");
            // SAFETY: valid namespace fd; only this dedicated thread moves.
            assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
            let l = TcpListener::bind(addr).expect("bind");
            l.set_nonblocking(true).unwrap();
            tx.send(()).unwrap();
            while !stop2.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                        let mut buf = [0u8; 16 * 1024];
                        while let Ok(n) = s.read(&mut buf) {
                            if n == 0 || s.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(5)).expect("server up");
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects from inside `ns` and round-trips a message; `Err` on timeout.
pub fn echo(ns: &Path, to: SocketAddr) -> Result<(), String> {
    in_netns(Some(ns), || {
        Ok((|| -> std::io::Result<()> {
            let mut s = TcpStream::connect_timeout(&to, Duration::from_millis(1500))?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.write_all(b"landing request")?;
            let mut buf = [0u8; 15];
            s.read_exact(&mut buf)?;
            assert_eq!(&buf, b"landing request");
            Ok(())
        })()
        .map_err(|e| e.to_string()))
    })
    .expect("netns switch")
}

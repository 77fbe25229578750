//! Real traffic inside network namespaces: TCP and UDP echo servers, one
//! request/response exchange (TCP, UDP), ICMP echo with busybox `ping`.
//! Sockets are made on dedicated threads that entered the namespace, so the
//! test thread never changes namespace.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long a connection attempt or an answer may take before the exchange
/// counts as blocked (a denial shows up as this timeout).
pub const ATTEMPT: Duration = Duration::from_millis(1500);

/// Enters `ns` on the calling thread (only call on a dedicated thread).
pub fn enter(ns: &Path) {
    let f = std::fs::File::open(ns).unwrap_or_else(|e| panic!("open {}: {e}", ns.display()));
    // SAFETY: a valid namespace fd; only this dedicated thread moves.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

/// Runs `f` on a fresh thread inside `ns` and returns its result.
pub fn in_ns<T: Send + 'static>(ns: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.to_path_buf();
    std::thread::spawn(move || {
        enter(&ns);
        f()
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// TCP and UDP echo servers on `ip` in a namespace; stopped on drop.
#[derive(Debug)]
pub struct EchoServers {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl EchoServers {
    /// TCP echo on each of `tcp` ports and UDP echo on each of `udp` ports.
    pub fn start(ns: &Path, ip: Ipv4Addr, tcp: &[u16], udp: &[u16]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let ports = tcp
            .iter()
            .map(|p| (*p, true))
            .chain(udp.iter().map(|p| (*p, false)));
        for (port, is_tcp) in ports {
            let (tx, rx) = std::sync::mpsc::channel();
            let (stop2, ns) = (stop.clone(), ns.to_path_buf());
            threads.push(std::thread::spawn(move || {
                enter(&ns);
                if is_tcp {
                    tcp_echo_loop(ip, port, &stop2, &tx);
                } else {
                    udp_echo_loop(ip, port, &stop2, &tx);
                }
            }));
            rx.recv_timeout(Duration::from_secs(10))
                .expect("echo server up");
        }
        Self { stop, threads }
    }
}

fn tcp_echo_loop(ip: Ipv4Addr, port: u16, stop: &AtomicBool, up: &std::sync::mpsc::Sender<()>) {
    let l = TcpListener::bind((ip, port)).expect("bind tcp");
    l.set_nonblocking(true).expect("nonblocking");
    up.send(()).expect("signal");
    while !stop.load(Ordering::Relaxed) {
        match l.accept() {
            Ok((mut s, _)) => {
                // One thread per connection; it inherits the namespace.
                std::thread::spawn(move || {
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn udp_echo_loop(ip: Ipv4Addr, port: u16, stop: &AtomicBool, up: &std::sync::mpsc::Sender<()>) {
    let s = UdpSocket::bind((ip, port)).expect("bind udp");
    s.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    up.send(()).expect("signal");
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        if let Ok((n, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(&buf[..n], from);
        }
    }
}

impl Drop for EchoServers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One TCP exchange from namespace `ns` to `to`: connect, send, read the
/// echo. `Err` says what failed (a denial: the connect timed out).
pub fn tcp_exchange(ns: &Path, to: SocketAddr) -> Result<(), String> {
    in_ns(ns, move || {
        (|| -> std::io::Result<()> {
            let mut s = TcpStream::connect_timeout(&to, ATTEMPT)?;
            s.set_read_timeout(Some(ATTEMPT))?;
            s.write_all(b"ping over tcp")?;
            let mut buf = [0u8; 13];
            s.read_exact(&mut buf)?;
            if &buf != b"ping over tcp" {
                return Err(std::io::Error::other("wrong echo"));
            }
            Ok(())
        })()
        .map_err(|e| format!("tcp to {to}: {e}"))
    })
}

/// One UDP exchange from namespace `ns` to `to`: a datagram and its echo
/// (three tries, the first may wait for ARP).
pub fn udp_exchange(ns: &Path, to: SocketAddr) -> Result<(), String> {
    in_ns(ns, move || {
        (|| -> std::io::Result<()> {
            let s = UdpSocket::bind("0.0.0.0:0")?;
            s.set_read_timeout(Some(ATTEMPT / 3))?;
            s.connect(to)?;
            let mut buf = [0u8; 64];
            let mut last = None;
            for _ in 0..3 {
                s.send(b"ping over udp")?;
                match s.recv(&mut buf) {
                    Ok(n) if &buf[..n] == b"ping over udp" => return Ok(()),
                    Ok(_) => last = Some(std::io::Error::other("wrong echo")),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| std::io::Error::other("no answer")))
        })()
        .map_err(|e| format!("udp to {to}: {e}"))
    })
}

/// `busybox ping -c 1 -W 2 ip` inside `ns`: whether an echo reply came.
pub fn ping(ns: &Path, ip: Ipv4Addr) -> bool {
    crate::sys::run_in(
        ns,
        &["busybox", "ping", "-c", "1", "-W", "2", &ip.to_string()],
    )
    .status
    .success()
}

/// The namespace handle of a process (for namespaces made by others).
pub fn proc_netns(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/ns/net"))
}

/// A long-lived TCP connection from a namespace to an echo server that
/// exchanges a 1 KiB message every [`Stream::PERIOD`] until stopped: the
/// "established connection" of the restart and outage tests. Any failure
/// (reset, timeout, wrong echo) ends it and is kept.
#[derive(Debug)]
pub struct Stream {
    stop: Arc<AtomicBool>,
    exchanges: Arc<std::sync::atomic::AtomicU64>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl Stream {
    /// Time between two exchanges.
    pub const PERIOD: Duration = Duration::from_millis(50);

    /// Connects from `ns` to `to` (retrying the connect for up to 10 s:
    /// the peer may just be becoming reachable) and starts exchanging.
    pub fn start(ns: &Path, to: SocketAddr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let exchanges = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        let (ns, stop2, n2) = (ns.to_path_buf(), stop.clone(), exchanges.clone());
        let thread = std::thread::spawn(move || {
            enter(&ns);
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let mut s = loop {
                match TcpStream::connect_timeout(&to, ATTEMPT) {
                    Ok(s) => break s,
                    Err(e) if std::time::Instant::now() > deadline => {
                        let _ = tx.send(());
                        return Err(format!("connect to {to}: {e}"));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            };
            let _ = tx.send(());
            let msg = [0x5au8; 1024];
            let mut buf = [0u8; 1024];
            while !stop2.load(Ordering::Relaxed) {
                let r = (|| -> std::io::Result<()> {
                    s.set_read_timeout(Some(Duration::from_secs(5)))?;
                    s.write_all(&msg)?;
                    s.read_exact(&mut buf)?;
                    if buf != msg {
                        return Err(std::io::Error::other("wrong echo"));
                    }
                    Ok(())
                })();
                if let Err(e) = r {
                    return Err(format!(
                        "stream to {to} broke after {} exchanges: {e}",
                        n2.load(Ordering::Relaxed)
                    ));
                }
                n2.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Self::PERIOD);
            }
            Ok(())
        });
        let _ = rx.recv_timeout(Duration::from_secs(15));
        Self {
            stop,
            exchanges,
            thread: Some(thread),
        }
    }

    /// Exchanges completed so far.
    pub fn exchanges(&self) -> u64 {
        self.exchanges.load(Ordering::Relaxed)
    }

    /// Whether it still runs (no failure yet).
    pub fn alive(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops it; `Err` if it broke at any point.
    pub fn finish(mut self) -> Result<u64, String> {
        self.stop.store(true, Ordering::Relaxed);
        let r = self
            .thread
            .take()
            .expect("running")
            .join()
            .unwrap_or_else(|_| Err("stream thread panicked".into()));
        r.map(|()| self.exchanges())
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a [`WhoServers`] answers with its name instead of an echo.
pub const WHO: &[u8] = b"who?";

/// TCP and UDP servers on `ip` in a namespace that say who they are: a
/// read (TCP) or datagram (UDP) of exactly [`WHO`] is answered with the
/// server's name, anything else is echoed (so a [`Stream`] runs against
/// it too). Counts the TCP connections it accepted, so a test can tell
/// which backend of a service took a connection. Stopped on drop.
#[derive(Debug)]
pub struct WhoServers {
    /// The name it answers with.
    pub name: String,
    accepted: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl WhoServers {
    /// Servers named `name` on `ip`: TCP on each of `tcp`, UDP on each of
    /// `udp`.
    pub fn start(ns: &Path, ip: Ipv4Addr, name: &str, tcp: &[u16], udp: &[u16]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut threads = Vec::new();
        let ports = tcp
            .iter()
            .map(|p| (*p, true))
            .chain(udp.iter().map(|p| (*p, false)));
        for (port, is_tcp) in ports {
            let (tx, rx) = std::sync::mpsc::channel();
            let (stop2, ns, acc) = (stop.clone(), ns.to_path_buf(), accepted.clone());
            let name = name.as_bytes().to_vec();
            threads.push(std::thread::spawn(move || {
                enter(&ns);
                if is_tcp {
                    who_tcp_loop(ip, port, &name, &acc, &stop2, &tx);
                } else {
                    who_udp_loop(ip, port, &name, &stop2, &tx);
                }
            }));
            rx.recv_timeout(Duration::from_secs(10))
                .expect("who server up");
        }
        Self {
            name: name.to_string(),
            accepted,
            stop,
            threads,
        }
    }

    /// TCP connections accepted so far (every port).
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

fn who_answer<'a>(msg: &'a [u8], name: &'a [u8]) -> &'a [u8] {
    if msg == WHO { name } else { msg }
}

fn who_tcp_loop(
    ip: Ipv4Addr,
    port: u16,
    name: &[u8],
    accepted: &std::sync::atomic::AtomicU64,
    stop: &AtomicBool,
    up: &std::sync::mpsc::Sender<()>,
) {
    let l = TcpListener::bind((ip, port)).expect("bind tcp");
    l.set_nonblocking(true).expect("nonblocking");
    up.send(()).expect("signal");
    while !stop.load(Ordering::Relaxed) {
        match l.accept() {
            Ok((mut s, _)) => {
                accepted.fetch_add(1, Ordering::Relaxed);
                let name = name.to_vec();
                std::thread::spawn(move || {
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(who_answer(&buf[..n], &name)).is_err() {
                            break;
                        }
                    }
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

fn who_udp_loop(
    ip: Ipv4Addr,
    port: u16,
    name: &[u8],
    stop: &AtomicBool,
    up: &std::sync::mpsc::Sender<()>,
) {
    let s = UdpSocket::bind((ip, port)).expect("bind udp");
    s.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    up.send(()).expect("signal");
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        if let Ok((n, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(who_answer(&buf[..n], name), from);
        }
    }
}

impl Drop for WhoServers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Asks the server behind `to` who it is over a new TCP connection from
/// `ns` (connect, [`WHO`], one read): its name. The connection is to `to`,
/// so an answer proves the replies came from `to`.
pub fn tcp_who(ns: &Path, to: SocketAddr) -> Result<String, String> {
    in_ns(ns, move || {
        (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect_timeout(&to, ATTEMPT)?;
            s.set_read_timeout(Some(ATTEMPT))?;
            s.write_all(WHO)?;
            let mut buf = [0u8; 256];
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Err(std::io::Error::other("closed without an answer"));
            }
            Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
        })()
        .map_err(|e| format!("tcp who to {to}: {e}"))
    })
}

/// Asks the server behind `to` who it is over UDP from a new socket in
/// `ns` (a new source port: a new connection for the datapath), three
/// tries. `connect`: a connected socket (the kernel only accepts an answer
/// from `to`); otherwise `recvfrom` on an unconnected socket, whose source
/// is returned as seen. Returns the name and the answer's source.
pub fn udp_who(ns: &Path, to: SocketAddr, connect: bool) -> Result<(String, SocketAddr), String> {
    in_ns(ns, move || {
        (|| -> std::io::Result<(String, SocketAddr)> {
            let s = UdpSocket::bind("0.0.0.0:0")?;
            s.set_read_timeout(Some(ATTEMPT / 3))?;
            if connect {
                s.connect(to)?;
            }
            let mut buf = [0u8; 256];
            let mut last = None;
            for _ in 0..3 {
                if connect {
                    s.send(WHO)?;
                } else {
                    s.send_to(WHO, to)?;
                }
                match s.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        return Ok((String::from_utf8_lossy(&buf[..n]).into_owned(), from));
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| std::io::Error::other("no answer")))
        })()
        .map_err(|e| format!("udp who to {to}: {e}"))
    })
}

//! A throw-away single-member etcd (Debian's `/usr/bin/etcd`) on two free
//! loopback ports with its data in a scratch directory: for the tests of
//! the cluster store's etcd backend. Outages are simulated honestly:
//! [`Etcd::pause`] stops the process (SIGSTOP: connections stay open, no
//! answer comes), [`Etcd::stop`] ends it, [`Etcd::restart`] starts it again
//! on the same data directory and ports.
//!
//! Tests that use it call [`require_etcd!`](crate::require_etcd) first: it
//! skips (or panics under CI) when the binaries are missing; no root needed.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{TempDir, free_port, which};

/// How long a fresh or restarted etcd may take to answer a health check
/// (under 3 s on these machines; the bound only guards against hangs).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the etcd tests cannot run here (`etcd` or `etcdctl` missing), or
/// `None`. Under CI (`CI` set) a missing binary panics instead.
pub fn etcd_skip_reason() -> Option<String> {
    let why = ["etcd", "etcdctl"]
        .iter()
        .find(|t| which(t).is_none())
        .map(|t| format!("needs {t} (./bootstrap.sh installs etcd-server and etcd-client)"));
    if let (Some(w), true) = (&why, std::env::var_os("CI").is_some()) {
        panic!("etcd test cannot run under CI: {w}");
    }
    why
}

/// Returns from the calling test with a one-line reason when etcd is not
/// installed; panics under CI instead of skipping.
#[macro_export]
macro_rules! require_etcd {
    () => {
        if let Some(why) = $crate::etcd::etcd_skip_reason() {
            eprintln!("skipped: {why}");
            return;
        }
    };
}

/// A running etcd; killed and its data removed on drop.
#[derive(Debug)]
pub struct Etcd {
    child: Option<Child>,
    client_port: u16,
    peer_port: u16,
    dir: TempDir,
    paused: bool,
}

impl Etcd {
    /// Starts etcd on two free loopback ports and waits until it is healthy.
    pub fn start() -> Self {
        let mut e = Self::unstarted();
        e.spawn();
        e
    }

    /// Chooses ports and a data directory without starting anything (for
    /// "etcd is down at first" tests); [`restart`](Self::restart) starts it.
    pub fn unstarted() -> Self {
        let client_port = free_port();
        let mut peer_port = free_port();
        while peer_port == client_port {
            peer_port = free_port();
        }
        Self {
            child: None,
            client_port,
            peer_port,
            dir: TempDir::new("etcd-"),
            paused: false,
        }
    }

    /// `http://127.0.0.1:<client port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn spawn(&mut self) {
        let bin = which("etcd").expect("etcd installed (require_etcd! first)");
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::File::create(self.dir.join("etcd.log")).expect("etcd log file");
        let child = Command::new(bin)
            .args(["--name", "t1", "--data-dir"])
            .arg(self.data_dir())
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("t1={peer}")])
            .args(["--logger=zap", "--log-level=error"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn etcd");
        self.child = Some(child);
        self.paused = false;
        self.wait_healthy();
    }

    fn wait_healthy(&mut self) {
        let addr: SocketAddr = ([127, 0, 0, 1], self.client_port).into();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                let log = std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default();
                panic!("etcd exited at start ({st}): {log}");
            }
            let up = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
                && Command::new(which("etcdctl").expect("etcdctl installed"))
                    .env("ETCDCTL_API", "3")
                    .args(["--endpoints", &self.endpoint(), "--dial-timeout=1s"])
                    .args(["endpoint", "health"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
            if up {
                return;
            }
            assert!(Instant::now() < deadline, "etcd not healthy in time");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(c) = &self.child {
            let pid = libc::pid_t::try_from(c.id()).expect("pid fits");
            // SAFETY: kill(2) on our own child's pid, no memory involved.
            let rc = unsafe { libc::kill(pid, sig) };
            assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
        }
    }

    /// Freezes etcd (SIGSTOP): its sockets stay open but nothing answers.
    pub fn pause(&mut self) {
        self.signal(libc::SIGSTOP);
        self.paused = true;
    }

    /// Lets a paused etcd run again (SIGCONT).
    pub fn resume(&mut self) {
        self.signal(libc::SIGCONT);
        self.paused = false;
    }

    /// Stops etcd (SIGTERM, then waits for it to exit).
    pub fn stop(&mut self) {
        if self.paused {
            self.resume();
        }
        if let Some(mut c) = self.child.take() {
            self.signal_child(&c, libc::SIGTERM);
            let _ = c.wait();
        }
    }

    fn signal_child(&self, c: &Child, sig: libc::c_int) {
        if let Ok(pid) = libc::pid_t::try_from(c.id()) {
            // SAFETY: kill(2) on our own child's pid, no memory involved.
            unsafe { libc::kill(pid, sig) };
        }
    }

    /// Stops etcd if running and starts it again on the same data
    /// directory and ports; waits until healthy.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

//! Machine-level fixtures: unique names, the skip rule of privileged tests,
//! commands (also inside a network namespace), a named network namespace
//! guard, a private bpffs mount guard, and inventories of what exists (for
//! the "nothing left behind" checks).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use test_support::{TempDir, unique, which};

/// Why a privileged test cannot run here, checking root and `tools`
/// (executables looked up in PATH). Under CI (`CI` set) a missing
/// requirement panics instead: a broken machine must not pass by skipping.
pub fn skip_reason(tools: &[&str]) -> Option<String> {
    test_support::skip_reason(tools)
}

/// Returns from the calling test with a one-line reason when it cannot run
/// (root, clang and `ip` always; more tools as arguments). Panics under CI.
#[macro_export]
macro_rules! require_privileges {
    ($($tool:expr),*) => {
        if let Some(why) = $crate::sys::skip_reason(&["clang", "ip", "nsenter" $(, $tool)*]) {
            eprintln!("skipped: {why}");
            return;
        }
    };
}

fn check(args: &[&str], out: std::io::Result<Output>) -> Output {
    let out = out.unwrap_or_else(|e| panic!("run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command, panicking with its output on failure.
pub fn sh(args: &[&str]) {
    check(args, Command::new(args[0]).args(&args[1..]).output());
}

/// Runs a command and returns its stdout, panicking on failure.
pub fn sh_out(args: &[&str]) -> String {
    let out = check(args, Command::new(args[0]).args(&args[1..]).output());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command in the network namespace `ns` (a `/run/netns/NAME`
/// handle) with `nsenter --net`, which keeps the mount namespace (so bpffs
/// pins stay visible, unlike `ip netns exec`). Returns the raw output.
pub fn run_in(ns: &Path, args: &[&str]) -> Output {
    Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("nsenter {args:?}: {e}"))
}

/// The sysctls of a node namespace: IPv4 only, forwarding on, no reverse
/// path filter (pods' replies arrive on other interfaces than routes say).
pub const NODE_SYSCTLS: &[&str] = &[
    "net.ipv6.conf.all.disable_ipv6=1",
    "net.ipv6.conf.default.disable_ipv6=1",
    "net.ipv4.ip_forward=1",
    "net.ipv4.conf.all.rp_filter=0",
    "net.ipv4.conf.default.rp_filter=0",
];

/// A named network namespace (`ip netns add`, loopback up), deleted on drop
/// (its interfaces, routes and tc attachments go with it).
#[derive(Debug)]
pub struct NetNs {
    /// The name under /run/netns.
    pub name: String,
}

impl NetNs {
    /// A fresh namespace named `prefix` + a unique tag.
    pub fn new(prefix: &str) -> Self {
        let name = unique(prefix);
        sh(&["ip", "netns", "add", &name]);
        let me = Self { name };
        me.ip(&["link", "set", "lo", "up"]);
        me
    }

    /// The namespace handle.
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// `ip -n NS args...`, panicking on failure.
    pub fn ip(&self, args: &[&str]) {
        let mut v = vec!["ip", "-n", &self.name];
        v.extend_from_slice(args);
        sh(&v);
    }

    /// Runs a command inside the namespace (see [`run_in`]).
    pub fn run(&self, args: &[&str]) -> Output {
        run_in(&self.path(), args)
    }

    /// Sets sysctls inside the namespace (`key=value` each).
    pub fn sysctl(&self, kv: &[&str]) {
        let mut v = vec!["sysctl", "-qw"];
        v.extend_from_slice(kv);
        let out = self.run(&v);
        assert!(
            out.status.success(),
            "sysctl {kv:?} in {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A namespace holding one bridge `br0`, up: an underlay that nodes
    /// hang on with [`NetNs::plug_into_bridge`].
    pub fn bridge(prefix: &str) -> Self {
        let me = Self::new(prefix);
        me.ip(&["link", "add", "br0", "type", "bridge"]);
        me.ip(&["link", "set", "br0", "up"]);
        me
    }

    /// Hangs this namespace on the bridge `br0` of namespace `underlay`:
    /// a veth whose end here is `eth0` with address `addr` (`a.b.c.d/len`),
    /// both ends up.
    pub fn plug_into_bridge(&self, underlay: &str, addr: &str) {
        let peer = unique("itu");
        sh(&[
            "ip", "-n", underlay, "link", "add", &peer, "type", "veth", "peer", "name", "eth0",
            "netns", &self.name,
        ]);
        sh(&[
            "ip", "-n", underlay, "link", "set", &peer, "master", "br0", "up",
        ]);
        self.ip(&["addr", "add", addr, "dev", "eth0"]);
        self.ip(&["link", "set", "eth0", "up"]);
    }

    /// A pod of this (node) namespace wired by plain routing, no programs:
    /// a veth (`mtu` on both ends, if given) whose node end holds
    /// 169.254.1.1 and a /32 route to `ip`, and whose pod end `eth0` holds
    /// `ip`/32 with 169.254.1.1 as its gateway (the benches' baselines).
    pub fn plain_routed_pod(
        &self,
        prefix: &str,
        ip: std::net::Ipv4Addr,
        mtu: Option<&str>,
    ) -> NetNs {
        let pod = NetNs::new(prefix);
        let host = unique("itbv");
        let mut link = vec!["link", "add", &host];
        link.extend(mtu.iter().flat_map(|m| ["mtu", *m]));
        link.extend(["type", "veth", "peer", "name", "eth0"]);
        link.extend(mtu.iter().flat_map(|m| ["mtu", *m]));
        link.extend(["netns", &pod.name]);
        self.ip(&link);
        self.ip(&["addr", "add", "169.254.1.1/32", "dev", &host]);
        self.ip(&["link", "set", &host, "up"]);
        self.ip(&["route", "add", &format!("{ip}/32"), "dev", &host]);
        pod.ip(&["addr", "add", &format!("{ip}/32"), "dev", "eth0"]);
        pod.ip(&["link", "set", "eth0", "up"]);
        pod.ip(&[
            "route",
            "add",
            "169.254.1.1",
            "dev",
            "eth0",
            "scope",
            "link",
        ]);
        pod.ip(&["route", "add", "default", "via", "169.254.1.1"]);
        pod
    }

    /// Interface names in the namespace, `lo` excluded.
    pub fn links(&self) -> Vec<String> {
        links_of(Some(&self.name))
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Interface names (without `@peer`) in a namespace or the host's, `lo`
/// excluded.
pub fn links_of(ns: Option<&str>) -> Vec<String> {
    let mut args = vec!["ip"];
    if let Some(n) = ns {
        args.extend(["-n", n]);
    }
    args.extend(["-br", "link"]);
    sh_out(&args)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n != "lo")
        .collect()
}

/// Names of all named network namespaces.
pub fn netns_names() -> Vec<String> {
    sh_out(&["ip", "netns", "list"])
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// A private bpffs mounted on a scratch directory: every pin made under it
/// goes away with the mount (each node directory unpinned, then the mount
/// lazily unmounted on drop), so a failing test cannot leave pins behind.
#[derive(Debug)]
pub struct Bpffs {
    /// The mount point.
    pub mount: PathBuf,
    inner: Option<test_support::Bpffs>,
}

impl Bpffs {
    /// Creates `dir` and mounts a fresh bpffs on it.
    pub fn mount(dir: PathBuf) -> Self {
        let inner = test_support::Bpffs::mount(dir);
        Self {
            mount: inner.mount.clone(),
            inner: Some(inner),
        }
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.mount) {
            for e in entries.flatten() {
                let _ = datapath::loader::unpin_all(&e.path());
            }
        }
        drop(self.inner.take());
    }
}

/// What a test run may leave behind on the host: named namespaces, host
/// interfaces and bpffs mounts whose name contains `tag`.
pub fn leftovers(tag: &str) -> Vec<String> {
    let mut v: Vec<String> = netns_names()
        .into_iter()
        .filter(|n| n.contains(tag))
        .map(|n| format!("netns {n}"))
        .collect();
    v.extend(
        links_of(None)
            .into_iter()
            .filter(|n| n.contains(tag))
            .map(|n| format!("link {n}")),
    );
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    v.extend(
        mounts
            .lines()
            .filter(|l| l.starts_with("bpf ") && l.contains(tag))
            .map(|l| format!("mount {l}")),
    );
    v
}

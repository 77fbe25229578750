//! Machine-level fixtures: unique names, the skip rule of privileged tests,
//! commands (also inside a network namespace), a named network namespace
//! guard, a private bpffs mount guard, and inventories of what exists (for
//! the "nothing left behind" checks).

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A unique short tag (prefix + pid + sequence), for names and paths; at
/// most `prefix.len() + 9` bytes, so interface names stay within IFNAMSIZ.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id() % 100_000,
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Why a privileged test cannot run here, checking root and `tools`
/// (executables looked up in PATH). Under CI (`CI` set) a missing
/// requirement panics instead: a broken machine must not pass by skipping.
pub fn skip_reason(tools: &[&str]) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    let why = if unsafe { libc::geteuid() } != 0 {
        Some("needs root".to_string())
    } else {
        tools
            .iter()
            .find(|t| which(t).is_none())
            .map(|t| format!("needs {t} (./bootstrap.sh installs it)"))
    };
    if let (Some(w), true) = (&why, std::env::var_os("CI").is_some()) {
        panic!("privileged test cannot run under CI: {w}");
    }
    why
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

/// The full path of an executable in PATH.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
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
/// goes away with the mount (unpinned, then lazily unmounted on drop), so a
/// failing test cannot leave pins behind.
#[derive(Debug)]
pub struct Bpffs {
    /// The mount point.
    pub mount: PathBuf,
}

impl Bpffs {
    /// Creates `dir` and mounts a fresh bpffs on it.
    pub fn mount(dir: PathBuf) -> Self {
        std::fs::create_dir_all(&dir).expect("create bpffs mount point");
        let target = CString::new(dir.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: valid NUL-terminated strings for the duration of the call.
        let rc = unsafe {
            libc::mount(
                c"bpf".as_ptr(),
                target.as_ptr(),
                c"bpf".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "mount bpffs: {}", std::io::Error::last_os_error());
        Self { mount: dir }
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.mount) {
            for e in entries.flatten() {
                let _ = datapath::loader::unpin_all(&e.path());
            }
        }
        if let Ok(target) = CString::new(self.mount.as_os_str().as_encoded_bytes()) {
            // SAFETY: valid NUL-terminated path.
            unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        }
        let _ = std::fs::remove_dir(&self.mount);
    }
}

/// A scratch directory removed on drop.
#[derive(Debug)]
pub struct TempDir {
    /// The directory.
    pub path: PathBuf,
}

impl TempDir {
    /// `/tmp/<prefix><unique>`, created.
    pub fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&path).expect("create scratch dir");
        Self { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
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

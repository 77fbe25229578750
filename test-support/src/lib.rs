//! Dev-only fixtures shared by the workspace's tests, benchmarks and
//! examples (never a normal dependency of a product crate): the skip rule of
//! privileged tests ([`skip_reason`], [`require_privileges!`]), a private
//! bpffs mount guard ([`Bpffs`]), a scratch directory removed on drop
//! ([`TempDir`]), unique short names ([`unique`]), loopback ports
//! ([`free_port`], [`wait_for_listen`]), polling ([`wait_for`]) and a
//! throw-away PKI for the TLS tests ([`pki`]) and a throw-away etcd for the
//! cluster store's tests ([`etcd`], skip rule [`require_etcd!`]: no root).
//!
//! It depends on nothing in the workspace, so any crate may take it as a
//! dev-dependency; what needs a crate's own API (unpinning a datapath's
//! objects before the bpffs goes, say) stays in that crate's test fixtures,
//! wrapped around these guards.

pub mod etcd;
pub mod pki;

use std::ffi::CString;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A unique short tag (prefix + pid + sequence), for names and paths; at
/// most `prefix.len() + 11` bytes, so interface names stay within IFNAMSIZ
/// for prefixes of up to 4 bytes.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id() % 100_000,
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Why a privileged test cannot run here, checking root and `tools`
/// (executables looked up in PATH, `/usr/sbin` and `/sbin`). Under CI (`CI`
/// set) a missing requirement panics instead: a broken machine must not pass
/// by skipping.
pub fn skip_reason(tools: &[&str]) -> Option<String> {
    let why = if !is_root() {
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

/// Returns from the calling test with a one-line reason when it cannot run:
/// root and the named tools (`require_privileges!("clang", "ip")`). Panics
/// under CI instead of skipping.
#[macro_export]
macro_rules! require_privileges {
    ($($tool:expr),* $(,)?) => {
        if let Some(why) = $crate::skip_reason(&[$($tool),*]) {
            eprintln!("skipped: {why}");
            return;
        }
    };
}

/// The full path of an executable in PATH (or `/usr/sbin`, `/sbin`).
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// A scratch directory removed (recursively) on drop.
#[derive(Debug)]
pub struct TempDir {
    /// The directory.
    pub path: PathBuf,
}

impl TempDir {
    /// `$TMPDIR/<prefix><unique>`, created.
    pub fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("create scratch dir {}: {e}", path.display()));
        Self { path }
    }

    /// `self.path.join(p)`.
    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A private bpffs mounted on a directory: every pin made under it goes
/// away with the mount (lazily unmounted on drop, then the mount point is
/// removed), so a failing test cannot leave pins behind.
#[derive(Debug)]
pub struct Bpffs {
    /// The mount point.
    pub mount: PathBuf,
}

impl Bpffs {
    /// Creates `dir` and mounts a fresh bpffs on it (panics on failure).
    pub fn mount(dir: PathBuf) -> Self {
        std::fs::create_dir_all(&dir).expect("create bpffs mount point");
        let target = CString::new(dir.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: valid NUL-terminated strings for the duration of the call;
        // data is NULL, which bpffs accepts.
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
        if let Ok(target) = CString::new(self.mount.as_os_str().as_encoded_bytes()) {
            // SAFETY: valid NUL-terminated path.
            unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        }
        let _ = std::fs::remove_dir(&self.mount);
    }
}

/// A private bpffs in a fresh scratch directory: `dir` is the scratch
/// directory, `bpffs` the mount inside it. Dropping it unmounts the bpffs
/// (every pin in it goes) and removes the directory, also when a test fails.
#[derive(Debug)]
pub struct BpffsScratch {
    /// The scratch directory.
    pub dir: PathBuf,
    /// The bpffs mount point, `dir/bpffs`.
    pub bpffs: PathBuf,
    // Field order is drop order: unmount, then remove the directory.
    mount: Option<Bpffs>,
    _tmp: TempDir,
}

impl BpffsScratch {
    /// `$TMPDIR/<prefix><unique>/bpffs`, mounted.
    pub fn new(prefix: &str) -> Self {
        let tmp = TempDir::new(prefix);
        let mount = Bpffs::mount(tmp.join("bpffs"));
        Self {
            dir: tmp.path.clone(),
            bpffs: mount.mount.clone(),
            mount: Some(mount),
            _tmp: tmp,
        }
    }

    /// Unmounts the bpffs now (before the directory goes).
    pub fn unmount(&mut self) {
        drop(self.mount.take());
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// Polls `ok` every 50 ms until it holds; panics naming `what` after
/// `timeout` (a bound against hangs, not a performance figure).
pub fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until something accepts TCP connections on `addr`.
pub fn wait_for_listen(addr: SocketAddr, timeout: Duration) {
    wait_for(&format!("a listener on {addr}"), timeout, || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_stay_short() {
        let (a, b) = (unique("itn"), unique("itn"));
        assert_ne!(a, b);
        assert!(a.len() <= 3 + 11, "{a}");
    }

    #[test]
    fn temp_dir_goes_away() {
        let p = {
            let d = TempDir::new("test-support-");
            std::fs::write(d.join("f"), b"x").unwrap();
            d.path.clone()
        };
        assert!(!p.exists());
    }

    #[test]
    fn listen_is_seen() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        wait_for_listen(l.local_addr().unwrap(), Duration::from_secs(5));
        assert_ne!(free_port(), 0);
    }
}
